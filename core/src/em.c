/*
 * em.c - batch EM for a mixture of von Mises-Fisher distributions
 * (Banerjee, Dhillon, Ghosh & Sra 2005), soft, hard or stochastic.
 *
 * One iteration is one blocked pass over the data (vmf__mixture_estep_stats:
 * the GEMM X·Mᵀ, the responsibilities, the GEMM Rᵀ·X) followed by an M-step.
 * The pass that computes the statistics for iteration t+1 also yields the
 * log-likelihood of the parameters of iteration t, so the convergence test
 * costs no extra GEMM:
 *
 *   init means; one hard pass (nearest mean) + M-step -> theta_0
 *   pass(theta_0) -> S, L_0
 *   for t = 1..max_iter:
 *       theta_t = M-step(S), then re-seed starved components
 *       pass(theta_t) -> S, L_t          (L_t is the trace entry t)
 *       stop when |L_t - L_{t-1}| < tol max(1, |L_t|)  (L = mean per-sample
 *                                       log-likelihood; tol alone with tol_absolute)
 *
 * With the search (use_search) this loop runs on the search subsample from
 * theta_0, then in rounds of split-and-merge moves (search()), and last on
 * all rows from the search's result, the only phase that fills the trace,
 * calls the progress callback and uses the bounded E-step (bounds.c).
 * Why the split test works: a vMF component's tangent covariance is
 * isotropic, (1 - E[(mu^T x)^2]) / (d - 1) in every direction, and a sample
 * of s0 rows widens its largest eigenvalue at most to about that times
 * (1 + sqrt((d - 1)/s0))^2; two clusters under one mean add the variance of
 * their separation along one direction, tens of times the edge for clusters
 * that EM can tell apart. The threshold (1.3x the edge) only decides which
 * moves are tried; a move stays only if the subsample's likelihood rises
 * by more than the tolerance, so the search never ends below the EM fit
 * it started from.
 *
 * The returned mixture is theta_t and report->loglik is exactly L_t, its mean
 * log-likelihood (computed by the EM kernel; vmf_mixture_mean_loglik agrees
 * to ~1e-7, see mixture_internal.h).
 *
 * Re-seeding rule (applied after every M-step, the initial one included):
 * every component whose mass s0_k = sum_i r_ik is below opts.min_mass is
 * moved, in index order, onto the worst-explained row not yet used in this
 * step, i.e. the row with the lowest log p(x_i) under the parameters of the
 * pass that produced the statistics (ties to the lowest row index); its
 * kappa becomes the median kappa of the components that were not re-seeded
 * (the mean of the two middle values for an even count; unchanged when all
 * were re-seeded); its weight becomes 1/n, after which the weights are
 * renormalized. The default threshold, half a row, lets a component that
 * was re-seeded onto an outlier keep it: it then holds about one row's mass
 * (1 - epsilon), which a threshold of 1 would re-seed again and again.
 * Collapse onto few points is handled by the kappa estimator:
 * vmf_kappa_estimate shrinks rbar towards the prior and clamps to kappa_max,
 * so one point never yields kappa = infinity.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vmf_em_opts_init(vmf_em_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_components = 5;
    o->max_iter = 100;
    o->tol = 1e-6;
    o->n_init = 1;
    o->assignment = VMF_ASSIGN_SOFT;
    o->init = VMF_INIT_KMEANSPP;
    o->init_means = NULL;
    o->tied_kappa = 0;
    vmf_kappa_opts_init(&o->kappa);
    o->min_mass = 0.5;
    o->seed = 42;
    o->block_rows = VMF__BLOCK_ROWS;
    o->tol_absolute = 0;
    o->search = 1;
    o->search_rows = 0;
    o->exact = 0;
    o->progress = NULL;
    o->progress_ctx = NULL;
}

void vmf_em_report_free(vmf_em_report *r)
{
    if (!r)
        return;
    vmf__free(r->trace);
    memset(r, 0, sizeof *r);
}

/* Re-reports the last error with a prefix (vmf__error must not read the buffer it writes). */
static int prefixed(int rc, const char *prefix)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s", vmf_last_error());
    return vmf__error(rc, "%s: %s", prefix, msg);
}

static int check_opts(const vmf_em_opts *o, const float *x, size_t n, size_t d)
{
    size_t k = o->n_components;
    if (k == 0)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: n_components must be >= 1");
    if (d < 2)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: dimension d = %zu, need d >= 2", d);
    if (!x)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: x is NULL");
    if (n < k)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: %zu rows for %zu components, need n >= K",
                          n, k);
    if (n > (size_t)1 << 52)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: %zu rows is more than supported (2^52)", n);
    if (o->n_init == 0)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: n_init must be >= 1");
    if (!(o->tol >= 0.0 && isfinite(o->tol)))
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: tol = %g must be finite and >= 0", o->tol);
    if (!(o->min_mass >= 0.0 && isfinite(o->min_mass)))
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: min_mass = %g must be finite and >= 0",
                          o->min_mass);
    if (o->assignment != VMF_ASSIGN_SOFT && o->assignment != VMF_ASSIGN_HARD &&
        o->assignment != VMF_ASSIGN_STOCHASTIC)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: unknown assignment mode %d",
                          (int)o->assignment);
    if (o->init != VMF_INIT_KMEANSPP && o->init != VMF_INIT_RANDOM && o->init != VMF_INIT_GIVEN)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: unknown init method %d", (int)o->init);
    const vmf_kappa_opts *ko = &o->kappa;
    if ((unsigned)ko->estimator > (unsigned)VMF_KAPPA_EXACT)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: unknown kappa estimator %d",
                          (int)ko->estimator);
    if (!(ko->prior_count >= 0.0 && isfinite(ko->prior_count)))
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: kappa.prior_count = %g must be >= 0",
                          ko->prior_count);
    if (!(ko->prior_rbar >= 0.0 && ko->prior_rbar < 1.0))
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: kappa.prior_rbar = %g outside [0, 1)",
                          ko->prior_rbar);
    if (!(ko->kappa_min >= 0.0 && ko->kappa_max >= ko->kappa_min && isfinite(ko->kappa_max)))
        return vmf__error(VMF_EINVAL,
                          "vmf_mixture_fit: kappa clamps [%g, %g] must satisfy 0 <= min <= max "
                          "< inf",
                          ko->kappa_min, ko->kappa_max);
    if (o->init == VMF_INIT_GIVEN) {
        if (!o->init_means)
            return vmf__error(VMF_EINVAL, "vmf_mixture_fit: init = given but init_means is NULL");
        int rc = vmf_rows_check(o->init_means, k, d);
        if (rc != VMF_OK)
            return prefixed(rc, "vmf_mixture_fit: init_means");
    }
    int rc = vmf_rows_check(x, n, d);
    if (rc != VMF_OK)
        return prefixed(rc, "vmf_mixture_fit: x");
    return VMF_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * The re-seeding rule of the file comment, in O(n) for a few starved
 * components. `scratch` holds k doubles and `used` k row indices. Returns
 * the number of components re-seeded.
 */
static size_t reseed(vmf_mixture *m, const float *x, size_t n, const double *s0,
                     const double *row_ll, double min_mass, double *scratch, size_t *used)
{
    size_t k = m->k, d = m->d, n_low = 0, n_ok = 0;
    for (size_t c = 0; c < k; c++) {
        if (s0[c] < min_mass)
            n_low++;
        else
            scratch[n_ok++] = m->kappas[c];
    }
    if (n_low == 0)
        return 0;
    double med = 0.0;
    if (n_ok > 0) {
        qsort(scratch, n_ok, sizeof *scratch, cmp_double);
        med = n_ok % 2 ? scratch[n_ok / 2] : 0.5 * (scratch[n_ok / 2 - 1] + scratch[n_ok / 2]);
    }
    /*
     * The n_low worst rows in one pass: a list sorted by (log-likelihood,
     * row index), kept to n_low entries; scanning rows in order and
     * inserting after equal values puts the lower index first on ties.
     * `scratch` now holds the values (the median is taken), `used` the rows.
     */
    size_t n_used = 0;
    for (size_t i = 0; i < n; i++) {
        double v = row_ll[i];
        if (n_used == n_low && !(v < scratch[n_used - 1]))
            continue;
        size_t pos = n_used < n_low ? n_used : n_low - 1;
        while (pos > 0 && v < scratch[pos - 1]) {
            scratch[pos] = scratch[pos - 1];
            used[pos] = used[pos - 1];
            pos--;
        }
        scratch[pos] = v;
        used[pos] = i;
        if (n_used < n_low)
            n_used++;
    }
    /* n >= K rows (checked), so every starved component gets its own row. */
    size_t q = 0;
    for (size_t c = 0; c < k && q < n_used; c++) {
        if (!(s0[c] < min_mass))
            continue;
        memcpy(m->means + c * d, x + used[q] * d, d * sizeof *m->means);
        q++;
        if (n_ok > 0)
            m->kappas[c] = med;
        m->weights[c] = 1.0 / (double)n;
    }
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++)
        wsum += m->weights[c];
    for (size_t c = 0; c < k; c++)
        m->weights[c] /= wsum;
    vmf__mixture_refresh(m);
    return q;
}

/* Buffers of one restart, sized once per fit. */
typedef struct em_work {
    double *s0;           /* [k] */
    double *s1;           /* [k][d] */
    double *row_ll;       /* [n] */
    double *kscr;         /* [k] */
    size_t *used;         /* [k] */
    vmf__bounds *bounds;  /* per-row state of the bounded E-step, or NULL (dense path) */
    vmf__bounds *sbounds; /* the same for the search sample, or NULL */
} em_work;

/* The result of one restart. */
typedef struct em_run {
    vmf_mixture *m;
    double *trace;
    size_t trace_cap;
    size_t n_iter;
    int converged;
    double loglik;
    size_t n_reseeded;
    size_t n_moves;
    size_t n_search_iter;
} em_run;

static int trace_push(em_run *r, double v)
{
    if (r->n_iter == r->trace_cap) {
        size_t cap = r->trace_cap ? 2 * r->trace_cap : 64;
        double *t = vmf__realloc(r->trace, cap * sizeof *t);
        if (!t)
            return vmf__error(VMF_ENOMEM, "vmf_mixture_fit: out of memory for the trace");
        r->trace = t;
        r->trace_cap = cap;
    }
    r->trace[r->n_iter++] = v;
    return VMF_OK;
}

/* The stopping rule of the file comment. */
static int has_converged(const vmf_em_opts *o, double prev, double cur)
{
    if (!(o->tol > 0.0))
        return 0;
    double scale = o->tol_absolute ? 1.0 : fmax(1.0, fabs(cur));
    return fabs(cur - prev) < o->tol * scale;
}

/* One E-step pass over x with the statistics of m into w (s1 may be NULL). */
static int pass(const vmf_em_opts *o, const vmf_mixture *m, const float *x, size_t n, size_t d,
                vmf_rng *rng, em_work *w, int full, double *s1, double *ll)
{
    vmf__bounds *b = full ? w->bounds : w->sbounds;
    if (b)
        return vmf__mixture_estep_bounded(m, x, n, d, o->block_rows, b, w->s0, s1, ll, w->row_ll);
    return vmf__mixture_estep_stats(m, x, n, d, o->assignment, rng, o->block_rows, w->s0, s1, ll,
                                    w->row_ll);
}

/*
 * EM from the current parameters of m on x [n][d], at most max_iter
 * iterations (the scheme of the file comment). `full`: x is the whole data
 * set (the trace, the progress callback and the bounded E-step apply);
 * otherwise it is the search subsample and the statistics of the last pass
 * are always complete (the merge costs need s1). On return m holds theta_t,
 * w->s0 / w->s1 its statistics, *loglik its mean log-likelihood.
 */
static int em_loop(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                   vmf_rng *rng, em_work *w, em_run *r, size_t max_iter, int full, size_t *iters,
                   double *loglik, int *converged)
{
    double ll;
    int tied = o->tied_kappa ? 1 : 0;
    *iters = 0;
    *converged = 0;
    int rc = pass(o, m, x, n, d, rng, w, full, (max_iter > 0 || !full) ? w->s1 : NULL, &ll);
    if (rc != VMF_OK)
        return rc;
    double prev = ll / (double)n;
    *loglik = prev;
    for (size_t it = 1; it <= max_iter; it++) {
        rc = vmf__mixture_mstep(m, w->s0, w->s1, &o->kappa, tied);
        if (rc != VMF_OK)
            return rc;
        r->n_reseeded += reseed(m, x, n, w->s0, w->row_ll, o->min_mass, w->kscr, w->used);
        /* The statistics of the last pass would feed no M-step: skip Rᵀ·X there. */
        rc = pass(o, m, x, n, d, rng, w, full, (it < max_iter || !full) ? w->s1 : NULL, &ll);
        if (rc != VMF_OK)
            return rc;
        double cur = ll / (double)n;
        (*iters)++;
        if (full) {
            rc = trace_push(r, cur);
            if (rc != VMF_OK)
                return rc;
            if (o->progress)
                o->progress(o->progress_ctx, r->n_iter, cur, cur - prev);
        }
        *loglik = cur;
        if (has_converged(o, prev, cur)) {
            *converged = 1;
            break;
        }
        prev = cur;
    }
    return VMF_OK;
}

/*
 * The search runs for soft EM with 2 <= K <= SEARCH_MAX_K and a tolerance
 * (tol = 0 asks for exactly max_iter plain EM iterations). Above
 * SEARCH_MAX_K its K x K merge costs and its sample of a few rows per
 * component would cost more than they find.
 */
#define SEARCH_MAX_K 4096

static int use_search(const vmf_em_opts *o, size_t k)
{
    return o->search && k >= 2 && k <= SEARCH_MAX_K && o->tol > 0.0 &&
           o->assignment == VMF_ASSIGN_SOFT && o->max_iter > 0;
}

/*
 * Rows of the search sample: search_rows, or 512 K (at least 4096) by
 * default, at most n, and at most 2^24 / K so that its responsibilities
 * [ns][K] stay within 64 MiB.
 */
static size_t search_size(const vmf_em_opts *o, size_t n, size_t k, size_t d)
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
static void sample_rows(const float *x, size_t n, size_t d, size_t ns, vmf_rng *rng, float *out)
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
static int search(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                  vmf_rng *rng, em_work *w, em_run *r)
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
    rc = em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 0, &iters, &ll, &conv);
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
                rc = pass(o, m, x, n, d, rng, w, 0, w->s1, &sum);
                if (rc != VMF_OK)
                    break;
            }
            rc = apply_moves(o, m, w->s0, w->s1, &b, first, len);
            if (rc != VMF_OK)
                break;
            double nll;
            rc = em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 0, &iters, &nll, &conv);
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

/* Initial means on x [n][d], then one hard pass + M-step + re-seeding: theta_0. */
static int init_params(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                       vmf_rng *rng, em_work *w, em_run *r)
{
    size_t k = m->k;
    int rc = VMF_OK;
    if (o->init == VMF_INIT_KMEANSPP)
        rc = vmf__kmeanspp(x, n, d, k, rng, m->means);
    else if (o->init == VMF_INIT_RANDOM)
        rc = vmf__random_rows(x, n, d, k, rng, m->means);
    else
        memcpy(m->means, o->init_means, k * d * sizeof *m->means);
    if (rc != VMF_OK)
        return rc;
    /* Equal weights and kappas: the hard pass assigns each row to its nearest mean. */
    for (size_t c = 0; c < k; c++)
        m->kappas[c] = 1.0;
    vmf__mixture_refresh(m);
    double ll;
    rc = vmf__mixture_estep_stats(m, x, n, d, VMF_ASSIGN_HARD, NULL, o->block_rows, w->s0, w->s1,
                                  &ll, w->row_ll);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__mixture_mstep(m, w->s0, w->s1, &o->kappa, o->tied_kappa ? 1 : 0);
    if (rc != VMF_OK)
        return rc;
    r->n_reseeded += reseed(m, x, n, w->s0, w->row_ll, o->min_mass, w->kscr, w->used);
    return VMF_OK;
}

static int run_once(const vmf_em_opts *o, const float *x, size_t n, size_t d, vmf_rng *rng,
                    em_work *w, em_run *r)
{
    size_t k = o->n_components;
    memset(r, 0, sizeof *r);
    if (w->bounds)
        vmf__bounds_reset(w->bounds);
    int rc = vmf__mixture_alloc(k, d, &r->m);
    if (rc != VMF_OK)
        return rc;
    vmf_mixture *m = r->m;
    size_t iters;
    int searching = use_search(o, k);
    if (!searching) {
        rc = init_params(o, m, x, n, d, rng, w, r);
        if (rc == VMF_OK)
            rc = em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 1, &iters, &r->loglik,
                         &r->converged);
        return rc;
    }
    /* The search on a subsample (or on all rows when they are few), then EM on all rows. */
    const float *xs = x;
    size_t ns = search_size(o, n, k, d);
    float *sub = NULL;
    if (ns < n) {
        sub = vmf__malloc_array(ns * d, sizeof *sub);
        if (!sub)
            return vmf__error(VMF_ENOMEM, "vmf_mixture_fit: out of memory for the search sample");
        sample_rows(x, n, d, ns, rng, sub);
        xs = sub;
    }
    /* The search's EM passes skip rows too (bounds.c: valid across any move). */
    if (w->bounds && (rc = vmf__bounds_new(ns, k, d, &w->sbounds)) != VMF_OK) {
        vmf__free(sub);
        return rc;
    }
    rc = init_params(o, m, xs, ns, d, rng, w, r);
    if (rc == VMF_OK)
        rc = search(o, m, xs, ns, d, rng, w, r);
    if (rc == VMF_OK)
        rc = em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 1, &iters, &r->loglik, &r->converged);
    vmf__free(sub);
    vmf__bounds_free(w->sbounds);
    w->sbounds = NULL;
    return rc;
}

int vmf_mixture_fit(const vmf_em_opts *o, const float *x, size_t n, size_t d, vmf_mixture **out,
                    vmf_em_report *report)
{
    double t0 = vmf__now();
    if (report)
        memset(report, 0, sizeof *report);
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: out is NULL");
    *out = NULL;
    if (!o)
        return vmf__error(VMF_EINVAL, "vmf_mixture_fit: options are NULL");
    int rc = check_opts(o, x, n, d);
    if (rc != VMF_OK)
        return rc;
    size_t k = o->n_components, kd;
    if (vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "vmf_mixture_fit: %zu x %zu parameters overflow", k, d);
    em_work w = {0};
    em_run best = {0}, cur = {0};
    size_t best_init = 0;
    w.s0 = vmf__malloc_array(k, sizeof *w.s0);
    w.s1 = vmf__malloc_array(kd, sizeof *w.s1);
    w.row_ll = vmf__malloc_array(n, sizeof *w.row_ll);
    w.kscr = vmf__malloc_array(k, sizeof *w.kscr);
    w.used = vmf__malloc_array(k, sizeof *w.used);
    if (!o->exact && o->assignment == VMF_ASSIGN_SOFT && k >= 2) {
        rc = vmf__bounds_new(n, k, d, &w.bounds);
        if (rc != VMF_OK)
            goto done;
    }
    if (!w.s0 || !w.s1 || !w.row_ll || !w.kscr || !w.used) {
        rc = vmf__error(VMF_ENOMEM, "vmf_mixture_fit: out of memory for %zu rows x %zu", n, k);
        goto done;
    }
    vmf_rng master;
    vmf_rng_seed(&master, o->seed);
    for (size_t r = 0; r < o->n_init; r++) {
        vmf_rng rng;
        vmf_rng_split(&master, &rng);
        rc = run_once(o, x, n, d, &rng, &w, &cur);
        if (rc != VMF_OK)
            goto done;
        /* Strictly better replaces: ties keep the earlier restart. */
        if (r == 0 || cur.loglik > best.loglik) {
            vmf_mixture_free(best.m);
            vmf__free(best.trace);
            best = cur;
            best_init = r;
        } else {
            vmf_mixture_free(cur.m);
            vmf__free(cur.trace);
        }
        memset(&cur, 0, sizeof cur);
    }
    *out = best.m;
    if (report) {
        report->n_iter = best.n_iter;
        report->converged = best.converged;
        report->loglik = best.loglik;
        report->trace = best.trace;
        report->n_reseeded = best.n_reseeded;
        report->n_moves = best.n_moves;
        report->n_search_iter = best.n_search_iter;
        report->best_init = best_init;
        report->skipped_rows = vmf__bounds_skipped(w.bounds);
        report->seconds = vmf__now() - t0;
    } else {
        vmf__free(best.trace);
    }
    memset(&best, 0, sizeof best);
done:
    vmf_mixture_free(cur.m);
    vmf__free(cur.trace);
    vmf_mixture_free(best.m);
    vmf__free(best.trace);
    vmf__free(w.s0);
    vmf__free(w.s1);
    vmf__free(w.row_ll);
    vmf__free(w.kscr);
    vmf__free(w.used);
    vmf__bounds_free(w.bounds);
    return rc;
}
