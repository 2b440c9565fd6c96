/*
 * vmfd_store_sql.h - small SQLite helpers shared by the store's sources
 * (vmfd_store.c, vmfd_schema.c): error text, exec, prepare, step. Private
 * to the store; static inline so each source has its own copy.
 */
#ifndef VMFD_STORE_SQL_H
#define VMFD_STORE_SQL_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static inline void set_err(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
}

static inline int exec(sqlite3 *db, const char *sql, char *err, size_t errsize)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(err, errsize, "sqlite: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static inline sqlite3_stmt *prep(sqlite3 *db, const char *sql, char *err, size_t errsize)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        set_err(err, errsize, "sqlite prepare: %s", sqlite3_errmsg(db));
        return NULL;
    }
    return st;
}

static inline int step_done(sqlite3 *db, sqlite3_stmt *st, char *err, size_t errsize)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        set_err(err, errsize, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

static inline int64_t pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}
#endif
