#!/bin/sh
# Messages and locks between processes: procscript against Python's multiprocessing, in one
# run on this machine. Not a test: numbers vary with the machine and its load.
#
#   bench/ipc.sh [SMALL_MESSAGES] [MIB_MESSAGES] [LOCK_PAIRS_PER_PROCESS] [RUNS]
#
# Each figure is the best of RUNS runs (default 3), for both tools.
set -eu
cd "$(dirname "$0")/.."
SMALL=${1:-200000}
BIG=${2:-200}
PAIRS=${3:-200000}
RUNS=${4:-3}
PYTHON=${PYTHON:-python3}

[[ -n "${PROCSCRIPT:-}" ]] || cargo build --profile dist --quiet
BIN=${PROCSCRIPT:-target/dist/procscript}

best() { # $1 = command producing "name value unit" lines; prints the best value per name
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        sh -c "$1"
        i=$((i + 1))
    done | awk '{ if (!($1 in best) || $2 > best[$1]) { best[$1] = $2; unit[$1] = $3 } }
                END { for (k in best) printf "%s %.0f %s\n", k, best[k], unit[k] }'
}

ours=$(best "$BIN run bench/ipc_bench.rhai $SMALL $BIG $PAIRS")
theirs=$(best "$PYTHON bench/ipc_bench.py $SMALL $BIG $PAIRS")

echo "ipc benchmark: $SMALL small messages, $BIG x 1 MiB messages, 2 x $PAIRS lock pairs; best of $RUNS"
echo "$($PYTHON --version 2>&1), $(nproc) CPUs"
printf '%-46s %14s %14s %8s\n' "figure" "procscript" "python" "ratio"
for name in queue_small queue_1mib lock_methods lock_with two_native_calls; do
    o=$(echo "$ours" | awk -v n="$name" '$1 == n { print $2 }')
    p=$(echo "$theirs" | awk -v n="$name" '$1 == n { print $2 }')
    unit=$(echo "$ours" | awk -v n="$name" '$1 == n { print $3 }')
    case $name in
        queue_small) label="Queue, small values ($unit)" ;;
        queue_1mib) label="Queue, 1 MiB values ($unit)" ;;
        lock_methods) label="Lock acquire+release, 2 procs ($unit)" ;;
        lock_with) label="with lock {}, 2 procs ($unit)" ;;
        two_native_calls) label="(reference) 2 x Event.is_set(), 1 proc ($unit)" ;;
    esac
    printf '%-46s %14s %14s %8s\n' "$label" "$o" "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN { printf "%.2fx", a / b }')"
done
