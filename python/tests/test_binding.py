"""The ctypes binding: ABI guard, library memory, errors, zero copy, GIL."""

import ctypes
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import vmfmm
from conftest import BIN_DIR
from vmfmm import _lib

STRUCTS = {
    "vmf_kappa_opts": _lib.KappaOpts,
    "vmf_em_opts": _lib.EmOpts,
    "vmf_em_report": _lib.EmReport,
    "vmf_rng": _lib.Rng,
    "vmf_stepwise_opts": _lib.StepwiseOpts,
    "vmf_classifier_opts": _lib.ClassifierOpts,
    "vmf_labels": _lib.Labels,
}


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_mirrors_have_the_library_layout(name):
    cls = STRUCTS[name]
    assert ctypes.sizeof(cls) == _lib.vmf_abi_sizeof(name.encode())
    for field, ctype in cls._fields_:
        if field.startswith("_pad"):
            continue
        off, size = ctypes.c_size_t(), ctypes.c_size_t()
        assert _lib.vmf_abi_field(name.encode(), field.encode(), ctypes.byref(off),
                                  ctypes.byref(size)) == _lib.VMF_OK
        assert getattr(cls, field).offset == off.value
        assert ctypes.sizeof(ctype) == size.value


def test_abi_queries_reject_unknown_names():
    assert _lib.vmf_abi_sizeof(b"vmf_no_such_struct") == 0
    assert _lib.vmf_abi_field(b"vmf_em_opts", b"no_such_member", None, None) == _lib.VMF_ENOTFOUND
    assert _lib.vmf_abi_field(b"vmf_nothing", b"tol", None, None) == _lib.VMF_ENOTFOUND


def test_guard_refuses_a_member_the_library_lacks_or_sizes_differently():
    with pytest.raises(ImportError, match="has no member shiny_new_option"):
        _lib._mirror("vmf_em_opts", [("shiny_new_option", ctypes.c_double)])
    with pytest.raises(ImportError, match="tol is 8 bytes"):
        _lib._mirror("vmf_em_opts", [("tol", ctypes.c_float)])
    with pytest.raises(ImportError, match="does not describe"):
        _lib._mirror("vmf_gone", [("tol", ctypes.c_double)])


def test_a_known_prefix_gets_padding_and_the_library_fills_the_rest():
    # A mirror that knows only two members still has the library's size, and
    # the library's init fills every member, including those it does not name.
    Partial = _lib._mirror("vmf_em_opts", [("n_components", ctypes.c_size_t),
                                           ("seed", ctypes.c_uint64)])
    assert ctypes.sizeof(Partial) == ctypes.sizeof(_lib.EmOpts)
    full = _lib.EmOpts()
    _lib.vmf_em_opts_init(ctypes.byref(full))
    part = Partial()
    _lib.vmf_em_opts_init(ctypes.cast(ctypes.byref(part), ctypes.POINTER(_lib.EmOpts)))
    assert bytes(part) == bytes(full)
    assert (part.n_components, part.seed) == (5, 42)


def test_init_defaults_reach_python(tmp_path):
    # What the mirror reads from vmf_em_opts_init is what vmfmm fit, which
    # calls the same init, reports for a run without options.
    out = tmp_path / "fit"
    subprocess.run([os.path.join(BIN_DIR, "vmfmm"), "fit", "--n-samples", "300", "--dim", "8",
                    "--no-plots", "--quiet", "--output-dir", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    conv = json.loads((out / "convergence.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    o = _lib.EmOpts()
    _lib.vmf_em_opts_init(ctypes.byref(o))
    assert (o.max_iter, o.tol, o.n_init, o.seed) == (conv["max_iter"], conv["tol"],
                                                      conv["n_init"], conv["seed"])
    assert o.n_components == metrics["n_components"]
    names = {v: k for k, v in _lib.KAPPA_ESTIMATORS.items()}
    assert names[o.kappa.estimator] == conv["kappa_estimator"]
    assert bool(o.tied_kappa) == conv["tied_kappa"]
    # ... and the estimator's None defaults are exactly these.
    est = vmfmm.VonMisesFisherMixture(o.n_components)
    got, _ = est._options(8, 300)
    assert bytes(got)[:_lib.EmOpts.seed.offset] == bytes(o)[:_lib.EmOpts.seed.offset]
    c = _lib.ClassifierOpts()
    _lib.vmf_classifier_opts_init(ctypes.byref(c))
    assert c.k_max >= 1 and c.stepwise.minibatch >= 1 and 0.5 <= c.stepwise.alpha <= 1


def _exported(path):
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_test_hook_is_not_exported_but_the_binding_api_is():
    names = _exported(vmfmm.library_path)
    assert "vmf_debug_fail_alloc_after" not in names
    assert {"vmf_free", "vmf_abi_sizeof", "vmf_abi_field", "vmf_mixture_fit"} <= names
    assert not hasattr(_lib.lib, "vmf_debug_fail_alloc_after")
    assert all(n.startswith("vmf_") for n in names if not n.startswith("_"))


def test_library_strings_are_copied_and_freed():
    X = np.eye(3, dtype=np.float32)
    m = vmfmm.VonMisesFisherMixture(3, random_state=0, max_iter=3, tol=0).fit(X)
    texts = {m.to_json() for _ in range(200)}  # 200 vmf_free calls
    assert len(texts) == 1
    assert texts.pop().startswith('{"format":"vmfmm-model"')


def test_errors_carry_vmf_last_error():
    with pytest.raises(vmfmm.VmfFormatError) as e:
        vmfmm.VonMisesFisherMixture.from_json('{"format":"vmfmm-model","version":1}')
    assert e.value.code == _lib.VMF_EFORMAT
    assert e.value.message  # the library's detailed message
    assert e.value.message in str(e.value)
    assert isinstance(e.value, ValueError)
    # the message is vmf_last_error() of this thread at the time of the failure
    bad = np.zeros((2, 3), dtype=np.float32)
    assert _lib.vmf_rows_normalize(_lib.ptr(bad), 2, 3) == _lib.VMF_EINVAL
    assert "row 0" in _lib.last_error()
    with pytest.raises(vmfmm.VmfValueError, match="row 0"):
        _lib.check(_lib.VMF_EINVAL)


def test_c_contiguous_float32_unit_rows_are_not_copied():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 16)).astype(np.float32)
    Xn = _lib.rows(X, normalize_exact=True)  # not unit: one normalized copy
    assert Xn is not X and not np.shares_memory(Xn, X)
    assert _lib.rows(Xn, normalize_exact=False) is Xn
    # Rows within the library's tolerance of unit norm go to scoring as given.
    near = (Xn * np.float32(1.0001)).astype(np.float32)
    assert _lib.rows(near, normalize_exact=False) is near
    # A fit normalizes exactly as vmfmm fit does; when that changes no bit,
    # the array itself is used.
    again = _lib.rows(Xn, normalize_exact=True)
    if again is not Xn:
        assert not _lib._normalize_is_noop(Xn)
    else:
        assert _lib._normalize_is_noop(Xn)
    # Other dtypes and layouts are converted once, the input left alone.
    X64 = X.astype(np.float64)
    copy = X64.copy()
    out = _lib.rows(X64, normalize_exact=True)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(X64, copy)
    np.testing.assert_array_equal(out, Xn)
    F = np.asfortranarray(X)
    np.testing.assert_array_equal(_lib.rows(F, normalize_exact=True), Xn)


def test_zero_rows_warn_and_stand_for_the_first_axis():
    X = np.array([[0, 0, 0], [0, 3, 4]], dtype=np.float32)
    with pytest.warns(vmfmm.ZeroRowWarning, match="row 0"):
        out = _lib.rows(X, normalize_exact=True)
    np.testing.assert_allclose(out, [[1, 0, 0], [0, 0.6, 0.8]], rtol=1e-6)
    np.testing.assert_array_equal(X[0], [0, 0, 0])


def test_long_calls_release_the_gil():
    # While one thread is inside vmf_mixture_fit, another must run Python.
    rng = np.random.default_rng(1)
    X = _lib.rows(rng.normal(size=(20000, 64)).astype(np.float32), True)
    o = _lib.EmOpts()
    _lib.vmf_em_opts_init(ctypes.byref(o))
    o.n_components, o.max_iter, o.tol = 20, 40, 0.0
    inside = threading.Event()
    done = threading.Event()

    def work():
        out = ctypes.c_void_p()
        inside.set()
        rc = _lib.vmf_mixture_fit(ctypes.byref(o), _lib.ptr(X), X.shape[0], X.shape[1],
                                  ctypes.byref(out), None)
        done.set()
        assert rc == 0
        _lib.vmf_mixture_free(out)

    t = threading.Thread(target=work)
    t.start()
    inside.wait()
    count = 0
    while not done.is_set():
        count += 1
    t.join()
    assert count > 1000, count


def test_unloadable_library_names_what_was_tried():
    env = dict(os.environ, VMFMM_LIBRARY="/nonexistent/libvmfmm.so.0")
    r = subprocess.run([sys.executable, "-c", "import vmfmm"], env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "cannot load libvmfmm" in r.stderr and "/nonexistent/libvmfmm.so.0" in r.stderr
