/*
 * vmfd_schema.c - the database file vmfd.db: its schema, creating it,
 * opening connections, checking the schema version and migrating older
 * files, recovering from a stale WAL, the read-only snapshot and the
 * integrity check. The statements vmfd runs on an open database are in
 * vmfd_store.c.
 */
#include "vmfd_store.h"
#include "vmfd_store_sql.h"
#include "vmfd_store_views.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS batches("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " key TEXT NOT NULL UNIQUE,"
    " sha256 TEXT NOT NULL,"
    " rows INTEGER NOT NULL,"
    " dim INTEGER NOT NULL,"
    " label_kind TEXT CHECK(label_kind IN ('int','str')),"
    " source TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK(status IN ('queued','applied','rejected','superseded')),"
    " received_at TEXT NOT NULL,"
    " applied_at TEXT,"
    " checkpoint_id INTEGER,"
    " error TEXT);"
    "CREATE INDEX IF NOT EXISTS batches_status ON batches(status, seq);"
    "CREATE TABLE IF NOT EXISTS batch_data("
    " seq INTEGER PRIMARY KEY REFERENCES batches(seq),"
    " x BLOB NOT NULL,"
    " labels TEXT);"
    "CREATE TABLE IF NOT EXISTS checkpoints("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created_at TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " last_seq INTEGER NOT NULL,"
    " batches INTEGER NOT NULL,"
    " rows_seen INTEGER NOT NULL,"
    " n_classes INTEGER NOT NULL,"
    " dim INTEGER NOT NULL,"
    " apply_ms REAL NOT NULL,"
    " model_bytes INTEGER NOT NULL,"
    " model BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS classes("
    " idx INTEGER PRIMARY KEY,"
    " label TEXT NOT NULL,"
    " prior REAL NOT NULL,"
    " rows INTEGER NOT NULL,"
    " components INTEGER NOT NULL,"
    " checkpoint_id INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS components("
    " checkpoint_id INTEGER NOT NULL,"
    " class_idx INTEGER NOT NULL,"
    " component INTEGER NOT NULL,"
    " weight REAL NOT NULL,"
    " kappa REAL NOT NULL,"
    " mean BLOB NOT NULL,"
    " s0 REAL,"
    " s1 BLOB,"
    " label TEXT,"
    " nearest_class INTEGER,"
    " nearest_component INTEGER,"
    " nearest_cos REAL,"
    " PRIMARY KEY(checkpoint_id, class_idx, component)) WITHOUT ROWID;";
/* The views (latest_components, component_summary, ...) are in vmfd_store_views.c. */

int vmfd_store_open(const char *path, int create, int readonly, sqlite3 **out, char *err,
                    size_t errsize)
{
    sqlite3 *db = NULL;
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    *out = NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        set_err(err, errsize, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    if (!readonly) {
        if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err, errsize) != 0)
            goto fail;
    }
    if (create) {
        int64_t app = pragma_int(db, "PRAGMA application_id");
        int64_t ver = pragma_int(db, "PRAGMA user_version");
        if (ver == 0 && app == 0) {
            char sql[128];
            if (exec(db, "BEGIN IMMEDIATE", err, errsize) != 0)
                goto fail;
            snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                     VMFD_STORE_APP_ID, VMFD_STORE_VERSION);
            if (exec(db, schema_sql, err, errsize) != 0 ||
                vmfd_store_create_views(db, err, errsize) != 0 ||
                exec(db, sql, err, errsize) != 0 || exec(db, "COMMIT", err, errsize) != 0) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
        } else if (ver == 1 && app == VMFD_STORE_APP_ID && !readonly) {
            /* Schema 2 added the readable component columns and views. */
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", VMFD_STORE_VERSION);
            if (exec(db, "BEGIN IMMEDIATE", err, errsize) != 0)
                goto fail;
            if (pragma_int(db, "PRAGMA user_version") == 1 &&
                (vmfd_store_migrate_v1(db, err, errsize) != 0 ||
                 exec(db, sql, err, errsize) != 0)) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
            if (exec(db, "COMMIT", err, errsize) != 0) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                goto fail;
            }
        }
    }
    int64_t app = pragma_int(db, "PRAGMA application_id");
    int64_t ver = pragma_int(db, "PRAGMA user_version");
    if (app != VMFD_STORE_APP_ID) {
        set_err(err, errsize, "%s is not a vmfd database (application_id %lld)", path,
                (long long)app);
        goto fail;
    }
    /* A reader (an offline export) needs only the checkpoints, the same in version 1. */
    if (ver != VMFD_STORE_VERSION && !(readonly && ver == 1)) {
        set_err(err, errsize, "%s has schema version %lld, this vmfd knows %d", path,
                (long long)ver, VMFD_STORE_VERSION);
        goto fail;
    }
    *out = db;
    return 0;
fail:
    sqlite3_close(db);
    return -1;
}

void vmfd_store_close(sqlite3 *db)
{
    if (db)
        sqlite3_close(db);
}

/* fsyncs a file or directory by path (best effort for directories). */
static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Builds a new store at path.init, then renames it to path. */
static int init_store(const char *path, char *err, size_t errsize)
{
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof tmp, "%s.init", path);
    unlink(tmp);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        set_err(err, errsize, "cannot create %s: %s", tmp, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
             VMFD_STORE_APP_ID, VMFD_STORE_VERSION);
    int rc = exec(db, "PRAGMA synchronous=FULL; BEGIN IMMEDIATE", err, errsize);
    if (rc == 0)
        rc = exec(db, schema_sql, err, errsize);
    if (rc == 0)
        rc = vmfd_store_create_views(db, err, errsize);
    if (rc == 0)
        rc = exec(db, sql, err, errsize);
    if (rc == 0)
        rc = exec(db, "COMMIT", err, errsize);
    if (sqlite3_close(db) != SQLITE_OK && rc == 0) {
        set_err(err, errsize, "cannot close %s", tmp);
        rc = -1;
    }
    if (rc == 0 && (fsync_path(tmp, 0) != 0 || rename(tmp, path) != 0)) {
        set_err(err, errsize, "cannot install %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    fsync_path(slash ? dir : ".", 1);
    return 0;
}

/*
 * A -wal file without its database (vmfd.db deleted or moved away): SQLite
 * would replay its pages into a new database. 1 when one exists with data.
 */
static int stale_wal(const char *path)
{
    char wal[4200];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", path);
    return stat(wal, &st) == 0 && st.st_size > 0;
}

/* --init: the old -wal and -shm go with the old database. */
static void drop_wal(const char *path)
{
    char f[4200];
    snprintf(f, sizeof f, "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof f, "%s-shm", path);
    unlink(f);
}

int vmfd_store_prepare(const char *path, int allow_init, int *created, char *err, size_t errsize)
{
    struct stat st;
    *created = 0;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            set_err(err, errsize, "cannot stat %s: %s", path, strerror(errno));
            return -1;
        }
        if (stale_wal(path)) {
            if (!allow_init) {
                set_err(err, errsize,
                        "%s is missing but its -wal file is not: the database was deleted or "
                        "moved; put it back, or start once with --init to begin a new store "
                        "(the -wal is removed)",
                        path);
                return -1;
            }
            drop_wal(path);
        }
        if (init_store(path, err, errsize) != 0)
            return -1;
        *created = 1;
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errsize, "%s is not a regular file", path);
        return -1;
    }
    if (st.st_size == 0) {
        if (!allow_init) {
            set_err(err, errsize,
                    "%s is empty (0 bytes): the store was truncated or replaced; restore it from "
                    "a backup, or start once with --init to begin a new, empty store",
                    path);
            return -1;
        }
        drop_wal(path);
        if (unlink(path) != 0 || init_store(path, err, errsize) != 0) {
            if (!err[0])
                set_err(err, errsize, "cannot replace %s: %s", path, strerror(errno));
            return -1;
        }
        *created = 1;
        return 0;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        set_err(err, errsize, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    int64_t app = pragma_int(db, "PRAGMA application_id");
    int64_t tables = pragma_int(db, "SELECT count(*) FROM sqlite_master");
    if (app == VMFD_STORE_APP_ID) {
        sqlite3_close(db);
        return 0;
    }
    if (app < 0 || tables < 0) {
        set_err(err, errsize, "%s is not an SQLite database: %s", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    if (!allow_init || app != 0 || tables != 0) {
        set_err(err, errsize,
                "%s is not a vmfd database (application_id %lld, %lld schema objects); vmfd "
                "never adopts a foreign database%s",
                path, (long long)app, (long long)tables,
                app == 0 && tables == 0 ? ": start once with --init to initialise it" : "");
        sqlite3_close(db);
        return -1;
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
             VMFD_STORE_APP_ID, VMFD_STORE_VERSION);
    int rc = exec(db, "BEGIN IMMEDIATE", err, errsize);
    if (rc == 0 && (exec(db, schema_sql, err, errsize) != 0 ||
                    vmfd_store_create_views(db, err, errsize) != 0 ||
                    exec(db, sql, err, errsize) != 0 || exec(db, "COMMIT", err, errsize) != 0)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        rc = -1;
    }
    sqlite3_close(db);
    *created = rc == 0;
    return rc;
}

int vmfd_store_open_snapshot(const char *path, sqlite3 **out, char *err, size_t errsize)
{
    char uri[4200];
    sqlite3 *db = NULL;
    *out = NULL;
    snprintf(uri, sizeof uri, "file:%s?immutable=1", path);
    if (sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        set_err(err, errsize, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    int64_t app = pragma_int(db, "PRAGMA application_id");
    if (app != VMFD_STORE_APP_ID) {
        set_err(err, errsize, "%s is not a vmfd database (application_id %lld)", path,
                (long long)app);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int vmfd_store_quick_check(const char *path, char *err, size_t errsize)
{
    /* A plain connection: no schema-version check, so an older schema that
     * the first vmfd_store_open will migrate is checked too. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        set_err(err, errsize, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errsize, "quick_check: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    int rc = sqlite3_step(st), out = 0;
    const char *msg = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (rc != SQLITE_ROW) {
        set_err(err, errsize, "quick_check: %s", sqlite3_errmsg(db));
        out = -1;
    } else if (!msg || strcmp(msg, "ok") != 0) {
        set_err(err, errsize, "quick_check: %s", msg ? msg : "no answer");
        out = -1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}
