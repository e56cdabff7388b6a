#!/usr/bin/env bash
# test-packages.sh - builds Floe's Debian packages and tests them installed in a clean root.
#
# Usage: scripts/test-packages.sh [--debs DIR] [--keep DIR] [--no-lintian]
#   --debs DIR    test the .deb files in DIR instead of building them
#   --keep DIR    also copy the built .deb files (and .changes, .buildinfo) to DIR
#   --no-lintian  skip lintian (it fails the test on an error, not on warnings)
#
# 1. Build: the committed tree (HEAD of this repository; the tree itself when it is no git
#    checkout) is cloned into a temporary directory and built there with
#    `dpkg-buildpackage -b -uc -us` (DEB_BUILD_OPTIONS nocheck noddebs: scripts/test.sh
#    runs the test suite itself).  The shared working tree is never touched; uncommitted
#    changes are not part of the build.
# 2. lintian over the .deb files, when lintian is installed (an error fails the test).
# 3. The clean root: in a private mount namespace, an overlay whose lower layer is this
#    machine's / and whose upper layer is a tmpfs, with empty /usr/local and
#    /opt, is chroot'ed into.  Its dpkg database is this machine's, so dpkg checks the
#    packages' dependencies against what Debian has installed here; everything it writes
#    lands in the upper layer and disappears with the namespace.  In that root:
#    - a plugin package alone is refused (floe-abi-1 missing), and one that needs a newer
#      plugin ABI minor than libfloe0 provides is refused too;
#    - libfloe0, the other libraries (libfloe-io0, -keras0, -dist0), floe-plugins-base
#      (floe-plugin-cpu, -math, -nn) and floe-tools are installed with dpkg; then, with no
#      FLOE_* variable set, `floe plugins` must list exactly the three base plugins loaded from
#      /usr/lib/<triplet>/floe-1, `floe train` (the MLP, one epoch on a 10000-image subset
#      of Fashion-MNIST) must reach 70% test accuracy and `floe predict` read its checkpoint;
#    - every other plugin package built (floe-plugin-grpc, -s3, -cuda) is installed alone:
#      its plugin is listed (loaded, or skipped with a reason, as dev_cuda without a GPU)
#      and nothing else changes; purged, it leaves the three base plugins and their ops;
#    - libfloe-dev: an out-of-tree plugin (tests/install/toy_plugin.c) is built with
#      `pkg-config --cflags floe-plugin` and installed into its pluginsdir, an application
#      (tests/install/consumer.c) with `pkg-config --cflags --libs floe`, and it runs; a
#      program built with `pkg-config floe-keras` runs;
#    - floe-plugin-nn is removed (with the floe-plugins-base metapackage that needs it):
#      only floe_ops_nn.so goes, `floe plugins` lists dev_cpu and ops_math, exactly
#      ops_nn's ops are gone from `floe ops`, `floe ops Conv2D` and `floe train` fail
#      naming the missing op, and the math ops still compute (the consumer runs again);
#    - everything is purged and nothing of Floe is left.
#
# Needs root (mount namespaces, overlayfs, chroot), dpkg-dev, debhelper, fakeroot, unshare
# and overlayfs, gcc and pkg-config, and the dataset-fashion-mnist package; when one is
# missing it exits 77 (skipped) and says which.  Exit 0: every check passed; 1: one failed.
set -euo pipefail

say() { printf '=== test-packages: %s\n' "$*"; }
fail() { printf 'FAIL: test-packages: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: test-packages: %s\n' "$*" >&2; exit 77; }

FASHION=/usr/share/datasets/fashion-mnist

# The packages the clean root gets first (with every runtime library package built:
# libfloe-io0, libfloe-keras0, libfloe-dist0, ...).
CORE_PKGS=(libfloe0 floe-plugin-cpu floe-plugin-math floe-plugin-nn floe-plugins-base floe-tools)

# ---- stage 3: inside the chroot -----------------------------------------------------

# The ops `floe ops` lists, one per line, sorted.
ops_list() { floe ops | sort; }

# Fails unless `floe plugins` (given as $1) lists exactly the plugins named in $2 (sorted,
# space-separated) as loaded, all from $3, and nothing rejected.
check_plugins() {
    local out=$1 want=$2 dir=$3 got
    got=$(awk '$1 == "loaded" {print $2}' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] || { echo "$out"; fail "floe plugins lists '$got' loaded, expected '$want'"; }
    if grep -q '^rejected' <<<"$out"; then echo "$out"; fail "floe plugins shows a rejected plugin"; fi
    local paths
    paths=$(awk '$1 == "path:" {print $2}' <<<"$out")
    while read -r p; do
        [ "$(dirname "$p")" = "$dir" ] || { echo "$out"; fail "plugin loaded from $p, not from $dir"; }
    done <<<"$paths"
}

in_root() {
    local share=/floe-pkgtest debs=/floe-pkgtest/debs work=/tmp/floe-pkgtest
    local multiarch pluginsdir libdir out rc
    multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    libdir=/usr/lib/$multiarch
    pluginsdir=$libdir/floe-1
    mkdir -p "$work"
    cd "$work"
    deb() { ls "$debs/$1"_*.deb; }
    run_dpkg() { dpkg "$@" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg $*"; }; }

    # Nothing of Floe is here before the packages come.
    if command -v floe >/dev/null || [ -e "$pluginsdir" ] || ldconfig -p | grep -q 'libfloe'; then
        fail "the clean root already holds a Floe (floe in PATH, $pluginsdir or libfloe in ld.so.cache)"
    fi

    say "a plugin package without libfloe0 is refused"
    if out=$(dpkg -i "$(deb floe-plugin-cpu)" 2>&1); then
        echo "$out"; fail "dpkg installed floe-plugin-cpu without libfloe0"
    fi
    grep -q 'floe-abi-1' <<<"$out" || { echo "$out"; fail "dpkg's refusal does not name floe-abi-1"; }
    run_dpkg -r floe-plugin-cpu

    say "a plugin built for a newer plugin ABI minor is refused"
    run_dpkg -i "$(deb libfloe0)"
    provided=$(dpkg-query -W -f='${Provides}' libfloe0)
    [[ $provided =~ floe-abi-1\ \(=\ ([0-9]+)\) ]] || fail "libfloe0 provides '$provided', not floe-abi-1 (= MINOR)"
    newer=$((BASH_REMATCH[1] + 1))
    rm -rf "$work/newer"
    dpkg-deb -R "$(deb floe-plugin-cpu)" "$work/newer"
    sed -i "s/floe-abi-1 (>= [0-9]*)/floe-abi-1 (>= $newer)/" "$work/newer/DEBIAN/control"
    dpkg-deb -b "$work/newer" "$work/newer.deb" >/dev/null
    if out=$(dpkg -i "$work/newer.deb" 2>&1); then
        echo "$out"; fail "dpkg installed a plugin that needs floe-abi-1 (>= $newer) next to libfloe0 providing (= ${BASH_REMATCH[1]})"
    fi
    grep -q "floe-abi-1 (>= $newer)" <<<"$out" || { echo "$out"; fail "dpkg's refusal does not name floe-abi-1 (>= $newer)"; }
    run_dpkg -r floe-plugin-cpu

    # The runtime libraries: libfloe<name><soversion>, -dev and -dbgsym excluded.
    local libs
    libs=$(ls "$debs" | sed -n 's/^\(libfloe-[a-z0-9-]*[0-9]\)_.*\.deb$/\1/p' | sort -u)
    CORE_PKGS+=($libs)
    say "install ${CORE_PKGS[*]}"
    local files=()
    for p in "${CORE_PKGS[@]}"; do files+=("$(deb "$p")"); done
    dpkg -i "${files[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i of the core and base plugin packages"; }
    for p in "${CORE_PKGS[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p")" = "ii " ] || fail "$p is not installed and configured"
    done
    dpkg --verify "${CORE_PKGS[@]}" || fail "dpkg --verify of the installed packages"
    # (/lib is /usr/lib on a merged-/usr system: compare the files, not the spellings.)
    local resolved
    resolved=$(ldd /usr/bin/floe | awk '$1 == "libfloe.so.0" {print $3}')
    # consumer.c compares the directory the library was loaded from as a string.
    local loaddir
    loaddir=$(dirname "$resolved")
    [ -n "$resolved" ] && [ "$(realpath "$resolved")" = "$(realpath "$libdir/libfloe.so.0")" ] ||
        { ldd /usr/bin/floe; fail "the installed floe does not resolve libfloe.so.0 to $libdir"; }

    say "floe plugins (no FLOE_* variable: the system plugin directory)"
    out=$(floe plugins)
    echo "$out"
    check_plugins "$out" "dev_cpu ops_math ops_nn" "$pluginsdir"
    floe version | tee "$work/version.log"
    grep -q "plugin directory: $pluginsdir\$" "$work/version.log" ||
        fail "floe version does not name $pluginsdir as its plugin directory"
    floe devices | grep -qi cpu || fail "floe devices lists no CPU device"
    local nn_ops
    nn_ops=$(awk '$1 == "loaded" {name = $2} $1 == "registered:" && name == "ops_nn" {print $2}' <<<"$out")
    [ -n "$nn_ops" ] && [ "$nn_ops" -gt 0 ] || fail "ops_nn registered no ops"
    ops_list >"$work/ops-before"
    floe ops Conv2D | grep -q ops_nn || fail "floe ops Conv2D does not name ops_nn"

    say "floe train: MLP, 1 epoch, 10000 training and 2000 test images"
    floe train --model mlp --epochs 1 --data "$share/data" --checkpoint "$work/ckpt" --seed 1 \
        >"$work/train.log" 2>&1 || { cat "$work/train.log"; fail "floe train from the installed packages"; }
    cat "$work/train.log"
    local acc
    acc=$(sed -n 's/.*test accuracy: \([0-9.]*\).*/\1/p' "$work/train.log")
    [ -n "$acc" ] || fail "floe train printed no test accuracy"
    awk -v a="$acc" 'BEGIN {exit !(a >= 0.70)}' || fail "test accuracy $acc after one epoch is below 0.70"
    floe predict --checkpoint "$work/ckpt" --data "$share/data" --count 3 >"$work/predict.log" 2>&1 ||
        { cat "$work/predict.log"; fail "floe predict on the trained checkpoint"; }
    cat "$work/predict.log"

    # Every other plugin package that was built (grpc, s3, cuda): installed, it adds its
    # plugin and changes nothing else; removed, it takes only that plugin away.
    local extra so name state
    for extra in $(ls "$debs" | sed -n 's/^\(floe-plugin-[a-z0-9-]*\)_.*\.deb$/\1/p' | grep -v -- '-dbgsym$' | sort -u); do
        case " ${CORE_PKGS[*]} " in *" $extra "*) continue ;; esac
        so=$(dpkg-deb -c "$(deb "$extra")" | awk '{print $NF}' | grep '/floe_[a-z0-9_]*\.so$' || true)
        [ "$(wc -l <<<"$so")" -eq 1 ] && [ -n "$so" ] || fail "$extra should hold one plugin, holds: $so"
        name=$(basename "$so" .so)
        name=${name#floe_}
        say "$extra: install, floe plugins lists $name, remove"
        dpkg -i "$(deb "$extra")" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i $extra"; }
        out=$(floe plugins)
        state=$(awk -v n="$name" '$2 == n {print $1}' <<<"$out")
        grep -A5 -E "^[a-z]+ +$name " <<<"$out" | sed '/^[a-z]/{1!Q}' || true
        case $state in
            loaded) check_plugins "$out" "$(printf '%s\n' dev_cpu ops_math ops_nn "$name" | sort | tr '\n' ' ' | sed 's/ $//')" "$pluginsdir" ;;
            skipped) ;;  # e.g. dev_cuda on a machine without a GPU: the note says why
            *) echo "$out"; fail "floe plugins shows $name as '$state' after installing $extra" ;;
        esac
        ops_list | cmp -s - "$work/ops-before" || [ "$state" = loaded ] ||
            fail "$extra changed the op list although $name did not load"
        run_dpkg -P "$extra"
        [ ! -e "/$so" ] || fail "/$so is left after purging $extra"
        check_plugins "$(floe plugins)" "dev_cpu ops_math ops_nn" "$pluginsdir"
        ops_list | cmp -s - "$work/ops-before" || fail "the op list differs after purging $extra"
    done

    say "libfloe-dev: an out-of-tree plugin and an application built with pkg-config"
    run_dpkg -i "$(deb libfloe-dev)"
    [ "$(pkg-config --variable=pluginsdir floe-plugin)" = "$pluginsdir" ] ||
        fail "pkg-config --variable=pluginsdir floe-plugin is not $pluginsdir"
    # shellcheck disable=SC2046
    gcc -std=c11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden -Wl,-z,defs \
        -o "$work/floe_toy.so" "$share/src/toy_plugin.c" $(pkg-config --cflags floe-plugin)
    # shellcheck disable=SC2046
    gcc -std=c11 -Wall -Wextra -Werror -o "$work/consumer" "$share/src/consumer.c" \
        $(pkg-config --cflags --libs floe) -lm -ldl
    # A user's plugin in the system directory, as a third-party package would put it.
    install -m 644 "$work/floe_toy.so" "$pluginsdir/floe_toy.so"
    "$work/consumer" "$loaddir" "$pluginsdir" || fail "the consumer against the installed packages"
    check_plugins "$(floe plugins)" "dev_cpu ops_math ops_nn toy" "$pluginsdir"
    # shellcheck disable=SC2046
    gcc -std=c11 -Wall -Werror -o "$work/keras-consumer" -x c - $(pkg-config --cflags --libs floe-keras) <<'EOF'
#include <floe/keras.h>
#include <floe/io-api.h>
#include <stdio.h>
int main(void) { printf("%s\n", floe_version()); return 0; }
EOF
    [ "$("$work/keras-consumer")" = "$(dpkg-query -W -f='${source:Upstream-Version}' libfloe0)" ] ||
        fail "a program built with pkg-config floe-keras does not report libfloe0's version"
    rm "$pluginsdir/floe_toy.so"

    say "remove floe-plugin-nn (and the floe-plugins-base metapackage that needs it)"
    if dpkg -r floe-plugin-nn >/dev/null 2>&1; then
        fail "dpkg removed floe-plugin-nn while floe-plugins-base depends on it"
    fi
    run_dpkg -r floe-plugins-base floe-plugin-nn
    [ ! -e "$pluginsdir/floe_ops_nn.so" ] || fail "floe_ops_nn.so is still there"
    [ -e "$pluginsdir/floe_ops_math.so" ] && [ -e "$pluginsdir/floe_dev_cpu.so" ] ||
        fail "removing floe-plugin-nn removed another plugin"
    dpkg --verify libfloe0 $libs floe-plugin-cpu floe-plugin-math floe-tools ||
        fail "dpkg --verify after removing floe-plugin-nn"
    out=$(floe plugins)
    echo "$out"
    check_plugins "$out" "dev_cpu ops_math" "$pluginsdir"
    ops_list >"$work/ops-after"
    local gone kept
    gone=$(comm -23 "$work/ops-before" "$work/ops-after" | wc -l)
    kept=$(comm -13 "$work/ops-before" "$work/ops-after" | wc -l)
    [ "$gone" -eq "$nn_ops" ] && [ "$kept" -eq 0 ] ||
        fail "after the removal $gone ops are gone and $kept new, expected ops_nn's $nn_ops and none"
    grep -qx MatMul "$work/ops-after" || fail "MatMul (ops_math) disappeared with floe-plugin-nn"
    if out=$(floe ops Conv2D 2>&1); then
        echo "$out"; fail "floe ops Conv2D succeeds without floe-plugin-nn"
    fi
    echo "floe ops Conv2D: $out"
    grep -q "Conv2D" <<<"$out" || fail "floe ops Conv2D's error does not name the op"
    rc=0
    out=$(floe train --epochs 1 --data "$share/data" --no-checkpoint 2>&1) || rc=$?
    echo "floe train: $out" | tail -n 3
    [ "$rc" -eq 1 ] || fail "floe train without ops_nn exits $rc, expected 1"
    grep -q "unknown op '" <<<"$out" || fail "floe train without ops_nn does not name the missing op"
    install -m 644 "$work/floe_toy.so" "$pluginsdir/floe_toy.so"
    "$work/consumer" "$loaddir" "$pluginsdir" || fail "the math ops stopped working without floe-plugin-nn"
    rm "$pluginsdir/floe_toy.so"

    say "purge everything"
    run_dpkg -P libfloe-dev floe-tools floe-plugin-math floe-plugin-cpu $libs libfloe0
    local left
    left=$({ dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'libfloe*' 'floe-*' 2>/dev/null || true; } |
           awk '$1 != "un" && $1 != "pn" {print $NF}')
    [ -z "$left" ] || fail "still installed after the purge: $left"
    [ ! -e "$pluginsdir" ] || { ls -la "$pluginsdir"; fail "$pluginsdir is left after the purge"; }
    ! ldconfig -p | grep -q libfloe || fail "libfloe is still in ld.so.cache after the purge"
    hash -r
    ! command -v floe >/dev/null || fail "floe is still installed after the purge"
    say "PASS (clean root)"
}

# ---- stage 2: inside the private mount namespace ------------------------------------

enter_root() {
    local tmp=$1 root=$1/root layer=$1/layer
    # The upper layer on a tmpfs: overlayfs refuses an upper directory on an overlayfs
    # (as / is in many containers), and the root vanishes with the namespace.
    mkdir -p "$layer" "$root"
    mount -t tmpfs -o mode=0755 floe-pkgtest-layer "$layer"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay floe-pkgtest -o "lowerdir=/,upperdir=$layer/upper,workdir=$layer/work" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/run"
    for d in usr/local opt; do
        [ -d "$root/$d" ] && mount -t tmpfs tmpfs "$root/$d"
    done
    mkdir -p "$root/floe-pkgtest"
    mount --bind "$tmp/share" "$root/floe-pkgtest"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive /bin/bash /floe-pkgtest/test-packages.sh --in-root
}

# ---- stage 1: build, lint, prepare, enter ---------------------------------------------

# Writes the first $3 items of the gzip'd IDX file $1 to $2 (gzip'd).
idx_head() {
    python3 - "$@" <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with gzip.open(src, "rb") as f:
    data = f.read()
ndim = data[3]
dims = list(struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim]))
item = 1
for d in dims[1:]:
    item *= d
n = min(n, dims[0])
dims[0] = n
body = data[4 + 4 * ndim: 4 + 4 * ndim + n * item]
with gzip.open(dst, "wb", compresslevel=1) as f:
    f.write(data[:4] + struct.pack(">%dI" % ndim, *dims) + body)
PY
}

main() {
    local debs_in="" keep="" lintian=1
    while [ "$#" -gt 0 ]; do
        case $1 in
            --in-root) in_root; return ;;
            --enter) enter_root "$2"; return ;;
            --debs) debs_in=$(realpath "$2"); shift ;;
            --keep) keep=$(realpath -m "$2"); shift ;;
            --no-lintian) lintian=0 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
            *) echo "usage: $0 [--debs DIR] [--keep DIR] [--no-lintian]" >&2; return 2 ;;
        esac
        shift
    done

    local repo self
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    self=$(realpath "${BASH_SOURCE[0]}")
    for t in dpkg-buildpackage dh fakeroot unshare chroot gcc pkg-config python3 git; do
        command -v "$t" >/dev/null || skip "$t is not installed (bash scripts/setup.sh)"
    done
    [ -f "$FASHION/train-images-idx3-ubyte.gz" ] || skip "dataset-fashion-mnist is not installed"
    [ "$(id -u)" -eq 0 ] || skip "needs root: dpkg installs into an overlay of / in a private mount namespace"
    local ns=(unshare --mount --propagation private)
    "${ns[@]}" true 2>/dev/null || skip "cannot make a mount namespace (${ns[*]}): no CAP_SYS_ADMIN here"

    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/floe-pkgtest-XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    mkdir -p "$tmp/share/debs" "$tmp/share/data" "$tmp/share/src"

    local t0 t1 t2 t3
    t0=$(date +%s.%N)
    if [ -z "$debs_in" ]; then
        if git -C "$repo" rev-parse --verify -q HEAD >/dev/null 2>&1; then
            local head
            head=$(git -C "$repo" rev-parse HEAD)
            say "dpkg-buildpackage -b -uc -us of commit ${head:0:12}"
            git clone --quiet --no-checkout "$repo" "$tmp/src/floe"
            git -C "$tmp/src/floe" checkout --quiet --detach "$head"
        else
            # Not a git checkout (an unpacked tarball): the tree as it is, less build dirs.
            say "dpkg-buildpackage -b -uc -us of $repo (not a git checkout: copied)"
            mkdir -p "$tmp/src/floe"
            tar -C "$repo" --exclude='./build*' --exclude='./obj-*' --exclude='./debian/.debhelper' \
                -cf - . | tar -C "$tmp/src/floe" -xf -
        fi
        (cd "$tmp/src/floe" &&
         DEB_BUILD_OPTIONS="nocheck noddebs parallel=${JOBS:-$(nproc)}" \
             dpkg-buildpackage -b -uc -us >"$tmp/build.log" 2>&1) ||
            { grep -v "^\[[0-9]*/[0-9]*\]" "$tmp/build.log" | tail -n 25; fail "dpkg-buildpackage (log above)"; }
        grep -E '^dpkg-deb: building package' "$tmp/build.log" | sed 's/^/  /'
        # New public symbols of libfloe: to be added to debian/libfloe0.symbols.
        if grep -q '^dpkg-gensymbols: warning' "$tmp/build.log"; then
            sed -n '/^dpkg-gensymbols: warning/,/^ *dh_/p' "$tmp/build.log" | grep -v '^ *dh_'
        fi
        debs_in=$tmp/src
    fi
    t1=$(date +%s.%N)
    cp "$debs_in"/*.deb "$tmp/share/debs/"
    if [ -n "$keep" ]; then
        mkdir -p "$keep"
        cp "$debs_in"/*.deb "$keep/"
        cp "$debs_in"/*.changes "$debs_in"/*.buildinfo "$keep/" 2>/dev/null || true
    fi
    for p in "${CORE_PKGS[@]}" libfloe-dev; do
        ls "$tmp/share/debs/${p}"_*.deb >/dev/null 2>&1 || fail "no $p package in $debs_in"
    done

    if [ "$lintian" -eq 1 ] && command -v lintian >/dev/null; then
        say "lintian"
        lintian --fail-on error "$tmp/share/debs"/*.deb || fail "lintian found errors"
    fi
    t2=$(date +%s.%N)

    idx_head "$FASHION/train-images-idx3-ubyte.gz" "$tmp/share/data/train-images-idx3-ubyte.gz" 10000
    idx_head "$FASHION/train-labels-idx1-ubyte.gz" "$tmp/share/data/train-labels-idx1-ubyte.gz" 10000
    idx_head "$FASHION/t10k-images-idx3-ubyte.gz" "$tmp/share/data/t10k-images-idx3-ubyte.gz" 2000
    idx_head "$FASHION/t10k-labels-idx1-ubyte.gz" "$tmp/share/data/t10k-labels-idx1-ubyte.gz" 2000
    cp "$repo/tests/install/toy_plugin.c" "$repo/tests/install/consumer.c" "$tmp/share/src/"
    cp "$self" "$tmp/share/test-packages.sh"

    say "clean root: overlay of / in a private mount namespace"
    "${ns[@]}" bash "$self" --enter "$tmp" || fail "the clean-root checks (above)"
    t3=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
        printf "=== test-packages: PASS: build %.1f s, lintian %.1f s, install tests %.1f s, total %.1f s\n",
               b - a, c - b, d - c, d - a }'
}

main "$@"
