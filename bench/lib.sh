# bench/lib.sh - sourced by the bench/*.sh scripts that start their own
# servers, so that every one of them treats those servers the same way:
# pinned to the CPUs it was told (taskset execs the server, so the PID we hold
# is the server's own), its output kept under a size cap (a -v server under a
# long run must not fill the disk), waited for until it answers, and stopped
# by PID only (TERM, a grace period, then KILL), also when the script is
# interrupted. Never a broad kill: other people's servers may share the box.
#
#   . "$here/lib.sh"; bench_init        (installs the EXIT/INT/TERM traps)
#   bench_free_port [udp]               a port free on 127.0.0.1 for TCP (and UDP)
#   bench_start NAME CPUS LOG CMD...    start CMD on CPUS; output to LOG ("-": our
#                                       stderr); sets BENCH_PID and BENCH_CMD (the
#                                       command line, quoted, for a commands file)
#   bench_wait PORT [SECONDS]           until `version` is answered on PORT (default
#                                       10 s); fails at once if the server died
#   bench_stop [PID [TENTHS]]           TERM, up to TENTHS tenths of a second, KILL
#   bench_track PID                     stop PID too when the script ends
#   bench_stats PORT [SUB]              `stats [SUB]` as "name value" lines
#   bench_stat_of "$stats" NAME         one value from bench_stats' output
#   bench_cpu_ticks PID                 "utime stime" of the process, in clock ticks
# Knobs (environment): BENCH_LOG_CAP bytes kept of a server's output (default
# 1 MiB); BENCH_STOP_WAIT_TENTHS grace before KILL (default 100: under
# valgrind a server needs up to a minute to write its profile, so compare.sh
# passes 600 there); BENCH_NOFILE, for one bench_start, the descriptor limit
# to start the server with (valgrind fixes the hard limit).

BENCH_PY=${PY:-/usr/bin/python3}
BENCH_LOG_CAP=${BENCH_LOG_CAP:-1048576}
BENCH_STOP_WAIT_TENTHS=${BENCH_STOP_WAIT_TENTHS:-100}
BENCH_PID=
BENCH_CMD=
BENCH_TMP=
BENCH_PIDS=()
declare -A BENCH_CAP_PID=() BENCH_NAME_OF=() BENCH_LOG_OF=() BENCH_FIFO_OF=()

bench_log() { echo "$(basename "$0"): $*" >&2; }

bench_init() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-lib.XXXXXX")
    trap bench_stop_all EXIT
    trap 'exit 130' INT TERM
}

bench_free_port() {
    if [ "${1:-}" = udp ]; then
        "$BENCH_PY" -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()'
    else
        "$BENCH_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    fi
}

# Copies the first CAP bytes of stdin, then drains the rest (the server must
# never block on, or die of, a full or closed pipe) and says how much it
# dropped.
bench_cap() {
    local cap=$1 more
    head -c "$cap"
    more=$(wc -c)
    if [ "$more" -gt 0 ]; then
        printf '\n[bench/lib.sh: %s more bytes of output dropped, BENCH_LOG_CAP=%s]\n' "$more" "$cap"
    fi
    return 0
}

bench_start() { # NAME CPUS LOG CMD...
    local name=$1 cpus=$2 log=$3
    shift 3
    [ -n "$BENCH_TMP" ] || bench_init
    local fifo=$BENCH_TMP/out.${#BENCH_PIDS[@]}.$RANDOM cap_pid
    mkfifo "$fifo"
    if [ "$log" = - ]; then
        bench_cap "$BENCH_LOG_CAP" < "$fifo" >&2 &
    else
        bench_cap "$BENCH_LOG_CAP" < "$fifo" > "$log" &
    fi
    cap_pid=$!
    local nofile=${BENCH_NOFILE:-}
    BENCH_CMD="${nofile:+ulimit -n $nofile; }$(printf '%q ' taskset -c "$cpus" "$@")"
    BENCH_CMD=${BENCH_CMD% }
    ( [ -n "$nofile" ] && ulimit -n "$nofile"; exec taskset -c "$cpus" "$@" ) > "$fifo" 2>&1 &
    BENCH_PID=$!
    # The FIFO stays until the server is stopped: removing it before both
    # children have opened it would leave one of them waiting forever.
    BENCH_PIDS+=("$BENCH_PID")
    BENCH_FIFO_OF[$BENCH_PID]=$fifo
    BENCH_CAP_PID[$BENCH_PID]=$cap_pid
    BENCH_NAME_OF[$BENCH_PID]=$name
    BENCH_LOG_OF[$BENCH_PID]=$log
    return 0
}

# The server answering `version` (not merely accepting) is what the benches
# need: a connection can be accepted while a slow (valgrind) server is
# still setting up its workers.
bench_wait() { # PORT [SECONDS]
    local port=$1 secs=${2:-10} pid=$BENCH_PID line
    local name=${BENCH_NAME_OF[$pid]:-server} log=${BENCH_LOG_OF[$pid]:--}
    local end=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$end" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            bench_stop "$pid" 0
            if [ "$log" = - ]; then
                bench_log "$name exited at start-up"
            else
                bench_log "$name exited at start-up, see $log:"
                tail -n 20 "$log" >&2 || true
            fi
            return 1
        fi
        line=$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'version\r\n' >&3 &&
                 read -r -t 1 l <&3 && echo "$l") 2>/dev/null || true)
        case $line in VERSION*) return 0 ;; esac
        sleep 0.1
    done
    bench_log "$name did not answer on port $port within ${secs}s"
    bench_stop "$pid"
    return 1
}

bench_track() { BENCH_PIDS+=("$1"); }

bench_stop() { # [PID [TENTHS]]
    local pid=${1:-$BENCH_PID} tenths=${2:-$BENCH_STOP_WAIT_TENTHS} i keep=() p
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < tenths; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    # the server's last words are in the log once its capper has drained them
    if [ -n "${BENCH_CAP_PID[$pid]:-}" ]; then
        wait "${BENCH_CAP_PID[$pid]}" 2>/dev/null || true
        unset "BENCH_CAP_PID[$pid]"
    fi
    if [ -n "${BENCH_FIFO_OF[$pid]:-}" ]; then
        rm -f "${BENCH_FIFO_OF[$pid]}"
        unset "BENCH_FIFO_OF[$pid]"
    fi
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
    [ "$pid" != "$BENCH_PID" ] || BENCH_PID=
    return 0
}

bench_stop_all() {
    local p
    for p in "${BENCH_PIDS[@]}"; do bench_stop "$p"; done
    [ -z "$BENCH_TMP" ] || rm -rf "$BENCH_TMP"
    return 0
}

bench_stats() { # PORT [SUBCOMMAND]
    timeout 10 "$BENCH_PY" - "$1" "${2:-}" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
sub = sys.argv[2]
s.sendall(b"stats" + (b" " + sub.encode() if sub else b"") + b"\r\n")
d = b""
# a reset answers RESET; a subcommand the server lacks, ERROR
while not d.endswith((b"END\r\n", b"RESET\r\n", b"ERROR\r\n")):
    c = s.recv(65536)
    if not c:
        break
    d += c
for ln in d.decode().split("\r\n"):
    if ln.startswith("STAT "):
        print(ln[5:])
EOF
}

bench_stat_of() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }

# taskset execs the server, so the PID we hold is the server's own.
bench_cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
