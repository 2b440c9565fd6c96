/*
 * test_vmfsim_trees.c - vmfsim's rf and xgboost families (model_xgb.c) with
 * their ordinary strong settings: both learn a separable problem; early
 * stopping stops before the round limit where more rounds only overfit, and
 * the round it keeps is the same for the same seed; class-balanced weights
 * raise the recall of a rare class over unweighted trees; the per-class row
 * quota and the refit-on-growth rule do what --help says, and the replay
 * counts only the refits that happened.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * rows[c] rows of each class c around the mean mu_c (kappa), mu_c = the unit
 * vector e_c tilted towards e_0 by `tilt` (0: orthogonal classes).
 */
typedef struct problem {
    size_t n, d, C;
    float *x;
    int32_t *y;
} problem;

static void make_problem(problem *p, size_t C, size_t d, const size_t *rows, double kappa,
                         double tilt, uint64_t seed)
{
    vmf_rng r;
    vmf_rng_seed(&r, seed);
    p->C = C;
    p->d = d;
    p->n = 0;
    for (size_t c = 0; c < C; c++)
        p->n += rows[c];
    p->x = malloc(p->n * d * sizeof *p->x);
    p->y = malloc(p->n * sizeof *p->y);
    float *mu = calloc(C * d, sizeof *mu);
    assert_non_null(p->x);
    assert_non_null(p->y);
    assert_non_null(mu);
    for (size_t c = 0; c < C; c++) {
        double a = c == 0 ? 0.0 : tilt;
        mu[c * d + 0] = (float)(c == 0 ? 1.0 : sin(a));
        if (c > 0)
            mu[c * d + c] = (float)cos(a);
    }
    /* Interleave the classes so that every prefix of the rows holds all of them. */
    size_t i = 0, *left = malloc(C * sizeof *left);
    memcpy(left, rows, C * sizeof *left);
    while (i < p->n) {
        for (size_t c = 0; c < C; c++) {
            if (!left[c])
                continue;
            left[c]--;
            vmf_assert_ok(vmf_sample_vmf(mu + c * d, d, kappa, 1, &r, p->x + i * d));
            p->y[i++] = (int32_t)c;
        }
    }
    free(left);
    free(mu);
}

static void problem_free(problem *p)
{
    free(p->x);
    free(p->y);
}

/* Per-class top-1 recall of model m on problem t into recall [C]; returns the macro mean. */
static double recalls(vmfsim_model *m, const problem *t, double *recall)
{
    int32_t *topk = malloc(t->n * sizeof *topk);
    double *nov = malloc(t->n * sizeof *nov);
    char err[VMFSIM_ERR_SIZE] = "";
    assert_non_null(topk);
    if (m->ops->predict_topk(m->state, t->x, t->n, t->d, 1, topk, nov, err))
        fail_msg("predict: %s", err);
    size_t *hit = calloc(t->C, sizeof *hit), *tot = calloc(t->C, sizeof *tot);
    for (size_t i = 0; i < t->n; i++) {
        tot[t->y[i]]++;
        hit[t->y[i]] += topk[i] == t->y[i];
        /* The novelty score is minus the largest class probability. */
        assert_true(nov[i] < 0.0 && nov[i] >= -1.0);
    }
    double mean = 0.0;
    for (size_t c = 0; c < t->C; c++) {
        recall[c] = tot[c] ? (double)hit[c] / (double)tot[c] : 0.0;
        mean += recall[c] / (double)t->C;
    }
    free(hit), free(tot), free(topk), free(nov);
    return mean;
}

static vmfsim_model *fit(int family, const vmfsim_model_cfg *cfg, const problem *p, size_t n)
{
    vmfsim_model *m = NULL;
    char err[VMFSIM_ERR_SIZE] = "";
    if (vmfsim_model_new(family, cfg, p->d, p->C, &m, err))
        fail_msg("model: %s", err);
    if (m->ops->learn_day(m->state, 200, p->x, n, p->d, p->y, err))
        fail_msg("learn: %s", err);
    return m;
}

static void test_both_learn_a_separable_problem(void **state)
{
    (void)state;
    const size_t rows[5] = {300, 200, 150, 100, 60}, test_rows[5] = {100, 100, 100, 100, 100};
    problem p, t;
    make_problem(&p, 5, 16, rows, 60.0, 0.0, 11);
    make_problem(&t, 5, 16, test_rows, 60.0, 0.0, 12);
    vmfsim_model_cfg cfg;
    vmfsim_model_cfg_init(&cfg); /* the shipped defaults */
    const int fam[2] = {VMFSIM_RF, VMFSIM_XGBOOST};
    for (int f = 0; f < 2; f++) {
        vmfsim_model *m = fit(fam[f], &cfg, &p, p.n);
        double rec[5];
        double macro = recalls(m, &t, rec);
        print_message("%s: macro recall %.4f\n", vmfsim_family_name(fam[f]), macro);
        if (!(macro > 0.97))
            fail_msg("%s: macro recall %.4f <= 0.97", vmfsim_family_name(fam[f]), macro);
        size_t rounds, fits, used;
        vmfsim_tree_info(m, &rounds, &fits, &used);
        assert_int_equal(fits, 1);
        assert_int_equal(m->ops->rows_seen(m->state), p.n);
        if (fam[f] == VMFSIM_RF)
            assert_int_equal(rounds, 1);
        else
            assert_true(rounds >= 1 && rounds <= cfg.xgb_rounds);
        vmfsim_model_free(m);
    }
    problem_free(&p);
    problem_free(&t);
}

static void test_early_stopping_stops_and_is_deterministic(void **state)
{
    (void)state;
    /* Heavily overlapping classes: the held-out loss bottoms out after a few rounds. */
    const size_t rows[4] = {150, 150, 150, 150};
    problem p;
    make_problem(&p, 4, 16, rows, 15.0, 1.0, 21);
    vmfsim_model_cfg cfg;
    vmfsim_model_cfg_init(&cfg);
    cfg.xgb_rounds = 200;
    cfg.xgb_patience = 10;
    vmfsim_model *a = fit(VMFSIM_XGBOOST, &cfg, &p, p.n), *b = fit(VMFSIM_XGBOOST, &cfg, &p, p.n);
    size_t ra, rb, fa, fb, ua, ub;
    vmfsim_tree_info(a, &ra, &fa, &ua);
    vmfsim_tree_info(b, &rb, &fb, &ub);
    print_message("early stopping kept %zu of at most %zu rounds\n", ra, cfg.xgb_rounds);
    assert_true(ra >= 5 && ra < 100);
    assert_int_equal(ra, rb);
    /* 15 % of each class (23 rows) is held out; all 600 rows are used. */
    assert_int_equal(ua, 600);
    double reca[4], recb[4];
    recalls(a, &p, reca);
    recalls(b, &p, recb);
    assert_memory_equal(reca, recb, sizeof reca);
    vmfsim_model_free(a);
    vmfsim_model_free(b);

    /* Without early stopping every round is kept. */
    cfg.xgb_patience = 0;
    cfg.xgb_rounds = 37;
    vmfsim_model *c = fit(VMFSIM_XGBOOST, &cfg, &p, p.n);
    vmfsim_tree_info(c, &ra, &fa, &ua);
    assert_int_equal(ra, 37);
    vmfsim_model_free(c);
    problem_free(&p);
}

static void test_balanced_weights_raise_minority_recall(void **state)
{
    (void)state;
    /* Class 1 is rare (25 rows against 1,200) and overlaps class 0. */
    const size_t rows[2] = {1200, 25}, test_rows[2] = {400, 400};
    problem p, t;
    make_problem(&p, 2, 8, rows, 12.0, 0.7, 31);
    make_problem(&t, 2, 8, test_rows, 12.0, 0.7, 32);
    const int fam[2] = {VMFSIM_RF, VMFSIM_XGBOOST};
    for (int f = 0; f < 2; f++) {
        vmfsim_model_cfg cfg;
        vmfsim_model_cfg_init(&cfg);
        cfg.tree_class_rows = 0; /* every row, so the weights are the only difference */
        double bal[2], unw[2];
        vmfsim_model *m = fit(fam[f], &cfg, &p, p.n);
        double mb = recalls(m, &t, bal);
        vmfsim_model_free(m);
        cfg.tree_unweighted = 1;
        m = fit(fam[f], &cfg, &p, p.n);
        double mu = recalls(m, &t, unw);
        vmfsim_model_free(m);
        print_message("%s: minority recall balanced %.4f unweighted %.4f (macro %.4f %.4f)\n",
                      vmfsim_family_name(fam[f]), bal[1], unw[1], mb, mu);
        if (!(bal[1] > unw[1] + 0.15))
            fail_msg("%s: balanced minority recall %.4f not above unweighted %.4f + 0.15",
                     vmfsim_family_name(fam[f]), bal[1], unw[1]);
        if (!(mb > mu))
            fail_msg("%s: balanced macro recall %.4f <= unweighted %.4f",
                     vmfsim_family_name(fam[f]), mb, mu);
    }
    problem_free(&p);
    problem_free(&t);
}

static void test_class_quota_and_refit_on_growth(void **state)
{
    (void)state;
    const size_t rows[3] = {900, 300, 40};
    problem p;
    make_problem(&p, 3, 8, rows, 40.0, 0.0, 41);
    vmfsim_model_cfg cfg;
    vmfsim_model_cfg_init(&cfg);
    cfg.tree_class_rows = 100;
    cfg.tree_refit_growth = 0.5;
    cfg.rf_trees = 20;
    char err[VMFSIM_ERR_SIZE] = "";
    vmfsim_model *m = NULL;
    vmf_assert_ok(vmfsim_model_new(VMFSIM_RF, &cfg, p.d, p.C, &m, err));
    size_t rounds, fits, used;
    /* Rows are interleaved by class until class 2 runs out at row 120. */
    /* 60 rows: all three classes, 20 each, under the quota. */
    vmf_assert_ok(m->ops->learn_day(m->state, 1, p.x, 60, p.d, p.y, err));
    vmfsim_tree_info(m, &rounds, &fits, &used);
    assert_int_equal(fits, 1);
    assert_int_equal(used, 60);
    /* 80 rows: grew by a third (< 0.5), no new class: the model is kept. */
    vmf_assert_ok(m->ops->learn_day(m->state, 2, p.x, 80, p.d, p.y, err));
    vmfsim_tree_info(m, &rounds, &fits, &used);
    assert_int_equal(fits, 1);
    assert_int_equal(m->ops->rows_seen(m->state), 60);
    /* 90 rows: 1.5 x 60, refit. */
    vmf_assert_ok(m->ops->learn_day(m->state, 3, p.x, 90, p.d, p.y, err));
    vmfsim_tree_info(m, &rounds, &fits, &used);
    assert_int_equal(fits, 2);
    assert_int_equal(m->ops->rows_seen(m->state), 90);
    /* All 1,240 rows: classes 0 and 1 are cut to 100 rows, class 2 keeps its 40. */
    vmf_assert_ok(m->ops->learn_day(m->state, 4, p.x, p.n, p.d, p.y, err));
    vmfsim_tree_info(m, &rounds, &fits, &used);
    assert_int_equal(fits, 3);
    assert_int_equal(used, 240);
    vmfsim_model_free(m);

    /* A class the model has not seen forces a refit however little the data grew. */
    cfg.tree_class_rows = 0;
    vmf_assert_ok(vmfsim_model_new(VMFSIM_XGBOOST, &cfg, p.d, p.C, &m, err));
    vmf_assert_ok(m->ops->learn_day(m->state, 1, p.x, 2, p.d, p.y, err)); /* classes 0, 1 */
    vmf_assert_ok(m->ops->learn_day(m->state, 2, p.x, 3, p.d, p.y, err)); /* class 2 is new */
    vmfsim_tree_info(m, &rounds, &fits, &used);
    assert_int_equal(fits, 2);
    assert_int_equal(used, 3);
    vmfsim_model_free(m);
    problem_free(&p);
}

static void test_replay_counts_only_real_refits(void **state)
{
    (void)state;
    vmfsim_gen_opts g;
    vmfsim_gen_opts_init(&g);
    g.n_classes = 5;
    g.dim = 8;
    g.days = 30;
    g.rows_per_day = 20;
    g.min_class_rows = 10;
    g.late_from = 5;
    g.late_to = 10;
    g.test_per_class = 10;
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_stream_generate(&g, &s, NULL, err));
    int fam[2] = {VMFSIM_RF, VMFSIM_XGBOOST};
    vmfsim_replay_opts o = {.days = 30, .families = fam, .n_models = 2};
    vmfsim_model_cfg_init(&o.cfg);
    o.cfg.refit_every = 1;
    o.cfg.tree_refit_growth = 0.5;
    o.cfg.rf_trees = 20;
    vmfsim_curve *cv = NULL;
    if (vmfsim_replay(&s, &o, &cv, err))
        fail_msg("replay: %s", err);
    for (size_t m = 0; m < 2; m++) {
        /* A refit day is exactly a day whose rows_seen moved (day 1 always). */
        size_t n = 0;
        for (size_t t = 0; t < 30; t++) {
            int moved = t == 0 || cv[m].rows_seen[t] != cv[m].rows_seen[t - 1];
            assert_int_equal(cv[m].refit_day[t], moved);
            n += moved;
            if (!moved) {
                assert_true(cv[m].top1[t] == cv[m].top1[t - 1]);
                assert_true(cv[m].predict_s[t] == 0.0);
            } else if (t > 0) {
                /* It refit because the stream grew by half or a class was new. */
                int grew = (double)cv[m].rows_seen[t] >= 1.5 * (double)cv[m].rows_seen[t - 1];
                int fresh = 0;
                for (size_t i = cv[m].rows_seen[t - 1]; i < cv[m].rows_seen[t]; i++) {
                    int before = 0;
                    for (size_t j = 0; j < cv[m].rows_seen[t - 1] && !before; j++)
                        before = s.y[j] == s.y[i];
                    fresh |= !before;
                }
                assert_true(grew || fresh);
            }
        }
        assert_int_equal(cv[m].refits, n);
        assert_true(n > 3 && n < 20);
        print_message("%s: %zu refits in 30 days\n", vmfsim_family_name(cv[m].family), n);
    }
    vmfsim_curves_free(cv, 2);
    vmfsim_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_learn_a_separable_problem),
        cmocka_unit_test(test_early_stopping_stops_and_is_deterministic),
        cmocka_unit_test(test_balanced_weights_raise_minority_recall),
        cmocka_unit_test(test_class_quota_and_refit_on_growth),
        cmocka_unit_test(test_replay_counts_only_real_refits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
