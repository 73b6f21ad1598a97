#!/bin/bash
# udp_steering.sh - what UDP request steering buys: open-loop gets over UDP
# (percore-bench --proto udp) at a few offered loads against percore with
# --steering=ebpf (the kernel delivers each datagram to the key owner's socket),
# percore with --steering=off (the kernel's 4-tuple hash; the worker forwards
# requests for other workers' keys over its rings) and memcached over UDP.
# Each server runs -t 2 with both threads on one CPU (taskset -c 0; percore
# --cpus 0,0), the generator alone on another (taskset -c 1). Each server is
# started fresh, every key is set once over UDP (warmup), then each load runs
# for --duration seconds; percore's `stats` udp_requests/udp_forwarded are read
# before and after each run. Prints a table and writes a markdown report (exact
# commands, machine, load average) and the raw JSON.
# Every step is bounded in time; only processes this script started are
# stopped, by PID.
#
# usage: bench/udp_steering.sh [options]
#   --rates LIST       offered loads in req/s (default 20000,40000,60000)
#   --duration S       seconds per load (default 10)
#   --keys N           key space, all preloaded (default 100000)
#   --value-size V     value bytes (default 100; a set must fit one datagram)
#   --conns C          UDP sockets of the generator (default 8)
#   --server-cpus L    taskset CPU list of the servers (default 0)
#   --bench-cpus L     taskset CPU list of percore-bench (default 1)
#   --spin-us N        percore-bench --spin-us (default 0)
#   --servers LIST     subset of ebpf,off,memcached (default all three)
#   --out FILE         markdown report (default docs/results/udp_steering.md)
#   --raw DIR          raw JSON and server logs (default bench-results/udp_steering-DATE)
set -euo pipefail
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
PERCORE=$BUILD/percore
MEMCACHED=/usr/bin/memcached
PY=/usr/bin/python3
rates=20000,40000,60000
duration=10
keys=100000
value_size=100
conns=8
server_cpus=0
bench_cpus=1
spin=0
servers=ebpf,off,memcached
out=docs/results/udp_steering.md
raw=bench-results/udp_steering-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case $1 in
    --rates) rates=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --value-size) value_size=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --server-cpus) server_cpus=$2; shift 2 ;;
    --bench-cpus) bench_cpus=$2; shift 2 ;;
    --spin-us) spin=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "udp_steering.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "udp_steering.sh: $BENCH not built (make)" >&2; exit 1; }
mkdir -p "$raw" "$(dirname "$out")"
: > "$raw/runs.jsonl"
cmdlog=$raw/commands.txt
: > "$cmdlog"
log() { echo "udp_steering.sh: $*" >&2; }
. "$(dirname "$0")/lib.sh"
bench_init
# every generator run is bounded: its duration, the drain (--timeout 2) and slack
bench_limit=$(( ${duration%.*} + 30 ))

stats() { # tcp-port -> "udp_requests udp_forwarded udp_dropped" (n/a where absent)
    timeout 5 $PY -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"stats\r\n"); d = b""
while not d.endswith(b"END\r\n"):
    c = s.recv(65536)
    if not c: break
    d += c
st = dict(l.split()[1:3] for l in d.decode().splitlines() if l.startswith("STAT ") and len(l.split()) >= 3)
print(" ".join(st.get(k, "n/a") for k in ("udp_requests", "udp_forwarded", "udp_dropped")))' "$1" || echo "n/a n/a n/a"
}

cpu_ticks() { # utime + stime of the server, in clock ticks (taskset exec'd it: same PID)
    awk '{ print $14 + $15 }' "/proc/$SPID/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)
machine_busy() { # all CPUs: busy ticks other than irq/softirq (user nice system steal)
    awk '$1 == "cpu" { print $2 + $3 + $4 + $9 }' /proc/stat
}
child_ticks() { # CPU time of this shell's waited-for children (the generator), in ticks
    times | awk -v hz="$HZ" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print int(t * hz + 0.5) }'
}

stop_server() { [ -z "$SPID" ] || bench_stop "$SPID" 50; SPID=; }
SPID=

start_server() { # config -> SPID, UPORT, TPORT
    local cfg=$1 argv
    UPORT=$(bench_free_port udp)
    TPORT=$(bench_free_port udp)
    while [ "$TPORT" = "$UPORT" ]; do TPORT=$(bench_free_port udp); done
    case $cfg in
    ebpf|off)
        [ -x "$PERCORE" ] || { log "SKIP $cfg: $PERCORE not built"; return 1; }
        argv=("$PERCORE" -U "$UPORT" -p "$TPORT" -l 127.0.0.1 -t 2 --cpus 0,0 -m 1024 --steering="$cfg" -v) ;;
    memcached)
        [ -x "$MEMCACHED" ] || { log "SKIP memcached: $MEMCACHED not installed"; return 1; }
        argv=("$MEMCACHED" -U "$UPORT" -p "$TPORT" -l 127.0.0.1 -t 2 -m 1024)
        [ "$(id -u)" = 0 ] && argv+=(-u root) ;;
    esac
    bench_start "$cfg" "$server_cpus" "$raw/$cfg.log" "${argv[@]}"
    echo "$BENCH_CMD &" >> "$cmdlog"
    SPID=$BENCH_PID
    bench_wait "$TPORT" 10 || { SPID=; return 1; }
}

bench() { # label, then percore-bench options
    local label=$1; shift
    local a=(taskset -c "$bench_cpus" "$BENCH" --quiet --json --proto udp -s "$label=127.0.0.1:$UPORT"
             --threads 1 --conns "$conns" --keys "$keys" --value-size "$value_size" --timeout 2 "$@")
    printf '%q ' "${a[@]}" >> "$cmdlog"; echo >> "$cmdlog"
    timeout "$bench_limit" "${a[@]}"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
IFS=, read -r -a cfgs <<< "$servers"
IFS=, read -r -a rate_list <<< "$rates"
for cfg in "${cfgs[@]}"; do
    case $cfg in ebpf|off|memcached) ;; *) log "unknown server '$cfg' (ebpf, off, memcached)"; exit 2 ;; esac
    start_server "$cfg" || continue
    label=$cfg
    [ "$cfg" != memcached ] && label=percore-$cfg
    log "$label: warmup (set $keys keys over UDP)"
    echo "# $label: warmup" >> "$cmdlog"
    bench "$label" --warmup --closed --get-ratio 1 --requests 1 --duration 60 > "$raw/$cfg.warmup.json" \
        || { log "$label: warmup failed"; stop_server; continue; }
    for r in "${rate_list[@]}"; do
        log "$label: open loop, gets, $r req/s, ${duration}s"
        read -r q0 f0 d0 < <(stats "$TPORT")
        load1=$(cut -d' ' -f1 /proc/loadavg)
        c0=$(cpu_ticks)
        m0=$(machine_busy)
        g0=$(child_ticks)
        if ! bench "$label" --get-ratio 1 --rate "$r" --duration "$duration" --spin-us "$spin" > "$raw/run.json"; then
            log "$label at $r: run failed"; continue
        fi
        g1=$(child_ticks)
        m1=$(machine_busy)
        c1=$(cpu_ticks)
        read -r q1 f1 d1 < <(stats "$TPORT")
        $PY -c '
import json, sys
r = json.load(open(sys.argv[1]))
def d(a, b):
    return int(b) - int(a) if a != "n/a" and b != "n/a" else None
r["srv_udp_requests"] = d(sys.argv[2], sys.argv[5])
r["srv_udp_forwarded"] = d(sys.argv[3], sys.argv[6])
r["srv_udp_dropped"] = d(sys.argv[4], sys.argv[7])
r["srv_cpu_pct"] = 100.0 * (int(sys.argv[9]) - int(sys.argv[8])) / int(sys.argv[10]) / r["window_s"]
r["load1_before"] = float(sys.argv[11])
# CPU used by anything but this server and this generator (other jobs)
hz, busy = int(sys.argv[10]), int(sys.argv[13]) - int(sys.argv[12])
ours = (int(sys.argv[9]) - int(sys.argv[8])) + (int(sys.argv[15]) - int(sys.argv[14]))
r["other_cpu_pct"] = max(0.0, 100.0 * (busy - ours) / hz / r["window_s"])
print(json.dumps(r))' "$raw/run.json" "$q0" "$f0" "$d0" "$q1" "$f1" "$d1" "$c0" "$c1" "$HZ" "$load1" \
            "$m0" "$m1" "$g0" "$g1" >> "$raw/runs.jsonl"
    done
    stop_server
done
rm -f "$raw/run.json"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------
table=$($PY - "$raw/runs.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| server | offered | achieved | p50 µs | p99 µs | p99.9 µs | max µs | timeouts | errors "
      "| lag p99 µs | udp_forwarded | server CPU | other CPU | load1 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    lat, lag = r["latency_us"], r["send_lag_us"]
    fw, rq = r.get("srv_udp_forwarded"), r.get("srv_udp_requests")
    fws = "n/a" if fw is None else "%d (%.1f%%)" % (fw, 100.0 * fw / rq if rq else 0.0)
    print("| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %d | %d | %.1f | %s | %.0f%% | %.0f%% | %.2f |" % (
        r["server"], r["offered_rps"], r["achieved_rps"], lat["p50"], lat["p99"], lat["p999"], lat["max"],
        r["timeouts"], r["errors"], lag["p99"], fws, r["srv_cpu_pct"], r["other_cpu_pct"], r["load1_before"]))
EOF
)
echo "$table"

cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
ncpu=$(nproc)
hyper=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
{
    echo "# UDP steering: percore (eBPF / off) vs memcached, open-loop gets over UDP"
    echo
    echo "Produced by \`bench/udp_steering.sh\` on $started. Each server: 2 workers/threads"
    echo "sharing CPU $server_cpus (\`taskset -c $server_cpus\`, percore \`--cpus 0,0\`); percore-bench"
    echo "alone on CPU $bench_cpus, one thread, $conns UDP sockets (\`--proto udp\`), Poisson arrivals,"
    echo "latency from each request's scheduled send time. Every key ($keys, ${value_size}-byte"
    echo "values) was set over UDP first; each load ran ${duration} s, gets only (uniform keys)."
    echo "\`udp_forwarded\`: requests percore's workers forwarded to the key's owner during the"
    echo "run (from \`stats\`, as a share of \`udp_requests\`); n/a for memcached. \`server CPU\`:"
    echo "the server process's user+system time during the run, % of one CPU (softirq work of the"
    echo "loopback path is charged to whichever process it interrupts). \`other CPU\`: CPU time used"
    echo "during the run by everything except this server and this generator (user+system+steal of"
    echo "all CPUs, irq/softirq excluded), % of one CPU: near 0 on a quiet machine; more means other"
    echo "jobs competed for the two CPUs. \`load1\`: 1-minute load average just before the run (this"
    echo "script's own processes included)."
    echo
    echo "$table"
    echo
    echo "Machine: ${cpu_model:-unknown CPU}, $ncpu CPUs${hyper:+, $hyper guest}; $(uname -srm)."
    echo "Load average (1/5/15 min) at start: $load_start; at end: $load_end (a shared development"
    echo "machine: other engineers' jobs may have run at the same time; the \`lag p99\` column is the"
    echo "generator's own lateness, a sign of a busy machine when large)."
    echo
    echo "## Commands"
    echo
    echo '```'
    cat "$cmdlog"
    echo '```'
    echo
    echo "## lscpu"
    echo
    echo '```'
    lscpu
    echo '```'
} > "$out"
log "wrote $out (raw JSON in $raw)"
