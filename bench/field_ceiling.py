#!/usr/bin/python3
"""How far can any ordinary classifier go on a stream's test split at the last day?

Issue 12 asks vmfmm for "gmm + 0.02" top-1 at day 200. Whether that bar can be
reached at all depends on the embeddings, so this script fits strong
scikit-learn classifiers on every stream row (split 0, all days: what a batch
refit sees on day 200) and prints their top-1 macro recall on the test split
(split 1). It reads the test split to report a ceiling, never to choose a
vmfmm setting (bench/cv_stream.py does that on the training stream only).

  /usr/bin/python3 bench/field_ceiling.py tests/data/fmnist-cce64

Each line: the model, its top-1 macro recall on the test split, seconds.
Class imbalance is handled as vmfsim's families handle it: class-balanced
weights, or class-balanced resampling for the MLP (which has no weights).

With --per-class N,... it instead fits the balanced logistic regression
(C = 1) on at most N rows of each class (a seeded uniform sample), as the
vMF classifier's head sees a bounded sample per class (docs/classifier.md,
"A pool for few classes").
"""

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import PolynomialFeatures
from sklearn.svm import SVC


def macro_recall(y_true, y_pred):
    """Mean over the classes of y_true of the share of their rows predicted right."""
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def balanced_rows(y, rng):
    """Row indices resampling every class to the size of the largest."""
    top = max(np.sum(y == c) for c in np.unique(y))
    return np.concatenate([rng.choice(np.where(y == c)[0], top) for c in np.unique(y)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix", help="stream PREFIX of PREFIX.{X,y,split}.npy")
    ap.add_argument("--per-class", default="",
                    help="comma-separated row caps per class: only the logistic regression")
    a = ap.parse_args()
    X = np.load(a.prefix + ".X.npy").astype(np.float64)
    y = np.load(a.prefix + ".y.npy")
    split = np.load(a.prefix + ".split.npy")
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Xt, yt, Xe, ye = X[split == 0], y[split == 0], X[split == 1], y[split == 1]
    rng = np.random.default_rng(0)
    if a.per_class:
        for cap in (int(v) for v in a.per_class.split(",")):
            keep = np.concatenate([rng.permutation(np.where(yt == c)[0])[:cap]
                                   for c in np.unique(yt)])
            m = LogisticRegression(C=1, class_weight="balanced", max_iter=5000)
            m.fit(Xt[keep], yt[keep])
            print(f"{'logistic regression C=1, ' + str(cap) + ' rows a class':45s} "
                  f"{macro_recall(ye, m.predict(Xe)):.4f}  ({len(keep)} rows)", flush=True)
        return
    bal = balanced_rows(yt, rng)
    poly = PolynomialFeatures(2, include_bias=False)
    models = [(f"logistic regression C={c}",
               lambda c=c: LogisticRegression(C=c, class_weight="balanced", max_iter=5000),
               None) for c in (1, 10)]
    models.append(("logistic regression C=1, degree-2 features",
                   lambda: LogisticRegression(C=1, class_weight="balanced", max_iter=5000),
                   poly))
    models += [(f"RBF SVM C={c} gamma={g}",
                lambda c=c, g=g: SVC(C=c, gamma=g, class_weight="balanced"), None)
               for c in (1, 3) for g in (0.5, 1.0)]
    logp = {}
    for name, make, feats in models:
        t = time.time()
        Zt, Ze = (feats.fit_transform(Xt), feats.transform(Xe)) if feats else (Xt, Xe)
        m = make().fit(Zt, yt)
        print(f"{name:45s} {macro_recall(ye, m.predict(Ze)):.4f}  {time.time() - t:5.1f} s",
              flush=True)
        if name == "logistic regression C=1":
            logp["lr"] = m.predict_log_proba(Ze)
    t = time.time()
    mlp = []
    for seed in range(3):
        m = MLPClassifier((128,), alpha=1e-2, max_iter=50, early_stopping=True,
                          random_state=seed).fit(Xt[bal], yt[bal])
        mlp.append(np.log(m.predict_proba(Xe) + 1e-12))
        print(f"{'MLP 128 hidden, seed ' + str(seed):45s} "
              f"{macro_recall(ye, m.classes_[mlp[-1].argmax(1)]):.4f}  "
              f"{time.time() - t:5.1f} s", flush=True)
    both = logp["lr"] + np.mean(mlp, axis=0)
    print(f"{'logistic regression + MLPs (log-prob sum)':45s} "
          f"{macro_recall(ye, np.unique(yt)[both.argmax(1)]):.4f}")


if __name__ == "__main__":
    main()
