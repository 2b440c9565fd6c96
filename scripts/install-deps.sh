#!/usr/bin/env bash
# Installs every Debian package vmfmm needs to build, test and run.
# Idempotent: when everything is present it prints nothing and touches no
# package list. Run as root (or through sudo) on Debian 12.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang-format clang libclang-rt-dev
    libopenblas-dev libjansson-dev libzip-dev libcmocka-dev
    libuv1-dev libsqlite3-dev sqlite3 node-llhttp libinih-dev
    libxgboost-dev liblinear-dev libcairo2-dev
    python3 python3-mpmath python3-numpy
    systemd curl wrk
    python3-faiss
    python3-pytest python3-sklearn python3-pandas
    libjpeg-dev libpng-dev python3-torch python3-pil python3-regex
    openmpi-bin libopenmpi-dev
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
