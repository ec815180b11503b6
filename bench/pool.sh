#!/bin/sh
# Pool.map of many trivial tasks: procscript against Python's multiprocessing.Pool (fork),
# in one run on this machine. Not a test: numbers vary with the machine and its load.
#
#   bench/pool.sh [TASKS] [RUNS]
#
# Each figure is the best of RUNS runs (default 5), for both tools.
set -eu
cd "$(dirname "$0")/.."
TASKS=${1:-10000}
RUNS=${2:-5}
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

ours=$(best "$BIN run bench/pool_bench.rhai $TASKS")
theirs=$(best "$PYTHON bench/pool_bench.py $TASKS")

echo "pool benchmark: $TASKS trivial tasks (x * x); best of $RUNS"
echo "$($PYTHON --version 2>&1), $(nproc) CPUs"
printf '%-46s %14s %14s %8s\n' "figure" "procscript" "python" "ratio"
for name in pool_whole pool_map pool_apply_async; do
    o=$(echo "$ours" | awk -v n="$name" '$1 == n { print $2 }')
    p=$(echo "$theirs" | awk -v n="$name" '$1 == n { print $2 }')
    unit=$(echo "$ours" | awk -v n="$name" '$1 == n { print $3 }')
    case $name in
        pool_whole) label="Pool() + map + close + join ($unit)" ;;
        pool_map) label="map on a running pool ($unit)" ;;
        pool_apply_async) label="apply_async + get, $((TASKS / 10)) tasks ($unit)" ;;
    esac
    printf '%-46s %14s %14s %8s\n' "$label" "$o" "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN { printf "%.2fx", a / b }')"
done
