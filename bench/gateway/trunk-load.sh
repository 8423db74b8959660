#!/usr/bin/env bash
# trunk-load.sh — calls through a dial-peer trunk, and failover when a peer
# vanishes or refuses (issue 6).
#
# Topology (the one of tests/e2e/gateway.rs), three switch processes and SIPp:
#
#   carrier SIPp ──▶ A ──┬──▶ B1 (dial peer 1)   A: Dial(PEER/${EXTEN},10) for 2xxx,
#   (dial peer 9 of A)   └──▶ B2 (dial peer 2)   peers 1 and 2 equal, [gateway] share
#                                                 (default hash on the Call-ID);
#                                                 B1/B2: Answer, Wait(10), Hangup in
#                                                 context from-a (A is their peer 1).
# The carrier (bench/gateway/trunk-caller.xml) calls 2001 with no digest (A
# trusts it by address; its peer has options_keepalive off), holds HOLD_MS and
# hangs up. Signalling only: SIPp sends no RTP, but A and the B switches still
# anchor media (a relay session per call leg).
#
# Phase 1, trunk rate: steps of rising call rate; per step calls attempted,
#   succeeded, failed, setup time p50/p90/p99 (first INVITE -> 200, SIPp's rtd),
#   CPU used by A (utime+stime), the B switches and the carrier SIPp, and the
#   machine's busy share. Stops at the first step with a failed call.
# Phase 2, peer vanishes: REPEAT rounds; the carrier calls at FAIL_RATE for
#   FAIL_SECONDS, B1 gets SIGKILL KILL_AT seconds in. Reported: time from the kill
#   until `softswitch peers --json` shows peer 1 "down" (polled every 50 ms) and
#   until A logs the change; failed and successful calls; calls that paid the
#   invite timeout (A's "dial peer did not answer in time"); time from the kill to
#   the first call A routed elsewhere (its "trying dial peer" tag=2 line after the
#   first timeout). B1 is restarted before each round and A must show peer 1 "up".
# Phase 3, peer refuses: REPEAT rounds; B1 is stopped and a SIPp UAS on its
#   address answers every INVITE with 503 + Retry-After: 30
#   (tests/sipp/trunk_refuser.xml; -aa answers A's OPTIONS probes with 200, so
#   peer 1 is "up" until it refuses). A is restarted before each round, since its
#   peer 1 drains for the Retry-After's 30 s. The carrier calls at FAIL_RATE for
#   REFUSE_SECONDS. Reported: failed calls, INVITEs the refuser got, peer 1's state
#   after the round, and for the refused call: time from the 503 to the carrier's
#   200 (via B2) and its whole setup time (carrier INVITE -> 200).
#
# Settings (environment):
#   PHASES="1 2 3"                     which phases to run
#   RATES="100 200 400 600 800 1000"   phase 1 calls per second, one step each
#   STEP_SECONDS=10                    phase 1 calls per step = rate * STEP_SECONDS
#   HOLD_MS=1000                       talk time per call (all phases)
#   REPEAT=3                           rounds of phases 2 and 3
#   FAIL_RATE=50                       calls/s of phases 2 and 3
#   FAIL_SECONDS=20  KILL_AT=5         phase 2 run length, and when B1 is killed
#   REFUSE_SECONDS=10                  phase 3 run length
#   INVITE_TIMEOUT=1.5                 A's [gateway] invite_timeout (s)
#   SHARE=hash                         A's [gateway] share
#   A_IP=127.0.0.80  B1_IP=127.0.0.81  B2_IP=127.0.0.82  CARRIER_IP=127.0.0.83
#   SIP_PORT=5060  CARRIER_PORT=5090  ADMIN_PORT=8088 (on each switch's own IP)
#   SWITCH_LOG=info                    RUST_LOG of the switches (phases 2 and 3
#                                      read A's info lines)
#   SOFTSWITCH_BIN=<repo>/target/release/softswitch (built beforehand; copied into
#                                      WORK_DIR so a rebuild during the run does
#                                      not change the binary under test)
#   WORK_DIR=...                       default: mktemp under /tmp; raw files stay
# Loopback only; every process started here is stopped by PID on exit. The
# markdown summary goes to stdout, progress to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PHASES=${PHASES:-"1 2 3"}
RATES=${RATES:-"100 200 400 600 800 1000"}
STEP_SECONDS=${STEP_SECONDS:-10}
HOLD_MS=${HOLD_MS:-1000}
REPEAT=${REPEAT:-3}
FAIL_RATE=${FAIL_RATE:-50}
FAIL_SECONDS=${FAIL_SECONDS:-20}
KILL_AT=${KILL_AT:-5}
REFUSE_SECONDS=${REFUSE_SECONDS:-10}
INVITE_TIMEOUT=${INVITE_TIMEOUT:-1.5}
SHARE=${SHARE:-hash}
A_IP=${A_IP:-127.0.0.80}
B1_IP=${B1_IP:-127.0.0.81}
B2_IP=${B2_IP:-127.0.0.82}
CARRIER_IP=${CARRIER_IP:-127.0.0.83}
SIP_PORT=${SIP_PORT:-5060}
CARRIER_PORT=${CARRIER_PORT:-5090}
ADMIN_PORT=${ADMIN_PORT:-8088}
SWITCH_LOG=${SWITCH_LOG:-info}
SOFTSWITCH_BIN=${SOFTSWITCH_BIN:-$REPO/target/release/softswitch}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/softswitch-trunkbench.XXXXXX)}

die() { echo "trunk-load: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
for ip in "$A_IP" "$B1_IP" "$B2_IP" "$CARRIER_IP"; do
    case $ip in 127.*) ;; *) die "$ip is not a loopback address";; esac
done
for n in "$STEP_SECONDS" "$HOLD_MS" "$REPEAT" "$FAIL_RATE" "$FAIL_SECONDS" "$KILL_AT" "$REFUSE_SECONDS"; do
    case $n in ''|*[!0-9]*) die "not a whole number: '$n'";; esac
done
[ "$KILL_AT" -lt "$FAIL_SECONDS" ] || die "KILL_AT ($KILL_AT) must be below FAIL_SECONDS ($FAIL_SECONDS)"
[ -x "$SOFTSWITCH_BIN" ] || die "$SOFTSWITCH_BIN missing: cargo build --release -p softswitch"
command -v sipp >/dev/null || die "sipp missing (Debian package sip-tester)"
command -v python3 >/dev/null || die "python3 missing"
mkdir -p "$WORK_DIR/bin"
cp "$SOFTSWITCH_BIN" "$WORK_DIR/bin/softswitch"
BIN=$WORK_DIR/bin/softswitch
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- processes
declare -A PID=()        # name -> PID of a running process started here
cleanup() {
    local name cp
    # A carrier SIPp still running (started in a subshell, so not in PID).
    cp=$(cat "$WORK_DIR/carrier.pid" 2>/dev/null || true)
    [ -n "$cp" ] && [ "$(cat "/proc/$cp/comm" 2>/dev/null)" = sipp ] && kill "$cp" 2>/dev/null || true
    for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
    sleep 0.5
    for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }

# stop NAME [SIGNAL]: signal the process (TERM by default), wait for it (10 s at
# most, then KILL), forget it.
stop() {
    local name=$1 sig=${2:-TERM} pid=${PID[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name ($pid) ignored SIG$sig; killing"; kill -9 "$pid" 2>/dev/null || true; }
    { wait "$pid"; } 2>/dev/null || true
    unset "PID[$name]"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Other processes' CPU (% of one core) in the second of two `top` samples 2 s
# apart: everything but the PIDs given (and top). The machine-wide counters of
# /proc/stat are tick-sampled and miss most of this bursty load on this VM's
# kernel, so they are not used; per-process utime+stime are exact.
others_cpu() {
    awk -v skip=" $* " '
        /^top -/ { n++; next }
        n == 2 && $1 ~ /^[0-9]+$/ && $NF != "top" && index(skip, " " $1 " ") == 0 { s += $9 }
        END { printf "%.0f", s }' 2>/dev/null || echo "?"
}
filesize() { stat -c %s "$1" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- switches
# write_switch NAME IP RTP_PORTS PEERS DIALPLAN [GATEWAY]
write_switch() {
    local name=$1 ip=$2 ports=$3 peers=$4 plan=$5 gateway=${6:-}
    local dir=$WORK_DIR/$name
    mkdir -p "$dir"
    cat > "$dir/softswitch.toml" <<CONF
[node]
name = "$name"
pid_file = "$dir/softswitch.pid"

[sip]
listen = ["udp:$ip:$SIP_PORT"]
domain = "$name.test"

[database]
url = "sqlite://$dir/softswitch.db"
sqlite_synchronous = "normal"

[admin]
listen = "$ip:$ADMIN_PORT"

[rtp]
ports = "$ports"

$gateway
$peers
CONF
    printf '%b' "$plan" > "$dir/extensions.conf"
    "$BIN" check-config --config "$dir/softswitch.toml" > "$dir/check-config.out" 2>&1 \
        || die "config of $name rejected: $(cat "$dir/check-config.out")"
}

# start_switch NAME: run it (log appended to NAME/softswitch.log), wait (20 s at
# most) for a new "softswitch started" line.
start_switch() {
    local name=$1 dir=$WORK_DIR/$1 from i
    from=$(filesize "$dir/softswitch.log")
    RUST_LOG=$SWITCH_LOG NO_COLOR=1 "$BIN" run --config "$dir/softswitch.toml" \
        >> "$dir/softswitch.log" 2>&1 < /dev/null &
    PID[$name]=$!
    # Not a job bash reports on when it is killed (stop() polls, it need not wait).
    disown "${PID[$name]}"
    for ((i = 0; i < 200; i++)); do
        tail -c +"$((from + 1))" "$dir/softswitch.log" | grep -q "softswitch started" && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    die "$name did not start: $(tail -c +"$((from + 1))" "$dir/softswitch.log" | tail -n 20)"
}

# peer_state TAG: peer TAG's state as A's admin API reports it ("?" if unknown).
# (`peers --json` prints one object per line, keys in order: "state" before "tag".)
peer_state() {
    local s
    s=$(timeout 5 "$BIN" peers --json --config "$WORK_DIR/a/softswitch.toml" 2>/dev/null \
        | grep "\"tag\":$1[,}]" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' | head -n1 || true)
    echo "${s:-?}"
}

# wait_state TAG STATE SECONDS: poll until peer TAG is STATE; false on timeout.
wait_state() {
    local tag=$1 want=$2 i s=""
    for ((i = 0; i < $3 * 10; i++)); do
        s=$(peer_state "$tag")
        [ "$s" = "$want" ] && return 0
        sleep 0.1
    done
    log "peer $tag is '$s', not '$want', after $3 s"
    return 1
}

B_PLAN='[from-a]\nexten => _2XXX,1,Answer()\n same => n,Wait(10)\n same => n,Hangup()\n'
A_PLAN='[from-carrier]\nexten => _2XXX,1,Dial(PEER/${EXTEN},10)\n same => n,Hangup()\n'
b_peers() {
    printf '[[dial_peer]]\ntag = 1\ndestination_pattern = "1..."\nsession_target = "ipv4:%s:%s"\ncontext = "from-a"\n' \
        "$A_IP" "$SIP_PORT"
}
A_PEERS=$(cat <<PEERS
[[dial_peer]]
tag = 1
destination_pattern = "2..."
session_target = "ipv4:$B1_IP:$SIP_PORT"
preference = 0

[[dial_peer]]
tag = 2
destination_pattern = "2..."
session_target = "ipv4:$B2_IP:$SIP_PORT"
preference = 0

# The carrier: trusted by its address, not probed.
[[dial_peer]]
tag = 9
destination_pattern = "0000\$"
session_target = "ipv4:$CARRIER_IP:$CARRIER_PORT"
context = "from-carrier"
options_keepalive = { enabled = false }
PEERS
)
write_switch a "$A_IP" "10000-29999" "$A_PEERS" "$A_PLAN" \
    "$(printf '[gateway]\nshare = "%s"\ninvite_timeout = %s\n' "$SHARE" "$INVITE_TIMEOUT")"
write_switch b1 "$B1_IP" "30000-39999" "$(b_peers)" "$B_PLAN"
write_switch b2 "$B2_IP" "40000-49999" "$(b_peers)" "$B_PLAN"

start_switch b1
start_switch b2
start_switch a
wait_state 1 up 15 || die "peer 1 never came up"
wait_state 2 up 15 || die "peer 2 never came up"
log "switches up: A ${PID[a]}, B1 ${PID[b1]}, B2 ${PID[b2]}; raw files in $WORK_DIR"

# ---------------------------------------------------------------- SIPp helpers
# carrier DIR RATE CALLS [extra sipp args...]: run the carrier to completion in
# DIR (its CPU seconds in DIR/carrier.cpu, exit code in DIR/carrier.rc).
carrier() {
    local dir=$1 rate=$2 calls=$3
    shift 3
    mkdir -p "$dir"
    local limit=$((rate * (HOLD_MS / 1000 + 4) + 10))
    set +e
    (cd "$dir" || exit 1
        sipp "$A_IP:$SIP_PORT" -sf "$HERE/trunk-caller.xml" \
            -i "$CARRIER_IP" -p "$CARRIER_PORT" -mi "$CARRIER_IP" -mp 60000 -s 2001 \
            -d "$HOLD_MS" -r "$rate" -m "$calls" -l "$limit" \
            -timeout $((calls / rate * 2 + 40))s -timeout_error -nostdin \
            -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 20 \
            -trace_err -error_file errors.log "$@" >/dev/null 2>carrier.err &
        echo $! > "$WORK_DIR/carrier.pid"
        echo $! > carrier.sipp
        wait $!
        echo $? > carrier.rc
        rm -f "$WORK_DIR/carrier.pid"
        # The subshell's reaped-children time is SIPp's CPU.
        awk -v hz="$HZ" '{print ($16 + $17) / hz}' "/proc/$BASHPID/stat" > carrier.cpu)
    set -e
}

# stat_col FILE COLUMN: the last value of COLUMN in a SIPp statistics file.
stat_col() {
    awk -F';' -v name="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} END{if(c) print $c; else print "?"}' \
        "$1" 2>/dev/null || echo "?"
}
# The last data line is what END sees; rows have the same columns as the header.

# rtd_pct DIR: "p50 / p90 / p99 / max" of the rtd values in DIR's rtt trace (ms).
rtd_pct() {
    local rtt
    rtt=$(ls "$1"/*_rtt.csv 2>/dev/null | head -n1 || true)
    [ -n "$rtt" ] || { echo "-"; return; }
    awk -F';' 'NR>1 && $2 != ""{print $2}' "$rtt" | sort -g | awk '
        {v[NR]=$1}
        END {
            if (NR == 0) { print "-"; exit }
            a = int(NR * 0.5); if (a < 1) a = 1
            b = int(NR * 0.9); if (b < 1) b = 1
            c = int(NR * 0.99); if (c < 1) c = 1
            printf "%.1f / %.1f / %.1f / %.1f", v[a], v[b], v[c], v[NR]
        }'
}

SUMMARY=$WORK_DIR/summary.md
: > "$SUMMARY"
out() { printf '%s\n' "$*" >> "$SUMMARY"; }
out "Run of $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; binary $(sha256sum "$BIN" | cut -c1-12);"
out "HOLD_MS=$HOLD_MS SHARE=$SHARE INVITE_TIMEOUT=$INVITE_TIMEOUT SWITCH_LOG=$SWITCH_LOG; raw files: $WORK_DIR"
out ""

# ---------------------------------------------------------------- phase 1
phase1() {
    out "### Phase 1: calls/s through the trunk (carrier → A → B1/B2)"
    out ""
    out "| calls/s | attempted | ok | failed | retrans | setup p50 / p90 / p99 / max (ms) | A CPU % | A CPU µs/call | B1+B2 CPU % | carrier SIPp CPU % | other processes CPU % |"
    out "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    local rate calls dir a0 a1 b0 b1 s0 s1 wall ok failed created retr pct tp
    for rate in $RATES; do
        calls=$((rate * STEP_SECONDS))
        dir=$WORK_DIR/phase1/rate-$rate
        log "phase 1: $rate calls/s for $STEP_SECONDS s"
        a0=$(cpu_ticks "${PID[a]}")
        b0=$(( $(cpu_ticks "${PID[b1]}") + $(cpu_ticks "${PID[b2]}") ))
        mkdir -p "$dir"
        (sleep 2; exec top -b -d 2 -n 2 -w 512 > "$dir/top.txt") &
        PID[top]=$!
        s0=$(now)
        carrier "$dir" "$rate" "$calls"
        s1=$(now)
        stop top
        a1=$(cpu_ticks "${PID[a]}")
        b1=$(( $(cpu_ticks "${PID[b1]}") + $(cpu_ticks "${PID[b2]}") ))
        ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
        failed=$(stat_col "$dir/stat.csv" "FailedCall(C)")
        created=$(stat_col "$dir/stat.csv" "OutgoingCall(C)")
        retr=$(stat_col "$dir/stat.csv" "Retransmissions(C)")
        pct=$(rtd_pct "$dir")
        wall=$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b - a}')
        out "$(awk -v rate="$rate" -v cr="$created" -v ok="$ok" -v f="$failed" -v re="$retr" -v pct="$pct" \
            -v a="$((a1 - a0))" -v b="$((b1 - b0))" -v w="$wall" -v hz="$HZ" \
            -v sc="$(cat "$dir/carrier.cpu" 2>/dev/null || echo 0)" \
            -v oth="$(others_cpu "${PID[a]}" "${PID[b1]}" "${PID[b2]}" $(cat "$dir/carrier.sipp" 2>/dev/null) < "$dir/top.txt")" 'BEGIN{
                printf "| %s | %s | %s | %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |",
                    rate, cr, ok, f, re, pct, a / hz / w * 100, (ok > 0 ? a / hz / ok * 1e6 : 0),
                    b / hz / w * 100, sc / w * 100, oth }')"
        log "phase 1: $rate/s: ok $ok failed $failed (carrier exit $(cat "$dir/carrier.rc"))"
        alive a || die "A died during the $rate/s step; see $WORK_DIR/a/softswitch.log"
        [ "$failed" = 0 ] || { log "phase 1: stopping at $rate/s: failed calls (see $dir)"; out ""; out "Stopped at $rate/s: $failed failed call(s)."; break; }
        sleep 3
    done
    out ""
    out "Setup = carrier's first INVITE → 200 (SIPp rtd; SIPp's clock moves in ticks of a few ms, 4 ms on the project's machine, so 0.0 means under one tick). CPU % is of one core (utime+stime, all threads), over the step's wall time (the carrier's run, including the last calls' hold). Other processes: the sum of every other process's %CPU in a 2 s \`top\` sample taken 2 s into the step."
    out ""
}

# ---------------------------------------------------------------- log analysis
# analyse_kill LOGFILE FROM_BYTE KILL_EPOCH: facts from A's log after the kill.
analyse_kill() {
    python3 - "$@" <<'PY'
import re, sys
from datetime import datetime
path, start, kill = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "rb") as f:
    f.seek(start)
    text = f.read().decode("utf-8", "replace")
ts_re = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:\d\d)")
def ts(line):
    m = ts_re.match(line)
    if not m:
        return None
    stamp, zone = m.group(1), m.group(2)
    if "." in stamp:
        head, frac = stamp.split(".")
        stamp = head + "." + (frac + "000000")[:6]
    zone = "+00:00" if zone == "Z" else zone
    fmt = "%Y-%m-%dT%H:%M:%S.%f%z" if "." in stamp else "%Y-%m-%dT%H:%M:%S%z"
    return datetime.strptime(stamp + zone, fmt).timestamp()
def field(line, name):
    m = re.search(r"\b" + name + r"=(\S+)", line)
    return m.group(1).strip('"') if m else None
timeouts = 0
first_timeout = None
state_down = state_suspect = None
tried_dead = 0
tried_after = {}
lines = text.splitlines()
for i, line in enumerate(lines):
    t = ts(line)
    if t is None:
        continue
    if "dial peer did not answer in time" in line:
        timeouts += 1
        if t >= kill and first_timeout is None:
            first_timeout = (i, t, field(line, "call"))
    if "trying dial peer" in line and field(line, "tag") == "1" and t >= kill:
        tried_dead += 1
    if "dial peer state changed" in line and field(line, "tag") == "1" and t >= kill:
        if field(line, "to") == "down" and state_down is None:
            state_down = t
        if field(line, "to") == "suspect" and state_suspect is None:
            state_suspect = t
rerouted = None
if first_timeout:
    i0, _, call = first_timeout
    for line in lines[i0:]:
        if "trying dial peer" in line and field(line, "call") == call and field(line, "tag") == "2":
            rerouted = ts(line)
            break
ms = lambda t: "-" if t is None else "%.0f" % ((t - kill) * 1000)
print(timeouts, tried_dead, ms(first_timeout[1] if first_timeout else None), ms(rerouted),
      ms(state_suspect), ms(state_down))
PY
}

# ---------------------------------------------------------------- phase 2
phase2() {
    out "### Phase 2: peer 1 (B1) vanishes: SIGKILL ${KILL_AT} s into a ${FAIL_SECONDS} s run at ${FAIL_RATE} calls/s"
    out ""
    out "| round | peer 1 down, CLI poll (ms after kill) | A logs suspect / down (ms) | first invite timeout → call re-routed to peer 2 (ms) | calls sent to dead peer 1 | calls that paid the timeout | ok | failed | setup p50 / p90 / p99 / max (ms) |"
    out "|---:|---:|---|---|---:|---:|---:|---:|---|"
    local r dir from kill_t seen_t s i calls facts ok failed
    calls=$((FAIL_RATE * FAIL_SECONDS))
    for ((r = 1; r <= REPEAT; r++)); do
        dir=$WORK_DIR/phase2/round-$r
        mkdir -p "$dir"
        alive b1 || start_switch b1
        wait_state 1 up 20 || die "phase 2 round $r: peer 1 not up"
        from=$(filesize "$WORK_DIR/a/softswitch.log")
        log "phase 2 round $r: $FAIL_RATE calls/s for $FAIL_SECONDS s, B1 killed at $KILL_AT s"
        carrier "$dir" "$FAIL_RATE" "$calls" -trace_msg -message_file messages.log &
        local cpid=$!
        sleep "$KILL_AT"
        kill -9 "${PID[b1]}"
        kill_t=$(now)
        seen_t=""
        for ((i = 0; i < 300; i++)); do   # at most 300 polls and 15 s
            s=$(peer_state 1)
            [ "$s" = down ] && { seen_t=$(now); break; }
            awk -v a="$kill_t" -v b="$(now)" 'BEGIN{exit !(b - a > 15)}' && break
            sleep 0.05
        done
        stop b1 KILL
        echo "$kill_t" > "$dir/kill.epoch"
        wait "$cpid" || true
        facts=$(analyse_kill "$WORK_DIR/a/softswitch.log" "$from" "$kill_t")
        tail -c +"$((from + 1))" "$WORK_DIR/a/softswitch.log" > "$dir/a.log"
        read -r timeouts tried_dead first_to rerouted logged_suspect logged_down <<< "$facts"
        ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
        failed=$(stat_col "$dir/stat.csv" "FailedCall(C)")
        local polled="never (15 s)"
        [ -n "$seen_t" ] && polled=$(awk -v a="$kill_t" -v b="$seen_t" 'BEGIN{printf "%.0f", (b - a) * 1000}')
        out "| $r | $polled | $logged_suspect / $logged_down | $first_to → $rerouted | $tried_dead | $timeouts | $ok | $failed | $(rtd_pct "$dir") |"
        log "phase 2 round $r: down after $polled ms (log $logged_down), $timeouts timeouts, ok $ok failed $failed"
        sleep 2
    done
    out ""
    out "Times are from the kill (SIGKILL to B1). CLI poll: \`softswitch peers --json\` every 50 ms until peer 1 is \"down\" (includes up to one poll period). A logs: its \"dial peer state changed\" lines for peer 1. First invite timeout: A's first \"dial peer did not answer in time\" after the kill; re-routed: A's \"trying dial peer\" tag=2 line for that same call. Calls sent to dead peer 1: A's \"trying dial peer\" tag=1 lines after the kill; calls that paid the timeout: \"did not answer in time\" lines in the round."
    out ""
}

# ---------------------------------------------------------------- phase 3
# analyse_refusal DIR: the refused call, from the refuser's and the carrier's
# message traces (both SIPp, same clock): prints
# "invites_at_refuser 503_to_200_ms setup_ms".
analyse_refusal() {
    python3 - "$1" <<'PY'
import re, sys
from datetime import datetime
d = sys.argv[1]
def messages(path):
    """(time, direction, text) for each message of a SIPp -trace_msg file."""
    try:
        raw = open(path, errors="replace").read()
    except OSError:
        return []
    out = []
    parts = re.split(r"^-{10,} (\S+ \S+)\s*$", raw, flags=re.M)
    for i in range(1, len(parts) - 1, 2):
        stamp, body = parts[i], parts[i + 1]
        try:
            t = datetime.strptime(stamp.strip()[:26], "%Y-%m-%d\t%H:%M:%S.%f").timestamp()
        except ValueError:
            try:
                t = datetime.strptime(stamp.strip()[:26], "%Y-%m-%d %H:%M:%S.%f").timestamp()
            except ValueError:
                continue
        lines = body.strip("\n").split("\n")
        direction = "received" if "received" in lines[0] else "sent"
        out.append((t, direction, "\n".join(lines[1:]).strip()))
    return out
def header(msg, name):
    m = re.search(r"^" + name + r"\s*:\s*(.*)$", msg, flags=re.M | re.I)
    return m.group(1).strip() if m else ""
ref = messages(d + "/refuser-messages.log")
invites = [m for m in ref if m[1] == "received" and m[2].startswith("INVITE ")]
refusals = [m for m in ref if m[1] == "sent" and m[2].startswith("SIP/2.0 503")]
probes = sum(1 for m in ref if m[1] == "sent" and m[2].startswith("SIP/2.0 200")
             and "OPTIONS" in header(m[2], "CSeq") and (not invites or m[0] < invites[0][0]))
if not invites or not refusals:
    print(len(invites), probes, "-", "-"); sys.exit()
# The From user A passes on is the carrier's (5550<call number>).
caller = re.search(r"sip:([^@>;]+)@", header(invites[0][2], "From"))
t503 = refusals[0][0]
car = messages(d + "/messages.log")
user = caller.group(1) if caller else None
cid = None
t_inv = t_200 = None
for t, direction, msg in car:
    if direction == "sent" and msg.startswith("INVITE ") and user and ("sip:%s@" % user) in header(msg, "From"):
        cid = header(msg, "Call-ID"); t_inv = t_inv or t
    elif cid and direction == "received" and msg.startswith("SIP/2.0 200") \
            and header(msg, "Call-ID") == cid and "INVITE" in header(msg, "CSeq"):
        t_200 = t; break
ms = lambda a, b: "-" if a is None or b is None else "%.1f" % ((b - a) * 1000)
print(len(invites), probes, ms(t503, t_200), ms(t_inv, t_200))
PY
}

phase3() {
    out "### Phase 3: peer 1 refuses: SIPp on B1's address answers INVITEs with 503 + Retry-After: 30; ${REFUSE_SECONDS} s at ${FAIL_RATE} calls/s, A restarted before each round"
    out ""
    out "| round | OPTIONS answered before | ok | failed | INVITEs at the refuser | A's attempts on peer 1 | peer 1 after | refused call: 503 → 200 via peer 2 (ms) | refused call setup (ms) | setup p50 / p90 / p99 / max (ms) |"
    out "|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"
    local r dir from calls facts ok failed tried after rpid
    calls=$((FAIL_RATE * REFUSE_SECONDS))
    alive b1 && stop b1
    for ((r = 1; r <= REPEAT; r++)); do
        dir=$WORK_DIR/phase3/round-$r
        mkdir -p "$dir"
        # The refuser first, so A's first OPTIONS probe finds it.
        stop a
        (cd "$dir" && exec sipp "$A_IP:$SIP_PORT" -sf "$REPO/tests/sipp/trunk_refuser.xml" \
            -i "$B1_IP" -p "$SIP_PORT" -aa -m 100000 -timeout $((REFUSE_SECONDS + 60))s -nostdin \
            -trace_msg -message_file refuser-messages.log -trace_stat -stf refuser-stat.csv -fd 1 \
            >/dev/null 2>refuser.err) &
        PID[refuser]=$!
        sleep 0.3
        from=$(filesize "$WORK_DIR/a/softswitch.log")
        start_switch a
        # Peers start "up"; give the keepalive time to probe both (1 s apart).
        sleep 1.5
        wait_state 1 up 20 || log "phase 3 round $r: peer 1 is not up before the run (see $dir)"
        wait_state 2 up 20 || die "phase 3 round $r: peer 2 not up"
        log "phase 3 round $r: $FAIL_RATE calls/s for $REFUSE_SECONDS s against a refusing peer 1"
        carrier "$dir" "$FAIL_RATE" "$calls" -trace_msg -message_file messages.log
        after=$(peer_state 1)
        sleep 1.5   # the refuser's statistics are written every second
        stop refuser
        tail -c +"$((from + 1))" "$WORK_DIR/a/softswitch.log" > "$dir/a.log"
        tried=$(grep -c 'trying dial peer.*tag=1 ' "$dir/a.log" || true)
        facts=$(analyse_refusal "$dir")
        read -r invites probes gap setup <<< "$facts"
        ok=$(stat_col "$dir/stat.csv" "SuccessfulCall(C)")
        failed=$(stat_col "$dir/stat.csv" "FailedCall(C)")
        out "| $r | $probes | $ok | $failed | $invites | $tried | $after | $gap | $setup | $(rtd_pct "$dir") |"
        log "phase 3 round $r: ok $ok failed $failed, refuser got $invites INVITE(s), peer 1 $after"
    done
    out ""
    out "OPTIONS answered before: A's keepalive probes the refuser answered (200, SIPp -aa) before the first INVITE reached it, so peer 1 was up on evidence when it refused. The refused call's times come from the two SIPp message traces (same clock): the refuser's 503 → the carrier receiving that call's 200 (the call is found by the From user A passes on), and the carrier's INVITE → 200."
    out ""
}

for p in $PHASES; do
    case $p in
        1) phase1 ;;
        2) phase2 ;;
        3) phase3 ;;
        *) die "unknown phase $p" ;;
    esac
done
cat "$SUMMARY"
log "raw files: $WORK_DIR"
