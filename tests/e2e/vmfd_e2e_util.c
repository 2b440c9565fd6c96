/*
 * vmfd_e2e_util.c - helpers of the end-to-end tests (see vmfd_e2e_util.h).
 */
#define _GNU_SOURCE
#include "vmfd_e2e_util.h"

#include "httpc.h"

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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void e2e_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *e2e_vmfd_bin(void)
{
    const char *b = getenv("VMFD_TEST_BIN");
    return b && *b ? b : VMF_BIN_DIR "/vmfd";
}

void e2e_init(e2e_proc *p)
{
    memset(p, 0, sizeof *p);
    vmf_test_tmpdir(p->dir, sizeof p->dir);
    snprintf(p->state, sizeof p->state, "%s/state", p->dir);
    snprintf(p->log, sizeof p->log, "%s/vmfd.log", p->dir);
}

int e2e_spawn(e2e_proc *p, const char *const *extra, const char *const *env, int timeout_ms,
              int *status)
{
    char portfile[700];
    snprintf(portfile, sizeof portfile, "%s/vmfd.port", p->state);
    unlink(portfile);
    char *argv[32];
    int n = 0;
    /* execv's argv is not const-qualified; these strings are never written. */
    argv[n++] = (char *)(uintptr_t)e2e_vmfd_bin();
    argv[n++] = (char *)(uintptr_t) "--state-dir";
    argv[n++] = p->state;
    argv[n++] = (char *)(uintptr_t) "--listen";
    argv[n++] = (char *)(uintptr_t) "127.0.0.1:0";
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)(uintptr_t)extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A test that fails (longjmp) or dies must not leave its daemon behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            close(fd);
        }
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        for (int i = 0; env && env[i]; i++) {
            char pair[1024];
            snprintf(pair, sizeof pair, "%s", env[i]);
            char *eq = strchr(pair, '=');
            if (eq) {
                *eq = '\0';
                setenv(pair, eq + 1, 1);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    p->port = 0;
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int port = 0;
            if (fscanf(f, "%d", &port) == 1 && port > 0)
                p->port = port;
            fclose(f);
        }
        if (p->port)
            return 0;
        if (waitpid(pid, status, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
        e2e_sleep_ms(5);
    }
    print_error("vmfd wrote no port file in %d s\n", timeout_ms / 1000);
    fail();
    return -1;
}

void e2e_fail_startup(const e2e_proc *p, int status)
{
    char *log = e2e_read_file(p->log, NULL);
    print_error("vmfd exited at startup (status %d); log:\n%s\n", status, log ? log : "");
    free(log);
    fail();
}

void e2e_start(e2e_proc *p, const char *const *extra, int wait_ready)
{
    int st = 0;
    if (e2e_spawn(p, extra, NULL, 10000, &st) != 0)
        e2e_fail_startup(p, st);
    if (!wait_ready)
        return;
    for (int i = 0; i < 3000; i++) {
        e2e_resp r;
        if (e2e_http(p->port, "GET", "/readyz", NULL, NULL, 0, NULL, &r) == 0) {
            int ok = r.status == 200;
            e2e_resp_free(&r);
            if (ok)
                return;
        }
        e2e_sleep_ms(10);
    }
    print_error("vmfd not ready after 30 s\n");
    fail();
}

int e2e_wait_exit(e2e_proc *p, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        int st;
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        e2e_sleep_ms(5);
    }
    return -1;
}

int e2e_stop(e2e_proc *p, int sig)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int rc = e2e_wait_exit(p, 60000);
    if (rc < 0) {
        kill(p->pid, SIGKILL);
        rc = e2e_wait_exit(p, 10000);
    }
    return rc;
}

static int connect_port(int port)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    return httpc_connect(NULL, "127.0.0.1", port_s, HTTPC_CLOEXEC, 0, NULL);
}

/* Reads until EOF or timeout_ms without a byte; returns bytes (buffer NUL-terminated). */
static long read_all(int fd, int timeout_ms, char **out)
{
    size_t got;
    assert_int_not_equal(httpc_read_all(fd, timeout_ms, 0, out, &got), HTTPC_ENOMEM);
    return (long)got;
}

int e2e_http(int port, const char *method, const char *path, const char *ctype, const void *body,
             size_t len, const char *extra_headers, e2e_resp *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_port(port);
    if (fd < 0)
        return -1;
    char head[4096];
    int n =
        httpc_format_head(head, sizeof head, method, path, "127.0.0.1", ctype, len, extra_headers);
    assert_true(n > 0);
    /* A timeout ends the answer like EOF: what came is judged below. */
    size_t n_got;
    char *buf;
    int rr = httpc_exchange(fd, head, (size_t)n, body, len, 60000, 0, &buf, &n_got);
    if (rr == HTTPC_ESEND)
        return -1;
    assert_int_not_equal(rr, HTTPC_ENOMEM);
    long got = (long)n_got;
    char *hend = got > 0 ? strstr(buf, "\r\n\r\n") : NULL;
    if (!hend || strncmp(buf, "HTTP/1.1 ", 9) != 0) {
        free(buf);
        return -1;
    }
    r->status = atoi(buf + 9);
    *hend = '\0';
    r->headers = strdup(buf);
    r->len = (size_t)(got - (hend + 4 - buf));
    r->body = malloc(r->len + 1);
    assert_non_null(r->body);
    memcpy(r->body, hend + 4, r->len);
    r->body[r->len] = '\0';
    free(buf);
    return 0;
}

void e2e_resp_free(e2e_resp *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

long e2e_raw(int port, const void *data, size_t len, size_t chunk, int pause_ms, int timeout_ms,
             char **out)
{
    int fd = connect_port(port);
    if (fd < 0)
        return -1;
    const char *p = data;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (httpc_send_all(fd, p + off, n) != 0)
            break;
        if (pause_ms && off + n < len)
            e2e_sleep_ms(pause_ms);
    }
    long got = read_all(fd, timeout_ms, out);
    close(fd);
    return got;
}

const char *e2e_wait_batch(int port, const char *key, char *status, size_t size, int timeout_ms)
{
    char path[300];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    snprintf(status, size, "timeout");
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        e2e_resp r;
        if (e2e_http(port, "GET", path, NULL, NULL, 0, NULL, &r) == 0 && r.status == 200) {
            const char *s = strstr(r.body, "\"status\":\"");
            if (s) {
                s += 10;
                size_t n = strcspn(s, "\"");
                snprintf(status, size, "%.*s", (int)n, s);
            }
            e2e_resp_free(&r);
            if (strcmp(status, "queued") != 0)
                return status;
        } else {
            e2e_resp_free(&r);
        }
        e2e_sleep_ms(10);
    }
    return status;
}

void e2e_npz(const float *x, size_t n, size_t d, const int64_t *y, void **buf, size_t *len)
{
    vmf_test_npz_xy(x, n, d, y, n, buf, len);
}

static void *load_npy(const char *name, vmf_array *a)
{
    char path[1024];
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path(name, path, sizeof path), a));
    return a->data;
}

void e2e_stream_load(e2e_stream *s)
{
    vmf_array xa, ya, sa, da;
    memset(s, 0, sizeof *s);
    load_npy("fmnist-cce64.X.npy", &xa);
    load_npy("fmnist-cce64.y.npy", &ya);
    load_npy("fmnist-cce64.split.npy", &sa);
    load_npy("fmnist-cce64.day.npy", &da);
    size_t n, d;
    vmf_assert_ok(vmf_array_to_f32(&xa, &s->x, &n, &d));
    s->n = n;
    s->d = d;
    vmf_labels view;
    int64_t *storage = NULL;
    vmf_assert_ok(vmf_labels_from_array(&ya, &view, &storage));
    s->y = malloc(n * sizeof *s->y);
    s->split = malloc(n * sizeof *s->split);
    s->day = malloc(n * sizeof *s->day);
    assert_non_null(s->y);
    assert_non_null(s->split);
    assert_non_null(s->day);
    memcpy(s->y, view.ints, n * sizeof *s->y);
    free(storage);
    int64_t *tmp = NULL;
    vmf_labels v2;
    vmf_assert_ok(vmf_labels_from_array(&sa, &v2, &tmp));
    for (size_t i = 0; i < n; i++)
        s->split[i] = (int)v2.ints[i];
    free(tmp);
    tmp = NULL;
    vmf_assert_ok(vmf_labels_from_array(&da, &v2, &tmp));
    for (size_t i = 0; i < n; i++)
        s->day[i] = (int)v2.ints[i];
    free(tmp);
    vmf_array_free(&xa);
    vmf_array_free(&ya);
    vmf_array_free(&sa);
    vmf_array_free(&da);
}

void e2e_stream_free(e2e_stream *s)
{
    free(s->x);
    free(s->y);
    free(s->split);
    free(s->day);
    memset(s, 0, sizeof *s);
}

size_t e2e_stream_day(const e2e_stream *s, int day, float **x, int64_t **y)
{
    size_t m = 0;
    for (size_t i = 0; i < s->n; i++)
        m += s->split[i] == 0 && s->day[i] == day;
    *x = malloc((m ? m : 1) * s->d * sizeof **x);
    *y = malloc((m ? m : 1) * sizeof **y);
    assert_non_null(*x);
    assert_non_null(*y);
    size_t j = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->split[i] == 0 && s->day[i] == day) {
            memcpy(*x + j * s->d, s->x + i * s->d, s->d * sizeof **x);
            (*y)[j++] = s->y[i];
        }
    }
    return m;
}

static sqlite3 *open_db(const char *state)
{
    char path[700];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/vmfd.db", state);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    return db;
}

void *e2e_latest_model_blob(const char *state, size_t *len, long long *checkpoint_id)
{
    sqlite3 *db = open_db(state);
    sqlite3_stmt *st = NULL;
    void *out = NULL;
    if (!db)
        return NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, model FROM checkpoints ORDER BY id DESC LIMIT 1", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *len = (size_t)sqlite3_column_bytes(st, 1);
        out = malloc(*len ? *len : 1);
        if (out)
            memcpy(out, sqlite3_column_blob(st, 1), *len);
        if (checkpoint_id)
            *checkpoint_id = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

long long e2e_sql_int(const char *state, const char *sql)
{
    sqlite3 *db = open_db(state);
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (!db)
        return -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

char *e2e_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

vmf_classifier *e2e_ref_new(void)
{
    vmf_classifier_opts o;
    vmf_classifier *c = NULL;
    vmf_classifier_opts_init(&o);
    o.k_max = 5;
    o.stepwise.alpha = 0.7;
    o.stepwise.t0 = 2.0;
    o.stepwise.eta_floor = 0.0;
    o.stepwise.minibatch = 256;
    o.stepwise.seed = 42;
    vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
    return c;
}

void e2e_ref_learn(vmf_classifier *c, const float *x, size_t n, size_t d, const int64_t *y)
{
    float *copy = malloc(n * d * sizeof *copy);
    assert_non_null(copy);
    memcpy(copy, x, n * d * sizeof *copy);
    vmf_assert_ok(vmf_rows_normalize(copy, n, d));
    vmf_labels lab = {n, y, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(c, copy, n, d, &lab));
    free(copy);
}

void e2e_assert_model_equal(const char *state, const vmf_classifier *c)
{
    size_t len = 0, rlen = 0;
    void *ref = NULL;
    void *blob = e2e_latest_model_blob(state, &len, NULL);
    assert_non_null(blob);
    vmf_assert_ok(vmf_classifier_save(c, &ref, &rlen));
    if (len != rlen || memcmp(blob, ref, len) != 0) {
        print_error("daemon checkpoint (%zu bytes) differs from the in-process model (%zu bytes)\n",
                    len, rlen);
        fail();
    }
    free(blob);
    free(ref);
}

int e2e_put_batch(int port, const char *key, const float *x, size_t n, size_t d, const int64_t *y,
                  const char *extra_headers)
{
    void *npz;
    size_t len;
    e2e_npz(x, n, d, y, &npz, &len);
    int status = e2e_put_npz(port, key, npz, len, extra_headers);
    free(npz);
    return status;
}

int e2e_put_npz(int port, const char *key, const void *npz, size_t len, const char *extra_headers)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    e2e_resp r;
    int rc = e2e_http(port, "PUT", path, "application/x-npz", npz, len, extra_headers, &r);
    int status = rc == 0 ? r.status : -1;
    e2e_resp_free(&r);
    return status;
}

int e2e_put_day(int port, const e2e_stream *s, int day, const char *extra_headers)
{
    float *x;
    int64_t *y;
    size_t m = e2e_stream_day(s, day, &x, &y);
    char key[32];
    snprintf(key, sizeof key, "day-%03d", day);
    int status = e2e_put_batch(port, key, x, m, s->d, y, extra_headers);
    free(x);
    free(y);
    return status;
}

long long e2e_metric(int port, const char *name)
{
    e2e_resp r;
    assert_int_equal(e2e_http(port, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    assert_non_null(p);
    long long v = strtoll(p + strlen(key), NULL, 10);
    e2e_resp_free(&r);
    return v;
}

int e2e_run(const char *cmd, char **out)
{
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    assert_non_null(f);
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t rd;
    while ((rd = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += rd;
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[n] = '\0';
    int st = pclose(f);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

uint32_t e2e_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

void e2e_assert_all_applied(const char *state, long long n, const vmf_classifier *ref)
{
    assert_int_equal(e2e_sql_int(state, "SELECT count(*) FROM batches"), n);
    assert_int_equal(e2e_sql_int(state, "SELECT count(*) FROM batches WHERE status='applied'"), n);
    assert_int_equal(e2e_sql_int(state, "SELECT batches FROM checkpoints ORDER BY id DESC LIMIT 1"),
                     n);
    e2e_assert_model_equal(state, ref);
}

void e2e_axis_row(uint64_t *s, float *row, size_t d, size_t axis, double peak, double noise)
{
    double norm = 0.0;
    for (size_t j = 0; j < d; j++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(*s >> 11) / 9007199254740992.0 - 0.5;
        row[j] = (float)((j == axis ? peak : 0.0) + noise * u);
        norm += (double)row[j] * row[j];
    }
    for (size_t j = 0; j < d; j++)
        row[j] = (float)(row[j] / sqrt(norm));
}
