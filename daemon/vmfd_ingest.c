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
 *
 * Class limit. The chain keeps the set of every label the model holds or
 * will hold (the newest checkpoint's classes plus those of queued batches,
 * loaded at start, then each accepted batch's). A batch whose new labels
 * would take the set beyond max_classes is refused with 422 before it is
 * stored, so neither apply nor a restart ever builds more classes than
 * configured. A restore that drops classes leaves them in the set until the
 * next start (the limit errs on the safe side).
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_store.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An open-addressing set of label texts (integers in decimal). */
typedef struct label_set {
    char **slot;
    size_t cap, n;
} label_set;

struct vmfd_ingest_state {
    sqlite3 *db;
    size_t dim;
    int label_kind;
    int need_labels;
    label_set labels;
};

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t set_find(const label_set *ls, const char *s)
{
    size_t i = (size_t)hash_text(s) & (ls->cap - 1);
    while (ls->slot[i] && strcmp(ls->slot[i], s) != 0)
        i = (i + 1) & (ls->cap - 1);
    return i;
}

static int set_has(const label_set *ls, const char *s)
{
    return ls->cap && ls->slot[set_find(ls, s)] != NULL;
}

/* Adds a copy of s (no-op when present); 0 or -1 out of memory. */
static int set_add(label_set *ls, const char *s)
{
    if (ls->n * 2 >= ls->cap) {
        label_set g = {NULL, ls->cap ? ls->cap * 2 : 64, 0};
        g.slot = calloc(g.cap, sizeof *g.slot);
        if (!g.slot)
            return -1;
        for (size_t i = 0; i < ls->cap; i++) {
            if (ls->slot[i]) {
                g.slot[set_find(&g, ls->slot[i])] = ls->slot[i];
                g.n++;
            }
        }
        free(ls->slot);
        *ls = g;
    }
    size_t i = set_find(ls, s);
    if (ls->slot[i])
        return 0;
    if (!(ls->slot[i] = strdup(s)))
        return -1;
    ls->n++;
    return 0;
}

static void set_free(label_set *ls)
{
    for (size_t i = 0; i < ls->cap; i++)
        free(ls->slot[i]);
    free(ls->slot);
    memset(ls, 0, sizeof *ls);
}

static const char *label_text(const vmfd_batch *b, size_t i, char *num, size_t size)
{
    if (b->label_kind == VMFD_LABELS_STR)
        return b->strs[i];
    snprintf(num, size, "%lld", (long long)b->ints[i]);
    return num;
}

/*
 * The labels of b not yet in the set go to *fresh; -1 with *over set when
 * the set would exceed max, -2 out of memory.
 */
static int new_labels(const label_set *known, const vmfd_batch *b, uint64_t max, label_set *fresh)
{
    char num[32];
    for (size_t i = 0; i < b->n; i++) {
        const char *l = label_text(b, i, num, sizeof num);
        if (set_has(known, l) || set_has(fresh, l))
            continue;
        if (known->n + fresh->n + 1 > max)
            return -1;
        if (set_add(fresh, l) != 0)
            return -2;
    }
    return 0;
}

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
    vmfd_payload_limits lim;
    uint64_t max_classes;
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
    /* O_NOFOLLOW and fstat: a file swapped for a symlink or a FIFO after the
     * inbox scan looked at it is still refused, without blocking. */
    int fd = open(t->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    struct stat st;
    memset(&st, 0, sizeof st);
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ENOENT)
            reply_err(&t->reply, 404, "gone", "the file was removed before it was read");
        else
            reply_err(&t->reply, 400, e == ELOOP ? "not_regular_file" : "unreadable",
                      "cannot open the file: %s", e == ELOOP ? "a symbolic link" : strerror(e));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        fclose(f);
        reply_err(&t->reply, 400, "not_regular_file", "%s",
                  S_ISREG(st.st_mode) ? "owned by another user than vmfd's" : "not a regular file");
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
    label_set fresh = {NULL, 0, 0};
    memset(&b, 0, sizeof b);
    if (!t->body && t->path && read_file(t, t->max_bytes) != 0)
        goto out;
    if (is->dim)
        t->lim.dim = is->dim; /* bound X by the model's own dimension once known */
    if (vmfd_payload_parse_ingest_limited(t->content_type, t->body, t->len, &t->lim, &b, &pe) !=
        0) {
        reply_err(&t->reply, pe.status, pe.error, "%s", pe.detail);
        goto out;
    }
    /* The body is decoded: free it before the store copies the rows again. */
    free(t->body);
    t->body = NULL;
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
    if (b.label_kind != VMFD_LABELS_NONE && is->need_labels) {
        int rc = new_labels(&is->labels, &b, t->max_classes, &fresh);
        if (rc == -1) {
            reply_err(&t->reply, 422, "too_many_classes",
                      "the batch would take the model beyond max_classes (%llu classes)",
                      (unsigned long long)t->max_classes);
            goto out;
        }
        if (rc == -2) {
            reply_err(&t->reply, 507, "out_of_memory", "checking the class limit");
            goto out;
        }
    }
    vmfd_ingest_result r;
    char err[256];
    int src = vmfd_store_ingest(is->db, t->key, &b, t->source, &r, err, sizeof err);
    if (src == -2) {
        reply_err(&t->reply, 507, "insufficient_storage",
                  "the state directory's file system is full: %s", err);
        goto out;
    }
    if (src != 0) {
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
        for (size_t i = 0; i < fresh.cap; i++) {
            /* Out of memory here only makes the limit count this batch's
             * classes again at the next start. */
            if (fresh.slot[i])
                set_add(&is->labels, fresh.slot[i]);
        }
    }
out:
    set_free(&fresh);
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
        d->metrics.batches[t->reply.status == 507 ? VMFD_BATCH_NO_SPACE : VMFD_BATCH_INVALID]++;
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

/* The classes of the newest checkpoint and the labels of queued batches. */
static int load_labels(vmfd_ingest_state *is, char *err, size_t errsize)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(is->db,
                                "SELECT label, NULL FROM classes UNION ALL SELECT NULL, d.labels"
                                " FROM batch_data d JOIN batches b ON b.seq = d.seq"
                                " WHERE b.status = 'queued' AND d.labels IS NOT NULL",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 0);
        const char *json = (const char *)sqlite3_column_text(st, 1);
        rc = SQLITE_OK;
        if (label) {
            if (set_add(&is->labels, label) != 0)
                rc = SQLITE_NOMEM;
            continue;
        }
        json_error_t je;
        json_t *a = json_loads(json, 0, &je);
        for (size_t i = 0; a && i < json_array_size(a) && rc == SQLITE_OK; i++) {
            json_t *v = json_array_get(a, i);
            char num[32];
            const char *l = json_is_string(v) ? json_string_value(v) : num;
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            if (set_add(&is->labels, l) != 0)
                rc = SQLITE_NOMEM;
        }
        json_decref(a);
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errsize, "loading the known classes: %s",
                 rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(is->db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
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
    if (is->need_labels && load_labels(is, err, errsize) != 0) {
        set_free(&is->labels);
        vmfd_store_close(is->db);
        free(is);
        return -1;
    }
    d->ing = is;
    vmfd_serial_init(&d->ingest_chain, d->loop);
    return 0;
}

void vmfd_ingest_free(vmfd_daemon *d)
{
    if (!d->ing)
        return;
    vmfd_store_close(d->ing->db);
    set_free(&d->ing->labels);
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
        reply_err(&r, 507, "out_of_memory", "queueing the batch");
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
    t->lim.max_rows = d->cfg.max_batch_rows;
    t->lim.dim = d->cfg.dim ? d->cfg.dim : d->cfg.max_dim;
    t->lim.max_decoded_bytes = d->cfg.max_decoded_bytes;
    t->lim.max_label_bytes = d->cfg.max_label_bytes;
    t->lim.max_json_bytes = d->cfg.max_json_body_bytes;
    t->max_classes = d->cfg.max_classes;
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
