#!/usr/bin/env bash
# Echo-server benchmark (not a test): scripts/fork_echo_server.rhai against the tutorial's
# Python server (bench/fork_echo_server.py) and a C forking server (bench/c/), driven by one
# load generator (bench/c/echo_load.c) in one run:
#   (a) 50 persistent connections x 2000 round trips of 16 bytes  -> round trips/s
#   (b) 2000 connections of one round trip, at most 50 at once     -> connections/s
#   (c) the same churn with IDLE (default 500) idle connections held open, each with its
#       handler child alive in the server                          -> connections/s
# After each load it counts the server's zombie children. Each server runs ROUNDS times
# (default 3, interleaved) and the median is reported.
#
#   bench/echo.sh            ROUNDS=5 bench/echo.sh            SERVERS="c procscript" bench/echo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"c procscript python"}
OUT=${BENCH_OUT:-target/bench}
mkdir -p "$OUT"

[[ -n "${PROCSCRIPT:-}" ]] || cargo build --profile dist --quiet
gcc -O2 -Wall -o "$OUT/fork_echo_server" bench/c/fork_echo_server.c
gcc -O2 -Wall -pthread -o "$OUT/echo_load" bench/c/echo_load.c

server_cmd() {
    case $1 in
        c) echo "$OUT/fork_echo_server 0" ;;
        procscript) echo "${PROCSCRIPT:-target/dist/procscript} run scripts/fork_echo_server.rhai 0" ;;
        python) echo "python3 bench/fork_echo_server.py 0" ;;
    esac
}

SERVER_PID=
start_server() {
    local log=$OUT/server-$1.out
    : >"$log"
    $(server_cmd "$1") >"$log" 2>"$OUT/server-$1.err" &
    SERVER_PID=$!
    for _ in $(seq 500); do
        grep -q '^listening on ' "$log" && break
        sleep 0.01
    done
    PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
    [ -n "$PORT" ] || { echo "$1 server did not start" >&2; cat "$OUT/server-$1.err" >&2; exit 1; }
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

zombies() {
    local n=0 c
    for c in $(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null); do
        [ "$(awk '{print $3}' /proc/"$c"/stat 2>/dev/null)" = Z ] && n=$((n + 1))
    done
    echo $n
}

# Zombies once the load is over: give the handler children a moment to end first.
settled_zombies() {
    sleep 0.5
    zombies
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) CPUs; other work on the machine skews the ratios)"
IDLE=${IDLE:-500}
declare -A RT CPS IPS ZA ZB
for server in $SERVERS; do RT[$server]=""; CPS[$server]=""; IPS[$server]=""; ZA[$server]=0; ZB[$server]=0; done

for round in $(seq "$ROUNDS"); do
    for server in $SERVERS; do
        start_server "$server"
        read -r rate secs errs < <("$OUT/echo_load" "$PORT" persistent 50 2000 16)
        RT[$server]+="$rate "
        z=$(settled_zombies); ZA[$server]=$((ZA[$server] > z ? ZA[$server] : z))
        read -r cps secs2 errs2 < <("$OUT/echo_load" "$PORT" churn 2000 50)
        CPS[$server]+="$cps "
        z=$(settled_zombies); ZB[$server]=$((ZB[$server] > z ? ZB[$server] : z))
        read -r ips secs3 errs3 < <("$OUT/echo_load" "$PORT" churn 2000 50 "$IDLE")
        IPS[$server]+="$ips "
        z=$(settled_zombies); ZB[$server]=$((ZB[$server] > z ? ZB[$server] : z))
        printf 'round %d %-10s (a) %8s round trips/s in %5ss  (b) %6s conns/s in %5ss  (c) %6s conns/s in %5ss  errors %s/%s/%s\n' \
            "$round" "$server" "$rate" "$secs" "$cps" "$secs2" "$ips" "$secs3" "$errs" "$errs2" "$errs3"
        stop_server
    done
done

echo
printf '%-10s %14s %8s %10s %8s %14s %8s %12s %12s\n' server "round trips/s" "vs C" "conns/s" "vs C" "idle+conns/s" "vs C" "zombies (a)" "zombies (b)"
c_rt=$(echo "${RT[c]:-0}" | tr ' ' '\n' | grep . | median || echo 0)
c_cps=$(echo "${CPS[c]:-0}" | tr ' ' '\n' | grep . | median || echo 0)
c_ips=$(echo "${IPS[c]:-0}" | tr ' ' '\n' | grep . | median || echo 0)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
for server in $SERVERS; do
    rt=$(echo "${RT[$server]}" | tr ' ' '\n' | grep . | median)
    cps=$(echo "${CPS[$server]}" | tr ' ' '\n' | grep . | median)
    ips=$(echo "${IPS[$server]}" | tr ' ' '\n' | grep . | median)
    printf '%-10s %14s %8s %10s %8s %14s %8s %12s %12s\n' "$server" "$rt" "$(ratio "$rt" "$c_rt")" \
        "$cps" "$(ratio "$cps" "$c_cps")" "$ips" "$(ratio "$ips" "$c_ips")" "${ZA[$server]}" "${ZB[$server]}"
done
echo "(medians of $ROUNDS rounds; idle+conns/s: the churn with $IDLE idle connections held open;"
echo " zombies: the most seen 0.5 s after a load ended)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
