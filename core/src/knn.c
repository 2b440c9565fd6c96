/*
 * knn.c - the cosine k-nearest-neighbour baseline.
 *
 * Storage: unit rows in one growing float32 buffer with their class indices.
 * With reservoir_per_class = R > 0 each class keeps a uniform sample of at
 * most R of the rows it was given (Vitter's Algorithm R: the t-th row of a
 * class, t counted from 0, replaces a random slot j in [0, t] when j < R), so
 * memory stays bounded on an endless stream. Adding is all-or-nothing: the
 * labels are interned into a copy of the table and every buffer is grown
 * before anything visible changes; the reservoir draws run on a copy of the
 * generator that is committed last.
 *
 * Prediction: for a block of query rows and a block of stored rows, one SGEMM
 * gives their cosine similarities (rows are unit vectors); a per-query binary
 * min-heap keeps the k most similar stored rows, and a per-query, per-class
 * maximum similarity is kept on the side. Memory O(QB x SB + QB x C) for
 * query blocks of QB and stored blocks of SB rows, never O(n_query x n_stored).
 *
 * Votes: each of the k neighbours votes for its class with weight
 * exp((sim - 1) / KNN_TAU), KNN_TAU = 0.02: a soft-max over similarities, so
 * a near duplicate outweighs several loose neighbours while every neighbour
 * keeps a positive vote. (On fmnist-cce64 this beats uniform votes and
 * max(sim, 0); see docs/baselines.md.) The reported probability of a class is
 * its share of the total vote. Classes ranked by vote; classes without a
 * vote among the k neighbours follow with probability 0, ranked by the
 * similarity of their nearest stored row, so a top-k list never stops at
 * the classes of the k neighbours while the model knows others.
 *
 * Ties are broken deterministically: among equally similar stored rows the
 * earlier stored row wins; among classes with equal votes the one with the
 * more similar nearest row, then the lower class index (the selector of
 * topk.h, shared with the other classifiers).
 */
#include "internal.h"
#include "topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KNN_TAU        0.02
#define KNN_QUERY_ROWS 256  /* query rows per block (fewer when there are many classes) */
#define KNN_STORE_ROWS 1024 /* stored rows per similarity block */
#define KNN_MAX_K      100000

struct vmf_knn_classifier {
    vmf_knn_opts o;
    size_t d;
    vmf_label_table *labels; /* owned */
    float *rows;             /* [cap][d] stored unit rows */
    int32_t *cls;            /* [cap] their classes */
    size_t n, cap;
    /* Reservoirs (R = o.reservoir_per_class > 0 only); class arrays hold class_cap entries. */
    size_t class_cap;
    uint64_t *seen; /* [C] rows of the class offered so far */
    size_t *held;   /* [C] rows of the class stored */
    size_t *slot;   /* [C][R] stored row index of each reservoir slot */
    vmf_rng rng;
};

void vmf_knn_opts_init(vmf_knn_opts *o)
{
    o->k = 10;
    o->reservoir_per_class = 0;
    o->seed = 42;
}

int vmf_knn_classifier_new(const vmf_knn_opts *o, size_t d, vmf_knn_classifier **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_new: out is NULL");
    *out = NULL;
    VMF__OPTS_OR_DEFAULTS(vmf_knn_opts, o);
    if (o->k == 0 || o->k > KNN_MAX_K)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_new: k = %zu is outside [1, %d]", o->k,
                          KNN_MAX_K);
    if (d == 0)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_new: dimension d = 0");
    size_t probe;
    if (vmf__mul_overflow(d, KNN_STORE_ROWS * sizeof(float), &probe))
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_new: dimension %zu is too large", d);
    vmf_knn_classifier *m = vmf__calloc(1, sizeof *m);
    if (!m)
        return vmf__error(VMF_ENOMEM, "vmf_knn_classifier_new: out of memory");
    int rc = vmf_label_table_new(&m->labels);
    if (rc) {
        vmf__free(m);
        return rc;
    }
    m->o = *o;
    m->d = d;
    vmf_rng_seed(&m->rng, o->seed);
    *out = m;
    return VMF_OK;
}

void vmf_knn_classifier_free(vmf_knn_classifier *m)
{
    if (!m)
        return;
    vmf_label_table_free(m->labels);
    vmf__free(m->rows);
    vmf__free(m->cls);
    vmf__free(m->seen);
    vmf__free(m->held);
    vmf__free(m->slot);
    vmf__free(m);
}

/*
 * Grows *p, an array of `have` elements of `size` bytes, to at least `need`
 * elements (geometrically), zero-filling the new tail. Updates *p only on
 * success; returns 0 or -1.
 */
static int grow(void **p, size_t have, size_t need, size_t size, size_t *new_cap)
{
    if (need <= have) {
        *new_cap = have;
        return 0;
    }
    size_t cap = have < 16 ? 16 : have;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    size_t bytes;
    if (vmf__mul_overflow(cap, size, &bytes))
        return -1;
    void *q = vmf__realloc(*p, bytes);
    if (!q)
        return -1;
    memset((char *)q + have * size, 0, (cap - have) * size);
    *p = q;
    *new_cap = cap;
    return 0;
}

int vmf_knn_classifier_add(vmf_knn_classifier *m, const float *x, size_t n, size_t d,
                           const vmf_labels *y)
{
    if (!m)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_add: model is NULL");
    if (n == 0)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_add: no rows (n = 0)");
    if (d != m->d)
        return vmf__error(
            VMF_EINVAL, "vmf_knn_classifier_add: rows have dimension %zu, the model %zu", d, m->d);
    if (!y)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_add: labels are NULL");
    if (y->n != n)
        return vmf__error(VMF_EINVAL, "vmf_knn_classifier_add: %zu labels for %zu rows", y->n, n);
    int rc = vmf_rows_check(x, n, d);
    if (rc)
        return vmf__error_wrap(rc, "vmf_knn_classifier_add", NULL);
    size_t R = m->o.reservoir_per_class;
    vmf_label_table *nt = NULL;
    int32_t *idx = NULL;
    size_t *batch = NULL;
    if ((rc = vmf_label_table_copy(m->labels, &nt)) != VMF_OK)
        goto fail;
    idx = vmf__malloc_array(n, sizeof *idx);
    if (!idx)
        goto nomem;
    if ((rc = vmf_label_table_intern(nt, y, idx)) != VMF_OK) {
        rc = vmf__error_wrap(rc, "vmf_knn_classifier_add", NULL);
        goto fail;
    }
    size_t C = vmf_label_table_size(nt);

    /* Rows this batch appends: all of them, or what fits into each class's reservoir. */
    size_t append = n;
    if (R > 0) {
        size_t cap = 0, slots;
        if (vmf__mul_overflow(C, R, &slots))
            goto nomem;
        batch = vmf__calloc(C, sizeof *batch);
        if (!batch)
            goto nomem;
        for (size_t i = 0; i < n; i++)
            batch[idx[i]]++;
        append = 0;
        for (size_t c = 0; c < C; c++) {
            size_t held = c < m->class_cap ? m->held[c] : 0;
            size_t room = R - held;
            append += batch[c] < room ? batch[c] : room;
        }
        if (grow((void **)&m->seen, m->class_cap, C, sizeof *m->seen, &cap) ||
            grow((void **)&m->held, m->class_cap, C, sizeof *m->held, &cap))
            goto nomem;
        /* slot is [class_cap][R]: grown in units of R entries. */
        size_t slot_cap;
        if (grow((void **)&m->slot, m->class_cap * R, cap * R, sizeof *m->slot, &slot_cap))
            goto nomem;
        m->class_cap = cap;
    }
    if (append > SIZE_MAX - m->n)
        goto nomem;
    size_t need = m->n + append, cap_rows = m->cap, cap_cls = m->cap;
    size_t row_bytes = d * sizeof *m->rows;
    if (grow((void **)&m->rows, m->cap, need, row_bytes, &cap_rows) ||
        grow((void **)&m->cls, m->cap, need, sizeof *m->cls, &cap_cls))
        goto nomem;
    m->cap = cap_rows < cap_cls ? cap_rows : cap_cls;

    /* Commit: nothing below can fail. */
    if (R == 0) {
        memcpy(m->rows + m->n * d, x, n * row_bytes);
        memcpy(m->cls + m->n, idx, n * sizeof *idx);
        m->n += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            size_t c = (size_t)idx[i];
            uint64_t t = m->seen[c]++;
            size_t target;
            if (m->held[c] < R) {
                target = m->n++;
                m->slot[c * R + m->held[c]++] = target;
                m->cls[target] = (int32_t)c;
            } else {
                uint64_t j = vmf_rng_below(&m->rng, t + 1);
                if (j >= R)
                    continue;
                target = m->slot[c * R + j];
            }
            memcpy(m->rows + target * d, x + i * d, row_bytes);
        }
    }
    vmf_label_table_free(m->labels);
    m->labels = nt;
    vmf__free(idx);
    vmf__free(batch);
    return VMF_OK;

nomem:
    rc = vmf__error(VMF_ENOMEM, "vmf_knn_classifier_add: out of memory for %zu more rows", n);
fail:
    vmf_label_table_free(nt);
    vmf__free(idx);
    vmf__free(batch);
    return rc;
}

/* ---- prediction ---- */

typedef struct neighbour {
    float sim;
    uint32_t pad;
    size_t row;
} neighbour;

/* a is a worse neighbour than b: less similar, or as similar and stored later. */
static int worse(const neighbour *a, const neighbour *b)
{
    return a->sim < b->sim || (a->sim == b->sim && a->row > b->row);
}

/* Restores the min-heap (worst at the root) below position i of h [len]. */
static void sift_down(neighbour *h, size_t len, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < len && worse(&h[l], &h[w]))
            w = l;
        if (r < len && worse(&h[r], &h[w]))
            w = r;
        if (w == i)
            return;
        neighbour t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(neighbour *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            return;
        neighbour t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

typedef struct class_score {
    double vote;
    float best;
} class_score;

/*
 * Class a ranks before class b (scores [C]): more vote, then the more
 * similar nearest row; the selector of topk.h breaks the remaining ties
 * by the lower index.
 */
static int class_before(const void *ctx, size_t a, size_t b)
{
    const class_score *sa = (const class_score *)ctx + a, *sb = (const class_score *)ctx + b;
    if (sa->vote != sb->vote)
        return sa->vote > sb->vote;
    return sa->best > sb->best;
}

int vmf_knn_classifier_predict_topk(const vmf_knn_classifier *m, const float *x, size_t n, size_t d,
                                    size_t k, int32_t *classes, double *proba)
{
    const char *fn = "vmf_knn_classifier_predict_topk";
    if (!m)
        return vmf__error(VMF_EINVAL, "%s: model is NULL", fn);
    int rc = vmf__topk_check(fn, m->d, x, n, d, k, classes);
    if (rc != VMF_OK || n == 0)
        return rc;
    size_t C = vmf_label_table_size(m->labels);
    if (m->n == 0) { /* nothing stored: no class to name */
        for (size_t t = 0; t < n * k; t++) {
            classes[t] = -1;
            if (proba)
                proba[t] = 0.0;
        }
        return VMF_OK;
    }
    size_t kk = m->o.k < m->n ? m->o.k : m->n;
    /* Fewer query rows per block when the per-class maxima would dominate memory. */
    size_t qb = KNN_QUERY_ROWS;
    while (qb > 8 && qb * C > ((size_t)1 << 22))
        qb /= 2;
    size_t sb = KNN_STORE_ROWS < m->n ? KNN_STORE_ROWS : m->n;
    float *sim = vmf__malloc_array(qb * sb, sizeof *sim);
    neighbour *heap = vmf__malloc_array(qb * kk, sizeof *heap);
    float *best = vmf__malloc_array(qb * C, sizeof *best);
    class_score *score = vmf__malloc_array(C, sizeof *score);
    if (!sim || !heap || !best || !score) {
        rc = vmf__error(
            VMF_ENOMEM,
            "vmf_knn_classifier_predict_topk: out of memory (%zu stored rows, %zu classes)", m->n,
            C);
        goto done;
    }
    for (size_t q0 = 0; q0 < n; q0 += qb) {
        size_t qn = n - q0 < qb ? n - q0 : qb;
        for (size_t t = 0; t < qn * C; t++)
            best[t] = -INFINITY;
        size_t filled = 0; /* heap entries so far, the same for every query of the block */
        for (size_t s0 = 0; s0 < m->n; s0 += sb) {
            size_t sn = m->n - s0 < sb ? m->n - s0 : sb;
            vmf__sgemm(0, 1, qn, sn, d, 1.0f, x + q0 * d, d, m->rows + s0 * d, d, 0.0f, sim, sn);
            for (size_t i = 0; i < qn; i++) {
                const float *si = sim + i * sn;
                neighbour *h = heap + i * kk;
                float *bi = best + i * C;
                size_t len = filled;
                for (size_t s = 0; s < sn; s++) {
                    float v = si[s];
                    int32_t c = m->cls[s0 + s];
                    if (v > bi[c])
                        bi[c] = v;
                    if (len < kk) {
                        h[len].sim = v;
                        h[len].pad = 0;
                        h[len].row = s0 + s;
                        sift_up(h, len);
                        len++;
                    } else if (v > h[0].sim) {
                        /* A later row with an equal similarity is worse: strictly greater only. */
                        h[0].sim = v;
                        h[0].row = s0 + s;
                        sift_down(h, kk, 0);
                    }
                }
            }
            filled = filled + sn < kk ? filled + sn : kk;
        }
        for (size_t i = 0; i < qn; i++) {
            const neighbour *h = heap + i * kk;
            const float *bi = best + i * C;
            for (size_t c = 0; c < C; c++) {
                score[c].vote = 0.0;
                score[c].best = bi[c];
            }
            /* The heap's layout, hence the order of this sum, is fixed by the input. */
            double total = 0.0;
            for (size_t j = 0; j < kk; j++) {
                double wgt = exp(((double)h[j].sim - 1.0) / KNN_TAU);
                score[m->cls[h[j].row]].vote += wgt;
                total += wgt;
            }
            int32_t *oc = classes + (q0 + i) * k;
            size_t m_out = vmf__topk(C, k, class_before, score, oc);
            double *op = proba ? proba + (q0 + i) * k : NULL;
            for (size_t j = 0; op && j < k; j++)
                op[j] = j < m_out && total > 0.0 ? score[oc[j]].vote / total : 0.0;
        }
    }
    rc = VMF_OK;
done:
    vmf__free(sim);
    vmf__free(heap);
    vmf__free(best);
    vmf__free(score);
    return rc;
}

const vmf_label_table *vmf_knn_classifier_labels(const vmf_knn_classifier *m)
{
    return m ? m->labels : NULL;
}

size_t vmf_knn_classifier_n_rows(const vmf_knn_classifier *m)
{
    return m ? m->n : 0;
}

size_t vmf_knn_classifier_dim(const vmf_knn_classifier *m)
{
    return m ? m->d : 0;
}

const float *vmf_knn_classifier_rows(const vmf_knn_classifier *m)
{
    return m ? m->rows : NULL;
}

const int32_t *vmf_knn_classifier_row_classes(const vmf_knn_classifier *m)
{
    return m ? m->cls : NULL;
}
