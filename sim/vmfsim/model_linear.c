/*
 * model_linear.c - the linear families, refit on all rows so far and
 * warm-started from the previous refit, solved by one preconditioned L-BFGS
 * whose loss and gradient are SGEMMs:
 *
 *   logreg  multinomial L2-regularised logistic regression, as scikit-learn's
 *           LogisticRegression(C, class_weight='balanced') (multinomial,
 *           lbfgs) runs it; top-k by probability;
 *   svm     L2-regularised L2-loss (squared hinge) SVC, one-vs-rest with a
 *           regularised bias feature: liblinear's primal problem (-s 2, as
 *           scikit-learn's LinearSVC(class_weight='balanced')); top-k by
 *           decision value.
 *
 * With z_i = W x_i + b (W [K][d], b [K], K the classes seen so far), the
 * objectives (vmfsim_lin_fit) are
 *
 *   softmax: f = sum_i w_{y_i} (log sum_k exp z_ik - z_{i y_i}) + |W|^2 / (2C)
 *   sqhinge: f = sum_k sum_i c_ik max(0, 1 - s_ik z_ik)^2 + (|W|^2 + |b|^2) / (2C)
 *
 * with s_ik = +1 when y_i = k and -1 otherwise. Class-balanced weights
 * w_c = n / (K n_c) (scikit-learn's 'balanced'); in one-vs-rest, c_ik = w_k
 * for class k's own rows and 1 for the others, which is how liblinear (and
 * so LinearSVC) applies per-class weights. The softmax objective is
 * scikit-learn 1.2's lbfgs objective (intercepts not penalised), so the
 * minimiser is the same; the squared-hinge one is liblinear's primal
 * objective divided by C, the same minimiser again (test_vmfsim_linear.c
 * checks both against the reference implementations). Two differences: the
 * multinomial model is also used for two classes (scikit-learn switches to
 * the binary model there, whose penalty differs by a factor of two), and the
 * svm solves two one-vs-rest problems for two classes (liblinear one).
 * Both happen only on the replay's first days. The softmax intercepts are
 * determined up to a common constant, fixed by centring them.
 *
 * Why not liblinear: its dual solver (the default) cannot be warm-started
 * and took 12-17 s per class-balanced refit on the default stream's 40,000
 * rows; its warm-started primal solver still took over a second. Daily
 * refits need a fraction of that.
 *
 * Solver: L-BFGS (Nocedal & Wright 2006, alg. 7.4/7.5; m = 10 pairs) with a
 * backtracking Armijo line search (quadratic interpolation, c1 = 1e-4). Its
 * initial inverse Hessian is gamma M^-1 instead of gamma I, M block diagonal
 * over classes and computed at the start point (exact_blocks): for sqhinge
 * the exact generalised Hessian (the one-vs-rest problems are separable, so
 * it is block diagonal; the first step is Newton's), for softmax the
 * diagonal blocks sum_i w_i p_ik (1 - p_ik) x~_i x~_iᵀ of the Hessian
 * (rows with w_i p_ik (1 - p_ik) below 1e-3 w_i left out), plus (1/C) I.
 * Without it, the embeddings' anisotropy made L-BFGS crawl (30-40
 * iterations per warm refit instead of 2-8). Stop when the largest gradient
 * entry is below tol n (mean scale, so the criterion does not tighten as
 * rows accumulate) or a full step decreased f by less than ftol relative.
 * Per block of rows the loss and gradient are Z = X_b Wᵀ and G_bᵀ X_b
 * (SGEMM); softmax, losses and sums are in double; memory O(block K + K d).
 *
 * Warm start: each refit starts from the previous refit's (W, b), a class
 * seen for the first time at zero, and keeps the previous refit's curvature
 * pairs while the class set is unchanged (the objective only gained a day of
 * rows, so yesterday's curvature still describes it). The minimiser is
 * unique (strictly convex; softmax intercepts up to the centring), so the
 * warm start changes the cost, not the answer, to within the tolerance.
 */
#include "vecmath.h"
#include "vmfsim.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIN_BLOCK 2048

void vmfsim_lin_opts_init(vmfsim_lin_opts *o)
{
    o->loss = VMFSIM_LOSS_SOFTMAX;
    o->c = 1.0;
    o->tol = 1e-5;
    o->ftol = 1e-8;
    o->max_iter = 500;
    o->memory = 10;
}

void vmfsim_lin_mem_free(vmfsim_lin_mem *m)
{
    if (!m)
        return;
    free(m->s);
    free(m->y);
    free(m->rho);
    memset(m, 0, sizeof *m);
}

/* The evaluation context: data, weights and scratch. */
typedef struct lin_ctx {
    int loss;
    const float *x;
    size_t n, d, k;
    const int32_t *y;
    const double *cw;
    double inv_c;
    float *wf;    /* [k][d] */
    float *z;     /* [LIN_BLOCK][k] logits, then residuals */
    float *gwf;   /* [k][d] block gradient */
    float *e;     /* [k] scratch */
    float *bf;    /* [k] intercepts as float */
    double *chol; /* [k][(d+1)^2] Cholesky factors of the preconditioner blocks */
} lin_ctx;

/* Softmax loss of one row's logits zi [k] plus bias bf; weighted residuals into zi. */
static double row_softmax(lin_ctx *c, float *zi, const float *bf, int32_t yi)
{
    const size_t k = c->k;
    float *e = c->e;
    float mx = -INFINITY;
    for (size_t j = 0; j < k; j++) {
        e[j] = zi[j] + bf[j];
        mx = e[j] > mx ? e[j] : mx;
    }
    const float zy = e[yi];
    for (size_t j = 0; j < k; j++)
        e[j] = vmf__expf_nonpos(e[j] - mx);
    float sum = 0.0f;
    for (size_t j = 0; j < k; j++)
        sum += e[j];
    const float wi = (float)c->cw[yi], ws = wi / sum;
    for (size_t j = 0; j < k; j++)
        zi[j] = ws * e[j];
    zi[yi] -= wi;
    return (double)wi * ((double)mx + log((double)sum) - (double)zy);
}

/* One-vs-rest squared hinge of one row plus bias bf; residuals into zi. */
static double row_sqhinge(lin_ctx *c, float *zi, const float *bf, int32_t yi)
{
    const size_t k = c->k;
    const float zy = zi[yi] + bf[yi];
    float loss = 0.0f;
    /* Every class as a negative (s = -1, weight 1): margin violation 1 + z. */
    for (size_t j = 0; j < k; j++) {
        float m = 1.0f + zi[j] + bf[j];
        m = m > 0.0f ? m : 0.0f;
        zi[j] = 2.0f * m;
    }
    for (size_t j = 0; j < k; j++)
        loss += 0.25f * zi[j] * zi[j];
    /* Then the own class as the positive it is (s = +1, weight w_y). */
    const float mneg = 0.5f * zi[yi], w = (float)c->cw[yi];
    float m = 1.0f - zy;
    loss -= mneg * mneg;
    m = m > 0.0f ? m : 0.0f;
    loss += w * m * m;
    zi[yi] = -2.0f * w * m;
    return (double)loss;
}

/* f(theta) and its gradient g; theta = W [k][d] then b [k]. */
static double lin_eval(lin_ctx *c, const double *theta, double *g)
{
    const size_t n = c->n, d = c->d, k = c->k, p = k * d;
    const double *w = theta, *b = theta + p;
    for (size_t j = 0; j < p; j++)
        c->wf[j] = (float)w[j];
    memset(g, 0, (p + k) * sizeof *g);
    for (size_t j = 0; j < k; j++)
        c->bf[j] = (float)b[j];
    double f = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += LIN_BLOCK) {
        const size_t rows = n - i0 < LIN_BLOCK ? n - i0 : LIN_BLOCK;
        const float *xb = c->x + i0 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, xb,
                    (int)d, c->wf, (int)d, 0.0f, c->z, (int)k);
        double fb = 0.0;
        for (size_t i = 0; i < rows; i++) {
            float *zi = c->z + i * k;
            fb += c->loss == VMFSIM_LOSS_SOFTMAX ? row_softmax(c, zi, c->bf, c->y[i0 + i])
                                                 : row_sqhinge(c, zi, c->bf, c->y[i0 + i]);
            for (size_t j = 0; j < k; j++)
                g[p + j] += (double)zi[j];
        }
        f += fb;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)d, (int)rows, 1.0f, c->z,
                    (int)k, xb, (int)d, 0.0f, c->gwf, (int)d);
        for (size_t j = 0; j < p; j++)
            g[j] += (double)c->gwf[j];
    }
    double reg = 0.0;
    for (size_t j = 0; j < p; j++) {
        reg += w[j] * w[j];
        g[j] += c->inv_c * w[j];
    }
    if (c->loss == VMFSIM_LOSS_SQHINGE)
        for (size_t j = 0; j < k; j++) {
            reg += b[j] * b[j];
            g[p + j] += c->inv_c * b[j];
        }
    return f + 0.5 * c->inv_c * reg;
}

/* Adds (1/C) I to the blocks in c->chol (exact_blocks; bias entry for sqhinge only) and factors
 * them. */
static int precond_build(lin_ctx *c)
{
    const size_t d1 = c->d + 1;
    const double breg = c->loss == VMFSIM_LOSS_SQHINGE ? c->inv_c : 0.0;
    for (size_t j = 0; j < c->k; j++) {
        double *L = c->chol + j * d1 * d1;
        for (size_t r = 0; r < d1; r++)
            L[r * d1 + r] += r < c->d ? c->inv_c : breg;
        for (size_t r = 0; r < d1; r++) { /* in-place Cholesky, lower triangle */
            for (size_t q = 0; q <= r; q++) {
                double v = L[r * d1 + q];
                for (size_t t = 0; t < q; t++)
                    v -= L[r * d1 + t] * L[q * d1 + t];
                if (q == r) {
                    if (!(v > 0.0))
                        return -1;
                    L[r * d1 + r] = sqrt(v);
                } else {
                    L[r * d1 + q] = v / L[q * d1 + q];
                }
            }
        }
    }
    return 0;
}

/*
 * The one-vs-rest squared hinge is separable by class, so its generalised
 * Hessian is block diagonal: block k = 2 sum_{i violating} c_ik x~_i x~_iᵀ
 * (+ (1/C) I). Computed exactly at theta into c->chol (lower triangles) by
 * gathering each class's margin-violating rows, scaled by sqrt(2 c_ik),
 * into xw [LIN_BLOCK][d+1] for one SGEMM per class and block of rows; the
 * preconditioned L-BFGS then starts as Newton's method does.
 */
static void exact_blocks(lin_ctx *c, const double *theta, float *xw, float *sb)
{
    const size_t n = c->n, d = c->d, d1 = d + 1, k = c->k;
    const int softmax = c->loss == VMFSIM_LOSS_SOFTMAX;
    memset(c->chol, 0, k * d1 * d1 * sizeof *c->chol);
    for (size_t j = 0; j < k * d; j++)
        c->wf[j] = (float)theta[j];
    for (size_t i0 = 0; i0 < n; i0 += LIN_BLOCK) {
        const size_t rows = n - i0 < LIN_BLOCK ? n - i0 : LIN_BLOCK;
        const float *xb = c->x + i0 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, xb,
                    (int)d, c->wf, (int)d, 0.0f, c->z, (int)k);
        if (softmax) /* z <- w_i p_ij (1 - p_ij), the diagonal of the row's curvature */
            for (size_t i = 0; i < rows; i++) {
                float *zi = c->z + i * k, mx = -INFINITY, sum = 0.0f;
                for (size_t j = 0; j < k; j++) {
                    zi[j] += (float)theta[k * d + j];
                    mx = zi[j] > mx ? zi[j] : mx;
                }
                for (size_t j = 0; j < k; j++) {
                    zi[j] = vmf__expf_nonpos(zi[j] - mx);
                    sum += zi[j];
                }
                const float wi = (float)c->cw[c->y[i0 + i]];
                for (size_t j = 0; j < k; j++) {
                    const float pj = zi[j] / sum;
                    zi[j] = wi * pj * (1.0f - pj);
                }
            }
        for (size_t j = 0; j < k; j++) {
            const double bj = theta[k * d + j];
            size_t m = 0;
            for (size_t i = 0; i < rows; i++) {
                double a;
                if (softmax) {
                    /* Rows far from class j add almost nothing: leave them out. */
                    a = (double)c->z[i * k + j];
                    if (a < 1e-3 * c->cw[c->y[i0 + i]])
                        continue;
                } else {
                    const int own = c->y[i0 + i] == (int32_t)j;
                    const double sgn = own ? 1.0 : -1.0, w = own ? c->cw[j] : 1.0;
                    if (1.0 - sgn * ((double)c->z[i * k + j] + bj) <= 0.0)
                        continue;
                    a = 2.0 * w;
                }
                const float sw = (float)sqrt(a);
                for (size_t q = 0; q < d; q++)
                    xw[m * d1 + q] = sw * xb[i * d + q];
                xw[m * d1 + d] = sw;
                m++;
            }
            if (m == 0)
                continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d1, (int)d1, (int)m, 1.0f, xw,
                        (int)d1, xw, (int)d1, 0.0f, sb, (int)d1);
            double *H = c->chol + j * d1 * d1;
            for (size_t q = 0; q < d1 * d1; q++)
                H[q] += (double)sb[q];
        }
    }
}

/* v [k*d + k] (W then b) <- M^-1 v, block by block; tmp [d + 1]. */
static void precond_apply(const lin_ctx *c, double *v, double *tmp)
{
    const size_t d = c->d, d1 = d + 1, k = c->k;
    for (size_t j = 0; j < k; j++) {
        const double *L = c->chol + j * d1 * d1;
        memcpy(tmp, v + j * d, d * sizeof *tmp);
        tmp[d] = v[k * d + j];
        for (size_t r = 0; r < d1; r++) { /* L u = v */
            double t = tmp[r];
            for (size_t q = 0; q < r; q++)
                t -= L[r * d1 + q] * tmp[q];
            tmp[r] = t / L[r * d1 + r];
        }
        for (size_t r = d1; r-- > 0;) { /* Lᵀ w = u */
            double t = tmp[r];
            for (size_t q = r + 1; q < d1; q++)
                t -= L[q * d1 + r] * tmp[q];
            tmp[r] = t / L[r * d1 + r];
        }
        memcpy(v + j * d, tmp, d * sizeof *tmp);
        v[k * d + j] = tmp[d];
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double norm_inf(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/*
 * dir = -H g by the two-loop recursion over the stored pairs, with
 * H0 = gamma M^-1, gamma = sᵀy / yᵀ M^-1 y of the newest pair (1 without
 * pairs). scratch [d + 1 + np].
 */
static void two_loop(const vmfsim_lin_mem *m, const lin_ctx *c, const double *g, double *dir,
                     double *alpha, double *scratch)
{
    const size_t np = m->np, len = m->len;
    for (size_t i = 0; i < np; i++)
        dir[i] = -g[i];
    for (size_t q = 0; q < len; q++) {
        size_t at = (m->head + len - 1 - q) % m->cap;
        alpha[q] = m->rho[at] * dot(m->s + at * np, dir, np);
        const double *yv = m->y + at * np;
        for (size_t i = 0; i < np; i++)
            dir[i] -= alpha[q] * yv[i];
    }
    double gamma = 1.0;
    if (len > 0) {
        size_t last = (m->head + len - 1) % m->cap;
        double *my = scratch + c->d + 1;
        memcpy(my, m->y + last * np, np * sizeof *my);
        precond_apply(c, my, scratch);
        gamma = 1.0 / (m->rho[last] * dot(m->y + last * np, my, np));
    }
    precond_apply(c, dir, scratch);
    for (size_t i = 0; i < np; i++)
        dir[i] *= gamma;
    for (size_t q = len; q-- > 0;) {
        size_t at = (m->head + len - 1 - q) % m->cap;
        double beta = m->rho[at] * dot(m->y + at * np, dir, np);
        const double *sv = m->s + at * np;
        for (size_t i = 0; i < np; i++)
            dir[i] += (alpha[q] - beta) * sv[i];
    }
}

static int mem_prepare(vmfsim_lin_mem *m, size_t np, size_t cap)
{
    if (m->np == np && m->cap == cap && m->s)
        return VMF_OK;
    vmfsim_lin_mem_free(m);
    m->s = malloc(cap * np * sizeof *m->s);
    m->y = malloc(cap * np * sizeof *m->y);
    m->rho = malloc(cap * sizeof *m->rho);
    if (!m->s || !m->y || !m->rho) {
        vmfsim_lin_mem_free(m);
        return VMF_ENOMEM;
    }
    m->np = np;
    m->cap = cap;
    return VMF_OK;
}

int vmfsim_lin_fit(const vmfsim_lin_opts *o, const float *x, size_t n, size_t d, const int32_t *y,
                   size_t k, const double *cw, double *theta, vmfsim_lin_mem *mem,
                   vmfsim_lin_info *info, char *err)
{
    vmfsim_lin_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    if (n == 0 || d == 0 || k == 0 || !(o->c > 0) || o->memory == 0 ||
        (o->loss != VMFSIM_LOSS_SOFTMAX && o->loss != VMFSIM_LOSS_SQHINGE))
        return snprintf(err, VMFSIM_ERR_SIZE, "linear: empty problem or bad options"), VMF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= k)
            return snprintf(err, VMFSIM_ERR_SIZE, "linear: label %d outside 0..%zu", y[i], k - 1),
                   VMF_EINVAL;
    const size_t np = k * d + k, d1 = d + 1;
    vmfsim_lin_mem local;
    memset(&local, 0, sizeof local);
    if (!mem)
        mem = &local;
    lin_ctx c = {
        .loss = o->loss, .x = x, .n = n, .d = d, .k = k, .y = y, .cw = cw, .inv_c = 1.0 / o->c};
    c.wf = malloc(k * d * sizeof *c.wf);
    c.gwf = malloc(k * d * sizeof *c.gwf);
    c.z = malloc((size_t)LIN_BLOCK * k * sizeof *c.z);
    c.e = malloc(k * sizeof *c.e);
    c.bf = malloc(k * sizeof *c.bf);
    c.chol = malloc(k * d1 * d1 * sizeof *c.chol);
    double *scratch = malloc((d1 + np) * sizeof *scratch);
    float *xw = malloc((size_t)LIN_BLOCK * d1 * sizeof *xw), *sb = malloc(d1 * d1 * sizeof *sb);
    double *g = malloc(np * sizeof *g), *g1 = malloc(np * sizeof *g1);
    double *x1 = malloc(np * sizeof *x1), *dir = malloc(np * sizeof *dir);
    double *alpha = malloc(o->memory * sizeof *alpha);
    int rc = VMF_ENOMEM;
    if (!c.wf || !c.gwf || !c.z || !c.e || !c.bf || !c.chol || !scratch || !xw || !sb || !g ||
        !g1 || !x1 || !dir || !alpha || mem_prepare(mem, np, o->memory)) {
        snprintf(err, VMFSIM_ERR_SIZE, "linear: out of memory");
        goto done;
    }
    const double gtol = o->tol * (double)n;
    double f = lin_eval(&c, theta, g);
    info->n_eval = 1;
    exact_blocks(&c, theta, xw, sb);
    if (precond_build(&c)) {
        rc = VMF_EINVAL;
        snprintf(err, VMFSIM_ERR_SIZE, "linear: preconditioner not positive definite");
        goto done;
    }
    double gmax = norm_inf(g, np);
    int converged = gmax <= gtol;
    size_t it = 0;
    for (; it < o->max_iter && !converged; it++) {
        two_loop(mem, &c, g, dir, alpha, scratch);
        double gd = dot(g, dir, np), t = 1.0;
        if (!(gd < 0.0)) { /* not a descent direction: forget the curvature, go down the gradient */
            mem->len = 0;
            mem->head = 0;
            for (size_t i = 0; i < np; i++)
                dir[i] = -g[i];
            gd = -dot(g, g, np);
            t = fmin(1.0, 1.0 / sqrt(-gd));
        }
        double f1 = 0.0;
        int accepted = 0;
        for (int ls = 0; ls < 40; ls++) {
            for (size_t i = 0; i < np; i++)
                x1[i] = theta[i] + t * dir[i];
            f1 = lin_eval(&c, x1, g1);
            info->n_eval++;
            if (isfinite(f1) && f1 <= f + 1e-4 * t * gd) {
                accepted = 1;
                break;
            }
            /* Minimiser of the quadratic through f, f'(0) = gd and f(t), kept in [0.1 t, 0.5 t]. */
            double tq = isfinite(f1) ? -gd * t * t / (2.0 * (f1 - f - gd * t)) : 0.1 * t;
            t = fmin(fmax(tq, 0.1 * t), 0.5 * t);
        }
        if (!accepted) /* no decrease left at this precision: as close as float logits allow */
            break;
        /* The new curvature pair s = x1 - x, y = g1 - g, kept when sᵀy > 0. */
        size_t at = (mem->head + mem->len) % mem->cap;
        double *sv = mem->s + at * np, *yv = mem->y + at * np;
        for (size_t i = 0; i < np; i++) {
            sv[i] = x1[i] - theta[i];
            yv[i] = g1[i] - g[i];
        }
        double sy = dot(sv, yv, np);
        if (sy > 1e-12 * dot(yv, yv, np)) {
            mem->rho[at] = 1.0 / sy;
            if (mem->len < mem->cap)
                mem->len++;
            else
                mem->head = (mem->head + 1) % mem->cap;
        }
        const double decrease = f - f1;
        memcpy(theta, x1, np * sizeof *theta);
        memcpy(g, g1, np * sizeof *g);
        gmax = norm_inf(g, np);
        /* The decrease test only after a full step: a backtracked one can be small anywhere. */
        converged =
            gmax <= gtol || (t == 1.0 && decrease <= o->ftol * fmax(fmax(fabs(f), fabs(f1)), 1.0));
        f = f1;
    }
    if (o->loss == VMFSIM_LOSS_SOFTMAX) { /* softmax is invariant to a common shift */
        double bm = 0.0;
        for (size_t j = 0; j < k; j++)
            bm += theta[k * d + j];
        bm /= (double)k;
        for (size_t j = 0; j < k; j++)
            theta[k * d + j] -= bm;
    }
    info->n_iter = it;
    info->f = f;
    info->grad_max = gmax / (double)n;
    info->converged = converged;
    rc = VMF_OK;
done:
    free(c.wf), free(c.gwf), free(c.z), free(c.e), free(c.bf), free(c.chol);
    free(scratch), free(xw), free(sb);
    free(g), free(g1), free(x1), free(dir), free(alpha);
    vmfsim_lin_mem_free(&local);
    return rc;
}

/* ------------------------------------------------------------ the families */

typedef struct lin_state {
    vmfsim_lin_opts opts;
    size_t d, n_classes;
    double *w;          /* [n_classes][d + 1]: weights then intercept, the last fit */
    unsigned char *fit; /* [n_classes]: class in the last fit */
    int32_t *class_of;  /* [k] dense class of local index */
    size_t k;           /* classes in the last fit, 0 before two classes were seen */
    int32_t single;     /* the only class seen when fewer than two were, else -1 */
    uint64_t rows;
    vmfsim_lin_mem mem;
    int32_t *yl; /* [cap] local labels */
    size_t cap;
} lin_state;

static int lin_create(int loss, double c, size_t d, size_t n_classes, void **state, char *err)
{
    lin_state *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    vmfsim_lin_opts_init(&s->opts);
    s->opts.loss = loss;
    s->opts.c = c;
    s->d = d;
    s->n_classes = n_classes;
    s->single = -1;
    s->w = calloc(n_classes * (d + 1), sizeof *s->w);
    s->fit = calloc(n_classes, 1);
    s->class_of = malloc(n_classes * sizeof *s->class_of);
    if (!s->w || !s->fit || !s->class_of) {
        free(s->w), free(s->fit), free(s->class_of), free(s);
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    }
    *state = s;
    return VMF_OK;
}

static int logreg_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                         char *err)
{
    return lin_create(VMFSIM_LOSS_SOFTMAX, cfg->logreg_c, d, n_classes, state, err);
}

static int svm_create(const vmfsim_model_cfg *cfg, size_t d, size_t n_classes, void **state,
                      char *err)
{
    return lin_create(VMFSIM_LOSS_SQHINGE, cfg->svm_c, d, n_classes, state, err);
}

static int lin_learn(void *state, size_t day, const float *x, size_t n, size_t d, const int32_t *y,
                     char *err)
{
    (void)day;
    lin_state *s = state;
    const size_t C = s->n_classes;
    if (n > s->cap) {
        int32_t *yl = realloc(s->yl, n * sizeof *yl);
        if (!yl)
            return snprintf(err, VMFSIM_ERR_SIZE, "linear: out of memory"), VMF_ENOMEM;
        s->yl = yl;
        s->cap = n;
    }
    size_t *cnt = calloc(C, sizeof *cnt);
    int32_t *local = malloc(C * sizeof *local);
    if (!cnt || !local) {
        free(cnt), free(local);
        return snprintf(err, VMFSIM_ERR_SIZE, "linear: out of memory"), VMF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        cnt[y[i]]++;
    size_t k = 0;
    int same = 1;
    for (size_t c = 0; c < C; c++) {
        local[c] = cnt[c] ? (int32_t)k++ : -1;
        same &= (cnt[c] > 0) == (s->fit[c] != 0);
    }
    s->rows = n;
    if (k < 2) {
        for (size_t c = 0; c < C; c++)
            if (cnt[c])
                s->single = (int32_t)c;
        s->k = 0;
        free(cnt), free(local);
        return VMF_OK;
    }
    s->single = -1;
    double *theta = malloc((k * d + k) * sizeof *theta), *cw = malloc(k * sizeof *cw);
    if (!theta || !cw) {
        free(cnt), free(local), free(theta), free(cw);
        return snprintf(err, VMFSIM_ERR_SIZE, "linear: out of memory"), VMF_ENOMEM;
    }
    for (size_t c = 0; c < C; c++) {
        if (local[c] < 0)
            continue;
        size_t j = (size_t)local[c];
        s->class_of[j] = (int32_t)c;
        cw[j] = (double)n / ((double)k * (double)cnt[c]);
        memcpy(theta + j * d, s->w + c * (d + 1), d * sizeof *theta);
        theta[k * d + j] = s->w[c * (d + 1) + d];
    }
    for (size_t i = 0; i < n; i++)
        s->yl[i] = local[y[i]];
    if (!same) { /* the parameter vector changed shape: yesterday's pairs do not apply */
        s->mem.len = 0;
        s->mem.head = 0;
    }
    int rc = vmfsim_lin_fit(&s->opts, x, n, d, s->yl, k, cw, theta, &s->mem, NULL, err);
    if (rc == VMF_OK) {
        for (size_t j = 0; j < k; j++) {
            size_t c = (size_t)s->class_of[j];
            memcpy(s->w + c * (d + 1), theta + j * d, d * sizeof *theta);
            s->w[c * (d + 1) + d] = theta[k * d + j];
            s->fit[c] = 1;
        }
        s->k = k;
    }
    free(cnt), free(local), free(theta), free(cw);
    return rc;
}

/* Scores of rows x [n][d] (probabilities or decision values) and top-k, by blocks. */
static int lin_predict(void *state, const float *x, size_t n, size_t d, size_t k, int32_t *topk,
                       double *novelty, char *err)
{
    lin_state *s = state;
    if (s->k == 0) {
        vmfsim_topk_untrained(s->single, n, k, topk);
        if (novelty)
            memset(novelty, 0, n * sizeof *novelty);
        return VMF_OK;
    }
    const size_t K = s->k;
    const int softmax = s->opts.loss == VMFSIM_LOSS_SOFTMAX;
    float *wf = malloc(K * d * sizeof *wf), *z = malloc((size_t)LIN_BLOCK * K * sizeof *z);
    double *sc = malloc((size_t)LIN_BLOCK * K * sizeof *sc), *b = malloc(K * sizeof *b);
    if (!wf || !z || !sc || !b) {
        free(wf), free(z), free(sc), free(b);
        return snprintf(err, VMFSIM_ERR_SIZE, "linear: out of memory"), VMF_ENOMEM;
    }
    for (size_t j = 0; j < K; j++) {
        const double *wc = s->w + (size_t)s->class_of[j] * (d + 1);
        for (size_t q = 0; q < d; q++)
            wf[j * d + q] = (float)wc[q];
        b[j] = wc[d];
    }
    for (size_t i0 = 0; i0 < n; i0 += LIN_BLOCK) {
        const size_t rows = n - i0 < LIN_BLOCK ? n - i0 : LIN_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)K, (int)d, 1.0f,
                    x + i0 * d, (int)d, wf, (int)d, 0.0f, z, (int)K);
        for (size_t i = 0; i < rows; i++) {
            double *si = sc + i * K, mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < K; j++) {
                si[j] = (double)z[i * K + j] + b[j];
                mx = si[j] > mx ? si[j] : mx;
            }
            if (softmax) {
                for (size_t j = 0; j < K; j++) {
                    si[j] = exp(si[j] - mx);
                    sum += si[j];
                }
                for (size_t j = 0; j < K; j++)
                    si[j] /= sum;
                mx = 1.0 / sum; /* the largest probability */
            }
            if (novelty)
                novelty[i0 + i] = -mx;
        }
        vmfsim_topk_from_scores(sc, rows, K, k, s->class_of, topk + i0 * k);
    }
    free(wf), free(z), free(sc), free(b);
    return VMF_OK;
}

static uint64_t lin_rows(const void *state)
{
    const lin_state *s = state;
    return s->rows;
}

static void lin_destroy(void *state)
{
    lin_state *s = state;
    if (!s)
        return;
    vmfsim_lin_mem_free(&s->mem);
    free(s->w), free(s->fit), free(s->class_of), free(s->yl);
    free(s);
}

const vmfsim_model_ops vmfsim_ops_logreg = {
    .name = "logreg",
    .refit = 1,
    .novelty = 1,
    .create = logreg_create,
    .learn_day = lin_learn,
    .predict_topk = lin_predict,
    .rows_seen = lin_rows,
    .destroy = lin_destroy,
};

const vmfsim_model_ops vmfsim_ops_svm = {
    .name = "svm",
    .refit = 1,
    .novelty = 1,
    .create = svm_create,
    .learn_day = lin_learn,
    .predict_topk = lin_predict,
    .rows_seen = lin_rows,
    .destroy = lin_destroy,
};
