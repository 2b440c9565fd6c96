/*
 * bounds.c - the bounded E-step and sparse M-step of soft batch EM: rows
 * whose responsibilities provably sit on one component skip the GEMMs.
 *
 * Once EM has settled on well separated data, almost every row has one
 * component whose log joint density lj_a(x) = log w_a + log C_d(kappa_a) +
 * kappa_a mu_a^T x exceeds every other one by tens of nats: the other
 * responsibilities are below float resolution, and the two GEMMs of the
 * dense pass spend their time on them. As in the accelerations of k-means
 * (Elkan 2003; Hamerly 2010), each row keeps its dominant component a_i
 * and an upper bound u_i on max_{c != a_i} lj_c(x_i), carried from pass to
 * pass by how far each component moved.
 *
 * The bound is exact, not heuristic. For a unit row x and any c,
 *   t_c = mu_c^T x <= (u_i - coef_c) / kappa_c          (kappa_c > 0),
 * because lj_c = coef_c + kappa_c t_c <= u_i (coef = log w + log C_d), and
 * after the M-step moves mu_c to mu'_c, by Cauchy-Schwarz with |x| = 1,
 *   t'_c = mu'_c^T x <= t_c + |mu'_c - mu_c| = t_c + delta_c.
 * With t'_c <= 1 as well and kappa'_c >= 0,
 *   lj'_c <= coef'_c + kappa'_c min(1, (u_i - coef_c)/kappa_c + delta_c),
 * and the maximum of the right-hand side over c != a_i is the new u_i.
 * That costs K operations per row, so a uniform bound is tried first:
 * coef'_c + kappa'_c (t_c + delta_c) = (coef'_c - coef_c) + (coef_c + kappa_c t_c)
 * + (kappa'_c - kappa_c) t_c + kappa'_c delta_c, and with lj_c <= u_i, |t_c| <= 1,
 *   lj'_c <= u_i + (coef'_c - coef_c) + |kappa'_c - kappa_c| + kappa'_c delta_c,
 * so u_i + max_c Delta_c, Delta_c the last three terms, bounds every other
 * component with one addition per row; the per-component bound is
 * evaluated only for rows this does not settle.
 * Rounding: float dot products of unit vectors err by at most
 * gamma_d = d 2^-24 / (1 - d 2^-24) (Higham, Thm 3.5), and float rows are
 * unit to that accuracy, so every t above is widened by 2 gamma_d; the
 * dominant density lj'_a is recomputed from its dot product each pass and
 * lowered by kappa'_a gamma_d. Nothing else is assumed: the bound holds for
 * any change of the parameters (re-seeding, split and merge included).
 *
 * A row is skipped when u_i - lj'_a < -skip with skip = log(K - 1) + 24
 * log 2: then every other component has responsibility below exp(-skip),
 * all K - 1 of them together below 2^-24 = 6.0e-8 per row, the resolution
 * of the float responsibilities the dense path computes. Such a row counts
 * fully (r = 1) for a_i in the statistics and log p(x_i) is taken as
 * lj'_a. This is the sparse M-step's truncation: it moves less than 6e-8
 * of each skipped row's mass between components and lowers log p(x_i) by
 * less than 6e-8 (log(1 + e) <= e); at a maximum of the likelihood the
 * parameters' first-order perturbation does not change it, so the final
 * mean log-likelihood stays within 1e-7 per row of the dense path's
 * (vmf_bench_fit prints both). The dense path's own float rounding moves
 * its responsibilities by a factor up to exp(2 kappa gamma_d), 1.2 at
 * kappa = 2000 and d = 768, which the margins above absorb. A skipped row
 * costs one dot product, one addition (or the K-term bound) and d
 * additions; every other row is gathered into blocks and goes
 * through the same GEMMs and row kernel as the dense pass, which also
 * resets its a_i and u_i exactly.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <string.h>

struct vmf__bounds {
    size_t n, k, d;
    int valid;         /* the fields below describe the last pass */
    int32_t *dom;      /* [n] dominant component */
    double *u;         /* [n] bound on the other components' log joint */
    float *means;      /* [k][d] parameters of the last pass */
    double *coef;      /* [k] */
    double *kappas;    /* [k] */
    double *shift;     /* [k] scratch: delta_c + 2 gamma */
    double *inv_kappa; /* [k] scratch */
    size_t visits, skipped;
};

int vmf__bounds_new(size_t n, size_t k, size_t d, vmf__bounds **out)
{
    *out = NULL;
    size_t kd;
    if (vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "bounds: %zu x %zu overflows", k, d);
    vmf__bounds *b = vmf__calloc(1, sizeof *b);
    if (!b)
        return vmf__error(VMF_ENOMEM, "bounds: out of memory");
    b->n = n;
    b->k = k;
    b->d = d;
    b->dom = vmf__malloc_array(n ? n : 1, sizeof *b->dom);
    b->u = vmf__malloc_array(n ? n : 1, sizeof *b->u);
    b->means = vmf__malloc_array(kd, sizeof *b->means);
    b->coef = vmf__malloc_array(k, sizeof *b->coef);
    b->kappas = vmf__malloc_array(k, sizeof *b->kappas);
    b->shift = vmf__malloc_array(k, sizeof *b->shift);
    b->inv_kappa = vmf__malloc_array(k, sizeof *b->inv_kappa);
    if (!b->dom || !b->u || !b->means || !b->coef || !b->kappas || !b->shift || !b->inv_kappa) {
        vmf__bounds_free(b);
        return vmf__error(VMF_ENOMEM, "bounds: out of memory for %zu rows", n);
    }
    *out = b;
    return VMF_OK;
}

void vmf__bounds_free(vmf__bounds *b)
{
    if (!b)
        return;
    vmf__free(b->dom);
    vmf__free(b->u);
    vmf__free(b->means);
    vmf__free(b->coef);
    vmf__free(b->kappas);
    vmf__free(b->shift);
    vmf__free(b->inv_kappa);
    vmf__free(b);
}

void vmf__bounds_reset(vmf__bounds *b)
{
    b->valid = 0;
}

double vmf__bounds_skipped(const vmf__bounds *b)
{
    return b && b->visits ? (double)b->skipped / (double)b->visits : 0.0;
}

/* The skip margin in nats: (K - 1) exp(-skip) = 2^-24. */
static double skip_nats(size_t k)
{
    return log((double)(k > 1 ? k - 1 : 1)) + 24.0 * log(2.0);
}

/* Dot product of float vectors in double (the dominant component's density). */
static double dot_fd(const float *a, const float *b, size_t d)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        s0 += (double)a[j] * (double)b[j];
        s1 += (double)a[j + 1] * (double)b[j + 1];
        s2 += (double)a[j + 2] * (double)b[j + 2];
        s3 += (double)a[j + 3] * (double)b[j + 3];
    }
    for (; j < d; j++)
        s0 += (double)a[j] * (double)b[j];
    return (s0 + s1) + (s2 + s3);
}

/*
 * The dense treatment of `rows` gathered rows (indices idx, copied into xb):
 * GEMM, exact a_i and u_i, the row kernel, the statistics.
 */
static void dense_rows(const vmf_mixture *m, vmf__bounds *b, const float *xb, const size_t *idx,
                       size_t rows, float *dots, double *lsc, double *rll, float *s1b, double *s0,
                       double *s1, double *ll, double *row_loglik, double gamma)
{
    size_t k = m->k, d = m->d;
    vmf__sgemm(0, 1, rows, k, d, 1.0f, xb, d, m->means, d, 0.0f, dots, k);
    for (size_t i = 0; i < rows; i++) {
        const float *t = dots + i * k;
        size_t a = 0;
        double best = m->log_coef[0] + m->kappas[0] * (double)t[0];
        for (size_t c = 1; c < k; c++) {
            double l = m->log_coef[c] + m->kappas[c] * (double)t[c];
            if (l > best) {
                best = l;
                a = c;
            }
        }
        double u = -INFINITY;
        for (size_t c = 0; c < k; c++) {
            if (c == a)
                continue;
            double l = m->log_coef[c] + m->kappas[c] * ((double)t[c] + gamma);
            if (l > u)
                u = l;
        }
        b->dom[idx[i]] = (int32_t)a;
        b->u[idx[i]] = u;
    }
    double part = vmf__mixture_resp_block(m, rows, VMF_ASSIGN_SOFT, NULL, dots, lsc, rll);
    (void)part;
    for (size_t i = 0; i < rows; i++) {
        *ll += rll[i];
        if (row_loglik)
            row_loglik[idx[i]] = rll[i];
    }
    vmf__mixture_accum_soft(dots, xb, rows, k, d, s1b, s0, s1);
}

int vmf__mixture_estep_bounded(const vmf_mixture *m, const float *x, size_t n, size_t d,
                               size_t block_rows, vmf__bounds *b, double *s0, double *s1,
                               double *loglik_sum, double *row_loglik)
{
    size_t k = m->k, blk = vmf__estep_block_rows(n, block_rows);
    size_t bk, bd, kd;
    if (vmf__mul_overflow(blk, k, &bk) != 0 || vmf__mul_overflow(blk, d, &bd) != 0 ||
        vmf__mul_overflow(k, d, &kd) != 0)
        return vmf__error(VMF_ENOMEM, "E-step: a block of %zu rows x %zu is too large", blk, k);
    float *dots = vmf__malloc_array(bk, sizeof *dots);
    float *xb = vmf__malloc_array(bd, sizeof *xb);
    size_t *idx = vmf__malloc_array(blk, sizeof *idx);
    double *lsc = vmf__malloc_array(k, sizeof *lsc);
    double *rll = vmf__malloc_array(blk, sizeof *rll);
    float *s1b = s1 ? vmf__malloc_array(kd, sizeof *s1b) : NULL;
    if (!dots || !xb || !idx || !lsc || !rll || (s1 && !s1b)) {
        vmf__free(dots);
        vmf__free(xb);
        vmf__free(idx);
        vmf__free(lsc);
        vmf__free(rll);
        vmf__free(s1b);
        return vmf__error(VMF_ENOMEM, "E-step: out of memory for a block of %zu rows x %zu", blk,
                          k);
    }
    double ud = (double)d * ldexp(1.0, -24);
    double gamma = ud / (1.0 - ud) + 1e-12;
    double skip = skip_nats(k);
    int valid = b->valid;
    double tmax = 1.0 + 2.0 * gamma, grow = -INFINITY;
    if (valid) {
        for (size_t c = 0; c < k; c++) {
            const float *p = b->means + c * d, *q = m->means + c * d;
            double e2 = 0.0;
            for (size_t j = 0; j < d; j++) {
                double e = (double)q[j] - (double)p[j];
                e2 += e * e;
            }
            b->shift[c] = sqrt(e2) * (1.0 + 1e-12) + 2.0 * gamma;
            b->inv_kappa[c] = b->kappas[c] > 0.0 ? 1.0 / b->kappas[c] : 0.0;
            /* The uniform growth bound Delta_c of the file comment; -inf - -inf: absent twice. */
            double dc = m->log_coef[c] - b->coef[c];
            if (isnan(dc))
                continue;
            dc += fabs(m->kappas[c] - b->kappas[c]) * tmax + m->kappas[c] * b->shift[c];
            grow = dc > grow ? dc : grow;
        }
    }
    memset(s0, 0, k * sizeof *s0);
    if (s1)
        memset(s1, 0, k * d * sizeof *s1);
    double ll = 0.0;
    size_t nb = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        if (valid) {
            size_t a = (size_t)b->dom[i];
            double la = m->log_coef[a] + m->kappas[a] * dot_fd(xi, m->means + a * d, d);
            double ui = b->u[i], lo = la - m->kappas[a] * gamma - skip;
            /* The uniform bound first (one addition); the per-component one when it fails. */
            double un = ui + grow;
            if (!(un < lo)) {
                un = -INFINITY;
                for (size_t c = 0; c < k; c++) {
                    if (c == a)
                        continue;
                    double tb = tmax;
                    if (b->kappas[c] > 0.0) {
                        tb = (ui - b->coef[c]) * b->inv_kappa[c] + b->shift[c];
                        tb = tb > tmax ? tmax : tb;
                        tb = tb < -tmax ? -tmax : tb; /* still an upper bound, and finite */
                        if (isnan(tb))                /* -inf - -inf: a component of weight 0 */
                            tb = tmax;
                    }
                    double l = m->log_coef[c] + m->kappas[c] * tb;
                    un = l > un ? l : un;
                }
            }
            if (un < lo) {
                /* Skipped: r_ia = 1 (truncation of the file comment). */
                b->u[i] = un;
                s0[a] += 1.0;
                if (s1) {
                    double *acc = s1 + a * d;
                    for (size_t j = 0; j < d; j++)
                        acc[j] += (double)xi[j];
                }
                ll += la;
                if (row_loglik)
                    row_loglik[i] = la;
                skipped++;
                continue;
            }
        }
        memcpy(xb + nb * d, xi, d * sizeof *xb);
        idx[nb++] = i;
        if (nb == blk) {
            dense_rows(m, b, xb, idx, nb, dots, lsc, rll, s1b, s0, s1, &ll, row_loglik, gamma);
            nb = 0;
        }
    }
    if (nb > 0)
        dense_rows(m, b, xb, idx, nb, dots, lsc, rll, s1b, s0, s1, &ll, row_loglik, gamma);
    memcpy(b->means, m->means, k * d * sizeof *b->means);
    memcpy(b->coef, m->log_coef, k * sizeof *b->coef);
    memcpy(b->kappas, m->kappas, k * sizeof *b->kappas);
    b->valid = 1;
    b->visits += n;
    b->skipped += skipped;
    if (loglik_sum)
        *loglik_sum = ll;
    vmf__free(dots);
    vmf__free(xb);
    vmf__free(idx);
    vmf__free(lsc);
    vmf__free(rll);
    vmf__free(s1b);
    return VMF_OK;
}
