/*
 * stream.c - the 200-day stream: the synthetic generator, the file loader
 * with its validation, and the writer.
 *
 * The synthetic stream imitates production embeddings. Classes come in
 * families (group_size classes share a group direction, so they are
 * confusable); each class has 1..max_modes vMF modes around its mean; class
 * sizes follow a Zipf law over a random ranking of the classes; a fraction of
 * the classes first appears late; mode means may rotate slowly (drift). Every
 * class gets exactly its planned number of stream rows: its first row arrives
 * on its first day, the others on days uniform over [first day, days]. The
 * test set is balanced and drawn from the distribution of the last day (what
 * a deployment faces when the replay ends).
 */
#include "vmfsim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) snprintf(err, VMFSIM_ERR_SIZE, __VA_ARGS__)

void vmfsim_stream_free(vmfsim_stream *s)
{
    if (!s)
        return;
    free(s->labels);
    free(s->x);
    free(s->y);
    free(s->test_x);
    free(s->test_y);
    memset(s, 0, sizeof *s);
}

void vmfsim_gen_truth_free(vmfsim_gen_truth *t)
{
    if (!t)
        return;
    free(t->class_rows);
    free(t->first_day);
    free(t->n_modes);
    free(t->mode_means);
    free(t->mode_weights);
    free(t->stream_mode);
    memset(t, 0, sizeof *t);
}

size_t vmfsim_stream_day_rows(const vmfsim_stream *s, size_t t)
{
    if (t < 1 || t > VMFSIM_MAX_DAY)
        return 0;
    return s->day_off[t + 1] - s->day_off[t];
}

void vmfsim_gen_opts_init(vmfsim_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_classes = 40;
    o->dim = 64;
    o->days = 200;
    o->rows_per_day = 200;
    o->zipf = 1.0;
    o->min_class_rows = 40;
    o->max_modes = 3;
    o->kappa = 33.0;
    o->group_size = 4;
    o->class_spread = 1.0;
    o->mode_spread = 1.2;
    o->late_fraction = 0.2;
    o->late_from = 30;
    o->late_to = 120;
    o->drift = 0.0;
    o->test_per_class = 30;
    o->seed = 42;
}

/* Fills v [d] with a unit vector uniform on the sphere. */
static void unit_gaussian(vmf_rng *r, float *v, size_t d)
{
    double nrm;
    do {
        nrm = 0;
        for (size_t j = 0; j < d; j++) {
            double z = vmf_rng_normal(r);
            v[j] = (float)z;
            nrm += z * z;
        }
    } while (nrm < 1e-12);
    nrm = sqrt(nrm);
    for (size_t j = 0; j < d; j++)
        v[j] = (float)(v[j] / nrm);
}

/* out = normalize(base + spread * z / sqrt(d)), z standard normal; tmp [d] is scratch. */
static void perturb(vmf_rng *r, const float *base, double spread, float *out, double *tmp, size_t d)
{
    double nrm = 0, sd = spread / sqrt((double)d);
    for (size_t j = 0; j < d; j++) {
        tmp[j] = base[j] + sd * vmf_rng_normal(r);
        nrm += tmp[j] * tmp[j];
    }
    nrm = sqrt(nrm);
    for (size_t j = 0; j < d; j++)
        out[j] = (float)(tmp[j] / nrm);
}

/* A unit vector orthogonal to unit mu (Gram-Schmidt of a Gaussian draw). */
static void orthogonal_unit(vmf_rng *r, const float *mu, float *v, size_t d)
{
    for (;;) {
        unit_gaussian(r, v, d);
        double dot = 0;
        for (size_t j = 0; j < d; j++)
            dot += (double)v[j] * mu[j];
        double nrm = 0;
        for (size_t j = 0; j < d; j++) {
            double t = v[j] - dot * mu[j];
            v[j] = (float)t;
            nrm += t * t;
        }
        if (nrm > 1e-6) {
            nrm = sqrt(nrm);
            for (size_t j = 0; j < d; j++)
                v[j] = (float)(v[j] / nrm);
            return;
        }
    }
}

static size_t categorical(vmf_rng *r, const double *w, size_t m)
{
    double u = vmf_rng_uniform(r), acc = 0;
    for (size_t i = 0; i + 1 < m; i++) {
        acc += w[i];
        if (u < acc)
            return i;
    }
    return m - 1;
}

static int check_gen_opts(const vmfsim_gen_opts *o, char *err)
{
    if (o->n_classes < 2 || o->n_classes > 100000)
        return ERR("--classes must be in 2..100000 (got %zu)", o->n_classes), VMF_EINVAL;
    if (o->dim < 2 || o->dim > 4096)
        return ERR("--dim must be in 2..4096 (got %zu)", o->dim), VMF_EINVAL;
    if (o->days < 1 || o->days > VMFSIM_MAX_DAY)
        return ERR("--gen-days must be in 1..%d (got %zu)", VMFSIM_MAX_DAY, o->days), VMF_EINVAL;
    if (o->rows_per_day < 1 || o->rows_per_day > 1000000)
        return ERR("--rows-per-day must be in 1..1000000"), VMF_EINVAL;
    if (!(o->zipf >= 0 && o->zipf <= 10))
        return ERR("--zipf must be in [0, 10]"), VMF_EINVAL;
    if (o->min_class_rows < 1)
        return ERR("--min-class-rows must be >= 1"), VMF_EINVAL;
    if (o->max_modes < 1 || o->max_modes > 64)
        return ERR("--modes must be in 1..64"), VMF_EINVAL;
    if (!(o->kappa > 0 && o->kappa <= 1e6))
        return ERR("--kappa must be in (0, 1e6]"), VMF_EINVAL;
    if (o->group_size < 1)
        return ERR("--group-size must be >= 1"), VMF_EINVAL;
    if (!(o->class_spread >= 0 && o->class_spread <= 1e3) ||
        !(o->mode_spread >= 0 && o->mode_spread <= 1e3))
        return ERR("--class-spread and --mode-spread must be in [0, 1000]"), VMF_EINVAL;
    if (!(o->late_fraction >= 0 && o->late_fraction <= 1))
        return ERR("--late-fraction must be in [0, 1]"), VMF_EINVAL;
    if (o->late_from < 1 || o->late_to < o->late_from || o->late_to > o->days)
        return ERR("late days need 1 <= --late-from <= --late-to <= days (%zu..%zu, days %zu)",
                   o->late_from, o->late_to, o->days),
               VMF_EINVAL;
    if (!(o->drift >= 0 && o->drift <= 1))
        return ERR("--drift must be in [0, 1] radians per day"), VMF_EINVAL;
    if (o->test_per_class < 1 || o->test_per_class > 100000)
        return ERR("--test-per-class must be in 1..100000"), VMF_EINVAL;
    return VMF_OK;
}

/* Mean of mode m at day t: cos(drift t) mu + sin(drift t) v. */
static void mode_mean_at(const vmfsim_gen_opts *o, const float *mu, const float *v, size_t t,
                         float *out, size_t d)
{
    if (o->drift == 0.0) {
        memcpy(out, mu, d * sizeof *out);
        return;
    }
    double a = o->drift * (double)t, c = cos(a), s = sin(a), nrm = 0;
    for (size_t j = 0; j < d; j++) {
        double z = c * mu[j] + s * v[j];
        out[j] = (float)z;
        nrm += z * z;
    }
    nrm = sqrt(nrm);
    for (size_t j = 0; j < d; j++)
        out[j] = (float)(out[j] / nrm);
}

int vmfsim_stream_generate(const vmfsim_gen_opts *o, vmfsim_stream *out, vmfsim_gen_truth *truth,
                           char *err)
{
    memset(out, 0, sizeof *out);
    if (truth)
        memset(truth, 0, sizeof *truth);
    int rc = check_gen_opts(o, err);
    if (rc)
        return rc;
    const size_t C = o->n_classes, d = o->dim, M = o->max_modes;
    vmf_rng rng;
    vmf_rng_seed(&rng, o->seed);

    size_t *rank = malloc(C * sizeof *rank), *late = malloc(C * sizeof *late);
    size_t *crows = calloc(C, sizeof *crows), *nmodes = calloc(C, sizeof *nmodes);
    int16_t *first = calloc(C, sizeof *first);
    double *mw = calloc(C * M, sizeof *mw);
    float *mu = calloc(C * M * d, sizeof *mu), *mv = calloc(C * M * d, sizeof *mv);
    size_t n_groups = (C + o->group_size - 1) / o->group_size;
    float *groups = malloc(n_groups * d * sizeof *groups), *center = malloc(d * sizeof *center);
    float *mean = malloc(d * sizeof *mean);
    double *scratch = malloc(d * sizeof *scratch);
    int32_t *row_c = NULL, *row_m = NULL, *tmp_c = NULL, *tmp_m = NULL;
    int16_t *row_day = NULL, *tmp_day = NULL;
    rc = VMF_ENOMEM;
    if (!rank || !late || !crows || !nmodes || !first || !mw || !mu || !mv || !groups || !center ||
        !mean) {
        ERR("out of memory generating the stream");
        goto fail;
    }

    /* Class sizes: Zipf over a random ranking. */
    for (size_t c = 0; c < C; c++)
        rank[c] = late[c] = c;
    for (size_t i = C; i > 1; i--) {
        size_t j = (size_t)vmf_rng_below(&rng, i), t = rank[i - 1];
        rank[i - 1] = rank[j];
        rank[j] = t;
    }
    double wsum = 0;
    for (size_t r = 0; r < C; r++)
        wsum += pow((double)(r + 1), -o->zipf);
    size_t total = o->rows_per_day * o->days, n_stream = 0;
    for (size_t c = 0; c < C; c++) {
        double share = pow((double)(rank[c] + 1), -o->zipf) / wsum;
        size_t nc = (size_t)llround(share * (double)total);
        crows[c] = nc < o->min_class_rows ? o->min_class_rows : nc;
        n_stream += crows[c];
    }
    /* Late classes: a random subset. */
    for (size_t i = C; i > 1; i--) {
        size_t j = (size_t)vmf_rng_below(&rng, i), t = late[i - 1];
        late[i - 1] = late[j];
        late[j] = t;
    }
    size_t n_late = (size_t)llround(o->late_fraction * (double)C);
    for (size_t c = 0; c < C; c++)
        first[c] = 1;
    for (size_t i = 0; i < n_late; i++)
        first[late[i]] = (int16_t)(o->late_from +
                                   vmf_rng_below(&rng, (uint64_t)(o->late_to - o->late_from + 1)));

    /* Geometry: group directions, class means, mode means and drift directions. */
    for (size_t g = 0; g < n_groups; g++)
        unit_gaussian(&rng, groups + g * d, d);
    for (size_t c = 0; c < C; c++) {
        perturb(&rng, groups + (c / o->group_size) * d, o->class_spread, center, scratch, d);
        nmodes[c] = 1 + (size_t)vmf_rng_below(&rng, M);
        double s = 0;
        for (size_t m = 0; m < nmodes[c]; m++) {
            perturb(&rng, center, nmodes[c] > 1 ? o->mode_spread : 0.0, mu + (c * M + m) * d,
                    scratch, d);
            orthogonal_unit(&rng, mu + (c * M + m) * d, mv + (c * M + m) * d, d);
            mw[c * M + m] = vmf_rng_gamma(&rng, 4.0);
            s += mw[c * M + m];
        }
        for (size_t m = 0; m < nmodes[c]; m++)
            mw[c * M + m] /= s;
    }

    /* Stream rows: (class, mode, day), shuffled, then stably sorted by day. */
    row_c = malloc(n_stream * sizeof *row_c);
    row_m = malloc(n_stream * sizeof *row_m);
    row_day = malloc(n_stream * sizeof *row_day);
    tmp_c = malloc(n_stream * sizeof *tmp_c);
    tmp_m = malloc(n_stream * sizeof *tmp_m);
    tmp_day = malloc(n_stream * sizeof *tmp_day);
    out->x = malloc(n_stream * d * sizeof *out->x);
    out->y = malloc(n_stream * sizeof *out->y);
    out->n_test = C * o->test_per_class;
    out->test_x = malloc(out->n_test * d * sizeof *out->test_x);
    out->test_y = malloc(out->n_test * sizeof *out->test_y);
    out->labels = malloc(C * sizeof *out->labels);
    if (!row_c || !row_m || !row_day || !tmp_c || !tmp_m || !tmp_day || !out->x || !out->y ||
        !out->test_x || !out->test_y || !out->labels) {
        ERR("out of memory for %zu stream rows of dimension %zu", n_stream, d);
        goto fail;
    }
    size_t r = 0;
    for (size_t c = 0; c < C; c++) {
        size_t span = o->days - (size_t)first[c] + 1;
        for (size_t i = 0; i < crows[c]; i++, r++) {
            row_c[r] = (int32_t)c;
            row_m[r] = (int32_t)categorical(&rng, mw + c * M, nmodes[c]);
            row_day[r] =
                (int16_t)(i == 0 ? first[c] : first[c] + (int16_t)vmf_rng_below(&rng, span));
        }
    }
    for (size_t i = n_stream; i > 1; i--) {
        size_t j = (size_t)vmf_rng_below(&rng, i);
        int32_t tc = row_c[i - 1], tm = row_m[i - 1];
        int16_t td = row_day[i - 1];
        row_c[i - 1] = row_c[j], row_m[i - 1] = row_m[j], row_day[i - 1] = row_day[j];
        row_c[j] = tc, row_m[j] = tm, row_day[j] = td;
    }
    size_t cnt[VMFSIM_MAX_DAY + 2] = {0};
    for (size_t i = 0; i < n_stream; i++)
        cnt[row_day[i]]++;
    out->day_off[0] = out->day_off[1] = 0;
    for (size_t t = 1; t <= VMFSIM_MAX_DAY; t++)
        out->day_off[t + 1] = out->day_off[t] + cnt[t];
    size_t pos[VMFSIM_MAX_DAY + 2];
    memcpy(pos, out->day_off, sizeof pos);
    for (size_t i = 0; i < n_stream; i++) {
        size_t p = pos[row_day[i]]++;
        tmp_c[p] = row_c[i], tmp_m[p] = row_m[i], tmp_day[p] = row_day[i];
    }

    out->d = d;
    out->n_classes = C;
    out->n_stream = n_stream;
    for (size_t c = 0; c < C; c++)
        out->labels[c] = (int32_t)c;
    for (size_t i = 0; i < n_stream; i++) {
        size_t c = (size_t)tmp_c[i], m = (size_t)tmp_m[i];
        mode_mean_at(o, mu + (c * M + m) * d, mv + (c * M + m) * d, (size_t)tmp_day[i], mean, d);
        if ((rc = vmf_sample_vmf(mean, d, o->kappa, 1, &rng, out->x + i * d)) != VMF_OK) {
            ERR("sampling failed: %s", vmf_last_error());
            goto fail;
        }
        out->y[i] = (int32_t)c;
    }
    for (size_t c = 0, i = 0; c < C; c++) {
        for (size_t k = 0; k < o->test_per_class; k++, i++) {
            size_t m = categorical(&rng, mw + c * M, nmodes[c]);
            mode_mean_at(o, mu + (c * M + m) * d, mv + (c * M + m) * d, o->days, mean, d);
            if ((rc = vmf_sample_vmf(mean, d, o->kappa, 1, &rng, out->test_x + i * d)) != VMF_OK) {
                ERR("sampling failed: %s", vmf_last_error());
                goto fail;
            }
            out->test_y[i] = (int32_t)c;
        }
    }

    if (truth) {
        truth->n_classes = C;
        truth->d = d;
        truth->max_modes = M;
        truth->class_rows = crows, crows = NULL;
        truth->first_day = first, first = NULL;
        truth->n_modes = nmodes, nmodes = NULL;
        truth->mode_means = mu, mu = NULL;
        truth->mode_weights = mw, mw = NULL;
        truth->stream_mode = tmp_m, tmp_m = NULL;
    }
    rc = VMF_OK;
fail:
    if (rc)
        vmfsim_stream_free(out);
    free(rank), free(late), free(crows), free(nmodes), free(first), free(mw), free(mu), free(mv);
    free(groups), free(center), free(mean), free(scratch);
    free(row_c), free(row_m), free(row_day), free(tmp_c), free(tmp_m), free(tmp_day);
    return rc;
}

/* ------------------------------------------------------------------ loader */

static int read_part(const char *prefix, const char *part, vmf_array *a, char *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s.%s.npy", prefix, part) >= sizeof path)
        return ERR("stream prefix too long"), VMF_EINVAL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ERR("cannot open %.300s: %s", path, strerror(errno)), VMF_EIO;
    fclose(f);
    int rc = vmf_npy_read(path, a);
    if (rc == VMF_EIO)
        return ERR("cannot read %.300s: %s", path, vmf_last_error()), VMF_EIO;
    if (rc)
        return ERR("%.300s: %s", path, vmf_last_error()), VMF_EFORMAT;
    return VMF_OK;
}

static int is_int_dtype(vmf_dtype t)
{
    return t == VMF_DTYPE_I16 || t == VMF_DTYPE_I32 || t == VMF_DTYPE_I64 || t == VMF_DTYPE_U8;
}

static int64_t int_at(const vmf_array *a, size_t i)
{
    switch (a->dtype) {
    case VMF_DTYPE_I16:
        return ((const int16_t *)a->data)[i];
    case VMF_DTYPE_I32:
        return ((const int32_t *)a->data)[i];
    case VMF_DTYPE_I64:
        return ((const int64_t *)a->data)[i];
    default:
        return ((const uint8_t *)a->data)[i];
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Dense index of label v in sorted uniq[n] (binary search), or -1. */
static int32_t dense_of(const int64_t *uniq, size_t n, int64_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uniq[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && uniq[lo] == v ? (int32_t)lo : -1;
}

int vmfsim_stream_load(const char *prefix, vmfsim_stream *out, char *err)
{
    memset(out, 0, sizeof *out);
    vmf_array ax = {0}, ay = {0}, as = {0}, ad = {0};
    float *x = NULL;
    int64_t *uniq = NULL;
    size_t n = 0, d = 0;
    int rc;
    if ((rc = read_part(prefix, "X", &ax, err)) || (rc = read_part(prefix, "y", &ay, err)) ||
        (rc = read_part(prefix, "split", &as, err)) || (rc = read_part(prefix, "day", &ad, err)))
        goto fail;
    rc = VMF_EFORMAT;
    if (ax.ndim != 2 || (ax.dtype != VMF_DTYPE_F32 && ax.dtype != VMF_DTYPE_F64)) {
        ERR("%s.X.npy must be a 2-D float32 array (got %zu-D %s)", prefix, ax.ndim,
            vmf_dtype_name(ax.dtype));
        goto fail;
    }
    n = ax.shape[0];
    d = ax.shape[1];
    if (n == 0 || d < 2) {
        ERR("%s.X.npy has shape (%zu, %zu): need rows and d >= 2", prefix, n, d);
        goto fail;
    }
    const struct {
        const vmf_array *a;
        const char *name;
    } parts[3] = {{&ay, "y"}, {&as, "split"}, {&ad, "day"}};
    for (int i = 0; i < 3; i++) {
        const vmf_array *a = parts[i].a;
        if (a->ndim != 1 || !is_int_dtype(a->dtype)) {
            ERR("%s.%s.npy must be a 1-D integer array (got %zu-D %s)", prefix, parts[i].name,
                a->ndim, vmf_dtype_name(a->dtype));
            goto fail;
        }
        if (a->count != n) {
            ERR("row counts differ: %s.X.npy has %zu rows, %s.%s.npy has %zu", prefix, n, prefix,
                parts[i].name, a->count);
            goto fail;
        }
    }
    size_t n_stream = 0, n_test = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = int_at(&as, i), t = int_at(&ad, i), y = int_at(&ay, i);
        if (s != 0 && s != 1) {
            ERR("row %zu: split is %lld, must be 0 (stream) or 1 (test)", i, (long long)s);
            goto fail;
        }
        if (y < INT32_MIN || y > INT32_MAX) {
            ERR("row %zu: label %lld does not fit int32", i, (long long)y);
            goto fail;
        }
        if (s == 0 && (t < 1 || t > VMFSIM_MAX_DAY)) {
            ERR("row %zu: stream row on day %lld, days must be 1..%d", i, (long long)t,
                VMFSIM_MAX_DAY);
            goto fail;
        }
        if (s == 1 && t != -1) {
            ERR("row %zu: test row with day %lld, test rows must have day -1", i, (long long)t);
            goto fail;
        }
        if (s == 0)
            n_stream++;
        else
            n_test++;
    }
    if (n_stream == 0) {
        ERR("%s: the stream is empty (no row has split 0)", prefix);
        goto fail;
    }
    if (n_test == 0) {
        ERR("%s: the test set is empty (no row has split 1)", prefix);
        goto fail;
    }
    size_t xn = 0, xd = 0;
    if ((rc = vmf_array_to_f32(&ax, &x, &xn, &xd)) != VMF_OK) {
        ERR("%s.X.npy: %s", prefix, vmf_last_error());
        rc = rc == VMF_ENOMEM ? VMF_ENOMEM : VMF_EFORMAT;
        goto fail;
    }
    vmf_array_free(&ax); /* x holds the rows now */
    rc = VMF_EFORMAT;
    if (vmf_rows_check(x, n, d) != VMF_OK) {
        ERR("%s.X.npy: %s (rows must be finite and L2-normalized)", prefix, vmf_last_error());
        goto fail;
    }

    /* Dense classes: sorted unique labels of the stream. */
    uniq = malloc(n_stream * sizeof *uniq);
    if (!uniq) {
        rc = VMF_ENOMEM;
        ERR("out of memory");
        goto fail;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        if (int_at(&as, i) == 0)
            uniq[k++] = int_at(&ay, i);
    qsort(uniq, n_stream, sizeof *uniq, cmp_i64);
    size_t C = 0;
    for (size_t i = 0; i < n_stream; i++)
        if (C == 0 || uniq[C - 1] != uniq[i])
            uniq[C++] = uniq[i];
    for (size_t i = 0; i < n; i++) {
        if (int_at(&as, i) == 1 && dense_of(uniq, C, int_at(&ay, i)) < 0) {
            ERR("row %zu: test class %lld never appears in the stream", i,
                (long long)int_at(&ay, i));
            goto fail;
        }
    }

    rc = VMF_ENOMEM;
    out->d = d;
    out->n_classes = C;
    out->n_stream = n_stream;
    out->n_test = n_test;
    out->labels = malloc(C * sizeof *out->labels);
    out->x = malloc(n_stream * d * sizeof *out->x);
    out->y = malloc(n_stream * sizeof *out->y);
    out->test_x = malloc(n_test * d * sizeof *out->test_x);
    out->test_y = malloc(n_test * sizeof *out->test_y);
    if (!out->labels || !out->x || !out->y || !out->test_x || !out->test_y) {
        ERR("out of memory for the stream (%zu x %zu)", n, d);
        goto fail;
    }
    for (size_t c = 0; c < C; c++)
        out->labels[c] = (int32_t)uniq[c];
    size_t cnt[VMFSIM_MAX_DAY + 2] = {0};
    for (size_t i = 0; i < n; i++)
        if (int_at(&as, i) == 0)
            cnt[int_at(&ad, i)]++;
    out->day_off[0] = out->day_off[1] = 0;
    for (size_t t = 1; t <= VMFSIM_MAX_DAY; t++)
        out->day_off[t + 1] = out->day_off[t] + cnt[t];
    size_t pos[VMFSIM_MAX_DAY + 2];
    memcpy(pos, out->day_off, sizeof pos);
    for (size_t i = 0, k = 0; i < n; i++) {
        int32_t c = dense_of(uniq, C, int_at(&ay, i));
        if (int_at(&as, i) == 0) {
            size_t p = pos[int_at(&ad, i)]++;
            memcpy(out->x + p * d, x + i * d, d * sizeof *x);
            out->y[p] = c;
        } else {
            memcpy(out->test_x + k * d, x + i * d, d * sizeof *x);
            out->test_y[k++] = c;
        }
    }
    rc = VMF_OK;
fail:
    if (rc)
        vmfsim_stream_free(out);
    vmf_array_free(&ax), vmf_array_free(&ay), vmf_array_free(&as), vmf_array_free(&ad);
    free(x);
    free(uniq);
    return rc;
}

/* ------------------------------------------------------------------ writer */

static int write_part(const char *prefix, const char *part, vmf_dtype t, size_t ndim, size_t n,
                      size_t d, void *data, char *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s.%s.npy", prefix, part) >= sizeof path)
        return ERR("output prefix too long"), VMF_EINVAL;
    vmf_array a = {
        .dtype = t, .ndim = ndim, .shape = {n, d}, .count = ndim == 2 ? n * d : n, .data = data};
    int rc = vmf_npy_write(path, &a);
    if (rc)
        return ERR("cannot write %.300s: %s", path, vmf_last_error()), VMF_EIO;
    return VMF_OK;
}

int vmfsim_stream_save(const vmfsim_stream *s, const char *prefix, char *err)
{
    size_t n = s->n_stream + s->n_test, d = s->d;
    float *x = malloc(n * d * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    uint8_t *split = malloc(n);
    int16_t *day = malloc(n * sizeof *day);
    int rc = VMF_ENOMEM;
    if (!x || !y || !split || !day) {
        ERR("out of memory");
        goto done;
    }
    memcpy(x, s->x, s->n_stream * d * sizeof *x);
    memcpy(x + s->n_stream * d, s->test_x, s->n_test * d * sizeof *x);
    for (size_t t = 1; t <= VMFSIM_MAX_DAY; t++) {
        for (size_t i = s->day_off[t]; i < s->day_off[t + 1]; i++) {
            y[i] = s->labels[s->y[i]];
            split[i] = 0;
            day[i] = (int16_t)t;
        }
    }
    for (size_t i = 0; i < s->n_test; i++) {
        y[s->n_stream + i] = s->labels[s->test_y[i]];
        split[s->n_stream + i] = 1;
        day[s->n_stream + i] = -1;
    }
    if ((rc = write_part(prefix, "X", VMF_DTYPE_F32, 2, n, d, x, err)) ||
        (rc = write_part(prefix, "y", VMF_DTYPE_I32, 1, n, 0, y, err)) ||
        (rc = write_part(prefix, "split", VMF_DTYPE_U8, 1, n, 0, split, err)) ||
        (rc = write_part(prefix, "day", VMF_DTYPE_I16, 1, n, 0, day, err)))
        goto done;
    rc = VMF_OK;
done:
    free(x), free(y), free(split), free(day);
    return rc;
}
