/*
 * model_xgb.c - tree baselines through the libxgboost C API, refit on all
 * rows so far every --refit-every days (on a seeded uniform subsample of at
 * most --tree-max-rows rows, which bounds the refit cost late in the stream):
 *
 *   xgboost  gradient-boosted trees, multi:softprob, --xgb-rounds rounds of
 *            depth --xgb-depth, learning rate --xgb-eta, histogram method;
 *   rf       xgboost's random-forest mode: one round of --rf-trees parallel
 *            trees (num_parallel_tree), learning rate 1, row subsample 0.632
 *            per tree and sqrt(d) features per split (colsample_bynode).
 *
 * Classes are mapped to the compact indices 0..K-1 of the classes seen so
 * far (num_class = K); the top-k are the largest class probabilities.
 * nthread is fixed (--threads, default 1) so results are reproducible.
 */
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

typedef struct xgb_state {
    int rf;
    vmfsim_model_cfg cfg;
    size_t n_classes; /* of the stream */
    BoosterHandle booster;
    int32_t *class_of; /* [k] compact -> dense */
    size_t k;
    int32_t single; /* when fewer than two classes were seen */
    uint64_t rows;
} xgb_state;

static int xgb_fail(char *err, const char *what)
{
    snprintf(err, VMFSIM_ERR_SIZE, "xgboost %s: %s", what, XGBGetLastError());
    return VMF_EINVAL;
}

static int create_common(int rf, const vmfsim_model_cfg *cfg, size_t n_classes, void **state,
                         char *err)
{
    xgb_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    s->rf = rf;
    s->cfg = *cfg;
    s->n_classes = n_classes;
    s->single = -1;
    *state = s;
    return VMF_OK;
}

static int xgb_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    (void)d;
    return create_common(0, cfg, n_classes, state, err);
}

static int rf_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                     char *err)
{
    (void)d;
    return create_common(1, cfg, n_classes, state, err);
}

static int set_params(xgb_state *s, size_t d, char *err)
{
    char buf[64];
    BoosterHandle b = s->booster;
#define SETP(k, v)                                                                                 \
    do {                                                                                           \
        if (XGBoosterSetParam(b, (k), (v)) != 0)                                                   \
            return xgb_fail(err, "parameter " k);                                                  \
    } while (0)
    SETP("verbosity", "0");
    SETP("booster", "gbtree");
    SETP("objective", "multi:softprob");
    SETP("tree_method", "hist");
    snprintf(buf, sizeof buf, "%zu", s->k);
    SETP("num_class", buf);
    snprintf(buf, sizeof buf, "%d", s->cfg.threads > 0 ? s->cfg.threads : 1);
    SETP("nthread", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(s->cfg.seed & 0x7fffffffu));
    SETP("seed", buf);
    snprintf(buf, sizeof buf, "%.6g", s->cfg.tree_min_child_weight);
    SETP("min_child_weight", buf);
    if (s->rf) {
        snprintf(buf, sizeof buf, "%zu", s->cfg.rf_trees);
        SETP("num_parallel_tree", buf);
        snprintf(buf, sizeof buf, "%zu", s->cfg.rf_depth);
        SETP("max_depth", buf);
        SETP("learning_rate", "1");
        SETP("subsample", "0.632");
        snprintf(buf, sizeof buf, "%.6f", sqrt((double)d) / (double)d);
        SETP("colsample_bynode", buf);
    } else {
        snprintf(buf, sizeof buf, "%zu", s->cfg.xgb_depth);
        SETP("max_depth", buf);
        snprintf(buf, sizeof buf, "%.6g", s->cfg.xgb_eta);
        SETP("learning_rate", buf);
    }
#undef SETP
    return VMF_OK;
}

static int xgb_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    xgb_state *s = state;
    int rc = VMF_ENOMEM;
    size_t use = n;
    if (s->cfg.tree_max_rows > 0 && n > s->cfg.tree_max_rows)
        use = s->cfg.tree_max_rows;
    float *xs = malloc(use * d * sizeof *xs), *lab = malloc(use * sizeof *lab);
    int32_t *compact = malloc(s->n_classes * sizeof *compact);
    int32_t *class_of = malloc(s->n_classes * sizeof *class_of);
    size_t *pick = malloc(use * sizeof *pick);
    DMatrixHandle dm = NULL;
    if (!xs || !lab || !compact || !class_of || !pick) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        goto done;
    }
    if (use < n) {
        /* Seeded uniform subsample without replacement (selection sampling, in order). */
        vmf_rng r;
        vmf_rng_seed(&r, s->cfg.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)day));
        size_t need = use;
        for (size_t i = 0, m = 0; i < n && m < use; i++) {
            if (vmf_rng_below(&r, (uint64_t)(n - i)) < need) {
                pick[m++] = i;
                need--;
            }
        }
    } else {
        for (size_t i = 0; i < n; i++)
            pick[i] = i;
    }
    for (size_t c = 0; c < s->n_classes; c++)
        compact[c] = -1;
    size_t k = 0;
    for (size_t i = 0; i < use; i++) {
        int32_t c = y[pick[i]];
        if (c < 0 || (size_t)c >= s->n_classes) {
            snprintf(err, VMFSIM_ERR_SIZE, "class %d out of range", (int)c);
            rc = VMF_EINVAL;
            goto done;
        }
        if (compact[c] < 0) {
            compact[c] = (int32_t)k;
            class_of[k++] = c;
        }
        memcpy(xs + i * d, x + pick[i] * d, d * sizeof *xs);
        lab[i] = (float)compact[c];
    }
    if (s->booster) {
        XGBoosterFree(s->booster);
        s->booster = NULL;
    }
    free(s->class_of);
    s->class_of = class_of;
    class_of = NULL;
    s->k = k;
    s->rows = n;
    s->single = k == 1 ? s->class_of[0] : -1;
    if (k < 2) {
        rc = VMF_OK;
        goto done;
    }
    rc = VMF_EINVAL;
    if (XGDMatrixCreateFromMat(xs, (bst_ulong)use, (bst_ulong)d, NAN, &dm) != 0) {
        xgb_fail(err, "DMatrix");
        goto done;
    }
    if (XGDMatrixSetFloatInfo(dm, "label", lab, (bst_ulong)use) != 0) {
        xgb_fail(err, "labels");
        goto done;
    }
    if (XGBoosterCreate(&dm, 1, &s->booster) != 0) {
        xgb_fail(err, "booster");
        goto done;
    }
    if ((rc = set_params(s, d, err)))
        goto done;
    rc = VMF_EINVAL;
    size_t rounds = s->rf ? 1 : s->cfg.xgb_rounds;
    for (size_t it = 0; it < rounds; it++) {
        if (XGBoosterUpdateOneIter(s->booster, (int)it, dm) != 0) {
            xgb_fail(err, "training");
            goto done;
        }
    }
    rc = VMF_OK;
done:
    if (rc && s->booster) {
        XGBoosterFree(s->booster);
        s->booster = NULL;
    }
    if (dm)
        XGDMatrixFree(dm);
    free(xs), free(lab), free(compact), free(class_of), free(pick);
    return rc;
}

static int xgb_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    xgb_state *s = state;
    if (!s->booster) {
        vmfsim_topk_untrained(s->single, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    DMatrixHandle dm = NULL;
    if (XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)d, NAN, &dm) != 0)
        return xgb_fail(err, "DMatrix");
    bst_ulong len = 0;
    const float *p = NULL;
    int rc = VMF_OK;
    if (XGBoosterPredict(s->booster, dm, 0, 0, 0, &len, &p) != 0) {
        rc = xgb_fail(err, "predict");
    } else if ((size_t)len != n * s->k) {
        snprintf(err, VMFSIM_ERR_SIZE, "xgboost predict: %llu values for %zu x %zu",
                 (unsigned long long)len, n, s->k);
        rc = VMF_EINVAL;
    } else {
        double *scores = malloc(n * s->k * sizeof *scores);
        if (!scores) {
            snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
            rc = VMF_ENOMEM;
        } else {
            for (size_t i = 0; i < n * s->k; i++)
                scores[i] = p[i];
            for (size_t i = 0; i < n && novelty; i++) {
                double mx = 0.0;
                for (size_t j = 0; j < s->k; j++)
                    mx = scores[i * s->k + j] > mx ? scores[i * s->k + j] : mx;
                novelty[i] = -mx;
            }
            vmfsim_topk_from_scores(scores, n, s->k, k, s->class_of, topk);
            free(scores);
        }
    }
    XGDMatrixFree(dm);
    return rc;
}

static uint64_t xgb_rows(const void *state)
{
    const xgb_state *s = state;
    return s->rows;
}

static void xgb_destroy(void *state)
{
    xgb_state *s = state;
    if (!s)
        return;
    if (s->booster)
        XGBoosterFree(s->booster);
    free(s->class_of);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_xgboost = {
    .name = "xgboost",
    .refit = 1,
    .novelty = 1,
    .create = xgb_create,
    .learn_day = xgb_learn,
    .predict_topk = xgb_predict,
    .rows_seen = xgb_rows,
    .destroy = xgb_destroy,
};

const vmfsim_model_ops vmfsim_ops_rf = {
    .name = "rf",
    .refit = 1,
    .novelty = 1,
    .create = rf_create,
    .learn_day = xgb_learn,
    .predict_topk = xgb_predict,
    .rows_seen = xgb_rows,
    .destroy = xgb_destroy,
};
