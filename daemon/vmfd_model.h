/*
 * vmfd_model.h - the model vmfd learns, in one of two modes:
 *
 *   classifier  libvmfmm's class-conditional vMF classifier: labelled
 *               batches, predictions are class labels;
 *   clustering  one vMF mixture of k_max components learned with stepwise
 *               EM: labels are ignored, predictions are component indices.
 *
 * The worker, the store and the API see only this interface. A "group" is
 * what the store's classes/components tables describe: each class of the
 * classifier, or the single mixture (label "clusters") in clustering mode.
 *
 * Not thread-safe for writers (one writer; readers of an unchanging model
 * may run concurrently), like the libvmfmm models it wraps.
 */
#ifndef VMFD_MODEL_H
#define VMFD_MODEL_H

#include "vmfd_config.h"
#include "vmfmm/labels.h"
#include "vmfmm/mixture.h"
#include "vmfmm/stepwise.h"

#include <stddef.h>
#include <stdint.h>

typedef struct vmfd_model vmfd_model;

typedef struct vmfd_model_opts {
    vmfd_mode mode;
    size_t dim;         /* 0: from the first batch */
    size_t k_max;       /* classifier: components per class at most; clustering: K */
    size_t refine_rows; /* classifier: vmf_classifier_opts.refine_rows */
    /* alpha, t0, eta_floor, minibatch and seed from [model]; the library's other defaults */
    vmf_stepwise_opts stepwise;
} vmfd_model_opts;

void vmfd_model_opts_from_config(vmfd_model_opts *o, const vmfd_config *c);

/* All return VMF_OK or a VMF_E* code with vmf_last_error() set (libvmfmm's convention). */
int vmfd_model_new(const vmfd_model_opts *o, vmfd_model **out);
void vmfd_model_free(vmfd_model *m);
int vmfd_model_copy(const vmfd_model *m, vmfd_model **out);

/* Learns one batch of unit rows; y may be NULL in clustering mode. Unchanged on error. */
int vmfd_model_learn(vmfd_model *m, const float *x, size_t n, size_t d, const vmf_labels *y);

/* The whole state; loading gives bit-identical futures. Classifier: vmf_classifier_save bytes. */
int vmfd_model_save(const vmfd_model *m, void **buf, size_t *len);
int vmfd_model_load(const vmfd_model_opts *o, const void *buf, size_t len, vmfd_model **out);

vmfd_mode vmfd_model_mode(const vmfd_model *m);
size_t vmfd_model_dim(const vmfd_model *m);      /* 0 before the first batch */
size_t vmfd_model_n_labels(const vmfd_model *m); /* classes, or components */
uint64_t vmfd_model_rows_seen(const vmfd_model *m);
uint64_t vmfd_model_n_components(const vmfd_model *m); /* over all groups */

/* Label i as JSON text (an integer or a string), malloc'ed; NULL when out of memory. */
char *vmfd_model_label_json(const vmfd_model *m, size_t i);

/*
 * Top-k label indices and probabilities of rows x [n][d] (see
 * vmf_classifier_predict_topk) and, when novelty is not NULL, each row's
 * novelty score [n]: the cosine distance to the nearest known component
 * mean (vmf_classifier_novelty; in clustering mode, to the nearest mean).
 */
int vmfd_model_predict_topk(const vmfd_model *m, const float *x, size_t n, size_t d, size_t k,
                            int32_t *labels, double *proba, double *novelty);

/* Model JSON (malloc'ed). */
int vmfd_model_to_json(const vmfd_model *m, char **json);

/* Groups for the store. */
size_t vmfd_model_n_groups(const vmfd_model *m);
const char *vmfd_model_group_label(const vmfd_model *m, size_t g, char *buf, size_t size);
double vmfd_model_group_prior(const vmfd_model *m, size_t g);
uint64_t vmfd_model_group_rows(const vmfd_model *m, size_t g);
const vmf_mixture *vmfd_model_group_mixture(const vmfd_model *m, size_t g);
const double *vmfd_model_group_s0(const vmfd_model *m, size_t g); /* [k] or NULL */
const double *vmfd_model_group_s1(const vmfd_model *m, size_t g); /* [k][d] or NULL */

#endif
