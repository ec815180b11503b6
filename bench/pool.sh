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

[ -n "${PROCSCRIPT:-}" ] || cargo build --profile dist --quiet
BIN=${PROCSCRIPT:-target/dist/procscript}

. bench/compare.sh

ours=$(best "$BIN run bench/pool_bench.rhai $TASKS")
theirs=$(best "$PYTHON bench/pool_bench.py $TASKS")

echo "pool benchmark: $TASKS trivial tasks (x * x); best of $RUNS"
echo "$($PYTHON --version 2>&1), $(nproc) CPUs"
printf '%-46s %14s %14s %8s\n' "figure" "procscript" "python" "ratio"
row "Pool() + map + close + join (%s)" pool_whole
row "map on a running pool (%s)" pool_map
row "apply_async + get, $((TASKS / 10)) tasks (%s)" pool_apply_async
