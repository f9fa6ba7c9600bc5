#!/bin/sh
# tests/sdk/test_service.sh: contrib/gottwall.service is a valid, hardened
# systemd unit.
#
# `systemd-analyze verify` on the unit, with ExecStart pointing at the
# gottwall of a `make install DESTDIR=...` of this build and MANPATH at its
# man pages (verify checks the Documentation= pages exist): no message at
# all. `systemd-analyze security --offline=yes`: an exposure of 2.0 or less.
# And the settings docs/operations.md promises are there. Skips (77) without
# systemd-analyze.
set -eu

: "${GW_BUILDDIR:?run me through make check}"
: "${GW_SRCDIR:?run me through make check}"

. "$GW_SRCDIR/tests/sdk/lib.sh"

unit=$GW_SRCDIR/contrib/gottwall.service
for want in 'User=gottwall' 'DynamicUser=yes' 'Restart=on-failure' \
        'ExecReload=/bin/kill -HUP $MAINPID' 'NoNewPrivileges=yes' \
        'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
        'StateDirectory=gottwall' 'ReadWritePaths=/var/lib/gottwall' \
        'CapabilityBoundingSet=' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
        'SystemCallFilter=@system-service' 'MemoryDenyWriteExecute=yes'; do
    grep -qxF "$want" "$unit" || fail "$unit lacks the line $want"
done

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze is not installed"
    exit 77
fi

sdk_install service
bin=$(find "$dest" -name gottwall -type f -perm -u+x | head -1)
man8=$(find "$dest" -name gottwall.8 | head -1)
[ -n "$bin" ] && [ -n "$man8" ] || fail "no gottwall or gottwall.8 under $dest"
mandir=$(dirname "$(dirname "$man8")")

sed "s|/usr/local/bin/gottwall|$bin|g" "$unit" >"$tmp/gottwall.service"
MANPATH=$mandir systemd-analyze verify "$tmp/gottwall.service" >"$tmp/verify.log" 2>&1 ||
    { cat "$tmp/verify.log"; fail "systemd-analyze verify failed"; }
[ ! -s "$tmp/verify.log" ] || { cat "$tmp/verify.log"; fail "systemd-analyze verify complained"; }
echo "systemd-analyze verify: clean"

MANPATH=$mandir systemd-analyze security --offline=yes --no-pager \
    "$tmp/gottwall.service" >"$tmp/security.log" 2>&1 || true
level=$(sed -n 's/.*Overall exposure level for gottwall.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
[ -n "$level" ] || { cat "$tmp/security.log"; fail "no exposure level from systemd-analyze security"; }
echo "systemd-analyze security: exposure $level"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' ||
    { grep '✗' "$tmp/security.log"; fail "exposure $level is above 2.0"; }
