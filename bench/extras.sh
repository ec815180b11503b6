#!/usr/bin/env bash
# Startup time, print throughput and memory per idle child, procscript against C and Python,
# in one run on this machine (not a test).
#
# usage: bench/extras.sh            PROCSCRIPT=path bench/extras.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
if [[ -z "${PROCSCRIPT:-}" ]]; then
    (cd "$ROOT" && cargo build --profile dist --quiet)
    PROCSCRIPT="$ROOT/target/dist/procscript"
fi
gcc -O2 -o "$OUT/idle_children" "$ROOT/bench/c/idle_children.c"
: > "$OUT/empty.rhai"

# Best wall time of RUNS runs of a command, in milliseconds.
best_ms() {
    local runs=$1 best= t0 t1 ms r
    shift
    for ((r = 0; r < runs; r++)); do
        t0=$EPOCHREALTIME
        "$@" > /dev/null
        t1=$EPOCHREALTIME
        ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')
        best=$(awk -v a="$best" -v b="$ms" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}

# Lines per second printed through a pipe: best of 3.
lines_per_s() {
    local n=$1 best=0 t0 t1 rate r
    shift
    for r in 1 2 3; do
        t0=$EPOCHREALTIME
        "$@" | cat > /dev/null
        t1=$EPOCHREALTIME
        rate=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.0f", n / (b - a) }')
        best=$(awk -v a="$best" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$best"
}

# Mean proportional set size (KiB) of the idle children a command starts.
idle_pss_kib() {
    local n=$1 total=0 count=0 pid pss
    shift
    coproc IDLE { "$@"; }
    while read -r line <&"${IDLE[0]}"; do
        [[ $line == ready ]] && break
        pss=$(awk '/^Pss:/ { print $2 }' "/proc/$line/smaps_rollup" 2>/dev/null || echo "")
        if [[ -n $pss ]]; then total=$((total + pss)); count=$((count + 1)); fi
    done
    echo >&"${IDLE[1]}"
    wait "$IDLE_PID" 2> /dev/null || true
    awk -v t="$total" -v c="$count" 'BEGIN { printf "%.0f", (c ? t / c : 0) }'
}

N_LINES=200000
N_IDLE=20
ps_start=$(best_ms 30 "$PROCSCRIPT" run "$OUT/empty.rhai")
py_start=$(best_ms 30 python3 -c pass)
ps_print=$(lines_per_s "$N_LINES" "$PROCSCRIPT" run "$ROOT/bench/print_lines.rhai" "$N_LINES")
py_print=$(lines_per_s "$N_LINES" python3 -c "for i in range($N_LINES): print(f'line {i} of the print throughput benchmark')")
pyu_print=$(lines_per_s "$N_LINES" python3 -u -c "for i in range($N_LINES): print(f'line {i} of the print throughput benchmark')")
ps_pss=$(idle_pss_kib "$N_IDLE" "$PROCSCRIPT" run "$ROOT/bench/idle_children.rhai" "$N_IDLE")
py_pss=$(idle_pss_kib "$N_IDLE" python3 "$ROOT/bench/idle_children.py" "$N_IDLE")
c_pss=$(idle_pss_kib "$N_IDLE" "$OUT/idle_children" "$N_IDLE")

echo "| measure | procscript | Python | C | target |"
echo "|---|--:|--:|--:|---|"
echo "| startup of an empty script, ms (best of 30) | $ps_start | $py_start (\`python3 -c pass\`) | - | <= 2 ms |"
echo "| print throughput through a pipe, lines/s (best of 3) | $ps_print | $py_print (buffered), $pyu_print (\`-u\`) | - | one write per line, lines whole |"
echo "| PSS per idle child, KiB (mean of $N_IDLE) | $ps_pss | $py_pss | $c_pss | <= 1024 KiB |"
