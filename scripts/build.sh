#!/usr/bin/env bash
# Configures and builds one flavour of vmfmm.
#   scripts/build.sh [release|asan] [build-dir]
# release: -O2 with warnings as errors in CI; asan: ASan+UBSan, RelWithDebInfo.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
dir=${2:-build}
[ "$flavour" = asan ] && [ -z "${2:-}" ] && dir=build-asan
werror=OFF
[ "${CI:-}" = true ] && werror=ON
case "$flavour" in
release) args=(-DCMAKE_BUILD_TYPE=Release) ;;
asan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMF_SANITIZE=address,undefined) ;;
*) echo "usage: scripts/build.sh [release|asan] [build-dir]" >&2; exit 64 ;;
esac
cmake -S . -B "$dir" -DVMF_WERROR=$werror "${args[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
