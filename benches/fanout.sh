#!/usr/bin/env bash
# fanout.sh: one command on many hosts: seashell exec -H vs pssh vs an `ssh … &` loop (issue 18).
#
# Usage: bash benches/fanout.sh [options]
#   --hosts N       servers of each kind, one per port on 127.0.0.1 (default 50)
#   --parallel N    sessions at once, for pssh and seashell (default 32)
#   --runs N        timed runs of each tool, after one untimed warm-up (default 7)
#   --binary PATH   use this seashell binary instead of building one
#   -h, --help      this text
#
# What it does: builds seashell (cargo build --release --locked; honours CARGO_TARGET_DIR),
# installs openssh-server and pssh with apt-get if they are missing (the system sshd service
# is never started), and, in a temporary directory removed on exit, makes RSA-3072 keys and
# starts N private sshd processes and N `seashell serve` processes, each on its own port of
# 127.0.0.1 (one host key per kind, shared; a neutral empty HOME so that no shell start-up file
# is timed). Then it runs `true` on all N hosts with each tool, alternately (pssh, loop,
# seashell, pssh, …), and prints the medians as a Markdown table (progress on stderr):
#
#   pssh      parallel-ssh -h HOSTS -p PARALLEL -t 0 -x "SSH OPTIONS" true
#   ssh loop  one `ssh … -p PORT user@127.0.0.1 true &` per host, all at once, then `wait`
#             for each (what a shell loop does; bash's `wait -n` cannot throttle it reliably)
#   seashell  seashell exec -H 127.0.0.1:P1,127.0.0.1:P2,… --parallel PARALLEL true
#
# Columns: wall time; then, sampled every 5 ms over the tool's whole process tree (the tool and
# all its descendants): the largest single process's peak resident set (VmHWM in
# /proc/PID/status; getrusage's ru_maxrss would count the sampler's own pages, which a forked
# child holds until it execs), the peak of the tree's summed RSS and of its summed PSS (from
# /proc/PID/smaps_rollup; PSS divides shared pages among the processes sharing them: the memory
# the tree really costs), and the peak process count. A process that lives less than 5 ms may
# be missed: ssh's and pssh's processes live hundreds of milliseconds. ssh runs with the options of
# compare-openssh.sh (aes256-gcm, rsa-sha2-256 host keys, BatchMode, no agent). The machine
# is shared: the load average is printed at the start and at the end. Needs bash >= 5, python3
# (the sampler), awk, sort.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

HOSTS=50
PARALLEL=32
RUNS=7
BINARY=

while (($#)); do
    case $1 in
        --hosts) HOSTS=$2; shift ;;
        --parallel) PARALLEL=$2; shift ;;
        --runs) RUNS=$2; shift ;;
        --binary) BINARY=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done
for n in "$HOSTS" "$PARALLEL" "$RUNS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $n" >&2; exit 1; }
done
if ((BASH_VERSINFO[0] < 5)); then
    echo "bash >= 5 needed" >&2
    exit 1
fi


# ---------------------------------------------------------------- build and install

build_seashell "$ROOT" "$BINARY"
SSHD=/usr/sbin/sshd
PACKAGES=()
[[ -x $SSHD ]] || PACKAGES+=(openssh-server)
command -v parallel-ssh >/dev/null || PACKAGES+=(pssh)
install_packages "${PACKAGES[@]}"
command -v ssh >/dev/null || { echo "ssh (openssh-client) is missing" >&2; exit 1; }

# ---------------------------------------------------------------- temp dir and cleanup

TMP=$(mktemp -d "${TMPDIR:-/tmp}/seashell-fanout.XXXXXX")
SERVER_PIDS=()

cleanup() {
    set +e
    ((${#SERVER_PIDS[@]} == 0)) || kill "${SERVER_PIDS[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NEUTRAL_HOME=$TMP/home
mkdir -m 700 "$NEUTRAL_HOME" "$TMP/ssh" "$TMP/sea" "$TMP/sea-home"
USER_NAME=$(id -un)
SERVER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log "== load average at start: $(load_avg)"
export SEASHELL_HOME=$TMP/sea-home
make_keys "$TMP"

# ---------------------------------------------------------------- N sshd

((EUID != 0)) || mkdir -p /run/sshd
SSH_PORTS=()
log "== $HOSTS sshd on 127.0.0.1"
for i in $(seq "$HOSTS"); do
    free_port
    port=$PORT
    sshd_config "$port" "$TMP/ssh/host_rsa" "$TMP/ssh/authorized_keys" "$TMP/ssh/sshd-$i.pid" \
        "$NEUTRAL_HOME" >"$TMP/ssh/sshd-$i.config"
    "$SSHD" -f "$TMP/ssh/sshd-$i.config" -D -e 2>"$TMP/ssh/sshd-$i.log" &
    SERVER_PIDS+=($!)
    SSH_PORTS+=("$port")
done
wait_ports 10 "$TMP/ssh/sshd" "${SSH_PORTS[@]}"

ssh_options "$TMP/ssh/id_rsa" "$TMP/ssh/known_hosts"
: >"$TMP/ssh/hosts"
for port in "${SSH_PORTS[@]}"; do
    echo "$USER_NAME@127.0.0.1:$port" >>"$TMP/ssh/hosts"
done

# ---------------------------------------------------------------- N seashell serve

printf 'max_unauthenticated = 64\n' >"$TMP/sea/seashell.toml"
log "== $HOSTS seashell serve on 127.0.0.1"
for i in $(seq "$HOSTS"); do
    free_port
    port=$PORT
    env -i PATH="$SERVER_PATH" HOME="$NEUTRAL_HOME" USER="$USER_NAME" LOGNAME="$USER_NAME" \
        SHELL=/bin/sh SEASHELL_HOME="$TMP/sea" \
        "$SEA" serve --config "$TMP/sea/seashell.toml" --listen "127.0.0.1:$port" \
        --host-key "$TMP/sea/host_rsa" --authorized-keys "$TMP/sea/authorized_keys" \
        --audit-log "$TMP/sea/audit-$i.log" 2>"$TMP/sea/serve-$i.log" &
    SERVER_PIDS+=($!)
    SEA_HOSTS="${SEA_HOSTS:+$SEA_HOSTS,}127.0.0.1:$port"
    SEA_PORTS+=("$port")
done
wait_ports 30 "$TMP/sea/serve" "${SEA_PORTS[@]}"
SEA_CMD=("$SEA" exec -q -i "$TMP/sea/id_rsa" --known-hosts "$TMP/sea/known_hosts"
    -H "$SEA_HOSTS" --parallel "$PARALLEL")

# ---------------------------------------------------------------- the three tools

PSSH_CMD=(parallel-ssh -h "$TMP/ssh/hosts" -p "$PARALLEL" -t 0 -x "${SSH_OPTS[*]}" true)
# The loop, as a shell script would run it: one ssh a host, all at once, then a wait for each.
{
    declare -p SSH_OPTS SSH_PORTS USER_NAME
    cat <<'SH'
rc=0 pids=()
for port in "${SSH_PORTS[@]}"; do
    ssh "${SSH_OPTS[@]}" -p "$port" "$USER_NAME@127.0.0.1" true &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
exit "$rc"
SH
} >"$TMP/loop.sh"
LOOP_CMD=(bash "$TMP/loop.sh")
SEA_CMD+=(true)

# The sampler: runs its arguments (their stdout discarded), polls their process tree, prints
# "wall_us largest_hwm_kib peak_rss_kib peak_pss_kib peak_procs rc".
cat >"$TMP/sample.py" <<'PY'
import os, subprocess, sys, time

def children():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids

def tree(root):
    kids, out, todo = children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out

def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0

def rollup(pid):
    return (field(f"/proc/{pid}/smaps_rollup", "Rss:"),
            field(f"/proc/{pid}/smaps_rollup", "Pss:"),
            field(f"/proc/{pid}/status", "VmHWM:"))

start = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
peak_rss = peak_pss = peak_procs = largest = 0
while True:
    pid, status = os.waitpid(proc.pid, os.WNOHANG)
    if pid:
        break
    sums = [rollup(p) for p in tree(proc.pid)]
    peak_rss = max(peak_rss, sum(s[0] for s in sums))
    peak_pss = max(peak_pss, sum(s[1] for s in sums))
    peak_procs = max(peak_procs, len([s for s in sums if s[0]]))
    largest = max([largest] + [s[2] for s in sums])
    time.sleep(0.005)
wall = time.monotonic() - start
rc = os.waitstatus_to_exitcode(status)
print(int(wall * 1e6), largest, peak_rss, peak_pss, peak_procs, rc)
PY

measure() { # pssh | loop | seashell -> the sampler's line
    case $1 in
        pssh) python3 "$TMP/sample.py" "${PSSH_CMD[@]}" ;;
        loop) python3 "$TMP/sample.py" "${LOOP_CMD[@]}" ;;
        seashell) python3 "$TMP/sample.py" "${SEA_CMD[@]}" ;;
    esac
}

# First contact: pin every host key (untimed), and check that every tool works.
log "== warm-up (pins the host keys)"
for port in "${SSH_PORTS[@]}"; do
    ssh "${SSH_OPTS[@]}" -p "$port" "$USER_NAME@127.0.0.1" true
done
"$SEA" exec -q -i "$TMP/sea/id_rsa" --known-hosts "$TMP/sea/known_hosts" --accept-new \
    -H "$SEA_HOSTS" --parallel "$PARALLEL" true >/dev/null
for tool in pssh loop seashell; do
    read -r _ _ _ _ _ rc < <(measure "$tool")
    ((rc == 0)) || { echo "$tool failed (exit $rc) in the warm-up" >&2; exit 1; }
done

declare -A SAMPLES=()
for run in $(seq "$RUNS"); do
    for tool in pssh loop seashell; do
        read -r wall largest rss pss procs rc < <(measure "$tool")
        ((rc == 0)) || { echo "$tool failed (exit $rc) in run $run" >&2; exit 1; }
        SAMPLES[$tool.wall]+=" $wall"
        SAMPLES[$tool.largest]+=" $largest"
        SAMPLES[$tool.rss]+=" $rss"
        SAMPLES[$tool.pss]+=" $pss"
        SAMPLES[$tool.procs]+=" $procs"
        log "   run $run/$RUNS $tool: $((wall / 1000)) ms"
    done
done

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

SEA_WALL=$(median "${SAMPLES[seashell.wall]}")
log "== load average at end: $(load_avg)"
echo
echo "Fan-out of \`true\` to $HOSTS hosts on 127.0.0.1, at most $PARALLEL at once; medians of $RUNS runs;"
echo "$(nproc) CPUs, $(ssh -V 2>&1 | cut -d, -f1), $(parallel-ssh --version 2>&1 | head -n 1 | sed 's/^/pssh /'), $("$SEA" --version)"
echo
echo "| tool | wall | seashell / tool | largest process (peak RSS) | tree RSS (peak) | tree PSS (peak) | processes (peak) |"
echo "|---|---|---|---|---|---|---|"
for tool in pssh loop seashell; do
    wall=$(median "${SAMPLES[$tool.wall]}")
    name=$tool
    [[ $name != loop ]] || name="ssh & loop"
    printf '| %s | %s ms | %s | %s | %s | %s | %s |\n' "$name" "$((wall / 1000))" \
        "$(awk -v a="$SEA_WALL" -v b="$wall" 'BEGIN { printf "%.2f", a / b }')" \
        "$(mib "$(median "${SAMPLES[$tool.largest]}")")" \
        "$(mib "$(median "${SAMPLES[$tool.rss]}")")" \
        "$(mib "$(median "${SAMPLES[$tool.pss]}")")" \
        "$(median "${SAMPLES[$tool.procs]}")"
done
