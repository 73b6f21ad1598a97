"""The I/O backends (--io=epoll|poll|uring) serve the same protocol through the
same data path: each test here starts its own server per backend and checks
basic commands, a 1 MiB value, a 5000-request pipeline spread over workers,
back-pressure, abrupt closes with output in flight, the backend `stats`
reports, idle CPU, and io_uring's fallback to epoll. Servers are stopped by
PID (conftest's Server). Run the rest of the suite on one backend with
PERCORE_IO=uring (see conftest.env_server_args).
"""
import random
import socket
import threading
import time

import pytest

from conftest import SERVER_BIN, Server, free_port, stats

pytestmark = pytest.mark.percore_only

# Under TSan, busy-poll's spinning workers make every case several times
# slower on a small machine and add no cross-thread path of their own (the
# rings between workers are the same for every backend); ASan still runs it.
BACKENDS = ["epoll", "uring"] if "build-tsan" in SERVER_BIN else ["epoll", "poll", "uring"]


def uring_usable():
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return f.read().strip() != "2"
    except OSError:
        return True


@pytest.fixture(params=BACKENDS)
def backend_server(request):
    srv = Server(threads=4, extra=["--io=" + request.param])
    srv.backend = request.param
    yield srv
    srv.stop_and_check()


def expected_backend(name):
    return name if name != "uring" or uring_usable() else "epoll"


def test_stats_reports_backend(backend_server):
    with backend_server.conn() as c:
        st = stats(c)
    assert st["io_backend"] == expected_backend(backend_server.backend)


def test_basic_commands(backend_server):
    with backend_server.conn() as c:
        c.call(b"set io:a 5 0 3\r\nabc\r\n", b"STORED\r\n")
        c.call(b"get io:a\r\n", b"VALUE io:a 5 3\r\nabc\r\nEND\r\n")
        c.call(b"add io:a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n")
        c.call(b"append io:a 0 0 2\r\nde\r\n", b"STORED\r\n")
        c.call(b"set io:n 0 0 1\r\n7\r\nincr io:n 5\r\n", b"STORED\r\n12\r\n")
        c.call(b"delete io:a\r\nget io:a\r\n", b"DELETED\r\nEND\r\n")
        c.call(b"bogus\r\n", b"ERROR\r\n")
        c.assert_in_sync()


def test_one_mib_value(backend_server):
    # the largest value -I 1m takes under this key: memcached counts the
    # whole item (docs/protocols.md, "Item size limit"), 65 bytes here
    value = (bytes(random.Random(1).getrandbits(8) for _ in range(256)) * 4096)[:(1 << 20) - 65]
    with backend_server.conn(timeout=10) as c:
        c.call(b"set io:big 0 0 %d\r\n" % len(value) + value + b"\r\n", b"STORED\r\n")
        want = b"VALUE io:big 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"
        for _ in range(3):
            c.call(b"get io:big\r\n", want)
        c.assert_in_sync()


def build_pipeline(n, seed=7):
    """n mixed requests over keys owned by every worker, with the replies a
    correct server gives, computed from a model of the store."""
    rng = random.Random(seed)
    model, reqs, reps = {}, [], []
    keys = [b"pipe:%d" % i for i in range(300)]
    for _ in range(n):
        k = rng.choice(keys)
        op = rng.random()
        if op < 0.35:
            v = b"v%d" % rng.randrange(10 ** 6) * rng.randrange(1, 40)
            reqs.append(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            reps.append(b"STORED\r\n")
            model[k] = v
        elif op < 0.75:
            reqs.append(b"get %s\r\n" % k)
            if k in model:
                v = model[k]
                reps.append(b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v))
            else:
                reps.append(b"END\r\n")
        elif op < 0.85:
            reqs.append(b"delete %s\r\n" % k)
            reps.append(b"DELETED\r\n" if model.pop(k, None) is not None else b"NOT_FOUND\r\n")
        elif op < 0.95:
            ks = rng.sample(keys, 4)
            reqs.append(b"get " + b" ".join(ks) + b"\r\n")
            out = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (x, len(model[x]), model[x])
                           for x in ks if x in model)
            reps.append(out + b"END\r\n")
        else:
            reqs.append(b"set %s 0 0 1 noreply\r\nz\r\n" % k)
            model[k] = b"z"
    return b"".join(reqs), b"".join(reps)


def send_in_background(sock, data):
    t = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    t.start()
    return t


def test_pipeline_5000_mixed_across_workers(backend_server):
    req, rep = build_pipeline(5000)
    with backend_server.conn(timeout=20) as c:
        t = send_in_background(c.sock, req)
        got = c.read_exact(len(rep))
        t.join(5)
        assert got == rep, "pipelined replies differ from the model (order or content)"
        c.assert_in_sync()
        st = stats(c)
    fwd = sum(int(st["worker_%d_req_forwarded" % i]) for i in range(4))
    assert fwd > 0, "a pipeline over 300 keys must be forwarded to other workers"


def test_many_connections_interleaved(backend_server):
    """More connections than io_uring has receive buffers, all sending at
    once: some multishot recvs end with -ENOBUFS and must be re-armed."""
    conns = [backend_server.conn() for _ in range(300)]
    try:
        for i, c in enumerate(conns):
            c.send(b"set mc:%d 0 0 %d\r\n%d\r\n" % (i, len(str(i)), i))
        for c in conns:
            assert c.readline() == b"STORED\r\n"
        for i, c in enumerate(conns):
            c.send(b"get mc:%d\r\n" % ((i + 1) % 300))
        for i, c in enumerate(conns):
            j = (i + 1) % 300
            assert c.read_until(b"END\r\n") == b"VALUE mc:%d 0 %d\r\n%d\r\nEND\r\n" % (j, len(str(j)), j)
    finally:
        for c in conns:
            c.close()


def read_repeated(sock, one, n, timeout=30):
    """Read len(one) * n bytes and check they are `one` n times, without
    holding them all (an unbounded server would send ~150 MB here)."""
    total = len(one) * n
    window = one * (2 + (1 << 20) // len(one))
    got, buf = 0, bytearray(1 << 20)
    sock.settimeout(timeout)
    while got < total:
        k = sock.recv_into(buf, min(len(buf), total - got))
        assert k > 0, "EOF after %d of %d bytes" % (got, total)
        off = got % len(one)
        assert buf[:k] == window[off:off + k], "reply stream corrupt at byte %d" % got
        got += k


def test_back_pressure_stops_reading(backend_server):
    """A client that pipelines gets of a large value and never reads: the
    server must stop taking its input (so its requests back up in the
    kernel) and keep serving others."""
    value = b"b" * 100_000
    with backend_server.conn() as c:
        c.call(b"set bp:k 0 0 %d\r\n" % len(value) + value + b"\r\n", b"STORED\r\n")
    hog = socket.create_connection(backend_server.addr)
    try:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.setblocking(False)
        req = b"get bp:k\r\n" * 2_000_000          # 20 MB asking for 200 GB
        sent, deadline = 0, time.time() + 1.5
        while time.time() < deadline and sent < len(req):
            try:
                sent += hog.send(req[sent:sent + (1 << 20)])
            except BlockingIOError:
                time.sleep(0.02)
        assert sent < len(req) // 2, "server read %d bytes of requests it cannot answer" % sent
        with backend_server.conn() as c:
            c.call(b"get bp:k\r\n", b"VALUE bp:k 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n")
            st = stats(c)
        assert int(st.get("conn_output_paused", st.get("worker_conn_output_paused", "0"))) >= 1
    finally:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        hog.close()


def test_back_pressure_then_resume(backend_server):
    """Output beyond --max-conn-output pauses the connection's input; once
    the client reads, input resumes and every reply arrives in order."""
    value = b"r" * 100_000
    n = 300                                        # ~30 MB of replies
    with backend_server.conn(timeout=20) as c:
        c.call(b"set br:k 0 0 %d\r\n" % len(value) + value + b"\r\n", b"STORED\r\n")
        t = send_in_background(c.sock, b"get br:k\r\n" * n)
        time.sleep(0.5)
        one = b"VALUE br:k 0 %d\r\n" % len(value) + value + b"\r\nEND\r\n"
        read_repeated(c.sock, one, n)
        t.join(5)
        c.assert_in_sync()


def test_close_with_output_in_flight(backend_server):
    """Clients that vanish while large replies are being sent or requests
    are in flight on other workers must not disturb the server."""
    value = b"c" * 500_000
    with backend_server.conn() as c:
        c.call(b"set cf:k 0 0 %d\r\n" % len(value) + value + b"\r\n", b"STORED\r\n")
    for i in range(20):
        s = socket.create_connection(backend_server.addr)
        s.sendall(b"get cf:k\r\n" * 8 + b"".join(b"get cf:o%d\r\n" % j for j in range(50)))
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    with backend_server.conn() as c:
        c.send(b"set cf:a 0 0 1\r\na\r\nquit\r\n")
        assert c.readline() == b"STORED\r\n"
        assert c.is_closed(2.0)
    with backend_server.conn() as c:
        c.assert_in_sync()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in ticks


@pytest.mark.parametrize("backend", ["epoll", "uring"])
def test_idle_server_sleeps(backend):
    """Only --io=poll may spin; an idle epoll or io_uring server sleeps."""
    srv = Server(threads=2, extra=["--io=" + backend])
    try:
        with srv.conn() as c:
            c.version()
            before = cpu_seconds(srv.pid)
            time.sleep(1.5)
            used = cpu_seconds(srv.pid) - before
        assert used < 0.3, "idle %s server used %.2f s of CPU in 1.5 s" % (backend, used)
    finally:
        srv.stop_and_check()


def test_uring_falls_back_to_epoll(monkeypatch):
    """Where io_uring is not permitted the server still starts, on epoll,
    says so once, and stats tell the truth. PERCORE_NO_URING simulates a
    kernel that refuses io_uring_setup."""
    monkeypatch.setenv("PERCORE_NO_URING", "1")
    srv = Server(threads=2, extra=["--io=uring"])
    try:
        with srv.conn() as c:
            assert stats(c)["io_backend"] == "epoll"
            c.call(b"set fb:a 0 0 1\r\na\r\nget fb:a\r\n", b"STORED\r\nVALUE fb:a 0 1\r\na\r\nEND\r\n")
        err = srv.stderr_text()
        lines = [l for l in err.splitlines() if "io_uring" in l]
        assert len(lines) == 1 and "falling back to epoll" in lines[0], err
    finally:
        srv.stop_and_check()


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_restart_on_same_port_20_times(backend):
    """A stopped percore lets go of its port before it exits (io_uring's
    pending accepts are cancelled and reaped first), so the next one binds
    the same port at once: 20 stop/start cycles, no retry, no delay (5 with
    busy-poll, whose spinning workers make each start slow on a small
    machine; the race this guards against was io_uring's)."""
    port = free_port()
    for i in range(5 if backend == "poll" else 20):
        srv = Server(threads=2, extra=["--io=" + backend], port=port)
        with srv.conn() as c:
            c.call(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n")
        srv.stop_and_check()


@pytest.mark.parametrize("zc_min", ["0", "4k", "64k"])
def test_uring_zero_copy_sends(zc_min):
    """--zc-send-min: io_uring replies at least that large go out with
    SENDMSG_ZC and wait for the kernel's notification before their buffer
    (and the values' pins) go back. Values of several sizes around the
    threshold, pipelined and interleaved with small gets, read back byte for
    byte; 0 turns zero-copy off."""
    if not uring_usable():
        pytest.skip("io_uring disabled on this kernel")
    srv = Server(threads=2, extra=["--io=uring", "--zc-send-min=" + zc_min])
    try:
        rnd = random.Random(5)
        sizes = [100, 3000, 4095, 4096, 70_000, 65_535, 65_536, 300_000, 1_000_000]
        vals = {b"zc:%d" % n: bytes(rnd.getrandbits(8) for _ in range(256)) * (n // 256)
                + b"x" * (n % 256) for n in sizes}
        with srv.conn(timeout=20) as c:
            for k, v in vals.items():
                c.call(b"set %s 3 0 %d\r\n" % (k, len(v)) + v + b"\r\n", b"STORED\r\n")
            req = b"".join(b"get %s\r\nget zc:none\r\n" % k for k in vals) * 3
            want = b"".join(b"VALUE %s 3 %d\r\n" % (k, len(v)) + v + b"\r\nEND\r\nEND\r\n"
                            for k, v in vals.items()) * 3
            c.call(req, want)
            st = stats(c)
            c.assert_in_sync()
        sends = int(st["uring_zc_sends"])
        if zc_min == "0":
            assert sends == 0
        elif st["io_backend"] == "uring":
            assert sends > 0
        assert int(st["uring_zc_copied"]) <= sends
        with srv.conn() as c:
            assert stats(c, b"settings")["zc_send_min"] == str({"0": 0, "4k": 4096, "64k": 65536}[zc_min])
    finally:
        srv.stop_and_check()
