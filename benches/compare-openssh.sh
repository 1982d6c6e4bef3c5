#!/usr/bin/env bash
# compare-openssh.sh: seashell vs OpenSSH, side by side on 127.0.0.1 (issue 6).
#
# Usage: bash benches/compare-openssh.sh [options]
#   --quick            smoke test: 64 MiB transfers, 3 runs (1 for row e)
#   --size BYTES       transfer size for rows b, c, f (default 1073741824 = 1 GiB)
#   --runs-a N         runs of row a (connect + auth + true)     (default 11)
#   --runs-bulk N      runs of rows b, c, f (1 GiB transfers)     (default 5)
#   --runs-d N         runs of row d (commands in one session)    (default 11)
#   --runs-e N         runs of row e (concurrent sessions)        (default 3)
#   --runs-g N         runs of row g at each RTT (delay proxy)    (default 11)
#   --rtts LIST        round-trip times of row g in ms, comma-separated (default 2,20)
#   --commands N       commands per session in row d              (default 100)
#   --concurrency N    concurrent sessions in row e               (default 100)
#   --only LIST        rows to run, comma-separated, e.g. a,b,d   (default a,b,c,d,e,f,g)
#   --binary PATH      use this seashell binary instead of building one (e.g. to compare builds)
#   --stock-limits     keep both servers' admission limits at their defaults (sshd
#                      MaxStartups 10:30:100, seashell max_unauthenticated 32 /
#                      max_sessions 100); by default both are raised to 512 so that row e
#                      measures capacity, not admission control
#   -h, --help         this text
#
# What it does: builds seashell (cargo build --release --locked; honours CARGO_TARGET_DIR),
# installs openssh-server with apt-get if /usr/sbin/sshd is missing, and, in a temporary
# directory removed on exit, makes RSA-3072 keys for both, starts a private sshd (its own
# sshd_config: 127.0.0.1 only, a free port, its own host key and authorized_keys, a neutral
# empty HOME so that no shell start-up file is timed; never the system service) and a
# `seashell serve` on 127.0.0.1. Each row runs OpenSSH then seashell, alternately (A B A B),
# after one untimed warm-up of each, and prints the medians and the ratio seashell/ssh as a
# Markdown table at the end (progress goes to stderr, the table to stdout).
#
# Rows: a) connect + authenticate + `true` + close; b) download SIZE bytes
# (`head -c SIZE /dev/zero` remote, to /dev/null here); c) upload SIZE bytes (into remote
# `cat >/dev/null`); d) N `true` commands in one session (seashell connect in script mode vs
# `ssh -S SOCKET` over a ControlMaster started beforehand, so ssh's handshake is not timed and
# seashell's is); e) N concurrent sessions of `sleep 1`: wall time, failures, peak server
# memory; f) seashell cp vs scp of a SIZE-byte file, both directions
# (`seashell cp -i KEY --known-hosts FILE -P PORT SRC host:DST` and back), and, for
# reference, one `openssl dgst -sha256` of the same file: the hash cp computes on each end;
# g) row a through benches/delay-proxy.py, a userspace TCP proxy that adds a round-trip time
# (these machines have no netem; it emulates TCP's own handshake round trip too), at each
# RTT of --rtts: medians, ratio, and round trips (median / RTT, CPU time included).
#
# ssh runs as: ssh -F /dev/null -i KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=FILE
#   -o StrictHostKeyChecking=accept-new -o BatchMode=yes -c aes256-gcm@openssh.com
#   -o HostKeyAlgorithms=rsa-sha2-256 -p PORT USER@127.0.0.1 ... (default key exchange).
# The machine is shared: numbers are noisy; the script prints the load average at the start
# and at the end. Needs bash >= 5 (EPOCHREALTIME), awk, sort, ps; root or sudo-less apt for
# the sshd install; python3 for row g.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

SIZE=1073741824
RUNS_A=11
RUNS_BULK=5
RUNS_D=11
RUNS_E=3
RUNS_G=11
RTTS=2,20
COMMANDS=100
CONCURRENCY=100
ONLY=a,b,c,d,e,f,g
STOCK_LIMITS=0
QUICK=0
BINARY=

while (($#)); do
    case $1 in
        --quick)
            QUICK=1
            SIZE=$((64 * 1024 * 1024))
            RUNS_A=3 RUNS_BULK=3 RUNS_D=3 RUNS_E=1 RUNS_G=3
            ;;
        --size) SIZE=$2; shift ;;
        --runs-a) RUNS_A=$2; shift ;;
        --runs-bulk) RUNS_BULK=$2; shift ;;
        --runs-d) RUNS_D=$2; shift ;;
        --runs-e) RUNS_E=$2; shift ;;
        --runs-g) RUNS_G=$2; shift ;;
        --rtts) RTTS=$2; shift ;;
        --commands) COMMANDS=$2; shift ;;
        --concurrency) CONCURRENCY=$2; shift ;;
        --only) ONLY=$2; shift ;;
        --stock-limits) STOCK_LIMITS=1 ;;
        --binary) BINARY=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done

IFS=, read -r -a RTT_LIST <<<"$RTTS"
for n in "$SIZE" "$RUNS_A" "$RUNS_BULK" "$RUNS_D" "$RUNS_E" "$RUNS_G" "$COMMANDS" "$CONCURRENCY" \
    "${RTT_LIST[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $n" >&2; exit 1; }
done

if ((BASH_VERSINFO[0] < 5)); then
    echo "bash >= 5 needed (EPOCHREALTIME)" >&2
    exit 1
fi

want() { [[ ,$ONLY, == *,$1,* ]]; }

# ---------------------------------------------------------------- build and install

build_seashell "$ROOT" "$BINARY"
SSHD=/usr/sbin/sshd
[[ -x $SSHD ]] || install_packages openssh-server
command -v ssh >/dev/null || { echo "ssh (openssh-client) is missing" >&2; exit 1; }

# ---------------------------------------------------------------- temp dir and cleanup

TMP=$(mktemp -d "${TMPDIR:-/tmp}/seashell-vs-ssh.XXXXXX")
SSHD_PID=
SEA_PID=
PROXY_PIDS=()
SAMPLER_PID=
MASTER_SOCK=$TMP/ssh-master.sock
SSH=()
SSH_DEST=

cleanup() {
    set +e
    [[ -z $SAMPLER_PID ]] || kill "$SAMPLER_PID" 2>/dev/null
    if [[ -S $MASTER_SOCK ]] && ((${#SSH[@]})); then
        "${SSH[@]}" -S "$MASTER_SOCK" -O exit "$SSH_DEST" >/dev/null 2>&1
    fi
    [[ -z $SSHD_PID ]] || kill "$SSHD_PID" 2>/dev/null
    [[ -z $SEA_PID ]] || kill "$SEA_PID" 2>/dev/null
    ((${#PROXY_PIDS[@]} == 0)) || kill "${PROXY_PIDS[@]}" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

NEUTRAL_HOME=$TMP/home
mkdir -m 700 "$NEUTRAL_HOME" "$TMP/ssh" "$TMP/sea" "$TMP/sea-home" "$TMP/remote"
USER_NAME=$(id -un)
SERVER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------- keys

export SEASHELL_HOME=$TMP/sea-home
make_keys "$TMP"

# ---------------------------------------------------------------- sshd

LIMIT=512
free_port
SSH_PORT=$PORT
SFTP_SERVER=internal-sftp
[[ ! -x /usr/lib/openssh/sftp-server ]] || SFTP_SERVER=/usr/lib/openssh/sftp-server
EXTRA=("Subsystem sftp $SFTP_SERVER")
((STOCK_LIMITS)) || EXTRA+=("MaxStartups $LIMIT")
sshd_config "$SSH_PORT" "$TMP/ssh/host_rsa" "$TMP/ssh/authorized_keys" "$TMP/ssh/sshd.pid" \
    "$NEUTRAL_HOME" "${EXTRA[@]}" >"$TMP/ssh/sshd_config"
# sshd running as root wants its privilege separation directory.
((EUID != 0)) || mkdir -p /run/sshd
"$SSHD" -t -f "$TMP/ssh/sshd_config"
log "== sshd on 127.0.0.1:$SSH_PORT"
"$SSHD" -f "$TMP/ssh/sshd_config" -D -e 2>"$TMP/ssh/sshd.log" &
SSHD_PID=$!
wait_port "$SSH_PORT" 10 || { cat "$TMP/ssh/sshd.log" >&2; echo "sshd did not start" >&2; exit 1; }

# ssh takes the first -p it is given: SSH_ANY_PORT is for row g's proxies.
ssh_options "$TMP/ssh/id_rsa" "$TMP/ssh/known_hosts"
SSH_ANY_PORT=(ssh "${SSH_OPTS[@]}")
SSH=("${SSH_ANY_PORT[@]}" -p "$SSH_PORT")
SCP=(scp "${SSH_OPTS[@]}" -P "$SSH_PORT")
SSH_DEST=$USER_NAME@127.0.0.1

# ---------------------------------------------------------------- seashell serve

SEA_CONFIG=()
if ((!STOCK_LIMITS)); then
    printf 'max_unauthenticated = %d\nmax_sessions = %d\n' "$LIMIT" "$LIMIT" >"$TMP/sea/seashell.toml"
    SEA_CONFIG=(--config "$TMP/sea/seashell.toml")
fi
log "== seashell serve (makes its RSA-3072 transport key first)"
env -i PATH="$SERVER_PATH" HOME="$NEUTRAL_HOME" USER="$USER_NAME" LOGNAME="$USER_NAME" \
    SHELL=/bin/sh SEASHELL_HOME="$TMP/sea" \
    "$SEA" serve "${SEA_CONFIG[@]}" --listen 127.0.0.1:0 --host-key "$TMP/sea/host_rsa" \
    --authorized-keys "$TMP/sea/authorized_keys" 2>"$TMP/sea/serve.log" &
SEA_PID=$!
SEA_PORT=
for _ in $(seq 600); do
    SEA_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/sea/serve.log" | head -n 1)
    [[ -z $SEA_PORT ]] || break
    kill -0 "$SEA_PID" 2>/dev/null || break
    sleep 0.05
done
[[ -n $SEA_PORT ]] || { cat "$TMP/sea/serve.log" >&2; echo "seashell serve did not start" >&2; exit 1; }
log "== seashell serve on 127.0.0.1:$SEA_PORT (pid $SEA_PID)"
SEA_DEST=127.0.0.1:$SEA_PORT
SEA_TARGET=(-i "$TMP/sea/id_rsa" --known-hosts "$TMP/sea/known_hosts")

# First contact for both: pin the host keys (untimed), and check both really work.
"${SSH[@]}" "$SSH_DEST" true
"$SEA" exec "${SEA_TARGET[@]}" --accept-new "$SEA_DEST" -- true
# shellcheck disable=SC2016 # $HOME is expanded by the remote shell
[[ $("${SSH[@]}" "$SSH_DEST" 'echo "$HOME"') == "$NEUTRAL_HOME" ]] \
    || log "warning: sshd sessions do not see the neutral HOME"

# ---------------------------------------------------------------- measurement helpers

declare -A TIMES=() FAILS=() ROW_LOAD=()
ELAPSED_US=0
RC=0

# Runs "$@", sets ELAPSED_US (wall time, microseconds) and RC.
run_timed() {
    local t0 t1
    t0=${EPOCHREALTIME/[.,]/}
    set +e
    "$@"
    RC=$?
    set -e
    t1=${EPOCHREALTIME/[.,]/}
    ELAPSED_US=$((t1 - t0))
}

# record ROW TOOL: appends the last run to the row's samples (failed runs are counted apart).
record() {
    local key=$1.$2
    if ((RC == 0)); then
        TIMES[$key]="${TIMES[$key]:-} $ELAPSED_US"
    else
        FAILS[$key]=$((${FAILS[$key]:-0} + 1))
    fi
}

fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1000 }'; }
fmt_s() { awk -v u="$1" 'BEGIN { printf "%.2f s", u / 1e6 }'; }
fmt_rate() { awk -v u="$1" -v b="$SIZE" 'BEGIN { printf "%.0f MB/s", b / u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
meets() { awk -v r="$1" -v g="$2" 'BEGIN { print (r != "-" && r + 0 <= g + 0) ? "yes" : "no" }'; }

# progress ROW TOOL I N
progress() {
    local what
    if ((RC == 0)); then what=$(fmt_ms "$ELAPSED_US"); else what="FAILED (exit $RC)"; fi
    log "   $1 $(printf '%-8s' "$2") $3/$4  $what"
}

# bench ROW N SSH_FUNCTION SEASHELL_FUNCTION: one warm-up of each, then N interleaved runs.
bench() {
    local row=$1 n=$2 i
    ROW_LOAD[$row]=$(cut -d' ' -f1 /proc/loadavg)
    log "-- row $row: warm-up (load average ${ROW_LOAD[$row]})"
    run_timed "$3"
    ((RC == 0)) || log "   warning: ssh warm-up failed (exit $RC)"
    run_timed "$4"
    ((RC == 0)) || log "   warning: seashell warm-up failed (exit $RC)"
    for ((i = 1; i <= n; i++)); do
        run_timed "$3"
        record "$row" ssh
        progress "$row" ssh "$i" "$n"
        run_timed "$4"
        record "$row" seashell
        progress "$row" seashell "$i" "$n"
    done
}

sea_exec() { "$SEA" exec "${SEA_TARGET[@]}" "$SEA_DEST" -- "$@"; }

# a) connect + authenticate + true + close
a_ssh() { "${SSH[@]}" "$SSH_DEST" true </dev/null; }
a_sea() { sea_exec true </dev/null; }
# b) download
b_ssh() { "${SSH[@]}" "$SSH_DEST" "head -c $SIZE /dev/zero" </dev/null >/dev/null; }
b_sea() { sea_exec head -c "$SIZE" /dev/zero </dev/null >/dev/null; }
# c) upload
c_ssh() { head -c "$SIZE" /dev/zero | "${SSH[@]}" "$SSH_DEST" 'cat >/dev/null'; }
c_sea() { head -c "$SIZE" /dev/zero | sea_exec 'cat >/dev/null'; }
# d) COMMANDS commands in one session
d_ssh() {
    local i
    for ((i = 0; i < COMMANDS; i++)); do
        "${SSH[@]}" -S "$MASTER_SOCK" -o ControlMaster=no "$SSH_DEST" true </dev/null || return
    done
}
d_sea() { "$SEA" connect "${SEA_TARGET[@]}" "$SEA_DEST" <"$TMP/commands.txt"; }

# Memory of a server's process tree: "rss_kib pss_kib processes", counting the processes
# named COMM under (and including) ROOT_PID.
tree_mem() { # ROOT_PID COMM
    local pids
    pids=$(ps -eo pid=,ppid=,comm= | awk -v root="$1" -v comm="$2" '
        { parent[$1] = $2; name[$1] = $3 }
        END { for (p in parent) { if (name[p] != comm) continue
                for (q = p; q != "" && q > 1; q = parent[q]) if (q == root) { print p; break } } }')
    [[ -n $pids ]] || { echo "0 0 0"; return; }
    local files=() p
    for p in $pids; do files+=("/proc/$p/smaps_rollup"); done
    cat "${files[@]}" 2>/dev/null | awk -v n="$(wc -w <<<"$pids")" '
        /^Rss:/ { rss += $2 } /^Pss:/ { pss += $2 } END { printf "%d %d %d\n", rss, pss, n }'
}

# Samples tree_mem every 0.2 s and keeps the peak of each figure in FILE.
sample_peak() { # ROOT_PID COMM FILE
    local peak_rss=0 peak_pss=0 peak_n=0 rss pss n
    while :; do
        read -r rss pss n < <(tree_mem "$1" "$2")
        ((rss <= peak_rss)) || peak_rss=$rss
        ((pss <= peak_pss)) || peak_pss=$pss
        ((n <= peak_n)) || peak_n=$n
        echo "$peak_rss $peak_pss $peak_n" >"$3.tmp" && mv "$3.tmp" "$3"
        sleep 0.2
    done
}

E_FAILED=0
# e) CONCURRENCY sessions of `sleep 1` at once; sets E_FAILED. Fails only if all failed.
e_run() { # ssh|seashell
    local pids=() i failed=0 p
    for ((i = 0; i < CONCURRENCY; i++)); do
        if [[ $1 == ssh ]]; then
            "${SSH[@]}" "$SSH_DEST" 'sleep 1' </dev/null >/dev/null 2>>"$TMP/e-$1.err" &
        else
            sea_exec sleep 1 </dev/null >/dev/null 2>>"$TMP/e-$1.err" &
        fi
        pids+=("$!")
    done
    for p in "${pids[@]}"; do
        wait "$p" || failed=$((failed + 1))
    done
    E_FAILED=$failed
    ((failed < CONCURRENCY))
}
e_ssh() { e_run ssh; }
e_sea() { e_run seashell; }

vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# f) cp vs scp
F_SRC=$TMP/f-source.bin
F_REMOTE=$TMP/remote/f-remote.bin
F_LOCAL=$TMP/f-local.bin
f_up_ssh() { "${SCP[@]}" -q "$F_SRC" "$SSH_DEST:$F_REMOTE"; }
f_up_sea() { "$SEA" cp "${SEA_TARGET[@]}" -P "$SEA_PORT" "$F_SRC" "127.0.0.1:$F_REMOTE"; }
f_down_ssh() { "${SCP[@]}" -q "$SSH_DEST:$F_SRC" "$F_LOCAL"; }
f_down_sea() { "$SEA" cp "${SEA_TARGET[@]}" -P "$SEA_PORT" "127.0.0.1:$F_SRC" "$F_LOCAL"; }

# Copies must produce SIZE bytes; the check and the removal are not timed.
checked_copy() { # FUNCTION RESULT_FILE
    rm -f "$2"
    run_timed "$1"
    if ((RC == 0)) && [[ $(stat -c %s "$2" 2>/dev/null || echo 0) != "$SIZE" ]]; then
        RC=99
    fi
    rm -f "$2"
}

bench_copy() { # ROW N SSH_FN SEA_FN RESULT_FILE
    local row=$1 n=$2 i
    ROW_LOAD[$row]=$(cut -d' ' -f1 /proc/loadavg)
    log "-- row $row: warm-up (load average ${ROW_LOAD[$row]})"
    checked_copy "$3" "$5"
    ((RC == 0)) || log "   warning: scp warm-up failed (exit $RC)"
    checked_copy "$4" "$5"
    ((RC == 0)) || log "   warning: seashell cp warm-up failed (exit $RC)"
    for ((i = 1; i <= n; i++)); do
        checked_copy "$3" "$5"
        record "$row" ssh
        progress "$row" ssh "$i" "$n"
        checked_copy "$4" "$5"
        record "$row" seashell
        progress "$row" seashell "$i" "$n"
    done
}

# ---------------------------------------------------------------- the rows

LOAD_START=$(load_avg)
log "== measuring (load average at start: $LOAD_START; $(nproc) CPUs)"

if want b || want c; then
    # Both ends really move SIZE bytes (checked once, untimed).
    got_ssh=$("${SSH[@]}" "$SSH_DEST" "head -c $SIZE /dev/zero" </dev/null | wc -c)
    got_sea=$(sea_exec head -c "$SIZE" /dev/zero </dev/null | wc -c)
    [[ $got_ssh == "$SIZE" && $got_sea == "$SIZE" ]] \
        || { echo "download check failed: ssh $got_ssh, seashell $got_sea bytes" >&2; exit 1; }
    got_ssh=$(head -c "$SIZE" /dev/zero | "${SSH[@]}" "$SSH_DEST" 'wc -c')
    got_sea=$(head -c "$SIZE" /dev/zero | sea_exec 'wc -c')
    [[ $got_ssh == "$SIZE" && $got_sea == "$SIZE" ]] \
        || { echo "upload check failed: ssh $got_ssh, seashell $got_sea bytes" >&2; exit 1; }
fi

! want a || bench a "$RUNS_A" a_ssh a_sea
! want b || bench b "$RUNS_BULK" b_ssh b_sea
! want c || bench c "$RUNS_BULK" c_ssh c_sea

if want d; then
    for ((i = 0; i < COMMANDS; i++)); do echo true; done >"$TMP/commands.txt"
    "${SSH[@]}" -M -S "$MASTER_SOCK" -o ControlPersist=yes -f -N "$SSH_DEST"
    bench d "$RUNS_D" d_ssh d_sea
    "${SSH[@]}" -S "$MASTER_SOCK" -O exit "$SSH_DEST" >/dev/null 2>&1 || true
fi

declare -A E_FAIL_TOTAL=([ssh]=0 [seashell]=0) E_PEAK=([ssh]="0 0 0" [seashell]="0 0 0")
E_HWM=0
if want e; then
    ROW_LOAD[e]=$(cut -d' ' -f1 /proc/loadavg)
    log "-- row e: $CONCURRENCY concurrent sessions of sleep 1 (memory sampled every 0.2 s)"
    for ((i = 1; i <= RUNS_E; i++)); do
        for tool in ssh seashell; do
            if [[ $tool == ssh ]]; then root=$SSHD_PID comm=sshd; else root=$SEA_PID comm=seashell; fi
            # Reset the server's peak RSS (VmHWM) so that it covers this run only.
            [[ $tool == ssh ]] || echo 5 >"/proc/$SEA_PID/clear_refs" 2>/dev/null || true
            rm -f "$TMP/peak"
            sample_peak "$root" "$comm" "$TMP/peak" &
            SAMPLER_PID=$!
            if [[ $tool == ssh ]]; then run_timed e_ssh; else run_timed e_sea; fi
            kill "$SAMPLER_PID" 2>/dev/null || true
            wait "$SAMPLER_PID" 2>/dev/null || true
            SAMPLER_PID=
            record e "$tool"
            E_FAIL_TOTAL[$tool]=$((E_FAIL_TOTAL[$tool] + E_FAILED))
            read -r rss pss n <"$TMP/peak" || rss=0 pss=0 n=0
            read -r prss _ _ <<<"${E_PEAK[$tool]}"
            ((rss <= prss)) || E_PEAK[$tool]="$rss $pss $n"
            if [[ $tool == seashell ]]; then
                hwm=$(vm_hwm_kib "$SEA_PID")
                ((hwm <= E_HWM)) || E_HWM=$hwm
            fi
            log "   e $(printf '%-8s' "$tool") $i/$RUNS_E  $(fmt_s "$ELAPSED_US"), $E_FAILED failed, peak $((rss / 1024)) MiB RSS over $n processes"
            sleep 1 # let the last sessions' processes go away
        done
    done
fi

if want f; then
    head -c "$SIZE" /dev/zero >"$F_SRC"
    bench_copy f-up "$RUNS_BULK" f_up_ssh f_up_sea "$F_REMOTE"
    bench_copy f-down "$RUNS_BULK" f_down_ssh f_down_sea "$F_LOCAL"
    # The SHA-256 that cp computes on each end, alone: one read-and-hash pass of the source.
    if command -v openssl >/dev/null; then
        for ((i = 1; i <= RUNS_BULK; i++)); do
            run_timed openssl dgst -sha256 "$F_SRC" >/dev/null
            record f-sha256 openssl
        done
    fi
    rm -f "$F_SRC"
fi

# g) row a through a delay proxy at each RTT
G_SSH_PORT=
G_SEA_PORT=
# start_proxy TARGET_PORT RTT_MS: sets PROXY_PORT to the new proxy's port. Called in this
# shell, not in $(...), so that PROXY_PIDS keeps its pid for the cleanup.
PROXY_PORT=
start_proxy() {
    local out=$TMP/proxy.$1.$2 i
    python3 "$ROOT/benches/delay-proxy.py" "$1" "$2" >"$out" &
    PROXY_PIDS+=("$!")
    for ((i = 0; i < 200; i++)); do
        [[ ! -s $out ]] || { PROXY_PORT=$(head -n 1 "$out"); return; }
        sleep 0.05
    done
    echo "delay proxy did not start" >&2
    return 1
}
g_ssh() { "${SSH_ANY_PORT[@]}" -p "$G_SSH_PORT" "$SSH_DEST" true </dev/null; }
g_sea() { "$SEA" exec "${SEA_TARGET[@]}" "127.0.0.1:$G_SEA_PORT" -- true </dev/null; }
if want g; then
    command -v python3 >/dev/null || { echo "row g needs python3" >&2; exit 1; }
    for rtt in "${RTT_LIST[@]}"; do
        start_proxy "$SSH_PORT" "$rtt"
        G_SSH_PORT=$PROXY_PORT
        start_proxy "$SEA_PORT" "$rtt"
        G_SEA_PORT=$PROXY_PORT
        # First contact with the proxies' addresses (new host:port entries), untimed.
        "${SSH_ANY_PORT[@]}" -p "$G_SSH_PORT" "$SSH_DEST" true
        "$SEA" exec "${SEA_TARGET[@]}" --accept-new -q "127.0.0.1:$G_SEA_PORT" -- true
        bench "g-$rtt" "$RUNS_G" g_ssh g_sea
    done
fi

LOAD_END=$(load_avg)

# ---------------------------------------------------------------- the table

size_label() {
    if ((SIZE % 1073741824 == 0)); then echo "$((SIZE / 1073741824)) GiB"
    elif ((SIZE % 1048576 == 0)); then echo "$((SIZE / 1048576)) MiB"
    else echo "$SIZE B"; fi
}
SIZE_LABEL=$(size_label)

# row_line ROW LABEL RUNS GOAL FORMAT: one table line from the recorded samples.
row_line() {
    local row=$1 label=$2 runs=$3 goal=$4 format=$5 ms mss r shown_ssh shown_sea failures
    ms=$(median "${TIMES[$row.ssh]:-}")
    mss=$(median "${TIMES[$row.seashell]:-}")
    failures="${FAILS[$row.ssh]:-0} / ${FAILS[$row.seashell]:-0}"
    if [[ -z $ms || -z $mss ]]; then
        printf '| %s | %s | %s | %s | %s | - | ≤ %s | - | %s | %s |\n' "$row" "$label" "$runs" \
            "${ms:+$(fmt_ms "$ms")}" "${mss:+$(fmt_ms "$mss")}" "$goal" "$failures" "${ROW_LOAD[$row]:-}"
        return
    fi
    case $format in
        ms) shown_ssh=$(fmt_ms "$ms") shown_sea=$(fmt_ms "$mss") ;;
        s) shown_ssh=$(fmt_s "$ms") shown_sea=$(fmt_s "$mss") ;;
        rate)
            shown_ssh="$(fmt_s "$ms") ($(fmt_rate "$ms"))"
            shown_sea="$(fmt_s "$mss") ($(fmt_rate "$mss"))"
            ;;
    esac
    r=$(ratio "$mss" "$ms")
    printf '| %s | %s | %s | %s | %s | **%s** | ≤ %s | %s | %s | %s |\n' "$row" "$label" "$runs" \
        "$shown_ssh" "$shown_sea" "$r" "$goal" "$(meets "$r" "$goal")" "$failures" "${ROW_LOAD[$row]:-}"
}

echo
echo "## seashell vs OpenSSH: medians on 127.0.0.1"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; load average $LOAD_START at the start, $LOAD_END at the end"
echo "(1, 5, 15 min; the benchmark's own processes count too: row e alone runs 100 clients);"
echo "$(ssh -V 2>&1 | cut -d, -f1); seashell $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')${BINARY:+ (binary $SEA)};"
echo "transfers of $SIZE_LABEL; admission limits $( ((STOCK_LIMITS)) && echo 'stock' || echo "raised to $LIMIT on both servers")."
((QUICK == 0)) || echo "(--quick: a smoke test, not a measurement)"
echo
echo "| row | measurement | runs | OpenSSH | seashell | seashell/ssh | goal | met | failed runs ssh / seashell | load at row start |"
echo "|---|---|---|---|---|---|---|---|---|---|"
! want a || row_line a "connect + auth + \`true\`" "$RUNS_A" 0.06 ms
! want b || row_line b "download $SIZE_LABEL" "$RUNS_BULK" 0.5 rate
! want c || row_line c "upload $SIZE_LABEL" "$RUNS_BULK" 0.5 rate
! want d || row_line d "$COMMANDS commands, one session" "$RUNS_D" 0.25 ms
if want e; then
    row_line e "$CONCURRENCY concurrent \`sleep 1\` sessions (wall time)" "$RUNS_E" 0.20 s
    read -r s_rss s_pss s_n <<<"${E_PEAK[ssh]}"
    read -r e_rss _ _ <<<"${E_PEAK[seashell]}"
    printf '| e | failed sessions, all runs | %s | %s | %s | - | 0 | %s | | |\n' "$RUNS_E" \
        "${E_FAIL_TOTAL[ssh]}" "${E_FAIL_TOTAL[seashell]}" \
        "$( ((E_FAIL_TOTAL[seashell] == 0)) && echo yes || echo no)"
    printf '| e | peak server memory | %s | %d MiB RSS summed over %d sshd processes (PSS %d MiB) | %d MiB (VmHWM, one process; sampled RSS %d MiB) | - | < 64 MiB | %s | | |\n' \
        "$RUNS_E" $((s_rss / 1024)) "$s_n" $((s_pss / 1024)) $((E_HWM / 1024)) $((e_rss / 1024)) \
        "$( ((E_HWM < 65536)) && echo yes || echo no)"
fi
if want g; then
    for rtt in "${RTT_LIST[@]}"; do
        row_line "g-$rtt" "connect + auth + \`true\` at $rtt ms RTT (delay proxy)" "$RUNS_G" 0.18 ms
    done
fi
if want f; then
    row_line f-up "cp vs scp, upload $SIZE_LABEL" "$RUNS_BULK" 0.5 rate
    row_line f-down "cp vs scp, download $SIZE_LABEL" "$RUNS_BULK" 0.5 rate
    sha=$(median "${TIMES[f-sha256.openssl]:-}")
    if [[ -n $sha ]]; then
        echo
        echo "f, for reference: reading and hashing the $SIZE_LABEL source once (\`openssl dgst -sha256\`, median of $RUNS_BULK) took $(fmt_s "$sha");"
        echo "\`seashell cp\` hashes every byte on both ends (issue 5's end-to-end SHA-256 check), on the same $(nproc) CPUs as scp."
    fi
fi
if want g; then
    echo
    echo "g, round trips (median / RTT, CPU time included; TCP's own handshake is one of them):"
    for rtt in "${RTT_LIST[@]}"; do
        ms=$(median "${TIMES[g-$rtt.ssh]:-}")
        mss=$(median "${TIMES[g-$rtt.seashell]:-}")
        [[ -n $ms && -n $mss ]] || continue
        echo "at $rtt ms: ssh $(awk -v u="$ms" -v r="$rtt" 'BEGIN { printf "%.1f", u / 1000 / r }'), seashell $(awk -v u="$mss" -v r="$rtt" 'BEGIN { printf "%.1f", u / 1000 / r }')."
    done
fi
