"""Loading libvmfmm through ctypes, checking its ABI, and raising its errors.

Why ctypes rather than CFFI: ctypes is part of the standard library, so the
package needs nothing beyond numpy and scikit-learn at run time and no
compiler at install time; a call through a ``ctypes.CDLL`` function releases
the GIL for its whole duration, so fits and predictions in several threads
overlap; and every call we make is a handful of pointers and sizes into a
long C computation, where the per-call cost difference with CFFI's ABI mode
(microseconds) does not show.

ABI guard: the option and report structs (``vmf_em_opts``,
``vmf_kappa_opts``, ``vmf_em_report``, ``vmf_stepwise_opts``, ``vmf_classifier_opts``,
``vmf_labels``) are not written down here by hand. For each, the library
reports its size (``vmf_abi_sizeof``) and the offset and size of each member
we use (``vmf_abi_field``); the ctypes Structure is built from those numbers
at import time, with explicit padding where the library has members we do
not know, and its total size is the library's. Instances are filled by the
library's own ``*_opts_init`` first, so members appended in later versions
keep their defaults. A member we need that the library lacks, or whose size
differs from our type, raises ``ImportError`` naming it.

Locating the library, first match wins:
  1. ``$VMFMM_LIBRARY`` (a path), for build trees and tests;
  2. ``libvmfmm.so*`` next to this package;
  3. the path recorded at install time in ``_install.py`` (``cmake
     --install`` writes it): first relative to this package, so a staged
     (DESTDIR) or moved installation still works, then absolute;
  4. ``libvmfmm.so.<major>`` through the dynamic loader's usual search.
No ``LD_LIBRARY_PATH`` is needed in any of these cases.
"""

import ctypes
import glob
import os
import warnings

import numpy as np

SOVERSION = 0

VMF_OK = 0
VMF_EINVAL = -1
VMF_ENOMEM = -2
VMF_EIO = -3
VMF_EFORMAT = -4
VMF_ERANGE = -5
VMF_ENOTFOUND = -6


class VmfError(Exception):
    """An error reported by libvmfmm.

    Attributes
    ----------
    code : int
        The negative ``VMF_E*`` code.
    message : str
        ``vmf_last_error()`` of the failing call (the detailed message).
    """

    def __init__(self, code, message, what=None):
        self.code = code
        self.message = message
        text = message or _strerror(code)
        super().__init__(f"{what}: {text}" if what else text)


class VmfValueError(VmfError, ValueError):
    """Bad argument or data (``VMF_EINVAL``, ``VMF_ERANGE``)."""


class VmfFormatError(VmfError, ValueError):
    """Malformed serialized state or file (``VMF_EFORMAT``)."""


class VmfMemoryError(VmfError, MemoryError):
    """Allocation failed or a size would overflow (``VMF_ENOMEM``)."""


class VmfIOError(VmfError, OSError):
    """The operating system refused a read or write (``VMF_EIO``)."""


class VmfNotFoundError(VmfError, KeyError):
    """A named entry does not exist (``VMF_ENOTFOUND``)."""

    def __str__(self):  # KeyError would quote the message
        return Exception.__str__(self)


_ERRORS = {
    VMF_EINVAL: VmfValueError,
    VMF_ERANGE: VmfValueError,
    VMF_EFORMAT: VmfFormatError,
    VMF_ENOMEM: VmfMemoryError,
    VMF_EIO: VmfIOError,
    VMF_ENOTFOUND: VmfNotFoundError,
}


def _candidates():
    env = os.environ.get("VMFMM_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "libvmfmm.so*"))):
        yield path
    try:
        from . import _install  # written by cmake --install
    except ImportError:
        _install = None
    if _install is not None:
        rel = getattr(_install, "LIBRARY_RELATIVE", None)
        if rel:
            yield os.path.normpath(os.path.join(here, rel))
        if getattr(_install, "LIBRARY", None):
            yield _install.LIBRARY
    yield f"libvmfmm.so.{SOVERSION}"


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError("vmfmm: cannot load libvmfmm (tried " + "; ".join(errors) +
                      "); set VMFMM_LIBRARY to its path")


lib, library_path = _load()

c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_double_p = ctypes.POINTER(ctypes.c_double)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_void_pp = ctypes.POINTER(ctypes.c_void_p)
c_char_pp = ctypes.POINTER(ctypes.c_char_p)


def _fn(name, restype, *argtypes):
    try:
        f = getattr(lib, name)
    except AttributeError:
        raise ImportError(f"vmfmm: {library_path} lacks {name}; the library is too old "
                          "for this package") from None
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


vmf_version = _fn("vmf_version", ctypes.c_char_p)
vmf_strerror = _fn("vmf_strerror", ctypes.c_char_p, ctypes.c_int)
vmf_last_error = _fn("vmf_last_error", ctypes.c_char_p)
vmf_free = _fn("vmf_free", None, ctypes.c_void_p)
vmf_abi_sizeof = _fn("vmf_abi_sizeof", ctypes.c_size_t, ctypes.c_char_p)
vmf_abi_field = _fn("vmf_abi_field", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, c_size_p,
                    c_size_p)


def _strerror(code):
    return vmf_strerror(code).decode("utf-8", "replace")


def last_error():
    """The calling thread's last libvmfmm error message (``vmf_last_error``)."""
    return vmf_last_error().decode("utf-8", "replace")


def check(rc, what=None):
    """Raise the exception matching a libvmfmm return code, if it is not VMF_OK."""
    if rc != VMF_OK:
        raise _ERRORS.get(rc, VmfError)(rc, last_error(), what)


def version():
    """The version of the loaded libvmfmm, e.g. ``"0.2.0"``."""
    return vmf_version().decode()


# --------------------------------------------------------------- ABI guard

def _mirror(type_name, members):
    """A ctypes Structure laid out as the library reports ``type_name``.

    members: (name, ctype) pairs; every one must exist in the library with
    the size of its ctype. Gaps become private padding; the total size is
    the library's, so the library's init function may fill members we do not
    know.
    """
    total = vmf_abi_sizeof(type_name.encode())
    if total == 0:
        raise ImportError(f"vmfmm: {library_path} does not describe {type_name}")
    placed = []
    for name, ctype in members:
        off, size = ctypes.c_size_t(), ctypes.c_size_t()
        rc = vmf_abi_field(type_name.encode(), name.encode(), ctypes.byref(off),
                           ctypes.byref(size))
        if rc != VMF_OK:
            raise ImportError(f"vmfmm: {library_path}: {type_name} has no member {name}")
        if size.value != ctypes.sizeof(ctype):
            raise ImportError(f"vmfmm: {library_path}: {type_name}.{name} is {size.value} "
                              f"bytes, this package expects {ctypes.sizeof(ctype)}")
        placed.append((off.value, name, ctype))
    placed.sort()
    fields, pos = [], 0
    for off, name, ctype in placed:
        if off < pos:
            raise ImportError(f"vmfmm: {library_path}: {type_name}.{name} overlaps")
        if off > pos:
            fields.append((f"_pad{pos}", ctypes.c_uint8 * (off - pos)))
        fields.append((name, ctype))
        pos = off + ctypes.sizeof(ctype)
    if total > pos:
        fields.append((f"_pad{pos}", ctypes.c_uint8 * (total - pos)))
    cls = type(type_name, (ctypes.Structure,), {"_fields_": fields})
    for off, name, _ in placed:
        if getattr(cls, name).offset != off:
            raise ImportError(f"vmfmm: cannot mirror {type_name}.{name} at offset {off}")
    if ctypes.sizeof(cls) != total:
        raise ImportError(f"vmfmm: {type_name} mirror is {ctypes.sizeof(cls)} bytes, "
                          f"the library's is {total}")
    return cls


_enum = ctypes.c_int

KappaOpts = _mirror("vmf_kappa_opts", [
    ("estimator", _enum), ("prior_count", ctypes.c_double), ("prior_rbar", ctypes.c_double),
    ("kappa_min", ctypes.c_double), ("kappa_max", ctypes.c_double)])

EmOpts = _mirror("vmf_em_opts", [
    ("n_components", ctypes.c_size_t), ("max_iter", ctypes.c_size_t), ("tol", ctypes.c_double),
    ("n_init", ctypes.c_size_t), ("assignment", _enum), ("init", _enum),
    ("init_means", c_float_p), ("tied_kappa", ctypes.c_int), ("kappa", KappaOpts),
    ("min_mass", ctypes.c_double), ("seed", ctypes.c_uint64), ("block_rows", ctypes.c_size_t)])

EmReport = _mirror("vmf_em_report", [
    ("n_iter", ctypes.c_size_t), ("converged", ctypes.c_int), ("loglik", ctypes.c_double),
    ("trace", c_double_p), ("n_reseeded", ctypes.c_size_t), ("best_init", ctypes.c_size_t),
    ("seconds", ctypes.c_double)])

Rng = _mirror("vmf_rng", [
    ("s", ctypes.c_uint64 * 4), ("spare_normal", ctypes.c_double), ("has_spare", ctypes.c_int)])

StepwiseOpts = _mirror("vmf_stepwise_opts", [
    ("n_components", ctypes.c_size_t), ("alpha", ctypes.c_double), ("t0", ctypes.c_double),
    ("eta_floor", ctypes.c_double), ("minibatch", ctypes.c_size_t), ("tied_kappa", ctypes.c_int),
    ("kappa", KappaOpts), ("seed", ctypes.c_uint64)])

ClassifierOpts = _mirror("vmf_classifier_opts", [
    ("k_max", ctypes.c_size_t), ("stepwise", StepwiseOpts),
    ("rows_per_component", ctypes.c_size_t), ("pooled_kappa", ctypes.c_int),
    ("count_priors", ctypes.c_int), ("kappa_scale", ctypes.c_double),
    ("refine_rows", ctypes.c_size_t), ("refine_lambda", ctypes.c_double),
    ("refine_budget", ctypes.c_size_t), ("refine_rate", ctypes.c_double)])

Labels = _mirror("vmf_labels", [
    ("n", ctypes.c_size_t), ("ints", c_int64_p), ("strs", c_char_pp)])

# Nested structs (vmf_kappa_opts, vmf_stepwise_opts) must sit where the library
# puts them: a member reached through them has the library's offset.
for _outer, _path, _at in (
        ("vmf_em_opts", "kappa.estimator", EmOpts.kappa.offset + KappaOpts.estimator.offset),
        ("vmf_stepwise_opts", "kappa.estimator",
         StepwiseOpts.kappa.offset + KappaOpts.estimator.offset),
        ("vmf_classifier_opts", "stepwise.kappa.estimator",
         ClassifierOpts.stepwise.offset + StepwiseOpts.kappa.offset + KappaOpts.estimator.offset),
        ("vmf_classifier_opts", "stepwise.seed",
         ClassifierOpts.stepwise.offset + StepwiseOpts.seed.offset)):
    _o, _s = ctypes.c_size_t(), ctypes.c_size_t()
    check(vmf_abi_field(_outer.encode(), _path.encode(), ctypes.byref(_o), ctypes.byref(_s)))
    if _o.value != _at:
        raise ImportError(f"vmfmm: {_outer}.{_path} layout differs from the library's")

KAPPA_ESTIMATORS = {"banerjee": 0, "sra": 1, "song": 2, "exact": 3}
ASSIGNMENTS = {"soft": 0, "hard": 1, "stochastic": 2}
INIT_KMEANSPP, INIT_RANDOM, INIT_GIVEN = 0, 1, 2

# ------------------------------------------------------------- functions

_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_int = ctypes.c_int

vmf_rows_check = _fn("vmf_rows_check", _int, _vp, _sz, _sz)
vmf_rows_normalize = _fn("vmf_rows_normalize", _int, _vp, _sz, _sz)
vmf_rows_normalized = _fn("vmf_rows_normalized", _int, _vp, _sz, _sz)
vmf_kappa_opts_init = _fn("vmf_kappa_opts_init", None, ctypes.POINTER(KappaOpts))
vmf_em_opts_init = _fn("vmf_em_opts_init", None, ctypes.POINTER(EmOpts))
vmf_em_report_free = _fn("vmf_em_report_free", None, ctypes.POINTER(EmReport))
vmf_rng_seed = _fn("vmf_rng_seed", None, ctypes.POINTER(Rng), ctypes.c_uint64)

vmf_mixture_fit = _fn("vmf_mixture_fit", _int, ctypes.POINTER(EmOpts), _vp, _sz, _sz, c_void_pp,
                      ctypes.POINTER(EmReport))
vmf_mixture_free = _fn("vmf_mixture_free", None, _vp)
vmf_mixture_n_components = _fn("vmf_mixture_n_components", _sz, _vp)
vmf_mixture_dim = _fn("vmf_mixture_dim", _sz, _vp)
vmf_mixture_weights = _fn("vmf_mixture_weights", c_double_p, _vp)
vmf_mixture_means = _fn("vmf_mixture_means", c_float_p, _vp)
vmf_mixture_kappas = _fn("vmf_mixture_kappas", c_double_p, _vp)
vmf_mixture_tied_kappa = _fn("vmf_mixture_tied_kappa", _int, _vp)
vmf_mixture_n_params = _fn("vmf_mixture_n_params", _sz, _vp)
vmf_mixture_score_samples = _fn("vmf_mixture_score_samples", _int, _vp, _vp, _sz, _sz, _vp)
vmf_mixture_predict = _fn("vmf_mixture_predict", _int, _vp, _vp, _sz, _sz, _vp)
vmf_mixture_predict_proba = _fn("vmf_mixture_predict_proba", _int, _vp, _vp, _sz, _sz, _vp)
vmf_mixture_information_criteria = _fn("vmf_mixture_information_criteria", _int, _vp, _vp, _sz,
                                       _sz, c_double_p, c_double_p)
vmf_mixture_sample = _fn("vmf_mixture_sample", _int, _vp, _sz, ctypes.POINTER(Rng), _vp, _vp)
vmf_mixture_to_json = _fn("vmf_mixture_to_json", _int, _vp, c_void_pp)
vmf_mixture_from_json = _fn("vmf_mixture_from_json", _int, ctypes.c_char_p, _sz, c_void_pp)

vmf_classifier_opts_init = _fn("vmf_classifier_opts_init", None, ctypes.POINTER(ClassifierOpts))
vmf_classifier_new = _fn("vmf_classifier_new", _int, ctypes.POINTER(ClassifierOpts), _sz,
                         c_void_pp)
vmf_classifier_free = _fn("vmf_classifier_free", None, _vp)
vmf_classifier_partial_fit = _fn("vmf_classifier_partial_fit", _int, _vp, _vp, _sz, _sz,
                                 ctypes.POINTER(Labels))
vmf_classifier_fit = _fn("vmf_classifier_fit", _int, ctypes.POINTER(ClassifierOpts), _vp, _sz,
                         _sz, ctypes.POINTER(Labels), c_void_pp)
vmf_classifier_predict_topk = _fn("vmf_classifier_predict_topk", _int, _vp, _vp, _sz, _sz, _sz,
                                  _vp, _vp)
vmf_classifier_predict_log_proba = _fn("vmf_classifier_predict_log_proba", _int, _vp, _vp, _sz,
                                       _sz, _vp)
vmf_classifier_dim = _fn("vmf_classifier_dim", _sz, _vp)
vmf_classifier_n_classes = _fn("vmf_classifier_n_classes", _sz, _vp)
vmf_classifier_labels = _fn("vmf_classifier_labels", _vp, _vp)
vmf_classifier_rows_seen = _fn("vmf_classifier_rows_seen", ctypes.c_uint64, _vp)
vmf_classifier_kappa = _fn("vmf_classifier_kappa", ctypes.c_double, _vp)
vmf_classifier_kappa_scale = _fn("vmf_classifier_kappa_scale", ctypes.c_double, _vp)
vmf_classifier_save = _fn("vmf_classifier_save", _int, _vp, c_void_pp, c_size_p)
vmf_classifier_load = _fn("vmf_classifier_load", _int, ctypes.c_char_p, _sz, c_void_pp)
vmf_classifier_to_json = _fn("vmf_classifier_to_json", _int, _vp, c_void_pp)
vmf_classifier_from_json = _fn("vmf_classifier_from_json", _int, ctypes.c_char_p, _sz, c_void_pp)

vmf_label_table_size = _fn("vmf_label_table_size", _sz, _vp)
vmf_label_table_is_str = _fn("vmf_label_table_is_str", _int, _vp)
vmf_label_table_int = _fn("vmf_label_table_int", ctypes.c_int64, _vp, _sz)
vmf_label_table_str = _fn("vmf_label_table_str", ctypes.c_char_p, _vp, _sz)

# The novelty score (issue 12) is optional: bound when the library has it.
vmf_classifier_novelty = getattr(lib, "vmf_classifier_novelty", None)


# ------------------------------------------------------------------ helpers

def ptr(a):
    """The address of a numpy array's data (borrowed for one call)."""
    return ctypes.c_void_p(a.ctypes.data)


# The atomic writer every output of the project goes through (vmfmm/io.h).
vmf_file_write_atomic = _fn("vmf_file_write_atomic", _int, ctypes.c_char_p, ctypes.c_char_p,
                            _sz)


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file beside it,
    fsynced and renamed over it (``vmf_file_write_atomic``). Raises VmfIOError,
    an OSError, naming the path when the system refuses."""
    data = text.encode("utf-8")
    check(vmf_file_write_atomic(os.fsencode(os.fspath(path)), data, len(data)),
          "vmf_file_write_atomic")


def take_string(p):
    """Copy a library-allocated NUL-terminated string, then vmf_free it."""
    try:
        return ctypes.string_at(p.value).decode("utf-8")
    finally:
        vmf_free(p)


def take_bytes(p, n):
    """Copy n library-allocated bytes, then vmf_free them."""
    try:
        return ctypes.string_at(p.value, n)
    finally:
        vmf_free(p)


def rows(X, normalize_exact):
    """X (2-D float array, finite) as a C-contiguous float32 matrix of unit rows.

    A C-contiguous float32 array is passed on without a copy when no row needs
    a change: with ``normalize_exact`` (fits), when ``vmf_rows_normalize``
    would leave every bit as it is, so a fit sees exactly the rows that
    ``vmfmm fit``, vmfd and vmfsim see; without it (scoring), when every row
    norm is within the library's tolerance (1e-3) of 1. Otherwise the rows are
    converted once and normalized in place on that copy by
    ``vmf_rows_normalize``. A zero row has no direction: it is replaced by
    the first basis vector (1, 0, ..., 0) with a ``ZeroRowWarning``
    (scikit-learn's conventions want integer data such as ``[[0, 0, 0]]``
    accepted; vmfd answers 422 zero_vector instead).
    """
    src = X
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    owned = X is not src and not np.may_share_memory(X, src)
    if not owned:
        if normalize_exact:
            if _normalize_is_noop(X):
                return X
        elif n == 0 or vmf_rows_check(ptr(X), n, d) == VMF_OK:
            return X
        X = X.copy()
    _normalize_in_place(X)
    return X


def _normalize_in_place(X):
    n, d = X.shape
    if vmf_rows_normalize(ptr(X), n, d) != VMF_OK:
        msg = last_error()
        zero = ~np.any(X, axis=1)
        if not zero.any() or not np.all(np.isfinite(X)):
            raise VmfValueError(VMF_EINVAL, msg, "normalizing the rows")
        warnings.warn(f"{int(zero.sum())} zero row(s) (first: row {int(np.argmax(zero))}) "
                      "have no direction; each is taken as the first basis vector",
                      ZeroRowWarning, stacklevel=3)
        X[zero, 0] = 1.0
        check(vmf_rows_normalize(ptr(X), n, d), "normalizing the rows")


class ZeroRowWarning(UserWarning):
    """A zero row was given: it has no direction and stands for e_0."""


def score_rows(X, call, what):
    """Run ``call(A)`` (returning a libvmfmm code) on the rows of X for scoring.

    X (2-D float array, finite) goes to the library as it is when it is
    C-contiguous float32 (no copy, no extra pass: the library checks the
    norms itself); when the library refuses it (VMF_EINVAL: rows off unit
    norm), the rows are normalized on a copy as ``rows`` does and the call
    is made again. Returns the array used.
    """
    A = np.ascontiguousarray(X, dtype=np.float32)
    if A.shape[0] == 0:
        return A
    owned = A is not X and not np.may_share_memory(A, X)
    rc = call(A)
    if rc == VMF_EINVAL:
        msg = last_error()
        if vmf_rows_check(ptr(A), A.shape[0], A.shape[1]) == VMF_OK:
            raise VmfValueError(rc, msg, what)  # the rows were fine: another error
        if not owned:
            A = A.copy()
        _normalize_in_place(A)
        rc = call(A)
    check(rc, what)
    return A


def _normalize_is_noop(X):
    return vmf_rows_normalized(ptr(X), X.shape[0], X.shape[1]) == 1


class Handle:
    """Owns one C object and frees it with the given destructor."""

    __slots__ = ("ptr", "_free")

    def __init__(self, p, free):
        self.ptr = ctypes.c_void_p(p.value if isinstance(p, ctypes.c_void_p) else p)
        self._free = free

    def __del__(self):
        if self.ptr and self.ptr.value:
            self._free(self.ptr)
            self.ptr = None
