/*
 * vmfmm/suffstats.h - what a distributed or out-of-core driver of batch EM
 * needs from the library: the partial sufficient statistics of a block of
 * rows, summed exactly; an M-step (with the re-seeding rule of
 * vmfmm/mixture.h) from given statistics; deterministic seeding from a
 * sample of rows; and a seeded, order-independent row sample.
 *
 * Batch EM needs per iteration only, summed over all rows,
 *     s0[k]    = sum_i r_ik                (mass)
 *     s1[k][d] = sum_i r_ik x_i            (vector sum)
 *     L        = sum_i log p(x_i)          (log-likelihood of the current parameters)
 * plus, for the re-seeding rule, the K worst-explained rows (lowest log
 * p(x_i), ties to the lowest row id). A vmf_suffstats holds these for any
 * subset of the rows, so a driver can stream a file block by block, or split
 * rows across processes, and combine the partial results.
 *
 * Exact summation. Each block's partial statistics (computed by the blocked
 * E-step kernel of batch EM, in float32 GEMMs with double accumulation) are
 * converted to a fixed-point number of four 32-bit digits (weights 2^32, 1,
 * 2^-32, 2^-64; truncated toward zero below 2^-64) kept in int64 words, and
 * added as integers. Integer addition is associative, so the total does not
 * depend on the order in which blocks are added or on how they are grouped:
 * the statistics of a data set are the same bits whether its blocks are
 * added by one process in file order or by N processes whose words are
 * summed element-wise (e.g. by MPI_Allreduce with MPI_SUM on MPI_INT64_T).
 * What the result does depend on is the set of blocks, i.e. the block
 * boundaries in each input: the kernel's float32 GEMM of a block is not
 * split-invariant. Compared with vmf_mixture_fit on the same rows in memory
 * (which sums blocks in double, in order) the statistics differ by rounding
 * only (about 1e-16 relative per block plus 2^-64 absolute).
 *
 * Ranges: a block's statistics must be below 2^60 in magnitude (they are
 * bounded by its row count and log-likelihood); words of up to 2^31 added
 * sets cannot overflow.
 *
 * Thread safety: an object may be used by one thread at a time; distinct
 * objects are independent.
 */
#ifndef VMFMM_SUFFSTATS_H
#define VMFMM_SUFFSTATS_H

#include "common.h"
#include "mixture.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_suffstats vmf_suffstats;

/* Words per statistic in the exact representation. */
#define VMF_SUFFSTATS_LIMBS 4

/*
 * A zeroed accumulator for K components in dimension d (K >= 1, d >= 2).
 * It also keeps up to K worst-explained rows ([K][d] floats).
 */
VMF_API int vmf_suffstats_new(size_t k, size_t d, vmf_suffstats **out);
VMF_API void vmf_suffstats_free(vmf_suffstats *s);

/* Resets to zero rows (statistics and worst-row candidates). */
VMF_API void vmf_suffstats_clear(vmf_suffstats *s);

/* Flags of vmf_suffstats_add_block. */
#define VMF_SUFFSTATS_S1 1u /* compute s1 = Rᵀ·X (without it: a likelihood-only pass) */
#define VMF_SUFFSTATS_TRUSTED                                                                      \
    2u /* rows were checked (finite, unit) by the caller: skip the check */

/*
 * Runs the E-step of mixture m (its K and d must match) on the block x
 * [rows][d] (unit rows, checked unless VMF_SUFFSTATS_TRUSTED: VMF_EINVAL
 * names the row) with assignment `mode` and adds its statistics exactly.
 * rng is used only for VMF_ASSIGN_STOCHASTIC (one uniform per row, in row
 * order). Row ids (for the worst-row candidates and their ties) are ids[i]
 * when ids is not NULL, else first_id + i. Without VMF_SUFFSTATS_S1 in
 * flags the Rᵀ·X product is skipped (s1 then stays as it was). The block is
 * one GEMM, so its size is the caller's block size. rows = 0 is a no-op.
 * Returns VMF_OK, VMF_EINVAL or VMF_ENOMEM.
 */
VMF_API int vmf_suffstats_add_block(vmf_suffstats *s, const vmf_mixture *m, const float *x,
                                    size_t rows, size_t d, vmf_assignment mode, vmf_rng *rng,
                                    uint64_t first_id, const uint64_t *ids, unsigned flags);

/* Adds src into dst exactly (same K and d): statistics and worst-row candidates. */
VMF_API int vmf_suffstats_merge(vmf_suffstats *dst, const vmf_suffstats *src);

/*
 * The exact representation, for a transport: *n words laid out as
 * [K + K·d + 2 statistics (s0, s1, loglik, rows)][VMF_SUFFSTATS_LIMBS].
 * The pointer is borrowed and may be written: summing the words of several
 * accumulators element-wise with int64 addition (in any order) yields the
 * words of their union. Call vmf_suffstats_normalize before reading them,
 * so that each word is small enough for such a sum.
 */
VMF_API int64_t *vmf_suffstats_words(vmf_suffstats *s, size_t *n);
VMF_API void vmf_suffstats_normalize(vmf_suffstats *s);

/*
 * The totals rounded to double: s0 [k], s1 [k][d], *loglik (sum of log
 * p(x_i)) and *rows (the row count); any output may be NULL.
 */
VMF_API void vmf_suffstats_totals(vmf_suffstats *s, double *s0, double *s1, double *loglik,
                                  double *rows);

/*
 * The worst-explained rows seen so far, sorted by (log p, id): *count <= K
 * entries of ll [count], ids [count] and rows [count][d] (borrowed, valid
 * until the next change). vmf_suffstats_offer_worst merges candidates from
 * elsewhere (another process): the kept set is always the K smallest by
 * (log p, id) of everything offered, whatever the order. Ids must be
 * distinct across the data set.
 */
VMF_API void vmf_suffstats_worst(vmf_suffstats *s, size_t *count, const double **ll,
                                 const uint64_t **ids, const float **rows);
VMF_API int vmf_suffstats_offer_worst(vmf_suffstats *s, size_t count, const double *ll,
                                      const uint64_t *ids, const float *rows);

/*
 * The M-step of batch EM from statistics s (collected with want_s1 under the
 * mixture's previous parameters), in place: weights, means and kappas from
 * (s0, s1) as vmf_mixture_fit does (o->kappa, o->tied_kappa), then the
 * re-seeding rule of vmfmm/mixture.h with o->min_mass, the worst-row
 * candidates of s, and the row count of s as n. *n_reseeded (may be NULL)
 * receives the number of components moved. m must not be used by another
 * thread meanwhile. VMF_EINVAL when s holds no mass.
 */
VMF_API int vmf_suffstats_mstep(vmf_suffstats *s, const vmf_em_opts *o, vmf_mixture *m,
                                size_t *n_reseeded);

/*
 * The starting mixture of one EM restart, as vmf_mixture_fit builds it:
 * means by o->init (k-means++ or random rows drawn from sample [m][d] with
 * rng, or o->init_means), weights 1/K and kappas 1, ready for the first hard
 * pass. sample must hold unit rows and m >= K (except for VMF_INIT_GIVEN).
 * When the sample is the whole data set in order and rng is the restart's
 * generator, the means are those vmf_mixture_fit starts from.
 */
VMF_API int vmf_em_init_mixture(const vmf_em_opts *o, const float *sample, size_t m, size_t d,
                                vmf_rng *rng, vmf_mixture **out);

/*
 * A 64-bit key of row `id` under `seed` (the splitmix64 finalizer of
 * seed·φ + id, φ the 64-bit golden ratio): a fixed pseudo-random function,
 * the same on every platform, used to draw row samples and held-out splits
 * without looking at the data or at the order rows arrive in.
 */
VMF_API uint64_t vmf_row_key(uint64_t seed, uint64_t id);

/*
 * A seeded uniform sample of `cap` rows from a stream: the rows whose keys
 * vmf_row_key(seed, id) are the `cap` smallest. It is a function of the set
 * of (id, row) pairs offered, not of their order or of how they were split
 * among processes (a "bottom-k" sketch). Memory O(cap·d).
 */
typedef struct vmf_row_sample vmf_row_sample;

VMF_API int vmf_row_sample_new(size_t cap, size_t d, uint64_t seed, vmf_row_sample **out);
VMF_API void vmf_row_sample_free(vmf_row_sample *s);

/* Offers rows x [rows][d] with ids as in vmf_suffstats_add_block. */
VMF_API int vmf_row_sample_offer(vmf_row_sample *s, const float *x, size_t rows, size_t d,
                                 uint64_t first_id, const uint64_t *ids);

/*
 * Keeps only the entries whose key is <= max_key and sorts them by id; then
 * the accessor gives *count entries: keys [count], ids [count] and rows
 * [count][d] (borrowed). vmf_row_sample_keys gives the keys of the current
 * entries (unsorted) for a transport to find the global cap-th key.
 */
VMF_API void vmf_row_sample_finish(vmf_row_sample *s, uint64_t max_key);
VMF_API void vmf_row_sample_get(const vmf_row_sample *s, size_t *count, const uint64_t **keys,
                                const uint64_t **ids, const float **rows);

#ifdef __cplusplus
}
#endif
#endif
