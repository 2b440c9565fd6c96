/*
 * model_gmm.c - the class-conditional diagonal GMM baseline (libvmfmm's
 * vmf_gmm_classifier), refit from scratch on all stream rows so far; the
 * production model that vMF replaces. Refit every --refit-every days.
 */
#include "vmfsim.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct gmm_state {
    vmf_gmm_opts opts;
    vmf_gmm_classifier *gmm;
    uint64_t rows;
    int64_t *lab;
} gmm_state;

static int gmm_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)d, (void)n_classes;
    gmm_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    vmf_gmm_opts_init(&s->opts);
    s->opts.k_max = cfg->components;
    s->opts.max_iter = cfg->gmm_max_iter;
    s->opts.seed = cfg->seed;
    *state = s;
    return VMF_OK;
}

static int gmm_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    (void)day;
    gmm_state *s = state;
    int64_t *lab = realloc(s->lab, n * sizeof *lab);
    if (!lab)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    s->lab = lab;
    for (size_t i = 0; i < n; i++)
        lab[i] = y[i];
    vmf_labels lv = {.n = n, .ints = lab};
    vmf_gmm_classifier *g = NULL;
    int rc = vmf_gmm_classifier_fit(&s->opts, x, n, d, &lv, &g);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "gmm fit: %s", vmf_last_error()), rc;
    vmf_gmm_classifier_free(s->gmm);
    s->gmm = g;
    s->rows = n;
    return VMF_OK;
}

static int gmm_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       char *err)
{
    gmm_state *s = state;
    if (!s->gmm) {
        vmfsim_topk_untrained(-1, n, k, topk);
        return VMF_OK;
    }
    int rc = vmf_gmm_classifier_predict_topk(s->gmm, x, n, d, k, topk, NULL);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "gmm predict: %s", vmf_last_error()), rc;
    vmfsim_topk_to_labels(vmf_gmm_classifier_labels(s->gmm), topk, n * k);
    return VMF_OK;
}

static uint64_t gmm_rows(const void *state)
{
    const gmm_state *s = state;
    return s->rows;
}

static void gmm_destroy(void *state)
{
    gmm_state *s = state;
    if (!s)
        return;
    vmf_gmm_classifier_free(s->gmm);
    free(s->lab);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_gmm = {
    .name = "gmm",
    .refit = 1,
    .create = gmm_create,
    .learn_day = gmm_learn,
    .predict_topk = gmm_predict,
    .rows_seen = gmm_rows,
    .destroy = gmm_destroy,
};
