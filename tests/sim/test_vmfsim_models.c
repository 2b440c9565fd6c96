/*
 * test_vmfsim_models.c - every model family behind the vmfsim interface
 * learns a separable toy stream to > 95% top-1 macro recall; before any
 * class is seen a model predicts nothing (recall 0); with a single class
 * seen, every family predicts it; refit families refit on the documented
 * days and carry their model in between; the replay is deterministic.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A hand-built stream: C classes around orthogonal axes of R^d (kappa 300),
 * day 1 holds only class 0, days 2..days hold every class; 10 test rows per
 * class.
 */
static void toy_stream(vmfsim_stream *s, size_t C, size_t d, size_t days, size_t per_day,
                       uint64_t seed)
{
    memset(s, 0, sizeof *s);
    vmf_rng r;
    vmf_rng_seed(&r, seed);
    size_t n = per_day * C * (days - 1) + per_day;
    s->d = d;
    s->n_classes = C;
    s->n_stream = n;
    s->n_test = 10 * C;
    s->labels = malloc(C * sizeof *s->labels);
    s->x = malloc(n * d * sizeof *s->x);
    s->y = malloc(n * sizeof *s->y);
    s->test_x = malloc(s->n_test * d * sizeof *s->x);
    s->test_y = malloc(s->n_test * sizeof *s->y);
    float *mu = calloc(C * d, sizeof *mu);
    for (size_t c = 0; c < C; c++) {
        s->labels[c] = (int32_t)c;
        mu[c * d + c] = 1.0f;
    }
    size_t i = 0;
    for (size_t t = 1; t <= days; t++) {
        s->day_off[t] = i;
        size_t classes = t == 1 ? 1 : C;
        for (size_t k = 0; k < per_day * classes; k++, i++) {
            size_t c = k % classes;
            vmf_assert_ok(vmf_sample_vmf(mu + c * d, d, 300.0, 1, &r, s->x + i * d));
            s->y[i] = (int32_t)c;
        }
    }
    for (size_t t = days + 1; t <= VMFSIM_MAX_DAY + 1; t++)
        s->day_off[t] = i;
    assert_int_equal(i, n);
    for (size_t k = 0; k < s->n_test; k++) {
        size_t c = k % C;
        vmf_assert_ok(vmf_sample_vmf(mu + c * d, d, 300.0, 1, &r, s->test_x + k * d));
        s->test_y[k] = (int32_t)c;
    }
    free(mu);
}

static void small_cfg(vmfsim_model_cfg *cfg)
{
    vmfsim_model_cfg_init(cfg);
    cfg->refit_every = 3;
    cfg->xgb_rounds = 10;
    cfg->rf_trees = 10;
    cfg->gmm_max_iter = 20;
    cfg->knn_k = 5;
}

static void test_every_family_learns_a_separable_stream(void **state)
{
    (void)state;
    vmfsim_stream s;
    toy_stream(&s, 4, 8, 8, 15, 5);
    int fam[6] = {0, 1, 2, 3, 4, 5};
    vmfsim_replay_opts o = {.days = 8, .families = fam, .n_models = 6};
    small_cfg(&o.cfg);
    vmfsim_curve *cv = NULL;
    char err[VMFSIM_ERR_SIZE] = "";
    if (vmfsim_replay(&s, &o, &cv, err))
        fail_msg("replay: %s", err);
    for (size_t m = 0; m < 6; m++) {
        const vmfsim_curve *c = &cv[m];
        const char *name = vmfsim_family_name(c->family);
        /* Day 1 saw only class 0: every family predicts it (recall 1/4 top-1). */
        if (fabs(c->top1[0] - 0.25) > 1e-12)
            fail_msg("%s day 1: top1 %.4f, expected 0.25", name, c->top1[0]);
        if (!(c->top1[7] > 0.95))
            fail_msg("%s final top1 %.4f <= 0.95", name, c->top1[7]);
        vmf_assert_close(c->top4[7], 1.0, 0, 1e-12);
        assert_int_equal(c->rows_seen[7], s.n_stream);
        assert_int_equal(c->rows_seen[0], 15);
        if (m == VMFSIM_VMFMM || m == VMFSIM_KNN) {
            assert_int_equal(c->refits, 0);
            for (size_t t = 1; t < 8; t++)
                assert_true(c->rows_seen[t] > c->rows_seen[t - 1]);
        } else {
            /* refit on day 1 (first rows), days 3 and 6 (every 3) and day 8 (last). */
            assert_int_equal(c->refits, 4);
            const unsigned char want[8] = {1, 0, 1, 0, 0, 1, 0, 1};
            assert_memory_equal(c->refit_day, want, 8);
            assert_int_equal(c->rows_seen[1], c->rows_seen[0]); /* carried */
            assert_int_equal(c->rows_seen[6], c->rows_seen[5]); /* carried */
            assert_true(c->top1[1] == c->top1[0]);              /* same model */
            assert_true(c->predict_s[1] == 0.0);                /* not rescored */
        }
    }
    vmfsim_curves_free(cv, 6);
    vmfsim_stream_free(&s);
}

static void test_replay_is_deterministic(void **state)
{
    (void)state;
    vmfsim_gen_opts g;
    vmfsim_gen_opts_init(&g);
    g.n_classes = 6;
    g.dim = 16;
    g.days = 10;
    g.rows_per_day = 40;
    g.min_class_rows = 5;
    g.late_from = 3;
    g.late_to = 6;
    g.test_per_class = 10;
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_stream_generate(&g, &s, NULL, err));
    int fam[6] = {0, 1, 2, 3, 4, 5};
    vmfsim_replay_opts o = {.days = 10, .families = fam, .n_models = 6};
    small_cfg(&o.cfg);
    vmfsim_curve *a = NULL, *b = NULL;
    if (vmfsim_replay(&s, &o, &a, err) || vmfsim_replay(&s, &o, &b, err))
        fail_msg("replay: %s", err);
    for (size_t m = 0; m < 6; m++) {
        assert_memory_equal(a[m].top1, b[m].top1, 10 * sizeof(double));
        assert_memory_equal(a[m].top4, b[m].top4, 10 * sizeof(double));
        assert_memory_equal(a[m].rows_seen, b[m].rows_seen, 10 * sizeof(uint64_t));
        /* Late classes are unseen early: recall stays below 1 before they arrive. */
        for (size_t t = 0; t < 10; t++)
            assert_true(a[m].top4[t] >= a[m].top1[t]);
    }
    vmfsim_curves_free(a, 6);
    vmfsim_curves_free(b, 6);
    vmfsim_stream_free(&s);
}

static void test_replay_checks_its_options(void **state)
{
    (void)state;
    vmfsim_stream s;
    toy_stream(&s, 3, 4, 3, 5, 1);
    int fam[1] = {VMFSIM_VMFMM};
    vmfsim_replay_opts o = {.days = 0, .families = fam, .n_models = 1};
    vmfsim_model_cfg_init(&o.cfg);
    vmfsim_curve *cv = NULL;
    char err[VMFSIM_ERR_SIZE] = "";
    assert_int_equal(vmfsim_replay(&s, &o, &cv, err), VMF_EINVAL);
    o.days = 201;
    assert_int_equal(vmfsim_replay(&s, &o, &cv, err), VMF_EINVAL);
    o.days = 3;
    o.cfg.refit_every = 0;
    assert_int_equal(vmfsim_replay(&s, &o, &cv, err), VMF_EINVAL);
    assert_null(cv);
    /* A model given a dimension it cannot use fails with its name and the day. */
    o.cfg.refit_every = 5;
    s.x[0] = NAN;
    assert_int_not_equal(vmfsim_replay(&s, &o, &cv, err), VMF_OK);
    assert_non_null(strstr(err, "vmfmm"));
    assert_non_null(strstr(err, "day 1"));
    vmfsim_stream_free(&s);
}

/* The shared answers: an untrained model ranks nothing, or only the one class it
 * saw; class indices map to their integer labels and -1 stays -1. */
static void test_topk_helpers_untrained_and_labels(void **state)
{
    (void)state;
    int32_t topk[6];
    vmfsim_topk_untrained(-1, 2, 3, topk);
    const int32_t none[6] = {-1, -1, -1, -1, -1, -1};
    assert_memory_equal(topk, none, sizeof none);
    vmfsim_topk_untrained(7, 2, 3, topk);
    const int32_t only[6] = {7, -1, -1, 7, -1, -1};
    assert_memory_equal(topk, only, sizeof only);
    topk[0] = 99;
    vmfsim_topk_untrained(7, 6, 0, topk); /* k = 0: nothing to write */
    assert_int_equal(topk[0], 99);

    vmf_label_table *t = NULL;
    vmf_assert_ok(vmf_label_table_new(&t));
    const int64_t labs[3] = {40, -5, 12};
    int32_t idx[3];
    vmf_labels lv = {.n = 3, .ints = labs};
    vmf_assert_ok(vmf_label_table_intern(t, &lv, idx));
    int32_t got[6];
    for (size_t i = 0; i < 3; i++) {
        got[2 * i] = idx[2 - i];
        got[2 * i + 1] = -1;
    }
    vmfsim_topk_to_labels(t, got, 6);
    const int32_t want[6] = {12, -1, -5, -1, 40, -1};
    assert_memory_equal(got, want, sizeof want);
    vmf_label_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_learns_a_separable_stream),
        cmocka_unit_test(test_replay_is_deterministic),
        cmocka_unit_test(test_replay_checks_its_options),
        cmocka_unit_test(test_topk_helpers_untrained_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
