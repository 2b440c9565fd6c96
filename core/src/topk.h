/*
 * topk.h - what the three classifiers' predict functions share (topk.c):
 * the checks of their arguments and the one top-k selector of the vMF
 * classifier, the diagonal GMM and the cosine k-NN. Never installed.
 *
 * The rule, which is what vmfmm/classifier.h and vmfmm/baselines.h promise:
 * the min(k, n) best of n items, best first; items that rank equal keep
 * the lower index first (so the same scores always give the same list);
 * the slots from min(k, n) to k - 1 get -1. Items are class indices and
 * must fit in int32_t. Ranks must come from a strict weak order (scores
 * without NaN, which the callers guarantee by checking their input).
 */
#ifndef VMFMM_TOPK_H
#define VMFMM_TOPK_H

#include <stddef.h>
#include <stdint.h>

/*
 * The rows every predict function checks, in this order: n = 0 is a no-op
 * (VMF_OK whatever the rest), then d must be the model's, x not NULL, and
 * the rows unit and finite (vmf_rows_check's message after "fn: ").
 * VMF_EINVAL with "fn: ..." otherwise.
 */
int vmf__predict_check_rows(const char *fn, size_t model_d, const float *x, size_t n, size_t d);

/*
 * predict_topk's arguments: k >= 1 (even for n = 0), then for n > 0 a
 * classes array, n x k without overflow, and the rows as above.
 */
int vmf__topk_check(const char *fn, size_t model_d, const float *x, size_t n, size_t d, size_t k,
                    const int32_t *classes);

/*
 * The same checks in the same order, but the rows' values are left to the
 * caller, who checks each block with vmf__predict_check_block just before
 * it uses it (the rows then come from memory once). A bad row is then
 * found after the rows before it have been predicted, so the outputs of
 * those may have been written; the error is the same.
 */
int vmf__topk_check_args(const char *fn, size_t model_d, const float *x, size_t n, size_t d,
                         size_t k, const int32_t *classes);
int vmf__predict_check_args(const char *fn, size_t model_d, const float *x, size_t n, size_t d);

/* The values of rows first .. first + n - 1, x [n][d]; "fn: row i ..." on failure. */
int vmf__predict_check_block(const char *fn, const float *x, size_t n, size_t d, size_t first);

/* Non-zero when item a ranks strictly before item b (ties return 0 both ways). */
typedef int (*vmf__topk_before)(const void *ctx, size_t a, size_t b);

/*
 * Writes the indices of the m = min(k, n) best of items 0 .. n-1 into
 * top [k], best first, ties to the lower index, and -1 into top[m .. k-1];
 * returns m. Allocates nothing. Insertion into a sorted prefix for m <= 16
 * (O(n m) at worst, O(n) typically), a bounded heap above (O(n log m)).
 */
size_t vmf__topk(size_t n, size_t k, vmf__topk_before before, const void *ctx, int32_t *top);

/* vmf__topk ranking score [n] from the highest down. */
size_t vmf__topk_scores(const double *score, size_t n, size_t k, int32_t *top);

#endif
