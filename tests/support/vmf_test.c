/*
 * vmf_test.c - implementation of the shared test helpers.
 */
#include "vmf_test.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vmf_test_assert_close(double a, double b, double rtol, double atol, const char *sa,
                           const char *sb, const char *file, int line)
{
    double diff = fabs(a - b);
    if (isnan(a) || isnan(b) || !(diff <= atol + rtol * fabs(b))) {
        print_error("%s:%d: %s = %.17g not close to %s = %.17g (diff %.3g, rtol %.3g, atol "
                    "%.3g)\n",
                    file, line, sa, a, sb, b, diff, rtol, atol);
        fail();
    }
}

void vmf_test_assert_ok(int rc, const char *expr, const char *file, int line)
{
    if (rc != VMF_OK) {
        print_error("%s:%d: %s returned %d (%s): %s\n", file, line, expr, rc, vmf_strerror(rc),
                    vmf_last_error());
        fail();
    }
}

const char *vmf_test_data_path(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", VMF_TEST_DATA_DIR, name);
    return buf;
}

const char *vmf_test_tmpdir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/vmftest.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        print_error("mkdtemp failed for %s\n", buf);
        fail();
    }
    return buf;
}

void vmf_test_rmtree(const char *path)
{
    char cmd[4200];
    if (!path || !*path || strcmp(path, "/") == 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        print_message("warning: could not remove %s\n", path);
}

int vmf_test_tmpdir_setup(void **state)
{
    char *dir = malloc(4096);
    assert_non_null(dir);
    vmf_test_tmpdir(dir, 4096);
    *state = dir;
    return 0;
}

int vmf_test_tmpdir_teardown(void **state)
{
    vmf_test_rmtree(*state);
    free(*state);
    return 0;
}

void *vmf_test_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        print_error("cannot open %s\n", path);
        fail();
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        print_error("cannot read %s\n", path);
        fail();
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void vmf_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        print_error("cannot create %s\n", path);
        fail();
    }
    size_t put = len ? fwrite(data, 1, len, fp) : 0;
    if (fclose(fp) != 0 || put != len) {
        print_error("cannot write %s\n", path);
        fail();
    }
}

void vmf_test_write_text(const char *path, const char *text)
{
    vmf_test_write_file(path, text, strlen(text));
}

void vmf_test_assert_only_file(const char *dir, const char *name)
{
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    struct dirent *de;
    size_t files = 0;
    while ((de = readdir(dh))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        files++;
        assert_string_equal(de->d_name, name);
    }
    closedir(dh);
    assert_int_equal(files, 1);
}

void vmf_test_assert_same_mixture(const vmf_mixture *a, const vmf_mixture *b)
{
    assert_int_equal(vmf_mixture_n_components(a), vmf_mixture_n_components(b));
    assert_int_equal(vmf_mixture_dim(a), vmf_mixture_dim(b));
    assert_int_equal(vmf_mixture_tied_kappa(a), vmf_mixture_tied_kappa(b));
    size_t k = vmf_mixture_n_components(a), d = vmf_mixture_dim(a);
    assert_memory_equal(vmf_mixture_weights(a), vmf_mixture_weights(b), k * sizeof(double));
    assert_memory_equal(vmf_mixture_kappas(a), vmf_mixture_kappas(b), k * sizeof(double));
    assert_memory_equal(vmf_mixture_means(a), vmf_mixture_means(b), k * d * sizeof(float));
}

void vmf_test_assert_same_bytes(const void *a, size_t la, const void *b, size_t lb)
{
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
}

vmf_array vmf_test_vector(vmf_dtype t, const void *data, size_t n)
{
    vmf_array a;
    memset(&a, 0, sizeof a);
    a.dtype = t;
    a.ndim = 1;
    a.shape[0] = n;
    a.count = n;
    a.data = (void *)(uintptr_t)data; /* borrowed, never written */
    return a;
}

void vmf_test_npz_labelled(const float *x, size_t n, size_t d, const vmf_array *y, void **buf,
                           size_t *len)
{
    vmf_array xa = vmf_test_vector(VMF_DTYPE_F32, x, n * d);
    xa.ndim = 2;
    xa.shape[0] = n;
    xa.shape[1] = d;
    const char *names[2] = {"X", "y"};
    const vmf_array *arrays[2] = {&xa, y};
    vmf_assert_ok(vmf_npz_write_mem(names, arrays, y ? 2 : 1, buf, len));
}

void vmf_test_npz_xy(const float *x, size_t n, size_t d, const int64_t *y, size_t ny, void **buf,
                     size_t *len)
{
    vmf_array ya = vmf_test_vector(VMF_DTYPE_I64, y, ny);
    vmf_test_npz_labelled(x, n, d, y ? &ya : NULL, buf, len);
}

void vmf_test_mixture_data(uint64_t seed, size_t n, size_t d, size_t k, double kappa_lo,
                           double kappa_hi, float *x, int32_t *comp, float *means, double *kappas,
                           double *weights)
{
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    float *mu = means ? means : malloc(k * d * sizeof *mu);
    double *kap = kappas ? kappas : malloc(k * sizeof *kap);
    double *w = weights ? weights : malloc(k * sizeof *w);
    assert_non_null(mu);
    assert_non_null(kap);
    assert_non_null(w);
    vmf_assert_ok(vmf_sample_uniform(d, k, &rng, mu));
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++) {
        kap[c] = kappa_lo + (kappa_hi - kappa_lo) * vmf_rng_uniform(&rng);
        w[c] = vmf_rng_gamma(&rng, 5.0);
        wsum += w[c];
    }
    for (size_t c = 0; c < k; c++)
        w[c] /= wsum;
    /* Rows in random component order, each drawn one at a time. */
    for (size_t i = 0; i < n; i++) {
        double u = vmf_rng_uniform(&rng), acc = 0.0;
        size_t c = 0;
        for (; c + 1 < k; c++) {
            acc += w[c];
            if (u < acc)
                break;
        }
        vmf_assert_ok(vmf_sample_vmf(mu + c * d, d, kap[c], 1, &rng, x + i * d));
        if (comp)
            comp[i] = (int32_t)c;
    }
    if (!means)
        free(mu);
    if (!kappas)
        free(kap);
    if (!weights)
        free(w);
}
