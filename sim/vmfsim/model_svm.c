/*
 * model_svm.c - the linear baselines through liblinear, one-vs-rest with a
 * bias term, refit on all rows so far every --refit-every days:
 *
 *   svm     L2-regularized L2-loss SVC solved in the dual (liblinear's
 *           default solver), C = --svm-c; top-k by decision value;
 *   logreg  L2-regularized logistic regression (primal trust-region
 *           Newton, liblinear's -s 0), C = --logreg-c; top-k by probability.
 *
 * Both are class-balanced as a careful practitioner would run them on a
 * long-tailed stream scored by macro recall: class c's loss weight is
 * n / (C n_c) (scikit-learn's class_weight='balanced'), through liblinear's
 * per-class weights. Novelty score: minus the largest probability (logreg)
 * or decision value (svm).
 *
 * liblinear shuffles its coordinate-descent order with rand(); the model
 * seeds it (srand) before each training so runs are reproducible. Its
 * progress messages are silenced.
 */
#include "vmfsim.h"

#include <linear.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct svm_state {
    int lr; /* 1: logistic regression */
    double c;
    unsigned seed;
    struct model *mdl;
    int32_t single; /* the only class seen when fewer than two were, else -1 */
    uint64_t rows;
    struct feature_node *nodes; /* [rows][d + 2] */
    struct feature_node **xp;
    double *yd;
    size_t cap;
} svm_state;

static void quiet(const char *s)
{
    (void)s;
}

static int linear_create(int lr, const vmfsim_model_cfg *cfg, void **state, char *err)
{
    svm_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    s->lr = lr;
    s->c = lr ? cfg->logreg_c : cfg->svm_c;
    s->seed = (unsigned)(cfg->seed & 0x7fffffffu);
    s->single = -1;
    set_print_string_function(quiet);
    *state = s;
    return VMF_OK;
}

static int svm_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)d, (void)n_classes;
    return linear_create(0, cfg, state, err);
}

static int logreg_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                         char *err)
{
    (void)d, (void)n_classes;
    return linear_create(1, cfg, state, err);
}

/* Fills the liblinear row x [d] plus the bias node and the terminator. */
static void fill_row(struct feature_node *nd, const float *x, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        nd[j].index = (int)j + 1;
        nd[j].value = x[j];
    }
    nd[d].index = (int)d + 1; /* bias feature */
    nd[d].value = 1.0;
    nd[d + 1].index = -1;
    nd[d + 1].value = 0.0;
}

static int svm_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    (void)day;
    svm_state *s = state;
    if (n > (size_t)INT32_MAX / (d + 2))
        return snprintf(err, VMFSIM_ERR_SIZE, "svm: too many rows for liblinear"), VMF_ERANGE;
    if (n > s->cap) {
        struct feature_node *nodes = realloc(s->nodes, n * (d + 2) * sizeof *nodes);
        if (nodes)
            s->nodes = nodes;
        struct feature_node **xp = realloc(s->xp, n * sizeof *xp);
        if (xp)
            s->xp = xp;
        double *yd = realloc(s->yd, n * sizeof *yd);
        if (yd)
            s->yd = yd;
        if (!nodes || !xp || !yd)
            return snprintf(err, VMFSIM_ERR_SIZE, "svm: out of memory"), VMF_ENOMEM;
        s->cap = n;
    }
    int32_t first = y[0];
    int several = 0;
    for (size_t i = 0; i < n; i++) {
        fill_row(s->nodes + i * (d + 2), x + i * d, d);
        s->xp[i] = s->nodes + i * (d + 2);
        s->yd[i] = y[i];
        several |= y[i] != first;
    }
    free_and_destroy_model(&s->mdl);
    s->single = -1;
    s->rows = n;
    if (!several) {
        s->single = first;
        return VMF_OK;
    }
    struct problem prob = {.l = (int)n, .n = (int)d + 1, .y = s->yd, .x = s->xp, .bias = 1.0};
    /* Class-balanced weights n / (C n_c) over the classes present. */
    int32_t maxc = 0;
    for (size_t i = 0; i < n; i++)
        maxc = y[i] > maxc ? y[i] : maxc;
    size_t *cnt = calloc((size_t)maxc + 1, sizeof *cnt);
    int *wl = malloc(((size_t)maxc + 1) * sizeof *wl);
    double *wv = malloc(((size_t)maxc + 1) * sizeof *wv);
    if (!cnt || !wl || !wv) {
        free(cnt), free(wl), free(wv);
        return snprintf(err, VMFSIM_ERR_SIZE, "svm: out of memory"), VMF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        cnt[y[i]]++;
    int nw = 0, present = 0;
    for (int32_t c = 0; c <= maxc; c++)
        present += cnt[c] > 0;
    for (int32_t c = 0; c <= maxc; c++) {
        if (!cnt[c])
            continue;
        wl[nw] = c;
        wv[nw++] = (double)n / ((double)present * (double)cnt[c]);
    }
    struct parameter par;
    memset(&par, 0, sizeof par);
    par.solver_type = s->lr ? L2R_LR_DUAL : L2R_L2LOSS_SVC_DUAL;
    par.eps = 0.1;
    par.C = s->c;
    par.p = 0.1;
    par.nr_weight = nw;
    par.weight_label = wl;
    par.weight = wv;
    const char *msg = check_parameter(&prob, &par);
    if (msg) {
        free(cnt), free(wl), free(wv);
        return snprintf(err, VMFSIM_ERR_SIZE, "%s: %s", s->lr ? "logreg" : "svm", msg), VMF_EINVAL;
    }
    srand(s->seed);
    s->mdl = train(&prob, &par);
    free(cnt), free(wl), free(wv);
    if (!s->mdl)
        return snprintf(err, VMFSIM_ERR_SIZE, "svm: liblinear training failed"), VMF_ENOMEM;
    return VMF_OK;
}

static int svm_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    svm_state *s = state;
    if (!s->mdl) {
        vmfsim_topk_untrained(s->single, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    size_t c = (size_t)get_nr_class(s->mdl);
    struct feature_node *nd = malloc((d + 2) * sizeof *nd);
    double *dec = malloc((c > 2 ? c : 2) * sizeof *dec);
    double *scores = malloc(n * c * sizeof *scores);
    int32_t *class_of = malloc(c * sizeof *class_of);
    int *lab = malloc(c * sizeof *lab);
    int rc = VMF_OK;
    if (!nd || !dec || !scores || !class_of || !lab) {
        snprintf(err, VMFSIM_ERR_SIZE, "svm: out of memory");
        rc = VMF_ENOMEM;
        goto done;
    }
    get_labels(s->mdl, lab);
    for (size_t j = 0; j < c; j++)
        class_of[j] = lab[j];
    for (size_t i = 0; i < n; i++) {
        fill_row(nd, x + i * d, d);
        if (s->lr) {
            predict_probability(s->mdl, nd, dec); /* c probabilities, also for c == 2 */
            memcpy(scores + i * c, dec, c * sizeof *dec);
        } else if (c == 2) { /* one decision value, positive for label[0] */
            predict_values(s->mdl, nd, dec);
            scores[i * c] = dec[0];
            scores[i * c + 1] = -dec[0];
        } else {
            predict_values(s->mdl, nd, dec);
            memcpy(scores + i * c, dec, c * sizeof *dec);
        }
        if (novelty) {
            double mx = scores[i * c];
            for (size_t j = 1; j < c; j++)
                mx = scores[i * c + j] > mx ? scores[i * c + j] : mx;
            novelty[i] = -mx;
        }
    }
    vmfsim_topk_from_scores(scores, n, c, k, class_of, topk);
done:
    free(nd), free(dec), free(scores), free(class_of), free(lab);
    return rc;
}

static uint64_t svm_rows(const void *state)
{
    const svm_state *s = state;
    return s->rows;
}

static void svm_destroy(void *state)
{
    svm_state *s = state;
    if (!s)
        return;
    free_and_destroy_model(&s->mdl);
    free(s->nodes), free(s->xp), free(s->yd);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_logreg = {
    .name = "logreg",
    .refit = 1,
    .novelty = 1,
    .create = logreg_create,
    .learn_day = svm_learn,
    .predict_topk = svm_predict,
    .rows_seen = svm_rows,
    .destroy = svm_destroy,
};

const vmfsim_model_ops vmfsim_ops_svm = {
    .name = "svm",
    .refit = 1,
    .novelty = 1,
    .create = svm_create,
    .learn_day = svm_learn,
    .predict_topk = svm_predict,
    .rows_seen = svm_rows,
    .destroy = svm_destroy,
};
