/*
 * test_vmfsim_cli.c - the vmfsim tool end to end (build/bin/vmfsim):
 * --help and usage errors, unreadable (66) and bad (65) streams refused
 * before any work, gen + run on files, reproducibility (identical daily.csv
 * for the same seed with --no-timings; with timings, identical but for the
 * timing columns), the golden metrics of a short seeded run
 * (tests/sim/golden/vmfsim_small.json; VMF_UPDATE_GOLDEN=1 rewrites it),
 * and --via against a real vmfd when build/bin/vmfd exists.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VMFSIM VMF_BIN_DIR "/vmfsim"
#define VMFD   VMF_BIN_DIR "/vmfd"

/* The small synthetic stream of these tests (20 days, 6 classes, d = 16). */
#define SMALL_GEN                                                                                  \
    "--classes", "6", "--dim", "16", "--gen-days", "20", "--rows-per-day", "30", "--late-from",    \
        "5", "--late-to", "12", "--test-per-class", "15", "--min-class-rows", "10", "--kappa",     \
        "14"

/* Starts argv with stdout/stderr to files (NULL: /dev/null); returns the pid. */
static pid_t spawn(char *const argv[], const char *out, const char *errf)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errf ? errf : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Runs argv to completion; returns its exit code (or 128 + signal). */
static int run(char *const argv[], const char *out, const char *errf)
{
    pid_t pid = spawn(argv, out, errf);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define RUN(out, err, ...) run((char *const[]){(char *)VMFSIM, __VA_ARGS__, NULL}, out, err)

/* The whole file as a string (fails the test when it cannot be read). */
static char *slurp(const char *path)
{
    return vmf_test_read_file(path, NULL);
}

/* A fresh temporary directory and the paths in it that take a run's stdout and stderr. */
static void scratch(char dir[static 512], char out[static 600], char err[static 600])
{
    vmf_test_tmpdir(dir, 512);
    snprintf(out, 600, "%s/out.txt", dir);
    snprintf(err, 600, "%s/err.txt", dir);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_help_and_usage_errors(void **state)
{
    (void)state;
    if (access(VMFSIM, X_OK) != 0)
        fail_msg("%s is not built (cmake --build ... --target vmfsim)", VMFSIM);
    char dir[512], out[600], err[600];
    scratch(dir, out, err);
    assert_int_equal(RUN(out, err, "--help"), 0);
    char *txt = slurp(out);
    assert_non_null(strstr(txt, "usage: vmfsim run"));
    assert_non_null(strstr(txt, "--via URL"));
    free(txt);
    assert_int_equal(RUN(out, err, "run", "--help"), 0);
    assert_int_equal(run((char *const[]){(char *)VMFSIM, NULL}, out, err), 64);
    assert_int_equal(RUN(out, err, "fly"), 64);
    assert_int_equal(RUN(out, err, "run", "--frobnicate"), 64);
    txt = slurp(err);
    assert_non_null(strstr(txt, "--frobnicate"));
    free(txt);
    assert_int_equal(RUN(out, err, "run", "--models", "vmfmm,lda"), 64);
    assert_int_equal(RUN(out, err, "run", "--days", "0"), 64);
    assert_int_equal(RUN(out, err, "run", "--days", "201"), 64);
    assert_int_equal(RUN(out, err, "run", "--seed", "x"), 64);
    assert_int_equal(RUN(out, err, "run", "--refit-every", "0"), 64);
    assert_int_equal(RUN(out, err, "run", "--kappa", "-3", "--output-dir", dir), 64);
    assert_int_equal(RUN(out, err, "gen"), 64); /* no --output */
    assert_int_equal(RUN(out, err, "run", "--via", "ftp://127.0.0.1:1"), 64);
    /* An unreachable vmfd: 69, before any output is written. */
    char odir[600];
    snprintf(odir, sizeof odir, "%s/o", dir);
    assert_int_equal(RUN(out, err, "run", "--models", "vmfmm", "--days", "2", "--via",
                         "http://127.0.0.1:1", "--output-dir", odir),
                     69);
    assert_false(exists(odir));
    assert_int_equal(RUN(out, err, "ablate", "--components", "1,x"), 64);
    vmf_test_rmtree(dir);
}

static void test_bad_streams_are_refused_before_work(void **state)
{
    (void)state;
    char dir[512], out[600], err[600], prefix[600], odir[600], path[700];
    scratch(dir, out, err);
    snprintf(prefix, sizeof prefix, "%s/s", dir);
    snprintf(odir, sizeof odir, "%s/o", dir);
    /* Missing files: 66, and no output written. */
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--output-dir", odir), 66);
    char *txt = slurp(err);
    assert_non_null(strstr(txt, "s.X.npy"));
    free(txt);
    assert_false(exists(odir));
    /* A valid stream, then one part made inconsistent: 65, no output. */
    assert_int_equal(RUN(out, err, "gen", "--output", prefix, SMALL_GEN), 0);
    vmf_array day = {0};
    snprintf(path, sizeof path, "%s.day.npy", prefix);
    vmf_assert_ok(vmf_npy_read(path, &day));
    ((int16_t *)day.data)[3] = 250;
    vmf_assert_ok(vmf_npy_write(path, &day));
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--output-dir", odir), 65);
    txt = slurp(err);
    assert_non_null(strstr(txt, "days must be 1..200"));
    free(txt);
    assert_false(exists(odir));
    /* Row counts that differ. */
    day.shape[0] = day.count = day.count - 1;
    vmf_assert_ok(vmf_npy_write(path, &day));
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--output-dir", odir), 65);
    txt = slurp(err);
    assert_non_null(strstr(txt, "row counts differ"));
    free(txt);
    vmf_array_free(&day);
    assert_false(exists(odir));
    vmf_test_rmtree(dir);
}

/* daily.csv without its two timing columns. */
static char *strip_timings(const char *csv)
{
    char *o = malloc(strlen(csv) + 1), *w = o;
    const char *p = csv;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int commas = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] == ',' && ++commas == 5)
                break;
            *w++ = p[i];
        }
        *w++ = '\n';
        p += len + (nl ? 1 : 0);
    }
    *w = '\0';
    return o;
}

static void test_gen_run_and_reproducibility(void **state)
{
    (void)state;
    char dir[512], out[600], err[600], prefix[600], a[600], b[600], c[600], path[700];
    scratch(dir, out, err);
    snprintf(prefix, sizeof prefix, "%s/s", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    assert_int_equal(RUN(out, err, "gen", "--output", prefix, "--seed", "5", SMALL_GEN), 0);
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--days", "20", "--seed", "5",
                         "--refit-every", "5", "--no-timings", "--output-dir", a),
                     0);
    char *table = slurp(out);
    for (int f = 0; f < VMFSIM_MAX_MODEL; f++)
        assert_non_null(strstr(table, vmfsim_family_name(f)));
    free(table);
    snprintf(path, sizeof path, "%s/plots/accuracy.png", a);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/plots/rows.svg", a);
    assert_true(exists(path));
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--days", "20", "--seed", "5",
                         "--refit-every", "5", "--no-timings", "--no-plots", "--output-dir", b),
                     0);
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--days", "20", "--seed", "5",
                         "--refit-every", "5", "--no-plots", "--output-dir", c),
                     0);
    snprintf(path, sizeof path, "%s/daily.csv", a);
    char *da = slurp(path);
    snprintf(path, sizeof path, "%s/daily.csv", b);
    char *db = slurp(path);
    snprintf(path, sizeof path, "%s/daily.csv", c);
    char *dc = slurp(path);
    assert_non_null(da);
    assert_string_equal(da, db); /* same seed: byte-identical with --no-timings */
    /* The built-in stream with the same flags is the stream gen wrote: same results. */
    char d[600];
    snprintf(d, sizeof d, "%s/d", dir);
    assert_int_equal(RUN(out, err, "run", "--days", "20", "--seed", "5", "--refit-every", "5",
                         "--no-timings", "--no-plots", "--output-dir", d, SMALL_GEN),
                     0);
    snprintf(path, sizeof path, "%s/daily.csv", d);
    char *dd = slurp(path);
    assert_non_null(dd);
    assert_string_equal(da, dd);
    free(dd);
    char *sa = strip_timings(da), *sc = strip_timings(dc);
    assert_string_equal(sa, sc); /* with timings: identical but for the timing columns */
    assert_true(strcmp(da, dc) != 0 || strstr(dc, ",0.000000,0.000000") != NULL);
    /* 1 header + 20 days x 7 models. */
    size_t lines = 0;
    for (const char *p = da; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1 + 20 * 7);
    free(sa), free(sc), free(da), free(db), free(dc);
    /* summary.json has the contract's keys for every model. */
    snprintf(path, sizeof path, "%s/summary.json", a);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_t *models = json_object_get(j, "models");
    assert_int_equal(json_object_size(models), 7);
    const char *k;
    json_t *m;
    json_object_foreach(models, k, m)
    {
        assert_true(json_is_number(json_object_get(json_object_get(m, "final"), "top1")));
        assert_true(json_is_number(json_object_get(json_object_get(m, "final"), "top4")));
        assert_true(json_is_number(json_object_get(json_object_get(m, "peak"), "top1")));
        assert_true(json_is_integer(json_object_get(json_object_get(m, "peak"), "day")));
        for (int e = 0; e < 3; e++) {
            static const char *const ek[3] = {"0.01", "0.02", "0.05"};
            json_t *v = json_object_get(json_object_get(m, "time_to_peak"), ek[e]);
            assert_true(json_is_integer(v));
            assert_true(json_integer_value(v) >= 1 && json_integer_value(v) <= 20);
        }
    }
    json_decref(j);
    vmf_test_rmtree(dir);
}

static void test_ablate(void **state)
{
    (void)state;
    char dir[512], out[600], err[600], odir[600], path[700];
    scratch(dir, out, err);
    snprintf(odir, sizeof odir, "%s/o", dir);
    assert_int_equal(RUN(out, err, "ablate", "--components", "1,3", "--days", "20", "--output-dir",
                         odir, SMALL_GEN),
                     0);
    char *table = slurp(out);
    assert_non_null(strstr(table, "K_max"));
    free(table);
    snprintf(path, sizeof path, "%s/ablate.csv", odir);
    char *csv = slurp(path);
    assert_non_null(csv);
    assert_true(strncmp(csv, "components,final_top1,final_top4,peak_top1,peak_day,", 52) == 0);
    const char *l1 = strchr(csv, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
    assert_true(strncmp(l1, "1,", 2) == 0);
    assert_true(strncmp(l2, "3,", 2) == 0);
    double f1, f4, p1;
    assert_int_equal(sscanf(l2, "3,%lf,%lf,%lf", &f1, &f4, &p1), 3);
    assert_true(f1 > 0.3 && f1 <= p1 && f4 >= f1 && f4 <= 1.0);
    free(csv);
    snprintf(path, sizeof path, "%s/plots/ablate.png", odir);
    assert_true(exists(path));
    assert_int_equal(RUN(out, err, "ablate", "--via", "http://127.0.0.1:1"), 64);
    vmf_test_rmtree(dir);
}

/* ----------------------------------------------------------------- golden */

static void test_golden_metrics(void **state)
{
    (void)state;
    char dir[512], out[600], err[600], odir[600], path[700], golden[1024];
    scratch(dir, out, err);
    snprintf(odir, sizeof odir, "%s/o", dir);
    snprintf(golden, sizeof golden, "%s/tests/sim/golden/vmfsim_small.json", VMF_SOURCE_DIR);
    int rc = RUN(out, err, "run", "--days", "20", "--seed", "7", "--refit-every", "5", "--no-plots",
                 "--no-timings", "--output-dir", odir, SMALL_GEN);
    if (rc) {
        char *e = slurp(err);
        fail_msg("vmfsim exited %d: %s", rc, e);
    }
    snprintf(path, sizeof path, "%s/summary.json", odir);
    json_t *got = json_load_file(path, 0, NULL);
    assert_non_null(got);
    const char *upd = getenv("VMF_UPDATE_GOLDEN");
    if (upd && *upd == '1') {
        json_t *g = json_pack("{s:s, s:O}", "command",
                              "vmfsim run --days 20 --seed 7 --refit-every 5 --classes 6 --dim "
                              "16 --gen-days 20 --rows-per-day 30 --late-from 5 --late-to 12 "
                              "--test-per-class 15 --min-class-rows 10 --kappa 14",
                              "models", json_object_get(got, "models"));
        assert_int_equal(json_dump_file(g, golden, JSON_INDENT(2) | JSON_REAL_PRECISION(10)), 0);
        json_decref(g);
        print_message("rewrote %s\n", golden);
    }
    json_error_t je;
    json_t *want = json_load_file(golden, 0, &je);
    if (!want)
        fail_msg("golden %s: %s (VMF_UPDATE_GOLDEN=1 writes it)", golden, je.text);
    json_t *wm = json_object_get(want, "models"), *gm = json_object_get(got, "models");
    assert_int_equal(json_object_size(wm), 7);
    const char *name;
    json_t *w;
    json_object_foreach(wm, name, w)
    {
        json_t *g = json_object_get(gm, name);
        if (!g)
            fail_msg("model %s missing", name);
        /* Recall within 0.02 (a handful of the 90 test rows), days within 2. */
        static const char *const num[4][2] = {
            {"final", "top1"}, {"final", "top4"}, {"peak", "top1"}, {"peak", "top4"}};
        for (int i = 0; i < 4; i++) {
            double a = json_number_value(json_object_get(json_object_get(g, num[i][0]), num[i][1]));
            double b = json_number_value(json_object_get(json_object_get(w, num[i][0]), num[i][1]));
            if (fabs(a - b) > 0.02)
                fail_msg("%s %s.%s = %.4f, golden %.4f", name, num[i][0], num[i][1], a, b);
        }
        /* The novelty AUROC (days 5..11 have late classes still unseen) within 0.02. */
        double na = json_number_value(json_object_get(json_object_get(g, "novelty_auroc"), "mean"));
        double nb = json_number_value(json_object_get(json_object_get(w, "novelty_auroc"), "mean"));
        if (!(fabs(na - nb) <= 0.02))
            fail_msg("%s novelty_auroc.mean = %.4f, golden %.4f", name, na, nb);
        static const char *const ek[3] = {"0.01", "0.02", "0.05"};
        for (int e = 0; e < 3; e++) {
            json_int_t a =
                json_integer_value(json_object_get(json_object_get(g, "time_to_peak"), ek[e]));
            json_int_t b =
                json_integer_value(json_object_get(json_object_get(w, "time_to_peak"), ek[e]));
            if (llabs((long long)(a - b)) > 2)
                fail_msg("%s time_to_peak[%s] = %lld, golden %lld", name, ek[e], (long long)a,
                         (long long)b);
        }
    }
    json_decref(got);
    json_decref(want);
    vmf_test_rmtree(dir);
}

/* -------------------------------------------------------------------- via */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when vmfd on 127.0.0.1:port answers GET /readyz with 200. */
static int readyz_ok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        static const char req[] = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Connection: close\r\n\r\n";
        char buf[64] = {0};
        size_t got = 0;
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
            ssize_t r;
            while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
                got += (size_t)r;
        }
        ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
    }
    close(fd);
    return ok;
}

static void test_via_matches_in_process(void **state)
{
    (void)state;
    if (access(VMFD, X_OK) != 0) {
        print_message("SKIP: %s not built; the --via comparison needs a real vmfd\n", VMFD);
        skip();
    }
    char dir[512], out[600], err[600], prefix[600], sdir[600], a[600], b[600], url[64], listen[64],
        path[700], log[600];
    scratch(dir, out, err);
    snprintf(log, sizeof log, "%s/vmfd.log", dir);
    snprintf(prefix, sizeof prefix, "%s/s", dir);
    snprintf(sdir, sizeof sdir, "%s/state", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    mkdir(sdir, 0700);
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    pid_t d = spawn((char *const[]){(char *)VMFD, "--state-dir", sdir, "--listen", listen, NULL},
                    NULL, log);
    assert_int_equal(RUN(out, err, "gen", "--output", prefix, SMALL_GEN), 0);
    /* Wait until vmfd is ready (GET /readyz answers 200; at most 30 s): it
       listens before its start-up checks finish, and vmfsim --via refuses a
       daemon that is not ready yet. */
    int up = 0;
    for (int i = 0; i < 600 && !up; i++) {
        if (waitpid(d, NULL, WNOHANG) == d)
            fail_msg("vmfd exited at startup: %s", slurp(log));
        up = readyz_ok(port);
        if (!up) {
            struct timespec ts = {0, 50000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (!up)
        fail_msg("vmfd not ready after 30 s: %s", slurp(log));
    int rc = RUN(out, err, "run", "--stream", prefix, "--models", "vmfmm", "--days", "20", "--via",
                 url, "--no-plots", "--no-timings", "--output-dir", b);
    kill(d, SIGTERM);
    waitpid(d, NULL, 0);
    if (rc != 0)
        fail_msg("vmfsim --via exited %d: %s", rc, slurp(err));
    assert_int_equal(RUN(out, err, "run", "--stream", prefix, "--models", "vmfmm", "--days", "20",
                         "--no-plots", "--no-timings", "--output-dir", a),
                     0);
    snprintf(path, sizeof path, "%s/daily.csv", a);
    char *da = slurp(path);
    snprintf(path, sizeof path, "%s/daily.csv", b);
    char *db = slurp(path);
    assert_string_equal(da, db); /* to the last digit */
    free(da), free(db);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage_errors),
        cmocka_unit_test(test_bad_streams_are_refused_before_work),
        cmocka_unit_test(test_gen_run_and_reproducibility),
        cmocka_unit_test(test_ablate),
        cmocka_unit_test(test_golden_metrics),
        cmocka_unit_test(test_via_matches_in_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
