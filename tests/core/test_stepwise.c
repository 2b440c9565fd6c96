/*
 * test_stepwise.c - stepwise (online) EM: the step rule, recovery of a known
 * mixture, determinism across save / load and JSON, rejection of bad input
 * and of corrupt states with the state unchanged, allocation failures, and
 * the acceptance test against batch EM (200 daily batches, N = 100,000,
 * d = 128, K = 20).
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The saved bytes of a state (caller frees). */
static void *blob(const vmf_stepwise *s, size_t *len)
{
    void *b = NULL;
    vmf_assert_ok(vmf_stepwise_save(s, &b, len));
    return b;
}

/* Fails unless s saves to exactly the bytes b0 [l0]. */
static void assert_saves_as(const vmf_stepwise *s, const void *b0, size_t l0)
{
    size_t l1;
    void *b1 = blob(s, &l1);
    vmf_test_assert_same_bytes(b0, l0, b1, l1);
    free(b1);
}

static void assert_same_state(const vmf_stepwise *a, const vmf_stepwise *b)
{
    size_t la;
    void *ba = blob(a, &la);
    assert_saves_as(b, ba, la);
    free(ba);
}

static void test_opts(void **state)
{
    (void)state;
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    assert_int_equal(o.n_components, 5);
    vmf_assert_close(o.alpha, 0.7, 0, 0);
    vmf_assert_close(o.t0, 2.0, 0, 0);
    assert_int_equal(o.minibatch, 256);
    vmf_stepwise *s = NULL;
    o.alpha = 0.5;
    assert_int_equal(vmf_stepwise_new(&o, 8, &s), VMF_EINVAL);
    assert_null(s);
    vmf_stepwise_opts_init(&o);
    o.minibatch = 0;
    assert_int_equal(vmf_stepwise_new(&o, 8, &s), VMF_EINVAL);
    vmf_stepwise_opts_init(&o);
    assert_int_equal(vmf_stepwise_new(&o, 1, &s), VMF_EINVAL);
    vmf_assert_ok(vmf_stepwise_new(&o, 8, &s));
    assert_null(vmf_stepwise_mixture(s));
    assert_int_equal(vmf_stepwise_steps(s), 0);
    vmf_stepwise_free(s);
}

/*
 * One minibatch from a known mixture: S must move by exactly
 * eta_0 = (0 + t0)^-alpha towards the minibatch's statistics, computed
 * here independently with vmf_mixture_predict_proba (double; the EM kernel
 * uses float exponentials, hence the 1e-5 tolerance).
 */
static void test_step_rule(void **state)
{
    (void)state;
    const size_t d = 6, k = 3, n = 100;
    float *x = malloc(n * d * sizeof *x), means[3 * 6];
    double kap[3], w[3];
    vmf_test_mixture_data(7, n, d, k, 20, 40, x, NULL, means, kap, w);
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_new(k, d, w, means, kap, &m));
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    vmf_stepwise *s;
    vmf_assert_ok(vmf_stepwise_from_mixture(&o, m, 0.0, &s));
    double s0[3], s1[3 * 6];
    memcpy(s0, vmf_stepwise_s0(s), sizeof s0);
    memcpy(s1, vmf_stepwise_s1(s), sizeof s1);
    for (size_t c = 0; c < k; c++)
        vmf_assert_close(s0[c], w[c], 1e-12, 0);
    double *r = malloc(n * k * sizeof *r);
    vmf_assert_ok(vmf_mixture_predict_proba(m, x, n, d, r));
    vmf_assert_ok(vmf_stepwise_update(s, x, n, d));
    assert_int_equal(vmf_stepwise_steps(s), 1);
    assert_int_equal(vmf_stepwise_rows_seen(s), n);
    double eta = pow(2.0, -0.7);
    for (size_t c = 0; c < k; c++) {
        double h0 = 0.0;
        for (size_t i = 0; i < n; i++)
            h0 += r[i * k + c];
        vmf_assert_close(vmf_stepwise_s0(s)[c], (1 - eta) * s0[c] + eta * h0 / n, 0, 1e-5);
        for (size_t j = 0; j < d; j++) {
            double h1 = 0.0;
            for (size_t i = 0; i < n; i++)
                h1 += r[i * k + c] * x[i * d + j];
            vmf_assert_close(vmf_stepwise_s1(s)[c * d + j],
                             (1 - eta) * s1[c * d + j] + eta * h1 / n, 0, 1e-5);
        }
    }
    /* The M-step reads the weights from s0. */
    const double *nw = vmf_mixture_weights(vmf_stepwise_mixture(s));
    double tot = 0.0;
    for (size_t c = 0; c < k; c++)
        tot += vmf_stepwise_s0(s)[c];
    for (size_t c = 0; c < k; c++)
        vmf_assert_close(nw[c], vmf_stepwise_s0(s)[c] / tot, 1e-12, 1e-15);
    free(r);
    free(x);
    vmf_mixture_free(m);
    vmf_stepwise_free(s);
}

/* Finds, for each true mean, the best cosine among the fitted means. */
static double worst_match(const float *truth, const float *fit, size_t k, size_t d)
{
    double worst = 1.0;
    for (size_t a = 0; a < k; a++) {
        double best = -1.0;
        for (size_t b = 0; b < k; b++) {
            double dot = 0.0;
            for (size_t j = 0; j < d; j++)
                dot += (double)truth[a * d + j] * fit[b * d + j];
            best = dot > best ? dot : best;
        }
        worst = best < worst ? best : worst;
    }
    return worst;
}

static void test_recovers_mixture(void **state)
{
    (void)state;
    const size_t d = 16, k = 4, n = 20000;
    float *x = malloc(n * d * sizeof *x), means[4 * 16];
    double kap[4], w[4];
    vmf_test_mixture_data(11, n, d, k, 150, 250, x, NULL, means, kap, w);
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    o.n_components = k;
    vmf_stepwise *s;
    vmf_assert_ok(vmf_stepwise_new(&o, d, &s));
    /* The first batch needs at least K rows. */
    assert_int_equal(vmf_stepwise_update(s, x, 3, d), VMF_EINVAL);
    assert_null(vmf_stepwise_mixture(s));
    for (size_t i0 = 0; i0 < n; i0 += 1000)
        vmf_assert_ok(vmf_stepwise_update(s, x + i0 * d, 1000, d));
    const vmf_mixture *m = vmf_stepwise_mixture(s);
    assert_non_null(m);
    assert_int_equal(vmf_stepwise_rows_seen(s), n);
    assert_int_equal(vmf_stepwise_steps(s), 20 * 4); /* 1000 rows = 3 x 256 + 232 */
    double cosine = worst_match(means, vmf_mixture_means(m), k, d);
    printf("# worst cosine to a true mean: %.6f\n", cosine);
    assert_true(cosine > 0.995);
    free(x);
    vmf_stepwise_free(s);
}

static void test_determinism_save_load_json(void **state)
{
    (void)state;
    const size_t d = 10, k = 3, n = 6000;
    float *x = malloc(n * d * sizeof *x);
    vmf_test_mixture_data(5, n, d, k, 10, 30, x, NULL, NULL, NULL, NULL);
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    o.n_components = k;
    o.eta_floor = 0.01;
    vmf_stepwise *a, *b;
    vmf_assert_ok(vmf_stepwise_new(&o, d, &a));
    vmf_assert_ok(vmf_stepwise_new(&o, d, &b));
    /* b: the empty state through save/load and JSON before the first batch. */
    size_t len;
    void *bb = blob(b, &len);
    vmf_stepwise_free(b);
    vmf_assert_ok(vmf_stepwise_load(bb, len, &b));
    free(bb);
    for (size_t day = 0; day < 12; day++) {
        const float *xb = x + day * 500 * d;
        vmf_assert_ok(vmf_stepwise_update(a, xb, 500, d));
        vmf_assert_ok(vmf_stepwise_update(b, xb, 500, d));
        assert_same_state(a, b);
        if (day % 3 == 0) {
            bb = blob(b, &len);
            vmf_stepwise_free(b);
            vmf_assert_ok(vmf_stepwise_load(bb, len, &b));
            free(bb);
        } else if (day % 3 == 1) {
            char *js;
            vmf_assert_ok(vmf_stepwise_to_json(b, &js));
            vmf_stepwise_free(b);
            vmf_assert_ok(vmf_stepwise_from_json(js, strlen(js), &b));
            free(js);
        }
        assert_same_state(a, b);
    }
    free(x);
    vmf_stepwise_free(a);
    vmf_stepwise_free(b);
}

static void test_bad_input_unchanged(void **state)
{
    (void)state;
    const size_t d = 8, n = 300;
    float *x = malloc(n * d * sizeof *x);
    vmf_test_mixture_data(3, n, d, 2, 20, 30, x, NULL, NULL, NULL, NULL);
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    o.n_components = 2;
    vmf_stepwise *s;
    vmf_assert_ok(vmf_stepwise_new(&o, d, &s));
    vmf_assert_ok(vmf_stepwise_update(s, x, 200, d));
    size_t len0;
    void *b0 = blob(s, &len0);
    float *bad = malloc(10 * d * sizeof *bad);
    memcpy(bad, x + 200 * d, 10 * d * sizeof *bad);
    assert_int_equal(vmf_stepwise_update(s, bad, 10, d - 1), VMF_EINVAL);
    assert_int_equal(vmf_stepwise_update(s, bad, 0, d), VMF_EINVAL);
    assert_int_equal(vmf_stepwise_update(s, NULL, 10, d), VMF_EINVAL);
    bad[3 * d + 1] = NAN;
    assert_int_equal(vmf_stepwise_update(s, bad, 10, d), VMF_EINVAL);
    bad[3 * d + 1] = INFINITY;
    assert_int_equal(vmf_stepwise_update(s, bad, 10, d), VMF_EINVAL);
    memset(bad + 3 * d, 0, d * sizeof *bad);
    assert_int_equal(vmf_stepwise_update(s, bad, 10, d), VMF_EINVAL);
    assert_true(strlen(vmf_last_error()) > 0);
    assert_saves_as(s, b0, len0);

    /* Injected allocation failures: each failing update leaves the same bytes. */
    int succeeded = 0;
    for (long fail_at = 0; fail_at < 200 && !succeeded; fail_at++) {
        vmf_debug_fail_alloc_after(fail_at);
        int rc = vmf_stepwise_update(s, x + 200 * d, 100, d);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK) {
            succeeded = 1;
            break;
        }
        assert_int_equal(rc, VMF_ENOMEM);
        assert_saves_as(s, b0, len0);
    }
    assert_true(succeeded);
    free(b0);
    free(bad);
    free(x);
    vmf_stepwise_free(s);
}

static void test_corrupt_state(void **state)
{
    (void)state;
    const size_t d = 5, n = 200;
    float *x = malloc(n * d * sizeof *x);
    vmf_test_mixture_data(9, n, d, 2, 10, 20, x, NULL, NULL, NULL, NULL);
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    o.n_components = 2;
    vmf_stepwise *s, *t = NULL;
    vmf_assert_ok(vmf_stepwise_new(&o, d, &s));
    vmf_assert_ok(vmf_stepwise_update(s, x, n, d));
    size_t len;
    unsigned char *b = blob(s, &len);
    /* Every single-byte change and every truncation is rejected. */
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x41;
        assert_int_equal(vmf_stepwise_load(b, len, &t), VMF_EFORMAT);
        assert_null(t);
        b[i] ^= 0x41;
    }
    for (size_t l = 0; l < len; l += 7)
        assert_int_equal(vmf_stepwise_load(b, l, &t), VMF_EFORMAT);
    vmf_assert_ok(vmf_stepwise_load(b, len, &t));
    vmf_stepwise_free(t);
    /* Malformed JSON and JSON with a wrong field are VMF_EFORMAT. */
    assert_int_equal(vmf_stepwise_from_json("{", 1, &t), VMF_EFORMAT);
    char *js;
    vmf_assert_ok(vmf_stepwise_to_json(s, &js));
    char *p = strstr(js, "\"alpha\":");
    assert_non_null(p);
    p[8] = '7'; /* alpha 7.x: outside (0.5, 1] */
    assert_int_equal(vmf_stepwise_from_json(js, strlen(js), &t), VMF_EFORMAT);
    assert_null(t);
    free(js);
    free(b);
    free(x);
    vmf_stepwise_free(s);
}

/*
 * Acceptance: a stream of 200 daily batches (500 rows each) from a fixed
 * mixture with N = 100,000, d = 128, K = 20 ends within 0.5% of the mean
 * per-sample log-likelihood that batch EM reaches on all the rows.
 */
static void test_matches_batch_em(void **state)
{
    (void)state;
    const size_t n = 100000, d = 128, k = 20, days = 200, per_day = n / days;
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    vmf_test_mixture_data(2026, n, d, k, 40, 120, x, NULL, NULL, NULL, NULL);
    vmf_em_opts eo;
    vmf_em_opts_init(&eo);
    eo.n_components = k;
    eo.max_iter = 200;
    vmf_mixture *bm;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&eo, x, n, d, &bm, &rep));
    double batch_ll = rep.loglik;
    vmf_em_report_free(&rep);

    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    o.n_components = k;
    vmf_stepwise *s;
    vmf_assert_ok(vmf_stepwise_new(&o, d, &s));
    for (size_t day = 0; day < days; day++)
        vmf_assert_ok(vmf_stepwise_update(s, x + day * per_day * d, per_day, d));
    double online_ll;
    vmf_assert_ok(vmf_mixture_mean_loglik(vmf_stepwise_mixture(s), x, n, d, &online_ll));
    printf("# batch EM %.6f, stepwise %.6f per sample (rel. gap %.3g)\n", batch_ll, online_ll,
           (batch_ll - online_ll) / fabs(batch_ll));
    assert_true(online_ll >= batch_ll - 0.005 * fabs(batch_ll));
    vmf_mixture_free(bm);
    vmf_stepwise_free(s);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_step_rule),
        cmocka_unit_test(test_recovers_mixture),
        cmocka_unit_test(test_determinism_save_load_json),
        cmocka_unit_test(test_bad_input_unchanged),
        cmocka_unit_test(test_corrupt_state),
        cmocka_unit_test(test_matches_batch_em),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
