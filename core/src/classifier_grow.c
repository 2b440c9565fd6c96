/*
 * classifier_grow.c - one class of the classifier: its vMF mixture, learned
 * online with stepwise EM, and the growth of that mixture by splitting.
 *
 * Growth rule. A class of n rows has K(n) = min(k_max, max(1, floor(n /
 * rows_per_component))) components. It starts with one (initialised from its
 * first batch) and, while K < k_max, keeps a growth sample of at most
 * rows_per_component * k_max of its rows (all of them until the sample is
 * full, then a uniform reservoir sample, Vitter's algorithm R, drawn from the
 * classifier's generator). When K(n) exceeds the current K, the class's
 * mixture is refitted from the sample: the component with the largest mass
 * is split in two along the principal direction of its responsibility-weighted
 * scatter in the tangent space at its mean (children at the mean plus or minus
 * one standard deviation along it, renormalised), followed by a short batch
 * EM (20 iterations); this repeats until K(n) components. The statistics are
 * then recomputed from the sample and stepwise EM continues from them. Once
 * K = k_max the sample is released, so a mature class costs only its
 * statistics. Splitting along the direction of largest spread is what lets
 * isotropic components follow an elongated class; a batch that triggers
 * growth is learned through the refit (its rows are in the sample).
 *
 * Step sizes. Per-class batches are small and irregular (a few rows of a rare
 * class per day), so each class runs stepwise EM on the row clock of
 * stepwise_internal.h: an exact running average of the rows until the
 * stepwise schedule (alpha, t0, minibatch) forgets faster.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_EM_ITER 20
#define FINAL_EM_ITER 100
#define POWER_ITER    50

/* ---- growth ---- */

/*
 * Principal direction of the responsibility-weighted scatter of the tangent
 * vectors t_i = x_i - (x_i·mu) mu by power iteration from the tangent of the
 * row with the largest weighted tangent norm. Writes v [d] (unit) and returns
 * the eigenvalue estimate v^T S v, or 0 when there is no spread.
 */
static double principal_tangent(const float *x, size_t n, size_t d, const float *mu,
                                const double *r, size_t kstride, double *t, double *v, double *sv)
{
    double mass = 0.0, best = -1.0;
    size_t arg = 0;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double dot = 0.0;
        for (size_t j = 0; j < d; j++)
            dot += (double)xi[j] * (double)mu[j];
        double nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            t[i * d + j] = (double)xi[j] - dot * (double)mu[j];
            nn += t[i * d + j] * t[i * d + j];
        }
        double wn = r[i * kstride] * nn;
        if (wn > best) {
            best = wn;
            arg = i;
        }
        mass += r[i * kstride];
    }
    if (!(mass > 0.0) || !(best > 0.0))
        return 0.0;
    double nv = 0.0;
    for (size_t j = 0; j < d; j++) {
        v[j] = t[arg * d + j];
        nv += v[j] * v[j];
    }
    nv = sqrt(nv);
    for (size_t j = 0; j < d; j++)
        v[j] /= nv;
    double lambda = 0.0;
    for (int it = 0; it < POWER_ITER; it++) {
        memset(sv, 0, d * sizeof *sv);
        for (size_t i = 0; i < n; i++) {
            const double *ti = t + i * d;
            double p = 0.0;
            for (size_t j = 0; j < d; j++)
                p += ti[j] * v[j];
            p *= r[i * kstride];
            for (size_t j = 0; j < d; j++)
                sv[j] += p * ti[j];
        }
        double ns = 0.0;
        lambda = 0.0;
        for (size_t j = 0; j < d; j++) {
            ns += sv[j] * sv[j];
            lambda += sv[j] * v[j];
        }
        ns = sqrt(ns);
        if (!(ns > 0.0))
            return 0.0;
        for (size_t j = 0; j < d; j++)
            v[j] = sv[j] / ns;
    }
    return lambda / mass;
}

/* A batch EM from given means with the class options. */
static int em_from(const vmf_classifier_opts *o, const float *x, size_t n, size_t d, size_t k,
                   const float *means, size_t max_iter, vmf_mixture **out)
{
    vmf_em_opts eo;
    vmf_em_opts_init(&eo);
    eo.n_components = k;
    eo.max_iter = max_iter;
    eo.tol = 1e-7;
    eo.init = VMF_INIT_GIVEN;
    eo.init_means = means;
    eo.kappa = o->stepwise.kappa;
    eo.min_mass = 1.0;
    eo.seed = o->stepwise.seed;
    return vmf_mixture_fit(&eo, x, n, d, out, NULL);
}

/*
 * Splits the heaviest component of *m (fitted to x [n][d]) and refits with a
 * short EM; replaces *m on success. *grown is 0 when no component has any
 * spread to split along (then *m is unchanged).
 */
static int split_once(const vmf_classifier_opts *o, vmf_mixture **m, const float *x, size_t n,
                      size_t d, size_t iters, int *grown)
{
    *grown = 0;
    size_t k = (*m)->k;
    double *proba = vmf__malloc_array(n * k, sizeof *proba);
    double *t = vmf__malloc_array(n * d, sizeof *t);
    double *v = vmf__malloc_array(2 * d, sizeof *v);
    float *means = vmf__malloc_array((k + 1) * d, sizeof *means);
    vmf_mixture *nm = NULL;
    int rc = VMF_OK;
    if (!proba || !t || !v || !means) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory growing a class");
        goto done;
    }
    rc = vmf_mixture_predict_proba(*m, x, n, d, proba);
    if (rc != VMF_OK)
        goto done;
    size_t pick = 0;
    double best = -1.0;
    for (size_t c = 0; c < k; c++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += proba[i * k + c];
        if (s > best) {
            best = s;
            pick = c;
        }
    }
    const float *mu = (*m)->means + pick * d;
    double lambda = principal_tangent(x, n, d, mu, proba + pick, k, t, v, v + d);
    if (!(lambda > 1e-12))
        goto done;
    double sd = sqrt(lambda);
    memcpy(means, (*m)->means, k * d * sizeof *means);
    for (int side = 0; side < 2; side++) {
        float *dst = means + (side == 0 ? pick : k) * d;
        double nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            double a = (double)mu[j] + (side == 0 ? sd : -sd) * v[j];
            v[d + j] = a;
            nn += a * a;
        }
        nn = sqrt(nn);
        for (size_t j = 0; j < d; j++)
            dst[j] = (float)(v[d + j] / nn);
    }
    rc = em_from(o, x, n, d, k + 1, means, iters, &nm);
    if (rc != VMF_OK)
        goto done;
    vmf_mixture_free(*m);
    *m = nm;
    *grown = 1;
done:
    vmf__free(proba);
    vmf__free(t);
    vmf__free(v);
    vmf__free(means);
    return rc;
}

/*
 * Grows (a copy of) mixture m0 to `target` components on x [n][d] by repeated
 * splits, then optionally a final EM; *out receives the result (K may stay
 * below target when the rows have no spread left).
 */
static int grow_mixture(const vmf_classifier_opts *o, const vmf_mixture *m0, const float *x,
                        size_t n, size_t d, size_t target, size_t final_iter, vmf_mixture **out)
{
    *out = NULL;
    vmf_mixture *m;
    int rc = vmf_mixture_copy(m0, &m);
    if (rc != VMF_OK)
        return rc;
    while (m->k < target) {
        int grown;
        rc = split_once(o, &m, x, n, d, SPLIT_EM_ITER, &grown);
        if (rc != VMF_OK || !grown)
            break;
    }
    if (rc == VMF_OK && final_iter > 0) {
        vmf_mixture *f;
        rc = em_from(o, x, n, d, m->k, m->means, final_iter, &f);
        if (rc == VMF_OK) {
            vmf_mixture_free(m);
            m = f;
        }
    }
    if (rc != VMF_OK) {
        vmf_mixture_free(m);
        return rc;
    }
    *out = m;
    return VMF_OK;
}

/* Per-sample soft statistics of mixture m on x [n][d] into s0 [k], s1 [k][d]. */
static int sample_stats(const vmf_mixture *m, const float *x, size_t n, size_t d, double *s0,
                        double *s1)
{
    int rc = vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_SOFT, NULL, 0, s0, s1, NULL, NULL);
    if (rc != VMF_OK)
        return rc;
    double inv = 1.0 / (double)n;
    for (size_t j = 0; j < m->k; j++)
        s0[j] *= inv;
    for (size_t j = 0; j < m->k * d; j++)
        s1[j] *= inv;
    return VMF_OK;
}

/* Installs mixture m (taken over on success) with its statistics on x into the class. */
static int class_install(vmf__class *cl, vmf_mixture *m, const float *x, size_t n, size_t d)
{
    size_t k = m->k;
    double *s0 = vmf__malloc_array(k, sizeof *s0);
    double *s1 = vmf__malloc_array(k * d, sizeof *s1);
    int rc = (!s0 || !s1) ? vmf__error(VMF_ENOMEM, "classifier: out of memory") : VMF_OK;
    if (rc == VMF_OK)
        rc = sample_stats(m, x, n, d, s0, s1);
    if (rc == VMF_OK)
        rc = vmf__stepwise_reset(cl->sw, m, s0, s1);
    vmf__free(s0);
    vmf__free(s1);
    return rc;
}

static size_t target_k(const vmf_classifier_opts *o, uint64_t rows)
{
    uint64_t k = rows / o->rows_per_component;
    if (k < 1)
        k = 1;
    return k > o->k_max ? o->k_max : (size_t)k;
}

/* Rows a sample is first allocated for; it then doubles up to its capacity. */
#define SAMPLE_FIRST_ROWS 32

/*
 * Makes room in the class's sample for `more` rows beyond buf_n (up to
 * `cap`): a small class does not hold a full sample's memory.
 */
static int sample_reserve(vmf__class *cl, size_t more, size_t d, size_t cap)
{
    size_t want = cl->buf_n + more < cap ? cl->buf_n + more : cap;
    if (want <= cl->buf_cap)
        return VMF_OK;
    size_t grown = cl->buf_cap < SAMPLE_FIRST_ROWS ? SAMPLE_FIRST_ROWS : 2 * cl->buf_cap;
    grown = grown < want ? want : grown;
    grown = grown > cap ? cap : grown;
    float *b = vmf__realloc(cl->buf, grown * d * sizeof *b); /* grown <= cap: no overflow */
    if (!b)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for a %zu-row sample", grown);
    cl->buf = b;
    cl->buf_cap = grown;
    return VMF_OK;
}

int vmf__class_sample_alloc(vmf__class *cl, size_t rows, size_t d)
{
    size_t cap = rows > 0 ? rows : 1;
    float *b = vmf__malloc_array(cap * d, sizeof *b);
    if (!b)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for a %zu-row sample", cap);
    cl->buf = b;
    cl->buf_cap = cap;
    cl->buf_n = 0;
    return VMF_OK;
}

/* Adds rows x [n][d] to the class's growth sample (algorithm R past capacity). */
static int sample_rows(vmf__class *cl, const float *x, size_t n, size_t d, size_t cap, vmf_rng *rng)
{
    int rc = sample_reserve(cl, n, d, cap);
    if (rc != VMF_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t seen = cl->rows + i + 1;
        if (cl->buf_n < cap) {
            memcpy(cl->buf + cl->buf_n * d, x + i * d, d * sizeof *cl->buf);
            cl->buf_n++;
            continue;
        }
        uint64_t j = vmf_rng_below(rng, seen);
        if (j < cap)
            memcpy(cl->buf + j * d, x + i * d, d * sizeof *cl->buf);
    }
    return VMF_OK;
}

int vmf__class_thin(vmf__class *cl, size_t d, size_t cap, vmf_rng *rng)
{
    if (!cl->buf || cl->buf_n <= cap)
        return VMF_OK;
    /* The first cap slots of a partial Fisher-Yates shuffle. */
    float *t = vmf__malloc_array(d, sizeof *t);
    if (!t)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory thinning a sample");
    for (size_t i = 0; i < cap; i++) {
        size_t j = i + (size_t)vmf_rng_below(rng, cl->buf_n - i);
        if (j == i)
            continue;
        memcpy(t, cl->buf + i * d, d * sizeof *t);
        memcpy(cl->buf + i * d, cl->buf + j * d, d * sizeof *t);
        memcpy(cl->buf + j * d, t, d * sizeof *t);
    }
    vmf__free(t);
    cl->buf_n = cap;
    float *b = vmf__realloc(cl->buf, cap * d * sizeof *b);
    if (b) { /* a failed shrink keeps the larger block, which is as good */
        cl->buf = b;
        cl->buf_cap = cap;
    }
    return VMF_OK;
}

/* Learns rows x [n][d] of one class (a private copy, or a new class). */
int vmf__class_learn(const vmf_classifier_opts *o, vmf__class *cl, const float *x, size_t n,
                     size_t d, size_t cap, vmf_rng *rng)
{
    int fresh = cl->sw->m == NULL;
    if (cl->buf) {
        int rs = sample_rows(cl, x, n, d, cap, rng);
        if (rs != VMF_OK)
            return rs;
    }
    cl->rows += n;
    size_t target = target_k(o, cl->rows);
    int rc = VMF_OK;
    if (fresh || !cl->buf || target <= cl->sw->m->k) {
        rc = vmf_stepwise_update(cl->sw, x, n, d);
        if (rc != VMF_OK || !cl->buf || target <= cl->sw->m->k)
            goto check_done;
    }
    /* Grow from the sample; the batch is in the sample, so the refit learns it. */
    vmf_mixture *m;
    rc = grow_mixture(o, cl->sw->m, cl->buf, cl->buf_n, d, target, 0, &m);
    if (rc != VMF_OK)
        return rc;
    rc = class_install(cl, m, cl->buf, cl->buf_n, d);
    if (rc != VMF_OK) {
        vmf_mixture_free(m);
        return rc;
    }
    cl->sw->rows = cl->rows;
check_done:
    if (rc == VMF_OK && cl->buf && cl->sw->m->k >= o->k_max && o->refine_rows == 0) {
        vmf__free(cl->buf);
        cl->buf = NULL;
        cl->buf_n = cl->buf_cap = 0;
    }
    return rc;
}

int vmf__class_new(const vmf_classifier_opts *o, size_t d, size_t cap, vmf__class **out)
{
    *out = NULL;
    vmf__class *cl = vmf__calloc(1, sizeof *cl);
    if (!cl)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for a class");
    vmf_stepwise_opts so;
    vmf__classifier_sw_opts(o, 1, &so);
    int rc = vmf__stepwise_new_clock(&so, d, VMF__CLOCK_ROWS, &cl->sw);
    if (rc == VMF_OK && (o->k_max > 1 || o->refine_rows > 0)) {
        rc = sample_reserve(cl, SAMPLE_FIRST_ROWS, d, cap);
    }
    if (rc != VMF_OK) {
        vmf__class_free(cl);
        return rc;
    }
    *out = cl;
    return VMF_OK;
}

/*
 * Batch fit of one class on all its rows x [n][d]: one component (the mean
 * direction), grown by splits to K(n), then EM to convergence. The growth
 * sample is filled as if the rows had streamed in.
 */
int vmf__class_fit(const vmf_classifier_opts *o, const float *x, size_t n, size_t d, size_t cap,
                   vmf_rng *rng, vmf__class **out)
{
    *out = NULL;
    vmf__class *cl;
    int rc = vmf__class_new(o, d, cap, &cl);
    if (rc != VMF_OK)
        return rc;
    vmf_mixture *m1 = NULL, *m = NULL;
    float *mean = vmf__calloc(d, sizeof *mean);
    if (!mean) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory");
        goto done;
    }
    double *acc = vmf__calloc(d, sizeof *acc);
    if (!acc) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            acc[j] += (double)x[i * d + j];
    double nn = 0.0;
    for (size_t j = 0; j < d; j++)
        nn += acc[j] * acc[j];
    nn = sqrt(nn);
    for (size_t j = 0; j < d; j++)
        mean[j] = nn > 0.0 ? (float)(acc[j] / nn) : (j == 0 ? 1.0f : 0.0f);
    vmf__free(acc);
    rc = em_from(o, x, n, d, 1, mean, 1, &m1);
    if (rc == VMF_OK)
        rc = grow_mixture(o, m1, x, n, d, target_k(o, n), FINAL_EM_ITER, &m);
    if (rc == VMF_OK) {
        rc = class_install(cl, m, x, n, d);
        if (rc != VMF_OK)
            vmf_mixture_free(m);
    }
    if (rc != VMF_OK)
        goto done;
    cl->sw->steps = (n + o->stepwise.minibatch - 1) / o->stepwise.minibatch;
    if (cl->buf && (cl->sw->m->k < o->k_max || o->refine_rows > 0))
        rc = sample_rows(cl, x, n, d, cap, rng);
    else {
        vmf__free(cl->buf);
        cl->buf = NULL;
        cl->buf_n = cl->buf_cap = 0;
    }
    if (rc != VMF_OK)
        goto done;
    cl->rows = n;
    cl->sw->rows = n;
done:
    vmf__free(mean);
    vmf_mixture_free(m1);
    if (rc != VMF_OK) {
        vmf__class_free(cl);
        return rc;
    }
    *out = cl;
    return VMF_OK;
}
