/*
 * csv.c - CSV of floats for interoperability: a strict reader (every field must
 * be a complete, finite number; every row the same width) and a writer whose
 * numbers parse back to the same bits.
 *
 * Accepted: an optional UTF-8 byte-order mark; '\n' or "\r\n" line ends; blank
 * lines and lines whose first non-blank character is '#' anywhere; one header
 * line of non-numeric fields, when it is the first line with content, whose
 * field count then fixes the row width; spaces or tabs around fields. Numbers
 * are parsed with strtod, so they follow the C locale unless the program has
 * called setlocale. Refused, with the line and field: empty fields, text that
 * is not entirely a number, NaN and infinities, values beyond float32, rows of
 * a different width, NUL bytes, a file without data rows, and a path that is
 * not a regular file (a directory, a device).
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CSV_BLOCK 65536

/* ---- line reader over a FILE or a memory buffer ---- */

typedef struct lines {
    FILE *fp;                 /* or NULL for memory */
    const unsigned char *mem; /* remaining memory input */
    size_t mem_left;
    char *buf;
    size_t cap, start, end;
    int eof;
    const char *what;
} lines;

/* Appends more input after buf[end]; sets eof when there is none. */
static int fill(lines *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < CSV_BLOCK / 2) {
        size_t cap = r->cap ? r->cap * 2 : CSV_BLOCK;
        if (cap > VMF_IO_MAX_BYTES || cap < r->cap)
            return vmf__fail(VMF_EFORMAT, r->what, "a line is longer than the %llu-byte limit",
                             (unsigned long long)VMF_IO_MAX_BYTES);
        char *b = vmf__realloc(r->buf, cap);
        if (!b)
            return vmf__fail(VMF_ENOMEM, r->what, "out of memory for a %zu-byte line buffer", cap);
        r->buf = b;
        r->cap = cap;
    }
    size_t room = r->cap - r->end - 1, got; /* one byte kept for the final NUL */
    if (r->fp) {
        got = fread(r->buf + r->end, 1, room, r->fp);
        if (got < room && ferror(r->fp))
            return vmf__fail(VMF_EIO, r->what, "read failed: %s", strerror(errno));
    } else {
        got = r->mem_left < room ? r->mem_left : room;
        memcpy(r->buf + r->end, r->mem, got);
        r->mem += got;
        r->mem_left -= got;
    }
    r->end += got;
    if (got == 0)
        r->eof = 1;
    return VMF_OK;
}

/* Next line without its terminator, NUL-terminated in place: 1, 0 at the end, or an error. */
static int next_line(lines *r, char **line, size_t *len)
{
    size_t scanned = 0;
    for (;;) {
        char *nl = r->end > r->start + scanned
                       ? memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned)
                       : NULL;
        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - *line);
            *nl = '\0';
            r->start += *len + 1;
            return 1;
        }
        if (r->eof) {
            if (r->start == r->end)
                return 0;
            *line = r->buf + r->start;
            *len = r->end - r->start;
            r->buf[r->end] = '\0';
            r->start = r->end;
            return 1;
        }
        scanned = r->end - r->start;
        int rc = fill(r);
        if (rc != VMF_OK)
            return rc;
    }
}

/* ---- parsing ---- */

static char *trim(char *s, char **end)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    *end = e;
    return s;
}

/* Splits line into fields in place (at most cap pointers); returns the count. */
static size_t split(char *line, char **fields, size_t cap)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (n < cap)
            fields[n] = p;
        n++;
        if (!comma)
            return n;
        p = comma + 1;
    }
}

/* Parses a whole field as a finite float32: 1 when numeric, 0 when it is not a
 * number at all, or an error (empty, NaN/Inf, out of range). */
static int parse_number(char *field, float *v, const char *what, size_t lineno, size_t col)
{
    char *end, *s = trim(field, &end);
    if (s == end)
        return vmf__fail(VMF_EFORMAT, what, "line %zu, field %zu is empty", lineno, col);
    char *stop;
    errno = 0;
    double x = strtod(s, &stop);
    if (stop != end || stop == s)
        return 0;
    char shown[48];
    snprintf(shown, sizeof shown, "%.40s", s);
    if (!isfinite(x) && errno != ERANGE)
        return vmf__fail(VMF_EFORMAT, what, "line %zu, field %zu: '%s' is not a finite number",
                         lineno, col, shown);
    float f = (float)x;
    if (isinf(f) || (errno == ERANGE && fabs(x) > 1.0))
        return vmf__fail(VMF_ERANGE, what, "line %zu, field %zu: %s is outside the float32 range",
                         lineno, col, shown);
    *v = f; /* an underflow rounds to zero or a subnormal, as intended */
    return 1;
}

/*
 * Columns kept as text (vmf_csv_read_columns): spec is a header name or a
 * 1-based index (NULL: none); col the resolved 0-based index; vals the
 * strings of the data rows.
 */
typedef struct text_col {
    const char *spec;
    size_t col;
    char **vals;
} text_col;

/* Resolves a text column from the header fields (or NULL when there is none). */
static int resolve_col(text_col *t, char **fields, size_t nf, const char *what, size_t lineno)
{
    if (!t->spec)
        return VMF_OK;
    if (fields) {
        for (size_t j = 0; j < nf; j++) {
            char *e, *s = trim(fields[j], &e);
            if (strcmp(s, t->spec) == 0) {
                t->col = j;
                return VMF_OK;
            }
        }
    }
    char *stop;
    errno = 0;
    unsigned long long v = strtoull(t->spec, &stop, 10);
    if (t->spec[0] >= '0' && t->spec[0] <= '9' && *stop == '\0' && errno == 0 && v >= 1 &&
        v <= nf) {
        t->col = (size_t)v - 1;
        return VMF_OK;
    }
    if (!fields)
        return vmf__fail(VMF_EFORMAT, what,
                         "column '%.40s' is not a 1-based index within the %zu fields of line %zu "
                         "and there is no header line to find it by name",
                         t->spec, nf, lineno);
    return vmf__fail(VMF_EFORMAT, what, "the header (line %zu) has no column '%.40s'", lineno,
                     t->spec);
}

static int csv_parse(lines *r, text_col *tc, size_t ntc, vmf_array *out)
{
    const char *what = r->what;
    float *data = NULL;
    size_t n = 0, cap = 0, d = 0, width_line = 0, lineno = 0, header_line = 0, dx = 0;
    int resolved = ntc == 0;
    char **fields = NULL;
    size_t fcap = 0;
    int rc = VMF_OK;

    for (;;) {
        char *line = NULL;
        size_t len = 0;
        int got = next_line(r, &line, &len);
        if (got < 0) {
            rc = got;
            goto fail;
        }
        if (got == 0)
            break;
        lineno++;
        if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
            line += 3;
            len -= 3;
        }
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (memchr(line, '\0', len)) {
            rc = vmf__fail(VMF_EFORMAT, what, "line %zu contains a NUL byte (not a text file)",
                           lineno);
            goto fail;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;

        size_t nf = 1;
        for (const char *c = memchr(line, ',', len); c;
             c = memchr(c + 1, ',', len - (size_t)(c + 1 - line)))
            nf++;
        if (nf > fcap) {
            char **f = vmf__realloc(fields, nf * sizeof *f);
            if (!f) {
                rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %zu fields", nf);
                goto fail;
            }
            fields = f;
            fcap = nf;
        }
        split(line, fields, fcap);
        if (d != 0 && nf != d) {
            rc =
                vmf__fail(VMF_EFORMAT, what, "line %zu has %zu fields, expected %zu as on line %zu",
                          lineno, nf, d, width_line);
            goto fail;
        }
        if (d == 0) {
            d = nf;
            width_line = lineno;
        }
        if (n == 0 && header_line == 0) {
            /* The first line with content may be a header: no field numeric. */
            size_t numeric = 0;
            for (size_t j = 0; j < nf; j++) {
                char *e, *s = trim(fields[j], &e);
                char *stop;
                if (s != e) {
                    (void)strtod(s, &stop);
                    if (stop == e)
                        numeric++;
                }
            }
            /* With text columns, a line naming one of them is the header too. */
            for (size_t t = 0; t < ntc && numeric > 0; t++) {
                for (size_t j = 0; tc[t].spec && j < nf; j++) {
                    char *e, *sv = trim(fields[j], &e);
                    if (strcmp(sv, tc[t].spec) == 0) {
                        char *stop;
                        (void)strtod(sv, &stop);
                        if (stop != e) /* a name, not a number */
                            numeric = 0;
                    }
                }
            }
            if (numeric == 0) {
                header_line = lineno;
                for (size_t t = 0; t < ntc && rc == VMF_OK; t++)
                    rc = resolve_col(&tc[t], fields, nf, what, lineno);
                if (rc != VMF_OK)
                    goto fail;
                resolved = 1;
                continue;
            }
        }
        if (!resolved) {
            for (size_t t = 0; t < ntc && rc == VMF_OK; t++)
                rc = resolve_col(&tc[t], NULL, nf, what, lineno);
            if (rc != VMF_OK)
                goto fail;
            resolved = 1;
        }
        if (dx == 0) {
            dx = d;
            for (size_t t = 0; t < ntc; t++)
                if (tc[t].spec)
                    dx--;
            if (dx == 0) {
                rc = vmf__fail(VMF_EFORMAT, what, "line %zu has no numeric column left", lineno);
                goto fail;
            }
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024, bytes;
            if (vmf__mul_overflow(ncap, dx * sizeof(float), &bytes) != 0 ||
                bytes > VMF_IO_MAX_BYTES) {
                if (vmf__mul_overflow(n + 1, dx * sizeof(float), &bytes) != 0 ||
                    bytes > VMF_IO_MAX_BYTES) {
                    rc = vmf__fail(
                        VMF_EFORMAT, what,
                        "more data than the %llu-byte limit (VMF_IO_MAX_BYTES) at line %zu",
                        (unsigned long long)VMF_IO_MAX_BYTES, lineno);
                    goto fail;
                }
                ncap = VMF_IO_MAX_BYTES / (dx * sizeof(float));
                bytes = ncap * dx * sizeof(float);
            }
            float *nd = vmf__realloc(data, bytes);
            if (!nd) {
                rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %zu rows", ncap);
                goto fail;
            }
            data = nd;
            for (size_t t = 0; t < ntc; t++) {
                if (!tc[t].spec)
                    continue;
                char **v = vmf__realloc(tc[t].vals, ncap * sizeof *v);
                if (!v) {
                    rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %zu rows", ncap);
                    goto fail;
                }
                tc[t].vals = v;
            }
            cap = ncap;
        }
        for (size_t t = 0; t < ntc; t++)
            if (tc[t].spec)
                tc[t].vals[n] = NULL;
        size_t jx = 0;
        for (size_t j = 0; j < nf; j++) {
            int text = 0;
            for (size_t t = 0; t < ntc; t++) {
                if (!tc[t].spec || tc[t].col != j)
                    continue;
                char *e, *sv = trim(fields[j], &e);
                char *copy = vmf__malloc((size_t)(e - sv) + 1);
                if (!copy) {
                    rc = vmf__fail(VMF_ENOMEM, what, "out of memory at line %zu", lineno);
                    goto fail;
                }
                memcpy(copy, sv, (size_t)(e - sv) + 1);
                tc[t].vals[n] = copy;
                text = 1;
            }
            if (text)
                continue;
            int ok = parse_number(fields[j], &data[n * dx + jx], what, lineno, j + 1);
            jx++;
            if (ok < 0) {
                rc = ok;
                goto fail;
            }
            if (ok == 0) {
                char *e, *s = trim(fields[j], &e);
                rc = vmf__fail(VMF_EFORMAT, what, "line %zu, field %zu: '%.40s' is not a number",
                               lineno, j + 1, s);
                goto fail;
            }
        }
        n++;
    }
    if (n == 0) {
        rc = header_line
                 ? vmf__fail(VMF_EFORMAT, what, "has a header (line %zu) but no data rows",
                             header_line)
                 : vmf__fail(VMF_EFORMAT, what, "has no data rows%s",
                             lineno == 0 ? " (empty file)" : ", only comments and blank lines");
        goto fail;
    }
    if (n < cap) {
        float *shrunk = vmf__realloc(data, n * dx * sizeof(float));
        if (shrunk)
            data = shrunk;
    }
    vmf__free(fields);
    memset(out, 0, sizeof *out);
    out->dtype = VMF_DTYPE_F32;
    out->ndim = 2;
    out->shape[0] = n;
    out->shape[1] = dx;
    out->count = n * dx;
    out->data = data;
    return VMF_OK;

fail:
    vmf__free(fields);
    vmf__free(data);
    for (size_t t = 0; t < ntc; t++) {
        /* Strings of rows before the failing one (row n may hold some too). */
        for (size_t i = 0; tc[t].vals && i <= n && i < cap; i++)
            vmf__free(tc[t].vals[i]);
        vmf__free(tc[t].vals);
        tc[t].vals = NULL;
    }
    return rc;
}

int vmf_csv_read(const char *path, vmf_array *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_csv_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_csv_read: path is NULL");
    FILE *fp;
    uint64_t size;
    int rc = vmf__open_regular(path, &fp, &size);
    if (rc != VMF_OK)
        return rc;
    lines r = {0};
    r.fp = fp;
    r.what = path;
    rc = csv_parse(&r, NULL, 0, out);
    vmf__free(r.buf);
    fclose(fp);
    return rc;
}

void vmf_csv_opts_init(vmf_csv_opts *o)
{
    memset(o, 0, sizeof *o);
}

/* A 1-D string array taking over vals [n]. */
static void string_array(vmf_array *a, char **vals, size_t n)
{
    memset(a, 0, sizeof *a);
    a->dtype = VMF_DTYPE_STR;
    a->ndim = 1;
    a->shape[0] = n;
    a->count = n;
    a->data = vals;
}

int vmf_csv_read_columns(const char *path, const vmf_csv_opts *o, vmf_array *x, vmf_array *ids,
                         vmf_array *labels)
{
    if (!x)
        return vmf__error(VMF_EINVAL, "vmf_csv_read_columns: x is NULL");
    VMF__OPTS_OR_DEFAULTS(vmf_csv_opts, o);
    memset(x, 0, sizeof *x);
    if (ids)
        memset(ids, 0, sizeof *ids);
    if (labels)
        memset(labels, 0, sizeof *labels);
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_csv_read_columns: path is NULL");
    if (o->id_column && o->label_column && strcmp(o->id_column, o->label_column) == 0)
        return vmf__error(VMF_EINVAL,
                          "vmf_csv_read_columns: the id and label columns are both "
                          "'%.40s'",
                          o->id_column);
    FILE *fp;
    uint64_t size;
    int rc = vmf__open_regular(path, &fp, &size);
    if (rc != VMF_OK)
        return rc;
    lines r = {0};
    r.fp = fp;
    r.what = path;
    text_col tc[2] = {{o->id_column, 0, NULL}, {o->label_column, 0, NULL}};
    rc = csv_parse(&r, tc, 2, x);
    vmf__free(r.buf);
    fclose(fp);
    if (rc != VMF_OK)
        return rc;
    size_t n = x->shape[0];
    vmf_array tmp;
    for (int t = 0; t < 2; t++) {
        if (!tc[t].vals)
            continue;
        string_array(&tmp, tc[t].vals, n);
        vmf_array *dst = t == 0 ? ids : labels;
        if (dst)
            *dst = tmp;
        else
            vmf_array_free(&tmp);
    }
    return VMF_OK;
}

int vmf_csv_read_mem(const void *buf, size_t len, vmf_array *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_csv_read_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return vmf__error(VMF_EINVAL, "vmf_csv_read_mem: buf is NULL");
    lines r = {0};
    r.mem = buf;
    r.mem_left = len;
    r.what = "CSV data";
    int rc = csv_parse(&r, NULL, 0, out);
    vmf__free(r.buf);
    return rc;
}

/* ---- writing ---- */

static int write_value(FILE *fp, const vmf_array *a, size_t i, const char *what, size_t row)
{
    int r;
    switch (a->dtype) {
    case VMF_DTYPE_F32: {
        float v = ((const float *)a->data)[i];
        if (!isfinite(v))
            return vmf__fail(VMF_EINVAL, what, "row %zu holds %s, which CSV readers reject", row,
                             isnan(v) ? "NaN" : "an infinity");
        r = fprintf(fp, "%.9g", (double)v);
        break;
    }
    case VMF_DTYPE_F64: {
        double v = ((const double *)a->data)[i];
        if (!isfinite(v))
            return vmf__fail(VMF_EINVAL, what, "row %zu holds %s, which CSV readers reject", row,
                             isnan(v) ? "NaN" : "an infinity");
        r = fprintf(fp, "%.17g", v);
        break;
    }
    case VMF_DTYPE_I16:
        r = fprintf(fp, "%d", (int)((const int16_t *)a->data)[i]);
        break;
    case VMF_DTYPE_I32:
        r = fprintf(fp, "%ld", (long)((const int32_t *)a->data)[i]);
        break;
    case VMF_DTYPE_I64:
        r = fprintf(fp, "%lld", (long long)((const int64_t *)a->data)[i]);
        break;
    case VMF_DTYPE_U8:
        r = fprintf(fp, "%u", (unsigned)((const uint8_t *)a->data)[i]);
        break;
    default:
        return vmf__fail(VMF_EINVAL, what, "only numeric arrays can be written as CSV");
    }
    if (r < 0)
        return vmf__fail(VMF_EIO, what, "write failed: %s", strerror(errno));
    return VMF_OK;
}

int vmf_csv_write(const char *path, const vmf_array *a)
{
    if (!path || !a)
        return vmf__error(VMF_EINVAL, "vmf_csv_write: path or array is NULL");
    if (a->dtype == VMF_DTYPE_STR || (unsigned)a->dtype > VMF_DTYPE_STR)
        return vmf__fail(VMF_EINVAL, path, "only numeric arrays can be written as CSV");
    if (a->ndim != 1 && a->ndim != 2)
        return vmf__fail(VMF_EINVAL, path,
                         "CSV holds 1-D or 2-D arrays, this one has %zu dimensions", a->ndim);
    size_t rows = a->shape[0], cols = a->ndim == 2 ? a->shape[1] : 1, count;
    if (vmf__mul_overflow(rows, cols, &count) != 0 || count != a->count)
        return vmf__fail(VMF_EINVAL, path, "count %zu disagrees with the shape", a->count);
    if (count > 0 && !a->data)
        return vmf__fail(VMF_EINVAL, path, "array data is NULL");
    if (a->ndim == 2 && cols == 0 && rows > 0)
        return vmf__fail(VMF_EINVAL, path, "rows of zero columns cannot be written as CSV");
    FILE *fp;
    char *tmp;
    int rc = vmf__atomic_open(path, &fp, &tmp);
    if (rc != VMF_OK)
        return rc;
    for (size_t i = 0; i < rows && rc == VMF_OK; i++) {
        for (size_t j = 0; j < cols && rc == VMF_OK; j++) {
            if (j > 0 && fputc(',', fp) == EOF)
                rc = vmf__fail(VMF_EIO, path, "write failed: %s", strerror(errno));
            if (rc == VMF_OK)
                rc = write_value(fp, a, i * cols + j, path, i);
        }
        if (rc == VMF_OK && fputc('\n', fp) == EOF)
            rc = vmf__fail(VMF_EIO, path, "write failed: %s", strerror(errno));
    }
    if (rc != VMF_OK) {
        vmf__atomic_abort(fp, tmp);
        return rc;
    }
    return vmf__atomic_commit(fp, tmp, path);
}
