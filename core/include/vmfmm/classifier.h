/*
 * vmfmm/classifier.h - the class-conditional vMF classifier: one vMF mixture
 * per class, learned online with stepwise EM, plus class priors.
 *
 *     P(class c | x) ∝ pi_c · sum_k w_ck C_d(s kappa_ck) exp(s kappa_ck mu_ck^T x)
 *
 * partial_fit(X, labels) creates unseen classes on the fly. A class starts with
 * one component and grows up to k_max components as its data allows (the
 * growth rule is documented in classifier_grow.c and docs/classifier.md), so the rare
 * classes of a long tail are still predicted. fit() learns from scratch in
 * batch.
 *
 * Prediction uses equal class priors and a tempered concentration by default
 * (count_priors = 0, kappa_scale = 0: chosen by the classifier from its
 * prequential record): see vmf_classifier_opts.
 *
 * Thread safety: predict functions only read and may run concurrently with
 * each other; partial_fit needs exclusive access (the daemon predicts on an
 * immutable copy).
 */
#ifndef VMFMM_CLASSIFIER_H
#define VMFMM_CLASSIFIER_H

#include "common.h"
#include "kappa.h"
#include "labels.h"
#include "mixture.h"
#include "stepwise.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_classifier vmf_classifier;

typedef struct vmf_classifier_opts {
    size_t k_max; /* components per class at most, default 5 */
    /*
     * How each class's mixture learns (vmfmm/stepwise.h, same defaults):
     * alpha, t0, eta_floor, minibatch, kappa (estimator, shrinkage prior,
     * clamps) and seed (default 42; it also seeds the classifier's own
     * draws of growth samples). The classifier decides the rest itself:
     * stepwise.n_components is ignored (a class starts with one component
     * and grows to k_max) and stepwise.tied_kappa must be 0 (every component
     * has its own kappa; VMF_EINVAL otherwise).
     */
    vmf_stepwise_opts stepwise;
    /*
     * Growth: a class of n rows has min(k_max, max(1, n / rows_per_component))
     * components (default 30). Until it reaches k_max it keeps a bounded
     * sample of rows_per_component * k_max of its rows to refit from.
     */
    size_t rows_per_component;
    /*
     * Non-zero (default): predict with one concentration shared by every
     * component of every class, estimated from the pooled statistics of all
     * classes (see docs/classifier.md); 0: each component's own kappa.
     */
    int pooled_kappa;
    /*
     * Class priors at prediction. 0 (default): equal priors pi_c = 1/C, the
     * Bayes-optimal decision for a class-balanced evaluation (macro recall)
     * whatever the class counts of the stream; non-zero: pi_c = n_c / n.
     */
    int count_priors;
    /*
     * Prediction temperature in [0, 1000]: prediction uses a scale s times
     * the pooled kappa (or times each component's own kappa without
     * pooled_kappa); learning is unaffected. kappa_scale > 0 fixes s (1
     * predicts with the likelihood estimate). 0 (default): automatic. Each
     * partial_fit batch is first scored by the current model ("test, then
     * train") at the grid s = 2^(-g/2), g = 0..15, and s is the grid value
     * with the best macro recall on all rows scored so far (fit scores
     * held-out rows of each class by cross-fitting instead); see
     * docs/classifier.md.
     */
    double kappa_scale;
    /*
     * Discriminative refinement (docs/classifier.md, "Refinement"). With
     * refine_rows > 0 (default 256) prediction uses one weight vector w_c
     * and bias b_c per class, P(c | x) ∝ exp(w_c^T x + b_c): a multinomial
     * logistic regression learned online by class-balanced softmax
     * cross-entropy with the L2 penalty (refine_lambda / rows seen) / 2
     * sum_c |w_c|^2 (default 1: scikit-learn's C = 1 with class-balanced
     * weights, at any number of classes; state formats up to 5 scaled it
     * by the class count, and load converted). A
     * new class starts at its vMF natural parameter s kappa mu_c. Each class
     * keeps a uniform sample of its rows (its growth sample, then kept for
     * good): refine_rows of them at d >= 512, refine_rows x 512 / d below
     * (memory refine_rows x max(d, 512) floats per class, allocated as the
     * sample fills: 512 KiB with the default up to d = 512, where it keeps
     * 256 rows; 2,048 rows at d = 64), and with C < 64 classes each its
     * share of 64 classes' worth, 64 / max(C, 2) times as many (so at most
     * max(C, 64) x refine_rows x max(d, 512) floats in all; the larger
     * samples are thinned as classes arrive); each
     * partial_fit takes max(refine_budget x f, 2 n) gradient rows (default
     * 16384; f = max(512 / d, 512 x 200 / (d C)) within [1, 8], the same
     * work for cheaper rows) in class-balanced minibatches of 256 from
     * those samples, SGD
     * with momentum 0.9 and step refine_rate (default 1), ending at the
     * average of the second half of its iterates. The mixtures are learned
     * as before and give the novelty score. 0 predicts with the mixtures
     * alone (the version-2 behaviour). fit() refines after fitting with
     * 32 gradient rows per row.
     */
    size_t refine_rows;
    double refine_lambda;
    size_t refine_budget;
    double refine_rate;
} vmf_classifier_opts;

/* Fills `o` with the defaults above (a NULL `o` elsewhere means these). */
VMF_API void vmf_classifier_opts_init(vmf_classifier_opts *o);

/* An empty classifier; d = 0 learns the dimension from the first batch. */
VMF_API int vmf_classifier_new(const vmf_classifier_opts *o, size_t d, vmf_classifier **out);
VMF_API void vmf_classifier_free(vmf_classifier *c);
VMF_API int vmf_classifier_copy(const vmf_classifier *c, vmf_classifier **out);

/*
 * Learns one batch x [n][d] (unit rows) with labels y (y->n == n). On any
 * error (wrong d, NaN/Inf, zero or non-unit row, n == 0, label count
 * mismatch, mixed label kinds) returns VMF_EINVAL and leaves the classifier
 * bit-identical.
 */
VMF_API int vmf_classifier_partial_fit(vmf_classifier *c, const float *x, size_t n, size_t d,
                                       const vmf_labels *y);

/* Batch fit from scratch on all rows; *out is a new classifier. */
VMF_API int vmf_classifier_fit(const vmf_classifier_opts *o, const float *x, size_t n, size_t d,
                               const vmf_labels *y, vmf_classifier **out);

/*
 * Top-k classes of each row of x [n][d]: class indices into classes [n][k] and
 * posterior probabilities into proba [n][k] (may be NULL), most probable first,
 * equal probabilities lower class index first. Slots beyond the number of
 * classes get -1 and 0. A bad row (NaN, Inf, not unit) is VMF_EINVAL naming
 * it, found as its block of 1,024 rows comes up: the outputs of the rows
 * before its block may have been written (the rows are read from memory
 * once); the same holds for predict_log_proba.
 */
VMF_API int vmf_classifier_predict_topk(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                        size_t k, int32_t *classes, double *proba);

/*
 * Novelty (unknown-class) score. The novelty of a row x is the cosine
 * distance from x to the nearest component mean of any known class,
 *
 *     novelty(x) = 1 - max_{c,k} mu_ck^T x,   in [0, 2],
 *
 * 0 for a row on a known mode, about 1 for a row orthogonal to every known
 * class. It does not depend on the class priors or on the prediction
 * temperature, so it is comparable across models and over time: a fixed
 * threshold t marks a row "unknown" when novelty > t (vmfd's
 * novelty_threshold). Why the nearest mode rather than the mixture density:
 * on real embeddings (docs/classifier.md) the nearest-mode distance separates
 * rows of classes never seen from rows of known classes as well as the
 * density at its best temperature, and it needs no temperature.
 *
 * vmf_classifier_predict_topk_novelty is vmf_classifier_predict_topk that
 * also writes novelty [n] (may be NULL, then identical to predict_topk);
 * vmf_classifier_novelty writes only the scores. Same errors as
 * predict_topk; thread safety as the other predict functions.
 */
VMF_API int vmf_classifier_predict_topk_novelty(const vmf_classifier *c, const float *x, size_t n,
                                                size_t d, size_t k, int32_t *classes, double *proba,
                                                double *novelty);
VMF_API int vmf_classifier_novelty(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                   double *novelty);

/* log P(class | x) for all classes into out [n][n_classes]. */
VMF_API int vmf_classifier_predict_log_proba(const vmf_classifier *c, const float *x, size_t n,
                                             size_t d, double *out);

VMF_API size_t vmf_classifier_dim(const vmf_classifier *c); /* 0 before the first batch */
VMF_API size_t vmf_classifier_n_classes(const vmf_classifier *c);
VMF_API const vmf_label_table *vmf_classifier_labels(const vmf_classifier *c); /* borrowed */
VMF_API uint64_t vmf_classifier_rows_seen(const vmf_classifier *c);

/*
 * Per class i: the prior prediction uses (1/C, or n_c / n with count_priors),
 * rows seen, the current mixture and its statistics (borrowed). The class
 * mixture carries each component's own fitted kappa; with pooled_kappa,
 * prediction uses vmf_classifier_kappa() instead.
 */
VMF_API double vmf_classifier_class_prior(const vmf_classifier *c, size_t i);
VMF_API uint64_t vmf_classifier_class_rows(const vmf_classifier *c, size_t i);
VMF_API const vmf_mixture *vmf_classifier_class_mixture(const vmf_classifier *c, size_t i);
VMF_API const double *vmf_classifier_class_s0(const vmf_classifier *c, size_t i);
VMF_API const double *vmf_classifier_class_s1(const vmf_classifier *c, size_t i);

/*
 * The kappa prediction uses: the scale in use times the pooled estimate (0
 * when pooled_kappa is off or before any data).
 */
VMF_API double vmf_classifier_kappa(const vmf_classifier *c);

/* The kappa scale prediction uses (the option, or the automatic choice). */
VMF_API double vmf_classifier_kappa_scale(const vmf_classifier *c);

/* Compact, versioned binary of the whole state; loading gives bit-identical futures. */
VMF_API int vmf_classifier_save(const vmf_classifier *c, void **buf, size_t *len);
VMF_API int vmf_classifier_load(const void *buf, size_t len, vmf_classifier **out);

/*
 * Model JSON, classifier form: {"format":"vmfmm-model","version":1,"kind":"classifier",
 * "dim", "classes":[{"label","prior","rows","mixture":{...}}], ...}; *json is malloc'ed.
 * from_json rebuilds a classifier that predicts identically (statistics are
 * rebuilt from the parameters when the JSON lacks them).
 */
VMF_API int vmf_classifier_to_json(const vmf_classifier *c, char **json);
VMF_API int vmf_classifier_from_json(const char *json, size_t len, vmf_classifier **out);

#ifdef __cplusplus
}
#endif
#endif
