/*
 * vmfmm_select.c - `vmfmm select`: fits every K of a range with the same EM
 * settings on the train split and chooses K by BIC (lowest), AIC (lowest) or
 * held-out mean log-likelihood (highest, on the test split). Prints a table
 * (or, with --json, an object whose "chosen_k" scripts rely on) and writes
 * select.json, select.csv and plots/select.{png,svg} into --output-dir.
 */
#include "plot.h"
#include "vmfmm_tool.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SELECT_HELP[] =
    "Usage: vmfmm select -k A..B [--criterion bic|aic|heldout] [fit options] [--json]\n"
    "\n"
    "Fits a mixture for every K in the range on the train split and names the\n"
    "K with the lowest BIC (default), the lowest AIC, or the highest held-out\n"
    "mean log-likelihood on the test split. Writes select.json, select.csv and\n"
    "plots/select.png/.svg into --output-dir.\n"
    "\n"
    "Options:\n"
    "  -k, --n-components LIST  K values: A..B, a comma list (2,4,8), or one K\n"
    "                           (default 1..10)\n"
    "      --criterion C        bic (default), aic or heldout\n"
    "  plus the input, model and output options of 'vmfmm fit' (--input, --labels,\n"
    "  --n-samples, --dim, --synthetic-k, --max-iter, --tol, --seed, --n-init,\n"
    "  --init, --assignment, --hard, --kappa-estimator, --tied-kappa,\n"
    "  --test-split, --threads, --output-dir, --no-plots, --quiet)\n"
    "      --json               print {\"chosen_k\", \"criterion\", \"results\":[..]}\n"
    "  -h, --help               this help\n"
    "\n"
    "Examples:\n"
    "  vmfmm select -k 1..20 --input X.npy\n"
    "  vmfmm select -k 2..12 --criterion heldout --test-split 0.3 --json\n"
    "  vmfmm select -k 1..12 --synthetic-k 7 --dim 32 --n-samples 3000   # finds 7\n";

/* select's options: the common ones plus --criterion, into opts[32]. */
static void build_opts(simc_cli_opt *select_opts)
{
    size_t n = 0;
    for (const simc_cli_opt *o = vmfmm_common_opts; o->id > 0; o++)
        select_opts[n++] = *o;
    select_opts[n++] = (simc_cli_opt){"criterion", 'c', SIMC_CLI_REQ_ARG, OPT_CRITERION};
    select_opts[n] = (simc_cli_opt){NULL, 0, 0, 0};
}

#define MAX_KS 1000

/* Parses "A..B", "a,b,c" or "K" into ks (ascending, unique). Returns an exit code. */
static int parse_ks(simc_cli *cli, const char *arg, size_t *ks, size_t *nk)
{
    *nk = 0;
    const char *dots = strstr(arg, "..");
    if (dots) {
        char lo_s[32], hi_s[32];
        size_t ll = (size_t)(dots - arg);
        if (ll == 0 || ll >= sizeof lo_s || strlen(dots + 2) >= sizeof hi_s)
            goto bad;
        memcpy(lo_s, arg, ll);
        lo_s[ll] = '\0';
        snprintf(hi_s, sizeof hi_s, "%s", dots + 2);
        size_t lo, hi;
        if (simc_cli_parse_size(cli, "-k (range start)", lo_s, 1, 100000, &lo) ||
            simc_cli_parse_size(cli, "-k (range end)", hi_s, 1, 100000, &hi))
            return EX_USAGE;
        if (hi < lo || hi - lo >= MAX_KS)
            return simc_cli_fail(cli, EX_USAGE,
                                 "-k %s: the range must ascend and hold at most %d values", arg,
                                 MAX_KS);
        for (size_t k = lo; k <= hi; k++)
            ks[(*nk)++] = k;
        return EX_OK;
    }
    const char *s = arg;
    while (*s) {
        char item[32];
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len == 0 || len >= sizeof item || *nk == MAX_KS)
            goto bad;
        memcpy(item, s, len);
        item[len] = '\0';
        size_t k;
        if (simc_cli_parse_size(cli, "-k", item, 1, 100000, &k))
            return EX_USAGE;
        ks[(*nk)++] = k;
        s += len + (comma != NULL);
        if (comma && *s == '\0')
            goto bad;
    }
    if (*nk == 0)
        goto bad;
    /* Sort and drop duplicates (insertion sort: the list is short). */
    for (size_t i = 1; i < *nk; i++)
        for (size_t j = i; j > 0 && ks[j - 1] > ks[j]; j--) {
            size_t t = ks[j];
            ks[j] = ks[j - 1];
            ks[j - 1] = t;
        }
    size_t m = 1;
    for (size_t i = 1; i < *nk; i++)
        if (ks[i] != ks[m - 1])
            ks[m++] = ks[i];
    *nk = m;
    return EX_OK;
bad:
    return simc_cli_fail(cli, EX_USAGE, "-k expects A..B, a comma list or one K, got '%.40s'", arg);
}

typedef struct select_row {
    size_t k, iterations;
    int converged;
    double train_ll, test_ll, bic, aic, seconds;
} select_row;

static int plot_select(simc_cli *cli, const select_row *rows, size_t nk, size_t chosen,
                       const char *criterion, const char *subtitle, int have_test, const char *dir)
{
    double *x = malloc(nk * sizeof *x), *bic = malloc(nk * sizeof *bic),
           *aic = malloc(nk * sizeof *aic), *ho = malloc(nk * sizeof *ho);
    int ex = EX_OK;
    if (!x || !bic || !aic || !ho) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nk; i++) {
        x[i] = (double)rows[i].k;
        bic[i] = rows[i].bic;
        aic[i] = rows[i].aic;
        ho[i] = rows[i].test_ll;
    }
    char label[64];
    snprintf(label, sizeof label, "chosen K = %zu (%s)", chosen, criterion);
    simc_plot_vline vl = {.x = (double)chosen, .label = label, .color = -1, .dashed = 1};
    simc_plot_series ic[2] = {
        {.label = "BIC", .x = x, .y = bic, .n = nk, .color = 0, .markers = 1},
        {.label = "AIC", .x = x, .y = aic, .n = nk, .color = 1, .markers = 1, .dashed = 1}};
    simc_plot_series hs = {.label = "held-out mean log-likelihood",
                           .x = x,
                           .y = ho,
                           .n = nk,
                           .color = 2,
                           .markers = 1};
    simc_plot_panel panels[2];
    memset(panels, 0, sizeof panels);
    panels[0].kind = SIMC_PLOT_KIND_LINE;
    simc_plot_opts_init(&panels[0].opts);
    panels[0].opts.title = "Information criteria (lower is better)";
    panels[0].opts.xlabel = "K (components)";
    panels[0].opts.ylabel = "criterion on the train split";
    panels[0].opts.x_integer = 1;
    panels[0].opts.vlines = &vl;
    panels[0].opts.n_vlines = 1;
    panels[0].series = ic;
    panels[0].n_series = 2;
    panels[1] = panels[0];
    panels[1].opts.title = "Held-out log-likelihood (higher is better)";
    panels[1].opts.ylabel = "mean log-likelihood per test row";
    panels[1].series = &hs;
    panels[1].n_series = 1;
    panels[1].opts.legend = SIMC_PLOT_LEGEND_NONE;
    simc_plot_opts page;
    simc_plot_opts_init(&page);
    page.title = "vmfmm select: choosing K";
    page.subtitle = subtitle;
    page.width = have_test ? 1500 : 900;
    page.height = 620;
    char path[VMFMM_PATH_MAX], err[512];
    if (simc_cli_join(path, sizeof path, dir, "select") == NULL) {
        ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
        goto done;
    }
    int rc =
        simc_plot_page(panels, have_test ? 2 : 1, have_test ? 2 : 1, &page, path, err, sizeof err);
    if (rc)
        ex = simc_cli_fail(cli, rc == VMF_ENOMEM ? EX_OSERR : EX_CANTCREAT, "%s", err);
done:
    free(x);
    free(bic);
    free(aic);
    free(ho);
    return ex;
}

int vmfmm_cmd_select(simc_cli *cli, int argc, char **argv)
{
    simc_cli_opt select_opts[32];
    build_opts(select_opts);
    vmfmm_args a;
    vmfmm_args_init(&a);
    const char *criterion = "bic";
    size_t ks[MAX_KS];
    size_t nk = 0;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "select");
    const char *arg;
    int id, ex;
    while ((id = simc_cli_next(cli, &p, select_opts, &arg)) > 0) {
        if (id == OPT_HELP) {
            fputs(SELECT_HELP, stdout);
            return EX_OK;
        }
        if (id == OPT_K) {
            ex = parse_ks(cli, arg, ks, &nk);
            if (ex)
                return ex;
            continue;
        }
        if (id == OPT_CRITERION) {
            if (strcmp(arg, "bic") != 0 && strcmp(arg, "aic") != 0 && strcmp(arg, "heldout") != 0)
                return simc_cli_fail(cli, EX_USAGE,
                                     "--criterion must be bic, aic or heldout, got '%.40s'", arg);
            criterion = arg;
            continue;
        }
        ex = vmfmm_args_apply(cli, &a, id, arg);
        if (ex)
            return ex;
    }
    if (id < 0)
        return EX_USAGE;
    ex = vmfmm_positionals(cli, &p, "select", &a.input);
    if (ex)
        return ex;
    if (nk == 0) {
        for (size_t k = 1; k <= 10; k++)
            ks[nk++] = k;
    }
    if (strcmp(criterion, "heldout") == 0 && a.test_split <= 0)
        return simc_cli_fail(cli, EX_CONFIG,
                             "--criterion heldout needs a test split (--test-split > 0)");
    vmfmm_set_threads(a.threads);
    /* The synthetic sample defaults to 5 components here: -k is a range, not the truth. */
    if (a.input == NULL && a.synth_k == 0)
        a.synth_k = 5;

    vmfmm_data data;
    ex = vmfmm_args_load(cli, &a, &data);
    if (ex)
        return ex;
    uint8_t *is_test = malloc(data.n);
    float *xtr = NULL, *xte = NULL;
    size_t ntr = 0, nte = 0;
    select_row *rows = calloc(nk, sizeof *rows);
    json_t *out = NULL;
    vmf_atomic_file *csv = NULL;
    if (is_test == NULL || rows == NULL) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    vmfmm_split(data.n, a.test_split, a.em.seed, is_test);
    if (vmfmm_gather(&data, is_test, 0, &xtr, NULL, &ntr) != VMF_OK ||
        vmfmm_gather(&data, is_test, 1, &xte, NULL, &nte) != VMF_OK) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    if (ks[nk - 1] > ntr) {
        ex = simc_cli_fail(cli, EX_DATAERR, "K = %zu is larger than the %zu training rows",
                           ks[nk - 1], ntr);
        goto done;
    }
    size_t best = 0;
    for (size_t i = 0; i < nk; i++) {
        vmf_em_opts o = a.em;
        o.n_components = ks[i];
        simc_cli_progress(cli, "K=%zu (%zu of %zu)", ks[i], i + 1, nk);
        vmf_mixture *m = NULL;
        vmf_em_report rep;
        int rc = vmf_mixture_fit(&o, xtr, ntr, data.d, &m, &rep);
        select_row *r = &rows[i];
        r->k = ks[i];
        r->test_ll = NAN;
        if (rc == VMF_OK) {
            r->iterations = rep.n_iter;
            r->converged = rep.converged;
            r->seconds = rep.seconds;
            rc = vmf_mixture_mean_loglik(m, xtr, ntr, data.d, &r->train_ll);
        }
        if (rc == VMF_OK)
            rc = vmf_mixture_information_criteria(m, xtr, ntr, data.d, &r->bic, &r->aic);
        if (rc == VMF_OK && nte > 0)
            rc = vmf_mixture_mean_loglik(m, xte, nte, data.d, &r->test_ll);
        vmf_em_report_free(&rep);
        vmf_mixture_free(m);
        if (rc != VMF_OK) {
            ex = simc_cli_fail_vmf(cli, rc, "fit with K=%zu", ks[i]);
            goto done;
        }
        int better;
        if (strcmp(criterion, "bic") == 0)
            better = r->bic < rows[best].bic;
        else if (strcmp(criterion, "aic") == 0)
            better = r->aic < rows[best].aic;
        else
            better = r->test_ll > rows[best].test_ll;
        if (i == 0 || better)
            best = i;
    }
    simc_cli_progress_done(cli);

    out = json_object();
    json_object_set_new(out, "chosen_k", json_integer((json_int_t)rows[best].k));
    /* The criterion's optimum may lie outside a range whose edge it picked. */
    json_t *warnings = json_array();
    if (nk > 1 && (best == nk - 1 || (best == 0 && rows[0].k > 1))) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "chosen K = %zu is the %s of the range %zu..%zu: the best K may lie %s it; "
                 "widen -k",
                 rows[best].k, best == 0 ? "smallest" : "largest", rows[0].k, rows[nk - 1].k,
                 best == 0 ? "below" : "above");
        simc_cli_warn(cli, "%s", msg);
        json_array_append_new(warnings, json_string(msg));
    }
    json_object_set_new(out, "warnings", warnings);
    json_object_set_new(out, "criterion", json_string(criterion));
    json_object_set_new(out, "input", json_string(data.source));
    json_object_set_new(out, "rows", json_integer((json_int_t)data.n));
    json_object_set_new(out, "train_rows", json_integer((json_int_t)ntr));
    json_object_set_new(out, "test_rows", json_integer((json_int_t)nte));
    json_object_set_new(out, "dim", json_integer((json_int_t)data.d));
    json_t *res = json_array();
    for (size_t i = 0; i < nk; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "k", json_integer((json_int_t)rows[i].k));
        json_object_set_new(e, "iterations", json_integer((json_int_t)rows[i].iterations));
        json_object_set_new(e, "converged", json_boolean(rows[i].converged));
        json_object_set_new(e, "train_mean_loglik", vmfmm_jreal(rows[i].train_ll));
        json_object_set_new(e, "bic", vmfmm_jreal(rows[i].bic));
        json_object_set_new(e, "aic", vmfmm_jreal(rows[i].aic));
        json_object_set_new(e, "heldout_mean_loglik", vmfmm_jreal(rows[i].test_ll));
        json_object_set_new(e, "seconds", vmfmm_jreal(rows[i].seconds));
        json_array_append_new(res, e);
    }
    json_object_set_new(out, "results", res);

    ex = vmfmm_make_dir(cli, a.output_dir);
    if (ex)
        goto done;
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, a.output_dir, "select.json") == NULL) {
        ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
        goto done;
    }
    ex = vmfmm_json_write(cli, path, out);
    if (ex)
        goto done;
    simc_cli_join(path, sizeof path, a.output_dir, "select.csv");
    if (vmf_atomic_file_open(path, &csv) != VMF_OK) {
        ex = simc_cli_fail(cli, EX_CANTCREAT, "cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    FILE *cf = vmf_atomic_file_stream(csv);
    fprintf(cf, "k,iterations,converged,train_mean_loglik,bic,aic,heldout_mean_loglik,seconds\n");
    for (size_t i = 0; i < nk; i++)
        fprintf(cf, "%zu,%zu,%d,%.17g,%.17g,%.17g,%.17g,%.6f\n", rows[i].k, rows[i].iterations,
                rows[i].converged, rows[i].train_ll, rows[i].bic, rows[i].aic, rows[i].test_ll,
                rows[i].seconds);
    int crc = vmf_atomic_file_commit(csv);
    csv = NULL;
    if (crc != VMF_OK) {
        ex = simc_cli_fail(cli, EX_IOERR, "cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!a.no_plots) {
        char plots[VMFMM_PATH_MAX];
        ex = vmfmm_make_plots_dir(cli, a.output_dir, plots, sizeof plots);
        if (ex)
            goto done;
        char subtitle[VMFMM_PATH_MAX + 256];
        if (data.synthetic)
            snprintf(subtitle, sizeof subtitle, "%s, train %zu, test %zu", data.source, ntr, nte);
        else
            snprintf(subtitle, sizeof subtitle, "%s, n=%zu (train %zu, test %zu), d=%zu, seed %llu",
                     simc_cli_basename(data.source), data.n, ntr, nte, data.d,
                     (unsigned long long)a.em.seed);
        ex = plot_select(cli, rows, nk, rows[best].k, criterion, subtitle, nte > 0, plots);
        if (ex)
            goto done;
    }
    if (a.json) {
        ex = vmfmm_json_print(cli, out);
    } else {
        printf("%5s %6s %16s %16s %16s %16s\n", "K", "iters", "train loglik", "BIC", "AIC",
               "held-out loglik");
        for (size_t i = 0; i < nk; i++)
            printf("%5zu %5zu%s %16.6f %16.6g %16.6g %16.6f%s\n", rows[i].k, rows[i].iterations,
                   rows[i].converged ? " " : "*", rows[i].train_ll, rows[i].bic, rows[i].aic,
                   rows[i].test_ll, i == best ? "  <- chosen" : "");
        printf("chosen K = %zu by %s%s\nwrote %s/{select.json, select.csv%s}\n", rows[best].k,
               criterion,
               strcmp(criterion, "heldout") == 0 ? " (highest held-out log-likelihood)"
                                                 : " (lowest)",
               a.output_dir, a.no_plots ? "" : ", plots/select.png");
    }
done:
    vmf_atomic_file_abort(csv);
    json_decref(out);
    free(is_test);
    free(xtr);
    free(xte);
    free(rows);
    vmfmm_data_free(&data);
    vmfmm_args_free(&a);
    return ex;
}
