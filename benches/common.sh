# common.sh: what the benchmark scripts share, sourced by compare-openssh.sh and fanout.sh
# (never run by itself): building seashell, installing what is missing, free ports, a
# private sshd's configuration, medians. It starts nothing and removes nothing.

log() { printf '%s\n' "$*" >&2; }
# The calling script's header comment, from its second line to the first blank one.
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; }
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# build_seashell ROOT [BINARY]: sets SEA to BINARY (made absolute), or builds the release
# binary (cargo build --release --locked; honours CARGO_TARGET_DIR) and sets SEA to it.
build_seashell() {
    local root=$1 binary=${2:-} target_dir
    if [[ -n $binary ]]; then
        SEA=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
        log "== using $SEA (not built)"
    else
        log "== building seashell (release)"
        (cd "$root" && cargo build --release --locked --quiet)
        target_dir=${CARGO_TARGET_DIR:-$root/target}
        [[ $target_dir == /* ]] || target_dir=$root/$target_dir
        SEA=$target_dir/release/seashell
    fi
    [[ -x $SEA ]] || { echo "no binary at $SEA" >&2; exit 1; }
}

# install_packages PACKAGE...: apt-get installs them (as root, else with sudo), keeping each
# package's own service from starting where no policy says so already.
install_packages() {
    (($#)) || return 0
    log "== installing $* (apt-get; no system service is started by this script)"
    local sudo=() made_policy=0
    ((EUID == 0)) || sudo=(sudo)
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
    ((made_policy == 0)) || "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
}

# free_port: sets PORT to a TCP port of 127.0.0.1 that nothing listens on or uses and that
# was not handed out before (a server started a moment ago may not listen yet). Call it in
# the script's own shell, not in $(...), so that TAKEN remembers.
declare -A TAKEN=()
PORT=
free_port() {
    for _ in $(seq 500); do
        PORT=$((20000 + RANDOM % 40000))
        [[ -z ${TAKEN[$PORT]:-} ]] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null \
            && ! awk -v p="$(printf ':%04X' "$PORT")" '$2 ~ p"$" {found=1} END {exit !found}' \
                /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            TAKEN[$PORT]=1
            return
        fi
    done
    echo "no free port found" >&2
    return 1
}

# make_keys DIR: RSA-3072 keys for both tools, host and client, each client key authorized:
# DIR/ssh/{host_rsa,id_rsa,authorized_keys} and DIR/sea/{host_rsa,id_rsa,authorized_keys}
# (the directories exist; SEA is set).
make_keys() {
    log "== keys (RSA-3072)"
    ssh-keygen -q -t rsa -b 3072 -N '' -C bench-host -f "$1/ssh/host_rsa"
    ssh-keygen -q -t rsa -b 3072 -N '' -C bench-client -f "$1/ssh/id_rsa"
    cp "$1/ssh/id_rsa.pub" "$1/ssh/authorized_keys"
    "$SEA" keygen -f "$1/sea/host_rsa" -b 3072 --no-passphrase -C bench-host >/dev/null
    "$SEA" keygen -f "$1/sea/id_rsa" -b 3072 --no-passphrase -C bench-client >/dev/null
    cp "$1/sea/id_rsa.pub" "$1/sea/authorized_keys"
}

# ssh_options KEY KNOWN_HOSTS: sets SSH_OPTS to what ssh and scp run with here: only KEY, no
# agent, no config, KNOWN_HOSTS (first contact accepted), batch mode, AES-256-GCM and
# rsa-sha2-256 host keys (the algorithms seashell uses).
ssh_options() {
    SSH_OPTS=(-F /dev/null -i "$1" -o IdentitiesOnly=yes -o IdentityAgent=none
        -o UserKnownHostsFile="$2" -o GlobalKnownHostsFile=/dev/null
        -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR
        -c aes256-gcm@openssh.com -o HostKeyAlgorithms=rsa-sha2-256)
}

# wait_ports SECONDS LOG_PREFIX PORT...: wait_port for each; when the Nth never answers,
# prints LOG_PREFIX-N.log (its server's log) and fails.
wait_ports() {
    local seconds=$1 prefix=$2 n=0 port
    shift 2
    for port in "$@"; do
        n=$((n + 1))
        wait_port "$port" "$seconds" \
            || { cat "$prefix-$n.log" >&2; echo "no server on 127.0.0.1:$port" >&2; return 1; }
    done
}

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT; fails after SECONDS.
wait_port() {
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# sshd_config PORT HOST_KEY AUTHORIZED_KEYS PID_FILE HOME [LINE...]: prints the configuration
# of a private sshd on 127.0.0.1:PORT (public keys only, no PAM, no DNS, no motd; sessions
# get HOME), then each extra LINE.
sshd_config() {
    echo "ListenAddress 127.0.0.1"
    echo "Port $1"
    echo "HostKey $2"
    echo "AuthorizedKeysFile $3"
    echo "PidFile $4"
    echo "PubkeyAuthentication yes"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM no"
    echo "StrictModes no"
    echo "UseDNS no"
    echo "PrintMotd no"
    echo "SetEnv HOME=$5"
    ((EUID != 0)) || echo "PermitRootLogin yes"
    shift 5
    (($# == 0)) || printf '%s\n' "$@"
}

# median "N N N...": the median of the numbers (the mean of the middle two for an even
# count); nothing for none.
median() {
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -n | awk '{v[NR] = $1} END {
        if (NR == 0) exit
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
