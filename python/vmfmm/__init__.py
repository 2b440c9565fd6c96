"""vmfmm: von Mises-Fisher mixtures for embeddings on the unit sphere.

A thin binding over libvmfmm (ctypes), scikit-learn estimators, and a client
for the vmfd daemon:

    VonMisesFisherMixture      clustering / density (batch EM)
    VonMisesFisherClassifier   class-conditional classifier (online, partial_fit)
    Client                     vmfd's HTTP API (standard library only)
    embed_text, embed_images   CLIP embeddings (libvmfmm_clip; vmfmm.clip)

See docs/python.md.
"""

from ._lib import (VmfError, VmfFormatError, VmfIOError, VmfMemoryError, VmfNotFoundError,
                   VmfValueError, ZeroRowWarning, library_path,
                   version as library_version)
from .classifier import VonMisesFisherClassifier
from .clip import ClipModel, embed_images, embed_text
from .client import Client, VmfdError
from .mixture import VonMisesFisherMixture

__version__ = library_version()

__all__ = [
    "VonMisesFisherMixture", "VonMisesFisherClassifier", "Client", "VmfdError", "VmfError",
    "VmfValueError", "VmfFormatError", "VmfMemoryError", "VmfIOError", "VmfNotFoundError",
    "ZeroRowWarning", "library_path", "library_version", "ClipModel", "embed_text",
    "embed_images",
]
