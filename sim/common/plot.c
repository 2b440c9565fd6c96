/*
 * plot.c - the cairo drawing behind plot.h.
 *
 * Design: every chart is a page of panels. A page is drawn once per output
 * format onto a fresh cairo surface (an image surface written as PNG, an SVG
 * surface, both streamed to libvmfmm's atomic file writer), so PNG and SVG
 * show exactly the same thing.
 * Sizes (fonts, margins, line widths) scale with the panel so that a panel of
 * an overview page stays as legible as a single chart. Axes use "nice" ticks
 * (1, 2, 5 times a power of ten) and labels formatted to the tick step.
 */
#include "plot.h"

#include "vmfmm/common.h"
#include "vmfmm/io.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <float.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT_SANS "DejaVu Sans"
#define PLOT_PI   3.14159265358979323846
#define FONT_MONO "DejaVu Sans Mono"

/* A colour-blind-friendly qualitative palette (Tableau 10, then its lighter companions). */
static const unsigned char PALETTE[SIMC_PLOT_PALETTE_SIZE][3] = {
    {31, 119, 180},  {255, 127, 14},  {44, 160, 44},   {214, 39, 40},   {148, 103, 189},
    {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
    {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
    {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};

void simc_plot_palette(int i, double rgb[3])
{
    if (i < 0) {
        rgb[0] = rgb[1] = rgb[2] = 0.35;
        return;
    }
    if (i < SIMC_PLOT_PALETTE_SIZE) {
        const unsigned char *c = PALETTE[i];
        for (int j = 0; j < 3; j++)
            rgb[j] = c[j] / 255.0;
        return;
    }
    /* Beyond the table: hues spread by the golden angle, so neighbours differ. */
    double h = fmod((double)i * 0.6180339887498949, 1.0) * 6.0;
    double s = (i / SIMC_PLOT_PALETTE_SIZE) % 2 ? 0.45 : 0.7, v = 0.82;
    int sector = (int)h;
    double f = h - sector, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double r = v, g = t, b = p;
    switch (sector % 6) {
    case 1:
        r = q, g = v, b = p;
        break;
    case 2:
        r = p, g = v, b = t;
        break;
    case 3:
        r = p, g = q, b = v;
        break;
    case 4:
        r = t, g = p, b = v;
        break;
    case 5:
        r = v, g = p, b = q;
        break;
    default:
        break;
    }
    rgb[0] = r;
    rgb[1] = g;
    rgb[2] = b;
}

void simc_plot_opts_init(simc_plot_opts *o)
{
    memset(o, 0, sizeof *o);
    o->width = 900;
    o->height = 560;
    o->xmin = o->xmax = o->ymin = o->ymax = NAN;
    o->grid = 1;
    o->legend = SIMC_PLOT_LEGEND_AUTO;
    o->formats = SIMC_PLOT_PNG | SIMC_PLOT_SVG;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------- */
/* Drawing helpers                                                           */
/* ------------------------------------------------------------------------- */

typedef struct rect {
    double x, y, w, h;
} rect;

/* The coordinate frame of an axes panel: data range mapped to the plot area. */
typedef struct frame {
    rect area;
    double xmin, xmax, ymin, ymax; /* in transformed units (log10 when log_y) */
    int log_y;
} frame;

static void set_color(cairo_t *cr, int i, double alpha)
{
    double c[3];
    simc_plot_palette(i, c);
    cairo_set_source_rgba(cr, c[0], c[1], c[2], alpha);
}

static void set_font(cairo_t *cr, double size, int bold, int mono)
{
    cairo_select_font_face(cr, mono ? FONT_MONO : FONT_SANS, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/*
 * Draws s with its anchor at (x, y): ha 0 left, 0.5 centre, 1 right; va 0 top,
 * 0.5 middle, 1 baseline-ish bottom. Uses font ascent so lines align.
 */
static void draw_text(cairo_t *cr, const char *s, double x, double y, double ha, double va)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s);
    double h = fe.ascent * 0.8; /* cap height, roughly */
    cairo_move_to(cr, x - ha * w, y - va * h + h);
    cairo_show_text(cr, s);
}

static void draw_text_rotated(cairo_t *cr, const char *s, double x, double y, double angle,
                              double ha, double va)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    draw_text(cr, s, 0, 0, ha, va);
    cairo_restore(cr);
}

static double tx(const frame *f, double x)
{
    return f->area.x + (x - f->xmin) / (f->xmax - f->xmin) * f->area.w;
}

static double ty_val(const frame *f, double y)
{
    return f->log_y ? log10(y) : y;
}

static double ty(const frame *f, double y)
{
    return f->area.y + f->area.h - (ty_val(f, y) - f->ymin) / (f->ymax - f->ymin) * f->area.h;
}

static int y_ok(const frame *f, double y)
{
    return isfinite(y) && (!f->log_y || y > 0);
}

/* ------------------------------------------------------------------------- */
/* Ticks                                                                     */
/* ------------------------------------------------------------------------- */

#define MAX_TICKS 64

typedef struct ticks {
    double v[MAX_TICKS];
    size_t n;
    double step;
} ticks;

static double nice_step(double range, double target)
{
    double raw = range / target;
    double p = pow(10.0, floor(log10(raw)));
    double m = raw / p;
    double nice = m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10;
    return nice * p;
}

static void make_ticks(double lo, double hi, double target, int integer, ticks *t)
{
    t->n = 0;
    double step = nice_step(hi - lo, target);
    if (integer && step < 1)
        step = 1;
    t->step = step;
    double first = ceil(lo / step - 1e-9) * step;
    for (double v = first; v <= hi + step * 1e-9 && t->n < MAX_TICKS; v += step) {
        double r = fabs(v) < step * 1e-9 ? 0.0 : v;
        t->v[t->n++] = r;
    }
}

/* Log axis: ticks at 10^k (and 2, 5 times 10^k when few decades are shown). lo, hi in log10. */
static void make_log_ticks(double lo, double hi, ticks *t)
{
    t->n = 0;
    t->step = 0;
    double span = hi - lo;
    int every = span > 12 ? (int)ceil(span / 8) : 1;
    for (int k = (int)floor(lo); k <= (int)ceil(hi) && t->n < MAX_TICKS; k++) {
        const double mult[3] = {1, 2, 5};
        for (int j = 0; j < 3; j++) {
            if (j > 0 && span > 3)
                break;
            if (j == 0 && every > 1 && k % every != 0)
                continue;
            double v = log10(mult[j]) + k;
            if (v >= lo - 1e-9 && v <= hi + 1e-9 && t->n < MAX_TICKS)
                t->v[t->n++] = v;
        }
    }
}

static void format_tick(double v, double step, int log_axis, char *buf, size_t size)
{
    if (log_axis) {
        double x = pow(10.0, v);
        if (fabs(x) >= 1e5 || fabs(x) < 1e-3)
            snprintf(buf, size, "%.0e", x);
        else
            snprintf(buf, size, "%g", x);
        return;
    }
    double a = fabs(v);
    if (v == 0) {
        snprintf(buf, size, "0");
    } else if (a >= 1e6 || (a < 1e-3 && step < 1e-3)) {
        int sig = 1 + (int)fmax(0, floor(log10(a)) - floor(log10(step)));
        if (sig > 6)
            sig = 6;
        snprintf(buf, size, "%.*e", sig - 1, v);
    } else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        if (dec > 6)
            dec = 6;
        snprintf(buf, size, "%.*f", dec, v);
    }
}

/* ------------------------------------------------------------------------- */
/* Panel layout: title, axes, legend                                         */
/* ------------------------------------------------------------------------- */

typedef struct style {
    double s; /* scale factor relative to a 900 x 560 chart */
    double title, subtitle, label, tick, legend, value;
} style;

static style make_style(double w, double h)
{
    double s = fmin(w / 900.0, h / 560.0);
    /* Panels of a page are smaller than a chart but are read at the same distance:
       keep their text close to full size. */
    s = s < 0.9 ? 0.9 : s > 1.4 ? 1.4 : s;
    style st = {s, 17 * s, 12.5 * s, 13.5 * s, 12 * s, 12 * s, 11 * s};
    return st;
}

/* One legend entry. kind: 0 line, 1 box, 2 dot. */
typedef struct legend_entry {
    const char *label;
    int color;
    int kind;
    int dashed;
    int markers;
} legend_entry;

typedef struct legend {
    legend_entry *e;
    size_t n;
    size_t cap;
} legend;

static int legend_add(legend *lg, const char *label, int color, int kind, int dashed, int markers)
{
    if (label == NULL || label[0] == '\0')
        return VMF_OK;
    if (lg->n == lg->cap) {
        size_t cap = lg->cap ? lg->cap * 2 : 16;
        legend_entry *e = realloc(lg->e, cap * sizeof *e);
        if (e == NULL)
            return VMF_ENOMEM;
        lg->e = e;
        lg->cap = cap;
    }
    legend_entry le = {label, color, kind, dashed, markers};
    lg->e[lg->n++] = le;
    return VMF_OK;
}

static void legend_size(cairo_t *cr, const style *st, const legend *lg, double *w, double *h)
{
    set_font(cr, st->legend, 0, 0);
    double maxw = 0;
    for (size_t i = 0; i < lg->n; i++)
        maxw = fmax(maxw, text_width(cr, lg->e[i].label));
    double row = st->legend * 1.45;
    *w = maxw + 40 * st->s;
    *h = (double)lg->n * row + 10 * st->s;
}

static void draw_marker(cairo_t *cr, double x, double y, double r)
{
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, r, 0, 2 * PLOT_PI);
}

static void legend_draw(cairo_t *cr, const style *st, const legend *lg, double x, double y)
{
    double w, h;
    legend_size(cr, st, lg, &w, &h);
    cairo_rectangle(cr, x, y, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    set_font(cr, st->legend, 0, 0);
    double row = st->legend * 1.45;
    for (size_t i = 0; i < lg->n; i++) {
        const legend_entry *e = &lg->e[i];
        double cy = y + 5 * st->s + row * ((double)i + 0.5);
        double x0 = x + 6 * st->s, x1 = x + 28 * st->s;
        set_color(cr, e->color, 1);
        if (e->kind == 0) {
            if (e->dashed) {
                double d[2] = {6 * st->s, 3 * st->s};
                cairo_set_dash(cr, d, 2, 0);
            }
            cairo_set_line_width(cr, 2.2 * st->s);
            cairo_move_to(cr, x0, cy);
            cairo_line_to(cr, x1, cy);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (e->markers) {
                draw_marker(cr, (x0 + x1) / 2, cy, 3.2 * st->s);
                cairo_fill(cr);
            }
        } else if (e->kind == 1) {
            cairo_rectangle(cr, x0 + 4 * st->s, cy - 5 * st->s, 14 * st->s, 10 * st->s);
            cairo_fill(cr);
        } else {
            draw_marker(cr, (x0 + x1) / 2, cy, 4.5 * st->s);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_text(cr, e->label, x + 34 * st->s, cy, 0, 0.5);
    }
}

/* Draws title and subtitle at the top of r and returns the height used. */
static double draw_titles(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r)
{
    double y = r.y + 6 * st->s;
    if (o->title && o->title[0]) {
        set_font(cr, st->title, 1, 0);
        cairo_set_source_rgb(cr, 0.08, 0.08, 0.08);
        draw_text(cr, o->title, r.x + r.w / 2, y, 0.5, 0);
        y += st->title * 1.35;
    }
    if (o->subtitle && o->subtitle[0]) {
        set_font(cr, st->subtitle, 0, 0);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        draw_text(cr, o->subtitle, r.x + r.w / 2, y, 0.5, 0);
        y += st->subtitle * 1.4;
    }
    return y - r.y + 4 * st->s;
}

/* Category labels of a bar chart (NULL for numeric x axes). */
typedef struct xcats {
    const char *const *labels;
    size_t n;
} xcats;

/*
 * Lays out the axes inside r (after the titles): computes the plot area from
 * tick label sizes, draws the grid, the axes, tick labels and axis labels.
 * f holds the data ranges on entry; its area is set on return.
 */
static void draw_axes(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r, frame *f,
                      const xcats *cats, double right_reserve)
{
    ticks yt, xt;
    if (f->log_y)
        make_log_ticks(f->ymin, f->ymax, &yt);
    else
        make_ticks(f->ymin, f->ymax, fmax(3, r.h / (60 * st->s)), 0, &yt);
    char buf[64];
    set_font(cr, st->tick, 0, 0);
    double ylab_w = 0;
    for (size_t i = 0; i < yt.n; i++) {
        format_tick(yt.v[i], yt.step, f->log_y, buf, sizeof buf);
        ylab_w = fmax(ylab_w, text_width(cr, buf));
    }
    double left = ylab_w + 12 * st->s + (o->ylabel && o->ylabel[0] ? st->label * 1.8 : 0);
    double bottom = st->tick * 1.9 + (o->xlabel && o->xlabel[0] ? st->label * 1.9 : 0);

    /* Category labels may need rotating: measure them against the slot width. */
    int rotate = 0;
    size_t cat_step = 1;
    double cat_h = 0;
    if (cats && cats->n > 0) {
        double slot = (r.w - left - right_reserve - 16 * st->s) / (double)cats->n;
        double maxw = 0;
        for (size_t i = 0; i < cats->n; i++) {
            const char *s = cats->labels ? cats->labels[i] : NULL;
            if (s == NULL) {
                snprintf(buf, sizeof buf, "%zu", i);
                s = buf;
            }
            maxw = fmax(maxw, text_width(cr, s));
        }
        if (maxw > slot * 0.92) {
            if (maxw <= 4 * st->tick) {
                /* Short labels (indices): show every cat_step-th one, upright. */
                cat_step = (size_t)ceil((maxw + 4 * st->s) / slot);
            } else {
                /* Long names: rotate, and thin them when even the rotated ones touch. */
                rotate = 1;
                cat_h = fmin(maxw * 0.72, r.h * 0.3);
                bottom += cat_h - st->tick * 0.6;
                cat_step = (size_t)ceil(st->tick * 1.6 / slot);
            }
            if (cat_step < 1)
                cat_step = 1;
        }
    }
    f->area.x = r.x + left;
    f->area.y = r.y + 8 * st->s;
    f->area.w = r.w - left - right_reserve - 16 * st->s;
    f->area.h = r.h - bottom - 8 * st->s;
    if (f->area.w < 10)
        f->area.w = 10;
    if (f->area.h < 10)
        f->area.h = 10;
    rect a = f->area;

    /* Background and grid. */
    cairo_rectangle(cr, a.x, a.y, a.w, a.h);
    cairo_set_source_rgb(cr, 0.985, 0.985, 0.985);
    cairo_fill(cr);
    cairo_set_line_width(cr, 1);
    if (o->grid) {
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        for (size_t i = 0; i < yt.n; i++) {
            double y = a.y + a.h - (yt.v[i] - f->ymin) / (f->ymax - f->ymin) * a.h;
            cairo_move_to(cr, a.x, floor(y) + 0.5);
            cairo_line_to(cr, a.x + a.w, floor(y) + 0.5);
        }
        cairo_stroke(cr);
    }

    /* Y tick labels. */
    set_font(cr, st->tick, 0, 0);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    for (size_t i = 0; i < yt.n; i++) {
        double y = a.y + a.h - (yt.v[i] - f->ymin) / (f->ymax - f->ymin) * a.h;
        format_tick(yt.v[i], yt.step, f->log_y, buf, sizeof buf);
        draw_text(cr, buf, a.x - 7 * st->s, y, 1, 0.5);
    }

    /* X ticks: numeric or categorical. */
    if (cats && cats->n > 0) {
        for (size_t i = 0; i < cats->n; i += cat_step) {
            double x = a.x + ((double)i + 0.5) / (double)cats->n * a.w;
            const char *s = cats->labels ? cats->labels[i] : NULL;
            if (s == NULL) {
                snprintf(buf, sizeof buf, "%zu", i);
                s = buf;
            }
            cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
            if (rotate)
                draw_text_rotated(cr, s, x, a.y + a.h + 6 * st->s, -PLOT_PI / 4, 1, 0.2);
            else
                draw_text(cr, s, x, a.y + a.h + 6 * st->s, 0.5, 0);
        }
    } else {
        make_ticks(f->xmin, f->xmax, fmax(3, a.w / (95 * st->s)), o->x_integer, &xt);
        if (o->grid) {
            cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
            for (size_t i = 0; i < xt.n; i++) {
                double x = floor(tx(f, xt.v[i])) + 0.5;
                cairo_move_to(cr, x, a.y);
                cairo_line_to(cr, x, a.y + a.h);
            }
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        for (size_t i = 0; i < xt.n; i++) {
            format_tick(xt.v[i], xt.step, 0, buf, sizeof buf);
            draw_text(cr, buf, tx(f, xt.v[i]), a.y + a.h + 6 * st->s, 0.5, 0);
        }
    }

    /* Frame. */
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, floor(a.x) + 0.5, floor(a.y) + 0.5, floor(a.w), floor(a.h));
    cairo_stroke(cr);

    /* Axis labels. */
    set_font(cr, st->label, 0, 0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (o->xlabel && o->xlabel[0]) {
        double y = a.y + a.h + st->tick * 1.7 + (rotate ? cat_h : 0) + 4 * st->s;
        draw_text(cr, o->xlabel, a.x + a.w / 2, y, 0.5, 0);
    }
    if (o->ylabel && o->ylabel[0])
        draw_text_rotated(cr, o->ylabel, r.x + 2 * st->s, a.y + a.h / 2, -PLOT_PI / 2, 0.5, 0);
}

/* Reference lines over the plot area, clipped to it. */
static void draw_ref_lines(cairo_t *cr, const style *st, const simc_plot_opts *o, const frame *f)
{
    rect a = f->area;
    set_font(cr, st->value, 0, 0);
    for (size_t i = 0; i < o->n_vlines; i++) {
        const simc_plot_vline *v = &o->vlines[i];
        if (!isfinite(v->x) || v->x < f->xmin || v->x > f->xmax)
            continue;
        double x = tx(f, v->x);
        set_color(cr, v->color, 0.9);
        if (v->dashed) {
            double d[2] = {5 * st->s, 4 * st->s};
            cairo_set_dash(cr, d, 2, 0);
        }
        cairo_set_line_width(cr, 1.6 * st->s);
        cairo_move_to(cr, x, a.y);
        cairo_line_to(cr, x, a.y + a.h);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (v->label && v->label[0]) {
            /* Stagger labels so that nearby lines do not print over each other. */
            double ly = a.y + 4 * st->s + (double)(i % 4) * st->value * 1.3;
            double w = text_width(cr, v->label);
            int right = x + 4 * st->s + w < a.x + a.w;
            double lx = right ? x + 3 * st->s : x - 3 * st->s - w;
            cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
            cairo_rectangle(cr, lx - 1, ly - 1, w + 2, st->value * 1.15);
            cairo_fill(cr);
            set_color(cr, v->color, 1);
            draw_text(cr, v->label, lx, ly, 0, 0);
        }
    }
    for (size_t i = 0; i < o->n_hlines; i++) {
        const simc_plot_hline *h = &o->hlines[i];
        if (!y_ok(f, h->y))
            continue;
        double yv = ty_val(f, h->y);
        if (yv < f->ymin || yv > f->ymax)
            continue;
        double y = ty(f, h->y);
        set_color(cr, h->color, 0.9);
        if (h->dashed) {
            double d[2] = {5 * st->s, 4 * st->s};
            cairo_set_dash(cr, d, 2, 0);
        }
        cairo_set_line_width(cr, 1.4 * st->s);
        cairo_move_to(cr, a.x, y);
        cairo_line_to(cr, a.x + a.w, y);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        if (h->label && h->label[0]) {
            set_color(cr, h->color, 1);
            draw_text(cr, h->label, a.x + a.w - 4 * st->s, y - 3 * st->s, 1, 1);
        }
    }
}

/* Pixel positions of the data, to place the legend where it hides the fewest. */
typedef struct pts {
    double *x, *y;
    size_t n, cap;
} pts;

static int pts_add(pts *p, double x, double y)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        double *nx = realloc(p->x, cap * sizeof *nx);
        if (nx == NULL)
            return VMF_ENOMEM;
        p->x = nx;
        double *ny = realloc(p->y, cap * sizeof *ny);
        if (ny == NULL)
            return VMF_ENOMEM;
        p->y = ny;
        p->cap = cap;
    }
    p->x[p->n] = x;
    p->y[p->n] = y;
    p->n++;
    return VMF_OK;
}

static void place_legend(cairo_t *cr, const style *st, const simc_plot_opts *o, const frame *f,
                         const legend *lg, const pts *p, rect panel)
{
    if (lg->n == 0 || o->legend == SIMC_PLOT_LEGEND_NONE)
        return;
    double w, h;
    legend_size(cr, st, lg, &w, &h);
    rect a = f->area;
    double pad = 8 * st->s;
    if (o->legend == SIMC_PLOT_LEGEND_OUTSIDE_RIGHT) {
        legend_draw(cr, st, lg, a.x + a.w + pad, a.y);
        (void)panel;
        return;
    }
    double cx[4] = {a.x + a.w - w - pad, a.x + pad, a.x + a.w - w - pad, a.x + pad};
    double cy[4] = {a.y + pad, a.y + pad, a.y + a.h - h - pad, a.y + a.h - h - pad};
    int best = 0;
    switch (o->legend) {
    case SIMC_PLOT_LEGEND_TOP_RIGHT:
        best = 0;
        break;
    case SIMC_PLOT_LEGEND_TOP_LEFT:
        best = 1;
        break;
    case SIMC_PLOT_LEGEND_BOTTOM_RIGHT:
        best = 2;
        break;
    case SIMC_PLOT_LEGEND_BOTTOM_LEFT:
        best = 3;
        break;
    default: {
        size_t best_count = (size_t)-1;
        for (int c = 0; c < 4; c++) {
            size_t count = 0;
            for (size_t i = 0; i < p->n; i++)
                if (p->x[i] >= cx[c] - 4 && p->x[i] <= cx[c] + w + 4 && p->y[i] >= cy[c] - 4 &&
                    p->y[i] <= cy[c] + h + 4)
                    count++;
            if (count < best_count) {
                best_count = count;
                best = c;
            }
        }
    } break;
    }
    legend_draw(cr, st, lg, cx[best], cy[best]);
}

/* Pads [lo, hi] by frac of its span; a zero span becomes a unit (or relative) interval. */
static void pad_range(double *lo, double *hi, double frac)
{
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (*hi - *lo <= fabs(*hi) * 1e-12 || *hi == *lo) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.05 : 0.5;
        *lo -= d;
        *hi += d;
        return;
    }
    double span = *hi - *lo;
    *lo -= span * frac;
    *hi += span * frac;
}

static void apply_user_range(const simc_plot_opts *o, frame *f)
{
    if (isfinite(o->xmin))
        f->xmin = o->xmin;
    if (isfinite(o->xmax))
        f->xmax = o->xmax;
    if (isfinite(o->ymin))
        f->ymin = f->log_y ? (o->ymin > 0 ? log10(o->ymin) : f->ymin) : o->ymin;
    if (isfinite(o->ymax))
        f->ymax = f->log_y ? (o->ymax > 0 ? log10(o->ymax) : f->ymax) : o->ymax;
    if (!(f->xmax > f->xmin))
        f->xmax = f->xmin + 1;
    if (!(f->ymax > f->ymin))
        f->ymax = f->ymin + 1;
}

/* Room at the right of the plot area for an outside legend. */
static double outside_legend_width(cairo_t *cr, const style *st, const simc_plot_opts *o,
                                   const legend *lg)
{
    if (o->legend != SIMC_PLOT_LEGEND_OUTSIDE_RIGHT || lg->n == 0)
        return 0;
    double w, h;
    legend_size(cr, st, lg, &w, &h);
    return w + 12 * st->s;
}

/* Widens [*lo, *hi] to hold v. */
static void extend(double *lo, double *hi, double v)
{
    *lo = fmin(*lo, v);
    *hi = fmax(*hi, v);
}

/* The data range of a frame, then the user's limits over it. */
static void set_range(const simc_plot_opts *o, frame *f, double xlo, double xhi, double ylo,
                      double yhi)
{
    f->xmin = xlo;
    f->xmax = xhi;
    f->ymin = ylo;
    f->ymax = yhi;
    apply_user_range(o, f);
}

/* Titles, then the axes (with room for an outside legend) in the rest of the panel. */
static void draw_frame(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r, frame *f,
                       const xcats *cats, const legend *lg)
{
    double top = draw_titles(cr, st, o, r);
    rect body = {r.x, r.y + top, r.w, r.h - top};
    draw_axes(cr, st, o, body, f, cats, outside_legend_width(cr, st, o, lg));
}

/* The common end of the framed panels: the legend where it hides the fewest of
 * the points p (when drawing succeeded), then the scratch freed; returns rc. */
static int finish_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, const frame *f,
                        legend *lg, pts *p, rect r, int rc)
{
    if (rc == VMF_OK)
        place_legend(cr, st, o, f, lg, p, r);
    free(lg->e);
    free(p->x);
    free(p->y);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Line panel                                                                */
/* ------------------------------------------------------------------------- */

static double sx(const simc_plot_series *s, size_t i)
{
    return s->x ? s->x[i] : (double)i;
}

static int draw_line_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r,
                           const simc_plot_series *series, size_t n_series)
{
    int rc = VMF_OK;
    legend lg = {0};
    pts p = {0};
    frame f = {.log_y = o->log_y};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t k = 0; k < n_series; k++) {
        const simc_plot_series *s = &series[k];
        for (size_t i = 0; i < s->n; i++) {
            double x = sx(s, i), y = s->y[i];
            if (!isfinite(x) || !isfinite(y) || (o->log_y && y <= 0))
                continue;
            extend(&xlo, &xhi, x);
            extend(&ylo, &yhi, o->log_y ? log10(y) : y);
            if (s->fill && s->y_base && isfinite(s->y_base[i])) {
                double b = s->y_base[i];
                if (!o->log_y || b > 0)
                    extend(&ylo, &yhi, o->log_y ? log10(b) : b);
            } else if (s->fill && !o->log_y) {
                ylo = fmin(ylo, 0);
            }
        }
        int color = s->color >= 0 ? s->color : (int)k;
        rc = legend_add(&lg, s->label, color, 0, s->dashed, s->markers || s->no_line);
        if (rc)
            goto done;
    }
    for (size_t i = 0; i < o->n_vlines; i++)
        if (isfinite(o->vlines[i].x))
            extend(&xlo, &xhi, o->vlines[i].x);
    if (xlo == xhi) {
        xlo -= 0.5;
        xhi += 0.5;
    }
    if (!isfinite(xlo)) {
        xlo = 0;
        xhi = 1;
    }
    /* A little room at both ends so that end markers are not cut in half. */
    double xpad = (xhi - xlo) * 0.012;
    xlo -= xpad;
    xhi += xpad;
    pad_range(&ylo, &yhi, 0.06);
    set_range(o, &f, xlo, xhi, ylo, yhi);

    draw_frame(cr, st, o, r, &f, NULL, &lg);

    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y, f.area.w, f.area.h);
    cairo_clip(cr);
    for (size_t k = 0; k < n_series; k++) {
        const simc_plot_series *s = &series[k];
        int color = s->color >= 0 ? s->color : (int)k;
        double lw = (s->line_width > 0 ? s->line_width : 2.0) * st->s;
        if (s->fill) {
            /* Filled band: each run of finite points becomes one polygon. */
            size_t i = 0;
            while (i < s->n) {
                while (i < s->n && !(isfinite(sx(s, i)) && y_ok(&f, s->y[i])))
                    i++;
                size_t j = i;
                while (j < s->n && isfinite(sx(s, j)) && y_ok(&f, s->y[j]))
                    j++;
                if (j > i) {
                    for (size_t t = i; t < j; t++) {
                        double X = tx(&f, sx(s, t)), Y = ty(&f, s->y[t]);
                        if (t == i)
                            cairo_move_to(cr, X, Y);
                        else
                            cairo_line_to(cr, X, Y);
                    }
                    for (size_t t = j; t-- > i;) {
                        double b = s->y_base ? s->y_base[t] : (f.log_y ? pow(10, f.ymin) : 0);
                        double Y = y_ok(&f, b) ? ty(&f, b) : f.area.y + f.area.h;
                        cairo_line_to(cr, tx(&f, sx(s, t)), Y);
                    }
                    cairo_close_path(cr);
                    set_color(cr, color, s->fill_alpha > 0 ? s->fill_alpha : 0.25);
                    cairo_fill(cr);
                }
                i = j;
            }
        }
        if (!s->no_line) {
            int pen = 0;
            for (size_t i = 0; i < s->n; i++) {
                double x = sx(s, i), y = s->y[i];
                if (!isfinite(x) || !y_ok(&f, y)) {
                    pen = 0;
                    continue;
                }
                if (pen)
                    cairo_line_to(cr, tx(&f, x), ty(&f, y));
                else
                    cairo_move_to(cr, tx(&f, x), ty(&f, y));
                pen = 1;
            }
            if (s->dashed) {
                double d[2] = {7 * st->s, 4 * st->s};
                cairo_set_dash(cr, d, 2, 0);
            }
            set_color(cr, color, 1);
            cairo_set_line_width(cr, lw);
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        for (size_t i = 0; i < s->n; i++) {
            double x = sx(s, i), y = s->y[i];
            if (!isfinite(x) || !y_ok(&f, y))
                continue;
            rc = pts_add(&p, tx(&f, x), ty(&f, y));
            if (rc)
                goto done_clip;
            if (s->markers || s->no_line) {
                set_color(cr, color, 1);
                draw_marker(cr, tx(&f, x), ty(&f, y), (s->no_line ? 3.6 : 3.0) * st->s);
                cairo_fill(cr);
            }
        }
    }
    draw_ref_lines(cr, st, o, &f);
done_clip:
    cairo_restore(cr);
done:
    return finish_panel(cr, st, o, &f, &lg, &p, r, rc);
}

/* ------------------------------------------------------------------------- */
/* Bar panel                                                                 */
/* ------------------------------------------------------------------------- */

static int draw_bar_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r,
                          const simc_plot_bars *b)
{
    int rc = VMF_OK;
    legend lg = {0};
    pts p = {0};
    frame f = {.log_y = o->log_y};
    size_t nc = b->n_categories, ng = b->n_groups;
    double ylo = o->log_y ? INFINITY : 0, yhi = o->log_y ? -INFINITY : 0;
    for (size_t c = 0; c < nc; c++) {
        double pos = 0, neg = 0;
        for (size_t g = 0; g < ng; g++) {
            double v = b->groups[g].y[c];
            if (!isfinite(v) || (o->log_y && v <= 0))
                continue;
            if (b->stacked) {
                if (v >= 0)
                    pos += v;
                else
                    neg += v;
            } else {
                extend(&ylo, &yhi, o->log_y ? log10(v) : v);
            }
        }
        if (b->stacked) {
            ylo = fmin(ylo, neg);
            yhi = fmax(yhi, pos);
        }
    }
    if (!isfinite(ylo)) {
        ylo = 0;
        yhi = 1;
    }
    double span = yhi - ylo;
    if (span <= 0)
        span = fabs(yhi) > 0 ? fabs(yhi) : 1;
    /* Bars start at zero: pad only away from it, more at the top for value labels. */
    double headroom = b->value_labels ? 0.12 : 0.05;
    if (yhi > 0 || o->log_y)
        yhi += span * headroom;
    if (ylo < 0 || o->log_y)
        ylo -= span * (o->log_y ? 0.05 : headroom);
    if (yhi <= ylo)
        yhi = ylo + 1;
    set_range(o, &f, 0, (double)(nc ? nc : 1), ylo, yhi);
    /* Categories, not numbers, on x: the user's x limits do not apply. */
    f.xmin = 0;
    f.xmax = (double)(nc ? nc : 1);

    if (ng > 1 || b->category_colors == NULL)
        for (size_t g = 0; g < ng; g++) {
            int color = b->groups[g].color >= 0 ? b->groups[g].color : (int)g;
            rc = legend_add(&lg, b->groups[g].label, color, 1, 0, 0);
            if (rc)
                goto done;
        }

    xcats cats = {b->categories, nc};
    draw_frame(cr, st, o, r, &f, &cats, &lg);

    const char *fmt = b->value_format ? b->value_format : "%.3g";
    double slot = f.area.w / (double)(nc ? nc : 1);
    double inner = slot * 0.78;
    double base_v = f.log_y ? pow(10, f.ymin) : 0;
    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y - 2 * st->s, f.area.w, f.area.h + 2 * st->s);
    cairo_clip(cr);
    set_font(cr, st->value, 0, 0);
    for (size_t c = 0; c < nc; c++) {
        double x0 = f.area.x + slot * (double)c + (slot - inner) / 2;
        double pos = 0, neg = 0;
        for (size_t g = 0; g < ng; g++) {
            const simc_plot_series *s = &b->groups[g];
            double v = s->y[c];
            if (!isfinite(v) || (f.log_y && v <= 0))
                continue;
            int color = s->color >= 0 ? s->color : (int)g;
            if (ng == 1 && b->category_colors)
                color = b->category_colors[c];
            double bx, bw, y0, y1;
            if (b->stacked) {
                bx = x0;
                bw = inner;
                if (v >= 0) {
                    y0 = pos;
                    pos += v;
                    y1 = pos;
                } else {
                    y0 = neg;
                    neg += v;
                    y1 = neg;
                }
            } else {
                bw = inner / (double)ng;
                bx = x0 + bw * (double)g;
                y0 = base_v;
                y1 = v;
            }
            double py0 = y_ok(&f, y0) ? ty(&f, y0) : f.area.y + f.area.h;
            double py1 = ty(&f, y1);
            set_color(cr, color, 0.9);
            cairo_rectangle(cr, bx + 0.5, fmin(py0, py1), fmax(bw - 1, 1), fabs(py1 - py0));
            cairo_fill(cr);
            rc = pts_add(&p, bx + bw / 2, py1);
            if (rc)
                goto done_clip;
            if (b->value_labels && !b->stacked) {
                char buf[64];
                snprintf(buf, sizeof buf, fmt, v);
                double tw = text_width(cr, buf);
                cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
                if (tw <= bw * 1.15 || ng == 1)
                    draw_text(cr, buf, bx + bw / 2, v >= 0 ? py1 - 3 * st->s : py1 + 3 * st->s, 0.5,
                              v >= 0 ? 1 : 0);
            }
        }
        if (b->value_labels && b->stacked) {
            char buf[64];
            snprintf(buf, sizeof buf, fmt, pos + neg);
            cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            draw_text(cr, buf, x0 + inner / 2, ty(&f, pos) - 3 * st->s, 0.5, 1);
        }
    }
    /* The zero line, when zero is inside the range. */
    if (!f.log_y && f.ymin < 0 && f.ymax > 0) {
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, f.area.x, ty(&f, 0));
        cairo_line_to(cr, f.area.x + f.area.w, ty(&f, 0));
        cairo_stroke(cr);
    }
    draw_ref_lines(cr, st, o, &f);
done_clip:
    cairo_restore(cr);
done:
    return finish_panel(cr, st, o, &f, &lg, &p, r, rc);
}

/* ------------------------------------------------------------------------- */
/* Scatter panel                                                             */
/* ------------------------------------------------------------------------- */

static int draw_scatter_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r,
                              const simc_plot_points *pp)
{
    int rc = VMF_OK;
    legend lg = {0};
    pts p = {0};
    frame f = {0};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t i = 0; i < pp->n; i++) {
        if (!isfinite(pp->x[i]) || !isfinite(pp->y[i]))
            continue;
        extend(&xlo, &xhi, pp->x[i]);
        extend(&ylo, &yhi, pp->y[i]);
    }
    for (size_t i = 0; i < pp->n_highlight; i++) {
        if (!isfinite(pp->hx[i]) || !isfinite(pp->hy[i]))
            continue;
        extend(&xlo, &xhi, pp->hx[i]);
        extend(&ylo, &yhi, pp->hy[i]);
    }
    pad_range(&xlo, &xhi, 0.07);
    pad_range(&ylo, &yhi, 0.07);
    set_range(o, &f, xlo, xhi, ylo, yhi);
    if (pp->group_labels)
        for (size_t g = 0; g < pp->n_groups; g++) {
            rc = legend_add(&lg, pp->group_labels[g], (int)g, 2, 0, 0);
            if (rc)
                goto done;
        }

    draw_frame(cr, st, o, r, &f, NULL, &lg);

    cairo_save(cr);
    cairo_rectangle(cr, f.area.x, f.area.y, f.area.w, f.area.h);
    cairo_clip(cr);
    double rad = (pp->radius > 0 ? pp->radius : 2.5) * st->s;
    double alpha = pp->alpha > 0 ? pp->alpha : 0.6;
    for (size_t i = 0; i < pp->n; i++) {
        if (!isfinite(pp->x[i]) || !isfinite(pp->y[i]))
            continue;
        double X = tx(&f, pp->x[i]), Y = ty(&f, pp->y[i]);
        set_color(cr, pp->group ? pp->group[i] : 0, alpha);
        draw_marker(cr, X, Y, rad);
        cairo_fill(cr);
        rc = pts_add(&p, X, Y);
        if (rc)
            goto done_clip;
    }
    set_font(cr, st->value * 1.05, 1, 0);
    for (size_t i = 0; i < pp->n_highlight; i++) {
        if (!isfinite(pp->hx[i]) || !isfinite(pp->hy[i]))
            continue;
        double X = tx(&f, pp->hx[i]), Y = ty(&f, pp->hy[i]);
        double size = pp->highlight_size ? pp->highlight_size[i] : 0.5;
        size = isfinite(size) ? fmin(fmax(size, 0), 1) : 0.5;
        double hr = (5 + 9 * sqrt(size)) * st->s;
        int g = pp->highlight_group ? pp->highlight_group[i] : (int)i;
        draw_marker(cr, X, Y, hr);
        set_color(cr, g, 1);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
        cairo_set_line_width(cr, 1.6 * st->s);
        cairo_stroke(cr);
        rc = pts_add(&p, X, Y);
        if (rc)
            goto done_clip;
        if (pp->highlight_labels && pp->highlight_labels[i]) {
            const char *s = pp->highlight_labels[i];
            double lx = X + hr + 3 * st->s;
            double w = text_width(cr, s);
            int left = lx + w > f.area.x + f.area.w;
            if (left)
                lx = X - hr - 3 * st->s;
            /* A white halo keeps the label readable over the points. */
            cairo_save(cr);
            cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
            cairo_rectangle(cr, left ? lx - w - 2 : lx - 2, Y - st->value * 0.7, w + 4,
                            st->value * 1.3);
            cairo_fill(cr);
            cairo_restore(cr);
            cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
            draw_text(cr, s, lx, Y, left ? 1 : 0, 0.5);
        }
    }
    draw_ref_lines(cr, st, o, &f);
done_clip:
    cairo_restore(cr);
done:
    return finish_panel(cr, st, o, &f, &lg, &p, r, rc);
}

/* ------------------------------------------------------------------------- */
/* Heatmap panel                                                             */
/* ------------------------------------------------------------------------- */

/* Viridis, sampled at 9 points and interpolated linearly. */
static void colormap(double t, int diverging, double rgb[3])
{
    static const double VIR[9][3] = {
        {0.267, 0.005, 0.329}, {0.279, 0.175, 0.483}, {0.230, 0.322, 0.546},
        {0.173, 0.449, 0.558}, {0.128, 0.567, 0.551}, {0.153, 0.681, 0.504},
        {0.361, 0.786, 0.388}, {0.668, 0.862, 0.196}, {0.993, 0.906, 0.144}};
    static const double DIV[5][3] = {{0.230, 0.299, 0.754},
                                     {0.552, 0.690, 0.996},
                                     {0.970, 0.970, 0.970},
                                     {0.957, 0.604, 0.482},
                                     {0.706, 0.016, 0.150}};
    t = isfinite(t) ? fmin(fmax(t, 0), 1) : 0;
    const double(*map)[3] = diverging ? DIV : VIR;
    int n = diverging ? 5 : 9;
    double pos = t * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1)
        i = n - 2;
    double u = pos - i;
    for (int j = 0; j < 3; j++)
        rgb[j] = map[i][j] * (1 - u) + map[i + 1][j] * u;
}

/* labels[i], or the index i written into buf [cap] when there are no labels. */
static const char *grid_label(const char *const *labels, size_t i, char *buf, size_t cap)
{
    if (labels)
        return labels[i];
    snprintf(buf, cap, "%zu", i);
    return buf;
}

static int draw_heatmap_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r,
                              const simc_plot_grid *g)
{
    double vmin = g->vmin, vmax = g->vmax;
    if (!isfinite(vmin) || !isfinite(vmax)) {
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < g->rows * g->cols; i++)
            if (isfinite(g->values[i]))
                extend(&lo, &hi, g->values[i]);
        if (!isfinite(lo)) {
            lo = 0;
            hi = 1;
        }
        if (!isfinite(vmin))
            vmin = lo;
        if (!isfinite(vmax))
            vmax = hi;
    }
    if (!(vmax > vmin))
        vmax = vmin + 1;

    double top = draw_titles(cr, st, o, r);
    rect body = {r.x, r.y + top, r.w, r.h - top};
    char buf[64];
    set_font(cr, st->tick, 0, 0);
    double rl_w = 0, cl_w = 0;
    for (size_t i = 0; i < g->rows; i++) {
        const char *s = grid_label(g->row_labels, i, buf, sizeof buf);
        rl_w = fmax(rl_w, text_width(cr, s));
    }
    for (size_t j = 0; j < g->cols; j++) {
        const char *s = grid_label(g->col_labels, j, buf, sizeof buf);
        cl_w = fmax(cl_w, text_width(cr, s));
    }
    double cbar_w = 70 * st->s + (g->colorbar_label ? st->label * 1.6 : 0);
    double left = rl_w + 10 * st->s + (o->ylabel && o->ylabel[0] ? st->label * 1.8 : 0);
    double avail_w = body.w - left - cbar_w - 10 * st->s;
    double cell_guess = avail_w / (double)(g->cols ? g->cols : 1);
    /* Long column labels are rotated; short ones (indices) are thinned instead. */
    int rotate = cl_w > cell_guess * 0.92 && cl_w > 4 * st->tick;
    double bottom = (rotate ? cl_w * 0.75 + st->tick : st->tick * 1.8) +
                    (o->xlabel && o->xlabel[0] ? st->label * 1.9 : 0) + 6 * st->s;
    double avail_h = body.h - bottom - 8 * st->s;
    double cw = avail_w / (double)(g->cols ? g->cols : 1);
    double ch = avail_h / (double)(g->rows ? g->rows : 1);
    /* Square cells read best for a similarity matrix; keep them square when close. */
    double c = fmin(cw, ch);
    if (g->rows == g->cols) {
        cw = ch = c;
    }
    double gw = cw * (double)g->cols, gh = ch * (double)g->rows;
    double gx = body.x + left + (avail_w - gw) / 2, gy = body.y + 8 * st->s;

    const char *fmt = g->value_format ? g->value_format : "%.2f";
    double vfs = fmin(st->value, ch * 0.42);
    for (size_t i = 0; i < g->rows; i++)
        for (size_t j = 0; j < g->cols; j++) {
            double v = g->values[i * g->cols + j];
            double rgb[3] = {0.8, 0.8, 0.8};
            if (isfinite(v))
                colormap((v - vmin) / (vmax - vmin), g->diverging, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            double x = gx + cw * (double)j, y = gy + ch * (double)i;
            cairo_rectangle(cr, x, y, cw + 0.3, ch + 0.3);
            cairo_fill(cr);
            if (g->show_values && isfinite(v) && vfs >= 6.5) {
                snprintf(buf, sizeof buf, fmt, v);
                set_font(cr, vfs, 0, 0);
                if (text_width(cr, buf) <= cw * 0.94) {
                    double lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
                    if (lum > 0.5)
                        cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
                    else
                        cairo_set_source_rgb(cr, 1, 1, 1);
                    draw_text(cr, buf, x + cw / 2, y + ch / 2, 0.5, 0.5);
                }
            }
        }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, gx, gy, gw, gh);
    cairo_stroke(cr);

    /* Row and column labels; thin them when cells are too small for every label. */
    set_font(cr, st->tick, 0, 0);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    size_t rstep = (size_t)ceil(st->tick * 1.1 / fmax(ch, 1e-9));
    size_t cstep = rotate ? (size_t)ceil(st->tick * 1.1 / fmax(cw, 1e-9))
                          : (size_t)ceil((cl_w + 4 * st->s) / fmax(cw, 1e-9));
    if (rstep < 1)
        rstep = 1;
    if (cstep < 1)
        cstep = 1;
    for (size_t i = 0; i < g->rows; i += rstep) {
        const char *s = grid_label(g->row_labels, i, buf, sizeof buf);
        draw_text(cr, s, gx - 6 * st->s, gy + ch * ((double)i + 0.5), 1, 0.5);
    }
    for (size_t j = 0; j < g->cols; j += cstep) {
        const char *s = grid_label(g->col_labels, j, buf, sizeof buf);
        double x = gx + cw * ((double)j + 0.5);
        if (rotate)
            draw_text_rotated(cr, s, x, gy + gh + 6 * st->s, -PLOT_PI / 4, 1, 0.2);
        else
            draw_text(cr, s, x, gy + gh + 6 * st->s, 0.5, 0);
    }
    set_font(cr, st->label, 0, 0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (o->xlabel && o->xlabel[0])
        draw_text(cr, o->xlabel, gx + gw / 2, gy + gh + bottom - st->label * 1.5, 0.5, 0);
    if (o->ylabel && o->ylabel[0])
        draw_text_rotated(cr, o->ylabel,
                          fmax(body.x + 2 * st->s, gx - rl_w - 12 * st->s - st->label * 1.3),
                          gy + gh / 2, -PLOT_PI / 2, 0.5, 0);

    /* Colour bar with five ticks. */
    double bx = gx + gw + 18 * st->s, bw = 16 * st->s;
    int steps = 64;
    for (int i = 0; i < steps; i++) {
        double rgb[3];
        colormap((i + 0.5) / steps, g->diverging, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, bx, gy + gh - gh * (i + 1) / steps, bw, gh / steps + 0.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, bx, gy, bw, gh);
    cairo_stroke(cr);
    ticks t;
    make_ticks(vmin, vmax, 5, 0, &t);
    set_font(cr, st->tick, 0, 0);
    double cbw = 0;
    for (size_t i = 0; i < t.n; i++) {
        double y = gy + gh - (t.v[i] - vmin) / (vmax - vmin) * gh;
        format_tick(t.v[i], t.step, 0, buf, sizeof buf);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, bx + bw, y);
        cairo_line_to(cr, bx + bw + 4 * st->s, y);
        cairo_stroke(cr);
        draw_text(cr, buf, bx + bw + 6 * st->s, y, 0, 0.5);
        cbw = fmax(cbw, text_width(cr, buf));
    }
    if (g->colorbar_label) {
        set_font(cr, st->label * 0.9, 0, 0);
        /* Rotated a quarter turn clockwise, anchored at its baseline: the text runs
           down the page and extends to the right of the tick labels. */
        draw_text_rotated(cr, g->colorbar_label, bx + bw + 10 * st->s + cbw, gy + gh / 2,
                          PLOT_PI / 2, 0.5, 1);
    }
    return VMF_OK;
}

/* ------------------------------------------------------------------------- */
/* Text panel                                                                */
/* ------------------------------------------------------------------------- */

static int draw_text_panel(cairo_t *cr, const style *st, const simc_plot_opts *o, rect r,
                           const char *text)
{
    double top = draw_titles(cr, st, o, r);
    if (text == NULL)
        return VMF_OK;
    /* Fit the font so that the longest line and all lines fit the box. */
    size_t lines = 1, longest = 0, cur = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            lines++;
            cur = 0;
        } else if (++cur > longest) {
            longest = cur;
        }
    }
    double avail_w = r.w - 24 * st->s, avail_h = r.h - top - 12 * st->s;
    /* As large as the box allows (up to 1.6 times the legend size), monospace. */
    double size = fmin(st->legend * 1.6, avail_h / ((double)lines * 1.4));
    set_font(cr, size, 0, 1);
    double cw = text_width(cr, "M");
    if (cw * (double)longest > avail_w)
        size *= avail_w / (cw * (double)longest);
    set_font(cr, size, 0, 1);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    char *copy = strdup(text);
    if (copy == NULL)
        return VMF_ENOMEM;
    double y = r.y + top + 6 * st->s;
    char *save = NULL;
    /* strtok_r skips empty lines; keep them by scanning by hand. */
    (void)save;
    char *line = copy;
    for (;;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        draw_text(cr, line, r.x + 12 * st->s, y, 0, 0);
        y += size * 1.4;
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(copy);
    return VMF_OK;
}

/* ------------------------------------------------------------------------- */
/* Pages and output                                                          */
/* ------------------------------------------------------------------------- */

static int check_panel(const simc_plot_panel *p, char *err, size_t err_size)
{
    switch (p->kind) {
    case SIMC_PLOT_KIND_LINE:
        if (p->n_series > 0 && p->series == NULL)
            goto bad;
        for (size_t k = 0; k < p->n_series; k++)
            if (p->series[k].n > 0 && p->series[k].y == NULL)
                goto bad;
        return VMF_OK;
    case SIMC_PLOT_KIND_BAR:
        if (p->bars == NULL || (p->bars->n_groups > 0 && p->bars->groups == NULL))
            goto bad;
        for (size_t g = 0; g < p->bars->n_groups; g++)
            if (p->bars->n_categories > 0 && p->bars->groups[g].y == NULL)
                goto bad;
        return VMF_OK;
    case SIMC_PLOT_KIND_SCATTER:
        if (p->points == NULL || (p->points->n > 0 && (!p->points->x || !p->points->y)) ||
            (p->points->n_highlight > 0 && (!p->points->hx || !p->points->hy)))
            goto bad;
        return VMF_OK;
    case SIMC_PLOT_KIND_HEATMAP:
        if (p->grid == NULL || (p->grid->rows * p->grid->cols > 0 && p->grid->values == NULL))
            goto bad;
        return VMF_OK;
    case SIMC_PLOT_KIND_TEXT:
        return VMF_OK;
    }
bad:
    set_err(err, err_size, "plot: panel of kind %d has missing data", (int)p->kind);
    return VMF_EINVAL;
}

static int draw_panel(cairo_t *cr, const simc_plot_panel *p, rect r)
{
    style st = make_style(r.w, r.h);
    cairo_save(cr);
    cairo_rectangle(cr, r.x, r.y, r.w, r.h);
    cairo_clip(cr);
    int rc = VMF_OK;
    switch (p->kind) {
    case SIMC_PLOT_KIND_LINE:
        rc = draw_line_panel(cr, &st, &p->opts, r, p->series, p->n_series);
        break;
    case SIMC_PLOT_KIND_BAR:
        rc = draw_bar_panel(cr, &st, &p->opts, r, p->bars);
        break;
    case SIMC_PLOT_KIND_SCATTER:
        rc = draw_scatter_panel(cr, &st, &p->opts, r, p->points);
        break;
    case SIMC_PLOT_KIND_HEATMAP:
        rc = draw_heatmap_panel(cr, &st, &p->opts, r, p->grid);
        break;
    case SIMC_PLOT_KIND_TEXT:
        rc = draw_text_panel(cr, &st, &p->opts, r, p->text);
        break;
    }
    cairo_restore(cr);
    return rc;
}

static int draw_page(cairo_t *cr, const simc_plot_panel *panels, size_t n, size_t columns,
                     const simc_plot_opts *page, double w, double h, int single)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (single)
        return draw_panel(cr, &panels[0], (rect){8, 4, w - 16, h - 10});
    style st = make_style(w, h);
    double top = draw_titles(cr, &st, page, (rect){0, 4, w, h});
    size_t rows = (n + columns - 1) / columns;
    double cw = (w - 16) / (double)columns;
    double ch = (h - top - 12) / (double)rows;
    for (size_t i = 0; i < n; i++) {
        rect r = {8 + cw * (double)(i % columns) + 6, top + ch * (double)(i / columns) + 4, cw - 12,
                  ch - 10};
        int rc = draw_panel(cr, &panels[i], r);
        if (rc)
            return rc;
    }
    return VMF_OK;
}

/* cairo's write callback: appends to the stream of an atomic file. */
static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int length)
{
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS
                                                      : CAIRO_STATUS_WRITE_ERROR;
}

static int render(const simc_plot_panel *panels, size_t n, size_t columns,
                  const simc_plot_opts *page, int single, const char *path, char *err,
                  size_t err_size)
{
    if (panels == NULL || n == 0 || columns == 0 || path == NULL || page == NULL) {
        set_err(err, err_size, "plot: bad arguments");
        return VMF_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = check_panel(&panels[i], err, err_size);
        if (rc)
            return rc;
    }
    int w = page->width > 0 ? page->width : 900;
    int h = page->height > 0 ? page->height : 560;
    if (w > 16384 || h > 16384) {
        set_err(err, err_size, "plot: %d x %d pixels is too large", w, h);
        return VMF_EINVAL;
    }
    unsigned formats = page->formats ? page->formats : (SIMC_PLOT_PNG | SIMC_PLOT_SVG);
    size_t len = strlen(path);
    char *file = malloc(len + 5);
    if (file == NULL) {
        set_err(err, err_size, "plot: out of memory");
        return VMF_ENOMEM;
    }
    int rc = VMF_OK;
    for (int fmt = 0; fmt < 2 && rc == VMF_OK; fmt++) {
        unsigned bit = fmt == 0 ? SIMC_PLOT_PNG : SIMC_PLOT_SVG;
        if (!(formats & bit))
            continue;
        memcpy(file, path, len);
        memcpy(file + len, fmt == 0 ? ".png" : ".svg", 5);
        /* Both formats go to a stream on libvmfmm's atomic writer, so a plot
         * is replaced whole like every other output. */
        vmf_atomic_file *af = NULL;
        if (vmf_atomic_file_open(file, &af) != VMF_OK) {
            set_err(err, err_size, "cannot create %s", vmf_last_error());
            rc = VMF_EIO;
            break;
        }
        FILE *out = vmf_atomic_file_stream(af);
        cairo_surface_t *surf = fmt == 0 ? cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h)
                                         : cairo_svg_surface_create_for_stream(to_file, out, w, h);
        cairo_status_t cs = cairo_surface_status(surf);
        if (cs != CAIRO_STATUS_SUCCESS) {
            set_err(err, err_size, "cannot create %s: %s", file, cairo_status_to_string(cs));
            cairo_surface_destroy(surf);
            vmf_atomic_file_abort(af);
            rc = cs == CAIRO_STATUS_NO_MEMORY ? VMF_ENOMEM : VMF_EIO;
            break;
        }
        cairo_t *cr = cairo_create(surf);
        rc = draw_page(cr, panels, n, columns, page, w, h, single);
        cs = cairo_status(cr);
        cairo_destroy(cr);
        if (rc) {
            set_err(err, err_size, "plot %s: out of memory", file);
        } else if (cs != CAIRO_STATUS_SUCCESS) {
            set_err(err, err_size, "plot %s: %s", file, cairo_status_to_string(cs));
            rc = VMF_EIO;
        } else {
            if (fmt == 0) {
                cs = cairo_surface_write_to_png_stream(surf, to_file, out);
            } else {
                cairo_surface_finish(surf);
                cs = cairo_surface_status(surf);
            }
            if (cs != CAIRO_STATUS_SUCCESS) {
                set_err(err, err_size, "cannot write %s: %s", file, cairo_status_to_string(cs));
                rc = VMF_EIO;
            }
        }
        cairo_surface_destroy(surf);
        if (rc != VMF_OK) {
            vmf_atomic_file_abort(af);
        } else if (vmf_atomic_file_commit(af) != VMF_OK) {
            set_err(err, err_size, "cannot write %s", vmf_last_error());
            rc = VMF_EIO;
        }
    }
    free(file);
    return rc;
}

int simc_plot_line(const simc_plot_series *series, size_t n_series, const simc_plot_opts *o,
                   const char *path, char *err, size_t err_size)
{
    if (o == NULL) {
        set_err(err, err_size, "plot: no options");
        return VMF_EINVAL;
    }
    simc_plot_panel p = {
        .kind = SIMC_PLOT_KIND_LINE, .opts = *o, .series = series, .n_series = n_series};
    return render(&p, 1, 1, o, 1, path, err, err_size);
}

int simc_plot_bar(const simc_plot_bars *bars, const simc_plot_opts *o, const char *path, char *err,
                  size_t err_size)
{
    if (o == NULL) {
        set_err(err, err_size, "plot: no options");
        return VMF_EINVAL;
    }
    simc_plot_panel p = {.kind = SIMC_PLOT_KIND_BAR, .opts = *o, .bars = bars};
    return render(&p, 1, 1, o, 1, path, err, err_size);
}

int simc_plot_scatter(const simc_plot_points *points, const simc_plot_opts *o, const char *path,
                      char *err, size_t err_size)
{
    if (o == NULL) {
        set_err(err, err_size, "plot: no options");
        return VMF_EINVAL;
    }
    simc_plot_panel p = {.kind = SIMC_PLOT_KIND_SCATTER, .opts = *o, .points = points};
    return render(&p, 1, 1, o, 1, path, err, err_size);
}

int simc_plot_heatmap(const simc_plot_grid *grid, const simc_plot_opts *o, const char *path,
                      char *err, size_t err_size)
{
    if (o == NULL) {
        set_err(err, err_size, "plot: no options");
        return VMF_EINVAL;
    }
    simc_plot_panel p = {.kind = SIMC_PLOT_KIND_HEATMAP, .opts = *o, .grid = grid};
    return render(&p, 1, 1, o, 1, path, err, err_size);
}

int simc_plot_page(const simc_plot_panel *panels, size_t n_panels, size_t columns,
                   const simc_plot_opts *page, const char *path, char *err, size_t err_size)
{
    return render(panels, n_panels, columns, page, 0, path, err, err_size);
}

void simc_plot_release(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}
