/*
 * clip_model.c - loading a Hugging Face CLIP checkpoint: config.json, the
 * safetensors weights (parsed here: 8-byte little-endian header length, a
 * JSON header of dtype / shape / data_offsets per tensor, raw little-endian
 * data, memory-mapped), and the list of tensors the configuration implies.
 *
 * Every tensor of the file must be one the configuration implies (or one of
 * the ignorable extras: position_ids buffers and logit_scale), with the
 * implied shape and a float dtype, lying inside the file; every implied
 * tensor must be present. Weights are widened to float32 into buffers the
 * model owns, with the q, k and v projections of each layer stacked so that
 * one GEMM computes all three.
 */
#include "clip_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIM      65536 /* bound on every size in config.json, so products cannot overflow */
#define NAME_MAX_LEN 96

/* ---- config.json ------------------------------------------------------------ */

static int get_size(json_t *obj, const char *key, size_t def, size_t *out, const char *path,
                    const char *section)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v) {
        *out = def;
        return VMF_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_DIM)
        return vmf__clip_error(VMF_EFORMAT, "%s: %s%s must be an integer in [1, %d]", path, section,
                               key, MAX_DIM);
    *out = (size_t)json_integer_value(v);
    return VMF_OK;
}

static int get_eps(json_t *obj, double *out, const char *path, const char *section)
{
    json_t *v = obj ? json_object_get(obj, "layer_norm_eps") : NULL;
    *out = 1e-5;
    if (!v)
        return VMF_OK;
    if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1)
        return vmf__clip_error(VMF_EFORMAT, "%s: %slayer_norm_eps must be in (0, 1]", path,
                               section);
    *out = json_number_value(v);
    return VMF_OK;
}

static int get_act(json_t *obj, int *out, const char *path, const char *section)
{
    json_t *v = obj ? json_object_get(obj, "hidden_act") : NULL;
    *out = 0;
    if (!v)
        return VMF_OK;
    const char *s = json_string_value(v);
    if (s && strcmp(s, "quick_gelu") == 0)
        return VMF_OK;
    if (s && strcmp(s, "gelu") == 0) {
        *out = 1;
        return VMF_OK;
    }
    return vmf__clip_error(VMF_EFORMAT, "%s: %shidden_act '%.40s' is not quick_gelu or gelu", path,
                           section, s ? s : "?");
}

static json_t *section(json_t *root, const char *name)
{
    json_t *s = json_object_get(root, name);
    if (json_is_object(s))
        return s;
    /* Older exports name them text_config_dict / vision_config_dict. */
    char alt[64];
    snprintf(alt, sizeof alt, "%s_dict", name);
    s = json_object_get(root, alt);
    return json_is_object(s) ? s : NULL;
}

int vmf__clip_config_read(const char *dir, vmf__clip_config *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (access(path, R_OK) != 0)
            return vmf__clip_error(VMF_EIO, "%s: cannot open: %s", path, strerror(errno));
        return vmf__clip_error(VMF_EFORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    }
    int rc = VMF_OK;
    if (!json_is_object(root)) {
        rc = vmf__clip_error(VMF_EFORMAT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *t = section(root, "text_config"), *v = section(root, "vision_config");
    size_t channels = 3;
    if ((rc = get_size(t, "vocab_size", 49408, &c->vocab, path, "text_config.")) ||
        (rc = get_size(t, "max_position_embeddings", 77, &c->context, path, "text_config.")) ||
        (rc = get_size(t, "hidden_size", 512, &c->text_width, path, "text_config.")) ||
        (rc = get_size(t, "intermediate_size", 2048, &c->text_inter, path, "text_config.")) ||
        (rc = get_size(t, "num_attention_heads", 8, &c->text_heads, path, "text_config.")) ||
        (rc = get_size(t, "num_hidden_layers", 12, &c->text_layers, path, "text_config.")) ||
        (rc = get_eps(t, &c->text_eps, path, "text_config.")) ||
        (rc = get_act(t, &c->text_gelu, path, "text_config.")) ||
        (rc = get_size(v, "image_size", 224, &c->image, path, "vision_config.")) ||
        (rc = get_size(v, "patch_size", 32, &c->patch, path, "vision_config.")) ||
        (rc = get_size(v, "hidden_size", 768, &c->vision_width, path, "vision_config.")) ||
        (rc = get_size(v, "intermediate_size", 3072, &c->vision_inter, path, "vision_config.")) ||
        (rc = get_size(v, "num_attention_heads", 12, &c->vision_heads, path, "vision_config.")) ||
        (rc = get_size(v, "num_hidden_layers", 12, &c->vision_layers, path, "vision_config.")) ||
        (rc = get_size(v, "num_channels", 3, &channels, path, "vision_config.")) ||
        (rc = get_eps(v, &c->vision_eps, path, "vision_config.")) ||
        (rc = get_act(v, &c->vision_gelu, path, "vision_config.")) ||
        (rc = get_size(root, "projection_dim", 512, &c->proj, path, "")))
        goto done;
    if (channels != 3)
        rc = vmf__clip_error(VMF_EFORMAT, "%s: vision_config.num_channels must be 3", path);
    else if (c->text_width % c->text_heads || c->vision_width % c->vision_heads)
        rc = vmf__clip_error(VMF_EFORMAT,
                             "%s: hidden_size is not a multiple of num_attention_heads", path);
    else if (c->image % c->patch)
        rc = vmf__clip_error(VMF_EFORMAT, "%s: image_size is not a multiple of patch_size", path);
    else if (c->context < 2)
        rc = vmf__clip_error(VMF_EFORMAT, "%s: max_position_embeddings must be at least 2", path);
done:
    json_decref(root);
    return rc;
}

/* ---- weights ---------------------------------------------------------------- */

/* One tensor the configuration implies: its name, shape and where it goes. */
typedef struct spec {
    char name[NAME_MAX_LEN];
    size_t ndim, shape[4];
    float *dst;
    int seen;
} spec;

typedef struct spec_list {
    spec *v;
    size_t n, cap;
} spec_list;

static float *own(vmf_clip *m, size_t count)
{
    float *p = vmf__clip_alloc(count, sizeof(float));
    if (!p)
        return NULL;
    float **o = realloc(m->owned, (m->n_owned + 1) * sizeof *o);
    if (!o) {
        free(p);
        return NULL;
    }
    m->owned = o;
    m->owned[m->n_owned++] = p;
    return p;
}

static int add(spec_list *l, float *dst, size_t ndim, size_t d0, size_t d1, size_t d2, size_t d3,
               const char *fmt, ...) __attribute__((format(printf, 8, 9)));

#include <stdarg.h>

static int add(spec_list *l, float *dst, size_t ndim, size_t d0, size_t d1, size_t d2, size_t d3,
               const char *fmt, ...)
{
    if (l) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 64;
            spec *v = realloc(l->v, cap * sizeof *v);
            if (!v)
                return -1;
            l->v = v;
            l->cap = cap;
        }
        spec *s = &l->v[l->n++];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->name, sizeof s->name, fmt, ap);
        va_end(ap);
        s->ndim = ndim;
        s->shape[0] = d0;
        s->shape[1] = d1;
        s->shape[2] = d2;
        s->shape[3] = d3;
        s->dst = dst;
        s->seen = 0;
    }
    return 0;
}

static int tower_alloc(vmf_clip *m, vmf__clip_tower *t, const char *prefix, spec_list *l)
{
    size_t w = t->width, f = t->inter;
    t->layer = calloc(t->layers, sizeof *t->layer);
    if (!t->layer)
        return -1;
    for (size_t i = 0; i < t->layers; i++) {
        vmf__clip_layer *y = &t->layer[i];
        if (!(y->ln1_w = own(m, w)) || !(y->ln1_b = own(m, w)) || !(y->qkv_w = own(m, 3 * w * w)) ||
            !(y->qkv_b = own(m, 3 * w)) || !(y->out_w = own(m, w * w)) || !(y->out_b = own(m, w)) ||
            !(y->ln2_w = own(m, w)) || !(y->ln2_b = own(m, w)) || !(y->fc1_w = own(m, f * w)) ||
            !(y->fc1_b = own(m, f)) || !(y->fc2_w = own(m, w * f)) || !(y->fc2_b = own(m, w)))
            return -1;
        const char *p = prefix;
        const char *qkv[3] = {"q", "k", "v"};
        for (size_t j = 0; j < 3; j++) {
            if (add(l, y->qkv_w + j * w * w, 2, w, w, 0, 0,
                    "%s.encoder.layers.%zu.self_attn.%s_proj.weight", p, i, qkv[j]) ||
                add(l, y->qkv_b + j * w, 1, w, 0, 0, 0,
                    "%s.encoder.layers.%zu.self_attn.%s_proj.bias", p, i, qkv[j]))
                return -1;
        }
        if (add(l, y->out_w, 2, w, w, 0, 0, "%s.encoder.layers.%zu.self_attn.out_proj.weight", p,
                i) ||
            add(l, y->out_b, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.self_attn.out_proj.bias", p,
                i) ||
            add(l, y->ln1_w, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.layer_norm1.weight", p, i) ||
            add(l, y->ln1_b, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.layer_norm1.bias", p, i) ||
            add(l, y->ln2_w, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.layer_norm2.weight", p, i) ||
            add(l, y->ln2_b, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.layer_norm2.bias", p, i) ||
            add(l, y->fc1_w, 2, f, w, 0, 0, "%s.encoder.layers.%zu.mlp.fc1.weight", p, i) ||
            add(l, y->fc1_b, 1, f, 0, 0, 0, "%s.encoder.layers.%zu.mlp.fc1.bias", p, i) ||
            add(l, y->fc2_w, 2, w, f, 0, 0, "%s.encoder.layers.%zu.mlp.fc2.weight", p, i) ||
            add(l, y->fc2_b, 1, w, 0, 0, 0, "%s.encoder.layers.%zu.mlp.fc2.bias", p, i))
            return -1;
    }
    return 0;
}

/* Allocates every weight of cfg's shapes and, when l != NULL, lists them by name. */
static int model_alloc(const vmf__clip_config *c, vmf_clip **out, spec_list *l)
{
    vmf_clip *m = calloc(1, sizeof *m);
    if (!m)
        return vmf__clip_error(VMF_ENOMEM, "out of memory");
    m->cfg = *c;
    m->text = (vmf__clip_tower){c->text_width,      c->text_inter, c->text_heads, c->text_layers,
                                (float)c->text_eps, c->text_gelu,  NULL};
    m->vision = (vmf__clip_tower){c->vision_width,
                                  c->vision_inter,
                                  c->vision_heads,
                                  c->vision_layers,
                                  (float)c->vision_eps,
                                  c->vision_gelu,
                                  NULL};
    size_t tw = c->text_width, vw = c->vision_width, p = c->patch;
    size_t np = (c->image / p) * (c->image / p);
    if (!(m->tok_emb = own(m, c->vocab * tw)) || !(m->text_pos = own(m, c->context * tw)) ||
        !(m->final_ln_w = own(m, tw)) || !(m->final_ln_b = own(m, tw)) ||
        !(m->text_proj = own(m, c->proj * tw)) || !(m->class_emb = own(m, vw)) ||
        !(m->patch_w = own(m, vw * 3 * p * p)) || !(m->vision_pos = own(m, (np + 1) * vw)) ||
        !(m->pre_ln_w = own(m, vw)) || !(m->pre_ln_b = own(m, vw)) ||
        !(m->post_ln_w = own(m, vw)) || !(m->post_ln_b = own(m, vw)) ||
        !(m->vision_proj = own(m, c->proj * vw)))
        goto nomem;
    if (add(l, m->tok_emb, 2, c->vocab, tw, 0, 0, "text_model.embeddings.token_embedding.weight") ||
        add(l, m->text_pos, 2, c->context, tw, 0, 0,
            "text_model.embeddings.position_embedding.weight") ||
        add(l, m->final_ln_w, 1, tw, 0, 0, 0, "text_model.final_layer_norm.weight") ||
        add(l, m->final_ln_b, 1, tw, 0, 0, 0, "text_model.final_layer_norm.bias") ||
        add(l, m->text_proj, 2, c->proj, tw, 0, 0, "text_projection.weight") ||
        add(l, m->class_emb, 1, vw, 0, 0, 0, "vision_model.embeddings.class_embedding") ||
        add(l, m->patch_w, 4, vw, 3, p, p, "vision_model.embeddings.patch_embedding.weight") ||
        add(l, m->vision_pos, 2, np + 1, vw, 0, 0,
            "vision_model.embeddings.position_embedding.weight") ||
        add(l, m->pre_ln_w, 1, vw, 0, 0, 0, "vision_model.pre_layrnorm.weight") ||
        add(l, m->pre_ln_b, 1, vw, 0, 0, 0, "vision_model.pre_layrnorm.bias") ||
        add(l, m->post_ln_w, 1, vw, 0, 0, 0, "vision_model.post_layernorm.weight") ||
        add(l, m->post_ln_b, 1, vw, 0, 0, 0, "vision_model.post_layernorm.bias") ||
        add(l, m->vision_proj, 2, c->proj, vw, 0, 0, "visual_projection.weight"))
        goto nomem;
    if (tower_alloc(m, &m->text, "text_model", l) || tower_alloc(m, &m->vision, "vision_model", l))
        goto nomem;
    *out = m;
    return VMF_OK;
nomem:
    vmf_clip_free(m);
    return vmf__clip_error(VMF_ENOMEM, "out of memory for the model's weights");
}

void vmf_clip_free(vmf_clip *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->text.layer);
    free(m->vision.layer);
    vmf__clip_tokenizer_free(m->tok);
    free(m);
}

/* ---- safetensors ----------------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float f;
    if (exp == 0)
        f = ldexpf((float)mant, -24);
    else if (exp == 31)
        f = mant ? NAN : INFINITY;
    else
        f = ldexpf((float)(mant | 0x400), (int)exp - 25);
    return sign ? -f : f;
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int shape_str(char *buf, size_t cap, const size_t *shape, size_t ndim)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (size_t i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%zu", i ? ", " : "", shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return 0;
}

static int ignorable(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "logit_scale") == 0 ||
           (n >= 13 && strcmp(name + n - 13, ".position_ids") == 0);
}

static int load_tensor(const char *path, const char *name, json_t *info, const uint8_t *data,
                       uint64_t data_len, spec_list *l)
{
    spec *s = NULL;
    for (size_t i = 0; i < l->n && !s; i++)
        if (strcmp(l->v[i].name, name) == 0)
            s = &l->v[i];
    if (!s) {
        if (ignorable(name)) {
            /* Not used, but a file cut inside it is still a truncated file. */
            json_t *o = json_object_get(info, "data_offsets");
            json_t *e = json_is_array(o) ? json_array_get(o, 1) : NULL;
            if (json_is_integer(e) &&
                (json_integer_value(e) < 0 || (uint64_t)json_integer_value(e) > data_len))
                return vmf__clip_error(
                    VMF_EFORMAT,
                    "%s: truncated: tensor %s ends at byte %lld of a %llu-byte data section", path,
                    name, (long long)json_integer_value(e), (unsigned long long)data_len);
            return VMF_OK;
        }
        return vmf__clip_error(
            VMF_EFORMAT, "%s: unexpected tensor %.120s (not implied by config.json)", path, name);
    }
    json_t *dt = json_object_get(info, "dtype"), *sh = json_object_get(info, "shape"),
           *off = json_object_get(info, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
        json_array_size(off) != 2 || !json_is_integer(json_array_get(off, 0)) ||
        !json_is_integer(json_array_get(off, 1)))
        return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s: malformed header entry", path, name);
    const char *dtype = json_string_value(dt);
    size_t esize = strcmp(dtype, "F32") == 0    ? 4
                   : strcmp(dtype, "F16") == 0  ? 2
                   : strcmp(dtype, "BF16") == 0 ? 2
                                                : 0;
    if (!esize)
        return vmf__clip_error(VMF_EFORMAT,
                               "%s: tensor %s has dtype %.16s (F32, F16 or BF16 expected)", path,
                               name, dtype);
    size_t ndim = json_array_size(sh), shape[8], count = 1;
    int shape_ok = ndim == s->ndim;
    if (ndim > 8)
        return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s has %zu dimensions", path, name, ndim);
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1 << 30))
            return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s: malformed shape", path, name);
        shape[i] = (size_t)json_integer_value(d);
        if (shape_ok && shape[i] != s->shape[i])
            shape_ok = 0;
    }
    if (!shape_ok) {
        char got[96], want[96];
        shape_str(got, sizeof got, shape, ndim);
        shape_str(want, sizeof want, s->shape, s->ndim);
        return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s has shape %s, config.json implies %s",
                               path, name, got, want);
    }
    for (size_t i = 0; i < ndim; i++)
        count *= shape[i];
    json_int_t b = json_integer_value(json_array_get(off, 0)),
               e = json_integer_value(json_array_get(off, 1));
    if (b < 0 || e < b || (uint64_t)(e - b) != (uint64_t)count * esize)
        return vmf__clip_error(VMF_EFORMAT,
                               "%s: tensor %s: data_offsets [%lld, %lld] do not hold %zu %s values",
                               path, name, (long long)b, (long long)e, count, dtype);
    if ((uint64_t)e > data_len)
        return vmf__clip_error(
            VMF_EFORMAT, "%s: truncated: tensor %s ends at byte %lld of a %llu-byte data section",
            path, name, (long long)e, (unsigned long long)data_len);
    if (s->seen)
        return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s appears twice", path, name);
    s->seen = 1;
    const uint8_t *src = data + b;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *q = src + i * esize;
        float v;
        if (esize == 4)
            v = bits_to_float((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                              (uint32_t)q[3] << 24);
        else if (dtype[0] == 'F')
            v = half_to_float((uint16_t)(q[0] | q[1] << 8));
        else
            v = bits_to_float(((uint32_t)q[0] | (uint32_t)q[1] << 8) << 16);
        if (!isfinite(v))
            return vmf__clip_error(VMF_EFORMAT, "%s: tensor %s holds NaN or Inf at element %zu",
                                   path, name, i);
        s->dst[i] = v;
    }
    return VMF_OK;
}

static int load_safetensors(const char *path, spec_list *l)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vmf__clip_error(VMF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vmf__clip_error(VMF_EIO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8) {
        close(fd);
        return vmf__clip_error(VMF_EFORMAT, "%s: truncated: %llu bytes, no header", path,
                               (unsigned long long)size);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return vmf__clip_error(VMF_EIO, "%s: cannot map: %s", path, strerror(errno));
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    int rc = VMF_OK;
    json_t *root = NULL;
    if (hlen > size - 8 || hlen > (100u << 20)) {
        rc = vmf__clip_error(
            VMF_EFORMAT,
            "%s: truncated or not safetensors: header of %llu bytes in a %llu-byte file", path,
            (unsigned long long)hlen, (unsigned long long)size);
        goto done;
    }
    json_error_t jerr;
    root = json_loadb((const char *)p + 8, (size_t)hlen, 0, &jerr);
    if (!json_is_object(root)) {
        rc = vmf__clip_error(VMF_EFORMAT, "%s: header is not a JSON object (%s)", path, jerr.text);
        goto done;
    }
    const char *name;
    json_t *info;
    json_object_foreach(root, name, info)
    {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        if (!json_is_object(info)) {
            rc = vmf__clip_error(VMF_EFORMAT, "%s: tensor %.120s: malformed header entry", path,
                                 name);
            goto done;
        }
        if ((rc = load_tensor(path, name, info, p + 8 + hlen, size - 8 - hlen, l)) != VMF_OK)
            goto done;
    }
    for (size_t i = 0; i < l->n; i++)
        if (!l->v[i].seen) {
            rc = vmf__clip_error(VMF_EFORMAT, "%s: missing tensor %s", path, l->v[i].name);
            goto done;
        }
done:
    json_decref(root);
    munmap(map, (size_t)size);
    return rc;
}

int vmf_clip_load(const char *dir, vmf_clip **out)
{
    if (!dir || !out)
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_load: NULL argument");
    *out = NULL;
    vmf__clip_config cfg;
    int rc = vmf__clip_config_read(dir, &cfg);
    if (rc != VMF_OK)
        return rc;
    spec_list l = {0};
    vmf_clip *m = NULL;
    if ((rc = model_alloc(&cfg, &m, &l)) != VMF_OK)
        goto fail;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = load_safetensors(path, &l)) != VMF_OK)
        goto fail;
    if ((rc = vmf__clip_tokenizer_load(dir, cfg.vocab, &m->tok)) != VMF_OK)
        goto fail;
    free(l.v);
    *out = m;
    return VMF_OK;
fail:
    free(l.v);
    vmf_clip_free(m);
    return rc;
}

/* splitmix64: reproducible random weights for benchmarks. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform values of the given mean and standard deviation (cheap enough for ViT-L sizes). */
static void fill(float *v, size_t n, float mean, float sd, uint64_t *s)
{
    const double half_width = sd * 1.7320508075688772; /* sqrt(3) sd */
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next_u64(s) >> 11) / 9007199254740992.0;
        v[i] = (float)(mean + (2.0 * u - 1.0) * half_width);
    }
}

int vmf__clip_random(const vmf__clip_config *cfg, uint64_t seed, vmf_clip **out)
{
    spec_list l = {0};
    int rc = model_alloc(cfg, out, &l);
    if (rc != VMF_OK) {
        free(l.v);
        return rc;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < l.n; i++) {
        size_t count = 1;
        for (size_t j = 0; j < l.v[i].ndim; j++)
            count *= l.v[i].shape[j];
        int is_norm = strstr(l.v[i].name, "norm") || strstr(l.v[i].name, "layrnorm");
        int is_weight = strstr(l.v[i].name, ".weight") != NULL;
        fill(l.v[i].dst, count, is_norm && is_weight ? 1.0f : 0.0f, is_norm ? 0.1f : 0.02f, &s);
    }
    free(l.v);
    return VMF_OK;
}

size_t vmf_clip_dim(const vmf_clip *m)
{
    return m ? m->cfg.proj : 0;
}

size_t vmf_clip_context_length(const vmf_clip *m)
{
    return m ? m->cfg.context : 0;
}

size_t vmf_clip_image_size(const vmf_clip *m)
{
    return m ? m->cfg.image : 0;
}
