/*
 * test_vmfd_badinput.c - the bad-input battery: hostile and malformed
 * requests against one real vmfd (1 MiB body limit, 4 KiB header limit, a
 * bearer token, a 600 ms idle timeout, at most 1000 predict rows, a queue
 * of one batch), learned on one seed batch (3 classes, d = 8, integer
 * labels).
 *
 * Every case asserts the status vmfd documents (docs/vmfd.md) and, where
 * the answer has a body, the JSON error {"error": CODE, "detail": TEXT}.
 * The last test asserts that the daemon is still healthy and that nothing
 * in the store changed: the rows of every table and the newest checkpoint's
 * model, byte for byte, are those taken after the seed batch.
 */
#include "vmfd_e2e_util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TOKEN   "battery-token-0123456789"
#define AUTH    "Authorization: Bearer " TOKEN "\r\n"
#define D       8
#define PER     40 /* seed rows per class */
#define IDLE_MS 600

static e2e_proc proc;

typedef struct baseline {
    long long batches, batch_data, checkpoints, classes, components;
    void *model;
    size_t model_len;
    long long checkpoint_id;
} baseline;
static baseline base;

/* ---- helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Three well separated classes in d = 8, PER unit rows each. */
static void seed_rows(float *x, int64_t *y)
{
    uint64_t s = 777;
    for (size_t c = 0; c < 3; c++) {
        for (size_t i = 0; i < PER; i++) {
            size_t r = c * PER + i;
            e2e_axis_row(&s, x + r * D, D, c, 4.0, 0.3);
            y[r] = (int64_t)c;
        }
    }
}

/* An .npz of arbitrary members (names without ".npy"). */
static void npz_of(const char *const *names, const vmf_array *const *arrays, size_t count,
                   void **buf, size_t *len)
{
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, count, buf, len));
}

static vmf_array arr(vmf_dtype t, size_t ndim, const size_t *shape, const void *data)
{
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = t;
    a.ndim = ndim;
    a.count = 1;
    for (size_t i = 0; i < ndim; i++) {
        a.shape[i] = shape[i];
        a.count *= shape[i];
    }
    a.data = (void *)(uintptr_t)data;
    return a;
}

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* A version 1.0 .npy image: the given header dict and payload bytes of zeros. */
static size_t raw_npy(const char *dict, size_t payload, unsigned char *out, size_t cap)
{
    size_t dlen = strlen(dict);
    size_t hlen = 10 + dlen + 1;
    size_t total = (hlen + 63) / 64 * 64;
    assert_true(total + payload <= cap);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    put_u16(out + 8, (unsigned)(total - 10));
    memcpy(out + 10, dict, dlen);
    memset(out + 10 + dlen, ' ', total - 10 - dlen - 1);
    out[total - 1] = '\n';
    memset(out + total, 0, payload);
    return total + payload;
}

/* A stored (uncompressed) zip of one member name holding data. */
static size_t stored_zip(const char *name, const unsigned char *data, size_t n, unsigned char *out,
                         size_t cap)
{
    size_t nl = strlen(name);
    assert_true(30 + nl + n + 46 + nl + 22 <= cap);
    uint32_t crc = crc32_of(data, n);
    unsigned char *p = out;
    put_u32(p, 0x04034b50u);
    put_u16(p + 4, 20);
    put_u16(p + 6, 0);
    put_u16(p + 8, 0);
    put_u16(p + 10, 0);
    put_u16(p + 12, 0x21);
    put_u32(p + 14, crc);
    put_u32(p + 18, (uint32_t)n);
    put_u32(p + 22, (uint32_t)n);
    put_u16(p + 26, (unsigned)nl);
    put_u16(p + 28, 0);
    memcpy(p + 30, name, nl);
    memcpy(p + 30 + nl, data, n);
    size_t cd = 30 + nl + n;
    p = out + cd;
    put_u32(p, 0x02014b50u);
    put_u16(p + 4, 20);
    put_u16(p + 6, 20);
    put_u16(p + 8, 0);
    put_u16(p + 10, 0);
    put_u16(p + 12, 0);
    put_u16(p + 14, 0x21);
    put_u32(p + 16, crc);
    put_u32(p + 20, (uint32_t)n);
    put_u32(p + 24, (uint32_t)n);
    put_u16(p + 28, (unsigned)nl);
    memset(p + 30, 0, 12); /* extra, comment, disk, attributes */
    put_u32(p + 42, 0);
    memcpy(p + 46, name, nl);
    size_t cdlen = 46 + nl;
    p = out + cd + cdlen;
    put_u32(p, 0x06054b50u);
    put_u16(p + 4, 0);
    put_u16(p + 6, 0);
    put_u16(p + 8, 1);
    put_u16(p + 10, 1);
    put_u32(p + 12, (uint32_t)cdlen);
    put_u32(p + 16, (uint32_t)cd);
    put_u16(p + 20, 0);
    return cd + cdlen + 22;
}

/* One authenticated request (Connection: close). */
static void req(const char *method, const char *path, const char *ctype, const void *body,
                size_t len, e2e_resp *r)
{
    assert_int_equal(e2e_http(proc.port, method, path, ctype, body, len, AUTH, r), 0);
}

/* Asserts status, a JSON content type and the body {"error": code, "detail": non-empty}. */
static void assert_error(const e2e_resp *r, int status, const char *code)
{
    if (r->status != status) {
        print_error("expected %d %s, got %d: %s\n", status, code, r->status,
                    r->body ? r->body : "");
        fail();
    }
    assert_non_null(strstr(r->headers, "Content-Type: application/json"));
    json_error_t je;
    json_t *o = json_loadb(r->body, r->len, 0, &je);
    if (!o) {
        print_error("error body is not JSON (%s): %s\n", je.text, r->body);
        fail();
    }
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), 2);
    json_t *e = json_object_get(o, "error"), *dt = json_object_get(o, "detail");
    assert_true(json_is_string(e));
    assert_true(json_is_string(dt));
    if (strcmp(json_string_value(e), code) != 0) {
        print_error("expected error \"%s\", got \"%s\" (%s)\n", code, json_string_value(e),
                    json_string_value(dt));
        fail();
    }
    assert_true(strlen(json_string_value(dt)) > 0);
    json_decref(o);
}

static void expect(const char *method, const char *path, const char *ctype, const void *body,
                   size_t len, int status, const char *code)
{
    e2e_resp r;
    req(method, path, ctype, body, len, &r);
    assert_error(&r, status, code);
    e2e_resp_free(&r);
}

static void expect_json(const char *method, const char *path, const char *json, int status,
                        const char *code)
{
    expect(method, path, "application/json", json, strlen(json), status, code);
}

static void expect_npz(const char *key, const void *npz, size_t len, int status, const char *code)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    expect("PUT", path, "application/x-npz", npz, len, status, code);
}

/* PUTs an .npz of the given members as batch key and expects the error. */
static void expect_members(const char *key, const char *const *names,
                           const vmf_array *const *arrays, size_t count, int status,
                           const char *code)
{
    void *npz;
    size_t len;
    npz_of(names, arrays, count, &npz, &len);
    expect_npz(key, npz, len, status, code);
    free(npz);
}

/* PUTs X float32 [n][d] and y int64 [ny] as batch key and expects the error. */
static void expect_xy(const char *key, const float *x, size_t n, size_t d, const int64_t *y,
                      size_t ny, int status, const char *code)
{
    void *npz;
    size_t len;
    vmf_test_npz_xy(x, n, d, y, ny, &npz, &len);
    expect_npz(key, npz, len, status, code);
    free(npz);
}

/* One response parsed out of raw bytes. */
typedef struct raw_resp {
    int status;
    char headers[2048];
    char body[2048];
} raw_resp;

/* Splits HTTP/1.1 responses out of buf (each with Content-Length); returns the count. */
static int parse_raw(const char *buf, raw_resp *out, int max)
{
    int n = 0;
    const char *p = buf;
    while (n < max && strncmp(p, "HTTP/1.1 ", 9) == 0) {
        const char *hend = strstr(p, "\r\n\r\n");
        if (!hend)
            break;
        out[n].status = atoi(p + 9);
        snprintf(out[n].headers, sizeof out[n].headers, "%.*s", (int)(hend - p), p);
        const char *cl = strstr(out[n].headers, "Content-Length: ");
        size_t blen = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
        snprintf(out[n].body, sizeof out[n].body, "%.*s", (int)blen, hend + 4);
        p = hend + 4 + blen;
        n++;
    }
    return n;
}

static void raw_error(const raw_resp *rr, int status, const char *code)
{
    e2e_resp r = {rr->status, (char *)(uintptr_t)rr->headers, (char *)(uintptr_t)rr->body,
                  strlen(rr->body)};
    assert_error(&r, status, code);
}

/* Raw bytes on one connection; the server must answer and close within timeout_ms. */
static int raw_exchange(const void *data, size_t len, raw_resp *out, int max, double *secs)
{
    char *buf = NULL;
    double t0 = now_s();
    long got = e2e_raw(proc.port, data, len, 0, 0, 5000, &buf);
    if (secs)
        *secs = now_s() - t0;
    assert_true(got >= 0);
    int n = parse_raw(buf, out, max);
    free(buf);
    return n;
}

/* Raw bytes that must get exactly one error response; returns it in *rr. */
static void raw_expect_one(const void *data, size_t len, int status, const char *code, raw_resp *rr)
{
    raw_resp out[2];
    int n = raw_exchange(data, len, out, 2, NULL);
    assert_int_equal(n, 1);
    raw_error(&out[0], status, code);
    *rr = out[0];
}

/* prefix, then pad bytes of fill, then suffix (malloc'ed; length in *len). */
static char *padded(const char *prefix, char fill, size_t pad, const char *suffix, size_t *len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *buf = malloc(pl + pad + sl);
    assert_non_null(buf);
    memcpy(buf, prefix, pl);
    memset(buf + pl, fill, pad);
    memcpy(buf + pl + pad, suffix, sl);
    *len = pl + pad + sl;
    return buf;
}

/* The seed model's snapshot of the store. */
static void take_baseline(baseline *b)
{
    b->batches = e2e_sql_int(proc.state, "SELECT count(*) FROM batches");
    b->batch_data = e2e_sql_int(proc.state, "SELECT count(*) FROM batch_data");
    b->checkpoints = e2e_sql_int(proc.state, "SELECT count(*) FROM checkpoints");
    b->classes = e2e_sql_int(proc.state, "SELECT count(*) FROM classes");
    b->components = e2e_sql_int(proc.state, "SELECT count(*) FROM components");
    b->model = e2e_latest_model_blob(proc.state, &b->model_len, &b->checkpoint_id);
}

static const char *wait_applied(const char *key, char *status, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    snprintf(status, size, "timeout");
    for (int i = 0; i < 3000; i++) {
        e2e_resp r;
        req("GET", path, NULL, NULL, 0, &r);
        json_t *o = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        const char *s = o ? json_string_value(json_object_get(o, "status")) : NULL;
        if (s)
            snprintf(status, size, "%s", s);
        json_decref(o);
        e2e_resp_free(&r);
        if (s && strcmp(status, "queued") != 0)
            return status;
        e2e_sleep_ms(10);
    }
    return status;
}

static int setup(void **state)
{
    (void)state;
    e2e_init(&proc);
    char conf[700], tok[700];
    snprintf(tok, sizeof tok, "%s/token", proc.dir);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", proc.dir);
    FILE *f = fopen(tok, "w");
    assert_non_null(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "[server]\ntoken_file = %s\nmax_body_bytes = 1048576\nmax_header_bytes = 4096\n"
            "idle_timeout_ms = %d\npredict_max_rows = 1000\n[store]\nqueue_length = 1\n"
            "[inbox]\nenabled = false\n",
            tok, IDLE_MS);
    fclose(f);
    const char *extra[] = {"--config", conf, NULL};
    e2e_start(&proc, extra, 1);

    float x[3 * PER * D];
    int64_t y[3 * PER];
    seed_rows(x, y);
    void *npz;
    size_t len;
    vmf_test_npz_xy(x, 3 * PER, D, y, 3 * PER, &npz, &len);
    e2e_resp r;
    req("PUT", "/v1/batches/seed", "application/x-npz", npz, len, &r);
    assert_int_equal(r.status, 202);
    e2e_resp_free(&r);
    free(npz);
    char st[32];
    assert_string_equal(wait_applied("seed", st, sizeof st), "applied");
    take_baseline(&base);
    assert_non_null(base.model);
    assert_int_equal(base.batches, 1);
    assert_int_equal(base.classes, 3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (proc.pid > 0)
        e2e_stop(&proc, 15);
    free(base.model);
    vmf_test_rmtree(proc.dir);
    return 0;
}

/* ---- ingest: the rows ---- */

static void test_wrong_dimension(void **state)
{
    (void)state;
    float x[2 * (D + 1)];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < 2 * (D + 1); i++)
        x[i] = (float)(i % 3) + 0.5f;
    expect_xy("wrong-dim", x, 2, D + 1, y, 2, 422, "bad_dimension");
}

static void put_one_bad_value(const char *key, float value, const char *code)
{
    float x[2 * D];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < 2 * D; i++)
        x[i] = 0.25f;
    x[D + 3] = value;
    expect_xy(key, x, 2, D, y, 2, 422, code);
}

static void test_nan(void **state)
{
    (void)state;
    put_one_bad_value("nan", NAN, "non_finite");
}

static void test_inf(void **state)
{
    (void)state;
    put_one_bad_value("inf", -INFINITY, "non_finite");
}

static void test_zero_vector(void **state)
{
    (void)state;
    float x[2 * D];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < D; i++) {
        x[i] = 0.5f;
        x[D + i] = 0.0f;
    }
    expect_xy("zero", x, 2, D, y, 2, 422, "zero_vector");
}

static void test_truncated_npz(void **state)
{
    (void)state;
    float x[3 * PER * D];
    int64_t y[3 * PER];
    seed_rows(x, y);
    void *npz;
    size_t len;
    vmf_test_npz_xy(x, 3 * PER, D, y, 3 * PER, &npz, &len);
    expect_npz("truncated", npz, len / 2, 400, "bad_npz");
    free(npz);
}

static void test_not_a_zip(void **state)
{
    (void)state;
    static const char junk[] = "this is not a zip archive, just text sent as npz";
    expect_npz("junk", junk, sizeof junk - 1, 400, "bad_npz");
}

static void test_npz_without_x(void **state)
{
    (void)state;
    int64_t y[2] = {0, 1};
    size_t sy[1] = {2};
    vmf_array ya = arr(VMF_DTYPE_I64, 1, sy, y);
    const char *names[1] = {"y"};
    const vmf_array *arrays[1] = {&ya};
    expect_members("no-x", names, arrays, 1, 422, "missing_x");
}

static void test_x_int_dtype(void **state)
{
    (void)state;
    int32_t xi[2 * D];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < 2 * D; i++)
        xi[i] = (int32_t)(i + 1);
    size_t sx[2] = {2, D}, sy[1] = {2};
    vmf_array xa = arr(VMF_DTYPE_I32, 2, sx, xi), ya = arr(VMF_DTYPE_I64, 1, sy, y);
    const char *names[2] = {"X", "y"};
    const vmf_array *arrays[2] = {&xa, &ya};
    expect_members("int-x", names, arrays, 2, 422, "bad_dtype");
}

static void test_x_three_dims(void **state)
{
    (void)state;
    float x[2 * 2 * D];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < 4 * D; i++)
        x[i] = 0.5f;
    size_t sx[3] = {2, 2, D}, sy[1] = {2};
    vmf_array xa = arr(VMF_DTYPE_F32, 3, sx, x), ya = arr(VMF_DTYPE_I64, 1, sy, y);
    const char *names[2] = {"X", "y"};
    const vmf_array *arrays[2] = {&xa, &ya};
    expect_members("x-3d", names, arrays, 2, 422, "bad_shape");
}

static void test_label_count_mismatch(void **state)
{
    (void)state;
    float x[3 * D];
    int64_t y[2] = {0, 1};
    for (size_t i = 0; i < 3 * D; i++)
        x[i] = 0.5f;
    expect_xy("mismatch", x, 3, D, y, 2, 422, "label_count");
}

static void test_empty_batch(void **state)
{
    (void)state;
    float dummy[1] = {0.0f};
    int64_t ydummy[1] = {0};
    expect_xy("empty", dummy, 0, D, ydummy, 0, 422, "empty");
    expect_json("PUT", "/v1/batches/empty-json", "{\"embeddings\":[],\"labels\":[]}", 422, "empty");
}

static void test_empty_body(void **state)
{
    (void)state;
    expect("PUT", "/v1/batches/no-body", "application/x-npz", NULL, 0, 400, "empty_body");
}

static void test_missing_labels(void **state)
{
    (void)state;
    expect_json("PUT", "/v1/batches/unlabelled", "{\"embeddings\":[[1,0,0,0,0,0,0,0]]}", 422,
                "missing_labels");
}

static void test_label_kind(void **state)
{
    (void)state;
    /* The model's labels are integers. */
    expect_json("PUT", "/v1/batches/strings",
                "{\"embeddings\":[[1,0,0,0,0,0,0,0]],\"labels\":[\"cat\"]}", 422, "label_kind");
    expect_json("PUT", "/v1/batches/mixed",
                "{\"embeddings\":[[1,0,0,0,0,0,0,0],[0,1,0,0,0,0,0,0]],\"labels\":[1,\"x\"]}", 422,
                "bad_labels");
}

/* ---- ingest: JSON ---- */

static void test_invalid_json(void **state)
{
    (void)state;
    expect_json("PUT", "/v1/batches/bad-json", "{\"embeddings\": [[1,2,3]", 400, "bad_json");
    expect_json("PUT", "/v1/batches/not-object", "[[1,0,0,0,0,0,0,0]]", 400, "bad_json");
    expect_json("PUT", "/v1/batches/nan-literal",
                "{\"embeddings\":[[NaN,0,0,0,0,0,0,0]],\"labels\":[1]}", 400, "bad_json");
}

static void test_deeply_nested_json(void **state)
{
    (void)state;
    size_t n = 100000;
    char *body = malloc(2 * n + 32);
    assert_non_null(body);
    size_t k = (size_t)sprintf(body, "{\"embeddings\":");
    memset(body + k, '[', n);
    k += n;
    memset(body + k, ']', n);
    k += n;
    body[k++] = '}';
    expect("PUT", "/v1/batches/deep", "application/json", body, k, 400, "bad_json");
    expect("POST", "/v1/predict", "application/json", body, k, 400, "bad_json");
    free(body);
}

static void test_json_strings_in_embeddings(void **state)
{
    (void)state;
    expect_json("PUT", "/v1/batches/strings-in-rows",
                "{\"embeddings\":[[1,0,0,\"0\",0,0,0,0]],\"labels\":[1]}", 422, "bad_embeddings");
    expect_json("PUT", "/v1/batches/not-rows", "{\"embeddings\":\"1,0,0\",\"labels\":[1]}", 422,
                "bad_embeddings");
}

static void test_json_ragged_rows(void **state)
{
    (void)state;
    expect_json("PUT", "/v1/batches/ragged",
                "{\"embeddings\":[[1,0,0,0,0,0,0,0],[1,0,0]],\"labels\":[1,2]}", 422,
                "bad_dimension");
}

static void test_json_out_of_float_range(void **state)
{
    (void)state;
    expect_json("PUT", "/v1/batches/huge", "{\"embeddings\":[[1e39,0,0,0,0,0,0,0]],\"labels\":[1]}",
                422, "non_finite");
}

/* ---- hostile shapes ---- */

static void test_billion_rows_npy(void **state)
{
    (void)state;
    static unsigned char npy[4096];
    size_t n = raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 8), }", 256,
                       npy, sizeof npy);
    expect("POST", "/v1/predict", "application/x-npy", npy, n, 400, "bad_npy");
}

static void test_billion_rows_npz(void **state)
{
    (void)state;
    static unsigned char npy[4096], zip[8192];
    size_t n = raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 8), }", 256,
                       npy, sizeof npy);
    size_t zlen = stored_zip("X.npy", npy, n, zip, sizeof zip);
    expect_npz("billion", zip, zlen, 400, "bad_npz");
    /* The same archive with an honest header passes the zip and .npy layers:
     * its 8 rows of zeros are then zero vectors, a 422 after decoding. */
    n = raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 8), }", 256, npy,
                sizeof npy);
    zlen = stored_zip("X.npy", npy, n, zip, sizeof zip);
    expect_npz("honest", zip, zlen, 422, "zero_vector");
}

/* ---- HTTP limits ---- */

static void test_body_over_limit_content_length(void **state)
{
    (void)state;
    static const char head[] =
        "PUT /v1/batches/big HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Type: application/x-npz\r\n"
        "Content-Length: 2097152\r\n\r\n";
    raw_resp rr[2];
    double secs;
    /* The refusal comes before any of the body is sent. */
    int n = raw_exchange(head, sizeof head - 1, rr, 2, &secs);
    assert_int_equal(n, 1);
    raw_error(&rr[0], 413, "body_too_large");
    assert_non_null(strstr(rr[0].headers, "Connection: close"));
    assert_true(secs < 4.0);
}

static void test_body_over_limit_chunked(void **state)
{
    (void)state;
    size_t chunk = 64 * 1024, nchunks = 20; /* 1.25 MiB > 1 MiB */
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "PUT /v1/batches/chunked HTTP/1.1\r\nHost: x\r\n" AUTH
                      "Content-Type: application/x-npz\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t cap = (size_t)hl + nchunks * (chunk + 16) + 8;
    char *buf = malloc(cap);
    assert_non_null(buf);
    memcpy(buf, head, (size_t)hl);
    size_t k = (size_t)hl;
    for (size_t i = 0; i < nchunks; i++) {
        k += (size_t)sprintf(buf + k, "%zx\r\n", chunk);
        memset(buf + k, 'z', chunk);
        k += chunk;
        memcpy(buf + k, "\r\n", 2);
        k += 2;
    }
    memcpy(buf + k, "0\r\n\r\n", 5);
    k += 5;
    raw_resp rr;
    raw_expect_one(buf, k, 413, "body_too_large", &rr);
    free(buf);
}

static void test_header_over_limit(void **state)
{
    (void)state;
    size_t k, pad = 6000; /* > max_header_bytes = 4096 */
    char *buf =
        padded("GET /v1/status HTTP/1.1\r\nHost: x\r\n" AUTH "X-Pad: ", 'p', pad, "\r\n\r\n", &k);
    raw_resp rr;
    raw_expect_one(buf, k, 431, "headers_too_large", &rr);
    free(buf);
}

static void test_url_over_limit(void **state)
{
    (void)state;
    size_t k, pad = 5000;
    char *buf = padded("GET /v1/batches/", 'a', pad, " HTTP/1.1\r\nHost: x\r\n\r\n", &k);
    raw_resp rr;
    raw_expect_one(buf, k, 431, "headers_too_large", &rr);
    free(buf);
}

static void test_too_many_predict_rows(void **state)
{
    (void)state;
    size_t n = 1001;
    float *x = malloc(n * D * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n * D; i++)
        x[i] = 0.5f;
    size_t sx[2] = {n, D};
    vmf_array xa = arr(VMF_DTYPE_F32, 2, sx, x);
    void *npy;
    size_t len;
    vmf_assert_ok(vmf_npy_write_mem(&xa, &npy, &len));
    expect("POST", "/v1/predict", "application/x-npy", npy, len, 413, "too_many_rows");
    free(npy);
    free(x);
}

/* ---- routing, methods, media types, authentication ---- */

static void test_unknown_endpoint(void **state)
{
    (void)state;
    expect("GET", "/v2/predict", NULL, NULL, 0, 404, "not_found");
    expect("GET", "/v1/batches/no-such-batch", NULL, NULL, 0, 404, "not_found");
    expect("POST", "/v1/checkpoints/abc/restore", NULL, NULL, 0, 404, "not_found");
}

static void test_bad_method(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"GET", "/v1/predict", "Allow: POST"},
        {"DELETE", "/v1/batches/seed", "Allow: GET, PUT"},
        {"PUT", "/v1/checkpoints", "Allow: GET, POST"},
        {"POST", "/healthz", "Allow: GET"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        e2e_resp r;
        req(cases[i].method, cases[i].path, NULL, NULL, 0, &r);
        assert_error(&r, 405, "method_not_allowed");
        assert_non_null(strstr(r.headers, cases[i].allow));
        e2e_resp_free(&r);
    }
}

static void test_unsupported_media_type(void **state)
{
    (void)state;
    static const char text[] = "1,0,0,0,0,0,0,0\n";
    expect("PUT", "/v1/batches/csv", "text/csv", text, sizeof text - 1, 415,
           "unsupported_media_type");
    expect("POST", "/v1/predict", "text/plain", text, sizeof text - 1, 415,
           "unsupported_media_type");
    expect("POST", "/v1/predict", NULL, text, sizeof text - 1, 415, "unsupported_media_type");
}

static void test_missing_token(void **state)
{
    (void)state;
    e2e_resp r;
    assert_int_equal(e2e_http(proc.port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r), 0);
    assert_error(&r, 401, "unauthorized");
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    e2e_resp_free(&r);
    /* /healthz and /readyz need no token. */
    assert_int_equal(e2e_http(proc.port, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
}

static void test_wrong_token(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Authorization: Bearer battery-token-012345678\r\n",   /* a prefix */
        "Authorization: Bearer battery-token-01234567890\r\n", /* longer */
        "Authorization: Basic YmF0dGVyeTp0b2tlbg==\r\n",       /* other scheme */
        "Authorization: bearer\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e2e_resp r;
        const char body[] = "{\"embeddings\":[[1,0,0,0,0,0,0,0]],\"labels\":[1]}";
        assert_int_equal(e2e_http(proc.port, "PUT", "/v1/batches/intruder", "application/json",
                                  body, sizeof body - 1, bad[i], &r),
                         0);
        assert_error(&r, 401, "invalid_token");
        assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer error=\"invalid_token\""));
        e2e_resp_free(&r);
    }
}

static void test_bad_key(void **state)
{
    (void)state;
    static const char body[] = "{\"embeddings\":[[1,0,0,0,0,0,0,0]],\"labels\":[1]}";
    expect("PUT", "/v1/batches/.hidden", "application/json", body, sizeof body - 1, 400, "bad_key");
    expect("PUT", "/v1/batches/a%2Fb", "application/json", body, sizeof body - 1, 400, "bad_key");
    char longkey[200] = "/v1/batches/";
    memset(longkey + 12, 'k', 129);
    longkey[12 + 129] = '\0';
    expect("PUT", longkey, "application/json", body, sizeof body - 1, 400, "bad_key");
}

/* ---- the HTTP protocol ---- */

static void test_malformed_request_line(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "GARBAGE\r\n\r\n",
        "GET /healthz HTTP/9.9\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        raw_resp rr;
        raw_expect_one(lines[i], strlen(lines[i]), 400, "bad_request", &rr);
        assert_non_null(strstr(rr.headers, "Connection: close"));
    }
}

static void test_http10_answered(void **state)
{
    (void)state;
    static const char r10[] = "GET /healthz HTTP/1.0\r\n\r\n";
    raw_resp rr[2];
    double secs;
    int n = raw_exchange(r10, sizeof r10 - 1, rr, 2, &secs);
    assert_int_equal(n, 1);
    assert_int_equal(rr[0].status, 200);
    assert_non_null(strstr(rr[0].body, "\"ok\""));
    assert_non_null(strstr(rr[0].headers, "Connection: close"));
    assert_true(secs < 0.5 * IDLE_MS / 1000.0 + 1.0); /* closed at once, not by the idle timer */
}

static void test_pipelined(void **state)
{
    (void)state;
    /* Four requests in one write; the last closes the connection. */
    static const char body[] = "{\"embeddings\":[[0,0,1,0,0,0,0,0]]}";
    char burst[2048];
    int k = snprintf(burst, sizeof burst,
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /v1/nope HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n"
                     "POST /v1/predict?top_k=1 HTTP/1.1\r\nHost: x\r\n" AUTH
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s"
                     "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" AUTH "\r\n",
                     sizeof body - 1, body);
    assert_true(k > 0 && (size_t)k < sizeof burst);
    raw_resp rr[6];
    int n = raw_exchange(burst, (size_t)k, rr, 6, NULL);
    assert_int_equal(n, 4);
    assert_int_equal(rr[0].status, 200);
    assert_non_null(strstr(rr[0].body, "\"ok\""));
    raw_error(&rr[1], 404, "not_found");
    assert_int_equal(rr[2].status, 200);
    assert_non_null(strstr(rr[2].body, "\"labels\":[2]"));
    assert_int_equal(rr[3].status, 200);
    assert_non_null(strstr(rr[3].body, "\"batches_applied\":1"));
    assert_non_null(strstr(rr[3].headers, "Connection: close"));
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends one request on fd and reads exactly its response (by Content-Length). */
static void exchange_on(int fd, const char *head, const void *body, size_t len, raw_resp *out)
{
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    if (len)
        assert_int_equal(send(fd, body, len, MSG_NOSIGNAL), (ssize_t)len);
    static char buf[1 << 16];
    size_t got = 0, need = 0;
    for (;;) {
        assert_true(got < sizeof buf - 1);
        struct pollfd pfd = {fd, POLLIN, 0};
        assert_int_equal(poll(&pfd, 1, 5000), 1);
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        assert_true(r > 0); /* the connection stays open */
        got += (size_t)r;
        buf[got] = '\0';
        const char *hend = strstr(buf, "\r\n\r\n");
        if (hend && !need) {
            const char *cl = strstr(buf, "Content-Length: ");
            assert_non_null(cl);
            need = (size_t)(hend + 4 - buf) + strtoul(cl + 16, NULL, 10);
        }
        if (need && got >= need)
            break;
    }
    assert_int_equal(got, need); /* nothing unasked for */
    assert_int_equal(parse_raw(buf, out, 1), 1);
}

static void test_keepalive_sequential(void **state)
{
    (void)state;
    /* Requests sent one after the other's answer on one connection: each
     * begins a new read, with no bytes left over from the previous one. */
    int fd = connect_local(proc.port);
    float x[256 * D];
    for (size_t i = 0; i < 256 * D; i++)
        x[i] = (i % D) == 2 ? 1.0f : 0.01f;
    size_t sx[2] = {256, D};
    vmf_array xa = arr(VMF_DTYPE_F32, 2, sx, x);
    void *npy;
    size_t len;
    vmf_assert_ok(vmf_npy_write_mem(&xa, &npy, &len));
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/predict?top_k=1 HTTP/1.1\r\nHost: x\r\n" AUTH
             "Content-Type: application/x-npy\r\nContent-Length: %zu\r\n\r\n",
             len);
    raw_resp rr;
    for (int round = 0; round < 3; round++) {
        exchange_on(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0, &rr);
        assert_int_equal(rr.status, 200);
        exchange_on(fd, head, npy, len, &rr);
        assert_int_equal(rr.status, 200);
        assert_non_null(strstr(rr.headers, "Connection: keep-alive"));
        exchange_on(fd, "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n", NULL, 0, &rr);
        raw_error(&rr, 404, "not_found");
    }
    free(npy);
    close(fd);
}

static void test_slow_client_idle_timeout(void **state)
{
    (void)state;
    /* A request begun but not finished: 408 after the idle timeout, then close. */
    static const char partial[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
    raw_resp rr[2];
    double secs;
    int n = raw_exchange(partial, sizeof partial - 1, rr, 2, &secs);
    assert_int_equal(n, 1);
    raw_error(&rr[0], 408, "request_timeout");
    assert_true(secs >= 0.8 * IDLE_MS / 1000.0 && secs < 4.0);
    /* Headers trickled a byte every 150 ms (slowloris): every gap is within
     * the idle timeout, yet the headers must be complete within it of their
     * first byte; the whole trickle would take 10 s. */
    static const char trickle[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  "X-Trickle: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    char *tbuf = NULL;
    double t1 = now_s();
    long tgot = e2e_raw(proc.port, trickle, sizeof trickle - 1, 1, 150, 5000, &tbuf);
    secs = now_s() - t1;
    assert_true(tgot > 0);
    n = parse_raw(tbuf, rr, 2);
    free(tbuf);
    assert_int_equal(n, 1);
    raw_error(&rr[0], 408, "request_timeout");
    assert_true(secs < 4.0);
    /* A connection that sends nothing is closed silently. */
    char *buf = NULL;
    double t0 = now_s();
    long got = e2e_raw(proc.port, "", 0, 0, 0, 5000, &buf);
    secs = now_s() - t0;
    assert_int_equal(got, 0);
    free(buf);
    assert_true(secs >= 0.8 * IDLE_MS / 1000.0 && secs < 4.0);
}

/* ---- predict and checkpoints ---- */

static void test_bad_top_k(void **state)
{
    (void)state;
    static const char body[] = "{\"embeddings\":[[1,0,0,0,0,0,0,0]]}";
    static const char *const q[] = {"/v1/predict?top_k=0", "/v1/predict?top_k=-3",
                                    "/v1/predict?top_k=abc", "/v1/predict?top_k=2x",
                                    "/v1/predict?top_k="};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        expect("POST", q[i], "application/json", body, sizeof body - 1, 400, "bad_top_k");
    expect_json("POST", "/v1/predict", "{\"embeddings\":[[1,0,0,0,0,0,0,0]],\"top_k\":0}", 422,
                "bad_top_k");
    expect_json("POST", "/v1/predict", "{\"embeddings\":[[1,0,0,0,0,0,0,0]],\"top_k\":\"2\"}", 422,
                "bad_top_k");
}

static void test_predict_wrong_dimension(void **state)
{
    (void)state;
    expect_json("POST", "/v1/predict", "{\"embeddings\":[[1,0,0,0,0,0,0,0,0]]}", 422,
                "bad_dimension");
    float x[2 * 4] = {1, 0, 0, 0, 0, 1, 0, 0};
    size_t sx[2] = {2, 4};
    vmf_array xa = arr(VMF_DTYPE_F32, 2, sx, x);
    void *npy;
    size_t len;
    vmf_assert_ok(vmf_npy_write_mem(&xa, &npy, &len));
    expect("POST", "/v1/predict", "application/x-npy", npy, len, 422, "bad_dimension");
    free(npy);
}

static void test_predict_bad_rows(void **state)
{
    (void)state;
    expect_json("POST", "/v1/predict", "{\"embeddings\":[[0,0,0,0,0,0,0,0]]}", 422, "zero_vector");
    static const char junk[] = "\x93NUMPY but not really";
    expect("POST", "/v1/predict", "application/x-npy", junk, sizeof junk - 1, 400, "bad_npy");
}

static void test_restore_missing_checkpoint(void **state)
{
    (void)state;
    expect("POST", "/v1/checkpoints/999999/restore", NULL, NULL, 0, 404, "not_found");
    expect("POST", "/v1/checkpoints/0/restore", NULL, NULL, 0, 404, "not_found");
}

static void test_same_key_other_content(void **state)
{
    (void)state;
    float x[3 * PER * D];
    int64_t y[3 * PER];
    seed_rows(x, y);
    x[5] = -x[5]; /* one value differs */
    expect_xy("seed", x, 3 * PER, D, y, 3 * PER, 409, "conflict");
    /* Same rows, other labels: also other content. */
    seed_rows(x, y);
    y[0] = 2;
    expect_xy("seed", x, 3 * PER, D, y, 3 * PER, 409, "conflict");
}

/* ---- afterwards ---- */

static void test_daemon_unchanged(void **state)
{
    (void)state;
    e2e_resp r;
    assert_int_equal(e2e_http(proc.port, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    req("GET", "/v1/status", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    json_t *o = json_loads(r.body, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "batches_applied")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "rows_seen")), 3 * PER);
    assert_int_equal(json_integer_value(json_object_get(o, "queue_depth")), 0);
    json_decref(o);
    e2e_resp_free(&r);

    baseline now;
    take_baseline(&now);
    assert_int_equal(now.batches, base.batches);
    assert_int_equal(now.batch_data, base.batch_data);
    assert_int_equal(now.checkpoints, base.checkpoints);
    assert_int_equal(now.classes, base.classes);
    assert_int_equal(now.components, base.components);
    assert_int_equal(now.checkpoint_id, base.checkpoint_id);
    assert_non_null(now.model);
    assert_int_equal(now.model_len, base.model_len);
    assert_memory_equal(now.model, base.model, base.model_len);
    free(now.model);
    assert_int_equal(
        e2e_sql_int(proc.state, "SELECT count(*) FROM batches WHERE status != 'applied'"), 0);

    /* And it still learns: a good batch after the battery is applied. A
     * second PUT pipelined behind it is parsed as soon as the first is
     * acknowledged, while the first still holds the only queue slot
     * (queue_length = 1): 503 with Retry-After, and nothing stored. */
    float x[3 * PER * D];
    int64_t y[3 * PER];
    seed_rows(x, y);
    for (size_t i = 0; i < 3 * PER * D; i++)
        x[i] = -x[i];
    void *npz;
    size_t len;
    vmf_test_npz_xy(x, 3 * PER, D, y, 3 * PER, &npz, &len);
    char *burst = malloc(2 * len + 1024);
    assert_non_null(burst);
    size_t k = 0;
    for (int i = 0; i < 2; i++) {
        k += (size_t)sprintf(burst + k,
                             "PUT /v1/batches/%s HTTP/1.1\r\nHost: x\r\n" AUTH
                             "Content-Type: application/x-npz\r\nContent-Length: %zu\r\n%s\r\n",
                             i ? "after-busy" : "after", len, i ? "Connection: close\r\n" : "");
        memcpy(burst + k, npz, len);
        k += len;
    }
    raw_resp rr[3];
    int n = raw_exchange(burst, k, rr, 3, NULL);
    free(burst);
    free(npz);
    assert_int_equal(n, 2);
    assert_int_equal(rr[0].status, 202);
    raw_error(&rr[1], 503, "queue_full");
    assert_non_null(strstr(rr[1].headers, "Retry-After: "));
    char st[32];
    assert_string_equal(wait_applied("after", st, sizeof st), "applied");
    req("GET", "/v1/batches/after-busy", NULL, NULL, 0, &r);
    assert_error(&r, 404, "not_found");
    e2e_resp_free(&r);
    assert_int_equal(e2e_sql_int(proc.state, "SELECT count(*) FROM batches"), base.batches + 1);
    assert_int_equal(e2e_stop(&proc, 15), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_dimension),
        cmocka_unit_test(test_nan),
        cmocka_unit_test(test_inf),
        cmocka_unit_test(test_zero_vector),
        cmocka_unit_test(test_truncated_npz),
        cmocka_unit_test(test_not_a_zip),
        cmocka_unit_test(test_npz_without_x),
        cmocka_unit_test(test_x_int_dtype),
        cmocka_unit_test(test_x_three_dims),
        cmocka_unit_test(test_label_count_mismatch),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_missing_labels),
        cmocka_unit_test(test_label_kind),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_deeply_nested_json),
        cmocka_unit_test(test_json_strings_in_embeddings),
        cmocka_unit_test(test_json_ragged_rows),
        cmocka_unit_test(test_json_out_of_float_range),
        cmocka_unit_test(test_billion_rows_npy),
        cmocka_unit_test(test_billion_rows_npz),
        cmocka_unit_test(test_body_over_limit_content_length),
        cmocka_unit_test(test_body_over_limit_chunked),
        cmocka_unit_test(test_header_over_limit),
        cmocka_unit_test(test_url_over_limit),
        cmocka_unit_test(test_too_many_predict_rows),
        cmocka_unit_test(test_unknown_endpoint),
        cmocka_unit_test(test_bad_method),
        cmocka_unit_test(test_unsupported_media_type),
        cmocka_unit_test(test_missing_token),
        cmocka_unit_test(test_wrong_token),
        cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_malformed_request_line),
        cmocka_unit_test(test_http10_answered),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_keepalive_sequential),
        cmocka_unit_test(test_slow_client_idle_timeout),
        cmocka_unit_test(test_bad_top_k),
        cmocka_unit_test(test_predict_wrong_dimension),
        cmocka_unit_test(test_predict_bad_rows),
        cmocka_unit_test(test_restore_missing_checkpoint),
        cmocka_unit_test(test_same_key_other_content),
        cmocka_unit_test(test_daemon_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
