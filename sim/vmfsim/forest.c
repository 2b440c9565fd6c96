/*
 * forest.c - the random forest of vmfsim's rf family: Breiman's forest of
 * classification trees as scikit-learn's RandomForestClassifier grows it,
 * on histogram bins.
 *
 * Each tree is grown on a bootstrap sample (m draws with replacement from
 * the m training rows; a row drawn t times weighs t times its weight) to
 * pure leaves or until a node has fewer than 2 min_leaf drawn rows or is at
 * max_depth. A node's split is the best weighted Gini decrease over
 * max_features features drawn at random without replacement, each cut
 * between two of its bins; both sides must keep min_leaf drawn rows. A leaf
 * holds its weighted class fractions, and the forest's probability is their
 * mean over the trees. With class-balanced weights a leaf's value is the
 * balanced class fraction, as in scikit-learn's class_weight='balanced'.
 *
 * Bins: per feature, up to n_bins - 1 cut points at the quantiles of the
 * training values (midpoints between distinct neighbours, so a cut never
 * sits on a value), and a row's bin is the number of cuts below its value.
 * A split "bin <= b" is the test "x <= cut[b]" at prediction, so predicting
 * needs no binning.
 *
 * Why native and not xgboost's random-forest mode (which vmfsim used): in
 * xgboost a multi-class forest is one regression tree per class per tree,
 * K times the work, and its leaves are gradient steps rather than class
 * fractions; a native forest of 300 trees costs less than xgboost's 100
 * did on the 40-class default stream.
 *
 * Cost. A node's class histogram spans only the classes present in it, so
 * deep nodes, which hold few classes, are cheap: per tree about
 * m max_features depth bin increments plus n_bins max_features per node for
 * the present classes. Deterministic for a seed (one generator per tree,
 * seeded from the seed and the tree's index).
 */
#include "vmfsim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A node: an inner node (feature >= 0) or a leaf (feature = -1). */
typedef struct fnode {
    int32_t feature;
    float cut;            /* inner: go left when x[feature] <= cut */
    uint32_t left;        /* inner: child indices (right = left + 1) */
    uint32_t leaf, nleaf; /* leaf: its (class, fraction) pairs */
} fnode;

struct vmfsim_forest {
    size_t d, k, n_trees;
    uint32_t *root; /* [n_trees] */
    fnode *nodes;
    size_t n_nodes, cap_nodes;
    int32_t *lcls; /* leaf pairs */
    float *lfrac;
    size_t n_pairs, cap_pairs;
};

void vmfsim_forest_free(vmfsim_forest *f)
{
    if (!f)
        return;
    free(f->root);
    free(f->nodes);
    free(f->lcls);
    free(f->lfrac);
    free(f);
}

/* Room for `more` nodes and `pairs` leaf pairs; 0 or VMF_ENOMEM. */
static int reserve(vmfsim_forest *f, size_t more, size_t pairs)
{
    if (f->n_nodes + more > f->cap_nodes) {
        size_t cap = f->cap_nodes ? 2 * f->cap_nodes : 1024;
        while (cap < f->n_nodes + more)
            cap *= 2;
        fnode *p = realloc(f->nodes, cap * sizeof *p);
        if (!p)
            return VMF_ENOMEM;
        f->nodes = p;
        f->cap_nodes = cap;
    }
    if (f->n_pairs + pairs > f->cap_pairs) {
        size_t cap = f->cap_pairs ? 2 * f->cap_pairs : 4096;
        while (cap < f->n_pairs + pairs)
            cap *= 2;
        int32_t *c = realloc(f->lcls, cap * sizeof *c);
        if (c)
            f->lcls = c;
        float *v = c ? realloc(f->lfrac, cap * sizeof *v) : NULL;
        if (!v)
            return VMF_ENOMEM;
        f->lfrac = v;
        f->cap_pairs = cap;
    }
    return VMF_OK;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/*
 * Cut points of one feature from its m training values v (sorted in place):
 * at most nb - 1 increasing cuts at the quantiles, each the midpoint of two
 * distinct neighbouring values. Returns their number.
 */
static size_t feature_cuts(float *v, size_t m, size_t nb, float *cuts)
{
    qsort(v, m, sizeof *v, cmp_float);
    size_t n = 0;
    for (size_t b = 1; b < nb; b++) {
        size_t i = b * m / nb;
        if (i == 0 || i >= m)
            continue;
        /* The first value change at or after the quantile. */
        while (i < m && v[i] == v[i - 1])
            i++;
        if (i >= m)
            break;
        float c = v[i - 1] + 0.5f * (v[i] - v[i - 1]);
        if (c >= v[i]) /* no float strictly between: cut on the lower one */
            c = v[i - 1];
        if (n == 0 || c > cuts[n - 1])
            cuts[n++] = c;
    }
    return n;
}

/* Scratch of one tree's growth. */
typedef struct grow {
    const vmfsim_forest_opts *o;
    size_t d, k, nb;
    const uint8_t *bins;  /* [m][d] */
    const int32_t *lab;   /* [m] */
    const float *cuts;    /* [d][nb - 1] */
    const size_t *ncuts;  /* [d] */
    double *tot;          /* [k] class weights of a node */
    int32_t *slot;        /* [k] class -> slot among present classes, -1 */
    int32_t *present;     /* [k] */
    double *hist;         /* [nb][k] */
    double *hcnt;         /* [nb] drawn rows per bin */
    double *left, *right; /* [k] class weights left and right of a cut */
    size_t *feat;         /* [d] feature order for sampling */
} grow;

/* A node to split: rows idx[lo, hi) of the bootstrap list, at depth. */
typedef struct task {
    uint32_t node;
    size_t lo, hi, depth;
} task;

static int make_leaf(vmfsim_forest *f, grow *g, uint32_t node, const double *tot, double wsum)
{
    size_t p = 0;
    for (size_t c = 0; c < g->k; c++)
        p += tot[c] > 0.0;
    if (reserve(f, 0, p))
        return VMF_ENOMEM;
    fnode *nd = &f->nodes[node];
    nd->feature = -1;
    nd->leaf = (uint32_t)f->n_pairs;
    nd->nleaf = (uint32_t)p;
    for (size_t c = 0; c < g->k; c++)
        if (tot[c] > 0.0) {
            f->lcls[f->n_pairs] = (int32_t)c;
            f->lfrac[f->n_pairs++] = (float)(tot[c] / wsum);
        }
    return VMF_OK;
}

/*
 * Grows one tree from the bootstrap rows idx [n] with weights wt [n] (the
 * row's weight times its draw count; rows drawn once or more, each listed
 * once) and draw counts cnt [n].
 */
static int grow_tree(vmfsim_forest *f, grow *g, size_t *idx, const double *wrow,
                     const uint32_t *draws, size_t n, vmf_rng *rng)
{
    const size_t k = g->k, nb = g->nb, d = g->d;
    const double min_leaf = (double)g->o->min_leaf;
    task *stack = malloc((2 * g->o->max_depth + 4) * sizeof *stack);
    if (!stack || reserve(f, 1, 0)) {
        free(stack);
        return VMF_ENOMEM;
    }
    uint32_t rootn = (uint32_t)f->n_nodes++;
    size_t top = 0;
    stack[top++] = (task){rootn, 0, n, 0};
    int rc = VMF_OK;
    while (top > 0 && rc == VMF_OK) {
        task t = stack[--top];
        /* Class weights and drawn rows of the node. */
        memset(g->tot, 0, k * sizeof *g->tot);
        double wsum = 0.0, rows = 0.0;
        for (size_t i = t.lo; i < t.hi; i++) {
            size_t r = idx[i];
            g->tot[g->lab[r]] += wrow[r];
            wsum += wrow[r];
            rows += (double)draws[r];
        }
        size_t np = 0;
        for (size_t c = 0; c < k; c++) {
            g->slot[c] = -1;
            if (g->tot[c] > 0.0) {
                g->slot[c] = (int32_t)np;
                g->present[np++] = (int32_t)c;
            }
        }
        if (np <= 1 || t.depth >= g->o->max_depth || rows < 2.0 * min_leaf || wsum <= 0.0) {
            rc = make_leaf(f, g, t.node, g->tot, wsum);
            continue;
        }
        double base = 0.0; /* sum_c W_c^2 / W of the node */
        for (size_t j = 0; j < np; j++)
            base += g->tot[g->present[j]] * g->tot[g->present[j]];
        base /= wsum;
        /* max_features distinct features (partial Fisher-Yates). */
        size_t mf = g->o->max_features < d ? g->o->max_features : d;
        double best = base * (1.0 + 1e-12);
        int32_t bf = -1;
        size_t bb = 0;
        for (size_t s = 0; s < mf; s++) {
            size_t j = s + (size_t)vmf_rng_below(rng, (uint64_t)(d - s));
            size_t tmp = g->feat[s];
            g->feat[s] = g->feat[j], g->feat[j] = tmp;
            size_t fe = g->feat[s], nc = g->ncuts[fe];
            if (nc == 0)
                continue;
            memset(g->hist, 0, (nc + 1) * np * sizeof *g->hist);
            memset(g->hcnt, 0, (nc + 1) * sizeof *g->hcnt);
            for (size_t i = t.lo; i < t.hi; i++) {
                size_t r = idx[i], b = g->bins[r * d + fe];
                g->hist[b * np + (size_t)g->slot[g->lab[r]]] += wrow[r];
                g->hcnt[b] += (double)draws[r];
            }
            /*
             * Scan the cuts: sum L_c^2 and sum R_c^2 kept up to date over
             * the present classes. An empty bin moves no row, so the cut
             * after it splits as the one before did: skipped.
             */
            for (size_t q = 0; q < np; q++) {
                g->left[q] = 0.0;
                g->right[q] = g->tot[g->present[q]];
            }
            double wl = 0.0, nl = 0.0, sl2 = 0.0, sr2 = base * wsum;
            for (size_t b = 0; b < nc; b++) {
                if (g->hcnt[b] == 0.0)
                    continue;
                const double *h = g->hist + b * np;
                for (size_t q = 0; q < np; q++) {
                    double v = h[q], l = g->left[q], r = g->right[q];
                    sl2 += v * (2.0 * l + v);
                    sr2 += v * (v - 2.0 * r);
                    g->left[q] = l + v;
                    g->right[q] = r - v;
                    wl += v;
                }
                nl += g->hcnt[b];
                double wr = wsum - wl;
                if (nl < min_leaf || rows - nl < min_leaf || wl <= 0.0 || wr <= 0.0)
                    continue;
                double score = sl2 / wl + sr2 / wr;
                if (score > best) {
                    best = score;
                    bf = (int32_t)fe;
                    bb = b;
                }
            }
        }
        if (bf < 0) {
            rc = make_leaf(f, g, t.node, g->tot, wsum);
            continue;
        }
        /* Partition rows by bin <= bb. */
        size_t a = t.lo, z = t.hi;
        while (a < z) {
            if (g->bins[idx[a] * d + (size_t)bf] <= bb) {
                a++;
            } else {
                size_t tmp = idx[a];
                idx[a] = idx[--z];
                idx[z] = tmp;
            }
        }
        if (reserve(f, 2, 0)) {
            rc = VMF_ENOMEM;
            break;
        }
        fnode *nd = &f->nodes[t.node];
        nd->feature = bf;
        nd->cut = g->cuts[(size_t)bf * (nb - 1) + bb];
        nd->left = (uint32_t)f->n_nodes;
        f->n_nodes += 2;
        stack[top++] = (task){nd->left + 1, a, t.hi, t.depth + 1};
        stack[top++] = (task){nd->left, t.lo, a, t.depth + 1};
    }
    free(stack);
    return rc;
}

int vmfsim_forest_fit(const float *x, size_t d, const size_t *rows, size_t m, const int32_t *lab,
                      const float *w, size_t k, const vmfsim_forest_opts *o, uint64_t seed,
                      vmfsim_forest **out, char *err)
{
    *out = NULL;
    if (m == 0 || d == 0 || k == 0 || o->n_trees == 0 || o->n_bins < 2 || o->n_bins > 256 ||
        o->max_depth == 0 || o->max_features == 0) {
        snprintf(err, VMFSIM_ERR_SIZE, "forest: bad arguments");
        return VMF_EINVAL;
    }
    for (size_t i = 0; i < m; i++)
        if (lab[i] < 0 || (size_t)lab[i] >= k || !(w[i] >= 0.0f)) {
            snprintf(err, VMFSIM_ERR_SIZE, "forest: bad label or weight at row %zu", i);
            return VMF_EINVAL;
        }
    const size_t nb = o->n_bins;
    vmfsim_forest *f = calloc(1, sizeof *f);
    uint8_t *bins = malloc(m * d);
    float *cuts = malloc(d * (nb - 1) * sizeof *cuts), *col = malloc(m * sizeof *col);
    size_t *ncuts = calloc(d, sizeof *ncuts), *idx = malloc(m * sizeof *idx);
    double *wrow = malloc(m * sizeof *wrow);
    uint32_t *draws = malloc(m * sizeof *draws);
    grow g = {o, d, k, nb, bins, lab, cuts, ncuts, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    g.tot = malloc(k * sizeof *g.tot);
    g.slot = malloc(k * sizeof *g.slot);
    g.present = malloc(k * sizeof *g.present);
    g.hist = malloc(nb * k * sizeof *g.hist);
    g.hcnt = malloc(nb * sizeof *g.hcnt);
    g.left = malloc(k * sizeof *g.left);
    g.right = malloc(k * sizeof *g.right);
    g.feat = malloc(d * sizeof *g.feat);
    int rc = VMF_ENOMEM;
    if (!f || !bins || !cuts || !col || !ncuts || !idx || !wrow || !draws || !g.tot || !g.slot ||
        !g.present || !g.hist || !g.hcnt || !g.left || !g.right || !g.feat ||
        !(f->root = malloc(o->n_trees * sizeof *f->root)))
        goto done;
    f->d = d, f->k = k, f->n_trees = o->n_trees;
    /* Cuts per feature, then every training row's bin (cuts below its value). */
    for (size_t j = 0; j < d; j++) {
        for (size_t i = 0; i < m; i++)
            col[i] = x[rows[i] * d + j];
        float *cj = cuts + j * (nb - 1);
        ncuts[j] = feature_cuts(col, m, nb, cj);
        for (size_t i = 0; i < m; i++) {
            float v = x[rows[i] * d + j];
            size_t lo = 0, hi = ncuts[j]; /* first cut >= v */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cj[mid] < v)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            bins[i * d + j] = (uint8_t)lo;
        }
    }
    for (size_t t = 0; t < o->n_trees; t++) {
        vmf_rng r;
        vmf_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(t + 1)));
        memset(draws, 0, m * sizeof *draws);
        for (size_t i = 0; i < m; i++)
            draws[vmf_rng_below(&r, (uint64_t)m)]++;
        size_t n = 0;
        for (size_t i = 0; i < m; i++) {
            wrow[i] = (double)w[i] * (double)draws[i];
            if (draws[i])
                idx[n++] = i;
        }
        for (size_t j = 0; j < d; j++)
            g.feat[j] = j;
        f->root[t] = (uint32_t)f->n_nodes;
        if ((rc = grow_tree(f, &g, idx, wrow, draws, n, &r)) != VMF_OK)
            goto done;
    }
    rc = VMF_OK;
done:
    if (rc == VMF_ENOMEM)
        snprintf(err, VMFSIM_ERR_SIZE, "forest: out of memory");
    free(bins), free(cuts), free(col), free(ncuts), free(idx), free(wrow), free(draws);
    free(g.tot), free(g.slot), free(g.present), free(g.hist), free(g.hcnt), free(g.left),
        free(g.right);
    free(g.feat);
    if (rc != VMF_OK) {
        vmfsim_forest_free(f);
        return rc;
    }
    *out = f;
    return VMF_OK;
}

void vmfsim_forest_predict(const vmfsim_forest *f, const float *x, size_t n, double *proba)
{
    const size_t d = f->d, k = f->k;
    const double inv = 1.0 / (double)f->n_trees;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double *pi = proba + i * k;
        memset(pi, 0, k * sizeof *pi);
        for (size_t t = 0; t < f->n_trees; t++) {
            const fnode *nd = &f->nodes[f->root[t]];
            while (nd->feature >= 0)
                nd = &f->nodes[nd->left + (xi[nd->feature] <= nd->cut ? 0 : 1)];
            for (uint32_t j = 0; j < nd->nleaf; j++)
                pi[f->lcls[nd->leaf + j]] += (double)f->lfrac[nd->leaf + j];
        }
        for (size_t c = 0; c < k; c++)
            pi[c] *= inv;
    }
}

size_t vmfsim_forest_nodes(const vmfsim_forest *f)
{
    return f->n_nodes;
}
