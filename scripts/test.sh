#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: a Release build, then
# an ASan+UBSan build (tests labelled "slow" are skipped under the sanitizers,
# which would make them take too long; they run in the Release pass). The
# Python tests (label "python") run only in the Release pass: Debian's
# python3 cannot load an ASan-instrumented libvmfmm without preloading the
# runtime into the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OPENBLAS_NUM_THREADS=1
jobs=$(nproc)

echo "== Release build and tests"
bash scripts/build.sh release build
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ASan+UBSan build and tests"
bash scripts/build.sh asan build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE 'slow|python'
