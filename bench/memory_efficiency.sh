#!/bin/bash
# memory_efficiency.sh - resident memory per item, percore vs memcached
# (DESIGN.md "How we measure": resident memory per item after loading a known
# item set, minus key+value bytes).
#
# For each server: start it with a generous -m and -t 1, pinned to one CPU;
# read VmRSS; load N items (20-byte keys, 100-byte values, no flags, no
# exptime) with percore-bench's warmup, which sets every key 0..N-1 exactly
# once (closed loop, 16 deep per connection), then one get so the measured
# phase changes nothing; read VmRSS and `stats` again. Reported per server:
# RSS before/after, (after - before) / N ("RSS per item"), that minus
# key+value ("overhead per item"), after / N, stats bytes / curr_items and
# percore's own store_mem_used. Then percore's overhead / memcached's.
# Target (issue 3): percore's overhead at most a quarter of memcached's.
#
# Only the processes this script starts are stopped, by PID. Every step is
# bounded by `timeout`.
#
# usage: bench/memory_efficiency.sh [--items N] [--key-size K] [--value-size V]
#          [--memory MB] [--server-cpu C] [--bench-cpu C] [--out FILE] [--servers LIST]
#   defaults: 1000000 items, 20 B keys, 100 B values, -m 1024, server on CPU 0,
#   percore-bench on CPU 1, docs/results/memory_efficiency.md, percore,memcached
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${PERCORE_BUILD:-$repo/build}
PERCORE=${PERCORE_SERVER:-$BUILD/percore}
BENCH=${PERCORE_BENCH:-$BUILD/percore-bench}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
PY=/usr/bin/python3
items=1000000
ksize=20
vsize=100
memory=1024
scpu=0
bcpu=1
out=$repo/docs/results/memory_efficiency.md
servers=percore,memcached
while [ $# -gt 0 ]; do
    case $1 in
    --items) items=$2; shift 2 ;;
    --key-size) ksize=$2; shift 2 ;;
    --value-size) vsize=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --server-cpu) scpu=$2; shift 2 ;;
    --bench-cpu) bcpu=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- helpers
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() {            # stop one process we started: TERM, then KILL after 5 s
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() {          # port: wait up to 10 s for `version` to answer
    timeout 10 $PY - "$1" <<'EOF'
import socket, sys, time
while True:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
        s.sendall(b"version\r\n")
        if s.recv(100).startswith(b"VERSION"):
            break
    except OSError:
        pass
    time.sleep(0.05)
EOF
}

stats() {               # port -> "name value" lines
    timeout 10 $PY - "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stats\r\n")
d = b""
while not d.endswith(b"END\r\n"):
    c = s.recv(65536)
    if not c:
        break
    d += c
for ln in d.decode().split("\r\n"):
    if ln.startswith("STAT "):
        print(ln[5:])
EOF
}

stat_of() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

SRV_PID=
start_server() {        # name port
    local name=$1 port=$2
    local common=(-p "$port" -l 127.0.0.1 -U 0 -m "$memory" -t 1 -c 1024)
    if [ "$name" = memcached ]; then
        [ -x "$MEMCACHED" ] || { echo "no $MEMCACHED" >&2; return 1; }
        local u=(); [ "$(id -u)" = 0 ] && u=(-u root)
        taskset -c "$scpu" "$MEMCACHED" "${common[@]}" "${u[@]}" &
    else
        [ -x "$PERCORE" ] || { echo "no $PERCORE (make)" >&2; return 1; }
        taskset -c "$scpu" "$PERCORE" "${common[@]}" &
    fi
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    CMD_SERVER="taskset -c $scpu $( [ "$name" = memcached ] && echo "$MEMCACHED ${common[*]} ${u[*]}" || echo "$PERCORE ${common[*]}")"
    wait_ready "$port"
}

# ---------------------------------------------------------------- run
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
declare -A R
kv=$((ksize + vsize))
for name in ${servers//,/ }; do
    port=$(free_port)
    start_server "$name" "$port" || continue
    sleep 0.5
    before=$(rss_kb "$SRV_PID")
    load=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" --closed --warmup
          --conns 4 --get-ratio 1 -n 1 --keys "$items" --key-size "$ksize"
          --value-size "$vsize" --timeout 5 -q --json)
    echo "== $name: loading $items items" >&2
    timeout 300 "${load[@]}" >"$tmp/$name.json"
    sleep 1
    if [ "$name" = memcached ]; then
        # memcached grows its hash table in a background thread (2^19 -> 2^20
        # buckets past 786k items); measure once that is done, up to 30 s
        for i in $(seq 60); do
            [ "$(stat_of "$(stats "$port")" hash_is_expanding)" = 0 ] && break
            sleep 0.5
        done
        sleep 1
    fi
    after=$(rss_kb "$SRV_PID")
    st=$(stats "$port")
    echo "$st" >"$tmp/$name.stats"
    curr=$(stat_of "$st" curr_items)
    bytes=$(stat_of "$st" bytes)
    evic=$(stat_of "$st" evictions)
    R[$name.before]=$before
    R[$name.after]=$after
    R[$name.curr]=$curr
    R[$name.bytes]=$bytes
    R[$name.evictions]=$evic
    R[$name.mem_used]=$(stat_of "$st" store_mem_used)
    R[$name.index]=$(stat_of "$st" hash_bytes)
    R[$name.cmd_server]=$CMD_SERVER
    R[$name.cmd_load]="${load[*]}"
    R[$name.warm]=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["warmup_sets"], d["errors"])' "$tmp/$name.json")
    echo "   RSS $before kB -> $after kB, curr_items $curr, bytes $bytes, evictions $evic" >&2
    stop_pid "$SRV_PID"
done

# ---------------------------------------------------------------- report
{
echo "# Memory efficiency: percore vs memcached"
echo
echo "Generated by \`bench/memory_efficiency.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
echo "$(uname -sr), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) CPUs."
echo
echo "$items items, ${ksize}-byte keys, ${vsize}-byte values (key+value = $kv B), flags 0,"
echo "exptime 0; each server alone, \`-t 1 -m $memory\`, pinned to CPU $scpu; loader on CPU $bcpu."
echo "\"RSS per item\" = (VmRSS after load − VmRSS before) / items; \"overhead\" ="
echo "RSS per item − $kv B. \"after / items\" includes the idle process."
echo
$PY - "$items" "$kv" "$servers" <<EOF
import sys
items, kv = int(sys.argv[1]), int(sys.argv[2])
R = {$(for k in "${!R[@]}"; do printf '"%s": """%s""", ' "$k" "${R[$k]}"; done)}
names = [n for n in sys.argv[3].split(",") if n + ".after" in R]
def f(n, k): return R.get(n + "." + k, "")
print("| | " + " | ".join(names) + " |")
print("|---|" + "---:|" * len(names))
rows = []
ov = {}
for n in names:
    b, a = int(f(n, "before")), int(f(n, "after"))
    per = (a - b) * 1024 / items
    ov[n] = per - kv
def row(label, fn):
    print(f"| {label} | " + " | ".join(fn(n) for n in names) + " |")
row("VmRSS before load (kB)", lambda n: f"{int(f(n,'before')):,}")
row("VmRSS after load (kB)", lambda n: f"{int(f(n,'after')):,}")
row("RSS per item (B)", lambda n: f"{(int(f(n,'after')) - int(f(n,'before'))) * 1024 / items:.1f}")
row(f"**overhead per item beyond key+value (B)**", lambda n: f"**{ov[n]:.1f}**")
row("VmRSS after / items (B)", lambda n: f"{int(f(n,'after')) * 1024 / items:.1f}")
row("stats curr_items", lambda n: f"{int(f(n,'curr')):,}")
row("stats bytes", lambda n: f"{int(f(n,'bytes')):,}")
row("stats bytes / curr_items (B)", lambda n: f"{int(f(n,'bytes')) / max(1, int(f(n,'curr'))):.1f}")
row("stats evictions", lambda n: f(n, "evictions"))
row("stats hash_bytes (index)", lambda n: f"{int(f(n,'index')):,}" if f(n, "index") else "")
row("stats store_mem_used", lambda n: f"{int(f(n,'mem_used')):,}" if f(n, "mem_used") else "n/a")
row("loader: warmup sets, errors", lambda n: f(n, "warm"))
print()
if "percore" in ov and "memcached" in ov:
    r = ov["percore"] / ov["memcached"]
    print(f"**percore overhead / memcached overhead = {ov['percore']:.1f} / "
          f"{ov['memcached']:.1f} = {r:.3f}** (target ≤ 0.25: "
          f"{'met' if r <= 0.25 else 'MISSED'}).")
    print()
print("Commands:")
print()
print("\`\`\`")
for n in names:
    print(f"# {n}")
    print(f(n, "cmd_server") + " &")
    print(f(n, "cmd_load"))
print("\`\`\`")
EOF
} >"$out"
cat "$out"
rm -rf "$tmp"
