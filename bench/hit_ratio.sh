#!/bin/bash
# hit_ratio.sh - cache quality: hit ratio of percore vs memcached at the same
# memory limit (DESIGN.md "How we measure": hit ratio on a skewed workload at a
# fixed memory limit, against memcached at the same limit).
#
# Every case runs on a freshly started server (-t 1, at each -m of --memory:
# 16, 32 and 64 MB by default; pinned to CPU 0, percore-bench on CPU 1).
# Workload: 1,000,000 keys of 20 bytes,
# fixed 100-byte values, gets only with --miss-set (a miss is followed at once
# by a set of the missed key: a look-aside cache filling itself).
#
#   zipf     Zipf(0.99) key stream, closed loop (4 conns x 4 deep).
#   zipf80   Zipf(0.8), same otherwise.
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
# phase's is listed too.
#
# Beside the live servers, bench/cachesim (build/cachesim) replays a
# generated trace of the same shape (same key count, object size, skew, scan
# share, percore-bench's key order: key id = popularity rank, so the load
# writes the hottest keys first; every key once, then warm + measured
# requests, only the measured ones counted) at the same
# memory sizes and reports Belady's OPT (the optimum), the simulated percore
# store, memcached-charged LRU and S3-FIFO. Targets (issue 18): percore's
# miss ratio <= 0.8 x memcached's at -m 32 and -m 64 on zipf and scan, and
# <= 1.3 x OPT's. Output: a Markdown report (--out) and a PNG beside it
# (miss ratio vs memory, one line per policy, one panel per case; gnuplot).
#
# Only the processes this script starts are stopped, by PID; each run is
# bounded by `timeout`.
#
# usage: bench/hit_ratio.sh [--memory MB[,MB...]] [--keys N] [--warm-requests N]
#          [--requests N] [--rate R] [--scan-frac F] [--value-size V]
#          [--cases LIST] [--servers LIST] [--no-sim] [--out FILE]
#          [--rows FILE] [--case-requests CASE=N[,CASE=N...]]
#   --rows FILE keeps the live results in FILE (appended, one line per
#   case@-m and server; a later run that measures the same one replaces it)
#   and the simulator's in FILE.sim (commands in FILE.cmds), and reports
#   every line of them, so a long proof can be run in parts (e.g.
#   memcached first, percore after a change). --case-requests sets a
#   measured length per case (the report says each case's length).
#   defaults: -m 16,32,64, 1000000 keys, 2000000 warm, 10000000 measured,
#   rate 60000, scan 0.15, value 100, cases zipf,zipf80,uniform,scan, servers
#   percore,memcached, docs/results/hit_ratio.md (+ .png)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${PERCORE_BUILD:-$repo/build}
PERCORE=${PERCORE_SERVER:-$BUILD/percore}
BENCH=${PERCORE_BENCH:-$BUILD/percore-bench}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
PY=/usr/bin/python3
memory=16,32,64
keys=1000000
warm=2000000
requests=10000000
sim=1
CACHESIM=${CACHESIM:-$BUILD/cachesim}
rate=60000
scan_frac=0.15
scan_keys=5000000
vsize=100
ksize=20
cases=zipf,zipf80,uniform,scan
servers=percore,memcached
scpu=0
bcpu=1
out=$repo/docs/results/hit_ratio.md
rows_keep=
case_requests=
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
    --no-sim) sim=0; shift ;;
    --rows) rows_keep=$2; shift 2 ;;
    --case-requests) case_requests=$2; shift 2 ;;
    -h|--help) sed -n '2,55p' "$0"; exit 0 ;;
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
start_server() {        # name port memory
    local name=$1 port=$2 memory=$3 argv
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
: >"$cmds"
scan_rate=$($PY -c "print(int($rate * $scan_frac))")
base=(--get-ratio 1 --miss-set --keys "$keys" --key-size "$ksize" --value-size "$vsize" --timeout 5 -q --json)

# measured requests of case $1: --case-requests's, else --requests
all_requests=$requests
reqs_of() {
    local kv
    for kv in ${case_requests//,/ }; do
        [ "${kv%%=*}" = "$1" ] && { echo "${kv#*=}"; return; }
    done
    echo "$all_requests"
}

for mem in ${memory//,/ }; do
for c in ${cases//,/ }; do
    requests=$(reqs_of "$c")
    for name in ${servers//,/ }; do
        port=$(bench_free_port)
        start_server "$name" "$port" "$mem" || continue
        echo "== -m $mem / $c / $name" >&2
        echo "# -m $mem / $c / $name" >>"$cmds"
        echo "$CMD_SERVER &" >>"$cmds"
        case $c in
        zipf|zipf80|uniform)
            case $c in
            zipf) dist=(--dist zipf --skew 0.99) ;;
            zipf80) dist=(--dist zipf --skew 0.8) ;;
            *) dist=(--dist uniform) ;;
            esac
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
        echo "$c@$mem $name $mhr $whr $mgets $mfills $mrps $merr $mto $(stat_of "$st" curr_items) $(stat_of "$st" evictions) $((t1 - t0)) ${scan_hr// /,} $requests" >>"$rows"
        echo "   measured hit ratio $mhr (warm $whr), errors $merr timeouts $mto, curr_items $(stat_of "$st" curr_items), scan: $scan_hr" >&2
        bench_stop "$SRV_PID"
    done
done
done
requests=$all_requests
# --rows: KEPT keeps earlier parts' lines unless NEW has a line with the same
# first NKEY fields; NEW's lines follow, and both files end up holding it all.
merge_kept() { # NEW KEPT NKEY
    touch "$2"
    awk -v n="$3" 'function key(  k, i) { k = $1; for (i = 2; i <= n; i++) k = k " " $i; return k }
        FILENAME == ARGV[1] { seen[key()] = 1; next } !(key() in seen)' "$1" "$2" >"$tmp/old_kept"
    cat "$tmp/old_kept" "$1" >"$2"
    cp "$2" "$1"
}
if [ -n "$rows_keep" ]; then
    merge_kept "$rows" "$rows_keep" 2    # case@-m and server
fi

# ---------------------------------------------------------------- simulator
# The same workload shapes, replayed by bench/cachesim at the same sizes.
simrows=$tmp/sim.tsv
: >"$simrows"
if [ "$sim" = 1 ] && [ -x "$CACHESIM" ]; then
    sizes=$(for m in ${memory//,/ }; do printf '%sM,' "$m"; done); sizes=${sizes%,}
    for c in ${cases//,/ }; do
        requests=$(reqs_of "$c")
        case $c in
        zipf) g=(--gen zipf --alpha 0.99) ;;
        zipf80) g=(--gen zipf --alpha 0.8) ;;
        uniform) g=(--gen zipf --alpha 0) ;;
        scan) g=(--gen scan --alpha 0.99 --scan-keys "$scan_keys" --count-below "$keys"
                 --scan-frac "$($PY -c "print(round($scan_frac / (1 + $scan_frac), 4))")") ;;
        esac
        sc=("$CACHESIM" "${g[@]}" --keys "$keys" --size $((ksize + vsize)) --prefill --hot-first
            --requests $((warm + requests)) --warmup $((keys + warm)) --sizes "$sizes" --policies percore,lru-mc,s3fifo,opt --tsv)
        echo "# cachesim / $c" >>"$cmds"
        echo "${sc[*]}" >>"$cmds"
        echo "== cachesim $c" >&2
        timeout 1800 "${sc[@]}" | awk -v c="$c" '$4 != "NA" { printf "%s %d %s %s\n", c, $2 / 1048576, $3, $4 }' >>"$simrows" || true
    done
    requests=$all_requests
fi
if [ -n "$rows_keep" ]; then
    # the simulator's rows too (FILE.sim), replaced per case, size and policy
    merge_kept "$simrows" "$rows_keep.sim" 3
    # and every part's commands (FILE.cmds), each part under its date
    { echo "# ---- part run $(date -u '+%Y-%m-%d %H:%M UTC')"; cat "$cmds"; } >>"$rows_keep.cmds"
    cp "$rows_keep.cmds" "$cmds"
fi

# ---------------------------------------------------------------- report
{
echo "# Hit ratio: percore vs memcached"
echo
echo "Generated by \`bench/hit_ratio.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
echo "$(uname -sr), $(nproc) CPUs. Each case on a fresh server, \`-t 1\`, \`-m\` $memory,"
echo "pinned to CPU $scpu; percore-bench on CPU $bcpu. $keys keys of $ksize B, values"
echo "fixed $vsize B; gets with \`--miss-set\` (fill on miss). Warm phase: \`--warmup\`"
echo "(every key set once) + $warm requests; measured phase: $requests requests${case_requests:+ (per case: $case_requests; the Details table's last column is each run's length)}."
echo "Scan case: the Zipf stream open loop at $rate req/s, plus a concurrent"
echo "uniform stream over a separate $scan_keys-key space at $scan_rate req/s"
echo "(${scan_frac} of the Zipf rate) with \`--miss-set\`, through both phases."
echo
$PY - "$rows" "$simrows" "$tmp/plot.dat" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
sim = [l.split() for l in open(sys.argv[2]) if l.strip()]
live, simd, cases, mems = {}, {}, [], []
for r in rows:
    c, m = r[0].split("@")
    live[(c, int(m), r[1])] = float(r[2])
    if c not in cases: cases.append(c)
    if int(m) not in mems: mems.append(int(m))
for c, m, pol, mr in sim:
    simd[(c, int(m), pol)] = float(mr)
miss = lambda hr: None if hr is None else 1.0 - hr
f4 = lambda x: "-" if x is None else f"{x:.4f}"
f2 = lambda x: "-" if x is None else f"{x:.2f}"
print("Miss ratios (1 − hit ratio) of the measured phase; OPT, S3-FIFO, the memcached-charged")
print("LRU and the store itself simulated by `bench/cachesim` on a generated trace of the")
print("same shape (scan: the Zipf stream's requests counted, as for the live servers).")
print()
print("| case | -m | percore | memcached | percore / memcached | OPT (sim) | percore / OPT | percore store (sim) | S3-FIFO (sim) | memcached-cost LRU (sim) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
plot = open(sys.argv[3], "w")
for c in cases:
    for m in sorted(mems):
        p = miss(live.get((c, m, "percore")))
        mc = miss(live.get((c, m, "memcached")))
        o = simd.get((c, m, "opt"))
        r1 = p / mc if p is not None and mc else None
        r2 = p / o if p is not None and o else None
        print(f"| {c} | {m} | **{f4(p)}** | {f4(mc)} | {f2(r1)} | {f4(o)} | {f2(r2)} | "
              f"{f4(simd.get((c, m, 'percore')))} | {f4(simd.get((c, m, 's3fifo')))} | {f4(simd.get((c, m, 'lru-mc')))} |")
        vals = [p, mc, o, simd.get((c, m, "s3fifo")), simd.get((c, m, "percore"))]
        plot.write(f"{c} {m} " + " ".join("NaN" if v is None else f"{v:.6f}" for v in vals) + "\n")
print()
print("Targets (issue 18), at -m 32 and -m 64 on zipf and scan: percore / memcached ≤ 0.8,")
print("percore / OPT ≤ 1.3.")
print()
for c in ("zipf", "scan"):
    for m in (32, 64):
        p = miss(live.get((c, m, "percore"))); mc = miss(live.get((c, m, "memcached")))
        o = simd.get((c, m, "opt"))
        if p is None:
            continue
        a = "met" if mc and p <= 0.8 * mc else "MISSED"
        b = "met" if o and p <= 1.3 * o else "MISSED"
        print(f"- {c}, -m {m}: percore / memcached {f2(p / mc if mc else None)} ({a}); percore / OPT {f2(p / o if o else None)} ({b})")
print()
print("Details (measured phase unless noted):")
print()
print("| case@-m | server | hit ratio | warm-phase hit ratio | gets | fills | achieved req/s | errors | timeouts | curr_items at end | evictions at end | seconds | scan: hit ratio, gets, fills, req/s, errors, timeouts | measured requests |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for r in rows:
    print("| " + " | ".join(r[:14]).replace(",", ", ") + " |")
EOF
png=${out%.md}.png
if command -v gnuplot >/dev/null && [ -s "$tmp/plot.dat" ]; then
    {
        echo "set terminal pngcairo size 1200,900 noenhanced"
        echo "set output '$png'"
        echo "set multiplot layout 2,2 title 'miss ratio vs -m: percore and memcached live; OPT, S3-FIFO and the store simulated (bench/cachesim)'"
        for c in $(awk '!seen[$1]++ {print $1}' "$tmp/plot.dat"); do
            awk -v c="$c" '$1 == c' "$tmp/plot.dat" >"$tmp/plot.$c"
            echo "set title '$c'; set xlabel '-m (MB)'; set ylabel 'miss ratio'; set grid; set key top right; set yrange [0:*]"
            echo "plot '$tmp/plot.$c' u 2:3 w lp lw 2 pt 7 t 'percore (live)', '' u 2:4 w lp lw 2 pt 5 t 'memcached (live)', '' u 2:5 w lp lw 2 pt 9 dt 2 t 'OPT (sim)', '' u 2:6 w lp lw 1 pt 3 dt 3 t 'S3-FIFO (sim)', '' u 2:7 w lp lw 1 pt 1 dt 4 t 'percore store (sim)'"
        done
        echo "unset multiplot"
    } | gnuplot && { echo; echo "Plot (miss ratio vs -m, one line per policy): \`$(basename "$png")\`."; } || true
fi
echo
echo "Commands (ports were free ports chosen at run time):"
echo
echo '```'
cat "$cmds"
echo '```'
} >"$out"
cat "$out"
rm -rf "$tmp"
