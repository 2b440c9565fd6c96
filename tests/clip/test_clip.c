/*
 * test_clip.c - libvmfmm_clip against the references that make_tiny_clip.py
 * builds at test time (directory in $VMF_CLIP_FIXTURE): a tiny random CLIP in
 * Hugging Face's layout, token ids from a Python implementation of CLIP's
 * BPE, PIL-preprocessed pixels and float64 PyTorch embeddings written from
 * the published architecture. Then every load and input error: missing and
 * truncated weights, a wrong shape, unexpected tensors, corrupt and
 * unreadable images, empty, too long and non-UTF-8 texts.
 */
#include "clip_internal.h"
#include "vmf_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define clip_ok(rc)                                                                                \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (rc_ != VMF_OK)                                                                         \
            fail_msg("%s returned %d: %s", #rc, rc_, vmf_clip_last_error());                       \
    } while (0)

static const char *fixture_dir(void)
{
    const char *d = getenv("VMF_CLIP_FIXTURE");
    if (!d) {
        fprintf(stderr, "VMF_CLIP_FIXTURE is not set (run through ctest)\n");
        abort();
    }
    return d;
}

static const char *fx(const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", fixture_dir(), name);
    return buf;
}

static vmf_clip *load_tiny(void)
{
    char p[4096];
    vmf_clip *m = NULL;
    clip_ok(vmf_clip_load(fx("model", p, sizeof p), &m));
    return m;
}

/* Lines of a text file (without newlines), count in *n; free with free_lines. */
static char **read_lines(const char *path, size_t *n)
{
    char *text = vmf_test_read_file(path, NULL);
    size_t cap = 16, k = 0;
    char **lines = malloc(cap * sizeof *lines);
    for (char *s = strtok(text, "\n"); s; s = strtok(NULL, "\n")) {
        if (k == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[k++] = strdup(s);
    }
    free(text);
    *n = k;
    return lines;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

static double *read_ref(const char *name, size_t *n, size_t *d)
{
    char p[4096];
    vmf_array a;
    vmf_assert_ok(vmf_npy_read(fx(name, p, sizeof p), &a));
    assert_int_equal(a.ndim, a.ndim >= 2 ? a.ndim : 2);
    size_t count = a.count;
    double *v = malloc(count * sizeof *v);
    for (size_t i = 0; i < count; i++)
        v[i] = a.dtype == VMF_DTYPE_F64 ? ((double *)a.data)[i] : ((float *)a.data)[i];
    *n = a.shape[0];
    *d = count / a.shape[0];
    vmf_array_free(&a);
    return v;
}

/* Cosine >= 0.99999 and max |diff| <= 1e-4 for every row. */
static void assert_embeddings(const float *got, const double *ref, size_t n, size_t d)
{
    double worst_cos = 1, worst_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double dot = 0, ng = 0, nr = 0;
        for (size_t j = 0; j < d; j++) {
            dot += got[i * d + j] * ref[i * d + j];
            ng += (double)got[i * d + j] * got[i * d + j];
            nr += ref[i * d + j] * ref[i * d + j];
            double diff = fabs(got[i * d + j] - ref[i * d + j]);
            worst_diff = diff > worst_diff ? diff : worst_diff;
        }
        double c = dot / sqrt(ng * nr);
        worst_cos = c < worst_cos ? c : worst_cos;
    }
    printf("# %zu rows: worst cosine %.9f, max abs diff %.3g\n", n, worst_cos, worst_diff);
    assert_true(worst_cos >= 0.99999);
    assert_true(worst_diff <= 1e-4);
}

static void test_tokenizer_matches_reference(void **state)
{
    (void)state;
    vmf_clip *m = load_tiny();
    char p[4096];
    json_error_t jerr;
    json_t *root = json_load_file(fx("tokens.json", p, sizeof p), 0, &jerr);
    assert_non_null(root);
    assert_true(json_array_size(root) >= 200);
    size_t i, mismatches = 0;
    json_t *item;
    int32_t ids[4096];
    json_array_foreach(root, i, item)
    {
        const char *text = json_string_value(json_object_get(item, "text"));
        json_t *want = json_object_get(item, "ids");
        size_t n = 0;
        clip_ok(vmf__clip_tokenizer_encode(m->tok, text, ids, 4096, &n));
        int same = n == json_array_size(want);
        for (size_t j = 0; same && j < n; j++)
            same = ids[j] == json_integer_value(json_array_get(want, j));
        if (!same) {
            mismatches++;
            printf("# mismatch on '%s': %zu ids, want %zu\n", text, n, json_array_size(want));
        }
    }
    assert_int_equal(mismatches, 0);
    json_decref(root);
    vmf_clip_free(m);
}

static void test_tokenize_public(void **state)
{
    (void)state;
    vmf_clip *m = load_tiny();
    size_t ctx = vmf_clip_context_length(m), n = 0;
    assert_int_equal(ctx, 16);
    int32_t ids[64];
    clip_ok(vmf_clip_tokenize(m, "a photo of a cat", 0, ids, 64, &n));
    assert_true(n >= 3 && n <= ctx);
    int32_t sot = ids[0], eot = ids[n - 1];
    assert_true(eot > sot);
    /* Empty and white-space-only texts. */
    assert_int_equal(vmf_clip_tokenize(m, "", 0, ids, 64, &n), VMF_EINVAL);
    assert_non_null(strstr(vmf_clip_last_error(), "empty"));
    assert_int_equal(vmf_clip_tokenize(m, " \t\u3000 ", 0, ids, 64, &n), VMF_EINVAL);
    /* Too long: an error, or truncation that keeps the end token. */
    const char *longtext = "zq xj vk wy qz jx kv yw zq xj vk wy qz jx kv yw zq xj";
    assert_int_equal(vmf_clip_tokenize(m, longtext, 0, ids, 64, &n), VMF_ERANGE);
    assert_non_null(strstr(vmf_clip_last_error(), "context holds 16"));
    clip_ok(vmf_clip_tokenize(m, longtext, 1, ids, 64, &n));
    assert_int_equal(n, ctx);
    assert_int_equal(ids[0], sot);
    assert_int_equal(ids[ctx - 1], eot);
    /* A very long text stops early: quick, and the message says "more than". */
    size_t big = 400000;
    char *huge = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        huge[i] = i % 6 == 5 ? ' ' : (char)('a' + i % 23);
    huge[big] = '\0';
    assert_int_equal(vmf_clip_tokenize(m, huge, 0, ids, 64, &n), VMF_ERANGE);
    assert_non_null(strstr(vmf_clip_last_error(), "more than 64 tokens, the context holds 16"));
    clip_ok(vmf_clip_tokenize(m, huge, 1, ids, 64, &n));
    assert_int_equal(n, ctx);
    assert_int_equal(ids[ctx - 1], eot);
    free(huge);
    /* Invalid UTF-8. */
    assert_int_equal(vmf_clip_tokenize(m, "bad \xC3\x28 byte", 0, ids, 64, &n), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "UTF-8"));
    assert_int_equal(vmf_clip_tokenize(m, "x", 0, ids, 4, &n), VMF_EINVAL);
    /* embed_texts names the bad text. */
    const char *texts[2] = {"fine", ""};
    float out[64];
    assert_int_equal(vmf_clip_embed_texts(m, texts, 2, 0, out), VMF_EINVAL);
    assert_non_null(strstr(vmf_clip_last_error(), "text 1: empty"));
    vmf_clip_free(m);
}

static void test_text_embeddings(void **state)
{
    (void)state;
    vmf_clip *m = load_tiny();
    char p[4096];
    size_t n, rn, d;
    char **texts = read_lines(fx("texts.txt", p, sizeof p), &n);
    double *ref = read_ref("text_ref.npy", &rn, &d);
    assert_int_equal(n, rn);
    assert_int_equal(d, vmf_clip_dim(m));
    assert_true(n >= 20);
    float *out = malloc(n * d * sizeof *out);
    clip_ok(vmf_clip_embed_texts(m, (const char *const *)texts, n, 0, out));
    assert_embeddings(out, ref, n, d);
    /* One at a time gives the same rows as the batch. */
    float one[64];
    for (size_t i = 0; i < n; i += 5) {
        clip_ok(vmf_clip_embed_texts(m, (const char *const *)&texts[i], 1, 0, one));
        for (size_t j = 0; j < d; j++)
            vmf_assert_close(one[j], out[i * d + j], 0, 1e-6);
    }
    free(out);
    free(ref);
    free_lines(texts, n);
    vmf_clip_free(m);
}

static char **image_paths(size_t *n)
{
    char p[4096];
    char **names = read_lines(fx("image_names.txt", p, sizeof p), n);
    for (size_t i = 0; i < *n; i++) {
        const char *fd = fixture_dir();
        size_t cap = strlen(fd) + strlen(names[i]) + 16;
        char *full = malloc(cap);
        snprintf(full, cap, "%s/images/%s", fd, names[i]);
        free(names[i]);
        names[i] = full;
    }
    return names;
}

static void test_pixels_match_pil(void **state)
{
    (void)state;
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    vmf_clip *m = load_tiny();
    size_t n, rn, d, S = vmf_clip_image_size(m);
    char **paths = image_paths(&n);
    double *ref = read_ref("pixels_ref.npy", &rn, &d);
    assert_int_equal(n, rn);
    assert_int_equal(d, 3 * S * S);
    assert_true(n >= 20);
    float *px = malloc(d * sizeof *px);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        clip_ok(vmf_clip_preprocess_file(m, paths[i], px));
        for (size_t j = 0; j < d; j++) {
            double diff = fabs(px[j] - ref[i * d + j]) * std[j / (S * S)];
            worst = diff > worst ? diff : worst;
        }
    }
    printf("# %zu images: max pixel difference %.3g (in 0..1 units)\n", n, worst);
    assert_true(worst <= 2.0 / 255.0);
    free(px);
    free(ref);
    free_lines(paths, n);
    vmf_clip_free(m);
}

static void test_image_embeddings(void **state)
{
    (void)state;
    vmf_clip *m = load_tiny();
    size_t n, rn, d;
    char **paths = image_paths(&n);
    double *ref = read_ref("image_ref.npy", &rn, &d);
    assert_int_equal(n, rn);
    assert_int_equal(d, vmf_clip_dim(m));
    float *out = malloc(n * d * sizeof *out);
    clip_ok(vmf_clip_embed_images(m, (const char *const *)paths, n, out));
    assert_embeddings(out, ref, n, d);
    float one[64];
    clip_ok(vmf_clip_embed_images(m, (const char *const *)&paths[3], 1, one));
    for (size_t j = 0; j < d; j++)
        vmf_assert_close(one[j], out[3 * d + j], 0, 1e-6);
    free(out);
    free(ref);
    free_lines(paths, n);
    vmf_clip_free(m);
}

/* ---- errors ------------------------------------------------------------------ */

static void copy_file(const char *from, const char *to, size_t keep)
{
    size_t len;
    void *data = vmf_test_read_file(from, &len);
    vmf_test_write_file(to, data, keep < len ? keep : len);
    free(data);
}

/* A copy of the tiny model in dir/model, with model.safetensors cut to keep bytes. */
static void copy_model(const char *dir, size_t keep, char *mdir, size_t cap)
{
    char src[4096], dst[4096];
    snprintf(mdir, cap, "%s/model", dir);
    mkdir(mdir, 0777);
    const char *files[] = {"config.json", "vocab.json", "merges.txt", "model.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/model/%s", fixture_dir(), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", mdir, files[i]);
        copy_file(src, dst, i == 3 ? keep : (size_t)-1);
    }
}

static void expect_load_error(const char *mdir, int rc_want, const char *needle1,
                              const char *needle2)
{
    vmf_clip *m = (vmf_clip *)1;
    int rc = vmf_clip_load(mdir, &m);
    printf("# %s\n", vmf_clip_last_error());
    assert_int_equal(rc, rc_want);
    assert_null(m);
    assert_non_null(strstr(vmf_clip_last_error(), needle1));
    if (needle2)
        assert_non_null(strstr(vmf_clip_last_error(), needle2));
    assert_null(strchr(vmf_clip_last_error(), '\n'));
}

static void test_missing_and_truncated_weights(void **state)
{
    const char *dir = *state;
    char mdir[4096], p[8192];
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    snprintf(p, sizeof p, "%s/model.safetensors", mdir);
    unlink(p);
    expect_load_error(mdir, VMF_EIO, "model.safetensors", "cannot open");
    /* Cut inside the data: the message names a tensor past the end. */
    struct stat st;
    stat(fx("model/model.safetensors", p, sizeof p), &st);
    copy_model(dir, (size_t)st.st_size - 100, mdir, sizeof mdir);
    expect_load_error(mdir, VMF_EFORMAT, "truncated", "tensor ");
    /* Cut inside the header. */
    copy_model(dir, 50, mdir, sizeof mdir);
    expect_load_error(mdir, VMF_EFORMAT, "model.safetensors", "header");
    copy_model(dir, 3, mdir, sizeof mdir);
    expect_load_error(mdir, VMF_EFORMAT, "truncated", NULL);
    /* Missing config.json, vocab.json. */
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    snprintf(p, sizeof p, "%s/vocab.json", mdir);
    unlink(p);
    expect_load_error(mdir, VMF_EIO, "vocab.json", NULL);
    snprintf(p, sizeof p, "%s/config.json", mdir);
    unlink(p);
    expect_load_error(mdir, VMF_EIO, "config.json", NULL);
}

/* Rewrites config.json of mdir with key (in section, or top level when NULL) set to value. */
static void set_config(const char *mdir, const char *sec, const char *key, json_t *value)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", mdir);
    json_error_t jerr;
    json_t *root = json_load_file(p, 0, &jerr);
    assert_non_null(root);
    json_object_set_new(sec ? json_object_get(root, sec) : root, key, value);
    assert_int_equal(json_dump_file(root, p, 0), 0);
    json_decref(root);
}

static void test_wrong_shapes(void **state)
{
    const char *dir = *state;
    char mdir[4096];
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, NULL, "projection_dim", json_integer(16));
    expect_load_error(mdir, VMF_EFORMAT, "projection.weight has shape [32, ", "implies [16, ");
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, "vision_config", "num_hidden_layers", json_integer(1));
    expect_load_error(mdir, VMF_EFORMAT, "unexpected tensor vision_model.encoder.layers.1.", NULL);
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, "text_config", "num_hidden_layers", json_integer(3));
    expect_load_error(mdir, VMF_EFORMAT, "missing tensor text_model.encoder.layers.2.", NULL);
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, "vision_config", "patch_size", json_integer(5));
    expect_load_error(mdir, VMF_EFORMAT, "config.json", "patch_size");
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, "text_config", "hidden_act", json_string("relu"));
    expect_load_error(mdir, VMF_EFORMAT, "hidden_act", NULL);
    copy_model(dir, (size_t)-1, mdir, sizeof mdir);
    set_config(mdir, "text_config", "vocab_size", json_integer(100));
    expect_load_error(mdir, VMF_EFORMAT, "token_embedding.weight has shape", NULL);
}

static void test_bad_images(void **state)
{
    const char *dir = *state;
    vmf_clip *m = load_tiny();
    size_t n, S = vmf_clip_image_size(m);
    char **paths = image_paths(&n);
    float *px = malloc(3 * S * S * sizeof *px);
    char p[4096];
    /* Truncated JPEG and PNG, garbage, empty, missing, a directory. */
    const char *jpg = NULL, *png = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!jpg && strstr(paths[i], ".jpg"))
            jpg = paths[i];
        if (!png && strstr(paths[i], ".png"))
            png = paths[i];
    }
    size_t len;
    void *data = vmf_test_read_file(jpg, &len);
    snprintf(p, sizeof p, "%s/cut.jpg", dir);
    vmf_test_write_file(p, data, len / 2);
    assert_int_equal(vmf_clip_preprocess_file(m, p, px), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "cut.jpg: corrupt JPEG"));
    free(data);
    data = vmf_test_read_file(png, &len);
    snprintf(p, sizeof p, "%s/cut.png", dir);
    vmf_test_write_file(p, data, len / 2);
    assert_int_equal(vmf_clip_preprocess_file(m, p, px), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "cut.png: corrupt PNG"));
    free(data);
    snprintf(p, sizeof p, "%s/garbage.jpg", dir);
    vmf_test_write_text(p, "this is not an image at all");
    assert_int_equal(vmf_clip_preprocess_file(m, p, px), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "garbage.jpg: not a JPEG or PNG"));
    snprintf(p, sizeof p, "%s/empty.png", dir);
    vmf_test_write_text(p, "");
    assert_int_equal(vmf_clip_preprocess_file(m, p, px), VMF_EFORMAT);
    snprintf(p, sizeof p, "%s/absent.png", dir);
    assert_int_equal(vmf_clip_preprocess_file(m, p, px), VMF_EIO);
    assert_non_null(strstr(vmf_clip_last_error(), "absent.png: cannot open"));
    assert_int_equal(vmf_clip_preprocess_file(m, dir, px), VMF_EIO);
    /* embed_images stops at the bad file and names it. */
    const char *two[2] = {paths[0], p};
    float out[64];
    assert_int_equal(vmf_clip_embed_images(m, two, 2, out), VMF_EIO);
    assert_non_null(strstr(vmf_clip_last_error(), "absent.png"));
    free(px);
    free_lines(paths, n);
    vmf_clip_free(m);
}

/* Absent keys take Hugging Face's defaults (ViT-B/32); *_config_dict is read too. */
static void test_config_defaults(void **state)
{
    const char *dir = *state;
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", dir);
    vmf_test_write_text(p, "{}");
    vmf__clip_config c;
    clip_ok(vmf__clip_config_read(dir, &c));
    assert_int_equal(c.vocab, 49408);
    assert_int_equal(c.context, 77);
    assert_int_equal(c.text_width, 512);
    assert_int_equal(c.text_layers, 12);
    assert_int_equal(c.vision_width, 768);
    assert_int_equal(c.vision_inter, 3072);
    assert_int_equal(c.image, 224);
    assert_int_equal(c.patch, 32);
    assert_int_equal(c.proj, 512);
    assert_int_equal(c.text_gelu, 0);
    vmf_test_write_text(p, "{\"vision_config_dict\": {\"patch_size\": 14, \"image_size\": 336, "
                           "\"hidden_act\": \"gelu\"}, \"projection_dim\": 768}");
    clip_ok(vmf__clip_config_read(dir, &c));
    assert_int_equal(c.patch, 14);
    assert_int_equal(c.image, 336);
    assert_int_equal(c.vision_gelu, 1);
    assert_int_equal(c.proj, 768);
    vmf_test_write_text(p, "{\"text_config\": {\"hidden_size\": -3}}");
    assert_int_equal(vmf__clip_config_read(dir, &c), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "text_config.hidden_size"));
    vmf_test_write_text(p, "{\"text_config\": [");
    assert_int_equal(vmf__clip_config_read(dir, &c), VMF_EFORMAT);
    assert_non_null(strstr(vmf_clip_last_error(), "config.json: line 1"));
}

/* A 1 x 65500 image: only the crop window is resized, so this is quick and small. */
static void test_extreme_aspect(void **state)
{
    (void)state;
    vmf_clip *m = load_tiny();
    size_t h = 65500, S = vmf_clip_image_size(m);
    uint8_t *rgb = malloc(h * 3);
    for (size_t i = 0; i < h * 3; i++)
        rgb[i] = (uint8_t)(i / 3 % 251);
    float *px = malloc(3 * S * S * sizeof *px);
    clip_ok(vmf_clip_preprocess_rgb(m, rgb, 1, h, px));
    /* One input column: every output column of a row is the same value. */
    for (size_t y = 0; y < S; y++)
        for (size_t x = 1; x < S; x++)
            assert_true(px[y * S + x] == px[y * S]);
    assert_int_equal(vmf_clip_preprocess_rgb(m, rgb, 0, h, px), VMF_EINVAL);
    free(rgb);
    free(px);
    vmf_clip_free(m);
}

/* The random-weight constructor of the benchmark gives unit rows. */
static void test_random_model(void **state)
{
    (void)state;
    vmf__clip_config c = {.vocab = 50,
                          .context = 8,
                          .text_width = 32,
                          .text_inter = 64,
                          .text_heads = 2,
                          .text_layers = 1,
                          .image = 16,
                          .patch = 8,
                          .vision_width = 32,
                          .vision_inter = 64,
                          .vision_heads = 4,
                          .vision_layers = 1,
                          .proj = 8,
                          .text_eps = 1e-5,
                          .vision_eps = 1e-5};
    vmf_clip *m = NULL;
    clip_ok(vmf__clip_random(&c, 7, &m));
    int32_t ids[5] = {48, 3, 4, 5, 49};
    size_t len = 5;
    float out[8], pix[3 * 16 * 16];
    clip_ok(vmf__clip_text_forward(m, ids, &len, 1, out));
    double ss = 0;
    for (size_t j = 0; j < 8; j++)
        ss += (double)out[j] * out[j];
    vmf_assert_close(ss, 1.0, 1e-6, 0);
    for (size_t j = 0; j < 3 * 16 * 16; j++)
        pix[j] = (float)((double)(j % 17) / 17.0 - 0.5);
    clip_ok(vmf_clip_embed_pixels(m, pix, 1, out));
    ss = 0;
    for (size_t j = 0; j < 8; j++)
        ss += (double)out[j] * out[j];
    vmf_assert_close(ss, 1.0, 1e-6, 0);
    /* No tokenizer in a random model: tokenize refuses. */
    assert_int_equal(vmf_clip_tokenize(m, "x", 0, ids, 8, &len), VMF_EINVAL);
    vmf_clip_free(m);
}

/* Every code point's class and lower-casing agree with a few known values. */
static void test_unicode_tables(void **state)
{
    (void)state;
    assert_int_equal(vmf__clip_char_class('a'), 1);
    assert_int_equal(vmf__clip_char_class(0x4E2D), 1); /* 中 */
    assert_int_equal(vmf__clip_char_class('7'), 2);
    assert_int_equal(vmf__clip_char_class(0x0663), 2); /* Arabic-Indic 3 */
    assert_int_equal(vmf__clip_char_class(0x00BD), 2); /* ½ */
    assert_int_equal(vmf__clip_char_class(' '), 3);
    assert_int_equal(vmf__clip_char_class(0x3000), 3);
    assert_int_equal(vmf__clip_char_class(0x1C), 3); /* Python's isspace */
    assert_int_equal(vmf__clip_char_class('!'), 0);
    assert_int_equal(vmf__clip_char_class(0x1F600), 0);
    assert_int_equal(vmf__clip_lower('A'), 'a');
    assert_int_equal(vmf__clip_lower(0xC9), 0xE9);
    assert_int_equal(vmf__clip_lower(0x100), 0x101);
    assert_int_equal(vmf__clip_lower(0x101), 0x101);
    assert_int_equal(vmf__clip_lower(0x410), 0x430);
    assert_int_equal(vmf__clip_lower(0x1C5), 0x1C6);
    assert_int_equal(vmf__clip_lower('z'), 'z');
    /* NFC and Final_Sigma helpers. */
    uint32_t a = 0, b = 0;
    assert_int_equal(vmf__clip_decompose(0xE9, &a, &b), 2);
    assert_int_equal(a, 'e');
    assert_int_equal(b, 0x301);
    assert_int_equal(vmf__clip_decompose(0x212B, &a, &b), 1); /* Angstrom sign -> Å */
    assert_int_equal(a, 0xC5);
    assert_int_equal(vmf__clip_decompose('e', &a, &b), 0);
    assert_int_equal(vmf__clip_compose('e', 0x301), 0xE9);
    assert_int_equal(vmf__clip_compose(0xE9, 0x301), 0);
    assert_int_equal(vmf__clip_compose(0x915, 0x93C), 0); /* U+0958 is a composition exclusion */
    assert_int_equal(vmf__clip_ccc(0x301), 230);
    assert_int_equal(vmf__clip_ccc(0x323), 220);
    assert_int_equal(vmf__clip_ccc('a'), 0);
    assert_int_equal(vmf__clip_case_kind('A'), 1);
    assert_int_equal(vmf__clip_case_kind('\''), 2);
    assert_int_equal(vmf__clip_case_kind(' '), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicode_tables),
        cmocka_unit_test(test_tokenizer_matches_reference),
        cmocka_unit_test(test_tokenize_public),
        cmocka_unit_test(test_text_embeddings),
        cmocka_unit_test(test_pixels_match_pil),
        cmocka_unit_test(test_image_embeddings),
        vmf_test_with_tmpdir(test_missing_and_truncated_weights),
        vmf_test_with_tmpdir(test_wrong_shapes),
        vmf_test_with_tmpdir(test_bad_images),
        vmf_test_with_tmpdir(test_config_defaults),
        cmocka_unit_test(test_extreme_aspect),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
