/*
 * classifier_io.c - the classifier's binary state (vmf_classifier_save /
 * load) and its model JSON (vmf_classifier_to_json / from_json).
 *
 * Binary layout (all little-endian), framed by vmf__blob_frame with magic
 * "VMFCLSF\0", version 7, a payload length and an FNV-1a 64 checksum:
 *   options: u64 k_max, f64 alpha, f64 t0, f64 eta_floor, u64 minibatch,
 *            u32 estimator, f64 prior_count, f64 prior_rbar, f64 kappa_min,
 *            f64 kappa_max, u64 seed, u64 rows_per_component, u32 pooled_kappa,
 *            u32 count_priors, f64 kappa_scale (version 2 on; a version 1
 *            blob lacks them and loads with count priors and scale 1, which
 *            is how version 1 predicted)
 *   u64 d, u64 rows, rng (4 x u64, f64 spare, u32 has_spare)
 *            u64 refine_rows, f64 refine_lambda, u64 refine_budget,
 *            f64 refine_rate (version 3 on; older blobs load with
 *            refine_rows = 0, which is how they predicted)
 *   u32 label kind (0 integers, 1 strings), u64 n_classes
 *   per class: label (i64, or u64 length + UTF-8 bytes), u64 rows,
 *              u32 has_sample, u64 sample rows, f32 sample [rows][d],
 *              u64 prequential rows, u64 hits [16] (version 2 on), f64 rows,
 *              head and mixture terms of the head-against-mixtures record
 *              (version 3 on: top-1 hits in version 3, which load as no
 *              record; sums of log-probabilities from version 4),
 *              the stepwise payload of stepwise_io.c
 *   version 3 on: u32 has_head, then when 1: u64 n (= n_classes), f32 w [n][d],
 *              f32 momentum [n][d], f64 b [n], f64 momentum [n]
 * Version 5 has version 4's layout; its samples may hold refine_rows x 512 / d
 * rows below d = 512 (vmf__classifier_buf_cap), which a version-4 reader
 * would refuse, hence the number. A version-4 blob loads as it is.
 * Version 6 has version 5's layout; its refine_lambda is the penalty per
 * row (lambda / N), where versions 3 to 5 stored one scaled by the class
 * count (lambda C / N). An older blob loads with lambda x C of its C
 * classes, so it continues with the penalty it had (lambda_from_per_class).
 * Version 7 has version 6's layout; with fewer than 64 classes its samples
 * may hold more than refine_rows (scaled) rows, each class's share of a
 * pool of 64 classes' worth (vmf__classifier_buf_cap), which a version-6
 * reader would refuse. An older blob loads as it is.
 * Every count is checked against the bytes that remain before anything is
 * allocated, so a corrupt or hostile blob is VMF_EFORMAT, never a crash.
 *
 * The JSON holds the same state (options, generator, per-class stepwise
 * state and growth sample) next to the model parameters, so a classifier
 * restored from it continues bit for bit; a JSON that has only "label",
 * "rows" and "mixture" per class (e.g. written by another tool) is accepted
 * too, the statistics then being rebuilt from the parameters.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char CLASSIFIER_MAGIC[8] = {'V', 'M', 'F', 'C', 'L', 'S', 'F', '\0'};
#define CLASSIFIER_VERSION 7u

/*
 * Versions 3 to 5 of the blob, and model JSON with "refine_lambda", held the
 * head's penalty as lambda C / N (C classes, N rows); since version 6 (JSON
 * "refine_lambda_row") it is lambda / N, the same at every class count. The
 * conversion keeps the penalty of the C classes a state holds (a state with
 * none takes ten, where the two agreed by default); continuing from it is
 * bit for bit what the old library did until a new class arrives.
 */
static double lambda_from_per_class(double lambda, size_t n_classes)
{
    double v = lambda * (double)(n_classes > 0 ? n_classes : 10);
    return v < VMF__REFINE_LAMBDA_MAX ? v : VMF__REFINE_LAMBDA_MAX;
}

static double lambda_to_per_class(double lambda, size_t n_classes)
{
    return lambda / (double)(n_classes > 0 ? n_classes : 10);
}
#define MAX_LABEL_BYTES ((uint64_t)1 << 20)

/* ---- binary ---- */

int vmf_classifier_save(const vmf_classifier *c, void **buf, size_t *len)
{
    return vmf__classifier_save_version(c, CLASSIFIER_VERSION, buf, len);
}

int vmf__classifier_save_version(const vmf_classifier *c, uint32_t version, void **buf, size_t *len)
{
    int rc = vmf__blob_out_args("vmf_classifier_save", buf, len, c, "classifier");
    if (rc != VMF_OK)
        return rc;
    const vmf_classifier_opts *o = &c->o;
    const vmf_stepwise_opts *so = &o->stepwise;
    vmf__wbuf b = {0};
    vmf__wbuf_u64(&b, o->k_max);
    vmf__wbuf_f64(&b, so->alpha);
    vmf__wbuf_f64(&b, so->t0);
    vmf__wbuf_f64(&b, so->eta_floor);
    vmf__wbuf_u64(&b, so->minibatch);
    vmf__wbuf_u32(&b, (uint32_t)so->kappa.estimator);
    vmf__wbuf_f64(&b, so->kappa.prior_count);
    vmf__wbuf_f64(&b, so->kappa.prior_rbar);
    vmf__wbuf_f64(&b, so->kappa.kappa_min);
    vmf__wbuf_f64(&b, so->kappa.kappa_max);
    vmf__wbuf_u64(&b, so->seed);
    vmf__wbuf_u64(&b, o->rows_per_component);
    vmf__wbuf_u32(&b, o->pooled_kappa ? 1u : 0u);
    if (version >= 2) {
        vmf__wbuf_u32(&b, o->count_priors ? 1u : 0u);
        vmf__wbuf_f64(&b, o->kappa_scale);
    }
    if (version >= 3) {
        vmf__wbuf_u64(&b, o->refine_rows);
        vmf__wbuf_f64(&b, version >= 6 ? o->refine_lambda
                                       : lambda_to_per_class(o->refine_lambda, c->n_classes));
        vmf__wbuf_u64(&b, o->refine_budget);
        vmf__wbuf_f64(&b, o->refine_rate);
    }
    vmf__wbuf_u64(&b, c->d);
    vmf__wbuf_u64(&b, c->rows);
    for (int i = 0; i < 4; i++)
        vmf__wbuf_u64(&b, c->rng.s[i]);
    vmf__wbuf_f64(&b, c->rng.spare_normal);
    vmf__wbuf_u32(&b, c->rng.has_spare ? 1u : 0u);
    int is_str = vmf_label_table_is_str(c->labels);
    vmf__wbuf_u32(&b, is_str ? 1u : 0u);
    vmf__wbuf_u64(&b, c->n_classes);
    for (size_t i = 0; i < c->n_classes; i++) {
        const vmf__class *cl = c->cls[i];
        if (is_str) {
            const char *s = vmf_label_table_str(c->labels, i);
            size_t sl = strlen(s);
            vmf__wbuf_u64(&b, sl);
            vmf__wbuf_bytes(&b, s, sl);
        } else {
            vmf__wbuf_u64(&b, (uint64_t)vmf_label_table_int(c->labels, i));
        }
        vmf__wbuf_u64(&b, cl->rows);
        vmf__wbuf_u32(&b, cl->buf ? 1u : 0u);
        vmf__wbuf_u64(&b, cl->buf_n);
        vmf__wbuf_f32s(&b, cl->buf, cl->buf ? cl->buf_n * c->d : 0);
        if (version >= 2) {
            vmf__wbuf_u64(&b, cl->pq_rows);
            for (size_t g = 0; g < VMF__SCALE_GRID; g++)
                vmf__wbuf_u64(&b, cl->pq_hits[g]);
        }
        if (version >= 3) {
            vmf__wbuf_f64(&b, cl->cmp_rows);
            vmf__wbuf_f64(&b, cl->cmp_head);
            vmf__wbuf_f64(&b, cl->cmp_mix);
        }
        vmf__stepwise_write(&b, cl->sw);
    }
    if (version >= 3) {
        const vmf__head *h = &c->head;
        vmf__wbuf_u32(&b, h->w ? 1u : 0u);
        if (h->w) {
            vmf__wbuf_u64(&b, h->n);
            vmf__wbuf_f32s(&b, h->w, h->n * c->d);
            vmf__wbuf_f32s(&b, h->mw, h->n * c->d);
            vmf__wbuf_f64s(&b, h->b, h->n);
            vmf__wbuf_f64s(&b, h->mb, h->n);
        }
    }
    rc = vmf__blob_frame(CLASSIFIER_MAGIC, version, &b, buf, len);
    vmf__free(b.p);
    return rc;
}

/* Interns one label (integer or string) as the next class; it must be new. */
static int intern_one(vmf_label_table *t, int is_str, int64_t iv, const char *sv, const char *where)
{
    vmf_labels y = {1, NULL, NULL};
    if (is_str)
        y.strs = &sv;
    else
        y.ints = &iv;
    size_t before = vmf_label_table_size(t);
    int rc = vmf_label_table_intern(t, &y, NULL);
    if (rc != VMF_OK)
        return rc == VMF_ENOMEM ? rc : vmf__error(VMF_EFORMAT, "%s: bad label", where);
    if (vmf_label_table_size(t) != before + 1)
        return vmf__error(VMF_EFORMAT, "%s: duplicate class label", where);
    return VMF_OK;
}

/*
 * Checks a restored class against the classifier: dimension, row clock,
 * component count within k_max, sample size within its capacity, a
 * prequential record within the class's rows.
 */
static int check_class(const vmf_classifier *c, const vmf__class *cl, const char *where)
{
    if (cl->pq_rows > cl->rows)
        return vmf__error(VMF_EFORMAT, "%s: more prequential rows than rows", where);
    /* Each row adds between VMF__CMP_LOGP_MIN and 0 (the slack covers rounding). */
    double lo = VMF__CMP_LOGP_MIN * cl->cmp_rows * (1.0 + 1e-9);
    if (!(cl->cmp_rows >= 0.0 && cl->cmp_rows <= VMF__CMP_WINDOW && cl->cmp_head <= 0.0 &&
          cl->cmp_head >= lo && cl->cmp_mix <= 0.0 && cl->cmp_mix >= lo))
        return vmf__error(VMF_EFORMAT, "%s: bad head-against-mixtures record", where);
    for (size_t g = 0; g < VMF__SCALE_GRID; g++)
        if (cl->pq_hits[g] > cl->pq_rows)
            return vmf__error(VMF_EFORMAT, "%s: more prequential hits than rows", where);
    const vmf_stepwise *sw = cl->sw;
    if (sw->d != c->d || sw->clock != VMF__CLOCK_ROWS || !sw->m || sw->m->k > c->o.k_max)
        return vmf__error(VMF_EFORMAT, "%s: class state does not fit the classifier", where);
    if (cl->rows == 0)
        return vmf__error(VMF_EFORMAT, "%s: class with no rows", where);
    return VMF_OK;
}

static int read_opts(vmf__rbuf *r, uint32_t version, vmf_classifier_opts *o)
{
    vmf_classifier_opts_init(o);
    vmf_stepwise_opts *so = &o->stepwise;
    uint64_t kmax = vmf__rbuf_u64(r);
    so->alpha = vmf__rbuf_f64(r);
    so->t0 = vmf__rbuf_f64(r);
    so->eta_floor = vmf__rbuf_f64(r);
    uint64_t mb = vmf__rbuf_u64(r);
    uint32_t est = vmf__rbuf_u32(r);
    so->kappa.prior_count = vmf__rbuf_f64(r);
    so->kappa.prior_rbar = vmf__rbuf_f64(r);
    so->kappa.kappa_min = vmf__rbuf_f64(r);
    so->kappa.kappa_max = vmf__rbuf_f64(r);
    so->seed = vmf__rbuf_u64(r);
    uint64_t rpc = vmf__rbuf_u64(r);
    uint32_t pooled = vmf__rbuf_u32(r), counts = 1;
    o->kappa_scale = 1.0;
    if (version >= 2) {
        counts = vmf__rbuf_u32(r);
        o->kappa_scale = vmf__rbuf_f64(r);
    }
    uint64_t rrows = 0, rbudget = o->refine_budget;
    if (version >= 3) {
        rrows = vmf__rbuf_u64(r);
        o->refine_lambda = vmf__rbuf_f64(r);
        rbudget = vmf__rbuf_u64(r);
        o->refine_rate = vmf__rbuf_f64(r);
    }
    if (r->bad)
        return vmf__error(VMF_EFORMAT, "vmf_classifier_load: truncated options");
    if (kmax > 1024 || mb > ((uint64_t)1 << 40) || est > (uint32_t)VMF_KAPPA_EXACT ||
        rpc > ((uint64_t)1 << 20) || pooled > 1 || counts > 1 || rrows > ((uint64_t)1 << 20) ||
        rbudget > ((uint64_t)1 << 30))
        return vmf__error(VMF_EFORMAT, "vmf_classifier_load: invalid options");
    o->k_max = (size_t)kmax;
    so->minibatch = (size_t)mb;
    so->kappa.estimator = (vmf_kappa_estimator)est;
    o->rows_per_component = (size_t)rpc;
    o->pooled_kappa = (int)pooled;
    o->count_priors = (int)counts;
    o->refine_rows = (size_t)rrows;
    o->refine_budget = (size_t)rbudget;
    int rc = vmf__classifier_check_opts(o, "vmf_classifier_load");
    return rc == VMF_EINVAL ? vmf__error_wrap(VMF_EFORMAT, "invalid options", NULL) : rc;
}

int vmf_classifier_load(const void *buf, size_t len, vmf_classifier **out)
{
    const char *fn = "vmf_classifier_load";
    if (!out)
        return vmf__error(VMF_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    vmf__rbuf r;
    /*
     * Version 1 (no prediction options), 2 (no refinement), 3 (a record of
     * hits), 4 (smaller samples below d = 512), 5 (a penalty scaled by
     * the class count) and 6 (no pooled samples) blobs are still read.
     */
    uint32_t version = CLASSIFIER_VERSION;
    if (buf && len >= 12 && memcmp(buf, CLASSIFIER_MAGIC, 8) == 0 &&
        ((const uint8_t *)buf)[8] >= 1 && ((const uint8_t *)buf)[8] < CLASSIFIER_VERSION &&
        ((const uint8_t *)buf)[9] == 0 && ((const uint8_t *)buf)[10] == 0 &&
        ((const uint8_t *)buf)[11] == 0)
        version = ((const uint8_t *)buf)[8];
    int rc = vmf__blob_open(CLASSIFIER_MAGIC, version, buf, len, fn, &r);
    if (rc != VMF_OK)
        return rc;
    vmf_classifier_opts o;
    rc = read_opts(&r, version, &o);
    if (rc != VMF_OK)
        return rc;
    uint64_t d = vmf__rbuf_u64(&r), rows = vmf__rbuf_u64(&r);
    vmf_rng rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = vmf__rbuf_u64(&r);
    rng.spare_normal = vmf__rbuf_f64(&r);
    uint32_t spare = vmf__rbuf_u32(&r), is_str = vmf__rbuf_u32(&r);
    uint64_t nc = vmf__rbuf_u64(&r);
    if (r.bad)
        return vmf__error(VMF_EFORMAT, "%s: truncated header", fn);
    if (d == 1 || d > (uint64_t)VMF__MAX_DIM || spare > 1 || is_str > 1 ||
        !isfinite(rng.spare_normal) || (nc > 0 && d == 0))
        return vmf__error(VMF_EFORMAT, "%s: invalid header fields", fn);
    /* Each class takes more than 64 bytes, so nc is bounded by the blob size. */
    if (!vmf__rbuf_has(&r, nc, 64))
        return vmf__error(VMF_EFORMAT, "%s: %" PRIu64 " classes cannot fit in %zu bytes", fn, nc,
                          r.len);
    rng.has_spare = (int)spare;
    vmf_classifier *c;
    rc = vmf__classifier_alloc(&o, (size_t)d, &c);
    if (rc != VMF_OK)
        return rc;
    c->rows = rows;
    c->rng = rng;
    char *label = NULL;
    if (nc > 0) {
        c->cls = vmf__calloc((size_t)nc, sizeof *c->cls);
        if (!c->cls) {
            rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
            goto fail;
        }
    }
    size_t cap = vmf__classifier_buf_cap(&o, (size_t)d, (size_t)nc);
    uint64_t total = 0;
    for (uint64_t i = 0; i < nc; i++) {
        char where[64];
        snprintf(where, sizeof where, "%s: class %" PRIu64, fn, i);
        int64_t iv = 0;
        if (is_str) {
            uint64_t sl = vmf__rbuf_u64(&r);
            if (r.bad || sl > MAX_LABEL_BYTES || !vmf__rbuf_has(&r, (size_t)sl, 1)) {
                rc = vmf__error(VMF_EFORMAT, "%s: bad label length", where);
                goto fail;
            }
            label = vmf__malloc((size_t)sl + 1);
            if (!label) {
                rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
                goto fail;
            }
            vmf__rbuf_bytes(&r, label, (size_t)sl);
            label[sl] = '\0';
            if (strlen(label) != sl) {
                rc = vmf__error(VMF_EFORMAT, "%s: label holds a NUL byte", where);
                goto fail;
            }
        } else {
            iv = (int64_t)vmf__rbuf_u64(&r);
        }
        rc = intern_one(c->labels, (int)is_str, iv, label, where);
        vmf__free(label);
        label = NULL;
        if (rc != VMF_OK)
            goto fail;
        vmf__class *cl = vmf__calloc(1, sizeof *cl);
        if (!cl) {
            rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
            goto fail;
        }
        c->cls[i] = cl;
        c->n_classes = (size_t)i + 1;
        cl->rows = vmf__rbuf_u64(&r);
        uint32_t has_buf = vmf__rbuf_u32(&r);
        uint64_t bn = vmf__rbuf_u64(&r);
        if (r.bad || has_buf > 1 || bn > cap || (!has_buf && bn != 0) ||
            !vmf__rbuf_has(&r, (size_t)bn * (size_t)d, 4)) {
            rc = vmf__error(VMF_EFORMAT, "%s: bad growth sample", where);
            goto fail;
        }
        if (has_buf) {
            /* Room for what is held; learning grows it. */
            rc = vmf__class_sample_alloc(cl, (size_t)bn, (size_t)d);
            if (rc != VMF_OK)
                goto fail;
            cl->buf_n = (size_t)bn;
            vmf__rbuf_f32s(&r, cl->buf, (size_t)bn * (size_t)d);
            if (cl->buf_n > 0 && vmf_rows_check(cl->buf, cl->buf_n, (size_t)d) != VMF_OK) {
                rc = vmf__error_wrap(VMF_EFORMAT, where, "growth sample");
                goto fail;
            }
        }
        if (version >= 2) {
            cl->pq_rows = vmf__rbuf_u64(&r);
            for (size_t g = 0; g < VMF__SCALE_GRID; g++)
                cl->pq_hits[g] = vmf__rbuf_u64(&r);
        }
        if (version >= 3) {
            cl->cmp_rows = vmf__rbuf_f64(&r);
            cl->cmp_head = vmf__rbuf_f64(&r);
            cl->cmp_mix = vmf__rbuf_f64(&r);
            if (version == 3) /* hits, not log-probabilities: start a new record */
                cl->cmp_rows = cl->cmp_head = cl->cmp_mix = 0.0;
        }
        rc = vmf__stepwise_read(&r, where, &cl->sw);
        if (rc == VMF_OK)
            rc = check_class(c, cl, where);
        if (rc != VMF_OK)
            goto fail;
        total += cl->rows;
    }
    if (version >= 3) {
        uint32_t has_head = vmf__rbuf_u32(&r);
        uint64_t hn = has_head == 1 ? vmf__rbuf_u64(&r) : 0;
        if (r.bad || has_head > 1 || (has_head && (hn != nc || nc == 0 || !o.refine_rows)) ||
            !vmf__rbuf_has(&r, (size_t)hn * (size_t)d, 8) || !vmf__rbuf_has(&r, (size_t)hn, 16)) {
            rc = vmf__error(VMF_EFORMAT, "%s: bad refinement head", fn);
            goto fail;
        }
        if (has_head) {
            vmf__head *h = &c->head;
            h->w = vmf__malloc_array((size_t)hn * (size_t)d, sizeof *h->w);
            h->mw = vmf__malloc_array((size_t)hn * (size_t)d, sizeof *h->mw);
            h->b = vmf__malloc_array((size_t)hn, sizeof *h->b);
            h->mb = vmf__malloc_array((size_t)hn, sizeof *h->mb);
            if (!h->w || !h->mw || !h->b || !h->mb) {
                rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
                goto fail;
            }
            h->n = (size_t)hn;
            vmf__rbuf_f32s(&r, h->w, h->n * (size_t)d);
            vmf__rbuf_f32s(&r, h->mw, h->n * (size_t)d);
            vmf__rbuf_f64s(&r, h->b, h->n);
            vmf__rbuf_f64s(&r, h->mb, h->n);
            int finite = !r.bad;
            for (size_t j = 0; j < h->n * (size_t)d && finite; j++)
                finite = isfinite(h->w[j]) && isfinite(h->mw[j]);
            for (size_t j = 0; j < h->n && finite; j++)
                finite = isfinite(h->b[j]) && isfinite(h->mb[j]);
            if (!finite) {
                rc = vmf__error(VMF_EFORMAT, "%s: refinement head is not finite", fn);
                goto fail;
            }
        }
    }
    if (version >= 3 && version <= 5)
        c->o.refine_lambda = lambda_from_per_class(c->o.refine_lambda, (size_t)nc);
    if (r.pos != r.len || total != rows) {
        rc = vmf__error(VMF_EFORMAT, "%s: %s", fn,
                        r.pos != r.len ? "trailing bytes" : "class rows do not add up");
        goto fail;
    }
    rc = vmf__classifier_refresh(c);
    if (rc == VMF_EINVAL || rc == VMF_ERANGE)
        rc = vmf__error_wrap(VMF_EFORMAT, fn, "inconsistent statistics");
    if (rc != VMF_OK)
        goto fail;
    *out = c;
    return VMF_OK;
fail:
    vmf__free(label);
    vmf_classifier_free(c);
    return rc;
}

/* ---- JSON ---- */

static json_t *floats_rows(const float *x, size_t n, size_t d)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n && a; i++) {
        json_t *row = json_array();
        int bad = !row || json_array_append_new(a, row) != 0;
        for (size_t j = 0; j < d && !bad; j++)
            bad = json_array_append_new(row, json_real((double)x[i * d + j])) != 0;
        if (bad) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int vmf_classifier_to_json(const vmf_classifier *c, char **json)
{
    int rc = vmf__json_out_args("vmf_classifier_to_json", json, c, "classifier");
    if (rc != VMF_OK)
        return rc;
    const vmf_classifier_opts *o = &c->o;
    const vmf_stepwise_opts *so = &o->stepwise;
    json_t *root = json_object(), *opts = json_object(), *kap = json_object(), *rng = json_object(),
           *classes = json_array();
    int bad = !root || !opts || !kap || !rng || !classes;
    bad |= json_object_set_new(root, "format", json_string("vmfmm-model"));
    bad |= json_object_set_new(root, "version", json_integer(1));
    bad |= json_object_set_new(root, "kind", json_string("classifier"));
    bad |= json_object_set_new(root, "dim", json_integer((json_int_t)c->d));
    bad |= json_object_set_new(root, "n_classes", json_integer((json_int_t)c->n_classes));
    bad |= json_object_set_new(root, "rows_seen", vmf__json_u64(c->rows));
    bad |= json_object_set_new(root, "kappa_pooled", json_real(c->kappa_pool));
    bad |= json_object_set_new(opts, "k_max", json_integer((json_int_t)o->k_max));
    bad |= json_object_set_new(opts, "alpha", json_real(so->alpha));
    bad |= json_object_set_new(opts, "t0", json_real(so->t0));
    bad |= json_object_set_new(opts, "eta_floor", json_real(so->eta_floor));
    bad |= json_object_set_new(opts, "minibatch", json_integer((json_int_t)so->minibatch));
    bad |= json_object_set_new(opts, "seed", vmf__json_u64(so->seed));
    bad |= json_object_set_new(opts, "rows_per_component",
                               json_integer((json_int_t)o->rows_per_component));
    bad |= json_object_set_new(opts, "pooled_kappa", json_boolean(o->pooled_kappa));
    bad |= json_object_set_new(opts, "count_priors", json_boolean(o->count_priors));
    bad |= json_object_set_new(opts, "kappa_scale", json_real(o->kappa_scale));
    bad |= json_object_set_new(opts, "refine_rows", json_integer((json_int_t)o->refine_rows));
    bad |= json_object_set_new(opts, "refine_lambda_row", json_real(o->refine_lambda));
    bad |= json_object_set_new(opts, "refine_budget", json_integer((json_int_t)o->refine_budget));
    bad |= json_object_set_new(opts, "refine_rate", json_real(o->refine_rate));
    bad |= !kap || vmf__json_set_kappa_opts(kap, &so->kappa);
    bad |= json_object_set(opts, "kappa", kap);
    bad |= json_object_set(root, "options", opts);
    bad |= !rng || vmf__json_set_rng(rng, &c->rng);
    bad |= json_object_set(root, "rng", rng);
    int is_str = vmf_label_table_is_str(c->labels);
    for (size_t i = 0; i < c->n_classes && !bad; i++) {
        const vmf__class *cl = c->cls[i];
        json_t *e = json_object();
        bad |= !e || json_array_append_new(classes, e) != 0;
        if (bad)
            break;
        bad |= json_object_set_new(e, "label",
                                   is_str ? json_string(vmf_label_table_str(c->labels, i))
                                          : json_integer(vmf_label_table_int(c->labels, i)));
        bad |= json_object_set_new(e, "prior", json_real(vmf_classifier_class_prior(c, i)));
        bad |= json_object_set_new(e, "rows", vmf__json_u64(cl->rows));
        void *mj = NULL, *sj = NULL;
        bad |= vmf__mixture_to_json_obj(cl->sw->m, &mj) != VMF_OK;
        bad |= !mj || json_object_set_new(e, "mixture", mj) != 0;
        bad |= vmf__stepwise_to_json_obj(cl->sw, &sj) != VMF_OK;
        bad |= !sj || json_object_set_new(e, "state", sj) != 0;
        json_t *sample = cl->buf ? floats_rows(cl->buf, cl->buf_n, c->d) : json_null();
        bad |= !sample || json_object_set_new(e, "sample", sample) != 0;
        json_t *pq = json_object(), *hits = json_array();
        bad |= !pq || !hits;
        for (size_t g = 0; g < VMF__SCALE_GRID && !bad; g++)
            bad |= json_array_append_new(hits, json_integer((json_int_t)cl->pq_hits[g])) != 0;
        bad |= !pq || json_object_set_new(pq, "rows", json_integer((json_int_t)cl->pq_rows)) != 0;
        json_t *cmp = json_pack("[f,f,f]", cl->cmp_rows, cl->cmp_head, cl->cmp_mix);
        bad |= !pq || !cmp || json_object_set_new(pq, "head_vs_mixtures_logp", cmp) != 0;
        bad |= !pq || json_object_set(pq, "hits", hits) != 0;
        json_decref(hits);
        bad |= !pq || json_object_set_new(e, "prequential", pq) != 0;
        if (c->head.w && !bad) {
            const vmf__head *h = &c->head;
            json_t *rf = json_object(), *w = floats_rows(h->w + i * c->d, 1, c->d),
                   *mw = floats_rows(h->mw + i * c->d, 1, c->d);
            bad |= !rf || !w || !mw;
            bad |= !rf || !w || json_object_set(rf, "w", json_array_get(w, 0)) != 0;
            bad |= !rf || !mw || json_object_set(rf, "mw", json_array_get(mw, 0)) != 0;
            bad |= !rf || json_object_set_new(rf, "b", json_real(h->b[i])) != 0;
            bad |= !rf || json_object_set_new(rf, "mb", json_real(h->mb[i])) != 0;
            json_decref(w);
            json_decref(mw);
            bad |= !rf || json_object_set_new(e, "refine", rf) != 0;
        }
    }
    bad |= json_object_set(root, "classes", classes);
    json_decref(opts);
    json_decref(kap);
    json_decref(rng);
    json_decref(classes);
    rc = bad ? vmf__error(VMF_ENOMEM, "vmf_classifier_to_json: out of memory")
             : vmf__json_dump(root, json, "vmf_classifier_to_json");
    json_decref(root);
    return rc;
}

/*
 * The options object into o; *per_class is set when it gives the head's
 * penalty the older way ("refine_lambda", scaled by the class count).
 */
static int json_opts(const json_t *jo, vmf_classifier_opts *o, int *per_class)
{
    const char *w = "classifier JSON options";
    vmf_classifier_opts_init(o);
    *per_class = 0;
    vmf_stepwise_opts *so = &o->stepwise;
    if (!jo)
        return VMF_OK;
    if (!json_is_object(jo))
        return vmf__error(VMF_EFORMAT, "%s: not an object", w);
    int rc = vmf__json_get_size(jo, "k_max", VMF__JSON_OPTIONAL, w, &o->k_max);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(jo, "alpha", VMF__JSON_OPTIONAL, w, &so->alpha);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(jo, "t0", VMF__JSON_OPTIONAL, w, &so->t0);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(jo, "eta_floor", VMF__JSON_OPTIONAL, w, &so->eta_floor);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(jo, "minibatch", VMF__JSON_OPTIONAL, w, &so->minibatch);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(jo, "rows_per_component", VMF__JSON_OPTIONAL, w,
                                &o->rows_per_component);
    if (rc == VMF_OK)
        rc = vmf__json_get_hex64(jo, "seed", VMF__JSON_OPTIONAL, w, &so->seed);
    if (rc != VMF_OK)
        return rc;
    const json_t *v = json_object_get(jo, "pooled_kappa");
    if (v) {
        if (!json_is_boolean(v))
            return vmf__error(VMF_EFORMAT, "%s: \"pooled_kappa\" must be a boolean", w);
        o->pooled_kappa = json_is_true(v);
    }
    v = json_object_get(jo, "count_priors");
    if (v) {
        if (!json_is_boolean(v))
            return vmf__error(VMF_EFORMAT, "%s: \"count_priors\" must be a boolean", w);
        o->count_priors = json_is_true(v);
    }
    rc = vmf__json_get_f64(jo, "kappa_scale", VMF__JSON_OPTIONAL, w, &o->kappa_scale);
    /* A JSON from before the refinement has no refine_rows: it predicted without. */
    o->refine_rows = 0;
    if (rc == VMF_OK)
        rc = vmf__json_get_size(jo, "refine_rows", VMF__JSON_OPTIONAL, w, &o->refine_rows);
    if (rc == VMF_OK && json_object_get(jo, "refine_lambda_row") != NULL) {
        rc = vmf__json_get_f64(jo, "refine_lambda_row", VMF__JSON_OPTIONAL, w, &o->refine_lambda);
    } else if (rc == VMF_OK && json_object_get(jo, "refine_lambda") != NULL) {
        *per_class = 1;
        rc = vmf__json_get_f64(jo, "refine_lambda", VMF__JSON_OPTIONAL, w, &o->refine_lambda);
    }
    if (rc == VMF_OK)
        rc = vmf__json_get_size(jo, "refine_budget", VMF__JSON_OPTIONAL, w, &o->refine_budget);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(jo, "refine_rate", VMF__JSON_OPTIONAL, w, &o->refine_rate);
    if (rc != VMF_OK)
        return rc;
    const json_t *k = json_object_get(jo, "kappa");
    if (k) {
        v = json_object_get(k, "estimator");
        if (v && (!json_is_string(v) ||
                  vmf_kappa_estimator_parse(json_string_value(v), &so->kappa.estimator) != VMF_OK))
            return vmf__error(VMF_EFORMAT, "%s: unknown kappa estimator", w);
        rc = vmf__json_get_f64(k, "prior_count", VMF__JSON_OPTIONAL, w, &so->kappa.prior_count);
        if (rc == VMF_OK)
            rc = vmf__json_get_f64(k, "prior_rbar", VMF__JSON_OPTIONAL, w, &so->kappa.prior_rbar);
        if (rc == VMF_OK)
            rc = vmf__json_get_f64(k, "kappa_min", VMF__JSON_OPTIONAL, w, &so->kappa.kappa_min);
        if (rc == VMF_OK)
            rc = vmf__json_get_f64(k, "kappa_max", VMF__JSON_OPTIONAL, w, &so->kappa.kappa_max);
        if (rc != VMF_OK)
            return rc;
    }
    rc = vmf__classifier_check_opts(o, w);
    return rc == VMF_EINVAL ? vmf__error_wrap(VMF_EFORMAT, "invalid options", NULL) : rc;
}

/* One class from its JSON object into cl (allocated by the caller, zeroed). */
static int json_class(const vmf_classifier *c, const json_t *e, const char *where, size_t cap,
                      vmf__class *cl)
{
    if (!json_is_object(e))
        return vmf__error(VMF_EFORMAT, "%s: not an object", where);
    const json_t *rows = json_object_get(e, "rows");
    if (json_is_integer(rows) && json_integer_value(rows) > 0)
        cl->rows = (uint64_t)json_integer_value(rows);
    else if (vmf__json_get_u64(rows, &cl->rows) != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"rows\" must be a positive count", where);
    const json_t *pq = json_object_get(e, "prequential");
    if (pq) {
        const json_t *pr = json_object_get(pq, "rows"), *ph = json_object_get(pq, "hits");
        if (!json_is_integer(pr) || json_integer_value(pr) < 0 || !json_is_array(ph) ||
            json_array_size(ph) != VMF__SCALE_GRID)
            return vmf__error(VMF_EFORMAT,
                              "%s: \"prequential\" needs \"rows\" and %d \"hits\" counts", where,
                              VMF__SCALE_GRID);
        cl->pq_rows = (uint64_t)json_integer_value(pr);
        for (size_t g = 0; g < VMF__SCALE_GRID; g++) {
            const json_t *h = json_array_get(ph, g);
            if (!json_is_integer(h) || json_integer_value(h) < 0)
                return vmf__error(VMF_EFORMAT, "%s: prequential hits must be counts", where);
            cl->pq_hits[g] = (uint64_t)json_integer_value(h);
        }
        /* An older "head_vs_mixtures" (hits) is ignored: a new record starts. */
        const json_t *cmp = json_object_get(pq, "head_vs_mixtures_logp");
        if (cmp) {
            double v[3];
            for (size_t k = 0; k < 3; k++) {
                const json_t *ev = json_array_get(cmp, k);
                if (!json_is_array(cmp) || json_array_size(cmp) != 3 || !json_is_number(ev))
                    return vmf__error(VMF_EFORMAT, "%s: \"head_vs_mixtures_logp\" needs 3 numbers",
                                      where);
                v[k] = json_number_value(ev);
            }
            cl->cmp_rows = v[0];
            cl->cmp_head = v[1];
            cl->cmp_mix = v[2];
        }
    }
    const json_t *state = json_object_get(e, "state");
    int rc;
    if (state) {
        rc = vmf__stepwise_from_json_obj(state, where, &cl->sw);
    } else {
        /* Parameters only: statistics from the parameters, as if from `rows` rows. */
        vmf_mixture *m;
        rc = vmf__mixture_from_json_obj(json_object_get(e, "mixture"), where, &m);
        if (rc != VMF_OK)
            return rc;
        vmf_stepwise_opts so;
        vmf__classifier_sw_opts(&c->o, m->k, &so);
        rc = vmf__stepwise_new_clock(&so, m->d, VMF__CLOCK_ROWS, &cl->sw);
        double *s0 = NULL, *s1 = NULL;
        if (rc == VMF_OK) {
            s0 = vmf__malloc_array(m->k, sizeof *s0);
            s1 = vmf__malloc_array(m->k * m->d, sizeof *s1);
            if (!s0 || !s1)
                rc = vmf__error(VMF_ENOMEM, "%s: out of memory", where);
        }
        if (rc == VMF_OK) {
            vmf__stepwise_expected_stats(m, s0, s1);
            rc = vmf__stepwise_reset(cl->sw, m, s0, s1);
        }
        vmf__free(s0);
        vmf__free(s1);
        if (rc != VMF_OK) {
            vmf_mixture_free(m);
            return rc;
        }
        cl->sw->rows = cl->rows;
        cl->sw->steps = (cl->rows + c->o.stepwise.minibatch - 1) / c->o.stepwise.minibatch;
    }
    if (rc == VMF_OK)
        rc = cl->sw->d == c->d ? check_class(c, cl, where)
                               : vmf__error(VMF_EFORMAT, "%s: class dimension differs", where);
    if (rc != VMF_OK)
        return rc;
    const json_t *sample = json_object_get(e, "sample");
    if (!sample || json_is_null(sample)) {
        /* No sample: the class can grow no more, unless it has to (then start one). */
        return cl->sw->m->k < c->o.k_max ? vmf__class_sample_alloc(cl, 0, c->d) : VMF_OK;
    }
    size_t d = c->d;
    if (!json_is_array(sample) || json_array_size(sample) > cap)
        return vmf__error(VMF_EFORMAT, "%s: \"sample\" must hold at most %zu rows", where, cap);
    rc = vmf__class_sample_alloc(cl, json_array_size(sample), d);
    if (rc != VMF_OK)
        return rc;
    cl->buf_n = json_array_size(sample);
    for (size_t i = 0; i < cl->buf_n; i++) {
        const json_t *row = json_array_get(sample, i);
        if (!json_is_array(row) || json_array_size(row) != d)
            return vmf__error(VMF_EFORMAT, "%s: sample row %zu must hold %zu numbers", where, i, d);
        for (size_t j = 0; j < d; j++) {
            const json_t *v = json_array_get(row, j);
            if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
                fabs(json_number_value(v)) > 2.0)
                return vmf__error(VMF_EFORMAT, "%s: sample[%zu][%zu] is not a valid number", where,
                                  i, j);
            cl->buf[i * d + j] = (float)json_number_value(v);
        }
    }
    if (cl->buf_n > 0 && vmf_rows_check(cl->buf, cl->buf_n, d) != VMF_OK)
        return vmf__error_wrap(VMF_EFORMAT, where, "sample");
    return VMF_OK;
}

/* d finite numbers of a JSON array into v. */
static int json_floats(const json_t *a, size_t d, float *v)
{
    if (!json_is_array(a) || json_array_size(a) != d)
        return -1;
    for (size_t j = 0; j < d; j++) {
        const json_t *e = json_array_get(a, j);
        if (!json_is_number(e) || !isfinite(json_number_value(e)) ||
            fabs(json_number_value(e)) > 3e38)
            return -1;
        v[j] = (float)json_number_value(e);
    }
    return 0;
}

/*
 * The refinement head from the classes' "refine" objects: all classes have
 * one (with refine_rows > 0), or none does and the classifier predicts with
 * its mixtures until its next partial_fit builds the head.
 */
static int json_head(vmf_classifier *c, const json_t *jc)
{
    size_t nc = c->n_classes, d = c->d, have = 0;
    for (size_t i = 0; i < nc; i++)
        have += json_object_get(json_array_get(jc, i), "refine") != NULL;
    if (have == 0)
        return VMF_OK;
    if (have != nc || c->o.refine_rows == 0)
        return vmf__error(VMF_EFORMAT, "classifier JSON: \"refine\" must be in every class, "
                                       "and only with refine_rows > 0");
    vmf__head *h = &c->head;
    h->w = vmf__malloc_array(nc * d, sizeof *h->w);
    h->mw = vmf__malloc_array(nc * d, sizeof *h->mw);
    h->b = vmf__malloc_array(nc, sizeof *h->b);
    h->mb = vmf__malloc_array(nc, sizeof *h->mb);
    if (!h->w || !h->mw || !h->b || !h->mb) {
        vmf__head_free(h);
        return vmf__error(VMF_ENOMEM, "classifier JSON: out of memory");
    }
    h->n = nc;
    for (size_t i = 0; i < nc; i++) {
        const json_t *rf = json_object_get(json_array_get(jc, i), "refine");
        const json_t *b = json_object_get(rf, "b"), *mb = json_object_get(rf, "mb");
        if (json_floats(json_object_get(rf, "w"), d, h->w + i * d) != 0 ||
            json_floats(json_object_get(rf, "mw"), d, h->mw + i * d) != 0 || !json_is_number(b) ||
            !json_is_number(mb) || !isfinite(json_number_value(b)) ||
            !isfinite(json_number_value(mb))) {
            vmf__head_free(h);
            return vmf__error(VMF_EFORMAT,
                              "classes[%zu]: \"refine\" needs \"w\" and \"mw\" of %zu numbers "
                              "and numbers \"b\" and \"mb\"",
                              i, d);
        }
        h->b[i] = json_number_value(b);
        h->mb[i] = json_number_value(mb);
    }
    return VMF_OK;
}

int vmf_classifier_from_json(const char *json, size_t len, vmf_classifier **out)
{
    const char *fn = "classifier JSON";
    if (out)
        *out = NULL;
    void *parsed;
    int rc = vmf__json_parse_args("vmf_classifier_from_json", out != NULL, json, len, fn, &parsed);
    if (rc != VMF_OK)
        return rc;
    json_t *root = parsed;
    vmf_classifier *c = NULL;
    const json_t *v = json_object_get(root, "format");
    if (!json_is_object(root) || !json_is_string(v) ||
        strcmp(json_string_value(v), "vmfmm-model") != 0) {
        rc = vmf__error(VMF_EFORMAT, "%s: \"format\" must be \"vmfmm-model\"", fn);
        goto done;
    }
    v = json_object_get(root, "version");
    const json_t *kind = json_object_get(root, "kind");
    if (!json_is_integer(v) || json_integer_value(v) != 1 || !json_is_string(kind) ||
        strcmp(json_string_value(kind), "classifier") != 0) {
        rc = vmf__error(VMF_EFORMAT, "%s: need \"version\": 1 and \"kind\": \"classifier\"", fn);
        goto done;
    }
    vmf_classifier_opts o;
    int per_class;
    rc = json_opts(json_object_get(root, "options"), &o, &per_class);
    if (rc != VMF_OK)
        goto done;
    const json_t *jd = json_object_get(root, "dim"), *jc = json_object_get(root, "classes");
    if (!json_is_integer(jd) || json_integer_value(jd) == 1 || json_integer_value(jd) < 0 ||
        json_integer_value(jd) > (json_int_t)VMF__MAX_DIM || !json_is_array(jc)) {
        rc = vmf__error(VMF_EFORMAT, "%s: need an integer \"dim\" and a \"classes\" array", fn);
        goto done;
    }
    size_t d = (size_t)json_integer_value(jd), nc = json_array_size(jc);
    if (per_class)
        o.refine_lambda = lambda_from_per_class(o.refine_lambda, nc);
    if (nc > 0 && d == 0) {
        rc = vmf__error(VMF_EFORMAT, "%s: classes need \"dim\" >= 2", fn);
        goto done;
    }
    rc = vmf__classifier_alloc(&o, d, &c);
    if (rc != VMF_OK)
        goto done;
    const json_t *rng = json_object_get(root, "rng");
    if (rng) {
        const json_t *st = json_object_get(rng, "state"),
                     *sp = json_object_get(rng, "spare_normal"),
                     *hs = json_object_get(rng, "has_spare");
        int ok = json_is_array(st) && json_array_size(st) == 4 && json_is_number(sp) &&
                 isfinite(json_number_value(sp)) && json_is_boolean(hs);
        for (size_t i = 0; i < 4 && ok; i++)
            ok = vmf__json_get_u64(json_array_get(st, i), &c->rng.s[i]) == 0;
        if (!ok) {
            rc = vmf__error(VMF_EFORMAT, "%s: malformed \"rng\"", fn);
            goto done;
        }
        c->rng.spare_normal = json_number_value(sp);
        c->rng.has_spare = json_is_true(hs);
    }
    if (nc > 0) {
        c->cls = vmf__calloc(nc, sizeof *c->cls);
        if (!c->cls) {
            rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
            goto done;
        }
    }
    uint64_t total = 0;
    size_t cap = vmf__classifier_buf_cap(&c->o, c->d, nc); /* the samples' capacity */
    for (size_t i = 0; i < nc; i++) {
        char where[64];
        snprintf(where, sizeof where, "classes[%zu]", i);
        const json_t *e = json_array_get(jc, i), *lab = json_object_get(e, "label");
        if (json_is_string(lab))
            rc = intern_one(c->labels, 1, 0, json_string_value(lab), where);
        else if (json_is_integer(lab))
            rc = intern_one(c->labels, 0, json_integer_value(lab), NULL, where);
        else
            rc = vmf__error(VMF_EFORMAT, "%s: \"label\" must be an integer or a string", where);
        if (rc != VMF_OK)
            goto done;
        c->cls[i] = vmf__calloc(1, sizeof *c->cls[i]);
        if (!c->cls[i]) {
            rc = vmf__error(VMF_ENOMEM, "%s: out of memory", fn);
            goto done;
        }
        c->n_classes = i + 1;
        rc = json_class(c, e, where, cap, c->cls[i]);
        if (rc != VMF_OK)
            goto done;
        total += c->cls[i]->rows;
    }
    c->rows = total;
    rc = json_head(c, jc);
    if (rc != VMF_OK)
        goto done;
    /* Classes rebuilt from parameters alone: predict with the recorded pooled kappa. */
    double kp = -1.0;
    const json_t *jk = json_object_get(root, "kappa_pooled");
    int rebuilt = 0;
    for (size_t i = 0; i < nc; i++)
        rebuilt |= json_object_get(json_array_get(jc, i), "state") == NULL;
    if (rebuilt && o.pooled_kappa && jk) {
        if (!json_is_number(jk) || !(json_number_value(jk) >= 0.0) ||
            !isfinite(json_number_value(jk))) {
            rc = vmf__error(VMF_EFORMAT, "%s: \"kappa_pooled\" must be a finite number >= 0", fn);
            goto done;
        }
        kp = json_number_value(jk);
    }
    rc = vmf__classifier_refresh_kappa(c, kp);
    if (rc == VMF_EINVAL || rc == VMF_ERANGE)
        rc = vmf__error_wrap(VMF_EFORMAT, fn, "inconsistent statistics");
done:
    json_decref(root);
    if (rc != VMF_OK) {
        vmf_classifier_free(c);
        return rc;
    }
    *out = c;
    return VMF_OK;
}
