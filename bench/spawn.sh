#!/usr/bin/env bash
# Start+join cost of a no-op child, per child, in one run on this machine:
# procscript, a C fork/_exit/waitpid loop, Python multiprocessing (fork) and bash `( : ) &`;
# then the same sequential loop while LIVE other children stay blocked (procscript, C and
# Python, each against its own figure with none), and page faults per child.
#
# usage: bench/spawn.sh [SEQ_N [CONC_N [REPS]]]     (defaults: 1000 200 5)
#        LIVE=1000 LIVE_N=500 bench/spawn.sh          (the live-children part; LIVE=0 skips it)
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
    (cd "$ROOT" && cargo build --profile dist --quiet)
    PROCSCRIPT="$ROOT/target/dist/procscript"
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

# CPU time per child (parent and children, all REPS runs, startup included) from
# `perf stat -e task-clock`, when perf works here: steadier than wall time on a busy machine.
if perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then HAVE_PERF=1; else HAVE_PERF=; fi

# measure N CMD...: prints "WALL CPU FAULTS" (CPU and page faults per child, "-" without
# perf; faults include the program's own start-up, spread over N * REPS children).
measure() {
    local n=$1 wall cpu faults
    shift
    if [[ -n $HAVE_PERF ]]; then
        wall=$(perf stat -x, -e task-clock,page-faults -o "$OUT/perf.txt" "$@")
        cpu=$(awk -F, -v n="$n" -v r="$REPS" '$3 == "task-clock" { printf "%.1f", $1 * 1000 / (n * r) }' "$OUT/perf.txt")
        faults=$(awk -F, -v n="$n" -v r="$REPS" '$3 == "page-faults" { printf "%.1f", $1 / (n * r) }' "$OUT/perf.txt")
    else
        wall=$("$@")
        cpu=-
        faults=-
    fi
    echo "$wall ${cpu:--} ${faults:--}"
}
export -f bash_seq bash_conc

echo "measuring (best of $REPS)..." >&2
read -r ps_seq ps_seq_cpu ps_faults < <(measure "$SEQ_N" "$PROCSCRIPT" run "$ROOT/bench/spawn_seq.rhai" "$SEQ_N" "$REPS")
read -r ps_conc ps_conc_cpu _ < <(measure "$CONC_N" "$PROCSCRIPT" run "$ROOT/bench/spawn_conc.rhai" "$CONC_N" "$REPS")
read -r c_seq c_seq_cpu c_faults < <(measure "$SEQ_N" "$OUT/spawn" seq "$SEQ_N" "$REPS")
read -r c_conc c_conc_cpu _ < <(measure "$CONC_N" "$OUT/spawn" conc "$CONC_N" "$REPS")
read -r py_seq py_seq_cpu py_faults < <(measure "$SEQ_N" "$PYTHON" "$ROOT/bench/spawn.py" seq "$SEQ_N" "$REPS")
read -r py_conc py_conc_cpu _ < <(measure "$CONC_N" "$PYTHON" "$ROOT/bench/spawn.py" conc "$CONC_N" "$REPS")
read -r sh_seq sh_seq_cpu _ < <(measure "$SEQ_N" bash -c 'bash_seq "$@"' _ "$SEQ_N" "$REPS")
read -r sh_conc sh_conc_cpu _ < <(measure "$CONC_N" bash -c 'bash_conc "$@"' _ "$CONC_N" "$REPS")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "machine: $(nproc) CPUs, $cpu, Linux $(uname -r); $("$PYTHON" --version 2>&1); load average $(cut -d" " -f1-3 /proc/loadavg)"
echo "procscript: $PROCSCRIPT"
echo "start+join of a no-op child, microseconds per child: wall time (best of $REPS), and CPU time (mean, parent + child)"
awk -v ps1="$ps_seq" -v ps2="$ps_conc" -v c1="$c_seq" -v c2="$c_conc" \
    -v py1="$py_seq" -v py2="$py_conc" -v sh1="$sh_seq" -v sh2="$sh_conc" \
    -v ps1c="$ps_seq_cpu" -v ps2c="$ps_conc_cpu" -v c1c="$c_seq_cpu" -v c2c="$c_conc_cpu" \
    -v py1c="$py_seq_cpu" -v py2c="$py_conc_cpu" -v sh1c="$sh_seq_cpu" -v sh2c="$sh_conc_cpu" \
    -v n1="$SEQ_N" -v n2="$CONC_N" '
function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
function row(name, a, b, ac, bc) { printf "| %-34s | %15.1f | %15.1f | %10s | %10s |\n", name, a, b, ac, bc }
function rrow(name, a, b, ac, bc) { printf "| %-34s | %15s | %15s | %10s | %10s |\n", name, ratio(a[1], a[2]), ratio(b[1], b[2]), ratio(ac[1], ac[2]), ratio(bc[1], bc[2]) }
BEGIN {
    printf "| %-34s | %15s | %15s | %10s | %10s |\n", "", "sequential " n1, "concurrent " n2, "seq CPU", "conc CPU"
    printf "|%s|%s|%s|%s|%s|\n", "------------------------------------", "----------------:", "----------------:", "-----------:", "-----------:"
    row("procscript (Process + start/join)", ps1, ps2, ps1c, ps2c)
    row("C fork/_exit/waitpid", c1, c2, c1c, c2c)
    row("Python multiprocessing (fork)", py1, py2, py1c, py2c)
    row("bash ( : ) & wait (reference)", sh1, sh2, sh1c, sh2c)
    split(ps1 " " c1, a1); split(ps2 " " c2, a2); split(ps1c " " c1c, a3); split(ps2c " " c2c, a4)
    rrow("procscript / C (target <= 1.3)", a1, a2, a3, a4)
    split(py1 " " ps1, a1); split(py2 " " ps2, a2); split(py1c " " ps1c, a3); split(py2c " " ps2c, a4)
    rrow("Python / procscript (target >= 10)", a1, a2, a3, a4)
}'

echo
echo "page faults per child (sequential loop; perf stat, start-up spread over the $SEQ_N x $REPS children):"
echo "procscript $ps_faults, C $c_faults, Python $py_faults"

# Start+join while LIVE other children stay blocked: the cost per child must not grow with
# the number of live children (issue 9: <= 1.2x the figure with none).
LIVE=${LIVE:-1000}
LIVE_N=${LIVE_N:-500}
if [[ $LIVE -gt 0 ]]; then
    echo "measuring with $LIVE live children..." >&2
    read -r ps_l0 _ < <(measure "$LIVE_N" "$PROCSCRIPT" run "$ROOT/bench/spawn_live.rhai" "$LIVE_N" "$REPS" 0)
    read -r ps_l1 _ < <(measure "$LIVE_N" "$PROCSCRIPT" run "$ROOT/bench/spawn_live.rhai" "$LIVE_N" "$REPS" "$LIVE")
    read -r c_l0 _ < <(measure "$LIVE_N" "$OUT/spawn" seq "$LIVE_N" "$REPS" 0)
    read -r c_l1 _ < <(measure "$LIVE_N" "$OUT/spawn" seq "$LIVE_N" "$REPS" "$LIVE")
    read -r py_l0 _ < <(measure "$LIVE_N" "$PYTHON" "$ROOT/bench/spawn.py" seq "$LIVE_N" "$REPS" 0)
    read -r py_l1 _ < <(measure "$LIVE_N" "$PYTHON" "$ROOT/bench/spawn.py" seq "$LIVE_N" "$REPS" "$LIVE")
    echo
    echo "start+join of a no-op child with other children alive, microseconds per child (best of $REPS, $LIVE_N children; load average $(cut -d" " -f1-3 /proc/loadavg))"
    awk -v a0="$ps_l0" -v a1="$ps_l1" -v c0="$c_l0" -v c1="$c_l1" -v p0="$py_l0" -v p1="$py_l1" -v live="$LIVE" '
    function row(name, x, y) { printf "| %-34s | %10.1f | %14.1f | %8.2fx |\n", name, x, y, y / x }
    BEGIN {
        printf "| %-34s | %10s | %14s | %9s |\n", "", "0 live", live " live", "ratio"
        printf "|%s|%s|%s|%s|\n", "------------------------------------", "-----------:", "---------------:", "----------:"
        row("procscript (target <= 1.2x)", a0, a1)
        row("C fork/_exit/waitpid", c0, c1)
        row("Python multiprocessing (fork)", p0, p1)
    }'
fi
