/*
 * vmfd_model.c - the classifier / clustering model behind one interface
 * (see vmfd_model.h).
 *
 * Clustering state is a vmf_stepwise, which needs its dimension up front;
 * with dim = 0 it is created by the first batch. Its saved form is a small
 * header ("VMFDCLU1", then 1 byte: 0 empty, 1 learned) followed by
 * vmf_stepwise_save's bytes. The classifier's saved form is exactly
 * vmf_classifier_save's, so its checkpoints can be loaded by any libvmfmm
 * user.
 */
#include "vmfd_model.h"

#include "vmfmm/classifier.h"
#include "vmfmm/common.h"
#include "vmfmm/stepwise.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLU_MAGIC     "VMFDCLU1"
#define CLU_MAGIC_LEN 8

struct vmfd_model {
    vmfd_model_opts o;
    vmf_classifier *cls; /* classifier mode */
    vmf_stepwise *sw;    /* clustering mode; NULL until the dimension is known */
};

void vmfd_model_opts_from_config(vmfd_model_opts *o, const vmfd_config *c)
{
    o->mode = c->mode;
    o->dim = (size_t)c->dim;
    o->k_max = (size_t)c->k_max;
    o->refine_rows = (size_t)c->refine_rows;
    vmf_stepwise_opts_init(&o->stepwise);
    o->stepwise.n_components = o->k_max; /* clustering; the classifier grows to k_max itself */
    o->stepwise.alpha = c->alpha;
    o->stepwise.t0 = c->t0;
    o->stepwise.eta_floor = c->eta_floor;
    o->stepwise.minibatch = (size_t)c->minibatch;
    o->stepwise.seed = c->seed;
}

int vmfd_model_new(const vmfd_model_opts *o, vmfd_model **out)
{
    vmfd_model *m = calloc(1, sizeof *m);
    int rc = VMF_OK;
    *out = NULL;
    if (!m)
        return VMF_ENOMEM;
    m->o = *o;
    if (o->mode == VMFD_MODE_CLASSIFIER) {
        vmf_classifier_opts co;
        vmf_classifier_opts_init(&co);
        co.k_max = o->k_max;
        co.refine_rows = o->refine_rows;
        co.stepwise = o->stepwise;
        rc = vmf_classifier_new(&co, o->dim, &m->cls);
    } else if (o->dim) {
        rc = vmf_stepwise_new(&o->stepwise, o->dim, &m->sw);
    }
    if (rc != VMF_OK) {
        free(m);
        return rc;
    }
    *out = m;
    return VMF_OK;
}

void vmfd_model_free(vmfd_model *m)
{
    if (!m)
        return;
    vmf_classifier_free(m->cls);
    vmf_stepwise_free(m->sw);
    free(m);
}

int vmfd_model_copy(const vmfd_model *m, vmfd_model **out)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER) {
        vmfd_model *c = calloc(1, sizeof *c);
        if (!c)
            return VMF_ENOMEM;
        c->o = m->o;
        int rc = vmf_classifier_copy(m->cls, &c->cls);
        if (rc != VMF_OK) {
            free(c);
            return rc;
        }
        *out = c;
        return VMF_OK;
    }
    /* libvmfmm has no stepwise copy; its saved form is exact. */
    void *buf;
    size_t len;
    int rc = vmfd_model_save(m, &buf, &len);
    if (rc != VMF_OK)
        return rc;
    rc = vmfd_model_load(&m->o, buf, len, out);
    free(buf);
    return rc;
}

int vmfd_model_learn(vmfd_model *m, const float *x, size_t n, size_t d, const vmf_labels *y)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_partial_fit(m->cls, x, n, d, y);
    if (!m->sw) {
        vmf_stepwise *sw = NULL;
        int rc = vmf_stepwise_new(&m->o.stepwise, d, &sw);
        if (rc != VMF_OK)
            return rc;
        rc = vmf_stepwise_update(sw, x, n, d);
        if (rc != VMF_OK) {
            vmf_stepwise_free(sw); /* the model stays empty, as on any error */
            return rc;
        }
        m->sw = sw;
        return VMF_OK;
    }
    return vmf_stepwise_update(m->sw, x, n, d);
}

int vmfd_model_save(const vmfd_model *m, void **buf, size_t *len)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_save(m->cls, buf, len);
    void *sb = NULL;
    size_t sl = 0;
    if (m->sw) {
        int rc = vmf_stepwise_save(m->sw, &sb, &sl);
        if (rc != VMF_OK)
            return rc;
    }
    unsigned char *out = malloc(CLU_MAGIC_LEN + 1 + sl);
    if (!out) {
        free(sb);
        return VMF_ENOMEM;
    }
    memcpy(out, CLU_MAGIC, CLU_MAGIC_LEN);
    out[CLU_MAGIC_LEN] = m->sw ? 1 : 0;
    if (sl)
        memcpy(out + CLU_MAGIC_LEN + 1, sb, sl);
    free(sb);
    *buf = out;
    *len = CLU_MAGIC_LEN + 1 + sl;
    return VMF_OK;
}

int vmfd_model_load(const vmfd_model_opts *o, const void *buf, size_t len, vmfd_model **out)
{
    vmfd_model *m = calloc(1, sizeof *m);
    int rc = VMF_OK;
    *out = NULL;
    if (!m)
        return VMF_ENOMEM;
    m->o = *o;
    if (o->mode == VMFD_MODE_CLASSIFIER) {
        rc = vmf_classifier_load(buf, len, &m->cls);
    } else {
        const unsigned char *p = buf;
        if (len < CLU_MAGIC_LEN + 1 || memcmp(p, CLU_MAGIC, CLU_MAGIC_LEN) != 0 ||
            p[CLU_MAGIC_LEN] > 1) {
            free(m);
            return VMF_EFORMAT; /* e.g. a classifier checkpoint under mode = clustering */
        }
        if (p[CLU_MAGIC_LEN] == 1)
            rc = vmf_stepwise_load(p + CLU_MAGIC_LEN + 1, len - CLU_MAGIC_LEN - 1, &m->sw);
        else if (o->dim) {
            vmfd_model_free(m);
            return vmfd_model_new(o, out);
        }
    }
    if (rc != VMF_OK) {
        free(m);
        return rc;
    }
    *out = m;
    return VMF_OK;
}

vmfd_mode vmfd_model_mode(const vmfd_model *m)
{
    return m->o.mode;
}

static const vmf_mixture *clu_mixture(const vmfd_model *m)
{
    return m->sw ? vmf_stepwise_mixture(m->sw) : NULL;
}

size_t vmfd_model_dim(const vmfd_model *m)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_dim(m->cls);
    const vmf_mixture *mx = clu_mixture(m);
    return mx ? vmf_mixture_dim(mx) : 0;
}

size_t vmfd_model_n_labels(const vmfd_model *m)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_n_classes(m->cls);
    const vmf_mixture *mx = clu_mixture(m);
    return mx ? vmf_mixture_n_components(mx) : 0;
}

uint64_t vmfd_model_rows_seen(const vmfd_model *m)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_rows_seen(m->cls);
    return m->sw ? vmf_stepwise_rows_seen(m->sw) : 0;
}

uint64_t vmfd_model_n_components(const vmfd_model *m)
{
    uint64_t k = 0;
    for (size_t g = 0; g < vmfd_model_n_groups(m); g++) {
        const vmf_mixture *mx = vmfd_model_group_mixture(m, g);
        if (mx)
            k += vmf_mixture_n_components(mx);
    }
    return k;
}

char *vmfd_model_label_json(const vmfd_model *m, size_t i)
{
    json_t *j;
    if (m->o.mode == VMFD_MODE_CLASSIFIER) {
        const vmf_label_table *lt = vmf_classifier_labels(m->cls);
        j = vmf_label_table_is_str(lt) ? json_string(vmf_label_table_str(lt, i))
                                       : json_integer(vmf_label_table_int(lt, i));
    } else {
        j = json_integer((json_int_t)i);
    }
    char *s = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

int vmfd_model_predict_topk(const vmfd_model *m, const float *x, size_t n, size_t d, size_t k,
                            int32_t *labels, double *proba, double *novelty)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_predict_topk_novelty(m->cls, x, n, d, k, labels, proba, novelty);
    const vmf_mixture *mx = clu_mixture(m);
    if (!mx)
        return VMF_EINVAL;
    size_t K = vmf_mixture_n_components(mx);
    for (size_t i = 0; i < n && novelty; i++) {
        const float *mu = vmf_mixture_means(mx);
        double near = -1.0;
        for (size_t c = 0; c < K; c++) {
            double s = 0.0;
            for (size_t q = 0; q < d; q++)
                s += (double)mu[c * d + q] * (double)x[i * d + q];
            near = s > near ? s : near;
        }
        novelty[i] = near > 1.0 ? 0.0 : near < -1.0 ? 2.0 : 1.0 - near;
    }
    double *post = malloc(n * K * sizeof *post);
    if (!post)
        return VMF_ENOMEM;
    int rc = vmf_mixture_predict_proba(mx, x, n, d, post);
    if (rc != VMF_OK) {
        free(post);
        return rc;
    }
    /* Selection of the k largest posteriors per row, ties to the lower index. */
    for (size_t i = 0; i < n; i++) {
        const double *p = post + i * K;
        for (size_t r = 0; r < k; r++) {
            int32_t best = -1;
            for (size_t c = 0; c < K; c++) {
                int taken = 0;
                for (size_t q = 0; q < r && !taken; q++)
                    taken = labels[i * k + q] == (int32_t)c;
                if (!taken && (best < 0 || p[c] > p[best]))
                    best = (int32_t)c;
            }
            labels[i * k + r] = best;
            if (proba)
                proba[i * k + r] = best >= 0 ? p[best] : 0.0;
        }
    }
    free(post);
    return VMF_OK;
}

int vmfd_model_to_json(const vmfd_model *m, char **json)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_to_json(m->cls, json);
    if (!m->sw) {
        *json = strdup("{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"stepwise\","
                       "\"dim\":0,\"n_components\":0}");
        return *json ? VMF_OK : VMF_ENOMEM;
    }
    return vmf_stepwise_to_json(m->sw, json);
}

size_t vmfd_model_n_groups(const vmfd_model *m)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_n_classes(m->cls);
    return clu_mixture(m) ? 1 : 0;
}

const char *vmfd_model_group_label(const vmfd_model *m, size_t g, char *buf, size_t size)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_label_table_format(vmf_classifier_labels(m->cls), g, buf, size);
    snprintf(buf, size, "clusters");
    return buf;
}

double vmfd_model_group_prior(const vmfd_model *m, size_t g)
{
    return m->o.mode == VMFD_MODE_CLASSIFIER ? vmf_classifier_class_prior(m->cls, g) : 1.0;
}

uint64_t vmfd_model_group_rows(const vmfd_model *m, size_t g)
{
    return m->o.mode == VMFD_MODE_CLASSIFIER ? vmf_classifier_class_rows(m->cls, g)
                                             : vmfd_model_rows_seen(m);
}

const vmf_mixture *vmfd_model_group_mixture(const vmfd_model *m, size_t g)
{
    return m->o.mode == VMFD_MODE_CLASSIFIER ? vmf_classifier_class_mixture(m->cls, g)
                                             : clu_mixture(m);
}

const double *vmfd_model_group_s0(const vmfd_model *m, size_t g)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_class_s0(m->cls, g);
    return m->sw ? vmf_stepwise_s0(m->sw) : NULL;
}

const double *vmfd_model_group_s1(const vmfd_model *m, size_t g)
{
    if (m->o.mode == VMFD_MODE_CLASSIFIER)
        return vmf_classifier_class_s1(m->cls, g);
    return m->sw ? vmf_stepwise_s1(m->sw) : NULL;
}
