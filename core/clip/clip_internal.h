/*
 * clip_internal.h - declarations shared by libvmfmm_clip's sources, its
 * white-box tests and its benchmark; never installed.
 */
#ifndef VMFMM_CLIP_INTERNAL_H
#define VMFMM_CLIP_INTERNAL_H

#include "vmfmm/clip.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */

/* ---- errors and helpers (clip_util.c) ---- */

/* Records the calling thread's message and returns rc. */
int vmf__clip_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* malloc of count * size floats/bytes with an overflow check (NULL on overflow). */
void *vmf__clip_alloc(size_t count, size_t size);

/* The one BLAS call site of the library: C [m][n] = alpha op(A) op(B) + beta C, row-major. */
void vmf__clip_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                     size_t ldc);

/* ---- Unicode (clip_unicode.c; its tables are in clip_unicode_tables.h, generated) ---- */

/* 0 other, 1 letter (L*), 2 number (N*), 3 white space (Python's str.isspace). */
int vmf__clip_char_class(uint32_t cp);
/* Python's str.lower() for the one-character results (U+0130 is handled by the caller). */
uint32_t vmf__clip_lower(uint32_t cp);
/* For Python's Final_Sigma rule: 1 cased, 2 case-ignorable, 0 neither. */
int vmf__clip_case_kind(uint32_t cp);
/* Canonical combining class (0 for starters). */
int vmf__clip_ccc(uint32_t cp);
/* One level of canonical decomposition: 0 none, 1 (*first), 2 (*first, *second). No Hangul. */
int vmf__clip_decompose(uint32_t cp, uint32_t *first, uint32_t *second);
/* The primary composite of a + b, or 0. No Hangul. */
uint32_t vmf__clip_compose(uint32_t a, uint32_t b);

/* ---- tokenizer (clip_tokenizer.c) ---- */

typedef struct vmf__clip_tokenizer vmf__clip_tokenizer;

/* Loads vocab.json and merges.txt of dir. */
int vmf__clip_tokenizer_load(const char *dir, size_t vocab_size, vmf__clip_tokenizer **out);
void vmf__clip_tokenizer_free(vmf__clip_tokenizer *t);
/*
 * Tokens of text with start and end, into ids [cap]. *n is the count when it
 * is at most cap; otherwise some value above cap (encoding stops early), and
 * only the first cap ids are written.
 */
int vmf__clip_tokenizer_encode(const vmf__clip_tokenizer *t, const char *text, int32_t *ids,
                               size_t cap, size_t *n);

/* ---- model (clip_model.c) ---- */

typedef struct vmf__clip_layer {
    float *ln1_w, *ln1_b;
    float *qkv_w; /* [3w][w]: q, k, v projections stacked */
    float *qkv_b; /* [3w] */
    float *out_w, *out_b;
    float *ln2_w, *ln2_b;
    float *fc1_w, *fc1_b; /* [inter][w], [inter] */
    float *fc2_w, *fc2_b; /* [w][inter], [w] */
} vmf__clip_layer;

typedef struct vmf__clip_tower {
    size_t width, inter, heads, layers;
    float eps;
    int gelu;               /* 0 quick-GELU x*sigmoid(1.702x) (CLIP), 1 exact GELU */
    vmf__clip_layer *layer; /* [layers] */
} vmf__clip_tower;

typedef struct vmf__clip_config {
    size_t vocab, context, text_width, text_inter, text_heads, text_layers;
    size_t image, patch, vision_width, vision_inter, vision_heads, vision_layers;
    size_t proj;
    double text_eps, vision_eps;
    int text_gelu, vision_gelu; /* hidden_act: 0 quick_gelu, 1 gelu */
} vmf__clip_config;

struct vmf_clip {
    vmf__clip_config cfg;
    vmf__clip_tower text, vision;
    float *tok_emb;  /* [vocab][tw] */
    float *text_pos; /* [context][tw] */
    float *final_ln_w, *final_ln_b;
    float *text_proj;  /* [proj][tw] */
    float *class_emb;  /* [vw] */
    float *patch_w;    /* [vw][3*p*p] */
    float *vision_pos; /* [np+1][vw] */
    float *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b;
    float *vision_proj; /* [proj][vw] */
    vmf__clip_tokenizer *tok;
    float **owned; /* every weight buffer, freed with the model */
    size_t n_owned;
};

/* Reads config.json of dir (Hugging Face defaults for absent keys). */
int vmf__clip_config_read(const char *dir, vmf__clip_config *cfg);

/*
 * A model of the given shapes with random weights from seed (no tokenizer):
 * for benchmarks and tests that need no files.
 */
int vmf__clip_random(const vmf__clip_config *cfg, uint64_t seed, vmf_clip **out);

/* ---- forward passes (clip_forward.c) ---- */

/*
 * Text tower over n token sequences given as ids (concatenated) and lens [n]
 * (each starting with the start token and ending with the end token), into
 * out [n][proj], unit rows.
 */
int vmf__clip_text_forward(const vmf_clip *m, const int32_t *ids, const size_t *lens, size_t n,
                           float *out);

/* Floating-point operations of the matrix products of one text of len tokens. */
double vmf__clip_text_flops(const vmf_clip *m, size_t len);
/* Floating-point operations of the matrix products of one image. */
double vmf__clip_image_flops(const vmf_clip *m);

/* ---- images (clip_image.c) ---- */

/* Decodes a JPEG or PNG file into 8-bit RGB *rgb [h][w][3] (caller frees). */
int vmf__clip_decode_file(const char *path, uint8_t **rgb, size_t *w, size_t *h);

#endif
