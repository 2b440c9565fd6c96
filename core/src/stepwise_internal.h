/*
 * stepwise_internal.h - the representation of vmf_stepwise and the pieces of
 * stepwise.c that the classifier (classifier*.c) builds on:
 * the row-clock step rule, in-place re-initialisation from a mixture, and the
 * state's binary and JSON forms (stepwise_io.c, written with blob.h's byte
 * buffers). Never installed; include it after internal.h and
 * mixture_internal.h.
 */
#ifndef VMFMM_STEPWISE_INTERNAL_H
#define VMFMM_STEPWISE_INTERNAL_H

#include "blob.h"
#include "vmfmm.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Step rules. VMF__CLOCK_STEPS is the public rule of stepwise.h: minibatch t
 * gets eta_t = max(eta_floor, (t + t0)^-alpha), whatever its size.
 * VMF__CLOCK_ROWS is the classifier's rule for tiny, irregular per-class
 * batches: time runs in rows, tau = rows_seen / minibatch, and a minibatch of
 * n_b rows gets
 *     eta = max( n_b / (rows_seen + n_b),
 *                min(1, (n_b / minibatch) · max(eta_floor, (tau + t0)^-alpha)) ),
 * i.e. the exact running average of the rows until the stepwise schedule
 * (scaled to the minibatch's share of a full minibatch) forgets faster.
 */
enum { VMF__CLOCK_STEPS = 0, VMF__CLOCK_ROWS = 1 };

/* The largest number of components a stepwise state may hold. */
#define VMF__STEPWISE_MAX_COMPONENTS ((size_t)1 << 20)

struct vmf_stepwise {
    vmf_stepwise_opts o; /* o.n_components is the current K */
    size_t d;            /* dimension, >= 2 */
    int clock;           /* VMF__CLOCK_STEPS or VMF__CLOCK_ROWS */
    double *s0;          /* [k] per-sample statistics: mass; NULL before the first update */
    double *s1;          /* [k][d] per-sample statistics: vector sums */
    uint64_t steps;      /* minibatches applied */
    uint64_t rows;       /* rows applied */
    vmf_rng rng;         /* initialisation randomness */
    vmf_mixture *m;      /* current parameters; NULL before the first update */
};

/* Validates stepwise options; `fn` prefixes the message. */
int vmf__stepwise_check_opts(const vmf_stepwise_opts *o, const char *fn);

/* An empty state with the given clock (vmf_stepwise_new is clock STEPS). */
int vmf__stepwise_new_clock(const vmf_stepwise_opts *o, size_t d, int clock, vmf_stepwise **out);

/* Statistics arrays s0 [k], s1 [k][d] (vmf__malloc'ed); both or neither. */
int vmf__stepwise_stats_alloc(size_t k, size_t d, double **s0, double **s1);

/* Deep copy. */
int vmf__stepwise_copy(const vmf_stepwise *s, vmf_stepwise **out);

/*
 * Replaces the state's parameters by mixture `m` (taken over, K may differ)
 * and its statistics by s0 [k], s1 [k][d] (copied, per-sample scale), keeping
 * the step counter, rows and generator. All-or-nothing; VMF_ENOMEM leaves the
 * state and m untouched (the caller still owns m on failure).
 */
int vmf__stepwise_reset(vmf_stepwise *s, vmf_mixture *m, const double *s0, const double *s1);

/*
 * The statistics a mixture expects per sample: s0_k = w_k and
 * s1_k = w_k A_d(kappa_k) mu_k (the mean of a vMF is A_d(kappa) mu).
 */
void vmf__stepwise_expected_stats(const vmf_mixture *m, double *s0, double *s1);

/* The stepwise state as a payload, and back (validated: VMF_EFORMAT). */
void vmf__stepwise_write(vmf__wbuf *b, const vmf_stepwise *s);
int vmf__stepwise_read(vmf__rbuf *b, const char *where, vmf_stepwise **out);

/* The stepwise state as a jansson object (json_t * as void *), and back. */
int vmf__stepwise_to_json_obj(const vmf_stepwise *s, void **obj);
int vmf__stepwise_from_json_obj(const void *obj, const char *where, vmf_stepwise **out);

#endif
