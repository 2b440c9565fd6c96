/*
 * model_gmm.c - the class-conditional diagonal GMM baseline (libvmfmm's
 * vmf_gmm_classifier), refit from scratch on all stream rows so far; the
 * production model that vMF replaces. Refit every --refit-every days (daily
 * by default), each refit warm-started from the previous one (EM from its
 * parameters for every class whose number of components did not change, as
 * scikit-learn's GaussianMixture(warm_start=True)): a cold refit runs
 * k-means++, Lloyd and up to --gmm-max-iter EM iterations per class, a warm
 * one a few EM iterations.
 *
 * Novelty: minus the largest class log-density max_c log p(x | c), each a
 * diagonal-Gaussian mixture. The log-densities of all components are one
 * double GEMM of [x^2, x] with [-1/(2 var), mean / var].
 */
#include "vmfsim.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    vmf_gmm_opts o = s->opts;
    o.warm_start = s->gmm;
    int rc = vmf_gmm_classifier_fit(&o, x, n, d, &lv, &g);
    if (rc)
        return snprintf(err, VMFSIM_ERR_SIZE, "gmm fit: %s", vmf_last_error()), rc;
    vmf_gmm_classifier_free(s->gmm);
    s->gmm = g;
    s->rows = n;
    return VMF_OK;
}

static int gmm_novelty(const vmf_gmm_classifier *g, const float *x, size_t n, size_t d,
                       double *novelty, char *err)
{
    size_t nc = vmf_gmm_classifier_n_classes(g), T = 0;
    for (size_t c = 0; c < nc; c++)
        T += vmf_gmm_classifier_class_n_components(g, c);
    const size_t B = 256;
    double *coef = malloc(T * 2 * d * sizeof *coef), *cst = malloc(T * sizeof *cst);
    double *f = malloc(B * 2 * d * sizeof *f), *l = malloc(B * T * sizeof *l);
    if (!coef || !cst || !f || !l) {
        free(coef), free(cst), free(f), free(l);
        return snprintf(err, VMFSIM_ERR_SIZE, "gmm novelty: out of memory"), VMF_ENOMEM;
    }
    size_t at = 0;
    for (size_t c = 0; c < nc; c++) {
        size_t kc = vmf_gmm_classifier_class_n_components(g, c);
        const double *w = vmf_gmm_classifier_class_weights(g, c);
        const double *mu = vmf_gmm_classifier_class_means(g, c);
        const double *var = vmf_gmm_classifier_class_variances(g, c);
        for (size_t j = 0; j < kc; j++, at++) {
            double c0 = log(w[j]);
            for (size_t q = 0; q < d; q++) {
                double v = var[j * d + q], m = mu[j * d + q];
                coef[at * 2 * d + q] = -0.5 / v;
                coef[at * 2 * d + d + q] = m / v;
                c0 -= 0.5 * (m * m / v + (1.8378770664093453 + log(v)) /* log(2 pi v) */);
            }
            cst[at] = c0;
        }
    }
    for (size_t i0 = 0; i0 < n; i0 += B) {
        size_t rows = n - i0 < B ? n - i0 : B;
        for (size_t i = 0; i < rows; i++)
            for (size_t q = 0; q < d; q++) {
                double v = (double)x[(i0 + i) * d + q];
                f[i * 2 * d + q] = v * v;
                f[i * 2 * d + d + q] = v;
            }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)T, (int)(2 * d), 1.0,
                    f, (int)(2 * d), coef, (int)(2 * d), 0.0, l, (int)T);
        for (size_t i = 0; i < rows; i++) {
            double best = -INFINITY;
            size_t j0 = 0;
            for (size_t c = 0; c < nc; c++) {
                size_t kc = vmf_gmm_classifier_class_n_components(g, c);
                double mx = -INFINITY, sm = 0.0;
                for (size_t j = j0; j < j0 + kc; j++)
                    mx = fmax(mx, l[i * T + j] + cst[j]);
                for (size_t j = j0; j < j0 + kc; j++)
                    sm += exp(l[i * T + j] + cst[j] - mx);
                best = fmax(best, mx + log(sm));
                j0 += kc;
            }
            novelty[i0 + i] = -best;
        }
    }
    free(coef), free(cst), free(f), free(l);
    return VMF_OK;
}

static int gmm_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    gmm_state *s = state;
    if (!s->gmm) {
        vmfsim_topk_untrained(-1, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    if (novelty) {
        int nrc = gmm_novelty(s->gmm, x, n, d, novelty, err);
        if (nrc)
            return nrc;
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
    .novelty = 1,
    .create = gmm_create,
    .learn_day = gmm_learn,
    .predict_topk = gmm_predict,
    .rows_seen = gmm_rows,
    .destroy = gmm_destroy,
};
