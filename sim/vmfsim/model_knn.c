/*
 * model_knn.c - the cosine k-NN baseline (libvmfmm's vmf_knn_classifier):
 * each day's rows are added to the index; with --knn-reservoir R > 0 every
 * class keeps a uniform reservoir sample of R rows (seeded), which bounds the
 * per-day prediction cost over a 200-day stream.
 */
#include "vmfsim.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct knn_state {
    vmf_knn_classifier *knn;
    uint64_t rows;
    int64_t *lab;
    size_t cap;
} knn_state;

static int knn_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)n_classes;
    knn_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    vmf_knn_opts o;
    vmf_knn_opts_init(&o);
    o.k = cfg->knn_k;
    o.reservoir_per_class = cfg->knn_reservoir;
    o.seed = cfg->seed;
    int rc = vmf_knn_classifier_new(&o, d, &s->knn);
    if (rc) {
        snprintf(err, VMFSIM_ERR_SIZE, "knn: %s", vmf_last_error());
        free(s);
        return rc;
    }
    *state = s;
    return VMF_OK;
}

static int knn_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    (void)day;
    knn_state *s = state;
    if (n > s->cap) {
        int64_t *lab = realloc(s->lab, n * sizeof *lab);
        if (!lab)
            return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
        s->lab = lab;
        s->cap = n;
    }
    for (size_t i = 0; i < n; i++)
        s->lab[i] = y[i];
    vmf_labels lv = {.n = n, .ints = s->lab};
    int rc = vmf_knn_classifier_add(s->knn, x, n, d, &lv);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "knn add: %s", vmf_last_error()), rc;
    s->rows += n;
    return VMF_OK;
}

static int knn_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       char *err)
{
    knn_state *s = state;
    if (vmf_knn_classifier_n_rows(s->knn) == 0) {
        vmfsim_topk_untrained(-1, n, k, topk);
        return VMF_OK;
    }
    int rc = vmf_knn_classifier_predict_topk(s->knn, x, n, d, k, topk, NULL);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "knn predict: %s", vmf_last_error()), rc;
    vmfsim_topk_to_labels(vmf_knn_classifier_labels(s->knn), topk, n * k);
    return VMF_OK;
}

static uint64_t knn_rows(const void *state)
{
    const knn_state *s = state;
    return s->rows;
}

static void knn_destroy(void *state)
{
    knn_state *s = state;
    if (!s)
        return;
    vmf_knn_classifier_free(s->knn);
    free(s->lab);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_knn = {
    .name = "knn",
    .refit = 0,
    .create = knn_create,
    .learn_day = knn_learn,
    .predict_topk = knn_predict,
    .rows_seen = knn_rows,
    .destroy = knn_destroy,
};
