"""Bounded memory and liveness under clients that do not read (issue:
"a 2 KB request must never cost 200 MB").

The attack: one 1 MB value, 300 connections that each write `get big` 200
times in one go and never read. A hit is sent by reference to the item's
memory (pinned until the send completes), each connection stops being parsed
once its unsent output passes --max-conn-output, and the worker caps the
copied output of all its connections. So resident memory stays near -m, a
new client is answered at once, and once the attackers read, their replies
arrive complete and in order.

Everything is bounded: 300 connections, a fixed probe period, fixed read
sizes; the server is stopped by PID (conftest's Server).
"""
import os
import socket
import statistics
import time

import pytest

from conftest import HOST, IS_MEMCACHED, Server, stats

VALUE = b"v" * (1000 * 1000)
ATTACKERS = 300
GETS = 200
# Memory the attack may add on top of -m (stated in docs/robustness.md).
RSS_SLACK_MB = 64
# A fresh client's request must be answered at every probe, with a median
# under 50 ms, and within PROBE_LIMIT_S once the attack has settled
# (SETTLE_S). While it starts, the attackers' receive queues (autotuned up to
# net.ipv4.tcp_rmem's 32 MB each) push the kernel into TCP memory pressure:
# it prunes queues and drops segments, and a probe can then wait for a TCP
# retransmission timeout (0.2-1.8 s seen; memcached's first probe is hit the
# same way). Those probes must still be answered (the socket timeout, 5 s).
# docs/robustness.md has the numbers and the server's own loop bound.
PROBE_MEDIAN_S = 0.050
PROBE_LIMIT_S = float(os.environ.get("PERCORE_PROBE_LIMIT", "1.5"))
SETTLE_S = 2.0
PROBE_SECONDS = float(os.environ.get("PERCORE_PROBE_SECONDS", "10"))
# Attackers whose every reply is read back and compared (the others close).
READ_BACK = int(os.environ.get("PERCORE_READ_BACK", "30"))


def owner_key(srv, worker):
    """A key that worker `worker` owns (found through per-worker stats)."""
    with srv.conn() as c:
        for i in range(200):
            key = b"big%d" % i
            before = stats(c)
            c.call(b"set " + key + b" 0 0 1\r\nx\r\n", b"STORED\r\n")
            after = stats(c)
            grew = [w for w in range(srv.threads)
                    if int(after["worker_%d_curr_items" % w])
                    > int(before["worker_%d_curr_items" % w])]
            c.call(b"delete " + key + b"\r\n", b"DELETED\r\n")
            if grew == [worker]:
                return key
    pytest.fail("no key found for worker %d" % worker)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def probe(srv, key):
    t = time.monotonic()
    with socket.create_connection(srv.addr, timeout=5) as s:
        s.sendall(b"version\r\nget " + key + b"\r\n")
        want = len(b"VERSION \r\n") + len(b"VALUE  0 \r\n\r\nEND\r\n") + len(key) \
            + len(str(len(VALUE))) + len(VALUE)
        got = b""
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            got += d
            if got.endswith(b"END\r\n") and len(got) >= want - 64:
                break
    assert got.startswith(b"VERSION ") and got.endswith(b"\r\nEND\r\n"), got[:100]
    return time.monotonic() - t


def read_exact(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:], min(n - got, 1 << 20))
        if k == 0:
            break
        got += k
    return bytes(buf[:got])


@pytest.mark.serial
@pytest.mark.percore_only
@pytest.mark.time_limit(240)
@pytest.mark.parametrize("owner", [0, 1])
def test_non_reading_clients_cannot_grow_memory(owner):
    srv = Server(threads=2, memory_mb=64)
    try:
        key = owner_key(srv, owner)
        with srv.conn() as c:
            c.call(b"set %s 0 0 %d\r\n" % (key, len(VALUE)) + VALUE + b"\r\n", b"STORED\r\n")
        base = rss_mb(srv.pid)
        attackers = []
        for _ in range(ATTACKERS):
            a = socket.create_connection(srv.addr, timeout=30)
            a.sendall((b"get " + key + b"\r\n") * GETS)
            attackers.append(a)

        lat, settled, peak = [], [], base
        t0 = time.monotonic()
        while time.monotonic() - t0 < SETTLE_S + PROBE_SECONDS:
            started = time.monotonic() - t0
            lat.append(probe(srv, key))
            if started >= SETTLE_S:
                settled.append(lat[-1])
            peak = max(peak, rss_mb(srv.pid))
            srv.check_alive()
            time.sleep(0.1)
        with srv.conn() as c:
            st = stats(c)
        print("owner %d: rss %d -> peak %d MiB; probe latency median %.1f ms, max %.1f ms "
              "(%d probes, slowest #%d); conn_output_throttled %s, store_pins %s, loop max %s / %s us"
              % (owner, base, peak, statistics.median(lat) * 1e3, max(lat) * 1e3, len(lat),
                 lat.index(max(lat)), st["conn_output_throttled"], st["store_pins"], st["worker_0_loop_max_us"],
                 st["worker_1_loop_max_us"]))
        assert peak <= 64 + RSS_SLACK_MB, "resident memory %d MiB" % peak
        assert statistics.median(lat) < PROBE_MEDIAN_S
        assert max(settled) < PROBE_LIMIT_S, "a fresh client waited %.0f ms" % (max(settled) * 1e3)
        assert int(st["conn_output_throttled"]) > 0

        # The attackers read now: every reply complete, in order.
        one = b"VALUE %s 0 %d\r\n" % (key, len(VALUE)) + VALUE + b"\r\nEND\r\n"
        for a in attackers[:READ_BACK]:
            for i in range(GETS):
                got = read_exact(a, len(one))
                assert got == one, "attacker reply %d differs (%d bytes)" % (i, len(got))
        for a in attackers:
            a.close()
        # Pins go back once the replies are sent or dropped.
        deadline = time.monotonic() + 10
        while True:
            with srv.conn() as c:
                st = stats(c)
            if int(st["store_pins"]) == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert int(st["store_pins"]) == 0 and int(st["store_held_bytes"]) == 0
        assert probe(srv, key) < PROBE_LIMIT_S
    finally:
        srv.stop_and_check()


@pytest.mark.time_limit(120)
def test_multiget_and_binary_streams_of_large_values_stay_in_order():
    """Amplifying paths besides `get`: multi-key gets of large values (local
    and forwarded keys), meta `mg` and binary getq streams, pipelined deep
    without reading, then read back complete and in order."""
    srv = Server(threads=2, memory_mb=64)
    try:
        keys = [b"mk%d" % i for i in range(8)]
        vals = [bytes([65 + i]) * (300 * 1000 + i) for i in range(8)]
        with srv.conn() as c:
            for k, v in zip(keys, vals):
                c.call(b"set %s 0 0 %d\r\n" % (k, len(v)) + v + b"\r\n", b"STORED\r\n")
        line = b"get " + b" ".join(keys) + b"\r\n"
        one = b"".join(b"VALUE %s 0 %d\r\n" % (k, len(v)) + v + b"\r\n"
                       for k, v in zip(keys, vals)) + b"END\r\n"
        mg = b"".join(b"mg %s v\r\n" % k for k in keys)
        mg_one = b"".join(b"VA %d\r\n" % len(v) + v + b"\r\n" for v in vals)
        s = socket.create_connection(srv.addr, timeout=30)
        s.sendall((line + mg) * 40)
        time.sleep(0.5)
        srv.check_alive()
        for i in range(40):
            assert read_exact(s, len(one)) == one, "multi-get %d" % i
            assert read_exact(s, len(mg_one)) == mg_one, "mg batch %d" % i
        s.close()
        if IS_MEMCACHED:
            return
        # Binary: getkq for every key, then a noop, repeated.
        import struct

        def req(op, key, opaque):
            return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), 0, 0, 0, len(key),
                               opaque, 0) + key
        batch = b"".join(req(0x0D, k, i) for i, k in enumerate(keys)) + req(0x0A, b"", 99)
        s = socket.create_connection(srv.addr, timeout=30)
        s.sendall(batch * 30)
        time.sleep(0.3)
        for _ in range(30):
            for i, (k, v) in enumerate(zip(keys, vals)):
                hdr = read_exact(s, 24)
                magic, op, klen, elen, _, status, blen, opaque, _ = \
                    struct.unpack(">BBHBBHIIQ", hdr)
                assert (magic, op, status, opaque) == (0x81, 0x0D, 0, i)
                body = read_exact(s, blen)
                assert body[elen:elen + klen] == k and body[elen + klen:] == v
            hdr = read_exact(s, 24)
            assert hdr[1] == 0x0A
        s.close()
    finally:
        srv.stop_and_check()


@pytest.mark.percore_only
@pytest.mark.time_limit(120)
def test_ring_overflow_is_capped_and_everything_is_answered():
    """Many connections pipelining requests that all go to the other worker
    fill the ring between them; past its cap the overflow stops the
    connections' parsing (ring_backpressure) instead of growing, and once it
    drains every request is answered, in order. (-R is raised so that one
    loop iteration parses enough requests to fill the ring.)"""
    srv = Server(threads=2, memory_mb=64, extra=["-R", "1000000"])
    try:
        key = owner_key(srv, 1)
        n_conn, n_req = 24, 3000
        conns = [socket.create_connection(srv.addr, timeout=30) for _ in range(n_conn)]
        req = b"get " + key + b"\r\n" + b"incr nokey 1\r\n"
        for c in conns:
            c.sendall(req * n_req)
        want = b"END\r\nNOT_FOUND\r\n" * n_req
        for c in conns:
            assert read_exact(c, len(want)) == want
            c.close()
        with srv.conn() as c:
            st = stats(c)
        print("ring_full %s ring_backpressure %s" % (st["ring_full"], st["ring_backpressure"]))
        # Whether the ring fills depends on how the bursts arrive (seen:
        # ring_full 145,536 with ring_backpressure 43 on io_uring, and 0 on
        # other runs): the assertion is that every reply is right either way.
        assert "ring_backpressure" in st
        srv.check_alive()
    finally:
        srv.stop_and_check()
