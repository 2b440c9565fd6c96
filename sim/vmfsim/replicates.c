/*
 * replicates.c - how sure the replay is. `vmfsim run --replicates R` replays
 * R - 1 more times, each with a fresh draw of what is random in a
 * deployment's record:
 *
 *   - the order of the rows within each day (a day's batch has no natural
 *     order, and the online families see it in sequence);
 *   - the test rows: a bootstrap sample (n_test draws with replacement), so
 *     the interval includes the sampling error of a finite test set;
 *   - for the synthetic stream, the stream itself (generated with seed + r);
 *   - the models' own seeds (seed + r).
 *
 * Speed (vmfsim_reps_run). Replicates are independent, so they run in
 * --jobs forked processes at once, taking replicate numbers from a shared
 * counter and writing their curves into shared memory; each replicate
 * depends only on its number (seed + r), never on which process ran it or
 * how many there were. For a file stream the families whose replay depends
 * only on the set of rows seen each day (logreg and svm:
 * vmfsim_family_order_free) are not replayed again: the within-day order
 * changes nothing for them but floating-point summation order, and they
 * have no seed, so their per-day, per-test-row ranks from the main run are
 * re-scored on each replicate's bootstrap. gmm (k-means++ seeding), knn
 * (reservoir), rf and xgboost (subsampling) depend on the seed and the row
 * order, and vmfmm on the order: they are replayed.
 *
 * With more than one process, each runs OpenBLAS on one thread: the
 * processes already fill the cores, and OpenBLAS's spinning helper threads
 * would only compete with the other processes for them.
 *
 * Replicate 0 is the main run (daily.csv and the point values of
 * summary.json). For each model the summary gives the median and the 90 %
 * interval (the 5th and 95th percentiles, linear interpolation between order
 * statistics) of the final top-1/top-4, the peak top-1 and the time-to-peak
 * at each tolerance; the plot draws the per-day 5th-95th percentile band of
 * top-1 and top-4 around the main curve.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "vmfsim.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int vmfsim_reps_new(size_t n, size_t n_models, size_t days, vmfsim_reps **out)
{
    *out = NULL;
    vmfsim_reps *r = calloc(1, sizeof *r);
    if (!r)
        return VMF_ENOMEM;
    r->n = n;
    r->n_models = n_models;
    r->days = days;
    r->final1 = calloc(n_models * n, sizeof *r->final1);
    r->final4 = calloc(n_models * n, sizeof *r->final4);
    r->peak1 = calloc(n_models * n, sizeof *r->peak1);
    r->ttp = calloc(n_models * VMFSIM_N_EPS * n, sizeof *r->ttp);
    r->top1 = calloc(n_models * days * n, sizeof *r->top1);
    r->top4 = calloc(n_models * days * n, sizeof *r->top4);
    if (!r->final1 || !r->final4 || !r->peak1 || !r->ttp || !r->top1 || !r->top4) {
        vmfsim_reps_free(r);
        return VMF_ENOMEM;
    }
    *out = r;
    return VMF_OK;
}

void vmfsim_reps_free(vmfsim_reps *r)
{
    if (!r)
        return;
    free(r->final1), free(r->final4), free(r->peak1), free(r->ttp), free(r->top1), free(r->top4);
    free(r);
}

void vmfsim_reps_record(vmfsim_reps *r, size_t rep, const vmfsim_curve *c)
{
    const size_t n = r->n, days = r->days;
    for (size_t m = 0; m < r->n_models; m++) {
        const vmfsim_curve *v = &c[m];
        size_t pd;
        r->final1[m * n + rep] = v->top1[days - 1];
        r->final4[m * n + rep] = v->top4[days - 1];
        vmfsim_peak(v->top1, days, &r->peak1[m * n + rep], &pd);
        for (int e = 0; e < VMFSIM_N_EPS; e++)
            r->ttp[(m * VMFSIM_N_EPS + (size_t)e) * n + rep] =
                (double)vmfsim_time_to_peak(v->top1, days, vmfsim_eps[e]);
        for (size_t t = 0; t < days; t++) {
            r->top1[(m * days + t) * n + rep] = v->top1[t];
            r->top4[(m * days + t) * n + rep] = v->top4[t];
        }
    }
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double vmfsim_quantile(const double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, dbl_cmp);
    double h = p * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    double q = s[lo] + (h - (double)lo) * (s[hi] - s[lo]);
    free(s);
    return q;
}

int vmfsim_stream_perturb(const vmfsim_stream *s, uint64_t seed, vmfsim_stream *out, char *err)
{
    return vmfsim_stream_perturb_boot(s, seed, out, NULL, err);
}

int vmfsim_stream_perturb_boot(const vmfsim_stream *s, uint64_t seed, vmfsim_stream *out,
                               size_t *boot, char *err)
{
    memset(out, 0, sizeof *out);
    const size_t d = s->d;
    out->d = d;
    out->n_classes = s->n_classes;
    out->n_stream = s->n_stream;
    out->n_test = s->n_test;
    memcpy(out->day_off, s->day_off, sizeof out->day_off);
    out->labels = malloc(s->n_classes * sizeof *out->labels);
    out->x = malloc(s->n_stream * d * sizeof *out->x);
    out->y = malloc(s->n_stream * sizeof *out->y);
    out->test_x = malloc(s->n_test * d * sizeof *out->test_x);
    out->test_y = malloc(s->n_test * sizeof *out->test_y);
    size_t *perm = malloc((s->n_stream ? s->n_stream : 1) * sizeof *perm);
    if (!out->labels || !out->x || !out->y || !out->test_x || !out->test_y || !perm) {
        free(perm);
        vmfsim_stream_free(out);
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    }
    memcpy(out->labels, s->labels, s->n_classes * sizeof *out->labels);
    vmf_rng rng;
    vmf_rng_seed(&rng, seed);
    for (size_t i = 0; i < s->n_stream; i++)
        perm[i] = i;
    /* Fisher-Yates within each day. */
    for (size_t t = 1; t <= VMFSIM_MAX_DAY; t++) {
        size_t a = s->day_off[t], b = s->day_off[t + 1];
        for (size_t i = b; i > a + 1; i--) {
            size_t j = a + (size_t)vmf_rng_below(&rng, (uint64_t)(i - a));
            size_t tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
    }
    for (size_t i = 0; i < s->n_stream; i++) {
        memcpy(out->x + i * d, s->x + perm[i] * d, d * sizeof *out->x);
        out->y[i] = s->y[perm[i]];
    }
    for (size_t i = 0; i < s->n_test; i++) {
        size_t j = (size_t)vmf_rng_below(&rng, (uint64_t)s->n_test);
        if (boot)
            boot[i] = j;
        memcpy(out->test_x + i * d, s->test_x + j * d, d * sizeof *out->test_x);
        out->test_y[i] = s->test_y[j];
    }
    free(perm);
    return VMF_OK;
}

void vmfsim_reps_bands(const vmfsim_reps *r, vmfsim_curve *c)
{
    const size_t n = r->n, days = r->days;
    for (size_t m = 0; m < r->n_models; m++) {
        double *b = malloc(4 * days * sizeof *b);
        if (!b)
            continue; /* no band: the plot draws the curve alone */
        for (size_t t = 0; t < days; t++) {
            const double *v1 = r->top1 + (m * days + t) * n, *v4 = r->top4 + (m * days + t) * n;
            b[t] = vmfsim_quantile(v1, n, 0.05);
            b[days + t] = vmfsim_quantile(v1, n, 0.95);
            b[2 * days + t] = vmfsim_quantile(v4, n, 0.05);
            b[3 * days + t] = vmfsim_quantile(v4, n, 0.95);
        }
        free(c[m].band);
        c[m].band = b;
    }
}

int vmfsim_family_order_free(int family)
{
    return family == VMFSIM_LOGREG || family == VMFSIM_SVM;
}

double vmfsim_recall_from_ranks(const unsigned char *ranks, const int32_t *y, size_t n_classes,
                                const size_t *boot, size_t n, size_t k)
{
    uint64_t *cnt = calloc(2 * (n_classes ? n_classes : 1), sizeof *cnt);
    if (!cnt)
        return NAN;
    uint64_t *hit = cnt + n_classes;
    for (size_t i = 0; i < n; i++) {
        size_t j = boot[i];
        cnt[y[j]]++;
        hit[y[j]] += ranks[j] < k;
    }
    double sum = 0.0;
    size_t present = 0;
    for (size_t c = 0; c < n_classes; c++)
        if (cnt[c]) {
            sum += (double)hit[c] / (double)cnt[c];
            present++;
        }
    free(cnt);
    return present ? sum / (double)present : 0.0;
}

/* What the workers share: the next replicate to take, and per replicate its status and curves. */
typedef struct reps_shm {
    atomic_size_t next;
    size_t n, n_models, days;
    /* followed by int status [n], char err [n][VMFSIM_ERR_SIZE], double top [n][2][n_models][days]
     */
} reps_shm;

static int *shm_status(reps_shm *h)
{
    return (int *)(h + 1);
}

static char *shm_err(reps_shm *h, size_t r)
{
    return (char *)(shm_status(h) + h->n) + r * VMFSIM_ERR_SIZE;
}

static double *shm_top(reps_shm *h, size_t r)
{
    char *base = shm_err(h, h->n);
    size_t pad = (size_t)(base - (char *)h) % sizeof(double);
    double *top = (double *)(base + (pad ? sizeof(double) - pad : 0));
    return top + r * 2 * h->n_models * h->days;
}

/* Replays replicate r (>= 1) and writes its top-1 and top-4 curves into the shared block. */
static int run_one(const vmfsim_stream *s, const vmfsim_replay_opts *ro, const vmfsim_curve *cv,
                   const vmfsim_reps_opts *o, size_t r, reps_shm *h, char *err)
{
    const uint64_t seed = o->seed + r;
    const size_t days = ro->days, nm = ro->n_models;
    vmfsim_stream base, rs;
    int own_base = 0, rc;
    memset(&base, 0, sizeof base);
    if (o->gen) {
        vmfsim_gen_opts g = *o->gen;
        g.seed = seed;
        if ((rc = vmfsim_stream_generate(&g, &base, NULL, err)))
            return rc;
        own_base = 1;
    }
    const vmfsim_stream *src = own_base ? &base : s;
    size_t *boot = malloc((src->n_test ? src->n_test : 1) * sizeof *boot);
    if (!boot) {
        if (own_base)
            vmfsim_stream_free(&base);
        return snprintf(err, VMFSIM_ERR_SIZE, "out of memory"), VMF_ENOMEM;
    }
    rc = vmfsim_stream_perturb_boot(src, seed ^ 0x5bd1e995u, &rs, boot, err);
    if (rc) {
        free(boot);
        if (own_base)
            vmfsim_stream_free(&base);
        return rc;
    }
    /* The families to replay, and where each lands. */
    int fam[VMFSIM_MAX_MODEL];
    size_t slot[VMFSIM_MAX_MODEL], nf = 0;
    for (size_t m = 0; m < nm; m++) {
        slot[m] = SIZE_MAX;
        if (o->gen || !vmfsim_family_order_free(ro->families[m]) || !cv[m].ranks) {
            slot[m] = nf;
            fam[nf++] = ro->families[m];
        }
    }
    vmfsim_curve *c = NULL;
    if (nf > 0) {
        vmfsim_replay_opts ro2 = *ro;
        ro2.families = fam;
        ro2.n_models = nf;
        ro2.cfg.seed = seed;
        ro2.cfg.via_url = NULL;
        ro2.progress = 0;
        ro2.record_ranks = 0;
        rc = vmfsim_replay(&rs, &ro2, &c, err);
    }
    if (rc == VMF_OK) {
        double *top = shm_top(h, r);
        for (size_t m = 0; m < nm; m++) {
            double *t1 = top + m * days, *t4 = top + (nm + m) * days;
            if (slot[m] != SIZE_MAX) {
                memcpy(t1, c[slot[m]].top1, days * sizeof *t1);
                memcpy(t4, c[slot[m]].top4, days * sizeof *t4);
                continue;
            }
            for (size_t t = 0; t < days; t++) {
                const unsigned char *rk = cv[m].ranks + t * s->n_test;
                t1[t] = vmfsim_recall_from_ranks(rk, s->test_y, s->n_classes, boot, s->n_test, 1);
                t4[t] = vmfsim_recall_from_ranks(rk, s->test_y, s->n_classes, boot, s->n_test,
                                                 VMFSIM_TOPK);
            }
        }
    }
    vmfsim_curves_free(c, nf);
    vmfsim_stream_free(&rs);
    if (own_base)
        vmfsim_stream_free(&base);
    free(boot);
    return rc;
}

/* Takes replicate numbers until none is left. */
static void worker(const vmfsim_stream *s, const vmfsim_replay_opts *ro, const vmfsim_curve *cv,
                   const vmfsim_reps_opts *o, reps_shm *h, pid_t parent)
{
    for (;;) {
        if (parent && getppid() != parent) /* the run was killed: nobody wants the rest */
            return;
        size_t r = atomic_fetch_add(&h->next, 1);
        if (r >= h->n)
            return;
        if (o->progress)
            fprintf(stderr, "vmfsim: replicate %zu/%zu\n", r + 1, h->n);
        char *e = shm_err(h, r);
        e[0] = '\0';
        int rc = run_one(s, ro, cv, o, r, h, e);
        shm_status(h)[r] = rc ? rc : 1;
    }
}

int vmfsim_reps_run(const vmfsim_stream *s, const vmfsim_replay_opts *ro, const vmfsim_curve *cv,
                    const vmfsim_reps_opts *o, vmfsim_reps *reps, char *err)
{
    const size_t n = o->n, nm = ro->n_models, days = ro->days;
    if (n < 2 || o->jobs < 1 || reps->n != n || reps->n_models != nm || reps->days != days)
        return snprintf(err, VMFSIM_ERR_SIZE, "replicates: bad options"), VMF_EINVAL;
    vmfsim_reps_record(reps, 0, cv);
    const size_t bytes = sizeof(reps_shm) + n * sizeof(int) + n * VMFSIM_ERR_SIZE + sizeof(double) +
                         n * 2 * nm * days * sizeof(double);
    reps_shm *h = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (h == MAP_FAILED)
        return snprintf(err, VMFSIM_ERR_SIZE, "replicates: shared memory: %s", strerror(errno)),
               VMF_ENOMEM;
    memset(h, 0, bytes);
    atomic_init(&h->next, 1);
    h->n = n;
    h->n_models = nm;
    h->days = days;
    /* Children replay while this process does too; they leave with _exit (no atexit, no stdio). */
    size_t jobs = o->jobs < n - 1 ? o->jobs : n - 1;
    pid_t pids[256];
    size_t nk = 0;
    if (jobs > 1)
        openblas_set_num_threads(1);
    fflush(NULL);
    const pid_t self = getpid();
    for (size_t j = 1; j < jobs && nk < 256; j++) {
        pid_t p = fork();
        if (p == 0) {
            worker(s, ro, cv, o, h, self);
            _exit(0);
        }
        if (p > 0)
            pids[nk++] = p;
    }
    worker(s, ro, cv, o, h, 0);
    int rc = VMF_OK;
    for (size_t j = 0; j < nk; j++) {
        int st = 0;
        while (waitpid(pids[j], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            rc = VMF_EINVAL;
            snprintf(err, VMFSIM_ERR_SIZE, "replicates: a worker process died (status %d)", st);
        }
    }
    for (size_t r = 1; r < n && rc == VMF_OK; r++) {
        int st = shm_status(h)[r];
        if (st != 1) {
            rc = st < 0 ? st : VMF_EINVAL;
            snprintf(err, VMFSIM_ERR_SIZE, "replicate %zu: %s", r + 1,
                     st ? shm_err(h, r) : "not run (a worker process died)");
            break;
        }
        vmfsim_curve c[VMFSIM_MAX_MODEL];
        memset(c, 0, sizeof c);
        double *top = shm_top(h, r);
        for (size_t m = 0; m < nm; m++) {
            c[m].top1 = top + m * days;
            c[m].top4 = top + (nm + m) * days;
        }
        vmfsim_reps_record(reps, r, c);
    }
    munmap(h, bytes);
    return rc;
}
