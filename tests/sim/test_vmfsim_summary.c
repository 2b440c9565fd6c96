/*
 * test_vmfsim_summary.c - time-to-peak on hand-made curves, the top-k
 * helper, the model list parser, and the outputs: daily.csv has the
 * contract's columns and summary.json validates against the documented
 * schema (sim/vmfsim/summary.schema.json), checked here by a small validator
 * of the JSON Schema keywords the schema uses.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_time_to_peak_hand_made(void **state)
{
    (void)state;
    /* Rises, peaks at 0.90 on day 6, wobbles. */
    const double c[10] = {0.10, 0.50, 0.85, 0.87, 0.889, 0.90, 0.895, 0.86, 0.90, 0.88};
    double p;
    size_t pd;
    vmfsim_peak(c, 10, &p, &pd);
    vmf_assert_close(p, 0.90, 0, 0);
    assert_int_equal(pd, 6);                               /* the first day reaching the peak */
    assert_int_equal(vmfsim_time_to_peak(c, 10, 0.01), 6); /* 0.889 < 0.89 */
    assert_int_equal(vmfsim_time_to_peak(c, 10, 0.011), 5);
    assert_int_equal(vmfsim_time_to_peak(c, 10, 0.02), 5);
    assert_int_equal(vmfsim_time_to_peak(c, 10, 0.05), 3);
    assert_int_equal(vmfsim_time_to_peak(c, 10, 0.0), 6);
    assert_int_equal(vmfsim_time_to_peak(c, 10, 1.0), 1);
    /* Monotone curve: the peak is the last day. */
    const double m[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    vmfsim_peak(m, 5, &p, &pd);
    assert_int_equal(pd, 5);
    assert_int_equal(vmfsim_time_to_peak(m, 5, 0.05), 5);
    assert_int_equal(vmfsim_time_to_peak(m, 5, 0.1), 4);
    /* NaN days are skipped; an all-NaN curve has no peak. */
    const double n[4] = {NAN, 0.7, NAN, 0.69};
    vmfsim_peak(n, 4, &p, &pd);
    assert_int_equal(pd, 2);
    assert_int_equal(vmfsim_time_to_peak(n, 4, 0.01), 2);
    const double z[2] = {NAN, NAN};
    vmfsim_peak(z, 2, &p, &pd);
    assert_true(isnan(p));
    assert_int_equal(pd, 0);
    assert_int_equal(vmfsim_time_to_peak(z, 2, 0.01), 0);
    /* Flat curve: day 1. */
    const double f[3] = {0.5, 0.5, 0.5};
    assert_int_equal(vmfsim_time_to_peak(f, 3, 0.01), 1);
}

static void test_topk_from_scores(void **state)
{
    (void)state;
    const double s[2 * 5] = {0.1, 0.9, 0.3, 0.9, 0.0, /* tie: lower index first */
                             5,   4,   3,   2,   1};
    const int32_t cls[5] = {10, 11, 12, 13, 14};
    int32_t out[2 * 4];
    vmfsim_topk_from_scores(s, 2, 5, 4, cls, out);
    const int32_t want[8] = {11, 13, 12, 10, 10, 11, 12, 13};
    assert_memory_equal(out, want, sizeof want);
    /* Fewer classes than k: -1 padding. */
    const double t[2] = {0.2, 0.8};
    int32_t o2[4];
    vmfsim_topk_from_scores(t, 1, 2, 4, NULL, o2);
    const int32_t w2[4] = {1, 0, -1, -1};
    assert_memory_equal(o2, w2, sizeof w2);
}

/* AUROC by hand: pairs (positive, negative) ranked right, ties one half. */
static void test_auroc(void **state)
{
    (void)state;
    double sc[6] = {0.9, 0.8, 0.4, 0.3, 0.8, 0.1};
    unsigned char pos[6] = {1, 1, 1, 0, 0, 0};
    /* 9 pairs: 0.9 beats 3; 0.8 beats 0.3, 0.1 and ties 0.8; 0.4 beats 2 -> 7.5 / 9. */
    vmf_assert_close(vmfsim_auroc(sc, pos, 6), 7.5 / 9.0, 0, 1e-15);
    unsigned char all[6] = {1, 1, 1, 1, 1, 1};
    assert_true(isnan(vmfsim_auroc(sc, all, 6)));
    unsigned char flip[6] = {0, 0, 0, 1, 1, 1};
    vmf_assert_close(vmfsim_auroc(sc, flip, 6), 1.5 / 9.0, 0, 1e-15);
}

/* Quantiles: linear between order statistics, as numpy's default. */
static void test_quantile(void **state)
{
    (void)state;
    double v[5] = {5, 1, 4, 2, 3};
    vmf_assert_close(vmfsim_quantile(v, 5, 0.5), 3.0, 0, 1e-15);
    vmf_assert_close(vmfsim_quantile(v, 5, 0.05), 1.2, 0, 1e-12);
    vmf_assert_close(vmfsim_quantile(v, 5, 0.95), 4.8, 0, 1e-12);
    assert_true(isnan(vmfsim_quantile(v, 0, 0.5)));
}

static void test_models_parse(void **state)
{
    (void)state;
    int f[VMFSIM_MAX_MODEL];
    char err[VMFSIM_ERR_SIZE];
    assert_int_equal(vmfsim_models_parse("all", f, err), 7);
    assert_int_equal(vmfsim_family_parse("logreg"), VMFSIM_LOGREG);
    assert_int_equal(vmfsim_models_parse("xgboost,vmfmm", f, err), 2);
    assert_int_equal(f[0], VMFSIM_XGBOOST);
    assert_int_equal(f[1], VMFSIM_VMFMM);
    assert_int_equal(vmfsim_models_parse("vmfmm,foo", f, err), 0);
    assert_non_null(strstr(err, "foo"));
    assert_int_equal(vmfsim_models_parse("knn,knn", f, err), 0);
    assert_int_equal(vmfsim_models_parse("knn,,svm", f, err), 0);
    assert_int_equal(vmfsim_models_parse("", f, err), 0);
    assert_string_equal(vmfsim_family_name(VMFSIM_RF), "rf");
    assert_int_equal(vmfsim_family_parse("gmm"), VMFSIM_GMM);
}

/* ------------------------------------------------ a small schema validator */

static int type_ok(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    return 0;
}

/* Validates v against schema s (type, const, enum, required, properties,
 * additionalProperties, propertyNames, minProperties, items, minimum,
 * maximum); returns 0, or 1 with the JSON path of the first violation in vmsg. */
static char vmsg[600];

static int validate(const json_t *v, const json_t *s, const char *path)
{
    char sub[512];
    const json_t *t = json_object_get(s, "type");
    if (json_is_string(t) && !type_ok(v, json_string_value(t)))
        return snprintf(vmsg, sizeof vmsg, "%s: not of type %s", path, json_string_value(t)), 1;
    if (json_is_array(t)) {
        int any = 0;
        size_t i;
        const json_t *e;
        json_array_foreach(t, i, e) any |= type_ok(v, json_string_value(e));
        if (!any)
            return snprintf(vmsg, sizeof vmsg, "%s: of none of the allowed types", path), 1;
    }
    const json_t *c = json_object_get(s, "const");
    if (c && !json_equal(c, (json_t *)(uintptr_t)v))
        return snprintf(vmsg, sizeof vmsg, "%s: not the constant", path), 1;
    const json_t *en = json_object_get(s, "enum");
    if (en) {
        int any = 0;
        size_t i;
        const json_t *e;
        json_array_foreach(en, i, e) any |=
            json_equal((json_t *)(uintptr_t)e, (json_t *)(uintptr_t)v);
        if (!any)
            return snprintf(vmsg, sizeof vmsg, "%s: not in the enum", path), 1;
    }
    if (json_is_number(v)) {
        double x = json_number_value(v);
        const json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
        if (mn && x < json_number_value(mn))
            return snprintf(vmsg, sizeof vmsg, "%s: %g below the minimum", path, x), 1;
        if (mx && x > json_number_value(mx))
            return snprintf(vmsg, sizeof vmsg, "%s: %g above the maximum", path, x), 1;
    }
    if (json_is_object(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(s, "required"), i, e)
        {
            if (!json_object_get(v, json_string_value(e)))
                return snprintf(vmsg, sizeof vmsg, "%s: lacks the required key \"%s\"", path,
                                json_string_value(e)),
                       1;
        }
        const json_t *mp = json_object_get(s, "minProperties");
        if (mp && json_object_size(v) < (size_t)json_integer_value(mp))
            return snprintf(vmsg, sizeof vmsg, "%s: too few keys", path), 1;
        const json_t *props = json_object_get(s, "properties");
        const json_t *extra = json_object_get(s, "additionalProperties");
        const json_t *names = json_object_get(s, "propertyNames");
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)(uintptr_t)v, k, val)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (names) {
                json_t *kj = json_string(k);
                int bad = validate(kj, names, sub);
                json_decref(kj);
                if (bad)
                    return 1;
            }
            const json_t *ps = json_object_get(props, k);
            if (ps && validate(val, ps, sub))
                return 1;
            if (!ps && json_is_object(extra) && validate(val, extra, sub))
                return 1;
        }
    }
    if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items");
        size_t i;
        const json_t *e;
        if (items)
            json_array_foreach(v, i, e)
            {
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                if (validate(e, items, sub))
                    return 1;
            }
    }
    return 0;
}

static json_t *load_schema(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/sim/vmfsim/summary.schema.json", VMF_SOURCE_DIR);
    json_error_t je;
    json_t *s = json_load_file(path, 0, &je);
    if (!s)
        fail_msg("schema %s: %s", path, je.text);
    return s;
}

/* Two hand-made curves written through the real writers. */
static void test_outputs_follow_the_contract(void **state)
{
    (void)state;
    char dir[512], path[700];
    vmf_test_tmpdir(dir, sizeof dir);
    enum { D = 4 };
    double t1a[D] = {0.2, 0.6, 0.7, 0.69}, t4a[D] = {0.5, 0.9, 0.95, 0.95};
    double t1b[D] = {0.1, 0.1, 0.5, 0.5}, t4b[D] = {0.3, 0.3, 0.8, 0.8};
    uint64_t ra[D] = {10, 20, 30, 40}, rb[D] = {10, 10, 30, 30};
    double tr[D] = {0.5, 0.25, 0.25, 0.125}, pr[D] = {0.125, 0.125, 0, 0};
    unsigned char fa[D] = {0}, fb[D] = {1, 0, 1, 0};
    double na[D] = {NAN, 0.75, 0.5, NAN}, nb[D] = {NAN, NAN, NAN, NAN};
    vmfsim_curve c[2] = {
        {VMFSIM_VMFMM, 0, D, t1a, t4a, ra, tr, pr, fa, 0, na, NULL, NULL},
        {VMFSIM_XGBOOST, 1, D, t1b, t4b, rb, tr, pr, fb, 2, nb, NULL, NULL},
    };
    vmfsim_stream s = {0};
    s.d = 8;
    s.n_classes = 3;
    s.n_stream = 40;
    s.n_test = 9;
    vmfsim_model_cfg cfg;
    vmfsim_model_cfg_init(&cfg);
    vmfsim_run_info info = {.stream = "synthetic",
                            .seed = 42,
                            .days = D,
                            .cfg = &cfg,
                            .s = &s,
                            .wall_s = 1.5,
                            .timings = 1};
    char err[VMFSIM_ERR_SIZE];
    snprintf(path, sizeof path, "%s/daily.csv", dir);
    vmf_assert_ok(vmfsim_write_daily_csv(path, c, 2, 1, err));
    FILE *f = fopen(path, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "day,model,top1,top4,rows_seen,train_s,predict_s,novelty_auroc\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "1,vmfmm,0.20000000,0.50000000,10,0.500000,0.125000,\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "1,xgboost,0.10000000,0.30000000,10,0.500000,0.125000,\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "2,vmfmm,0.60000000,0.90000000,20,0.250000,0.125000,0.75000000\n");
    int lines = 4;
    while (fgets(line, sizeof line, f))
        lines++;
    assert_int_equal(lines, 1 + 2 * D);
    fclose(f);
    vmf_assert_ok(vmfsim_write_daily_csv(path, c, 2, 0, err));
    f = fopen(path, "r");
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "1,vmfmm,0.20000000,0.50000000,10,0.000000,0.000000,\n");
    fclose(f);

    snprintf(path, sizeof path, "%s/summary.json", dir);
    vmf_assert_ok(vmfsim_write_summary_json(path, c, 2, &info, err));
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    json_t *schema = load_schema();
    if (validate(j, schema, "$"))
        fail_msg("summary.json does not follow the schema: %s", vmsg);
    /* The contract's values. */
    json_t *m = json_object_get(json_object_get(j, "models"), "vmfmm");
    vmf_assert_close(json_real_value(json_object_get(json_object_get(m, "final"), "top1")), 0.69, 0,
                     1e-12);
    vmf_assert_close(json_real_value(json_object_get(json_object_get(m, "peak"), "top1")), 0.7, 0,
                     1e-12);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "peak"), "day")), 3);
    json_t *ttp = json_object_get(m, "time_to_peak");
    assert_int_equal(json_integer_value(json_object_get(ttp, "0.01")), 3);
    assert_int_equal(json_integer_value(json_object_get(ttp, "0.02")), 3);
    assert_int_equal(json_integer_value(json_object_get(ttp, "0.05")), 3);
    assert_string_equal(json_string_value(json_object_get(m, "mode")), "online");
    assert_true(json_is_null(json_object_get(m, "refit_every")));
    json_t *nv = json_object_get(m, "novelty_auroc");
    vmf_assert_close(json_real_value(json_object_get(nv, "mean")), 0.625, 0, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(nv, "days")), 2);
    assert_true(json_is_null(json_object_get(nv, "day30")));
    m = json_object_get(json_object_get(j, "models"), "xgboost");
    assert_string_equal(json_string_value(json_object_get(m, "mode")), "refit");
    assert_int_equal(json_integer_value(json_object_get(m, "refits")), 2);
    assert_true(json_is_null(json_object_get(json_object_get(m, "novelty_auroc"), "mean")));
    assert_int_equal(json_integer_value(json_object_get(m, "refit_every")), cfg.refit_every);
    vmf_assert_close(json_real_value(json_object_get(json_object_get(m, "seconds"), "total")),
                     1.375, 0, 1e-12);

    /* The validator is not vacuous: summaries breaking the contract fail. */
    json_t *bad = json_deep_copy(j);
    json_object_del(json_object_get(json_object_get(bad, "models"), "vmfmm"), "time_to_peak");
    assert_int_equal(validate(bad, schema, "$"), 1);
    assert_non_null(strstr(vmsg, "time_to_peak"));
    json_decref(bad);
    bad = json_deep_copy(j);
    json_object_set_new(json_object_get(bad, "models"), "lda", json_object());
    assert_int_equal(validate(bad, schema, "$"), 1);
    json_decref(bad);
    bad = json_deep_copy(j);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(bad, "models"), "xgboost"), "final"),
        "top1", json_real(1.5));
    assert_int_equal(validate(bad, schema, "$"), 1);
    assert_non_null(strstr(vmsg, "maximum"));
    json_decref(bad);
    bad = json_deep_copy(j);
    json_object_set_new(
        json_object_get(json_object_get(json_object_get(bad, "models"), "xgboost"), "peak"), "day",
        json_string("3"));
    assert_int_equal(validate(bad, schema, "$"), 1);
    json_decref(bad);
    json_decref(schema);
    json_decref(j);
    vmf_test_rmtree(dir);
}

/*
 * A real replay (seven families, small stream) with 3 replicates (the main
 * run, then two on perturbed streams) written and validated: every model
 * carries novelty AUROCs and 90 % intervals that contain its main-run value
 * or lie around it, lo <= median <= hi.
 */
static void test_replay_summary_validates(void **state)
{
    (void)state;
    vmfsim_gen_opts g;
    vmfsim_gen_opts_init(&g);
    g.n_classes = 5;
    g.dim = 12;
    g.days = 12;
    g.rows_per_day = 25;
    g.min_class_rows = 8;
    g.late_from = 4;
    g.late_to = 8;
    g.test_per_class = 8;
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "", dir[512], path[700];
    vmf_assert_ok(vmfsim_stream_generate(&g, &s, NULL, err));
    int fam[7] = {0, 1, 2, 3, 4, 5, 6};
    vmfsim_replay_opts o = {.days = 12, .families = fam, .n_models = 7};
    vmfsim_model_cfg_init(&o.cfg);
    o.cfg.refit_every = 4;
    o.cfg.xgb_rounds = 5;
    o.cfg.rf_trees = 5;
    vmfsim_curve *cv = NULL;
    if (vmfsim_replay(&s, &o, &cv, err))
        fail_msg("replay: %s", err);
    vmfsim_reps *reps = NULL;
    vmf_assert_ok(vmfsim_reps_new(3, 7, 12, &reps));
    vmfsim_reps_record(reps, 0, cv);
    for (size_t r = 1; r < 3; r++) {
        vmfsim_stream ps;
        vmf_assert_ok(vmfsim_stream_perturb(&s, 100 + r, &ps, err));
        /* Same rows per day, same multiset of stream rows; the test rows are a bootstrap. */
        assert_memory_equal(ps.day_off, s.day_off, sizeof s.day_off);
        assert_int_equal(ps.n_test, s.n_test);
        vmfsim_replay_opts o2 = o;
        o2.cfg.seed = 42 + r;
        vmfsim_curve *c2 = NULL;
        if (vmfsim_replay(&ps, &o2, &c2, err))
            fail_msg("replay: %s", err);
        vmfsim_reps_record(reps, r, c2);
        vmfsim_curves_free(c2, 7);
        vmfsim_stream_free(&ps);
    }
    vmfsim_reps_bands(reps, cv);
    for (size_t m = 0; m < 7; m++) {
        assert_non_null(cv[m].band);
        for (size_t t = 0; t < 12; t++)
            assert_true(cv[m].band[t] <= cv[m].band[12 + t]);
    }
    vmfsim_run_info info = {.stream = "synthetic",
                            .seed = 42,
                            .days = 12,
                            .cfg = &o.cfg,
                            .s = &s,
                            .timings = 1,
                            .reps = reps};
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    vmf_assert_ok(vmfsim_write_summary_json(path, cv, 7, &info, err));
    json_t *j = json_load_file(path, 0, NULL), *schema = load_schema();
    assert_non_null(j);
    if (validate(j, schema, "$"))
        fail_msg("summary.json does not follow the schema: %s", vmsg);
    assert_int_equal(json_object_size(json_object_get(j, "models")), 7);
    const char *key;
    json_t *mv;
    json_object_foreach(json_object_get(j, "models"), key, mv)
    {
        json_t *rp = json_object_get(mv, "replicates");
        assert_int_equal(json_integer_value(json_object_get(rp, "n")), 3);
        json_t *f1 = json_object_get(rp, "final_top1");
        double lo = json_number_value(json_object_get(f1, "lo"));
        double me = json_number_value(json_object_get(f1, "median"));
        double hi = json_number_value(json_object_get(f1, "hi"));
        assert_true(lo <= me && me <= hi);
        json_t *tt = json_object_get(json_object_get(rp, "time_to_peak"), "0.01");
        assert_true(json_number_value(json_object_get(tt, "lo")) >= 1);
        /* Late classes first appear on days 4..8: every family has a novelty AUROC. */
        assert_true(
            json_integer_value(json_object_get(json_object_get(mv, "novelty_auroc"), "days")) > 0);
    }
    /* The replicates object follows the schema too: a broken one fails. */
    json_t *bad = json_deep_copy(j);
    json_object_del(
        json_object_get(json_object_get(json_object_get(bad, "models"), "logreg"), "replicates"),
        "final_top1");
    assert_int_equal(validate(bad, schema, "$"), 1);
    json_decref(bad);
    vmfsim_reps_free(reps);
    json_decref(j);
    json_decref(schema);
    vmfsim_curves_free(cv, 7);
    vmfsim_stream_free(&s);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_to_peak_hand_made),
        cmocka_unit_test(test_topk_from_scores),
        cmocka_unit_test(test_auroc),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_models_parse),
        cmocka_unit_test(test_outputs_follow_the_contract),
        cmocka_unit_test(test_replay_summary_validates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
