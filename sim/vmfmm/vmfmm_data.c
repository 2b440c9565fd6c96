/*
 * vmfmm_data.c - inputs of the vmfmm tool: loading a matrix and its labels,
 * normalizing rows, the built-in synthetic sample, the train/test split and
 * reading model JSON files.
 */
#include "vmfmm_tool.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vmfmm_data_free(vmfmm_data *data)
{
    if (data == NULL)
        return;
    free(data->x);
    free(data->y);
    vmf_label_table_free(data->labels);
    memset(data, 0, sizeof *data);
}

int vmfmm_check_readable(simc_cli *cli, const char *what, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return simc_cli_fail(cli, EX_NOINPUT, "cannot read %s '%s': %s", what, path,
                             strerror(errno));
    /* A directory opens for reading on Linux; reading it fails with EISDIR. */
    char c;
    size_t r = fread(&c, 1, 1, f);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (r == 0 && e != 0)
        return simc_cli_fail(cli, EX_NOINPUT, "cannot read %s '%s': %s", what, path, strerror(e));
    return EX_OK;
}

/*
 * "<what> '<path>': <detail>", or "<what>: <detail>" when the library's
 * message already names the file (the readers do), so the path is not
 * printed twice.
 */
static int fail_named(simc_cli *cli, int rc, const char *what, const char *path)
{
    const char *detail = vmf_last_error();
    if (detail && detail[0] && strstr(detail, path))
        return simc_cli_fail(cli, simc_cli_exit_code(rc), "%s: %s", what, detail);
    return simc_cli_fail_vmf(cli, rc, "%s '%s'", what, path);
}

/* Exit code for a failed load: a read error is "cannot read input" (66), the rest data (65). */
static int load_fail(simc_cli *cli, int rc, const char *what, const char *path)
{
    if (rc == VMF_EIO || rc == VMF_ENOTFOUND) {
        /* A read error makes the input unreadable (66); an .npz without X is bad data. */
        int code = rc == VMF_EIO ? EX_NOINPUT : EX_DATAERR;
        const char *detail = vmf_last_error();
        if (detail && detail[0] && strstr(detail, path))
            return simc_cli_fail(cli, code, "%s: %s", what, detail);
        return simc_cli_fail(cli, code, "%s '%s': %s", what, path,
                             detail && detail[0] ? detail : vmf_strerror(rc));
    }
    return fail_named(cli, rc, what, path);
}

/* Reads a label file into a 1-D array (.npy, .npz member "y", or a one-column CSV). */
static int read_labels_file(simc_cli *cli, const char *path, vmf_array *out)
{
    char ext[16];
    simc_cli_extension(path, ext, sizeof ext);
    int rc;
    if (strcmp(ext, "npz") == 0) {
        rc = vmf_npz_read(path, "y", out);
    } else if (strcmp(ext, "csv") == 0) {
        vmf_array a = {0};
        rc = vmf_csv_read(path, &a);
        if (rc == VMF_OK) {
            /* A CSV of labels is one integer per line: make it an int64 vector. */
            if (a.ndim != 2 || a.shape[1] != 1) {
                vmf_array_free(&a);
                return simc_cli_fail(cli, EX_DATAERR, "labels '%s': expected one label per line",
                                     path);
            }
            int64_t *v = malloc((a.count ? a.count : 1) * sizeof *v);
            if (v == NULL) {
                vmf_array_free(&a);
                return simc_cli_fail(cli, EX_OSERR, "out of memory");
            }
            const float *f = a.data;
            for (size_t i = 0; i < a.count; i++) {
                if (!(f[i] == floorf(f[i])) || fabsf(f[i]) > 16777216.0f) {
                    free(v);
                    vmf_array_free(&a);
                    return simc_cli_fail(cli, EX_DATAERR, "labels '%s': line %zu is not an integer",
                                         path, i + 1);
                }
                v[i] = (int64_t)f[i];
            }
            size_t count = a.count;
            vmf_array_free(&a);
            memset(out, 0, sizeof *out);
            out->dtype = VMF_DTYPE_I64;
            out->ndim = 1;
            out->shape[0] = count;
            out->count = count;
            out->data = v;
        }
    } else {
        rc = vmf_npy_read(path, out);
    }
    if (rc != VMF_OK)
        return load_fail(cli, rc, "labels", path);
    return EX_OK;
}

/* Interns a 1-D label array into data->labels and data->y. */
static int set_labels(simc_cli *cli, vmfmm_data *data, const vmf_array *a, const char *path)
{
    if (a->ndim != 1 && !(a->ndim == 2 && a->shape[1] == 1))
        return simc_cli_fail(cli, EX_DATAERR, "labels '%s': expected a 1-D array, got %zu-D", path,
                             a->ndim);
    if (a->count != data->n)
        return simc_cli_fail(cli, EX_DATAERR, "labels '%s' have %zu rows, the input has %zu", path,
                             a->count, data->n);
    vmf_labels view;
    int64_t *storage = NULL;
    vmf_array flat = *a;
    flat.ndim = 1;
    flat.shape[0] = a->count;
    int rc = vmf_labels_from_array(&flat, &view, &storage);
    if (rc != VMF_OK)
        return simc_cli_fail_vmf(cli, rc, "labels '%s'", path);
    data->y = malloc((data->n ? data->n : 1) * sizeof *data->y);
    if (data->y == NULL) {
        free(storage);
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    }
    rc = vmf_label_table_new(&data->labels);
    if (rc == VMF_OK)
        rc = vmf_label_table_intern(data->labels, &view, data->y);
    free(storage);
    if (rc != VMF_OK)
        return simc_cli_fail_vmf(cli, rc, "labels '%s'", path);
    return EX_OK;
}

int vmfmm_data_load(simc_cli *cli, const char *path, const char *labels_path, vmfmm_data *out)
{
    memset(out, 0, sizeof *out);
    int ex = vmfmm_check_readable(cli, "input", path);
    if (ex)
        return ex;
    if (labels_path) {
        ex = vmfmm_check_readable(cli, "labels", labels_path);
        if (ex)
            return ex;
    }
    vmf_array y = {0};
    int rc = vmf_load_matrix(path, &out->x, &out->n, &out->d, labels_path ? NULL : &y);
    if (rc != VMF_OK) {
        vmf_array_free(&y);
        memset(out, 0, sizeof *out);
        return load_fail(cli, rc, "input", path);
    }
    snprintf(out->source, sizeof out->source, "%s", path);
    if (out->n == 0) {
        ex = simc_cli_fail(cli, EX_DATAERR, "input '%s' has no rows", path);
        goto fail;
    }
    if (out->d < 2) {
        ex = simc_cli_fail(cli, EX_DATAERR,
                           "input '%s' has %zu column(s); a direction needs at least 2", path,
                           out->d);
        goto fail;
    }
    rc = vmf_rows_normalize(out->x, out->n, out->d);
    if (rc != VMF_OK) {
        ex = fail_named(cli, rc, "input", path);
        goto fail;
    }
    if (labels_path) {
        ex = read_labels_file(cli, labels_path, &y);
        if (ex)
            goto fail;
        ex = set_labels(cli, out, &y, labels_path);
    } else if (y.data != NULL) {
        ex = set_labels(cli, out, &y, path);
    }
    vmf_array_free(&y);
    if (ex) {
        vmfmm_data_free(out);
        return ex;
    }
    return EX_OK;
fail:
    vmf_array_free(&y);
    vmfmm_data_free(out);
    return ex;
}

/* One input of vmfmm_data_load_many: its unit rows and its raw labels (if any). */
static int load_part(simc_cli *cli, const char *path, const char *labels_path, const char *id_col,
                     const char *label_col, float **x, size_t *n, size_t *d, vmf_array *y)
{
    int ex = vmfmm_check_readable(cli, "input", path);
    if (!ex && labels_path)
        ex = vmfmm_check_readable(cli, "labels", labels_path);
    if (ex)
        return ex;
    int rc;
    if (id_col || label_col) {
        char ext[16];
        simc_cli_extension(path, ext, sizeof ext);
        if (strcmp(ext, "csv") != 0)
            return simc_cli_fail(cli, EX_USAGE,
                                 "--id-column and --label-column apply to CSV inputs, not '%s'",
                                 path);
        vmf_csv_opts o;
        vmf_csv_opts_init(&o);
        o.id_column = id_col;
        o.label_column = label_col;
        vmf_array xa = {0};
        rc = vmf_csv_read_columns(path, &o, &xa, NULL, label_col ? y : NULL);
        if (rc == VMF_OK)
            rc = vmf_array_to_f32(&xa, x, n, d);
        vmf_array_free(&xa);
    } else {
        rc = vmf_load_matrix(path, x, n, d, labels_path ? NULL : y);
    }
    if (rc != VMF_OK) {
        vmf_array_free(y);
        return load_fail(cli, rc, "input", path);
    }
    if (*n == 0)
        ex = simc_cli_fail(cli, EX_DATAERR, "input '%s' has no rows", path);
    else if (*d < 2)
        ex = simc_cli_fail(cli, EX_DATAERR,
                           "input '%s' has %zu column(s); a direction needs at least 2", path, *d);
    else if ((rc = vmf_rows_normalize(*x, *n, *d)) != VMF_OK)
        ex = fail_named(cli, rc, "input", path);
    else if (labels_path && (ex = read_labels_file(cli, labels_path, y)) == EX_OK && y->count != *n)
        ex = simc_cli_fail(cli, EX_DATAERR, "labels '%s' have %zu rows, the input '%s' has %zu",
                           labels_path, y->count, path, *n);
    if (ex) {
        free(*x);
        *x = NULL;
        vmf_array_free(y);
    }
    return ex;
}

int vmfmm_data_load_many(simc_cli *cli, const char *const *paths, size_t n_paths,
                         const char *const *labels_paths, size_t n_labels, const char *id_column,
                         const char *label_column, vmfmm_data *out)
{
    memset(out, 0, sizeof *out);
    vmf_array *ys = calloc(n_paths ? n_paths : 1, sizeof *ys);
    size_t *rows = calloc(n_paths ? n_paths : 1, sizeof *rows);
    int ex = EX_OK, labelled = 1;
    if (ys == NULL || rows == NULL) {
        ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_paths && !ex; i++) {
        float *xi = NULL;
        size_t ni = 0, di = 0;
        ex = load_part(cli, paths[i], n_labels ? labels_paths[i] : NULL, id_column, label_column,
                       &xi, &ni, &di, &ys[i]);
        if (ex)
            break;
        if (i > 0 && di != out->d) {
            free(xi);
            ex = simc_cli_fail(cli, EX_DATAERR, "input '%s' has %zu columns, '%s' has %zu",
                               paths[i], di, paths[0], out->d);
            break;
        }
        size_t total = out->n + ni, bytes;
        if (__builtin_mul_overflow(total, di * sizeof(float), &bytes)) {
            free(xi);
            ex = simc_cli_fail(cli, EX_DATAERR, "the inputs hold too many rows");
            break;
        }
        if (i == 0) {
            out->x = xi;
        } else {
            float *grown = realloc(out->x, bytes);
            if (grown == NULL) {
                free(xi);
                ex = simc_cli_fail(cli, EX_OSERR, "out of memory for %zu rows", total);
                break;
            }
            out->x = grown;
            memcpy(out->x + out->n * di, xi, ni * di * sizeof(float));
            free(xi);
        }
        out->n = total;
        out->d = di;
        rows[i] = ni;
        labelled &= ys[i].data != NULL;
    }
    if (ex)
        goto done;
    if (n_paths == 1)
        snprintf(out->source, sizeof out->source, "%s", paths[0]);
    else
        snprintf(out->source, sizeof out->source, "%s (+%zu more)", paths[0], n_paths - 1);
    if (labelled) {
        out->y = malloc(out->n * sizeof *out->y);
        int rc = out->y ? vmf_label_table_new(&out->labels) : VMF_ENOMEM;
        size_t off = 0;
        for (size_t i = 0; i < n_paths && rc == VMF_OK; i++) {
            const char *lp = n_labels ? labels_paths[i] : paths[i];
            vmf_array flat = ys[i];
            if (flat.ndim != 1 && !(flat.ndim == 2 && flat.shape[1] == 1)) {
                ex = simc_cli_fail(cli, EX_DATAERR, "labels '%s': expected a 1-D array, got %zu-D",
                                   lp, flat.ndim);
                break;
            }
            flat.ndim = 1;
            flat.shape[0] = flat.count;
            vmf_labels view;
            int64_t *storage = NULL;
            rc = vmf_labels_from_array(&flat, &view, &storage);
            if (rc == VMF_OK)
                rc = vmf_label_table_intern(out->labels, &view, out->y + off);
            free(storage);
            if (rc != VMF_OK) {
                ex = simc_cli_fail_vmf(cli, rc, "labels '%s'%s", lp,
                                       i > 0 ? " (all inputs need labels of one kind)" : "");
                break;
            }
            off += rows[i];
        }
        if (!ex && rc != VMF_OK)
            ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
    } else if (n_labels == 0) {
        /* Some inputs carry labels, others not: use none rather than a partial set. */
        for (size_t i = 0; i < n_paths; i++)
            if (ys[i].data != NULL) {
                simc_cli_warn(cli, "only some inputs carry labels ('%s' does); ignoring them",
                              paths[i]);
                break;
            }
    }
done:
    for (size_t i = 0; ys && i < n_paths; i++)
        vmf_array_free(&ys[i]);
    free(ys);
    free(rows);
    if (ex)
        vmfmm_data_free(out);
    return ex;
}

int vmfmm_data_synthetic(simc_cli *cli, size_t n, size_t d, size_t k, uint64_t seed,
                         vmfmm_data *out)
{
    memset(out, 0, sizeof *out);
    if (k == 0 || d < 2 || n == 0)
        return simc_cli_fail(cli, EX_USAGE, "synthetic sample needs n >= 1, d >= 2, k >= 1");
    size_t cells;
    if (__builtin_mul_overflow(n, d, &cells) || cells > ((size_t)1 << 31))
        return simc_cli_fail(cli, EX_USAGE, "synthetic sample of %zu x %zu values is too large", n,
                             d);
    int ex = EX_OSERR;
    float *means = malloc(k * d * sizeof *means);
    double *weights = malloc(k * sizeof *weights);
    double *kappas = malloc(k * sizeof *kappas);
    out->x = malloc(cells * sizeof *out->x);
    out->y = malloc(n * sizeof *out->y);
    vmf_mixture *m = NULL;
    if (!means || !weights || !kappas || !out->x || !out->y) {
        simc_cli_fail(cli, ex, "out of memory");
        goto done;
    }
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    int rc = vmf_sample_uniform(d, k, &rng, means);
    double wsum = 0;
    for (size_t j = 0; j < k; j++) {
        weights[j] = vmf_rng_gamma(&rng, 5.0);
        wsum += weights[j];
        /* A mean resultant length r (the expected cosine of a row to its mean) uniform
           in [0.7, 0.9] whatever the dimension, through Banerjee's approximation
           kappa = r (d - r^2) / (1 - r^2): components are tight enough that rows of one
           component resemble each other more than rows of two (pairwise cosine about
           r^2 against about 0), as embeddings of one class do. */
        double r = 0.7 + 0.2 * vmf_rng_uniform(&rng);
        kappas[j] = r * ((double)d - r * r) / (1.0 - r * r);
    }
    for (size_t j = 0; j < k; j++)
        weights[j] /= wsum;
    if (rc == VMF_OK)
        rc = vmf_mixture_new(k, d, weights, means, kappas, &m);
    if (rc == VMF_OK)
        rc = vmf_mixture_sample(m, n, &rng, out->x, out->y);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "synthetic sample");
        goto done;
    }
    /* Labels are the true components: the fit can be scored against them. */
    int64_t *ids = malloc(k * sizeof *ids);
    if (ids == NULL) {
        simc_cli_fail(cli, ex, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < k; j++)
        ids[j] = (int64_t)j;
    vmf_labels view = {.n = k, .ints = ids};
    rc = vmf_label_table_new(&out->labels);
    if (rc == VMF_OK)
        rc = vmf_label_table_intern(out->labels, &view, NULL);
    free(ids);
    if (rc != VMF_OK) {
        ex = simc_cli_fail_vmf(cli, rc, "synthetic labels");
        goto done;
    }
    out->n = n;
    out->d = d;
    out->synthetic = 1;
    snprintf(out->source, sizeof out->source, "synthetic (n=%zu, d=%zu, k=%zu, seed=%llu)", n, d, k,
             (unsigned long long)seed);
    ex = EX_OK;
done:
    vmf_mixture_free(m);
    free(means);
    free(weights);
    free(kappas);
    if (ex)
        vmfmm_data_free(out);
    return ex;
}

void vmfmm_split(size_t n, double fraction, uint64_t seed, uint8_t *is_test)
{
    memset(is_test, 0, n);
    size_t n_test = (size_t)llround((double)n * fraction);
    if (n_test > n)
        n_test = n;
    vmf_rng rng;
    vmf_rng_seed(&rng, seed ^ 0x5EED5EED5EED5EEDULL);
    /* Selection sampling (Knuth's algorithm S): exactly n_test rows, in one pass. */
    size_t need = n_test;
    for (size_t i = 0; i < n && need > 0; i++) {
        if (vmf_rng_below(&rng, n - i) < need) {
            is_test[i] = 1;
            need--;
        }
    }
}

int vmfmm_gather(const vmfmm_data *data, const uint8_t *is_test, uint8_t want, float **x,
                 int32_t **y, size_t *n)
{
    size_t m = 0;
    for (size_t i = 0; i < data->n; i++)
        m += is_test[i] == want;
    *x = malloc((m ? m : 1) * data->d * sizeof **x);
    if (y)
        *y = data->y ? malloc((m ? m : 1) * sizeof **y) : NULL;
    if (*x == NULL || (y && data->y && *y == NULL)) {
        free(*x);
        *x = NULL;
        if (y) {
            free(*y);
            *y = NULL;
        }
        return VMF_ENOMEM;
    }
    size_t j = 0;
    for (size_t i = 0; i < data->n; i++) {
        if (is_test[i] != want)
            continue;
        memcpy(*x + j * data->d, data->x + i * data->d, data->d * sizeof **x);
        if (y && data->y)
            (*y)[j] = data->y[i];
        j++;
    }
    *n = m;
    return VMF_OK;
}

int vmfmm_label_less(const vmf_label_table *t, size_t a, size_t b)
{
    if (vmf_label_table_is_str(t))
        return strcmp(vmf_label_table_str(t, a), vmf_label_table_str(t, b)) < 0;
    return vmf_label_table_int(t, a) < vmf_label_table_int(t, b);
}

void vmfmm_label_order(const vmf_label_table *t, size_t *order)
{
    size_t c = vmf_label_table_size(t);
    for (size_t i = 0; i < c; i++)
        order[i] = i;
    /* Insertion sort: label tables are small and this keeps equal labels stable. */
    for (size_t i = 1; i < c; i++)
        for (size_t j = i; j > 0 && vmfmm_label_less(t, order[j], order[j - 1]); j--) {
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
}

/* ---- models -------------------------------------------------------------- */

void vmfmm_model_free(vmfmm_model *m)
{
    if (m == NULL)
        return;
    vmf_mixture_free(m->mixture);
    vmf_classifier_free(m->classifier);
    memset(m, 0, sizeof *m);
}

int vmfmm_model_load(simc_cli *cli, const char *path, vmfmm_model *out)
{
    memset(out, 0, sizeof *out);
    int ex = vmfmm_check_readable(cli, "model", path);
    if (ex)
        return ex;
    char *text = NULL;
    size_t len = 0;
    if (simc_cli_read_file(path, (size_t)1 << 31, &text, &len) != 0)
        return simc_cli_fail(cli, errno == EFBIG ? EX_DATAERR : EX_NOINPUT,
                             "cannot read model '%s': %s", path, strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        free(text);
        return simc_cli_fail(cli, EX_DATAERR, "model '%s': invalid JSON at line %d: %s", path,
                             jerr.line, jerr.text);
    }
    const char *format = json_string_value(json_object_get(root, "format"));
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (!json_is_object(root) || format == NULL || strcmp(format, "vmfmm-model") != 0) {
        json_decref(root);
        free(text);
        return simc_cli_fail(cli, EX_DATAERR,
                             "model '%s': not a vmfmm model (\"format\" must be \"vmfmm-model\")",
                             path);
    }
    int rc;
    if (kind == NULL || strcmp(kind, "mixture") == 0) {
        out->kind = VMFMM_MODEL_MIXTURE;
        rc = vmf_mixture_from_json(text, len, &out->mixture);
    } else if (strcmp(kind, "classifier") == 0) {
        out->kind = VMFMM_MODEL_CLASSIFIER;
        rc = vmf_classifier_from_json(text, len, &out->classifier);
    } else {
        int ex2 = simc_cli_fail(cli, EX_DATAERR, "model '%s': unknown kind \"%.40s\"", path, kind);
        json_decref(root);
        free(text);
        return ex2;
    }
    json_decref(root);
    free(text);
    if (rc != VMF_OK) {
        memset(out, 0, sizeof *out);
        return simc_cli_fail_vmf(cli, rc, "model '%s'", path);
    }
    return EX_OK;
}

/* ---- JSON ------------------------------------------------------------------ */

json_t *vmfmm_jreal(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *vmfmm_jreal_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, vmfmm_jreal(v[i]));
    return a;
}

int vmfmm_json_write(simc_cli *cli, const char *path, json_t *obj)
{
    char *s = json_dumps(obj, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_PRESERVE_ORDER);
    if (s == NULL)
        return simc_cli_fail(cli, EX_OSERR, "out of memory writing '%s'", path);
    size_t len = strlen(s);
    int ok = simc_cli_write_file(path, s, len) == 0;
    int e = errno;
    free(s);
    if (!ok)
        return simc_cli_fail(cli, EX_CANTCREAT, "cannot write '%s': %s", path, strerror(e));
    return EX_OK;
}

int vmfmm_json_print(simc_cli *cli, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_PRESERVE_ORDER);
    if (s == NULL)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    simc_cli_progress_done(cli);
    puts(s);
    fflush(stdout);
    free(s);
    return EX_OK;
}

/* ---- options --------------------------------------------------------------- */

int vmfmm_parse_estimator(simc_cli *cli, const char *arg, vmf_kappa_estimator *out)
{
    if (vmf_kappa_estimator_parse(arg, out) == VMF_OK)
        return EX_OK;
    return simc_cli_fail(
        cli, EX_USAGE, "--kappa-estimator must be banerjee, sra, song or exact, got '%.40s'", arg);
}

void vmfmm_set_threads(size_t threads)
{
    if (threads > 0)
        openblas_set_num_threads((int)threads);
}
