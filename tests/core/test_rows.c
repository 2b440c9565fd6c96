/*
 * test_rows.c - the row checks (core/src/rows.c). vmf_rows_check decides
 * most rows with a float sum of squares and the rest in double; the two
 * must never disagree with the double rule: a norm within VMF_ROWS_NORM_TOL
 * of 1 passes, one outside fails, and NaN, Inf, zero rows and squares that
 * overflow a float are told apart by the message naming the row.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row i of x [n][d] set to e_0 + e_1 scaled to norm `norm`, the others to e_0. */
static void fill(float *x, size_t n, size_t d, size_t i, double norm)
{
    memset(x, 0, n * d * sizeof *x);
    for (size_t r = 0; r < n; r++)
        x[r * d] = 1.0f;
    x[i * d] = (float)(norm / sqrt(2.0));
    x[i * d + 1] = (float)(norm / sqrt(2.0));
}

/* The norm of row i in double, as the rule reads it. */
static double norm_of(const float *x, size_t d, size_t i)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++)
        s += (double)x[i * d + j] * (double)x[i * d + j];
    return sqrt(s);
}

/* Norms across the tolerance's edges: the check agrees with the double rule at each. */
static void test_tolerance_edges(void **state)
{
    (void)state;
    size_t n = 5, d = 37; /* not a multiple of the lanes: the tail counts too */
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    const double norms[] = {1.0,        1.0 + 4e-4, 1.0 - 4e-4, 1.0 + 9.9e-4, 1.0 - 9.9e-4,
                            1.0 + 1e-3, 1.0 - 1e-3, 1.0011,     0.9989,       1.5,
                            0.5,        1e-3,       1e10};
    for (size_t t = 0; t < sizeof norms / sizeof *norms; t++) {
        fill(x, n, d, 3, norms[t]);
        double exact = norm_of(x, d, 3);
        int want = fabs(exact - 1.0) > VMF_ROWS_NORM_TOL ? VMF_EINVAL : VMF_OK;
        assert_int_equal(vmf_rows_check(x, n, d), want);
        if (want != VMF_OK)
            assert_non_null(strstr(vmf_last_error(), "row 3 has norm"));
    }
    free(x);
}

/* Values whose squares overflow a float are finite: the message says the norm, not NaN. */
static void test_float_overflow_is_a_norm(void **state)
{
    (void)state;
    size_t n = 2, d = 64;
    float *x = calloc(n * d, sizeof *x);
    assert_non_null(x);
    x[0] = 1.0f;
    x[d] = 1e20f;
    assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 has norm 1e+20"));
    x[d] = INFINITY;
    assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 has a NaN or infinite value"));
    x[d] = NAN;
    assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 has a NaN or infinite value"));
    x[d] = 0.0f;
    assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 is a zero vector"));
    /* Tiny values square to 0 in float but not in double: a norm, not a zero row. */
    x[d] = 1e-30f;
    assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 has norm 1e-30"));
    free(x);
}

/* Random unit rows at several dimensions pass; one value nudged off the sphere fails. */
static void test_random_unit_rows(void **state)
{
    (void)state;
    vmf_rng rng;
    vmf_rng_seed(&rng, 3);
    const size_t dims[] = {2, 3, 16, 17, 64, 512, 3000};
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        size_t n = 50, d = dims[t];
        float *x = malloc(n * d * sizeof *x);
        assert_non_null(x);
        vmf_assert_ok(vmf_sample_uniform(d, n, &rng, x));
        vmf_assert_ok(vmf_rows_check(x, n, d));
        /* Row 7 scaled by 1.002: off by more than the tolerance. */
        for (size_t j = 0; j < d; j++)
            x[7 * d + j] *= 1.002f;
        assert_int_equal(vmf_rows_check(x, n, d), VMF_EINVAL);
        assert_non_null(strstr(vmf_last_error(), "row 7 has norm"));
        free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tolerance_edges),
        cmocka_unit_test(test_float_overflow_is_a_norm),
        cmocka_unit_test(test_random_unit_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
