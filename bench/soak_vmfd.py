#!/usr/bin/python3
"""Soak vmfd with many small batches: does its memory and store stay bounded?

Usage, from the top directory after a build:

  bench/soak_vmfd.py [--batches 3000] [--rows 60] [--vmfd build/bin/vmfd]

Starts vmfd (default configuration, keep_checkpoints = 10, inbox off) on a
temporary state directory, PUTs BATCHES JSON batches of ROWS rows drawn from
the fmnist-cce64 stream (keys b00000, b00001, ...; each applied batch writes
a checkpoint), with a 256-row predict after every tenth, and every 250
batches (once the queue has drained) prints vmfd's resident memory and the
sizes of vmfd.db and its WAL. At the end it prints the store's space by table
(SQLite's dbstat) and the free pages, stops vmfd with SIGTERM and removes the
directory. A leak or an unbounded table shows as a column that keeps
growing after the per-class samples are full (a few hundred batches).
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STREAM = os.path.join(HERE, "..", "tests", "data", "fmnist-cce64.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--vmfd", default=os.path.join(HERE, "..", "build", "bin", "vmfd"))
    a = ap.parse_args()
    x = np.load(STREAM + "X.npy")
    y = np.load(STREAM + "y.npy")
    split = np.load(STREAM + "split.npy")
    train, test = np.where(split == 0)[0], np.where(split == 1)[0][:256]
    top = tempfile.mkdtemp(prefix="vmfd-soak.")
    state = os.path.join(top, "state")
    conf = os.path.join(top, "vmfd.conf")
    with open(conf, "w") as f:
        f.write("[store]\nkeep_checkpoints = 10\n[inbox]\nenabled = false\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    with open(os.path.join(top, "vmfd.log"), "w") as log:
        proc = subprocess.Popen([a.vmfd, "--config", conf, "--state-dir", state,
                                 "--listen", "127.0.0.1:0"], stderr=log, env=env)
    try:
        port_file = os.path.join(state, "vmfd.port")
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        port = int(open(port_file).read().strip())

        def call(method, path, body=None):
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return r.read()

        def rss_mib():
            with open("/proc/%d/status" % proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS"):
                        return int(line.split()[1]) // 1024
            return -1

        def mib(name):
            path = os.path.join(state, name)
            return os.path.getsize(path) >> 20 if os.path.exists(path) else 0

        rng = np.random.default_rng(0)
        predict = json.dumps({"embeddings": x[test].tolist(), "top_k": 4}).encode()
        t0 = time.time()
        print("batch   rss MiB   vmfd.db MiB   wal MiB   seconds")
        for i in range(a.batches):
            idx = rng.choice(train, a.rows, replace=False)
            body = {"embeddings": x[idx].tolist(), "labels": [int(v) for v in y[idx]]}
            call("PUT", "/v1/batches/b%05d" % i, json.dumps(body).encode())
            if i % 10 == 9:
                try:
                    call("POST", "/v1/predict", predict)
                except urllib.error.HTTPError as e:
                    if e.code != 409:  # 409 no_model: nothing applied yet
                        raise
            if i % 250 == 0 or i == a.batches - 1:
                while b'"applied"' not in call("GET", "/v1/batches/b%05d" % i):
                    time.sleep(0.05)
                print("%5d   %7d   %11d   %7d   %7.0f" % (i, rss_mib(), mib("vmfd.db"),
                                                          mib("vmfd.db-wal"), time.time() - t0),
                      flush=True)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(state, "vmfd.db"), uri=True)
        try:
            rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name "
                              "ORDER BY 2 DESC LIMIT 5").fetchall()
            print("space by table: " + ", ".join("%s %.1f MiB" % (n, s / 2**20) for n, s in rows))
        except sqlite3.OperationalError as e:  # dbstat is a compile-time option
            print("space by table: unavailable (%s)" % e)
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
        print("free pages: %.1f MiB" % (free * page / 2**20))
        db.close()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(top)
    print("vmfd exit status %d" % proc.returncode)


if __name__ == "__main__":
    main()
