/*
 * vmfmm_stream.c - `vmfmm fit` for data that does not fit in memory or in
 * one process: `vmfmm fit --out-of-core`, or `mpirun -np N vmfmm fit ...`
 * (several --input files in one process without --out-of-core are loaded
 * and concatenated in memory by vmfmm_fit.c instead). vmfmm_fit.c hands over to this file when
 * vmfmm_stream_wanted() says so.
 *
 * The model is batch EM exactly as vmf_mixture_fit runs it (same initial
 * hard pass, M-step, re-seeding rule, convergence test and restarts), with
 * each E-step a pass over the .npy inputs read block by block
 * (vmfmm/rowstream.h) and the statistics summed exactly
 * (vmfmm/suffstats.h). Memory: O(block·K + K·d + sample·d), whatever the
 * number of rows.
 *
 * Rows and blocks. The inputs are concatenated in command-line order; row
 * ids run over the concatenation. Every input is cut into blocks of
 * --block-rows rows from its own first row; a block is the unit of work and
 * of the E-step kernel. With at least as many inputs as ranks, rank r reads
 * inputs [r·F/P, (r+1)·F/P) whole (its shards); with fewer, the ranks that
 * share an input split its blocks into contiguous ranges (one file is cut
 * into P row ranges on block boundaries). A rank opens only its inputs.
 *
 * What the result depends on: the data, the order of the inputs, the seed,
 * the options and --block-rows (the float32 GEMM of a block is not
 * split-invariant). It does NOT depend on the number of ranks, on which rank
 * holds which block, or on timing: per-block statistics are summed in exact
 * fixed point (one MPI_Allreduce of int64 words per iteration), so 1, 2 or 4
 * ranks produce the same bits; the tests check bit equality. Against
 * vmf_mixture_fit in memory (double sums in block order) the statistics
 * differ by rounding, and the fitted parameters by ~1e-12 relative after a
 * few iterations (tests: within 1e-6).
 *
 * Seeding over data that does not fit: k-means++ (or random rows) on a
 * seeded sample of --sample-rows training rows, the rows whose keys
 * vmf_row_key(seed', id) are smallest (a bottom-k sample, the same set for
 * any split among ranks and any order). Each rank keeps its local bottom-k;
 * the ranks exchange keys, agree on the global threshold, exchange the
 * selected rows, and all run k-means++ on the same sample in id order with
 * the restart's generator, so every rank starts from the same means. When
 * the sample holds every training row (n <= --sample-rows) this is
 * vmf_mixture_fit's own seeding of the same rows.
 *
 * Held-out split without loading data: row id is a test row when
 * vmf_row_key(seed'', id) < fraction·2^64; about `fraction` of the rows,
 * decided row by row, the same on every rank. (The in-memory `vmfmm fit`
 * draws an exact count instead; the two splits differ.)
 *
 * Failure: every phase ends in a collective that carries each rank's status,
 * so a rank that cannot open or read its shard makes all ranks stop with
 * its message on its stderr and "rank R failed" on the others; nobody waits
 * forever. Rank 0 writes the outputs: model.json, convergence.json,
 * metrics.json (per-row outputs, assignments.npy and split.npy, and plots
 * are not written: they are O(rows)).
 */
#include "vmfmm_mpi.h"
#include "vmfmm_tool.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPLIT_SALT  0x5eed5b117e57ull
#define SAMPLE_SALT 0x5a3b1e0f5a3b1eull
#define MAX_INPUTS  4096

static const char STREAM_HELP[] =
    "Usage: vmfmm fit --out-of-core --input FILE [--input FILE ...] [-k K] [options]\n"
    "       mpirun -np N vmfmm fit --input SHARD [--input SHARD ...] [-k K] [options]\n"
    "\n"
    "Fits a vMF mixture with batch EM streaming .npy inputs (<f4 or <f8, 2-D) block\n"
    "by block, in one process or across MPI ranks; the same model for any number of\n"
    "ranks. Writes model.json, convergence.json and metrics.json into DIR.\n"
    "\n"
    "  -i, --input FILE         an .npy input; repeat (or list after the options) for\n"
    "                           shards, concatenated in the order given\n"
    "      --out-of-core        stream even a single input in one process\n"
    "      --block-rows N       rows per block read and per E-step GEMM (default 4096);\n"
    "                           the result depends on it, not on the rank count\n"
    "      --sample-rows N      rows of the seeding sample (default max(16384, 16 K))\n"
    "      --init-means FILE    initial means [K][d] (.npy) instead of k-means++\n"
    "  -k, --n-components K, --max-iter N, --tol T, -s/--seed S, --n-init N,\n"
    "  --init kmeans++|random, --assignment soft|hard|stochastic, --hard,\n"
    "  --kappa-estimator E, --tied-kappa, --test-split F, -t/--threads N,\n"
    "  -o/--output-dir DIR, --json, -q/--quiet: as for the in-memory fit\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 unreadable input, 73 cannot\n"
    "create output, 74 I/O error; every rank exits with the same status.\n";

enum {
    OPT_OUT_OF_CORE = OPT_N + 100,
    OPT_BLOCK_ROWS,
    OPT_SAMPLE_ROWS,
    OPT_INIT_MEANS,
};

static const simc_cli_opt stream_opts[] = {{"out-of-core", 0, SIMC_CLI_NO_ARG, OPT_OUT_OF_CORE},
                                           {"block-rows", 0, SIMC_CLI_REQ_ARG, OPT_BLOCK_ROWS},
                                           {"sample-rows", 0, SIMC_CLI_REQ_ARG, OPT_SAMPLE_ROWS},
                                           {"init-means", 0, SIMC_CLI_REQ_ARG, OPT_INIT_MEANS},
                                           {NULL, 0, 0, 0}};

int vmfmm_stream_wanted(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--out-of-core") == 0)
            return 1;
    }
    return vmfmm_comm_launched_parallel();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the job ---- */

typedef struct seg {
    size_t file;
    size_t first, rows; /* rows of the file, first on a block boundary */
} seg;

typedef struct job {
    simc_cli *cli;
    vmfmm_comm comm;
    /* options */
    const char *inputs[MAX_INPUTS];
    size_t nfiles;
    vmfmm_args a;
    size_t block, sample_rows;
    const char *init_means_path;
    float *init_means;
    /* data */
    vmf_row_reader **readers;       /* [nfiles], NULL for files this rank does not read */
    uint64_t *file_rows, *file_off; /* [nfiles] */
    size_t d;
    uint64_t n; /* all rows */
    seg *segs;  /* this rank's work */
    size_t nsegs;
    uint64_t split_thr; /* test row when key < split_thr */
    int has_split;
    float *buf;     /* [block][d] */
    uint64_t *ids;  /* [block] */
    double *norm2;  /* [block] */
    int64_t *words; /* reduction buffer */
    size_t nwords;
    /* the last error of this rank */
    int code;
    char msg[1024];
} job;

/* Records this rank's failure (the first one wins). Returns the code. */
static int job_fail(job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int job_fail(job *j, int code, const char *fmt, ...)
{
    if (j->code)
        return j->code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof j->msg, fmt, ap);
    va_end(ap);
    j->code = code;
    return code;
}

static int code_of(int rc)
{
    return simc_cli_exit_code(rc);
}

/* Prints the outcome of a failed collective step on this rank. */
static int job_report(job *j, int nfail, int who, int agreed, const char *phase)
{
    if (nfail < 0) {
        simc_cli_fail(j->cli, EX_IOERR, "rank %d of %d: MPI communication failed during %s",
                      j->comm.rank, j->comm.size, phase);
        return EX_IOERR;
    }
    if (j->code) {
        if (j->comm.size > 1)
            simc_cli_fail(j->cli, j->code, "rank %d of %d: %s", j->comm.rank, j->comm.size, j->msg);
        else
            simc_cli_fail(j->cli, j->code, "%s", j->msg);
        return j->code;
    }
    if (who >= 0)
        simc_cli_fail(j->cli, agreed,
                      "rank %d of %d: stopping: rank %d failed during %s (see its "
                      "message)",
                      j->comm.rank, j->comm.size, who, phase);
    else
        simc_cli_fail(j->cli, agreed, "rank %d of %d: stopping: %d ranks failed during %s",
                      j->comm.rank, j->comm.size, nfail, phase);
    return agreed;
}

static int phase_end(job *j, const char *phase)
{
    int who, agreed;
    int nfail = vmfmm_comm_check(&j->comm, j->code, &who, &agreed);
    if (nfail == 0)
        return 0;
    return job_report(j, nfail, who, agreed, phase);
}

/* ---- options ---- */

static int parse(job *j, int argc, char **argv, int *help)
{
    simc_cli *cli = j->cli;
    vmfmm_args_init(&j->a);
    j->block = 4096;
    j->sample_rows = 0;
    *help = 0;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "fit");
    /* One table: the common options, then ours. */
    size_t nc = 0, ns = 0;
    while (vmfmm_common_opts[nc].long_name)
        nc++;
    while (stream_opts[ns].long_name)
        ns++;
    simc_cli_opt *opts = calloc(nc + ns + 1, sizeof *opts);
    if (!opts)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    memcpy(opts, vmfmm_common_opts, nc * sizeof *opts);
    memcpy(opts + nc, stream_opts, ns * sizeof *opts);
    const char *arg;
    int id, ex = EX_OK;
    while (!ex && (id = simc_cli_next(cli, &p, opts, &arg)) > 0) {
        switch (id) {
        case OPT_HELP:
            *help = 1;
            break;
        case OPT_INPUT:
            if (j->nfiles == MAX_INPUTS)
                ex = simc_cli_fail(cli, EX_USAGE, "more than %d inputs", MAX_INPUTS);
            else
                j->inputs[j->nfiles++] = arg;
            break;
        case OPT_OUT_OF_CORE:
            break;
        case OPT_BLOCK_ROWS:
            ex = simc_cli_parse_size(cli, "--block-rows", arg, 1, (size_t)1 << 24, &j->block);
            break;
        case OPT_SAMPLE_ROWS:
            ex =
                simc_cli_parse_size(cli, "--sample-rows", arg, 1, (size_t)1 << 26, &j->sample_rows);
            break;
        case OPT_INIT_MEANS:
            j->init_means_path = arg;
            break;
        case OPT_LABELS:
            ex = simc_cli_fail(cli, EX_USAGE,
                               "--labels is not supported by the streaming fit (out-of-core / "
                               "MPI); fit in memory for label metrics");
            break;
        case OPT_N_SAMPLES:
        case OPT_DIM:
        case OPT_SYNTH_K:
            ex = simc_cli_fail(cli, EX_USAGE,
                               "the streaming fit needs --input files (no synthetic sample)");
            break;
        default:
            ex = vmfmm_args_apply(cli, &j->a, id, arg);
            if (ex < 0)
                ex = simc_cli_fail(cli, EX_SOFTWARE, "unhandled option");
        }
        if (*help)
            break;
    }
    free(opts);
    if (ex || *help)
        return ex;
    if (id < 0)
        return EX_USAGE;
    for (size_t i = 0; i < p.n_positional; i++) {
        if (j->nfiles == MAX_INPUTS)
            return simc_cli_fail(cli, EX_USAGE, "more than %d inputs", MAX_INPUTS);
        j->inputs[j->nfiles++] = p.positional[i];
    }
    if (j->nfiles == 0)
        return simc_cli_fail(cli, EX_USAGE, "the streaming fit needs --input FILE (.npy)");
    if (j->sample_rows == 0) {
        size_t k16 = j->a.em.n_components * 16;
        j->sample_rows = k16 > 16384 ? k16 : 16384;
    }
    if (j->sample_rows < j->a.em.n_components)
        return simc_cli_fail(cli, EX_USAGE, "--sample-rows %zu is less than K = %zu",
                             j->sample_rows, j->a.em.n_components);
    return EX_OK;
}

/* ---- inputs ---- */

/* Which inputs (and which of their blocks) this rank reads; opens them. */
static void open_inputs(job *j)
{
    size_t F = j->nfiles, P = (size_t)j->comm.size, r = (size_t)j->comm.rank;
    j->readers = calloc(F, sizeof *j->readers);
    j->file_rows = calloc(F, sizeof *j->file_rows);
    j->file_off = calloc(F, sizeof *j->file_off);
    j->segs = calloc(F > 1 ? F : 1, sizeof *j->segs);
    if (!j->readers || !j->file_rows || !j->file_off || !j->segs) {
        job_fail(j, EX_OSERR, "out of memory");
        return;
    }
    size_t f0, f1;
    if (F >= P) {
        f0 = r * F / P;
        f1 = (r + 1) * F / P;
    } else {
        f0 = r * F / P;
        f1 = f0 + 1;
    }
    for (size_t f = f0; f < f1; f++) {
        int rc = vmf_row_reader_open(j->inputs[f], &j->readers[f]);
        if (rc != VMF_OK) {
            /* The reader's message starts with the path. */
            job_fail(j, rc == VMF_EIO ? EX_NOINPUT : code_of(rc), "input %s", vmf_last_error());
            return;
        }
    }
}

/* Agrees on the shapes of all inputs and lays out this rank's segments. */
static int plan_inputs(job *j)
{
    size_t F = j->nfiles, P = (size_t)j->comm.size, r = (size_t)j->comm.rank;
    /* Words: rows[F], dims[F]; each input's first reader contributes. */
    int64_t *w = calloc(2 * F, sizeof *w);
    if (!w)
        return simc_cli_fail(j->cli, EX_OSERR, "out of memory");
    for (size_t f = 0; f < F; f++) {
        if (!j->readers[f])
            continue;
        int first = F >= P ? 1 : (r == 0 || (r - 1) * F / P != f);
        if (first) {
            w[f] = (int64_t)vmf_row_reader_rows(j->readers[f]);
            w[F + f] = (int64_t)vmf_row_reader_dim(j->readers[f]);
        }
    }
    if (vmfmm_comm_sum_i64(&j->comm, w, 2 * F) != 0) {
        free(w);
        return job_report(j, -1, -1, 0, "the exchange of input shapes");
    }
    uint64_t off = 0;
    j->d = (size_t)w[F];
    for (size_t f = 0; f < F; f++) {
        j->file_rows[f] = (uint64_t)w[f];
        j->file_off[f] = off;
        off += (uint64_t)w[f];
        if ((size_t)w[F + f] != j->d) {
            /* Every rank sees the same numbers and prints the same message. */
            int ex = simc_cli_fail(j->cli, EX_DATAERR,
                                   "input '%s' has %lld columns but '%s' has %zu: all inputs need "
                                   "the same dimension",
                                   j->inputs[f], (long long)w[F + f], j->inputs[0], j->d);
            free(w);
            return ex;
        }
    }
    free(w);
    j->n = off;
    if (j->d < 2)
        return simc_cli_fail(j->cli, EX_DATAERR, "inputs have %zu column(s), need d >= 2", j->d);
    /* Segments. */
    size_t B = j->block;
    if (F >= P) {
        for (size_t f = r * F / P; f < (r + 1) * F / P; f++)
            j->segs[j->nsegs++] = (seg){f, 0, (size_t)j->file_rows[f]};
    } else {
        size_t f = r * F / P, g0 = r, g1 = r;
        while (g0 > 0 && (g0 - 1) * F / P == f)
            g0--;
        while (g1 + 1 < P && (g1 + 1) * F / P == f)
            g1++;
        size_t g = g1 - g0 + 1, q = r - g0;
        size_t nb = ((size_t)j->file_rows[f] + B - 1) / B;
        size_t b0 = q * nb / g, b1 = (q + 1) * nb / g;
        size_t first = b0 * B, last = b1 * B;
        if (last > (size_t)j->file_rows[f])
            last = (size_t)j->file_rows[f];
        if (last > first)
            j->segs[j->nsegs++] = (seg){f, first, last - first};
    }
    return EX_OK;
}

/*
 * Reads block [first, first + rows) of input f, normalizes it and keeps the
 * rows of the wanted side of the split (test = 1 or train = 0), compacted,
 * with their ids. Returns the kept count, or (size_t)-1 after job_fail.
 */
static size_t read_block(job *j, size_t f, size_t first, size_t rows, int test)
{
    size_t d = j->d;
    int rc = vmf_row_reader_read(j->readers[f], first, rows, j->buf);
    if (rc != VMF_OK) {
        job_fail(j, rc == VMF_EIO ? EX_IOERR : code_of(rc), "input %s", vmf_last_error());
        return (size_t)-1;
    }
    /*
     * Squared norms with the arithmetic of vmf_rows_normalize (what the
     * in-memory fit applies at load), so the rows get the same bits; the
     * rows are then trusted by vmf_suffstats_add_block. Each row's sum runs
     * in column order, as there, but eight rows at a time: eight
     * independent chains instead of one latency-bound one.
     */
    double *s2 = j->norm2;
    size_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        double acc[8] = {0};
        const float *r = j->buf + i * d;
        for (size_t c = 0; c < d; c++)
            for (size_t t = 0; t < 8; t++) {
                double v = (double)r[t * d + c];
                acc[t] += v * v;
            }
        memcpy(s2 + i, acc, sizeof acc);
    }
    for (; i < rows; i++) {
        const float *r = j->buf + i * d;
        double acc = 0.0;
        for (size_t c = 0; c < d; c++)
            acc += (double)r[c] * (double)r[c];
        s2[i] = acc;
    }
    size_t kept = 0;
    for (i = 0; i < rows; i++) {
        /* A NaN or infinity anywhere makes the sum non-finite. */
        if (!isfinite(s2[i]) || s2[i] == 0.0) {
            job_fail(j, EX_DATAERR, "input '%s' row %zu %s", j->inputs[f], first + i,
                     s2[i] == 0.0 ? "is a zero vector" : "has a NaN or infinite value");
            return (size_t)-1;
        }
        uint64_t id = j->file_off[f] + first + i;
        int is_test = j->has_split && vmf_row_key(j->a.em.seed ^ SPLIT_SALT, id) < j->split_thr;
        if (is_test != test)
            continue;
        float *r = j->buf + i * d, *dst = j->buf + kept * d;
        double inv = 1.0 / sqrt(s2[i]);
        for (size_t c = 0; c < d; c++)
            dst[c] = (float)((double)r[c] * inv);
        j->ids[kept++] = id;
    }
    return kept;
}

/*
 * One pass over this rank's blocks (train or test rows), adding into st
 * (cleared first), then the one collective sum of the words and every
 * rank's status. Returns 0 or the agreed exit code (message printed).
 */
static int pass(job *j, const vmf_mixture *m, vmf_assignment mode, uint64_t stoch_seed, int want_s1,
                int test, vmf_suffstats *st, const char *phase)
{
    vmf_suffstats_clear(st);
    for (size_t s = 0; s < j->nsegs && !j->code; s++) {
        const seg *g = &j->segs[s];
        for (size_t i0 = 0; i0 < g->rows && !j->code; i0 += j->block) {
            size_t rows = g->rows - i0 < j->block ? g->rows - i0 : j->block;
            size_t kept = read_block(j, g->file, g->first + i0, rows, test);
            if (kept == (size_t)-1 || kept == 0)
                continue;
            vmf_rng brng;
            /* Stochastic E-step: a generator per block, keyed by its first row id. */
            vmf_rng_seed(&brng, vmf_row_key(stoch_seed, j->file_off[g->file] + g->first + i0));
            int rc =
                vmf_suffstats_add_block(st, m, j->buf, kept, j->d, mode, &brng, 0, j->ids,
                                        VMF_SUFFSTATS_TRUSTED | (want_s1 ? VMF_SUFFSTATS_S1 : 0u));
            if (rc != VMF_OK)
                job_fail(j, code_of(rc), "input '%s': E-step: %s", j->inputs[g->file],
                         vmf_last_error());
        }
    }
    vmf_suffstats_normalize(st);
    size_t nw;
    int64_t *w = vmf_suffstats_words(st, &nw);
    memcpy(j->words, w, nw * sizeof *w);
    vmfmm_comm_status_set(&j->comm, j->code, j->words + nw);
    if (vmfmm_comm_sum_i64(&j->comm, j->words, nw + VMFMM_STATUS_WORDS) != 0)
        return job_report(j, -1, -1, 0, phase);
    int who, agreed;
    int nfail = vmfmm_comm_status_get(j->words + nw, &who, &agreed);
    if (nfail)
        return job_report(j, nfail, who, agreed, phase);
    memcpy(w, j->words, nw * sizeof *w);
    return 0;
}

/* Shares every rank's worst-row candidates so that each holds the global K worst. */
static int share_worst(job *j, vmf_suffstats *st)
{
    if (j->comm.size == 1)
        return 0;
    size_t k = j->a.em.n_components, d = j->d;
    size_t rec = 8 + k * 16 + k * d * sizeof(float);
    unsigned char *mine = calloc(1, rec), *all = malloc(rec * (size_t)j->comm.size);
    if (!mine || !all) {
        free(mine);
        free(all);
        job_fail(j, EX_OSERR, "out of memory");
        return phase_end(j, "re-seeding");
    }
    size_t cnt;
    const double *ll;
    const uint64_t *ids;
    const float *rows;
    vmf_suffstats_worst(st, &cnt, &ll, &ids, &rows);
    uint64_t c64 = cnt;
    memcpy(mine, &c64, 8);
    memcpy(mine + 8, ll, cnt * sizeof *ll);
    memcpy(mine + 8 + k * 8, ids, cnt * sizeof *ids);
    memcpy(mine + 8 + k * 16, rows, cnt * d * sizeof *rows);
    int ex = 0;
    if (vmfmm_comm_allgather(&j->comm, mine, rec, all) != 0) {
        ex = job_report(j, -1, -1, 0, "re-seeding");
    } else {
        double *tll = malloc(k * sizeof *tll);
        uint64_t *tid = malloc(k * sizeof *tid);
        float *trow = malloc(k * d * sizeof *trow);
        for (int r = 0; r < j->comm.size && tll && tid && trow; r++) {
            const unsigned char *p = all + (size_t)r * rec;
            memcpy(&c64, p, 8);
            memcpy(tll, p + 8, (size_t)c64 * 8);
            memcpy(tid, p + 8 + k * 8, (size_t)c64 * 8);
            memcpy(trow, p + 8 + k * 16, (size_t)c64 * d * sizeof *trow);
            vmf_suffstats_offer_worst(st, (size_t)c64, tll, tid, trow);
        }
        if (!tll || !tid || !trow)
            job_fail(j, EX_OSERR, "out of memory");
        free(tll);
        free(tid);
        free(trow);
        ex = phase_end(j, "re-seeding");
    }
    free(mine);
    free(all);
    return ex;
}

/* M-step (and re-seeding, sharing candidates first when a component starves). */
static int mstep(job *j, vmf_suffstats *st, double *s0, vmf_mixture *m, size_t *n_reseeded)
{
    size_t k = j->a.em.n_components, r = 0;
    vmf_suffstats_totals(st, s0, NULL, NULL, NULL);
    int starving = 0;
    for (size_t c = 0; c < k; c++)
        starving |= s0[c] < j->a.em.min_mass;
    if (starving) {
        int ex = share_worst(j, st);
        if (ex)
            return ex;
    }
    int rc = vmf_suffstats_mstep(st, &j->a.em, m, &r);
    *n_reseeded += r;
    if (rc != VMF_OK)
        return simc_cli_fail_vmf(j->cli, rc, "M-step"); /* same data on every rank: same error */
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Records of (id, row) ordered by id. */
typedef struct id_pos {
    uint64_t id;
    size_t pos;
} id_pos;

static int cmp_id_pos(const void *a, const void *b)
{
    uint64_t x = ((const id_pos *)a)->id, y = ((const id_pos *)b)->id;
    return (x > y) - (x < y);
}

/* The seeding sample: every rank ends with the same rows in id order. */
static int collect_sample(job *j, float **sample, size_t *m)
{
    *sample = NULL;
    *m = 0;
    size_t d = j->d;
    vmf_row_sample *rs = NULL;
    int rc = vmf_row_sample_new(j->sample_rows, d, j->a.em.seed ^ SAMPLE_SALT, &rs);
    if (rc != VMF_OK)
        job_fail(j, EX_OSERR, "seeding sample: %s", vmf_last_error());
    for (size_t s = 0; s < j->nsegs && !j->code; s++) {
        const seg *g = &j->segs[s];
        for (size_t i0 = 0; i0 < g->rows && !j->code; i0 += j->block) {
            size_t rows = g->rows - i0 < j->block ? g->rows - i0 : j->block;
            size_t kept = read_block(j, g->file, g->first + i0, rows, 0);
            if (kept != (size_t)-1 && kept > 0)
                vmf_row_sample_offer(rs, j->buf, kept, d, 0, j->ids);
        }
    }
    int ex = phase_end(j, "the seeding pass");
    if (ex) {
        vmf_row_sample_free(rs);
        return ex;
    }
    /* The global threshold: the sample_rows-th smallest key over all ranks. */
    size_t cnt;
    const uint64_t *keys;
    vmf_row_sample_get(rs, &cnt, &keys, NULL, NULL);
    size_t *counts = malloc((size_t)j->comm.size * sizeof *counts);
    void *allkeys = NULL;
    if (!counts || vmfmm_comm_allgatherv(&j->comm, keys, cnt * 8, &allkeys, counts) != 0) {
        free(counts);
        vmf_row_sample_free(rs);
        return job_report(j, -1, -1, 0, "the seeding sample");
    }
    size_t total = 0;
    for (int r = 0; r < j->comm.size; r++)
        total += counts[r] / 8;
    uint64_t *ak = allkeys, thr = UINT64_MAX;
    if (total > j->sample_rows) {
        qsort(ak, total, sizeof *ak, cmp_u64);
        thr = ak[j->sample_rows - 1];
    }
    free(allkeys);
    vmf_row_sample_finish(rs, thr);
    const uint64_t *ids;
    const float *rows;
    vmf_row_sample_get(rs, &cnt, NULL, &ids, &rows);
    /* Exchange (id, row) records, then order them by id. */
    size_t rec = 8 + d * sizeof(float);
    unsigned char *mine = malloc(cnt ? cnt * rec : 1);
    void *all = NULL;
    if (!mine) {
        free(counts);
        vmf_row_sample_free(rs);
        return simc_cli_fail(j->cli, EX_OSERR, "out of memory");
    }
    for (size_t q = 0; q < cnt; q++) {
        memcpy(mine + q * rec, &ids[q], 8);
        memcpy(mine + q * rec + 8, rows + q * d, d * sizeof(float));
    }
    vmf_row_sample_free(rs);
    int bad = vmfmm_comm_allgatherv(&j->comm, mine, cnt * rec, &all, counts) != 0;
    free(mine);
    size_t bytes = 0;
    for (int r = 0; r < j->comm.size; r++)
        bytes += counts[r];
    free(counts);
    if (bad)
        return job_report(j, -1, -1, 0, "the seeding sample");
    size_t n_all = bytes / rec;
    const unsigned char *ar = all;
    id_pos *order = malloc((n_all ? n_all : 1) * sizeof *order);
    float *out = malloc((n_all ? n_all : 1) * d * sizeof *out);
    if (!order || !out) {
        free(order);
        free(out);
        free(all);
        return simc_cli_fail(j->cli, EX_OSERR, "out of memory");
    }
    for (size_t q = 0; q < n_all; q++) {
        memcpy(&order[q].id, ar + q * rec, 8);
        order[q].pos = q;
    }
    qsort(order, n_all, sizeof *order, cmp_id_pos);
    for (size_t q = 0; q < n_all; q++)
        memcpy(out + q * d, ar + order[q].pos * rec + 8, d * sizeof *out);
    free(order);
    free(all);
    *sample = out;
    *m = n_all;
    return 0;
}

/* One restart of batch EM, as em.c's run_once. Returns 0 or an exit code. */
typedef struct run {
    vmf_mixture *m;
    double *trace;
    size_t n_iter, n_reseeded;
    int converged;
    double loglik;
} run;

static int push(run *r, double v, size_t cap)
{
    if (r->n_iter >= cap)
        return -1;
    r->trace[r->n_iter++] = v;
    return 0;
}

static int run_once(job *j, const float *sample, size_t m, vmf_rng *rng, vmf_suffstats *st,
                    double *s0, run *r)
{
    const vmf_em_opts *o = &j->a.em;
    memset(r, 0, sizeof *r);
    r->trace = malloc((o->max_iter ? o->max_iter : 1) * sizeof *r->trace);
    if (!r->trace)
        return simc_cli_fail(j->cli, EX_OSERR, "out of memory");
    int rc = vmf_em_init_mixture(o, sample, m, j->d, rng, &r->m);
    if (rc != VMF_OK)
        return simc_cli_fail_vmf(j->cli, rc, "initialisation");
    int ex = pass(j, r->m, VMF_ASSIGN_HARD, 0, 1, 0, st, "the initial pass");
    if (ex)
        return ex;
    double ll, n;
    vmf_suffstats_totals(st, NULL, NULL, NULL, &n);
    if (n < (double)o->n_components) /* the same totals on every rank */
        return simc_cli_fail(j->cli, EX_DATAERR, "k = %zu is larger than the %.0f training rows",
                             o->n_components, n);
    ex = mstep(j, st, s0, r->m, &r->n_reseeded);
    uint64_t ss = o->assignment == VMF_ASSIGN_STOCHASTIC ? vmf_rng_u64(rng) : 0;
    if (!ex)
        ex = pass(j, r->m, o->assignment, ss, o->max_iter > 0, 0, st, "an EM pass");
    if (ex)
        return ex;
    vmf_suffstats_totals(st, NULL, NULL, &ll, &n);
    double prev = ll / n;
    r->loglik = prev;
    for (size_t it = 1; it <= o->max_iter; it++) {
        ex = mstep(j, st, s0, r->m, &r->n_reseeded);
        if (ex)
            return ex;
        ss = o->assignment == VMF_ASSIGN_STOCHASTIC ? vmf_rng_u64(rng) : 0;
        ex = pass(j, r->m, o->assignment, ss, it < o->max_iter, 0, st, "an EM pass");
        if (ex)
            return ex;
        vmf_suffstats_totals(st, NULL, NULL, &ll, &n);
        double cur = ll / n;
        push(r, cur, o->max_iter);
        r->loglik = cur;
        if (j->comm.rank == 0)
            simc_cli_progress(j->cli, "iteration %zu: mean log-likelihood %.6f", it, cur);
        if (o->tol > 0.0 && fabs(cur - prev) < o->tol) {
            r->converged = 1;
            break;
        }
        prev = cur;
    }
    return 0;
}

/* ---- outputs ---- */

static json_t *split_json(double rows, double ll_sum, const vmf_mixture *m)
{
    json_t *o = json_object();
    double p = (double)vmf_mixture_n_params(m);
    json_object_set_new(o, "rows", json_integer((json_int_t)rows));
    json_object_set_new(o, "mean_loglik", vmfmm_jreal(ll_sum / rows));
    json_object_set_new(o, "bic", vmfmm_jreal(-2.0 * ll_sum + p * log(rows)));
    json_object_set_new(o, "aic", vmfmm_jreal(-2.0 * ll_sum + 2.0 * p));
    return o;
}

static int write_outputs(job *j, const run *best, size_t best_init, double seconds,
                         double train_rows, double test_rows, double test_ll_sum, double pass_s)
{
    simc_cli *cli = j->cli;
    const vmf_em_opts *o = &j->a.em;
    int ex = vmfmm_make_dir(cli, j->a.output_dir);
    if (ex)
        return ex;
    char *model = NULL;
    int rc = vmf_mixture_to_json(best->m, &model);
    if (rc != VMF_OK)
        return simc_cli_fail_vmf(cli, rc, "model JSON");
    json_t *dist = json_object();
    json_object_set_new(dist, "ranks", json_integer(j->comm.size));
    json_object_set_new(dist, "transport", json_string(vmfmm_comm_name(&j->comm)));
    json_object_set_new(dist, "block_rows", json_integer((json_int_t)j->block));
    json_object_set_new(dist, "sample_rows", json_integer((json_int_t)j->sample_rows));
    json_object_set_new(dist, "reduction", json_string("exact int64 fixed point, MPI_SUM"));
    json_object_set_new(dist, "reduce_bytes_per_iteration",
                        json_integer((json_int_t)((j->nwords + VMFMM_STATUS_WORDS) * 8)));
    json_object_set_new(dist, "seconds_per_pass", vmfmm_jreal(pass_s));
    json_t *inputs = json_array();
    for (size_t f = 0; f < j->nfiles; f++)
        json_array_append_new(inputs, json_string(j->inputs[f]));

    json_t *conv = json_object();
    json_object_set_new(conv, "iterations", json_integer((json_int_t)best->n_iter));
    json_object_set_new(conv, "converged", json_boolean(best->converged));
    json_object_set_new(conv, "final_mean_loglik", vmfmm_jreal(best->loglik));
    json_object_set_new(conv, "mean_loglik", vmfmm_jreal_array(best->trace, best->n_iter));
    json_object_set_new(conv, "seconds", vmfmm_jreal(seconds));
    json_object_set_new(conv, "tol", json_real(o->tol));
    json_object_set_new(conv, "max_iter", json_integer((json_int_t)o->max_iter));
    json_object_set_new(conv, "n_init", json_integer((json_int_t)o->n_init));
    json_object_set_new(conv, "best_init", json_integer((json_int_t)best_init));
    json_object_set_new(conv, "n_reseeded", json_integer((json_int_t)best->n_reseeded));
    json_object_set_new(conv, "assignment", json_string(vmfmm_assignment_name(o->assignment)));
    json_object_set_new(conv, "init", json_string(vmfmm_init_name(o->init)));
    json_object_set_new(conv, "kappa_estimator",
                        json_string(vmf_kappa_estimator_name(o->kappa.estimator)));
    json_object_set_new(conv, "tied_kappa", json_boolean(o->tied_kappa));
    json_object_set_new(conv, "seed", json_integer((json_int_t)o->seed));
    json_object_set(conv, "streaming", dist);

    json_t *met = json_object();
    json_object_set_new(met, "input", json_string(j->inputs[0]));
    json_object_set_new(met, "inputs", inputs);
    json_object_set_new(met, "rows", json_integer((json_int_t)j->n));
    json_object_set_new(met, "dim", json_integer((json_int_t)j->d));
    json_object_set_new(met, "n_components", json_integer((json_int_t)o->n_components));
    json_object_set_new(met, "n_params", json_integer((json_int_t)vmf_mixture_n_params(best->m)));
    json_object_set_new(met, "test_split", json_real(j->a.test_split));
    json_object_set_new(met, "seed", json_integer((json_int_t)o->seed));
    json_object_set_new(met, "iterations", json_integer((json_int_t)best->n_iter));
    json_object_set_new(met, "converged", json_boolean(best->converged));
    json_object_set_new(met, "seconds", vmfmm_jreal(seconds));
    json_object_set_new(met, "train", split_json(train_rows, best->loglik * train_rows, best->m));
    if (test_rows > 0)
        json_object_set_new(met, "test", split_json(test_rows, test_ll_sum, best->m));
    else
        json_object_set_new(met, "test", json_null());
    json_object_set_new(met, "streaming", dist);

    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, j->a.output_dir, "model.json") == NULL)
        ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
    else if (simc_cli_write_file(path, model, strlen(model)) != 0)
        ex = simc_cli_fail(cli, EX_CANTCREAT, "cannot write '%s': %s", path, strerror(errno));
    if (!ex && simc_cli_join(path, sizeof path, j->a.output_dir, "convergence.json"))
        ex = vmfmm_json_write(cli, path, conv);
    if (!ex && simc_cli_join(path, sizeof path, j->a.output_dir, "metrics.json"))
        ex = vmfmm_json_write(cli, path, met);
    simc_cli_progress_done(cli);
    if (!ex) {
        if (j->a.json) {
            json_object_set_new(met, "output_dir", json_string(j->a.output_dir));
            ex = vmfmm_json_print(cli, met);
        } else {
            printf("data       %zu input(s), %llu rows (train %.0f, test %.0f), dim %zu\n",
                   j->nfiles, (unsigned long long)j->n, train_rows, test_rows, j->d);
            printf("model      K=%zu, %s EM, %s kappa, %d rank(s), block %zu\n", o->n_components,
                   vmfmm_assignment_name(o->assignment),
                   vmf_kappa_estimator_name(o->kappa.estimator), j->comm.size, j->block);
            printf("fit        %zu iterations, %s, %.2f s\n", best->n_iter,
                   best->converged ? "converged" : "not converged", seconds);
            printf("loglik     train %.4f / row", best->loglik);
            if (test_rows > 0)
                printf(", test %.4f", test_ll_sum / test_rows);
            printf("\nwrote      %s/{model.json, convergence.json, metrics.json}\n",
                   j->a.output_dir);
        }
    }
    json_decref(dist);
    json_decref(conv);
    json_decref(met);
    free(model);
    return ex;
}

/* ---- the command ---- */

static int load_init_means(job *j)
{
    vmf_array arr = {0};
    int rc = vmf_npy_read(j->init_means_path, &arr);
    float *x = NULL;
    size_t n = 0, d = 0;
    if (rc == VMF_OK)
        rc = vmf_array_to_f32(&arr, &x, &n, &d);
    vmf_array_free(&arr);
    if (rc != VMF_OK)
        return job_fail(j, rc == VMF_EIO ? EX_NOINPUT : code_of(rc), "--init-means '%s': %s",
                        j->init_means_path, vmf_last_error());
    if (n != j->a.em.n_components || d != j->d) {
        free(x);
        return job_fail(j, EX_DATAERR, "--init-means '%s' is %zu x %zu, need K x d = %zu x %zu",
                        j->init_means_path, n, d, j->a.em.n_components, j->d);
    }
    rc = vmf_rows_normalize(x, n, d);
    if (rc != VMF_OK) {
        free(x);
        return job_fail(j, EX_DATAERR, "--init-means '%s': %s", j->init_means_path,
                        vmf_last_error());
    }
    j->init_means = x;
    j->a.em.init = VMF_INIT_GIVEN;
    j->a.em.init_means = x;
    return 0;
}

static int fit(job *j)
{
    simc_cli *cli = j->cli;
    double t0 = now_s();
    open_inputs(j);
    int ex = phase_end(j, "opening the inputs");
    if (ex)
        return ex;
    ex = plan_inputs(j);
    if (ex)
        return ex;
    size_t k = j->a.em.n_components, d = j->d;
    if (j->init_means_path)
        load_init_means(j);
    ex = phase_end(j, "reading --init-means");
    if (ex)
        return ex;
    j->has_split = j->a.test_split > 0.0;
    j->split_thr = (uint64_t)ldexp(j->a.test_split, 64);
    vmf_suffstats *st = NULL, *ts = NULL;
    double *s0 = malloc(k * sizeof *s0);
    j->buf = malloc(j->block * d * sizeof *j->buf);
    j->ids = malloc(j->block * sizeof *j->ids);
    j->norm2 = malloc(j->block * sizeof *j->norm2);
    int rc = vmf_suffstats_new(k, d, &st);
    if (rc == VMF_OK)
        rc = vmf_suffstats_new(k, d, &ts);
    if (rc == VMF_OK)
        vmf_suffstats_words(st, &j->nwords);
    j->words = malloc((j->nwords + VMFMM_STATUS_WORDS) * sizeof *j->words);
    if (rc != VMF_OK || !s0 || !j->buf || !j->ids || !j->norm2 || !j->words) {
        job_fail(j, EX_OSERR, "out of memory for K = %zu, d = %zu, block %zu", k, d, j->block);
    }
    ex = phase_end(j, "allocation");
    float *sample = NULL;
    size_t m = 0;
    run best = {0}, cur = {0};
    size_t best_init = 0;
    double pass_s = 0.0, train_rows = 0.0, test_rows = 0.0, test_ll = 0.0;
    if (ex)
        goto done;
    if (j->comm.rank == 0)
        simc_cli_progress(cli, "%llu rows x %zu in %zu input(s) on %d rank(s)",
                          (unsigned long long)j->n, d, j->nfiles, j->comm.size);
    if (j->a.em.init != VMF_INIT_GIVEN) {
        ex = collect_sample(j, &sample, &m);
        if (ex)
            goto done;
        if (m < k) {
            ex = simc_cli_fail(cli, EX_DATAERR, "k = %zu is larger than the %zu training rows", k,
                               m);
            goto done;
        }
    }
    vmf_rng master;
    vmf_rng_seed(&master, j->a.em.seed);
    for (size_t r = 0; r < j->a.em.n_init; r++) {
        vmf_rng rng;
        vmf_rng_split(&master, &rng);
        double tp = now_s();
        ex = run_once(j, sample, m, &rng, st, s0, &cur);
        if (!ex && cur.n_iter > 0)
            pass_s = (now_s() - tp) / (double)(cur.n_iter + 2);
        if (ex)
            goto done;
        if (r == 0 || cur.loglik > best.loglik) {
            vmf_mixture_free(best.m);
            free(best.trace);
            best = cur;
            best_init = r;
        } else {
            vmf_mixture_free(cur.m);
            free(cur.trace);
        }
        memset(&cur, 0, sizeof cur);
    }
    vmf_suffstats_totals(st, NULL, NULL, NULL, &train_rows);
    if (j->has_split) {
        ex = pass(j, best.m, VMF_ASSIGN_SOFT, 0, 0, 1, ts, "scoring the test rows");
        if (ex)
            goto done;
        vmf_suffstats_totals(ts, NULL, NULL, &test_ll, &test_rows);
    }
    if (j->comm.rank == 0)
        ex = write_outputs(j, &best, best_init, now_s() - t0, train_rows, test_rows, test_ll,
                           pass_s);
done:
    vmf_mixture_free(best.m);
    free(best.trace);
    vmf_mixture_free(cur.m);
    free(cur.trace);
    free(sample);
    free(s0);
    vmf_suffstats_free(st);
    vmf_suffstats_free(ts);
    return ex;
}

int vmfmm_cmd_fit_stream(simc_cli *cli, int argc, char **argv)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    j->cli = cli;
    int help;
    int ex = parse(j, argc, argv, &help);
    if (help) {
        fputs(STREAM_HELP, stdout);
#ifdef VMF_HAVE_MPI
        puts("\nMPI: built in (run under mpirun for several ranks)");
#else
        puts("\nMPI: not built in (one process only)");
#endif
        free(j);
        return EX_OK;
    }
    char err[256];
    if (!ex && vmfmm_comm_init(&j->comm, err, sizeof err) != 0)
        ex = simc_cli_fail(cli, EX_OSERR, "%s", err);
    if (!ex) {
        vmfmm_set_threads(j->a.threads);
        if (j->comm.rank != 0)
            cli->progress = 0;
        ex = fit(j);
    }
    /*
     * Usage errors happen before MPI starts and identically on every rank.
     * Past that point every rank has agreed on the outcome of each phase, so
     * all reach MPI_Finalize.
     */
    vmfmm_comm_finalize(&j->comm);
    for (size_t f = 0; j->readers && f < j->nfiles; f++)
        vmf_row_reader_close(j->readers[f]);
    free(j->readers);
    free(j->file_rows);
    free(j->file_off);
    free(j->segs);
    free(j->buf);
    free(j->ids);
    free(j->norm2);
    free(j->words);
    free(j->init_means);
    free(j);
    return ex;
}
