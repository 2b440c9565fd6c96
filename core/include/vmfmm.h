/*
 * vmfmm.h - libvmfmm, von Mises-Fisher mixture models for embeddings on the
 * unit hypersphere. This umbrella header includes the whole public API.
 *
 *   vmfmm/common.h      version, errors
 *   vmfmm/rng.h         seeded generator
 *   vmfmm/special.h     log C_d(kappa), A_d(kappa), log I_nu(x)
 *   vmfmm/kappa.h       kappa estimators with small-sample shrinkage
 *   vmfmm/sample.h      vMF (Wood 1994) and uniform sampling
 *   vmfmm/rows.h        checking and normalizing embeddings
 *   vmfmm/mixture.h     vMF mixture, batch EM, scoring, model JSON
 *   vmfmm/stepwise.h    stepwise (online) EM
 *   vmfmm/labels.h      labels and label tables
 *   vmfmm/classifier.h  class-conditional vMF classifier
 *   vmfmm/baselines.h   diagonal GMM and cosine k-NN classifiers
 *   vmfmm/metrics.h     top-k macro recall, NMI, ARI, ...
 *   vmfmm/io.h          .npy, .npz, CSV
 *
 * Rules every module follows:
 *   - Options: a function that takes a `const vmf_*_opts *` treats NULL as
 *     the defaults that the matching vmf_*_opts_init fills in, with results
 *     identical bit for bit to passing those defaults.
 *   - Top-k: every predict_topk (classifier, GMM, k-NN) writes classes [n][k]
 *     best first; classes that rank equal come lower class index first; the
 *     slots beyond the known classes get class -1 and probability 0. k = 0
 *     is VMF_EINVAL; n = 0 is a no-op, whatever the other arguments.
 *   - Errors: vmf_last_error() starts with the name of the public function
 *     that failed ("vmf_knn_classifier_add: 9 labels for 10 rows"); the
 *     file readers and writers start with the file they name instead.
 */
#ifndef VMFMM_H
#define VMFMM_H

#include "vmfmm/baselines.h"
#include "vmfmm/classifier.h"
#include "vmfmm/common.h"
#include "vmfmm/io.h"
#include "vmfmm/kappa.h"
#include "vmfmm/labels.h"
#include "vmfmm/metrics.h"
#include "vmfmm/mixture.h"
#include "vmfmm/rng.h"
#include "vmfmm/rows.h"
#include "vmfmm/rowstream.h"
#include "vmfmm/sample.h"
#include "vmfmm/special.h"
#include "vmfmm/stepwise.h"
#include "vmfmm/suffstats.h"

#endif
