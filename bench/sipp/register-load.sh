#!/usr/bin/env bash
# register-load.sh TARGET [TARGET...]
#
# Registration load benchmark: SIPp sends authenticated REGISTERs
# (register-auth.xml: REGISTER -> 401 -> REGISTER with digest -> 200) at a
# rising rate, each step a fixed number of registrations, and stops at the
# first step that is not clean (a failed or unfinished registration, or a rate
# that was not reached).  Per step it records what SIPp sent and got, response
# time percentiles, the target's CPU time and SIPp's own CPU time, and prints
# a Markdown table.
#
# TARGET:
#   kamailio         Kamailio (Debian package), digest auth, bindings in memory
#                    (usrloc db_mode=0) -- the baseline
#   kamailio-sqlite  the same, bindings written through to SQLite (db_mode=1)
#   softswitch       ./target/release/softswitch (must already be built)
# Several targets run one after the other in the same invocation, e.g.
#   sudo bench/sipp/register-load.sh kamailio softswitch
#
# Settings (environment):
#   RATES="1000 2000 4000 ..."   registrations per second, one step each
#   STEP_SECONDS=10              length of a step: calls = rate * STEP_SECONDS
#   USERS=10000                  users u00001.. in users.csv and the target
#   TARGET_IP=127.0.0.50 TARGET_PORT=5060   where the target listens (UDP)
#   SIPP_IP=127.0.0.60   SIPP_PORT=5060     SIPp's own socket
#   DOMAIN=pbx.local             AOR domain and digest realm
#   KAM_CHILDREN=4               Kamailio UDP worker processes
#   SOFTSWITCH_BIN=<repo>/target/release/softswitch
#   SOFTSWITCH_ALGORITHMS="MD5 SHA-256"   [auth] algorithms written for the
#                                softswitch; "default" writes no [auth] table
#                                (the switch's own order, which is MD5 first
#                                too; SIPp 3.6.1 answers only an MD5 first
#                                challenge)
#   SETTLE_SECONDS=3             pause between steps
#   QUIET_PCT=10                 the machine counts as quiet when everything but
#                                the target uses less than this (% of one core);
#                                each step waits for quiet (at most QUIET_WAIT=900 s)
#                                and is run again (at most twice) if other load
#                                above 2*QUIET_PCT disturbed it.  QUIET_PCT=0: no waiting.
#   WORK_DIR=...                 where everything goes (default: mktemp under /tmp)
#
# Everything stays on 127.0.0.0/8.  Every process this script starts is
# stopped by its PID when it exits (also on Ctrl-C); nothing is killed by name.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

RATES=${RATES:-"1000 2000 4000 6000 8000 10000 12000 14000 16000 18000 20000"}
STEP_SECONDS=${STEP_SECONDS:-10}
USERS=${USERS:-10000}
TARGET_IP=${TARGET_IP:-127.0.0.50}
TARGET_PORT=${TARGET_PORT:-5060}
SIPP_IP=${SIPP_IP:-127.0.0.60}
SIPP_PORT=${SIPP_PORT:-5060}
DOMAIN=${DOMAIN:-pbx.local}
KAM_CHILDREN=${KAM_CHILDREN:-4}
SOFTSWITCH_BIN=${SOFTSWITCH_BIN:-$REPO/target/release/softswitch}
SOFTSWITCH_ALGORITHMS=${SOFTSWITCH_ALGORITHMS:-"MD5 SHA-256"}
SETTLE_SECONDS=${SETTLE_SECONDS:-3}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-900}
SCENARIO=$HERE/register-auth.xml
KAM_CFG=$HERE/kamailio-registrar.cfg
MAX_STEPS=20                 # hard bound on steps, whatever RATES says
CLK_TCK=$(getconf CLK_TCK)

die() { echo "register-load: $*" >&2; exit 2; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ $# -ge 1 ] || die "usage: $0 kamailio|kamailio-sqlite|softswitch [more targets...]"
for t in "$@"; do
    case $t in kamailio|kamailio-sqlite|softswitch) ;; *) die "unknown target '$t'";; esac
done
case $TARGET_IP in 127.*) ;; *) die "TARGET_IP must be a loopback address";; esac
case $SIPP_IP in 127.*) ;; *) die "SIPP_IP must be a loopback address";; esac
[[ $STEP_SECONDS =~ ^[0-9]+$ && $STEP_SECONDS -ge 1 && $STEP_SECONDS -le 120 ]] \
    || die "STEP_SECONDS must be 1..120"
[[ $USERS =~ ^[0-9]+$ && $USERS -ge 1 && $USERS -le 99999 ]] || die "USERS must be 1..99999"

# ---------------------------------------------------------------- install ---
need_pkgs=()
command -v sipp >/dev/null || need_pkgs+=(sip-tester)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v ss >/dev/null || need_pkgs+=(iproute2)
for t in "$@"; do
    case $t in
    kamailio*) command -v kamailio >/dev/null || need_pkgs+=(kamailio) ;;&
    kamailio-sqlite)
        [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || need_pkgs+=(kamailio-sqlite-modules)
        command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3) ;;
    esac
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages: ${need_pkgs[*]} (run as root to install them)"
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d-less containers: the kamailio package must not start a system instance
    apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; } \
        || die "apt-get install ${need_pkgs[*]} failed"
fi
for t in "$@"; do
    [ "$t" != softswitch ] || [ -x "$SOFTSWITCH_BIN" ] \
        || die "$SOFTSWITCH_BIN does not exist: build it first (cargo build --release); this script builds nothing"
done

# ------------------------------------------------------------- work dir -----
WORK_DIR=${WORK_DIR:-$(mktemp -d /tmp/softswitch-bench.XXXXXX)}
mkdir -p "$WORK_DIR"
log "work dir: $WORK_DIR"

# ------------------------------------------------------ process bookkeeping --
TARGET_PID=""        # main PID of the running target
TARGET_PIDS=()       # it and its children (Kamailio forks workers)
SIPP_PID=""

stop_pid() {        # stop_pid PID: TERM, wait up to 10 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}
stop_target() {
    local p
    [ -n "$TARGET_PID" ] || return 0
    stop_pid "$TARGET_PID"
    wait "$TARGET_PID" 2>/dev/null || true
    # Kamailio's main process takes its workers down; make sure of it.
    for p in "${TARGET_PIDS[@]}"; do stop_pid "$p"; done
    TARGET_PID=""; TARGET_PIDS=()
}
cleanup() {
    [ -z "$SIPP_PID" ] || stop_pid "$SIPP_PID"
    stop_target
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# children of a PID, from /proc (read only; used for CPU accounting and cleanup)
children_of() {      # children_of PID
    local parent=$1 f line rest
    for f in /proc/[0-9]*/stat; do
        line=$(cat "$f" 2>/dev/null) || continue
        rest=${line##*) }            # fields after "pid (comm) ": state ppid ...
        set -- $rest
        [ "${2:-}" = "$parent" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}
collect_target_pids() {
    local level pids=("$TARGET_PID") new p
    TARGET_PIDS=("$TARGET_PID")
    for level in 1 2 3; do          # Kamailio: main -> workers (one level)
        new=()
        for p in "${pids[@]}"; do
            while read -r c; do [ -n "$c" ] && new+=("$c"); done < <(children_of "$p")
        done
        [ ${#new[@]} -gt 0 ] || break
        TARGET_PIDS+=("${new[@]}"); pids=("${new[@]}")
    done
}
# utime+stime, in clock ticks, summed over the target's processes (all threads)
target_ticks() {
    local p line rest total=0
    for p in "${TARGET_PIDS[@]}"; do
        line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        rest=${line##*) }
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# busy clock ticks of the whole machine (all CPUs), from /proc/stat
machine_busy_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# Wait (bounded) until the rest of the machine is quiet: busy CPU outside the
# target below QUIET_PCT % of one core over a 2 s window.
wait_quiet() {
    local waited=0 m0 m1 t0 t1 other
    [ "$QUIET_PCT" -gt 0 ] || return 0
    while :; do
        m0=$(machine_busy_ticks); t0=$(target_ticks)
        sleep 2
        m1=$(machine_busy_ticks); t1=$(target_ticks)
        other=$(( ((m1 - m0) - (t1 - t0)) * 100 / CLK_TCK / 2 ))
        [ "$other" -ge "$QUIET_PCT" ] || return 0
        [ $waited -lt "$QUIET_WAIT" ] || { log "machine still busy (${other}% of a core elsewhere) after ${waited}s; measuring anyway"; return 0; }
        [ $waited -gt 0 ] || log "waiting for the machine to be quiet (${other}% of a core used elsewhere)"
        sleep 8; waited=$((waited + 10))
    done
}

port_busy() { ss -H -uln "src $TARGET_IP:$TARGET_PORT" 2>/dev/null | grep -q .; }

# ---------------------------------------------------------------- users -----
USERS_CSV=$WORK_DIR/users.csv
make_users() {
    awk -v n="$USERS" 'BEGIN {
        print "SEQUENTIAL"
        for (i = 1; i <= n; i++) printf "u%05d;pw%05d-%04x\n", i, i, (i * 7919) % 65536
    }' > "$USERS_CSV"
}

# ---------------------------------------------------------------- targets ---
start_kamailio() {          # $1 = kamailio | kamailio-sqlite
    local dir=$WORK_DIR/$1 extra=()
    mkdir -p "$dir/dbtext"
    # the password table for htable, in db_text format (same users as users.csv)
    printf 'table_name(string) table_version(int) \nversion:1\npasswords:2\n' > "$dir/dbtext/version"
    { echo 'key_name(string) key_type(int) value_type(int) key_value(string) expires(int) '
      tail -n +2 "$USERS_CSV" | awk -F';' '{ printf "%s:0:0:%s:0\n", $1, $2 }'; } > "$dir/dbtext/passwords"
    if [ "$1" = kamailio-sqlite ]; then
        rm -f "$dir/location.sqlite"
        cat /usr/share/kamailio/db_sqlite/standard-create.sql \
            /usr/share/kamailio/db_sqlite/usrloc-create.sql | sqlite3 "$dir/location.sqlite"
        extra=(-A WITH_SQLITE -A "BENCH_SQLITE=\"sqlite://$dir/location.sqlite\""
               -A "BENCH_SQLITE_FILE=\"$dir/location.sqlite\"")
    fi
    kamailio -f "$KAM_CFG" -DD -E -m 256 -M 16 -P "$dir/kamailio.pid" \
        -A "BENCH_LISTEN=udp:$TARGET_IP:$TARGET_PORT" \
        -A "BENCH_CHILDREN=$KAM_CHILDREN" \
        -A "BENCH_REALM=\"$DOMAIN\"" \
        -A "BENCH_DBTEXT=\"text://$dir/dbtext\"" \
        -A "BENCH_CTL=\"unix:$dir/kamailio.ctl\"" \
        "${extra[@]}" > "$dir/kamailio.log" 2>&1 &
    TARGET_PID=$!
    TARGET_LOG=$dir/kamailio.log
    TARGET_CTL=$dir/kamailio.ctl
}

start_softswitch() {
    local dir=$WORK_DIR/softswitch algos="" a
    mkdir -p "$dir"
    rm -f "$dir"/softswitch.db*
    if [ "$SOFTSWITCH_ALGORITHMS" != default ]; then
        for a in $SOFTSWITCH_ALGORITHMS; do algos+="${algos:+, }\"$a\""; done
    fi
    {
        echo "# written by bench/sipp/register-load.sh"
        echo "[sip]"
        echo "listen = [\"udp:$TARGET_IP:$TARGET_PORT\"]"
        echo "domain = \"$DOMAIN\""
        echo
        echo "[database]"
        echo "url = \"sqlite://$dir/softswitch.db\""
        if [ -n "$algos" ]; then
            echo
            echo "# SIPp 3.6.1 answers only the FIRST challenge and only MD5: MD5 first."
            echo "[auth]"
            echo "algorithms = [$algos]"
        fi
        tail -n +2 "$USERS_CSV" | awk -F';' '{
            printf "\n[[endpoint]]\nname = \"%s\"\npassword = \"%s\"\ncontext = \"internal\"\n", $1, $2 }'
    } > "$dir/softswitch.toml"
    printf '[internal]\nexten => _X.,1,Hangup()\n' > "$dir/extensions.conf"
    "$SOFTSWITCH_BIN" run --config "$dir/softswitch.toml" > "$dir/softswitch.log" 2>&1 &
    TARGET_PID=$!
    TARGET_LOG=$dir/softswitch.log
}

# ------------------------------------------------------------------ sipp ----
# run_sipp DIR CALLS RATE INNER_TIMEOUT [extra sipp args]: runs SIPp in DIR,
# bounded by -m, -timeout and an outer timeout; its CPU (user/sys/wall) goes to
# DIR/time.txt.  Returns SIPp's exit status.
run_sipp() {
    local dir=$1 calls=$2 rate=$3 inner=$4 rc=0
    shift 4
    mkdir -p "$dir"
    ( cd "$dir" && exec /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" \
        timeout -k 5 $((inner + 20)) \
        sipp "$TARGET_IP:$TARGET_PORT" -sf "$SCENARIO" -inf "$USERS_CSV" \
            -i "$SIPP_IP" -p "$SIPP_PORT" -t u1 \
            -m "$calls" -r "$rate" -rp 1000 -l $((rate > 1000 ? rate : 1000)) \
            -timeout "${inner}s" -recv_timeout 8000 \
            -buff_size 4194304 -nostdin -set domain "$DOMAIN" \
            -trace_err -error_file "$dir/errors.log" \
            "$@" > "$dir/sipp.out" 2>&1 ) &
    SIPP_PID=$!
    wait "$SIPP_PID" || rc=$?
    SIPP_PID=""
    return $rc
}

# Wait until the target answers one full authenticated registration (at most
# ~15 s), so a step never starts against a target that is still loading.
smoke_test() {
    local name=$1 i rc dir
    for i in $(seq 1 30); do
        kill -0 "$TARGET_PID" 2>/dev/null || { tail -20 "$TARGET_LOG" >&2; die "$name exited during start-up (log: $TARGET_LOG)"; }
        dir=$WORK_DIR/$name/smoke.$i
        rc=0; run_sipp "$dir" 1 1 5 || rc=$?
        [ $rc -eq 0 ] && return 0
        if grep -q 'createAuthHeader' "$dir/errors.log" "$dir/sipp.out" 2>/dev/null; then
            grep -h -m1 'createAuthHeader' "$dir/errors.log" "$dir/sipp.out" >&2 || true
            die "SIPp cannot answer $name's challenge (SIPp 3.6.1 answers only the first WWW-Authenticate, and only MD5). Put MD5 first: SOFTSWITCH_ALGORITHMS=\"MD5 SHA-256\""
        fi
        sleep 0.5
    done
    tail -20 "$TARGET_LOG" >&2
    die "$name did not register one user within 30 attempts (see $WORK_DIR/$name/smoke.*)"
}

# ------------------------------------------------------------ statistics ----
# value of column NAME in the last line of SIPp's -trace_stat CSV
stat_col() {
    awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
                            { last = $c } END { print (c && last != "") ? last + 0 : 0 }' "$1"
}
# nearest-rank percentiles of a file of numbers: prints "p50 p90 p99 max" (or "- - - -")
percentiles() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - - -"; exit }
        split("0.50 0.90 0.99", q, " ")
        for (i = 1; i <= 3; i++) { k = int(q[i] * NR); if (k < q[i] * NR) k++; if (k < 1) k = 1; printf "%s ", v[k] }
        print v[NR] }'
}

# ------------------------------------------------------------------ run -----
TABLES=""
SUMMARY=""
SIPP_TICK=""

bench_target() {
    local name=$1 step=0 rate calls inner rc dir t0 t1 m0 m1
    log "=== $name ==="
    if port_busy; then die "something already listens on udp $TARGET_IP:$TARGET_PORT"; fi
    case $name in
        kamailio|kamailio-sqlite) start_kamailio "$name" ;;
        softswitch) start_softswitch ;;
    esac
    smoke_test "$name"
    collect_target_pids
    log "$name up: pid $TARGET_PID (${#TARGET_PIDS[@]} processes)"

    local table
    table="### $name"$'\n\n'
    table+="| target rate /s | achieved /s | sent | ok | failed | retrans | whole reg mean / p99 (ms) | auth REGISTER p50 / p90 / p99 / max (ms) | target CPU % | target CPU µs/reg | SIPp CPU % | other CPU % | verdict |"$'\n'
    table+="|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|"$'\n'
    local best="" best_line="" verdict
    for rate in $RATES; do
        step=$((step + 1))
        [ $step -le $MAX_STEPS ] || break
        [[ $rate =~ ^[0-9]+$ && $rate -ge 1 && $rate -le 200000 ]] || die "bad rate '$rate'"
        calls=$((rate * STEP_SECONDS))
        inner=$((STEP_SECONDS * 2 + 15))
        dir=$WORK_DIR/$name/step-$rate
        log "$name: $rate/s, $calls registrations"
        kill -0 "$TARGET_PID" 2>/dev/null || { verdict="target died"; table+="| $rate | | | | | | | | | | | | **$verdict** |"$'\n'; break; }

        local attempt
        for attempt in 1 2 3; do
            wait_quiet
            rm -rf "$dir"
            t0=$(target_ticks); m0=$(machine_busy_ticks)
            rc=0
            run_sipp "$dir" "$calls" "$rate" "$inner" \
                -trace_stat -stf "$dir/stat.csv" -fd 1 \
                -trace_rtt -rtt_freq 200 \
                -trace_logs -log_file "$dir/auth_us.log" || rc=$?
            t1=$(target_ticks); m1=$(machine_busy_ticks)

            # SIPp's counters
            local sent ok failed retrans unfinished
            sent=$(stat_col "$dir/stat.csv" TotalCallCreated)
            ok=$(stat_col "$dir/stat.csv" 'SuccessfulCall(C)')
            failed=$(stat_col "$dir/stat.csv" 'FailedCall(C)')
            retrans=$(stat_col "$dir/stat.csv" 'Retransmissions(C)')
            unfinished=$((sent - ok - failed)); [ $unfinished -ge 0 ] || unfinished=0
            failed=$((failed + unfinished))

            # achieved rate: completed registrations over the span between the
            # first and the last completion (SIPp's rtt dump, ms since start)
            local rttf achieved
            rttf=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1 || true)
            achieved=0
            if [ -n "$rttf" ]; then
                achieved=$(awk -F';' 'NR > 1 && $3 == "reg" { if (n == 0) f = $1; l = $1; n++ }
                    END { if (n > 1 && l > f) printf "%d", (n - 1) * 1000 / (l - f); else print 0 }' "$rttf")
                cut -d';' -f2 "$rttf" | tail -n +2 > "$dir/reg_ms.txt"
            else
                : > "$dir/reg_ms.txt"
            fi
            # SIPp's own clock is coarse (a 4 ms tick on this kernel), so its
            # percentiles are too; its mean is not biased by the tick.
            local reg a rmean r99 tick
            rmean=$(awk '{ s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "-" }' "$dir/reg_ms.txt")
            read -r _ _ r99 _ < <(percentiles "$dir/reg_ms.txt")
            tick=$(awk '$1 > 0 && (m == "" || $1 < m) { m = $1 } END { print (m == "") ? "?" : m }' "$dir/reg_ms.txt")
            [ "$tick" = "?" ] || SIPP_TICK=$tick
            reg="$rmean / $r99"
            [ -f "$dir/auth_us.log" ] || : > "$dir/auth_us.log"
            read -r a50 a90 a99 amax < <(percentiles "$dir/auth_us.log")
            a=$(awk -v a="$a50" -v b="$a90" -v c="$a99" -v d="$amax" 'BEGIN {
                if (a == "-") { print "-"; exit } printf "%.3f / %.3f / %.3f / %.1f", a/1000, b/1000, c/1000, d/1000 }')

            # CPU
            local e u s tcpu tcpu_reg scpu ocpu
            # GNU time puts "Command exited with non-zero status N" first: take the last line
            read -r e u s < <(tail -n 1 "$dir/time.txt" 2>/dev/null) || { e=0; u=0; s=0; }
            tcpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v w="$e" 'BEGIN { printf "%.0f", (w > 0) ? d / hz / w * 100 : 0 }')
            tcpu_reg=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ok" 'BEGIN { printf "%.0f", (n > 0) ? d / hz / n * 1e6 : 0 }')
            scpu=$(awk -v u="$u" -v s="$s" -v w="$e" 'BEGIN { printf "%.0f", (w > 0) ? (u + s) / w * 100 : 0 }')
            # everything else the machine did meanwhile (another build, say): if
            # this is not near 0 the step was not measured on a quiet machine
            ocpu=$(awk -v m=$((m1 - m0)) -v hz="$CLK_TCK" -v w="$e" -v t="$tcpu" -v sc="$scpu" \
                'BEGIN { o = (w > 0) ? m / hz / w * 100 - t - sc : 0; printf "%.0f", (o < 0) ? 0 : o }')

            if [ "$QUIET_PCT" -gt 0 ] && [ "$ocpu" -gt $((2 * QUIET_PCT)) ] && [ $attempt -lt 3 ]; then
                log "$name $rate/s: disturbed by other load (${ocpu}% of a core), running the step again"
                sleep "$SETTLE_SECONDS"
                continue
            fi
            break
        done

        # verdict
        if [ "$failed" -gt 0 ]; then
            verdict="FAIL: $failed failed/unfinished"
        elif [ "$rc" -ne 0 ]; then
            verdict="FAIL: sipp exit $rc"
        elif [ "$sent" -lt "$calls" ]; then
            verdict="rate not held: $sent of $calls sent in time"
        elif [ $((achieved * 100)) -lt $((rate * 95)) ]; then
            if [ "$scpu" -ge 90 ]; then
                verdict="rate not reached: SIPp CPU-bound"
            else
                verdict="rate not reached"
            fi
        elif [ "$retrans" -gt 0 ]; then
            verdict="ok ($retrans retransmissions)"
        else
            verdict="ok"
        fi
        table+="| $rate | $achieved | $sent | $ok | $failed | $retrans | $reg | $a | $tcpu | $tcpu_reg | $scpu | $ocpu | $verdict |"$'\n'
        log "$name $rate/s: achieved $achieved/s, ok $ok, failed $failed, retrans $retrans, reg ms $reg, auth ms $a, target CPU ${tcpu}%, SIPp CPU ${scpu}%, other ${ocpu}% -> $verdict"
        if [ "${verdict%% *}" = ok ]; then
            best=$rate
            best_line="$achieved/s achieved, whole registration mean/p99 $reg ms, authenticated REGISTER p50/p90/p99/max $a ms, target CPU ${tcpu}% (${tcpu_reg} µs per registration), SIPp CPU ${scpu}%, other load ${ocpu}%, retransmissions $retrans"
        else
            break
        fi
        kill -0 "$TARGET_PID" 2>/dev/null || break
        sleep "$SETTLE_SECONDS"
    done

    # Kamailio: how many bindings are in memory now (should be min(USERS, registrations))
    if [ "${name%%-*}" = kamailio ] && command -v kamcmd >/dev/null; then
        local b
        timeout 10 kamcmd -s "unix:$TARGET_CTL" stats.get_statistics usrloc: \
            > "$WORK_DIR/$name/usrloc-stats.txt" 2>&1 || true
        b=$(awk '$1 == "usrloc:location_contacts" { print $3 }' "$WORK_DIR/$name/usrloc-stats.txt")
        table+=$'\n'"Bindings held by $name after the run: ${b:-unknown} (users: $USERS)."$'\n'
    fi
    stop_target
    TABLES+="$table"$'\n'
    if [ -n "$best" ]; then
        SUMMARY+="- **$name**: highest clean step **$best REGISTER/s** — $best_line"$'\n'
    else
        SUMMARY+="- **$name**: no clean step"$'\n'
    fi
}

make_users
for t in "$@"; do
    bench_target "$t"
    sleep "$SETTLE_SECONDS"
done

{
    echo "## SIPp registration load — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "Host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -r); $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ,]*' | head -1 || true)"
    echo "Steps of $STEP_SECONDS s, $USERS users (sequential, wrapping), UDP on loopback, target $TARGET_IP:$TARGET_PORT."
    echo
    printf '%s' "$SUMMARY"
    echo
    printf '%s' "$TABLES"
    echo "whole reg = first REGISTER sent -> final 200, from SIPp's rtd: SIPp's clock moved in ${SIPP_TICK:-?} ms ticks here,"
    echo "  so only the mean is sharp (the tick's phase is random); its p99 is a multiple of the tick."
    echo "auth REGISTER = 401 received / authenticated REGISTER sent -> 200 (gettimeofday, µs resolution)."
    echo "target CPU % is of one core (200 % = both cores); SIPp CPU % likewise (SIPp is single-threaded)."
    echo "Raw files: $WORK_DIR"
} | tee "$WORK_DIR/results.md"
