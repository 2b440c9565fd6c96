/*
 * test_suffstats.c - the statistics API for out-of-core and distributed EM
 * (vmfmm/suffstats.h) and the blocked .npy row reader (vmfmm/rowstream.h):
 *   - exact summation: the words of a data set do not depend on the order
 *     or grouping of its blocks (merge, element-wise word sums);
 *   - EM driven through the API block by block, from given initial means,
 *     equals vmf_mixture_fit in memory (same blocks) within 1e-9, including
 *     a fit where components starve and are re-seeded;
 *   - worst-row candidates and the row sample are the same set however the
 *     rows are split or ordered;
 *   - the row reader reads ranges of <f4 and <f8 files and rejects bad ones;
 *   - bad arguments and injected allocation failures.
 */
#include "vmf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 20261202u

static float *make_data(size_t n, size_t d, size_t k, float *means)
{
    float *x = malloc(n * d * sizeof *x);
    assert_non_null(x);
    vmf_test_mixture_data(SEED, n, d, k, 20.0, 60.0, x, NULL, means, NULL, NULL);
    return x;
}

/* Statistics of x [n][d] in blocks of b rows added in the given block order. */
static vmf_suffstats *stats_in_order(const vmf_mixture *m, const float *x, size_t n, size_t d,
                                     size_t b, const size_t *order, size_t nb)
{
    vmf_suffstats *s;
    vmf_assert_ok(vmf_suffstats_new(vmf_mixture_n_components(m), d, &s));
    for (size_t q = 0; q < nb; q++) {
        size_t i0 = order[q] * b, rows = n - i0 < b ? n - i0 : b;
        vmf_assert_ok(vmf_suffstats_add_block(s, m, x + i0 * d, rows, d, VMF_ASSIGN_SOFT, NULL, i0,
                                              NULL, VMF_SUFFSTATS_S1));
    }
    vmf_suffstats_normalize(s);
    return s;
}

static void test_exact_sum_order_free(void **state)
{
    (void)state;
    size_t n = 3001, d = 24, k = 5, b = 250, nb = (n + b - 1) / b;
    float *mu = malloc(k * d * sizeof *mu);
    float *x = make_data(n, d, k, mu);
    double w[5] = {0.2, 0.2, 0.2, 0.2, 0.2}, kap[5] = {10, 20, 30, 40, 50};
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_new(k, d, w, mu, kap, &m));
    size_t fwd[16], rev[16];
    for (size_t q = 0; q < nb; q++) {
        fwd[q] = q;
        rev[q] = nb - 1 - q;
    }
    vmf_suffstats *a = stats_in_order(m, x, n, d, b, fwd, nb);
    vmf_suffstats *r = stats_in_order(m, x, n, d, b, rev, nb);
    /* Two "ranks": even and odd blocks, their words summed element-wise. */
    size_t even[8], odd[8], ne = 0, no = 0;
    for (size_t q = 0; q < nb; q++) {
        if (q % 2)
            odd[no++] = q;
        else
            even[ne++] = q;
    }
    vmf_suffstats *e = stats_in_order(m, x, n, d, b, even, ne);
    vmf_suffstats *o = stats_in_order(m, x, n, d, b, odd, no);
    size_t nw, nw2;
    int64_t *wa = vmf_suffstats_words(a, &nw);
    int64_t *wr = vmf_suffstats_words(r, &nw2);
    assert_int_equal(nw, (k + k * d + 2) * VMF_SUFFSTATS_LIMBS);
    assert_memory_equal(wa, wr, nw * sizeof *wa);
    int64_t *we = vmf_suffstats_words(e, &nw2);
    int64_t *wo = vmf_suffstats_words(o, &nw2);
    for (size_t i = 0; i < nw; i++)
        we[i] += wo[i];
    vmf_suffstats_normalize(e);
    assert_memory_equal(wa, we, nw * sizeof *wa);
    vmf_suffstats *o2 = stats_in_order(m, x, n, d, b, odd, no);
    vmf_suffstats *e2 = stats_in_order(m, x, n, d, b, even, ne);
    vmf_assert_ok(vmf_suffstats_merge(o2, e2));
    assert_memory_equal(wa, vmf_suffstats_words(o2, &nw2), nw * sizeof *wa);

    /* The totals agree with the in-memory kernel's double sums to rounding. */
    double s0[5], *s1 = malloc(k * d * sizeof *s1), ll, rows;
    vmf_suffstats_totals(a, s0, s1, &ll, &rows);
    assert_true(rows == (double)n);
    double mass = 0;
    for (size_t c = 0; c < k; c++)
        mass += s0[c];
    vmf_assert_close(mass, (double)n, 1e-6, 0);
    double ref;
    vmf_assert_ok(vmf_mixture_mean_loglik(m, x, n, d, &ref));
    vmf_assert_close(ll / (double)n, ref, 1e-6, 1e-6);

    /* The worst rows are the same set whatever the grouping. */
    size_t ca, co;
    const double *lla, *llo;
    const uint64_t *ida, *ido;
    const float *ra, *ro;
    vmf_suffstats_worst(a, &ca, &lla, &ida, &ra);
    vmf_suffstats_worst(o2, &co, &llo, &ido, &ro);
    assert_int_equal(ca, k);
    assert_int_equal(co, k);
    assert_memory_equal(ida, ido, k * sizeof *ida);
    assert_memory_equal(ra, ro, k * d * sizeof *ra);
    double *row_ll = malloc(n * sizeof *row_ll);
    vmf_assert_ok(vmf_mixture_score_samples(m, x, n, d, row_ll));
    for (size_t q = 0; q < k; q++) {
        assert_memory_equal(ra + q * d, x + ida[q] * d, d * sizeof *ra);
        if (q > 0)
            assert_true(lla[q - 1] <= lla[q]);
    }
    /* No row outside the set is worse than the set's best by more than the kernel's rounding. */
    for (size_t i = 0; i < n; i++) {
        int in = 0;
        for (size_t q = 0; q < k; q++)
            in |= ida[q] == i;
        if (!in)
            assert_true(row_ll[i] >= lla[k - 1] - 1e-5);
    }
    /* Offering a set's own candidates again changes nothing. */
    vmf_assert_ok(vmf_suffstats_offer_worst(a, ca, lla, ida, ra));
    vmf_suffstats_worst(a, &co, &llo, &ido, &ro);
    assert_int_equal(co, k);
    assert_memory_equal(ida, ido, k * sizeof *ida);

    free(row_ll);
    free(s1);
    vmf_suffstats_free(a);
    vmf_suffstats_free(r);
    vmf_suffstats_free(e);
    vmf_suffstats_free(o);
    vmf_suffstats_free(e2);
    vmf_suffstats_free(o2);
    vmf_mixture_free(m);
    free(x);
    free(mu);
}

/* Fixed-point round trip of awkward values: tiny, negative, large, cancelling. */
static void test_fixed_point_values(void **state)
{
    (void)state;
    size_t d = 2;
    vmf_suffstats *s;
    vmf_assert_ok(vmf_suffstats_new(1, d, &s));
    float x[2] = {1.0f, 0.0f};
    float mu[2] = {0.0f, 1.0f};
    double w = 1.0, kap = 3.0;
    vmf_mixture *m;
    vmf_assert_ok(vmf_mixture_new(1, d, &w, mu, &kap, &m));
    /* One row orthogonal to the mean: log p = log C_2(3); s1 = (1, 0). */
    for (int i = 0; i < 1000; i++)
        vmf_assert_ok(vmf_suffstats_add_block(s, m, x, 1, d, VMF_ASSIGN_SOFT, NULL, (uint64_t)i,
                                              NULL, VMF_SUFFSTATS_S1));
    double s0, s1[2], ll, rows;
    vmf_suffstats_totals(s, &s0, s1, &ll, &rows);
    assert_true(s0 == 1000.0 && rows == 1000.0 && s1[0] == 1000.0 && s1[1] == 0.0);
    vmf_assert_close(ll, 1000.0 * vmf_log_norm_const(2, 3.0), 1e-14, 0);
    assert_true(ll < 0.0);
    /* Words can be summed by a transport and still read back exactly. */
    size_t nw;
    int64_t *words = vmf_suffstats_words(s, &nw);
    for (size_t i = 0; i < nw; i++)
        words[i] *= 3;
    vmf_suffstats_totals(s, &s0, s1, &ll, &rows);
    assert_true(s0 == 3000.0 && rows == 3000.0 && s1[0] == 3000.0);
    vmf_assert_close(ll, 3000.0 * vmf_log_norm_const(2, 3.0), 1e-14, 0);
    vmf_suffstats_clear(s);
    vmf_suffstats_totals(s, &s0, s1, &ll, &rows);
    assert_true(s0 == 0.0 && rows == 0.0 && ll == 0.0);
    vmf_mixture_free(m);
    vmf_suffstats_free(s);
}

/*
 * EM through the API, as a streaming driver runs it (em.c's schedule), with
 * blocks of b rows. Returns the mixture and the final mean log-likelihood.
 */
static vmf_mixture *stream_em(const vmf_em_opts *o, const float *x, size_t n, size_t d, size_t b,
                              double *loglik, size_t *n_reseeded)
{
    vmf_mixture *m;
    vmf_rng rng;
    vmf_rng_seed(&rng, o->seed);
    vmf_assert_ok(vmf_em_init_mixture(o, x, n, d, &rng, &m));
    vmf_suffstats *s;
    vmf_assert_ok(vmf_suffstats_new(o->n_components, d, &s));
    *n_reseeded = 0;
    for (size_t it = 0; it <= o->max_iter + 1; it++) {
        vmf_suffstats_clear(s);
        vmf_assignment mode = it == 0 ? VMF_ASSIGN_HARD : o->assignment;
        for (size_t i0 = 0; i0 < n; i0 += b) {
            size_t rows = n - i0 < b ? n - i0 : b;
            vmf_assert_ok(vmf_suffstats_add_block(s, m, x + i0 * d, rows, d, mode, NULL, i0, NULL,
                                                  VMF_SUFFSTATS_S1));
        }
        double ll, r;
        vmf_suffstats_totals(s, NULL, NULL, &ll, &r);
        *loglik = ll / r;
        if (it == o->max_iter + 1)
            break;
        size_t q;
        vmf_assert_ok(vmf_suffstats_mstep(s, o, m, &q));
        *n_reseeded += q;
    }
    vmf_suffstats_free(s);
    return m;
}

static void assert_mixtures_close(const vmf_mixture *a, const vmf_mixture *b, double rtol)
{
    size_t k = vmf_mixture_n_components(a), d = vmf_mixture_dim(a);
    assert_int_equal(k, vmf_mixture_n_components(b));
    for (size_t c = 0; c < k; c++) {
        vmf_assert_close(vmf_mixture_weights(a)[c], vmf_mixture_weights(b)[c], rtol, 0);
        vmf_assert_close(vmf_mixture_kappas(a)[c], vmf_mixture_kappas(b)[c], rtol, 0);
        for (size_t j = 0; j < d; j++)
            vmf_assert_close(vmf_mixture_means(a)[c * d + j], vmf_mixture_means(b)[c * d + j], rtol,
                             1e-7);
    }
}

static void test_stream_em_equals_batch_em(void **state)
{
    (void)state;
    size_t n = 5000, d = 32, k = 4;
    float *mu = malloc(k * d * sizeof *mu);
    float *x = make_data(n, d, k, mu);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.max_iter = 15;
    o.tol = 0; /* exactly max_iter iterations, whatever the stopping rule */
    o.init = VMF_INIT_GIVEN;
    float init[4 * 32];
    for (size_t c = 0; c < k; c++) /* rows 0, 7, 14, 21 as the initial means */
        memcpy(init + c * d, x + c * 7 * d, d * sizeof *init);
    o.init_means = init;
    o.block_rows = 1024;
    o.exact = 1; /* the dense path: the statistics API keeps every responsibility */
    vmf_mixture *ref;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, x, n, d, &ref, &rep));
    double ll;
    size_t nr;
    vmf_mixture *got = stream_em(&o, x, n, d, 1024, &ll, &nr);
    assert_mixtures_close(ref, got, 1e-9);
    vmf_assert_close(ll, rep.loglik, 1e-12, 0);
    assert_int_equal(nr, rep.n_reseeded);
    vmf_mixture_free(got);
    vmf_mixture_free(ref);
    vmf_em_report_free(&rep);

    /* Hard EM, tied kappa. */
    o.assignment = VMF_ASSIGN_HARD;
    o.tied_kappa = 1;
    vmf_assert_ok(vmf_mixture_fit(&o, x, n, d, &ref, &rep));
    got = stream_em(&o, x, n, d, 1024, &ll, &nr);
    assert_mixtures_close(ref, got, 1e-9);
    vmf_assert_close(ll, rep.loglik, 1e-12, 0);
    vmf_mixture_free(got);
    vmf_mixture_free(ref);
    vmf_em_report_free(&rep);
    free(x);
    free(mu);
}

/*
 * Starving components: the initial means repeat one row, so the hard pass
 * gives the duplicates no mass and the re-seeding rule moves them onto the
 * worst-explained rows, which the statistics track from the stream.
 */
static void test_stream_reseeding_equals_batch(void **state)
{
    (void)state;
    size_t n = 3000, d = 16, k = 5;
    float *mu = malloc(k * d * sizeof *mu);
    float *x = make_data(n, d, k, mu);
    float init[5 * 16];
    for (size_t c = 0; c < k; c++)
        memcpy(init + c * d, x + (c < 2 ? c : 1) * d, d * sizeof *init);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = k;
    o.max_iter = 10;
    o.tol = 0;
    o.init = VMF_INIT_GIVEN;
    o.init_means = init;
    o.block_rows = 700;
    o.exact = 1; /* the dense path: the statistics API keeps every responsibility */
    vmf_mixture *ref;
    vmf_em_report rep;
    vmf_assert_ok(vmf_mixture_fit(&o, x, n, d, &ref, &rep));
    assert_true(rep.n_reseeded >= 3);
    double ll;
    size_t nr;
    vmf_mixture *got = stream_em(&o, x, n, d, 700, &ll, &nr);
    assert_int_equal(nr, rep.n_reseeded);
    assert_mixtures_close(ref, got, 1e-9);
    vmf_assert_close(ll, rep.loglik, 1e-12, 0);
    vmf_mixture_free(got);
    vmf_mixture_free(ref);
    vmf_em_report_free(&rep);
    free(x);
    free(mu);
}

static void test_row_sample_order_free(void **state)
{
    (void)state;
    size_t n = 2000, d = 8, cap = 100;
    float *x = make_data(n, d, 3, NULL);
    vmf_row_sample *a, *b, *c;
    vmf_assert_ok(vmf_row_sample_new(cap, d, 7, &a));
    vmf_assert_ok(vmf_row_sample_new(cap, d, 7, &b));
    vmf_assert_ok(vmf_row_sample_new(cap, d, 7, &c));
    vmf_assert_ok(vmf_row_sample_offer(a, x, n, d, 0, NULL));
    /* b: the rows backwards, one at a time. */
    for (size_t i = n; i-- > 0;)
        vmf_assert_ok(vmf_row_sample_offer(b, x + i * d, 1, d, i, NULL));
    vmf_row_sample_finish(a, UINT64_MAX);
    vmf_row_sample_finish(b, UINT64_MAX);
    size_t na, nb;
    const uint64_t *ka, *kb, *ia, *ib;
    const float *ra, *rb;
    vmf_row_sample_get(a, &na, &ka, &ia, &ra);
    vmf_row_sample_get(b, &nb, &kb, &ib, &rb);
    assert_int_equal(na, cap);
    assert_int_equal(nb, cap);
    assert_memory_equal(ia, ib, cap * sizeof *ia);
    assert_memory_equal(ra, rb, cap * d * sizeof *ra);
    /* Sorted by id, rows are the offered rows, keys are the cap smallest. */
    uint64_t kmax = 0;
    for (size_t q = 0; q < cap; q++) {
        if (q > 0)
            assert_true(ia[q - 1] < ia[q]);
        assert_memory_equal(ra + q * d, x + ia[q] * d, d * sizeof *ra);
        assert_true(ka[q] == vmf_row_key(7, ia[q]));
        kmax = ka[q] > kmax ? ka[q] : kmax;
    }
    size_t below = 0;
    for (size_t i = 0; i < n; i++)
        below += vmf_row_key(7, i) <= kmax;
    assert_int_equal(below, cap);
    /* A threshold keeps exactly the rows at or below it. */
    vmf_assert_ok(vmf_row_sample_offer(c, x, n, d, 0, NULL));
    vmf_row_sample_finish(c, ka[0]);
    size_t ncnt;
    vmf_row_sample_get(c, &ncnt, NULL, NULL, NULL);
    size_t expect = 0;
    for (size_t q = 0; q < cap; q++)
        expect += ka[q] <= ka[0];
    assert_int_equal(ncnt, expect);
    assert_int_equal(vmf_row_sample_offer(c, x, 1, d, 0, NULL), VMF_EINVAL);
    vmf_row_sample_free(a);
    vmf_row_sample_free(b);
    vmf_row_sample_free(c);
    free(x);
}

static void write_npy(const char *path, vmf_dtype t, void *data, size_t n, size_t d, size_t ndim)
{
    vmf_array a = {.dtype = t, .ndim = ndim, .shape = {n, d}, .count = n * d, .data = data};
    if (ndim == 1)
        a.shape[0] = n * d;
    vmf_assert_ok(vmf_npy_write(path, &a));
}

static void test_row_reader(void **state)
{
    const char *dir = *state;
    char p32[4096], p64[4096], pi[4096], p1[4096], pt[4096];
    snprintf(p32, sizeof p32, "%s/x32.npy", dir);
    snprintf(p64, sizeof p64, "%s/x64.npy", dir);
    snprintf(pi, sizeof pi, "%s/xi.npy", dir);
    snprintf(p1, sizeof p1, "%s/x1.npy", dir);
    snprintf(pt, sizeof pt, "%s/xt.npy", dir);
    size_t n = 37, d = 5;
    float x[37 * 5];
    double xd[37 * 5];
    int32_t xi[37 * 5];
    for (size_t i = 0; i < n * d; i++) {
        x[i] = (float)i * 0.25f - 3.0f;
        xd[i] = (double)i / 3.0;
        xi[i] = (int32_t)i;
    }
    write_npy(p32, VMF_DTYPE_F32, x, n, d, 2);
    write_npy(p64, VMF_DTYPE_F64, xd, n, d, 2);
    write_npy(pi, VMF_DTYPE_I32, xi, n, d, 2);
    write_npy(p1, VMF_DTYPE_F32, x, n, d, 1);
    vmf_row_reader *r;
    vmf_assert_ok(vmf_row_reader_open(p32, &r));
    assert_int_equal(vmf_row_reader_rows(r), n);
    assert_int_equal(vmf_row_reader_dim(r), d);
    float buf[37 * 5];
    vmf_assert_ok(vmf_row_reader_read(r, 10, 20, buf));
    assert_memory_equal(buf, x + 10 * d, 20 * d * sizeof *buf);
    vmf_assert_ok(vmf_row_reader_read(r, 0, n, buf));
    assert_memory_equal(buf, x, n * d * sizeof *buf);
    assert_int_equal(vmf_row_reader_read(r, 30, 8, buf), VMF_EINVAL);
    vmf_row_reader_close(r);
    vmf_assert_ok(vmf_row_reader_open(p64, &r));
    vmf_assert_ok(vmf_row_reader_read(r, 36, 1, buf));
    for (size_t j = 0; j < d; j++)
        assert_true(buf[j] == (float)xd[36 * d + j]);
    vmf_row_reader_close(r);
    assert_int_equal(vmf_row_reader_open(pi, &r), VMF_EFORMAT);
    assert_null(r);
    assert_non_null(strstr(vmf_last_error(), "<i4"));
    assert_int_equal(vmf_row_reader_open(p1, &r), VMF_EFORMAT);
    assert_int_equal(vmf_row_reader_open(dir, &r), VMF_EIO);
    snprintf(pt, sizeof pt, "%s/missing.npy", dir);
    assert_int_equal(vmf_row_reader_open(pt, &r), VMF_EIO);
    /* A file cut short of its shape is refused at open. */
    size_t len;
    unsigned char *bytes = vmf_test_read_file(p32, &len);
    snprintf(pt, sizeof pt, "%s/cut.npy", dir);
    vmf_test_write_file(pt, bytes, len - 7);
    assert_int_equal(vmf_row_reader_open(pt, &r), VMF_EFORMAT);
    assert_non_null(strstr(vmf_last_error(), "truncated"));
    free(bytes);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    vmf_suffstats *s = NULL;
    assert_int_equal(vmf_suffstats_new(0, 3, &s), VMF_EINVAL);
    assert_int_equal(vmf_suffstats_new(2, 1, &s), VMF_EINVAL);
    assert_null(s);
    vmf_assert_ok(vmf_suffstats_new(2, 3, &s));
    float mu[6] = {1, 0, 0, 0, 1, 0};
    double w[2] = {0.5, 0.5}, kap[2] = {1, 1};
    vmf_mixture *m, *m4;
    vmf_assert_ok(vmf_mixture_new(2, 3, w, mu, kap, &m));
    float mu4[8] = {1, 0, 0, 0, 0, 1, 0, 0};
    vmf_assert_ok(vmf_mixture_new(2, 4, w, mu4, kap, &m4));
    float x[6] = {1, 0, 0, NAN, 0, 0};
    assert_int_equal(
        vmf_suffstats_add_block(s, m, x, 2, 3, VMF_ASSIGN_SOFT, NULL, 0, NULL, VMF_SUFFSTATS_S1),
        VMF_EINVAL);
    assert_non_null(strstr(vmf_last_error(), "row 1"));
    assert_int_equal(
        vmf_suffstats_add_block(s, m4, x, 1, 4, VMF_ASSIGN_SOFT, NULL, 0, NULL, VMF_SUFFSTATS_S1),
        VMF_EINVAL);
    assert_int_equal(vmf_suffstats_add_block(s, m, x, 1, 3, VMF_ASSIGN_STOCHASTIC, NULL, 0, NULL,
                                             VMF_SUFFSTATS_S1),
                     VMF_EINVAL);
    vmf_em_opts o;
    vmf_em_opts_init(&o);
    o.n_components = 2;
    /* No mass yet: the M-step refuses. */
    assert_int_equal(vmf_suffstats_mstep(s, &o, m, NULL), VMF_EINVAL);
    vmf_mixture *init = NULL;
    assert_int_equal(vmf_em_init_mixture(&o, x, 1, 3, NULL, &init), VMF_EINVAL);
    assert_null(init);
    vmf_suffstats *s4;
    vmf_assert_ok(vmf_suffstats_new(2, 4, &s4));
    assert_int_equal(vmf_suffstats_merge(s, s4), VMF_EINVAL);
    for (long after = 0; after < 10; after++) {
        vmf_suffstats *t = NULL;
        vmf_debug_fail_alloc_after(after);
        int rc = vmf_suffstats_new(3, 8, &t);
        vmf_debug_fail_alloc_after(-1);
        if (rc == VMF_OK) {
            vmf_suffstats_free(t);
            break;
        }
        assert_int_equal(rc, VMF_ENOMEM);
        assert_null(t);
    }
    vmf_suffstats_free(s4);
    vmf_suffstats_free(s);
    vmf_mixture_free(m);
    vmf_mixture_free(m4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_sum_order_free),
        cmocka_unit_test(test_fixed_point_values),
        cmocka_unit_test(test_stream_em_equals_batch_em),
        cmocka_unit_test(test_stream_reseeding_equals_batch),
        cmocka_unit_test(test_row_sample_order_free),
        cmocka_unit_test_setup_teardown(test_row_reader, vmf_test_tmpdir_setup,
                                        vmf_test_tmpdir_teardown),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
