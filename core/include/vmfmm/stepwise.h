/*
 * vmfmm/stepwise.h - stepwise (online) EM for a vMF mixture
 * (Liang & Klein 2009; Cappé & Moulines 2009).
 *
 * The state keeps, per component k, the expected sufficient statistics
 *     s0[k] = E[mass],  s1[k][d] = E[sum of responsibility-weighted rows]  (float64),
 * normalized per sample. Each minibatch b of a batch computes its own
 * statistics Ŝ_b (E-step with the current parameters) and blends them in:
 *     S <- (1 - eta_t) S + eta_t Ŝ_b,   eta_t = max(eta_floor, (t + t0)^(-alpha)),
 * t counting minibatches since the start. The M-step then reads weights from
 * s0, mean directions from s1 / |s1| and kappa from rbar = |s1| / s0 with the
 * shrinkage of vmfmm/kappa.h, where the effective sample size of a component
 * is s0[k] times n_eff = min(rows seen, n_b / eta), n_b the rows of the
 * minibatch just applied (it weighs eta, so it stands for about n_b / eta
 * rows). The last minibatch of a batch may be shorter; it is still one step.
 *
 * The first batch, when the state starts empty, initializes the means with
 * k-means++ on its rows (and needs at least K rows), then one hard pass gives
 * the initial statistics; the batch is then applied in minibatches. A state can also start from
 * a fitted mixture. Same batches in the same order give the same state bit for
 * bit, including across vmf_stepwise_save / vmf_stepwise_load in between.
 *
 * Not thread-safe: one writer; read the mixture only between updates.
 */
#ifndef VMFMM_STEPWISE_H
#define VMFMM_STEPWISE_H

#include "common.h"
#include "kappa.h"
#include "mixture.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_stepwise vmf_stepwise;

typedef struct vmf_stepwise_opts {
    size_t n_components;  /* K, default 5 */
    double alpha;         /* step exponent in (0.5, 1], default 0.7 */
    double t0;            /* step offset >= 0, default 2 */
    double eta_floor;     /* lower bound on eta for drifting data, default 0 (none) */
    size_t minibatch;     /* rows per step, default 256 */
    int tied_kappa;       /* default 0 */
    vmf_kappa_opts kappa; /* estimator, shrinkage, clamps */
    uint64_t seed;        /* default 42 (initialization) */
} vmf_stepwise_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_stepwise_opts_init(vmf_stepwise_opts *o);

/* An empty state for dimension d; the first update initializes it. */
VMF_API int vmf_stepwise_new(const vmf_stepwise_opts *o, size_t d, vmf_stepwise **out);

/*
 * A state that starts from mixture `m` (copied) as if it had been learned from
 * `prior_rows` rows (its statistics are rebuilt from the parameters).
 */
VMF_API int vmf_stepwise_from_mixture(const vmf_stepwise_opts *o, const vmf_mixture *m,
                                      double prior_rows, vmf_stepwise **out);

VMF_API void vmf_stepwise_free(vmf_stepwise *s);

/*
 * Applies one batch x [n][d] (unit rows, checked), in minibatches in row order.
 * VMF_EINVAL for a wrong d, n == 0, NaN/Inf, zero or non-unit rows, or a first
 * batch with fewer than K rows; VMF_ENOMEM on allocation failure. On error the
 * state is unchanged (bit-identical).
 */
VMF_API int vmf_stepwise_update(vmf_stepwise *s, const float *x, size_t n, size_t d);

/* The current mixture (borrowed; NULL before the first update). */
VMF_API const vmf_mixture *vmf_stepwise_mixture(const vmf_stepwise *s);

/* Minibatch steps taken and rows seen so far. */
VMF_API uint64_t vmf_stepwise_steps(const vmf_stepwise *s);
VMF_API uint64_t vmf_stepwise_rows_seen(const vmf_stepwise *s);

/* Sufficient statistics (borrowed): s0 [k], s1 [k][d]. */
VMF_API const double *vmf_stepwise_s0(const vmf_stepwise *s);
VMF_API const double *vmf_stepwise_s1(const vmf_stepwise *s);

/*
 * Compact binary form of the whole state (options, statistics, step counter,
 * generator), little-endian, versioned; *buf is malloc'ed, caller frees.
 * Loading it back gives a state whose future updates are bit-identical.
 */
VMF_API int vmf_stepwise_save(const vmf_stepwise *s, void **buf, size_t *len);
VMF_API int vmf_stepwise_load(const void *buf, size_t len, vmf_stepwise **out);

/* The same state as JSON text (doubles printed to round-trip exactly). */
VMF_API int vmf_stepwise_to_json(const vmf_stepwise *s, char **json);
VMF_API int vmf_stepwise_from_json(const char *json, size_t len, vmf_stepwise **out);

#ifdef __cplusplus
}
#endif
#endif
