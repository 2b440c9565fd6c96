/*
 * classifier_refine.c - the discriminative refinement of the classifier
 * (issue 12): one weight vector w_c and bias b_c per class,
 *
 *     P(c | x) = exp(w_c^T x + b_c) / sum_q exp(w_q^T x + b_q),
 *
 * fitted online to the class-balanced softmax cross-entropy
 *
 *     F(w, b) = (1/C) sum_c E_{x ~ class c} [-log P(c | x)]
 *               + (lambda / N) / 2 sum_c |w_c|^2,
 *
 * N the rows seen and C the classes: with N rows the penalty is that of an
 * L2-regularised multinomial logistic regression fitted on all of them with
 * class-balanced weights (lambda = 1 is scikit-learn's C = 1, at any number
 * of classes; until format 5 the penalty was lambda C / N, which made it C
 * times stronger with C classes and cost 100-class streams several points). A new class
 * starts at its vMF natural parameter a_c = s kappa mu_c at the prediction
 * temperature (mu_c the class's mean direction, from the mixture's
 * statistics; s kappa the pooled kappa times the chosen scale), with the
 * mean bias of the known classes, so a class with few rows predicts like
 * its vMF until the gradient moves it. Pulling towards a_c instead of 0 was
 * measured and lost (docs/classifier.md).
 *
 * Why: the isotropic class mixtures lose to a linear discriminative model
 * once data is plentiful, because real classes are anisotropic (docs/
 * classifier.md, "Refinement", has the measurements). The expectation over
 * a class's rows is estimated from its uniform row sample (the growth sample,
 * kept for good when refinement is on), so memory stays bounded:
 * max(C, 64) x refine_rows x max(d, 512) floats (vmf__classifier_buf_cap).
 *
 * Each batch of n rows runs ceil(max(budget, 2 n) / 256) steps of SGD
 * (budget: refine_budget, scaled up for cheaper rows by budget_rows)
 * with momentum 0.9 and step refine_rate on minibatches of 256 rows, and
 * ends at the average of the iterates of its second half (tail averaging:
 * constant-step SGD ends anywhere in its noise ball, the average near its
 * centre; measured +0.002 to +0.005 top-1 early in the stream). The slots
 * of the minibatches go round the classes in turn (slot i of step t to
 * class (256 t + i) mod C), each with a row of its sample drawn uniformly
 * from the generator the caller passes (the classifier's), so the result
 * is deterministic and class-balanced without weights. Drawing the class
 * too, as up to version 6, left each class's share of a minibatch
 * binomial (2.6 +- 1.6 rows of 256 with 100 classes), noise the tail
 * average had to remove; in turn, the training-stream CV (fold seed 7)
 * gained 0.001 to 0.004 on the 100-class stream at days 20 to 200 and
 * 0.002 at day 200 on fmnist-cce64 turned into d = 512. Per step the work is
 * two GEMMs: logits X_b · Wᵀ and the gradient Pᵀ · X_b.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"
#include "vecmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REFINE_BATCH             256
#define REFINE_MOMENTUM          0.9
#define REFINE_PER_ROW           2
#define REFINE_MAX_BUDGET_FACTOR 8
#define REFINE_REF_CLASSES       200
#define GRAD_FLUSH               1e-30 /* well above FLT_MIN, far below any gradient that counts */

/*
 * The anchors a [nc][d]: s kappa times the mean direction of each class (the
 * normalised sum of its per-sample resultants s1, which is its mean row).
 */
static void anchors(const vmf_classifier *c, float *a, float *unit)
{
    size_t d = c->d;
    for (size_t q = 0; q < c->n_classes; q++) {
        const vmf_stepwise *sw = c->cls[q]->sw;
        double nn = 0.0;
        float *aq = a + q * d;
        for (size_t j = 0; j < d; j++) {
            double v = 0.0;
            for (size_t k = 0; k < sw->m->k; k++)
                v += sw->s1[k * d + j];
            aq[j] = (float)v;
            nn += v * v;
        }
        double kap = c->pkappa[c->off[q]]; /* s kappa: pooled, or the first component's */
        double f = nn > 0.0 ? kap / sqrt(nn) : 0.0, u = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
        for (size_t j = 0; j < d; j++) {
            unit[q * d + j] = (float)((double)aq[j] * u);
            aq[j] = (float)((double)aq[j] * f);
        }
    }
}

/*
 * Gradient rows per partial_fit before the 2 n floor, sized in work: a
 * gradient row costs 4 d C flops in the two GEMMs and C exponentials, and
 * refine_budget rows are what the reference shape, d = 512 with
 * REFINE_REF_CLASSES classes, affords (vmf_bench_classifier's 5,000-row
 * day within 0.2 s). A cheaper row gets more of them, refine_budget x
 * max(512 / d, 512 x 200 / (d C)), at most 8 times refine_budget (below
 * d = 64 the exponentials cost as much as the GEMMs). Measured by the
 * training-stream CV: on fmnist-cce64 (d = 64; fold seeds 7, 11, 13, 17)
 * 512 / d gave +0.009 top-1 at day 5 and +0.001 at day 200 against
 * refine_budget at every d; the same rows turned into d = 512 (fold seed
 * 7) read 0.7338 / 0.8327 / 0.9200 at days 5 / 50 / 200 with 8 times the
 * budget, 0.7261 / 0.8315 / 0.9198 without.
 */
static size_t budget_rows(const vmf_classifier_opts *o, size_t d, size_t nc)
{
    double f = d > 0 ? (double)VMF__REFINE_REF_DIM / (double)d : 1.0;
    double w = d > 0 && nc > 0
                   ? (double)VMF__REFINE_REF_DIM * REFINE_REF_CLASSES / ((double)d * (double)nc)
                   : 1.0;
    f = w > f ? w : f;
    f = f < 1.0 ? 1.0 : f > REFINE_MAX_BUDGET_FACTOR ? REFINE_MAX_BUDGET_FACTOR : f;
    return (size_t)((double)o->refine_budget * f);
}

/*
 * One row of a minibatch: its dot products li [nc] (the GEMM's output)
 * become the gradient of its loss wrt its logits, (softmax - one-hot) x
 * inv_b, in place; mb [nc] (the bias momentum) adds the same. e [nc] is
 * scratch. One vmf__exp_nonpos per class, the maximum and the sum by
 * vmf__lanes_max and vmf__lanes_sum (as prediction's head_row, which needs
 * the logits and their log-sum-exp instead), so the loops vectorize and
 * every clone gives the same bits.
 */
static VMF_CLONES VMF_VECTORIZE void grad_row(float *li, const double *b, size_t nc, size_t y,
                                              double inv_b, double *e, double *mb)
{
    for (size_t q = 0; q < nc; q++)
        e[q] = (double)li[q] + b[q];
    double mx = vmf__lanes_max(e, nc);
    for (size_t q = 0; q < nc; q++)
        e[q] = vmf__exp_nonpos(e[q] - mx);
    double f = inv_b / vmf__lanes_sum(e, nc); /* the sum >= 1: the maximum's term is 1 */
    for (size_t q = 0; q < nc; q++) {
        double p = e[q] * f;
        /*
         * Zero below GRAD_FLUSH: the float would be subnormal, and a GEMM
         * over subnormal floats runs several times slower (the weights of
         * well separated classes grow until most probabilities are tiny).
         */
        e[q] = p >= GRAD_FLUSH ? p : 0.0;
    }
    e[y] -= inv_b;
    for (size_t q = 0; q < nc; q++) {
        li[q] = (float)e[q];
        mb[q] += e[q];
    }
}

int vmf__classifier_refine(const vmf_classifier *c, size_t n_new, vmf_rng *rng, vmf__head *out)
{
    memset(out, 0, sizeof *out);
    size_t nc = c->n_classes, d = c->d, B = REFINE_BATCH;
    const vmf__head *old = &c->head;
    size_t keep = old->w ? old->n : 0;
    vmf__head h = {0};
    float *a = vmf__malloc_array(nc * d, sizeof *a);
    double *aw = vmf__calloc(nc * d + nc, sizeof *aw);
    float *unit = vmf__malloc_array(nc * d, sizeof *unit);
    float *xb = vmf__malloc_array(B * d, sizeof *xb);
    float *lg = vmf__malloc_array(B * nc, sizeof *lg);
    float *g = vmf__malloc_array(nc * d, sizeof *g);
    int32_t *yb = vmf__malloc_array(B, sizeof *yb);
    double *row = vmf__malloc_array(nc, sizeof *row); /* grad_row's scratch */
    h.w = vmf__malloc_array(nc * d, sizeof *h.w);
    h.mw = vmf__calloc(nc * d, sizeof *h.mw);
    h.b = vmf__malloc_array(nc, sizeof *h.b);
    h.mb = vmf__calloc(nc, sizeof *h.mb);
    int rc = VMF_OK;
    if (!a || !aw || !unit || !xb || !lg || !g || !yb || !row || !h.w || !h.mw || !h.b || !h.mb) {
        rc = vmf__error(VMF_ENOMEM, "classifier: out of memory refining %zu classes", nc);
        goto done;
    }
    h.n = nc;
    anchors(c, a, unit);
    /* Known classes continue; new ones start at their anchor with the mean bias. */
    double bmean = 0.0;
    if (keep > 0) {
        memcpy(h.w, old->w, keep * d * sizeof *h.w);
        memcpy(h.mw, old->mw, keep * d * sizeof *h.mw);
        memcpy(h.b, old->b, keep * sizeof *h.b);
        memcpy(h.mb, old->mb, keep * sizeof *h.mb);
        for (size_t q = 0; q < keep; q++)
            bmean += old->b[q];
        bmean /= (double)keep;
    }
    memcpy(h.w + keep * d, a + keep * d, (nc - keep) * d * sizeof *h.w);
    for (size_t q = keep; q < nc; q++)
        h.b[q] = bmean;
    size_t want = budget_rows(&c->o, d, nc);
    if (n_new * REFINE_PER_ROW > want)
        want = n_new * REFINE_PER_ROW;
    size_t steps = (want + B - 1) / B;
    double lam = c->rows > 0 ? c->o.refine_lambda / (double)c->rows : 0.0;
    double rate = c->o.refine_rate, mom = REFINE_MOMENTUM;
    size_t from = steps / 2, na = 0;
    for (size_t t = 0; t < steps; t++) {
        for (size_t i = 0; i < B; i++) {
            size_t q = (size_t)(((uint64_t)t * B + i) % nc);
            const vmf__class *cl = c->cls[q];
            if (cl->buf_n > 0) {
                size_t r = (size_t)vmf_rng_below(rng, cl->buf_n);
                memcpy(xb + i * d, cl->buf + r * d, d * sizeof *xb);
            } else {
                /* No sample (a state restored without one): the mean direction stands in. */
                memcpy(xb + i * d, unit + q * d, d * sizeof *xb);
            }
            yb[i] = (int32_t)q;
        }
        vmf__sgemm(0, 1, B, nc, d, 1.0f, xb, d, h.w, d, 0.0f, lg, nc);
        /* Softmax minus the one-hot label, over B: the gradient wrt the logits. */
        for (size_t q = 0; q < nc; q++)
            h.mb[q] *= mom;
        for (size_t i = 0; i < B; i++)
            grad_row(lg + i * nc, h.b, nc, (size_t)yb[i], 1.0 / (double)B, row, h.mb);
        vmf__sgemm(1, 0, nc, d, B, 1.0f, lg, nc, xb, d, 0.0f, g, d);
        for (size_t j = 0; j < nc * d; j++) {
            double gj = (double)g[j] + lam * (double)h.w[j];
            double m = mom * (double)h.mw[j] + gj;
            h.mw[j] = (float)m;
            h.w[j] = (float)((double)h.w[j] - rate * m);
        }
        for (size_t q = 0; q < nc; q++)
            h.b[q] -= rate * h.mb[q];
        if (t >= from) {
            for (size_t j = 0; j < nc * d; j++)
                aw[j] += h.w[j];
            for (size_t q = 0; q < nc; q++)
                aw[nc * d + q] += h.b[q];
            na++;
        }
    }
    if (na > 0) {
        for (size_t j = 0; j < nc * d; j++)
            h.w[j] = (float)(aw[j] / (double)na);
        for (size_t q = 0; q < nc; q++)
            h.b[q] = aw[nc * d + q] / (double)na;
    }
    for (size_t j = 0; j < nc * d && rc == VMF_OK; j++)
        if (!isfinite(h.w[j]))
            rc = vmf__error(VMF_ERANGE, "classifier: refinement diverged (refine_rate too large)");
    for (size_t q = 0; q < nc && rc == VMF_OK; q++)
        if (!isfinite(h.b[q]))
            rc = vmf__error(VMF_ERANGE, "classifier: refinement diverged (refine_rate too large)");
done:
    vmf__free(a);
    vmf__free(aw);
    vmf__free(unit);
    vmf__free(xb);
    vmf__free(lg);
    vmf__free(g);
    vmf__free(yb);
    vmf__free(row);
    if (rc != VMF_OK) {
        vmf__head_free(&h);
        return rc;
    }
    *out = h;
    return VMF_OK;
}
