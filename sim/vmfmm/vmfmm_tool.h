/*
 * vmfmm_tool.h - internal declarations of the vmfmm command-line tool.
 *
 * The tool is split by concern: vmfmm_main.c (dispatch, help), vmfmm_data.c
 * (loading and checking inputs, the built-in synthetic sample, the train/test
 * split), vmfmm_fit.c (fit and its output files), vmfmm_report.c (the plots of
 * a fit), vmfmm_select.c (choosing K), vmfmm_predict.c (predict, sample,
 * inspect) and vmfmm_json.c (small JSON helpers over jansson).
 *
 * Every subcommand function returns a process exit code (sysexits) and has
 * printed its one-line error when that code is not 0.
 */
#ifndef VMFMM_TOOL_H
#define VMFMM_TOOL_H

#include "cli.h"
#include "vmfmm.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define VMFMM_PATH_MAX 4096

/* Subcommands. */
int vmfmm_cmd_fit(simc_cli *cli, int argc, char **argv);
int vmfmm_cmd_select(simc_cli *cli, int argc, char **argv);
int vmfmm_cmd_predict(simc_cli *cli, int argc, char **argv);
int vmfmm_cmd_sample(simc_cli *cli, int argc, char **argv);
int vmfmm_cmd_inspect(simc_cli *cli, int argc, char **argv);
/* CLIP (vmfmm_embed.c): `embed`, and `fit` when vmfmm_clip_requested (--clip-model). */
int vmfmm_cmd_embed(simc_cli *cli, int argc, char **argv);
int vmfmm_cmd_fit_clip(simc_cli *cli, int argc, char **argv);
int vmfmm_clip_requested(int argc, char **argv);

/*
 * The streaming fit (vmfmm_stream.c): out of core and across MPI ranks.
 * vmfmm_cmd_fit hands over when vmfmm_stream_wanted (--out-of-core, or an
 * MPI launcher with more than one process).
 */
int vmfmm_stream_wanted(int argc, char **argv);
int vmfmm_cmd_fit_stream(simc_cli *cli, int argc, char **argv);

/* ---- data ---------------------------------------------------------------- */

/* A loaded data set: unit rows, and optionally labels as dense class indices. */
typedef struct vmfmm_data {
    float *x; /* [n][d], unit rows, malloc'ed */
    size_t n, d;
    int32_t *y;                       /* [n] class index, or NULL when unlabelled */
    vmf_label_table *labels;          /* class index -> label, or NULL */
    char source[VMFMM_PATH_MAX + 64]; /* "path" or "synthetic (n=1000, d=512, k=5, seed=42)" */
    int synthetic;
} vmfmm_data;

void vmfmm_data_free(vmfmm_data *data);

/*
 * Loads path (.npy, .npz with X and optional y, .csv) and, when labels_path
 * is not NULL, labels from it (.npy, .npz member "y", or .csv of integers).
 * Rows are normalized to unit norm; a zero or NaN/Inf row is an error naming
 * the row. Returns an exit code.
 */
int vmfmm_data_load(simc_cli *cli, const char *path, const char *labels_path, vmfmm_data *out);

/* At most this many --input (and --labels) files per run. */
#define VMFMM_MAX_INPUTS 1024

/*
 * Loads n_paths inputs (as vmfmm_data_load each) and concatenates their rows
 * in the order given; every file must have the same dimension. labels_paths
 * holds 0 or n_paths label files, matched by position; without them the
 * labels inside the inputs (.npz y, CSV label column) are used when every
 * input has them. For CSV inputs, id_column / label_column (may be NULL)
 * name columns kept out of the matrix (vmf_csv_read_columns); the label
 * column gives string labels. Returns an exit code.
 */
int vmfmm_data_load_many(simc_cli *cli, const char *const *paths, size_t n_paths,
                         const char *const *labels_paths, size_t n_labels, const char *id_column,
                         const char *label_column, vmfmm_data *out);

/*
 * The built-in synthetic sample: n rows in dimension d drawn from a mixture of
 * k vMF components with random unit means, kappas giving a mean resultant
 * length (expected cosine to the mean) uniform in [0.7, 0.9], and weights from
 * a Dirichlet(5) draw, all from `seed`. Labels are the true components.
 * Returns an exit code.
 */
int vmfmm_data_synthetic(simc_cli *cli, size_t n, size_t d, size_t k, uint64_t seed,
                         vmfmm_data *out);

/*
 * Deterministic split: is_test[n] gets exactly round(n * fraction) ones at
 * positions drawn without replacement with a generator seeded by seed ^ a
 * constant (so the split does not correlate with the EM initialisation).
 */
void vmfmm_split(size_t n, double fraction, uint64_t seed, uint8_t *is_test);

/* Copies the rows with is_test[i] == want into a new matrix (and labels when y != NULL). */
int vmfmm_gather(const vmfmm_data *data, const uint8_t *is_test, uint8_t want, float **x,
                 int32_t **y, size_t *n);

/* Opens-and-closes path to tell "cannot read" (exit 66) apart from bad content. */
int vmfmm_check_readable(simc_cli *cli, const char *what, const char *path);

/* Label order: integers by value, strings by strcmp. */
int vmfmm_label_less(const vmf_label_table *t, size_t a, size_t b);

/* order [size of t] <- class indices sorted by label. */
void vmfmm_label_order(const vmf_label_table *t, size_t *order);

/* ---- models -------------------------------------------------------------- */

typedef enum vmfmm_model_kind { VMFMM_MODEL_MIXTURE, VMFMM_MODEL_CLASSIFIER } vmfmm_model_kind;

typedef struct vmfmm_model {
    vmfmm_model_kind kind;
    vmf_mixture *mixture;
    vmf_classifier *classifier;
} vmfmm_model;

/* Reads a model JSON file (either kind, told by "kind"). Returns an exit code. */
int vmfmm_model_load(simc_cli *cli, const char *path, vmfmm_model *out);
void vmfmm_model_free(vmfmm_model *m);

/* ---- JSON ------------------------------------------------------------------ */

/* json_real, or null for NaN/Inf (JSON has no such numbers). */
json_t *vmfmm_jreal(double v);
json_t *vmfmm_jreal_array(const double *v, size_t n);

/* Writes obj (pretty, 2 spaces) atomically to path; prints the error. Returns an exit code. */
int vmfmm_json_write(simc_cli *cli, const char *path, json_t *obj);

/* Prints obj on stdout as one line followed by a newline. */
int vmfmm_json_print(simc_cli *cli, json_t *obj);

/* ---- fit reports --------------------------------------------------------- */

/* Everything the plots of a fit need (all borrowed). */
typedef struct vmfmm_fit_view {
    const vmf_mixture *mixture;
    const vmf_em_report *report;
    const vmfmm_data *data; /* all rows */
    const int32_t *assign;  /* [data->n] hard assignment of every row */
    const double *entropy;  /* [data->n] posterior entropy of every row, in bits */
    const char *summary;    /* text block for the overview page */
    const char *subtitle;   /* data set line under titles */
    uint64_t seed;          /* for the sample of points in the 2-D projection */
} vmfmm_fit_view;

/* Writes the plots of a fit into dir (PNG and SVG each). Returns an exit code. */
int vmfmm_report_plots(simc_cli *cli, const vmfmm_fit_view *v, const char *dir);

/*
 * The top-2 principal directions of the rows of a [n][d] (centred by their
 * mean) into dirs [2][d] and the mean into mean [d]; power iteration with a
 * fixed start. n >= 1.
 */
void vmfmm_pca2(const float *a, size_t n, size_t d, double *mean, double *dirs);

/* ---- option helpers -------------------------------------------------------- */

/* Options shared by fit and select. */
typedef struct vmfmm_args {
    const char *input;      /* NULL = built-in synthetic sample */
    const char *labels;     /* --labels */
    const char *output_dir; /* default "results" */
    size_t n_samples;       /* synthetic rows, default 1000 */
    size_t dim;             /* synthetic dimension, default 512 */
    size_t synth_k;         /* synthetic components; 0 = same as -k (or 5) */
    vmf_em_opts em;         /* EM options (-k, --max-iter, ...) */
    double test_split;      /* fraction of rows held out, default 0.2 */
    size_t threads;         /* OpenBLAS threads; 0 = unchanged */
    int json;               /* --json */
    int quiet;              /* --quiet: no progress */
    int no_plots;           /* --no-plots */
    /* Several inputs (repeated --input, or a quoted glob) and their labels, in order. */
    const char *inputs[VMFMM_MAX_INPUTS];
    size_t n_inputs;
    const char *labels_list[VMFMM_MAX_INPUTS];
    size_t n_labels;
    char **glob_owned; /* paths expanded from globs, freed by vmfmm_args_free */
    size_t n_glob_owned;
    const char *id_column;    /* --id-column (CSV) */
    const char *label_column; /* --label-column (CSV) */
    int force;                /* fit --force: replace a previous fit's files */
} vmfmm_args;

/* Releases what vmfmm_args_apply allocated (glob expansions). */
void vmfmm_args_free(vmfmm_args *a);

/* Option ids shared by fit and select (their tables list these plus their own). */
enum {
    OPT_INPUT = 1,
    OPT_LABELS,
    OPT_K,
    OPT_MAX_ITER,
    OPT_TOL,
    OPT_SEED,
    OPT_N_INIT,
    OPT_INIT,
    OPT_ASSIGNMENT,
    OPT_HARD,
    OPT_KAPPA_EST,
    OPT_TIED,
    OPT_TEST_SPLIT,
    OPT_THREADS,
    OPT_OUTPUT_DIR,
    OPT_N_SAMPLES,
    OPT_DIM,
    OPT_SYNTH_K,
    OPT_JSON,
    OPT_QUIET,
    OPT_NO_PLOTS,
    OPT_HELP,
    OPT_CRITERION,
    OPT_MODEL,
    OPT_TOP_K,
    OPT_PROBA,
    OPT_OUTPUT,
    OPT_ID_COLUMN,
    OPT_LABEL_COLUMN,
    OPT_FORCE,
    OPT_NO_SEARCH,
    OPT_EXACT,
    OPT_N
};

/* The option table entries of vmfmm_args (terminated by an entry with id 0). */
extern const simc_cli_opt vmfmm_common_opts[];

void vmfmm_args_init(vmfmm_args *a);

/*
 * Applies one parsed option to a; returns an exit code, or -1 when id is not
 * a common option. For select, -k is handled by the caller (a range).
 */
int vmfmm_args_apply(simc_cli *cli, vmfmm_args *a, int id, const char *arg);

/*
 * Loads the input (or draws the synthetic sample with synth_k components),
 * returns an exit code.
 */
int vmfmm_args_load(simc_cli *cli, const vmfmm_args *a, vmfmm_data *data);

/*
 * The output-directory rule of `vmfmm fit`: a directory that does not exist
 * or is empty is fine; a non-empty one is refused (exit 73) unless force,
 * which deletes the files a fit writes (vmfmm_fit.c lists them) and leaves
 * everything else. Returns an exit code.
 */
int vmfmm_output_dir_prepare(simc_cli *cli, const char *dir, int force);

/*
 * The fit's warnings (not converged when tol > 0, near-duplicate means,
 * starved components) as a JSON array of strings, each also printed on
 * stderr. n_rows is the number of rows fitted.
 */
json_t *vmfmm_fit_warnings(simc_cli *cli, const vmf_mixture *m, const vmf_em_report *rep,
                           double tol, size_t max_iter, size_t n_rows);

/* Thresholds of the warnings. */
#define VMFMM_WARN_COSINE 0.95 /* two means closer than this: probably one cluster split */
#define VMFMM_WARN_ROWS   3.0  /* a component with less mass than this many rows */

/* Creates dir (mkdir -p), printing the error; returns an exit code. */
int vmfmm_make_dir(simc_cli *cli, const char *dir);

/*
 * Checks the positional arguments of `vmfmm cmd`: when slot is not NULL and
 * still unset, one positional argument fills it; any other is refused (exit
 * 64, naming the first one not taken). Returns an exit code.
 */
int vmfmm_positionals(simc_cli *cli, const simc_cli_parser *p, const char *cmd, const char **slot);

/* Creates output_dir/plots and writes its path into plots [cap]; returns an exit code. */
int vmfmm_make_plots_dir(simc_cli *cli, const char *output_dir, char *plots, size_t cap);

/* Short names of the enums for reports. */
const char *vmfmm_assignment_name(vmf_assignment a);
const char *vmfmm_init_name(vmf_init i);

/* Parses "banerjee|sra|song|exact" (exit 64 on error). */
int vmfmm_parse_estimator(simc_cli *cli, const char *arg, vmf_kappa_estimator *out);

/* Applies --threads to OpenBLAS (0 = leave as is). */
void vmfmm_set_threads(size_t threads);

#endif
