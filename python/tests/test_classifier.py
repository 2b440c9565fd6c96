"""VonMisesFisherClassifier: equal to vmfsim's in-process vmfmm day by day on
fmnist-cce64, and behaving as a scikit-learn incremental classifier."""

import csv
import os
import pickle
import subprocess

import numpy as np
import pytest

from conftest import BIN_DIR, DATA, fmnist, stream_days
from vmfmm import VonMisesFisherClassifier, _lib


def macro_recall(topk, y, k):
    """Mean over the classes of y of the fraction of their rows with the
    true class among the first k predictions (vmfsim's top-k macro recall)."""
    hit = np.any(topk[:, :k] == y[:, None], axis=1)
    return float(np.mean([hit[y == c].mean() for c in np.unique(y)]))


def test_predictions_equal_vmfsim_day_by_day(tmp_path):
    out = tmp_path / "sim"
    subprocess.run([os.path.join(BIN_DIR, "vmfsim"), "run", "--stream", DATA, "--models",
                    "vmfmm", "--seed", "42", "--no-plots", "--no-timings", "--quiet",
                    "--output-dir", str(out)], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    with open(out / "daily.csv") as f:
        daily = {int(r["day"]): r for r in csv.DictReader(f) if r["model"] == "vmfmm"}

    X, y, split, day = fmnist()
    Xt, yt = X[split == 1], y[split == 1]
    days = stream_days(X, y, split, day)
    clf = VonMisesFisherClassifier(random_state=42)
    compared = 0
    for t in sorted(daily):
        if t in days:
            clf.partial_fit(*days[t])
        top, _ = clf.predict_topk(Xt, 4)
        row = daily[t]
        assert clf.rows_seen_ == int(row["rows_seen"]), t
        assert f"{macro_recall(top, yt, 1):.8f}" == row["top1"], t
        assert f"{macro_recall(top, yt, 4):.8f}" == row["top4"], t
        compared += 1
    assert compared == 200
    np.testing.assert_array_equal(clf.predict(Xt), top[:, 0])
    assert macro_recall(top, yt, 1) > 0.8


@pytest.fixture(scope="module")
def stream():
    X, y, split, day = fmnist()
    return days_and_test(X, y, split, day)


def days_and_test(X, y, split, day):
    return stream_days(X, y, split, day), X[split == 1], y[split == 1]


def test_partial_fit_equals_one_fit_per_day_and_pickle_keeps_the_future(stream):
    days, Xt, yt = stream
    a = VonMisesFisherClassifier()
    for t in range(1, 11):
        a.partial_fit(*days[t])
    b = VonMisesFisherClassifier()
    for t in range(1, 6):
        b.partial_fit(*days[t])
    b = pickle.loads(pickle.dumps(b))  # the whole state, bit for bit
    for t in range(6, 11):
        b.partial_fit(*days[t])
    assert a.to_json() == b.to_json()
    np.testing.assert_array_equal(a.predict_proba(Xt), b.predict_proba(Xt))


def test_probabilities_and_decisions(stream):
    days, Xt, yt = stream
    clf = VonMisesFisherClassifier()
    for t in range(1, 31):
        clf.partial_fit(*days[t])
    seen = np.unique(np.concatenate([days[t][1] for t in range(1, 31)]))
    np.testing.assert_array_equal(clf.classes_, seen)
    p = clf.predict_proba(Xt)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-9)
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[np.argmax(p, axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(Xt)), p)
    np.testing.assert_array_equal(clf.decision_function(Xt), clf.predict_log_proba(Xt))
    labels, proba = clf.predict_topk(Xt[:50], 3)
    assert labels.shape == proba.shape == (50, 3)
    # top-k and the full posterior are two C paths: equal to float32 rounding
    np.testing.assert_allclose(proba, -np.sort(-p[:50], axis=1)[:, :3], rtol=1e-5)
    keep = np.isin(yt, seen)
    assert clf.score(Xt[keep], yt[keep]) > 0.8


def test_string_labels_declared_classes_and_label_order(stream):
    days, Xt, yt = stream
    names = np.array(["tee", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                      "sneaker", "bag", "boot"])
    clf = VonMisesFisherClassifier()
    clf.partial_fit(*days[1][:1], names[days[1][1]], classes=names)
    np.testing.assert_array_equal(clf.classes_, np.sort(names))
    for t in range(2, 21):
        clf.partial_fit(days[t][0], names[days[t][1]])
    ints = VonMisesFisherClassifier()
    for t in range(1, 21):
        ints.partial_fit(*days[t])
    # Same model up to the labels: predictions map one to one.
    np.testing.assert_array_equal(clf.predict(Xt), names[ints.predict(Xt)])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(days[21][0][:3], np.array(["tee", "hat", "tee"]))
    with pytest.raises(ValueError, match="differs from classes_"):
        clf.partial_fit(days[21][0][:3], names[:3], classes=names[:3])


def test_rejected_batches_leave_the_model_unchanged(stream):
    days, Xt, _ = stream
    clf = VonMisesFisherClassifier()
    clf.partial_fit(*days[1])
    before = clf.to_json()
    classes = clf.classes_.copy()
    with pytest.raises(ValueError, match="kind"):
        clf.partial_fit(days[2][0], days[2][1].astype(str))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(days[2][0][:, :32], days[2][1])
    assert clf.to_json() == before
    np.testing.assert_array_equal(clf.classes_, classes)
    clf.partial_fit(*days[2])  # still learns


def test_json_round_trip_predicts_identically(stream, tmp_path):
    days, Xt, _ = stream
    clf = VonMisesFisherClassifier()
    for t in range(1, 16):
        clf.partial_fit(*days[t])
    clf.save(tmp_path / "model.json")
    back = VonMisesFisherClassifier.load(tmp_path / "model.json")
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    np.testing.assert_array_equal(back.predict_proba(Xt), clf.predict_proba(Xt))
    assert (tmp_path / "model.json").read_text() == clf.to_json()


def test_batch_fit_and_one_class(stream):
    days, Xt, yt = stream
    X = np.concatenate([days[t][0] for t in range(1, 41)])
    y = np.concatenate([days[t][1] for t in range(1, 41)])
    clf = VonMisesFisherClassifier().fit(X, y)
    assert clf.rows_seen_ == len(X)
    assert clf.score(Xt, yt) > 0.8
    one = VonMisesFisherClassifier().fit(X[y == 3], y[y == 3])
    np.testing.assert_array_equal(one.predict(Xt[:5]), [3] * 5)


def test_novelty_score(stream):
    days, Xt, _ = stream
    clf = VonMisesFisherClassifier()
    for t in range(1, 11):
        clf.partial_fit(*days[t])
    if _lib.vmf_classifier_novelty is None:
        with pytest.raises(NotImplementedError, match="vmf_classifier_novelty"):
            clf.novelty_score(Xt)
        return
    import json
    doc = json.loads(clf.to_json())
    means = np.array([m for c in doc["classes"] for m in c["mixture"]["means"]])
    nov = clf.novelty_score(Xt[:100])
    expect = 1 - np.max(Xt[:100].astype(np.float64) @ means.T, axis=1)
    np.testing.assert_allclose(nov, expect, atol=1e-5)


def test_refinement_options(stream):
    import json
    days, Xt, yt = stream
    on = VonMisesFisherClassifier(refine_rows=64, refine_budget=1024, refine_lambda=0.3,
                                  refine_rate=0.5)
    off = VonMisesFisherClassifier(refine_rows=0)
    for t in range(1, 21):
        on.partial_fit(*days[t])
        off.partial_fit(*days[t])
    opts = json.loads(on.to_json())["options"]
    assert (opts["refine_rows"], opts["refine_budget"]) == (64, 1024)
    assert (opts["refine_lambda_row"], opts["refine_rate"]) == (0.3, 0.5)
    doc = json.loads(on.to_json())
    assert all("refine" in c for c in doc["classes"])
    # The sample is kept: refine_rows * 512 / d rows below d = 512, or with
    # C < 64 classes that times 64 / max(C, 2) (the growth sample's
    # k_max * rows_per_component = 150 when that is more).
    head = 64 * 512 // Xt.shape[1]
    cap = max(head, head * 64 // max(len(doc["classes"]), 2), 150)
    assert all(c["sample"] and len(c["sample"]) <= cap for c in doc["classes"])
    assert any(len(c["sample"]) > 150 for c in doc["classes"])
    # Without the head: no "refine", and mixtures grown alike (the head shares the
    # classifier's generator, so their draws, not their sizes, differ).
    doff = json.loads(off.to_json())
    assert not any("refine" in c for c in doff["classes"])
    assert any(c["sample"] is None for c in doff["classes"])  # dropped once grown
    assert ([c["mixture"]["n_components"] for c in doff["classes"]] ==
            [c["mixture"]["n_components"] for c in doc["classes"]])
    assert on.score(Xt, yt) > 0.7 and off.score(Xt, yt) > 0.7
    for bad in (dict(refine_rows=-1), dict(refine_budget=1.5), dict(refine_rate=float("nan"))):
        with pytest.raises(ValueError, match="refine_"):
            VonMisesFisherClassifier(**bad).partial_fit(*days[1])
    # Range checks beyond the types are the library's: a step of 0 is refused there.
    with pytest.raises(ValueError, match="refine_rate"):
        VonMisesFisherClassifier(refine_rate=0.0).partial_fit(*days[1])
