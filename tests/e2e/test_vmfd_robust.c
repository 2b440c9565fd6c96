/*
 * test_vmfd_robust.c - vmfd recovering on its own: after failed checkpoint
 * commits (injected with VMFD_TEST_FAIL_COMMITS) a timer retries the pending
 * work with backoff, so the last batch becomes durable without another
 * ingest, and the model equals one that never failed; and the inbox obeys a
 * max_body_bytes changed by SIGHUP.
 */
#include "vmfd_e2e_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SMALL_LIMIT                                                                                \
    "[server]\nmax_header_bytes = 1024\nmax_body_bytes = 2048\n[inbox]\nscan_interval_ms = 100\n"

static void test_commit_retry(void **state)
{
    (void)state;
    e2e_stream s;
    e2e_stream_load(&s);
    float *x;
    int64_t *y;
    size_t m = e2e_stream_day(&s, 1, &x, &y);
    assert_true(m > 0);

    e2e_proc p;
    e2e_init(&p);
    /* The first two commits fail: retries after 1 s, then 2 s, then it is durable. */
    assert_int_equal(setenv("VMFD_TEST_FAIL_COMMITS", "2", 1), 0);
    e2e_start(&p, NULL, 1);
    assert_int_equal(unsetenv("VMFD_TEST_FAIL_COMMITS"), 0);
    assert_int_equal(e2e_put_batch(p.port, "day-001", x, m, s.d, y, NULL), 202);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "day-001", st, sizeof st, 20000), "applied");
    assert_int_equal(e2e_metric(p.port, "vmfd_model_retries_total"), 2);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM checkpoints"), 1);

    vmf_classifier *ref = e2e_ref_new();
    e2e_ref_learn(ref, x, m, s.d, y);
    e2e_assert_model_equal(p.state, ref);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);

    char *log = vmf_test_read_file(p.log, NULL);
    assert_non_null(strstr(log, "injected failure (VMFD_TEST_FAIL_COMMITS)"));
    assert_non_null(strstr(log, "model retry scheduled in_ms=1000"));
    assert_non_null(strstr(log, "model retry scheduled in_ms=2000"));
    assert_non_null(strstr(log, "model retry succeeded"));
    assert_null(strstr(log, "in_ms=4000"));
    free(log);
    vmf_classifier_free(ref);
    free(x);
    free(y);
    e2e_stream_free(&s);
}

/* Renames an .npz of the day into the inbox as NAME.npz; returns its size. */
static size_t drop(const char *inbox, const char *name, const e2e_stream *s, int day)
{
    float *x;
    int64_t *y;
    size_t m = e2e_stream_day(s, day, &x, &y);
    void *npz;
    size_t len;
    e2e_npz(x, m, s->d, y, &npz, &len);
    char tmp[800], dst[800];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", inbox, name);
    snprintf(dst, sizeof dst, "%s/%s.npz", inbox, name);
    vmf_test_write_file(tmp, npz, len);
    assert_int_equal(rename(tmp, dst), 0);
    free(npz);
    free(x);
    free(y);
    return len;
}

static int wait_path(const char *path, int timeout_ms)
{
    struct stat st;
    for (int t = 0; t < timeout_ms; t += 20) {
        if (stat(path, &st) == 0)
            return 0;
        e2e_sleep_ms(20);
    }
    return -1;
}

/* Waits until vmfd's log holds `want` "reloaded" lines: a SIGHUP is done only
   when the daemon says so, never after a fixed sleep. */
static int wait_reloads(const char *log_path, int want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        char *log = vmf_test_read_file(log_path, NULL);
        int n = 0;
        for (const char *q = log; q && (q = strstr(q, "reloaded")) != NULL; q++)
            n++;
        free(log);
        if (n >= want)
            return 0;
        e2e_sleep_ms(20);
    }
    return -1;
}

static void test_inbox_reload_body_limit(void **state)
{
    (void)state;
    e2e_stream s;
    e2e_stream_load(&s);
    e2e_proc p;
    e2e_init(&p);
    char conf[700], inbox[700], path[900], text[256];
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    snprintf(inbox, sizeof inbox, "%s/inbox", p.state);
    vmf_test_write_text(conf, SMALL_LIMIT);
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    mkdir(inbox, 0700);

    size_t len = drop(inbox, "day-001", &s, 1);
    assert_true(len > 2048);
    snprintf(path, sizeof path, "%s/rejected/day-001.npz.error.json", inbox);
    assert_int_equal(wait_path(path, 10000), 0);
    char *err = vmf_test_read_file(path, NULL);
    assert_non_null(strstr(err, "body_too_large"));
    free(err);

    /* A larger limit through SIGHUP: the inbox takes the next file. */
    int n = snprintf(text, sizeof text,
                     "[server]\nmax_header_bytes = 8192\nmax_body_bytes = "
                     "%zu\n[inbox]\nscan_interval_ms = 100\n",
                     len * 4);
    vmf_test_write_file(conf, text, (size_t)n);
    assert_int_equal(kill(p.pid, SIGHUP), 0);
    assert_int_equal(wait_reloads(p.log, 1, 5000), 0);
    drop(inbox, "day-002", &s, 2);
    snprintf(path, sizeof path, "%s/done/day-002.npz", inbox);
    assert_int_equal(wait_path(path, 10000), 0);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "day-002", st, sizeof st, 20000), "applied");

    /* And a smaller one again refuses. */
    vmf_test_write_text(conf, SMALL_LIMIT);
    assert_int_equal(kill(p.pid, SIGHUP), 0);
    assert_int_equal(wait_reloads(p.log, 2, 5000), 0);
    drop(inbox, "day-003", &s, 3);
    snprintf(path, sizeof path, "%s/rejected/day-003.npz.error.json", inbox);
    assert_int_equal(wait_path(path, 10000), 0);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    e2e_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_retry),
        cmocka_unit_test(test_inbox_reload_body_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
