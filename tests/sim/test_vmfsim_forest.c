/*
 * test_vmfsim_forest.c - the random forest of vmfsim's rf family (forest.c):
 * it learns an axis-aligned rule exactly, its probabilities are
 * distributions, it is deterministic for a seed, depth and leaf-size limits
 * hold (a depth-1 forest is stumps; a leaf size above half the rows leaves
 * every tree a single leaf holding the weighted class fractions, so balanced
 * weights give equal fractions), and bad arguments are refused with a
 * message.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D = 4, M = 600, NT = 400 };

/* Uniform rows in [-1, 1]^D; class 1 exactly when x0 > 0.3. */
static void rule_data(uint64_t seed, size_t n, float *x, int32_t *y)
{
    vmf_rng r;
    vmf_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < D; j++)
            x[i * D + j] = (float)(2.0 * vmf_rng_uniform(&r) - 1.0);
        y[i] = x[i * D] > 0.3f;
    }
}

static vmfsim_forest *fit_rule(const float *x, const int32_t *y, const float *w,
                               const vmfsim_forest_opts *o, uint64_t seed)
{
    size_t rows[M];
    for (size_t i = 0; i < M; i++)
        rows[i] = i;
    vmfsim_forest *f = NULL;
    char err[VMFSIM_ERR_SIZE];
    int rc = vmfsim_forest_fit(x, D, rows, M, y, w, 2, o, seed, &f, err);
    if (rc != VMF_OK)
        fail_msg("forest fit: %s", err);
    return f;
}

static void test_rule_and_determinism(void **state)
{
    (void)state;
    float x[M * D], xt[NT * D], w[M];
    int32_t y[M], yt[NT];
    rule_data(1, M, x, y);
    rule_data(2, NT, xt, yt);
    for (size_t i = 0; i < M; i++)
        w[i] = 1.0f;
    vmfsim_forest_opts o = {50, 20, 1, 2, 32};
    vmfsim_forest *a = fit_rule(x, y, w, &o, 7), *b = fit_rule(x, y, w, &o, 7),
                  *c = fit_rule(x, y, w, &o, 8);
    double pa[NT * 2], pb[NT * 2], pc[NT * 2];
    vmfsim_forest_predict(a, xt, NT, pa);
    vmfsim_forest_predict(b, xt, NT, pb);
    vmfsim_forest_predict(c, xt, NT, pc);
    size_t hits = 0;
    for (size_t i = 0; i < NT; i++) {
        assert_true(pa[2 * i] >= 0.0 && pa[2 * i + 1] >= 0.0);
        assert_true(fabs(pa[2 * i] + pa[2 * i + 1] - 1.0) < 1e-6);
        hits += (pa[2 * i + 1] > pa[2 * i]) == yt[i];
    }
    printf("# axis-aligned rule: %zu of %d fresh rows right, %zu nodes\n", hits, NT,
           vmfsim_forest_nodes(a));
    assert_true(hits >= NT - 8); /* only rows within a bin of the cut can miss */
    assert_memory_equal(pa, pb, sizeof pa);
    assert_true(memcmp(pa, pc, sizeof pa) != 0);
    vmfsim_forest_free(a);
    vmfsim_forest_free(b);
    vmfsim_forest_free(c);
}

static void test_limits_and_weights(void **state)
{
    (void)state;
    float x[M * D], w[M];
    int32_t y[M];
    rule_data(3, M, x, y);
    /* Depth 1: every tree is a root and two leaves. */
    for (size_t i = 0; i < M; i++)
        w[i] = 1.0f;
    vmfsim_forest_opts o = {20, 1, 1, D, 32};
    vmfsim_forest *f = fit_rule(x, y, w, &o, 1);
    assert_int_equal(vmfsim_forest_nodes(f), 3 * 20);
    vmfsim_forest_free(f);
    /*
     * No split can leave min_leaf drawn rows on both sides: one leaf per tree,
     * holding the weighted class fractions of its bootstrap sample. With
     * balanced weights (class c weighs M / (2 n_c)) they are near 1/2 each.
     */
    size_t n1 = 0;
    for (size_t i = 0; i < M; i++)
        n1 += (size_t)y[i];
    assert_true(n1 > 100 && n1 < 250); /* about 35 % of the rows */
    for (size_t i = 0; i < M; i++)
        w[i] = (float)((double)M / (2.0 * (double)(y[i] ? n1 : M - n1)));
    o = (vmfsim_forest_opts){40, 20, M / 2 + 1, D, 32};
    f = fit_rule(x, y, w, &o, 2);
    assert_int_equal(vmfsim_forest_nodes(f), 40);
    double p[2];
    vmfsim_forest_predict(f, x, 1, p);
    printf("# balanced single leaves: %.4f %.4f (class 1 is %.2f of the rows)\n", p[0], p[1],
           (double)n1 / M);
    assert_true(fabs(p[1] - 0.5) < 0.03);
    vmfsim_forest_free(f);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    float x[8] = {0}, w[2] = {1.0f, 1.0f};
    int32_t y[2] = {0, 1};
    size_t rows[2] = {0, 1};
    vmfsim_forest *f = NULL;
    char err[VMFSIM_ERR_SIZE];
    vmfsim_forest_opts o = {10, 5, 1, 2, 300};
    assert_int_equal(vmfsim_forest_fit(x, 4, rows, 2, y, w, 2, &o, 1, &f, err), VMF_EINVAL);
    assert_non_null(strstr(err, "forest"));
    assert_null(f);
    o.n_bins = 32;
    y[1] = 2; /* beyond k */
    assert_int_equal(vmfsim_forest_fit(x, 4, rows, 2, y, w, 2, &o, 1, &f, err), VMF_EINVAL);
    assert_non_null(strstr(err, "row 1"));
    y[1] = 1;
    w[0] = NAN;
    assert_int_equal(vmfsim_forest_fit(x, 4, rows, 2, y, w, 2, &o, 1, &f, err), VMF_EINVAL);
    assert_null(f);
    /* Constant features have no cut: the trees are single leaves, still usable. */
    w[0] = 1.0f;
    assert_int_equal(vmfsim_forest_fit(x, 4, rows, 2, y, w, 2, &o, 1, &f, err), VMF_OK);
    assert_int_equal(vmfsim_forest_nodes(f), 10);
    double p[2];
    vmfsim_forest_predict(f, x, 1, p);
    assert_true(fabs(p[0] + p[1] - 1.0) < 1e-6);
    vmfsim_forest_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_and_determinism),
        cmocka_unit_test(test_limits_and_weights),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
