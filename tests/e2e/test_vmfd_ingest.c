/*
 * test_vmfd_ingest.c - end to end: 30 days of fmnist-cce64 (split 0,
 * day <= 30) sent to a real vmfd over HTTP and through the inbox give a model
 * bit-identical to an in-process classifier fed the same batches, and
 * predictions through POST /v1/predict equal in-process predict_topk (same
 * labels, same probabilities, same novelty scores; "unknown" follows
 * model.novelty_threshold). Re-sending a key with the same content
 * applies nothing twice; other content under the key is 409.
 */
#include "vmfd_e2e_util.h"

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAYS 30
#define TOPK 4

static e2e_stream stream;
static vmf_classifier *ref; /* days 1..30 in order */

static int setup(void **state)
{
    (void)state;
    e2e_stream_load(&stream);
    ref = e2e_ref_new();
    for (int day = 1; day <= DAYS; day++) {
        float *x;
        int64_t *y;
        size_t m = e2e_stream_day(&stream, day, &x, &y);
        assert_true(m > 0);
        e2e_ref_learn(ref, x, m, stream.d, y);
        free(x);
        free(y);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vmf_classifier_free(ref);
    e2e_stream_free(&stream);
    return 0;
}

/* Held-out rows (split 1), the first n of them. */
static float *test_rows(size_t n)
{
    float *x = malloc(n * stream.d * sizeof *x);
    assert_non_null(x);
    size_t j = 0;
    for (size_t i = 0; i < stream.n && j < n; i++) {
        if (stream.split[i] == 1)
            memcpy(x + j++ * stream.d, stream.x + i * stream.d, stream.d * sizeof *x);
    }
    assert_int_equal(j, n);
    return x;
}

/*
 * Compares a predict answer with in-process predict_topk on normalized rows
 * (threshold: the daemon's model.novelty_threshold); returns how many rows
 * the answer marks unknown.
 */
static size_t check_predictions_t(const char *body, const float *rows, size_t n, size_t k,
                                  double threshold)
{
    size_t unknown = 0;
    double *nov = malloc(n * sizeof *nov);
    assert_non_null(nov);
    float *xn = malloc(n * stream.d * sizeof *xn);
    int32_t *cls = malloc(n * k * sizeof *cls);
    double *proba = malloc(n * k * sizeof *proba);
    assert_non_null(xn);
    assert_non_null(cls);
    assert_non_null(proba);
    memcpy(xn, rows, n * stream.d * sizeof *xn);
    vmf_assert_ok(vmf_rows_normalize(xn, n, stream.d));
    vmf_assert_ok(vmf_classifier_predict_topk_novelty(ref, xn, n, stream.d, k, cls, proba, nov));
    const vmf_label_table *lt = vmf_classifier_labels(ref);
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    assert_non_null(o);
    json_t *preds = json_object_get(o, "predictions");
    assert_int_equal(json_array_size(preds), n);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(preds, i);
        json_t *labels = json_object_get(p, "labels"), *probs = json_object_get(p, "probabilities");
        assert_int_equal(json_array_size(labels), k);
        assert_true(json_number_value(json_object_get(p, "novelty")) == nov[i]);
        json_t *unk = json_object_get(p, "unknown");
        assert_true(json_is_boolean(unk));
        assert_int_equal(json_is_true(unk), nov[i] > threshold);
        unknown += json_is_true(unk);
        for (size_t r = 0; r < k; r++) {
            assert_true(json_is_integer(json_array_get(labels, r)));
            assert_int_equal(json_integer_value(json_array_get(labels, r)),
                             vmf_label_table_int(lt, (size_t)cls[i * k + r]));
            /* %.17g round-trips a double exactly */
            double got = json_number_value(json_array_get(probs, r));
            if (got != proba[i * k + r]) {
                print_error("row %zu rank %zu: HTTP %.17g, in-process %.17g\n", i, r, got,
                            proba[i * k + r]);
                fail();
            }
        }
    }
    json_decref(o);
    free(xn);
    free(cls);
    free(proba);
    free(nov);
    return unknown;
}

static void check_predictions(const char *body, const float *rows, size_t n, size_t k)
{
    assert_int_equal(check_predictions_t(body, rows, n, k, 2.0), 0); /* the default: never */
}

static const char *batch_status(int port, const char *key)
{
    static char st[32];
    return e2e_wait_batch(port, key, st, sizeof st, 30000);
}

/*
 * model.novelty_threshold: rows whose novelty exceeds it are "unknown". The
 * threshold 0.2 lies between the novelty of typical known-class test rows and
 * that of the two classes not yet seen by day 30 (Coat, Pullover), so the
 * answer for 1,000 test rows has both kinds.
 */
static void test_novelty_threshold(void **state)
{
    (void)state;
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[model]\nnovelty_threshold = 0.2\n");
    fclose(f);
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);
    for (int day = 1; day <= DAYS; day++)
        assert_int_equal(e2e_put_day(p.port, &stream, day, NULL), 202);
    assert_string_equal(batch_status(p.port, "day-030"), "applied");
    size_t n = 1000;
    float *rows = test_rows(n);
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = VMF_DTYPE_F32;
    a.ndim = 2;
    a.shape[0] = n;
    a.shape[1] = stream.d;
    a.count = n * stream.d;
    a.data = rows;
    void *npy;
    size_t npy_len;
    vmf_assert_ok(vmf_npy_write_mem(&a, &npy, &npy_len));
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "POST", "/v1/predict?top_k=2", "application/x-npy", npy,
                              npy_len, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    size_t unknown = check_predictions_t(r.body, rows, n, 2, 0.2);
    assert_true(unknown > 0 && unknown < n);
    e2e_resp_free(&r);
    free(npy);
    free(rows);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static void test_http_stream(void **state)
{
    (void)state;
    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    for (int day = 1; day <= DAYS; day++)
        assert_int_equal(e2e_put_day(p.port, &stream, day, NULL), 202);
    assert_string_equal(batch_status(p.port, "day-030"), "applied");
    e2e_assert_model_equal(p.state, ref);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE status='applied'"),
                     DAYS);

    /* Predictions: 256 rows as .npy with ?top_k=4, and 3 rows as JSON. */
    size_t n = 256;
    float *rows = test_rows(n);
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = VMF_DTYPE_F32;
    a.ndim = 2;
    a.shape[0] = n;
    a.shape[1] = stream.d;
    a.count = n * stream.d;
    a.data = rows;
    void *npy;
    size_t npy_len;
    vmf_assert_ok(vmf_npy_write_mem(&a, &npy, &npy_len));
    e2e_resp r;
    assert_int_equal(e2e_http(p.port, "POST", "/v1/predict?top_k=4", "application/x-npy", npy,
                              npy_len, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    check_predictions(r.body, rows, n, TOPK);
    e2e_resp_free(&r);
    free(npy);

    json_t *emb = json_array();
    for (size_t i = 0; i < 3; i++) {
        json_t *row = json_array();
        for (size_t j = 0; j < stream.d; j++)
            json_array_append_new(row, json_real(rows[i * stream.d + j]));
        json_array_append_new(emb, row);
    }
    json_t *req = json_pack("{s:o, s:i}", "embeddings", emb, "top_k", 2);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    assert_int_equal(
        e2e_http(p.port, "POST", "/v1/predict", "application/json", text, strlen(text), NULL, &r),
        0);
    assert_int_equal(r.status, 200);
    check_predictions(r.body, rows, 3, 2);
    e2e_resp_free(&r);
    free(text);

    /* Idempotency: same content again is 200 and applies nothing. */
    long long ckpts = e2e_sql_int(p.state, "SELECT max(id) FROM checkpoints");
    assert_int_equal(e2e_put_day(p.port, &stream, 5, NULL), 200);
    assert_int_equal(e2e_put_day(p.port, &stream, 30, NULL), 200);
    /* The same batch sent as JSON has the same canonical content: 200 too. */
    {
        float *x;
        int64_t *y;
        size_t m = e2e_stream_day(&stream, 7, &x, &y);
        json_t *e = json_array(), *l = json_array();
        for (size_t i = 0; i < m; i++) {
            json_t *row = json_array();
            for (size_t j = 0; j < stream.d; j++)
                json_array_append_new(row, json_real(x[i * stream.d + j]));
            json_array_append_new(e, row);
            json_array_append_new(l, json_integer(y[i]));
        }
        json_t *b = json_pack("{s:o, s:o}", "embeddings", e, "labels", l);
        char *t = json_dumps(b, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(b);
        assert_int_equal(e2e_http(p.port, "PUT", "/v1/batches/day-007", "application/json", t,
                                  strlen(t), NULL, &r),
                         0);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"status\":\"applied\""));
        e2e_resp_free(&r);
        free(t);
        free(x);
        free(y);
    }
    /* Other content under a known key: 409, nothing stored. */
    {
        float *x;
        int64_t *y;
        size_t m = e2e_stream_day(&stream, 31, &x, &y);
        void *npz;
        size_t len;
        e2e_npz(x, m, stream.d, y, &npz, &len);
        assert_int_equal(
            e2e_http(p.port, "PUT", "/v1/batches/day-005", "application/x-npz", npz, len, NULL, &r),
            0);
        assert_int_equal(r.status, 409);
        assert_non_null(strstr(r.body, "\"error\":\"conflict\""));
        e2e_resp_free(&r);
        free(npz);
        free(x);
        free(y);
    }
    e2e_sleep_ms(200);
    assert_int_equal(e2e_sql_int(p.state, "SELECT max(id) FROM checkpoints"), ckpts);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches"), DAYS);
    e2e_assert_model_equal(p.state, ref);

    /* The batch record. */
    assert_int_equal(e2e_http(p.port, "GET", "/v1/batches/day-003", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"status\":\"applied\""));
    assert_non_null(strstr(r.body, "\"applied_at\":\"20"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/batches/day-999", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    e2e_resp_free(&r);

    /* A restart recovers the same model and predicts identically. */
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    e2e_start(&p, NULL, 1);
    e2e_assert_model_equal(p.state, ref);
    vmf_assert_ok(vmf_npy_write_mem(&a, &npy, &npy_len));
    assert_int_equal(e2e_http(p.port, "POST", "/v1/predict?top_k=4", "application/x-npy", npy,
                              npy_len, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    check_predictions(r.body, rows, n, TOPK);
    e2e_resp_free(&r);
    free(npy);
    free(rows);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

static void drop_file(const char *inbox, int day)
{
    float *x;
    int64_t *y;
    size_t m = e2e_stream_day(&stream, day, &x, &y);
    void *npz;
    size_t len;
    e2e_npz(x, m, stream.d, y, &npz, &len);
    char tmp[800], dst[800];
    snprintf(tmp, sizeof tmp, "%s/.day-%03d.tmp", inbox, day);
    snprintf(dst, sizeof dst, "%s/day-%03d.npz", inbox, day);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(npz, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, dst), 0);
    free(npz);
    free(x);
    free(y);
}

/* The number of entries in dir, besides . and .. */
static int count_entries(const char *dir)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int n = 0;
    for (struct dirent *de; (de = readdir(dh));)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(dh);
    return n;
}

static void test_inbox_stream(void **state)
{
    (void)state;
    e2e_proc p;
    char inbox[700], path[800];
    e2e_init(&p);
    snprintf(inbox, sizeof inbox, "%s/inbox", p.state);
    assert_int_equal(mkdir(p.state, 0700), 0);
    assert_int_equal(mkdir(inbox, 0700), 0);
    /* Ten files are there before the daemon starts. */
    for (int day = 1; day <= 10; day++)
        drop_file(inbox, day);
    /* A truncated archive is rejected with an error file. */
    snprintf(path, sizeof path, "%s/broken.npz", inbox);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("PK\003\004 truncated", f);
    fclose(f);
    e2e_start(&p, NULL, 1);
    for (int day = 11; day <= DAYS; day++)
        drop_file(inbox, day);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "day-030", st, sizeof st, 30000), "applied");
    e2e_assert_model_equal(p.state, ref);
    for (int day = 1; day <= DAYS; day++) {
        snprintf(path, sizeof path, "%s/done/day-%03d.npz", inbox, day);
        assert_int_equal(access(path, F_OK), 0);
        snprintf(path, sizeof path, "%s/day-%03d.npz", inbox, day);
        assert_int_equal(access(path, F_OK), -1);
    }
    snprintf(path, sizeof path, "%s/rejected/broken.npz", inbox);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
        e2e_sleep_ms(10);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/rejected/broken.npz.error.json", inbox);
    char *err = e2e_read_file(path, NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "\"error\": \"bad_npz\""));
    assert_non_null(strstr(err, "\"status\": 400"));
    free(err);
    /* The reason is written atomically: no temporary file is left beside it. */
    snprintf(path, sizeof path, "%s/rejected", inbox);
    assert_int_equal(count_entries(path), 2);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM batches WHERE source='inbox'"),
                     DAYS);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_test_rmtree(p.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_stream),
        cmocka_unit_test(test_inbox_stream),
        cmocka_unit_test(test_novelty_threshold),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
