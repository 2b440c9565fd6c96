/*
 * model_knn.c - the cosine k-NN baseline (libvmfmm's vmf_knn_classifier):
 * each day's rows are added to the index; with --knn-reservoir R > 0 every
 * class keeps a uniform reservoir sample of R rows (seeded), which bounds the
 * per-day prediction cost over a 200-day stream.
 *
 * Novelty: the cosine distance from a row to its k-th nearest stored row
 * (1 - the k-th largest cosine), the deep nearest-neighbour out-of-
 * distribution score (Sun et al., ICML 2022) with the classifier's own k.
 */
#include "vmfsim.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct knn_state {
    vmf_knn_classifier *knn;
    size_t k;
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
    s->k = cfg->knn_k;
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

#define NOVELTY_BLOCK 256

/* novelty [n]: 1 - the kk-th largest cosine of each row of x to the stored rows. */
static int knn_novelty(const knn_state *s, const float *x, size_t n, size_t d, double *novelty,
                       char *err)
{
    size_t nr = vmf_knn_classifier_n_rows(s->knn);
    const float *r = vmf_knn_classifier_rows(s->knn);
    size_t kk = s->k < nr ? s->k : nr;
    float *sim = malloc(NOVELTY_BLOCK * nr * sizeof *sim);
    float *best = malloc(kk * sizeof *best);
    if (!sim || !best) {
        free(sim), free(best);
        return snprintf(err, VMFSIM_ERR_SIZE, "knn novelty: out of memory"), VMF_ENOMEM;
    }
    for (size_t i0 = 0; i0 < n; i0 += NOVELTY_BLOCK) {
        size_t rows = n - i0 < NOVELTY_BLOCK ? n - i0 : NOVELTY_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)nr, (int)d, 1.0f,
                    x + i0 * d, (int)d, r, (int)d, 0.0f, sim, (int)nr);
        for (size_t i = 0; i < rows; i++) {
            const float *v = sim + i * nr;
            size_t have = 0;
            /* The kk largest similarities in decreasing order (kk is small). */
            for (size_t j = 0; j < nr; j++) {
                if (have == kk && !(v[j] > best[kk - 1]))
                    continue;
                size_t at = have < kk ? have++ : kk - 1;
                while (at > 0 && v[j] > best[at - 1]) {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = v[j];
            }
            novelty[i0 + i] = 1.0 - (double)best[kk - 1];
        }
    }
    free(sim), free(best);
    return VMF_OK;
}

static int knn_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    knn_state *s = state;
    if (vmf_knn_classifier_n_rows(s->knn) == 0) {
        vmfsim_topk_untrained(-1, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    if (novelty) {
        int nrc = knn_novelty(s, x, n, d, novelty, err);
        if (nrc)
            return nrc;
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
    .novelty = 1,
    .create = knn_create,
    .learn_day = knn_learn,
    .predict_topk = knn_predict,
    .rows_seen = knn_rows,
    .destroy = knn_destroy,
};
