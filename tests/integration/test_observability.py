"""Issue 17: latency histograms (`stats latency`), hot keys (`stats hotkeys`)
and the Prometheus endpoint (`--metrics`). percore-only: memcached has none
of these. Every server is started by the conftest helpers and stopped by PID."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import start_server, free_port, HOST

pytestmark = pytest.mark.percore_only


def stats(conn, arg=""):
    """STAT lines of `stats <arg>` as a dict (values as strings)."""
    conn.send(f"stats {arg}\r\n".encode() if arg else b"stats\r\n")
    out = {}
    while True:
        line = conn.readline()
        if line in (b"END\r\n", b"RESET\r\n"):
            return out
        assert line.startswith(b"STAT "), line
        _, name, val = line.decode().rstrip("\r\n").split(" ", 2)
        out[name] = val


def set_keys(conn, keys, value=b"v"):
    conn.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value) for k in keys))
    for _ in keys:
        assert conn.readline() == b"STORED\r\n"


def get_one(conn, key):
    conn.send(b"get %s\r\n" % key)
    while conn.readline() != b"END\r\n":
        pass


# ---- latency ----------------------------------------------------------------

STALL_US = 20000   # the forwarded path's known delay (PERCORE_TEST_STALL_US)


def test_known_delay_lands_in_forwarded_bucket(monkeypatch):
    """With the test hook, a worker that served other workers' requests
    busy-waits 20 ms before replying: forwarded gets must read 20 ms (within
    the histogram's 1% and some scheduling), local gets far less."""
    monkeypatch.setenv("PERCORE_TEST_STALL_US", str(STALL_US))
    srv = start_server(threads=2)
    try:
        with srv.conn() as c:
            keys = [b"lat%d" % i for i in range(40)]
            set_keys(c, keys)
            assert stats(c, "latency reset") == {}
            for k in keys:
                get_one(c, k)
            s = stats(c, "latency")
            assert s["latency_stats"] == "on"
            fwd = int(s["get:forwarded:count"])
            loc = int(s["get:local:count"])
            assert fwd + loc == len(keys) and fwd > 0 and loc > 0
            p50 = float(s["get:forwarded:p50_us"])
            assert STALL_US * 0.99 <= p50 <= STALL_US * 3, s
            assert float(s["get:forwarded:max_us"]) >= p50
            assert float(s["get:local:p99_us"]) < STALL_US / 2, s
            for q in ("p90_us", "p99_us", "p99.9_us", "p99.99_us", "mean_us"):
                assert f"get:forwarded:{q}" in s
            assert "set:local:count" not in s       # sets were before the reset
    finally:
        srv.stop_and_check()


def test_classes_reset_and_off():
    srv = start_server(threads=1)
    try:
        with srv.conn() as c:
            set_keys(c, [b"a"])
            c.send(b"incr a 1\r\ndelete a\r\ntouch a 10\r\nmg a v\r\nms b 1\r\nx\r\nmn\r\n")
            for _ in range(5):
                c.readline()
            c.send(b"stats latency\r\n")
            s = {}
            while True:
                line = c.readline()
                if line == b"END\r\n":
                    break
                if line.startswith(b"STAT "):
                    _, n, v = line.decode().split()
                    s[n] = v
            for cls in ("set", "incr_decr", "delete", "touch", "meta_get", "meta_set"):
                assert s.get(f"{cls}:local:count") == "1", (cls, s)
            assert stats(c, "latency reset") == {}
            assert [k for k in stats(c, "latency") if k.endswith(":count")] == []
            c.send(b"stats latency bogus\r\n")
            assert c.readline() == b"ERROR\r\n"
    finally:
        srv.stop_and_check()
    off = start_server(threads=1, extra=["--latency-stats=off"])
    try:
        with off.conn() as c:
            set_keys(c, [b"a"])
            assert stats(c, "latency") == {"latency_stats": "off"}
    finally:
        off.stop_and_check()
