"""Many clients at once, clients that vanish mid-request, connection limits
and slow readers."""
import socket
import struct
import threading
import time

import pytest

from conftest import HOST, Conn, describe_mismatch, get_reply


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:           # collected and re-raised below
            errors.append((i, e))

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "client threads hung"
    if errors:
        i, e = errors[0]
        raise AssertionError(f"{len(errors)} client threads failed; "
                             f"thread {i}: {e!r}") from e


# ---------------------------------------------------------------------------
# Concurrency
# ---------------------------------------------------------------------------

def test_concurrent_incr_one_key(server):
    nthreads, per_thread = 50, 100
    key = b"cc:counter%d" % server.threads
    with server.conn() as c:
        c.call(b"set %s 0 0 1\r\n0\r\n" % key, b"STORED\r\n")

    def worker(i):
        with server.conn(timeout=20) as c:
            # half of the clients pipeline their increments, half go one by one
            if i % 2:
                c.send(b"incr %s 1\r\n" % key * per_thread)
                for _ in range(per_thread):
                    assert c.readline().rstrip().isdigit()
            else:
                for _ in range(per_thread):
                    c.send(b"incr %s 1\r\n" % key)
                    assert c.readline().rstrip().isdigit()

    run_threads(nthreads, worker)
    with server.conn() as c:
        n = b"%d" % (nthreads * per_thread)
        c.call(b"get %s\r\n" % key, b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (key, len(n), n))


def test_concurrent_incr_decr_mixed_pymemcache(server):
    key = b"cc:mixed%d" % server.threads
    mc = server.client()
    mc.set(key, b"1000000")
    mc.close()

    def worker(i):
        cl = server.client()
        for _ in range(50):
            if i % 2:
                cl.incr(key, 3)
            else:
                cl.decr(key, 1)
        cl.close()

    run_threads(20, worker)
    mc = server.client()
    assert int(mc.get(key)) == 1000000 + 10 * 50 * 3 - 10 * 50
    mc.close()


def test_concurrent_distinct_keys(server):
    nthreads, nkeys = 30, 100

    def worker(i):
        with server.conn(timeout=20) as c:
            keys = [b"cd%d:%d:%d" % (server.threads, i, j) for j in range(nkeys)]
            vals = [b"%d-%d-" % (i, j) * (j % 20 + 1) for j in range(nkeys)]
            for k, v in zip(keys, vals):
                c.call(b"set %s %d 0 %d\r\n%s\r\n" % (k, i, len(v), v), b"STORED\r\n")
            for k, v in zip(keys, vals):
                c.call(b"get %s\r\n" % k, get_reply([(k, i, v)]))
            c.call(b"get " + b" ".join(keys) + b"\r\n",
                   get_reply([(k, i, v) for k, v in zip(keys, vals)]))
            for k in keys[::2]:
                c.call(b"delete %s\r\n" % k, b"DELETED\r\n")
            c.call(b"get " + b" ".join(keys) + b"\r\n",
                   get_reply([(k, i, v) for k, v in list(zip(keys, vals))[1::2]]))

    run_threads(nthreads, worker)


def test_concurrent_same_keys_last_writer_wins(server):
    """Many writers on the same few keys: every read returns one complete
    value that some writer wrote (no torn or mixed values)."""
    keys = [b"cs%d:%d" % (server.threads, j) for j in range(5)]
    valid = {b"%02d" % i * (1000 + i) for i in range(16)}

    def worker(i):
        v = b"%02d" % i * (1000 + i)
        with server.conn(timeout=20) as c:
            for r in range(40):
                k = keys[r % len(keys)]
                if (r + i) % 2:
                    c.call(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v), b"STORED\r\n")
                else:
                    c.send(b"get %s\r\n" % k)
                    line = c.readline()
                    if line != b"END\r\n":
                        n = int(line.split()[3])
                        data = c.read_exact(n + 2)[:-2]
                        assert data in valid, data[:40]
                        assert c.readline() == b"END\r\n"

    run_threads(16, worker)


# ---------------------------------------------------------------------------
# Clients that vanish
# ---------------------------------------------------------------------------

def _rst_close(sock):
    """Close with RST (SO_LINGER 0) to be as abrupt as possible."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_disconnect_mid_value(server):
    key = b"dv%d:a" % server.threads
    with server.conn() as c:
        c.call(b"set %s 0 0 3\r\nold\r\n" % key, b"STORED\r\n")
    for abrupt in (False, True):
        c = Conn(server.addr)
        c.send(b"set %s 0 0 1000\r\n%s" % (key, b"x" * 500))
        time.sleep(0.05)
        if abrupt:
            _rst_close(c.sock)
        else:
            c.close()
    time.sleep(0.1)
    with server.conn() as c:
        c.call(b"get %s\r\n" % key, b"VALUE %s 0 3\r\nold\r\nEND\r\n" % key)
        c.assert_in_sync()


def test_disconnect_mid_pipeline(server):
    """1000 sets written, connection closed without reading: every key is
    then either absent or holds exactly its value; the server serves on."""
    p = b"dp%d" % server.threads
    for abrupt in (False, True):
        s = socket.create_connection(server.addr)
        req = b"".join(b"set %s:%d:%d 0 0 %d\r\n%s\r\n"
                       % (p, abrupt, i, 100 + i % 50, b"v" * (100 + i % 50))
                       for i in range(1000))
        s.sendall(req + b"get " + b" ".join(b"%s:%d:%d" % (p, abrupt, i)
                                            for i in range(200)) + b"\r\n")
        if abrupt:
            _rst_close(s)
        else:
            s.close()
    with server.conn() as c:
        c.assert_in_sync()
        for abrupt in (0, 1):
            keys = [b"%s:%d:%d" % (p, abrupt, i) for i in range(1000)]
            c.send(b"get " + b" ".join(keys) + b"\r\n")
            reply = c.read_until(b"END\r\n")
            pos = 0
            for line_start in range(reply.count(b"VALUE ")):
                hdr_end = reply.index(b"\r\n", pos)
                _, k, f, n = reply[pos:hdr_end].split(b" ")
                i = int(k.split(b":")[2])
                v = reply[hdr_end + 2:hdr_end + 2 + int(n)]
                assert v == b"v" * (100 + i % 50), (k, v[:20])
                pos = hdr_end + 2 + int(n) + 2
            assert reply[pos:] == b"END\r\n"


def test_disconnect_mid_multiget(server):
    p = b"dm%d" % server.threads
    value = b"m" * 10000
    with server.conn() as c:
        for i in range(200):
            c.send(b"set %s:%d 0 0 %d noreply\r\n%s\r\n" % (p, i, len(value), value))
        c.assert_in_sync()
    keys = b" ".join(b"%s:%d" % (p, i) for i in range(200))
    for r in range(20):
        s = socket.create_connection(server.addr)
        s.sendall((b"get " + keys + b"\r\n") * 3)
        if r % 3 == 1:
            s.recv(1000)              # read a little, then vanish
        if r % 2:
            _rst_close(s)
        else:
            s.close()
    with server.conn() as c:
        c.call(b"get %s:0 %s:199\r\n" % (p, p),
               get_reply([(b"%s:0" % p, 0, value), (b"%s:199" % p, 0, value)]))
        c.assert_in_sync()


def test_other_clients_served_while_one_vanishes(server):
    """Clients keep vanishing mid-request while others run normally."""
    stop = threading.Event()

    def vandal():
        i = 0
        while not stop.is_set():
            s = socket.create_connection(server.addr)
            s.sendall(b"get a b c\r\nset v:%d 0 0 100\r\nhalf" % i)
            _rst_close(s) if i % 2 else s.close()
            i += 1

    t = threading.Thread(target=vandal, daemon=True)
    t.start()
    try:
        with server.conn() as c:
            for i in range(300):
                k = b"ov%d:%d" % (server.threads, i)
                c.call(b"set %s 0 0 2\r\nok\r\nget %s\r\n" % (k, k),
                       b"STORED\r\nVALUE %s 0 2\r\nok\r\nEND\r\n" % k)
    finally:
        stop.set()
        t.join(10)


# ---------------------------------------------------------------------------
# Connection limit
# ---------------------------------------------------------------------------

TOO_MANY = b"ERROR Too many open connections\r\n"


def _probe(sock):
    """'ok' if the connection is served, 'rejected' if the server refused it
    (the memcached message and/or a close)."""
    try:
        sock.settimeout(3)
        sock.sendall(b"version\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return "rejected", b""
    except socket.timeout:
        return "timeout", b""
    if data.startswith(b"VERSION "):
        return "ok", data
    return "rejected", data


def test_max_connections(server_factory):
    """-c 50: memcached counts the limit in file descriptors (so a few less
    than 50 clients get in); the connections past it get "ERROR Too many
    open connections" and are closed, the accepted ones keep working, and
    once some close new clients are accepted again."""
    srv = server_factory(threads=2, maxconns=50)
    socks, states = [], []
    try:
        for i in range(70):
            s = socket.create_connection(srv.addr, timeout=3)
            st, data = _probe(s)
            states.append((st, data))
            socks.append(s)
        ok = [i for i, (st, _) in enumerate(states) if st == "ok"]
        rejected = [i for i, (st, _) in enumerate(states) if st == "rejected"]
        assert not [i for i, (st, _) in enumerate(states) if st == "timeout"], \
            "a connection past the limit must be answered or closed, not hang"
        assert 30 <= len(ok) <= 50, f"{len(ok)} connections accepted with -c 50"
        assert len(rejected) == 70 - len(ok)
        assert ok == list(range(len(ok))), "once full, every new one is refused"
        for i in rejected:
            assert states[i][1] in (b"", TOO_MANY), states[i][1]
            # the rejected connection is closed by the server
            socks[i].settimeout(2)
            try:
                assert socks[i].recv(100) == b""
            except (ConnectionResetError, BrokenPipeError):
                pass
        # the accepted ones still work
        for i in ok:
            assert _probe(socks[i])[0] == "ok"
        # free some slots: new clients are served again
        for i in ok[:10]:
            socks[i].close()
        time.sleep(0.3)
        fresh = []
        for _ in range(5):
            s = socket.create_connection(srv.addr, timeout=3)
            fresh.append(s)
            assert _probe(s)[0] == "ok"
        socks += fresh
    finally:
        for s in socks:
            s.close()


# ---------------------------------------------------------------------------
# Slow reader
# ---------------------------------------------------------------------------

SLOW_VALUE = 256 * 1024
SLOW_GETS = 400          # 100 MiB of replies


def _slow_reader_scenario(srv, check_rss):
    value = bytes(range(256)) * (SLOW_VALUE // 256)
    keys = [b"slow:%d" % i for i in range(8)]
    with srv.conn() as c:
        for k in keys:
            c.call(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value), b"STORED\r\n")
    rss0 = srv.rss_kb()
    slow = socket.create_connection(srv.addr)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    req = b"".join(b"get %s\r\n" % keys[i % len(keys)] for i in range(SLOW_GETS))
    slow.sendall(req)
    # others are served meanwhile
    peak = rss0
    with srv.conn() as c:
        for i in range(100):
            k = b"slowother:%d" % i
            c.call(b"set %s 0 0 3\r\nabc\r\nget %s\r\n" % (k, k),
                   b"STORED\r\nVALUE %s 0 3\r\nabc\r\nEND\r\n" % k)
            if i % 10 == 0:
                peak = max(peak, srv.rss_kb())
                time.sleep(0.02)
    peak = max(peak, srv.rss_kb())
    print(f"slow reader: RSS {rss0} kB -> peak {peak} kB")
    if check_rss:
        grown_mb = (peak - rss0) / 1024
        assert grown_mb < 64, (
            f"server RSS grew by {grown_mb:.0f} MiB while a client left "
            f"{SLOW_GETS * SLOW_VALUE >> 20} MiB of replies unread")
    # now the slow client reads everything, correctly
    def one(k):
        return b"VALUE %s 0 %d\r\n" % (k, len(value)) + value + b"\r\nEND\r\n"
    slow.settimeout(30)
    got = bytearray()
    total = sum(len(one(keys[i % len(keys)])) for i in range(SLOW_GETS))
    deadline = time.monotonic() + 30
    while len(got) < total and time.monotonic() < deadline:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    slow.close()
    assert len(got) == total, f"slow client got {len(got)} of {total} bytes"
    pos = 0
    for i in range(SLOW_GETS):
        exp = one(keys[i % len(keys)])
        assert got[pos:pos + len(exp)] == exp, f"reply #{i} differs"
        pos += len(exp)


def test_slow_reader(server_factory):
    srv = server_factory(threads=2)
    _slow_reader_scenario(srv, check_rss=False)


@pytest.mark.percore_only
def test_slow_reader_memory_bounded(server_factory):
    srv = server_factory(threads=2)
    _slow_reader_scenario(srv, check_rss=True)


def test_flush_all_ok_means_flushed_everywhere(server_factory):
    """Once a client has read flush_all's OK, no worker serves an item
    written before it: on four workers, keys spread over all of them are
    read back from other connections right after each OK."""
    srv = server_factory(threads=4)
    writer = srv.conn()
    readers = [srv.conn() for _ in range(4)]
    keys = [f"fl{i}" for i in range(64)]
    for rnd in range(20):
        writer.send(b"".join(b"set %s 0 0 1 noreply\r\nx\r\n" % k.encode() for k in keys))
        writer.send(b"mn\r\n")
        assert writer.readline() == b"MN\r\n"
        writer.send(b"flush_all\r\n")
        assert writer.readline() == b"OK\r\n"
        for r in readers:
            r.send(("get " + " ".join(keys) + "\r\n").encode())
            assert r.readline() == b"END\r\n", f"round {rnd}: an item survived flush_all's OK"
