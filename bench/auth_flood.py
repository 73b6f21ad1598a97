#!/usr/bin/python3
"""bench/auth_flood.py - what a SCRAM password guesser costs the other clients
of a worker: the server runs -S -t 1 pinned to one CPU; one connection,
logged in, sends gets one at a time (1 ms apart) and records their latency,
first idle, then while another connection pipelines N SCRAM-SHA-256 starts
(each makes libsasl2 derive a key: milliseconds of CPU). percore and
memcached in the same run. Servers are started here and stopped by PID.

usage: bench/auth_flood.py [--starts N] [--cpu C] [--servers percore,memcached]
"""
import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = {"percore": os.path.join(REPO, "build", "percore"), "memcached": "/usr/bin/memcached"}


def pkt(op, key=b"", val=b""):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), 0, 0, 0, len(key) + len(val), 0, 0) + key + val


def reply(s):
    h = b""
    while len(h) < 24:
        d = s.recv(24 - len(h))
        if not d:
            raise ConnectionError("closed")
        h += d
    bl = struct.unpack(">I", h[8:12])[0]
    body = b""
    while len(body) < bl:
        body += s.recv(bl - len(body))
    return struct.unpack(">H", h[6:8])[0], body


def connect(port):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=120)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def lat(s, n):
    out = []
    for _ in range(n):
        t = time.monotonic()
        s.sendall(pkt(0x00, b"k"))
        reply(s)
        out.append((time.monotonic() - t) * 1000)
        time.sleep(0.001)
    return sorted(out)


def one(name, starts, cpu, conf):
    port = free_port()
    argv = ["taskset", "-c", str(cpu), BIN[name], "-S", "-p", str(port), "-t", "1", "-U", "0"]
    argv += ["-u", "root"] if name == "memcached" and os.geteuid() == 0 else []
    argv += ["--io=epoll"] if name == "percore" else []
    proc = subprocess.Popen(argv, env=dict(os.environ, SASL_CONF_PATH=conf),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        good = connect(port)
        good.sendall(pkt(0x21, b"PLAIN", b"\0alice\0s3cret-pw"))
        assert reply(good)[0] == 0
        idle = lat(good, 300)
        att = connect(port)
        first = "n,,n=alice,r=" + base64.b64encode(os.urandom(18)).decode()
        att.sendall(pkt(0x21, b"SCRAM-SHA-256", first.encode()) * starts)
        during = lat(good, 300)
        for _ in range(starts):
            reply(att)
        q = lambda v, f: v[min(len(v) - 1, int(len(v) * f))]
        print(f"{name:9s} neighbour get ms: idle p50 {q(idle, .5):.2f} max {idle[-1]:.2f} | "
              f"during {starts} pipelined SCRAM starts: p50 {q(during, .5):.2f} "
              f"p99 {q(during, .99):.2f} max {during[-1]:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=200)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--servers", default="percore,memcached")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["/usr/sbin/saslpasswd2", "-p", "-c", "-f", f"{d}/sasldb2", "-a", "memcached",
                        "alice"], input=b"s3cret-pw", check=True, timeout=10)
        with open(f"{d}/memcached.conf", "w") as f:
            f.write(f"mech_list: plain scram-sha-256\nsasldb_path: {d}/sasldb2\n")
        for name in a.servers.split(","):
            one(name, a.starts, a.cpu, d)


if __name__ == "__main__":
    sys.exit(main())
