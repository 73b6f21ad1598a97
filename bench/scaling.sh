#!/bin/bash
# scaling.sh - percore against memcached as the worker count grows: for each
# count W, each server runs with W threads pinned to CPUs 0..W-1 and
# percore-bench runs on the CPUs after them. Per server and W: the closed-loop
# peak, then open loop at 50/80/95% of that server's own peak, with p50, p99,
# p99.9 and the server's user and kernel CPU per request (from /proc/PID/stat).
# Servers alternate within a round; the summary takes the median of the rounds.
# Writes scaling.csv (every run), summary.csv and summary.md (medians),
# scaling.png (peak per worker count, p99 at 80% against W) and commands.txt.
# Every run is bounded in time; only servers this script started are stopped,
# by PID (bench/lib.sh).
#
# On a machine with fewer CPUs than W + 1 the generator shares the last CPU
# with the server (the CSV says `shared`): such rows show the trend, not
# dedicated-core numbers. The full run wants >= 12 CPUs (W = 8, 4 for load).
#
# usage: bench/scaling.sh [options]
#   --workers LIST     worker counts (default: 1,2,4,8 up to the CPU count)
#   --servers LIST     subset of percore,memcached (default both)
#   --rounds N         rounds, servers alternating within each (default 3)
#   --duration S       seconds per open-loop point (default 5)
#   --peak-duration S  seconds of each closed-loop peak run (default 5)
#   --loads LIST       percentages of each server's peak (default 50,80,95)
#   --gen-cpus N       CPUs for the generator when there are enough (default 4)
#   --conns C          connections per generator thread (default 16)
#   --depth D          closed-loop outstanding per connection for the peak (default 8)
#   --keys N           key space, preloaded (default 100000)
#   --value-size V     value size (default 100)
#   --memory MB        server -m (default 1024)
#   --io BACKEND       percore --io (default: percore's default)
#   --out DIR          results folder (default bench-results/scaling-DATE)
#   --replot DIR       only redo summary and plot from DIR/scaling.csv
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
PY=${PY:-/usr/bin/python3}
ncpu=$(nproc)

workers=
servers=percore,memcached
rounds=3
duration=5
peak_duration=5
loads=50,80,95
gen_cpus=4
conns=16
depth=8
keys=100000
value_size=100
memory=1024
io=
out=
replot=0
orig_args=("$@")
while [ $# -gt 0 ]; do
    case $1 in
    --workers) workers=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --peak-duration) peak_duration=$2; shift 2 ;;
    --loads) loads=$2; shift 2 ;;
    --gen-cpus) gen_cpus=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --replot) out=$2; replot=1; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "scaling.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$workers" ]; then
    workers=
    for w in 1 2 4 8; do
        [ "$w" -le "$ncpu" ] && workers=${workers:+$workers,}$w
    done
fi
[ -x "$BENCH" ] || { echo "scaling.sh: $BENCH not built (make)" >&2; exit 1; }
out=${out:-bench-results/scaling-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
bench_init
CLK=$(getconf CLK_TCK)

server_cmd() { # name workers port
    case $1 in
    percore) printf '%s\n' "$BUILD/percore" -p "$3" -l 127.0.0.1 -t "$2" -m "$memory" -U 0 \
                 ${io:+--io "$io"} ;;
    memcached)
        local a=(/usr/bin/memcached -p "$3" -l 127.0.0.1 -t "$2" -m "$memory" -U 0)
        [ "$(id -u)" = 0 ] && a+=(-u root)
        printf '%s\n' "${a[@]}" ;;
    esac
}

avail=()
IFS=, read -ra want <<< "$servers"
for s in "${want[@]}"; do
    case $s in
    percore) [ -x "$BUILD/percore" ] && avail+=(percore) || bench_log "SKIP percore: $BUILD/percore not built" ;;
    memcached) [ -x /usr/bin/memcached ] && avail+=(memcached) || bench_log "SKIP memcached: not installed" ;;
    *) bench_log "unknown server $s" ;;
    esac
done
[ ${#avail[@]} -gt 0 ] || { echo "scaling.sh: no server to measure" >&2; exit 1; }

# CPUs: server 0..W-1; generator the next ones, or the last CPU when none is left.
cpus_of() { # workers -> "server_cpus gen_cpus gen_threads placement"
    local w=$1 s g n
    s="0-$((w - 1))"
    if [ $((w + 1)) -le "$ncpu" ]; then
        n=$((ncpu - w)); [ "$n" -gt "$gen_cpus" ] && n=$gen_cpus
        g="$w-$((w + n - 1))"
        echo "$s $g $n dedicated"
    else
        echo "$s $((ncpu - 1)) 1 shared"
    fi
}


# One measurement: runs percore-bench with the given arguments against the
# server on PORT, prints "achieved p50 p99 p999 user_us sys_us" (per request).
measure() { # pid port gcpus gthreads args...
    local pid=$1 port=$2 gc=$3 gt=$4; shift 4
    local u0 s0 u1 s1 j
    read -r u0 s0 < <(bench_cpu_ticks "$pid")
    j=$(timeout $((duration + peak_duration + 60)) taskset -c "$gc" "$BENCH" -s "127.0.0.1:$port" \
        -t "$gt" -c "$conns" --keys "$keys" --value-size "$value_size" --json -q "$@") || true
    read -r u1 s1 < <(bench_cpu_ticks "$pid")
    J=$j "$PY" - "$u0" "$s0" "$u1" "$s1" "$CLK" <<'EOF'
import json, os, sys
u0, s0, u1, s1, clk = map(int, sys.argv[1:])
try:
    r = json.loads(os.environ["J"].strip().splitlines()[-1])
except Exception:
    print("0 0 0 0 0 0"); sys.exit(0)
n = max(r.get("completed", 0), 1)
L = r.get("latency_us", {})
print("%.0f %.1f %.1f %.1f %.3f %.3f" % (r.get("achieved_rps") or 0, L.get("p50", 0), L.get("p99", 0),
      L.get("p999", 0), (u1 - u0) / clk / n * 1e6, (s1 - s0) / clk / n * 1e6))
EOF
}

csv=$out/scaling.csv
IFS=, read -ra wlist <<< "$workers"
IFS=, read -ra llist <<< "$loads"
[ "$replot" = 1 ] && rounds=$(awk -F, 'NR > 1 && $1 > r { r = $1 } END { print r + 0 }' "$csv")
[ "$replot" = 1 ] || {
echo "round,server,workers,placement,load_pct,offered,achieved,p50_us,p99_us,p999_us,user_us_per_req,sys_us_per_req" > "$csv"
{
    echo "# $(date -u +%FT%TZ) $(uname -r), $ncpu CPUs"
    echo "bench/scaling.sh ${orig_args[*]}"
} > "$out/commands.txt"

for ((r = 1; r <= rounds; r++)); do
    for w in "${wlist[@]}"; do
        read -r scpu gcpu gthr place < <(cpus_of "$w")
        # Alternate which server goes first from round to round.
        order=("${avail[@]}")
        if [ $((r % 2)) = 0 ]; then
            order=(); for ((i = ${#avail[@]} - 1; i >= 0; i--)); do order+=("${avail[$i]}"); done
        fi
        for s in "${order[@]}"; do
            port=$(bench_free_port)
            mapfile -t cmd < <(server_cmd "$s" "$w" "$port")
            bench_start "$s" "$scpu" "$out/$s.w$w.r$r.log" "${cmd[@]}"
            echo "$BENCH_CMD" >> "$out/commands.txt"
            pid=$BENCH_PID
            bench_wait "$port" 15 || continue
            # Preload every key (closed loop), not measured.
            timeout 120 taskset -c "$gcpu" "$BENCH" -s "127.0.0.1:$port" --closed --warmup \
                --keys "$keys" --value-size "$value_size" -n 1 -q > /dev/null 2>&1 || true
            read -r peak p50 p99 p999 uu su < <(measure "$pid" "$port" "$gcpu" "$gthr" \
                --closed --depth "$depth" -d "$peak_duration")
            echo "$r,$s,$w,$place,peak,0,$peak,$p50,$p99,$p999,$uu,$su" >> "$csv"
            bench_log "round $r $s W=$w ($place): peak $peak req/s"
            for pct in "${llist[@]}"; do
                rate=$((peak * pct / 100))
                [ "$rate" -gt 0 ] || continue
                read -r ach p50 p99 p999 uu su < <(measure "$pid" "$port" "$gcpu" "$gthr" \
                    -r "$rate" -d "$duration")
                echo "$r,$s,$w,$place,$pct,$rate,$ach,$p50,$p99,$p999,$uu,$su" >> "$csv"
                bench_log "round $r $s W=$w: $pct% ($rate/s) p50 $p50 p99 $p99 p99.9 $p999 us, user $uu sys $su us/req"
            done
            bench_stop "$pid"
        done
    done
done
}

# Medians over rounds, a markdown table and the plot.
"$PY" - "$csv" "$out" <<'EOF'
import csv, statistics, sys, os
rows = list(csv.DictReader(open(sys.argv[1])))
out = sys.argv[2]
groups = {}
for r in rows:
    groups.setdefault((r["server"], int(r["workers"]), r["placement"], r["load_pct"]), []).append(r)
def med(rs, k):
    return statistics.median(float(x[k]) for x in rs)
keys = ["offered", "achieved", "p50_us", "p99_us", "p999_us", "user_us_per_req", "sys_us_per_req"]
with open(os.path.join(out, "summary.csv"), "w") as f:
    f.write("server,workers,placement,load_pct," + ",".join(keys) + ",rounds\n")
    for g in sorted(groups, key=lambda g: (g[0], g[1], g[3] != "peak", g[3])):
        rs = groups[g]
        f.write(",".join(map(str, g)) + "," + ",".join("%.1f" % med(rs, k) for k in keys) + ",%d\n" % len(rs))
L = ["| server | W | CPUs | load | achieved req/s | p50 µs | p99 µs | p99.9 µs | user µs/req | sys µs/req |",
     "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
for g in sorted(groups, key=lambda g: (g[1], g[0], g[3] != "peak", g[3])):
    rs = groups[g]
    L.append("| %s | %d | %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |" % (
        g[0], g[1], g[2], g[3] if g[3] == "peak" else g[3] + "%", med(rs, "achieved"), med(rs, "p50_us"),
        med(rs, "p99_us"), med(rs, "p999_us"), med(rs, "user_us_per_req"), med(rs, "sys_us_per_req")))
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
# data for the plot: per server, W -> peak, p99 at 80%
with open(os.path.join(out, "plot.dat"), "w") as f:
    for s in sorted({g[0] for g in groups}):
        f.write("# %s\n" % s)
        for w in sorted({g[1] for g in groups if g[0] == s}):
            pk = [groups[g] for g in groups if g[0] == s and g[1] == w and g[3] == "peak"]
            p80 = [groups[g] for g in groups if g[0] == s and g[1] == w and g[3] == "80"]
            f.write("%d %.0f %.1f\n" % (w, med(pk[0], "achieved") if pk else 0,
                                        med(p80[0], "p99_us") if p80 else 0))
        f.write("\n\n")
EOF
if command -v gnuplot >/dev/null; then
    names=$(grep '^# ' "$out/plot.dat" | sed 's/^# //')
    p1=(); p2=(); i=0
    for s in $names; do
        p1+=("'$out/plot.dat' index $i using 1:2 with linespoints lw 2 pt 7 title '$s'")
        p2+=("'$out/plot.dat' index $i using 1:3 with linespoints lw 2 pt 7 title '$s'")
        i=$((i + 1))
    done
    gnuplot <<GP || bench_log "gnuplot failed"
set terminal pngcairo size 1100,480 noenhanced
set output '$out/scaling.png'
set multiplot layout 1,2 title 'scaling.sh: server on CPUs 0..W-1, generator on the next ones (sharing the last CPU where none is left); $ncpu CPUs, median of $rounds rounds'
set xlabel 'workers'
set xtics 1
set grid
set key top left
set ylabel 'closed-loop peak (req/s)'
plot $(IFS=,; echo "${p1[*]}")
set ylabel 'p99 at 80% of own peak (us)'
plot $(IFS=,; echo "${p2[*]}")
unset multiplot
GP
fi
bench_log "wrote $out (scaling.csv, summary.csv, summary.md, scaling.png, commands.txt)"
