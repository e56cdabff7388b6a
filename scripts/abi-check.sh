#!/usr/bin/env bash
# abi-check.sh - guards Floe's binary interfaces against the committed baselines in abi/.
#
# Usage:
#   scripts/abi-check.sh BUILD_DIR            compare; exit 0 (compatible), 1 (violation)
#   scripts/abi-check.sh --update BUILD_DIR   regenerate the baselines from BUILD_DIR
#   scripts/abi-check.sh --self-test BUILD_DIR  prove the check catches what it must
#
# Two interfaces are checked, each with libabigail (Debian's abigail-tools):
#   libfloe     abidw of BUILD_DIR/core/libfloe.so restricted to the public headers
#               (core/include/floe), against abi/libfloe.abi;
#   plugin ABI  plugin.h is a header, not a library: abi/plugin_abi_anchor.c is compiled
#               with -g into a throw-away .so whose one function takes every struct of
#               the ABI, and its abidw is compared with abi/plugin_api.abi.
# abidiff says whether anything changed; a change is then classified from the two XML
# corpora (the embedded Python below):
#   incompatible  a function or exported symbol removed or its signature changed, a struct
#                 member removed, renamed, retyped or moved, a struct shrunk, an enumerator
#                 removed or renumbered: needs a major bump (libfloe: the SONAME version
#                 in meson.build; plugins: FLOE_PLUGIN_ABI_MAJOR);
#   addition      new functions, members appended at the end of a struct (every struct
#                 crossing the boundary carries struct_size), new enumerators: needs a
#                 minor bump (libfloe: the project version's minor; plugins:
#                 FLOE_PLUGIN_ABI_MINOR).
# A bump without a change only asks for the baseline to be regenerated (a note, exit 0).
# The versions the baselines were taken at are in abi/VERSION.
#
# Regenerate after an intended, correctly versioned change (commit abi/ with it):
#   ninja -C build && scripts/abi-check.sh --update build
#
# Needs a build with debug info (-g: meson's default debugoptimized) and without
# sanitizers; exits 77 (skipped) when abidw/abidiff are missing (apt install abigail-tools).
set -euo pipefail

mode=check
case "${1:-}" in
    --update) mode=update; shift ;;
    --self-test) mode=self-test; shift ;;
esac
if [ "$#" -ne 1 ]; then
    echo "usage: $0 [--update|--self-test] BUILD_DIR" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abi=$src/abi
base=$abi   # where the baselines are read from (the self-test makes its own)

for t in abidw abidiff python3; do
    if ! command -v "$t" >/dev/null; then
        echo "SKIP: $t not found (apt install abigail-tools python3)"
        exit 77
    fi
done
cc=${CC:-cc}
lib=$build/core/libfloe.so
[ -e "$lib" ] || { echo "abi-check: $lib not found: build first" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floe-abi-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- versions ---------------------------------------------------------------------------

# Prints KEY=VALUE lines for the tree under @1 (source root) and plugin include dir @2.
versions_of() {
    local root=$1 inc=$2
    sed -n "s/^  version : '\([0-9.]*\)'.*/floe_version=\1/p" "$root/meson.build" | head -n1
    sed -n "s/^floe_soversion = '\([0-9]*\)'.*/soversion=\1/p" "$root/meson.build" | head -n1
    sed -n 's/^#define FLOE_PLUGIN_ABI_MAJOR \([0-9]*\).*/plugin_abi_major=\1/p' "$inc/floe/plugin.h"
    sed -n 's/^#define FLOE_PLUGIN_ABI_MINOR \([0-9]*\).*/plugin_abi_minor=\1/p' "$inc/floe/plugin.h"
}

get() { sed -n "s/^$2=//p" "$1"; }

# ---- corpora ----------------------------------------------------------------------------

# abidw with the machine-specific paths taken out, so a baseline is the same on every clone.
dump() {
    local in=$1 out=$2
    shift 2
    abidw --no-corpus-path --no-comp-dir-path --short-locs "$@" --out-file "$out.raw" "$in"
    sed -e "s|$src/||g" -e "s|$tmp/||g" "$out.raw" >"$out"
    rm -f "$out.raw"
}

dump_libfloe() {
    dump "$lib" "$1" --headers-dir "$src/core/include/floe" --drop-private-types
}

# Compiles the plugin-ABI anchor against plugin headers in @1 into a corpus @2.
dump_plugin_api() {
    local inc=$1 out=$2 so
    so=$tmp/anchor-$RANDOM.so
    "$cc" -g -O0 -fPIC -shared -fvisibility=hidden -std=c11 -o "$so" \
        "$abi/plugin_abi_anchor.c" -I"$inc" -I"$src/core/include"
    dump "$so" "$out"
}

# ---- classification ---------------------------------------------------------------------

# classify OLD NEW: prints "incompatible: ..." and "addition: ..." lines.
classify() {
    python3 - "$1" "$2" <<'PY'
import sys
import xml.etree.ElementTree as ET

def load(path):
    root = ET.parse(path).getroot()
    ids = {}
    for el in root.iter():
        i = el.get('id')
        if i is not None and el.tag != 'function-decl':
            ids.setdefault(i, el)
    return root, ids

def tname(ids, tid, depth=0):
    el = ids.get(tid)
    if el is None or depth > 6:
        return tid if el is None else '...'
    tag = el.tag
    if tag in ('type-decl', 'typedef-decl', 'enum-decl', 'class-decl', 'union-decl'):
        n = el.get('name')
        if n:
            return n
        if tag == 'typedef-decl':
            return tname(ids, el.get('type-id'), depth + 1)
        # anonymous struct/enum: by its members
        return tag + '{' + ','.join(m.get('name', '') for m in el.iter('var-decl')) + '}'
    if tag == 'pointer-type-def':
        return tname(ids, el.get('type-id'), depth + 1) + '*'
    if tag == 'qualified-type-def':
        q = ' '.join(k for k in ('const', 'volatile', 'restrict') if el.get(k) == 'yes')
        return q + ' ' + tname(ids, el.get('type-id'), depth + 1)
    if tag == 'array-type-def':
        subs = [s.get('length', '?') for s in el.iter('subrange')]
        return tname(ids, el.get('type-id'), depth + 1) + ''.join('[%s]' % s for s in subs)
    if tag == 'function-type':
        params = [tname(ids, p.get('type-id'), depth + 1) if not p.get('is-variadic') else '...'
                  for p in el.findall('parameter')]
        ret = el.find('return')
        r = tname(ids, ret.get('type-id'), depth + 1) if ret is not None else 'void'
        return '%s(%s)' % (r, ', '.join(params))
    return tag

def structs(root, ids):
    out = {}
    for el in root.iter('class-decl'):
        n = el.get('name')
        if not n or el.get('is-declaration-only') == 'yes':
            continue
        members = []
        for dm in el.findall('data-member'):
            v = dm.find('var-decl')
            members.append((v.get('name'), int(dm.get('layout-offset-in-bits', '0')),
                            tname(ids, v.get('type-id'))))
        out[n] = (int(el.get('size-in-bits', '0')), members)
    return out

def enums(root):
    out = {}
    for el in root.iter('enum-decl'):
        n = el.get('name')
        if n:
            out[n] = {e.get('name'): e.get('value') for e in el.findall('enumerator')}
    return out

def functions(root, ids):
    out = {}
    for el in root.iter('function-decl'):
        n = el.get('elf-symbol-id') or el.get('name')
        params = [tname(ids, p.get('type-id')) if not p.get('is-variadic') else '...'
                  for p in el.findall('parameter')]
        ret = el.find('return')
        r = tname(ids, ret.get('type-id')) if ret is not None else 'void'
        out[n] = '%s(%s)' % (r, ', '.join(params))
    return out

def symbols(root):
    return {(s.get('name'), s.get('type')) for s in root.iter('elf-symbol')
            if s.get('is-defined') == 'yes'}

old, oids = load(sys.argv[1])
new, nids = load(sys.argv[2])
inc, add = [], []

os_, ns = symbols(old), symbols(new)
for name, kind in sorted(os_ - ns):
    inc.append('exported symbol %s removed' % name)
for name, kind in sorted(ns - os_):
    add.append('exported symbol %s added' % name)

of, nf = functions(old, oids), functions(new, nids)
for n in sorted(of):
    if n in nf and of[n] != nf[n]:
        inc.append('function %s changed signature: %s -> %s' % (n, of[n], nf[n]))

ost, nst = structs(old, oids), structs(new, nids)
for n in sorted(ost):
    if n not in nst:
        continue  # a struct no longer reachable is judged by the functions using it
    osz, om = ost[n]
    nsz, nm = nst[n]
    if nm[:len(om)] != om:
        for a, b in zip(om, nm):
            if a != b:
                inc.append('struct %s: member %s (offset %d bits, %s) became %s (offset %d, %s)'
                           % (n, a[0], a[1], a[2], b[0], b[1], b[2]))
                break
        else:
            inc.append('struct %s: members removed (%d -> %d)' % (n, len(om), len(nm)))
    elif nsz < osz:
        inc.append('struct %s shrank from %d to %d bits' % (n, osz, nsz))
    elif len(nm) > len(om) or nsz > osz:
        add.append('struct %s: appended %s (size %d -> %d bits)'
                   % (n, ', '.join(m[0] for m in nm[len(om):]) or 'padding', osz, nsz))
for n in sorted(set(nst) - set(ost)):
    add.append('struct %s added' % n)

oe, ne = enums(old), enums(new)
for n in sorted(oe):
    if n not in ne:
        continue
    for e, v in oe[n].items():
        if e not in ne[n]:
            inc.append('enum %s: %s removed' % (n, e))
        elif ne[n][e] != v:
            inc.append('enum %s: %s renumbered %s -> %s' % (n, e, v, ne[n][e]))
    for e in ne[n]:
        if e not in oe[n]:
            add.append('enum %s: %s = %s added' % (n, e, ne[n][e]))

for m in inc:
    print('incompatible: ' + m)
for m in add:
    print('addition: ' + m)
PY
}

# judge NAME BASELINE CURRENT OLD_MAJOR NEW_MAJOR OLD_MINOR NEW_MINOR MAJOR_NAME MINOR_NAME
# Prints the verdict for one interface; returns 1 on a violation.
judge() {
    local name=$1 base=$2 cur=$3 omaj=$4 nmaj=$5 omin=$6 nmin=$7 majname=$8 minname=$9
    local rc=0 report verdict
    report=$tmp/$name.abidiff
    abidiff --no-show-locs "$base" "$cur" >"$report" 2>&1 || rc=$?
    if [ $((rc & 3)) -ne 0 ]; then
        cat "$report" >&2
        echo "abi-check: $name: abidiff failed (exit $rc)" >&2
        return 1
    fi
    classify "$base" "$cur" >"$tmp/$name.class"
    local ninc nadd
    ninc=$(grep -c '^incompatible:' "$tmp/$name.class" || true)
    nadd=$(grep -c '^addition:' "$tmp/$name.class" || true)
    if [ "$rc" -eq 0 ] && [ "$ninc" -eq 0 ] && [ "$nadd" -eq 0 ]; then
        if [ "$omaj.$omin" != "$nmaj.$nmin" ]; then
            echo "abi-check: $name: unchanged, version $omaj.$omin -> $nmaj.$nmin (note: regenerate the baseline with scripts/abi-check.sh --update)"
        else
            echo "abi-check: $name: unchanged ($majname $nmaj, $minname $nmin)"
        fi
        return 0
    fi
    sed 's/^/    /' "$tmp/$name.class"
    if [ "$ninc" -gt 0 ] || [ $((rc & 8)) -ne 0 ]; then
        if [ "$nmaj" -gt "$omaj" ]; then
            echo "abi-check: $name: incompatible change with $majname bumped $omaj -> $nmaj: ok (regenerate the baseline)"
            return 0
        fi
        echo "abi-check: FAIL: $name: incompatible change without a major bump ($majname is still $nmaj)"
        echo "  abidiff says:"
        sed 's/^/    /' "$report" | head -n 60
        return 1
    fi
    if [ "$nmaj" -gt "$omaj" ] || { [ "$nmaj" -eq "$omaj" ] && [ "$nmin" -gt "$omin" ]; }; then
        echo "abi-check: $name: compatible addition with $minname bumped $omin -> $nmin: ok (regenerate the baseline)"
        return 0
    fi
    echo "abi-check: FAIL: $name: compatible addition without a minor bump ($minname is still $nmin; bump it)"
    return 1
}

# check_tree PLUGIN_INCLUDE_DIR: compares the current tree (with plugin headers from the
# given directory) with the baselines.
check_tree() {
    local inc=$1 status=0
    versions_of "$src" "$inc" >"$tmp/cur.version"
    [ -f "$tmp/libfloe.abi" ] || dump_libfloe "$tmp/libfloe.abi"
    dump_plugin_api "$inc" "$tmp/plugin_api.abi"
    local b=$base/VERSION c=$tmp/cur.version
    local omin nmin
    omin=$(get "$b" floe_version | cut -d. -f2)
    nmin=$(get "$c" floe_version | cut -d. -f2)
    judge libfloe "$base/libfloe.abi" "$tmp/libfloe.abi" \
        "$(get "$b" soversion)" "$(get "$c" soversion)" "$omin" "$nmin" \
        "soversion" "project minor version" || status=1
    judge plugin_api "$base/plugin_api.abi" "$tmp/plugin_api.abi" \
        "$(get "$b" plugin_abi_major)" "$(get "$c" plugin_abi_major)" \
        "$(get "$b" plugin_abi_minor)" "$(get "$c" plugin_abi_minor)" \
        "FLOE_PLUGIN_ABI_MAJOR" "FLOE_PLUGIN_ABI_MINOR" || status=1
    return "$status"
}

# make_baselines DIR: the baselines of the current tree into DIR.
make_baselines() {
    dump_libfloe "$1/libfloe.abi"
    dump_plugin_api "$src/plugin_api/include" "$1/plugin_api.abi"
    {
        echo "# Versions at which abi/*.abi were taken (scripts/abi-check.sh --update)."
        versions_of "$src" "$src/plugin_api/include"
    } >"$1/VERSION"
}

case $mode in
update)
    make_baselines "$abi"
    echo "abi-check: baselines regenerated in $abi:"
    cat "$abi/VERSION"
    ;;
check)
    for f in libfloe.abi plugin_api.abi VERSION; do
        [ -f "$abi/$f" ] || { echo "abi-check: $abi/$f missing: run $0 --update $1" >&2; exit 1; }
    done
    if check_tree "$src/plugin_api/include"; then
        echo "abi-check: PASS"
    else
        echo "abi-check: FAIL (see above; docs: scripts/abi-check.sh header)"
        exit 1
    fi
    ;;
self-test)
    # Edits a copy of plugin.h and expects each verdict, against baselines taken from the
    # tree as it is (so pending, correctly versioned changes do not blur the verdicts);
    # the real tree and abi/ are never touched.
    base=$tmp/base
    mkdir -p "$base"
    make_baselines "$base"
    fails=0
    expect() { # expect WANT(pass|fail) WHAT PYTHON-EDIT
        local want=$1 what=$2 edit=$3 inc=$tmp/inc-$RANDOM got
        mkdir -p "$inc/floe"
        cp "$src/plugin_api/include/floe/"*.h "$inc/floe/"
        python3 -c "import sys; p=sys.argv[1]; s=open(p).read(); $edit; open(p,'w').write(s)" \
            "$inc/floe/plugin.h"
        if check_tree "$inc" >"$tmp/self.log" 2>&1; then got=pass; else got=fail; fi
        if [ "$got" = "$want" ]; then
            echo "ok: $what -> $got"
        else
            echo "WRONG: $what -> $got, expected $want"
            sed 's/^/    /' "$tmp/self.log"
            fails=$((fails + 1))
        fi
    }
    last='    floe_status (*attrs_set_tensor)(floe_attrs *a, const char *name, floe_tensor *t);\n'
    minor=$(sed -n 's/^#define FLOE_PLUGIN_ABI_MINOR \([0-9]*\).*/\1/p' "$src/plugin_api/include/floe/plugin.h")
    major=$(sed -n 's/^#define FLOE_PLUGIN_ABI_MAJOR \([0-9]*\).*/\1/p' "$src/plugin_api/include/floe/plugin.h")
    expect pass "the tree as it is" "pass"
    expect fail "member appended to floe_host, minor not bumped" \
        "s=s.replace('$last', '$last    int (*new_service)(void);\n', 1)"
    expect pass "member appended to floe_host, minor bumped" \
        "s=s.replace('$last', '$last    int (*new_service)(void);\n', 1).replace('#define FLOE_PLUGIN_ABI_MINOR $minor', '#define FLOE_PLUGIN_ABI_MINOR $((minor + 1))')"
    expect fail "two floe_host members swapped, major not bumped" \
        "s=s.replace('    void *(*alloc)(size_t nbytes, size_t align);\n    void (*free)(void *ptr);\n', '    void (*free)(void *ptr);\n    void *(*alloc)(size_t nbytes, size_t align);\n', 1)"
    expect fail "floe_device_ops member retyped (size_t -> uint32_t), minor bumped only" \
        "s=s.replace('floe_status (*alloc)(void *dev, size_t nbytes, void **out);', 'floe_status (*alloc)(void *dev, uint32_t nbytes, void **out);', 1).replace('#define FLOE_PLUGIN_ABI_MINOR $minor', '#define FLOE_PLUGIN_ABI_MINOR $((minor + 1))')"
    expect fail "floe_kernel_def member removed" \
        "s=s.replace('    int32_t priority;\n', '', 1)"
    expect pass "floe_kernel_def member removed, major bumped" \
        "s=s.replace('    int32_t priority;\n', '', 1).replace('#define FLOE_PLUGIN_ABI_MAJOR $major', '#define FLOE_PLUGIN_ABI_MAJOR $((major + 1))')"
    if [ "$fails" -ne 0 ]; then
        echo "abi-check self-test: $fails wrong verdict(s)"
        exit 1
    fi
    echo "abi-check self-test: PASS"
    ;;
esac
