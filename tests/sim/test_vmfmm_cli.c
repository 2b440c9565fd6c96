/*
 * test_vmfmm_cli.c - the vmfmm tool's command line (build/bin/vmfmm): --help
 * per subcommand on stdout with exit 0, and every refusal as exactly one
 * "vmfmm: ..." line on stderr with its sysexits code: unknown flags and bad
 * values (64), unreadable input (66), wrong shape, NaN and zero rows, K larger
 * than the rows, label count mismatch, bad models (65), options that do not
 * fit together (78); and the battery of malformed files in
 * tests/vectors/malformed/ (non-zero exit, one stderr line, no crash).
 */
#include "vmf_test.h"
#include "vmfmm_testrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A small valid input: 60 unit rows in d = 8 drawn from 3 components. */
static void small_input(const char *dir, char *path, size_t size)
{
    enum { N = 60, D = 8 };
    float x[N * D];
    vmf_test_mixture_data(7, N, D, 3, 40, 60, x, NULL, NULL, NULL, NULL);
    vmfmm_path(path, size, dir, "small.npy");
    vmfmm_write_f32(path, x, N, D);
}

static void test_help(void **state)
{
    const char *dir = *state;
    const char *cmds[] = {"fit", "select", "predict", "sample", "inspect"};
    for (size_t i = 0; i < 5; i++) {
        vmfmm_result r = vmfmm_run(dir, cmds[i], "--help", NULL);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "Usage: vmfmm"));
        assert_non_null(strstr(r.out, cmds[i]));
        assert_true(strstr(r.out, "Example") != NULL);
        assert_string_equal(r.err, "");
        vmfmm_result_free(&r);
    }
    vmfmm_result r = vmfmm_run(dir, "--help", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "Commands:"));
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "-h", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "--kappa-estimator"));
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "--version", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, vmf_version()));
    vmfmm_result_free(&r);
}

static void test_usage_errors(void **state)
{
    const char *dir = *state;
    char in[4096];
    small_input(dir, in, sizeof in);
    struct {
        const char *what;
        char *args[8];
    } cases[] = {
        {"no command", {NULL}},
        {"unknown command", {"frobnicate", NULL}},
        {"unknown flag", {"fit", "--input", in, "--bogus", NULL}},
        {"unknown short flag", {"fit", "-Z", NULL}},
        {"missing value", {"fit", "--input", NULL}},
        {"k not a number", {"fit", "--input", in, "-k", "ten", NULL}},
        {"k zero", {"fit", "--input", in, "-k", "0", NULL}},
        {"negative tol", {"fit", "--input", in, "--tol", "-1", NULL}},
        {"bad estimator", {"fit", "--input", in, "--kappa-estimator", "magic", NULL}},
        {"bad assignment", {"fit", "--input", in, "--assignment", "fuzzy", NULL}},
        {"bad init", {"fit", "--input", in, "--init", "pca", NULL}},
        {"test split 1", {"fit", "--input", in, "--test-split", "1", NULL}},
        {"flag with value", {"fit", "--hard=yes", NULL}},
        {"labels without input", {"fit", "--labels", in, NULL}},
        {"select bad range", {"select", "-k", "5..2", NULL}},
        {"select bad criterion", {"select", "--criterion", "mdl", NULL}},
        {"predict without model", {"predict", "--input", in, NULL}},
        {"sample without -n", {"sample", "--model", in, "--output", "x.npy", NULL}},
        {"sample bad output type", {"sample", "--model", in, "-n", "5", "--output", "x.txt", NULL}},
        {"inspect nothing", {"inspect", NULL}},
        {"extra argument", {"fit", "--input", in, "extra", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vmfmm_result r = vmfmm_runv(dir, cases[i].args);
        vmfmm_expect_error(&r, 64, cases[i].what);
        vmfmm_result_free(&r);
    }
    /* The message names the offending option and points at the help. */
    vmfmm_result r = vmfmm_run(dir, "fit", "--input", in, "--bogus", NULL);
    assert_non_null(strstr(r.err, "'--bogus'"));
    assert_non_null(strstr(r.err, "vmfmm fit --help"));
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "--max-iter", "many", NULL);
    assert_non_null(strstr(r.err, "--max-iter"));
    assert_non_null(strstr(r.err, "many"));
    vmfmm_result_free(&r);
}

static void test_unreadable_input(void **state)
{
    const char *dir = *state;
    char out[4096];
    vmfmm_path(out, sizeof out, dir, "out");
    vmfmm_result r = vmfmm_run(dir, "fit", "--input", "/nonexistent/x.npy", "-o", out, NULL);
    vmfmm_expect_error(&r, 66, "missing input");
    assert_non_null(strstr(r.err, "/nonexistent/x.npy"));
    vmfmm_result_free(&r);
    /* A directory is not a readable input either. */
    char sub[4096];
    vmfmm_path(sub, sizeof sub, dir, "adir.npy");
    assert_int_equal(mkdir(sub, 0755), 0);
    r = vmfmm_run(dir, "fit", "--input", sub, "-o", out, NULL);
    vmfmm_expect_error(&r, 66, "directory input");
    vmfmm_result_free(&r);
    char in[4096];
    small_input(dir, in, sizeof in);
    r = vmfmm_run(dir, "fit", "--input", in, "--labels", "/nonexistent/y.npy", "-o", out, NULL);
    vmfmm_expect_error(&r, 66, "missing labels");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "predict", "--model", "/nonexistent/model.json", "--input", in, NULL);
    vmfmm_expect_error(&r, 66, "missing model");
    vmfmm_result_free(&r);
    /* Nothing was written for the failed fits. */
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0);
}

static void test_bad_data(void **state)
{
    const char *dir = *state;
    char path[4096], out[4096];
    vmfmm_path(out, sizeof out, dir, "out");

    /* Wrong shape: a 1-D array. */
    float v[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    vmf_array a1 = {.dtype = VMF_DTYPE_F32, .ndim = 1, .shape = {10}, .count = 10, .data = v};
    vmfmm_path(path, sizeof path, dir, "flat.npy");
    vmf_assert_ok(vmf_npy_write(path, &a1));
    vmfmm_result r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "1-D input");
    vmfmm_result_free(&r);

    /* A file type the tool does not read. */
    vmfmm_path(path, sizeof path, dir, "rows.txt");
    vmf_test_write_text(path, "1,2\n3,4\n");
    r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "unknown file type");
    assert_non_null(strstr(r.err, "unknown file type"));
    vmfmm_result_free(&r);

    /* One column: no direction to speak of. */
    vmfmm_path(path, sizeof path, dir, "onecol.npy");
    vmfmm_write_f32(path, v, 10, 1);
    r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "one column");
    vmfmm_result_free(&r);

    /* NaN in row 3 and a zero row 5: each named in the message. */
    enum { N = 8, D = 4 };
    float x[N * D];
    vmf_test_mixture_data(3, N, D, 2, 10, 20, x, NULL, NULL, NULL, NULL);
    x[3 * D + 1] = NAN;
    vmfmm_path(path, sizeof path, dir, "nan.npy");
    vmfmm_write_f32(path, x, N, D);
    r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "NaN row");
    assert_non_null(strstr(r.err, "3"));
    vmfmm_result_free(&r);
    vmf_test_mixture_data(3, N, D, 2, 10, 20, x, NULL, NULL, NULL, NULL);
    memset(x + 5 * D, 0, D * sizeof *x);
    vmfmm_path(path, sizeof path, dir, "zero.npy");
    vmfmm_write_f32(path, x, N, D);
    r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "zero row");
    assert_non_null(strstr(r.err, "5"));
    vmfmm_result_free(&r);

    /* K larger than the training rows (8 rows, 20% held out leaves 6). */
    vmf_test_mixture_data(3, N, D, 2, 10, 20, x, NULL, NULL, NULL, NULL);
    vmfmm_path(path, sizeof path, dir, "eight.npy");
    vmfmm_write_f32(path, x, N, D);
    r = vmfmm_run(dir, "fit", "--input", path, "-k", "7", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "k > rows");
    assert_non_null(strstr(r.err, "k = 7"));
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "select", "--input", path, "-k", "1..9", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "select k > rows");
    vmfmm_result_free(&r);

    /* Labels whose count does not match the rows. */
    int32_t y[5] = {0, 1, 0, 1, 0};
    char ypath[4096];
    vmfmm_path(ypath, sizeof ypath, dir, "y5.npy");
    vmfmm_write_i32(ypath, y, 5);
    r = vmfmm_run(dir, "fit", "--input", path, "--labels", ypath, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "label count");
    vmfmm_result_free(&r);

    /* Float labels are not labels. */
    vmfmm_path(ypath, sizeof ypath, dir, "yfloat.npy");
    vmfmm_write_f32(ypath, x, N, 1);
    r = vmfmm_run(dir, "fit", "--input", path, "--labels", ypath, "-k", "2", "-o", out, NULL);
    vmfmm_expect_error(&r, 65, "float labels");
    vmfmm_result_free(&r);

    /* Models: not JSON, JSON of the wrong format, a mixture with a bad weight. */
    const char *bad_models[] = {
        "this is not json",
        "{\"format\":\"something-else\",\"version\":1}",
        "{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
        "\"n_components\":1,\"tied_kappa\":false,\"weights\":[-1],\"kappas\":[1],"
        "\"means\":[[1,0]]}",
        "{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"teapot\"}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
        char mpath[4096];
        vmfmm_path(mpath, sizeof mpath, dir, "bad_model.json");
        vmf_test_write_text(mpath, bad_models[i]);
        r = vmfmm_run(dir, "predict", "--model", mpath, "--input", path, NULL);
        vmfmm_expect_error(&r, 65, bad_models[i]);
        vmfmm_result_free(&r);
        r = vmfmm_run(dir, "inspect", mpath, NULL);
        vmfmm_expect_error(&r, 65, bad_models[i]);
        vmfmm_result_free(&r);
    }
}

static void test_config_errors(void **state)
{
    const char *dir = *state;
    char in[4096], out[4096];
    small_input(dir, in, sizeof in);
    vmfmm_path(out, sizeof out, dir, "out");
    vmfmm_result r = vmfmm_run(dir, "select", "--input", in, "-k", "1..3", "--criterion", "heldout",
                               "--test-split", "0", "-o", out, NULL);
    vmfmm_expect_error(&r, 78, "heldout without a test split");
    vmfmm_result_free(&r);
}

static void test_cannot_create_output(void **state)
{
    const char *dir = *state;
    char in[4096], blocker[4096], out[4096];
    small_input(dir, in, sizeof in);
    /* A regular file where a directory must go. */
    vmfmm_path(blocker, sizeof blocker, dir, "blocker");
    vmf_test_write_text(blocker, "");
    vmfmm_path(out, sizeof out, blocker, "out");
    vmfmm_result r = vmfmm_run(dir, "fit", "--input", in, "-k", "2", "--no-plots", "-o", out, NULL);
    vmfmm_expect_error(&r, 73, "output under a file");
    vmfmm_result_free(&r);
}

/*
 * Every case of tests/vectors/malformed/cases.tsv: refused with exactly one
 * line that carries the case's keyword, exit 65 (66 for an I/O status), never
 * a crash. Data files go through `fit --input`, model files through
 * `predict --model`.
 */
static void test_malformed_battery(void **state)
{
    const char *dir = *state;
    const char *mdir = VMF_TEST_VECTORS_DIR "/malformed";
    FILE *tsv = fopen(VMF_TEST_VECTORS_DIR "/malformed/cases.tsv", "r");
    if (tsv == NULL) {
        print_message("%s/cases.tsv does not exist yet: nothing to run\n", mdir);
        skip();
    }
    char in[4096], out[4096];
    small_input(dir, in, sizeof in);
    vmfmm_path(out, sizeof out, dir, "out");
    size_t tried = 0;
    char line[2048];
    while (fgets(line, sizeof line, tsv)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *file = strtok_r(line, "\t", &save);
        char *api = strtok_r(NULL, "\t", &save);
        char *status = strtok_r(NULL, "\t", &save);
        char *keyword = strtok_r(NULL, "\t", &save);
        assert_non_null(keyword);
        char path[4096];
        vmfmm_path(path, sizeof path, mdir, file);
        vmfmm_result r;
        if (strcmp(api, "model") == 0)
            r = vmfmm_run(dir, "predict", "--model", path, "--input", in, NULL);
        else
            r = vmfmm_run(dir, "fit", "--input", path, "-k", "2", "--no-plots", "--max-iter", "3",
                          "-o", out, NULL);
        tried++;
        int want = strcmp(status, "EIO") == 0 ? 66 : 65;
        if (r.code != want || vmfmm_count_lines(r.err) != 1 || strncmp(r.err, "vmfmm: ", 7) != 0)
            fail_msg("%s (%s): expected exit %d and one line, got exit %d, stderr:\n%s", file,
                     status, want, r.code, r.err);
        if (strstr(r.err, keyword) == NULL)
            fail_msg("%s: the message does not say '%s': %s", file, keyword, r.err);
        vmfmm_result_free(&r);
    }
    fclose(tsv);
    print_message("%zu malformed files refused\n", tried);
    assert_true(tried >= 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        vmf_test_with_tmpdir(test_help),
        vmf_test_with_tmpdir(test_usage_errors),
        vmf_test_with_tmpdir(test_unreadable_input),
        vmf_test_with_tmpdir(test_bad_data),
        vmf_test_with_tmpdir(test_config_errors),
        vmf_test_with_tmpdir(test_cannot_create_output),
        vmf_test_with_tmpdir(test_malformed_battery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
