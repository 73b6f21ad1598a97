#!/usr/bin/python3
"""attack_soak.py — normal clients beside clients that do not read.

For each round, for each server (percore, then memcached; the order
alternates between rounds), two phases of DURATION seconds each:
  baseline  NORMAL closed-loop clients (get/set of 100-byte values on
            10,000 preloaded keys, one request per round trip)
  attack    the same clients, plus ATTACKERS connections that write
            `get big` 200 times (a 1 MB value) and never read, and SLOW
            connections that do the same but read 16 KiB every 100 ms.
Printed per server and phase (median of the rounds): normal clients'
requests/s, p50 / p99 / max latency, errors (timeouts, wrong replies),
the server's peak resident memory, and its user and kernel CPU per normal
request.

The server runs on CPU 0 (`-t 1`), every client on CPU 1 (taskset). Every
load is bounded in time and connections; servers are stopped by PID, their
stderr goes to a temporary file read back at most 64 KiB.

  bench/attack_soak.py [--duration 20] [--rounds 3] [--percore build/percore]
"""
import argparse
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

VALUE = b"v" * 100
BIG = b"B" * (1000 * 1000)
NKEYS = 10000
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(kind, binary, port):
    args = [binary, "-p", str(port), "-t", "1", "-m", "64", "-c", "4096", "-l", "127.0.0.1"]
    if kind == "memcached":
        args += ["-U", "0"] + (["-u", "root"] if os.geteuid() == 0 else [])
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(["taskset", "-c", "0"] + args, stdout=err, stderr=err,
                         stdin=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"version\r\n")
                if s.recv(100).startswith(b"VERSION"):
                    return p, err
        except OSError:
            time.sleep(0.02)
    p.kill()
    p.wait()
    err.seek(0)
    sys.exit("%s did not start: %s" % (binary, err.read(65536).decode(errors="replace")))


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])   # utime, stime


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def readline(s, buf):
    while b"\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise OSError("closed")
        buf += d
    i = buf.index(b"\r\n")
    return buf[:i], buf[i + 2:]


def normal_client(port, seconds, seed, out):
    rng = random.Random(seed)
    lat, errors, n = [], 0, 0
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    buf = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        k = b"key%d" % rng.randrange(NKEYS)
        t = time.monotonic()
        try:
            if rng.random() < 0.9:
                s.sendall(b"get " + k + b"\r\n")
                line, buf = readline(s, buf)
                if line.startswith(b"VALUE"):
                    while len(buf) < len(VALUE) + 7:
                        buf += s.recv(65536)
                    ok = buf[:len(VALUE)] == VALUE and buf[len(VALUE):len(VALUE) + 7] == b"\r\nEND\r\n"
                    buf = buf[len(VALUE) + 7:]
                else:
                    ok = line == b"END"
            else:
                s.sendall(b"set " + k + b" 0 0 100\r\n" + VALUE + b"\r\n")
                line, buf = readline(s, buf)
                ok = line == b"STORED"
            if not ok:
                errors += 1
        except OSError:
            errors += 1
            s.close()
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            buf = b""
        lat.append(time.monotonic() - t)
        n += 1
    s.close()
    out.put((lat, errors, n))


def attackers(port, seconds, n_quiet, n_slow, ready):
    conns = []
    for _ in range(n_quiet + n_slow):
        a = socket.create_connection(("127.0.0.1", port), timeout=5)
        a.sendall(b"get big\r\n" * 200)
        conns.append(a)
    ready.set()
    slow = conns[n_quiet:]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for a in slow:
            try:
                a.settimeout(0.001)
                a.recv(16384)
            except OSError:
                pass
        time.sleep(0.1)
    for a in conns:
        a.close()


def preload(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"set big 0 0 %d\r\n" % len(BIG) + BIG + b"\r\n")
        buf = b""
        line, buf = readline(s, buf)
        assert line == b"STORED", line
        batch = b"".join(b"set key%d 0 0 100 noreply\r\n" % i + VALUE + b"\r\n"
                         for i in range(NKEYS))
        s.sendall(batch + b"version\r\n")
        line, buf = readline(s, buf)
        assert line.startswith(b"VERSION"), line


def phase(kind, binary, attack, a):
    port = free_port()
    p, err = start(kind, binary, port)
    try:
        preload(port)
        ctx = mp.get_context("fork")
        out = ctx.Queue()
        ready = ctx.Event()
        procs = []
        if attack:
            ap = ctx.Process(target=attackers, args=(port, a.duration + 1, a.attackers, a.slow, ready))
            ap.start()
            procs.append(ap)
            ready.wait(30)
        u0, s0 = cpu_ticks(p.pid)
        peak = rss_mb(p.pid)
        clients = [ctx.Process(target=normal_client, args=(port, a.duration, 1000 + i, out))
                   for i in range(a.normal)]
        for c in clients:
            c.start()
        end = time.monotonic() + a.duration
        while time.monotonic() < end:
            peak = max(peak, rss_mb(p.pid))
            time.sleep(0.25)
        res = [out.get(timeout=a.duration + 30) for _ in clients]
        u1, s1 = cpu_ticks(p.pid)
        for c in clients + procs:
            c.join(30)
        lat = sorted(x for r in res for x in r[0])
        n = sum(r[2] for r in res)
        errors = sum(r[1] for r in res)
        alive = p.poll() is None
        return {
            "rps": n / a.duration, "p50": lat[len(lat) // 2] * 1e3,
            "p99": lat[int(len(lat) * 0.99)] * 1e3, "max": lat[-1] * 1e3,
            "errors": errors + (0 if alive else 1), "rss": peak,
            "user_us": (u1 - u0) / CLK / max(n, 1) * 1e6, "sys_us": (s1 - s0) / CLK / max(n, 1) * 1e6,
        }
    finally:
        stop(p)
        err.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--normal", type=int, default=4, help="normal client processes")
    ap.add_argument("--attackers", type=int, default=100, help="connections that never read")
    ap.add_argument("--slow", type=int, default=20, help="connections that read 16 KiB / 100 ms")
    ap.add_argument("--percore", default="build/percore")
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    a = ap.parse_args()
    os.sched_setaffinity(0, {1})   # clients on CPU 1; servers get CPU 0
    servers = [("percore", a.percore), ("memcached", a.memcached)]
    results = {}
    for r in range(a.rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for kind, binary in order:
            for attack in (False, True):
                res = phase(kind, binary, attack, a)
                results.setdefault((kind, attack), []).append(res)
                print("round %d %-9s %-8s %s" % (r + 1, kind, "attack" if attack else "baseline",
                      " ".join("%s=%.2f" % kv for kv in res.items())), flush=True)
    print()
    print("| server | phase | normal req/s | p50 ms | p99 ms | max ms | errors | peak RSS MiB "
          "| user µs/req | kernel µs/req |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, _ in servers:
        for attack in (False, True):
            rs = results[(kind, attack)]
            med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
            print("| %s | %s | %.0f | %.2f | %.2f | %.1f | %d | %.0f | %.1f | %.1f |"
                  % (kind, "attack" if attack else "baseline", med["rps"], med["p50"],
                     med["p99"], med["max"], sum(x["errors"] for x in rs), med["rss"],
                     med["user_us"], med["sys_us"]))
    print("\n(median of %d rounds of %.0f s; errors summed; %d normal clients, %d non-reading "
          "and %d slow-reading attackers)" % (a.rounds, a.duration, a.normal, a.attackers, a.slow))


if __name__ == "__main__":
    main()
