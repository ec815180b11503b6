#!/bin/sh
# Manager proxies: procscript against Python's multiprocessing.Manager(), side by side in one
# run on this machine. Not a test: numbers vary with the machine and its load.
#
#   bench/manager.sh [CALLS] [STARTS] [RUNS]
#
# Each figure is the best of RUNS runs (default 1), for both tools.
set -eu
cd "$(dirname "$0")/.."
CALLS=${1:-20000}
STARTS=${2:-20}
RUNS=${3:-1}
PYTHON=${PYTHON:-python3}

[ -n "${PROCSCRIPT:-}" ] || cargo build --profile dist --quiet
BIN=${PROCSCRIPT:-target/dist/procscript}

. bench/compare.sh

ours=$(best "$BIN run bench/manager_bench.rhai $CALLS $STARTS")
theirs=$(best "$PYTHON bench/manager_bench.py $CALLS $STARTS")

echo "manager benchmark: $CALLS calls per figure, $STARTS manager starts; best of $RUNS"
echo "$($PYTHON --version 2>&1), $(nproc) CPUs"
printf '%-46s %14s %14s %8s\n' "figure" "procscript" "python" "ratio"
row "d[k] = v round trip, 1 proc (%s)" dict_set
row "d[k] round trip, 1 proc (%s)" dict_get
row "d[k] = v, 4 procs at once, total (%s)" dict_set_4
row "Value.value = v round trip, 1 proc (%s)" value_set
row "Manager() start + shutdown (%s)" start_stop
