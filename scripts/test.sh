#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. the clang-format check of every tracked C file (STYLE.md's format);
#   2. a Release build and all its tests;
#   3. an ASan+UBSan build and its tests (tests labelled "slow" are skipped
#      under the sanitizers, which would make them take too long; they run in
#      the Release pass; so are the Python tests, label "python": Debian's
#      python3 cannot load an ASan-instrumented libvmfmm without preloading
#      the runtime into the interpreter);
#   4. a ThreadSanitizer build and the daemon's tests (vmfd is the project's
#      multi-threaded part: a loop thread and the libuv worker pool);
#   5. the libFuzzer targets, built with clang and not run, so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/install-deps.sh
export OPENBLAS_NUM_THREADS=1
jobs=$(nproc)

echo "== Format check (clang-format)"
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run -Werror
else
    find core daemon config sim tests bench -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run -Werror
fi

echo "== Release build and tests"
bash scripts/build.sh release build
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ASan+UBSan build and tests"
bash scripts/build.sh asan build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE 'slow|python'

echo "== ThreadSanitizer build and daemon tests"
bash scripts/build.sh tsan build-tsan
# TSan's shadow memory needs the classic address-space layout; setarch -R
# turns off randomisation for these processes only.
TSAN_OPTIONS=halt_on_error=1:exitcode=66:second_deadlock_stack=1 \
    setarch "$(uname -m)" -R ctest --test-dir build-tsan --output-on-failure -j "$jobs" \
    -L 'daemon|e2e' -LE slow

echo "== Fuzz targets (built, not run)"
bash scripts/build.sh fuzz build-fuzz

echo "== All passes done in $(($(date +%s) - start)) s"
