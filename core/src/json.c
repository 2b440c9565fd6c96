/*
 * json.c - the JSON helpers every state format shares: the dump that keeps
 * every double's bits, uint64 as hex strings, and one typed reader for
 * object members and number arrays, so that each format checks its fields
 * and words its errors alike. json_t * travels as void * so that internal.h
 * needs no jansson.
 */
#include "internal.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int vmf__json_dump(void *obj, char **json, const char *what)
{
    /* Dumped twice, to size the text and then straight into memory from our
     * own allocator, rather than copied out of jansson's. */
    const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(17);
    *json = NULL;
    size_t len = json_dumpb(obj, NULL, 0, flags);
    char *text = len ? vmf__malloc(len + 1) : NULL;
    if (!text || json_dumpb(obj, text, len, flags) != len) {
        vmf__free(text);
        return vmf__error(VMF_ENOMEM, "%s: out of memory", what);
    }
    text[len] = '\0';
    *json = text;
    return VMF_OK;
}

int vmf__json_out_args(const char *fn, char **json, const void *obj, const char *obj_name)
{
    if (!json)
        return vmf__error(VMF_EINVAL, "%s: json is NULL", fn);
    *json = NULL;
    if (!obj)
        return vmf__error(VMF_EINVAL, "%s: %s is NULL", fn, obj_name);
    return VMF_OK;
}

int vmf__json_parse_args(const char *fn, int have_out, const char *json, size_t len,
                         const char *what, void **root)
{
    *root = NULL;
    if (!have_out)
        return vmf__error(VMF_EINVAL, "%s: out is NULL", fn);
    if (!json)
        return vmf__error(VMF_EINVAL, "%s: json is NULL", fn);
    json_error_t err;
    json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!r)
        return vmf__error(VMF_EFORMAT, "%s: line %d column %d: %s", what, err.line, err.column,
                          err.text);
    *root = r;
    return VMF_OK;
}

int vmf__json_set_kappa_opts(void *kap, const vmf_kappa_opts *k)
{
    int bad =
        json_object_set_new(kap, "estimator", json_string(vmf_kappa_estimator_name(k->estimator)));
    bad |= json_object_set_new(kap, "prior_count", json_real(k->prior_count));
    bad |= json_object_set_new(kap, "prior_rbar", json_real(k->prior_rbar));
    bad |= json_object_set_new(kap, "kappa_min", json_real(k->kappa_min));
    bad |= json_object_set_new(kap, "kappa_max", json_real(k->kappa_max));
    return bad;
}

int vmf__json_set_rng(void *obj, const vmf_rng *r)
{
    json_t *st = json_array();
    int bad = !st;
    for (int i = 0; i < 4 && !bad; i++)
        bad |= json_array_append_new(st, vmf__json_u64(r->s[i]));
    bad |= json_object_set_new(obj, "state", st);
    bad |= json_object_set_new(obj, "spare_normal", json_real(r->spare_normal));
    bad |= json_object_set_new(obj, "has_spare", json_boolean(r->has_spare));
    return bad;
}

void *vmf__json_u64(uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "0x%016" PRIx64, v);
    return json_string(t);
}

int vmf__json_get_u64(const void *obj, uint64_t *v)
{
    const json_t *j = obj;
    if (!json_is_string(j))
        return -1;
    const char *s = json_string_value(j);
    if (strncmp(s, "0x", 2) != 0 || strlen(s) != 18)
        return -1;
    uint64_t r = 0;
    for (size_t i = 2; i < 18; i++) {
        char ch = s[i];
        int dig = ch >= '0' && ch <= '9'   ? ch - '0'
                  : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                  : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                           : -1;
        if (dig < 0)
            return -1;
        r = (r << 4) | (uint64_t)dig;
    }
    *v = r;
    return 0;
}

/*
 * Member `key` of object obj into *v: VMF_OK with *v = NULL when it is absent
 * and `flags` has VMF__JSON_OPTIONAL, VMF_EFORMAT when it is absent and
 * required.
 */
int vmf__json_check_header(const void *obj, const char *where, const char *format, int version)
{
    const json_t *root = obj;
    if (!json_is_object(root))
        return vmf__error(VMF_EFORMAT, "%s: not a JSON object", where);
    const json_t *v = json_object_get(root, "format");
    if (!json_is_string(v) || strcmp(json_string_value(v), format) != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"format\" must be \"%s\"", where, format);
    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != version)
        return vmf__error(VMF_EFORMAT, "%s: \"version\" must be %d", where, version);
    return VMF_OK;
}

static int member(const void *obj, const char *key, int flags, const char *where, const json_t **v)
{
    *v = json_object_get(obj, key);
    if (!*v && !(flags & VMF__JSON_OPTIONAL))
        return vmf__error(VMF_EFORMAT, "%s: missing \"%s\"", where, key);
    return VMF_OK;
}

int vmf__json_get_f64(const void *obj, const char *key, int flags, const char *where, double *out)
{
    const json_t *v;
    int rc = member(obj, key, flags, where, &v);
    if (rc != VMF_OK || !v)
        return rc;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return vmf__error(VMF_EFORMAT, "%s: \"%s\" must be a finite number", where, key);
    *out = json_number_value(v);
    return VMF_OK;
}

int vmf__json_get_size(const void *obj, const char *key, int flags, const char *where, size_t *out)
{
    const json_t *v;
    int rc = member(obj, key, flags, where, &v);
    if (rc != VMF_OK || !v)
        return rc;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return vmf__error(VMF_EFORMAT, "%s: \"%s\" must be a non-negative integer", where, key);
    *out = (size_t)json_integer_value(v);
    return VMF_OK;
}

int vmf__json_get_hex64(const void *obj, const char *key, int flags, const char *where,
                        uint64_t *out)
{
    const json_t *v;
    int rc = member(obj, key, flags, where, &v);
    if (rc != VMF_OK || !v)
        return rc;
    if (vmf__json_get_u64(v, out) != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"%s\" must be a \"0x\" + 16 hex digit string", where,
                          key);
    return VMF_OK;
}

int vmf__json_get_numbers(const void *arr, size_t n, const char *where, const char *name,
                          double *outd, float *outf)
{
    const json_t *a = arr;
    if (!json_is_array(a))
        return vmf__error(VMF_EFORMAT, "%s: \"%s\" must be an array", where, name);
    if (json_array_size(a) != n)
        return vmf__error(VMF_EFORMAT, "%s: \"%s\" has %zu entries, expected %zu", where, name,
                          json_array_size(a), n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(a, i);
        if (!json_is_number(e) || !isfinite(json_number_value(e)))
            return vmf__error(VMF_EFORMAT, "%s: %s[%zu] is not a finite number", where, name, i);
        double v = json_number_value(e);
        if (outd)
            outd[i] = v;
        else {
            if (fabs(v) > FLT_MAX)
                return vmf__error(VMF_EFORMAT, "%s: %s[%zu] = %g overflows float", where, name, i,
                                  v);
            outf[i] = (float)v;
        }
    }
    return VMF_OK;
}
