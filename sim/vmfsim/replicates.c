/*
 * replicates.c - how sure the replay is. `vmfsim run --replicates R` replays
 * R - 1 more times, each with a fresh draw of what is random in a
 * deployment's record:
 *
 *   - the order of the rows within each day (a day's batch has no natural
 *     order, and the online families see it in sequence);
 *   - the test rows: a bootstrap sample (n_test draws with replacement), so
 *     the interval includes the sampling error of a finite test set;
 *   - for the synthetic stream, the stream itself (generated with seed + r);
 *   - the models' own seeds (seed + r).
 *
 * Replicate 0 is the main run (daily.csv and the point values of
 * summary.json). For each model the summary gives the median and the 90 %
 * interval (the 5th and 95th percentiles, linear interpolation between order
 * statistics) of the final top-1/top-4, the peak top-1 and the time-to-peak
 * at each tolerance; the plot draws the per-day 5th-95th percentile band of
 * top-1 and top-4 around the main curve.
 */
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vmfsim_reps_new(size_t n, size_t n_models, size_t days, vmfsim_reps **out)
{
    *out = NULL;
    vmfsim_reps *r = calloc(1, sizeof *r);
    if (!r)
        return VMF_ENOMEM;
    r->n = n;
    r->n_models = n_models;
    r->days = days;
    r->final1 = calloc(n_models * n, sizeof *r->final1);
    r->final4 = calloc(n_models * n, sizeof *r->final4);
    r->peak1 = calloc(n_models * n, sizeof *r->peak1);
    r->ttp = calloc(n_models * VMFSIM_N_EPS * n, sizeof *r->ttp);
    r->top1 = calloc(n_models * days * n, sizeof *r->top1);
    r->top4 = calloc(n_models * days * n, sizeof *r->top4);
    if (!r->final1 || !r->final4 || !r->peak1 || !r->ttp || !r->top1 || !r->top4) {
        vmfsim_reps_free(r);
        return VMF_ENOMEM;
    }
    *out = r;
    return VMF_OK;
}

void vmfsim_reps_free(vmfsim_reps *r)
{
    if (!r)
        return;
    free(r->final1), free(r->final4), free(r->peak1), free(r->ttp), free(r->top1), free(r->top4);
    free(r);
}

void vmfsim_reps_record(vmfsim_reps *r, size_t rep, const vmfsim_curve *c)
{
    const size_t n = r->n, days = r->days;
    for (size_t m = 0; m < r->n_models; m++) {
        const vmfsim_curve *v = &c[m];
        size_t pd;
        r->final1[m * n + rep] = v->top1[days - 1];
        r->final4[m * n + rep] = v->top4[days - 1];
        vmfsim_peak(v->top1, days, &r->peak1[m * n + rep], &pd);
        for (int e = 0; e < VMFSIM_N_EPS; e++)
            r->ttp[(m * VMFSIM_N_EPS + (size_t)e) * n + rep] =
                (double)vmfsim_time_to_peak(v->top1, days, vmfsim_eps[e]);
        for (size_t t = 0; t < days; t++) {
            r->top1[(m * days + t) * n + rep] = v->top1[t];
            r->top4[(m * days + t) * n + rep] = v->top4[t];
        }
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double vmfsim_quantile(const double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, dbl_cmp);
    double h = p * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double q = s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
    free(s);
    return q;
}

int vmfsim_stream_perturb(const vmfsim_stream *s, uint64_t seed, vmfsim_stream *out, char *err)
{
    memset(out, 0, sizeof *out);
    const size_t d = s->d;
    out->d = d;
    out->n_classes = s->n_classes;
    out->n_stream = s->n_stream;
    out->n_test = s->n_test;
    memcpy(out->day_off, s->day_off, sizeof out->day_off);
    out->labels = malloc(s->n_classes * sizeof *out->labels);
    out->x = malloc(s->n_stream * d * sizeof *out->x);
    out->y = malloc(s->n_stream * sizeof *out->y);
    out->test_x = malloc(s->n_test * d * sizeof *out->test_x);
    out->test_y = malloc(s->n_test * sizeof *out->test_y);
    size_t *perm = malloc((s->n_stream ? s->n_stream : 1) * sizeof *perm);
    if (!out->labels || !out->x || !out->y || !out->test_x || !out->test_y || !perm) {
        free(perm);
        vmfsim_stream_free(out);
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    }
    memcpy(out->labels, s->labels, s->n_classes * sizeof *out->labels);
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    for (size_t i = 0; i < s->n_stream; i++)
        perm[i] = i;
    /* Fisher-Yates within each day. */
    for (size_t t = 1; t <= VMFSIM_MAX_DAY; t++) {
        size_t a = s->day_off[t], b = s->day_off[t + 1];
        for (size_t i = b; i > a + 1; i--) {
            size_t j = a + (size_t)vmf_rng_below(&rng, (uint64_t)(i - a));
            size_t tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
    }
    for (size_t i = 0; i < s->n_stream; i++) {
        memcpy(out->x + i * d, s->x + perm[i] * d, d * sizeof *out->x);
        out->y[i] = s->y[perm[i]];
    }
    for (size_t i = 0; i < s->n_test; i++) {
        size_t j = (size_t)vmf_rng_below(&rng, (uint64_t)s->n_test);
        memcpy(out->test_x + i * d, s->test_x + j * d, d * sizeof *out->test_x);
        out->test_y[i] = s->test_y[j];
    }
    free(perm);
    return VMF_OK;
}

void vmfsim_reps_bands(const vmfsim_reps *r, vmfsim_curve *c)
{
    const size_t n = r->n, days = r->days;
    for (size_t m = 0; m < r->n_models; m++) {
        double *b = malloc(4 * days * sizeof *b);
        if (!b)
            continue; /* no band: the plot draws the curve alone */
        for (size_t t = 0; t < days; t++) {
            const double *v1 = r->top1 + (m * days + t) * n, *v4 = r->top4 + (m * days + t) * n;
            b[t] = vmfsim_quantile(v1, n, 0.05);
            b[days + t] = vmfsim_quantile(v1, n, 0.95);
            b[2 * days + t] = vmfsim_quantile(v4, n, 0.05);
            b[3 * days + t] = vmfsim_quantile(v4, n, 0.95);
        }
        free(c[m].band);
        c[m].band = b;
    }
}
