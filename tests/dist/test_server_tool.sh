#!/bin/bash
# test_server_tool.sh FLOE SOURCE_ROOT - `floe server` and `floe train --cluster`: two
# parameter servers (ports picked at run time, --bind 127.0.0.1:0) and two workers as
# processes over TLS with a token file; the chief prints a test accuracy.  Also: the
# usage errors, and --insecure refused off loopback.  Every process is killed on exit;
# every wait is bounded.  Exit 77 without openssl or Fashion-MNIST.
set -u
floe=$1
src=$2
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    { echo "SKIP: Fashion-MNIST not installed"; exit 77; }
dir=$(mktemp -d /tmp/floe-server-tool-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }

sh "$src/scripts/make-test-ca.sh" "$dir/ca" || fail "make-test-ca.sh"
printf 'tool-test-token\n' > "$dir/token"
sec=(--tls-ca "$dir/ca/ca.pem" --tls-cert "$dir/ca/server.pem" --tls-key "$dir/ca/server.key"
     --token-file "$dir/token" --timeout-ms 5000)
spec0="ps=127.0.0.1:1,127.0.0.1:2;worker=127.0.0.1:3,127.0.0.1:4"

# Usage errors: exit status 2.
"$floe" server --job ps --task 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing --cluster"
"$floe" server --cluster "$spec0" --job boss --task 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad job"
"$floe" server --cluster "ps=x" --job ps --task 0 >/dev/null 2>&1; [ $? -eq 1 ] || fail "bad spec"
# Insecure off loopback: refused (exit 1) with a reason.
"$floe" server --cluster "$spec0" --job ps --task 0 --bind 0.0.0.0:0 --insecure \
    --token-file "$dir/token" > "$dir/insecure.log" 2>&1 && fail "insecure on 0.0.0.0 accepted"
grep -q loopback "$dir/insecure.log" || fail "no reason for the refusal"

ports=()
for t in 0 1; do
    "$floe" server --cluster "$spec0" --job ps --task $t --bind 127.0.0.1:0 "${sec[@]}" \
        > "$dir/ps$t.log" 2>&1 &
    pids+=($!)
done
for t in 0 1; do
    for _ in $(seq 100); do
        port=$(sed -n 's/^ps [0-9]* serving on port \([0-9]*\).*/\1/p' "$dir/ps$t.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "ps $t did not start"
    ports+=("$port")
done
spec="ps=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]};worker=127.0.0.1:3,127.0.0.1:4"
"$floe" train --cluster "$spec" --task 1 --steps 200 "${sec[@]}" > "$dir/w1.log" 2>&1 &
w1=$!
pids+=($w1)
timeout 50 "$floe" train --cluster "$spec" --task 0 --steps 200 "${sec[@]}" \
    --checkpoint "$dir/ckpt" --checkpoint-every 50 > "$dir/w0.log" 2>&1 || fail "chief failed"
[ -s "$dir/ckpt/ckpt-200.floeckpt" ] || fail "no final checkpoint"
"$floe" checkpoint ls "$dir/ckpt/ckpt-200.floeckpt" | grep -q "dense_0/kernel" ||
    fail "checkpoint without dense_0/kernel"
"$floe" checkpoint ls "$dir/ckpt/ckpt-200.floeckpt" | grep -q "dense_0/kernel/Adam_1" ||
    fail "checkpoint without the Adam slot dense_0/kernel/Adam_1"
timeout 20 tail --pid=$w1 -f /dev/null
wait $w1 || fail "worker 1 failed"
acc=$(sed -n 's/^Test accuracy: //p' "$dir/w0.log")
[ -n "$acc" ] || fail "no accuracy"
awk -v a="$acc" 'BEGIN { exit !(a > 0.7) }' || fail "accuracy $acc"
grep -q "global 200" "$dir/w1.log" || fail "worker 1 did not reach step 200"
# A wrong token: the worker gives up with UNAUTHENTICATED.
printf 'wrong\n' > "$dir/bad"
timeout 30 "$floe" train --cluster "$spec" --task 1 --steps 400 "${sec[@]}" --token-file "$dir/bad" \
    > "$dir/bad.log" 2>&1 && fail "wrong token accepted"
grep -q UNAUTHENTICATED "$dir/bad.log" || fail "wrong token: not UNAUTHENTICATED"

# SGD keeps no slots: its checkpoint has none; a job resumed from it with Adam servers
# (as from a checkpoint written before slots were kept) starts the moments from zero
# and checkpoints them.  One ps, one worker.
one_ps() {   # $1: optimizer; $2: log name.  Prints the port.
    "$floe" server --cluster "ps=127.0.0.1:1;worker=127.0.0.1:3" --job ps --task 0 \
        --bind 127.0.0.1:0 --optimizer "$1" "${sec[@]}" > "$dir/$2.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        port=$(sed -n 's/^ps [0-9]* serving on port \([0-9]*\).*/\1/p' "$dir/$2.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || fail "ps $2 did not start"
}
one_ps sgd sgd_ps
timeout 50 "$floe" train --cluster "ps=127.0.0.1:$port;worker=127.0.0.1:3" --task 0 --steps 60 \
    "${sec[@]}" --checkpoint "$dir/sgd" --checkpoint-every 50 > "$dir/sgd_w0.log" 2>&1 ||
    fail "sgd chief failed"
"$floe" checkpoint ls "$dir/sgd/ckpt-60.floeckpt" > "$dir/sgd_ls.log" 2>&1 || fail "sgd ls"
grep -q "dense_0/kernel" "$dir/sgd_ls.log" || fail "sgd checkpoint without dense_0/kernel"
grep -q "/Adam" "$dir/sgd_ls.log" && fail "sgd checkpoint with Adam slots"
one_ps adam adam_ps
timeout 50 "$floe" train --cluster "ps=127.0.0.1:$port;worker=127.0.0.1:3" --task 0 --steps 80 \
    "${sec[@]}" --checkpoint "$dir/sgd" --checkpoint-every 50 > "$dir/adam_w0.log" 2>&1 ||
    fail "adam chief resumed from the sgd checkpoint failed"
"$floe" checkpoint ls "$dir/sgd/ckpt-80.floeckpt" | grep -q "dense_1/bias/Adam " ||
    fail "resumed adam checkpoint without dense_1/bias/Adam"
echo "ok: accuracy $acc"
