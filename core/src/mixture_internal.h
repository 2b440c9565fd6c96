/*
 * mixture_internal.h - the representation of vmf_mixture and the blocked
 * E-step / M-step kernels shared by batch EM (em.c), stepwise EM and the
 * classifier. Never installed; include it after internal.h.
 *
 * Conventions: means are float [k][d] unit rows; weights, kappas and every
 * sum are double. A "block" is a run of at most `block_rows` consecutive rows
 * whose scratch is O(block_rows·k + k·d); nothing here allocates O(n·k).
 * Partial sums over blocks are added to double accumulators in block order,
 * so every result is deterministic for a given input and BLAS thread count.
 */
#ifndef VMFMM_MIXTURE_INTERNAL_H
#define VMFMM_MIXTURE_INTERNAL_H

#include "vmfmm.h"

#include <stddef.h>

struct vmf_mixture {
    size_t k;         /* components, >= 1 */
    size_t d;         /* dimension, >= 2 */
    int tied;         /* non-zero: all kappas are equal and count as one parameter */
    double *weights;  /* [k], non-negative, sum 1 */
    float *means;     /* [k][d], unit rows */
    double *kappas;   /* [k], finite, >= 0 */
    double *log_coef; /* [k] cache: log w_k + log C_d(kappa_k); see vmf__mixture_refresh */
};

/* Default rows per block when a caller passes block_rows = 0. */
#define VMF__BLOCK_ROWS 4096

/*
 * Allocates a mixture with uninitialized parameters (weights 1/k, kappas 0,
 * means zero, tied 0) for the caller to fill, then vmf__mixture_refresh.
 * k >= 1 and d >= 2, else VMF_EINVAL; VMF_ENOMEM on allocation failure.
 */
int vmf__mixture_alloc(size_t k, size_t d, vmf_mixture **out);

/* Recomputes the cached log_coef after parameters changed in place. */
void vmf__mixture_refresh(vmf_mixture *m);

/*
 * Validates and copies parameters into a new mixture (mixture.c): weights
 * [k], means [k][d], kappas [k]; `what` names the source in messages. The
 * constructor behind vmf_mixture_new and the JSON reader.
 */
int vmf__mixture_build(size_t k, size_t d, const double *weights, const float *means,
                       const double *kappas, int tied, const char *what, vmf_mixture **out);

/*
 * Log joint densities of a block: dots [rows][k] (float scratch) receives
 * X·Mᵀ through one sgemm, then logp [rows][k] = log_coef[k] + kappa_k·dot
 * in double. x [rows][d] with d = m->d, unchecked.
 */
void vmf__mixture_log_joint_block(const vmf_mixture *m, const float *x, size_t rows, float *dots,
                                  double *logp);

/*
 * The fast row kernel of the E-step: on entry dots [rows][k] holds X·Mᵀ of a
 * block; on exit it holds the responsibilities of `mode` (soft: posteriors;
 * hard: one-hot argmax, ties to the lowest index; stochastic: one-hot draw
 * from the posterior, one vmf_rng_uniform per row in row order), and
 * row_loglik [rows] (may be NULL) holds log p(x_i). `lsc` is double scratch
 * [k]. Returns the sum of log p(x_i) over the block (double, row order).
 * The exponentials are evaluated in float (vectorized, relative error
 * < 2^-23) after subtracting the row maximum in double, and the normalizer is
 * accumulated in double: log p is exact to ~1e-7 absolute, below the
 * float32 error of the dot products themselves (about kappa·2^-24·sqrt(d)).
 */
double vmf__mixture_resp_block(const vmf_mixture *m, size_t rows, vmf_assignment mode, vmf_rng *rng,
                               float *dots, double *lsc, double *row_loglik);

/* Rows per E-step block: block_rows (VMF__BLOCK_ROWS when 0), at most n, at least 1. */
size_t vmf__estep_block_rows(size_t n, size_t block_rows);

/*
 * Adds a block's soft sufficient statistics: s0 [k] += the column sums of
 * the responsibilities r [rows][k] (in row order), and, when s1 is not NULL,
 * s1 [k][d] += rᵀ · xb [rows][d], one SGEMM into the float scratch
 * s1b [k][d] widened to double. The batch E-step and the bounded one
 * (bounds.c) share it, so both accumulate in the same order.
 */
void vmf__mixture_accum_soft(const float *r, const float *xb, size_t rows, size_t k, size_t d,
                             float *s1b, double *s0, double *s1);

/*
 * One blocked E-step pass over x [n][d] (unit rows, unchecked) with
 * assignment `mode` (rng used only for VMF_ASSIGN_STOCHASTIC, may be NULL
 * otherwise). Overwrites:
 *   s0 [k]      = sum_i r_ik                     (masses)
 *   s1 [k][d]   = sum_i r_ik x_i  = Rᵀ·X         (double; per block an sgemm into a
 *                                                 float scratch, added in block order;
 *                                                 hard/stochastic add rows in double)
 *   *loglik_sum = sum_i log p(x_i)               (may be NULL)
 *   row_loglik [n] = log p(x_i)                  (may be NULL)
 * s1 may be NULL to skip the M-step product (only the likelihood is wanted).
 * block_rows = 0 means VMF__BLOCK_ROWS. Returns VMF_OK or VMF_ENOMEM.
 */
int vmf__mixture_estep_stats(const vmf_mixture *m, const float *x, size_t n, size_t d,
                             vmf_assignment mode, vmf_rng *rng, size_t block_rows, double *s0,
                             double *s1, double *loglik_sum, double *row_loglik);

/*
 * Per-row state of the bounded E-step (vmf__mixture_estep_bounded): for
 * every row its dominant component and an upper bound on the log joint
 * density of every other component, valid for the parameters of the pass
 * that last wrote them. Create with vmf__bounds_new (n rows, k components),
 * free with vmf__bounds_free.
 */
typedef struct vmf__bounds vmf__bounds;
int vmf__bounds_new(size_t n, size_t k, size_t d, vmf__bounds **out);
void vmf__bounds_free(vmf__bounds *b);
/* Forgets the bounds: the next pass evaluates every row. */
void vmf__bounds_reset(vmf__bounds *b);

/*
 * vmf__mixture_estep_stats for soft EM with skipping: a row whose other
 * components provably (see bounds.c) have responsibilities summing to
 * under 2^-24 costs one dot product and
 * counts fully for its dominant component; the others go through the GEMMs
 * as usual, gathered into blocks. s1 may be NULL. The state b carries the
 * bounds from pass to pass (the first pass over b evaluates every row).
 */
int vmf__mixture_estep_bounded(const vmf_mixture *m, const float *x, size_t n, size_t d,
                               size_t block_rows, vmf__bounds *b, double *s0, double *s1,
                               double *loglik_sum, double *row_loglik);

/* Fraction of the row visits of the passes over b that were skipped. */
double vmf__bounds_skipped(const vmf__bounds *b);

/*
 * M-step from statistics: weights = s0 / sum(s0); mean_k = s1_k / |s1_k|
 * (kept unchanged when |s1_k| == 0); kappa_k = vmf_kappa_estimate(kopts, d,
 * s0_k, |s1_k|), or with `tied` one kappa from (sum s0, sum_k |s1_k|).
 * s0 is in units of rows (the mass the shrinkage prior is weighed against).
 * Refreshes the caches. Returns VMF_OK, or VMF_EINVAL if sum(s0) <= 0 or
 * the kappa estimator rejects its input.
 */
int vmf__mixture_mstep(vmf_mixture *m, const double *s0, const double *s1,
                       const vmf_kappa_opts *kopts, int tied);

/*
 * k-means++ seeding on the sphere (Arthur & Vassilvitskii 2007) with the
 * distance 1 - x^T mu (= half the squared chord): the first mean is a uniform
 * row, each next one the best (lowest total distance after adding it) of
 * 2 + floor(ln k) candidates, each drawn with probability proportional to
 * its distance to the nearest chosen mean (uniform when all distances are
 * 0); the greedy variant of scikit-learn. x [n][d], n >= k >= 1; writes
 * means [k][d]. One pass over x per mean; scratch O(n (3 + log k)) floats.
 */
int vmf__kmeanspp(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means);

/* k distinct uniformly drawn rows of x [n][d] (Floyd's algorithm) into means [k][d]. */
int vmf__random_rows(const float *x, size_t n, size_t d, size_t k, vmf_rng *rng, float *means);

/*
 * Mixture JSON as a jansson object and back, for embedding in other model
 * forms (the classifier's "mixture" members). `where` prefixes error
 * messages, e.g. "classes[2].mixture". The functions take json_t * as void *
 * so that this header does not need jansson.h.
 */
int vmf__mixture_to_json_obj(const vmf_mixture *m, void **obj);
int vmf__mixture_from_json_obj(const void *obj, const char *where, vmf_mixture **out);

#endif
