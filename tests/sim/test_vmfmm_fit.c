/*
 * test_vmfmm_fit.c - vmfmm fit / select / predict / sample / inspect end to
 * end through build/bin/vmfmm:
 *   - fit writes model.json, convergence.json (--tol 0 runs exactly
 *     --max-iter iterations), metrics.json, assignments.npy, split.npy and
 *     every plot; the same seed gives byte-identical models;
 *   - on tests/data/fmnist-cce64 with labels, NMI, ARI, purity and the
 *     classifier's top-1/top-4 macro recall are in metrics.json and sensible;
 *   - predict on the training input reproduces assignments.npy exactly, and
 *     its CSV / JSON / --top-k / --proba forms agree with it;
 *   - sample from a model, re-fit: every mean is recovered (cosine > 0.99);
 *   - select on a well-separated K = 7 sample picks 7 by BIC;
 *   - inspect prints the model; classifier models predict classes.
 */
#include "vmf_test.h"
#include "vmfmm_testrun.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_ok(const vmfmm_result *r, const char *what)
{
    if (r->code != 0)
        fail_msg("%s: exit %d, stderr:\n%s", what, r->code, r->err);
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("JSON key '%s' is missing or not a number", key);
    return json_number_value(v);
}

/* Means [k][d] of a mixture model JSON file. */
static float *model_means(const char *path, size_t *k, size_t *d)
{
    char *text = vmf_test_read_file(path, NULL);
    vmf_mixture *m = NULL;
    vmf_assert_ok(vmf_mixture_from_json(text, strlen(text), &m));
    free(text);
    *k = vmf_mixture_n_components(m);
    *d = vmf_mixture_dim(m);
    float *mu = malloc(*k * *d * sizeof *mu);
    assert_non_null(mu);
    memcpy(mu, vmf_mixture_means(m), *k * *d * sizeof *mu);
    vmf_mixture_free(m);
    return mu;
}

static const char *const PLOTS[] = {"convergence", "weights_kappas", "means_2d", "similarity",
                                    "counts",      "entropy",        "overview"};

static void expect_plots(const char *out, int with_labels)
{
    char path[4096];
    for (size_t i = 0; i < sizeof PLOTS / sizeof PLOTS[0]; i++) {
        const char *ext[2] = {"png", "svg"};
        for (int e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/plots/%s.%s", out, PLOTS[i], ext[e]);
            if (!vmfmm_file_ok(path, 4000))
                fail_msg("plot %s missing or nearly empty", path);
        }
        /* The PNG signature: the file is an image, not an error message. */
        snprintf(path, sizeof path, "%s/plots/%s.png", out, PLOTS[i]);
        FILE *f = fopen(path, "rb");
        unsigned char sig[8] = {0};
        assert_int_equal(fread(sig, 1, 8, f), 8);
        fclose(f);
        assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    }
    snprintf(path, sizeof path, "%s/plots/contingency.png", out);
    assert_int_equal(vmfmm_file_ok(path, 4000), with_labels);
}

/* The first form of the tool: synthetic sample, exact iteration count, all files. */
static void test_fit_synthetic(void **state)
{
    const char *dir = *state;
    char out[4096], path[4096];
    vmfmm_path(out, sizeof out, dir, "syn");
    vmfmm_result r = vmfmm_run(dir, "fit", "--n-samples", "400", "--dim", "16", "-k", "3", "--tol",
                               "0", "--max-iter", "7", "--seed", "5", "--n-init", "2", "--hard",
                               "--kappa-estimator", "sra", "--output-dir", out, NULL);
    expect_ok(&r, "fit synthetic");
    assert_string_equal(r.err, ""); /* no progress when stderr is not a terminal */
    assert_non_null(strstr(r.out, "7 iterations"));
    vmfmm_result_free(&r);

    json_t *conv = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "convergence.json"));
    assert_int_equal((int)jnum(conv, "iterations"), 7);
    assert_true(json_is_false(json_object_get(conv, "converged")));
    assert_int_equal(json_array_size(json_object_get(conv, "mean_loglik")), 7);
    assert_string_equal(json_string_value(json_object_get(conv, "assignment")), "hard");
    assert_string_equal(json_string_value(json_object_get(conv, "kappa_estimator")), "sra");
    assert_int_equal((int)jnum(conv, "n_init"), 2);
    json_decref(conv);

    json_t *model = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "model.json"));
    assert_string_equal(json_string_value(json_object_get(model, "format")), "vmfmm-model");
    assert_string_equal(json_string_value(json_object_get(model, "kind")), "mixture");
    assert_int_equal((int)jnum(model, "dim"), 16);
    assert_int_equal((int)jnum(model, "n_components"), 3);
    json_decref(model);

    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "metrics.json"));
    assert_int_equal((int)jnum(m, "rows"), 400);
    json_t *train = json_object_get(m, "train"), *test = json_object_get(m, "test");
    assert_int_equal((int)jnum(train, "rows"), 320); /* --test-split 0.2 */
    assert_int_equal((int)jnum(test, "rows"), 80);
    assert_true(isfinite(jnum(train, "mean_loglik")) && isfinite(jnum(test, "mean_loglik")));
    /* BIC = -2 L + p log n with p = (K-1) + K(d-1) + K = 2 + 45 + 3 = 50. */
    assert_int_equal((int)jnum(m, "n_params"), 50);
    double ll = jnum(train, "mean_loglik") * 320;
    vmf_assert_close(jnum(train, "bic"), -2 * ll + 50 * log(320.0), 1e-9, 1e-6);
    vmf_assert_close(jnum(train, "aic"), -2 * ll + 100, 1e-9, 1e-6);
    /* The synthetic labels are the true components: 3 tight components are found. */
    assert_true(jnum(m, "nmi") > 0.9);
    assert_true(jnum(m, "purity") > 0.95);
    json_decref(m);

    size_t n = 0;
    int32_t *assign = vmfmm_read_i32(vmfmm_path(path, sizeof path, out, "assignments.npy"), &n);
    assert_int_equal(n, 400);
    for (size_t i = 0; i < n; i++)
        assert_true(assign[i] >= 0 && assign[i] < 3);
    free(assign);
    vmf_array split = {0};
    vmf_assert_ok(vmf_npy_read(vmfmm_path(path, sizeof path, out, "split.npy"), &split));
    assert_int_equal(split.dtype, VMF_DTYPE_U8);
    size_t ntest = 0;
    for (size_t i = 0; i < split.count; i++)
        ntest += ((uint8_t *)split.data)[i];
    assert_int_equal(ntest, 80);
    vmf_array_free(&split);
    expect_plots(out, 1);
}

/* Defaults: 1000 rows of dimension 512, K = 5, into ./results when no --output-dir. */
static void test_fit_defaults_and_determinism(void **state)
{
    const char *dir = *state;
    char out1[4096], out2[4096], path[4096];
    vmfmm_path(out1, sizeof out1, dir, "a");
    vmfmm_path(out2, sizeof out2, dir, "b");
    vmfmm_result r = vmfmm_run(dir, "fit", "--no-plots", "-o", out1, NULL);
    expect_ok(&r, "fit defaults");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "--no-plots", "-o", out2, "--json", NULL);
    expect_ok(&r, "fit defaults again");
    json_t *printed = vmfmm_result_json(&r);
    assert_int_equal((int)jnum(printed, "rows"), 1000);
    assert_int_equal((int)jnum(printed, "dim"), 512);
    assert_int_equal((int)jnum(printed, "n_components"), 5);
    json_decref(printed);
    vmfmm_result_free(&r);
    char *m1 = vmf_test_read_file(vmfmm_path(path, sizeof path, out1, "model.json"), NULL);
    char *m2 = vmf_test_read_file(vmfmm_path(path, sizeof path, out2, "model.json"), NULL);
    assert_string_equal(m1, m2);
    free(m1);
    free(m2);
    /* Another seed gives another model (replacing the first fit's files: --force). */
    r = vmfmm_run(dir, "fit", "--no-plots", "-o", out2, "--seed", "43", "--force", NULL);
    expect_ok(&r, "fit seed 43");
    vmfmm_result_free(&r);
    m1 = vmf_test_read_file(vmfmm_path(path, sizeof path, out1, "model.json"), NULL);
    m2 = vmf_test_read_file(vmfmm_path(path, sizeof path, out2, "model.json"), NULL);
    assert_true(strcmp(m1, m2) != 0);
    free(m1);
    free(m2);
}

static void test_fit_fmnist(void **state)
{
    const char *dir = *state;
    char out[4096], path[4096], xp[4096], yp[4096];
    vmf_test_data_path("fmnist-cce64.X.npy", xp, sizeof xp);
    vmf_test_data_path("fmnist-cce64.y.npy", yp, sizeof yp);
    vmfmm_path(out, sizeof out, dir, "fm");
    vmfmm_result r =
        vmfmm_run(dir, "fit", "-k", "10", "--input", xp, "--labels", yp, "--output-dir", out, NULL);
    expect_ok(&r, "fit fmnist");
    vmfmm_result_free(&r);
    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "metrics.json"));
    assert_int_equal((int)jnum(m, "rows"), 21262);
    assert_int_equal((int)jnum(m, "dim"), 64);
    assert_int_equal((int)jnum(m, "n_classes"), 10);
    double nmi = jnum(m, "nmi"), purity = jnum(m, "purity"), ari = jnum(m, "ari");
    print_message("fmnist K=10: NMI %.3f ARI %.3f purity %.3f\n", nmi, ari, purity);
    /* Normalized-softmax embeddings of 10 classes cluster well, but not perfectly.
       Plain EM (--no-search, seed 42): NMI 0.798, ARI 0.818, purity 0.867, held-out
       loglik 91.72; the default split-and-merge search reaches a higher likelihood
       (held-out 92.82, train +1.20 nats per row) whose clusters cut the classes
       differently: NMI 0.780, ARI 0.653, purity 0.873. Clusters are not classes. */
    assert_true(nmi > 0.7 && nmi < 0.95);
    assert_true(purity > 0.8 && purity < 0.97);
    assert_true(ari > 0.6 && ari < 0.95);
    assert_true(jnum(json_object_get(m, "test"), "mean_loglik") > 92.5);
    json_t *train = json_object_get(m, "train"), *test = json_object_get(m, "test");
    assert_true(jnum(train, "nmi") > 0.5 && jnum(test, "purity") > 0.5);
    json_t *clf = json_object_get(m, "classifier");
    assert_non_null(clf);
    double top1 = jnum(clf, "top1_macro_recall"), top4 = jnum(clf, "top4_macro_recall");
    print_message("fmnist classifier: top-1 %.3f top-4 %.3f\n", top1, top4);
    /* Seed 42: top-1 0.897, top-4 0.997. */
    assert_true(top1 > 0.85 && top1 <= 1.0);
    assert_true(top4 > 0.97 && top4 >= top1 && top4 <= 1.0);
    json_decref(m);
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "classifier.json"), 100));
    expect_plots(out, 1);
}

/* predict on the training input gives back the fit's assignments, in every output form. */
static void test_predict_reproduces(void **state)
{
    const char *dir = *state;
    enum { N = 900, D = 12, K = 4 };
    float *x = malloc(N * D * sizeof *x);
    vmf_test_mixture_data(11, N, D, K, 30, 80, x, NULL, NULL, NULL, NULL);
    char in[4096], out[4096], path[4096], model[4096];
    vmfmm_path(in, sizeof in, dir, "x.npy");
    vmfmm_write_f32(in, x, N, D);
    free(x);
    vmfmm_path(out, sizeof out, dir, "fit");
    vmfmm_result r = vmfmm_run(dir, "fit", "--input", in, "-k", "4", "--no-plots", "-o", out, NULL);
    expect_ok(&r, "fit");
    vmfmm_result_free(&r);
    vmfmm_path(model, sizeof model, out, "model.json");
    size_t n1 = 0, n2 = 0;
    int32_t *assign = vmfmm_read_i32(vmfmm_path(path, sizeof path, out, "assignments.npy"), &n1);

    char pred[4096];
    vmfmm_path(pred, sizeof pred, dir, "pred.npy");
    r = vmfmm_run(dir, "predict", "--model", model, "--input", in, "--output", pred, NULL);
    expect_ok(&r, "predict npy");
    vmfmm_result_free(&r);
    int32_t *p = vmfmm_read_i32(pred, &n2);
    assert_int_equal(n1, N);
    assert_int_equal(n2, N);
    assert_memory_equal(assign, p, N * sizeof *p);
    free(p);

    /* CSV on stdout: a header, then one label per row, the same labels. */
    r = vmfmm_run(dir, "predict", "-m", model, "-i", in, NULL);
    expect_ok(&r, "predict stdout");
    assert_int_equal(vmfmm_count_lines(r.out), N + 1);
    char *line = strchr(r.out, '\n') + 1;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(atoi(line), assign[i]);
        line = strchr(line, '\n') + 1;
    }
    vmfmm_result_free(&r);

    /* JSON with top-2 and probabilities: first label is the assignment, proba descend. */
    char pj[4096];
    vmfmm_path(pj, sizeof pj, dir, "pred.json");
    r = vmfmm_run(dir, "predict", "-m", model, "-i", in, "--top-k", "2", "--proba", "-o", pj, NULL);
    expect_ok(&r, "predict json");
    vmfmm_result_free(&r);
    json_t *j = vmfmm_load_json(pj);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "mixture");
    json_t *labels = json_object_get(j, "labels"), *proba = json_object_get(j, "proba");
    assert_int_equal(json_array_size(labels), N);
    for (size_t i = 0; i < N; i++) {
        json_t *lr = json_array_get(labels, i), *pr = json_array_get(proba, i);
        assert_int_equal(json_integer_value(json_array_get(lr, 0)), assign[i]);
        assert_int_not_equal(json_integer_value(json_array_get(lr, 1)), assign[i]);
        double p0 = json_number_value(json_array_get(pr, 0));
        double p1 = json_number_value(json_array_get(pr, 1));
        assert_true(p0 >= p1 && p1 >= 0 && p0 <= 1 + 1e-12);
    }
    json_decref(j);

    /* --proba alone: the full posterior [n][K], rows summing to one. */
    char pp[4096];
    vmfmm_path(pp, sizeof pp, dir, "proba.npy");
    r = vmfmm_run(dir, "predict", "-m", model, "-i", in, "--proba", "-o", pp, NULL);
    expect_ok(&r, "predict proba");
    vmfmm_result_free(&r);
    vmf_array a = {0};
    vmf_assert_ok(vmf_npy_read(pp, &a));
    assert_int_equal(a.dtype, VMF_DTYPE_F64);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], N);
    assert_int_equal(a.shape[1], K);
    const double *pv = a.data;
    for (size_t i = 0; i < N; i++) {
        double s = 0, best = -1;
        int32_t arg = -1;
        for (size_t k = 0; k < K; k++) {
            s += pv[i * K + k];
            if (pv[i * K + k] > best) {
                best = pv[i * K + k];
                arg = (int32_t)k;
            }
        }
        vmf_assert_close(s, 1.0, 1e-12, 1e-12);
        assert_int_equal(arg, assign[i]);
    }
    vmf_array_free(&a);
    free(assign);

    /* Wrong dimension for the model. */
    float y[3 * 5];
    vmf_test_mixture_data(2, 3, 5, 1, 10, 20, y, NULL, NULL, NULL, NULL);
    char in5[4096];
    vmfmm_path(in5, sizeof in5, dir, "x5.npy");
    vmfmm_write_f32(in5, y, 3, 5);
    r = vmfmm_run(dir, "predict", "-m", model, "-i", in5, NULL);
    vmfmm_expect_error(&r, 65, "dimension mismatch");
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "predict", "-m", model, "-i", in, "--top-k", "9", NULL);
    vmfmm_expect_error(&r, 78, "top-k above K");
    vmfmm_result_free(&r);
}

/* Cosine of each mean of a to its best match in b, the smallest of them. */
static double worst_match(const float *a, const float *b, size_t k, size_t d)
{
    double worst = 1;
    for (size_t i = 0; i < k; i++) {
        double best = -1;
        for (size_t j = 0; j < k; j++) {
            double s = 0;
            for (size_t t = 0; t < d; t++)
                s += (double)a[i * d + t] * b[j * d + t];
            best = fmax(best, s);
        }
        worst = fmin(worst, best);
    }
    return worst;
}

static void test_sample_refit(void **state)
{
    const char *dir = *state;
    char out1[4096], out2[4096], sample[4096], model1[4096], model2[4096];
    vmfmm_path(out1, sizeof out1, dir, "one");
    vmfmm_path(out2, sizeof out2, dir, "two");
    vmfmm_path(sample, sizeof sample, dir, "sample.npz");
    vmfmm_result r = vmfmm_run(dir, "fit", "--n-samples", "3000", "--dim", "24", "-k", "5",
                               "--no-plots", "-o", out1, NULL);
    expect_ok(&r, "fit");
    vmfmm_result_free(&r);
    vmfmm_path(model1, sizeof model1, out1, "model.json");
    r = vmfmm_run(dir, "sample", "--model", model1, "-n", "8000", "--seed", "9", "--output", sample,
                  "--json", NULL);
    expect_ok(&r, "sample");
    json_t *j = vmfmm_result_json(&r);
    assert_int_equal((int)jnum(j, "rows"), 8000);
    assert_int_equal((int)jnum(j, "dim"), 24);
    json_decref(j);
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "fit", "--input", sample, "-k", "5", "--no-plots", "-o", out2, NULL);
    expect_ok(&r, "refit");
    vmfmm_result_free(&r);
    vmfmm_path(model2, sizeof model2, out2, "model.json");
    size_t k1, d1, k2, d2;
    float *m1 = model_means(model1, &k1, &d1);
    float *m2 = model_means(model2, &k2, &d2);
    assert_int_equal(k1, 5);
    assert_int_equal(k2, 5);
    assert_int_equal(d1, d2);
    double w = worst_match(m1, m2, k1, d1);
    print_message("sample/refit: worst mean cosine %.5f\n", w);
    assert_true(w > 0.99);
    free(m1);
    free(m2);
    /* The .npz sample carries the components as y: the refit scores against them. */
    char path[4096];
    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, out2, "metrics.json"));
    assert_true(jnum(m, "nmi") > 0.9);
    json_decref(m);
}

static void test_select_bic(void **state)
{
    const char *dir = *state;
    enum { N = 2800, D = 16, K = 7 };
    float *x = malloc(N * D * sizeof *x);
    vmf_test_mixture_data(2024, N, D, K, 150, 250, x, NULL, NULL, NULL, NULL);
    char in[4096], out[4096], path[4096];
    vmfmm_path(in, sizeof in, dir, "k7.npy");
    vmfmm_write_f32(in, x, N, D);
    free(x);
    vmfmm_path(out, sizeof out, dir, "sel");
    vmfmm_result r = vmfmm_run(dir, "select", "-k", "1..12", "--criterion", "bic", "--input", in,
                               "--n-init", "2", "-o", out, "--json", NULL);
    expect_ok(&r, "select");
    json_t *j = vmfmm_result_json(&r);
    assert_int_equal((int)jnum(j, "chosen_k"), 7);
    assert_string_equal(json_string_value(json_object_get(j, "criterion")), "bic");
    json_t *res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 12);
    /* The chosen row has the lowest BIC of the table. */
    double best = INFINITY;
    int arg = 0;
    for (size_t i = 0; i < 12; i++) {
        json_t *row = json_array_get(res, i);
        if (jnum(row, "bic") < best) {
            best = jnum(row, "bic");
            arg = (int)jnum(row, "k");
        }
    }
    assert_int_equal(arg, 7);
    json_decref(j);
    vmfmm_result_free(&r);
    json_t *file = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "select.json"));
    assert_int_equal((int)jnum(file, "chosen_k"), 7);
    json_decref(file);
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "select.csv"), 100));
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "plots/select.png"), 4000));
    assert_true(vmfmm_file_ok(vmfmm_path(path, sizeof path, out, "plots/select.svg"), 4000));

    /* The table form names the chosen K too; the built-in sample with 7 components. */
    r = vmfmm_run(dir, "select", "-k", "4..10", "--synthetic-k", "7", "--dim", "32", "--n-samples",
                  "2000", "-o", out, NULL);
    expect_ok(&r, "select synthetic");
    assert_non_null(strstr(r.out, "chosen K = 7"));
    vmfmm_result_free(&r);
}

static void test_inspect_and_classifier(void **state)
{
    const char *dir = *state;
    char out[4096], model[4096], clf[4096], sample[4096], pj[4096];
    vmfmm_path(out, sizeof out, dir, "fit");
    vmfmm_result r = vmfmm_run(dir, "fit", "--n-samples", "1500", "--dim", "16", "-k", "4",
                               "--no-plots", "-o", out, NULL);
    expect_ok(&r, "fit");
    vmfmm_result_free(&r);
    vmfmm_path(model, sizeof model, out, "model.json");
    vmfmm_path(clf, sizeof clf, out, "classifier.json");

    r = vmfmm_run(dir, "inspect", model, NULL);
    expect_ok(&r, "inspect");
    assert_non_null(strstr(r.out, "4 components"));
    assert_non_null(strstr(r.out, "kappa"));
    assert_int_equal(vmfmm_count_lines(r.out), 6); /* title, header, 4 components */
    vmfmm_result_free(&r);
    r = vmfmm_run(dir, "inspect", "--json", model, NULL);
    expect_ok(&r, "inspect --json");
    json_t *j = vmfmm_result_json(&r);
    assert_int_equal((int)jnum(j, "n_components"), 4);
    assert_int_equal(json_array_size(json_object_get(j, "components")), 4);
    json_decref(j);
    vmfmm_result_free(&r);

    r = vmfmm_run(dir, "inspect", clf, NULL);
    expect_ok(&r, "inspect classifier");
    assert_non_null(strstr(r.out, "classifier"));
    /* Every class, listed by label. */
    const char *c0 = strstr(r.out, "class 0:"), *c1 = strstr(r.out, "class 1:");
    const char *c2 = strstr(r.out, "class 2:"), *c3 = strstr(r.out, "class 3:");
    assert_true(c0 && c1 && c2 && c3);
    assert_true(c0 < c1 && c1 < c2 && c2 < c3);
    vmfmm_result_free(&r);

    /* The classifier predicts the synthetic labels (the true components) of fresh rows. */
    vmfmm_path(sample, sizeof sample, dir, "fresh.npz");
    r = vmfmm_run(dir, "sample", "-m", model, "-n", "400", "--seed", "77", "-o", sample, NULL);
    expect_ok(&r, "sample");
    vmfmm_result_free(&r);
    vmfmm_path(pj, sizeof pj, dir, "clf.json");
    r = vmfmm_run(dir, "predict", "-m", clf, "-i", sample, "--top-k", "2", "--proba", "-o", pj,
                  NULL);
    expect_ok(&r, "predict classifier");
    vmfmm_result_free(&r);
    j = vmfmm_load_json(pj);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "classifier");
    json_t *labels = json_object_get(j, "labels"), *proba = json_object_get(j, "proba");
    assert_int_equal(json_array_size(labels), 400);
    for (size_t i = 0; i < 400; i++) {
        json_t *lr = json_array_get(labels, i), *pr = json_array_get(proba, i);
        assert_int_equal(json_array_size(lr), 2);
        json_int_t l0 = json_integer_value(json_array_get(lr, 0));
        assert_true(l0 >= 0 && l0 < 4);
        assert_true(json_number_value(json_array_get(pr, 0)) >=
                    json_number_value(json_array_get(pr, 1)));
    }
    json_decref(j);
    /* sample refuses a classifier. */
    r = vmfmm_run(dir, "sample", "-m", clf, "-n", "5", "-o", sample, NULL);
    vmfmm_expect_error(&r, 65, "sample from a classifier");
    vmfmm_result_free(&r);
}

/* CSV in and out, no test split, tied kappa, the other E-steps and inits. */
static void test_fit_options_and_forms(void **state)
{
    const char *dir = *state;
    enum { N = 300, D = 6, K = 3 };
    float x[N * D];
    int32_t comp[N];
    vmf_test_mixture_data(5, N, D, K, 60, 90, x, comp, NULL, NULL, NULL);
    char xcsv[4096], ycsv[4096], out[4096], path[4096];
    vmfmm_path(xcsv, sizeof xcsv, dir, "x.csv");
    vmfmm_path(ycsv, sizeof ycsv, dir, "y.csv");
    FILE *f = fopen(xcsv, "w");
    assert_non_null(f);
    fputs("a,b,c,d,e,f\n", f); /* a header line */
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++)
            fprintf(f, "%.9g%c", 3.0 * x[i * D + j], j + 1 < D ? ',' : '\n'); /* not unit */
    fclose(f);
    f = fopen(ycsv, "w");
    assert_non_null(f);
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%d\n", 10 + comp[i]);
    fclose(f);
    vmfmm_path(out, sizeof out, dir, "csvfit");
    vmfmm_result r = vmfmm_run(dir, "fit", "-i", xcsv, "-l", ycsv, "-k", "3", "--test-split", "0",
                               "--tied-kappa", "--threads", "1", "--no-plots", "-o", out, NULL);
    expect_ok(&r, "fit csv");
    vmfmm_result_free(&r);
    json_t *m = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "metrics.json"));
    assert_true(json_is_null(json_object_get(m, "test")));
    assert_int_equal((int)jnum(json_object_get(m, "train"), "rows"), N);
    assert_true(jnum(m, "nmi") > 0.9);
    json_t *clf = json_object_get(m, "classifier");
    assert_string_equal(json_string_value(json_object_get(clf, "evaluated_on")), "none");
    assert_true(json_is_null(json_object_get(clf, "top1_macro_recall")));
    /* p = (K - 1) + K (d - 1) + 1 with one tied kappa. */
    assert_int_equal((int)jnum(m, "n_params"), 2 + 15 + 1);
    json_decref(m);
    json_t *model = vmfmm_load_json(vmfmm_path(path, sizeof path, out, "model.json"));
    json_t *kappas = json_object_get(model, "kappas");
    assert_int_equal(json_array_size(kappas), 3);
    double k0 = json_number_value(json_array_get(kappas, 0));
    for (size_t j = 1; j < 3; j++)
        assert_true(json_number_value(json_array_get(kappas, j)) == k0);
    json_decref(model);

    /* Other E-steps and initialisations run and write a model. */
    const char *variants[][2] = {{"--assignment", "stochastic"},
                                 {"--assignment", "hard"},
                                 {"--init", "random"},
                                 {"--kappa-estimator", "banerjee"},
                                 {"--kappa-estimator", "song"}};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        r = vmfmm_run(dir, "fit", "-i", xcsv, "-k", "3", variants[v][0], variants[v][1],
                      "--no-plots", "-o", out, "--force", NULL);
        expect_ok(&r, variants[v][1]);
        vmfmm_result_free(&r);
    }

    /* predict into .npz (labels and proba) and .csv. */
    char model_path[4096], npz[4096], pcsv[4096];
    vmfmm_path(model_path, sizeof model_path, out, "model.json");
    vmfmm_path(npz, sizeof npz, dir, "p.npz");
    vmfmm_path(pcsv, sizeof pcsv, dir, "p.csv");
    r = vmfmm_run(dir, "predict", "-m", model_path, "-i", xcsv, "--top-k", "2", "-o", npz, NULL);
    expect_ok(&r, "predict npz");
    vmfmm_result_free(&r);
    vmf_array la = {0}, pa = {0};
    vmf_assert_ok(vmf_npz_read(npz, "labels", &la));
    vmf_assert_ok(vmf_npz_read(npz, "proba", &pa));
    assert_int_equal(la.dtype, VMF_DTYPE_I32);
    assert_int_equal(la.shape[0], N);
    assert_int_equal(la.shape[1], 2);
    assert_int_equal(pa.dtype, VMF_DTYPE_F64);
    assert_int_equal(pa.shape[1], 2);
    vmf_array_free(&la);
    vmf_array_free(&pa);
    r = vmfmm_run(dir, "predict", "-m", model_path, "-i", xcsv, "--proba", "-o", pcsv, NULL);
    expect_ok(&r, "predict csv");
    vmfmm_result_free(&r);
    char *text = vmf_test_read_file(pcsv, NULL);
    assert_true(strncmp(text, "label1,proba1,proba2,proba3\n", 28) == 0);
    assert_int_equal(vmfmm_count_lines(text), N + 1);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        vmf_test_with_tmpdir(test_fit_synthetic),
        vmf_test_with_tmpdir(test_fit_defaults_and_determinism),
        vmf_test_with_tmpdir(test_fit_fmnist),
        vmf_test_with_tmpdir(test_predict_reproduces),
        vmf_test_with_tmpdir(test_sample_refit),
        vmf_test_with_tmpdir(test_select_bic),
        vmf_test_with_tmpdir(test_inspect_and_classifier),
        vmf_test_with_tmpdir(test_fit_options_and_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
