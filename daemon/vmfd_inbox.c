/*
 * vmfd_inbox.c - the inbox directory: <state>/inbox/NAME.npz files (renamed
 * in, so they are complete) are ingested like PUT /v1/batches/NAME, then
 * moved to inbox/done/, or to inbox/rejected/ beside NAME.error.json (written
 * atomically, before the batch is moved).
 *
 * Design notes. A uv_fs_event on the directory makes a new file start at
 * once: the event's own name is acted on (one lstat and a hash lookup on
 * the loop), never a directory walk, so a burst of N files costs O(N) on the
 * loop, not O(N^2). A periodic scan finds files present at startup and any
 * that an event missed (an inotify overflow); its directory walk and sort
 * run on the threadpool (uv_fs_scandir) and at most one runs at a time.
 * Files being ingested are remembered in a hash table so neither path ever
 * submits one twice. Files the store could not take (a 5xx) stay where they are and are
 * retried by the next scan. Dot files and names without .npz are ignored,
 * so writers can use a ".NAME.tmp" then rename. Anything that is not a
 * regular file owned by vmfd's user (a symlink, a directory, a FIFO, another
 * user's file) goes to rejected/ with the reason and is never opened.
 */
#include "vmfd_daemon.h"
#include "vmfd_log.h"
#include "vmfmm/io.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct inflight {
    struct inflight *next;
    char name[256];
} inflight;

#define BUSY_BUCKETS 4096

struct vmfd_inbox {
    vmfd_daemon *d;
    uv_timer_t timer;
    uv_fs_event_t ev;
    uv_fs_t scan_req;
    int scanning; /* a uv_fs_scandir is on the threadpool */
    int ev_started;
    int closing;
    int open_handles;
    char dir[VMFD_CONFIG_PATH_MAX + 16];
    inflight *busy[BUSY_BUCKETS]; /* names being ingested, by hash */
    size_t n_busy;
};

static size_t bucket(const char *name)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ULL;
    return (size_t)(h % BUSY_BUCKETS);
}

typedef struct item {
    vmfd_inbox *ib;
    char name[256];
} item;

static int is_busy(vmfd_inbox *ib, const char *name)
{
    for (inflight *f = ib->busy[bucket(name)]; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return 1;
    }
    return 0;
}

static void add_busy(vmfd_inbox *ib, inflight *f)
{
    size_t b = bucket(f->name);
    f->next = ib->busy[b];
    ib->busy[b] = f;
    ib->n_busy++;
}

static void unbusy(vmfd_inbox *ib, const char *name)
{
    for (inflight **p = &ib->busy[bucket(name)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            inflight *f = *p;
            *p = f->next;
            free(f);
            ib->n_busy--;
            return;
        }
    }
}

static void maybe_free(vmfd_inbox *ib)
{
    if (ib->closing && ib->open_handles == 0 && ib->n_busy == 0 && !ib->scanning)
        free(ib);
}

/*
 * A rejection, finished on the threadpool (two fsyncs are no work for the
 * loop thread): rejected/NAME.error.json is written atomically
 * (vmf_file_write_atomic: a temporary file, fsync, rename, directory fsync)
 * and only then is the batch moved beside it, so a crash between the two
 * leaves the batch in the inbox (rejected again at the next start, its
 * reason replaced whole), never a rejected batch without its reason. A
 * reason that cannot be written leaves the batch for the next scan, like a
 * 5xx.
 */
typedef struct reject_job {
    uv_work_t w;
    item *it;
    vmfd_ingest_reply r;
    char from[VMFD_CONFIG_PATH_MAX + 300], to[VMFD_CONFIG_PATH_MAX + 320];
    char reason[VMFD_CONFIG_PATH_MAX + 340];
    int wrote;      /* the reason is on disk */
    int move_errno; /* the rename's errno, 0 when the batch moved */
    char err[320];  /* why the reason could not be written */
} reject_job;

static void reject_work(uv_work_t *w)
{
    reject_job *j = w->data;
    json_t *o = json_pack("{s:s, s:s, s:i}", "error", j->r.error, "detail", j->r.detail, "status",
                          j->r.status);
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text) {
        snprintf(j->err, sizeof j->err, "out of memory");
        return;
    }
    int rc = vmf_file_write_atomic(j->reason, text, strlen(text));
    free(text);
    if (rc != VMF_OK) {
        snprintf(j->err, sizeof j->err, "%s", vmf_last_error()); /* this thread's message */
        return;
    }
    j->wrote = 1;
    j->move_errno = rename(j->from, j->to) != 0 ? errno : 0;
}

static void finish_item(item *it)
{
    vmfd_inbox *ib = it->ib;
    unbusy(ib, it->name);
    free(it);
    maybe_free(ib);
}

static void reject_after(uv_work_t *w, int status)
{
    reject_job *j = w->data;
    const char *name = j->it->name;
    (void)status;
    if (!j->wrote) {
        vmfd_log(VMFD_LOG_ERR, "inbox cannot write path=%s error=\"%s\"", j->reason, j->err);
        vmfd_log(VMFD_LOG_WARNING, "inbox retry later file=%s error=%s", name, j->r.error);
    } else {
        if (j->move_errno)
            vmfd_log(VMFD_LOG_ERR, "inbox cannot move file=%s error=\"%s\"", name,
                     strerror(j->move_errno));
        vmfd_log(VMFD_LOG_WARNING, "inbox rejected file=%s status=%d error=%s", name, j->r.status,
                 j->r.error);
    }
    finish_item(j->it);
    free(j);
}

static void reject(vmfd_daemon *d, item *it, const char *from, const vmfd_ingest_reply *r)
{
    vmfd_inbox *ib = it->ib;
    reject_job *j = calloc(1, sizeof *j);
    if (!j) {
        vmfd_log(VMFD_LOG_WARNING, "inbox retry later file=%s error=out_of_memory", it->name);
        finish_item(it);
        return;
    }
    j->w.data = j;
    j->it = it;
    j->r = *r;
    snprintf(j->from, sizeof j->from, "%s", from);
    snprintf(j->to, sizeof j->to, "%s/rejected/%s", ib->dir, it->name);
    snprintf(j->reason, sizeof j->reason, "%s/rejected/%s.error.json", ib->dir, it->name);
    if (uv_queue_work(d->loop, &j->w, reject_work, reject_after) != 0) {
        reject_work(&j->w); /* no threadpool: do it here rather than not at all */
        reject_after(&j->w, 0);
    }
}

static void ingested(vmfd_daemon *d, void *ud, const vmfd_ingest_reply *r)
{
    item *it = ud;
    vmfd_inbox *ib = it->ib;
    char from[VMFD_CONFIG_PATH_MAX + 300], to[VMFD_CONFIG_PATH_MAX + 320];
    snprintf(from, sizeof from, "%s/%s", ib->dir, it->name);
    if (r->status == 404) {
        vmfd_log(VMFD_LOG_INFO, "inbox file vanished file=%s", it->name); /* nothing to move */
    } else if (r->status >= 500) {
        vmfd_log(VMFD_LOG_WARNING, "inbox retry later file=%s error=%s", it->name, r->error);
    } else if (r->status == 200 || r->status == 202) {
        snprintf(to, sizeof to, "%s/done/%s", ib->dir, it->name);
        if (rename(from, to) != 0)
            vmfd_log(VMFD_LOG_ERR, "inbox cannot move file=%s error=\"%s\"", it->name,
                     strerror(errno));
        else
            vmfd_log(VMFD_LOG_INFO, "inbox done file=%s status=%s", it->name, r->batch_status);
    } else {
        reject(d, it, from, r); /* finishes the item itself */
        return;
    }
    finish_item(it);
}

static void reject_now(vmfd_inbox *ib, const char *name, int status, const char *error,
                       const char *detail)
{
    vmfd_ingest_reply r;
    memset(&r, 0, sizeof r);
    r.status = status;
    snprintf(r.error, sizeof r.error, "%s", error);
    snprintf(r.detail, sizeof r.detail, "%s", detail);
    item *it = calloc(1, sizeof *it);
    inflight *f = calloc(1, sizeof *f);
    if (!it || !f) {
        free(it);
        free(f);
        return;
    }
    it->ib = ib;
    snprintf(it->name, sizeof it->name, "%s", name);
    snprintf(f->name, sizeof f->name, "%s", name);
    add_busy(ib, f);
    ingested(ib->d, it, &r);
}

/* A name the inbox takes: not a dot file, ending in .npz. */
static int candidate(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len >= 5 && len < 256 && strcmp(name + len - 4, ".npz") == 0;
}

/*
 * Submits one inbox file unless it is being ingested already. Returns 0, or
 * -1 when the queue is full (the next scan continues).
 */
static int try_submit(vmfd_inbox *ib, const char *name)
{
    vmfd_daemon *d = ib->d;
    if (ib->closing || d->stopping || !candidate(name) || is_busy(ib, name))
        return 0;
    size_t n = strlen(name);
    char path[VMFD_CONFIG_PATH_MAX + 300];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", ib->dir, name);
    if (lstat(path, &st) != 0)
        return 0; /* gone (moved out by us, or renamed away) */
    /* Only regular files of our own user: a symlink could make vmfd read
     * any file it can open (the ingest opens with O_NOFOLLOW as well). */
    if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        reject_now(ib, name, 400, "not_regular_file",
                   S_ISLNK(st.st_mode)    ? "a symbolic link; the inbox takes regular files only"
                   : !S_ISREG(st.st_mode) ? "not a regular file"
                                          : "owned by another user than vmfd's");
        return 0;
    }
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(n - 4), name);
    int ok = n - 4 <= 128;
    for (size_t j = 0; ok && key[j]; j++) {
        char c = key[j];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        reject_now(ib, name, 400, "bad_key",
                   "file stems must be 1-128 characters of A-Z a-z 0-9 . _ -");
        return 0;
    }
    if (d->queue_depth >= d->cfg.queue_length)
        return -1;
    item *it = calloc(1, sizeof *it);
    inflight *f = calloc(1, sizeof *f);
    if (!it || !f) {
        free(it);
        free(f);
        return -1;
    }
    it->ib = ib;
    snprintf(it->name, sizeof it->name, "%s", name);
    snprintf(f->name, sizeof f->name, "%s", name);
    add_busy(ib, f);
    d->queue_depth++;
    vmfd_ingest_submit(d, key, "inbox", "application/x-npz", NULL, 0, path, ingested, it);
    return 0;
}

/* The threadpool listed the directory, sorted by name (day-001 before day-002). */
static void on_scandir(uv_fs_t *req)
{
    vmfd_inbox *ib = req->data;
    uv_dirent_t ent;
    ib->scanning = 0;
    if (req->result >= 0 && !ib->closing) {
        while (uv_fs_scandir_next(req, &ent) != UV_EOF) {
            if (try_submit(ib, ent.name) != 0)
                break;
        }
    }
    uv_fs_req_cleanup(req);
    maybe_free(ib);
}

static void scan(vmfd_inbox *ib)
{
    if (ib->closing || ib->d->stopping || ib->scanning)
        return;
    ib->scan_req.data = ib;
    if (uv_fs_scandir(ib->d->loop, &ib->scan_req, ib->dir, 0, on_scandir) == 0)
        ib->scanning = 1;
}

static void on_timer(uv_timer_t *t)
{
    scan(t->data);
}

static void on_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    vmfd_inbox *ib = h->data;
    (void)events;
    if (status != 0)
        return;
    if (filename)
        try_submit(ib, filename);
    else
        scan(ib); /* no name (an overflow): walk the directory, off the loop */
}

static int mkdir_p(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int vmfd_inbox_start(vmfd_daemon *d, char *err, size_t errsize)
{
    vmfd_inbox *ib = calloc(1, sizeof *ib);
    if (!ib) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    ib->d = d;
    snprintf(ib->dir, sizeof ib->dir, "%s/inbox", d->cfg.state_dir);
    char sub[sizeof ib->dir + 16];
    int bad = mkdir_p(ib->dir);
    snprintf(sub, sizeof sub, "%s/done", ib->dir);
    bad |= mkdir_p(sub);
    snprintf(sub, sizeof sub, "%s/rejected", ib->dir);
    bad |= mkdir_p(sub);
    if (bad) {
        snprintf(err, errsize, "cannot create %s: %s", ib->dir, strerror(errno));
        free(ib);
        return -1;
    }
    uv_timer_init(d->loop, &ib->timer);
    ib->timer.data = ib;
    ib->open_handles = 1;
    uv_timer_start(&ib->timer, on_timer, 0, d->cfg.inbox_scan_ms);
    if (uv_fs_event_init(d->loop, &ib->ev) == 0) {
        ib->ev.data = ib;
        ib->open_handles++;
        if (uv_fs_event_start(&ib->ev, on_event, ib->dir, 0) == 0)
            ib->ev_started = 1;
    }
    d->inbox = ib;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    vmfd_inbox *ib = h->data;
    ib->open_handles--;
    maybe_free(ib);
}

void vmfd_inbox_stop(vmfd_daemon *d)
{
    vmfd_inbox *ib = d->inbox;
    if (!ib)
        return;
    d->inbox = NULL;
    ib->closing = 1;
    uv_close((uv_handle_t *)&ib->timer, on_closed);
    if (ib->open_handles > 1)
        uv_close((uv_handle_t *)&ib->ev, on_closed);
}
