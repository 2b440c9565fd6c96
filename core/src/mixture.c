/*
 * mixture.c - the vMF mixture object: construction, accessors, the blocked
 * E-step and M-step kernels (see mixture_internal.h), scoring, sampling and
 * the model JSON.
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

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- object ---- */

int vmf__mixture_alloc(size_t k, size_t d, vmf_mixture **out)
{
    *out = NULL;
    if (k == 0 || d < 2)
        return vmf__error(VMF_EINVAL, "a mixture needs k >= 1 components and dimension d >= 2");
    size_t kd;
    if (vmf__mul_overflow(k, d, &kd) != 0 || kd > SIZE_MAX / sizeof(float))
        return vmf__error(VMF_ENOMEM, "mixture of %zu x %zu is too large", k, d);
    vmf_mixture *m = vmf__calloc(1, sizeof *m);
    if (!m)
        return vmf__error(VMF_ENOMEM, "out of memory allocating a mixture");
    m->k = k;
    m->d = d;
    m->weights = vmf__malloc_array(k, sizeof *m->weights);
    m->kappas = vmf__calloc(k, sizeof *m->kappas);
    m->log_coef = vmf__malloc_array(k, sizeof *m->log_coef);
    m->means = vmf__calloc(kd, sizeof *m->means);
    if (!m->weights || !m->kappas || !m->log_coef || !m->means) {
        vmf_mixture_free(m);
        return vmf__error(VMF_ENOMEM, "out of memory allocating a mixture of %zu x %zu", k, d);
    }
    for (size_t c = 0; c < k; c++)
        m->weights[c] = 1.0 / (double)k;
    *out = m;
    return VMF_OK;
}

void vmf__mixture_refresh(vmf_mixture *m)
{
    for (size_t c = 0; c < m->k; c++) {
        /* log(0) = -inf is intended: a component of weight 0 never gets mass. */
        m->log_coef[c] = log(m->weights[c]) + vmf_log_norm_const(m->d, m->kappas[c]);
    }
}

void vmf_mixture_free(vmf_mixture *m)
{
    if (!m)
        return;
    vmf__free(m->weights);
    vmf__free(m->kappas);
    vmf__free(m->log_coef);
    vmf__free(m->means);
    vmf__free(m);
}

/*
 * Validates and copies parameters into a new mixture. Weights are divided by
 * their sum and means by their norm, except when the sum / norm already is 1
 * within rounding (1e-12 for the weight sum, 1e-6 for a float mean's norm):
 * then they are stored as given, so that a saved model reloads bit for bit.
 * `what` names the source in messages.
 */
static int mixture_build(size_t k, size_t d, const double *weights, const float *means,
                         const double *kappas, int tied, const char *what, vmf_mixture **out)
{
    *out = NULL;
    if (k == 0 || d < 2)
        return vmf__error(VMF_EINVAL,
                          "%s: need k >= 1 components and dimension d >= 2 (got k=%zu, d=%zu)",
                          what, k, d);
    if (!weights || !means || !kappas)
        return vmf__error(VMF_EINVAL, "%s: weights, means and kappas are required", what);
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++) {
        if (!(isfinite(weights[c]) && weights[c] >= 0.0))
            return vmf__error(VMF_EINVAL,
                              "%s: weights[%zu] = %g is not a finite non-negative number", what, c,
                              weights[c]);
        wsum += weights[c];
    }
    if (!(wsum > 0.0 && isfinite(wsum)))
        return vmf__error(VMF_EINVAL, "%s: the weights sum to %g, need a positive finite sum", what,
                          wsum);
    for (size_t c = 0; c < k; c++) {
        if (!(isfinite(kappas[c]) && kappas[c] >= 0.0))
            return vmf__error(VMF_EINVAL, "%s: kappas[%zu] = %g is not a finite number >= 0", what,
                              c, kappas[c]);
        if (tied && kappas[c] != kappas[0])
            return vmf__error(VMF_EINVAL,
                              "%s: tied kappa but kappas[%zu] = %.17g != kappas[0] = %.17g", what,
                              c, kappas[c], kappas[0]);
    }
    for (size_t c = 0; c < k; c++) {
        const float *mu = means + c * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(mu[j]))
                return vmf__error(VMF_EINVAL, "%s: means[%zu][%zu] is NaN or infinite", what, c, j);
            s += (double)mu[j] * (double)mu[j];
        }
        if (fabs(sqrt(s) - 1.0) > VMF_ROWS_NORM_TOL)
            return vmf__error(VMF_EINVAL, "%s: means[%zu] has norm %.6g, expected 1", what, c,
                              sqrt(s));
    }
    vmf_mixture *m;
    int rc = vmf__mixture_alloc(k, d, &m);
    if (rc != VMF_OK)
        return rc;
    m->tied = tied ? 1 : 0;
    int renorm_w = fabs(wsum - 1.0) > 1e-12;
    for (size_t c = 0; c < k; c++) {
        m->weights[c] = renorm_w ? weights[c] / wsum : weights[c];
        m->kappas[c] = kappas[c];
        const float *mu = means + c * d;
        float *dst = m->means + c * d;
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += (double)mu[j] * (double)mu[j];
        double norm = sqrt(s);
        if (fabs(norm - 1.0) > 1e-6) {
            for (size_t j = 0; j < d; j++)
                dst[j] = (float)((double)mu[j] / norm);
        } else {
            memcpy(dst, mu, d * sizeof *dst);
        }
    }
    vmf__mixture_refresh(m);
    *out = m;
    return VMF_OK;
}

int vmf_mixture_new(size_t k, size_t d, const double *weights, const float *means,
                    const double *kappas, vmf_mixture **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_mixture_new: out is NULL");
    return mixture_build(k, d, weights, means, kappas, 0, "vmf_mixture_new", out);
}

int vmf_mixture_copy(const vmf_mixture *m, vmf_mixture **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_mixture_copy: out is NULL");
    *out = NULL;
    if (!m)
        return vmf__error(VMF_EINVAL, "vmf_mixture_copy: mixture is NULL");
    vmf_mixture *c;
    int rc = vmf__mixture_alloc(m->k, m->d, &c);
    if (rc != VMF_OK)
        return rc;
    c->tied = m->tied;
    memcpy(c->weights, m->weights, m->k * sizeof *c->weights);
    memcpy(c->kappas, m->kappas, m->k * sizeof *c->kappas);
    memcpy(c->log_coef, m->log_coef, m->k * sizeof *c->log_coef);
    memcpy(c->means, m->means, m->k * m->d * sizeof *c->means);
    *out = c;
    return VMF_OK;
}

size_t vmf_mixture_n_components(const vmf_mixture *m)
{
    return m ? m->k : 0;
}

size_t vmf_mixture_dim(const vmf_mixture *m)
{
    return m ? m->d : 0;
}

const double *vmf_mixture_weights(const vmf_mixture *m)
{
    return m ? m->weights : NULL;
}

const float *vmf_mixture_means(const vmf_mixture *m)
{
    return m ? m->means : NULL;
}

const double *vmf_mixture_kappas(const vmf_mixture *m)
{
    return m ? m->kappas : NULL;
}

int vmf_mixture_tied_kappa(const vmf_mixture *m)
{
    return m ? m->tied : 0;
}

size_t vmf_mixture_n_params(const vmf_mixture *m)
{
    if (!m)
        return 0;
    return (m->k - 1) + m->k * (m->d - 1) + (m->tied ? 1 : m->k);
}

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
 * The kernels below are compiled without trapping math so that GCC can
 * if-convert the clamps and vectorize; the code never inspects FP exception
 * flags, so nothing observable changes.
 */
#if defined(__GNUC__) && !defined(__clang__)
#define VMF_VECTORIZE __attribute__((optimize("no-trapping-math")))
#else
#define VMF_VECTORIZE
#endif

/*
 * On x86-64 the row kernel is also compiled for AVX2 and AVX-512 and the
 * widest one the CPU supports is chosen at load time (GCC function
 * multi-versioning through an ifunc). Every clone computes the same bits:
 * the operations are element-wise IEEE ones, C11 mode does not contract them
 * into FMAs, and the reductions are spelled out in a fixed lane order.
 * ThreadSanitizer builds keep the one default version: the ifunc resolver
 * would run, instrumented, before the sanitizer's runtime is initialised.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_THREAD__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VMF_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
#endif
#ifndef VMF_CLONES
#define VMF_CLONES
#endif

/*
 * exp(x) for x <= 0 in float, vectorizable: x = n ln2 + r with |r| <= ln2/2
 * (Cody-Waite split of ln2, n by the 1.5·2^23 rounding trick), exp(r) by its
 * degree-7 Taylor polynomial (truncation error r^8/8! < 5.3e-9 relative,
 * under 2^-27), times 2^n built in the exponent bits. Relative error at most
 * 1.02e-7 (< 2^-23) over [-87, 0], checked exhaustively against exp() in
 * double for every float there; below -87 the result is 0 (exp(-87) < 2^-125, far
 * beneath float resolution next to the row maximum's exp(0) = 1), and -inf
 * gives 0 as well.
 */
static inline VMF_VECTORIZE float exp_nonpos(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float xc = x < -87.0f ? -87.0f : x;
    float t = xc * 1.44269504088896341f;
    float nf = (t + magic) - magic;
    float r = xc - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = (int32_t)nf + 127;
    uint32_t bits = (uint32_t)e << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    float y = p * s;
    return x < -87.0f ? 0.0f : y;
}

/* Lanes of the manual reductions: wide enough for AVX-512 doubles, cheap for SSE2. */
#define LANES 8

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
    size_t kl = k - k % LANES;
    double total = 0.0;
    for (size_t i = 0; i < rows; i++) {
        float *r = dots + i * k;
        /* log joint in double, then its maximum (LANES independent chains). */
        for (size_t c = 0; c < k; c++)
            lsc[c] = coef[c] + kap[c] * (double)r[c];
        double mxl[LANES];
        for (size_t l = 0; l < LANES; l++)
            mxl[l] = -INFINITY;
        for (size_t c = 0; c < kl; c += LANES)
            for (size_t l = 0; l < LANES; l++)
                mxl[l] = lsc[c + l] > mxl[l] ? lsc[c + l] : mxl[l];
        double mx = -INFINITY;
        for (size_t l = 0; l < LANES; l++)
            mx = mxl[l] > mx ? mxl[l] : mx;
        for (size_t c = kl; c < k; c++)
            mx = lsc[c] > mx ? lsc[c] : mx;
        /* exp(l - max) in float (one vectorized loop); the normalizer in double. */
        for (size_t c = 0; c < k; c++)
            r[c] = exp_nonpos((float)(lsc[c] - mx));
        double sl[LANES] = {0};
        for (size_t c = 0; c < kl; c += LANES)
            for (size_t l = 0; l < LANES; l++)
                sl[l] += (double)r[c + l];
        double sum = 0.0;
        for (size_t l = 0; l < LANES; l++)
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

int vmf__mixture_estep_stats(const vmf_mixture *m, const float *x, size_t n, size_t d,
                             vmf_assignment mode, vmf_rng *rng, size_t block_rows, double *s0,
                             double *s1, double *loglik_sum, double *row_loglik)
{
    size_t k = m->k;
    if (block_rows == 0)
        block_rows = VMF__BLOCK_ROWS;
    size_t b = n < block_rows ? n : block_rows;
    if (b == 0)
        b = 1;
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
            for (size_t i = 0; i < rows; i++) {
                const float *r = dots + i * k;
                for (size_t c = 0; c < k; c++)
                    s0[c] += (double)r[c];
            }
            if (s1) {
                vmf__sgemm(1, 0, k, d, rows, 1.0f, dots, k, xb, d, 0.0f, s1b, d);
                for (size_t j = 0; j < k * d; j++)
                    s1[j] += (double)s1b[j];
            }
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

/* ---- seeding ---- */

int vmf__random_rows(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means)
{
    if (k == 0 || n < k)
        return vmf__error(VMF_EINVAL, "random init: need n >= k >= 1 (n=%zu, k=%zu)", n, k);
    size_t *pick = vmf__malloc_array(k, sizeof *pick);
    if (!pick)
        return vmf__error(VMF_ENOMEM, "random init: out of memory");
    /* Floyd: for j = n-k .. n-1 draw t in [0, j]; take t unless taken, else j. */
    size_t got = 0;
    for (size_t j = n - k; j < n; j++) {
        size_t t = (size_t)vmf_rng_below(rng, (uint64_t)j + 1);
        for (size_t q = 0; q < got; q++)
            if (pick[q] == t) {
                t = j;
                break;
            }
        pick[got++] = t;
    }
    for (size_t c = 0; c < k; c++)
        memcpy(means + c * d, x + pick[c] * d, d * sizeof *means);
    vmf__free(pick);
    return VMF_OK;
}

/* dist[i] = min(dist[i], 1 - x_i^T mu) over all rows, blocked; returns the new sum. */
static double kpp_update(const float *x, size_t n, size_t d, const float *mu, double *dist,
                         float *dots, size_t block)
{
    double total = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += block) {
        size_t rows = n - i0 < block ? n - i0 : block;
        vmf__sgemm(0, 1, rows, 1, d, 1.0f, x + i0 * d, d, mu, d, 0.0f, dots, 1);
        for (size_t i = 0; i < rows; i++) {
            double dd = 1.0 - (double)dots[i];
            if (dd < 0.0) /* rounding of a row against itself */
                dd = 0.0;
            if (dd < dist[i0 + i])
                dist[i0 + i] = dd;
            total += dist[i0 + i];
        }
    }
    return total;
}

/* A row drawn with probability dist[i] / total (uniform when total is 0). */
static size_t kpp_draw(const double *dist, size_t n, double total, vmf_rng *rng)
{
    if (!(total > 0.0))
        return (size_t)vmf_rng_below(rng, n);
    double u = vmf_rng_uniform(rng) * total, acc = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (dist[i] > 0.0)
            last = i;
        acc += dist[i];
        if (u < acc && dist[i] > 0.0)
            return i;
    }
    return last; /* u rounded past the cumulative sum */
}

int vmf__kmeanspp(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means)
{
    if (k == 0 || n < k)
        return vmf__error(VMF_EINVAL, "k-means++: need n >= k >= 1 (n=%zu, k=%zu)", n, k);
    /*
     * Greedy variant (as scikit-learn's): the best of 2 + floor(ln k)
     * candidates per step. Their dot products with every row are kept
     * (float [n][trials], O(n log k)), so that adopting the winner needs no
     * second pass over the data: one pass per chosen mean.
     */
    size_t trials = 2 + (size_t)log((double)k);
    size_t block = VMF__BLOCK_ROWS, nt;
    if (vmf__mul_overflow(n, trials, &nt) != 0)
        return vmf__error(VMF_ENOMEM, "k-means++: %zu rows x %zu candidates overflow", n, trials);
    double *dist = vmf__malloc_array(n, sizeof *dist);
    float *dots = vmf__malloc_array(nt, sizeof *dots);
    float *cand = vmf__malloc_array(trials * d, sizeof *cand);
    double *pot = vmf__malloc_array(trials, sizeof *pot);
    int rc = VMF_OK;
    if (!dist || !dots || !cand || !pot) {
        rc = vmf__error(VMF_ENOMEM, "k-means++: out of memory for %zu rows", n);
        goto done;
    }
    size_t first = (size_t)vmf_rng_below(rng, n);
    memcpy(means, x + first * d, d * sizeof *means);
    for (size_t i = 0; i < n; i++)
        dist[i] = INFINITY;
    double total = kpp_update(x, n, d, means, dist, dots, block);
    for (size_t c = 1; c < k; c++) {
        for (size_t t = 0; t < trials; t++) {
            size_t row = kpp_draw(dist, n, total, rng);
            memcpy(cand + t * d, x + row * d, d * sizeof *cand);
            pot[t] = 0.0;
        }
        /* Potential sum_i min(dist_i, 1 - x_i^T cand_t) of each candidate. */
        for (size_t i0 = 0; i0 < n; i0 += block) {
            size_t rows = n - i0 < block ? n - i0 : block;
            float *db = dots + i0 * trials;
            vmf__sgemm(0, 1, rows, trials, d, 1.0f, x + i0 * d, d, cand, d, 0.0f, db, trials);
            for (size_t i = 0; i < rows; i++)
                for (size_t t = 0; t < trials; t++) {
                    double dd = 1.0 - (double)db[i * trials + t];
                    dd = dd < 0.0 ? 0.0 : dd;
                    pot[t] += dd < dist[i0 + i] ? dd : dist[i0 + i];
                }
        }
        size_t best = 0;
        for (size_t t = 1; t < trials; t++)
            if (pot[t] < pot[best])
                best = t;
        memcpy(means + c * d, cand + best * d, d * sizeof *means);
        total = 0.0;
        for (size_t i = 0; i < n; i++) {
            double dd = 1.0 - (double)dots[i * trials + best];
            dd = dd < 0.0 ? 0.0 : dd;
            if (dd < dist[i])
                dist[i] = dd;
            total += dist[i];
        }
    }
done:
    vmf__free(dist);
    vmf__free(dots);
    vmf__free(cand);
    vmf__free(pot);
    return rc;
}

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

int vmf_mixture_sample(const vmf_mixture *m, size_t n, vmf_rng *rng, float *x, int32_t *comp)
{
    if (!m || !rng || (n > 0 && !x))
        return vmf__error(VMF_EINVAL, "vmf_mixture_sample: mixture, rng and x are required");
    for (size_t i = 0; i < n; i++) {
        double u = vmf_rng_uniform(rng), acc = 0.0;
        size_t c = 0, last = 0;
        for (; c < m->k; c++) {
            if (m->weights[c] > 0.0)
                last = c;
            acc += m->weights[c];
            if (u < acc && m->weights[c] > 0.0)
                break;
        }
        if (c == m->k)
            c = last;
        int rc = vmf_sample_vmf(m->means + c * m->d, m->d, m->kappas[c], 1, rng, x + i * m->d);
        if (rc != VMF_OK) {
            char msg[256]; /* vmf__error must not read the buffer it writes */
            snprintf(msg, sizeof msg, "%s", vmf_last_error());
            return vmf__error(rc, "vmf_mixture_sample: component %zu: %s", c, msg);
        }
        if (comp)
            comp[i] = (int32_t)c;
    }
    return VMF_OK;
}

/* ---- model JSON ---- */

int vmf__mixture_to_json_obj(const vmf_mixture *m, void **obj)
{
    *obj = NULL;
    json_t *root = json_object();
    json_t *w = json_array(), *kap = json_array(), *means = json_array();
    int bad = !root || !w || !kap || !means;
    bad |= json_object_set_new(root, "format", json_string("vmfmm-model"));
    bad |= json_object_set_new(root, "version", json_integer(1));
    bad |= json_object_set_new(root, "kind", json_string("mixture"));
    bad |= json_object_set_new(root, "dim", json_integer((json_int_t)m->d));
    bad |= json_object_set_new(root, "n_components", json_integer((json_int_t)m->k));
    bad |= json_object_set_new(root, "tied_kappa", json_boolean(m->tied));
    for (size_t c = 0; c < m->k && !bad; c++) {
        bad |= json_array_append_new(w, json_real(m->weights[c]));
        bad |= json_array_append_new(kap, json_real(m->kappas[c]));
        json_t *row = json_array();
        bad |= json_array_append_new(means, row);
        for (size_t j = 0; j < m->d && !bad; j++)
            bad |= json_array_append_new(row, json_real((double)m->means[c * m->d + j]));
    }
    bad |= json_object_set(root, "weights", w);
    bad |= json_object_set(root, "kappas", kap);
    bad |= json_object_set(root, "means", means);
    json_decref(w);
    json_decref(kap);
    json_decref(means);
    if (bad) {
        json_decref(root);
        return vmf__error(VMF_ENOMEM, "model JSON: out of memory");
    }
    *obj = root;
    return VMF_OK;
}

int vmf_mixture_to_json(const vmf_mixture *m, char **json)
{
    if (!json)
        return vmf__error(VMF_EINVAL, "vmf_mixture_to_json: json is NULL");
    *json = NULL;
    if (!m)
        return vmf__error(VMF_EINVAL, "vmf_mixture_to_json: mixture is NULL");
    void *obj;
    int rc = vmf__mixture_to_json_obj(m, &obj);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__json_dump(obj, json, "model JSON");
    json_decref(obj);
    return rc;
}

int vmf__mixture_from_json_obj(const void *obj, const char *where, vmf_mixture **out)
{
    const json_t *root = obj;
    *out = NULL;
    if (!json_is_object(root))
        return vmf__error(VMF_EFORMAT, "%s: not a JSON object", where);
    const json_t *v = json_object_get(root, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), "vmfmm-model") != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"format\" must be \"vmfmm-model\"", where);
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return vmf__error(VMF_EFORMAT, "%s: \"version\" must be 1", where);
    v = json_object_get(root, "kind");
    if (!json_is_string(v) || strcmp(json_string_value(v), "mixture") != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"kind\" must be \"mixture\"", where);
    size_t d = 0, k = 0;
    int rc = vmf__json_get_size(root, "dim", VMF__JSON_REQUIRED, where, &d);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(root, "n_components", VMF__JSON_REQUIRED, where, &k);
    if (rc != VMF_OK)
        return rc;
    if (d < 2 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EFORMAT, "%s: \"dim\" = %zu outside [2, 2^24]", where, d);
    if (k < 1 || k > ((size_t)1 << 24))
        return vmf__error(VMF_EFORMAT, "%s: \"n_components\" = %zu outside [1, 2^24]", where, k);
    v = json_object_get(root, "tied_kappa");
    if (!json_is_boolean(v))
        return vmf__error(VMF_EFORMAT, "%s: \"tied_kappa\" must be true or false", where);
    int tied = json_is_true(v);
    const json_t *jw = json_object_get(root, "weights"), *jk = json_object_get(root, "kappas"),
                 *jm = json_object_get(root, "means");
    if (!jw || !jk || !jm)
        return vmf__error(VMF_EFORMAT, "%s: missing \"%s\"", where,
                          !jw   ? "weights"
                          : !jk ? "kappas"
                                : "means");
    if (!json_is_array(jm) || json_array_size(jm) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"means\" must be an array of %zu rows", where, k);
    /*
     * Check every array's length before allocating, so that the allocation is
     * bounded by what the document really holds, not by "dim" alone.
     */
    if (!json_is_array(jw) || json_array_size(jw) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"weights\" must be an array of %zu numbers", where, k);
    if (!json_is_array(jk) || json_array_size(jk) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"kappas\" must be an array of %zu numbers", where, k);
    for (size_t c = 0; c < k; c++) {
        const json_t *row = json_array_get(jm, c);
        if (!json_is_array(row) || json_array_size(row) != d)
            return vmf__error(VMF_EFORMAT, "%s: means[%zu] must be an array of %zu numbers", where,
                              c, d);
    }
    double *w = vmf__malloc_array(k, sizeof *w);
    double *kap = vmf__malloc_array(k, sizeof *kap);
    float *means = NULL;
    if (w && kap) {
        size_t kd;
        if (vmf__mul_overflow(k, d, &kd) == 0)
            means = vmf__malloc_array(kd, sizeof *means);
    }
    if (!w || !kap || !means) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory for %zu x %zu", where, k, d);
        goto done;
    }
    rc = vmf__json_get_numbers(jw, k, where, "weights", w, NULL);
    if (rc == VMF_OK)
        rc = vmf__json_get_numbers(jk, k, where, "kappas", kap, NULL);
    for (size_t c = 0; c < k && rc == VMF_OK; c++) {
        char name[48];
        snprintf(name, sizeof name, "means[%zu]", c);
        rc = vmf__json_get_numbers(json_array_get(jm, c), d, where, name, NULL, means + c * d);
    }
    if (rc == VMF_OK) {
        rc = mixture_build(k, d, w, means, kap, tied, where, out);
        if (rc == VMF_EINVAL)
            rc = VMF_EFORMAT;
    }
done:
    vmf__free(w);
    vmf__free(kap);
    vmf__free(means);
    return rc;
}

int vmf_mixture_from_json(const char *json, size_t len, vmf_mixture **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_mixture_from_json: out is NULL");
    *out = NULL;
    if (!json)
        return vmf__error(VMF_EINVAL, "vmf_mixture_from_json: json is NULL");
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return vmf__error(VMF_EFORMAT, "model JSON: line %d column %d: %s", err.line, err.column,
                          err.text);
    int rc = vmf__mixture_from_json_obj(root, "model JSON", out);
    json_decref(root);
    return rc;
}
