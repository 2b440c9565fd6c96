/*
 * topk.h - the one top-k selector that every classifier's predict_topk uses
 * (topk.c): the vMF classifier, the diagonal GMM and the cosine k-NN.
 * Never installed.
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
