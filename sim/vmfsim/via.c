/*
 * via.c - vmfsim's client of a running vmfd (--via URL): a small blocking
 * HTTP/1.1 client over TCP, one connection per request ("Connection:
 * close"), enough for a replay that sends one batch a day and polls its
 * status.
 *
 * Protocol (see DESIGN.md, vmfd): PUT /v1/batches/day-NNN with an
 * application/x-npz body holding X (float32) and y (int32) answers 202
 * (queued) or 200 (the same batch again); the batch is applied
 * asynchronously, so the client polls GET /v1/batches/day-NNN until its
 * status is "applied" ("rejected" is an error). A batch is marked applied in
 * the store before the loop swaps in the model snapshot that predictions
 * read, so the client then also waits until GET /v1/status reports the
 * expected rows_seen; only then is the next prediction guaranteed to use
 * the batch. POST /v1/predict?top_k=K
 * with an application/x-npy body of the rows answers JSON with the top-k
 * labels of each row.
 */
#include "httpc.h"
#include "vmfsim.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ERR(...) snprintf(err, VMFSIM_ERR_SIZE, __VA_ARGS__)

#define VIA_MAX_RESPONSE ((size_t)1 << 30)

struct vmfsim_via {
    char host[256];
    char port[16];
    char base[512]; /* path prefix without trailing '/', may be "" */
    uint64_t rows;  /* rows the daemon's model must have seen (GET /v1/status rows_seen) */
};

static int parse_url(const char *url, vmfsim_via *v, char *err)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0)
        return ERR("--via URL must start with http:// (got '%s')", url), VMF_EINVAL;
    p += 7;
    const char *host_end = p;
    if (*p == '[') { /* [IPv6]:port */
        host_end = strchr(p, ']');
        if (!host_end)
            return ERR("bad IPv6 address in '%s'", url), VMF_EINVAL;
        size_t hl = (size_t)(host_end - p - 1);
        if (hl == 0 || hl >= sizeof v->host)
            return ERR("bad host in '%s'", url), VMF_EINVAL;
        memcpy(v->host, p + 1, hl);
        v->host[hl] = '\0';
        host_end++;
    } else {
        while (*host_end && *host_end != ':' && *host_end != '/')
            host_end++;
        size_t hl = (size_t)(host_end - p);
        if (hl == 0 || hl >= sizeof v->host)
            return ERR("bad host in '%s'", url), VMF_EINVAL;
        memcpy(v->host, p, hl);
        v->host[hl] = '\0';
    }
    p = host_end;
    snprintf(v->port, sizeof v->port, "8077");
    if (*p == ':') {
        p++;
        char *end;
        long port = strtol(p, &end, 10);
        if (end == p || port < 1 || port > 65535 || (*end && *end != '/'))
            return ERR("bad port in '%s'", url), VMF_EINVAL;
        snprintf(v->port, sizeof v->port, "%ld", port);
        p = end;
    }
    size_t bl = strlen(p);
    while (bl > 0 && p[bl - 1] == '/')
        bl--;
    if (bl >= sizeof v->base)
        return ERR("URL path too long"), VMF_EINVAL;
    memcpy(v->base, p, bl);
    v->base[bl] = '\0';
    return VMF_OK;
}

static int connect_to(const vmfsim_via *v, char *err)
{
    int g = 0;
    int fd = httpc_connect(NULL, v->host, v->port, HTTPC_NODELAY, 120, &g);
    if (fd < 0 && g != 0)
        ERR("cannot resolve %s: %s", v->host, gai_strerror(g));
    else if (fd < 0)
        ERR("cannot connect to vmfd at %s:%s: %s", v->host, v->port, strerror(errno));
    return fd;
}

/* Decodes a chunked body in place; returns the decoded length or (size_t)-1. */
static size_t dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return (size_t)-1;
        unsigned long long sz = strtoull(b + in, &end, 16);
        char *crlf = strstr(b + in, "\r\n");
        if (!crlf || end == b + in)
            return (size_t)-1;
        in = (size_t)(crlf - b) + 2;
        if (sz == 0)
            return out;
        if (sz > len - in)
            return (size_t)-1;
        memmove(b + out, b + in, (size_t)sz);
        out += (size_t)sz;
        in += (size_t)sz + 2;
    }
}

int vmfsim_http(vmfsim_via *v, const char *method, const char *path, const char *ctype,
                const void *body, size_t len, int *status, char **resp, size_t *resp_len, char *err)
{
    *status = 0;
    *resp = NULL;
    *resp_len = 0;
    int fd = connect_to(v, err);
    if (fd < 0)
        return VMF_EIO;
    char head[1024], target[1024], host[320];
    int tn = snprintf(target, sizeof target, "%s%s", v->base, path);
    snprintf(host, sizeof host, "%s:%s", v->host, v->port);
    int hn = tn < 0 || (size_t)tn >= sizeof target
                 ? -1
                 : httpc_format_head(head, sizeof head, method, target, host, ctype, len,
                                     "User-Agent: vmfsim\r\nAccept: application/json\r\n");
    if (hn < 0) {
        close(fd);
        return ERR("request line too long"), VMF_EINVAL;
    }
    size_t got;
    char *buf;
    int rr = httpc_exchange(fd, head, (size_t)hn, body, len, 0, VIA_MAX_RESPONSE, &buf, &got);
    if (rr == HTTPC_ESEND)
        return ERR("sending %s %s to vmfd: %s", method, path, strerror(errno)), VMF_EIO;
    if (rr == HTTPC_ERECV) {
        ERR("reading the answer to %s %s: %s", method, path, strerror(errno));
        free(buf);
        return VMF_EIO;
    }
    if (rr == HTTPC_ENOMEM)
        return ERR("out of memory"), VMF_ENOMEM;
    if (rr == HTTPC_ETOOBIG)
        return ERR("vmfd response too large"), VMF_EFORMAT;
    int major, minor, code;
    if (sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &code) != 3) {
        free(buf);
        return ERR("malformed HTTP answer to %s %s", method, path), VMF_EFORMAT;
    }
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep) {
        free(buf);
        return ERR("truncated HTTP answer to %s %s", method, path), VMF_EFORMAT;
    }
    *sep = '\0';
    size_t body_off = (size_t)(sep - buf) + 4, blen = got - body_off;
    int chunked = 0;
    long long clen = -1;
    for (char *line = strstr(buf, "\r\n"); line && *line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "content-length:", 15) == 0)
            clen = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0 &&
                 strstr(line + 18, "chunked") != NULL)
            chunked = 1;
    }
    memmove(buf, buf + body_off, blen);
    buf[blen] = '\0';
    if (chunked) {
        size_t dl = dechunk(buf, blen);
        if (dl == (size_t)-1) {
            free(buf);
            return ERR("bad chunked answer to %s %s", method, path), VMF_EFORMAT;
        }
        blen = dl;
        buf[blen] = '\0';
    } else if (clen >= 0) {
        if ((size_t)clen > blen) {
            free(buf);
            return ERR("truncated answer to %s %s", method, path), VMF_EFORMAT;
        }
        blen = (size_t)clen;
        buf[blen] = '\0';
    }
    *status = code;
    *resp = buf;
    *resp_len = blen;
    return VMF_OK;
}

static void sleep_ms(long ms);

/* rows_seen of the model snapshot that vmfd predicts with (GET /v1/status). */
static int status_rows(vmfsim_via *v, uint64_t *rows, char *err)
{
    int status;
    char *body;
    size_t blen;
    int rc = vmfsim_http(v, "GET", "/v1/status", NULL, NULL, 0, &status, &body, &blen, err);
    if (rc)
        return rc;
    json_t *j = status == 200 ? json_loadb(body, blen, 0, NULL) : NULL;
    free(body);
    const json_t *r = j ? json_object_get(j, "rows_seen") : NULL;
    if (!json_is_integer(r) || json_integer_value(r) < 0) {
        json_decref(j);
        return ERR("GET /v1/status answered %d without rows_seen", status), VMF_EFORMAT;
    }
    *rows = (uint64_t)json_integer_value(r);
    json_decref(j);
    return VMF_OK;
}

/* Waits until the snapshot vmfd predicts with has seen v->rows rows. */
static int wait_for_snapshot(vmfsim_via *v, const char *key, char *err)
{
    long wait = 1;
    for (int polls = 0;; polls++) {
        uint64_t rows;
        int rc = status_rows(v, &rows, err);
        if (rc)
            return rc;
        if (rows >= v->rows)
            return VMF_OK;
        if (polls > 20000)
            return ERR("vmfd applied %s but its model shows %llu of %llu rows", key,
                       (unsigned long long)rows, (unsigned long long)v->rows),
                   VMF_EIO;
        sleep_ms(wait);
        if (wait < 50)
            wait *= 2;
    }
}

int vmfsim_via_open(const char *url, vmfsim_via **out, char *err)
{
    *out = NULL;
    vmfsim_via *v = calloc(1, sizeof *v);
    if (!v)
        return ERR("out of memory"), VMF_ENOMEM;
    int rc = parse_url(url, v, err);
    if (rc) {
        free(v);
        return rc;
    }
    int status;
    char *body;
    size_t blen;
    rc = vmfsim_http(v, "GET", "/readyz", NULL, NULL, 0, &status, &body, &blen, err);
    if (rc) {
        free(v);
        return rc;
    }
    free(body);
    if (status != 200) {
        free(v);
        return ERR("vmfd at %s is not ready (GET /readyz answered %d)", url, status), VMF_EIO;
    }
    if ((rc = status_rows(v, &v->rows, err))) {
        free(v);
        return rc;
    }
    *out = v;
    return VMF_OK;
}

void vmfsim_via_close(vmfsim_via *v)
{
    free(v);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "error" or "detail" text of a JSON error body, for messages. */
static void error_text(const char *body, size_t len, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)(len < 200 ? len : 200), body ? body : "");
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j)
        return;
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "detail"));
    if (!d)
        d = json_string_value(json_object_get(j, "message"));
    if (e || d)
        snprintf(out, size, "%s%s%s", e ? e : "", e && d ? ": " : "", d ? d : "");
    json_decref(j);
}

/* A borrowed view of x [n][d] for the writers, which only read it. */
static vmf_array f32_matrix(const float *x, size_t n, size_t d)
{
    return (vmf_array){.dtype = VMF_DTYPE_F32,
                       .ndim = 2,
                       .shape = {n, d},
                       .count = n * d,
                       .data = (void *)(uintptr_t)x};
}

int vmfsim_via_put_batch(vmfsim_via *v, const char *key, const float *x, size_t n, size_t d,
                         const int32_t *y, char *err)
{
    vmf_array ax = f32_matrix(x, n, d);
    vmf_array ay = {
        .dtype = VMF_DTYPE_I32, .ndim = 1, .shape = {n}, .count = n, .data = (void *)(uintptr_t)y};
    const char *names[2] = {"X", "y"};
    const vmf_array *arrays[2] = {&ax, &ay};
    void *npz = NULL;
    size_t npz_len = 0;
    int rc = vmf_npz_write_mem(names, arrays, 2, &npz, &npz_len);
    if (rc)
        return ERR("building the batch %s: %s", key, vmf_last_error()), rc;
    char path[256], msg[256];
    snprintf(path, sizeof path, "/v1/batches/%s", key);
    int status = 0;
    char *body = NULL;
    size_t blen = 0;
    for (int attempt = 0;; attempt++) {
        rc = vmfsim_http(v, "PUT", path, "application/x-npz", npz, npz_len, &status, &body, &blen,
                         err);
        if (rc || status != 503 || attempt >= 600)
            break;
        free(body); /* queue full: back off and retry */
        body = NULL;
        sleep_ms(100);
    }
    free(npz);
    if (rc)
        return rc;
    int fresh = status == 202; /* 200: vmfd knew this batch already, nothing new to apply */
    if (status != 200 && status != 202) {
        error_text(body, blen, msg, sizeof msg);
        free(body);
        if (status == 409)
            return ERR("vmfd already holds a different batch %s (start vmfd on a fresh "
                       "state directory): %s",
                       key, msg),
                   VMF_EINVAL;
        return ERR("vmfd refused batch %s (HTTP %d): %s", key, status, msg), VMF_EINVAL;
    }
    /* Poll until the batch is applied. */
    long wait = 1;
    for (int polls = 0;; polls++) {
        json_t *j = json_loadb(body, blen, 0, NULL);
        const char *st = j ? json_string_value(json_object_get(j, "status")) : NULL;
        if (st && strcmp(st, "applied") == 0) {
            json_decref(j);
            free(body);
            if (!fresh)
                return VMF_OK;
            v->rows += n;
            return wait_for_snapshot(v, key, err);
        }
        if (st && strcmp(st, "rejected") == 0) {
            error_text(body, blen, msg, sizeof msg);
            json_decref(j);
            free(body);
            return ERR("vmfd rejected batch %s: %s", key, msg), VMF_EINVAL;
        }
        json_decref(j);
        free(body);
        body = NULL;
        if (polls > 20000)
            return ERR("batch %s not applied after %d polls", key, polls), VMF_EIO;
        sleep_ms(wait);
        if (wait < 50)
            wait *= 2;
        rc = vmfsim_http(v, "GET", path, NULL, NULL, 0, &status, &body, &blen, err);
        if (rc)
            return rc;
        if (status != 200) {
            error_text(body, blen, msg, sizeof msg);
            free(body);
            return ERR("GET %.200s answered %d: %.200s", path, status, msg), VMF_EIO;
        }
    }
}

/* A label from JSON: an integer, or a string holding one. */
static int label_of(const json_t *l, int32_t *out)
{
    if (json_is_integer(l)) {
        json_int_t v = json_integer_value(l);
        if (v < INT32_MIN || v > INT32_MAX)
            return -1;
        *out = (int32_t)v;
        return 0;
    }
    if (json_is_string(l)) {
        char *end;
        const char *s = json_string_value(l);
        long v = strtol(s, &end, 10);
        if (end == s || *end)
            return -1;
        *out = (int32_t)v;
        return 0;
    }
    return -1;
}

/* The per-row label list of a predict answer: {"predictions":[{"labels":[..]},..]}
 * or {"labels":[[..],..]} (also accepted: rows as objects with "top_k"/"classes"). */
static const json_t *row_labels(const json_t *root, size_t i)
{
    const json_t *rows = json_object_get(root, "predictions");
    if (!rows)
        rows = json_object_get(root, "results");
    if (rows) {
        const json_t *r = json_array_get(rows, i);
        if (json_is_array(r))
            return r;
        const json_t *l = json_object_get(r, "labels");
        if (!l)
            l = json_object_get(r, "classes");
        return l;
    }
    return json_array_get(json_object_get(root, "labels"), i);
}

/* The novelty score of row i of a predict answer ({"predictions":[{"novelty":..},..]}), or NaN. */
static double row_novelty(const json_t *root, size_t i)
{
    const json_t *r = json_array_get(json_object_get(root, "predictions"), i);
    const json_t *v = json_object_get(r, "novelty");
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int vmfsim_via_predict(vmfsim_via *v, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    vmf_array ax = f32_matrix(x, n, d);
    void *npy = NULL;
    size_t npy_len = 0;
    int rc = vmf_npy_write_mem(&ax, &npy, &npy_len);
    if (rc)
        return ERR("building the predict body: %s", vmf_last_error()), rc;
    char path[64], msg[256];
    snprintf(path, sizeof path, "/v1/predict?top_k=%zu", k);
    int status;
    char *body;
    size_t blen;
    rc =
        vmfsim_http(v, "POST", path, "application/x-npy", npy, npy_len, &status, &body, &blen, err);
    free(npy);
    if (rc)
        return rc;
    if (status != 200) {
        error_text(body, blen, msg, sizeof msg);
        free(body);
        return ERR("POST /v1/predict answered %d: %s", status, msg), VMF_EIO;
    }
    json_error_t je;
    json_t *root = json_loadb(body, blen, 0, &je);
    free(body);
    if (!root)
        return ERR("vmfd predict answer is not JSON: %s", je.text), VMF_EFORMAT;
    rc = VMF_OK;
    for (size_t i = 0; i < n && rc == VMF_OK; i++) {
        const json_t *l = row_labels(root, i);
        if (!json_is_array(l)) {
            ERR("vmfd predict answer has no labels for row %zu", i);
            rc = VMF_EFORMAT;
            break;
        }
        if (novelty && isnan(novelty[i] = row_novelty(root, i))) {
            ERR("vmfd predict answer has no novelty for row %zu", i);
            rc = VMF_EFORMAT;
            break;
        }
        for (size_t j = 0; j < k; j++) {
            topk[i * k + j] = -1;
            const json_t *e = json_array_get(l, j);
            if (e && !json_is_null(e) && label_of(e, &topk[i * k + j]) != 0) {
                ERR("vmfd predict answer: row %zu has a non-integer label", i);
                rc = VMF_EFORMAT;
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}
