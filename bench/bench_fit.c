/*
 * bench_fit.c - the whole default fit and its settled iterations, side by
 * side with the two SGEMMs of the same shapes, the FLOP floor at this
 * machine's measured SGEMM peak, and FAISS's spherical k-means (Debian's
 * python3-faiss, subsampling disabled, same K, same data, same thread
 * count), all measured in one run. Prints; asserts nothing.
 *
 *   vmf_bench_fit                 N=100000 d=256 K=50, then N=200000 d=512 K=100
 *   vmf_bench_fit N D K           one shape
 *
 * Data: K components with random means, equal weights, kappa uniform in
 * [d/4, d] (seed 2024), as vmf_bench_em. The figures:
 *   - default fit: vmf_mixture_fit with vmf_em_opts_init defaults (seed 1):
 *     wall time, iterations, search, moves, converged, mean loglik;
 *   - the same fit with exact = 1 (the dense path): time and loglik;
 *   - settled iterations: from the default fit's means (given init),
 *     tol = 0, 12 iterations, bounded and dense; the mean time of
 *     iterations 6..12 of each and their final log-likelihoods, whose
 *     difference per row is the truncation's effect;
 *   - FAISS: 25 iterations (its default) of faiss.Kmeans(spherical=True).
 * OPENBLAS_NUM_THREADS sets the thread count of both (default 1 here).
 */
#include "internal.h"
#include "mixture_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VMF_BENCH_FAISS_SCRIPT
#define VMF_BENCH_FAISS_SCRIPT "bench/faiss_kmeans.py"
#endif

static float *make_data(size_t n, size_t d, size_t k)
{
    vmf_rng rng;
    vmf_rng_seed(&rng, 2024);
    float *mu = malloc(k * d * sizeof *mu), *x = malloc(n * d * sizeof *x);
    double *w = malloc(k * sizeof *w), *kap = malloc(k * sizeof *kap);
    vmf_mixture *truth;
    if (!mu || !x || !w || !kap || vmf_sample_uniform(d, k, &rng, mu) != VMF_OK) {
        fprintf(stderr, "out of memory for %zu x %zu\n", n, d);
        exit(1);
    }
    for (size_t c = 0; c < k; c++) {
        w[c] = 1.0 / (double)k;
        kap[c] = (double)d * (0.25 + 0.75 * vmf_rng_uniform(&rng));
    }
    if (vmf_mixture_new(k, d, w, mu, kap, &truth) != VMF_OK ||
        vmf_mixture_sample(truth, n, &rng, x, NULL) != VMF_OK) {
        fprintf(stderr, "sampling failed: %s\n", vmf_last_error());
        exit(1);
    }
    vmf_mixture_free(truth);
    free(mu);
    free(w);
    free(kap);
    return x;
}

/* Iteration timestamps through the progress callback. */
typedef struct stamps {
    double t[64];
    size_t n;
} stamps;

static void stamp(void *ctx, size_t iter, double loglik, double change)
{
    (void)iter;
    (void)loglik;
    (void)change;
    stamps *s = ctx;
    if (s->n < 64)
        s->t[s->n++] = vmf__now();
}

static vmf_mixture *fit(const vmf_em_opts *o, const float *x, size_t n, size_t d,
                        vmf_em_report *rep)
{
    vmf_mixture *m;
    if (vmf_mixture_fit(o, x, n, d, &m, rep) != VMF_OK) {
        fprintf(stderr, "fit failed: %s\n", vmf_last_error());
        exit(1);
    }
    return m;
}

/* Mean seconds of iterations 6.. of a tol = 0 run from the given means. */
static double settled(const float *x, size_t n, size_t d, size_t k, const float *means, int exact,
                      double *loglik)
{
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.init = VMF_INIT_GIVEN;
    o.init_means = means;
    o.tol = 0.0;
    o.max_iter = 12;
    o.exact = exact;
    stamps s = {.n = 0};
    o.progress = stamp;
    o.progress_ctx = &s;
    vmf_em_report rep;
    vmf_mixture *m = fit(&o, x, n, d, &rep);
    *loglik = rep.loglik;
    vmf_em_report_free(&rep);
    vmf_mixture_free(m);
    return (s.t[s.n - 1] - s.t[4]) / (double)(s.n - 5);
}

static double sgemm_peak(void)
{
    size_t s = 2048;
    float *a = calloc(s * s, sizeof *a), *b = calloc(s * s, sizeof *b), *c = calloc(s * s, 4);
    if (!a || !b || !c)
        exit(1);
    for (size_t i = 0; i < s * s; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 1e300;
    for (int r = 0; r < 3; r++) {
        double t0 = vmf__now();
        vmf__sgemm(0, 0, s, s, s, 1.0f, a, s, b, s, 0.0f, c, s);
        double t = vmf__now() - t0;
        best = t < best ? t : best;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)s * (double)s * (double)s / best;
}

static double run_faiss(const char *npy, size_t k, int threads, double *per_iter)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %zu 25 %d 1", VMF_BENCH_FAISS_SCRIPT, npy, k,
             threads);
    FILE *p = popen(cmd, "r");
    double sec = -1.0;
    char line[256];
    *per_iter = -1.0;
    if (p) {
        /* Read to the end so that the script never writes into a closed pipe. */
        while (fgets(line, sizeof line, p) != NULL)
            if (sscanf(line, "seconds %lf per_iter %lf", &sec, per_iter) != 2)
                sec = -1.0;
        pclose(p);
    }
    return sec;
}

static void bench(size_t n, size_t d, size_t k, double peak)
{
    int threads = openblas_get_num_threads();
    double t0 = vmf__now();
    float *x = make_data(n, d, k);
    printf("N=%zu d=%zu K=%zu threads=%d (data generated in %.1f s)\n", n, d, k, threads,
           vmf__now() - t0);
    /* The two SGEMMs of one iteration over all rows. */
    float *dots = malloc(n * k * sizeof *dots), *s1 = malloc(k * d * sizeof *s1);
    float *mu = malloc(k * d * sizeof *mu);
    if (!dots || !s1 || !mu)
        exit(1);
    memcpy(mu, x, k * d * sizeof *mu);
    double gemm = 1e300;
    for (int r = 0; r < 3; r++) {
        double a = vmf__now();
        vmf__sgemm(0, 1, n, k, d, 1.0f, x, d, mu, d, 0.0f, dots, k);
        vmf__sgemm(1, 0, k, d, n, 1.0f, dots, k, x, d, 0.0f, s1, d);
        double t = vmf__now() - a;
        gemm = t < gemm ? t : gemm;
    }
    free(dots);
    free(s1);
    free(mu);
    double floor = 4.0 * (double)n * (double)d * (double)k / peak;

    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.seed = 1;
    vmf_em_report rep, rde;
    vmf_mixture *m = fit(&o, x, n, d, &rep);
    o.exact = 1;
    vmf_mixture *md = fit(&o, x, n, d, &rde);
    double ll_b, ll_d;
    double it_b = settled(x, n, d, k, vmf_mixture_means(m), 0, &ll_b);
    double it_d = settled(x, n, d, k, vmf_mixture_means(m), 1, &ll_d);

    char dir[] = "/tmp/vmf_bench_fit_XXXXXX", npy[64];
    double fsec = -1.0, fper = -1.0;
    if (mkdtemp(dir) != NULL) {
        snprintf(npy, sizeof npy, "%s/X.npy", dir);
        vmf_array arr = {
            .dtype = VMF_DTYPE_F32, .ndim = 2, .shape = {n, d}, .count = n * d, .data = x};
        if (vmf_npy_write(npy, &arr) == VMF_OK)
            fsec = run_faiss(npy, k, threads, &fper);
        unlink(npy);
        rmdir(dir);
    }
    printf("  SGEMM peak %.1f GFLOP/s; FLOP floor of one iteration %.3f s\n", peak / 1e9, floor);
    printf("  2x SGEMM (one dense iteration's products)        %8.3f s\n", gemm);
    printf("  default fit: %.2f s, %zu iterations + %zu search iterations, %zu moves, "
           "converged %d, loglik %.6f, rows skipped %.1f %%\n",
           rep.seconds, rep.n_iter, rep.n_search_iter, rep.n_moves, rep.converged, rep.loglik,
           100.0 * rep.skipped_rows);
    printf("  dense fit (exact = 1): %.2f s, %zu iterations, loglik %.6f (default - dense %+.2e "
           "/ row)\n",
           rde.seconds, rde.n_iter, rde.loglik, rep.loglik - rde.loglik);
    printf("  settled iteration, bounded %8.3f s = %.3f x 2 SGEMM = %.2f x FLOP floor\n", it_b,
           it_b / gemm, it_b / floor);
    printf("  settled iteration, dense   %8.3f s = %.3f x 2 SGEMM = %.2f x FLOP floor\n", it_d,
           it_d / gemm, it_d / floor);
    printf("  after 12 iterations from the same start: loglik bounded %.9f dense %.9f "
           "(diff %.2e / row)\n",
           ll_b, ll_d, ll_b - ll_d);
    if (fsec > 0) {
        printf("  FAISS spherical k-means: 25 iterations %.2f s, %.3f s / iteration = %.3f x "
               "2 SGEMM\n",
               fsec, fper, fper / gemm);
        printf("  default fit / FAISS 25 iterations = %.2f (target <= 3)\n", rep.seconds / fsec);
    } else {
        printf("  FAISS: not run (python3-faiss missing or failed)\n");
    }
    fflush(stdout);
    vmf_em_report_free(&rep);
    vmf_em_report_free(&rde);
    vmf_mixture_free(m);
    vmf_mixture_free(md);
    free(x);
}

int main(int argc, char **argv)
{
    double peak = sgemm_peak();
    if (argc == 4) {
        bench(strtoul(argv[1], NULL, 10), strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10),
              peak);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: vmf_bench_fit [N D K]\n");
        return 64;
    }
    bench(100000, 256, 50, peak);
    bench(200000, 512, 100, peak);
    return 0;
}
