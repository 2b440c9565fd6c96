/*
 * vmfd_api.c - the HTTP API of vmfd: routing, authentication and the
 * endpoint handlers (the contract is in docs/vmfd.md).
 *
 * Every error answer is JSON {"error": "<code>", "detail": "<text>"}. Work
 * that can take more than about a millisecond (decoding large bodies,
 * predicting many rows, the model JSON) runs on the threadpool against a
 * referenced snapshot; everything else answers on the loop thread.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_model.h"
#include "vmfd_store.h"
#include "vmfd_store_views.h"
#include "vmfmm/common.h"

#include <jansson.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A predict request is answered on the loop thread when it is cheap: a small
 * body and little model work (rows x components x dim multiply-adds, the
 * size of the E-step GEMM). Anything more goes to the threadpool, so the
 * loop keeps parsing and the cores share the GEMMs.
 */
#define INLINE_PREDICT_BYTES 16384
#define INLINE_PREDICT_MACS  (1u << 17)
#define DEFAULT_TOP_K        4

char *vmfd_api_error_json(const char *error, const char *detail, size_t *len)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "detail", detail ? detail : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *len = s ? strlen(s) : 0;
    return s;
}

static void answer(vmfd_daemon *d, vmfd_http_req *req, int status, const char *ctype,
                   const char *extra, char *body, size_t len)
{
    if (status >= 100 && status < 600)
        d->metrics.responses[status / 100]++;
    vmfd_http_respond(req, status, ctype, extra, body, len);
}

static void answer_json(vmfd_daemon *d, vmfd_http_req *req, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) {
        answer(d, req, 500, "application/json", NULL, NULL, 0);
        return;
    }
    answer(d, req, status, "application/json", NULL, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
static void
answer_error(vmfd_daemon *d, vmfd_http_req *req, int status, const char *extra, const char *error,
             const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = vmfd_api_error_json(error, detail, &len);
    answer(d, req, status, "application/json", extra, body, len);
}

void vmfd_api_refusal(void *ud, int status)
{
    vmfd_daemon *d = ud;
    d->metrics.refusals++;
    if (status >= 100 && status < 600)
        d->metrics.responses[status / 100]++;
}

/*
 * Compares in time independent of where the strings differ. The scheme name
 * is case-insensitive (RFC 9110 11.1), so "bearer" and "BEARER" work too.
 */
static int token_ok(const vmfd_daemon *d, const char *auth)
{
    static const char prefix[] = "Bearer ";
    if (strncasecmp(auth, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *got = auth + sizeof prefix - 1;
    size_t glen = strlen(got);
    unsigned diff = (unsigned)(glen ^ d->token_len);
    for (size_t i = 0; i < d->token_len; i++)
        diff |= (unsigned char)d->token[i] ^ (unsigned char)(i < glen ? got[i] : 0);
    return diff == 0;
}

static int valid_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 128 || k[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- ingest ---- */

static void ingest_done(vmfd_daemon *d, void *ud, const vmfd_ingest_reply *r)
{
    vmfd_http_req *req = ud;
    if (r->status == 202 || r->status == 200) {
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I}", "key", req->path + strlen("/v1/batches/"), "status",
                      r->batch_status, "rows", (json_int_t)r->rows, "seq", (json_int_t)r->seq);
        if (o && r->same_content_as[0])
            json_object_set_new(o, "same_content_as", json_string(r->same_content_as));
        answer_json(d, req, r->status, o);
        return;
    }
    /* 503 and 507 are temporary: the client retries the same key later. */
    answer_error(d, req, r->status,
                 r->status == 503 || r->status == 507 ? "Retry-After: 30\r\n" : NULL, r->error,
                 "%s", r->detail);
}

static void put_batch(vmfd_daemon *d, vmfd_http_req *req, const char *key)
{
    if (!valid_key(key)) {
        answer_error(d, req, 400, NULL, "bad_key",
                     "keys are 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.'");
        return;
    }
    if (d->stopping) {
        answer_error(d, req, 503, "Retry-After: 5\r\n", "shutting_down",
                     "vmfd is stopping; retry after its restart");
        return;
    }
    if (d->queue_depth >= d->cfg.queue_length) {
        d->metrics.batches[VMFD_BATCH_BUSY]++;
        answer_error(d, req, 503, "Retry-After: 5\r\n", "queue_full",
                     "%llu batches are waiting (queue_length)", (unsigned long long)d->queue_depth);
        return;
    }
    if (req->body_len == 0) {
        answer_error(d, req, 400, NULL, "empty_body", "the request has no body");
        return;
    }
    d->queue_depth++;
    char *body = req->body;
    req->body = NULL; /* taken over by the ingest task */
    vmfd_ingest_submit(d, key, "http", req->content_type, body, req->body_len, NULL, ingest_done,
                       req);
}

static void get_batch(vmfd_daemon *d, vmfd_http_req *req, const char *key)
{
    char *json = NULL, err[256];
    if (!valid_key(key)) {
        answer_error(d, req, 404, NULL, "not_found", "no such batch");
        return;
    }
    int64_t visible = d->snap ? d->snap->last_seq : 0;
    int rc = vmfd_store_batch_json(d->rdb, key, visible, &json, err, sizeof err);
    if (rc == 1)
        answer_error(d, req, 404, NULL, "not_found", "no batch with key '%s'", key);
    else if (rc != 0)
        answer_error(d, req, 500, NULL, "store_failed", "%s", err);
    else
        answer(d, req, 200, "application/json", NULL, json, strlen(json));
}

/* ---- predict ---- */

/*
 * Coalescing. A predict request that is not answered inline and whose body
 * is at most COALESCE_MAX_BYTES joins the predict queue. While a coalesced
 * job runs on the threadpool, arriving requests wait in the queue; when it
 * finishes (on the loop thread), everything waiting (up to
 * COALESCE_MAX_REQUESTS requests) leaves as ONE job: each body is decoded,
 * the rows of all requests with the same top_k are stacked into one matrix
 * and predicted in one call against the snapshot current at that moment,
 * and each answer is sliced back to its request. Rows are predicted
 * independently, so the answers are those of one call per request; the
 * snapshot is at least as new as the one current when the request arrived.
 * Larger bodies run as their own jobs, as before.
 */
#define COALESCE_MAX_BYTES    65536
#define COALESCE_MAX_REQUESTS 1024

struct vmfd_pjob {
    uv_work_t w;
    vmfd_daemon *d;
    vmfd_http_req *req;
    vmfd_snapshot *snap; /* own reference; borrowed from the batch when coalesced */
    long top_k;
    int kind; /* 0 predict, 1 model JSON */
    /* results */
    int status;
    char *out;
    size_t out_len;
    char error[48];
    char detail[256];
    size_t rows;
    /* coalescing */
    vmfd_pjob *next;
    float *x; /* decoded rows [n][dim] */
    size_t n, dim, k;
};
typedef vmfd_pjob pjob;

/* One coalesced job: the requests of the queue at the moment it started. */
typedef struct pbatch {
    uv_work_t w;
    vmfd_daemon *d;
    vmfd_snapshot *snap;
    pjob *head;
    size_t n_req;
} pbatch;

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void pjob_fail(pjob *j, int status, const char *error, const char *detail)
{
    j->status = status;
    snprintf(j->error, sizeof j->error, "%s", error);
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
}

/* Decodes and checks the rows of j against snap (j->x, n, dim, k); 0 or -1 with j failed. */
static int predict_decode(pjob *j, const vmfd_snapshot *snap)
{
    vmfd_http_req *req = j->req;
    vmfd_payload_error pe;
    const vmfd_model *m = snap->model;
    size_t nc = vmfd_model_n_labels(m);
    char detail[256];
    if (vmfd_payload_parse_predict(req->content_type, req->body, req->body_len, &j->x, &j->n,
                                   &j->dim, &j->top_k, &pe) != 0) {
        pjob_fail(j, pe.status, pe.error, pe.detail);
        return -1;
    }
    if (nc == 0) {
        pjob_fail(j, 409, "no_model", "no batch has been applied yet");
        return -1;
    }
    if (j->n > j->d->cfg.predict_max_rows) {
        snprintf(detail, sizeof detail, "%zu rows; predict_max_rows is %llu", j->n,
                 (unsigned long long)j->d->cfg.predict_max_rows);
        pjob_fail(j, 413, "too_many_rows", detail);
        return -1;
    }
    if (j->dim != vmfd_model_dim(m)) {
        snprintf(detail, sizeof detail, "rows have %zu values, the model has %zu", j->dim,
                 vmfd_model_dim(m));
        pjob_fail(j, 422, "bad_dimension", detail);
        return -1;
    }
    j->k = (size_t)j->top_k < nc ? (size_t)j->top_k : nc;
    return 0;
}

/*
 * The JSON answer of j from its top-k rows cls/proba [n][k] and novelty [n]:
 * each row also carries its novelty score and "unknown", true when the
 * score exceeds model.novelty_threshold (the labels are still the top-k).
 */
static void predict_format(pjob *j, const vmfd_snapshot *snap, const int32_t *cls,
                           const double *proba, const double *novelty)
{
    size_t n = j->n, k = j->k;
    sbuf b = {NULL, 0, 0, 0};
    char num[64];
    int w = snprintf(num, sizeof num, "{\"model_version\":%llu,\"top_k\":%zu,\"predictions\":[",
                     (unsigned long long)snap->version, k);
    sb_put(&b, num, (size_t)w);
    for (size_t i = 0; i < n; i++) {
        sb_str(&b, i ? ",{\"labels\":[" : "{\"labels\":[");
        for (size_t r = 0; r < k; r++) {
            if (r)
                sb_put(&b, ",", 1);
            int32_t c = cls[i * k + r];
            sb_str(&b, c >= 0 && (size_t)c < snap->n_labels ? snap->label_json[c] : "null");
        }
        sb_str(&b, "],\"probabilities\":[");
        for (size_t r = 0; r < k; r++) {
            w = snprintf(num, sizeof num, r ? ",%.17g" : "%.17g", proba[i * k + r]);
            sb_put(&b, num, (size_t)w);
        }
        w = snprintf(num, sizeof num, "],\"novelty\":%.17g,\"unknown\":%s}", novelty[i],
                     novelty[i] > j->d->cfg.novelty_threshold ? "true" : "false");
        sb_put(&b, num, (size_t)w);
    }
    sb_str(&b, "]}");
    if (b.oom) {
        free(b.p);
        pjob_fail(j, 507, "out_of_memory", "formatting the answer");
        return;
    }
    j->status = 200;
    j->out = b.p;
    j->out_len = b.len;
    j->rows = n;
}

/*
 * Predicts the decoded requests of list (status 0, all with the same k)
 * stacked into one matrix, then formats each answer. Any thread.
 */
static void predict_stacked(pjob **list, size_t cnt, const vmfd_snapshot *snap)
{
    size_t rows = 0, dim = list[0]->dim, k = list[0]->k;
    for (size_t i = 0; i < cnt; i++)
        rows += list[i]->n;
    float *x = cnt == 1 ? list[0]->x : malloc(rows * dim * sizeof *x);
    int32_t *cls = malloc(rows * k * sizeof *cls);
    double *proba = malloc(rows * k * sizeof *proba);
    double *nov = malloc(rows * sizeof *nov);
    const char *fail = NULL, *why = NULL;
    if (!x || !cls || !proba || !nov) {
        fail = "out_of_memory";
        why = "predict";
    } else {
        if (cnt > 1) {
            size_t off = 0;
            for (size_t i = 0; i < cnt; i++) {
                memcpy(x + off * dim, list[i]->x, list[i]->n * dim * sizeof *x);
                off += list[i]->n;
            }
        }
        if (vmfd_model_predict_topk(snap->model, x, rows, dim, k, cls, proba, nov) != VMF_OK) {
            fail = "predict_failed";
            why = vmf_last_error();
        }
    }
    size_t off = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (fail)
            pjob_fail(list[i], strcmp(fail, "out_of_memory") == 0 ? 507 : 500, fail, why);
        else
            predict_format(list[i], snap, cls + off * k, proba + off * k, nov + off);
        off += list[i]->n;
    }
    if (cnt > 1)
        free(x);
    free(cls);
    free(proba);
    free(nov);
}

/* Parses rows and predicts one request; fills status/out or error fields. Any thread. */
static void predict_work(pjob *j)
{
    if (predict_decode(j, j->snap) == 0)
        predict_stacked(&j, 1, j->snap);
    free(j->x);
    j->x = NULL;
}

static void model_work(pjob *j)
{
    char *json = NULL;
    if (vmfd_model_to_json(j->snap->model, &json) != VMF_OK) {
        j->status = 500;
        snprintf(j->error, sizeof j->error, "model_json_failed");
        snprintf(j->detail, sizeof j->detail, "%s", vmf_last_error());
        return;
    }
    j->status = 200;
    j->out = json;
    j->out_len = strlen(json);
}

static void pjob_work(uv_work_t *w)
{
    pjob *j = (pjob *)w;
    if (j->kind == 0)
        predict_work(j);
    else
        model_work(j);
}

/* Answers j and frees it; releases j->snap when own_snap. Loop thread. */
static void pjob_answer(pjob *j, int own_snap)
{
    vmfd_daemon *d = j->d;
    if (own_snap)
        vmfd_snapshot_release(j->snap);
    if (j->status == 200) {
        if (j->kind == 0) {
            d->metrics.predict_rows += j->rows;
            vmfd_hist_observe(&d->metrics.predict_seconds,
                              (double)(uv_hrtime() - j->req->start_ns) * 1e-9);
        }
        answer(d, j->req, 200, "application/json", NULL, j->out, j->out_len);
    } else {
        answer_error(d, j->req, j->status, NULL, j->error, "%s", j->detail);
    }
    free(j);
}

static void pjob_finish(pjob *j)
{
    pjob_answer(j, 1);
}

static void pjob_after(uv_work_t *w, int status)
{
    (void)status;
    if (((pjob *)w)->kind == 0)
        ((pjob *)w)->d->metrics.predict_jobs++;
    pjob_finish((pjob *)w);
}

/* ---- coalesced predictions ---- */

static int cmp_k(const void *a, const void *b)
{
    const pjob *x = *(pjob *const *)a, *y = *(pjob *const *)b;
    return x->k < y->k ? -1 : x->k > y->k;
}

static void pbatch_work(uv_work_t *w)
{
    pbatch *b = (pbatch *)w;
    pjob **ok = malloc(b->n_req * sizeof *ok);
    size_t n_ok = 0;
    for (pjob *j = b->head; j; j = j->next) {
        if (!ok)
            pjob_fail(j, 507, "out_of_memory", "predict");
        else if (predict_decode(j, b->snap) == 0)
            ok[n_ok++] = j;
    }
    /* One stacked call per distinct top_k (usually one). */
    if (n_ok > 1)
        qsort(ok, n_ok, sizeof *ok, cmp_k);
    for (size_t i = 0; i < n_ok;) {
        size_t e = i + 1;
        while (e < n_ok && ok[e]->k == ok[i]->k && ok[e]->dim == ok[i]->dim)
            e++;
        predict_stacked(ok + i, e - i, b->snap);
        i = e;
    }
    for (pjob *j = b->head; j; j = j->next) {
        free(j->x);
        j->x = NULL;
    }
    free(ok);
}

static void pq_start(vmfd_daemon *d);

static void pbatch_after(uv_work_t *w, int status)
{
    (void)status;
    pbatch *b = (pbatch *)w;
    vmfd_daemon *d = b->d;
    d->metrics.predict_jobs++;
    d->pq.busy = 0;
    pjob *j = b->head;
    while (j) {
        pjob *next = j->next;
        pjob_answer(j, 0);
        j = next;
    }
    vmfd_snapshot_release(b->snap);
    free(b);
    pq_start(d);
}

/* Answers every request of the list with the same error. */
static void pq_fail_all(vmfd_daemon *d, pjob *j, int status, const char *extra, const char *error,
                        const char *detail)
{
    while (j) {
        pjob *next = j->next;
        answer_error(d, j->req, status, extra, error, "%s", detail);
        free(j);
        j = next;
    }
}

/* Starts a coalesced job with what waits in the queue (none running). */
static void pq_start(vmfd_daemon *d)
{
    vmfd_predict_queue *q = &d->pq;
    if (q->busy || !q->head)
        return;
    pjob *head = q->head, *tail = head;
    size_t cnt = 1;
    while (tail->next && cnt < COALESCE_MAX_REQUESTS) {
        tail = tail->next;
        cnt++;
    }
    q->head = tail->next;
    if (!q->head)
        q->tail = NULL;
    q->n -= cnt;
    tail->next = NULL;
    vmfd_snapshot *s = d->ready ? vmfd_snapshot_acquire(d) : NULL;
    if (!s) {
        pq_fail_all(d, head, 503, "Retry-After: 1\r\n", "not_ready",
                    "the model is still being recovered");
        pq_start(d);
        return;
    }
    pbatch *b = calloc(1, sizeof *b);
    if (!b) {
        vmfd_snapshot_release(s);
        pq_fail_all(d, head, 507, NULL, "out_of_memory", "predict");
        pq_start(d);
        return;
    }
    b->d = d;
    b->snap = s;
    b->head = head;
    b->n_req = cnt;
    if (uv_queue_work(d->loop, &b->w, pbatch_work, pbatch_after) != 0) {
        vmfd_snapshot_release(s);
        free(b);
        pq_fail_all(d, head, 500, NULL, "internal", "cannot queue work");
        return;
    }
    q->busy = 1;
}

static void pq_push(vmfd_daemon *d, pjob *j)
{
    vmfd_predict_queue *q = &d->pq;
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n++;
    pq_start(d);
}

static void run_pjob(vmfd_daemon *d, vmfd_http_req *req, int kind, long top_k)
{
    vmfd_snapshot *s = d->ready ? vmfd_snapshot_acquire(d) : NULL;
    if (!s) {
        answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                     "the model is still being recovered");
        return;
    }
    if (kind == 0 && vmfd_model_n_labels(s->model) == 0) {
        vmfd_snapshot_release(s);
        answer_error(d, req, 409, NULL, "no_model", "no batch has been applied yet");
        return;
    }
    pjob *j = calloc(1, sizeof *j);
    if (!j) {
        vmfd_snapshot_release(s);
        answer_error(d, req, 507, NULL, "out_of_memory", "predict");
        return;
    }
    j->d = d;
    j->req = req;
    j->snap = s;
    j->kind = kind;
    j->top_k = top_k;
    uint64_t row_macs = (uint64_t)s->components * vmfd_model_dim(s->model);
    if (kind == 0 && req->body_len <= INLINE_PREDICT_BYTES &&
        row_macs * (req->body_len / 256 + 1) <= INLINE_PREDICT_MACS) {
        pjob_work(&j->w);
        pjob_finish(j);
        return;
    }
    if (kind == 0 && req->body_len <= COALESCE_MAX_BYTES) {
        /* The coalesced job takes the snapshot current when it starts. */
        vmfd_snapshot_release(s);
        j->snap = NULL;
        pq_push(d, j);
        return;
    }
    if (uv_queue_work(d->loop, &j->w, pjob_work, pjob_after) != 0) {
        vmfd_snapshot_release(s);
        free(j);
        answer_error(d, req, 500, NULL, "internal", "cannot queue work");
    }
}

static int query_top_k(const char *query, long *top_k, char *err, size_t errsize)
{
    const char *p = query;
    while (p && *p) {
        if (strncmp(p, "top_k=", 6) == 0) {
            char *end;
            long v = strtol(p + 6, &end, 10);
            if (end == p + 6 || (*end && *end != '&') || v < 1 || v > 1000000) {
                snprintf(err, errsize, "top_k must be a positive integer");
                return -1;
            }
            *top_k = v;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

/* ---- status, checkpoints ---- */

static void get_status(vmfd_daemon *d, vmfd_http_req *req)
{
    vmfd_store_counts c;
    char err[256];
    if (vmfd_store_counts_get(d->rdb, &c, err, sizeof err) != 0) {
        answer_error(d, req, 500, NULL, "store_failed", "%s", err);
        return;
    }
    vmfd_snapshot *s = d->snap;
    json_t *o = json_pack(
        "{s:s, s:b, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s,"
        " s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I}}",
        "version", vmf_version(), "ready", d->ready, "stopping", d->stopping, "mode",
        d->cfg.mode == VMFD_MODE_CLASSIFIER ? "classifier" : "clustering", "dim",
        (json_int_t)(s ? vmfd_model_dim(s->model) : 0), "n_classes",
        (json_int_t)(s ? vmfd_model_n_labels(s->model) : 0), "components",
        (json_int_t)(s ? s->components : 0), "rows_seen",
        (json_int_t)(s ? vmfd_model_rows_seen(s->model) : 0), "batches_applied",
        (json_int_t)(s ? s->batches : 0), "last_seq", (json_int_t)(s ? s->last_seq : 0),
        "model_version", (json_int_t)(s ? s->version : 0), "queue_depth",
        (json_int_t)d->queue_depth, "uptime_s", (double)(uv_hrtime() - d->start_ns) * 1e-9,
        "state_dir", d->cfg.state_dir, "batches", "queued", (json_int_t)c.queued, "applied",
        (json_int_t)c.applied, "rejected", (json_int_t)c.rejected, "superseded",
        (json_int_t)c.superseded, "checkpoints", "count", (json_int_t)c.checkpoints, "latest",
        (json_int_t)c.latest_checkpoint);
    answer_json(d, req, 200, o);
}

static void get_checkpoints(vmfd_daemon *d, vmfd_http_req *req)
{
    char *json = NULL, err[256];
    if (vmfd_store_checkpoints_json(d->rdb, &json, err, sizeof err) != 0)
        answer_error(d, req, 500, NULL, "store_failed", "%s", err);
    else
        answer(d, req, 200, "application/json", NULL, json, strlen(json));
}

static void checkpoint_done(vmfd_daemon *d, void *ud, const vmfd_worker_reply *r)
{
    vmfd_http_req *req = ud;
    if (r->status == 200)
        answer_json(d, req, 201, json_pack("{s:I}", "checkpoint_id", (json_int_t)r->checkpoint_id));
    else
        answer_error(d, req, r->status, NULL, r->error, "%s", r->detail);
}

typedef struct restore_ctx {
    vmfd_http_req *req;
    int64_t id;
} restore_ctx;

static void restore_done(vmfd_daemon *d, void *ud, const vmfd_worker_reply *r)
{
    restore_ctx *rc = ud;
    if (r->status == 200)
        answer_json(d, rc->req, 200,
                    json_pack("{s:I, s:I, s:s}", "restored", (json_int_t)rc->id, "checkpoint_id",
                              (json_int_t)r->checkpoint_id, "later_batches", "superseded"));
    else
        answer_error(d, rc->req, r->status, NULL, r->error, "%s", r->detail);
    free(rc);
}

static void post_restore(vmfd_daemon *d, vmfd_http_req *req, const char *idtext)
{
    char *end;
    long long id = strtoll(idtext, &end, 10);
    if (end == idtext || strcmp(end, "/restore") != 0 || id <= 0) {
        answer_error(d, req, 404, NULL, "not_found", "use POST /v1/checkpoints/{id}/restore");
        return;
    }
    if (!d->ready || d->stopping) {
        answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready", "vmfd is not serving");
        return;
    }
    restore_ctx *rc = malloc(sizeof *rc);
    if (!rc) {
        answer_error(d, req, 507, NULL, "out_of_memory", "restore");
        return;
    }
    rc->req = req;
    rc->id = id;
    vmfd_worker_restore(d, id, restore_done, rc);
}

static int json_too_large(const vmfd_daemon *d, const vmfd_http_req *req)
{
    char mt[64];
    vmfd_payload_media_type(req->content_type, mt, sizeof mt);
    return strcmp(mt, "application/json") == 0 && req->body_len > d->cfg.max_json_body_bytes;
}

/*
 * GET /v1/checkpoints/{id}/model: a stored checkpoint as model JSON. The
 * live model and the batches are untouched; the work (decoding the blob,
 * formatting JSON) runs on the threadpool with its own read-only connection,
 * since the loop's connection belongs to the loop thread.
 */
typedef struct xjob {
    uv_work_t w;
    vmfd_daemon *d;
    vmfd_http_req *req;
    vmfd_model_opts opts;
    int64_t id;
    char *json;
    int rc;
    char err[256];
} xjob;

static void xjob_work(uv_work_t *w)
{
    xjob *j = (xjob *)w;
    sqlite3 *db = NULL;
    int64_t got;
    if (vmfd_store_open(j->d->db_path, 0, 1, &db, j->err, sizeof j->err) != 0)
        j->rc = -1;
    else
        j->rc = vmfd_store_export_checkpoint(db, &j->opts, j->id, &got, &j->json, j->err,
                                             sizeof j->err);
    vmfd_store_close(db);
}

static void xjob_after(uv_work_t *w, int status)
{
    xjob *j = (xjob *)w;
    (void)status;
    if (j->rc == 0) /* answer() takes the body over */
        answer(j->d, j->req, 200, "application/json", NULL, j->json, strlen(j->json));
    else if (j->rc == 1)
        answer_error(j->d, j->req, 404, NULL, "not_found", "%s", j->err);
    else
        answer_error(j->d, j->req, 500, NULL, "export_failed", "%s", j->err);
    free(j);
}

static void get_checkpoint_model(vmfd_daemon *d, vmfd_http_req *req, const char *idtext)
{
    char *end;
    long long id = strtoll(idtext, &end, 10);
    if (end == idtext || strcmp(end, "/model") != 0 || id <= 0) {
        answer_error(d, req, 404, NULL, "not_found", "use GET /v1/checkpoints/{id}/model");
        return;
    }
    xjob *j = calloc(1, sizeof *j);
    if (!j) {
        answer_error(d, req, 507, NULL, "out_of_memory", "export");
        return;
    }
    j->d = d;
    j->req = req;
    j->id = id;
    vmfd_model_opts_from_config(&j->opts, &d->cfg);
    if (uv_queue_work(d->loop, &j->w, xjob_work, xjob_after) != 0) {
        free(j);
        answer_error(d, req, 500, NULL, "internal", "cannot queue work");
    }
}

static void method_not_allowed(vmfd_daemon *d, vmfd_http_req *req, const char *allow)
{
    char hdr[64];
    /* HEAD is allowed wherever GET is (RFC 9110 9.3.2). */
    snprintf(hdr, sizeof hdr, "Allow: %s%s\r\n", allow, strstr(allow, "GET") ? ", HEAD" : "");
    answer_error(d, req, 405, hdr, "method_not_allowed", "%s %s is not supported; use %s",
                 llhttp_method_name((llhttp_method_t)req->method), req->path, allow);
}

void vmfd_api_handle(void *ud, vmfd_http_req *req)
{
    vmfd_daemon *d = ud;
    const char *p = req->path;
    /* HEAD runs the GET handler; vmfd_http_respond leaves the body out. */
    int m = req->method == HTTP_HEAD ? HTTP_GET : req->method;
    if (strcmp(p, "/healthz") == 0) {
        if (m != HTTP_GET)
            method_not_allowed(d, req, "GET");
        else
            answer_json(d, req, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    if (strcmp(p, "/readyz") == 0) {
        if (m != HTTP_GET)
            method_not_allowed(d, req, "GET");
        else if (d->ready && !d->stopping && d->read_only)
            /* Predictions are served; say why ingest is off. */
            answer_json(
                d, req, 200,
                json_pack("{s:b, s:b, s:s}", "ready", 1, "ingest", 0, "reason", d->ro_reason));
        else if (d->ready && !d->stopping)
            answer_json(d, req, 200, json_pack("{s:b}", "ready", 1));
        else
            answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                         d->stopping ? "stopping" : "recovering");
        return;
    }
    if (d->stopping) {
        /* Draining: requests read before SIGTERM are being finished; new
         * ones are refused (the connection closes after this answer). */
        answer_error(d, req, 503, "Retry-After: 5\r\n", "shutting_down",
                     "vmfd is stopping; retry after its restart");
        return;
    }
    if (d->token_len) {
        if (!req->authorization[0]) {
            answer_error(d, req, 401, "WWW-Authenticate: Bearer\r\n", "unauthorized",
                         "send Authorization: Bearer <token>");
            return;
        }
        if (!token_ok(d, req->authorization)) {
            /* RFC 6750 3.1: a token that is not valid is 401, like a missing one. */
            answer_error(d, req, 401, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
                         "invalid_token", "the bearer token is not valid");
            return;
        }
    }
    if (d->read_only && (m == HTTP_PUT || (m == HTTP_POST && strcmp(p, "/v1/predict") != 0))) {
        /* Started on a full disk: nothing can be written. */
        if (m == HTTP_PUT)
            d->metrics.batches[VMFD_BATCH_NO_SPACE]++;
        answer_error(d, req, 507, "Retry-After: 60\r\n", "insufficient_storage", "%s",
                     d->ro_reason);
        return;
    }
    if (strcmp(p, "/metrics") == 0) {
        if (m != HTTP_GET) {
            method_not_allowed(d, req, "GET");
            return;
        }
        vmfd_gauges g;
        memset(&g, 0, sizeof g);
        g.uptime_seconds = (double)(uv_hrtime() - d->start_ns) * 1e-9;
        g.queue_depth = d->queue_depth;
        g.connections = vmfd_http_connections(d->http);
        g.ready = d->ready;
        if (d->snap) {
            g.model_bytes = d->snap->model_bytes;
            g.model_classes = vmfd_model_n_labels(d->snap->model);
            g.model_components = d->snap->components;
            g.model_rows = vmfd_model_rows_seen(d->snap->model);
        }
        vmfd_store_counts sc;
        char err[256];
        if (vmfd_store_counts_get(d->rdb, &sc, err, sizeof err) != 0) {
            answer_error(d, req, 500, NULL, "store_failed", "%s", err);
            return;
        }
        g.stored_queued = (uint64_t)sc.queued;
        g.stored_applied = (uint64_t)sc.applied;
        g.stored_rejected = (uint64_t)sc.rejected;
        g.stored_superseded = (uint64_t)sc.superseded;
        size_t len = 0;
        char *text = vmfd_metrics_render(&d->metrics, &g, &len);
        if (!text)
            answer_error(d, req, 507, NULL, "out_of_memory", "metrics");
        else
            answer(d, req, 200, "text/plain; version=0.0.4", NULL, text, len);
        return;
    }
    if (strncmp(p, "/v1/batches/", 12) == 0) {
        const char *key = p + 12;
        if (m == HTTP_PUT)
            put_batch(d, req, key);
        else if (m == HTTP_GET)
            get_batch(d, req, key);
        else
            method_not_allowed(d, req, "GET, PUT");
        return;
    }
    if (strcmp(p, "/v1/predict") == 0) {
        long top_k = DEFAULT_TOP_K;
        char err[128];
        if (m != HTTP_POST)
            method_not_allowed(d, req, "POST");
        else if (query_top_k(req->query, &top_k, err, sizeof err) != 0)
            answer_error(d, req, 400, NULL, "bad_top_k", "%s", err);
        else if (json_too_large(d, req))
            /* Parsing JSON costs ~32x the body: refused before parsing. */
            answer_error(d, req, 413, NULL, "json_too_large",
                         "%zu bytes of JSON; max_json_body_bytes is %llu (send .npy)",
                         req->body_len, (unsigned long long)d->cfg.max_json_body_bytes);
        else
            run_pjob(d, req, 0, top_k);
        return;
    }
    if (strcmp(p, "/v1/status") == 0) {
        if (m != HTTP_GET)
            method_not_allowed(d, req, "GET");
        else
            get_status(d, req);
        return;
    }
    if (strcmp(p, "/v1/model") == 0) {
        if (m != HTTP_GET)
            method_not_allowed(d, req, "GET");
        else
            run_pjob(d, req, 1, 0);
        return;
    }
    if (strcmp(p, "/v1/checkpoints") == 0) {
        if (m == HTTP_GET)
            get_checkpoints(d, req);
        else if (m == HTTP_POST) {
            if (!d->ready || d->stopping)
                answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready", "vmfd is not serving");
            else
                vmfd_worker_checkpoint(d, "manual", checkpoint_done, req);
        } else
            method_not_allowed(d, req, "GET, POST");
        return;
    }
    if (strncmp(p, "/v1/checkpoints/", 16) == 0) {
        size_t plen = strlen(p);
        if (plen > 6 && strcmp(p + plen - 6, "/model") == 0) {
            if (m != HTTP_GET)
                method_not_allowed(d, req, "GET");
            else
                get_checkpoint_model(d, req, p + 16);
        } else if (m != HTTP_POST)
            method_not_allowed(d, req, "POST");
        else
            post_restore(d, req, p + 16);
        return;
    }
    answer_error(d, req, 404, NULL, "not_found", "no endpoint %s", p);
}
