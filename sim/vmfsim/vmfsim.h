/*
 * vmfsim.h - the internals of vmfsim shared by its modules (and its tests):
 * the stream (generated or loaded), the model interface, the daily replay,
 * the summary (time-to-peak) and the outputs.
 *
 * Conventions: functions that can fail return VMF_OK or a negative VMF_E*
 * code with the detail in err[VMFSIM_ERR_SIZE] (one line, no trailing
 * newline). VMF_EIO means "could not read/write a file" (exit 66 or 73/74),
 * VMF_EFORMAT / VMF_EINVAL "bad data" (exit 65). Nothing here prints or exits
 * except the CLI (vmfsim_main.c) and the progress line of the replay.
 */
#ifndef VMFSIM_H
#define VMFSIM_H

#include "vmfmm.h"

#include <stddef.h>
#include <stdint.h>

#define VMFSIM_ERR_SIZE  512
#define VMFSIM_MAX_DAY   200 /* stream days are 1..200 */
#define VMFSIM_TOPK      4   /* the replay scores top-1 and top-4 */
#define VMFSIM_N_EPS     3   /* time-to-peak tolerances reported */
#define VMFSIM_MAX_MODEL 7

/* ------------------------------------------------------------------ stream */

/*
 * A 200-day stream: n rows of dimension d in day order (stream rows sorted
 * stably by day, then the test rows). Class labels are remapped to dense
 * indices 0..n_classes-1 in increasing order of the original label; the
 * original labels are kept in `labels` for reports.
 */
typedef struct vmfsim_stream {
    size_t d;
    size_t n_classes;
    int32_t *labels; /* [n_classes] original label of each dense class */
    /* stream (training) rows, sorted by day */
    size_t n_stream;
    float *x;                           /* [n_stream][d] unit rows */
    int32_t *y;                         /* [n_stream] dense class */
    size_t day_off[VMFSIM_MAX_DAY + 2]; /* rows of day t are [day_off[t], day_off[t+1]) */
    /* held-out test rows */
    size_t n_test;
    float *test_x; /* [n_test][d] */
    int32_t *test_y;
} vmfsim_stream;

void vmfsim_stream_free(vmfsim_stream *s);

/* Parameters of the synthetic stream; vmfsim_gen_opts_init sets the defaults. */
typedef struct vmfsim_gen_opts {
    size_t n_classes;      /* classes */
    size_t dim;            /* embedding dimension */
    size_t days;           /* days with arrivals (1..days), <= 200 */
    size_t rows_per_day;   /* mean daily volume: the stream has rows_per_day * days rows */
    double zipf;           /* class size of rank r is proportional to r^-zipf */
    size_t min_class_rows; /* floor on a class's stream rows */
    size_t max_modes;      /* modes per class, uniform in 1..max_modes */
    double kappa;          /* concentration of every mode */
    size_t group_size;     /* classes sharing a group direction (confusable families) */
    double class_spread;   /* class mean = normalize(group + class_spread * z / sqrt(d)) */
    double mode_spread;    /* mode mean = normalize(class + mode_spread * z / sqrt(d)) */
    double late_fraction;  /* fraction of classes that first appear late */
    size_t late_from;      /* their first day is uniform in [late_from, late_to] */
    size_t late_to;
    double drift;          /* rotation of every mode mean per day, radians */
    size_t test_per_class; /* balanced test set: rows per class */
    uint64_t seed;
} vmfsim_gen_opts;

void vmfsim_gen_opts_init(vmfsim_gen_opts *o);

/* What the generator drew, for tests and reports (all arrays owned). */
typedef struct vmfsim_gen_truth {
    size_t n_classes, d;
    size_t *class_rows; /* [n_classes] stream rows per dense class */
    int16_t *first_day; /* [n_classes] */
    size_t *n_modes;    /* [n_classes] */
    size_t max_modes;
    float *mode_means;    /* [n_classes][max_modes][d] at day 0 */
    double *mode_weights; /* [n_classes][max_modes] */
    int32_t *stream_mode; /* [n_stream] mode of each stream row */
} vmfsim_gen_truth;

void vmfsim_gen_truth_free(vmfsim_gen_truth *t);

/* Draws the synthetic stream; truth may be NULL. */
int vmfsim_stream_generate(const vmfsim_gen_opts *o, vmfsim_stream *out, vmfsim_gen_truth *truth,
                           char *err);

/*
 * Loads PREFIX.{X,y,split,day}.npy and validates everything before any work:
 * VMF_EIO when a file is missing or unreadable, VMF_EFORMAT for bad data
 * (dtype, shape, row counts that differ, split not 0/1, stream day outside
 * 1..200, test day not -1, no stream or no test rows, a test class never in
 * the stream, non-unit or non-finite rows).
 */
int vmfsim_stream_load(const char *prefix, vmfsim_stream *out, char *err);

/* Writes the stream as PREFIX.{X,y,split,day}.npy (original labels). */
int vmfsim_stream_save(const vmfsim_stream *s, const char *prefix, char *err);

/* Stream rows of day t in 1..200 (0 when t is out of range). */
size_t vmfsim_stream_day_rows(const vmfsim_stream *s, size_t t);

/* ------------------------------------------------------------------ models */

typedef enum {
    VMFSIM_VMFMM = 0,
    VMFSIM_GMM,
    VMFSIM_KNN,
    VMFSIM_SVM,
    VMFSIM_RF,
    VMFSIM_XGBOOST,
    VMFSIM_LOGREG
} vmfsim_family;

/* Settings of every family; vmfsim_model_cfg_init sets the defaults. */
typedef struct vmfsim_model_cfg {
    size_t components;      /* vmfmm K_max and gmm k_max */
    double vmf_kappa_scale; /* vmfmm prediction temperature; 0 = libvmfmm's default */
    int vmf_own_kappa;      /* nonzero: vmfmm predicts with each component's kappa (not pooled) */
    size_t refit_every;     /* refit families refit every this many days */
    size_t knn_k;           /* neighbours */
    size_t knn_reservoir;   /* rows kept per class, 0 = all */
    size_t gmm_max_iter;
    double svm_c;
    double logreg_c; /* logreg inverse regularisation (liblinear C) */
    size_t xgb_rounds;
    size_t xgb_depth;
    double xgb_eta;
    size_t rf_trees;
    size_t rf_depth;
    size_t tree_max_rows; /* refit trees on at most this many rows (uniform subsample), 0 = all */
    double tree_min_child_weight; /* xgboost min_child_weight (hessian sum per leaf) */
    int threads;                  /* xgboost nthread */
    /* rf/xgboost refits (model_xgb.c): */
    size_t tree_class_rows; /* at most this many rows per class (seeded), 0 = all */
    double
        tree_refit_growth; /* refit when rows grew by this fraction or a class is new; 0 = always */
    size_t tree_max_bin;   /* histogram bins per feature */
    double xgb_valid;      /* stratified fraction held out for early stopping */
    size_t xgb_patience;   /* stop after this many rounds without a better loss; 0 = never */
    size_t rf_min_leaf;    /* rf: least drawn rows on each side of a split */
    int tree_unweighted;   /* nonzero: no class-balanced weights (for comparisons) */
    uint64_t seed;
    const char *via_url; /* vmfmm through a running vmfd instead of in-process */
} vmfsim_model_cfg;

void vmfsim_model_cfg_init(vmfsim_model_cfg *c);

typedef struct vmfsim_model vmfsim_model;

/*
 * The interface every family implements. learn_day (day 1..200) gets the
 * day's rows, or, for refit families, all stream rows so far (the stream is
 * sorted by day, so that is the prefix x[0 .. n)); it is not called with n = 0. predict_topk writes
 * the top-k dense classes of each row (-1 for empty slots) and, when
 * `novelty` is not NULL and the family has a novelty score (ops->novelty),
 * novelty [n]: larger means "less like any class the model knows" (vmfmm:
 * cosine distance to the nearest component mean; gmm: minus the largest
 * class log-density; knn: cosine distance to the k-th nearest stored row;
 * logreg, rf, xgboost: minus the largest class probability; svm: minus the
 * largest decision value). A model that cannot score yet writes 0.
 */
typedef struct vmfsim_model_ops {
    const char *name;
    int refit;   /* 1: refits on all rows so far (every refit_every days) */
    int novelty; /* 1: predict_topk can write a novelty score */
    int (*create)(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state, char *err);
    int (*learn_day)(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err);
    int (*predict_topk)(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                        double *novelty, char *err);
    uint64_t (*rows_seen)(const void *state);
    void (*destroy)(void *state);
} vmfsim_model_ops;

extern const vmfsim_model_ops vmfsim_ops_vmfmm;
extern const vmfsim_model_ops vmfsim_ops_vmfmm_via;
extern const vmfsim_model_ops vmfsim_ops_gmm;
extern const vmfsim_model_ops vmfsim_ops_knn;
extern const vmfsim_model_ops vmfsim_ops_svm;
extern const vmfsim_model_ops vmfsim_ops_rf;
extern const vmfsim_model_ops vmfsim_ops_xgboost;
extern const vmfsim_model_ops vmfsim_ops_logreg;

/*
 * The linear families' solver (model_linear.c states the objectives and the
 * method): loss VMFSIM_LOSS_SOFTMAX (logreg) or VMFSIM_LOSS_SQHINGE (svm,
 * one-vs-rest), c the inverse regularisation (scikit-learn's and liblinear's
 * C), tol on the largest gradient entry over n, ftol on the relative decrease
 * of the objective, max_iter L-BFGS iterations, memory its pairs.
 */
enum { VMFSIM_LOSS_SOFTMAX = 0, VMFSIM_LOSS_SQHINGE = 1 };

typedef struct vmfsim_lin_opts {
    int loss;
    double c;
    double tol, ftol;
    size_t max_iter;
    size_t memory;
} vmfsim_lin_opts;

void vmfsim_lin_opts_init(vmfsim_lin_opts *o);

/* L-BFGS curvature pairs kept between fits of the same shape (zero-initialise). */
typedef struct vmfsim_lin_mem {
    size_t np, cap, len, head;
    double *s, *y, *rho; /* [cap][np], [cap][np], [cap] */
} vmfsim_lin_mem;

void vmfsim_lin_mem_free(vmfsim_lin_mem *m);

typedef struct vmfsim_lin_info {
    size_t n_iter, n_eval;
    double f;        /* objective at the solution */
    double grad_max; /* largest gradient entry over n */
    int converged;
} vmfsim_lin_info;

/*
 * Fits W [k][d] and b [k] to rows x [n][d] with labels y [n] in 0..k-1 and
 * class weights cw [k]. theta [k*d + k] (W then b) is the start on entry and
 * the solution on return (softmax intercepts centred). mem (may be NULL)
 * carries the curvature pairs from a previous fit of the same k and d; info
 * may be NULL.
 */
int vmfsim_lin_fit(const vmfsim_lin_opts *o, const float *x, size_t n, size_t d, const int32_t *y,
                   size_t k, const double *cw, double *theta, vmfsim_lin_mem *mem,
                   vmfsim_lin_info *info, char *err);

/* Family by name ("vmfmm", "gmm", "knn", "svm", "rf", "xgboost", "logreg"); -1 if unknown. */
int vmfsim_family_parse(const char *name);
const char *vmfsim_family_name(int family);

/*
 * Parses a comma-separated model list ("all" = the seven) into families[]
 * without duplicates; returns the count, or 0 with err on a bad name.
 */
size_t vmfsim_models_parse(const char *list, int *families, char *err);

struct vmfsim_model {
    const vmfsim_model_ops *ops;
    void *state;
};

int vmfsim_model_new(int family, const vmfsim_model_cfg *cfg, size_t d, size_t n_classes,
                     vmfsim_model **out, char *err);
void vmfsim_model_free(vmfsim_model *m);

/*
 * rf and xgboost (model_xgb.c): the boosting rounds kept by the last fit
 * (after early stopping; 1 for rf) and the number of fits so far; zeros for
 * other families; rows: the rows it trained on (training plus held-out)
 * after the per-class quota. For tests and reports.
 */
void vmfsim_tree_info(const vmfsim_model *m, size_t *rounds, size_t *fits, size_t *rows);

/* ------------------------------------------------------------------ forest */

/* The random forest of rf (forest.c; docs/vmfsim.md, "rf and xgboost"). */
typedef struct vmfsim_forest vmfsim_forest;

typedef struct vmfsim_forest_opts {
    size_t n_trees;      /* trees, each on its own bootstrap sample */
    size_t max_depth;    /* deepest node (the root is depth 0), at most 64 */
    size_t min_leaf;     /* least drawn rows on each side of a split */
    size_t max_features; /* features drawn per split */
    size_t n_bins;       /* histogram bins per feature, 2..256 */
} vmfsim_forest_opts;

/*
 * Fits a forest on the rows rows [m] of x [][d], labels lab [m] in 0..k-1 and
 * weights w [m] >= 0, seeded by seed; *out on success (free with
 * vmfsim_forest_free), VMF_EINVAL or VMF_ENOMEM with a message in err.
 */
int vmfsim_forest_fit(const float *x, size_t d, const size_t *rows, size_t m, const int32_t *lab,
                      const float *w, size_t k, const vmfsim_forest_opts *o, uint64_t seed,
                      vmfsim_forest **out, char *err);

/* Class probabilities proba [n][k] of rows x [n][d]: the trees' mean leaf fractions. */
void vmfsim_forest_predict(const vmfsim_forest *f, const float *x, size_t n, double *proba);

/* Nodes over all trees (for tests and reports). */
size_t vmfsim_forest_nodes(const vmfsim_forest *f);

void vmfsim_forest_free(vmfsim_forest *f);

/* Shared helper: top-k indices of scores [n][c] per row (ties: lower index), -1 padding. */
void vmfsim_topk_from_scores(const double *scores, size_t n, size_t c, size_t k,
                             const int32_t *class_of, int32_t *topk);

/*
 * The answer of a model that cannot rank classes yet: topk [n][k] all -1, or,
 * when `only` >= 0 (the one class seen so far), that class first in each row.
 */
void vmfsim_topk_untrained(int32_t only, size_t n, size_t k, int32_t *topk);

/* Maps class indices of a label table with integer labels to the labels, in
 * place over topk [len]; -1 (no class) stays -1. */
void vmfsim_topk_to_labels(const vmf_label_table *t, int32_t *topk, size_t len);

/* ------------------------------------------------------------------ replay */

/* One model's curve: arrays [days] indexed by day-1. */
typedef struct vmfsim_curve {
    int family;
    int refit; /* 1 for a refit family (ops->refit) */
    size_t days;
    double *top1, *top4;
    uint64_t *rows_seen;
    double *train_s, *predict_s;
    unsigned char *refit_day; /* 1 when the model was (re)fit that day */
    size_t refits;
    /*
     * AUROC of the novelty score at separating test rows of classes with no
     * stream row up to that day from the other test rows; NaN when the
     * family has no score or the day has no such rows (or only such rows).
     */
    double *novelty_auroc;
    /*
     * With replicates: [4][days] the 5th and 95th percentiles of top-1, then
     * of top-4, per day over the replicates (vmfsim_reps_bands); else NULL.
     */
    double *band;
    /*
     * With vmfsim_replay_opts.record_ranks: [days][n_test] the position
     * (0 .. VMFSIM_TOPK-1) of each test row's class in that day's top-k,
     * VMFSIM_TOPK when absent; else NULL.
     */
    unsigned char *ranks;
} vmfsim_curve;

typedef struct vmfsim_replay_opts {
    size_t days;         /* replay days 1..days */
    const int *families; /* [n_models] */
    size_t n_models;
    vmfsim_model_cfg cfg;
    int progress;     /* nonzero: a progress line on stderr */
    int record_ranks; /* nonzero: fill vmfsim_curve.ranks */
} vmfsim_replay_opts;

/* Runs the replay; curves [n_models] are allocated into *out (free with vmfsim_curves_free). */
int vmfsim_replay(const vmfsim_stream *s, const vmfsim_replay_opts *o, vmfsim_curve **out,
                  char *err);
void vmfsim_curves_free(vmfsim_curve *c, size_t n);

/*
 * AUROC of score [n] for positives pos [n] (nonzero) against the others:
 * the probability that a random positive scores above a random negative,
 * ties counting one half (Mann-Whitney). NaN without positives or
 * negatives, or when out of memory.
 */
double vmfsim_auroc(const double *score, const unsigned char *pos, size_t n);

/* -------------------------------------------------------------- replicates */

/* What R replays measured (replicates.c), [model][replicate] unless said. */
typedef struct vmfsim_reps {
    size_t n, n_models, days;
    double *final1, *final4, *peak1;
    double *ttp;         /* [model][eps][replicate] time-to-peak of top-1, days */
    double *top1, *top4; /* [model][day][replicate] */
} vmfsim_reps;

int vmfsim_reps_new(size_t n, size_t n_models, size_t days, vmfsim_reps **out);
void vmfsim_reps_free(vmfsim_reps *r);
/* Stores replicate `rep` (0 .. n-1) from the curves of one replay. */
void vmfsim_reps_record(vmfsim_reps *r, size_t rep, const vmfsim_curve *c);
/* Sets c[m].band from the replicates (see vmfsim_curve). */
void vmfsim_reps_bands(const vmfsim_reps *r, vmfsim_curve *c);
/* Quantile p in [0, 1] of v [n] (linear between order statistics); NaN for n = 0. */
double vmfsim_quantile(const double *v, size_t n, double p);
/*
 * A replicate of stream s: the rows of each day in a fresh seeded order and
 * a bootstrap sample of the test rows (n_test draws with replacement).
 */
int vmfsim_stream_perturb(const vmfsim_stream *s, uint64_t seed, vmfsim_stream *out, char *err);
/* The same, also writing the bootstrap's test-row indices into boot [n_test] (may be NULL). */
int vmfsim_stream_perturb_boot(const vmfsim_stream *s, uint64_t seed, vmfsim_stream *out,
                               size_t *boot, char *err);

/*
 * Top-k macro recall (as vmf_topk_macro_recall) of the test rows boot [n]
 * (indices into y [.] and ranks [.], see vmfsim_curve.ranks), for k <= VMFSIM_TOPK.
 */
double vmfsim_recall_from_ranks(const unsigned char *ranks, const int32_t *y, size_t n_classes,
                                const size_t *boot, size_t n, size_t k);

/*
 * Whether a family's replay on a given stream depends only on the set of
 * rows seen each day, not on their order or the model seed: logreg and svm
 * (deterministic solvers of order-independent convex objectives, whose
 * daily warm starts follow the same sequence of row sets). Their replicates
 * of a file stream differ only by the test-row bootstrap, so their
 * predictions are computed once (the main run's ranks).
 */
int vmfsim_family_order_free(int family);

/* How vmfsim_reps_run runs the replicates. */
typedef struct vmfsim_reps_opts {
    size_t n;      /* replicates including the main run (>= 2) */
    size_t jobs;   /* processes replaying at once (>= 1); results do not depend on it */
    uint64_t seed; /* replicate r uses seed + r */
    const vmfsim_gen_opts *gen; /* non-NULL: a synthetic stream, re-drawn per replicate */
    int progress;
} vmfsim_reps_opts;

/*
 * Replays replicates 1 .. n-1 of the replay `ro` of stream s and records them
 * in reps (replicate 0, the main run's curves cv, is recorded too). For a file
 * stream (gen NULL), order-free families (vmfsim_family_order_free) are not
 * replayed again: their curves come from cv[m].ranks (ro must have had
 * record_ranks set) and each replicate's bootstrap. Replicates run in `jobs`
 * forked processes sharing the results through shared memory.
 */
int vmfsim_reps_run(const vmfsim_stream *s, const vmfsim_replay_opts *ro, const vmfsim_curve *cv,
                    const vmfsim_reps_opts *o, vmfsim_reps *reps, char *err);

/* ----------------------------------------------------------------- summary */

extern const double vmfsim_eps[VMFSIM_N_EPS]; /* 0.01, 0.02, 0.05 */

/*
 * Peak of curve[days] (the first day reaching the maximum, 1-based) and the
 * time-to-peak: the first day whose value is >= peak - eps. NaN values are
 * skipped; an all-NaN curve gives peak NaN and days 0.
 */
void vmfsim_peak(const double *curve, size_t days, double *peak, size_t *peak_day);
size_t vmfsim_time_to_peak(const double *curve, size_t days, double eps);

typedef struct vmfsim_run_info {
    const char *stream; /* prefix, or "synthetic" */
    uint64_t seed;
    size_t days;
    const vmfsim_model_cfg *cfg;
    const vmfsim_stream *s;
    double wall_s;
    int timings;             /* 0: timing columns written as 0 (--no-timings) */
    const vmfsim_reps *reps; /* --replicates (n >= 2), or NULL */
} vmfsim_run_info;

int vmfsim_write_daily_csv(const char *path, const vmfsim_curve *c, size_t n_models, int timings,
                           char *err);
int vmfsim_write_summary_json(const char *path, const vmfsim_curve *c, size_t n_models,
                              const vmfsim_run_info *info, char *err);
/* The summary table (one line per model) on f. */
void vmfsim_print_table(void *file, const vmfsim_curve *c, size_t n_models);

/* ------------------------------------------------------------------- plots */

int vmfsim_plot_run(const char *dir, const vmfsim_curve *c, size_t n_models, const vmfsim_stream *s,
                    size_t days, const char *subtitle, char *err);

typedef struct vmfsim_ablate_row {
    size_t k;
    double final_top1, final_top4, peak_top1, peak_top4;
    size_t peak_day, ttp;
    double seconds;
} vmfsim_ablate_row;

int vmfsim_plot_ablate(const char *dir, const vmfsim_ablate_row *rows, size_t n,
                       const char *subtitle, char *err);

/* --------------------------------------------------------------------- via */

typedef struct vmfsim_via vmfsim_via;

/* Parses http://HOST:PORT[/base] and checks the daemon answers GET /readyz. */
int vmfsim_via_open(const char *url, vmfsim_via **out, char *err);
void vmfsim_via_close(vmfsim_via *v);
/* PUT /v1/batches/KEY with an npz of X and y, then polls until applied. */
int vmfsim_via_put_batch(vmfsim_via *v, const char *key, const float *x, size_t n, size_t d,
                         const int32_t *y, char *err);
/* POST /v1/predict?top_k=k with an .npy of x; labels into topk [n][k] (-1 padding). */
int vmfsim_via_predict(vmfsim_via *v, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err);

/* A tiny HTTP/1.1 exchange (exposed for tests): status, body (malloc'ed). */
int vmfsim_http(vmfsim_via *v, const char *method, const char *path, const char *ctype,
                const void *body, size_t len, int *status, char **resp, size_t *resp_len,
                char *err);

#endif
