/*
 * vmfmm_embed.c - `vmfmm embed` (CLIP embeddings of a text file and/or an
 * image folder into an .npy file) and `vmfmm fit --clip-model ...` (embed,
 * then fit the embeddings as `vmfmm fit --input` would), over libvmfmm_clip.
 *
 * Rows: the texts in file order (one per line), then the images of the
 * folder (files ending in .jpg, .jpeg or .png, any case, sorted by name).
 * --ids writes one line per row: "FILE:LINE" for a text, the image's path
 * for an image, so rows stay traceable when corrupt images are skipped.
 *
 * Memory: the model, one batch of work space (--batch rows) and the output
 * matrix [rows][dim].
 */
#include "vmfmm/clip.h"
#include "vmfmm_tool.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char EMBED_HELP[] =
    "Usage: vmfmm embed --model DIR (--text-file F | --image-dir D) --output X.npy [options]\n"
    "\n"
    "CLIP embeddings (unit rows, float32) of texts and images with a Hugging Face CLIP\n"
    "checkpoint directory (config.json, model.safetensors, vocab.json, merges.txt).\n"
    "\n"
    "Options:\n"
    "  --model DIR          checkpoint directory (e.g. a copy of openai/clip-vit-base-patch32)\n"
    "  --text-file F        UTF-8 text file, one text per line (texts come first)\n"
    "  --image-dir D        folder of .jpg/.jpeg/.png images (sorted by name)\n"
    "  -o, --output X.npy   output matrix [rows][dim]\n"
    "  --ids FILE           write one id per row: FILE:LINE for texts, the path for images\n"
    "  --batch N            texts or images per batch (default 32); bounds the memory\n"
    "  --strict             a corrupt image is an error (default: skipped with a warning)\n"
    "  --truncate           cut texts longer than the context (default: an error)\n"
    "  -q, --quiet          no progress line\n"
    "  -h, --help           this help\n"
    "\n"
    "`vmfmm fit --clip-model DIR [--text-file F] [--image-dir D] [--batch N] [--strict]\n"
    "[--truncate] FIT-OPTIONS` embeds first, writes OUTPUT_DIR/embeddings.npy and\n"
    "OUTPUT_DIR/embeddings.ids.txt, then fits them like `vmfmm fit --input`.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data (corrupt weights or image, empty or too\n"
    "long text), 66 unreadable input, 71 out of memory, 73 cannot create output.\n";

typedef struct embed_opts {
    const char *model, *text_file, *image_dir;
    size_t batch;
    int strict, truncate, quiet;
} embed_opts;

typedef struct embed_out {
    float *x; /* [n][d] */
    size_t n, d;
    char **ids; /* [n] */
} embed_out;

static void embed_out_free(embed_out *o)
{
    free(o->x);
    for (size_t i = 0; i < o->n; i++)
        free(o->ids[i]);
    free(o->ids);
    memset(o, 0, sizeof *o);
}

/* Exit code of a libvmfmm_clip failure: unreadable input 66, bad data 65. */
static int clip_fail(simc_cli *cli, int rc)
{
    int code = rc == VMF_EIO ? EX_NOINPUT : rc == VMF_ENOMEM ? EX_OSERR : EX_DATAERR;
    return simc_cli_fail(cli, code, "%s", vmf_clip_last_error());
}

static char *dup_printf(const char *a, const char *b, size_t line)
{
    size_t cap = strlen(a) + strlen(b) + 32;
    char *s = malloc(cap);
    if (s) {
        if (line)
            snprintf(s, cap, "%s:%zu", a, line);
        else
            snprintf(s, cap, "%s/%s", a, b);
    }
    return s;
}

static int grow(simc_cli *cli, embed_out *o, size_t extra)
{
    size_t n = o->n + extra;
    float *x = realloc(o->x, (n ? n : 1) * o->d * sizeof *x);
    if (!x)
        return simc_cli_fail(cli, EX_OSERR, "out of memory for %zu embeddings", n);
    o->x = x;
    char **ids = realloc(o->ids, (n ? n : 1) * sizeof *ids);
    if (!ids)
        return simc_cli_fail(cli, EX_OSERR, "out of memory for %zu embeddings", n);
    o->ids = ids;
    return EX_OK;
}

static int embed_texts(simc_cli *cli, const embed_opts *opt, const vmf_clip *m, embed_out *o)
{
    const char *path = opt->text_file;
    char *text = NULL;
    size_t len = 0;
    if (simc_cli_read_file(path, (size_t)1 << 31, &text, &len) != 0)
        return simc_cli_fail(cli, EX_NOINPUT, "%s: cannot read: %s", path, strerror(errno));
    int code = EX_OK;
    size_t cap = 64, n = 0;
    char **lines = malloc(cap * sizeof *lines);
    size_t *lineno = malloc(cap * sizeof *lineno);
    size_t ctx = vmf_clip_context_length(m);
    int32_t *ids = malloc((ctx + 1) * sizeof *ids);
    if (!lines || !lineno || !ids) {
        code = simc_cli_fail(cli, EX_OSERR, "out of memory reading %s", path);
        goto done;
    }
    if (memchr(text, '\0', len)) {
        code = simc_cli_fail(cli, EX_DATAERR, "%s: contains a NUL byte (not a text file)", path);
        goto done;
    }
    /* Split into lines (a final newline ends the last line; \r\n is accepted). */
    size_t line = 0;
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *end = nl ? nl : text + len;
        line++;
        if (end > p && end[-1] == '\r')
            end[-1] = '\0';
        *end = '\0';
        if (n == cap) {
            cap *= 2;
            char **l2 = realloc(lines, cap * sizeof *l2);
            size_t *n2 = l2 ? realloc(lineno, cap * sizeof *n2) : NULL;
            if (l2)
                lines = l2;
            if (!l2 || !n2) {
                code = simc_cli_fail(cli, EX_OSERR, "out of memory reading %s", path);
                goto done;
            }
            lineno = n2;
        }
        lines[n] = p;
        lineno[n++] = line;
        p = nl ? nl + 1 : text + len;
    }
    if (n == 0) {
        code = simc_cli_fail(cli, EX_DATAERR, "%s: no text lines", path);
        goto done;
    }
    /* Check every line first, so that an error names its line before any work is done. */
    for (size_t i = 0; i < n; i++) {
        size_t count = 0;
        int rc = vmf_clip_tokenize(m, lines[i], opt->truncate, ids, ctx + 1, &count);
        if (rc == VMF_EINVAL) {
            code = simc_cli_fail(cli, EX_DATAERR, "%s:%zu: empty text line", path, lineno[i]);
            goto done;
        }
        if (rc == VMF_ERANGE) {
            code = simc_cli_fail(cli, EX_DATAERR,
                                 "%s:%zu: text longer than the context (%s; --truncate keeps the "
                                 "first tokens)",
                                 path, lineno[i], vmf_clip_last_error());
            goto done;
        }
        if (rc != VMF_OK) {
            code = simc_cli_fail(cli, rc == VMF_ENOMEM ? EX_OSERR : EX_DATAERR, "%s:%zu: %s", path,
                                 lineno[i], vmf_clip_last_error());
            goto done;
        }
    }
    if ((code = grow(cli, o, n)) != EX_OK)
        goto done;
    for (size_t i = 0; i < n; i += opt->batch) {
        size_t b = n - i < opt->batch ? n - i : opt->batch;
        simc_cli_progress(cli, "embedding texts %zu/%zu", i, n);
        int rc = vmf_clip_embed_texts(m, (const char *const *)lines + i, b, opt->truncate,
                                      o->x + (o->n + i) * o->d);
        if (rc != VMF_OK) {
            code = clip_fail(cli, rc);
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!(o->ids[o->n] = dup_printf(path, "", lineno[i]))) {
            code = simc_cli_fail(cli, EX_OSERR, "out of memory");
            goto done;
        }
        o->n++;
    }
    simc_cli_progress_done(cli);
done:
    free(text);
    free(lines);
    free(lineno);
    free(ids);
    return code;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_images(simc_cli *cli, const char *dir, char ***names_out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return simc_cli_fail(cli, EX_NOINPUT, "%s: cannot open folder: %s", dir, strerror(errno));
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    int code = EX_OK;
    while (names && (e = readdir(d)) != NULL) {
        char ext[16];
        simc_cli_extension(e->d_name, ext, sizeof ext);
        if (e->d_name[0] == '.' ||
            (strcmp(ext, "jpg") != 0 && strcmp(ext, "jpeg") != 0 && strcmp(ext, "png") != 0))
            continue;
        if (n == cap) {
            char **g = realloc(names, (cap *= 2) * sizeof *g);
            if (!g)
                break;
            names = g;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (!names || (e != NULL)) {
        for (size_t i = 0; names && i < n; i++)
            free(names[i]);
        free(names);
        return simc_cli_fail(cli, EX_OSERR, "out of memory listing %s", dir);
    }
    if (n == 0) {
        free(names);
        return simc_cli_fail(cli, EX_NOINPUT, "%s: no .jpg, .jpeg or .png files", dir);
    }
    qsort(names, n, sizeof *names, name_cmp);
    *names_out = names;
    *n_out = n;
    return code;
}

static int embed_images(simc_cli *cli, const embed_opts *opt, const vmf_clip *m, embed_out *o)
{
    char **names = NULL;
    size_t n = 0;
    int code = list_images(cli, opt->image_dir, &names, &n);
    if (code != EX_OK)
        return code;
    size_t s = vmf_clip_image_size(m), per = 3 * s * s, skipped = 0;
    float *pixels = malloc(opt->batch * per * sizeof *pixels);
    char **batch_ids = calloc(opt->batch, sizeof *batch_ids);
    char *skip_list = calloc(1, 1);
    size_t skip_len = 0;
    if (!pixels || !batch_ids || !skip_list) {
        code = simc_cli_fail(cli, EX_OSERR, "out of memory for a batch of %zu images", opt->batch);
        goto done;
    }
    for (size_t i = 0; i < n;) {
        size_t b = 0;
        for (; i < n && b < opt->batch; i++) {
            simc_cli_progress(cli, "embedding images %zu/%zu", i, n);
            char *path = dup_printf(opt->image_dir, names[i], 0);
            if (!path) {
                code = simc_cli_fail(cli, EX_OSERR, "out of memory");
                goto done;
            }
            int rc = vmf_clip_preprocess_file(m, path, pixels + b * per);
            if (rc == VMF_OK) {
                batch_ids[b++] = path;
                continue;
            }
            if (opt->strict || rc == VMF_ENOMEM) {
                free(path);
                code = clip_fail(cli, rc);
                goto done;
            }
            simc_cli_warn(cli, "skipping %s", vmf_clip_last_error());
            skipped++;
            size_t add = strlen(names[i]) + 2;
            char *l2 = realloc(skip_list, skip_len + add + 1);
            if (l2) {
                skip_list = l2;
                skip_len += (size_t)snprintf(skip_list + skip_len, add + 1, "%s%s",
                                             skip_len ? ", " : "", names[i]);
            }
            free(path);
        }
        if (b == 0)
            continue;
        if ((code = grow(cli, o, b)) != EX_OK)
            goto done;
        int rc = vmf_clip_embed_pixels(m, pixels, b, o->x + o->n * o->d);
        if (rc != VMF_OK) {
            code = clip_fail(cli, rc);
            goto done;
        }
        for (size_t j = 0; j < b; j++) {
            o->ids[o->n++] = batch_ids[j];
            batch_ids[j] = NULL;
        }
    }
    simc_cli_progress_done(cli);
    if (skipped == n) {
        code = simc_cli_fail(cli, EX_DATAERR, "%s: none of the %zu images could be decoded",
                             opt->image_dir, n);
        goto done;
    }
    if (skipped)
        simc_cli_warn(cli, "skipped %zu of %zu images in %s: %s", skipped, n, opt->image_dir,
                      skip_list);
done:
    for (size_t j = 0; batch_ids && j < opt->batch; j++)
        free(batch_ids[j]);
    free(batch_ids);
    free(pixels);
    free(skip_list);
    for (size_t j = 0; j < n; j++)
        free(names[j]);
    free(names);
    return code;
}

/* Embeds the texts, then the images, of opt into *o. Returns an exit code. */
static int embed_run(simc_cli *cli, const embed_opts *opt, embed_out *o)
{
    memset(o, 0, sizeof *o);
    vmf_clip *m = NULL;
    simc_cli_progress(cli, "loading %s", opt->model);
    int rc = vmf_clip_load(opt->model, &m);
    simc_cli_progress_done(cli);
    if (rc != VMF_OK)
        return clip_fail(cli, rc);
    o->d = vmf_clip_dim(m);
    int code = EX_OK;
    if (opt->text_file)
        code = embed_texts(cli, opt, m, o);
    if (code == EX_OK && opt->image_dir)
        code = embed_images(cli, opt, m, o);
    vmf_clip_free(m);
    if (code != EX_OK)
        embed_out_free(o);
    return code;
}

static int write_outputs(simc_cli *cli, const embed_out *o, const char *npy, const char *ids)
{
    vmf_array a = {.dtype = VMF_DTYPE_F32, .ndim = 2, .count = o->n * o->d, .data = o->x};
    a.shape[0] = o->n;
    a.shape[1] = o->d;
    int rc = vmf_npy_write(npy, &a);
    if (rc != VMF_OK)
        return simc_cli_fail(cli, rc == VMF_EIO ? EX_CANTCREAT : simc_cli_exit_code(rc), "%s: %s",
                             npy, vmf_last_error());
    if (!ids)
        return EX_OK;
    size_t len = 0;
    for (size_t i = 0; i < o->n; i++)
        len += strlen(o->ids[i]) + 1;
    char *buf = malloc(len + 1), *p = buf;
    if (!buf)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    for (size_t i = 0; i < o->n; i++)
        p += sprintf(p, "%s\n", o->ids[i]);
    int err = simc_cli_write_file(ids, buf, len);
    free(buf);
    if (err != 0)
        return simc_cli_fail(cli, EX_CANTCREAT, "%s: cannot write: %s", ids, strerror(errno));
    return EX_OK;
}

static int check_inputs(simc_cli *cli, const embed_opts *o, const char *cmd)
{
    if (!o->model)
        return simc_cli_fail(cli, EX_USAGE,
                             "%s: --model DIR is required (see 'vmfmm embed --help')", cmd);
    if (!o->text_file && !o->image_dir)
        return simc_cli_fail(
            cli, EX_USAGE, "%s: give --text-file F and/or --image-dir D (see 'vmfmm embed --help')",
            cmd);
    return EX_OK;
}

enum {
    E_MODEL = 1,
    E_TEXT,
    E_IMAGES,
    E_OUTPUT,
    E_IDS,
    E_BATCH,
    E_STRICT,
    E_TRUNC,
    E_QUIET,
    E_HELP
};

int vmfmm_cmd_embed(simc_cli *cli, int argc, char **argv)
{
    static const simc_cli_opt opts[] = {{"model", 0, SIMC_CLI_REQ_ARG, E_MODEL},
                                        {"text-file", 0, SIMC_CLI_REQ_ARG, E_TEXT},
                                        {"image-dir", 0, SIMC_CLI_REQ_ARG, E_IMAGES},
                                        {"output", 'o', SIMC_CLI_REQ_ARG, E_OUTPUT},
                                        {"ids", 0, SIMC_CLI_REQ_ARG, E_IDS},
                                        {"batch", 0, SIMC_CLI_REQ_ARG, E_BATCH},
                                        {"strict", 0, SIMC_CLI_NO_ARG, E_STRICT},
                                        {"truncate", 0, SIMC_CLI_NO_ARG, E_TRUNC},
                                        {"quiet", 'q', SIMC_CLI_NO_ARG, E_QUIET},
                                        {"help", 'h', SIMC_CLI_NO_ARG, E_HELP},
                                        {NULL, 0, 0, 0}};
    embed_opts o = {.batch = 32};
    const char *output = NULL, *ids = NULL, *arg;
    simc_cli_parser p;
    simc_cli_parser_init(&p, argc, argv, 2, "embed");
    int id;
    while ((id = simc_cli_next(cli, &p, opts, &arg)) > 0) {
        switch (id) {
        case E_MODEL:
            o.model = arg;
            break;
        case E_TEXT:
            o.text_file = arg;
            break;
        case E_IMAGES:
            o.image_dir = arg;
            break;
        case E_OUTPUT:
            output = arg;
            break;
        case E_IDS:
            ids = arg;
            break;
        case E_BATCH:
            if (simc_cli_parse_size(cli, "--batch", arg, 1, 65536, &o.batch) != EX_OK)
                return EX_USAGE;
            break;
        case E_STRICT:
            o.strict = 1;
            break;
        case E_TRUNC:
            o.truncate = 1;
            break;
        case E_QUIET:
            cli->progress = 0;
            break;
        case E_HELP:
            fputs(EMBED_HELP, stdout);
            return EX_OK;
        }
    }
    if (id < 0)
        return EX_USAGE;
    int code = vmfmm_positionals(cli, &p, "embed", NULL);
    if (code != EX_OK || (code = check_inputs(cli, &o, "embed")) != EX_OK)
        return code;
    if (!output)
        return simc_cli_fail(cli, EX_USAGE,
                             "embed: --output X.npy is required (see 'vmfmm embed --help')");
    embed_out e;
    if ((code = embed_run(cli, &o, &e)) != EX_OK)
        return code;
    code = write_outputs(cli, &e, output, ids);
    embed_out_free(&e);
    return code;
}

int vmfmm_clip_requested(int argc, char **argv)
{
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strncmp(argv[i], "--clip-model", 12) == 0 &&
            (argv[i][12] == '\0' || argv[i][12] == '='))
            return 1;
    return 0;
}

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past it. */
static int take(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t l = strlen(name);
    if (strncmp(argv[*i], name, l) != 0)
        return 0;
    if (argv[*i][l] == '=') {
        *value = argv[*i] + l + 1;
        (*i)++;
        return 1;
    }
    if (argv[*i][l] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        *value = NULL;
        (*i)++;
        return 1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

int vmfmm_cmd_fit_clip(simc_cli *cli, int argc, char **argv)
{
    embed_opts o = {.batch = 32};
    const char *output_dir = "results", *batch = NULL;
    char **rest = calloc((size_t)argc + 3, sizeof *rest);
    if (!rest)
        return simc_cli_fail(cli, EX_OSERR, "out of memory");
    int nr = 0, code = EX_OK, i = 2;
    rest[nr++] = argv[0];
    rest[nr++] = argv[1];
    while (i < argc) {
        const char *v = NULL;
        const char *a = argv[i];
        int consumed = 1;
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest[nr++] = argv[i++];
            break;
        }
        if (take(argc, argv, &i, "--clip-model", &v))
            o.model = v;
        else if (take(argc, argv, &i, "--text-file", &v))
            o.text_file = v;
        else if (take(argc, argv, &i, "--image-dir", &v))
            o.image_dir = v;
        else if (take(argc, argv, &i, "--batch", &v))
            batch = v;
        else
            consumed = 0;
        if (consumed) {
            if (!v) {
                code = simc_cli_fail(cli, EX_USAGE, "fit: %s needs a value", a);
                goto done;
            }
            continue;
        }
        if (strcmp(a, "--strict") == 0 || strcmp(a, "--truncate") == 0) {
            *(a[2] == 's' ? &o.strict : &o.truncate) = 1;
            i++;
            continue;
        }
        if (strcmp(a, "--input") == 0 || strncmp(a, "--input=", 8) == 0) {
            code = simc_cli_fail(cli, EX_USAGE,
                                 "fit: --clip-model embeds its own input; drop --input");
            goto done;
        }
        if (strcmp(a, "--output-dir") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 < argc)
                output_dir = argv[i + 1];
        } else if (strncmp(a, "--output-dir=", 13) == 0) {
            output_dir = a + 13;
        } else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0') {
            output_dir = a + 2;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(EMBED_HELP, stdout);
            goto done;
        }
        rest[nr++] = argv[i++];
    }
    if (batch && simc_cli_parse_size(cli, "--batch", batch, 1, 65536, &o.batch) != EX_OK) {
        code = EX_USAGE;
        goto done;
    }
    for (int j = 2; j < nr; j++)
        if (strcmp(rest[j], "--quiet") == 0 || strcmp(rest[j], "-q") == 0 ||
            strcmp(rest[j], "--json") == 0)
            cli->progress = 0;
    if ((code = check_inputs(cli, &o, "fit")) != EX_OK)
        goto done;
    /* fit's output-directory rule, before the embeddings land there. */
    int force = 0;
    for (int j = 2; j < nr; j++)
        force |= strcmp(rest[j], "--force") == 0;
    if ((code = vmfmm_output_dir_prepare(cli, output_dir, force)) != EX_OK)
        goto done;
    if ((code = vmfmm_make_dir(cli, output_dir)) != EX_OK)
        goto done;
    char npy[VMFMM_PATH_MAX], ids[VMFMM_PATH_MAX];
    if (!simc_cli_join(npy, sizeof npy, output_dir, "embeddings.npy") ||
        !simc_cli_join(ids, sizeof ids, output_dir, "embeddings.ids.txt")) {
        code = simc_cli_fail(cli, EX_USAGE, "fit: --output-dir is too long");
        goto done;
    }
    embed_out e;
    if ((code = embed_run(cli, &o, &e)) != EX_OK)
        goto done;
    code = write_outputs(cli, &e, npy, ids);
    embed_out_free(&e);
    if (code != EX_OK)
        goto done;
    rest[nr++] = "--input";
    rest[nr++] = npy;
    /* The directory now holds this run's embeddings: the fit may write beside them. */
    if (!force)
        rest[nr++] = "--force";
    code = vmfmm_cmd_fit(cli, nr, rest);
done:
    free(rest);
    return code;
}
