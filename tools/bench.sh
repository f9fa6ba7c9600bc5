#!/bin/bash
# tools/bench.sh: GottWall's benchmark against its peers, on one machine.
#
# Starts GottWall from a build dir (memory storage, FLUSH_INTERVAL 1000) and
# the peers that take the same traffic: collectd's statsd plugin, Etsy statsd
# (node) and nginx answering 204 to the same POSTs (the HTTP ceiling). Drives
# each with tools/gwload and finds the highest rate with at most 0.1 % loss by
# a step search over --rate. Loss comes from what the server stored (GottWall:
# its read API; collectd: its csv writer's counters; Etsy statsd: its
# management port's `counters`; nginx: the answers the generator got). Also
# records the datagrams the kernel dropped on the server's socket, its CPU time and peak RSS,
# GottWall's idle RSS and its bytes per live series, then prints a table and
# the ratios.
#
# Usage: tools/bench.sh [--quick] [--builddir DIR] [--only a,b,...]
#                       [--no-install] [--no-pin] [--out FILE] [--rcvbuf N]
#                       [--rounds N]
#   --quick       a short run (fewer, shorter steps)
#   --builddir    where gottwall and tools/gwload are built (default: .)
#   --only        scenario names (see --list)
#   --no-install  do not apt-get/npm install the peers (skip missing ones)
#   --no-pin      do not pin the servers to CPU 1 and the generator to CPU 0
#   --out FILE    also write the result rows (tab-separated) to FILE
#   --rcvbuf N    set net.core.rmem_default (and rmem_max if lower) to N
#                 bytes while it runs, so the peers' UDP sockets get the
#                 receive buffer GottWall asks for (4 MiB); restored at exit
#   --rounds N    before the step searches, measure every scenario's
#                 saturation (sending as fast as the generator can, what is
#                 counted per second of sending) N times, the rounds
#                 interleaved across scenarios, and report the median
#                 (default 0: no saturation rounds)
#
# Peers: collectd counted through its csv writer (statsd*-collectd) and,
# without a file writer, through its write_prometheus plugin's /metrics
# (statsd*-collectdp: the peer at its best; unixsock's GETVAL would give
# a counter's rate, not its total).
# All traffic goes to 127.0.0.1. Every process it starts is stopped at exit.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=$(pwd)
ARGS="$*"
QUICK=0
ONLY=""
INSTALL=1
PIN=1
OUT=""
RCVBUF=""
ROUNDS=0
LOSS_MAX=0.1

SCENARIOS="statsd40-gottwall statsd40-collectd statsd40-collectdp statsd40-etsy
statsd40k40-gottwall statsd40k40-collectdp statsd40k40-etsy
statsd1-gottwall statsd1-collectd statsd1-collectdp statsd1-etsy
statsd40t-gottwall statsd1t-gottwall
udp20-gottwall udp20x2-gottwall tcp-gottwall
http1-gottwall http1-nginx http100-gottwall http100-nginx
idle-rss table-memory series-memory"

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --builddir) BUILDDIR=$(cd "$2" && pwd) || exit 2; shift ;;
    --builddir=*) BUILDDIR=$(cd "${1#*=}" && pwd) || exit 2 ;;
    --only) ONLY=$2; shift ;;
    --only=*) ONLY=${1#*=} ;;
    --no-install) INSTALL=0 ;;
    --no-pin) PIN=0 ;;
    --rcvbuf) RCVBUF=$2; shift ;;
    --rcvbuf=*) RCVBUF=${1#*=} ;;
    --rounds) ROUNDS=$2; shift ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --out) OUT=$2; shift ;;
    --out=*) OUT=${1#*=} ;;
    --list) echo $SCENARIOS; exit 0 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

GOTTWALL=$BUILDDIR/gottwall
GWLOAD=$BUILDDIR/tools/gwload
for f in "$GOTTWALL" "$GWLOAD"; do
    if [ ! -x "$f" ]; then
        echo "bench: $f is missing: build first (make gottwall tools/gwload), or pass --builddir" >&2
        exit 2
    fi
done
export GOTTWALL_PLUGIN_PATH=$BUILDDIR/.libs

if [ $QUICK = 1 ]; then
    STEP_SECONDS=2; STEPS=2; SERIES=200000
else
    STEP_SECONDS=3; STEPS=4; SERIES=1000000
fi
SETTLE=3

TMP=$(mktemp -d /tmp/gwbench.XXXXXX)
PIDS=()
RESULTS=$TMP/results.tsv
: > "$RESULTS"

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
    done
    if [ -n "${RMEM_SAVED:-}" ]; then
        echo "$RMEM_SAVED" >/proc/sys/net/core/rmem_default
        echo "$RMEM_MAX_SAVED" >/proc/sys/net/core/rmem_max
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

want() {
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    return 1
}

if [ $PIN = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN="taskset -c 1"; GEN_PIN="taskset -c 0"
    NGINX_WORKERS=1
else
    # Every server on every CPU, as GottWall's ingest loops (INGEST_LOOPS
    # = 0: one per CPU, at most 8) are: nginx gets as many workers.
    SERVER_PIN=""; GEN_PIN=""
    NGINX_WORKERS=$(nproc); [ "$NGINX_WORKERS" -gt 8 ] && NGINX_WORKERS=8
fi

# ---- peers ----

install_peers() {
    local need=""
    command -v collectd >/dev/null || [ -x /usr/sbin/collectd ] || need="$need collectd-core"
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need="$need nginx"
    # collectd's write_prometheus plugin (statsd*-collectdp) needs these
    ldconfig -p | grep -q libmicrohttpd.so.12 || need="$need libmicrohttpd12"
    ldconfig -p | grep -q libprotobuf-c.so.1 || need="$need libprotobuf-c1"
    if [ -n "$need" ]; then
        if [ $INSTALL = 1 ]; then
            log "installing$need"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need \
                >"$TMP/apt.log" 2>&1 || {
                DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$TMP/apt.log" 2>&1
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                    $need >>"$TMP/apt.log" 2>&1 || log "apt-get failed: $(tail -2 "$TMP/apt.log")"
            }
        else
            log "missing$need (--no-install): those peers are skipped"
        fi
    fi
    # package.json's devDependency (npm ci), else a copy of its own
    ETSY=$SRCDIR/node_modules/statsd/stats.js
    [ -f "$ETSY" ] || ETSY=$SRCDIR/tools/bench/node_modules/statsd/stats.js
    if [ ! -f "$ETSY" ] && [ $INSTALL = 1 ] && command -v npm >/dev/null; then
        log "installing Etsy statsd (npm) into tools/bench/node_modules"
        npm install --no-save --no-package-lock --no-audit --no-fund \
            --prefix "$SRCDIR/tools/bench" statsd@0.9.0 >"$TMP/npm.log" 2>&1 ||
            log "npm install failed: $(tail -2 "$TMP/npm.log")"
    fi
}

COLLECTD=$(command -v collectd || echo /usr/sbin/collectd)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

free_port() {
    python3 -c '
import socket
for _ in range(100):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close(); u.close()'
}

wait_tcp() { # port pid
    local i
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

wait_udp() { # port pid
    local hex i
    hex=$(printf '%04X' "$1")
    for i in $(seq 100); do
        kill -0 "$2" 2>/dev/null || return 1
        grep -q "^ *[0-9]*: 0100007F:$hex " /proc/net/udp && return 0
        sleep 0.1
    done
    return 1
}

start_bg() { # logfile command...
    local logf=$1; shift
    # shellcheck disable=SC2086
    $SERVER_PIN "$@" >"$logf" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

stop_pid() {
    local p=$1 i
    kill "$p" 2>/dev/null
    for i in $(seq 100); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
}

start_gottwall() { # backends: any of http tcpip udp statsd
    local b p pv conf=$TMP/gottwall.conf
    GW_SERVER_PORT=$(free_port)
    {
        echo 'SECRET_KEY = "secret_key";'
        echo 'PROJECTS = { test_project = "my_public_key"; };'
        echo 'STORAGE = "memory";'
        echo "STORAGE_SETTINGS = { PATH = \"$TMP/gottwall.snapshot\"; SNAPSHOT_INTERVAL = 3600; };"
        echo 'BACKENDS = {'
        for b in "$@"; do
            p=$(free_port)
            printf -v "GW_PORT_$b" '%s' "$p"
            if [ "$b" = statsd ]; then
                echo "    $b = { HOST = \"127.0.0.1\"; PORT = $p; PROJECT = \"test_project\"; };"
            else
                echo "    $b = { HOST = \"127.0.0.1\"; PORT = $p; };"
            fi
        done
        echo '};'
        echo "SERVER = { HOST = \"127.0.0.1\"; PORT = $GW_SERVER_PORT; };"
        echo 'ANONYMOUS_LOGIN = true;'
        echo 'cookie_secret = "bench cookie secret";'
        echo 'FLUSH_INTERVAL = 1000;'
        [ -n "${GW_EXTRA_CONF:-}" ] && echo "$GW_EXTRA_CONF"
    } >"$conf"
    rm -f "$TMP/gottwall.snapshot"
    start_bg "$TMP/gottwall.log" "$GOTTWALL" -c "$conf" -l warning start
    if ! wait_tcp "$GW_SERVER_PORT" "$SERVER_PID"; then
        log "gottwall did not start: $(tail -5 "$TMP/gottwall.log")"
        return 1
    fi
    for b in "$@"; do
        pv=GW_PORT_$b; p=${!pv}
        case $b in
        http|tcpip) wait_tcp "$p" "$SERVER_PID" ;;
        *) wait_udp "$p" "$SERVER_PID" ;;
        esac || { log "gottwall: $b did not open port $p"; return 1; }
    done
}

start_collectd() { # [prometheus]: no file writer, counts read from /metrics
    local dir=$TMP/collectd writer
    rm -rf "$dir"; mkdir -p "$dir/csv"
    PEER_PORT=$(free_port)
    if [ "${1:-}" = prometheus ]; then
        PEER_PROM=$(free_port)
        writer="LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host \"127.0.0.1\"
  Port \"$PEER_PROM\"
</Plugin>"
    else
        writer="LoadPlugin csv
<Plugin csv>
  DataDir \"$dir/csv\"
  StoreRates false
</Plugin>"
    fi
    cat >"$dir/collectd.conf" <<EOF
Hostname "bench"
FQDNLookup false
BaseDir "$dir"
PIDFile "$dir/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "$dir/collectd.log"
</Plugin>
LoadPlugin statsd
<Plugin statsd>
  Host "127.0.0.1"
  Port "$PEER_PORT"
  DeleteCounters false
</Plugin>
$writer
EOF
    start_bg "$dir/stdout.log" "$COLLECTD" -f -C "$dir/collectd.conf"
    wait_udp "$PEER_PORT" "$SERVER_PID" || { log "collectd did not start: $(tail -3 "$dir/collectd.log")"; return 1; }
}

# Sum of the cumulative counters collectd wrote for one run's names.
collectd_count() { # run_id
    local files
    files=$(ls "$TMP"/collectd/csv/bench/statsd/derive-"$1".m* 2>/dev/null)
    [ -n "$files" ] || { echo 0; return; }
    # shellcheck disable=SC2086
    awk -F, 'FNR == 1 && NR > 1 { s += last } { last = $2 } END { s += last; printf "%.0f\n", s }' $files
}

# The same sum read from collectd's write_prometheus plugin, which keeps
# each counter's total in memory and formats it only when asked.
collectd_prom() { # run_id
    curl -s --max-time 10 "http://127.0.0.1:$PEER_PROM/metrics" 2>/dev/null |
        awk -v id="$1" 'index($0, "collectd_statsd_derive_total{statsd=\"" id ".m") == 1 { s += $2 }
                        END { printf "%.0f\n", s }'
}

start_etsy() {
    local dir=$TMP/etsy
    rm -rf "$dir"; mkdir -p "$dir"
    PEER_PORT=$(free_port)
    PEER_MGMT=$(free_port)
    cat >"$dir/config.js" <<EOF
{
  address: "127.0.0.1",
  port: $PEER_PORT,
  mgmt_address: "127.0.0.1",
  mgmt_port: $PEER_MGMT,
  backends: [],
  dumpMessages: false,
  flushInterval: 3600000,
  deleteCounters: false
}
EOF
    start_bg "$dir/stdout.log" node "$ETSY" "$dir/config.js"
    wait_tcp "$PEER_MGMT" "$SERVER_PID" || { log "Etsy statsd did not start: $(tail -3 "$dir/stdout.log")"; return 1; }
    wait_udp "$PEER_PORT" "$SERVER_PID"
}

# Sum of one run's counters from Etsy statsd's management port.
etsy_count() { # run_id
    local out
    out=$(timeout 10 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$PEER_MGMT"'
        printf "counters\n" >&3
        while IFS= read -r line <&3; do
            echo "$line"
            [ "$line" = END ] && break
        done
        printf "quit\n" >&3' 2>/dev/null)
    echo "$out" | grep -o "'$1\.m[0-9]*': [0-9.]*" |
        awk -F': ' '{ s += $2 } END { printf "%.0f\n", s }'
}

start_nginx() {
    local dir=$TMP/nginx
    rm -rf "$dir"; mkdir -p "$dir/logs"
    PEER_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    client_max_body_size 2m;
    client_body_buffer_size 1m;
    server {
        listen 127.0.0.1:$PEER_PORT;
        location / { return 204; }
    }
}
EOF
    start_bg "$dir/stdout.log" "$NGINX" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf"
    wait_tcp "$PEER_PORT" "$SERVER_PID" || { log "nginx did not start: $(cat "$dir/logs/error.log")"; return 1; }
}

# ---- measurements ----

# Datagrams the kernel dropped on the server's UDP socket (the drops column
# of /proc/net/udp for 127.0.0.1:UDP_PORT; 0 for TCP scenarios).
udp_drops() {
    [ -n "${UDP_PORT:-}" ] || { echo 0; return; }
    awk -v a="$(printf '0100007F:%04X' "$UDP_PORT")" '$2 == a { d += $NF } END { print d + 0 }' /proc/net/udp
}

# CPU seconds (user + system) of a process and its threads.
cpu_of() {
    local s
    s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    echo "$s" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'
}

status_kb() { # pid field
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}

# The pids whose CPU counts as the server's (nginx: its worker too).
server_pids() {
    local kids
    kids=$(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null)
    echo "$SERVER_PID" $kids
}

cpu_sum() {
    local p t=0
    for p in $(server_pids); do
        t=$(awk -v a="$t" -v b="$(cpu_of "$p")" 'BEGIN { printf "%.2f", a + b }')
    done
    echo "$t"
}

hwm_max() {
    local p m=0 v
    for p in $(server_pids); do
        v=$(status_kb "$p" VmHWM); v=${v:-0}
        [ "$v" -gt "$m" ] && m=$v
    done
    echo "$m"
}

field() { # line name
    echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}

# CPU seconds (user + system) the generator used in the last step: bash's
# time of the command, in $TMP/gen.time.
gen_cpu() {
    awk '{ printf "%.2f", $1 + $2 }' "$TMP/gen.time" 2>/dev/null || echo 0
}

# One step: send at a rate, count what arrived. Sets STEP_* variables.
# Globals in: KIND (gottwall|collectd|collectdp|etsy|nginx), GEN_ARGS.
step() { # rate
    local rate=$1 line e0 e1 stored sent secs pids TIMEFORMAT='%U %S'
    local -a extra=()
    pids=$(server_pids | tr ' ' ',')
    e0=$(udp_drops)
    [ "$KIND" = gottwall ] && extra=(--read-back "http://127.0.0.1:$GW_SERVER_PORT"
        --settle "$SETTLE" --read-back-timeout 30)
    # The generator's CPU time, measured around the sending alone (gwload
    # reads back after its clock stops, but that costs it next to nothing).
    { time line=$($GEN_PIN "$GWLOAD" "${GEN_ARGS[@]}" --rate "$rate" --duration "$STEP_SECONDS" \
        --server-pid "$pids" "${extra[@]}" 2>>"$TMP/gwload.err"); } 2>"$TMP/gen.time"
    sent=$(field "$line" sent); secs=$(field "$line" seconds)
    case $KIND in
    gottwall) stored=$(field "$line" stored) ;;
    nginx) stored=$(field "$line" acked) ;;
    collectd|collectdp|etsy)
        local last=-1 t0 now
        t0=$(date +%s.%N); stored=0
        while :; do
            sleep 0.5
            case $KIND in
            collectd) stored=$(collectd_count "$(field "$line" run_id)") ;;
            collectdp) stored=$(collectd_prom "$(field "$line" run_id)") ;;
            *) stored=$(etsy_count "$(field "$line" run_id)") ;;
            esac
            now=$(date +%s.%N)
            [ "${stored:-0}" -ge "${sent:-0}" ] && break
            if [ "$stored" != "$last" ]; then last=$stored; t0=$now
            elif awk -v a="$now" -v b="$t0" -v s="$SETTLE" 'BEGIN { exit !(a - b >= s) }'; then break; fi
        done ;;
    esac
    e1=$(udp_drops)
    STEP_SENT=${sent:-0}; STEP_SECS=${secs:-0}; STEP_STORED=${stored:-0}
    STEP_UDPERR=$((e1 - e0)); STEP_CPU=$(field "$line" server_cpu); STEP_CPU=${STEP_CPU:-0}
    STEP_GEN=$(gen_cpu)
    STEP_LOSS=$(awk -v s="$STEP_SENT" -v k="$STEP_STORED" 'BEGIN { if (s > 0) printf "%.3f", 100 * (s - k) / s; else print "100" }')
    STEP_RATE=$(awk -v k="$STEP_STORED" -v t="$STEP_SECS" 'BEGIN { if (t > 0) printf "%.0f", k / t; else print 0 }')
    log "  $NAME rate=$rate: sent=$STEP_SENT stored=$STEP_STORED in ${STEP_SECS}s -> ${STEP_RATE}/s loss=$STEP_LOSS% udp_drops=$STEP_UDPERR server_cpu=${STEP_CPU}s generator_cpu=${STEP_GEN}s"
}

ok_loss() { awk -v l="$1" -v m="$LOSS_MAX" 'BEGIN { exit !(l <= m) }'; }

# Step search: first as fast as possible. If that loses more than 0.1 %,
# try 90 % of the rate the server kept up with, then step up by 25 % while
# steps pass or halve while they fail, and bisect between the best passing
# and the lowest failing rate. Records the best passing step.
search() {
    local lo=0 hi guess best="" n=0 max first_pass=""
    step 0
    if ok_loss "$STEP_LOSS"; then
        best="$STEP_RATE $STEP_SENT $STEP_STORED $STEP_LOSS $STEP_UDPERR $STEP_CPU $STEP_SECS $STEP_GEN"
    else
        hi=$(awk -v s="$STEP_SENT" -v t="$STEP_SECS" 'BEGIN { printf "%.0f", (t > 0) ? s / t : 0 }')
        guess=$(awk -v r="$STEP_RATE" -v h="$hi" 'BEGIN { g = 0.9 * r; if (g < h / 50) g = h / 50; printf "%.0f", g }')
        max=$((STEPS + 6))
        while [ "$guess" -ge 100 ] && [ $n -lt $max ]; do
            n=$((n + 1))
            step "$guess"
            # the machine is shared: a failing step gets one more try, so a
            # passing stall elsewhere does not end the search (for every server)
            ok_loss "$STEP_LOSS" || { log "  (again)"; step "$guess"; }
            if ok_loss "$STEP_LOSS"; then
                best="$STEP_RATE $STEP_SENT $STEP_STORED $STEP_LOSS $STEP_UDPERR $STEP_CPU $STEP_SECS $STEP_GEN"
                lo=$guess
            else
                hi=$guess
            fi
            if [ "$lo" -eq 0 ]; then
                guess=$((guess / 2))            # nothing passed yet: halve
            elif [ "$lo" -eq "$guess" ] && [ $((guess + guess / 4)) -lt "$hi" ] && [ "$hi" -gt 0 ]; then
                guess=$((guess + guess / 4))    # passed: step up while under the failing rate
            else
                [ $((hi - lo)) -lt $((hi / 33)) ] && break   # within 3 %
                guess=$(( (lo + hi) / 2 ))
            fi
            # after a pass, spend at most STEPS more steps
            [ "$lo" -gt 0 ] && [ -z "${first_pass:-}" ] && first_pass=$n
            [ -n "${first_pass:-}" ] && [ $((n - first_pass)) -ge "$STEPS" ] && break
        done
        first_pass=
    fi
    [ -n "$best" ] || best="0 $STEP_SENT $STEP_STORED $STEP_LOSS $STEP_UDPERR $STEP_CPU $STEP_SECS $STEP_GEN"
    # shellcheck disable=SC2086
    set -- $best
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
        "$(hwm_max)" "$8" >>"$RESULTS"
    log "$NAME: $1 events/s at <= $LOSS_MAX% loss"
}

# Starts the server of a scenario and sets GEN_ARGS; 1 if it is skipped.
scenario_start() { # name kind gen-args...
    NAME=$1; KIND=$2; shift 2
    local pv
    UDP_PORT=""
    case $KIND in
    gottwall)
        start_gottwall "$1" || { log "$NAME skipped: gottwall did not start"; return 1; }
        pv=GW_PORT_$1
        GEN_ARGS=(--proto "$1" --port "${!pv}")
        case $1 in statsd|udp) UDP_PORT=${!pv} ;; esac ;;
    collectd|collectdp)
        [ -x "$COLLECTD" ] || { log "$NAME skipped: no collectd"; return 1; }
        if [ "$KIND" = collectdp ]; then start_collectd prometheus || return 1
        else start_collectd || return 1; fi
        GEN_ARGS=(--proto statsd --port "$PEER_PORT"); UDP_PORT=$PEER_PORT ;;
    etsy)
        [ -f "$ETSY" ] || { log "$NAME skipped: no Etsy statsd"; return 1; }
        start_etsy || return 1; GEN_ARGS=(--proto statsd --port "$PEER_PORT"); UDP_PORT=$PEER_PORT ;;
    nginx)
        [ -x "$NGINX" ] || { log "$NAME skipped: no nginx"; return 1; }
        start_nginx || return 1; GEN_ARGS=(--proto http --port "$PEER_PORT") ;;
    esac
    shift
    GEN_ARGS+=("$@")
    log "$NAME: ${GEN_ARGS[*]}"
}

run_scenario() { # name kind gen-args...
    want "$1" || return 0
    scenario_start "$@" || return 0
    search
    stop_pid "$SERVER_PID"
}

# One saturation round of a scenario: a fresh server, one step as fast as
# the generator can send; a row "sat NAME round counted/s offered/s
# server_cpu generator_cpu seconds" in the results.
saturate() { # round name kind gen-args...
    local round=$1; shift
    want "$1" || return 0
    scenario_start "$@" || return 0
    step 0
    printf 'sat\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$round" "$STEP_RATE" \
        "$(awk -v s="$STEP_SENT" -v t="$STEP_SECS" 'BEGIN { printf "%.0f", (t > 0) ? s / t : 0 }')" \
        "$STEP_CPU" "$STEP_GEN" "$STEP_SECS" >>"$RESULTS"
    stop_pid "$SERVER_PID"
}

# ---- memory ----

idle_rss() {
    want idle-rss || return 0
    start_gottwall http tcpip udp || return 0
    sleep 2
    printf 'idle-rss\t%s\n' "$(status_kb "$SERVER_PID" VmRSS)" >>"$RESULTS"
    log "idle RSS (memory storage; http, tcpip, udp): $(status_kb "$SERVER_PID" VmRSS) KiB"
    stop_pid "$SERVER_PID"
}

# The target's own measure: bytes the aggregation table holds per live
# series at 1,000,000 series (tools/tablebench: the table as the loop fills
# it between two flushes), for 1e6 metrics and for 1000 metrics x 1000
# series.
table_memory() {
    want table-memory || return 0
    local tb=$BUILDDIR/tools/tablebench a b
    [ -x "$tb" ] || { log "table-memory skipped: build tools/tablebench"; return 0; }
    a=$("$tb" metrics) || return 0
    b=$("$tb" filters) || return 0
    log "tablebench: $a"
    log "tablebench: $b"
    printf 'table-memory\t%s\t%s\n' "$(field "$a" bytes_per_series)" \
        "$(field "$b" bytes_per_series)" >>"$RESULTS"
}

# RSS per live series: 1000 metrics x (1 total + 999 filter values) = 1e6
# series, each created by one event, sent over tcpip (no loss by design).
series_memory() {
    want series-memory || return 0
    local metrics=1000 values rss0 rss1 line
    values=$((SERIES / metrics - 1))
    # one flush carries every series x 7 periods: the default cap of 1e6
    # pending deltas would drop events (see docs/performance.md); and the
    # project holds SERIES live series, past MAX_SERIES' default (1e5)
    GW_EXTRA_CONF="MAX_PENDING_SERIES = $((SERIES * 8)); MAX_SERIES = $((SERIES * 2));" \
        start_gottwall tcpip || return 0
    sleep 2
    rss0=$(status_kb "$SERVER_PID" VmRSS)
    line=$($GEN_PIN "$GWLOAD" --proto tcpip --port "$GW_PORT_tcpip" --per-packet 50 \
        --metrics $metrics --filter-values $values --events $((metrics * values)) \
        --read-back "http://127.0.0.1:$GW_SERVER_PORT" --settle 10 --read-back-timeout 120 \
        2>>"$TMP/gwload.err")
    sleep 3 # one more flush after the read-back
    rss1=$(status_kb "$SERVER_PID" VmRSS)
    log "series: $line; RSS $rss0 -> $rss1 KiB"
    printf 'series-memory\t%s\t%s\t%s\t%s\t%s\n' "$SERIES" "$rss0" "$rss1" \
        "$(field "$line" stored)" "$(status_kb "$SERVER_PID" VmHWM)" >>"$RESULTS"
    stop_pid "$SERVER_PID"
}

# ---- report ----

report() {
    echo
    echo "GottWall benchmark ($( [ $QUICK = 1 ] && echo quick || echo full ); ${STEP_SECONDS}s steps; loss <= $LOSS_MAX%)"
    echo "command: tools/bench.sh $ARGS"
    echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    echo "pinning: $( [ -n "$SERVER_PIN" ] && echo 'servers on CPU 1 (udp20x2: CPUs 0-1), generator on CPU 0' || echo none)"
    echo "UDP receive buffers: $( [ -n "$RCVBUF" ] && echo "net.core.rmem_default = $RCVBUF for every server" || echo "as shipped (peers: rmem_default $(cat /proc/sys/net/core/rmem_default) bytes; GottWall asks for 4-8 MiB, capped at rmem_max $(cat /proc/sys/net/core/rmem_max))")"
    echo
    if grep -q '^sat' "$RESULTS"; then
        echo "Saturation: the generator sends as fast as it can; median of $ROUNDS interleaved rounds"
        printf '%-22s %11s %11s %6s %6s %8s  %s\n' scenario "counted/s" "offered/s" "cpu_s" "gen_s" "us/event" "rounds (counted/s)"
        awk -F'\t' '$1 == "sat" { n[$2]++; c[$2, n[$2]] = $4; o[$2, n[$2]] = $5; cpu[$2, n[$2]] = $6;
                                   g[$2, n[$2]] = $7; t[$2, n[$2]] = $8; if (!($2 in seen)) { seen[$2] = 1; order[++k] = $2 } }
            function med(a, name, m,   i, j, v, x) {
                for (i = 1; i <= m; i++) v[i] = a[name, i]
                for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { x = v[i]; v[i] = v[j]; v[j] = x }
                return v[int((m + 1) / 2)]
            }
            END {
                for (q = 1; q <= k; q++) {
                    s = order[q]; m = n[s]; list = ""
                    for (i = 1; i <= m; i++) list = list (i > 1 ? ", " : "") c[s, i]
                    mc = med(c, s, m); ms = med(t, s, m)
                    printf "%-22s %11d %11d %6.2f %6.2f %8.3f  %s\n", s, mc, med(o, s, m), med(cpu, s, m), med(g, s, m),
                        (mc > 0 && ms > 0) ? 1e6 * med(cpu, s, m) / (mc * ms) : 0, list
                    printf "%s\t%s\n", s, mc > "/dev/stderr"
                }
            }' "$RESULTS" 2>"$TMP/sat.tsv"
        echo
        echo "counted/s: what the server counted per second of sending; offered/s: what was sent;"
        echo "cpu_s, gen_s: the server's and the generator's CPU seconds while sending (same CPUs);"
        echo "us/event: the server's CPU per counted event at saturation."
        echo
        awk -F'\t' '{ r[$1] = $2 }
            function ratio(a, b, target, what) {
                if ((a in r) && (b in r) && r[b] > 0) printf "%-52s %8.2fx   (target %s)\n", what, r[a] / r[b], target
            }
            END {
                ratio("statsd40-gottwall", "statsd40-collectd", ">= 1.5x", "saturation, statsd 40/dgram: GottWall / collectd csv")
                ratio("statsd40-gottwall", "statsd40-collectdp", ">= 1.5x", "saturation, statsd 40/dgram: GottWall / collectd prom.")
                ratio("statsd40-gottwall", "statsd40-etsy", ">= 5x", "saturation, statsd 40/dgram: GottWall / Etsy statsd")
                ratio("statsd40k40-gottwall", "statsd40k40-collectdp", ">= 1.5x", "saturation, 40 keys: GottWall / collectd prom.")
                ratio("statsd40k40-gottwall", "statsd40k40-etsy", ">= 5x", "saturation, 40 keys: GottWall / Etsy statsd")
                ratio("statsd1-gottwall", "statsd1-collectd", ">= 2x", "saturation, statsd 1/dgram: GottWall / collectd csv")
                ratio("statsd1-gottwall", "statsd1-collectdp", ">= 2x", "saturation, statsd 1/dgram: GottWall / collectd prom.")
                ratio("statsd1-gottwall", "statsd1-etsy", "-", "saturation, statsd 1/dgram: GottWall / Etsy statsd")
                ratio("http1-gottwall", "http1-nginx", ">= 0.9x", "saturation, HTTP single: GottWall / nginx 204")
                ratio("http100-gottwall", "http100-nginx", "-", "saturation, HTTP batches: GottWall / nginx 204")
            }' "$TMP/sat.tsv"
        echo
    fi
    echo "Highest rate at <= $LOSS_MAX% loss (step search)"
    printf '%-22s %11s %10s %7s %9s %6s %5s %8s %6s %8s\n' scenario "events/s" stored "loss%" "udp_drops" "cpu_s" "cpu%" "us/event" "gen_s" "peakKiB"
    awk -F'\t' 'NF == 10 {
        us = ($4 > 0) ? 1e6 * $7 / $4 : 0
        pct = ($8 > 0) ? 100 * $7 / $8 : 0
        printf "%-22s %11d %10d %7s %9d %6.2f %5.0f %8.2f %6.2f %8d\n", $1, $2, $4, $5, $6, $7, pct, us, $10, $9
    }' "$RESULTS"
    echo
    echo "events/s: stored events / send seconds of the best step with <= $LOSS_MAX% loss;"
    echo "udp_drops: datagrams the kernel dropped on the server's socket in that step;"
    echo "cpu_s, cpu%: the server's CPU time (all threads/processes) while sending;"
    echo "us/event: cpu_s per stored event; gen_s: the generator's CPU seconds in that step;"
    echo "peakKiB: VmHWM after the scenario."
    echo
    awk -F'\t' '
    NF == 10 { r[$1] = $2 }
    $1 == "idle-rss" { idle = $2 }
    $1 == "series-memory" { n = $2; r0 = $3; r1 = $4; st = $5 }
    $1 == "table-memory" { tm = $2; tf = $3 }
    function ratio(a, b, target, what) {
        if (!(a in r) || !(b in r)) return
        if (r[b] > 0) printf "%-48s %8.2fx   (target %s)\n", what, r[a] / r[b], target
    }
    function abs_(a, target, what) {
        if (a in r) printf "%-48s %8d/s  (target %s)\n", what, r[a], target
    }
    END {
        ratio("statsd40-gottwall", "statsd40-collectd", ">= 1.2x", "statsd 40 lines/dgram: GottWall / collectd")
        ratio("statsd40-gottwall", "statsd40-collectdp", "-", "statsd 40 lines/dgram: GottWall / collectd prom.")
        ratio("statsd40k40-gottwall", "statsd40k40-collectdp", "-", "40 keys: GottWall / collectd prom.")
        ratio("statsd40-gottwall", "statsd40-etsy", "> 1x", "statsd 40 lines/dgram: GottWall / Etsy statsd")
        ratio("statsd1-gottwall", "statsd1-collectd", ">= 1.2x", "statsd 1 line/dgram: GottWall / collectd")
        ratio("statsd1-gottwall", "statsd1-collectdp", "-", "statsd 1 line/dgram: GottWall / collectd prom.")
        ratio("statsd1-gottwall", "statsd1-etsy", "> 1x", "statsd 1 line/dgram: GottWall / Etsy statsd")
        ratio("statsd40t-gottwall", "statsd40-gottwall", ">= 0.7x", "statsd 40 lines/dgram: timers / counters")
        ratio("statsd1t-gottwall", "statsd1-gottwall", ">= 0.7x", "statsd 1 line/dgram: timers / counters")
        abs_("udp20-gottwall", ">= 2,000,000", "JSON/UDP signed, 1 filter, 20/dgram")
        abs_("udp20x2-gottwall", ">= 2,000,000", "the same, INGEST_LOOPS = 2, both cores")
        abs_("tcp-gottwall", ">= 4,000,000", "JSON/TCP stream, 4 connections")
        ratio("http1-gottwall", "http1-nginx", ">= 0.9x", "HTTP single events: GottWall / nginx 204")
        abs_("http100-gottwall", ">= 4,000,000", "HTTP batches of 100")
        ratio("http100-gottwall", "http100-nginx", "-", "HTTP batches of 100: GottWall / nginx 204")
        if (idle) printf "%-48s %8.2f MiB (target <= 8 MiB)\n", "idle RSS, memory storage, 3 transports", idle / 1024
        if (tm) printf "%-48s %8.1f B   (target <= 64 B; 1e6 metrics)\n", "aggregation table per live series", tm
        if (tf) printf "%-48s %8.1f B   (issue 18 counts 1e6 metrics; 1000 metrics x 1000)\n", "aggregation table per live series", tf
        if (n && st > 0) printf "%-48s %8.0f B   (no target; %d series, %d events stored)\n", "whole daemon RSS per series, memory storage", (r1 - r0) * 1024 / n, n, st
    }' "$RESULTS"
}

install_peers
if [ -n "$RCVBUF" ]; then
    RMEM_SAVED=$(cat /proc/sys/net/core/rmem_default)
    RMEM_MAX_SAVED=$(cat /proc/sys/net/core/rmem_max)
    if echo "$RCVBUF" >/proc/sys/net/core/rmem_default 2>/dev/null; then
        [ "$RMEM_MAX_SAVED" -lt "$RCVBUF" ] && echo "$RCVBUF" >/proc/sys/net/core/rmem_max
        log "net.core.rmem_default = $RCVBUF for this run (was $RMEM_SAVED)"
    else
        RMEM_SAVED=""
        log "cannot set net.core.rmem_default (not root?): --rcvbuf ignored"
        RCVBUF=""
    fi
fi
log "build dir $BUILDDIR; temp dir $TMP"
# Every scenario: name kind [env] gen-args. (An env word KEY=VALUE sets
# GW_EXTRA_CONF for GottWall; udp20x2 sets INGEST_LOOPS = 2 and, when
# servers are pinned, lets the daemon use both cores.)
each_scenario() { # fn [args before the scenario's]...
    "$@" statsd40-gottwall gottwall statsd --per-packet 40 --metrics 1000
    "$@" statsd40-collectd collectd - --per-packet 40 --metrics 1000
    "$@" statsd40-collectdp collectdp - --per-packet 40 --metrics 1000
    "$@" statsd40-etsy etsy - --per-packet 40 --metrics 1000
    # 40 keys: the servers' tables are small, their per-line work shows
    "$@" statsd40k40-gottwall gottwall statsd --per-packet 40 --metrics 40
    "$@" statsd40k40-collectdp collectdp - --per-packet 40 --metrics 40
    "$@" statsd40k40-etsy etsy - --per-packet 40 --metrics 40
    "$@" statsd1-gottwall gottwall statsd --per-packet 1 --metrics 1000
    "$@" statsd1-collectd collectd - --per-packet 1 --metrics 1000
    "$@" statsd1-collectdp collectdp - --per-packet 1 --metrics 1000
    "$@" statsd1-etsy etsy - --per-packet 1 --metrics 1000
    # The same statsd traffic as timers (name:V|ms, the timing kind: a
    # sketch per series), against the counter rate above (issue 15: >= 0.7x).
    "$@" statsd40t-gottwall gottwall statsd --per-packet 40 --metrics 1000 --timers
    "$@" statsd1t-gottwall gottwall statsd --per-packet 1 --metrics 1000 --timers
    "$@" udp20-gottwall gottwall udp --per-packet 20 --metrics 1000 --filter-values 10
    loops2 "$@" udp20x2-gottwall gottwall udp --per-packet 20 --metrics 1000 --filter-values 10
    "$@" tcp-gottwall gottwall tcpip --per-packet 50 --connections 4 --metrics 1000 --filter-values 10
    "$@" http1-gottwall gottwall http --per-packet 1 --connections 32 --metrics 1000
    "$@" http1-nginx nginx - --per-packet 1 --connections 32 --metrics 1000
    "$@" http100-gottwall gottwall http --per-packet 100 --connections 8 --metrics 1000
    "$@" http100-nginx nginx - --per-packet 100 --connections 8 --metrics 1000
}

# udp20x2: INGEST_LOOPS = 2, and the daemon may use both cores.
loops2() {
    local saved=$SERVER_PIN
    [ -n "$SERVER_PIN" ] && SERVER_PIN="taskset -c 0,1"
    GW_EXTRA_CONF="INGEST_LOOPS = 2;" "$@"
    SERVER_PIN=$saved
}

for r in $(seq "$ROUNDS"); do
    log "saturation round $r of $ROUNDS"
    each_scenario saturate "$r"
done
each_scenario run_scenario
idle_rss
table_memory
series_memory
report | tee "$TMP/report.txt"
[ -n "$OUT" ] && cp "$RESULTS" "$OUT"
exit 0
