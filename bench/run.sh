#!/usr/bin/env bash
# The whole benchmark, in one run on this machine: procscript against a C fork() baseline
# and Python's multiprocessing. Not a test: run it by hand on a quiet machine.
#
#   bench/run.sh                 everything (about 10 minutes)
#   QUICK=1 bench/run.sh         fewer repetitions
#
# Parts (each can be run alone): spawn.sh (start+join, also with 1000 live children, and
# page faults per child), echo.sh (forking echo server, also with 500 idle connections),
# blocked.sh (CPU of 300 children blocked in Queue.get), ipc.sh (queues and locks), pool.sh
# (Pool.map, when present), remote_pool.sh (Pool.map over ssh to a throwaway loopback sshd),
# manager.sh (Manager proxies), extras.sh (startup, print throughput, memory per idle child).
# docs/performance.md explains the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --profile dist --quiet
export PROCSCRIPT="$PWD/target/dist/procscript"
if [[ -n "${QUICK:-}" ]]; then
    spawn_args=(500 100 3)
    export ROUNDS=1
else
    spawn_args=(1000 200 5)
fi

section() { printf '\n## %s\n\n' "$1"; }

echo "# procscript benchmark"
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r), $(python3 --version 2>&1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
section "Start+join of a no-op child (bench/spawn.sh)"
bash bench/spawn.sh "${spawn_args[@]}" 2> /dev/null
section "Forking echo server (bench/echo.sh)"
bash bench/echo.sh 2> /dev/null
section "CPU of children blocked in Queue.get (bench/blocked.sh)"
bash bench/blocked.sh 2> /dev/null
section "Queues and locks between two processes (bench/ipc.sh)"
bash bench/ipc.sh 2> /dev/null
if [[ -f bench/pool.sh ]]; then
    section "Pool.map of 10,000 trivial tasks (bench/pool.sh)"
    bash bench/pool.sh 2> /dev/null
fi
section "Pool.map over two ssh logins against a local Pool (bench/remote_pool.sh)"
bash bench/remote_pool.sh 2> /dev/null
section "Manager proxies (bench/manager.sh)"
bash bench/manager.sh 2> /dev/null
section "Startup, print throughput, memory per idle child (bench/extras.sh)"
bash bench/extras.sh 2> /dev/null
