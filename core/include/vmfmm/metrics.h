/*
 * vmfmm/metrics.h - evaluation: top-k macro recall and accuracy for
 * classifiers, NMI and ARI for clusterings, confusion matrices.
 *
 * Classes are dense indices 0..C-1 of one evaluation label space. Predicted
 * top-k lists use the same space; -1 marks "no class" (an empty slot, or a
 * class the evaluation set does not know). Map a model's classes into the
 * evaluation space with vmf_label_table_lookup first.
 *
 * Top-k macro recall: the mean, over the classes present in y_true, of the
 * fraction of that class's rows whose true class is among the first k
 * predictions. A class the model has never seen therefore scores 0.
 */
#ifndef VMFMM_METRICS_H
#define VMFMM_METRICS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * y_true [n] in [0, n_classes); topk [n][width] with k <= width; only the
 * first k columns are read, each -1 or in [0, n_classes) (accuracy: >= -1).
 * A class listed twice in a row counts once. VMF_EINVAL for n == 0, k == 0,
 * k > width, NULL pointers or a label out of range; *out is written only on
 * success.
 */
VMF_API int vmf_topk_macro_recall(const int32_t *y_true, size_t n, size_t n_classes,
                                  const int32_t *topk, size_t width, size_t k, double *out);
VMF_API int vmf_topk_accuracy(const int32_t *y_true, size_t n, const int32_t *topk, size_t width,
                              size_t k, double *out);

/*
 * Clustering metrics over two labellings a, b [n] of arbitrary int32 values
 * (computed from a sparse contingency table: O(n log n) time, O(n) memory).
 * n == 0 is VMF_EINVAL.
 *
 * NMI: I(a;b) / ((H(a) + H(b)) / 2), arithmetic-mean normalization as
 * scikit-learn's default; 1 when both labellings are a single cluster, 0 when
 * exactly one is; clamped to [0, 1] against rounding.
 */
VMF_API int vmf_nmi(const int32_t *a, const int32_t *b, size_t n, double *out);

/*
 * Adjusted Rand index (Hubert & Arabie 1985), from the pair confusion matrix;
 * 1 when no pair of rows is split differently by a and b (n = 1, both single
 * clusters, both all singletons), as scikit-learn.
 */
VMF_API int vmf_ari(const int32_t *a, const int32_t *b, size_t n, double *out);

/* Purity: fraction of rows whose cluster's majority class is their class. */
VMF_API int vmf_purity(const int32_t *y_true, const int32_t *clusters, size_t n, double *out);

/*
 * Counts into conf [n_classes][n_classes]: row = true class, column = predicted
 * (predictions of -1 are not counted).
 */
VMF_API int vmf_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, size_t n,
                                 size_t n_classes, uint64_t *conf);

#ifdef __cplusplus
}
#endif
#endif
