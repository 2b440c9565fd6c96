#!/usr/bin/python3
"""Write a stream's rows in a higher dimension, PREFIX.{X,y,split,day}.npy.

The rows are zero-padded to ``--dim`` and turned by a seeded random
rotation, so the classification problem is the same (distances, angles and
any rotation-invariant model's answer do not change) while every row costs
what a row of that dimension costs: a setting that scales with d (the
head's sample and budget) can be measured on real embeddings at d = 512
with fmnist-cce64's rows.

  /usr/bin/python3 bench/rotate_stream.py tests/data/fmnist-cce64 /tmp/fm512 [--dim 512]

then, e.g.

  OPENBLAS_NUM_THREADS=1 PYTHONPATH=python VMFMM_LIBRARY=build/lib/libvmfmm.so \\
      /usr/bin/python3 bench/cv_stream.py /tmp/fm512

docs/classifier.md ("Refinement") has what it measured.
"""

import argparse
import shutil

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="PREFIX of the stream to read")
    ap.add_argument("prefix", help="PREFIX of the stream to write")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    X = np.load(a.source + ".X.npy").astype(np.float64)
    if a.dim < X.shape[1]:
        ap.error(f"--dim must be at least the stream's dimension ({X.shape[1]})")
    q, _ = np.linalg.qr(np.random.default_rng(a.seed).standard_normal((a.dim, a.dim)))
    wide = np.zeros((X.shape[0], a.dim))
    wide[:, :X.shape[1]] = X
    wide = wide @ q.T
    wide /= np.linalg.norm(wide, axis=1, keepdims=True)
    np.save(a.prefix + ".X.npy", wide.astype(np.float32))
    for part in ("y", "split", "day"):
        shutil.copyfile(f"{a.source}.{part}.npy", f"{a.prefix}.{part}.npy")
    print(f"{a.prefix}: {X.shape[0]} rows, d = {X.shape[1]} -> {a.dim}")


if __name__ == "__main__":
    main()
