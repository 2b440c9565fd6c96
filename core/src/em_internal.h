/*
 * em_internal.h - what batch EM's two files share: the buffers and result
 * of one restart, the EM loop and its E-step pass (em.c), and the
 * split-and-merge search (em_search.c). Never installed.
 */
#ifndef VMFMM_EM_INTERNAL_H
#define VMFMM_EM_INTERNAL_H

#include "internal.h"
#include "mixture_internal.h"
#include "vmfmm.h"

#include <stddef.h>

/* Buffers of one restart, sized once per fit. */
typedef struct vmf__em_work {
    double *s0;           /* [k] */
    double *s1;           /* [k][d] */
    double *row_ll;       /* [n] */
    double *kscr;         /* [k] */
    size_t *used;         /* [k] */
    vmf__bounds *bounds;  /* per-row state of the bounded E-step, or NULL (dense path) */
    vmf__bounds *sbounds; /* the same for the search sample, or NULL */
} vmf__em_work;

/* The result of one restart. */
typedef struct vmf__em_run {
    vmf_mixture *m;
    double *trace;
    size_t trace_cap;
    size_t n_iter;
    int converged;
    double loglik;
    size_t n_reseeded;
    size_t n_moves;
    size_t n_search_iter;
} vmf__em_run;

/* One E-step pass over x with the statistics of m into w (s1 may be NULL; em.c). */
int vmf__em_pass(const vmf_em_opts *o, const vmf_mixture *m, const float *x, size_t n, size_t d,
                 vmf_rng *rng, vmf__em_work *w, int full, double *s1, double *ll);

/*
 * EM from the current parameters of m on x [n][d], at most max_iter
 * iterations; `full`: x is the whole data set, otherwise the search
 * subsample (em.c, which describes the scheme).
 */
int vmf__em_loop(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                 vmf_rng *rng, vmf__em_work *w, vmf__em_run *r, size_t max_iter, int full,
                 size_t *iters, double *loglik, int *converged);

/* Whether a restart with k components runs the search (em_search.c). */
int vmf__em_use_search(const vmf_em_opts *o, size_t k);

/* Rows of the search subsample of n rows (em_search.c). */
size_t vmf__em_search_size(const vmf_em_opts *o, size_t n, size_t k, size_t d);

/* ns of the n rows of x [n][d] into out [ns][d], uniformly, in input order (em_search.c). */
void vmf__em_sample_rows(const float *x, size_t n, size_t d, size_t ns, vmf_rng *rng, float *out);

/*
 * The split-and-merge search from the current parameters of m on the
 * subsample x [n][d]; m ends at the best mixture found (em_search.c).
 */
int vmf__em_search(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                   vmf_rng *rng, vmf__em_work *w, vmf__em_run *r);

#endif
