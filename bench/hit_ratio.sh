#!/bin/bash
# hit_ratio.sh - cache quality: hit ratio of percore vs memcached at the same
# memory limit (DESIGN.md "How we measure": hit ratio on a skewed workload at a
# fixed memory limit, against memcached at the same limit).
#
# Every case runs on a freshly started server (-t 1, -m 64 by default, pinned
# to CPU 0; percore-bench on CPU 1). Workload: 1,000,000 keys of 20 bytes,
# fixed 100-byte values, gets only with --miss-set (a miss is followed at once
# by a set of the missed key: a look-aside cache filling itself).
#
#   zipf     Zipf(0.99) key stream, closed loop (4 conns x 4 deep).
#   uniform  uniform key stream, same otherwise.
#   scan     the Zipf stream, open loop at --rate R, while a second
#            percore-bench runs concurrently (open loop, R x --scan-frac) over a
#            separate keyspace of 5,000,000 keys (21-byte keys, so no key is
#            shared with the Zipf stream), uniform, gets with --miss-set: every
#            access is almost surely a first touch, so it is a scan that inserts
#            one never-reused item per request. It runs for the whole warm +
#            measured phases of the Zipf stream.
#
# Phases per case: warm = --warmup (every key set once, in id order, so the
# cache starts full and evicting) + --warm-requests requests (seed 1); then
# measured = --requests requests (seed 2) on the same, still running server.
# The reported hit ratio is the measured phase's (steady state); the warm
# phase's is listed too. Target (issue 3): percore >= memcached in each case.
#
# Only the processes this script starts are stopped, by PID; each run is
# bounded by `timeout`.
#
# usage: bench/hit_ratio.sh [--memory MB] [--keys N] [--warm-requests N]
#          [--requests N] [--rate R] [--scan-frac F] [--value-size V]
#          [--cases LIST] [--servers LIST] [--out FILE]
#   defaults: -m 64, 1000000 keys, 2000000 warm, 3000000 measured, rate 60000,
#   scan 0.15, value 100, cases zipf,uniform,scan, servers percore,memcached,
#   docs/results/hit_ratio.md
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${PERCORE_BUILD:-$repo/build}
PERCORE=${PERCORE_SERVER:-$BUILD/percore}
BENCH=${PERCORE_BENCH:-$BUILD/percore-bench}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
PY=/usr/bin/python3
memory=64
keys=1000000
warm=2000000
requests=3000000
rate=60000
scan_frac=0.15
scan_keys=5000000
vsize=100
ksize=20
cases=zipf,uniform,scan
servers=percore,memcached
scpu=0
bcpu=1
out=$repo/docs/results/hit_ratio.md
while [ $# -gt 0 ]; do
    case $1 in
    --memory) memory=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --warm-requests) warm=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --scan-frac) scan_frac=$2; shift 2 ;;
    --value-size) vsize=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
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

SRV_PID=
CMD_SERVER=
start_server() {        # name port
    local name=$1 port=$2 argv
    local common=(-p "$port" -l 127.0.0.1 -U 0 -m "$memory" -t 1 -c 1024)
    if [ "$name" = memcached ]; then
        argv=("$MEMCACHED" "${common[@]}")
        [ "$(id -u)" = 0 ] && argv+=(-u root)
    else
        argv=("$PERCORE" "${common[@]}")
    fi
    bench_start "$name" "$scpu" - "${argv[@]}"
    SRV_PID=$BENCH_PID
    CMD_SERVER=$BENCH_CMD
    bench_wait "$port" 10
}

jget() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(d[k]) for k in sys.argv[2:]))' "$@"; }

# ---------------------------------------------------------------- run
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
cmds=$tmp/commands.txt
rows=$tmp/rows.txt
: >"$rows"
scan_rate=$($PY -c "print(int($rate * $scan_frac))")
base=(--get-ratio 1 --miss-set --keys "$keys" --key-size "$ksize" --value-size "$vsize" --timeout 5 -q --json)

for c in ${cases//,/ }; do
    for name in ${servers//,/ }; do
        port=$(bench_free_port)
        start_server "$name" "$port" || continue
        echo "== $c / $name" >&2
        echo "# $c / $name" >>"$cmds"
        echo "$CMD_SERVER &" >>"$cmds"
        case $c in
        zipf|uniform)
            dist=(--dist "$c"); [ "$c" = zipf ] && dist+=(--skew 0.99)
            mode=(--closed --conns 4 --depth 4)
            ;;
        scan)
            dist=(--dist zipf --skew 0.99)
            mode=(--rate "$rate" --conns 8 -d $(( (warm + requests) / rate + 60 )))
            scan_s=$($PY -c "print(round(($warm + $requests) / $rate + 3))")
            scan=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" --rate "$scan_rate" --conns 2
                  --get-ratio 1 --miss-set --dist uniform --keys "$scan_keys" --key-size $((ksize + 1))
                  --value-size "$vsize" -d "$scan_s" --timeout 5 -q --json)
            echo "${scan[*]} &   # concurrent scan" >>"$cmds"
            timeout $((scan_s + 30)) "${scan[@]}" >"$tmp/$c.$name.scan.json" &
            scan_pid=$!
            bench_track "$scan_pid"
            ;;
        *) echo "unknown case $c" >&2; exit 2 ;;
        esac
        w=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" "${mode[@]}" "${dist[@]}" "${base[@]}" --warmup -n "$warm" --seed 1)
        m=(taskset -c "$bcpu" "$BENCH" -s "127.0.0.1:$port" "${mode[@]}" "${dist[@]}" "${base[@]}" -n "$requests" --seed 2)
        echo "${w[*]}" >>"$cmds"
        echo "${m[*]}" >>"$cmds"
        t0=$(date +%s)
        timeout 600 "${w[@]}" >"$tmp/$c.$name.warm.json"
        timeout 600 "${m[@]}" >"$tmp/$c.$name.meas.json"
        t1=$(date +%s)
        scan_hr="-"
        if [ "$c" = scan ]; then
            wait "$scan_pid" || true
            bench_stop "$scan_pid"   # reaped: forget it, so the exit trap never signals a reused PID
            scan_hr=$(jget "$tmp/$c.$name.scan.json" hit_ratio gets fills achieved_rps errors timeouts)
        fi
        st=$(stats "$port")
        read -r whr <<<"$(jget "$tmp/$c.$name.warm.json" hit_ratio)"
        read -r mhr mgets mfills mrps merr mto <<<"$(jget "$tmp/$c.$name.meas.json" hit_ratio gets fills achieved_rps errors timeouts)"
        echo "$c $name $mhr $whr $mgets $mfills $mrps $merr $mto $(stat_of "$st" curr_items) $(stat_of "$st" evictions) $((t1 - t0)) ${scan_hr// /,}" >>"$rows"
        echo "   measured hit ratio $mhr (warm $whr), errors $merr timeouts $mto, curr_items $(stat_of "$st" curr_items), scan: $scan_hr" >&2
        bench_stop "$SRV_PID"
    done
done

# ---------------------------------------------------------------- report
{
echo "# Hit ratio: percore vs memcached"
echo
echo "Generated by \`bench/hit_ratio.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
echo "$(uname -sr), $(nproc) CPUs. Each case on a fresh server, \`-t 1 -m $memory\`,"
echo "pinned to CPU $scpu; percore-bench on CPU $bcpu. $keys keys of $ksize B, values"
echo "fixed $vsize B; gets with \`--miss-set\` (fill on miss). Warm phase: \`--warmup\`"
echo "(every key set once) + $warm requests; measured phase: $requests requests."
echo "Scan case: the Zipf stream open loop at $rate req/s, plus a concurrent"
echo "uniform stream over a separate $scan_keys-key space at $scan_rate req/s"
echo "(${scan_frac} of the Zipf rate) with \`--miss-set\`, through both phases."
echo
$PY - "$rows" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r[0], {})[r[1]] = r
print("| case | percore | memcached | percore − memcached | target (≥) |")
print("|---|---:|---:|---:|---|")
for c, d in by.items():
    p = float(d["percore"][2]) if "percore" in d else None
    m = float(d["memcached"][2]) if "memcached" in d else None
    diff = f"{p - m:+.4f}" if p is not None and m is not None else ""
    ok = ("met" if p >= m else "MISSED") if p is not None and m is not None else ""
    fmt = lambda x: f"**{x:.4f}**" if x is not None else "-"
    print(f"| {c} | {fmt(p)} | {fmt(m)} | {diff} | {ok} |")
print()
print("Details (measured phase unless noted):")
print()
print("| case | server | hit ratio | warm-phase hit ratio | gets | fills | achieved req/s | errors | timeouts | curr_items at end | evictions at end | seconds | scan: hit ratio, gets, fills, req/s, errors, timeouts |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    print("| " + " | ".join(r[:13]).replace(",", ", ") + " |")
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
