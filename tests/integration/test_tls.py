"""test_tls.py - -Z (TLS) with real clients: pymemcache's tls_context,
`openssl s_client`, Python's ssl module with client certificates (mutual
TLS, ssl_verify_mode=2), refresh_certs, memcached's ssl_* stats and stats
settings, and bad input (clear text on the TLS port, garbage instead of a
ClientHello, a handshake that stops half-way, 1000 handshakes at once, a
wrong, expired or missing client certificate).

Each test runs against percore on io_uring and on epoll and, side by side,
against Debian's memcached (built with TLS: `memcached -h` lists -Z), except
where a test checks percore's own additions. Certificates are made by the
test (tls_util.Certs), never committed.
"""
import os
import selectors
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import HOST, IS_MEMCACHED, MEMCACHED, SERVER_BIN, free_port
from tls_util import (Certs, TlsServer, client_ctx, request, stats, tls_args,
                      tls_connect)


def _memcached_has_tls():
    try:
        out = subprocess.run([MEMCACHED, "-h"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--enable-ssl" in out


PERCORE = None if IS_MEMCACHED else SERVER_BIN
IMPLS = []
if PERCORE:
    IMPLS += [("percore-uring", PERCORE, ["--io=uring"]),
              ("percore-epoll", PERCORE, ["--io=epoll"])]
if _memcached_has_tls():
    IMPLS.append(("memcached", MEMCACHED, []))
PERCORE_IMPLS = [i for i in IMPLS if i[1] != MEMCACHED]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def start(certs):
    """start(impl, opts=(), probe_cert=None, server=None, **Server kw)."""
    started = []

    def make(impl, opts=(), probe_cert=None, server=None, threads=2, extra_listen=(), **kw):
        name, binary, extra = impl
        s = TlsServer(client_ctx(certs, cert=probe_cert), binary=binary, threads=threads,
                      extra=[*extra, *extra_listen, *tls_args(certs, opts, server)], **kw)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        problems += s.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def by_name(impls):
    return pytest.mark.parametrize("impl", impls, ids=[i[0] for i in impls])


def is_percore(impl):
    return impl[1] != MEMCACHED


def rejected(port, ctx):
    """True when a TLS client with ctx gets no service (the handshake or the
    first request fails, or the server closes)."""
    try:
        s = tls_connect(port, ctx, timeout=3.0)
    except (ssl.SSLError, OSError):
        return True
    try:
        return not request(s, b"version\r\n", timeout=3.0).startswith(b"VERSION")
    finally:
        s.close()


# ---- clients ---------------------------------------------------------------

@by_name(IMPLS)
def test_pymemcache_tls_context(start, certs, impl):
    from pymemcache.client.base import Client
    srv = start(impl)
    c = Client((HOST, srv.port), tls_context=client_ctx(certs), connect_timeout=5, timeout=5,
               default_noreply=False)
    try:
        assert c.set("k", b"v1")
        assert c.get("k") == b"v1"
        big = os.urandom(300 * 1024)            # several TLS records, sent by reference
        assert c.set("big", big)
        assert c.get("big") == big
        vals = {"m%d" % i: os.urandom(20000 + i) for i in range(30)}
        assert c.set_many(vals) == []
        assert c.get_many(list(vals)) == vals   # one reply of ~600 KB over many records
        assert c.incr("n", 1) is None
        c.set("n", b"41")
        assert c.incr("n", 1) == 42
        assert c.delete("k")
        assert c.get("k") is None
    finally:
        c.close()


@by_name(IMPLS)
def test_openssl_s_client(start, certs, impl):
    srv = start(impl)
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "%s:%d" % (HOST, srv.port), "-CAfile", certs.ca,
         "-verify_return_error", "-quiet"],
        input=b"set sk 0 0 5\r\nhello\r\nget sk\r\nquit\r\n", capture_output=True, timeout=20)
    assert b"STORED\r\nVALUE sk 0 5\r\nhello\r\nEND\r\n" in r.stdout, (r.stdout, r.stderr)


@by_name(IMPLS)
def test_pipelined_requests_over_tls(start, certs, impl):
    srv = start(impl)
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        n = 500
        batch = b"".join(b"set p%d 0 0 %d\r\n%s\r\n" % (i, len(b"%d" % i), b"%d" % i)
                         for i in range(n))
        stored = request(s, batch, b"STORED\r\n", timeout=10)
        while stored.count(b"STORED\r\n") < n:   # read until every reply is in
            more = request(s, b"", b"STORED\r\n", timeout=10)
            if not more:
                break
            stored += more
        assert stored == b"STORED\r\n" * n
        got = request(s, b"".join(b"get p%d\r\n" % i for i in range(n)) + b"version\r\n",
                      b"\r\n", timeout=10)
        while b"VERSION " not in got or not got.endswith(b"\r\n"):
            more = request(s, b"", b"\r\n", timeout=10)
            if not more:
                break
            got += more
        assert got.count(b"VALUE p") == n
        for i in (0, 17, n - 1):
            assert b"VALUE p%d 0 %d\r\n%d\r\n" % (i, len(b"%d" % i), i) in got
    finally:
        s.close()


# ---- mutual TLS ------------------------------------------------------------

@by_name(IMPLS)
def test_mutual_tls_requires_a_certificate_from_the_ca(start, certs, impl):
    srv = start(impl, ["ssl_ca_cert=" + certs.ca, "ssl_verify_mode=2"], probe_cert=certs.client)
    s = tls_connect(srv.port, client_ctx(certs, cert=certs.client))
    try:
        assert request(s, b"set m 0 0 2\r\nok\r\n") == b"STORED\r\n"
        before = int(stats(s).get("ssl_handshake_errors", "0"))
        if is_percore(impl):
            conns = stats(s, "conns")
            peers = [v for k, v in conns.items() if k.endswith(":tls_peer")]
            assert peers == ["client-one"], conns
            assert any(v == "TLSv1.3" for k, v in conns.items() if k.endswith(":tls_version"))
        assert rejected(srv.port, client_ctx(certs))                       # no certificate
        assert rejected(srv.port, client_ctx(certs, cert=certs.rogue))     # another CA
        assert rejected(srv.port, client_ctx(certs, cert=certs.expired))   # expired
        time.sleep(0.2)
        after = int(stats(s).get("ssl_handshake_errors", "0"))
        if is_percore(impl):     # memcached 1.6.18 counts none of these three
            assert after - before == 3, (before, after)
        # The authenticated connection never noticed.
        assert request(s, b"get m\r\n", b"END\r\n") == b"VALUE m 0 2\r\nok\r\nEND\r\n"
    finally:
        s.close()


@by_name(IMPLS)
def test_verify_mode_1_accepts_clients_without_a_certificate(start, certs, impl):
    srv = start(impl, ["ssl_ca_cert=" + certs.ca, "ssl_verify_mode=1"])
    assert not rejected(srv.port, client_ctx(certs))
    assert not rejected(srv.port, client_ctx(certs, cert=certs.client))
    assert rejected(srv.port, client_ctx(certs, cert=certs.rogue))


# ---- refresh_certs -----------------------------------------------------------

def peer_cn(port, certs):
    s = tls_connect(port, client_ctx(certs))
    try:
        subject = dict(x[0] for x in s.getpeercert()["subject"])
        return subject["commonName"]
    finally:
        s.close()


@by_name(IMPLS)
def test_refresh_certs(start, certs, impl, tmp_path):
    pem, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copy(certs.server[0], pem)
    shutil.copy(certs.server[1], key)
    srv = start(impl, server=(pem, key))
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        assert peer_cn(srv.port, certs) == "localhost"
        time.sleep(1.1)
        assert int(stats(s)["time_since_server_cert_refresh"]) >= 1
        # Bad files: an error line, and the old certificate keeps serving.
        with open(pem, "w") as f:
            f.write("not a certificate\n")
        err = request(s, b"refresh_certs\r\n")
        assert err.startswith(b"Error loading the certificate chain: " + pem.encode()), err
        assert b"PRIVATE" not in err
        assert peer_cn(srv.port, certs) == "localhost"
        # Renewed files: OK, and new connections get the new certificate.
        shutil.copy(certs.server2[0], pem)
        shutil.copy(certs.server2[1], key)
        assert request(s, b"refresh_certs\r\n") == b"OK\r\n"
        assert int(stats(s)["time_since_server_cert_refresh"]) <= 1
        assert peer_cn(srv.port, certs) == "localhost-renewed"
        # The connection that asked still works on its session.
        assert request(s, b"version\r\n").startswith(b"VERSION ")
    finally:
        s.close()


@pytest.mark.skipif(not PERCORE, reason="percore not under test")
def test_refresh_certs_without_tls_says_so(server_factory):
    srv = server_factory(threads=1)
    with srv.conn() as c:
        c.send(b"refresh_certs\r\n")
        assert c.readline() == b"Error TLS not enabled\r\n"


# ---- stats -------------------------------------------------------------------

SSL_SETTINGS = ["ssl_enabled", "ssl_chain_cert", "ssl_key", "ssl_verify_mode", "ssl_keyformat",
                "ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size", "ssl_session_cache",
                "ssl_kernel_tls", "ssl_min_version"]


@by_name(IMPLS)
def test_stats_settings_and_stats_keys_as_memcached_names_them(start, certs, impl):
    srv = start(impl, ["ssl_ca_cert=" + certs.ca, "ssl_verify_mode=1"])
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        st = stats(s, "settings")
        got = [k for k in st if k.startswith("ssl_")]
        assert sorted(got) == sorted(SSL_SETTINGS), got
        assert st["ssl_enabled"] == "yes"
        assert st["ssl_chain_cert"] == certs.server[0]
        assert st["ssl_ca_cert"] == certs.ca
        assert st["ssl_verify_mode"] == "1"
        assert st["ssl_keyformat"] == "1"
        assert st["ssl_min_version"] == "tlsv1.2"
        assert st["ssl_wbuf_size"] == "16384"
        general = stats(s)
        assert "ssl_handshake_errors" in general
        assert "time_since_server_cert_refresh" in general
    finally:
        s.close()


# ---- bad input -----------------------------------------------------------------

def client_hello_bytes():
    """The first flight of a real TLS client, without a socket."""
    ctx = client_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def closed_within(sock, secs):
    sock.settimeout(secs)
    try:
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True, data
            data += chunk
    except socket.timeout:
        return False, b""
    except ConnectionResetError:
        return True, b""


@by_name(IMPLS)
def test_clear_text_and_garbage_are_closed_and_counted(start, certs, impl):
    srv = start(impl)
    good = tls_connect(srv.port, client_ctx(certs))
    try:
        before = int(stats(good)["ssl_handshake_errors"])
        plain = socket.create_connection((HOST, srv.port), timeout=5)
        plain.sendall(b"set k 0 0 1\r\nx\r\nget k\r\n")
        closed, data = closed_within(plain, 5)
        plain.close()
        assert closed
        if is_percore(impl):
            assert data == b"SERVER_ERROR this port requires TLS\r\n"
        junk = socket.create_connection((HOST, srv.port), timeout=5)
        junk.sendall(b"\x16\x03\x01\x00\x10" + os.urandom(16) + os.urandom(2000))
        closed, _ = closed_within(junk, 5)
        junk.close()
        assert closed
        time.sleep(0.2)
        after = int(stats(good)["ssl_handshake_errors"])
        if is_percore(impl):   # memcached 1.6.18 counts these only some of the time
            assert after - before == 2
        # Nothing stored by the clear-text set.
        assert request(good, b"get k\r\n", b"END\r\n") == b"END\r\n"
    finally:
        good.close()


@by_name(IMPLS)
def test_stalled_handshake_does_not_block_others(start, certs, impl):
    srv = start(impl, threads=1)     # one worker: the stalled client shares it
    hello = client_hello_bytes()
    stalled = []
    for _ in range(20):
        st = socket.create_connection((HOST, srv.port), timeout=5)
        st.sendall(hello[: len(hello) // 2])
        stalled.append(st)
    try:
        good = tls_connect(srv.port, client_ctx(certs))
        t0 = time.monotonic()
        for i in range(200):
            assert request(good, b"set s%d 0 0 1\r\nx\r\n" % i) == b"STORED\r\n"
        assert time.monotonic() - t0 < 20
        good.close()
    finally:
        for st in stalled:
            st.close()


def hung_handshake_closed(srv, certs, not_before, within):
    """A client that sends part of its hello and stops is closed between
    not_before and within seconds, and counted."""
    st = socket.create_connection((HOST, srv.port), timeout=5)
    st.sendall(client_hello_bytes()[:30])
    early, _ = closed_within(st, not_before)
    closed, _ = (True, b"") if early else closed_within(st, within - not_before)
    st.close()
    assert not early and closed
    good = tls_connect(srv.port, client_ctx(certs))
    try:
        assert int(stats(good)["tls_handshake_timeouts"]) == 1
        assert int(stats(good)["ssl_handshake_errors"]) == 1
    finally:
        good.close()


@pytest.mark.skipif(not PERCORE_IMPLS, reason="percore not under test")
@pytest.mark.time_limit(60)
@by_name(PERCORE_IMPLS)
def test_handshake_that_never_finishes_is_closed_after_its_deadline(start, certs, impl):
    hung_handshake_closed(start(impl, opts=("ssl_handshake_timeout=2",), threads=1), certs, 1.5, 5)


@pytest.mark.skipif(not PERCORE_IMPLS, reason="percore not under test")
@pytest.mark.skipif(any(d in (PERCORE or "") for d in ("build-asan", "build-tsan")),
                    reason="the same path as the 2 s deadline; the release stage checks the default")
@pytest.mark.time_limit(60)
def test_handshake_deadline_defaults_to_10s(start, certs):
    hung_handshake_closed(start(PERCORE_IMPLS[0], threads=1), certs, 9.5, 15)


@pytest.mark.skipif(not PERCORE, reason="percore not under test")
@pytest.mark.parametrize("value", ["0", "3601", "x", ""])
def test_bad_handshake_deadline_is_refused(certs, value):
    r = subprocess.run([PERCORE, "-p", str(free_port()), "-U", "0",
                        *tls_args(certs, ("ssl_handshake_timeout=" + value,))],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert "ssl_handshake_timeout" in r.stderr


@by_name(IMPLS)
@pytest.mark.time_limit(120)
def test_1000_handshakes_at_once(start, certs, impl):
    srv = start(impl, maxconns=1200)
    n = 1000
    sel = selectors.DefaultSelector()
    ctx = client_ctx(certs)
    socks = []
    for _ in range(n):
        raw = socket.socket()
        raw.setblocking(False)
        raw.connect_ex((HOST, srv.port))
        s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    # Meanwhile an established client keeps asking; its slowest answer is
    # what the handshake storm costs it.
    good = tls_connect(srv.port, client_ctx(certs))
    worst = [0.0]
    wrong = []
    stop = threading.Event()

    def ask():
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            got = request(good, b"set g%d 0 0 1\r\nx\r\n" % (i % 50), timeout=30)
            worst[0] = max(worst[0], time.monotonic() - t0)
            if got != b"STORED\r\n":
                wrong.append(got)
                return
            i += 1

    th = threading.Thread(target=ask)
    th.start()
    done, failed = 0, 0
    deadline = time.monotonic() + 90
    try:
        while done + failed < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                try:
                    s.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                except (ssl.SSLError, OSError):
                    failed += 1
                    sel.unregister(s)
                    continue
                done += 1
                sel.unregister(s)
    finally:
        stop.set()
        th.join(30)
        for s in socks:
            s.close()
    assert not wrong, wrong
    assert done == n, (done, failed)
    st = stats(good)
    good.close()
    print("%s: %d handshakes, slowest set of the other client %.3f s"
          % (impl[0], n, worst[0]))
    assert worst[0] < 5.0
    if is_percore(impl):
        assert int(st["tls_handshakes"]) >= n


@by_name(IMPLS)
def test_notls_listener_stays_clear_text(start, certs, impl):
    clear = free_port()
    srv = start(impl, extra_listen=["-l", "notls:%s:%d" % (HOST, clear)])
    plain = socket.create_connection((HOST, clear), timeout=5)
    try:
        plain.sendall(b"set nt 0 0 2\r\nhi\r\nget nt\r\n")
        assert request(plain, b"", b"END\r\n") == b"STORED\r\nVALUE nt 0 2\r\nhi\r\nEND\r\n"
    finally:
        plain.close()
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        assert request(s, b"get nt\r\n", b"END\r\n") == b"VALUE nt 0 2\r\nhi\r\nEND\r\n"
    finally:
        s.close()
    raw = socket.create_connection((HOST, srv.port), timeout=5)
    raw.sendall(b"get nt\r\n")
    closed, data = closed_within(raw, 5)
    raw.close()
    assert closed and b"VALUE" not in data


@by_name(IMPLS)
def test_ascii_auth_over_tls(start, certs, impl, tmp_path):
    """-Y sits on top of TLS: the login is the first command inside the
    session, and the password never crosses the network in clear."""
    auth = tmp_path / "auth"
    auth.write_text("alice:s3cret\n")
    auth.chmod(0o600)
    srv = start(impl, extra_listen=["-Y", str(auth)], probe_cert=None)
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        assert request(s, b"get k\r\n").startswith(b"CLIENT_ERROR")
    finally:
        s.close()
    s = tls_connect(srv.port, client_ctx(certs))
    try:
        assert request(s, b"set auth 0 0 12\r\nalice s3cret\r\n") == b"STORED\r\n"
        assert request(s, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert request(s, b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"
    finally:
        s.close()


# ---- start-up ----------------------------------------------------------------

@by_name(IMPLS)
def test_bad_certificate_file_stops_start_up(certs, impl, tmp_path):
    name, binary, extra = impl
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage\n")
    args = [binary, "-p", str(free_port()), "-l", HOST, "-U", "0", *extra, "-Z", "-o",
            "ssl_chain_cert=%s,ssl_key=%s" % (bad, certs.server[1])]
    if binary == MEMCACHED and os.geteuid() == 0:
        args += ["-u", "root"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=10)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert "Error loading the certificate chain: %s" % bad in r.stderr, r.stderr
    key = open(certs.server[1]).read()
    assert key.splitlines()[1] not in r.stderr   # no key material in a log


@pytest.mark.skipif(not PERCORE, reason="percore not under test")
def test_udp_with_tls_is_refused(certs):
    r = subprocess.run([PERCORE, "-p", str(free_port()), "-U", str(free_port()),
                        *tls_args(certs)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 64
    assert "Cannot enable UDP while TLS is enabled" in r.stderr


@by_name(PERCORE_IMPLS)
def test_min_version_tls13(start, certs, impl):
    srv = start(impl, ["ssl_min_version=tlsv1.3"])
    old = client_ctx(certs)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    assert rejected(srv.port, old)
    assert not rejected(srv.port, client_ctx(certs))


@by_name(IMPLS)
def test_session_cache_resumes(start, certs, impl):
    srv = start(impl, ["ssl_session_cache"])
    ctx = client_ctx(certs)
    s = tls_connect(srv.port, ctx)
    assert request(s, b"version\r\n").startswith(b"VERSION")   # tickets arrive with it
    sess = s.session
    s.close()
    raw = socket.create_connection((HOST, srv.port), timeout=5)
    s2 = ctx.wrap_socket(raw, server_hostname="localhost", session=sess)
    try:
        assert request(s2, b"version\r\n").startswith(b"VERSION")
        assert s2.session_reused
        if is_percore(impl):
            assert int(stats(s2)["tls_resumed"]) == 1
    finally:
        s2.close()


@by_name(IMPLS)
def test_idle_close_ends_the_session_with_close_notify(start, certs, impl):
    """A connection the server closes (here: -o idle_timeout) gets a TLS
    close_notify first, as memcached sends one on every close: a client
    that tells a clean end from a truncated stream (Perl's IO::Socket::SSL,
    OpenSSL 3 without SSL_OP_IGNORE_UNEXPECTED_EOF, which Python sets by
    default and this test clears) sees a clean end. percore sent it only
    after `quit` before (memcached's t/idle-timeout.t over TLS: the Perl
    client died of SIGPIPE)."""
    srv = start(impl, ["idle_timeout=1"])
    ctx = client_ctx(certs)
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    raw = socket.create_connection((HOST, srv.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    try:
        assert request(s, b"version\r\n").startswith(b"VERSION")
        s.settimeout(8)
        # "unexpected eof while reading" (ssl.SSLError) without close_notify
        assert s.recv(100) == b""
    finally:
        s.close()


@by_name(IMPLS)
def test_unix_socket_stays_clear_text_under_tls(certs, impl):
    """-Z with -s: memcached serves its UNIX socket in clear text (its TLS
    is for TCP listeners), so its clients talk to it without TLS. percore
    wrapped the socket in TLS before and answered them `SERVER_ERROR this
    port requires TLS`."""
    name, binary, extra = impl
    path = "/tmp/percore-tls-%d-%s.sock" % (os.getpid(), name)
    args = [binary, "-s", path, *extra, *tls_args(certs)]
    if binary == MEMCACHED and os.geteuid() == 0:
        args += ["-u", "root"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s = socket.socket(socket.AF_UNIX)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                s.connect(path)
                break
            except OSError:
                assert p.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert request(s, b"set u 0 0 1\r\nx\r\nget u\r\n", b"END\r\n") == \
            b"STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n"
    finally:
        s.close()
        p.kill()
        p.wait()
        if os.path.exists(path):
            os.unlink(path)
