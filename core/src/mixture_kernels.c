/*
 * mixture_kernels.c - the blocked E-step and M-step kernels of a vMF mixture
 * (see mixture_internal.h): log joints, responsibilities and sufficient
 * statistics of a block of rows, and the M-step from statistics.
 *
 * Design note on the hot loop. An EM pass over a block is two sgemm calls
 * (X·Mᵀ, then Rᵀ·X) and, between them, one exponential per (row, component).
 * With d = 256 and K = 50 the N·K exponentials cost about as much as the
 * GEMMs if evaluated with libm in double, so the EM kernel
 * (vmf__mixture_resp_block) subtracts the row maximum in double, narrows the
 * differences (all <= 0) to float and evaluates exp with a branch-free
 * polynomial that GCC vectorizes; the normalizer is summed in double. The
 * public scoring functions (score_samples, predict_proba, ...) are not on the
 * EM path and use libm in double throughout.
 */
#include "internal.h"
#include "mixture_internal.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

/* ---- kernels ---- */

void vmf__mixture_log_joint_block(const vmf_mixture *m, const float *x, size_t rows, float *dots,
                                  double *logp)
{
    size_t k = m->k;
    vmf__sgemm(0, 1, rows, k, m->d, 1.0f, x, m->d, m->means, m->d, 0.0f, dots, k);
    for (size_t i = 0; i < rows; i++) {
        const float *dr = dots + i * k;
        double *lr = logp + i * k;
        for (size_t c = 0; c < k; c++)
            lr[c] = m->log_coef[c] + m->kappas[c] * (double)dr[c];
    }
}

/*
 * The kernel is static so that its clones and their ifunc resolver stay
 * local to the library (a global target_clones function exports its
 * resolver whatever its visibility); the wrapper below is the entry point.
 */
static VMF_CLONES VMF_VECTORIZE double resp_block(const vmf_mixture *m, size_t rows,
                                                  vmf_assignment mode, vmf_rng *rng, float *dots,
                                                  double *lsc, double *row_loglik)
{
    size_t k = m->k;
    const double *coef = m->log_coef;
    const double *kap = m->kappas;
    size_t kl = k - k % VMF_LANES;
    double total = 0.0;
    for (size_t i = 0; i < rows; i++) {
        float *r = dots + i * k;
        /* log joint in double, then its maximum (VMF_LANES independent chains). */
        for (size_t c = 0; c < k; c++)
            lsc[c] = coef[c] + kap[c] * (double)r[c];
        double mxl[VMF_LANES];
        for (size_t l = 0; l < VMF_LANES; l++)
            mxl[l] = -INFINITY;
        for (size_t c = 0; c < kl; c += VMF_LANES)
            for (size_t l = 0; l < VMF_LANES; l++)
                mxl[l] = lsc[c + l] > mxl[l] ? lsc[c + l] : mxl[l];
        double mx = -INFINITY;
        for (size_t l = 0; l < VMF_LANES; l++)
            mx = mxl[l] > mx ? mxl[l] : mx;
        for (size_t c = kl; c < k; c++)
            mx = lsc[c] > mx ? lsc[c] : mx;
        /* exp(l - max) in float (one vectorized loop); the normalizer in double. */
        for (size_t c = 0; c < k; c++)
            r[c] = vmf__expf_nonpos((float)(lsc[c] - mx));
        double sl[VMF_LANES] = {0};
        for (size_t c = 0; c < kl; c += VMF_LANES)
            for (size_t l = 0; l < VMF_LANES; l++)
                sl[l] += (double)r[c + l];
        double sum = 0.0;
        for (size_t l = 0; l < VMF_LANES; l++)
            sum += sl[l];
        for (size_t c = kl; c < k; c++)
            sum += (double)r[c];
        /* sum >= 1: the maximum contributes exp(0) = 1 exactly. */
        double ll = mx + log(sum);
        total += ll;
        if (row_loglik)
            row_loglik[i] = ll;
        if (mode == VMF_ASSIGN_SOFT) {
            float inv = (float)(1.0 / sum);
            for (size_t c = 0; c < k; c++)
                r[c] *= inv;
            continue;
        }
        size_t pick = 0;
        if (mode == VMF_ASSIGN_HARD) {
            /* The first component reaching the maximum: ties go to the lowest index. */
            while (pick + 1 < k && lsc[pick] != mx)
                pick++;
        } else {
            double u = vmf_rng_uniform(rng) * sum, acc = 0.0;
            size_t last = 0;
            for (pick = 0; pick < k; pick++) {
                if (r[pick] > 0.0f)
                    last = pick;
                acc += (double)r[pick];
                if (u < acc && r[pick] > 0.0f)
                    break;
            }
            if (pick == k) /* u rounded past the cumulative sum */
                pick = last;
        }
        for (size_t c = 0; c < k; c++)
            r[c] = 0.0f;
        r[pick] = 1.0f;
    }
    return total;
}

double vmf__mixture_resp_block(const vmf_mixture *m, size_t rows, vmf_assignment mode, vmf_rng *rng,
                               float *dots, double *lsc, double *row_loglik)
{
    return resp_block(m, rows, mode, rng, dots, lsc, row_loglik);
}

size_t vmf__estep_block_rows(size_t n, size_t block_rows)
{
    if (block_rows == 0)
        block_rows = VMF__BLOCK_ROWS;
    size_t b = n < block_rows ? n : block_rows;
    return b ? b : 1;
}

void vmf__mixture_accum_soft(const float *r, const float *xb, size_t rows, size_t k, size_t d,
                             float *s1b, double *s0, double *s1)
{
    for (size_t i = 0; i < rows; i++) {
        const float *ri = r + i * k;
        for (size_t c = 0; c < k; c++)
            s0[c] += (double)ri[c];
    }
    if (s1) {
        vmf__sgemm(1, 0, k, d, rows, 1.0f, r, k, xb, d, 0.0f, s1b, d);
        for (size_t j = 0; j < k * d; j++)
            s1[j] += (double)s1b[j];
    }
}

int vmf__mixture_estep_stats(const vmf_mixture *m, const float *x, size_t n, size_t d,
                             vmf_assignment mode, vmf_rng *rng, size_t block_rows, double *s0,
                             double *s1, double *loglik_sum, double *row_loglik)
{
    size_t k = m->k, b = vmf__estep_block_rows(n, block_rows);
    int soft = mode == VMF_ASSIGN_SOFT;
    size_t bk, kd;
    if (vmf__mul_overflow(b, k, &bk) != 0 || vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "E-step: a block of %zu rows x %zu is too large", b, k);
    float *dots = vmf__malloc_array(bk, sizeof *dots);
    double *lsc = vmf__malloc_array(k, sizeof *lsc);
    float *s1b = (s1 && soft) ? vmf__malloc_array(kd, sizeof *s1b) : NULL;
    if (!dots || !lsc || (s1 && soft && !s1b)) {
        vmf__free(dots);
        vmf__free(lsc);
        vmf__free(s1b);
        return vmf__error(VMF_ENOMEM, "E-step: out of memory for a block of %zu rows x %zu", b, k);
    }
    memset(s0, 0, k * sizeof *s0);
    if (s1)
        memset(s1, 0, k * d * sizeof *s1);
    double ll = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        const float *xb = x + i0 * d;
        vmf__sgemm(0, 1, rows, k, d, 1.0f, xb, d, m->means, d, 0.0f, dots, k);
        ll += vmf__mixture_resp_block(m, rows, mode, rng, dots, lsc,
                                      row_loglik ? row_loglik + i0 : NULL);
        if (soft) {
            vmf__mixture_accum_soft(dots, xb, rows, k, d, s1b, s0, s1);
        } else {
            for (size_t i = 0; i < rows; i++) {
                const float *r = dots + i * k;
                size_t c = 0;
                while (r[c] == 0.0f)
                    c++;
                s0[c] += 1.0;
                if (s1) {
                    const float *xi = xb + i * d;
                    double *acc = s1 + c * d;
                    for (size_t j = 0; j < d; j++)
                        acc[j] += (double)xi[j];
                }
            }
        }
    }
    if (loglik_sum)
        *loglik_sum = ll;
    vmf__free(dots);
    vmf__free(lsc);
    vmf__free(s1b);
    return VMF_OK;
}

int vmf__mixture_mstep(vmf_mixture *m, const double *s0, const double *s1,
                       const vmf_kappa_opts *kopts, int tied)
{
    size_t k = m->k, d = m->d;
    double total = 0.0, rsum = 0.0;
    for (size_t c = 0; c < k; c++)
        total += s0[c];
    if (!(total > 0.0 && isfinite(total)))
        return vmf__error(VMF_EINVAL, "M-step: total mass %g is not positive", total);
    for (size_t c = 0; c < k; c++) {
        const double *v = s1 + c * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += v[j] * v[j];
        double norm = sqrt(s);
        rsum += norm;
        m->weights[c] = s0[c] / total;
        if (norm > 0.0) {
            float *mu = m->means + c * d;
            for (size_t j = 0; j < d; j++)
                mu[j] = (float)(v[j] / norm);
        }
        if (!tied && s0[c] > 0.0) {
            int rc = vmf_kappa_estimate(kopts, d, s0[c], norm, &m->kappas[c]);
            if (rc != VMF_OK)
                return rc;
        }
    }
    m->tied = tied ? 1 : 0;
    if (tied) {
        double kappa;
        int rc = vmf_kappa_estimate(kopts, d, total, rsum, &kappa);
        if (rc != VMF_OK)
            return rc;
        for (size_t c = 0; c < k; c++)
            m->kappas[c] = kappa;
    }
    vmf__mixture_refresh(m);
    return VMF_OK;
}
