/*
 * test_vmfd_clustering.c - vmfd in clustering mode: unlabelled batches train
 * one vMF mixture with stepwise EM. Ten days of fmnist-cce64 sent without
 * labels give a checkpoint whose stepwise state is bit-identical to an
 * in-process vmf_stepwise fed the same rows, predictions are its components
 * with their posterior probabilities, and a restart recovers the same model.
 */
#include "vmfd_e2e_util.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAYS 10
#define K    4

static void assert_state_equal(const char *state, const vmf_stepwise *ref)
{
    size_t len = 0, rlen = 0;
    void *rb = NULL;
    unsigned char *blob = e2e_latest_model_blob(state, &len, NULL);
    assert_non_null(blob);
    vmf_assert_ok(vmf_stepwise_save(ref, &rb, &rlen));
    /* vmfd's clustering checkpoint: "VMFDCLU1", 1 (learned), then the stepwise bytes. */
    assert_int_equal(len, 9 + rlen);
    assert_memory_equal(blob, "VMFDCLU1\001", 9);
    assert_memory_equal(blob + 9, rb, rlen);
    free(blob);
    free(rb);
}

static void test_clustering_mode(void **state)
{
    (void)state;
    e2e_stream s;
    e2e_stream_load(&s);
    e2e_proc p;
    char conf[700];
    e2e_init(&p);
    snprintf(conf, sizeof conf, "%s/vmfd.conf", p.dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[model]\nmode = clustering\nk_max = %d\n", K);
    fclose(f);
    const char *args[] = {"--config", conf, NULL};
    e2e_start(&p, args, 1);

    vmf_stepwise_opts o;
    vmf_stepwise *ref = NULL;
    vmf_stepwise_opts_init(&o);
    o.n_components = K;
    o.alpha = 0.7;
    o.t0 = 2.0;
    o.eta_floor = 0.0;
    o.minibatch = 256;
    o.seed = 42;
    vmf_assert_ok(vmf_stepwise_new(&o, s.d, &ref));
    for (int day = 1; day <= DAYS; day++) {
        float *x;
        int64_t *y;
        size_t m = e2e_stream_day(&s, day, &x, &y);
        void *npz;
        size_t len;
        /* Labels, when present, are ignored in clustering mode. */
        e2e_npz(x, m, s.d, day % 2 ? NULL : y, &npz, &len);
        char path[64];
        e2e_resp r;
        snprintf(path, sizeof path, "/v1/batches/day-%03d", day);
        assert_int_equal(e2e_http(p.port, "PUT", path, "application/x-npz", npz, len, NULL, &r), 0);
        assert_int_equal(r.status, 202);
        e2e_resp_free(&r);
        vmf_assert_ok(vmf_rows_normalize(x, m, s.d));
        vmf_assert_ok(vmf_stepwise_update(ref, x, m, s.d));
        free(npz);
        free(x);
        free(y);
    }
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "day-010", st, sizeof st, 30000), "applied");
    assert_state_equal(p.state, ref);
    assert_int_equal(e2e_sql_int(p.state, "SELECT count(*) FROM latest_components WHERE "
                                          "label = 'clusters'"),
                     K);

    /* Predictions: components and posteriors, top 2 of K. */
    size_t n = 50, k = 2;
    float *q = malloc(n * s.d * sizeof *q);
    assert_non_null(q);
    size_t j = 0;
    for (size_t i = 0; i < s.n && j < n; i++) {
        if (s.split[i] == 1)
            memcpy(q + j++ * s.d, s.x + i * s.d, s.d * sizeof *q);
    }
    json_t *emb = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        for (size_t c = 0; c < s.d; c++)
            json_array_append_new(row, json_real(q[i * s.d + c]));
        json_array_append_new(emb, row);
    }
    json_t *req = json_pack("{s:o, s:i}", "embeddings", emb, "top_k", (int)k);
    char *text = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(req);
    e2e_resp r;
    assert_int_equal(
        e2e_http(p.port, "POST", "/v1/predict", "application/json", text, strlen(text), NULL, &r),
        0);
    assert_int_equal(r.status, 200);
    free(text);
    vmf_assert_ok(vmf_rows_normalize(q, n, s.d));
    double *post = malloc(n * K * sizeof *post);
    assert_non_null(post);
    vmf_assert_ok(vmf_mixture_predict_proba(vmf_stepwise_mixture(ref), q, n, s.d, post));
    json_t *o2 = json_loads(r.body, 0, NULL);
    assert_non_null(o2);
    json_t *preds = json_object_get(o2, "predictions");
    assert_int_equal(json_array_size(preds), n);
    for (size_t i = 0; i < n; i++) {
        json_t *pr = json_array_get(preds, i);
        json_t *labels = json_object_get(pr, "labels"),
               *probs = json_object_get(pr, "probabilities");
        int best = 0;
        for (int c = 1; c < K; c++)
            best = post[i * K + c] > post[i * K + best] ? c : best;
        assert_int_equal(json_integer_value(json_array_get(labels, 0)), best);
        assert_true(json_number_value(json_array_get(probs, 0)) == post[i * K + best]);
        int second = best == 0 ? 1 : 0;
        for (int c = 0; c < K; c++)
            if (c != best && post[i * K + c] > post[i * K + second])
                second = c;
        assert_int_equal(json_integer_value(json_array_get(labels, 1)), second);
    }
    json_decref(o2);
    e2e_resp_free(&r);
    free(post);
    free(q);

    /* The model JSON and a restart. */
    assert_int_equal(e2e_http(p.port, "GET", "/v1/model", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "vmfmm-model"));
    e2e_resp_free(&r);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    e2e_start(&p, args, 1);
    assert_int_equal(e2e_http(p.port, "GET", "/v1/status", NULL, NULL, 0, NULL, &r), 0);
    assert_non_null(strstr(r.body, "\"mode\":\"clustering\""));
    assert_non_null(strstr(r.body, "\"n_classes\":4"));
    e2e_resp_free(&r);
    assert_state_equal(p.state, ref);
    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_stepwise_free(ref);
    e2e_stream_free(&s);
    vmf_test_rmtree(p.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clustering_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
