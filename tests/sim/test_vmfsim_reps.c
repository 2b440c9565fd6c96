/*
 * test_vmfsim_reps.c - vmfsim_reps_run (replicates.c):
 *
 *   - the replicates do not depend on the number of worker processes
 *     (jobs 1 and 3 give identical bits), for a synthetic stream (every
 *     family replayed) and a file stream (logreg and svm re-scored);
 *   - for a file stream, the re-scored logreg and svm curves equal those of
 *     a full replay of the replicate's perturbed stream (the within-day
 *     order changes nothing for them), up to rare near-ties;
 *   - vmfsim_recall_from_ranks equals vmf_topk_macro_recall.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void small_gen(vmfsim_gen_opts *g)
{
    vmfsim_gen_opts_init(g);
    g->n_classes = 6;
    g->dim = 12;
    g->days = 12;
    g->rows_per_day = 30;
    g->min_class_rows = 8;
    g->late_from = 4;
    g->late_to = 8;
    g->test_per_class = 10;
    g->seed = 11;
}

static void small_cfg(vmfsim_model_cfg *c)
{
    vmfsim_model_cfg_init(c);
    c->xgb_rounds = 4;
    c->rf_trees = 4;
    c->gmm_max_iter = 10;
}

static void run_reps(const vmfsim_stream *s, const vmfsim_gen_opts *gen, size_t jobs,
                     vmfsim_reps **out)
{
    static int fam[7] = {0, 1, 2, 3, 4, 5, 6};
    char err[VMFSIM_ERR_SIZE] = "";
    vmfsim_replay_opts o = {.days = 12, .families = fam, .n_models = 7, .record_ranks = !gen};
    small_cfg(&o.cfg);
    vmfsim_curve *cv = NULL;
    if (vmfsim_replay(s, &o, &cv, err))
        fail_msg("replay: %s", err);
    vmf_assert_ok(vmfsim_reps_new(5, 7, 12, out));
    vmfsim_reps_opts ro = {.n = 5, .jobs = jobs, .seed = 42, .gen = gen};
    if (vmfsim_reps_run(s, &o, cv, &ro, *out, err))
        fail_msg("replicates: %s", err);
    vmfsim_curves_free(cv, 7);
}

static void same_reps(const vmfsim_reps *a, const vmfsim_reps *b)
{
    const size_t nt = a->n_models * a->days * a->n;
    assert_memory_equal(a->top1, b->top1, nt * sizeof *a->top1);
    assert_memory_equal(a->top4, b->top4, nt * sizeof *a->top4);
    assert_memory_equal(a->ttp, b->ttp, a->n_models * VMFSIM_N_EPS * a->n * sizeof *a->ttp);
}

static void test_jobs_do_not_change_results(void **state)
{
    (void)state;
    vmfsim_gen_opts g;
    small_gen(&g);
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_stream_generate(&g, &s, NULL, err));
    for (int file = 0; file < 2; file++) {
        vmfsim_reps *a = NULL, *b = NULL;
        run_reps(&s, file ? NULL : &g, 1, &a);
        run_reps(&s, file ? NULL : &g, 3, &b);
        same_reps(a, b);
        /* The replicates differ from each other (bootstrap, order, stream). */
        int differ = 0;
        for (size_t i = 0; i < a->n_models * a->days; i++)
            differ |= a->top1[i * a->n + 1] != a->top1[i * a->n + 2];
        assert_true(differ);
        vmfsim_reps_free(a);
        vmfsim_reps_free(b);
    }
    vmfsim_stream_free(&s);
}

static void test_rescored_equals_replayed(void **state)
{
    (void)state;
    vmfsim_gen_opts g;
    small_gen(&g);
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_stream_generate(&g, &s, NULL, err));
    vmfsim_reps *a = NULL;
    run_reps(&s, NULL, 2, &a);
    /* Replicate r replays the stream perturbed with seed (42 + r) ^ 0x5bd1e995. */
    int fam[2] = {VMFSIM_LOGREG, VMFSIM_SVM};
    size_t mi[2] = {6, 3};
    size_t close = 0, total = 0;
    for (size_t r = 1; r < 5; r++) {
        vmfsim_stream ps;
        vmf_assert_ok(vmfsim_stream_perturb(&s, (42 + r) ^ 0x5bd1e995u, &ps, err));
        vmfsim_replay_opts o = {.days = 12, .families = fam, .n_models = 2};
        small_cfg(&o.cfg);
        o.cfg.seed = 42 + r;
        vmfsim_curve *c = NULL;
        vmf_assert_ok(vmfsim_replay(&ps, &o, &c, err));
        for (size_t m = 0; m < 2; m++)
            for (size_t t = 0; t < 12; t++) {
                double x = a->top1[(mi[m] * 12 + t) * a->n + r];
                close += fabs(x - c[m].top1[t]) < 1e-12;
                total++;
            }
        vmfsim_curves_free(c, 2);
        vmfsim_stream_free(&ps);
    }
    /* A near-tie may flip one test row on a day: at most 5 % of the 96 points. */
    if (close < total - total / 20)
        fail_msg("re-scored curves match a full replay on %zu of %zu points", close, total);
    vmfsim_reps_free(a);
    vmfsim_stream_free(&s);
}

static void test_recall_from_ranks(void **state)
{
    (void)state;
    enum { N = 200, C = 7, K = VMFSIM_TOPK };
    int32_t y[N], topk[N * K];
    unsigned char ranks[N];
    size_t boot[N];
    vmf_rng r;
    vmf_rng_seed(&r, 3);
    for (size_t i = 0; i < N; i++) {
        y[i] = (int32_t)vmf_rng_below(&r, C);
        ranks[i] = K;
        for (size_t j = 0; j < K; j++) {
            topk[i * K + j] = (int32_t)vmf_rng_below(&r, C + 1) - 1;
            if (topk[i * K + j] == y[i] && ranks[i] == K)
                ranks[i] = (unsigned char)j;
        }
    }
    int32_t yb[N], tb[N * K];
    for (size_t i = 0; i < N; i++) {
        boot[i] = (size_t)vmf_rng_below(&r, N / 2); /* some classes may go missing */
        yb[i] = y[boot[i]];
        memcpy(tb + i * K, topk + boot[i] * K, K * sizeof *tb);
    }
    for (size_t k = 1; k <= K; k++) {
        double want;
        vmf_assert_ok(vmf_topk_macro_recall(yb, N, C, tb, K, k, &want));
        vmf_assert_close(vmfsim_recall_from_ranks(ranks, y, C, boot, N, k), want, 1e-15, 0.0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_do_not_change_results),
        cmocka_unit_test(test_rescored_equals_replayed),
        cmocka_unit_test(test_recall_from_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
