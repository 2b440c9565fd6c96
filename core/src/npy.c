/*
 * npy.c - reading the NumPy .npy format (versions 1.0, 2.0 and 3.0): a reader
 * that trusts nothing in the file. The writer is npy_write.c.
 *
 * Format (numpy/doc/neps/nep-0001): the magic "\x93NUMPY", a major and a minor
 * version byte, the header length (uint16 LE in 1.0, uint32 LE in 2.0 and 3.0),
 * then the header: a Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a final '\n', ASCII in 1.0/2.0 (latin-1 in theory) and
 * UTF-8 in 3.0; then the raw elements.
 *
 * Design: the reader pulls bytes through a callback (a FILE, a memory buffer or
 * a zip member all look alike) whose total length is known in advance, so every
 * size in the header is checked against the bytes actually present before any
 * allocation: a header claiming 10^9 rows in a 200-byte file fails at once.
 * Numeric data is read straight into the array, with no staging copy. The
 * header is parsed by a small recursive-descent parser of the dict literal, not
 * by pattern matching, so key order, spacing and trailing commas do not matter.
 *
 * The code assumes a little-endian host (checked at compile time), which every
 * platform Debian ships vmfmm on is.
 */
#include "internal.h"
#include "npy_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* numpy itself refuses headers over 10000 bytes unless told otherwise; a valid
 * header of this library's dtypes and at most 8 dimensions is under 300. */
#define NPY_MAX_HEADER ((uint32_t)1 << 20)

/* ---- messages ---- */

/* Copies up to n bytes of s into buf (cap bytes) printable: other bytes as \xNN. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            snprintf(buf + o, cap - o, "\\x%02x", c);
            o += 4;
        }
    }
    buf[o] = '\0';
    return buf;
}

const char *vmf__npy_shape_str(const size_t *shape, size_t ndim, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "(");
    for (size_t i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, i ? ", %zu" : "%zu", shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, ndim == 1 ? ",)" : ")");
    return buf;
}

/* ---- dtypes ---- */

typedef struct npy_header {
    vmf_dtype dtype;
    size_t width; /* code points per element for VMF_DTYPE_STR */
    size_t esize; /* bytes per element in the file */
    int half;     /* '<f2': IEEE binary16 in the file, widened to float32 on reading */
    int fortran;
    size_t ndim;
    size_t shape[VMF_IO_MAX_NDIM];
    char descr[48]; /* as written, for messages */
} npy_header;

static const char *const supported = "<f2 <f4 <f8 <i2 <i4 <i8 |u1 <U";

/*
 * IEEE 754 binary16 to float, exactly (every half is a float): normal
 * numbers rebias the exponent, subnormals are m 2^-24, Inf and NaN keep
 * their class (NaN rows are then refused like any NaN input).
 */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31)
        bits = sign | 0x7f800000u | (m << 13);
    else
        bits = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Decodes a descr string such as "<f4" or "<U12" into h. */
static int parse_descr(const char *what, const char *d, npy_header *h)
{
    char pr[64];
    printable(d, strlen(d), pr, sizeof pr);
    char order = '=';
    const char *t = d;
    if (*t == '<' || *t == '>' || *t == '|' || *t == '=')
        order = *t++;
    if (*t == 'O')
        return vmf__fail(VMF_EFORMAT, what,
                         "dtype '%s' is an object array (pickled Python objects), which is not "
                         "supported; save a numeric or string array",
                         pr);
    if (*t == 'U') {
        const char *p = t + 1;
        uint64_t w = 0;
        if (*p < '0' || *p > '9')
            return vmf__fail(VMF_EFORMAT, what, "string dtype '%s' has no width", pr);
        for (; *p >= '0' && *p <= '9'; p++) {
            w = w * 10 + (uint64_t)(*p - '0');
            if (w > (uint64_t)1 << 32)
                return vmf__fail(VMF_EFORMAT, what, "string dtype '%s' is too wide", pr);
        }
        if (*p != '\0')
            return vmf__fail(VMF_EFORMAT, what, "unsupported dtype '%s' (supported: %s)", pr,
                             supported);
        if (order == '>')
            return vmf__fail(VMF_EFORMAT, what,
                             "dtype '%s' is big-endian, which is not supported; save it as '<U' "
                             "(arr.astype(arr.dtype.newbyteorder('<')))",
                             pr);
        if (w == 0)
            return vmf__fail(VMF_EFORMAT, what, "string dtype '%s' has width 0", pr);
        h->dtype = VMF_DTYPE_STR;
        h->width = (size_t)w;
        h->esize = (size_t)w * 4;
        return VMF_OK;
    }
    static const struct {
        const char *code;
        vmf_dtype dtype;
        size_t size;
    } codes[] = {{"f2", VMF_DTYPE_F32, 2}, {"f4", VMF_DTYPE_F32, 4}, {"f8", VMF_DTYPE_F64, 8},
                 {"i2", VMF_DTYPE_I16, 2}, {"i4", VMF_DTYPE_I32, 4}, {"i8", VMF_DTYPE_I64, 8},
                 {"u1", VMF_DTYPE_U8, 1}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(t, codes[i].code) != 0)
            continue;
        if (order == '>' && codes[i].size > 1)
            return vmf__fail(VMF_EFORMAT, what,
                             "dtype '%s' is big-endian, which is not supported; save it "
                             "little-endian (arr.astype('<%s'))",
                             pr, codes[i].code);
        h->dtype = codes[i].dtype;
        h->esize = codes[i].size;
        h->half = strcmp(codes[i].code, "f2") == 0;
        return VMF_OK;
    }
    return vmf__fail(VMF_EFORMAT, what, "unsupported dtype '%s' (supported: %s)", pr, supported);
}

/* ---- the header dict parser ---- */

typedef struct parser {
    const char *s;
    size_t len;
    size_t pos;
    const char *what;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perr(parser *p, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vmf__error(VMF_EFORMAT, "%s: header is not a valid dict literal: %s at offset %zu",
                      p->what, msg, p->pos);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(parser *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

/* A quoted Python string without escapes into buf (cap bytes incl. NUL). */
static int parse_string(parser *p, char *buf, size_t cap)
{
    int q = peek(p);
    if (q != '\'' && q != '"')
        return perr(p, "expected a quoted string");
    size_t start = ++p->pos, n = 0;
    while (p->pos < p->len && p->s[p->pos] != (char)q) {
        if (p->s[p->pos] == '\\')
            return perr(p, "escape sequences in strings are not supported");
        if (p->s[p->pos] == '\n')
            break; /* the header's final newline: reported as unterminated */
        if ((unsigned char)p->s[p->pos] < 0x20)
            return perr(p, "control character 0x%02x in a string", (unsigned char)p->s[p->pos]);
        p->pos++;
    }
    if (p->pos >= p->len || p->s[p->pos] != (char)q) {
        p->pos = start - 1;
        return perr(p, "unterminated string");
    }
    n = p->pos - start;
    if (n + 1 > cap) {
        p->pos = start - 1;
        return perr(p, "string of %zu bytes is too long", n);
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    p->pos++;
    return VMF_OK;
}

static int parse_bool(parser *p, int *v)
{
    if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "True", 4) == 0) {
        p->pos += 4;
        *v = 1;
    } else if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "False", 5) == 0) {
        p->pos += 5;
        *v = 0;
    } else {
        return perr(p, "expected True or False");
    }
    int c = peek(p);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
        return perr(p, "expected True or False");
    return VMF_OK;
}

/* "(2, 3)", "(3,)", "()"; non-negative decimal integers, an old 'L' suffix allowed. */
static int parse_shape(parser *p, npy_header *h)
{
    if (peek(p) != '(')
        return perr(p, "expected a tuple for 'shape'");
    p->pos++;
    size_t n = 0;
    int comma_after_last = 0;
    for (;;) {
        skip_ws(p);
        int c = peek(p);
        if (c == ')') {
            p->pos++;
            break;
        }
        if (n > 0 && !comma_after_last)
            return perr(p, "expected ',' or ')' in the shape tuple");
        if (c == '-')
            return vmf__fail(VMF_EFORMAT, p->what, "shape has a negative dimension");
        if (c < '0' || c > '9')
            return perr(p, "expected a non-negative integer in the shape tuple");
        uint64_t v = 0;
        while ((c = peek(p)) >= '0' && c <= '9') {
            if (v > (UINT64_MAX - 9) / 10 || v * 10 + (uint64_t)(c - '0') > (uint64_t)SIZE_MAX)
                return vmf__fail(VMF_EFORMAT, p->what,
                                 "shape has a dimension too large to represent");
            v = v * 10 + (uint64_t)(c - '0');
            p->pos++;
        }
        if (c == 'L' || c == 'l')
            p->pos++;
        if (n == VMF_IO_MAX_NDIM)
            return vmf__fail(VMF_EFORMAT, p->what, "array has more than %d dimensions",
                             VMF_IO_MAX_NDIM);
        h->shape[n++] = (size_t)v;
        skip_ws(p);
        comma_after_last = 0;
        if (peek(p) == ',') {
            p->pos++;
            comma_after_last = 1;
        }
    }
    if (n == 1 && !comma_after_last)
        return perr(p, "'shape' is not a tuple (a 1-tuple needs a trailing comma)");
    h->ndim = n;
    return VMF_OK;
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

static int parse_dict(parser *p, npy_header *h)
{
    unsigned seen = 0;
    int rc;
    skip_ws(p);
    if (peek(p) != '{')
        return perr(p, "expected '{'");
    p->pos++;
    for (;;) {
        skip_ws(p);
        if (peek(p) == '}') {
            p->pos++;
            break;
        }
        char key[32];
        size_t key_pos = p->pos;
        if ((rc = parse_string(p, key, sizeof key)) != VMF_OK)
            return rc;
        skip_ws(p);
        if (peek(p) != ':')
            return perr(p, "expected ':' after the key '%s'", key);
        p->pos++;
        skip_ws(p);
        unsigned bit;
        if (strcmp(key, "descr") == 0) {
            bit = KEY_DESCR;
            int c = peek(p);
            if (c == '[' || c == '{' || c == '(')
                return vmf__fail(VMF_EFORMAT, p->what,
                                 "structured dtype (a record of named fields) is not supported; "
                                 "save each field as its own array");
            if ((rc = parse_string(p, h->descr, sizeof h->descr)) != VMF_OK)
                return rc;
        } else if (strcmp(key, "fortran_order") == 0) {
            bit = KEY_FORTRAN;
            if ((rc = parse_bool(p, &h->fortran)) != VMF_OK)
                return rc;
        } else if (strcmp(key, "shape") == 0) {
            bit = KEY_SHAPE;
            if ((rc = parse_shape(p, h)) != VMF_OK)
                return rc;
        } else {
            char pr[64];
            p->pos = key_pos;
            return perr(p, "unknown key '%s'", printable(key, strlen(key), pr, sizeof pr));
        }
        if (seen & bit) {
            p->pos = key_pos;
            return perr(p, "duplicate key '%s'", key);
        }
        seen |= bit;
        skip_ws(p);
        if (peek(p) == ',') {
            p->pos++;
            continue;
        }
        if (peek(p) != '}')
            return perr(p, "expected ',' or '}'");
    }
    skip_ws(p);
    if (p->pos != p->len)
        return perr(p, "unexpected text after the closing '}'");
    static const struct {
        unsigned bit;
        const char *name;
    } keys[] = {{KEY_DESCR, "descr"}, {KEY_FORTRAN, "fortran_order"}, {KEY_SHAPE, "shape"}};
    for (size_t i = 0; i < 3; i++)
        if (!(seen & keys[i].bit))
            return vmf__fail(VMF_EFORMAT, p->what, "header has no '%s' key", keys[i].name);
    return parse_descr(p->what, h->descr, h);
}

int vmf__npy_utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            *bad = i;
            return 0;
        }
        if (n - i <= k) {
            *bad = i;
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                *bad = i;
                return 0;
            }
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            *bad = i;
            return 0;
        }
        i += k + 1;
    }
    return 1;
}

/* ---- reading ---- */

static uint32_t read_le(const unsigned char *b, size_t n)
{
    uint32_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = (v << 8) | b[i];
    return v;
}

/* UTF-32LE elements of `width` code points -> newly allocated UTF-8 strings. */
static int convert_strings(const unsigned char *src, size_t nel, size_t width, char **dst,
                           size_t first, const char *what)
{
    for (size_t e = 0; e < nel; e++) {
        const unsigned char *u = src + e * width * 4;
        size_t len = width, bytes = 0;
        while (len > 0 && u[(len - 1) * 4] == 0 && u[(len - 1) * 4 + 1] == 0 &&
               u[(len - 1) * 4 + 2] == 0 && u[(len - 1) * 4 + 3] == 0)
            len--;
        for (size_t i = 0; i < len; i++) {
            uint32_t cp = (uint32_t)u[4 * i] | (uint32_t)u[4 * i + 1] << 8 |
                          (uint32_t)u[4 * i + 2] << 16 | (uint32_t)u[4 * i + 3] << 24;
            if (cp == 0)
                return vmf__fail(VMF_EFORMAT, what,
                                 "string %zu has an embedded NUL at character %zu", first + e, i);
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return vmf__fail(VMF_EFORMAT, what,
                                 "string %zu has the invalid code point 0x%lx at character %zu",
                                 first + e, (unsigned long)cp, i);
            bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        }
        char *s = vmf__malloc(bytes + 1);
        if (!s)
            return vmf__fail(VMF_ENOMEM, what, "out of memory for string %zu", first + e);
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t cp = (uint32_t)u[4 * i] | (uint32_t)u[4 * i + 1] << 8 |
                          (uint32_t)u[4 * i + 2] << 16 | (uint32_t)u[4 * i + 3] << 24;
            if (cp < 0x80) {
                s[o++] = (char)cp;
            } else if (cp < 0x800) {
                s[o++] = (char)(0xc0 | (cp >> 6));
                s[o++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                s[o++] = (char)(0xe0 | (cp >> 12));
                s[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                s[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                s[o++] = (char)(0xf0 | (cp >> 18));
                s[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                s[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                s[o++] = (char)(0x80 | (cp & 0x3f));
            }
        }
        s[o] = '\0';
        dst[first + e] = s;
    }
    return VMF_OK;
}

/*
 * Reads and checks the header: on success h is filled, *count is the element
 * count, *bytes the data size (checked against the bytes present, but not
 * against VMF_IO_MAX_BYTES, which only bounds what is loaded into memory) and
 * *offset the position of the first data byte.
 */
static int read_header(vmf__read_fn read, void *ctx, uint64_t total, const char *what,
                       npy_header *h_out, size_t *count_out, uint64_t *bytes_out,
                       uint64_t *offset_out)
{
    unsigned char pre[12];
    char *hdr = NULL;
    npy_header h;
    int rc;

    memset(&h, 0, sizeof h);
    if (total < NPY_MAGIC_LEN + 2) {
        size_t n = (size_t)total;
        if ((rc = read(ctx, pre, n)) != VMF_OK)
            return rc;
        if (memcmp(pre, NPY_MAGIC, n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN) != 0)
            return vmf__fail(VMF_EFORMAT, what, "not an .npy file (bad magic)");
        return vmf__fail(VMF_EFORMAT, what, "only %zu bytes, too short for an .npy header", n);
    }
    if ((rc = read(ctx, pre, NPY_MAGIC_LEN + 2)) != VMF_OK)
        return rc;
    if (memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return vmf__fail(VMF_EFORMAT, what, "not an .npy file (bad magic)");
    unsigned major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return vmf__fail(VMF_EFORMAT, what,
                         "unsupported .npy format version %u.%u (supported: 1.0, 2.0, 3.0)", major,
                         minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    size_t prefix = NPY_MAGIC_LEN + 2 + lenbytes;
    if (total < prefix)
        return vmf__fail(VMF_EFORMAT, what, "file ends inside the header length field");
    if ((rc = read(ctx, pre + 8, lenbytes)) != VMF_OK)
        return rc;
    uint32_t hlen = read_le(pre + 8, lenbytes);
    if (hlen > total - prefix)
        return vmf__fail(VMF_EFORMAT, what,
                         "header length %lu runs past the end of the data (%llu bytes in all)",
                         (unsigned long)hlen, (unsigned long long)total);
    if (hlen > NPY_MAX_HEADER)
        return vmf__fail(VMF_EFORMAT, what, "header length %lu exceeds the %lu-byte limit",
                         (unsigned long)hlen, (unsigned long)NPY_MAX_HEADER);
    hdr = vmf__malloc((size_t)hlen + 1);
    if (!hdr)
        return vmf__fail(VMF_ENOMEM, what, "out of memory for the header");
    if ((rc = read(ctx, hdr, hlen)) != VMF_OK)
        goto fail;
    hdr[hlen] = '\0';

    if (major < 3) {
        for (size_t i = 0; i < hlen; i++) {
            if ((unsigned char)hdr[i] >= 0x80) {
                rc = vmf__fail(VMF_EFORMAT, what,
                               "header byte 0x%02x at offset %zu is not ASCII (only version 3.0 "
                               "headers may hold UTF-8)",
                               (unsigned char)hdr[i], i);
                goto fail;
            }
        }
    } else {
        size_t bad;
        if (!vmf__npy_utf8_valid((const unsigned char *)hdr, hlen, &bad)) {
            rc = vmf__fail(VMF_EFORMAT, what, "version 3.0 header is not valid UTF-8 (offset %zu)",
                           bad);
            goto fail;
        }
    }
    parser p = {hdr, hlen, 0, what};
    if ((rc = parse_dict(&p, &h)) != VMF_OK)
        goto fail;
    vmf__free(hdr);
    hdr = NULL;

    char sh[200];
    vmf__npy_shape_str(h.shape, h.ndim, sh, sizeof sh);
    size_t count = 1, longer = 0;
    for (size_t i = 0; i < h.ndim; i++) {
        if (vmf__mul_overflow(count, h.shape[i], &count) != 0)
            return vmf__fail(VMF_EFORMAT, what, "shape %s has more elements than can be addressed",
                             sh);
        if (h.shape[i] > 1)
            longer++;
    }
    if (h.fortran && longer > 1)
        return vmf__fail(
            VMF_EFORMAT, what,
            "array of shape %s is in Fortran order, which is not supported; save it in "
            "C order (np.ascontiguousarray)",
            sh);
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)count, (uint64_t)h.esize, &bytes))
        return vmf__fail(VMF_EFORMAT, what, "shape %s of %s has more bytes than can be addressed",
                         sh, h.descr);
    uint64_t avail = total - prefix - hlen;
    if (bytes > avail)
        return vmf__fail(VMF_EFORMAT, what,
                         "shape %s of %s needs %llu data bytes but only %llu follow the header "
                         "(truncated)",
                         sh, h.descr, (unsigned long long)bytes, (unsigned long long)avail);
    if (bytes < avail)
        return vmf__fail(VMF_EFORMAT, what,
                         "shape %s of %s needs %llu data bytes but %llu follow the header (%llu "
                         "trailing bytes)",
                         sh, h.descr, (unsigned long long)bytes, (unsigned long long)avail,
                         (unsigned long long)(avail - bytes));
    *h_out = h;
    *count_out = count;
    *bytes_out = bytes;
    *offset_out = prefix + hlen;
    return VMF_OK;

fail:
    vmf__free(hdr);
    return rc;
}

int vmf__npy_read_header(vmf__read_fn read, void *ctx, uint64_t total, const char *what,
                         vmf_dtype *dtype, size_t *ndim, size_t *shape, uint64_t *offset)
{
    npy_header h;
    size_t count;
    uint64_t bytes;
    int rc = read_header(read, ctx, total, what, &h, &count, &bytes, offset);
    if (rc != VMF_OK)
        return rc;
    *dtype = h.dtype;
    *ndim = h.ndim;
    memcpy(shape, h.shape, sizeof h.shape);
    return VMF_OK;
}

int vmf__npy_read_stream(vmf__read_fn read, void *ctx, uint64_t total, const char *what,
                         vmf_array *out)
{
    unsigned char *chunk = NULL;
    vmf_array a;
    npy_header h;
    size_t count;
    uint64_t bytes, offset;
    int rc;

    memset(out, 0, sizeof *out);
    memset(&a, 0, sizeof a);
    rc = read_header(read, ctx, total, what, &h, &count, &bytes, &offset);
    if (rc != VMF_OK)
        return rc;
    if (bytes > VMF_IO_MAX_BYTES) {
        char sh[200];
        vmf__npy_shape_str(h.shape, h.ndim, sh, sizeof sh);
        return vmf__fail(VMF_EFORMAT, what,
                         "shape %s of %s needs %llu bytes, above the %llu-byte limit "
                         "(VMF_IO_MAX_BYTES)",
                         sh, h.descr, (unsigned long long)bytes,
                         (unsigned long long)VMF_IO_MAX_BYTES);
    }

    a.dtype = h.dtype;
    a.ndim = h.ndim;
    memcpy(a.shape, h.shape, sizeof a.shape);
    a.count = count;
    if (h.half) {
        /* Widened to float32: twice the file's bytes, under the same limit. */
        if (bytes > VMF_IO_MAX_BYTES / 2) {
            char sh[200];
            vmf__npy_shape_str(h.shape, h.ndim, sh, sizeof sh);
            return vmf__fail(VMF_EFORMAT, what,
                             "shape %s of %s needs %llu bytes as float32, above the %llu-byte "
                             "limit (VMF_IO_MAX_BYTES)",
                             sh, h.descr, (unsigned long long)bytes * 2,
                             (unsigned long long)VMF_IO_MAX_BYTES);
        }
        chunk = vmf__malloc(bytes > 0 ? (size_t)bytes : 1);
        a.data = vmf__malloc_array(count ? count : 1, sizeof(float));
        if (!chunk || !a.data) {
            rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %zu float16 values", count);
            goto fail;
        }
        if (bytes > 0 && (rc = read(ctx, chunk, (size_t)bytes)) != VMF_OK)
            goto fail;
        const unsigned char *src = (const unsigned char *)chunk;
        float *dst = a.data;
        for (size_t i = 0; i < count; i++)
            dst[i] = half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        vmf__free(chunk);
        chunk = NULL;
    } else if (h.dtype != VMF_DTYPE_STR) {
        a.data = vmf__malloc((size_t)bytes);
        if (!a.data) {
            rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %llu bytes of data",
                           (unsigned long long)bytes);
            goto fail;
        }
        if (bytes > 0 && (rc = read(ctx, a.data, (size_t)bytes)) != VMF_OK)
            goto fail;
    } else {
        a.data = vmf__calloc(count, sizeof(char *));
        if (!a.data) {
            rc = vmf__fail(VMF_ENOMEM, what, "out of memory for %zu strings", count);
            goto fail;
        }
        size_t per = h.esize >= NPY_STR_CHUNK ? 1 : NPY_STR_CHUNK / h.esize;
        if (per > count)
            per = count;
        if (count > 0) {
            chunk = vmf__malloc(per * h.esize);
            if (!chunk) {
                rc = vmf__fail(VMF_ENOMEM, what, "out of memory for strings of width %zu", h.width);
                goto fail;
            }
        }
        for (size_t done = 0; done < count; done += per) {
            size_t nel = count - done < per ? count - done : per;
            if ((rc = read(ctx, chunk, nel * h.esize)) != VMF_OK)
                goto fail;
            if ((rc = convert_strings(chunk, nel, h.width, a.data, done, what)) != VMF_OK)
                goto fail;
        }
        vmf__free(chunk);
        chunk = NULL;
    }
    *out = a;
    return VMF_OK;

fail:
    vmf__free(chunk);
    vmf_array_free(&a);
    return rc;
}

typedef struct file_src {
    FILE *fp;
    const char *what;
} file_src;

static int file_read(void *ctx, void *dst, size_t n)
{
    file_src *f = ctx;
    if (fread(dst, 1, n, f->fp) == n)
        return VMF_OK;
    if (ferror(f->fp))
        return vmf__fail(VMF_EIO, f->what, "read failed: %s", strerror(errno));
    return vmf__fail(VMF_EFORMAT, f->what, "file ended early (was it truncated while being read?)");
}

typedef struct mem_src {
    const unsigned char *p;
    size_t left;
    const char *what;
} mem_src;

static int mem_read(void *ctx, void *dst, size_t n)
{
    mem_src *m = ctx;
    if (n > m->left)
        return vmf__fail(VMF_EFORMAT, m->what, "data ended early");
    if (n > 0)
        memcpy(dst, m->p, n);
    m->p += n;
    m->left -= n;
    return VMF_OK;
}

int vmf_npy_read(const char *path, vmf_array *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_npy_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return vmf__error(VMF_EINVAL, "vmf_npy_read: path is NULL");
    FILE *fp;
    uint64_t size;
    int rc = vmf__open_regular(path, &fp, &size);
    if (rc != VMF_OK)
        return rc;
    file_src src = {fp, path};
    rc = vmf__npy_read_stream(file_read, &src, size, path, out);
    fclose(fp);
    return rc;
}

int vmf_npy_read_mem(const void *buf, size_t len, vmf_array *out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_npy_read_mem: out is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return vmf__error(VMF_EINVAL, "vmf_npy_read_mem: buf is NULL");
    mem_src src = {buf, len, ".npy data"};
    return vmf__npy_read_stream(mem_read, &src, len, ".npy data", out);
}
