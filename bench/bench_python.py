#!/usr/bin/python3
"""Overhead of the Python binding, printed as ratios measured in one run.

  fit:           VonMisesFisherMixture.fit (wall time of the Python call) on
                 100,000 x 256, K = 50, against the EM time `vmfmm fit`
                 reports (convergence.json "seconds") for the same rows, seed
                 and options. Target: <= 1.05.
  predict_proba: VonMisesFisherMixture.predict_proba of the 100,000 rows
                 against the bare C call vmf_mixture_predict_proba on the
                 same array. Target: <= 1.1.

Each side runs --repeat times (predictions at least 7), alternating, and
the fastest of each is compared (the machine may be shared). Usage, from the top directory:

  OPENBLAS_NUM_THREADS=1 PYTHONPATH=python VMFMM_LIBRARY=build/lib/libvmfmm.so \\
      /usr/bin/python3 bench/bench_python.py [--rows N] [--dim D] [-k K] [--iters I]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from vmfmm import VonMisesFisherMixture, _lib  # noqa: E402


def synthetic(n, d, k, seed):
    """n rows from a K-component vMF mixture (the library's sampler)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    model = {"format": "vmfmm-model", "version": 1, "kind": "mixture", "dim": d,
             "n_components": k, "tied_kappa": False, "weights": [1.0 / k] * k,
             "kappas": [float(v) for v in rng.uniform(200, 800, size=k)],
             "means": means.tolist()}
    gen = VonMisesFisherMixture.from_json(json.dumps(model))
    gen.set_params(random_state=seed)
    return gen.sample(n)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("-k", type=int, default=50)
    ap.add_argument("--iters", type=int, default=20, help="EM iterations (tol 0)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--vmfmm", default=os.path.join(HERE, "..", "build", "bin", "vmfmm"))
    a = ap.parse_args()

    X = synthetic(a.rows, a.dim, a.k, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, X)
        cli, py = [], []
        est = VonMisesFisherMixture(a.k, random_state=3, max_iter=a.iters, tol=0)
        for _ in range(a.repeat):
            out = os.path.join(tmp, "fit")
            subprocess.run([a.vmfmm, "fit", "--input", path, "-k", str(a.k), "--seed", "3",
                            "--max-iter", str(a.iters), "--tol", "0", "--test-split", "0",
                            "--no-plots", "--quiet", "--output-dir", out], check=True,
                           stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "convergence.json")) as f:
                cli.append(json.load(f)["seconds"])
            with open(os.path.join(out, "model.json")) as f:
                cli_model = f.read()
            t = time.perf_counter()
            est.fit(X)
            py.append(time.perf_counter() - t)
        same = est.to_json() == cli_model

    Xn = _lib.rows(X, normalize_exact=False)
    n, d = Xn.shape
    c_t, p_t = [], []
    for _ in range(max(7, a.repeat)):
        t = time.perf_counter()
        out = np.empty((n, a.k))  # a new result array, as the estimator returns
        _lib.check(_lib.vmf_mixture_predict_proba(est._model.ptr, _lib.ptr(Xn), n, d,
                                                  _lib.ptr(out)))
        c_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        proba = est.predict_proba(X)
        p_t.append(time.perf_counter() - t)
    assert np.array_equal(proba, out)

    threads = os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    print(f"vmfmm Python binding overhead: {a.rows} x {a.dim}, K = {a.k}, "
          f"OPENBLAS_NUM_THREADS={threads}, best of {a.repeat} fits and "
          f"{len(c_t)} predictions")
    print(f"fit ({a.iters} EM iterations, tol 0)")
    print(f"  vmfmm fit, EM seconds     {min(cli):9.3f} s")
    print(f"  VonMisesFisherMixture.fit {min(py):9.3f} s")
    print(f"  ratio                     {min(py) / min(cli):9.3f}   (target <= 1.05)"
          f"   same model JSON: {'yes' if same else 'NO'}")
    print(f"predict_proba ({n} rows)")
    print(f"  C vmf_mixture_predict_proba     {min(c_t):9.4f} s")
    print(f"  VonMisesFisherMixture.predict_proba {min(p_t):9.4f} s")
    print(f"  ratio                     {min(p_t) / min(c_t):9.3f}   (target <= 1.1)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
