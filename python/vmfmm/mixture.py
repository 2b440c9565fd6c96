"""VonMisesFisherMixture: scikit-learn's density-estimator conventions over
libvmfmm's batch EM (``vmf_mixture_fit``).

The estimator adds conventions, not algorithms: every number comes from the C
library, so a fit with the same rows, seed and options has the same bits as
``vmfmm fit`` (which normalizes its input rows the same way, see
``_lib.rows``).
"""

import ctypes
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _lib

_UINT64_MAX = 2**64 - 1


def seed_from(random_state):
    """A 64-bit libvmfmm seed from a scikit-learn ``random_state``.

    An int is used as the seed itself (so ``random_state=7`` is ``--seed 7``
    of the command-line tools); None or a ``RandomState`` draws one.
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) <= _UINT64_MAX:
            raise ValueError(f"random_state={random_state} must be in [0, 2**64)")
        return int(random_state)
    rs = check_random_state(random_state)
    return int(rs.randint(0, 2**63 - 1, dtype=np.int64))


def kappa_estimator_code(name):
    if not isinstance(name, str) or name not in _lib.KAPPA_ESTIMATORS:
        raise ValueError(f"kappa_estimator={name!r} must be one of "
                         f"{sorted(_lib.KAPPA_ESTIMATORS)}")
    return _lib.KAPPA_ESTIMATORS[name]


def check_dim(d):
    if d < 2:
        raise ValueError(f"n_features = {d}: a direction on the sphere needs at least "
                         "2 features")


def _check_int(name, value, low):
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or value < low):
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")


def _mixture_from_json(text):
    raw = text.encode("utf-8")
    out = ctypes.c_void_p()
    _lib.check(_lib.vmf_mixture_from_json(raw, len(raw), ctypes.byref(out)), "model JSON")
    return _lib.Handle(out, _lib.vmf_mixture_free)


class VonMisesFisherMixture(DensityMixin, BaseEstimator):
    """A mixture of von Mises-Fisher distributions on the unit sphere.

    Rows are directions: each is scaled to unit length before use (a zero
    row is an error). Fitting is libvmfmm's batch EM with k-means++ (or
    random, or given) initialization, ``n_init`` restarts and the library's
    documented rule for empty or collapsing components.

    Parameters
    ----------
    n_components : int, default=5
        Number of components K.
    max_iter : int or None, default=None
        EM iterations at most; None: the library's default
        (``vmf_em_opts_init``, 100 today).
    tol : float or None, default=None
        Stop when the mean per-sample log-likelihood changes by less than
        this (absolute); 0 runs exactly ``max_iter`` iterations. None: the
        library's default (1e-6 today).
    n_init : int or None, default=None
        Restarts; the one with the best log-likelihood is kept. None: the
        library's default (1 today).
    init : {'k-means++', 'random'} or array-like of shape (n_components, n_features), \
default='k-means++'
        Initialization: k-means++ on the sphere, K distinct random rows, or
        the given mean directions.
    assignment : {'soft', 'hard', 'stochastic'}, default='soft'
        Responsibilities (classic EM), hard assignments, or assignments
        drawn from the posterior.
    tied_kappa : bool, default=False
        One concentration shared by all components.
    kappa_estimator : {'exact', 'banerjee', 'sra', 'song'} or None, default=None
        How kappa is solved from the mean resultant length; None: the
        library's default ('exact' today).

    Every None follows ``vmf_em_opts_init``, as ``vmfmm fit`` does, so an
    estimator and the command line given the same explicit options fit
    the same model even when a library version changes its defaults.
    warm_start : bool, default=False
        When fitted already, start the next fit from the current means
        (one initialization).
    random_state : int, RandomState instance or None, default=None
        An int is libvmfmm's seed (equal to ``vmfmm fit --seed``); None or a
        ``RandomState`` draws a seed.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,), float64
    means_ : ndarray of shape (n_components, n_features), float32
        Unit mean directions, the library's float32 values.
    kappas_ : ndarray of shape (n_components,), float64
    converged_ : bool
    n_iter_ : int
        EM iterations of the kept restart.
    lower_bound_ : float
        Final mean per-sample log-likelihood of the training rows.
    loglik_trace_ : ndarray of shape (n_iter_,), float64
        Mean log-likelihood after each iteration of the kept restart.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X had feature names.
    """

    def __init__(self, n_components=5, *, max_iter=None, tol=None, n_init=None,
                 init="k-means++", assignment="soft", tied_kappa=False,
                 kappa_estimator=None, warm_start=False, random_state=None):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init = init
        self.assignment = assignment
        self.tied_kappa = tied_kappa
        self.kappa_estimator = kappa_estimator
        self.warm_start = warm_start
        self.random_state = random_state

    # ----------------------------------------------------------- fitting

    def _options(self, d, n):
        _check_int("n_components", self.n_components, 1)
        if self.max_iter is not None:
            _check_int("max_iter", self.max_iter, 1)
        if self.n_init is not None:
            _check_int("n_init", self.n_init, 1)
        if self.tol is not None and not (isinstance(self.tol, numbers.Real)
                                         and np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"tol={self.tol!r} must be a finite number >= 0")
        if self.assignment not in _lib.ASSIGNMENTS:
            raise ValueError(f"assignment={self.assignment!r} must be one of "
                             f"{sorted(_lib.ASSIGNMENTS)}")
        if n < self.n_components:
            raise ValueError("Expected n_samples >= n_components but got "
                             f"n_components = {self.n_components}, n_samples = {n}")
        o = _lib.EmOpts()
        _lib.vmf_em_opts_init(ctypes.byref(o))
        o.n_components = self.n_components
        if self.max_iter is not None:
            o.max_iter = self.max_iter
        if self.tol is not None:
            o.tol = float(self.tol)
        if self.n_init is not None:
            o.n_init = self.n_init
        o.assignment = _lib.ASSIGNMENTS[self.assignment]
        o.tied_kappa = 1 if self.tied_kappa else 0
        if self.kappa_estimator is not None:
            o.kappa.estimator = kappa_estimator_code(self.kappa_estimator)
        o.seed = seed_from(self.random_state)
        given = None
        if self.warm_start and hasattr(self, "_model"):
            given = self.means_
        elif isinstance(self.init, str):
            if self.init == "k-means++":
                o.init = _lib.INIT_KMEANSPP
            elif self.init == "random":
                o.init = _lib.INIT_RANDOM
            else:
                raise ValueError(f"init={self.init!r} must be 'k-means++', 'random' or an "
                                 "array of mean directions")
        else:
            given = np.asarray(self.init, dtype=np.float64)
            if given.shape != (self.n_components, d):
                raise ValueError(f"init has shape {given.shape}, expected "
                                 f"({self.n_components}, {d})")
            if not np.all(np.isfinite(given)):
                raise ValueError("init contains NaN or infinity")
        if given is not None:
            given = _lib.rows(np.asarray(given, dtype=np.float32), normalize_exact=True)
            o.init = _lib.INIT_GIVEN
            o.init_means = given.ctypes.data_as(_lib.c_float_p)
            o.n_init = 1
        return o, given

    def fit(self, X, y=None):
        """Fit the mixture by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows (any scale; each is normalized to unit length). C-contiguous
            float32 unit rows are used without a copy.
        y : ignored

        Returns
        -------
        self
        """
        X = self._validate_data(X, dtype=[np.float32, np.float64], reset=True)
        n, d = X.shape
        check_dim(d)
        o, keep = self._options(d, n)
        Xf = _lib.rows(X, normalize_exact=True)
        out = ctypes.c_void_p()
        rep = _lib.EmReport()
        _lib.check(_lib.vmf_mixture_fit(ctypes.byref(o), _lib.ptr(Xf), n, d, ctypes.byref(out),
                                        ctypes.byref(rep)), "vmf_mixture_fit")
        del keep
        try:
            self._set_model(_lib.Handle(out, _lib.vmf_mixture_free))
            self.converged_ = bool(rep.converged)
            self.n_iter_ = int(rep.n_iter)
            self.lower_bound_ = float(rep.loglik)
            self.loglik_trace_ = np.ctypeslib.as_array(rep.trace, (rep.n_iter,)).copy() \
                if rep.n_iter else np.zeros(0)
        finally:
            _lib.vmf_em_report_free(ctypes.byref(rep))
        if not self.converged_ and o.tol > 0:
            warnings.warn(f"EM did not converge in max_iter={o.max_iter} iterations; "
                          "raise max_iter or tol", ConvergenceWarning)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of each row of X."""
        return self.fit(X).predict(X)

    def _set_model(self, handle):
        self._model = handle
        m = handle.ptr
        k = _lib.vmf_mixture_n_components(m)
        d = _lib.vmf_mixture_dim(m)
        self.weights_ = np.ctypeslib.as_array(_lib.vmf_mixture_weights(m), (k,)).copy()
        self.means_ = np.ctypeslib.as_array(_lib.vmf_mixture_means(m), (k, d)).copy()
        self.kappas_ = np.ctypeslib.as_array(_lib.vmf_mixture_kappas(m), (k,)).copy()

    # ----------------------------------------------------------- scoring

    def _rows(self, X):
        # NaN and Inf are left to the library, which refuses them with a
        # message naming the row (a ValueError): numpy's own pass over the
        # data would cost a few percent of a prediction.
        check_is_fitted(self, "_model")
        return self._validate_data(X, dtype=[np.float32, np.float64], reset=False,
                                   force_all_finite=False)

    def score_samples(self, X):
        """log p(x) of each row (rows normalized to unit length).

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        X = self._rows(X)
        out = np.empty(X.shape[0], dtype=np.float64)
        _lib.score_rows(X, lambda A: _lib.vmf_mixture_score_samples(
            self._model.ptr, _lib.ptr(A), A.shape[0], A.shape[1], _lib.ptr(out)),
            "vmf_mixture_score_samples")
        return out

    def score(self, X, y=None):
        """Mean log-likelihood per row."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """Most probable component of each row (ties to the lowest index).

        Returns
        -------
        ndarray of shape (n_samples,), int64
        """
        X = self._rows(X)
        out = np.empty(X.shape[0], dtype=np.int32)
        _lib.score_rows(X, lambda A: _lib.vmf_mixture_predict(
            self._model.ptr, _lib.ptr(A), A.shape[0], A.shape[1], _lib.ptr(out)),
            "vmf_mixture_predict")
        return out.astype(np.int64)

    def predict_proba(self, X):
        """Posterior responsibilities.

        Returns
        -------
        ndarray of shape (n_samples, n_components), float64
        """
        X = self._rows(X)
        out = np.empty((X.shape[0], self.weights_.shape[0]), dtype=np.float64)
        _lib.score_rows(X, lambda A: _lib.vmf_mixture_predict_proba(
            self._model.ptr, _lib.ptr(A), A.shape[0], A.shape[1], _lib.ptr(out)),
            "vmf_mixture_predict_proba")
        return out

    def _criteria(self, X):
        X = self._rows(X)
        bic, aic = ctypes.c_double(), ctypes.c_double()
        _lib.score_rows(X, lambda A: _lib.vmf_mixture_information_criteria(
            self._model.ptr, _lib.ptr(A), A.shape[0], A.shape[1], ctypes.byref(bic),
            ctypes.byref(aic)), "vmf_mixture_information_criteria")
        return bic.value, aic.value

    def bic(self, X):
        """Bayesian information criterion -2 L + p log n on X (lower is better)."""
        return self._criteria(X)[0]

    def aic(self, X):
        """Akaike information criterion -2 L + 2 p on X (lower is better)."""
        return self._criteria(X)[1]

    def n_parameters(self):
        """Free parameters: (K-1) weights + K (d-1) directions + K kappas (1 if tied)."""
        check_is_fitted(self, "_model")
        return int(_lib.vmf_mixture_n_params(self._model.ptr))

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture (Wood's sampler).

        The seed comes from ``random_state`` as in ``fit``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float32, unit rows
        y : ndarray of shape (n_samples,), int64, the component of each row
        """
        check_is_fitted(self, "_model")
        _check_int("n_samples", n_samples, 1)
        rng = _lib.Rng()
        _lib.vmf_rng_seed(ctypes.byref(rng), seed_from(self.random_state))
        X = np.empty((n_samples, self.means_.shape[1]), dtype=np.float32)
        comp = np.empty(n_samples, dtype=np.int32)
        _lib.check(_lib.vmf_mixture_sample(self._model.ptr, n_samples, ctypes.byref(rng),
                                           _lib.ptr(X), _lib.ptr(comp)), "vmf_mixture_sample")
        return X, comp.astype(np.int64)

    # ------------------------------------------------------- model JSON

    def to_json(self):
        """The model JSON (``vmf_mixture_to_json``), as ``vmfmm fit`` writes model.json."""
        check_is_fitted(self, "_model")
        p = ctypes.c_void_p()
        _lib.check(_lib.vmf_mixture_to_json(self._model.ptr, ctypes.byref(p)),
                   "vmf_mixture_to_json")
        return _lib.take_string(p)

    def save(self, path):
        """Write the model JSON to ``path``, byte for byte as ``vmfmm fit``'s model.json,
        and atomically like it (``vmf_file_write_atomic``)."""
        _lib.write_text(path, self.to_json())

    @classmethod
    def from_json(cls, text):
        """A fitted estimator from model JSON (mixture form).

        ``n_components`` and ``tied_kappa`` come from the model; the fit
        report (``converged_``, ``n_iter_``, ``lower_bound_``) is unknown and
        set to None, 0 and NaN.
        """
        handle = _mixture_from_json(text)
        m = handle.ptr
        est = cls(n_components=int(_lib.vmf_mixture_n_components(m)),
                  tied_kappa=bool(_lib.vmf_mixture_tied_kappa(m)))
        est._set_model(handle)
        est.n_features_in_ = int(_lib.vmf_mixture_dim(m))
        est.converged_ = None
        est.n_iter_ = 0
        est.lower_bound_ = float("nan")
        est.loglik_trace_ = np.zeros(0)
        return est

    @classmethod
    def load(cls, path):
        """Read model JSON written by ``save``, ``vmfmm fit`` or ``GET /v1/model``'s mixtures."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    # ---------------------------------------------------------- pickling

    def __getstate__(self):
        state = super().__getstate__()
        if "_model" in state:
            state = dict(state)
            state["_model"] = self.to_json()
        return state

    def __setstate__(self, state):
        model = state.get("_model")
        if isinstance(model, str):
            state = dict(state)
            state["_model"] = _mixture_from_json(model)
        super().__setstate__(state)
