#!/usr/bin/env bash
# Start+join cost of a no-op child, per child, in one run on this machine:
# procscript, a C fork/_exit/waitpid loop, Python multiprocessing (fork) and bash `( : ) &`.
#
# usage: bench/spawn.sh [SEQ_N [CONC_N [REPS]]]     (defaults: 1000 200 5)
#        PROCSCRIPT=path/to/procscript bench/spawn.sh   (measure another build)
# Each figure is the best of REPS runs, in microseconds per child.
set -euo pipefail

SEQ_N=${1:-1000}
CONC_N=${2:-200}
REPS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench/out"
mkdir -p "$OUT"

echo "building..." >&2
gcc -O2 -o "$OUT/spawn" "$ROOT/bench/c/spawn.c"
# PROCSCRIPT=/path/to/procscript measures another build (then nothing is built with cargo).
if [[ -z "${PROCSCRIPT:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    PROCSCRIPT="$ROOT/target/release/procscript"
fi
PYTHON=$(command -v python3)

# bash reference: best of REPS, microseconds per child.
bash_seq() {
    local n=$1 reps=$2 best= t0 t1 us i r
    for ((r = 0; r < reps; r++)); do
        t0=$EPOCHREALTIME
        for ((i = 0; i < n; i++)); do ( : ) & wait $!; done
        t1=$EPOCHREALTIME
        us=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
        best=$(awk -v a="$best" -v b="$us" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}
bash_conc() {
    local n=$1 reps=$2 best= t0 t1 us i r
    for ((r = 0; r < reps; r++)); do
        t0=$EPOCHREALTIME
        for ((i = 0; i < n; i++)); do ( : ) & done
        wait
        t1=$EPOCHREALTIME
        us=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
        best=$(awk -v a="$best" -v b="$us" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}

echo "measuring (best of $REPS)..." >&2
ps_seq=$("$PROCSCRIPT" run "$ROOT/bench/spawn_seq.rhai" "$SEQ_N" "$REPS")
ps_conc=$("$PROCSCRIPT" run "$ROOT/bench/spawn_conc.rhai" "$CONC_N" "$REPS")
c_seq=$("$OUT/spawn" seq "$SEQ_N" "$REPS")
c_conc=$("$OUT/spawn" conc "$CONC_N" "$REPS")
py_seq=$("$PYTHON" "$ROOT/bench/spawn.py" seq "$SEQ_N" "$REPS")
py_conc=$("$PYTHON" "$ROOT/bench/spawn.py" conc "$CONC_N" "$REPS")
sh_seq=$(bash_seq "$SEQ_N" "$REPS")
sh_conc=$(bash_conc "$CONC_N" "$REPS")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "machine: $(nproc) CPUs, $cpu, Linux $(uname -r); $("$PYTHON" --version 2>&1); load average $(cut -d" " -f1-3 /proc/loadavg)"
echo "procscript: $PROCSCRIPT"
echo "start+join of a no-op child, microseconds per child (best of $REPS)"
awk -v ps1="$ps_seq" -v ps2="$ps_conc" -v c1="$c_seq" -v c2="$c_conc" \
    -v py1="$py_seq" -v py2="$py_conc" -v sh1="$sh_seq" -v sh2="$sh_conc" \
    -v n1="$SEQ_N" -v n2="$CONC_N" 'BEGIN {
    printf "| %-34s | %15s | %15s |\n", "", "sequential " n1, "concurrent " n2
    printf "|%s|%s|%s|\n", "------------------------------------", "----------------:", "----------------:"
    printf "| %-34s | %15.1f | %15.1f |\n", "procscript (Process + start/join)", ps1, ps2
    printf "| %-34s | %15.1f | %15.1f |\n", "C fork/_exit/waitpid", c1, c2
    printf "| %-34s | %15.1f | %15.1f |\n", "Python multiprocessing (fork)", py1, py2
    printf "| %-34s | %15.1f | %15.1f |\n", "bash ( : ) & wait (reference)", sh1, sh2
    printf "| %-34s | %14.2fx | %14.2fx |\n", "procscript / C (target <= 1.3)", ps1 / c1, ps2 / c2
    printf "| %-34s | %14.1fx | %14.1fx |\n", "Python / procscript (target >= 10)", py1 / ps1, py2 / ps2
}'
