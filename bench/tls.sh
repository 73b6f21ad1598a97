#!/bin/bash
# bench/tls.sh - what TLS (-Z) costs, percore against memcached in the same run.
#   1. handshakes: `openssl s_time -new` (full TLS 1.3 handshakes, one after
#      another) against each server; handshakes per second of *server* CPU
#      (user+system from /proc) is the per-core rate.
#   2. gets at a fixed open-loop load (percore-bench, Poisson arrivals,
#      latency from the scheduled send) over plain TCP and over TLS:
#      latency percentiles and server CPU (user+system) per request.
# Servers: one worker/thread each, pinned to SERVER_CPU; the load generator
# and s_time pinned to CLIENT_CPU. Certificates are made here (EC P-256,
# self-signed) in a temporary directory.
#   3. with CALLGRIND=1: user-space instructions per get under
#      valgrind --tool=callgrind (closed loop, one connection, one request
#      outstanding: every get is its own wake-up, its own TLS record each
#      way, so a busy machine cannot change the count by batching; runs of
#      CG_N and 2*CG_N gets, the difference / CG_N, so start-up, handshakes
#      and preload cancel out).
#   bench/tls.sh [BUILD_DIR]      knobs: RATE (10000) SECS (5) HS_SECS (5)
#                                  CONNS (8) VALUE (100) SERVER_CPU (0) CLIENT_CPU (1)
#                                  CALLGRIND (0) CG_N (5000) CG_ONLY (0:
#                                  1 = only the callgrind part)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=${1:-build}
PERCORE=$(cd "$build" && pwd)/percore
PB=$(cd "$build" && pwd)/percore-bench
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
RATE=${RATE:-10000} SECS=${SECS:-5} HS_SECS=${HS_SECS:-5} CONNS=${CONNS:-8} VALUE=${VALUE:-100}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
TICK=$(getconf CLK_TCK)
bench_init
dir=$BENCH_TMP
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
TLSOPT="ssl_chain_cert=$dir/cert.pem,ssl_key=$dir/key.pem"
root=(); [ "$(id -u)" = 0 ] && root=(-u root)

tls_wait() { # PORT
    local i
    for i in $(seq 50); do
        if printf 'version\r\n' | timeout 2 openssl s_client -quiet -connect "127.0.0.1:$1" 2>/dev/null \
                | grep -q '^VERSION'; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

ticks() { bench_cpu_ticks "$1" | awk '{ print $1 + $2 }'; }

# run NAME TLS(0|1) CMD...: start, handshakes (TLS only), warm up, measure.
run() {
    local name=$1 tls=$2
    shift 2
    local port; port=$(bench_free_port)
    bench_start "$name" "$SERVER_CPU" "$dir/$name.log" "$@" -p "$port"
    local pid=$BENCH_PID
    echo "# $name: $BENCH_CMD" >> "$dir/commands"
    if [ "$tls" = 1 ]; then tls_wait "$port"; else bench_wait "$port"; fi
    local tflag=(); [ "$tls" = 1 ] && tflag=(--tls)
    local hs="-" hs_cpu="-"
    if [ "$tls" = 1 ]; then
        local t0 t1 n
        t0=$(ticks "$pid")
        n=$(taskset -c "$CLIENT_CPU" openssl s_time -connect "127.0.0.1:$port" -new -time "$HS_SECS" 2>/dev/null \
            | awk '/connections in [0-9.]+ real/ { print $1; exit }')
        t1=$(ticks "$pid")
        hs=$n
        hs_cpu=$(awk -v n="$n" -v t=$((t1 - t0)) -v hz="$TICK" 'BEGIN { printf "%.0f", t ? n / (t / hz) : 0 }')
        echo "# handshakes: taskset -c $CLIENT_CPU openssl s_time -connect 127.0.0.1:$port -new -time $HS_SECS" >> "$dir/commands"
    fi
    taskset -c "$CLIENT_CPU" "$PB" -s "127.0.0.1:$port" "${tflag[@]}" --closed --warmup -n 1 \
        --keys 10000 --value-size "$VALUE" -c "$CONNS" -q > /dev/null
    local t0 t1 csv=$dir/$name.csv
    t0=$(ticks "$pid")
    taskset -c "$CLIENT_CPU" "$PB" -s "$name=127.0.0.1:$port" "${tflag[@]}" -r "$RATE" -d "$SECS" \
        --keys 10000 --value-size "$VALUE" --get-ratio 1 -c "$CONNS" -q --csv "$csv" > "$dir/$name.out"
    t1=$(ticks "$pid")
    echo "# gets: taskset -c $CLIENT_CPU $PB -s 127.0.0.1:$port ${tflag[*]} -r $RATE -d $SECS --keys 10000 --value-size $VALUE --get-ratio 1 -c $CONNS" >> "$dir/commands"
    bench_stop "$pid"
    # csv: server,offered,achieved,p50,p90,p99,p999,p9999,max,errors,timeouts
    tail -n 1 "$csv" | awk -F, -v name="$name" -v hs="$hs" -v hsc="$hs_cpu" -v t=$((t1 - t0)) \
        -v hz="$TICK" -v secs="$SECS" '{
        req = $3 * secs; cpu = req ? t / hz / req * 1e6 : 0
        printf "%-18s %9s %11s %8.0f %8s %8s %8s %8s %10.2f %4s\n", name, hs, hsc, $3, $4, $6, $7, $9, cpu, $10 + $11 }'
}

if [ "${CG_ONLY:-0}" != 1 ]; then
printf "%-18s %9s %11s %8s %8s %8s %8s %8s %10s %4s\n" server handshakes hs/cpu-sec \
    gets/s p50_us p99_us p999_us max_us cpu_us/req err
run percore-plain 0 "$PERCORE" -t 1 -U 0 -l 127.0.0.1
run percore-tls-uring 1 "$PERCORE" -t 1 -U 0 -l 127.0.0.1 --io=uring -Z -o "$TLSOPT"
run percore-tls-epoll 1 "$PERCORE" -t 1 -U 0 -l 127.0.0.1 --io=epoll -Z -o "$TLSOPT"
run memcached-plain 0 "$MEMCACHED" "${root[@]}" -t 1 -U 0 -l 127.0.0.1
run memcached-tls 1 "$MEMCACHED" "${root[@]}" -t 1 -U 0 -l 127.0.0.1 -Z -o "$TLSOPT"
fi
# cg NAME TLS CMD...: instructions per get under callgrind.
cg() {
    local name=$1 tls=$2
    shift 2
    local tflag=(); [ "$tls" = 1 ] && tflag=(--tls)
    local irs=() n
    for n in "$CG_N" $((CG_N * 2)); do
        local port f=$dir/cg.$name.$n.out
        port=$(bench_free_port)
        BENCH_NOFILE=1024 bench_start "$name" "$SERVER_CPU" "$dir/cg.$name.log" valgrind --tool=callgrind \
            --callgrind-out-file="$f" "$@" -p "$port"
        local pid=$BENCH_PID
        if [ "$tls" = 1 ]; then tls_wait "$port"; else bench_wait "$port" 60; fi
        taskset -c "$CLIENT_CPU" "$PB" -s "127.0.0.1:$port" "${tflag[@]}" --warmup --closed -c 1 \
            -n "$n" -d 300 --timeout 10 --keys 10000 --value-size "$VALUE" --get-ratio 1 \
            -q > /dev/null
        BENCH_STOP_WAIT_TENTHS=600 bench_stop "$pid"
        irs+=("$(grep -E '^(summary|totals):' "$f" 2>/dev/null | head -1 | awk '{print $2}')")
    done
    echo "# callgrind $name: valgrind --tool=callgrind $* ; $PB ${tflag[*]} --warmup --closed -c 1 -n $CG_N|$((CG_N * 2)) --keys 10000 --value-size $VALUE --get-ratio 1" >> "$dir/commands"
    awk -v a="${irs[0]:-0}" -v b="${irs[1]:-0}" -v n="$CG_N" -v name="$name" \
        'BEGIN { printf "%-18s %s\n", name, (a && b) ? sprintf("%.0f", (b - a) / n) : "no totals" }'
}

if [ "${CALLGRIND:-0}" = 1 ]; then
    CG_N=${CG_N:-5000}
    echo
    printf "%-18s %s\n" server "instructions/get (user space, callgrind)"
    cg percore-plain 0 "$PERCORE" -t 1 -U 0 -l 127.0.0.1 --io=epoll
    cg percore-tls-epoll 1 "$PERCORE" -t 1 -U 0 -l 127.0.0.1 --io=epoll -Z -o "$TLSOPT"
    cg percore-tls-uring 1 "$PERCORE" -t 1 -U 0 -l 127.0.0.1 --io=uring -Z -o "$TLSOPT"
    # Under valgrind the descriptor hard limit is fixed (1024, 12 of them
    # valgrind's): memcached's -c must fit or it refuses to start.
    cg memcached-plain 0 "$MEMCACHED" "${root[@]}" -c 1012 -t 1 -U 0 -l 127.0.0.1
    cg memcached-tls 1 "$MEMCACHED" "${root[@]}" -c 1012 -t 1 -U 0 -l 127.0.0.1 -Z -o "$TLSOPT"
fi
echo
echo "commands:"
cat "$dir/commands"
