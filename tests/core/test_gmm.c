/*
 * test_gmm.c - the diagonal-covariance GMM classifier: closed-form parameters
 * of a one-component class, recovered mixtures, the component-count rule,
 * posteriors checked against an independent double-precision evaluation,
 * top-k padding, string labels, determinism, bad input, injected allocation
 * failures, and accuracy on the real fmnist-cce64 embeddings.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* n rows of a k-component vMF mixture in dimension d; labels = component. */
static void mixture(uint64_t seed, size_t n, size_t d, size_t k, double kappa, float **x,
                    int64_t **y)
{
    *x = malloc(n * d * sizeof **x);
    int32_t *comp = malloc(n * sizeof *comp);
    *y = malloc(n * sizeof **y);
    assert_non_null(*x);
    vmf_test_mixture_data(seed, n, d, k, kappa, kappa, *x, comp, NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        (*y)[i] = comp[i];
    free(comp);
}

/* A classifier fitted with the default options on the first ntr rows of x and y. */
static vmf_gmm_classifier *fit_first(const float *x, const int64_t *y, size_t ntr, size_t d)
{
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_labels lab = {ntr, y, NULL};
    vmf_gmm_classifier *g;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, ntr, d, &lab, &g));
    return g;
}

/* Top-1 accuracy of predictions (indices into the model's table) against integer labels. */
static double top1_accuracy(const vmf_label_table *t, const int32_t *pred, size_t k,
                            const int64_t *y, size_t n)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += pred[i * k] >= 0 && vmf_label_table_int(t, (size_t)pred[i * k]) == y[i];
    return (double)hits / (double)n;
}

/*
 * log of sum_k w_k N(x; mu_k, diag var_k) + log prior, in double, directly
 * from the model's accessors: the reference for the GEMM path.
 */
static double class_log_joint(const vmf_gmm_classifier *g, size_t c, const float *x, size_t d)
{
    size_t K = vmf_gmm_classifier_class_n_components(g, c);
    const double *w = vmf_gmm_classifier_class_weights(g, c);
    const double *mu = vmf_gmm_classifier_class_means(g, c);
    const double *var = vmf_gmm_classifier_class_variances(g, c);
    double lp[16] = {0};
    assert_true(K >= 1 && K <= 16);
    for (size_t k = 0; k < K; k++) {
        double s = log(w[k]);
        for (size_t j = 0; j < d; j++) {
            double t = (double)x[j] - mu[k * d + j];
            s -=
                0.5 * (t * t / var[k * d + j] + log(2.0 * 3.14159265358979323846 * var[k * d + j]));
        }
        lp[k] = s;
    }
    double mx = lp[0];
    for (size_t k = 1; k < K; k++)
        mx = lp[k] > mx ? lp[k] : mx;
    double acc = 0.0;
    for (size_t k = 0; k < K; k++)
        acc += exp(lp[k] - mx);
    return log(vmf_gmm_classifier_class_prior(g, c)) + mx + log(acc);
}

/* ---- tests ---- */

static void test_single_component_is_closed_form(void **state)
{
    (void)state;
    /* With one component EM has a fixed point at the sample mean and (biased) variance. */
    enum { N = 3000, D = 12 };
    float *x;
    int64_t *y;
    mixture(11, N, D, 1, 40.0, &x, &y);
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    o.k_max = 1;
    o.reg_covar = 1e-4;
    vmf_gmm_classifier *g;
    vmf_labels lab = {N, y, NULL};
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g));
    assert_int_equal(vmf_gmm_classifier_n_classes(g), 1);
    assert_int_equal(vmf_gmm_classifier_class_n_components(g, 0), 1);
    assert_int_equal(vmf_gmm_classifier_dim(g), D);
    vmf_assert_close(vmf_gmm_classifier_class_prior(g, 0), 1.0, 0, 1e-15);
    vmf_assert_close(vmf_gmm_classifier_class_weights(g, 0)[0], 1.0, 1e-6, 0);
    const double *mu = vmf_gmm_classifier_class_means(g, 0);
    const double *var = vmf_gmm_classifier_class_variances(g, 0);
    for (size_t j = 0; j < D; j++) {
        double m = 0.0, v = 0.0;
        for (size_t i = 0; i < N; i++)
            m += x[i * D + j];
        m /= N;
        for (size_t i = 0; i < N; i++)
            v += (x[i * D + j] - m) * (x[i * D + j] - m);
        v /= N;
        vmf_assert_close(mu[j], m, 0, 1e-6);
        vmf_assert_close(var[j], v + 1e-4, 1e-5, 0);
    }
    size_t it;
    int conv;
    double ll;
    vmf_assert_ok(vmf_gmm_classifier_class_fit_info(g, 0, &it, &conv, &ll));
    assert_true(conv);
    assert_true(it <= 3); /* the first M-step already lands on the fixed point */
    assert_true(isfinite(ll));
    assert_int_equal(vmf_gmm_classifier_class_fit_info(g, 1, &it, &conv, &ll), VMF_EINVAL);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

static void test_recovers_two_modes_of_a_class(void **state)
{
    (void)state;
    /* One class made of two tight, far-apart modes with weights 0.3 / 0.7. */
    enum { N = 4000, D = 8 };
    float *x = malloc(N * D * sizeof *x);
    int64_t *y = calloc(N, sizeof *y);
    float mu[2][D] = {{1, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 0, 0, 0, 0}};
    vmf_rng rng;
    vmf_rng_seed(&rng, 5);
    size_t n0 = 0;
    for (size_t i = 0; i < N; i++) {
        int c = i % 10 < 3 ? 0 : 1;
        n0 += c == 0;
        vmf_assert_ok(vmf_sample_vmf(mu[c], D, 500.0, 1, &rng, x + i * D));
    }
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    o.k_max = 2;
    vmf_labels lab = {N, y, NULL};
    vmf_gmm_classifier *g;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g));
    assert_int_equal(vmf_gmm_classifier_class_n_components(g, 0), 2);
    const double *w = vmf_gmm_classifier_class_weights(g, 0);
    const double *m = vmf_gmm_classifier_class_means(g, 0);
    const double *v = vmf_gmm_classifier_class_variances(g, 0);
    size_t a = m[0] > m[3] ? 0 : 1; /* the component near e_0 */
    vmf_assert_close(w[a], (double)n0 / N, 0, 1e-6);
    vmf_assert_close(w[1 - a], 1.0 - (double)n0 / N, 0, 1e-6);
    /* Means near the modes (a vMF with kappa 500 sits at r = A_8(500) ~ 0.993). */
    vmf_assert_close(m[a * D + 0], 0.993, 0, 0.003);
    vmf_assert_close(m[(1 - a) * D + 3], 0.993, 0, 0.003);
    /* Tangent variance of vMF(kappa) per coordinate ~ 1/kappa. */
    vmf_assert_close(v[a * D + 5], 1.0 / 500, 0.15, 0);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

static void test_component_count_rule_and_priors(void **state)
{
    (void)state;
    /* Classes of 5, 25 and 400 rows: 1, 2 and k_max = 5 components (10 rows per component). */
    enum { D = 6 };
    size_t sizes[3] = {5, 25, 400}, n = 430;
    float *x = malloc(n * D * sizeof *x);
    int64_t *y = malloc(n * sizeof *y);
    vmf_test_mixture_data(3, n, D, 1, 5.0, 5.0, x, NULL, NULL, NULL, NULL);
    for (size_t i = 0, c = 0, left = sizes[0]; i < n; i++) {
        while (left == 0)
            left = sizes[++c];
        y[i] = (int64_t)(100 + c);
        left--;
    }
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_labels lab = {n, y, NULL};
    vmf_gmm_classifier *g;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n, D, &lab, &g));
    size_t want[3] = {1, 2, 5};
    for (size_t c = 0; c < 3; c++) {
        assert_int_equal(vmf_label_table_int(vmf_gmm_classifier_labels(g), c), 100 + (int64_t)c);
        assert_int_equal(vmf_gmm_classifier_class_n_components(g, c), want[c]);
        vmf_assert_close(vmf_gmm_classifier_class_prior(g, c), (double)sizes[c] / n, 0, 1e-15);
        double ws = 0.0;
        for (size_t k = 0; k < want[c]; k++)
            ws += vmf_gmm_classifier_class_weights(g, c)[k];
        vmf_assert_close(ws, 1.0, 0, 1e-12);
        for (size_t t = 0; t < want[c] * D; t++)
            assert_true(vmf_gmm_classifier_class_variances(g, c)[t] >= o.reg_covar);
    }
    assert_int_equal(vmf_gmm_classifier_class_n_components(g, 3), 0);
    assert_null(vmf_gmm_classifier_class_means(g, 3));
    vmf_gmm_classifier_free(g);
    /* A class whose rows are all one point gets one component however many rows it has. */
    for (size_t i = 1; i < 50; i++)
        memcpy(x + i * D, x, D * sizeof *x);
    for (size_t i = 0; i < 50; i++)
        y[i] = 7;
    lab.n = 50;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, 50, D, &lab, &g));
    assert_int_equal(vmf_gmm_classifier_class_n_components(g, 0), 1);
    vmf_assert_close(vmf_gmm_classifier_class_variances(g, 0)[0], o.reg_covar, 1e-9, 0);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

static void test_separated_classes_and_posteriors(void **state)
{
    (void)state;
    /* 6 well-separated classes in d = 16; train on 3000 rows, score 2000 fresh ones. */
    enum { NTR = 3000, NTE = 2000, N = NTR + NTE, D = 16, C = 6, K = 8 };
    float *x;
    int64_t *y;
    mixture(21, N, D, C, 150.0, &x, &y);
    vmf_gmm_classifier *g = fit_first(x, y, NTR, D);
    assert_int_equal(vmf_gmm_classifier_n_classes(g), C);
    int32_t *cls = malloc(NTE * K * sizeof *cls);
    double *p = malloc(NTE * K * sizeof *p);
    const float *xt = x + NTR * D;
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g, xt, NTE, D, K, cls, p));
    const vmf_label_table *t = vmf_gmm_classifier_labels(g);
    assert_true(top1_accuracy(t, cls, K, y + NTR, NTE) > 0.99);
    for (size_t i = 0; i < NTE; i++) {
        /* k = 8 > 6 classes: the last two slots are padding. */
        assert_int_equal(cls[i * K + 6], -1);
        assert_int_equal(cls[i * K + 7], -1);
        assert_true(p[i * K + 6] == 0.0 && p[i * K + 7] == 0.0);
    }
    /* Smaller k: the same ranking, truncated. */
    int32_t *c2 = malloc(NTE * 2 * sizeof *c2);
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g, xt, NTE, D, 2, c2, NULL));
    for (size_t i = 0; i < NTE; i++) {
        assert_int_equal(c2[i * 2], cls[i * K]);
        assert_int_equal(c2[i * 2 + 1], cls[i * K + 1]);
    }
    /* n = 0 predicts nothing and succeeds. */
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g, xt, 0, D, 2, NULL, NULL));
    free(c2);
    free(cls);
    free(p);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

static void test_posteriors_match_direct_evaluation(void **state)
{
    (void)state;
    /*
     * Overlapping classes, so that posteriors are far from 0 and 1: the GEMM
     * path (float products in a shifted frame) against a direct double
     * evaluation from the fitted parameters.
     */
    enum { NTR = 2000, NTE = 500, N = NTR + NTE, D = 8, C = 4 };
    float *x;
    int64_t *y;
    mixture(31, N, D, C, 6.0, &x, &y);
    vmf_gmm_classifier *g = fit_first(x, y, NTR, D);
    assert_int_equal(vmf_gmm_classifier_n_classes(g), C);
    int32_t cls[NTE * C];
    double p[NTE * C], ref[C];
    const float *xt = x + NTR * D;
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g, xt, NTE, D, C, cls, p));
    size_t uncertain = 0;
    for (size_t i = 0; i < NTE; i++) {
        double sum = 0.0, mx = -INFINITY, psum = 0.0;
        for (size_t c = 0; c < C; c++) {
            ref[c] = class_log_joint(g, c, xt + i * D, D);
            mx = ref[c] > mx ? ref[c] : mx;
        }
        for (size_t c = 0; c < C; c++)
            sum += exp(ref[c] - mx);
        for (size_t j = 0; j < C; j++) {
            if (j > 0)
                assert_true(p[i * C + j] <= p[i * C + j - 1]);
            psum += p[i * C + j];
            double want = exp(ref[cls[i * C + j]] - mx) / sum;
            vmf_assert_close(p[i * C + j], want, 2e-5, 1e-12);
        }
        vmf_assert_close(psum, 1.0, 0, 1e-12);
        uncertain += p[i * C] < 0.9;
    }
    assert_true(uncertain > NTE / 10);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

static void test_string_labels_and_determinism(void **state)
{
    (void)state;
    enum { N = 1200, D = 10, C = 3 };
    float *x;
    int64_t *y;
    mixture(8, N, D, C, 80.0, &x, &y);
    static const char *names[C] = {"shirt", "bag", "ankle boot"};
    const char **s = malloc(N * sizeof *s);
    for (size_t i = 0; i < N; i++)
        s[i] = names[y[i]];
    vmf_labels lab = {N, NULL, s};
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    o.seed = 1234;
    vmf_gmm_classifier *g1, *g2, *g3;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g1));
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g2));
    o.seed = 99;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g3));
    const vmf_label_table *t = vmf_gmm_classifier_labels(g1);
    assert_true(vmf_label_table_is_str(t));
    int32_t *p1 = malloc(N * 2 * sizeof *p1), *p2 = malloc(N * 2 * sizeof *p2);
    double *q1 = malloc(N * 2 * sizeof *q1), *q2 = malloc(N * 2 * sizeof *q2);
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g1, x, N, D, 2, p1, q1));
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g2, x, N, D, 2, p2, q2));
    assert_memory_equal(p1, p2, N * 2 * sizeof *p1);
    assert_memory_equal(q1, q2, N * 2 * sizeof *q1);
    size_t hits = 0;
    for (size_t i = 0; i < N; i++)
        hits += strcmp(vmf_label_table_str(t, (size_t)p1[i * 2]), s[i]) == 0;
    assert_true(hits > 0.99 * N);
    for (size_t c = 0; c < C; c++) {
        size_t kc = vmf_gmm_classifier_class_n_components(g1, c);
        assert_int_equal(kc, vmf_gmm_classifier_class_n_components(g2, c));
        assert_memory_equal(vmf_gmm_classifier_class_means(g1, c),
                            vmf_gmm_classifier_class_means(g2, c), kc * D * sizeof(double));
    }
    /* Another seed starts elsewhere: some parameter differs. */
    int differs = 0;
    for (size_t c = 0; c < C; c++) {
        size_t kc = vmf_gmm_classifier_class_n_components(g1, c);
        if (kc != vmf_gmm_classifier_class_n_components(g3, c) ||
            memcmp(vmf_gmm_classifier_class_means(g1, c), vmf_gmm_classifier_class_means(g3, c),
                   kc * D * sizeof(double)) != 0)
            differs = 1;
    }
    assert_true(differs);
    free(p1);
    free(p2);
    free(q1);
    free(q2);
    free(s);
    vmf_gmm_classifier_free(g1);
    vmf_gmm_classifier_free(g2);
    vmf_gmm_classifier_free(g3);
    free(x);
    free(y);
}

static void test_bad_input(void **state)
{
    (void)state;
    enum { N = 40, D = 4 };
    float *x;
    int64_t *y;
    mixture(2, N, D, 2, 20.0, &x, &y);
    vmf_labels lab = {N, y, NULL};
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_gmm_classifier *g = (vmf_gmm_classifier *)&o; /* must be reset to NULL on failure */
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, 0, D, &lab, &g), VMF_EINVAL);
    assert_null(g);
    assert_non_null(strstr(vmf_last_error(), "n = 0"));
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, 0, &lab, &g), VMF_EINVAL);
    assert_int_equal(vmf_gmm_classifier_fit(&o, NULL, N, D, &lab, &g), VMF_EINVAL);
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, NULL, &g), VMF_EINVAL);
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, &lab, NULL), VMF_EINVAL);
    vmf_labels short_lab = {N - 1, y, NULL};
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, &short_lab, &g), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "39 labels for 40 rows"));
    vmf_labels no_lab = {N, NULL, NULL};
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, &no_lab, &g), VMF_EINVAL);
    float keep = x[7 * D + 1];
    x[7 * D + 1] = NAN;
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "7"));
    x[7 * D + 1] = keep;
    float row[D];
    memcpy(row, x + 3 * D, sizeof row);
    memset(x + 3 * D, 0, sizeof row);
    assert_int_equal(vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g), VMF_EINVAL);
    memcpy(x + 3 * D, row, sizeof row);
    vmf_gmm_opts bad = o;
    bad.k_max = 0;
    assert_int_equal(vmf_gmm_classifier_fit(&bad, x, N, D, &lab, &g), VMF_EINVAL);
    bad = o;
    bad.reg_covar = 0.0;
    assert_int_equal(vmf_gmm_classifier_fit(&bad, x, N, D, &lab, &g), VMF_EINVAL);
    bad = o;
    bad.tol = NAN;
    assert_int_equal(vmf_gmm_classifier_fit(&bad, x, N, D, &lab, &g), VMF_EINVAL);
    bad = o;
    bad.max_iter = 0;
    assert_int_equal(vmf_gmm_classifier_fit(&bad, x, N, D, &lab, &g), VMF_EINVAL);
    assert_null(g);

    /* NULL options mean the defaults. */
    vmf_assert_ok(vmf_gmm_classifier_fit(NULL, x, N, D, &lab, &g));
    int32_t c[2 * N];
    double p[2 * N];
    assert_int_equal(vmf_gmm_classifier_predict_topk(g, x, N, D + 1, 2, c, p), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "dimension 5"));
    assert_int_equal(vmf_gmm_classifier_predict_topk(g, x, N, D, 0, c, p), VMF_EINVAL);
    assert_int_equal(vmf_gmm_classifier_predict_topk(g, x, N, D, 2, NULL, p), VMF_EINVAL);
    assert_int_equal(vmf_gmm_classifier_predict_topk(NULL, x, N, D, 2, c, p), VMF_EINVAL);
    x[0] = INFINITY;
    assert_int_equal(vmf_gmm_classifier_predict_topk(g, x, N, D, 2, c, p), VMF_EINVAL);
    vmf_gmm_classifier_free(g);
    vmf_gmm_classifier_free(NULL);
    free(x);
    free(y);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    enum { N = 300, D = 5 };
    float *x;
    int64_t *y;
    mixture(4, N, D, 3, 30.0, &x, &y);
    vmf_labels lab = {N, y, NULL};
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_gmm_classifier *g = NULL;
    long fail = 0;
    int rc;
    for (;; fail++) {
        vmf_debug_fail_alloc_after(fail);
        rc = vmf_gmm_classifier_fit(&o, x, N, D, &lab, &g);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK)
            break;
        assert_int_equal(rc, VMF_ENOMEM);
        assert_null(g);
        assert_true(fail < 1000);
    }
    assert_true(fail > 5); /* the walk did cover the allocations */
    int32_t c[N * 2];
    for (fail = 0;; fail++) {
        vmf_debug_fail_alloc_after(fail);
        rc = vmf_gmm_classifier_predict_topk(g, x, N, D, 2, c, NULL);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK)
            break;
        assert_int_equal(rc, VMF_ENOMEM);
        assert_true(fail < 100);
    }
    assert_true(fail > 0);
    vmf_gmm_classifier_free(g);
    free(x);
    free(y);
}

/* ---- real data ---- */

static void load_npy(const char *name, vmf_array *a)
{
    char path[1024];
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path(name, path, sizeof path), a));
}

static void test_fmnist_accuracy(void **state)
{
    (void)state;
    vmf_array ax, ay, as;
    load_npy("fmnist-cce64.X.npy", &ax);
    load_npy("fmnist-cce64.y.npy", &ay);
    load_npy("fmnist-cce64.split.npy", &as);
    assert_int_equal(ax.dtype, VMF_DTYPE_F32);
    assert_int_equal(ay.dtype, VMF_DTYPE_I32);
    assert_int_equal(as.dtype, VMF_DTYPE_U8);
    size_t n = ax.shape[0], d = ax.shape[1], ntr = 0, nte = 0;
    const float *X = ax.data;
    const int32_t *Y = ay.data;
    const uint8_t *S = as.data;
    float *xtr = malloc(n * d * sizeof *xtr), *xte = malloc(n * d * sizeof *xte);
    int64_t *ytr = malloc(n * sizeof *ytr);
    int32_t *yte = malloc(n * sizeof *yte);
    for (size_t i = 0; i < n; i++) {
        if (S[i] == 0) {
            memcpy(xtr + ntr * d, X + i * d, d * sizeof *xtr);
            ytr[ntr++] = Y[i];
        } else {
            memcpy(xte + nte * d, X + i * d, d * sizeof *xte);
            yte[nte++] = Y[i];
        }
    }
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_labels lab = {ntr, ytr, NULL};
    vmf_gmm_classifier *g;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, xtr, ntr, d, &lab, &g));
    int32_t *top = malloc(nte * 4 * sizeof *top);
    vmf_assert_ok(vmf_gmm_classifier_predict_topk(g, xte, nte, d, 4, top, NULL));
    /* Map the model's class indices to the dataset's labels 0..9 (the evaluation space). */
    const vmf_label_table *t = vmf_gmm_classifier_labels(g);
    for (size_t i = 0; i < nte * 4; i++)
        top[i] = top[i] < 0 ? -1 : (int32_t)vmf_label_table_int(t, (size_t)top[i]);
    double r1, r4;
    vmf_assert_ok(vmf_topk_macro_recall(yte, nte, 10, top, 4, 1, &r1));
    vmf_assert_ok(vmf_topk_macro_recall(yte, nte, 10, top, 4, 4, &r4));
    print_message("fmnist-cce64 GMM (5 per class, seed 42): top-1 %.4f, top-4 %.4f\n", r1, r4);
    /* scikit-learn's GaussianMixture (diag, 5 per class) scores 0.887 / 0.994 here. */
    assert_true(r1 >= 0.875);
    assert_true(r4 >= 0.990);
    free(top);
    vmf_gmm_classifier_free(g);
    free(xtr);
    free(xte);
    free(ytr);
    free(yte);
    vmf_array_free(&ax);
    vmf_array_free(&ay);
    vmf_array_free(&as);
}

/*
 * Warm start: refitting the same rows from a converged fit stays there (EM
 * stops within three iterations, about the same log-likelihood and means); refitting
 * more rows from it takes fewer EM iterations than a cold fit; a class whose
 * component count changed, or a label the earlier fit lacks, starts cold.
 */
static void test_warm_start(void **state)
{
    (void)state;
    const size_t n1 = 1500, n2 = 1800, d = 8;
    float *x;
    int64_t *y;
    mixture(21, n2, d, 3, 12.0, &x, &y);
    vmf_gmm_opts o;
    vmf_gmm_opts_init(&o);
    vmf_labels l1 = {n1, y, NULL}, l2 = {n2, y, NULL};
    vmf_gmm_classifier *g1, *g2, *g3, *g4;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n1, d, &l1, &g1));
    o.warm_start = g1;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n1, d, &l1, &g2));
    size_t it_warm = 0, it_cold = 0;
    for (size_t c = 0; c < vmf_gmm_classifier_n_classes(g1); c++) {
        size_t it1, it2;
        int cv1, cv2;
        double ll1, ll2;
        vmf_assert_ok(vmf_gmm_classifier_class_fit_info(g1, c, &it1, &cv1, &ll1));
        vmf_assert_ok(vmf_gmm_classifier_class_fit_info(g2, c, &it2, &cv2, &ll2));
        assert_true(cv1 && cv2);
        /* EM stopped where its steps fell below tol; from there it only creeps upwards. */
        assert_true(it2 <= 3);
        assert_true(ll2 >= ll1 - 1e-9 && ll2 - ll1 < 1e-3);
        size_t kc = vmf_gmm_classifier_class_n_components(g1, c);
        assert_int_equal(vmf_gmm_classifier_class_n_components(g2, c), kc);
        for (size_t j = 0; j < kc * d; j++)
            vmf_assert_close(vmf_gmm_classifier_class_means(g2, c)[j],
                             vmf_gmm_classifier_class_means(g1, c)[j], 0.0, 1e-2);
    }
    o.warm_start = g1;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n2, d, &l2, &g3));
    o.warm_start = NULL;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n2, d, &l2, &g4));
    for (size_t c = 0; c < vmf_gmm_classifier_n_classes(g3); c++) {
        size_t it;
        int cv;
        double ll;
        vmf_assert_ok(vmf_gmm_classifier_class_fit_info(g3, c, &it, &cv, &ll));
        it_warm += it;
        vmf_assert_ok(vmf_gmm_classifier_class_fit_info(g4, c, &it, &cv, &ll));
        it_cold += it;
    }
    assert_true(it_warm < it_cold);
    /* String labels: the integer-labelled earlier fit is ignored, the fit is the cold one. */
    const char *names[3] = {"a", "b", "c"};
    const char **sl = malloc(n1 * sizeof *sl);
    for (size_t i = 0; i < n1; i++)
        sl[i] = names[y[i]];
    vmf_labels ls = {n1, NULL, sl};
    vmf_gmm_classifier *gs, *gc;
    o.warm_start = g1;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n1, d, &ls, &gs));
    o.warm_start = NULL;
    vmf_assert_ok(vmf_gmm_classifier_fit(&o, x, n1, d, &ls, &gc));
    size_t K = 0;
    for (size_t c = 0; c < vmf_gmm_classifier_n_classes(gc); c++)
        K += vmf_gmm_classifier_class_n_components(gc, c);
    for (size_t c = 0; c < vmf_gmm_classifier_n_classes(gc); c++)
        assert_memory_equal(vmf_gmm_classifier_class_means(gs, c),
                            vmf_gmm_classifier_class_means(gc, c),
                            vmf_gmm_classifier_class_n_components(gc, c) * d * sizeof(double));
    assert_true(K >= 3);
    free(sl);
    vmf_gmm_classifier_free(g1);
    vmf_gmm_classifier_free(g2);
    vmf_gmm_classifier_free(g3);
    vmf_gmm_classifier_free(g4);
    vmf_gmm_classifier_free(gs);
    vmf_gmm_classifier_free(gc);
    free(x);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_component_is_closed_form),
        cmocka_unit_test(test_recovers_two_modes_of_a_class),
        cmocka_unit_test(test_component_count_rule_and_priors),
        cmocka_unit_test(test_separated_classes_and_posteriors),
        cmocka_unit_test(test_posteriors_match_direct_evaluation),
        cmocka_unit_test(test_string_labels_and_determinism),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_fmnist_accuracy),
        cmocka_unit_test(test_warm_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
