/*
 * test_abi.c - the layout queries a binding checks its struct mirrors
 * against (vmf_abi_sizeof, vmf_abi_field) report exactly what the compiler
 * laid out, refuse unknown names, and vmf_free releases library memory.
 */
#include "vmf_test.h"

#include <stddef.h>
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
    FIELD(vmf_classifier_opts, kappa);
    FIELD(vmf_classifier_opts, kappa.estimator);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_offsets_match_the_compiler),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_vmf_free_releases_library_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
