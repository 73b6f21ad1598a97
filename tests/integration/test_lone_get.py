"""A lone get (one whole single-key get line arriving on a connection with
nothing else going on) is run and answered where its bytes arrive, not in
the serve pass (net/conn.c, serve_quick). These drive that path into each
of its ways out: a reply the socket takes only in part, a client that does
not read, keys another worker owns, a line split over two packets, -R 1,
and sets in between; every reply must come back whole and in order."""
import socket
import threading
import time

import pytest

from conftest import SERVER_BIN, Server, Conn

BACKENDS = ["epoll", "uring"] if "build-tsan" in SERVER_BIN else ["epoll", "poll", "uring"]


def value_of(i):
    # under PROTO_REF_MIN (2048): copied into the reply, so the lone path
    # takes it; sizes vary so a cut reply cannot pass for a whole one
    return (b"%05d" % i) * (340 + i % 67)


def expected(i, nkeys):
    if i % 7 == 3:
        return b"END\r\n"               # a miss
    k = i % nkeys
    v = value_of(k)
    return b"VALUE lk%d 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v)


def key_of(i, nkeys):
    return b"missing%d" % i if i % 7 == 3 else b"lk%d" % (i % nkeys)


def load(srv, nkeys):
    with Conn(srv.addr) as c:
        for k in range(nkeys):
            v = value_of(k)
            c.send(b"set lk%d 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            assert c.read_until(b"\r\n") == b"STORED\r\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_lone_gets_to_a_client_that_stops_reading(backend):
    """One get at a time, each on its own wake-up, to a client with a small
    receive buffer that does not read: lone replies fill the socket until
    one goes out only in part (or not at all), the rest of it and every
    later reply queue behind it on the general path. Then the client reads
    everything back, in order."""
    nkeys, n = 64, 2500
    srv = Server(threads=1, extra=["--io=" + backend])
    try:
        load(srv, nkeys)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(20)
        s.connect(srv.addr)
        want = b"".join(expected(i, nkeys) for i in range(n))
        # ~4.5 MB of big replies (one worker: all lone): more than the
        # socket buffers take while the client is not reading (the send
        # buffer grows up to tcp_wmem's 4 MiB). Sent on a thread (it could
        # block once the server stops reading), apart so that each arrives
        # on its own; the reading starts when all are sent.
        def send_all():
            for i in range(n):
                s.sendall(b"get " + key_of(i, nkeys) + b"\r\n")
                time.sleep(0.001)
        t = threading.Thread(target=send_all, daemon=True)
        t.start()
        t.join(30)
        got = bytearray()
        deadline = time.monotonic() + 30
        while len(got) < len(want) and time.monotonic() < deadline:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        s.close()
        assert len(got) == len(want)
        assert bytes(got) == want
    finally:
        srv.stop_and_check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_lone_gets_interleaved_with_other_lines(backend):
    """Request and reply, one at a time, over keys of both workers: lone
    gets, a get line split over two packets, `gets`, a set between them and
    a multi-key get; each answer exact."""
    nkeys = 32
    srv = Server(threads=2, extra=["--io=" + backend])
    try:
        load(srv, nkeys)
        with Conn(srv.addr) as c:
            for i in range(300):
                k = key_of(i, nkeys)
                if i % 5 == 1:
                    line = b"get " + k + b"\r\n"
                    c.send(line[:5])
                    time.sleep(0.002)
                    c.send(line[5:])
                    assert c.read_exact(len(expected(i, nkeys))) == expected(i, nkeys)
                elif i % 11 == 2:
                    v = value_of(i % nkeys)
                    c.send(b"set lk%d 0 0 %d\r\n%s\r\n" % (i % nkeys, len(v), v))
                    assert c.read_until(b"\r\n") == b"STORED\r\n"
                elif i % 13 == 4:
                    c.send(b"get " + k + b" lk0\r\n")
                    body = expected(i, nkeys)[:-5] + expected(0, nkeys)
                    assert c.read_exact(len(body)) == body
                elif i % 17 == 5:
                    c.send(b"gets " + k + b"\r\n")
                    head = c.read_until(b"\r\n")
                    if i % 7 == 3:
                        assert head == b"END\r\n"
                    else:
                        v = value_of(i % nkeys)
                        assert head.startswith(b"VALUE %s 0 %d " % (k, len(v)))
                        assert c.read_exact(len(v) + 7) == v + b"\r\nEND\r\n"
                else:
                    c.send(b"get " + k + b"\r\n")
                    assert c.read_exact(len(expected(i, nkeys))) == expected(i, nkeys)
    finally:
        srv.stop_and_check()


def test_lone_gets_with_one_request_per_event():
    """-R 1: a lone get is the iteration's one request; the next one, in the
    same packet, waits for the next iteration as before."""
    nkeys = 8
    srv = Server(threads=1, extra=["-R", "1"])
    try:
        load(srv, nkeys)
        with Conn(srv.addr) as c:
            for i in range(50):
                c.send(b"get " + key_of(i, nkeys) + b"\r\n")
                assert c.read_exact(len(expected(i, nkeys))) == expected(i, nkeys)
            c.send(b"get lk1\r\nget lk2\r\n")
            both = expected(1, nkeys) + expected(2, nkeys)
            assert c.read_exact(len(both)) == both
    finally:
        srv.stop_and_check()
