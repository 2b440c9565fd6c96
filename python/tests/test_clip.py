"""vmfmm.clip: embed_text / embed_images over libvmfmm_clip.

Runs on the tiny random CLIP that tests/clip/make_tiny_clip.py writes (ctest
fixture clip_model, directory $VMF_CLIP_FIXTURE) and checks the embeddings
against its independent PyTorch references, and the errors.
"""
import os

import numpy as np
import pytest

import vmfmm
from vmfmm import clip

FX = os.environ.get("VMF_CLIP_FIXTURE")
pytestmark = pytest.mark.skipif(not FX, reason="VMF_CLIP_FIXTURE not set (run under ctest)")


def _close(got, ref):
    assert got.dtype == np.float32 and got.shape == ref.shape
    cos = np.sum(got * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.99999
    assert np.abs(got - ref).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def _texts():
    with open(os.path.join(FX, "texts.txt"), encoding="utf-8") as f:
        return f.read().splitlines()


def _images():
    with open(os.path.join(FX, "image_names.txt"), encoding="utf-8") as f:
        return [os.path.join(FX, "images", n) for n in f.read().splitlines()]


def test_texts_match_reference_in_any_batch_size():
    ref = np.load(os.path.join(FX, "text_ref.npy"))
    model = os.path.join(FX, "model")
    _close(vmfmm.embed_text(model, _texts()), ref)
    _close(clip.ClipModel(model, batch_size=5).embed_text(_texts()), ref)


def test_images_match_reference():
    ref = np.load(os.path.join(FX, "image_ref.npy"))
    with clip.ClipModel(os.path.join(FX, "model"), batch_size=7) as m:
        assert m.dim == ref.shape[1]
        _close(m.embed_images(_images()), ref)


def test_errors_name_the_problem(tmp_path):
    model = os.path.join(FX, "model")
    with pytest.raises(vmfmm.VmfIOError):
        clip.ClipModel(tmp_path / "missing")
    m = clip.ClipModel(model)
    with pytest.raises(vmfmm.VmfValueError):
        m.embed_text(["a photo", ""])
    long_text = " ".join(["word"] * (4 * m.context_length))
    with pytest.raises(vmfmm.VmfValueError):
        m.embed_text([long_text])
    assert m.embed_text([long_text], truncate=True).shape == (1, m.dim)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(vmfmm.VmfFormatError, match="bad.png"):
        m.embed_images([str(bad)])
    with pytest.raises(TypeError):
        m.embed_text("one string, not a list")
    m.close()
    with pytest.raises(ValueError):
        m.embed_text(["closed"])
