/*
 * test_cli_helpers.c - sim/common/cli.h: the option parser (long, short, attached
 * and separate values, "--", positional arguments, unknown options, missing
 * values), number parsing with ranges, the VMF_E* to sysexits mapping, one-line
 * error messages, mkdir -p, atomic writes and reads.
 */
#include "../../sim/common/cli.h"
#include "vmf_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { O_ALPHA = 1, O_K, O_FLAG };

static const simc_cli_opt OPTS[] = {{"alpha", 'a', SIMC_CLI_REQ_ARG, O_ALPHA},
                                    {"n-components", 'k', SIMC_CLI_REQ_ARG, O_K},
                                    {"flag", 0, SIMC_CLI_NO_ARG, O_FLAG},
                                    {NULL, 0, 0, 0}};

/* A quiet context whose errors go to a file we can read back. */
typedef struct ctx {
    simc_cli cli;
    char dir[4096];
    char errpath[4200];
    int saved_stderr;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    vmf_test_tmpdir(c->dir, sizeof c->dir);
    snprintf(c->errpath, sizeof c->errpath, "%s/stderr", c->dir);
    simc_cli_init(&c->cli, "prog");
    c->cli.progress = 0;
    fflush(stderr);
    c->saved_stderr = dup(2);
    FILE *f = freopen(c->errpath, "w", stderr);
    assert_non_null(f);
    *state = c;
    return 0;
}

/* What was printed on stderr since setup (and truncates it). */
static char *take_stderr(ctx *c)
{
    fflush(stderr);
    FILE *f = fopen(c->errpath, "r");
    assert_non_null(f);
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(freopen(c->errpath, "w", stderr));
    return buf;
}

static int teardown(void **state)
{
    ctx *c = *state;
    /* Whatever the test did not consume (a cmocka failure message) goes to the real stderr. */
    char *rest = take_stderr(c);
    dup2(c->saved_stderr, 2);
    close(c->saved_stderr);
    fputs(rest, stderr);
    free(rest);
    vmf_test_rmtree(c->dir);
    free(c);
    return 0;
}

static void test_parser(void **state)
{
    ctx *c = *state;
    char *argv[] = {"prog", "fit",  "--alpha", "1",  "--alpha=2",       "-a3", "-k",
                    "4",    "pos1", "--flag",  "--", "--not-an-option", "-",   NULL};
    int argc = 13;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "fit");
    const char *arg;
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), O_ALPHA);
    assert_string_equal(arg, "1");
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), O_ALPHA);
    assert_string_equal(arg, "2");
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), O_ALPHA);
    assert_string_equal(arg, "3");
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), O_K);
    assert_string_equal(arg, "4");
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), O_FLAG);
    assert_null(arg);
    assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), 0);
    assert_int_equal(p.n_positional, 3);
    assert_string_equal(p.positional[0], "pos1");
    assert_string_equal(p.positional[1], "--not-an-option");
    assert_string_equal(p.positional[2], "-");
    char *e = take_stderr(c);
    assert_string_equal(e, "");
    free(e);
}

static void test_parser_errors(void **state)
{
    ctx *c = *state;
    struct {
        char *argv[4];
        const char *expect;
    } cases[] = {
        {{"prog", "x", "--bogus", NULL}, "prog: unknown option '--bogus' (see 'prog x --help')\n"},
        {{"prog", "x", "-z", NULL}, "prog: unknown option '-z' (see 'prog x --help')\n"},
        {{"prog", "x", "--alpha", NULL},
         "prog: option '--alpha' needs a value (see 'prog x --help')\n"},
        {{"prog", "x", "--flag=1", NULL},
         "prog: option '--flag' takes no value (see 'prog x --help')\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        simc_cli_parser p;
        simc_cli_parser_init(&p, 3, cases[i].argv, 2, "x");
        const char *arg;
        assert_int_equal(simc_cli_next(&c->cli, &p, OPTS, &arg), -1);
        char *e = take_stderr(c);
        assert_string_equal(e, cases[i].expect);
        free(e);
    }
}

static void test_numbers(void **state)
{
    ctx *c = *state;
    size_t z = 0;
    double d = 0;
    uint64_t u = 0;
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "12", 1, 100, &z), 0);
    assert_int_equal(z, 12);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "0", 1, 100, &z), EX_USAGE);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "-3", 1, 100, &z), EX_USAGE);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "12x", 1, 100, &z), EX_USAGE);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "", 1, 100, &z), EX_USAGE);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "99999999999999999999999", 1, 100, &z),
                     EX_USAGE);
    assert_int_equal(z, 12); /* unchanged on error */
    assert_int_equal(simc_cli_parse_double(&c->cli, "--tol", "1e-6", 0, 1, &d), 0);
    vmf_assert_close(d, 1e-6, 0, 0);
    assert_int_equal(simc_cli_parse_double(&c->cli, "--tol", "nan", 0, 1, &d), EX_USAGE);
    assert_int_equal(simc_cli_parse_double(&c->cli, "--tol", "inf", 0, 1, &d), EX_USAGE);
    assert_int_equal(simc_cli_parse_double(&c->cli, "--tol", "2", 0, 1, &d), EX_USAGE);
    assert_int_equal(simc_cli_parse_double(&c->cli, "--tol", "1e999", 0, 1, &d), EX_USAGE);
    assert_int_equal(simc_cli_parse_u64(&c->cli, "--seed", "18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(simc_cli_parse_u64(&c->cli, "--seed", "-1", &u), EX_USAGE);
    char *e = take_stderr(c);
    /* One line per refusal: 10 of them. */
    size_t lines = 0;
    for (const char *q = e; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 10);
    assert_non_null(strstr(e, "prog: -k must be in [1, 100], got 0\n"));
    assert_non_null(strstr(e, "prog: --tol expects a number, got 'nan'\n"));
    free(e);
}

/* strtoull skips leading blanks and accepts a sign, so " -1" once parsed as
 * UINT64_MAX: any text that does not start with a digit is refused. */
static void test_numbers_refuse_blanks_and_signs(void **state)
{
    ctx *c = *state;
    static const char *const bad[] = {" -1", "\t-1", " 1", "\n7", "+5", " +5", "-0", "x1"};
    size_t n_bad = sizeof bad / sizeof bad[0];
    uint64_t u = 42;
    size_t z = 42;
    for (size_t i = 0; i < n_bad; i++) {
        assert_int_equal(simc_cli_parse_u64(&c->cli, "--seed", bad[i], &u), EX_USAGE);
        assert_int_equal(simc_cli_parse_size(&c->cli, "-k", bad[i], 0, SIZE_MAX, &z), EX_USAGE);
    }
    assert_true(u == 42);
    assert_int_equal(z, 42);
    char *e = take_stderr(c);
    assert_non_null(strstr(e, "prog: --seed expects an unsigned 64-bit integer, got ' -1'\n"));
    free(e);
    /* Digits first still parse, C prefixes included for u64. */
    assert_int_equal(simc_cli_parse_u64(&c->cli, "--seed", "0x10", &u), 0);
    assert_true(u == 16);
    assert_int_equal(simc_cli_parse_u64(&c->cli, "--seed", "0", &u), 0);
    assert_true(u == 0);
    assert_int_equal(simc_cli_parse_size(&c->cli, "-k", "007", 0, SIZE_MAX, &z), 0);
    assert_int_equal(z, 7);
}

static void test_exit_codes_and_messages(void **state)
{
    ctx *c = *state;
    assert_int_equal(simc_cli_exit_code(VMF_OK), 0);
    assert_int_equal(simc_cli_exit_code(VMF_EINVAL), 65);
    assert_int_equal(simc_cli_exit_code(VMF_EFORMAT), 65);
    assert_int_equal(simc_cli_exit_code(VMF_ERANGE), 65);
    assert_int_equal(simc_cli_exit_code(VMF_ENOTFOUND), 66);
    assert_int_equal(simc_cli_exit_code(VMF_EIO), 74);
    assert_int_equal(simc_cli_exit_code(VMF_ENOMEM), 71);
    assert_int_equal(simc_cli_exit_code(-99), 70);
    /* Control characters inside a message cannot split it into several lines. */
    assert_int_equal(simc_cli_fail(&c->cli, 65, "bad\nrow\r%d\n", 3), 65);
    char *e = take_stderr(c);
    assert_string_equal(e, "prog: bad row 3\n");
    free(e);
    simc_cli_warn(&c->cli, "careful");
    e = take_stderr(c);
    assert_string_equal(e, "prog: warning: careful\n");
    free(e);
    /* Progress is silent when disabled (stderr is not a terminal here). */
    simc_cli_progress(&c->cli, "working %d", 1);
    simc_cli_progress_done(&c->cli);
    e = take_stderr(c);
    assert_string_equal(e, "");
    free(e);
}

static void test_files(void **state)
{
    ctx *c = *state;
    char path[4400], file[4400];
    snprintf(path, sizeof path, "%s/a/b/c", c->dir);
    assert_int_equal(simc_cli_mkdirs(path), 0);
    assert_int_equal(simc_cli_mkdirs(path), 0); /* already there */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(file, sizeof file, "%s/a/b/c/x.json", c->dir);
    assert_int_equal(simc_cli_write_file(file, "{\"a\":1}", 7), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(simc_cli_read_file(file, 1000, &data, &len), 0);
    assert_int_equal(len, 7);
    assert_string_equal(data, "{\"a\":1}");
    free(data);
    /* Larger than allowed: EFBIG, nothing returned. */
    assert_int_equal(simc_cli_read_file(file, 3, &data, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_null(data);
    /* A file where a directory should be. */
    snprintf(path, sizeof path, "%s/a/b/c/x.json/sub", c->dir);
    assert_int_equal(simc_cli_mkdirs(path), -1);
    /* Writing into a missing directory fails and leaves no temporary file behind. */
    snprintf(file, sizeof file, "%s/missing/x", c->dir);
    assert_int_equal(simc_cli_write_file(file, "x", 1), -1);
    char buf[64];
    assert_null(simc_cli_join(buf, 8, "long-directory", "name"));
    assert_string_equal(simc_cli_join(buf, sizeof buf, "d", "n"), "d/n");
    assert_string_equal(simc_cli_extension("dir.v2/File.NPZ", buf, sizeof buf), "npz");
    assert_string_equal(simc_cli_extension("dir.v2/noext", buf, sizeof buf), "");
    assert_string_equal(simc_cli_extension(".hidden", buf, sizeof buf), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parser, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parser_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_refuse_blanks_and_signs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_codes_and_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
