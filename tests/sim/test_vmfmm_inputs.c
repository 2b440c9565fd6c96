/*
 * test_vmfmm_inputs.c - the inputs CLIP pipelines produce and the fit's
 * output rules: float16 .npy, embeddings sharded over several files (and a
 * glob), CSV with an id column and a string label column, the output
 * directory rule with --force, and the warnings of fit and select.
 */
#include "vmf_test.h"
#include "vmfmm_testrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 900, D = 16, K = 3 };

static void expect_ok(const vmfmm_result *r, const char *what)
{
    if (r->code != 0)
        fail_msg("%s: exit %d, stderr:\n%s", what, r->code, r->err);
}

/* The test data: N rows of K well separated components, rounded to float16 values. */
static float *make_x(int32_t *comp)
{
    float *x = malloc(N * D * sizeof *x);
    assert_non_null(x);
    vmf_test_mixture_data(21, N, D, K, 40, 80, x, comp, NULL, NULL, NULL);
    return x;
}

/* float -> IEEE half bits, round to nearest even, for |v| <= 1 (tiny values flush to 0). */
static uint16_t to_half(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
    float a = fabsf(v);
    if (a < 0x1p-14f)
        return sign;
    int e;
    float m = frexpf(a, &e); /* a = m 2^e, m in [0.5, 1) */
    float q = nearbyintf(m * 2048.0f);
    if (q >= 2048.0f) {
        q = 1024.0f;
        e++;
    }
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | ((uint16_t)q - 1024));
}

static float from_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f;
    float v = e == 0 ? 0.0f : ldexpf((float)((h & 0x3ff) | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Writes x as '<f2' .npy and replaces x by the values the file holds. */
static void write_f16(const char *path, float *x, size_t n, size_t d)
{
    char header[128];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f2', 'fortran_order': False, 'shape': (%zu, %zu), }", n, d);
    size_t total = 10 + (size_t)hl + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint16_t hlen = (uint16_t)((size_t)hl + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(header, 1, (size_t)hl, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    for (size_t i = 0; i < n * d; i++) {
        uint16_t h = to_half(x[i]);
        fputc(h & 0xff, f);
        fputc(h >> 8, f);
        x[i] = from_half(h);
    }
    assert_int_equal(fclose(f), 0);
}

static char *model_of(const char *out)
{
    char path[4096];
    return vmf_test_read_file(vmfmm_path(path, sizeof path, out, "model.json"), NULL);
}

/* A float16 file fits exactly like the float32 file of the same values. */
static void test_float16(void **state)
{
    const char *dir = *state;
    float *x = make_x(NULL);
    char h[4096], f[4096], o1[4096], o2[4096];
    vmfmm_path(h, sizeof h, dir, "x16.npy");
    vmfmm_path(f, sizeof f, dir, "x32.npy");
    write_f16(h, x, N, D);
    vmfmm_write_f32(f, x, N, D);
    free(x);
    vmfmm_path(o1, sizeof o1, dir, "a");
    vmfmm_path(o2, sizeof o2, dir, "b");
    vmfmm_result r = vmfmm_run(dir, "fit", "-i", h, "-k", "3", "--no-plots", "-o", o1, NULL);
    expect_ok(&r, "fit float16");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-i", f, "-k", "3", "--no-plots", "-o", o2, NULL);
    expect_ok(&r, "fit float32");
    vmfmm_result_free(&r);
    char *m1 = model_of(o1), *m2 = model_of(o2);
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);
}

/* Three shards with three label files (repeated flags, then a glob) equal one file. */
static void test_sharded_inputs(void **state)
{
    const char *dir = *state;
    int32_t comp[N];
    float *x = make_x(comp);
    char all[4096], lab[4096], shard[3][4096], lshard[3][4096], name[64];
    vmfmm_path(all, sizeof all, dir, "all.npy");
    vmfmm_path(lab, sizeof lab, dir, "all_y.npy");
    vmfmm_write_f32(all, x, N, D);
    vmfmm_write_i32(lab, comp, N);
    const size_t cut[4] = {0, 250, 251, N}; /* uneven, one shard of a single row */
    for (int s = 0; s < 3; s++) {
        snprintf(name, sizeof name, "shard-%d.npy", s);
        vmfmm_path(shard[s], sizeof shard[s], dir, name);
        snprintf(name, sizeof name, "label-%d.npy", s);
        vmfmm_path(lshard[s], sizeof lshard[s], dir, name);
        vmfmm_write_f32(shard[s], x + cut[s] * D, cut[s + 1] - cut[s], D);
        vmfmm_write_i32(lshard[s], comp + cut[s], cut[s + 1] - cut[s]);
    }
    free(x);
    char o1[4096], o2[4096], o3[4096], path[4096];
    vmfmm_path(o1, sizeof o1, dir, "one");
    vmfmm_path(o2, sizeof o2, dir, "many");
    vmfmm_path(o3, sizeof o3, dir, "glob");
    vmfmm_result r =
        vmfmm_run(dir, "fit", "-i", all, "-l", lab, "-k", "3", "--no-plots", "-o", o1, NULL);
    expect_ok(&r, "fit one file");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-i", shard[0], "-i", shard[1], "-i", shard[2], "-l", lshard[0], "-l",
                  lshard[1], "-l", lshard[2], "-k", "3", "--no-plots", "-o", o2, NULL);
    expect_ok(&r, "fit shards");
    vmfmm_result_free(&r);
    char gx[4096], gy[4096];
    vmfmm_path(gx, sizeof gx, dir, "shard-*.npy");
    vmfmm_path(gy, sizeof gy, dir, "label-?.npy");
    r = vmfmm_run(dir, "fit", "-i", gx, "-l", gy, "-k", "3", "--no-plots", "-o", o3, NULL);
    expect_ok(&r, "fit glob");
    vmfmm_result_free(&r);
    char *m1 = model_of(o1), *m2 = model_of(o2), *m3 = model_of(o3);
    assert_string_equal(m1, m2);
    assert_string_equal(m1, m3);
    free(m1);
    free(m2);
    free(m3);
    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, o2, "metrics.json"));
    assert_int_equal(json_integer_value(json_object_get(m, "rows")), N);
    assert_int_equal(json_integer_value(json_object_get(m, "n_classes")), K);
    assert_true(json_real_value(json_object_get(m, "ari")) > 0.95);
    json_decref(m);

    /* Labels must pair with inputs; shards must agree on the dimension. */
    r = vmfmm_run(dir, "fit", "-i", shard[0], "-i", shard[1], "-l", lshard[0], "-k", "2",
                  "--no-plots", "-o", o2, "--force", NULL);
    vmfmm_expect_error(&r, 64, "labels count");
    assert_non_null(strstr(r.err, "one per input"));
    vmfmm_result_free(&r);
    char narrow[4096];
    vmfmm_path(narrow, sizeof narrow, dir, "narrow.npy");
    float small[2 * 3] = {1, 0, 0, 0, 1, 0};
    vmfmm_write_f32(narrow, small, 2, 3);
    r = vmfmm_run(dir, "fit", "-i", shard[0], "-i", narrow, "-k", "2", "--no-plots", "-o", o2,
                  "--force", NULL);
    vmfmm_expect_error(&r, 65, "dimension mismatch");
    assert_non_null(strstr(r.err, "has 3 columns"));
    vmfmm_result_free(&r);
}

/* CSV with an id column and string labels: ids stay out of the matrix, labels name classes. */
static void test_csv_columns(void **state)
{
    const char *dir = *state;
    int32_t comp[N];
    float *x = make_x(comp);
    static const char *const names[K] = {"setosa", "versicolor", "virginica"};
    char csv[4096], npy[4096], o1[4096], o2[4096], path[4096];
    vmfmm_path(csv, sizeof csv, dir, "x.csv");
    vmfmm_path(npy, sizeof npy, dir, "x.npy");
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fputs("f0", f);
    for (int j = 1; j < D; j++)
        fprintf(f, ",f%d", j);
    fputs(",species,image_id\n", f);
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            fprintf(f, "%s%.9g", j ? "," : "", (double)x[i * D + j]);
        fprintf(f, ",%s,img_%05zu.jpg\n", names[comp[i]], i);
    }
    assert_int_equal(fclose(f), 0);
    vmfmm_write_f32(npy, x, N, D);
    free(x);
    vmfmm_path(o1, sizeof o1, dir, "csv");
    vmfmm_path(o2, sizeof o2, dir, "npy");
    vmfmm_result r = vmfmm_run(dir, "fit", "-i", csv, "--id-column", "image_id", "--label-column",
                               "species", "-k", "3", "--no-plots", "-o", o1, NULL);
    expect_ok(&r, "fit csv columns");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-i", npy, "-k", "3", "--no-plots", "-o", o2, NULL);
    expect_ok(&r, "fit npy");
    vmfmm_result_free(&r);
    char *m1 = model_of(o1), *m2 = model_of(o2);
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);
    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, o1, "metrics.json"));
    assert_int_equal(json_integer_value(json_object_get(m, "dim")), D);
    assert_int_equal(json_integer_value(json_object_get(m, "n_classes")), K);
    json_decref(m);
    char *clf = vmf_test_read_file(vmfmm_path(path, sizeof path, o1, "classifier.json"), NULL);
    assert_non_null(strstr(clf, "\"versicolor\""));
    free(clf);
    /* By 1-based index too; an unknown column is bad data naming it. */
    char idx[8];
    snprintf(idx, sizeof idx, "%d", D + 2);
    r = vmfmm_run(dir, "fit", "-i", csv, "--id-column", idx, "--label-column", "species", "-k", "3",
                  "--no-plots", "-o", o1, "--force", NULL);
    expect_ok(&r, "fit csv index");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-i", csv, "--label-column", "genus", "-k", "3", "--no-plots", "-o",
                  o1, "--force", NULL);
    vmfmm_expect_error(&r, 65, "unknown column");
    assert_non_null(strstr(r.err, "no column 'genus'"));
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-i", npy, "--label-column", "species", "-k", "3", "--no-plots", "-o",
                  o1, "--force", NULL);
    vmfmm_expect_error(&r, 64, "columns of an npy");
    vmfmm_result_free(&r);
}

/* A second fit never mixes its files with the first's; --force replaces only its own. */
static void test_output_dir_rule(void **state)
{
    const char *dir = *state;
    int32_t comp[N];
    float *x = make_x(comp);
    char in[4096], lab[4096], out[4096], path[4096];
    vmfmm_path(in, sizeof in, dir, "x.npy");
    vmfmm_path(lab, sizeof lab, dir, "y.npy");
    vmfmm_write_f32(in, x, N, D);
    vmfmm_write_i32(lab, comp, N);
    free(x);
    vmfmm_path(out, sizeof out, dir, "out");
    vmfmm_result r = vmfmm_run(dir, "fit", "-i", in, "-l", lab, "-k", "3", "-o", out, NULL);
    expect_ok(&r, "first fit");
    vmfmm_result_free(&r);
    char *first = model_of(out);
    vmfmm_path(path, sizeof path, out, "notes.txt");
    vmf_test_write_text(path, "mine\n");
    r = vmfmm_run(dir, "fit", "-i", in, "-k", "2", "--no-plots", "-o", out, NULL);
    vmfmm_expect_error(&r, 73, "non-empty output dir");
    assert_non_null(strstr(r.err, "--force"));
    vmfmm_result_free(&r);
    char *still = model_of(out);
    assert_string_equal(first, still); /* refused before anything was written */
    free(still);
    r = vmfmm_run(dir, "fit", "-i", in, "-k", "2", "--no-plots", "-o", out, "--force", NULL);
    expect_ok(&r, "forced fit");
    vmfmm_result_free(&r);
    char *second = model_of(out);
    assert_true(strcmp(first, second) != 0);
    free(first);
    free(second);
    /* The first fit's classifier and plots are gone, the user's file stays. */
    assert_false(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "classifier.json"), 0));
    char plots[4096];
    vmfmm_path(plots, sizeof plots, out, "plots");
    assert_false(vmfmm_file_ok(vmfmm_path(path, sizeof path, plots, "overview.png"), 0));
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "notes.txt"), 5));
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "model.json"), 10));
}

static size_t warnings_of(const char *out, const char *needle)
{
    char path[4096];
    json_t *c = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "convergence.json"));
    json_t *w = json_object_get(c, "warnings");
    assert_true(json_is_array(w));
    size_t hits = 0;
    for (size_t i = 0; i < json_array_size(w); i++)
        hits += strstr(json_string_value(json_array_get(w, i)), needle) != NULL;
    size_t n = json_array_size(w);
    json_decref(c);
    return needle ? hits : n;
}

/* Warnings on stderr and in convergence.json; select warns at the edge of its range. */
static void test_warnings(void **state)
{
    const char *dir = *state;
    float *x = make_x(NULL);
    char in[4096], out[4096];
    vmfmm_path(in, sizeof in, dir, "x.npy");
    vmfmm_write_f32(in, x, N, D);
    free(x);
    /* A clean fit has none and prints nothing on stderr. */
    vmfmm_path(out, sizeof out, dir, "clean");
    vmfmm_result r = vmfmm_run(dir, "fit", "-i", in, "-k", "3", "--no-plots", "-o", out, NULL);
    expect_ok(&r, "clean fit");
    assert_string_equal(r.err, "");
    vmfmm_result_free(&r);
    assert_int_equal(warnings_of(out, NULL), 0);
    /* One iteration at a tight tolerance: not converged. */
    vmfmm_path(out, sizeof out, dir, "short");
    r = vmfmm_run(dir, "fit", "-i", in, "-k", "3", "--no-search", "--max-iter", "1", "--tol",
                  "1e-12", "--no-plots", "-o", out, NULL);
    expect_ok(&r, "short fit");
    assert_non_null(strstr(r.err, "warning: EM did not converge"));
    vmfmm_result_free(&r);
    assert_int_equal(warnings_of(out, "did not converge"), 1);
    /* K far above the three clusters: duplicate means (or starved components) are reported. */
    vmfmm_path(out, sizeof out, dir, "big");
    r = vmfmm_run(dir, "fit", "-i", in, "-k", "40", "--no-plots", "-o", out, NULL);
    expect_ok(&r, "fit K=40");
    assert_non_null(strstr(r.err, "warning:"));
    vmfmm_result_free(&r);
    assert_true(warnings_of(out, "cosine above") + warnings_of(out, "rows' mass") >= 1);
    /* select: three clusters, range 1..2 picks its upper edge and says so. */
    vmfmm_path(out, sizeof out, dir, "sel");
    r = vmfmm_run(dir, "select", "-i", in, "-k", "1..2", "--no-plots", "-o", out, "--json", NULL);
    expect_ok(&r, "select");
    assert_non_null(strstr(r.err, "warning: chosen K = 2 is the largest of the range 1..2"));
    json_t *j = vmfmm_result_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "chosen_k")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "warnings")), 1);
    json_decref(j);
    vmfmm_result_free(&r);
    /* ... and not when the choice is inside the range. */
    vmfmm_path(out, sizeof out, dir, "sel2");
    r = vmfmm_run(dir, "select", "-i", in, "-k", "1..6", "--no-plots", "-o", out, "--json", NULL);
    expect_ok(&r, "select inside");
    j = vmfmm_result_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "chosen_k")), 3);
    assert_int_equal(json_array_size(json_object_get(j, "warnings")), 0);
    assert_string_equal(r.err, "");
    json_decref(j);
    vmfmm_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        vmf_test_with_tmpdir(test_float16),     vmf_test_with_tmpdir(test_sharded_inputs),
        vmf_test_with_tmpdir(test_csv_columns), vmf_test_with_tmpdir(test_output_dir_rule),
        vmf_test_with_tmpdir(test_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
