#!/usr/bin/env bash
# silent-flood.sh: can a client get in while strangers hold silent connections open?
#
# Usage: bash benches/silent-flood.sh [--runs N] [--binary PATH]
#   --runs N        `exec true` runs per scenario (default 50)
#   --binary PATH   use this seashell binary instead of building one
#   -h, --help      this text
#
# What it does: builds seashell (cargo build --release --locked), starts `seashell serve` on
# 127.0.0.1 with its default admission limits (max_waiting 1024, max_unauthenticated 32,
# hello_timeout 2 s) and the test fixtures' keys, in a temporary directory removed on exit,
# and times N runs of `seashell exec 127.0.0.1 -- true` in three scenarios:
#   baseline   nothing else connected;
#   remote     1,000 silent connections kept open from 127.0.0.2 (each one the server closes
#              is reopened at once);
#   same       160 silent connections kept open from 127.0.0.1, the client's own address.
# It prints, per scenario, the successes out of N and the median and 90th percentile of the
# exec's wall time, as a Markdown table (progress on stderr). The flooder is a small Python
# script (python3 needed); it also reports how many connections the server closed.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=50
BINARY=

while (($#)); do
    case $1 in
        --runs) RUNS=$2; shift ;;
        --binary) BINARY=$2; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z $BINARY ]]; then
    (cd "$ROOT" && cargo build --release --locked >&2)
    BINARY=${CARGO_TARGET_DIR:-$ROOT/target}/release/seashell
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for key in host_rsa client_rsa; do
    install -m 600 "$ROOT/tests/fixtures/$key" "$WORK/$key"
done
cp "$ROOT/tests/fixtures/client_rsa.pub" "$WORK/authorized_keys"
chmod 600 "$WORK/authorized_keys"

SEASHELL_HOME=$WORK RUST_LOG=info "$BINARY" serve --listen 127.0.0.1:0 \
    --host-key "$WORK/host_rsa" --authorized-keys "$WORK/authorized_keys" \
    2>"$WORK/server.log" &
PIDS+=($!)
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log" 2>/dev/null)
    [[ -n $PORT ]] && break
    sleep 0.1
done
[[ -n $PORT ]] || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }

cat >"$WORK/flood.py" <<'PY'
import selectors, signal, socket, sys
source, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
closed = 0
def open_one():
    s = socket.socket()
    s.bind((source, 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    sel.register(s, selectors.EVENT_READ)
def report(*_):
    print(f"flood from {source}: the server closed {closed} silent connections", file=sys.stderr)
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
for _ in range(count):
    open_one()
print("ready", flush=True)
while True:
    for key, _ in sel.select(1):
        s = key.fileobj
        try:
            data = s.recv(1)
        except OSError:
            data = b""
        if not data:
            sel.unregister(s)
            s.close()
            closed += 1
            open_one()
PY

exec_true() {
    "$BINARY" exec -i "$WORK/client_rsa" --known-hosts "$WORK/known_hosts" --accept-new \
        -p "$PORT" 127.0.0.1 -- true </dev/null >/dev/null 2>>"$WORK/exec.log"
}

# One scenario: prints "ok/N median p90" (milliseconds).
measure() {
    local ok=0 times=() start end
    exec_true || true
    for _ in $(seq "$RUNS"); do
        start=$EPOCHREALTIME
        if exec_true; then ok=$((ok + 1)); fi
        end=$EPOCHREALTIME
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", (b - a) * 1000}')")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v ok="$ok" -v n="$RUNS" '
        {t[NR] = $1}
        END {m = t[int((NR + 1) / 2)]; p = t[int(NR * 0.9 + 0.5)]; printf "%d/%d %s %s\n", ok, n, m, p}'
}

scenario() {
    local name=$1 source=$2 count=$3 flood=
    if ((count > 0)); then
        python3 "$WORK/flood.py" "$source" "$PORT" "$count" >"$WORK/flood.ready" &
        flood=$!
        PIDS+=("$flood")
        for _ in $(seq 100); do
            grep -q ready "$WORK/flood.ready" 2>/dev/null && break
            sleep 0.1
        done
        sleep 3
    fi
    echo "$name: $count silent from $source, $RUNS runs of exec true" >&2
    read -r ok median p90 < <(measure)
    if [[ -n $flood ]]; then kill "$flood"; wait "$flood" 2>/dev/null || true; fi
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$count from $source" "$ok" "$median" "$p90"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
{
    echo "| scenario | silent connections | exec true ok | median ms | p90 ms |"
    echo "|---|---|---|---|---|"
    scenario baseline 127.0.0.1 0
    scenario remote 127.0.0.2 1000
    scenario same 127.0.0.1 160
}
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
grep -v '^$' "$WORK/exec.log" | sort | uniq -c | sort -rn | head -5 >&2 || true
