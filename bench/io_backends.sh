#!/bin/bash
# io_backends.sh - percore's I/O backends (--io=epoll|poll|uring) side by side,
# with memcached in the same run, measured the way DESIGN.md "How we measure"
# asks: server and load generator pinned to different cores (taskset), each
# server freshly started and warmed, then
#   1. closed-loop peak throughput (percore-bench --closed), with the server's
#      CPU time per request (utime+stime from /proc/PID/stat, before/after);
#   2. open loop at fixed offered loads (fractions of memcached's peak, the
#      same rates for every server): p50/p99/p99.9 from the scheduled send time;
#   3. system calls per request over a fixed request count: `perf stat -e
#      raw_syscalls:sys_enter` when perf may trace, else `strace -c -f`
#      (slower, so it runs separately from the timed runs).
# Prints a markdown table and writes it to docs/results/io_backends.md (--doc),
# raw JSON and the exact commands into --out. Only processes this script
# started are stopped, by PID; every step is bounded in time.
#
# usage: bench/io_backends.sh [options] [-- extra percore-bench options]
#   --servers LIST     subset of memcached,epoll,poll,uring (default all)
#   --server-cpus L    taskset CPU list for the server (default 0)
#   --bench-cpus L     taskset CPU list for percore-bench (default 1)
#   --threads N        server threads -t (default 1)
#   --memory MB        server memory -m (default 1024)
#   --duration S       seconds per open-loop point (default 5)
#   --peak-duration S  seconds of the closed-loop peak run (default 5)
#   --loads LIST       open-loop rates as % of memcached's peak (default 25,50,75,90)
#   --conns C          connections per generator thread (default 8)
#   --depth D          closed-loop outstanding per connection (default 8)
#   --keys N           key space, preloaded with --warmup (default 100000)
#   --value-size V     value size spec (default 100)
#   --syscall-requests N  requests counted for syscalls/request (default 100000)
#   --out DIR          raw results (default bench-results/io-backends-DATE)
#   --doc FILE         markdown output (default docs/results/io_backends.md)
#   --no-doc           only print the table
# Quick check that it works: bench/io_backends.sh --duration 1 --peak-duration 1
#   --loads 50 --syscall-requests 5000 --keys 1000 --no-doc
set -euo pipefail
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
PY=/usr/bin/python3
servers=memcached,epoll,poll,uring
server_cpus=0
bench_cpus=1
threads=1
memory=1024
duration=5
peak_duration=5
loads=25,50,75,90
conns=8
depth=8
keys=100000
value_size=100
sys_requests=100000
out=bench-results/io-backends-$(date +%Y%m%d-%H%M%S)
doc=docs/results/io_backends.md
extra=()
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
    --conns) conns=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --syscall-requests) sys_requests=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --no-doc) doc=; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "io_backends.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "io_backends.sh: $BENCH not built (make $BENCH)" >&2; exit 1; }
mkdir -p "$out"
: > "$out/results.jsonl"
cmdlog=$out/commands.txt
: > "$cmdlog"
log() { echo "io_backends.sh: $*" >&2; }
. "$(dirname "$0")/lib.sh"
bench_init
run() { printf '%q ' "$@" >> "$cmdlog"; echo >> "$cmdlog"; "$@"; }
TICK=$(getconf CLK_TCK)

server_argv() { # name port
    case $1 in
    memcached)
        local a=(/usr/bin/memcached -p "$2" -l 127.0.0.1 -t "$threads" -m "$memory" -U 0)
        [ "$(id -u)" = 0 ] && a+=(-u root)
        printf '%s\n' "${a[@]}" ;;
    *) printf '%s\n' "$BUILD/percore" -p "$2" -l 127.0.0.1 -t "$threads" -m "$memory" -U 0 "--io=$1" ;;
    esac
}

start_server() { # name; sets SPID, PORT
    PORT=$(bench_free_port)
    mapfile -t argv < <(server_argv "$1" "$PORT")
    bench_start "$1" "$server_cpus" "$out/$1.log" "${argv[@]}"
    echo "$BENCH_CMD &" >> "$cmdlog"
    SPID=$BENCH_PID
    bench_wait "$PORT" 10 || { SPID=; return 1; }
}
stop_server() { [ -z "$SPID" ] || bench_stop "$SPID" 100; SPID=; }
SPID=

cpu_ticks() { local u k; read -r u k < <(bench_cpu_ticks "$1"); echo $((u + k)); }   # utime + stime

bench() { run taskset -c "$bench_cpus" "$BENCH" --quiet --json --threads 1 --conns "$conns" \
    --keys "$keys" --value-size "$value_size" --timeout 2 "$@" "${extra[@]}"; }

# perf can count syscalls cheaply where the kernel lets us trace; strace always can.
counter=strace
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -x, -- true >/dev/null 2>&1; then
    counter=perf
fi
command -v $counter >/dev/null || counter=none
log "syscall counter: $counter"

count_syscalls() { # name -> prints syscalls per request
    local name=$1 f="$out/syscalls.$1.txt" cpid total
    case $counter in
    perf) perf stat -e raw_syscalls:sys_enter -x, -o "$f" -p "$SPID" & cpid=$! ;;
    strace) strace -c -f -o "$f" -p "$SPID" 2>/dev/null & cpid=$! ;;
    *) echo 0; return ;;
    esac
    sleep 0.5   # attached
    bench -s "$name=127.0.0.1:$PORT" --closed --depth 1 --conns 1 --requests "$sys_requests" \
        --duration 120 > "$out/syscalls.$name.json" || log "$name: syscall run failed"
    kill -INT "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    if [ $counter = perf ]; then
        total=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$f")
    else
        total=$(awk '$NF == "total" { print $(NF-2) }' "$f")
    fi
    $PY -c 'import json,sys; t=float(sys.argv[1] or 0); n=json.load(open(sys.argv[2]))["completed"]; print("%.2f" % (t/n if n else 0))' \
        "${total:-0}" "$out/syscalls.$name.json" 2>/dev/null || echo 0
}

IFS=, read -r -a wanted <<< "$servers"
# memcached first: its peak sets the open-loop rates for everyone.
order=()
for s in "${wanted[@]}"; do [ "$s" = memcached ] && order+=(memcached); done
for s in "${wanted[@]}"; do [ "$s" != memcached ] && order+=("$s"); done
if [ "${order[0]}" = memcached ] && [ ! -x /usr/bin/memcached ]; then
    log "SKIP memcached: /usr/bin/memcached not installed"; order=("${order[@]:1}")
fi
rates=
for s in "${order[@]}"; do
    start_server "$s" || continue
    backend=$s
    if [ "$s" != memcached ]; then
        # The backend really in use (io_uring may have fallen back to epoll).
        backend=$($PY -c '
import socket,sys
c=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=5); c.sendall(b"stats\r\n"); d=b""
while not d.endswith(b"END\r\n"): d+=c.recv(65536)
print([l.split()[2] for l in d.decode().splitlines() if l.startswith("STAT io_backend ")][0])' "$PORT")
        [ "$backend" = "$s" ] || log "$s: server runs $backend instead"
    fi
    log "$s: warm-up + closed-loop peak (${peak_duration}s, depth $depth)"
    bench -s "$s=127.0.0.1:$PORT" --warmup --closed --depth 1 --duration 1 > /dev/null || true
    t0=$(cpu_ticks "$SPID")
    bench -s "$s=127.0.0.1:$PORT" --closed --depth "$depth" --duration "$peak_duration" > "$out/peak.$s.json" \
        || log "$s: peak run failed"
    t1=$(cpu_ticks "$SPID")
    if [ -z "$rates" ]; then
        rates=$($PY -c 'import json,sys; p=json.load(open(sys.argv[1]))["achieved_rps"]; print(",".join(str(max(1,int(p*float(x)/100))) for x in sys.argv[2].split(",")))' \
            "$out/peak.$s.json" "$loads")
        log "open-loop rates: $rates req/s (${loads}% of $s's peak)"
    fi
    log "$s: open loop at $rates (${duration}s each)"
    bench -s "$s=127.0.0.1:$PORT" --sweep "$rates" --duration "$duration" > "$out/open.$s.jsonl" \
        || log "$s: open-loop runs failed"
    log "$s: syscalls over $sys_requests requests ($counter)"
    spr=$(count_syscalls "$s")
    stop_server
    $PY - "$s" "$backend" "$out/peak.$s.json" "$out/open.$s.jsonl" "$t0" "$t1" "$TICK" "$spr" <<'PY' >> "$out/results.jsonl"
import json, sys
name, backend, peak_f, open_f, t0, t1, tick, spr = sys.argv[1:]
peak = json.load(open(peak_f))
opn = [json.loads(l) for l in open(open_f) if l.strip()]
cpu_us = (int(t1) - int(t0)) / int(tick) * 1e6
print(json.dumps({
    "server": name, "backend": backend,
    "peak_rps": peak["achieved_rps"], "peak_p99": peak["latency_us"]["p99"],
    "cpu_us_per_req": cpu_us / peak["completed"] if peak["completed"] else 0,
    "syscalls_per_req": float(spr),
    "open": [{"offered": r["offered_rps"], "achieved": r["achieved_rps"],
              "p50": r["latency_us"]["p50"], "p99": r["latency_us"]["p99"],
              "p999": r["latency_us"]["p999"], "bad": r["errors"] + r["timeouts"]} for r in opn],
}))
PY
done

{
    echo "lscpu:"; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket)' || true
    echo "kernel: $(uname -srvm)"
} > "$out/machine.txt"
table=$($PY - "$out/results.jsonl" "$threads" "$server_cpus" "$bench_cpus" "$counter" "$loads" "$(uname -r)" <<'PY'
import json, sys
f, threads, scpu, bcpu, counter, loads, kernel = sys.argv[1:]
rows = [json.loads(l) for l in open(f) if l.strip()]
L = ["Servers -t %s pinned to CPU %s, percore-bench on CPU %s; kernel %s." % (threads, scpu, bcpu, kernel),
     "CPU/request: server utime+stime during the closed-loop peak. Syscalls/request: %s, "
     "closed loop, one connection, depth 1." % counter, "",
     "| server | backend | peak req/s | peak p99 (us) | CPU us/req | syscalls/req |",
     "|---|---|---:|---:|---:|---:|"]
for r in rows:
    L.append("| %s | %s | %.0f | %.1f | %.2f | %.2f |" % (r["server"], r["backend"], r["peak_rps"],
             r["peak_p99"], r["cpu_us_per_req"], r["syscalls_per_req"]))
L += ["", "Open loop at %s%% of the first server's peak; latency in microseconds from the "
      "scheduled send time:" % loads, "",
      "| server | offered | achieved | p50 | p99 | p99.9 | errors+timeouts |",
      "|---|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    for o in r["open"]:
        L.append("| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %d |" % (r["server"], o["offered"] or 0,
                 o["achieved"], o["p50"], o["p99"], o["p999"], o["bad"]))
print("\n".join(L))
PY
)
echo "$table"
if [ -n "$doc" ]; then
    mkdir -p "$(dirname "$doc")"
    {
        echo "# I/O backends: measured"
        echo
        echo "Written by \`bench/io_backends.sh\` on $(date -u +%Y-%m-%d); raw data in \`$out\`."
        echo
        echo "$table"
    } > "$doc"
    log "wrote $doc"
fi
