#!/usr/bin/env bash
# install_test.sh - `meson install` into a temporary directory gives a working Floe.
#
# Usage (from tests/install/meson.build):
#   install_test.sh BUILD_ROOT SRC_DIR PREFIX LIBDIR CC SANITIZE HAVE_TOOL
#
# 1. meson install --destdir TMP: the tree lands in TMP/PREFIX.
# 2. pkg-config, with prefix redefined to TMP/PREFIX, gives the flags: an application
#    (consumer.c) is built with `pkg-config --cflags --libs floe`, and an out-of-tree plugin
#    (toy_plugin.c) with `pkg-config --cflags floe-plugin` alone (it must not need libfloe)
#    and installed into the pluginsdir variable of floe-plugin.pc.
# 3. The consumer runs with FLOE_PLUGIN_PATH unset and FLOE_PLUGIN_SYSTEM_PATH pointing at the
#    installed plugin directory.  The override is required here: the installed libfloe has
#    its system plugin directory compiled in as PREFIX/LIBDIR/floe-N, which does not exist
#    under a --destdir install.  The consumer checks its plugins came from that directory and
#    that a graph using ops_math, dev_cpu and the toy plugin computes the right values.
# 4. When the floe tool is built, the installed one lists the same plugins.
#
# SANITIZE is meson's b_sanitize ("none" or e.g. "address,undefined"): a sanitized libfloe
# needs the programs that load it built with the same runtime.
set -euo pipefail

if [ "$#" -ne 7 ]; then
    echo "usage: $0 BUILD_ROOT SRC_DIR PREFIX LIBDIR CC SANITIZE HAVE_TOOL" >&2
    exit 2
fi
build=$1 src=$2 prefix=$3 libdir=$4 cc=$5 sanitize=$6 have_tool=$7

# meson test points LD_LIBRARY_PATH at the build tree: nothing here may use it.
unset LD_LIBRARY_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floe-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

dest=$tmp/dest
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "FAIL: meson install --destdir $dest" >&2
    exit 1
}
root=$dest$prefix
case $libdir in
    /*) echo "FAIL: LIBDIR must be relative to the prefix, got $libdir" >&2; exit 1 ;;
esac

# Only the freshly installed .pc files, with the prefix moved under the destdir.
export PKG_CONFIG_LIBDIR=$root/$libdir/pkgconfig
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
pc() { pkg-config --define-variable=prefix="$root" "$@"; }

for f in floe.pc floe-plugin.pc; do
    [ -f "$PKG_CONFIG_LIBDIR/$f" ] || { echo "FAIL: $f not installed in $PKG_CONFIG_LIBDIR" >&2; exit 1; }
done
for h in floe.h types.h tensor.h graph.h session.h fs.h plugin.h cpu.h experimental/testing.h; do
    [ -f "$root/include/floe/$h" ] || { echo "FAIL: header floe/$h not installed" >&2; exit 1; }
done

pluginsdir=$(pc --variable=pluginsdir floe-plugin)
libdir_abs=$(pc --variable=libdir floe)
[ "$(pc --variable=pluginsdir floe)" = "$pluginsdir" ] || {
    echo "FAIL: floe.pc and floe-plugin.pc disagree on pluginsdir" >&2; exit 1; }
# abi_minor (for packagers' dependencies) is the installed header's FLOE_PLUGIN_ABI_MINOR.
hdr_minor=$(sed -n 's/^#define FLOE_PLUGIN_ABI_MINOR \([0-9]*\).*/\1/p' "$(pc --variable=includedir floe-plugin)/floe/plugin.h")
[ -n "$hdr_minor" ] && [ "$(pc --variable=abi_minor floe-plugin)" = "$hdr_minor" ] || {
    echo "FAIL: floe-plugin.pc abi_minor '$(pc --variable=abi_minor floe-plugin)' is not plugin.h's '$hdr_minor'" >&2; exit 1; }
case $pluginsdir in
    "$root"/*) ;;
    *) echo "FAIL: pluginsdir $pluginsdir is not under the install root $root" >&2; exit 1 ;;
esac
for p in floe_ops_math.so floe_dev_cpu.so; do
    [ -f "$pluginsdir/$p" ] || { echo "FAIL: $p not installed in $pluginsdir" >&2; ls -l "$pluginsdir" >&2 || true; exit 1; }
done
echo "installed: $root (plugins in $pluginsdir)"

san_flags=()
if [ "$sanitize" != "none" ] && [ -n "$sanitize" ]; then
    san_flags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
fi

read -r -a cc_cmd <<<"$cc"

# The application: pkg-config floe only.  rpath so it finds the installed libfloe.
# shellcheck disable=SC2046
"${cc_cmd[@]}" "${san_flags[@]}" -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer" \
    "$src/consumer.c" $(pc --cflags --libs floe) -lm -ldl -Wl,-rpath,"$libdir_abs"

# The out-of-tree plugin: headers only, never libfloe.  -z defs proves it needs nothing else
# (sanitizer runtimes are resolved at run time, so the check is for normal builds).
defs=(-Wl,-z,defs)
[ "${#san_flags[@]}" -eq 0 ] || defs=()
# shellcheck disable=SC2046
"${cc_cmd[@]}" "${san_flags[@]}" -std=c11 -Wall -Wextra -Werror -fPIC -shared \
    -fvisibility=hidden "${defs[@]}" -o "$pluginsdir/floe_toy.so" "$src/toy_plugin.c" \
    $(pc --cflags floe-plugin)
if readelf -d "$pluginsdir/floe_toy.so" | grep -q 'NEEDED.*libfloe'; then
    echo "FAIL: the toy plugin links libfloe" >&2
    exit 1
fi
exported=$(nm -D --defined-only "$pluginsdir/floe_toy.so" | awk '$2 ~ /^[TDRB]$/ {print $3}' | grep -v '^_' || true)
if [ "$exported" != "floe_plugin_toy_get_desc" ]; then
    echo "FAIL: the toy plugin should export only floe_plugin_toy_get_desc, exports: $exported" >&2
    exit 1
fi

# Run from the installed tree only: no build-tree plugin path, the system dir overridden.
run_env=(env -u FLOE_PLUGIN_PATH -u FLOE_PLUGIN_ALLOW -u FLOE_PLUGIN_DENY
         FLOE_PLUGIN_SYSTEM_PATH="$pluginsdir")
"${run_env[@]}" "$tmp/consumer" "$libdir_abs" "$pluginsdir"

if [ "$have_tool" = "true" ]; then
    [ -x "$root/bin/floe" ] || { echo "FAIL: the floe tool is not installed in $root/bin" >&2; exit 1; }
    out=$(LD_LIBRARY_PATH="$libdir_abs" "${run_env[@]}" "$root/bin/floe" plugins)
    echo "$out"
    for p in ops_math dev_cpu toy; do
        grep -q "$p" <<<"$out" || { echo "FAIL: installed floe plugins does not list $p" >&2; exit 1; }
    done
fi
echo "PASS: installed Floe builds and runs an application and an out-of-tree plugin"
