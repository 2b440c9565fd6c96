/*
 * vmfmm_predict.c - `vmfmm predict`, `vmfmm sample` and `vmfmm inspect`: the
 * commands that use a model JSON file written by `vmfmm fit` (model.json, a
 * mixture; classifier.json, a class-conditional classifier) or by vmfd.
 *
 * predict output, chosen by the extension of --output:
 *   .npy   the labels: int32 [n] (components) or, with --top-k K, [n][K]; with
 *          --proba the probabilities instead (float64, [n][K] or, for a
 *          mixture without --top-k, the full posterior [n][n_components])
 *   .npz   members "labels" and "proba"
 *   .csv   one line per row: the labels, then (with --proba) the probabilities
 *   .json  {"kind","rows","top_k","labels":[[..]],"proba":[[..]]}
 * Without --output the CSV lines go to stdout (or the JSON with --json).
 * Classifier labels are the class labels of the training data (integers or
 * strings); mixture labels are component indices.
 */
#include "vmfmm_tool.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char PREDICT_HELP[] =
    "Usage: vmfmm predict --model MODEL.json --input FILE [--top-k K] [--proba]\n"
    "                     [--output OUT.npy|.npz|.csv|.json] [--json]\n"
    "\n"
    "Predicts the most probable components (mixture model) or classes\n"
    "(classifier model) of the rows of FILE (.npy, .npz member X, .csv; rows\n"
    "are normalized). The model kind is read from the JSON \"kind\" field.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE    model JSON (model.json or classifier.json from 'vmfmm fit')\n"
    "  -i, --input FILE    rows to predict\n"
    "      --top-k K       the K most probable, best first (default 1)\n"
    "      --proba         write probabilities (.npy: instead of the labels;\n"
    "                      mixture without --top-k: the full posterior)\n"
    "  -o, --output FILE   .npy, .npz (labels and proba), .csv or .json;\n"
    "                      default: CSV lines on stdout\n"
    "      --json          print the result as one JSON object on stdout\n"
    "  -t, --threads N     OpenBLAS threads\n"
    "  -h, --help          this help\n"
    "\n"
    "Examples:\n"
    "  vmfmm predict --model results/model.json --input X.npy --output assign.npy\n"
    "  vmfmm predict -m results/classifier.json -i test.npy --top-k 4 --proba -o top4.json\n";

static const char SAMPLE_HELP[] =
    "Usage: vmfmm sample --model MODEL.json -n N --output X.npy [--seed S]\n"
    "\n"
    "Draws N rows from a fitted mixture (Wood's sampler). The output is .npy\n"
    "(float32 [N][d]), .npz (X and y = the component of each row) or .csv.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE        mixture model JSON\n"
    "  -n, --n-samples N       rows to draw\n"
    "  -o, --output FILE       .npy, .npz or .csv\n"
    "      --components FILE   also write the component of each row (.npy, int32)\n"
    "  -s, --seed S            seed (default 42)\n"
    "      --json              print a summary object on stdout\n"
    "  -h, --help              this help\n"
    "\n"
    "Example:\n"
    "  vmfmm sample --model results/model.json -n 5000 --output sample.npy\n";

static const char INSPECT_HELP[] =
    "Usage: vmfmm inspect MODEL.json [--json]\n"
    "\n"
    "Prints a readable summary of a model JSON file: kind, dimension, and per\n"
    "component weight, kappa, mean resultant length A_d(kappa) and the nearest\n"
    "other component; for a classifier, per class prior, rows and components.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE    the model (or give it as the argument)\n"
    "      --json          the summary as one JSON object\n"
    "  -h, --help          this help\n"
    "\n"
    "Example:\n"
    "  vmfmm inspect results/model.json\n";

enum { OPT_COMPONENTS = 100 };

static const simc_cli_opt PREDICT_OPTS[] = {
    {"model", 'm', SIMC_CLI_REQ_ARG, OPT_MODEL},     {"input", 'i', SIMC_CLI_REQ_ARG, OPT_INPUT},
    {"top-k", 0, SIMC_CLI_REQ_ARG, OPT_TOP_K},       {"proba", 0, SIMC_CLI_NO_ARG, OPT_PROBA},
    {"output", 'o', SIMC_CLI_REQ_ARG, OPT_OUTPUT},   {"json", 0, SIMC_CLI_NO_ARG, OPT_JSON},
    {"threads", 't', SIMC_CLI_REQ_ARG, OPT_THREADS}, {"quiet", 'q', SIMC_CLI_NO_ARG, OPT_QUIET},
    {"help", 'h', SIMC_CLI_NO_ARG, OPT_HELP},        {NULL, 0, 0, 0}};

static const simc_cli_opt SAMPLE_OPTS[] = {{"model", 'm', SIMC_CLI_REQ_ARG, OPT_MODEL},
                                           {"n-samples", 'n', SIMC_CLI_REQ_ARG, OPT_N},
                                           {"output", 'o', SIMC_CLI_REQ_ARG, OPT_OUTPUT},
                                           {"components", 0, SIMC_CLI_REQ_ARG, OPT_COMPONENTS},
                                           {"seed", 's', SIMC_CLI_REQ_ARG, OPT_SEED},
                                           {"json", 0, SIMC_CLI_NO_ARG, OPT_JSON},
                                           {"quiet", 'q', SIMC_CLI_NO_ARG, OPT_QUIET},
                                           {"help", 'h', SIMC_CLI_NO_ARG, OPT_HELP},
                                           {NULL, 0, 0, 0}};

static const simc_cli_opt INSPECT_OPTS[] = {{"model", 'm', SIMC_CLI_REQ_ARG, OPT_MODEL},
                                            {"json", 0, SIMC_CLI_NO_ARG, OPT_JSON},
                                            {"help", 'h', SIMC_CLI_NO_ARG, OPT_HELP},
                                            {NULL, 0, 0, 0}};

/* ---- predict ---------------------------------------------------------------- */

/* The result of a prediction: labels as component/class indices plus the label table. */
typedef struct prediction {
    size_t n, width; /* labels [n][width] */
    int32_t *idx;    /* component or classifier class index; -1 = none */
    size_t pwidth;   /* proba [n][pwidth] */
    double *proba;
    const vmf_label_table *labels; /* classifier classes, or NULL for components */
} prediction;

static void prediction_free(prediction *p)
{
    free(p->idx);
    free(p->proba);
}

/* Posterior of a mixture, in blocks; top-k by descending probability (ties: lower index). */
static int predict_mixture(const vmf_mixture *m, const float *x, size_t n, size_t d, size_t topk,
                           int want_proba, prediction *out)
{
    size_t k = vmf_mixture_n_components(m);
    out->n = n;
    if (topk == 0) {
        out->width = 1;
        out->idx = malloc((n ? n : 1) * sizeof *out->idx);
        if (out->idx == NULL)
            return VMF_ENOMEM;
        int rc = vmf_mixture_predict(m, x, n, d, out->idx);
        if (rc != VMF_OK || !want_proba)
            return rc;
        out->pwidth = k;
        out->proba = malloc((n ? n : 1) * k * sizeof *out->proba);
        if (out->proba == NULL)
            return VMF_ENOMEM;
        return vmf_mixture_predict_proba(m, x, n, d, out->proba);
    }
    out->width = out->pwidth = topk;
    out->idx = malloc((n ? n : 1) * topk * sizeof *out->idx);
    out->proba = malloc((n ? n : 1) * topk * sizeof *out->proba);
    const size_t block = 4096;
    double *post = malloc(block * k * sizeof *post);
    int rc = VMF_ENOMEM;
    if (out->idx == NULL || out->proba == NULL || post == NULL)
        goto done;
    rc = VMF_OK;
    for (size_t i0 = 0; rc == VMF_OK && i0 < n; i0 += block) {
        size_t nb = n - i0 < block ? n - i0 : block;
        rc = vmf_mixture_predict_proba(m, x + i0 * d, nb, d, post);
        for (size_t i = 0; rc == VMF_OK && i < nb; i++) {
            const double *row = post + i * k;
            int32_t *li = out->idx + (i0 + i) * topk;
            double *lp = out->proba + (i0 + i) * topk;
            /* Partial selection: topk is small, K moderate. */
            for (size_t t = 0; t < topk; t++) {
                size_t best = (size_t)-1;
                for (size_t j = 0; j < k; j++) {
                    int taken = 0;
                    for (size_t u = 0; u < t; u++)
                        taken |= (size_t)li[u] == j;
                    if (!taken && (best == (size_t)-1 || row[j] > row[best]))
                        best = j;
                }
                li[t] = (int32_t)best;
                lp[t] = row[best];
            }
        }
    }
done:
    free(post);
    return rc;
}

static int predict_classifier(const vmf_classifier *c, const float *x, size_t n, size_t d,
                              size_t topk, prediction *out)
{
    size_t k = topk ? topk : 1;
    out->n = n;
    out->width = out->pwidth = k;
    out->labels = vmf_classifier_labels(c);
    out->idx = malloc((n ? n : 1) * k * sizeof *out->idx);
    out->proba = malloc((n ? n : 1) * k * sizeof *out->proba);
    if (out->idx == NULL || out->proba == NULL)
        return VMF_ENOMEM;
    return vmf_classifier_predict_topk(c, x, n, d, k, out->idx, out->proba);
}

/* Writes the label of slot (i, t) as text. */
static void label_text(const prediction *p, size_t i, size_t t, char *buf, size_t size)
{
    int32_t c = p->idx[i * p->width + t];
    if (c < 0)
        snprintf(buf, size, "%s", p->labels && vmf_label_table_is_str(p->labels) ? "" : "-1");
    else if (p->labels)
        vmf_label_table_format(p->labels, (size_t)c, buf, size);
    else
        snprintf(buf, size, "%d", (int)c);
}

/* Quotes a CSV field when it needs it. */
static void csv_field(FILE *f, const char *s, int is_str)
{
    if (!is_str || strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(FILE *f, const prediction *p, int with_proba)
{
    int is_str = p->labels && vmf_label_table_is_str(p->labels);
    for (size_t t = 0; t < p->width; t++)
        fprintf(f, "%slabel%zu", t ? "," : "", t + 1);
    if (with_proba)
        for (size_t t = 0; t < p->pwidth; t++)
            fprintf(f, ",proba%zu", t + 1);
    fputc('\n', f);
    char buf[256];
    for (size_t i = 0; i < p->n; i++) {
        for (size_t t = 0; t < p->width; t++) {
            if (t)
                fputc(',', f);
            label_text(p, i, t, buf, sizeof buf);
            csv_field(f, buf, is_str);
        }
        if (with_proba)
            for (size_t t = 0; t < p->pwidth; t++)
                fprintf(f, ",%.17g", p->proba[i * p->pwidth + t]);
        fputc('\n', f);
    }
}

static json_t *prediction_json(const prediction *p, const char *kind, size_t topk, int proba)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(kind));
    json_object_set_new(o, "rows", json_integer((json_int_t)p->n));
    json_object_set_new(o, "top_k", json_integer((json_int_t)(topk ? topk : 1)));
    json_t *labels = json_array();
    int is_str = p->labels && vmf_label_table_is_str(p->labels);
    for (size_t i = 0; i < p->n; i++) {
        json_t *row = json_array();
        for (size_t t = 0; t < p->width; t++) {
            int32_t c = p->idx[i * p->width + t];
            if (c < 0)
                json_array_append_new(row, json_null());
            else if (p->labels == NULL)
                json_array_append_new(row, json_integer(c));
            else if (is_str)
                json_array_append_new(row, json_string(vmf_label_table_str(p->labels, (size_t)c)));
            else
                json_array_append_new(
                    row, json_integer((json_int_t)vmf_label_table_int(p->labels, (size_t)c)));
        }
        json_array_append_new(labels, row);
    }
    json_object_set_new(o, "labels", labels);
    if (proba && p->proba) {
        json_t *pr = json_array();
        for (size_t i = 0; i < p->n; i++)
            json_array_append_new(pr, vmfmm_jreal_array(p->proba + i * p->pwidth, p->pwidth));
        json_object_set_new(o, "proba", pr);
    }
    return o;
}

/* The labels as an array for .npy/.npz: int32 components, int64 or string class labels. */
static int labels_array(const prediction *p, vmf_array *a, void **storage)
{
    memset(a, 0, sizeof *a);
    size_t count = p->n * p->width;
    a->ndim = p->width == 1 ? 1 : 2;
    a->shape[0] = p->n;
    a->shape[1] = p->width;
    a->count = count;
    *storage = NULL;
    if (p->labels == NULL) {
        a->dtype = VMF_DTYPE_I32;
        a->data = p->idx;
        return VMF_OK;
    }
    if (vmf_label_table_is_str(p->labels)) {
        const char **s = malloc((count ? count : 1) * sizeof *s);
        if (s == NULL)
            return VMF_ENOMEM;
        for (size_t i = 0; i < count; i++)
            s[i] = p->idx[i] >= 0 ? vmf_label_table_str(p->labels, (size_t)p->idx[i]) : "";
        a->dtype = VMF_DTYPE_STR;
        a->data = (void *)s;
        *storage = (void *)s;
        return VMF_OK;
    }
    int64_t *v = malloc((count ? count : 1) * sizeof *v);
    if (v == NULL)
        return VMF_ENOMEM;
    for (size_t i = 0; i < count; i++)
        v[i] = p->idx[i] >= 0 ? vmf_label_table_int(p->labels, (size_t)p->idx[i]) : -1;
    a->dtype = VMF_DTYPE_I64;
    a->data = v;
    *storage = v;
    return VMF_OK;
}

static int write_prediction(simc_cli *cli, const char *path, const prediction *p, const char *kind,
                            size_t topk, int proba)
{
    char ext[16];
    simc_cli_extension(path, ext, sizeof ext);
    vmf_array pa = {.dtype = VMF_DTYPE_F64,
                    .ndim = p->pwidth == 1 ? 1 : 2,
                    .shape = {p->n, p->pwidth},
                    .count = p->n * p->pwidth,
                    .data = p->proba};
    if (strcmp(ext, "npy") == 0 || strcmp(ext, "npz") == 0) {
        vmf_array la;
        void *storage = NULL;
        int rc = labels_array(p, &la, &storage);
        if (rc == VMF_OK) {
            if (strcmp(ext, "npz") == 0) {
                const char *names[2] = {"labels", "proba"};
                const vmf_array *arrs[2] = {&la, &pa};
                rc = vmf_npz_write(path, names, arrs, p->proba ? 2 : 1);
            } else {
                rc = vmf_npy_write(path, proba ? &pa : &la);
            }
        }
        free(storage);
        if (rc != VMF_OK) {
            simc_cli_fail_vmf(cli, rc, "cannot write '%s'", path);
            return rc == VMF_ENOMEM ? EX_OSERR : EX_CANTCREAT;
        }
        return EX_OK;
    }
    if (strcmp(ext, "json") == 0) {
        json_t *o = prediction_json(p, kind, topk, proba);
        int ex = vmfmm_json_write(cli, path, o);
        json_decref(o);
        return ex;
    }
    if (strcmp(ext, "csv") == 0) {
        /* Atomically, like every other output (libvmfmm's writer). */
        vmf_atomic_file *af = NULL;
        if (vmf_atomic_file_open(path, &af) != VMF_OK)
            return simc_cli_fail(cli, EX_CANTCREAT, "cannot write '%s': %s", path, strerror(errno));
        write_csv(vmf_atomic_file_stream(af), p, proba);
        if (vmf_atomic_file_commit(af) != VMF_OK)
            return simc_cli_fail(cli, EX_IOERR, "cannot write '%s': %s", path, strerror(errno));
        return EX_OK;
    }
    return simc_cli_fail(cli, EX_USAGE,
                         "--output '%s': unknown file type (expected .npy, .npz, .csv or .json)",
                         path);
}

int vmfmm_cmd_predict(simc_cli *cli, int argc, char **argv)
{
    const char *model_path = NULL, *input = NULL, *output = NULL;
    size_t topk = 0, threads = 0;
    int proba = 0, json = 0;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "predict");
    const char *arg;
    int id, ex;
    while ((id = simc_cli_next(cli, &p, PREDICT_OPTS, &arg)) > 0) {
        switch (id) {
        case OPT_HELP:
            fputs(PREDICT_HELP, stdout);
            return EX_OK;
        case OPT_MODEL:
            model_path = arg;
            break;
        case OPT_INPUT:
            input = arg;
            break;
        case OPT_OUTPUT:
            output = arg;
            break;
        case OPT_TOP_K:
            ex = simc_cli_parse_size(cli, "--top-k", arg, 1, 100000, &topk);
            if (ex)
                return ex;
            break;
        case OPT_THREADS:
            ex = simc_cli_parse_size(cli, "--threads", arg, 0, 1024, &threads);
            if (ex)
                return ex;
            break;
        case OPT_PROBA:
            proba = 1;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case OPT_QUIET:
            cli->progress = 0;
            break;
        }
    }
    if (id < 0)
        return EX_USAGE;
    ex = vmfmm_positionals(cli, &p, "predict", NULL);
    if (ex)
        return ex;
    if (model_path == NULL || input == NULL)
        return simc_cli_fail(cli, EX_USAGE,
                             "predict needs --model and --input (see 'vmfmm predict --help')");
    vmfmm_set_threads(threads);
    vmfmm_model model;
    ex = vmfmm_model_load(cli, model_path, &model);
    if (ex)
        return ex;
    vmfmm_data data;
    ex = vmfmm_data_load(cli, input, NULL, &data);
    if (ex) {
        vmfmm_model_free(&model);
        return ex;
    }
    prediction pred = {0};
    size_t dim = model.kind == VMFMM_MODEL_MIXTURE ? vmf_mixture_dim(model.mixture)
                                                   : vmf_classifier_dim(model.classifier);
    const char *kind = model.kind == VMFMM_MODEL_MIXTURE ? "mixture" : "classifier";
    if (dim != data.d) {
        ex = simc_cli_fail(cli, EX_DATAERR, "input '%s' has %zu columns, the model has dim %zu",
                           input, data.d, dim);
        goto done;
    }
    if (model.kind == VMFMM_MODEL_MIXTURE && topk > vmf_mixture_n_components(model.mixture)) {
        ex = simc_cli_fail(cli, EX_CONFIG, "--top-k %zu is larger than the %zu components", topk,
                           vmf_mixture_n_components(model.mixture));
        goto done;
    }
    simc_cli_progress(cli, "predicting %zu rows", data.n);
    int rc = model.kind == VMFMM_MODEL_MIXTURE
                 ? predict_mixture(model.mixture, data.x, data.n, data.d, topk, proba, &pred)
                 : predict_classifier(model.classifier, data.x, data.n, data.d, topk, &pred);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "predict");
        goto done;
    }
    simc_cli_progress_done(cli);
    if (output) {
        ex = write_prediction(cli, output, &pred, kind, topk, proba);
        if (ex == EX_OK && json) {
            json_t *o = json_object();
            json_object_set_new(o, "kind", json_string(kind));
            json_object_set_new(o, "rows", json_integer((json_int_t)data.n));
            json_object_set_new(o, "top_k", json_integer((json_int_t)(topk ? topk : 1)));
            json_object_set_new(o, "output", json_string(output));
            ex = vmfmm_json_print(cli, o);
            json_decref(o);
        }
    } else if (json) {
        json_t *o = prediction_json(&pred, kind, topk, proba);
        ex = vmfmm_json_print(cli, o);
        json_decref(o);
    } else {
        write_csv(stdout, &pred, proba);
        fflush(stdout);
    }
done:
    prediction_free(&pred);
    vmfmm_data_free(&data);
    vmfmm_model_free(&model);
    return ex;
}

/* ---- sample ------------------------------------------------------------------ */

int vmfmm_cmd_sample(simc_cli *cli, int argc, char **argv)
{
    const char *model_path = NULL, *output = NULL, *comp_path = NULL;
    size_t n = 0;
    uint64_t seed = 42;
    int json = 0, have_n = 0;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "sample");
    const char *arg;
    int id, ex;
    while ((id = simc_cli_next(cli, &p, SAMPLE_OPTS, &arg)) > 0) {
        switch (id) {
        case OPT_HELP:
            fputs(SAMPLE_HELP, stdout);
            return EX_OK;
        case OPT_MODEL:
            model_path = arg;
            break;
        case OPT_OUTPUT:
            output = arg;
            break;
        case OPT_COMPONENTS:
            comp_path = arg;
            break;
        case OPT_N:
            ex = simc_cli_parse_size(cli, "-n/--n-samples", arg, 1, 100000000, &n);
            if (ex)
                return ex;
            have_n = 1;
            break;
        case OPT_SEED:
            ex = simc_cli_parse_u64(cli, "--seed", arg, &seed);
            if (ex)
                return ex;
            break;
        case OPT_JSON:
            json = 1;
            break;
        case OPT_QUIET:
            cli->progress = 0;
            break;
        }
    }
    if (id < 0)
        return EX_USAGE;
    ex = vmfmm_positionals(cli, &p, "sample", NULL);
    if (ex)
        return ex;
    if (model_path == NULL || output == NULL || !have_n)
        return simc_cli_fail(cli, EX_USAGE,
                             "sample needs --model, -n and --output (see 'vmfmm sample --help')");
    char ext[16];
    simc_cli_extension(output, ext, sizeof ext);
    if (strcmp(ext, "npy") != 0 && strcmp(ext, "npz") != 0 && strcmp(ext, "csv") != 0)
        return simc_cli_fail(cli, EX_USAGE,
                             "--output '%s': unknown file type (expected .npy, .npz or .csv)",
                             output);
    vmfmm_model model;
    ex = vmfmm_model_load(cli, model_path, &model);
    if (ex)
        return ex;
    if (model.kind != VMFMM_MODEL_MIXTURE) {
        vmfmm_model_free(&model);
        return simc_cli_fail(cli, EX_DATAERR,
                             "model '%s' is a classifier; sample needs a mixture (model.json)",
                             model_path);
    }
    size_t d = vmf_mixture_dim(model.mixture);
    /* n is at most 1e8, but d comes from the model file: check n * d * 4. */
    size_t cells, bytes;
    if (__builtin_mul_overflow(n, d, &cells) ||
        __builtin_mul_overflow(cells, sizeof(float), &bytes)) {
        vmfmm_model_free(&model);
        return simc_cli_fail(cli, EX_USAGE, "a sample of %zu x %zu values is too large", n, d);
    }
    float *x = malloc(bytes);
    int32_t *comp = malloc(n * sizeof *comp);
    if (x == NULL || comp == NULL) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory for %zu x %zu rows", n, d);
        goto done;
    }
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    simc_cli_progress(cli, "drawing %zu rows", n);
    int rc = vmf_mixture_sample(model.mixture, n, &rng, x, comp);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "sample");
        goto done;
    }
    vmf_array xa = {.dtype = VMF_DTYPE_F32, .ndim = 2, .shape = {n, d}, .count = n * d, .data = x};
    vmf_array ca = {.dtype = VMF_DTYPE_I32, .ndim = 1, .shape = {n}, .count = n, .data = comp};
    if (strcmp(ext, "npz") == 0) {
        const char *names[2] = {"X", "y"};
        const vmf_array *arrs[2] = {&xa, &ca};
        rc = vmf_npz_write(output, names, arrs, 2);
    } else if (strcmp(ext, "csv") == 0) {
        rc = vmf_csv_write(output, &xa);
    } else {
        rc = vmf_npy_write(output, &xa);
    }
    if (rc == VMF_OK && comp_path)
        rc = vmf_npy_write(comp_path, &ca);
    if (rc != VMF_OK) {
        simc_cli_fail_vmf(cli, rc, "cannot write the sample");
        ex = rc == VMF_ENOMEM ? EX_OSERR : EX_CANTCREAT;
        goto done;
    }
    simc_cli_progress_done(cli);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "rows", json_integer((json_int_t)n));
        json_object_set_new(o, "dim", json_integer((json_int_t)d));
        json_object_set_new(o, "seed", json_integer((json_int_t)seed));
        json_object_set_new(o, "output", json_string(output));
        ex = vmfmm_json_print(cli, o);
        json_decref(o);
    } else {
        printf("wrote %zu rows of dimension %zu to %s\n", n, d, output);
    }
done:
    free(x);
    free(comp);
    vmfmm_model_free(&model);
    return ex;
}

/* ---- inspect ----------------------------------------------------------------- */

/* Per component: nearest other component by cosine of the means. */
static void nearest(const vmf_mixture *m, size_t c, size_t *best, double *cos)
{
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m);
    const float *mu = vmf_mixture_means(m);
    *best = (size_t)-1;
    *cos = NAN;
    for (size_t j = 0; j < k; j++) {
        if (j == c)
            continue;
        double s = 0;
        for (size_t t = 0; t < d; t++)
            s += (double)mu[c * d + t] * mu[j * d + t];
        if (*best == (size_t)-1 || s > *cos) {
            *best = j;
            *cos = s;
        }
    }
}

static json_t *mixture_summary(const vmf_mixture *m)
{
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m);
    json_t *o = json_object();
    json_object_set_new(o, "dim", json_integer((json_int_t)d));
    json_object_set_new(o, "n_components", json_integer((json_int_t)k));
    json_object_set_new(o, "tied_kappa", json_boolean(vmf_mixture_tied_kappa(m)));
    json_object_set_new(o, "n_params", json_integer((json_int_t)vmf_mixture_n_params(m)));
    json_t *comps = json_array();
    for (size_t c = 0; c < k; c++) {
        size_t nb;
        double cs;
        nearest(m, c, &nb, &cs);
        json_t *e = json_object();
        json_object_set_new(e, "weight", vmfmm_jreal(vmf_mixture_weights(m)[c]));
        json_object_set_new(e, "kappa", vmfmm_jreal(vmf_mixture_kappas(m)[c]));
        json_object_set_new(e, "mean_resultant",
                            vmfmm_jreal(vmf_bessel_ratio(d, vmf_mixture_kappas(m)[c])));
        json_object_set_new(e, "nearest",
                            nb == (size_t)-1 ? json_null() : json_integer((json_int_t)nb));
        json_object_set_new(e, "nearest_cosine", vmfmm_jreal(cs));
        json_array_append_new(comps, e);
    }
    json_object_set_new(o, "components", comps);
    return o;
}

static void print_mixture(const vmf_mixture *m, const char *indent)
{
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m);
    printf("%s%5s  %8s  %10s  %9s  %8s  %7s\n", indent, "comp", "weight", "kappa", "A_d(kappa)",
           "nearest", "cosine");
    for (size_t c = 0; c < k; c++) {
        size_t nb;
        double cs;
        nearest(m, c, &nb, &cs);
        double kap = vmf_mixture_kappas(m)[c];
        char nbs[32] = "-", css[32] = "-";
        if (nb != (size_t)-1) {
            snprintf(nbs, sizeof nbs, "%zu", nb);
            snprintf(css, sizeof css, "%.3f", cs);
        }
        printf("%s%5zu  %8.4f  %10.4g  %9.4f  %8s  %7s\n", indent, c, vmf_mixture_weights(m)[c],
               kap, vmf_bessel_ratio(d, kap), nbs, css);
    }
}

int vmfmm_cmd_inspect(simc_cli *cli, int argc, char **argv)
{
    const char *model_path = NULL;
    int json = 0;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "inspect");
    const char *arg;
    int id;
    while ((id = simc_cli_next(cli, &p, INSPECT_OPTS, &arg)) > 0) {
        switch (id) {
        case OPT_HELP:
            fputs(INSPECT_HELP, stdout);
            return EX_OK;
        case OPT_MODEL:
            model_path = arg;
            break;
        case OPT_JSON:
            json = 1;
            break;
        }
    }
    if (id < 0)
        return EX_USAGE;
    int ex = vmfmm_positionals(cli, &p, "inspect", &model_path);
    if (ex)
        return ex;
    if (model_path == NULL)
        return simc_cli_fail(cli, EX_USAGE,
                             "inspect needs a model file (see 'vmfmm inspect --help')");
    vmfmm_model model;
    ex = vmfmm_model_load(cli, model_path, &model);
    if (ex)
        return ex;
    if (model.kind == VMFMM_MODEL_MIXTURE) {
        const vmf_mixture *m = model.mixture;
        if (json) {
            json_t *o = mixture_summary(m);
            json_object_set_new(o, "kind", json_string("mixture"));
            ex = vmfmm_json_print(cli, o);
            json_decref(o);
        } else {
            printf("%s: vMF mixture, dim %zu, %zu components, %s kappa, %zu parameters\n",
                   model_path, vmf_mixture_dim(m), vmf_mixture_n_components(m),
                   vmf_mixture_tied_kappa(m) ? "tied" : "per-component", vmf_mixture_n_params(m));
            print_mixture(m, "  ");
        }
    } else {
        const vmf_classifier *c = model.classifier;
        const vmf_label_table *t = vmf_classifier_labels(c);
        size_t nc = vmf_classifier_n_classes(c);
        size_t *order = malloc((nc ? nc : 1) * sizeof *order);
        if (order == NULL) {
            vmfmm_model_free(&model);
            return simc_cli_fail(cli, EX_OSERR, "out of memory");
        }
        /* Classes by label, not in the order the training data introduced them. */
        vmfmm_label_order(t, order);
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "kind", json_string("classifier"));
            json_object_set_new(o, "dim", json_integer((json_int_t)vmf_classifier_dim(c)));
            json_object_set_new(o, "n_classes", json_integer((json_int_t)nc));
            json_object_set_new(o, "rows_seen",
                                json_integer((json_int_t)vmf_classifier_rows_seen(c)));
            json_t *classes = json_array();
            for (size_t ii = 0; ii < nc; ii++) {
                size_t i = order[ii];
                char lab[256];
                vmf_label_table_format(t, i, lab, sizeof lab);
                json_t *e = mixture_summary(vmf_classifier_class_mixture(c, i));
                json_object_set_new(e, "label", json_string(lab));
                json_object_set_new(e, "prior", vmfmm_jreal(vmf_classifier_class_prior(c, i)));
                json_object_set_new(e, "rows",
                                    json_integer((json_int_t)vmf_classifier_class_rows(c, i)));
                json_array_append_new(classes, e);
            }
            json_object_set_new(o, "classes", classes);
            ex = vmfmm_json_print(cli, o);
            json_decref(o);
        } else {
            printf("%s: vMF classifier, dim %zu, %zu classes, %llu rows seen\n", model_path,
                   vmf_classifier_dim(c), nc, (unsigned long long)vmf_classifier_rows_seen(c));
            for (size_t ii = 0; ii < nc; ii++) {
                size_t i = order[ii];
                char lab[256];
                vmf_label_table_format(t, i, lab, sizeof lab);
                const vmf_mixture *m = vmf_classifier_class_mixture(c, i);
                printf("\nclass %s: prior %.4f, %llu rows, %zu components\n", lab,
                       vmf_classifier_class_prior(c, i),
                       (unsigned long long)vmf_classifier_class_rows(c, i),
                       vmf_mixture_n_components(m));
                print_mixture(m, "  ");
            }
        }
        free(order);
    }
    vmfmm_model_free(&model);
    return ex;
}
