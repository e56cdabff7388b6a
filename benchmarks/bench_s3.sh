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
# Prints the median of each and plugin/curl throughput ratios (> 1: the plugin is faster).
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
pw=(); pr=(); cw=(); cr=()
for i in $(seq "$repeats"); do
    out=$("$bench" "s3://bench/plugin-$i" "$mib")
    pw+=("$(awk '/^write_s/ {print $2}' <<<"$out")"); pr+=("$(awk '/^read_s/ {print $2}' <<<"$out")")
    cw+=("$(timed curl "${curl_sig[@]}" -T "$tmp/obj" "$AWS_ENDPOINT_URL/bench/curl-$i" -o /dev/null)")
    cr+=("$(timed curl "${curl_sig[@]}" "$AWS_ENDPOINT_URL/bench/curl-$i" -o /dev/null)")
done
m_pw=$(printf '%s\n' "${pw[@]}" | median); m_pr=$(printf '%s\n' "${pr[@]}" | median)
m_cw=$(printf '%s\n' "${cw[@]}" | median); m_cr=$(printf '%s\n' "${cr[@]}" | median)
awk -v mib="$mib" -v pw="$m_pw" -v pr="$m_pr" -v cw="$m_cw" -v cr="$m_cr" -v n="$repeats" 'BEGIN {
    printf "S3 sequential throughput, %d MiB object, moto on loopback, median of %d\n", mib, n
    printf "  %-28s %8.2f s  %8.1f MiB/s\n", "write: fs_s3 (multipart)", pw, mib / pw
    printf "  %-28s %8.2f s  %8.1f MiB/s\n", "write: curl -T (one PUT)", cw, mib / cw
    printf "  %-28s %8.2f s  %8.1f MiB/s\n", "read:  fs_s3 (1 MiB preads)", pr, mib / pr
    printf "  %-28s %8.2f s  %8.1f MiB/s\n", "read:  curl (one GET)", cr, mib / cr
    printf "  ratio plugin/curl throughput: write %.2f, read %.2f\n", cw / pw, cr / pr
}'
