#!/usr/bin/env python3
"""Builds a tiny random CLIP checkpoint and reference results for the C tests.

Everything here is written from the published descriptions, not from the C
code: the checkpoint follows Hugging Face's CLIPModel tensor names and
config.json; model.safetensors is written by hand (8-byte little-endian
header length, JSON header, raw little-endian data); the reference towers
follow the architecture of OpenAI's CLIP (model.py: nn.MultiheadAttention,
pre-LN residual blocks, QuickGELU, causal mask, argmax pooling over padded
token rows, class-token pooling), computed in float64; the tokenizer follows
simple_tokenizer.py with the `regex` module's Unicode classes and ftfy's NFC
normalisation (without ftfy's other repairs and without HTML unescaping,
which the C tokenizer documents it leaves out); the
image pipeline is PIL's: convert("RGB"), resize(BICUBIC) of the shorter side,
center crop, CLIP mean/std.

Usage: make_tiny_clip.py OUT_DIR
Writes OUT_DIR/model/{config.json,model.safetensors,vocab.json,merges.txt},
texts.txt, text_ref.npy, images/*, image_names.txt, pixels_ref.npy,
image_ref.npy, tokens.json.
"""
import json
import os
import random
import struct
import sys
import unicodedata

import numpy as np
import regex
import torch
from PIL import Image

TEXT_W, TEXT_LAYERS, TEXT_HEADS, TEXT_INTER, CONTEXT = 64, 2, 4, 256, 16
VIS_W, VIS_LAYERS, VIS_HEADS, VIS_INTER, PATCH, IMAGE = 48, 2, 4, 192, 8, 32
PROJ = 32
N_MERGES = 300

MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])

CORPUS = """a photo of a cat sitting on the mat the dog runs in the park
a painting of mountains under the sky the quick brown fox jumps over lazy dogs
café crème brûlée naïve résumé über straße photograph of the city at night
two people walking on the beach at sunset there is a red car next to a tree
the cat's toy isn't here we've been there they'll come i'm fine you'd see
1234567890 numbers and digits 42 3.14 hello world!!! what?? yes... (maybe)
emoji 😀🎉 text with symbols #hashtag @user http://example.com/path?q=1
""" * 3


# ---- tokenizer reference (simple_tokenizer.py, written from its published form) ----

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                    regex.IGNORECASE)


def get_pairs(word):
    return set(zip(word[:-1], word[1:]))


class RefTokenizer:
    def __init__(self, vocab, merges):
        self.encoder = vocab
        self.ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()

    def bpe(self, token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return [token + "</w>"]
        while True:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        return list(word)

    def encode(self, text):
        text = unicodedata.normalize("NFC", text)  # ftfy.fix_text's normalisation (and HF's fast tokenizer's)
        text = " ".join(text.split()).strip().lower()  # whitespace_clean (\s+ of re == str.split)
        ids = [self.encoder["<|startoftext|>"]]
        for token in regex.findall(PAT, text):
            if token in ("<|startoftext|>", "<|endoftext|>"):
                ids.append(self.encoder[token])
                continue
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder.get(t, self.encoder["<|endoftext|>"]) for t in self.bpe(token))
        ids.append(self.encoder["<|endoftext|>"])
        return ids


def train_bpe(corpus, n_merges):
    """A small BPE vocabulary in CLIP's layout: bytes, bytes+</w>, merges, specials."""
    be = bytes_to_unicode()
    base = list(be.values())
    words = {}
    for tok in regex.findall(PAT, " ".join(corpus.split()).lower()):
        w = [be[b] for b in tok.encode("utf-8")]
        w[-1] += "</w>"
        words[tuple(w)] = words.get(tuple(w), 0) + 1
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, c in words.items():
            for p in zip(w[:-1], w[1:]):
                counts[p] = counts.get(p, 0) + c
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    vocab_list = base + [b + "</w>" for b in base] + ["".join(m) for m in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {}
    for t in vocab_list:
        if t not in vocab:
            vocab[t] = len(vocab)
    return vocab, [" ".join(m) for m in merges]


# ---- safetensors by hand ----

def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, numpy array of the stored values)."""
    header, blobs, off = {}, [], 0
    for name, dtype, arr in tensors:
        if dtype == "F32":
            raw = arr.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = arr.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = (arr.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        elif dtype == "I64":
            raw = arr.astype("<i8").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def stored(dtype, arr):
    """The values a reader recovers from arr stored as dtype."""
    if dtype == "F16":
        return arr.astype(np.float16).astype(np.float64)
    if dtype == "BF16":
        return ((arr.astype(np.float32).view(np.uint32) >> 16) << 16).view(np.float32).astype(np.float64)
    return arr.astype(np.float32).astype(np.float64)


def make_weights(rng, vocab_size):
    w = {}

    def lin(name, out_f, in_f, bias=True, sd=None):
        sd = sd or in_f ** -0.5
        w[name + ".weight"] = rng.normal(0, sd, (out_f, in_f))
        if bias:
            w[name + ".bias"] = rng.normal(0, 0.05, (out_f,))

    def ln(name, d):
        w[name + ".weight"] = 1 + rng.normal(0, 0.1, (d,))
        w[name + ".bias"] = rng.normal(0, 0.1, (d,))

    def tower(prefix, d, inter, layers):
        for i in range(layers):
            p = "%s.encoder.layers.%d" % (prefix, i)
            for k in ("q", "k", "v"):
                lin(p + ".self_attn.%s_proj" % k, d, d, sd=1.5 * d ** -0.5)
            lin(p + ".self_attn.out_proj", d, d)
            ln(p + ".layer_norm1", d)
            ln(p + ".layer_norm2", d)
            lin(p + ".mlp.fc1", inter, d)
            lin(p + ".mlp.fc2", d, inter)

    w["text_model.embeddings.token_embedding.weight"] = rng.normal(0, 1.0, (vocab_size, TEXT_W))
    w["text_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.5, (CONTEXT, TEXT_W))
    tower("text_model", TEXT_W, TEXT_INTER, TEXT_LAYERS)
    ln("text_model.final_layer_norm", TEXT_W)
    lin("text_projection", PROJ, TEXT_W, bias=False)
    w["vision_model.embeddings.class_embedding"] = rng.normal(0, 1.0, (VIS_W,))
    w["vision_model.embeddings.patch_embedding.weight"] = rng.normal(0, (3 * PATCH * PATCH) ** -0.5,
                                                                     (VIS_W, 3, PATCH, PATCH))
    n_pos = (IMAGE // PATCH) ** 2 + 1
    w["vision_model.embeddings.position_embedding.weight"] = rng.normal(0, 0.5, (n_pos, VIS_W))
    ln("vision_model.pre_layrnorm", VIS_W)
    tower("vision_model", VIS_W, VIS_INTER, VIS_LAYERS)
    ln("vision_model.post_layernorm", VIS_W)
    lin("visual_projection", PROJ, VIS_W, bias=False)
    return w


def dtype_of(name):
    """Mixed storage so that every reader path is exercised."""
    if name.startswith("text_model.encoder.layers.1.mlp") or name == "visual_projection.weight":
        return "F16"
    if name.startswith("vision_model.encoder.layers.0.mlp") or name == "text_model.embeddings.token_embedding.weight":
        return "BF16"
    return "F32"


# ---- reference model (OpenAI model.py structure, float64) ----

class QuickGELU(torch.nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(torch.nn.Module):
    def __init__(self, d, heads, inter, mask):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(d, heads)
        self.ln_1 = torch.nn.LayerNorm(d, eps=1e-5)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, inter), QuickGELU(), torch.nn.Linear(inter, d))
        self.ln_2 = torch.nn.LayerNorm(d, eps=1e-5)
        self.mask = mask

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=self.mask)[0]
        return x + self.mlp(self.ln_2(x))


def load_block(block, w, p):
    t = lambda n: torch.tensor(w[n], dtype=torch.float64)
    with torch.no_grad():
        block.attn.in_proj_weight.copy_(torch.cat([t(p + ".self_attn.%s_proj.weight" % k) for k in "qkv"]))
        block.attn.in_proj_bias.copy_(torch.cat([t(p + ".self_attn.%s_proj.bias" % k) for k in "qkv"]))
        block.attn.out_proj.weight.copy_(t(p + ".self_attn.out_proj.weight"))
        block.attn.out_proj.bias.copy_(t(p + ".self_attn.out_proj.bias"))
        for mine, theirs in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2")):
            getattr(block, mine).weight.copy_(t(p + ".%s.weight" % theirs))
            getattr(block, mine).bias.copy_(t(p + ".%s.bias" % theirs))
        block.mlp[0].weight.copy_(t(p + ".mlp.fc1.weight"))
        block.mlp[0].bias.copy_(t(p + ".mlp.fc1.bias"))
        block.mlp[2].weight.copy_(t(p + ".mlp.fc2.weight"))
        block.mlp[2].bias.copy_(t(p + ".mlp.fc2.bias"))


def ref_text(w, token_lists):
    t = lambda n: torch.tensor(w[n], dtype=torch.float64)
    ids = torch.zeros((len(token_lists), CONTEXT), dtype=torch.long)
    for i, toks in enumerate(token_lists):
        ids[i, :len(toks)] = torch.tensor(toks)
    mask = torch.full((CONTEXT, CONTEXT), float("-inf"), dtype=torch.float64).triu_(1)
    blocks = []
    for i in range(TEXT_LAYERS):
        b = Block(TEXT_W, TEXT_HEADS, TEXT_INTER, mask).double()
        load_block(b, w, "text_model.encoder.layers.%d" % i)
        blocks.append(b)
    with torch.no_grad():
        x = t("text_model.embeddings.token_embedding.weight")[ids] + t("text_model.embeddings.position_embedding.weight")
        x = x.permute(1, 0, 2)
        for b in blocks:
            x = b(x)
        x = x.permute(1, 0, 2)
        x = torch.nn.functional.layer_norm(x, (TEXT_W,), t("text_model.final_layer_norm.weight"),
                                           t("text_model.final_layer_norm.bias"), 1e-5)
        x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ t("text_projection.weight").T
        return (x / x.norm(dim=-1, keepdim=True)).numpy()


def ref_image(w, pixels):
    t = lambda n: torch.tensor(w[n], dtype=torch.float64)
    blocks = []
    for i in range(VIS_LAYERS):
        b = Block(VIS_W, VIS_HEADS, VIS_INTER, None).double()
        load_block(b, w, "vision_model.encoder.layers.%d" % i)
        blocks.append(b)
    with torch.no_grad():
        x = torch.nn.functional.conv2d(torch.tensor(pixels, dtype=torch.float64),
                                       t("vision_model.embeddings.patch_embedding.weight"), stride=PATCH)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = t("vision_model.embeddings.class_embedding").expand(x.shape[0], 1, VIS_W)
        x = torch.cat([cls, x], dim=1) + t("vision_model.embeddings.position_embedding.weight")
        x = torch.nn.functional.layer_norm(x, (VIS_W,), t("vision_model.pre_layrnorm.weight"),
                                           t("vision_model.pre_layrnorm.bias"), 1e-5)
        x = x.permute(1, 0, 2)
        for b in blocks:
            x = b(x)
        x = x.permute(1, 0, 2)
        x = torch.nn.functional.layer_norm(x[:, 0, :], (VIS_W,), t("vision_model.post_layernorm.weight"),
                                           t("vision_model.post_layernorm.bias"), 1e-5)
        x = x @ t("visual_projection.weight").T
        return (x / x.norm(dim=-1, keepdim=True)).numpy()


# ---- images ----

def make_images(rng, d):
    os.makedirs(d, exist_ok=True)
    specs = [  # (w, h, mode, format)
        (32, 32, "RGB", "png"), (37, 53, "RGB", "jpg"), (101, 29, "RGB", "png"), (17, 17, "RGB", "png"),
        (640, 480, "RGB", "jpg"), (33, 64, "L", "jpg"), (45, 45, "L", "png"), (77, 31, "RGBA", "png"),
        (29, 90, "LA", "png"), (64, 48, "P", "png"), (50, 70, "RGB", "jpg"), (123, 321, "RGB", "jpg"),
        (31, 32, "RGB", "png"), (1, 40, "RGB", "png"), (40, 3, "L", "png"), (256, 256, "RGBA", "png"),
        (65, 33, "RGB", "jpg"), (99, 98, "L", "jpg"), (48, 64, "P", "png"), (300, 200, "RGB", "png"),
        (24, 35, "RGBA", "png"), (71, 71, "RGB", "jpg"),
    ]
    names = []
    for i, (w, h, mode, fmt) in enumerate(specs):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 / max(w - 1, 1)), (yy * 255 / max(h - 1, 1)),
                         ((xx + yy) * 97 % 256)], axis=-1)
        arr = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "RGB")
        if mode == "L":
            img = img.convert("L")
        elif mode == "RGBA":
            a = rng.integers(0, 256, (h, w), dtype=np.uint8)
            img = Image.fromarray(np.dstack([arr, a]), "RGBA")
        elif mode == "LA":
            img = img.convert("LA")
        elif mode == "P":
            img = img.quantize(colors=16)
        name = "img%02d_%dx%d_%s.%s" % (i, w, h, mode, fmt)
        if fmt == "jpg":
            img.save(os.path.join(d, name), quality=int(rng.integers(60, 96)))
        else:
            img.save(os.path.join(d, name))
        names.append(name)
    return names


def preprocess(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    short, long_ = (w, h) if w <= h else (h, w)
    new_long = int(IMAGE * long_ / short)
    size = (IMAGE, new_long) if w <= h else (new_long, IMAGE)
    img = img.resize(size, Image.BICUBIC)
    a = np.asarray(img).astype(np.float64)
    top, left = (a.shape[0] - IMAGE) // 2, (a.shape[1] - IMAGE) // 2
    a = a[top:top + IMAGE, left:left + IMAGE] / 255.0
    return ((a - MEAN) / STD).transpose(2, 0, 1)


TEXTS = [
    "a photo of a cat", "A painting of MOUNTAINS under the sky", "the dog's ball isn't red",
    "café crème brûlée", "two people walking on the beach", "1234 numbers", "what?? yes...",
    "emoji 😀🎉 party", "hello   world\tagain", "Über straße naïve", "there is a red car next to a tree",
    "#hashtag @user", "the quick brown fox", "we've been there", "i'm fine", "3.14159",
    "night city", "(maybe) [not]", "zebra", "x", "a photo of the city at night", "ÀÉÎÕÜ",
]


def token_strings(rng):
    fixed = TEXTS + [
        "", "   ", "it's", "IT'S", "they'll", "you'd", "'s'", "''", "don't!!!", "a'b", "!!'s",
        "<|endoftext|>", "x<|startoftext|>y", "<|ENDOFTEXT|>", "a1b2c3", "١٢٣ arabic digits",
        "中文字符", "日本語のテキスト", "한국어", "Ελληνικά", "Русский текст", "naïve café", "e\u0301",
        "İstanbul", "ǅ title", "ﬁ ligature", "½ ⅓ ²", "\u00a0nbsp\u3000ideographic", "tab\tsep",
        "line\nbreak", "emoji 👨‍👩‍👧 family", "🇫🇷 flag", "smile😀smile", "....", "-- -- --",
        "$100.00", "user@example.com", "C++ & C#", "<b>bold</b>", "&amp; &lt;", "snake_case_name",
        "cafe\u0301 decomposed", "a\u0323\u0307 a\u0307\u0323 order", "\u1100\u1161\u11a8 jamo",
        "\u212b angstrom \u2126 ohm", "\u0301 leading mark", "\u1e9b\u0323", "\uac00\u11a8",
        "e\u0301\u0301\u0327 stacked", "\u0958 nukta", "n\u0303o\u0308",
        "ΟΔΟΣ", "ΣΑ Σ", "aΣ.", "Σ", "aΣ'b", "ΑΣ\u0301", "ΌΣΟΣ ΚΑΙ", "İ", "ß ẞ", "ǅǄǆ",
    ]
    pool = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3 + \
        list(" \t,.!?;:'\"()[]{}<>-_/\\@#$%^&*+=~`|") + list("éèêëàâäôöûüçñßøåæœÉÀÇÑ") + \
        ["😀", "🎉", "👍", "❤️", "中", "文", "é", "\u0301", "٣", "Ⅻ", "\u2003", "ﬀ", "İ", "ǅ"]
    out = list(fixed)
    # Normalisation: composed and decomposed letters, stacked and reordered marks, Hangul.
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u0323", "\u0327", "\u0345", "\u093c", "\u05b0"]
    bases = list("aeiouncAEIOUNCzZ") + ["à", "é", "ñ", "Ǖ", "ḝ", "ἂ", "ᾂ", "ω", "क", "ड", "\u1100", "\u1161",
                                         "\u11a8", "가", "각", "\u212b", "\u2126", "Å", "ﬁ", "\u0958"]
    for _ in range(150):
        out.append("".join(rng.choice(bases + marks, p=None) for _ in range(int(rng.integers(1, 12)))))
    # Wide samples of Latin, Greek, Hangul, Devanagari, symbols and emoji.
    wide = [chr(c) for r in ((0x20, 0x250), (0x300, 0x400), (0x900, 0x980), (0x1100, 0x1200),
                             (0x1E00, 0x2000), (0x2100, 0x2200), (0x3000, 0x3040),
                             (0xAC00, 0xAC40), (0x1F600, 0x1F650)) for c in range(*r)]
    for _ in range(150):
        out.append("".join(wide[int(i)] for i in rng.integers(0, len(wide), int(rng.integers(1, 30)))))
    words = CORPUS.split()
    while len(out) < 570:
        if rng.random() < 0.5:
            s = " ".join(rng.choice(words) for _ in range(int(rng.integers(1, 6))))
        else:
            s = "".join(rng.choice(pool) for _ in range(int(rng.integers(1, 25))))
        out.append(s)
    return out


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20260514)
    mdir = os.path.join(out, "model")
    os.makedirs(mdir, exist_ok=True)
    vocab, merges = train_bpe(CORPUS, N_MERGES)
    vocab_size = len(vocab)
    with open(os.path.join(mdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(mdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {
        "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": PROJ,
        "text_config": {"vocab_size": vocab_size, "hidden_size": TEXT_W, "intermediate_size": TEXT_INTER,
                        "num_hidden_layers": TEXT_LAYERS, "num_attention_heads": TEXT_HEADS,
                        "max_position_embeddings": CONTEXT, "hidden_act": "quick_gelu",
                        "layer_norm_eps": 1e-5, "eos_token_id": 2, "projection_dim": PROJ},
        "vision_config": {"hidden_size": VIS_W, "intermediate_size": VIS_INTER,
                          "num_hidden_layers": VIS_LAYERS, "num_attention_heads": VIS_HEADS,
                          "image_size": IMAGE, "patch_size": PATCH, "num_channels": 3,
                          "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": PROJ},
    }
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    w = make_weights(rng, vocab_size)
    tensors = [(n, dtype_of(n), a) for n, a in sorted(w.items())]
    tensors.append(("text_model.embeddings.position_ids", "I64", np.arange(CONTEXT)[None, :]))
    tensors.append(("logit_scale", "F32", np.array(4.6052, dtype=np.float32)))
    write_safetensors(os.path.join(mdir, "model.safetensors"), tensors)
    w = {n: stored(dtype_of(n), a) for n, a in w.items()}

    tok = RefTokenizer(vocab, merges)
    strings = token_strings(rng)
    with open(os.path.join(out, "tokens.json"), "w", encoding="utf-8") as f:
        json.dump([{"text": s, "ids": tok.encode(s)} for s in strings], f, ensure_ascii=False)

    ids = [tok.encode(t) for t in TEXTS]
    assert all(len(i) <= CONTEXT for i in ids), [len(i) for i in ids]
    with open(os.path.join(out, "texts.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(t.replace("\t", " ") for t in TEXTS) + "\n")
    ids = [tok.encode(t.replace("\t", " ")) for t in TEXTS]
    np.save(os.path.join(out, "text_ref.npy"), ref_text(w, ids).astype(np.float64))

    names = make_images(rng, os.path.join(out, "images"))
    with open(os.path.join(out, "image_names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    pix = np.stack([preprocess(os.path.join(out, "images", n)) for n in names])
    np.save(os.path.join(out, "pixels_ref.npy"), pix.astype(np.float32))
    np.save(os.path.join(out, "image_ref.npy"), ref_image(w, pix.astype(np.float32).astype(np.float64)))
    print("tiny CLIP: vocab %d, %d texts, %d images, %d token strings" % (vocab_size, len(TEXTS), len(names), len(strings)))


if __name__ == "__main__":
    main()
