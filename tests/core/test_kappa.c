/*
 * test_kappa.c - the kappa estimators: the exact inversion round-trips
 * A_d(kappa) to 1e-12 over d in [2, 4096] and rbar in [1e-12, 1 - 1e-12];
 * Sra and Song beat Banerjee; shrinkage keeps one sample finite; clamping;
 * bad arguments; estimator names.
 */
#include "special_internal.h"
#include "vmf_test.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const size_t DIMS[] = {2,  3,  4,   5,   10,  17,  50,   61,   62,
                              63, 64, 100, 257, 512, 768, 1000, 3001, 4096};
#define N_DIMS (sizeof DIMS / sizeof DIMS[0])

/*
 * Relative residual of kappa as a root of A_d(kappa) = rbar, measured on the
 * complement when rbar > 1/2 (1 - rbar is exact there and is what fixes kappa).
 */
static double residual(size_t d, double kappa, double rbar)
{
    double ca, a = vmf__bessel_ratio_pair(d, kappa, &ca);
    if (rbar > 0.5)
        return fabs(ca - (1.0 - rbar)) / (1.0 - rbar);
    return fabs(a - rbar) / rbar;
}

/*
 * kappa -> rbar = A_d(kappa) (rounded to a double) -> kappa'. The residual of
 * kappa' is below 1e-12, and kappa' is within 1e-12 of kappa plus what the
 * rounding of rbar itself allows: rbar carries an error of half an ulp, which
 * moves the root by (rel. error of the quantity that fixes kappa) / (its
 * log-log slope); the slope is above 1/4 at both ends, hence the factor 8 below.
 */
static void test_exact_round_trip(void **state)
{
    (void)state;
    double worst_res = 0.0, worst_k = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < N_DIMS; i++) {
        size_t d = DIMS[i];
        for (double kappa = 1e-6; kappa <= 1e7; kappa *= 1.31) {
            double ca, rbar = vmf__bessel_ratio_pair(d, kappa, &ca);
            double k = vmf_kappa_from_rbar(VMF_KAPPA_EXACT, d, rbar);
            assert_true(isfinite(k) && k > 0.0);
            double res = residual(d, k, rbar);
            double cond = rbar > 0.5 ? rbar / (1.0 - rbar) : 1.0;
            double tol = 1e-12 + 8.0 * DBL_EPSILON * cond;
            double kerr = fabs(k - kappa) / kappa;
            if (!(res < 1e-12 && kerr < tol))
                print_error("d = %zu kappa = %.17g: got %.17g (residual %.3g, error %.3g > %.3g)\n",
                            d, kappa, k, res, kerr, tol);
            assert_true(res < 1e-12);
            assert_true(kerr < tol);
            worst_res = fmax(worst_res, res);
            worst_k = fmax(worst_k, kerr / tol);
            count++;
        }
    }
    print_message("  %zu round trips: max residual %.3e, max kappa error / tolerance %.3e\n", count,
                  worst_res, worst_k);
}

/* One point of the sweep below: kappa for rbar is finite, above the previous
 * one (*prev, then updated) and solves A_d(kappa) = rbar to 1e-12; returns the
 * residual. */
static double exact_step(size_t d, double rbar, double *prev)
{
    double k = vmf_kappa_from_rbar(VMF_KAPPA_EXACT, d, rbar);
    assert_true(isfinite(k) && k > *prev);
    double res = residual(d, k, rbar);
    assert_true(res < 1e-12);
    *prev = k;
    return res;
}

/* The whole rbar range of the contract, on both ends, in every dimension. */
static void test_exact_rbar_range(void **state)
{
    (void)state;
    double worst = 0.0;
    for (size_t i = 0; i < N_DIMS; i++) {
        size_t d = DIMS[i];
        double prev = 0.0;
        for (double e = -12.0; e <= -0.3; e += 0.25)
            worst = fmax(worst, exact_step(d, pow(10.0, e), &prev)); /* 1e-12 .. 0.45 */
        for (double e = -0.3; e >= -12.0; e -= 0.25)
            worst = fmax(worst, exact_step(d, 1.0 - pow(10.0, e), &prev)); /* 0.5 .. 1 - 1e-12 */
    }
    print_message("  rbar in [1e-12, 1 - 1e-12]: max residual %.3e\n", worst);
}

/*
 * The solver's cost: the Amos bracket holds (no expansion steps) and the
 * safeguarded secant needs few evaluations of A_d everywhere. (It once ran to
 * its 200-iteration cap for kappa > e^8, where a fixed absolute width on
 * log kappa is below the ulps of log kappa.)
 */
static void test_exact_cost(void **state)
{
    (void)state;
    int max_evals = 0;
    double sum = 0.0;
    size_t count = 0;
    for (size_t i = 0; i < N_DIMS; i++) {
        for (double e = -12.0; e <= 12.0; e += 0.1) {
            double rbar, crbar;
            if (e < 0.0) {
                rbar = 0.5 * pow(10.0, e + 0.0);
                crbar = 1.0 - rbar;
            } else {
                crbar = 0.5 * pow(10.0, -e);
                rbar = 1.0 - crbar;
                crbar = 1.0 - rbar; /* exactly the double's complement */
            }
            int evals = 0;
            double k = vmf__kappa_exact(DIMS[i], rbar, crbar, &evals);
            assert_true(isfinite(k) && k > 0.0);
            max_evals = evals > max_evals ? evals : max_evals;
            sum += evals;
            count++;
        }
    }
    print_message("  exact inversion: %.1f evaluations of A_d on average, %d at most\n",
                  sum / (double)count, max_evals);
    assert_true(max_evals <= 24);
}

/* Sra (one Newton step) and Song (two Halley steps) improve on Banerjee. */
static void test_approximations_ordering(void **state)
{
    (void)state;
    double sum_b = 0.0, sum_s = 0.0, sum_h = 0.0;
    for (size_t i = 0; i < N_DIMS; i++) {
        size_t d = DIMS[i];
        for (double kappa = 0.01; kappa <= 1e6; kappa *= 1.7) {
            double rbar = vmf_bessel_ratio(d, kappa);
            double exact = vmf_kappa_from_rbar(VMF_KAPPA_EXACT, d, rbar);
            double eb = fabs(vmf_kappa_from_rbar(VMF_KAPPA_BANERJEE, d, rbar) - exact) / exact;
            double es = fabs(vmf_kappa_from_rbar(VMF_KAPPA_SRA, d, rbar) - exact) / exact;
            double eh = fabs(vmf_kappa_from_rbar(VMF_KAPPA_SONG, d, rbar) - exact) / exact;
            /* Newton and Halley from Banerjee's side of the root cannot do worse. */
            assert_true(es <= eb + 1e-13);
            assert_true(eh <= es + 1e-13);
            sum_b += eb, sum_s += es, sum_h += eh;
        }
    }
    print_message("  summed relative errors: banerjee %.3e, sra %.3e, song %.3e\n", sum_b, sum_s,
                  sum_h);
    assert_true(sum_s < 0.1 * sum_b);
    assert_true(sum_h < 0.1 * sum_s);
    /* Banerjee's closed form itself: rbar (d - rbar^2) / (1 - rbar^2). */
    vmf_assert_close(vmf_kappa_from_rbar(VMF_KAPPA_BANERJEE, 10, 0.5), 0.5 * 9.75 / 0.75, 1e-15, 0);
}

static void test_from_rbar_edges(void **state)
{
    (void)state;
    for (int e = 0; e < 4; e++) {
        vmf_kappa_estimator est = (vmf_kappa_estimator)e;
        assert_true(vmf_kappa_from_rbar(est, 3, 0.0) == 0.0);
        assert_true(vmf_kappa_from_rbar(est, 3, 1.0) == INFINITY);
        assert_true(vmf_kappa_from_rbar(est, 3, 1.5) == INFINITY);
        assert_true(isnan(vmf_kappa_from_rbar(est, 3, NAN)));
        assert_true(isnan(vmf_kappa_from_rbar(est, 3, -0.1)));
        assert_true(isnan(vmf_kappa_from_rbar(est, 1, 0.5)));
        double k = vmf_kappa_from_rbar(est, 4096, 1.0 - 1e-15);
        assert_true(isfinite(k) && k > 1e15);
    }
    assert_true(isnan(vmf_kappa_from_rbar((vmf_kappa_estimator)7, 3, 0.5)));
}

static void test_estimate_shrinkage(void **state)
{
    (void)state;
    vmf_kappa_opts o;
    vmf_kappa_opts_init(&o);
    assert_int_equal(o.estimator, VMF_KAPPA_EXACT);
    assert_true(o.prior_count == 1.0 && o.prior_rbar == 0.0);
    assert_true(o.kappa_min == 0.0 && o.kappa_max == 1e6);

    /* One point: rbar* = (1 + 0) / (1 + 1) = 1/2, a finite kappa. */
    double k;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 1.0, 1.0, &k));
    assert_true(isfinite(k) && k > 0.0);
    vmf_assert_close(k, vmf_kappa_from_rbar(VMF_KAPPA_EXACT, 64, 0.5), 1e-15, 0);
    vmf_assert_close(vmf_bessel_ratio(64, k), 0.5, 1e-12, 0);
    /* R slightly above n from rounding is taken as n. */
    double k2;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 1.0, 1.0 + 1e-7, &k2));
    assert_true(k2 == k);

    /* n = 9, R = 8.1, n0 = 1, rbar0 = 0: rbar* = 0.81. */
    vmf_assert_ok(vmf_kappa_estimate(&o, 10, 9.0, 8.1, &k));
    vmf_assert_close(k, vmf_kappa_from_rbar(VMF_KAPPA_EXACT, 10, 0.81), 1e-12, 0);

    /* A prior direction: n0 = 4 at rbar0 = 0.9 with n = 6, R = 3 gives (3 + 3.6) / 10. */
    o.prior_count = 4.0;
    o.prior_rbar = 0.9;
    vmf_assert_ok(vmf_kappa_estimate(&o, 10, 6.0, 3.0, &k));
    vmf_assert_close(k, vmf_kappa_from_rbar(VMF_KAPPA_EXACT, 10, 0.66), 1e-12, 0);

    /* No data at all: the prior alone. */
    vmf_assert_ok(vmf_kappa_estimate(&o, 10, 0.0, 0.0, &k));
    vmf_assert_close(k, vmf_kappa_from_rbar(VMF_KAPPA_EXACT, 10, 0.9), 1e-12, 0);
    o.prior_rbar = 0.0;
    vmf_assert_ok(vmf_kappa_estimate(&o, 10, 0.0, 0.0, &k));
    assert_true(k == 0.0);

    /* The complement is formed from n - R exactly: n = 1e6 points with 1 - rbar = 1e-9. */
    vmf_kappa_opts_init(&o);
    o.prior_count = 0.0;
    o.kappa_max = 1e12;
    double big_n = 1e6, big_r = 1e6 - 1e-3;
    vmf_assert_ok(vmf_kappa_estimate(&o, 3, big_n, big_r, &k));
    /*
     * d = 3: 1 - A_3(k) = 1 - coth k + 1/k = 1/k up to e^{-2k}, so k = n / (n - R), with n - R
     * exact in doubles (about 1e9). Forming rbar = R/n first would leave 8 digits.
     */
    vmf_assert_close(k, big_n / (big_n - big_r), 1e-12, 0);

    /* Every estimator runs through the same shrinkage. */
    vmf_kappa_opts_init(&o);
    for (int e = 0; e < 4; e++) {
        o.estimator = (vmf_kappa_estimator)e;
        vmf_assert_ok(vmf_kappa_estimate(&o, 768, 1.0, 1.0, &k));
        vmf_assert_close(k, vmf_kappa_from_rbar(o.estimator, 768, 0.5), 1e-15, 0);
    }
}

static void test_estimate_clamping(void **state)
{
    (void)state;
    vmf_kappa_opts o;
    vmf_kappa_opts_init(&o);
    double k;
    /* Without a prior, one point is rbar = 1: kappa = inf, clamped to kappa_max. */
    o.prior_count = 0.0;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 1.0, 1.0, &k));
    assert_true(k == 1e6);
    o.kappa_max = 250.0;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 100.0, 99.9, &k));
    assert_true(k == 250.0);
    o.kappa_min = 5.0;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 100.0, 0.1, &k));
    assert_true(k == 5.0);
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 100.0, 0.0, &k));
    assert_true(k == 5.0);
    /* Inside the bounds nothing changes. */
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 100.0, 50.0, &k));
    vmf_assert_close(k, vmf_kappa_from_rbar(VMF_KAPPA_EXACT, 64, 0.5), 1e-15, 0);
    o.kappa_min = o.kappa_max = 7.0;
    vmf_assert_ok(vmf_kappa_estimate(&o, 64, 100.0, 50.0, &k));
    assert_true(k == 7.0);
}

static void expect_einval(const vmf_kappa_opts *o, size_t d, double n, double r, const char *msg)
{
    double k = -1.0;
    int rc = vmf_kappa_estimate(o, d, n, r, o ? &k : NULL);
    assert_int_equal(rc, VMF_EINVAL);
    assert_true(k == -1.0);
    if (!strstr(vmf_last_error(), msg)) {
        print_error("message \"%s\" lacks \"%s\"\n", vmf_last_error(), msg);
        fail();
    }
}

static void test_estimate_bad_arguments(void **state)
{
    (void)state;
    vmf_kappa_opts o;
    vmf_kappa_opts_init(&o);
    /* NULL options are the defaults (vmfmm.h; tests/core/test_null_opts.c), not an error. */
    assert_int_equal(vmf_kappa_estimate(&o, 3, 1.0, 1.0, NULL), VMF_EINVAL);
    expect_einval(&o, 1, 1.0, 0.5, "dimension");
    expect_einval(&o, 3, -1.0, 0.5, "mass");
    expect_einval(&o, 3, NAN, 0.5, "mass");
    expect_einval(&o, 3, INFINITY, 0.5, "mass");
    expect_einval(&o, 3, 1.0, -0.5, "resultant");
    expect_einval(&o, 3, 1.0, NAN, "resultant");
    expect_einval(&o, 3, 1.0, 1.1, "exceeds");
    o.prior_count = -1.0;
    expect_einval(&o, 3, 1.0, 0.5, "prior_count");
    o.prior_count = NAN;
    expect_einval(&o, 3, 1.0, 0.5, "prior_count");
    vmf_kappa_opts_init(&o);
    o.prior_rbar = 1.0;
    expect_einval(&o, 3, 1.0, 0.5, "prior_rbar");
    o.prior_rbar = -0.1;
    expect_einval(&o, 3, 1.0, 0.5, "prior_rbar");
    vmf_kappa_opts_init(&o);
    o.kappa_min = 10.0;
    o.kappa_max = 5.0;
    expect_einval(&o, 3, 1.0, 0.5, "kappa_min");
    o.kappa_min = 0.0;
    o.kappa_max = INFINITY;
    expect_einval(&o, 3, 1.0, 0.5, "kappa_max");
    o.kappa_max = 1e6;
    o.kappa_min = -1.0;
    expect_einval(&o, 3, 1.0, 0.5, "kappa_min");
    vmf_kappa_opts_init(&o);
    o.estimator = (vmf_kappa_estimator)42;
    expect_einval(&o, 3, 1.0, 0.5, "estimator");
    vmf_kappa_opts_init(&o);
    o.prior_count = 0.0;
    expect_einval(&o, 3, 0.0, 0.0, "no data and no prior");
}

static void test_names(void **state)
{
    (void)state;
    const char *names[] = {"banerjee", "sra", "song", "exact"};
    for (int e = 0; e < 4; e++) {
        assert_string_equal(vmf_kappa_estimator_name((vmf_kappa_estimator)e), names[e]);
        vmf_kappa_estimator got = (vmf_kappa_estimator)-1;
        vmf_assert_ok(vmf_kappa_estimator_parse(names[e], &got));
        assert_int_equal(got, e);
    }
    assert_string_equal(vmf_kappa_estimator_name((vmf_kappa_estimator)9), "unknown");
    vmf_kappa_estimator got = VMF_KAPPA_SRA;
    assert_int_equal(vmf_kappa_estimator_parse("Exact", &got), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "Exact"));
    assert_int_equal(vmf_kappa_estimator_parse("", &got), VMF_EINVAL);
    assert_int_equal(vmf_kappa_estimator_parse(NULL, &got), VMF_EINVAL);
    assert_int_equal(vmf_kappa_estimator_parse("song", NULL), VMF_EINVAL);
    assert_int_equal(got, VMF_KAPPA_SRA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_round_trip),
        cmocka_unit_test(test_exact_rbar_range),
        cmocka_unit_test(test_exact_cost),
        cmocka_unit_test(test_approximations_ordering),
        cmocka_unit_test(test_from_rbar_edges),
        cmocka_unit_test(test_estimate_shrinkage),
        cmocka_unit_test(test_estimate_clamping),
        cmocka_unit_test(test_estimate_bad_arguments),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
