/*
 * test_em.c - batch EM for vMF mixtures: parameter recovery on synthetic
 * mixtures (soft, hard, stochastic, tied kappa, given init, d = 64 and 512),
 * the stopping rule, restarts, determinism, re-seeding on degenerate data,
 * bad input and injected allocation failures.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Floors for the real-data check (measured with seed 42: NMI 0.758 on the
 * test split; held-out log-likelihood +40.9 nats per row from K = 1 to 10).
 */
#define FMNIST_MIN_NMI  0.70
#define FMNIST_MIN_GAIN 30.0

/* Synthetic data and its truth. */
typedef struct truth {
    size_t n, d, k;
    float *x, *mu;
    int32_t *comp;
    double *kap, *w;
} truth;

static void truth_make(truth *t, uint64_t seed, size_t n, size_t d, size_t k, double lo, double hi)
{
    t->n = n;
    t->d = d;
    t->k = k;
    t->x = malloc(n * d * sizeof *t->x);
    t->mu = malloc(k * d * sizeof *t->mu);
    t->comp = malloc(n * sizeof *t->comp);
    t->kap = malloc(k * sizeof *t->kap);
    t->w = malloc(k * sizeof *t->w);
    assert_true(t->x && t->mu && t->comp && t->kap && t->w);
    vmf_test_mixture_data(seed, n, d, k, lo, hi, t->x, t->comp, t->mu, t->kap, t->w);
}

static void truth_free(truth *t)
{
    free(t->x);
    free(t->mu);
    free(t->comp);
    free(t->kap);
    free(t->w);
}

/*
 * Matches each true component to the fitted one of highest cosine and
 * checks that this is a permutation; writes match[true] = fitted and the
 * smallest matched cosine.
 */
static double match_components(const truth *t, const vmf_mixture *m, size_t *match)
{
    const float *mu = vmf_mixture_means(m);
    double worst = 1.0;
    int *seen = calloc(t->k, sizeof *seen);
    for (size_t a = 0; a < t->k; a++) {
        double best = -2.0;
        for (size_t b = 0; b < t->k; b++) {
            double dot = 0.0;
            for (size_t j = 0; j < t->d; j++)
                dot += (double)t->mu[a * t->d + j] * mu[b * t->d + j];
            if (dot > best) {
                best = dot;
                match[a] = b;
            }
        }
        assert_false(seen[match[a]]);
        seen[match[a]] = 1;
        if (best < worst)
            worst = best;
    }
    free(seen);
    return worst;
}

static double nmi_of(const truth *t, const vmf_mixture *m)
{
    int32_t *lab = malloc(t->n * sizeof *lab);
    vmf_assert_ok(vmf_mixture_predict(m, t->x, t->n, t->d, lab));
    double nmi;
    vmf_assert_ok(vmf_nmi(t->comp, lab, t->n, &nmi));
    free(lab);
    return nmi;
}

/* Every parameter finite, weights sum to 1, means unit. */
static void assert_sane(const vmf_mixture *m, double kappa_max)
{
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m);
    double ws = 0.0;
    for (size_t c = 0; c < k; c++) {
        double w = vmf_mixture_weights(m)[c], kap = vmf_mixture_kappas(m)[c];
        assert_true(isfinite(w) && w >= 0.0);
        assert_true(isfinite(kap) && kap >= 0.0 && kap <= kappa_max);
        ws += w;
        double nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            float v = vmf_mixture_means(m)[c * d + j];
            assert_true(isfinite(v));
            nn += (double)v * v;
        }
        vmf_assert_close(sqrt(nn), 1.0, 0, 1e-5);
    }
    vmf_assert_close(ws, 1.0, 1e-12, 0);
}

/*
 * Soft EM recovers means (cos > 0.999), kappas (5 %), weights (0.01) and
 * labels (NMI > 0.95) of 20000 rows from K = 10 components with kappa in
 * [lo, hi].
 */
static void recovery(size_t d, uint64_t seed, double lo, double hi)
{
    truth t;
    truth_make(&t, seed, 20000, d, 10, lo, hi);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 10;
    o.n_init = 3;
    o.seed = seed;
    vmf_mixture *m;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    size_t match[10];
    double worst = match_components(&t, m, match);
    print_message("d=%zu: worst cosine %.6f, %zu iterations, loglik %.6f, converged %d\n", d, worst,
                  rep.n_iter, rep.loglik, rep.converged);
    assert_true(worst > 0.999);
    for (size_t c = 0; c < t.k; c++) {
        vmf_assert_close(vmf_mixture_kappas(m)[match[c]], t.kap[c], 0.05, 0);
        vmf_assert_close(vmf_mixture_weights(m)[match[c]], t.w[c], 0, 0.01);
    }
    assert_true(nmi_of(&t, m) > 0.95);
    assert_true(rep.converged);
    assert_true(rep.n_iter >= 1 && rep.n_iter < o.max_iter);
    assert_true(rep.loglik == rep.trace[rep.n_iter - 1]);
    /* The EM kernel's log-likelihood agrees with the libm scoring. */
    double ll;
    vmf_assert_ok(vmf_mixture_mean_loglik(m, t.x, t.n, t.d, &ll));
    vmf_assert_close(rep.loglik, ll, 0, 1e-5);
    /* Soft EM never decreases the likelihood (beyond float32 rounding) without re-seeding. */
    assert_int_equal(rep.n_reseeded, 0);
    for (size_t i = 1; i < rep.n_iter; i++)
        assert_true(rep.trace[i] >= rep.trace[i - 1] - 1e-6);
    assert_sane(m, o.kappa.kappa_max);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    truth_free(&t);
}

static void test_recovery_d64(void **state)
{
    (void)state;
    recovery(64, 101, 50.0, 200.0);
}

/*
 * The same difficulty in d = 512 needs kappa scaled with d. The mean
 * direction estimated from n rows is off by about sqrt((1 - A^2) / n) / A
 * radians, A = A_d(kappa) ~ kappa / d for kappa << d: kappa in [50, 200]
 * gives A = 0.55..0.87 in d = 64 but only 0.10..0.34 in d = 512, i.e. an
 * angle of 0.06..0.23 rad for ~2000 rows, so that no estimator (not even EM
 * started at the true means) reaches cos > 0.999 there. kappa in [400, 1600]
 * gives A = 0.55..0.87 again in d = 512.
 */
static void test_recovery_d512(void **state)
{
    (void)state;
    recovery(512, 102, 400.0, 1600.0);
}

/* Hard and stochastic EM, tied kappa, given init. */
static void test_modes(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 201, 6000, 32, 6, 80.0, 80.0);
    for (int mode = 0; mode < 3; mode++) {
        for (int tied = 0; tied < 2; tied++) {
            vmf_em_opts o;
            vmf_em_opts_init(&o);
            o.n_components = 6;
            o.assignment = (vmf_assignment)mode;
            o.tied_kappa = tied;
            o.n_init = 2;
            o.max_iter = 50;
            o.tol = mode == VMF_ASSIGN_STOCHASTIC ? 1e-3 : 1e-6;
            vmf_mixture *m;
            vmf_em_report rep;
            vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
            size_t match[6];
            double worst = match_components(&t, m, match);
            double nmi = nmi_of(&t, m);
            print_message("mode %d tied %d: cos %.5f nmi %.4f iter %zu kappa0 %.2f\n", mode, tied,
                          worst, nmi, rep.n_iter, vmf_mixture_kappas(m)[0]);
            assert_true(worst > 0.995);
            assert_true(nmi > 0.95);
            assert_int_equal(vmf_mixture_tied_kappa(m), tied);
            for (size_t c = 0; c < t.k; c++) {
                if (tied)
                    assert_true(vmf_mixture_kappas(m)[c] == vmf_mixture_kappas(m)[0]);
                vmf_assert_close(vmf_mixture_kappas(m)[c], 80.0, 0.08, 0);
                vmf_assert_close(vmf_mixture_weights(m)[match[c]], t.w[c], 0, 0.02);
            }
            assert_int_equal(vmf_mixture_n_params(m), 5 + 6 * 31 + (tied ? 1 : 6));
            assert_sane(m, o.kappa.kappa_max);
            vmf_em_report_free(&rep);
            vmf_mixture_free(m);
        }
    }
    /* Given init at the true means: the components keep their order. */
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 6;
    o.init = VMF_INIT_GIVEN;
    o.init_means = t.mu;
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, NULL));
    size_t match[6];
    assert_true(match_components(&t, m, match) > 0.999);
    for (size_t c = 0; c < 6; c++)
        assert_int_equal(match[c], c);
    vmf_mixture_free(m);
    /* Random init works too. */
    o.init = VMF_INIT_RANDOM;
    o.n_init = 3;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, NULL));
    assert_true(nmi_of(&t, m) > 0.95);
    vmf_mixture_free(m);
    truth_free(&t);
}

/* tol = 0 runs exactly max_iter iterations; max_iter = 0 returns the initialized model. */
static void test_tol_zero_and_max_iter(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 301, 2000, 16, 4, 20.0, 40.0);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 4;
    o.tol = 0.0;
    o.max_iter = 37;
    vmf_mixture *m;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    assert_int_equal(rep.n_iter, 37);
    assert_int_equal(rep.converged, 0);
    assert_true(rep.loglik == rep.trace[36]);
    vmf_em_report_free(&rep);
    assert_null(rep.trace);
    vmf_mixture_free(m);
    o.max_iter = 0;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    assert_int_equal(rep.n_iter, 0);
    assert_true(isfinite(rep.loglik));
    assert_sane(m, o.kappa.kappa_max);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    /* A loose tolerance stops early and says so. */
    o.max_iter = 100;
    o.tol = 1e-2;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    assert_true(rep.converged);
    assert_true(rep.n_iter < 100);
    assert_true(rep.n_iter < 2 ||
                fabs(rep.trace[rep.n_iter - 1] - rep.trace[rep.n_iter - 2]) < 1e-2);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    truth_free(&t);
}

/*
 * Restarts: restart 0 of an n_init = 6 fit is the n_init = 1 fit with the
 * same seed, so the kept restart is at least as good; with overlapping
 * clusters and random init, restarts differ.
 */
static void test_n_init_and_determinism(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 401, 3000, 8, 12, 5.0, 15.0);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 12;
    o.init = VMF_INIT_RANDOM;
    o.assignment = VMF_ASSIGN_STOCHASTIC;
    o.max_iter = 30;
    vmf_mixture *one, *one2, *six;
    vmf_em_report r1, r1b, r6;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &one, &r1));
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &one2, &r1b));
    /* Same seed, input and thread count: the same bits, trace included. */
    vmf_test_assert_same_mixture(one, one2);
    assert_int_equal(r1.n_iter, r1b.n_iter);
    assert_memory_equal(r1.trace, r1b.trace, r1.n_iter * sizeof(double));
    o.n_init = 6;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &six, &r6));
    print_message("one restart %.6f, best of six %.6f (restart %zu)\n", r1.loglik, r6.loglik,
                  r6.best_init);
    assert_true(r6.best_init < 6);
    assert_true(r6.loglik >= r1.loglik);
    if (r6.best_init == 0)
        vmf_test_assert_same_mixture(one, six);
    else
        assert_true(r6.loglik > r1.loglik);
    double ll;
    vmf_assert_ok(vmf_mixture_mean_loglik(six, t.x, t.n, t.d, &ll));
    vmf_assert_close(r6.loglik, ll, 0, 1e-5);
    /* Another seed gives another fit. */
    o.n_init = 1;
    o.seed = 43;
    vmf_mixture *other;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &other, NULL));
    assert_true(
        memcmp(vmf_mixture_means(one), vmf_mixture_means(other), t.k * t.d * sizeof(float)) != 0);
    vmf_mixture_free(other);
    /* Soft EM is deterministic across block sizes' own runs too. */
    o.assignment = VMF_ASSIGN_SOFT;
    o.block_rows = 100;
    vmf_mixture *s1, *s2;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &s1, NULL));
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &s2, NULL));
    vmf_test_assert_same_mixture(s1, s2);
    vmf_mixture_free(s1);
    vmf_mixture_free(s2);
    vmf_em_report_free(&r1);
    vmf_em_report_free(&r1b);
    vmf_em_report_free(&r6);
    vmf_mixture_free(one);
    vmf_mixture_free(one2);
    vmf_mixture_free(six);
    truth_free(&t);
}

/*
 * Degenerate data: 3 distinct points repeated, more components than
 * distinct points, one point only. Components collapse onto single points
 * and are re-seeded; nothing is NaN or infinite and kappa stays at most
 * kappa_max.
 */
static void test_degenerate(void **state)
{
    (void)state;
    const size_t d = 16, n = 300;
    float *x = malloc(n * d * sizeof *x), pts[3 * 16];
    vmf_rng rng;
    vmf_rng_seed(&rng, 7);
    vmf_assert_ok(vmf_sample_uniform(d, 3, &rng, pts));
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * d, pts + (i % 3) * d, d * sizeof *x);
    for (int mode = 0; mode < 3; mode++) {
        for (size_t k = 1; k <= 8; k++) {
            vmf_em_opts o;
            vmf_em_opts_init(&o);
            o.n_components = k;
            o.assignment = (vmf_assignment)mode;
            o.max_iter = 20;
            o.kappa.kappa_max = 1e4;
            vmf_mixture *m;
            vmf_em_report rep;
            vmf_assert_ok(vmf_mixture_fit(&o, x, n, d, &m, &rep));
            assert_sane(m, 1e4);
            assert_true(isfinite(rep.loglik));
            for (size_t i = 0; i < rep.n_iter; i++)
                assert_true(isfinite(rep.trace[i]));
            double ll;
            vmf_assert_ok(vmf_mixture_mean_loglik(m, x, n, d, &ll));
            assert_true(isfinite(ll));
            vmf_em_report_free(&rep);
            vmf_mixture_free(m);
        }
    }
    /* A single row, K = 1: rbar = 1 yet kappa stays finite (shrinkage). */
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 1;
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_fit(&o, x, 1, d, &m, NULL));
    assert_sane(m, o.kappa.kappa_max);
    vmf_mixture_free(m);
    /* All rows identical, K = 4: k-means++ falls back to uniform picks. */
    vmf_em_report rep;
    o.n_components = 4;
    o.min_mass = 50.0; /* forces re-seeding every iteration */
    vmf_assert_ok(vmf_mixture_fit(&o, x, 4, d, &m, &rep));
    assert_sane(m, o.kappa.kappa_max);
    assert_true(rep.n_reseeded > 0);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    free(x);
}

/* Re-seeding moves an empty component onto the worst-explained row. */
static double cosine_to_row(const vmf_mixture *m, size_t c, const float *row)
{
    size_t d = vmf_mixture_dim(m);
    double dot = 0.0;
    for (size_t j = 0; j < d; j++)
        dot += (double)vmf_mixture_means(m)[c * d + j] * row[j];
    return dot;
}

/*
 * Re-seeding: starved components move, in index order, onto the worst-
 * explained rows (worst first), take the median kappa of the others and
 * weight 1/n before renormalization.
 */
static void test_reseed_rule(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 501, 1000, 8, 2, 200.0, 200.0);
    /* Outliers: row 999 antipodal to mean 0 (the worst), row 998 between -mu0 and mu1. */
    double nn = 0.0;
    for (size_t j = 0; j < t.d; j++) {
        t.x[999 * t.d + j] = -t.mu[j];
        double v = -(double)t.mu[j] + 0.5 * t.mu[8 + j];
        t.x[998 * t.d + j] = (float)v;
        nn += v * v;
    }
    for (size_t j = 0; j < t.d; j++)
        t.x[998 * t.d + j] = (float)(t.x[998 * t.d + j] / sqrt(nn));
    /* Init: both true means plus two duplicates of mean 0, which starve. */
    float init[4 * 8];
    memcpy(init, t.mu, 8 * sizeof *init);
    memcpy(init + 8, t.mu + 8, 8 * sizeof *init);
    memcpy(init + 16, t.mu, 8 * sizeof *init);
    memcpy(init + 24, t.mu, 8 * sizeof *init);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 4;
    o.init = VMF_INIT_GIVEN;
    o.init_means = init;
    o.max_iter = 1;
    o.search = 0; /* the rule itself, without the split-and-merge search */
    vmf_mixture *m;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    /* The duplicates got no row in the nearest-mean pass (ties go to component 0). */
    assert_int_equal(rep.n_reseeded, 2);
    vmf_assert_close(cosine_to_row(m, 2, t.x + 999 * t.d), 1.0, 0, 1e-6);
    vmf_assert_close(cosine_to_row(m, 3, t.x + 998 * t.d), 1.0, 0, 1e-6);
    /* Each owns its single row: weight ~1/n after the M-step. */
    vmf_assert_close(vmf_mixture_weights(m)[2], 1.0 / 1000.0, 0.01, 0);
    vmf_assert_close(vmf_mixture_weights(m)[3], 1.0 / 1000.0, 0.01, 0);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);

    /*
     * A component re-seeded onto an outlier keeps it (its mass is just below
     * one row, above the default threshold): no cycling over 30 iterations.
     */
    o.n_components = 3;
    o.max_iter = 30;
    o.tol = 0.0;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    assert_int_equal(rep.n_reseeded, 1);
    int32_t owner;
    vmf_assert_ok(vmf_mixture_predict(m, t.x + 999 * t.d, 1, t.d, &owner));
    assert_int_equal(owner, 2);
    o.n_components = 4;
    o.max_iter = 1;
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);

    /* max_iter = 0 shows the rule itself: kappa = median of the others, weight 1/n. */
    o.max_iter = 0;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    assert_int_equal(rep.n_reseeded, 2);
    const double *kap = vmf_mixture_kappas(m), *w = vmf_mixture_weights(m);
    vmf_assert_close(kap[2], 0.5 * (kap[0] + kap[1]), 1e-15, 0);
    vmf_assert_close(kap[3], kap[2], 0, 0);
    /* Before: w0 + w1 = 1 and the starved ones 0; after: 1/n each, then / (1 + 2/n). */
    vmf_assert_close(w[2], (1.0 / 1000.0) / (1.0 + 2.0 / 1000.0), 1e-12, 0);
    vmf_assert_close(w[3], w[2], 0, 0);
    vmf_assert_close(w[0] + w[1] + w[2] + w[3], 1.0, 1e-15, 0);
    assert_memory_equal(vmf_mixture_means(m) + 16, t.x + 999 * t.d, 8 * sizeof(float));
    assert_memory_equal(vmf_mixture_means(m) + 24, t.x + 998 * t.d, 8 * sizeof(float));
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    truth_free(&t);
}

static void test_bad_input(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 601, 50, 8, 2, 10.0, 10.0);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 2;
    vmf_mixture *m = (vmf_mixture *)1;
    vmf_em_report rep;
    memset(&rep, 0xff, sizeof rep);
    /* n < K */
    o.n_components = 51;
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "n >= K"));
    assert_null(m);
    assert_null(rep.trace);
    assert_int_equal(rep.n_iter, 0);
    /* K = 0 */
    o.n_components = 0;
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "n_components"));
    o.n_components = 2;
    /* d mismatch: the data read with the wrong row length is not unit-norm */
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n / 2, t.d * 2, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "norm"));
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n, 1, &m, &rep), VMF_EINVAL);
    /* NaN and a non-unit row */
    float keep = t.x[3 * t.d + 1];
    t.x[3 * t.d + 1] = NAN;
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 3"));
    t.x[3 * t.d + 1] = 2.0f;
    assert_int_equal(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 3"));
    t.x[3 * t.d + 1] = keep;
    /* Options */
    vmf_em_opts bad = o;
    bad.n_init = 0;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    bad = o;
    bad.tol = -1.0;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    bad = o;
    bad.init = VMF_INIT_GIVEN;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "init_means"));
    float zero_means[16] = {0};
    bad.init_means = zero_means;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "init_means"));
    bad = o;
    bad.kappa.prior_rbar = 1.0;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    bad = o;
    bad.assignment = (vmf_assignment)7;
    assert_int_equal(vmf_mixture_fit(&bad, t.x, t.n, t.d, &m, &rep), VMF_EINVAL);
    /* NULL options are the defaults (vmfmm.h; tests/core/test_null_opts.c), not an error. */
    assert_int_equal(vmf_mixture_fit(&o, NULL, t.n, t.d, &m, &rep), VMF_EINVAL);
    assert_null(m);
    truth_free(&t);
}

/* Each allocation of a fit may fail: VMF_ENOMEM, no model, no leak (ASan). */
static void test_alloc_failures(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 701, 200, 8, 3, 20.0, 20.0);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 3;
    o.n_init = 2;
    o.max_iter = 80; /* enough iterations to grow the trace */
    o.tol = 0.0;
    o.block_rows = 64;
    int done = 0;
    for (long fail_at = 0; !done; fail_at++) {
        assert_true(fail_at < 100000);
        vmf_mixture *m = (vmf_mixture *)1;
        vmf_em_report rep;
        vmf_debug_fail_alloc_after(fail_at);
        int rc = vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK) {
            done = 1;
            assert_int_equal(rep.n_iter, 80);
            vmf_em_report_free(&rep);
            vmf_mixture_free(m);
        } else {
            assert_int_equal(rc, VMF_ENOMEM);
            assert_null(m);
            assert_null(rep.trace);
        }
    }
    truth_free(&t);
}

/*
 * Real embeddings (tests/data/fmnist-cce64, 64-d Fashion-MNIST): on the
 * balanced test split, K = 10 clusters agree with the 10 classes; fitted on
 * the stream rows, more components explain the held-out rows better and BIC
 * prefers K = 10 over K = 1.
 */
static void test_fmnist(void **state)
{
    (void)state;
    char path[4096];
    vmf_array ax = {0}, ay = {0}, as = {0};
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path("fmnist-cce64.X.npy", path, sizeof path), &ax));
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path("fmnist-cce64.y.npy", path, sizeof path), &ay));
    vmf_assert_ok(
        vmf_npy_read(vmf_test_data_path("fmnist-cce64.split.npy", path, sizeof path), &as));
    float *x;
    size_t n, d;
    vmf_assert_ok(vmf_array_to_f32(&ax, &x, &n, &d));
    assert_int_equal(d, 64);
    assert_int_equal(ay.dtype, VMF_DTYPE_I32);
    assert_int_equal(as.dtype, VMF_DTYPE_U8);
    const int32_t *y = ay.data;
    const uint8_t *split = as.data;
    /* Rows are stream first, then test: find the boundary. */
    size_t n_train = 0;
    while (n_train < n && split[n_train] == 0)
        n_train++;
    size_t n_test = n - n_train;
    const float *xt = x + n_train * d;

    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 10;
    o.n_init = 3;
    vmf_mixture *m;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, xt, n_test, d, &m, &rep));
    int32_t *lab = malloc(n_test * sizeof *lab);
    vmf_assert_ok(vmf_mixture_predict(m, xt, n_test, d, lab));
    double nmi;
    vmf_assert_ok(vmf_nmi(y + n_train, lab, n_test, &nmi));
    print_message("fmnist test split, K=10: NMI %.4f, %zu iterations, loglik %.4f\n", nmi,
                  rep.n_iter, rep.loglik);
    assert_true(nmi > FMNIST_MIN_NMI);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);

    double held[2], bic[2];
    size_t ks[2] = {1, 10};
    for (int i = 0; i < 2; i++) {
        o.n_components = ks[i];
        vmf_assert_ok(vmf_mixture_fit(&o, x, n_train, d, &m, NULL));
        vmf_assert_ok(vmf_mixture_mean_loglik(m, xt, n_test, d, &held[i]));
        vmf_assert_ok(vmf_mixture_information_criteria(m, x, n_train, d, &bic[i], NULL));
        vmf_mixture_free(m);
    }
    print_message("held-out loglik K=1 %.4f K=10 %.4f; BIC %.1f %.1f\n", held[0], held[1], bic[0],
                  bic[1]);
    assert_true(held[1] > held[0] + FMNIST_MIN_GAIN);
    assert_true(bic[1] < bic[0]);
    free(lab);
    free(x);
    vmf_array_free(&ax);
    vmf_array_free(&ay);
    vmf_array_free(&as);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovery_d64),
        cmocka_unit_test(test_recovery_d512),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_tol_zero_and_max_iter),
        cmocka_unit_test(test_n_init_and_determinism),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_reseed_rule),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_fmnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
