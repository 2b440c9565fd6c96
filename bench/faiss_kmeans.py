#!/usr/bin/python3
"""FAISS spherical k-means on an .npy file, for vmf_bench_fit.

Usage: faiss_kmeans.py X.npy K ITERS THREADS SEED

Runs faiss.Kmeans(spherical=True) with subsampling disabled
(max_points_per_centroid large enough for every row) for exactly ITERS
iterations on THREADS OpenMP threads and prints one line:
"seconds <train wall time> per_iter <seconds per iteration> obj <objective>".
"""
import sys
import time

import faiss
import numpy as np


def main():
    path, k, iters, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    x = np.load(path).astype(np.float32, copy=False)
    faiss.omp_set_num_threads(threads)
    n, d = x.shape
    km = faiss.Kmeans(d, k, niter=iters, spherical=True, seed=seed,
                      max_points_per_centroid=n + 1, verbose=False)
    t0 = time.perf_counter()
    km.train(x)
    sec = time.perf_counter() - t0
    obj = km.obj[-1] if len(km.obj) else float("nan")
    print("seconds %.6f per_iter %.6f obj %.6g" % (sec, sec / iters, obj))


if __name__ == "__main__":
    main()
