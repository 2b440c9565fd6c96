/*
 * test_em_recovery.c - the default fit (vmf_em_opts_init, only K and the
 * seed set) finds the right clustering: ten seeds each of a d = 64, K = 10
 * mixture and of a CLIP-like d = 768, K = 20 one, equal weights, drawn with
 * the library's sampler (vmf_mixture_sample); unequal weights reach the
 * optimum EM reaches from the truth; a missing cluster in d = 768 is
 * recovered from a start that lacks it; the bounded E-step ends where the
 * dense path ends; the stopping rule triggers at d = 768.
 *
 * Labelled slow (about half a minute in a Release build, far more under
 * the sanitizers).
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct truth {
    size_t n, d, k;
    float *x, *mu;
    double *kap, *w;
    double loglik; /* mean log-likelihood of x under the true parameters */
} truth;

/*
 * Equal weights (the acceptance cases), or with dirichlet != 0 the weights of
 * vmf_test_mixture_data (Dirichlet(5), some components of a few hundred rows).
 */
static void truth_make_w(truth *t, uint64_t seed, size_t n, size_t d, size_t k, double lo,
                         double hi, int dirichlet)
{
    t->n = n;
    t->d = d;
    t->k = k;
    t->x = malloc(n * d * sizeof *t->x);
    t->mu = malloc(k * d * sizeof *t->mu);
    t->kap = malloc(k * sizeof *t->kap);
    t->w = malloc(k * sizeof *t->w);
    assert_true(t->x && t->mu && t->kap && t->w);
    vmf_mixture *m;
    if (dirichlet) {
        vmf_test_mixture_data(seed, n, d, k, lo, hi, t->x, NULL, t->mu, t->kap, t->w);
        vmf_assert_ok(vmf_mixture_new(k, d, t->w, t->mu, t->kap, &m));
    } else {
        vmf_rng rng;
        vmf_rng_seed(&rng, seed);
        vmf_assert_ok(vmf_sample_uniform(d, k, &rng, t->mu));
        for (size_t c = 0; c < k; c++) {
            t->kap[c] = lo + (hi - lo) * vmf_rng_uniform(&rng);
            t->w[c] = 1.0 / (double)k;
        }
        vmf_assert_ok(vmf_mixture_new(k, d, t->w, t->mu, t->kap, &m));
        vmf_assert_ok(vmf_mixture_sample(m, n, &rng, t->x, NULL));
    }
    vmf_assert_ok(vmf_mixture_mean_loglik(m, t->x, n, d, &t->loglik));
    vmf_mixture_free(m);
}

static void truth_make(truth *t, uint64_t seed, size_t n, size_t d, size_t k, double lo, double hi)
{
    truth_make_w(t, seed, n, d, k, lo, hi, 0);
}

static void truth_free(truth *t)
{
    free(t->x);
    free(t->mu);
    free(t->kap);
    free(t->w);
}

/* Fitted component of highest cosine for each true one; returns the smallest such cosine. */
static double match(const truth *t, const vmf_mixture *m, size_t *best)
{
    const float *mu = vmf_mixture_means(m);
    double worst = 1.0;
    for (size_t a = 0; a < t->k; a++) {
        double top = -2.0;
        for (size_t b = 0; b < t->k; b++) {
            double dot = 0.0;
            for (size_t j = 0; j < t->d; j++)
                dot += (double)t->mu[a * t->d + j] * mu[b * t->d + j];
            if (dot > top) {
                top = dot;
                best[a] = b;
            }
        }
        worst = top < worst ? top : worst;
    }
    return worst;
}

static vmf_mixture *default_fit(const truth *t, uint64_t seed, vmf_em_report *rep)
{
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = t->k;
    o.seed = seed;
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_fit(&o, t->x, t->n, t->d, &m, rep));
    return m;
}

/* d = 64, K = 10, kappa in [50, 200]: every parameter recovered for 10 of 10 seeds. */
static void test_default_d64(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        truth t;
        truth_make(&t, seed, 20000, 64, 10, 50.0, 200.0);
        vmf_em_report rep;
        vmf_mixture *m = default_fit(&t, seed, &rep);
        size_t best[10];
        double worst = match(&t, m, best), kerr = 0.0, werr = 0.0;
        for (size_t c = 0; c < t.k; c++) {
            double ke = fabs(vmf_mixture_kappas(m)[best[c]] / t.kap[c] - 1.0);
            double we = fabs(vmf_mixture_weights(m)[best[c]] - t.w[c]);
            kerr = ke > kerr ? ke : kerr;
            werr = we > werr ? we : werr;
        }
        print_message("seed %llu: worst cosine %.5f, kappa error %.4f, weight error %.4f, "
                      "%zu + %zu search iterations, %zu moves\n",
                      (unsigned long long)seed, worst, kerr, werr, rep.n_iter, rep.n_search_iter,
                      rep.n_moves);
        assert_true(worst > 0.999);
        assert_true(kerr < 0.05);
        assert_true(werr < 0.01);
        assert_true(rep.converged);
        vmf_em_report_free(&rep);
        vmf_mixture_free(m);
        truth_free(&t);
    }
}

/*
 * Unequal weights (Dirichlet(5): components down to ~700 rows, whose mean a
 * maximum-likelihood fit places only within cosine ~0.998): the default fit
 * reaches the optimum that EM started from the true parameters reaches.
 */
static void test_default_d64_unequal(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        truth t;
        truth_make_w(&t, seed, 20000, 64, 10, 50.0, 200.0, 1);
        vmf_em_report rep, rt;
        vmf_mixture *m = default_fit(&t, seed, &rep);
        vmf_em_opts o;
        vmf_em_opts_init(&o);
        o.n_components = t.k;
        o.init = VMF_INIT_GIVEN;
        o.init_means = t.mu;
        o.search = 0;
        vmf_mixture *mt;
        vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &mt, &rt));
        double ll, llt;
        vmf_assert_ok(vmf_mixture_mean_loglik(m, t.x, t.n, t.d, &ll));
        vmf_assert_ok(vmf_mixture_mean_loglik(mt, t.x, t.n, t.d, &llt));
        print_message("seed %llu: default - from truth %+.2e nats per row\n",
                      (unsigned long long)seed, ll - llt);
        vmf_assert_close(ll, llt, 0, 1e-3);
        vmf_em_report_free(&rep);
        vmf_em_report_free(&rt);
        vmf_mixture_free(m);
        vmf_mixture_free(mt);
        truth_free(&t);
    }
}

/*
 * d = 768, K = 20, kappa in [220, 2000], 50,000 rows: within 0.1 nats per
 * row of the true parameters' log-likelihood for at least 9 of 10 seeds,
 * and converged (the relative stopping rule triggers at d = 768).
 */
static void test_default_d768(void **state)
{
    (void)state;
    int good = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        truth t;
        truth_make(&t, seed, 50000, 768, 20, 220.0, 2000.0);
        vmf_em_report rep;
        vmf_mixture *m = default_fit(&t, seed, &rep);
        double ll;
        vmf_assert_ok(vmf_mixture_mean_loglik(m, t.x, t.n, t.d, &ll));
        print_message("seed %llu: loglik - truth %+.4f, %zu + %zu search iterations, %zu moves, "
                      "converged %d, %.2f s\n",
                      (unsigned long long)seed, ll - t.loglik, rep.n_iter, rep.n_search_iter,
                      rep.n_moves, rep.converged, rep.seconds);
        good += ll > t.loglik - 0.1;
        assert_true(rep.converged);
        assert_true(rep.n_iter < 100);
        vmf_em_report_free(&rep);
        vmf_mixture_free(m);
        truth_free(&t);
    }
    assert_true(good >= 9);
}

/*
 * Re-seeding in high dimension: start (given means) with two copies of
 * cluster 0's mean and none near cluster 9; the default fit still finds
 * all ten clusters.
 */
static void test_missing_cluster_d768(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 77, 20000, 768, 10, 220.0, 2000.0);
    float *init = malloc(t.k * t.d * sizeof *init);
    assert_non_null(init);
    memcpy(init, t.mu, t.k * t.d * sizeof *init);
    memcpy(init + 9 * t.d, t.mu, t.d * sizeof *init);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = t.k;
    o.init = VMF_INIT_GIVEN;
    o.init_means = init;
    vmf_mixture *m;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m, &rep));
    size_t best[10];
    double worst = match(&t, m, best), ll;
    vmf_assert_ok(vmf_mixture_mean_loglik(m, t.x, t.n, t.d, &ll));
    print_message("worst cosine %.5f, loglik - truth %+.4f, %zu moves\n", worst, ll - t.loglik,
                  rep.n_moves);
    assert_true(rep.n_moves >= 1);
    assert_true(worst > 0.99);
    assert_true(ll > t.loglik - 0.1);
    /* Without the search, the old rule leaves the cluster missing. */
    o.search = 0;
    vmf_em_report rep0;
    vmf_mixture *m0;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &m0, &rep0));
    assert_true(match(&t, m0, best) < 0.9);
    vmf_em_report_free(&rep);
    vmf_em_report_free(&rep0);
    vmf_mixture_free(m);
    vmf_mixture_free(m0);
    free(init);
    truth_free(&t);
}

/*
 * The bounded E-step (default) and the dense path (exact = 1) from the same
 * start, the same 15 iterations: final mean log-likelihoods within 1e-6 per
 * row, and most row visits skipped once settled.
 */
static void test_bounded_matches_dense(void **state)
{
    (void)state;
    truth t;
    truth_make(&t, 5, 20000, 64, 10, 50.0, 200.0);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = t.k;
    o.init = VMF_INIT_GIVEN;
    o.init_means = t.mu;
    o.tol = 0.0;
    o.max_iter = 15;
    vmf_mixture *mb, *md;
    vmf_em_report rb, rd;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &mb, &rb));
    o.exact = 1;
    vmf_assert_ok(vmf_mixture_fit(&o, t.x, t.n, t.d, &md, &rd));
    print_message("bounded %.9f dense %.9f, skipped %.3f\n", rb.loglik, rd.loglik, rb.skipped_rows);
    vmf_assert_close(rb.loglik, rd.loglik, 0, 1e-6);
    assert_true(rb.skipped_rows > 0.5);
    assert_true(rd.skipped_rows == 0.0);
    for (size_t c = 0; c < t.k; c++)
        vmf_assert_close(vmf_mixture_kappas(mb)[c], vmf_mixture_kappas(md)[c], 1e-4, 0);
    vmf_em_report_free(&rb);
    vmf_em_report_free(&rd);
    vmf_mixture_free(mb);
    vmf_mixture_free(md);
    truth_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_d64),           cmocka_unit_test(test_default_d64_unequal),
        cmocka_unit_test(test_default_d768),          cmocka_unit_test(test_missing_cluster_d768),
        cmocka_unit_test(test_bounded_matches_dense),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
