/*
 * vmfd_payload.c - decoding ingest and predict bodies (see vmfd_payload.h).
 *
 * Binary formats go through libvmfmm's .npy/.npz readers, which bound every
 * size they read before allocating, so a hostile shape header (10^9 rows in a
 * 1 kB body) is a format error and never an allocation.
 */
#include "vmfd_payload.h"

#include "vmfd_sha256.h"
#include "vmfmm/io.h"
#include "vmfmm/labels.h"
#include "vmfmm/rows.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(vmfd_payload_error *e, int status, const char *error, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->error, sizeof e->error, "%s", error);
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return -1;
}

void vmfd_batch_free(vmfd_batch *b)
{
    if (!b)
        return;
    free(b->x);
    free(b->ints);
    if (b->strs) {
        for (size_t i = 0; i < b->n; i++)
            free(b->strs[i]);
        free(b->strs);
    }
    memset(b, 0, sizeof *b);
}

void vmfd_payload_media_type(const char *content_type, char *out, size_t size)
{
    size_t j = 0;
    if (!content_type)
        content_type = "";
    while (*content_type == ' ')
        content_type++;
    for (; *content_type && *content_type != ';' && j + 1 < size; content_type++) {
        if (*content_type != ' ')
            out[j++] = (char)tolower((unsigned char)*content_type);
    }
    out[j] = '\0';
}

void vmfd_batch_hash(vmfd_batch *b)
{
    vmfd_sha256 s;
    unsigned char u[8];
    vmfd_sha256_init(&s);
    vmfd_sha256_update(&s, "vmfd-batch-v1", 14);
    uint64_t hdr[3] = {b->n, b->d, (uint64_t)b->label_kind};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 8; i++)
            u[i] = (unsigned char)(hdr[k] >> (8 * i));
        vmfd_sha256_update(&s, u, 8);
    }
    /* float32 rows in little-endian byte order, whatever the host. */
    for (size_t i = 0; i < b->n * b->d; i++) {
        uint32_t bits;
        memcpy(&bits, &b->x[i], 4);
        for (int k = 0; k < 4; k++)
            u[k] = (unsigned char)(bits >> (8 * k));
        vmfd_sha256_update(&s, u, 4);
    }
    for (size_t r = 0; r < b->n; r++) {
        uint64_t v;
        if (b->label_kind == VMFD_LABELS_INT) {
            v = (uint64_t)b->ints[r];
            for (int i = 0; i < 8; i++)
                u[i] = (unsigned char)(v >> (8 * i));
            vmfd_sha256_update(&s, u, 8);
        } else if (b->label_kind == VMFD_LABELS_STR) {
            v = strlen(b->strs[r]);
            for (int i = 0; i < 8; i++)
                u[i] = (unsigned char)(v >> (8 * i));
            vmfd_sha256_update(&s, u, 8);
            vmfd_sha256_update(&s, b->strs[r], (size_t)v);
        }
    }
    vmfd_sha256_final_hex(&s, b->sha256);
}

/* Normalizes rows in place, turning libvmfmm's message into a 422. */
static int normalize(float *x, size_t n, size_t d, vmfd_payload_error *e)
{
    for (size_t i = 0; i < n * d; i++) {
        if (!isfinite(x[i]))
            return fail(e, 422, "non_finite", "row %zu holds NaN or Inf", i / d);
    }
    if (vmf_rows_normalize(x, n, d) != VMF_OK) {
        for (size_t r = 0; r < n; r++) {
            double s = 0.0;
            for (size_t j = 0; j < d; j++)
                s += (double)x[r * d + j] * x[r * d + j];
            if (!(s > 0.0))
                return fail(e, 422, "zero_vector", "row %zu is a zero vector", r);
        }
        return fail(e, 422, "bad_rows", "%s", vmf_last_error());
    }
    return 0;
}

/* Converts a numeric 2-D (or 1-D, when one_row_ok) array to float32 rows. */
static int array_rows(const vmf_array *a, int one_row_ok, float **x, size_t *n, size_t *d,
                      vmfd_payload_error *e)
{
    if (a->dtype != VMF_DTYPE_F32 && a->dtype != VMF_DTYPE_F64)
        return fail(e, 422, "bad_dtype", "embeddings must be float32 or float64, not %s",
                    vmf_dtype_name(a->dtype));
    if (a->ndim == 1 && one_row_ok) {
        vmf_array v = *a;
        v.ndim = 2;
        v.shape[0] = 1;
        v.shape[1] = a->shape[0];
        int rc = vmf_array_to_f32(&v, x, n, d);
        if (rc == VMF_ENOMEM)
            return fail(e, 507, "out_of_memory", "%s", vmf_last_error());
        if (rc != VMF_OK)
            return fail(e, 422, "bad_values", "%s", vmf_last_error());
    } else if (a->ndim != 2) {
        return fail(e, 422, "bad_shape", "embeddings must be a 2-D array, got %zu dimensions",
                    a->ndim);
    } else {
        /* Ingest takes the array's buffer over (vmf_array_take_f32): the
         * decoded rows exist once in memory, never twice. */
        int rc = vmf_array_take_f32((vmf_array *)(uintptr_t)a, x, n, d);
        if (rc == VMF_ENOMEM)
            return fail(e, 507, "out_of_memory", "%s", vmf_last_error());
        if (rc != VMF_OK && a->shape[0] > 0 && a->shape[1] > 0)
            return fail(e, 422, "non_finite", "%s", vmf_last_error());
        if (rc != VMF_OK)
            return fail(e, 422, "empty", "no rows");
    }
    if (*n == 0 || *d == 0) {
        free(*x);
        *x = NULL;
        return fail(e, 422, "empty", "the batch holds no rows or no columns");
    }
    return 0;
}

static int take_labels(const vmf_array *y, vmfd_batch *b, vmfd_payload_error *e)
{
    if (y->ndim != 1)
        return fail(e, 422, "bad_labels", "y must be 1-D, got %zu dimensions", y->ndim);
    if (y->shape[0] != b->n)
        return fail(e, 422, "label_count", "%zu labels for %zu rows", y->shape[0], b->n);
    if (y->dtype == VMF_DTYPE_STR) {
        char *const *s = y->data;
        b->strs = calloc(b->n, sizeof *b->strs);
        if (!b->strs)
            return fail(e, 507, "out_of_memory", "labels");
        b->label_kind = VMFD_LABELS_STR;
        for (size_t i = 0; i < b->n; i++) {
            b->strs[i] = strdup(s[i]);
            if (!b->strs[i])
                return fail(e, 507, "out_of_memory", "labels");
        }
        return 0;
    }
    vmf_labels view;
    int64_t *storage = NULL;
    if (vmf_labels_from_array(y, &view, &storage) != VMF_OK || !view.ints)
        return fail(e, 422, "bad_dtype", "labels must be integers or strings, not %s",
                    vmf_dtype_name(y->dtype));
    b->ints = malloc(b->n * sizeof *b->ints);
    if (!b->ints) {
        free(storage);
        return fail(e, 507, "out_of_memory", "labels");
    }
    memcpy(b->ints, view.ints, b->n * sizeof *b->ints);
    b->label_kind = VMFD_LABELS_INT;
    free(storage);
    return 0;
}

#define NPY_HEADER_SLACK 65536u

/* a * b + c, saturating, capped by cap when cap > 0. */
static uint64_t bound(uint64_t a, uint64_t b, uint64_t c, uint64_t cap)
{
    uint64_t v;
    if (__builtin_mul_overflow(a, b, &v) || __builtin_add_overflow(v, c, &v))
        v = UINT64_MAX;
    return cap && v > cap ? cap : v;
}

/* Maps an .npz read failure of member `m` to its status. */
static int npz_fail(int rc, const char *m, vmfd_payload_error *e)
{
    if (rc == VMF_ERANGE)
        return fail(e, 413, "too_large", "member %s: %s", m, vmf_last_error());
    if (rc == VMF_ENOMEM)
        return fail(e, 507, "out_of_memory", "member %s: %s", m, vmf_last_error());
    return fail(e, 400, "bad_npz", "%s", vmf_last_error());
}

static int parse_npz(const void *body, size_t len, const vmfd_payload_limits *lim, vmfd_batch *b,
                     vmfd_payload_error *e)
{
    vmf_array xa, ya;
    memset(&xa, 0, sizeof xa);
    memset(&ya, 0, sizeof ya);
    uint64_t xmax = VMF_IO_MAX_BYTES, ymax = VMF_IO_MAX_BYTES;
    if (lim && lim->max_rows) {
        uint64_t per_label = lim->max_label_bytes * 4 > 8 ? lim->max_label_bytes * 4 : 8;
        xmax = bound(lim->max_rows, (lim->dim ? lim->dim : 65536) * 8, NPY_HEADER_SLACK,
                     lim->max_decoded_bytes);
        ymax = bound(lim->max_rows, per_label, NPY_HEADER_SLACK, lim->max_decoded_bytes);
    }
    int rc = vmf_npz_read_mem_max(body, len, "X", xmax, &xa);
    if (rc == VMF_ENOTFOUND)
        return fail(e, 422, "missing_x", "the archive has no member X.npy");
    if (rc != VMF_OK)
        return npz_fail(rc, "X", e);
    if (array_rows(&xa, 0, &b->x, &b->n, &b->d, e) != 0)
        goto fail_out;
    vmf_array_free(&xa);
    if (lim && lim->max_rows && b->n > lim->max_rows) {
        fail(e, 413, "too_many_rows", "%zu rows; max_batch_rows is %llu", b->n,
             (unsigned long long)lim->max_rows);
        goto fail_out;
    }
    rc = vmf_npz_read_mem_max(body, len, "y", ymax, &ya);
    if (rc == VMF_OK) {
        if (take_labels(&ya, b, e) != 0)
            goto fail_out;
    } else if (rc != VMF_ENOTFOUND) {
        npz_fail(rc, "y", e);
        goto fail_out;
    }
    vmf_array_free(&ya);
    return 0;
fail_out:
    vmf_array_free(&xa);
    vmf_array_free(&ya);
    vmfd_batch_free(b);
    return -1;
}

/* Reads JSON "embeddings" (array of equal-length arrays of numbers). */
static int json_rows(json_t *emb, float **x, size_t *n, size_t *d, vmfd_payload_error *e)
{
    if (!json_is_array(emb))
        return fail(e, 422, "bad_embeddings", "\"embeddings\" must be an array of arrays");
    *n = json_array_size(emb);
    if (*n == 0)
        return fail(e, 422, "empty", "\"embeddings\" holds no rows");
    json_t *first = json_array_get(emb, 0);
    if (!json_is_array(first) || json_array_size(first) == 0)
        return fail(e, 422, "bad_embeddings", "row 0 is not a non-empty array of numbers");
    *d = json_array_size(first);
    if (*n > SIZE_MAX / *d / sizeof(float))
        return fail(e, 413, "too_large", "too many values");
    *x = malloc(*n * *d * sizeof **x);
    if (!*x)
        return fail(e, 507, "out_of_memory", "embeddings");
    for (size_t i = 0; i < *n; i++) {
        json_t *row = json_array_get(emb, i);
        if (!json_is_array(row) || json_array_size(row) != *d) {
            free(*x);
            *x = NULL;
            return fail(e, 422, "bad_dimension", "row %zu has %zu values, row 0 has %zu", i,
                        json_is_array(row) ? json_array_size(row) : 0, *d);
        }
        for (size_t j = 0; j < *d; j++) {
            json_t *v = json_array_get(row, j);
            if (!json_is_number(v)) {
                free(*x);
                *x = NULL;
                return fail(e, 422, "bad_embeddings", "row %zu value %zu is not a number", i, j);
            }
            double dv = json_number_value(v);
            if (!isfinite(dv) || fabs(dv) > 3.4e38) {
                free(*x);
                *x = NULL;
                return fail(e, 422, "non_finite", "row %zu value %zu is out of float32 range", i,
                            j);
            }
            (*x)[i * *d + j] = (float)dv;
        }
    }
    return 0;
}

static int json_labels(json_t *lab, vmfd_batch *b, vmfd_payload_error *e)
{
    if (!json_is_array(lab))
        return fail(e, 422, "bad_labels", "\"labels\" must be an array");
    if (json_array_size(lab) != b->n)
        return fail(e, 422, "label_count", "%zu labels for %zu rows", json_array_size(lab), b->n);
    json_t *l0 = json_array_get(lab, 0);
    if (json_is_integer(l0)) {
        b->ints = malloc(b->n * sizeof *b->ints);
        if (!b->ints)
            return fail(e, 507, "out_of_memory", "labels");
        b->label_kind = VMFD_LABELS_INT;
        for (size_t i = 0; i < b->n; i++) {
            json_t *v = json_array_get(lab, i);
            if (!json_is_integer(v))
                return fail(e, 422, "bad_labels",
                            "label %zu: labels must be all integers or "
                            "all strings",
                            i);
            b->ints[i] = (int64_t)json_integer_value(v);
        }
        return 0;
    }
    if (json_is_string(l0)) {
        b->strs = calloc(b->n, sizeof *b->strs);
        if (!b->strs)
            return fail(e, 507, "out_of_memory", "labels");
        b->label_kind = VMFD_LABELS_STR;
        for (size_t i = 0; i < b->n; i++) {
            json_t *v = json_array_get(lab, i);
            if (!json_is_string(v))
                return fail(e, 422, "bad_labels",
                            "label %zu: labels must be all integers or "
                            "all strings",
                            i);
            b->strs[i] = strdup(json_string_value(v));
            if (!b->strs[i])
                return fail(e, 507, "out_of_memory", "labels");
        }
        return 0;
    }
    return fail(e, 422, "bad_labels", "labels must be integers or strings");
}

static json_t *parse_json(const void *body, size_t len, vmfd_payload_error *e)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_out_of_memory)
            fail(e, 507, "out_of_memory", "parsing the JSON body");
        else
            fail(e, 400, "bad_json", "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(e, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

/* Labels longer than the limit (string bytes, or an integer's decimal digits). */
static int check_labels(const vmfd_batch *b, uint64_t max_label, vmfd_payload_error *e)
{
    for (size_t i = 0; max_label && i < b->n; i++) {
        size_t l = 0;
        char num[32];
        if (b->label_kind == VMFD_LABELS_STR)
            l = strlen(b->strs[i]);
        else if (b->label_kind == VMFD_LABELS_INT)
            l = (size_t)snprintf(num, sizeof num, "%lld", (long long)b->ints[i]);
        if (l > max_label)
            return fail(e, 422, "label_too_long",
                        "label %zu has %zu bytes; max_label_bytes is %llu", i, l,
                        (unsigned long long)max_label);
    }
    return 0;
}

int vmfd_payload_parse_ingest(const char *content_type, const void *body, size_t len,
                              vmfd_batch *out, vmfd_payload_error *e)
{
    return vmfd_payload_parse_ingest_limited(content_type, body, len, NULL, out, e);
}

int vmfd_payload_parse_ingest_limited(const char *content_type, const void *body, size_t len,
                                      const vmfd_payload_limits *lim, vmfd_batch *out,
                                      vmfd_payload_error *e)
{
    char mt[64];
    memset(out, 0, sizeof *out);
    vmfd_payload_media_type(content_type, mt, sizeof mt);
    if (strcmp(mt, "application/x-npz") == 0 || strcmp(mt, "application/zip") == 0 ||
        strcmp(mt, "application/octet-stream") == 0) {
        if (parse_npz(body, len, lim, out, e) != 0)
            return -1;
    } else if (strcmp(mt, "application/json") == 0) {
        /* Parsing costs ~32x the body: refuse before, not after. */
        if (lim && lim->max_json_bytes && len > lim->max_json_bytes)
            return fail(e, 413, "json_too_large",
                        "%zu bytes of JSON; max_json_body_bytes is %llu (send .npz)", len,
                        (unsigned long long)lim->max_json_bytes);
        json_t *root = parse_json(body, len, e);
        if (!root)
            return -1;
        int rc = json_rows(json_object_get(root, "embeddings"), &out->x, &out->n, &out->d, e);
        json_t *lab = json_object_get(root, "labels");
        if (rc == 0 && lab && !json_is_null(lab))
            rc = json_labels(lab, out, e);
        json_decref(root);
        if (rc == 0 && lim && lim->max_rows && out->n > lim->max_rows)
            rc = fail(e, 413, "too_many_rows", "%zu rows; max_batch_rows is %llu", out->n,
                      (unsigned long long)lim->max_rows);
        if (rc != 0) {
            vmfd_batch_free(out);
            return -1;
        }
    } else {
        return fail(e, 415, "unsupported_media_type",
                    "send application/x-npz or application/json, not '%s'", mt);
    }
    if (lim && check_labels(out, lim->max_label_bytes, e) != 0) {
        vmfd_batch_free(out);
        return -1;
    }
    if (normalize(out->x, out->n, out->d, e) != 0) {
        vmfd_batch_free(out);
        return -1;
    }
    vmfd_batch_hash(out);
    return 0;
}

int vmfd_payload_parse_predict(const char *content_type, const void *body, size_t len, float **x,
                               size_t *n, size_t *d, long *top_k, vmfd_payload_error *e)
{
    char mt[64];
    *x = NULL;
    vmfd_payload_media_type(content_type, mt, sizeof mt);
    if (strcmp(mt, "application/x-npy") == 0 || strcmp(mt, "application/octet-stream") == 0) {
        vmf_array a;
        memset(&a, 0, sizeof a);
        if (vmf_npy_read_mem(body, len, &a) != VMF_OK)
            return fail(e, 400, "bad_npy", "%s", vmf_last_error());
        int rc = array_rows(&a, 1, x, n, d, e);
        vmf_array_free(&a);
        if (rc != 0)
            return -1;
    } else if (strcmp(mt, "application/json") == 0) {
        json_t *root = parse_json(body, len, e);
        if (!root)
            return -1;
        int rc = json_rows(json_object_get(root, "embeddings"), x, n, d, e);
        json_t *tk = json_object_get(root, "top_k");
        if (rc == 0 && tk) {
            if (!json_is_integer(tk) || json_integer_value(tk) < 1 ||
                json_integer_value(tk) > 1000000) {
                rc = fail(e, 422, "bad_top_k", "\"top_k\" must be a positive integer");
            } else {
                *top_k = (long)json_integer_value(tk);
            }
        }
        json_decref(root);
        if (rc != 0) {
            free(*x);
            *x = NULL;
            return -1;
        }
    } else {
        return fail(e, 415, "unsupported_media_type",
                    "send application/x-npy or application/json, not '%s'", mt);
    }
    if (normalize(*x, *n, *d, e) != 0) {
        free(*x);
        *x = NULL;
        return -1;
    }
    return 0;
}

char *vmfd_batch_labels_json(const vmfd_batch *b)
{
    if (b->label_kind == VMFD_LABELS_NONE)
        return NULL;
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < b->n; i++) {
        json_t *v = b->label_kind == VMFD_LABELS_INT ? json_integer((json_int_t)b->ints[i])
                                                     : json_string(b->strs[i]);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

int vmfd_batch_from_store(const void *rows, size_t n, size_t d, const char *labels_json,
                          vmfd_batch *out, char *err, size_t errsize)
{
    vmfd_payload_error e;
    memset(out, 0, sizeof *out);
    out->n = n;
    out->d = d;
    out->x = malloc(n * d * sizeof *out->x);
    if (!out->x) {
        snprintf(err, errsize, "out of memory for %zu x %zu rows", n, d);
        return -1;
    }
    memcpy(out->x, rows, n * d * sizeof *out->x);
    if (labels_json) {
        json_error_t je;
        json_t *a = json_loads(labels_json, 0, &je);
        int rc = a ? json_labels(a, out, &e) : fail(&e, 500, "bad_store", "%s", je.text);
        json_decref(a);
        if (rc != 0) {
            snprintf(err, errsize, "stored labels: %s", e.detail);
            vmfd_batch_free(out);
            return -1;
        }
    }
    return 0; /* the hash is in the store already; callers that want it call vmfd_batch_hash */
}
