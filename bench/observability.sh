#!/usr/bin/env bash
# bench/observability.sh - what issue 17's observability costs (docs/performance.md,
# "Observability cost"):
#   1. user-space instructions per get (valgrind --tool=callgrind) of percore with
#      latency histograms and hot keys on (the default), histograms off, and both
#      off; at -t 1 (every get local) and -t 2 (about half forwarded). Closed loop,
#      one connection, one get at a time: every get costs one wake-up, read, parse,
#      execution and write, so the count does not move with batching (an open loop
#      under valgrind batches differently from run to run, +-100 instructions).
#      Two runs per configuration, N and 2N gets: the difference is N gets without
#      start-up, preload and shut-down (as bench/compare.sh --callgrind does).
#   2. p99 at a fixed open-loop load with /metrics scraped every 100 ms vs not,
#      alternating, in the same run; memcached beside it with `stats` asked every
#      100 ms vs not (what memcached_exporter does). User and kernel CPU per request.
# Servers pinned to CPU 0, percore-bench and the scraper to CPU 1; every process
# is started here and stopped by PID (bench/lib.sh).
#
#   bench/observability.sh [--out DIR] [--requests N] [--cg-conns C] [--cg-reps K] [--rate R] [--duration S]
#                          [--rounds K] [--no-callgrind] [--no-scrape]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
BENCH=$BUILD/percore-bench
PY=${PY:-/usr/bin/python3}
out=bench-results/observability
cg_requests=20000
cg_conns=1
cg_reps=1
rate=20000
duration=5
rounds=3
do_cg=1
do_scrape=1
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=$2; shift 2 ;;
    --requests) cg_requests=$2; shift 2 ;;
    --cg-conns) cg_conns=$2; shift 2 ;;
    --cg-reps) cg_reps=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-callgrind) do_cg=0; shift ;;
    --no-scrape) do_scrape=0; shift ;;
    *) echo "observability.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
cmdlog=$out/commands.txt
: > "$cmdlog"
. "$here/lib.sh"
bench_init
log() { echo "observability.sh: $*" >&2; }
run() { printf '%q ' "$@" >> "$cmdlog"; echo >> "$cmdlog"; "$@"; }

start() { # name wait_s cmd...; sets SPID PORT (PORT must be set by caller)
    local name=$1 wait_s=$2; shift 2
    bench_start "$name" 0 "$out/$name.log" "$@"
    echo "$BENCH_CMD &" >> "$cmdlog"
    SPID=$BENCH_PID
    bench_wait "$PORT" "$wait_s" || { SPID=; return 1; }
}

# --- 1. instructions per get ----------------------------------------------------
: > "$out/callgrind.csv"
if [ "$do_cg" = 1 ] && command -v valgrind >/dev/null; then
    echo "config,threads,instructions_per_get,request_path_per_get" > "$out/callgrind.csv"
    for ((rep = 1; rep <= cg_reps; rep++)); do
    for t in 1 2; do
        for cfg in on latency-off all-off; do
            case $cfg in
            on) extra=() ;;
            latency-off) extra=(--latency-stats=off) ;;
            all-off) extra=(--latency-stats=off --hot-keys=off) ;;
            esac
            irs=()
            for n in "$cg_requests" $((cg_requests * 2)); do
                f=$out/callgrind.$cfg.t$t.$n.out
                rm -f "$f"
                PORT=$(bench_free_port)
                BENCH_NOFILE=1024 start "percore-$cfg-t$t" 60 valgrind --tool=callgrind \
                    --callgrind-out-file="$f" "$BUILD/percore" -p "$PORT" -l 127.0.0.1 -t "$t" \
                    -m 256 -U 0 --io epoll "${extra[@]}" || { irs+=(0); continue; }
                run taskset -c 1 "$BENCH" --quiet --json -s "127.0.0.1:$PORT" --warmup --closed --depth 1 \
                    --conns "$cg_conns" --threads 1 --keys 10000 --key-size 32 --get-ratio 1 --requests "$n" \
                    --duration 300 --timeout 10 > "$out/callgrind.$cfg.t$t.$n.json" || log "bench failed"
                bench_stop "$SPID" 600
                ir=$(grep -E '^(summary|totals):' "$f" 2>/dev/null | head -1 | awk '{print $2}')
                irs+=("${ir:-0}")
            done
            if [ "${irs[0]}" -gt 0 ] && [ "${irs[1]}" -gt 0 ]; then
                per=$($PY -c 'import sys; a,b,n=map(int,sys.argv[1:]); print(round((b-a)/n))' \
                      "${irs[0]}" "${irs[1]}" "$cg_requests")
                # The request path's own instructions per get, 2N run minus N run:
                # everything in loop_route (the routing decision, local execution's
                # timing, the forward's time stamp) and topk_sample, plus the lines
                # inlined from the histogram and hot-key headers elsewhere (a forwarded
                # reply's recording in the worker). Unlike the totals, these do not
                # move with the once-a-second work a slower run does more of.
                attr=$($PY - "$out/callgrind.$cfg.t$t.$cg_requests.out" \
                       "$out/callgrind.$cfg.t$t.$((cg_requests * 2)).out" "$cg_requests" <<'PY'
import re, subprocess, sys
def cost(f):
    txt = subprocess.run(["callgrind_annotate", "--threshold=100", f], capture_output=True,
                         text=True).stdout
    total = 0
    for line in txt.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+):(\S+)", line)
        if not m:
            continue
        src, fn = m.group(2), m.group(3)
        if fn in ("loop_route", "topk_sample") or (
                re.search(r"(lat_hist\.h|req_class\.h|topk\.h|ia32intrin\.h)$", src)
                and fn not in ("lat_clock_setup", "lat_tick_ns")):
            total += int(m.group(1).replace(",", ""))
    return total
a, b, n = cost(sys.argv[1]), cost(sys.argv[2]), int(sys.argv[3])
print(round((b - a) / n, 1))
PY
)
                echo "$cfg,$t,$per,$attr" >> "$out/callgrind.csv"
                log "-t $t $cfg: $per instructions per get ($attr in loop_route and the recording)"
            fi
        done
    done
    done
fi

# --- 2. p99 with and without scraping ------------------------------------------
# utime+stime ticks of the server's thread named NAME (0 when none)
thread_ticks() { # pid name
    local t
    for t in /proc/"$1"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ]; then
            awk '{ print $14 + $15 }' "$t/stat"; return
        fi
    done
    echo 0
}

scraper() { # kind port: every 100 ms until killed
    local kind=$1 port=$2
    if [ "$kind" = metrics ]; then
        exec taskset -c 1 "$PY" - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
while True:
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    while s.recv(1 << 16):
        pass
    s.close()
    time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
PY
    else
        exec taskset -c 1 "$PY" - "$port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
while True:
    t = time.monotonic()
    s.sendall(b"stats\r\n")
    d = b""
    while not d.endswith(b"END\r\n"):
        d += s.recv(1 << 16)
    time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
PY
    fi
}

: > "$out/scrape.jsonl"
if [ "$do_scrape" = 1 ]; then
    CLK=$(getconf CLK_TCK)
    for ((round = 1; round <= rounds; round++)); do
        for srv in percore memcached; do
            PORT=$(bench_free_port)
            if [ "$srv" = percore ]; then
                MPORT=$(bench_free_port)
                start percore 10 "$BUILD/percore" -p "$PORT" -l 127.0.0.1 -t 1 -m 256 -U 0 --io epoll \
                    --metrics "127.0.0.1:$MPORT" || continue
                kind=metrics; sport=$MPORT
            else
                a=(/usr/bin/memcached -p "$PORT" -l 127.0.0.1 -t 1 -m 256 -U 0)
                [ "$(id -u)" = 0 ] && a+=(-u root)
                start memcached 10 "${a[@]}" || continue
                kind=stats; sport=$PORT
            fi
            run taskset -c 1 "$BENCH" --quiet --json -s "127.0.0.1:$PORT" --warmup --closed --requests 1 \
                --keys 10000 --key-size 32 > /dev/null
            order=(off on)
            [ $((round % 2)) = 0 ] && order=(on off)
            for scrape in "${order[@]}"; do
                spid=
                if [ "$scrape" = on ]; then
                    scraper "$kind" "$sport" & spid=$!
                    bench_track "$spid"
                    echo "(scraper: $kind every 100 ms on port $sport) &" >> "$cmdlog"
                    sleep 0.3
                fi
                read -r u0 s0 < <(bench_cpu_ticks "$SPID")
                m0=$(thread_ticks "$SPID" percore-metrics)
                j=$(run taskset -c 1 "$BENCH" --quiet --json -s "$srv=127.0.0.1:$PORT" --rate "$rate" \
                    --duration "$duration" --conns 50 --keys 10000 --key-size 32 --get-ratio 0.9 \
                    --timeout 2) || log "$srv: open loop failed"
                read -r u1 s1 < <(bench_cpu_ticks "$SPID")
                m1=$(thread_ticks "$SPID" percore-metrics)
                [ -z "$spid" ] || bench_stop "$spid" 10
                J=$j $PY - "$round" "$scrape" "$u0" "$s0" "$u1" "$s1" "$CLK" "$m0" "$m1" >> "$out/scrape.jsonl" <<'PY' || true
import json, os, sys
rnd, scrape = int(sys.argv[1]), sys.argv[2]
u0, s0, u1, s1, clk, m0, m1 = map(int, sys.argv[3:])
r = json.loads(os.environ["J"].strip().splitlines()[-1])
n = max(r.get("completed", 0), 1)
r.update(round=rnd, scrape=scrape, user_us_per_req=(u1 - u0) / clk / n * 1e6,
         sys_us_per_req=(s1 - s0) / clk / n * 1e6, metrics_thread_s=(m1 - m0) / clk)
print(json.dumps(r))
PY
                log "$srv: round $round, scrape $scrape done"
            done
            bench_stop "$SPID"
        done
    done
fi

# --- 3. summary ------------------------------------------------------------------
$PY - "$out" <<'PY' | tee "$out/summary.md"
import json, os, statistics, sys
out = sys.argv[1]
print("### instructions per get (callgrind, user space)\n")
rows = [l.strip().split(",") for l in open(os.path.join(out, "callgrind.csv")) if l.strip()][1:]
if rows:
    g = {}
    for c, t, v, a in rows:
        g.setdefault((c, t), []).append((int(v), float(a)))
    by = {k: "%d (%.1f)" % (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
          for k, v in g.items()}
    reps = max(len(v) for v in g.values())
    print("Total per get (2N - N gets%s), and in brackets the instructions per get in loop_route," %
          (", median of %d repetitions" % reps if reps > 1 else ""))
    print("topk_sample and the histogram/hot-key code inlined elsewhere: the request path's")
    print("share, which the once-a-second work (more of it in a slower run) does not move.\n")
    print("| threads | histograms + hot keys on (default) | histograms off, hot keys on | both off |")
    print("|---:|---:|---:|---:|")
    for t in sorted({r[1] for r in rows}):
        print("| %s | %s | %s | %s |" % (t, by.get(("on", t), "-"), by.get(("latency-off", t), "-"),
                                         by.get(("all-off", t), "-")))
print("\n### open loop with and without scraping (medians over rounds)\n")
rs = [json.loads(l) for l in open(os.path.join(out, "scrape.jsonl")) if l.strip()]
if rs:
    print("| server | scraped every 100 ms | rounds | achieved req/s | p50 us | p99 us | p99.9 us | max us | user us/req | sys us/req | metrics thread CPU s | errors+timeouts |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    g = {}
    for r in rs:
        g.setdefault((r["server"], r["scrape"]), []).append(r)
    for (s, sc), x in sorted(g.items()):
        m = lambda f: statistics.median(f(r) for r in x)
        print("| %s | %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %s | %d |" % (
            s, "yes (/metrics)" if sc == "on" and s == "percore" else "yes (stats)" if sc == "on" else "no",
            len(x), m(lambda r: r["achieved_rps"]), m(lambda r: r["latency_us"]["p50"]),
            m(lambda r: r["latency_us"]["p99"]), m(lambda r: r["latency_us"]["p999"]),
            m(lambda r: r["latency_us"]["max"]), m(lambda r: r["user_us_per_req"]),
            m(lambda r: r["sys_us_per_req"]),
            "%.2f" % sum(r.get("metrics_thread_s", 0) for r in x) if s == "percore" else "-",
            sum(r["errors"] + r["timeouts"] for r in x)))
    print("\nPer round (p50 / p99 / max us), to show the spread:\n")
    for (s, sc), x in sorted(g.items()):
        print("- %s, scraped %s: %s" % (s, sc, ", ".join(
            "%.0f / %.0f / %.0f" % (r["latency_us"]["p50"], r["latency_us"]["p99"], r["latency_us"]["max"])
            for r in sorted(x, key=lambda r: r["round"]))))
PY
