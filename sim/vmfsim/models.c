/*
 * models.c - the model registry: names, the model list parser, construction
 * through the family's operations, and the shared top-k helpers.
 */
#include "vmfsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const family_names[VMFSIM_MAX_MODEL] = {"vmfmm", "gmm",     "knn",   "svm",
                                                           "rf",    "xgboost", "logreg"};

void vmfsim_model_cfg_init(vmfsim_model_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->components = 5;
    c->refit_every = 1;
    c->knn_k = 10;
    c->knn_reservoir = 200;
    c->gmm_max_iter = 50;
    c->svm_c = 1.0;
    c->logreg_c = 1.0;
    /* rf and xgboost: docs/vmfsim.md, "rf and xgboost", says why these. */
    c->xgb_rounds = 300;
    c->xgb_depth = 2;
    c->xgb_eta = 0.3;
    c->rf_trees = 300;
    c->rf_depth = 40;
    c->tree_max_rows = 3000;
    c->tree_min_child_weight = 1.0;
    c->tree_class_rows = 0;
    c->tree_refit_growth = 0.25;
    c->tree_max_bin = 32;
    c->xgb_valid = 0.15;
    c->xgb_patience = 10;
    c->rf_min_leaf = 10;
    c->threads = 1;
    c->seed = 42;
}

int vmfsim_family_parse(const char *name)
{
    for (int i = 0; i < VMFSIM_MAX_MODEL; i++)
        if (strcmp(name, family_names[i]) == 0)
            return i;
    return -1;
}

const char *vmfsim_family_name(int family)
{
    return family >= 0 && family < VMFSIM_MAX_MODEL ? family_names[family] : "?";
}

size_t vmfsim_models_parse(const char *list, int *families, char *err)
{
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < VMFSIM_MAX_MODEL; i++)
            families[i] = i;
        return VMFSIM_MAX_MODEL;
    }
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof name) {
            snprintf(err, VMFSIM_ERR_SIZE, "bad model list '%s'", list);
            return 0;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        int f = vmfsim_family_parse(name);
        if (f < 0) {
            snprintf(
                err, VMFSIM_ERR_SIZE,
                "unknown model '%s' (choose among vmfmm, gmm, knn, svm, rf, xgboost, logreg, all)",
                name);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (families[i] == f) {
                snprintf(err, VMFSIM_ERR_SIZE, "model '%s' listed twice", name);
                return 0;
            }
        }
        families[n++] = f;
        p += len;
        if (*p == ',')
            p++;
    }
    if (n == 0)
        snprintf(err, VMFSIM_ERR_SIZE, "empty model list");
    return n;
}

static const vmfsim_model_ops *ops_of(int family, const vmfsim_model_cfg *cfg)
{
    switch (family) {
    case VMFSIM_VMFMM:
        return cfg->via_url ? &vmfsim_ops_vmfmm_via : &vmfsim_ops_vmfmm;
    case VMFSIM_GMM:
        return &vmfsim_ops_gmm;
    case VMFSIM_KNN:
        return &vmfsim_ops_knn;
    case VMFSIM_SVM:
        return &vmfsim_ops_svm;
    case VMFSIM_RF:
        return &vmfsim_ops_rf;
    case VMFSIM_XGBOOST:
        return &vmfsim_ops_xgboost;
    case VMFSIM_LOGREG:
        return &vmfsim_ops_logreg;
    default:
        return NULL;
    }
}

int vmfsim_model_new(int family, const vmfsim_model_cfg *cfg, size_t d, size_t n_classes,
                     vmfsim_model **out, char *err)
{
    *out = NULL;
    const vmfsim_model_ops *ops = ops_of(family, cfg);
    if (!ops) {
        snprintf(err, VMFSIM_ERR_SIZE, "unknown model family %d", family);
        return VMF_EINVAL;
    }
    vmfsim_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        return VMF_ENOMEM;
    }
    m->ops = ops;
    int rc = ops->create(cfg, d, n_classes, &m->state, err);
    if (rc) {
        free(m);
        return rc;
    }
    *out = m;
    return VMF_OK;
}

void vmfsim_model_free(vmfsim_model *m)
{
    if (!m)
        return;
    m->ops->destroy(m->state);
    free(m);
}

void vmfsim_topk_from_scores(const double *scores, size_t n, size_t c, size_t k,
                             const int32_t *class_of, int32_t *topk)
{
    for (size_t i = 0; i < n; i++) {
        const double *s = scores + i * c;
        int32_t *o = topk + i * k;
        size_t best[64];
        size_t kk = k < c ? k : c;
        if (kk > 64)
            kk = 64;
        /* Partial selection: k is small (4), so insertion into a sorted prefix. */
        size_t m = 0;
        for (size_t j = 0; j < c; j++) {
            size_t p = m;
            while (p > 0 && s[best[p - 1]] < s[j])
                p--;
            if (p >= kk)
                continue;
            size_t end = m < kk ? m : kk - 1;
            for (size_t q = end; q > p; q--)
                best[q] = best[q - 1];
            best[p] = j;
            if (m < kk)
                m++;
        }
        for (size_t j = 0; j < k; j++)
            o[j] = j < m ? (class_of ? class_of[best[j]] : (int32_t)best[j]) : -1;
    }
}

void vmfsim_topk_untrained(int32_t only, size_t n, size_t k, int32_t *topk)
{
    for (size_t i = 0; i < n * k; i++)
        topk[i] = -1;
    if (only >= 0 && k > 0)
        for (size_t i = 0; i < n; i++)
            topk[i * k] = only;
}

void vmfsim_topk_to_labels(const vmf_label_table *t, int32_t *topk, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (topk[i] >= 0)
            topk[i] = (int32_t)vmf_label_table_int(t, (size_t)topk[i]);
}
