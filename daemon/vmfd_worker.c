/*
 * vmfd_worker.c - the model worker: the single ordered chain that applies
 * batches, writes checkpoints, restores and recovers, and the snapshots it
 * publishes for predictions.
 *
 * Design notes. The worker state (the live classifier and its SQLite
 * connection) is touched only by `run` callbacks of the model chain, which
 * execute one at a time. After every change the worker copies the model
 * into a new immutable snapshot; the `done` callback swaps it in on the loop
 * thread, so a prediction never waits for learning and never sees a model
 * in the middle of an update.
 *
 * Exactly-once: batches are applied in arrival order (seq) and the worker
 * remembers the newest seq it has accounted for, so a batch already applied
 * (or rejected) is skipped when its apply task comes again. Durability of an
 * applied batch comes from the checkpoint transaction that marks it applied;
 * if that transaction fails, the in-memory model is ahead of the database,
 * the worker marks itself broken and the next task first recovers from the
 * newest checkpoint, which re-applies the still-queued batches.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfd_model.h"
#include "vmfd_store.h"
#include "vmfmm/mixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vmfd_worker_state {
    sqlite3 *db;
    vmfd_model_opts opts;
    uint64_t checkpoint_every, keep_checkpoints;
    int64_t retention_days;
    vmfd_model *model;
    int64_t last_seq, batches, checkpoint_id;
    int64_t *pending; /* applied in memory, not yet in a checkpoint */
    size_t n_pending, cap_pending;
    double pending_apply_ms;
    uint64_t model_bytes;
    uint64_t version;
    int64_t superseded; /* batches the last restore's commit superseded */
    int broken;
    int read_only;     /* full disk: the newest checkpoint only, nothing re-applied */
    long fail_commits; /* tests only: VMFD_TEST_FAIL_COMMITS fails that many commits */
    /* The retry after a failed commit: the loop thread's alone (done
       callbacks, the timer), never touched by a run callback. */
    uv_timer_t retry;
    uint64_t retry_ms; /* current backoff, 0 when healthy */
    int retry_init;
};

enum { W_RECOVER, W_APPLY, W_CHECKPOINT, W_RESTORE, W_RETRY };

typedef struct wtask {
    vmfd_task t; /* first */
    vmfd_daemon *d;
    int kind;
    int64_t seq, id;
    char reason[16];
    vmfd_worker_cb cb;
    void *ud;
    void (*ready_cb)(vmfd_daemon *d, int ok);
    /* results */
    vmfd_snapshot *snap;
    vmfd_worker_reply reply;
    int applied, rejected, skipped, recovered;
    int64_t rows;
    int64_t superseded;            /* restore: batches it superseded */
    int64_t ckpt_id, ckpt_batches; /* recovery: the checkpoint started from */
    double apply_s, ckpt_s;
    int wrote_ckpt;
    int broken_after; /* the worker is broken when the task ends: retry later */
    char key[256];
    char error[256];
} wtask;

double vmfd_now_seconds(void)
{
    return (double)uv_hrtime() * 1e-9;
}

/* ---- snapshots ---- */

vmfd_snapshot *vmfd_snapshot_acquire(vmfd_daemon *d)
{
    if (d->snap)
        d->snap->refs++;
    return d->snap;
}

void vmfd_snapshot_release(vmfd_snapshot *s)
{
    if (s && --s->refs == 0) {
        for (size_t i = 0; i < s->n_labels; i++)
            free(s->label_json[i]);
        free(s->label_json);
        vmfd_model_free(s->model);
        free(s);
    }
}

/* A copy of the live model for predictions (threadpool). */
static vmfd_snapshot *make_snapshot(vmfd_worker_state *ws)
{
    vmfd_snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (vmfd_model_copy(ws->model, &s->model) != VMF_OK) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    size_t nc = vmfd_model_n_labels(s->model);
    s->label_json = calloc(nc ? nc : 1, sizeof *s->label_json);
    if (!s->label_json) {
        vmfd_snapshot_release(s);
        return NULL;
    }
    for (size_t i = 0; i < nc; i++) {
        s->label_json[i] = vmfd_model_label_json(s->model, i);
        s->n_labels = i + 1;
        if (!s->label_json[i]) {
            vmfd_snapshot_release(s);
            return NULL;
        }
    }
    s->version = ++ws->version;
    s->last_seq = ws->last_seq;
    s->batches = ws->batches;
    s->checkpoint_id = ws->checkpoint_id;
    s->model_bytes = ws->model_bytes;
    s->components = vmfd_model_n_components(ws->model);
    return s;
}

static void publish(vmfd_daemon *d, vmfd_snapshot *s)
{
    if (!s)
        return;
    vmfd_snapshot *old = d->snap;
    d->snap = s;
    vmfd_snapshot_release(old);
}

/* ---- work on the chain ---- */

static int pending_push(vmfd_worker_state *ws, int64_t seq)
{
    if (ws->n_pending == ws->cap_pending) {
        size_t cap = ws->cap_pending ? ws->cap_pending * 2 : 16;
        int64_t *p = realloc(ws->pending, cap * sizeof *p);
        if (!p)
            return -1;
        ws->pending = p;
        ws->cap_pending = cap;
    }
    ws->pending[ws->n_pending++] = seq;
    return 0;
}

/* Writes a checkpoint of the live model in one transaction with its batches. */
static int commit(vmfd_worker_state *ws, const char *reason, int64_t supersede_after,
                  int64_t restored_from, int64_t batches_in_ckpt, double *secs, char *err,
                  size_t errsize)
{
    void *blob = NULL;
    size_t len = 0;
    double t0 = vmfd_now_seconds();
    if (vmfd_model_save(ws->model, &blob, &len) != VMF_OK) {
        snprintf(err, errsize, "saving the model: %s", vmf_last_error());
        return -1;
    }
    vmfd_commit c;
    memset(&c, 0, sizeof c);
    c.model = ws->model;
    c.blob = blob;
    c.blob_len = len;
    c.reason = reason;
    c.applied = ws->pending;
    c.n_applied = supersede_after >= 0 ? 0 : ws->n_pending;
    c.last_seq = ws->last_seq;
    c.batches = batches_in_ckpt;
    c.apply_ms = ws->pending_apply_ms;
    c.retention_days = ws->retention_days;
    c.keep_checkpoints = ws->keep_checkpoints;
    if (supersede_after >= 0) {
        c.supersede_after = supersede_after;
        c.supersede_upto = ws->last_seq;
        c.restored_from = restored_from;
        ws->superseded = 0;
        c.n_superseded = &ws->superseded;
    }
    int64_t id;
    int rc;
    if (ws->fail_commits > 0) {
        ws->fail_commits--;
        snprintf(err, errsize, "injected failure (VMFD_TEST_FAIL_COMMITS)");
        rc = -1;
    } else {
        rc = vmfd_store_commit(ws->db, &c, &id, NULL, err, errsize);
    }
    free(blob);
    if (rc != 0) {
        ws->broken = 1;
        return -1;
    }
    ws->checkpoint_id = id;
    ws->model_bytes = len;
    ws->n_pending = 0;
    ws->pending_apply_ms = 0.0;
    *secs = vmfd_now_seconds() - t0;
    return 0;
}

/* Applies one stored batch to the live model; fills the task's results. */
static void apply_one(vmfd_worker_state *ws, wtask *t, int64_t seq)
{
    vmfd_batch b;
    char err[256];
    if (vmfd_store_load_batch(ws->db, seq, &b, t->key, sizeof t->key, err, sizeof err) != 0) {
        /* A queued batch without a usable payload can never be applied. */
        vmfd_log(VMFD_LOG_ERR, "batch unusable seq=%lld error=\"%s\"", (long long)seq, err);
        if (vmfd_store_reject(ws->db, seq, err, ws->retention_days, err, sizeof err) == 0) {
            ws->last_seq = seq;
            t->rejected = 1;
        } else {
            ws->broken = 1;
        }
        return;
    }
    vmf_labels y = {b.n, b.ints, (const char *const *)b.strs};
    double t0 = vmfd_now_seconds();
    int rc = vmfd_model_learn(ws->model, b.x, b.n, b.d, b.label_kind ? &y : NULL);
    double dt = vmfd_now_seconds() - t0;
    t->rows = (int64_t)b.n;
    vmfd_batch_free(&b);
    if (rc == VMF_EINVAL) {
        snprintf(t->error, sizeof t->error, "%s", vmf_last_error());
        if (vmfd_store_reject(ws->db, seq, t->error, ws->retention_days, err, sizeof err) == 0) {
            ws->last_seq = seq;
            t->rejected = 1;
        } else {
            vmfd_log(VMFD_LOG_ERR, "store failed op=reject error=\"%s\"", err);
            ws->broken = 1;
        }
        return;
    }
    if (rc != VMF_OK) {
        snprintf(t->error, sizeof t->error, "%s", vmf_last_error());
        ws->broken = 1; /* the model may be changed: rebuild it from the store */
        return;
    }
    ws->last_seq = seq;
    ws->batches++;
    ws->pending_apply_ms += dt * 1e3;
    t->apply_s += dt;
    t->applied = 1;
    if (pending_push(ws, seq) != 0) {
        ws->broken = 1;
        return;
    }
    if (ws->n_pending >= ws->checkpoint_every) {
        double secs = 0.0;
        if (commit(ws, "batch", -1, 0, ws->batches, &secs, err, sizeof err) != 0) {
            vmfd_log(VMFD_LOG_ERR, "checkpoint failed error=\"%s\"", err);
            return;
        }
        t->ckpt_s += secs;
        t->wrote_ckpt = 1;
    }
}

/* Rebuilds the live model: newest checkpoint plus the queued batches. */
static int recover(vmfd_worker_state *ws, wtask *t, char *err, size_t errsize)
{
    vmfd_ckpt_info info;
    void *blob = NULL;
    size_t len = 0;
    if (vmfd_store_latest_checkpoint(ws->db, &info, &blob, &len, err, errsize) != 0)
        return -1;
    vmfd_model *m = NULL;
    int rc = info.id ? vmfd_model_load(&ws->opts, blob, len, &m) : vmfd_model_new(&ws->opts, &m);
    free(blob);
    if (rc != VMF_OK) {
        snprintf(err, errsize, "%s checkpoint %lld: %s", info.id ? "loading" : "creating",
                 (long long)info.id, vmf_last_error());
        return -1;
    }
    vmfd_model_free(ws->model);
    ws->model = m;
    ws->last_seq = info.last_seq;
    ws->batches = info.batches;
    ws->checkpoint_id = info.id;
    ws->model_bytes = len;
    ws->n_pending = 0;
    ws->pending_apply_ms = 0.0;
    ws->broken = 0;
    t->ckpt_id = info.id;
    t->ckpt_batches = info.batches;
    int64_t *seqs = NULL;
    size_t n = 0;
    if (ws->read_only)
        return 0; /* queued batches wait for a restart with free space */
    if (vmfd_store_queued(ws->db, &seqs, &n, err, errsize) != 0)
        return -1;
    for (size_t i = 0; i < n && !ws->broken; i++) {
        wtask sub;
        memset(&sub, 0, sizeof sub);
        apply_one(ws, &sub, seqs[i]);
        t->recovered += sub.applied;
        t->rows += sub.rows;
    }
    free(seqs);
    if (ws->broken) {
        snprintf(err, errsize, "re-applying queued batches failed");
        return -1;
    }
    return 0;
}

static void run_task_body(vmfd_task *task)
{
    wtask *t = (wtask *)task;
    vmfd_worker_state *ws = t->d->wk;
    char err[256] = "";
    t->reply.status = 200;
    if (ws->broken || t->kind == W_RECOVER) {
        if (recover(ws, t, err, sizeof err) != 0) {
            t->reply.status = 500;
            snprintf(t->reply.error, sizeof t->reply.error, "recovery_failed");
            snprintf(t->reply.detail, sizeof t->reply.detail, "%s", err);
            return;
        }
        t->snap = make_snapshot(ws);
    }
    if (!ws->model) {
        t->reply.status = 503;
        snprintf(t->reply.error, sizeof t->reply.error, "not_ready");
        snprintf(t->reply.detail, sizeof t->reply.detail, "the model could not be recovered");
        return;
    }
    switch (t->kind) {
    case W_RECOVER:
    case W_RETRY:
        break;
    case W_APPLY:
        if (t->seq <= ws->last_seq) {
            t->skipped = 1;
            break;
        }
        apply_one(ws, t, t->seq);
        if (t->applied) {
            vmfd_snapshot_release(t->snap);
            t->snap = make_snapshot(ws);
        }
        break;
    case W_CHECKPOINT: {
        double secs = 0.0;
        if (strcmp(t->reason, "shutdown") == 0 && ws->n_pending == 0) {
            t->reply.checkpoint_id = ws->checkpoint_id;
            break;
        }
        if (commit(ws, t->reason, -1, 0, ws->batches, &secs, err, sizeof err) != 0) {
            t->reply.status = 500;
            snprintf(t->reply.error, sizeof t->reply.error, "checkpoint_failed");
            snprintf(t->reply.detail, sizeof t->reply.detail, "%s", err);
            break;
        }
        t->ckpt_s = secs;
        t->wrote_ckpt = 1;
        t->reply.checkpoint_id = ws->checkpoint_id;
        break;
    }
    case W_RESTORE: {
        vmfd_ckpt_info info;
        void *blob = NULL;
        size_t len = 0;
        int rc = vmfd_store_get_checkpoint(ws->db, t->id, &info, &blob, &len, err, sizeof err);
        if (rc == 1) {
            t->reply.status = 404;
            snprintf(t->reply.error, sizeof t->reply.error, "not_found");
            snprintf(t->reply.detail, sizeof t->reply.detail,
                     "no checkpoint %lld (pruned or never written)", (long long)t->id);
            break;
        }
        vmfd_model *m = NULL;
        if (rc != 0 || vmfd_model_load(&ws->opts, blob, len, &m) != VMF_OK) {
            free(blob);
            t->reply.status = 500;
            snprintf(t->reply.error, sizeof t->reply.error, "restore_failed");
            snprintf(t->reply.detail, sizeof t->reply.detail, "%s",
                     rc != 0 ? err : vmf_last_error());
            break;
        }
        free(blob);
        vmfd_model *old = ws->model;
        ws->model = m;
        double secs = 0.0;
        char reason[16] = "restore";
        if (commit(ws, reason, info.last_seq, t->id, info.batches, &secs, err, sizeof err) != 0) {
            ws->model = old;
            vmfd_model_free(m);
            ws->broken = 1;
            t->reply.status = 500;
            snprintf(t->reply.error, sizeof t->reply.error, "restore_failed");
            snprintf(t->reply.detail, sizeof t->reply.detail, "%s", err);
            break;
        }
        vmfd_model_free(old);
        ws->batches = info.batches;
        t->superseded = ws->superseded;
        t->ckpt_s = secs;
        t->wrote_ckpt = 1;
        t->reply.checkpoint_id = ws->checkpoint_id;
        vmfd_snapshot_release(t->snap);
        t->snap = make_snapshot(ws);
        break;
    }
    }
}

static void run_task(vmfd_task *task)
{
    wtask *t = (wtask *)task;
    run_task_body(task);
    t->broken_after = t->d->wk->broken;
}

static void submit(vmfd_daemon *d, wtask *t);

/* ---- retry after a failed commit ---- */

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS   60000

static void on_retry(uv_timer_t *timer)
{
    vmfd_daemon *d = timer->data;
    if (d->stopping)
        return;
    wtask *t = calloc(1, sizeof *t);
    if (!t) {
        vmfd_log(VMFD_LOG_ERR, "out of memory queueing model work");
        return;
    }
    t->d = d;
    t->kind = W_RETRY;
    submit(d, t);
}

/*
 * After a task that left the worker broken (a failed checkpoint commit or
 * apply), the pending work is retried by a timer with exponential backoff
 * (1 s, 2 s, ... 60 s) instead of waiting for the next batch; a task that
 * ends healthy resets the backoff.
 */
static void retry_update(vmfd_daemon *d, const wtask *t)
{
    if (!t->broken_after) {
        if (d->wk->retry_ms && t->kind == W_RETRY)
            vmfd_log(VMFD_LOG_NOTICE, "model retry succeeded batches=%lld",
                     (long long)d->wk->batches);
        d->wk->retry_ms = 0;
        return;
    }
    if (d->stopping || uv_is_active((uv_handle_t *)&d->wk->retry))
        return;
    d->wk->retry_ms = d->wk->retry_ms ? d->wk->retry_ms * 2 : RETRY_FIRST_MS;
    if (d->wk->retry_ms > RETRY_MAX_MS)
        d->wk->retry_ms = RETRY_MAX_MS;
    d->metrics.model_retries++;
    vmfd_log(VMFD_LOG_WARNING, "model retry scheduled in_ms=%llu",
             (unsigned long long)d->wk->retry_ms);
    uv_timer_start(&d->wk->retry, on_retry, d->wk->retry_ms, 0);
}

static void done_task(vmfd_task *task)
{
    wtask *t = (wtask *)task;
    vmfd_daemon *d = t->d;
    publish(d, t->snap);
    retry_update(d, t);
    if (t->wrote_ckpt)
        vmfd_hist_observe(&d->metrics.checkpoint_seconds, t->ckpt_s);
    if (t->kind == W_APPLY) {
        if (d->queue_depth > 0)
            d->queue_depth--;
        if (t->applied) {
            d->metrics.batches[VMFD_BATCH_APPLIED]++;
            vmfd_hist_observe(&d->metrics.apply_seconds, t->apply_s);
            vmfd_log(VMFD_LOG_INFO,
                     "batch applied key=%s seq=%lld rows=%lld apply_ms=%.1f checkpoint=%lld",
                     t->key, (long long)t->seq, (long long)t->rows, t->apply_s * 1e3,
                     (long long)(t->wrote_ckpt ? d->wk->checkpoint_id : 0));
        } else if (t->rejected) {
            d->metrics.batches[VMFD_BATCH_REJECTED]++;
            vmfd_log(VMFD_LOG_WARNING, "batch rejected key=%s seq=%lld error=\"%s\"", t->key,
                     (long long)t->seq, t->error);
        } else if (!t->skipped) {
            vmfd_log(VMFD_LOG_ERR, "batch apply failed seq=%lld error=\"%s\" action=recover",
                     (long long)t->seq, t->error[0] ? t->error : t->reply.detail);
        }
    } else if (t->kind == W_RETRY && t->reply.status != 200) {
        vmfd_log(VMFD_LOG_ERR, "model retry failed error=\"%s\"", t->reply.detail);
    } else if (t->kind == W_RECOVER) {
        if (t->reply.status == 200)
            vmfd_log(VMFD_LOG_NOTICE,
                     "recovered checkpoint=%lld checkpoint_batches=%lld reapplied=%d "
                     "rows=%lld batches=%lld",
                     (long long)t->ckpt_id, (long long)t->ckpt_batches, t->recovered,
                     (long long)t->rows, (long long)d->wk->batches);
        else
            vmfd_log(VMFD_LOG_ERR, "recovery failed error=\"%s\"", t->reply.detail);
        if (t->ready_cb)
            t->ready_cb(d, t->reply.status == 200);
    } else if (t->kind == W_RESTORE && t->reply.status == 200) {
        d->metrics.batches[VMFD_BATCH_SUPERSEDED] += (uint64_t)t->superseded;
        vmfd_log(VMFD_LOG_NOTICE, "restored checkpoint=%lld new_checkpoint=%lld superseded=%lld",
                 (long long)t->id, (long long)t->reply.checkpoint_id, (long long)t->superseded);
    } else if (t->kind == W_CHECKPOINT && t->wrote_ckpt) {
        vmfd_log(VMFD_LOG_INFO, "checkpoint written id=%lld reason=%s ms=%.1f",
                 (long long)t->reply.checkpoint_id, t->reason, t->ckpt_s * 1e3);
    }
    if (t->cb)
        t->cb(d, t->ud, &t->reply);
    free(t);
}

static void submit(vmfd_daemon *d, wtask *t)
{
    vmfd_serial_submit(&d->model_chain, &t->t, run_task, done_task);
}

static wtask *new_task(vmfd_daemon *d, int kind)
{
    wtask *t = calloc(1, sizeof *t);
    if (!t) {
        vmfd_log(VMFD_LOG_ERR, "out of memory queueing model work");
        return NULL;
    }
    t->d = d;
    t->kind = kind;
    return t;
}

static int worker_init(vmfd_daemon *d, int read_only, char *err, size_t errsize)
{
    vmfd_worker_state *ws = calloc(1, sizeof *ws);
    if (!ws) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    ws->read_only = read_only;
    if ((read_only ? vmfd_store_open_snapshot(d->db_path, &ws->db, err, errsize)
                   : vmfd_store_open(d->db_path, 1, 0, &ws->db, err, errsize)) != 0) {
        free(ws);
        return -1;
    }
    vmfd_model_opts_from_config(&ws->opts, &d->cfg);
    ws->checkpoint_every = d->cfg.checkpoint_every;
    ws->keep_checkpoints = d->cfg.keep_checkpoints;
    ws->retention_days = d->cfg.payload_retention_days;
    const char *fail = getenv("VMFD_TEST_FAIL_COMMITS");
    if (fail)
        ws->fail_commits = strtol(fail, NULL, 10);
    d->wk = ws;
    vmfd_serial_init(&d->model_chain, d->loop);
    uv_timer_init(d->loop, &ws->retry);
    ws->retry.data = d;
    ws->retry_init = 1;
    return 0;
}

int vmfd_worker_init(vmfd_daemon *d, char *err, size_t errsize)
{
    return worker_init(d, 0, err, errsize);
}

int vmfd_worker_init_read_only(vmfd_daemon *d, char *err, size_t errsize)
{
    return worker_init(d, 1, err, errsize);
}

static void on_retry_closed(uv_handle_t *h)
{
    (void)h;
}

void vmfd_worker_stop_retry(vmfd_daemon *d)
{
    if (d->wk && d->wk->retry_init) {
        uv_timer_stop(&d->wk->retry);
        uv_close((uv_handle_t *)&d->wk->retry, on_retry_closed);
        d->wk->retry_init = 0;
    }
}

void vmfd_worker_free(vmfd_daemon *d)
{
    vmfd_worker_state *ws = d->wk;
    if (!ws)
        return;
    vmfd_store_close(ws->db);
    vmfd_model_free(ws->model);
    free(ws->pending);
    free(ws);
    d->wk = NULL;
}

void vmfd_worker_recover(vmfd_daemon *d, void (*ready_cb)(vmfd_daemon *d, int ok))
{
    wtask *t = new_task(d, W_RECOVER);
    if (!t) {
        ready_cb(d, 0);
        return;
    }
    t->ready_cb = ready_cb;
    vmfd_serial_submit(&d->model_chain, &t->t, run_task, done_task);
}

void vmfd_worker_apply(vmfd_daemon *d, int64_t seq)
{
    wtask *t = new_task(d, W_APPLY);
    if (!t)
        return; /* stays queued in the store; the next recovery applies it */
    t->seq = seq;
    vmfd_serial_submit(&d->model_chain, &t->t, run_task, done_task);
}

void vmfd_worker_checkpoint(vmfd_daemon *d, const char *reason, vmfd_worker_cb cb, void *ud)
{
    wtask *t = new_task(d, W_CHECKPOINT);
    if (!t) {
        vmfd_worker_reply r = {507, "out_of_memory", "queueing the checkpoint", 0};
        cb(d, ud, &r);
        return;
    }
    snprintf(t->reason, sizeof t->reason, "%s", reason);
    t->cb = cb;
    t->ud = ud;
    vmfd_serial_submit(&d->model_chain, &t->t, run_task, done_task);
}

void vmfd_worker_restore(vmfd_daemon *d, int64_t id, vmfd_worker_cb cb, void *ud)
{
    wtask *t = new_task(d, W_RESTORE);
    if (!t) {
        vmfd_worker_reply r = {507, "out_of_memory", "queueing the restore", 0};
        cb(d, ud, &r);
        return;
    }
    t->id = id;
    t->cb = cb;
    t->ud = ud;
    vmfd_serial_submit(&d->model_chain, &t->t, run_task, done_task);
}

static void cancel_task(vmfd_task *task)
{
    wtask *t = (wtask *)task;
    if (t->cb) {
        t->reply.status = 503;
        snprintf(t->reply.error, sizeof t->reply.error, "shutting_down");
        snprintf(t->reply.detail, sizeof t->reply.detail, "vmfd is stopping");
        t->cb(t->d, t->ud, &t->reply);
    }
    if (t->ready_cb)
        t->ready_cb(t->d, 0);
    free(t);
}

void vmfd_worker_cancel_waiting(vmfd_daemon *d)
{
    vmfd_serial_cancel_waiting(&d->model_chain, cancel_task);
}
