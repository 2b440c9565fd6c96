/*
 * clip_tokenizer.c - CLIP's byte-level BPE tokenizer (Radford et al. 2021,
 * the simple_tokenizer of the reference implementation, as Hugging Face's
 * CLIPTokenizer applies it).
 *
 * Steps: decode UTF-8; normalise to NFC (as the reference's ftfy.fix_text and
 * Hugging Face's fast tokenizer do); collapse every run of white space (Python's
 * str.isspace) to one space and strip the ends; lower-case as Python's
 * str.lower(); split into pre-tokens with the pattern
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * (leftmost alternative first, greedy runs, white space skipped); map each
 * pre-token's UTF-8 bytes to the printable characters of bytes_to_unicode,
 * mark the last character with "</w>", and merge adjacent pairs by rank
 * (lowest first, every occurrence left to right) until no pair is ranked.
 * The rest of ftfy's repairs (mojibake, ...) and the reference's HTML
 * unescaping are not applied (docs/clip.md); Hugging Face applies neither.
 */
#include "clip_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hugging Face keeps the first 49152 - 256 - 2 merges, as the reference does. */
#define MAX_MERGES (49152 - 256 - 2)

typedef struct entry {
    size_t off, len;
    int32_t val;
    int used;
} entry;

/* A string -> int map with open addressing; keys live in one arena. */
typedef struct strmap {
    entry *slots;
    size_t cap, count;
    char *arena;
    size_t arena_len, arena_cap;
} strmap;

struct vmf__clip_tokenizer {
    strmap vocab, merges;
    int32_t sot, eot;
    char byte_enc[256][3];
    uint8_t byte_len[256];
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int map_init(strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    m->cap = 16;
    while (m->cap < 2 * expected + 16)
        m->cap *= 2;
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots ? 0 : -1;
}

static void map_free(strmap *m)
{
    free(m->slots);
    free(m->arena);
}

static entry *map_find(const strmap *m, const char *s, size_t n)
{
    size_t i = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->slots[i].used) {
        entry *e = &m->slots[i];
        if (e->len == n && memcmp(m->arena + e->off, s, n) == 0)
            return e;
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/*
 * Inserts s -> val; a key already present takes the new value (the last one
 * wins, as in the Python dictionaries of the reference). 0, or -1 no memory.
 */
static int map_put(strmap *m, const char *s, size_t n, int32_t val)
{
    entry *old = map_find(m, s, n);
    if (old) {
        old->val = val;
        return 0;
    }
    if (2 * (m->count + 1) > m->cap)
        return -1; /* sized at init; never grows */
    if (m->arena_len + n > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : 4096;
        while (cap < m->arena_len + n)
            cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, s, n);
    size_t i = (size_t)hash_bytes(s, n) & (m->cap - 1);
    while (m->slots[i].used)
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = (entry){m->arena_len, n, val, 1};
    m->arena_len += n;
    m->count++;
    return 0;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict UTF-8 decoding (no overlongs, surrogates or values above U+10FFFF). */
static int utf8_decode(const char *s, uint32_t **cps, size_t *n)
{
    size_t len = strlen(s);
    uint32_t *out = vmf__clip_alloc(len + 1, sizeof *out);
    if (!out)
        return vmf__clip_error(VMF_ENOMEM, "out of memory decoding a text");
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, k = 0;
    while (i < len) {
        uint32_t c = p[i];
        size_t extra;
        uint32_t min;
        if (c < 0x80) {
            extra = 0;
            min = 0;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            c &= 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            c &= 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            c &= 0x07;
            min = 0x10000;
        } else {
            goto bad;
        }
        if (i + extra >= len + (extra == 0))
            goto bad;
        for (size_t j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                goto bad;
            c = (c << 6) | (p[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            goto bad;
        out[k++] = c;
        i += extra + 1;
        continue;
    bad:
        free(out);
        return vmf__clip_error(VMF_EFORMAT, "invalid UTF-8 at byte %zu", i);
    }
    *cps = out;
    *n = k;
    return VMF_OK;
}

/* ---- NFC (Unicode Standard Annex #15) ------------------------------------------ */

#define S_BASE  0xAC00u
#define L_BASE  0x1100u
#define V_BASE  0x1161u
#define T_BASE  0x11A7u
#define L_COUNT 19u
#define V_COUNT 21u
#define T_COUNT 28u
#define S_COUNT (L_COUNT * V_COUNT * T_COUNT)

static void decompose_full(uint32_t cp, uint32_t *out, size_t *k)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        out[(*k)++] = L_BASE + s / (V_COUNT * T_COUNT);
        out[(*k)++] = V_BASE + (s % (V_COUNT * T_COUNT)) / T_COUNT;
        if (s % T_COUNT)
            out[(*k)++] = T_BASE + s % T_COUNT;
        return;
    }
    uint32_t a, b;
    int r = vmf__clip_decompose(cp, &a, &b);
    if (r == 0) {
        out[(*k)++] = cp;
        return;
    }
    decompose_full(a, out, k);
    if (r == 2)
        decompose_full(b, out, k);
}

static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    return vmf__clip_compose(a, b);
}

/*
 * NFC of in [n] into a new array *out [*m]: full canonical decomposition,
 * canonical ordering of combining marks, then canonical composition.
 */
static int nfc(const uint32_t *in, size_t n, uint32_t **out, size_t *m)
{
    /* A canonical decomposition is at most 4 code points (Hangul: 3). */
    uint32_t *d = vmf__clip_alloc(4 * n + 4, sizeof *d);
    if (!d)
        return vmf__clip_error(VMF_ENOMEM, "out of memory normalising a text");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        decompose_full(in[i], d, &k);
    /* Stable insertion sort of each run of non-starters by combining class. */
    for (size_t i = 1; i < k; i++) {
        int ci = vmf__clip_ccc(d[i]);
        if (ci == 0)
            continue;
        for (size_t j = i; j > 0; j--) {
            int cj = vmf__clip_ccc(d[j - 1]);
            if (cj == 0 || cj <= ci)
                break;
            uint32_t t = d[j];
            d[j] = d[j - 1];
            d[j - 1] = t;
        }
    }
    if (k > 0) {
        size_t starter = 0, w = 1;
        int last = vmf__clip_ccc(d[0]) ? 256 : 0;
        for (size_t i = 1; i < k; i++) {
            uint32_t ch = d[i];
            int cc = vmf__clip_ccc(ch);
            uint32_t comp = compose_pair(d[starter], ch);
            if (comp && (last < cc || last == 0)) {
                d[starter] = comp;
                continue;
            }
            if (cc == 0)
                starter = w;
            last = cc;
            d[w++] = ch;
        }
        k = w;
    }
    *out = d;
    *m = k;
    return VMF_OK;
}

/* ---- loading -------------------------------------------------------------- */

static void byte_encoder(vmf__clip_tokenizer *t)
{
    /* bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to 256 + n. */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)(256 + n++);
        t->byte_len[b] = (uint8_t)utf8_put(cp, t->byte_enc[b]);
    }
}

static int load_vocab(vmf__clip_tokenizer *t, const char *path, size_t vocab_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return vmf__clip_error(VMF_EIO, "%s: cannot open: %s", path, strerror(errno));
        fclose(f);
        return vmf__clip_error(VMF_EFORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    }
    int rc = VMF_OK;
    if (!json_is_object(root)) {
        rc = vmf__clip_error(VMF_EFORMAT, "%s: not a JSON object", path);
        goto done;
    }
    if (map_init(&t->vocab, json_object_size(root)) != 0) {
        rc = vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            (size_t)json_integer_value(val) >= vocab_size) {
            rc = vmf__clip_error(VMF_EFORMAT,
                                 "%s: token '%.40s' has no id in [0, %zu) (config.json vocab_size)",
                                 path, key, vocab_size);
            goto done;
        }
        if (map_put(&t->vocab, key, strlen(key), (int32_t)json_integer_value(val)) < 0) {
            rc = vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    const entry *s = map_find(&t->vocab, "<|startoftext|>", 15);
    const entry *e = map_find(&t->vocab, "<|endoftext|>", 13);
    if (!s || !e) {
        rc = vmf__clip_error(VMF_EFORMAT, "%s: no <|startoftext|> or <|endoftext|> token", path);
        goto done;
    }
    t->sot = s->val;
    t->eot = e->val;
done:
    json_decref(root);
    return rc;
}

static int load_merges(vmf__clip_tokenizer *t, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vmf__clip_error(VMF_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
            }
            buf = b;
        }
        size_t got = fread(buf + len, 1, 65536, f);
        len += got;
        if (got < 65536)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return vmf__clip_error(VMF_EIO, "%s: read error", path);
    }
    buf[len] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    int rc = VMF_OK;
    if (map_init(&t->merges, lines < MAX_MERGES ? lines : MAX_MERGES) != 0) {
        rc = vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    char *p = buf;
    size_t lineno = 0;
    int32_t rank = 0;
    while (*p && rank < MAX_MERGES) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (lineno == 1 && p[0] == '#') {
            /* "#version: 0.2" */
        } else if (n > 0) {
            char *sp = memchr(p, ' ', n);
            if (!sp || sp == p || sp == p + n - 1 ||
                memchr(sp + 1, ' ', n - (size_t)(sp - p) - 1)) {
                rc = vmf__clip_error(VMF_EFORMAT, "%s: line %zu is not two tokens", path, lineno);
                goto done;
            }
            if (map_put(&t->merges, p, n, rank) < 0) {
                rc = vmf__clip_error(VMF_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            rank++;
        }
        p = nl ? nl + 1 : p + n;
    }
done:
    free(buf);
    return rc;
}

int vmf__clip_tokenizer_load(const char *dir, size_t vocab_size, vmf__clip_tokenizer **out)
{
    *out = NULL;
    vmf__clip_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return vmf__clip_error(VMF_ENOMEM, "out of memory");
    byte_encoder(t);
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    int rc = load_vocab(t, path, vocab_size);
    if (rc == VMF_OK) {
        snprintf(path, sizeof path, "%s/merges.txt", dir);
        rc = load_merges(t, path);
    }
    if (rc != VMF_OK) {
        vmf__clip_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return VMF_OK;
}

void vmf__clip_tokenizer_free(vmf__clip_tokenizer *t)
{
    if (!t)
        return;
    map_free(&t->vocab);
    map_free(&t->merges);
    free(t);
}

/* ---- encoding ------------------------------------------------------------- */

typedef struct emitter {
    int32_t *ids;
    size_t cap, n;
} emitter;

static void emit(emitter *e, int32_t id)
{
    if (e->n < e->cap)
        e->ids[e->n] = id;
    e->n++;
}

/*
 * BPE of one pre-token given as the byte-unicode string w [wlen] (without
 * "</w>"); sym [wlen] and key [2 * wlen + 8] are scratch.
 */
static int bpe_word(const vmf__clip_tokenizer *t, char *w, size_t wlen, size_t *sym_off,
                    size_t *sym_len, char *key, emitter *e)
{
    /* w has room for "</w>" after wlen. */
    memcpy(w + wlen, "</w>", 4);
    size_t ns = 0;
    for (size_t i = 0; i < wlen;) {
        size_t l = 1;
        uint8_t c = (uint8_t)w[i];
        if (c >= 0xC0)
            l = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        sym_off[ns] = i;
        sym_len[ns] = l;
        ns++;
        i += l;
    }
    sym_len[ns - 1] += 4;
    while (ns > 1) {
        int32_t best = INT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            size_t a = sym_len[i], b = sym_len[i + 1];
            memcpy(key, w + sym_off[i], a);
            key[a] = ' ';
            memcpy(key + a + 1, w + sym_off[i + 1], b);
            const entry *m = map_find(&t->merges, key, a + b + 1);
            if (m && m->val < best) {
                best = m->val;
                bi = i;
            }
        }
        if (best == INT32_MAX)
            break;
        const char *first = w + sym_off[bi], *second = w + sym_off[bi + 1];
        size_t fl = sym_len[bi], sl = sym_len[bi + 1];
        size_t k = 0;
        for (size_t i = 0; i < ns;) {
            if (i + 1 < ns && sym_len[i] == fl && sym_len[i + 1] == sl &&
                memcmp(w + sym_off[i], first, fl) == 0 &&
                memcmp(w + sym_off[i + 1], second, sl) == 0) {
                sym_off[k] = sym_off[i];
                sym_len[k] = fl + sl;
                k++;
                i += 2;
            } else {
                sym_off[k] = sym_off[i];
                sym_len[k] = sym_len[i];
                k++;
                i++;
            }
        }
        ns = k;
    }
    for (size_t i = 0; i < ns; i++) {
        const entry *v = map_find(&t->vocab, w + sym_off[i], sym_len[i]);
        /* Hugging Face maps a piece missing from the vocabulary to its unknown token, the end
         * token. */
        emit(e, v ? v->val : t->eot);
    }
    return VMF_OK;
}

/*
 * Python's str.lower() maps capital sigma to the final form when a cased
 * letter precedes it and none follows (case-ignorable characters between
 * are skipped both ways): Unicode's Final_Sigma condition.
 */
static int final_sigma(const uint32_t *c, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && vmf__clip_case_kind(c[j - 1]) == 2)
        j--;
    if (j == 0 || vmf__clip_case_kind(c[j - 1]) != 1)
        return 0;
    size_t k = i + 1;
    while (k < n && vmf__clip_case_kind(c[k]) == 2)
        k++;
    return k == n || vmf__clip_case_kind(c[k]) != 1;
}

static int match_ascii(const uint32_t *c, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    if (i + l > n)
        return 0;
    for (size_t j = 0; j < l; j++)
        if (c[i + j] != (uint32_t)(uint8_t)lit[j])
            return 0;
    return (int)l;
}

int vmf__clip_tokenizer_encode(const vmf__clip_tokenizer *t, const char *text, int32_t *ids,
                               size_t cap, size_t *n)
{
    uint32_t *raw = NULL, *c = NULL;
    char *w = NULL, *key = NULL;
    size_t *so = NULL, *sl = NULL;
    size_t nraw = 0;
    int rc = utf8_decode(text, &raw, &nraw);
    if (rc != VMF_OK)
        return rc;
    {
        uint32_t *normal = NULL;
        size_t nn = 0;
        rc = nfc(raw, nraw, &normal, &nn);
        free(raw);
        if (rc != VMF_OK)
            return rc;
        raw = normal;
        nraw = nn;
    }
    /* Clean: collapse white space, strip, lower-case (U+0130 lowers to two characters). */
    c = vmf__clip_alloc(2 * nraw + 1, sizeof *c);
    size_t nc = 0;
    if (!c) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory tokenizing a text");
        goto done;
    }
    int pending_space = 0;
    for (size_t i = 0; i < nraw; i++) {
        uint32_t cp = raw[i];
        if (vmf__clip_char_class(cp) == 3) {
            pending_space = nc > 0;
            continue;
        }
        if (pending_space)
            c[nc++] = ' ';
        pending_space = 0;
        if (cp == 0x130) {
            c[nc++] = 'i';
            c[nc++] = 0x307;
        } else if (cp == 0x3A3) {
            c[nc++] = final_sigma(raw, nraw, i) ? 0x3C2 : 0x3C3;
        } else {
            c[nc++] = vmf__clip_lower(cp);
        }
    }
    /* Scratch for the longest pre-token: 4 bytes per character, byte-unicode doubles. */
    w = vmf__clip_alloc(8 * nc + 8, 1);
    key = vmf__clip_alloc(16 * nc + 16, 1);
    so = vmf__clip_alloc(4 * nc + 1, sizeof *so);
    sl = vmf__clip_alloc(4 * nc + 1, sizeof *sl);
    if (!w || !key || !so || !sl) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory tokenizing a text");
        goto done;
    }
    emitter e = {ids, cap, 0};
    emit(&e, t->sot);
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; i < nc;) {
        int cls = vmf__clip_char_class(c[i]);
        /*
         * The reference matches its pattern with re.IGNORECASE, under which
         * U+0345 (combining ypogegrammeni, case-folding to a letter) belongs
         * to neither [\p{L}] nor [^\s\p{L}\p{N}]: it is skipped like space.
         */
        if (cls == 3 || c[i] == 0x345) {
            i++;
            continue;
        }
        size_t end = i;
        int l;
        if ((l = match_ascii(c, nc, i, "<|startoftext|>")) > 0) {
            emit(&e, t->sot);
            i += (size_t)l;
            continue;
        }
        if ((l = match_ascii(c, nc, i, "<|endoftext|>")) > 0) {
            emit(&e, t->eot);
            i += (size_t)l;
            continue;
        }
        l = 0;
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0] && !l; k++)
            l = match_ascii(c, nc, i, contractions[k]);
        if (l > 0) {
            end = i + (size_t)l;
        } else if (cls == 1) {
            end = i;
            while (end < nc && vmf__clip_char_class(c[end]) == 1)
                end++;
        } else if (cls == 2) {
            end = i + 1;
        } else {
            end = i;
            while (end < nc && vmf__clip_char_class(c[end]) == 0 && c[end] != 0x345)
                end++;
        }
        size_t wl = 0;
        for (size_t k = i; k < end; k++) {
            char u[4];
            size_t ul = utf8_put(c[k], u);
            for (size_t b = 0; b < ul; b++) {
                uint8_t byte = (uint8_t)u[b];
                memcpy(w + wl, t->byte_enc[byte], t->byte_len[byte]);
                wl += t->byte_len[byte];
            }
        }
        bpe_word(t, w, wl, so, sl, key, &e);
        i = end;
        if (e.n > cap)
            break; /* does not fit: the exact count is not needed, and a long text is costly */
    }
    emit(&e, t->eot);
    *n = e.n;
done:
    free(raw);
    free(c);
    free(w);
    free(key);
    free(so);
    free(sl);
    return rc;
}

/* ---- public entry points ------------------------------------------------------ */

int vmf_clip_tokenize(const vmf_clip *m, const char *text, int truncate, int32_t *ids, size_t cap,
                      size_t *n)
{
    if (!m || !text || !ids || !n || !m->tok)
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_tokenize: NULL argument or no tokenizer");
    size_t ctx = m->cfg.context;
    if (cap < ctx)
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_tokenize: cap %zu < context %zu", cap, ctx);
    size_t count = 0;
    int rc = vmf__clip_tokenizer_encode(m->tok, text, ids, cap, &count);
    if (rc != VMF_OK)
        return rc;
    if (count <= 2)
        return vmf__clip_error(VMF_EINVAL, "empty text");
    if (count > ctx) {
        if (!truncate && count <= cap)
            return vmf__clip_error(VMF_ERANGE, "text has %zu tokens, the context holds %zu", count,
                                   ctx);
        if (!truncate)
            return vmf__clip_error(
                VMF_ERANGE, "text has more than %zu tokens, the context holds %zu", cap, ctx);
        /* Keep the first ctx-1 tokens and end with the end token, as CLIP's truncation does. */
        ids[ctx - 1] = m->tok->eot;
        count = ctx;
    }
    *n = count;
    return VMF_OK;
}

int vmf_clip_embed_texts(const vmf_clip *m, const char *const *texts, size_t n, int truncate,
                         float *out)
{
    if (!m || (n && (!texts || !out)))
        return vmf__clip_error(VMF_EINVAL, "vmf_clip_embed_texts: NULL argument");
    if (n == 0)
        return VMF_OK;
    size_t ctx = m->cfg.context;
    int32_t *ids = vmf__clip_alloc(n, ctx * sizeof *ids);
    size_t *lens = vmf__clip_alloc(n, sizeof *lens);
    int rc = VMF_OK;
    if (!ids || !lens) {
        rc = vmf__clip_error(VMF_ENOMEM, "out of memory for %zu texts", n);
        goto done;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) {
            rc = vmf__clip_error(VMF_EINVAL, "text %zu: NULL", i);
            goto done;
        }
        rc = vmf_clip_tokenize(m, texts[i], truncate, ids + off, ctx, &lens[i]);
        if (rc != VMF_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", vmf_clip_last_error());
            rc = vmf__clip_error(rc, "text %zu: %s", i, msg);
            goto done;
        }
        off += lens[i];
    }
    rc = vmf__clip_text_forward(m, ids, lens, n, out);
done:
    free(ids);
    free(lens);
    return rc;
}
