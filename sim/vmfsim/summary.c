/*
 * summary.c - peak and time-to-peak of the accuracy curves, and the outputs
 * daily.csv, summary.json and the summary table (files written atomically
 * through libvmfmm's vmf_file_write_atomic / vmf_atomic_file_*).
 *
 * Time-to-peak: the peak is the largest top-1 macro recall over the replayed
 * days (the first day reaching it is "peak.day"); time-to-peak for a
 * tolerance eps is the first day whose top-1 is within eps of the peak
 * (value >= peak - eps), so it is never after the peak day.
 */
#include "vmfsim.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double vmfsim_eps[VMFSIM_N_EPS] = {0.01, 0.02, 0.05};
static const char *const eps_key[VMFSIM_N_EPS] = {"0.01", "0.02", "0.05"};

void vmfsim_peak(const double *curve, size_t days, double *peak, size_t *peak_day)
{
    double p = NAN;
    size_t pd = 0;
    for (size_t i = 0; i < days; i++) {
        if (isnan(curve[i]))
            continue;
        if (isnan(p) || curve[i] > p) {
            p = curve[i];
            pd = i + 1;
        }
    }
    *peak = p;
    *peak_day = pd;
}

size_t vmfsim_time_to_peak(const double *curve, size_t days, double eps)
{
    double p;
    size_t pd;
    vmfsim_peak(curve, days, &p, &pd);
    if (pd == 0)
        return 0;
    for (size_t i = 0; i < days; i++)
        if (!isnan(curve[i]) && curve[i] >= p - eps)
            return i + 1;
    return pd;
}

int vmfsim_write_daily_csv(const char *path, const vmfsim_curve *c, size_t n_models, int timings,
                           char *err)
{
    vmf_atomic_file *af = NULL;
    if (vmf_atomic_file_open(path, &af) != VMF_OK)
        return snprintf(err, VMFSIM_ERR_SIZE, "%s", vmf_last_error()), VMF_EIO;
    FILE *f = vmf_atomic_file_stream(af);
    fprintf(f, "day,model,top1,top4,rows_seen,train_s,predict_s,novelty_auroc\n");
    size_t days = n_models ? c[0].days : 0;
    for (size_t t = 0; t < days; t++) {
        for (size_t m = 0; m < n_models; m++) {
            fprintf(f, "%zu,%s,%.8f,%.8f,%llu,%.6f,%.6f,", t + 1, vmfsim_family_name(c[m].family),
                    c[m].top1[t], c[m].top4[t], (unsigned long long)c[m].rows_seen[t],
                    timings ? c[m].train_s[t] : 0.0, timings ? c[m].predict_s[t] : 0.0);
            if (c[m].novelty_auroc && !isnan(c[m].novelty_auroc[t]))
                fprintf(f, "%.8f\n", c[m].novelty_auroc[t]);
            else
                fprintf(f, "\n");
        }
    }
    if (vmf_atomic_file_commit(af) != VMF_OK)
        return snprintf(err, VMFSIM_ERR_SIZE, "%s", vmf_last_error()), VMF_EIO;
    return VMF_OK;
}

static double sum(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

static json_t *num_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/*
 * {"mean": mean AUROC over the days that have one, "days": how many,
 *  "day30": .., "day60": .. (null when undefined that day)}.
 */
static json_t *novelty_json(const vmfsim_curve *c)
{
    double s = 0.0;
    size_t n = 0;
    for (size_t t = 0; c->novelty_auroc && t < c->days; t++)
        if (!isnan(c->novelty_auroc[t])) {
            s += c->novelty_auroc[t];
            n++;
        }
    double d30 = c->novelty_auroc && c->days >= 30 ? c->novelty_auroc[29] : NAN;
    double d60 = c->novelty_auroc && c->days >= 60 ? c->novelty_auroc[59] : NAN;
    return json_pack("{s:o, s:I, s:o, s:o}", "mean", num_or_null(n ? s / (double)n : NAN), "days",
                     (json_int_t)n, "day30", num_or_null(d30), "day60", num_or_null(d60));
}

/* {"median", "lo", "hi"}: the median and the 90 % interval of v [n]. */
static json_t *interval_json(const double *v, size_t n)
{
    return json_pack("{s:o, s:o, s:o}", "median", num_or_null(vmfsim_quantile(v, n, 0.5)), "lo",
                     num_or_null(vmfsim_quantile(v, n, 0.05)), "hi",
                     num_or_null(vmfsim_quantile(v, n, 0.95)));
}

/* The replicates of model m: counts and intervals (see replicates.c). */
static json_t *reps_json(const vmfsim_reps *r, size_t m)
{
    const size_t n = r->n;
    json_t *ttp = json_object();
    for (int e = 0; e < VMFSIM_N_EPS; e++)
        json_object_set_new(ttp, eps_key[e],
                            interval_json(r->ttp + (m * VMFSIM_N_EPS + (size_t)e) * n, n));
    return json_pack("{s:I, s:f, s:o, s:o, s:o, s:o}", "n", (json_int_t)n, "level", 0.9,
                     "final_top1", interval_json(r->final1 + m * n, n), "final_top4",
                     interval_json(r->final4 + m * n, n), "peak_top1",
                     interval_json(r->peak1 + m * n, n), "time_to_peak", ttp);
}

static json_t *model_json(const vmfsim_curve *c, const vmfsim_run_info *info)
{
    const size_t days = c->days;
    const int refit = c->refit;
    double p1, p4;
    size_t d1, d4;
    vmfsim_peak(c->top1, days, &p1, &d1);
    vmfsim_peak(c->top4, days, &p4, &d4);
    json_t *ttp = json_object(), *ttp4 = json_object();
    for (int e = 0; e < VMFSIM_N_EPS; e++) {
        json_object_set_new(
            ttp, eps_key[e],
            json_integer((json_int_t)vmfsim_time_to_peak(c->top1, days, vmfsim_eps[e])));
        json_object_set_new(
            ttp4, eps_key[e],
            json_integer((json_int_t)vmfsim_time_to_peak(c->top4, days, vmfsim_eps[e])));
    }
    double tr = info->timings ? sum(c->train_s, days) : 0.0;
    double pr = info->timings ? sum(c->predict_s, days) : 0.0;
    const char *mode = refit                                               ? "refit"
                       : (c->family == VMFSIM_VMFMM && info->cfg->via_url) ? "via"
                                                                           : "online";
    json_t *mj = json_pack(
        "{s:s, s:s, s:o, s:I, s:{s:f, s:f, s:I}, s:{s:f, s:I, s:f, s:I}, s:o, s:o, s:{s:f, s:f, "
        "s:f}}",
        "family", vmfsim_family_name(c->family), "mode", mode, "refit_every",
        refit ? json_integer((json_int_t)info->cfg->refit_every) : json_null(), "refits",
        (json_int_t)c->refits, "final", "top1", c->top1[days - 1], "top4", c->top4[days - 1],
        "rows_seen", (json_int_t)c->rows_seen[days - 1], "peak", "top1", p1, "day", (json_int_t)d1,
        "top4", p4, "top4_day", (json_int_t)d4, "time_to_peak", ttp, "time_to_peak_top4", ttp4,
        "seconds", "train", tr, "predict", pr, "total", tr + pr);
    if (mj)
        json_object_set_new(mj, "novelty_auroc", novelty_json(c));
    return mj;
}

int vmfsim_write_summary_json(const char *path, const vmfsim_curve *c, size_t n_models,
                              const vmfsim_run_info *info, char *err)
{
    json_t *models = json_object(), *eps = json_array();
    for (int e = 0; e < VMFSIM_N_EPS; e++)
        json_array_append_new(eps, json_real(vmfsim_eps[e]));
    for (size_t m = 0; m < n_models; m++) {
        json_t *mj = model_json(&c[m], info);
        if (mj && info->reps)
            json_object_set_new(mj, "replicates", reps_json(info->reps, m));
        if (!mj) {
            json_decref(models);
            json_decref(eps);
            return snprintf(err, VMFSIM_ERR_SIZE, "cannot build the summary"), VMF_ENOMEM;
        }
        json_object_set_new(models, vmfsim_family_name(c[m].family), mj);
    }
    const vmfsim_model_cfg *cfg = info->cfg;
    json_t *root = json_pack(
        "{s:s, s:i, s:s, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:s, s:{s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:f, s:I, s:I, s:I}, s:f, s:o}",
        "format", "vmfsim-summary", "version", 1, "stream", info->stream, "seed",
        (json_int_t)info->seed, "days", (json_int_t)info->days, "data", "dim",
        (json_int_t)info->s->d, "classes", (json_int_t)info->s->n_classes, "stream_rows",
        (json_int_t)info->s->n_stream, "test_rows", (json_int_t)info->s->n_test, "epsilon", eps,
        "metric", "top-k macro recall on the held-out test rows (unseen classes score 0)",
        "settings", "components", (json_int_t)cfg->components, "refit_every",
        (json_int_t)cfg->refit_every, "knn_k", (json_int_t)cfg->knn_k, "knn_reservoir",
        (json_int_t)cfg->knn_reservoir, "xgb_rounds", (json_int_t)cfg->xgb_rounds, "xgb_depth",
        (json_int_t)cfg->xgb_depth, "svm_c", cfg->svm_c, "rf_trees", (json_int_t)cfg->rf_trees,
        "rf_depth", (json_int_t)cfg->rf_depth, "tree_max_rows", (json_int_t)cfg->tree_max_rows,
        "wall_seconds", info->timings ? info->wall_s : 0.0, "models", models);
    if (!root)
        return snprintf(err, VMFSIM_ERR_SIZE, "cannot build the summary"), VMF_ENOMEM;
    /* The remaining settings (json_pack takes at most a few dozen arguments legibly). */
    json_t *st = json_object_get(root, "settings");
    json_object_set_new(st, "gmm_max_iter", json_integer((json_int_t)cfg->gmm_max_iter));
    json_object_set_new(st, "xgb_eta", json_real(cfg->xgb_eta));
    json_object_set_new(st, "logreg_c", json_real(cfg->logreg_c));
    json_object_set_new(st, "tree_min_child_weight", json_real(cfg->tree_min_child_weight));
    json_object_set_new(st, "threads", json_integer(cfg->threads));
    json_object_set_new(st, "tree_class_rows", json_integer((json_int_t)cfg->tree_class_rows));
    json_object_set_new(st, "tree_refit_growth", json_real(cfg->tree_refit_growth));
    json_object_set_new(st, "tree_max_bin", json_integer((json_int_t)cfg->tree_max_bin));
    json_object_set_new(st, "tree_class_weights",
                        json_string(cfg->tree_unweighted ? "none" : "balanced"));
    json_object_set_new(st, "xgb_valid", json_real(cfg->xgb_valid));
    json_object_set_new(st, "xgb_patience", json_integer((json_int_t)cfg->xgb_patience));
    json_object_set_new(st, "rf_min_leaf", json_integer((json_int_t)cfg->rf_min_leaf));
    json_object_set_new(st, "vmf_kappa_scale", json_real(cfg->vmf_kappa_scale));
    json_object_set_new(st, "vmf_own_kappa", json_boolean(cfg->vmf_own_kappa));
    json_object_set_new(st, "via", cfg->via_url ? json_string(cfg->via_url) : json_null());
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!text)
        return snprintf(err, VMFSIM_ERR_SIZE, "cannot write %s: out of memory", path), VMF_ENOMEM;
    int rc = vmf_file_write_atomic(path, text, strlen(text));
    free(text);
    if (rc != VMF_OK)
        return snprintf(err, VMFSIM_ERR_SIZE, "%s", vmf_last_error()), rc;
    return VMF_OK;
}

void vmfsim_print_table(void *file, const vmfsim_curve *c, size_t n_models)
{
    FILE *f = file;
    fprintf(f, "%-8s %7s %7s %7s %5s %5s %5s %5s %9s %9s  %s\n", "model", "top1", "top4", "peak1",
            "day", "ttp1", "ttp2", "ttp5", "rows", "seconds", "updates");
    for (size_t m = 0; m < n_models; m++) {
        const vmfsim_curve *v = &c[m];
        double p;
        size_t pd;
        vmfsim_peak(v->top1, v->days, &p, &pd);
        char upd[48];
        int refit = v->refit;
        if (refit)
            snprintf(upd, sizeof upd, "refit x%zu", v->refits);
        else
            snprintf(upd, sizeof upd, "online");
        fprintf(f, "%-8s %7.4f %7.4f %7.4f %5zu %5zu %5zu %5zu %9llu %9.2f  %s\n",
                vmfsim_family_name(v->family), v->top1[v->days - 1], v->top4[v->days - 1], p, pd,
                vmfsim_time_to_peak(v->top1, v->days, 0.01),
                vmfsim_time_to_peak(v->top1, v->days, 0.02),
                vmfsim_time_to_peak(v->top1, v->days, 0.05),
                (unsigned long long)v->rows_seen[v->days - 1],
                sum(v->train_s, v->days) + sum(v->predict_s, v->days), upd);
    }
}
