/*
 * vmfd_ingest.c - the ingest chain: decode a body (or an inbox file),
 * validate it against the model's dimension and label kind, store it durably
 * and report the outcome on the loop thread.
 *
 * Design notes. Decoding, normalizing and hashing a large body takes
 * milliseconds to seconds, and the commit waits for fsync, so all of it runs
 * on the threadpool. Ingests run one at a time: the expected dimension and
 * label kind (fixed by the first accepted batch) are then plain fields of
 * this chain's state, and arrival numbers are handed to the model worker in
 * the order they were acknowledged.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct vmfd_ingest_state {
    sqlite3 *db;
    size_t dim;
    int label_kind;
    int need_labels;
};

typedef struct itask {
    vmfd_task t; /* first */
    vmfd_daemon *d;
    char key[256];
    char source[8];
    char content_type[128];
    char *body;
    size_t len;
    char *path;
    uint64_t max_bytes; /* max_body_bytes when submitted (SIGHUP may change it) */
    vmfd_ingest_cb cb;
    void *ud;
    vmfd_ingest_reply reply;
    double secs;
} itask;

static void reply_err(vmfd_ingest_reply *r, int status, const char *error, const char *fmt, ...)
{
    va_list ap;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", error);
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

static int read_file(itask *t, uint64_t max_bytes)
{
    FILE *f = fopen(t->path, "rb");
    struct stat st;
    if (!f) {
        reply_err(&t->reply, 400, "unreadable", "cannot open the file: %s", strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        reply_err(&t->reply, 400, "unreadable", "not a regular file");
        return -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        reply_err(&t->reply, 413, "body_too_large", "the file exceeds max_body_bytes");
        return -1;
    }
    t->len = (size_t)st.st_size;
    t->body = malloc(t->len ? t->len : 1);
    if (!t->body || fread(t->body, 1, t->len, f) != t->len) {
        fclose(f);
        reply_err(&t->reply, 400, "unreadable", "short read");
        return -1;
    }
    fclose(f);
    return 0;
}

static void run_ingest(vmfd_task *task)
{
    itask *t = (itask *)task;
    vmfd_ingest_state *is = t->d->ing;
    double t0 = vmfd_now_seconds();
    vmfd_batch b;
    vmfd_payload_error pe;
    memset(&b, 0, sizeof b);
    if (!t->body && t->path && read_file(t, t->max_bytes) != 0)
        goto out;
    if (vmfd_payload_parse_ingest(t->content_type, t->body, t->len, &b, &pe) != 0) {
        reply_err(&t->reply, pe.status, pe.error, "%s", pe.detail);
        goto out;
    }
    if (is->need_labels && b.label_kind == VMFD_LABELS_NONE) {
        reply_err(&t->reply, 422, "missing_labels",
                  "classifier mode needs labels (npz member y or JSON \"labels\")");
        goto out;
    }
    if (is->dim && b.d != is->dim) {
        reply_err(&t->reply, 422, "bad_dimension", "rows have %zu values, the model has %zu", b.d,
                  is->dim);
        goto out;
    }
    if (is->label_kind && b.label_kind && b.label_kind != is->label_kind) {
        reply_err(&t->reply, 422, "label_kind", "labels are %s but the model's are %s",
                  b.label_kind == VMFD_LABELS_INT ? "integers" : "strings",
                  is->label_kind == VMFD_LABELS_INT ? "integers" : "strings");
        goto out;
    }
    vmfd_ingest_result r;
    char err[256];
    if (vmfd_store_ingest(is->db, t->key, &b, t->source, &r, err, sizeof err) != 0) {
        reply_err(&t->reply, 500, "store_failed", "%s", err);
        goto out;
    }
    t->reply.seq = r.seq;
    t->reply.rows = r.rows;
    memcpy(t->reply.same_content_as, r.same_content_as, sizeof r.same_content_as);
    snprintf(t->reply.batch_status, sizeof t->reply.batch_status, "%s", r.status);
    if (r.conflict) {
        reply_err(&t->reply, 409, "conflict",
                  "key '%s' was stored with other content (sha256 differs)", t->key);
    } else if (r.existed) {
        t->reply.status = 200;
    } else {
        t->reply.status = 202;
        if (!is->dim)
            is->dim = b.d;
        if (!is->label_kind)
            is->label_kind = b.label_kind;
    }
out:
    vmfd_batch_free(&b);
    free(t->body);
    t->body = NULL;
    t->secs = vmfd_now_seconds() - t0;
}

static void done_ingest(vmfd_task *task)
{
    itask *t = (itask *)task;
    vmfd_daemon *d = t->d;
    vmfd_hist_observe(&d->metrics.ingest_seconds, t->secs);
    switch (t->reply.status) {
    case 202:
        d->metrics.batches[VMFD_BATCH_ACCEPTED]++;
        d->metrics.rows_ingested += (uint64_t)t->reply.rows;
        vmfd_log(VMFD_LOG_INFO, "batch queued key=%s seq=%lld rows=%lld source=%s", t->key,
                 (long long)t->reply.seq, (long long)t->reply.rows, t->source);
        if (t->reply.same_content_as[0])
            vmfd_log(VMFD_LOG_WARNING,
                     "batch has the content of another key key=%s same_content_as=%s"
                     " action=\"learned again\"",
                     t->key, t->reply.same_content_as);
        if (!d->stopping)
            vmfd_worker_apply(d, t->reply.seq); /* the queue slot passes to the worker */
        break;
    case 200:
        d->metrics.batches[VMFD_BATCH_DUPLICATE]++;
        if (d->queue_depth > 0)
            d->queue_depth--;
        break;
    case 409:
        d->metrics.batches[VMFD_BATCH_CONFLICT]++;
        if (d->queue_depth > 0)
            d->queue_depth--;
        break;
    default:
        d->metrics.batches[VMFD_BATCH_INVALID]++;
        if (d->queue_depth > 0)
            d->queue_depth--;
        vmfd_log(t->reply.status >= 500 ? VMFD_LOG_ERR : VMFD_LOG_INFO,
                 "batch refused key=%s source=%s status=%d error=%s", t->key, t->source,
                 t->reply.status, t->reply.error);
        break;
    }
    t->cb(d, t->ud, &t->reply);
    free(t->path);
    free(t);
}

int vmfd_ingest_init(vmfd_daemon *d, char *err, size_t errsize)
{
    vmfd_ingest_state *is = calloc(1, sizeof *is);
    if (!is) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (vmfd_store_open(d->db_path, 1, 0, &is->db, err, errsize) != 0) {
        free(is);
        return -1;
    }
    if (vmfd_store_expected_shape(is->db, &is->dim, &is->label_kind, err, errsize) != 0) {
        vmfd_store_close(is->db);
        free(is);
        return -1;
    }
    if (d->cfg.dim)
        is->dim = (size_t)d->cfg.dim;
    is->need_labels = d->cfg.mode == VMFD_MODE_CLASSIFIER;
    d->ing = is;
    vmfd_serial_init(&d->ingest_chain, d->loop);
    return 0;
}

void vmfd_ingest_free(vmfd_daemon *d)
{
    if (!d->ing)
        return;
    vmfd_store_close(d->ing->db);
    free(d->ing);
    d->ing = NULL;
}

void vmfd_ingest_submit(vmfd_daemon *d, const char *key, const char *source,
                        const char *content_type, char *body, size_t len, const char *path,
                        vmfd_ingest_cb cb, void *ud)
{
    itask *t = calloc(1, sizeof *t);
    if (!t || (path && !(t->path = strdup(path)))) {
        vmfd_ingest_reply r;
        memset(&r, 0, sizeof r);
        reply_err(&r, 500, "out_of_memory", "queueing the batch");
        free(body);
        if (t)
            free(t);
        if (d->queue_depth > 0)
            d->queue_depth--;
        cb(d, ud, &r);
        return;
    }
    t->d = d;
    snprintf(t->key, sizeof t->key, "%s", key);
    snprintf(t->source, sizeof t->source, "%s", source);
    snprintf(t->content_type, sizeof t->content_type, "%s", content_type);
    t->body = body;
    t->len = len;
    t->max_bytes = d->cfg.max_body_bytes;
    t->cb = cb;
    t->ud = ud;
    vmfd_serial_submit(&d->ingest_chain, &t->t, run_ingest, done_ingest);
}

static void cancel_ingest(vmfd_task *task)
{
    itask *t = (itask *)task;
    memset(&t->reply, 0, sizeof t->reply);
    reply_err(&t->reply, 503, "shutting_down", "vmfd stopped before storing the batch");
    free(t->body);
    t->body = NULL;
    done_ingest(task);
}

void vmfd_ingest_cancel_waiting(vmfd_daemon *d)
{
    vmfd_serial_cancel_waiting(&d->ingest_chain, cancel_ingest);
}
