#!/usr/bin/python3
"""Cross-validation of the vMF classifier on a stream's training split only.

How the classifier's settings are chosen (docs/classifier.md): the rows of
split 0 of a stream PREFIX.{X,y,split,day}.npy are cut into 5 stratified
folds (seeded); for each fold a classifier learns the other four fifths day
by day with ``partial_fit``, exactly as vmfd and vmfsim feed it, and is
scored on the held-out fifth at a few days by macro recall (a class not seen
yet scores 0). The test split is never read, so settings chosen here do not
peek at the figures vmfsim reports. Options of VonMisesFisherClassifier are
passed as NAME=VALUE (e.g. refine_rows=0 for the mixtures alone).

Usage, from the top directory:

  OPENBLAS_NUM_THREADS=1 PYTHONPATH=python VMFMM_LIBRARY=build/lib/libvmfmm.so \\
      /usr/bin/python3 bench/cv_stream.py tests/data/fmnist-cce64 [--seed 7] \\
      [--days 5,20,50,100,200] [NAME=VALUE ...]

Prints one line: the mean over folds of the macro recall at each day.
"""

import argparse
import ast
import os
import sys

import numpy as np
from sklearn.model_selection import StratifiedKFold

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from vmfmm import VonMisesFisherClassifier  # noqa: E402


def macro_recall(y_true, y_pred, classes):
    """Mean over ``classes`` of the share of their rows predicted right."""
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def stream_fold(X, y, day, train, test, days, options):
    """Macro recall on rows ``test`` after each day in ``days`` of learning ``train``."""
    clf = VonMisesFisherClassifier(**options)
    order = train[np.argsort(day[train], kind="stable")]
    classes = np.unique(y)
    held = np.unique(y[test])
    out = {}
    for d in range(1, max(days) + 1):
        rows = order[day[order] == d]
        if len(rows):
            clf.partial_fit(X[rows], y[rows], classes=classes)
        if d in days:
            seen = getattr(clf, "rows_seen_", 0) > 0
            out[d] = macro_recall(y[test], clf.predict(X[test]), held) if seen else 0.0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix", help="stream PREFIX of PREFIX.{X,y,split,day}.npy")
    ap.add_argument("--seed", type=int, default=7, help="fold seed (default 7)")
    ap.add_argument("--days", default="5,20,50,100,200", help="days to score")
    ap.add_argument("options", nargs="*", help="VonMisesFisherClassifier NAME=VALUE")
    a = ap.parse_intermixed_args()
    options = {}
    for kv in a.options:
        name, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"option {kv!r} is not NAME=VALUE")
        options[name] = ast.literal_eval(value)
    days = sorted(int(d) for d in a.days.split(","))
    X = np.load(a.prefix + ".X.npy").astype(np.float32)
    y = np.load(a.prefix + ".y.npy")
    split = np.load(a.prefix + ".split.npy")
    day = np.load(a.prefix + ".day.npy")
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    train = np.where(split == 0)[0]
    folds = StratifiedKFold(5, shuffle=True, random_state=a.seed)
    scores = [stream_fold(X, y, day, train[tr], train[te], days, options)
              for tr, te in folds.split(train, y[train])]
    print(" ".join(f"day{d}={np.mean([s[d] for s in scores]):.4f}" for d in days))


if __name__ == "__main__":
    main()
