/*
 * test_vmfsim_stream.c - vmfsim's synthetic stream matches its parameters
 * (class sizes, first-appearance days, kappa, balanced test set,
 * determinism), a saved stream loads back identically, and every kind of bad
 * stream file is refused before any work with the right status.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void small_opts(vmfsim_gen_opts *o)
{
    vmfsim_gen_opts_init(o);
    o->n_classes = 12;
    o->dim = 16;
    o->days = 60;
    o->rows_per_day = 50;
    o->min_class_rows = 20;
    o->late_fraction = 0.25;
    o->late_from = 20;
    o->late_to = 40;
    o->test_per_class = 7;
    o->seed = 9;
}

static void test_generator_matches_parameters(void **state)
{
    (void)state;
    vmfsim_gen_opts o;
    small_opts(&o);
    vmfsim_stream s;
    vmfsim_gen_truth t;
    char err[VMFSIM_ERR_SIZE];
    vmf_assert_ok(vmfsim_stream_generate(&o, &s, &t, err));
    assert_int_equal(s.n_classes, 12);
    assert_int_equal(s.d, 16);
    assert_int_equal(s.n_test, 12 * 7);

    /* Class sizes: exactly the Zipf plan (rank r gets round(N r^-s / H), floored). */
    size_t count[12] = {0}, total = 0;
    int16_t first_seen[12];
    for (int c = 0; c < 12; c++)
        first_seen[c] = 0;
    for (size_t day = 1; day <= VMFSIM_MAX_DAY; day++) {
        for (size_t i = s.day_off[day]; i < s.day_off[day + 1]; i++) {
            count[s.y[i]]++;
            if (!first_seen[s.y[i]])
                first_seen[s.y[i]] = (int16_t)day;
        }
        if (day > o.days)
            assert_int_equal(vmfsim_stream_day_rows(&s, day), 0);
    }
    double h = 0;
    for (int r = 1; r <= 12; r++)
        h += pow(r, -o.zipf);
    size_t sizes[12];
    for (int c = 0; c < 12; c++) {
        assert_int_equal(count[c], t.class_rows[c]);
        sizes[c] = count[c];
        total += count[c];
    }
    assert_int_equal(total, s.n_stream);
    /* The sorted sizes are the plan for ranks 1..12. */
    for (int a = 0; a < 12; a++)
        for (int b = a + 1; b < 12; b++)
            if (sizes[b] > sizes[a]) {
                size_t x = sizes[a];
                sizes[a] = sizes[b];
                sizes[b] = x;
            }
    for (int r = 1; r <= 12; r++) {
        size_t want = (size_t)llround(3000.0 * pow(r, -o.zipf) / h);
        if (want < o.min_class_rows)
            want = o.min_class_rows;
        assert_int_equal(sizes[r - 1], want);
    }
    /* First-appearance days: 3 late classes in [20, 40], the others on day 1. */
    int late = 0;
    for (int c = 0; c < 12; c++) {
        assert_int_equal(first_seen[c], t.first_day[c]);
        if (t.first_day[c] > 1) {
            late++;
            assert_true(t.first_day[c] >= 20 && t.first_day[c] <= 40);
        }
    }
    assert_int_equal(late, 3);
    /* Balanced test set. */
    size_t tc[12] = {0};
    for (size_t i = 0; i < s.n_test; i++)
        tc[s.test_y[i]]++;
    for (int c = 0; c < 12; c++)
        assert_int_equal(tc[c], 7);
    vmf_assert_ok(vmf_rows_check(s.x, s.n_stream, s.d));
    vmf_assert_ok(vmf_rows_check(s.test_x, s.n_test, s.d));
    vmfsim_gen_truth_free(&t);
    vmfsim_stream_free(&s);
}

/* Banerjee et al. (2005) approximation of kappa from the mean resultant length. */
static double banerjee(double rbar, double d)
{
    return rbar * (d - rbar * rbar) / (1.0 - rbar * rbar);
}

static void test_generator_kappa_and_modes(void **state)
{
    (void)state;
    vmfsim_gen_opts o;
    vmfsim_gen_opts_init(&o);
    o.n_classes = 4;
    o.dim = 32;
    o.days = 20;
    o.rows_per_day = 500;
    o.kappa = 60;
    o.max_modes = 2;
    o.late_fraction = 0;
    o.late_from = 1;
    o.late_to = 1;
    o.test_per_class = 5;
    o.seed = 3;
    vmfsim_stream s;
    vmfsim_gen_truth t;
    char err[VMFSIM_ERR_SIZE];
    vmf_assert_ok(vmfsim_stream_generate(&o, &s, &t, err));
    const size_t d = s.d, M = t.max_modes;
    int checked = 0;
    for (size_t c = 0; c < 4; c++) {
        for (size_t m = 0; m < t.n_modes[c]; m++) {
            double sum[32] = {0}, n = 0, dot = 0;
            for (size_t i = 0; i < s.n_stream; i++) {
                if ((size_t)s.y[i] != c || (size_t)t.stream_mode[i] != m)
                    continue;
                for (size_t j = 0; j < d; j++)
                    sum[j] += s.x[i * d + j];
                n++;
            }
            if (n < 500)
                continue;
            double r = 0;
            for (size_t j = 0; j < d; j++)
                r += sum[j] * sum[j];
            r = sqrt(r);
            for (size_t j = 0; j < d; j++)
                dot += sum[j] / r * t.mode_means[(c * M + m) * d + j];
            vmf_assert_close(banerjee(r / n, (double)d), 60.0, 0.08, 0);
            assert_true(dot > 0.995); /* the rows centre on the planned mode mean */
            checked++;
        }
    }
    assert_true(checked >= 3);
    vmfsim_gen_truth_free(&t);
    vmfsim_stream_free(&s);
}

static void test_generator_deterministic_and_checked(void **state)
{
    (void)state;
    vmfsim_gen_opts o;
    small_opts(&o);
    vmfsim_stream a, b;
    char err[VMFSIM_ERR_SIZE];
    vmf_assert_ok(vmfsim_stream_generate(&o, &a, NULL, err));
    vmf_assert_ok(vmfsim_stream_generate(&o, &b, NULL, err));
    assert_int_equal(a.n_stream, b.n_stream);
    assert_memory_equal(a.x, b.x, a.n_stream * a.d * sizeof(float));
    assert_memory_equal(a.test_x, b.test_x, a.n_test * a.d * sizeof(float));
    vmfsim_stream_free(&b);
    o.seed = 10;
    vmf_assert_ok(vmfsim_stream_generate(&o, &b, NULL, err));
    assert_true(a.n_stream != b.n_stream || memcmp(a.x, b.x, a.d * sizeof(float)) != 0);
    vmfsim_stream_free(&a);
    vmfsim_stream_free(&b);

    small_opts(&o);
    o.late_to = 70; /* beyond the 60 days */
    assert_int_equal(vmfsim_stream_generate(&o, &a, NULL, err), VMF_EINVAL);
    assert_non_null(strstr(err, "late"));
    small_opts(&o);
    o.kappa = -1;
    assert_int_equal(vmfsim_stream_generate(&o, &a, NULL, err), VMF_EINVAL);
    small_opts(&o);
    o.n_classes = 1;
    assert_int_equal(vmfsim_stream_generate(&o, &a, NULL, err), VMF_EINVAL);
}

static void test_save_load_roundtrip(void **state)
{
    (void)state;
    char dir[512], prefix[600];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(prefix, sizeof prefix, "%s/s", dir);
    vmfsim_gen_opts o;
    small_opts(&o);
    vmfsim_stream a, b;
    char err[VMFSIM_ERR_SIZE];
    vmf_assert_ok(vmfsim_stream_generate(&o, &a, NULL, err));
    vmf_assert_ok(vmfsim_stream_save(&a, prefix, err));
    int rc = vmfsim_stream_load(prefix, &b, err);
    if (rc)
        fail_msg("load: %s", err);
    assert_int_equal(a.n_stream, b.n_stream);
    assert_int_equal(a.n_test, b.n_test);
    assert_int_equal(a.n_classes, b.n_classes);
    assert_memory_equal(a.day_off, b.day_off, sizeof a.day_off);
    assert_memory_equal(a.x, b.x, a.n_stream * a.d * sizeof(float));
    assert_memory_equal(a.y, b.y, a.n_stream * sizeof(int32_t));
    assert_memory_equal(a.test_x, b.test_x, a.n_test * a.d * sizeof(float));
    assert_memory_equal(a.test_y, b.test_y, a.n_test * sizeof(int32_t));
    vmfsim_stream_free(&a);
    vmfsim_stream_free(&b);
    vmf_test_rmtree(dir);
}

/* ------------------------------------------------------------ bad streams */

typedef struct raw {
    size_t n, d;
    float *x;
    int32_t *y;
    uint8_t *split;
    int16_t *day;
} raw;

/* 6 rows of d = 3: four stream rows (classes 5 and 9, days 1 and 2), two test rows. */
static void raw_init(raw *r)
{
    r->n = 6;
    r->d = 3;
    r->x = calloc(18, sizeof(float));
    r->y = malloc(6 * sizeof(int32_t));
    r->split = malloc(6);
    r->day = malloc(6 * sizeof(int16_t));
    static const int32_t y[6] = {5, 9, 5, 9, 5, 9};
    static const uint8_t sp[6] = {0, 0, 0, 0, 1, 1};
    static const int16_t dy[6] = {1, 1, 2, 2, -1, -1};
    for (size_t i = 0; i < 6; i++) {
        r->x[i * 3 + (y[i] == 5 ? 0 : 1)] = 1.0f;
        r->y[i] = y[i];
        r->split[i] = sp[i];
        r->day[i] = dy[i];
    }
}

static void raw_free(raw *r)
{
    free(r->x), free(r->y), free(r->split), free(r->day);
}

static void write_arr(const char *prefix, const char *part, vmf_dtype t, size_t ndim, size_t n,
                      size_t d, void *data)
{
    char path[700];
    snprintf(path, sizeof path, "%s.%s.npy", prefix, part);
    vmf_array a = {
        .dtype = t, .ndim = ndim, .shape = {n, d}, .count = ndim == 2 ? n * d : n, .data = data};
    vmf_assert_ok(vmf_npy_write(path, &a));
}

static void raw_write(const raw *r, const char *prefix, size_t ny)
{
    write_arr(prefix, "X", VMF_DTYPE_F32, 2, r->n, r->d, r->x);
    write_arr(prefix, "y", VMF_DTYPE_I32, 1, ny, 0, r->y);
    write_arr(prefix, "split", VMF_DTYPE_U8, 1, r->n, 0, r->split);
    write_arr(prefix, "day", VMF_DTYPE_I16, 1, r->n, 0, r->day);
}

static int load_expect(const char *prefix, int want, const char *needle)
{
    vmfsim_stream s;
    char err[VMFSIM_ERR_SIZE] = "";
    int rc = vmfsim_stream_load(prefix, &s, err);
    if (rc != want)
        fail_msg("load %s: rc %d, want %d (%s)", prefix, rc, want, err);
    if (needle && !strstr(err, needle))
        fail_msg("message '%s' lacks '%s'", err, needle);
    if (rc == VMF_OK)
        vmfsim_stream_free(&s);
    return rc;
}

static void test_load_refuses_bad_streams(void **state)
{
    (void)state;
    char dir[512], prefix[600];
    vmf_test_tmpdir(dir, sizeof dir);
    snprintf(prefix, sizeof prefix, "%s/b", dir);
    raw r;
    raw_init(&r);

    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_OK, NULL);
    {
        vmfsim_stream s;
        char err[VMFSIM_ERR_SIZE];
        vmf_assert_ok(vmfsim_stream_load(prefix, &s, err));
        assert_int_equal(s.n_classes, 2);
        assert_int_equal(s.labels[0], 5);
        assert_int_equal(s.labels[1], 9);
        assert_int_equal(vmfsim_stream_day_rows(&s, 1), 2);
        assert_int_equal(vmfsim_stream_day_rows(&s, 2), 2);
        assert_int_equal(s.test_y[1], 1);
        vmfsim_stream_free(&s);
    }

    /* Missing file: unreadable input. */
    char path[700];
    snprintf(path, sizeof path, "%s.day.npy", prefix);
    remove(path);
    load_expect(prefix, VMF_EIO, "day.npy");
    char other[700];
    snprintf(other, sizeof other, "%s/nothing", dir);
    load_expect(other, VMF_EIO, "X.npy");

    /* Row counts differ. */
    raw_write(&r, prefix, 5);
    load_expect(prefix, VMF_EFORMAT, "row counts differ");

    /* A stream day outside 1..200. */
    r.day[1] = 201;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "days must be 1..200");
    r.day[1] = 0;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "days must be 1..200");
    r.day[1] = 1;

    /* A test row with a day. */
    r.day[4] = 3;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "day -1");
    r.day[4] = -1;

    /* Test set empty. */
    r.split[4] = r.split[5] = 0;
    r.day[4] = r.day[5] = 3;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "test set is empty");
    r.split[4] = r.split[5] = 1;
    r.day[4] = r.day[5] = -1;

    /* A test class never in the stream. */
    r.y[5] = 11;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "never appears in the stream");
    r.y[5] = 9;

    /* A split value other than 0/1. */
    r.split[0] = 2;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "split");
    r.split[0] = 0;

    /* Non-unit and non-finite rows. */
    r.x[0] = 2.0f;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, "L2-normalized");
    r.x[0] = NAN;
    raw_write(&r, prefix, r.n);
    load_expect(prefix, VMF_EFORMAT, NULL);
    r.x[0] = 1.0f;

    /* Wrong dtype / shape: labels as floats, X as 1-D. */
    raw_write(&r, prefix, r.n);
    write_arr(prefix, "y", VMF_DTYPE_F32, 1, r.n, 0, r.x);
    load_expect(prefix, VMF_EFORMAT, "integer");
    raw_write(&r, prefix, r.n);
    write_arr(prefix, "X", VMF_DTYPE_F32, 1, r.n, 0, r.x);
    load_expect(prefix, VMF_EFORMAT, "2-D");

    /* A corrupt file is bad data, not a crash. */
    raw_write(&r, prefix, r.n);
    snprintf(path, sizeof path, "%s.split.npy", prefix);
    vmf_test_write_text(path, "\x93NUMPY garbage");
    load_expect(prefix, VMF_EFORMAT, "split.npy");

    raw_free(&r);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_matches_parameters),
        cmocka_unit_test(test_generator_kappa_and_modes),
        cmocka_unit_test(test_generator_deterministic_and_checked),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_refuses_bad_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
