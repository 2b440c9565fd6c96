/*
 * test_vmfd_predict_load.c - concurrent single-row predictions: many
 * connections at once, each asking for one row, get exactly the answers of
 * in-process vmf_classifier_predict_topk on that row alone, up to float32
 * rounding (BLAS sums in another order for other matrix sizes, and vmfd
 * stacks concurrent rows into one GEMM; see docs/vmfd.md), with
 * two different top_k and some bad requests (a short row, broken JSON: each
 * refused alone with its own status) in the mix, while vmfd coalesces them into fewer
 * threadpool jobs than requests.
 *
 * The model (40 classes of a synthetic vMF mixture at d = 384) is large
 * enough that a single-row prediction leaves the loop thread, so the
 * requests go through the coalescing queue.
 */
#include "vmfd_e2e_util.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D        384
#define CLASSES  40
#define N_TRAIN  4000
#define THREADS  32
#define PER_THR  12
#define REQUESTS (THREADS * PER_THR)

typedef struct client {
    int port;
    size_t first; /* request index of its first row */
    const float *rows;
    int status[PER_THR];
    char *body[PER_THR];
} client;

static size_t top_k_of(size_t req)
{
    return req % 3 == 0 ? 3 : 4; /* 4 is the default: no query */
}

/* Some requests are bad, to be refused alone within a coalesced job. */
enum { GOOD, SHORT_ROW, BAD_JSON };
static int kind_of(size_t req)
{
    return req % 10 == 7 ? SHORT_ROW : req % 10 == 9 ? BAD_JSON : GOOD;
}

static void *client_main(void *arg)
{
    client *c = arg;
    char *text = malloc(D * 20 + 64);
    if (!text)
        return NULL;
    for (size_t i = 0; i < PER_THR; i++) {
        size_t req = c->first + i;
        const float *x = c->rows + req * D;
        size_t len = (size_t)sprintf(text, "{\"embeddings\":[[");
        for (size_t j = 0; j < (kind_of(req) == SHORT_ROW ? D - 1 : D); j++)
            len += (size_t)sprintf(text + len, j ? ",%.9g" : "%.9g", (double)x[j]);
        len += (size_t)sprintf(text + len, kind_of(req) == BAD_JSON ? "]" : "]]}");
        e2e_resp r;
        const char *path = top_k_of(req) == 3 ? "/v1/predict?top_k=3" : "/v1/predict";
        if (e2e_http(c->port, "POST", path, "application/json", text, len, NULL, &r) == 0) {
            c->status[i] = r.status;
            c->body[i] = r.body;
            r.body = NULL;
        }
        e2e_resp_free(&r);
    }
    free(text);
    return NULL;
}

static void test_concurrent_single_rows(void **state)
{
    (void)state;
    float *x = malloc((size_t)N_TRAIN * D * sizeof *x);
    int32_t *comp = malloc(N_TRAIN * sizeof *comp);
    int64_t *y = malloc(N_TRAIN * sizeof *y);
    float *q = malloc((size_t)REQUESTS * D * sizeof *q);
    assert_non_null(x);
    assert_non_null(comp);
    assert_non_null(y);
    assert_non_null(q);
    vmf_test_mixture_data(7, N_TRAIN, D, CLASSES, 40.0, 200.0, x, comp, NULL, NULL, NULL);
    for (size_t i = 0; i < N_TRAIN; i++)
        y[i] = comp[i];
    vmf_test_mixture_data(8, REQUESTS, D, CLASSES, 40.0, 200.0, q, NULL, NULL, NULL, NULL);

    e2e_proc p;
    e2e_init(&p);
    e2e_start(&p, NULL, 1);
    assert_int_equal(e2e_put_batch(p.port, "train", x, N_TRAIN, D, y, NULL), 202);
    char st[32];
    assert_string_equal(e2e_wait_batch(p.port, "train", st, sizeof st, 60000), "applied");

    vmf_classifier *ref = e2e_ref_new();
    e2e_ref_learn(ref, x, N_TRAIN, D, y);
    e2e_assert_model_equal(p.state, ref);
    long long jobs0 = e2e_metric(p.port, "vmfd_predict_jobs_total");

    pthread_t th[THREADS];
    client *cl = calloc(THREADS, sizeof *cl);
    assert_non_null(cl);
    for (size_t t = 0; t < THREADS; t++) {
        cl[t].port = p.port;
        cl[t].first = t * PER_THR;
        cl[t].rows = q;
        assert_int_equal(pthread_create(&th[t], NULL, client_main, &cl[t]), 0);
    }
    for (size_t t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);

    /*
     * References: each row alone (n = 1) and all rows in one call. BLAS may
     * pick its GEMM kernel by matrix size (OpenBLAS has small-matrix kernels
     * that sum in another order), so a row predicted within a stack can
     * differ in the last bits from the same row alone (it does here: stacked
     * single-row requests are answered from one GEMM). Each answer must equal
     * the row alone up to float32 rounding of the logits (relative 1e-4 on
     * the probabilities, same labels but for near-ties); the counts of
     * bit-identical answers are reported.
     */
    const vmf_label_table *lt = vmf_classifier_labels(ref);
    float *qn = malloc((size_t)REQUESTS * D * sizeof *qn);
    int32_t *cls_all = malloc((size_t)REQUESTS * 4 * sizeof *cls_all);
    double *proba_all = malloc((size_t)REQUESTS * 4 * sizeof *proba_all);
    assert_non_null(qn);
    assert_non_null(cls_all);
    assert_non_null(proba_all);
    memcpy(qn, q, (size_t)REQUESTS * D * sizeof *qn);
    vmf_assert_ok(vmf_rows_normalize(qn, REQUESTS, D));
    int32_t cls_all3[REQUESTS * 3];
    double proba_all3[REQUESTS * 3];
    vmf_assert_ok(vmf_classifier_predict_topk(ref, qn, REQUESTS, D, 4, cls_all, proba_all));
    vmf_assert_ok(vmf_classifier_predict_topk(ref, qn, REQUESTS, D, 3, cls_all3, proba_all3));
    size_t same_solo = 0, same_stacked = 0, n_bad = 0;
    for (size_t t = 0; t < THREADS; t++) {
        for (size_t i = 0; i < PER_THR; i++) {
            size_t req = cl[t].first + i, k = top_k_of(req);
            int32_t cls[4];
            double proba[4];
            if (kind_of(req) != GOOD) {
                int bad_json = kind_of(req) == BAD_JSON;
                assert_int_equal(cl[t].status[i], bad_json ? 400 : 422);
                assert_non_null(
                    strstr(cl[t].body[i], bad_json ? "\"bad_json\"" : "\"bad_dimension\""));
                free(cl[t].body[i]);
                n_bad++;
                continue;
            }
            assert_int_equal(cl[t].status[i], 200);
            vmf_assert_ok(vmf_classifier_predict_topk(ref, qn + req * D, 1, D, k, cls, proba));
            const int32_t *cs = k == 4 ? cls_all + req * 4 : cls_all3 + req * 3;
            const double *ps = k == 4 ? proba_all + req * 4 : proba_all3 + req * 3;
            json_error_t je;
            json_t *o = json_loads(cl[t].body[i], 0, &je);
            assert_non_null(o);
            assert_int_equal(json_integer_value(json_object_get(o, "top_k")), k);
            json_t *preds = json_object_get(o, "predictions");
            assert_int_equal(json_array_size(preds), 1);
            json_t *labels = json_object_get(json_array_get(preds, 0), "labels");
            json_t *probs = json_object_get(json_array_get(preds, 0), "probabilities");
            assert_int_equal(json_array_size(labels), k);
            assert_int_equal(json_array_size(probs), k);
            int solo = 1, stacked = 1;
            for (size_t rk = 0; rk < k; rk++) {
                json_int_t lab = json_integer_value(json_array_get(labels, rk));
                double got = json_number_value(json_array_get(probs, rk)); /* %.17g: exact */
                solo &= lab == vmf_label_table_int(lt, (size_t)cls[rk]) && got == proba[rk];
                stacked &= lab == vmf_label_table_int(lt, (size_t)cs[rk]) && got == ps[rk];
                /* Otherwise: float32 rounding of the logits only, same ranking. */
                if (fabs(got - proba[rk]) > 1e-4 * proba[rk] ||
                    (lab != vmf_label_table_int(lt, (size_t)cls[rk]) &&
                     !(rk + 1 < k && fabs(proba[rk] - proba[rk + 1]) <= 1e-4 * proba[rk]) &&
                     !(rk > 0 && fabs(proba[rk] - proba[rk - 1]) <= 1e-4 * proba[rk]))) {
                    print_error("request %zu rank %zu: HTTP %s\n  alone: label %lld %.17g\n", req,
                                rk, cl[t].body[i],
                                (long long)vmf_label_table_int(lt, (size_t)cls[rk]), proba[rk]);
                    fail();
                }
            }
            same_solo += (size_t)solo;
            same_stacked += (size_t)stacked;
            json_decref(o);
            free(cl[t].body[i]);
        }
    }
    print_message("answers equal to the row alone: %zu, to the row in one stacked call: %zu\n",
                  same_solo, same_stacked);
    free(qn);
    free(cls_all);
    free(proba_all);
    /* Every request left the loop thread, and some shared a job. */
    long long jobs = e2e_metric(p.port, "vmfd_predict_jobs_total") - jobs0;
    assert_true(jobs > 0);
    assert_true(jobs < REQUESTS);
    assert_int_equal(n_bad, REQUESTS / 5);
    assert_int_equal(e2e_metric(p.port, "vmfd_predict_rows_total"), REQUESTS - n_bad);
    print_message("%d single-row requests from %d connections in %lld jobs\n", REQUESTS, THREADS,
                  jobs);

    assert_int_equal(e2e_stop(&p, SIGTERM), 0);
    vmf_classifier_free(ref);
    free(cl);
    free(x);
    free(comp);
    free(y);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_single_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
