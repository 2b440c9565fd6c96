/*
 * test_abi.c - the layout queries a binding checks its struct mirrors
 * against (vmf_abi_sizeof, vmf_abi_field) report exactly what the compiler
 * laid out, refuse unknown names, and vmf_free releases library memory;
 * and vmf_rows_normalized, which lets a binding skip a copy, answers 1
 * exactly when vmf_rows_normalize would change no bit.
 */
#include "vmf_test.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void assert_field(const char *type, const char *field, size_t offset, size_t size)
{
    size_t off = 0, sz = 0;
    assert_int_equal(vmf_abi_field(type, field, &off, &sz), VMF_OK);
    assert_int_equal(off, offset);
    assert_int_equal(sz, size);
}

#define FIELD(T, M) assert_field(#T, #M, offsetof(T, M), sizeof(((T *)0)->M))

static void test_sizes_and_offsets_match_the_compiler(void **state)
{
    (void)state;
    assert_int_equal(vmf_abi_sizeof("vmf_em_opts"), sizeof(vmf_em_opts));
    assert_int_equal(vmf_abi_sizeof("vmf_kappa_opts"), sizeof(vmf_kappa_opts));
    assert_int_equal(vmf_abi_sizeof("vmf_em_report"), sizeof(vmf_em_report));
    assert_int_equal(vmf_abi_sizeof("vmf_rng"), sizeof(vmf_rng));
    assert_int_equal(vmf_abi_sizeof("vmf_stepwise_opts"), sizeof(vmf_stepwise_opts));
    assert_int_equal(vmf_abi_sizeof("vmf_classifier_opts"), sizeof(vmf_classifier_opts));
    assert_int_equal(vmf_abi_sizeof("vmf_labels"), sizeof(vmf_labels));
    assert_int_equal(vmf_abi_sizeof("vmf_array"), sizeof(vmf_array));
    FIELD(vmf_em_opts, n_components);
    FIELD(vmf_em_opts, tol);
    FIELD(vmf_em_opts, init_means);
    FIELD(vmf_em_opts, kappa);
    FIELD(vmf_em_opts, kappa.estimator);
    FIELD(vmf_em_opts, seed);
    FIELD(vmf_em_opts, block_rows);
    FIELD(vmf_kappa_opts, kappa_max);
    FIELD(vmf_em_report, trace);
    FIELD(vmf_em_report, seconds);
    FIELD(vmf_rng, s);
    FIELD(vmf_rng, has_spare);
    FIELD(vmf_stepwise_opts, minibatch);
    FIELD(vmf_stepwise_opts, kappa.estimator);
    FIELD(vmf_stepwise_opts, seed);
    FIELD(vmf_classifier_opts, stepwise);
    FIELD(vmf_classifier_opts, stepwise.kappa);
    FIELD(vmf_classifier_opts, stepwise.kappa.estimator);
    FIELD(vmf_classifier_opts, stepwise.seed);
    FIELD(vmf_classifier_opts, kappa_scale);
    FIELD(vmf_labels, strs);
    FIELD(vmf_array, shape);
    FIELD(vmf_array, data);
}

static void test_unknown_names(void **state)
{
    (void)state;
    size_t off = 7, sz = 9;
    assert_int_equal(vmf_abi_sizeof("vmf_nothing"), 0);
    assert_int_equal(vmf_abi_sizeof(NULL), 0);
    assert_int_equal(vmf_abi_field("vmf_em_opts", "nothing", &off, &sz), VMF_ENOTFOUND);
    assert_int_equal(vmf_abi_field("vmf_nothing", "tol", &off, &sz), VMF_ENOTFOUND);
    assert_int_equal(vmf_abi_field(NULL, "tol", &off, &sz), VMF_ENOTFOUND);
    /* a member of another struct is not found under this one */
    assert_int_equal(vmf_abi_field("vmf_em_opts", "k_max", &off, &sz), VMF_ENOTFOUND);
    assert_int_equal(off, 7);
    assert_int_equal(sz, 9);
    /* the out pointers are optional */
    assert_int_equal(vmf_abi_field("vmf_em_opts", "tol", NULL, NULL), VMF_OK);
}

static void test_vmf_free_releases_library_strings(void **state)
{
    (void)state;
    double w[2] = {0.5, 0.5}, k[2] = {10, 20};
    float mu[4] = {1, 0, 0, 1};
    vmf_mixture *m = NULL;
    assert_int_equal(vmf_mixture_new(2, 2, w, mu, k, &m), VMF_OK);
    char *json = NULL;
    assert_int_equal(vmf_mixture_to_json(m, &json), VMF_OK);
    assert_true(strncmp(json, "{\"format\":\"vmfmm-model\"", 23) == 0);
    vmf_free(json); /* ASan's leak check fails the test if this does not free */
    vmf_free(NULL);
    vmf_mixture_free(m);
}

static void test_rows_normalized_iff_normalize_is_a_no_op(void **state)
{
    (void)state;
    enum { N = 2000, D = 37 };
    float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * D);
    assert_non_null(x);
    assert_non_null(y);
    vmf_rng rng;
    vmf_rng_seed(&rng, 11);
    for (size_t i = 0; i < (size_t)N * D; i++)
        x[i] = (float)(3.0 * vmf_rng_normal(&rng));
    assert_int_equal(vmf_rows_normalized(x, N, D), 0);
    assert_int_equal(vmf_rows_normalize(x, N, D), VMF_OK);
    /* Row by row: 1 exactly when normalizing again leaves the row's bits. */
    size_t same = 0;
    for (size_t i = 0; i < N; i++) {
        memcpy(y, x + i * D, sizeof(float) * D);
        assert_int_equal(vmf_rows_normalize(y, 1, D), VMF_OK);
        int unchanged = memcmp(y, x + i * D, sizeof(float) * D) == 0;
        assert_int_equal(vmf_rows_normalized(x + i * D, 1, D), unchanged);
        same += (size_t)unchanged;
    }
    print_message("rows already in normalized form: %zu of %d\n", same, N);
    /* Exactly normalized rows (e_j) are; a scaled one, a zero, NaN, Inf are not. */
    float e[3] = {0, 1, 0};
    assert_int_equal(vmf_rows_normalized(e, 1, 3), 1);
    e[1] = 2;
    assert_int_equal(vmf_rows_normalized(e, 1, 3), 0);
    e[1] = 0;
    assert_int_equal(vmf_rows_normalized(e, 1, 3), 0);
    e[1] = NAN;
    assert_int_equal(vmf_rows_normalized(e, 1, 3), 0);
    e[1] = INFINITY;
    assert_int_equal(vmf_rows_normalized(e, 1, 3), 0);
    assert_int_equal(vmf_rows_normalized(NULL, 0, 3), 1);
    assert_int_equal(vmf_rows_normalized(NULL, 1, 3), 0);
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_offsets_match_the_compiler),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_vmf_free_releases_library_strings),
        cmocka_unit_test(test_rows_normalized_iff_normalize_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
