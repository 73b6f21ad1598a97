"""Integration tests of percore-bench --proto udp (memcached's UDP framing)
against percore (-U, 2 workers) and memcached (-U, 2 threads). Each test starts
its own server on free loopback ports, runs percore-bench for about a second and
stops only the process it started (by PID). Binaries come from $PERCORE_BUILD
(default build). Run with Debian's python:
    /usr/bin/python3 -m pytest tests/integration/test_bench_udp.py
"""
import json
import os
import socket
import subprocess
import time

import pytest

BUILD = os.environ.get("PERCORE_BUILD", "build")
BENCH = os.path.join(BUILD, "percore-bench")
PERCORE = os.path.join(BUILD, "percore")
MEMCACHED = "/usr/bin/memcached"


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def need(path):
    if not os.path.exists(path):
        pytest.skip("%s not built/installed" % path)


class Server:
    def __init__(self, kind):
        self.kind = kind
        self.udp = free_port()
        self.tcp = free_port()
        while self.tcp == self.udp:
            self.tcp = free_port()
        common = ["-U", str(self.udp), "-p", str(self.tcp), "-l", "127.0.0.1", "-t", "2"]
        if kind == "percore":
            need(PERCORE)
            argv = [PERCORE] + common
        else:
            need(MEMCACHED)
            argv = [MEMCACHED] + common
            if os.geteuid() == 0:
                argv += ["-u", "root"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def _wait(self, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited early with %s" % (self.kind, self.proc.returncode))
            try:
                with socket.create_connection(("127.0.0.1", self.tcp), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("%s did not listen on %d" % (self.kind, self.tcp))

    def stats(self):
        with socket.create_connection(("127.0.0.1", self.tcp), timeout=2) as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        out = {}
        for line in data.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # by PID: the process we started
        self.proc.wait(timeout=5)


@pytest.fixture(params=["percore", "memcached"])
def udp_server(request):
    s = Server(request.param)
    yield s
    s.stop()


def bench(*args, timeout=60, ok=True):
    need(BENCH)
    cmd = [BENCH, "--quiet", "--json"] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not ok:
        return p
    assert p.returncode == 0, "%s\n%s" % (cmd, p.stderr)
    runs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert len(runs) == 1, p.stdout
    return runs[0]


def clean(r):
    assert r["proto"] == "udp", r
    assert r["errors"] == 0, r
    assert r["timeouts"] == 0, r
    assert r["unsent"] == 0, r
    assert r["sent"] == r["completed"], r
    assert r["gets"] + r["sets"] == r["completed"], r


@pytest.mark.serial
def test_open_loop_udp_warmup(udp_server):
    """UDP sets warm every key, then open-loop gets and sets over UDP all hit."""
    r = bench("-s", "127.0.0.1:%d" % udp_server.udp, "--proto", "udp", "--warmup", "--keys", 2000,
              "--value-size", "10-1000", "--rate", 3000, "--duration", 1, "--timeout", 2)
    clean(r)
    assert r["mode"] == "open" and r["offered_rps"] == 3000
    assert r["warmup_sets"] == 2000
    assert r["gets"] > 0 and r["sets"] > 0
    assert r["hits"] == r["gets"] and r["misses"] == 0
    assert 0.8 * 3000 <= r["achieved_rps"] <= 1.2 * 3000
    lat = r["latency_us"]
    assert lat["count"] == r["completed"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]


def test_tcp_warmup_large_values_multiget(udp_server):
    """Values up to 5000 bytes set over TCP come back over UDP as several
    datagrams per key (a multi-get is one run per key): all reassembled."""
    # (a set unanswered for --timeout is not stored: 5 s, not the default 1,
    # so a loaded machine's stall is not read as a loss)
    w = bench("-s", "127.0.0.1:%d" % udp_server.tcp, "--warmup", "--keys", 500, "--value-size", "1000-5000",
              "--closed", "--requests", 1, "--duration", 5, "--timeout", 5)
    assert w["warmup_sets"] == 500 and w["errors"] == 0
    r = bench("-s", "127.0.0.1:%d" % udp_server.udp, "--proto", "udp", "--keys", 500, "--value-size", "1000-5000",
              "--get-ratio", 1, "--multiget", 3, "--rate", 2000, "--duration", 1, "--timeout", 2)
    clean(r)
    assert r["sets"] == 0
    assert r["hits"] == 3 * r["gets"] and r["misses"] == 0


def test_closed_loop_udp(udp_server):
    r = bench("-s", "127.0.0.1:%d" % udp_server.udp, "--proto", "udp", "--closed", "--depth", 4, "--conns", 4,
              "--requests", 5000, "--keys", 1000, "--duration", 20, "--timeout", 2)
    clean(r)
    assert r["mode"] == "closed" and r["completed"] == 5000
    # a fresh server: gets of keys never set miss, sets store
    assert r["hits"] + r["misses"] == r["gets"]
    assert r["not_stored"] == 0


def test_percore_counts_udp_requests():
    s = Server("percore")
    try:
        before = int(s.stats().get("udp_requests", 0))
        r = bench("-s", "127.0.0.1:%d" % s.udp, "--proto", "udp", "--rate", 2000, "--duration", 0.5,
                  "--timeout", 2)
        clean(r)
        after = s.stats()
        # the probe (`version`) is one more UDP request
        assert int(after["udp_requests"]) - before == r["sent"] + 1
        assert int(after.get("udp_dropped", 0)) == 0
    finally:
        s.stop()


def test_no_udp_listener_and_size_limit():
    s = Server("percore")
    try:
        # TCP port only: the UDP probe gets no answer
        p = bench("-s", "127.0.0.1:%d" % s.tcp, "--proto", "udp", "--duration", 0.2, ok=False)
        assert p.returncode == 1
        assert "no UDP reply" in p.stderr
        # a set must fit in one datagram
        p = bench("-s", "127.0.0.1:%d" % s.udp, "--proto", "udp", "--value-size", 2000, "--duration", 0.2,
                  ok=False)
        assert p.returncode == 2
        assert "datagram" in p.stderr
        # ... unless there are no sets at all
        r = bench("-s", "127.0.0.1:%d" % s.udp, "--proto", "udp", "--value-size", 2000, "--get-ratio", 1,
                  "--rate", 500, "--duration", 0.3)
        clean(r)
    finally:
        s.stop()
