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


# ---- hot keys -----------------------------------------------------------------

def test_hot_key_found_among_10000():
    """10,000 keys read once each, one of them 20,000 times more: it is the
    hottest key, its count is about right, and its owner carries the load."""
    srv = start_server(threads=2)
    try:
        with srv.conn() as c:
            keys = [b"k%05d" % i for i in range(10000)]
            for i in range(0, len(keys), 500):
                set_keys(c, keys[i:i + 500])
            assert stats(c, "hotkeys reset") == {}
            batch = b"".join(b"get %s\r\n" % k for k in keys)
            c.send(batch)
            for _ in keys:
                while c.readline() != b"END\r\n":
                    pass
            hot = b"k04242"
            for _ in range(40):
                c.send(b"get %s\r\n" % hot * 500)
                for _ in range(500):
                    while c.readline() != b"END\r\n":
                        pass
            s = stats(c, "hotkeys 5")
            assert s["hotkeys"] == "on"
            assert s["hotkey:1:key"] == hot.decode(), s
            est = int(s["hotkey:1:count"])
            assert 0.7 * 20000 <= est <= 1.3 * 20000 + int(s["hotkey:1:error"]), s
            owner = int(s["hotkey:1:worker"])
            assert float(s[f"worker_{owner}:share"]) > 0.6, s
            assert float(s["imbalance"]) > 1.2, s
            assert float(s["hotkey:1:worker_share"]) > 0.5, s
            assert "hotkey:6:key" not in s
            assert stats(c, "hotkeys reset") == {}
            assert "hotkey:1:key" not in stats(c, "hotkeys")
            for bad in (b"stats hotkeys x\r\n", b"stats hotkeys 0\r\n"):
                c.send(bad)
                assert c.readline() == b"ERROR\r\n"
    finally:
        srv.stop_and_check()


def test_hot_keys_off():
    srv = start_server(threads=1, extra=["--hot-keys=off"])
    try:
        with srv.conn() as c:
            s = stats(c, "hotkeys")
            assert s["hotkeys"] == "off" and "imbalance" in s
    finally:
        srv.stop_and_check()
