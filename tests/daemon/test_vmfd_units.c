/*
 * test_vmfd_units.c - vmfd's building blocks in process: SHA-256 against the
 * FIPS 180-4 examples, body decoding (statuses and the canonical content
 * hash), the SQLite store (durable ingest, idempotency, conflicts, the
 * schema header), Prometheus rendering, and the systemd notify and
 * socket-activation protocols against a fake $NOTIFY_SOCKET.
 */
#include "vmf_test.h"
#include "vmfd_metrics.h"
#include "vmfd_notify.h"
#include "vmfd_payload.h"
#include "vmfd_sha256.h"
#include "vmfd_store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *sha(const void *data, size_t len, char hex[65])
{
    vmfd_sha256 s;
    vmfd_sha256_init(&s);
    vmfd_sha256_update(&s, data, len);
    vmfd_sha256_final_hex(&s, hex);
    return hex;
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    assert_string_equal(sha("", 0, hex),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(sha("abc", 3, hex),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_string_equal(sha(m448, strlen(m448), hex),
                        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in uneven pieces to exercise the block buffer. */
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    vmfd_sha256 s;
    vmfd_sha256_init(&s);
    size_t left = 1000000;
    for (size_t k = 1; left; k = k % 997 + 1) {
        size_t n = k < left ? k : left;
        vmfd_sha256_update(&s, chunk, n);
        left -= n;
    }
    vmfd_sha256_final_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_payload_decoding(void **state)
{
    (void)state;
    vmfd_batch a, b;
    vmfd_payload_error e;
    const char *json = "{\"embeddings\":[[3,4],[0,-2]],\"labels\":[7,9]}";
    assert_int_equal(
        vmfd_payload_parse_ingest("application/json; charset=utf-8", json, strlen(json), &a, &e),
        0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.d, 2);
    vmf_assert_close(a.x[0], 0.6, 1e-7, 0);
    vmf_assert_close(a.x[1], 0.8, 1e-7, 0);
    vmf_assert_close(a.x[3], -1.0, 0, 0);
    assert_int_equal(a.label_kind, VMFD_LABELS_INT);
    assert_int_equal(a.ints[1], 9);
    /* The same rows and labels as .npz hash the same. */
    const float x[4] = {3, 4, 0, -2};
    const int64_t y[2] = {7, 9};
    void *npz;
    size_t len;
    vmf_test_npz_xy(x, 2, 2, y, 2, &npz, &len);
    assert_int_equal(vmfd_payload_parse_ingest("application/x-npz", npz, len, &b, &e), 0);
    assert_string_equal(a.sha256, b.sha256);
    char *lj = vmfd_batch_labels_json(&b);
    assert_string_equal(lj, "[7,9]");
    vmfd_batch c;
    char err[128];
    assert_int_equal(vmfd_batch_from_store(b.x, b.n, b.d, lj, &c, err, sizeof err), 0);
    vmfd_batch_hash(&c);
    assert_string_equal(c.sha256, b.sha256);
    free(lj);
    vmfd_batch_free(&c);
    vmfd_batch_free(&b);
    /* Other labels, other hash. */
    const int64_t y2[2] = {7, 8};
    free(npz);
    vmf_test_npz_xy(x, 2, 2, y2, 2, &npz, &len);
    assert_int_equal(vmfd_payload_parse_ingest("application/x-npz", npz, len, &b, &e), 0);
    assert_string_not_equal(a.sha256, b.sha256);
    vmfd_batch_free(&b);
    vmfd_batch_free(&a);

    /* Refusals carry their status. */
    struct {
        const char *ctype, *body;
        int status;
        const char *error;
    } bad[] = {
        {"text/plain", "x", 415, "unsupported_media_type"},
        {"application/json", "{\"embeddings\":[[1,0]", 400, "bad_json"},
        {"application/json", "[1,2]", 400, "bad_json"},
        {"application/json", "{\"embeddings\":[[0,0]],\"labels\":[1]}", 422, "zero_vector"},
        {"application/json", "{\"embeddings\":[[1,0],[1]],\"labels\":[1,2]}", 422, "bad_dimension"},
        {"application/json", "{\"embeddings\":[[1,0]],\"labels\":[1,2]}", 422, "label_count"},
        {"application/json", "{\"embeddings\":[[1,0],[0,1]],\"labels\":[1,\"a\"]}", 422,
         "bad_labels"},
        {"application/json", "{\"embeddings\":[[1,\"0\"]]}", 422, "bad_embeddings"},
        {"application/json", "{\"embeddings\":[[1e39,0]]}", 422, "non_finite"},
        {"application/json", "{\"embeddings\":[]}", 422, "empty"},
        {"application/x-npz", "PK\003\004garbage", 400, "bad_npz"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_int_equal(
            vmfd_payload_parse_ingest(bad[i].ctype, bad[i].body, strlen(bad[i].body), &a, &e), -1);
        if (e.status != bad[i].status || strcmp(e.error, bad[i].error) != 0) {
            print_error("case %zu: %d %s (%s), want %d %s\n", i, e.status, e.error, e.detail,
                        bad[i].status, bad[i].error);
            fail();
        }
    }
    /* NaN only exists in binary bodies. */
    const float xn[4] = {1, NAN, 0, 1};
    free(npz);
    vmf_test_npz_xy(xn, 2, 2, y, 2, &npz, &len);
    assert_int_equal(vmfd_payload_parse_ingest("application/x-npz", npz, len, &a, &e), -1);
    assert_int_equal(e.status, 422);
    free(npz);
    vmf_test_npz_xy(x, 2, 2, y, 1, &npz, &len);
    assert_int_equal(vmfd_payload_parse_ingest("application/x-npz", npz, len, &a, &e), -1);
    assert_int_equal(e.status, 422);
    assert_string_equal(e.error, "label_count");
    free(npz);

    /* Predict bodies: JSON with top_k, or a 1-D .npy as one row. */
    float *px;
    size_t n, d;
    long top_k = 4;
    const char *pj = "{\"embeddings\":[[0,2]],\"top_k\":2}";
    assert_int_equal(
        vmfd_payload_parse_predict("application/json", pj, strlen(pj), &px, &n, &d, &top_k, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(top_k, 2);
    vmf_assert_close(px[1], 1.0, 0, 0);
    free(px);
    vmf_array v;
    memset(&v, 0, sizeof v);
    v.dtype = VMF_DTYPE_F64;
    v.ndim = 1;
    v.shape[0] = 3;
    v.count = 3;
    double row[3] = {0, 0, 5};
    v.data = row;
    void *npy;
    vmf_assert_ok(vmf_npy_write_mem(&v, &npy, &len));
    assert_int_equal(
        vmfd_payload_parse_predict("application/x-npy", npy, len, &px, &n, &d, &top_k, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(d, 3);
    vmf_assert_close(px[2], 1.0, 0, 0);
    free(px);
    free(npy);
}

static void test_store(void **state)
{
    (void)state;
    char dir[512], path[700], err[256];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/vmfd.db", dir);
    sqlite3 *db;
    assert_int_equal(vmfd_store_open(path, 1, 0, &db, err, sizeof err), 0);
    vmfd_batch b;
    vmfd_payload_error e;
    const char *json = "{\"embeddings\":[[1,0],[0,1],[1,1]],\"labels\":[\"a\",\"b\",\"a\"]}";
    assert_int_equal(vmfd_payload_parse_ingest("application/json", json, strlen(json), &b, &e), 0);
    vmfd_ingest_result r;
    assert_int_equal(vmfd_store_ingest(db, "k1", &b, "http", &r, err, sizeof err), 0);
    assert_false(r.existed);
    assert_int_equal(r.seq, 1);
    assert_string_equal(r.status, "queued");
    assert_int_equal(vmfd_store_ingest(db, "k1", &b, "http", &r, err, sizeof err), 0);
    assert_true(r.existed);
    assert_false(r.conflict);
    assert_int_equal(vmfd_store_ingest(db, "k2", &b, "inbox", &r, err, sizeof err), 0);
    assert_int_equal(r.seq, 2);
    vmfd_batch other;
    const char *json2 = "{\"embeddings\":[[1,0]],\"labels\":[\"a\"]}";
    assert_int_equal(
        vmfd_payload_parse_ingest("application/json", json2, strlen(json2), &other, &e), 0);
    assert_int_equal(vmfd_store_ingest(db, "k1", &other, "http", &r, err, sizeof err), 0);
    assert_true(r.existed);
    assert_true(r.conflict);
    vmfd_batch_free(&other);

    int64_t *seqs;
    size_t n;
    assert_int_equal(vmfd_store_queued(db, &seqs, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(seqs[0], 1);
    assert_int_equal(seqs[1], 2);
    free(seqs);
    vmfd_batch back;
    char key[64];
    assert_int_equal(vmfd_store_load_batch(db, 2, &back, key, sizeof key, err, sizeof err), 0);
    assert_string_equal(key, "k2");
    vmfd_batch_hash(&back);
    assert_string_equal(back.sha256, b.sha256);
    assert_int_equal(back.label_kind, VMFD_LABELS_STR);
    assert_string_equal(back.strs[1], "b");
    vmfd_batch_free(&back);
    size_t dim;
    int kind;
    assert_int_equal(vmfd_store_expected_shape(db, &dim, &kind, err, sizeof err), 0);
    assert_int_equal(dim, 2);
    assert_int_equal(kind, VMFD_LABELS_STR);
    assert_int_equal(vmfd_store_reject(db, 1, "test", 0, err, sizeof err), 0);
    char *text;
    assert_int_equal(vmfd_store_batch_json(db, "k1", 0, &text, err, sizeof err), 0);
    assert_non_null(strstr(text, "\"status\":\"rejected\""));
    assert_non_null(strstr(text, "\"error\":\"test\""));
    free(text);
    assert_int_equal(vmfd_store_batch_json(db, "nope", 0, &text, err, sizeof err), 1);
    vmfd_store_counts c;
    assert_int_equal(vmfd_store_counts_get(db, &c, err, sizeof err), 0);
    assert_int_equal(c.queued, 1);
    assert_int_equal(c.rejected, 1);
    vmfd_ckpt_info info;
    void *blob;
    size_t blen;
    assert_int_equal(vmfd_store_latest_checkpoint(db, &info, &blob, &blen, err, sizeof err), 0);
    assert_int_equal(info.id, 0);
    free(blob);
    vmfd_store_close(db);
    vmfd_batch_free(&b);

    /* The schema header: WAL, application_id, user_version; a foreign database is refused. */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(raw);
    snprintf(path, sizeof path, "%s/other.db", dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(raw, "PRAGMA user_version=3; CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(vmfd_store_open(path, 1, 0, &db, err, sizeof err), -1);
    assert_non_null(strstr(err, "is not a vmfd database"));
    vmf_test_rmtree(dir);
}

static void test_metrics_text(void **state)
{
    (void)state;
    vmfd_metrics m;
    vmfd_gauges g;
    memset(&m, 0, sizeof m);
    memset(&g, 0, sizeof g);
    m.batches[VMFD_BATCH_ACCEPTED] = 3;
    vmfd_hist_observe(&m.predict_seconds, 0.0002);
    vmfd_hist_observe(&m.predict_seconds, 0.003);
    vmfd_hist_observe(&m.predict_seconds, 100.0);
    g.queue_depth = 2;
    size_t len;
    char *t = vmfd_metrics_render(&m, &g, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_non_null(strstr(t, "vmfd_batches_total{status=\"accepted\"} 3\n"));
    assert_non_null(strstr(t, "# TYPE vmfd_predict_duration_seconds histogram\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_bucket{le=\"0.0001\"} 0\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_bucket{le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_bucket{le=\"30\"} 2\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "vmfd_predict_duration_seconds_count 3\n"));
    assert_non_null(strstr(t, "vmfd_queue_depth 2\n"));
    free(t);
}

/* Binds a datagram socket at path (a leading '@' means the abstract namespace). */
static int bind_dgram(const char *name)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
        0);
    return fd;
}

static void test_notify_protocol(void **state)
{
    (void)state;
    char name[108], buf[256], dir[512];
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(vmfd_notify("READY=1"), 0);
    /* Abstract namespace. */
    snprintf(name, sizeof name, "@vmfd-test-%ld", (long)getpid());
    int fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(vmfd_notify("READY=1\nSTATUS=serving"), 1);
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "READY=1\nSTATUS=serving");
    close(fd);
    /* A filesystem path. */
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(name, sizeof name, "%.90s/notify", dir);
    fd = bind_dgram(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(vmfd_notify("WATCHDOG=1"), 1);
    n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "WATCHDOG=1");
    close(fd);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(vmfd_notify("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
    vmf_test_rmtree(dir);

    /* Watchdog: only for our pid. */
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "3000000", 1);
    unsetenv("WATCHDOG_PID");
    assert_int_equal(vmfd_notify_watchdog_usec(), 3000000);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(vmfd_notify_watchdog_usec(), 3000000);
    setenv("WATCHDOG_PID", "1", 1);
    assert_int_equal(vmfd_notify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    /* Socket activation: counted only for our pid, and the variables are consumed. */
    setenv("LISTEN_PID", "1", 1);
    setenv("LISTEN_FDS", "2", 1);
    assert_int_equal(vmfd_listen_fds(), 0);
    assert_null(getenv("LISTEN_FDS"));
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(vmfd_listen_fds(), 1);
    assert_null(getenv("LISTEN_PID"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),  cmocka_unit_test(test_payload_decoding),
        cmocka_unit_test(test_store),           cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_notify_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
