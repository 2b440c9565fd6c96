/*
 * test_mixture.c - the vMF mixture object: construction and validation,
 * accessors, scoring against direct double-precision formulas, the EM
 * kernels (responsibilities, blocked statistics, M-step) against brute
 * force, sampling, and the model JSON (bit-exact round trip, every field
 * validated).
 */
#include "internal.h"
#include "mixture_internal.h"
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A random mixture with uneven weights, kappas in [lo, hi] and its parameters. */
typedef struct fixture {
    size_t k, d;
    double *w, *kap;
    float *mu;
    vmf_mixture *m;
} fixture;

static void fixture_make(fixture *f, uint64_t seed, size_t k, size_t d, double lo, double hi)
{
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    f->k = k;
    f->d = d;
    f->w = malloc(k * sizeof *f->w);
    f->kap = malloc(k * sizeof *f->kap);
    f->mu = malloc(k * d * sizeof *f->mu);
    assert_non_null(f->w);
    assert_non_null(f->kap);
    assert_non_null(f->mu);
    vmf_assert_ok(vmf_sample_uniform(d, k, &rng, f->mu));
    double s = 0.0;
    for (size_t c = 0; c < k; c++) {
        f->w[c] = 0.1 + vmf_rng_uniform(&rng);
        s += f->w[c];
        f->kap[c] = lo + (hi - lo) * vmf_rng_uniform(&rng);
    }
    for (size_t c = 0; c < k; c++)
        f->w[c] /= s;
    vmf_assert_ok(vmf_mixture_new(k, d, f->w, f->mu, f->kap, &f->m));
}

static void fixture_free(fixture *f)
{
    free(f->w);
    free(f->kap);
    free(f->mu);
    vmf_mixture_free(f->m);
}

/* Rows drawn from the fixture's own mixture. */
static float *fixture_sample(const fixture *f, uint64_t seed, size_t n, int32_t *comp)
{
    float *x = malloc(n * f->d * sizeof *x);
    assert_non_null(x);
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    vmf_assert_ok(vmf_mixture_sample(f->m, n, &rng, x, comp));
    return x;
}

/* log w_k + log C_d(kappa_k) + kappa_k mu_k^T x in double, the reference of log_joint. */
static double ref_log_joint(const fixture *f, const float *x, size_t c)
{
    double dot = 0.0;
    for (size_t j = 0; j < f->d; j++)
        dot += (double)f->mu[c * f->d + j] * (double)x[j];
    return log(f->w[c]) + vmf_log_norm_const(f->d, f->kap[c]) + f->kap[c] * dot;
}

static void test_new_accessors_copy(void **state)
{
    (void)state;
    const size_t k = 3, d = 4;
    double w[3] = {1.0, 2.0, 1.0}; /* normalized on the way in */
    double kap[3] = {0.0, 10.0, 1e5};
    float mu[12] = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0.6f, 0.8f}; /* row 1 off by 2: rejected */
    vmf_mixture *m = (vmf_mixture *)1;
    assert_int_equal(vmf_mixture_new(k, d, w, mu, kap, &m), VMF_EINVAL);
    assert_null(m);
    assert_non_null(strstr(vmf_last_error(), "means[1]"));
    mu[5] = 1.0005f; /* within the 1e-3 tolerance: stored renormalized */
    vmf_assert_ok(vmf_mixture_new(k, d, w, mu, kap, &m));
    assert_int_equal(vmf_mixture_n_components(m), 3);
    assert_int_equal(vmf_mixture_dim(m), 4);
    assert_int_equal(vmf_mixture_tied_kappa(m), 0);
    vmf_assert_close(vmf_mixture_weights(m)[0], 0.25, 0, 0);
    vmf_assert_close(vmf_mixture_weights(m)[1], 0.5, 0, 0);
    assert_true(vmf_mixture_means(m)[5] == 1.0f);
    assert_true(vmf_mixture_means(m)[10] == 0.6f); /* unit already: stored as given */
    vmf_assert_close(vmf_mixture_kappas(m)[2], 1e5, 0, 0);
    /* (K-1) + K(d-1) + K */
    assert_int_equal(vmf_mixture_n_params(m), 2 + 9 + 3);

    vmf_mixture *c;
    vmf_assert_ok(vmf_mixture_copy(m, &c));
    assert_memory_equal(vmf_mixture_means(c), vmf_mixture_means(m), k * d * sizeof(float));
    assert_memory_equal(vmf_mixture_weights(c), vmf_mixture_weights(m), k * sizeof(double));
    assert_memory_equal(vmf_mixture_kappas(c), vmf_mixture_kappas(m), k * sizeof(double));
    vmf_mixture_free(c);
    vmf_mixture_free(m);
    vmf_mixture_free(NULL);

    /* Each kind of bad parameter, with the field named. */
    double wbad[3] = {1.0, NAN, 1.0}, kbad[3] = {1.0, -1.0, 1.0}, wzero[3] = {0, 0, 0};
    assert_int_equal(vmf_mixture_new(0, d, w, mu, kap, &m), VMF_EINVAL);
    assert_int_equal(vmf_mixture_new(k, 1, w, mu, kap, &m), VMF_EINVAL);
    assert_int_equal(vmf_mixture_new(k, d, wbad, mu, kap, &m), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "weights[1]"));
    assert_int_equal(vmf_mixture_new(k, d, wzero, mu, kap, &m), VMF_EINVAL);
    assert_int_equal(vmf_mixture_new(k, d, w, mu, kbad, &m), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "kappas[1]"));
    mu[0] = NAN;
    assert_int_equal(vmf_mixture_new(k, d, w, mu, kap, &m), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "means[0][0]"));
    assert_int_equal(vmf_mixture_new(k, d, NULL, mu, kap, &m), VMF_EINVAL);
    assert_int_equal(vmf_mixture_copy(NULL, &m), VMF_EINVAL);
    assert_null(m);
}

static void test_scoring_matches_double_reference(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 11, 7, 24, 5.0, 300.0);
    const size_t n = 301;
    float *x = fixture_sample(&f, 12, n, NULL);
    double *lj = malloc(n * f.k * sizeof *lj), *pr = malloc(n * f.k * sizeof *pr);
    double *ls = malloc(n * sizeof *ls);
    int32_t *lab = malloc(n * sizeof *lab);
    assert_non_null(lj);
    assert_non_null(pr);
    assert_non_null(ls);
    assert_non_null(lab);
    vmf_assert_ok(vmf_mixture_log_joint(f.m, x, n, f.d, lj));
    vmf_assert_ok(vmf_mixture_score_samples(f.m, x, n, f.d, ls));
    vmf_assert_ok(vmf_mixture_predict_proba(f.m, x, n, f.d, pr));
    vmf_assert_ok(vmf_mixture_predict(f.m, x, n, f.d, lab));
    double mean, sum = 0.0;
    vmf_assert_ok(vmf_mixture_mean_loglik(f.m, x, n, f.d, &mean));
    for (size_t i = 0; i < n; i++) {
        double ref[7], mx = -INFINITY;
        size_t best = 0;
        for (size_t c = 0; c < f.k; c++) {
            ref[c] = ref_log_joint(&f, x + i * f.d, c);
            /* The float32 dot product costs about kappa·2^-24·sqrt(d). */
            vmf_assert_close(lj[i * f.k + c], ref[c], 0, 1e-4);
            if (ref[c] > mx) {
                mx = ref[c];
                best = c;
            }
        }
        double s = 0.0;
        for (size_t c = 0; c < f.k; c++)
            s += exp(ref[c] - mx);
        vmf_assert_close(ls[i], mx + log(s), 0, 1e-4);
        double psum = 0.0;
        for (size_t c = 0; c < f.k; c++) {
            vmf_assert_close(pr[i * f.k + c], exp(ref[c] - mx) / s, 0, 1e-4);
            psum += pr[i * f.k + c];
        }
        vmf_assert_close(psum, 1.0, 1e-12, 0);
        assert_int_equal(lab[i], (int32_t)best);
        sum += ls[i];
    }
    vmf_assert_close(mean, sum / (double)n, 1e-12, 0);

    double bic, aic, p = (double)vmf_mixture_n_params(f.m);
    vmf_assert_ok(vmf_mixture_information_criteria(f.m, x, n, f.d, &bic, &aic));
    vmf_assert_close(bic, -2.0 * sum + p * log((double)n), 1e-12, 1e-9);
    vmf_assert_close(aic, -2.0 * sum + 2.0 * p, 1e-12, 1e-9);

    /* Bad input: dimension mismatch, NaN, a non-unit row, no rows for the mean. */
    assert_int_equal(vmf_mixture_score_samples(f.m, x, n, f.d - 1, ls), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "columns"));
    x[5 * f.d + 3] = NAN;
    assert_int_equal(vmf_mixture_predict(f.m, x, n, f.d, lab), VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 5"));
    x[5 * f.d + 3] = 3.0f;
    assert_int_equal(vmf_mixture_predict_proba(f.m, x, n, f.d, pr), VMF_EINVAL);
    assert_int_equal(vmf_mixture_mean_loglik(f.m, x, 0, f.d, &mean), VMF_EINVAL);
    assert_int_equal(vmf_mixture_log_joint(NULL, x, n, f.d, lj), VMF_EINVAL);

    free(x);
    free(lj);
    free(pr);
    free(ls);
    free(lab);
    fixture_free(&f);
}

/*
 * The EM kernel (float exp, double normalizer) agrees with the libm scoring
 * to 1e-6 in log p and in the responsibilities, also with a weight-0
 * component and kappas from 0 to 1e6, and hard / stochastic modes pick one
 * component per row.
 */
static void test_resp_kernel(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 21, 9, 16, 0.0, 60.0);
    f.m->weights[2] = 0.0; /* never chosen */
    f.m->kappas[4] = 1e6;
    f.m->kappas[5] = 0.0;
    vmf__mixture_refresh(f.m);
    const size_t n = 500, k = f.k;
    float *x = fixture_sample(&f, 22, n, NULL);
    /* Some rows exactly on the kappa = 1e6 mean. */
    memcpy(x + 7 * f.d, f.m->means + 4 * f.d, f.d * sizeof *x);
    double *ls = malloc(n * sizeof *ls), *pr = malloc(n * k * sizeof *pr);
    double *rl = malloc(n * sizeof *rl), lsc[9];
    float *dots = malloc(n * k * sizeof *dots);
    vmf_assert_ok(vmf_mixture_score_samples(f.m, x, n, f.d, ls));
    vmf_assert_ok(vmf_mixture_predict_proba(f.m, x, n, f.d, pr));
    for (int mode = 0; mode < 3; mode++) {
        vmf_rng rng;
        vmf_rng_seed(&rng, 5);
        vmf__sgemm(0, 1, n, k, f.d, 1.0f, x, f.d, f.m->means, f.d, 0.0f, dots, k);
        double tot = vmf__mixture_resp_block(f.m, n, (vmf_assignment)mode, &rng, dots, lsc, rl);
        size_t n_tiny = 0;
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            vmf_assert_close(rl[i], ls[i], 0, 1e-6);
            sum += rl[i];
            assert_true(dots[i * k + 2] == 0.0f);
            double rs = 0.0;
            for (size_t c = 0; c < k; c++) {
                float r = dots[i * k + c];
                assert_true(r >= 0.0f && r <= 1.0f);
                if (mode == VMF_ASSIGN_SOFT && pr[i * k + c] > 1e-30) {
                    /* Relative: 2^-22 from the float exp, |l - max| · 2^-24 from narrowing. */
                    vmf_assert_close(r, pr[i * k + c], 1e-5, 0);
                    n_tiny += pr[i * k + c] < 1e-10;
                } else if (mode == VMF_ASSIGN_SOFT)
                    vmf_assert_close(r, pr[i * k + c], 0, 1e-30);
                else
                    assert_true(r == 0.0f || r == 1.0f);
                rs += r;
            }
            vmf_assert_close(rs, 1.0, 0, 1e-6);
        }
        vmf_assert_close(tot, sum, 1e-15, 0);
        if (mode == VMF_ASSIGN_SOFT)
            assert_true(n_tiny > 100); /* the relative check reached deep into the tail */
        assert_true(dots[7 * k + 4] > 0.999f);
    }
    free(x);
    free(ls);
    free(pr);
    free(rl);
    free(dots);
    fixture_free(&f);
}

/*
 * estep_stats against brute force over the posterior of predict_proba: s0,
 * s1 and the log-likelihood, for several block sizes; repeated calls are
 * bit-identical.
 */
static void test_estep_stats_and_mstep(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 31, 5, 32, 20.0, 80.0);
    const size_t n = 1000, k = f.k, d = f.d;
    float *x = fixture_sample(&f, 32, n, NULL);
    double *pr = malloc(n * k * sizeof *pr), *ls = malloc(n * sizeof *ls);
    double s0r[5] = {0}, *s1r = calloc(k * d, sizeof *s1r), llr = 0.0;
    vmf_assert_ok(vmf_mixture_predict_proba(f.m, x, n, d, pr));
    vmf_assert_ok(vmf_mixture_score_samples(f.m, x, n, d, ls));
    for (size_t i = 0; i < n; i++) {
        llr += ls[i];
        for (size_t c = 0; c < k; c++) {
            s0r[c] += pr[i * k + c];
            for (size_t j = 0; j < d; j++)
                s1r[c * d + j] += pr[i * k + c] * (double)x[i * d + j];
        }
    }
    double s0[5], *s1 = malloc(k * d * sizeof *s1), *s1b = malloc(k * d * sizeof *s1b), ll;
    double s0b[5], llb, *rl = malloc(n * sizeof *rl);
    size_t blocks[] = {1, 7, 256, 1000, 5000, 0};
    for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
        vmf_assert_ok(vmf__mixture_estep_stats(f.m, x, n, d, VMF_ASSIGN_SOFT, NULL, blocks[b], s0,
                                               s1, &ll, rl));
        double tot = 0.0;
        for (size_t c = 0; c < k; c++) {
            vmf_assert_close(s0[c], s0r[c], 0, 1e-3);
            tot += s0[c];
            for (size_t j = 0; j < d; j++)
                vmf_assert_close(s1[c * d + j], s1r[c * d + j], 0, 1e-3);
        }
        vmf_assert_close(tot, (double)n, 1e-6, 0);
        vmf_assert_close(ll, llr, 0, 1e-4);
        /* Other block sizes give other float32 GEMM roundings: about kappa·1e-7. */
        for (size_t i = 0; i < n; i++)
            vmf_assert_close(rl[i], ls[i], 0, 1e-4);
        vmf_assert_ok(vmf__mixture_estep_stats(f.m, x, n, d, VMF_ASSIGN_SOFT, NULL, blocks[b], s0b,
                                               s1b, &llb, NULL));
        assert_memory_equal(s0, s0b, sizeof s0);
        assert_memory_equal(s1, s1b, k * d * sizeof *s1);
        assert_true(ll == llb);
    }
    /* Hard mode: integer masses, s1 = sums of the rows of each predicted component. */
    int32_t *lab = malloc(n * sizeof *lab);
    vmf_assert_ok(vmf_mixture_predict(f.m, x, n, d, lab));
    vmf_assert_ok(
        vmf__mixture_estep_stats(f.m, x, n, d, VMF_ASSIGN_HARD, NULL, 100, s0, s1, &ll, NULL));
    memset(s0b, 0, sizeof s0b);
    memset(s1b, 0, k * d * sizeof *s1b);
    for (size_t i = 0; i < n; i++) {
        s0b[lab[i]] += 1.0;
        for (size_t j = 0; j < d; j++)
            s1b[(size_t)lab[i] * d + j] += (double)x[i * d + j];
    }
    assert_memory_equal(s0, s0b, sizeof s0);
    assert_memory_equal(s1, s1b, k * d * sizeof *s1);

    /* M-step from the brute-force statistics. */
    vmf_kappa_opts ko;
    vmf_kappa_opts_init(&ko);
    vmf_assert_ok(vmf__mixture_mstep(f.m, s0r, s1r, &ko, 0));
    for (size_t c = 0; c < k; c++) {
        double r = 0.0;
        for (size_t j = 0; j < d; j++)
            r += s1r[c * d + j] * s1r[c * d + j];
        r = sqrt(r);
        vmf_assert_close(f.m->weights[c], s0r[c] / (double)n, 1e-9, 0);
        for (size_t j = 0; j < d; j++)
            vmf_assert_close(f.m->means[c * d + j], s1r[c * d + j] / r, 0, 1e-6);
        double kref;
        vmf_assert_ok(vmf_kappa_estimate(&ko, d, s0r[c], r, &kref));
        vmf_assert_close(f.m->kappas[c], kref, 1e-12, 0);
    }
    vmf_assert_ok(vmf__mixture_mstep(f.m, s0r, s1r, &ko, 1));
    assert_int_equal(vmf_mixture_tied_kappa(f.m), 1);
    for (size_t c = 1; c < k; c++)
        assert_true(f.m->kappas[c] == f.m->kappas[0]);
    double zero[5] = {0};
    assert_int_equal(vmf__mixture_mstep(f.m, zero, s1r, &ko, 0), VMF_EINVAL);

    free(x);
    free(pr);
    free(ls);
    free(s1r);
    free(s1);
    free(s1b);
    free(rl);
    free(lab);
    fixture_free(&f);
}

/* Sampling: component frequencies follow the weights, rows are unit, draws cluster on mu. */
static void test_sample(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 41, 4, 8, 50.0, 50.0);
    const size_t n = 20000;
    int32_t *comp = malloc(n * sizeof *comp);
    float *x = fixture_sample(&f, 42, n, comp);
    double cnt[4] = {0}, dotsum[4] = {0};
    for (size_t i = 0; i < n; i++) {
        double nn = 0.0, dot = 0.0;
        for (size_t j = 0; j < f.d; j++) {
            nn += (double)x[i * f.d + j] * x[i * f.d + j];
            dot += (double)x[i * f.d + j] * f.mu[(size_t)comp[i] * f.d + j];
        }
        vmf_assert_close(nn, 1.0, 0, 1e-5);
        cnt[comp[i]] += 1.0;
        dotsum[comp[i]] += dot;
    }
    for (size_t c = 0; c < 4; c++) {
        vmf_assert_close(cnt[c] / (double)n, f.w[c], 0, 0.015);
        /* E[mu^T x] = A_d(kappa) */
        vmf_assert_close(dotsum[c] / cnt[c], vmf_bessel_ratio(f.d, f.kap[c]), 0, 0.005);
    }
    /* Same seed, same rows. */
    float *y = fixture_sample(&f, 42, n, NULL);
    assert_memory_equal(x, y, n * f.d * sizeof *x);
    vmf_rng rng;
    vmf_rng_seed(&rng, 1);
    assert_int_equal(vmf_mixture_sample(NULL, 1, &rng, x, NULL), VMF_EINVAL);
    free(y);
    free(x);
    free(comp);
    fixture_free(&f);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 51, 6, 33, 0.0, 1e6);
    char *js;
    vmf_assert_ok(vmf_mixture_to_json(f.m, &js));
    assert_non_null(strstr(js, "\"format\":\"vmfmm-model\""));
    assert_non_null(strstr(js, "\"kind\":\"mixture\""));
    vmf_mixture *back;
    vmf_assert_ok(vmf_mixture_from_json(js, strlen(js), &back));
    vmf_test_assert_same_mixture(f.m, back);
    char *js2;
    vmf_assert_ok(vmf_mixture_to_json(back, &js2));
    assert_string_equal(js, js2);
    free(js);
    free(js2);
    vmf_mixture_free(back);

    /* A tied mixture built by the M-step keeps its flag. */
    f.m->tied = 1;
    for (size_t c = 0; c < f.k; c++)
        f.m->kappas[c] = 123.456789012345678;
    vmf__mixture_refresh(f.m);
    vmf_assert_ok(vmf_mixture_to_json(f.m, &js));
    assert_non_null(strstr(js, "\"tied_kappa\":true"));
    vmf_assert_ok(vmf_mixture_from_json(js, strlen(js), &back));
    vmf_test_assert_same_mixture(f.m, back);
    assert_int_equal(vmf_mixture_n_params(back), 5 + 6 * 32 + 1);
    free(js);
    vmf_mixture_free(back);
    fixture_free(&f);
}

/* Each malformed document fails with VMF_EFORMAT and a message naming the field. */
static void test_json_validation(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"[1,2]", "object"},
        {"{\"format\":\"x\"}", "format"},
        {"{\"format\":\"vmfmm-model\",\"version\":2}", "version"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"classifier\"}", "kind"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"n_components\":1}",
         "dim"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":-1}",
         "n_components"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":1,"
         "\"n_components\":1}",
         "dim"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":0}",
         "tied_kappa"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"kappas\":[1],\"means\":[[1,0]]}",
         "weights"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":2,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1,1],"
         "\"means\":[[1,0],[0,1]]}",
         "weights"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[\"a\"],"
         "\"means\":[[1,0]]}",
         "kappas[0]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[-1],"
         "\"means\":[[1,0]]}",
         "kappas[0]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1],"
         "\"means\":[[1,0,0]]}",
         "means[0]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1],"
         "\"means\":[[1,1]]}",
         "means[0]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1],"
         "\"means\":[[1e300,0]]}",
         "means[0][0]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":2,\"tied_kappa\":true,\"weights\":[0.5,0.5],\"kappas\":[1,2],"
         "\"means\":[[1,0],[0,1]]}",
         "kappas[1]"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
         "\"n_components\":2,\"tied_kappa\":false,\"weights\":[0,0],\"kappas\":[1,2],"
         "\"means\":[[1,0],[0,1]]}",
         "weights"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":99999999999,"
         "\"n_components\":99999999999}",
         "dim"},
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":4096,"
         "\"n_components\":4096,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1],"
         "\"means\":[]}",
         "means"},
        /* A huge "dim" with a tiny document fails before allocating for it. */
        {"{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":16777216,"
         "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[1],"
         "\"means\":[[1,0]]}",
         "means[0]"},
        {"{\"format\":", "line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vmf_mixture *m = (vmf_mixture *)1;
        int rc = vmf_mixture_from_json(cases[i].json, strlen(cases[i].json), &m);
        if (rc != VMF_EFORMAT || !strstr(vmf_last_error(), cases[i].field)) {
            print_error("case %zu: rc %d, message \"%s\", expected field %s\n", i, rc,
                        vmf_last_error(), cases[i].field);
            fail();
        }
        assert_null(m);
    }
    /* Integers are accepted where numbers are expected. */
    const char *ok = "{\"format\":\"vmfmm-model\",\"version\":1,\"kind\":\"mixture\",\"dim\":2,"
                     "\"n_components\":1,\"tied_kappa\":false,\"weights\":[1],\"kappas\":[0],"
                     "\"means\":[[0,1]]}";
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_from_json(ok, strlen(ok), &m));
    vmf_mixture_free(m);
}

/* Every allocation failure is VMF_ENOMEM with nothing leaked (ASan checks leaks). */
static void test_alloc_failures(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f, 61, 3, 5, 1.0, 10.0);
    const size_t n = 50;
    float *x = fixture_sample(&f, 62, n, NULL);
    double out[50 * 3];
    char *js;
    vmf_assert_ok(vmf_mixture_to_json(f.m, &js));
    int done = 0;
    for (long fail_at = 0; !done; fail_at++) {
        assert_true(fail_at < 1000);
        vmf_mixture *m = NULL, *c = NULL, *j = NULL;
        char *js2 = NULL;
        vmf_debug_fail_alloc_after(fail_at);
        int rc = vmf_mixture_new(f.k, f.d, f.w, f.mu, f.kap, &m);
        if (rc == VMF_OK)
            rc = vmf_mixture_copy(m, &c);
        if (rc == VMF_OK)
            rc = vmf_mixture_log_joint(c, x, n, f.d, out);
        if (rc == VMF_OK)
            rc = vmf_mixture_predict_proba(c, x, n, f.d, out);
        if (rc == VMF_OK)
            rc = vmf_mixture_to_json(c, &js2);
        if (rc == VMF_OK)
            rc = vmf_mixture_from_json(js, strlen(js), &j);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK)
            done = 1;
        else
            assert_int_equal(rc, VMF_ENOMEM);
        vmf_mixture_free(m);
        vmf_mixture_free(c);
        vmf_mixture_free(j);
        free(js2);
    }
    free(js);
    free(x);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_accessors_copy),
        cmocka_unit_test(test_scoring_matches_double_reference),
        cmocka_unit_test(test_resp_kernel),
        cmocka_unit_test(test_estep_stats_and_mstep),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_validation),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
