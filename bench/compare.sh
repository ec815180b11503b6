# Shared by bench/ipc.sh and bench/pool.sh (sourced, POSIX sh): run each side RUNS times
# and print one row per figure, procscript against Python.

# best COMMAND: runs COMMAND (which prints "name value unit" lines) RUNS times and prints
# the best (highest) value of each name.
best() {
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        sh -c "$1"
        i=$((i + 1))
    done | awk '{ if (!($1 in best) || $2 > best[$1]) { best[$1] = $2; unit[$1] = $3 } }
                END { for (k in best) printf "%s %.0f %s\n", k, best[k], unit[k] }'
}

# row LABEL NAME: one line of the table for figure NAME from $ours and $theirs; "%s" in
# LABEL becomes the figure's unit.
row() {
    o=$(echo "$ours" | awk -v n="$2" '$1 == n { print $2 }')
    p=$(echo "$theirs" | awk -v n="$2" '$1 == n { print $2 }')
    unit=$(echo "$ours" | awk -v n="$2" '$1 == n { print $3 }')
    # shellcheck disable=SC2059 # the label is the format on purpose
    label=$(printf "$1" "$unit")
    printf '%-46s %14s %14s %8s\n' "$label" "$o" "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN { printf "%.2fx", a / b }')"
}
