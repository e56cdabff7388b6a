#!/usr/bin/env bash
# run-gpu-tests.sh - what a session with a GPU machine runs for dev_cuda, from the
# repository root:
#
#   plugins/dev_cuda/run-gpu-tests.sh [BUILD_DIR]     (default build-gpu)
#
# 1. configures (-Dcuda=enabled: fail loudly if the toolkit is not found) and builds;
# 2. `floe plugins` / `floe devices`: dev_cuda loaded, the GPUs listed;
# 3. the full test suite (test_dev_cuda runs, not skipped: conformance of every GPU
#    kernel against the CPU, optimizers, copies, memory statistics, placement, the MLP
#    trained on the GPU to the CPU's accuracy);
# 4. the benchmarks: MatMul vs cuBLAS, Conv2D vs cuDNN, MLP/CNN epochs vs PyTorch on the
#    same GPU (benchmarks/bench_cuda.sh).
# Everything is logged under BUILD_DIR/gpu-logs/.  Exits non-zero at the first failure.
set -euo pipefail
build=${1:-build-gpu}
jobs=${JOBS:-$(nproc)}
if [ ! -d "$build" ]; then
    meson setup "$build" -Dcuda=enabled
fi
ninja -C "$build" -j"$jobs"
logs=$build/gpu-logs
mkdir -p "$logs"
export FLOE_PLUGIN_PATH="$build/plugins/dev_cpu:$build/plugins/ops_math:$build/plugins/ops_nn:$build/plugins/dev_cuda"
export FLOE_PLUGIN_SYSTEM_PATH=
nvidia-smi 2>&1 | tee "$logs/nvidia-smi.txt" || true
"$build/tools/floe" plugins | tee "$logs/plugins.txt"
"$build/tools/floe" devices | tee "$logs/devices.txt"
grep -q "^/device:GPU:0" "$logs/devices.txt" || { echo "run-gpu-tests: no GPU device registered" >&2; exit 1; }
unset FLOE_PLUGIN_PATH FLOE_PLUGIN_SYSTEM_PATH
# test_dev_cuda must run here, not skip.
meson test -C "$build" --print-errorlogs test_dev_cuda test_dev_cuda_host 2>&1 | tee "$logs/test-dev-cuda.txt"
if grep -q "test_dev_cuda .*SKIP" "$logs/test-dev-cuda.txt"; then
    echo "run-gpu-tests: test_dev_cuda skipped on a GPU machine" >&2
    exit 1
fi
meson test -C "$build" --print-errorlogs --num-processes 2 2>&1 | tee "$logs/test-suite.txt"
benchmarks/bench_cuda.sh "$build" 2>&1 | tee "$logs/bench.txt"
echo "run-gpu-tests: all passed; logs in $logs"
