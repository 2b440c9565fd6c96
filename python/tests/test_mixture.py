"""VonMisesFisherMixture: equal to `vmfmm fit` bit for bit, and behaving."""

import json
import os
import pickle
import subprocess

import numpy as np
import pytest

from conftest import BIN_DIR, DATA, fmnist
from vmfmm import VonMisesFisherMixture


def cli_fit(tmp_path, args):
    out = tmp_path / "fit"
    subprocess.run([os.path.join(BIN_DIR, "vmfmm"), "fit", "--input", f"{DATA}.X.npy",
                    "--test-split", "0", "--no-plots", "--quiet", "--output-dir", str(out),
                    *args], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    return out


@pytest.mark.parametrize("cli, py", [
    (["-k", "8", "--seed", "7", "--max-iter", "50", "--n-init", "2"],
     dict(n_components=8, random_state=7, max_iter=50, n_init=2)),
    (["-k", "5", "--seed", "3", "--max-iter", "15", "--tol", "0", "--init", "random",
      "--assignment", "hard", "--kappa-estimator", "banerjee", "--tied-kappa"],
     dict(n_components=5, random_state=3, max_iter=15, tol=0, init="random",
          assignment="hard", kappa_estimator="banerjee", tied_kappa=True)),
])
def test_parameters_equal_vmfmm_fit_bit_for_bit(tmp_path, cli, py):
    X = fmnist()[0]
    out = cli_fit(tmp_path, cli)
    model_json = (out / "model.json").read_bytes()
    conv = json.loads((out / "convergence.json").read_text())

    m = VonMisesFisherMixture(**py).fit(X)
    ref = VonMisesFisherMixture.load(out / "model.json")
    np.testing.assert_array_equal(m.weights_, ref.weights_)
    np.testing.assert_array_equal(m.kappas_, ref.kappas_)
    np.testing.assert_array_equal(m.means_, ref.means_)
    assert m.weights_.tobytes() == ref.weights_.tobytes()
    assert m.means_.tobytes() == ref.means_.tobytes()
    assert m.n_iter_ == conv["iterations"]
    assert m.converged_ == conv["converged"]
    assert m.loglik_trace_.shape == (m.n_iter_,)
    # Model JSON: the same bytes as model.json, through to_json and save.
    assert m.to_json().encode() == model_json
    m.save(tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == model_json
    # float64 input is converted once and gives the same bits.
    m64 = VonMisesFisherMixture(**py).fit(X.astype(np.float64))
    assert m64.to_json() == m.to_json()


@pytest.fixture(scope="module")
def fitted():
    X = fmnist()[0][:4000]
    return X, VonMisesFisherMixture(6, random_state=0).fit(X)


def test_fitted_attributes(fitted):
    X, m = fitted
    assert m.n_features_in_ == 64
    assert m.weights_.shape == (6,) and m.weights_.dtype == np.float64
    assert abs(m.weights_.sum() - 1) < 1e-12
    assert m.means_.shape == (6, 64) and m.means_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m.means_, axis=1), 1, rtol=1e-5)
    assert np.all(m.kappas_ > 0)
    assert m.converged_ and 1 <= m.n_iter_ <= 100
    assert m.lower_bound_ == m.loglik_trace_[-1]
    # lower_bound_ is the EM kernel's value; since the bounded E-step (issue 11) rows
    # whose other components hold < 2^-24 of their mass count for one component only,
    # and the dominant density's dot product is taken in double: within 1e-6 per row.
    assert abs(m.score(X) - m.lower_bound_) < 1e-6


def test_scoring_functions_agree(fitted):
    X, m = fitted
    proba = m.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(m.predict(X), np.argmax(proba, axis=1))
    np.testing.assert_array_equal(m.fit_predict(X), m.predict(X))
    s = m.score_samples(X)
    assert s.shape == (len(X),)
    # Scores do not depend on the scale of a row.
    # (float32 rounding of the normalized rows times kappa ~ 100: 1e-5)
    np.testing.assert_allclose(m.score_samples(3 * X[:100].astype(np.float64)), s[:100],
                               rtol=1e-5)
    n, p = len(X), m.n_parameters()
    assert p == 5 + 6 * 63 + 6
    total = s.sum()
    assert m.bic(X) == pytest.approx(-2 * total + p * np.log(n), rel=1e-12)
    assert m.aic(X) == pytest.approx(-2 * total + 2 * p, rel=1e-12)


def test_bic_prefers_a_reasonable_k():
    X = fmnist()[0][:3000]
    bic = {k: VonMisesFisherMixture(k, random_state=0).fit(X).bic(X) for k in (1, 10)}
    assert bic[10] < bic[1]


def test_sample(fitted):
    _, m = fitted
    m = pickle.loads(pickle.dumps(m))
    m.set_params(random_state=5)
    S, comp = m.sample(500)
    assert S.shape == (500, 64) and S.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(S, axis=1), 1, rtol=1e-5)
    assert comp.min() >= 0 and comp.max() < 6
    S2, comp2 = m.sample(500)
    np.testing.assert_array_equal(S, S2)
    np.testing.assert_array_equal(comp, comp2)
    # Rows drawn from a component are best explained by it, mostly.
    assert np.mean(m.predict(S) == comp) > 0.8


def test_save_is_atomic(fitted, tmp_path):
    # save() replaces a file whole and, when the system refuses, raises an
    # OSError naming the path and leaves nothing behind.
    X, m = fitted
    path = tmp_path / "m.json"
    path.write_text("x" * 100000)
    m.save(path)
    assert path.read_text() == m.to_json()
    assert sorted(os.listdir(tmp_path)) == ["m.json"]
    bad = tmp_path / "m.json" / "child.json"
    with pytest.raises(OSError, match="child.json"):
        m.save(bad)
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_json_and_pickle_round_trips_keep_every_bit(fitted, tmp_path):
    X, m = fitted
    m.save(tmp_path / "m.json")
    r = VonMisesFisherMixture.load(tmp_path / "m.json")
    assert r.to_json() == m.to_json()
    np.testing.assert_array_equal(r.predict_proba(X), m.predict_proba(X))
    assert r.n_features_in_ == 64 and r.n_components == 6
    p = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(p.score_samples(X), m.score_samples(X))
    assert p.get_params() == m.get_params()


def test_warm_start_and_given_init(fitted):
    X, m = fitted
    w = VonMisesFisherMixture(6, random_state=0, warm_start=True).fit(X)
    first, first_ll = w.n_iter_, w.lower_bound_
    w.fit(X)  # starts from the converged means
    # The default split-and-merge search already ends the first fit within one or two
    # iterations over all rows (issue 11): the warm fit needs no more, and is as good
    # within the relative stopping tolerance (1e-6 |L|, about 1e-4 here).
    assert w.n_iter_ <= first
    assert w.lower_bound_ >= first_ll - 1e-3
    g = VonMisesFisherMixture(6, init=m.means_.astype(np.float64), random_state=1).fit(X)
    # EM from the converged means (with fresh weights and kappas) stays at
    # that optimum, whatever the seed.
    np.testing.assert_allclose(g.means_, m.means_, atol=2e-3)
    assert g.lower_bound_ == pytest.approx(m.lower_bound_, abs=1e-3)
    with pytest.raises(ValueError, match="init has shape"):
        VonMisesFisherMixture(5, init=m.means_).fit(X)


def test_errors():
    X = fmnist()[0][:20]
    with pytest.raises(ValueError, match="n_components = 30, n_samples = 20"):
        VonMisesFisherMixture(30).fit(X)
    with pytest.raises(ValueError, match="n_features = 1"):
        VonMisesFisherMixture(2).fit(X[:, :1])
    with pytest.raises(ValueError, match="kappa_estimator"):
        VonMisesFisherMixture(2, kappa_estimator="magic").fit(X)
    with pytest.raises(ValueError, match="assignment"):
        VonMisesFisherMixture(2, assignment="fuzzy").fit(X)
    with pytest.raises(ValueError, match="tol"):
        VonMisesFisherMixture(2, tol=-1.0).fit(X)
    m = VonMisesFisherMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :10])
    with pytest.raises(ValueError, match="NaN|infinity"):
        m.predict(np.full((1, 64), np.nan))
