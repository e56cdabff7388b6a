#!/usr/bin/env bash
# setup.sh - installs every Debian 12 package Floe's build, tests and benchmarks need.
#
# Run as root on a fresh Debian 12 machine (sudo bash scripts/setup.sh).  Idempotent and
# quiet: when every package is already installed it does nothing and needs no root and no
# network.  Everything comes from Debian; nothing is fetched from elsewhere.
set -euo pipefail

packages=(
    # build
    meson ninja-build gcc g++ pkg-config
    # libfloe and the plugins
    libdlpack-dev libdnnl-dev libopenblas-dev
    # tests: cmocka, sanitizer runtimes (gcc's come with gcc; clang's for fuzzing builds)
    libcmocka-dev clang libclang-rt-14-dev
    # ABI checks (abidw, abidiff) and formatting
    abigail-tools clang-format
    # libfloe_keras (IDX files are gzip) and the main job's data (floe train)
    zlib1g-dev dataset-fashion-mnist
    # benchmarks: the optional numpy peer
    python3 python3-numpy
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: these packages are missing and installing them needs root:" >&2
    echo "  ${missing[*]}" >&2
    echo "run: sudo bash scripts/setup.sh" >&2
    exit 1
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
