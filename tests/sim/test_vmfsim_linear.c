/*
 * test_vmfsim_linear.c - the linear families' solver (sim/vmfsim/model_linear.c)
 * reaches the reference solutions and its warm start changes the cost, not
 * the answer:
 *
 *   - softmax: the class-balanced multinomial logistic regression of the
 *     fmnist-cce64 stream rows of days 1..10 (517 rows, 8 classes) equals
 *     scikit-learn's. Reference made once with /usr/bin/python3, scikit-learn
 *     1.2.1: LogisticRegression(C=1, class_weight='balanced', tol=1e-10)
 *     on those rows in float64, polished by scipy's L-BFGS-B (gtol 1e-12) on
 *     the same objective (scikit-learn stops within 1e-4 of it), intercepts
 *     centred;
 *   - sqhinge: the one-vs-rest class-balanced squared-hinge SVC of the same
 *     rows equals liblinear's primal solution (-s 2, eps 1e-6), computed here;
 *   - a fit of days 1..100 warm-started from days 1..99 (with its curvature
 *     pairs) equals the cold fit of days 1..100, in fewer evaluations;
 *   - the logreg family's daily refits (warm) predict the test rows as a
 *     cold fit does.
 */
#include "vmf_test.h"
#include "vmfsim.h"

#include <linear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct data {
    vmfsim_stream s;
    size_t n10, n19, n20, k; /* rows of days 1..10, 1..99, 1..100; classes */
    int32_t *yl;             /* [n20] local labels (see load) */
    int32_t *local;          /* [n_classes] */
    double *cw10;            /* [k] balanced weights over days 1..10 */
    double *cw19;            /* [k] balanced weights over days 1..99 */
    double *cw20;            /* [k] over days 1..100 */
} data;

static void quiet(const char *s)
{
    (void)s;
}

/* Balanced weights n / (K n_c) of the first n rows over the k local classes. */
static void weights(const int32_t *yl, size_t n, size_t k, double *cw)
{
    size_t cnt[64] = {0};
    size_t present = 0;
    for (size_t i = 0; i < n; i++)
        cnt[yl[i]]++;
    for (size_t j = 0; j < k; j++)
        present += cnt[j] > 0;
    for (size_t j = 0; j < k; j++)
        cw[j] = cnt[j] ? (double)n / ((double)present * (double)cnt[j]) : 1.0;
}

/* The stream, with local labels over the classes present in the rows of days 1..map_day. */
static void load(data *D, size_t map_day)
{
    char err[VMFSIM_ERR_SIZE] = "";
    memset(D, 0, sizeof *D);
    int rc = vmfsim_stream_load(VMF_TEST_DATA_DIR "/fmnist-cce64", &D->s, err);
    if (rc)
        fail_msg("load: %s", err);
    D->n10 = D->s.day_off[11];
    D->n19 = D->s.day_off[100];
    D->n20 = D->s.day_off[101];
    assert_int_equal(D->n10, 517);
    const size_t nm = D->s.day_off[map_day + 1];
    D->local = malloc(D->s.n_classes * sizeof *D->local);
    D->yl = calloc(D->n20, sizeof *D->yl);
    for (size_t c = 0; c < D->s.n_classes; c++)
        D->local[c] = -1;
    for (size_t i = 0; i < nm; i++)
        D->local[D->s.y[i]] = 0;
    for (size_t c = 0; c < D->s.n_classes; c++)
        if (D->local[c] == 0)
            D->local[c] = (int32_t)D->k++;
    for (size_t i = 0; i < nm; i++)
        D->yl[i] = D->local[D->s.y[i]];
    D->cw10 = malloc(D->k * sizeof *D->cw10);
    D->cw19 = malloc(D->k * sizeof *D->cw19);
    D->cw20 = malloc(D->k * sizeof *D->cw20);
    weights(D->yl, D->n10, D->k, D->cw10);
    if (nm >= D->n20) {
        weights(D->yl, D->n19, D->k, D->cw19);
        weights(D->yl, D->n20, D->k, D->cw20);
    }
}

static void unload(data *D)
{
    vmfsim_stream_free(&D->s);
    free(D->yl), free(D->local), free(D->cw10), free(D->cw19), free(D->cw20);
}

static void tight(vmfsim_lin_opts *o, int loss)
{
    vmfsim_lin_opts_init(o);
    o->loss = loss;
    o->tol = 1e-9;
    o->ftol = 1e-15;
    o->max_iter = 300; /* float logits floor the gradient: stop by count */
}

static void test_softmax_matches_sklearn(void **state)
{
    (void)state;
    data D;
    load(&D, 10);
    /* Days 1..10 hold 8 of the 10 classes (dense 0 1 3 5 6 7 8 9); day 20 no more. */
    assert_int_equal(D.k, 8);
    const size_t d = D.s.d, k = D.k, np = k * d + k;
    double *th = calloc(np, sizeof *th);
    vmfsim_lin_opts o;
    tight(&o, VMFSIM_LOSS_SOFTMAX);
    vmfsim_lin_info info;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_lin_fit(&o, D.s.x, D.n10, d, D.yl, k, D.cw10, th, NULL, &info, err));
    vmf_assert_close(info.f, 204.266489169, 2e-7, 0.0); /* f from float logits */
    double nw = 0.0;
    for (size_t j = 0; j < k * d; j++)
        nw += th[j] * th[j];
    vmf_assert_close(sqrt(nw), 13.86238927, 1e-5, 0.0);
    static const double w0[4] = {0.28029304, 0.52751433, 0.131686, 0.24994681};
    static const double b[8] = {0.34597494, -0.24661401, 0.078325198,   -0.20200484,
                                0.10456605, 0.087832723, -0.0078017726, -0.16027828};
    for (size_t q = 0; q < 4; q++)
        vmf_assert_close(th[q], w0[q], 0.0, 2e-4);
    for (size_t j = 0; j < k; j++)
        vmf_assert_close(th[k * d + j], b[j], 0.0, 5e-4);
    /* Probabilities of the first three test rows. */
    static const double p[3][8] = {{0.0023764426, 0.0047305696, 0.0064514577, 0.061047557,
                                    0.0047413212, 0.15169952, 0.023968095, 0.74498504},
                                   {0.72027825, 0.013167107, 0.05309606, 0.0089974351, 0.073266072,
                                    0.021407621, 0.10061562, 0.0091718345},
                                   {0.013871632, 0.88366595, 0.060105522, 0.016188595, 0.0058323911,
                                    0.0076809088, 0.0080632716, 0.0045917331}};
    for (size_t i = 0; i < 3; i++) {
        double z[8], mx = -INFINITY, sum = 0.0;
        for (size_t j = 0; j < k; j++) {
            z[j] = th[k * d + j];
            for (size_t q = 0; q < d; q++)
                z[j] += th[j * d + q] * (double)D.s.test_x[i * d + q];
            mx = fmax(mx, z[j]);
        }
        for (size_t j = 0; j < k; j++)
            sum += exp(z[j] - mx);
        for (size_t j = 0; j < k; j++)
            vmf_assert_close(exp(z[j] - mx) / sum, p[i][j], 0.0, 5e-5);
    }
    /* The default (daily) tolerance stays close to the optimum too. */
    vmfsim_lin_opts od;
    vmfsim_lin_opts_init(&od);
    double *t2 = calloc(np, sizeof *t2);
    vmf_assert_ok(vmfsim_lin_fit(&od, D.s.x, D.n10, d, D.yl, k, D.cw10, t2, NULL, &info, err));
    vmf_assert_close(info.f, 204.266489169, 1e-6, 0.0);
    for (size_t j = 0; j < np; j++)
        vmf_assert_close(t2[j], th[j], 0.0, 5e-3);
    free(th), free(t2);
    unload(&D);
}

static void test_sqhinge_matches_liblinear(void **state)
{
    (void)state;
    data D;
    load(&D, 10);
    const size_t d = D.s.d, k = D.k, np = k * d + k, n = D.n10;
    double *th = calloc(np, sizeof *th);
    vmfsim_lin_opts o;
    tight(&o, VMFSIM_LOSS_SQHINGE);
    vmfsim_lin_info info;
    char err[VMFSIM_ERR_SIZE] = "";
    vmf_assert_ok(vmfsim_lin_fit(&o, D.s.x, n, d, D.yl, k, D.cw10, th, NULL, &info, err));

    /* liblinear on the same rows: bias feature 1, per-class weights, primal solver. */
    struct feature_node *nodes = malloc(n * (d + 2) * sizeof *nodes);
    struct feature_node **xp = malloc(n * sizeof *xp);
    double *yd = malloc(n * sizeof *yd);
    int wl[8];
    double wv[8];
    for (size_t i = 0; i < n; i++) {
        for (size_t q = 0; q < d; q++)
            nodes[i * (d + 2) + q] = (struct feature_node){(int)q + 1, D.s.x[i * d + q]};
        nodes[i * (d + 2) + d] = (struct feature_node){(int)d + 1, 1.0};
        nodes[i * (d + 2) + d + 1] = (struct feature_node){-1, 0.0};
        xp[i] = nodes + i * (d + 2);
        yd[i] = D.yl[i];
    }
    for (size_t j = 0; j < k; j++) {
        wl[j] = (int)j;
        wv[j] = D.cw10[j];
    }
    struct problem prob = {.l = (int)n, .n = (int)d + 1, .y = yd, .x = xp, .bias = 1.0};
    struct parameter par;
    memset(&par, 0, sizeof par);
    par.solver_type = L2R_L2LOSS_SVC;
    par.eps = 1e-6;
    par.C = 1.0;
    par.nr_weight = (int)k;
    par.weight_label = wl;
    par.weight = wv;
    set_print_string_function(quiet);
    assert_null(check_parameter(&prob, &par));
    struct model *m = train(&prob, &par);
    assert_non_null(m);
    int lab[8];
    get_labels(m, lab);
    double maxdiff = 0.0;
    for (size_t c = 0; c < k; c++) {
        size_t j = (size_t)lab[c]; /* our local index of liblinear's c-th class */
        for (size_t q = 0; q < d; q++)
            maxdiff = fmax(maxdiff, fabs(m->w[q * k + c] - th[j * d + q]));
        maxdiff = fmax(maxdiff, fabs(m->w[d * k + c] - th[k * d + j]));
    }
    /* The objective in double at both solutions: ours is at least as low. */
    double fo = 0.0, fl = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < k; c++) {
            size_t j = (size_t)lab[c];
            double zo = th[k * d + j], zl = m->w[d * k + c], sgn = D.yl[i] == (int32_t)j ? 1 : -1;
            double w = sgn > 0 ? D.cw10[j] : 1.0;
            for (size_t q = 0; q < d; q++) {
                zo += th[j * d + q] * (double)D.s.x[i * d + q];
                zl += m->w[q * k + c] * (double)D.s.x[i * d + q];
            }
            fo += w * pow(fmax(0.0, 1.0 - sgn * zo), 2);
            fl += w * pow(fmax(0.0, 1.0 - sgn * zl), 2);
        }
    for (size_t j = 0; j < np; j++)
        fo += 0.5 * th[j] * th[j];
    for (size_t j = 0; j < np; j++)
        fl += 0.5 * m->w[j] * m->w[j];
    print_message("svm objective: ours %.12g liblinear %.12g, max |dw| %g\n", fo, fl, maxdiff);
    /* Float logits limit our solution to about 1e-7 of the objective. */
    vmf_assert_close(fo, fl, 1e-7, 0.0);
    if (maxdiff > 2e-3)
        fail_msg("svm differs from liblinear by %g", maxdiff);
    free_and_destroy_model(&m);
    free(nodes), free(xp), free(yd), free(th);
    unload(&D);
}

static void test_warm_start_equals_cold(void **state)
{
    (void)state;
    data D;
    load(&D, 100);
    assert_int_equal(D.k, 10);
    const size_t d = D.s.d, k = D.k, np = k * d + k;
    char err[VMFSIM_ERR_SIZE] = "";
    for (int loss = 0; loss < 2; loss++) {
        vmfsim_lin_opts o;
        vmfsim_lin_opts_init(&o);
        o.loss = loss;
        double *cold = calloc(np, sizeof *cold), *warm = calloc(np, sizeof *warm);
        vmfsim_lin_info ic, iw0, iw;
        vmf_assert_ok(vmfsim_lin_fit(&o, D.s.x, D.n20, d, D.yl, k, D.cw20, cold, NULL, &ic, err));
        vmfsim_lin_mem mem;
        memset(&mem, 0, sizeof mem);
        vmf_assert_ok(vmfsim_lin_fit(&o, D.s.x, D.n19, d, D.yl, k, D.cw19, warm, &mem, &iw0, err));
        vmf_assert_ok(vmfsim_lin_fit(&o, D.s.x, D.n20, d, D.yl, k, D.cw20, warm, &mem, &iw, err));
        assert_true(ic.converged && iw.converged);
        vmf_assert_close(iw.f, ic.f, 5e-6, 0.0); /* both within the default tolerance */
        /* Solved tightly from both starts, the parameters agree closely. */
        vmfsim_lin_opts ot;
        tight(&ot, loss);
        vmf_assert_ok(vmfsim_lin_fit(&ot, D.s.x, D.n20, d, D.yl, k, D.cw20, cold, NULL, NULL, err));
        vmf_assert_ok(vmfsim_lin_fit(&ot, D.s.x, D.n20, d, D.yl, k, D.cw20, warm, &mem, NULL, err));
        for (size_t j = 0; j < np; j++)
            vmf_assert_close(warm[j], cold[j], 0.0, 1e-2); /* float logits, flat hinge directions */
        if (!(iw.n_eval < ic.n_eval))
            fail_msg("loss %d: warm start took %zu evaluations, cold %zu", loss, iw.n_eval,
                     ic.n_eval);
        vmfsim_lin_mem_free(&mem);
        free(cold), free(warm);
    }
    unload(&D);
}

/* The family: daily warm refits through day 30 predict like one cold fit of day 30. */
static void test_logreg_family_daily_equals_cold(void **state)
{
    (void)state;
    data D;
    load(&D, 10);
    const size_t d = D.s.d, nt = D.s.n_test, K = 4;
    vmfsim_model_cfg cfg;
    vmfsim_model_cfg_init(&cfg);
    char err[VMFSIM_ERR_SIZE] = "";
    for (int fam = 0; fam < 2; fam++) {
        int family = fam ? VMFSIM_SVM : VMFSIM_LOGREG;
        vmfsim_model *daily = NULL, *cold = NULL;
        vmf_assert_ok(vmfsim_model_new(family, &cfg, d, D.s.n_classes, &daily, err));
        vmf_assert_ok(vmfsim_model_new(family, &cfg, d, D.s.n_classes, &cold, err));
        for (size_t t = 1; t <= 30; t++)
            vmf_assert_ok(
                daily->ops->learn_day(daily->state, t, D.s.x, D.s.day_off[t + 1], d, D.s.y, err));
        vmf_assert_ok(cold->ops->learn_day(cold->state, 30, D.s.x, D.s.day_off[31], d, D.s.y, err));
        int32_t *a = malloc(nt * K * sizeof *a), *b = malloc(nt * K * sizeof *b);
        vmf_assert_ok(daily->ops->predict_topk(daily->state, D.s.test_x, nt, d, K, a, NULL, err));
        vmf_assert_ok(cold->ops->predict_topk(cold->state, D.s.test_x, nt, d, K, b, NULL, err));
        size_t same = 0;
        for (size_t i = 0; i < nt; i++)
            same += a[i * K] == b[i * K];
        /* Near-ties may flip: at most 0.1 % of the 10,000 test rows. */
        if (same < nt - nt / 1000)
            fail_msg("%s: daily and cold agree on %zu of %zu rows", vmfsim_family_name(family),
                     same, nt);
        free(a), free(b);
        vmfsim_model_free(daily);
        vmfsim_model_free(cold);
    }
    unload(&D);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_matches_sklearn),
        cmocka_unit_test(test_sqhinge_matches_liblinear),
        cmocka_unit_test(test_warm_start_equals_cold),
        cmocka_unit_test(test_logreg_family_daily_equals_cold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
