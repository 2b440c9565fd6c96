/*
 * abi.c - what a binding that cannot include the headers needs: a free() for
 * library-allocated memory, and the layout of the public plain structs so
 * that it can check its mirror of them at load time (see vmfmm/common.h).
 *
 * The table lists the members a binding sets or reads. A member added to a
 * struct later needs no entry unless a binding is to reach it: bindings
 * allocate vmf_abi_sizeof() bytes and let the init function fill in what
 * they do not know.
 */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void vmf_free(void *p)
{
    free(p);
}

typedef struct abi_field {
    const char *type;
    const char *field;
    size_t offset;
    size_t size;
} abi_field;

#define F(T, M)                                                                                    \
    {                                                                                              \
#T, #M, offsetof(T, M), sizeof(((T *)0)->M)                                                \
    }

static const abi_field fields[] = {
    F(vmf_kappa_opts, estimator),
    F(vmf_kappa_opts, prior_count),
    F(vmf_kappa_opts, prior_rbar),
    F(vmf_kappa_opts, kappa_min),
    F(vmf_kappa_opts, kappa_max),
    F(vmf_em_opts, n_components),
    F(vmf_em_opts, max_iter),
    F(vmf_em_opts, tol),
    F(vmf_em_opts, n_init),
    F(vmf_em_opts, assignment),
    F(vmf_em_opts, init),
    F(vmf_em_opts, init_means),
    F(vmf_em_opts, tied_kappa),
    F(vmf_em_opts, kappa),
    F(vmf_em_opts, kappa.estimator),
    F(vmf_em_opts, min_mass),
    F(vmf_em_opts, seed),
    F(vmf_em_opts, block_rows),
    F(vmf_em_report, n_iter),
    F(vmf_em_report, converged),
    F(vmf_em_report, loglik),
    F(vmf_em_report, trace),
    F(vmf_em_report, n_reseeded),
    F(vmf_em_report, best_init),
    F(vmf_em_report, seconds),
    F(vmf_rng, s),
    F(vmf_rng, spare_normal),
    F(vmf_rng, has_spare),
    F(vmf_stepwise_opts, n_components),
    F(vmf_stepwise_opts, alpha),
    F(vmf_stepwise_opts, t0),
    F(vmf_stepwise_opts, eta_floor),
    F(vmf_stepwise_opts, minibatch),
    F(vmf_stepwise_opts, tied_kappa),
    F(vmf_stepwise_opts, kappa),
    F(vmf_stepwise_opts, kappa.estimator),
    F(vmf_stepwise_opts, seed),
    F(vmf_classifier_opts, k_max),
    F(vmf_classifier_opts, stepwise),
    F(vmf_classifier_opts, stepwise.alpha),
    F(vmf_classifier_opts, stepwise.kappa),
    F(vmf_classifier_opts, stepwise.kappa.estimator),
    F(vmf_classifier_opts, stepwise.seed),
    F(vmf_classifier_opts, rows_per_component),
    F(vmf_classifier_opts, pooled_kappa),
    F(vmf_classifier_opts, count_priors),
    F(vmf_classifier_opts, kappa_scale),
    F(vmf_classifier_opts, refine_rows),
    F(vmf_classifier_opts, refine_lambda),
    F(vmf_classifier_opts, refine_budget),
    F(vmf_classifier_opts, refine_rate),
    F(vmf_labels, n),
    F(vmf_labels, ints),
    F(vmf_labels, strs),
    F(vmf_array, dtype),
    F(vmf_array, ndim),
    F(vmf_array, shape),
    F(vmf_array, count),
    F(vmf_array, data),
};

#undef F

static const struct {
    const char *type;
    size_t size;
} types[] = {
    {"vmf_kappa_opts", sizeof(vmf_kappa_opts)},
    {"vmf_em_opts", sizeof(vmf_em_opts)},
    {"vmf_em_report", sizeof(vmf_em_report)},
    {"vmf_rng", sizeof(vmf_rng)},
    {"vmf_stepwise_opts", sizeof(vmf_stepwise_opts)},
    {"vmf_classifier_opts", sizeof(vmf_classifier_opts)},
    {"vmf_labels", sizeof(vmf_labels)},
    {"vmf_array", sizeof(vmf_array)},
};

size_t vmf_abi_sizeof(const char *type)
{
    if (type == NULL)
        return 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].type, type) == 0)
            return types[i].size;
    return 0;
}

int vmf_abi_field(const char *type, const char *field, size_t *offset, size_t *size)
{
    if (type == NULL || field == NULL)
        return VMF_ENOTFOUND;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].type, type) == 0 && strcmp(fields[i].field, field) == 0) {
            if (offset)
                *offset = fields[i].offset;
            if (size)
                *size = fields[i].size;
            return VMF_OK;
        }
    }
    return VMF_ENOTFOUND;
}
