/*
 * vmfmm/baselines.h - the models vMF must beat, with the classifier interface
 * of vmfmm/classifier.h (labels in, class indices into a vmf_label_table out).
 *
 * vmf_gmm_classifier: one diagonal-covariance Gaussian mixture per class (batch
 * EM, k-means++ init, variance floor `reg_covar` added to every variance, up
 * to k_max components per class, fewer when a class has few rows: class c of
 * n_c rows gets min(k_max, max(1, n_c / 10)) components) plus class priors
 * from counts: the production model that vMF replaces. It is refit on all rows
 * it is given.
 *
 * vmf_knn_classifier: cosine k-NN over stored rows, similarities by GEMM blocks,
 * each of the k neighbours voting with weight exp((sim - 1) / 0.02); top-k
 * classes with their share of the vote, then the classes without a vote
 * (probability 0) ranked by their nearest stored row. Rows are added
 * incrementally; with reservoir_per_class > 0 each class keeps a uniform
 * reservoir sample of that size (seeded, deterministic).
 *
 * Both: rows must be unit vectors (vmf_rows_check); bad input is VMF_EINVAL
 * with a message and changes nothing. predict_topk writes classes [n][k]
 * (indices into the model's label table) and proba [n][k] (may be NULL), best
 * first, equal ranks lower class index first; slots beyond the known classes
 * get -1 and 0; n = 0 is a no-op.
 * Predict functions only read the model and may run concurrently.
 */
#ifndef VMFMM_BASELINES_H
#define VMFMM_BASELINES_H

#include "common.h"
#include "labels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_gmm_classifier vmf_gmm_classifier;

typedef struct vmf_gmm_opts {
    size_t k_max;     /* components per class at most, default 5 */
    size_t max_iter;  /* default 100 */
    double tol;       /* on the mean log-likelihood per class, default 1e-4 */
    double reg_covar; /* variance floor, default 1e-6 */
    uint64_t seed;    /* default 42 */
    /*
     * NULL (default), or an earlier fit of the same dimension, borrowed for
     * the duration of the fit: a class it knows, with as many components as
     * the class is allowed now, starts EM from its weights, means and
     * variances instead of k-means++ (a warm start: daily refits on a
     * growing set of rows then need a few EM iterations).
     */
    const struct vmf_gmm_classifier *warm_start;
} vmf_gmm_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_gmm_opts_init(vmf_gmm_opts *o);
VMF_API int vmf_gmm_classifier_fit(const vmf_gmm_opts *o, const float *x, size_t n, size_t d,
                                   const vmf_labels *y, vmf_gmm_classifier **out);
VMF_API void vmf_gmm_classifier_free(vmf_gmm_classifier *g);
VMF_API int vmf_gmm_classifier_predict_topk(const vmf_gmm_classifier *g, const float *x, size_t n,
                                            size_t d, size_t k, int32_t *classes, double *proba);
VMF_API const vmf_label_table *vmf_gmm_classifier_labels(const vmf_gmm_classifier *g);

/*
 * Inspection of a fitted model (borrowed pointers, valid until it is freed;
 * out-of-range class indices give 0 / NULL). Class i has
 * vmf_gmm_classifier_class_n_components(g, i) components with weights [k],
 * means [k][d] and variances [k][d] (reg_covar included) in the input space.
 */
VMF_API size_t vmf_gmm_classifier_dim(const vmf_gmm_classifier *g);
VMF_API size_t vmf_gmm_classifier_n_classes(const vmf_gmm_classifier *g);
VMF_API size_t vmf_gmm_classifier_class_n_components(const vmf_gmm_classifier *g, size_t i);
VMF_API double vmf_gmm_classifier_class_prior(const vmf_gmm_classifier *g, size_t i);
VMF_API const double *vmf_gmm_classifier_class_weights(const vmf_gmm_classifier *g, size_t i);
VMF_API const double *vmf_gmm_classifier_class_means(const vmf_gmm_classifier *g, size_t i);
VMF_API const double *vmf_gmm_classifier_class_variances(const vmf_gmm_classifier *g, size_t i);
/* EM iterations run, whether tol was reached, final mean log-likelihood per row. */
VMF_API int vmf_gmm_classifier_class_fit_info(const vmf_gmm_classifier *g, size_t i, size_t *n_iter,
                                              int *converged, double *loglik);

typedef struct vmf_knn_classifier vmf_knn_classifier;

typedef struct vmf_knn_opts {
    size_t k;                   /* neighbours, default 10 */
    size_t reservoir_per_class; /* 0 = keep all rows (default) */
    uint64_t seed;              /* reservoir sampling, default 42 */
} vmf_knn_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_knn_opts_init(vmf_knn_opts *o);
VMF_API int vmf_knn_classifier_new(const vmf_knn_opts *o, size_t d, vmf_knn_classifier **out);
VMF_API void vmf_knn_classifier_free(vmf_knn_classifier *m);
/* Adds rows x [n][d] (unit rows, checked) with labels; all-or-nothing. */
VMF_API int vmf_knn_classifier_add(vmf_knn_classifier *m, const float *x, size_t n, size_t d,
                                   const vmf_labels *y);
VMF_API int vmf_knn_classifier_predict_topk(const vmf_knn_classifier *m, const float *x, size_t n,
                                            size_t d, size_t k, int32_t *classes, double *proba);
VMF_API const vmf_label_table *vmf_knn_classifier_labels(const vmf_knn_classifier *m);
VMF_API size_t vmf_knn_classifier_n_rows(const vmf_knn_classifier *m);
VMF_API size_t vmf_knn_classifier_dim(const vmf_knn_classifier *m);
/*
 * The stored rows [n_rows][d] and their class indices [n_rows] (borrowed, valid
 * until the next add or free). With reservoirs, slots are overwritten in place.
 */
VMF_API const float *vmf_knn_classifier_rows(const vmf_knn_classifier *m);
VMF_API const int32_t *vmf_knn_classifier_row_classes(const vmf_knn_classifier *m);

#ifdef __cplusplus
}
#endif
#endif
