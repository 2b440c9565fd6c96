/*
 * vmfmm_fitcheck.c - what `vmfmm fit` checks around a fit: the output
 * directory rule (never mix the files of two fits) and the warnings a user
 * must not miss (not converged, near-duplicate means, starved components).
 */
#include "vmfmm_tool.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The files a fit writes into its output directory (vmfmm_fit.c). The
 * embeddings of --clip-model are not among them: that run checks the rule
 * before writing them and then overwrites them.
 */
static const char *const owned_files[] = {"model.json",      "convergence.json", "metrics.json",
                                          "classifier.json", "assignments.npy",  "split.npy"};
/* The charts of vmfmm_report.c, each as .png and .svg, in plots/. */
static const char *const owned_plots[] = {"convergence",    "means_2d", "similarity",
                                          "counts",         "entropy",  "contingency",
                                          "weights_kappas", "overview"};

/* Number of entries of dir besides . and .. (at most 2 counted), -1 when it cannot be read. */
static int dir_entries(const char *dir, char *first, size_t cap)
{
    DIR *dp = opendir(dir);
    if (dp == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL && n < 2) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == 0)
            snprintf(first, cap, "%s", e->d_name);
        n++;
    }
    closedir(dp);
    return n;
}

/* Deletes dir/name when it exists; returns an exit code. */
static int remove_owned(simc_cli *cli, const char *dir, const char *name)
{
    char path[VMFMM_PATH_MAX];
    if (simc_cli_join(path, sizeof path, dir, name) == NULL)
        return simc_cli_fail(cli, EX_USAGE, "output path too long");
    if (unlink(path) != 0 && errno != ENOENT)
        return simc_cli_fail(cli, EX_CANTCREAT, "--force: cannot remove '%s': %s", path,
                             strerror(errno));
    return EX_OK;
}

int vmfmm_output_dir_prepare(simc_cli *cli, const char *dir, int force)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return EX_OK;
        return simc_cli_fail(cli, EX_CANTCREAT, "output directory '%s': %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return simc_cli_fail(cli, EX_CANTCREAT, "output directory '%s' is not a directory", dir);
    char first[256] = "";
    int n = dir_entries(dir, first, sizeof first);
    if (n < 0)
        return simc_cli_fail(cli, EX_CANTCREAT, "cannot read output directory '%s': %s", dir,
                             strerror(errno));
    if (n == 0)
        return EX_OK;
    if (!force)
        return simc_cli_fail(cli, EX_CANTCREAT,
                             "output directory '%s' is not empty (it holds '%s'%s); choose "
                             "another, or pass --force to replace a previous fit's files",
                             dir, first, n > 1 ? " and more" : "");
    int ex = EX_OK;
    for (size_t i = 0; i < sizeof owned_files / sizeof *owned_files && !ex; i++)
        ex = remove_owned(cli, dir, owned_files[i]);
    char plots[VMFMM_PATH_MAX];
    if (!ex && simc_cli_join(plots, sizeof plots, dir, "plots") == NULL)
        ex = simc_cli_fail(cli, EX_USAGE, "output path too long");
    for (size_t i = 0; i < sizeof owned_plots / sizeof *owned_plots && !ex; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.png", owned_plots[i]);
        ex = remove_owned(cli, plots, name);
        snprintf(name, sizeof name, "%s.svg", owned_plots[i]);
        if (!ex)
            ex = remove_owned(cli, plots, name);
    }
    /* plots/ goes too when nothing but our charts was in it. */
    if (!ex && rmdir(plots) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST &&
        errno != ENOTDIR)
        ex = simc_cli_fail(cli, EX_CANTCREAT, "--force: cannot remove '%s': %s", plots,
                           strerror(errno));
    return ex;
}

/* Appends a formatted warning to arr and prints it on stderr. */
static void warn(simc_cli *cli, json_t *arr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn(simc_cli *cli, json_t *arr, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    simc_cli_warn(cli, "%s", msg);
    json_array_append_new(arr, json_string(msg));
}

json_t *vmfmm_fit_warnings(simc_cli *cli, const vmf_mixture *m, const vmf_em_report *rep,
                           double tol, size_t max_iter, size_t n_rows)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    size_t k = vmf_mixture_n_components(m), d = vmf_mixture_dim(m);
    const float *mu = vmf_mixture_means(m);
    const double *w = vmf_mixture_weights(m);
    /* With --tol 0 a fixed number of iterations was asked for: no verdict. */
    if (!rep->converged && rep->n_iter > 0 && tol > 0.0) {
        double last =
            rep->n_iter >= 2 ? rep->trace[rep->n_iter - 1] - rep->trace[rep->n_iter - 2] : NAN;
        warn(cli, arr,
             "EM did not converge in %zu iterations (last change %.3g nats per row); raise "
             "--max-iter or loosen --tol",
             max_iter, last);
    }
    double top = -2.0;
    size_t ta = 0, tb = 0, close = 0;
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++) {
            double c = 0.0;
            for (size_t j = 0; j < d; j++)
                c += (double)mu[a * d + j] * (double)mu[b * d + j];
            if (c > VMFMM_WARN_COSINE)
                close++;
            if (c > top) {
                top = c;
                ta = a;
                tb = b;
            }
        }
    if (close > 0)
        warn(cli, arr,
             "%zu pair%s of means with cosine above %.2f (components %zu and %zu: %.4f): "
             "probably one cluster split in two; consider a smaller K",
             close, close == 1 ? "" : "s", VMFMM_WARN_COSINE, ta, tb, top);
    size_t starved = 0, first = 0;
    for (size_t c = 0; c < k; c++)
        if (w[c] * (double)n_rows < VMFMM_WARN_ROWS) {
            if (starved == 0)
                first = c;
            starved++;
        }
    if (starved > 0)
        warn(cli, arr,
             "%zu component%s with under %.0f rows' mass (component %zu: %.3g rows): K is "
             "probably larger than the data supports",
             starved, starved == 1 ? "" : "s", VMFMM_WARN_ROWS, first, w[first] * (double)n_rows);
    return arr;
}
