/*
 * mixture_json.c - the vMF mixture's JSON form ("vmfmm-model", version 1),
 * written so that every double parses back to the same bits and read back
 * through the validated constructor: a hostile document gets VMF_EFORMAT.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ---- model JSON ---- */

int vmf__mixture_to_json_obj(const vmf_mixture *m, void **obj)
{
    *obj = NULL;
    json_t *root = json_object();
    json_t *w = json_array(), *kap = json_array(), *means = json_array();
    int bad = !root || !w || !kap || !means;
    bad |= json_object_set_new(root, "format", json_string("vmfmm-model"));
    bad |= json_object_set_new(root, "version", json_integer(1));
    bad |= json_object_set_new(root, "kind", json_string("mixture"));
    bad |= json_object_set_new(root, "dim", json_integer((json_int_t)m->d));
    bad |= json_object_set_new(root, "n_components", json_integer((json_int_t)m->k));
    bad |= json_object_set_new(root, "tied_kappa", json_boolean(m->tied));
    for (size_t c = 0; c < m->k && !bad; c++) {
        bad |= json_array_append_new(w, json_real(m->weights[c]));
        bad |= json_array_append_new(kap, json_real(m->kappas[c]));
        json_t *row = json_array();
        bad |= json_array_append_new(means, row);
        for (size_t j = 0; j < m->d && !bad; j++)
            bad |= json_array_append_new(row, json_real((double)m->means[c * m->d + j]));
    }
    bad |= json_object_set(root, "weights", w);
    bad |= json_object_set(root, "kappas", kap);
    bad |= json_object_set(root, "means", means);
    json_decref(w);
    json_decref(kap);
    json_decref(means);
    if (bad) {
        json_decref(root);
        return vmf__error(VMF_ENOMEM, "model JSON: out of memory");
    }
    *obj = root;
    return VMF_OK;
}

int vmf_mixture_to_json(const vmf_mixture *m, char **json)
{
    int rc = vmf__json_out_args("vmf_mixture_to_json", json, m, "mixture");
    if (rc != VMF_OK)
        return rc;
    void *obj;
    rc = vmf__mixture_to_json_obj(m, &obj);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__json_dump(obj, json, "model JSON");
    json_decref(obj);
    return rc;
}

int vmf__mixture_from_json_obj(const void *obj, const char *where, vmf_mixture **out)
{
    const json_t *root = obj;
    *out = NULL;
    int hrc = vmf__json_check_header(root, where, "vmfmm-model", 1);
    if (hrc != VMF_OK)
        return hrc;
    const json_t *v = json_object_get(root, "kind");
    if (!json_is_string(v) || strcmp(json_string_value(v), "mixture") != 0)
        return vmf__error(VMF_EFORMAT, "%s: \"kind\" must be \"mixture\"", where);
    size_t d = 0, k = 0;
    int rc = vmf__json_get_size(root, "dim", VMF__JSON_REQUIRED, where, &d);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(root, "n_components", VMF__JSON_REQUIRED, where, &k);
    if (rc != VMF_OK)
        return rc;
    if (d < 2 || d > VMF__MAX_DIM)
        return vmf__error(VMF_EFORMAT, "%s: \"dim\" = %zu outside [2, 2^24]", where, d);
    if (k < 1 || k > ((size_t)1 << 24))
        return vmf__error(VMF_EFORMAT, "%s: \"n_components\" = %zu outside [1, 2^24]", where, k);
    v = json_object_get(root, "tied_kappa");
    if (!json_is_boolean(v))
        return vmf__error(VMF_EFORMAT, "%s: \"tied_kappa\" must be true or false", where);
    int tied = json_is_true(v);
    const json_t *jw = json_object_get(root, "weights"), *jk = json_object_get(root, "kappas"),
                 *jm = json_object_get(root, "means");
    if (!jw || !jk || !jm)
        return vmf__error(VMF_EFORMAT, "%s: missing \"%s\"", where,
                          !jw   ? "weights"
                          : !jk ? "kappas"
                                : "means");
    if (!json_is_array(jm) || json_array_size(jm) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"means\" must be an array of %zu rows", where, k);
    /*
     * Check every array's length before allocating, so that the allocation is
     * bounded by what the document really holds, not by "dim" alone.
     */
    if (!json_is_array(jw) || json_array_size(jw) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"weights\" must be an array of %zu numbers", where, k);
    if (!json_is_array(jk) || json_array_size(jk) != k)
        return vmf__error(VMF_EFORMAT, "%s: \"kappas\" must be an array of %zu numbers", where, k);
    for (size_t c = 0; c < k; c++) {
        const json_t *row = json_array_get(jm, c);
        if (!json_is_array(row) || json_array_size(row) != d)
            return vmf__error(VMF_EFORMAT, "%s: means[%zu] must be an array of %zu numbers", where,
                              c, d);
    }
    double *w = vmf__malloc_array(k, sizeof *w);
    double *kap = vmf__malloc_array(k, sizeof *kap);
    float *means = NULL;
    if (w && kap) {
        size_t kd;
        if (vmf__mul_overflow(k, d, &kd) == 0)
            means = vmf__malloc_array(kd, sizeof *means);
    }
    if (!w || !kap || !means) {
        rc = vmf__error(VMF_ENOMEM, "%s: out of memory for %zu x %zu", where, k, d);
        goto done;
    }
    rc = vmf__json_get_numbers(jw, k, where, "weights", w, NULL);
    if (rc == VMF_OK)
        rc = vmf__json_get_numbers(jk, k, where, "kappas", kap, NULL);
    for (size_t c = 0; c < k && rc == VMF_OK; c++) {
        char name[48];
        snprintf(name, sizeof name, "means[%zu]", c);
        rc = vmf__json_get_numbers(json_array_get(jm, c), d, where, name, NULL, means + c * d);
    }
    if (rc == VMF_OK) {
        rc = vmf__mixture_build(k, d, w, means, kap, tied, where, out);
        if (rc == VMF_EINVAL)
            rc = VMF_EFORMAT;
    }
done:
    vmf__free(w);
    vmf__free(kap);
    vmf__free(means);
    return rc;
}

int vmf_mixture_from_json(const char *json, size_t len, vmf_mixture **out)
{
    if (out)
        *out = NULL;
    void *root;
    int rc =
        vmf__json_parse_args("vmf_mixture_from_json", out != NULL, json, len, "model JSON", &root);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__mixture_from_json_obj(root, "model JSON", out);
    json_decref(root);
    return rc;
}
