# tests/sdk/lib.sh: what the tests/sdk/*.sh scripts share; sourced by them.
#
# fail MESSAGE: prints "FAIL: MESSAGE" and exits 1.
# sdk_install NAME: makes a temporary directory $tmp (removed at exit) and
#   runs `make install` of this very build into $dest = $tmp/dest, as a
#   packager would. MAKEFLAGS is the outer `make check`'s (jobserver,
#   TESTS=...): not ours. The lock keeps the sdk tests (run at once under
#   make -j) from installing at the same time.

fail() {
    echo "FAIL: $*"
    exit 1
}

sdk_install() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/gwsdk-$1-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT INT TERM
    dest=$tmp/dest
    echo "+ make install DESTDIR=$dest"
    if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
            flock "${TMPDIR:-/tmp}/gottwall-sdk-install.lock" \
            make -C "$GW_BUILDDIR" install DESTDIR="$dest" \
            >"$tmp/install.log" 2>&1; then
        tail -40 "$tmp/install.log"
        fail "make install failed"
    fi
}
