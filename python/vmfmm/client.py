"""vmfmm.Client: vmfd's HTTP API with the standard library (urllib) and numpy.

Every error answer of vmfd is ``{"error": code, "detail": text}`` with an HTTP
status (docs/vmfd.md); the client raises the ``VmfdError`` subclass of that
status, carrying ``status``, ``code`` and ``detail``.

Retries: a PUT of a batch is idempotent on vmfd's side (same key and content
answer 200 with the batch's status and apply nothing twice), so ``ingest``
retries on connection failures and on 503 (queue full, shutting down,
recovering), waiting ``Retry-After`` seconds when vmfd sends it and an
exponential back-off otherwise. Reads and ``predict`` retry the same way;
``checkpoint`` and ``restore`` never retry (they are not idempotent).
"""

import http.client
import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple

import numpy as np


class VmfdError(Exception):
    """An error answer of vmfd (or no answer at all: status 0).

    Attributes
    ----------
    status : int
        HTTP status (0 when the daemon could not be reached).
    code : str
        vmfd's error code (``"conflict"``, ``"bad_dimension"``, ...).
    detail : str
        vmfd's explanation.
    retry_after : float or None
        Seconds from a ``Retry-After`` header.
    """

    def __init__(self, status, code, detail, retry_after=None):
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"vmfd {status} {code}: {detail}" if status else f"vmfd: {detail}")


class VmfdConnectionError(VmfdError, ConnectionError):
    """The daemon could not be reached (after the retries)."""


class VmfdBadRequest(VmfdError, ValueError):
    """400: malformed body, key or parameter (bad_npz, bad_json, bad_key, bad_top_k, ...)."""


class VmfdUnauthorized(VmfdError, PermissionError):
    """401: missing or wrong bearer token."""


class VmfdNotFound(VmfdError, LookupError):
    """404: unknown batch key, checkpoint or path."""


class VmfdMethodNotAllowed(VmfdError):
    """405: a known path with another method."""


class VmfdTimeout(VmfdError, TimeoutError):
    """408: the daemon timed the request out."""


class VmfdConflict(VmfdError):
    """409: the key holds other content (``conflict``), or no model yet (``no_model``)."""


class VmfdPayloadTooLarge(VmfdError, ValueError):
    """413: body over max_body_bytes, or too many rows for one predict."""


class VmfdUnsupportedMediaType(VmfdError, ValueError):
    """415: a content type vmfd does not take."""


class VmfdUnprocessable(VmfdError, ValueError):
    """422: well-formed but unusable data (bad_dimension, non_finite, zero_vector, labels...)."""


class VmfdUnavailable(VmfdError):
    """503: queue full, shutting down, not ready or too many connections."""


class VmfdServerError(VmfdError):
    """Any other 5xx."""


_BY_STATUS = {
    400: VmfdBadRequest, 401: VmfdUnauthorized, 404: VmfdNotFound, 405: VmfdMethodNotAllowed,
    408: VmfdTimeout, 409: VmfdConflict, 413: VmfdPayloadTooLarge,
    415: VmfdUnsupportedMediaType, 422: VmfdUnprocessable, 503: VmfdUnavailable,
}

Prediction = namedtuple("Prediction",
                        ["labels", "probabilities", "model_version", "raw", "novelty"])
Prediction.__doc__ = """Answer of ``Client.predict``.

labels : ndarray of shape (n_rows, top_k) (int64 or str)
probabilities : ndarray of shape (n_rows, top_k), float64
model_version : int
raw : dict, the whole JSON answer (fields added by later vmfd versions too)
novelty : ndarray of shape (n_rows,), float64, or None
    Each row's novelty score when vmfd's answer carries one ("novelty"
    in every prediction), else None.
"""


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _error_from(status, body, headers):
    try:
        doc = json.loads(body.decode("utf-8"))
        code, detail = doc.get("error", ""), doc.get("detail", "")
    except (ValueError, AttributeError):
        code, detail = "", body.decode("utf-8", "replace")[:200]
    retry = headers.get("Retry-After") if headers is not None else None
    try:
        retry = float(retry) if retry is not None else None
    except ValueError:
        retry = None
    cls = _BY_STATUS.get(status, VmfdServerError if status >= 500 else VmfdError)
    return cls(status, code, detail, retry)


class Client:
    """A client of one vmfd.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``"http://127.0.0.1:8077"``.
    token : str or None
        Bearer token, when vmfd has ``server.token_file``.
    timeout : float, default=30
        Seconds per request.
    retries : int, default=5
        Further attempts of an idempotent request after a connection
        failure or a 503.
    backoff : float, default=0.2
        First wait in seconds without ``Retry-After``; doubles each time.
    """

    def __init__(self, url, token=None, timeout=30.0, retries=5, backoff=0.2):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def _once(self, method, path, body, ctype):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            raise _error_from(e.code, e.read(), e.headers) from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise VmfdConnectionError(0, "unreachable", f"{self.url}: {reason}") from None

    def _request(self, method, path, body=None, ctype=None, retry=True):
        wait = self.backoff
        for attempt in range(self.retries + 1 if retry else 1):
            try:
                return self._once(method, path, body, ctype)
            except (VmfdConnectionError, VmfdUnavailable) as e:
                if attempt == (self.retries if retry else 0):
                    raise
                time.sleep(e.retry_after if e.retry_after is not None else wait)
                wait *= 2
        raise AssertionError("unreachable")

    def _json(self, method, path, body=None, ctype=None, retry=True):
        status, data = self._request(method, path, body, ctype, retry)
        return json.loads(data.decode("utf-8"))

    # ---------------------------------------------------------- batches

    def ingest(self, key, X, y):
        """PUT a labelled batch as ``.npz`` (X float32, y ints or strings).

        Safe to repeat: the same key and content answer with the batch's
        current status. Returns vmfd's answer, e.g.
        ``{"key", "status": "queued", "rows", "seq"}`` (202) or the batch
        record (200). ``VmfdConflict`` when the key holds other content.
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        y = np.asarray(y)
        if y.dtype.kind in "iub":
            y = y.astype(np.int64)
        elif y.dtype.kind in "OUS":
            y = y.astype(str)
        buf = io.BytesIO()
        np.savez(buf, X=X, y=y)
        path = "/v1/batches/" + urllib.parse.quote(key, safe="")
        return self._json("PUT", path, buf.getvalue(), "application/x-npz")

    def batch(self, key):
        """The record of batch ``key``: status queued | applied | rejected | superseded."""
        return self._json("GET", "/v1/batches/" + urllib.parse.quote(key, safe=""))

    # ------------------------------------------------------- prediction

    def predict(self, X, top_k=4):
        """Top-k labels and probabilities of each row of X (an .npy body).

        Returns
        -------
        Prediction
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        doc = self._json("POST", f"/v1/predict?top_k={int(top_k)}", _npy(X), "application/x-npy")
        preds = doc.get("predictions", [])
        labels = np.array([p["labels"] for p in preds])
        proba = np.array([p["probabilities"] for p in preds], dtype=np.float64)
        novelty = None
        if preds and all("novelty" in p for p in preds):
            novelty = np.array([p["novelty"] for p in preds], dtype=np.float64)
        return Prediction(labels, proba, doc.get("model_version"), doc, novelty)

    # ---------------------------------------------------------- state

    def status(self):
        """``GET /v1/status`` as a dict."""
        return self._json("GET", "/v1/status")

    def checkpoints(self):
        """The checkpoints, newest first (list of dicts)."""
        return self._json("GET", "/v1/checkpoints")["checkpoints"]

    def checkpoint(self):
        """Write a checkpoint now; returns its id."""
        return self._json("POST", "/v1/checkpoints", b"", None, retry=False)["checkpoint_id"]

    def restore(self, checkpoint_id):
        """Roll back to checkpoint ``checkpoint_id`` (later batches become superseded)."""
        return self._json("POST", f"/v1/checkpoints/{int(checkpoint_id)}/restore", b"", None,
                          retry=False)

    def model(self):
        """The model JSON text, byte for byte as ``GET /v1/model`` answers.

        ``VonMisesFisherClassifier.from_json(client.model())`` gives a local
        classifier that predicts as the daemon.
        """
        return self._request("GET", "/v1/model")[1].decode("utf-8")

    def healthy(self):
        """True when ``GET /healthz`` answers 200."""
        try:
            return self._once("GET", "/healthz", None, None)[0] == 200
        except VmfdError:
            return False

    def ready(self):
        """True when ``GET /readyz`` answers 200 (recovery done)."""
        try:
            return self._once("GET", "/readyz", None, None)[0] == 200
        except VmfdError:
            return False
