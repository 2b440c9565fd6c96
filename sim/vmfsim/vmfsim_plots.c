/*
 * vmfsim_plots.c - the charts of a replay and of an ablation, drawn with the
 * shared cairo chart library (sim/common/plot.h), each as PNG and SVG:
 *
 *   accuracy  top-1 and top-4 macro recall per day, one curve per model (the
 *             palette index is the model family, so colours match across
 *             runs), time-to-peak (eps 0.01) of each model marked by a dashed
 *             vertical line in its colour; with --replicates, a light band per
 *             model spans the 5th-95th percentile of the replicates each day;
 *   rows      rows seen per day by each model (left) and the stream's rows per
 *             day and class (right, a heatmap: classes by size, days across);
 *   ablate    final and peak top-1/top-4 against K_max.
 */
#include "plot.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An empty panel of `kind` with days across: title, "day", ylabel; integer
 * day ticks on a line panel (a heatmap labels its columns itself). */
static void day_panel(simc_plot_panel *p, simc_plot_kind kind, const char *title,
                      const char *ylabel)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    simc_plot_opts_init(&p->opts);
    p->opts.title = title;
    p->opts.xlabel = "day";
    p->opts.ylabel = ylabel;
    p->opts.x_integer = kind == SIMC_PLOT_KIND_LINE;
}

int vmfsim_plot_run(const char *dir, const vmfsim_curve *c, size_t n_models, const vmfsim_stream *s,
                    size_t days, const char *subtitle, char *err)
{
    enum { RLAB = 24, CLAB = 4 }; /* class labels "%d"; days <= 200 as "1".."200" */
    int rc = VMF_ENOMEM;
    double *xs = malloc(days * sizeof *xs);
    double *rows = malloc(n_models * days * sizeof *rows);
    size_t C = s->n_classes;
    double *heat = calloc(C * days, sizeof *heat);
    size_t *order = malloc(C * sizeof *order), *tot = calloc(C, sizeof *tot);
    size_t *pos = malloc(C * sizeof *pos);
    const char **rlab = malloc(C * sizeof *rlab), **clab = malloc(days * sizeof *clab);
    char *rbuf = malloc(C * RLAB), *cbuf = malloc(days * CLAB);
    simc_plot_series s1[VMFSIM_MAX_MODEL], s4[VMFSIM_MAX_MODEL], sr[VMFSIM_MAX_MODEL];
    /* Bands first (drawn below the curves), then the curves. */
    simc_plot_series a1[2 * VMFSIM_MAX_MODEL], a4[2 * VMFSIM_MAX_MODEL];
    size_t na = 0;
    simc_plot_vline v1[VMFSIM_MAX_MODEL], v4[VMFSIM_MAX_MODEL];
    char vl1[VMFSIM_MAX_MODEL][48], vl4[VMFSIM_MAX_MODEL][48];
    char path[4096], perr[256] = "";
    if (!xs || !rows || !heat || !order || !tot || !pos || !rlab || !clab || !rbuf || !cbuf) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        goto done;
    }
    for (size_t t = 0; t < days; t++)
        xs[t] = (double)(t + 1);
    for (size_t m = 0; m < n_models; m++) {
        const char *name = vmfsim_family_name(c[m].family);
        size_t tt1 = vmfsim_time_to_peak(c[m].top1, days, 0.01);
        size_t tt4 = vmfsim_time_to_peak(c[m].top4, days, 0.01);
        memset(&s1[m], 0, sizeof s1[m]);
        s1[m].label = vl1[m];
        s1[m].x = xs;
        s1[m].y = c[m].top1;
        s1[m].n = days;
        s1[m].color = c[m].family;
        s4[m] = s1[m];
        s4[m].y = c[m].top4;
        s4[m].label = vl4[m];
        /* Time-to-peak goes into the legend; the lines stay unlabelled so close days
           do not overprint each other. */
        snprintf(vl1[m], sizeof vl1[m], "%s (ttp %zu)", name, tt1);
        snprintf(vl4[m], sizeof vl4[m], "%s (ttp %zu)", name, tt4);
        v1[m] = (simc_plot_vline){.x = (double)tt1, .color = c[m].family, .dashed = 1};
        v4[m] = (simc_plot_vline){.x = (double)tt4, .color = c[m].family, .dashed = 1};
        for (size_t t = 0; t < days; t++)
            rows[m * days + t] = (double)c[m].rows_seen[t];
        sr[m] = s1[m];
        sr[m].label = name;
        sr[m].y = rows + m * days;
    }
    for (size_t m = 0; m < n_models; m++) {
        if (!c[m].band)
            continue;
        memset(&a1[na], 0, sizeof a1[na]);
        a1[na].x = xs;
        a1[na].n = days;
        a1[na].color = c[m].family;
        a1[na].fill = 1;
        a1[na].fill_alpha = 0.18;
        a1[na].line_width = 0.3;
        a1[na].y_base = c[m].band;
        a1[na].y = c[m].band + days;
        a4[na] = a1[na];
        a4[na].y_base = c[m].band + 2 * days;
        a4[na].y = c[m].band + 3 * days;
        na++;
    }
    for (size_t m = 0; m < n_models; m++) {
        a1[na + m] = s1[m];
        a4[na + m] = s4[m];
    }
    simc_plot_panel p[2];
    day_panel(&p[0], SIMC_PLOT_KIND_LINE,
              "top-1 macro recall (dashed: time-to-peak, eps 0.01, day in the legend)",
              "top-1 macro recall");
    day_panel(&p[1], SIMC_PLOT_KIND_LINE,
              "top-4 macro recall (dashed: time-to-peak, eps 0.01, day in the legend)",
              "top-4 macro recall");
    const simc_plot_series *acc_series[2] = {a1, a4};
    const simc_plot_vline *acc_vlines[2] = {v1, v4};
    for (int i = 0; i < 2; i++) {
        p[i].opts.xmin = 0;
        p[i].opts.xmax = (double)days;
        p[i].opts.ymin = 0;
        p[i].opts.ymax = 1;
        p[i].opts.legend = SIMC_PLOT_LEGEND_BOTTOM_RIGHT;
        p[i].opts.vlines = acc_vlines[i];
        p[i].opts.n_vlines = n_models;
        p[i].series = acc_series[i];
        p[i].n_series = na + n_models;
    }
    simc_plot_opts page;
    simc_plot_opts_init(&page);
    page.title = "vmfsim: accuracy per day on the held-out test set";
    page.subtitle = subtitle;
    page.width = 1600;
    page.height = 700;
    snprintf(path, sizeof path, "%s/accuracy", dir);
    if ((rc = simc_plot_page(p, 2, 2, &page, path, perr, sizeof perr))) {
        snprintf(err, VMFSIM_ERR_SIZE, "%s", perr);
        goto done;
    }

    /* Rows: per model (line) and per day and class (heatmap, classes by size). */
    for (size_t i = 0; i < s->n_stream; i++)
        tot[s->y[i]]++;
    for (size_t k = 0; k < C; k++)
        order[k] = k;
    for (size_t a = 1; a < C; a++) { /* insertion sort, largest first (C is small) */
        size_t v = order[a], b = a;
        while (b > 0 && tot[order[b - 1]] < tot[v]) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = v;
    }
    for (size_t k = 0; k < C; k++) {
        pos[order[k]] = k;
        snprintf(rbuf + RLAB * k, RLAB, "%d", (int)s->labels[order[k]]);
        rlab[k] = rbuf + RLAB * k;
    }
    for (size_t t = 1; t <= days; t++)
        for (size_t i = s->day_off[t]; i < s->day_off[t + 1]; i++)
            heat[pos[s->y[i]] * days + (t - 1)] += 1;
    for (size_t t = 0; t < days; t++) { /* every day labelled; the plot library thins them */
        snprintf(cbuf + CLAB * t, CLAB, "%u", (unsigned)((t + 1) % 1000));
        clab[t] = cbuf + CLAB * t;
    }
    simc_plot_grid g = {.values = heat,
                        .rows = C,
                        .cols = days,
                        .row_labels = rlab,
                        .col_labels = clab,
                        .vmin = NAN,
                        .vmax = NAN,
                        .colorbar_label = "rows that day"};
    day_panel(&p[0], SIMC_PLOT_KIND_LINE, "rows seen by each model",
              "rows the model was trained on");
    p[0].opts.legend = SIMC_PLOT_LEGEND_TOP_LEFT;
    p[0].series = sr;
    p[0].n_series = n_models;
    day_panel(&p[1], SIMC_PLOT_KIND_HEATMAP, "stream rows per day and class (largest class on top)",
              "class");
    p[1].grid = &g;
    page.title = "vmfsim: rows seen per day and class";
    snprintf(path, sizeof path, "%s/rows", dir);
    rc = simc_plot_page(p, 2, 2, &page, path, perr, sizeof perr);
    if (rc)
        snprintf(err, VMFSIM_ERR_SIZE, "%s", perr);
done:
    free(xs), free(rows), free(heat), free(order), free(tot), free(pos);
    free(rlab), free(clab), free(rbuf), free(cbuf);
    return rc;
}

int vmfsim_plot_ablate(const char *dir, const vmfsim_ablate_row *rows, size_t n,
                       const char *subtitle, char *err)
{
    double *x = malloc(n * sizeof *x), *v = malloc(4 * n * sizeof *v);
    if (!x || !v) {
        free(x), free(v);
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        return VMF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)rows[i].k;
        v[i] = rows[i].final_top1;
        v[n + i] = rows[i].peak_top1;
        v[2 * n + i] = rows[i].final_top4;
        v[3 * n + i] = rows[i].peak_top4;
    }
    static const char *const names[4] = {"final top-1", "peak top-1", "final top-4", "peak top-4"};
    simc_plot_series s[4];
    for (int i = 0; i < 4; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].label = names[i];
        s[i].x = x;
        s[i].y = v + (size_t)i * n;
        s[i].n = n;
        s[i].color = i < 2 ? 0 : 2;
        s[i].markers = 1;
        s[i].dashed = i % 2;
    }
    simc_plot_opts o;
    simc_plot_opts_init(&o);
    o.title = "vmfsim ablate: macro recall against components per class (K_max)";
    o.subtitle = subtitle;
    o.xlabel = "K_max (components per class)";
    o.ylabel = "macro recall";
    o.x_integer = 1;
    char path[4096], perr[256] = "";
    snprintf(path, sizeof path, "%s/ablate", dir);
    int rc = simc_plot_line(s, 4, &o, path, perr, sizeof perr);
    if (rc)
        snprintf(err, VMFSIM_ERR_SIZE, "%s", perr);
    free(x), free(v);
    return rc;
}
