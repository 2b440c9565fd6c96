/*
 * test_sample.c - Wood's vMF sampler and the uniform sampler: unit rows; the
 * mean of mu^T x and the mean resultant length match A_d(kappa) within a few
 * standard errors; the sample mean direction matches mu; uniform draws have a
 * resultant of order 1/sqrt(n); the same seed gives the same bits; bad
 * arguments are refused with a message.
 *
 * Statistics used. For x ~ vMF(mu, kappa) with w = mu^T x: E w = A_d(kappa)
 * and Var w = A_d'(kappa) = 1 - A^2 - (d - 1) A / kappa. For the sample mean
 * xbar of n draws, E |xbar|^2 = A^2 + (1 - A^2) / n exactly, so
 * (n |xbar|^2 - 1) / (n - 1) is an unbiased estimate of A^2; its standard
 * error is about sqrt(4 A^2 Var w / n + 2 (1 - A^2)^2 / ((d - 1) n^2)), the
 * first term from the component along mu, the second from the d - 1
 * tangent coordinates.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A random unit vector in double, stored as float and renormalized in float. */
static void random_unit(vmf_rng *rng, size_t d, float *mu)
{
    double s = 0.0;
    double *g = malloc(d * sizeof *g);
    assert_non_null(g);
    for (size_t j = 0; j < d; j++) {
        g[j] = vmf_rng_normal(rng);
        s += g[j] * g[j];
    }
    for (size_t j = 0; j < d; j++)
        mu[j] = (float)(g[j] / sqrt(s));
    free(g);
}

static void check_unit_rows(const float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++) {
            assert_true(isfinite(x[i * d + j]));
            s += (double)x[i * d + j] * (double)x[i * d + j];
        }
        if (!(fabs(sqrt(s) - 1.0) < 1e-6)) {
            print_error("row %zu has norm %.9g\n", i, sqrt(s));
            fail();
        }
    }
}

typedef struct moments {
    double mean_w, var_w; /* of w = mu^T x */
    double r2;            /* |xbar|^2 */
    double cos_mu;        /* cos angle(xbar, mu) */
} moments;

static moments sample_moments(const float *x, size_t n, size_t d, const float *mu)
{
    double *sum = calloc(d, sizeof *sum);
    assert_non_null(sum);
    double sw = 0.0, sww = 0.0;
    for (size_t i = 0; i < n; i++) {
        double w = 0.0;
        for (size_t j = 0; j < d; j++) {
            sum[j] += (double)x[i * d + j];
            w += (double)x[i * d + j] * (double)mu[j];
        }
        sw += w;
        sww += w * w;
    }
    moments m;
    m.mean_w = sw / (double)n;
    m.var_w = (sww - sw * m.mean_w) / (double)(n - 1);
    double r2 = 0.0, dot = 0.0, mu2 = 0.0;
    for (size_t j = 0; j < d; j++) {
        double xb = sum[j] / (double)n;
        r2 += xb * xb;
        dot += xb * (double)mu[j];
        mu2 += (double)mu[j] * (double)mu[j];
    }
    m.r2 = r2;
    m.cos_mu = dot / sqrt(r2 * mu2);
    free(sum);
    return m;
}

static void test_resultant_matches_bessel_ratio(void **state)
{
    (void)state;
    const size_t dims[] = {2, 3, 10, 64, 512};
    const double kappas[] = {0.5, 10.0, 100.0, 1000.0, 1e5};
    const uint64_t seed = 20261123;
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    for (size_t di = 0; di < 5; di++) {
        size_t d = dims[di];
        size_t n = d >= 512 ? 4000 : 20000;
        float *x = malloc(n * d * sizeof *x);
        float *mu = malloc(d * sizeof *mu);
        assert_non_null(x);
        assert_non_null(mu);
        for (size_t ki = 0; ki < 5; ki++) {
            double kappa = kappas[ki];
            random_unit(&rng, d, mu);
            vmf_assert_ok(vmf_sample_vmf(mu, d, kappa, n, &rng, x));
            check_unit_rows(x, n, d);
            moments m = sample_moments(x, n, d, mu);
            double a = vmf_bessel_ratio(d, kappa);
            double var = 1.0 - a * a - ((double)d - 1.0) * a / kappa; /* A'(kappa) */
            double nn = (double)n;
            /* Float rounding of the stored rows adds ~1e-7 to every w. */
            double se_w = sqrt(var / nn) + 1e-7;
            double a2_hat = (nn * m.r2 - 1.0) / (nn - 1.0);
            double se_a2 = sqrt(4.0 * a * a * var / nn + 2.0 * (1.0 - a * a) * (1.0 - a * a) /
                                                             (((double)d - 1.0) * nn * nn)) +
                           1e-7;
            print_message("  d = %4zu kappa = %6g: mean w %.6f (A = %.6f, %+.2f se), "
                          "A^2 est %.6f (%+.2f se)\n",
                          d, kappa, m.mean_w, a, (m.mean_w - a) / se_w, a2_hat,
                          (a2_hat - a * a) / se_a2);
            if (!(fabs(m.mean_w - a) < 5.0 * se_w && fabs(a2_hat - a * a) < 5.0 * se_a2)) {
                print_error("seed %llu: d = %zu, kappa = %g off by more than 5 se\n",
                            (unsigned long long)seed, d, kappa);
                fail();
            }
            /* The sample variance of w matches A'(kappa) (loose: 4th moments unknown here). */
            vmf_assert_close(m.var_w, var, 0.15, 1e-6);
            /*
             * Direction: the tangent part of xbar has norm ~ sqrt((1 - A^2 - var) / n), so the
             * angle to mu is ~ that over A. Only checked where it is identifiable (< 0.5 rad).
             */
            double ang = 5.0 * sqrt((1.0 - a * a) / nn) / a;
            if (ang < 0.5)
                assert_true(acos(fmin(1.0, m.cos_mu)) < ang);
        }
        free(x);
        free(mu);
    }
}

/* mu = e1 (no reflection), mu = -e1 and a mu with a tiny first coordinate. */
static void test_special_directions(void **state)
{
    (void)state;
    enum { D = 5, N = 20000 };
    float mus[3][D] = {{1, 0, 0, 0, 0}, {-1, 0, 0, 0, 0}, {0, 0.6f, 0, 0.8f, 0}};
    float *x = malloc((size_t)N * D * sizeof *x);
    assert_non_null(x);
    vmf_rng rng;
    vmf_rng_seed(&rng, 99);
    for (int t = 0; t < 3; t++) {
        vmf_assert_ok(vmf_sample_vmf(mus[t], D, 50.0, N, &rng, x));
        check_unit_rows(x, N, D);
        moments m = sample_moments(x, N, D, mus[t]);
        double a = vmf_bessel_ratio(D, 50.0);
        double var = 1.0 - a * a - (D - 1.0) * a / 50.0;
        assert_true(fabs(m.mean_w - a) < 5.0 * sqrt(var / N) + 1e-7);
        assert_true(m.cos_mu > 0.999);
    }
    free(x);
}

static void test_uniform(void **state)
{
    (void)state;
    const size_t dims[] = {2, 3, 64, 512};
    vmf_rng rng;
    vmf_rng_seed(&rng, 5);
    for (size_t di = 0; di < 4; di++) {
        size_t d = dims[di], n = 8000;
        float *x = malloc(n * d * sizeof *x);
        float *e1 = calloc(d, sizeof *e1);
        assert_non_null(x);
        assert_non_null(e1);
        e1[0] = 1.0f;
        for (int kappa_zero = 0; kappa_zero < 2; kappa_zero++) {
            if (kappa_zero)
                vmf_assert_ok(vmf_sample_vmf(e1, d, 0.0, n, &rng, x));
            else
                vmf_assert_ok(vmf_sample_uniform(d, n, &rng, x));
            check_unit_rows(x, n, d);
            moments m = sample_moments(x, n, d, e1);
            /* n |xbar|^2 ~ chi^2_d / d: mean 1, sd sqrt(2/d). Var of a coordinate: 1/d. */
            double t = (double)n * m.r2;
            assert_true(fabs(t - 1.0) < 6.0 * sqrt(2.0 / (double)d));
            assert_true(fabs(m.mean_w) < 5.0 / sqrt((double)n * (double)d));
            vmf_assert_close(m.var_w, 1.0 / (double)d, 0.1, 0);
        }
        free(x);
        free(e1);
    }
}

static void test_determinism(void **state)
{
    (void)state;
    enum { D = 64, N = 500 };
    float mu[D];
    vmf_rng r0;
    vmf_rng_seed(&r0, 3);
    random_unit(&r0, D, mu);
    float *a = malloc(sizeof(float) * D * N);
    float *b = malloc(sizeof(float) * D * N);
    assert_non_null(a);
    assert_non_null(b);
    vmf_rng ra, rb;
    vmf_rng_seed(&ra, 42);
    vmf_rng_seed(&rb, 42);
    vmf_assert_ok(vmf_sample_vmf(mu, D, 30.0, N, &ra, a));
    vmf_assert_ok(vmf_sample_vmf(mu, D, 30.0, N, &rb, b));
    assert_memory_equal(a, b, sizeof(float) * D * N);
    vmf_assert_ok(vmf_sample_uniform(D, N, &ra, a));
    vmf_assert_ok(vmf_sample_uniform(D, N, &rb, b));
    assert_memory_equal(a, b, sizeof(float) * D * N);
    vmf_rng_seed(&rb, 43);
    vmf_assert_ok(vmf_sample_vmf(mu, D, 30.0, N, &ra, a));
    vmf_assert_ok(vmf_sample_vmf(mu, D, 30.0, N, &rb, b));
    assert_true(memcmp(a, b, sizeof(float) * D * N) != 0);
    free(a);
    free(b);
}

static void expect_einval(int rc, const char *msg)
{
    assert_int_equal(rc, VMF_EINVAL);
    if (!strstr(vmf_last_error(), msg)) {
        print_error("message \"%s\" lacks \"%s\"\n", vmf_last_error(), msg);
        fail();
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float mu[3] = {1, 0, 0}, out[3 * 4];
    vmf_rng rng;
    vmf_rng_seed(&rng, 1);
    expect_einval(vmf_sample_vmf(mu, 1, 1.0, 4, &rng, out), "d >= 2");
    expect_einval(vmf_sample_vmf(mu, 0, 1.0, 4, &rng, out), "d >= 2");
    expect_einval(vmf_sample_vmf(NULL, 3, 1.0, 4, &rng, out), "mu");
    expect_einval(vmf_sample_vmf(mu, 3, 1.0, 4, NULL, out), "d >= 2");
    expect_einval(vmf_sample_vmf(mu, 3, 1.0, 4, &rng, NULL), "output");
    expect_einval(vmf_sample_vmf(mu, 3, -1.0, 4, &rng, out), "kappa");
    expect_einval(vmf_sample_vmf(mu, 3, NAN, 4, &rng, out), "kappa");
    expect_einval(vmf_sample_vmf(mu, 3, INFINITY, 4, &rng, out), "kappa");
    expect_einval(vmf_sample_vmf(mu, 3, 2e8, 4, &rng, out), "kappa");
    float longer[3] = {1.1f, 0, 0}, shorter[3] = {0.5f, 0.5f, 0}, nan_mu[3] = {NAN, 0, 0};
    expect_einval(vmf_sample_vmf(longer, 3, 1.0, 4, &rng, out), "norm");
    expect_einval(vmf_sample_vmf(shorter, 3, 1.0, 4, &rng, out), "norm");
    expect_einval(vmf_sample_vmf(nan_mu, 3, 1.0, 4, &rng, out), "NaN");
    expect_einval(vmf_sample_uniform(1, 4, &rng, out), "d >= 2");
    expect_einval(vmf_sample_uniform(3, 4, NULL, out), "d >= 2");
    expect_einval(vmf_sample_uniform(3, 4, &rng, NULL), "output");
    /* n = 0 with no buffer is a valid no-op. */
    vmf_assert_ok(vmf_sample_vmf(mu, 3, 1.0, 0, &rng, NULL));
    vmf_assert_ok(vmf_sample_uniform(3, 0, &rng, NULL));
}

/* The draw allocates one d-vector; an injected failure is reported, not crashed on. */
static void test_allocation_failure(void **state)
{
    (void)state;
    float mu[3] = {0, 1, 0}, out[3 * 4];
    vmf_rng rng;
    vmf_rng_seed(&rng, 1);
    vmf_debug_fail_alloc_after(0);
    int rc = vmf_sample_vmf(mu, 3, 5.0, 4, &rng, out);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_ENOMEM);
    vmf_assert_ok(vmf_sample_vmf(mu, 3, 5.0, 4, &rng, out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resultant_matches_bessel_ratio),
        cmocka_unit_test(test_special_directions),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
