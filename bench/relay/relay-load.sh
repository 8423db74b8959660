#!/usr/bin/env bash
# relay-load.sh — RTP relay CPU per packet: softswitch's relay against rtpengine
# (userspace, Debian package rtpengine-daemon) and a minimal C relay (the baseline,
# minimal-relay.c beside this script), in one run.
#
# Each call: two endpoints send a 172-byte PCMU packet every 20 ms, one toward
# each side of the relay (100 packets/s relayed per call). Per target and call
# count: packets sent and received in the measured window (after a warm-up for
# latching), loss, and the relay process's CPU time per relayed packet.
#
# Settings (environment):
#   CALLS="500 1250"          concurrent calls, one run each
#   TARGETS="c softswitch rtpengine"
#   SECONDS_PER_RUN=10
#   REPEAT=1                  rounds of every target per call count
#   THREADS=1                 media threads of the softswitch relay
#   RELAY_IP=127.0.0.80  GEN_IP=127.0.0.81
# Loopback only; every process is started by relay-load and stopped by it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CALLS=${CALLS:-"500 1250"}
TARGETS=${TARGETS:-"c softswitch rtpengine"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
REPEAT=${REPEAT:-1}
THREADS=${THREADS:-1}
RELAY_IP=${RELAY_IP:-127.0.0.80}
GEN_IP=${GEN_IP:-127.0.0.81}
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/softswitch-relaybench.XXXXXX)}

die() { echo "relay-load: $*" >&2; exit 2; }
command -v cc >/dev/null || die "a C compiler is needed for the baseline relay"
case " $TARGETS " in
    *" rtpengine "*) command -v rtpengine >/dev/null || die "rtpengine missing (apt-get install rtpengine-daemon)";;
esac

(cd "$REPO" && cargo build --release -q -p softswitch-bench --bin relay-load)
cc -O2 -o "$WORK_DIR/minimal-relay" "$HERE/minimal-relay.c"

printf '%-11s %6s %9s %9s %6s %9s %12s\n' target calls packets lost cpu% us/packet vs-baseline
for calls in $CALLS; do
  for _ in $(seq "$REPEAT"); do
    base=""
    for target in $TARGETS; do
        line=$("$REPO/target/release/relay-load" run --target "$target" --calls "$calls" \
            --seconds "$SECONDS_PER_RUN" --threads "$THREADS" --relay-ip "$RELAY_IP" \
            --gen-ip "$GEN_IP" --c-relay "$WORK_DIR/minimal-relay" 2>"$WORK_DIR/$target-$calls.log")
        echo "$line" >> "$WORK_DIR/results.jsonl"
        python3 - "$line" "$base" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
base = float(sys.argv[2]) if sys.argv[2] else r["cpu_us_per_packet"]
ratio = r["cpu_us_per_packet"] / base if base else 0
print(f'{r["target"]:<11} {r["calls"]:>6} {r["received"]:>9} {r["lost"]:>9} '
      f'{r["relay_cpu_pct"]:>6.1f} {r["cpu_us_per_packet"]:>9.2f} {ratio:>11.2f}x')
PY
        if [ "$target" = c ]; then
            base=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cpu_us_per_packet"])' "$line")
        fi
    done
  done
done
echo "raw results: $WORK_DIR/results.jsonl" >&2
