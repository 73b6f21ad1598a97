#!/bin/bash
# bench/auth_cost.sh - what authentication costs on the request path: the
# user-space instructions of one get (valgrind --tool=callgrind, percore -t 1
# --io=epoll) on a connection that has logged in, against the same get with
# authentication off:
#   text     percore                vs  percore -Y FILE      (ASCII login)
#   binary   percore -B binary      vs  percore -S           (SASL PLAIN)
# Each configuration runs twice, with N1 and N2 gets on one connection (one
# request in flight, as a waiting client sends them); the difference of the
# two totals over N2-N1 is the cost of a get, start-up and login cancelled
# out. Prints one line per configuration. Servers are stopped by PID.
#
# usage: bench/auth_cost.sh [N1 [N2]]     (default 2000 12000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${PERCORE_BUILD:-$repo/build}
N1=${1:-2000}
N2=${2:-12000}
PY=/usr/bin/python3
. "$here/lib.sh"
bench_init
BENCH_STOP_WAIT_TENTHS=600
work=$(mktemp -d "${TMPDIR:-/tmp}/auth_cost.XXXXXX")
printf 'alice:s3cret-pw\n' > "$work/authfile"
printf 's3cret-pw' | /usr/sbin/saslpasswd2 -p -c -f "$work/sasldb2" -a memcached alice
printf 'mech_list: plain\nsasldb_path: %s\n' "$work/sasldb2" > "$work/memcached.conf"
export SASL_CONF_PATH=$work

client() { # PORT MODE N: log in (MODE text-auth/bin-auth), then N gets
    "$PY" - "$@" <<'EOF'
import socket, struct, sys, time
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60); break
    except OSError:
        time.sleep(0.1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def until(end):
    b = b""
    while not b.endswith(end):
        b += s.recv(65536)
    return b
def pkt(op, key=b"", ext=b"", val=b""):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                       len(key) + len(ext) + len(val), 0, 0) + ext + key + val
def reply():
    h = b""
    while len(h) < 24:
        h += s.recv(24 - len(h))
    bl = struct.unpack(">I", h[8:12])[0]
    body = b""
    while len(body) < bl:
        body += s.recv(bl - len(body))
    return h[7], body   # low byte of status
if mode.startswith("text"):
    if mode == "text-auth":
        s.sendall(b"set a 0 0 15\r\nalice s3cret-pw\r\n"); assert until(b"\r\n") == b"STORED\r\n"
    s.sendall(b"set key 0 0 10\r\n0123456789\r\n"); until(b"\r\n")
    for _ in range(n):
        s.sendall(b"get key\r\n"); until(b"END\r\n")
else:
    if mode == "bin-auth":
        s.sendall(pkt(0x21, b"PLAIN", val=b"\0alice\0s3cret-pw")); assert reply()[0] == 0
    s.sendall(pkt(0x01, b"key", struct.pack(">II", 0, 0), b"0123456789")); reply()
    for _ in range(n):
        s.sendall(pkt(0x00, b"key")); reply()
s.close()
EOF
}

total_ir() { # one run: prints the callgrind total of the server
    local mode=$1 n=$2; shift 2
    local port out
    port=$(bench_free_port)
    out=$work/cg.$mode.$n
    bench_start percore 0 "$work/log.$mode.$n" valgrind --tool=callgrind \
        --callgrind-out-file="$out" "$BUILD/percore" -p "$port" -U 0 -t 1 --io=epoll "$@"
    local pid=$BENCH_PID
    client "$port" "$mode" "$n"
    bench_stop "$pid" 600
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

row() { # LABEL MODE ARGS...
    local label=$1 mode=$2; shift 2
    local a b
    a=$(total_ir "$mode" "$N1" "$@")
    b=$(total_ir "$mode" "$N2" "$@")
    echo "$label $(( (b - a) / (N2 - N1) )) instructions/get"
}

row "text, no auth      " text
row "text, -Y (logged in)" text-auth -Y "$work/authfile"
row "binary, -B binary  " bin -B binary
row "binary, -S (logged in)" bin-auth -S
rm -rf "$work"
