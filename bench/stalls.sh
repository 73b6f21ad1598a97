#!/bin/bash
# stalls.sh - do writes stall when the store is full and evicting?
#
# Open-loop sets (percore-bench, Poisson arrivals at a fixed moderate rate,
# latency from the scheduled send time, so a stall is charged to every request
# it delays) against one server (-t 1, -m 64 by default, pinned to CPU 0; the
# generator on CPU 1), in two phases on the same running server:
#
#   not-full  sets over a small keyspace (--small-keys, default 100,000 keys of
#             20 B + 100 B values = 12 MB, far below -m) for --duration s; the
#             script checks that `stats evictions` did not move.
#   full      first a closed-loop load of --big-keys (default 2,000,000 keys,
#             ~4x -m 64) so the store is full, then the same open-loop sets over
#             those keys for --duration s: nearly every set now needs memory, so
#             percore merges/evicts segments and memcached evicts from its LRU.
#
# Reported per server and phase: achieved rate, set latency p50/p99/p99.9/max
# (us), the generator's send lag p99 (if that is large, the machine, not the
# server, was late), evictions during the phase, errors/timeouts. Results go to
# docs/results/stalls.md (--out). Run it on a quiet machine; quote ratios.
#
# Only the processes this script starts are stopped, by PID; each run is
# bounded by `timeout`.
#
# usage: bench/stalls.sh [--rate R] [--duration S] [--memory MB]
#          [--small-keys N] [--big-keys N] [--value-size V] [--servers LIST]
#          [--spin-us N] [--percore-args "ARGS"] [--out FILE]
#   defaults: rate 20000, 10 s, -m 64, 100000 / 2000000 keys, 100 B values,
#   servers percore,memcached, docs/results/stalls.md
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${PERCORE_BUILD:-$repo/build}
PERCORE=${PERCORE_SERVER:-$BUILD/percore}
BENCH=${PERCORE_BENCH:-$BUILD/percore-bench}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
PY=/usr/bin/python3
rate=20000
duration=10
memory=64
small=100000
big=2000000
vsize=100
ksize=20
spin=0
servers=percore,memcached
pargs=
scpu=0
bcpu=1
out=$repo/docs/results/stalls.md
while [ $# -gt 0 ]; do
    case $1 in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --small-keys) small=$2; shift 2 ;;
    --big-keys) big=$2; shift 2 ;;
    --value-size) vsize=$2; shift 2 ;;
    --spin-us) spin=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --percore-args) pargs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- helpers
# Servers are started, waited for and stopped by bench/lib.sh (by PID only;
# TERM, then KILL after 5 s).
. "$here/lib.sh"
BENCH_STOP_WAIT_TENTHS=50
bench_init
stats() { bench_stats "$@"; }
stat_of() { bench_stat_of "$@"; }
evictions() { bench_stats "$1" | awk '$1 == "evictions" { print $2 }'; }

SRV_PID=
CMD_SERVER=
start_server() {        # name port
    local name=$1 port=$2 argv
    local common=(-p "$port" -l 127.0.0.1 -U 0 -m "$memory" -t 1 -c 1024)
    if [ "$name" = memcached ]; then
        argv=("$MEMCACHED" "${common[@]}")
        [ "$(id -u)" = 0 ] && argv+=(-u root)
    else
        local extra=()
        read -r -a extra <<<"$pargs"
        argv=("$PERCORE" "${common[@]}" "${extra[@]}")
    fi
    bench_start "$name" "$scpu" - "${argv[@]}"
    SRV_PID=$BENCH_PID
    CMD_SERVER=$BENCH_CMD
    bench_wait "$port" 10
}

# ---------------------------------------------------------------- run
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
cmds=$tmp/commands.txt
rows=$tmp/rows.txt
: >"$rows"
open=(--rate "$rate" --conns 4 -d "$duration" --get-ratio 0 --key-size "$ksize"
      --value-size "$vsize" --timeout 2 -q --json)
[ "$spin" != 0 ] && open+=(--spin-us "$spin")
for name in ${servers//,/ }; do
    port=$(bench_free_port)
    start_server "$name" "$port" || continue
    echo "== $name" >&2
    { echo "# $name"; echo "$CMD_SERVER &"; } >>"$cmds"
    # phase 1: not full
    e0=$(evictions "$port")
    a=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" "${open[@]}" --keys "$small" --dist uniform)
    echo "${a[*]}" >>"$cmds"
    timeout $((duration + 60)) "${a[@]}" >"$tmp/$name.notfull.json"
    e1=$(evictions "$port")
    echo "$name not-full $tmp/$name.notfull.json $((e1 - e0))" >>"$rows"
    # fill far past -m, then phase 2: full and evicting
    f=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" --closed --warmup --conns 4 --get-ratio 1 -n 1
       --keys "$big" --key-size "$ksize" --value-size "$vsize" --timeout 5 -q --json)
    echo "${f[*]}   # fill" >>"$cmds"
    timeout 300 "${f[@]}" >/dev/null
    e2=$(evictions "$port")
    b=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" "${open[@]}" --keys "$big" --dist uniform --seed 3)
    echo "${b[*]}" >>"$cmds"
    timeout $((duration + 60)) "${b[@]}" >"$tmp/$name.full.json"
    e3=$(evictions "$port")
    echo "$name full $tmp/$name.full.json $((e3 - e2))" >>"$rows"
    echo "   evictions: not-full phase $((e1 - e0)), fill $((e2 - e1)), full phase $((e3 - e2))" >&2
    bench_stop "$SRV_PID"
done

{
echo "# Write stalls: sets while the store is not full vs full and evicting"
echo
echo "Generated by \`bench/stalls.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr),"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo "Open-loop sets at $rate req/s (Poisson), ${duration} s per phase, 4 connections,"
echo "$ksize B keys, $vsize B values; server \`-t 1 -m $memory\` on CPU $scpu, generator on CPU $bcpu."
echo "Not full: $small keys. Full: after loading $big keys (closed loop), sets over those keys."
echo "Latencies in µs, from the scheduled send time."
echo
$PY - "$rows" <<'EOF'
import json, sys
print("| server | phase | achieved req/s | set p50 | p99 | **p99.9** | **max** | send lag p99 | evictions in phase | errors | timeouts |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
res = {}
for ln in open(sys.argv[1]):
    name, phase, path, ev = ln.split()
    d = json.load(open(path))
    s = d["set_latency_us"]
    lag = d.get("send_lag_us", {}).get("p99", float("nan"))
    res[(name, phase)] = s
    print(f"| {name} | {phase} | {d['achieved_rps']:.0f} | {s['p50']:.0f} | {s['p99']:.0f} | "
          f"**{s['p999']:.0f}** | **{s['max']:.0f}** | {lag:.0f} | {ev} | {d['errors']} | {d['timeouts']} |")
print()
for name in sorted({k[0] for k in res}):
    a, b = res.get((name, "not-full")), res.get((name, "full"))
    if a and b:
        print(f"- {name}: full / not-full p99.9 = {b['p999'] / a['p999']:.2f}, "
              f"max = {b['max'] / a['max']:.2f}")
EOF
echo
echo "Commands (ports were free ports chosen at run time):"
echo
echo '```'
cat "$cmds"
echo '```'
} >"$out"
cat "$out"
rm -rf "$tmp"
