/*
 * mixture.c - the vMF mixture object: validated construction, copy, release
 * and accessors. Its kernels (mixture_kernels.c), seeding (mixture_seed.c),
 * scoring (mixture_score.c), sampling (sample.c) and JSON form
 * (mixture_json.c) live beside it.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
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
int vmf__mixture_build(size_t k, size_t d, const double *weights, const float *means,
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
    return vmf__mixture_build(k, d, weights, means, kappas, 0, "vmf_mixture_new", out);
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
