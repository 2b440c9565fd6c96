#!/usr/bin/python3
"""Write a synthetic many-class stream in vmfsim's format, PREFIX.{X,y,split,day}.npy.

fmnist-cce64 has ten classes, so a setting whose meaning depends on the class
count (the head's penalty did until state format 6) looks right there and
wrong elsewhere. This stream has many: each class is a unit mean direction,
pulled towards one shared direction so that classes overlap as an encoder's
do, with rows spread in its tangent space isotropically (``--spread``) and
along four class-specific directions with 3, 2.5, 2 and 1.5 times more spread
(anisotropic, elongated classes). The stream is long-tailed (class r of the
seeded ranking keeps max(8, round(H r^-0.9)) rows, H = --head-rows, days uniform on 1..200,
every 7th class from day 31 on); the test split holds 100 rows per class.

  /usr/bin/python3 bench/many_class_stream.py /tmp/many100 [--classes 100]
      [--dim 64] [--spread 0.6] [--head-rows 800] [--seed 1]

then, e.g.

  OPENBLAS_NUM_THREADS=1 PYTHONPATH=python VMFMM_LIBRARY=build/lib/libvmfmm.so \\
      /usr/bin/python3 bench/cv_stream.py /tmp/many100 --days 20,50,100,200
  build/bin/vmfsim run --stream /tmp/many100 --models vmfmm,logreg

docs/classifier.md ("Refinement") has what it measured.
"""

import argparse

import numpy as np

ELONGATION = np.array([3.0, 2.5, 2.0, 1.5])


def unit_rows(a):
    """Rows of a scaled to unit norm."""
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix", help="output PREFIX of PREFIX.{X,y,split,day}.npy")
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--spread", type=float, default=0.6,
                    help="tangent spread of a class (default 0.6)")
    ap.add_argument("--head-rows", type=int, default=800,
                    help="stream rows of the largest class (default 800)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.classes < 2 or a.dim < 8 or not a.spread > 0 or a.head_rows < 8:
        ap.error("need --classes >= 2, --dim >= 8, --spread > 0 and --head-rows >= 8")
    rng = np.random.default_rng(a.seed)
    C, d, k = a.classes, a.dim, len(ELONGATION)
    shared = unit_rows(rng.standard_normal((1, d)))[0]
    mu = unit_rows(unit_rows(rng.standard_normal((C, d))) + shared)
    axes = []
    for c in range(C):
        tangent = np.eye(d) - np.outer(mu[c], mu[c])
        axes.append(np.linalg.qr(tangent @ rng.standard_normal((d, k)))[0])

    def sample(c, n):
        z = rng.standard_normal((n, d)) * a.spread / np.sqrt(d)
        z += (rng.standard_normal((n, k)) * ELONGATION * a.spread / np.sqrt(k)) @ axes[c].T
        z -= np.outer(z @ mu[c], mu[c])
        return unit_rows(mu[c] + z)

    counts = np.maximum(8, np.round(a.head_rows * np.arange(1, C + 1) ** -0.9)).astype(int)
    X, y, split, day = [], [], [], []
    for rank, c in enumerate(rng.permutation(C)):
        n = counts[rank]
        X.append(sample(c, n))
        y.append(np.full(n, c))
        split.append(np.zeros(n, int))
        day.append(rng.integers(31 if rank % 7 == 0 else 1, 201, n))
    for c in range(C):
        X.append(sample(c, 100))
        y.append(np.full(100, c))
        split.append(np.ones(100, int))
        day.append(np.full(100, -1))
    X, y, split, day = (np.concatenate(v) for v in (X, y, split, day))
    # Stream rows by day (random order within a day), then the test rows.
    order = np.lexsort((rng.random(len(y)), np.where(split == 0, day, 10**4)))
    np.save(a.prefix + ".X.npy", X[order].astype(np.float32))
    np.save(a.prefix + ".y.npy", y[order].astype(np.int32))
    np.save(a.prefix + ".split.npy", split[order].astype(np.uint8))
    np.save(a.prefix + ".day.npy", day[order].astype(np.int16))
    print(f"{a.prefix}: {C} classes, d = {d}, {int((split == 0).sum())} stream rows, "
          f"{int((split == 1).sum())} test rows")


if __name__ == "__main__":
    main()
