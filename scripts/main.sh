#!/usr/bin/env bash
# main.sh - the project's main job for now: set-up, build, then show Floe working.
#
# 1. scripts/setup.sh (Debian packages; root only when something is missing);
# 2. configure and build build/ (release-like: debugoptimized, plugins at -O3);
# 3. `floe plugins` and `floe devices` on the build tree's plugins;
# 4. examples/hello_graph: a graph (MatMul + AddV2 from ops_math) run in a session;
# 5. the quick benchmarks (benchmarks/run.sh --quick): executor cost, MatMul vs oneDNN,
#    start-up time and memory;
# 6. `floe run`: a frozen TensorFlow CNN (tests/fixtures/tf/cnn.pb, made by TensorFlow) on
#    its .npy input (TensorFlow's own output is tests/fixtures/tf/cnn_y.npy; test_tf_fixtures
#    checks they agree within 1e-5);
# 7. `floe train`: the seed's Keras example (Flatten, Dense 128 relu, Dense 10 softmax, Adam
#    1e-3, batch 32, 5 epochs) on Fashion-MNIST, test accuracy, a checkpoint and TensorBoard
#    logs in build/ (`tensorboard --logdir build/floe-mlp-logs` shows the curves).
# Exits non-zero if any step fails.  JOBS sets the build parallelism (default: all cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

build=build
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >/dev/null
fi
echo "=== build ($build)"
ninja -C "$build" -j "${JOBS:-$(nproc)}" >"$build/ninja.log" 2>&1 || { tail -n 60 "$build/ninja.log"; exit 1; }

# Run from the build tree: its plugin directories, never an installed Floe.
plugin_path=$(find "$build/plugins" -name 'floe_*.so' -printf '%h\n' | sort -u | paste -sd:)
export FLOE_PLUGIN_PATH=$plugin_path
export FLOE_PLUGIN_SYSTEM_PATH=

echo "=== floe plugins"
"$build/tools/floe" plugins
echo "=== floe devices"
"$build/tools/floe" devices
echo "=== examples/hello_graph"
"$build/examples/hello_graph"
echo "=== quick benchmarks"
bash benchmarks/run.sh --quick "$build"
echo "=== floe run (TensorFlow's frozen CNN)"
"$build/tools/floe" run tests/fixtures/tf/cnn.pb --input x=tests/fixtures/tf/cnn_x.npy \
    --output Identity --output-file Identity="$build/cnn_out.npy"
echo "=== floe train (Fashion-MNIST MLP, 5 epochs)"
"$build/tools/floe" train --checkpoint "$build/floe-mlp-ckpt" --logdir "$build/floe-mlp-logs"
