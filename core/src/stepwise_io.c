/*
 * stepwise_io.c - the stepwise state's binary form (a blob.h payload, alone
 * in vmf_stepwise_save or inside the classifier's) and its JSON form, each
 * validated on the way in: a hostile state gets VMF_EFORMAT, never a state
 * that breaks an invariant of stepwise.c. Saving and loading change no bit.
 */
#include "internal.h"
#include "mixture_internal.h"
#include "stepwise_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char STEPWISE_MAGIC[8] = {'V', 'M', 'F', 'S', 'T', 'E', 'P', '\0'};
#define STEPWISE_VERSION 1u

/* ---- binary state ---- */

void vmf__stepwise_write(vmf__wbuf *b, const vmf_stepwise *s)
{
    const vmf_stepwise_opts *o = &s->o;
    size_t k = o->n_components, d = s->d;
    vmf__wbuf_u64(b, (uint64_t)d);
    vmf__wbuf_u32(b, (uint32_t)s->clock);
    vmf__wbuf_u64(b, (uint64_t)k);
    vmf__wbuf_f64(b, o->alpha);
    vmf__wbuf_f64(b, o->t0);
    vmf__wbuf_f64(b, o->eta_floor);
    vmf__wbuf_u64(b, (uint64_t)o->minibatch);
    vmf__wbuf_u32(b, o->tied_kappa ? 1u : 0u);
    vmf__wbuf_u32(b, (uint32_t)o->kappa.estimator);
    vmf__wbuf_f64(b, o->kappa.prior_count);
    vmf__wbuf_f64(b, o->kappa.prior_rbar);
    vmf__wbuf_f64(b, o->kappa.kappa_min);
    vmf__wbuf_f64(b, o->kappa.kappa_max);
    vmf__wbuf_u64(b, o->seed);
    vmf__wbuf_u64(b, s->steps);
    vmf__wbuf_u64(b, s->rows);
    for (int i = 0; i < 4; i++)
        vmf__wbuf_u64(b, s->rng.s[i]);
    vmf__wbuf_f64(b, s->rng.spare_normal);
    vmf__wbuf_u32(b, s->rng.has_spare ? 1u : 0u);
    vmf__wbuf_u32(b, s->m ? 1u : 0u);
    if (!s->m)
        return;
    vmf__wbuf_f64s(b, s->s0, k);
    vmf__wbuf_f64s(b, s->s1, k * d);
    vmf__wbuf_u32(b, s->m->tied ? 1u : 0u);
    vmf__wbuf_f64s(b, s->m->weights, k);
    vmf__wbuf_f64s(b, s->m->kappas, k);
    vmf__wbuf_f32s(b, s->m->means, k * d);
}

/*
 * Validates restored statistics and parameters: everything finite, masses,
 * weights and kappas non-negative, weights with a positive sum, equal
 * kappas when tied.
 */
static int check_restored(const vmf_stepwise *s, const char *where)
{
    size_t k = s->o.n_components, d = s->d;
    const vmf_mixture *m = s->m;
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++) {
        if (!(isfinite(s->s0[c]) && s->s0[c] >= 0.0))
            return vmf__error(VMF_EFORMAT, "%s: s0[%zu] is not a finite number >= 0", where, c);
        if (!(isfinite(m->weights[c]) && m->weights[c] >= 0.0))
            return vmf__error(VMF_EFORMAT, "%s: weight %zu is not a finite number >= 0", where, c);
        if (!(isfinite(m->kappas[c]) && m->kappas[c] >= 0.0))
            return vmf__error(VMF_EFORMAT, "%s: kappa %zu is not a finite number >= 0", where, c);
        if (m->tied && m->kappas[c] != m->kappas[0])
            return vmf__error(VMF_EFORMAT, "%s: tied kappas differ", where);
        wsum += m->weights[c];
    }
    if (!(wsum > 0.0 && isfinite(wsum)))
        return vmf__error(VMF_EFORMAT, "%s: the weights do not have a positive sum", where);
    if (fabs(wsum - 1.0) > 1e-6)
        return vmf__error(VMF_EFORMAT, "%s: the weights sum to %.17g, not 1", where, wsum);
    for (size_t c = 0; c < k; c++) {
        double nm = 0.0, ns = 0.0;
        for (size_t j = 0; j < d; j++) {
            double v = s->s1[c * d + j], mu = (double)m->means[c * d + j];
            if (!isfinite(v) || !isfinite(mu))
                return vmf__error(VMF_EFORMAT, "%s: component %zu holds a NaN or infinity", where,
                                  c);
            ns += v * v;
            nm += mu * mu;
        }
        /* Rows are unit vectors, so |s1_k| <= s0_k; means are unit vectors. */
        if (sqrt(ns) > s->s0[c] * (1.0 + VMF_ROWS_NORM_TOL) + 1e-12)
            return vmf__error(VMF_EFORMAT, "%s: |s1[%zu]| exceeds s0[%zu]", where, c, c);
        if (fabs(sqrt(nm) - 1.0) > VMF_ROWS_NORM_TOL)
            return vmf__error(VMF_EFORMAT, "%s: mean %zu is not a unit vector", where, c);
    }
    return VMF_OK;
}

int vmf__stepwise_read(vmf__rbuf *b, const char *where, vmf_stepwise **out)
{
    *out = NULL;
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    uint64_t d64 = vmf__rbuf_u64(b);
    uint32_t clock = vmf__rbuf_u32(b);
    uint64_t k64 = vmf__rbuf_u64(b);
    o.alpha = vmf__rbuf_f64(b);
    o.t0 = vmf__rbuf_f64(b);
    o.eta_floor = vmf__rbuf_f64(b);
    uint64_t mb = vmf__rbuf_u64(b);
    o.tied_kappa = vmf__rbuf_u32(b) != 0;
    uint32_t est = vmf__rbuf_u32(b);
    o.kappa.prior_count = vmf__rbuf_f64(b);
    o.kappa.prior_rbar = vmf__rbuf_f64(b);
    o.kappa.kappa_min = vmf__rbuf_f64(b);
    o.kappa.kappa_max = vmf__rbuf_f64(b);
    o.seed = vmf__rbuf_u64(b);
    uint64_t steps = vmf__rbuf_u64(b), rows = vmf__rbuf_u64(b);
    vmf_rng rng;
    for (int i = 0; i < 4; i++)
        rng.s[i] = vmf__rbuf_u64(b);
    rng.spare_normal = vmf__rbuf_f64(b);
    uint32_t has_spare = vmf__rbuf_u32(b);
    uint32_t has_model = vmf__rbuf_u32(b);
    if (b->bad)
        return vmf__error(VMF_EFORMAT, "%s: truncated stepwise state", where);
    if (d64 < 2 || d64 > VMF__MAX_DIM || k64 < 1 || k64 > VMF__STEPWISE_MAX_COMPONENTS)
        return vmf__error(VMF_EFORMAT,
                          "%s: dimension %" PRIu64 " or %" PRIu64 " components out of range", where,
                          d64, k64);
    if (clock > VMF__CLOCK_ROWS || est > (uint32_t)VMF_KAPPA_EXACT || has_spare > 1 ||
        has_model > 1 || mb > ((uint64_t)1 << 40) || !isfinite(rng.spare_normal))
        return vmf__error(VMF_EFORMAT, "%s: invalid stepwise header fields", where);
    o.n_components = (size_t)k64;
    o.minibatch = (size_t)mb;
    o.kappa.estimator = (vmf_kappa_estimator)est;
    rng.has_spare = (int)has_spare;
    vmf_stepwise *s;
    int rc = vmf__stepwise_new_clock(&o, (size_t)d64, (int)clock, &s);
    if (rc != VMF_OK)
        return rc == VMF_EINVAL ? vmf__error_wrap(VMF_EFORMAT, where, NULL) : rc;
    s->steps = steps;
    s->rows = rows;
    s->rng = rng;
    if (has_model) {
        size_t k = s->o.n_components, d = s->d, kd = k * d;
        /* Sizes are checked against the bytes present before anything is allocated. */
        if (!vmf__rbuf_has(b, k * 3 + 1, 8) || !vmf__rbuf_has(b, kd, 12)) {
            vmf_stepwise_free(s);
            return vmf__error(VMF_EFORMAT, "%s: truncated stepwise statistics", where);
        }
        rc = vmf__stepwise_stats_alloc(k, d, &s->s0, &s->s1);
        if (rc == VMF_OK)
            rc = vmf__mixture_alloc(k, d, &s->m);
        if (rc != VMF_OK) {
            vmf_stepwise_free(s);
            return rc;
        }
        vmf__rbuf_f64s(b, s->s0, k);
        vmf__rbuf_f64s(b, s->s1, kd);
        uint32_t tied = vmf__rbuf_u32(b);
        vmf__rbuf_f64s(b, s->m->weights, k);
        vmf__rbuf_f64s(b, s->m->kappas, k);
        vmf__rbuf_f32s(b, s->m->means, kd);
        s->m->tied = tied != 0;
        rc = b->bad     ? vmf__error(VMF_EFORMAT, "%s: truncated stepwise state", where)
             : tied > 1 ? vmf__error(VMF_EFORMAT, "%s: invalid tied flag", where)
                        : check_restored(s, where);
        if (rc != VMF_OK) {
            vmf_stepwise_free(s);
            return rc;
        }
        vmf__mixture_refresh(s->m);
    }
    *out = s;
    return VMF_OK;
}

int vmf_stepwise_save(const vmf_stepwise *s, void **buf, size_t *len)
{
    int rc = vmf__blob_out_args("vmf_stepwise_save", buf, len, s, "state");
    if (rc != VMF_OK)
        return rc;
    vmf__wbuf b = {0};
    vmf__stepwise_write(&b, s);
    rc = vmf__blob_frame(STEPWISE_MAGIC, STEPWISE_VERSION, &b, buf, len);
    vmf__free(b.p);
    return rc;
}

int vmf_stepwise_load(const void *buf, size_t len, vmf_stepwise **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_stepwise_load: out is NULL");
    *out = NULL;
    vmf__rbuf r;
    int rc = vmf__blob_open(STEPWISE_MAGIC, STEPWISE_VERSION, buf, len, "vmf_stepwise_load", &r);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__stepwise_read(&r, "vmf_stepwise_load", out);
    if (rc == VMF_OK && r.pos != r.len) {
        vmf_stepwise_free(*out);
        *out = NULL;
        return vmf__error(VMF_EFORMAT, "vmf_stepwise_load: %zu trailing bytes", r.len - r.pos);
    }
    return rc;
}

/* ---- JSON state ---- */

static json_t *json_doubles(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n && a; i++) {
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int vmf__stepwise_to_json_obj(const vmf_stepwise *s, void **obj)
{
    *obj = NULL;
    const vmf_stepwise_opts *o = &s->o;
    size_t k = o->n_components, d = s->d;
    json_t *root = json_object(), *opts = json_object(), *kap = json_object(), *rng = json_object();
    int bad = !root || !opts || !kap || !rng;
    bad |= json_object_set_new(root, "format", json_string("vmfmm-stepwise"));
    bad |= json_object_set_new(root, "version", json_integer(1));
    bad |= json_object_set_new(root, "dim", json_integer((json_int_t)d));
    bad |= json_object_set_new(root, "n_components", json_integer((json_int_t)k));
    bad |= json_object_set_new(root, "clock",
                               json_string(s->clock == VMF__CLOCK_ROWS ? "rows" : "steps"));
    bad |= json_object_set_new(opts, "alpha", json_real(o->alpha));
    bad |= json_object_set_new(opts, "t0", json_real(o->t0));
    bad |= json_object_set_new(opts, "eta_floor", json_real(o->eta_floor));
    bad |= json_object_set_new(opts, "minibatch", json_integer((json_int_t)o->minibatch));
    bad |= json_object_set_new(opts, "tied_kappa", json_boolean(o->tied_kappa));
    bad |= json_object_set_new(opts, "seed", vmf__json_u64(o->seed));
    bad |= !kap || vmf__json_set_kappa_opts(kap, &o->kappa);
    bad |= json_object_set(opts, "kappa", kap);
    bad |= json_object_set(root, "options", opts);
    bad |= json_object_set_new(root, "steps", vmf__json_u64(s->steps));
    bad |= json_object_set_new(root, "rows_seen", vmf__json_u64(s->rows));
    bad |= !rng || vmf__json_set_rng(rng, &s->rng);
    bad |= json_object_set(root, "rng", rng);
    if (!bad && s->m) {
        void *mj = NULL;
        json_t *s0 = json_doubles(s->s0, k), *s1 = json_array();
        bad |= !s0 || !s1;
        for (size_t c = 0; c < k && !bad; c++) {
            json_t *row = json_doubles(s->s1 + c * d, d);
            bad |= !row || json_array_append_new(s1, row) != 0;
        }
        bad |= json_object_set(root, "s0", s0);
        bad |= json_object_set(root, "s1", s1);
        json_decref(s0);
        json_decref(s1);
        if (!bad) {
            int rc = vmf__mixture_to_json_obj(s->m, &mj);
            bad |= rc != VMF_OK || json_object_set_new(root, "mixture", mj) != 0;
        }
    } else if (!bad) {
        bad |= json_object_set_new(root, "mixture", json_null());
    }
    json_decref(opts);
    json_decref(kap);
    json_decref(rng);
    if (bad) {
        json_decref(root);
        return vmf__error(VMF_ENOMEM, "stepwise JSON: out of memory");
    }
    *obj = root;
    return VMF_OK;
}

int vmf__stepwise_from_json_obj(const void *obj, const char *where, vmf_stepwise **out)
{
    *out = NULL;
    const json_t *root = obj;
    int hrc = vmf__json_check_header(root, where, "vmfmm-stepwise", 1);
    if (hrc != VMF_OK)
        return hrc;
    vmf_stepwise_opts o;
    vmf_stepwise_opts_init(&o);
    size_t d = 0;
    int clock;
    const json_t *opts = json_object_get(root, "options");
    const json_t *kap = json_object_get(opts, "kappa");
    const json_t *rng = json_object_get(root, "rng");
    const json_t *jc = json_object_get(root, "clock");
    if (!json_is_object(opts) || !json_is_object(kap) || !json_is_object(rng))
        return vmf__error(VMF_EFORMAT, "%s: missing \"options\", \"options.kappa\" or \"rng\"",
                          where);
    if (!json_is_string(jc))
        return vmf__error(VMF_EFORMAT, "%s: \"clock\" must be \"steps\" or \"rows\"", where);
    if (strcmp(json_string_value(jc), "steps") == 0)
        clock = VMF__CLOCK_STEPS;
    else if (strcmp(json_string_value(jc), "rows") == 0)
        clock = VMF__CLOCK_ROWS;
    else
        return vmf__error(VMF_EFORMAT, "%s: \"clock\" must be \"steps\" or \"rows\"", where);
    uint64_t steps = 0, rows = 0;
    vmf_rng r;
    int rc = vmf__json_get_size(root, "dim", VMF__JSON_REQUIRED, where, &d);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(root, "n_components", VMF__JSON_REQUIRED, where, &o.n_components);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(opts, "alpha", VMF__JSON_REQUIRED, where, &o.alpha);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(opts, "t0", VMF__JSON_REQUIRED, where, &o.t0);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(opts, "eta_floor", VMF__JSON_REQUIRED, where, &o.eta_floor);
    if (rc == VMF_OK)
        rc = vmf__json_get_size(opts, "minibatch", VMF__JSON_REQUIRED, where, &o.minibatch);
    if (rc == VMF_OK)
        rc = vmf__json_get_hex64(opts, "seed", VMF__JSON_REQUIRED, where, &o.seed);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(kap, "prior_count", VMF__JSON_REQUIRED, where, &o.kappa.prior_count);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(kap, "prior_rbar", VMF__JSON_REQUIRED, where, &o.kappa.prior_rbar);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(kap, "kappa_min", VMF__JSON_REQUIRED, where, &o.kappa.kappa_min);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(kap, "kappa_max", VMF__JSON_REQUIRED, where, &o.kappa.kappa_max);
    if (rc == VMF_OK)
        rc = vmf__json_get_hex64(root, "steps", VMF__JSON_REQUIRED, where, &steps);
    if (rc == VMF_OK)
        rc = vmf__json_get_hex64(root, "rows_seen", VMF__JSON_REQUIRED, where, &rows);
    if (rc == VMF_OK)
        rc = vmf__json_get_f64(rng, "spare_normal", VMF__JSON_REQUIRED, where, &r.spare_normal);
    if (rc != VMF_OK)
        return rc;
    const json_t *v = json_object_get(opts, "tied_kappa");
    const json_t *hs = json_object_get(rng, "has_spare");
    const json_t *est = json_object_get(kap, "estimator");
    const json_t *st = json_object_get(rng, "state");
    if (!json_is_boolean(v) || !json_is_boolean(hs))
        return vmf__error(VMF_EFORMAT, "%s: \"tied_kappa\" and \"has_spare\" must be booleans",
                          where);
    o.tied_kappa = json_is_true(v);
    r.has_spare = json_is_true(hs);
    if (!json_is_string(est) ||
        vmf_kappa_estimator_parse(json_string_value(est), &o.kappa.estimator) != VMF_OK)
        return vmf__error(VMF_EFORMAT, "%s: unknown kappa \"estimator\"", where);
    if (!json_is_array(st) || json_array_size(st) != 4)
        return vmf__error(VMF_EFORMAT, "%s: \"rng.state\" must hold 4 strings", where);
    for (size_t i = 0; i < 4; i++)
        if (vmf__json_get_u64(json_array_get(st, i), &r.s[i]) != 0)
            return vmf__error(VMF_EFORMAT, "%s: rng.state[%zu] is not a 0x hex string", where, i);
    vmf_stepwise *s;
    rc = vmf__stepwise_new_clock(&o, d, clock, &s);
    if (rc != VMF_OK)
        return rc == VMF_EINVAL ? vmf__error_wrap(VMF_EFORMAT, where, NULL) : rc;
    s->steps = steps;
    s->rows = rows;
    s->rng = r;
    const json_t *jm = json_object_get(root, "mixture");
    if (json_is_null(jm)) {
        *out = s;
        return VMF_OK;
    }
    size_t k = s->o.n_components;
    const json_t *js1 = json_object_get(root, "s1");
    char name[64];
    snprintf(name, sizeof name, "%s.mixture", where);
    rc = vmf__mixture_from_json_obj(jm, name, &s->m);
    if (rc == VMF_OK && (s->m->k != k || s->m->d != d))
        rc = vmf__error(VMF_EFORMAT, "%s: the mixture is %zu x %zu, the state %zu x %zu", where,
                        s->m->k, s->m->d, k, d);
    if (rc == VMF_OK && (!json_is_array(js1) || json_array_size(js1) != k))
        rc = vmf__error(VMF_EFORMAT, "%s: \"s1\" must hold %zu rows", where, k);
    if (rc == VMF_OK)
        rc = vmf__stepwise_stats_alloc(k, d, &s->s0, &s->s1);
    if (rc == VMF_OK)
        rc = vmf__json_get_numbers(json_object_get(root, "s0"), k, where, "s0", s->s0, NULL);
    for (size_t c = 0; c < k && rc == VMF_OK; c++)
        rc = vmf__json_get_numbers(json_array_get(js1, c), d, where, "s1 row", s->s1 + c * d, NULL);
    if (rc == VMF_OK)
        rc = check_restored(s, where);
    if (rc != VMF_OK) {
        vmf_stepwise_free(s);
        return rc;
    }
    *out = s;
    return VMF_OK;
}

int vmf_stepwise_to_json(const vmf_stepwise *s, char **json)
{
    void *obj = NULL;
    int rc = vmf__json_out_args("vmf_stepwise_to_json", json, s, "state");
    if (rc == VMF_OK)
        rc = vmf__stepwise_to_json_obj(s, &obj);
    if (rc == VMF_OK)
        rc = vmf__json_dump(obj, json, "vmf_stepwise_to_json");
    json_decref(obj);
    return rc;
}

int vmf_stepwise_from_json(const char *json, size_t len, vmf_stepwise **out)
{
    if (out)
        *out = NULL;
    void *root;
    int rc = vmf__json_parse_args("vmf_stepwise_from_json", out != NULL, json, len, "stepwise JSON",
                                  &root);
    if (rc != VMF_OK)
        return rc;
    rc = vmf__stepwise_from_json_obj(root, "stepwise JSON", out);
    json_decref(root);
    return rc;
}
