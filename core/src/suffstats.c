/*
 * suffstats.c - exact partial sufficient statistics, the M-step from them,
 * seeding from a sample and the seeded row sample (vmfmm/suffstats.h).
 *
 * The E-step itself is batch EM's blocked kernel (vmf__mixture_estep_stats,
 * one call per block) and the M-step batch EM's (vmf__mixture_mstep); this
 * file adds the exact fixed-point summation, the tracking of the K worst
 * rows that the re-seeding rule needs, and the re-seeding rule itself
 * (em.c applies the same rule to an in-memory row_ll array; here the
 * candidates come from the stream).
 *
 * Fixed point: a double v with |v| < 2^60 is split, exactly, as
 *     |v| = a3·2^32 + a2 + a1·2^-32 + a0·2^-64 + (remainder < 2^-64)
 * with digits a0..a2 in [0, 2^32) and a3 < 2^28; each step (floor, subtract,
 * scale by 2^32) is exact in binary floating point because every
 * intermediate is a multiple of ulp(v) below 2^53 ulps. A negative v stores
 * the negated digits. Normalization moves carries upward so digits 0..2 are
 * in [0, 2^32) again (two's complement masking, exact division by 2^32); a
 * negative total then shows as a negative top word.
 */
#include "internal.h"
#include "mixture_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMBS VMF_SUFFSTATS_LIMBS
#define RADIX 4294967296.0 /* 2^32 */

struct vmf_suffstats {
    size_t k, d, nstat; /* nstat = k + k·d + 2 */
    int64_t *w;         /* [nstat][LIMBS] */
    double *bs0, *bs1;  /* block statistics [k], [k][d]; totals scratch for the M-step */
    double *row_ll;     /* [row_cap] */
    size_t row_cap;
    size_t adds; /* additions since the last normalization */
    /* Worst rows, sorted by (ll, id); entry q's row is rows + slot[q]·d. */
    size_t nworst;
    double *wll;   /* [k] */
    uint64_t *wid; /* [k] */
    size_t *slot;  /* [k] */
    float *wrows;  /* [k][d] storage, indexed by slot */
    /* Contiguous copies for vmf_suffstats_worst. */
    float *wout;  /* [k][d] */
    double *kscr; /* [k] median scratch */
};

/* ---- fixed point ---- */

static void fixed_add(int64_t *a, double v)
{
    double m = fabs(v);
    double a3 = floor(m / RADIX);
    double r = m - a3 * RADIX; /* exact */
    double a2 = floor(r);
    r = (r - a2) * RADIX; /* exact: fraction scaled by a power of two */
    double a1 = floor(r);
    r = (r - a1) * RADIX;
    double a0 = floor(r); /* bits below 2^-64 are dropped */
    int64_t s = v < 0.0 ? -1 : 1;
    a[0] += s * (int64_t)a0;
    a[1] += s * (int64_t)a1;
    a[2] += s * (int64_t)a2;
    a[3] += s * (int64_t)a3;
}

static void fixed_normalize(int64_t *a)
{
    for (int j = 0; j < LIMBS - 1; j++) {
        int64_t lo = (int64_t)((uint64_t)a[j] & 0xffffffffu);
        int64_t carry = (a[j] - lo) / ((int64_t)1 << 32); /* exact */
        a[j] = lo;
        a[j + 1] += carry;
    }
}

/* The value of normalized digits, rounded to double (small terms first). */
static double fixed_value(const int64_t *in)
{
    int64_t a[LIMBS];
    memcpy(a, in, sizeof a);
    fixed_normalize(a);
    int neg = a[LIMBS - 1] < 0;
    if (neg) {
        /* Negate the whole number: complement the digits, add one ulp, renormalize. */
        for (int j = 0; j < LIMBS; j++)
            a[j] = -a[j];
        fixed_normalize(a);
    }
    double v = ldexp((double)a[0], -64) + ldexp((double)a[1], -32);
    v += (double)a[2];
    v += (double)a[3] * RADIX;
    return neg ? -v : v;
}

/* ---- object ---- */

void vmf_suffstats_free(vmf_suffstats *s)
{
    if (!s)
        return;
    vmf__free(s->w);
    vmf__free(s->bs0);
    vmf__free(s->bs1);
    vmf__free(s->row_ll);
    vmf__free(s->wll);
    vmf__free(s->wid);
    vmf__free(s->slot);
    vmf__free(s->wrows);
    vmf__free(s->wout);
    vmf__free(s->kscr);
    vmf__free(s);
}

int vmf_suffstats_new(size_t k, size_t d, vmf_suffstats **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_new: out is NULL");
    *out = NULL;
    if (k == 0 || d < 2)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_new: need k >= 1 and d >= 2 (k=%zu, d=%zu)", k,
                          d);
    size_t kd, nstat, nw;
    if (vmf__mul_overflow(k, d, &kd) != 0 || kd > SIZE_MAX - k - 2 ||
        vmf__mul_overflow(kd + k + 2, LIMBS, &nw) != 0)
        return vmf__error(VMF_ENOMEM, "vmf_suffstats_new: %zu x %zu is too large", k, d);
    nstat = kd + k + 2;
    vmf_suffstats *s = vmf__calloc(1, sizeof *s);
    if (!s)
        return vmf__error(VMF_ENOMEM, "vmf_suffstats_new: out of memory");
    s->k = k;
    s->d = d;
    s->nstat = nstat;
    s->w = vmf__calloc(nw, sizeof *s->w);
    s->bs0 = vmf__malloc_array(k, sizeof *s->bs0);
    s->bs1 = vmf__malloc_array(kd, sizeof *s->bs1);
    s->wll = vmf__malloc_array(k, sizeof *s->wll);
    s->wid = vmf__malloc_array(k, sizeof *s->wid);
    s->slot = vmf__malloc_array(k, sizeof *s->slot);
    s->wrows = vmf__malloc_array(kd, sizeof *s->wrows);
    s->wout = vmf__malloc_array(kd, sizeof *s->wout);
    s->kscr = vmf__malloc_array(k, sizeof *s->kscr);
    if (!s->w || !s->bs0 || !s->bs1 || !s->wll || !s->wid || !s->slot || !s->wrows || !s->wout ||
        !s->kscr) {
        vmf_suffstats_free(s);
        return vmf__error(VMF_ENOMEM, "vmf_suffstats_new: out of memory for %zu x %zu", k, d);
    }
    vmf_suffstats_clear(s);
    *out = s;
    return VMF_OK;
}

void vmf_suffstats_clear(vmf_suffstats *s)
{
    if (!s)
        return;
    memset(s->w, 0, s->nstat * LIMBS * sizeof *s->w);
    s->adds = 0;
    s->nworst = 0;
    for (size_t q = 0; q < s->k; q++)
        s->slot[q] = q;
}

void vmf_suffstats_normalize(vmf_suffstats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nstat; i++)
        fixed_normalize(s->w + i * LIMBS);
    s->adds = 0;
}

int64_t *vmf_suffstats_words(vmf_suffstats *s, size_t *n)
{
    if (n)
        *n = s ? s->nstat * LIMBS : 0;
    return s ? s->w : NULL;
}

/* ---- worst rows ---- */

static int worse(double a, uint64_t ia, double b, uint64_t ib)
{
    return a < b || (a == b && ia < ib);
}

/* Inserts (v, id, row) if it is among the K smallest; duplicates of a kept entry are ignored. */
static void worst_offer(vmf_suffstats *s, double v, uint64_t id, const float *row)
{
    size_t k = s->k, n = s->nworst;
    if (n == k && !worse(v, id, s->wll[n - 1], s->wid[n - 1]))
        return;
    size_t pos = n;
    while (pos > 0 && worse(v, id, s->wll[pos - 1], s->wid[pos - 1]))
        pos--;
    if (pos > 0 && s->wll[pos - 1] == v && s->wid[pos - 1] == id)
        return;
    /* The evicted (or first free) slot receives the row. */
    size_t last = n < k ? n : k - 1;
    size_t free_slot = s->slot[last];
    for (size_t q = last; q > pos; q--) {
        s->wll[q] = s->wll[q - 1];
        s->wid[q] = s->wid[q - 1];
        s->slot[q] = s->slot[q - 1];
    }
    s->wll[pos] = v;
    s->wid[pos] = id;
    s->slot[pos] = free_slot;
    memcpy(s->wrows + free_slot * s->d, row, s->d * sizeof *row);
    if (n < k)
        s->nworst++;
}

void vmf_suffstats_worst(vmf_suffstats *s, size_t *count, const double **ll, const uint64_t **ids,
                         const float **rows)
{
    for (size_t q = 0; q < s->nworst; q++)
        memcpy(s->wout + q * s->d, s->wrows + s->slot[q] * s->d, s->d * sizeof *s->wout);
    *count = s->nworst;
    *ll = s->wll;
    *ids = s->wid;
    *rows = s->wout;
}

int vmf_suffstats_offer_worst(vmf_suffstats *s, size_t count, const double *ll, const uint64_t *ids,
                              const float *rows)
{
    if (!s || (count > 0 && (!ll || !ids || !rows)))
        return vmf__error(VMF_EINVAL, "vmf_suffstats_offer_worst: NULL argument");
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(ll[i]))
            return vmf__error(VMF_EINVAL, "vmf_suffstats_offer_worst: ll[%zu] is not finite", i);
    }
    /* Insertion writes only the slot storage, so rows may be this object's own worst() output. */
    for (size_t i = 0; i < count; i++)
        worst_offer(s, ll[i], ids[i], rows + i * s->d);
    return VMF_OK;
}

/* ---- statistics ---- */

int vmf_suffstats_add_block(vmf_suffstats *s, const vmf_mixture *m, const float *x, size_t rows,
                            size_t d, vmf_assignment mode, vmf_rng *rng, uint64_t first_id,
                            const uint64_t *ids, unsigned flags)
{
    int want_s1 = (flags & VMF_SUFFSTATS_S1) != 0;
    if (!s || !m)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_add_block: statistics and mixture required");
    if (m->k != s->k || m->d != s->d || d != s->d)
        return vmf__error(VMF_EINVAL,
                          "vmf_suffstats_add_block: statistics are %zu x %zu, mixture %zu x %zu, "
                          "rows of %zu",
                          s->k, s->d, m->k, m->d, d);
    if (mode != VMF_ASSIGN_SOFT && mode != VMF_ASSIGN_HARD && mode != VMF_ASSIGN_STOCHASTIC)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_add_block: unknown assignment %d", (int)mode);
    if (mode == VMF_ASSIGN_STOCHASTIC && !rng)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_add_block: stochastic assignment needs rng");
    if (rows == 0)
        return VMF_OK;
    int rc = (flags & VMF_SUFFSTATS_TRUSTED) ? VMF_OK : vmf_rows_check(x, rows, d);
    if (rc != VMF_OK) {
        char msg[256]; /* vmf__error must not read the buffer it writes */
        snprintf(msg, sizeof msg, "%s", vmf_last_error());
        return vmf__error(rc, "vmf_suffstats_add_block: %s", msg);
    }
    if (rows > s->row_cap) {
        double *p = rows > SIZE_MAX / sizeof *p ? NULL : vmf__realloc(s->row_ll, rows * sizeof *p);
        if (!p) {
            return vmf__error(VMF_ENOMEM, "vmf_suffstats_add_block: out of memory for %zu rows",
                              rows);
        }
        s->row_ll = p;
        s->row_cap = rows;
    }
    double ll;
    /* One kernel call per block: block_rows = rows, so the block is one GEMM. */
    rc = vmf__mixture_estep_stats(m, x, rows, d, mode, rng, rows, s->bs0, want_s1 ? s->bs1 : NULL,
                                  &ll, s->row_ll);
    if (rc != VMF_OK)
        return rc;
    size_t k = s->k, kd = k * s->d;
    for (size_t c = 0; c < k; c++)
        fixed_add(s->w + c * LIMBS, s->bs0[c]);
    if (want_s1)
        for (size_t j = 0; j < kd; j++)
            fixed_add(s->w + (k + j) * LIMBS, s->bs1[j]);
    fixed_add(s->w + (k + kd) * LIMBS, ll);
    fixed_add(s->w + (k + kd + 1) * LIMBS, (double)rows);
    for (size_t i = 0; i < rows; i++)
        worst_offer(s, s->row_ll[i], ids ? ids[i] : first_id + i, x + i * d);
    /* Digits grow by < 2^32 per addition; normalize long before int64 could overflow. */
    if (++s->adds >= ((size_t)1 << 20))
        vmf_suffstats_normalize(s);
    return VMF_OK;
}

int vmf_suffstats_merge(vmf_suffstats *dst, const vmf_suffstats *src)
{
    if (!dst || !src || dst->k != src->k || dst->d != src->d)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_merge: need two accumulators of one shape");
    if (dst == src)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_merge: cannot merge into itself");
    vmf_suffstats_normalize(dst);
    /* Unnormalized words of src are below 2^53, so the sum cannot overflow. */
    for (size_t i = 0; i < dst->nstat * LIMBS; i++)
        dst->w[i] += src->w[i];
    vmf_suffstats_normalize(dst);
    for (size_t q = 0; q < src->nworst; q++)
        worst_offer(dst, src->wll[q], src->wid[q], src->wrows + src->slot[q] * src->d);
    return VMF_OK;
}

void vmf_suffstats_totals(vmf_suffstats *s, double *s0, double *s1, double *loglik, double *rows)
{
    size_t k = s->k, kd = k * s->d;
    for (size_t c = 0; s0 && c < k; c++)
        s0[c] = fixed_value(s->w + c * LIMBS);
    for (size_t j = 0; s1 && j < kd; j++)
        s1[j] = fixed_value(s->w + (k + j) * LIMBS);
    if (loglik)
        *loglik = fixed_value(s->w + (k + kd) * LIMBS);
    if (rows)
        *rows = fixed_value(s->w + (k + kd + 1) * LIMBS);
}

/* ---- M-step and re-seeding ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int vmf_suffstats_mstep(vmf_suffstats *s, const vmf_em_opts *o, vmf_mixture *m, size_t *n_reseeded)
{
    if (n_reseeded)
        *n_reseeded = 0;
    VMF__OPTS_OR_DEFAULTS(vmf_em_opts, o);
    if (!s || !m || m->k != s->k || m->d != s->d)
        return vmf__error(VMF_EINVAL, "vmf_suffstats_mstep: mismatched or NULL arguments");
    if (!(o->min_mass >= 0.0 && isfinite(o->min_mass)))
        return vmf__error(VMF_EINVAL, "vmf_suffstats_mstep: min_mass = %g", o->min_mass);
    size_t k = s->k, d = s->d;
    double n;
    vmf_suffstats_totals(s, s->bs0, s->bs1, NULL, &n);
    int rc = vmf__mixture_mstep(m, s->bs0, s->bs1, &o->kappa, o->tied_kappa ? 1 : 0);
    if (rc != VMF_OK)
        return rc;
    /* The re-seeding rule of em.c, with the streamed worst rows as candidates. */
    size_t n_low = 0, n_ok = 0;
    for (size_t c = 0; c < k; c++) {
        if (s->bs0[c] < o->min_mass)
            n_low++;
        else
            s->kscr[n_ok++] = m->kappas[c];
    }
    if (n_low == 0)
        return VMF_OK;
    double med = 0.0;
    if (n_ok > 0) {
        qsort(s->kscr, n_ok, sizeof *s->kscr, cmp_double);
        med = n_ok % 2 ? s->kscr[n_ok / 2] : 0.5 * (s->kscr[n_ok / 2 - 1] + s->kscr[n_ok / 2]);
    }
    size_t q = 0;
    for (size_t c = 0; c < k && q < s->nworst && q < n_low; c++) {
        if (!(s->bs0[c] < o->min_mass))
            continue;
        memcpy(m->means + c * d, s->wrows + s->slot[q] * d, d * sizeof *m->means);
        q++;
        if (n_ok > 0)
            m->kappas[c] = med;
        m->weights[c] = 1.0 / n;
    }
    double wsum = 0.0;
    for (size_t c = 0; c < k; c++)
        wsum += m->weights[c];
    for (size_t c = 0; c < k; c++)
        m->weights[c] /= wsum;
    vmf__mixture_refresh(m);
    if (n_reseeded)
        *n_reseeded = q;
    return VMF_OK;
}

/* ---- seeding ---- */

int vmf_em_init_mixture(const vmf_em_opts *o, const float *sample, size_t m, size_t d, vmf_rng *rng,
                        vmf_mixture **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_em_init_mixture: out is NULL");
    *out = NULL;
    VMF__OPTS_OR_DEFAULTS(vmf_em_opts, o);
    size_t k = o->n_components;
    if (k == 0 || d < 2)
        return vmf__error(VMF_EINVAL, "vmf_em_init_mixture: need K >= 1 and d >= 2");
    int rc;
    if (o->init == VMF_INIT_GIVEN) {
        if (!o->init_means)
            return vmf__error(VMF_EINVAL, "vmf_em_init_mixture: init = given without init_means");
        rc = vmf_rows_check(o->init_means, k, d);
    } else if (o->init == VMF_INIT_KMEANSPP || o->init == VMF_INIT_RANDOM) {
        if (!rng || !sample || m < k)
            return vmf__error(VMF_EINVAL,
                              "vmf_em_init_mixture: need an rng and a sample of >= K = %zu rows "
                              "(got %zu)",
                              k, m);
        rc = vmf_rows_check(sample, m, d);
    } else {
        return vmf__error(VMF_EINVAL, "vmf_em_init_mixture: unknown init %d", (int)o->init);
    }
    if (rc != VMF_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", vmf_last_error());
        return vmf__error(rc, "vmf_em_init_mixture: %s", msg);
    }
    vmf_mixture *mix;
    rc = vmf__mixture_alloc(k, d, &mix);
    if (rc != VMF_OK)
        return rc;
    if (o->init == VMF_INIT_KMEANSPP)
        rc = vmf__kmeanspp(sample, m, d, k, rng, mix->means);
    else if (o->init == VMF_INIT_RANDOM)
        rc = vmf__random_rows(sample, m, d, k, rng, mix->means);
    else
        memcpy(mix->means, o->init_means, k * d * sizeof *mix->means);
    if (rc != VMF_OK) {
        vmf_mixture_free(mix);
        return rc;
    }
    for (size_t c = 0; c < k; c++)
        mix->kappas[c] = 1.0;
    vmf__mixture_refresh(mix);
    *out = mix;
    return VMF_OK;
}

uint64_t vmf_row_key(uint64_t seed, uint64_t id)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15u + id;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- row sample ---- */

struct vmf_row_sample {
    size_t cap, d, count;
    uint64_t seed;
    uint64_t *keys, *ids; /* [cap]; a max-heap on (key, id) until finished */
    size_t *slot;         /* [cap] row storage index */
    float *rows;          /* [cap][d] storage */
    float *out;           /* [cap][d] finished rows, in id order */
    int finished;
};

void vmf_row_sample_free(vmf_row_sample *s)
{
    if (!s)
        return;
    vmf__free(s->keys);
    vmf__free(s->ids);
    vmf__free(s->slot);
    vmf__free(s->rows);
    vmf__free(s->out);
    vmf__free(s);
}

int vmf_row_sample_new(size_t cap, size_t d, uint64_t seed, vmf_row_sample **out)
{
    if (!out)
        return vmf__error(VMF_EINVAL, "vmf_row_sample_new: out is NULL");
    *out = NULL;
    size_t cd;
    if (cap == 0 || d == 0)
        return vmf__error(VMF_EINVAL, "vmf_row_sample_new: need cap >= 1 and d >= 1");
    if (vmf__mul_overflow(cap, d, &cd) != 0)
        return vmf__error(VMF_ENOMEM, "vmf_row_sample_new: %zu x %zu is too large", cap, d);
    vmf_row_sample *s = vmf__calloc(1, sizeof *s);
    if (!s)
        return vmf__error(VMF_ENOMEM, "vmf_row_sample_new: out of memory");
    s->cap = cap;
    s->d = d;
    s->seed = seed;
    s->keys = vmf__malloc_array(cap, sizeof *s->keys);
    s->ids = vmf__malloc_array(cap, sizeof *s->ids);
    s->slot = vmf__malloc_array(cap, sizeof *s->slot);
    s->rows = vmf__malloc_array(cd, sizeof *s->rows);
    if (!s->keys || !s->ids || !s->slot || !s->rows) {
        vmf_row_sample_free(s);
        return vmf__error(VMF_ENOMEM, "vmf_row_sample_new: out of memory for %zu x %zu", cap, d);
    }
    *out = s;
    return VMF_OK;
}

static int key_less(uint64_t ka, uint64_t ia, uint64_t kb, uint64_t ib)
{
    return ka < kb || (ka == kb && ia < ib);
}

static void heap_swap(vmf_row_sample *s, size_t a, size_t b)
{
    uint64_t t = s->keys[a];
    s->keys[a] = s->keys[b];
    s->keys[b] = t;
    t = s->ids[a];
    s->ids[a] = s->ids[b];
    s->ids[b] = t;
    size_t u = s->slot[a];
    s->slot[a] = s->slot[b];
    s->slot[b] = u;
}

static void sift_down(vmf_row_sample *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < s->count && key_less(s->keys[big], s->ids[big], s->keys[l], s->ids[l]))
            big = l;
        if (r < s->count && key_less(s->keys[big], s->ids[big], s->keys[r], s->ids[r]))
            big = r;
        if (big == i)
            return;
        heap_swap(s, i, big);
        i = big;
    }
}

int vmf_row_sample_offer(vmf_row_sample *s, const float *x, size_t rows, size_t d,
                         uint64_t first_id, const uint64_t *ids)
{
    if (!s || (rows > 0 && !x) || d != s->d)
        return vmf__error(VMF_EINVAL, "vmf_row_sample_offer: bad arguments");
    if (s->finished)
        return vmf__error(VMF_EINVAL, "vmf_row_sample_offer: the sample is finished");
    for (size_t i = 0; i < rows; i++) {
        uint64_t id = ids ? ids[i] : first_id + i;
        uint64_t key = vmf_row_key(s->seed, id);
        if (s->count < s->cap) {
            size_t q = s->count++;
            s->keys[q] = key;
            s->ids[q] = id;
            s->slot[q] = q;
            memcpy(s->rows + q * d, x + i * d, d * sizeof *x);
            while (q > 0) {
                size_t p = (q - 1) / 2;
                if (!key_less(s->keys[p], s->ids[p], s->keys[q], s->ids[q]))
                    break;
                heap_swap(s, p, q);
                q = p;
            }
        } else if (key_less(key, id, s->keys[0], s->ids[0])) {
            s->keys[0] = key;
            s->ids[0] = id;
            memcpy(s->rows + s->slot[0] * d, x + i * d, d * sizeof *x);
            sift_down(s, 0);
        }
    }
    return VMF_OK;
}

typedef struct id_pos {
    uint64_t id;
    size_t pos;
} id_pos;

static int cmp_by_id(const void *a, const void *b)
{
    uint64_t x = ((const id_pos *)a)->id, y = ((const id_pos *)b)->id;
    return (x > y) - (x < y);
}

void vmf_row_sample_finish(vmf_row_sample *s, uint64_t max_key)
{
    if (!s || s->finished)
        return;
    size_t kept = 0;
    for (size_t q = 0; q < s->count; q++) {
        if (s->keys[q] > max_key)
            continue;
        s->keys[kept] = s->keys[q];
        s->ids[kept] = s->ids[q];
        s->slot[kept] = s->slot[q];
        kept++;
    }
    s->count = kept;
    /* Sort by id through an index (ids are distinct), then lay the rows out in that order. */
    id_pos *order = vmf__malloc_array(kept ? kept : 1, sizeof *order);
    float *outrows = vmf__malloc_array(kept ? kept * s->d : 1, sizeof *outrows);
    uint64_t *k2 = vmf__malloc_array(kept ? kept : 1, sizeof *k2);
    uint64_t *i2 = vmf__malloc_array(kept ? kept : 1, sizeof *i2);
    if (!order || !outrows || !k2 || !i2) {
        /* Out of memory: leave the sample unfinished and empty rather than half-sorted. */
        vmf__free(order);
        vmf__free(outrows);
        vmf__free(k2);
        vmf__free(i2);
        s->count = 0;
        s->finished = 1;
        return;
    }
    for (size_t q = 0; q < kept; q++) {
        order[q].id = s->ids[q];
        order[q].pos = q;
    }
    qsort(order, kept, sizeof *order, cmp_by_id);
    for (size_t q = 0; q < kept; q++) {
        size_t p = order[q].pos;
        k2[q] = s->keys[p];
        i2[q] = s->ids[p];
        memcpy(outrows + q * s->d, s->rows + s->slot[p] * s->d, s->d * sizeof *outrows);
    }
    memcpy(s->keys, k2, kept * sizeof *k2);
    memcpy(s->ids, i2, kept * sizeof *i2);
    vmf__free(order);
    vmf__free(k2);
    vmf__free(i2);
    s->out = outrows;
    s->finished = 1;
}

void vmf_row_sample_get(const vmf_row_sample *s, size_t *count, const uint64_t **keys,
                        const uint64_t **ids, const float **rows)
{
    *count = s->count;
    if (keys)
        *keys = s->keys;
    if (ids)
        *ids = s->ids;
    if (rows)
        *rows = s->finished ? s->out : NULL;
}
