#!/usr/bin/env bash
# run.sh - builds Floe's benchmarks and runs them all, printing each figure with its target.
#
# Usage: bash benchmarks/run.sh [--quick] [BUILD_DIR]     (BUILD_DIR defaults to build)
#
# Runs bench_executor (cost per node and per run), bench_matmul (MatMul through a session vs
# dnnl_sgemm in the same process), bench_startup (process start to first result, peak RSS),
# then the optional Python peer (numpy/torch matmul), and prints the library sizes.  The
# build tree's plugins are measured (FLOE_PLUGIN_PATH is ignored).  The output is also
# saved in benchmarks/results/.  Figures from a shared machine are noisy: compare ratios
# measured in one run, never lone absolute times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=
build=build
for arg in "$@"; do
    case $arg in
        --quick) quick=--quick ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
        *) build=$arg ;;
    esac
done

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >/dev/null
fi
if ! meson introspect "$build" --buildoptions | grep -q '"name": "benchmarks", "value": true'; then
    meson configure "$build" -Dbenchmarks=true >/dev/null
fi
ninja -C "$build" -j "${JOBS:-$(nproc)}" >/dev/null

mkdir -p benchmarks/results
out=benchmarks/results/$(date +%Y%m%d-%H%M%S).txt

{
    echo "== Floe benchmarks $(git rev-parse --short HEAD 2>/dev/null || echo '?') ${quick:+(quick)}"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (left as the machine sets it)"
    lib=$(readlink -f "$build/core/libfloe.so")
    echo "libfloe.so: $(( $(stat -c %s "$lib") / 1024 )) KiB (target <= 5 MB)"
    for p in "$build"/plugins/*/floe_*.so; do
        echo "$(basename "$p"): $(( $(stat -c %s "$p") / 1024 )) KiB"
    done
    echo
    for b in bench_executor bench_matmul bench_startup; do
        if [ -x "$build/benchmarks/$b" ]; then
            env -u FLOE_PLUGIN_PATH "$build/benchmarks/$b" $quick || echo "$b: FAILED (exit $?)"
        else
            echo "$b: not built (bench_matmul needs oneDNN)"
        fi
        echo
    done
    python=
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then
            python=$p
            break
        fi
    done
    "${python:-python3}" benchmarks/peer_matmul.py $quick || echo "peer_matmul.py: FAILED (exit $?)"
    echo
    echo "== Summary"
} 2>&1 | tee "$out"
grep -E 'MET|MISSED|FAILED' "$out" || true
echo "(saved in $out)"
! grep -q 'FAILED' "$out"
