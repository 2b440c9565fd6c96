#!/usr/bin/env bash
# Configures and builds one flavour of vmfmm.
#   scripts/build.sh [release|asan|tsan|fuzz] [build-dir]
# release: -O2 with warnings as errors in CI; asan: ASan+UBSan, RelWithDebInfo;
# tsan: ThreadSanitizer, RelWithDebInfo; fuzz: clang with the libFuzzer
# targets of tests/fuzz (built, not run: CI only checks that they compile).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
dir=${2:-build}
[ "$flavour" != release ] && [ -z "${2:-}" ] && dir=build-$flavour
werror=OFF
[ "${CI:-}" = true ] && werror=ON
case "$flavour" in
release) args=(-DCMAKE_BUILD_TYPE=Release) ;;
asan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMF_SANITIZE=address,undefined) ;;
tsan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMF_SANITIZE=thread) ;;
fuzz) args=(-DCMAKE_C_COMPILER=clang -DVMF_FUZZ=ON) ;;
*) echo "usage: scripts/build.sh [release|asan|tsan|fuzz] [build-dir]" >&2; exit 64 ;;
esac
cmake -S . -B "$dir" -DVMF_WERROR=$werror "${args[@]}" >/dev/null
if [ "$flavour" = fuzz ]; then
    cmake --build "$dir" -j "$(nproc)" --target fuzz_npy fuzz_npz fuzz_csv fuzz_vmfd_payload
else
    cmake --build "$dir" -j "$(nproc)"
fi
