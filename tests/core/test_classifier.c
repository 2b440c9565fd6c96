/*
 * test_classifier.c - the class-conditional vMF classifier: learning and
 * prediction on separated classes (integer and string labels), the growth
 * rule, a long-tail class of 3 rows, rejected batches and injected
 * allocation failures leaving the state bit-identical, save / load / JSON
 * continuing bit for bit, corrupt blobs, and accuracy on the real
 * fmnist-cce64 embeddings.
 */
#include "classifier_internal.h"
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"
#include "vmf_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *blob(const vmf_classifier *c, size_t *len)
{
    void *b = NULL;
    vmf_assert_ok(vmf_classifier_save(c, &b, len));
    return b;
}

/* Fails unless c saves to exactly the bytes b0 [l0]. */
static void assert_saves_as(const vmf_classifier *c, const void *b0, size_t l0)
{
    size_t l1;
    void *b1 = blob(c, &l1);
    vmf_test_assert_same_bytes(b0, l0, b1, l1);
    free(b1);
}

static void assert_same(const vmf_classifier *a, const vmf_classifier *b)
{
    size_t la;
    void *ba = blob(a, &la);
    assert_saves_as(b, ba, la);
    free(ba);
}

/*
 * n rows of `nc` classes around random centres (kappa 200, d dims); class
 * sizes from `sizes` (rows of class c: sizes[c]); rows shuffled by class
 * interleaving. x [total][d], y [total].
 */
static size_t make_classes(uint64_t seed, size_t d, size_t nc, const size_t *sizes, float *centres,
                           float *x, int64_t *y)
{
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    vmf_assert_ok(vmf_sample_uniform(d, nc, &rng, centres));
    size_t at = 0, left = 0;
    for (size_t c = 0; c < nc; c++)
        left += sizes[c];
    size_t *rem = malloc(nc * sizeof *rem);
    memcpy(rem, sizes, nc * sizeof *rem);
    while (left > 0) {
        size_t c = (size_t)vmf_rng_below(&rng, nc);
        if (rem[c] == 0)
            continue;
        rem[c]--;
        left--;
        vmf_assert_ok(vmf_sample_vmf(centres + c * d, d, 200.0, 1, &rng, x + at * d));
        y[at++] = (int64_t)c * 10 + 3; /* labels are not indices */
    }
    free(rem);
    return at;
}

/*
 * log P(class | x) of row x computed from the parameters into out [nc]:
 * with a refinement head in use, the softmax of w_c^T x + b_c; otherwise priors,
 * class mixtures and the prediction kappa (pooled).
 */
static void manual_log_proba(const vmf_classifier *c, const float *x, double *out)
{
    size_t nc = vmf_classifier_n_classes(c), d = vmf_classifier_dim(c);
    if (c->use_head && c->head.w) {
        double mx = -INFINITY, z = 0.0;
        for (size_t q = 0; q < nc; q++) {
            out[q] = c->head.b[q];
            for (size_t e = 0; e < d; e++)
                out[q] += (double)c->head.w[q * d + e] * (double)x[e];
            mx = out[q] > mx ? out[q] : mx;
        }
        for (size_t q = 0; q < nc; q++)
            z += exp(out[q] - mx);
        for (size_t q = 0; q < nc; q++)
            out[q] -= mx + log(z);
        return;
    }
    double kap = vmf_classifier_kappa(c), ln = vmf_log_norm_const(d, kap), mx = -INFINITY;
    for (size_t q = 0; q < nc; q++) {
        const vmf_mixture *m = vmf_classifier_class_mixture(c, q);
        const float *mu = vmf_mixture_means(m);
        const double *w = vmf_mixture_weights(m);
        double s = 0.0;
        for (size_t j = 0; j < vmf_mixture_n_components(m); j++) {
            double dot = 0.0;
            for (size_t e = 0; e < d; e++)
                dot += (double)mu[j * d + e] * (double)x[e];
            s += w[j] * exp(ln + kap * dot);
        }
        out[q] = log(vmf_classifier_class_prior(c, q)) + log(s);
        mx = out[q] > mx ? out[q] : mx;
    }
    double z = 0.0;
    for (size_t q = 0; q < nc; q++)
        z += exp(out[q] - mx);
    for (size_t q = 0; q < nc; q++)
        out[q] -= mx + log(z);
}

static void test_separated_classes(void **state)
{
    (void)state;
    const size_t d = 12, nc = 4, sizes[4] = {400, 300, 200, 100}, n = 1000;
    float *x = malloc(n * d * sizeof *x), cen[4 * 12];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(1, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    assert_int_equal(o.k_max, 5);
    assert_int_equal(o.count_priors, 0);
    /* The mixtures' prediction; test_refine covers the refinement head. */
    o.refine_rows = 0;
    vmf_assert_close(o.kappa_scale, 0.0, 0, 0); /* automatic */
    double kappa0 = 0.0, scale0 = 0.0;
    for (int variant = 0; variant < 2; variant++) {
        if (variant == 1) {
            /* Count priors, likelihood kappa: the version 1 behaviour. */
            o.count_priors = 1;
            o.kappa_scale = 1.0;
        }
        vmf_classifier *c;
        vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
        assert_int_equal(vmf_classifier_dim(c), 0);
        for (size_t i0 = 0; i0 < n; i0 += 100) {
            vmf_labels y1 = {100, y + i0, NULL};
            vmf_assert_ok(vmf_classifier_partial_fit(c, x + i0 * d, 100, d, &y1));
        }
        assert_int_equal(vmf_classifier_dim(c), d);
        assert_int_equal(vmf_classifier_n_classes(c), nc);
        assert_int_equal(vmf_classifier_rows_seen(c), n);
        const vmf_label_table *t = vmf_classifier_labels(c);
        double psum = 0.0;
        for (size_t i = 0; i < nc; i++) {
            size_t cls = (size_t)(vmf_label_table_int(t, i) - 3) / 10;
            assert_int_equal(vmf_classifier_class_rows(c, i), sizes[cls]);
            vmf_assert_close(vmf_classifier_class_prior(c, i),
                             variant ? (double)sizes[cls] / n : 1.0 / (double)nc, 1e-15, 0);
            psum += vmf_classifier_class_prior(c, i);
            /* Growth rule: K = min(5, n_c / 30). */
            size_t want = sizes[cls] / 30 > 5 ? 5 : sizes[cls] / 30;
            assert_int_equal(vmf_mixture_n_components(vmf_classifier_class_mixture(c, i)), want);
        }
        vmf_assert_close(psum, 1.0, 1e-12, 0);
        assert_true(vmf_classifier_kappa(c) > 0.0);
        /* Learning does not depend on the prediction options: same pooled estimate. */
        if (variant == 0) {
            kappa0 = vmf_classifier_kappa(c);
            scale0 = vmf_classifier_kappa_scale(c);
            /* A point of the grid 2^(-g/2), g = 0..15. */
            double g = -2.0 * log2(scale0);
            assert_true(g >= 0.0 && g <= 15.0);
            vmf_assert_close(g, round(g), 0, 1e-12);
        } else {
            vmf_assert_close(vmf_classifier_kappa_scale(c), 1.0, 0, 0);
            vmf_assert_close(kappa0, scale0 * vmf_classifier_kappa(c), 1e-15, 0);
        }

        /* The class centres are predicted as their class with probability ~1. */
        int32_t top[4 * 6];
        double pr[4 * 6];
        vmf_assert_ok(vmf_classifier_predict_topk(c, cen, nc, d, 6, top, pr));
        for (size_t q = 0; q < nc; q++) {
            assert_int_equal((vmf_label_table_int(t, (size_t)top[q * 6]) - 3) / 10, (int64_t)q);
            assert_true(pr[q * 6] > (variant ? 0.999 : 0.9));
            double s = 0.0;
            for (size_t j = 0; j < 6; j++) {
                if (j > 0)
                    assert_true(pr[q * 6 + j] <= pr[q * 6 + j - 1]);
                s += pr[q * 6 + j];
            }
            vmf_assert_close(s, 1.0, 1e-12, 0);
            assert_int_equal(top[q * 6 + 4], -1); /* beyond the 4 classes */
            vmf_assert_close(pr[q * 6 + 5], 0.0, 0, 0);
        }
        /* log_proba agrees with top-k probabilities. */
        double lp[4 * 4];
        vmf_assert_ok(vmf_classifier_predict_log_proba(c, cen, nc, d, lp));
        for (size_t q = 0; q < nc; q++)
            vmf_assert_close(exp(lp[q * nc + (size_t)top[q * 6]]), pr[q * 6], 1e-12, 0);
        /*
         * ... and with the model written out by hand (priors, kappa_scale);
         * the library's dot products are a float GEMM, hence the tolerance.
         */
        double tol = 2e-6 * (1.0 + vmf_classifier_kappa(c));
        for (size_t q = 0; c->head.w && q < nc * d; q++)
            tol = fmax(tol, 2e-5 * fabs((double)c->head.w[q]));
        for (size_t q = 0; q < nc; q++) {
            double want[4];
            manual_log_proba(c, cen + q * d, want);
            for (size_t k = 0; k < nc; k++)
                vmf_assert_close(lp[q * nc + k], want[k], 0, tol);
        }

        /* Batch fit on the same rows agrees on the centres. */
        vmf_classifier *f;
        vmf_labels ya = {n, y, NULL};
        vmf_assert_ok(vmf_classifier_fit(&o, x, n, d, &ya, &f));
        int32_t top2[4];
        vmf_assert_ok(vmf_classifier_predict_topk(f, cen, nc, d, 1, top2, NULL));
        for (size_t q = 0; q < nc; q++)
            assert_int_equal((vmf_label_table_int(vmf_classifier_labels(f), (size_t)top2[q]) - 3) /
                                 10,
                             (int64_t)q);
        vmf_classifier_free(f);
        vmf_classifier_free(c);
    }
    free(x);
    free(y);
}

static void test_string_labels_and_copy(void **state)
{
    (void)state;
    const size_t d = 6, nc = 3, sizes[3] = {60, 60, 60}, n = 180;
    float *x = malloc(n * d * sizeof *x), cen[3 * 6];
    int64_t *yi = malloc(n * sizeof *yi);
    make_classes(2, d, nc, sizes, cen, x, yi);
    const char *names[3] = {"cat", "dog", "émeu"};
    const char **ys = malloc(n * sizeof *ys);
    for (size_t i = 0; i < n; i++)
        ys[i] = names[(yi[i] - 3) / 10];
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c, *cp;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    vmf_labels y = {n, NULL, ys};
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, n, d, &y));
    assert_true(vmf_label_table_is_str(vmf_classifier_labels(c)));
    vmf_assert_ok(vmf_classifier_copy(c, &cp));
    assert_same(c, cp);
    /* The copy is independent: learning on c leaves cp as it was. */
    size_t l0;
    void *b0 = blob(cp, &l0);
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, 30, d, &(vmf_labels){30, NULL, ys}));
    assert_saves_as(cp, b0, l0);
    int32_t top[3];
    vmf_assert_ok(vmf_classifier_predict_topk(cp, cen, nc, d, 1, top, NULL));
    for (size_t q = 0; q < nc; q++)
        assert_string_equal(vmf_label_table_str(vmf_classifier_labels(cp), (size_t)top[q]),
                            names[q]);
    free(b0);
    vmf_classifier_free(c);
    vmf_classifier_free(cp);
    free(x);
    free(yi);
    free(ys);
}

/*
 * Long tail: a class with 3 training rows among 9 classes of 2,000 still
 * ranks in the top 4 for most of its own test rows.
 */
static void test_long_tail(void **state)
{
    (void)state;
    const size_t d = 32, nc = 10;
    size_t sizes[10];
    for (size_t c = 0; c < nc; c++)
        sizes[c] = 2000;
    sizes[7] = 3;
    size_t n = 9 * 2000 + 3;
    float *x = malloc(n * d * sizeof *x), cen[10 * 32];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(3, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    for (size_t i0 = 0; i0 < n; i0 += 1000) {
        size_t nb = n - i0 < 1000 ? n - i0 : 1000;
        vmf_labels yb = {nb, y + i0, NULL};
        vmf_assert_ok(vmf_classifier_partial_fit(c, x + i0 * d, nb, d, &yb));
    }
    /* 200 test rows of the rare class. */
    const size_t m = 200;
    float *xt = calloc(m * d, sizeof *xt);
    vmf_rng rng;
    vmf_rng_seed(&rng, 99);
    vmf_assert_ok(vmf_sample_vmf(cen + 7 * d, d, 200.0, m, &rng, xt));
    int32_t *top = malloc(m * 4 * sizeof *top);
    vmf_assert_ok(vmf_classifier_predict_topk(c, xt, m, d, 4, top, NULL));
    int64_t want = 7 * 10 + 3;
    size_t hit = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < 4; j++)
            if (top[i * 4 + j] >= 0 &&
                vmf_label_table_int(vmf_classifier_labels(c), (size_t)top[i * 4 + j]) == want)
                hit++;
    printf("# rare class (3 rows) in the top 4 for %zu of %zu rows\n", hit, m);
    assert_true(hit >= 0.9 * m);
    /* The pruned top-k path agrees with the full log posterior (10 classes, k = 4). */
    double *lp = malloc(m * nc * sizeof *lp), *pr = malloc(m * 4 * sizeof *pr);
    vmf_assert_ok(vmf_classifier_predict_topk(c, xt, m, d, 4, top, pr));
    vmf_assert_ok(vmf_classifier_predict_log_proba(c, xt, m, d, lp));
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        for (size_t q = 0; q < nc; q++)
            s += exp(lp[i * nc + q]);
        vmf_assert_close(s, 1.0, 1e-12, 0);
        for (size_t j = 0; j < 4; j++) {
            size_t q = (size_t)top[i * 4 + j];
            vmf_assert_close(pr[i * 4 + j], exp(lp[i * nc + q]), 1e-12, 1e-300);
            /* No class outside the top 4 beats its last entry. */
            int in = 0;
            for (size_t r = 0; r < nc; r++) {
                for (size_t jj = 0; jj < 4; jj++)
                    in |= (size_t)top[i * 4 + jj] == r;
                if (!in)
                    assert_true(lp[i * nc + r] <= lp[i * nc + (size_t)top[i * 4 + 3]]);
                in = 0;
            }
        }
    }
    free(lp);
    free(pr);
    free(top);
    free(xt);
    free(x);
    free(y);
    vmf_classifier_free(c);
}

static void expect_rejected(vmf_classifier *c, const void *b0, size_t l0, const float *x, size_t n,
                            size_t d, const vmf_labels *y)
{
    assert_int_equal(vmf_classifier_partial_fit(c, x, n, d, y), VMF_EINVAL);
    assert_true(strlen(vmf_last_error()) > 0);
    assert_saves_as(c, b0, l0);
}

static void test_bad_input_unchanged(void **state)
{
    (void)state;
    const size_t d = 8, nc = 3, sizes[3] = {100, 100, 100}, n = 300;
    float *x = malloc(n * d * sizeof *x), cen[3 * 8];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(4, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
    vmf_labels y0 = {200, y, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, 200, d, &y0));
    size_t l0;
    void *b0 = blob(c, &l0);
    float *bad = malloc(100 * d * sizeof *bad);
    memcpy(bad, x + 200 * d, 100 * d * sizeof *bad);
    int64_t *ynew = malloc(100 * sizeof *ynew);
    for (size_t i = 0; i < 100; i++)
        ynew[i] = 1000 + (int64_t)i; /* unseen labels: must not be added on failure */
    vmf_labels yb = {100, ynew, NULL};
    expect_rejected(c, b0, l0, bad, 100, d - 1, &yb); /* wrong dimension */
    assert_string_equal(vmf_last_error(),
                        "vmf_classifier_partial_fit: rows have dimension 7, the classifier has 8");
    expect_rejected(c, b0, l0, bad, 0, d, &(vmf_labels){0, ynew, NULL});    /* empty */
    expect_rejected(c, b0, l0, bad, 100, d, &(vmf_labels){99, ynew, NULL}); /* count */
    const char *strs[100];
    for (size_t i = 0; i < 100; i++)
        strs[i] = "a";
    expect_rejected(c, b0, l0, bad, 100, d, &(vmf_labels){100, NULL, strs}); /* mixed kinds */
    expect_rejected(c, b0, l0, bad, 100, d, &(vmf_labels){100, ynew, strs}); /* both */
    bad[50 * d + 2] = NAN;
    expect_rejected(c, b0, l0, bad, 100, d, &yb);
    assert_string_equal(vmf_last_error(),
                        "vmf_classifier_partial_fit: row 50 has a NaN or infinite value");
    bad[50 * d + 2] = -INFINITY;
    expect_rejected(c, b0, l0, bad, 100, d, &yb);
    memset(bad + 50 * d, 0, d * sizeof *bad);
    expect_rejected(c, b0, l0, bad, 100, d, &yb); /* zero row */
    bad[50 * d] = 3.0f;
    expect_rejected(c, b0, l0, bad, 100, d, &yb); /* not unit */
    assert_int_equal(vmf_classifier_n_classes(c), 3);

    /* Allocation failure anywhere inside partial_fit: all or nothing. */
    vmf_labels y1 = {100, y + 200, NULL};
    int ok = 0;
    for (long fail_at = 0; fail_at < 5000 && !ok; fail_at++) {
        vmf_debug_fail_alloc_after(fail_at);
        int rc = vmf_classifier_partial_fit(c, x + 200 * d, 100, d, &y1);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK) {
            ok = 1;
            break;
        }
        assert_int_equal(rc, VMF_ENOMEM);
        assert_saves_as(c, b0, l0);
    }
    assert_true(ok);
    assert_int_equal(vmf_classifier_rows_seen(c), 300);
    free(b0);
    free(bad);
    free(ynew);
    free(x);
    free(y);
    vmf_classifier_free(c);
}

static void test_save_load_json_continue(void **state)
{
    (void)state;
    const size_t d = 10, nc = 5, sizes[5] = {600, 400, 300, 100, 40}, n = 1440;
    float *x = malloc(n * d * sizeof *x), cen[5 * 10];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(5, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *a, *b;
    vmf_assert_ok(vmf_classifier_new(&o, 0, &a));
    vmf_assert_ok(vmf_classifier_new(&o, 0, &b));
    for (size_t day = 0; day < 12; day++) {
        vmf_labels yb = {120, y + day * 120, NULL};
        vmf_assert_ok(vmf_classifier_partial_fit(a, x + day * 120 * d, 120, d, &yb));
        vmf_assert_ok(vmf_classifier_partial_fit(b, x + day * 120 * d, 120, d, &yb));
        if (day % 2 == 0) {
            size_t len;
            void *bb = blob(b, &len);
            vmf_classifier_free(b);
            vmf_assert_ok(vmf_classifier_load(bb, len, &b));
            free(bb);
        } else {
            char *js;
            vmf_assert_ok(vmf_classifier_to_json(b, &js));
            assert_non_null(strstr(js, "\"kind\":\"classifier\""));
            assert_non_null(strstr(js, "\"classes\":[{\"label\":"));
            vmf_classifier_free(b);
            vmf_assert_ok(vmf_classifier_from_json(js, strlen(js), &b));
            free(js);
        }
        assert_same(a, b);
    }
    /* Corrupt blobs: every byte flip and truncation is VMF_EFORMAT. */
    size_t len;
    unsigned char *bb = blob(a, &len);
    vmf_classifier *t = NULL;
    for (size_t i = 0; i < len; i += 3) {
        bb[i] ^= 0x10;
        assert_int_equal(vmf_classifier_load(bb, len, &t), VMF_EFORMAT);
        assert_null(t);
        bb[i] ^= 0x10;
    }
    for (size_t l = 0; l < len; l += 97)
        assert_int_equal(vmf_classifier_load(bb, l, &t), VMF_EFORMAT);
    free(bb);
    free(x);
    free(y);
    vmf_classifier_free(a);
    vmf_classifier_free(b);
}

/*
 * Model JSON with parameters only (no "state", no "sample"), as another
 * tool would write it, predicts identically; an empty classifier round-trips.
 */
static void test_json_parameters_only(void **state)
{
    (void)state;
    const size_t d = 9, nc = 3, sizes[3] = {200, 90, 20}, n = 310;
    float *x = malloc(n * d * sizeof *x), cen[3 * 9];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(6, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c, *r;
    vmf_labels ya = {n, y, NULL};
    vmf_assert_ok(vmf_classifier_fit(&o, x, n, d, &ya, &c));
    char *js;
    vmf_assert_ok(vmf_classifier_to_json(c, &js));
    json_t *root = json_loads(js, 0, NULL);
    assert_non_null(root);
    json_t *classes = json_object_get(root, "classes");
    for (size_t i = 0; i < json_array_size(classes); i++) {
        json_object_del(json_array_get(classes, i), "state");
        json_object_del(json_array_get(classes, i), "sample");
    }
    char *lean = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    vmf_assert_ok(vmf_classifier_from_json(lean, strlen(lean), &r));
    assert_int_equal(vmf_classifier_n_classes(r), nc);
    assert_int_equal(vmf_classifier_rows_seen(r), n);
    vmf_assert_close(vmf_classifier_kappa(r), vmf_classifier_kappa(c), 0, 0);
    double *la = malloc(n * nc * sizeof *la), *lb = malloc(n * nc * sizeof *lb);
    vmf_assert_ok(vmf_classifier_predict_log_proba(c, x, n, d, la));
    vmf_assert_ok(vmf_classifier_predict_log_proba(r, x, n, d, lb));
    assert_memory_equal(la, lb, n * nc * sizeof *la);
    /* And it keeps learning. */
    vmf_assert_ok(vmf_classifier_partial_fit(r, x, 50, d, &(vmf_labels){50, y, NULL}));
    assert_int_equal(vmf_classifier_rows_seen(r), n + 50);
    /* Corrupt JSON is VMF_EFORMAT, never a crash. */
    vmf_classifier *t = NULL;
    char *p = strstr(lean, "\"kappas\":[");
    assert_non_null(p);
    p[10] = '-';
    assert_int_equal(vmf_classifier_from_json(lean, strlen(lean), &t), VMF_EFORMAT);
    assert_null(t);
    assert_int_equal(vmf_classifier_from_json(lean, strlen(lean) / 2, &t), VMF_EFORMAT);
    free(lean);
    free(js);
    free(la);
    free(lb);
    vmf_classifier_free(r);
    vmf_classifier_free(c);

    /* Empty: no classes yet. */
    vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
    int32_t top[1];
    assert_int_equal(vmf_classifier_predict_topk(c, cen, 1, d, 1, top, NULL), VMF_EINVAL);
    size_t len;
    void *b = blob(c, &len);
    vmf_assert_ok(vmf_classifier_load(b, len, &r));
    assert_int_equal(vmf_classifier_n_classes(r), 0);
    vmf_classifier_free(r);
    free(b);
    vmf_assert_ok(vmf_classifier_to_json(c, &js));
    vmf_assert_ok(vmf_classifier_from_json(js, strlen(js), &r));
    assert_int_equal(vmf_classifier_dim(r), 0);
    free(js);
    vmf_classifier_free(r);
    vmf_classifier_free(c);
    free(x);
    free(y);
}

/*
 * Hostile blobs: random byte mutations with the checksum recomputed, so that
 * the parser itself is exercised. Every load either fails with VMF_EFORMAT
 * or gives a classifier that predicts without error.
 */
static void test_hostile_blobs(void **state)
{
    (void)state;
    const size_t d = 4, nc = 3, sizes[3] = {40, 20, 5}, n = 65;
    float *x = malloc(n * d * sizeof *x), cen[3 * 4];
    int64_t *y = malloc(n * sizeof *y);
    make_classes(8, d, nc, sizes, cen, x, y);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, n, d, &(vmf_labels){n, y, NULL}));
    size_t len;
    unsigned char *b = blob(c, &len), *m = malloc(len);
    vmf_rng rng;
    vmf_rng_seed(&rng, 1234);
    size_t loaded = 0;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(m, b, len);
        int edits = 1 + (int)vmf_rng_below(&rng, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = 24 + (size_t)vmf_rng_below(&rng, len - 32);
            m[at] = (unsigned char)vmf_rng_below(&rng, 256);
        }
        uint64_t sum = vmf__fnv1a64(m, len - 8);
        for (int i = 0; i < 8; i++)
            m[len - 8 + (size_t)i] = (unsigned char)(sum >> (8 * i));
        vmf_classifier *t = NULL;
        int rc = vmf_classifier_load(m, len, &t);
        if (rc != VMF_OK) {
            assert_int_equal(rc, VMF_EFORMAT);
            assert_null(t);
            continue;
        }
        loaded++;
        int32_t top[3 * 2];
        double pr[3 * 2];
        vmf_assert_ok(vmf_classifier_predict_topk(t, cen, nc, d, 2, top, pr));
        for (size_t j = 0; j < 6; j++)
            assert_true(isfinite(pr[j]) && pr[j] >= 0.0 && pr[j] <= 1.0 + 1e-12);
        /* A loaded state must also keep learning without trouble. */
        rc = vmf_classifier_partial_fit(t, x, 20, d, &(vmf_labels){20, y, NULL});
        assert_true(rc == VMF_OK || rc == VMF_EINVAL || rc == VMF_ERANGE);
        vmf_classifier_free(t);
    }
    printf("# %zu of 3000 mutated blobs loaded (the rest: VMF_EFORMAT)\n", loaded);
    free(b);
    free(m);
    free(x);
    free(y);
    vmf_classifier_free(c);
}

/*
 * Degenerate data: a class whose rows are all the same vector has no spread
 * to split along, so it keeps one component (finite kappa from the
 * shrinkage prior) and still predicts.
 */
static void test_identical_rows(void **state)
{
    (void)state;
    const size_t d = 5, n = 200;
    float *x = calloc(n * d, sizeof *x);
    int64_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int64_t)(i % 2);
        x[i * d + (i % 2)] = 1.0f; /* class 0: e0 100 times, class 1: e1 */
    }
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    for (size_t i0 = 0; i0 < n; i0 += 50)
        vmf_assert_ok(
            vmf_classifier_partial_fit(c, x + i0 * d, 50, d, &(vmf_labels){50, y + i0, NULL}));
    for (size_t q = 0; q < 2; q++) {
        const vmf_mixture *m = vmf_classifier_class_mixture(c, q);
        assert_int_equal(vmf_mixture_n_components(m), 1);
        assert_true(isfinite(vmf_mixture_kappas(m)[0]));
    }
    int32_t top[2 * 2];
    double pr[2 * 2];
    vmf_assert_ok(vmf_classifier_predict_topk(c, x, 2, d, 2, top, pr));
    assert_int_equal(top[0], 0);
    assert_int_equal(top[2], 1);
    assert_true(pr[0] > 0.99 && pr[2] > 0.99);
    vmf_classifier *f;
    vmf_assert_ok(vmf_classifier_fit(&o, x, n, d, &(vmf_labels){n, y, NULL}, &f));
    assert_int_equal(vmf_mixture_n_components(vmf_classifier_class_mixture(f, 0)), 1);
    vmf_classifier_free(f);
    vmf_classifier_free(c);
    free(x);
    free(y);
}

/*
 * The prequential record: partial_fit first scores the rows of known classes
 * with the model as it was before the batch, at every grid scale, then
 * learns them. Checked against the record recomputed by hand from a copy of
 * the model taken before the batch, on heavily overlapping classes (so that
 * the scale matters). Then the choice of the scale, the record of a batch
 * fit, and version 1 blobs.
 */
static void test_prequential_record(void **state)
{
    (void)state;
    const size_t d = 8, nc = 3, n = 400, n1 = 250;
    float *x = malloc(n * d * sizeof *x), cen[3 * 8];
    int64_t *y = malloc(n * sizeof *y);
    vmf_rng rng;
    vmf_rng_seed(&rng, 21);
    vmf_assert_ok(vmf_sample_uniform(d, nc, &rng, cen));
    for (size_t i = 0; i < n; i++) {
        size_t q = i % 7 < 4 ? 0 : (i % 7 < 6 ? 1 : 2); /* 4:2:1 */
        y[i] = (int64_t)q;
        vmf_assert_ok(vmf_sample_vmf(cen + q * d, d, 6.0, 1, &rng, x + i * d));
    }
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    o.refine_rows = 0; /* the record rates the mixtures; test_refine covers the head */
    vmf_classifier *c, *c0;
    vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, n1, d, &(vmf_labels){n1, y, NULL}));
    for (size_t q = 0; q < nc; q++) /* nothing to score before the first batch */
        assert_int_equal(c->cls[q]->pq_rows, 0);
    vmf_assert_close(vmf_classifier_kappa_scale(c), 1.0, 0, 0);
    vmf_assert_ok(vmf_classifier_copy(c, &c0));
    size_t n2 = n - n1;
    vmf_assert_ok(
        vmf_classifier_partial_fit(c, x + n1 * d, n2, d, &(vmf_labels){n2, y + n1, NULL}));
    /* By hand: equal priors, pooled kappa times 2^(-g/2). */
    double kpool = vmf_classifier_kappa(c0) / vmf_classifier_kappa_scale(c0);
    uint64_t rows[3] = {0}, hits[3][VMF__SCALE_GRID] = {{0}};
    for (size_t i = n1; i < n; i++) {
        size_t want = (size_t)y[i];
        rows[want]++;
        for (size_t g = 0; g < VMF__SCALE_GRID; g++) {
            double kap = pow(2.0, -0.5 * (double)g) * kpool, top = -INFINITY;
            size_t arg = 0;
            for (size_t q = 0; q < nc; q++) {
                const vmf_mixture *m = vmf_classifier_class_mixture(c0, q);
                double s = 0.0;
                for (size_t j = 0; j < m->k; j++) {
                    double dot = 0.0;
                    for (size_t e = 0; e < d; e++)
                        dot += (double)m->means[j * d + e] * (double)x[i * d + e];
                    s += m->weights[j] * exp(kap * (dot - 1.0));
                }
                if (log(s) > top) {
                    top = log(s);
                    arg = q;
                }
            }
            hits[want][g] += arg == want;
        }
    }
    int varies = 0;
    for (size_t q = 0; q < nc; q++) {
        assert_int_equal(vmf_label_table_int(vmf_classifier_labels(c), q), (int64_t)q);
        assert_int_equal(c->cls[q]->pq_rows - c0->cls[q]->pq_rows, rows[q]);
        for (size_t g = 0; g < VMF__SCALE_GRID; g++) {
            uint64_t got = c->cls[q]->pq_hits[g] - c0->cls[q]->pq_hits[g];
            /* float GEMM against double dots: a near tie may fall either way */
            assert_true(got + 1 >= hits[q][g] && got <= hits[q][g] + 1);
            varies |= hits[q][g] != hits[q][0];
        }
    }
    assert_true(varies);
    /* The scale in use is the grid value with the best macro recall (ties: larger). */
    size_t best = 0;
    double bv = -1.0;
    for (size_t g = 0; g < VMF__SCALE_GRID; g++) {
        double v = 0.0;
        for (size_t q = 0; q < nc; q++)
            v += (double)c->cls[q]->pq_hits[g] / (double)c->cls[q]->pq_rows;
        if (v > bv) {
            bv = v;
            best = g;
        }
    }
    vmf_assert_close(vmf_classifier_kappa_scale(c), pow(2.0, -0.5 * (double)best), 1e-15, 0);
    printf("# overlapping classes: scale %.4f, macro recall %.3f (scale 1: %.3f)\n",
           vmf_classifier_kappa_scale(c), bv / 3.0,
           ((double)c->cls[0]->pq_hits[0] / (double)c->cls[0]->pq_rows +
            (double)c->cls[1]->pq_hits[0] / (double)c->cls[1]->pq_rows +
            (double)c->cls[2]->pq_hits[0] / (double)c->cls[2]->pq_rows) /
               3.0);

    /* Version 1 blobs load with count priors and the likelihood kappa, no record. */
    void *b1;
    size_t l1, l2;
    vmf_assert_ok(vmf__classifier_save_version(c, 1, &b1, &l1));
    void *b2 = blob(c, &l2);
    /*
     * Version 2 adds 12 bytes of options and the record; version 3 the
     * refinement's options and head flag (36) and per class its record (24).
     */
    assert_int_equal(l2, l1 + 12 + nc * 8 * (1 + VMF__SCALE_GRID) + 36 + nc * 24);
    vmf_classifier *r;
    vmf_assert_ok(vmf_classifier_load(b1, l1, &r));
    vmf_assert_close(vmf_classifier_kappa_scale(r), 1.0, 0, 0);
    /* The same pooled estimate, now at scale 1. */
    vmf_assert_close(vmf_classifier_kappa(r),
                     vmf_classifier_kappa(c) / vmf_classifier_kappa_scale(c), 1e-15, 0);
    for (size_t q = 0; q < nc; q++) {
        vmf_assert_close(vmf_classifier_class_prior(r, q),
                         (double)vmf_classifier_class_rows(c, q) / (double)n, 1e-15, 0);
        assert_int_equal(r->cls[q]->pq_rows, 0);
        const vmf_mixture *a = vmf_classifier_class_mixture(c, q),
                          *bm = vmf_classifier_class_mixture(r, q);
        assert_int_equal(a->k, bm->k);
        assert_memory_equal(a->means, bm->means, a->k * d * sizeof *a->means);
    }
    /* It keeps learning, and no longer records (its kappa_scale is fixed at 1). */
    vmf_assert_ok(vmf_classifier_partial_fit(r, x, 50, d, &(vmf_labels){50, y, NULL}));
    assert_int_equal(r->cls[0]->pq_rows, 0);
    vmf_classifier_free(r);
    free(b1);
    free(b2);

    /* A batch fit records every row of its classes once (5-fold cross-fitting). */
    vmf_classifier *f;
    vmf_assert_ok(vmf_classifier_fit(&o, x, n, d, &(vmf_labels){n, y, NULL}, &f));
    for (size_t q = 0; q < nc; q++)
        assert_int_equal(f->cls[q]->pq_rows, vmf_classifier_class_rows(f, q));
    assert_true(vmf_classifier_kappa_scale(f) > 0.0 && vmf_classifier_kappa_scale(f) <= 1.0);
    /* A fixed kappa_scale records nothing and is used as given. */
    vmf_classifier *h;
    o.kappa_scale = 0.3;
    vmf_assert_ok(vmf_classifier_fit(&o, x, n, d, &(vmf_labels){n, y, NULL}, &h));
    assert_int_equal(h->cls[0]->pq_rows, 0);
    vmf_assert_close(vmf_classifier_kappa_scale(h), 0.3, 0, 0);
    o.kappa_scale = -1.0;
    vmf_classifier *bad = NULL;
    assert_int_equal(vmf_classifier_new(&o, 0, &bad), VMF_EINVAL);
    assert_null(bad);
    vmf_classifier_free(h);
    vmf_classifier_free(f);
    vmf_classifier_free(c0);
    vmf_classifier_free(c);
    free(x);
    free(y);
}

/*
 * Two classes whose rows spread widely along a shared direction e2 and are
 * told apart only by a small offset along e1: isotropic mixtures with one
 * pooled kappa need many components to follow them, a linear boundary is
 * exact. The refinement head (the default) must beat the mixtures alone on
 * fresh rows; its state saves, loads and continues bit for bit (binary and
 * JSON); version 2 blobs load without it and predict with the mixtures.
 */
static void anisotropic(vmf_rng *rng, size_t n, size_t d, float *x, int64_t *y)
{
    for (size_t i = 0; i < n; i++) {
        int64_t q = (int64_t)(vmf_rng_below(rng, 4) == 0); /* 3:1 */
        double v[16] = {0}, nn = 0.0;
        v[0] = 1.0;
        v[1] = q ? 0.06 : -0.06;
        v[2] = 0.8 * vmf_rng_normal(rng);
        for (size_t e = 3; e < d; e++)
            v[e] = 0.03 * vmf_rng_normal(rng);
        v[1] += 0.02 * vmf_rng_normal(rng);
        for (size_t e = 0; e < d; e++)
            nn += v[e] * v[e];
        for (size_t e = 0; e < d; e++)
            x[i * d + e] = (float)(v[e] / sqrt(nn));
        y[i] = q;
    }
}

static double balanced_recall(const vmf_classifier *c, const float *x, const int64_t *y, size_t n,
                              size_t d)
{
    int32_t *top = malloc(n * sizeof *top);
    vmf_assert_ok(vmf_classifier_predict_topk(c, x, n, d, 1, top, NULL));
    double hit[2] = {0}, cnt[2] = {0};
    for (size_t i = 0; i < n; i++) {
        cnt[y[i]] += 1.0;
        hit[y[i]] += vmf_label_table_int(vmf_classifier_labels(c), (size_t)top[i]) == y[i];
    }
    free(top);
    return 0.5 * (hit[0] / cnt[0] + hit[1] / cnt[1]);
}

static void test_refine(void **state)
{
    (void)state;
    const size_t d = 8, days = 20, per = 100, nt = 2000;
    float *x = malloc(days * per * d * sizeof *x), *xt = malloc(nt * d * sizeof *xt);
    int64_t *y = malloc(days * per * sizeof *y), *yt = malloc(nt * sizeof *yt);
    vmf_rng rng;
    vmf_rng_seed(&rng, 5);
    anisotropic(&rng, days * per, d, x, y);
    anisotropic(&rng, nt, d, xt, yt);
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    assert_int_equal(o.refine_rows, 256);
    vmf_classifier *c, *m;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    o.refine_rows = 0;
    vmf_assert_ok(vmf_classifier_new(&o, d, &m));
    for (size_t t = 0; t < days; t++) {
        vmf_labels yb = {per, y + t * per, NULL};
        vmf_assert_ok(vmf_classifier_partial_fit(c, x + t * per * d, per, d, &yb));
        vmf_assert_ok(vmf_classifier_partial_fit(m, x + t * per * d, per, d, &yb));
    }
    assert_non_null(c->head.w);
    assert_null(m->head.w);
    /* Its record beats the mixtures', so prediction uses it. */
    assert_true(c->use_head);
    assert_false(m->use_head);
    assert_int_equal(c->head.n, 2);
    /*
     * The samples are kept once the classes are grown: refine_rows of them at
     * d >= 512, refine_rows x 512 / d below (the same memory per class), or
     * with fewer than 64 classes a share of 64 classes' worth (at most half).
     */
    size_t cap = vmf__classifier_buf_cap(&c->o, d, 2);
    assert_int_equal(cap, 256 * 512 / d * 32);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 1024, 2), 256 * 32);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 1024, 1), 256 * 32);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 1024, 10), 256 * 64 / 10);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 1024, 64), 256);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 512, 200), 256);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 64, 200), 2048);
    assert_int_equal(vmf__classifier_buf_cap(&c->o, 64, 10), 2048 * 64 / 10);
    assert_int_equal(vmf__classifier_buf_cap(&m->o, 64, 2), m->o.k_max * m->o.rows_per_component);
    for (size_t q = 0; q < 2; q++) {
        assert_true(c->cls[q]->buf &&
                    c->cls[q]->buf_n == (c->cls[q]->rows < cap ? c->cls[q]->rows : cap));
        /* Allocated as it fills (doubling), not at the full capacity up front. */
        assert_true(c->cls[q]->buf_cap >= c->cls[q]->buf_n && c->cls[q]->buf_cap < cap);
    }
    assert_null(m->cls[0]->buf);
    double rh = balanced_recall(c, xt, yt, nt, d), rm = balanced_recall(m, xt, yt, nt, d);
    printf("# anisotropic classes: balanced recall %.4f refined, %.4f mixtures alone\n", rh, rm);
    assert_true(rh >= 0.95);
    assert_true(rh >= rm + 0.05);
    /* Same mixtures with and without the head: it changes prediction only. */
    for (size_t q = 0; q < 2; q++)
        assert_int_equal(vmf_mixture_n_components(vmf_classifier_class_mixture(c, q)),
                         vmf_mixture_n_components(vmf_classifier_class_mixture(m, q)));

    /* Binary and JSON round trips continue bit for bit. */
    size_t l0;
    void *b0 = blob(c, &l0);
    vmf_classifier *r, *j;
    vmf_assert_ok(vmf_classifier_load(b0, l0, &r));
    assert_saves_as(r, b0, l0);
    char *js;
    vmf_assert_ok(vmf_classifier_to_json(c, &js));
    vmf_assert_ok(vmf_classifier_from_json(js, strlen(js), &j));
    assert_saves_as(j, b0, l0);
    vmf_labels yb = {per, yt, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(c, xt, per, d, &yb));
    vmf_assert_ok(vmf_classifier_partial_fit(r, xt, per, d, &yb));
    vmf_assert_ok(vmf_classifier_partial_fit(j, xt, per, d, &yb));
    assert_same(c, r);
    assert_same(c, j);

    /* The head's probabilities are the softmax of w_c^T x + b_c. */
    double *lp = malloc(nt * 2 * sizeof *lp), want[2];
    vmf_assert_ok(vmf_classifier_predict_log_proba(c, xt, nt, d, lp));
    for (size_t i = 0; i < nt; i += 97) {
        manual_log_proba(c, xt + i * d, want);
        for (size_t q = 0; q < 2; q++)
            vmf_assert_close(lp[i * 2 + q], want[q], 0, 1e-4 * (1.0 + fabs(want[q])));
    }
    /*
     * A bad row in the second block of 1,024 is named by its place in the
     * whole matrix, for the head and for the mixtures; the rows are checked
     * a block at a time, so the first block's answers are out already.
     */
    {
        float keep = xt[1500 * d + 3];
        xt[1500 * d + 3] = NAN;
        int32_t *tk = malloc(nt * sizeof *tk), *tm = malloc(nt * sizeof *tm);
        assert_non_null(tk);
        assert_non_null(tm);
        vmf_classifier *both[2] = {c, m};
        for (size_t v = 0; v < 2; v++) {
            vmf_assert_ok(vmf_classifier_predict_topk(both[v], xt, 1024, d, 1, tm, NULL));
            memset(tk, 0xff, nt * sizeof *tk);
            assert_int_equal(vmf_classifier_predict_topk(both[v], xt, nt, d, 1, tk, NULL),
                             VMF_EINVAL);
            assert_string_equal(
                vmf_last_error(),
                "vmf_classifier_predict_topk: row 1500 has a NaN or infinite value");
            assert_memory_equal(tk, tm, 1024 * sizeof *tk);
            assert_int_equal(vmf_classifier_predict_log_proba(both[v], xt, nt, d, lp), VMF_EINVAL);
            assert_non_null(strstr(vmf_last_error(), "row 1500 has a NaN"));
        }
        xt[1500 * d + 3] = keep;
        free(tk);
        free(tm);
    }

    /*
     * A version 2 blob (written before the refinement) loads with refine_rows
     * 0, no head, and predicts and continues as before.
     */
    void *b2;
    size_t l2;
    vmf_assert_ok(vmf__classifier_save_version(m, 2, &b2, &l2));
    vmf_classifier *v2;
    vmf_assert_ok(vmf_classifier_load(b2, l2, &v2));
    assert_int_equal(v2->o.refine_rows, 0);
    assert_null(v2->head.w);
    assert_same(m, v2);
    double *lp2 = malloc(nt * 2 * sizeof *lp2), *lpm = malloc(nt * 2 * sizeof *lpm);
    vmf_assert_ok(vmf_classifier_predict_log_proba(v2, xt, nt, d, lp2));
    vmf_assert_ok(vmf_classifier_predict_log_proba(m, xt, nt, d, lpm));
    assert_memory_equal(lp2, lpm, nt * 2 * sizeof *lp2);
    vmf_assert_ok(vmf_classifier_partial_fit(m, xt, per, d, &yb));
    vmf_assert_ok(vmf_classifier_partial_fit(v2, xt, per, d, &yb));
    assert_same(m, v2);
    /*
     * The head-against-mixtures record holds log-probabilities of the true
     * class (<= 0, the head's higher here). A version 3 blob held top-1 hits
     * there: it loads with no record, the head and the rest intact, and so
     * predicts with the head.
     */
    for (size_t q = 0; q < 2; q++) {
        assert_true(c->cls[q]->cmp_rows > 0.0);
        assert_true(c->cls[q]->cmp_head <= 0.0 && c->cls[q]->cmp_mix <= 0.0);
        assert_true(c->cls[q]->cmp_head >= -30.0 * c->cls[q]->cmp_rows);
    }
    void *b3, *bn;
    size_t l3, ln;
    vmf_assert_ok(vmf__classifier_save_version(c, 3, &b3, &l3));
    vmf_assert_ok(vmf_classifier_save(c, &bn, &ln));
    assert_int_equal(l3, ln);
    vmf_classifier *v3;
    vmf_assert_ok(vmf_classifier_load(b3, l3, &v3));
    for (size_t q = 0; q < 2; q++) {
        assert_true(v3->cls[q]->cmp_rows == 0.0 && v3->cls[q]->cmp_head == 0.0 &&
                    v3->cls[q]->cmp_mix == 0.0);
        assert_int_equal(v3->cls[q]->pq_rows, c->cls[q]->pq_rows);
    }
    assert_true(v3->use_head);
    assert_memory_equal(v3->head.w, c->head.w, 2 * d * sizeof *c->head.w);
    free(b3);
    vmf_classifier_free(v3);
    /*
     * Versions 4 and 5 have version 6's layout, but held the head's penalty
     * scaled by the class count (lambda C / N, here C = 2): they load with
     * lambda x C and save back as version 6, bit for bit.
     */
    for (uint32_t ver = 4; ver <= 5; ver++) {
        void *b4;
        size_t l4;
        vmf_assert_ok(vmf__classifier_save_version(c, ver, &b4, &l4));
        assert_int_equal(l4, ln);
        assert_int_equal(((const unsigned char *)b4)[8], ver);
        /*
         * refine_lambda sits after the 24-byte frame header and 116 bytes of
         * options (classifier_io.c's layout comment).
         */
        double stored;
        memcpy(&stored, (const unsigned char *)b4 + 24 + 116, sizeof stored);
        assert_true(stored == c->o.refine_lambda / 2.0);
        vmf_classifier *v4;
        vmf_assert_ok(vmf_classifier_load(b4, l4, &v4));
        assert_true(v4->o.refine_lambda == c->o.refine_lambda);
        assert_saves_as(v4, bn, ln);
        free(b4);
        vmf_classifier_free(v4);
    }
    /* So does a model JSON that gives "refine_lambda" (per class count). */
    {
        char *jn;
        vmf_assert_ok(vmf_classifier_to_json(c, &jn));
        char *at = strstr(jn, "\"refine_lambda_row\"");
        assert_non_null(at);
        const char *end = strchr(at, ',');
        assert_non_null(end);
        size_t room = strlen(jn) + 64;
        char *old = malloc(room);
        snprintf(old, room, "%.*s\"refine_lambda\": %.17g%s", (int)(at - jn), jn,
                 c->o.refine_lambda / 2.0, end);
        vmf_classifier *jo;
        vmf_assert_ok(vmf_classifier_from_json(old, strlen(old), &jo));
        assert_true(jo->o.refine_lambda == c->o.refine_lambda);
        assert_saves_as(jo, bn, ln);
        vmf_classifier_free(jo);
        free(old);
        free(jn);
    }
    free(bn);
    /* A blob cut inside the head is refused. */
    vmf_classifier *cut = NULL;
    assert_int_equal(vmf_classifier_load(b0, l0 - 9, &cut), VMF_EFORMAT);
    assert_null(cut);

    /* Bad refinement options. */
    vmf_classifier_opts_init(&o);
    o.refine_rate = 0.0;
    vmf_classifier *bad = NULL;
    assert_int_equal(vmf_classifier_new(&o, d, &bad), VMF_EINVAL);
    vmf_classifier_opts_init(&o);
    o.refine_lambda = -1.0;
    assert_int_equal(vmf_classifier_new(&o, d, &bad), VMF_EINVAL);
    assert_null(bad);

    free(lp);
    free(lp2);
    free(lpm);
    free(b0);
    free(b2);
    free(js);
    vmf_classifier_free(v2);
    vmf_classifier_free(r);
    vmf_classifier_free(j);
    vmf_classifier_free(c);
    vmf_classifier_free(m);
    free(x);
    free(xt);
    free(y);
    free(yt);
}

/* 1 when row r [d] is one of the n rows x [n][d], bit for bit. */
static int is_one_of(const float *r, const float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(r, x + i * d, d * sizeof *r) == 0)
            return 1;
    return 0;
}

/*
 * The classes share a pool of 64 classes' worth of sample rows: two
 * classes keep 32 times refine_rows each; as classes arrive each one's
 * share shrinks and the larger samples are thinned to it, also those of
 * classes the batch does not touch, keeping rows of their own class only.
 * The state saves as version 7, loads, and a version-6 writer's blob of a
 * state within the old capacity loads back to the same bytes.
 */
static void test_sample_pool(void **state)
{
    (void)state;
    const size_t d = 512, big = 200;
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    o.k_max = 1;
    o.rows_per_component = 1;
    o.refine_rows = 4; /* pool 256 rows: 128 a class with 2, 64 with 4, 32 with 8 */
    o.refine_budget = 256;
    vmf_rng rng;
    vmf_rng_seed(&rng, 17);
    float *cen = malloc(8 * d * sizeof *cen), *x = malloc(8 * big * d * sizeof *x);
    int64_t *y = malloc(8 * big * sizeof *y);
    assert_non_null(cen);
    assert_non_null(x);
    assert_non_null(y);
    vmf_assert_ok(vmf_sample_uniform(d, 8, &rng, cen));
    for (size_t q = 0; q < 8; q++) {
        vmf_assert_ok(vmf_sample_vmf(cen + q * d, d, 200.0, big, &rng, x + q * big * d));
        for (size_t i = 0; i < big; i++)
            y[q * big + i] = (int64_t)q;
    }
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    /* Day 1: classes 0 and 1, 200 rows each. */
    vmf_labels l1 = {2 * big, y, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, 2 * big, d, &l1));
    assert_int_equal(vmf__classifier_buf_cap(&c->o, d, 2), 128);
    for (size_t q = 0; q < 2; q++)
        assert_int_equal(c->cls[q]->buf_n, 128);
    /* Day 2: classes 2 and 3 arrive with 10 rows each; 0 and 1 are thinned to 64. */
    float *x2 = malloc(20 * d * sizeof *x2);
    int64_t y2[20];
    assert_non_null(x2);
    for (size_t i = 0; i < 20; i++) {
        size_t q = 2 + i / 10;
        memcpy(x2 + i * d, x + (q * big + i % 10) * d, d * sizeof *x2);
        y2[i] = (int64_t)q;
    }
    vmf_labels l2 = {20, y2, NULL};
    vmf_classifier *before;
    vmf_assert_ok(vmf_classifier_copy(c, &before));
    vmf_assert_ok(vmf_classifier_partial_fit(c, x2, 20, d, &l2));
    assert_int_equal(c->n_classes, 4);
    size_t want[4] = {64, 64, 10, 10};
    for (size_t q = 0; q < 4; q++) {
        assert_int_equal(c->cls[q]->buf_n, want[q]);
        assert_true(c->cls[q]->buf_cap == c->cls[q]->buf_n || q >= 2);
        for (size_t i = 0; i < c->cls[q]->buf_n; i++)
            assert_true(is_one_of(c->cls[q]->buf + i * d, x + q * big * d, big, d));
        /* Distinct rows: a thinned sample is a subset, not a resample. */
        for (size_t i = 1; i < c->cls[q]->buf_n; i++)
            assert_false(is_one_of(c->cls[q]->buf + i * d, c->cls[q]->buf, i, d));
    }
    /* The copy taken before is untouched (the thinned classes were private copies). */
    for (size_t q = 0; q < 2; q++)
        assert_int_equal(before->cls[q]->buf_n, 128);
    /* Day 3: four more classes: every share is 32. */
    vmf_labels l3 = {4 * big, y + 4 * big, NULL};
    vmf_assert_ok(vmf_classifier_partial_fit(c, x + 4 * big * d, 4 * big, d, &l3));
    for (size_t q = 0; q < 8; q++)
        assert_int_equal(c->cls[q]->buf_n, q == 2 || q == 3 ? 10 : 32);
    /* Saved as version 7; loads and saves back to the same bytes. */
    size_t len;
    void *b = blob(c, &len);
    assert_int_equal(((const uint8_t *)b)[8], 7);
    vmf_classifier *r;
    vmf_assert_ok(vmf_classifier_load(b, len, &r));
    assert_saves_as(r, b, len);
    vmf_classifier_free(r);
    free(b);
    /* A version-6 blob whose samples fit the old capacity (4 rows) loads as it is. */
    vmf_classifier *small;
    vmf_assert_ok(vmf_classifier_new(&o, d, &small));
    vmf_labels l4 = {4, y2, NULL}; /* 4 rows of class 2 */
    vmf_assert_ok(vmf_classifier_partial_fit(small, x2, 4, d, &l4));
    void *b6;
    size_t l6;
    vmf_assert_ok(vmf__classifier_save_version(small, 6, &b6, &l6));
    vmf_assert_ok(vmf_classifier_load(b6, l6, &r));
    void *b7;
    size_t l7;
    vmf_assert_ok(vmf__classifier_save_version(r, 6, &b7, &l7));
    vmf_test_assert_same_bytes(b6, l6, b7, l7);
    free(b6);
    free(b7);
    vmf_classifier_free(r);
    vmf_classifier_free(small);
    vmf_classifier_free(before);
    vmf_classifier_free(c);
    free(x2);
    free(cen);
    free(x);
    free(y);
}

/*
 * The novelty score is the cosine distance to the nearest component mean of
 * any class, computed here from the public mixtures; predict_topk_novelty
 * returns the same classes and probabilities as predict_topk, and
 * vmf_classifier_novelty the same scores. Rows of a class the model never
 * saw score far above rows of known classes.
 */
static void test_novelty(void **state)
{
    (void)state;
    const size_t d = 16, nc = 4, sizes[4] = {300, 200, 150, 100};
    float *centres = malloc(nc * d * sizeof *centres);
    float *x = malloc(750 * d * sizeof *x);
    int64_t *y = malloc(750 * sizeof *y);
    size_t n = make_classes(11, d, nc, sizes, centres, x, y);
    /* Learn classes 0..2 (labels 3, 13, 23); class 3 (label 33) stays unknown. */
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] != 33) {
            memmove(x + nk * d, x + i * d, d * sizeof *x);
            y[nk++] = y[i];
        }
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, d, &c));
    vmf_assert_ok(vmf_classifier_partial_fit(c, x, nk, d, &(vmf_labels){nk, y, NULL}));
    vmf_rng rng;
    vmf_rng_seed(&rng, 12);
    const size_t nq = 40;
    float *q = malloc(nq * d * sizeof *q);
    for (size_t i = 0; i < nq; i++)
        vmf_assert_ok(vmf_sample_vmf(centres + (i % nc) * d, d, 200.0, 1, &rng, q + i * d));
    int32_t *t0 = malloc(nq * 2 * sizeof *t0), *t1 = malloc(nq * 2 * sizeof *t1);
    double *p0 = malloc(nq * 2 * sizeof *p0), *p1 = malloc(nq * 2 * sizeof *p1);
    double *nv = malloc(nq * sizeof *nv), *nv2 = malloc(nq * sizeof *nv2);
    vmf_assert_ok(vmf_classifier_predict_topk(c, q, nq, d, 2, t0, p0));
    vmf_assert_ok(vmf_classifier_predict_topk_novelty(c, q, nq, d, 2, t1, p1, nv));
    vmf_assert_ok(vmf_classifier_novelty(c, q, nq, d, nv2));
    assert_memory_equal(t0, t1, nq * 2 * sizeof *t0);
    assert_memory_equal(p0, p1, nq * 2 * sizeof *p0);
    double known_max = 0.0, unknown_min = 2.0;
    for (size_t i = 0; i < nq; i++) {
        double best = -2.0;
        for (size_t k = 0; k < vmf_classifier_n_classes(c); k++) {
            const vmf_mixture *m = vmf_classifier_class_mixture(c, k);
            for (size_t j = 0; j < vmf_mixture_n_components(m); j++) {
                double s = 0.0;
                for (size_t r = 0; r < d; r++)
                    s += (double)vmf_mixture_means(m)[j * d + r] * q[i * d + r];
                best = s > best ? s : best;
            }
        }
        vmf_assert_close(nv[i], 1.0 - best, 1e-5, 1e-5);
        assert_true(nv[i] == nv2[i]);
        assert_true(nv[i] >= 0.0 && nv[i] <= 2.0);
        if (i % nc == 3)
            unknown_min = nv[i] < unknown_min ? nv[i] : unknown_min;
        else
            known_max = nv[i] > known_max ? nv[i] : known_max;
    }
    /* kappa 200 in 16 dims: known rows lie within ~0.1 of their mode; random
     * centres are ~0.25 apart or more. */
    assert_true(known_max < 0.15);
    assert_true(unknown_min > known_max);
    assert_int_equal(vmf_classifier_novelty(c, q, nq, d + 1, nv), VMF_EINVAL);
    assert_int_equal(vmf_classifier_novelty(c, q, nq, d, NULL), VMF_EINVAL);
    vmf_classifier_free(c);
    free(centres), free(x), free(y), free(q), free(t0), free(t1), free(p0), free(p1), free(nv),
        free(nv2);
}

/* ---- fmnist-cce64 ---- */

typedef struct fmnist {
    vmf_array x, y, split, day;
} fmnist;

static void fmnist_load(fmnist *f)
{
    char p[512];
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path("fmnist-cce64.X.npy", p, sizeof p), &f->x));
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path("fmnist-cce64.y.npy", p, sizeof p), &f->y));
    vmf_assert_ok(
        vmf_npy_read(vmf_test_data_path("fmnist-cce64.split.npy", p, sizeof p), &f->split));
    vmf_assert_ok(vmf_npy_read(vmf_test_data_path("fmnist-cce64.day.npy", p, sizeof p), &f->day));
}

/* Top-1 and top-4 macro recall of c on the test split (computed here). */
static void fmnist_score(const vmf_classifier *c, const fmnist *f, double *r1, double *r4)
{
    size_t n = f->x.shape[0], d = f->x.shape[1];
    const float *x = f->x.data;
    const int32_t *y = f->y.data;
    const uint8_t *sp = f->split.data;
    size_t nt = 0;
    for (size_t i = 0; i < n; i++)
        nt += sp[i] == 1;
    float *xt = calloc(nt * d, sizeof *xt);
    int32_t *yt = malloc(nt * sizeof *yt), *top = malloc(nt * 4 * sizeof *top);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (sp[i] == 1) {
            memcpy(xt + m * d, x + i * d, d * sizeof *xt);
            yt[m++] = y[i];
        }
    vmf_assert_ok(vmf_classifier_predict_topk(c, xt, nt, d, 4, top, NULL));
    double hit1[10] = {0}, hit4[10] = {0}, cnt[10] = {0};
    const vmf_label_table *t = vmf_classifier_labels(c);
    for (size_t i = 0; i < nt; i++) {
        cnt[yt[i]] += 1;
        for (size_t j = 0; j < 4; j++) {
            if (top[i * 4 + j] < 0 || vmf_label_table_int(t, (size_t)top[i * 4 + j]) != yt[i])
                continue;
            hit4[yt[i]] += 1;
            if (j == 0)
                hit1[yt[i]] += 1;
        }
    }
    *r1 = *r4 = 0.0;
    for (size_t q = 0; q < 10; q++) {
        assert_true(cnt[q] > 0);
        *r1 += hit1[q] / cnt[q] / 10.0;
        *r4 += hit4[q] / cnt[q] / 10.0;
    }
    free(xt);
    free(yt);
    free(top);
}

/*
 * Train on split 0 (in day order for partial_fit, all at once for fit),
 * score split 1. Measured with the defaults (equal priors, automatic kappa
 * scale from the prequential record of the training rows): partial_fit
 * 0.8901 / 0.9948 (scale 0.0312), fit 0.8876 / 0.9953 (scale 0.0884)
 * (top-1 / top-4 macro recall). The acceptance bar is the scikit-learn
 * diagonal GMM (5 components per class), 0.887 / 0.994: asserted as is for
 * partial_fit; fit clears it by 0.0006 only, so its top-1 floor is 0.885.
 * See docs/classifier.md.
 */
static void test_fmnist(void **state)
{
    (void)state;
    fmnist f;
    memset(&f, 0, sizeof f);
    fmnist_load(&f);
    size_t n = f.x.shape[0], d = f.x.shape[1];
    const uint8_t *sp = f.split.data;
    const int16_t *day = f.day.data;
    const int32_t *y = f.y.data;
    float *xs = malloc(n * d * sizeof *xs);
    int64_t *ys = malloc(n * sizeof *ys);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++)
        if (sp[i] == 0) {
            memcpy(xs + ns * d, (const float *)f.x.data + i * d, d * sizeof *xs);
            ys[ns++] = y[i];
        }
    vmf_classifier_opts o;
    vmf_classifier_opts_init(&o);
    /* Online: partial_fit day by day (stream rows are sorted by day). */
    vmf_classifier *c;
    vmf_assert_ok(vmf_classifier_new(&o, 0, &c));
    size_t days = 0;
    for (size_t i0 = 0; i0 < ns;) {
        size_t i1 = i0;
        while (i1 < ns && day[i1] == day[i0])
            i1++;
        vmf_labels yb = {i1 - i0, ys + i0, NULL};
        vmf_assert_ok(vmf_classifier_partial_fit(c, xs + i0 * d, i1 - i0, d, &yb));
        i0 = i1;
        days++;
    }
    assert_int_equal(days, 200);
    double r1, r4;
    fmnist_score(c, &f, &r1, &r4);
    printf("# fmnist-cce64 partial_fit: top-1 %.4f top-4 %.4f (kappa scale %.4f)\n", r1, r4,
           vmf_classifier_kappa_scale(c));
    assert_true(r1 >= 0.900); /* 0.8906 with the mixtures alone */
    assert_true(r4 >= 0.995);
    /* Batch. */
    vmf_classifier *b;
    vmf_labels ya = {ns, ys, NULL};
    vmf_assert_ok(vmf_classifier_fit(&o, xs, ns, d, &ya, &b));
    fmnist_score(b, &f, &r1, &r4);
    printf("# fmnist-cce64 fit: top-1 %.4f top-4 %.4f (kappa scale %.4f)\n", r1, r4,
           vmf_classifier_kappa_scale(b));
    assert_true(r1 >= 0.900);
    assert_true(r4 >= 0.995);
    vmf_classifier_free(b);
    vmf_classifier_free(c);
    free(xs);
    free(ys);
    vmf_array_free(&f.x);
    vmf_array_free(&f.y);
    vmf_array_free(&f.split);
    vmf_array_free(&f.day);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separated_classes),
        cmocka_unit_test(test_string_labels_and_copy),
        cmocka_unit_test(test_long_tail),
        cmocka_unit_test(test_bad_input_unchanged),
        cmocka_unit_test(test_save_load_json_continue),
        cmocka_unit_test(test_json_parameters_only),
        cmocka_unit_test(test_hostile_blobs),
        cmocka_unit_test(test_identical_rows),
        cmocka_unit_test(test_prequential_record),
        cmocka_unit_test(test_refine),
        cmocka_unit_test(test_sample_pool),
        cmocka_unit_test(test_novelty),
        cmocka_unit_test(test_fmnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
