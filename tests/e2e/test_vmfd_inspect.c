/*
 * test_vmfd_inspect.c - what an operator reads: the README's sqlite3
 * examples (run verbatim on a daemon fed the same data, output compared
 * byte for byte, newest and an older checkpoint), the counts of /metrics
 * and vmfctl status after a restore, checkpoint exports that leave the live
 * state alone, vmfctl's exit code when nothing is learned, the warning on
 * content already stored under another key, the migration of a schema
 * version 1 database, and model.refine_rows (set at creation, kept on restore).
 */
#include "vmfd_e2e_util.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs cmd through /bin/sh (stderr too when with_err); returns its exit code, output in *out. */
/* Removes blanks before each newline (sqlite3 -column pads the last column). */
static void strip_trailing_blanks(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\n') {
            while (w > s && w[-1] == ' ')
                w--;
        }
        *w++ = *r;
    }
    *w = '\0';
}

/* Days 1..n of the fmnist-cce64 stream, each PUT as day-NNN and applied. */
static void feed_days(const e2e_proc *p, const e2e_stream *s, int n)
{
    char key[32], st[32];
    for (int day = 1; day <= n; day++)
        assert_int_equal(e2e_put_day(p->port, s, day, NULL), 202);
    snprintf(key, sizeof key, "day-%03d", n);
    assert_string_equal(e2e_wait_batch(p->port, key, st, sizeof st, 60000), "applied");
}

static void test_readme_sqlite(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_stream s;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    e2e_stream_load(&s);
    feed_days(&p, &s, 30);

    /* The ```console block of README.md that shows sqlite3 sessions. */
    char *readme = e2e_read_file(VMF_SOURCE_DIR "/README.md", NULL);
    assert_non_null(readme);
    char *block = strstr(readme, "```console\n$ sqlite3 -header -column vmfd.db");
    assert_non_null(block);
    block += strlen("```console\n");
    char *end = strstr(block, "\n```");
    assert_non_null(end);
    end[1] = '\0';
    assert_non_null(strstr(block, "FROM latest_components"));
    assert_non_null(strstr(block, "checkpoint_id = 21")); /* the oldest of the 10 kept */
    assert_non_null(strstr(block, "FROM checkpoint_summary"));
    int queries = 0;
    for (char *line = block; line && *line;) {
        assert_true(strncmp(line, "$ ", 2) == 0);
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char *expect = nl + 1, *next = expect;
        while (*next && strncmp(next, "$ ", 2) != 0)
            next = strchr(next, '\n') + 1;
        char saved = *next;
        *next = '\0';
        char cmd[4096], *got;
        snprintf(cmd, sizeof cmd, "cd '%s' && %s", p.state, line + 2);
        assert_int_equal(e2e_run(cmd, &got), 0);
        strip_trailing_blanks(got);
        strip_trailing_blanks(expect);
        if (strcmp(got, expect) != 0) {
            fprintf(stderr, "README query: %s\n--- README shows:\n%s--- sqlite3 prints:\n%s",
                    line + 2, expect, got);
            fail();
        }
        free(got);
        *next = saved;
        line = next;
        queries++;
    }
    assert_true(queries >= 3);
    free(readme);
    e2e_stream_free(&s);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static json_t *get_json(int port, const char *path)
{
    e2e_resp r;
    assert_int_equal(e2e_http(port, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *o = json_loads(r.body, 0, NULL);
    assert_non_null(o);
    e2e_resp_free(&r);
    return o;
}

static void test_restore_counts_exports(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_stream s;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    e2e_stream_load(&s);
    feed_days(&p, &s, 4);

    /* Day 1's content again under another key: learned, with a warning. */
    float *x;
    int64_t *y;
    size_t n1 = e2e_stream_day(&s, 1, &x, &y);
    e2e_resp r;
    void *npz;
    size_t len;
    e2e_npz(x, n1, s.d, y, &npz, &len);
    assert_int_equal(
        e2e_http(p.port, "PUT", "/v1/batches/again-001", "application/x-npz", npz, len, NULL, &r),
        0);
    assert_int_equal(r.status, 202);
    assert_non_null(strstr(r.body, "\"same_content_as\":\"day-001\""));
    e2e_resp_free(&r);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "again-001", st, sizeof st, 30000), "applied");
    json_t *b = get_json(p.port, "/v1/batches/again-001");
    assert_string_equal(json_string_value(json_object_get(b, "same_content_as")), "day-001");
    json_decref(b);
    b = get_json(p.port, "/v1/batches/day-002");
    assert_true(json_is_null(json_object_get(b, "same_content_as")));
    json_decref(b);
    char *log = e2e_read_file(p.log, NULL);
    assert_non_null(strstr(log, "key=again-001 same_content_as=day-001"));
    /* Not the journal: every line is stamped after its priority. */
    assert_non_null(strstr(log, "<6>20"));
    assert_non_null(strstr(log, "Z batch queued key=day-001"));
    free(log);

    /* Roll back to checkpoint 2: days 3, 4 and again-001 become superseded. */
    assert_int_equal(e2e_http(p.port, "POST", "/v1/checkpoints/2/restore", NULL, NULL, 0, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    e2e_resp_free(&r);
    json_t *status = get_json(p.port, "/v1/status");
    json_t *counts = json_object_get(status, "batches");
    static const char *const names[] = {"queued", "applied", "rejected", "superseded"};
    static const long long expect[] = {0, 2, 0, 3};
    for (int i = 0; i < 4; i++) {
        char metric[64];
        snprintf(metric, sizeof metric, "vmfd_batches{status=\"%s\"}", names[i]);
        long long v = json_integer_value(json_object_get(counts, names[i]));
        assert_int_equal(v, expect[i]);
        assert_int_equal(e2e_metric(p.port, metric), v);
    }
    assert_int_equal(e2e_metric(p.port, "vmfd_batches_total{status=\"superseded\"}"), 3);
    /* One definition of rows applied. */
    long long rows_seen = json_integer_value(json_object_get(status, "rows_seen"));
    assert_int_equal(e2e_metric(p.port, "vmfd_model_rows"), rows_seen);
    assert_int_equal(e2e_sql_int(p.state, "SELECT sum(rows) FROM batches WHERE status = 'applied'"),
                     rows_seen);
    json_decref(status);
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "%s/vmfctl --url http://127.0.0.1:%d status", VMF_BIN_DIR, p.port);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "batches.superseded: 3\n"));
    assert_non_null(strstr(out, "batches.applied: 2\n"));
    free(out);

    /* Re-ingesting a superseded key learns nothing: exit 1, and says so. */
    char file[700];
    snprintf(file, sizeof file, "%s/again-001.npz", p.dir);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(npz, 1, len, f), len);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/vmfctl --url http://127.0.0.1:%d ingest %s", VMF_BIN_DIR, p.port,
             file);
    assert_int_equal(e2e_run(cmd, &out), 1);
    assert_non_null(strstr(out, "known as superseded"));
    free(out);
    /* ... while a new key with day 1's (applied) content is learned, with a warning. */
    snprintf(cmd, sizeof cmd, "%s/vmfctl --url http://127.0.0.1:%d ingest %s --key third-001",
             VMF_BIN_DIR, p.port, file);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(out, "same content as 'day-001'"));
    free(out);
    assert_string_equal(e2e_wait_batch(p.port, "third-001", st, sizeof st, 30000), "applied");

    /* Checkpoint 1 exported online and offline: the same JSON, nothing changed. */
    long long ckpts = e2e_sql_int(p.state, "SELECT count(*) FROM checkpoints");
    char f1[700], f2[700];
    snprintf(f1, sizeof f1, "%s/online.json", p.dir);
    snprintf(f2, sizeof f2, "%s/offline.json", p.dir);
    snprintf(cmd, sizeof cmd, "%s/vmfctl --url http://127.0.0.1:%d checkpoint export 1 --output %s",
             VMF_BIN_DIR, p.port, f1);
    assert_int_equal(e2e_run(cmd, NULL), 0);
    snprintf(cmd, sizeof cmd, "%s --state-dir %s --export-checkpoint 1 --output %s", e2e_vmfd_bin(),
             p.state, f2);
    assert_int_equal(e2e_run(cmd, NULL), 0);
    size_t l1, l2;
    char *j1 = e2e_read_file(f1, &l1), *j2 = e2e_read_file(f2, &l2);
    assert_non_null(j1);
    assert_non_null(j2);
    assert_int_equal(l1, l2);
    assert_memory_equal(j1, j2, l1);
    json_t *m1 = json_loads(j1, 0, NULL);
    assert_non_null(m1);
    assert_string_equal(json_string_value(json_object_get(m1, "format")), "vmfmm-model");
    /* Checkpoint 1 learned day 1 only. */
    char hex[32];
    snprintf(hex, sizeof hex, "0x%016llx", (unsigned long long)n1);
    assert_string_equal(json_string_value(json_object_get(m1, "rows_seen")), hex);
    json_decref(m1);
    e2e_resp live;
    assert_int_equal(e2e_http(p.port, "GET", "/v1/model", NULL, NULL, 0, NULL, &live), 0);
    assert_true(live.len != l1 - 1 || memcmp(live.body, j1, live.len) != 0);
    e2e_resp_free(&live);
    free(j1);
    free(j2);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM checkpoints"), ckpts);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status = 'applied'"),
                     3);
    /* Unknown checkpoints: 404 -> vmfctl 65; vmfd offline 66. */
    snprintf(cmd, sizeof cmd, "%s/vmfctl --url http://127.0.0.1:%d checkpoint export 999",
             VMF_BIN_DIR, p.port);
    assert_int_equal(e2e_run(cmd, NULL), 65);
    snprintf(cmd, sizeof cmd, "%s --state-dir %s --export-checkpoint 999", e2e_vmfd_bin(), p.state);
    assert_int_equal(e2e_run(cmd, NULL), 66);
    snprintf(cmd, sizeof cmd, "%s --state-dir %s/nothing-here --export-checkpoint latest",
             e2e_vmfd_bin(), p.dir);
    assert_int_equal(e2e_run(cmd, NULL), 66);

    free(npz);
    free(x);
    free(y);
    e2e_stream_free(&s);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/* Text of a single-value query (malloc'ed) or NULL. */
static char *sql_text(const char *state, const char *sql)
{
    char path[700];
    snprintf(path, sizeof path, "%s/vmfd.db", state);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static void test_migrate_v1(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_stream s;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    e2e_stream_load(&s);
    feed_days(&p, &s, 2);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    static const char *const readable =
        "SELECT group_concat(checkpoint_id || '|' || label || '|' || component || '|' ||"
        " nearest_class || '|' || nearest_component || '|' ||"
        " printf('%.6f', nearest_cos), ';') FROM (SELECT * FROM components"
        " ORDER BY checkpoint_id, class_idx, component)";
    char *before = sql_text(p.state, readable);
    assert_non_null(before);

    /* Back to schema version 1, as an older vmfd left it. */
    char path[700];
    snprintf(path, sizeof path, "%s/vmfd.db", p.state);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    static const char downgrade[] =
        "DROP VIEW latest_components; DROP VIEW component_summary; DROP VIEW component_means;"
        "DROP VIEW checkpoint_summary; DROP INDEX batches_sha256;"
        "ALTER TABLE components DROP COLUMN label;"
        "ALTER TABLE components DROP COLUMN nearest_class;"
        "ALTER TABLE components DROP COLUMN nearest_component;"
        "ALTER TABLE components DROP COLUMN nearest_cos;"
        "CREATE VIEW latest_components AS SELECT c.checkpoint_id, c.class_idx, cl.label,"
        " c.component, c.weight, c.kappa, length(c.mean)/4 AS dim, c.mean, c.s0, c.s1"
        " FROM components c JOIN classes cl ON cl.idx = c.class_idx"
        " WHERE c.checkpoint_id = (SELECT max(id) FROM checkpoints);"
        "PRAGMA user_version = 1;";
    char *msg = NULL;
    if (sqlite3_exec(db, downgrade, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("downgrade: %s", msg);
    sqlite3_close(db);
    assert_int_equal(e2e_sql_int(p.state, "PRAGMA user_version"), 1);

    /* vmfd migrates it on start: the same readable columns as a new database. */
    e2e_start(&p, NULL, 1);
    assert_int_equal(e2e_sql_int(p.state, "PRAGMA user_version"), 2);
    char *after = sql_text(p.state, readable);
    assert_non_null(after);
    assert_string_equal(after, before);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM checkpoint_summary"), 2);
    char *head = sql_text(p.state, "SELECT mean_head FROM latest_components LIMIT 1");
    assert_non_null(head);
    assert_true(head[0] == '[' && strstr(head, ", ...]") != NULL);
    free(head);
    free(before);
    free(after);
    e2e_stream_free(&s);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

/*
 * model.refine_rows: 0 gives a daemon without the head (no "refine" in the
 * model, no sample kept once a class is grown), and a state restored from a
 * checkpoint keeps the value it was made with whatever vmfd.conf says later.
 */
static void check_no_head(int port)
{
    json_t *m = get_json(port, "/v1/model");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(m, "options"), "refine_rows")), 0);
    json_t *classes = json_object_get(m, "classes");
    assert_true(json_array_size(classes) > 0);
    for (size_t i = 0; i < json_array_size(classes); i++)
        assert_null(json_object_get(json_array_get(classes, i), "refine"));
    json_decref(m);
}

static void test_refine_rows_config(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_stream s;
    char conf[700];
    e2e_init(&p);
    e2e_stream_load(&s);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    vmf_test_write_text(conf, "[model]\nrefine_rows = 0\n");
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    feed_days(&p, &s, 3);
    check_no_head(p.port);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    /* The shipped default (256) in the file now: the restored state keeps 0. */
    vmf_test_write_text(conf, "[model]\nrefine_rows = 256\n");
    e2e_start(&p, args, 1);
    check_no_head(p.port);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    e2e_stream_free(&s);
    vmf_test_rmtree(p.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_sqlite),
        cmocka_unit_test(test_restore_counts_exports),
        cmocka_unit_test(test_migrate_v1),
        cmocka_unit_test(test_refine_rows_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
