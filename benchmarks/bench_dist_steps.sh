#!/bin/bash
# bench_dist_steps.sh BUILD_DIR [STEPS] - steps per second of the Fashion-MNIST MLP
# trained by 2 parameter servers + 2 workers (processes, loopback, TLS + token, sync,
# 2 x 64 examples a step) beside the single-process job (`floe train`, batch 128, one
# epoch = 469 steps).  Needs Fashion-MNIST and openssl.
set -eu
build=${1:-build}
steps=${2:-1000}
floe="$build/tools/floe"
export FLOE_PLUGIN_PATH=${FLOE_PLUGIN_PATH:-$build/plugins/dev_cpu:$build/plugins/ops_math:$build/plugins/ops_nn:$build/plugins/dist_grpc}
export FLOE_PLUGIN_SYSTEM_PATH=
here=$(dirname "$0")
dir=$(mktemp -d /tmp/floe-bench-dist-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
sh "$here/../scripts/make-test-ca.sh" "$dir/ca"
echo bench-token > "$dir/token"
sec=(--tls-ca "$dir/ca/ca.pem" --tls-cert "$dir/ca/server.pem" --tls-key "$dir/ca/server.key"
     --token-file "$dir/token")
spec0="ps=127.0.0.1:1,127.0.0.1:2;worker=127.0.0.1:3,127.0.0.1:4"
ports=()
for t in 0 1; do
    "$floe" server --cluster "$spec0" --job ps --task $t --bind 127.0.0.1:0 "${sec[@]}" \
        > "$dir/ps$t.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        port=$(sed -n 's/^ps [0-9]* serving on port \([0-9]*\).*/\1/p' "$dir/ps$t.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    ports+=("$port")
done
spec="ps=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]};worker=127.0.0.1:3,127.0.0.1:4"
"$floe" train --cluster "$spec" --task 1 --steps "$steps" "${sec[@]}" > "$dir/w1.log" 2>&1 &
pids+=($!)
"$floe" train --cluster "$spec" --task 0 --steps "$steps" "${sec[@]}" > "$dir/w0.log" 2>&1
wait "${pids[2]}"
dist=$(sed -n 's/.* \([0-9.]*\) steps\/s.*/\1/p' "$dir/w0.log")
dacc=$(sed -n 's/^Test accuracy: //p' "$dir/w0.log")
"$floe" train --epochs 1 --batch-size 128 --no-checkpoint > "$dir/single.log" 2>&1
secs=$(sed -n 's/.*Epoch 1\/1.* \([0-9.]*\)s.*/\1/p;s/.* - \([0-9.]*\)s - .*/\1/p' "$dir/single.log" | head -1)
sacc=$(sed -n 's/.*test accuracy: //p' "$dir/single.log")
single=$(awk -v s="$secs" 'BEGIN { printf "%.1f", 469 / s }')
echo "2 ps + 2 workers: $dist steps/s (128 examples a step), test accuracy $dacc after $steps steps"
echo "single process:   $single steps/s (batch 128, 469 steps in ${secs}s), test accuracy $sacc"
awk -v d="$dist" -v s="$single" 'BEGIN { printf "ratio distributed / single: %.2f\n", d / s }'
