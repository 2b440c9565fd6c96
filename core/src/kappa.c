/*
 * kappa.c - estimating the vMF concentration from the mean resultant length:
 * kappa solves A_d(kappa) = rbar; and checking the options that choose how.
 *
 * Near rbar -> 1 (kappa >> d) everything is done on the complement
 * 1 - rbar, which the callers can form exactly ((n - R) / n for the shrunk
 * estimate), and 1 - A_d(kappa) from vmf__bessel_ratio_pair, which is
 * accurate there; forming A - rbar directly would leave only
 * 1e-16 / (1 - rbar) relative digits in kappa.
 *
 * The exact inversion brackets the root with the bounds of Amos (1974) /
 * Ruiz-Antolin & Segura (2016),
 *     x / (nu + 1 + sqrt(x^2 + (nu+1)^2)) <= A_d(x) <= x / (nu + 1/2 + sqrt(x^2 + (nu+3/2)^2)),
 * nu = d/2 - 1 (widened, and checked by evaluation, so no trust is placed in
 * them), then runs the Illinois variant of regula falsi on
 *     h(u) = log A_d(e^u) - log rbar          (rbar <= 1/2)
 *     h(u) = log(1 - rbar) - log(1 - A_d(e^u)) (rbar > 1/2),
 * both increasing and nearly linear in u = log kappa at either end
 * (A ~ kappa / d for small kappa, 1 - A ~ (d - 1) / (2 kappa) for large),
 * so it converges in a handful of evaluations without needing the
 * derivative A' = 1 - A^2 - (d-1) A / kappa, which cancels catastrophically
 * for kappa >> d. It stops when the bracket is below 1e-15 relative (or a
 * few ulps of log kappa, which are coarser than that once kappa > e^8);
 * typically after 6 to 10 evaluations of A_d, i.e. a few microseconds.
 */
#include "internal.h"
#include "special_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define EXACT_MAX_ITER 200
#define EXACT_REL_TOL  1e-15
#define EXACT_H_NOISE  (8.0 * DBL_EPSILON)

static double banerjee(double dd, double rbar, double crbar)
{
    /* 1 - rbar^2 = (1 - rbar)(1 + rbar), exact complement from the caller. */
    return rbar * (dd - rbar * rbar) / (crbar * (1.0 + rbar));
}

/* f = A(kappa) - rbar, with the complement form where A is close to 1. */
static double residual(double a, double ca, double rbar, double crbar)
{
    return rbar > 0.5 ? crbar - ca : a - rbar;
}

/* A'(kappa) = 1 - A^2 - (d - 1) A / kappa, with 1 - A^2 = (1 - A)(1 + A). */
static double ratio_deriv(double dd, double kappa, double a, double ca)
{
    return ca * (1.0 + a) - (dd - 1.0) * a / kappa;
}

/* Sra (2012): one Newton step from Banerjee's estimate. */
static double sra(size_t d, double rbar, double crbar)
{
    double dd = (double)d;
    double k0 = banerjee(dd, rbar, crbar);
    double ca, a = vmf__bessel_ratio_pair(d, k0, &ca);
    double fp = ratio_deriv(dd, k0, a, ca);
    double k1 = k0 - residual(a, ca, rbar, crbar) / fp;
    /* A degenerate derivative (only for kappa >> 1e15) leaves Banerjee's value. */
    return (isfinite(k1) && k1 > 0.0) ? k1 : k0;
}

/* Song et al. (2012): two Halley steps from Banerjee's estimate. */
static double song(size_t d, double rbar, double crbar)
{
    double dd = (double)d;
    double k = banerjee(dd, rbar, crbar);
    for (int it = 0; it < 2; it++) {
        double ca, a = vmf__bessel_ratio_pair(d, k, &ca);
        double f = residual(a, ca, rbar, crbar);
        double fp = ratio_deriv(dd, k, a, ca);
        /* A'' = -2 A A' - (d - 1) (A' / kappa - A / kappa^2). */
        double fpp = -2.0 * a * fp - (dd - 1.0) * (fp / k - a / (k * k));
        double kn = k - 2.0 * f * fp / (2.0 * fp * fp - f * fpp);
        if (!(isfinite(kn) && kn > 0.0))
            break;
        k = kn;
    }
    return k;
}

/* h(log kappa), see the file comment; increasing in kappa. */
static double exact_h(size_t d, double kappa, double rbar, double crbar)
{
    double ca, a = vmf__bessel_ratio_pair(d, kappa, &ca);
    /* log of the quotient, not a difference of logs: near the root its error is a few ulps of 1. */
    if (rbar > 0.5)
        return log(crbar / ca);
    return log(a / rbar);
}

/* Inverse of x / (a + sqrt(x^2 + b^2)) = r: r (a + sqrt(r^2 a^2 + (1 - r^2) b^2)) / (1 - r^2). */
static double bound_inverse(double r, double cr, double a, double b)
{
    double omr2 = cr * (1.0 + r);
    return r * (a + sqrt(r * r * a * a + omr2 * b * b)) / omr2;
}

double vmf__kappa_exact(size_t d, double rbar, double crbar, int *evaluations)
{
    int evals = 2;
    double nu = 0.5 * (double)d - 1.0;
    double lo = 0.5 * bound_inverse(rbar, crbar, nu + 0.5, nu + 1.5);
    double hi = 2.0 * bound_inverse(rbar, crbar, nu + 1.0, nu + 1.0);
    double hlo = exact_h(d, lo, rbar, crbar);
    double hhi = exact_h(d, hi, rbar, crbar);
    /* The bounds are proven; the loops only guard against a mistake in them. */
    for (int i = 0; i < 64 && hlo > 0.0; i++) {
        hi = lo, hhi = hlo;
        lo *= 0.25;
        hlo = exact_h(d, lo, rbar, crbar);
        evals++;
    }
    for (int i = 0; i < 64 && hhi < 0.0; i++) {
        lo = hi, hlo = hhi;
        hi *= 4.0;
        hhi = exact_h(d, hi, rbar, crbar);
        evals++;
    }
    double ulo = log(lo), uhi = log(hi);
    if (hlo == 0.0)
        uhi = ulo, hhi = 0.0;
    else if (hhi == 0.0)
        ulo = uhi, hlo = 0.0;
    int side = 0;
    for (int it = 0; it < EXACT_MAX_ITER; it++) {
        /* Converged at 1e-15 relative in kappa, or at the resolution of u = log kappa itself. */
        double tol = EXACT_REL_TOL + 4.0 * DBL_EPSILON * fmax(fabs(ulo), fabs(uhi));
        if (uhi - ulo <= 2.0 * tol)
            break;
        double u = ulo - hlo * ((uhi - ulo) / (hhi - hlo));
        if (!(u > ulo && u < uhi))
            u = 0.5 * (ulo + uhi); /* secant outside the bracket (or NaN): bisect */
        /*
         * Step at least tol inside the bracket (Dekker's rule): when the secant
         * lands next to an end that is already the root, the next evaluation
         * then falls on the other side of it and the bracket collapses,
         * instead of Illinois creeping towards that end.
         */
        u = fmin(fmax(u, ulo + tol), uhi - tol);
        double h = exact_h(d, exp(u), rbar, crbar);
        evals++;
        /*
         * h is known to a few ulps only (1 - A_d to ~1e-14 at worst), so a
         * residual at that level is the root as well as it can be told apart;
         * chasing the bracket further would only follow rounding noise.
         */
        if (fabs(h) <= EXACT_H_NOISE) {
            ulo = uhi = u;
            hlo = hhi = 0.0;
            break;
        }
        if (h < 0.0) {
            ulo = u, hlo = h;
            if (side == -1)
                hhi *= 0.5; /* Illinois: the other end was kept twice. */
            side = -1;
        } else {
            uhi = u, hhi = h;
            if (side == 1)
                hlo *= 0.5;
            side = 1;
        }
    }
    if (evaluations)
        *evaluations = evals;
    /* The end with the smaller residual. */
    return exp(fabs(hlo) < fabs(hhi) ? ulo : uhi);
}

/* kappa for rbar in (0, 1) with crbar = 1 - rbar supplied exactly by the caller. */
static double kappa_solve(vmf_kappa_estimator est, size_t d, double rbar, double crbar)
{
    switch (est) {
    case VMF_KAPPA_BANERJEE:
        return banerjee((double)d, rbar, crbar);
    case VMF_KAPPA_SRA:
        return sra(d, rbar, crbar);
    case VMF_KAPPA_SONG:
        return song(d, rbar, crbar);
    case VMF_KAPPA_EXACT:
        return vmf__kappa_exact(d, rbar, crbar, NULL);
    }
    return NAN;
}

static int estimator_valid(vmf_kappa_estimator est)
{
    return est == VMF_KAPPA_BANERJEE || est == VMF_KAPPA_SRA || est == VMF_KAPPA_SONG ||
           est == VMF_KAPPA_EXACT;
}

void vmf_kappa_opts_init(vmf_kappa_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->estimator = VMF_KAPPA_EXACT;
    o->prior_count = 1.0;
    o->prior_rbar = 0.0;
    o->kappa_min = 0.0;
    o->kappa_max = 1e6;
}

double vmf_kappa_from_rbar(vmf_kappa_estimator est, size_t d, double rbar)
{
    if (d < 2 || !(rbar >= 0.0) || !estimator_valid(est))
        return NAN;
    if (rbar == 0.0)
        return 0.0;
    if (rbar >= 1.0)
        return INFINITY;
    /* 1 - rbar is exact for rbar >= 1/2 (Sterbenz) and accurate below. */
    return kappa_solve(est, d, rbar, 1.0 - rbar);
}

int vmf_kappa_estimate(const vmf_kappa_opts *o, size_t d, double n, double resultant_norm,
                       double *kappa)
{
    VMF__OPTS_OR_DEFAULTS(vmf_kappa_opts, o);
    if (!kappa)
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: kappa is NULL");
    if (!estimator_valid(o->estimator))
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: unknown estimator %d",
                          (int)o->estimator);
    if (d < 2)
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: dimension %zu < 2", d);
    if (!(isfinite(n) && n >= 0.0))
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: mass n = %g is not finite and >= 0", n);
    if (!(isfinite(resultant_norm) && resultant_norm >= 0.0))
        return vmf__error(VMF_EINVAL,
                          "vmf_kappa_estimate: resultant norm %g is not finite and >= 0",
                          resultant_norm);
    /* Rows of unit norm within VMF_ROWS_NORM_TOL can push R that far above n. */
    if (resultant_norm > n * (1.0 + VMF_ROWS_NORM_TOL) + 1e-12)
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: resultant norm %.17g exceeds mass %.17g",
                          resultant_norm, n);
    if (!(isfinite(o->prior_count) && o->prior_count >= 0.0))
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: prior_count %g is not finite and >= 0",
                          o->prior_count);
    if (!(o->prior_rbar >= 0.0 && o->prior_rbar < 1.0))
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimate: prior_rbar %g outside [0, 1)",
                          o->prior_rbar);
    if (!(isfinite(o->kappa_min) && isfinite(o->kappa_max) && o->kappa_min >= 0.0 &&
          o->kappa_min <= o->kappa_max))
        return vmf__error(
            VMF_EINVAL, "vmf_kappa_estimate: need 0 <= kappa_min <= kappa_max < inf, got [%g, %g]",
            o->kappa_min, o->kappa_max);
    double mass = n + o->prior_count;
    if (!(mass > 0.0))
        return vmf__error(VMF_EINVAL,
                          "vmf_kappa_estimate: no data and no prior (n + prior_count == 0)");

    double r = resultant_norm < n ? resultant_norm : n;
    /* rbar* = (R + n0 rbar0) / (n + n0); its complement from (n - R) + n0 (1 - rbar0) exactly. */
    double rbar = (r + o->prior_count * o->prior_rbar) / mass;
    double crbar = ((n - r) + o->prior_count * (1.0 - o->prior_rbar)) / mass;
    double k;
    if (rbar <= 0.0)
        k = 0.0;
    else if (!(crbar > 0.0))
        k = INFINITY;
    else
        k = kappa_solve(o->estimator, d, rbar, crbar);
    if (isnan(k))
        return vmf__error(VMF_ERANGE, "vmf_kappa_estimate: no kappa for rbar %.17g in d = %zu",
                          rbar, d);
    if (k < o->kappa_min)
        k = o->kappa_min;
    if (k > o->kappa_max)
        k = o->kappa_max;
    *kappa = k;
    return VMF_OK;
}

static const char *const ESTIMATOR_NAMES[] = {"banerjee", "sra", "song", "exact"};

const char *vmf_kappa_estimator_name(vmf_kappa_estimator est)
{
    if (!estimator_valid(est))
        return "unknown";
    return ESTIMATOR_NAMES[est];
}

int vmf_kappa_estimator_parse(const char *name, vmf_kappa_estimator *out)
{
    if (!name || !out)
        return vmf__error(VMF_EINVAL, "vmf_kappa_estimator_parse: NULL argument");
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, ESTIMATOR_NAMES[i]) == 0) {
            *out = (vmf_kappa_estimator)i;
            return VMF_OK;
        }
    }
    return vmf__error(
        VMF_EINVAL, "unknown kappa estimator \"%s\" (expected banerjee, sra, song or exact)", name);
}

int vmf__kappa_opts_check(const vmf_kappa_opts *k, const char *fn)
{
    if ((unsigned)k->estimator > (unsigned)VMF_KAPPA_EXACT)
        return vmf__error(VMF_EINVAL, "%s: unknown kappa estimator %d", fn, (int)k->estimator);
    if (!(isfinite(k->prior_count) && k->prior_count >= 0.0))
        return vmf__error(VMF_EINVAL, "%s: kappa prior_count %g must be finite and >= 0", fn,
                          k->prior_count);
    if (!(k->prior_rbar >= 0.0 && k->prior_rbar < 1.0))
        return vmf__error(VMF_EINVAL, "%s: kappa prior_rbar %g outside [0, 1)", fn, k->prior_rbar);
    if (!(isfinite(k->kappa_min) && isfinite(k->kappa_max) && k->kappa_min >= 0.0 &&
          k->kappa_min <= k->kappa_max))
        return vmf__error(VMF_EINVAL, "%s: need 0 <= kappa_min <= kappa_max < inf, got [%g, %g]",
                          fn, k->kappa_min, k->kappa_max);
    return VMF_OK;
}
