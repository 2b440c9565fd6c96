/*
 * model_vmf.c - the vMFMM family: libvmfmm's online class-conditional vMF
 * classifier (stepwise EM, K_max components per class), learning each day's
 * rows with one partial_fit; and the same model behind a running vmfd
 * (--via URL), where each day is a PUT batch and scoring goes through
 * POST /v1/predict.
 *
 * Labels given to the models are the dense class indices of the stream, so a
 * predicted label is directly an evaluation class.
 *
 * In-process, the rows are renormalized (vmf_rows_normalize on a copy) before
 * they reach the classifier, exactly as vmfd does with every body it
 * receives, so an in-process run and a --via run see the same float bits and
 * give identical results.
 */
#include "vmfsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vmf_state {
    vmf_classifier *clf;
    int64_t *lab; /* scratch for labels */
    size_t lab_cap;
    float *xn; /* scratch: normalized copy of the rows */
    size_t xn_cap;
} vmf_state;

/* A normalized copy of x [n][d] in the state's scratch (as vmfd normalizes bodies). */
static const float *normalized(vmf_state *s, const float *x, size_t n, size_t d, char *err)
{
    if (n * d > s->xn_cap) {
        float *b = realloc(s->xn, n * d * sizeof *b);
        if (!b) {
            snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
            return NULL;
        }
        s->xn = b;
        s->xn_cap = n * d;
    }
    memcpy(s->xn, x, n * d * sizeof *x);
    if (vmf_rows_normalize(s->xn, n, d) != VMF_OK) {
        snprintf(err, VMFSIM_ERR_SIZE, "vmfmm: %s", vmf_last_error());
        return NULL;
    }
    return s->xn;
}

static int vmf_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)n_classes;
    vmf_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    o.k_max = cfg->components;
    o.stepwise.seed = cfg->seed;
    if (cfg->vmf_kappa_scale > 0)
        o.kappa_scale = cfg->vmf_kappa_scale;
    if (cfg->vmf_own_kappa)
        o.pooled_kappa = 0;
    int rc = vmf_classifier_new(&o, d, &s->clf);
    if (rc) {
        snprintf(err, VMFSIM_ERR_SIZE, "vmfmm: %s", vmf_last_error());
        free(s);
        return rc;
    }
    *state = s;
    return VMF_OK;
}

/* Widens int32 labels into the state's int64 scratch. */
static const int64_t *widen(int64_t **buf, size_t *cap, const int32_t *y, size_t n)
{
    if (n > *cap) {
        int64_t *b = realloc(*buf, n * sizeof *b);
        if (!b)
            return NULL;
        *buf = b;
        *cap = n;
    }
    for (size_t i = 0; i < n; i++)
        (*buf)[i] = y[i];
    return *buf;
}

static int vmf_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    (void)day;
    vmf_state *s = state;
    vmf_labels lv = {.n = n};
    if (!(lv.ints = widen(&s->lab, &s->lab_cap, y, n)))
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    if (!(x = normalized(s, x, n, d, err)))
        return VMF_EINVAL;
    int rc = vmf_classifier_partial_fit(s->clf, x, n, d, &lv);
    if (rc)
        snprintf(err, VMFSIM_ERR_SIZE, "vmfmm partial_fit: %s", vmf_last_error());
    return rc;
}

static int vmf_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    vmf_state *s = state;
    if (vmf_classifier_n_classes(s->clf) == 0) {
        vmfsim_topk_untrained(-1, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    if (!(x = normalized(s, x, n, d, err)))
        return VMF_EINVAL;
    int rc = vmf_classifier_predict_topk_novelty(s->clf, x, n, d, k, topk, NULL, novelty);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "vmfmm predict: %s", vmf_last_error()), rc;
    vmfsim_topk_to_labels(vmf_classifier_labels(s->clf), topk, n * k);
    return VMF_OK;
}

static uint64_t vmf_rows(const void *state)
{
    const vmf_state *s = state;
    return vmf_classifier_rows_seen(s->clf);
}

static void vmf_destroy(void *state)
{
    vmf_state *s = state;
    if (!s)
        return;
    vmf_classifier_free(s->clf);
    free(s->lab);
    free(s->xn);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_vmfmm = {
    .name = "vmfmm",
    .refit = 0,
    .novelty = 1,
    .create = vmf_create,
    .learn_day = vmf_learn,
    .predict_topk = vmf_predict,
    .rows_seen = vmf_rows,
    .destroy = vmf_destroy,
};

/* ------------------------------------------------------------------- --via */

typedef struct via_state {
    vmfsim_via *via;
    size_t batches;
    uint64_t rows;
} via_state;

static int via_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)d, (void)n_classes;
    via_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    int rc = vmfsim_via_open(cfg->via_url, &s->via, err);
    if (rc) {
        free(s);
        return rc;
    }
    *state = s;
    return VMF_OK;
}

static int via_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    via_state *s = state;
    char key[64];
    snprintf(key, sizeof key, "day-%03zu", day);
    s->batches++;
    int rc = vmfsim_via_put_batch(s->via, key, x, n, d, y, err);
    if (rc == VMF_OK)
        s->rows += n;
    return rc;
}

static int via_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    via_state *s = state;
    if (s->rows == 0) {
        vmfsim_topk_untrained(-1, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    return vmfsim_via_predict(s->via, x, n, d, k, topk, novelty, err);
}

static uint64_t via_rows(const void *state)
{
    const via_state *s = state;
    return s->rows;
}

static void via_destroy(void *state)
{
    via_state *s = state;
    if (!s)
        return;
    vmfsim_via_close(s->via);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_vmfmm_via = {
    .name = "vmfmm",
    .refit = 0,
    .novelty = 1,
    .create = via_create,
    .learn_day = via_learn,
    .predict_topk = via_predict,
    .rows_seen = via_rows,
    .destroy = via_destroy,
};
