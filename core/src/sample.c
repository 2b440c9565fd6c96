/*
 * sample.c - drawing from vMF(mu, kappa), uniformly on S^{d-1}, and from a
 * vMF mixture.
 *
 * Wood (1994), "Simulation of the von Mises Fisher distribution": the cosine
 * w = mu^T x has density ∝ exp(kappa w)(1 - w^2)^{(d-3)/2}; it is drawn by
 * rejection from a Beta((d-1)/2, (d-1)/2) envelope, the tangent part is a
 * uniform direction orthogonal to e1, and the draw around e1 is mapped onto mu
 * by the Householder reflection H = I - 2 v v^T / (v^T v), v = e1 - mu, which
 * takes e1 to mu. The constant b is computed in the cancellation-free form
 * b = (d-1) / (2 kappa + sqrt(4 kappa^2 + (d-1)^2)).
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Fills r [m] with independent standard normals and returns their sum of
 * squares, redrawing in the (practically impossible) case that it underflows:
 * r / sqrt(sum) is then uniform on the sphere S^(m-1). */
static double normal_direction(float *r, size_t m, vmf_rng *rng)
{
    double s;
    do {
        s = 0.0;
        for (size_t j = 0; j < m; j++) {
            double g = vmf_rng_normal(rng);
            r[j] = (float)g;
            s += g * g;
        }
    } while (s < 1e-300);
    return s;
}

int vmf_sample_uniform(size_t d, size_t n, vmf_rng *rng, float *out)
{
    if (d < 2 || !rng || (!out && n > 0))
        return vmf__error(VMF_EINVAL, "vmf_sample_uniform: need d >= 2 and an output buffer");
    for (size_t i = 0; i < n; i++) {
        float *r = out + i * d;
        double s = normal_direction(r, d, rng);
        double inv = 1.0 / sqrt(s);
        for (size_t j = 0; j < d; j++)
            r[j] = (float)((double)r[j] * inv);
    }
    return VMF_OK;
}

/* One draw of w = mu^T x (Wood 1994, steps 0-3). */
static double wood_w(size_t d, double kappa, vmf_rng *rng)
{
    double dm1 = (double)d - 1.0;
    double b = dm1 / (2.0 * kappa + sqrt(4.0 * kappa * kappa + dm1 * dm1));
    double x0 = (1.0 - b) / (1.0 + b);
    double c = kappa * x0 + dm1 * log(1.0 - x0 * x0);
    for (;;) {
        double z = vmf_rng_beta(rng, 0.5 * dm1, 0.5 * dm1);
        double w = (1.0 - (1.0 + b) * z) / (1.0 - (1.0 - b) * z);
        double u = 1.0 - vmf_rng_uniform(rng); /* (0, 1] */
        if (kappa * w + dm1 * log(1.0 - x0 * w) - c >= log(u))
            return w;
    }
}

int vmf_sample_vmf(const float *mu, size_t d, double kappa, size_t n, vmf_rng *rng, float *out)
{
    if (d < 2 || !mu || !rng || (!out && n > 0))
        return vmf__error(VMF_EINVAL, "vmf_sample_vmf: need d >= 2, mu and an output buffer");
    if (!(kappa >= 0.0 && kappa <= 1e8))
        return vmf__error(VMF_EINVAL, "vmf_sample_vmf: kappa %g outside [0, 1e8]", kappa);
    double norm2 = 0.0;
    for (size_t j = 0; j < d; j++) {
        if (!isfinite(mu[j]))
            return vmf__error(VMF_EINVAL, "vmf_sample_vmf: mu has a NaN or infinite value");
        norm2 += (double)mu[j] * (double)mu[j];
    }
    if (fabs(sqrt(norm2) - 1.0) > VMF_ROWS_NORM_TOL)
        return vmf__error(VMF_EINVAL, "vmf_sample_vmf: mu has norm %.6g, expected 1", sqrt(norm2));
    if (kappa == 0.0)
        return vmf_sample_uniform(d, n, rng, out);

    double *v = vmf__malloc_array(d, sizeof *v);
    if (!v)
        return vmf__error(VMF_ENOMEM, "vmf_sample_vmf: out of memory");
    /* v = e1 - mu; when mu == e1 the reflection is the identity. */
    double vv = 0.0;
    for (size_t j = 0; j < d; j++) {
        v[j] = (j == 0 ? 1.0 : 0.0) - (double)mu[j] / sqrt(norm2);
        vv += v[j] * v[j];
    }
    for (size_t i = 0; i < n; i++) {
        float *r = out + i * d;
        double w = wood_w(d, kappa, rng);
        /* Tangent part: a uniform direction in the d-1 coordinates after e1, drawn into the row. */
        double s = normal_direction(r + 1, d - 1, rng);
        double scale = sqrt(fmax(0.0, 1.0 - w * w)) / sqrt(s);
        /* x = w e1 + scale * t, then x <- H x, all in double. */
        double vx = v[0] * w;
        for (size_t j = 1; j < d; j++)
            vx += v[j] * ((double)r[j] * scale);
        double f = vv > 0.0 ? 2.0 * vx / vv : 0.0;
        double x0 = w - f * v[0];
        for (size_t j = 1; j < d; j++)
            r[j] = (float)((double)r[j] * scale - f * v[j]);
        r[0] = (float)x0;
    }
    vmf__free(v);
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
