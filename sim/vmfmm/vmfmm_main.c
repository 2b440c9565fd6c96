/*
 * vmfmm_main.c - entry point of `vmfmm`, the offline fit / select / predict /
 * sample / inspect tool for von Mises-Fisher mixtures.
 */
#include "plot.h"
#include "vmfmm_tool.h"

#include <stdio.h>
#include <string.h>

static const char MAIN_HELP[] =
    "Usage: vmfmm COMMAND [options]\n"
    "\n"
    "Offline tool for mixtures of von Mises-Fisher distributions on unit embeddings.\n"
    "\n"
    "Commands:\n"
    "  fit       fit a mixture to .npy/.npz/.csv rows (or a synthetic sample);\n"
    "            writes model.json, convergence.json, metrics.json, plots/\n"
    "  select    fit K = a..b and choose K by BIC, AIC or held-out likelihood\n"
    "  predict   components (mixture) or classes (classifier) of new rows\n"
    "  sample    draw rows from a fitted mixture\n"
    "  inspect   print a readable summary of a model JSON file\n"
    "  embed     CLIP embeddings of a text file or an image folder (.npy);\n"
    "            'fit --clip-model DIR --text-file F --image-dir D' embeds then fits\n"
    "\n"
    "Run 'vmfmm COMMAND --help' for the options of a command.\n"
    "\n"
    "Examples:\n"
    "  vmfmm fit -k 10 --input X.npy --labels y.npy --output-dir results\n"
    "  vmfmm select -k 1..20 --criterion bic --input X.npy --json\n"
    "  vmfmm predict --model results/model.json --input X.npy --output assign.npy\n"
    "  vmfmm sample --model results/model.json -n 1000 --output sample.npy\n"
    "  vmfmm inspect results/model.json\n"
    "\n"
    "Exit status (sysexits): 0 ok, 64 usage, 65 bad data, 66 unreadable input,\n"
    "70 internal error, 71 out of memory, 73 cannot create output, 74 I/O error,\n"
    "78 options that do not fit together.\n";

static int run(simc_cli *cli, int argc, char **argv);

int main(int argc, char **argv)
{
    simc_cli cli;
    simc_cli_init(&cli, "vmfmm");
    int code = run(&cli, argc, argv);
    /* Font caches live for the process; free them so leak checkers see a clean exit. */
    simc_plot_release();
    return code;
}

static int run(simc_cli *cli, int argc, char **argv)
{
    if (argc < 2)
        return simc_cli_fail(cli, EX_USAGE, "missing command (see 'vmfmm --help')");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(MAIN_HELP, stdout);
        return EX_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("vmfmm %s\n", vmf_version());
        return EX_OK;
    }
    if (strcmp(cmd, "fit") == 0 && vmfmm_clip_requested(argc, argv))
        return vmfmm_cmd_fit_clip(cli, argc, argv);
    if (strcmp(cmd, "fit") == 0)
        return vmfmm_cmd_fit(cli, argc, argv);
    if (strcmp(cmd, "embed") == 0)
        return vmfmm_cmd_embed(cli, argc, argv);
    if (strcmp(cmd, "select") == 0)
        return vmfmm_cmd_select(cli, argc, argv);
    if (strcmp(cmd, "predict") == 0)
        return vmfmm_cmd_predict(cli, argc, argv);
    if (strcmp(cmd, "sample") == 0)
        return vmfmm_cmd_sample(cli, argc, argv);
    if (strcmp(cmd, "inspect") == 0)
        return vmfmm_cmd_inspect(cli, argc, argv);
    if (cmd[0] == '-')
        return simc_cli_fail(cli, EX_USAGE,
                             "unknown option '%.60s' before the command (see 'vmfmm --help')", cmd);
    return simc_cli_fail(cli, EX_USAGE, "unknown command '%.60s' (see 'vmfmm --help')", cmd);
}
