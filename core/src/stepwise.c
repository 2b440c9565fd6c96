/*
 * stepwise.c - stepwise (online) EM for a vMF mixture (Liang & Klein 2009;
 * Cappé & Moulines 2009): options, the state object and its update. Its
 * binary and JSON forms live in stepwise_io.c.
 *
 * Design note. The statistics are per sample (s0 sums to 1 over the
 * components, up to the initial state), so that blending a minibatch in is a
 * convex combination S <- (1 - eta) S + eta Ŝ. For the M-step they are
 * scaled back to rows by the effective sample size
 *     n_eff = min(rows_seen, n_b / eta),
 * where n_b is the size of the minibatch just applied: the stepwise average
 * gives that minibatch weight eta, so it stands for about n_b / eta rows
 * (1/eta minibatches), and never for more rows than were seen. The kappa
 * shrinkage of vmfmm/kappa.h therefore weighs its pseudo-observations against
 * the rows the statistics really summarize.
 *
 * Every update is computed on a private candidate (a copy of the statistics,
 * the mixture and the generator) and committed by pointer swaps only once
 * nothing can fail any more, so a failed update leaves the state
 * bit-identical. All arithmetic runs in a fixed order, so the same batches in
 * the same order give the same bits, also across save / load and JSON.
 */
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <math.h>
#include <string.h>

/* ---- options ---- */

void vmf_stepwise_opts_init(vmf_stepwise_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_components = 5;
    o->alpha = 0.7;
    o->t0 = 2.0;
    o->eta_floor = 0.0;
    o->minibatch = 256;
    o->tied_kappa = 0;
    vmf_kappa_opts_init(&o->kappa);
    o->seed = 42;
}

int vmf__stepwise_check_opts(const vmf_stepwise_opts *o, const char *fn)
{
    if (o->n_components < 1 || o->n_components > VMF__STEPWISE_MAX_COMPONENTS)
        return vmf__error(VMF_EINVAL, "%s: n_components = %zu outside [1, %zu]", fn,
                          o->n_components, VMF__STEPWISE_MAX_COMPONENTS);
    if (!(o->alpha > 0.5 && o->alpha <= 1.0))
        return vmf__error(VMF_EINVAL, "%s: alpha = %g outside (0.5, 1]", fn, o->alpha);
    if (!(isfinite(o->t0) && o->t0 >= 0.0))
        return vmf__error(VMF_EINVAL, "%s: t0 = %g must be finite and >= 0", fn, o->t0);
    if (!(o->eta_floor >= 0.0 && o->eta_floor < 1.0))
        return vmf__error(VMF_EINVAL, "%s: eta_floor = %g outside [0, 1)", fn, o->eta_floor);
    if (o->minibatch < 1 || o->minibatch > ((size_t)1 << 40))
        return vmf__error(VMF_EINVAL, "%s: minibatch = %zu must be >= 1", fn, o->minibatch);
    return vmf__kappa_opts_check(&o->kappa, fn);
}

/* ---- object ---- */

int vmf__stepwise_new_clock(const vmf_stepwise_opts *o, size_t d, int clock, vmf_stepwise **out)
{
    *out = NULL;
    int rc = vmf__stepwise_check_opts(o, "vmf_stepwise_new");
    if (rc != VMF_OK)
        return rc;
    if (d < 2 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EINVAL, "vmf_stepwise_new: dimension %zu outside [2, %zu]", d,
                          VMF__MAX_DIM);
    vmf_stepwise *s = vmf__calloc(1, sizeof *s);
    if (!s)
        return vmf__error(VMF_ENOMEM, "vmf_stepwise_new: out of memory");
    s->o = *o;
    s->d = d;
    s->clock = clock;
    vmf_rng_seed(&s->rng, o->seed);
    *out = s;
    return VMF_OK;
}

int vmf_stepwise_new(const vmf_stepwise_opts *o, size_t d, vmf_stepwise **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_stepwise_new: out is NULL");
    VMF__OPTS_OR_DEFAULTS(vmf_stepwise_opts, o);
    return vmf__stepwise_new_clock(o, d, VMF__CLOCK_STEPS, out);
}

void vmf_stepwise_free(vmf_stepwise *s)
{
    if (!s)
        return;
    vmf__free(s->s0);
    vmf__free(s->s1);
    vmf_mixture_free(s->m);
    vmf__free(s);
}

int vmf__stepwise_stats_alloc(size_t k, size_t d, double **s0, double **s1)
{
    size_t kd;
    *s0 = NULL;
    *s1 = NULL;
    if (vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "stepwise: %zu x %zu statistics overflow", k, d);
    *s0 = vmf__malloc_array(k, sizeof **s0);
    *s1 = vmf__malloc_array(kd, sizeof **s1);
    if (!*s0 || !*s1) {
        vmf__free(*s0);
        vmf__free(*s1);
        *s0 = NULL;
        *s1 = NULL;
        return vmf__error(VMF_ENOMEM, "stepwise: out of memory for %zu x %zu statistics", k, d);
    }
    return VMF_OK;
}

int vmf__stepwise_copy(const vmf_stepwise *s, vmf_stepwise **out)
{
    *out = NULL;
    vmf_stepwise *c = vmf__calloc(1, sizeof *c);
    if (!c)
        return vmf__error(VMF_ENOMEM, "stepwise copy: out of memory");
    *c = *s;
    c->s0 = NULL;
    c->s1 = NULL;
    c->m = NULL;
    if (s->m) {
        size_t k = s->o.n_components;
        int rc = vmf__stepwise_stats_alloc(k, s->d, &c->s0, &c->s1);
        if (rc == VMF_OK)
            rc = vmf_mixture_copy(s->m, &c->m);
        if (rc != VMF_OK) {
            vmf_stepwise_free(c);
            return rc;
        }
        memcpy(c->s0, s->s0, k * sizeof *c->s0);
        memcpy(c->s1, s->s1, k * s->d * sizeof *c->s1);
    }
    *out = c;
    return VMF_OK;
}

void vmf__stepwise_expected_stats(const vmf_mixture *m, double *s0, double *s1)
{
    size_t k = m->k, d = m->d;
    for (size_t c = 0; c < k; c++) {
        double a = vmf_bessel_ratio(d, m->kappas[c]);
        s0[c] = m->weights[c];
        for (size_t j = 0; j < d; j++)
            s1[c * d + j] = m->weights[c] * a * (double)m->means[c * d + j];
    }
}

int vmf__stepwise_reset(vmf_stepwise *s, vmf_mixture *m, const double *s0, const double *s1)
{
    double *n0, *n1;
    int rc = vmf__stepwise_stats_alloc(m->k, m->d, &n0, &n1);
    if (rc != VMF_OK)
        return rc;
    memcpy(n0, s0, m->k * sizeof *n0);
    memcpy(n1, s1, m->k * m->d * sizeof *n1);
    vmf__free(s->s0);
    vmf__free(s->s1);
    vmf_mixture_free(s->m);
    s->s0 = n0;
    s->s1 = n1;
    s->m = m;
    s->o.n_components = m->k;
    return VMF_OK;
}

int vmf_stepwise_from_mixture(const vmf_stepwise_opts *o, const vmf_mixture *m, double prior_rows,
                              vmf_stepwise **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_stepwise_from_mixture: out is NULL");
    *out = NULL;
    if (!m)
        return vmf__error(VMF_EINVAL, "vmf_stepwise_from_mixture: mixture is NULL");
    if (!(isfinite(prior_rows) && prior_rows >= 0.0 && prior_rows <= 9007199254740992.0))
        return vmf__error(
            VMF_EINVAL, "vmf_stepwise_from_mixture: prior_rows = %g outside [0, 2^53]", prior_rows);
    VMF__OPTS_OR_DEFAULTS(vmf_stepwise_opts, o);
    vmf_stepwise_opts oo = *o;
    oo.n_components = m->k; /* the mixture decides K */
    vmf_stepwise *s;
    int rc = vmf__stepwise_new_clock(&oo, m->d, VMF__CLOCK_STEPS, &s);
    if (rc != VMF_OK)
        return rc;
    vmf_mixture *mc = NULL;
    double *s0 = NULL, *s1 = NULL;
    rc = vmf_mixture_copy(m, &mc);
    if (rc == VMF_OK)
        rc = vmf__stepwise_stats_alloc(m->k, m->d, &s0, &s1);
    if (rc != VMF_OK) {
        vmf_mixture_free(mc);
        vmf_stepwise_free(s);
        return rc;
    }
    vmf__stepwise_expected_stats(m, s0, s1);
    s->s0 = s0;
    s->s1 = s1;
    s->m = mc;
    /* As if prior_rows rows had arrived in full minibatches. */
    s->rows = (uint64_t)llround(prior_rows);
    s->steps = (uint64_t)ceil(prior_rows / (double)oo.minibatch);
    *out = s;
    return VMF_OK;
}

/* ---- update ---- */

static double step_size(const vmf_stepwise *s, size_t nb)
{
    const vmf_stepwise_opts *o = &s->o;
    if (s->clock == VMF__CLOCK_ROWS) {
        double tau = (double)s->rows / (double)o->minibatch;
        double e = pow(tau + o->t0, -o->alpha);
        if (!(e < 1.0)) /* tau + t0 == 0 gives +inf */
            e = 1.0;
        if (e < o->eta_floor)
            e = o->eta_floor;
        e *= (double)nb / (double)o->minibatch;
        if (e > 1.0)
            e = 1.0;
        double avg = (double)nb / ((double)s->rows + (double)nb);
        return avg > e ? avg : e;
    }
    double e = pow((double)s->steps + o->t0, -o->alpha);
    if (!(e < 1.0))
        e = 1.0;
    return e > o->eta_floor ? e : o->eta_floor;
}

/* Scratch of one update. */
typedef struct step_work {
    double *b0, *b1; /* minibatch statistics [k], [k][d] */
    double *e0, *e1; /* effective (row-scaled) statistics */
} step_work;

static void work_free(step_work *w)
{
    vmf__free(w->b0);
    vmf__free(w->b1);
    vmf__free(w->e0);
    vmf__free(w->e1);
    memset(w, 0, sizeof *w);
}

static int work_alloc(size_t k, size_t d, step_work *w)
{
    memset(w, 0, sizeof *w);
    int rc = vmf__stepwise_stats_alloc(k, d, &w->b0, &w->b1);
    if (rc == VMF_OK)
        rc = vmf__stepwise_stats_alloc(k, d, &w->e0, &w->e1);
    if (rc != VMF_OK)
        work_free(w);
    return rc;
}

/*
 * The first update of an empty state: k-means++ seeds on the batch, one hard
 * pass (nearest mean), an M-step, and the per-sample hard statistics as the
 * initial S. The counters are not advanced: the batch is then applied in
 * minibatches like any other.
 */
static int initialize(vmf_stepwise *c, const float *x, size_t n, step_work *w)
{
    size_t k = c->o.n_components, d = c->d;
    if (n < k)
        return vmf__error(VMF_EINVAL,
                          "vmf_stepwise_update: the first batch initializes %zu components and "
                          "needs at least %zu rows, got %zu",
                          k, k, n);
    int rc = vmf__mixture_alloc(k, d, &c->m);
    if (rc == VMF_OK)
        rc = vmf__stepwise_stats_alloc(k, d, &c->s0, &c->s1);
    if (rc == VMF_OK)
        rc = vmf__kmeanspp(x, n, d, k, &c->rng, c->m->means);
    if (rc != VMF_OK)
        return rc;
    for (size_t j = 0; j < k; j++)
        c->m->kappas[j] = 1.0;
    vmf__mixture_refresh(c->m);
    rc =
        vmf__mixture_estep_stats(c->m, x, n, d, VMF_ASSIGN_HARD, NULL, 0, w->b0, w->b1, NULL, NULL);
    if (rc == VMF_OK)
        rc = vmf__mixture_mstep(c->m, w->b0, w->b1, &c->o.kappa, c->o.tied_kappa ? 1 : 0);
    if (rc != VMF_OK)
        return rc;
    double inv = 1.0 / (double)n;
    for (size_t j = 0; j < k; j++)
        c->s0[j] = w->b0[j] * inv;
    for (size_t j = 0; j < k * d; j++)
        c->s1[j] = w->b1[j] * inv;
    return VMF_OK;
}

/* One minibatch xb [nb][d] on candidate c. */
static int apply_minibatch(vmf_stepwise *c, const float *xb, size_t nb, step_work *w)
{
    size_t k = c->o.n_components, d = c->d;
    int rc = vmf__mixture_estep_stats(c->m, xb, nb, d, VMF_ASSIGN_SOFT, NULL, 0, w->b0, w->b1, NULL,
                                      NULL);
    if (rc != VMF_OK)
        return rc;
    double eta = step_size(c, nb);
    double keep = 1.0 - eta, add = eta / (double)nb;
    for (size_t j = 0; j < k; j++)
        c->s0[j] = keep * c->s0[j] + add * w->b0[j];
    for (size_t j = 0; j < k * d; j++)
        c->s1[j] = keep * c->s1[j] + add * w->b1[j];
    c->steps++;
    c->rows += nb;
    double neff = (double)nb / eta;
    if (neff > (double)c->rows)
        neff = (double)c->rows;
    for (size_t j = 0; j < k; j++)
        w->e0[j] = c->s0[j] * neff;
    for (size_t j = 0; j < k * d; j++)
        w->e1[j] = c->s1[j] * neff;
    return vmf__mixture_mstep(c->m, w->e0, w->e1, &c->o.kappa, c->o.tied_kappa ? 1 : 0);
}

static int check_batch(const vmf_stepwise *s, const float *x, size_t n, size_t d, const char *fn)
{
    if (!s)
        return vmf__error(VMF_EINVAL, "%s: state is NULL", fn);
    if (d != s->d)
        return vmf__error(VMF_EINVAL, "%s: rows have dimension %zu, the model has %zu", fn, d,
                          s->d);
    if (n == 0)
        return vmf__error(VMF_EINVAL, "%s: empty batch (n = 0)", fn);
    if (!x)
        return vmf__error(VMF_EINVAL, "%s: x is NULL", fn);
    return vmf_rows_check(x, n, d);
}

/* Swaps the candidate's contents into s; the candidate then holds the old state. */
static void commit(vmf_stepwise *s, vmf_stepwise *cand)
{
    vmf_stepwise tmp = *s;
    *s = *cand;
    *cand = tmp;
}

int vmf_stepwise_update(vmf_stepwise *s, const float *x, size_t n, size_t d)
{
    int rc = check_batch(s, x, n, d, "vmf_stepwise_update");
    if (rc != VMF_OK)
        return rc;
    vmf_stepwise *c = NULL;
    step_work w = {0};
    rc = vmf__stepwise_copy(s, &c);
    if (rc == VMF_OK)
        rc = work_alloc(s->o.n_components, d, &w);
    if (rc == VMF_OK && !c->m)
        rc = initialize(c, x, n, &w);
    size_t mb = s->o.minibatch;
    for (size_t i0 = 0; i0 < n && rc == VMF_OK; i0 += mb) {
        size_t nb = n - i0 < mb ? n - i0 : mb;
        rc = apply_minibatch(c, x + i0 * d, nb, &w);
    }
    if (rc == VMF_OK)
        commit(s, c);
    work_free(&w);
    vmf_stepwise_free(c);
    return rc;
}

/* ---- accessors ---- */

const vmf_mixture *vmf_stepwise_mixture(const vmf_stepwise *s)
{
    return s ? s->m : NULL;
}

uint64_t vmf_stepwise_steps(const vmf_stepwise *s)
{
    return s ? s->steps : 0;
}

uint64_t vmf_stepwise_rows_seen(const vmf_stepwise *s)
{
    return s ? s->rows : 0;
}

const double *vmf_stepwise_s0(const vmf_stepwise *s)
{
    return s ? s->s0 : NULL;
}

const double *vmf_stepwise_s1(const vmf_stepwise *s)
{
    return s ? s->s1 : NULL;
}
