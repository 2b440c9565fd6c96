/*
 * mixture_score.c - scoring rows under a vMF mixture: log-likelihoods, hard
 * and soft assignments, log joints and information criteria. Not on the EM
 * path: it uses libm in double throughout, block by block.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <stdio.h>

/* ---- scoring ---- */

/* Checks the common arguments of the scoring functions. */
static int check_scoring(const char *fn, const vmf_mixture *m, const float *x, size_t n, size_t d,
                         const void *out)
{
    if (!m)
        return vmf__error(VMF_EINVAL, "%s: mixture is NULL", fn);
    if (d != m->d)
        return vmf__error(VMF_EINVAL, "%s: x has %zu columns, the mixture has dimension %zu", fn, d,
                          m->d);
    if (n > 0 && (!x || !out))
        return vmf__error(VMF_EINVAL, "%s: x and the output must not be NULL", fn);
    int rc = vmf_rows_check(x, n, d);
    if (rc != VMF_OK) {
        char msg[256]; /* vmf__error must not read the buffer it writes */
        snprintf(msg, sizeof msg, "%s", vmf_last_error());
        return vmf__error(rc, "%s: %s", fn, msg);
    }
    return VMF_OK;
}

/* Rows per block of the scoring functions: logp [b][k] doubles stay around 1 MiB. */
static size_t scoring_block(const vmf_mixture *m, size_t n)
{
    size_t b = (size_t)1 << 17;
    b /= m->k;
    if (b < 16)
        b = 16;
    if (b > n)
        b = n;
    return b ? b : 1;
}

enum score_kind { SCORE_LOGP, SCORE_MEAN, SCORE_LABEL, SCORE_PROBA, SCORE_JOINT };

/*
 * The one loop behind the public scoring functions, in double with libm exp:
 * log joint per block, then the per-row reduction `kind` asks for.
 */
static int score(const char *fn, const vmf_mixture *m, const float *x, size_t n, size_t d,
                 enum score_kind kind, void *out)
{
    int rc = check_scoring(fn, m, x, n, d, out);
    if (rc != VMF_OK)
        return rc;
    size_t k = m->k, b = scoring_block(m, n);
    float *dots = vmf__malloc_array(b * k, sizeof *dots);
    double *logp = kind == SCORE_JOINT ? NULL : vmf__malloc_array(b * k, sizeof *logp);
    if (!dots || (kind != SCORE_JOINT && !logp)) {
        vmf__free(dots);
        vmf__free(logp);
        return vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
    }
    double sum = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        double *lp = kind == SCORE_JOINT ? (double *)out + i0 * k : logp;
        vmf__mixture_log_joint_block(m, x + i0 * d, rows, dots, lp);
        if (kind == SCORE_JOINT)
            continue;
        for (size_t i = 0; i < rows; i++) {
            const double *l = lp + i * k;
            if (kind == SCORE_LABEL) {
                size_t best = 0;
                for (size_t c = 1; c < k; c++)
                    if (l[c] > l[best])
                        best = c;
                ((int32_t *)out)[i0 + i] = (int32_t)best;
                continue;
            }
            double lse = vmf__logsumexp(l, k);
            if (kind == SCORE_LOGP)
                ((double *)out)[i0 + i] = lse;
            else if (kind == SCORE_MEAN)
                sum += lse;
            else {
                double *p = (double *)out + (i0 + i) * k;
                for (size_t c = 0; c < k; c++)
                    p[c] = exp(l[c] - lse);
            }
        }
    }
    vmf__free(dots);
    vmf__free(logp);
    if (kind == SCORE_MEAN)
        *(double *)out = sum / (double)n;
    return VMF_OK;
}

int vmf_mixture_score_samples(const vmf_mixture *m, const float *x, size_t n, size_t d, double *out)
{
    return score("vmf_mixture_score_samples", m, x, n, d, SCORE_LOGP, out);
}

int vmf_mixture_mean_loglik(const vmf_mixture *m, const float *x, size_t n, size_t d, double *out)
{
    if (n == 0)
        return vmf__error(VMF_EINVAL, "vmf_mixture_mean_loglik: no rows");
    return score("vmf_mixture_mean_loglik", m, x, n, d, SCORE_MEAN, out);
}

int vmf_mixture_predict(const vmf_mixture *m, const float *x, size_t n, size_t d, int32_t *labels)
{
    if (m && m->k > (size_t)INT32_MAX)
        return vmf__error(VMF_EINVAL, "vmf_mixture_predict: too many components for int32 labels");
    return score("vmf_mixture_predict", m, x, n, d, SCORE_LABEL, labels);
}

int vmf_mixture_predict_proba(const vmf_mixture *m, const float *x, size_t n, size_t d,
                              double *proba)
{
    return score("vmf_mixture_predict_proba", m, x, n, d, SCORE_PROBA, proba);
}

int vmf_mixture_log_joint(const vmf_mixture *m, const float *x, size_t n, size_t d, double *out)
{
    return score("vmf_mixture_log_joint", m, x, n, d, SCORE_JOINT, out);
}

int vmf_mixture_information_criteria(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                     double *bic, double *aic)
{
    if (n == 0)
        return vmf__error(VMF_EINVAL, "vmf_mixture_information_criteria: no rows");
    double mean;
    int rc = score("vmf_mixture_information_criteria", m, x, n, d, SCORE_MEAN, &mean);
    if (rc != VMF_OK)
        return rc;
    double total = mean * (double)n, p = (double)vmf_mixture_n_params(m);
    if (bic)
        *bic = -2.0 * total + p * log((double)n);
    if (aic)
        *aic = -2.0 * total + 2.0 * p;
    return VMF_OK;
}
