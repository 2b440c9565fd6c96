/*
 * test_vmfd_hostile.c - the hostile-client suite: each test is one hole an
 * attacker found in vmfd (issue 9), tried against real vmfd processes on
 * loopback, and asserts what a trusted service would do instead: the
 * documented status (docs/vmfd-ops.md), the JSON error code, what the store
 * holds afterwards, and where the issue asks for it, a bound on the
 * daemon's peak memory or on the loop's latency.
 *
 * Groups: HTTP parser limits and smuggling (token length, HEAD, header
 * whitespace, duplicate Authorization, transfer codings, chunk extensions),
 * bombs and size limits (zip bomb, labels, classes, JSON), state-directory
 * tricks (empty or foreign database, deleted lock file, damaged pages and
 * payloads), inbox tricks (symlinks, bursts), SIGTERM during ingest, and a
 * full disk.
 */
#define _GNU_SOURCE
#include "vmfd_e2e_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define D 8

/*
 * Under a sanitizer (the CI's ASan and TSan passes run this suite too) code
 * runs 2-15x slower: the latency bound of the inbox burst is relaxed there
 * (the 50 ms target is asserted in the uninstrumented Release pass) and the
 * SIGTERM test runs one trial of a smaller batch.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* ---- helpers ---- */

/* n unit rows in d = D around `classes` axes, labels 0..classes-1 (seeded). */
static void rows(float *x, int64_t *y, size_t n, size_t classes, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t r = 0; r < n; r++) {
        size_t c = r % classes;
        e2e_axis_row(&s, x + r * D, D, c % D, 4.0, 0.3);
        if (y)
            y[r] = (int64_t)c;
    }
}

/* PUTs a small seeded batch; returns the status. */
static int put_small(int port, const char *key, uint64_t seed, const char *extra)
{
    float x[60 * D];
    int64_t y[60];
    rows(x, y, 60, 3, seed);
    return e2e_put_batch(port, key, x, 60, D, y, extra);
}

/* A config file in p->dir with the given text; returns its path in buf. */
static const char *conf_of(const e2e_proc *p, const char *text, char *buf, size_t size)
{
    snprintf(buf, size, "%s/vmfd.conf", p->dir);
    vmf_test_write_text(buf, text);
    return buf;
}

/* Raw request on a new connection; returns the answer (malloc'ed). */
static char *raw(int port, const char *req, size_t len)
{
    char **out = calloc(1, sizeof *out);
    assert_non_null(out);
    long n = e2e_raw(port, req, len, 0, 0, 5000, out);
    assert_true(n >= 0);
    char *res = *out;
    free(out);
    return res;
}

static int status_of(const char *resp)
{
    int st = -1;
    if (resp && sscanf(resp, "HTTP/1.1 %d", &st) != 1)
        st = -1;
    return st;
}

/* ---- 5: tokens up to the configured maximum work ---- */

static void test_token_boundary(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    char tok[600], tokfile[700], conf[700], text[1024], hdr[700];
    /* The longest token the configuration accepts: 511 bytes. */
    for (int i = 0; i < 511; i++)
        tok[i] = (char)('a' + i % 26);
    tok[511] = '\0';
    snprintf(tokfile, sizeof tokfile, "%s/token", p.dir);
    vmf_test_write_text(tokfile, tok);
    snprintf(text, sizeof text, "[server]\ntoken_file = %s\n", tokfile);
    const char *args[] = {"--config", conf_of(&p, text, conf, sizeof conf), NULL};
    e2e_start(&p, args, 1);
    e2e_resp r;
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, hdr, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    /* The scheme is case-insensitive (RFC 9110 11.1). */
    snprintf(hdr, sizeof hdr, "Authorization: bEARER %s\r\n", tok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, hdr, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    /* One byte more or less is a wrong token. */
    tok[510] = '\0';
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", tok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, hdr, &r), 0);
    assert_int_equal(r.status, 401);
    e2e_resp_free(&r);
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %sqq\r\n", tok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, hdr, &r), 0);
    assert_int_equal(r.status, 401);
    e2e_resp_free(&r);
    /* Two Authorization headers: refused, not "the last one wins". */
    tok[510] = 'q';
    snprintf(hdr, sizeof hdr, "Authorization: Bearer wrong\r\nAuthorization: Bearer %s\r\n", tok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, hdr, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "duplicate_authorization"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    /* A 512-byte token is refused by the configuration (exit 78). */
    tok[511] = 'z';
    tok[512] = '\0';
    vmf_test_write_text(tokfile, tok);
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s --config %s --state-dir %s --check-config", e2e_vmfd_bin(), conf,
             p.state);
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "longer than 511 bytes"));
    free(out);
    vmf_test_rmtree(p.dir);
}

/* ---- 6: HEAD is GET without a body ---- */

static void test_head(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    static const char *const paths[] = {"/healthz", "/readyz", "/v1/status", "/metrics",
                                        "/v1/checkpoints"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[256];
        int n = snprintf(req, sizeof req,
                         "HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        char *resp = raw(p.port, req, (size_t)n);
        assert_int_equal(status_of(resp), 200);
        const char *end = strstr(resp, "\r\n\r\n");
        assert_non_null(end);
        /* Content-Length of the GET answer, and not one byte of body. */
        assert_non_null(strstr(resp, "Content-Length: "));
        if (end[4] != '\0') {
            print_error("HEAD %s sent a body: %s\n", paths[i], end + 4);
            fail();
        }
        free(resp);
    }
    /* Where HEAD is not allowed, the 405 has no body either. */
    static const char req[] = "HEAD /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = raw(p.port, req, sizeof req - 1);
    assert_int_equal(status_of(resp), 405);
    assert_string_equal(strstr(resp, "\r\n\r\n") + 4, "");
    free(resp);
    /* Keep-alive after a HEAD: the next answer is parsed at the right place. */
    static const char two[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    resp = raw(p.port, two, sizeof two - 1);
    const char *second = strstr(resp + 1, "HTTP/1.1 200");
    assert_non_null(second);
    assert_non_null(strstr(second, "{\"status\":\"ok\"}"));
    free(resp);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 7: every header byte counts; smuggling-shaped framing is refused ---- */

static void test_header_bytes(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    const char *args[] = {
        "--config", conf_of(&p, "[server]\nmax_header_bytes = 4096\n", conf, sizeof conf), NULL};
    e2e_start(&p, args, 1);
    /* 1 MiB of spaces before a header value, sent in 64 KiB pieces. */
    size_t pad = 1u << 20;
    char *req = malloc(pad + 256);
    assert_non_null(req);
    size_t n = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad:");
    memset(req + n, ' ', pad);
    n += pad;
    n += (size_t)sprintf(req + n, "v\r\nConnection: close\r\n\r\n");
    char *resp = NULL;
    assert_true(e2e_raw(p.port, req, n, 65536, 0, 5000, &resp) >= 0);
    assert_int_equal(status_of(resp), 431);
    free(resp);
    /* The same at 3 KiB of spaces is within the limit. */
    n = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad:");
    memset(req + n, ' ', 3072);
    n += 3072;
    n += (size_t)sprintf(req + n, "v\r\nConnection: close\r\n\r\n");
    resp = raw(p.port, req, n);
    assert_int_equal(status_of(resp), 200);
    free(resp);
    /* 5 KiB of spaces in one read (a single segment) is over. */
    n = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad:");
    memset(req + n, ' ', 5120);
    n += 5120;
    n += (size_t)sprintf(req + n, "v\r\nConnection: close\r\n\r\n");
    resp = raw(p.port, req, n);
    assert_int_equal(status_of(resp), 431);
    free(resp);
    /* Chunk extensions count toward the limit. */
    n = (size_t)sprintf(req, "PUT /v1/batches/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                             "chunked\r\nContent-Type: application/json\r\n\r\n1;a=");
    memset(req + n, 'e', 8192);
    n += 8192;
    n += (size_t)sprintf(req + n, "\r\n{\r\n0\r\n\r\n");
    resp = raw(p.port, req, n);
    assert_int_equal(status_of(resp), 431);
    assert_non_null(strstr(resp, "chunk_extensions_too_large"));
    free(resp);
    /* A transfer coding vmfd does not implement: 501, not plain chunked. */
    static const char gz[] = "PUT /v1/batches/gz HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             "application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                             "2\r\n{}\r\n0\r\n\r\n";
    resp = raw(p.port, gz, sizeof gz - 1);
    assert_int_equal(status_of(resp), 501);
    free(resp);
    free(req);
    /* Nothing was stored and the daemon is healthy. */
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 0);
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 4: an empty or foreign vmfd.db is refused, never silently re-created ---- */

static void test_empty_or_foreign_db(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    assert_int_equal(put_small(p.port, "b1", 1, NULL), 202);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "b1", st, sizeof st, 30000), "applied");
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    char db[800], cmd[2048], *out = NULL;
    snprintf(db, sizeof db, "%s/vmfd.db", p.state);
    assert_int_equal(truncate(db, 0), 0);
    snprintf(cmd, sizeof cmd, "timeout 20 %s --state-dir %s --listen 127.0.0.1:0", e2e_vmfd_bin(),
             p.state);
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "is empty (0 bytes)"));
    free(out);
    /* The refusal left the file alone. */
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    /* The operator asks for a new store. */
    const char *init[] = {"--init", NULL};
    e2e_start(&p, init, 1);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 0);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(strstr(log, "initialised a new store"));
    free(log);

    /* vmfd.db deleted under a crashed daemon, its -wal left behind. */
    e2e_start(&p, NULL, 1);
    assert_int_equal(put_small(p.port, "b2", 2, NULL), 202);
    assert_int_equal(e2e_stop(&p, SIGKILL), 128 + SIGKILL);
    unlink(db);
    snprintf(cmd, sizeof cmd, "timeout 20 %s --state-dir %s --listen 127.0.0.1:0", e2e_vmfd_bin(),
             p.state);
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "-wal file is not"));
    free(out);
    assert_int_equal(access(db, F_OK), -1); /* nothing was created */
    char side[820];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);

    /* A foreign SQLite database (application_id 0, its own tables). */
    sqlite3 *f = NULL;
    unlink(db);
    assert_int_equal(sqlite3_open(db, &f), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(f, "CREATE TABLE t(a); INSERT INTO t VALUES(1);", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(f);
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "not a vmfd database"));
    free(out);
    snprintf(cmd, sizeof cmd, "timeout 20 %s --state-dir %s --listen 127.0.0.1:0 --init",
             e2e_vmfd_bin(), p.state);
    assert_int_equal(e2e_run(cmd, &out), 78); /* --init never overwrites data */
    free(out);
    f = NULL;
    assert_int_equal(sqlite3_open(db, &f), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(f, "SELECT a FROM t", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    sqlite3_close(f);
    vmf_test_rmtree(p.dir);
}

/* ---- 10: deleting a lock file does not let a second vmfd in ---- */

static void test_lock_survives_unlink(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    char lock[800], cmd[2048], *out = NULL;
    snprintf(lock, sizeof lock, "%s/vmfd.lock", p.state);
    unlink(lock); /* what an operator cleaning up "stale" files would do */
    snprintf(cmd, sizeof cmd, "timeout 20 %s --state-dir %s --listen 127.0.0.1:0", e2e_vmfd_bin(),
             p.state);
    assert_int_equal(e2e_run(cmd, &out), 75);
    assert_non_null(strstr(out, "in use by another vmfd"));
    free(out);
    /* The first daemon still serves and ingests. */
    assert_int_equal(put_small(p.port, "after", 2, NULL), 202);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 11: damage is found: quick_check at start, a payload's hash before apply ---- */

static void flip_payload_bit(const char *state, const char *key)
{
    char path[800];
    snprintf(path, sizeof path, "%s/vmfd.db", state);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT d.seq, d.x FROM batch_data d JOIN batches b ON "
                                        "b.seq = d.seq WHERE b.key = ?",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    long long seq = sqlite3_column_int64(q, 0);
    int n = sqlite3_column_bytes(q, 1);
    unsigned char *x = malloc((size_t)n);
    assert_non_null(x);
    memcpy(x, sqlite3_column_blob(q, 1), (size_t)n);
    sqlite3_finalize(q);
    x[100] ^= 1; /* the lowest mantissa bit of one value: still a finite float */
    assert_int_equal(
        sqlite3_prepare_v2(db, "UPDATE batch_data SET x = ? WHERE seq = ?", -1, &q, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(q, 1, x, n, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, seq);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(x);
}

static void test_damaged_payload(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    /* Every checkpoint commit fails: both batches stay queued with their payloads. */
    setenv("VMFD_TEST_FAIL_COMMITS", "1000000", 1);
    e2e_start(&p, NULL, 1);
    unsetenv("VMFD_TEST_FAIL_COMMITS");
    assert_int_equal(put_small(p.port, "good", 1, NULL), 202);
    assert_int_equal(put_small(p.port, "bad", 2, NULL), 202);
    assert_int_equal(e2e_stop(&p, SIGKILL), 128 + SIGKILL);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='queued'"), 2);
    flip_payload_bit(p.state, "bad");
    e2e_start(&p, NULL, 1);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE key='good' AND "
                                          "status='applied'"),
                     1);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE key='bad' AND "
                                          "status='rejected' AND error LIKE '%sha256%'"),
                     1);
    assert_int_equal(e2e_sql_int(p.state, "SELECT batches FROM checkpoints ORDER BY id DESC "
                                          "LIMIT 1"),
                     1);
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "GET", "/v1/batches/bad", NULL, NULL, 0, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"status\":\"rejected\""));
    assert_non_null(strstr(r.body, "payload damaged"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static void test_garbled_page(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    const char *args[] = {
        "--config", conf_of(&p, "[store]\npayload_retention_days = -1\n", conf, sizeof conf), NULL};
    e2e_start(&p, args, 1);
    float *x = malloc(500 * D * sizeof *x);
    int64_t *y = malloc(500 * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    char key[32], st[32];
    for (int b = 0; b < 8; b++) {
        rows(x, y, 500, 3, 100 + (uint64_t)b);
        snprintf(key, sizeof key, "g%d", b);
        assert_int_equal(e2e_put_batch(p.port, key, x, 500, D, y, NULL), 202);
    }
    assert_string_equal(e2e_wait_batch(p.port, "g7", st, sizeof st, 30000), "applied");
    free(x);
    free(y);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    char db[800], cmd[2048], *out = NULL;
    snprintf(db, sizeof db, "%s/vmfd.db", p.state);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_true(sb.st_size >= 32 * 4096);
    /* 4 KiB of seeded garbage in the middle of the file. */
    unsigned char junk[4096];
    uint64_t s = 4242;
    for (size_t i = 0; i < sizeof junk; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        junk[i] = (unsigned char)(s >> 56);
    }
    int fd = open(db, O_WRONLY);
    assert_true(fd >= 0);
    off_t off = (off_t)(sb.st_size / 2 / 4096 * 4096);
    assert_int_equal(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    snprintf(cmd, sizeof cmd, "timeout 20 %s --config %s --state-dir %s --listen 127.0.0.1:0",
             e2e_vmfd_bin(), conf, p.state);
    assert_int_equal(e2e_run(cmd, &out), 70);
    assert_non_null(strstr(out, "store damaged"));
    assert_non_null(strstr(out, "quick_check"));
    free(out);
    vmf_test_rmtree(p.dir);
}

/* ---- 12: the inbox takes regular files of vmfd's user only ---- */

static int wait_file(const char *path, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (access(path, F_OK) == 0)
            return 0;
        e2e_sleep_ms(20);
    }
    return -1;
}

static void test_inbox_symlink(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    float x[60 * D];
    int64_t y[60];
    rows(x, y, 60, 3, 9);
    void *npz;
    size_t len;
    e2e_npz(x, 60, D, y, &npz, &len);
    char outside[800], link[800], other[800], err[900];
    snprintf(outside, sizeof outside, "%s/outside.npz", p.dir);
    FILE *f = fopen(outside, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(npz, 1, len, f), len);
    fclose(f);
    snprintf(link, sizeof link, "%s/inbox/link.npz", p.state);
    assert_int_equal(symlink(outside, link), 0);
    snprintf(err, sizeof err, "%s/inbox/rejected/link.npz.error.json", p.state);
    assert_int_equal(wait_file(err, 10000), 0);
    char *txt = e2e_read_file(err, NULL);
    assert_non_null(strstr(txt, "not_regular_file"));
    assert_non_null(strstr(txt, "symbolic link"));
    free(txt);
    if (geteuid() == 0) {
        /* A file of another user. */
        snprintf(other, sizeof other, "%s/inbox/.other.tmp", p.state);
        f = fopen(other, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(npz, 1, len, f), len);
        fclose(f);
        assert_int_equal(chown(other, 65534, 65534), 0);
        char final[800];
        snprintf(final, sizeof final, "%s/inbox/other.npz", p.state);
        assert_int_equal(rename(other, final), 0);
        snprintf(err, sizeof err, "%s/inbox/rejected/other.npz.error.json", p.state);
        assert_int_equal(wait_file(err, 10000), 0);
        txt = e2e_read_file(err, NULL);
        assert_non_null(strstr(txt, "another user"));
        free(txt);
    } else {
        print_message("skipped the other-user file: not running as root\n");
    }
    /* The target was never read, and is untouched. */
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 0);
    assert_int_equal(access(outside, F_OK), 0);
    free(npz);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 1 and 9: every allocation bounded by the configured limits ---- */

/* Peak RSS (VmHWM) of a process, bytes. */
static long long peak_rss(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
            break;
    fclose(f);
    assert_true(kb > 0);
    return kb * 1024;
}

/* X float32 [n][D] and string labels as .npz (free()). */
static void npz_str(const float *x, size_t n, char **labels, void **buf, size_t *len)
{
    vmf_array ya = vmf_test_vector(VMF_DTYPE_STR, labels, n);
    vmf_test_npz_labelled(x, n, D, &ya, buf, len);
}

/* PUTs string-labelled rows (labels[i] for row i); returns the answer. */
static int put_str(int port, const char *key, size_t n, char **labels, e2e_resp *r)
{
    float *x = malloc(n * D * sizeof *x);
    assert_non_null(x);
    rows(x, NULL, n, 3, 5 + n);
    void *npz;
    size_t len;
    npz_str(x, n, labels, &npz, &len);
    char path[200];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    int rc = e2e_http(port, "PUT", path, "application/x-npz", npz, len, NULL, r);
    free(npz);
    free(x);
    assert_int_equal(rc, 0);
    return r->status;
}

/*
 * The documented bound (docs/vmfd-ops.md, "Memory") of one ingest request
 * for these limits: B + X + Y + 2R(L + 48) + 2(4RD + R(6L + 8)) + 8 MiB
 * for .npz; 33J + 2(4RD + R(6L + 8)) + 2R(L + 48) + 8 MiB for JSON.
 */
#define LIM_BODY  (4ull << 20)
#define LIM_ROWS  10000ull
#define LIM_DIM   64ull
#define LIM_LABEL 64ull
#define LIM_JSON  (256ull << 10)
static long long ingest_bound(void)
{
    unsigned long long r = LIM_ROWS, d = LIM_DIM, l = LIM_LABEL;
    unsigned long long x = r * d * 8 + 65536, y = r * 4 * l + 65536;
    unsigned long long strs = 2 * r * (l + 48), record = 2 * (4 * r * d + r * (6 * l + 8));
    unsigned long long npz = LIM_BODY + x + y + strs + record + (8ull << 20);
    unsigned long long json = 33 * LIM_JSON + record + strs + (8ull << 20);
    return (long long)(npz > json ? npz : json);
}

static void test_bombs_and_label_limits(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700], text[512];
    e2e_init(&p);
    snprintf(text, sizeof text,
             "[server]\nmax_body_bytes = %llu\nmax_batch_rows = %llu\nmax_dim = %llu\n"
             "max_label_bytes = %llu\nmax_json_body_bytes = %llu\nmax_classes = 50\n",
             LIM_BODY, LIM_ROWS, LIM_DIM, LIM_LABEL, LIM_JSON);
    const char *args[] = {"--config", conf_of(&p, text, conf, sizeof conf), NULL};
    e2e_start(&p, args, 1);
    e2e_resp r;
    char st[32];
    /* Warm up every path once: a legitimate batch, applied, and a predict. */
    char *lab[1000];
    char names[1000][80];
    for (int i = 0; i < 1000; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i % 3);
        lab[i] = names[i];
    }
    assert_int_equal(put_str(p.port, "warm", 1000, lab, &r), 202);
    e2e_resp_free(&r);
    assert_string_equal(e2e_wait_batch(p.port, "warm", st, sizeof st, 30000), "applied");
    long long before = peak_rss(p.pid);

    /* A zip bomb: X declares 64 MiB of float64 zeros in ~64 KiB of body. */
    size_t bn = (64u << 20) / 8 / LIM_DIM;
    vmf_array bomb;
    memset(&bomb, 0, sizeof bomb);
    bomb.dtype = VMF_DTYPE_F64;
    bomb.ndim = 2;
    bomb.shape[0] = bn;
    bomb.shape[1] = LIM_DIM;
    bomb.count = bn * LIM_DIM;
    bomb.data = calloc(bomb.count, sizeof(double));
    assert_non_null(bomb.data);
    const char *xn[] = {"X"};
    const vmf_array *xa[] = {&bomb};
    void *npz;
    size_t len;
    vmf_assert_ok(vmf_npz_write_mem(xn, xa, 1, &npz, &len));
    free(bomb.data);
    assert_true(len < LIM_BODY);
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/bomb", "application/x-npz", npz, len, NULL, &r), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"error\":\"too_large\""));
    assert_non_null(strstr(r.body, "before inflating"));
    e2e_resp_free(&r);
    free(npz);

    /* Labels: one of 65 bytes among 1000 rows is too long (422). */
    char longl[80];
    memset(longl, 'L', 65);
    longl[65] = '\0';
    lab[500] = longl;
    assert_int_equal(put_str(p.port, "long", 1000, lab, &r), 422);
    assert_non_null(strstr(r.body, "label_too_long"));
    e2e_resp_free(&r);
    lab[500] = names[500];
    /* 200 labels of 65536 characters: y declares 52 MB of UTF-32, refused unread. */
    char *huge = malloc(65537);
    assert_non_null(huge);
    memset(huge, 'h', 65536);
    huge[65536] = '\0';
    char *hl[200];
    for (int i = 0; i < 200; i++)
        hl[i] = huge;
    assert_int_equal(put_str(p.port, "huge", 200, hl, &r), 413);
    assert_non_null(strstr(r.body, "member y"));
    e2e_resp_free(&r);
    free(huge);
    /* Classes: 3 known + 40 new fit in 50; then 10 more do not. */
    for (int i = 0; i < 1000; i++)
        snprintf(names[i], sizeof names[i], "k%d", i % 40);
    assert_int_equal(put_str(p.port, "forty", 1000, lab, &r), 202);
    e2e_resp_free(&r);
    for (int i = 0; i < 1000; i++)
        snprintf(names[i], sizeof names[i], "m%d", i % 10);
    assert_int_equal(put_str(p.port, "ten", 1000, lab, &r), 422);
    assert_non_null(strstr(r.body, "too_many_classes"));
    e2e_resp_free(&r);
    /* A JSON body beyond max_json_body_bytes is refused before parsing. */
    size_t jl = LIM_JSON + 4096;
    char *json = malloc(jl + 64);
    assert_non_null(json);
    size_t o = (size_t)sprintf(json, "{\"embeddings\":[");
    while (o < jl)
        o += (size_t)sprintf(json + o, "[1,0,0,0,0,0,0,0],");
    o += (size_t)sprintf(json + o, "[1,0,0,0,0,0,0,0]]}");
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/bigjson", "application/json", json, o, NULL, &r), 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "json_too_large"));
    e2e_resp_free(&r);
    /* The same for a predict body. */
    assert_int_equal(e2e_http(p.port, "POST", "/v1/predict", "application/json", json, o, NULL, &r),
                     0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "json_too_large"));
    e2e_resp_free(&r);
    free(json);

    long long after = peak_rss(p.pid), bound = ingest_bound();
    print_message("peak RSS before %lld MiB, after %lld MiB, growth %lld KiB, bound %lld KiB\n",
                  before >> 20, after >> 20, (after - before) >> 10, bound >> 10);
    assert_true(after - before <= bound);
    /* Only the legitimate batches are stored; the daemon is healthy. */
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 2);
    assert_string_equal(e2e_wait_batch(p.port, "forty", st, sizeof st, 30000), "applied");
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM classes"), 43);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    /* After a restart the class count is known again from the store. */
    e2e_start(&p, args, 1);
    assert_int_equal(put_str(p.port, "ten", 1000, lab, &r), 422);
    assert_non_null(strstr(r.body, "too_many_classes"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 2: SIGTERM answers the ingest in flight, and 503s newcomers ---- */

static long long status_field(int port, const char *field)
{
    e2e_resp r;
    if (e2e_http(port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r) != 0)
        return -1;
    long long v = -1;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *q = r.status == 200 ? strstr(r.body, pat) : NULL;
    if (q)
        v = atoll(q + strlen(pat));
    e2e_resp_free(&r);
    return v;
}

static void test_sigterm_drain(void **state)
{
    (void)state;
    /* A batch large enough that storing it takes a while (~50 MB). */
    size_t n = SANITIZED ? 50000 : 200000, dd = 64;
    float *x = malloc(n * dd * sizeof *x);
    int64_t *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    uint64_t s = 31337;
    for (size_t i = 0; i < n * dd; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    for (size_t i = 0; i < n; i++)
        y[i] = (int64_t)(i % 7);
    void *npz;
    size_t len;
    e2e_npz(x, n, dd, y, &npz, &len);
    free(x);
    free(y);
    for (int trial = 0; trial < (SANITIZED ? 1 : 3); trial++) {
        e2e_proc p;
        e2e_init(&p);
        e2e_start(&p, NULL, 1);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
            e2e_resp r;
            int st = -1;
            if (e2e_http(p.port, "PUT", "/v1/batches/big", "application/x-npz", npz, len, NULL,
                         &r) == 0)
                st = r.status;
            ssize_t w = write(pfd[1], &st, sizeof st);
            _exit(w == sizeof st ? 0 : 1);
        }
        close(pfd[1]);
        /* The body is read once the daemon counts the batch in its queue. */
        int seen = 0;
        for (int i = 0; i < 3000 && !seen; i++) {
            seen = status_field(p.port, "queue_depth") >= 1;
            if (!seen)
                e2e_sleep_ms(2);
        }
        assert_true(seen);
        kill(p.pid, SIGTERM);
        e2e_sleep_ms(30);
        /* A newcomer during the drain: 503 shutting_down and Connection: close, or
         * (when the drain already ended) a refused connection, never a reset. */
        static const char req[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
        char *resp = NULL;
        long got = e2e_raw(p.port, req, sizeof req - 1, 0, 0, 10000, &resp);
        int newcomer = -1;
        assert_true(got != 0); /* connected but no answer: a reset */
        if (got > 0) {
            newcomer = status_of(resp);
            assert_int_equal(newcomer, 503);
            assert_non_null(strstr(resp, "shutting_down"));
            assert_non_null(strstr(resp, "Connection: close"));
            assert_non_null(strstr(resp, "Retry-After:"));
        }
        free(resp);
        int st = 0;
        assert_int_equal(read(pfd[0], &st, sizeof st), (ssize_t)sizeof st);
        close(pfd[0]);
        int cst;
        waitpid(child, &cst, 0);
        print_message("trial %d: in-flight PUT answered %d, newcomer %d\n", trial, st, newcomer);
        assert_int_equal(st, 202);
        assert_int_equal(e2e_wait_exit(&p, 60000), 0);
        assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE key='big'"), 1);
        vmf_test_rmtree(p.dir);
    }
    free(npz);
}

/* ---- 3: a burst of 10,000 inbox files does not stall the loop ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void test_inbox_burst(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    const char *args[] = {
        "--config",
        conf_of(&p, "[store]\ncheckpoint_every = 1000\n[inbox]\nscan_interval_ms = 200\n", conf,
                sizeof conf),
        NULL};
    e2e_start(&p, args, 1);
    float x[10 * D];
    int64_t y[10];
    rows(x, y, 10, 3, 77);
    void *npz;
    size_t len;
    e2e_npz(x, 10, D, y, &npz, &len);
    enum { N_FILES = 10000 };
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char tmp[800], fin[800];
        for (int i = 0; i < N_FILES; i++) {
            snprintf(tmp, sizeof tmp, "%s/inbox/.f%05d.tmp", p.state, i);
            snprintf(fin, sizeof fin, "%s/inbox/f%05d.npz", p.state, i);
            FILE *f = fopen(tmp, "wb");
            if (!f || fwrite(npz, 1, len, f) != len || fclose(f) != 0 || rename(tmp, fin) != 0)
                _exit(1);
        }
        _exit(0);
    }
    size_t cap = 100000, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    assert_non_null(lat);
    double t_end = -1.0, t0 = mono_ms();
    int cst = 0;
    for (;;) {
        double a = mono_ms();
        e2e_resp r;
        assert_int_equal(e2e_http(p.port, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        e2e_resp_free(&r);
        if (n < cap)
            lat[n++] = mono_ms() - a;
        if (t_end < 0 && waitpid(child, &cst, WNOHANG) == child)
            t_end = mono_ms();
        if (t_end >= 0 && mono_ms() - t_end > 2000)
            break; /* 2 s more: the events of the burst are being handled */
        e2e_sleep_ms(2);
    }
    assert_true(WIFEXITED(cst) && WEXITSTATUS(cst) == 0);
    qsort(lat, n, sizeof *lat, cmp_double);
    double p50 = lat[n / 2], p99 = lat[(size_t)((double)n * 0.99)], mx = lat[n - 1];
    long long seen = e2e_sql_int(p.state, "SELECT count(*) FROM batches");
    print_message("inbox burst: %d files in %.0f ms; /healthz n=%zu p50=%.2f ms p99=%.2f ms "
                  "max=%.2f ms; %lld batches stored meanwhile\n",
                  N_FILES, t_end - t0, n, p50, p99, mx, seen);
    double bound = SANITIZED ? 500.0 : 50.0;
    if (SANITIZED)
        print_message("sanitizer build: p99 bound relaxed to %.0f ms\n", bound);
    assert_true(p99 < bound);
    assert_true(seen > 0);
    /* No file of the burst was refused (each was complete when renamed in). */
    char rej[800];
    snprintf(rej, sizeof rej, "ls -A %s/inbox/rejected | wc -l", p.state);
    char *out = NULL;
    assert_int_equal(e2e_run(rej, &out), 0);
    assert_int_equal(atoi(out), 0);
    free(out);
    free(lat);
    free(npz);
    assert_int_equal(e2e_stop(&p, SIGKILL), 128 + SIGKILL);
    vmf_test_rmtree(p.dir);
}

/* ---- 8: a full disk is 507, and a restart on it serves read-only ---- */

/* Writes to path until the file system is full. */
static void fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(fd >= 0);
    static char block[65536];
    memset(block, 'f', sizeof block);
    size_t chunk = sizeof block;
    while (chunk >= 512) {
        if (write(fd, block, chunk) < (ssize_t)chunk)
            chunk /= 2;
    }
    fsync(fd);
    close(fd);
}

static int predict_one(int port)
{
    static const char body[] = "{\"embeddings\":[[1,0,0,0,0,0,0,0]]}";
    e2e_resp r;
    assert_int_equal(
        e2e_http(port, "POST", "/v1/predict", "application/json", body, sizeof body - 1, NULL, &r),
        0);
    int st = r.status;
    e2e_resp_free(&r);
    return st;
}

static char mounted[700]; /* the tmpfs of test_disk_full, for its teardown */

static int umount_teardown(void **state)
{
    (void)state;
    if (mounted[0]) {
        char cmd[800];
        /* Lazy: a daemon left running by the failed test still holds files there. */
        snprintf(cmd, sizeof cmd, "umount -l %s", mounted);
        e2e_run(cmd, NULL);
        mounted[0] = '\0';
    }
    return 0;
}

static void test_disk_full(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("skipped: the disk-full test mounts a small tmpfs and needs root\n");
        skip();
    }
    e2e_proc p;
    e2e_init(&p);
    char cmd[1024], filler[800];
    assert_int_equal(mkdir(p.state, 0700), 0);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=4m,mode=0700 vmfd-test %s 2>&1", p.state);
    if (e2e_run(cmd, NULL) != 0) {
        print_message("skipped: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)\n");
        vmf_test_rmtree(p.dir);
        skip();
    }
    snprintf(mounted, sizeof mounted, "%s", p.state);
    snprintf(filler, sizeof filler, "%s/filler", p.state);
    e2e_start(&p, NULL, 1);
    assert_int_equal(put_small(p.port, "b1", 1, NULL), 202);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "b1", st, sizeof st, 30000), "applied");
    fill_disk(filler);
    float *x = malloc(2000 * D * sizeof *x);
    int64_t *y = malloc(2000 * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    rows(x, y, 2000, 3, 3);
    void *npz;
    size_t len;
    e2e_npz(x, 2000, D, y, &npz, &len);
    free(x);
    free(y);
    e2e_resp r;
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/b2", "application/x-npz", npz, len, NULL, &r), 0);
    assert_int_equal(r.status, 507);
    assert_non_null(strstr(r.body, "insufficient_storage"));
    assert_non_null(strstr(r.headers, "Retry-After:"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_metric(p.port, "vmfd_batches_total{status=\"insufficient_storage\"}"), 1);
    assert_int_equal(e2e_metric(p.port, "vmfd_batches_total{status=\"invalid\"}"), 0);
    assert_int_equal(predict_one(p.port), 200);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);

    /* A restart while the disk is still full comes up read-only. */
    fill_disk(filler);
    e2e_start(&p, NULL, 1);
    assert_int_equal(e2e_http(p.port, "GET", "/readyz", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"ingest\":false"));
    assert_non_null(strstr(r.body, "full"));
    e2e_resp_free(&r);
    assert_int_equal(predict_one(p.port), 200);
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/b2", "application/x-npz", npz, len, NULL, &r), 0);
    assert_int_equal(r.status, 507);
    assert_non_null(strstr(r.headers, "Retry-After:"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "POST", "/v1/checkpoints", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 507);
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);

    /* Space freed: a restart ingests again, nothing was lost. */
    unlink(filler);
    e2e_start(&p, NULL, 1);
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/b2", "application/x-npz", npz, len, NULL, &r), 0);
    assert_int_equal(r.status, 202);
    e2e_resp_free(&r);
    assert_string_equal(e2e_wait_batch(p.port, "b2", st, sizeof st, 30000), "applied");
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='applied'"),
                     2);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    free(npz);
    snprintf(cmd, sizeof cmd, "umount %s", p.state);
    assert_int_equal(e2e_run(cmd, NULL), 0);
    mounted[0] = '\0';
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(strstr(log, "starting read-only"));
    free(log);
    print_message("disk full: 507 + Retry-After on ingest, a read-only restart serving "
                  "predictions, ingest again once space was freed\n");
    vmf_test_rmtree(p.dir);
}

/* ---- request smuggling shapes and auth near-misses (also in a trailer) ---- */

static void test_smuggling_and_auth(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700], tokfile[700], text[900];
    e2e_init(&p);
    snprintf(tokfile, sizeof tokfile, "%s/token", p.dir);
    vmf_test_write_text(tokfile, "s3cret-token\n");
    snprintf(text, sizeof text, "[server]\ntoken_file = %s\n", tokfile);
    const char *args[] = {"--config", conf_of(&p, text, conf, sizeof conf), NULL};
    e2e_start(&p, args, 1);
    /* Each request hides a second one (a PUT) that must never be executed. */
    static const char *const smuggle[] = {
        /* CL.TE */
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n"
        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "PUT /v1/batches/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        /* two different Content-Lengths */
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 60\r\n\r\n"
        "PUT /v1/batches/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        /* space before the colon */
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
        "PUT /v1/batches/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        /* obs-fold of Transfer-Encoding */
        "POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n"
        "0\r\n\r\nPUT /v1/batches/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        /* a bare LF inside a header line */
        "POST /v1/predict HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "PUT /v1/batches/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    };
    for (size_t i = 0; i < sizeof smuggle / sizeof smuggle[0]; i++) {
        char *resp = raw(p.port, smuggle[i], strlen(smuggle[i]));
        int st = status_of(resp);
        /* 400, or 501 for a coding other than chunked: refused either way. */
        if (st != 400 && st != 501) {
            print_error("smuggling case %zu answered %d:\n%s\n", i, st, resp);
            fail();
        }
        /* One answer, then the connection closes: the hidden request is never read. */
        assert_null(strstr(resp + 1, "HTTP/1.1 "));
        free(resp);
    }
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 0);
    /* Authorization near-misses: all 401, the right one 200. */
    static const char *const near[] = {
        "Authorization: Bearer\r\n",
        "Authorization: Bearers3cret-token\r\n",
        "Authorization: Bearer  s3cret-token\r\n",
        "Authorization: Bearer s3cret-toke\r\n",
        "Authorization: Bearer s3cret-token0\r\n",
        "Authorization: Bearer S3CRET-TOKEN\r\n",
        "Authorization: Basic czNjcmV0LXRva2Vu\r\n",
    };
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        e2e_resp r;
        assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, near[i], &r), 0);
        if (r.status != 401 && r.status != 400) {
            print_error("auth case %zu answered %d\n", i, r.status);
            fail();
        }
        e2e_resp_free(&r);
    }
    /* The token in a trailer field (after a chunked body) does not authorize: 401. */
    static const char trailer_auth[] =
        "PUT /v1/batches/by-trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n"
        "Authorization: Bearer s3cret-token\r\n\r\n";
    char *tr = raw(p.port, trailer_auth, sizeof trailer_auth - 1);
    assert_non_null(strstr(tr, "HTTP/1.1 401 "));
    free(tr);
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0,
                              "Authorization: Bearer s3cret-token\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/batches/by-trailer", NULL, NULL, 0,
                              "Authorization: Bearer s3cret-token\r\n", &r),
                     0);
    assert_int_equal(r.status, 404);
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* ---- 1: an allocation that fails is 507, never a data error ---- */

static long long vm_size(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

static void test_alloc_failure_507(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    const char *args[] = {"--config",
                          conf_of(&p,
                                  "[server]\nmax_body_bytes = 67108864\nmax_batch_rows = "
                                  "100000000\nmax_decoded_bytes = 4294967296\n",
                                  conf, sizeof conf),
                          NULL};
    e2e_start(&p, args, 1);
    assert_int_equal(put_small(p.port, "warm", 1, NULL), 202);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "warm", st, sizeof st, 30000), "applied");
    long long vsz = vm_size(p.pid);
    if (vsz > (1ll << 40)) {
        print_message("skipped: a sanitizer reserves %lld GiB of address space; RLIMIT_AS "
                      "cannot be applied\n",
                      vsz >> 30);
        assert_int_equal(e2e_stop(&p, SIGTERM), 0);
        vmf_test_rmtree(p.dir);
        skip();
    }
    /* 128 MiB of float64 rows, within every configured limit, but not within
     * the address space left to the daemon. */
    struct rlimit rl = {(rlim_t)(vsz + (48ll << 20)), (rlim_t)(vsz + (48ll << 20))};
    assert_int_equal(prlimit(p.pid, RLIMIT_AS, &rl, NULL), 0);
    vmf_array big;
    memset(&big, 0, sizeof big);
    big.dtype = VMF_DTYPE_F64;
    big.ndim = 2;
    big.shape[0] = (128u << 20) / 8 / 64;
    big.shape[1] = 64;
    big.count = big.shape[0] * 64;
    big.data = calloc(big.count, sizeof(double));
    assert_non_null(big.data);
    for (size_t i = 0; i < big.shape[0]; i++)
        ((double *)big.data)[i * 64 + i % 64] = 1.0;
    const char *xn[] = {"X"};
    const vmf_array *xa[] = {&big};
    void *npz;
    size_t len;
    vmf_assert_ok(vmf_npz_write_mem(xn, xa, 1, &npz, &len));
    free(big.data);
    e2e_resp r;
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/big", "application/x-npz", npz, len, NULL, &r), 0);
    print_message("128 MiB batch under an address-space limit: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 507);
    assert_non_null(strstr(r.body, "out_of_memory"));
    assert_non_null(strstr(r.headers, "Retry-After:"));
    e2e_resp_free(&r);
    free(npz);
    /* Still healthy and still learning within its means. */
    assert_int_equal(put_small(p.port, "after", 2, NULL), 202);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_boundary),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_empty_or_foreign_db),
        cmocka_unit_test(test_lock_survives_unlink),
        cmocka_unit_test(test_damaged_payload),
        cmocka_unit_test(test_garbled_page),
        cmocka_unit_test(test_inbox_symlink),
        cmocka_unit_test(test_bombs_and_label_limits),
        cmocka_unit_test(test_sigterm_drain),
        cmocka_unit_test(test_inbox_burst),
        cmocka_unit_test_teardown(test_disk_full, umount_teardown),
        cmocka_unit_test(test_smuggling_and_auth),
        cmocka_unit_test(test_alloc_failure_507),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
