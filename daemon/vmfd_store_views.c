/*
 * vmfd_store_views.c - the readable side of vmfd.db (see vmfd_store_views.h).
 *
 * Design notes. SQLite cannot decode a float32 BLOB by itself, so the
 * daemon writes the decoded mean as JSON text beside the BLOB when it
 * writes a checkpoint, and the views read that text with SQLite's JSON
 * functions (built into the library since 3.38). The BLOBs stay the exact
 * state; the text is for people. The nearest-component cosines are one
 * blocked SGEMM of the means against themselves per checkpoint, a few
 * milliseconds for 1,000 components of dimension 512.
 */
#include "vmfd_store_views.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char vmfd_store_views_sql[] =
    "CREATE INDEX IF NOT EXISTS batches_sha256 ON batches(sha256);"
    "DROP VIEW IF EXISTS latest_components;"
    "DROP VIEW IF EXISTS component_summary;"
    "DROP VIEW IF EXISTS component_means;"
    "DROP VIEW IF EXISTS checkpoint_summary;"
    "DROP VIEW IF EXISTS batches_per_day;"
    /* One row per component of every kept checkpoint, nothing binary. */
    "CREATE VIEW component_summary AS"
    " SELECT c.checkpoint_id, c.class_idx, c.label, c.component,"
    "        round(c.weight, 4) AS weight, round(c.kappa, 1) AS kappa,"
    "        length(c.mean) / 4 AS dim,"
    "        (SELECT '[' || group_concat(printf('%.4f', e.value), ', ')"
    "                || CASE WHEN json_array_length(c.mean_json) > 4 THEN ', ...]' ELSE ']' END"
    "         FROM json_each(c.mean_json) e WHERE e.key < 4) AS mean_head,"
    "        n.label || ':' || n.component AS nearest,"
    "        round(c.nearest_cos, 4) AS nearest_cos,"
    "        round(c.s0, 2) AS s0"
    " FROM components c LEFT JOIN components n ON n.checkpoint_id = c.checkpoint_id"
    "   AND n.class_idx = c.nearest_class AND n.component = c.nearest_component;"
    "CREATE VIEW latest_components AS"
    " SELECT * FROM component_summary"
    " WHERE checkpoint_id = (SELECT max(id) FROM checkpoints);"
    /* The full means, as JSON arrays (9 significant digits: the float32 bits). */
    "CREATE VIEW component_means AS"
    " SELECT checkpoint_id, class_idx, label, component, mean_json AS mean FROM components;"
    "CREATE VIEW checkpoint_summary AS"
    " SELECT k.id, k.created_at, k.reason, k.batches, k.rows_seen, k.n_classes AS classes,"
    "        count(c.component) AS components, round(min(c.kappa), 1) AS kappa_min,"
    "        round(max(c.kappa), 1) AS kappa_max, round(max(c.nearest_cos), 4) AS max_nearest_cos"
    " FROM checkpoints k LEFT JOIN components c ON c.checkpoint_id = k.id"
    " GROUP BY k.id ORDER BY k.id;"
    "CREATE VIEW batches_per_day AS"
    " SELECT substr(received_at,1,10) AS day, count(*) AS batches, sum(rows) AS rows,"
    "        sum(status='applied') AS applied, sum(status='rejected') AS rejected,"
    "        sum(status='superseded') AS superseded, sum(status='queued') AS queued"
    " FROM batches GROUP BY day ORDER BY day;";

static void set_err(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

#define NEAREST_BLOCK 256

int vmfd_store_nearest(const float *means, size_t k, size_t d, int64_t *nearest, double *cos)
{
    for (size_t i = 0; i < k; i++) {
        nearest[i] = -1;
        cos[i] = NAN;
    }
    if (k < 2 || d == 0)
        return 0;
    size_t rows = k < NEAREST_BLOCK ? k : NEAREST_BLOCK;
    float *g = malloc(rows * k * sizeof *g);
    if (!g)
        return -1;
    for (size_t i0 = 0; i0 < k; i0 += rows) {
        size_t b = k - i0 < rows ? k - i0 : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)k, (int)d, 1.0f,
                    means + i0 * d, (int)d, means, (int)d, 0.0f, g, (int)k);
        for (size_t r = 0; r < b; r++) {
            const float *row = g + r * k;
            for (size_t j = 0; j < k; j++) {
                if (j == i0 + r)
                    continue;
                if (nearest[i0 + r] < 0 || (double)row[j] > cos[i0 + r]) {
                    nearest[i0 + r] = (int64_t)j;
                    cos[i0 + r] = (double)row[j];
                }
            }
        }
    }
    free(g);
    return 0;
}

char *vmfd_store_vector_json(const float *v, size_t d)
{
    size_t cap = d * 18 + 3, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[len++] = '[';
    for (size_t j = 0; j < d; j++)
        len += (size_t)snprintf(s + len, cap - len, "%s%.9g", j ? "," : "", (double)v[j]);
    s[len++] = ']';
    s[len] = '\0';
    return s;
}

/* Fills the readable columns of one checkpoint's components from their BLOBs. */
static int fill_checkpoint(sqlite3 *db, int64_t ckpt, char *err, size_t errsize)
{
    sqlite3_stmt *st = NULL, *up = NULL;
    float *means = NULL;
    int64_t *cls = NULL, *comp = NULL, *near = NULL;
    double *cs = NULL;
    size_t k = 0, cap = 0, d = 0;
    int out = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT class_idx, component, mean FROM components"
                           " WHERE checkpoint_id = ? ORDER BY class_idx, component",
                           -1, &st, NULL) != SQLITE_OK)
        goto sql_fail;
    sqlite3_bind_int64(st, 1, ckpt);
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t bytes = (size_t)sqlite3_column_bytes(st, 2);
        if (k == 0)
            d = bytes / sizeof(float);
        if (bytes != d * sizeof(float) || d == 0) {
            set_err(err, errsize, "checkpoint %lld: means of different sizes", (long long)ckpt);
            goto fail;
        }
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            float *m2 = realloc(means, cap * d * sizeof *m2);
            int64_t *c2 = m2 ? realloc(cls, cap * sizeof *c2) : NULL;
            if (c2)
                cls = c2;
            int64_t *p2 = c2 ? realloc(comp, cap * sizeof *p2) : NULL;
            if (p2)
                comp = p2;
            if (m2)
                means = m2;
            if (!m2 || !c2 || !p2) {
                set_err(err, errsize, "out of memory");
                goto fail;
            }
        }
        memcpy(means + k * d, sqlite3_column_blob(st, 2), d * sizeof(float));
        cls[k] = sqlite3_column_int64(st, 0);
        comp[k] = sqlite3_column_int64(st, 1);
        k++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (k == 0)
        return 0;
    near = malloc(k * sizeof *near);
    cs = malloc(k * sizeof *cs);
    if (!near || !cs || vmfd_store_nearest(means, k, d, near, cs) != 0) {
        set_err(err, errsize, "out of memory");
        goto fail;
    }
    if (sqlite3_prepare_v2(db,
                           "UPDATE components SET mean_json = ?, nearest_class = ?,"
                           " nearest_component = ?, nearest_cos = ?"
                           " WHERE checkpoint_id = ? AND class_idx = ? AND component = ?",
                           -1, &up, NULL) != SQLITE_OK)
        goto sql_fail;
    for (size_t i = 0; i < k; i++) {
        char *js = vmfd_store_vector_json(means + i * d, d);
        if (!js) {
            set_err(err, errsize, "out of memory");
            goto fail;
        }
        sqlite3_bind_text(up, 1, js, -1, free);
        if (near[i] >= 0) {
            sqlite3_bind_int64(up, 2, cls[near[i]]);
            sqlite3_bind_int64(up, 3, comp[near[i]]);
            sqlite3_bind_double(up, 4, cs[i]);
        } else {
            sqlite3_bind_null(up, 2);
            sqlite3_bind_null(up, 3);
            sqlite3_bind_null(up, 4);
        }
        sqlite3_bind_int64(up, 5, ckpt);
        sqlite3_bind_int64(up, 6, cls[i]);
        sqlite3_bind_int64(up, 7, comp[i]);
        if (sqlite3_step(up) != SQLITE_DONE)
            goto sql_fail;
        sqlite3_reset(up);
    }
    out = 0;
    goto fail;
sql_fail:
    set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
fail:
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    free(means);
    free(cls);
    free(comp);
    free(near);
    free(cs);
    return out;
}

int vmfd_store_migrate_v1(sqlite3 *db, char *err, size_t errsize)
{
    static const char add[] = "ALTER TABLE components ADD COLUMN label TEXT;"
                              "ALTER TABLE components ADD COLUMN mean_json TEXT;"
                              "ALTER TABLE components ADD COLUMN nearest_class INTEGER;"
                              "ALTER TABLE components ADD COLUMN nearest_component INTEGER;"
                              "ALTER TABLE components ADD COLUMN nearest_cos REAL;"
                              /* Version 1 kept only the newest checkpoint's class table;
                               * class indices only grow, so it labels the older ones too. */
                              "UPDATE components SET label ="
                              " (SELECT label FROM classes WHERE idx = components.class_idx);";
    char *msg = NULL;
    if (sqlite3_exec(db, add, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, vmfd_store_views_sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errsize, "migrating from schema version 1: %s",
                msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id FROM checkpoints ORDER BY id", -1, &st, NULL) !=
        SQLITE_OK) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (fill_checkpoint(db, sqlite3_column_int64(st, 0), err, errsize) != 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int vmfd_store_export_checkpoint(sqlite3 *db, const vmfd_model_opts *o, int64_t id, int64_t *id_out,
                                 char **json, char *err, size_t errsize)
{
    sqlite3_stmt *st = NULL;
    *json = NULL;
    *id_out = 0;
    if (sqlite3_prepare_v2(db,
                           id > 0 ? "SELECT id, model FROM checkpoints WHERE id = ?"
                                  : "SELECT id, model FROM checkpoints ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (id > 0)
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        if (id > 0)
            set_err(err, errsize, "no checkpoint %lld (pruned or never written)", (long long)id);
        else
            set_err(err, errsize, "no checkpoint yet");
        return 1;
    }
    if (rc != SQLITE_ROW) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    *id_out = sqlite3_column_int64(st, 0);
    vmfd_model *m = NULL;
    int out = 0;
    if (vmfd_model_load(o, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), &m) !=
            VMF_OK ||
        vmfd_model_to_json(m, json) != VMF_OK) {
        set_err(err, errsize, "checkpoint %lld: %s", (long long)*id_out, vmf_last_error());
        out = -1;
    }
    vmfd_model_free(m);
    sqlite3_finalize(st);
    return out;
}
