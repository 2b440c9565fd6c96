/*
 * em.c - the driver of batch EM for a mixture of von Mises-Fisher
 * distributions (Banerjee, Dhillon, Ghosh & Sra 2005), soft, hard or
 * stochastic: options, restarts, initialisation, the EM loop and
 * re-seeding. The split-and-merge search it can run first is em_search.c.
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
 * With the search (vmf__em_use_search) this loop runs on the search
 * subsample from theta_0, then in rounds of split-and-merge moves
 * (em_search.c, which also says why the split test works), and last on all
 * rows from the search's result, the only phase that fills the trace, calls
 * the progress callback and uses the bounded E-step (bounds.c).
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
#include "em_internal.h"
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
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
            return vmf__error_wrap(rc, "vmf_mixture_fit", "init_means");
    }
    int rc = vmf_rows_check(x, n, d);
    if (rc != VMF_OK)
        return vmf__error_wrap(rc, "vmf_mixture_fit", "x");
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

static int trace_push(vmf__em_run *r, double v)
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
int vmf__em_pass(const vmf_em_opts *o, const vmf_mixture *m, const float *x, size_t n, size_t d,
                 vmf_rng *rng, vmf__em_work *w, int full, double *s1, double *ll)
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
int vmf__em_loop(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                 vmf_rng *rng, vmf__em_work *w, vmf__em_run *r, size_t max_iter, int full,
                 size_t *iters, double *loglik, int *converged)
{
    double ll;
    int tied = o->tied_kappa ? 1 : 0;
    *iters = 0;
    *converged = 0;
    int rc = vmf__em_pass(o, m, x, n, d, rng, w, full, (max_iter > 0 || !full) ? w->s1 : NULL, &ll);
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
        rc =
            vmf__em_pass(o, m, x, n, d, rng, w, full, (it < max_iter || !full) ? w->s1 : NULL, &ll);
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

/* Initial means on x [n][d], then one hard pass + M-step + re-seeding: theta_0. */
static int init_params(const vmf_em_opts *o, vmf_mixture *m, const float *x, size_t n, size_t d,
                       vmf_rng *rng, vmf__em_work *w, vmf__em_run *r)
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
                    vmf__em_work *w, vmf__em_run *r)
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
    int searching = vmf__em_use_search(o, k);
    if (!searching) {
        rc = init_params(o, m, x, n, d, rng, w, r);
        if (rc == VMF_OK)
            rc = vmf__em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 1, &iters, &r->loglik,
                              &r->converged);
        return rc;
    }
    /* The search on a subsample (or on all rows when they are few), then EM on all rows. */
    const float *xs = x;
    size_t ns = vmf__em_search_size(o, n, k, d);
    float *sub = NULL;
    if (ns < n) {
        sub = vmf__malloc_array(ns * d, sizeof *sub);
        if (!sub)
            return vmf__error(VMF_ENOMEM, "vmf_mixture_fit: out of memory for the search sample");
        vmf__em_sample_rows(x, n, d, ns, rng, sub);
        xs = sub;
    }
    /* The search's EM passes skip rows too (bounds.c: valid across any move). */
    if (w->bounds && (rc = vmf__bounds_new(ns, k, d, &w->sbounds)) != VMF_OK) {
        vmf__free(sub);
        return rc;
    }
    rc = init_params(o, m, xs, ns, d, rng, w, r);
    if (rc == VMF_OK)
        rc = vmf__em_search(o, m, xs, ns, d, rng, w, r);
    if (rc == VMF_OK)
        rc = vmf__em_loop(o, m, x, n, d, rng, w, r, o->max_iter, 1, &iters, &r->loglik,
                          &r->converged);
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
    VMF__OPTS_OR_DEFAULTS(vmf_em_opts, o);
    int rc = check_opts(o, x, n, d);
    if (rc != VMF_OK)
        return rc;
    size_t k = o->n_components, kd;
    if (vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "vmf_mixture_fit: %zu x %zu parameters overflow", k, d);
    vmf__em_work w = {0};
    vmf__em_run best = {0}, cur = {0};
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
