#!/usr/bin/env python3
"""`vmfmm embed` and `vmfmm fit --clip-model` on the tiny CLIP of make_tiny_clip.py.

Usage: test_clip_cli.py VMFMM_BINARY FIXTURE_DIR
Checks the outputs against the PyTorch references, the skipping and listing
of corrupt images (and --strict), and each error of the issue: missing and
truncated weights, a wrong tensor shape, an unreadable or corrupt image, an
empty text line, a text longer than the context; each a one-line message
naming the file, with its sysexits code.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

VMFMM, FX = sys.argv[1], sys.argv[2]
MODEL = os.path.join(FX, "model")
failures = []


def run(*args):
    p = subprocess.run([VMFMM] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def close(got, ref, what):
    cos = np.sum(got * ref, axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    check(got.shape == ref.shape and cos.min() >= 0.99999 and np.abs(got - ref).max() <= 1e-4,
          "%s: shape %s, worst cosine %.8f, max diff %.2g" % (what, got.shape, cos.min(), np.abs(got - ref).max()))


def one_line_error(rc, err, code, *needles, what):
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == code and len(lines) == 1 and all(n in lines[0] for n in needles),
          "%s: exit %d (want %d), stderr %r" % (what, rc, code, err.strip()))


tmp = tempfile.mkdtemp(prefix="vmfclip.")
try:
    texts = os.path.join(FX, "texts.txt")
    images = os.path.join(FX, "images")

    # Outputs against the references.
    out, ids = os.path.join(tmp, "t.npy"), os.path.join(tmp, "t.ids")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", texts, "--output", out, "--ids", ids, "--batch", "7")
    check(rc == 0, "embed texts exits 0 (%s)" % err.strip())
    close(np.load(out), np.load(os.path.join(FX, "text_ref.npy")), "text embeddings")
    n_texts = len(open(texts, encoding="utf-8").read().splitlines())
    check(open(ids).read().splitlines() == ["%s:%d" % (texts, i + 1) for i in range(n_texts)], "text ids")
    out = os.path.join(tmp, "i.npy")
    rc, _, err = run("embed", "--model", MODEL, "--image-dir", images, "-o", out, "--batch", "5", "-q")
    check(rc == 0, "embed images exits 0 (%s)" % err.strip())
    close(np.load(out), np.load(os.path.join(FX, "image_ref.npy")), "image embeddings")

    # A folder with corrupt and unreadable images: skipped and listed, or errors with --strict.
    bad = os.path.join(tmp, "bad")
    shutil.copytree(images, bad)
    names = sorted(os.listdir(images))
    png = next(n for n in names if n.endswith(".png"))
    data = open(os.path.join(images, png), "rb").read()
    open(os.path.join(bad, "m_cut.png"), "wb").write(data[: len(data) // 2])
    open(os.path.join(bad, "n_garbage.jpg"), "wb").write(b"not a jpeg")
    open(os.path.join(bad, "notes.txt"), "w").write("ignored")
    os.symlink(os.path.join(tmp, "nowhere.jpg"), os.path.join(bad, "o_dangling.jpg"))
    out, ids = os.path.join(tmp, "b.npy"), os.path.join(tmp, "b.ids")
    rc, _, err = run("embed", "--model", MODEL, "--image-dir", bad, "-o", out, "--ids", ids)
    check(rc == 0 and "skipped 3 of %d images" % (len(names) + 3) in err and "m_cut.png" in err
          and "n_garbage.jpg" in err and "o_dangling.jpg" in err, "corrupt images skipped and listed: %r" % err)
    check(err.count("warning: skipping") == 3, "one warning per skipped image")
    ref = np.load(os.path.join(FX, "image_ref.npy"))
    close(np.load(out), ref, "embeddings with the corrupt images skipped")
    check(open(ids).read().splitlines() == [os.path.join(bad, n) for n in names], "ids leave the skipped images out")
    rc, _, err = run("embed", "--model", MODEL, "--image-dir", bad, "-o", out, "--strict")
    one_line_error(rc, err, 65, "m_cut.png", "corrupt PNG", what="--strict: corrupt image")
    os.remove(os.path.join(bad, "m_cut.png"))
    os.remove(os.path.join(bad, "n_garbage.jpg"))
    rc, _, err = run("embed", "--model", MODEL, "--image-dir", bad, "-o", out, "--strict")
    one_line_error(rc, err, 66, "o_dangling.jpg", "cannot open", what="--strict: unreadable image")
    rc, _, err = run("embed", "--model", MODEL, "--image-dir", os.path.join(tmp, "absent"), "-o", out)
    one_line_error(rc, err, 66, "absent", what="missing image folder")

    # Weights: missing, truncated, wrong shape.
    def model_copy(name):
        d = os.path.join(tmp, name)
        shutil.copytree(MODEL, d)
        return d
    m = model_copy("m_missing")
    os.remove(os.path.join(m, "model.safetensors"))
    rc, _, err = run("embed", "--model", m, "--text-file", texts, "-o", out)
    one_line_error(rc, err, 66, "model.safetensors", "cannot open", what="missing weight file")
    m = model_copy("m_cut")
    st = os.path.join(m, "model.safetensors")
    data = open(st, "rb").read()
    open(st, "wb").write(data[: len(data) * 2 // 3])
    rc, _, err = run("embed", "--model", m, "--text-file", texts, "-o", out)
    one_line_error(rc, err, 65, "model.safetensors", "truncated", "tensor ", what="truncated weight file")
    m = model_copy("m_shape")
    cfg = json.load(open(os.path.join(m, "config.json")))
    cfg["vision_config"]["intermediate_size"] = 100
    json.dump(cfg, open(os.path.join(m, "config.json"), "w"))
    rc, _, err = run("embed", "--model", m, "--image-dir", images, "-o", out)
    one_line_error(rc, err, 65, "vision_model.encoder.layers.0.mlp.fc", "has shape [",
                   "config.json implies [", "100", what="wrong tensor shape")

    # A used tensor of an integer dtype, and a tensor the configuration does not imply.
    def rewrite_header(name, edit):
        d = model_copy(name)
        st = os.path.join(d, "model.safetensors")
        raw = open(st, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        edit(header)
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        open(st, "wb").write(len(h).to_bytes(8, "little") + h + raw[8 + n:])
        return d
    m = rewrite_header("m_dtype", lambda h: h["text_projection.weight"].update(dtype="I32"))
    rc, _, err = run("embed", "--model", m, "--text-file", texts, "-o", out)
    one_line_error(rc, err, 65, "tensor text_projection.weight has dtype I32", what="integer dtype")
    m = rewrite_header("m_extra", lambda h: h.__setitem__("text_model.extra.weight", h["logit_scale"]))
    rc, _, err = run("embed", "--model", m, "--text-file", texts, "-o", out)
    one_line_error(rc, err, 65, "unexpected tensor text_model.extra.weight", what="unexpected tensor")

    # Texts: empty line, too long, --truncate, invalid UTF-8, no lines.
    tf = os.path.join(tmp, "texts_empty.txt")
    open(tf, "w").write("a cat\na dog\n   \nthe end\n")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", tf, "-o", out)
    one_line_error(rc, err, 65, tf + ":3: empty text line", what="empty text line")
    tf = os.path.join(tmp, "texts_long.txt")
    open(tf, "w").write("a cat\n" + " ".join(["zq xj vk wy"] * 6) + "\n")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", tf, "-o", out)
    one_line_error(rc, err, 65, tf + ":2: text longer than the context", "--truncate", what="too long text")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", tf, "-o", out, "--truncate")
    check(rc == 0 and np.load(out).shape == (2, 32), "--truncate embeds the long text")
    tf = os.path.join(tmp, "texts_bad.txt")
    open(tf, "wb").write(b"fine\nbad \xc3\x28 utf8\n")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", tf, "-o", out)
    one_line_error(rc, err, 65, tf + ":2:", "UTF-8", what="invalid UTF-8")
    rc, _, err = run("embed", "--model", MODEL, "--text-file", os.path.join(tmp, "none.txt"), "-o", out)
    one_line_error(rc, err, 66, "none.txt", what="missing text file")

    # Usage.
    rc, out_, _ = run("embed", "--help")
    check(rc == 0 and "--image-dir" in out_, "embed --help")
    rc, _, err = run("embed", "--text-file", texts, "-o", out)
    one_line_error(rc, err, 64, "--model", what="embed without --model")
    rc, _, err = run("embed", "--model", MODEL, "-o", out)
    one_line_error(rc, err, 64, "--text-file", what="embed without input")
    rc, _, err = run("fit", "--clip-model", MODEL, "--text-file", texts, "--input", out, "-k", "3")
    one_line_error(rc, err, 64, "--input", what="fit --clip-model with --input")

    # Embed then fit in one command: the usual outputs.
    od = os.path.join(tmp, "fit")
    rc, so, err = run("fit", "--clip-model", MODEL, "--text-file", texts, "--image-dir", images,
                      "-k", "3", "--output-dir", od, "--seed", "3")
    check(rc == 0, "fit --clip-model exits 0 (%s)" % err.strip())
    for f in ("model.json", "convergence.json", "metrics.json", "embeddings.npy", "embeddings.ids.txt"):
        check(os.path.exists(os.path.join(od, f)), "fit wrote " + f)
    model = json.load(open(os.path.join(od, "model.json")))
    check(model.get("n_components") == 3 and model.get("dim") == 32, "fitted model K=3, dim=32")
    x = np.load(os.path.join(od, "embeddings.npy"))
    check(x.shape == (n_texts + len(names), 32), "embeddings: texts then images")
    close(x[n_texts:], ref, "fit's image rows")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
