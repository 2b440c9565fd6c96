/*
 * em_search.c - the split-and-merge search of batch EM (em.c runs it on a
 * subsample of the rows before EM on all of them): which restarts search,
 * the subsample, the split scores, the planned moves and the rounds that
 * keep a move only when the likelihood rises.
 *
 * Why the split test works: a vMF component's tangent covariance is
 * isotropic, (1 - E[(mu^T x)^2]) / (d - 1) in every direction, and a sample
 * of s0 rows widens its largest eigenvalue at most to about that times
 * (1 + sqrt((d - 1)/s0))^2; two clusters under one mean add the variance of
 * their separation along one direction, tens of times the edge for clusters
 * that EM can tell apart. The threshold (1.3x the edge) only decides which
 * moves are tried; a move stays only if the subsample's likelihood rises
 * by more than the tolerance, so the search never ends below the EM fit
 * it started from.
 */
#include "em_internal.h"
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The search runs for soft EM with 2 <= K <= SEARCH_MAX_K and a tolerance
 * (tol = 0 asks for exactly max_iter plain EM iterations). Above
 * SEARCH_MAX_K its K x K merge costs and its sample of a few rows per
 * component would cost more than they find.
 */
#define SEARCH_MAX_K 4096

int vmf__em_use_search(const vmf_em_opts *o, size_t k)
{
    return o->search && k >= 2 && k <= SEARCH_MAX_K && o->tol > 0.0 &&
           o->assignment == VMF_ASSIGN_SOFT && o->max_iter > 0;
}

/*
 * Rows of the search sample: search_rows, or 512 K (at least 4096) by
 * default, at most n, and at most 2^24 / K so that its responsibilities
 * [ns][K] stay within 64 MiB.
 */
size_t vmf__em_search_size(const vmf_em_opts *o, size_t n, size_t k, size_t d)
{
    size_t ns = o->search_rows;
    if (ns == 0)
        ns = k > SIZE_MAX / 512 ? SIZE_MAX : (512 * k < 4096 ? 4096 : 512 * k);
    (void)d;
    size_t cap = ((size_t)1 << 24) / k;
    if (ns > cap)
        ns = cap;
    if (ns < k)
        ns = k;
    return ns < n ? ns : n;
}

/* ns of the n rows of x, uniformly, kept in input order (Knuth's selection sampling). */
void vmf__em_sample_rows(const float *x, size_t n, size_t d, size_t ns, vmf_rng *rng, float *out)
{
    size_t got = 0;
    for (size_t i = 0; i < n && got < ns; i++) {
        if ((uint64_t)vmf_rng_below(rng, (uint64_t)(n - i)) < (uint64_t)(ns - got)) {
            memcpy(out + got * d, x + i * d, d * sizeof *out);
            got++;
        }
    }
}

/* Copies the parameters of src into dst (same shape). */
static void params_copy(vmf_mixture *dst, const vmf_mixture *src)
{
    memcpy(dst->weights, src->weights, src->k * sizeof *dst->weights);
    memcpy(dst->kappas, src->kappas, src->k * sizeof *dst->kappas);
    memcpy(dst->means, src->means, src->k * src->d * sizeof *dst->means);
    vmf__mixture_refresh(dst);
}

/*
 * Expected complete-data log-likelihood of one component fitted to
 * statistics (s0, |s1| = rnorm), up to terms that cancel between a pair and
 * its merge: s0 (log C_d(kappa) + log s0) + kappa |s1|.
 */
static int comp_q(const vmf_em_opts *o, size_t d, double s0, double rnorm, double *q)
{
    double kap;
    if (!(s0 > 0.0)) {
        *q = 0.0;
        return VMF_OK;
    }
    int rc = vmf_kappa_estimate(&o->kappa, d, s0, rnorm, &kap);
    if (rc != VMF_OK)
        return rc;
    *q = s0 * (vmf_log_norm_const(d, kap) + log(s0)) + kap * rnorm;
    return VMF_OK;
}

/* Scratch of the search, sized once per restart. */
typedef struct search_buf {
    float *r, *p;  /* [ns][k] responsibilities, projections */
    float *v;      /* [k][d] principal tangent directions */
    double *lam;   /* [k] variance along v */
    double *score; /* [k] lam over the isotropic tangent variance and its noise edge */
    double *s2;    /* [k] sum_i r_ik (mu_k^T x_i)^2 */
    double *cost;  /* [k][k] merge costs */
    double *q;     /* [k] */
    size_t *split, *freed, *pair; /* [k] each */
    unsigned char *taken;         /* [k] */
    unsigned char *fresh;         /* [k] 1: start the power iteration from a random vector */
    size_t *dom, *order;          /* [ns] dominant component of each row; rows by component */
    size_t *start, *fill;         /* [k + 1], [k]: where each component's rows begin */
    double *ud;                   /* [d] */
    vmf_mixture *save;
} search_buf;

static void search_buf_free(search_buf *b)
{
    vmf__free(b->r);
    vmf__free(b->p);
    vmf__free(b->v);
    vmf__free(b->lam);
    vmf__free(b->score);
    vmf__free(b->s2);
    vmf__free(b->cost);
    vmf__free(b->q);
    vmf__free(b->split);
    vmf__free(b->freed);
    vmf__free(b->pair);
    vmf__free(b->taken);
    vmf__free(b->fresh);
    vmf__free(b->dom);
    vmf__free(b->order);
    vmf__free(b->start);
    vmf__free(b->fill);
    vmf__free(b->ud);
    vmf_mixture_free(b->save);
}

/* Single moves tried in a round after the batch of all its moves failed. */
#define SEARCH_SINGLES 3

/* Power iterations on the tangent covariances; see the file comment. */
#define SEARCH_POWER_STEPS 10

/*
 * Split scores of every component of m on x [n][d]. The tangent covariance
 * of component k, Sigma_k = sum_i r_ik P_k x_i x_i^T P_k / s0_k with
 * P_k = I - mu_k mu_k^T, has for a vMF component about equal eigenvalues
 * iso_k = (1 - E_k[(mu_k^T x)^2]) / (d - 1); a sample of s0_k rows widens
 * the largest one to at most about iso_k (1 + sqrt((d-1)/s0_k))^2 (the
 * Marchenko-Pastur edge). A component that covers two clusters has a
 * tangent direction (between them) of far larger variance. score_k is the
 * largest eigenvalue (power iteration over the component's rows, see
 * below) over that edge, so ~1 or below for a well fitted component.
 */
static int split_scores(const vmf_mixture *m, const float *x, size_t n, size_t d, vmf_rng *rng,
                        search_buf *b, double *s0, double *lsc)
{
    size_t k = m->k;
    vmf__sgemm(0, 1, n, k, d, 1.0f, x, d, m->means, d, 0.0f, b->r, k);
    memcpy(b->p, b->r, n * k * sizeof *b->p);
    vmf__mixture_resp_block(m, n, VMF_ASSIGN_SOFT, NULL, b->r, lsc, NULL);
    /*
     * Each row counts for its dominant component only (weight r_ik): then
     * the rows of component k can be listed (counting sort into b->order)
     * and a power step costs 2 d flops per row for all components together,
     * instead of two GEMMs. On separated clusters almost all of a row's
     * mass is on its dominant component, so this is the same statistic.
     */
    memset(s0, 0, k * sizeof *s0);
    memset(b->s2, 0, k * sizeof *b->s2);
    memset(b->start, 0, (k + 1) * sizeof *b->start);
    for (size_t i = 0; i < n; i++) {
        const float *r = b->r + i * k;
        size_t a = 0;
        for (size_t c = 1; c < k; c++)
            a = r[c] > r[a] ? c : a;
        b->dom[i] = a;
        b->start[a + 1]++;
        double ri = (double)r[a], t = (double)b->p[i * k + a];
        s0[a] += ri;
        b->s2[a] += ri * t * t;
    }
    for (size_t c = 0; c < k; c++)
        b->start[c + 1] += b->start[c];
    for (size_t c = 0; c < k; c++)
        b->fill[c] = b->start[c];
    for (size_t i = 0; i < n; i++)
        b->order[b->fill[b->dom[i]]++] = i;
    for (size_t c = 0; c < k; c++) {
        float *v = b->v + c * d;
        const float *mu = m->means + c * d;
        double *u = b->ud;
        /*
         * Start vector: the last round's direction of a component no move
         * touched since (close to converged: the steps accumulate over
         * rounds), a random one otherwise; always made orthogonal to mu.
         */
        double dot = 0.0, nn = 0.0;
        for (size_t j = 0; j < d; j++) {
            if (b->fresh[c])
                v[j] = (float)vmf_rng_normal(rng);
            dot += (double)v[j] * (double)mu[j];
        }
        b->fresh[c] = 0;
        for (size_t j = 0; j < d; j++) {
            v[j] = (float)((double)v[j] - dot * (double)mu[j]);
            nn += (double)v[j] * (double)v[j];
        }
        nn = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
        for (size_t j = 0; j < d; j++)
            v[j] = (float)((double)v[j] * nn);
        b->lam[c] = 0.0;
        for (int step = 0; step < SEARCH_POWER_STEPS; step++) {
            /* u = sum_i r_ik (x_i^T v) x_i over the component's rows, then P_k u. */
            memset(u, 0, d * sizeof *u);
            for (size_t q = b->start[c]; q < b->start[c + 1]; q++) {
                size_t i = b->order[q];
                const float *xi = x + i * d;
                double pv = 0.0;
                for (size_t j = 0; j < d; j++)
                    pv += (double)xi[j] * (double)v[j];
                pv *= (double)b->r[i * k + c];
                for (size_t j = 0; j < d; j++)
                    u[j] += pv * (double)xi[j];
            }
            double dm = 0.0, dv = 0.0, un = 0.0;
            for (size_t j = 0; j < d; j++)
                dm += u[j] * (double)mu[j];
            for (size_t j = 0; j < d; j++) {
                u[j] -= dm * (double)mu[j];
                dv += u[j] * (double)v[j];
                un += u[j] * u[j];
            }
            b->lam[c] = s0[c] > 0.0 ? dv / s0[c] : 0.0;
            if (!(un > 0.0))
                break;
            double inv = 1.0 / sqrt(un);
            for (size_t j = 0; j < d; j++)
                v[j] = (float)(u[j] * inv);
        }
    }
    for (size_t c = 0; c < k; c++) {
        b->score[c] = 0.0;
        if (!(s0[c] >= 2.0))
            continue;
        double iso = (1.0 - b->s2[c] / s0[c]) / (double)(d - 1);
        double edge = 1.0 + sqrt((double)(d - 1) / s0[c]);
        if (iso > 0.0)
            b->score[c] = b->lam[c] / (iso * edge * edge);
    }
    return VMF_OK;
}

/* Below this score a component is taken as one cluster (the edge already allows for noise). */
#define SPLIT_SCORE 1.3
/* Components with less mass than this many rows are free slots for splits. */
#define FREE_MASS 3.0

/*
 * Plans up to `max_moves` moves from the scores (b->score) and the
 * statistics s0, s1 of the last pass: splits in decreasing score, each
 * paired with a free slot (a starved component) or else with the
 * cheapest disjoint merge. Fills b->split, b->freed and b->pair (the
 * partner a freed slot merges into, or SIZE_MAX) and returns the count.
 */
static int plan_moves(const vmf_em_opts *o, const vmf_mixture *m, const double *s0,
                      const double *s1, search_buf *b, size_t max_moves, size_t *count)
{
    size_t k = m->k, d = m->d, ns = 0, nf = 0;
    *count = 0;
    /* taken: 1 = split, 2 = free (starved or merged away), 3 = merge target */
    unsigned char *taken = b->taken;
    memset(taken, 0, k);
    for (size_t c = 0; c < k * k; c++)
        b->cost[c] = NAN;
    for (size_t c = 0; c < k; c++)
        if (s0[c] < FREE_MASS)
            taken[c] = 2;
    /* Splits by decreasing score (insertion sort, k is small). */
    for (size_t c = 0; c < k; c++) {
        if (taken[c] || !(b->score[c] > SPLIT_SCORE))
            continue;
        size_t pos = ns++;
        while (pos > 0 && b->score[b->split[pos - 1]] < b->score[c]) {
            b->split[pos] = b->split[pos - 1];
            pos--;
        }
        b->split[pos] = c;
    }
    if (ns > max_moves)
        ns = max_moves;
    for (size_t q = 0; q < ns; q++)
        taken[b->split[q]] = 1;
    if (ns == 0)
        return VMF_OK;
    for (size_t c = 0; c < k && nf < ns; c++)
        if (taken[c] == 2) {
            b->pair[nf] = SIZE_MAX;
            b->freed[nf++] = c;
        }
    /* Merge costs for the rest. */
    for (size_t c = 0; c < k; c++) {
        double r2 = 0.0;
        for (size_t j = 0; j < d; j++)
            r2 += s1[c * d + j] * s1[c * d + j];
        int rc = comp_q(o, d, s0[c], sqrt(r2), &b->q[c]);
        if (rc != VMF_OK)
            return rc;
    }
    while (nf < ns) {
        double best = INFINITY;
        size_t bi = SIZE_MAX, bj = SIZE_MAX;
        for (size_t i = 0; i < k; i++) {
            if (taken[i])
                continue;
            for (size_t j = i + 1; j < k; j++) {
                if (taken[j])
                    continue;
                double cst = b->cost[i * k + j];
                if (isnan(cst)) {
                    double r2 = 0.0;
                    for (size_t t = 0; t < d; t++) {
                        double v = s1[i * d + t] + s1[j * d + t];
                        r2 += v * v;
                    }
                    double qm;
                    int rc = comp_q(o, d, s0[i] + s0[j], sqrt(r2), &qm);
                    if (rc != VMF_OK)
                        return rc;
                    cst = b->q[i] + b->q[j] - qm;
                    b->cost[i * k + j] = cst;
                }
                if (cst < best) {
                    best = cst;
                    bi = i;
                    bj = j;
                }
            }
        }
        if (bi == SIZE_MAX)
            break;
        /* The lighter one is freed, its mass goes to the other. */
        size_t keep = s0[bi] >= s0[bj] ? bi : bj, gone = keep == bi ? bj : bi;
        taken[keep] = 3;
        taken[gone] = 2;
        b->freed[nf] = gone;
        b->pair[nf] = keep;
        nf++;
    }
    *count = ns < nf ? ns : nf;
    return VMF_OK;
}

/* Applies planned moves first .. first+count-1 to m (statistics s0, s1 of its last pass). */
static int apply_moves(const vmf_em_opts *o, vmf_mixture *m, const double *s0, const double *s1,
                       search_buf *b, size_t first, size_t count)
{
    size_t d = m->d;
    for (size_t q = first; q < first + count; q++) {
        size_t c = b->split[q], f = b->freed[q], keep = b->pair[q];
        b->fresh[c] = b->fresh[f] = 1;
        if (keep != SIZE_MAX)
            b->fresh[keep] = 1;
        double wf = m->weights[f];
        if (keep != SIZE_MAX) {
            /* Merge f into keep: the pooled statistics. */
            double r2 = 0.0;
            float *mu = m->means + keep * d;
            for (size_t j = 0; j < d; j++) {
                double v = s1[keep * d + j] + s1[f * d + j];
                r2 += v * v;
            }
            double rn = sqrt(r2);
            if (rn > 0.0)
                for (size_t j = 0; j < d; j++)
                    mu[j] = (float)((s1[keep * d + j] + s1[f * d + j]) / rn);
            if (!o->tied_kappa) {
                int rc = vmf_kappa_estimate(&o->kappa, d, s0[keep] + s0[f], rn, &m->kappas[keep]);
                if (rc != VMF_OK)
                    return rc;
            }
            m->weights[keep] += wf;
            wf = 0.0;
        }
        /* Split c into c and f at rbar mu_c +- sqrt(lambda) v_c, halving its weight (plus f's). */
        double rbar = 0.0, r2 = 0.0;
        for (size_t j = 0; j < d; j++)
            r2 += s1[c * d + j] * s1[c * d + j];
        rbar = s0[c] > 0.0 ? sqrt(r2) / s0[c] : 0.0;
        double sd = sqrt(b->lam[c] > 0.0 ? b->lam[c] : 0.0);
        float *mc = m->means + c * d, *mf = m->means + f * d;
        const float *v = b->v + c * d;
        double np = 0.0, nm = 0.0;
        for (size_t j = 0; j < d; j++) {
            double a = rbar * (double)mc[j], e = sd * (double)v[j];
            np += (a + e) * (a + e);
            nm += (a - e) * (a - e);
        }
        np = np > 0.0 ? 1.0 / sqrt(np) : 0.0;
        nm = nm > 0.0 ? 1.0 / sqrt(nm) : 0.0;
        for (size_t j = 0; j < d; j++) {
            double a = rbar * (double)mc[j], e = sd * (double)v[j];
            mf[j] = (float)((a - e) * nm);
            mc[j] = (float)((a + e) * np);
        }
        double half = 0.5 * (m->weights[c] + wf);
        m->weights[c] = half;
        m->weights[f] = half;
        m->kappas[f] = m->kappas[c];
    }
    double ws = 0.0;
    for (size_t c = 0; c < m->k; c++)
        ws += m->weights[c];
    for (size_t c = 0; c < m->k; c++)
        m->weights[c] /= ws;
    vmf__mixture_refresh(m);
    return VMF_OK;
}

/*
 * The split-and-merge search on x [n][d] (the search sample), starting
 * from theta_0 in m. Each round: EM to convergence; split scores; when a
 * component covers more than one cluster, split it along its principal
 * tangent direction and free a slot for it (a starved component, or the
 * merge of the pair whose merge loses least expected complete-data
 * log-likelihood); EM again; keep the moves when the mean log-likelihood
 * rose, else retry with the single best move, else stop.
 */
int vmf__em_search(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                   vmf_rng *rng, vmf__em_work *w, vmf__em_run *r)
{
    size_t k = m->k, iters;
    search_buf b = {0};
    int rc = VMF_OK, conv;
    double ll;
    b.r = vmf__malloc_array(n * k, sizeof *b.r);
    b.p = vmf__malloc_array(n * k, sizeof *b.p);
    b.v = vmf__malloc_array(k * d, sizeof *b.v);
    b.lam = vmf__malloc_array(k, sizeof *b.lam);
    b.score = vmf__malloc_array(k, sizeof *b.score);
    b.s2 = vmf__malloc_array(k, sizeof *b.s2);
    b.cost = vmf__malloc_array(k * k, sizeof *b.cost);
    b.q = vmf__malloc_array(k, sizeof *b.q);
    b.split = vmf__malloc_array(k, sizeof *b.split);
    b.freed = vmf__malloc_array(k, sizeof *b.freed);
    b.pair = vmf__malloc_array(k, sizeof *b.pair);
    b.taken = vmf__malloc_array(k, 1);
    b.fresh = vmf__malloc_array(k, 1);
    b.dom = vmf__malloc_array(n, sizeof *b.dom);
    b.order = vmf__malloc_array(n, sizeof *b.order);
    b.start = vmf__malloc_array(k + 1, sizeof *b.start);
    b.fill = vmf__malloc_array(k, sizeof *b.fill);
    b.ud = vmf__malloc_array(d, sizeof *b.ud);
    double *s0 = vmf__malloc_array(k, sizeof *s0);
    if (!b.r || !b.p || !b.v || !b.lam || !b.score || !b.s2 || !b.cost || !b.q || !b.split ||
        !b.freed || !b.pair || !b.taken || !b.fresh || !b.dom || !b.order || !b.start || !b.fill ||
        !b.ud || !s0) {
        rc = vmf__error(VMF_ENOMEM, "vmf_mixture_fit: out of memory for the search");
        goto done;
    }
    memset(b.fresh, 1, k);
    rc = vmf__mixture_alloc(k, d, &b.save);
    if (rc != VMF_OK)
        goto done;
    rc = vmf__em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 0, &iters, &ll, &conv);
    r->n_search_iter += iters;
    for (size_t round = 0; rc == VMF_OK && round < 2 * k; round++) {
        rc = split_scores(m, x, n, d, rng, &b, s0, w->kscr);
        if (rc != VMF_OK)
            break;
        size_t count;
        /* The statistics of the last EM pass (w->s0, w->s1) describe m. */
        rc = plan_moves(o, m, w->s0, w->s1, &b, k, &count);
        if (rc != VMF_OK || count == 0)
            break;
        params_copy(b.save, m);
        /*
         * Attempts: all planned moves at once, then each of the first
         * SEARCH_SINGLES alone (a wrong merge or split in the batch must not
         * hide the good ones), the first that raises the likelihood kept.
         */
        size_t singles = count < SEARCH_SINGLES ? count : SEARCH_SINGLES;
        size_t n_try = (count > 1 ? 1 : 0) + singles;
        int accepted = 0;
        for (size_t t = 0; t < n_try && !accepted; t++) {
            size_t first = count > 1 ? (t == 0 ? 0 : t - 1) : t;
            size_t len = count > 1 && t == 0 ? count : 1;
            if (t > 0) {
                /* Back to the round's start; the failed attempt overwrote s0 / s1. */
                double sum;
                params_copy(m, b.save);
                rc = vmf__em_pass(o, m, x, n, d, rng, w, 0, w->s1, &sum);
                if (rc != VMF_OK)
                    break;
            }
            rc = apply_moves(o, m, w->s0, w->s1, &b, first, len);
            if (rc != VMF_OK)
                break;
            double nll;
            rc = vmf__em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 0, &iters, &nll, &conv);
            r->n_search_iter += iters;
            if (rc != VMF_OK)
                break;
            if (nll > ll + (o->tol_absolute ? o->tol : o->tol * fmax(1.0, fabs(ll)))) {
                accepted = 1;
                r->n_moves += len;
                ll = nll;
            }
        }
        if (rc != VMF_OK || !accepted) {
            if (rc == VMF_OK)
                params_copy(m, b.save);
            break;
        }
    }
done:
    search_buf_free(&b);
    vmf__free(s0);
    return rc;
}
