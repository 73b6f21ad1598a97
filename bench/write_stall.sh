#!/bin/bash
# write_stall.sh - do sets stall when the store is full and evicting?
# (issue 18 point 4: p99.9 of sets when full <= when not full)
#
# Open-loop sets (percore-bench, Poisson arrivals at a fixed moderate rate,
# latency from the scheduled send time, so a stall is charged to every request
# it delays). Per server, two instances run side by side, both pinned to CPU 0
# (the generator on CPU 1), and the phases alternate between them for
# --rounds rounds, so slow drift of a shared machine hits both alike:
#
#   not-full  instance A: sets over a small keyspace (--small-keys, default
#             100,000 keys of 20 B + 100 B values = 12 MB, far below -m) for
#             --duration s; the script checks that evictions did not move.
#   full      instance B, loaded first (closed loop) with --big-keys (default
#             2,000,000 keys, ~4x -m 64) so it is full: the same open-loop
#             sets over those keys; nearly every set needs memory, so percore
#             drops or promotes probation segments and memcached evicts from
#             its LRU.
#   mixed     instance B again (with --mixed): Zipf(0.99) traffic over the big
#             keyspace, --mixed-get-ratio gets (default 0.9) with fill on
#             miss, the rest sets. Reads make probation promote items, so
#             percore's main-log merges (the expensive step: several segments
#             walked, hot items copied) run too; the set latency is reported.
#
# Per server, phase and round: achieved rate, set latency p50/p99/p99.9/max
# (us), the generator's send lag p99 (large: the machine, not the server, was
# late), evictions and percore's evicted/merged segment counters during the
# phase, errors/timeouts; then the median over rounds of p99.9 per phase and
# the verdict full (and mixed) p99.9 <= not-full p99.9. For percore also the
# server-side set latency of each phase (`stats latency`: the write itself,
# eviction work included, without the machine's scheduling of the network
# path, which sets the client-side tail on a shared VM). Wall time is about
# rounds x phases x (duration + 2) s + the fills; every command is bounded by
# `timeout`. Results go to --out (default docs/results/write_stall.md). Timing
# numbers mean something only on a quiet machine.
#
# Only the processes this script starts are stopped, by PID.
#
# usage: bench/write_stall.sh [--rate R] [--duration S] [--rounds N]
#          [--memory MB] [--small-keys N] [--big-keys N] [--value-size V]
#          [--mixed] [--mixed-get-ratio F] [--servers LIST] [--spin-us N]
#          [--percore-args "ARGS"] [--out FILE]
#   defaults: rate 20000, 10 s, 3 rounds, -m 64, 100000 / 2000000 keys,
#   100 B values, no mixed phase, servers percore,memcached
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
rounds=3
memory=64
small=100000
big=2000000
vsize=100
ksize=20
spin=0
mixed=0
mixed_gets=0.9
servers=percore,memcached
pargs=
scpu=0
bcpu=1
out=$repo/docs/results/write_stall.md
while [ $# -gt 0 ]; do
    case $1 in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --small-keys) small=$2; shift 2 ;;
    --big-keys) big=$2; shift 2 ;;
    --value-size) vsize=$2; shift 2 ;;
    --spin-us) spin=$2; shift 2 ;;
    --mixed) mixed=1; shift ;;
    --mixed-get-ratio) mixed_gets=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --percore-args) pargs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case $rounds in ''|*[!0-9]*|0) echo "--rounds must be a positive integer" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- helpers
# Servers are started, waited for and stopped by bench/lib.sh (by PID only;
# TERM, then KILL after 5 s).
. "$here/lib.sh"
BENCH_STOP_WAIT_TENTHS=50
bench_init
# evictions and (percore only, else 0) store_evicted_segments, store_merged_items
counters() {
    bench_stats "$1" | awk '$1 == "evictions" { e = $2 } $1 == "store_evicted_segments" { s = $2 }
                            $1 == "store_merged_items" { m = $2 }
                            END { printf "%d %d %d\n", e, s, m }'
}

start_server() {        # name port -> SRV_PID, CMD_SERVER
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
open=(--rate "$rate" --conns 4 -d "$duration" --key-size "$ksize"
      --value-size "$vsize" --timeout 2 -q --json)
[ "$spin" != 0 ] && open+=(--spin-us "$spin")
phases="not-full full"
[ "$mixed" = 1 ] && phases="$phases mixed"

# percore's own view of a phase: `stats latency reset` before it, then the
# set class's server-side execution time (parse to reply queued: the store
# write with any eviction work it did inline) p99.9 and max in µs after it,
# "- -" for memcached. The machine's scheduling stalls, which set the
# client-side tail here, do not reach this figure unless they preempt the
# write itself.
srv_lat() {     # port reset|read
    if [ "$2" = reset ]; then
        bench_stats "$1" "latency reset" >/dev/null
    else
        bench_stats "$1" latency | awk '$1 == "set:local:p99.9_us" { p = $2 } $1 == "set:local:max_us" { m = $2 }
                                       END { print (p == "" ? "-" : p), (m == "" ? "-" : m) }'
    fi
}

phase() {       # server name port round -> one row
    local name=$1 ph=$2 port=$3 r=$4 c0 c1 a
    case $ph in
    not-full) a=(--get-ratio 0 --keys "$small" --dist uniform --seed $((10 + r))) ;;
    full) a=(--get-ratio 0 --keys "$big" --dist uniform --seed $((20 + r))) ;;
    mixed) a=(--get-ratio "$mixed_gets" --miss-set --keys "$big" --dist zipf --skew 0.99 --seed $((30 + r))) ;;
    esac
    local cmd=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" "${open[@]}" "${a[@]}")
    echo "${cmd[*]}   # $ph, round $r" >>"$cmds"
    c0=$(counters "$port")
    local sl="- -"
    [ "$name" = percore ] && srv_lat "$port" reset
    timeout $((duration + 60)) "${cmd[@]}" >"$tmp/$name.$ph.$r.json"
    [ "$name" = percore ] && sl=$(srv_lat "$port" read)
    c1=$(counters "$port")
    echo "$name $ph $r $tmp/$name.$ph.$r.json $c0 $c1 $sl" >>"$rows"
    echo "   $name $ph round $r done" >&2
}

for name in ${servers//,/ }; do
    pa=$(bench_free_port)
    start_server "$name" "$pa" || continue
    pid_a=$SRV_PID
    { echo "# $name: instance A (not full)"; echo "$CMD_SERVER &"; } >>"$cmds"
    pb=$(bench_free_port)
    start_server "$name" "$pb" || { bench_stop "$pid_a"; continue; }
    pid_b=$SRV_PID
    { echo "# $name: instance B (full)"; echo "$CMD_SERVER &"; } >>"$cmds"
    echo "== $name: filling instance B with $big keys" >&2
    f=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$pb" --closed --warmup --conns 4 --get-ratio 1 -n 1
       --keys "$big" --key-size "$ksize" --value-size "$vsize" --timeout 5 -q --json)
    echo "${f[*]}   # fill B" >>"$cmds"
    timeout 600 "${f[@]}" >/dev/null
    for ((r = 1; r <= rounds; r++)); do
        for ph in $phases; do
            if [ "$ph" = not-full ]; then phase "$name" "$ph" "$pa" "$r"; else phase "$name" "$ph" "$pb" "$r"; fi
        done
    done
    bench_stop "$pid_b"
    bench_stop "$pid_a"
done

{
echo "# Write stalls: sets while the store is not full vs full and evicting"
echo
echo "Generated by \`bench/write_stall.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -sr),"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo "Open-loop sets at $rate req/s (Poisson), ${duration} s per phase, $rounds round(s), 4 connections,"
echo "$ksize B keys, $vsize B values; servers \`-t 1 -m $memory\` on CPU $scpu, generator on CPU $bcpu."
echo "Not full: $small keys (instance A). Full: instance B after loading $big keys (closed loop),"
echo "sets over those keys.${mixed/1/ Mixed: instance B, Zipf 0.99, $mixed_gets gets with fill on miss, the rest sets.}"
echo "Latencies in µs, from the scheduled send time; the set latency of each phase."
echo
$PY - "$rows" <<'EOF'
import json, statistics, sys
print("| server | phase | round | achieved req/s | set p50 | p99 | **p99.9** | **max** | send lag p99 | server-side set p99.9 | server-side set max | evictions | evicted segments | merged items | errors | timeouts |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
p999 = {}
srv = {}
for ln in open(sys.argv[1]):
    f = ln.split()
    name, phase, rnd, path = f[:4]
    c0, c1 = list(map(int, f[4:7])), list(map(int, f[7:10]))
    d = json.load(open(path))
    s = d["set_latency_us"]
    lag = d.get("send_lag_us", {}).get("p99", float("nan"))
    p999.setdefault((name, phase), []).append(s["p999"])
    sp, sm = (f[10], f[11]) if len(f) >= 12 else ("-", "-")
    if sp != "-":
        srv.setdefault((name, phase), []).append((float(sp), float(sm)))
    print(f"| {name} | {phase} | {rnd} | {d['achieved_rps']:.0f} | {s['p50']:.0f} | {s['p99']:.0f} | "
          f"**{s['p999']:.0f}** | **{s['max']:.0f}** | {lag:.0f} | {sp} | {sm} | {c1[0] - c0[0]} | {c1[1] - c0[1]} | "
          f"{c1[2] - c0[2]} | {d['errors']} | {d['timeouts']} |")
print()
print("Median p99.9 over rounds; target (issue 18): full and mixed ≤ not full.")
print()
for name in sorted({k[0] for k in p999}):
    base = p999.get((name, "not-full"))
    if not base:
        continue
    b = statistics.median(base)
    for ph in ("full", "mixed"):
        v = p999.get((name, ph))
        if v:
            m = statistics.median(v)
            verdict = "met" if m <= b else "MISSED"
            print(f"- {name}: {ph} / not-full p99.9 = {m:.0f} / {b:.0f} µs = {m / b:.2f} ({verdict})")
print()
if srv:
    print("Server-side (percore's `stats latency`, set class, local path: from the")
    print("request parsed to its reply queued, so the store write and any eviction work")
    print("done inside it; medians over rounds, µs):")
    print()
    for name in sorted({k[0] for k in srv}):
        for ph in ("not-full", "full", "mixed"):
            v = srv.get((name, ph))
            if v:
                print(f"- {name} {ph}: p99.9 {statistics.median(x[0] for x in v):.1f}, "
                      f"max {statistics.median(x[1] for x in v):.1f}")
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
