#!/bin/bash
# tools/saturate.sh: one saturation step against a fresh GottWall of a
# build dir, to compare two builds on the same machine (alternate them;
# docs/performance.md, run F): the daemon (memory storage, one transport,
# default INGEST_LOOPS) takes tools/gwload sending as fast as it can for
# 3 s to 1,000 names; prints what was sent and stored and the daemon's
# CPU seconds.
#
# Usage: tools/saturate.sh BUILD PER_PACKET PROTO   (PROTO: statsd or udp)
# Sends only to 127.0.0.1; stops the daemon it started.
set -u
[ $# -eq 3 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
B=$1; PP=$2; PROTO=$3
D=$(mktemp -d); P=$((20000 + RANDOM % 20000)); W=$((P + 1))
cat > $D/g.conf <<EOC
SECRET_KEY = "secret_key";
PROJECTS = { test_project = "my_public_key"; };
STORAGE = "memory";
STORAGE_SETTINGS = { PATH = "$D/snap"; SNAPSHOT_INTERVAL = 3600; };
BACKENDS = { $PROTO = { HOST = "127.0.0.1"; PORT = $P; $( [ $PROTO = statsd ] && echo 'PROJECT = "test_project";' ) }; };
SERVER = { HOST = "127.0.0.1"; PORT = $W; };
ANONYMOUS_LOGIN = true;
cookie_secret = "bench cookie secret";
FLUSH_INTERVAL = 1000;
EOC
GOTTWALL_PLUGIN_PATH=$B/.libs $B/gottwall -c $D/g.conf -l warning start > $D/log 2>&1 & PID=$!
sleep 1
EXTRA=""; [ $PROTO = udp ] && EXTRA="--filter-values 10"
$B/tools/gwload --proto $PROTO --port $P --per-packet $PP --metrics 1000 $EXTRA --rate 0 --duration 3 --server-pid $PID --read-back http://127.0.0.1:$W --settle 3 | tr ' ' '\n' | grep -E "^(sent|stored|server_cpu)=" | tr '\n' ' '
kill $PID; wait $PID 2>/dev/null; rm -rf $D; echo
