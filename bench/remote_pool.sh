#!/usr/bin/env bash
# Pool.map over two remote "hosts" (two ssh logins to a throwaway sshd on 127.0.0.1)
# against a local Pool of two forked workers, in one run on this machine. Not a test: the
# figures move with the machine's load. Needs /usr/sbin/sshd, ssh and ssh-keygen.
#
#   bench/remote_pool.sh [TASKS] [RUNS]
#
# Each figure is the best of RUNS runs (default 5): the highest rate, the lowest time.
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${1:-10000}
RUNS=${2:-5}

[[ -n "${PROCSCRIPT:-}" ]] || cargo build --profile dist --quiet
BIN=$(realpath "${PROCSCRIPT:-target/dist/procscript}")

if [[ ! -x /usr/sbin/sshd ]]; then
    echo "remote pool benchmark skipped: no /usr/sbin/sshd (apt-get install -y openssh-server)"
    exit 0
fi

# The throwaway server: its own keys and configuration, 127.0.0.1 only, stopped by pid.
dir=$(mktemp -d)
sshd_pid=
cleanup() {
    [[ -n "$sshd_pid" ]] && kill "$sshd_pid" 2> /dev/null && wait "$sshd_pid" 2> /dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N "" -f "$dir/host" < /dev/null
ssh-keygen -q -t ed25519 -N "" -f "$dir/user" < /dev/null
cp "$dir/user.pub" "$dir/authorized_keys"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=$(id -un)
cat > "$dir/sshd_config" << CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
AllowUsers $user
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
UseDNS no
MaxStartups 200
CONFIG
[[ "$(id -u)" != 0 || -d /run/sshd ]] || mkdir -p /run/sshd
/usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do
    grep -q "Server listening" "$dir/sshd.log" 2> /dev/null && break
    sleep 0.1
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
results=$(for _ in $(seq "$RUNS"); do
    "$BIN" run bench/remote_pool_bench.rhai "$user@127.0.0.1" "$port" "$dir/user" "$BIN" "$TASKS"
done | awk '{ rate = $3 ~ /\/s$/
              if (!($1 in best) || (rate ? $2 > best[$1] : $2 < best[$1])) { best[$1] = $2; unit[$1] = $3 } }
            END { for (k in best) printf "%s %.2f %s\n", k, best[k], unit[k] }')
get() { echo "$results" | awk -v n="$1" '$1 == n { print $2 }'; }

echo "remote pool benchmark: 2 workers here vs 2 workers over 2 ssh logins to 127.0.0.1; $TASKS trivial tasks (x * x); best of $RUNS"
echo "$(nproc) CPUs, load average before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg); $(ssh -V 2>&1)"
printf '%-44s %14s %14s %16s\n' "figure" "local" "remote" "remote overhead"
row_rate() {
    local l r
    l=$(get "$2_local") r=$(get "$2_remote")
    printf '%-44s %14.0f %14.0f %13.2f us\n' "$1 (tasks/s)" "$l" "$r" \
        "$(awk -v l="$l" -v r="$r" 'BEGIN { print 1e6 / r - 1e6 / l }')"
}
row_time() {
    local l r
    l=$(get "$2_local") r=$(get "$2_remote")
    printf '%-44s %14.1f %14.1f %13.1f %s\n' "$1 ($3)" "$l" "$r" \
        "$(awk -v l="$l" -v r="$r" 'BEGIN { print r - l }')" "$3"
}
row_time "Pool() to a first result from each worker" start ms
row_rate "map, default chunks (per task)" map
row_rate "map, chunksize 1, $((TASKS / 10)) tasks (per task)" map1
row_time "apply, one at a time (per call)" apply us
