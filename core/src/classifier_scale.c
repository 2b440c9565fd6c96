/*
 * classifier_scale.c - the classifier's temperature: the prequential record
 * of top-1 hits per grid scale, the choice of kappa_scale from it, and the
 * prediction cache (pooled kappa times the scale, log coefficients) that
 * prediction reads.
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
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* exp() below e^-60 is skipped in the record's log-sum-exps, as in prediction. */
#define SKIP_LOG_PQ 60.0

double vmf__classifier_grid_scale(size_t g)
{
    return exp2(-0.5 * (double)g);
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

/*
 * Whether prediction uses the refinement head: when refinement is on,
 * unless the head's recent prequential log-likelihood of the true class,
 * averaged over classes, is below the mixtures' at the scale in use. Both
 * score the same rows (those of the prequential record, before learning
 * them), and each class remembers mostly its last VMF__CMP_WINDOW of them
 * (exponential forgetting), so the choice follows the head as it matures
 * rather than its first, untrained days. With no record (no second batch
 * yet, a fixed kappa_scale, a batch fit) the head is used.
 *
 * Why a choice: one linear boundary per class cannot follow a class made of
 * several separate modes, which the mixtures can (vmfsim's synthetic
 * stream: 0.856 top-1 with the choice, 0.747 with the head always). Why the
 * log-likelihood and not top-1 hits: it is a proper scoring rule, so every
 * row counts by how sure the model was, not only whether its first guess
 * was right; a few rows per class and day are then enough to tell the two
 * apart. Counting hits, the record kept the mixtures on fmnist-cce64 until
 * about day 30 although the head was already better (top-1 at day 20:
 * 0.7360 with hits, 0.7429 with log-likelihoods, 5-fold cross-validation on
 * the training stream 0.7395 / 0.7480; the synthetic stream keeps the
 * mixtures either way). The window of 32 rows was chosen by the same
 * cross-validation (32 / 64 / 256).
 */
static int choose_head(const vmf_classifier *c)
{
    if (c->o.refine_rows == 0)
        return 0;
    double h = 0.0, m = 0.0;
    for (size_t i = 0; i < c->n_classes; i++) {
        const vmf__class *cl = c->cls[i];
        if (cl->cmp_rows > 0.0) {
            h += cl->cmp_head / cl->cmp_rows;
            m += cl->cmp_mix / cl->cmp_rows;
        }
    }
    return h >= m;
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
        int rc = vmf_kappa_estimate(&c->o.stepwise.kappa, d, mass, res, &kpool);
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
    int use_head = choose_head(c);
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
    vmf__classifier_cache_free(c);
    c->off = off;
    c->pmeans = pm;
    c->pcoef = pc;
    c->pkappa = pk;
    c->n_comp = total;
    c->kappa_pool = kpool;
    c->scale = scale;
    c->use_head = use_head;
    return VMF_OK;
}

/* ---- prequential record ---- */

/*
 * Rows x [n][d] of known classes cls [n] scored by m's refinement head:
 * logp[i] = log P(cls[i] | x_i) under the head's softmax, as prediction
 * computes it.
 */
static int score_head(const vmf_classifier *m, const float *x, size_t n, const int32_t *cls,
                      double *logp)
{
    size_t nc = m->n_classes;
    double *lp = vmf__malloc_array(n * nc, sizeof *lp);
    if (!lp)
        return vmf__error(VMF_ENOMEM, "classifier: out of memory scoring %zu rows", n);
    int rc = vmf__classifier_head_log_proba(m, x, n, lp);
    for (size_t i = 0; i < n && rc == VMF_OK; i++)
        logp[i] = lp[i * nc + (size_t)cls[i]];
    vmf__free(lp);
    return rc;
}

/*
 * Scores rows x [n][d] of known classes cls [n] (indices into model m) with
 * m at every grid scale and adds, per row, one to dst[cls[i]]->pq_rows and
 * one to pq_hits[g] for each scale g at which the row's class is the top-1
 * prediction (ties go to the lower class index, as in predict_topk). Class
 * priors are those of prediction; with pooled_kappa the normaliser C_d is
 * the same for every component and cancels.
 */
int vmf__classifier_pq_score(const vmf_classifier *m, const float *x, size_t n, const int32_t *cls,
                             vmf__class **dst)
{
    size_t T = m->n_comp, nc = m->n_classes, d = m->d, G = VMF__SCALE_GRID;
    int pooled = m->o.pooled_kappa;
    float *dots = vmf__malloc_array(n * T, sizeof *dots);
    double *base = vmf__malloc_array(T, sizeof *base);
    double *kap = vmf__malloc_array(T, sizeof *kap);
    double *lnc = pooled ? NULL : vmf__malloc_array(G * T, sizeof *lnc);
    double *cval = vmf__malloc_array(nc, sizeof *cval); /* class values at one scale */
    if (!dots || !base || !kap || (!pooled && !lnc) || !cval) {
        vmf__free(dots);
        vmf__free(base);
        vmf__free(kap);
        vmf__free(lnc);
        vmf__free(cval);
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
    /* The head against the mixtures at the scale in use (a grid point, or fixed: none). */
    int head = m->o.refine_rows > 0 && m->head.w && m->head.n == nc;
    double *hlogp = head ? vmf__malloc_array(n, sizeof *hlogp) : NULL;
    int rc = head && !hlogp ? vmf__error(VMF_ENOMEM, "classifier: out of memory scoring") : VMF_OK;
    if (rc == VMF_OK && head)
        rc = score_head(m, x, n, cls, hlogp);
    size_t g_use = G;
    for (size_t g = 0; g < G; g++)
        if (vmf__classifier_grid_scale(g) == m->scale)
            g_use = g;
    for (size_t i = 0; i < n && rc == VMF_OK; i++) {
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
                cval[q] = mx + log(s);
                if (cval[q] > top) {
                    top = cval[q];
                    arg = q;
                }
            }
            cl->pq_hits[g] += arg == (size_t)cls[i];
            if (head && g == g_use) {
                /* log P(true class) under the mixtures, against the head's. */
                double s = 0.0;
                for (size_t q = 0; q < nc; q++)
                    if (cval[q] - top > -SKIP_LOG_PQ)
                        s += exp(cval[q] - top);
                double mlogp = cval[cls[i]] - top - log(s), keep = 1.0 - 1.0 / VMF__CMP_WINDOW;
                cl->cmp_rows = keep * cl->cmp_rows + 1.0;
                cl->cmp_head = keep * cl->cmp_head + fmax(hlogp[i], VMF__CMP_LOGP_MIN);
                cl->cmp_mix = keep * cl->cmp_mix + fmax(mlogp, VMF__CMP_LOGP_MIN);
            }
        }
    }
    vmf__free(dots);
    vmf__free(base);
    vmf__free(kap);
    vmf__free(lnc);
    vmf__free(hlogp);
    vmf__free(cval);
    return rc;
}

/*
 * Picks at most about `budget` rows of a grouped batch for the prequential
 * record, spread evenly over the classes present (the first rows of each
 * class, at least one per class), restricted to classes below `known`;
 * copies them to *xo [*no][d] and their classes to *co. *xo is NULL when no
 * row qualifies.
 */
int vmf__classifier_pq_pick(const float *xs, const size_t *start, size_t nc, size_t known, size_t d,
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
