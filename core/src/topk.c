/*
 * topk.c - the classifiers' predict_topk contract: the checks of its
 * arguments and the selection of the k best classes (see topk.h for the
 * rule: best first, equal ranks to the lower index, -1 padding).
 *
 * Items are visited in increasing index order, so an item being offered
 * has a higher index than every item already kept: against those, "ranks
 * before" alone decides, and an equal later item never displaces an
 * earlier one. Only the heap, which reorders kept items among themselves,
 * needs the full order with the index as the last key. Both paths
 * therefore give exactly the list a stable sort by rank would.
 *
 * The argument checks come first in the file: they are the other half of
 * "the classifiers behave alike at the edges" (n = 0, k = 0, a wrong
 * dimension, NULL outputs give the same answer from all three).
 */
#include "topk.h"

#include "internal.h"
#include "vecmath.h"

#include <assert.h>

int vmf__predict_check_args(const char *fn, size_t model_d, const float *x, size_t n, size_t d)
{
    if (n == 0)
        return VMF_OK;
    if (d != model_d)
        return vmf__error(VMF_EINVAL, "%s: rows have dimension %zu, the model has %zu", fn, d,
                          model_d);
    if (!x)
        return vmf__error(VMF_EINVAL, "%s: x is NULL", fn);
    return VMF_OK;
}

int vmf__predict_check_block(const char *fn, const float *x, size_t n, size_t d, size_t first)
{
    int rc = vmf__rows_check_from(x, n, d, first);
    return rc == VMF_OK ? VMF_OK : vmf__error_wrap(rc, fn, NULL);
}

int vmf__predict_check_rows(const char *fn, size_t model_d, const float *x, size_t n, size_t d)
{
    int rc = vmf__predict_check_args(fn, model_d, x, n, d);
    if (rc != VMF_OK || n == 0)
        return rc;
    return vmf__predict_check_block(fn, x, n, d, 0);
}

int vmf__topk_check_args(const char *fn, size_t model_d, const float *x, size_t n, size_t d,
                         size_t k, const int32_t *classes)
{
    if (k == 0)
        return vmf__error(VMF_EINVAL, "%s: k must be at least 1", fn);
    if (n == 0)
        return VMF_OK;
    if (!classes)
        return vmf__error(VMF_EINVAL, "%s: classes is NULL", fn);
    size_t nk;
    if (vmf__mul_overflow(n, k, &nk))
        return vmf__error(VMF_EINVAL, "%s: n x k overflows", fn);
    return vmf__predict_check_args(fn, model_d, x, n, d);
}

int vmf__topk_check(const char *fn, size_t model_d, const float *x, size_t n, size_t d, size_t k,
                    const int32_t *classes)
{
    int rc = vmf__topk_check_args(fn, model_d, x, n, d, k, classes);
    if (rc != VMF_OK || n == 0)
        return rc;
    return vmf__predict_check_block(fn, x, n, d, 0);
}

/* Above this many slots the sorted prefix gives way to a heap. */
#define TOPK_INSERTION_MAX 16

typedef struct ranker {
    vmf__topk_before before;
    const void *ctx;
} ranker;

/* The total order: rank, then the lower index. */
static inline int better(const ranker *r, int32_t a, int32_t b)
{
    if (r->before(r->ctx, (size_t)a, (size_t)b))
        return 1;
    if (r->before(r->ctx, (size_t)b, (size_t)a))
        return 0;
    return a < b;
}

/*
 * A heap of len items whose root h[0] is the worst kept item: every parent
 * ranks below its children. Restores that from slot i downwards.
 */
static inline void sift_down(const ranker *r, int32_t *h, size_t len, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, w = i;
        if (c < len && better(r, h[w], h[c]))
            w = c;
        if (c + 1 < len && better(r, h[w], h[c + 1]))
            w = c + 1;
        if (w == i)
            return;
        int32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static inline void select_heap(const ranker *r, size_t n, size_t m, int32_t *top)
{
    /* The first m items, made a heap bottom-up (Floyd, O(m)). */
    for (size_t c = 0; c < m; c++)
        top[c] = (int32_t)c;
    for (size_t i = m / 2; i-- > 0;)
        sift_down(r, top, m, i);
    for (size_t c = m; c < n; c++) {
        if (r->before(r->ctx, c, (size_t)top[0])) {
            top[0] = (int32_t)c;
            sift_down(r, top, m, 0);
        }
    }
    /* Heap sort: the worst goes to the end, so the best ends up first. */
    for (size_t end = m; end > 1; end--) {
        int32_t t = top[0];
        top[0] = top[end - 1];
        top[end - 1] = t;
        sift_down(r, top, end - 1, 0);
    }
}

__attribute__((always_inline)) static inline void select_insertion(const ranker *r, size_t n,
                                                                   size_t m, int32_t *top)
{
    /*
     * The last kept item lives in a local: most items do not make the list,
     * and for them the test is then one comparison with no load through
     * top[] (which the stores below would otherwise force to be reloaded).
     */
    size_t len = 0, last = 0;
    for (size_t c = 0; c < n; c++) {
        /* Strictly before the current last, or a free slot; equal keeps the earlier. */
        if (len == m && !r->before(r->ctx, c, last))
            continue;
        size_t pos = len < m ? len++ : m - 1;
        while (pos > 0 && r->before(r->ctx, c, (size_t)top[pos - 1])) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = (int32_t)c;
        last = (size_t)top[len - 1];
    }
}

/*
 * The selection, inlined into both entry points: in vmf__topk_scores the
 * rank is a known function, so the compiler turns each "before" into a
 * plain comparison (prediction calls this twice per row and class).
 */
__attribute__((always_inline)) static inline size_t
select_topk(size_t n, size_t k, vmf__topk_before before, const void *ctx, int32_t *top)
{
    assert(n <= (size_t)INT32_MAX);
    size_t m = k < n ? k : n;
    ranker r = {before, ctx};
    if (m > TOPK_INSERTION_MAX)
        select_heap(&r, n, m, top);
    else if (m > 0)
        select_insertion(&r, n, m, top);
    for (size_t j = m; j < k; j++)
        top[j] = -1;
    return m;
}

size_t vmf__topk(size_t n, size_t k, vmf__topk_before before, const void *ctx, int32_t *top)
{
    return select_topk(n, k, before, ctx, top);
}

static int score_before(const void *ctx, size_t a, size_t b)
{
    const double *score = ctx;
    return score[a] > score[b];
}

/*
 * The scores' own path. Prediction asks for a few of hundreds of classes,
 * and the plain scan above mispredicts a branch for every item that enters
 * the list on its way (about k ln(n / k) of them in a random order). So when
 * m <= TOPK_LANES and there are at least two lanes' worth of scores:
 *
 *   1. the maximum of each of TOPK_LANES lanes (items c = l mod TOPK_LANES)
 *      over the whole blocks, a pass that vectorizes;
 *   2. t = the m-th largest of those maxima. They are distinct items, so at
 *      least m items score >= t: an item below t cannot be in the list;
 *   3. the items >= t (or, once the list is full, >= its last) are gathered
 *      TOPK_CHUNK at a time without a branch per item, and only they go
 *      through the insertion selector, in index order.
 *
 * The selector sees every item of the list, in the same order as the plain
 * scan, so the list is the same (test_topk checks it against a stable sort,
 * with ties and -inf). For predict_topk's 100,000 rows of 200 classes it
 * took the selection from about 0.036 s to 0.024 s (docs/classifier.md).
 */
#define TOPK_LANES 8
#define TOPK_CHUNK 256

static VMF_CLONES VMF_VECTORIZE double lane_threshold(const double *s, size_t nb, size_t m)
{
    double lm[TOPK_LANES];
    for (size_t l = 0; l < TOPK_LANES; l++)
        lm[l] = s[l];
    for (size_t c = TOPK_LANES; c < nb; c += TOPK_LANES) {
#pragma GCC unroll 1 /* one vmaxpd, not a vmaxsd per lane (vecmath.h) */
        for (size_t l = 0; l < TOPK_LANES; l++)
            lm[l] = s[c + l] > lm[l] ? s[c + l] : lm[l];
    }
    /* Insertion sort, largest first: m <= 8 of 8 values. */
    for (size_t i = 1; i < TOPK_LANES; i++) {
        double v = lm[i];
        size_t j = i;
        for (; j > 0 && lm[j - 1] < v; j--)
            lm[j] = lm[j - 1];
        lm[j] = v;
    }
    return lm[m - 1];
}

static VMF_CLONES VMF_VECTORIZE size_t select_scores(const double *s, size_t n, size_t m,
                                                     int32_t *top)
{
    int32_t cand[TOPK_CHUNK];
    double t = lane_threshold(s, n - n % TOPK_LANES, m);
    size_t len = 0;
    for (size_t c0 = 0; c0 < n; c0 += TOPK_CHUNK) {
        size_t end = n - c0 < TOPK_CHUNK ? n : c0 + TOPK_CHUNK, nc = 0;
        /* The chunk's candidates, without a branch per item: at least t, or the last kept. */
        double bar = len < m ? t : s[top[m - 1]];
        for (size_t c = c0; c < end; c++) {
            cand[nc] = (int32_t)c;
            nc += s[c] >= bar;
        }
        for (size_t i = 0; i < nc; i++) {
            size_t c = (size_t)cand[i];
            /* Full: only strictly above the last kept (equal keeps the earlier). */
            if (len == m && !(s[c] > s[top[m - 1]]))
                continue;
            size_t pos = len < m ? len++ : m - 1;
            while (pos > 0 && s[c] > s[top[pos - 1]]) {
                top[pos] = top[pos - 1];
                pos--;
            }
            top[pos] = (int32_t)c;
        }
    }
    assert(len == m);
    return m;
}

size_t vmf__topk_scores(const double *score, size_t n, size_t k, int32_t *top)
{
    size_t m = k < n ? k : n;
    if (m == 0 || m > TOPK_LANES || n < 2 * TOPK_LANES)
        return select_topk(n, k, score_before, score, top);
    assert(n <= (size_t)INT32_MAX);
    select_scores(score, n, m, top);
    for (size_t j = m; j < k; j++)
        top[j] = -1;
    return m;
}
