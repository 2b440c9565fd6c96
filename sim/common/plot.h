/*
 * plot.h - small cairo chart library shared by vmfsim and vmfmm.
 *
 * Every chart is written twice, as PATH.png (raster, for a quick look) and
 * PATH.svg (vector, for reports), from the same drawing code: callers pass the
 * path without extension. Charts are meant to be read at a glance: a title,
 * labelled axes with "nice" ticks, a legend placed where it hides the fewest
 * points, and a colour-blind-safe palette (palette index i is the same colour
 * in every chart, so "component 3" or "xgboost" keeps its colour across
 * figures).
 *
 * Kinds of panel:
 *   line     several series of (x, y) points, optional markers, dashes, filled
 *            bands (fill between y_base and y, e.g. a stacked area), and
 *            vertical marker lines with labels (e.g. time-to-peak per model);
 *   bar      grouped or stacked bars over named categories, optional value
 *            labels above the bars;
 *   scatter  points coloured by group plus highlighted, labelled anchors drawn
 *            on top (e.g. projected samples and the component means);
 *   heatmap  a matrix of values with row/column labels, a colour bar and,
 *            optionally, the value printed in each cell;
 *   text     a block of text lines (a summary table on an overview page).
 * A page arranges several panels on a grid (simc_plot_page); the single-panel
 * functions are a page of one.
 *
 * Errors: every function returns VMF_OK or a negative VMF_E* code
 * (VMF_EINVAL for bad arguments, VMF_ENOMEM, VMF_EIO when a file cannot be
 * written) and, when err is not NULL, writes a one-line message into
 * err[err_size]. No global state; functions are reentrant (cairo is
 * thread-safe for separate surfaces). Input arrays are borrowed for the call.
 * NaN values are skipped (a gap in a line, no bar, a grey heatmap cell).
 */
#ifndef SIMC_PLOT_H
#define SIMC_PLOT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Output formats (bit mask for simc_plot_opts.formats). */
enum { SIMC_PLOT_PNG = 1u, SIMC_PLOT_SVG = 2u };

/* Legend placement. AUTO picks the inside corner that covers the fewest data points. */
typedef enum {
    SIMC_PLOT_LEGEND_AUTO = 0,
    SIMC_PLOT_LEGEND_NONE,
    SIMC_PLOT_LEGEND_TOP_LEFT,
    SIMC_PLOT_LEGEND_TOP_RIGHT,
    SIMC_PLOT_LEGEND_BOTTOM_LEFT,
    SIMC_PLOT_LEGEND_BOTTOM_RIGHT,
    SIMC_PLOT_LEGEND_OUTSIDE_RIGHT /* a column right of the plot area */
} simc_plot_legend;

/* Size of the fixed palette table; larger indices get generated hues. */
#define SIMC_PLOT_PALETTE_SIZE 20

/*
 * RGB in [0,1] of palette entry i: the 20 table colours (Tableau 10 and its
 * light companions), then hues spread by the golden angle for i >= 20.
 * Negative i gives grey.
 */
void simc_plot_palette(int i, double rgb[3]);

/* One line series (also one bar group, see simc_plot_bars). */
typedef struct simc_plot_series {
    const char *label;    /* legend entry; NULL or "" = not in the legend */
    const double *x;      /* [n] x values, or NULL for 0, 1, ..., n-1 */
    const double *y;      /* [n] y values; NaN leaves a gap */
    size_t n;             /* number of points */
    int color;            /* palette index; -1 = position of the series */
    int markers;          /* nonzero: a marker at every point */
    int dashed;           /* nonzero: dashed line */
    int no_line;          /* nonzero: markers only (implies markers) */
    double line_width;    /* in pixels at 900 px width; 0 = 2 */
    int fill;             /* nonzero: fill between y_base (or the x axis) and y */
    const double *y_base; /* [n] lower edge of the filled band, or NULL */
    double fill_alpha;    /* opacity of the fill; 0 = 0.25 */
} simc_plot_series;

/* A vertical reference line across the plot area, labelled at the top. */
typedef struct simc_plot_vline {
    double x;          /* position in data units */
    const char *label; /* short text drawn next to the line, or NULL */
    int color;         /* palette index; -1 = dark grey */
    int dashed;        /* nonzero: dashed */
} simc_plot_vline;

/* A horizontal reference line (e.g. a peak accuracy or a chosen threshold). */
typedef struct simc_plot_hline {
    double y;
    const char *label;
    int color;
    int dashed;
} simc_plot_hline;

/* Grouped or stacked bars: n_groups series of n_categories values each. */
typedef struct simc_plot_bars {
    const char *const *categories; /* [n_categories] tick labels, or NULL for 0..n-1 */
    size_t n_categories;
    const simc_plot_series *groups; /* [n_groups]; y[n_categories], label, color used */
    size_t n_groups;
    int stacked;                /* nonzero: stack groups instead of side by side */
    int value_labels;           /* nonzero: print each bar's value above it */
    const char *value_format;   /* printf format for a double; NULL = "%.3g" */
    const int *category_colors; /* [n_categories] palette index per category when
                                   n_groups == 1 (e.g. bars coloured by component), or NULL */
} simc_plot_bars;

/* Scatter: points coloured by group, with highlighted anchors drawn on top. */
typedef struct simc_plot_points {
    const double *x, *y; /* [n] */
    size_t n;
    const int *group;                /* [n] palette index per point, or NULL (colour 0) */
    const char *const *group_labels; /* [n_groups] legend for groups 0..n_groups-1, or NULL */
    size_t n_groups;
    double radius;         /* point radius in pixels; 0 = 2.5 */
    double alpha;          /* point opacity; 0 = 0.6 */
    const double *hx, *hy; /* [n_highlight] anchors (e.g. component means) */
    size_t n_highlight;
    const int *highlight_group;          /* [n_highlight] palette index, or NULL (0..) */
    const char *const *highlight_labels; /* [n_highlight] text next to each anchor, or NULL */
    const double *highlight_size;        /* [n_highlight] relative size in [0,1] (e.g. weight),
                                            or NULL for equal sizes */
} simc_plot_points;

/* Heatmap of values[rows][cols] (row-major). */
typedef struct simc_plot_grid {
    const double *values; /* [rows][cols]; NaN = grey cell */
    size_t rows, cols;
    const char *const *row_labels; /* [rows], or NULL for 0..rows-1 */
    const char *const *col_labels; /* [cols], or NULL for 0..cols-1 */
    double vmin, vmax;             /* colour scale; NaN = data range */
    int diverging;                 /* nonzero: blue-white-red centred on (vmin+vmax)/2 */
    int show_values;               /* nonzero: print the value in each cell (when it fits) */
    const char *value_format;      /* NULL = "%.2f" */
    const char *colorbar_label;    /* text beside the colour bar, or NULL */
} simc_plot_grid;

/* Options for a chart, or for one panel of a page. Fill with simc_plot_opts_init. */
typedef struct simc_plot_opts {
    const char *title;    /* bold, at the top; NULL = none */
    const char *subtitle; /* smaller, below the title (e.g. data set, seed) */
    const char *xlabel;
    const char *ylabel;
    int width, height; /* pixels of a single chart or a whole page; default 900 x 560 */
    double xmin, xmax; /* axis range; NaN (the default) = from the data, padded */
    double ymin, ymax;
    int x_integer; /* nonzero: integer x ticks only (iterations, days, K) */
    int log_y;     /* nonzero: logarithmic y axis (values <= 0 skipped) */
    int grid;      /* nonzero (default): light grid lines at the ticks */
    simc_plot_legend legend;
    const simc_plot_vline *vlines; /* [n_vlines] */
    size_t n_vlines;
    const simc_plot_hline *hlines; /* [n_hlines] */
    size_t n_hlines;
    unsigned formats; /* SIMC_PLOT_PNG | SIMC_PLOT_SVG (the default: both) */
} simc_plot_opts;

/* Defaults: no texts, 900 x 560, automatic ranges, grid on, legend AUTO, PNG and SVG. */
void simc_plot_opts_init(simc_plot_opts *o);

typedef enum {
    SIMC_PLOT_KIND_LINE = 0,
    SIMC_PLOT_KIND_BAR,
    SIMC_PLOT_KIND_SCATTER,
    SIMC_PLOT_KIND_HEATMAP,
    SIMC_PLOT_KIND_TEXT
} simc_plot_kind;

/* One panel of a page: the kind selects which data member is used. */
typedef struct simc_plot_panel {
    simc_plot_kind kind;
    simc_plot_opts opts;            /* title, labels, ranges, legend (size and formats ignored) */
    const simc_plot_series *series; /* LINE: [n_series] */
    size_t n_series;
    const simc_plot_bars *bars;     /* BAR */
    const simc_plot_points *points; /* SCATTER */
    const simc_plot_grid *grid;     /* HEATMAP */
    const char *text;               /* TEXT: lines separated by '\n', drawn in a monospace font */
} simc_plot_panel;

/* Line chart of n_series series; writes path.png and/or path.svg. */
int simc_plot_line(const simc_plot_series *series, size_t n_series, const simc_plot_opts *o,
                   const char *path, char *err, size_t err_size);

/* Grouped or stacked bar chart. */
int simc_plot_bar(const simc_plot_bars *bars, const simc_plot_opts *o, const char *path, char *err,
                  size_t err_size);

/* Scatter plot with coloured groups and labelled anchors. */
int simc_plot_scatter(const simc_plot_points *points, const simc_plot_opts *o, const char *path,
                      char *err, size_t err_size);

/* Heatmap with a colour bar and optional values in the cells. */
int simc_plot_heatmap(const simc_plot_grid *grid, const simc_plot_opts *o, const char *path,
                      char *err, size_t err_size);

/*
 * A page of n_panels panels on a grid of `columns` columns (rows as needed),
 * filled row by row. page->title / subtitle head the page; page->width and
 * height give the page size (default 900 x 560 is small for a page: use e.g.
 * 1600 x 1200); page->formats the outputs. Each panel uses its own opts.
 */
int simc_plot_page(const simc_plot_panel *panels, size_t n_panels, size_t columns,
                   const simc_plot_opts *page, const char *path, char *err, size_t err_size);

/*
 * Releases the font caches that cairo and fontconfig keep for the life of the
 * process, so that leak checkers (ASan's LeakSanitizer) see a clean exit.
 * Call once, at the end of main(), after the last plot; never while another
 * thread draws. Plotting again afterwards is allowed (the caches refill).
 */
void simc_plot_release(void);

#ifdef __cplusplus
}
#endif
#endif
