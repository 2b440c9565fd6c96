/*
 * classifier_fit.c - learning the classifier from labelled rows:
 * vmf_classifier_partial_fit (one batch of a stream) and vmf_classifier_fit
 * (a whole data set, with the cross-fitted prequential record). Rows are
 * grouped by class and each class learns through classifier_grow.c.
 *
 * All-or-nothing updates: partial_fit validates everything, then works on
 * private copies of the label table and of the classes it touches, and swaps
 * them in only when nothing can fail any more.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows of a partial_fit batch / of a batch fit's held-out fifth scored for the record. */
#define PQ_BATCH_ROWS 256
#define PQ_FIT_ROWS   4096

/* ---- batches ---- */

static int check_labels(const vmf_labels *y, size_t n, const char *fn)
{
    if (!y)
        return vmf__error(VMF_EINVAL, "%s: labels are NULL", fn);
    if (y->n != n)
        return vmf__error(VMF_EINVAL, "%s: %zu labels for %zu rows", fn, y->n, n);
    if ((y->ints == NULL) == (y->strs == NULL))
        return vmf__error(VMF_EINVAL, "%s: labels must hold exactly one of ints or strs", fn);
    if (y->strs)
        for (size_t i = 0; i < n; i++)
            if (!y->strs[i])
                return vmf__error(VMF_EINVAL, "%s: label %zu is a NULL string", fn, i);
    return VMF_OK;
}

static int check_rows(size_t want_d, const float *x, size_t n, size_t d, const char *fn)
{
    if (n == 0)
        return vmf__error(VMF_EINVAL, "%s: empty batch (n = 0)", fn);
    if (d < 2 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EINVAL, "%s: dimension %zu outside [2, %zu]", fn, d, VMF__MAX_DIM);
    if (want_d != 0 && d != want_d)
        return vmf__error(VMF_EINVAL, "%s: rows have dimension %zu, the classifier has %zu", fn, d,
                          want_d);
    if (!x)
        return vmf__error(VMF_EINVAL, "%s: x is NULL", fn);
    size_t nd;
    if (vmf__mul_overflow(n, d, &nd) != 0)
        return vmf__error(VMF_EINVAL, "%s: %zu x %zu rows overflow", fn, n, d);
    int rc = vmf_rows_check(x, n, d);
    if (rc != VMF_OK)
        return vmf__error_wrap(rc, fn, NULL);
    return VMF_OK;
}

/*
 * Rows grouped by class: order [n] lists row indices class by class (row
 * order kept within a class), start [nc + 1] delimits them, and xs [n][d]
 * holds the rows in that order.
 */
typedef struct grouping {
    size_t *order, *start;
    float *xs;
} grouping;

static void grouping_free(grouping *g)
{
    vmf__free(g->order);
    vmf__free(g->start);
    vmf__free(g->xs);
    memset(g, 0, sizeof *g);
}

static int group_rows(const float *x, size_t n, size_t d, const int32_t *idx, size_t nc,
                      grouping *g)
{
    memset(g, 0, sizeof *g);
    g->order = vmf__malloc_array(n, sizeof *g->order);
    g->start = vmf__calloc(nc + 1, sizeof *g->start);
    g->xs = vmf__malloc_array(n * d, sizeof *g->xs);
    if (!g->order || !g->start || !g->xs) {
        grouping_free(g);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory grouping %zu rows", n);
    }
    for (size_t i = 0; i < n; i++)
        g->start[(size_t)idx[i] + 1]++;
    for (size_t c = 0; c < nc; c++)
        g->start[c + 1] += g->start[c];
    size_t *fill = vmf__malloc_array(nc ? nc : 1, sizeof *fill);
    if (!fill) {
        grouping_free(g);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory grouping %zu rows", n);
    }
    memcpy(fill, g->start, nc * sizeof *fill);
    for (size_t i = 0; i < n; i++) {
        size_t at = fill[idx[i]]++;
        g->order[at] = i;
        memcpy(g->xs + at * d, x + i * d, d * sizeof *g->xs);
    }
    vmf__free(fill);
    return VMF_OK;
}

int vmf_classifier_partial_fit(vmf_classifier *c, const float *x, size_t n, size_t d,
                               const vmf_labels *y)
{
    const char *fn = "vmf_classifier_partial_fit";
    if (!c)
        return vmf__error(VMF_EINVAL, "%s: classifier is NULL", fn);
    int rc = check_rows(c->d, x, n, d, fn);
    if (rc == VMF_OK)
        rc = check_labels(y, n, fn);
    if (rc != VMF_OK)
        return rc;

    vmf_label_table *tbl = NULL;
    int32_t *idx = NULL;
    grouping g = {0};
    vmf__class **ncls = NULL;
    size_t nc = 0, old_nc = c->n_classes;
    vmf_rng rng = c->rng;
    rc = vmf_label_table_copy(c->labels, &tbl);
    if (rc != VMF_OK)
        return rc;
    idx = vmf__malloc_array(n, sizeof *idx);
    if (!idx) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
        goto fail;
    }
    rc = vmf_label_table_intern(tbl, y, idx);
    if (rc != VMF_OK) {
        if (rc == VMF_EINVAL)
            rc = vmf__error_wrap(VMF_EINVAL, fn, NULL);
        goto fail;
    }
    nc = vmf_label_table_size(tbl);
    rc = group_rows(x, n, d, idx, nc, &g);
    if (rc != VMF_OK)
        goto fail;
    ncls = vmf__calloc(nc, sizeof *ncls);
    if (!ncls) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
        goto fail;
    }
    /*
     * Private copies of the touched classes, and of those whose sample a new
     * class's arrival makes too large (thinned below, before any row is
     * learned); the others are shared until commit.
     */
    size_t cap = vmf__classifier_buf_cap(&c->o, d, nc);
    for (size_t k = 0; k < nc; k++) {
        int thin = k < old_nc && c->cls[k]->buf && c->cls[k]->buf_n > cap;
        if (g.start[k + 1] == g.start[k] && !thin)
            continue;
        if (k < old_nc)
            rc = vmf__class_copy(c->cls[k], d, &ncls[k]);
        else
            rc = vmf__class_new(&c->o, d, cap, &ncls[k]);
        if (rc == VMF_OK && thin)
            rc = vmf__class_thin(ncls[k], d, cap, &rng);
        if (rc != VMF_OK)
            goto fail;
    }
    /* Test, then train: the current model scores rows of known classes first. */
    if (c->o.kappa_scale == 0.0 && old_nc > 0) {
        float *px;
        int32_t *pc;
        size_t pn;
        rc = vmf__classifier_pq_pick(g.xs, g.start, nc, old_nc, d, PQ_BATCH_ROWS, &px, &pc, &pn);
        if (rc == VMF_OK && pn > 0)
            rc = vmf__classifier_pq_score(c, px, pn, pc, ncls);
        vmf__free(px);
        vmf__free(pc);
        if (rc != VMF_OK)
            goto fail;
    }
    for (size_t k = 0; k < nc; k++) {
        size_t cnt = g.start[k + 1] - g.start[k];
        if (cnt == 0)
            continue;
        rc = vmf__class_learn(&c->o, ncls[k], g.xs + g.start[k] * d, cnt, d, cap, &rng);
        if (rc != VMF_OK)
            goto fail;
    }
    /* Commit: from here on only the cache allocation can fail, and it is done aside. */
    vmf_classifier tmp = *c;
    tmp.cls = ncls;
    tmp.n_classes = nc;
    tmp.off = NULL;
    tmp.pmeans = NULL;
    tmp.pcoef = NULL;
    tmp.pkappa = NULL;
    tmp.d = d;
    tmp.rows = c->rows + n;
    for (size_t k = 0; k < old_nc; k++)
        if (!ncls[k])
            ncls[k] = c->cls[k];
    rc = vmf__classifier_refresh(&tmp);
    vmf__head head = {0};
    if (rc == VMF_OK && c->o.refine_rows > 0) {
        rc = vmf__classifier_refine(&tmp, n, &rng, &head);
        if (rc != VMF_OK)
            vmf__classifier_cache_free(&tmp);
    }
    if (rc != VMF_OK) {
        for (size_t k = 0; k < old_nc; k++)
            if (ncls[k] == c->cls[k])
                ncls[k] = NULL;
        goto fail;
    }
    for (size_t k = 0; k < old_nc; k++)
        if (ncls[k] != c->cls[k])
            vmf__class_free(c->cls[k]);
    vmf__free(c->cls);
    vmf_label_table_free(c->labels);
    vmf__classifier_cache_free(c);
    if (c->o.refine_rows > 0) {
        vmf__head_free(&c->head);
        tmp.head = head;
    }
    tmp.labels = tbl;
    tmp.rng = rng;
    *c = tmp;
    vmf__free(idx);
    grouping_free(&g);
    return VMF_OK;
fail:
    if (ncls)
        for (size_t k = 0; k < nc; k++)
            vmf__class_free(ncls[k]);
    vmf__free(ncls);
    vmf__free(idx);
    grouping_free(&g);
    vmf_label_table_free(tbl);
    return rc;
}

/*
 * The prequential record of a batch fit, which has no stream to test on
 * before training: cross-fitting. In fold f, the rows at positions f, f +
 * 5, ... within each class of at least 5 rows are held out, a classifier
 * with the same options (scale fixed) is fitted on the other rows, and it
 * scores the held-out rows (at most about PQ_FIT_ROWS, spread over the
 * classes) into c's classes. Folds stop once PQ_FIT_ROWS rows are scored
 * or after all 5 (each costs a fit on 4/5 of the rows).
 */
static int fit_record(const vmf_classifier_opts *o, const grouping *g, size_t nc, size_t d,
                      vmf_classifier *c)
{
    size_t n = g->start[nc];
    float *xtr = vmf__malloc_array(n * d, sizeof *xtr);
    float *xho = vmf__malloc_array(n * d, sizeof *xho);
    int64_t *ytr = vmf__malloc_array(n, sizeof *ytr);
    size_t *hstart = vmf__malloc_array(nc + 1, sizeof *hstart);
    int rc = VMF_OK;
    if (!xtr || !xho || !ytr || !hstart)
        rc = vmf__error(VMF_ENOMEM, "vmf_classifier_fit: out of memory holding rows out");
    vmf_classifier_opts o2 = *o;
    o2.kappa_scale = 1.0;
    /*
     * The record rates the mixtures' temperature only: the fold models are
     * not refined, so a batch fit has no head-against-mixtures record and
     * predicts with its head (classifier_scale.c, choose_head).
     */
    o2.refine_rows = 0;
    size_t scored = 0;
    for (size_t f = 0; f < 5 && rc == VMF_OK && scored < PQ_FIT_ROWS; f++) {
        size_t a = 0, b = 0;
        for (size_t k = 0; k < nc; k++) {
            size_t cnt = g->start[k + 1] - g->start[k];
            hstart[k] = b;
            for (size_t i = 0; i < cnt; i++) {
                const float *xi = g->xs + (g->start[k] + i) * d;
                if (cnt >= 5 && i % 5 == f) {
                    memcpy(xho + b++ * d, xi, d * sizeof *xho);
                } else {
                    memcpy(xtr + a * d, xi, d * sizeof *xtr);
                    ytr[a++] = (int64_t)k; /* every class keeps rows: index k in m too */
                }
            }
        }
        hstart[nc] = b;
        if (b == 0)
            break;
        vmf_classifier *m = NULL;
        vmf_labels yl = {a, ytr, NULL};
        rc = vmf_classifier_fit(&o2, xtr, a, d, &yl, &m);
        float *px = NULL;
        int32_t *pc = NULL;
        size_t pn = 0;
        if (rc == VMF_OK)
            rc = vmf__classifier_pq_pick(xho, hstart, nc, nc, d, PQ_FIT_ROWS, &px, &pc, &pn);
        if (rc == VMF_OK && pn > 0)
            rc = vmf__classifier_pq_score(m, px, pn, pc, c->cls);
        scored += pn;
        vmf_classifier_free(m);
        vmf__free(px);
        vmf__free(pc);
    }
    vmf__free(xtr);
    vmf__free(xho);
    vmf__free(ytr);
    vmf__free(hstart);
    return rc;
}

int vmf_classifier_fit(const vmf_classifier_opts *o, const float *x, size_t n, size_t d,
                       const vmf_labels *y, vmf_classifier **out)
{
    const char *fn = "vmf_classifier_fit";
    if (!out)
        return vmf__error(VMF_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    VMF__OPTS_OR_DEFAULTS(vmf_classifier_opts, o);
    int rc = vmf__classifier_check_opts(o, fn);
    if (rc == VMF_OK)
        rc = check_rows(0, x, n, d, fn);
    if (rc == VMF_OK)
        rc = check_labels(y, n, fn);
    if (rc != VMF_OK)
        return rc;
    vmf_classifier *c;
    rc = vmf__classifier_alloc(o, d, &c);
    if (rc != VMF_OK)
        return rc;
    int32_t *idx = vmf__malloc_array(n, sizeof *idx);
    grouping g = {0};
    if (!idx) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
        goto done;
    }
    rc = vmf_label_table_intern(c->labels, y, idx);
    if (rc != VMF_OK)
        goto done;
    size_t nc = vmf_label_table_size(c->labels);
    rc = group_rows(x, n, d, idx, nc, &g);
    if (rc != VMF_OK)
        goto done;
    c->cls = vmf__calloc(nc, sizeof *c->cls);
    if (!c->cls) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
        goto done;
    }
    size_t cap = vmf__classifier_buf_cap(o, d, nc);
    for (size_t k = 0; k < nc && rc == VMF_OK; k++) {
        rc = vmf__class_fit(o, g.xs + g.start[k] * d, g.start[k + 1] - g.start[k], d, cap, &c->rng,
                            &c->cls[k]);
        if (rc == VMF_OK)
            c->n_classes = k + 1;
    }
    c->rows = n;
    if (rc == VMF_OK && o->kappa_scale == 0.0)
        rc = fit_record(o, &g, nc, d, c);
    if (rc == VMF_OK)
        rc = vmf__classifier_refresh(c);
    if (rc == VMF_OK && o->refine_rows > 0) {
        /*
         * From scratch, so 32 gradient rows per row (or per sample row, if
         * more) rather than a day's two: about 32 passes over the rows.
         */
        size_t held = 0;
        for (size_t k = 0; k < c->n_classes; k++)
            held += c->cls[k]->buf_n;
        rc = vmf__classifier_refine(c, 16 * (n > held ? n : held), &c->rng, &c->head);
    }
done:
    vmf__free(idx);
    grouping_free(&g);
    if (rc != VMF_OK) {
        vmf_classifier_free(c);
        return rc;
    }
    *out = c;
    return VMF_OK;
}
