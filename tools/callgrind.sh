#!/bin/bash
# tools/callgrind.sh: instructions per event of the ingest path, counted by
# valgrind's callgrind (docs/performance.md; issue 18's targets: <= 400 per
# statsd line, <= 1,000 per signed JSON event over UDP).
#
# Starts GottWall from a build dir under callgrind (memory storage, one
# ingest loop, the statsd and udp transports), sends with tools/gwload
#   statsd: name:1|c, 40 lines per datagram, 1,000 names
#   udp:    signed (S2) JSON, 20 events per datagram, 1,000 names, one
#           filter with 10 values
# at a low rate (callgrind runs the daemon some 50x slower), reads every
# event back through the read API, stops the daemon and divides the
# inclusive instruction count of each transport's read callback
# (sd_udp_cb, ud_read_cb: everything after recvmmsg: splitting, auth,
# parsing, admission, aggregation) by the events stored. FLUSH_INTERVAL
# is a minute, so each series is made once and the count is the hot path
# of an event whose series the table holds (as at any rate that matters;
# --flush MS to count the making of series too).
#
# Usage: tools/callgrind.sh [--builddir DIR] [--events N] [--flush MS]
# Sends only to 127.0.0.1; stops what it started at exit.
set -u

BUILDDIR=$(pwd)
EVENTS=200000
FLUSH=60000
while [ $# -gt 0 ]; do
    case "$1" in
    --builddir) BUILDDIR=$(cd "$2" && pwd) || exit 2; shift ;;
    --builddir=*) BUILDDIR=$(cd "${1#*=}" && pwd) || exit 2 ;;
    --events) EVENTS=$2; shift ;;
    --flush) FLUSH=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "callgrind: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "callgrind: install valgrind" >&2; exit 2; }
GOTTWALL=$BUILDDIR/gottwall GWLOAD=$BUILDDIR/tools/gwload
[ -x "$GOTTWALL" ] && [ -x "$GWLOAD" ] || { echo "callgrind: build $BUILDDIR first" >&2; exit 2; }
export GOTTWALL_PLUGIN_PATH=$BUILDDIR/.libs

TMP=$(mktemp -d /tmp/gwcallgrind.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SP=$(port) UP=$(port) WP=$(port)
cat >"$TMP/gottwall.conf" <<EOF
SECRET_KEY = "secret_key";
PROJECTS = { test_project = "my_public_key"; };
STORAGE = "memory";
STORAGE_SETTINGS = { PATH = "$TMP/snapshot"; SNAPSHOT_INTERVAL = 3600; };
BACKENDS = {
    statsd = { HOST = "127.0.0.1"; PORT = $SP; PROJECT = "test_project"; TCP = false; };
    udp = { HOST = "127.0.0.1"; PORT = $UP; };
};
SERVER = { HOST = "127.0.0.1"; PORT = $WP; };
ANONYMOUS_LOGIN = true;
cookie_secret = "callgrind cookie secret";
FLUSH_INTERVAL = $FLUSH;
INGEST_LOOPS = 1;
EOF
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    "$GOTTWALL" -c "$TMP/gottwall.conf" -l warning start >"$TMP/daemon.log" 2>&1 &
PID=$!
for _ in $(seq 300); do
    (exec 3<>/dev/tcp/127.0.0.1/"$WP") 2>/dev/null && break
    sleep 0.1
done

send() { # proto port args...
    local proto=$1 p=$2; shift 2
    "$GWLOAD" --proto "$proto" --port "$p" "$@" --events "$EVENTS" --rate 20000 \
        --duration 600 --read-back "http://127.0.0.1:$WP" --settle $((FLUSH / 1000 + 5)) \
        --read-back-timeout $((FLUSH / 1000 + 120))
}
S=$(send statsd "$SP" --per-packet 40 --metrics 1000)
U=$(send udp "$UP" --per-packet 20 --metrics 1000 --filter-values 10)
echo "statsd: $S"
echo "udp:    $U"
kill -TERM "$PID"; wait "$PID"; PID=""

stored() { echo "$1" | tr ' ' '\n' | awk -F= '$1 == "stored" { print $2 }'; }
ir_of() { # function
    callgrind_annotate --inclusive=yes "$TMP/cg.out" 2>/dev/null |
        awk -v f="$1" '$0 ~ ("[ :]" f " ") || $0 ~ ("[ :]" f "$") { gsub(",", "", $1); print $1; exit }'
}
for t in "statsd sd_udp_cb $(stored "$S")" "udp ud_read_cb $(stored "$U")"; do
    set -- $t
    ir=$(ir_of "$2")
    awk -v n="$1" -v f="$2" -v ir="${ir:-0}" -v ev="${3:-0}" 'BEGIN {
        printf "%-6s %-10s %14.0f instructions / %9d events = %7.0f per event\n", n, f, ir, ev, (ev > 0 ? ir / ev : 0) }'
done
