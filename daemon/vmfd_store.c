/*
 * vmfd_store.c - every statement vmfd runs on an open vmfd.db: ingest,
 * the batch queue, checkpoints and the read-side answers. The schema and
 * opening the file are in vmfd_schema.c.
 *
 * Design notes. Batches are numbered by `seq`, the arrival order, which is
 * also the order in which they are applied. A batch is `queued` from the
 * moment its payload commits until the transaction that writes the
 * checkpoint including it marks it `applied`; so after a crash the newest
 * checkpoint plus the queued batches, re-applied in seq order, is exactly
 * the state that would have existed without the crash. Writers use
 * BEGIN IMMEDIATE so that lock waits happen at BEGIN, inside busy_timeout,
 * and never as SQLITE_BUSY on a later statement.
 */
#include "vmfd_store.h"

#include "vmfd_model.h"
#include "vmfd_store_sql.h"
#include "vmfd_store_views.h"
#include "vmfmm/mixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void rollback(sqlite3 *db)
{
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int vmfd_store_ingest(sqlite3 *db, const char *key, const vmfd_batch *b, const char *source,
                      vmfd_ingest_result *r, char *err, size_t errsize)
{
    sqlite3_stmt *st;
    char *labels = NULL;
    memset(r, 0, sizeof *r);
    if (b->label_kind != VMFD_LABELS_NONE) {
        labels = vmfd_batch_labels_json(b);
        if (!labels) {
            set_err(err, errsize, "out of memory encoding labels");
            return -1;
        }
    }
    if (exec(db, "BEGIN IMMEDIATE", err, errsize) != 0) {
        free(labels);
        return -1;
    }
    st = prep(db, "SELECT seq, sha256, status, rows FROM batches WHERE key = ?", err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->existed = 1;
        r->seq = sqlite3_column_int64(st, 0);
        r->conflict = strcmp((const char *)sqlite3_column_text(st, 1), b->sha256) != 0;
        snprintf(r->status, sizeof r->status, "%s", (const char *)sqlite3_column_text(st, 2));
        r->rows = sqlite3_column_int64(st, 3);
        sqlite3_finalize(st);
        free(labels);
        return exec(db, "COMMIT", err, errsize);
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    st = prep(db,
              "INSERT INTO batches(key, sha256, rows, dim, source, label_kind, status,"
              " received_at) VALUES(?, ?, ?, ?, ?, ?, 'queued', " NOW_SQL ")",
              err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)b->n);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)b->d);
    sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC);
    if (b->label_kind == VMFD_LABELS_NONE)
        sqlite3_bind_null(st, 6);
    else
        sqlite3_bind_text(st, 6, b->label_kind == VMFD_LABELS_INT ? "int" : "str", -1,
                          SQLITE_STATIC);
    if (step_done(db, st, err, errsize) != 0)
        goto fail;
    r->seq = sqlite3_last_insert_rowid(db);
    r->rows = (int64_t)b->n;
    snprintf(r->status, sizeof r->status, "queued");
    st = prep(db, "INSERT INTO batch_data(seq, x, labels) VALUES(?, ?, ?)", err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_blob64(st, 2, b->x, (sqlite3_uint64)(b->n * b->d * sizeof(float)), SQLITE_STATIC);
    if (labels)
        sqlite3_bind_text(st, 3, labels, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (step_done(db, st, err, errsize) != 0)
        goto fail;
    /* The same rows under another key are learned again: say so. */
    st = prep(db,
              "SELECT key FROM batches WHERE sha256 = ? AND seq < ?"
              " AND status IN ('queued','applied') ORDER BY seq LIMIT 1",
              err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, b->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->seq);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(r->same_content_as, sizeof r->same_content_as, "%s",
                 (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (exec(db, "COMMIT", err, errsize) != 0)
        goto fail;
    free(labels);
    return 0;
fail:;
    /* A full file system is its own answer (507), not a store failure. */
    int full = sqlite3_errcode(db) == SQLITE_FULL;
    rollback(db);
    free(labels);
    return full ? -2 : -1;
}

int vmfd_store_load_batch(sqlite3 *db, int64_t seq, vmfd_batch *out, char *key_out, size_t keysize,
                          char *err, size_t errsize)
{
    sqlite3_stmt *st = prep(db,
                            "SELECT b.key, b.rows, b.dim, d.x, d.labels, b.sha256 FROM batches b"
                            " JOIN batch_data d ON d.seq = b.seq WHERE b.seq = ?",
                            err, errsize);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, seq);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            set_err(err, errsize, "batch %lld has no payload", (long long)seq);
        else
            set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    if (key_out)
        snprintf(key_out, keysize, "%s", (const char *)sqlite3_column_text(st, 0));
    size_t n = (size_t)sqlite3_column_int64(st, 1);
    size_t d = (size_t)sqlite3_column_int64(st, 2);
    const void *x = sqlite3_column_blob(st, 3);
    size_t xlen = (size_t)sqlite3_column_bytes(st, 3);
    const char *labels = (const char *)sqlite3_column_text(st, 4);
    if (d == 0 || xlen != n * d * sizeof(float)) {
        set_err(err, errsize, "batch %lld: payload of %zu bytes for %zu x %zu rows", (long long)seq,
                xlen, n, d);
        sqlite3_finalize(st);
        return -1;
    }
    rc = vmfd_batch_from_store(x, n, d, labels, out, err, errsize);
    if (rc == 0) {
        /* A payload damaged on disk (a flipped bit SQLite's page format does
         * not notice) must never be learned: its hash is checked first. */
        const char *want = (const char *)sqlite3_column_text(st, 5);
        vmfd_batch_hash(out);
        if (!want || strcmp(want, out->sha256) != 0) {
            set_err(err, errsize,
                    "payload damaged: its sha256 %.16s... differs from the %.16s... stored at "
                    "ingest",
                    out->sha256, want ? want : "");
            vmfd_batch_free(out);
            rc = -1;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int vmfd_store_queued(sqlite3 *db, int64_t **seqs, size_t *n, char *err, size_t errsize)
{
    size_t cap = 16;
    *n = 0;
    *seqs = malloc(cap * sizeof **seqs);
    if (!*seqs) {
        set_err(err, errsize, "out of memory");
        return -1;
    }
    sqlite3_stmt *st =
        prep(db, "SELECT seq FROM batches WHERE status = 'queued' ORDER BY seq", err, errsize);
    if (!st) {
        free(*seqs);
        *seqs = NULL;
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            int64_t *p = realloc(*seqs, 2 * cap * sizeof *p);
            if (!p) {
                rc = SQLITE_NOMEM;
                break;
            }
            *seqs = p;
            cap *= 2;
        }
        (*seqs)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        free(*seqs);
        *seqs = NULL;
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

static int prune_payloads(sqlite3 *db, int64_t days, char *err, size_t errsize)
{
    char sql[256];
    if (days < 0)
        return 0;
    snprintf(sql, sizeof sql,
             "DELETE FROM batch_data WHERE seq IN (SELECT seq FROM batches WHERE status <> "
             "'queued' AND coalesce(applied_at, received_at) <= "
             "strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ','now','-%lld days'))",
             (long long)days);
    return exec(db, sql, err, errsize);
}

int vmfd_store_reject(sqlite3 *db, int64_t seq, const char *error, int64_t retention_days,
                      char *err, size_t errsize)
{
    if (exec(db, "BEGIN IMMEDIATE", err, errsize) != 0)
        return -1;
    sqlite3_stmt *st = prep(
        db,
        "UPDATE batches SET status = 'rejected', error = ?, applied_at = " NOW_SQL " WHERE seq = ?",
        err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    if (step_done(db, st, err, errsize) != 0 || prune_payloads(db, retention_days, err, errsize))
        goto fail;
    return exec(db, "COMMIT", err, errsize) == 0 ? 0 : (rollback(db), -1);
fail:
    rollback(db);
    return -1;
}

static int read_checkpoint(sqlite3_stmt *st, vmfd_ckpt_info *info, void **blob, size_t *len,
                           char *err, size_t errsize)
{
    info->id = sqlite3_column_int64(st, 0);
    info->last_seq = sqlite3_column_int64(st, 1);
    info->batches = sqlite3_column_int64(st, 2);
    if (blob) {
        size_t n = (size_t)sqlite3_column_bytes(st, 3);
        *blob = malloc(n ? n : 1);
        if (!*blob) {
            set_err(err, errsize, "out of memory for a %zu-byte checkpoint", n);
            return -1;
        }
        memcpy(*blob, sqlite3_column_blob(st, 3), n);
        *len = n;
    }
    return 0;
}

int vmfd_store_latest_checkpoint(sqlite3 *db, vmfd_ckpt_info *info, void **blob, size_t *len,
                                 char *err, size_t errsize)
{
    memset(info, 0, sizeof *info);
    if (blob) {
        *blob = NULL;
        *len = 0;
    }
    sqlite3_stmt *st = prep(db,
                            "SELECT id, last_seq, batches, model FROM checkpoints"
                            " ORDER BY id DESC LIMIT 1",
                            err, errsize);
    if (!st)
        return -1;
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW)
        out = read_checkpoint(st, info, blob, len, err, errsize);
    else if (rc != SQLITE_DONE) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        out = -1;
    }
    sqlite3_finalize(st);
    return out;
}

int vmfd_store_get_checkpoint(sqlite3 *db, int64_t id, vmfd_ckpt_info *info, void **blob,
                              size_t *len, char *err, size_t errsize)
{
    memset(info, 0, sizeof *info);
    sqlite3_stmt *st =
        prep(db, "SELECT id, last_seq, batches, model FROM checkpoints WHERE id = ?", err, errsize);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st), out = 1;
    if (rc == SQLITE_ROW)
        out = read_checkpoint(st, info, blob, len, err, errsize);
    else if (rc != SQLITE_DONE) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        out = -1;
    }
    sqlite3_finalize(st);
    return out;
}

/* Rewrites `classes` and adds this checkpoint's `components` rows. */
static int write_components(sqlite3 *db, const vmfd_model *m, int64_t ckpt, char *err,
                            size_t errsize)
{
    if (exec(db, "DELETE FROM classes", err, errsize) != 0)
        return -1;
    size_t nc = vmfd_model_n_groups(m), d = vmfd_model_dim(m), total = 0, at = 0;
    /* Every mean of the model in one array for the nearest-component cosines. */
    for (size_t i = 0; i < nc; i++) {
        const vmf_mixture *mx = vmfd_model_group_mixture(m, i);
        total += mx ? vmf_mixture_n_components(mx) : 0;
    }
    float *all = malloc((total ? total : 1) * (d ? d : 1) * sizeof *all);
    int64_t *gcls = malloc((total ? total : 1) * sizeof *gcls);
    int64_t *gcomp = malloc((total ? total : 1) * sizeof *gcomp);
    int64_t *near = malloc((total ? total : 1) * sizeof *near);
    double *ncos = malloc((total ? total : 1) * sizeof *ncos);
    if (!all || !gcls || !gcomp || !near || !ncos) {
        set_err(err, errsize, "out of memory for %zu components", total);
        free(all);
        free(gcls);
        free(gcomp);
        free(near);
        free(ncos);
        return -1;
    }
    for (size_t i = 0; i < nc; i++) {
        const vmf_mixture *mx = vmfd_model_group_mixture(m, i);
        size_t k = mx ? vmf_mixture_n_components(mx) : 0;
        for (size_t j = 0; j < k; j++, at++) {
            memcpy(all + at * d, vmf_mixture_means(mx) + j * d, d * sizeof *all);
            gcls[at] = (int64_t)i;
            gcomp[at] = (int64_t)j;
        }
    }
    at = 0;
    sqlite3_stmt *cs = NULL, *ps = NULL;
    if (vmfd_store_nearest(all, total, d, near, ncos) != 0) {
        set_err(err, errsize, "out of memory for the nearest components");
        goto fail;
    }
    cs = prep(db,
              "INSERT INTO classes(idx, label, prior, rows, components,"
              " checkpoint_id) VALUES(?, ?, ?, ?, ?, ?)",
              err, errsize);
    ps = prep(db,
              "INSERT INTO components(checkpoint_id, class_idx, component, weight,"
              " kappa, mean, s0, s1, label, nearest_class, nearest_component,"
              " nearest_cos) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              err, errsize);
    if (!cs || !ps)
        goto fail;
    for (size_t i = 0; i < nc; i++) {
        char label[4097]; /* the longest label max_label_bytes allows, in full */
        const vmf_mixture *mx = vmfd_model_group_mixture(m, i);
        size_t k = mx ? vmf_mixture_n_components(mx) : 0;
        vmfd_model_group_label(m, i, label, sizeof label);
        sqlite3_bind_int64(cs, 1, (sqlite3_int64)i);
        sqlite3_bind_text(cs, 2, label, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(cs, 3, vmfd_model_group_prior(m, i));
        sqlite3_bind_int64(cs, 4, (sqlite3_int64)vmfd_model_group_rows(m, i));
        sqlite3_bind_int64(cs, 5, (sqlite3_int64)k);
        sqlite3_bind_int64(cs, 6, ckpt);
        if (sqlite3_step(cs) != SQLITE_DONE) {
            set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
            goto fail;
        }
        sqlite3_reset(cs);
        if (!mx)
            continue;
        const double *w = vmf_mixture_weights(mx), *kap = vmf_mixture_kappas(mx);
        const float *mu = vmf_mixture_means(mx);
        const double *s0 = vmfd_model_group_s0(m, i), *s1 = vmfd_model_group_s1(m, i);
        for (size_t j = 0; j < k; j++) {
            sqlite3_bind_int64(ps, 1, ckpt);
            sqlite3_bind_int64(ps, 2, (sqlite3_int64)i);
            sqlite3_bind_int64(ps, 3, (sqlite3_int64)j);
            sqlite3_bind_double(ps, 4, w[j]);
            sqlite3_bind_double(ps, 5, kap[j]);
            sqlite3_bind_blob64(ps, 6, mu + j * d, d * sizeof(float), SQLITE_STATIC);
            if (s0)
                sqlite3_bind_double(ps, 7, s0[j]);
            else
                sqlite3_bind_null(ps, 7);
            if (s1)
                sqlite3_bind_blob64(ps, 8, s1 + j * d, d * sizeof(double), SQLITE_STATIC);
            else
                sqlite3_bind_null(ps, 8);
            sqlite3_bind_text(ps, 9, label, -1, SQLITE_TRANSIENT);
            if (near[at] >= 0) {
                sqlite3_bind_int64(ps, 10, gcls[near[at]]);
                sqlite3_bind_int64(ps, 11, gcomp[near[at]]);
                sqlite3_bind_double(ps, 12, ncos[at]);
            } else {
                sqlite3_bind_null(ps, 10);
                sqlite3_bind_null(ps, 11);
                sqlite3_bind_null(ps, 12);
            }
            at++;
            if (sqlite3_step(ps) != SQLITE_DONE) {
                set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
                goto fail;
            }
            sqlite3_reset(ps);
        }
    }
    sqlite3_finalize(cs);
    sqlite3_finalize(ps);
    free(all);
    free(gcls);
    free(gcomp);
    free(near);
    free(ncos);
    return 0;
fail:
    sqlite3_finalize(cs);
    sqlite3_finalize(ps);
    free(all);
    free(gcls);
    free(gcomp);
    free(near);
    free(ncos);
    return -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int vmfd_store_commit(sqlite3 *db, const vmfd_commit *c, int64_t *id, double *write_ms, char *err,
                      size_t errsize)
{
    double t0 = now_ms();
    sqlite3_stmt *st;
    if (exec(db, "BEGIN IMMEDIATE", err, errsize) != 0)
        return -1;
    st = prep(db,
              "INSERT INTO checkpoints(created_at, reason, last_seq, batches, rows_seen,"
              " n_classes, dim, apply_ms, model_bytes, model)"
              " VALUES(" NOW_SQL ", ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              err, errsize);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, c->reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->last_seq);
    sqlite3_bind_int64(st, 3, c->batches);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)vmfd_model_rows_seen(c->model));
    sqlite3_bind_int64(st, 5, (sqlite3_int64)vmfd_model_n_labels(c->model));
    sqlite3_bind_int64(st, 6, (sqlite3_int64)vmfd_model_dim(c->model));
    sqlite3_bind_double(st, 7, c->apply_ms);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)c->blob_len);
    sqlite3_bind_blob64(st, 9, c->blob, c->blob_len, SQLITE_STATIC);
    if (step_done(db, st, err, errsize) != 0)
        goto fail;
    *id = sqlite3_last_insert_rowid(db);
    if (c->n_applied) {
        st = prep(db,
                  "UPDATE batches SET status = 'applied', applied_at = " NOW_SQL
                  ", checkpoint_id = ? WHERE seq = ? AND status = 'queued'",
                  err, errsize);
        if (!st)
            goto fail;
        for (size_t i = 0; i < c->n_applied; i++) {
            sqlite3_bind_int64(st, 1, *id);
            sqlite3_bind_int64(st, 2, c->applied[i]);
            if (sqlite3_step(st) != SQLITE_DONE) {
                set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
                sqlite3_finalize(st);
                goto fail;
            }
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    if (c->supersede_upto > c->supersede_after) {
        st = prep(db,
                  "UPDATE batches SET status = 'superseded', checkpoint_id = ?,"
                  " error = 'rolled back by restore to checkpoint ' || ?"
                  " WHERE seq > ? AND seq <= ? AND status IN ('applied','queued')",
                  err, errsize);
        if (!st)
            goto fail;
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int64(st, 2, c->restored_from);
        sqlite3_bind_int64(st, 3, c->supersede_after);
        sqlite3_bind_int64(st, 4, c->supersede_upto);
        if (step_done(db, st, err, errsize) != 0)
            goto fail;
        if (c->n_superseded)
            *c->n_superseded = sqlite3_changes64(db);
    }
    if (write_components(db, c->model, *id, err, errsize) != 0)
        goto fail;
    if (prune_payloads(db, c->retention_days, err, errsize) != 0)
        goto fail;
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id "
             "DESC LIMIT %llu); DELETE FROM components WHERE checkpoint_id NOT IN (SELECT id "
             "FROM checkpoints);",
             (unsigned long long)c->keep_checkpoints);
    if (exec(db, sql, err, errsize) != 0)
        goto fail;
    if (exec(db, "COMMIT", err, errsize) != 0)
        goto fail;
    if (write_ms)
        *write_ms = now_ms() - t0;
    return 0;
fail:
    rollback(db);
    return -1;
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, i));
    case SQLITE_TEXT:
        return json_string((const char *)sqlite3_column_text(st, i));
    default:
        return json_null();
    }
}

/* Every row of a query as a JSON object keyed by column name. */
static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    for (int i = 0; o && i < sqlite3_column_count(st); i++)
        json_object_set_new(o, sqlite3_column_name(st, i), col_json(st, i));
    return o;
}

int vmfd_store_batch_json(sqlite3 *db, const char *key, int64_t visible_seq, char **json, char *err,
                          size_t errsize)
{
    *json = NULL;
    /* "applied" is reported once predictions see the batch: the worker commits
     * first and publishes its snapshot a moment later on the loop thread. */
    sqlite3_stmt *st = prep(db,
                            "SELECT key, CASE WHEN status = 'applied' AND seq > ?2 THEN 'queued'"
                            " ELSE status END AS status, rows, dim, label_kind, sha256, source,"
                            " seq, received_at, applied_at, checkpoint_id, error,"
                            " (SELECT o.key FROM batches o WHERE o.sha256 = b.sha256"
                            "  AND o.seq < b.seq AND o.status IN ('queued','applied')"
                            "  ORDER BY o.seq LIMIT 1) AS same_content_as"
                            " FROM batches b WHERE key = ?1",
                            err, errsize);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, visible_seq);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 1;
    }
    if (rc != SQLITE_ROW) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    json_t *o = row_json(st);
    sqlite3_finalize(st);
    *json = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!*json) {
        set_err(err, errsize, "out of memory");
        return -1;
    }
    return 0;
}

int vmfd_store_checkpoints_json(sqlite3 *db, char **json, char *err, size_t errsize)
{
    *json = NULL;
    sqlite3_stmt *st = prep(db,
                            "SELECT id, created_at, reason, last_seq, batches, rows_seen,"
                            " n_classes, dim, apply_ms, model_bytes FROM checkpoints"
                            " ORDER BY id DESC",
                            err, errsize);
    if (!st)
        return -1;
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_json(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        json_decref(arr);
        return -1;
    }
    json_t *o = json_pack("{s:o}", "checkpoints", arr);
    *json = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!*json) {
        set_err(err, errsize, "out of memory");
        return -1;
    }
    return 0;
}

int vmfd_store_counts_get(sqlite3 *db, vmfd_store_counts *c, char *err, size_t errsize)
{
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st =
        prep(db, "SELECT status, count(*) FROM batches GROUP BY status", err, errsize);
    if (!st)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        int64_t n = sqlite3_column_int64(st, 1);
        if (strcmp(s, "queued") == 0)
            c->queued = n;
        else if (strcmp(s, "applied") == 0)
            c->applied = n;
        else if (strcmp(s, "rejected") == 0)
            c->rejected = n;
        else if (strcmp(s, "superseded") == 0)
            c->superseded = n;
    }
    sqlite3_finalize(st);
    st = prep(db, "SELECT count(*), coalesce(max(id), 0) FROM checkpoints", err, errsize);
    if (!st)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        c->checkpoints = sqlite3_column_int64(st, 0);
        c->latest_checkpoint = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return 0;
}

int vmfd_store_expected_shape(sqlite3 *db, size_t *dim, int *label_kind, char *err, size_t errsize)
{
    *dim = 0;
    *label_kind = VMFD_LABELS_NONE;
    sqlite3_stmt *st = prep(db,
                            "SELECT dim, label_kind FROM batches WHERE status IN"
                            " ('queued','applied') ORDER BY seq DESC LIMIT 1",
                            err, errsize);
    if (!st)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 1);
        *dim = (size_t)sqlite3_column_int64(st, 0);
        if (k)
            *label_kind = strcmp(k, "int") == 0 ? VMFD_LABELS_INT : VMFD_LABELS_STR;
    }
    sqlite3_finalize(st);
    return 0;
}
