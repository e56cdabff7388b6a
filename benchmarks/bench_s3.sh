#!/usr/bin/env bash
# bench_s3.sh - sequential write and read of one object through the fs_s3 plugin against
# curl (--aws-sigv4) to the same S3 server, in one run, with the ratios.
#
#     bash benchmarks/bench_s3.sh [BUILD_DIR] [MIB] [REPEATS]      (defaults: build 256 3)
#
# Starts moto's S3 server on loopback (tests/s3/s3_server.py, a port chosen at run time),
# creates a bucket, then REPEATS times: bench_s3 writes MIB MiB through the plugin
# (multipart, FLOE_S3_PART_SIZE parts) and reads them back in 1 MiB preads; curl PUTs the
# same size from a file (one request, signed with --aws-sigv4) and GETs it to /dev/null.
# Also the plugin matched to curl's requests (one PUT; fixed 64 MiB ranged GETs, against
# curl fetching the same ranges).  Prints the median of each and plugin/curl throughput
# ratios (> 1: the plugin is faster).
# Both talk to the server directly (not through the test's fault proxy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
mib=${2:-256}
repeats=${3:-3}
bench="$build/benchmarks/bench_s3"
[ -x "$bench" ] || { echo "bench_s3.sh: $bench missing (meson setup -Dbenchmarks=true)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench_s3.sh: curl missing" >&2; exit 1; }

tmp=$(mktemp -d)
coproc SRV { exec python3 "$root/tests/s3/s3_server.py" --lifetime 1800 2>/dev/null; }
srv_pid=$SRV_PID
cleanup() { echo quit >&"${SRV[1]}" 2>/dev/null || true; kill "$srv_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
read -r -t 60 ready moto_port _ key secret <&"${SRV[0]}" || { echo "bench_s3.sh: no server" >&2; exit 1; }
[ "$ready" = ready ] || { echo "bench_s3.sh: server says: $ready $moto_port $key" >&2; exit 77; }
echo "mkbucket bench" >&"${SRV[1]}"; read -r -t 60 ans <&"${SRV[0]}"; [ "$ans" = ok ] || exit 1

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=$key \
    AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1
head -c $((mib << 20)) /dev/urandom > "$tmp/obj"
curl_sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$secret"
          -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -s -S -f)
timed() { local a b; a=$(date +%s.%N); "$@"; b=$(date +%s.%N); awk -v a="$a" -v b="$b" 'BEGIN {print b - a}'; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# curl GETs of 64 MiB ranges one after the other: the request pattern of the plugin with a
# fixed 64 MiB read-ahead (moto's cost per ranged GET grows with the object's size).
curl_ranges() {
    local off=0 size=$((mib << 20)) win=$((64 << 20))
    while [ "$off" -lt "$size" ]; do
        curl "${curl_sig[@]}" -r "$off-$((off + win - 1))" "$AWS_ENDPOINT_URL/bench/$1" -o /dev/null
        off=$((off + win))
    done
}
pw=(); pr=(); qw=(); qr=(); cw=(); cr=(); rr=()
for i in $(seq "$repeats"); do
    # The plugin as configured by default: 8 MiB parts (4 in flight), read-ahead 8..64 MiB.
    out=$("$bench" "s3://bench/plugin-$i" "$mib")
    pw+=("$(awk '/^write_s/ {print $2}' <<<"$out")"); pr+=("$(awk '/^read_s/ {print $2}' <<<"$out")")
    # Matched to curl's requests: one PUT; fixed 64 MiB ranged GETs.
    out=$(FLOE_S3_PART_SIZE=$((mib + 1))M FLOE_S3_READAHEAD=64M FLOE_S3_READAHEAD_MAX=64M \
          "$bench" "s3://bench/plugin1-$i" "$mib")
    qw+=("$(awk '/^write_s/ {print $2}' <<<"$out")"); qr+=("$(awk '/^read_s/ {print $2}' <<<"$out")")
    cw+=("$(timed curl "${curl_sig[@]}" -T "$tmp/obj" "$AWS_ENDPOINT_URL/bench/curl-$i" -o /dev/null)")
    cr+=("$(timed curl "${curl_sig[@]}" "$AWS_ENDPOINT_URL/bench/curl-$i" -o /dev/null)")
    rr+=("$(timed curl_ranges "curl-$i")")
done
med() { printf '%s\n' "$@" | median; }
awk -v mib="$mib" -v n="$repeats" -v pw="$(med "${pw[@]}")" -v pr="$(med "${pr[@]}")" \
    -v qw="$(med "${qw[@]}")" -v qr="$(med "${qr[@]}")" -v cw="$(med "${cw[@]}")" \
    -v cr="$(med "${cr[@]}")" -v rr="$(med "${rr[@]}")" 'BEGIN {
    printf "S3 sequential throughput, %d MiB object, moto on loopback, median of %d\n", mib, n
    f = "  %-46s %7.2f s %8.1f MiB/s\n"
    printf f, "write: fs_s3 default (8 MiB parts, 4 in flight)", pw, mib / pw
    printf f, "write: fs_s3 one PUT (FLOE_S3_PART_SIZE > size)", qw, mib / qw
    printf f, "write: curl -T (one PUT)", cw, mib / cw
    printf f, "read:  fs_s3 default (1 MiB preads)", pr, mib / pr
    printf f, "read:  fs_s3 64 MiB ranged GETs (1 MiB preads)", qr, mib / qr
    printf f, "read:  curl 64 MiB ranged GETs", rr, mib / rr
    printf f, "read:  curl (one GET)", cr, mib / cr
    printf "  ratio plugin/curl throughput: write one PUT %.2f, multipart %.2f;\n", cw / qw, cw / pw
    printf "    read 64 MiB ranges %.2f, default vs one GET %.2f\n", rr / qr, cr / pr
}'
