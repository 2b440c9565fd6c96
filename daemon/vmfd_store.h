/*
 * vmfd_store.h - the SQLite store of vmfd: batches, their payloads, the
 * checkpoints of the model and a relational copy of every checkpoint's
 * components for sqlite3 users (schema in docs/vmfd.md).
 *
 * One database file, <state_dir>/vmfd.db, in WAL mode with synchronous=FULL:
 * a committed transaction survives a power cut. Every connection has a busy
 * timeout, so an operator's sqlite3 session reading the database only delays
 * a writer briefly and never makes it fail. Each connection is used by one
 * thread at a time; vmfd opens one for ingest, one for the model worker and
 * one read-only connection for the loop thread.
 *
 * All functions return 0 on success and -1 with a message in err on failure;
 * a failed write rolls its transaction back.
 */
#ifndef VMFD_STORE_H
#define VMFD_STORE_H

#include "vmfd_payload.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define VMFD_STORE_APP_ID  0x766d6664 /* "vmfd" */
#define VMFD_STORE_VERSION 2          /* 2: readable component columns and views */

typedef struct vmfd_model vmfd_model;

/* Opens (creating the schema when `create`) the database at path. */
int vmfd_store_open(const char *path, int create, int readonly, sqlite3 **db, char *err,
                    size_t errsize);
void vmfd_store_close(sqlite3 *db);

typedef struct vmfd_ingest_result {
    int existed;  /* the key was known before */
    int conflict; /* ... with another content hash */
    int64_t seq;
    int64_t rows;
    char status[16];
    char
        same_content_as[256]; /* new batch: an earlier queued/applied key with its content, or "" */
} vmfd_ingest_result;

/*
 * Stores a new batch durably (status queued) or reports the existing one under
 * the same key. One IMMEDIATE transaction, so two PUTs of one key cannot both
 * insert.
 */
int vmfd_store_ingest(sqlite3 *db, const char *key, const vmfd_batch *b, const char *source,
                      vmfd_ingest_result *r, char *err, size_t errsize);

/* Loads a queued batch's payload and key (key_out may be NULL). */
int vmfd_store_load_batch(sqlite3 *db, int64_t seq, vmfd_batch *out, char *key_out, size_t keysize,
                          char *err, size_t errsize);

/* Sequence numbers of all queued batches in arrival order (*seqs malloc'ed). */
int vmfd_store_queued(sqlite3 *db, int64_t **seqs, size_t *n, char *err, size_t errsize);

/* Marks a batch rejected with its error (the model is unchanged). */
int vmfd_store_reject(sqlite3 *db, int64_t seq, const char *error, int64_t retention_days,
                      char *err, size_t errsize);

typedef struct vmfd_ckpt_info {
    int64_t id;       /* 0: none */
    int64_t last_seq; /* newest batch included */
    int64_t batches;  /* applied batches included */
} vmfd_ckpt_info;

/* Newest checkpoint (id 0 when there is none) and its model bytes (*blob malloc'ed). */
int vmfd_store_latest_checkpoint(sqlite3 *db, vmfd_ckpt_info *info, void **blob, size_t *len,
                                 char *err, size_t errsize);
/* A given checkpoint; returns 1 (no error) when it does not exist. */
int vmfd_store_get_checkpoint(sqlite3 *db, int64_t id, vmfd_ckpt_info *info, void **blob,
                              size_t *len, char *err, size_t errsize);

typedef struct vmfd_commit {
    const vmfd_model *model;
    const void *blob; /* vmfd_model_save bytes of model */
    size_t blob_len;
    const char *reason;     /* batch | manual | shutdown | restore */
    const int64_t *applied; /* batches to mark applied in this checkpoint */
    size_t n_applied;
    int64_t last_seq;        /* newest batch included */
    int64_t batches;         /* applied batches included in total */
    int64_t supersede_after; /* restore: batches with seq in (after, upto] ... */
    int64_t supersede_upto;  /* ... that are applied or queued become superseded (0: none) */
    int64_t restored_from;   /* restore: the checkpoint restored */
    double apply_ms;         /* time spent learning these batches */
    int64_t retention_days;
    uint64_t keep_checkpoints;
    int64_t *n_superseded; /* restore: receives the number of batches superseded (may be NULL) */
} vmfd_commit;

/*
 * One transaction: marks c->applied applied, writes the checkpoint, its classes
 * and components, supersedes a restore's range, prunes payloads and old
 * checkpoints. *id receives the new checkpoint id.
 */
int vmfd_store_commit(sqlite3 *db, const vmfd_commit *c, int64_t *id, double *write_ms, char *err,
                      size_t errsize);

/*
 * JSON texts for the API (malloc'ed); batch: returns 1 when the key is unknown.
 * A batch applied in the store but newer than visible_seq (the snapshot's) is
 * reported as queued.
 */
int vmfd_store_batch_json(sqlite3 *db, const char *key, int64_t visible_seq, char **json, char *err,
                          size_t errsize);
int vmfd_store_checkpoints_json(sqlite3 *db, char **json, char *err, size_t errsize);

/* Dimension and label kind of the newest queued or applied batch (0 / NONE if none). */
int vmfd_store_expected_shape(sqlite3 *db, size_t *dim, int *label_kind, char *err, size_t errsize);

typedef struct vmfd_store_counts {
    int64_t queued, applied, rejected, superseded;
    int64_t checkpoints;
    int64_t latest_checkpoint;
} vmfd_store_counts;
int vmfd_store_counts_get(sqlite3 *db, vmfd_store_counts *c, char *err, size_t errsize);

#endif
