/*
 * vmfmm_args.c - the options that `vmfmm fit` and `vmfmm select` share: the
 * input (or the synthetic sample), the EM settings, the split and outputs.
 */
#include "vmfmm_tool.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const simc_cli_opt vmfmm_common_opts[] = {{"input", 'i', SIMC_CLI_REQ_ARG, OPT_INPUT},
                                          {"labels", 'l', SIMC_CLI_REQ_ARG, OPT_LABELS},
                                          {"n-components", 'k', SIMC_CLI_REQ_ARG, OPT_K},
                                          {"max-iter", 0, SIMC_CLI_REQ_ARG, OPT_MAX_ITER},
                                          {"tol", 0, SIMC_CLI_REQ_ARG, OPT_TOL},
                                          {"seed", 's', SIMC_CLI_REQ_ARG, OPT_SEED},
                                          {"n-init", 0, SIMC_CLI_REQ_ARG, OPT_N_INIT},
                                          {"init", 0, SIMC_CLI_REQ_ARG, OPT_INIT},
                                          {"assignment", 0, SIMC_CLI_REQ_ARG, OPT_ASSIGNMENT},
                                          {"hard", 0, SIMC_CLI_NO_ARG, OPT_HARD},
                                          {"kappa-estimator", 0, SIMC_CLI_REQ_ARG, OPT_KAPPA_EST},
                                          {"tied-kappa", 0, SIMC_CLI_NO_ARG, OPT_TIED},
                                          {"test-split", 0, SIMC_CLI_REQ_ARG, OPT_TEST_SPLIT},
                                          {"threads", 't', SIMC_CLI_REQ_ARG, OPT_THREADS},
                                          {"output-dir", 'o', SIMC_CLI_REQ_ARG, OPT_OUTPUT_DIR},
                                          {"n-samples", 0, SIMC_CLI_REQ_ARG, OPT_N_SAMPLES},
                                          {"dim", 0, SIMC_CLI_REQ_ARG, OPT_DIM},
                                          {"synthetic-k", 0, SIMC_CLI_REQ_ARG, OPT_SYNTH_K},
                                          {"json", 0, SIMC_CLI_NO_ARG, OPT_JSON},
                                          {"quiet", 'q', SIMC_CLI_NO_ARG, OPT_QUIET},
                                          {"no-plots", 0, SIMC_CLI_NO_ARG, OPT_NO_PLOTS},
                                          {"help", 'h', SIMC_CLI_NO_ARG, OPT_HELP},
                                          {"id-column", 0, SIMC_CLI_REQ_ARG, OPT_ID_COLUMN},
                                          {"label-column", 0, SIMC_CLI_REQ_ARG, OPT_LABEL_COLUMN},
                                          {"no-search", 0, SIMC_CLI_NO_ARG, OPT_NO_SEARCH},
                                          {"exact", 0, SIMC_CLI_NO_ARG, OPT_EXACT},
                                          {NULL, 0, 0, 0}};

void vmfmm_args_init(vmfmm_args *a)
{
    memset(a, 0, sizeof *a);
    a->output_dir = "results";
    a->n_samples = 1000;
    a->dim = 512;
    vmf_em_opts_init(&a->em);
    a->test_split = 0.2;
}

void vmfmm_args_free(vmfmm_args *a)
{
    for (size_t i = 0; i < a->n_glob_owned; i++)
        free(a->glob_owned[i]);
    free(a->glob_owned);
    a->glob_owned = NULL;
    a->n_glob_owned = 0;
}

/* Appends path to list (at most VMFMM_MAX_INPUTS); returns an exit code. */
static int push_path(simc_cli *cli, const char **list, size_t *n, const char *path, const char *opt)
{
    if (*n == VMFMM_MAX_INPUTS)
        return simc_cli_fail(cli, EX_USAGE, "more than %d %s files", VMFMM_MAX_INPUTS, opt);
    list[(*n)++] = path;
    return EX_OK;
}

/*
 * Adds the files of one --input/--labels argument: the path itself when it
 * names a file (or has no wildcard), else the sorted matches of it as a
 * glob (a quoted "shard-*.npy"); a glob without matches is kept as given so
 * that loading reports it unreadable.
 */
static int add_paths(simc_cli *cli, vmfmm_args *a, const char **list, size_t *n, const char *arg,
                     const char *opt)
{
    struct stat st;
    if (strpbrk(arg, "*?[") == NULL || stat(arg, &st) == 0)
        return push_path(cli, list, n, arg, opt);
    glob_t g;
    if (glob(arg, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        globfree(&g);
        return push_path(cli, list, n, arg, opt);
    }
    char **owned = realloc(a->glob_owned, (a->n_glob_owned + g.gl_pathc) * sizeof *owned);
    if (owned == NULL) {
        globfree(&g);
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    }
    a->glob_owned = owned;
    int ex = EX_OK;
    for (size_t i = 0; i < g.gl_pathc && !ex; i++) {
        char *p = strdup(g.gl_pathv[i]);
        if (p == NULL) {
            ex = simc_cli_fail(cli, EX_OSERR, "out of memory");
            break;
        }
        a->glob_owned[a->n_glob_owned++] = p;
        ex = push_path(cli, list, n, p, opt);
    }
    globfree(&g);
    return ex;
}

int vmfmm_args_apply(simc_cli *cli, vmfmm_args *a, int id, const char *arg)
{
    int ex;
    switch (id) {
    case OPT_INPUT:
        ex = add_paths(cli, a, a->inputs, &a->n_inputs, arg, "--input");
        a->input = a->n_inputs ? a->inputs[0] : NULL;
        return ex;
    case OPT_LABELS:
        ex = add_paths(cli, a, a->labels_list, &a->n_labels, arg, "--labels");
        a->labels = a->n_labels ? a->labels_list[0] : NULL;
        return ex;
    case OPT_NO_SEARCH:
        a->em.search = 0;
        return EX_OK;
    case OPT_EXACT:
        a->em.exact = 1;
        return EX_OK;
    case OPT_ID_COLUMN:
        if (arg[0] == '\0')
            return simc_cli_fail(cli, EX_USAGE, "--id-column must not be empty");
        a->id_column = arg;
        return EX_OK;
    case OPT_LABEL_COLUMN:
        if (arg[0] == '\0')
            return simc_cli_fail(cli, EX_USAGE, "--label-column must not be empty");
        a->label_column = arg;
        return EX_OK;
    case OPT_K:
        return simc_cli_parse_size(cli, "-k/--n-components", arg, 1, 100000, &a->em.n_components);
    case OPT_MAX_ITER:
        return simc_cli_parse_size(cli, "--max-iter", arg, 1, 1000000, &a->em.max_iter);
    case OPT_TOL:
        return simc_cli_parse_double(cli, "--tol", arg, 0, 1e300, &a->em.tol);
    case OPT_SEED:
        return simc_cli_parse_u64(cli, "--seed", arg, &a->em.seed);
    case OPT_N_INIT:
        return simc_cli_parse_size(cli, "--n-init", arg, 1, 10000, &a->em.n_init);
    case OPT_INIT:
        if (strcmp(arg, "kmeans++") == 0)
            a->em.init = VMF_INIT_KMEANSPP;
        else if (strcmp(arg, "random") == 0)
            a->em.init = VMF_INIT_RANDOM;
        else
            return simc_cli_fail(cli, EX_USAGE, "--init must be kmeans++ or random, got '%.40s'",
                                 arg);
        return EX_OK;
    case OPT_ASSIGNMENT:
        if (strcmp(arg, "soft") == 0)
            a->em.assignment = VMF_ASSIGN_SOFT;
        else if (strcmp(arg, "hard") == 0)
            a->em.assignment = VMF_ASSIGN_HARD;
        else if (strcmp(arg, "stochastic") == 0)
            a->em.assignment = VMF_ASSIGN_STOCHASTIC;
        else
            return simc_cli_fail(cli, EX_USAGE,
                                 "--assignment must be soft, hard or stochastic, got '%.40s'", arg);
        return EX_OK;
    case OPT_HARD:
        a->em.assignment = VMF_ASSIGN_HARD;
        return EX_OK;
    case OPT_KAPPA_EST:
        return vmfmm_parse_estimator(cli, arg, &a->em.kappa.estimator);
    case OPT_TIED:
        a->em.tied_kappa = 1;
        return EX_OK;
    case OPT_TEST_SPLIT:
        return simc_cli_parse_double(cli, "--test-split", arg, 0, 0.95, &a->test_split);
    case OPT_THREADS:
        return simc_cli_parse_size(cli, "--threads", arg, 0, 1024, &a->threads);
    case OPT_OUTPUT_DIR:
        if (arg[0] == '\0')
            return simc_cli_fail(cli, EX_USAGE, "--output-dir must not be empty");
        a->output_dir = arg;
        return EX_OK;
    case OPT_N_SAMPLES:
        return simc_cli_parse_size(cli, "--n-samples", arg, 1, 100000000, &a->n_samples);
    case OPT_DIM:
        return simc_cli_parse_size(cli, "--dim", arg, 2, 65536, &a->dim);
    case OPT_SYNTH_K:
        return simc_cli_parse_size(cli, "--synthetic-k", arg, 1, 100000, &a->synth_k);
    case OPT_JSON:
        a->json = 1;
        return EX_OK;
    case OPT_QUIET:
        a->quiet = 1;
        cli->progress = 0;
        return EX_OK;
    case OPT_NO_PLOTS:
        a->no_plots = 1;
        return EX_OK;
    default:
        return -1;
    }
}

int vmfmm_args_load(simc_cli *cli, const vmfmm_args *a, vmfmm_data *data)
{
    if (a->input == NULL) {
        if (a->labels)
            return simc_cli_fail(cli, EX_USAGE,
                                 "--labels needs --input (the synthetic sample has its own)");
        size_t k = a->synth_k ? a->synth_k : a->em.n_components;
        simc_cli_progress(cli, "drawing %zu synthetic rows (d=%zu, k=%zu)", a->n_samples, a->dim,
                          k);
        return vmfmm_data_synthetic(cli, a->n_samples, a->dim, k, a->em.seed, data);
    }
    /* A positional input (vmfmm_positionals) lands in a->input alone. */
    const char *one[1] = {a->input};
    const char *const *paths = a->n_inputs ? a->inputs : one;
    size_t np = a->n_inputs ? a->n_inputs : 1;
    if (a->n_labels > 0 && a->n_labels != np)
        return simc_cli_fail(cli, EX_USAGE,
                             "%zu --labels files for %zu --input files: give one per input, in "
                             "the same order",
                             a->n_labels, np);
    if (a->label_column && a->n_labels > 0)
        return simc_cli_fail(cli, EX_USAGE, "--label-column and --labels both give labels");
    if (np == 1 && !a->id_column && !a->label_column) {
        simc_cli_progress(cli, "loading %s", paths[0]);
        return vmfmm_data_load(cli, paths[0], a->n_labels ? a->labels_list[0] : NULL, data);
    }
    simc_cli_progress(cli, "loading %zu file%s", np, np == 1 ? "" : "s");
    return vmfmm_data_load_many(cli, paths, np, a->labels_list, a->n_labels, a->id_column,
                                a->label_column, data);
}

int vmfmm_make_dir(simc_cli *cli, const char *dir)
{
    if (simc_cli_mkdirs(dir) != 0)
        return simc_cli_fail(cli, EX_CANTCREAT, "cannot create directory '%s': %s", dir,
                             strerror(errno));
    return EX_OK;
}

int vmfmm_positionals(simc_cli *cli, const simc_cli_parser *p, const char *cmd, const char **slot)
{
    if (p->n_positional == 0)
        return EX_OK;
    int open = slot != NULL && *slot == NULL;
    if (open && p->n_positional == 1) {
        *slot = p->positional[0];
        return EX_OK;
    }
    return simc_cli_fail(cli, EX_USAGE, "unexpected argument '%.100s' (see 'vmfmm %s --help')",
                         p->positional[open ? 1 : 0], cmd);
}

int vmfmm_make_plots_dir(simc_cli *cli, const char *output_dir, char *plots, size_t cap)
{
    if (simc_cli_join(plots, cap, output_dir, "plots") == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    return vmfmm_make_dir(cli, plots);
}

const char *vmfmm_assignment_name(vmf_assignment a)
{
    switch (a) {
    case VMF_ASSIGN_SOFT:
        return "soft";
    case VMF_ASSIGN_HARD:
        return "hard";
    case VMF_ASSIGN_STOCHASTIC:
        return "stochastic";
    }
    return "?";
}

const char *vmfmm_init_name(vmf_init i)
{
    switch (i) {
    case VMF_INIT_KMEANSPP:
        return "kmeans++";
    case VMF_INIT_RANDOM:
        return "random";
    case VMF_INIT_GIVEN:
        return "given";
    }
    return "?";
}
