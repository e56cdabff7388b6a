#!/bin/sh
# run_transport.sh BUILD_DIR - the grpc transport's round trips (bench_transport) beside
# Python grpcio's (peer_transport.py), both on loopback with a fresh test CA.
set -eu
build=${1:-build}
here=$(dirname "$0")
ca=$(mktemp -d /tmp/floe-bench-ca-XXXXXX)
trap 'rm -rf "$ca"' EXIT
sh "$here/../scripts/make-test-ca.sh" "$ca"
"$build/benchmarks/bench_transport" "$ca"
if python3 -c 'import grpc' 2>/dev/null; then
    python3 "$here/peer_transport.py" "$ca"
else
    echo "peer: python3 grpcio not installed, no side-by-side figure"
fi
