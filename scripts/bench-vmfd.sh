#!/usr/bin/env bash
# bench-vmfd.sh - a second opinion on vmf_bench_vmfd's HTTP figures, from wrk
# (Debian package wrk, installed by scripts/install-deps.sh): predict throughput and
# latency percentiles for .npy bodies of 256 rows and of 1 row.
#
#   scripts/bench-vmfd.sh [--url http://HOST:PORT] [--connections C]
#                         [--duration SECONDS] [--build DIR]
#
# Without --url it starts DIR/bin/vmfd (default build/) on a free loopback
# port with a temporary state directory and feeds it one batch of 100,000
# rows (d = 512, 200 classes x 5 modes; noisy unit vectors around random
# directions, made with numpy) before measuring. With --url the daemon must
# already hold a d = 512 model and need no token.
set -euo pipefail

url="" conns=64 duration=10 build=build
while [ $# -gt 0 ]; do
    case "$1" in
    --url) url="$2"; shift 2 ;;
    --connections) conns="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-vmfd.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
command -v wrk >/dev/null || { echo "bench-vmfd.sh: needs wrk (apt-get install wrk)" >&2; exit 69; }
command -v curl >/dev/null || { echo "bench-vmfd.sh: needs curl" >&2; exit 69; }
PY=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/vmfd-wrk.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

$PY - "$work" <<'EOF'
import sys, numpy as np
work = sys.argv[1]
rng = np.random.default_rng(20261123)
d, classes, modes, n = 512, 200, 5, 100000
means = rng.standard_normal((classes * modes, d)).astype(np.float32)
means /= np.linalg.norm(means, axis=1, keepdims=True)
def rows(k):
    c = rng.integers(0, classes, k); m = rng.integers(0, modes, k)
    x = means[c * modes + m] + rng.standard_normal((k, d)).astype(np.float32) * 0.03
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype('<f4'), c.astype('<i8')
x, y = rows(n)
np.savez(f"{work}/batch.npz", X=x, y=y)
np.save(f"{work}/q256.npy", rows(256)[0])
np.save(f"{work}/q1.npy", rows(1)[0])
EOF

if [ -z "$url" ]; then
    "$build/bin/vmfd" --state-dir "$work/state" --listen 127.0.0.1:0 2>"$work/vmfd.log" &
    pid=$!
    for _ in $(seq 300); do [ -s "$work/state/vmfd.port" ] && break; sleep 0.1; done
    url="http://127.0.0.1:$(cat "$work/state/vmfd.port")"
    until curl -sf "$url/readyz" >/dev/null; do sleep 0.1; done
    curl -sf -X PUT -H 'Content-Type: application/x-npz' --data-binary @"$work/batch.npz" \
        "$url/v1/batches/wrk-$$" >/dev/null
    until curl -sf "$url/v1/batches/wrk-$$" | grep -q '"status":"applied"'; do sleep 0.2; done
fi
echo "vmfd at $url: $(curl -sf "$url/v1/status" | grep -o '"n_classes":[0-9]*,"components":[0-9]*')"

for rows in 256 1; do
    cat >"$work/post$rows.lua" <<EOF
local f = assert(io.open("$work/q$rows.npy", "rb"))
wrk.method = "POST"
wrk.path = "/v1/predict?top_k=4"
wrk.headers["Content-Type"] = "application/x-npy"
wrk.body = f:read("*a")
f:close()
EOF
    echo
    echo "== predict, $rows row(s) per request, $conns connections, ${duration}s"
    out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$work/post$rows.lua" "$url")
    echo "$out" | grep -E "Latency Distribution|^ +(50|90|99)%|Requests/sec|Non-2xx|Socket errors"
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    awk -v r="$rps" -v n="$rows" 'BEGIN { printf "  rows/s: %.0f\n", r * n }'
done
