/*
 * test_vmfd_readable.c - the pieces that make vmfd readable to an operator,
 * in process: the nearest-component cosines, the views' decoding of the
 * float32 BLOBs in SQL, the store's status counts rendered in
 * /metrics, and the choice of log timestamps from $JOURNAL_STREAM.
 */
#include "vmf_test.h"
#include "vmfd_log.h"
#include "vmfd_metrics.h"
#include "vmfd_store.h"
#include "vmfd_store_views.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_nearest(void **state)
{
    (void)state;
    /* Unit rows: 0 and 2 are 0.8 apart in cosine, 1 is orthogonal to 0 and 0.6 from 2. */
    const float m[3][2] = {{1.0f, 0.0f}, {0.0f, 1.0f}, {0.8f, 0.6f}};
    int64_t near[3];
    double cs[3];
    assert_int_equal(vmfd_store_nearest(&m[0][0], 3, 2, near, cs), 0);
    assert_int_equal(near[0], 2);
    assert_int_equal(near[1], 2);
    assert_int_equal(near[2], 0);
    vmf_assert_close(cs[0], 0.8, 1e-6, 0);
    vmf_assert_close(cs[1], 0.6, 1e-6, 0);
    vmf_assert_close(cs[2], 0.8, 1e-6, 0);
    /* One component has no other. */
    assert_int_equal(vmfd_store_nearest(&m[0][0], 1, 2, near, cs), 0);
    assert_int_equal(near[0], -1);
    assert_true(isnan(cs[0]));
    /* More rows than one SGEMM block (256): the same answer as a plain loop. */
    enum { K = 600, D = 5 };
    float *big = malloc(sizeof(float) * K * D);
    int64_t *bn = malloc(sizeof(int64_t) * K);
    double *bc = malloc(sizeof(double) * K);
    assert_non_null(big);
    assert_non_null(bn);
    assert_non_null(bc);
    vmf_rng rng;
    vmf_rng_seed(&rng, 11);
    for (size_t i = 0; i < (size_t)K * D; i++)
        big[i] = (float)vmf_rng_normal(&rng);
    assert_int_equal(vmfd_store_nearest(big, K, D, bn, bc), 0);
    for (size_t i = 0; i < K; i += 37) {
        double best = -INFINITY;
        int64_t arg = -1;
        for (size_t j = 0; j < K; j++) {
            double dot = 0.0;
            for (size_t t = 0; t < D; t++)
                dot += (double)big[i * D + t] * (double)big[j * D + t];
            if (j != i && dot > best) {
                best = dot;
                arg = (int64_t)j;
            }
        }
        assert_int_equal(bn[i], arg);
        vmf_assert_close(bc[i], best, 1e-5, 1e-5);
    }
    free(big);
    free(bn);
    free(bc);
}

/* The views decode float32 BLOBs in SQL: exact values, NULL for Inf/NaN, 0 below 2^-124. */
static void test_sql_float_decoding(void **state)
{
    (void)state;
    char dir[512], path[600], err[256];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/vmfd.db", dir);
    sqlite3 *db;
    assert_int_equal(vmfd_store_open(path, 1, 0, &db, err, sizeof err), 0);
    const float v[] = {1.0f,    -0.5f,  0.1f, -1.0f / 3.0f, 0.70710677f, 3.5f,  1e-20f,
                       -2e-37f, 1e-40f, 0.0f, -0.0f,        65504.0f,    1e30f, INFINITY};
    const size_t n = sizeof v / sizeof v[0];
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO checkpoints VALUES(1, 'now', 'test', 0, 0, 0, 0, 0,"
                     " 0.0, 0, x'00'); INSERT INTO classes VALUES(0, 'a', 1.0, 1, 1, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "INSERT INTO components(checkpoint_id, class_idx, component,"
                           " weight, kappa, mean, label) VALUES(1, 0, 0, 1, 2, ?, 'a')",
                           -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, v, (int)sizeof v, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT mean FROM component_means", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    json_t *a = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    sqlite3_finalize(st);
    assert_non_null(a);
    assert_int_equal(json_array_size(a), n);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(a, i);
        if (isinf(v[i])) {
            assert_true(json_is_null(x));
        } else if (fabsf(v[i]) < 0x1p-124f) {
            assert_true(json_number_value(x) == 0.0);
        } else {
            float back = (float)json_number_value(x);
            assert_memory_equal(&back, &v[i], sizeof back); /* the same float32 bits */
        }
    }
    json_decref(a);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT mean_head, dim FROM latest_components", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "[1.0000, -0.5000, 0.1000, -0.3333, ...]");
    assert_int_equal(sqlite3_column_int(st, 1), (int)n);
    sqlite3_finalize(st);
    vmfd_store_close(db);
    vmf_test_rmtree(dir);
}

static void test_metrics_store_counts(void **state)
{
    (void)state;
    vmfd_metrics m;
    vmfd_gauges g;
    memset(&m, 0, sizeof m);
    memset(&g, 0, sizeof g);
    m.batches[VMFD_BATCH_SUPERSEDED] = 2;
    g.stored_queued = 1;
    g.stored_applied = 7;
    g.stored_rejected = 3;
    g.stored_superseded = 2;
    g.model_rows = 159;
    size_t len;
    char *t = vmfd_metrics_render(&m, &g, &len);
    assert_non_null(t);
    assert_non_null(strstr(t, "# TYPE vmfd_batches gauge\n"));
    assert_non_null(strstr(t, "vmfd_batches{status=\"queued\"} 1\n"));
    assert_non_null(strstr(t, "vmfd_batches{status=\"applied\"} 7\n"));
    assert_non_null(strstr(t, "vmfd_batches{status=\"rejected\"} 3\n"));
    assert_non_null(strstr(t, "vmfd_batches{status=\"superseded\"} 2\n"));
    assert_non_null(strstr(t, "vmfd_batches_total{status=\"superseded\"} 2\n"));
    assert_non_null(strstr(t, "vmfd_model_rows 159\n"));
    assert_null(strstr(t, "vmfd_rows_applied_total")); /* one definition of rows applied */
    free(t);
}

static void test_log_timestamps(void **state)
{
    (void)state;
    char dir[512], path[600], js[64], other[64];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    snprintf(other, sizeof other, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    assert_int_equal(vmfd_log_timestamps_wanted(NULL, js, fd), 0); /* the journal stamps */
    assert_int_equal(vmfd_log_timestamps_wanted("auto", js, fd), 0);
    assert_int_equal(vmfd_log_timestamps_wanted(NULL, other, fd), 1); /* inherited, not ours */
    assert_int_equal(vmfd_log_timestamps_wanted(NULL, NULL, fd), 1);
    assert_int_equal(vmfd_log_timestamps_wanted(NULL, "garbage", fd), 1);
    assert_int_equal(vmfd_log_timestamps_wanted("yes", js, fd), 1);
    assert_int_equal(vmfd_log_timestamps_wanted("no", NULL, fd), 0);
    close(fd);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest),
        cmocka_unit_test(test_sql_float_decoding),
        cmocka_unit_test(test_metrics_store_counts),
        cmocka_unit_test(test_log_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
