#!/bin/bash
# compare.sh - side-by-side measurement of memcached, percore and the floor server
# with percore-bench, the way DESIGN.md "How we measure" asks: same memory and
# thread settings, servers and load generator pinned to different cores, closed-
# loop peak of each server, then open loop at 25/50/75/90% of memcached's peak
# against each, p50/p99/p99.9 and percore/memcached ratios. Writes a results folder
# (summary.md, sweep.csv, sweep.png, peak.jsonl, open.jsonl, commands.txt) and
# rewrites the compare.sh section of docs/performance.md. Optionally counts user-
# space instructions per request under valgrind --tool=callgrind.
# A server whose binary is missing is skipped with a message. Only processes this
# script started are stopped, by PID. Every step is bounded in time.
#
# usage: bench/compare.sh [options] [-- extra percore-bench options]
#   --servers LIST     subset of memcached,percore,floor (default all three)
#   --server-cpus L    taskset CPU list for servers (default 0)
#   --bench-cpus L     taskset CPU list for percore-bench (default 1)
#   --threads N        server threads -t (default 1)
#   --memory MB        server memory -m (default 1024)
#   --duration S       seconds per open-loop point (default 5)
#   --peak-duration S  seconds of the closed-loop peak run (default 5)
#   --loads LIST       percentages of memcached's peak (default 25,50,75,90)
#   --bench-threads T  generator threads (default 1)
#   --conns C          connections per generator thread (default 8)
#   --depth D          closed-loop outstanding per connection for the peak (default 8)
#   --keys N           key space, preloaded with --warmup (default 100000)
#   --value-size V     value size spec (default 100)
#   --spin-us N        percore-bench --spin-us for open loop (default 0)
#   --out DIR          results folder (default bench-results/compare-DATE)
#   --doc FILE         markdown file to update (default docs/performance.md)
#   --no-doc           do not touch any markdown file
#   --callgrind        also count instructions per request (memcached, percore)
#   --callgrind-requests N  requests per callgrind run (default 20000)
set -euo pipefail
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PY=/usr/bin/python3
servers=memcached,percore,floor
server_cpus=0
bench_cpus=1
threads=1
memory=1024
duration=5
peak_duration=5
loads=25,50,75,90
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
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
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
avail=()
IFS=, read -r -a wanted <<< "$servers"
for s in "${wanted[@]}"; do
    if [ -z "${BIN[$s]:-}" ]; then
        log "unknown server '$s' (memcached, percore, floor)"; exit 2
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
ref=memcached
if [ "${PEAK[memcached]:-0}" -le 0 ]; then
    for s in "${avail[@]}"; do [ "${PEAK[$s]:-0}" -gt 0 ] && { ref=$s; break; }; done
    log "memcached peak unavailable: open-loop loads are fractions of $ref's peak"
fi
refpeak=${PEAK[$ref]:-0}
[ "$refpeak" -gt 0 ] || { log "no peak measured, stopping"; exit 1; }
rates=$($PY -c 'import sys; print(",".join(str(max(1,int(int(sys.argv[1])*float(p)/100))) for p in sys.argv[2].split(",")))' "$refpeak" "$loads")
log "open-loop rates: $rates req/s (${loads}% of $ref's $refpeak)"
for s in "${avail[@]}"; do
    start_server "$s" || continue
    log "$s: open loop at $rates (${duration}s each)"
    bench -s "$s=127.0.0.1:$PORT" --warmup --sweep "$rates" --duration "$duration" --spin-us "$spin" \
        --csv "$out/sweep.csv" >> "$out/open.jsonl" || log "$s: open-loop runs failed"
    stop_server
done
"$here/plot.sh" "$out/sweep.csv" "$out/sweep.png" "memcached vs percore vs floor: open-loop tail latency" || true

# --- 3. instructions per request (callgrind) --------------------------------------
: > "$out/callgrind.txt"
if [ "$callgrind" = 1 ]; then
    if ! command -v valgrind >/dev/null; then
        log "SKIP callgrind: valgrind not installed"
    else
        for s in "${avail[@]}"; do
            [ "$s" = floor ] && continue
            # Two runs, N and 2N requests: the difference is N requests' worth of
            # instructions without start-up and shutdown.
            irs=()
            for n in "$cg_requests" $((cg_requests * 2)); do
                f="$out/callgrind.$s.$n.out"
                rm -f "$f"
                UNDER_VALGRIND=1 start_server "$s" valgrind --tool=callgrind --callgrind-out-file="$f" || { irs+=(0); continue; }
                bench -s "$s=127.0.0.1:$PORT" --closed --depth 1 --conns 1 --threads 1 --requests "$n" \
                    --duration 300 --timeout 10 > "$out/callgrind.$s.$n.json" || log "$s: callgrind bench failed"
                STOP_WAIT_TENTHS=600 stop_server
                ir=$(grep -E '^(summary|totals):' "$f" 2>/dev/null | head -1 | awk '{print $2}')
                irs+=("${ir:-0}")
            done
            if [ "${irs[0]}" -gt 0 ] && [ "${irs[1]}" -gt 0 ]; then
                per=$($PY -c 'import sys; a,b,n=map(int,sys.argv[1:]); print(round((b-a)/n))' "${irs[0]}" "${irs[1]}" "$cg_requests")
                echo "$s,$per" >> "$out/callgrind.txt"
                log "$s: $per instructions per request (user space, callgrind)"
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
order = [s for s in ("memcached", "percore", "floor") if s in peak or s in opn]
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
L.append("Open loop at %s%% of %s's peak (latency from the scheduled send time, microseconds):" % (loads, ref))
L.append("")
L.append("| server | offered | achieved | p50 | p99 | p99.9 | max | errors | timeouts |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in order:
    for r in opn.get(s, []):
        l = r["latency_us"]
        L.append("| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %d | %d |" % (
            s, r["offered_rps"], r["achieved_rps"], l["p50"], l["p99"], l["p999"], l["max"], r["errors"], r["timeouts"]))
L.append("")
if "percore" in peak and "memcached" in peak:
    L.append("percore / memcached ratios (throughput: higher is better; latency: lower is better):")
    L.append("")
    L.append("| metric | ratio |")
    L.append("|---|---:|")
    L.append("| closed-loop peak throughput | %.2f |" % (peak["percore"]["achieved_rps"] / max(1.0, peak["memcached"]["achieved_rps"])))
    mo = {round(r["offered_rps"]): r for r in opn.get("memcached", [])}
    for r in opn.get("percore", []):
        m = mo.get(round(r["offered_rps"]))
        if not m:
            continue
        for k, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            a, b = r["latency_us"][k], m["latency_us"][k]
            L.append("| %s at %.0f req/s | %s |" % (name, r["offered_rps"], "%.2f" % (a / b) if b else "n/a"))
    L.append("")
else:
    L.append("(no percore/memcached ratios: one of them was not measured)")
    L.append("")
cg = os.path.join(out, "callgrind.txt")
if os.path.exists(cg) and os.path.getsize(cg):
    L.append("| server | user-space instructions per request (callgrind) |")
    L.append("|---|---:|")
    for line in open(cg):
        s, n = line.strip().split(",")
        L.append("| %s | %s |" % (s, n))
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
