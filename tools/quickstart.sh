#!/bin/sh
# Builds GottWall from this checkout and starts it on the example config:
# memory storage, events over HTTP (8890), TCP (8897) and UDP (8898), the
# dashboard on http://127.0.0.1:8889. Runs in the foreground; Ctrl-C stops it
# (everything received is flushed to the snapshot first).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/tools/deps.sh"
if [ -f package-lock.json ] && [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
[ -x configure ] || ./autogen.sh
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
# Run from the build tree: plugins and web assets are found here.
GOTTWALL_PLUGIN_PATH="$top/build/.libs"
GOTTWALL_WEBDIR="$top/build/web-dist"
export GOTTWALL_PLUGIN_PATH GOTTWALL_WEBDIR
cd "$top"
exec ./build/gottwall --config=gottwall.conf.example start
