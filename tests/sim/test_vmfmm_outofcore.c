/*
 * test_vmfmm_outofcore.c - `vmfmm fit --out-of-core` on an input larger
 * than the memory the process may use: a 400 MiB .npy (200 000 x 512
 * float32) fitted under an address-space limit (RLIMIT_AS, as `ulimit -v`)
 * of 256 MiB, which the in-memory fit cannot even load. The streamed model
 * equals core's in-memory vmf_mixture_fit of the same rows (run here, in
 * the test process, without the limit) within 1e-6 relative in every
 * parameter and in the log-likelihood.
 *
 * The limit is on address space, not resident memory, so it also counts
 * the libraries and OpenBLAS's preallocated buffers (about 150 MiB of the
 * 256); a page-cache-backed pread of the file counts nothing.
 */
#include "vmf_test.h"
#include "vmfmm_testrun.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define N        200000
#define D        512
#define K        4
#define LIMIT_MB 256

/* Runs vmfmm with args under RLIMIT_AS = limit bytes. */
static vmfmm_result run_limited(const char *dir, rlim_t limit, char *const *args)
{
    vmfmm_run_opts o = {NULL, NULL, (uint64_t)limit};
    return vmfmm_run_with(dir, args, &o);
}

/* Rows of component i % K: mean + Gaussian noise, normalized (cosine to the mean ~0.8). */
static float *make_data(void)
{
    float *x = malloc((size_t)N * D * sizeof *x);
    float mu[K * D];
    assert_non_null(x);
    vmf_rng rng;
    vmf_rng_seed(&rng, 16);
    for (size_t c = 0; c < K; c++) {
        double s = 0;
        for (size_t j = 0; j < D; j++) {
            double v = vmf_rng_normal(&rng);
            mu[c * D + j] = (float)v;
            s += v * v;
        }
        for (size_t j = 0; j < D; j++)
            mu[c * D + j] = (float)(mu[c * D + j] / sqrt(s));
    }
    for (size_t i = 0; i < N; i++) {
        const float *m = mu + (i % K) * D;
        float *r = x + i * D;
        double s = 0;
        for (size_t j = 0; j < D; j++) {
            double v = (double)m[j] + 0.033 * vmf_rng_normal(&rng);
            r[j] = (float)v;
            s += v * v;
        }
        for (size_t j = 0; j < D; j++)
            r[j] = (float)((double)r[j] / sqrt(s));
    }
    return x;
}

static double conv_loglik(const char *out)
{
    char p[4096];
    json_t *j = vmfmm_load_json(vmfmm_path(p, sizeof p, out, "convergence.json"));
    double v = json_number_value(json_object_get(j, "final_mean_loglik"));
    json_decref(j);
    return v;
}

static void test_larger_than_memory(void **state)
{
    (void)state;
    char dir[4096], big[4096], init[4096], out[4096], out2[4096];
    vmf_test_tmpdir(dir, sizeof dir);
    vmfmm_path(big, sizeof big, dir, "big.npy");
    vmfmm_path(init, sizeof init, dir, "init.npy");
    vmfmm_path(out, sizeof out, dir, "out");
    vmfmm_path(out2, sizeof out2, dir, "inmem");
    float *x = make_data();
    vmfmm_write_f32(big, x, N, D);
    vmfmm_write_f32(init, x, K, D); /* rows 0..3: one per component */
    size_t bytes = (size_t)N * D * sizeof(float);
    rlim_t limit = (rlim_t)LIMIT_MB << 20;
    assert_true((double)bytes >= 1.5 * (double)limit);

    char *args[] = {vmfmm_mut("fit"),          vmfmm_mut("--out-of-core"),
                    vmfmm_mut("-i"),           big,
                    vmfmm_mut("-k"),           vmfmm_mut("4"),
                    vmfmm_mut("--tol"),        vmfmm_mut("0"),
                    vmfmm_mut("--max-iter"),   vmfmm_mut("5"),
                    vmfmm_mut("--init-means"), init,
                    vmfmm_mut("--test-split"), vmfmm_mut("0"),
                    vmfmm_mut("-o"),           out,
                    vmfmm_mut("-q"),           NULL};
    vmfmm_result r = run_limited(dir, limit, args);
    if (r.code != 0)
        fail_msg("out-of-core fit under a %d MiB limit: exit %d\n%s", LIMIT_MB, r.code, r.err);
    vmfmm_result_free(&r);

    /* The limit binds: the in-memory fit of the same file cannot load it. */
    char *args2[] = {
        vmfmm_mut("fit"),        vmfmm_mut("-i"), big,  vmfmm_mut("-k"), vmfmm_mut("4"),
        vmfmm_mut("--no-plots"), vmfmm_mut("-o"), out2, vmfmm_mut("-q"), NULL};
    r = run_limited(dir, limit, args2);
    if (r.code == 0)
        fail_msg("the in-memory fit succeeded under the limit: the test proves nothing");
    vmfmm_result_free(&r);

    /* The reference, in memory here: the rows as the tool normalizes them,
     * from the first K rows as initial means (the --init-means file). */
    vmf_em_report rep;
    vmf_mixture *ref = vmfmm_reference_fit(x, N, D, x, K, 5, 42, 0, &rep);
    char p[4096];
    char *text = vmf_test_read_file(vmfmm_path(p, sizeof p, out, "model.json"), NULL);
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_from_json(text, strlen(text), &m));
    free(text);
    vmfmm_assert_mixture_near(m, ref);
    vmf_assert_close(conv_loglik(out), rep.loglik, 1e-6, 0);
    /* A real fit: four well-separated components of equal weight. */
    for (size_t c = 0; c < K; c++)
        vmf_assert_close(vmf_mixture_weights(m)[c], 0.25, 1e-3, 0);
    vmf_mixture_free(m);
    vmf_mixture_free(ref);
    vmf_em_report_free(&rep);
    free(x);
    vmf_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_larger_than_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
