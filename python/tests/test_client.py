"""vmfmm.Client against a real vmfd of the build tree (and, for retries, a
scripted standard-library HTTP server)."""

import http.server
import json
import threading
import time

import numpy as np
import pytest

import vmfmm
from conftest import Vmfd, fmnist, stream_days
from vmfmm import Client, VonMisesFisherClassifier
from vmfmm import client as vc


@pytest.fixture(scope="module")
def data():
    X, y, split, day = fmnist()
    return stream_days(X, y, split, day), X[split == 1][:200]


def wait_applied(c, key, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = c.batch(key)
        if rec["status"] != "queued":
            return rec
        time.sleep(0.05)
    raise AssertionError(f"{key} still queued")


def test_ingest_predict_model_checkpoints_restore(vmfd, data):
    days, Xt = data
    c = Client(vmfd.url)
    local = VonMisesFisherClassifier()
    for t in range(1, 7):
        ans = c.ingest(f"day-{t:03d}", *days[t])
        assert ans["status"] == "queued" and ans["rows"] == len(days[t][0])
        local.partial_fit(*days[t])
    for t in range(1, 7):
        assert wait_applied(c, f"day-{t:03d}")["status"] == "applied"

    # Idempotent: the same batch again applies nothing and says so.
    again = c.ingest("day-001", *days[1])
    assert again["status"] == "applied"
    with pytest.raises(vc.VmfdConflict) as e:
        c.ingest("day-001", *days[2])
    assert e.value.status == 409 and e.value.code == "conflict"

    st = c.status()
    assert st["rows_seen"] == local.rows_seen_ and st["dim"] == 64
    # GET /v1/model is byte for byte the local classifier's model JSON.
    assert c.model() == local.to_json()
    remote = VonMisesFisherClassifier.from_json(c.model())
    np.testing.assert_array_equal(remote.predict(Xt), local.predict(Xt))

    pred = c.predict(Xt, top_k=3)
    labels, proba = local.predict_topk(Xt, 3)
    np.testing.assert_array_equal(pred.labels, labels)
    np.testing.assert_allclose(pred.probabilities, proba, rtol=1e-4)
    assert pred.model_version >= 6
    # novelty: present once vmfd's predict answer carries it (issue 12)
    if all("novelty" in p for p in pred.raw["predictions"]):
        assert pred.novelty.shape == (len(Xt),)
    else:
        assert pred.novelty is None

    cp = c.checkpoint()
    assert any(x["id"] == cp for x in c.checkpoints())
    c.ingest("day-007", *days[7])
    assert wait_applied(c, "day-007")["status"] == "applied"
    ans = c.restore(cp)
    assert ans["restored"] == cp
    assert c.batch("day-007")["status"] == "superseded"
    assert c.model() == local.to_json()  # back to six days


def test_documented_errors_raise_their_exceptions(vmfd, data):
    days, Xt = data
    c = Client(vmfd.url, retries=0)
    with pytest.raises(vc.VmfdConflict) as e:
        c.predict(Xt[:2])
    assert e.value.code == "no_model"
    c.ingest("d1", *days[1])
    wait_applied(c, "d1")
    with pytest.raises(vc.VmfdUnprocessable) as e:
        c.predict(Xt[:2, :32])
    assert e.value.status == 422 and e.value.code == "bad_dimension"
    X0 = days[2][0].copy()
    X0[3] = 0
    with pytest.raises(vc.VmfdUnprocessable, match="zero_vector"):
        c.ingest("d2", X0, days[2][1])
    with pytest.raises(vc.VmfdNotFound) as e:
        c.batch("never-sent")
    assert e.value.code == "not_found"
    with pytest.raises(vc.VmfdNotFound):
        c.restore(999999)
    with pytest.raises(vc.VmfdBadRequest) as e:
        c.ingest(".hidden", *days[2])
    assert e.value.code == "bad_key"
    with pytest.raises(vc.VmfdBadRequest, match="bad_top_k"):
        c.predict(Xt[:2], top_k=0)
    # Every VmfdError is an Exception with status, code and detail.
    assert isinstance(e.value, vmfmm.VmfdError) and e.value.detail


def test_bearer_token(tmp_path, data):
    days, _ = data
    (tmp_path / "token").write_text("s3cret\n")
    conf = tmp_path / "vmfd.conf"
    conf.write_text(f"[server]\ntoken_file = {tmp_path / 'token'}\n")
    d = Vmfd(tmp_path / "state", ["--config", str(conf)])
    try:
        with pytest.raises(vc.VmfdUnauthorized) as e:
            Client(d.url).status()
        assert e.value.code == "unauthorized"
        with pytest.raises(vc.VmfdUnauthorized, match="invalid_token"):
            Client(d.url, token="wrong").status()
        assert Client(d.url, token="s3cret").ingest("a", *days[1])["status"] == "queued"
    finally:
        d.stop()


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers 503 + Retry-After twice, then 202; records every body."""

    answers = []
    bodies = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Scripted.bodies.append((self.path, self.headers["Content-Type"], body))
        status, payload = Scripted.answers.pop(0)
        data = json.dumps(payload).encode()
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_ingest_retries_503_with_the_same_body():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        Scripted.bodies.clear()
        Scripted.answers[:] = [(503, {"error": "queue_full", "detail": "full"})] * 2 + \
            [(202, {"key": "k", "status": "queued", "rows": 2, "seq": 1})]
        c = Client(f"http://127.0.0.1:{srv.server_port}", retries=3, backoff=0.01)
        X = np.eye(2, 4, dtype=np.float32)
        assert c.ingest("k", X, [1, 2])["status"] == "queued"
        assert len(Scripted.bodies) == 3
        assert len({b for b in Scripted.bodies}) == 1
        path, ctype, body = Scripted.bodies[0]
        assert path == "/v1/batches/k" and ctype == "application/x-npz"
        import io
        npz = np.load(io.BytesIO(body))
        np.testing.assert_array_equal(npz["X"], X)
        np.testing.assert_array_equal(npz["y"], [1, 2])
        # Out of retries: the 503 is raised with its Retry-After.
        Scripted.answers[:] = [(503, {"error": "shutting_down", "detail": "bye"})] * 2
        with pytest.raises(vc.VmfdUnavailable) as e:
            Client(c.url, retries=1, backoff=0.01).ingest("k", X, [1, 2])
        assert e.value.code == "shutting_down" and e.value.retry_after == 0
    finally:
        srv.shutdown()


def test_unreachable_daemon():
    with pytest.raises(vc.VmfdConnectionError, match="unreachable|127.0.0.1:9"):
        Client("http://127.0.0.1:9", retries=1, backoff=0.01, timeout=2).status()
