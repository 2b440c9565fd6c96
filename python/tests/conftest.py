"""Shared fixtures of the vmfmm Python tests (run by ctest, label "python").

ctest sets VMFMM_LIBRARY (the built libvmfmm), VMF_BIN_DIR, VMF_BUILD_DIR and
VMF_SOURCE_DIR; run by hand, the defaults below assume a build in ./build.
"""

import os
import socket
import subprocess
import time

import numpy as np
import pytest

SOURCE_DIR = os.environ.get("VMF_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("VMF_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
BIN_DIR = os.environ.get("VMF_BIN_DIR", os.path.join(BUILD_DIR, "bin"))
DATA = os.path.join(SOURCE_DIR, "tests", "data", "fmnist-cce64")


def fmnist():
    """X float32 [n][64], y int32, split uint8, day int16 of the test stream."""
    return tuple(np.load(f"{DATA}.{part}.npy") for part in ("X", "y", "split", "day"))


def stream_days(X, y, split, day):
    """The stream rows of each day in vmfsim's order (file order within a day)."""
    out = {}
    for t in np.unique(day[split == 0]):
        sel = (split == 0) & (day == t)
        out[int(t)] = (X[sel], y[sel])
    return out


class Vmfd:
    """A vmfd of the build tree on an ephemeral port, in a temporary state dir."""

    def __init__(self, state_dir, extra=()):
        self.state_dir = str(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.proc = subprocess.Popen(
            [os.path.join(BIN_DIR, "vmfd"), "--state-dir", self.state_dir, "--listen",
             "127.0.0.1:0", *extra],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.state_dir, "log"), "w"))
        port_file = os.path.join(self.state_dir, "vmfd.port")
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vmfd exited: " + open(os.path.join(self.state_dir,
                                                                       "log")).read())
            if os.path.exists(port_file):
                text = open(port_file).read().strip()
                if text:
                    self.url = f"http://127.0.0.1:{int(text)}"
                    if self._ready():
                        return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("vmfd did not become ready")

    def _ready(self):
        try:
            with socket.create_connection((self.url.split("//")[1].split(":")[0],
                                           int(self.url.rsplit(":", 1)[1])), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def vmfd(tmp_path):
    d = Vmfd(tmp_path / "state")
    yield d
    d.stop()
