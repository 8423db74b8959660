#!/usr/bin/env bash
# cluster-load.sh — one node against a balanced pair, and a node's failover
# (issue 7).
#
# Topology, all on loopback, one PostgreSQL server started here (fsync off):
#
#   single:  caller SIPp ──▶ N0 ──▶ callee SIPp           (database "single")
#   cluster: caller SIPp ──▶ LB ──┬──▶ N1 ──┐             (database "cluster";
#                                 └──▶ N2 ──┴──▶ LB ──▶ callee SIPp
#                                              the callee registered through LB)
#
# The caller (tests/sipp/call_caller_short.xml) is 1001 with digest, calls 1002,
# holds 0.5 s and hangs up; the callee (tests/sipp/call_callee.xml) answers
# everything. Signalling only: SIPp sends no RTP, but each node anchors media (a
# relay session per leg).
#
# Load steps: for each target (single, cluster) and each rate of RATES, calls at
#   that rate for STEP_SECONDS; reported: attempted, ok, failed, setup time
#   p50 / p99 (SIPp's rtd: first INVITE -> 200, including the 407 round),
#   CPU % of each node, of the balancer and of PostgreSQL over the step. A target
#   stops at its first step with a failed call.
# Failover: REPEAT rounds; calls through LB at FAIL_RATE for FAIL_SECONDS, N1 gets
#   SIGKILL at KILL_AT s. Reported: time from the kill until the balancer's status
#   shows node-1 down (polled every 50 ms), failed and ok calls of the round, and
#   node_lost CDRs written by N2. N1 is restarted and seen up before the next round.
#
# Settings (environment): RATES="100 200 300 400 500 600 800" STEP_SECONDS=10
#   REPEAT=3 FAIL_RATE=100 FAIL_SECONDS=12 KILL_AT=4 PG_PORT=55432
#   SOFTSWITCH_BIN=<repo>/target/release/softswitch WORK_DIR=mktemp
# Every process started here is stopped by PID on exit. The markdown summary goes
# to stdout, progress to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RATES=${RATES:-"100 200 300 400 500 600 800"}
STEP_SECONDS=${STEP_SECONDS:-10}
REPEAT=${REPEAT:-3}
FAIL_RATE=${FAIL_RATE:-100}
FAIL_SECONDS=${FAIL_SECONDS:-12}
KILL_AT=${KILL_AT:-4}
PG_PORT=${PG_PORT:-55432}
SOFTSWITCH_BIN=${SOFTSWITCH_BIN:-$REPO/target/release/softswitch}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/softswitch-clusterbench.XXXXXX)}
N0_IP=127.0.0.91 N1_IP=127.0.0.92 N2_IP=127.0.0.93 LB_IP=127.0.0.94
CALLEE_IP=127.0.0.95 CALLER_IP=127.0.0.96

die() { echo "cluster-load: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
[ -x "$SOFTSWITCH_BIN" ] || die "$SOFTSWITCH_BIN missing: cargo build --release -p softswitch"
command -v sipp >/dev/null || die "sipp missing (Debian package sip-tester)"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries missing (Debian package postgresql)"
mkdir -p "$WORK_DIR/bin"
cp "$SOFTSWITCH_BIN" "$WORK_DIR/bin/softswitch"
BIN=$WORK_DIR/bin/softswitch
HZ=$(getconf CLK_TCK)

declare -A PID=()
PG_DATA=$WORK_DIR/pg
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    local name
    for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
    sleep 0.5
    for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null || true; done
    [ -d "$PG_DATA" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

stop() {
    local pid=${PID[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -s "${2:-TERM}" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    unset "PID[$1]"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    local t=0 p
    for p in $(pgrep -u postgres -f "postgres" 2>/dev/null || true); do
        t=$((t + $(cpu_ticks "$p")))
    done
    echo "$t"
}
pct() { awk -v d="$1" -v s="$2" -v hz="$HZ" 'BEGIN{ if (s > 0) printf "%.0f", 100 * d / hz / s; else print "?" }'; }

# ------------------------------------------------------------------ PostgreSQL
mkdir -p "$PG_DATA"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$WORK_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c fsync=off -c full_page_writes=off -c max_connections=100" \
    start >/dev/null
for db in single cluster; do
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db"
done

# ------------------------------------------------------------------ processes
write_node() {
    local name=$1 ip=$2 db=$3 ports=$4 dir=$WORK_DIR/$1
    mkdir -p "$dir"
    cat > "$dir/softswitch.toml" <<CONF
[node]
name = "$name"
pid_file = "$dir/softswitch.pid"

[sip]
listen = ["udp:$ip:5060"]
domain = "pbx.bench"
aliases = ["$LB_IP"]

[database]
url = "postgres://postgres@127.0.0.1:$PG_PORT/$db"

[admin]
listen = "$ip:8088"

[rtp]
ports = "$ports"

[[endpoint]]
name = "1001"
password = "secret1001"
context = "internal"

[[endpoint]]
name = "1002"
password = "secret1002"
context = "internal"
CONF
    printf '[internal]\nexten => 1002,1,Dial(SIP/1002,10)\n same => n,Hangup()\n' > "$dir/extensions.conf"
}
start_node() {
    local name=$1 dir=$WORK_DIR/$1 i from
    from=$(stat -c %s "$dir/softswitch.log" 2>/dev/null || echo 0)
    RUST_LOG=warn,softswitch=info NO_COLOR=1 "$BIN" run --config "$dir/softswitch.toml" >> "$dir/softswitch.log" 2>&1 < /dev/null &
    PID[$name]=$!
    disown "${PID[$name]}"
    for ((i = 0; i < 200; i++)); do
        tail -c +"$((from + 1))" "$dir/softswitch.log" | grep -q "softswitch started" && return 0
        sleep 0.1
    done
    die "$name did not start: $(tail -n 20 "$dir/softswitch.log")"
}
write_node n0 "$N0_IP" single 10000-19999
write_node n1 "$N1_IP" cluster 20000-29999
write_node n2 "$N2_IP" cluster 30000-39999
cat > "$WORK_DIR/balancer.toml" <<CONF
[balance]
name = "lb"
listen = "$LB_IP:5060"

[admin]
listen = "$LB_IP:8090"

[[node]]
name = "node-1"
address = "$N1_IP:5060"

[[node]]
name = "node-2"
address = "$N2_IP:5060"
CONF
sed -i 's/^name = "n1"/name = "node-1"/' "$WORK_DIR/n1/softswitch.toml"
sed -i 's/^name = "n2"/name = "node-2"/' "$WORK_DIR/n2/softswitch.toml"
for n in n0 n1 n2; do start_node "$n"; done
RUST_LOG=info NO_COLOR=1 "$BIN" balance --config "$WORK_DIR/balancer.toml" > "$WORK_DIR/balancer.log" 2>&1 < /dev/null &
PID[lb]=$!
disown "${PID[lb]}"
node_state() {
    timeout 5 "$BIN" balance --status --json --config "$WORK_DIR/balancer.toml" 2>/dev/null \
        | python3 -c "import json,sys; d=json.load(sys.stdin); print(next((n['state'] for n in d['nodes'] if n['name']=='$1'), '?'))" 2>/dev/null || echo "?"
}
wait_state() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do [ "$(node_state "$1")" = "$2" ] && return 0; sleep 0.05; done
    return 1
}
wait_state node-1 up 10 || die "node-1 never came up at the balancer"
wait_state node-2 up 10 || die "node-2 never came up at the balancer"
log "nodes and balancer up; raw files in $WORK_DIR"

# callee TARGET: 1002 registered through TARGET, then answering everything.
callee() {
    stop callee
    (cd "$WORK_DIR" && sipp "$1" -sf "$REPO/tests/sipp/register.xml" -i "$CALLEE_IP" -p 5070 \
        -m 1 -s 1002 -au 1002 -ap secret1002 -key expires 3600 -timeout 10s -timeout_error -nostdin \
        >/dev/null 2>&1) || die "1002 did not register through $1"
    (cd "$WORK_DIR" && exec sipp "$1" -sf "$REPO/tests/sipp/call_callee.xml" -i "$CALLEE_IP" -p 5070 \
        -mi "$CALLEE_IP" -mp 40000 -nostdin >/dev/null 2>&1) &
    PID[callee]=$!
    sleep 1
    kill -0 "${PID[callee]}" 2>/dev/null || die "the callee SIPp did not start"
}

# caller DIR TARGET RATE CALLS: SIPp statistics in DIR.
caller() {
    local dir=$1
    mkdir -p "$dir"
    set +e
    (cd "$dir" && sipp "$2" -sf "$REPO/tests/sipp/call_caller_short.xml" -i "$CALLER_IP" -p 5070 \
        -mi "$CALLER_IP" -mp 50000 -s 1002 -au 1001 -ap secret1001 -key caller 1001 \
        -r "$3" -m "$4" -l $(($3 * 5 + 10)) -timeout $(($4 / $3 + 40))s -timeout_error -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 20 >/dev/null 2>caller.err)
    echo $? > "$dir/rc"
    set -e
}
stat_col() {
    awk -F';' -v name="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} END{if(c) print $c; else print "?"}' "$1" 2>/dev/null || echo "?"
}
rtd() {
    local rtt
    rtt=$(ls "$1"/*_rtt.csv 2>/dev/null | head -n1 || true)
    [ -n "$rtt" ] || { echo "-"; return; }
    awk -F';' 'NR>1 && $2 != ""{print $2}' "$rtt" | sort -g | awk '{v[NR]=$1}
        END { if (NR == 0) { print "-"; exit }
              a = int(NR * 0.5); if (a < 1) a = 1; c = int(NR * 0.99); if (c < 1) c = 1
              printf "%.1f / %.1f", v[a], v[c] }'
}

SUMMARY=$WORK_DIR/summary.md
: > "$SUMMARY"
out() { printf '%s\n' "$*" >> "$SUMMARY"; }
out "Run of $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; binary $(sha256sum "$BIN" | cut -c1-12); raw files: $WORK_DIR"
out ""
out "### Load steps: one node against the balanced pair"
out ""
out "| target | calls/s | attempted | ok | failed | setup p50 / p99 (ms) | node CPU % | balancer CPU % | PostgreSQL CPU % |"
out "|---|---:|---:|---:|---:|---|---|---:|---:|"
for target in single cluster; do
    if [ "$target" = single ]; then addr=$N0_IP:5060; nodes="n0"; else addr=$LB_IP:5060; nodes="n1 n2"; fi
    callee "$addr"
    for rate in $RATES; do
        dir=$WORK_DIR/$target/rate-$rate
        log "$target: $rate calls/s for $STEP_SECONDS s"
        declare -A t0=()
        for n in $nodes lb; do t0[$n]=$(cpu_ticks "${PID[$n]}"); done
        p0=$(pg_ticks)
        s0=$(date +%s.%N)
        caller "$dir" "$addr" "$rate" $((rate * STEP_SECONDS))
        s1=$(date +%s.%N)
        secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b - a}')
        node_cpu=""
        for n in $nodes; do node_cpu+="$n $(pct $(( $(cpu_ticks "${PID[$n]}") - ${t0[$n]} )) "$secs") "; done
        lb_cpu=$(pct $(( $(cpu_ticks "${PID[lb]}") - ${t0[lb]} )) "$secs")
        [ "$target" = single ] && lb_cpu="-"
        pg_cpu=$(pct $(( $(pg_ticks) - p0 )) "$secs")
        ok=$(stat_col "$dir/stat.csv" SuccessfulCall\(C\))
        failed=$(stat_col "$dir/stat.csv" FailedCall\(C\))
        made=$(stat_col "$dir/stat.csv" TotalCallCreated)
        out "| $target | $rate | $made | $ok | $failed | $(rtd "$dir") | $node_cpu| $lb_cpu | $pg_cpu |"
        [ "$failed" = 0 ] || break
    done
done
stop callee

out ""
out "### Failover: node-1 killed under $FAIL_RATE calls/s through the balancer"
out ""
out "| round | taken out after (ms) | calls ok | calls failed | node_lost CDRs |"
out "|---:|---:|---:|---:|---:|"
callee "$LB_IP:5060"
for ((round = 1; round <= REPEAT; round++)); do
    dir=$WORK_DIR/failover/round-$round
    log "failover round $round"
    caller "$dir" "$LB_IP:5060" "$FAIL_RATE" $((FAIL_RATE * FAIL_SECONDS)) &
    cpid=$!
    sleep "$KILL_AT"
    kill -9 "${PID[n1]}"; unset "PID[n1]"
    k0=$(date +%s.%N)
    if wait_state node-1 down 10; then
        took=$(awk -v a="$k0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", (b - a) * 1000}')
    else
        took="not seen"
    fi
    wait "$cpid" || true
    sleep 4   # the survivor closes node-1's calls once it is 3 s quiet
    lost=$(as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d cluster -tAc \
        "SELECT count(*) FROM cdr WHERE end_reason = 'node_lost'" 2>/dev/null || echo "?")
    as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d cluster -tAc \
        "UPDATE cdr SET end_reason = 'node_lost_counted' WHERE end_reason = 'node_lost'" >/dev/null 2>&1 || true
    out "| $round | $took | $(stat_col "$dir/stat.csv" SuccessfulCall\(C\)) | $(stat_col "$dir/stat.csv" FailedCall\(C\)) | $lost |"
    start_node n1
    wait_state node-1 up 10 || die "node-1 did not come back"
done
stop callee
cat "$SUMMARY"
