/*
 * vmfmm_fit.c - `vmfmm fit`: fits a vMF mixture to a file (or to the built-in
 * synthetic sample) and writes the model, its convergence, metrics, the
 * assignment of every row and the diagnostic plots into --output-dir.
 *
 * Files written (each atomically):
 *   model.json        the mixture (vmfmm/mixture.h JSON form)
 *   convergence.json  mean log-likelihood per iteration, iterations, converged, seconds
 *   metrics.json      train/test mean log-likelihood, BIC, AIC; with labels NMI,
 *                     ARI, purity, and the class-conditional classifier's top-1
 *                     and top-4 macro recall on the test split
 *   classifier.json   with labels: that classifier (vmfmm/classifier.h JSON form)
 *   assignments.npy   int32 [n]: most probable component of every input row, in
 *                     input order (train and test rows alike)
 *   split.npy         uint8 [n]: 0 = train row, 1 = test row
 *   plots/            see vmfmm_report.c
 *
 * A non-empty output directory is refused unless --force, which first
 * deletes the files above (and only those; vmfmm_fitcheck.c), so that two
 * fits never leave their files side by side. Several --input files (or a
 * quoted glob) are concatenated in order. Warnings (not converged,
 * near-duplicate means, starved components) go to stderr and to
 * convergence.json's "warnings".
 */
#include "vmfmm_tool.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char FIT_HELP[] =
    "Usage: vmfmm fit [--input FILE] [--labels FILE] [-k K] [options] [--output-dir DIR]\n"
    "\n"
    "Fits a mixture of von Mises-Fisher distributions with batch EM and writes\n"
    "model.json, convergence.json, metrics.json, assignments.npy, split.npy\n"
    "(and classifier.json with labels) plus plots/ into DIR.\n"
    "\n"
    "Input:\n"
    "  -i, --input FILE         .npy (float32, float64 or float16), .npz (X and\n"
    "                           optional y) or .csv; rows are normalized to unit\n"
    "                           length. Repeat it (or quote a glob, 'shard-*.npy')\n"
    "                           to concatenate files in order. Without --input a\n"
    "                           built-in synthetic sample is used.\n"
    "  -l, --labels FILE        labels (.npy, .npz member y, .csv) for NMI, ARI,\n"
    "                           purity and the classifier's top-k macro recall;\n"
    "                           one per --input, in the same order\n"
    "      --id-column C        CSV input: column C (header name or 1-based\n"
    "                           index) is an id, not a coordinate\n"
    "      --label-column C     CSV input: column C holds the labels (strings)\n"
    "      --n-samples N        synthetic rows (default 1000)\n"
    "      --dim D              synthetic dimension (default 512)\n"
    "      --synthetic-k K      synthetic components (default: -k)\n"
    "Model:\n"
    "  -k, --n-components K     mixture components (default 5)\n"
    "      --max-iter N         EM iterations at most (default 100)\n"
    "      --tol T              stop when the mean log-likelihood changes by less\n"
    "                           than T (default 1e-6; 0 runs exactly --max-iter)\n"
    "  -s, --seed S             seed of initialisation, split and sample (default 42)\n"
    "      --n-init N           restarts, the best kept (default 1)\n"
    "      --init kmeans++|random   initialisation (default kmeans++)\n"
    "      --assignment soft|hard|stochastic   E-step (default soft)\n"
    "      --hard               same as --assignment hard\n"
    "      --kappa-estimator banerjee|sra|song|exact   (default exact)\n"
    "      --tied-kappa         one kappa shared by all components\n"
    "      --no-search          plain EM from the seeding, without the split-and-\n"
    "                           merge search (on by default when --tol > 0)\n"
    "      --exact              evaluate every responsibility of every row (the\n"
    "                           dense path; default: skip provably negligible ones)\n"
    "Evaluation and output:\n"
    "      --test-split F       fraction of rows held out, chosen by seed (default 0.2)\n"
    "  -t, --threads N          OpenBLAS threads (default: OpenBLAS's choice)\n"
    "  -o, --output-dir DIR     output directory, created if needed (default results);\n"
    "                           a non-empty one is refused\n"
    "      --force              replace a previous fit's files in DIR (others stay)\n"
    "      --no-plots           skip plots/\n"
    "      --json               print the metrics as one JSON object on stdout\n"
    "  -q, --quiet              no progress on stderr\n"
    "  -h, --help               this help\n"
    "\n"
    "Examples:\n"
    "  vmfmm fit -k 10 --input X.npy --labels y.npy --output-dir out\n"
    "  vmfmm fit --n-samples 5000 --dim 64 -k 7 --hard --tol 0 --max-iter 50\n"
    "  vmfmm fit -i data.npz -k 20 --n-init 5 --kappa-estimator sra --json\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data (NaN or zero row, K > rows), 66\n"
    "unreadable input, 73 cannot create output (or DIR not empty), 74 I/O error.\n";

/* Progress on a terminal: the iteration, the log-likelihood and its change. */
static void fit_progress(void *ctx, size_t iter, double loglik, double change)
{
    simc_cli_progress((simc_cli *)ctx, "iteration %zu  loglik %.6f / row  change %+.3g", iter,
                      loglik, change);
}

/* What one fit produced, for the reports. */
typedef struct fit_result {
    vmf_mixture *mixture;
    vmf_em_report report;
    uint8_t *is_test; /* [n] */
    int32_t *assign;  /* [n] */
    double *entropy;  /* [n] posterior entropy in bits */
    size_t n_train, n_test;
    double train_ll, test_ll, bic, aic, test_bic, test_aic;
    int has_labels;
    double nmi, ari, purity;                   /* all rows */
    double train_nmi, train_ari, train_purity; /* train rows */
    double test_nmi, test_ari, test_purity;    /* test rows */
    int has_clf;
    double top1, top4, top1_acc; /* classifier on the test split */
    size_t n_classes;
    vmf_classifier *clf;
} fit_result;

static void fit_result_free(fit_result *r)
{
    vmf_mixture_free(r->mixture);
    vmf_em_report_free(&r->report);
    free(r->is_test);
    free(r->assign);
    free(r->entropy);
    vmf_classifier_free(r->clf);
    memset(r, 0, sizeof *r);
}

/* Hard assignment (vmf_mixture_predict, so `vmfmm predict` reproduces it) and posterior entropy. */
static int assign_rows(const vmf_mixture *m, const vmfmm_data *data, int32_t *assign,
                       double *entropy)
{
    size_t k = vmf_mixture_n_components(m), d = data->d;
    const size_t block = 8192;
    double *proba = malloc(block * k * sizeof *proba);
    if (proba == NULL)
        return VMF_ENOMEM;
    int rc = vmf_mixture_predict(m, data->x, data->n, d, assign);
    for (size_t i0 = 0; rc == VMF_OK && i0 < data->n; i0 += block) {
        size_t nb = data->n - i0 < block ? data->n - i0 : block;
        rc = vmf_mixture_predict_proba(m, data->x + i0 * d, nb, d, proba);
        for (size_t i = 0; rc == VMF_OK && i < nb; i++) {
            double h = 0;
            for (size_t j = 0; j < k; j++) {
                double p = proba[i * k + j];
                if (p > 0)
                    h -= p * log2(p);
            }
            entropy[i0 + i] = h;
        }
    }
    free(proba);
    return rc;
}

static int cluster_scores(const int32_t *y, const int32_t *c, size_t n, double *nmi, double *ari,
                          double *purity)
{
    *nmi = *ari = *purity = NAN;
    if (n == 0)
        return VMF_OK;
    int rc = vmf_nmi(y, c, n, nmi);
    if (rc == VMF_OK)
        rc = vmf_ari(y, c, n, ari);
    if (rc == VMF_OK)
        rc = vmf_purity(y, c, n, purity);
    return rc;
}

/* Labels of rows as a vmf_labels view in the data set's own label values. */
static int labels_view(const vmfmm_data *data, const int32_t *y, size_t n, vmf_labels *view,
                       int64_t **ints, const char ***strs)
{
    *ints = NULL;
    *strs = NULL;
    memset(view, 0, sizeof *view);
    view->n = n;
    if (vmf_label_table_is_str(data->labels)) {
        *strs = malloc((n ? n : 1) * sizeof **strs);
        if (*strs == NULL)
            return VMF_ENOMEM;
        for (size_t i = 0; i < n; i++)
            (*strs)[i] = vmf_label_table_str(data->labels, (size_t)y[i]);
        view->strs = *strs;
    } else {
        *ints = malloc((n ? n : 1) * sizeof **ints);
        if (*ints == NULL)
            return VMF_ENOMEM;
        for (size_t i = 0; i < n; i++)
            (*ints)[i] = vmf_label_table_int(data->labels, (size_t)y[i]);
        view->ints = *ints;
    }
    return VMF_OK;
}

/*
 * Maps classifier class indices to the data set's class indices (-1 when the
 * data set does not know the label) into map [n_classes].
 */
static int classifier_class_map(const vmf_classifier *clf, const vmfmm_data *data, int32_t *map)
{
    const vmf_label_table *t = vmf_classifier_labels(clf);
    size_t c = vmf_label_table_size(t);
    int64_t *ints = NULL;
    const char **strs = NULL;
    int rc = VMF_ENOMEM;
    vmf_labels v = {.n = c};
    if (vmf_label_table_is_str(t)) {
        strs = malloc((c ? c : 1) * sizeof *strs);
        if (strs == NULL)
            goto done;
        for (size_t i = 0; i < c; i++)
            strs[i] = vmf_label_table_str(t, i);
        v.strs = strs;
    } else {
        ints = malloc((c ? c : 1) * sizeof *ints);
        if (ints == NULL)
            goto done;
        for (size_t i = 0; i < c; i++)
            ints[i] = vmf_label_table_int(t, i);
        v.ints = ints;
    }
    rc = vmf_label_table_lookup(data->labels, &v, map);
done:
    free(ints);
    free(strs);
    return rc;
}

/*
 * Trains the class-conditional classifier on the train rows and scores the
 * test rows. Returns an exit code (the error printed).
 */
static int run_classifier(simc_cli *cli, const vmfmm_args *a, const vmfmm_data *data, fit_result *r)
{
    float *xtr = NULL, *xte = NULL;
    int32_t *ytr = NULL, *yte = NULL, *top = NULL, *map = NULL;
    int64_t *ints = NULL;
    const char **strs = NULL;
    size_t ntr = 0, nte = 0;
    int rc = vmfmm_gather(data, r->is_test, 0, &xtr, &ytr, &ntr);
    if (rc == VMF_OK)
        rc = vmfmm_gather(data, r->is_test, 1, &xte, &yte, &nte);
    if (rc != VMF_OK)
        goto done;
    vmf_labels view;
    rc = labels_view(data, ytr, ntr, &view, &ints, &strs);
    if (rc != VMF_OK)
        goto done;
    vmf_classifier_opts co;
    vmf_classifier_opts_init(&co);
    co.stepwise.kappa = a->em.kappa;
    co.stepwise.seed = a->em.seed;
    simc_cli_progress(cli, "training the class-conditional classifier on %zu rows", ntr);
    rc = vmf_classifier_fit(&co, xtr, ntr, data->d, &view, &r->clf);
    if (rc != VMF_OK)
        goto done;
    r->has_clf = 1;
    r->n_classes = vmf_label_table_size(data->labels);
    r->top1 = r->top4 = r->top1_acc = NAN;
    if (nte == 0)
        goto done;
    size_t nc = vmf_classifier_n_classes(r->clf);
    const size_t width = 4;
    top = malloc(nte * width * sizeof *top);
    map = malloc((nc ? nc : 1) * sizeof *map);
    if (top == NULL || map == NULL) {
        rc = VMF_ENOMEM;
        goto done;
    }
    rc = vmf_classifier_predict_topk(r->clf, xte, nte, data->d, width, top, NULL);
    if (rc == VMF_OK)
        rc = classifier_class_map(r->clf, data, map);
    if (rc != VMF_OK)
        goto done;
    for (size_t i = 0; i < nte * width; i++)
        top[i] = top[i] >= 0 && (size_t)top[i] < nc ? map[top[i]] : -1;
    rc = vmf_topk_macro_recall(yte, nte, r->n_classes, top, width, 1, &r->top1);
    if (rc == VMF_OK)
        rc = vmf_topk_macro_recall(yte, nte, r->n_classes, top, width, 4, &r->top4);
    if (rc == VMF_OK)
        rc = vmf_topk_accuracy(yte, nte, top, width, 1, &r->top1_acc);
done:
    free(xtr);
    free(xte);
    free(ytr);
    free(yte);
    free(top);
    free(map);
    free(ints);
    free(strs);
    return rc == VMF_OK ? EX_OK : simc_cli_fail_vmf(cli, rc, "classifier");
}

/* The fit itself and every number the outputs need. Returns an exit code. */
static int run_fit(simc_cli *cli, const vmfmm_args *a, const vmfmm_data *data, fit_result *r)
{
    size_t n = data->n, d = data->d, k = a->em.n_components;
    float *xtr = NULL, *xte = NULL;
    int32_t *ytr = NULL;
    int ex = EX_OK;
    r->is_test = malloc(n);
    r->assign = malloc(n * sizeof *r->assign);
    r->entropy = malloc(n * sizeof *r->entropy);
    if (!r->is_test || !r->assign || !r->entropy)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    vmfmm_split(n, a->test_split, a->em.seed, r->is_test);
    int rc = vmfmm_gather(data, r->is_test, 0, &xtr, NULL, &r->n_train);
    if (rc == VMF_OK)
        rc = vmfmm_gather(data, r->is_test, 1, &xte, NULL, &r->n_test);
    if (rc != VMF_OK) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    if (k > r->n_train) {
        ex = simc_cli_fail(cli, EX_DATAERR,
                           "k = %zu is larger than the %zu training rows (of %zu rows, "
                           "--test-split %g)",
                           k, r->n_train, n, a->test_split);
        goto done;
    }
    simc_cli_progress(cli, "fitting K=%zu to %zu rows x %zu (%s EM, max %zu iterations)", k,
                      r->n_train, d, vmfmm_assignment_name(a->em.assignment), a->em.max_iter);
    vmf_em_opts em = a->em;
    if (cli->progress) {
        em.progress = fit_progress;
        em.progress_ctx = cli;
    }
    rc = vmf_mixture_fit(&em, xtr, r->n_train, d, &r->mixture, &r->report);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "fit");
        goto done;
    }
    simc_cli_progress(cli, "scoring");
    rc = vmf_mixture_mean_loglik(r->mixture, xtr, r->n_train, d, &r->train_ll);
    if (rc == VMF_OK)
        rc = vmf_mixture_information_criteria(r->mixture, xtr, r->n_train, d, &r->bic, &r->aic);
    r->test_ll = r->test_bic = r->test_aic = NAN;
    if (rc == VMF_OK && r->n_test > 0) {
        rc = vmf_mixture_mean_loglik(r->mixture, xte, r->n_test, d, &r->test_ll);
        if (rc == VMF_OK)
            rc = vmf_mixture_information_criteria(r->mixture, xte, r->n_test, d, &r->test_bic,
                                                  &r->test_aic);
    }
    if (rc == VMF_OK)
        rc = assign_rows(r->mixture, data, r->assign, r->entropy);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "scoring");
        goto done;
    }
    if (data->y) {
        r->has_labels = 1;
        int32_t *ctr = malloc((r->n_train ? r->n_train : 1) * sizeof *ctr);
        int32_t *cte = malloc((r->n_test ? r->n_test : 1) * sizeof *cte);
        int32_t *yte = malloc((r->n_test ? r->n_test : 1) * sizeof *yte);
        ytr = malloc((r->n_train ? r->n_train : 1) * sizeof *ytr);
        if (!ctr || !cte || !yte || !ytr) {
            free(ctr);
            free(cte);
            free(yte);
            ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
            goto done;
        }
        size_t itr = 0, ite = 0;
        for (size_t i = 0; i < n; i++) {
            if (r->is_test[i]) {
                cte[ite] = r->assign[i];
                yte[ite++] = data->y[i];
            } else {
                ctr[itr] = r->assign[i];
                ytr[itr++] = data->y[i];
            }
        }
        rc = cluster_scores(data->y, r->assign, n, &r->nmi, &r->ari, &r->purity);
        if (rc == VMF_OK)
            rc = cluster_scores(ytr, ctr, r->n_train, &r->train_nmi, &r->train_ari,
                                &r->train_purity);
        if (rc == VMF_OK)
            rc = cluster_scores(yte, cte, r->n_test, &r->test_nmi, &r->test_ari, &r->test_purity);
        free(ctr);
        free(cte);
        free(yte);
        if (rc != VMF_OK) {
            ex = simc_cli_fail_vmf(cli, rc, "clustering metrics");
            goto done;
        }
        ex = run_classifier(cli, a, data, r);
        if (ex)
            goto done;
    }
done:
    free(xtr);
    free(xte);
    free(ytr);
    return ex;
}

static json_t *split_metrics(size_t rows, double ll, double bic, double aic, int labels, double nmi,
                             double ari, double purity)
{
    json_t *o = json_object();
    json_object_set_new(o, "rows", json_integer((json_int_t)rows));
    json_object_set_new(o, "mean_loglik", vmfmm_jreal(ll));
    json_object_set_new(o, "bic", vmfmm_jreal(bic));
    json_object_set_new(o, "aic", vmfmm_jreal(aic));
    if (labels) {
        json_object_set_new(o, "nmi", vmfmm_jreal(nmi));
        json_object_set_new(o, "ari", vmfmm_jreal(ari));
        json_object_set_new(o, "purity", vmfmm_jreal(purity));
    }
    return o;
}

static json_t *metrics_json(const vmfmm_args *a, const vmfmm_data *data, const fit_result *r)
{
    json_t *m = json_object();
    json_object_set_new(m, "input", json_string(data->source));
    json_object_set_new(m, "rows", json_integer((json_int_t)data->n));
    json_object_set_new(m, "dim", json_integer((json_int_t)data->d));
    json_object_set_new(m, "n_components", json_integer((json_int_t)a->em.n_components));
    json_object_set_new(m, "n_params", json_integer((json_int_t)vmf_mixture_n_params(r->mixture)));
    json_object_set_new(m, "test_split", json_real(a->test_split));
    json_object_set_new(m, "seed", json_integer((json_int_t)a->em.seed));
    json_object_set_new(m, "iterations", json_integer((json_int_t)r->report.n_iter));
    json_object_set_new(m, "converged", json_boolean(r->report.converged));
    json_object_set_new(m, "seconds", vmfmm_jreal(r->report.seconds));
    json_object_set_new(m, "train",
                        split_metrics(r->n_train, r->train_ll, r->bic, r->aic, r->has_labels,
                                      r->train_nmi, r->train_ari, r->train_purity));
    if (r->n_test > 0)
        json_object_set_new(m, "test",
                            split_metrics(r->n_test, r->test_ll, r->test_bic, r->test_aic,
                                          r->has_labels, r->test_nmi, r->test_ari, r->test_purity));
    else
        json_object_set_new(m, "test", json_null());
    if (r->has_labels) {
        json_object_set_new(m, "n_classes",
                            json_integer((json_int_t)vmf_label_table_size(data->labels)));
        json_object_set_new(m, "nmi", vmfmm_jreal(r->nmi));
        json_object_set_new(m, "ari", vmfmm_jreal(r->ari));
        json_object_set_new(m, "purity", vmfmm_jreal(r->purity));
    }
    if (r->has_clf) {
        json_t *c = json_object();
        json_object_set_new(c, "evaluated_on", json_string(r->n_test > 0 ? "test" : "none"));
        json_object_set_new(c, "top1_macro_recall", vmfmm_jreal(r->top1));
        json_object_set_new(c, "top4_macro_recall", vmfmm_jreal(r->top4));
        json_object_set_new(c, "top1_accuracy", vmfmm_jreal(r->top1_acc));
        json_object_set_new(m, "classifier", c);
    }
    return m;
}

static json_t *convergence_json(const vmfmm_args *a, const fit_result *r, json_t *warnings)
{
    json_t *c = json_object();
    json_object_set_new(c, "warnings", warnings ? warnings : json_array());
    json_object_set_new(c, "n_moves", json_integer((json_int_t)r->report.n_moves));
    json_object_set_new(c, "n_search_iter", json_integer((json_int_t)r->report.n_search_iter));
    json_object_set_new(c, "skipped_rows", vmfmm_jreal(r->report.skipped_rows));
    json_object_set_new(c, "tol_relative", json_boolean(!a->em.tol_absolute));
    json_object_set_new(c, "iterations", json_integer((json_int_t)r->report.n_iter));
    json_object_set_new(c, "converged", json_boolean(r->report.converged));
    json_object_set_new(c, "final_mean_loglik", vmfmm_jreal(r->report.loglik));
    json_object_set_new(c, "mean_loglik", vmfmm_jreal_array(r->report.trace, r->report.n_iter));
    json_object_set_new(c, "seconds", vmfmm_jreal(r->report.seconds));
    json_object_set_new(c, "tol", json_real(a->em.tol));
    json_object_set_new(c, "max_iter", json_integer((json_int_t)a->em.max_iter));
    json_object_set_new(c, "n_init", json_integer((json_int_t)a->em.n_init));
    json_object_set_new(c, "best_init", json_integer((json_int_t)r->report.best_init));
    json_object_set_new(c, "n_reseeded", json_integer((json_int_t)r->report.n_reseeded));
    json_object_set_new(c, "assignment", json_string(vmfmm_assignment_name(a->em.assignment)));
    json_object_set_new(c, "init", json_string(vmfmm_init_name(a->em.init)));
    json_object_set_new(c, "kappa_estimator",
                        json_string(vmf_kappa_estimator_name(a->em.kappa.estimator)));
    json_object_set_new(c, "tied_kappa", json_boolean(a->em.tied_kappa));
    json_object_set_new(c, "seed", json_integer((json_int_t)a->em.seed));
    return c;
}

static int write_text(simc_cli *cli, const char *dir, const char *name, const char *text)
{
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, dir, name) == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    if (simc_cli_write_file(path, text, strlen(text)) != 0)
        return simc_cli_fail(cli, EX_CANTCREAT, "cannot write '%s': %s", path, strerror(errno));
    return EX_OK;
}

static int write_json(simc_cli *cli, const char *dir, const char *name, json_t *obj)
{
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, dir, name) == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    return vmfmm_json_write(cli, path, obj);
}

static int write_npy(simc_cli *cli, const char *dir, const char *name, vmf_dtype t, void *data,
                     size_t n)
{
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, dir, name) == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    vmf_array arr = {.dtype = t, .ndim = 1, .shape = {n}, .count = n, .data = data};
    int rc = vmf_npy_write(path, &arr);
    if (rc != VMF_OK) {
        simc_cli_fail_vmf(cli, rc, "cannot write '%s'", path);
        return EX_CANTCREAT;
    }
    return EX_OK;
}

/* The text block of the overview page and of the terminal summary. */
static void summary_text(const vmfmm_args *a, const vmfmm_data *data, const fit_result *r,
                         char *buf, size_t size)
{
    size_t used = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + used, used < size ? size - used : 0, __VA_ARGS__);                 \
        if (w_ > 0)                                                                                \
            used += (size_t)w_;                                                                    \
    } while (0)
    ADD("data       %s\n", simc_cli_basename(data->source));
    ADD("rows       %zu (train %zu, test %zu), dim %zu\n", data->n, r->n_train, r->n_test, data->d);
    ADD("model      K=%zu, %s EM, %s kappa%s\n", a->em.n_components,
        vmfmm_assignment_name(a->em.assignment), vmf_kappa_estimator_name(a->em.kappa.estimator),
        a->em.tied_kappa ? " (tied)" : "");
    ADD("fit        %zu iteration%s, %s, %.2f s\n", r->report.n_iter,
        r->report.n_iter == 1 ? "" : "s", r->report.converged ? "converged" : "not converged",
        r->report.seconds);
    ADD("loglik     train %.4f / row", r->train_ll);
    if (r->n_test > 0)
        ADD(", test %.4f", r->test_ll);
    ADD("\nBIC        %.6g   AIC %.6g\n", r->bic, r->aic);
    if (r->has_labels)
        ADD("clusters   NMI %.3f  ARI %.3f  purity %.3f\n", r->nmi, r->ari, r->purity);
    if (r->has_clf && r->n_test > 0)
        ADD("classifier top-1 %.3f  top-4 %.3f macro recall\n", r->top1, r->top4);
#undef ADD
    if (used >= size && size > 0)
        buf[size - 1] = '\0';
}

/* fit's options: the common ones plus --force. */
static void fit_opts(simc_cli_opt *opts, size_t cap)
{
    size_t n = 0;
    while (vmfmm_common_opts[n].long_name != NULL && n + 2 < cap) {
        opts[n] = vmfmm_common_opts[n];
        n++;
    }
    opts[n++] = (simc_cli_opt){"force", 0, SIMC_CLI_NO_ARG, OPT_FORCE};
    opts[n] = (simc_cli_opt){NULL, 0, 0, 0};
}

static int fit_main(simc_cli *cli, vmfmm_args *ap, int argc, char **argv);

int vmfmm_cmd_fit(simc_cli *cli, int argc, char **argv)
{
    if (vmfmm_stream_wanted(argc, argv))
        return vmfmm_cmd_fit_stream(cli, argc, argv);
    vmfmm_args a;
    vmfmm_args_init(&a);
    int ex = fit_main(cli, &a, argc, argv);
    vmfmm_args_free(&a);
    return ex;
}

static int fit_main(simc_cli *cli, vmfmm_args *ap, int argc, char **argv)
{
    vmfmm_args a = *ap;
    simc_cli_opt opts[64];
    fit_opts(opts, sizeof opts / sizeof *opts);
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "fit");
    const char *arg;
    int id;
    while ((id = simc_cli_next(cli, &p, opts, &arg)) > 0) {
        if (id == OPT_HELP) {
            fputs(FIT_HELP, stdout);
            *ap = a;
            return EX_OK;
        }
        if (id == OPT_FORCE) {
            a.force = 1;
            continue;
        }
        int ex = vmfmm_args_apply(cli, &a, id, arg);
        if (ex) {
            *ap = a;
            return ex;
        }
    }
    *ap = a; /* vmfmm_cmd_fit frees what parsing allocated */
    if (id < 0)
        return EX_USAGE;
    int ex = vmfmm_positionals(cli, &p, "fit", &a.input);
    if (ex)
        return ex;
    /* Before the work: never fit for minutes and then refuse to write. */
    ex = vmfmm_output_dir_prepare(cli, a.output_dir, a.force);
    if (ex)
        return ex;
    vmfmm_set_threads(a.threads);

    vmfmm_data data;
    ex = vmfmm_args_load(cli, &a, &data);
    if (ex)
        return ex;
    fit_result r = {0};
    json_t *metrics = NULL, *conv = NULL;
    char *model = NULL;
    ex = run_fit(cli, &a, &data, &r);
    if (ex)
        goto done;

    ex = vmfmm_make_dir(cli, a.output_dir);
    if (ex)
        goto done;
    int rc = vmf_mixture_to_json(r.mixture, &model);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "model JSON");
        goto done;
    }
    simc_cli_progress_done(cli);
    metrics = metrics_json(&a, &data, &r);
    conv = convergence_json(
        &a, &r, vmfmm_fit_warnings(cli, r.mixture, &r.report, a.em.tol, a.em.max_iter, r.n_train));
    if (metrics == NULL || conv == NULL) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    ex = write_text(cli, a.output_dir, "model.json", model);
    if (!ex)
        ex = write_json(cli, a.output_dir, "convergence.json", conv);
    if (!ex)
        ex = write_json(cli, a.output_dir, "metrics.json", metrics);
    if (!ex)
        ex = write_npy(cli, a.output_dir, "assignments.npy", VMF_DTYPE_I32, r.assign, data.n);
    if (!ex)
        ex = write_npy(cli, a.output_dir, "split.npy", VMF_DTYPE_U8, r.is_test, data.n);
    if (!ex && r.clf) {
        char *cj = NULL;
        rc = vmf_classifier_to_json(r.clf, &cj);
        if (rc != VMF_OK)
            ex = simc_cli_fail_vmf(cli, rc, "classifier JSON");
        else
            ex = write_text(cli, a.output_dir, "classifier.json", cj);
        free(cj);
    }
    if (ex)
        goto done;

    char summary[2048];
    summary_text(&a, &data, &r, summary, sizeof summary);
    if (!a.no_plots) {
        char plots[VMFMM_PATH_MAX];
        ex = vmfmm_make_plots_dir(cli, a.output_dir, plots, sizeof plots);
        if (ex)
            goto done;
        char subtitle[VMFMM_PATH_MAX + 256];
        if (data.synthetic)
            snprintf(subtitle, sizeof subtitle, "%s, fitted K=%zu", data.source, a.em.n_components);
        else
            snprintf(subtitle, sizeof subtitle, "%s, n=%zu, d=%zu, K=%zu, seed %llu",
                     simc_cli_basename(data.source), data.n, data.d, a.em.n_components,
                     (unsigned long long)a.em.seed);
        vmfmm_fit_view v = {.mixture = r.mixture,
                            .report = &r.report,
                            .data = &data,
                            .assign = r.assign,
                            .entropy = r.entropy,
                            .summary = summary,
                            .subtitle = subtitle,
                            .seed = a.em.seed};
        simc_cli_progress(cli, "plotting");
        ex = vmfmm_report_plots(cli, &v, plots);
        if (ex)
            goto done;
    }
    simc_cli_progress_done(cli);
    if (a.json) {
        json_object_set_new(metrics, "output_dir", json_string(a.output_dir));
        ex = vmfmm_json_print(cli, metrics);
    } else {
        fputs(summary, stdout);
        printf("wrote      %s/{model.json, convergence.json, metrics.json, assignments.npy, "
               "split.npy%s%s}\n",
               a.output_dir, r.clf ? ", classifier.json" : "", a.no_plots ? "" : ", plots/");
    }
done:
    json_decref(metrics);
    json_decref(conv);
    free(model);
    fit_result_free(&r);
    vmfmm_data_free(&data);
    return ex;
}
