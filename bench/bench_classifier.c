/*
 * bench_classifier.c - the vMF classifier against its roofline: a day's
 * batch of 5,000 rows (d = 512) learned by partial_fit into a classifier of
 * 200 classes x 5 components, and predict_topk on 100,000 rows, each printed
 * next to the SGEMM time of the same shapes in the same run:
 *   partial_fit  ~ per class X_c·Mᵀ and Rᵀ·X_c: together 5000 x 512 x 5, twice
 *   predict      with the refinement head (the default): X·Wᵀ, 100000 x 512
 *                times 512 x 200, then a softmax over classes; without it
 *                X·Mᵀ, 100000 x 512 times 512 x 1000, then log-sum-exp per class
 *   predict + novelty  the same with each row's novelty score (the largest
 *                cosine to a component mean: with the head, one more GEMM
 *                X·Mᵀ), against the SGEMMs of both shapes
 *   partial_fit  also runs the refinement: max(16384, 2 x 5000) gradient rows
 *                in minibatches of 256, two GEMMs 256 x 512 x 200 each
 *
 *   vmf_bench_classifier [rows_predict]
 *
 * Wall-clock seconds, median of 3 runs. Set OPENBLAS_NUM_THREADS (printed).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D       512
#define CLASSES 200
#define KCOMP   5
#define BATCH   5000
#define WARM    160 /* rows per class before timing: enough for 5 components */

static void die(const char *what)
{
    fprintf(stderr, "bench_classifier: %s: %s\n", what, vmf_last_error());
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median3(double *t)
{
    qsort(t, 3, sizeof *t, cmp_d);
    return t[1];
}

/* Repetitions of the prediction timings, interleaved so a slow spell of the machine hits all. */
#define PREDICT_REPS 7

static double median_reps(double *t)
{
    qsort(t, PREDICT_REPS, sizeof *t, cmp_d);
    return t[PREDICT_REPS / 2];
}

/* n rows of random classes around the centres (kappa 300 about each), labels into y. */
static void draw(vmf_rng *rng, const float *cen, size_t n, float *x, int64_t *y, int balanced)
{
    for (size_t i = 0; i < n; i++) {
        size_t c = balanced ? i % CLASSES : (size_t)vmf_rng_below(rng, CLASSES);
        if (vmf_sample_vmf(cen + c * D, D, 300.0, 1, rng, x + i * D) != VMF_OK)
            die("sampling");
        y[i] = (int64_t)c;
    }
}

int main(int argc, char **argv)
{
    size_t npred = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
    const char *th = getenv("OPENBLAS_NUM_THREADS");
    printf("vmf_bench_classifier: d=%d, %d classes x %d components, OPENBLAS_NUM_THREADS=%s\n", D,
           CLASSES, KCOMP, th ? th : "(unset)");
    vmf_rng rng;
    vmf_rng_seed(&rng, 7);
    /* One centre per class; 160 rows per class give it 5 components (30 rows each). */
    float *cen = malloc((size_t)CLASSES * D * sizeof *cen);
    size_t nwarm = (size_t)CLASSES * WARM;
    float *xw = malloc(nwarm * D * sizeof *xw), *xb = malloc((size_t)BATCH * D * sizeof *xb);
    float *xp = malloc(npred * D * sizeof *xp);
    int64_t *yw = malloc(nwarm * sizeof *yw), *yb = malloc(BATCH * sizeof *yb),
            *yp = malloc(npred * sizeof *yp);
    if (!cen || !xw || !xb || !xp || !yw || !yb || !yp)
        die("out of memory");
    if (vmf_sample_uniform(D, CLASSES, &rng, cen) != VMF_OK)
        die("centres");
    draw(&rng, cen, nwarm, xw, yw, 1);
    draw(&rng, cen, BATCH, xb, yb, 0);
    draw(&rng, cen, npred, xp, yp, 0);

    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    o.k_max = KCOMP;
    vmf_classifier *c;
    vmf_labels lw = {nwarm, yw, NULL};
    double t0 = vmf__now();
    if (vmf_classifier_fit(&o, xw, nwarm, D, &lw, &c) != VMF_OK)
        die("fit");
    double tfit = vmf__now() - t0;
    size_t ncomp = 0;
    for (size_t i = 0; i < vmf_classifier_n_classes(c); i++)
        ncomp += vmf_mixture_n_components(vmf_classifier_class_mixture(c, i));
    printf("warm-up fit: %zu rows, %zu components in %.3f s\n", nwarm, ncomp, tfit);

    /* partial_fit of one day's batch, on a fresh copy each time. */
    double tp[3];
    vmf_labels lb = {BATCH, yb, NULL};
    for (int r = 0; r < 3; r++) {
        vmf_classifier *cp;
        if (vmf_classifier_copy(c, &cp) != VMF_OK)
            die("copy");
        t0 = vmf__now();
        if (vmf_classifier_partial_fit(cp, xb, BATCH, D, &lb) != VMF_OK)
            die("partial_fit");
        tp[r] = vmf__now() - t0;
        vmf_classifier_free(cp);
    }
    /* Its roofline: the two products of a 5,000-row E-step and M-step with 5 components. */
    float *mk = malloc((size_t)KCOMP * D * sizeof *mk), *dots = malloc((size_t)BATCH * 8 * 4),
          *s1 = malloc((size_t)KCOMP * D * sizeof *s1);
    memcpy(mk, vmf_mixture_means(vmf_classifier_class_mixture(c, 0)), KCOMP * D * sizeof *mk);
    double tg[3];
    for (int r = 0; r < 3; r++) {
        t0 = vmf__now();
        vmf__sgemm(0, 1, BATCH, KCOMP, D, 1.0f, xb, D, mk, D, 0.0f, dots, KCOMP);
        vmf__sgemm(1, 0, KCOMP, D, BATCH, 1.0f, dots, KCOMP, xb, D, 0.0f, s1, D);
        tg[r] = vmf__now() - t0;
    }
    double tpm = median3(tp), tgm = median3(tg);
    printf("partial_fit %d rows: %.4f s   sgemm same shapes: %.5f s   ratio %.1f   (%.0f rows/s)\n",
           BATCH, tpm, tgm, tpm / tgm, BATCH / tpm);

    /* predict_topk of npred rows against one GEMM of the same shape. */
    int32_t *top = malloc(npred * 5 * sizeof *top);
    double *pr = malloc(npred * 5 * sizeof *pr);
    float *allm = malloc(ncomp * D * sizeof *allm), *g = malloc(4096 * ncomp * sizeof *g);
    size_t ncls = vmf_classifier_n_classes(c);
    if (!top || !pr || !allm || !g)
        die("out of memory");
    for (size_t i = 0, at = 0; i < vmf_classifier_n_classes(c); i++) {
        const vmf_mixture *m = vmf_classifier_class_mixture(c, i);
        size_t k = vmf_mixture_n_components(m);
        memcpy(allm + at * D, vmf_mixture_means(m), k * D * sizeof *allm);
        at += k;
    }
    double tq[PREDICT_REPS], ts[PREDICT_REPS], tn[PREDICT_REPS], th_[PREDICT_REPS];
    double *nov = malloc(npred * sizeof *nov);
    if (!nov)
        die("out of memory");
    for (int r = 0; r < PREDICT_REPS; r++) {
        t0 = vmf__now();
        if (vmf_classifier_predict_topk(c, xp, npred, D, 5, top, pr) != VMF_OK)
            die("predict");
        tq[r] = vmf__now() - t0;
        t0 = vmf__now();
        if (vmf_classifier_predict_topk_novelty(c, xp, npred, D, 5, top, pr, nov) != VMF_OK)
            die("predict with novelty");
        tn[r] = vmf__now() - t0;
        t0 = vmf__now();
        for (size_t i0 = 0; i0 < npred; i0 += 4096) {
            size_t rows = npred - i0 < 4096 ? npred - i0 : 4096;
            vmf__sgemm(0, 1, rows, ncomp, D, 1.0f, xp + i0 * D, D, allm, D, 0.0f, g, ncomp);
        }
        ts[r] = vmf__now() - t0;
        /* The head's GEMM: one weight row per class (the first means stand in). */
        t0 = vmf__now();
        for (size_t i0 = 0; i0 < npred; i0 += 4096) {
            size_t rows = npred - i0 < 4096 ? npred - i0 : 4096;
            vmf__sgemm(0, 1, rows, ncls, D, 1.0f, xp + i0 * D, D, allm, D, 0.0f, g, ncls);
        }
        th_[r] = vmf__now() - t0;
    }
    size_t hit = 0;
    for (size_t i = 0; i < npred; i++)
        hit += vmf_label_table_int(vmf_classifier_labels(c), (size_t)top[i * 5]) == yp[i];
    double tqm = median_reps(tq), tsm = median_reps(ts), thm = median_reps(th_);
    /* With the head, predict's own GEMM is X·Wᵀ; without, X·Mᵀ. */
    double own = o.refine_rows > 0 ? thm : tsm, both = o.refine_rows > 0 ? thm + tsm : tsm;
    printf("sgemm %zux%dx%zu: %.3f s (%.1f GFLOP/s)   sgemm %zux%dx%zu: %.3f s\n", npred, D, ncomp,
           tsm, 2.0 * (double)npred * D * (double)ncomp / tsm * 1e-9, npred, D, ncls, thm);
    printf("predict_topk %zu rows (k=5): %.3f s   ratio to the sgemm of its shapes %.2f   "
           "(%.0f rows/s)\n",
           npred, tqm, tqm / own, npred / tqm);
    double tnm = median_reps(tn);
    printf("predict_topk_novelty %zu rows (k=5): %.3f s   ratio to the sgemm of its shapes %.2f   "
           "(novelty adds %.1f%% to predict_topk)\n",
           npred, tnm, tnm / both, 100.0 * (tnm / tqm - 1.0));
    printf("top-1 accuracy on the synthetic rows: %.4f\n", (double)hit / (double)npred);
    free(nov);
    vmf_classifier_free(c);
    free(cen);
    free(xw);
    free(xb);
    free(xp);
    free(yw);
    free(yb);
    free(yp);
    free(mk);
    free(dots);
    free(s1);
    free(top);
    free(pr);
    free(allm);
    free(g);
    return 0;
}
