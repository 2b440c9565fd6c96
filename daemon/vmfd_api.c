/*
 * vmfd_api.c - the HTTP API of vmfd: routing, authentication and the
 * endpoint handlers (the contract is in docs/vmfd.md). Predictions and the
 * model JSON are computed by vmfd_predict.c.
 *
 * Every error answer is JSON {"error": "<code>", "detail": "<text>"}. Work
 * that can take more than about a millisecond (decoding large bodies,
 * predicting many rows, the model JSON) runs on the threadpool against a
 * referenced snapshot; everything else answers on the loop thread.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_model.h"
#include "vmfd_predict.h"
#include "vmfd_store.h"
#include "vmfd_store_views.h"
#include "vmfmm/common.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TOP_K 4

char *vmfd_api_error_json(const char *error, const char *detail, size_t *len)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "detail", detail ? detail : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    *len = s ? strlen(s) : 0;
    return s;
}

void vmfd_api_answer(vmfd_daemon *d, vmfd_http_req *req, int status, const char *ctype,
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
        vmfd_api_answer(d, req, 500, "application/json", NULL, NULL, 0);
        return;
    }
    vmfd_api_answer(d, req, status, "application/json", NULL, s, strlen(s));
}

void vmfd_api_answer_error(vmfd_daemon *d, vmfd_http_req *req, int status, const char *extra,
                           const char *error, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    size_t len;
    char *body = vmfd_api_error_json(error, detail, &len);
    vmfd_api_answer(d, req, status, "application/json", extra, body, len);
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
    vmfd_api_answer_error(d, req, r->status,
                          r->status == 503 || r->status == 507 ? "Retry-After: 30\r\n" : NULL,
                          r->error, "%s", r->detail);
}

static void put_batch(vmfd_daemon *d, vmfd_http_req *req, const char *key)
{
    if (!valid_key(key)) {
        vmfd_api_answer_error(
            d, req, 400, NULL, "bad_key",
            "keys are 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.'");
        return;
    }
    if (d->stopping) {
        vmfd_api_answer_error(d, req, 503, "Retry-After: 5\r\n", "shutting_down",
                              "vmfd is stopping; retry after its restart");
        return;
    }
    if (d->queue_depth >= d->cfg.queue_length) {
        d->metrics.batches[VMFD_BATCH_BUSY]++;
        vmfd_api_answer_error(d, req, 503, "Retry-After: 5\r\n", "queue_full",
                              "%llu batches are waiting (queue_length)",
                              (unsigned long long)d->queue_depth);
        return;
    }
    if (req->body_len == 0) {
        vmfd_api_answer_error(d, req, 400, NULL, "empty_body", "the request has no body");
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
        vmfd_api_answer_error(d, req, 404, NULL, "not_found", "no such batch");
        return;
    }
    int64_t visible = d->snap ? d->snap->last_seq : 0;
    int rc = vmfd_store_batch_json(d->rdb, key, visible, &json, err, sizeof err);
    if (rc == 1)
        vmfd_api_answer_error(d, req, 404, NULL, "not_found", "no batch with key '%s'", key);
    else if (rc != 0)
        vmfd_api_answer_error(d, req, 500, NULL, "store_failed", "%s", err);
    else
        vmfd_api_answer(d, req, 200, "application/json", NULL, json, strlen(json));
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

static void get_status(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    vmfd_store_counts c;
    char err[256];
    if (vmfd_store_counts_get(d->rdb, &c, err, sizeof err) != 0) {
        vmfd_api_answer_error(d, req, 500, NULL, "store_failed", "%s", err);
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

static void get_checkpoints(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    char *json = NULL, err[256];
    if (vmfd_store_checkpoints_json(d->rdb, &json, err, sizeof err) != 0)
        vmfd_api_answer_error(d, req, 500, NULL, "store_failed", "%s", err);
    else
        vmfd_api_answer(d, req, 200, "application/json", NULL, json, strlen(json));
}

static void checkpoint_done(vmfd_daemon *d, void *ud, const vmfd_worker_reply *r)
{
    vmfd_http_req *req = ud;
    if (r->status == 200)
        answer_json(d, req, 201, json_pack("{s:I}", "checkpoint_id", (json_int_t)r->checkpoint_id));
    else
        vmfd_api_answer_error(d, req, r->status, NULL, r->error, "%s", r->detail);
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
        vmfd_api_answer_error(d, rc->req, r->status, NULL, r->error, "%s", r->detail);
    free(rc);
}

static void post_restore(vmfd_daemon *d, vmfd_http_req *req, const char *idtext)
{
    char *end;
    long long id = strtoll(idtext, &end, 10);
    if (end == idtext || strcmp(end, "/restore") != 0 || id <= 0) {
        vmfd_api_answer_error(d, req, 404, NULL, "not_found",
                              "use POST /v1/checkpoints/{id}/restore");
        return;
    }
    if (!d->ready || d->stopping) {
        vmfd_api_answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                              "vmfd is not serving");
        return;
    }
    restore_ctx *rc = malloc(sizeof *rc);
    if (!rc) {
        vmfd_api_answer_error(d, req, 507, NULL, "out_of_memory", "restore");
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
    if (j->rc == 0) /* vmfd_api_answer() takes the body over */
        vmfd_api_answer(j->d, j->req, 200, "application/json", NULL, j->json, strlen(j->json));
    else if (j->rc == 1)
        vmfd_api_answer_error(j->d, j->req, 404, NULL, "not_found", "%s", j->err);
    else
        vmfd_api_answer_error(j->d, j->req, 500, NULL, "export_failed", "%s", j->err);
    free(j);
}

static void get_checkpoint_model(vmfd_daemon *d, vmfd_http_req *req, const char *idtext)
{
    char *end;
    long long id = strtoll(idtext, &end, 10);
    if (end == idtext || strcmp(end, "/model") != 0 || id <= 0) {
        vmfd_api_answer_error(d, req, 404, NULL, "not_found", "use GET /v1/checkpoints/{id}/model");
        return;
    }
    xjob *j = calloc(1, sizeof *j);
    if (!j) {
        vmfd_api_answer_error(d, req, 507, NULL, "out_of_memory", "export");
        return;
    }
    j->d = d;
    j->req = req;
    j->id = id;
    vmfd_model_opts_from_config(&j->opts, &d->cfg);
    if (uv_queue_work(d->loop, &j->w, xjob_work, xjob_after) != 0) {
        free(j);
        vmfd_api_answer_error(d, req, 500, NULL, "internal", "cannot queue work");
    }
}

/* ---- routes whose handlers were inline in the router ---- */

static void get_healthz(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    answer_json(d, req, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_readyz(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    if (d->ready && !d->stopping && d->read_only)
        /* Predictions are served; say why ingest is off. */
        answer_json(d, req, 200,
                    json_pack("{s:b, s:b, s:s}", "ready", 1, "ingest", 0, "reason", d->ro_reason));
    else if (d->ready && !d->stopping)
        answer_json(d, req, 200, json_pack("{s:b}", "ready", 1));
    else
        vmfd_api_answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                              d->stopping ? "stopping" : "recovering");
}

static void get_metrics(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
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
        vmfd_api_answer_error(d, req, 500, NULL, "store_failed", "%s", err);
        return;
    }
    g.stored_queued = (uint64_t)sc.queued;
    g.stored_applied = (uint64_t)sc.applied;
    g.stored_rejected = (uint64_t)sc.rejected;
    g.stored_superseded = (uint64_t)sc.superseded;
    size_t len = 0;
    char *text = vmfd_metrics_render(&d->metrics, &g, &len);
    if (!text)
        vmfd_api_answer_error(d, req, 507, NULL, "out_of_memory", "metrics");
    else
        vmfd_api_answer(d, req, 200, "text/plain; version=0.0.4", NULL, text, len);
}

static void post_predict(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    long top_k = DEFAULT_TOP_K;
    char err[128];
    if (query_top_k(req->query, &top_k, err, sizeof err) != 0)
        vmfd_api_answer_error(d, req, 400, NULL, "bad_top_k", "%s", err);
    else if (json_too_large(d, req))
        /* Parsing JSON costs ~32x the body: refused before parsing. */
        vmfd_api_answer_error(d, req, 413, NULL, "json_too_large",
                              "%zu bytes of JSON; max_json_body_bytes is %llu (send .npy)",
                              req->body_len, (unsigned long long)d->cfg.max_json_body_bytes);
    else
        vmfd_predict_run(d, req, 0, top_k);
}

static void get_model(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    vmfd_predict_run(d, req, 1, 0);
}

static void post_checkpoint(vmfd_daemon *d, vmfd_http_req *req, const char *tail)
{
    (void)tail;
    if (!d->ready || d->stopping)
        vmfd_api_answer_error(d, req, 503, "Retry-After: 1\r\n", "not_ready",
                              "vmfd is not serving");
    else
        vmfd_worker_checkpoint(d, "manual", checkpoint_done, req);
}

/* ---- the route table ---- */

typedef void (*route_fn)(vmfd_daemon *d, vmfd_http_req *req, const char *tail);

/*
 * One row per endpoint; docs/vmfd.md describes each. A path pattern is
 * either exact or has one '*': the path must then start with the text
 * before it and end with the text after it, and the handler receives the
 * path from the '*' on as tail. The first row whose pattern matches picks
 * the endpoint; the rows with that same pattern give the allowed methods
 * (405 otherwise, Allow listing them in table order). HEAD runs the GET
 * row. Open rows answer before authentication and while stopping.
 */
typedef struct route {
    vmfd_http_method method;
    const char *pattern;
    route_fn fn;
    int open;
} route;

/* clang-format off */
static const route routes[] = {
    {VMFD_METHOD_GET,  "/healthz",                 get_healthz,          1},
    {VMFD_METHOD_GET,  "/readyz",                  get_readyz,           1},
    {VMFD_METHOD_GET,  "/metrics",                 get_metrics,          0},
    {VMFD_METHOD_GET,  "/v1/batches/*",            get_batch,            0},
    {VMFD_METHOD_PUT,  "/v1/batches/*",            put_batch,            0},
    {VMFD_METHOD_POST, "/v1/predict",              post_predict,         0},
    {VMFD_METHOD_GET,  "/v1/status",               get_status,           0},
    {VMFD_METHOD_GET,  "/v1/model",                get_model,            0},
    {VMFD_METHOD_GET,  "/v1/checkpoints",          get_checkpoints,      0},
    {VMFD_METHOD_POST, "/v1/checkpoints",          post_checkpoint,      0},
    {VMFD_METHOD_GET,  "/v1/checkpoints/*/model",  get_checkpoint_model, 0},
    {VMFD_METHOD_POST, "/v1/checkpoints/*",        post_restore,         0},
};
/* clang-format on */
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* Whether path matches pattern; *tail receives the part matched by '*'. */
static int pattern_match(const char *pattern, const char *path, const char **tail)
{
    const char *star = strchr(pattern, '*');
    if (!star) {
        *tail = "";
        return strcmp(pattern, path) == 0;
    }
    size_t pre = (size_t)(star - pattern), suf = strlen(star + 1), plen = strlen(path);
    if (strncmp(path, pattern, pre) != 0 || plen < suf || strcmp(path + plen - suf, star + 1) != 0)
        return 0;
    *tail = path + pre;
    return 1;
}

static const char *method_text(vmfd_http_method m)
{
    switch (m) {
    case VMFD_METHOD_GET:
        return "GET";
    case VMFD_METHOD_HEAD:
        return "HEAD";
    case VMFD_METHOD_POST:
        return "POST";
    case VMFD_METHOD_PUT:
        return "PUT";
    default:
        return "?";
    }
}

static void method_not_allowed(vmfd_daemon *d, vmfd_http_req *req, const char *allow)
{
    char hdr[64];
    /* HEAD is allowed wherever GET is (RFC 9110 9.3.2). */
    snprintf(hdr, sizeof hdr, "Allow: %s%s\r\n", allow, strstr(allow, "GET") ? ", HEAD" : "");
    vmfd_api_answer_error(d, req, 405, hdr, "method_not_allowed", "%s %s is not supported; use %s",
                          req->method_name, req->path, allow);
}

/* Runs the row of group (the first matching row) for method m, or answers 405. */
static void dispatch(vmfd_daemon *d, vmfd_http_req *req, const route *group, vmfd_http_method m,
                     const char *tail)
{
    char allow[64] = "";
    for (const route *r = group; r < routes + N_ROUTES; r++) {
        if (strcmp(r->pattern, group->pattern) != 0)
            continue;
        if (r->method == m) {
            r->fn(d, req, tail);
            return;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "",
                 method_text(r->method));
    }
    method_not_allowed(d, req, allow);
}

void vmfd_api_handle(void *ud, vmfd_http_req *req)
{
    vmfd_daemon *d = ud;
    const char *p = req->path;
    /* HEAD runs the GET handler; vmfd_http_respond leaves the body out. */
    vmfd_http_method m = req->method == VMFD_METHOD_HEAD ? VMFD_METHOD_GET : req->method;
    const route *group = NULL;
    const char *tail = "";
    for (size_t i = 0; i < N_ROUTES && !group; i++)
        if (pattern_match(routes[i].pattern, p, &tail))
            group = &routes[i];
    if (group && group->open) {
        dispatch(d, req, group, m, tail);
        return;
    }
    if (d->stopping) {
        /* Draining: requests read before SIGTERM are being finished; new
         * ones are refused (the connection closes after this answer). */
        vmfd_api_answer_error(d, req, 503, "Retry-After: 5\r\n", "shutting_down",
                              "vmfd is stopping; retry after its restart");
        return;
    }
    if (d->token_len) {
        if (!req->authorization[0]) {
            vmfd_api_answer_error(d, req, 401, "WWW-Authenticate: Bearer\r\n", "unauthorized",
                                  "send Authorization: Bearer <token>");
            return;
        }
        if (!token_ok(d, req->authorization)) {
            /* RFC 6750 3.1: a token that is not valid is 401, like a missing one. */
            vmfd_api_answer_error(d, req, 401,
                                  "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
                                  "invalid_token", "the bearer token is not valid");
            return;
        }
    }
    if (d->read_only &&
        (m == VMFD_METHOD_PUT || (m == VMFD_METHOD_POST && strcmp(p, "/v1/predict") != 0))) {
        /* Started on a full disk: nothing can be written. */
        if (m == VMFD_METHOD_PUT)
            d->metrics.batches[VMFD_BATCH_NO_SPACE]++;
        vmfd_api_answer_error(d, req, 507, "Retry-After: 60\r\n", "insufficient_storage", "%s",
                              d->ro_reason);
        return;
    }
    if (!group) {
        vmfd_api_answer_error(d, req, 404, NULL, "not_found", "no endpoint %s", p);
        return;
    }
    dispatch(d, req, group, m, tail);
}
