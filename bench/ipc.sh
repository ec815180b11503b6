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

[ -n "${PROCSCRIPT:-}" ] || cargo build --profile dist --quiet
BIN=${PROCSCRIPT:-target/dist/procscript}

. bench/compare.sh

ours=$(best "$BIN run bench/ipc_bench.rhai $SMALL $BIG $PAIRS")
theirs=$(best "$PYTHON bench/ipc_bench.py $SMALL $BIG $PAIRS")

echo "ipc benchmark: $SMALL small messages, $BIG x 1 MiB messages, 2 x $PAIRS lock pairs; best of $RUNS"
echo "$($PYTHON --version 2>&1), $(nproc) CPUs"
printf '%-46s %14s %14s %8s\n' "figure" "procscript" "python" "ratio"
row "Queue, small values (%s)" queue_small
row "Queue, 1 MiB values (%s)" queue_1mib
row "Lock acquire+release, 2 procs (%s)" lock_methods
row "with lock {}, 2 procs (%s)" lock_with
row "(reference) 2 x Event.is_set(), 1 proc (%s)" two_native_calls
