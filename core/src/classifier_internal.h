/*
 * classifier_internal.h - the representation of vmf_classifier and the
 * functions its files share: classifier.c (lifecycle), classifier_grow.c
 * (a class and its growth by splitting), classifier_fit.c (learning from
 * batches), classifier_scale.c (temperature and prediction cache),
 * classifier_predict.c (prediction) and classifier_io.c (binary state and
 * model JSON). Never installed; include after internal.h,
 * mixture_internal.h and stepwise_internal.h.
 */
#ifndef VMFMM_CLASSIFIER_INTERNAL_H
#define VMFMM_CLASSIFIER_INTERNAL_H

#include "vmfmm.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The temperature grid of the automatic kappa_scale: scale g is 2^(-g/2),
 * g = 0 .. VMF__SCALE_GRID - 1 (1 down to 2^-7.5 = 0.0055).
 */
#define VMF__SCALE_GRID 16

/* The largest refine_lambda the options accept. */
#define VMF__REFINE_LAMBDA_MAX 1e6

/* Rows per class the head-against-mixtures record mostly remembers. */
#define VMF__CMP_WINDOW 32.0

/*
 * The lowest log-probability one row adds to that record: a row given
 * probability below e^-30 (about 1e-13) counts as a sure miss, and no single
 * row outweighs the window.
 */
#define VMF__CMP_LOGP_MIN (-30.0)

/* Scale g of the grid. */
double vmf__classifier_grid_scale(size_t g);

/*
 * One class: its stepwise state, while it can still grow a row sample, and
 * its prequential record: of the pq_rows rows of this class that were
 * scored by the model before it learned them, pq_hits[g] were predicted
 * top-1 correctly at grid scale g.
 */
typedef struct vmf__class {
    vmf_stepwise *sw; /* row clock; its mixture has K <= k_max components */
    uint64_t rows;    /* rows of this class seen */
    float *buf;       /* [buf_cap][d] growth sample, NULL once K == k_max */
    size_t buf_n;     /* rows held in buf */
    size_t buf_cap;   /* rows allocated: grows by doubling up to the capacity */
    uint64_t pq_rows;
    uint64_t pq_hits[VMF__SCALE_GRID];
    /*
     * The head against the mixtures on the same scored rows, forgetting with
     * weight 1 - 1/VMF__CMP_WINDOW per row of this class: rows, and the sums
     * of log P(true class | x) (each clipped at VMF__CMP_LOGP_MIN, so <= 0)
     * under the refinement head and under the mixtures at the scale in use.
     */
    double cmp_rows, cmp_head, cmp_mix;
} vmf__class;

/*
 * The refinement head (classifier_refine.c): per class i a weight vector
 * w [n][d], a bias b [n] and their momenta mw, mb. w == NULL: no head (the
 * option is off, or the state came without one); prediction then uses the
 * mixtures.
 */
typedef struct vmf__head {
    size_t n;
    float *w, *mw;  /* [n][d] */
    double *b, *mb; /* [n] */
} vmf__head;

void vmf__head_free(vmf__head *h);

/* A deep copy of h (n rows of dimension d) into *out. */
int vmf__head_copy(const vmf__head *h, size_t d, vmf__head *out);

/*
 * Refines the head of c (classes, rows, prediction cache current) after a
 * batch of n_new rows: a new head in *out (c's own is left alone), drawing
 * minibatches with rng.
 */
int vmf__classifier_refine(const vmf_classifier *c, size_t n_new, vmf_rng *rng, vmf__head *out);

struct vmf_classifier {
    vmf_classifier_opts o;
    size_t d; /* 0 until the first batch */
    vmf_label_table *labels;
    size_t n_classes;
    vmf__class **cls; /* [n_classes] */
    uint64_t rows;
    vmf_rng rng; /* growth-sample draws */
    /* Prediction cache, rebuilt after every change (vmf__classifier_refresh). */
    double kappa_pool; /* pooled estimate before the scale; 0 unless pooled_kappa */
    double scale;      /* kappa scale in use: kappa_scale, or the prequential choice */
    size_t n_comp;     /* components over all classes */
    size_t *off;       /* [n_classes + 1] first component of each class */
    float *pmeans;     /* [n_comp][d] */
    double *pcoef;     /* [n_comp] log prior + log w + log C_d(kappa) */
    double *pkappa;    /* [n_comp] */
    int use_head;      /* predict with the head: refinement on and its record not worse */
    vmf__head head;    /* refinement head, see vmf__head */
};

/*
 * The dimension at which refine_rows counts rows: below it a class's sample
 * holds refine_rows x VMF__REFINE_REF_DIM / d rows (the same memory per
 * class, 512 KiB with the default 256 rows), at and above it refine_rows.
 */
#define VMF__REFINE_REF_DIM 512

/*
 * With refinement, the classes share a pool of VMF__REFINE_POOL_CLASSES
 * classes' worth of sample rows: with fewer classes each keeps a larger
 * sample, with more each keeps its own refine_rows (scaled). A logistic
 * regression at d = 512 learns from a few hundred rows a class markedly
 * worse than from a few thousand, and a few classes can afford them.
 */
#define VMF__REFINE_POOL_CLASSES 64

/*
 * Capacity of a class's row sample at dimension d when the classifier has
 * nc classes: the growth sample's k_max x rows_per_component rows, or the
 * head's refine_rows scaled as above, or its share of the pool, whichever
 * is most. It shrinks as classes arrive (vmf__class_thin), never below the
 * first two.
 */
size_t vmf__classifier_buf_cap(const vmf_classifier_opts *o, size_t d, size_t nc);

/* Validates options (not NULL); `fn` prefixes messages (VMF_EINVAL). */
int vmf__classifier_check_opts(const vmf_classifier_opts *o, const char *fn);

/* Stepwise options of a class with K components. */
void vmf__classifier_sw_opts(const vmf_classifier_opts *o, size_t k, vmf_stepwise_opts *so);

void vmf__class_free(vmf__class *cl);

/* An empty classifier shell with options (copied) and dimension, no classes. */
int vmf__classifier_alloc(const vmf_classifier_opts *o, size_t d, vmf_classifier **out);

/*
 * Rebuilds the prediction cache of c into fresh arrays and installs them
 * (all-or-nothing: VMF_ENOMEM leaves the old cache).
 */
int vmf__classifier_refresh(vmf_classifier *c);

/*
 * The same with a given pooled kappa (>= 0) instead of the estimate from the
 * statistics: model JSON without statistics carries the kappa it predicted
 * with ("kappa_pooled"), so that the rebuilt classifier predicts identically.
 */
int vmf__classifier_refresh_kappa(vmf_classifier *c, double kappa);

/*
 * log P(class | x) [n][n_classes] of rows x [n][d] under the refinement head
 * (present: c->head.w set), whether or not prediction uses it
 * (classifier_predict.c).
 */
int vmf__classifier_head_log_proba(const vmf_classifier *c, const float *x, size_t n, double *out);

/* Frees the prediction cache of c and clears its pointers (classifier.c). */
void vmf__classifier_cache_free(vmf_classifier *c);

/*
 * A deep copy of class cl of dimension d into *out, its growth sample with
 * the same allocation (classifier.c).
 */
int vmf__class_copy(const vmf__class *cl, size_t d, vmf__class **out);

/*
 * Gives class cl an empty row sample with room for `rows` rows (at least
 * one) of dimension d; learning grows it up to its capacity
 * (classifier_grow.c). VMF_ENOMEM leaves cl->buf NULL.
 */
int vmf__class_sample_alloc(vmf__class *cl, size_t rows, size_t d);

/*
 * A new empty class of dimension d with one component whose sample may
 * hold up to `cap` rows (classifier_grow.c).
 */
int vmf__class_new(const vmf_classifier_opts *o, size_t d, size_t cap, vmf__class **out);

/*
 * Learns rows x [n][d] of one class (a private copy, or a new class),
 * growing its mixture when its row count asks for it; its sample keeps at
 * most `cap` rows (classifier_grow.c).
 */
int vmf__class_learn(const vmf_classifier_opts *o, vmf__class *cl, const float *x, size_t n,
                     size_t d, size_t cap, vmf_rng *rng);

/*
 * Keeps a uniformly drawn `cap` of the class's sample rows when it holds
 * more (a uniform subset of a uniform sample is one, so the reservoir goes
 * on as before) and gives the memory back (classifier_grow.c).
 */
int vmf__class_thin(vmf__class *cl, size_t d, size_t cap, vmf_rng *rng);

/*
 * Batch fit of one class on all its rows x [n][d] into a new class *out,
 * its sample holding at most `cap` rows (classifier_grow.c).
 */
int vmf__class_fit(const vmf_classifier_opts *o, const float *x, size_t n, size_t d, size_t cap,
                   vmf_rng *rng, vmf__class **out);

/*
 * Scores rows x [n][d] of known classes cls [n] with m at every grid scale
 * into the prequential records of dst[cls[i]] (classifier_scale.c).
 */
int vmf__classifier_pq_score(const vmf_classifier *m, const float *x, size_t n, const int32_t *cls,
                             vmf__class **dst);

/*
 * Picks at most about `budget` rows of a grouped batch (rows xs, class k at
 * start[k] .. start[k + 1]) of classes below `known` for the prequential
 * record into *xo [*no][d], their classes into *co (classifier_scale.c).
 */
int vmf__classifier_pq_pick(const float *xs, const size_t *start, size_t nc, size_t known, size_t d,
                            size_t budget, float **xo, int32_t **co, size_t *no);

/*
 * vmf_classifier_save in format version `version` (1 to 4; version 1 drops
 * count_priors, kappa_scale and the prequential record, version 2 the
 * refinement; version 3 is the layout of 4). Only the tests write older
 * versions, to check that such blobs still load.
 */
int vmf__classifier_save_version(const vmf_classifier *c, uint32_t version, void **buf,
                                 size_t *len);

#endif
