/*
 * replay.c - the daily loop. Each day every model learns that day's rows
 * (incremental families) or, on refit days, all rows so far (refit
 * families), then is scored on the fixed test rows: top-1 and top-4 macro
 * recall, where a class the model has never seen scores 0.
 *
 * A refit family refits on the first day that has rows, on every day that
 * is a multiple of refit_every, and on the last replayed day, and carries its
 * last model in between; rf and xgboost may decline such a day (their
 * --tree-refit-growth rule: rows_seen stays), which then counts as no refit.
 * A model that did not change since it was last
 * scored is not scored again: its predictions would be identical, so the day
 * repeats the previous scores with predict_s = 0.
 *
 * Novelty: on every day with test rows of classes that have no stream row
 * yet ("unseen") and test rows of the others, each family with a novelty
 * score is scored by the AUROC of that score at telling the unseen rows
 * from the rest (vmfsim_auroc); other days get NaN.
 */
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vmfsim_curves_free(vmfsim_curve *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        free(c[i].top1);
        free(c[i].top4);
        free(c[i].rows_seen);
        free(c[i].train_s);
        free(c[i].predict_s);
        free(c[i].refit_day);
        free(c[i].novelty_auroc);
        free(c[i].band);
        free(c[i].ranks);
    }
    free(c);
}

static int curve_alloc(vmfsim_curve *c, int family, size_t days)
{
    c->family = family;
    c->days = days;
    c->top1 = calloc(days, sizeof *c->top1);
    c->top4 = calloc(days, sizeof *c->top4);
    c->rows_seen = calloc(days, sizeof *c->rows_seen);
    c->train_s = calloc(days, sizeof *c->train_s);
    c->predict_s = calloc(days, sizeof *c->predict_s);
    c->refit_day = calloc(days, 1);
    c->novelty_auroc = calloc(days, sizeof *c->novelty_auroc);
    return c->top1 && c->top4 && c->rows_seen && c->train_s && c->predict_s && c->refit_day &&
                   c->novelty_auroc
               ? VMF_OK
               : VMF_ENOMEM;
}

typedef struct ranked {
    double v;
    unsigned char pos;
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
    double x = ((const ranked *)a)->v, y = ((const ranked *)b)->v;
    return (x > y) - (x < y);
}

double vmfsim_auroc(const double *score, const unsigned char *pos, size_t n)
{
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        np += pos[i] != 0;
    if (np == 0 || np == n)
        return NAN;
    ranked *r = malloc(n * sizeof *r);
    if (!r)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        r[i].v = score[i];
        r[i].pos = pos[i] != 0;
    }
    qsort(r, n, sizeof *r, ranked_cmp);
    /* Mann-Whitney U from mid-ranks: ties share the mean of their ranks. */
    double rank_sum = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r[j].v == r[i].v)
            j++;
        double mid = 0.5 * (double)(i + 1 + j);
        for (size_t q = i; q < j; q++)
            if (r[q].pos)
                rank_sum += mid;
        i = j;
    }
    free(r);
    double nn = (double)(n - np), pp = (double)np;
    return (rank_sum - pp * (pp + 1.0) / 2.0) / (pp * nn);
}

int vmfsim_replay(const vmfsim_stream *s, const vmfsim_replay_opts *o, vmfsim_curve **out,
                  char *err)
{
    *out = NULL;
    if (o->days < 1 || o->days > VMFSIM_MAX_DAY) {
        snprintf(err, VMFSIM_ERR_SIZE, "--days must be in 1..%d", VMFSIM_MAX_DAY);
        return VMF_EINVAL;
    }
    if (o->n_models < 1 || o->n_models > VMFSIM_MAX_MODEL) {
        snprintf(err, VMFSIM_ERR_SIZE, "need 1..%d models", VMFSIM_MAX_MODEL);
        return VMF_EINVAL;
    }
    if (o->cfg.refit_every < 1) {
        snprintf(err, VMFSIM_ERR_SIZE, "--refit-every must be >= 1");
        return VMF_EINVAL;
    }
    const size_t d = s->d, nt = s->n_test, K = VMFSIM_TOPK, days = o->days;
    vmfsim_curve *cv = calloc(o->n_models, sizeof *cv);
    vmfsim_model *models[VMFSIM_MAX_MODEL] = {0};
    size_t fitted_rows[VMFSIM_MAX_MODEL] = {0};
    int scored[VMFSIM_MAX_MODEL] = {0};
    int32_t *topk = malloc(nt * K * sizeof *topk);
    double *nov = malloc((nt ? nt : 1) * sizeof *nov);
    unsigned char *unseen = malloc(nt ? nt : 1);
    unsigned char *seen = calloc(s->n_classes ? s->n_classes : 1, 1);
    int rc = VMF_ENOMEM;
    if (!cv || !topk || !nov || !unseen || !seen) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        goto fail;
    }
    for (size_t m = 0; m < o->n_models; m++) {
        if (curve_alloc(&cv[m], o->families[m], days) ||
            (o->record_ranks && !(cv[m].ranks = malloc(days * (nt ? nt : 1))))) {
            snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
            goto fail;
        }
        if ((rc = vmfsim_model_new(o->families[m], &o->cfg, d, s->n_classes, &models[m], err)))
            goto fail;
        cv[m].refit = models[m]->ops->refit;
    }
    double t_start = now_s();
    for (size_t t = 1; t <= days; t++) {
        const size_t off = s->day_off[t], nday = s->day_off[t + 1] - off;
        const size_t so_far = s->day_off[t + 1];
        for (size_t i = off; i < so_far; i++)
            seen[s->y[i]] = 1;
        size_t n_unseen = 0;
        for (size_t i = 0; i < nt; i++)
            n_unseen += (unseen[i] = !seen[s->test_y[i]]);
        const int novelty_day = n_unseen > 0 && n_unseen < nt;
        for (size_t m = 0; m < o->n_models; m++) {
            vmfsim_model *mod = models[m];
            const char *name = vmfsim_family_name(o->families[m]);
            int learned = 0;
            double t0 = now_s();
            if (mod->ops->refit) {
                int due = fitted_rows[m] == 0 || t % o->cfg.refit_every == 0 || t == days;
                if (so_far > fitted_rows[m] && due) {
                    uint64_t before = mod->ops->rows_seen(mod->state);
                    rc = mod->ops->learn_day(mod->state, t, s->x, so_far, d, s->y, err);
                    learned = 1;
                    fitted_rows[m] = so_far;
                    /* rf and xgboost may decline a refit (--tree-refit-growth): rows_seen stays. */
                    if (!rc && before > 0 && mod->ops->rows_seen(mod->state) == before)
                        learned = 0;
                }
            } else if (nday > 0) {
                rc = mod->ops->learn_day(mod->state, t, s->x + off * d, nday, d, s->y + off, err);
                learned = 1;
            }
            if (learned && rc) {
                size_t l = strlen(err);
                snprintf(err + l, VMFSIM_ERR_SIZE - l, " (model %s, day %zu)", name, t);
                goto fail;
            }
            double t1 = now_s();
            cv[m].train_s[t - 1] = t1 - t0;
            cv[m].refit_day[t - 1] = (unsigned char)(learned && mod->ops->refit);
            cv[m].refits += learned && mod->ops->refit;
            cv[m].rows_seen[t - 1] = mod->ops->rows_seen(mod->state);
            const int want_nov = novelty_day && mod->ops->novelty;
            if (learned || !scored[m]) {
                if ((rc = mod->ops->predict_topk(mod->state, s->test_x, nt, d, K, topk,
                                                 want_nov ? nov : NULL, err))) {
                    size_t l = strlen(err);
                    snprintf(err + l, VMFSIM_ERR_SIZE - l, " (model %s, day %zu)", name, t);
                    goto fail;
                }
                if ((rc = vmf_topk_macro_recall(s->test_y, nt, s->n_classes, topk, K, 1,
                                                &cv[m].top1[t - 1])) ||
                    (rc = vmf_topk_macro_recall(s->test_y, nt, s->n_classes, topk, K, K,
                                                &cv[m].top4[t - 1]))) {
                    snprintf(err, VMFSIM_ERR_SIZE, "scoring %s on day %zu: %s", name, t,
                             vmf_last_error());
                    goto fail;
                }
                cv[m].novelty_auroc[t - 1] = want_nov ? vmfsim_auroc(nov, unseen, nt) : NAN;
                if (cv[m].ranks)
                    for (size_t i = 0; i < nt; i++) {
                        unsigned char r = (unsigned char)K;
                        for (size_t j = 0; j < K && r == K; j++)
                            if (topk[i * K + j] == s->test_y[i])
                                r = (unsigned char)j;
                        cv[m].ranks[(t - 1) * nt + i] = r;
                    }
                cv[m].predict_s[t - 1] = now_s() - t1;
                scored[m] = 1;
            } else {
                cv[m].top1[t - 1] = cv[m].top1[t - 2];
                cv[m].top4[t - 1] = cv[m].top4[t - 2];
                if (cv[m].ranks)
                    memcpy(cv[m].ranks + (t - 1) * nt, cv[m].ranks + (t - 2) * nt, nt);
                /* Same model, same scores; the unseen set may have shrunk since. */
                cv[m].novelty_auroc[t - 1] = NAN;
                if (want_nov) {
                    if ((rc = mod->ops->predict_topk(mod->state, s->test_x, nt, d, K, topk, nov,
                                                     err))) {
                        size_t l = strlen(err);
                        snprintf(err + l, VMFSIM_ERR_SIZE - l, " (model %s, day %zu)", name, t);
                        goto fail;
                    }
                    cv[m].novelty_auroc[t - 1] = vmfsim_auroc(nov, unseen, nt);
                }
            }
        }
        if (o->progress) {
            fprintf(stderr, "\rvmfsim: day %3zu/%zu  %6zu rows  %6.1f s", t, days, so_far,
                    now_s() - t_start);
            for (size_t m = 0; m < o->n_models; m++)
                fprintf(stderr, "  %s %.3f", vmfsim_family_name(o->families[m]), cv[m].top1[t - 1]);
            fflush(stderr);
        }
    }
    if (o->progress)
        fputc('\n', stderr);
    rc = VMF_OK;
    *out = cv;
    cv = NULL;
fail:
    if (rc && o->progress)
        fputc('\n', stderr);
    for (size_t m = 0; m < o->n_models; m++)
        vmfsim_model_free(models[m]);
    vmfsim_curves_free(cv, o->n_models);
    free(topk);
    free(nov);
    free(unseen);
    free(seen);
    return rc;
}
