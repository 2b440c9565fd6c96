/*
 * test_vmfd_lifecycle.c - vmfd's life beyond ingest and predict: SIGTERM
 * while busy (clean checkpoint, exit 0, nothing to recover), rollback to a
 * checkpoint, SIGHUP reload of the token, the Unix socket, checkpoint and
 * payload pruning, /metrics, the command line contract and vmfctl.
 */
#include "vmfd_e2e_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUSY_BATCHES 10 /* not a multiple of checkpoint_every */
#define BUSY_ROWS    4000
#define BUSY_D       64

/* Synthetic labelled batch i: BUSY_ROWS rows of a 10-class vMF mixture. */
static void busy_batch(int i, float **x, int64_t **y)
{
    int32_t *comp = malloc(BUSY_ROWS * sizeof *comp);
    *x = malloc((size_t)BUSY_ROWS * BUSY_D * sizeof **x);
    *y = malloc(BUSY_ROWS * sizeof **y);
    assert_non_null(comp);
    assert_non_null(*x);
    assert_non_null(*y);
    /* Same means for every batch (seed 7 for the means is implied by the shared seed). */
    vmf_test_mixture_data(1000u + (uint64_t)i, BUSY_ROWS, BUSY_D, 10, 20.0, 60.0, *x, comp, NULL,
                          NULL, NULL);
    for (size_t r = 0; r < BUSY_ROWS; r++)
        (*y)[r] = comp[r];
    free(comp);
}

static void test_sigterm_while_busy(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    /* Four batches per checkpoint: the shutdown checkpoint must cover the rest. */
    vmf_test_write_text(conf, "[store]\ncheckpoint_every = 4\npayload_retention_days = -1\n"
                              "[inbox]\nenabled = false\n");
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    void *npz[BUSY_BATCHES];
    size_t len[BUSY_BATCHES];
    float *xs[BUSY_BATCHES];
    int64_t *ys[BUSY_BATCHES];
    for (int i = 0; i < BUSY_BATCHES; i++) {
        busy_batch(i, &xs[i], &ys[i]);
        e2e_npz(xs[i], BUSY_ROWS, BUSY_D, ys[i], &npz[i], &len[i]);
    }
    for (int i = 0; i < BUSY_BATCHES; i++) {
        char path[64];
        e2e_resp r;
        snprintf(path, sizeof path, "/v1/batches/busy-%02d", i);
        assert_int_equal(
            e2e_http(p.port, "PUT", path, "application/x-npz", npz[i], len[i], NULL, &r), 0);
        assert_int_equal(r.status, 202);
        e2e_resp_free(&r);
    }
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);

    /* Applied batches are a prefix of the arrival order, all inside the newest checkpoint. */
    long long applied = e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='applied'");
    assert_true(applied >= 1);
    assert_int_equal(e2e_sql_int(p.state, "SELECT coalesce(max(seq),0) FROM batches WHERE "
                                          "status='applied'"),
                     applied);
    assert_int_equal(e2e_sql_int(p.state, "SELECT batches FROM checkpoints ORDER BY id DESC "
                                          "LIMIT 1"),
                     applied);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='queued'"),
                     BUSY_BATCHES - applied);
    if (applied % 4 != 0)
        assert_int_equal(
            e2e_sql_int(p.state, "SELECT count(*) FROM checkpoints WHERE reason='shutdown'"), 1);
    vmf_classifier *ref = e2e_ref_new();
    for (long long i = 0; i < applied; i++)
        e2e_ref_learn(ref, xs[i], BUSY_ROWS, BUSY_D, ys[i]);
    e2e_assert_model_equal(p.state, ref);
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(strstr(log, "stopped checkpoint="));
    free(log);
    print_message("SIGTERM after %lld of %d batches applied\n", applied, BUSY_BATCHES);

    /* A restart starts from that checkpoint with nothing to redo, then learns the rest. */
    e2e_start(&p, args, 1);
    log = e2e_read_file(p.log, NULL);
    const char *last = NULL;
    for (const char *q = strstr(log, "recovered checkpoint="); q;
         q = strstr(q + 1, "recovered checkpoint="))
        last = q;
    assert_non_null(last);
    const char *bq = strstr(last, " checkpoint_batches=");
    assert_non_null(bq);
    assert_int_equal(atoll(bq + 20), applied);
    free(log);
    /* With checkpoint_every = 4 the last learned batches stay queued in the store
     * until a checkpoint: wait for the model, then let SIGTERM write it. */
    int learned = 0;
    for (int i = 0; i < 6000 && !learned; i++) {
        e2e_resp r;
        assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r), 0);
        learned = strstr(r.body, "\"batches_applied\":10,") != NULL;
        e2e_resp_free(&r);
        if (!learned)
            e2e_sleep_ms(10);
    }
    assert_true(learned);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    for (long long i = applied; i < BUSY_BATCHES; i++)
        e2e_ref_learn(ref, xs[i], BUSY_ROWS, BUSY_D, ys[i]);
    e2e_assert_model_equal(p.state, ref);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='applied'"),
                     BUSY_BATCHES);
    /* payload_retention_days = -1 keeps every payload. */
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batch_data"), BUSY_BATCHES);
    vmf_classifier_free(ref);
    for (int i = 0; i < BUSY_BATCHES; i++) {
        free(npz[i]);
        free(xs[i]);
        free(ys[i]);
    }
    vmf_test_rmtree(p.dir);
}

static e2e_stream fm;

static int put_day(e2e_proc *p, int day)
{
    return e2e_put_day(p->port, &fm, day, NULL);
}

static void learn_day(vmf_classifier *c, int day)
{
    float *x;
    int64_t *y;
    size_t m = e2e_stream_day(&fm, day, &x, &y);
    e2e_ref_learn(c, x, m, fm.d, y);
    free(x);
    free(y);
}

static void test_restore(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    char st[32];
    for (int day = 1; day <= 3; day++)
        assert_int_equal(put_day(&p, day), 202);
    assert_string_equal(e2e_wait_batch(p.port, "day-003", st, sizeof st, 30000), "applied");
    long long c2 = e2e_sql_int(p.state, "SELECT checkpoint_id FROM batches WHERE key='day-002'");
    assert_true(c2 > 0);

    char path[128];
    e2e_resp r;
    snprintf(path, sizeof path, "/v1/checkpoints/%lld/restore", c2);
    assert_int_equal(e2e_http(p.port, "POST", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"later_batches\":\"superseded\""));
    e2e_resp_free(&r);
    assert_string_equal(e2e_wait_batch(p.port, "day-003", st, sizeof st, 1000), "superseded");
    assert_string_equal(e2e_wait_batch(p.port, "day-002", st, sizeof st, 1000), "applied");
    vmf_classifier *ref = e2e_ref_new();
    learn_day(ref, 1);
    learn_day(ref, 2);
    e2e_assert_model_equal(p.state, ref);
    /* Re-sending the superseded key changes nothing; a new key learns on the restored model. */
    assert_int_equal(put_day(&p, 3), 200);
    assert_int_equal(put_day(&p, 4), 202);
    assert_string_equal(e2e_wait_batch(p.port, "day-004", st, sizeof st, 30000), "applied");
    learn_day(ref, 4);
    e2e_assert_model_equal(p.state, ref);
    /* A missing checkpoint is 404; a restart keeps the restored lineage. */
    assert_int_equal(
        e2e_http(p.port, "POST", "/v1/checkpoints/999/restore", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    e2e_start(&p, NULL, 1);
    e2e_assert_model_equal(p.state, ref);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_classifier_free(ref);
    vmf_test_rmtree(p.dir);
}

static void test_command_line(void **state)
{
    (void)state;
    char dir[512], cmd[2048], conf[700];
    char *out = NULL;
    vmf_test_tmpdir(dir, sizeof dir);
    const char *bin = e2e_vmfd_bin();
    snprintf(cmd, sizeof cmd, "%s --help", bin);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "usage: vmfd"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s --bogus", bin);
    assert_int_equal(e2e_run(cmd, NULL), 64);
    snprintf(cmd, sizeof cmd, "%s --listen", bin);
    assert_int_equal(e2e_run(cmd, NULL), 64);
    snprintf(cmd, sizeof cmd, "%s --check-config --listen nonsense", bin);
    assert_int_equal(e2e_run(cmd, NULL), 64);
    /* The shipped file is valid. */
    snprintf(cmd, sizeof cmd, "%s --check-config --config %s/config/vmfd.conf", bin,
             VMF_SOURCE_DIR);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "listen = 127.0.0.1:8077"));
    free(out);
    /* A bad value names the file and the line. */
    snprintf(conf, sizeof conf, "%s/bad.conf", dir);
    vmf_test_write_text(conf,
                        "# comment\n[server]\nlisten = 127.0.0.1:9000\n\n[model]\nk_max = 0\n");
    snprintf(cmd, sizeof cmd, "%s --check-config --config %s", bin, conf);
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "bad.conf:6: k_max"));
    free(out);
    vmf_test_write_text(conf, "[server]\nlisten = 127.0.0.1:9000\nlisten = 127.0.0.1:9001\n");
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "bad.conf:3: duplicate key"));
    free(out);
    vmf_test_write_text(conf, "[sever]\nlisten = 127.0.0.1:9000\n");
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "bad.conf:2: unknown section [sever]"));
    free(out);
    vmf_test_write_text(conf, "[server]\nthis line has no equals sign\n");
    assert_int_equal(e2e_run(cmd, &out), 78);
    assert_non_null(strstr(out, "bad.conf:2: syntax error"));
    free(out);
    /* Flags override the file. */
    vmf_test_write_text(conf,
                        "[server]\nlisten = 127.0.0.1:9000\n[store]\nstate_dir = /nonexistent\n");
    snprintf(cmd, sizeof cmd,
             "%s --check-config --config %s --listen 127.0.0.1:9100 --state-dir %s", bin, conf,
             dir);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "listen = 127.0.0.1:9100"));
    assert_non_null(strstr(out, dir));
    free(out);
    vmf_test_rmtree(dir);
}

static void test_token_reload_socket_vmfctl(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700], tok[700], sock[700], cmd[4096], npzpath[700], npypath[700], modelpath[700];
    char *out = NULL;
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    snprintf(tok, sizeof tok, "%s/token", p.dir);
    snprintf(sock, sizeof sock, "%s/vmfd.sock", p.dir);
    vmf_test_write_text(tok, "first-secret\n");
    char text[2048];
    snprintf(text, sizeof text, "[server]\ntoken_file = %s\n[log]\nlevel = debug\n", tok);
    vmf_test_write_text(conf, text);
    const char *args[] = {"--config", conf, "--socket", sock, NULL};
    e2e_start(&p, args, 1);
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0,
                              "Authorization: Bearer first-secret\r\n", &r),
                     0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    /* SIGHUP re-reads the token file, and the config: the log level drops to warning. */
    vmf_test_write_text(tok, "second-secret\n");
    snprintf(text, sizeof text, "[server]\ntoken_file = %s\n[log]\nlevel = warning\n", tok);
    vmf_test_write_text(conf, text);
    kill(p.pid, SIGHUP);
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        e2e_sleep_ms(10);
        assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0,
                                  "Authorization: Bearer second-secret\r\n", &r),
                         0);
        ok = r.status == 200;
        e2e_resp_free(&r);
    }
    assert_true(ok);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0,
                              "Authorization: Bearer first-secret\r\n", &r),
                     0);
    assert_int_equal(r.status, 401); /* RFC 6750: an invalid token is 401 too */
    assert_non_null(strstr(r.body, "\"error\":\"invalid_token\""));
    e2e_resp_free(&r);

    /* vmfctl over the Unix socket. */
    const char *ctl = VMF_BIN_DIR "/vmfctl";
    snprintf(npzpath, sizeof npzpath, "%s/day-001.npz", p.dir);
    {
        float *x;
        int64_t *y;
        size_t m = e2e_stream_day(&fm, 1, &x, &y);
        void *npz;
        size_t len;
        e2e_npz(x, m, fm.d, y, &npz, &len);
        FILE *f = fopen(npzpath, "wb");
        assert_non_null(f);
        fwrite(npz, 1, len, f);
        fclose(f);
        free(npz);
        vmf_array a;
        memset(&a, 0, sizeof a);
        a.dtype = VMF_DTYPE_F32;
        a.ndim = 2;
        a.shape[0] = 3;
        a.shape[1] = fm.d;
        a.count = 3 * fm.d;
        a.data = x;
        snprintf(npypath, sizeof npypath, "%s/q.npy", p.dir);
        vmf_assert_ok(vmf_npy_write(npypath, &a));
        free(x);
        free(y);
    }
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s ingest %s", ctl, sock, tok, npzpath);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "day-001: queued"));
    free(out);
    assert_int_equal(e2e_run(cmd, &out), 0); /* same content again */
    assert_non_null(strstr(out, "already known"));
    free(out);
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(strstr(log, "listening addr="));      /* info before the reload */
    assert_null(strstr(log, "batch queued key=day-001")); /* not after it */
    free(log);
    char st[32];
    assert_int_equal(e2e_http(p.port, "GET", "/v1/batches/day-001", NULL, NULL, 0,
                              "Authorization: Bearer second-secret\r\n", &r),
                     0);
    e2e_resp_free(&r);
    snprintf(cmd, sizeof cmd, "%s --url http://127.0.0.1:%d --token-file %s --json status", ctl,
             p.port, tok);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(e2e_run(cmd, &out), 0);
        int done = strstr(out, "\"batches_applied\":1") != NULL;
        free(out);
        if (done)
            break;
        e2e_sleep_ms(10);
    }
    (void)st;
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s predict %s --top-k 2", ctl, sock, tok,
             npypath);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "2:"));
    /* Each row shows its novelty score; rows the model learned are not unknown. */
    assert_non_null(strstr(out, "  novelty 0."));
    assert_null(strstr(out, "UNKNOWN"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s checkpoints", ctl, sock, tok);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "batch"));
    free(out);
    snprintf(modelpath, sizeof modelpath, "%s/model.json", p.dir);
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s model export --output %s", ctl, sock,
             tok, modelpath);
    assert_int_equal(e2e_run(cmd, NULL), 0);
    char *model = e2e_read_file(modelpath, NULL);
    assert_non_null(model);
    assert_non_null(strstr(model, "vmfmm-model"));
    free(model);
    /* Exit codes: refused data 65, bad usage 64, unreadable input 66, not authorized 77. */
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s restore 999", ctl, sock, tok);
    assert_int_equal(e2e_run(cmd, &out), 65);
    assert_non_null(strstr(out, "HTTP 404"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s --socket %s frobnicate", ctl, sock);
    assert_int_equal(e2e_run(cmd, NULL), 64);
    snprintf(cmd, sizeof cmd, "%s --socket %s --token-file %s ingest %s/missing.npz", ctl, sock,
             tok, p.dir);
    assert_int_equal(e2e_run(cmd, NULL), 66);
    snprintf(cmd, sizeof cmd, "%s --socket %s status", ctl, sock);
    assert_int_equal(e2e_run(cmd, NULL), 77);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    /* The daemon is down: 69 with a clear message. */
    snprintf(cmd, sizeof cmd, "%s --url http://127.0.0.1:%d status", ctl, p.port);
    assert_int_equal(e2e_run(cmd, &out), 69);
    assert_non_null(strstr(out, "is vmfd running?"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s --socket %s status", ctl, sock);
    assert_int_equal(e2e_run(cmd, NULL), 69);
    vmf_test_rmtree(p.dir);
}

/*
 * A client that half-closes right after a request whose answer is larger than
 * the socket buffers, and reads it only later, still gets all of it.
 */
static void half_close_big_answer(int port)
{
    size_t n = 100000; /* about 13 MB of answer */
    float *x = malloc(n * fm.d * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * fm.d, fm.x + (i % fm.n) * fm.d, fm.d * sizeof *x);
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = VMF_DTYPE_F32;
    a.ndim = 2;
    a.shape[0] = n;
    a.shape[1] = fm.d;
    a.count = n * fm.d;
    a.data = x;
    void *npy;
    size_t len;
    vmf_assert_ok(vmf_npy_write_mem(&a, &npy, &len));
    free(x);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/predict?top_k=4 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/x-npy\r\nContent-Length: %zu\r\n\r\n",
                      len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(send(fd, head, (size_t)hn, MSG_NOSIGNAL), hn);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, (char *)npy + off, len - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
    free(npy);
    shutdown(fd, SHUT_WR);
    e2e_sleep_ms(300); /* vmfd answers and sees the EOF while its answer is queued */
    size_t cap = 1 << 22, got = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        ssize_t rd = recv(fd, buf + got, cap - got, 0);
        if (rd <= 0)
            break;
        got += (size_t)rd;
    }
    close(fd);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    const char *cl = strstr(buf, "Content-Length: ");
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(cl);
    assert_non_null(body);
    size_t want = (size_t)atoll(cl + 16);
    assert_true(want > (8u << 20)); /* larger than the socket buffers */
    assert_int_equal(got - (size_t)(body + 4 - buf), want);
    free(buf);
}

static void test_pruning_and_metrics(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    vmf_test_write_text(conf, "[store]\nkeep_checkpoints = 3\npayload_retention_days = 0\n");
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    char st[32];
    /* An operator's sqlite3 session holding a read transaction open does not stall vmfd. */
    char dbpath[800];
    sqlite3 *op = NULL;
    sqlite3_stmt *q = NULL;
    snprintf(dbpath, sizeof dbpath, "%s/vmfd.db", p.state);
    assert_int_equal(sqlite3_open_v2(dbpath, &op, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(op, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(op, "SELECT count(*) FROM batches", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    for (int day = 1; day <= 6; day++)
        assert_int_equal(put_day(&p, day), 202);
    assert_string_equal(e2e_wait_batch(p.port, "day-006", st, sizeof st, 30000), "applied");
    /* The reader still sees its snapshot: no batch. */
    sqlite3_reset(q);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    sqlite3_exec(op, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(op);
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "POST", "/v1/checkpoints", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "\"checkpoint_id\":7"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM checkpoints"), 3);
    assert_int_equal(e2e_sql_int(p.state, "SELECT min(id) FROM checkpoints"), 5);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM components WHERE checkpoint_id "
                                          "NOT IN (SELECT id FROM checkpoints)"),
                     0);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batch_data"), 0);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM latest_components WHERE "
                                          "checkpoint_id = 7 AND dim = 64"),
                     e2e_sql_int(p.state, "SELECT sum(components) FROM classes"));
    assert_int_equal(e2e_http(p.port, "GET", "/v1/checkpoints", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"reason\":\"manual\""));
    e2e_resp_free(&r);
    assert_int_equal(e2e_put_day(p.port, &fm, 2, NULL), 200);
    assert_int_equal(e2e_http(p.port, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "vmfd_batches_total{status=\"accepted\"} 6\n"));
    assert_non_null(strstr(r.body, "vmfd_batches_total{status=\"applied\"} 6\n"));
    assert_non_null(strstr(r.body, "vmfd_batches_total{status=\"duplicate\"} 1\n"));
    assert_non_null(strstr(r.body, "vmfd_apply_duration_seconds_count 6\n"));
    assert_non_null(strstr(r.body, "vmfd_checkpoint_duration_seconds_count 7\n"));
    assert_non_null(strstr(r.body, "vmfd_queue_depth 0\n"));
    assert_non_null(strstr(r.body, "vmfd_ready 1\n"));
    assert_non_null(strstr(r.body, "vmfd_model_classes "));
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"batches_applied\":6"));
    assert_non_null(strstr(r.body, "\"dim\":64"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/model", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"format\":\"vmfmm-model\""));
    e2e_resp_free(&r);
    half_close_big_answer(p.port);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* One vmfd per state directory; the connection limit answers 503 and closes. */
static void test_lock_and_connection_limit(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700], cmd[2048];
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    vmf_test_write_text(conf, "[server]\nmax_connections = 2\n");
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    snprintf(cmd, sizeof cmd, "%s --state-dir %s --listen 127.0.0.1:0", e2e_vmfd_bin(), p.state);
    char *out = NULL;
    assert_int_equal(e2e_run(cmd, &out), 75);
    assert_non_null(strstr(out, "in use by another vmfd"));
    free(out);
    /* Two idle keep-alive connections fill the limit; a third is refused. */
    int fds[2];
    for (int i = 0; i < 2; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)p.port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    e2e_sleep_ms(50); /* let vmfd accept both */
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char *resp = NULL;
    assert_true(e2e_raw(p.port, req, sizeof req - 1, 0, 0, 2000, &resp) > 0);
    assert_non_null(strstr(resp, "HTTP/1.1 503"));
    assert_non_null(strstr(resp, "\"error\":\"too_many_connections\""));
    free(resp);
    close(fds[0]);
    close(fds[1]);
    e2e_sleep_ms(50);
    assert_true(e2e_raw(p.port, req, sizeof req - 1, 0, 0, 2000, &resp) > 0);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    free(resp);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static uint64_t garbage_state = 0x5eedf00dULL;

static uint32_t garbage_next(void)
{
    uint64_t z = (garbage_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/*
 * 300 seeded garbage requests (random bytes, or a valid request line, header
 * or JSON prefix followed by random bytes), each followed by a half-close:
 * vmfd answers or closes, stays healthy, and stores nothing.
 */
static void test_garbage_requests(void **state)
{
    (void)state;
    static const char *const prefixes[] = {
        "",
        "PUT /v1/batches/g HTTP/1.1\r\n",
        "PUT /v1/batches/g HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: "
        "40\r\n\r\n",
        "PUT /v1/batches/g HTTP/1.1\r\nContent-Type: application/x-npz\r\nTransfer-Encoding: "
        "chunked\r\n\r\n",
        "POST /v1/predict HTTP/1.1\r\nContent-Type: application/x-npy\r\nContent-Length: "
        "300\r\n\r\n"
        "\x93NUMPY\x01\x00",
        "GET /v1/batches/",
    };
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    for (int i = 0; i < 300; i++) {
        const char *pre = prefixes[garbage_next() % (sizeof prefixes / sizeof prefixes[0])];
        size_t plen = strlen(pre), n = garbage_next() % 2000;
        char *buf = malloc(plen + n + 1);
        assert_non_null(buf);
        memcpy(buf, pre, plen);
        for (size_t j = 0; j < n; j++)
            buf[plen + j] = (char)(garbage_next() & 0xff);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)p.port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        ssize_t w = send(fd, buf, plen + n, MSG_NOSIGNAL);
        (void)w;
        shutdown(fd, SHUT_WR);
        char rb[4096];
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (recv(fd, rb, sizeof rb, 0) > 0) {
        }
        close(fd);
        free(buf);
    }
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "GET", "/healthz", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), 0);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static int setup(void **state)
{
    (void)state;
    e2e_stream_load(&fm);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_stream_free(&fm);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_busy),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_token_reload_socket_vmfctl),
        cmocka_unit_test(test_pruning_and_metrics),
        cmocka_unit_test(test_lock_and_connection_limit),
        cmocka_unit_test(test_garbage_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
