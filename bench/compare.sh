#!/bin/bash
# compare.sh - side-by-side measurement of memcached, percore and the floor server
# with percore-bench, the way DESIGN.md "How we measure" asks: same memory and
# thread settings, servers and load generator pinned to different cores, closed-
# loop peak of each server, then open loop at 25/50/75/90% of memcached's peak
# (or at fixed --rates) against each, in --rounds rounds that alternate the
# servers' order, medians of p50/p99/p99.9 and of the server's user and kernel CPU
# per request (/proc/PID/stat), percore/memcached and percore/floor ratios.
# Writes a results folder (summary.md, sweep.csv, sweep.png, peak.jsonl,
# open.jsonl, commands.txt) and rewrites the compare.sh section of
# docs/performance.md. Optionally counts user-space instructions per request
# under valgrind --tool=callgrind (floor, memcached and each percore backend).
# A server whose binary is missing is skipped with a message. Only processes this
# script started are stopped, by PID. Every step is bounded in time.
#
# usage: bench/compare.sh [options] [-- extra percore-bench options]
#   --servers LIST     from memcached, percore (its default backend), percore-epoll,
#                      percore-uring, percore-poll, floor
#                      (default memcached,percore-epoll,percore-uring,floor)
#   --server-cpus L    taskset CPU list for servers (default 0)
#   --bench-cpus L     taskset CPU list for percore-bench (default 1)
#   --threads N        server threads -t (default 1)
#   --memory MB        server memory -m (default 1024)
#   --duration S       seconds per open-loop point (default 5)
#   --peak-duration S  seconds of the closed-loop peak run (default 5)
#   --loads LIST       percentages of memcached's peak (default 25,50,75,90)
#   --rates LIST       open-loop rates in req/s instead of --loads
#   --rounds N         open-loop rounds, servers alternating (default 3; medians)
#   --bench-threads T  generator threads (default 1)
#   --conns C          connections per generator thread (default 8)
#   --depth D          closed-loop outstanding per connection for the peak (default 8)
#   --keys N           key space, preloaded with --warmup (default 100000)
#   --value-size V     value size spec (default 100)
#   --spin-us N        percore-bench --spin-us for open loop (default 0)
#   --out DIR          results folder (default bench-results/compare-DATE)
#   --doc FILE         markdown file to update (default docs/performance.md)
#   --no-doc           do not touch any markdown file
#   --callgrind        also count user-space instructions per get (every server)
#   --callgrind-requests N  gets per callgrind run (default 20000)
#   --callgrind-rate R      open-loop gets/s under callgrind (default 4000; 0: closed
#                           loop, one request outstanding per connection)
#   --callgrind-conns C     connections under callgrind (default 50)
#   --callgrind-depth D     with --callgrind-rate 0: requests outstanding per
#                           connection (default 1; 16 or 32 measure pipelining)
#   --callgrind-get-ratio F  fraction of gets under callgrind (default 1: gets
#                           only; 0: sets only, counted per set)
#   --callgrind-only   skip the timed peak and open-loop runs (instruction counts
#                      only: they do not depend on what else runs on the machine)
set -euo pipefail
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PY=/usr/bin/python3
servers=memcached,percore-epoll,percore-uring,floor
server_cpus=0
bench_cpus=1
threads=1
memory=1024
duration=5
peak_duration=5
loads=25,50,75,90
rates_abs=
rounds=3
bench_threads=1
conns=8
depth=8
keys=100000
value_size=100
spin=0
out=bench-results/compare-$(date +%Y%m%d-%H%M%S)
doc=docs/performance.md
callgrind=0
cg_requests=20000
cg_rate=4000
cg_conns=50
cg_depth=1
cg_get_ratio=1
cg_only=0
extra=()
orig_args=("$@")
while [ $# -gt 0 ]; do
    case $1 in
    --servers) servers=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --bench-cpus) bench_cpus=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --peak-duration) peak_duration=$2; shift 2 ;;
    --loads) loads=$2; shift 2 ;;
    --rates) rates_abs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --bench-threads) bench_threads=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --spin-us) spin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --no-doc) doc=; shift ;;
    --callgrind) callgrind=1; shift ;;
    --callgrind-requests) cg_requests=$2; shift 2 ;;
    --callgrind-rate) cg_rate=$2; shift 2 ;;
    --callgrind-conns) cg_conns=$2; shift 2 ;;
    --callgrind-depth) cg_depth=$2; shift 2 ;;
    --callgrind-get-ratio) cg_get_ratio=$2; shift 2 ;;
    --callgrind-only) callgrind=1; cg_only=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "compare.sh: $BENCH not built (make $BENCH)" >&2; exit 1; }
mkdir -p "$out"
: > "$out/peak.jsonl"
: > "$out/open.jsonl"
rm -f "$out/sweep.csv"
cmdlog=$out/commands.txt
: > "$cmdlog"
log() { echo "compare.sh: $*" >&2; }
. "$here/lib.sh"
bench_init
run() { printf '%q ' "$@" >> "$cmdlog"; echo >> "$cmdlog"; "$@"; }

# --- servers -------------------------------------------------------------------
declare -A BIN
BIN[memcached]=/usr/bin/memcached
BIN[percore]=$BUILD/percore
BIN[floor]=$BUILD/percore-floor
for b in epoll uring poll; do BIN[percore-$b]=$BUILD/percore; done
avail=()
IFS=, read -r -a wanted <<< "$servers"
for s in "${wanted[@]}"; do
    if [ -z "${BIN[$s]:-}" ]; then
        log "unknown server '$s' (memcached, percore, percore-epoll, percore-uring, percore-poll, floor)"; exit 2
    elif [ -x "${BIN[$s]}" ]; then
        avail+=("$s")
    else
        log "SKIP $s: ${BIN[$s]} not found (build it, or install it)"
    fi
done
[ ${#avail[@]} -gt 0 ] || { log "no server to measure"; exit 1; }

server_argv() { # name port
    local s=$1 p=$2
    case $s in
    memcached)
        local a=(/usr/bin/memcached -p "$p" -l 127.0.0.1 -t "$threads" -m "$memory" -U 0)
        [ "$(id -u)" = 0 ] && a+=(-u root)
        # under valgrind the fd hard limit is fixed (1024 set below, 12 reserved):
        # memcached's -c must match it or memcached refuses to start
        [ -n "${UNDER_VALGRIND:-}" ] && a+=(-c 1012)
        printf '%s\n' "${a[@]}" ;;
    percore) printf '%s\n' "$BUILD/percore" -p "$p" -l 127.0.0.1 -t "$threads" -m "$memory" -U 0 ${PERCORE_IO:+--io "$PERCORE_IO"} ;;
    percore-*) printf '%s\n' "$BUILD/percore" -p "$p" -l 127.0.0.1 -t "$threads" -m "$memory" -U 0 --io "${s#percore-}" ;;
    floor) printf '%s\n' "$BUILD/percore-floor" -p "$p" -l 127.0.0.1 -t "$threads" ;;
    esac
}

start_server() { # name [wrapper...]; sets SPID, PORT
    local s=$1; shift
    PORT=$(bench_free_port)
    mapfile -t argv < <(server_argv "$s" "$PORT")
    local wait_s=10
    [ $# -gt 0 ] && wait_s=60 # under valgrind
    BENCH_NOFILE=${UNDER_VALGRIND:+1024} bench_start "$s" "$server_cpus" "$out/$s.log" "$@" "${argv[@]}"
    echo "$BENCH_CMD &" >> "$cmdlog"
    SPID=$BENCH_PID
    bench_wait "$PORT" "$wait_s" || { SPID=; return 1; }
}
# valgrind writes its profile on exit, which takes a while: callers pass
# STOP_WAIT_TENTHS=600 there.
stop_server() { [ -z "$SPID" ] || bench_stop "$SPID" "${STOP_WAIT_TENTHS:-100}"; SPID=; }
SPID=

bench() { run taskset -c "$bench_cpus" "$BENCH" --quiet --json --threads "$bench_threads" --conns "$conns" \
    --keys "$keys" --value-size "$value_size" --timeout 2 "$@" "${extra[@]}"; }

ref=-
if [ "$cg_only" = 0 ]; then
# --- 1. closed-loop peak of each server ------------------------------------------
declare -A PEAK
for s in "${avail[@]}"; do
    start_server "$s" || continue
    log "$s: closed-loop peak (${peak_duration}s, depth $depth)"
    bench -s "$s=127.0.0.1:$PORT" --warmup --closed --depth "$depth" --duration "$peak_duration" \
        | tee -a "$out/peak.jsonl" > "$out/peak.$s.json" || log "$s: peak run failed"
    stop_server
    PEAK[$s]=$($PY -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["achieved_rps"]))' "$out/peak.$s.json" 2>/dev/null || echo 0)
    log "$s: peak ${PEAK[$s]} req/s"
done

# --- 2. open loop at fractions of memcached's peak --------------------------------
if [ -n "$rates_abs" ]; then
    ref=-
    rates=$rates_abs
    log "open-loop rates: $rates req/s (--rates)"
else
    ref=memcached
    if [ "${PEAK[memcached]:-0}" -le 0 ]; then
        for s in "${avail[@]}"; do [ "${PEAK[$s]:-0}" -gt 0 ] && { ref=$s; break; }; done
        log "memcached peak unavailable: open-loop loads are fractions of $ref's peak"
    fi
    refpeak=${PEAK[$ref]:-0}
    [ "$refpeak" -gt 0 ] || { log "no peak measured, stopping"; exit 1; }
    rates=$($PY -c 'import sys; print(",".join(str(max(1,int(int(sys.argv[1])*float(p)/100))) for p in sys.argv[2].split(",")))' "$refpeak" "$loads")
    log "open-loop rates: $rates req/s (${loads}% of $ref's $refpeak)"
fi
CLK=$(getconf CLK_TCK)
IFS=, read -r -a rate_list <<< "$rates"
for ((round = 1; round <= rounds; round++)); do
    order=("${avail[@]}")
    if [ $((round % 2)) = 0 ]; then   # alternate who goes first
        order=(); for ((i = ${#avail[@]} - 1; i >= 0; i--)); do order+=("${avail[$i]}"); done
    fi
    for s in "${order[@]}"; do
        start_server "$s" || continue
        bench -s "$s=127.0.0.1:$PORT" --warmup --closed --requests 1 > /dev/null || log "$s: warm-up failed"
        for rate in "${rate_list[@]}"; do
            read -r u0 s0 < <(bench_cpu_ticks "$SPID")
            j=$(bench -s "$s=127.0.0.1:$PORT" --rate "$rate" --duration "$duration" --spin-us "$spin") ||
                log "$s: open loop at $rate failed"
            read -r u1 s1 < <(bench_cpu_ticks "$SPID")
            J=$j $PY - "$round" "$u0" "$s0" "$u1" "$s1" "$CLK" >> "$out/open.jsonl" <<'PY' || true
import json, os, sys
rnd, u0, s0, u1, s1, clk = map(int, sys.argv[1:])
r = json.loads(os.environ["J"].strip().splitlines()[-1])
n = max(r.get("completed", 0), 1)
r["round"] = rnd
r["user_us_per_req"] = (u1 - u0) / clk / n * 1e6
r["sys_us_per_req"] = (s1 - s0) / clk / n * 1e6
print(json.dumps(r))
PY
            log "$s: round $round, $rate req/s done"
        done
        stop_server
    done
done
# sweep.csv (medians over rounds) for plot.sh
$PY - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "open.jsonl")) if l.strip()]
g = {}
for r in rows:
    g.setdefault((r["server"], round(r["offered_rps"])), []).append(r)
with open(os.path.join(out, "sweep.csv"), "w") as f:
    f.write("server,offered,achieved,p50,p90,p99,p999,p9999,max,errors,timeouts\n")
    for (s, off), rs in sorted(g.items()):
        m = lambda k: statistics.median(x["latency_us"][k] for x in rs)
        f.write("%s,%d,%.0f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%d\n" % (
            s, off, statistics.median(x["achieved_rps"] for x in rs), m("p50"), m("p90"), m("p99"),
            m("p999"), m("p9999"), m("max"), sum(x["errors"] for x in rs), sum(x["timeouts"] for x in rs)))
PY
"$here/plot.sh" "$out/sweep.csv" "$out/sweep.png" "memcached vs percore vs floor: open-loop tail latency" || true
fi # cg_only

# --- 3. instructions per request (callgrind) --------------------------------------
: > "$out/callgrind.txt"
if [ "$callgrind" = 1 ]; then
    if ! command -v valgrind >/dev/null; then
        log "SKIP callgrind: valgrind not installed"
    else
        # The load of the per-request-cost question: open loop, cg_rate gets/s
        # over cg_conns connections (each wake-up then sees about one request),
        # keys preloaded, gets only (--callgrind-get-ratio: sets too). Two
        # runs, N and 2N requests: the difference is N requests' worth of
        # instructions without start-up, preload and shutdown.
        # The worker's once-a-second work (class stats, maintenance, idle
        # sweep) counts by wall time, not by gets: a run the machine slowed
        # has more of it. Its inclusive count, subtracted, gives a second
        # figure that does not move with the machine's load.
        cg_persec() {
            callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null | $PY -c '
import re, sys
fns = ("store_get_class_stats", "store_maintain", "conn_idle_sweep", "publish_classes")
n = 0
for l in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+) \[", l)
    if m and m.group(2).split(":")[-1] in fns:
        n += int(m.group(1).replace(",", ""))
print(n)' || echo 0
        }
        for s in "${avail[@]}"; do
            irs=()
            secs=()
            for n in "$cg_requests" $((cg_requests * 2)); do
                f="$out/callgrind.$s.$n.out"
                rm -f "$f"
                UNDER_VALGRIND=1 start_server "$s" valgrind --tool=callgrind --callgrind-out-file="$f" || { irs+=(0); continue; }
                if [ "$cg_rate" = 0 ]; then
                    # Closed loop, one request outstanding per connection:
                    # with one connection every request is a wake-up of its
                    # own, whatever else runs on the machine (the open-loop
                    # figure drops when a busy machine delays the server and
                    # wake-ups batch requests).
                    load=(--closed --depth "$cg_depth")
                else
                    load=(--rate "$cg_rate" --duration 300)
                fi
                bench -s "$s=127.0.0.1:$PORT" --warmup "${load[@]}" --conns "$cg_conns" --threads 1 \
                    --get-ratio "$cg_get_ratio" --requests "$n" --timeout 10 \
                    > "$out/callgrind.$s.$n.json" || log "$s: callgrind bench failed"
                STOP_WAIT_TENTHS=600 stop_server
                ir=$(grep -E '^(summary|totals):' "$f" 2>/dev/null | head -1 | awk '{print $2}')
                irs+=("${ir:-0}")
                secs+=("$(cg_persec "$f")")
            done
            if [ "${irs[0]}" -gt 0 ] && [ "${irs[1]}" -gt 0 ]; then
                read -r per steady < <($PY -c 'import sys; a,b,sa,sb,n=map(int,sys.argv[1:]); print(round((b-a)/n), round(((b-sb)-(a-sa))/n))' \
                    "${irs[0]}" "${irs[1]}" "${secs[0]:-0}" "${secs[1]:-0}" "$cg_requests")
                echo "$s,$per,$steady" >> "$out/callgrind.txt"
                if [ "$cg_rate" = 0 ]; then how="closed loop, depth $cg_depth"; else how="$cg_rate gets/s"; fi
                what=get
                [ "$cg_get_ratio" = 1 ] || what="request (get ratio $cg_get_ratio)"
                log "$s: $per instructions per $what, $steady without the once-a-second work (user space, callgrind, $how over $cg_conns connections)"
            else
                log "$s: callgrind produced no totals (server must exit cleanly on SIGTERM)"
            fi
        done
    fi
fi

# --- 4. summary --------------------------------------------------------------------
{
    echo "lscpu:"; lscpu | grep -E '^(Architecture|Model name|CPU\(s\)|Thread|Core|Socket|NUMA node\(s\)|L[123])' || true
    echo "kernel: $(uname -srvm)"
} > "$out/machine.txt"
$PY - "$out" "$loads" "$ref" "$threads" "$memory" "$server_cpus" "$bench_cpus" <<'PY'
import json, os, sys
out, loads, ref, threads, memory, scpu, bcpu = sys.argv[1:]
def rows(fn):
    p = os.path.join(out, fn)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
peak = {r["server"]: r for r in rows("peak.jsonl")}
opn = {}
for r in rows("open.jsonl"):
    opn.setdefault(r["server"], []).append(r)
import statistics
known = ("memcached", "percore", "percore-epoll", "percore-uring", "percore-poll", "floor")
order = [s for s in known if s in peak or s in opn]
med = lambda rs, f: statistics.median(f(x) for x in rs)
L = []
L.append("Servers: -t %s -m %s, pinned to CPU %s; percore-bench pinned to CPU %s." % (threads, memory, scpu, bcpu))
L.append("")
L.append("| server | closed-loop peak (req/s) | peak p99 (us) | errors+timeouts |")
L.append("|---|---:|---:|---:|")
for s in order:
    p = peak.get(s)
    if p:
        L.append("| %s | %.0f | %.1f | %d |" % (s, p["achieved_rps"], p["latency_us"]["p99"], p["errors"] + p["timeouts"]))
L.append("")
nr = max([r.get("round", 1) for rs in opn.values() for r in rs] or [1])
L.append("Open loop (%s; latency from the scheduled send time, microseconds; median of %d round(s), "
         "servers alternating; CPU = the server's user and kernel time per request):" % (
             "fixed rates" if ref == "-" else "%s%% of %s's peak" % (loads, ref), nr))
L.append("")
L.append("| server | offered | achieved | p50 | p99 | p99.9 | max | user us/req | kernel us/req | errors | timeouts |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
byrate = {}
for s in order:
    g = {}
    for r in opn.get(s, []):
        g.setdefault(round(r["offered_rps"]), []).append(r)
    byrate[s] = g
    for off in sorted(g):
        rs = g[off]
        lat = lambda k: med(rs, lambda x: x["latency_us"][k])
        L.append("| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %d | %d |" % (
            s, off, med(rs, lambda x: x["achieved_rps"]), lat("p50"), lat("p99"), lat("p999"), lat("max"),
            med(rs, lambda x: x.get("user_us_per_req", 0)), med(rs, lambda x: x.get("sys_us_per_req", 0)),
            sum(x["errors"] for x in rs), sum(x["timeouts"] for x in rs)))
L.append("")
def ratios(base):
    out_ = []
    for s in order:
        if not s.startswith("percore") or base not in byrate:
            continue
        if s in peak and base in peak and base != "floor":
            out_.append("| %s / %s | closed-loop peak | %.2f |" % (s, base, peak[s]["achieved_rps"] / max(1.0, peak[base]["achieved_rps"])))
        for off in sorted(byrate[s]):
            if off not in byrate[base]:
                continue
            for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
                a = med(byrate[s][off], lambda x: x["latency_us"][k])
                b = med(byrate[base][off], lambda x: x["latency_us"][k])
                out_.append("| %s / %s | %s at %d req/s | %s |" % (s, base, name, off, "%.2f" % (a / b) if b else "n/a"))
    return out_
rr = ratios("memcached") + ratios("floor")
if rr:
    L.append("Ratios (throughput: higher is better; latency: lower is better):")
    L.append("")
    L.append("| servers | metric | ratio |")
    L.append("|---|---|---:|")
    L.extend(rr)
    L.append("")
else:
    L.append("(no ratios: memcached or the floor was not measured beside percore)")
    L.append("")
cg = os.path.join(out, "callgrind.txt")
if os.path.exists(cg) and os.path.getsize(cg):
    L.append("| server | user-space instructions per get (callgrind) | without the once-a-second work |")
    L.append("|---|---:|---:|")
    for line in open(cg):
        s, n, st = (line.strip().split(",") + ["-"])[:3]
        L.append("| %s | %s | %s |" % (s, n, st))
    L.append("")
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
PY
cat "$out/summary.md"

# --- 5. docs/performance.md section ---------------------------------------------------
if [ -n "$doc" ]; then
    mkdir -p "$(dirname "$doc")"
    [ -f "$doc" ] || printf '# percore performance\n\n' > "$doc"
    sec=$(mktemp)
    {
        echo "<!-- compare.sh:begin (generated by bench/compare.sh; rerun it to refresh) -->"
        echo "## memcached vs percore vs floor ($(date -u +%Y-%m-%d))"
        echo
        echo "Results folder: \`$out\` (CSV \`sweep.csv\`, plot \`sweep.png\`, raw JSON)."
        echo
        echo "Command: \`bench/compare.sh ${orig_args[*]}\`"
        echo
        echo "Machine:"
        echo
        echo '```'
        cat "$out/machine.txt"
        echo '```'
        echo
        cat "$out/summary.md"
        echo "Exact commands run:"
        echo
        echo '```'
        cat "$cmdlog"
        echo '```'
        echo "<!-- compare.sh:end -->"
    } > "$sec"
    $PY - "$doc" "$sec" <<'PY'
import re, sys
doc, sec = sys.argv[1], open(sys.argv[2]).read()
text = open(doc).read()
pat = re.compile(r"<!-- compare\.sh:begin.*?<!-- compare\.sh:end -->\n?", re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + sec
open(doc, "w").write(text)
PY
    rm -f "$sec"
    log "updated $doc"
fi
log "results in $out"
