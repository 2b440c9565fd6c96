/*
 * model_xgb.c - the tree baselines, run with the ordinary strong settings a
 * practitioner would pick (docs/vmfsim.md, "rf and xgboost"):
 *
 *   xgboost  gradient-boosted trees through the libxgboost C API,
 *            multi:softprob, hist method, at most --xgb-rounds rounds of
 *            depth --xgb-depth at learning rate --xgb-eta, row subsample 0.8
 *            and 0.8 of the features per tree, with early stopping: a
 *            stratified seeded --xgb-valid slice of the training rows is held
 *            out, and boosting stops after --xgb-patience rounds without a
 *            lower class-balanced mlogloss on it; the booster is cut back to
 *            its best round;
 *   rf       Breiman's random forest (forest.c): --rf-trees classification
 *            trees, each on a bootstrap sample, Gini splits over sqrt(d)
 *            features drawn per split on --tree-max-bin histogram bins,
 *            depth up to --rf-depth and at least --rf-min-leaf drawn rows on
 *            each side of a split.
 *
 * Both use class-balanced sample weights (each class seen so far carries the
 * same total weight, as scikit-learn's 'balanced'), and both are refit from
 * scratch on the rows so far. What keeps daily refits affordable is stated
 * in --help and the docs and is set by flags:
 *
 *   - a refit trains on a seeded, class-stratified subsample: at most
 *     --tree-max-rows rows (default 3000) by one per-class quota as large as
 *     fits (and at most --tree-class-rows per class when set), so the big
 *     classes of a long tail are subsampled and the rare ones keep every row;
 *   - the replay offers a refit every day, and the model refits when the
 *     stream grew by at least --tree-refit-growth (a fraction, default 0.25)
 *     since its last fit or brought a class it has not seen; otherwise it
 *     keeps its model. That is daily while the data grows fast (the first
 *     four days) and about 22 refits over the default 200-day stream; 0
 *     refits every day.
 *
 * A model that did not change answers the same test rows from a cache
 * (keyed by a hash of the rows) instead of predicting them again.
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
    size_t n_classes;      /* of the stream */
    BoosterHandle booster; /* xgboost */
    vmfsim_forest *forest; /* rf */
    int32_t *class_of;     /* [k] compact -> dense */
    size_t k;
    int32_t single;       /* when fewer than two classes were seen */
    uint64_t rows;        /* stream rows at the last fit */
    unsigned char *known; /* [n_classes] classes of the last fit */
    size_t rounds;        /* boosting rounds kept at the last fit */
    size_t fits;          /* refits done */
    size_t fit_rows;      /* rows of the last fit after the quota */
    uint64_t gen;         /* bumped at every fit, keys the cache */
    /* predictions of the current model for the last rows asked */
    uint64_t memo_gen, memo_hash;
    size_t memo_n, memo_d, memo_k;
    int32_t *memo_topk;
    double *memo_nov;
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
    unsigned char *known = calloc(n_classes ? n_classes : 1, 1);
    if (!s || !known) {
        free(s), free(known);
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    }
    s->rf = rf;
    s->cfg = *cfg;
    s->n_classes = n_classes;
    s->single = -1;
    s->known = known;
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

static int set_params(xgb_state *s, BoosterHandle b, char *err)
{
    char buf[64];
#define SETP(k, v)                                                                                 \
    do {                                                                                           \
        if (XGBoosterSetParam(b, (k), (v)) != 0)                                                   \
            return xgb_fail(err, "parameter " k);                                                  \
    } while (0)
    SETP("verbosity", "0");
    SETP("booster", "gbtree");
    SETP("objective", "multi:softprob");
    SETP("eval_metric", "mlogloss");
    SETP("tree_method", "hist");
    snprintf(buf, sizeof buf, "%zu", s->cfg.tree_max_bin);
    SETP("max_bin", buf);
    snprintf(buf, sizeof buf, "%zu", s->k);
    SETP("num_class", buf);
    snprintf(buf, sizeof buf, "%d", s->cfg.threads > 0 ? s->cfg.threads : 1);
    SETP("nthread", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(s->cfg.seed & 0x7fffffffu));
    SETP("seed", buf);
    snprintf(buf, sizeof buf, "%.6g", s->cfg.tree_min_child_weight);
    SETP("min_child_weight", buf);
    snprintf(buf, sizeof buf, "%zu", s->cfg.xgb_depth);
    SETP("max_depth", buf);
    snprintf(buf, sizeof buf, "%.6g", s->cfg.xgb_eta);
    SETP("learning_rate", buf);
    SETP("subsample", "0.8");
    SETP("colsample_bytree", "0.8");
#undef SETP
    return VMF_OK;
}

/* A DMatrix of the rows rows[0..m) of x with labels and weights. */
static int make_dmatrix(const xgb_state *s, const float *x, size_t d, const size_t *rows, size_t m,
                        const float *lab, const float *w, DMatrixHandle *out, char *err)
{
    *out = NULL;
    float *xs = malloc((m ? m : 1) * d * sizeof *xs);
    if (!xs)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    for (size_t i = 0; i < m; i++)
        memcpy(xs + i * d, x + rows[i] * d, d * sizeof *xs);
    int rc = VMF_EINVAL;
    int nt = s->cfg.threads > 0 ? s->cfg.threads : 1;
    if (XGDMatrixCreateFromMat_omp(xs, (bst_ulong)m, (bst_ulong)d, NAN, out, nt) != 0)
        xgb_fail(err, "DMatrix");
    else if (XGDMatrixSetFloatInfo(*out, "label", lab, (bst_ulong)m) != 0)
        xgb_fail(err, "labels");
    else if (XGDMatrixSetFloatInfo(*out, "weight", w, (bst_ulong)m) != 0)
        xgb_fail(err, "weights");
    else
        rc = VMF_OK;
    free(xs);
    if (rc && *out) {
        XGDMatrixFree(*out);
        *out = NULL;
    }
    return rc;
}

/* The mlogloss of the eval string "[i]\tvalid-mlogloss:0.123", or NaN. */
static double parse_loss(const char *ev)
{
    const char *p = ev ? strstr(ev, "valid-mlogloss:") : NULL;
    if (!p)
        return NAN;
    char *end;
    double v = strtod(p + strlen("valid-mlogloss:"), &end);
    return end == p + strlen("valid-mlogloss:") ? NAN : v;
}

/*
 * The per-class quota: cfg.tree_class_rows (0 = no limit), lowered to the
 * largest q with sum_c min(cnt_c, q) <= cfg.tree_max_rows when that is set
 * (and at least 1, so every class keeps a row).
 */
static size_t class_quota(const vmfsim_model_cfg *cfg, const size_t *cnt, size_t nc, size_t n)
{
    size_t q = cfg->tree_class_rows ? cfg->tree_class_rows : n;
    if (!cfg->tree_max_rows)
        return q;
    size_t lo = 1, hi = q;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2, tot = 0;
        for (size_t c = 0; c < nc; c++)
            tot += cnt[c] < mid ? cnt[c] : mid;
        if (tot <= cfg->tree_max_rows)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static int xgb_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    xgb_state *s = state;
    const size_t nc = s->n_classes;
    int rc = VMF_ENOMEM;
    size_t *cnt = calloc(nc + 1, sizeof *cnt), *start = calloc(nc + 1, sizeof *start);
    size_t *byc = malloc(n * sizeof *byc), *tr = malloc(n * sizeof *tr), *va = NULL;
    int32_t *compact = malloc(nc * sizeof *compact), *class_of = malloc(nc * sizeof *class_of);
    size_t *ntr = calloc(nc + 1, sizeof *ntr), *nva = calloc(nc + 1, sizeof *nva);
    float *lab = malloc(n * sizeof *lab), *w = malloc(n * sizeof *w);
    DMatrixHandle dm[2] = {NULL, NULL};
    BoosterHandle b = NULL;
    if (!cnt || !start || !byc || !tr || !compact || !class_of || !ntr || !nva || !lab || !w) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || (size_t)y[i] >= nc) {
            snprintf(err, VMFSIM_ERR_SIZE, "class %d out of range", (int)y[i]);
            rc = VMF_EINVAL;
            goto done;
        }
        cnt[y[i]]++;
    }
    int new_class = 0;
    for (size_t c = 0; c < nc; c++)
        new_class |= cnt[c] > 0 && !s->known[c];
    if (s->fits > 0 && !new_class &&
        (double)n < (1.0 + s->cfg.tree_refit_growth) * (double)s->rows) {
        rc = VMF_OK; /* keep the model: the data did not grow enough */
        goto done;
    }

    /* Rows bucketed by class, in stream order, then a seeded partial shuffle per class. */
    for (size_t c = 0; c < nc; c++)
        start[c + 1] = start[c] + cnt[c];
    for (size_t c = 0; c <= nc; c++)
        ntr[c] = start[c];
    for (size_t i = 0; i < n; i++)
        byc[ntr[y[i]]++] = i;
    const size_t q = class_quota(&s->cfg, cnt, nc, n);
    const int early = !s->rf && s->cfg.xgb_patience > 0 && s->cfg.xgb_valid > 0;
    vmf_rng r;
    vmf_rng_seed(&r,
                 s->cfg.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)day) ^ (s->rf ? 0x5bd1e995 : 0));
    size_t k = 0, m_tr = 0, m_va = 0;
    for (size_t c = 0; c < nc; c++) {
        compact[c] = -1;
        ntr[c] = nva[c] = 0;
        if (!cnt[c])
            continue;
        compact[c] = (int32_t)k;
        class_of[k++] = (int32_t)c;
        size_t *seg = byc + start[c], mc = cnt[c] < q ? cnt[c] : q;
        if (mc < cnt[c]) {
            for (size_t i = 0; i < mc; i++) {
                size_t j = i + (size_t)vmf_rng_below(&r, (uint64_t)(cnt[c] - i));
                size_t t = seg[i];
                seg[i] = seg[j], seg[j] = t;
            }
        } else if (early) {
            for (size_t i = 0; i + 1 < mc; i++) {
                size_t j = i + (size_t)vmf_rng_below(&r, (uint64_t)(mc - i));
                size_t t = seg[i];
                seg[i] = seg[j], seg[j] = t;
            }
        }
        size_t v = early ? (size_t)floor(s->cfg.xgb_valid * (double)mc + 0.5) : 0;
        if (v >= mc)
            v = mc - 1; /* every class keeps a training row */
        nva[c] = v;
        ntr[c] = mc - v;
        m_va += v;
        m_tr += mc - v;
    }
    /* Training rows first in lab/w, validation rows after them. */
    if (m_va && !(va = malloc(m_va * sizeof *va))) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        goto done;
    }
    /* Balanced: weight n / (K n_c), so each class carries n / K (scikit-learn's 'balanced'). */
    const int unw = s->cfg.tree_unweighted;
    size_t kv = 0;
    for (size_t c = 0; c < nc; c++)
        kv += nva[c] > 0;
    for (size_t c = 0, it = 0, iv = 0; c < nc; c++) {
        const size_t *seg = byc + start[c];
        for (size_t i = 0; i < nva[c]; i++, iv++) {
            va[iv] = seg[i];
            lab[m_tr + iv] = (float)compact[c];
            w[m_tr + iv] = unw ? 1.0f : (float)((double)m_va / ((double)kv * (double)nva[c]));
        }
        for (size_t i = 0; i < ntr[c]; i++, it++) {
            tr[it] = seg[nva[c] + i];
            lab[it] = (float)compact[c];
            w[it] = unw ? 1.0f : (float)((double)m_tr / ((double)k * (double)ntr[c]));
        }
    }

    /* From here on the model changes. */
    if (s->booster) {
        XGBoosterFree(s->booster);
        s->booster = NULL;
    }
    vmfsim_forest_free(s->forest);
    s->forest = NULL;
    free(s->class_of);
    s->class_of = class_of;
    class_of = NULL;
    s->k = k;
    s->rows = n;
    s->rounds = 0;
    s->fit_rows = m_tr + m_va;
    s->fits++;
    s->gen++;
    for (size_t c = 0; c < nc; c++)
        s->known[c] = cnt[c] > 0;
    s->single = k == 1 ? s->class_of[0] : -1;
    if (k < 2) {
        rc = VMF_OK;
        goto done;
    }
    if (s->rf) {
        int32_t *il = malloc(m_tr * sizeof *il);
        if (!il) {
            snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
            rc = VMF_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < m_tr; i++)
            il[i] = (int32_t)lab[i];
        vmfsim_forest_opts fo = {s->cfg.rf_trees, s->cfg.rf_depth, s->cfg.rf_min_leaf,
                                 (size_t)floor(sqrt((double)d)), s->cfg.tree_max_bin};
        if (fo.max_features < 1)
            fo.max_features = 1;
        rc = vmfsim_forest_fit(x, d, tr, m_tr, il, w, k, &fo,
                               s->cfg.seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)day), &s->forest,
                               err);
        free(il);
        s->rounds = 1;
        goto done;
    }
    if ((rc = make_dmatrix(s, x, d, tr, m_tr, lab, w, &dm[0], err)))
        goto done;
    if (m_va && (rc = make_dmatrix(s, x, d, va, m_va, lab + m_tr, w + m_tr, &dm[1], err)))
        goto done;
    rc = VMF_EINVAL;
    if (XGBoosterCreate(dm, m_va ? 2 : 1, &b) != 0) {
        xgb_fail(err, "booster");
        goto done;
    }
    if ((rc = set_params(s, b, err)))
        goto done;
    rc = VMF_EINVAL;
    size_t rounds = s->cfg.xgb_rounds, best_it = 0, it;
    double best = INFINITY;
    const char *names[1] = {"valid"};
    for (it = 0; it < rounds; it++) {
        if (XGBoosterUpdateOneIter(b, (int)it, dm[0]) != 0) {
            xgb_fail(err, "training");
            goto done;
        }
        if (!m_va)
            continue;
        const char *ev = NULL;
        if (XGBoosterEvalOneIter(b, (int)it, &dm[1], names, 1, &ev) != 0) {
            xgb_fail(err, "evaluation");
            goto done;
        }
        double loss = parse_loss(ev);
        if (!isfinite(loss)) {
            snprintf(err, VMFSIM_ERR_SIZE, "xgboost evaluation: cannot read '%s'", ev ? ev : "");
            goto done;
        }
        if (loss < best) {
            best = loss;
            best_it = it;
        } else if (it - best_it >= s->cfg.xgb_patience) {
            it++;
            break;
        }
    }
    s->rounds = it;
    if (m_va && best_it + 1 < it) {
        BoosterHandle cut = NULL;
        if (XGBoosterSlice(b, 0, (int)(best_it + 1), 1, &cut) != 0) {
            xgb_fail(err, "slice");
            goto done;
        }
        XGBoosterFree(b);
        b = cut;
        s->rounds = best_it + 1;
    }
    s->booster = b;
    b = NULL;
    rc = VMF_OK;
done:
    if (b)
        XGBoosterFree(b);
    if (dm[0])
        XGDMatrixFree(dm[0]);
    if (dm[1])
        XGDMatrixFree(dm[1]);
    free(cnt), free(start), free(byc), free(tr), free(va), free(compact), free(class_of);
    free(ntr), free(nva), free(lab), free(w);
    return rc;
}

/*
 * A 64-bit hash of the bytes of x, eight at a time (FNV-style multiply and
 * xor-shift): the cache key of a set of rows. Not cryptographic; the key
 * also holds n, d, k and the model's generation.
 */
static uint64_t rows_hash(const float *x, size_t n, size_t d)
{
    const unsigned char *p = (const unsigned char *)x;
    size_t len = n * d * sizeof *x, i = 0;
    uint64_t h = 0xcbf29ce484222325ULL ^ len;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Top-k and novelty (minus the largest probability) from class probabilities p [n][s->k]. */
static void answer_from_proba(const xgb_state *s, const double *p, size_t n, size_t k,
                              int32_t *topk, double *novelty)
{
    for (size_t i = 0; i < n; i++) {
        double mx = 0.0;
        for (size_t j = 0; j < s->k; j++)
            mx = p[i * s->k + j] > mx ? p[i * s->k + j] : mx;
        novelty[i] = -mx;
    }
    vmfsim_topk_from_scores(p, n, s->k, k, s->class_of, topk);
}

/* Top-k and novelty of rows x [n][d] from the current model (the forest or the booster). */
static int predict_model(xgb_state *s, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                         double *novelty, char *err)
{
    if (s->forest) {
        double *p = malloc((n ? n : 1) * s->k * sizeof *p);
        if (!p)
            return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
        vmfsim_forest_predict(s->forest, x, n, p);
        answer_from_proba(s, p, n, k, topk, novelty);
        free(p);
        return VMF_OK;
    }
    DMatrixHandle dm = NULL;
    int nt = s->cfg.threads > 0 ? s->cfg.threads : 1;
    if (XGDMatrixCreateFromMat_omp(x, (bst_ulong)n, (bst_ulong)d, NAN, &dm, nt) != 0)
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
            answer_from_proba(s, scores, n, k, topk, novelty);
            free(scores);
        }
    }
    XGDMatrixFree(dm);
    return rc;
}

static int xgb_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    xgb_state *s = state;
    if (!s->booster && !s->forest) {
        vmfsim_topk_untrained(s->single, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    uint64_t h = rows_hash(x, n, d);
    if (!(s->memo_topk && s->memo_gen == s->gen && s->memo_hash == h && s->memo_n == n &&
          s->memo_d == d && s->memo_k == k)) {
        free(s->memo_topk), free(s->memo_nov);
        s->memo_topk = malloc((n ? n : 1) * k * sizeof *s->memo_topk);
        s->memo_nov = malloc((n ? n : 1) * sizeof *s->memo_nov);
        if (!s->memo_topk || !s->memo_nov) {
            free(s->memo_topk), free(s->memo_nov);
            s->memo_topk = NULL, s->memo_nov = NULL;
            return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
        }
        int rc = predict_model(s, x, n, d, k, s->memo_topk, s->memo_nov, err);
        if (rc) {
            free(s->memo_topk), free(s->memo_nov);
            s->memo_topk = NULL, s->memo_nov = NULL;
            return rc;
        }
        s->memo_gen = s->gen, s->memo_hash = h, s->memo_n = n, s->memo_d = d, s->memo_k = k;
    }
    memcpy(topk, s->memo_topk, n * k * sizeof *topk);
    if (novelty)
        memcpy(novelty, s->memo_nov, n * sizeof *novelty);
    return VMF_OK;
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
    vmfsim_forest_free(s->forest);
    free(s->class_of);
    free(s->known);
    free(s->memo_topk), free(s->memo_nov);
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

void vmfsim_tree_info(const vmfsim_model *m, size_t *rounds, size_t *fits, size_t *rows)
{
    *rounds = *fits = *rows = 0;
    if (!m || (m->ops != &vmfsim_ops_xgboost && m->ops != &vmfsim_ops_rf))
        return;
    const xgb_state *s = m->state;
    *rounds = s->rounds;
    *fits = s->fits;
    *rows = s->fit_rows;
}
