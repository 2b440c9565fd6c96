/*
 * test_topk.c - the shared top-k selector of the classifiers (core/src/topk.c):
 * best first, equal ranks to the lower index, -1 beyond the items, for the
 * insertion path (k <= 16) and the heap path (k > 16), against a stable
 * sort as the reference.
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
    int32_t got[64], want[64];
    for (int trial = 0; trial < 400; trial++) {
        size_t n = (size_t)(vmf_rng_uniform(&g) * 300.0);
        size_t k = 1 + (size_t)(vmf_rng_uniform(&g) * 60.0);
        int levels = 1 + (int)(vmf_rng_uniform(&g) * 12.0);
        for (size_t i = 0; i < n; i++)
            score[i] = (double)(int)(vmf_rng_uniform(&g) * levels) - 0.5 * levels;
        size_t m = vmf__topk_scores(score, n, k, got);
        reference(score, n, k, want);
        assert_int_equal(m, k < n ? k : n);
        if (memcmp(got, want, k * sizeof *got) != 0)
            fail_msg("seed %llu trial %d (n %zu, k %zu) differs from a stable sort",
                     (unsigned long long)seed, trial, n, k);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_cases),
        cmocka_unit_test(test_random_against_sort),
        cmocka_unit_test(test_comparator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
