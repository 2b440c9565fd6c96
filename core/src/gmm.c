/*
 * gmm.c - the class-conditional diagonal-covariance Gaussian mixture baseline:
 * per class, k-means++ and Lloyd initialization, then batch EM; class priors
 * from counts; prediction by Bayes' rule with log-sum-exp in double.
 *
 * Log densities by GEMM. For a diagonal Gaussian with mean mu and variances s,
 *
 *   log N(x) = -0.5 sum_j (x_j - mu_j)^2 / s_j - 0.5 sum_j log(2 pi s_j)
 *            = [x∘x | x] · [-0.5/s | mu/s] + c,   c = -0.5 sum_j (mu_j^2/s_j + log(2 pi s_j)),
 *
 * so a block of rows, laid out as Z = [x∘x | x] (rows x 2d), meets all
 * components at once in one SGEMM Z · Wᵀ with W = [-0.5/s | mu/s] (K x 2d).
 * The expansion cancels: |x|²/s and the cross term are much larger than their
 * difference when x is far from the origin. Rows are therefore shifted before
 * they enter Z: by the class mean while a class is fitted, and by the mean of
 * all training rows at prediction time (the model's parameters are stored in
 * that frame). The GEMM accumulates in float; constants, log-sum-exp,
 * responsibilities' masses and the M-step sums are in double.
 *
 * The M-step is the same GEMM turned around: Rᵀ · Z (K x 2d) gives, per
 * component, sum r x² and sum r x of the shifted rows; each block's float
 * product is added into double accumulators, and the variance is
 * E[x²] - E[x]² + reg_covar (clamped at reg_covar against rounding).
 * Memory is O(block·(K + d)) beyond the model; rows are never copied.
 *
 * Per class: components K_c = min(k_max, max(1, n_c / GMM_MIN_ROWS_PER_COMPONENT)),
 * and at most the number of distinct rows. k-means++ (D² seeding, one draw per
 * centre, distances in double) picks the centres; up to GMM_LLOYD_ITERS Lloyd
 * iterations (assignments by the same blocked GEMM) refine them; the hard
 * assignment gives the initial weights, means and variances, as
 * scikit-learn's init_params="kmeans". EM then iterates E and M steps until
 * the mean log-likelihood per row changes by less than tol (absolute), or
 * max_iter iterations. A component whose responsibility mass falls below
 * GMM_MIN_MASS rows is removed (its weight is negligible and its statistics
 * undefined); scikit-learn instead adds 10·eps to every mass.
 *
 * Warm start (opts.warm_start): a class the earlier fit knows, with the
 * same number of components, skips the initialization and starts EM from
 * that fit's parameters; with a growing set of rows (vmfsim's daily refits)
 * EM then stops after a few iterations. The result is a local optimum near
 * the earlier one rather than a fresh draw of k-means++, as scikit-learn's
 * GaussianMixture(warm_start=True) does.
 *
 * Determinism: each class draws from its own generator split, in class order,
 * from the seed; all sums run in a fixed order. Prediction ranks classes by
 * their log joint with the shared selector of topk.h (ties to the lower
 * class index, -1 beyond the known classes).
 */
#include "internal.h"
#include "topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GMM_BLOCK                  512
#define GMM_MIN_ROWS_PER_COMPONENT 10
#define GMM_LLOYD_ITERS            50
#define GMM_MIN_MASS               1e-6

static const double LOG_2PI = 1.8378770664093454836;

struct vmf_gmm_classifier {
    size_t d;
    size_t n_classes;
    size_t n_comp;           /* K, all classes */
    vmf_label_table *labels; /* owned */
    double *log_prior;       /* [C] */
    double *prior;           /* [C] */
    size_t *comp_start;      /* [C+1]: class c owns components comp_start[c] .. comp_start[c+1]-1 */
    size_t *n_iter;          /* [C] EM iterations run */
    int *converged;          /* [C] */
    double *loglik;          /* [C] final mean log-likelihood per row */
    double *weight;          /* [K] within-class weights */
    double *mean;            /* [K][d] original frame */
    double *var;             /* [K][d] */
    double *center;          /* [d] the frame origin of w and c0 (float values) */
    float *center_f;         /* [d] the same origin as float, for gmm_fill_z */
    float *w;                /* [K][2d] GEMM weights [-0.5/var | (mean - center)/var] */
    double *c0;              /* [K] log weight + Gaussian constant */
};

void vmf_gmm_opts_init(vmf_gmm_opts *o)
{
    o->k_max = 5;
    o->max_iter = 100;
    o->tol = 1e-4;
    o->reg_covar = 1e-6;
    o->seed = 42;
    o->warm_start = NULL;
}

void vmf_gmm_classifier_free(vmf_gmm_classifier *g)
{
    if (!g)
        return;
    vmf_label_table_free(g->labels);
    vmf__free(g->log_prior);
    vmf__free(g->prior);
    vmf__free(g->comp_start);
    vmf__free(g->n_iter);
    vmf__free(g->converged);
    vmf__free(g->loglik);
    vmf__free(g->weight);
    vmf__free(g->mean);
    vmf__free(g->var);
    vmf__free(g->center);
    vmf__free(g->center_f);
    vmf__free(g->w);
    vmf__free(g->c0);
    vmf__free(g);
}

/*
 * GEMM weights and constants of K components in the frame whose origin is
 * `origin`: w [K][2d], c0 [K]; mean, var [K][d] in the original frame.
 */
static void gmm_pack(size_t K, size_t d, const double *weight, const double *mean,
                     const double *var, const double *origin, float *w, double *c0)
{
    for (size_t k = 0; k < K; k++) {
        const double *m = mean + k * d, *v = var + k * d;
        float *wk = w + k * 2 * d;
        double q = 0.0, logdet = 0.0;
        for (size_t j = 0; j < d; j++) {
            double mj = m[j] - origin[j];
            wk[j] = (float)(-0.5 / v[j]);
            wk[d + j] = (float)(mj / v[j]);
            q += mj * mj / v[j];
            logdet += log(v[j]);
        }
        c0[k] = log(weight[k]) - 0.5 * ((double)d * LOG_2PI + logdet + q);
    }
}

/*
 * Z [rows][2d] = [(x - origin)² | x - origin] of the rows idx[first..first+rows)
 * (rows first.. when idx is NULL). The origin is float, so the loop stays in
 * float and vectorizes; the frames' double origins are these float values.
 */
static void gmm_fill_z(const float *x, size_t d, const size_t *idx, size_t first, size_t rows,
                       const float *origin, float *z)
{
    for (size_t i = 0; i < rows; i++) {
        const float *xi = x + (idx ? idx[first + i] : first + i) * d;
        float *zi = z + i * 2 * d;
        for (size_t j = 0; j < d; j++) {
            float v = xi[j] - origin[j];
            zi[j] = v * v;
            zi[d + j] = v;
        }
    }
}

/* ---- k-means++ and Lloyd on one class ---- */

/* Scratch shared by all classes of one fit, sized for the largest class and K. */
typedef struct fit_scratch {
    double *dist;     /* [n_max] */
    uint32_t *assign; /* [n_max] */
    size_t *counts;   /* [K] */
    double *sums;     /* [K][2d] */
    double *mass;     /* [K] */
    float *z;         /* [GMM_BLOCK][2d] */
    float *g;         /* [GMM_BLOCK][K] log densities, then responsibilities */
    float *w;         /* [K][2d] */
    float *stat;      /* [K][2d] per-block Rᵀ Z */
    double *c0;       /* [K] */
    double *lp;       /* [K] */
} fit_scratch;

static double sqdist_row(const float *x, const double *c, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++) {
        double t = (double)x[j] - c[j];
        s += t * t;
    }
    return s;
}

/*
 * Chooses up to K centres [K][d] among the rows idx [n] of x by D² seeding;
 * returns how many were chosen (fewer when the rows hold fewer distinct
 * points). dist [n] is scratch.
 */
static size_t kmeanspp(const float *x, size_t d, const size_t *idx, size_t n, size_t K,
                       vmf_rng *rng, double *centres, double *dist)
{
    size_t first = (size_t)vmf_rng_below(rng, n);
    for (size_t j = 0; j < d; j++)
        centres[j] = (double)x[idx[first] * d + j];
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        dist[i] = sqdist_row(x + idx[i] * d, centres, d);
        total += dist[i];
    }
    size_t chosen = 1;
    while (chosen < K && total > 0.0) {
        double u = vmf_rng_uniform(rng) * total, acc = 0.0;
        size_t pick = n;
        for (size_t i = 0; i < n; i++) {
            acc += dist[i];
            if (dist[i] > 0.0 && acc > u) {
                pick = i;
                break;
            }
        }
        if (pick == n) { /* u landed in the rounding slack of the sum: take the last candidate */
            for (size_t i = n; i-- > 0;)
                if (dist[i] > 0.0) {
                    pick = i;
                    break;
                }
        }
        double *c = centres + chosen * d;
        for (size_t j = 0; j < d; j++)
            c[j] = (double)x[idx[pick] * d + j];
        chosen++;
        total = 0.0;
        for (size_t i = 0; i < n; i++) {
            double t = sqdist_row(x + idx[i] * d, c, d);
            if (t < dist[i])
                dist[i] = t;
            total += dist[i];
        }
    }
    return chosen;
}

/*
 * Lloyd iterations from the given centres [K][d] until no assignment changes
 * or GMM_LLOYD_ITERS; assign [n] receives the final assignment. The
 * assignment step is a GEMM: argmin_k |x - c_k|² = argmin_k (|c_k|² - 2 x·c_k)
 * in the shifted frame (ties to the lower k). A centre that loses all its rows
 * stays where it was. Scratch: s->w (centres, float), s->c0 (|c|²),
 * s->sums, s->counts, s->z, s->g.
 */
static void lloyd(const float *x, size_t d, const size_t *idx, size_t n, size_t K,
                  const float *origin_f, const double *origin, double *centres, uint32_t *assign,
                  fit_scratch *s)
{
    for (size_t i = 0; i < n; i++)
        assign[i] = UINT32_MAX;
    for (int it = 0; it < GMM_LLOYD_ITERS; it++) {
        for (size_t k = 0; k < K; k++) {
            double nrm = 0.0;
            for (size_t j = 0; j < d; j++) {
                float c = (float)(centres[k * d + j] - origin[j]);
                s->w[k * d + j] = c;
                nrm += (double)c * c;
            }
            s->c0[k] = nrm;
        }
        size_t changed = 0;
        memset(s->sums, 0, K * d * sizeof *s->sums);
        memset(s->counts, 0, K * sizeof *s->counts);
        for (size_t b = 0; b < n; b += GMM_BLOCK) {
            size_t rows = n - b < GMM_BLOCK ? n - b : GMM_BLOCK;
            gmm_fill_z(x, d, idx, b, rows, origin_f, s->z);
            vmf__sgemm(0, 1, rows, K, d, 1.0f, s->z + d, 2 * d, s->w, d, 0.0f, s->g, K);
            for (size_t i = 0; i < rows; i++) {
                const float *gi = s->g + i * K;
                uint32_t best = 0;
                double bd = s->c0[0] - 2.0 * (double)gi[0];
                for (size_t k = 1; k < K; k++) {
                    double t = s->c0[k] - 2.0 * (double)gi[k];
                    if (t < bd) {
                        bd = t;
                        best = (uint32_t)k;
                    }
                }
                changed += (assign[b + i] != best);
                assign[b + i] = best;
                const float *zi = s->z + i * 2 * d + d;
                double *sk = s->sums + (size_t)best * d;
                for (size_t j = 0; j < d; j++)
                    sk[j] += (double)zi[j];
                s->counts[best]++;
            }
        }
        if (changed == 0)
            break;
        for (size_t k = 0; k < K; k++)
            if (s->counts[k] > 0)
                for (size_t j = 0; j < d; j++)
                    centres[k * d + j] = origin[j] + s->sums[k * d + j] / (double)s->counts[k];
    }
}

/* ---- EM on one class ---- */

typedef struct class_fit {
    size_t K;       /* components (on input: the most allowed) */
    double *weight; /* [K] */
    double *mean;   /* [K][d] */
    double *var;    /* [K][d] */
    size_t n_iter;
    int converged;
    double loglik;
} class_fit;

/*
 * Sets weights, means and variances from per-component masses [K] and sums
 * [K][2d] (sum r x² then sum r x, in the frame of `origin`), dropping
 * components with less than GMM_MIN_MASS. n is the class's rows.
 */
static void m_step(class_fit *f, size_t d, size_t n, const double *mass, const double *sums,
                   const double *origin, double reg_covar)
{
    size_t out = 0;
    for (size_t k = 0; k < f->K; k++) {
        if (mass[k] < GMM_MIN_MASS)
            continue;
        const double *s2 = sums + k * 2 * d, *s1 = s2 + d;
        for (size_t j = 0; j < d; j++) {
            double m = s1[j] / mass[k];
            double v = s2[j] / mass[k] - m * m;
            f->mean[out * d + j] = m + origin[j];
            f->var[out * d + j] = (v > 0.0 ? v : 0.0) + reg_covar;
        }
        f->weight[out] = mass[k] / (double)n;
        out++;
    }
    f->K = out;
}

/*
 * Fits one class's mixture to rows idx [n] of x; f->K on entry is the most
 * components allowed and must be >= 1.
 */
static void fit_class(const vmf_gmm_opts *o, const float *x, size_t d, const size_t *idx, size_t n,
                      vmf_rng *rng, const float *origin_f, const double *origin, class_fit *f,
                      fit_scratch *s, int warm)
{
    if (warm) /* f holds the earlier fit's components: straight to EM */
        goto em;
    /* Initialization: k-means++ then Lloyd, then one hard M-step. */
    f->K = kmeanspp(x, d, idx, n, f->K, rng, f->mean, s->dist);
    lloyd(x, d, idx, n, f->K, origin_f, origin, f->mean, s->assign, s);
    memset(s->mass, 0, f->K * sizeof *s->mass);
    memset(s->sums, 0, f->K * 2 * d * sizeof *s->sums);
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + idx[i] * d;
        size_t k = s->assign[i];
        double *s2 = s->sums + k * 2 * d, *s1 = s2 + d;
        for (size_t j = 0; j < d; j++) {
            double v = (double)xi[j] - origin[j];
            s2[j] += v * v;
            s1[j] += v;
        }
        s->mass[k] += 1.0;
    }
    m_step(f, d, n, s->mass, s->sums, origin, o->reg_covar);

em:;
    double prev = -INFINITY;
    f->converged = 0;
    f->n_iter = 0;
    f->loglik = -INFINITY;
    for (size_t it = 0; it < o->max_iter; it++) {
        size_t K = f->K;
        gmm_pack(K, d, f->weight, f->mean, f->var, origin, s->w, s->c0);
        memset(s->mass, 0, K * sizeof *s->mass);
        memset(s->sums, 0, K * 2 * d * sizeof *s->sums);
        double ll = 0.0;
        for (size_t b = 0; b < n; b += GMM_BLOCK) {
            size_t rows = n - b < GMM_BLOCK ? n - b : GMM_BLOCK;
            gmm_fill_z(x, d, idx, b, rows, origin_f, s->z);
            vmf__sgemm(0, 1, rows, K, 2 * d, 1.0f, s->z, 2 * d, s->w, 2 * d, 0.0f, s->g, K);
            for (size_t i = 0; i < rows; i++) {
                /* log-sum-exp and responsibilities with one exp per component. */
                float *gi = s->g + i * K;
                double mx = -INFINITY, sum = 0.0;
                for (size_t k = 0; k < K; k++) {
                    s->lp[k] = s->c0[k] + (double)gi[k];
                    if (s->lp[k] > mx)
                        mx = s->lp[k];
                }
                for (size_t k = 0; k < K; k++) {
                    s->lp[k] = exp(s->lp[k] - mx);
                    sum += s->lp[k];
                }
                ll += mx + log(sum);
                for (size_t k = 0; k < K; k++) {
                    double r = s->lp[k] / sum;
                    s->mass[k] += r;
                    gi[k] = (float)r;
                }
            }
            /* stat [K][2d] = Rᵀ · Z for this block, added into the double sums. */
            vmf__sgemm(1, 0, K, 2 * d, rows, 1.0f, s->g, K, s->z, 2 * d, 0.0f, s->stat, 2 * d);
            for (size_t t = 0; t < K * 2 * d; t++)
                s->sums[t] += (double)s->stat[t];
        }
        ll /= (double)n;
        m_step(f, d, n, s->mass, s->sums, origin, o->reg_covar);
        f->n_iter = it + 1;
        f->loglik = ll;
        if (fabs(ll - prev) < o->tol) {
            f->converged = 1;
            break;
        }
        prev = ll;
    }
}

/* ---- fit ---- */

static int check_opts(const vmf_gmm_opts *o)
{
    if (o->k_max == 0 || o->k_max > 4096)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: k_max = %zu is outside [1, 4096]",
                          o->k_max);
    if (o->max_iter == 0)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: max_iter must be at least 1");
    if (!(o->tol >= 0.0) || !isfinite(o->tol))
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: tol = %g must be finite and >= 0",
                          o->tol);
    if (!(o->reg_covar > 0.0) || !isfinite(o->reg_covar))
        return vmf__error(VMF_EINVAL,
                          "vmf_gmm_classifier_fit: reg_covar = %g must be finite and > 0",
                          o->reg_covar);
    return VMF_OK;
}

static void scratch_free(fit_scratch *s)
{
    vmf__free(s->dist);
    vmf__free(s->assign);
    vmf__free(s->counts);
    vmf__free(s->sums);
    vmf__free(s->mass);
    vmf__free(s->z);
    vmf__free(s->g);
    vmf__free(s->w);
    vmf__free(s->stat);
    vmf__free(s->c0);
    vmf__free(s->lp);
}

int vmf_gmm_classifier_fit(const vmf_gmm_opts *o, const float *x, size_t n, size_t d,
                           const vmf_labels *y, vmf_gmm_classifier **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: out is NULL");
    *out = NULL;
    VMF__OPTS_OR_DEFAULTS(vmf_gmm_opts, o);
    int rc = check_opts(o);
    if (rc)
        return rc;
    if (!y)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: labels are NULL");
    if (n == 0)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: no rows (n = 0)");
    if (d == 0)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: dimension d = 0");
    if (y->n != n)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_fit: %zu labels for %zu rows", y->n, n);
    if ((rc = vmf_rows_check(x, n, d)) != VMF_OK)
        return vmf__error_wrap(rc, "vmf_gmm_classifier_fit", NULL);
    size_t nd, n2d;
    if (vmf__mul_overflow(n, d, &nd) || vmf__mul_overflow(d, 2 * o->k_max * GMM_BLOCK, &n2d))
        return vmf__error(VMF_ENOMEM, "vmf_gmm_classifier_fit: %zu x %zu rows overflow", n, d);

    vmf_gmm_classifier *g = vmf__calloc(1, sizeof *g);
    int32_t *cls = NULL;
    size_t *order = NULL, *start = NULL;
    fit_scratch s;
    memset(&s, 0, sizeof s);
    double *cmean = NULL;
    float *cmean_f = NULL;
    class_fit *fits = NULL;
    size_t n_fits = 0, C = 0, K = o->k_max, total = 0, n_max = 0;
    vmf_rng rng;
    if (!g)
        goto nomem;
    g->d = d;
    if ((rc = vmf_label_table_new(&g->labels)) != VMF_OK)
        goto fail;
    cls = vmf__malloc_array(n, sizeof *cls);
    if (!cls)
        goto nomem;
    if ((rc = vmf_label_table_intern(g->labels, y, cls)) != VMF_OK) {
        rc = vmf__error_wrap(rc, "vmf_gmm_classifier_fit", NULL);
        goto fail;
    }
    C = vmf_label_table_size(g->labels);
    g->n_classes = C;

    /* Rows grouped by class (counting sort, stable): class c is order[start[c] .. start[c+1]). */
    order = vmf__malloc_array(n, sizeof *order);
    start = vmf__calloc(C + 1, sizeof *start);
    g->log_prior = vmf__malloc_array(C, sizeof *g->log_prior);
    g->prior = vmf__malloc_array(C, sizeof *g->prior);
    g->comp_start = vmf__calloc(C + 1, sizeof *g->comp_start);
    g->n_iter = vmf__calloc(C, sizeof *g->n_iter);
    g->converged = vmf__calloc(C, sizeof *g->converged);
    g->loglik = vmf__calloc(C, sizeof *g->loglik);
    g->center = vmf__calloc(d, sizeof *g->center);
    fits = vmf__calloc(C, sizeof *fits);
    cmean = vmf__malloc_array(d, sizeof *cmean);
    cmean_f = vmf__malloc_array(d, sizeof *cmean_f);
    g->center_f = vmf__malloc_array(d, sizeof *g->center_f);
    if (!order || !start || !g->log_prior || !g->prior || !g->comp_start || !g->n_iter ||
        !g->converged || !g->loglik || !g->center || !fits || !cmean || !cmean_f || !g->center_f)
        goto nomem;
    n_fits = C;
    for (size_t i = 0; i < n; i++)
        start[cls[i] + 1]++;
    for (size_t c = 0; c < C; c++) {
        size_t nc = start[c + 1];
        if (nc > n_max)
            n_max = nc;
        g->prior[c] = (double)nc / (double)n;
        g->log_prior[c] = log(g->prior[c]);
        start[c + 1] += start[c];
    }
    {
        size_t *fill = vmf__malloc_array(C, sizeof *fill);
        if (!fill)
            goto nomem;
        memcpy(fill, start, C * sizeof *fill);
        for (size_t i = 0; i < n; i++)
            order[fill[cls[i]]++] = i;
        vmf__free(fill);
    }
    /* The frame of the final model: the mean of all rows. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            g->center[j] += (double)x[i * d + j];
    for (size_t j = 0; j < d; j++) {
        g->center_f[j] = (float)(g->center[j] / (double)n);
        g->center[j] = (double)g->center_f[j];
    }

    s.dist = vmf__malloc_array(n_max, sizeof *s.dist);
    s.assign = vmf__malloc_array(n_max, sizeof *s.assign);
    s.counts = vmf__malloc_array(K, sizeof *s.counts);
    s.sums = vmf__malloc_array(K * 2 * d, sizeof *s.sums);
    s.mass = vmf__malloc_array(K, sizeof *s.mass);
    s.z = vmf__malloc_array((size_t)GMM_BLOCK * 2 * d, sizeof *s.z);
    s.g = vmf__malloc_array((size_t)GMM_BLOCK * K, sizeof *s.g);
    s.w = vmf__malloc_array(K * 2 * d, sizeof *s.w);
    s.stat = vmf__malloc_array(K * 2 * d, sizeof *s.stat);
    s.c0 = vmf__malloc_array(K, sizeof *s.c0);
    s.lp = vmf__malloc_array(K, sizeof *s.lp);
    if (!s.dist || !s.assign || !s.counts || !s.sums || !s.mass || !s.z || !s.g || !s.w ||
        !s.stat || !s.c0 || !s.lp)
        goto nomem;

    vmf_rng_seed(&rng, o->seed);
    for (size_t c = 0; c < C; c++) {
        size_t nc = start[c + 1] - start[c];
        const size_t *idx = order + start[c];
        size_t kc = nc / GMM_MIN_ROWS_PER_COMPONENT;
        kc = kc < 1 ? 1 : kc > K ? K : kc;
        class_fit *f = fits + c;
        f->K = kc;
        f->weight = vmf__malloc_array(kc, sizeof *f->weight);
        f->mean = vmf__malloc_array(kc * d, sizeof *f->mean);
        f->var = vmf__malloc_array(kc * d, sizeof *f->var);
        if (!f->weight || !f->mean || !f->var)
            goto nomem;
        /* Each class is fitted in its own frame, centred on its mean (see the file comment). */
        memset(cmean, 0, d * sizeof *cmean);
        for (size_t i = 0; i < nc; i++)
            for (size_t j = 0; j < d; j++)
                cmean[j] += (double)x[idx[i] * d + j];
        for (size_t j = 0; j < d; j++) {
            cmean_f[j] = (float)(cmean[j] / (double)nc);
            cmean[j] = (double)cmean_f[j];
        }
        /* A warm start from the earlier fit's components of the same label, if it has kc. */
        int warm = 0;
        const vmf_gmm_classifier *w = o->warm_start;
        if (w && w->d == d &&
            vmf_label_table_is_str(w->labels) == vmf_label_table_is_str(g->labels)) {
            int64_t li = 0;
            const char *ls = NULL;
            vmf_labels one = {.n = 1};
            if (vmf_label_table_is_str(g->labels)) {
                ls = vmf_label_table_str(g->labels, c);
                one.strs = &ls;
            } else {
                li = vmf_label_table_int(g->labels, c);
                one.ints = &li;
            }
            int32_t pc = -1;
            if (vmf_label_table_lookup(w->labels, &one, &pc) == VMF_OK && pc >= 0 &&
                w->comp_start[pc + 1] - w->comp_start[pc] == kc) {
                size_t k0 = w->comp_start[pc];
                memcpy(f->weight, w->weight + k0, kc * sizeof *f->weight);
                memcpy(f->mean, w->mean + k0 * d, kc * d * sizeof *f->mean);
                memcpy(f->var, w->var + k0 * d, kc * d * sizeof *f->var);
                warm = 1;
            }
        }
        vmf_rng crng;
        vmf_rng_split(&rng, &crng);
        fit_class(o, x, d, idx, nc, &crng, cmean_f, cmean, f, &s, warm);
        g->n_iter[c] = f->n_iter;
        g->converged[c] = f->converged;
        g->loglik[c] = f->loglik;
        total += f->K;
    }

    /* Gather the classes' components into the model, packed in the common frame. */
    g->n_comp = total;
    g->weight = vmf__malloc_array(total, sizeof *g->weight);
    g->mean = vmf__malloc_array(total * d, sizeof *g->mean);
    g->var = vmf__malloc_array(total * d, sizeof *g->var);
    g->w = vmf__malloc_array(total * 2 * d, sizeof *g->w);
    g->c0 = vmf__malloc_array(total, sizeof *g->c0);
    if (!g->weight || !g->mean || !g->var || !g->w || !g->c0)
        goto nomem;
    for (size_t c = 0, k = 0; c < C; c++) {
        class_fit *f = fits + c;
        g->comp_start[c] = k;
        memcpy(g->weight + k, f->weight, f->K * sizeof *g->weight);
        memcpy(g->mean + k * d, f->mean, f->K * d * sizeof *g->mean);
        memcpy(g->var + k * d, f->var, f->K * d * sizeof *g->var);
        k += f->K;
        g->comp_start[c + 1] = k;
    }
    gmm_pack(total, d, g->weight, g->mean, g->var, g->center, g->w, g->c0);
    rc = VMF_OK;
    goto done;

nomem:
    rc =
        vmf__error(VMF_ENOMEM, "vmf_gmm_classifier_fit: out of memory (%zu rows x %zu dims)", n, d);
fail:
    vmf_gmm_classifier_free(g);
    g = NULL;
done:
    for (size_t c = 0; c < n_fits; c++) {
        vmf__free(fits[c].weight);
        vmf__free(fits[c].mean);
        vmf__free(fits[c].var);
    }
    vmf__free(fits);
    vmf__free(cls);
    vmf__free(order);
    vmf__free(start);
    vmf__free(cmean);
    vmf__free(cmean_f);
    scratch_free(&s);
    *out = g;
    return rc;
}

/* ---- prediction ---- */

int vmf_gmm_classifier_predict_topk(const vmf_gmm_classifier *g, const float *x, size_t n, size_t d,
                                    size_t k, int32_t *classes, double *proba)
{
    const char *fn = "vmf_gmm_classifier_predict_topk";
    if (!g)
        return vmf__error(VMF_EINVAL, "%s: model is NULL", fn);
    int rc = vmf__topk_check(fn, g->d, x, n, d, k, classes);
    if (rc != VMF_OK || n == 0)
        return rc;

    size_t C = g->n_classes, K = g->n_comp, kc_max = 0;
    for (size_t c = 0; c < C; c++) {
        size_t kc = g->comp_start[c + 1] - g->comp_start[c];
        if (kc > kc_max)
            kc_max = kc;
    }
    const size_t B = 256;
    float *z = vmf__malloc_array(B * 2, d * sizeof *z);
    float *gb = vmf__malloc_array(B, K * sizeof *gb);
    double *lj = vmf__malloc_array(C, sizeof *lj);
    double *lp = vmf__malloc_array(kc_max, sizeof *lp);
    if (!z || !gb || !lj || !lp) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory (%zu classes, %zu components)", fn, C, K);
        goto done;
    }
    for (size_t b = 0; b < n; b += B) {
        size_t rows = n - b < B ? n - b : B;
        gmm_fill_z(x, d, NULL, b, rows, g->center_f, z);
        vmf__sgemm(0, 1, rows, K, 2 * d, 1.0f, z, 2 * d, g->w, 2 * d, 0.0f, gb, K);
        for (size_t i = 0; i < rows; i++) {
            const float *gi = gb + i * K;
            for (size_t c = 0; c < C; c++) {
                size_t k0 = g->comp_start[c], kc = g->comp_start[c + 1] - k0;
                for (size_t t = 0; t < kc; t++)
                    lp[t] = g->c0[k0 + t] + (double)gi[k0 + t];
                lj[c] = g->log_prior[c] + vmf__logsumexp(lp, kc);
            }
            double norm = vmf__logsumexp(lj, C);
            int32_t *out_c = classes + (b + i) * k;
            size_t m = vmf__topk_scores(lj, C, k, out_c);
            double *out_p = proba ? proba + (b + i) * k : NULL;
            for (size_t j = 0; out_p && j < k; j++)
                out_p[j] = j < m ? exp(lj[out_c[j]] - norm) : 0.0;
        }
    }
    rc = VMF_OK;
done:
    vmf__free(z);
    vmf__free(gb);
    vmf__free(lj);
    vmf__free(lp);
    return rc;
}

/* ---- accessors ---- */

const vmf_label_table *vmf_gmm_classifier_labels(const vmf_gmm_classifier *g)
{
    return g ? g->labels : NULL;
}

size_t vmf_gmm_classifier_dim(const vmf_gmm_classifier *g)
{
    return g ? g->d : 0;
}

size_t vmf_gmm_classifier_n_classes(const vmf_gmm_classifier *g)
{
    return g ? g->n_classes : 0;
}

size_t vmf_gmm_classifier_class_n_components(const vmf_gmm_classifier *g, size_t i)
{
    return g && i < g->n_classes ? g->comp_start[i + 1] - g->comp_start[i] : 0;
}

double vmf_gmm_classifier_class_prior(const vmf_gmm_classifier *g, size_t i)
{
    return g && i < g->n_classes ? g->prior[i] : 0.0;
}

const double *vmf_gmm_classifier_class_weights(const vmf_gmm_classifier *g, size_t i)
{
    return g && i < g->n_classes ? g->weight + g->comp_start[i] : NULL;
}

const double *vmf_gmm_classifier_class_means(const vmf_gmm_classifier *g, size_t i)
{
    return g && i < g->n_classes ? g->mean + g->comp_start[i] * g->d : NULL;
}

const double *vmf_gmm_classifier_class_variances(const vmf_gmm_classifier *g, size_t i)
{
    return g && i < g->n_classes ? g->var + g->comp_start[i] * g->d : NULL;
}

int vmf_gmm_classifier_class_fit_info(const vmf_gmm_classifier *g, size_t i, size_t *n_iter,
                                      int *converged, double *loglik)
{
    if (!g || i >= g->n_classes)
        return vmf__error(VMF_EINVAL, "vmf_gmm_classifier_class_fit_info: no class %zu", i);
    if (n_iter)
        *n_iter = g->n_iter[i];
    if (converged)
        *converged = g->converged[i];
    if (loglik)
        *loglik = g->loglik[i];
    return VMF_OK;
}
