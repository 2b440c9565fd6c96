/*
 * classifier.c - the lifecycle of the class-conditional vMF classifier (one
 * vMF mixture per class, learned online with stepwise EM, plus class priors
 * from counts): its options, construction, copy, destruction and the
 * accessors.
 *
 * The rest of the classifier has one file per concern:
 * classifier_grow.c (a class's mixture and its growth by splitting),
 * classifier_fit.c (partial_fit and fit over batches of labelled rows),
 * classifier_scale.c (the temperature: the prequential record, the choice of
 * kappa_scale and the prediction cache it is built into),
 * classifier_predict.c (prediction and the novelty score) and
 * classifier_io.c (binary state and model JSON). classifier_internal.h holds
 * the representation they share.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ---- */

void vmf_classifier_opts_init(vmf_classifier_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k_max = 5;
    vmf_stepwise_opts_init(&o->stepwise);
    o->rows_per_component = 30;
    o->pooled_kappa = 1;
    o->count_priors = 0;
    o->kappa_scale = 0.0;
    o->refine_rows = 256;
    o->refine_lambda = 1.0;
    o->refine_budget = 16384;
    o->refine_rate = 1.0;
}

void vmf__classifier_sw_opts(const vmf_classifier_opts *o, size_t k, vmf_stepwise_opts *so)
{
    *so = o->stepwise;
    so->n_components = k;
    so->tied_kappa = 0;
}

int vmf__classifier_check_opts(const vmf_classifier_opts *o, const char *fn)
{
    if (o->k_max < 1 || o->k_max > 1024)
        return vmf__error(VMF_EINVAL, "%s: k_max = %zu outside [1, 1024]", fn, o->k_max);
    if (o->rows_per_component < 1 || o->rows_per_component > ((size_t)1 << 20))
        return vmf__error(VMF_EINVAL, "%s: rows_per_component = %zu outside [1, 2^20]", fn,
                          o->rows_per_component);
    if (!(o->kappa_scale >= 0.0 && o->kappa_scale <= 1000.0))
        return vmf__error(VMF_EINVAL, "%s: kappa_scale = %g outside [0, 1000]", fn, o->kappa_scale);
    if (o->refine_rows > ((size_t)1 << 20))
        return vmf__error(VMF_EINVAL, "%s: refine_rows = %zu outside [0, 2^20]", fn,
                          o->refine_rows);
    if (!(o->refine_lambda >= 0.0 && o->refine_lambda <= VMF__REFINE_LAMBDA_MAX))
        return vmf__error(VMF_EINVAL, "%s: refine_lambda = %g outside [0, 1e6]", fn,
                          o->refine_lambda);
    if (o->refine_budget > ((size_t)1 << 30))
        return vmf__error(VMF_EINVAL, "%s: refine_budget = %zu outside [0, 2^30]", fn,
                          o->refine_budget);
    if (!(o->refine_rate > 0.0 && o->refine_rate <= 100.0))
        return vmf__error(VMF_EINVAL, "%s: refine_rate = %g outside (0, 100]", fn, o->refine_rate);
    if (o->stepwise.tied_kappa)
        return vmf__error(VMF_EINVAL, "%s: stepwise.tied_kappa must be 0 (kappa per component)",
                          fn);
    vmf_stepwise_opts so;
    vmf__classifier_sw_opts(o, o->k_max, &so);
    return vmf__stepwise_check_opts(&so, fn);
}

size_t vmf__classifier_buf_cap(const vmf_classifier_opts *o, size_t d, size_t nc)
{
    size_t grow = o->rows_per_component * o->k_max, head = o->refine_rows;
    /* Below VMF__REFINE_REF_DIM the same memory holds more (cheaper) rows; refine_rows <= 2^20. */
    if (d > 0 && d < VMF__REFINE_REF_DIM)
        head = head * VMF__REFINE_REF_DIM / d;
    size_t share = head * VMF__REFINE_POOL_CLASSES / (nc > 2 ? nc : 2);
    head = share > head ? share : head;
    return head > grow ? head : grow;
}

void vmf__head_free(vmf__head *h)
{
    vmf__free(h->w);
    vmf__free(h->mw);
    vmf__free(h->b);
    vmf__free(h->mb);
    memset(h, 0, sizeof *h);
}

int vmf__head_copy(const vmf__head *h, size_t d, vmf__head *out)
{
    memset(out, 0, sizeof *out);
    if (!h->w)
        return VMF_OK;
    size_t n = h->n;
    out->w = vmf__malloc_array(n * d, sizeof *out->w);
    out->mw = vmf__malloc_array(n * d, sizeof *out->mw);
    out->b = vmf__malloc_array(n, sizeof *out->b);
    out->mb = vmf__malloc_array(n, sizeof *out->mb);
    if (!out->w || !out->mw || !out->b || !out->mb) {
        vmf__head_free(out);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory copying the refinement head");
    }
    out->n = n;
    memcpy(out->w, h->w, n * d * sizeof *out->w);
    memcpy(out->mw, h->mw, n * d * sizeof *out->mw);
    memcpy(out->b, h->b, n * sizeof *out->b);
    memcpy(out->mb, h->mb, n * sizeof *out->mb);
    return VMF_OK;
}

/* ---- object ---- */

void vmf__class_free(vmf__class *cl)
{
    if (!cl)
        return;
    vmf_stepwise_free(cl->sw);
    vmf__free(cl->buf);
    vmf__free(cl);
}

void vmf__classifier_cache_free(vmf_classifier *c)
{
    vmf__free(c->off);
    vmf__free(c->pmeans);
    vmf__free(c->pcoef);
    vmf__free(c->pkappa);
    c->off = NULL;
    c->pmeans = NULL;
    c->pcoef = NULL;
    c->pkappa = NULL;
    c->n_comp = 0;
}

void vmf_classifier_free(vmf_classifier *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_classes; i++)
        vmf__class_free(c->cls[i]);
    vmf__free(c->cls);
    vmf_label_table_free(c->labels);
    vmf__classifier_cache_free(c);
    vmf__head_free(&c->head);
    vmf__free(c);
}

int vmf__classifier_alloc(const vmf_classifier_opts *o, size_t d, vmf_classifier **out)
{
    *out = NULL;
    vmf_classifier *c = vmf__calloc(1, sizeof *c);
    if (!c)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory");
    c->o = *o;
    c->d = d;
    vmf_rng_seed(&c->rng, o->stepwise.seed);
    int rc = vmf_label_table_new(&c->labels);
    if (rc != VMF_OK) {
        vmf__free(c);
        return rc;
    }
    *out = c;
    return VMF_OK;
}

int vmf_classifier_new(const vmf_classifier_opts *o, size_t d, vmf_classifier **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_classifier_new: out is NULL");
    *out = NULL;
    VMF__OPTS_OR_DEFAULTS(vmf_classifier_opts, o);
    int rc = vmf__classifier_check_opts(o, "vmf_classifier_new");
    if (rc != VMF_OK)
        return rc;
    if (d == 1 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EINVAL, "vmf_classifier_new: dimension %zu outside [2, %zu] (or 0)",
                          d, VMF__MAX_DIM);
    return vmf__classifier_alloc(o, d, out);
}

int vmf__class_copy(const vmf__class *cl, size_t d, vmf__class **out)
{
    *out = NULL;
    vmf__class *n = vmf__calloc(1, sizeof *n);
    if (!n)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory copying a class");
    *n = *cl;
    n->sw = NULL;
    n->buf = NULL;
    int rc = vmf__stepwise_copy(cl->sw, &n->sw);
    if (rc == VMF_OK && cl->buf) {
        rc = vmf__class_sample_alloc(n, cl->buf_cap, d);
        if (rc == VMF_OK) {
            memcpy(n->buf, cl->buf, cl->buf_n * d * sizeof *n->buf);
            n->buf_n = cl->buf_n;
        }
    }
    if (rc != VMF_OK) {
        vmf__class_free(n);
        return rc;
    }
    *out = n;
    return VMF_OK;
}

int vmf_classifier_copy(const vmf_classifier *c, vmf_classifier **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_classifier_copy: out is NULL");
    *out = NULL;
    if (!c)
        return vmf__error(VMF_EINVAL, "vmf_classifier_copy: classifier is NULL");
    vmf_classifier *n = vmf__calloc(1, sizeof *n);
    if (!n)
        return vmf__error(VMF_ENOMEM, "vmf_classifier_copy: out of memory");
    n->o = c->o;
    n->d = c->d;
    n->rows = c->rows;
    n->rng = c->rng;
    int rc = vmf_label_table_copy(c->labels, &n->labels);
    if (rc == VMF_OK && c->n_classes > 0) {
        n->cls = vmf__calloc(c->n_classes, sizeof *n->cls);
        if (!n->cls)
            rc = vmf__error(VMF_ENOMEM, "vmf_classifier_copy: out of memory");
    }
    for (size_t i = 0; i < c->n_classes && rc == VMF_OK; i++) {
        rc = vmf__class_copy(c->cls[i], c->d, &n->cls[i]);
        if (rc == VMF_OK)
            n->n_classes = i + 1;
    }
    if (rc == VMF_OK)
        rc = vmf__head_copy(&c->head, c->d, &n->head);
    if (rc == VMF_OK)
        rc = vmf__classifier_refresh(n);
    if (rc != VMF_OK) {
        vmf_classifier_free(n);
        return rc;
    }
    *out = n;
    return VMF_OK;
}

/* ---- accessors ---- */

size_t vmf_classifier_dim(const vmf_classifier *c)
{
    return c ? c->d : 0;
}

size_t vmf_classifier_n_classes(const vmf_classifier *c)
{
    return c ? c->n_classes : 0;
}

const vmf_label_table *vmf_classifier_labels(const vmf_classifier *c)
{
    return c ? c->labels : NULL;
}

uint64_t vmf_classifier_rows_seen(const vmf_classifier *c)
{
    return c ? c->rows : 0;
}

double vmf_classifier_class_prior(const vmf_classifier *c, size_t i)
{
    if (!c || i >= c->n_classes || c->rows == 0)
        return 0.0;
    if (!c->o.count_priors)
        return 1.0 / (double)c->n_classes;
    return (double)c->cls[i]->rows / (double)c->rows;
}

uint64_t vmf_classifier_class_rows(const vmf_classifier *c, size_t i)
{
    return (c && i < c->n_classes) ? c->cls[i]->rows : 0;
}

/* Class i's stepwise state, NULL for no such class (the stepwise accessors take NULL). */
static const vmf_stepwise *class_state(const vmf_classifier *c, size_t i)
{
    return (c && i < c->n_classes) ? c->cls[i]->sw : NULL;
}

const vmf_mixture *vmf_classifier_class_mixture(const vmf_classifier *c, size_t i)
{
    return vmf_stepwise_mixture(class_state(c, i));
}

const double *vmf_classifier_class_s0(const vmf_classifier *c, size_t i)
{
    return vmf_stepwise_s0(class_state(c, i));
}

const double *vmf_classifier_class_s1(const vmf_classifier *c, size_t i)
{
    return vmf_stepwise_s1(class_state(c, i));
}

double vmf_classifier_kappa(const vmf_classifier *c)
{
    return c ? c->scale * c->kappa_pool : 0.0;
}

double vmf_classifier_kappa_scale(const vmf_classifier *c)
{
    return c ? c->scale : 0.0;
}
