/*
 * vmfsim_main.c - the vmfsim command line: run (the 200-day replay), gen
 * (write the synthetic stream as files) and ablate (accuracy against
 * components per class). Exit codes follow sysexits (sim/common/cli.h): 64
 * usage, 65 bad data, 66 unreadable input, 69 vmfd unavailable, 70 internal
 * error, 71 out of memory, 73 cannot create an output. Errors are one line on
 * stderr, through simc_cli_fail.
 */
#include "cli.h"
#include "plot.h"
#include "vmfsim.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: vmfsim run    [--stream PREFIX] [--models LIST] [--days N] [--output-dir DIR]\n"
    "                     [--seed N] [--via URL] [options]\n"
    "       vmfsim gen    --output PREFIX [--seed N] [generator options]\n"
    "       vmfsim ablate [--components LIST] [--stream PREFIX] [--days N] [--output-dir DIR]\n"
    "                     [--seed N] [options]\n"
    "       vmfsim --help | --version\n"
    "\n"
    "run replays a 200-day stream through the chosen models: each day every model\n"
    "learns that day's rows (vmfmm and knn incrementally; gmm, svm, logreg, rf and\n"
    "xgboost refit on all rows so far every --refit-every days, carrying their last\n"
    "model in between) and is scored on the fixed held-out test rows (top-1 and top-4\n"
    "macro recall; a class never seen scores 0; and the AUROC of each family's\n"
    "novelty score at flagging test rows of classes not seen yet). Writes DIR/daily.csv, "
    "DIR/summary.json\n"
    "and DIR/plots/{accuracy,rows}.{png,svg}, and prints a summary table.\n"
    "\n"
    "stream and output:\n"
    "  --stream PREFIX       read PREFIX.{X,y,split,day}.npy (default: the built-in\n"
    "                        synthetic stream)\n"
    "  --days N              replay days 1..N (default 200)\n"
    "  --output-dir DIR      output directory (default vmfsim-out; ablate: vmfsim-ablate)\n"
    "  --seed N              seed of the generator and of every model (default 42)\n"
    "  --replicates R        R replays (default 1): the first is the main run; each other\n"
    "                        re-draws the order of the rows within each day, a bootstrap\n"
    "                        of the test rows and the model seeds (seed + r), and for\n"
    "                        the synthetic stream the stream itself; summary.json gets\n"
    "                        90% intervals per model and the plot bands (vmfmm runs\n"
    "                        in-process in the extra replicates, also with --via)\n"
    "  --jobs N              replicates replayed at once, in processes (default: the\n"
    "                        number of CPUs; results do not depend on it)\n"
    "  --no-plots            skip the plots\n"
    "  --no-timings          write 0 in the timing columns and fields (byte-identical\n"
    "                        outputs for the same seed)\n"
    "  --quiet               no progress line on stderr (shown only on a terminal)\n"
    "  --json                print summary.json on stdout instead of the table\n"
    "models:\n"
    "  --models LIST         comma-separated among vmfmm,gmm,knn,svm,rf,xgboost,logreg,\n"
    "                        or all\n"
    "                        (default all)\n"
    "  --via URL             vmfmm through a running vmfd (http://HOST:PORT): each day is\n"
    "                        PUT /v1/batches/day-NNN, scoring is POST /v1/predict\n"
    "  --components K        vmfmm K_max and gmm components per class (default 5);\n"
    "                        ablate: a list (default 1,2,3,5,8,12)\n"
    "  --vmf-kappa-scale S   vmfmm prediction temperature (kappa_scale of libvmfmm's\n"
    "                        classifier; default: the library's, as in vmfd)\n"
    "  --vmf-own-kappa       vmfmm predicts with each component's kappa, not the pooled one\n"
    "  --refit-every N       refit period of gmm, svm, logreg, rf, xgboost in days\n"
    "                        (default 1: daily; larger for speed experiments)\n"
    "  --knn-k N             neighbours (default 10)\n"
    "  --knn-reservoir N     rows kept per class by knn, 0 = all (default 200)\n"
    "  --gmm-max-iter N      EM iterations of a gmm refit (default 50)\n"
    "  --svm-c C             C of svm (default 1; class-balanced weights)\n"
    "  --logreg-c C          C of logreg (default 1; class-balanced weights)\n";

/* The second half of --help (one literal would exceed C99's 4095 characters). */
static const char usage_text2[] =
    "  --xgb-rounds N        most boosting rounds (default 300; early stopping)\n"
    "  --xgb-depth N         tree depth (default 2)\n"
    "  --xgb-eta E           learning rate (default 0.3)\n"
    "  --xgb-valid F         stratified fraction of the refit rows held out for early\n"
    "                        stopping (default 0.15; 0 = no early stopping)\n"
    "  --xgb-patience N      stop after N rounds without a lower balanced mlogloss on\n"
    "                        the held-out rows, keep the best round (default 10)\n"
    "  --rf-trees N          trees of the random forest (default 300)\n"
    "  --rf-depth N          most depth of its trees, 1..64 (default 40)\n"
    "  --rf-min-leaf N       least bootstrap rows on each side of an rf split (default 10)\n"
    "  --tree-min-child-weight H  xgboost min_child_weight (default 1)\n"
    "  --tree-max-bin N      histogram bins per feature of rf/xgboost, 2..256 (default 32)\n"
    "  --tree-max-rows N     rf/xgboost refit on a seeded class-stratified subsample of\n"
    "                        at most N rows: one quota per class, as large as fits, so\n"
    "                        rare classes keep every row; 0 = all (default 3000)\n"
    "  --tree-class-rows N   and at most N rows per class, 0 = no limit (default 0)\n"
    "  --tree-refit-growth F rf/xgboost refit on a refit day only when the stream grew\n"
    "                        by the fraction F since their last fit or brought a new\n"
    "                        class, else keep their model (default 0.25: daily while\n"
    "                        the data grows fast, ~22 refits in 200 days); 0 = always\n"
    "  --tree-unweighted     rf/xgboost without class-balanced weights (comparisons)\n"
    "  --threads N           xgboost threads (default 1; results depend on it)\n"
    "synthetic stream (run, ablate without --stream, and gen):\n"
    "  --classes N           classes (default 40)\n"
    "  --dim N               dimension (default 64)\n"
    "  --gen-days N          days with arrivals (default 200)\n"
    "  --rows-per-day N      mean daily volume (default 200)\n"
    "  --zipf S              class size of rank r proportional to r^-S (default 1.0)\n"
    "  --min-class-rows N    floor on a class's stream rows (default 40)\n"
    "  --modes N             vMF modes per class, uniform in 1..N (default 3)\n"
    "  --kappa K             concentration of every mode (default 33)\n"
    "  --group-size N        classes per confusable family (default 4)\n"
    "  --class-spread S      spread of class means around their family (default 1.0)\n"
    "  --mode-spread S       spread of mode means around their class (default 1.2)\n"
    "  --late-fraction F     fraction of classes first appearing late (default 0.2)\n"
    "  --late-from D, --late-to D   their first day, uniform (default 30..120)\n"
    "  --drift R             rotation of every mode mean, radians per day (default 0)\n"
    "  --test-per-class N    balanced test rows per class (default 30)\n"
    "  --output PREFIX       gen: write PREFIX.{X,y,split,day}.npy\n"
    "\n"
    "exit codes: 0 ok, 64 usage, 65 bad data, 66 unreadable input, 69 vmfd\n"
    "unavailable, 70 internal error, 73 cannot create output.\n";

/* sysexits EX_UNAVAILABLE: the vmfd given with --via does not answer. */
#define VMFSIM_EX_UNAVAILABLE 69

typedef struct cli {
    simc_cli ui;
    const char *cmd;
    const char *stream, *output_dir, *output, *models, *components;
    size_t days, replicates, jobs;
    int no_plots, no_timings, quiet, json;
    vmfsim_model_cfg cfg;
    vmfsim_gen_opts gen;
} cli;

static int usage_error(const char *fmt, const char *a)
{
    char msg[VMFSIM_ERR_SIZE + 64];
    snprintf(msg, sizeof msg, fmt, a);
    fprintf(stderr, "vmfsim: %s (see vmfsim --help)\n", msg);
    return EX_USAGE;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s)
        return -1;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

enum { T_STR, T_SIZE, T_DBL, T_FLAG, T_U64, T_INT };

typedef struct opt {
    const char *name;
    int type;
    size_t off;
} opt;

#define O(name, type, field)                                                                       \
    {                                                                                              \
        name, type, offsetof(cli, field)                                                           \
    }
static const opt opts[] = {
    O("--stream", T_STR, stream),
    O("--output-dir", T_STR, output_dir),
    O("--output", T_STR, output),
    O("--models", T_STR, models),
    O("--components", T_STR, components),
    O("--days", T_SIZE, days),
    O("--replicates", T_SIZE, replicates),
    O("--jobs", T_SIZE, jobs),
    O("--no-plots", T_FLAG, no_plots),
    O("--no-timings", T_FLAG, no_timings),
    O("--quiet", T_FLAG, quiet),
    O("--json", T_FLAG, json),
    O("--via", T_STR, cfg.via_url),
    O("--seed", T_U64, cfg.seed),
    O("--refit-every", T_SIZE, cfg.refit_every),
    O("--vmf-kappa-scale", T_DBL, cfg.vmf_kappa_scale),
    O("--vmf-own-kappa", T_FLAG, cfg.vmf_own_kappa),
    O("--knn-k", T_SIZE, cfg.knn_k),
    O("--knn-reservoir", T_SIZE, cfg.knn_reservoir),
    O("--gmm-max-iter", T_SIZE, cfg.gmm_max_iter),
    O("--svm-c", T_DBL, cfg.svm_c),
    O("--logreg-c", T_DBL, cfg.logreg_c),
    O("--xgb-rounds", T_SIZE, cfg.xgb_rounds),
    O("--xgb-depth", T_SIZE, cfg.xgb_depth),
    O("--xgb-eta", T_DBL, cfg.xgb_eta),
    O("--rf-trees", T_SIZE, cfg.rf_trees),
    O("--rf-depth", T_SIZE, cfg.rf_depth),
    O("--tree-max-rows", T_SIZE, cfg.tree_max_rows),
    O("--tree-min-child-weight", T_DBL, cfg.tree_min_child_weight),
    O("--tree-class-rows", T_SIZE, cfg.tree_class_rows),
    O("--tree-refit-growth", T_DBL, cfg.tree_refit_growth),
    O("--tree-max-bin", T_SIZE, cfg.tree_max_bin),
    O("--xgb-valid", T_DBL, cfg.xgb_valid),
    O("--xgb-patience", T_SIZE, cfg.xgb_patience),
    O("--rf-min-leaf", T_SIZE, cfg.rf_min_leaf),
    O("--tree-unweighted", T_FLAG, cfg.tree_unweighted),
    O("--threads", T_INT, cfg.threads),
    O("--classes", T_SIZE, gen.n_classes),
    O("--dim", T_SIZE, gen.dim),
    O("--gen-days", T_SIZE, gen.days),
    O("--rows-per-day", T_SIZE, gen.rows_per_day),
    O("--zipf", T_DBL, gen.zipf),
    O("--min-class-rows", T_SIZE, gen.min_class_rows),
    O("--modes", T_SIZE, gen.max_modes),
    O("--kappa", T_DBL, gen.kappa),
    O("--group-size", T_SIZE, gen.group_size),
    O("--class-spread", T_DBL, gen.class_spread),
    O("--mode-spread", T_DBL, gen.mode_spread),
    O("--late-fraction", T_DBL, gen.late_fraction),
    O("--late-from", T_SIZE, gen.late_from),
    O("--late-to", T_SIZE, gen.late_to),
    O("--drift", T_DBL, gen.drift),
    O("--test-per-class", T_SIZE, gen.test_per_class),
};
#undef O

/* Parses argv[first..]; returns 0, -1 after printing help, or an exit code. */
static int parse_args(int argc, char **argv, int first, cli *c)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            fputs(usage_text2, stdout);
            return -1;
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const opt *o = NULL;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == nl && strncmp(opts[k].name, a, nl) == 0)
                o = &opts[k];
        if (!o)
            return usage_error("unknown option '%s'", a);
        char *field = (char *)c + o->off;
        if (o->type == T_FLAG) {
            if (eq)
                return usage_error("option '%s' takes no value", a);
            *(int *)field = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v)
            return usage_error("option '%s' needs a value", a);
        int bad = 0;
        switch (o->type) {
        case T_STR:
            *(const char **)field = v;
            bad = !*v;
            break;
        case T_SIZE:
            bad = parse_size(v, (size_t *)field);
            break;
        case T_U64: {
            size_t t;
            bad = parse_size(v, &t);
            *(uint64_t *)field = t;
            break;
        }
        case T_INT: {
            size_t t;
            bad = parse_size(v, &t) || t > 256;
            *(int *)field = (int)t;
            break;
        }
        case T_DBL:
            bad = parse_double(v, (double *)field);
            break;
        }
        if (bad)
            return usage_error("bad value for %s", o->name);
    }
    return 0;
}

/* Maps a library status to an exit code for input problems. */
static int input_exit(int rc)
{
    if (rc == VMF_EIO)
        return EX_NOINPUT;
    if (rc == VMF_ENOMEM)
        return EX_OSERR;
    return EX_DATAERR;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check_cfg(const cli *c)
{
    if (c->days < 1 || c->days > VMFSIM_MAX_DAY)
        return usage_error("--days must be in 1..200%s", "");
    if (c->cfg.refit_every < 1)
        return usage_error("--refit-every must be >= 1%s", "");
    if (c->replicates < 1 || c->replicates > 1000)
        return usage_error("--replicates must be in 1..1000%s", "");
    if (c->jobs < 1 || c->jobs > 256)
        return usage_error("--jobs must be in 1..256%s", "");
    if (c->cfg.knn_k < 1)
        return usage_error("--knn-k must be >= 1%s", "");
    if (c->cfg.gmm_max_iter < 1)
        return usage_error("--gmm-max-iter must be >= 1%s", "");
    if (!(c->cfg.svm_c > 0))
        return usage_error("--svm-c must be > 0%s", "");
    if (!(c->cfg.logreg_c > 0))
        return usage_error("--logreg-c must be > 0%s", "");
    if (c->cfg.xgb_rounds < 1 || c->cfg.xgb_depth < 1 || c->cfg.xgb_depth > 20 ||
        !(c->cfg.xgb_eta > 0 && c->cfg.xgb_eta <= 1))
        return usage_error("xgboost needs rounds >= 1, depth 1..20, eta in (0, 1]%s", "");
    if (c->cfg.rf_trees < 1 || c->cfg.rf_depth < 1 || c->cfg.rf_depth > 64)
        return usage_error("rf needs trees >= 1 and depth 1..64%s", "");
    if (!(c->cfg.tree_refit_growth >= 0 && c->cfg.tree_refit_growth <= 100) ||
        !(c->cfg.xgb_valid >= 0 && c->cfg.xgb_valid < 1) || c->cfg.rf_min_leaf < 1 ||
        c->cfg.tree_max_bin < 2 || c->cfg.tree_max_bin > 256)
        return usage_error("need --tree-refit-growth in [0, 100], --xgb-valid in [0, 1), "
                           "--rf-min-leaf >= 1, --tree-max-bin in 2..256%s",
                           "");
    if (!(c->cfg.vmf_kappa_scale >= 0 && c->cfg.vmf_kappa_scale <= 1000))
        return usage_error("--vmf-kappa-scale must be in (0, 1000]%s", "");
    if (c->cfg.threads < 1)
        return usage_error("--threads must be >= 1%s", "");
    return 0;
}

/* Loads or generates the stream; returns 0 or an exit code (message printed). */
static int get_stream(cli *c, vmfsim_stream *s)
{
    char err[VMFSIM_ERR_SIZE] = "";
    int rc;
    if (c->stream) {
        rc = vmfsim_stream_load(c->stream, s, err);
        if (rc)
            return simc_cli_fail(&c->ui, input_exit(rc), "%s", err);
    } else {
        vmfsim_gen_opts g = c->gen;
        g.seed = c->cfg.seed;
        rc = vmfsim_stream_generate(&g, s, NULL, err);
        if (rc)
            return simc_cli_fail(&c->ui, rc == VMF_EINVAL ? EX_USAGE : EX_SOFTWARE, "%s", err);
    }
    return 0;
}

static int cmd_gen(cli *c)
{
    if (!c->output)
        return usage_error("gen needs --output PREFIX%s", "");
    vmfsim_stream s;
    int ex = get_stream(c, &s);
    if (ex)
        return ex;
    char err[VMFSIM_ERR_SIZE] = "";
    int rc = vmfsim_stream_save(&s, c->output, err);
    if (rc) {
        vmfsim_stream_free(&s);
        return simc_cli_fail(&c->ui, EX_CANTCREAT, "%s", err);
    }
    printf("wrote %s.{X,y,split,day}.npy: %zu stream rows, %zu test rows, %zu classes, d = %zu\n",
           c->output, s.n_stream, s.n_test, s.n_classes, s.d);
    vmfsim_stream_free(&s);
    return 0;
}

static int prepare_out(cli *c, const char *dir, int plots)
{
    char p[4096];
    if (simc_cli_mkdirs(dir) != 0)
        return simc_cli_fail(&c->ui, EX_CANTCREAT, "cannot create the output directory %s: %s", dir,
                             strerror(errno));
    snprintf(p, sizeof p, "%s/plots", dir);
    if (plots && simc_cli_mkdirs(p) != 0)
        return simc_cli_fail(&c->ui, EX_CANTCREAT, "cannot create %s: %s", p, strerror(errno));
    return 0;
}

static int replay_exit(cli *c, int rc, const char *err, const char *via_url)
{
    int code = rc == VMF_ENOMEM ? EX_OSERR : EX_SOFTWARE;
    if (via_url && (rc == VMF_EIO || strstr(err, "vmfd")))
        code = VMFSIM_EX_UNAVAILABLE;
    return simc_cli_fail(&c->ui, code, "%s", err);
}

static int has_vmfmm(const int *families, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (families[i] == VMFSIM_VMFMM)
            return 1;
    return 0;
}

static int cmd_run(cli *c)
{
    int families[VMFSIM_MAX_MODEL];
    char err[VMFSIM_ERR_SIZE] = "";
    size_t n_models = vmfsim_models_parse(c->models ? c->models : "all", families, err);
    if (n_models == 0)
        return usage_error("%s", err);
    if (c->components && (parse_size(c->components, &c->cfg.components) || c->cfg.components < 1 ||
                          c->cfg.components > 64))
        return usage_error("--components must be in 1..64 for run (got '%s')", c->components);
    int ex = check_cfg(c);
    if (ex)
        return ex;
    if (c->cfg.via_url && strncmp(c->cfg.via_url, "http://", 7) != 0)
        return usage_error("--via needs an http://HOST:PORT URL (got '%s')", c->cfg.via_url);
    const char *dir = c->output_dir ? c->output_dir : "vmfsim-out";
    vmfsim_stream s;
    if ((ex = get_stream(c, &s)))
        return ex;
    if (c->cfg.via_url && has_vmfmm(families, n_models)) {
        /* Check the daemon before any work (the model opens its own client later). */
        vmfsim_via *probe = NULL;
        int rc = vmfsim_via_open(c->cfg.via_url, &probe, err);
        vmfsim_via_close(probe);
        if (rc) {
            vmfsim_stream_free(&s);
            return replay_exit(c, rc, err, c->cfg.via_url);
        }
    }
    if ((ex = prepare_out(c, dir, !c->no_plots))) {
        vmfsim_stream_free(&s);
        return ex;
    }
    vmfsim_replay_opts ro = {.days = c->days,
                             .families = families,
                             .n_models = n_models,
                             .cfg = c->cfg,
                             .progress = c->ui.progress,
                             .record_ranks = c->replicates > 1 && c->stream != NULL};
    vmfsim_curve *cv = NULL;
    double t0 = now_s();
    int rc = vmfsim_replay(&s, &ro, &cv, err);
    if (rc) {
        vmfsim_stream_free(&s);
        return replay_exit(c, rc, err, c->cfg.via_url);
    }
    vmfsim_reps *reps = NULL;
    if (c->replicates > 1) {
        vmfsim_gen_opts g = c->gen;
        vmfsim_reps_opts rop = {.n = c->replicates,
                                .jobs = c->jobs,
                                .seed = c->cfg.seed,
                                .gen = c->stream ? NULL : &g,
                                .progress = c->ui.progress};
        if ((rc = vmfsim_reps_new(c->replicates, n_models, c->days, &reps)) == VMF_OK)
            rc = vmfsim_reps_run(&s, &ro, cv, &rop, reps, err);
        else
            snprintf(err, VMFSIM_ERR_SIZE, "out of memory");
        if (rc) {
            vmfsim_reps_free(reps);
            vmfsim_curves_free(cv, n_models);
            vmfsim_stream_free(&s);
            return replay_exit(c, rc, err, NULL);
        }
        vmfsim_reps_bands(reps, cv);
    }
    double wall = now_s() - t0;
    vmfsim_run_info info = {.reps = reps,
                            .stream = c->stream ? c->stream : "synthetic",
                            .seed = c->cfg.seed,
                            .days = c->days,
                            .cfg = &c->cfg,
                            .s = &s,
                            .wall_s = wall,
                            .timings = !c->no_timings};
    char path[4096];
    ex = 0;
    snprintf(path, sizeof path, "%s/daily.csv", dir);
    if (vmfsim_write_daily_csv(path, cv, n_models, !c->no_timings, err))
        ex = simc_cli_fail(&c->ui, EX_CANTCREAT, "%s", err);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!ex && vmfsim_write_summary_json(path, cv, n_models, &info, err))
        ex = simc_cli_fail(&c->ui, EX_CANTCREAT, "%s", err);
    if (!ex && !c->no_plots) {
        char sub[512];
        snprintf(sub, sizeof sub, "stream %s, %zu classes, d = %zu, seed %llu%s", info.stream,
                 s.n_classes, s.d, (unsigned long long)c->cfg.seed,
                 c->cfg.via_url ? ", vmfmm via vmfd" : "");
        snprintf(path, sizeof path, "%s/plots", dir);
        if (vmfsim_plot_run(path, cv, n_models, &s, c->days, sub, err))
            ex = simc_cli_fail(&c->ui, EX_CANTCREAT, "plots: %s", err);
    }
    if (!ex) {
        if (c->json) {
            snprintf(path, sizeof path, "%s/summary.json", dir);
            json_t *j = json_load_file(path, 0, NULL);
            if (j) {
                json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
                fputc('\n', stdout);
                json_decref(j);
            }
        } else {
            printf("vmfsim run: %s stream, %zu classes, %zu stream rows, %zu test rows, "
                   "%zu days, seed %llu, %.1f s\n",
                   info.stream, s.n_classes, s.n_stream, s.n_test, c->days,
                   (unsigned long long)c->cfg.seed, wall);
            vmfsim_print_table(stdout, cv, n_models);
            printf("top1/top4: final macro recall; peak1/day: peak top-1 and its day; ttp1/2/5: "
                   "first day within 0.01/0.02/0.05 of the peak;\nrefit models refit every %zu "
                   "days and carry their last model in between.\noutputs in %s/\n",
                   c->cfg.refit_every, dir);
        }
    }
    vmfsim_reps_free(reps);
    vmfsim_curves_free(cv, n_models);
    vmfsim_stream_free(&s);
    return ex;
}

static int cmd_ablate(cli *c)
{
    size_t ks[64], nk = 0;
    const char *list = c->components ? c->components : "1,2,3,5,8,12";
    for (const char *p = list; *p;) {
        char tok[32];
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof tok || nk == 64)
            return usage_error("bad --components list '%s'", list);
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (parse_size(tok, &ks[nk]) || ks[nk] < 1 || ks[nk] > 64)
            return usage_error("bad --components value '%s' (1..64)", tok);
        nk++;
        p += len + (e ? 1 : 0);
    }
    if (nk == 0)
        return usage_error("empty --components list%s", "");
    int ex = check_cfg(c);
    if (ex)
        return ex;
    if (c->cfg.via_url)
        return usage_error("ablate runs vmfmm in-process; --via is not supported%s", "");
    const char *dir = c->output_dir ? c->output_dir : "vmfsim-ablate";
    vmfsim_stream s;
    if ((ex = get_stream(c, &s)))
        return ex;
    if ((ex = prepare_out(c, dir, !c->no_plots))) {
        vmfsim_stream_free(&s);
        return ex;
    }
    vmfsim_ablate_row rows[64];
    char err[VMFSIM_ERR_SIZE] = "";
    int fam = VMFSIM_VMFMM;
    for (size_t i = 0; i < nk; i++) {
        vmfsim_replay_opts ro = {
            .days = c->days, .families = &fam, .n_models = 1, .cfg = c->cfg, .progress = 0};
        ro.cfg.components = ks[i];
        vmfsim_curve *cv = NULL;
        double t0 = now_s();
        int rc = vmfsim_replay(&s, &ro, &cv, err);
        if (rc) {
            vmfsim_stream_free(&s);
            return replay_exit(c, rc, err, NULL);
        }
        vmfsim_ablate_row *r = &rows[i];
        r->k = ks[i];
        r->final_top1 = cv->top1[c->days - 1];
        r->final_top4 = cv->top4[c->days - 1];
        size_t d4;
        vmfsim_peak(cv->top1, c->days, &r->peak_top1, &r->peak_day);
        vmfsim_peak(cv->top4, c->days, &r->peak_top4, &d4);
        r->ttp = vmfsim_time_to_peak(cv->top1, c->days, 0.01);
        r->seconds = c->no_timings ? 0.0 : now_s() - t0;
        vmfsim_curves_free(cv, 1);
        simc_cli_progress(&c->ui, "vmfsim ablate: K_max %zu: final top-1 %.4f (%zu of %zu)", ks[i],
                          r->final_top1, i + 1, nk);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/ablate.csv", dir);
    vmf_atomic_file *af = NULL;
    simc_cli_progress_done(&c->ui);
    if (vmf_atomic_file_open(path, &af) != VMF_OK) {
        vmfsim_stream_free(&s);
        return simc_cli_fail(&c->ui, EX_CANTCREAT, "%s", vmf_last_error());
    }
    FILE *f = vmf_atomic_file_stream(af);
    fprintf(f, "components,final_top1,final_top4,peak_top1,peak_day,peak_top4,time_to_peak,"
               "seconds\n");
    for (size_t i = 0; i < nk; i++)
        fprintf(f, "%zu,%.8f,%.8f,%.8f,%zu,%.8f,%zu,%.3f\n", rows[i].k, rows[i].final_top1,
                rows[i].final_top4, rows[i].peak_top1, rows[i].peak_day, rows[i].peak_top4,
                rows[i].ttp, rows[i].seconds);
    if (vmf_atomic_file_commit(af) != VMF_OK)
        ex = simc_cli_fail(&c->ui, EX_CANTCREAT, "%s", vmf_last_error());
    const char *sname = c->stream ? c->stream : "synthetic";
    if (!ex && !c->no_plots) {
        char sub[512];
        snprintf(sub, sizeof sub, "stream %s, %zu classes, %zu days, seed %llu", sname, s.n_classes,
                 c->days, (unsigned long long)c->cfg.seed);
        snprintf(path, sizeof path, "%s/plots", dir);
        if (vmfsim_plot_ablate(path, rows, nk, sub, err))
            ex = simc_cli_fail(&c->ui, EX_CANTCREAT, "plots: %s", err);
    }
    printf("vmfsim ablate: vmfmm on the %s stream, %zu days, seed %llu\n", sname, c->days,
           (unsigned long long)c->cfg.seed);
    printf("%5s %10s %10s %10s %5s %10s %5s %8s\n", "K_max", "final1", "final4", "peak1", "day",
           "peak4", "ttp1", "seconds");
    for (size_t i = 0; i < nk; i++)
        printf("%5zu %10.4f %10.4f %10.4f %5zu %10.4f %5zu %8.2f\n", rows[i].k, rows[i].final_top1,
               rows[i].final_top4, rows[i].peak_top1, rows[i].peak_day, rows[i].peak_top4,
               rows[i].ttp, rows[i].seconds);
    printf("outputs in %s/\n", dir);
    vmfsim_stream_free(&s);
    return ex;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command (run, gen or ablate)%s", "");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        fputs(usage_text2, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vmfsim %s\n", vmf_version());
        return 0;
    }
    cli c;
    memset(&c, 0, sizeof c);
    c.cmd = argv[1];
    c.days = VMFSIM_MAX_DAY;
    c.replicates = 1;
    {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c.jobs = cpus < 1 ? 1 : cpus > 256 ? 256 : (size_t)cpus;
    }
    simc_cli_init(&c.ui, "vmfsim");
    vmfsim_model_cfg_init(&c.cfg);
    vmfsim_gen_opts_init(&c.gen);
    int is_run = strcmp(c.cmd, "run") == 0, is_gen = strcmp(c.cmd, "gen") == 0,
        is_ablate = strcmp(c.cmd, "ablate") == 0;
    if (!is_run && !is_gen && !is_ablate)
        return usage_error("unknown command '%s' (run, gen or ablate)", c.cmd);
    int ex = parse_args(argc, argv, 2, &c);
    if (ex < 0)
        return 0;
    if (ex)
        return ex;
    if (c.quiet)
        c.ui.progress = 0;
    if (is_gen)
        return cmd_gen(&c);
    ex = is_ablate ? cmd_ablate(&c) : cmd_run(&c);
    simc_plot_release(); /* cairo's and fontconfig's caches, for leak checkers */
    return ex;
}
