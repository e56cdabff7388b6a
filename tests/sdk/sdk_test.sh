#!/usr/bin/env bash
# sdk_test.sh - the SDK works from an installed Floe alone (issue 6).
#
# Usage (from tests/sdk/meson.build): sdk_test.sh BUILD_ROOT SRC_ROOT LIBDIR SANITIZE
#
# 1. `meson install --destdir` into a temporary root; the installed .pc files are copied
#    with their prefix moved there, and PKG_CONFIG_LIBDIR points at the copies only (a
#    third party sees exactly this: pkg-config and nothing of the source tree).
# 2. Each SDK project (sdk/templates/op-plugin, sdk/templates/device-plugin,
#    sdk/examples/fused-bias-gelu) is copied out of the tree, configured with meson,
#    built, its own tests run (meson test), and installed into the installed plugin
#    directory (pkg-config --variable=pluginsdir floe-plugin).
# 3. Each installed plugin exports only its entry symbol and does not link libfloe.
# 4. The installed `floe` tool, unmodified: lists them (`floe plugins`), shows the fused
#    op (`floe ops FusedBiasGelu`), and certifies each (`floe conformance`).
# 5. The example's training program (an application on the installed libfloe) trains
#    through FusedBiasGelu loaded from FLOE_PLUGIN_PATH (the installed system directory
#    turned off, the base plugins named on the path too), differentiating it with
#    floe_gradients(): the loss must fall below 1/20 of its first value.
# Exits 77 (skipped) when meson or pkg-config is missing.
set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: $0 BUILD_ROOT SRC_ROOT LIBDIR SANITIZE" >&2
    exit 2
fi
build=$1 src=$2 libdir=$3 sanitize=$4
for t in meson ninja pkg-config; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
unset LD_LIBRARY_PATH FLOE_PLUGIN_PATH FLOE_PLUGIN_ALLOW FLOE_PLUGIN_DENY

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floe-sdk-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
    'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')

meson install -C "$build" --no-rebuild --destdir "$tmp/dest" --quiet >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"; echo "FAIL: meson install --destdir" >&2; exit 1; }
root=$tmp/dest$prefix

mkdir -p "$tmp/pc"
for f in "$root/$libdir"/pkgconfig/*.pc; do
    sed "s|^prefix=.*|prefix=$root|" "$f" >"$tmp/pc/$(basename "$f")"
done
export PKG_CONFIG_LIBDIR=$tmp/pc
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
pluginsdir=$(pkg-config --variable=pluginsdir floe-plugin)
libdir_abs=$(pkg-config --variable=libdir floe)
case $pluginsdir in "$root"/*) ;; *) echo "FAIL: pluginsdir $pluginsdir outside $root" >&2; exit 1 ;; esac
echo "installed Floe: $root (plugins: $pluginsdir)"

# The installed programs find the installed libfloe and base plugins; nothing else.
export LD_LIBRARY_PATH=$libdir_abs
export FLOE_PLUGIN_SYSTEM_PATH=$pluginsdir

san=()
if [ "$sanitize" != "none" ] && [ -n "$sanitize" ]; then
    san=(-Db_sanitize="$sanitize" -Db_lundef=false)
fi

projects=(templates/op-plugin:my_ops templates/device-plugin:my_device
          examples/fused-bias-gelu:fused_bias_gelu)
for entry in "${projects[@]}"; do
    dir=${entry%%:*} name=${entry##*:}
    echo "=== $dir"
    cp -r "$src/sdk/$dir" "$tmp/src-$name"
    if ! meson setup "$tmp/build-$name" "$tmp/src-$name" "${san[@]}" >"$tmp/setup-$name.log" 2>&1; then
        cat "$tmp/setup-$name.log"; echo "FAIL: meson setup of sdk/$dir" >&2; exit 1
    fi
    if ! ninja -C "$tmp/build-$name" >"$tmp/ninja-$name.log" 2>&1; then
        cat "$tmp/ninja-$name.log"; echo "FAIL: building sdk/$dir" >&2; exit 1
    fi
    if grep -q "warning:" "$tmp/ninja-$name.log"; then
        grep -A3 "warning:" "$tmp/ninja-$name.log"; echo "FAIL: sdk/$dir builds with warnings" >&2; exit 1
    fi
    if ! meson test -C "$tmp/build-$name" --print-errorlogs >"$tmp/test-$name.log" 2>&1; then
        cat "$tmp/test-$name.log"; echo "FAIL: the tests of sdk/$dir" >&2; exit 1
    fi
    grep -E "^ *[0-9]+/[0-9]+ " "$tmp/test-$name.log" || true
    meson install -C "$tmp/build-$name" --quiet >/dev/null
    so=$pluginsdir/floe_$name.so
    [ -f "$so" ] || { echo "FAIL: $so not installed" >&2; exit 1; }
    if readelf -d "$so" | grep -q 'NEEDED.*libfloe'; then
        echo "FAIL: $so links libfloe" >&2; exit 1
    fi
    exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDRB]$/ {print $3}' | grep -v '^_' || true)
    [ "$exported" = "floe_plugin_${name}_get_desc" ] || {
        echo "FAIL: $so exports: $exported" >&2; exit 1; }
done

floe=$root/bin/floe
if [ -x "$floe" ]; then
    out=$("$floe" plugins)
    for name in my_ops my_device fused_bias_gelu ops_math dev_cpu; do
        grep -q "^loaded *$name " <<<"$out" || { echo "$out"; echo "FAIL: floe plugins: $name not loaded" >&2; exit 1; }
    done
    "$floe" ops FusedBiasGelu | grep -q "gradient: fused_bias_gelu" || {
        "$floe" ops FusedBiasGelu; echo "FAIL: floe ops FusedBiasGelu" >&2; exit 1; }
    for name in my_ops my_device fused_bias_gelu; do
        if ! "$floe" conformance "$pluginsdir/floe_$name.so" >"$tmp/conf-$name.txt" 2>&1; then
            cat "$tmp/conf-$name.txt"; echo "FAIL: floe conformance floe_$name.so" >&2; exit 1
        fi
        echo "conformance floe_$name.so: $(tail -n 2 "$tmp/conf-$name.txt" | tr '\n' ' ')"
    done
else
    echo "note: the floe tool is not built (tools disabled); skipping its checks"
fi

# Training through the out-of-tree op from FLOE_PLUGIN_PATH, system directory off.
FLOE_PLUGIN_SYSTEM_PATH= FLOE_PLUGIN_PATH="$tmp/build-fused_bias_gelu:$pluginsdir/floe_ops_math.so:$pluginsdir/floe_dev_cpu.so" \
    "$tmp/build-fused_bias_gelu/train" 300
echo "PASS: the SDK projects build, test, install and certify against an installed Floe"
