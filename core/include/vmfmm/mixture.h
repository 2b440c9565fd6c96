/*
 * vmfmm/mixture.h - a mixture of von Mises-Fisher distributions and its batch
 * EM fit (Banerjee, Dhillon, Ghosh & Sra 2005).
 *
 *     p(x) = sum_k w_k C_d(kappa_k) exp(kappa_k mu_k^T x),  x on S^{d-1}.
 *
 * Computation: the E-step is the GEMM X · Mᵀ and the M-step is Rᵀ · X, both
 * through cblas_sgemm, blocked over `block_rows` rows so that memory is
 * O(block_rows·K + K·d) however many rows there are. Partial sums over blocks
 * are combined in double, in block order, so a fit is bit-for-bit
 * deterministic for a given seed, input and BLAS thread count.
 *
 * Convergence: EM stops when the change of the mean per-sample
 * log-likelihood L falls below tol * max(1, |L|) (a relative rule: the
 * float32 resolution of L grows with |L|, about 1,600 nats per row at
 * d = 768, where an absolute 1e-6 is never met), or below tol itself with
 * tol_absolute (the rule of version 0.1). tol = 0 runs exactly max_iter
 * iterations of plain EM. `converged` is 1 only when the rule triggered.
 *
 * Default fit (search = 1, soft EM, tol > 0, K >= 2): seeding (k-means++ or
 * random, or the given means) and EM run on a uniform subsample of
 * search_rows rows (512 K, at least 4096, all rows when fewer); then a
 * split-and-merge search: a component whose largest tangent variance
 * exceeds what one vMF shows (the Marchenko-Pastur edge of its sample, by
 * a factor 1.3) covers more than one cluster and is split along that
 * direction, a starved component or the merge of the pair losing least
 * expected complete-data log-likelihood freeing a slot for it; moves are
 * kept only when the likelihood rises (em_search.c). EM on all rows then starts
 * from the result. This recovers clusters that seeding misses in high
 * dimension, where a single row seeds too noisy a mean to attract its
 * cluster. search = 0 gives plain EM from the seeding.
 *
 * Bounded E-step (exact = 0, the default for soft EM): on all rows, a row
 * whose other components provably carry under 2^-24 of its mass in total
 * costs one dot product instead of its share of the two GEMMs (bounds.c
 * argues the bound and the truncation: the log-likelihood moves by less
 * than 1e-7 per row). exact = 1 keeps every responsibility of every row.
 *
 * Empty and collapsing components: after each M-step a component whose mass is
 * below `min_mass` (vmf_em_opts, default 0.5) is re-seeded
 * at the worst-explained row of the data (lowest log-likelihood, ties to the
 * lowest index), with the median kappa of the other components and weight
 * 1/n; kappa is estimated with the shrinkage of vmfmm/kappa.h and clamped to
 * kappa_max, so a component on a single point cannot reach kappa = infinity.
 * Precisely: starved components are handled in index order, each taking the
 * worst row not taken in the same step, "worst" under the parameters of the
 * pass that produced the statistics; "the others" are the components not
 * re-seeded in that step (median of an even count: mean of the two middle
 * values; kappa unchanged if none); the weights are renormalized afterwards.
 * The rule also runs after the initial M-step (see em.c). The default stays
 * below 1 on purpose: a component re-seeded onto an outlier row keeps about
 * that one row's mass, slightly less than 1, so a threshold of 1 would move
 * it again at the next M-step and EM could cycle.
 *
 * Thread safety: a mixture is not changed by the scoring functions, which may
 * run concurrently on one mixture; fitting creates a new object.
 */
#ifndef VMFMM_MIXTURE_H
#define VMFMM_MIXTURE_H

#include "common.h"
#include "kappa.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_mixture vmf_mixture;

typedef enum vmf_assignment {
    VMF_ASSIGN_SOFT = 0,      /* responsibilities (classic EM) */
    VMF_ASSIGN_HARD = 1,      /* each row to its most probable component */
    VMF_ASSIGN_STOCHASTIC = 2 /* each row to a component drawn from its posterior */
} vmf_assignment;

typedef enum vmf_init {
    VMF_INIT_KMEANSPP = 0, /* k-means++ seeding with cosine distance 1 - x^T mu */
    VMF_INIT_RANDOM = 1,   /* K distinct random rows */
    VMF_INIT_GIVEN = 2     /* means from vmf_em_opts.init_means */
} vmf_init;

typedef struct vmf_em_opts {
    size_t n_components;       /* K >= 1, default 5 */
    size_t max_iter;           /* default 100 */
    double tol;                /* on the mean log-likelihood; default 1e-6 */
    size_t n_init;             /* restarts, the best log-likelihood kept; default 1 */
    vmf_assignment assignment; /* default VMF_ASSIGN_SOFT */
    vmf_init init;             /* default VMF_INIT_KMEANSPP */
    const float *init_means;   /* [K][d], borrowed, for VMF_INIT_GIVEN */
    int tied_kappa;            /* non-zero: one kappa shared by all components */
    vmf_kappa_opts kappa;      /* estimator, shrinkage prior, clamps */
    double min_mass;           /* re-seed a component below this mass; default 0.5 */
    uint64_t seed;             /* default 42 */
    size_t block_rows;         /* rows per GEMM block; default 4096 */
    /* Fields added in 0.2; vmf_em_opts_init fills them. */
    int tol_absolute; /* non-zero: tol is absolute (the 0.1 rule); default 0: relative, see above */
    int search;       /* split-and-merge search after EM (see above); default 1 */
    size_t search_rows; /* rows of the search subsample; 0 (default): 512 K, at least 4096 */
    int exact;          /* non-zero: every responsibility of every row (the dense path);
                           default 0: bounded E-step and sparse M-step (see above) */
    /* Called after every full-data iteration (may be NULL): iteration, mean log-likelihood,
       its change. Runs on the fitting thread. */
    void (*progress)(void *ctx, size_t iter, double loglik, double change);
    void *progress_ctx;
} vmf_em_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_em_opts_init(vmf_em_opts *o);

/* What a fit did. Release `trace` with vmf_em_report_free. */
typedef struct vmf_em_report {
    size_t n_iter;     /* iterations of the kept restart */
    int converged;     /* 1 when tol was met before max_iter */
    double loglik;     /* final mean per-sample log-likelihood */
    double *trace;     /* [n_iter] mean log-likelihood after each iteration, owned */
    size_t n_reseeded; /* component re-seedings in the kept restart */
    size_t best_init;  /* index of the kept restart */
    double seconds;    /* wall time of the whole fit */
    /* Fields added in 0.2. */
    size_t n_moves;       /* accepted split-and-merge moves in the kept restart */
    size_t n_search_iter; /* EM iterations of the search (on its subsample) */
    double skipped_rows;  /* fraction of row visits the bounded E-step skipped */
} vmf_em_report;

VMF_API void vmf_em_report_free(vmf_em_report *r);

/*
 * Creates a mixture from parameters, all copied: weights [k] (non-negative,
 * normalized on the way in), means [k][d] (unit norm, 1e-3 tolerance, stored
 * renormalized), kappas [k] (finite, >= 0). VMF_EINVAL on bad parameters.
 */
VMF_API int vmf_mixture_new(size_t k, size_t d, const double *weights, const float *means,
                            const double *kappas, vmf_mixture **out);

VMF_API void vmf_mixture_free(vmf_mixture *m);

/* Deep copy. */
VMF_API int vmf_mixture_copy(const vmf_mixture *m, vmf_mixture **out);

/*
 * Fits a K-component mixture to x [n][d] (unit rows, checked). n must be >= K.
 * On success *out is a new mixture owned by the caller and `report` (may be
 * NULL) is filled. On failure *out is NULL and report is zeroed.
 */
VMF_API int vmf_mixture_fit(const vmf_em_opts *o, const float *x, size_t n, size_t d,
                            vmf_mixture **out, vmf_em_report *report);

/* Accessors; returned arrays are borrowed, valid until the mixture is freed. */
VMF_API size_t vmf_mixture_n_components(const vmf_mixture *m);
VMF_API size_t vmf_mixture_dim(const vmf_mixture *m);
VMF_API const double *vmf_mixture_weights(const vmf_mixture *m); /* [k] */
VMF_API const float *vmf_mixture_means(const vmf_mixture *m);    /* [k][d] */
VMF_API const double *vmf_mixture_kappas(const vmf_mixture *m);  /* [k] */
VMF_API int vmf_mixture_tied_kappa(const vmf_mixture *m);

/* Free parameters: (K - 1) weights + K (d - 1) mean directions + K kappas (1 if tied). */
VMF_API size_t vmf_mixture_n_params(const vmf_mixture *m);

/* log p(x_i) for each row of x [n][d] into out [n]. */
VMF_API int vmf_mixture_score_samples(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                      double *out);

/* Mean of log p(x_i) over the rows. */
VMF_API int vmf_mixture_mean_loglik(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                    double *out);

/* Most probable component of each row into labels [n] (ties: lowest index). */
VMF_API int vmf_mixture_predict(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                int32_t *labels);

/* Posterior responsibilities into proba [n][k] (rows sum to 1). */
VMF_API int vmf_mixture_predict_proba(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                      double *proba);

/*
 * log( w_k C_d(kappa_k) exp(kappa_k mu_k^T x_i) ) into out [n][k]: the
 * per-component joint log densities that the scoring functions reduce.
 */
VMF_API int vmf_mixture_log_joint(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                  double *out);

/* BIC = -2 L + p log n and AIC = -2 L + 2 p, L the total log-likelihood of x. */
VMF_API int vmf_mixture_information_criteria(const vmf_mixture *m, const float *x, size_t n,
                                             size_t d, double *bic, double *aic);

/*
 * Draws n rows from the mixture into x [n][d]; component of each into comp [n]
 * (may be NULL).
 */
VMF_API int vmf_mixture_sample(const vmf_mixture *m, size_t n, vmf_rng *rng, float *x,
                               int32_t *comp);

/*
 * Model JSON, mixture form: {"format":"vmfmm-model","version":1,"kind":"mixture",
 * "dim","n_components","tied_kappa","weights":[..],"kappas":[..],"means":[[..],..]}.
 * Floats are printed so that they parse back to the same bits. *json is
 * malloc'ed (caller frees). from_json validates everything (VMF_EFORMAT with a
 * message naming the field).
 */
VMF_API int vmf_mixture_to_json(const vmf_mixture *m, char **json);
VMF_API int vmf_mixture_from_json(const char *json, size_t len, vmf_mixture **out);

#ifdef __cplusplus
}
#endif
#endif
