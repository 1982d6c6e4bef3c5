#!/usr/bin/env bash
# Throughput of `seashell cp` against `scp -c aes256-gcm@openssh.com` on this machine, in the
# same run: one file (default 1 GiB of random bytes) over 127.0.0.1, both directions, RUNS
# interleaved rounds (default 3), median MB/s (10^6 bytes/s, connection set-up included).
#
#   benches/cp-vs-scp.sh [SIZE_MIB] [RUNS]
#
# Starts a private `seashell serve` (with the published test keys of tests/fixtures, bound
# to 127.0.0.1 only) and, if /usr/sbin/sshd exists, a private sshd on a free port with
# throwaway keys; both are stopped and every file removed at the end. Respects
# CARGO_TARGET_DIR.
set -euo pipefail

size_mib=${1:-1024}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin=${CARGO_TARGET_DIR:-$root/target}/release/seashell

# --- seashell server -------------------------------------------------------------------
install -m 600 "$root/tests/fixtures/host_rsa" "$work/host_rsa"
install -m 600 "$root/tests/fixtures/client_rsa" "$work/client_rsa"
cp "$root/tests/fixtures/client_rsa.pub" "$work/authorized_keys"
mkdir "$work/home" "$work/local"
HOME="$work/home" "$bin" serve --listen 127.0.0.1:0 --host-key "$work/host_rsa" \
    --authorized-keys "$work/authorized_keys" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.log" && break
    sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/serve.log")
[ -n "$port" ] || { cat "$work/serve.log"; exit 1; }
sea=("$bin" cp -P "$port" -i "$work/client_rsa" --known-hosts "$work/known_hosts" --accept-new)

# --- private sshd ----------------------------------------------------------------------
have_scp=no
if [ -x /usr/sbin/sshd ] && command -v scp >/dev/null; then
    ssh_port=$(( 20000 + RANDOM % 20000 ))
    ssh-keygen -q -t ed25519 -N "" -f "$work/ssh_host_key"
    ssh-keygen -q -t ed25519 -N "" -f "$work/ssh_client_key"
    cp "$work/ssh_client_key.pub" "$work/ssh_authorized_keys"
    chmod 600 "$work/ssh_authorized_keys"
    cat >"$work/sshd_config" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $work/ssh_host_key
AuthorizedKeysFile $work/ssh_authorized_keys
PidFile $work/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
    mkdir -p /run/sshd 2>/dev/null || true
    /usr/sbin/sshd -D -f "$work/sshd_config" -E "$work/sshd.log" &
    pids+=($!)
    sleep 1
    scp_cmd=(scp -q -P "$ssh_port" -i "$work/ssh_client_key" -c aes256-gcm@openssh.com
             -o UserKnownHostsFile="$work/ssh_known_hosts" -o StrictHostKeyChecking=accept-new
             -o BatchMode=yes)
    user=$(id -un)
    if "${scp_cmd[@]}" "$work/authorized_keys" "$user@127.0.0.1:$work/home/probe"; then
        have_scp=yes
    else
        echo "scp did not work (see $work/sshd.log); measuring seashell alone" >&2
    fi
fi

# --- the file --------------------------------------------------------------------------
head -c $(( size_mib * 1024 * 1024 )) /dev/urandom >"$work/local/src"
bytes=$(( size_mib * 1024 * 1024 ))

timed() { # prints seconds taken by "$@"
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
mbps() { echo "scale=1; $bytes / $1 / 1000000" | bc -l; }

declare -A results
for run in $(seq "$runs"); do
    rm -f "$work/home/dst" "$work/local/back"
    results[seashell_up]+="$(mbps "$(timed "${sea[@]}" "$work/local/src" 127.0.0.1:dst)") "
    results[seashell_down]+="$(mbps "$(timed "${sea[@]}" 127.0.0.1:dst "$work/local/back")") "
    cmp -s "$work/local/src" "$work/local/back" || { echo "seashell copy differs" >&2; exit 1; }
    if [ "$have_scp" = yes ]; then
        rm -f "$work/home/dst" "$work/local/back"
        results[scp_up]+="$(mbps "$(timed "${scp_cmd[@]}" "$work/local/src" "$user@127.0.0.1:$work/home/dst")") "
        results[scp_down]+="$(mbps "$(timed "${scp_cmd[@]}" "$user@127.0.0.1:$work/home/dst" "$work/local/back")") "
        cmp -s "$work/local/src" "$work/local/back" || { echo "scp copy differs" >&2; exit 1; }
    fi
    echo "round $run done" >&2
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "$size_mib MiB over 127.0.0.1, $runs rounds, $(nproc) CPUs; MB/s per round and median"
for key in seashell_up seashell_down scp_up scp_down; do
    [ -n "${results[$key]:-}" ] || continue
    printf '%-14s %-40s median %s\n' "$key" "${results[$key]}" "$(echo "${results[$key]}" | median)"
done
if [ "$have_scp" = yes ]; then
    for dir in up down; do
        s=$(echo "${results[seashell_$dir]}" | median)
        o=$(echo "${results[scp_$dir]}" | median)
        printf 'seashell/scp %-5s %.2fx\n' "$dir" "$(echo "$s / $o" | bc -l)"
    done
fi
