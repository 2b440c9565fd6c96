/*
 * test_metrics.c - top-k macro recall and accuracy, NMI, ARI, purity and the
 * confusion matrix against values computed by hand or by the textbook
 * formulas in high precision, plus degenerate inputs and bad arguments.
 *
 * Reference NMI/ARI values for the cases C and D were computed with the
 * script below (mpmath at 40 digits for NMI, exact fractions for ARI):
 *
 *   from fractions import Fraction; from collections import Counter
 *   import mpmath as mp; mp.mp.dps = 40
 *   def nmi(a, b):
 *       n=len(a); ca=Counter(a); cb=Counter(b); cab=Counter(zip(a,b))
 *       mi=mp.fsum(mp.mpf(v)/n*mp.log(mp.mpf(n)*v/(ca[i]*cb[j])) for (i,j),v in cab.items())
 *       h=lambda c: -mp.fsum(mp.mpf(v)/n*mp.log(mp.mpf(v)/n) for v in c.values())
 *       return mi/((h(ca)+h(cb))/2)
 *   def ari(a, b):
 *       n=len(a); ca=Counter(a); cb=Counter(b); cab=Counter(zip(a,b))
 *       c2=lambda x: Fraction(x*(x-1),2)
 *       i=sum(map(c2,cab.values())); sa=sum(map(c2,ca.values())); sb=sum(map(c2,cb.values()))
 *       e=sa*sb/c2(n); m=(sa+sb)/2
 *       return (i-e)/(m-e)
 *
 * Cases A and B are scikit-learn's documented examples (ARI 0.57 and -0.5).
 */
#include "vmf_test.h"

#include <stdlib.h>
#include <string.h>

static void test_macro_recall_by_hand(void **state)
{
    (void)state;
    /* 3 classes; class 0 has 4 rows, class 1 has 2, class 2 has 1. width 3. */
    int32_t y[] = {0, 0, 0, 0, 1, 1, 2};
    int32_t p[] = {
        0,  1,  2,  /* class 0 hit at 1 */
        1,  0,  -1, /* class 0 hit at 2 */
        2,  1,  0,  /* class 0 hit at 3 */
        -1, -1, -1, /* class 0 never */
        1,  1,  1,  /* class 1 hit at 1 (duplicates count once) */
        0,  2,  1,  /* class 1 hit at 3 */
        1,  2,  0,  /* class 2 hit at 2 */
    };
    double r;
    vmf_assert_ok(vmf_topk_macro_recall(y, 7, 3, p, 3, 1, &r));
    vmf_assert_close(r, (1.0 / 4 + 1.0 / 2 + 0.0) / 3, 0, 1e-15);
    vmf_assert_ok(vmf_topk_macro_recall(y, 7, 3, p, 3, 2, &r));
    vmf_assert_close(r, (2.0 / 4 + 1.0 / 2 + 1.0) / 3, 0, 1e-15);
    vmf_assert_ok(vmf_topk_macro_recall(y, 7, 3, p, 3, 3, &r));
    vmf_assert_close(r, (3.0 / 4 + 1.0 + 1.0) / 3, 0, 1e-15);
    /* Accuracy weighs rows, not classes. */
    vmf_assert_ok(vmf_topk_accuracy(y, 7, p, 3, 1, &r));
    vmf_assert_close(r, 2.0 / 7, 0, 1e-15);
    vmf_assert_ok(vmf_topk_accuracy(y, 7, p, 3, 2, &r));
    vmf_assert_close(r, 4.0 / 7, 0, 1e-15);
    vmf_assert_ok(vmf_topk_accuracy(y, 7, p, 3, 3, &r));
    vmf_assert_close(r, 6.0 / 7, 0, 1e-15);
}

static void test_macro_recall_absent_and_unpredicted_classes(void **state)
{
    (void)state;
    /*
     * 5 classes in the label space; classes 1 and 4 are absent from y_true and
     * do not enter the mean. Class 3 is present but never predicted: it scores
     * 0. The -1 slots never match anything.
     */
    int32_t y[] = {0, 0, 2, 3, 3};
    int32_t p[] = {0, -1, 0, 2, 2, -1, -1, -1, 0, 1};
    double r;
    vmf_assert_ok(vmf_topk_macro_recall(y, 5, 5, p, 2, 1, &r));
    vmf_assert_close(r, (1.0 + 1.0 + 0.0) / 3, 0, 1e-15);
    vmf_assert_ok(vmf_topk_macro_recall(y, 5, 5, p, 2, 2, &r));
    vmf_assert_close(r, (1.0 + 1.0 + 0.0) / 3, 0, 1e-15);
    /* A balanced perfect prediction is 1, a fully wrong one 0. */
    int32_t yy[] = {0, 1, 2};
    int32_t good[] = {0, 1, 2}, bad[] = {1, 2, 0};
    vmf_assert_ok(vmf_topk_macro_recall(yy, 3, 3, good, 1, 1, &r));
    assert_true(r == 1.0);
    vmf_assert_ok(vmf_topk_macro_recall(yy, 3, 3, bad, 1, 1, &r));
    assert_true(r == 0.0);
}

static void test_topk_bad_arguments(void **state)
{
    (void)state;
    int32_t y[] = {0, 1};
    int32_t p[] = {0, 1, 1, 0};
    double r = 42.0;
    assert_int_equal(vmf_topk_macro_recall(y, 0, 2, p, 2, 1, &r), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "n = 0"));
    assert_int_equal(vmf_topk_macro_recall(y, 2, 2, p, 2, 0, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_macro_recall(y, 2, 2, p, 2, 3, &r), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "exceeds the prediction width"));
    assert_int_equal(vmf_topk_macro_recall(y, 2, 0, p, 2, 1, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_macro_recall(NULL, 2, 2, p, 2, 1, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_macro_recall(y, 2, 2, NULL, 2, 1, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_macro_recall(y, 2, 2, p, 2, 1, NULL), VMF_EINVAL);
    int32_t yo[] = {0, 2};
    assert_int_equal(vmf_topk_macro_recall(yo, 2, 2, p, 2, 1, &r), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "y_true[1] = 2"));
    int32_t yn[] = {-1, 0};
    assert_int_equal(vmf_topk_macro_recall(yn, 2, 2, p, 2, 1, &r), VMF_EINVAL);
    int32_t po[] = {0, 5, 1, 0};
    assert_int_equal(vmf_topk_macro_recall(y, 2, 2, po, 2, 2, &r), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "[0][1] = 5"));
    /* Only the first k columns are read and checked. */
    vmf_assert_ok(vmf_topk_macro_recall(y, 2, 2, po, 2, 1, &r));
    int32_t pm[] = {0, -2, 1, 0};
    assert_int_equal(vmf_topk_accuracy(y, 2, pm, 2, 2, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_accuracy(yn, 2, p, 2, 1, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_accuracy(y, 0, p, 2, 1, &r), VMF_EINVAL);
    assert_int_equal(vmf_topk_accuracy(y, 2, p, 1, 2, &r), VMF_EINVAL);
    assert_true(r == 1.0); /* from the successful call above; failures never wrote it */
}

static void test_macro_recall_enomem(void **state)
{
    (void)state;
    int32_t y[] = {0, 1};
    int32_t p[] = {0, 1};
    double r = -1.0;
    vmf_debug_fail_alloc_after(0);
    int rc = vmf_topk_macro_recall(y, 2, 2, p, 1, 1, &r);
    vmf_debug_fail_alloc_after(-1);
    assert_int_equal(rc, VMF_ENOMEM);
    assert_true(r == -1.0);
}

static void test_nmi_ari_reference_values(void **state)
{
    (void)state;
    double v;
    int32_t a1[] = {0, 0, 1, 1}, b1[] = {0, 0, 1, 2};
    vmf_assert_ok(vmf_ari(a1, b1, 4, &v));
    vmf_assert_close(v, 4.0 / 7.0, 1e-14, 0);
    vmf_assert_ok(vmf_ari(b1, a1, 4, &v));
    vmf_assert_close(v, 4.0 / 7.0, 1e-14, 0);
    vmf_assert_ok(vmf_nmi(a1, b1, 4, &v)); /* MI = log 2, H = log 2 and 1.5 log 2 */
    vmf_assert_close(v, 0.8, 1e-14, 0);
    int32_t b2[] = {0, 1, 0, 1};
    vmf_assert_ok(vmf_ari(a1, b2, 4, &v));
    vmf_assert_close(v, -0.5, 1e-14, 0);
    vmf_assert_ok(vmf_nmi(a1, b2, 4, &v));
    assert_true(v == 0.0);

    int32_t c_a[] = {5, 5, 5, -1, -1, 7, 7, 7, 7, 2}, c_b[] = {1, 1, 0, 0, 0, 3, 3, 1, 1, 3};
    vmf_assert_ok(vmf_nmi(c_a, c_b, 10, &v));
    vmf_assert_close(v, 0.52406184848043391818, 1e-13, 0);
    vmf_assert_ok(vmf_ari(c_a, c_b, 10, &v));
    vmf_assert_close(v, 4.0 / 25.0, 1e-14, 0);
    vmf_assert_ok(vmf_purity(c_a, c_b, 10, &v));
    vmf_assert_close(v, 0.6, 0, 1e-15);

    int32_t d_a[] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3},
            d_b[] = {9, 9, 4, 4, 4, 4, 4, 4, 2, 2, 8, 8};
    vmf_assert_ok(vmf_nmi(d_a, d_b, 12, &v));
    vmf_assert_close(v, 0.51348860881369130293, 1e-13, 0);
    vmf_assert_ok(vmf_nmi(d_b, d_a, 12, &v));
    vmf_assert_close(v, 0.51348860881369130293, 1e-13, 0);
    vmf_assert_ok(vmf_ari(d_a, d_b, 12, &v));
    vmf_assert_close(v, 18.0 / 139.0, 1e-14, 0);
    /* Purity of d_b against classes d_a: clusters 9:{0,0} 4:{0,1,1,1,2,2} 2:{2,2} 8:{2,3}. */
    vmf_assert_ok(vmf_purity(d_a, d_b, 12, &v));
    vmf_assert_close(v, (2.0 + 3.0 + 2.0 + 1.0) / 12.0, 0, 1e-15);
}

static void test_clustering_invariances(void **state)
{
    (void)state;
    /* Relabelling either side changes nothing (ARI and purity are exact integer
     * arithmetic); identical partitions score 1. */
    enum { N = 2000 };
    int32_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    vmf_rng rng;
    vmf_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        a[i] = (int32_t)vmf_rng_below(&rng, 6);
        b[i] = vmf_rng_uniform(&rng) < 0.7 ? a[i] : (int32_t)vmf_rng_below(&rng, 9);
        c[i] = 1000 - 37 * b[i];
    }
    double v1, v2;
    vmf_assert_ok(vmf_nmi(a, b, N, &v1));
    vmf_assert_ok(vmf_nmi(a, c, N, &v2));
    vmf_assert_close(v1, v2, 1e-13, 0); /* relabelling reorders the sum of the cells */
    assert_true(v1 > 0.3 && v1 < 0.9);
    vmf_assert_ok(vmf_ari(a, b, N, &v1));
    vmf_assert_ok(vmf_ari(a, c, N, &v2));
    assert_true(v1 == v2);
    vmf_assert_ok(vmf_nmi(b, c, N, &v1));
    assert_true(v1 == 1.0);
    vmf_assert_ok(vmf_ari(b, c, N, &v1));
    assert_true(v1 == 1.0);
    vmf_assert_ok(vmf_purity(b, c, N, &v1));
    assert_true(v1 == 1.0);
    free(a);
    free(b);
    free(c);
}

static void test_clustering_degenerate(void **state)
{
    (void)state;
    double v;
    int32_t one[] = {3, 3, 3, 3}, other[] = {-7, -7, -7, -7}, all[] = {0, 1, 2, 3},
            all2[] = {9, 8, 7, 6};
    /* Both single clusters: a perfect match. */
    vmf_assert_ok(vmf_nmi(one, other, 4, &v));
    assert_true(v == 1.0);
    vmf_assert_ok(vmf_ari(one, other, 4, &v));
    assert_true(v == 1.0);
    /* One single cluster against all singletons: no information, ARI 0. */
    vmf_assert_ok(vmf_nmi(one, all, 4, &v));
    assert_true(v == 0.0);
    vmf_assert_ok(vmf_nmi(all, one, 4, &v));
    assert_true(v == 0.0);
    vmf_assert_ok(vmf_ari(one, all, 4, &v));
    assert_true(v == 0.0);
    /* Both all singletons: identical partitions. */
    vmf_assert_ok(vmf_nmi(all, all2, 4, &v));
    assert_true(v == 1.0);
    vmf_assert_ok(vmf_ari(all, all2, 4, &v));
    assert_true(v == 1.0);
    /* One row. */
    vmf_assert_ok(vmf_nmi(one, all, 1, &v));
    assert_true(v == 1.0);
    vmf_assert_ok(vmf_ari(one, all, 1, &v));
    assert_true(v == 1.0);
    vmf_assert_ok(vmf_purity(one, all, 1, &v));
    assert_true(v == 1.0);
    /* Purity: singletons are pure; one cluster scores the majority share. */
    int32_t y[] = {0, 0, 0, 1};
    vmf_assert_ok(vmf_purity(y, all, 4, &v));
    assert_true(v == 1.0);
    vmf_assert_ok(vmf_purity(y, one, 4, &v));
    assert_true(v == 0.75);
    /* Extreme label values do not collide. */
    int32_t ext_a[] = {INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX}, ext_b[] = {-1, 0, -1, 0};
    vmf_assert_ok(vmf_ari(ext_a, ext_b, 4, &v));
    assert_true(v == 1.0);
}

static void test_clustering_bad_arguments(void **state)
{
    (void)state;
    int32_t a[] = {0, 1};
    double v = 5.0;
    assert_int_equal(vmf_nmi(a, a, 0, &v), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "n = 0"));
    assert_int_equal(vmf_ari(a, a, 0, &v), VMF_EINVAL);
    assert_int_equal(vmf_purity(a, a, 0, &v), VMF_EINVAL);
    assert_int_equal(vmf_nmi(NULL, a, 2, &v), VMF_EINVAL);
    assert_int_equal(vmf_ari(a, NULL, 2, &v), VMF_EINVAL);
    assert_int_equal(vmf_purity(a, a, 2, NULL), VMF_EINVAL);
    assert_true(v == 5.0);
    /* Every allocation of the contingency table can fail cleanly. */
    for (long fail = 0; fail < 8; fail++) {
        vmf_debug_fail_alloc_after(fail);
        int r1 = vmf_nmi(a, a, 2, &v);
        vmf_debug_fail_alloc_after(fail);
        int r2 = vmf_ari(a, a, 2, &v);
        vmf_debug_fail_alloc_after(-1);
        assert_true(r1 == VMF_OK || r1 == VMF_ENOMEM);
        assert_true(r2 == VMF_OK || r2 == VMF_ENOMEM);
        if (fail == 0)
            assert_int_equal(r1, VMF_ENOMEM);
    }
}

static void test_confusion_matrix(void **state)
{
    (void)state;
    int32_t y[] = {0, 0, 1, 2, 2, 2};
    int32_t p[] = {0, 1, 1, 2, -1, 0};
    uint64_t conf[9];
    vmf_assert_ok(vmf_confusion_matrix(y, p, 6, 3, conf));
    uint64_t want[9] = {1, 1, 0, 0, 1, 0, 1, 0, 1};
    assert_memory_equal(conf, want, sizeof want);
    /* Bad input leaves the matrix untouched. */
    int32_t bad[] = {0, 1, 1, 2, 3, 0};
    assert_int_equal(vmf_confusion_matrix(y, bad, 6, 3, conf), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "y_pred[4] = 3"));
    assert_memory_equal(conf, want, sizeof want);
    assert_int_equal(vmf_confusion_matrix(p, y, 6, 3, conf), VMF_EINVAL);
    assert_int_equal(vmf_confusion_matrix(y, p, 0, 3, conf), VMF_EINVAL);
    assert_int_equal(vmf_confusion_matrix(y, p, 6, 0, conf), VMF_EINVAL);
    assert_int_equal(vmf_confusion_matrix(y, p, 6, 3, NULL), VMF_EINVAL);
    assert_memory_equal(conf, want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_macro_recall_by_hand),
        cmocka_unit_test(test_macro_recall_absent_and_unpredicted_classes),
        cmocka_unit_test(test_topk_bad_arguments),
        cmocka_unit_test(test_macro_recall_enomem),
        cmocka_unit_test(test_nmi_ari_reference_values),
        cmocka_unit_test(test_clustering_invariances),
        cmocka_unit_test(test_clustering_degenerate),
        cmocka_unit_test(test_clustering_bad_arguments),
        cmocka_unit_test(test_confusion_matrix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
