#!/usr/bin/env bash
# bench_cuda.sh - dev_cuda's benchmarks on a GPU machine:
#   1. MatMul against cuBLAS and Conv2D against cuDNN, called directly (bench_cuda);
#   2. the seed MLP and CNN, an epoch of `floe train` on the GPU against PyTorch on the
#      same GPU (peer_cuda.py).
# Usage: benchmarks/bench_cuda.sh [BUILD_DIR]   (exit 77 without a GPU)
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -x "$build/benchmarks/bench_cuda" ]; then
    echo "SKIP: $build/benchmarks/bench_cuda not built (no CUDA toolkit, or -Dbenchmarks=false)"
    exit 77
fi
export FLOE_PLUGIN_PATH="$build/plugins/dev_cpu:$build/plugins/ops_math:$build/plugins/ops_nn:$build/plugins/dev_cuda"
export FLOE_PLUGIN_SYSTEM_PATH=
"$build/tools/floe" devices
rc=0
"$build/benchmarks/bench_cuda" "${ITERS:-20}" || rc=$?
[ "$rc" -eq 77 ] && exit 77
[ "$rc" -ne 0 ] && exit "$rc"
py=${PYTHON:-python3}
for model in mlp cnn; do
    "$py" "$here/peer_cuda.py" "$build" --model "$model" --epochs "${EPOCHS:-3}" || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && exit "$rc"
done
exit 0
