/*
 * test_labels.c - label views and the label table: first-appearance order,
 * lookups of unseen labels, kind mismatch, all-or-nothing interning, growth.
 */
#include "vmf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_int_labels_first_appearance(void **state)
{
    (void)state;
    vmf_label_table *t;
    vmf_assert_ok(vmf_label_table_new(&t));
    int64_t v[] = {7, 3, 7, -1, 3};
    vmf_labels y = {5, v, NULL};
    int32_t idx[5];
    vmf_assert_ok(vmf_label_table_intern(t, &y, idx));
    int32_t want[] = {0, 1, 0, 2, 1};
    assert_memory_equal(idx, want, sizeof want);
    assert_int_equal(vmf_label_table_size(t), 3);
    assert_int_equal(vmf_label_table_int(t, 2), -1);
    int64_t q[] = {3, 99};
    vmf_labels yq = {2, q, NULL};
    vmf_assert_ok(vmf_label_table_lookup(t, &yq, idx));
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], -1);
    char buf[32];
    assert_string_equal(vmf_label_table_format(t, 0, buf, sizeof buf), "7");
    vmf_label_table_free(t);
}

static void test_string_labels_and_kind_mismatch(void **state)
{
    (void)state;
    vmf_label_table *t;
    vmf_assert_ok(vmf_label_table_new(&t));
    const char *s[] = {"coat", "bag", "coat"};
    vmf_labels y = {3, NULL, s};
    int32_t idx[3];
    vmf_assert_ok(vmf_label_table_intern(t, &y, idx));
    assert_int_equal(idx[2], 0);
    assert_true(vmf_label_table_is_str(t));
    assert_string_equal(vmf_label_table_str(t, 1), "bag");
    int64_t v[] = {1};
    vmf_labels yi = {1, v, NULL};
    assert_int_equal(vmf_label_table_intern(t, &yi, idx), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "integers"));
    assert_int_equal(vmf_label_table_size(t), 2);
    vmf_label_table *c;
    vmf_assert_ok(vmf_label_table_copy(t, &c));
    assert_int_equal(vmf_label_table_size(c), 2);
    assert_string_equal(vmf_label_table_str(c, 0), "coat");
    vmf_label_table_free(c);
    vmf_label_table_free(t);
}

static void test_growth_and_failed_intern_is_atomic(void **state)
{
    (void)state;
    vmf_label_table *t;
    vmf_assert_ok(vmf_label_table_new(&t));
    enum { N = 5000 };
    int64_t *v = malloc(N * sizeof *v);
    int32_t *idx = malloc(N * sizeof *idx);
    for (int i = 0; i < N; i++)
        v[i] = (int64_t)i * 7919;
    vmf_labels y = {N, v, NULL};
    vmf_assert_ok(vmf_label_table_intern(t, &y, idx));
    for (int i = 0; i < N; i++)
        assert_int_equal(idx[i], i);
    /* An allocation failure midway leaves the table as it was. */
    for (int i = 0; i < N; i++)
        v[i] = -1 - i;
    vmf_debug_fail_alloc_after(1); /* the ints grow, then the hash fails */
    int rc = vmf_label_table_intern(t, &y, idx);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_ENOMEM);
    assert_int_equal(vmf_label_table_size(t), N);
    int64_t q = 7919 * 4999;
    vmf_labels yq = {1, &q, NULL};
    vmf_assert_ok(vmf_label_table_lookup(t, &yq, idx));
    assert_int_equal(idx[0], 4999);
    free(v);
    free(idx);
    vmf_label_table_free(t);
}

static void test_labels_from_array(void **state)
{
    (void)state;
    int16_t raw[] = {4, -2, 9};
    vmf_array a = {.dtype = VMF_DTYPE_I16, .ndim = 1, .shape = {3}, .count = 3, .data = raw};
    vmf_labels y;
    int64_t *storage;
    vmf_assert_ok(vmf_labels_from_array(&a, &y, &storage));
    assert_non_null(storage);
    assert_int_equal(y.n, 3);
    assert_int_equal(y.ints[1], -2);
    free(storage);
    float f[] = {1.0f};
    vmf_array b = {.dtype = VMF_DTYPE_F32, .ndim = 1, .shape = {1}, .count = 1, .data = f};
    assert_int_equal(vmf_labels_from_array(&b, &y, &storage), VMF_EINVAL);
    assert_null(storage);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_labels_first_appearance),
        cmocka_unit_test(test_string_labels_and_kind_mismatch),
        cmocka_unit_test(test_growth_and_failed_intern_is_atomic),
        cmocka_unit_test(test_labels_from_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
