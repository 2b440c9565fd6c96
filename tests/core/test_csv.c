/*
 * test_csv.c - the CSV reader and writer: accepted layouts (BOM, header,
 * comments, blank lines, CRLF, padding), exact values, long lines and many
 * rows, the malformed battery with line numbers, bit-exact float round trips,
 * writer errors and allocation failures.
 */
#include "io_battery.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void assert_f32(const vmf_array *a, size_t n, size_t d, const float *want)
{
    assert_int_equal(a->dtype, VMF_DTYPE_F32);
    assert_int_equal(a->ndim, 2);
    assert_int_equal(a->shape[0], n);
    assert_int_equal(a->shape[1], d);
    assert_int_equal(a->count, n * d);
    for (size_t i = 0; i < n * d; i++)
        if (memcmp(&((const float *)a->data)[i], &want[i], sizeof(float)) != 0)
            fail_msg("element %zu: %.9g, want %.9g", i, (double)((const float *)a->data)[i],
                     (double)want[i]);
}

static void test_read_layouts(void **state)
{
    (void)state;
    static const char text[] = "\xef\xbb\xbf# exported embeddings\r\n"
                               "\r\n"
                               " x , y\t,z\r\n"
                               "1.5, -2 ,3e-1\r\n"
                               "# a comment between rows\n"
                               "   \n"
                               "\t0x1p-2,1e-40,-0\n"
                               "16777217,.5,1E+3";
    const float want[] = {1.5f, -2.0f, 0.3f, 0.25f, 1e-40f, -0.0f, 16777216.0f, 0.5f, 1000.0f};
    char dir[512], path[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.csv", dir);
    vmf_test_write_file(path, text, sizeof text - 1);
    vmf_array a;
    vmf_assert_ok(vmf_csv_read(path, &a));
    assert_f32(&a, 3, 3, want);
    assert_true(signbit(((float *)a.data)[5]));
    vmf_array_free(&a);
    vmf_assert_ok(vmf_csv_read_mem(text, sizeof text - 1, &a));
    assert_f32(&a, 3, 3, want);
    vmf_array_free(&a);

    /* No header: the first row is data; a single column; underflow to 0. */
    static const char col[] = "4\n5\n1e-50\n";
    const float want_col[] = {4, 5, 0};
    vmf_assert_ok(vmf_csv_read_mem(col, sizeof col - 1, &a));
    assert_f32(&a, 3, 1, want_col);
    vmf_array_free(&a);
    vmf_test_rmtree(dir);
}

static void expect_error(const char *text, int code, const char *keyword)
{
    vmf_array a;
    int rc = vmf_csv_read_mem(text, strlen(text), &a);
    if (rc != code || !strstr(vmf_last_error(), keyword))
        fail_msg("\"%s\": got %d \"%s\", want %d with \"%s\"", text, rc, vmf_last_error(), code,
                 keyword);
    assert_null(a.data);
}

static void test_header_rules(void **state)
{
    (void)state;
    /* Only the first line with content may be a header, and only if no field is numeric. */
    expect_error("a,b\nc,d\n", VMF_EFORMAT, "line 2, field 1: 'c' is not a number");
    expect_error("1,2\na,b\n", VMF_EFORMAT, "line 2, field 1: 'a' is not a number");
    expect_error("x,1\n2,3\n", VMF_EFORMAT, "line 1, field 1: 'x' is not a number");
    expect_error("# c\n\n#\n", VMF_EFORMAT, "no data rows");
    expect_error("\"1\",2\n3,4\n", VMF_EFORMAT, "line 1, field 1: '\"1\"' is not a number");
    expect_error("1,2,\n", VMF_EFORMAT, "line 1, field 3 is empty");
    expect_error("1 2,3\n", VMF_EFORMAT, "'1 2' is not a number");
    expect_error("1,2\n3,4\n5\n", VMF_EFORMAT, "line 3 has 1 fields, expected 2 as on line 1");
    expect_error("# h\na,b,c\n1,2\n", VMF_EFORMAT, "line 3 has 2 fields, expected 3 as on line 2");
    expect_error("1,infinity\n", VMF_EFORMAT, "'infinity' is not a finite number");
    expect_error("1,-3.5e38\n", VMF_ERANGE, "line 1, field 2: -3.5e38 is outside the float32");
    vmf_array a;
    assert_int_equal(vmf_csv_read("/nonexistent-dir/a.csv", &a), VMF_EIO);
    assert_non_null(strstr(vmf_last_error(), "/nonexistent-dir/a.csv"));
    assert_int_equal(vmf_csv_read_mem(NULL, 3, &a), VMF_EINVAL);
}

/* Reads text via vmf_csv_read_columns; ids and labels as given (NULL: none). */
static int read_cols(const char *dir, const char *text, const char *id, const char *label,
                     vmf_array *x, vmf_array *ids, vmf_array *labels)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/c.csv", dir);
    vmf_test_write_text(path, text);
    vmf_csv_opts o;
    vmf_csv_opts_init(&o);
    o.id_column = id;
    o.label_column = label;
    return vmf_csv_read_columns(path, &o, x, ids, labels);
}

static void assert_strs(const vmf_array *a, size_t n, const char *const *want)
{
    assert_int_equal(a->dtype, VMF_DTYPE_STR);
    assert_int_equal(a->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(((char **)a->data)[i], want[i]);
}

/* Id and label columns (string labels) by header name or 1-based index. */
static void test_id_and_label_columns(void **state)
{
    (void)state;
    char dir[512];
    vmf_test_tmpdir(dir, sizeof dir);
    vmf_array x, ids, lab;
    const float want[] = {1, 2, 3, 4, 5, 6};
    /* By name, columns anywhere, labels are text even when they look numeric. */
    vmf_assert_ok(read_cols(dir, "f1,id, label ,f2\n1,a-7, cat ,2\n3,a-8,42,4\n5,a-9,dog,6\n", "id",
                            "label", &x, &ids, &lab));
    assert_f32(&x, 3, 2, want);
    const char *wid[] = {"a-7", "a-8", "a-9"}, *wlab[] = {"cat", "42", "dog"};
    assert_strs(&ids, 3, wid);
    assert_strs(&lab, 3, wlab);
    vmf_array_free(&x);
    vmf_array_free(&ids);
    vmf_array_free(&lab);
    /* A pandas-style header with numeric feature names is still a header. */
    vmf_assert_ok(
        read_cols(dir, "label,0,1\nx,1,2\ny,3,4\nz,5,6\n", NULL, "label", &x, NULL, &lab));
    assert_f32(&x, 3, 2, want);
    const char *wxyz[] = {"x", "y", "z"};
    assert_strs(&lab, 3, wxyz);
    vmf_array_free(&x);
    vmf_array_free(&lab);
    /* No header: 1-based indexes. */
    vmf_assert_ok(read_cols(dir, "9,1,2,u\n8,3,4,v\n7,5,6,w\n", "1", "4", &x, &ids, &lab));
    assert_f32(&x, 3, 2, want);
    const char *w987[] = {"9", "8", "7"}, *wuvw[] = {"u", "v", "w"};
    assert_strs(&ids, 3, w987);
    assert_strs(&lab, 3, wuvw);
    vmf_array_free(&x);
    vmf_array_free(&ids);
    vmf_array_free(&lab);
    /* Errors name the column; a bad number elsewhere still names its line. */
    assert_int_equal(read_cols(dir, "a,b\n1,2\n", NULL, "species", &x, NULL, &lab), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "no column 'species'"));
    assert_int_equal(read_cols(dir, "1,2\n3,4\n", NULL, "species", &x, NULL, &lab), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "no header line"));
    assert_int_equal(read_cols(dir, "l,a\nx,1\ny,oops\n", NULL, "l", &x, NULL, &lab), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "line 3, field 2"));
    assert_null(lab.data);
    assert_int_equal(read_cols(dir, "l,a\nx,1\n", "l", "l", &x, NULL, &lab), VMF_EINVAL);
    assert_int_equal(read_cols(dir, "l\nx\n", NULL, "l", &x, NULL, &lab), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "no numeric column"));
    vmf_test_rmtree(dir);
}

/* A directory or a device is refused by name before any read, as .npy does:
 * a directory once gave a vague read error and /dev/null "no data rows". */
static void test_read_refuses_a_non_regular_file(void **state)
{
    (void)state;
    char dir[512], want[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    const char *paths[] = {dir, "/dev/null"};
    for (size_t i = 0; i < 2; i++) {
        vmf_array a;
        assert_int_equal(vmf_csv_read(paths[i], &a), VMF_EIO);
        assert_null(a.data);
        snprintf(want, sizeof want, "%s: not a regular file", paths[i]);
        if (strstr(vmf_last_error(), want) == NULL)
            fail_msg("error '%s' lacks '%s'", vmf_last_error(), want);
    }
    vmf_test_rmtree(dir);
}

/* Lines far longer than the reader's block, and enough rows to grow several times. */
static void test_long_lines_and_many_rows(void **state)
{
    (void)state;
    enum { WIDE = 6000, ROWS = 5000 };
    size_t cap = (size_t)WIDE * 12 * 2 + (size_t)ROWS * 32;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = 0;
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < WIDE; j++)
            o += (size_t)snprintf(text + o, cap - o, j + 1 < WIDE ? "%d.25," : "%d.25\n",
                                  j * (r + 1));
    vmf_array a;
    vmf_assert_ok(vmf_csv_read_mem(text, o, &a));
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], WIDE);
    assert_true(((float *)a.data)[WIDE + 5999] == 11998.25f);
    vmf_array_free(&a);

    o = 0;
    for (int i = 0; i < ROWS; i++)
        o += (size_t)snprintf(text + o, cap - o, "%d,%d.5\n", i, -i);
    vmf_assert_ok(vmf_csv_read_mem(text, o, &a));
    assert_int_equal(a.shape[0], ROWS);
    assert_int_equal(a.shape[1], 2);
    for (int i = 0; i < ROWS; i++) {
        assert_true(((float *)a.data)[2 * i] == (float)i);
        assert_true(((float *)a.data)[2 * i + 1] == (float)(-i) + (i == 0 ? 0.5f : -0.5f));
    }
    vmf_array_free(&a);
    free(text);
}

static int read_csv(const char *path)
{
    vmf_array a;
    int rc = vmf_csv_read(path, &a);
    assert_null(a.data);
    return rc;
}

static void test_malformed_battery(void **state)
{
    (void)state;
    assert_true(battery_run("csv", read_csv) >= 13);
}

static void test_write_roundtrip(void **state)
{
    (void)state;
    char dir[512], path[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.csv", dir);

    /* Every float32 printed with %.9g parses back to the same bits. */
    enum { N = 500, D = 4 };
    float f[N * D];
    uint32_t s = 12345;
    for (size_t i = 0; i < N * D; i++) {
        uint32_t bits;
        do {
            s = s * 1664525u + 1013904223u;
            bits = s;
        } while (((bits >> 23) & 0xff) == 0xff); /* skip NaN/Inf patterns */
        memcpy(&f[i], &bits, sizeof bits);
    }
    vmf_array a = {VMF_DTYPE_F32, 2, {N, D}, N * D, f};
    vmf_assert_ok(vmf_csv_write(path, &a));
    vmf_array b;
    vmf_assert_ok(vmf_csv_read(path, &b));
    assert_f32(&b, N, D, f);
    vmf_array_free(&b);

    double g[] = {0.1, -1e-320, 3.4028234663852886e38, 123456789.123456789};
    vmf_array c = {VMF_DTYPE_F64, 1, {4}, 4, g};
    vmf_assert_ok(vmf_csv_write(path, &c));
    vmf_assert_ok(vmf_csv_read(path, &b));
    float gf[4];
    for (size_t i = 0; i < 4; i++)
        gf[i] = (float)g[i];
    assert_f32(&b, 4, 1, gf);
    vmf_array_free(&b);

    int64_t i8[] = {INT64_MIN, 7, -7, 0};
    vmf_array e = {VMF_DTYPE_I64, 2, {2, 2}, 4, i8};
    vmf_assert_ok(vmf_csv_write(path, &e));
    FILE *fp = fopen(path, "r");
    char line[128];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "-9223372036854775808,7\n");
    fclose(fp);
    uint8_t u1[] = {0, 255, 9};
    vmf_array u = {VMF_DTYPE_U8, 2, {1, 3}, 3, u1};
    vmf_assert_ok(vmf_csv_write(path, &u));
    vmf_assert_ok(vmf_csv_read(path, &b));
    const float uf[] = {0, 255, 9};
    assert_f32(&b, 1, 3, uf);
    vmf_array_free(&b);
    int16_t i2[] = {-32768, 5};
    int32_t i4[] = {-2147483647 - 1, 5};
    vmf_array h = {VMF_DTYPE_I16, 1, {2}, 2, i2};
    vmf_array k = {VMF_DTYPE_I32, 1, {2}, 2, i4};
    vmf_assert_ok(vmf_csv_write(path, &h));
    vmf_assert_ok(vmf_csv_read(path, &b));
    assert_true(((float *)b.data)[0] == -32768.0f);
    vmf_array_free(&b);
    vmf_assert_ok(vmf_csv_write(path, &k));
    vmf_assert_ok(vmf_csv_read(path, &b));
    assert_true(((float *)b.data)[0] == -2147483648.0f);
    vmf_array_free(&b);
    vmf_test_rmtree(dir);
}

static void test_write_errors(void **state)
{
    (void)state;
    char dir[512], path[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    float f[] = {1, 2, NAN, 4};
    vmf_array a = {VMF_DTYPE_F32, 2, {2, 2}, 4, f};
    assert_int_equal(vmf_csv_write(path, &a), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1 holds NaN"));
    FILE *fp = fopen(path, "r");
    assert_null(fp); /* nothing left behind, not even a partial file */
    const char *s[] = {"a"};
    vmf_array str = {VMF_DTYPE_STR, 1, {1}, 1, (void *)s};
    assert_int_equal(vmf_csv_write(path, &str), VMF_EINVAL);
    vmf_array cube = {VMF_DTYPE_F32, 3, {1, 2, 2}, 4, f};
    assert_int_equal(vmf_csv_write(path, &cube), VMF_EINVAL);
    vmf_array wrong = {VMF_DTYPE_F32, 2, {3, 2}, 4, f};
    assert_int_equal(vmf_csv_write(path, &wrong), VMF_EINVAL);
    f[2] = 3;
    assert_int_equal(vmf_csv_write("/nonexistent-dir/x.csv", &a), VMF_EIO);
    vmf_test_rmtree(dir);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    static const char text[] = "a,b\n1,2\n3,4\n";
    int ok_seen = 0;
    for (long k = 0; k < 10; k++) {
        vmf_array a;
        vmf_debug_fail_alloc_after(k);
        int rc = vmf_csv_read_mem(text, sizeof text - 1, &a);
        vmf_debug_fail_alloc_after(-1);
        assert_true(rc == VMF_OK || rc == VMF_ENOMEM);
        if (rc == VMF_OK) {
            const float want[] = {1, 2, 3, 4};
            assert_f32(&a, 2, 2, want);
            ok_seen++;
        }
        vmf_array_free(&a);
    }
    assert_true(ok_seen > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_layouts),
        cmocka_unit_test(test_header_rules),
        cmocka_unit_test(test_id_and_label_columns),
        cmocka_unit_test(test_read_refuses_a_non_regular_file),
        cmocka_unit_test(test_long_lines_and_many_rows),
        cmocka_unit_test(test_malformed_battery),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
