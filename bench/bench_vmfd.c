/*
 * bench_vmfd.c - vmfd over HTTP against libvmfmm in-process, measured in one
 * run on the same rows:
 *
 *  - ingest: one labelled .npz of 100,000 rows (d = 512, 200 classes, five
 *    vMF modes each) PUT to /v1/batches/KEY: rows/s to the durable 202 and
 *    to "applied"; in-process: decode the same .npz, normalize, partial_fit.
 *    The batch leaves the daemon with 200 classes x 5 components.
 *  - predict: POST /v1/predict?top_k=4 with .npy bodies of 256 rows and of
 *    1 row from 64 keep-alive connections (one thread, non-blocking sockets
 *    and poll): rows/s and the p50/p99 request latency; in-process:
 *    vmf_classifier_predict_topk on the same rows, one request's rows per
 *    call, with the classifier learned from the same batch; for single rows
 *    also 64 of them per call, the bound of coalescing concurrent requests.
 *
 *   vmf_bench_vmfd [--rows N] [--seconds S] [--connections C] [--vmfd PATH]
 *                  [--url http://HOST:PORT]
 *
 * Without --url it starts BINDIR/vmfd (the vmfd beside this binary, or
 * --vmfd) on a free loopback port with a temporary state directory, and
 * stops it afterwards. --url names a running vmfd with an empty state (no
 * token). The targets: HTTP predict within 2x of in-process for 256-row
 * requests, single-row p99 under 5 ms.
 */
#define _GNU_SOURCE /* memmem */
#include "httpc.h"
#include "vmfmm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIM        512
#define CLASSES    200
#define MODES      5
#define KAPPA      1500.0
#define TOP_K      4
#define QUERY_SETS 64 /* distinct request bodies per shape */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct daemon_proc daemon_proc;
static daemon_proc *started; /* the vmfd to stop on the way out */
static void stop_vmfd(daemon_proc *p);

static void die(const char *what)
{
    fprintf(stderr, "vmf_bench_vmfd: %s\n", what);
    if (started)
        stop_vmfd(started);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- data ---- */

typedef struct data {
    float *means; /* [CLASSES * MODES][DIM] */
    float *x;     /* [n][DIM] */
    int64_t *y;   /* [n] */
    size_t n;
} data;

/* n rows, classes balanced, each row from one of its class's modes, shuffled. */
static void make_rows(const float *means, size_t n, vmf_rng *rng, float *x, int64_t *y)
{
    for (size_t i = 0; i < n; i++) {
        size_t c = i % CLASSES, m = (size_t)vmf_rng_below(rng, MODES);
        if (vmf_sample_vmf(means + (c * MODES + m) * DIM, DIM, KAPPA, 1, rng, x + i * DIM) !=
            VMF_OK)
            die(vmf_last_error());
        if (y)
            y[i] = (int64_t)c;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vmf_rng_below(rng, i);
        float tmp[DIM];
        memcpy(tmp, x + (i - 1) * DIM, sizeof tmp);
        memcpy(x + (i - 1) * DIM, x + j * DIM, sizeof tmp);
        memcpy(x + j * DIM, tmp, sizeof tmp);
        if (y) {
            int64_t t = y[i - 1];
            y[i - 1] = y[j];
            y[j] = t;
        }
    }
}

static void make_data(data *dt, size_t n, vmf_rng *rng)
{
    dt->n = n;
    dt->means = xmalloc((size_t)CLASSES * MODES * DIM * sizeof *dt->means);
    dt->x = xmalloc(n * DIM * sizeof *dt->x);
    dt->y = xmalloc(n * sizeof *dt->y);
    if (vmf_sample_uniform(DIM, (size_t)CLASSES * MODES, rng, dt->means) != VMF_OK)
        die(vmf_last_error());
    make_rows(dt->means, n, rng, dt->x, dt->y);
}

static vmf_array view(vmf_dtype t, size_t ndim, size_t rows, size_t cols, const void *p)
{
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = t;
    a.ndim = ndim;
    a.shape[0] = rows;
    a.shape[1] = cols;
    a.count = ndim == 1 ? rows : rows * cols;
    a.data = (void *)(uintptr_t)p;
    return a;
}

/* ---- vmfd process ---- */

struct daemon_proc {
    pid_t pid;
    char dir[256];
    char host[64];
    int port;
};

static void bin_dir(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        die("cannot read /proc/self/exe");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, size, "%s", self);
}

static void start_vmfd(daemon_proc *p, const char *bin)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(p->dir, sizeof p->dir, "%s/vmfbench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(p->dir))
        die("mkdtemp failed");
    char state[300], logp[300], portfile[340];
    snprintf(state, sizeof state, "%s/state", p->dir);
    snprintf(logp, sizeof logp, "%s/vmfd.log", p->dir);
    snprintf(portfile, sizeof portfile, "%s/vmfd.port", state);
    p->pid = fork();
    if (p->pid < 0)
        die("fork failed");
    if (p->pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execl(bin, bin, "--state-dir", state, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    snprintf(p->host, sizeof p->host, "127.0.0.1");
    for (int i = 0; i < 3000 && !p->port; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &p->port) != 1)
                p->port = 0;
            fclose(f);
        }
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            fprintf(stderr, "vmf_bench_vmfd: %s exited at startup; see %s\n", bin, logp);
            exit(1);
        }
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    if (!p->port)
        die("vmfd wrote no port file in 30 s");
}

static void stop_vmfd(daemon_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    int st;
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    started = NULL;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "vmf_bench_vmfd: could not remove %s\n", p->dir);
}

/* ---- blocking HTTP (ingest and control) ---- */

static int connect_to(const char *host, int port)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    return httpc_connect(NULL, host, port_s, HTTPC_NODELAY, 0, NULL);
}

/* One request with Connection: close; returns the status, body in *body (malloc'ed). */
static int http_once(const daemon_proc *p, const char *method, const char *path, const char *ctype,
                     const void *body, size_t len, char **out)
{
    int fd = connect_to(p->host, p->port);
    if (fd < 0)
        return -1;
    char head[512];
    int hn = httpc_format_head(head, sizeof head, method, path, p->host, ctype, len, NULL);
    if (hn < 0)
        die("request head too long");
    /* A failed recv ends the answer like EOF. */
    size_t got;
    char *buf;
    int rr = httpc_exchange(fd, head, (size_t)hn, body, len, 0, 0, &buf, &got);
    if (rr == HTTPC_ESEND)
        return -1;
    if (rr == HTTPC_ENOMEM)
        die("out of memory");
    int status = strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
    char *hend = strstr(buf, "\r\n\r\n");
    if (out) {
        *out = strdup(hend ? hend + 4 : "");
        if (!*out)
            die("out of memory");
    }
    free(buf);
    return status;
}

/* Integer field "name": N of a flat JSON text, or -1. */
static long long json_int(const char *text, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = strstr(text, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static void wait_ready(const daemon_proc *p)
{
    for (int i = 0; i < 6000; i++) {
        int s = http_once(p, "GET", "/readyz", "text/plain", NULL, 0, NULL);
        if (s == 200)
            return;
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    die("vmfd not ready after 60 s");
}

/* ---- the load generator ---- */

typedef struct lconn {
    int fd;
    const char *req; /* request bytes (shared) */
    size_t req_len, sent;
    char *in;
    size_t in_len, in_cap;
    double t_start;
} lconn;

typedef struct load_result {
    size_t requests, errors;
    double seconds;
    double *lat; /* [requests] seconds */
} load_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Whole response in c->in? Returns its length (0: not yet), status in *status. */
static size_t response_complete(const lconn *c, int *status)
{
    if (c->in_len < 12)
        return 0;
    char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!hend)
        return 0;
    size_t hlen = (size_t)(hend - c->in) + 4;
    const char *cl = memmem(c->in, hlen, "Content-Length: ", 16);
    size_t blen = cl ? (size_t)strtoull(cl + 16, NULL, 10) : 0;
    if (c->in_len < hlen + blen)
        return 0;
    *status = atoi(c->in + 9);
    return hlen + blen;
}

/*
 * conns keep-alive connections each sending requests reqs[i % nreq] back to
 * back for `seconds` (after a warm-up of one request per connection).
 */
static load_result run_load(const daemon_proc *p, int conns, char *const *reqs,
                            const size_t *req_lens, size_t nreq, double seconds)
{
    lconn *cs = calloc((size_t)conns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)conns, sizeof *pf);
    load_result res = {0, 0, 0.0, NULL};
    size_t lat_cap = 1 << 16, next = 0;
    res.lat = xmalloc(lat_cap * sizeof *res.lat);
    if (!cs || !pf)
        die("out of memory");
    for (int i = 0; i < conns; i++) {
        cs[i].fd = connect_to(p->host, p->port);
        if (cs[i].fd < 0)
            die("cannot connect to vmfd");
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
        cs[i].in_cap = 1 << 16;
        cs[i].in = xmalloc(cs[i].in_cap);
    }
    double t0 = now_s(), t_end = t0 + seconds, warm_end = 0.0;
    int warm = conns; /* responses still to come before measuring */
    int active = conns;
    for (int i = 0; i < conns; i++) {
        size_t k = next++ % nreq;
        cs[i].req = reqs[k];
        cs[i].req_len = req_lens[k];
        cs[i].t_start = now_s();
    }
    while (active > 0) {
        for (int i = 0; i < conns; i++) {
            pf[i].fd = cs[i].fd;
            pf[i].events = cs[i].fd < 0                 ? 0
                           : cs[i].sent < cs[i].req_len ? POLLOUT | POLLIN
                                                        : POLLIN;
            pf[i].revents = 0;
        }
        if (poll(pf, (nfds_t)conns, 1000) < 0 && errno != EINTR)
            die("poll failed");
        for (int i = 0; i < conns; i++) {
            lconn *c = &cs[i];
            if (c->fd < 0 || !pf[i].revents)
                continue;
            if (c->sent < c->req_len && (pf[i].revents & POLLOUT)) {
                ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
                if (w > 0)
                    c->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    die("send failed (vmfd closed the connection?)");
            }
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (;;) {
                if (c->in_cap - c->in_len < 65536) {
                    c->in_cap *= 2;
                    c->in = realloc(c->in, c->in_cap);
                    if (!c->in)
                        die("out of memory");
                }
                ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (r > 0) {
                    c->in_len += (size_t)r;
                    continue;
                }
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    fprintf(stderr,
                            "vmf_bench_vmfd: vmfd closed a keep-alive connection after "
                            "%zu of %zu request bytes; it sent: %.*s\n",
                            c->sent, c->req_len, (int)(c->in_len < 400 ? c->in_len : 400), c->in);
                    die("load generator stopped");
                }
                break;
            }
            int status;
            size_t used = response_complete(c, &status);
            if (!used)
                continue;
            double t = now_s();
            if (warm > 0) {
                if (--warm == 0)
                    warm_end = t;
            } else {
                if (res.requests == lat_cap) {
                    lat_cap *= 2;
                    res.lat = realloc(res.lat, lat_cap * sizeof *res.lat);
                    if (!res.lat)
                        die("out of memory");
                }
                res.lat[res.requests++] = t - c->t_start;
                if (status != 200)
                    res.errors++;
            }
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
            if ((warm_end > 0.0 && t >= warm_end + seconds) || t >= t_end + 60.0) {
                close(c->fd);
                c->fd = -1;
                active--;
                continue;
            }
            size_t k = next++ % nreq;
            c->req = reqs[k];
            c->req_len = req_lens[k];
            c->sent = 0;
            c->t_start = now_s();
        }
    }
    res.seconds = now_s() - (warm_end > 0.0 ? warm_end : t0);
    for (int i = 0; i < conns; i++)
        free(cs[i].in);
    free(cs);
    free(pf);
    return res;
}

/* ---- the phases ---- */

typedef struct shape_result {
    double http_rows_s, http_p50, http_p99, inproc_rows_s, inproc_p50, inproc_p99;
    double one_p50, one_p99;      /* HTTP with one connection */
    double inproc_batched_rows_s; /* single rows: QUERY_SETS of them per call */
    size_t http_errors;
} shape_result;

static shape_result bench_predict(const daemon_proc *p, const vmf_classifier *model,
                                  const float *means, size_t rows, int conns, double seconds,
                                  vmf_rng *rng)
{
    shape_result out;
    memset(&out, 0, sizeof out);
    float *q = xmalloc(QUERY_SETS * rows * DIM * sizeof *q);
    make_rows(means, QUERY_SETS * rows, rng, q, NULL);

    /* In-process: one call per request's rows, cycling through the sets. */
    int32_t *cls = xmalloc(rows * TOP_K * sizeof *cls);
    double *proba = xmalloc(rows * TOP_K * sizeof *proba);
    size_t cap = 1 << 16, calls = 0;
    double *lat = xmalloc(cap * sizeof *lat);
    double t0 = now_s(), t;
    do {
        double s = now_s();
        if (vmf_classifier_predict_topk(model, q + (calls % QUERY_SETS) * rows * DIM, rows, DIM,
                                        TOP_K, cls, proba) != VMF_OK)
            die(vmf_last_error());
        t = now_s();
        if (calls == cap) {
            cap *= 2;
            lat = realloc(lat, cap * sizeof *lat);
            if (!lat)
                die("out of memory");
        }
        lat[calls++] = t - s;
    } while (t - t0 < seconds);
    out.inproc_rows_s = (double)(calls * rows) / (t - t0);
    out.inproc_p50 = percentile(lat, calls, 0.50);
    out.inproc_p99 = percentile(lat, calls, 0.99);
    free(lat);
    free(cls);
    free(proba);
    if (rows == 1) {
        /* The bound of coalescing: all QUERY_SETS single rows in one call. */
        cls = xmalloc(QUERY_SETS * TOP_K * sizeof *cls);
        proba = xmalloc(QUERY_SETS * TOP_K * sizeof *proba);
        calls = 0;
        t0 = now_s();
        do {
            if (vmf_classifier_predict_topk(model, q, QUERY_SETS, DIM, TOP_K, cls, proba) != VMF_OK)
                die(vmf_last_error());
            calls++;
            t = now_s();
        } while (t - t0 < seconds / 2.0);
        out.inproc_batched_rows_s = (double)(calls * QUERY_SETS) / (t - t0);
        free(cls);
        free(proba);
    }

    /* HTTP: the same rows as .npy bodies. */
    char *reqs[QUERY_SETS];
    size_t lens[QUERY_SETS];
    for (size_t s = 0; s < QUERY_SETS; s++) {
        vmf_array a = view(VMF_DTYPE_F32, 2, rows, DIM, q + s * rows * DIM);
        void *npy;
        size_t nlen;
        if (vmf_npy_write_mem(&a, &npy, &nlen) != VMF_OK)
            die(vmf_last_error());
        char head[256];
        int hn = snprintf(head, sizeof head,
                          "POST /v1/predict?top_k=%d HTTP/1.1\r\nHost: %s\r\n"
                          "Content-Type: application/x-npy\r\nContent-Length: %zu\r\n\r\n",
                          TOP_K, p->host, nlen);
        reqs[s] = xmalloc((size_t)hn + nlen);
        memcpy(reqs[s], head, (size_t)hn);
        memcpy(reqs[s] + hn, npy, nlen);
        lens[s] = (size_t)hn + nlen;
        free(npy);
    }
    load_result lr = run_load(p, conns, reqs, lens, QUERY_SETS, seconds);
    out.http_rows_s = (double)(lr.requests * rows) / lr.seconds;
    out.http_p50 = percentile(lr.lat, lr.requests, 0.50);
    out.http_p99 = percentile(lr.lat, lr.requests, 0.99);
    out.http_errors = lr.errors;
    free(lr.lat);
    /* Unloaded latency: one connection, one request at a time. */
    lr = run_load(p, 1, reqs, lens, QUERY_SETS, seconds / 2.0);
    out.one_p50 = percentile(lr.lat, lr.requests, 0.50);
    out.one_p99 = percentile(lr.lat, lr.requests, 0.99);
    out.http_errors += lr.errors;
    free(lr.lat);
    for (size_t s = 0; s < QUERY_SETS; s++)
        free(reqs[s]);
    free(q);
    return out;
}

static const char usage[] =
    "usage: vmf_bench_vmfd [--rows N] [--seconds S] [--connections C] [--vmfd PATH]\n"
    "                      [--url http://HOST:PORT]\n"
    "  --rows N         rows of the ingested .npz (default 100000)\n"
    "  --seconds S      duration of each predict phase (default 5)\n"
    "  --connections C  keep-alive connections of the load generator (default 64)\n"
    "  --vmfd PATH      the vmfd to start (default: the one beside this binary)\n"
    "  --url URL        use a running vmfd (empty state, no token) instead\n";

int main(int argc, char **argv)
{
    size_t n = 100000;
    double seconds = 5.0;
    int conns = 64;
    const char *vmfd_bin = NULL, *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            fputs(usage, stderr);
            return 64;
        }
        if (strcmp(a, "--rows") == 0)
            n = (size_t)strtoull(v, NULL, 10);
        else if (strcmp(a, "--seconds") == 0)
            seconds = strtod(v, NULL);
        else if (strcmp(a, "--connections") == 0)
            conns = atoi(v);
        else if (strcmp(a, "--vmfd") == 0)
            vmfd_bin = v;
        else if (strcmp(a, "--url") == 0)
            url = v;
        else {
            fputs(usage, stderr);
            return 64;
        }
        i++;
    }
    if (n < CLASSES || !(seconds > 0.0) || conns < 1 || conns > 4096) {
        fputs(usage, stderr);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);

    daemon_proc p;
    memset(&p, 0, sizeof p);
    char binbuf[PATH_MAX + 8];
    if (url) {
        if (sscanf(url, "http://%63[^:]:%d", p.host, &p.port) != 2)
            die("--url must look like http://127.0.0.1:8077");
    } else {
        if (!vmfd_bin) {
            char dir[PATH_MAX];
            bin_dir(dir, sizeof dir);
            snprintf(binbuf, sizeof binbuf, "%s/vmfd", dir);
            vmfd_bin = binbuf;
        }
        start_vmfd(&p, vmfd_bin);
        started = &p;
    }
    wait_ready(&p);

    /* The data and its .npz. */
    vmf_rng rng;
    vmf_rng_seed(&rng, 20261123);
    data dt;
    double t0 = now_s();
    make_data(&dt, n, &rng);
    vmf_array xa = view(VMF_DTYPE_F32, 2, n, DIM, dt.x), ya = view(VMF_DTYPE_I64, 1, n, 0, dt.y);
    const char *names[2] = {"X", "y"};
    const vmf_array *arrays[2] = {&xa, &ya};
    void *npz;
    size_t npz_len;
    if (vmf_npz_write_mem(names, arrays, 2, &npz, &npz_len) != VMF_OK)
        die(vmf_last_error());
    fprintf(stderr, "data: %zu rows x %d in %.1f s, npz %.1f MB\n", n, DIM, now_s() - t0,
            (double)npz_len / 1e6);

    /* In-process ingest: decode, normalize, partial_fit (vmfd's options). */
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    o.k_max = 5;
    o.stepwise.alpha = 0.7;
    o.stepwise.t0 = 2.0;
    o.stepwise.minibatch = 256;
    o.stepwise.seed = 42;
    vmf_classifier *model = NULL;
    if (vmf_classifier_new(&o, 0, &model) != VMF_OK)
        die(vmf_last_error());
    double ti0 = now_s();
    vmf_array rx, ry;
    memset(&rx, 0, sizeof rx);
    memset(&ry, 0, sizeof ry);
    float *x = NULL;
    size_t rn, rd;
    vmf_labels lab;
    int64_t *storage = NULL;
    if (vmf_npz_read_mem(npz, npz_len, "X", &rx) != VMF_OK ||
        vmf_npz_read_mem(npz, npz_len, "y", &ry) != VMF_OK ||
        vmf_array_to_f32(&rx, &x, &rn, &rd) != VMF_OK || vmf_rows_normalize(x, rn, rd) != VMF_OK ||
        vmf_labels_from_array(&ry, &lab, &storage) != VMF_OK)
        die(vmf_last_error());
    double ti1 = now_s();
    if (vmf_classifier_partial_fit(model, x, rn, rd, &lab) != VMF_OK)
        die(vmf_last_error());
    double ti2 = now_s();
    free(x);
    free(storage);
    vmf_array_free(&rx);
    vmf_array_free(&ry);

    /* HTTP ingest: to the durable 202, then to "applied". */
    char path[128], *body = NULL;
    snprintf(path, sizeof path, "/v1/batches/bench-%ld-%zu", (long)getpid(), n);
    double th0 = now_s();
    int st = http_once(&p, "PUT", path, "application/x-npz", npz, npz_len, &body);
    double th1 = now_s();
    if (st != 202) {
        fprintf(stderr, "vmf_bench_vmfd: PUT answered %d: %s\n", st, body ? body : "");
        stop_vmfd(&p);
        return 1;
    }
    free(body);
    double th2 = 0.0;
    for (;;) {
        st = http_once(&p, "GET", path, "text/plain", NULL, 0, &body);
        int applied = st == 200 && strstr(body, "\"status\":\"applied\"");
        int other = st != 200 || (!applied && !strstr(body, "\"status\":\"queued\""));
        if (other) {
            fprintf(stderr, "vmf_bench_vmfd: batch status %d: %s\n", st, body);
            stop_vmfd(&p);
            return 1;
        }
        free(body);
        if (applied) {
            th2 = now_s();
            break;
        }
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    free(npz);
    /* The store says applied first; the loop publishes the model just after. */
    long long classes = -1, comps = -1;
    for (int i = 0; i < 6000; i++) {
        st = http_once(&p, "GET", "/v1/status", "text/plain", NULL, 0, &body);
        long long applied = st == 200 ? json_int(body, "batches_applied") : -1;
        classes = json_int(body, "n_classes");
        comps = json_int(body, "components");
        free(body);
        if (applied >= 1)
            break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }

    printf("vmfd benchmark: d = %d, %lld classes, %lld components, top_k = %d, "
           "%d connections, %.0f s per predict phase\n",
           DIM, classes, comps, TOP_K, conns, seconds);
    printf("in-process model: %zu classes (same batch, same options)\n\n",
           vmf_classifier_n_classes(model));
    double r_ack = (double)n / (th1 - th0), r_app = (double)n / (th2 - th0);
    double r_in = (double)n / (ti2 - ti0), r_fit = (double)n / (ti2 - ti1);
    printf("ingest %zu rows (npz %.1f MB)\n", n, (double)npz_len / 1e6);
    printf("  http PUT to 202 (durable)        %10.0f rows/s  (%.2f s)\n", r_ack, th1 - th0);
    printf("  http PUT to applied              %10.0f rows/s  (%.2f s)\n", r_app, th2 - th0);
    printf("  in-process decode + partial_fit  %10.0f rows/s  (%.2f s)\n", r_in, ti2 - ti0);
    printf("  in-process partial_fit alone     %10.0f rows/s  (%.2f s)\n", r_fit, ti2 - ti1);
    printf("  ratio http applied / in-process  %10.2f\n\n", r_app / r_in);

    static const size_t shapes[2] = {256, 1};
    int ok = 1;
    for (int s = 0; s < 2; s++) {
        shape_result r = bench_predict(&p, model, dt.means, shapes[s], conns, seconds, &rng);
        printf("predict %zu row%s per request\n", shapes[s], shapes[s] > 1 ? "s" : "");
        printf("  http, %d conn. %7.0f rows/s  p50 %7.3f ms  p99 %7.3f ms  (%zu errors)\n", conns,
               r.http_rows_s, 1e3 * r.http_p50, 1e3 * r.http_p99, r.http_errors);
        printf("  http, 1 connection          p50 %7.3f ms  p99 %7.3f ms\n", 1e3 * r.one_p50,
               1e3 * r.one_p99);
        printf("  in-process  %10.0f rows/s  p50 %7.3f ms  p99 %7.3f ms\n", r.inproc_rows_s,
               1e3 * r.inproc_p50, 1e3 * r.inproc_p99);
        if (shapes[s] == 1)
            printf("  in-process, %d rows per call %7.0f rows/s  (what coalescing "
                   "concurrent requests could reach)\n",
                   QUERY_SETS, r.inproc_batched_rows_s);
        printf("  ratio in-process / http throughput %.2f", r.inproc_rows_s / r.http_rows_s);
        if (shapes[s] == 256) {
            int met = r.inproc_rows_s / r.http_rows_s <= 2.0;
            printf("  (target <= 2: %s)\n\n", met ? "met" : "NOT met");
            ok &= met;
        } else {
            int met = r.http_p99 < 5e-3;
            printf("  (target http p99 < 5 ms: %s)\n\n", met ? "met" : "NOT met");
            ok &= met;
        }
        ok &= r.http_errors == 0;
    }
    vmf_classifier_free(model);
    free(dt.means);
    free(dt.x);
    free(dt.y);
    if (!url)
        stop_vmfd(&p);
    return ok ? 0 : 2;
}
