/*
 * test_null_opts.c - the options rule of vmfmm.h: every public function that
 * takes a `const vmf_*_opts *` treats NULL as the defaults of the matching
 * vmf_*_opts_init, with results identical bit for bit. Each case runs the
 * function twice on the same input, once with NULL and once with freshly
 * initialized options, and compares the saved states, the parameters or the
 * outputs byte for byte.
 */
#include "vmf_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20260515u
#define N    600
#define D    6
#define K    3

typedef struct data {
    float x[N * D];
    int32_t comp[N];
    int64_t y[N];
} data;

static data *make_data(void)
{
    data *t = calloc(1, sizeof *t);
    assert_non_null(t);
    vmf_test_mixture_data(SEED, N, D, K, 20.0, 60.0, t->x, t->comp, NULL, NULL, NULL);
    for (size_t i = 0; i < N; i++)
        t->y[i] = t->comp[i];
    return t;
}

static void assert_same_classifier(const vmf_classifier *a, const vmf_classifier *b)
{
    void *ba, *bb;
    size_t la, lb;
    vmf_assert_ok(vmf_classifier_save(a, &ba, &la));
    vmf_assert_ok(vmf_classifier_save(b, &bb, &lb));
    vmf_test_assert_same_bytes(ba, la, bb, lb);
    free(ba);
    free(bb);
}

static void assert_same_stepwise(const vmf_stepwise *a, const vmf_stepwise *b)
{
    void *ba, *bb;
    size_t la, lb;
    vmf_assert_ok(vmf_stepwise_save(a, &ba, &la));
    vmf_assert_ok(vmf_stepwise_save(b, &bb, &lb));
    vmf_test_assert_same_bytes(ba, la, bb, lb);
    free(ba);
    free(bb);
}

static void test_mixture_fit(void **state)
{
    (void)state;
    data *t = make_data();
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    vmf_mixture *a = NULL, *b = NULL;
    vmf_em_report ra, rb;
    vmf_assert_ok(vmf_mixture_fit(NULL, t->x, N, D, &a, &ra));
    vmf_assert_ok(vmf_mixture_fit(&o, t->x, N, D, &b, &rb));
    vmf_test_assert_same_mixture(a, b);
    assert_int_equal(vmf_mixture_n_components(a), o.n_components);
    assert_int_equal(ra.n_iter, rb.n_iter);
    assert_memory_equal(&ra.loglik, &rb.loglik, sizeof ra.loglik);
    assert_memory_equal(ra.trace, rb.trace, ra.n_iter * sizeof *ra.trace);
    vmf_em_report_free(&ra);
    vmf_em_report_free(&rb);
    vmf_mixture_free(a);
    vmf_mixture_free(b);
    free(t);
}

static void test_em_init_and_mstep(void **state)
{
    (void)state;
    data *t = make_data();
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    vmf_rng ga, gb;
    vmf_rng_seed(&ga, 7);
    vmf_rng_seed(&gb, 7);
    vmf_mixture *a = NULL, *b = NULL;
    vmf_assert_ok(vmf_em_init_mixture(NULL, t->x, N, D, &ga, &a));
    vmf_assert_ok(vmf_em_init_mixture(&o, t->x, N, D, &gb, &b));
    vmf_test_assert_same_mixture(a, b);
    /* Both drew the same numbers (members compared: the struct has padding). */
    assert_memory_equal(ga.s, gb.s, sizeof ga.s);
    assert_int_equal(ga.has_spare, gb.has_spare);

    /* One M-step from the same statistics, NULL against the defaults. */
    vmf_suffstats *s;
    vmf_assert_ok(vmf_suffstats_new(vmf_mixture_n_components(a), D, &s));
    vmf_assert_ok(vmf_suffstats_add_block(s, a, t->x, N, D, VMF_ASSIGN_SOFT, NULL, 0, NULL,
                                          VMF_SUFFSTATS_S1));
    size_t na = 99, nb = 99;
    vmf_assert_ok(vmf_suffstats_mstep(s, NULL, a, &na));
    vmf_assert_ok(vmf_suffstats_mstep(s, &o, b, &nb));
    assert_int_equal(na, nb);
    vmf_test_assert_same_mixture(a, b);
    vmf_suffstats_free(s);
    vmf_mixture_free(a);
    vmf_mixture_free(b);
    free(t);
}

static void test_kappa_estimate(void **state)
{
    (void)state;
    vmf_kappa_opts o;
    vmf_kappa_opts_init(&o);
    const double cases[][3] = {{3, 10.0, 9.0}, {64, 1000.0, 512.5}, {512, 1.0, 0.999}, {2, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double ka = -1.0, kb = -2.0;
        vmf_assert_ok(vmf_kappa_estimate(NULL, (size_t)cases[i][0], cases[i][1], cases[i][2], &ka));
        vmf_assert_ok(vmf_kappa_estimate(&o, (size_t)cases[i][0], cases[i][1], cases[i][2], &kb));
        assert_memory_equal(&ka, &kb, sizeof ka);
    }
    /* Bad data is still refused with NULL options. */
    double k;
    assert_int_equal(vmf_kappa_estimate(NULL, 1, 1.0, 0.5, &k), VMF_EINVAL);
    assert_int_equal(vmf_kappa_estimate(NULL, 3, 1.0, 0.5, NULL), VMF_EINVAL);
}

static void test_stepwise(void **state)
{
    (void)state;
    data *t = make_data();
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    vmf_stepwise *a = NULL, *b = NULL;
    vmf_assert_ok(vmf_stepwise_new(NULL, D, &a));
    vmf_assert_ok(vmf_stepwise_new(&o, D, &b));
    vmf_assert_ok(vmf_stepwise_update(a, t->x, N, D));
    vmf_assert_ok(vmf_stepwise_update(b, t->x, N, D));
    assert_same_stepwise(a, b);
    assert_int_equal(vmf_mixture_n_components(vmf_stepwise_mixture(a)), o.n_components);

    vmf_stepwise *fa = NULL, *fb = NULL;
    const vmf_mixture *m = vmf_stepwise_mixture(a);
    vmf_assert_ok(vmf_stepwise_from_mixture(NULL, m, 100.0, &fa));
    vmf_assert_ok(vmf_stepwise_from_mixture(&o, m, 100.0, &fb));
    vmf_assert_ok(vmf_stepwise_update(fa, t->x, N / 2, D));
    vmf_assert_ok(vmf_stepwise_update(fb, t->x, N / 2, D));
    assert_same_stepwise(fa, fb);
    vmf_stepwise_free(a);
    vmf_stepwise_free(b);
    vmf_stepwise_free(fa);
    vmf_stepwise_free(fb);
    free(t);
}

static void test_classifier(void **state)
{
    (void)state;
    data *t = make_data();
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_labels y = {N, t->y, NULL};
    vmf_classifier *a = NULL, *b = NULL;
    vmf_assert_ok(vmf_classifier_new(NULL, 0, &a));
    vmf_assert_ok(vmf_classifier_new(&o, 0, &b));
    vmf_labels half = {N / 2, t->y, NULL}, rest = {N - N / 2, t->y + N / 2, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(a, t->x, N / 2, D, &half));
    vmf_assert_ok(vmf_classifier_partial_fit(b, t->x, N / 2, D, &half));
    vmf_assert_ok(vmf_classifier_partial_fit(a, t->x + (N / 2) * D, N - N / 2, D, &rest));
    vmf_assert_ok(vmf_classifier_partial_fit(b, t->x + (N / 2) * D, N - N / 2, D, &rest));
    assert_same_classifier(a, b);
    vmf_classifier_free(a);
    vmf_classifier_free(b);

    vmf_assert_ok(vmf_classifier_fit(NULL, t->x, N, D, &y, &a));
    vmf_assert_ok(vmf_classifier_fit(&o, t->x, N, D, &y, &b));
    assert_same_classifier(a, b);
    assert_int_equal(vmf_classifier_n_classes(a), K);
    vmf_classifier_free(a);
    vmf_classifier_free(b);
    free(t);
}

static void test_baselines(void **state)
{
    (void)state;
    data *t = make_data();
    vmf_labels y = {N, t->y, NULL};
    int32_t ca[N * 2], cb[N * 2];
    double pa[N * 2], pb[N * 2];

    vmf_gmm_opts go;
    vmf_gmm_opts_init(&go);
    vmf_gmm_classifier *ga = NULL, *gb = NULL;
    vmf_assert_ok(vmf_gmm_classifier_fit(NULL, t->x, N, D, &y, &ga));
    vmf_assert_ok(vmf_gmm_classifier_fit(&go, t->x, N, D, &y, &gb));
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(ga, t->x, N, D, 2, ca, pa));
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(gb, t->x, N, D, 2, cb, pb));
    assert_memory_equal(ca, cb, sizeof ca);
    assert_memory_equal(pa, pb, sizeof pa);
    for (size_t i = 0; i < K; i++)
        assert_memory_equal(vmf_gmm_classifier_class_means(ga, i),
                            vmf_gmm_classifier_class_means(gb, i),
                            vmf_gmm_classifier_class_n_components(ga, i) * D * sizeof(double));
    vmf_gmm_classifier_free(ga);
    vmf_gmm_classifier_free(gb);

    vmf_knn_opts ko;
    vmf_knn_opts_init(&ko);
    ko.reservoir_per_class = 0;
    vmf_knn_classifier *ka = NULL, *kb = NULL;
    vmf_assert_ok(vmf_knn_classifier_new(NULL, D, &ka));
    vmf_assert_ok(vmf_knn_classifier_new(&ko, D, &kb));
    vmf_assert_ok(vmf_knn_classifier_add(ka, t->x, N, D, &y));
    vmf_assert_ok(vmf_knn_classifier_add(kb, t->x, N, D, &y));
    vmf_assert_ok(vmf_knn_classifier_predict_topk(ka, t->x, N, D, 2, ca, pa));
    vmf_assert_ok(vmf_knn_classifier_predict_topk(kb, t->x, N, D, 2, cb, pb));
    assert_memory_equal(ca, cb, sizeof ca);
    assert_memory_equal(pa, pb, sizeof pa);
    vmf_knn_classifier_free(ka);
    vmf_knn_classifier_free(kb);
    free(t);
}

static void assert_same_array(const vmf_array *a, const vmf_array *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->ndim, b->ndim);
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->ndim; i++)
        assert_int_equal(a->shape[i], b->shape[i]);
    if (a->dtype == VMF_DTYPE_STR) {
        for (size_t i = 0; i < a->count; i++)
            assert_string_equal(((char *const *)a->data)[i], ((char *const *)b->data)[i]);
    } else if (a->count > 0) {
        assert_memory_equal(a->data, b->data, a->count * vmf_dtype_size(a->dtype));
    }
}

static void test_csv_columns(void **state)
{
    const char *dir = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/x.csv", dir);
    vmf_test_write_text(path, "a,b,c\n0.5,1.25,-3\n2,0,1e-3\n");
    vmf_csv_opts o;
    vmf_csv_opts_init(&o);
    vmf_array xa, xb, ia, ib, la, lb;
    vmf_assert_ok(vmf_csv_read_columns(path, NULL, &xa, &ia, &la));
    vmf_assert_ok(vmf_csv_read_columns(path, &o, &xb, &ib, &lb));
    assert_same_array(&xa, &xb);
    assert_same_array(&ia, &ib);
    assert_same_array(&la, &lb);
    assert_int_equal(xa.shape[0], 2);
    assert_int_equal(xa.shape[1], 3);
    vmf_array_free(&xa);
    vmf_array_free(&xb);
    vmf_array_free(&ia);
    vmf_array_free(&ib);
    vmf_array_free(&la);
    vmf_array_free(&lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixture_fit),     cmocka_unit_test(test_em_init_and_mstep),
        cmocka_unit_test(test_kappa_estimate),  cmocka_unit_test(test_stepwise),
        cmocka_unit_test(test_classifier),      cmocka_unit_test(test_baselines),
        vmf_test_with_tmpdir(test_csv_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
