/*
 * vmfmm/clip.h - CLIP embeddings of texts and images (libvmfmm_clip).
 *
 * A library of its own, beside libvmfmm: it links OpenBLAS, jansson,
 * libjpeg and libpng, and libvmfmm does not depend on it. It loads a
 * Hugging Face CLIP checkpoint directory (config.json, model.safetensors,
 * vocab.json, merges.txt; the layout of openai/clip-vit-base-patch32 and
 * its siblings) and computes L2-normalised embeddings exactly as the
 * reference architecture does: pre-LN transformers with quick-GELU, a
 * causal text tower pooled at the end token, a vision tower pooled at the
 * class token, projections, L2 normalisation. See docs/clip.md.
 *
 * Errors: functions return VMF_OK or a negative VMF_E* code of
 * vmfmm/common.h (VMF_EIO: a file cannot be read; VMF_EFORMAT: a file is
 * malformed or does not match config.json; VMF_EINVAL: bad caller input,
 * an empty or too long text; VMF_ENOMEM). vmf_clip_last_error() gives the
 * calling thread's one-line message, which names the file and the problem
 * ("model.safetensors: tensor text_projection.weight has shape [64, 32],
 * config.json implies [32, 64]").
 *
 * Threads: a loaded model is immutable; any number of threads may embed
 * with it at once (each call allocates its own work space).
 *
 * Memory: the weights are held as float32 (F16 and BF16 files are widened
 * at load). An embedding call over n inputs allocates work space
 * proportional to n, so callers bound memory by the batch they pass.
 *
 * The API is plain functions over char pointers and float arrays so that
 * ctypes can call it directly.
 */
#ifndef VMFMM_CLIP_H
#define VMFMM_CLIP_H

#include "vmfmm/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmf_clip vmf_clip;

/*
 * Loads the checkpoint directory `dir` into *out. Every tensor's name, dtype
 * (F32, F16 or BF16) and shape is checked against what config.json implies;
 * a missing, unexpected, truncated or mis-shaped tensor is VMF_EFORMAT with
 * a message naming it. Missing files are VMF_EIO.
 */
VMF_API int vmf_clip_load(const char *dir, vmf_clip **out);

/* Frees a model; NULL is fine. */
VMF_API void vmf_clip_free(vmf_clip *m);

/* Embedding dimension (config.json projection_dim). */
VMF_API size_t vmf_clip_dim(const vmf_clip *m);
/* Text context length in tokens, start and end tokens included. */
VMF_API size_t vmf_clip_context_length(const vmf_clip *m);
/* Side of the square model input in pixels (vision_config.image_size). */
VMF_API size_t vmf_clip_image_size(const vmf_clip *m);

/*
 * Tokenizes one UTF-8 text as CLIP's byte-level BPE does (NFC, white space
 * collapsed, lower-cased, pre-tokenised, merged; docs/clip.md) into ids
 * [cap]: the start token, the text's tokens, the end token (the ids of
 * <|startoftext|> and <|endoftext|> in vocab.json); *n receives the count.
 * A text whose tokens do not fit the context is VMF_ERANGE unless
 * `truncate`, which keeps the first context-1 tokens and the end token. A
 * text with no token is VMF_EINVAL, invalid UTF-8 VMF_EFORMAT. cap must be
 * at least the context length.
 */
VMF_API int vmf_clip_tokenize(const vmf_clip *m, const char *text, int truncate, int32_t *ids,
                              size_t cap, size_t *n);

/*
 * Embeds n texts into out [n][dim] (unit rows). Fails as vmf_clip_tokenize
 * on the first bad text; the message starts with "text <i>: ".
 */
VMF_API int vmf_clip_embed_texts(const vmf_clip *m, const char *const *texts, size_t n,
                                 int truncate, float *out);

/*
 * Decodes a JPEG or PNG file and applies CLIP's preprocessing: conversion to
 * RGB (grey replicated, alpha dropped, palettes expanded), resize of the
 * shorter side to the image size with PIL's antialiased bicubic kernel
 * (a = -0.5, 8-bit fixed point as PIL computes it), a center crop, and
 * normalisation with CLIP's mean and std. pixels [3][s][s], s =
 * vmf_clip_image_size(). An unreadable file is VMF_EIO, a corrupt or
 * unsupported one VMF_EFORMAT.
 */
VMF_API int vmf_clip_preprocess_file(const vmf_clip *m, const char *path, float *pixels);

/* The same from 8-bit RGB rows rgb [h][w][3]. */
VMF_API int vmf_clip_preprocess_rgb(const vmf_clip *m, const uint8_t *rgb, size_t w, size_t h,
                                    float *pixels);

/* Embeds n preprocessed images pixels [n][3][s][s] into out [n][dim]. */
VMF_API int vmf_clip_embed_pixels(const vmf_clip *m, const float *pixels, size_t n, float *out);

/*
 * Embeds n image files into out [n][dim]; fails on the first file that
 * cannot be decoded (the message names it).
 */
VMF_API int vmf_clip_embed_images(const vmf_clip *m, const char *const *paths, size_t n,
                                  float *out);

/* The calling thread's last error message of this library, or "". */
VMF_API const char *vmf_clip_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
