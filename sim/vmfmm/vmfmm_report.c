/*
 * vmfmm_report.c - the plots of `vmfmm fit`, each as PNG and SVG in plots/:
 *
 *   convergence     mean log-likelihood per row against the EM iteration
 *   weights_kappas  component weights and concentrations, side by side
 *   means_2d        a sample of rows coloured by component, projected on the
 *                   first two principal axes of the mean directions; each
 *                   component's anchor sits at its expected point A_d(kappa) mu
 *                   (the centre of its cloud), sized by its weight
 *   similarity      cosine similarity of the mean directions, values in cells
 *   counts          rows assigned to each component (all rows)
 *   entropy         mean posterior entropy (bits) of the rows of each component;
 *                   0 = never in doubt, log2 K = uniform posterior
 *   contingency     with labels: share of each class in each component
 *   overview        all of the above on one page, with a summary
 */
#include "plot.h"
#include "vmfmm_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows drawn for the 2-D projection: enough to show each cloud, few enough to stay legible. */
#define PROJ_SAMPLE 2500

static double dot_d(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += a[j] * b[j];
    return s;
}

/* v <- C v with C = A_c^T A_c / n, A_c the centred rows; w is scratch [n]. */
static void cov_times(const float *a, size_t n, size_t d, const double *mean, const double *v,
                      double *out, double *w)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += ((double)a[i * d + j] - mean[j]) * v[j];
        w[i] = s;
    }
    for (size_t j = 0; j < d; j++)
        out[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            out[j] += w[i] * ((double)a[i * d + j] - mean[j]);
    for (size_t j = 0; j < d; j++)
        out[j] /= (double)n;
}

static void normalize_d(double *v, size_t d)
{
    double s = sqrt(dot_d(v, v, d));
    if (s > 0)
        for (size_t j = 0; j < d; j++)
            v[j] /= s;
}

void vmfmm_pca2(const float *a, size_t n, size_t d, double *mean, double *dirs)
{
    for (size_t j = 0; j < d; j++)
        mean[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += a[i * d + j];
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    double *w = malloc((n + 2 * d) * sizeof *w);
    if (w == NULL) {
        /* Fall back on the first two coordinates: a legible, if arbitrary, view. */
        memset(dirs, 0, 2 * d * sizeof *dirs);
        dirs[0] = 1;
        dirs[d + (d > 1)] = 1;
        return;
    }
    double *tmp = w + n;
    for (int c = 0; c < 2; c++) {
        double *v = dirs + (size_t)c * d;
        /* A fixed, generic start vector: deterministic plots for a given input. */
        for (size_t j = 0; j < d; j++)
            v[j] = 1.0 + 0.37 * sin(1.0 + (double)j * (c ? 2.1 : 1.3));
        for (int it = 0; it < 300; it++) {
            if (c == 1) {
                double p = dot_d(v, dirs, d);
                for (size_t j = 0; j < d; j++)
                    v[j] -= p * dirs[j];
            }
            normalize_d(v, d);
            cov_times(a, n, d, mean, v, tmp, w);
            if (c == 1) {
                double p = dot_d(tmp, dirs, d);
                for (size_t j = 0; j < d; j++)
                    tmp[j] -= p * dirs[j];
            }
            double norm = sqrt(dot_d(tmp, tmp, d));
            if (norm <= 1e-300)
                break; /* no variance left in this direction: keep v */
            double change = 0;
            for (size_t j = 0; j < d; j++) {
                double nv = tmp[j] / norm;
                change += fabs(nv - v[j]);
                v[j] = nv;
            }
            if (change < 1e-10)
                break;
        }
        if (c == 1) {
            double p = dot_d(v, dirs, d);
            for (size_t j = 0; j < d; j++)
                v[j] -= p * dirs[j];
        }
        normalize_d(v, d);
    }
    free(w);
}

static int plot_fail(simc_cli *cli, int rc, const char *err)
{
    return simc_cli_fail(cli, rc == VMF_ENOMEM ? EX_OSERR : EX_CANTCREAT, "%s", err);
}

/* All arrays the panels point into; freed together. */
typedef struct report {
    size_t k, d, n;
    char (*names)[24];      /* [k] "0", "1", ... */
    const char **name_ptrs; /* [k] */
    char (*anchor_names)[24];
    const char **anchor_ptrs;
    int *colors;           /* [k] 0..k-1 */
    double *iters, *trace; /* convergence */
    double *weights, *kappas, *counts, *entropy, *cos;
    double *px, *py; /* projected sample */
    int *pgroup;
    size_t np;
    double *hx, *hy, *hsize;
    /* contingency */
    size_t n_classes;
    double *contingency;
    char (*class_names)[32];
    const char **class_ptrs;
} report;

static void report_free(report *r)
{
    free(r->names);
    free(r->name_ptrs);
    free(r->anchor_names);
    free(r->anchor_ptrs);
    free(r->colors);
    free(r->iters);
    free(r->trace);
    free(r->weights);
    free(r->kappas);
    free(r->counts);
    free(r->entropy);
    free(r->cos);
    free(r->px);
    free(r->py);
    free(r->pgroup);
    free(r->hx);
    free(r->hy);
    free(r->hsize);
    free(r->contingency);
    free(r->class_names);
    free(r->class_ptrs);
}

/* Fills every array of r from the fit. Returns VMF_OK or VMF_ENOMEM. */
static int report_build(report *r, const vmfmm_fit_view *v)
{
    const vmf_mixture *m = v->mixture;
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m), n = v->data->n;
    r->k = k;
    r->d = d;
    r->n = n;
    size_t ni = v->report->n_iter;
    r->names = malloc(k * sizeof *r->names);
    r->name_ptrs = malloc(k * sizeof *r->name_ptrs);
    r->anchor_names = malloc(k * sizeof *r->anchor_names);
    r->anchor_ptrs = malloc(k * sizeof *r->anchor_ptrs);
    r->colors = malloc(k * sizeof *r->colors);
    r->iters = malloc((ni ? ni : 1) * sizeof *r->iters);
    r->trace = malloc((ni ? ni : 1) * sizeof *r->trace);
    r->weights = malloc(k * sizeof *r->weights);
    r->kappas = malloc(k * sizeof *r->kappas);
    r->counts = calloc(k, sizeof *r->counts);
    r->entropy = calloc(k, sizeof *r->entropy);
    r->cos = malloc(k * k * sizeof *r->cos);
    r->np = n < PROJ_SAMPLE ? n : PROJ_SAMPLE;
    r->px = malloc((r->np ? r->np : 1) * sizeof *r->px);
    r->py = malloc((r->np ? r->np : 1) * sizeof *r->py);
    r->pgroup = malloc((r->np ? r->np : 1) * sizeof *r->pgroup);
    r->hx = malloc(k * sizeof *r->hx);
    r->hy = malloc(k * sizeof *r->hy);
    r->hsize = malloc(k * sizeof *r->hsize);
    if (!r->names || !r->name_ptrs || !r->anchor_names || !r->anchor_ptrs || !r->colors ||
        !r->iters || !r->trace || !r->weights || !r->kappas || !r->counts || !r->entropy ||
        !r->cos || !r->px || !r->py || !r->pgroup || !r->hx || !r->hy || !r->hsize)
        return VMF_ENOMEM;

    const double *w = vmf_mixture_weights(m);
    const double *kap = vmf_mixture_kappas(m);
    const float *mu = vmf_mixture_means(m);
    double wmax = 0;
    for (size_t j = 0; j < k; j++) {
        snprintf(r->names[j], sizeof r->names[j], "%zu", j);
        r->name_ptrs[j] = r->names[j];
        snprintf(r->anchor_names[j], sizeof r->anchor_names[j], "c%zu", j);
        r->anchor_ptrs[j] = r->anchor_names[j];
        r->colors[j] = (int)j;
        r->weights[j] = w[j];
        r->kappas[j] = kap[j];
        wmax = fmax(wmax, w[j]);
    }
    for (size_t t = 0; t < ni; t++) {
        r->iters[t] = (double)(t + 1);
        r->trace[t] = v->report->trace[t];
    }
    for (size_t i = 0; i < n; i++) {
        int32_t c = v->assign[i];
        if (c >= 0 && (size_t)c < k) {
            r->counts[c] += 1;
            r->entropy[c] += v->entropy[i];
        }
    }
    for (size_t j = 0; j < k; j++)
        r->entropy[j] = r->counts[j] > 0 ? r->entropy[j] / r->counts[j] : NAN;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += (double)mu[a * d + j] * mu[b * d + j];
            r->cos[a * k + b] = s;
        }

    /* The sample of rows: every (n / np)-th row after a seeded offset, so it spans the file. */
    size_t *rows = malloc((r->np ? r->np : 1) * sizeof *rows);
    float *sample = malloc((r->np ? r->np : 1) * d * sizeof *sample);
    double *mean = malloc(d * sizeof *mean);
    double *dirs = malloc(2 * d * sizeof *dirs);
    if (!rows || !sample || !mean || !dirs) {
        free(rows);
        free(sample);
        free(mean);
        free(dirs);
        return VMF_ENOMEM;
    }
    vmf_rng rng;
    vmf_rng_seed(&rng, v->seed ^ 0x9E3779B97F4A7C15ULL);
    /* Selection sampling keeps input order and takes exactly np rows. */
    size_t need = r->np, got = 0;
    for (size_t i = 0; i < n && need > 0; i++)
        if (vmf_rng_below(&rng, n - i) < need) {
            rows[got++] = i;
            need--;
        }
    for (size_t s = 0; s < r->np; s++)
        memcpy(sample + s * d, v->data->x + rows[s] * d, d * sizeof *sample);
    /* Principal axes of the means when they span a plane (K >= 3), else of the rows. */
    if (k >= 3)
        vmfmm_pca2(mu, k, d, mean, dirs);
    else
        vmfmm_pca2(sample, r->np, d, mean, dirs);
    for (size_t s = 0; s < r->np; s++) {
        double a = 0, b = 0;
        for (size_t j = 0; j < d; j++) {
            double x = (double)sample[s * d + j] - mean[j];
            a += x * dirs[j];
            b += x * dirs[d + j];
        }
        r->px[s] = a;
        r->py[s] = b;
        r->pgroup[s] = v->assign[rows[s]];
    }
    for (size_t c = 0; c < k; c++) {
        double rbar = vmf_bessel_ratio(d, kap[c]);
        if (!isfinite(rbar))
            rbar = 1;
        double a = 0, b = 0;
        for (size_t j = 0; j < d; j++) {
            double x = rbar * (double)mu[c * d + j] - mean[j];
            a += x * dirs[j];
            b += x * dirs[d + j];
        }
        r->hx[c] = a;
        r->hy[c] = b;
        r->hsize[c] = wmax > 0 ? w[c] / wmax : 0.5;
    }
    free(rows);
    free(sample);
    free(mean);
    free(dirs);

    /* Contingency of classes and components (share of each class's rows per component). */
    const vmfmm_data *data = v->data;
    if (data->y && data->labels) {
        size_t c = vmf_label_table_size(data->labels);
        if (c > 0 && c <= 60) {
            r->n_classes = c;
            r->contingency = calloc(c * k, sizeof *r->contingency);
            r->class_names = malloc(c * sizeof *r->class_names);
            r->class_ptrs = malloc(c * sizeof *r->class_ptrs);
            if (!r->contingency || !r->class_names || !r->class_ptrs)
                return VMF_ENOMEM;
            double *tot = calloc(c, sizeof *tot);
            size_t *order = malloc(c * sizeof *order);
            if (tot == NULL || order == NULL) {
                free(tot);
                free(order);
                return VMF_ENOMEM;
            }
            /* Rows in label order (the table is in order of first appearance). */
            vmfmm_label_order(data->labels, order);
            for (size_t i = 0; i < n; i++) {
                int32_t y = data->y[i], a = v->assign[i];
                if (y >= 0 && (size_t)y < c && a >= 0 && (size_t)a < k) {
                    r->contingency[(size_t)y * k + (size_t)a] += 1;
                    tot[y] += 1;
                }
            }
            double *sorted = malloc(c * k * sizeof *sorted);
            if (sorted == NULL) {
                free(tot);
                free(order);
                return VMF_ENOMEM;
            }
            for (size_t row = 0; row < c; row++) {
                size_t y = order[row];
                for (size_t a = 0; a < k; a++)
                    sorted[row * k + a] = tot[y] > 0 ? r->contingency[y * k + a] / tot[y] : NAN;
                vmf_label_table_format(data->labels, y, r->class_names[row],
                                       sizeof r->class_names[row]);
                r->class_ptrs[row] = r->class_names[row];
            }
            free(r->contingency);
            r->contingency = sorted;
            free(order);
            free(tot);
        }
    }
    return VMF_OK;
}

/* The panels, shared by the single plots and the overview page. */
typedef struct panels {
    simc_plot_series conv;
    simc_plot_series weight_s, kappa_s, count_s, entropy_s;
    simc_plot_bars weight_b, kappa_b, count_b, entropy_b;
    simc_plot_points points;
    simc_plot_grid sim, cont;
    simc_plot_hline entropy_max;
    char entropy_title[96];
    simc_plot_panel p_conv, p_weight, p_kappa, p_means, p_sim, p_count, p_entropy, p_cont, p_text;
} panels;

static void bar_series(simc_plot_series *s, const double *y, size_t k)
{
    memset(s, 0, sizeof *s);
    s->y = y;
    s->n = k;
    s->color = 0;
}

static void bars(simc_plot_bars *b, const simc_plot_series *s, const report *r, const char *fmt)
{
    memset(b, 0, sizeof *b);
    b->categories = r->name_ptrs;
    b->n_categories = r->k;
    b->groups = s;
    b->n_groups = 1;
    /* Values over bars only while they stay readable. */
    b->value_labels = r->k <= 12;
    b->value_format = fmt;
    b->category_colors = r->colors;
}

/* base with a title and axis labels. */
static simc_plot_opts labelled(const simc_plot_opts *base, const char *title, const char *xlabel,
                               const char *ylabel)
{
    simc_plot_opts o = *base;
    o.title = title;
    o.xlabel = xlabel;
    o.ylabel = ylabel;
    return o;
}

static void panels_build(panels *p, const report *r, const vmfmm_fit_view *v)
{
    memset(p, 0, sizeof *p);
    size_t k = r->k;
    p->conv = (simc_plot_series){.label = "mean log-likelihood",
                                 .x = r->iters,
                                 .y = r->trace,
                                 .n = v->report->n_iter,
                                 .color = 0,
                                 .markers = v->report->n_iter <= 60};
    bar_series(&p->weight_s, r->weights, k);
    bar_series(&p->kappa_s, r->kappas, k);
    bar_series(&p->count_s, r->counts, k);
    bar_series(&p->entropy_s, r->entropy, k);
    bars(&p->weight_b, &p->weight_s, r, "%.3f");
    bars(&p->kappa_b, &p->kappa_s, r, "%.0f");
    bars(&p->count_b, &p->count_s, r, "%.0f");
    bars(&p->entropy_b, &p->entropy_s, r, "%.2g");
    p->points = (simc_plot_points){.x = r->px,
                                   .y = r->py,
                                   .n = r->np,
                                   .group = r->pgroup,
                                   .radius = 2.2,
                                   .alpha = 0.45,
                                   .hx = r->hx,
                                   .hy = r->hy,
                                   .n_highlight = k,
                                   .highlight_group = r->colors,
                                   .highlight_labels = k <= 30 ? r->anchor_ptrs : NULL,
                                   .highlight_size = r->hsize};
    p->sim = (simc_plot_grid){.values = r->cos,
                              .rows = k,
                              .cols = k,
                              .row_labels = r->name_ptrs,
                              .col_labels = r->name_ptrs,
                              .vmin = -1,
                              .vmax = 1,
                              .diverging = 1,
                              .show_values = k <= 16,
                              .value_format = "%.2f",
                              .colorbar_label = "cosine"};
    p->cont = (simc_plot_grid){.values = r->contingency,
                               .rows = r->n_classes,
                               .cols = k,
                               .row_labels = r->class_ptrs,
                               .col_labels = r->name_ptrs,
                               .vmin = 0,
                               .vmax = 1,
                               .show_values = k <= 16 && r->n_classes <= 20,
                               .value_format = "%.2f",
                               .colorbar_label = "share of the class"};
    p->entropy_max = (simc_plot_hline){.y = k > 1 ? log2((double)k) : NAN,
                                       .label = "uniform posterior (log2 K)",
                                       .color = -1,
                                       .dashed = 1};

    simc_plot_opts o;
    simc_plot_opts_init(&o);
    o.legend = SIMC_PLOT_LEGEND_NONE;

    p->p_conv = (simc_plot_panel){
        .kind = SIMC_PLOT_KIND_LINE,
        .opts = labelled(&o, "Convergence", "EM iteration", "mean log-likelihood per row"),
        .series = &p->conv,
        .n_series = 1};
    p->p_conv.opts.x_integer = 1;

    p->p_weight =
        (simc_plot_panel){.kind = SIMC_PLOT_KIND_BAR,
                          .opts = labelled(&o, "Component weights", "component", "weight"),
                          .bars = &p->weight_b};

    p->p_kappa = (simc_plot_panel){.kind = SIMC_PLOT_KIND_BAR,
                                   .opts = labelled(&o, "Concentrations", "component", "kappa"),
                                   .bars = &p->kappa_b};

    p->p_means =
        (simc_plot_panel){.kind = SIMC_PLOT_KIND_SCATTER,
                          .opts = labelled(&o, "Mean directions, 2-D projection",
                                           k >= 3 ? "PC 1 of the means" : "PC 1 of the rows",
                                           k >= 3 ? "PC 2 of the means" : "PC 2 of the rows"),
                          .points = &p->points};

    p->p_sim = (simc_plot_panel){
        .kind = SIMC_PLOT_KIND_HEATMAP,
        .opts = labelled(&o, "Cosine similarity of the means", "component", "component"),
        .grid = &p->sim};

    p->p_count = (simc_plot_panel){
        .kind = SIMC_PLOT_KIND_BAR,
        .opts = labelled(&o, "Rows per component", "component (most probable)", "rows"),
        .bars = &p->count_b};

    snprintf(p->entropy_title, sizeof p->entropy_title,
             "Posterior entropy per component (uniform = %.2f bits)",
             k > 1 ? log2((double)k) : 0.0);
    p->p_entropy = (simc_plot_panel){
        .kind = SIMC_PLOT_KIND_BAR,
        .opts = labelled(&o, p->entropy_title, "component", "mean entropy of its rows (bits)"),
        .bars = &p->entropy_b};
    p->p_entropy.opts.ymin = 0;
    /* The scale follows the data (entropies are often far below log2 K); the
       uniform-posterior line is drawn only when it is within reach. */
    double emax = 0;
    for (size_t j = 0; j < k; j++)
        if (isfinite(r->entropy[j]))
            emax = fmax(emax, r->entropy[j]);
    if (k > 1 && emax > 0.5 * log2((double)k)) {
        p->p_entropy.opts.hlines = &p->entropy_max;
        p->p_entropy.opts.n_hlines = 1;
    }
    if (emax <= 0)
        p->p_entropy.opts.ymax = 1;

    p->p_cont =
        (simc_plot_panel){.kind = SIMC_PLOT_KIND_HEATMAP,
                          .opts = labelled(&o, "Classes across components", "component", "class"),
                          .grid = &p->cont};

    p->p_text = (simc_plot_panel){.kind = SIMC_PLOT_KIND_TEXT, .opts = o, .text = v->summary};
    p->p_text.opts.title = "Summary";
}

/* Writes one panel as its own chart. */
static int single(simc_cli *cli, const simc_plot_panel *panel, const char *subtitle, int w, int h,
                  const char *dir, const char *name)
{
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, dir, name) == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    simc_plot_panel one = *panel;
    one.opts.subtitle = subtitle;
    simc_plot_opts page;
    simc_plot_opts_init(&page);
    page.width = w;
    page.height = h;
    one.opts.width = w;
    one.opts.height = h;
    char err[512];
    int rc;
    switch (one.kind) {
    case SIMC_PLOT_KIND_LINE:
        rc = simc_plot_line(one.series, one.n_series, &one.opts, path, err, sizeof err);
        break;
    case SIMC_PLOT_KIND_BAR:
        rc = simc_plot_bar(one.bars, &one.opts, path, err, sizeof err);
        break;
    case SIMC_PLOT_KIND_SCATTER:
        rc = simc_plot_scatter(one.points, &one.opts, path, err, sizeof err);
        break;
    case SIMC_PLOT_KIND_HEATMAP:
        rc = simc_plot_heatmap(one.grid, &one.opts, path, err, sizeof err);
        break;
    default:
        rc = simc_plot_page(&one, 1, 1, &page, path, err, sizeof err);
        break;
    }
    return rc == VMF_OK ? EX_OK : plot_fail(cli, rc, err);
}

int vmfmm_report_plots(simc_cli *cli, const vmfmm_fit_view *v, const char *dir)
{
    report r = {0};
    int ex = EX_OK;
    if (report_build(&r, v) != VMF_OK) {
        report_free(&r);
        return simc_cli_fail(cli, EX_OSERR, "out of memory while plotting");
    }
    panels p;
    panels_build(&p, &r, v);
    const char *sub = v->subtitle;
    size_t k = r.k;
    /* Heatmaps grow with K so that cells stay readable. */
    int hm = k <= 12 ? 760 : k <= 24 ? 980 : 1200;
    ex = single(cli, &p.p_conv, sub, 900, 560, dir, "convergence");
    if (!ex)
        ex = single(cli, &p.p_means, sub, 900, 760, dir, "means_2d");
    if (!ex)
        ex = single(cli, &p.p_sim, sub, hm + 140, hm, dir, "similarity");
    if (!ex)
        ex = single(cli, &p.p_count, sub, 900, 560, dir, "counts");
    if (!ex)
        ex = single(cli, &p.p_entropy, sub, 900, 560, dir, "entropy");
    if (!ex && r.n_classes > 0)
        ex = single(cli, &p.p_cont, sub, 1000, 40 * (int)r.n_classes + 260, dir, "contingency");
    char path[VMFMM_PATH_MAX];
    char err[512];
    if (!ex) {
        /* Weights and kappas side by side: a two-panel page. */
        simc_plot_panel wk[2] = {p.p_weight, p.p_kappa};
        simc_plot_opts page;
        simc_plot_opts_init(&page);
        page.title = "Component weights and concentrations";
        page.subtitle = sub;
        page.width = 1400;
        page.height = 600;
        if (simc_cli_join(path, sizeof path, dir, "weights_kappas") == NULL)
            ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
        else {
            int rc = simc_plot_page(wk, 2, 2, &page, path, err, sizeof err);
            if (rc)
                ex = plot_fail(cli, rc, err);
        }
    }
    if (!ex) {
        simc_plot_panel all[9];
        size_t n = 0;
        all[n++] = p.p_conv;
        all[n++] = p.p_weight;
        all[n++] = p.p_kappa;
        all[n++] = p.p_count;
        all[n++] = p.p_means;
        all[n++] = p.p_sim;
        all[n++] = p.p_entropy;
        if (r.n_classes > 0)
            all[n++] = p.p_cont;
        all[n++] = p.p_text;
        simc_plot_opts page;
        simc_plot_opts_init(&page);
        page.title = "vmfmm fit overview";
        page.subtitle = sub;
        size_t cols = n > 8 ? 3 : 4;
        page.width = cols == 3 ? 1800 : 2200;
        page.height = cols == 3 ? 1650 : 1150;
        if (simc_cli_join(path, sizeof path, dir, "overview") == NULL)
            ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
        else {
            int rc = simc_plot_page(all, n, cols, &page, path, err, sizeof err);
            if (rc)
                ex = plot_fail(cli, rc, err);
        }
    }
    report_free(&r);
    return ex;
}
