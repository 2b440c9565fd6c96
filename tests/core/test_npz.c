/*
 * test_npz.c - .npz archives: numpy-made fixtures (stored and deflated) from a
 * file and from memory, missing members, deterministic writer round trips,
 * the malformed battery (zip bombs, truncation, CRC), every truncation and
 * every single-byte corruption of a valid archive, allocation failures.
 */
#include "io_battery.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *fixture(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/npy/%s", VMF_TEST_VECTORS_DIR, name);
    return buf;
}

/* The fixtures' X: (arange(18) - 6) * 0.125 as float32, shape (6, 3). */
static void assert_fixture_x(const vmf_array *a)
{
    assert_int_equal(a->dtype, VMF_DTYPE_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], 6);
    assert_int_equal(a->shape[1], 3);
    for (size_t i = 0; i < 18; i++)
        assert_true(((float *)a->data)[i] == (float)(((double)i - 6.0) * 0.125));
}

static void test_read_fixtures(void **state)
{
    (void)state;
    char p[1024];
    vmf_array a;
    const char *files[] = {"Xy_stored.npz", "Xy_deflated.npz"};
    for (size_t f = 0; f < 2; f++) {
        fixture(files[f], p, sizeof p);
        vmf_assert_ok(vmf_npz_read(p, "X", &a));
        assert_fixture_x(&a);
        vmf_array_free(&a);
        vmf_assert_ok(vmf_npz_read(p, "X.npy", &a));
        assert_fixture_x(&a);
        vmf_array_free(&a);

        size_t len;
        unsigned char *img = vmf_test_read_file(p, &len);
        vmf_assert_ok(vmf_npz_read_mem(img, len, "X", &a));
        assert_fixture_x(&a);
        vmf_array_free(&a);
        vmf_assert_ok(vmf_npz_read_mem(img, len, "y", &a));
        assert_int_equal(a.ndim, 1);
        assert_int_equal(a.shape[0], 6);
        if (f == 0) {
            const char *want[] = {"a", "b", "a", "c", "b", "a"};
            assert_int_equal(a.dtype, VMF_DTYPE_STR);
            for (size_t i = 0; i < 6; i++)
                assert_string_equal(((char **)a.data)[i], want[i]);
        } else {
            const int32_t want[] = {0, 1, 0, 2, 1, 0};
            assert_int_equal(a.dtype, VMF_DTYPE_I32);
            assert_memory_equal(a.data, want, sizeof want);
        }
        vmf_array_free(&a);
        free(img);
    }
}

static void test_missing_member(void **state)
{
    (void)state;
    char p[1024];
    vmf_array a;
    fixture("only_X.npz", p, sizeof p);
    assert_int_equal(vmf_npz_read(p, "y", &a), VMF_ENOTFOUND);
    assert_null(a.data);
    assert_non_null(strstr(vmf_last_error(), "has no member y.npy (members: X.npy)"));
    assert_non_null(strstr(vmf_last_error(), p));
    assert_int_equal(vmf_npz_read(p, "X.npy.npy", &a), VMF_ENOTFOUND);
    assert_int_equal(vmf_npz_read(p, "", &a), VMF_EINVAL);
    assert_int_equal(vmf_npz_read(p, NULL, &a), VMF_EINVAL);
    assert_int_equal(vmf_npz_read("/nonexistent-dir/a.npz", "X", &a), VMF_EIO);
    assert_int_equal(vmf_npz_read_mem(NULL, 0, "X", &a), VMF_EFORMAT);
}

static void test_write_roundtrip(void **state)
{
    (void)state;
    enum { N = 2000, D = 64 };
    float *x = malloc(N * D * sizeof *x);
    int64_t z[5] = {1, -2, 3, INT64_MIN, INT64_MAX};
    const char *labels[] = {"coat", "bag", "\xc3\xa9t\xc3\xa9"};
    assert_non_null(x);
    for (size_t i = 0; i < N * D; i++)
        x[i] = (float)((i * 2654435761u) % 1000u) / 7.0f; /* compressible but not trivial */
    vmf_array X = {VMF_DTYPE_F32, 2, {N, D}, N * D, x};
    vmf_array y = {VMF_DTYPE_STR, 1, {3}, 3, (void *)labels};
    vmf_array Z = {VMF_DTYPE_I64, 1, {5}, 5, z};
    const char *names[] = {"X", "y", "z.npy"};
    const vmf_array *arrays[] = {&X, &y, &Z};

    void *b1, *b2;
    size_t l1, l2;
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, 3, &b1, &l1));
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, 3, &b2, &l2));
    assert_int_equal(l1, l2); /* deterministic: fixed timestamps */
    assert_memory_equal(b1, b2, l1);
    assert_true(l1 < N * D * sizeof(float) / 2); /* deflated */

    char dir[512], path[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.npz", dir);
    vmf_test_write_text(path, "old content");
    vmf_assert_ok(vmf_npz_write(path, names, arrays, 3));
    size_t fl;
    unsigned char *fb = vmf_test_read_file(path, &fl);
    assert_int_equal(fl, l1);
    assert_memory_equal(fb, b1, l1);
    free(fb);

    vmf_array a;
    for (int src = 0; src < 2; src++) {
        if (src == 0)
            vmf_assert_ok(vmf_npz_read(path, "X", &a));
        else
            vmf_assert_ok(vmf_npz_read_mem(b1, l1, "X", &a));
        assert_int_equal(a.shape[0], N);
        assert_int_equal(a.shape[1], D);
        assert_memory_equal(a.data, x, N * D * sizeof(float));
        vmf_array_free(&a);
    }
    vmf_assert_ok(vmf_npz_read_mem(b1, l1, "y", &a));
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(((char **)a.data)[i], labels[i]);
    vmf_array_free(&a);
    vmf_assert_ok(vmf_npz_read_mem(b1, l1, "z", &a));
    assert_memory_equal(a.data, z, sizeof z);
    vmf_array_free(&a);

    vmf_test_assert_only_file(dir, "out.npz");
    vmf_test_rmtree(dir);
    free(b1);
    free(b2);
    free(x);
}

static void test_write_edge_cases(void **state)
{
    (void)state;
    void *buf;
    size_t len;
    vmf_array a;
    vmf_assert_ok(vmf_npz_write_mem(NULL, NULL, 0, &buf, &len));
    assert_int_equal(len, 22);
    assert_int_equal(vmf_npz_read_mem(buf, len, "X", &a), VMF_ENOTFOUND);
    assert_non_null(strstr(vmf_last_error(), "members: none"));
    free(buf);

    float v[2] = {1, 2};
    vmf_array X = {VMF_DTYPE_F32, 1, {2}, 2, v};
    vmf_array bad = {VMF_DTYPE_F32, 1, {3}, 2, v};
    const vmf_array *two[] = {&X, &X};
    const char *dup[] = {"X", "X"};
    assert_int_equal(vmf_npz_write_mem(dup, two, 2, &buf, &len), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "appears twice"));
    assert_null(buf);
    const char *empty[] = {"X", ""};
    assert_int_equal(vmf_npz_write_mem(empty, two, 2, &buf, &len), VMF_EINVAL);
    const vmf_array *withbad[] = {&X, &bad};
    const char *names[] = {"X", "y"};
    assert_int_equal(vmf_npz_write_mem(names, withbad, 2, &buf, &len), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "member y.npy"));
    assert_int_equal(vmf_npz_write("/nonexistent-dir/a.npz", names, two, 2), VMF_EIO);
    assert_non_null(strstr(vmf_last_error(), "/nonexistent-dir/a.npz"));
}

static int read_npz_x(const char *path)
{
    /* The same bytes from memory must give the same status... */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    vmf_array a;
    int rc_mem = vmf_npz_read_mem(buf, len, "X", &a);
    assert_null(a.data);
    /* ...and the file's message, which names the path, goes to the checks. */
    int rc = vmf_npz_read(path, "X", &a);
    assert_null(a.data);
    assert_int_equal(rc_mem, rc);
    return rc;
}

static void test_malformed_battery(void **state)
{
    (void)state;
    assert_true(battery_run("npz", read_npz_x) >= 13);
}

/* Every truncation and every single-byte corruption of a valid archive is
 * either read or refused with an error; none crashes or leaks (ASan). */
static void test_truncations_and_corruptions(void **state)
{
    (void)state;
    char p[1024];
    size_t len;
    const char *files[] = {"Xy_stored.npz", "Xy_deflated.npz"};
    for (size_t f = 0; f < 2; f++) {
        unsigned char *img = vmf_test_read_file(fixture(files[f], p, sizeof p), &len);
        vmf_array a;
        for (size_t cut = 0; cut < len; cut++) {
            int rc = vmf_npz_read_mem(img, cut, "X", &a);
            assert_true(rc == VMF_EFORMAT || rc == VMF_ENOTFOUND);
            assert_null(a.data);
        }
        size_t refused = 0;
        for (size_t i = 0; i < len; i++) {
            img[i] ^= 0x5a;
            int rc = vmf_npz_read_mem(img, len, "X", &a);
            img[i] ^= 0x5a;
            if (rc == VMF_OK)
                vmf_array_free(&a);
            else
                refused++, assert_null(a.data);
        }
        assert_true(refused > len / 2);
        free(img);
    }
}

static void test_allocation_failures(void **state)
{
    (void)state;
    char p[1024];
    size_t len;
    unsigned char *img = vmf_test_read_file(fixture("Xy_stored.npz", p, sizeof p), &len);
    int ok_seen = 0;
    for (long k = 0; k < 30; k++) {
        vmf_array a, b;
        vmf_debug_fail_alloc_after(k);
        int r1 = vmf_npz_read_mem(img, len, "y", &a);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r1 == VMF_OK || r1 == VMF_ENOMEM);
        void *buf = NULL;
        size_t blen;
        int r2 = VMF_ENOMEM;
        if (r1 == VMF_OK) {
            const char *names[] = {"y"};
            const vmf_array *arrays[] = {&a};
            vmf_debug_fail_alloc_after(k);
            r2 = vmf_npz_write_mem(names, arrays, 1, &buf, &blen);
            vmf_debug_fail_alloc_after(-1);
            assert_true(r2 == VMF_OK || r2 == VMF_ENOMEM);
        }
        if (r2 == VMF_OK) {
            vmf_assert_ok(vmf_npz_read_mem(buf, blen, "y", &b));
            assert_string_equal(((char **)b.data)[3], "c");
            vmf_array_free(&b);
            ok_seen++;
        }
        free(buf);
        vmf_array_free(&a);
    }
    assert_true(ok_seen > 0);
    free(img);
}

/* The caller's bound is checked from the directory, before inflating (issue 9). */
static void test_read_mem_max(void **state)
{
    (void)state;
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = VMF_DTYPE_F64;
    a.ndim = 2;
    a.shape[0] = 1000;
    a.shape[1] = 16;
    a.count = 16000;
    a.data = calloc(a.count, sizeof(double));
    assert_non_null(a.data);
    for (size_t i = 0; i < a.count; i++)
        ((double *)a.data)[i] = (double)(i % 7) - 3.25;
    const char *names[] = {"X"};
    const vmf_array *arrays[] = {&a};
    void *buf;
    size_t len;
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, 1, &buf, &len));
    uint64_t need = 16000 * 8 + 128; /* data plus the 128-byte .npy header */
    vmf_array b;
    assert_int_equal(vmf_npz_read_mem_max(buf, len, "X", need - 1, &b), VMF_ERANGE);
    assert_non_null(strstr(vmf_last_error(), "before inflating"));
    assert_null(b.data);
    /* At the bound: read, and narrowed to float32 in place. */
    vmf_debug_fail_alloc_after(-1);
    vmf_assert_ok(vmf_npz_read_mem_max(buf, len, "X", need, &b));
    float *x;
    size_t n, d;
    vmf_assert_ok(vmf_array_take_f32(&b, &x, &n, &d));
    assert_null(b.data);
    assert_int_equal(n, 1000);
    assert_int_equal(d, 16);
    for (size_t i = 0; i < n * d; i++)
        assert_true(x[i] == (float)((double)(i % 7) - 3.25));
    free(x);
    vmf_array_free(&b);
    /* NaN: refused with the array left intact. */
    ((double *)a.data)[37] = NAN;
    free(buf);
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, 1, &buf, &len));
    vmf_assert_ok(vmf_npz_read_mem_max(buf, len, "X", need, &b));
    assert_int_equal(vmf_array_take_f32(&b, &x, &n, &d), VMF_EINVAL);
    assert_non_null(b.data);
    assert_true(isnan(((double *)b.data)[37]));
    vmf_array_free(&b);
    free(buf);
    free(a.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_fixtures),
        cmocka_unit_test(test_missing_member),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_edge_cases),
        cmocka_unit_test(test_malformed_battery),
        cmocka_unit_test(test_truncations_and_corruptions),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_read_mem_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
