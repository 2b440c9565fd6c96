/*
 * test_special.c - log C_d(kappa), A_d(kappa), 1 - A_d(kappa) and
 * log I_nu(kappa) against the mpmath vectors of tests/vectors/special.csv
 * (made by tests/vectors/gen_special.py), plus closed forms, limits,
 * monotonicity, finiteness beyond the contract range and bad arguments.
 *
 * Error measures (docs/numerics.md):
 *   A_d and 1 - A_d: relative error |f - ref| / |ref|.
 *   log C_d and log I_nu: |f - ref| / max(|ref|, 1), i.e. relative error,
 *     with an absolute floor of the same 1e-12 where the value crosses zero
 *     (log C_d does so for every d >= 19; the vectors include points within
 *     1e-15 relative of each crossing).
 */
#include "special_internal.h"
#include "vmf_test.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTRACT_TOL 1e-12

typedef struct vec_row {
    size_t d;
    double kappa, log_c, a, one_minus_a, log_i;
} vec_row;

static vec_row *load_vectors(size_t *count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/special.csv", VMF_TEST_VECTORS_DIR);
    FILE *f = fopen(path, "r");
    if (!f) {
        print_error("cannot open %s\n", path);
        fail();
    }
    size_t cap = 4096, n = 0;
    vec_row *rows = malloc(cap * sizeof *rows);
    assert_non_null(rows);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (n == cap) {
            cap *= 2;
            rows = realloc(rows, cap * sizeof *rows);
            assert_non_null(rows);
        }
        vec_row *r = &rows[n];
        char *p = line, *end;
        r->d = (size_t)strtoul(p, &end, 10);
        double *fields[] = {&r->kappa, &r->log_c, &r->a, &r->one_minus_a, &r->log_i};
        for (size_t i = 0; i < 5; i++) {
            assert_true(*end == ',');
            p = end + 1;
            *fields[i] = strtod(p, &end);
            assert_true(end != p);
        }
        n++;
    }
    fclose(f);
    *count = n;
    return rows;
}

/* |f - ref| / max(|ref|, floor); 0 when both are the same infinity. */
static double err_measure(double f, double ref, double floor)
{
    if (f == ref)
        return 0.0;
    if (isnan(f) || isinf(f) || isinf(ref))
        return INFINITY;
    return fabs(f - ref) / fmax(fabs(ref), floor);
}

typedef struct worst {
    double err;
    size_t d;
    double kappa, got, ref;
} worst;

static void track(worst *w, double err, const vec_row *r, double got, double ref)
{
    if (err > w->err || (isnan(err) && !isnan(w->err))) {
        w->err = err;
        w->d = r->d;
        w->kappa = r->kappa;
        w->got = got;
        w->ref = ref;
    }
}

static void report(const char *what, const worst *w)
{
    print_message("  max error %-8s %.3e  at d = %zu, kappa = %.17g (got %.17g, ref %.17g)\n", what,
                  w->err, w->d, w->kappa, w->got, w->ref);
}

static void test_vectors(void **state)
{
    (void)state;
    size_t n;
    vec_row *rows = load_vectors(&n);
    print_message("  %zu mpmath vectors\n", n);
    assert_true(n >= 2000);

    worst wc = {0}, wa = {0}, wca = {0}, wi = {0};
    int have_d[4097] = {0};
    size_t zero_kappa = 0, tiny = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        const vec_row *r = &rows[i];
        assert_true(r->d >= 2 && r->d <= 4096);
        have_d[r->d] = 1;
        zero_kappa += r->kappa == 0.0;
        tiny += r->kappa == 1e-8;
        big += r->kappa == 1e6;

        double lc = vmf_log_norm_const(r->d, r->kappa);
        double ca, a = vmf__bessel_ratio_pair(r->d, r->kappa, &ca);
        double li = vmf_log_bessel_i(0.5 * (double)r->d - 1.0, r->kappa);
        assert_true(isfinite(lc));
        assert_true(a >= 0.0 && a < 1.0 && ca > 0.0 && ca <= 1.0);
        assert_true(a == vmf_bessel_ratio(r->d, r->kappa));

        track(&wc, err_measure(lc, r->log_c, 1.0), r, lc, r->log_c);
        track(&wa, r->a == 0.0 ? (a == 0.0 ? 0.0 : INFINITY) : err_measure(a, r->a, 0.0), r, a,
              r->a);
        track(&wca, err_measure(ca, r->one_minus_a, 0.0), r, ca, r->one_minus_a);
        track(&wi, err_measure(li, r->log_i, 1.0), r, li, r->log_i);
    }
    report("log C", &wc);
    report("A", &wa);
    report("1 - A", &wca);
    report("log I", &wi);
    /* The required coverage. */
    assert_true(have_d[2] && have_d[3] && have_d[512] && have_d[768] && have_d[4096]);
    assert_true(zero_kappa >= 5 && tiny >= 5 && big >= 5);
    assert_true(wc.err < CONTRACT_TOL);
    assert_true(wa.err < CONTRACT_TOL);
    assert_true(wca.err < CONTRACT_TOL);
    /*
     * Tighter guard on 1 - A: the downward recurrence for d < 62 once ran on
     * 1 - r itself and lost 4.5e-13 at d = 2, kappa = 1e6; carried on the
     * deviation from k + 1/2 it stays at the 1e-14 of the power series.
     */
    assert_true(wca.err < 1e-13);
    assert_true(wi.err < CONTRACT_TOL);
    free(rows);
}

static void test_sphere_area_and_zero_kappa(void **state)
{
    (void)state;
    const double pi = 3.14159265358979323846;
    vmf_assert_close(vmf_log_sphere_area(2), log(2.0 * pi), 1e-15, 0);
    vmf_assert_close(vmf_log_sphere_area(3), log(4.0 * pi), 1e-15, 0);
    vmf_assert_close(vmf_log_sphere_area(4), log(2.0 * pi * pi), 1e-15, 0);
    vmf_assert_close(vmf_log_sphere_area(5), log(8.0 * pi * pi / 3.0), 1e-15, 0);
    /* S^{d-1} has area 2 pi^{d/2} / Gamma(d/2); at d = 4096 its log is -11219.226... */
    vmf_assert_close(vmf_log_sphere_area(4096), -11219.22639998454, 1e-14, 0);
    for (size_t d = 2; d <= 4096; d = d * 3 / 2 + 1) {
        assert_true(vmf_log_norm_const(d, 0.0) == -vmf_log_sphere_area(d));
        assert_true(vmf_bessel_ratio(d, 0.0) == 0.0);
        /* The limit is continuous: a tiny kappa changes log C by -kappa^2 / (2d). */
        vmf_assert_close(vmf_log_norm_const(d, 1e-9), -vmf_log_sphere_area(d), 1e-15, 1e-15);
        vmf_assert_close(vmf_bessel_ratio(d, 1e-9), 1e-9 / (double)d, 1e-15, 0);
    }
    assert_true(vmf_log_bessel_i(0.0, 0.0) == 0.0);
    assert_true(vmf_log_bessel_i(1.5, 0.0) == -INFINITY);
}

/* d = 3: I_{1/2}(x) = sqrt(2 / (pi x)) sinh x, so A_3 = coth k - 1/k. */
static void test_closed_form_d3(void **state)
{
    (void)state;
    for (double k = 0.75; k < 700.0; k *= 1.37) {
        double log_sinh = k + log1p(-exp(-2.0 * k)) - log(2.0);
        double lc = log(k) - log(4.0 * 3.14159265358979323846) - log_sinh;
        vmf_assert_close(vmf_log_norm_const(3, k), lc, 1e-14, 1e-14);
        double a = 1.0 / tanh(k) - 1.0 / k;
        vmf_assert_close(vmf_bessel_ratio(3, k), a, 1e-14, 0);
    }
}

/*
 * Monotone and finite over a fine grid that runs far past the contract range
 * (kappa to 1e300): log C_d decreases, A_d increases towards 1 and 1 - A_d
 * decreases, with no NaN, no overflow and no jump at the region boundaries.
 */
static void test_monotone_and_finite(void **state)
{
    (void)state;
    const size_t dims[] = {2,  3,  4,   7,   19,  59,   60,   61,   62,
                           63, 64, 100, 512, 768, 1023, 4096, 10000};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t d = dims[di];
        double prev_lc = INFINITY, prev_a = -1.0, prev_ca = 2.0;
        for (double k = 1e-300; k < 1e300; k *= 1.0 + 1.0 / 64) {
            double lc = vmf_log_norm_const(d, k);
            double ca, a = vmf__bessel_ratio_pair(d, k, &ca);
            assert_true(isfinite(lc) && isfinite(a) && isfinite(ca));
            assert_true(a >= 0.0 && a <= 1.0 && ca >= 0.0 && ca <= 1.0);
            if (!(lc <= prev_lc && a >= prev_a && ca <= prev_ca)) {
                print_error("not monotone at d = %zu, kappa = %.17g: log C %.17g -> %.17g, A %.17g "
                            "-> %.17g, 1 - A %.17g -> %.17g\n",
                            d, k, prev_lc, lc, prev_a, a, prev_ca, ca);
                fail();
            }
            prev_lc = lc, prev_a = a, prev_ca = ca;
            if (k > 1e-20 && k < 1e20)
                assert_true(isfinite(vmf_log_bessel_i(0.5 * (double)d - 1.0, k)));
        }
    }
    assert_true(vmf_log_norm_const(5, INFINITY) == -INFINITY);
    assert_true(vmf_bessel_ratio(5, INFINITY) == 1.0);
    assert_true(vmf_log_bessel_i(5.0, INFINITY) == INFINITY);
}

/*
 * Every dimension, not just the sampled ones: the three-term recurrence
 * I_nu - I_{nu+2} = (2 (nu + 1) / kappa) I_{nu+1} ties d to d + 2 as
 *     1 / A_d - A_{d+2} = d / kappa,  i.e.  (c_d + c_{d+2} - c_d c_{d+2}) / A_d = d / kappa
 * with c = 1 - A (cancellation-free), and
 *     log C_{d+2} - log C_d = log(kappa / (2 pi A_d)).
 * Neighbouring dimensions often take different evaluation methods (power
 * series, Debye, Debye plus recurrence), so this checks every region
 * boundary in d and kappa for all d in [2, 4096].
 */
static void test_recurrence_all_dims(void **state)
{
    (void)state;
    const double two_pi = 6.283185307179586477;
    double worst_a = 0.0, worst_c = 0.0;
    for (size_t d = 2; d <= 4096; d++) {
        for (double k = 1e-3; k < 2e6; k *= 2.9) {
            double c0, a0 = vmf__bessel_ratio_pair(d, k, &c0);
            double c2, a2 = vmf__bessel_ratio_pair(d + 2, k, &c2);
            (void)a2;
            double lhs = (c0 + c2 - c0 * c2) / a0;
            double ea = fabs(lhs - (double)d / k) / ((double)d / k);
            double l0 = vmf_log_norm_const(d, k), l2 = vmf_log_norm_const(d + 2, k);
            double step = log(k / (two_pi * a0));
            double ec = fabs((l2 - l0) - step) / fmax(fmax(fabs(l0), fabs(l2)), 1.0);
            if (!(ea < 1e-13 && ec < 1e-14)) {
                print_error("recurrence off at d = %zu, kappa = %.17g: A %.3g, log C %.3g\n", d, k,
                            ea, ec);
                fail();
            }
            worst_a = fmax(worst_a, ea);
            worst_c = fmax(worst_c, ec);
        }
    }
    print_message("  recurrence d -> d + 2 over all d: max error A %.3e, log C %.3e\n", worst_a,
                  worst_c);
}

/* For kappa >> d, 1 - A_d(kappa) = (d - 1) / (2 kappa) + O(kappa^-2): the complement keeps digits.
 */
static void test_complement_far_tail(void **state)
{
    (void)state;
    const size_t dims[] = {2, 3, 64, 4096};
    for (size_t i = 0; i < 4; i++) {
        double d = (double)dims[i];
        for (double k = 1e9; k < 1e200; k *= 1e7) {
            double ca;
            (void)vmf__bessel_ratio_pair(dims[i], k, &ca);
            /* From the Hankel expansion: 1 - A = (d-1)/(2k) - (d-1)(d-3)/(8k^2) + O(k^-3). */
            double approx = (d - 1.0) / (2.0 * k) - (d - 1.0) * (d - 3.0) / (8.0 * k * k);
            vmf_assert_close(ca, approx, 1e-13, 0);
        }
    }
}

/* log I_nu at orders that are not half-integers, against tests/vectors/bessel_i.csv. */
static void test_log_bessel_i_general_order(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/bessel_i.csv", VMF_TEST_VECTORS_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    size_t n = 0;
    double max_err = 0.0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        double nu, x, ref;
        assert_int_equal(sscanf(line, "%lf,%lf,%lf", &nu, &x, &ref), 3);
        double got = vmf_log_bessel_i(nu, x);
        double err = err_measure(got, ref, 1.0);
        if (!(err < CONTRACT_TOL))
            print_error("log I_%g(%g) = %.17g, reference %.17g\n", nu, x, got, ref);
        assert_true(err < CONTRACT_TOL);
        max_err = fmax(max_err, err);
        n++;
    }
    fclose(f);
    assert_true(n >= 60);
    print_message("  max error log I (general nu, %zu vectors) %.3e\n", n, max_err);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_true(isnan(vmf_log_norm_const(1, 1.0)));
    assert_true(isnan(vmf_log_norm_const(0, 1.0)));
    assert_true(isnan(vmf_log_norm_const(3, -1.0)));
    assert_true(isnan(vmf_log_norm_const(3, NAN)));
    assert_true(isnan(vmf_bessel_ratio(1, 1.0)));
    assert_true(isnan(vmf_bessel_ratio(3, -1e-300)));
    assert_true(isnan(vmf_bessel_ratio(3, NAN)));
    assert_true(isnan(vmf_log_sphere_area(1)));
    assert_true(isnan(vmf_log_bessel_i(-0.5, 1.0)));
    assert_true(isnan(vmf_log_bessel_i(1.0, -1.0)));
    assert_true(isnan(vmf_log_bessel_i(NAN, 1.0)));
    assert_true(isnan(vmf_log_bessel_i(1.0, NAN)));
    assert_true(isnan(vmf_log_bessel_i(INFINITY, 1.0)));
    double ca = 0.0;
    assert_true(isnan(vmf__bessel_ratio_pair(3, NAN, &ca)) && isnan(ca));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_sphere_area_and_zero_kappa),
        cmocka_unit_test(test_closed_form_d3),
        cmocka_unit_test(test_monotone_and_finite),
        cmocka_unit_test(test_recurrence_all_dims),
        cmocka_unit_test(test_complement_far_tail),
        cmocka_unit_test(test_log_bessel_i_general_order),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
