/*
 * classifier_predict.c - the classifier's prediction path: top-k classes,
 * class log-probabilities and the novelty score (the cosine distance to the
 * nearest known mode), all from the prediction cache of classifier_scale.c.
 *
 * Prediction. P(c | x) ∝ pi_c sum_k w_ck C_d(kappa) exp(kappa mu_ck^T x)
 * with equal priors pi_c = 1/C (the Bayes decision for a class-balanced
 * evaluation such as macro recall; count_priors gives pi_c = n_c / n), the
 * kappas and the temperature s being those of classifier_scale.c.
 *
 * The work is one GEMM X · Mᵀ over all components, blocked over rows, then
 * a log-sum-exp per class and one over classes, in double.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"
#include "topk.h"
#include "vecmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREDICT_BLOCK 1024

/* ---- prediction ---- */

/* A classifier to predict with; the rows are checked by topk.c's rules. */
static int check_model(const vmf_classifier *c, const char *fn)
{
    if (!c)
        return vmf__error(VMF_EINVAL, "%s: classifier is NULL", fn);
    if (c->n_classes == 0)
        return vmf__error(VMF_EINVAL, "%s: the classifier has not learned any class yet", fn);
    return VMF_OK;
}

/*
 * Terms of a log-sum-exp more than SKIP_LOG below its maximum are not
 * exponentiated: each is below e^-60 < 1e-26 of the sum, so even 10^9 of
 * them change nothing at double precision.
 */
#define SKIP_LOG 60.0

/*
 * The novelty score of a row whose largest cosine to a component mean is
 * `near`: the cosine distance 1 - near to the nearest known mode, clamped
 * to [0, 2] (float rounding of a unit row against a unit mean can exceed 1
 * by a few ulps).
 */
static double novelty_of(float near)
{
    double v = 1.0 - (double)near;
    return v < 0.0 ? 0.0 : v > 2.0 ? 2.0 : v;
}

/* log sum_j exp(l_j) over class q's components, given their maximum cm. */
static double class_lse(const vmf_classifier *c, const float *dr, size_t q, double cm)
{
    double s = 0.0;
    for (size_t j = c->off[q]; j < c->off[q + 1]; j++) {
        double t = c->pcoef[j] + c->pkappa[j] * (double)dr[j] - cm;
        if (t > -SKIP_LOG)
            s += exp(t);
    }
    return cm + log(s);
}

/*
 * log P(class | x) for a block: dots [rows][n_comp] scratch, out [rows][nc].
 * With k = 0 every class is evaluated. With 0 < k < nc only what the top k
 * and the normalizer need is: o_q lies in [m_q, m_q + log K_q] with m_q the
 * class's largest component term, so a class whose upper bound is below the
 * k-th largest lower bound cannot be in the top k, and one more than
 * SKIP_LOG below the best lower bound does not move the normalizer; those
 * get -inf. The values of the classes that are evaluated are exactly those
 * of the full computation. `kbuf` holds k indices.
 */
static void block_log_proba(const vmf_classifier *c, const float *x, size_t rows, float *dots,
                            double *out, size_t k, int32_t *kbuf, double *novelty)
{
    size_t T = c->n_comp, nc = c->n_classes, kmax = 1;
    for (size_t q = 0; q < nc; q++)
        kmax = c->off[q + 1] - c->off[q] > kmax ? c->off[q + 1] - c->off[q] : kmax;
    double logk = log((double)kmax);
    int prune = k > 0 && k < nc;
    vmf__sgemm(0, 1, rows, T, c->d, 1.0f, x, c->d, c->pmeans, c->d, 0.0f, dots, T);
    for (size_t i = 0; i < rows; i++) {
        const float *dr = dots + i * T;
        double *o = out + i * nc;
        double best = -INFINITY;
        float near = -2.0f;
        for (size_t q = 0; q < nc; q++) {
            double cm = -INFINITY;
            for (size_t j = c->off[q]; j < c->off[q + 1]; j++) {
                double l = c->pcoef[j] + c->pkappa[j] * (double)dr[j];
                cm = l > cm ? l : cm;
                near = dr[j] > near ? dr[j] : near;
            }
            o[q] = cm;
            best = cm > best ? cm : best;
        }
        /* The k-th largest lower bound. */
        double kth = prune ? o[kbuf[vmf__topk_scores(o, nc, k, kbuf) - 1]] : -INFINITY;
        double mx = -INFINITY;
        for (size_t q = 0; q < nc; q++) {
            if (o[q] == -INFINITY)
                continue;
            double ub = o[q] + logk;
            if (prune && ub < kth && ub < best - SKIP_LOG) {
                o[q] = -INFINITY;
                continue;
            }
            o[q] = class_lse(c, dr, q, o[q]);
            mx = o[q] > mx ? o[q] : mx;
        }
        double s = 0.0;
        for (size_t q = 0; q < nc; q++) {
            double t = o[q] - mx;
            if (t > -SKIP_LOG)
                s += exp(t);
        }
        double lse = mx + log(s);
        for (size_t q = 0; q < nc; q++)
            o[q] -= lse;
        if (novelty)
            novelty[i] = novelty_of(near);
    }
}

/* The largest of v [n] (n >= 1), in eight independent lanes so the loop pipelines. */
static float row_max(const float *v, size_t n)
{
    float m[8];
    for (size_t l = 0; l < 8; l++)
        m[l] = v[0];
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
#pragma GCC unroll 1 /* one vmaxps, not a vmaxss per lane (vecmath.h) */
        for (size_t l = 0; l < 8; l++)
            m[l] = v[j + l] > m[l] ? v[j + l] : m[l];
    }
    for (; j < n; j++)
        m[0] = v[j] > m[0] ? v[j] : m[0];
    for (size_t l = 1; l < 8; l++)
        m[0] = m[l] > m[0] ? m[l] : m[0];
    return m[0];
}

/*
 * One row of the refinement head (classifier_refine.c): from its dot
 * products h [nc] and the biases b [nc], the logits h + b in double into
 * o [nc]; returns their log-sum-exp, so log P(c | x) = o_c - lse. The
 * maximum and the normalizer are reduced over VMF_LANES fixed lanes and the
 * exponentials are vmf__exp_nonpos, so the loops vectorize and every clone
 * gives the same bits (vecmath.h).
 */
static VMF_CLONES VMF_VECTORIZE double head_row(const float *h, const double *b, size_t nc,
                                                double *o)
{
    size_t kl = nc - nc % VMF_LANES;
    double sl[VMF_LANES] = {0}, s = 0.0;
    for (size_t q = 0; q < nc; q++)
        o[q] = (double)h[q] + b[q];
    double mx = vmf__lanes_max(o, nc);
    /* The sum as vmf__lanes_sum, fused with the exponentials (no store). */
    for (size_t q = 0; q < kl; q += VMF_LANES)
        for (size_t l = 0; l < VMF_LANES; l++)
            sl[l] += vmf__exp_nonpos(o[q + l] - mx);
    for (size_t l = 0; l < VMF_LANES; l++)
        s += sl[l];
    for (size_t q = kl; q < nc; q++)
        s += vmf__exp_nonpos(o[q] - mx);
    /* s >= 1: the maximum contributes exp(0) = 1 exactly. */
    return mx + log(s);
}

/* One row's log P(c | x) into o [nc] from the head's dot products h [nc]. */
static void head_row_log_proba(const float *h, const double *b, size_t nc, double *o)
{
    double lse = head_row(h, b, nc, o);
    for (size_t q = 0; q < nc; q++)
        o[q] -= lse;
}

/* The head's dot products X · Wᵀ of a block into hdots [rows][nc]. */
static void head_dots(const vmf_classifier *c, const float *x, size_t rows, float *hdots)
{
    size_t nc = c->n_classes;
    vmf__sgemm(0, 1, rows, nc, c->d, 1.0f, x, c->d, c->head.w, c->d, 0.0f, hdots, nc);
}

/* The novelty scores of a block from the component means; dots [rows][n_comp] scratch. */
static void block_novelty(const vmf_classifier *c, const float *x, size_t rows, float *dots,
                          double *novelty)
{
    size_t T = c->n_comp;
    vmf__sgemm(0, 1, rows, T, c->d, 1.0f, x, c->d, c->pmeans, c->d, 0.0f, dots, T);
    for (size_t i = 0; i < rows; i++)
        novelty[i] = novelty_of(row_max(dots + i * T, T));
}

int vmf__classifier_head_log_proba(const vmf_classifier *c, const float *x, size_t n, double *out)
{
    size_t nc = c->n_classes, b = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    float *hdots = vmf__malloc_array(b ? b * nc : 1, sizeof *hdots);
    if (!hdots)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for %zu x %zu", b, nc);
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        head_dots(c, x + i0 * c->d, rows, hdots);
        for (size_t i = 0; i < rows; i++)
            head_row_log_proba(hdots + i * nc, c->head.b, nc, out + (i0 + i) * nc);
    }
    vmf__free(hdots);
    return VMF_OK;
}

/*
 * The top k of one row's scores r [nc] into ci [k] and, when pi is not
 * NULL, their probabilities exp(r - z) into pi [k] (z the row's
 * log-normaliser when r holds logits, 0 when it holds log-probabilities;
 * either way r - z <= 0, so vmf__exp_nonpos, within 3 ulp, serves and
 * costs a fraction of libm's call: k of them a row were 4 % of predict_topk).
 */
static void row_topk(const double *r, size_t nc, double z, size_t k, int32_t *ci, double *pi)
{
    size_t have = vmf__topk_scores(r, nc, k, ci); /* ties: lower class index first */
    for (size_t j = 0; pi && j < k; j++)
        pi[j] = j < have ? vmf__exp_nonpos(r[ci[j]] - z) : 0.0;
}

/*
 * With the head, each row is finished while it is in cache: logits, their
 * log-sum-exp, then either the log-probabilities or the top k, ranked on
 * the logits (the same order). The mixtures' path works a block at a time.
 * Each block's rows are checked just before its GEMM, which then finds them
 * in cache: checked in a pass of their own, 100,000 rows at d = 512 cost
 * 0.013 s more, 9 % of the head's GEMM (vmf_bench_classifier). A bad row
 * stops the work with the error of the up-front check, after the outputs
 * of the blocks before it.
 */
static int predict_blocks(const char *fn, const vmf_classifier *c, const float *x, size_t n,
                          size_t k, int32_t *classes, double *proba, double *log_proba,
                          double *novelty)
{
    size_t nc = c->n_classes, T = c->n_comp, b = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    int head = c->use_head && c->head.w != NULL && c->head.n == nc;
    float *dots = vmf__malloc_array(b * T, sizeof *dots);
    float *hdots = head ? vmf__malloc_array(b * nc, sizeof *hdots) : NULL;
    double *lp = log_proba ? NULL : vmf__malloc_array(head ? nc : b * nc, sizeof *lp);
    int32_t *kbuf = vmf__malloc_array(k ? k : 1, sizeof *kbuf);
    if (!dots || (head && !hdots) || (!log_proba && !lp) || !kbuf) {
        vmf__free(dots);
        vmf__free(hdots);
        vmf__free(lp);
        vmf__free(kbuf);
        return vmf__error(VMF_ENOMEM, "%s: out of memory for %zu x %zu", fn, b, T);
    }
    int rc = VMF_OK;
    for (size_t i0 = 0; i0 < n && rc == VMF_OK; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        const float *xb = x + i0 * c->d;
        rc = vmf__predict_check_block(fn, xb, rows, c->d, i0);
        if (rc != VMF_OK)
            break;
        if (head) {
            head_dots(c, xb, rows, hdots);
            if (novelty)
                block_novelty(c, xb, rows, dots, novelty + i0);
            for (size_t i = 0; i < rows; i++) {
                const float *h = hdots + i * nc;
                if (log_proba) {
                    head_row_log_proba(h, c->head.b, nc, log_proba + (i0 + i) * nc);
                } else if (classes) {
                    double lse = head_row(h, c->head.b, nc, lp);
                    row_topk(lp, nc, lse, k, classes + (i0 + i) * k,
                             proba ? proba + (i0 + i) * k : NULL);
                }
            }
            continue;
        }
        double *o = log_proba ? log_proba + i0 * nc : lp;
        block_log_proba(c, xb, rows, dots, o, classes ? k : 0, kbuf, novelty ? novelty + i0 : NULL);
        for (size_t i = 0; classes && i < rows; i++)
            row_topk(o + i * nc, nc, 0.0, k, classes + (i0 + i) * k,
                     proba ? proba + (i0 + i) * k : NULL);
    }
    vmf__free(dots);
    vmf__free(hdots);
    vmf__free(lp);
    vmf__free(kbuf);
    return rc;
}

int vmf_classifier_predict_topk(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                size_t k, int32_t *classes, double *proba)
{
    return vmf_classifier_predict_topk_novelty(c, x, n, d, k, classes, proba, NULL);
}

int vmf_classifier_predict_topk_novelty(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                        size_t k, int32_t *classes, double *proba, double *novelty)
{
    const char *fn = "vmf_classifier_predict_topk";
    int rc = check_model(c, fn);
    if (rc == VMF_OK)
        rc = vmf__topk_check_args(fn, c->d, x, n, d, k, classes);
    if (rc != VMF_OK || n == 0)
        return rc;
    return predict_blocks(fn, c, x, n, k, classes, proba, NULL, novelty);
}

int vmf_classifier_predict_log_proba(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                     double *out)
{
    const char *fn = "vmf_classifier_predict_log_proba";
    int rc = check_model(c, fn);
    if (rc == VMF_OK)
        rc = vmf__predict_check_args(fn, c->d, x, n, d);
    if (rc != VMF_OK || n == 0)
        return rc;
    if (!out)
        return vmf__error(VMF_EINVAL, "%s: out is NULL", fn);
    return predict_blocks(fn, c, x, n, 0, NULL, NULL, out, NULL);
}

int vmf_classifier_novelty(const vmf_classifier *c, const float *x, size_t n, size_t d,
                           double *novelty)
{
    const char *fn = "vmf_classifier_novelty";
    int rc = check_model(c, fn);
    if (rc == VMF_OK)
        rc = vmf__predict_check_rows(fn, c->d, x, n, d);
    if (rc != VMF_OK || n == 0)
        return rc;
    if (!novelty)
        return vmf__error(VMF_EINVAL, "%s: novelty is NULL", fn);
    size_t T = c->n_comp, b = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    float *dots = vmf__malloc_array(b * T, sizeof *dots);
    if (!dots)
        return vmf__error(VMF_ENOMEM, "%s: out of memory for %zu x %zu", fn, b, T);
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        block_novelty(c, x + i0 * d, rows, dots, novelty + i0);
    }
    vmf__free(dots);
    return VMF_OK;
}
