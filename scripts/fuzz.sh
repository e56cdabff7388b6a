#!/usr/bin/env bash
# fuzz.sh - runs every libFuzzer target of tests/fuzz for N seconds each under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 120)
#   TARGET   fuzz_graphdef, fuzz_npy, ... (default: every target the build produced)
# Environment:
#   BUILD    the clang fuzzing build directory (default build-fuzz); configured here
#            when missing: CC=clang meson setup $BUILD -Dfuzzing=true -Db_lundef=false
#   JOBS     ninja -j (default 2)
#
# Each target starts from its seed corpus, tests/fuzz/corpus/<target>/, and uses
# tests/fuzz/<target>.dict when there is one.  New inputs go to a scratch directory
# ($BUILD/fuzz-out/<target>/new; merge the useful ones into the seed corpus with
# `<binary> -merge=1 tests/fuzz/corpus/<target> NEW_DIR`).  A crash, leak, sanitizer
# report or timeout leaves its reproducer in $BUILD/fuzz-out/<target>/ (crash-*,
# leak-*, timeout-*): add it to the corpus (and a unit test) once fixed.  The plugins
# of the build are on FLOE_PLUGIN_PATH, so targets that import graphs see real ops.
# Exit status: 0 when no target found anything, 1 otherwise, 2 for usage errors.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-120}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
[ $# -gt 0 ] && shift
build=${BUILD:-build-fuzz}
case $build in /*) ;; *) build=$root/$build ;; esac
jobs=${JOBS:-2}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$root" -Dfuzzing=true -Db_lundef=false \
        -Dbenchmarks=false
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$root"/tests/fuzz/fuzz_*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi
ninja_targets=()
for t in "${targets[@]}"; do
    ninja_targets+=("tests/fuzz/$t")
done
ninja -C "$build" -j"$jobs" "${ninja_targets[@]}"
# The plugins too (targets that build graphs load them); one that does not build is
# left out with a warning rather than stopping the run.
plugins=$(cd "$build" && ninja -t targets all 2>/dev/null |
          sed -n 's/^\(plugins\/[^:]*\/floe_[^:]*\.so\):.*/\1/p')
if [ -n "$plugins" ] && ! ninja -C "$build" -j"$jobs" -k 0 $plugins > "$build/fuzz-plugins.log" 2>&1; then
    echo "fuzz.sh: warning: some plugins did not build (see $build/fuzz-plugins.log)" >&2
fi

export FLOE_PLUGIN_PATH
FLOE_PLUGIN_PATH=$(find "$build/plugins" -name 'floe_*.so' 2>/dev/null | tr '\n' ':')
export FLOE_PLUGIN_SYSTEM_PATH=
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-use_tls=0:suppressions=$root/tests/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/$t
    if [ ! -x "$bin" ]; then
        echo "fuzz.sh: $t: no binary at $bin (not a libFuzzer target of this build)" >&2
        failed+=("$t(missing)")
        continue
    fi
    out=$build/fuzz-out/$t
    mkdir -p "$out/new"
    args=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1
          -artifact_prefix="$out/")
    [ -f "$root/tests/fuzz/$t.dict" ] && args+=(-dict="$root/tests/fuzz/$t.dict")
    echo "== $t: ${secs}s"
    if "$bin" "${args[@]}" "$out/new" "$root/tests/fuzz/corpus/$t" > "$out/log.txt" 2>&1; then
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE' \
            "$out/log.txt" || true
    else
        echo "fuzz.sh: $t FOUND SOMETHING: see $out/log.txt and $out/{crash,leak,timeout}-*" >&2
        tail -30 "$out/log.txt" >&2
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s), ${secs}s each, no findings"
