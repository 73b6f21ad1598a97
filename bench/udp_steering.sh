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
# --netns runs the same comparison over a veth pair instead of loopback, with
# --steering=xdp added: the script creates a server namespace and a client
# namespace joined by a veth pair (removed on exit, whatever happens), turns
# the client end's transmit checksum offload off (so datagrams carry full
# checksums, as off a wire; see docs/steering.md), starts each server in the
# server namespace and percore-bench in the client one. Percore's workers
# get --cpus from --worker-cpus. Beside latency it reports CPU per request
# per core: the server's threads (user, system; /proc/PID/task/*/stat), the
# softirq time of each core (/proc/stat; machine-wide, so other jobs' too),
# the cpumap kthreads where XDP-redirected packets go up the stack
# (/proc/PID/stat of cpumap/*), and NET_RX softirqs (/proc/softirqs). Needs
# root (namespaces, XDP).
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
#   --servers LIST     subset of xdp,ebpf,off,memcached (default ebpf,off,memcached;
#                      with --netns all four)
#   --netns            over a veth pair between two namespaces (see above)
#   --worker-cpus L    percore --cpus (default 0,0: both workers on one CPU)
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
servers=
netns=0
worker_cpus=0,0
out=
HOST=127.0.0.1
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
    --netns) netns=1; shift ;;
    --worker-cpus) worker_cpus=$2; shift 2 ;;
    -h|--help) sed -n '2,46p' "$0"; exit 0 ;;
    *) echo "udp_steering.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "udp_steering.sh: $BENCH not built (make)" >&2; exit 1; }
if [ "$netns" = 1 ]; then
    servers=${servers:-xdp,ebpf,off,memcached}
    out=${out:-docs/results/udp_steering_xdp.md}
else
    servers=${servers:-ebpf,off,memcached}
    out=${out:-docs/results/udp_steering.md}
fi
mkdir -p "$raw" "$(dirname "$out")"
: > "$raw/runs.jsonl"
cmdlog=$raw/commands.txt
: > "$cmdlog"
log() { echo "udp_steering.sh: $*" >&2; }
. "$(dirname "$0")/lib.sh"
bench_init
CLI=()   # prefix that runs a command where the clients are
SRV=()   # ... where the servers are
NS_S= NS_C=
ns_cleanup() {
    bench_stop_all
    [ -z "$NS_S" ] || ip netns del "$NS_S" 2>/dev/null || true
    [ -z "$NS_C" ] || ip netns del "$NS_C" 2>/dev/null || true
}
if [ "$netns" = 1 ]; then
    for t in ip ethtool; do
        command -v $t >/dev/null || { log "--netns needs $t (scripts/deps.sh test)"; exit 1; }
    done
    [ "$(id -u)" = 0 ] || { log "--netns needs root (network namespaces, XDP)"; exit 1; }
    NS_S=pcb-s-$$ NS_C=pcb-c-$$
    trap ns_cleanup EXIT
    net=$(( $$ % 250 + 1 ))
    HOST=10.214.$net.1
    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add "pbs$$" netns "$NS_S" type veth peer name "pbc$$" netns "$NS_C"
    ip -n "$NS_S" addr add "$HOST/24" dev "pbs$$"
    ip -n "$NS_C" addr add "10.214.$net.2/24" dev "pbc$$"
    for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_S" link set "pbs$$" up
    ip -n "$NS_C" link set "pbc$$" up
    ip netns exec "$NS_C" ethtool -K "pbc$$" tx off >/dev/null
    CLI=(ip netns exec "$NS_C")
    SRV=(ip netns exec "$NS_S")
    { echo "# set-up (as root)"
      echo "ip netns add $NS_S; ip netns add $NS_C"
      echo "ip link add pbs$$ netns $NS_S type veth peer name pbc$$ netns $NS_C"
      echo "ip -n $NS_S addr add $HOST/24 dev pbs$$; ip -n $NS_C addr add 10.214.$net.2/24 dev pbc$$"
      echo "ip -n $NS_S link set pbs$$ up; ip -n $NS_C link set pbc$$ up  # and lo in both"
      echo "ip netns exec $NS_C ethtool -K pbc$$ tx off"; } >> "$cmdlog"
fi
# every generator run is bounded: its duration, the drain (--timeout 2) and slack
bench_limit=$(( ${duration%.*} + 30 ))

stats() { # tcp-port -> "udp_requests udp_forwarded udp_dropped xdp_redirected" (n/a where absent)
    timeout 5 "${CLI[@]}" $PY -c '
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[1])), timeout=3)
s.sendall(b"stats\r\n"); d = b""
while not d.endswith(b"END\r\n"):
    c = s.recv(65536)
    if not c: break
    d += c
st = dict(l.split()[1:3] for l in d.decode().splitlines() if l.startswith("STAT ") and len(l.split()) >= 3)
print(" ".join(st.get(k, "n/a") for k in ("udp_requests", "udp_forwarded", "udp_dropped", "xdp_redirected")))' "$1" "$HOST" \
        || echo "n/a n/a n/a n/a"
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

snap() { # per-core CPU counters as JSON: /proc/stat, /proc/softirqs, the server's threads, cpumap kthreads
    $PY - "${SPID:-0}" <<'PYEOF'
import glob, json, os, sys
out = {"stat": {}, "net_rx": {}, "srv": {}, "cpumap": {}}
for ln in open("/proc/stat"):
    f = ln.split()
    if f[0].startswith("cpu") and f[0] != "cpu":
        out["stat"][f[0][3:]] = {"user": int(f[1]), "system": int(f[3]), "softirq": int(f[7])}
lines = open("/proc/softirqs").read().split("\n")
cpus = [c[3:] for c in lines[0].split()]
for ln in lines[1:]:
    f = ln.split()
    if f and f[0] == "NET_RX:":
        out["net_rx"] = dict(zip(cpus, map(int, f[1:])))
def stat_of(path):
    try:
        t = open(path).read()
    except OSError:
        return None
    f = t[t.rindex(")") + 2:].split()   # fields from 3 (state) on
    return int(f[11]), int(f[12]), f[36]  # utime, stime, processor
for p in glob.glob("/proc/%s/task/*/stat" % sys.argv[1]):
    s = stat_of(p)
    if s:   # per thread: its ticks and the CPU it last ran on
        out["srv"][p.split("/")[4]] = {"user": s[0], "system": s[1], "cpu": s[2]}
for p in glob.glob("/proc/[0-9]*/comm"):
    try:
        comm = open(p).read().strip()
    except OSError:
        continue
    if comm.startswith("cpumap/"):
        s = stat_of(p[:-4] + "stat")
        if s:
            cpu = comm.split("/")[1]
            out["cpumap"][cpu] = out["cpumap"].get(cpu, 0) + s[0] + s[1]
print(json.dumps(out))
PYEOF
}

stop_server() { [ -z "$SPID" ] || bench_stop "$SPID" 50; SPID=; }
SPID=

start_server() { # config -> SPID, UPORT, TPORT
    local cfg=$1 argv
    if [ "$netns" = 1 ]; then   # a namespace of its own: any port is free
        UPORT=11311 TPORT=11211
    else
        UPORT=$(bench_free_port udp)
        TPORT=$(bench_free_port udp)
        while [ "$TPORT" = "$UPORT" ]; do TPORT=$(bench_free_port udp); done
    fi
    case $cfg in
    xdp|ebpf|off)
        [ -x "$PERCORE" ] || { log "SKIP $cfg: $PERCORE not built"; return 1; }
        argv=("${SRV[@]}" "$PERCORE" -U "$UPORT" -p "$TPORT" -l "$HOST" -t 2 --cpus "$worker_cpus" -m 1024
              --steering="$cfg" -v) ;;
    memcached)
        [ -x "$MEMCACHED" ] || { log "SKIP memcached: $MEMCACHED not installed"; return 1; }
        argv=("${SRV[@]}" "$MEMCACHED" -U "$UPORT" -p "$TPORT" -l "$HOST" -t 2 -m 1024)
        [ "$(id -u)" = 0 ] && argv+=(-u root) ;;
    esac
    bench_start "$cfg" "$server_cpus" "$raw/$cfg.log" "${argv[@]}"
    echo "$BENCH_CMD &" >> "$cmdlog"
    SPID=$BENCH_PID
    if [ "$netns" = 0 ]; then
        bench_wait "$TPORT" 10 || { SPID=; return 1; }
        return 0
    fi
    local end=$((SECONDS + 10)) line
    while [ "$SECONDS" -lt "$end" ] && kill -0 "$SPID" 2>/dev/null; do
        line=$("${CLI[@]}" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "version\r\n" >&3 &&
               read -r -t 1 l <&3 && echo "$l"' "$HOST" "$TPORT" 2>/dev/null || true)
        case $line in VERSION*) return 0 ;; esac
        sleep 0.1
    done
    log "$cfg did not answer, see $raw/$cfg.log"; tail -n 20 "$raw/$cfg.log" >&2 || true
    stop_server
    return 1
}

bench() { # label, then percore-bench options
    local label=$1; shift
    local a=("${CLI[@]}" taskset -c "$bench_cpus" "$BENCH" --quiet --json --proto udp -s "$label=$HOST:$UPORT"
             --threads 1 --conns "$conns" --keys "$keys" --value-size "$value_size" --timeout 2 "$@")
    printf '%q ' "${a[@]}" >> "$cmdlog"; echo >> "$cmdlog"
    timeout "$bench_limit" "${a[@]}"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
IFS=, read -r -a cfgs <<< "$servers"
IFS=, read -r -a rate_list <<< "$rates"
for cfg in "${cfgs[@]}"; do
    case $cfg in xdp|ebpf|off|memcached) ;; *) log "unknown server '$cfg' (xdp, ebpf, off, memcached)"; exit 2 ;; esac
    start_server "$cfg" || continue
    label=$cfg
    [ "$cfg" != memcached ] && label=percore-$cfg
    log "$label: warmup (set $keys keys over UDP)"
    echo "# $label: warmup" >> "$cmdlog"
    bench "$label" --warmup --closed --get-ratio 1 --requests 1 --duration 60 > "$raw/$cfg.warmup.json" \
        || { log "$label: warmup failed"; stop_server; continue; }
    for r in "${rate_list[@]}"; do
        log "$label: open loop, gets, $r req/s, ${duration}s"
        read -r q0 f0 d0 x0 < <(stats "$TPORT")
        load1=$(cut -d' ' -f1 /proc/loadavg)
        c0=$(cpu_ticks)
        m0=$(machine_busy)
        g0=$(child_ticks)
        snap > "$raw/snap0.json"
        if ! bench "$label" --get-ratio 1 --rate "$r" --duration "$duration" --spin-us "$spin" > "$raw/run.json"; then
            log "$label at $r: run failed"; continue
        fi
        snap > "$raw/snap1.json"
        g1=$(child_ticks)
        m1=$(machine_busy)
        c1=$(cpu_ticks)
        read -r q1 f1 d1 x1 < <(stats "$TPORT")
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
r["srv_xdp_redirected"] = d(sys.argv[16], sys.argv[17])
# CPU per request per core, in microseconds (ticks of 1/HZ s), and NET_RX
# softirqs per request per core.
a, b = json.load(open(sys.argv[18])), json.load(open(sys.argv[19]))
n = max(1, r["completed"])
us = 1e6 / hz / n
cores = {}
# The ticks of a server thread during the run go to the CPU it was on at the end:
# exact for pinned workers, an approximation for threads that migrate.
srv = {}
for tid, tb in b["srv"].items():
    ta = a["srv"].get(tid, {"user": 0, "system": 0})
    d2 = srv.setdefault(tb["cpu"], [0, 0])
    d2[0] += tb["user"] - ta["user"]
    d2[1] += tb["system"] - ta["system"]
for c in sorted(b["stat"], key=int):
    cores[c] = {
        "srv_user_us": srv.get(c, [0, 0])[0] * us,
        "srv_sys_us": srv.get(c, [0, 0])[1] * us,
        "softirq_us": (b["stat"][c]["softirq"] - a["stat"][c]["softirq"]) * us,
        "cpumap_us": (b["cpumap"].get(c, 0) - a["cpumap"].get(c, 0)) * us,
        "net_rx_per_req": (b["net_rx"].get(c, 0) - a["net_rx"].get(c, 0)) / n,
    }
r["cores"] = cores
print(json.dumps(r))' "$raw/run.json" "$q0" "$f0" "$d0" "$q1" "$f1" "$d1" "$c0" "$c1" "$HZ" "$load1" \
            "$m0" "$m1" "$g0" "$g1" "$x0" "$x1" "$raw/snap0.json" "$raw/snap1.json" >> "$raw/runs.jsonl"
    done
    stop_server
done
rm -f "$raw/run.json" "$raw/snap0.json" "$raw/snap1.json"
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
cores=$($PY - "$raw/runs.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if rows:
    cs = sorted(rows[0]["cores"], key=int)
    head = "| server | offered | xdp_redirected |"
    for c in cs:
        head += " cpu%s user | cpu%s sys | cpu%s softirq | cpu%s cpumap | cpu%s NET_RX/req |" % (c, c, c, c, c)
    print(head)
    print("|---|---:|---:|" + "---:|" * (5 * len(cs)))
    for r in rows:
        x = r.get("srv_xdp_redirected")
        line = "| %s | %d | %s |" % (r["server"], r["offered_rps"], "n/a" if x is None else "%d" % x)
        for c in cs:
            k = r["cores"][c]
            line += " %.2f | %.2f | %.2f | %.2f | %.2f |" % (k["srv_user_us"], k["srv_sys_us"], k["softirq_us"],
                                                          k["cpumap_us"], k["net_rx_per_req"])
        print(line)
EOF
)
echo "$table"
echo
echo "$cores"

cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
ncpu=$(nproc)
hyper=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
{
    if [ "$netns" = 1 ]; then
    echo "# UDP steering over a veth pair: percore (XDP / eBPF / off) vs memcached, open-loop gets"
    echo
    echo "Produced by \`bench/udp_steering.sh --netns\` on $started. The servers run in a network"
    echo "namespace of their own, percore-bench in another, joined by a veth pair whose client end"
    echo "has transmit checksum offload off (full checksums, as from a wire). The veth receive path"
    echo "(driver, and without XDP the whole IP/UDP stack in softirq) runs on the CPU that sent the"
    echo "packet, i.e. the generator's CPU $bench_cpus: it plays the NIC's interrupt CPU. With"
    echo "\`--steering=xdp\` only the XDP program runs there; the cpumap kthread of the owner's CPU"
    echo "builds the skb and runs the stack. Each server: 2 workers/threads, \`taskset -c $server_cpus\`,"
    echo "percore \`--cpus $worker_cpus\`; percore-bench on CPU $bench_cpus, one thread, $conns UDP sockets"
    echo "(\`--proto udp\`), Poisson arrivals,"
    else
    echo "# UDP steering: percore (eBPF / off) vs memcached, open-loop gets over UDP"
    echo
    echo "Produced by \`bench/udp_steering.sh\` on $started. Each server: 2 workers/threads"
    echo "sharing CPU $server_cpus (\`taskset -c $server_cpus\`, percore \`--cpus $worker_cpus\`); percore-bench"
    echo "alone on CPU $bench_cpus, one thread, $conns UDP sockets (\`--proto udp\`), Poisson arrivals,"
    fi
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
    echo "CPU per request per core, in microseconds (clock ticks of 1/$HZ s over the run, divided by"
    echo "the requests answered): \`user\`/\`sys\`: the server's threads that ran on that core"
    echo "(/proc/PID/task/*/stat; a thread that migrates is counted on the core it was on at the"
    echo "end: exact for percore's pinned workers, approximate for memcached's); \`softirq\`: the core's softirq time (/proc/stat, the whole"
    echo "machine's: other jobs' network work counts too); \`cpumap\`: the cpumap kthreads of that core"
    echo "(XDP steering only: where the redirected packets go up the stack); \`NET_RX/req\`: NET_RX"
    echo "softirqs raised on that core per request (/proc/softirqs). The generator's own CPU is not"
    echo "included. A tick is 10 ms: at a few thousand requests per second a cell moves by whole"
    echo "hundredths of a microsecond at best, and any other job's softirq on a core lands in it."
    echo
    echo "$cores"
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
