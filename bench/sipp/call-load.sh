#!/usr/bin/env bash
# call-load.sh — call setup load through the switch.
#
# SIPp caller (call-uac.xml: INVITE -> 407 -> INVITE with digest -> 200 -> ACK ->
# hold -> BYE) -> softswitch (dialplan Dial(SIP/1002), media anchored on the relay)
# -> SIPp callee registered as 1002 (call-uas.xml, -rtp_echo). Steps of rising call
# rate; per step: calls attempted, succeeded, failed, and the setup time (first
# INVITE to 200, digest round trip included) as p50/p90/p99 from SIPp's rtd trace.
# Stops at the first step with a failed call.
#
# Settings (environment):
#   RATES="200 500 1000 1500 2000"   calls per second, one step each
#   STEP_SECONDS=10                   calls per step = rate * STEP_SECONDS
#   HOLD_MS=1000                      talk time per call
#   RTP=1                             1: the caller streams PCMU (50 pps) and the
#                                     callee echoes it; 0: signalling only
#   SWITCH_IP=127.0.0.70  CALLER_IP=127.0.0.71  CALLEE_IP=127.0.0.72
#   SOFTSWITCH_BIN=<repo>/target/release/softswitch (built beforehand)
#   WORK_DIR=...                      default: mktemp under /tmp
# Loopback only; every process started here is stopped by PID on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
RATES=${RATES:-"200 500 1000 1500 2000"}
STEP_SECONDS=${STEP_SECONDS:-10}
HOLD_MS=${HOLD_MS:-1000}
RTP=${RTP:-1}
SWITCH_IP=${SWITCH_IP:-127.0.0.70}
CALLER_IP=${CALLER_IP:-127.0.0.71}
CALLEE_IP=${CALLEE_IP:-127.0.0.72}
SOFTSWITCH_BIN=${SOFTSWITCH_BIN:-$REPO/target/release/softswitch}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/softswitch-callbench.XXXXXX)}

die() { echo "call-load: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
for ip in "$SWITCH_IP" "$CALLER_IP" "$CALLEE_IP"; do
    case $ip in 127.*) ;; *) die "$ip is not a loopback address";; esac
done
[ -x "$SOFTSWITCH_BIN" ] || die "$SOFTSWITCH_BIN missing: cargo build --release -p softswitch"
command -v sipp >/dev/null || die "sipp missing (Debian package sip-tester)"

# SIPp's SIP sockets get the kernel's default buffer (about 200 KiB), which its
# single thread overflows in bursts at these rates: the lost requests and answers
# come back as 500 ms retransmissions and failed calls that are the generator's,
# not the switch's. The kernel caps this at net.core.rmem_max/wmem_max.
SIPP_BUFFER=${SIPP_BUFFER:-4194304}

PIDS=()
# Waits for each process to be gone, so a run started right after this one finds
# its ports free.
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

mkdir -p "$WORK_DIR/switch"
cat > "$WORK_DIR/switch/softswitch.toml" <<CONF
[sip]
listen = ["udp:$SWITCH_IP:5060"]
domain = "pbx.local"
[database]
url = "sqlite://$WORK_DIR/switch/softswitch.db"
[rtp]
ports = "10000-30000"
[registrar]
min_expires = 60
[admin]
listen = "$SWITCH_IP:8088"
[[endpoint]]
name = "1001"
password = "secret1001"
context = "internal"
[[endpoint]]
name = "1002"
password = "secret1002"
context = "internal"
CONF
printf '[internal]\nexten => 1002,1,Dial(SIP/1002,10)\n same => n,Hangup()\n' \
    > "$WORK_DIR/switch/extensions.conf"
RUST_LOG=warn "$SOFTSWITCH_BIN" run --config "$WORK_DIR/switch/softswitch.toml" \
    > "$WORK_DIR/switch/softswitch.log" 2>&1 &
SWITCH_PID=$!
PIDS+=("$SWITCH_PID")
sleep 1
kill -0 "$SWITCH_PID" 2>/dev/null || die "softswitch did not start: $(cat "$WORK_DIR/switch/softswitch.log")"

# The callee registers from the address it will answer on.
(cd "$WORK_DIR" && sipp "$SWITCH_IP:5060" -sf "$REPO/tests/sipp/register.xml" \
    -i "$CALLEE_IP" -p 5060 -s 1002 -ap secret1002 -key expires 3600 \
    -m 1 -timeout 10s -timeout_error -nostdin >/dev/null 2>&1) \
    || die "callee registration failed"

# One minute of a 440 Hz tone as raw u-law for the caller's stream.
python3 - "$WORK_DIR/tone.ulaw" <<'PY'
import math, sys
def ulaw(s):
    BIAS = 0x84
    sign = 0x80 if s < 0 else 0
    s = min(abs(s) + BIAS, 32635)
    exp = max(0, s.bit_length() - 8)
    exp = min(exp, 7)
    mant = (s >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF
with open(sys.argv[1], "wb") as f:
    f.write(bytes(ulaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000 * 60)))
PY
UAC=$WORK_DIR/call-uac.xml
if [ "$RTP" = 1 ]; then
    sed "s|\[audio\]|$WORK_DIR/tone.ulaw|" "$HERE/call-uac.xml" > "$UAC"
else
    python3 - "$HERE/call-uac.xml" "$UAC" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'\s*<nop display="talk">.*?</nop>', '', s, flags=re.S)
open(sys.argv[2], "w").write(s)
PY
fi

# The calls the switch recorded after CDR row AFTER, from its own CDRs: the last
# row, records, records whose relay carried RTP both ways, RTP packets relayed
# (both ways), and the switch's own setup time (authenticated INVITE taken to the
# callee's 200 passed on, in ms) as p50/p99.
cdrs_after() {
    python3 - "$WORK_DIR/switch/softswitch.db" "$1" <<'PY'
import json, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT rowid, media, answer_at - start_at FROM cdr WHERE rowid > ? ORDER BY rowid",
    (int(sys.argv[2]),)).fetchall()
both = relayed = 0
setup = sorted(s for (_, _, s) in rows if s is not None)
for (_, media, _) in rows:
    legs = json.loads(media or "{}")
    fwd = [legs.get(side, {}).get("forwarded") or 0 for side in ("caller", "callee")]
    both += all(f > 0 for f in fwd)
    relayed += sum(fwd)
pct = lambda q: setup[min(len(setup) - 1, int(len(setup) * q))] if setup else "-"
last = rows[-1][0] if rows else sys.argv[2]
print(last, len(rows), both, relayed, f"{pct(0.5)}/{pct(0.99)}")
PY
}

echo "| calls/s | attempted | ok | failed | setup p50 / p90 / p99 (ms) | switch CPU % | SIPp CPU % (caller+callee) | CDRs | with RTP both ways | RTP packets relayed | switch's setup p50/p99 (ms) |"
echo "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
last_cdr=0
for rate in $RATES; do
    calls=$((rate * STEP_SECONDS))
    dir=$WORK_DIR/step-$rate
    mkdir -p "$dir"
    echo_opt=()
    [ "$RTP" = 1 ] && echo_opt=(-rtp_echo)
    (cd "$dir" && exec sipp -sf "$HERE/call-uas.xml" -i "$CALLEE_IP" -p 5060 -buff_size "$SIPP_BUFFER" \
        -mi "$CALLEE_IP" -mp 40000 "${echo_opt[@]}" -m "$calls" -timeout $((STEP_SECONDS * 3 + 30))s \
        -nostdin >/dev/null 2>&1) &
    UAS_PID=$!
    PIDS+=("$UAS_PID")
    sleep 0.5
    t0=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat")
    s0=$(date +%s.%N)
    set +e
    (cd "$dir" && sipp "$SWITCH_IP:5060" -sf "$UAC" -i "$CALLER_IP" -p 5060 -buff_size "$SIPP_BUFFER" \
        -mi "$CALLER_IP" -mp 50000 -s 1002 -au 1001 -ap secret1001 -key caller 1001 \
        -d "$HOLD_MS" -r "$rate" -m "$calls" -l $((rate * (HOLD_MS / 1000 + 3))) \
        -timeout $((STEP_SECONDS * 3 + 30))s -timeout_error -nostdin \
        -trace_stat -stf stat.csv -trace_rtt -rtt_freq 50 -trace_err -error_file "$dir/errors.log" \
        >/dev/null 2>"$dir/uac.err"
        # The subshell's reaped-children time is the caller SIPp's CPU.
        awk '{print $16 + $17}' "/proc/$BASHPID/stat" > "$dir/uac.cpu")
    set -e
    s1=$(date +%s.%N)
    t1=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat")
    uas_cpu=$(awk '{print $14 + $15}' "/proc/$UAS_PID/stat" 2>/dev/null || echo 0)
    kill "$UAS_PID" 2>/dev/null || true
    wait "$UAS_PID" 2>/dev/null || true
    last=$(tail -n 1 "$dir/stat.csv")
    header=$(head -n 1 "$dir/stat.csv")
    col() { awk -F';' -v name="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} NR==2{print $c}' \
        <(echo "$header"; echo "$last"); }
    ok=$(col "SuccessfulCall(C)"); failed=$(col "FailedCall(C)"); created=$(col "OutgoingCall(C)")
    rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -n1 || true)
    pct=$(awk -F';' 'NR>1{print $2}' "$rtt" 2>/dev/null | sort -n | awk '
        {v[NR]=$1}
        END {
            if (NR == 0) { print "-"; exit }
            a = int(NR * 0.5); if (a < 1) a = 1
            b = int(NR * 0.9); if (b < 1) b = 1
            c = int(NR * 0.99); if (c < 1) c = 1
            printf "%.1f / %.1f / %.1f", v[a], v[b], v[c]
        }' || true)
    cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN{printf "%.0f", (b-a)/hz/(s1-s0)*100}')
    sipp_cpu=$(awk -v u="$(cat "$dir/uac.cpu" 2>/dev/null || echo 0)" -v c="$uas_cpu" \
        -v s0="$s0" -v s1="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", (u+c)/hz/(s1-s0)*100}')
    # The last CDRs reach the database with the next group commit.
    sleep 1
    read -r last_cdr cdrs both relayed switch_setup < <(cdrs_after "$last_cdr")
    echo "| $rate | $created | $ok | $failed | $pct | $cpu | $sipp_cpu | $cdrs | $both | $relayed | $switch_setup |"
    log "step $rate/s: ok $ok failed $failed"
    [ "${failed:-1}" = 0 ] || { log "stopping: failed calls at $rate/s (see $dir)"; break; }
    sleep 2
done
log "raw files: $WORK_DIR"
