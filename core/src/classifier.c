/*
 * classifier.c - the class-conditional vMF classifier: one vMF mixture per
 * class, learned online with stepwise EM, plus class priors from counts.
 *
 * Growth rule. A class of n rows has K(n) = min(k_max, max(1, floor(n /
 * rows_per_component))) components. It starts with one (initialised from its
 * first batch) and, while K < k_max, keeps a growth sample of at most
 * rows_per_component * k_max of its rows (all of them until the sample is
 * full, then a uniform reservoir sample, Vitter's algorithm R, drawn from the
 * classifier's generator). When K(n) exceeds the current K, the class's
 * mixture is refitted from the sample: the component with the largest mass
 * is split in two along the principal direction of its responsibility-weighted
 * scatter in the tangent space at its mean (children at the mean plus or minus
 * one standard deviation along it, renormalised), followed by a short batch
 * EM (20 iterations); this repeats until K(n) components. The statistics are
 * then recomputed from the sample and stepwise EM continues from them. Once
 * K = k_max the sample is released, so a mature class costs only its
 * statistics. Splitting along the direction of largest spread is what lets
 * isotropic components follow an elongated class; a batch that triggers
 * growth is learned through the refit (its rows are in the sample).
 *
 * Step sizes. Per-class batches are small and irregular (a few rows of a rare
 * class per day), so each class runs stepwise EM on the row clock of
 * stepwise_internal.h: an exact running average of the rows until the
 * stepwise schedule (alpha, t0, minibatch) forgets faster.
 *
 * Prediction. P(c | x) ∝ pi_c sum_k w_ck C_d(kappa) exp(kappa mu_ck^T x)
 * with equal priors pi_c = 1/C (the Bayes decision for a class-balanced
 * evaluation such as macro recall; count_priors gives pi_c = n_c / n). With
 * pooled_kappa (the default) every component uses one kappa estimated from
 * the statistics of all classes pooled (mass sum_c n_c, resultant sum_c n_c
 * sum_k |s1_ck|), so no class wins a region merely by being broader, times
 * a temperature s: the likelihood estimate of a five-component mixture is
 * far sharper than the decision-optimal one. s is kappa_scale when set;
 * by default it is chosen from the prequential record, the top-1 hits of
 * rows scored before they were learned, at the grid 2^(-g/2), g = 0..15
 * (partial_fit: "test, then train"; fit: cross-fitting), as the grid value
 * with the best macro recall. See docs/classifier.md for the measurements.
 * The work is one GEMM X · Mᵀ over all components, blocked over rows, then
 * a log-sum-exp per class and one over classes, in double.
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

#define SPLIT_EM_ITER 20
#define FINAL_EM_ITER 100
#define POWER_ITER    50
#define PREDICT_BLOCK 1024
/* Rows of a partial_fit batch / of a batch fit's held-out fifth scored for the record. */
#define PQ_BATCH_ROWS 256
#define PQ_FIT_ROWS   4096
/* exp() below e^-60 is skipped in the record's log-sum-exps, as in prediction. */
#define SKIP_LOG_PQ 60.0

/* ---- options ---- */

void vmf_classifier_opts_init(vmf_classifier_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k_max = 5;
    o->alpha = 0.7;
    o->t0 = 2.0;
    o->eta_floor = 0.0;
    o->minibatch = 256;
    vmf_kappa_opts_init(&o->kappa);
    o->seed = 42;
    o->rows_per_component = 30;
    o->pooled_kappa = 1;
    o->count_priors = 0;
    o->kappa_scale = 0.0;
}

double vmf__classifier_grid_scale(size_t g)
{
    return exp2(-0.5 * (double)g);
}

void vmf__classifier_sw_opts(const vmf_classifier_opts *o, size_t k, vmf_stepwise_opts *so)
{
    vmf_stepwise_opts_init(so);
    so->n_components = k;
    so->alpha = o->alpha;
    so->t0 = o->t0;
    so->eta_floor = o->eta_floor;
    so->minibatch = o->minibatch;
    so->tied_kappa = 0;
    so->kappa = o->kappa;
    so->seed = o->seed;
}

int vmf__classifier_check_opts(const vmf_classifier_opts *o, const char *fn)
{
    if (!o)
        return vmf__error(VMF_EINVAL, "%s: options are NULL", fn);
    if (o->k_max < 1 || o->k_max > 1024)
        return vmf__error(VMF_EINVAL, "%s: k_max = %zu outside [1, 1024]", fn, o->k_max);
    if (o->rows_per_component < 1 || o->rows_per_component > ((size_t)1 << 20))
        return vmf__error(VMF_EINVAL, "%s: rows_per_component = %zu outside [1, 2^20]", fn,
                          o->rows_per_component);
    if (!(o->kappa_scale >= 0.0 && o->kappa_scale <= 1000.0))
        return vmf__error(VMF_EINVAL, "%s: kappa_scale = %g outside [0, 1000]", fn, o->kappa_scale);
    vmf_stepwise_opts so;
    vmf__classifier_sw_opts(o, o->k_max, &so);
    return vmf__stepwise_check_opts(&so, fn);
}

size_t vmf__classifier_buf_cap(const vmf_classifier_opts *o)
{
    return o->rows_per_component * o->k_max;
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

static void cache_free(vmf_classifier *c)
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
    cache_free(c);
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
    vmf_rng_seed(&c->rng, o->seed);
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
    int rc = vmf__classifier_check_opts(o, "vmf_classifier_new");
    if (rc != VMF_OK)
        return rc;
    if (d == 1 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EINVAL, "vmf_classifier_new: dimension %zu outside [2, %zu] (or 0)",
                          d, VMF__MAX_DIM);
    return vmf__classifier_alloc(o, d, out);
}

static int class_copy(const vmf__class *cl, size_t d, size_t cap, vmf__class **out)
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
        n->buf = vmf__malloc_array(cap * d, sizeof *n->buf);
        if (!n->buf)
            rc = vmf__error(VMF_ENOMEM, "classifier: out of memory copying a growth sample");
        else
            memcpy(n->buf, cl->buf, cl->buf_n * d * sizeof *n->buf);
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
    size_t cap = vmf__classifier_buf_cap(&c->o);
    for (size_t i = 0; i < c->n_classes && rc == VMF_OK; i++) {
        rc = class_copy(c->cls[i], c->d, cap, &n->cls[i]);
        if (rc == VMF_OK)
            n->n_classes = i + 1;
    }
    if (rc == VMF_OK)
        rc = vmf__classifier_refresh(n);
    if (rc != VMF_OK) {
        vmf_classifier_free(n);
        return rc;
    }
    *out = n;
    return VMF_OK;
}

/* ---- prediction cache ---- */

/*
 * The kappa scale prediction uses: the option when it is set, otherwise the
 * grid scale with the best prequential macro recall (the mean over classes
 * with scored rows of their hit rate); ties keep the larger scale, and with
 * no scored rows at all the scale is 1 (the likelihood estimate).
 */
static double choose_scale(const vmf_classifier *c)
{
    if (c->o.kappa_scale > 0.0)
        return c->o.kappa_scale;
    size_t best_g = 0;
    double best = -1.0;
    for (size_t g = 0; g < VMF__SCALE_GRID; g++) {
        double v = 0.0;
        for (size_t i = 0; i < c->n_classes; i++) {
            const vmf__class *cl = c->cls[i];
            if (cl->pq_rows > 0)
                v += (double)cl->pq_hits[g] / (double)cl->pq_rows;
        }
        if (v > best) {
            best = v;
            best_g = g;
        }
    }
    return vmf__classifier_grid_scale(best_g);
}

int vmf__classifier_refresh(vmf_classifier *c)
{
    return vmf__classifier_refresh_kappa(c, -1.0);
}

int vmf__classifier_refresh_kappa(vmf_classifier *c, double kappa)
{
    size_t nc = c->n_classes, d = c->d, total = 0;
    double mass = 0.0, res = 0.0;
    for (size_t i = 0; i < nc; i++) {
        const vmf_stepwise *sw = c->cls[i]->sw;
        size_t k = sw->m->k;
        total += k;
        double r = 0.0;
        for (size_t j = 0; j < k; j++) {
            const double *v = sw->s1 + j * d;
            double s = 0.0;
            for (size_t q = 0; q < d; q++)
                s += v[q] * v[q];
            r += sqrt(s);
        }
        mass += (double)c->cls[i]->rows;
        res += (double)c->cls[i]->rows * r;
    }
    double kpool = 0.0;
    if (c->o.pooled_kappa && nc > 0 && kappa >= 0.0) {
        kpool = kappa;
    } else if (c->o.pooled_kappa && nc > 0) {
        int rc = vmf_kappa_estimate(&c->o.kappa, d, mass, res, &kpool);
        if (rc != VMF_OK)
            return rc;
    }
    size_t *off = vmf__malloc_array(nc + 1, sizeof *off);
    float *pm = vmf__malloc_array(total ? total * d : 1, sizeof *pm);
    double *pc = vmf__malloc_array(total ? total : 1, sizeof *pc);
    double *pk = vmf__malloc_array(total ? total : 1, sizeof *pk);
    if (!off || !pm || !pc || !pk) {
        vmf__free(off);
        vmf__free(pm);
        vmf__free(pc);
        vmf__free(pk);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for the prediction cache");
    }
    double scale = choose_scale(c);
    double lognorm_pool = c->o.pooled_kappa ? vmf_log_norm_const(d, scale * kpool) : 0.0;
    size_t at = 0;
    for (size_t i = 0; i < nc; i++) {
        const vmf_mixture *m = c->cls[i]->sw->m;
        double lp = c->o.count_priors ? log((double)c->cls[i]->rows / mass) : -log((double)nc);
        off[i] = at;
        memcpy(pm + at * d, m->means, m->k * d * sizeof *pm);
        for (size_t j = 0; j < m->k; j++, at++) {
            double kap = scale * (c->o.pooled_kappa ? kpool : m->kappas[j]);
            double ln = c->o.pooled_kappa ? lognorm_pool : vmf_log_norm_const(d, kap);
            pk[at] = kap;
            pc[at] = lp + log(m->weights[j]) + ln;
        }
    }
    off[nc] = at;
    cache_free(c);
    c->off = off;
    c->pmeans = pm;
    c->pcoef = pc;
    c->pkappa = pk;
    c->n_comp = total;
    c->kappa_pool = kpool;
    c->scale = scale;
    return VMF_OK;
}

/* ---- prequential record ---- */

/*
 * Scores rows x [n][d] of known classes cls [n] (indices into model m) with
 * m at every grid scale and adds, per row, one to dst[cls[i]]->pq_rows and
 * one to pq_hits[g] for each scale g at which the row's class is the top-1
 * prediction (ties go to the lower class index, as in predict_topk). Class
 * priors are those of prediction; with pooled_kappa the normaliser C_d is
 * the same for every component and cancels.
 */
static int pq_score(const vmf_classifier *m, const float *x, size_t n, const int32_t *cls,
                    vmf__class **dst)
{
    size_t T = m->n_comp, nc = m->n_classes, d = m->d, G = VMF__SCALE_GRID;
    int pooled = m->o.pooled_kappa;
    float *dots = vmf__malloc_array(n * T, sizeof *dots);
    double *base = vmf__malloc_array(T, sizeof *base);
    double *kap = vmf__malloc_array(T, sizeof *kap);
    double *lnc = pooled ? NULL : vmf__malloc_array(G * T, sizeof *lnc);
    if (!dots || !base || !kap || (!pooled && !lnc)) {
        vmf__free(dots);
        vmf__free(base);
        vmf__free(kap);
        vmf__free(lnc);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory scoring %zu rows", n);
    }
    for (size_t q = 0; q < nc; q++) {
        const vmf_mixture *mx = m->cls[q]->sw->m;
        double lp = m->o.count_priors ? log((double)m->cls[q]->rows / (double)m->rows) : 0.0;
        for (size_t j = 0; j < mx->k; j++) {
            base[m->off[q] + j] = lp + log(mx->weights[j]);
            kap[m->off[q] + j] = pooled ? m->kappa_pool : mx->kappas[j];
        }
    }
    for (size_t g = 0; g < G && !pooled; g++)
        for (size_t j = 0; j < T; j++)
            lnc[g * T + j] = vmf_log_norm_const(d, vmf__classifier_grid_scale(g) * kap[j]);
    vmf__sgemm(0, 1, n, T, d, 1.0f, x, d, m->pmeans, d, 0.0f, dots, T);
    for (size_t i = 0; i < n; i++) {
        const float *dr = dots + i * T;
        vmf__class *cl = dst[cls[i]];
        cl->pq_rows++;
        for (size_t g = 0; g < G; g++) {
            double sg = vmf__classifier_grid_scale(g), top = -INFINITY;
            size_t arg = 0;
            for (size_t q = 0; q < nc; q++) {
                double mx = -INFINITY;
                for (size_t j = m->off[q]; j < m->off[q + 1]; j++) {
                    double l =
                        base[j] + sg * kap[j] * (double)dr[j] + (pooled ? 0.0 : lnc[g * T + j]);
                    mx = l > mx ? l : mx;
                }
                double s = 0.0;
                for (size_t j = m->off[q]; j < m->off[q + 1]; j++) {
                    double t = base[j] + sg * kap[j] * (double)dr[j] +
                               (pooled ? 0.0 : lnc[g * T + j]) - mx;
                    if (t > -SKIP_LOG_PQ)
                        s += exp(t);
                }
                double v = mx + log(s);
                if (v > top) {
                    top = v;
                    arg = q;
                }
            }
            cl->pq_hits[g] += arg == (size_t)cls[i];
        }
    }
    vmf__free(dots);
    vmf__free(base);
    vmf__free(kap);
    vmf__free(lnc);
    return VMF_OK;
}

/*
 * Picks at most about `budget` rows of a grouped batch for the prequential
 * record, spread evenly over the classes present (the first rows of each
 * class, at least one per class), restricted to classes below `known`;
 * copies them to *xo [*no][d] and their classes to *co. *xo is NULL when no
 * row qualifies.
 */
static int pq_pick(const float *xs, const size_t *start, size_t nc, size_t known, size_t d,
                   size_t budget, float **xo, int32_t **co, size_t *no)
{
    *xo = NULL;
    *co = NULL;
    *no = 0;
    size_t present = 0;
    for (size_t k = 0; k < nc && k < known; k++)
        present += start[k + 1] > start[k];
    if (present == 0)
        return VMF_OK;
    size_t per = budget / present > 0 ? budget / present : 1, total = 0;
    for (size_t k = 0; k < nc && k < known; k++) {
        size_t cnt = start[k + 1] - start[k];
        total += cnt < per ? cnt : per;
    }
    float *x = vmf__malloc_array(total * d, sizeof *x);
    int32_t *cl = vmf__malloc_array(total, sizeof *cl);
    if (!x || !cl) {
        vmf__free(x);
        vmf__free(cl);
        return vmf__error(VMF_ENOMEM, "classifier: out of memory picking %zu rows", total);
    }
    size_t at = 0;
    for (size_t k = 0; k < nc && k < known; k++) {
        size_t cnt = start[k + 1] - start[k], take = cnt < per ? cnt : per;
        memcpy(x + at * d, xs + start[k] * d, take * d * sizeof *x);
        for (size_t i = 0; i < take; i++)
            cl[at + i] = (int32_t)k;
        at += take;
    }
    *xo = x;
    *co = cl;
    *no = total;
    return VMF_OK;
}

/* ---- growth ---- */

/*
 * Principal direction of the responsibility-weighted scatter of the tangent
 * vectors t_i = x_i - (x_i·mu) mu by power iteration from the tangent of the
 * row with the largest weighted tangent norm. Writes v [d] (unit) and returns
 * the eigenvalue estimate v^T S v, or 0 when there is no spread.
 */
static double principal_tangent(const float *x, size_t n, size_t d, const float *mu,
                                const double *r, size_t kstride, double *t, double *v, double *sv)
{
    double mass = 0.0, best = -1.0;
    size_t arg = 0;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double dot = 0.0;
        for (size_t j = 0; j < d; j++)
            dot += (double)xi[j] * (double)mu[j];
        double nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            t[i * d + j] = (double)xi[j] - dot * (double)mu[j];
            nn += t[i * d + j] * t[i * d + j];
        }
        double wn = r[i * kstride] * nn;
        if (wn > best) {
            best = wn;
            arg = i;
        }
        mass += r[i * kstride];
    }
    if (!(mass > 0.0) || !(best > 0.0))
        return 0.0;
    double nv = 0.0;
    for (size_t j = 0; j < d; j++) {
        v[j] = t[arg * d + j];
        nv += v[j] * v[j];
    }
    nv = sqrt(nv);
    for (size_t j = 0; j < d; j++)
        v[j] /= nv;
    double lambda = 0.0;
    for (int it = 0; it < POWER_ITER; it++) {
        memset(sv, 0, d * sizeof *sv);
        for (size_t i = 0; i < n; i++) {
            const double *ti = t + i * d;
            double p = 0.0;
            for (size_t j = 0; j < d; j++)
                p += ti[j] * v[j];
            p *= r[i * kstride];
            for (size_t j = 0; j < d; j++)
                sv[j] += p * ti[j];
        }
        double ns = 0.0;
        lambda = 0.0;
        for (size_t j = 0; j < d; j++) {
            ns += sv[j] * sv[j];
            lambda += sv[j] * v[j];
        }
        ns = sqrt(ns);
        if (!(ns > 0.0))
            return 0.0;
        for (size_t j = 0; j < d; j++)
            v[j] = sv[j] / ns;
    }
    return lambda / mass;
}

/* A batch EM from given means with the class options. */
static int em_from(const vmf_classifier_opts *o, const float *x, size_t n, size_t d, size_t k,
                   const float *means, size_t max_iter, vmf_mixture **out)
{
    vmf_em_opts eo;
    vmf_em_opts_init(&eo);
    eo.n_components = k;
    eo.max_iter = max_iter;
    eo.tol = 1e-7;
    eo.init = VMF_INIT_GIVEN;
    eo.init_means = means;
    eo.kappa = o->kappa;
    eo.min_mass = 1.0;
    eo.seed = o->seed;
    return vmf_mixture_fit(&eo, x, n, d, out, NULL);
}

/*
 * Splits the heaviest component of *m (fitted to x [n][d]) and refits with a
 * short EM; replaces *m on success. *grown is 0 when no component has any
 * spread to split along (then *m is unchanged).
 */
static int split_once(const vmf_classifier_opts *o, vmf_mixture **m, const float *x, size_t n,
                      size_t d, size_t iters, int *grown)
{
    *grown = 0;
    size_t k = (*m)->k;
    double *proba = vmf__malloc_array(n * k, sizeof *proba);
    double *t = vmf__malloc_array(n * d, sizeof *t);
    double *v = vmf__malloc_array(2 * d, sizeof *v);
    float *means = vmf__malloc_array((k + 1) * d, sizeof *means);
    vmf_mixture *nm = NULL;
    int rc = VMF_OK;
    if (!proba || !t || !v || !means) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory growing a class");
        goto done;
    }
    rc = vmf_mixture_predict_proba(*m, x, n, d, proba);
    if (rc != VMF_OK)
        goto done;
    size_t pick = 0;
    double best = -1.0;
    for (size_t c = 0; c < k; c++) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += proba[i * k + c];
        if (s > best) {
            best = s;
            pick = c;
        }
    }
    const float *mu = (*m)->means + pick * d;
    double lambda = principal_tangent(x, n, d, mu, proba + pick, k, t, v, v + d);
    if (!(lambda > 1e-12))
        goto done;
    double sd = sqrt(lambda);
    memcpy(means, (*m)->means, k * d * sizeof *means);
    for (int side = 0; side < 2; side++) {
        float *dst = means + (side == 0 ? pick : k) * d;
        double nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            double a = (double)mu[j] + (side == 0 ? sd : -sd) * v[j];
            v[d + j] = a;
            nn += a * a;
        }
        nn = sqrt(nn);
        for (size_t j = 0; j < d; j++)
            dst[j] = (float)(v[d + j] / nn);
    }
    rc = em_from(o, x, n, d, k + 1, means, iters, &nm);
    if (rc != VMF_OK)
        goto done;
    vmf_mixture_free(*m);
    *m = nm;
    *grown = 1;
done:
    vmf__free(proba);
    vmf__free(t);
    vmf__free(v);
    vmf__free(means);
    return rc;
}

/*
 * Grows (a copy of) mixture m0 to `target` components on x [n][d] by repeated
 * splits, then optionally a final EM; *out receives the result (K may stay
 * below target when the rows have no spread left).
 */
static int grow_mixture(const vmf_classifier_opts *o, const vmf_mixture *m0, const float *x,
                        size_t n, size_t d, size_t target, size_t final_iter, vmf_mixture **out)
{
    *out = NULL;
    vmf_mixture *m;
    int rc = vmf_mixture_copy(m0, &m);
    if (rc != VMF_OK)
        return rc;
    while (m->k < target) {
        int grown;
        rc = split_once(o, &m, x, n, d, SPLIT_EM_ITER, &grown);
        if (rc != VMF_OK || !grown)
            break;
    }
    if (rc == VMF_OK && final_iter > 0) {
        vmf_mixture *f;
        rc = em_from(o, x, n, d, m->k, m->means, final_iter, &f);
        if (rc == VMF_OK) {
            vmf_mixture_free(m);
            m = f;
        }
    }
    if (rc != VMF_OK) {
        vmf_mixture_free(m);
        return rc;
    }
    *out = m;
    return VMF_OK;
}

/* Per-sample soft statistics of mixture m on x [n][d] into s0 [k], s1 [k][d]. */
static int sample_stats(const vmf_mixture *m, const float *x, size_t n, size_t d, double *s0,
                        double *s1)
{
    int rc = vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_SOFT, NULL, 0, s0, s1, NULL, NULL);
    if (rc != VMF_OK)
        return rc;
    double inv = 1.0 / (double)n;
    for (size_t j = 0; j < m->k; j++)
        s0[j] *= inv;
    for (size_t j = 0; j < m->k * d; j++)
        s1[j] *= inv;
    return VMF_OK;
}

/* Installs mixture m (taken over on success) with its statistics on x into the class. */
static int class_install(vmf__class *cl, vmf_mixture *m, const float *x, size_t n, size_t d)
{
    size_t k = m->k;
    double *s0 = vmf__malloc_array(k, sizeof *s0);
    double *s1 = vmf__malloc_array(k * d, sizeof *s1);
    int rc = (!s0 || !s1) ? vmf__error(VMF_ENOMEM, "classifier: out of memory") : VMF_OK;
    if (rc == VMF_OK)
        rc = sample_stats(m, x, n, d, s0, s1);
    if (rc == VMF_OK)
        rc = vmf__stepwise_reset(cl->sw, m, s0, s1);
    vmf__free(s0);
    vmf__free(s1);
    return rc;
}

static size_t target_k(const vmf_classifier_opts *o, uint64_t rows)
{
    uint64_t k = rows / o->rows_per_component;
    if (k < 1)
        k = 1;
    return k > o->k_max ? o->k_max : (size_t)k;
}

/* Adds rows x [n][d] to the class's growth sample (algorithm R past capacity). */
static void sample_rows(vmf__class *cl, const float *x, size_t n, size_t d, size_t cap,
                        vmf_rng *rng)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t seen = cl->rows + i + 1;
        if (cl->buf_n < cap) {
            memcpy(cl->buf + cl->buf_n * d, x + i * d, d * sizeof *cl->buf);
            cl->buf_n++;
            continue;
        }
        uint64_t j = vmf_rng_below(rng, seen);
        if (j < cap)
            memcpy(cl->buf + j * d, x + i * d, d * sizeof *cl->buf);
    }
}

/* Learns rows x [n][d] of one class (a private copy, or a new class). */
static int class_learn(const vmf_classifier_opts *o, vmf__class *cl, const float *x, size_t n,
                       size_t d, vmf_rng *rng)
{
    size_t cap = vmf__classifier_buf_cap(o);
    int fresh = cl->sw->m == NULL;
    if (cl->buf)
        sample_rows(cl, x, n, d, cap, rng);
    cl->rows += n;
    size_t target = target_k(o, cl->rows);
    int rc = VMF_OK;
    if (fresh || !cl->buf || target <= cl->sw->m->k) {
        rc = vmf_stepwise_update(cl->sw, x, n, d);
        if (rc != VMF_OK || !cl->buf || target <= cl->sw->m->k)
            goto check_done;
    }
    /* Grow from the sample; the batch is in the sample, so the refit learns it. */
    vmf_mixture *m;
    rc = grow_mixture(o, cl->sw->m, cl->buf, cl->buf_n, d, target, 0, &m);
    if (rc != VMF_OK)
        return rc;
    rc = class_install(cl, m, cl->buf, cl->buf_n, d);
    if (rc != VMF_OK) {
        vmf_mixture_free(m);
        return rc;
    }
    cl->sw->rows = cl->rows;
check_done:
    if (rc == VMF_OK && cl->buf && cl->sw->m->k >= o->k_max) {
        vmf__free(cl->buf);
        cl->buf = NULL;
        cl->buf_n = 0;
    }
    return rc;
}

static int class_new(const vmf_classifier_opts *o, size_t d, vmf__class **out)
{
    *out = NULL;
    vmf__class *cl = vmf__calloc(1, sizeof *cl);
    if (!cl)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory for a class");
    vmf_stepwise_opts so;
    vmf__classifier_sw_opts(o, 1, &so);
    int rc = vmf__stepwise_new_clock(&so, d, VMF__CLOCK_ROWS, &cl->sw);
    if (rc == VMF_OK && o->k_max > 1) {
        cl->buf = vmf__malloc_array(vmf__classifier_buf_cap(o) * d, sizeof *cl->buf);
        if (!cl->buf)
            rc = vmf__error(VMF_ENOMEM, "classifier: out of memory for a growth sample");
    }
    if (rc != VMF_OK) {
        vmf__class_free(cl);
        return rc;
    }
    *out = cl;
    return VMF_OK;
}

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
    /* Private copies of the touched classes; untouched ones are shared until commit. */
    for (size_t k = 0; k < nc; k++) {
        if (g.start[k + 1] == g.start[k])
            continue;
        if (k < old_nc)
            rc = class_copy(c->cls[k], d, vmf__classifier_buf_cap(&c->o), &ncls[k]);
        else
            rc = class_new(&c->o, d, &ncls[k]);
        if (rc != VMF_OK)
            goto fail;
    }
    /* Test, then train: the current model scores rows of known classes first. */
    if (c->o.kappa_scale == 0.0 && old_nc > 0) {
        float *px;
        int32_t *pc;
        size_t pn;
        rc = pq_pick(g.xs, g.start, nc, old_nc, d, PQ_BATCH_ROWS, &px, &pc, &pn);
        if (rc == VMF_OK && pn > 0)
            rc = pq_score(c, px, pn, pc, ncls);
        vmf__free(px);
        vmf__free(pc);
        if (rc != VMF_OK)
            goto fail;
    }
    for (size_t k = 0; k < nc; k++) {
        size_t cnt = g.start[k + 1] - g.start[k];
        if (cnt == 0)
            continue;
        rc = class_learn(&c->o, ncls[k], g.xs + g.start[k] * d, cnt, d, &rng);
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
    cache_free(c);
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
 * Batch fit of one class on all its rows x [n][d]: one component (the mean
 * direction), grown by splits to K(n), then EM to convergence. The growth
 * sample is filled as if the rows had streamed in.
 */
static int class_fit(const vmf_classifier_opts *o, const float *x, size_t n, size_t d, vmf_rng *rng,
                     vmf__class **out)
{
    *out = NULL;
    vmf__class *cl;
    int rc = class_new(o, d, &cl);
    if (rc != VMF_OK)
        return rc;
    vmf_mixture *m1 = NULL, *m = NULL;
    float *mean = vmf__calloc(d, sizeof *mean);
    if (!mean) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory");
        goto done;
    }
    double *acc = vmf__calloc(d, sizeof *acc);
    if (!acc) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            acc[j] += (double)x[i * d + j];
    double nn = 0.0;
    for (size_t j = 0; j < d; j++)
        nn += acc[j] * acc[j];
    nn = sqrt(nn);
    for (size_t j = 0; j < d; j++)
        mean[j] = nn > 0.0 ? (float)(acc[j] / nn) : (j == 0 ? 1.0f : 0.0f);
    vmf__free(acc);
    rc = em_from(o, x, n, d, 1, mean, 1, &m1);
    if (rc == VMF_OK)
        rc = grow_mixture(o, m1, x, n, d, target_k(o, n), FINAL_EM_ITER, &m);
    if (rc == VMF_OK) {
        rc = class_install(cl, m, x, n, d);
        if (rc != VMF_OK)
            vmf_mixture_free(m);
    }
    if (rc != VMF_OK)
        goto done;
    cl->sw->steps = (n + o->minibatch - 1) / o->minibatch;
    if (cl->buf && cl->sw->m->k < o->k_max)
        sample_rows(cl, x, n, d, vmf__classifier_buf_cap(o), rng);
    else {
        vmf__free(cl->buf);
        cl->buf = NULL;
        cl->buf_n = 0;
    }
    cl->rows = n;
    cl->sw->rows = n;
done:
    vmf__free(mean);
    vmf_mixture_free(m1);
    if (rc != VMF_OK) {
        vmf__class_free(cl);
        return rc;
    }
    *out = cl;
    return VMF_OK;
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
            rc = pq_pick(xho, hstart, nc, nc, d, PQ_FIT_ROWS, &px, &pc, &pn);
        if (rc == VMF_OK && pn > 0)
            rc = pq_score(m, px, pn, pc, c->cls);
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
    for (size_t k = 0; k < nc && rc == VMF_OK; k++) {
        rc = class_fit(o, g.xs + g.start[k] * d, g.start[k + 1] - g.start[k], d, &c->rng,
                       &c->cls[k]);
        if (rc == VMF_OK)
            c->n_classes = k + 1;
    }
    c->rows = n;
    if (rc == VMF_OK && o->kappa_scale == 0.0)
        rc = fit_record(o, &g, nc, d, c);
    if (rc == VMF_OK)
        rc = vmf__classifier_refresh(c);
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

/* ---- prediction ---- */

static int check_predict(const vmf_classifier *c, const float *x, size_t n, size_t d,
                         const char *fn)
{
    if (!c)
        return vmf__error(VMF_EINVAL, "%s: classifier is NULL", fn);
    if (c->n_classes == 0)
        return vmf__error(VMF_EINVAL, "%s: the classifier has not learned any class yet", fn);
    if (n == 0)
        return VMF_OK;
    if (d != c->d)
        return vmf__error(VMF_EINVAL, "%s: rows have dimension %zu, the classifier has %zu", fn, d,
                          c->d);
    if (!x)
        return vmf__error(VMF_EINVAL, "%s: x is NULL", fn);
    int rc = vmf_rows_check(x, n, d);
    if (rc != VMF_OK)
        return vmf__error_wrap(rc, fn, NULL);
    return VMF_OK;
}

/*
 * Terms of a log-sum-exp more than SKIP_LOG below its maximum are not
 * exponentiated: each is below e^-60 < 1e-26 of the sum, so even 10^9 of
 * them change nothing at double precision.
 */
#define SKIP_LOG 60.0

/*
 * The novelty score of a row whose largest cosine to a component mean is
 * `near`: the cosine distance 1 - near to the nearest known mode, clamped
 * to [0, 2] (float rounding of a unit row against a unit mean can exceed 1
 * by a few ulps).
 */
static double novelty_of(float near)
{
    double v = 1.0 - (double)near;
    return v < 0.0 ? 0.0 : v > 2.0 ? 2.0 : v;
}

/* log sum_j exp(l_j) over class q's components, given their maximum cm. */
static double class_lse(const vmf_classifier *c, const float *dr, size_t q, double cm)
{
    double s = 0.0;
    for (size_t j = c->off[q]; j < c->off[q + 1]; j++) {
        double t = c->pcoef[j] + c->pkappa[j] * (double)dr[j] - cm;
        if (t > -SKIP_LOG)
            s += exp(t);
    }
    return cm + log(s);
}

/*
 * log P(class | x) for a block: dots [rows][n_comp] scratch, out [rows][nc].
 * With k = 0 every class is evaluated. With 0 < k < nc only what the top k
 * and the normalizer need is: o_q lies in [m_q, m_q + log K_q] with m_q the
 * class's largest component term, so a class whose upper bound is below the
 * k-th largest lower bound cannot be in the top k, and one more than
 * SKIP_LOG below the best lower bound does not move the normalizer; those
 * get -inf. The values of the classes that are evaluated are exactly those
 * of the full computation. `kbuf` holds k doubles.
 */
static void block_log_proba(const vmf_classifier *c, const float *x, size_t rows, float *dots,
                            double *out, size_t k, double *kbuf, double *novelty)
{
    size_t T = c->n_comp, nc = c->n_classes, kmax = 1;
    for (size_t q = 0; q < nc; q++)
        kmax = c->off[q + 1] - c->off[q] > kmax ? c->off[q + 1] - c->off[q] : kmax;
    double logk = log((double)kmax);
    int prune = k > 0 && k < nc;
    vmf__sgemm(0, 1, rows, T, c->d, 1.0f, x, c->d, c->pmeans, c->d, 0.0f, dots, T);
    for (size_t i = 0; i < rows; i++) {
        const float *dr = dots + i * T;
        double *o = out + i * nc;
        double best = -INFINITY;
        float near = -2.0f;
        size_t have = 0;
        for (size_t q = 0; q < nc; q++) {
            double cm = -INFINITY;
            for (size_t j = c->off[q]; j < c->off[q + 1]; j++) {
                double l = c->pcoef[j] + c->pkappa[j] * (double)dr[j];
                cm = l > cm ? l : cm;
                near = dr[j] > near ? dr[j] : near;
            }
            o[q] = cm;
            best = cm > best ? cm : best;
            if (!prune || (have == k && !(cm > kbuf[k - 1])))
                continue;
            /* The k largest lower bounds, in decreasing order. */
            size_t at = have < k ? have++ : k - 1;
            while (at > 0 && cm > kbuf[at - 1]) {
                kbuf[at] = kbuf[at - 1];
                at--;
            }
            kbuf[at] = cm;
        }
        double kth = prune ? kbuf[k - 1] : -INFINITY, mx = -INFINITY;
        for (size_t q = 0; q < nc; q++) {
            if (o[q] == -INFINITY)
                continue;
            double ub = o[q] + logk;
            if (prune && ub < kth && ub < best - SKIP_LOG) {
                o[q] = -INFINITY;
                continue;
            }
            o[q] = class_lse(c, dr, q, o[q]);
            mx = o[q] > mx ? o[q] : mx;
        }
        double s = 0.0;
        for (size_t q = 0; q < nc; q++) {
            double t = o[q] - mx;
            if (t > -SKIP_LOG)
                s += exp(t);
        }
        double lse = mx + log(s);
        for (size_t q = 0; q < nc; q++)
            o[q] -= lse;
        if (novelty)
            novelty[i] = novelty_of(near);
    }
}

static int predict_blocks(const vmf_classifier *c, const float *x, size_t n, size_t k,
                          int32_t *classes, double *proba, double *log_proba, double *novelty)
{
    size_t nc = c->n_classes, T = c->n_comp, b = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    float *dots = vmf__malloc_array(b * T, sizeof *dots);
    double *lp = log_proba ? NULL : vmf__malloc_array(b * nc, sizeof *lp);
    double *kbuf = vmf__malloc_array(k ? k : 1, sizeof *kbuf);
    if (!dots || (!log_proba && !lp) || !kbuf) {
        vmf__free(dots);
        vmf__free(lp);
        vmf__free(kbuf);
        return vmf__error(VMF_ENOMEM, "classifier predict: out of memory for %zu x %zu", b, T);
    }
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        double *o = log_proba ? log_proba + i0 * nc : lp;
        block_log_proba(c, x + i0 * c->d, rows, dots, o, classes ? k : 0, kbuf,
                        novelty ? novelty + i0 : NULL);
        if (!classes)
            continue;
        for (size_t i = 0; i < rows; i++) {
            const double *r = o + i * nc;
            int32_t *ci = classes + (i0 + i) * k;
            double *pi = proba ? proba + (i0 + i) * k : NULL;
            size_t have = 0;
            /* Insertion into the running top-k; ties keep the lower class index first. */
            for (size_t q = 0; q < nc; q++) {
                if (have == k && !(r[q] > r[ci[k - 1]]))
                    continue;
                size_t at = have < k ? have++ : k - 1;
                while (at > 0 && r[q] > r[ci[at - 1]]) {
                    ci[at] = ci[at - 1];
                    at--;
                }
                ci[at] = (int32_t)q;
            }
            for (size_t j = 0; j < k; j++) {
                if (j >= have) {
                    ci[j] = -1;
                    if (pi)
                        pi[j] = 0.0;
                } else if (pi) {
                    pi[j] = exp(r[ci[j]]);
                }
            }
        }
    }
    vmf__free(dots);
    vmf__free(lp);
    vmf__free(kbuf);
    return VMF_OK;
}

int vmf_classifier_predict_topk(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                size_t k, int32_t *classes, double *proba)
{
    return vmf_classifier_predict_topk_novelty(c, x, n, d, k, classes, proba, NULL);
}

int vmf_classifier_predict_topk_novelty(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                        size_t k, int32_t *classes, double *proba, double *novelty)
{
    const char *fn = "vmf_classifier_predict_topk";
    int rc = check_predict(c, x, n, d, fn);
    if (rc != VMF_OK)
        return rc;
    if (k == 0)
        return vmf__error(VMF_EINVAL, "%s: k must be >= 1", fn);
    if (n == 0)
        return VMF_OK;
    if (!classes)
        return vmf__error(VMF_EINVAL, "%s: classes is NULL", fn);
    return predict_blocks(c, x, n, k, classes, proba, NULL, novelty);
}

int vmf_classifier_predict_log_proba(const vmf_classifier *c, const float *x, size_t n, size_t d,
                                     double *out)
{
    const char *fn = "vmf_classifier_predict_log_proba";
    int rc = check_predict(c, x, n, d, fn);
    if (rc != VMF_OK)
        return rc;
    if (n == 0)
        return VMF_OK;
    if (!out)
        return vmf__error(VMF_EINVAL, "%s: out is NULL", fn);
    return predict_blocks(c, x, n, 0, NULL, NULL, out, NULL);
}

int vmf_classifier_novelty(const vmf_classifier *c, const float *x, size_t n, size_t d,
                           double *novelty)
{
    const char *fn = "vmf_classifier_novelty";
    int rc = check_predict(c, x, n, d, fn);
    if (rc != VMF_OK)
        return rc;
    if (n == 0)
        return VMF_OK;
    if (!novelty)
        return vmf__error(VMF_EINVAL, "%s: novelty is NULL", fn);
    size_t T = c->n_comp, b = n < PREDICT_BLOCK ? n : PREDICT_BLOCK;
    float *dots = vmf__malloc_array(b * T, sizeof *dots);
    if (!dots)
        return vmf__error(VMF_ENOMEM, "%s: out of memory for %zu x %zu", fn, b, T);
    for (size_t i0 = 0; i0 < n; i0 += b) {
        size_t rows = n - i0 < b ? n - i0 : b;
        vmf__sgemm(0, 1, rows, T, d, 1.0f, x + i0 * d, d, c->pmeans, d, 0.0f, dots, T);
        for (size_t i = 0; i < rows; i++) {
            float near = -2.0f;
            for (size_t j = 0; j < T; j++)
                near = dots[i * T + j] > near ? dots[i * T + j] : near;
            novelty[i0 + i] = novelty_of(near);
        }
    }
    vmf__free(dots);
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

const vmf_mixture *vmf_classifier_class_mixture(const vmf_classifier *c, size_t i)
{
    return (c && i < c->n_classes) ? c->cls[i]->sw->m : NULL;
}

const double *vmf_classifier_class_s0(const vmf_classifier *c, size_t i)
{
    return (c && i < c->n_classes) ? c->cls[i]->sw->s0 : NULL;
}

const double *vmf_classifier_class_s1(const vmf_classifier *c, size_t i)
{
    return (c && i < c->n_classes) ? c->cls[i]->sw->s1 : NULL;
}

double vmf_classifier_kappa(const vmf_classifier *c)
{
    return c ? c->scale * c->kappa_pool : 0.0;
}

double vmf_classifier_kappa_scale(const vmf_classifier *c)
{
    return c ? c->scale : 0.0;
}
