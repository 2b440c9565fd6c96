/*
 * metrics.c - evaluation metrics: top-k macro recall and accuracy for
 * classifiers; NMI, ARI and purity for clusterings; confusion matrices.
 *
 * Clustering metrics accept arbitrary int32 labels (negative values, gaps, a
 * "noise" label of -1 are all just labels). They are computed from the sparse
 * contingency table: each labelling is mapped to dense codes by sorting its
 * distinct values, the (code_a, code_b) pairs are packed into 64-bit keys and
 * sorted, and runs of equal keys are the non-zero cells. Time O(n log n),
 * memory O(n), independent of the number of clusters (a dense table would be
 * O(n^2) when both labellings have ~n distinct values).
 *
 * Degenerate cases follow scikit-learn (1.x), so numbers are comparable:
 *   NMI: both labellings a single cluster -> 1; otherwise a zero mutual
 *        information -> 0 (in particular when exactly one labelling is a
 *        single cluster); the result is clamped to [0, 1] against rounding.
 *   ARI: no pair is split differently by the two labellings (fp = fn = 0,
 *        which covers n = 1, both single clusters, both all singletons) -> 1.
 * n = 0 is VMF_EINVAL for every metric: an empty evaluation is a caller bug.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- classifier metrics ---- */

/* Shared argument checks of the top-k metrics. */
static int check_topk_args(const char *fn, const int32_t *y_true, size_t n, const int32_t *topk,
                           size_t width, size_t k, double *out)
{
    if (!y_true || !topk || !out)
        return vmf__error(VMF_EINVAL, "%s: NULL argument", fn);
    if (n == 0)
        return vmf__error(VMF_EINVAL, "%s: no rows to evaluate (n = 0)", fn);
    if (k == 0)
        return vmf__error(VMF_EINVAL, "%s: k must be at least 1", fn);
    if (k > width)
        return vmf__error(VMF_EINVAL, "%s: k = %zu exceeds the prediction width %zu", fn, k, width);
    size_t cells;
    if (vmf__mul_overflow(n, width, &cells))
        return vmf__error(VMF_EINVAL, "%s: n x width overflows", fn);
    return VMF_OK;
}

/* 1 when row i's true class is among its first k predictions. */
static int topk_hit(const int32_t *row, size_t k, int32_t truth)
{
    for (size_t j = 0; j < k; j++)
        if (row[j] == truth)
            return 1;
    return 0;
}

int vmf_topk_macro_recall(const int32_t *y_true, size_t n, size_t n_classes, const int32_t *topk,
                          size_t width, size_t k, double *out)
{
    static const char fn[] = "vmf_topk_macro_recall";
    int rc = check_topk_args(fn, y_true, n, topk, width, k, out);
    if (rc)
        return rc;
    if (n_classes == 0)
        return vmf__error(VMF_EINVAL, "%s: n_classes must be at least 1", fn);
    if (n_classes > INT32_MAX)
        return vmf__error(VMF_EINVAL, "%s: n_classes = %zu exceeds INT32_MAX", fn, n_classes);
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || (size_t)y_true[i] >= n_classes)
            return vmf__error(VMF_EINVAL, "%s: y_true[%zu] = %d is outside [0, %zu)", fn, i,
                              (int)y_true[i], n_classes);
        for (size_t j = 0; j < k; j++) {
            int32_t p = topk[i * width + j];
            if (p < -1 || (p >= 0 && (size_t)p >= n_classes))
                return vmf__error(VMF_EINVAL,
                                  "%s: prediction [%zu][%zu] = %d is neither -1 nor in [0, %zu)",
                                  fn, i, j, (int)p, n_classes);
        }
    }
    uint64_t *count = vmf__calloc(n_classes, 2 * sizeof *count);
    if (!count)
        return vmf__error(VMF_ENOMEM, "%s: out of memory for %zu classes", fn, n_classes);
    uint64_t *hits = count + n_classes;
    for (size_t i = 0; i < n; i++) {
        count[y_true[i]]++;
        hits[y_true[i]] += (uint64_t)topk_hit(topk + i * width, k, y_true[i]);
    }
    /* Per-class recalls summed in class order: the result does not depend on row order. */
    double sum = 0.0;
    size_t present = 0;
    for (size_t c = 0; c < n_classes; c++) {
        if (count[c] == 0)
            continue;
        sum += (double)hits[c] / (double)count[c];
        present++;
    }
    vmf__free(count);
    *out = sum / (double)present;
    return VMF_OK;
}

int vmf_topk_accuracy(const int32_t *y_true, size_t n, const int32_t *topk, size_t width, size_t k,
                      double *out)
{
    static const char fn[] = "vmf_topk_accuracy";
    int rc = check_topk_args(fn, y_true, n, topk, width, k, out);
    if (rc)
        return rc;
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0)
            return vmf__error(VMF_EINVAL, "%s: y_true[%zu] = %d is negative", fn, i,
                              (int)y_true[i]);
        for (size_t j = 0; j < k; j++)
            if (topk[i * width + j] < -1)
                return vmf__error(VMF_EINVAL, "%s: prediction [%zu][%zu] = %d is below -1", fn, i,
                                  j, (int)topk[i * width + j]);
        hits += (uint64_t)topk_hit(topk + i * width, k, y_true[i]);
    }
    *out = (double)hits / (double)n;
    return VMF_OK;
}

int vmf_confusion_matrix(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t n_classes,
                         uint64_t *conf)
{
    static const char fn[] = "vmf_confusion_matrix";
    if (!y_true || !y_pred || !conf)
        return vmf__error(VMF_EINVAL, "%s: NULL argument", fn);
    if (n == 0)
        return vmf__error(VMF_EINVAL, "%s: no rows (n = 0)", fn);
    if (n_classes == 0 || n_classes > INT32_MAX)
        return vmf__error(VMF_EINVAL, "%s: n_classes = %zu is outside [1, INT32_MAX]", fn,
                          n_classes);
    size_t cells;
    if (vmf__mul_overflow(n_classes, n_classes, &cells) ||
        vmf__mul_overflow(cells, sizeof *conf, &cells))
        return vmf__error(VMF_EINVAL, "%s: %zu x %zu matrix overflows", fn, n_classes, n_classes);
    /* Validate everything before writing, so a failure leaves conf untouched. */
    for (size_t i = 0; i < n; i++) {
        if (y_true[i] < 0 || (size_t)y_true[i] >= n_classes)
            return vmf__error(VMF_EINVAL, "%s: y_true[%zu] = %d is outside [0, %zu)", fn, i,
                              (int)y_true[i], n_classes);
        if (y_pred[i] < -1 || (y_pred[i] >= 0 && (size_t)y_pred[i] >= n_classes))
            return vmf__error(VMF_EINVAL, "%s: y_pred[%zu] = %d is neither -1 nor in [0, %zu)", fn,
                              i, (int)y_pred[i], n_classes);
    }
    memset(conf, 0, cells);
    for (size_t i = 0; i < n; i++)
        if (y_pred[i] >= 0)
            conf[(size_t)y_true[i] * n_classes + (size_t)y_pred[i]]++;
    return VMF_OK;
}

/* ---- clustering metrics: the sparse contingency table ---- */

typedef struct contingency {
    size_t n;        /* rows */
    size_t na, nb;   /* distinct labels in a and in b */
    size_t nnz;      /* non-zero cells */
    uint32_t *row;   /* [nnz] code of a of each cell */
    uint32_t *col;   /* [nnz] code of b */
    uint64_t *cnt;   /* [nnz] rows in the cell */
    uint64_t *sum_a; /* [na] rows per label of a */
    uint64_t *sum_b; /* [nb] rows per label of b */
} contingency;

static void contingency_free(contingency *t)
{
    vmf__free(t->row);
    vmf__free(t->col);
    vmf__free(t->cnt);
    vmf__free(t->sum_a);
    vmf__free(t->sum_b);
    memset(t, 0, sizeof *t);
}

static int cmp_i32(const void *p, const void *q)
{
    int32_t a = *(const int32_t *)p, b = *(const int32_t *)q;
    return (a > b) - (a < b);
}

static int cmp_u64(const void *p, const void *q)
{
    uint64_t a = *(const uint64_t *)p, b = *(const uint64_t *)q;
    return (a > b) - (a < b);
}

/*
 * Dense codes 0..*n_unique-1 of v [n] in increasing label order, written into
 * the high (shift 32) or low half of keys [n]. scratch holds n int32.
 */
static void dense_codes(const int32_t *v, size_t n, int32_t *scratch, uint64_t *keys, int high,
                        size_t *n_unique)
{
    memcpy(scratch, v, n * sizeof *scratch);
    qsort(scratch, n, sizeof *scratch, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || scratch[i] != scratch[u - 1])
            scratch[u++] = scratch[i];
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = u; /* the code is the index of v[i] among the sorted distinct values */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (scratch[mid] <= v[i])
                lo = mid;
            else
                hi = mid;
        }
        keys[i] |= high ? (uint64_t)lo << 32 : (uint64_t)lo;
    }
    *n_unique = u;
}

static int contingency_build(const char *fn, const int32_t *a, const int32_t *b, size_t n,
                             contingency *t)
{
    memset(t, 0, sizeof *t);
    if (!a || !b)
        return vmf__error(VMF_EINVAL, "%s: NULL argument", fn);
    if (n == 0)
        return vmf__error(VMF_EINVAL, "%s: no rows (n = 0)", fn);
    if (n > UINT32_MAX)
        return vmf__error(VMF_EINVAL, "%s: n = %zu exceeds 2^32 - 1 rows", fn, n);
    uint64_t *keys = vmf__calloc(n, sizeof *keys);
    int32_t *scratch = vmf__malloc_array(n, sizeof *scratch);
    if (!keys || !scratch)
        goto nomem;
    dense_codes(a, n, scratch, keys, 1, &t->na);
    dense_codes(b, n, scratch, keys, 0, &t->nb);
    vmf__free(scratch);
    scratch = NULL;
    qsort(keys, n, sizeof *keys, cmp_u64);
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++)
        nnz += (i == 0 || keys[i] != keys[i - 1]);
    t->n = n;
    t->row = vmf__malloc_array(nnz, sizeof *t->row);
    t->col = vmf__malloc_array(nnz, sizeof *t->col);
    t->cnt = vmf__malloc_array(nnz, sizeof *t->cnt);
    t->sum_a = vmf__calloc(t->na, sizeof *t->sum_a);
    t->sum_b = vmf__calloc(t->nb, sizeof *t->sum_b);
    if (!t->row || !t->col || !t->cnt || !t->sum_a || !t->sum_b)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || keys[i] != keys[i - 1]) {
            t->row[t->nnz] = (uint32_t)(keys[i] >> 32);
            t->col[t->nnz] = (uint32_t)(keys[i] & 0xffffffffu);
            t->cnt[t->nnz] = 0;
            t->nnz++;
        }
        t->cnt[t->nnz - 1]++;
    }
    for (size_t c = 0; c < t->nnz; c++) {
        t->sum_a[t->row[c]] += t->cnt[c];
        t->sum_b[t->col[c]] += t->cnt[c];
    }
    vmf__free(keys);
    return VMF_OK;
nomem:
    vmf__free(keys);
    vmf__free(scratch);
    contingency_free(t);
    return vmf__error(VMF_ENOMEM, "%s: out of memory for the contingency table of %zu rows", fn, n);
}

/* Shannon entropy (nats) of the distribution counts [m] / n. */
static double entropy(const uint64_t *counts, size_t m, size_t n)
{
    double h = 0.0, dn = (double)n;
    for (size_t i = 0; i < m; i++) {
        double p = (double)counts[i] / dn;
        if (p > 0.0)
            h -= p * log(p);
    }
    return h;
}

int vmf_nmi(const int32_t *a, const int32_t *b, size_t n, double *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_nmi: NULL argument");
    contingency t;
    int rc = contingency_build("vmf_nmi", a, b, n, &t);
    if (rc)
        return rc;
    double nmi;
    if (t.na == 1 && t.nb == 1) {
        nmi = 1.0; /* neither labelling splits the data: a perfect match */
    } else if (t.na == 1 || t.nb == 1) {
        nmi = 0.0; /* one side carries no information: MI is exactly 0 */
    } else {
        /* MI = sum_ij p_ij log(p_ij / (p_i p_j)) = sum_ij (n_ij/n) log(n n_ij / (n_i n_j)). */
        double dn = (double)n, mi = 0.0;
        for (size_t c = 0; c < t.nnz; c++) {
            double nij = (double)t.cnt[c];
            double ratio = (dn * nij) / ((double)t.sum_a[t.row[c]] * (double)t.sum_b[t.col[c]]);
            mi += nij / dn * log(ratio);
        }
        if (mi <= 0.0) {
            nmi = 0.0;
        } else {
            double norm = 0.5 * (entropy(t.sum_a, t.na, n) + entropy(t.sum_b, t.nb, n));
            nmi = mi / norm;
            if (nmi > 1.0)
                nmi = 1.0;
        }
    }
    contingency_free(&t);
    *out = nmi;
    return VMF_OK;
}

int vmf_ari(const int32_t *a, const int32_t *b, size_t n, double *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_ari: NULL argument");
    contingency t;
    int rc = contingency_build("vmf_ari", a, b, n, &t);
    if (rc)
        return rc;
    /*
     * Pair confusion matrix over ordered pairs of distinct rows (as
     * scikit-learn's pair_confusion_matrix): tp = pairs together in both,
     * fp = together in b only, fn = together in a only, tn = apart in both.
     * Counts are exact in uint64 for n < 2^32.
     */
    uint64_t sum_sq = 0, sa = 0, sb = 0, un = (uint64_t)n;
    for (size_t c = 0; c < t.nnz; c++)
        sum_sq += t.cnt[c] * t.cnt[c];
    for (size_t i = 0; i < t.na; i++)
        sa += t.sum_a[i] * t.sum_a[i];
    for (size_t j = 0; j < t.nb; j++)
        sb += t.sum_b[j] * t.sum_b[j];
    contingency_free(&t);
    uint64_t tp = sum_sq - un;
    uint64_t fp = sb - sum_sq;
    uint64_t fn = sa - sum_sq;
    uint64_t tn = un * un - fp - fn - sum_sq;
    if (fp == 0 && fn == 0) {
        *out = 1.0;
        return VMF_OK;
    }
    /*
     * ARI = 2 (tp tn - fn fp) / ((tp + fn)(fn + tn) + (tp + fp)(fp + tn)); the
     * products reach n^4, so they are formed in long double (64-bit mantissa
     * on x86-64) and the denominator is positive whenever fp or fn is.
     */
    long double ltp = (long double)tp, ltn = (long double)tn, lfp = (long double)fp,
                lfn = (long double)fn;
    long double num = 2.0L * (ltp * ltn - lfn * lfp);
    long double den = (ltp + lfn) * (lfn + ltn) + (ltp + lfp) * (lfp + ltn);
    *out = (double)(num / den);
    return VMF_OK;
}

int vmf_purity(const int32_t *y_true, const int32_t *clusters, size_t n, double *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_purity: NULL argument");
    contingency t;
    /* Built with clusters as the row labelling, so each cluster's cells are contiguous. */
    int rc = contingency_build("vmf_purity", clusters, y_true, n, &t);
    if (rc)
        return rc;
    uint64_t total = 0, best = 0;
    for (size_t c = 0; c < t.nnz; c++) {
        if (c > 0 && t.row[c] != t.row[c - 1]) {
            total += best;
            best = 0;
        }
        if (t.cnt[c] > best)
            best = t.cnt[c];
    }
    total += best;
    contingency_free(&t);
    *out = (double)total / (double)n;
    return VMF_OK;
}
