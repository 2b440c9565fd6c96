/*
 * bench_em.c - one batch-EM iteration against its roofline: the two SGEMM
 * calls of the same shapes (X·Mᵀ, N×d times d×K, and Rᵀ·X, K×N times N×d),
 * timed in the same run on the same data. Prints both times, their ratio and
 * GFLOP/s (4·N·d·K flops per iteration), plus the peak RSS.
 *
 *   vmf_bench_em                      the two default shapes
 *   vmf_bench_em N D K [repeats]      one shape
 *   vmf_bench_em --fit N D K          a full fit (tol 0, 3 iterations): time and peak RSS
 *
 * VMF_BENCH_BLOCK_ROWS overrides the rows per E-step block (default: the library's).
 * Set OPENBLAS_NUM_THREADS to choose the BLAS thread count; it is printed.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static size_t bench_block; /* rows per block; 0: the library default */

/* CPU seconds of the whole process (all BLAS threads): robust to a busy machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* N rows from a K-component mixture with kappa in [d/4, d] (moderately overlapping). */
static float *make_data(size_t n, size_t d, size_t k, vmf_mixture **truth)
{
    vmf_rng rng;
    vmf_rng_seed(&rng, 2024);
    float *mu = malloc(k * d * sizeof *mu), *x = malloc(n * d * sizeof *x);
    double *w = malloc(k * sizeof *w), *kap = malloc(k * sizeof *kap);
    if (!mu || !x || !w || !kap) {
        fprintf(stderr, "out of memory for %zu x %zu\n", n, d);
        exit(1);
    }
    if (vmf_sample_uniform(d, k, &rng, mu) != VMF_OK)
        exit(1);
    for (size_t c = 0; c < k; c++) {
        w[c] = 1.0 / (double)k;
        kap[c] = (double)d * (0.25 + 0.75 * vmf_rng_uniform(&rng));
    }
    if (vmf_mixture_new(k, d, w, mu, kap, truth) != VMF_OK ||
        vmf_mixture_sample(*truth, n, &rng, x, NULL) != VMF_OK) {
        fprintf(stderr, "sampling failed: %s\n", vmf_last_error());
        exit(1);
    }
    free(mu);
    free(w);
    free(kap);
    return x;
}

static void bench_shape(size_t n, size_t d, size_t k, int repeats)
{
    vmf_mixture *m;
    double t0 = vmf__now();
    float *x = make_data(n, d, k, &m);
    double tgen = vmf__now() - t0;
    float *dots = malloc(n * k * sizeof *dots), *s1f = malloc(k * d * sizeof *s1f);
    double *s0 = malloc(k * sizeof *s0), *s1 = malloc(k * d * sizeof *s1);
    if (!dots || !s1f || !s0 || !s1) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    vmf_kappa_opts ko;
    vmf_kappa_opts_init(&ko);
    /* Warm-up: one of each. */
    vmf__sgemm(0, 1, n, k, d, 1.0f, x, d, m->means, d, 0.0f, dots, k);
    double ll;
    if (vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_SOFT, NULL, bench_block, s0, s1, &ll,
                                 NULL) != VMF_OK)
        exit(1);
    double best_gemm = 1e300, best_iter = 1e300, best_e = 1e300;
    double cpu_gemm = 1e300, cpu_iter = 1e300;
    for (int r = 0; r < repeats; r++) {
        /* Roofline: the two products over all N rows at once (an N×K output). */
        double a = vmf__now(), ca = cpu_now();
        vmf__sgemm(0, 1, n, k, d, 1.0f, x, d, m->means, d, 0.0f, dots, k);
        vmf__sgemm(1, 0, k, d, n, 1.0f, dots, k, x, d, 0.0f, s1f, d);
        double b = vmf__now(), cb = cpu_now();
        /* One EM iteration: blocked E-step pass with Rᵀ·X, then the M-step. */
        vmf_mixture *mm;
        if (vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_SOFT, NULL, bench_block, s0, s1, &ll,
                                     NULL) != VMF_OK ||
            vmf_mixture_copy(m, &mm) != VMF_OK || vmf__mixture_mstep(mm, s0, s1, &ko, 0) != VMF_OK)
            exit(1);
        double c = vmf__now(), cc = cpu_now();
        vmf_mixture_free(mm);
        /* The E-step alone (log-likelihood only, no Rᵀ·X), for the breakdown. */
        if (vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_SOFT, NULL, bench_block, s0, NULL, &ll,
                                     NULL) != VMF_OK)
            exit(1);
        double e = vmf__now();
        best_gemm = b - a < best_gemm ? b - a : best_gemm;
        best_iter = c - b < best_iter ? c - b : best_iter;
        best_e = e - c < best_e ? e - c : best_e;
        cpu_gemm = cb - ca < cpu_gemm ? cb - ca : cpu_gemm;
        cpu_iter = cc - cb < cpu_iter ? cc - cb : cpu_iter;
    }
    double flops = 4.0 * (double)n * (double)d * (double)k;
    printf("N=%zu d=%zu K=%zu threads=%d (data %.0f MiB, generated in %.1f s, best of %d)\n", n, d,
           k, openblas_get_num_threads(), (double)(n * d * sizeof(float)) / 1048576.0, tgen,
           repeats);
    printf("  2x sgemm (roofline) %8.2f ms  %6.1f GFLOP/s\n", 1e3 * best_gemm,
           flops / best_gemm / 1e9);
    printf("  EM iteration        %8.2f ms  %6.1f GFLOP/s\n", 1e3 * best_iter,
           flops / best_iter / 1e9);
    printf("  E-step only (1 GEMM + exp)  %8.2f ms\n", 1e3 * best_e);
    printf("  ratio EM / sgemm    %8.3f  (wall)\n", best_iter / best_gemm);
    printf("  ratio EM / sgemm    %8.3f  (process CPU time: %.2f / %.2f ms)\n", cpu_iter / cpu_gemm,
           1e3 * cpu_iter, 1e3 * cpu_gemm);
    printf("  peak RSS %.0f MiB\n", peak_rss_mib());
    fflush(stdout);
    free(x);
    free(dots);
    free(s1f);
    free(s0);
    free(s1);
    vmf_mixture_free(m);
}

static void bench_fit(size_t n, size_t d, size_t k)
{
    vmf_mixture *truth;
    float *x = make_data(n, d, k, &truth);
    vmf_mixture_free(truth);
    double before = peak_rss_mib();
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.tol = 0.0;
    o.max_iter = 3;
    vmf_mixture *m;
    vmf_em_report rep;
    if (vmf_mixture_fit(&o, x, n, d, &m, &rep) != VMF_OK) {
        fprintf(stderr, "fit failed: %s\n", vmf_last_error());
        exit(1);
    }
    printf("fit N=%zu d=%zu K=%zu threads=%d: %.2f s for init + %zu iterations, loglik %.4f\n", n,
           d, k, openblas_get_num_threads(), rep.seconds, rep.n_iter, rep.loglik);
    printf("  data %.0f MiB, peak RSS before fit %.0f MiB, after %.0f MiB (fit added %.0f MiB)\n",
           (double)(n * d * sizeof(float)) / 1048576.0, before, peak_rss_mib(),
           peak_rss_mib() - before);
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    free(x);
}

int main(int argc, char **argv)
{
    const char *blk = getenv("VMF_BENCH_BLOCK_ROWS");
    bench_block = blk ? strtoul(blk, NULL, 10) : 0;
    if (argc == 5 && strcmp(argv[1], "--fit") == 0) {
        bench_fit(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10),
                  strtoul(argv[4], NULL, 10));
        return 0;
    }
    if (argc >= 4) {
        bench_shape(strtoul(argv[1], NULL, 10), strtoul(argv[2], NULL, 10),
                    strtoul(argv[3], NULL, 10), argc > 4 ? atoi(argv[4]) : 5);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: vmf_bench_em [N D K [repeats] | --fit N D K]\n");
        return 64;
    }
    bench_shape(100000, 256, 50, 5);
    bench_shape(200000, 512, 100, 3);
    return 0;
}
