/*
 * vmfd_store_views.c - the readable side of vmfd.db (see vmfd_store_views.h).
 *
 * Design notes. The views decode the float32 mean BLOBs in SQL (F32_AT
 * below: hex digits to the 32-bit pattern, then sign, exponent and
 * mantissa to a double, exactly), so nothing is written twice: printing
 * 512,000 coordinates with "%.9g" at every checkpoint took 0.7 s on this
 * machine, against nothing for a view that decodes only when asked (about
 * 10 microseconds per coordinate). The nearest-component cosines cannot be
 * had in SQL at a sane cost; they are one blocked SGEMM of the means
 * against themselves per checkpoint (1,000 components of dimension 512:
 * 0.5 GFLOP, tens of milliseconds).
 */
#include "vmfd_store_views.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The float32 at byte offset `off` of the BLOB `blob` (SQL expressions), as
 * an exact REAL: little-endian bytes from hex(), u = the 32-bit pattern,
 * e its exponent, m its mantissa. Values below 2^-124 in magnitude
 * (denormals included) read as 0.0; Inf and NaN as NULL. Powers of two
 * beyond 2^62 are split into several factors, each exact.
 */
/* clang-format off */
#define HEXDIGIT(pos) "(instr('0123456789ABCDEF', substr(h, " pos ", 1)) - 1)"
#define F32_AT(blob, off)                                                                        \
    "(SELECT CASE WHEN e = 255 THEN NULL WHEN e < 3 THEN 0.0"                                     \
    " WHEN e >= 252 THEN s * (1.0 + m / 8388608.0) * 4611686018427387904.0"                       \
    "  * 4611686018427387904.0 * (1 << (e - 251))"                                                \
    " WHEN e >= 190 THEN s * (1.0 + m / 8388608.0) * 4611686018427387904.0 * (1 << (e - 189))"    \
    " WHEN e >= 127 THEN s * (1.0 + m / 8388608.0) * (1 << (e - 127))"                            \
    " WHEN e >= 65 THEN s * (1.0 + m / 8388608.0) / (1 << (127 - e))"                             \
    " ELSE s * (1.0 + m / 8388608.0) / 4611686018427387904.0 / (1 << (65 - e)) END"               \
    " FROM (SELECT (u >> 23) & 255 AS e, u & 8388607 AS m,"                                       \
    " CASE WHEN u >> 31 THEN -1.0 ELSE 1.0 END AS s FROM (SELECT "                                \
    HEXDIGIT("1") " * 16 + " HEXDIGIT("2")                                                        \
    " + (" HEXDIGIT("3") " * 16 + " HEXDIGIT("4") ") * 256"                                       \
    " + (" HEXDIGIT("5") " * 16 + " HEXDIGIT("6") ") * 65536"                                     \
    " + (" HEXDIGIT("7") " * 16 + " HEXDIGIT("8") ") * 16777216 AS u"                             \
    " FROM (SELECT hex(substr(" blob ", " off " + 1, 4)) AS h))))"
/* clang-format on */

/* Each statement is its own literal (C99 guarantees 4095 characters per literal). */
/* clang-format off */
static const char *const views_sql[] = {
    "CREATE INDEX IF NOT EXISTS batches_sha256 ON batches(sha256);",
    "DROP VIEW IF EXISTS latest_components;",
    "DROP VIEW IF EXISTS component_summary;",
    "DROP VIEW IF EXISTS component_means;",
    "DROP VIEW IF EXISTS checkpoint_summary;",
    "DROP VIEW IF EXISTS batches_per_day;",
    /* One row per component of every kept checkpoint, nothing binary. */
    "CREATE VIEW component_summary AS"
    " SELECT c.checkpoint_id, c.class_idx, c.label, c.component,"
    "  round(c.weight, 4) AS weight, round(c.kappa, 1) AS kappa,"
    "  length(c.mean) / 4 AS dim,"
    "  (WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k"
    "     WHERE i + 1 < min(4, length(c.mean) / 4))"
    "   SELECT '[' || group_concat(printf('%.4f', " F32_AT("c.mean", "4 * k.i") "), ', ')"
    "    || CASE WHEN length(c.mean) > 16 THEN ', ...]' ELSE ']' END FROM k) AS mean_head,"
    "  n.label || ':' || n.component AS nearest,"
    "  round(c.nearest_cos, 4) AS nearest_cos,"
    "  round(c.s0, 2) AS s0"
    " FROM components c LEFT JOIN components n ON n.checkpoint_id = c.checkpoint_id"
    "  AND n.class_idx = c.nearest_class AND n.component = c.nearest_component;",
    "CREATE VIEW latest_components AS"
    " SELECT * FROM component_summary"
    " WHERE checkpoint_id = (SELECT max(id) FROM checkpoints);",
    /* The full means as JSON arrays of their exact float32 values. */
    "CREATE VIEW component_means AS"
    " SELECT c.checkpoint_id, c.class_idx, c.label, c.component,"
    "  (WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k"
    "     WHERE i + 1 < length(c.mean) / 4)"
    "   SELECT json_group_array(" F32_AT("c.mean", "4 * k.i") ") FROM k) AS mean"
    " FROM components c;",
    "CREATE VIEW checkpoint_summary AS"
    " SELECT k.id, k.created_at, k.reason, k.batches, k.rows_seen, k.n_classes AS classes,"
    "  count(c.component) AS components, round(min(c.kappa), 1) AS kappa_min,"
    "  round(max(c.kappa), 1) AS kappa_max, round(max(c.nearest_cos), 4) AS max_nearest_cos"
    " FROM checkpoints k LEFT JOIN components c ON c.checkpoint_id = k.id"
    " GROUP BY k.id ORDER BY k.id;",
    "CREATE VIEW batches_per_day AS"
    " SELECT substr(received_at, 1, 10) AS day, count(*) AS batches, sum(rows) AS rows,"
    "  sum(status = 'applied') AS applied, sum(status = 'rejected') AS rejected,"
    "  sum(status = 'superseded') AS superseded, sum(status = 'queued') AS queued"
    " FROM batches GROUP BY day ORDER BY day;",
};
/* clang-format on */

int vmfd_store_create_views(sqlite3 *db, char *err, size_t errsize)
{
    for (size_t i = 0; i < sizeof views_sql / sizeof views_sql[0]; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db, views_sql[i], NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errsize, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
            sqlite3_free(msg);
            return -1;
        }
    }
    return 0;
}

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
                           "UPDATE components SET nearest_class = ?, nearest_component = ?,"
                           " nearest_cos = ? WHERE checkpoint_id = ? AND class_idx = ?"
                           " AND component = ?",
                           -1, &up, NULL) != SQLITE_OK)
        goto sql_fail;
    for (size_t i = 0; i < k; i++) {
        if (near[i] >= 0) {
            sqlite3_bind_int64(up, 1, cls[near[i]]);
            sqlite3_bind_int64(up, 2, comp[near[i]]);
            sqlite3_bind_double(up, 3, cs[i]);
        } else {
            sqlite3_bind_null(up, 1);
            sqlite3_bind_null(up, 2);
            sqlite3_bind_null(up, 3);
        }
        sqlite3_bind_int64(up, 4, ckpt);
        sqlite3_bind_int64(up, 5, cls[i]);
        sqlite3_bind_int64(up, 6, comp[i]);
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
                              "ALTER TABLE components ADD COLUMN nearest_class INTEGER;"
                              "ALTER TABLE components ADD COLUMN nearest_component INTEGER;"
                              "ALTER TABLE components ADD COLUMN nearest_cos REAL;"
                              /* Version 1 kept only the newest checkpoint's class table;
                               * class indices only grow, so it labels the older ones too. */
                              "UPDATE components SET label ="
                              " (SELECT label FROM classes WHERE idx = components.class_idx);";
    char *msg = NULL;
    if (sqlite3_exec(db, add, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errsize, "migrating from schema version 1: %s",
                msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    if (vmfd_store_create_views(db, err, errsize) != 0)
        return -1;
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
