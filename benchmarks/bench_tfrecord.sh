#!/usr/bin/env bash
# bench_tfrecord.sh - TFRecord read throughput and input-pipeline examples/s, Floe
# (bench_tfrecord) against TensorFlow's tf.data (peer_tfrecord.py) on the same files in
# one run, printing each figure and the Floe/TF ratio (> 1: Floe faster).  The peer is
# skipped when TensorFlow is not installed.
#
# Usage: bash benchmarks/bench_tfrecord.sh [--quick] [BUILD_DIR]   (default build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=
build=build
for arg in "$@"; do
    case $arg in
        --quick) quick=--quick ;;
        *) build=$arg ;;
    esac
done
ninja -C "$build" benchmarks/bench_tfrecord >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
env -u FLOE_PLUGIN_PATH "$build/benchmarks/bench_tfrecord" $quick | tee "$out"
read -r _ plain gz n < <(grep '^files ' "$out")
reps=5
[ -n "$quick" ] && reps=3
if python3 "benchmarks/peer_tfrecord.py" "$plain" "$gz" "$n" "$reps" >>"$out" 2>/dev/null; then
    grep '^tf ' "$out"
    echo
    for name in read_plain read_gzip pipeline pipeline_shuffle pipeline_seq; do
        f=$(awk -v k="$name" '$1 == "floe" && $2 == k {print $3}' "$out")
        t=$(awk -v k="$name" '$1 == "tf" && $2 == k {print $3}' "$out")
        awk -v k="$name" -v f="$f" -v t="$t" 'BEGIN {printf "ratio %-17s floe/tf = %.2f\n", k, f / t}'
    done
else
    echo "peer: TensorFlow not installed (pip install tensorflow-cpu), no ratios"
fi
