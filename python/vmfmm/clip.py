"""CLIP embeddings of texts and images through libvmfmm_clip.

A thin binding over ``vmfmm/clip.h`` (see docs/clip.md): the C library loads
a Hugging Face CLIP checkpoint directory and computes L2-normalised
embeddings; this module only converts arguments and raises its errors.

    model = vmfmm.clip.ClipModel("/path/to/clip-vit-base-patch32")
    X = model.embed_text(["a photo of a cat", "a dog"])      # (2, dim) float32
    Y = model.embed_images(["cat.jpg", "dog.png"])           # (2, dim) float32

or the one-shot helpers ``vmfmm.embed_text(dir, texts)`` and
``vmfmm.embed_images(dir, paths)``.

The library is found like libvmfmm (docs/python.md): ``$VMFMM_CLIP_LIBRARY``,
then ``libvmfmm_clip.so*`` beside the loaded libvmfmm, then the dynamic
loader's search. It is loaded on first use, so the rest of the package works
where the CLIP library is not installed.
"""

import ctypes
import glob
import os

import numpy as np

from . import _lib

_clip = None


def _load():
    global _clip
    if _clip is not None:
        return _clip
    tried = []
    env = os.environ.get("VMFMM_CLIP_LIBRARY")
    if env:
        paths = [env]
    else:
        here = os.path.dirname(os.path.abspath(_lib.library_path)) \
            if os.path.sep in _lib.library_path else None
        paths = sorted(glob.glob(os.path.join(here, "libvmfmm_clip.so*"))) if here else []
        paths.append(f"libvmfmm_clip.so.{_lib.SOVERSION}")
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append(f"{path}: {e}")
    else:
        raise ImportError("vmfmm.clip: cannot load libvmfmm_clip (tried " + "; ".join(tried) +
                          "); set VMFMM_CLIP_LIBRARY to its path")

    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)
        return f

    vp = ctypes.c_void_p
    ns = {
        "load": fn("vmf_clip_load", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(vp)),
        "free": fn("vmf_clip_free", None, vp),
        "dim": fn("vmf_clip_dim", ctypes.c_size_t, vp),
        "context": fn("vmf_clip_context_length", ctypes.c_size_t, vp),
        "image_size": fn("vmf_clip_image_size", ctypes.c_size_t, vp),
        "embed_texts": fn("vmf_clip_embed_texts", ctypes.c_int, vp,
                          ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t, ctypes.c_int,
                          _lib.c_float_p),
        "embed_images": fn("vmf_clip_embed_images", ctypes.c_int, vp,
                           ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t, _lib.c_float_p),
        "last_error": fn("vmf_clip_last_error", ctypes.c_char_p),
        "path": path,
    }
    _clip = ns
    return ns


def _check(ns, rc, what):
    if rc != _lib.VMF_OK:
        message = ns["last_error"]().decode("utf-8", "replace")
        raise _lib._ERRORS.get(rc, _lib.VmfError)(rc, message, what)


def _c_strings(items, what):
    if isinstance(items, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a sequence of strings, not a single string")
    enc = [os.fsencode(s) if isinstance(s, os.PathLike) else
           (s if isinstance(s, bytes) else str(s).encode("utf-8")) for s in items]
    return enc, (ctypes.c_char_p * len(enc))(*enc)


class ClipModel:
    """A loaded CLIP checkpoint (immutable; safe to share between threads).

    Parameters
    ----------
    path : str or os.PathLike
        A Hugging Face CLIP directory: config.json, model.safetensors,
        vocab.json, merges.txt.
    batch_size : int, default=32
        Inputs per C call; bounds the work memory of one call.
    """

    def __init__(self, path, batch_size=32):
        ns = _load()
        self._ns = ns
        self._h = ctypes.c_void_p()
        _check(ns, ns["load"](os.fsencode(path), ctypes.byref(self._h)), os.fspath(path))
        self.path = os.fspath(path)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.dim = int(ns["dim"](self._h))
        self.context_length = int(ns["context"](self._h))
        self.image_size = int(ns["image_size"](self._h))

    def close(self):
        """Frees the weights now (also done when the object is collected)."""
        if getattr(self, "_h", None) and self._h.value:
            self._ns["free"](self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self, items, what, call):
        if not self._h.value:
            raise ValueError("ClipModel is closed")
        enc, _ = _c_strings(items, what)
        out = np.empty((len(enc), self.dim), dtype=np.float32)
        for lo in range(0, len(enc), self.batch_size):
            part = enc[lo:lo + self.batch_size]
            arr = (ctypes.c_char_p * len(part))(*part)
            dst = out[lo:lo + len(part)].ctypes.data_as(_lib.c_float_p)
            rc = call(arr, len(part), dst)
            if rc != _lib.VMF_OK:
                _check(self._ns, rc, f"{what} {lo}..{lo + len(part) - 1}")
        return out

    def embed_text(self, texts, truncate=False):
        """Embeddings of UTF-8 texts, float32 array of shape (n, dim), unit rows.

        A text longer than the context raises ``VmfValueError`` unless
        ``truncate`` (which keeps the end token); an empty text raises too.
        """
        t = 1 if truncate else 0
        return self._run(texts, "texts",
                         lambda a, n, dst: self._ns["embed_texts"](self._h, a, n, t, dst))

    def embed_images(self, paths):
        """Embeddings of JPEG or PNG files, float32 array of shape (n, dim), unit rows.

        The first unreadable or corrupt file raises ``VmfIOError`` or
        ``VmfFormatError`` naming it.
        """
        return self._run(paths, "images",
                         lambda a, n, dst: self._ns["embed_images"](self._h, a, n, dst))


def embed_text(model_dir, texts, truncate=False, batch_size=32):
    """One-shot: load ``model_dir`` and embed ``texts`` (see ClipModel.embed_text)."""
    with ClipModel(model_dir, batch_size=batch_size) as m:
        return m.embed_text(texts, truncate=truncate)


def embed_images(model_dir, paths, batch_size=32):
    """One-shot: load ``model_dir`` and embed image files (see ClipModel.embed_images)."""
    with ClipModel(model_dir, batch_size=batch_size) as m:
        return m.embed_images(paths)
