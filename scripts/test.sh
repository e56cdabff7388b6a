#!/usr/bin/env bash
# test.sh - set-up, then the whole test suite twice: a normal build in build/ and a build
# under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/.
#
# Both suites always run; the script prints meson's summary of each and exits non-zero if
# either build or either suite failed.  JOBS (default: the number of cores) sets the
# parallelism of ninja and of meson test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

jobs="${JOBS:-$(nproc)}"

# Configures @dir with the given options (reconfiguring an existing build directory).
configure() {
    local dir="$1"
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

# Builds and tests one configuration; returns non-zero on any failure.
suite() {
    local name="$1" dir="$2"
    shift 2
    echo "=== $name: configure and build ($dir)"
    configure "$dir" "$@" || return 1
    ninja -C "$dir" -j "$jobs" >"$dir/ninja.log" 2>&1 || { tail -n 60 "$dir/ninja.log"; return 1; }
    echo "=== $name: meson test"
    local rc=0
    meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" \
        ${TIMEOUT_MULTIPLIER:+--timeout-multiplier "$TIMEOUT_MULTIPLIER"} || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "=== $name: FAILED (full log: $dir/meson-logs/testlog.txt)"
    fi
    return "$rc"
}

status=0

suite "normal" build || status=1

export ASAN_OPTIONS=detect_leaks=1
# use_tls=0: LSan's tracer crashes on libgomp worker threads' TLS (see tests/lsan.supp).
export LSAN_OPTIONS="use_tls=0:suppressions=$PWD/tests/lsan.supp"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TIMEOUT_MULTIPLIER=3 suite "asan+ubsan" build-asan \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false || status=1

# The Debian packages: built from the committed tree with dpkg-buildpackage, installed in a
# throwaway clean root, then a plugin package removed (scripts/test-packages.sh; 77: it
# cannot run on this machine, and says why).
echo "=== packages: dpkg-buildpackage -b and the clean-root install test"
pkg_rc=0
bash scripts/test-packages.sh || pkg_rc=$?
case "$pkg_rc" in
    0) ;;
    77) echo "=== packages: skipped" ;;
    *) echo "=== packages: FAILED"; status=1 ;;
esac

# One closing line over both suites, counted from meson's JSON test logs.
summary() {
    python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

if [ "$status" -eq 0 ]; then
    echo "=== all tests passed (normal and asan+ubsan)"
else
    echo "=== FAILED (see above)"
fi
summary build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
exit "$status"
