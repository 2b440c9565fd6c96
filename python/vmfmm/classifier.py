"""VonMisesFisherClassifier: scikit-learn's classifier conventions over
libvmfmm's class-conditional vMF classifier (one mixture per class, learned
online with stepwise EM; ``vmfmm/classifier.h``).

Labels: the C classifier keeps the labels it was given (integers, or
strings), in order of first appearance, exactly as vmfd and vmfsim feed it;
so the model JSON of a Python classifier equals vmfd's ``GET /v1/model`` for
the same batches. Integer labels (and floats with integral values) go in as
integers, anything else as its ``str()``. scikit-learn's ``classes_`` is the
sorted set; the binding keeps the permutation between the two.
"""

import ctypes
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _lib
from .mixture import check_dim, kappa_estimator_code, seed_from


def _label_kind(classes):
    k = classes.dtype.kind
    if k in "iub":
        return "int"
    if k == "f" and np.all(np.isfinite(classes)) and np.all(classes == np.round(classes)) \
            and np.all(np.abs(classes) < 2.0**63):
        return "int"
    return "str"


def _key(value, kind):
    return int(value) if kind == "int" else str(value)


class _CLabels:
    """A vmf_labels view of y that keeps its buffers alive."""

    def __init__(self, y, kind):
        self.view = _lib.Labels()
        self.view.n = len(y)
        if kind == "int":
            self.buf = np.ascontiguousarray(y, dtype=np.int64)
            self.view.ints = self.buf.ctypes.data_as(_lib.c_int64_p)
        else:
            enc = [str(v).encode("utf-8") for v in y]
            if any(b"\0" in e for e in enc):
                raise ValueError("string labels must not contain NUL characters")
            self.buf = (ctypes.c_char_p * len(enc))(*enc)
            self.view.strs = ctypes.cast(self.buf, _lib.c_char_pp)


class VonMisesFisherClassifier(ClassifierMixin, BaseEstimator):
    """Class-conditional von Mises-Fisher classifier (libvmfmm).

    Each class is a vMF mixture that starts with one component and grows to
    ``k_max`` components as its rows allow; ``partial_fit`` learns a batch
    with stepwise EM and creates unseen classes on the fly, so the model can
    learn day by day for months. Rows are normalized to unit length.

    Parameters
    ----------
    k_max : int, default=5
        Components per class at most.
    alpha, t0 : float, default=0.7, 2.0
        Stepwise EM step size eta_t = (t + t0) ** -alpha.
    eta_floor : float, default=0.0
        Lower bound on eta (for drifting data).
    minibatch : int, default=256
        Rows per stepwise EM step.
    rows_per_component : int or None, default=None
        A class of n rows has min(k_max, max(1, n // rows_per_component))
        components (library default 30).
    kappa_estimator : {'exact', 'banerjee', 'sra', 'song'} or None, default=None
        (library default 'exact').
    pooled_kappa : bool or None, default=None
        Predict with one concentration pooled over every component
        (library default True).
    count_priors : bool or None, default=None
        Class priors n_c / n instead of equal priors at prediction
        (library default False).
    kappa_scale : float or None, default=None
        Prediction temperature; 0 chooses it automatically from the
        prequential record (see docs/classifier.md); library default 0.
    refine_rows : int or None, default=None
        Rows per class kept for the discriminative head (one weight vector
        and bias per class, learned online beside the mixtures; prediction
        uses it while its prequential log-likelihood is the better one),
        counted at d >= 512; below, the same memory holds
        refine_rows * 512 / d rows; with fewer than 64 classes each class
        keeps its share of 64 classes' worth instead. 0 turns the head off.
        Memory: max(n_classes, 64) * refine_rows * max(d, 512) floats (or
        k_max * rows_per_component * d a class, when that is more). Library
        default 256 (512 KiB per class).
    refine_lambda : float or None, default=None
        The head's L2 penalty, lambda / (rows seen) / 2 times the sum of the
        squared weights: 1 is scikit-learn's LogisticRegression(C=1,
        class_weight='balanced') at any number of classes; library default 1.
    refine_budget : int or None, default=None
        Gradient rows per ``partial_fit`` at d = 512 with 200 classes (two
        per batch row at least); cheaper rows (smaller d or fewer classes)
        get up to 8 times as many, for the same work. Library default 16384.
    refine_rate : float or None, default=None
        The head's SGD step size, in (0, 100]; library default 1.
    random_state : int, RandomState instance or None, default=42
        An int is libvmfmm's seed.

    The defaults are vmfd's: the values of vmfd.conf's ``[model]`` keys
    (``k_max``, ``alpha``, ``t0``, ``eta_floor``, ``minibatch``, ``seed``),
    and None, the library's ``vmf_classifier_opts_init``, for the options
    vmfd leaves to the library. So a default classifier learns exactly as a
    default vmfd (and as vmfsim's in-process vmfmm with ``--seed 42``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Known labels, sorted.
    n_features_in_ : int
    rows_seen_ : int
        Rows learned so far.
    kappa_scale_ : float
        The prediction temperature in use.
    """

    def __init__(self, k_max=5, *, alpha=0.7, t0=2.0, eta_floor=0.0, minibatch=256,
                 rows_per_component=None, kappa_estimator=None, pooled_kappa=None,
                 count_priors=None, kappa_scale=None, refine_rows=None, refine_lambda=None,
                 refine_budget=None, refine_rate=None, random_state=42):
        self.k_max = k_max
        self.rows_per_component = rows_per_component
        self.alpha = alpha
        self.t0 = t0
        self.eta_floor = eta_floor
        self.minibatch = minibatch
        self.kappa_estimator = kappa_estimator
        self.pooled_kappa = pooled_kappa
        self.count_priors = count_priors
        self.kappa_scale = kappa_scale
        self.refine_rows = refine_rows
        self.refine_lambda = refine_lambda
        self.refine_budget = refine_budget
        self.refine_rate = refine_rate
        self.random_state = random_state

    # -------------------------------------------------------- options

    def _options(self):
        for name in ("k_max", "rows_per_component", "minibatch"):
            v = getattr(self, name)
            if v is None and name == "rows_per_component":
                continue
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r} must be an integer >= 1")
        for name in ("alpha", "t0", "eta_floor", "kappa_scale"):
            v = getattr(self, name)
            if v is None and name == "kappa_scale":
                continue
            if not isinstance(v, numbers.Real) or not np.isfinite(v):
                raise ValueError(f"{name}={v!r} must be a finite number")
        o = _lib.ClassifierOpts()
        _lib.vmf_classifier_opts_init(ctypes.byref(o))
        o.k_max = self.k_max
        o.stepwise.alpha = float(self.alpha)
        o.stepwise.t0 = float(self.t0)
        o.stepwise.eta_floor = float(self.eta_floor)
        o.stepwise.minibatch = self.minibatch
        if self.rows_per_component is not None:
            o.rows_per_component = self.rows_per_component
        if self.kappa_estimator is not None:
            o.stepwise.kappa.estimator = kappa_estimator_code(self.kappa_estimator)
        if self.pooled_kappa is not None:
            o.pooled_kappa = 1 if self.pooled_kappa else 0
        if self.count_priors is not None:
            o.count_priors = 1 if self.count_priors else 0
        if self.kappa_scale is not None:
            o.kappa_scale = float(self.kappa_scale)
        for name in ("refine_rows", "refine_budget"):
            v = getattr(self, name)
            if v is None:
                continue
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name}={v!r} must be an integer >= 0")
            setattr(o, name, int(v))
        for name in ("refine_lambda", "refine_rate"):
            v = getattr(self, name)
            if v is None:
                continue
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(v):
                raise ValueError(f"{name}={v!r} must be a finite number")
            setattr(o, name, float(v))
        o.stepwise.seed = seed_from(self.random_state)
        return o

    # ------------------------------------------------- label bookkeeping

    def _set_classes(self, classes):
        self.classes_ = classes
        self._kind = _label_kind(classes)
        keys = [_key(c, self._kind) for c in classes]
        if len(set(keys)) != len(keys):
            raise ValueError("labels are not distinct once converted for libvmfmm "
                             f"({self._kind}): {list(classes)}")
        self._index = {k: i for i, k in enumerate(keys)}

    def _sync(self):
        """Refresh the map from the C classifier's classes to classes_."""
        c = self._model.ptr
        table = _lib.vmf_classifier_labels(c)
        n = _lib.vmf_classifier_n_classes(c)
        is_str = _lib.vmf_label_table_is_str(table)
        c2s = np.empty(n, dtype=np.intp)
        for i in range(n):
            if is_str:
                key = _lib.vmf_label_table_str(table, i).decode("utf-8")
            else:
                key = int(_lib.vmf_label_table_int(table, i))
            c2s[i] = self._index[key]
        self._c2s = c2s
        self.rows_seen_ = int(_lib.vmf_classifier_rows_seen(c))
        self.kappa_scale_ = float(_lib.vmf_classifier_kappa_scale(c))

    def _c_labels(self, y):
        keys = [_key(v, self._kind) for v in y] if self._kind == "str" else None
        if keys is not None:
            return _CLabels(keys, "str")
        return _CLabels(np.asarray(y).astype(np.int64), "int")

    # -------------------------------------------------------- learning

    def fit(self, X, y):
        """Learn from scratch on all rows (batch fit).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = self._validate_data(X, y, dtype=[np.float32, np.float64], reset=True)
        check_classification_targets(y)
        check_dim(X.shape[1])
        o = self._options()
        self._set_classes(np.unique(y))
        Xf = _lib.rows(X, normalize_exact=True)
        labels = self._c_labels(y)
        out = ctypes.c_void_p()
        _lib.check(_lib.vmf_classifier_fit(ctypes.byref(o), _lib.ptr(Xf), Xf.shape[0],
                                           Xf.shape[1], ctypes.byref(labels.view),
                                           ctypes.byref(out)), "vmf_classifier_fit")
        self._model = _lib.Handle(out, _lib.vmf_classifier_free)
        self._declared = False
        self._sync()
        return self

    def partial_fit(self, X, y, classes=None):
        """Learn one batch (stepwise EM), creating unseen classes.

        Options are read at the first call. ``classes`` (all labels that can
        ever occur) may be given at the first call, as scikit-learn's
        incremental classifiers expect; without it ``classes_`` grows as
        labels appear. A rejected batch leaves the model unchanged.

        Returns
        -------
        self
        """
        first = not hasattr(self, "_model")
        X, y = self._validate_data(X, y, dtype=[np.float32, np.float64], reset=first)
        check_classification_targets(y)
        check_dim(X.shape[1])
        seen = np.unique(y)
        if first:
            o = self._options()
            declared = classes is not None
            new_classes = np.unique(classes) if declared else seen
        else:
            declared = self._declared
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(f"classes={classes!r} differs from classes_ "
                                 f"{self.classes_!r} of the first partial_fit")
            new_classes = self.classes_ if declared else \
                np.unique(np.concatenate([self.classes_, seen]))
        if declared:
            missing = np.setdiff1d(seen, new_classes)
            if missing.size:
                raise ValueError(f"labels {missing!r} are not in classes {new_classes!r}")
        old = None if first else (self.classes_, self._kind, self._index)
        try:
            self._set_classes(new_classes)
            if old is not None and self._kind != old[1]:
                raise ValueError(f"labels of kind {self._kind} after labels of kind {old[1]}")
            Xf = _lib.rows(X, normalize_exact=True)
            labels = self._c_labels(y)
            if first:
                out = ctypes.c_void_p()
                _lib.check(_lib.vmf_classifier_new(ctypes.byref(o), Xf.shape[1],
                                                   ctypes.byref(out)), "vmf_classifier_new")
                handle = _lib.Handle(out, _lib.vmf_classifier_free)
            else:
                handle = self._model
            _lib.check(_lib.vmf_classifier_partial_fit(handle.ptr, _lib.ptr(Xf), Xf.shape[0],
                                                       Xf.shape[1], ctypes.byref(labels.view)),
                       "vmf_classifier_partial_fit")
        except Exception:
            if old is None:
                for name in ("classes_", "_kind", "_index"):
                    self.__dict__.pop(name, None)
            else:
                self.classes_, self._kind, self._index = old
            raise
        self._declared = declared
        self._model = handle
        self._sync()
        return self

    # ------------------------------------------------------ prediction

    def _rows(self, X):
        # NaN and Inf are left to the library, which refuses them with a
        # message naming the row (a ValueError): numpy's own pass over the
        # data would cost a few percent of a prediction.
        check_is_fitted(self, "_model")
        return self._validate_data(X, dtype=[np.float32, np.float64], reset=False,
                                   force_all_finite=False)

    def _topk_c(self, X, k):
        n, d = X.shape
        cls = np.empty((n, k), dtype=np.int32)
        proba = np.empty((n, k), dtype=np.float64)
        _lib.score_rows(X, lambda A: _lib.vmf_classifier_predict_topk(
            self._model.ptr, _lib.ptr(A), n, d, k, _lib.ptr(cls), _lib.ptr(proba)),
            "vmf_classifier_predict_topk")
        return cls, proba

    def predict_topk(self, X, k=4):
        """The k most probable classes of each row, most probable first.

        Returns
        -------
        labels : ndarray of shape (n_samples, k), dtype of classes_
            Slots beyond the classes learned hold the first of classes_ with
            probability 0.
        proba : ndarray of shape (n_samples, k), float64
        """
        X = self._rows(X)
        if not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k={k!r} must be an integer >= 1")
        cls, proba = self._topk_c(X, int(k))
        idx = np.where(cls >= 0, self._c2s[np.maximum(cls, 0)], 0)
        return self.classes_[idx], proba

    def predict(self, X):
        """The most probable class of each row (vmf_classifier_predict_topk, k = 1)."""
        X = self._rows(X)
        cls, _ = self._topk_c(X, 1)
        return self.classes_[self._c2s[cls[:, 0]]]

    def predict_log_proba(self, X):
        """log P(class | x), columns in the order of classes_.

        Declared classes (``partial_fit(classes=...)``) with no rows yet
        have log-probability -inf.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        X = self._rows(X)
        n, d = X.shape
        nc = len(self._c2s)
        raw = np.empty((n, nc), dtype=np.float64)
        _lib.score_rows(X, lambda A: _lib.vmf_classifier_predict_log_proba(
            self._model.ptr, _lib.ptr(A), n, d, _lib.ptr(raw)),
            "vmf_classifier_predict_log_proba")
        if nc == len(self.classes_) and np.array_equal(self._c2s, np.arange(nc)):
            return raw
        out = np.full((n, len(self.classes_)), -np.inf)
        out[:, self._c2s] = raw
        return out

    def predict_proba(self, X):
        """P(class | x), columns in the order of classes_ (rows sum to 1).

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        return np.exp(self.predict_log_proba(X))

    def decision_function(self, X):
        """Log posterior of each class; for two classes, log P(c1|x) - log P(c0|x).

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
        """
        lp = self.predict_log_proba(X)
        if lp.shape[1] == 2:
            return lp[:, 1] - lp[:, 0]
        return lp

    def novelty_score(self, X):
        """How poorly every known class explains each row (libvmfmm's novelty).

        Needs a libvmfmm with ``vmf_classifier_novelty``; raises
        NotImplementedError otherwise.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        f = _lib.vmf_classifier_novelty
        if f is None:
            raise NotImplementedError(f"{_lib.library_path} has no vmf_classifier_novelty")
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_size_t] * 2 + [ctypes.c_void_p]
        X = self._rows(X)
        out = np.empty(X.shape[0], dtype=np.float64)
        _lib.score_rows(X, lambda A: f(self._model.ptr, _lib.ptr(A), A.shape[0], A.shape[1],
                                       _lib.ptr(out)), "vmf_classifier_novelty")
        return out

    # ------------------------------------------------------ model JSON

    def to_json(self):
        """The model JSON (``vmf_classifier_to_json``), as vmfd's ``GET /v1/model``."""
        check_is_fitted(self, "_model")
        p = ctypes.c_void_p()
        _lib.check(_lib.vmf_classifier_to_json(self._model.ptr, ctypes.byref(p)),
                   "vmf_classifier_to_json")
        return _lib.take_string(p)

    def save(self, path):
        """Write the model JSON to ``path`` (the bytes of ``GET /v1/model``),
        atomically (``vmf_file_write_atomic``)."""
        _lib.write_text(path, self.to_json())

    @classmethod
    def from_json(cls, text):
        """A fitted classifier from model JSON (classifier form) that predicts
        as the one that wrote it. Options not stored in the JSON keep their
        defaults."""
        raw = text.encode("utf-8")
        out = ctypes.c_void_p()
        _lib.check(_lib.vmf_classifier_from_json(raw, len(raw), ctypes.byref(out)),
                   "model JSON")
        est = cls()
        est._adopt(_lib.Handle(out, _lib.vmf_classifier_free))
        return est

    @classmethod
    def load(cls, path):
        """Read model JSON written by ``save`` or fetched from ``GET /v1/model``."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    def _adopt(self, handle):
        c = handle.ptr
        table = _lib.vmf_classifier_labels(c)
        n = _lib.vmf_classifier_n_classes(c)
        if _lib.vmf_label_table_is_str(table):
            labels = np.array([_lib.vmf_label_table_str(table, i).decode("utf-8")
                               for i in range(n)])
        else:
            labels = np.array([_lib.vmf_label_table_int(table, i) for i in range(n)],
                              dtype=np.int64)
        self._model = handle
        self._declared = False
        self._set_classes(np.unique(labels))
        self.n_features_in_ = int(_lib.vmf_classifier_dim(c))
        self._sync()

    # -------------------------------------------------------- pickling

    def __getstate__(self):
        state = super().__getstate__()
        if "_model" in state:
            buf, n = ctypes.c_void_p(), ctypes.c_size_t()
            _lib.check(_lib.vmf_classifier_save(self._model.ptr, ctypes.byref(buf),
                                                ctypes.byref(n)), "vmf_classifier_save")
            state = dict(state)
            state["_model"] = _lib.take_bytes(buf, n.value)
        return state

    def __setstate__(self, state):
        model = state.get("_model")
        if isinstance(model, bytes):
            out = ctypes.c_void_p()
            _lib.check(_lib.vmf_classifier_load(model, len(model), ctypes.byref(out)),
                       "vmf_classifier_load")
            state = dict(state)
            state["_model"] = _lib.Handle(out, _lib.vmf_classifier_free)
        super().__setstate__(state)
