#!/usr/bin/env bash
# The main job on its built-in default: installs what is missing, builds, starts
# a real vmfd on a temporary state directory, replays the 200-day synthetic
# stream through the six model families (vMFMM through vmfd, the others
# in-process), prints the summary table and the path of the plot, and stops
# the daemon cleanly.
#   scripts/run.sh [extra vmfsim run flags...]   e.g. --stream tests/data/fmnist-cce64
# Environment: VMF_PORT (default 18077), VMF_OUT (default results/replay).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release build >/dev/null

port=${VMF_PORT:-18077}
out=${VMF_OUT:-results/replay}
state=$(mktemp -d /tmp/vmfd-state.XXXXXX)
log="$state/vmfd.log"
export OPENBLAS_NUM_THREADS=1

build/bin/vmfd --state-dir "$state" --listen "127.0.0.1:$port" 2>"$log" &
vmfd_pid=$!
cleanup() {
    if kill -0 "$vmfd_pid" 2>/dev/null; then
        kill -TERM "$vmfd_pid"
        wait "$vmfd_pid" || true
    fi
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$vmfd_pid" 2>/dev/null; then
        echo "run.sh: vmfd exited during startup; its log:" >&2
        cat "$log" >&2
        exit 69
    fi
    sleep 0.1
done
echo "vmfd ready on 127.0.0.1:$port (state in $state)" >&2

build/bin/vmfsim run --via "http://127.0.0.1:$port" --output-dir "$out" "$@"
echo "daily curves: $out/daily.csv; summary: $out/summary.json; plots: $out/plots/" >&2
