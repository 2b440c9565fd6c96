/*
 * vmfd_daemon.h - the state of one vmfd process and the interfaces between
 * its modules: ingest (decode + durable store), the model worker (apply,
 * checkpoint, restore, recovery), the snapshot predictions read, the HTTP
 * API, the inbox and the main loop.
 *
 * Ownership: the loop thread owns vmfd_daemon and everything in it except
 * the two chain states: vmfd_ingest_state belongs to the ingest chain and
 * vmfd_worker_state to the model chain; their `run` callbacks are the only
 * code that touches them, one task at a time.
 */
#ifndef VMFD_DAEMON_H
#define VMFD_DAEMON_H

#include "vmfd_config.h"
#include "vmfd_http.h"
#include "vmfd_metrics.h"
#include "vmfd_payload.h"
#include "vmfd_predict.h"
#include "vmfd_serial.h"

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

typedef struct vmfd_model vmfd_model;

/*
 * An immutable model published by the worker. Refcounted on the loop
 * thread only: a prediction on the threadpool holds a reference taken before
 * it was queued and dropped in its done callback.
 */
typedef struct vmfd_snapshot {
    int refs;
    vmfd_model *model;
    uint64_t version;      /* increases with every published model */
    int64_t last_seq;      /* newest batch accounted for */
    int64_t batches;       /* applied batches in this model */
    int64_t checkpoint_id; /* newest checkpoint written (may predate the model) */
    uint64_t model_bytes;
    uint64_t components;
    char **label_json; /* [n_classes]: each class label as JSON text (number or string) */
    size_t n_labels;
} vmfd_snapshot;

typedef struct vmfd_ingest_state vmfd_ingest_state;
typedef struct vmfd_worker_state vmfd_worker_state;
typedef struct vmfd_inbox vmfd_inbox;

typedef struct vmfd_daemon {
    uv_loop_t *loop;
    vmfd_config cfg;
    char config_path[VMFD_CONFIG_PATH_MAX]; /* "" when none */
    /* Command-line overrides, re-applied after a reload. */
    const char *opt_state_dir, *opt_listen, *opt_socket;
    char db_path[VMFD_CONFIG_PATH_MAX + 16];
    vmfd_http *http;
    sqlite3 *rdb; /* read-only connection of the loop thread */
    vmfd_serial ingest_chain;
    vmfd_serial model_chain;
    vmfd_ingest_state *ing;
    vmfd_worker_state *wk;
    vmfd_snapshot *snap;
    vmfd_metrics metrics;
    char token[VMFD_TOKEN_MAX + 1];
    size_t token_len; /* 0: no authentication */
    int ready;
    int read_only;       /* started on a full disk: predictions only (vmfd_main.c) */
    char ro_reason[256]; /* why, for /readyz and the 507 answers */
    int stopping;
    int exit_code;
    uint64_t queue_depth; /* ingests in flight plus batches waiting for the model */
    uint64_t start_ns;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    uint64_t watchdog_usec;
    uv_timer_t drain;        /* shutdown: polls until the chains are idle */
    uint64_t drain_deadline; /* uv_now() when the drain gives up waiting */
    int drain_late;
    vmfd_inbox *inbox;
    vmfd_predict_queue pq;
} vmfd_daemon;

/* ---- snapshots (vmfd_worker.c) ---- */
vmfd_snapshot *vmfd_snapshot_acquire(vmfd_daemon *d);
void vmfd_snapshot_release(vmfd_snapshot *s);

/* ---- model worker (vmfd_worker.c) ---- */
int vmfd_worker_init(vmfd_daemon *d, char *err, size_t errsize);
/* Read-only (full disk): recovery loads the newest checkpoint only. */
int vmfd_worker_init_read_only(vmfd_daemon *d, char *err, size_t errsize);
void vmfd_worker_free(vmfd_daemon *d);
/* Closes the retry timer (shutdown: the shutdown checkpoint recovers instead). */
void vmfd_worker_stop_retry(vmfd_daemon *d);
/* Loads the newest checkpoint, re-applies queued batches, then calls ready_cb. */
void vmfd_worker_recover(vmfd_daemon *d, void (*ready_cb)(vmfd_daemon *d, int ok));
/* Queues the apply of a durable batch (by arrival number). */
void vmfd_worker_apply(vmfd_daemon *d, int64_t seq);

typedef struct vmfd_worker_reply {
    int status; /* HTTP status for the API */
    char error[48];
    char detail[256];
    int64_t checkpoint_id;
} vmfd_worker_reply;
typedef void (*vmfd_worker_cb)(vmfd_daemon *d, void *ud, const vmfd_worker_reply *r);

/* Drops model tasks not yet started (their batches stay queued in the store). */
void vmfd_worker_cancel_waiting(vmfd_daemon *d);

/* Writes a checkpoint now (reason "manual" or "shutdown"; shutdown skips it when clean). */
void vmfd_worker_checkpoint(vmfd_daemon *d, const char *reason, vmfd_worker_cb cb, void *ud);
/* Rolls back to checkpoint id; see docs/vmfd.md for what happens to later batches. */
void vmfd_worker_restore(vmfd_daemon *d, int64_t id, vmfd_worker_cb cb, void *ud);

/* ---- ingest (vmfd_ingest.c) ---- */
typedef struct vmfd_ingest_reply {
    int status; /* 202 new, 200 known, 409, 4xx/5xx refusals */
    char error[48];
    char detail[256];
    char batch_status[16];
    int64_t rows;
    int64_t seq;
    char same_content_as[256]; /* 202: an earlier queued/applied key with the same content */
} vmfd_ingest_reply;
typedef void (*vmfd_ingest_cb)(vmfd_daemon *d, void *ud, const vmfd_ingest_reply *r);

int vmfd_ingest_init(vmfd_daemon *d, char *err, size_t errsize);
void vmfd_ingest_free(vmfd_daemon *d);
/*
 * Decodes, validates and durably stores a batch under key, then calls cb on
 * the loop thread. The body (malloc'ed) is taken over; with body NULL, the
 * .npz file at path is read instead (inbox). Admission control (the queue
 * limit) is the caller's job.
 */
void vmfd_ingest_submit(vmfd_daemon *d, const char *key, const char *source,
                        const char *content_type, char *body, size_t len, const char *path,
                        vmfd_ingest_cb cb, void *ud);

/* Answers ingests not yet started with 503 (shutdown). */
void vmfd_ingest_cancel_waiting(vmfd_daemon *d);

/* ---- HTTP API (vmfd_api.c) ---- */
void vmfd_api_handle(void *ud, vmfd_http_req *req);
void vmfd_api_refusal(void *ud, int status);
/* A JSON error body {"error","detail"} (malloc'ed). */
char *vmfd_api_error_json(const char *error, const char *detail, size_t *len);
/*
 * Sends an answer and counts its status class in the metrics; the body
 * (malloc'ed, may be NULL) is taken over. Loop thread only.
 */
void vmfd_api_answer(vmfd_daemon *d, vmfd_http_req *req, int status, const char *ctype,
                     const char *extra, char *body, size_t len);
/* Sends the JSON error {"error": error, "detail": printf(fmt, ...)}. Loop thread only. */
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
void vmfd_api_answer_error(vmfd_daemon *d, vmfd_http_req *req, int status, const char *extra,
                           const char *error, const char *fmt, ...);

/* ---- inbox (vmfd_inbox.c) ---- */
int vmfd_inbox_start(vmfd_daemon *d, char *err, size_t errsize);
void vmfd_inbox_stop(vmfd_daemon *d);

/* ---- main (vmfd_main.c) ---- */
/* Starts the graceful shutdown (SIGTERM/SIGINT). */
void vmfd_shutdown(vmfd_daemon *d);

double vmfd_now_seconds(void);

#endif
