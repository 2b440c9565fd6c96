/*
 * test_plot.c - sim/common/plot.h: every chart kind writes a PNG of the
 * requested size and an SVG; formats select the outputs; errors (missing
 * data, absurd sizes, an unwritable path) return their code with a message
 * naming the file; NaN and empty inputs draw without crashing; heatmap cells
 * carry the colour of their value; the palette gives distinct colours.
 */
#include "../../sim/common/plot.h"
#include "vmf_test.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int teardown(void **state)
{
    vmf_test_tmpdir_teardown(state);
    simc_plot_release();
    return 0;
}

static int exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 500;
}

/* Loads dir/name as an image surface and checks its size. */
static cairo_surface_t *load_png(const char *dir, const char *name, int w, int h)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    assert_int_equal(cairo_image_surface_get_width(s), w);
    assert_int_equal(cairo_image_surface_get_height(s), h);
    return s;
}

static void test_line_outputs(void **state)
{
    const char *dir = *state;
    double y[50], y2[50];
    for (int i = 0; i < 50; i++) {
        y[i] = 1 - exp(-i / 8.0);
        y2[i] = i == 20 ? NAN : 0.8 - 0.5 * exp(-i / 15.0); /* a gap at 20 */
    }
    simc_plot_series s[2] = {{.label = "fast", .y = y, .n = 50, .color = -1, .markers = 1},
                             {.label = "slow", .y = y2, .n = 50, .color = -1, .dashed = 1}};
    simc_plot_vline v = {.x = 12, .label = "peak", .color = 0, .dashed = 1};
    simc_plot_opts o;
    simc_plot_opts_init(&o);
    o.title = "Accuracy";
    o.xlabel = "day";
    o.ylabel = "top-1";
    o.vlines = &v;
    o.n_vlines = 1;
    o.width = 640;
    o.height = 400;
    char path[4200], err[256];
    snprintf(path, sizeof path, "%s/line", dir);
    vmf_assert_ok(simc_plot_line(s, 2, &o, path, err, sizeof err));
    assert_true(exists(dir, "line.png"));
    assert_true(exists(dir, "line.svg"));
    cairo_surface_destroy(load_png(dir, "line.png", 640, 400));

    /* PNG only. */
    o.formats = SIMC_PLOT_PNG;
    snprintf(path, sizeof path, "%s/pngonly", dir);
    vmf_assert_ok(simc_plot_line(s, 2, &o, path, err, sizeof err));
    assert_true(exists(dir, "pngonly.png"));
    assert_false(exists(dir, "pngonly.svg"));

    /* Log axis with non-positive values skipped, and an empty series. */
    double ly[4] = {0, 1, 10, 1000};
    simc_plot_series ls[2] = {{.label = "log", .y = ly, .n = 4, .color = 2},
                              {.label = "empty", .y = NULL, .n = 0, .color = 3}};
    o.log_y = 1;
    snprintf(path, sizeof path, "%s/log", dir);
    vmf_assert_ok(simc_plot_line(ls, 2, &o, path, err, sizeof err));
    assert_true(exists(dir, "log.png"));
}

static void test_errors(void **state)
{
    const char *dir = *state;
    double y[3] = {1, 2, 3};
    simc_plot_series s = {.label = "a", .y = y, .n = 3};
    simc_plot_opts o;
    simc_plot_opts_init(&o);
    char err[256] = "";
    assert_int_equal(simc_plot_line(&s, 1, &o, "/nonexistent-dir/x/plot", err, sizeof err),
                     VMF_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/x/plot"));
    simc_plot_series bad = {.label = "a", .y = NULL, .n = 3};
    char path[4200];
    snprintf(path, sizeof path, "%s/bad", dir);
    assert_int_equal(simc_plot_line(&bad, 1, &o, path, err, sizeof err), VMF_EINVAL);
    assert_false(exists(dir, "bad.png"));
    o.width = 100000;
    assert_int_equal(simc_plot_line(&s, 1, &o, path, err, sizeof err), VMF_EINVAL);
    assert_non_null(strstr(err, "too large"));
    assert_int_equal(simc_plot_page(NULL, 0, 1, &o, path, err, sizeof err), VMF_EINVAL);
    /* err may be NULL. */
    assert_int_equal(simc_plot_bar(NULL, &o, path, NULL, 0), VMF_EINVAL);
}

static int near(unsigned r, unsigned g, unsigned b, double er, double eg, double eb)
{
    return fabs(r - er * 255) <= 1.5 && fabs(g - eg * 255) <= 1.5 && fabs(b - eb * 255) <= 1.5;
}

/* A 2 x 2 heatmap without values: each cell's centre has its colour-map colour. */
static void test_heatmap_colours(void **state)
{
    const char *dir = *state;
    double v[4] = {-1, 1, 0, NAN};
    simc_plot_grid g = {.values = v, .rows = 2, .cols = 2, .vmin = -1, .vmax = 1, .diverging = 1};
    simc_plot_opts o;
    simc_plot_opts_init(&o);
    o.width = 500;
    o.height = 500;
    o.formats = SIMC_PLOT_PNG;
    char path[4200], err[256];
    snprintf(path, sizeof path, "%s/heat", dir);
    vmf_assert_ok(simc_plot_heatmap(&g, &o, path, err, sizeof err));
    cairo_surface_t *s = load_png(dir, "heat.png", 500, 500);
    const unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    unsigned r = 0, gr = 0, b = 0;
    size_t blue = 0, red = 0, white = 0, grey = 0;
    for (int y = 0; y < 500; y++)
        for (int x = 0; x < 500; x++) {
            const unsigned char *p = px + (size_t)y * (size_t)stride + (size_t)x * 4;
            b = p[0];
            gr = p[1];
            r = p[2]; /* ARGB32, little endian: B G R A */
            /* Colour-map ends (0.230, 0.299, 0.754) and (0.706, 0.016, 0.150), the white
               middle 0.970 and the NaN grey 0.8, within cairo's rounding. */
            if (near(r, gr, b, 0.230, 0.299, 0.754))
                blue++;
            else if (near(r, gr, b, 0.706, 0.016, 0.150))
                red++;
            else if (near(r, gr, b, 0.970, 0.970, 0.970))
                white++;
            else if (near(r, gr, b, 0.8, 0.8, 0.8))
                grey++;
        }
    cairo_surface_destroy(s);
    /* Each cell is at least 100 x 100 pixels of its exact colour (the colour bar adds some). */
    assert_true(blue > 10000);
    assert_true(red > 10000);
    assert_true(white > 10000);
    assert_true(grey > 10000); /* the NaN cell */
}

static void test_every_kind_on_a_page(void **state)
{
    const char *dir = *state;
    double y[6] = {3, 1, 4, 1, 5, 9}, y2[6] = {2, 7, 1, 8, 2, 8};
    const char *cats[6] = {"a", "bb", "a much longer category", "d", "e", "f"};
    simc_plot_series s[2] = {{.label = "one", .y = y, .n = 6, .color = -1},
                             {.label = "two", .y = y2, .n = 6, .color = -1, .fill = 1}};
    simc_plot_bars bars = {
        .categories = cats, .n_categories = 6, .groups = s, .n_groups = 2, .value_labels = 1};
    simc_plot_bars stacked = bars;
    stacked.stacked = 1;
    double px[100], py[100];
    int grp[100];
    for (int i = 0; i < 100; i++) {
        px[i] = cos(i * 0.7) * (1 + i % 3);
        py[i] = sin(i * 0.7) * (1 + i % 3);
        grp[i] = i % 3;
    }
    double hx[3] = {1, 2, 3}, hy[3] = {0, 0, NAN};
    const char *hl[3] = {"c0", "c1", "c2"};
    const char *gl[3] = {"g0", "g1", "g2"};
    simc_plot_points pts = {.x = px,
                            .y = py,
                            .n = 100,
                            .group = grp,
                            .group_labels = gl,
                            .n_groups = 3,
                            .hx = hx,
                            .hy = hy,
                            .n_highlight = 3,
                            .highlight_labels = hl};
    double gv[9] = {1, 0.5, 0, 0.5, 1, 0.2, 0, 0.2, 1};
    simc_plot_grid g = {.values = gv,
                        .rows = 3,
                        .cols = 3,
                        .vmin = NAN,
                        .vmax = NAN,
                        .show_values = 1,
                        .colorbar_label = "cos"};
    simc_plot_panel p[6];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 6; i++)
        simc_plot_opts_init(&p[i].opts);
    p[0].kind = SIMC_PLOT_KIND_LINE;
    p[0].series = s;
    p[0].n_series = 2;
    p[1].kind = SIMC_PLOT_KIND_BAR;
    p[1].bars = &bars;
    p[2].kind = SIMC_PLOT_KIND_BAR;
    p[2].bars = &stacked;
    p[2].opts.legend = SIMC_PLOT_LEGEND_OUTSIDE_RIGHT;
    p[3].kind = SIMC_PLOT_KIND_SCATTER;
    p[3].points = &pts;
    p[4].kind = SIMC_PLOT_KIND_HEATMAP;
    p[4].grid = &g;
    p[5].kind = SIMC_PLOT_KIND_TEXT;
    p[5].text = "line one\n\nline three, after an empty one";
    simc_plot_opts page;
    simc_plot_opts_init(&page);
    page.title = "Every kind";
    page.width = 1500;
    page.height = 900;
    char path[4200], err[256];
    snprintf(path, sizeof path, "%s/page", dir);
    vmf_assert_ok(simc_plot_page(p, 6, 3, &page, path, err, sizeof err));
    cairo_surface_destroy(load_png(dir, "page.png", 1500, 900));
    assert_true(exists(dir, "page.svg"));

    /* All-NaN data and zero categories still draw. */
    double nan6[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    simc_plot_series ns = {.y = nan6, .n = 6};
    simc_plot_bars nb = {.n_categories = 0, .groups = &ns, .n_groups = 1};
    simc_plot_opts o;
    simc_plot_opts_init(&o);
    snprintf(path, sizeof path, "%s/nan", dir);
    vmf_assert_ok(simc_plot_line(&ns, 1, &o, path, err, sizeof err));
    snprintf(path, sizeof path, "%s/nobars", dir);
    vmf_assert_ok(simc_plot_bar(&nb, &o, path, err, sizeof err));
    assert_true(exists(dir, "nobars.png"));
}

static void test_palette(void **state)
{
    (void)state;
    double c[60][3];
    for (int i = 0; i < 60; i++) {
        simc_plot_palette(i, c[i]);
        for (int j = 0; j < 3; j++)
            assert_true(c[i][j] >= 0 && c[i][j] <= 1);
    }
    for (int i = 0; i < 60; i++)
        for (int k = i + 1; k < 60; k++) {
            double d = fabs(c[i][0] - c[k][0]) + fabs(c[i][1] - c[k][1]) + fabs(c[i][2] - c[k][2]);
            if (d < 0.02)
                fail_msg("palette colours %d and %d are the same", i, k);
        }
    double grey[3];
    simc_plot_palette(-1, grey);
    assert_true(grey[0] == grey[1] && grey[1] == grey[2]);
    /* Entry 0 is Tableau blue (31, 119, 180). */
    vmf_assert_close(c[0][0], 31 / 255.0, 0, 1e-12);
    vmf_assert_close(c[0][2], 180 / 255.0, 0, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_outputs, vmf_test_tmpdir_setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, vmf_test_tmpdir_setup, teardown),
        cmocka_unit_test_setup_teardown(test_heatmap_colours, vmf_test_tmpdir_setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_kind_on_a_page, vmf_test_tmpdir_setup, teardown),
        cmocka_unit_test(test_palette),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
