/*
 * vmfmm_testrun.c - see vmfmm_testrun.h.
 */
#include "vmfmm_testrun.h"

#include "vmf_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *vmfmm_mut(const char *s)
{
    return (char *)(uintptr_t)s;
}

/* In the child: "NAME=VALUE" into the environment. */
static void put_env(const char *pair)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", pair);
    char *eq = strchr(buf, '=');
    if (eq) {
        *eq = '\0';
        setenv(buf, eq + 1, 1);
    }
}

vmfmm_result vmfmm_run_with(const char *dir, char *const *args, const vmfmm_run_opts *o)
{
    static const vmfmm_run_opts none = {NULL, NULL, 0};
    if (!o)
        o = &none;
    char out_path[4096], err_path[4096];
    snprintf(out_path, sizeof out_path, "%s/.stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/.stderr", dir);
    size_t n = 0, np = 0;
    while (args[n])
        n++;
    while (o->prefix && o->prefix[np])
        np++;
    char **argv = calloc(np + n + 2, sizeof *argv);
    assert_non_null(argv);
    for (size_t i = 0; i < np; i++)
        argv[i] = vmfmm_mut(o->prefix[i]);
    argv[np] = vmfmm_mut(VMFMM_BIN);
    for (size_t i = 0; i < n; i++)
        argv[np + 1 + i] = args[i];
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fi = open("/dev/null", O_RDONLY);
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fi < 0 || fo < 0 || fe < 0)
            _exit(127);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        for (size_t i = 0; o->env && o->env[i]; i++)
            put_env(o->env[i]);
        if (o->as_limit) {
            struct rlimit rl = {(rlim_t)o->as_limit, (rlim_t)o->as_limit};
            if (setrlimit(RLIMIT_AS, &rl) != 0)
                _exit(126);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    free(argv);
    vmfmm_result r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = vmf_test_read_file(out_path, NULL);
    r.err = vmf_test_read_file(err_path, NULL);
    return r;
}

vmfmm_result vmfmm_runv(const char *dir, char *const *args)
{
    return vmfmm_run_with(dir, args, NULL);
}

vmfmm_result vmfmm_run(const char *dir, ...)
{
    char *args[128];
    size_t n = 0;
    va_list ap;
    va_start(ap, dir);
    for (;;) {
        char *a = va_arg(ap, char *);
        assert_true(n < 127);
        args[n++] = a;
        if (a == NULL)
            break;
    }
    va_end(ap);
    return vmfmm_runv(dir, args);
}

void vmfmm_result_free(vmfmm_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

size_t vmfmm_count_lines(const char *s)
{
    size_t n = 0;
    const char *p = s;
    for (; *p; p++)
        n += *p == '\n';
    if (p > s && p[-1] != '\n')
        n++;
    return n;
}

void vmfmm_expect_error(const vmfmm_result *r, int code, const char *what)
{
    if (r->code != code || vmfmm_count_lines(r->err) != 1 || strncmp(r->err, "vmfmm: ", 7) != 0)
        fail_msg("%s: expected exit %d and one 'vmfmm: ' line on stderr, got exit %d and "
                 "stderr:\n%s",
                 what, code, r->code, r->err);
}

json_t *vmfmm_load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (j == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, e.text, e.line);
    return j;
}

json_t *vmfmm_result_json(const vmfmm_result *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, 0, &e);
    if (j == NULL)
        fail_msg("stdout is not JSON: %s (line %d):\n%s", e.text, e.line, r->out);
    return j;
}

void vmfmm_write_f32(const char *path, const float *x, size_t n, size_t d)
{
    vmf_array a = {.dtype = VMF_DTYPE_F32,
                   .ndim = 2,
                   .shape = {n, d},
                   .count = n * d,
                   .data = (void *)(uintptr_t)x};
    vmf_assert_ok(vmf_npy_write(path, &a));
}

void vmfmm_write_i32(const char *path, const int32_t *v, size_t n)
{
    vmf_array a = {
        .dtype = VMF_DTYPE_I32, .ndim = 1, .shape = {n}, .count = n, .data = (void *)(uintptr_t)v};
    vmf_assert_ok(vmf_npy_write(path, &a));
}

int32_t *vmfmm_read_i32(const char *path, size_t *n)
{
    vmf_array a = {0};
    vmf_assert_ok(vmf_npy_read(path, &a));
    assert_int_equal(a.dtype, VMF_DTYPE_I32);
    *n = a.count;
    int32_t *v = malloc((a.count ? a.count : 1) * sizeof *v);
    assert_non_null(v);
    memcpy(v, a.data, a.count * sizeof *v);
    vmf_array_free(&a);
    return v;
}

const char *vmfmm_path(char *buf, size_t size, const char *dir, const char *name)
{
    int w = snprintf(buf, size, "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < size);
    return buf;
}

int vmfmm_file_ok(const char *path, size_t min_bytes)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size >= min_bytes;
}

vmf_mixture *vmfmm_reference_fit(float *x, size_t n, size_t d, const float *init, size_t k,
                                 size_t max_iter, uint64_t seed, size_t block_rows,
                                 vmf_em_report *rep)
{
    float *means = malloc(k * d * sizeof *means);
    assert_non_null(means);
    memcpy(means, init, k * d * sizeof *means);
    vmf_assert_ok(vmf_rows_normalize(means, k, d));
    vmf_assert_ok(vmf_rows_normalize(x, n, d));
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.max_iter = max_iter;
    o.tol = 0;
    o.seed = seed;
    o.init = VMF_INIT_GIVEN;
    o.init_means = means;
    if (block_rows)
        o.block_rows = block_rows;
    vmf_mixture *ref = NULL;
    vmf_assert_ok(vmf_mixture_fit(&o, x, n, d, &ref, rep));
    free(means);
    return ref;
}

void vmfmm_assert_mixture_near(const vmf_mixture *m, const vmf_mixture *ref)
{
    size_t k = vmf_mixture_n_components(ref), d = vmf_mixture_dim(ref);
    assert_int_equal(vmf_mixture_n_components(m), k);
    assert_int_equal(vmf_mixture_dim(m), d);
    for (size_t c = 0; c < k; c++) {
        vmf_assert_close(vmf_mixture_weights(m)[c], vmf_mixture_weights(ref)[c], 1e-6, 0);
        vmf_assert_close(vmf_mixture_kappas(m)[c], vmf_mixture_kappas(ref)[c], 1e-6, 0);
        for (size_t j = 0; j < d; j++)
            vmf_assert_close(vmf_mixture_means(m)[c * d + j], vmf_mixture_means(ref)[c * d + j],
                             1e-6, 1e-7);
    }
}
