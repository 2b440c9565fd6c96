/*
 * test_npy.c - the .npy reader and writer, vmf_array_to_f32 and
 * vmf_load_matrix: numpy-made fixtures read bit for bit (tests/vectors/npy,
 * made by gen_npy_vectors.py), our writer's bytes equal to numpy.save's,
 * round trips of every dtype, header spellings numpy accepts, the malformed
 * battery, allocation failures and atomic writes.
 */
#include "io_battery.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fixture(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/npy/%s", VMF_TEST_VECTORS_DIR, name);
    return buf;
}

static vmf_array read_fixture(const char *name)
{
    char p[1024];
    vmf_array a;
    vmf_assert_ok(vmf_npy_read(fixture(name, p, sizeof p), &a));
    return a;
}

static void assert_shape(const vmf_array *a, vmf_dtype t, size_t ndim, size_t s0, size_t s1)
{
    assert_int_equal(a->dtype, t);
    assert_int_equal(a->ndim, ndim);
    if (ndim > 0)
        assert_int_equal(a->shape[0], s0);
    if (ndim > 1)
        assert_int_equal(a->shape[1], s1);
}

/* numpy's grid(): (arange(n) - n/3) * scale in float64. */
static double grid(size_t i, size_t n, double scale)
{
    return ((double)i - (double)n / 3.0) * scale;
}

static void test_numpy_fixtures(void **state)
{
    (void)state;
    vmf_array a = read_fixture("f4_4x3.npy");
    assert_shape(&a, VMF_DTYPE_F32, 2, 4, 3);
    assert_int_equal(a.count, 12);
    const float *f = a.data;
    for (size_t i = 3; i < 12; i++) {
        float want = (float)grid(i, 12, 0.37);
        assert_memory_equal(&f[i], &want, sizeof want);
    }
    uint32_t bits[3];
    memcpy(bits, f, sizeof bits);
    assert_int_equal(bits[0], 71362u);      /* 1e-40f, a subnormal */
    assert_int_equal(bits[1], 2139095039u); /* FLT_MAX */
    assert_int_equal(bits[2], 2147483648u); /* -0.0f */
    memcpy(bits, &f[3], sizeof bits[0]);
    assert_int_equal(bits[0], 3200086180u); /* as numpy printed it */
    vmf_array_free(&a);

    a = read_fixture("f8_5.npy");
    assert_shape(&a, VMF_DTYPE_F64, 1, 5, 0);
    for (size_t i = 0; i < 5; i++) {
        double want = grid(i, 5, 3.14159265358979323846);
        assert_memory_equal(&((double *)a.data)[i], &want, sizeof want);
    }
    uint64_t b64;
    memcpy(&b64, a.data, sizeof b64);
    assert_true(b64 == 13840953253408854079ull);
    vmf_array_free(&a);

    a = read_fixture("i2_2x3.npy");
    assert_shape(&a, VMF_DTYPE_I16, 2, 2, 3);
    int16_t i2[] = {-32768, -1, 0, 1, 2, 32767};
    assert_memory_equal(a.data, i2, sizeof i2);
    vmf_array_free(&a);

    a = read_fixture("i4_6.npy");
    assert_shape(&a, VMF_DTYPE_I32, 1, 6, 0);
    int32_t i4[] = {INT32_MIN, -7, 0, 7, 100000, INT32_MAX};
    assert_memory_equal(a.data, i4, sizeof i4);
    vmf_array_free(&a);

    a = read_fixture("i8_3.npy");
    int64_t i8[] = {INT64_MIN, 0, INT64_MAX};
    assert_shape(&a, VMF_DTYPE_I64, 1, 3, 0);
    assert_memory_equal(a.data, i8, sizeof i8);
    vmf_array_free(&a);

    a = read_fixture("u1_2x2x2.npy");
    assert_shape(&a, VMF_DTYPE_U8, 3, 2, 2);
    assert_int_equal(a.shape[2], 2);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(((uint8_t *)a.data)[i], i * 36);
    vmf_array_free(&a);

    a = read_fixture("U_4.npy");
    assert_shape(&a, VMF_DTYPE_STR, 1, 4, 0);
    char **s = a.data;
    assert_string_equal(s[0], "cat");
    assert_string_equal(s[1], "");
    assert_string_equal(s[2], "caf\xc3\xa9");
    assert_string_equal(s[3], "\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x99\x82");
    vmf_array_free(&a);

    a = read_fixture("f8_scalar.npy");
    assert_shape(&a, VMF_DTYPE_F64, 0, 0, 0);
    assert_int_equal(a.count, 1);
    assert_true(((double *)a.data)[0] == 2.5);
    vmf_array_free(&a);

    a = read_fixture("f4_0x4.npy");
    assert_shape(&a, VMF_DTYPE_F32, 2, 0, 4);
    assert_int_equal(a.count, 0);
    vmf_array_free(&a);

    a = read_fixture("u1_123456x0.npy");
    assert_shape(&a, VMF_DTYPE_U8, 2, 123456, 0);
    vmf_array_free(&a);

    const char *versions[] = {"f4_2x2_v2.npy", "f4_2x2_v3.npy"};
    for (size_t v = 0; v < 2; v++) {
        a = read_fixture(versions[v]);
        assert_shape(&a, VMF_DTYPE_F32, 2, 2, 2);
        float want[] = {1, 2, 3, 4};
        assert_memory_equal(a.data, want, sizeof want);
        vmf_array_free(&a);
    }
}

/* The writer's bytes equal numpy.save's for every version 1.0 fixture. */
static void test_writer_matches_numpy(void **state)
{
    (void)state;
    const char *names[] = {"f4_4x3.npy", "f8_5.npy",       "i2_2x3.npy", "i4_6.npy",
                           "i8_3.npy",   "u1_2x2x2.npy",   "U_4.npy",    "f8_scalar.npy",
                           "f4_0x4.npy", "u1_123456x0.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[1024];
        size_t flen, mlen;
        unsigned char *file = vmf_test_read_file(fixture(names[i], p, sizeof p), &flen);
        vmf_array a = read_fixture(names[i]);
        void *mine;
        vmf_assert_ok(vmf_npy_write_mem(&a, &mine, &mlen));
        if (mlen != flen || memcmp(mine, file, flen) != 0)
            fail_msg("%s: our %zu bytes differ from numpy's %zu", names[i], mlen, flen);
        free(mine);
        free(file);
        vmf_array_free(&a);
    }
}

/* Writes a to a file and to memory, reads both back, compares everything. */
static void roundtrip(const vmf_array *a, const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/rt.npy", dir);
    vmf_assert_ok(vmf_npy_write(path, a));
    void *buf;
    size_t len;
    vmf_assert_ok(vmf_npy_write_mem(a, &buf, &len));
    if (a->dtype != VMF_DTYPE_STR) /* numpy aligns the data to 64 bytes */
        assert_int_equal((len - a->count * vmf_dtype_size(a->dtype)) % 64, 0);
    for (int src = 0; src < 2; src++) {
        vmf_array b;
        if (src == 0)
            vmf_assert_ok(vmf_npy_read(path, &b));
        else
            vmf_assert_ok(vmf_npy_read_mem(buf, len, &b));
        assert_int_equal(b.dtype, a->dtype);
        assert_int_equal(b.ndim, a->ndim);
        assert_int_equal(b.count, a->count);
        assert_memory_equal(b.shape, a->shape, a->ndim * sizeof(size_t));
        if (a->dtype == VMF_DTYPE_STR) {
            for (size_t i = 0; i < a->count; i++)
                assert_string_equal(((char **)b.data)[i], ((char *const *)a->data)[i]);
        } else if (a->count > 0) {
            assert_memory_equal(b.data, a->data, a->count * vmf_dtype_size(a->dtype));
        }
        vmf_array_free(&b);
    }
    free(buf);
}

static void test_roundtrip_every_dtype(void **state)
{
    (void)state;
    char dir[512];
    vmf_test_tmpdir(dir, sizeof dir);
    unsigned char raw[8 * 60];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (unsigned char)(i * 131u + 7u);
    /* Keep the float patterns finite: the bytes are arbitrary otherwise. */
    float f4[60];
    double f8[60];
    for (size_t i = 0; i < 60; i++) {
        f4[i] = (float)sin((double)i) * 1e3f;
        f8[i] = cos((double)i) * 1e-300;
    }
    const struct {
        vmf_dtype t;
        void *data;
    } kinds[] = {{VMF_DTYPE_F32, f4},  {VMF_DTYPE_F64, f8},  {VMF_DTYPE_I16, raw},
                 {VMF_DTYPE_I32, raw}, {VMF_DTYPE_I64, raw}, {VMF_DTYPE_U8, raw}};
    const size_t shapes[][4] = {{0}, {1, 60}, {2, 6, 10}, {3, 3, 4, 5}, {2, 0, 7}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            vmf_array a = {0};
            a.dtype = kinds[k].t;
            a.ndim = shapes[s][0];
            a.count = 1;
            for (size_t i = 0; i < a.ndim; i++) {
                a.shape[i] = shapes[s][i + 1];
                a.count *= a.shape[i];
            }
            a.data = kinds[k].data;
            roundtrip(&a, dir);
        }
    }
    const char *words[] = {"", "a", "\xc3\xa9t\xc3\xa9", "\xf0\x9f\x99\x82 ok", "longest word here",
                           "x"};
    vmf_array s = {VMF_DTYPE_STR, 2, {3, 2}, 6, (void *)words};
    roundtrip(&s, dir);
    vmf_array e = {VMF_DTYPE_STR, 1, {0}, 0, NULL};
    roundtrip(&e, dir);

    /* No temporary file is left beside the target. */
    vmf_test_assert_only_file(dir, "rt.npy");
    vmf_test_rmtree(dir);
}

/* Builds an .npy image with a literal header text, padded (or not) like numpy. */
static size_t make_npy(unsigned char *out, int major, const char *header, int pad, const void *data,
                       size_t dlen)
{
    size_t lb = major == 1 ? 2 : 4, hl = strlen(header);
    size_t total_h = hl + 1;
    if (pad)
        total_h += 64 - ((8 + lb + hl + 1) % 64);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < lb; i++)
        out[8 + i] = (unsigned char)(total_h >> (8 * i));
    memcpy(out + 8 + lb, header, hl);
    memset(out + 8 + lb + hl, ' ', total_h - hl - 1);
    out[8 + lb + total_h - 1] = '\n';
    memcpy(out + 8 + lb + total_h, data, dlen);
    return 8 + lb + total_h + dlen;
}

/* '<f2' (numpy float16, as CLIP pipelines save embeddings) is widened to float32 exactly. */
static void test_float16(void **state)
{
    (void)state;
    /* 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), -0, 1/3 rounded, 2^-14 */
    const uint16_t h[8] = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x3555, 0x0400};
    const float want[8] = {1.0f, -2.0f, 0.5f, 65504.0f, 0x1p-24f, -0.0f, 0x1.554p-2f, 0x1p-14f};
    unsigned char raw[16], img[256];
    for (size_t i = 0; i < 8; i++) {
        raw[2 * i] = (unsigned char)(h[i] & 0xff);
        raw[2 * i + 1] = (unsigned char)(h[i] >> 8);
    }
    size_t len =
        make_npy(img, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 4), }", 1, raw, 16);
    vmf_array a;
    vmf_assert_ok(vmf_npy_read_mem(img, len, &a));
    assert_shape(&a, VMF_DTYPE_F32, 2, 2, 4);
    assert_memory_equal(a.data, want, sizeof want);
    vmf_array_free(&a);
    /* Truncated data is still refused with the file's own byte count. */
    vmf_array bad;
    assert_int_equal(vmf_npy_read_mem(img, len - 1, &bad), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "truncated"));
    /* Big-endian half is refused like every big-endian dtype. */
    len = make_npy(img, 1, "{'descr': '>f2', 'fortran_order': False, 'shape': (8,), }", 1, raw, 16);
    assert_int_equal(vmf_npy_read_mem(img, len, &bad), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "big-endian"));
}

static void test_header_spellings(void **state)
{
    (void)state;
    const float v[6] = {1, 2, 3, 4, 5, 6};
    const struct {
        int major;
        const char *header;
        size_t ndim, s0, s1;
    } ok[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 2, 2, 3},
        {1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2, 2, 3},
        {1, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3)}", 2, 2, 3},
        {1, "  {  'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 6 , ) , }  ", 1, 6, 0},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 2, 2, 3},
        {1, "{'descr': '|f4', 'fortran_order': False, 'shape': (6,), }", 1, 6, 0},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", 1, 6, 0},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }", 2, 1, 6},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 2, 3, 2},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 2, 3, 2},
    };
    unsigned char img[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        for (int pad = 0; pad < 2; pad++) {
            size_t len = make_npy(img, ok[i].major, ok[i].header, pad, v, sizeof v);
            vmf_array a;
            int rc = vmf_npy_read_mem(img, len, &a);
            if (rc != VMF_OK)
                fail_msg("header %zu (%s) rejected: %s", i, ok[i].header, vmf_last_error());
            assert_shape(&a, VMF_DTYPE_F32, ok[i].ndim, ok[i].s0, ok[i].s1);
            assert_memory_equal(a.data, v, sizeof v);
            vmf_array_free(&a);
        }
    }
    /* A NUL or another control character inside a key or dtype string is refused
     * (it would otherwise end the C string early: 'descr\0x' read as 'descr'). */
    static const char nul_key[] = "{'descr\0x': '<f4', 'fortran_order': False, 'shape': (6,), }";
    memcpy(img, "\x93NUMPY\x01\x00\x3e\x00", 10);
    memcpy(img + 10, nul_key, sizeof nul_key - 1);
    memset(img + 10 + sizeof nul_key - 1, ' ', 62 - (sizeof nul_key - 1));
    img[10 + 61] = '\n';
    memcpy(img + 72, v, sizeof v);
    vmf_array bad;
    assert_int_equal(vmf_npy_read_mem(img, 72 + sizeof v, &bad), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "control character 0x00"));

    /* A single-byte dtype has no byte order: '>u1' and '<u1' mean '|u1'. */
    size_t len =
        make_npy(img, 1, "{'descr': '>u1', 'fortran_order': False, 'shape': (4,)}", 1, "abcd", 4);
    vmf_array a;
    vmf_assert_ok(vmf_npy_read_mem(img, len, &a));
    assert_int_equal(a.dtype, VMF_DTYPE_U8);
    assert_memory_equal(a.data, "abcd", 4);
    vmf_array_free(&a);
}

static int read_npy(const char *path)
{
    vmf_array a;
    int rc = vmf_npy_read(path, &a);
    assert_null(a.data);
    vmf_array_free(&a);
    return rc;
}

static int load_matrix(const char *path)
{
    float *x = (float *)1;
    size_t n = 1, d = 1;
    vmf_array y;
    int rc = vmf_load_matrix(path, &x, &n, &d, &y);
    assert_null(x);
    assert_int_equal(n, 0);
    assert_null(y.data);
    return rc;
}

static void test_malformed_battery(void **state)
{
    (void)state;
    assert_true(battery_run("npy", read_npy) >= 40);
    assert_true(battery_run("matrix", load_matrix) >= 6);
}

/* The 10^9-row header is refused before any data allocation: with every
 * allocation after the header's failing, the answer is still EFORMAT. */
static void test_huge_shape_allocates_nothing(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/malformed/npy_huge_rows.npy", VMF_TEST_VECTORS_DIR);
    vmf_array a;
    vmf_debug_fail_alloc_after(1);
    int rc = vmf_npy_read(path, &a);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "shape (1000000000, 64) of <f4 needs 256000000000"));
    size_t len;
    unsigned char *img = vmf_test_read_file(path, &len);
    assert_int_equal(len, 200);
    vmf_debug_fail_alloc_after(1);
    rc = vmf_npy_read_mem(img, len, &a);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_EFORMAT);
    /* Every prefix of a valid file is refused cleanly. */
    char p[1024];
    unsigned char *good = vmf_test_read_file(fixture("U_4.npy", p, sizeof p), &len);
    for (size_t cut = 0; cut < len; cut++) {
        rc = vmf_npy_read_mem(good, cut, &a);
        assert_int_equal(rc, VMF_EFORMAT);
        assert_null(a.data);
    }
    free(good);
    free(img);
}

/* An array one byte over VMF_IO_MAX_BYTES, in a sparse file that really has
 * the bytes, is refused by the limit before any allocation. */
static void test_size_limit(void **state)
{
    (void)state;
    char dir[512], path[1024];
    unsigned char img[256];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/big.npy", dir);
    size_t hl = make_npy(
        img, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (68719476737,), }", 1, "", 0);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(img, 1, hl, fp), hl);
    fflush(fp);
    if (ftruncate(fileno(fp), (off_t)(hl + VMF_IO_MAX_BYTES + 1)) != 0) {
        fclose(fp);
        vmf_test_rmtree(dir);
        skip();
    }
    fclose(fp);
    vmf_array a;
    vmf_debug_fail_alloc_after(1);
    int rc = vmf_npy_read(path, &a);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_EFORMAT);
    assert_non_null(
        strstr(vmf_last_error(), "needs 68719476737 bytes, above the 68719476736-byte limit"));
    vmf_test_rmtree(dir);
}

/* Every allocation failure is reported as VMF_ENOMEM and leaks nothing. */
static void test_allocation_failures(void **state)
{
    (void)state;
    char p[1024], dir[512], out[1024];
    size_t len;
    unsigned char *img = vmf_test_read_file(fixture("U_4.npy", p, sizeof p), &len);
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.npy", dir);
    vmf_array ref = read_fixture("U_4.npy");
    int ok_seen = 0;
    for (long k = 0; k < 40; k++) {
        vmf_array a;
        vmf_debug_fail_alloc_after(k);
        int r1 = vmf_npy_read_mem(img, len, &a);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r1 == VMF_OK || r1 == VMF_ENOMEM);
        vmf_array_free(&a);
        vmf_debug_fail_alloc_after(k);
        r1 = vmf_npy_read(p, &a);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r1 == VMF_OK || r1 == VMF_ENOMEM);
        vmf_array_free(&a);
        void *buf = NULL;
        size_t blen;
        vmf_debug_fail_alloc_after(k);
        int r2 = vmf_npy_write_mem(&ref, &buf, &blen);
        int r3 = vmf_npy_write(out, &ref);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r2 == VMF_OK || r2 == VMF_ENOMEM);
        assert_true(r3 == VMF_OK || r3 == VMF_ENOMEM);
        free(buf);
        ok_seen += r1 == VMF_OK && r2 == VMF_OK && r3 == VMF_OK;
    }
    assert_true(ok_seen > 0);
    vmf_array_free(&ref);
    free(img);
    vmf_test_rmtree(dir);
}

static void test_write_errors(void **state)
{
    (void)state;
    float v[4] = {1, 2, 3, 4};
    vmf_array a = {VMF_DTYPE_F32, 2, {2, 2}, 4, v};
    int rc = vmf_npy_write("/nonexistent-dir/x.npy", &a);
    assert_int_equal(rc, VMF_EIO);
    assert_non_null(strstr(vmf_last_error(), "/nonexistent-dir/x.npy"));

    void *buf;
    size_t len;
    vmf_array bad = a;
    bad.count = 5;
    assert_int_equal(vmf_npy_write_mem(&bad, &buf, &len), VMF_EINVAL);
    assert_null(buf);
    bad = a;
    bad.ndim = 9;
    assert_int_equal(vmf_npy_write_mem(&bad, &buf, &len), VMF_EINVAL);
    bad = a;
    bad.data = NULL;
    assert_int_equal(vmf_npy_write_mem(&bad, &buf, &len), VMF_EINVAL);
    bad = a;
    bad.dtype = (vmf_dtype)42;
    assert_int_equal(vmf_npy_write_mem(&bad, &buf, &len), VMF_EINVAL);
    const char *notutf8[] = {"ok", "\xc3("};
    vmf_array s = {VMF_DTYPE_STR, 1, {2}, 2, (void *)notutf8};
    assert_int_equal(vmf_npy_write_mem(&s, &buf, &len), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "string 1 is not valid UTF-8"));
    assert_int_equal(vmf_npy_write_mem(NULL, &buf, &len), VMF_EINVAL);
    assert_int_equal(vmf_npy_read_mem(NULL, 0, &a), VMF_EFORMAT);
    assert_int_equal(vmf_npy_read_mem(NULL, 3, &a), VMF_EINVAL);
    assert_int_equal(vmf_npy_read("/nonexistent-dir/x.npy", &a), VMF_EIO);
    assert_int_equal(vmf_npy_read("/", &a), VMF_EIO);
}

static void test_dtype_names(void **state)
{
    (void)state;
    const struct {
        vmf_dtype t;
        const char *name;
        size_t size;
    } want[] = {{VMF_DTYPE_F32, "<f4", 4},
                {VMF_DTYPE_F64, "<f8", 8},
                {VMF_DTYPE_I16, "<i2", 2},
                {VMF_DTYPE_I32, "<i4", 4},
                {VMF_DTYPE_I64, "<i8", 8},
                {VMF_DTYPE_U8, "|u1", 1},
                {VMF_DTYPE_STR, "<U", sizeof(char *)}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(vmf_dtype_name(want[i].t), want[i].name);
        assert_int_equal(vmf_dtype_size(want[i].t), want[i].size);
    }
    assert_int_equal(vmf_dtype_size((vmf_dtype)99), 0);
    vmf_array_free(NULL);
    vmf_array z = {0};
    vmf_array_free(&z);
}

static void test_to_f32(void **state)
{
    (void)state;
    float *x;
    size_t n, d;
    int16_t i2[] = {-32768, 1, 2, 32767, 0, -5};
    vmf_array a = {VMF_DTYPE_I16, 2, {3, 2}, 6, i2};
    vmf_assert_ok(vmf_array_to_f32(&a, &x, &n, &d));
    assert_int_equal(n, 3);
    assert_int_equal(d, 2);
    for (size_t i = 0; i < 6; i++)
        assert_true(x[i] == (float)i2[i]);
    free(x);

    int64_t i8[] = {INT64_MAX, INT64_MIN, 16777217, 3};
    vmf_array b = {VMF_DTYPE_I64, 2, {2, 2}, 4, i8};
    vmf_assert_ok(vmf_array_to_f32(&b, &x, &n, &d));
    assert_true(x[0] == 9223372036854775808.0f);
    assert_true(x[2] == 16777216.0f); /* rounded to nearest even */
    free(x);

    uint8_t u1[] = {0, 255};
    vmf_array c = {VMF_DTYPE_U8, 2, {1, 2}, 2, u1};
    vmf_assert_ok(vmf_array_to_f32(&c, &x, &n, &d));
    assert_true(x[1] == 255.0f);
    free(x);

    double f8[] = {0.1, -3.4028235e38, 1e-50, 2.0};
    vmf_array e = {VMF_DTYPE_F64, 2, {2, 2}, 4, f8};
    vmf_assert_ok(vmf_array_to_f32(&e, &x, &n, &d));
    assert_true(x[0] == 0.1f);
    assert_true(x[1] == -3.4028234663852886e38f); /* rounds down to -FLT_MAX */
    assert_true(x[2] == 0.0f);
    free(x);
    f8[3] = 3.5e38;
    assert_int_equal(vmf_array_to_f32(&e, &x, &n, &d), VMF_ERANGE);
    assert_non_null(strstr(vmf_last_error(), "row 1, column 1"));
    assert_null(x);
    f8[3] = NAN;
    assert_int_equal(vmf_array_to_f32(&e, &x, &n, &d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1, column 1 is NaN"));

    float f4[] = {1, 2, INFINITY, 4};
    vmf_array f = {VMF_DTYPE_F32, 2, {2, 2}, 4, f4};
    assert_int_equal(vmf_array_to_f32(&f, &x, &n, &d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1, column 0 is infinite"));
    f4[2] = 3;
    vmf_assert_ok(vmf_array_to_f32(&f, &x, &n, &d));
    assert_memory_equal(x, f4, sizeof f4);
    free(x);

    vmf_array g = {VMF_DTYPE_F32, 1, {4}, 4, f4};
    assert_int_equal(vmf_array_to_f32(&g, &x, &n, &d), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "got shape (4,)"));
    const char *s[] = {"a"};
    vmf_array h = {VMF_DTYPE_STR, 2, {1, 1}, 1, (void *)s};
    assert_int_equal(vmf_array_to_f32(&h, &x, &n, &d), VMF_EINVAL);
    vmf_array k = {VMF_DTYPE_F32, 2, {2, 3}, 4, f4};
    assert_int_equal(vmf_array_to_f32(&k, &x, &n, &d), VMF_EINVAL);
    vmf_array empty = {VMF_DTYPE_F32, 2, {0, 64}, 0, NULL};
    vmf_assert_ok(vmf_array_to_f32(&empty, &x, &n, &d));
    assert_int_equal(n, 0);
    assert_int_equal(d, 64);
    free(x);
}

static void test_load_matrix(void **state)
{
    (void)state;
    char p[1024];
    float *x;
    size_t n, d;
    vmf_array y;

    /* The real embeddings: float32 (21262, 64), unit rows. */
    vmf_assert_ok(
        vmf_load_matrix(vmf_test_data_path("fmnist-cce64.X.npy", p, sizeof p), &x, &n, &d, &y));
    assert_int_equal(d, 64);
    assert_true(n > 20000);
    assert_null(y.data);
    double norm = 0;
    for (size_t j = 0; j < d; j++)
        norm += (double)x[(n - 1) * d + j] * x[(n - 1) * d + j];
    vmf_assert_close(norm, 1.0, 1e-5, 0);
    free(x);

    vmf_assert_ok(vmf_load_matrix(fixture("Xy_stored.npz", p, sizeof p), &x, &n, &d, &y));
    assert_int_equal(n, 6);
    assert_int_equal(d, 3);
    for (size_t i = 0; i < 18; i++)
        assert_true(x[i] == (float)grid(i, 18, 0.125));
    assert_int_equal(y.dtype, VMF_DTYPE_STR);
    assert_string_equal(((char **)y.data)[3], "c");
    vmf_array_free(&y);
    free(x);

    vmf_assert_ok(vmf_load_matrix(fixture("Xy_deflated.npz", p, sizeof p), &x, &n, &d, &y));
    assert_int_equal(y.dtype, VMF_DTYPE_I32);
    assert_int_equal(((int32_t *)y.data)[3], 2);
    vmf_array_free(&y);
    free(x);

    vmf_assert_ok(vmf_load_matrix(fixture("only_X.npz", p, sizeof p), &x, &n, &d, &y));
    assert_null(y.data);
    assert_int_equal(n, 6);
    free(x);
    vmf_assert_ok(vmf_load_matrix(fixture("Xy_stored.npz", p, sizeof p), &x, &n, &d, NULL));
    free(x);

    /* int16 and float64 files convert; a CSV and an upper-case extension load. */
    vmf_assert_ok(vmf_load_matrix(fixture("i2_2x3.npy", p, sizeof p), &x, &n, &d, NULL));
    assert_true(x[0] == -32768.0f && x[5] == 32767.0f);
    free(x);
    char dir[512], csv[1024];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/m.CSV", dir);
    vmf_test_write_text(csv, "a,b\n1.5,2\n-3,4e-3\n");
    vmf_assert_ok(vmf_load_matrix(csv, &x, &n, &d, &y));
    assert_int_equal(n, 2);
    assert_int_equal(d, 2);
    assert_true(x[3] == 4e-3f);
    assert_null(y.data);
    free(x);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_fixtures),
        cmocka_unit_test(test_writer_matches_numpy),
        cmocka_unit_test(test_roundtrip_every_dtype),
        cmocka_unit_test(test_header_spellings),
        cmocka_unit_test(test_float16),
        cmocka_unit_test(test_malformed_battery),
        cmocka_unit_test(test_huge_shape_allocates_nothing),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_to_f32),
        cmocka_unit_test(test_load_matrix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
