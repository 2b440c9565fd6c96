/*
 * test_topk.c - the shared top-k selector of the classifiers (core/src/topk.c):
 * best first, equal ranks to the lower index, -1 beyond the items, for the
 * insertion path (k <= 16) and the heap path (k > 16), against a stable
 * sort as the reference; and the three classifiers' predict_topk giving
 * the same answers at the edges (n = 0, k = 0, wrong dimension, NULL
 * outputs, bad rows, k beyond the known classes).
 */
#include "topk.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reference: indices 0..n-1 sorted by score, higher first, lower index on ties. */
static const double *ref_scores;

static int ref_cmp(const void *p, const void *q)
{
    int32_t a = *(const int32_t *)p, b = *(const int32_t *)q;
    if (ref_scores[a] != ref_scores[b])
        return ref_scores[a] < ref_scores[b] ? 1 : -1;
    return (a > b) - (a < b);
}

static void reference(const double *score, size_t n, size_t k, int32_t *out)
{
    int32_t *all = malloc((n ? n : 1) * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++)
        all[i] = (int32_t)i;
    ref_scores = score;
    qsort(all, n, sizeof *all, ref_cmp);
    for (size_t j = 0; j < k; j++)
        out[j] = j < n ? all[j] : -1;
    free(all);
}

/* vmf__topk_scores against the reference on one trial's scores. */
static void expect_reference(const double *score, size_t n, size_t k, uint64_t seed, int trial)
{
    int32_t got[64], want[64];
    assert_true(k <= 64);
    size_t m = vmf__topk_scores(score, n, k, got);
    reference(score, n, k, want);
    assert_int_equal(m, k < n ? k : n);
    if (memcmp(got, want, k * sizeof *got) != 0)
        fail_msg("seed %llu trial %d (n %zu, k %zu) differs from a stable sort",
                 (unsigned long long)seed, trial, n, k);
}

static void expect_list(const double *score, size_t n, size_t k, const int32_t *want)
{
    int32_t got[64];
    assert_true(k <= 64);
    memset(got, 0x5a, sizeof got);
    size_t m = vmf__topk_scores(score, n, k, got);
    assert_int_equal(m, k < n ? k : n);
    for (size_t j = 0; j < k; j++)
        if (got[j] != want[j])
            fail_msg("n %zu k %zu: slot %zu is %d, want %d", n, k, j, (int)got[j], (int)want[j]);
    assert_int_equal(got[k], 0x5a5a5a5a); /* nothing written beyond k */
}

static void test_small_cases(void **state)
{
    (void)state;
    const double s[] = {0.5, 2.0, -1.0, 2.0, 0.5, 7.0};
    expect_list(s, 6, 1, (const int32_t[]){5});
    expect_list(s, 6, 3, (const int32_t[]){5, 1, 3}); /* tie 2.0: index 1 before 3 */
    expect_list(s, 6, 5, (const int32_t[]){5, 1, 3, 0, 4});
    expect_list(s, 6, 6, (const int32_t[]){5, 1, 3, 0, 4, 2});
    /* k > n: -1 padding */
    expect_list(s, 6, 9, (const int32_t[]){5, 1, 3, 0, 4, 2, -1, -1, -1});
    expect_list(s, 2, 4, (const int32_t[]){1, 0, -1, -1});
    expect_list(s, 0, 3, (const int32_t[]){-1, -1, -1});
    /* k = 1 with every score equal: the first index */
    const double flat[] = {3.0, 3.0, 3.0, 3.0};
    expect_list(flat, 4, 1, (const int32_t[]){0});
    expect_list(flat, 4, 4, (const int32_t[]){0, 1, 2, 3});
    /* infinities are ordinary scores (pruned classes are -inf) */
    const double inf[] = {-INFINITY, 1.0, INFINITY, -INFINITY};
    expect_list(inf, 4, 4, (const int32_t[]){2, 1, 0, 3});
}

/* Both paths against the reference, on scores drawn from few values (many ties). */
static void test_random_against_sort(void **state)
{
    (void)state;
    const uint64_t seed = 20260517u;
    vmf_rng g;
    vmf_rng_seed(&g, seed);
    double score[300];
    for (int trial = 0; trial < 400; trial++) {
        size_t n = (size_t)(vmf_rng_uniform(&g) * 300.0);
        size_t k = 1 + (size_t)(vmf_rng_uniform(&g) * 60.0);
        int levels = 1 + (int)(vmf_rng_uniform(&g) * 12.0);
        for (size_t i = 0; i < n; i++)
            score[i] = (double)(int)(vmf_rng_uniform(&g) * levels) - 0.5 * levels;
        expect_reference(score, n, k, seed, trial);
    }
}

/*
 * The lane filter (k <= 8 of at least 16 scores) against the reference: ties
 * across lanes, -inf runs, ascending and descending orders (every item enters
 * the list, or none after the first k), a partial last block, and more
 * scores than one chunk of candidates (256).
 */
static void test_lane_filter(void **state)
{
    (void)state;
    const uint64_t seed = 20261203u;
    vmf_rng g;
    vmf_rng_seed(&g, seed);
    double score[403];
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 16 + (size_t)(vmf_rng_uniform(&g) * 388.0);
        size_t k = 1 + (size_t)(vmf_rng_uniform(&g) * 8.0);
        int shape = trial % 5, levels = 1 + (int)(vmf_rng_uniform(&g) * 6.0);
        for (size_t i = 0; i < n; i++) {
            double u = vmf_rng_uniform(&g);
            switch (shape) {
            case 0: /* many ties */
                score[i] = (double)(int)(u * levels);
                break;
            case 1: /* distinct */
                score[i] = u;
                break;
            case 2: /* rising */
                score[i] = (double)i + (u < 0.2 ? -0.5 : 0.0);
                break;
            case 3: /* falling */
                score[i] = -(double)i;
                break;
            default: /* mostly -inf */
                score[i] = u < 0.9 ? -INFINITY : (double)(int)(u * 20);
            }
        }
        expect_reference(score, n, k, seed, trial);
    }
}

/* A two-key rank (as k-NN's vote, then nearest row): the index breaks what is left. */
typedef struct two_keys {
    double vote;
    float near;
} two_keys;

static int two_keys_before(const void *ctx, size_t a, size_t b)
{
    const two_keys *t = ctx;
    if (t[a].vote != t[b].vote)
        return t[a].vote > t[b].vote;
    return t[a].near > t[b].near;
}

static void test_comparator(void **state)
{
    (void)state;
    const two_keys t[] = {{1.0, 0.5f}, {2.0, 0.1f}, {1.0, 0.9f}, {0.0, 0.9f},
                          {1.0, 0.5f}, {2.0, 0.1f}, {0.0, 0.95f}};
    const int32_t want[] = {1, 5, 2, 0, 4, 6, 3, -1};
    for (size_t k = 1; k <= 8; k++) {
        int32_t got[8];
        size_t m = vmf__topk(7, k, two_keys_before, t, got);
        assert_int_equal(m, k < 7 ? k : 7);
        assert_memory_equal(got, want, k * sizeof *got);
    }
    /* The heap path (k > 16) with the same comparator. */
    two_keys big[40];
    for (size_t i = 0; i < 40; i++) {
        big[i].vote = (double)(i % 3);
        big[i].near = (float)(i % 5) * 0.25f;
    }
    int32_t got[40], ins[40];
    assert_int_equal(vmf__topk(40, 40, two_keys_before, big, got), 40);
    assert_int_equal(vmf__topk(16, 16, two_keys_before, big, ins), 16);
    for (size_t j = 1; j < 40; j++) {
        const two_keys *a = &big[got[j - 1]], *b = &big[got[j]];
        int before = two_keys_before(big, (size_t)got[j - 1], (size_t)got[j]);
        int after = two_keys_before(big, (size_t)got[j], (size_t)got[j - 1]);
        if (!before && (after || got[j - 1] > got[j]))
            fail_msg("slot %zu: (%g, %g) #%d then (%g, %g) #%d", j, a->vote, (double)a->near,
                     (int)got[j - 1], b->vote, (double)b->near, (int)got[j]);
    }
    /* the 16 best of the first 16 items, by insertion, in order */
    for (size_t j = 1; j < 16; j++)
        assert_true(
            two_keys_before(big, (size_t)ins[j - 1], (size_t)ins[j]) ||
            (!two_keys_before(big, (size_t)ins[j], (size_t)ins[j - 1]) && ins[j - 1] < ins[j]));
}

/* ---- the three classifiers at the edges of predict_topk ---- */

#define EN 300
#define ED 5
#define EC 3

typedef int (*predict_fn)(const void *model, const float *x, size_t n, size_t d, size_t k,
                          int32_t *classes, double *proba);

static int vmf_predict(const void *m, const float *x, size_t n, size_t d, size_t k, int32_t *c,
                       double *p)
{
    return vmf_classifier_predict_topk(m, x, n, d, k, c, p);
}

static int gmm_predict(const void *m, const float *x, size_t n, size_t d, size_t k, int32_t *c,
                       double *p)
{
    return vmf_gmm_classifier_predict_topk(m, x, n, d, k, c, p);
}

static int knn_predict(const void *m, const float *x, size_t n, size_t d, size_t k, int32_t *c,
                       double *p)
{
    return vmf_knn_classifier_predict_topk(m, x, n, d, k, c, p);
}

static void expect_einval(int rc, const char *fn, const char *what)
{
    assert_int_equal(rc, VMF_EINVAL);
    const char *msg = vmf_last_error();
    if (strncmp(msg, fn, strlen(fn)) != 0 || msg[strlen(fn)] != ':' || !strstr(msg, what))
        fail_msg("message \"%s\" should start with \"%s:\" and say \"%s\"", msg, fn, what);
}

static void check_edges(const char *fn, predict_fn predict, const void *model, const float *x)
{
    int32_t c[2 * 5];
    double p[2 * 5];
    /* n = 0 is a no-op whatever the dimension and outputs; k = 0 never is. */
    vmf_assert_ok(predict(model, x, 0, ED + 1, 3, NULL, NULL));
    expect_einval(predict(model, x, 0, ED, 0, c, p), fn, "k must be at least 1");
    expect_einval(predict(model, x, 2, ED, 0, c, p), fn, "k must be at least 1");
    expect_einval(predict(model, x, 2, ED + 1, 3, c, p), fn,
                  "rows have dimension 6, the model has 5");
    expect_einval(predict(model, x, 2, ED, 3, NULL, p), fn, "classes is NULL");
    expect_einval(predict(model, NULL, 2, ED, 3, c, p), fn, "x is NULL");
    float bad[2 * ED];
    memcpy(bad, x, sizeof bad);
    bad[ED + 1] = NAN;
    expect_einval(predict(model, bad, 2, ED, 3, c, p), fn, "row 1");
    /* k beyond the known classes: -1 and 0 after the EC classes, proba may be NULL. */
    vmf_assert_ok(predict(model, x, 2, ED, 5, c, p));
    for (size_t i = 0; i < 2; i++) {
        double sum = 0.0;
        for (size_t j = 0; j < 5; j++) {
            if (j < EC) {
                assert_true(c[i * 5 + j] >= 0 && c[i * 5 + j] < EC);
                sum += p[i * 5 + j];
            } else {
                assert_int_equal(c[i * 5 + j], -1);
                assert_true(p[i * 5 + j] == 0.0);
            }
        }
        vmf_assert_close(sum, 1.0, 1e-9, 1e-12);
    }
    int32_t c2[2 * 5];
    vmf_assert_ok(predict(model, x, 2, ED, 5, c2, NULL));
    assert_memory_equal(c, c2, sizeof c);
}

static void test_classifiers_alike_at_the_edges(void **state)
{
    (void)state;
    float *x = malloc(EN * ED * sizeof *x);
    int32_t comp[EN];
    int64_t y[EN];
    assert_non_null(x);
    vmf_test_mixture_data(20260518u, EN, ED, EC, 30.0, 60.0, x, comp, NULL, NULL, NULL);
    for (size_t i = 0; i < EN; i++)
        y[i] = comp[i];
    vmf_labels lab = {EN, y, NULL};
    vmf_classifier *v = NULL;
    vmf_gmm_classifier *g = NULL;
    vmf_knn_classifier *kn = NULL;
    vmf_assert_ok(vmf_classifier_fit(NULL, x, EN, ED, &lab, &v));
    vmf_assert_ok(vmf_gmm_classifier_fit(NULL, x, EN, ED, &lab, &g));
    vmf_assert_ok(vmf_knn_classifier_new(NULL, ED, &kn));
    vmf_assert_ok(vmf_knn_classifier_add(kn, x, EN, ED, &lab));
    assert_int_equal(vmf_classifier_n_classes(v), EC);
    check_edges("vmf_classifier_predict_topk", vmf_predict, v, x);
    check_edges("vmf_gmm_classifier_predict_topk", gmm_predict, g, x);
    check_edges("vmf_knn_classifier_predict_topk", knn_predict, kn, x);
    vmf_classifier_free(v);
    vmf_gmm_classifier_free(g);
    vmf_knn_classifier_free(kn);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_random_against_sort),
        cmocka_unit_test(test_lane_filter),
        cmocka_unit_test(test_comparator),
        cmocka_unit_test(test_classifiers_alike_at_the_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
