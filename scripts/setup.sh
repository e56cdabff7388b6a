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
    # libfloe_io: protobuf-c (GraphDef, Example, events), libpng (TensorBoard images)
    libprotobuf-c-dev protobuf-c-compiler libpng-dev
    # fs_s3 (libcurl with AWS SigV4), dist_grpc (gRPC and protobuf)
    libcurl4-openssl-dev libgrpc-dev libgrpc++-dev protobuf-compiler protobuf-compiler-grpc
    # fs_s3: S3's XML answers (listings, errors, multipart) parsed by libxml2
    libxml2-dev
    libssl-dev openssl
    # debian/ packaging (dpkg-buildpackage)
    debhelper dpkg-dev fakeroot lintian
    # benchmarks: the optional numpy peer
    python3 python3-numpy python3-pip
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# Python packages from PyPI for the tests that need a real peer process: moto's S3
# server (fs_s3 tests) and TensorBoard's event reader (summary tests).  Optional: a
# test whose package is missing reports itself skipped with the reason.
python_packages=("moto[server]" tensorboard)
if [ "${FLOE_SKIP_PIP:-0}" != 1 ] && command -v python3 >/dev/null; then
    if ! python3 -c "import moto, tensorboard" 2>/dev/null; then
        python3 -m pip install --quiet --disable-pip-version-check "${python_packages[@]}" \
            >/dev/null 2>&1 || echo "setup.sh: pip install ${python_packages[*]} failed; tests that need them will be skipped" >&2
    fi
fi

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
