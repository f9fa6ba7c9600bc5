#!/bin/sh
# tests/sdk/test_examples.sh: the SDK as a third party meets it.
#
# Installs the current build into a temporary DESTDIR, builds the example
# plugins (examples/storage_csv, examples/transport_pipe) and a plugin for
# the next major ABI (tests/sdk/abi_next.c) outside the source tree with
# nothing but `pkg-config gottwall-plugin` pointing into that DESTDIR, checks
# each exports gw_plugin_descriptor and nothing else, runs the installed
# gottwall-storage-test against the csv storage, and then runs the build's
# daemon with the examples (tests/sdk/examples_daemon.py): events through
# the pipe and over HTTP, exact counts back through the read API, and the
# next-ABI plugin refused with the loader's exact message.
#
# Needs: GW_BUILDDIR, GW_SRCDIR (set by `make check`), cc, make, pkg-config,
# nm, python3.
set -eu

: "${GW_BUILDDIR:?run me through make check}"
: "${GW_SRCDIR:?run me through make check}"

. "$GW_SRCDIR/tests/sdk/lib.sh"

sdk_install examples

pc=$(find "$dest" -name gottwall-plugin.pc | head -1)
[ -n "$pc" ] || fail "no gottwall-plugin.pc under $dest"
storage_test=$(find "$dest" -name gottwall-storage-test -type f | head -1)
version_h=$(find "$dest" -path '*/gottwall/version.h' | head -1)
[ -n "$version_h" ] || fail "no gottwall/version.h under $dest"

# Nothing from the source tree: the installed .pc, rebased into DESTDIR.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
cflags=$(pkg-config --cflags gottwall-plugin)
echo "pkg-config --cflags gottwall-plugin: $cflags"
case "$cflags" in
*"$dest"*) ;;
*) fail "pkg-config --cflags does not point into $dest: $cflags" ;;
esac
plugindir=$(pkg-config --variable=plugindir gottwall-plugin)
[ -f "$plugindir/storage_memory.so" ] ||
    fail "pkg-config --variable=plugindir ($plugindir) does not hold the installed plugins"

# The examples, copied out of the tree (a distcheck source tree is read-only).
mkdir -p "$tmp/src" "$tmp/abi"
cp -R "$GW_SRCDIR/examples/storage_csv" "$GW_SRCDIR/examples/transport_pipe" "$tmp/src/"
chmod -R u+w "$tmp/src"
for ex in storage_csv transport_pipe; do
    echo "+ make -C $tmp/src/$ex CFLAGS='-O2 -g -Werror'"
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        make -C "$tmp/src/$ex" CFLAGS="-O2 -g -Werror" >"$tmp/$ex.log" 2>&1 ||
        { cat "$tmp/$ex.log"; fail "building $ex out of tree failed"; }
    grep -q -- "$dest" "$tmp/$ex.log" ||
        { cat "$tmp/$ex.log"; fail "$ex was not compiled against $dest"; }
done
echo "+ cc ... -o $tmp/abi/storage_abinext.so tests/sdk/abi_next.c"
${CC:-cc} -std=c99 -Wall -Wextra -Werror -fPIC -fvisibility=hidden $cflags \
    -shared -Wl,-z,defs -o "$tmp/abi/storage_abinext.so" "$GW_SRCDIR/tests/sdk/abi_next.c" ||
    fail "building the next-ABI plugin failed"

# One exported symbol each.
for so in "$tmp/src/storage_csv/storage_csv.so" \
          "$tmp/src/transport_pipe/transport_pipe.so" \
          "$tmp/abi/storage_abinext.so"; do
    syms=$(nm -D --defined-only "$so" | awk '{print $3}' | sort | tr '\n' ' ')
    [ "$syms" = "gw_plugin_descriptor " ] ||
        fail "$so exports \"$syms\", not only gw_plugin_descriptor"
    echo "$so: exports $syms"
done

# The installed conformance suite against the csv storage.
if [ -z "$storage_test" ]; then
    echo "SKIP: gottwall-storage-test is not installed (configure found no Check)"
    exit 77
fi
echo "+ $storage_test ./storage_csv.so PATH=$tmp/conformance.csv"
(cd "$tmp/src/storage_csv" &&
    "$storage_test" ./storage_csv.so PATH="$tmp/conformance.csv") >"$tmp/conformance.log" 2>&1 ||
    { cat "$tmp/conformance.log"; fail "gottwall-storage-test failed on the csv storage"; }
tail -1 "$tmp/conformance.log"
grep -q '^100%: Checks: [0-9]*, Failures: 0, Errors: 0$' "$tmp/conformance.log" ||
    { cat "$tmp/conformance.log"; fail "unexpected conformance summary"; }

# The daemon with the examples.
python3 "$GW_SRCDIR/tests/sdk/examples_daemon.py" \
    "$tmp/src/storage_csv" "$tmp/src/transport_pipe" "$tmp/abi" "$version_h"
