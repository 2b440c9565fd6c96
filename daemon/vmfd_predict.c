/*
 * vmfd_predict.c - the prediction engine of the HTTP API: POST /v1/predict
 * and GET /v1/model jobs, run inline when cheap or on the threadpool, the
 * coalescing of small predict requests into one stacked job, and the JSON
 * answers. The router (vmfd_api.c) checks the request and calls
 * vmfd_predict_run; everything here reads an immutable snapshot.
 */
#include "vmfd_predict.h"

#include "vmfd_daemon.h"
#include "vmfd_model.h"
#include "vmfmm/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A predict request is answered on the loop thread when it is cheap: a small
 * body and little model work (rows x components x dim multiply-adds, the
 * size of the E-step GEMM). Anything more goes to the threadpool, so the
 * loop keeps parsing and the cores share the GEMMs.
 */
#define INLINE_PREDICT_BYTES 16384
#define INLINE_PREDICT_MACS  (1u << 17)

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
    /* SIGHUP-reloadable settings, copied on the loop thread when the job is
       made: the worker never reads d->cfg, which the loop may change. */
    uint64_t max_rows;
    double novelty_threshold;
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
    if (j->n > j->max_rows) {
        snprintf(detail, sizeof detail, "%zu rows; predict_max_rows is %llu", j->n,
                 (unsigned long long)j->max_rows);
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
                     novelty[i] > j->novelty_threshold ? "true" : "false");
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
        vmfd_api_answer(d, j->req, 200, "application/json", NULL, j->out, j->out_len);
    } else {
        vmfd_api_answer_error(d, j->req, j->status, NULL, j->error, "%s", j->detail);
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
        vmfd_api_answer_error(d, j->req, status, extra, error, "%s", detail);
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

void vmfd_predict_run(vmfd_daemon *d, vmfd_http_req *req, int kind, long top_k)
{
    vmfd_snapshot *s = d->ready ? vmfd_snapshot_acquire(d) : NULL;
    if (!s) {
        vmfd_api_answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                              "the model is still being recovered");
        return;
    }
    if (kind == 0 && vmfd_model_n_labels(s->model) == 0) {
        vmfd_snapshot_release(s);
        vmfd_api_answer_error(d, req, 409, NULL, "no_model", "no batch has been applied yet");
        return;
    }
    pjob *j = calloc(1, sizeof *j);
    if (!j) {
        vmfd_snapshot_release(s);
        vmfd_api_answer_error(d, req, 507, NULL, "out_of_memory", "predict");
        return;
    }
    j->d = d;
    j->req = req;
    j->snap = s;
    j->kind = kind;
    j->top_k = top_k;
    j->max_rows = d->cfg.predict_max_rows;
    j->novelty_threshold = d->cfg.novelty_threshold;
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
        vmfd_api_answer_error(d, req, 500, NULL, "internal", "cannot queue work");
    }
}
