/*
 * clip_forward.c - the text and vision towers of CLIP (Radford et al. 2021)
 * as Hugging Face's CLIPModel computes them: pre-LN transformer blocks
 *   x += out_proj(attention(layer_norm1(x)));  x += fc2(act(fc1(layer_norm2(x))))
 * with quick-GELU x * sigmoid(1.702 x), a causal mask in the text tower.
 *
 * Design: the tokens of every sequence of a batch are packed into one
 * matrix [tokens][width], so each linear layer is one SGEMM over the whole
 * batch; only the attention scores are per sequence and head (two small
 * SGEMMs each). A text is computed over its own tokens only: with the
 * causal mask, the padding a reference implementation appends after the end
 * token cannot change the end token's output, so leaving it out is exact
 * and saves the work. Layer norms, softmax and the final normalisation
 * accumulate in double.
 */
#include "clip_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void layer_norm(const float *x, float *y, size_t rows, size_t w, const float *g,
                       const float *b, float eps)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * w;
        float *yr = y + r * w;
        double mean = 0, var = 0;
        for (size_t j = 0; j < w; j++)
            mean += xr[j];
        mean /= (double)w;
        for (size_t j = 0; j < w; j++) {
            double d = xr[j] - mean;
            var += d * d;
        }
        var /= (double)w;
        double inv = 1.0 / sqrt(var + eps);
        for (size_t j = 0; j < w; j++)
            yr[j] = (float)((xr[j] - mean) * inv) * g[j] + b[j];
    }
}

static void add_bias(float *x, size_t rows, size_t w, const float *b)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < w; j++)
            x[r * w + j] += b[j];
}

static void activation(float *x, size_t count, int gelu)
{
    if (gelu) {
        for (size_t i = 0; i < count; i++)
            x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * 0.70710678118654752)));
    } else {
        for (size_t i = 0; i < count; i++)
            x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
    }
}

/* Row-wise softmax of s [L][L]; with causal, row i covers columns 0..i and the rest become 0. */
static void softmax_rows(float *s, size_t L, int causal)
{
    for (size_t i = 0; i < L; i++) {
        float *r = s + i * L;
        size_t n = causal ? i + 1 : L;
        float mx = r[0];
        for (size_t j = 1; j < n; j++)
            mx = r[j] > mx ? r[j] : mx;
        double sum = 0;
        for (size_t j = 0; j < n; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < n; j++)
            r[j] *= inv;
        for (size_t j = n; j < L; j++)
            r[j] = 0;
    }
}

typedef struct work {
    float *h, *qkv, *att, *ff, *scores;
} work;

static int work_alloc(work *wk, size_t rows, size_t w, size_t inter, size_t lmax)
{
    wk->h = vmf__clip_alloc(rows, w * sizeof(float));
    wk->qkv = vmf__clip_alloc(rows, 3 * w * sizeof(float));
    wk->att = vmf__clip_alloc(rows, w * sizeof(float));
    wk->ff = vmf__clip_alloc(rows, inter * sizeof(float));
    wk->scores = vmf__clip_alloc(lmax, lmax * sizeof(float));
    if (!wk->h || !wk->qkv || !wk->att || !wk->ff || !wk->scores)
        return vmf__clip_error(VMF_ENOMEM, "out of memory for a batch of %zu tokens", rows);
    return VMF_OK;
}

static void work_free(work *wk)
{
    free(wk->h);
    free(wk->qkv);
    free(wk->att);
    free(wk->ff);
    free(wk->scores);
}

/* The encoder over x [rows][w] holding nseq sequences at starts [nseq] of lens [nseq]. */
static void encoder(const vmf__clip_tower *t, float *x, size_t rows, const size_t *starts,
                    const size_t *lens, size_t nseq, int causal, work *wk)
{
    size_t w = t->width, f = t->inter, hd = w / t->heads;
    float scale = (float)(1.0 / sqrt((double)hd));
    for (size_t l = 0; l < t->layers; l++) {
        const vmf__clip_layer *y = &t->layer[l];
        layer_norm(x, wk->h, rows, w, y->ln1_w, y->ln1_b, t->eps);
        vmf__clip_sgemm(0, 1, rows, 3 * w, w, 1.0f, wk->h, w, y->qkv_w, w, 0.0f, wk->qkv, 3 * w);
        add_bias(wk->qkv, rows, 3 * w, y->qkv_b);
        for (size_t s = 0; s < nseq; s++) {
            size_t L = lens[s];
            const float *base = wk->qkv + starts[s] * 3 * w;
            for (size_t head = 0; head < t->heads; head++) {
                const float *q = base + head * hd, *k = q + w, *v = q + 2 * w;
                vmf__clip_sgemm(0, 1, L, L, hd, scale, q, 3 * w, k, 3 * w, 0.0f, wk->scores, L);
                softmax_rows(wk->scores, L, causal);
                vmf__clip_sgemm(0, 0, L, hd, L, 1.0f, wk->scores, L, v, 3 * w, 0.0f,
                                wk->att + starts[s] * w + head * hd, w);
            }
        }
        vmf__clip_sgemm(0, 1, rows, w, w, 1.0f, wk->att, w, y->out_w, w, 1.0f, x, w);
        add_bias(x, rows, w, y->out_b);
        layer_norm(x, wk->h, rows, w, y->ln2_w, y->ln2_b, t->eps);
        vmf__clip_sgemm(0, 1, rows, f, w, 1.0f, wk->h, w, y->fc1_w, w, 0.0f, wk->ff, f);
        add_bias(wk->ff, rows, f, y->fc1_b);
        activation(wk->ff, rows * f, t->gelu);
        vmf__clip_sgemm(0, 1, rows, w, f, 1.0f, wk->ff, f, y->fc2_w, f, 1.0f, x, w);
        add_bias(x, rows, w, y->fc2_b);
    }
}

/* out [n][proj] = normalize(pooled [n][w] · projᵀ). */
static void project(const float *pooled, size_t n, size_t w, const float *proj, size_t p,
                    float *out)
{
    vmf__clip_sgemm(0, 1, n, p, w, 1.0f, pooled, w, proj, w, 0.0f, out, p);
    for (size_t i = 0; i < n; i++) {
        double ss = 0;
        for (size_t j = 0; j < p; j++)
            ss += (double)out[i * p + j] * out[i * p + j];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (size_t j = 0; j < p; j++)
            out[i * p + j] = (float)(out[i * p + j] * inv);
    }
}

int vmf__clip_text_forward(const vmf_clip *m, const int32_t *ids, const size_t *lens, size_t n,
                           float *out)
{
    const vmf__clip_config *c = &m->cfg;
    size_t w = c->text_width;
    size_t *starts = calloc(n ? n : 1, sizeof *starts), *use = calloc(n ? n : 1, sizeof *use);
    size_t *pool = calloc(n ? n : 1, sizeof *pool);
    float *x = NULL, *pooled = NULL;
    work wk = {0};
    int rc = VMF_OK;
    if (!starts || !use || !pool) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory");
        goto done;
    }
    /*
     * Pool at the first position of the largest id, as Hugging Face does for
     * the original vocabulary (the end token has the largest id); tokens
     * after it cannot reach it through the causal mask and are left out.
     */
    size_t rows = 0, lmax = 1, off = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > c->context) {
            rc = vmf__clip_error(VMF_EINVAL, "text %zu: %zu tokens (1..%zu allowed)", i, lens[i],
                                 c->context);
            goto done;
        }
        size_t best = 0;
        for (size_t j = 0; j < lens[i]; j++) {
            int32_t id = ids[off + j];
            if (id < 0 || (size_t)id >= c->vocab) {
                rc = vmf__clip_error(VMF_EINVAL, "text %zu: token id %d outside the vocabulary", i,
                                     (int)id);
                goto done;
            }
            if (id > ids[off + best])
                best = j;
        }
        pool[i] = best;
        use[i] = best + 1;
        starts[i] = rows;
        rows += use[i];
        lmax = use[i] > lmax ? use[i] : lmax;
        off += lens[i];
    }
    x = vmf__clip_alloc(rows ? rows : 1, w * sizeof(float));
    pooled = vmf__clip_alloc(n ? n : 1, w * sizeof(float));
    if (!x || !pooled) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory for %zu texts", n);
        goto done;
    }
    if ((rc = work_alloc(&wk, rows ? rows : 1, w, c->text_inter, lmax)) != VMF_OK)
        goto done;
    off = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < use[i]; j++) {
            const float *te = m->tok_emb + (size_t)ids[off + j] * w, *pe = m->text_pos + j * w;
            float *xr = x + (starts[i] + j) * w;
            for (size_t k = 0; k < w; k++)
                xr[k] = te[k] + pe[k];
        }
        off += lens[i];
    }
    encoder(&m->text, x, rows, starts, use, n, 1, &wk);
    for (size_t i = 0; i < n; i++)
        layer_norm(x + (starts[i] + pool[i]) * w, pooled + i * w, 1, w, m->final_ln_w,
                   m->final_ln_b, m->text.eps);
    project(pooled, n, w, m->text_proj, c->proj, out);
done:
    work_free(&wk);
    free(x);
    free(pooled);
    free(starts);
    free(use);
    free(pool);
    return rc;
}

int vmf_clip_embed_pixels(const vmf_clip *m, const float *pixels, size_t n, float *out)
{
    if (!m || (n && (!pixels || !out)))
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_embed_pixels: NULL argument");
    if (n == 0)
        return VMF_OK;
    const vmf__clip_config *c = &m->cfg;
    size_t w = c->vision_width, p = c->patch, g = c->image / p, np = g * g, pp = 3 * p * p;
    size_t S = c->image, L = np + 1, rows = n * L;
    float *patches = vmf__clip_alloc(n * np, pp * sizeof(float));
    float *emb = vmf__clip_alloc(n * np, w * sizeof(float));
    float *x = vmf__clip_alloc(rows, w * sizeof(float));
    float *pooled = vmf__clip_alloc(n, w * sizeof(float));
    size_t *starts = calloc(n, sizeof *starts), *lens = calloc(n, sizeof *lens);
    work wk = {0};
    int rc = VMF_OK;
    if (!patches || !emb || !x || !pooled || !starts || !lens) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory for %zu images", n);
        goto done;
    }
    if ((rc = work_alloc(&wk, rows, w, c->vision_inter, L)) != VMF_OK)
        goto done;
    /* The patch convolution (stride = kernel = p, no bias) as one GEMM over unfolded patches. */
    for (size_t b = 0; b < n; b++)
        for (size_t py = 0; py < g; py++)
            for (size_t px = 0; px < g; px++) {
                float *row = patches + ((b * np) + py * g + px) * pp;
                for (size_t ch = 0; ch < 3; ch++)
                    for (size_t ky = 0; ky < p; ky++)
                        memcpy(row + (ch * p + ky) * p,
                               pixels + ((b * 3 + ch) * S + py * p + ky) * S + px * p,
                               p * sizeof(float));
            }
    vmf__clip_sgemm(0, 1, n * np, w, pp, 1.0f, patches, pp, m->patch_w, pp, 0.0f, emb, w);
    for (size_t b = 0; b < n; b++) {
        starts[b] = b * L;
        lens[b] = L;
        float *xb = x + b * L * w;
        for (size_t k = 0; k < w; k++)
            xb[k] = m->class_emb[k] + m->vision_pos[k];
        for (size_t i = 0; i < np; i++)
            for (size_t k = 0; k < w; k++)
                xb[(i + 1) * w + k] = emb[(b * np + i) * w + k] + m->vision_pos[(i + 1) * w + k];
    }
    layer_norm(x, x, rows, w, m->pre_ln_w, m->pre_ln_b, m->vision.eps);
    encoder(&m->vision, x, rows, starts, lens, n, 0, &wk);
    for (size_t b = 0; b < n; b++)
        layer_norm(x + b * L * w, pooled + b * w, 1, w, m->post_ln_w, m->post_ln_b, m->vision.eps);
    project(pooled, n, w, m->vision_proj, c->proj, out);
done:
    work_free(&wk);
    free(patches);
    free(emb);
    free(x);
    free(pooled);
    free(starts);
    free(lens);
    return rc;
}

/* Matrix-product flops of one encoder pass over a sequence of L tokens. */
static double encoder_flops(const vmf__clip_tower *t, double L)
{
    double w = (double)t->width, f = (double)t->inter;
    double per_layer = 2 * L * w * 3 * w /* q, k, v */ + 2 * 2 * L * L * w /* scores, mixing */ +
                       2 * L * w * w /* out */ + 2 * 2 * L * w * f /* fc1, fc2 */;
    return per_layer * (double)t->layers;
}

double vmf__clip_text_flops(const vmf_clip *m, size_t len)
{
    return encoder_flops(&m->text, (double)len) +
           2.0 * (double)m->cfg.text_width * (double)m->cfg.proj;
}

double vmf__clip_image_flops(const vmf_clip *m)
{
    const vmf__clip_config *c = &m->cfg;
    double g = (double)(c->image / c->patch), np = g * g;
    double patch = 2 * np * 3.0 * (double)(c->patch * c->patch) * (double)c->vision_width;
    return patch + encoder_flops(&m->vision, np + 1) +
           2.0 * (double)c->vision_width * (double)c->proj;
}
