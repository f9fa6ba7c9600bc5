#!/bin/sh
# Installs what building and testing GottWall needs on Debian 12 / Ubuntu
# 22.04+: the compiler and autotools, the libraries, the servers the tests
# start (redis-server, PostgreSQL) and Chromium for the browser test.
# Runs apt-get only for packages that are missing; uses sudo when not root.
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config
 libev-dev libjansson-dev libssl-dev libhiredis-dev libpq-dev libconfig-dev
 libhttp-parser-dev check
 redis-server postgresql
 python3 nodejs npm chromium
 groff-base man-db
 clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
# Debian's nodejs package is enough; a node installed another way is too.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
fi

if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "deps: installing:$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
else
    echo "deps: every package is installed"
fi
