"""Authentication (issue 15): memcached's ASCII auth (-Y FILE) and SASL over
the binary protocol (-S), side by side with Debian's memcached 1.6.18, which
has both. Real clients: raw sockets, pymemcache (-Y), pylibmc/libmemcached
(-S, PLAIN and SCRAM-SHA-256), and a SCRAM-SHA-256 client written here from
RFC 5802/7677 (so a wrong proof is tested too).
Run: /usr/bin/python3 -m pytest tests/integration/test_auth.py
"""
import base64
import hashlib
import hmac
import os
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import MEMCACHED, SERVER_BIN, Conn, Server

PERCORE = SERVER_BIN
BOTH = [PERCORE, MEMCACHED]
USER, PASSWORD = "alice", "s3cret-pw"


def name(b):
    return "memcached" if b == MEMCACHED else "percore"


class AuthServer(Server):
    """A server that answers nothing before a login: ready once it accepts
    a TCP connection."""

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(self.addr, timeout=1.0).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False


@pytest.fixture
def authfile(tmp_path):
    p = tmp_path / "auth"
    p.write_text(f"{USER}:{PASSWORD}\nbob:pass:with:colons\r\n")
    return str(p)


@pytest.fixture
def servers():
    started = []

    def make(binary, *extra, threads=2):
        s = AuthServer(binary=binary, threads=threads, extra=extra)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        problems += s.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def login(c, user=USER, password=PASSWORD):
    cred = f"{user} {password}".encode()
    c.send(b"set auth 0 0 %d\r\n%s\r\n" % (len(cred), cred))
    return c.readline()


def stats(c, arg=""):
    c.send(f"stats {arg}\r\n".encode() if arg else b"stats\r\n")
    out = {}
    while True:
        line = c.readline()
        if line == b"END\r\n":
            return out
        _, k, v = line.decode().rstrip("\r\n").split(" ", 2)
        out[k] = v


# ---- -Y: the ASCII login ----------------------------------------------------

# Each exchange is sent alone and its whole reply read before the next
# (memcached 1.6.18 drops replies when a client pipelines behind a failed
# login; percore answers every line, see docs/security.md).
EXCHANGES = [
    (b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"version\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"stats\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"mg k v\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"set k 0 0\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"add k 0 0 5\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"set k 0 0 -1\r\n", b"CLIENT_ERROR unauthenticated\r\n"),
    (b"set k 0 0 1\r\nx\r\n", b"CLIENT_ERROR bad authentication token format\r\n"),
    (b"set k 0 0 3\r\nabcde", b"CLIENT_ERROR bad command line termination\r\n"),
    (b"set k 0 0 11\r\nalice wrong\r\n", b"CLIENT_ERROR authentication failure\r\n"),
    (b"set k 0 0 9\r\nbob wrong\r\n", b"CLIENT_ERROR authentication failure\r\n"),
    (b"set k 0 0 15\r\nalice s3cret-pw\r\n", b"STORED\r\n"),
    (b"get k\r\n", b"END\r\n"),                      # nothing was stored before
    (b"set k 0 0 1\r\nv\r\n", b"STORED\r\n"),
    (b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n"),
]


@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_ascii_login_exchanges_match_memcached(servers, authfile, binary):
    srv = servers(binary, "-Y", authfile)
    with srv.conn() as c:
        for req, want in EXCHANGES:
            c.call(req, want)
        st = stats(c)
        assert (st["auth_cmds"], st["auth_errors"]) == ("3", "2")
        assert stats(c, "settings")["auth_enabled_ascii"] == authfile


@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_password_with_colons_and_crlf_file(servers, authfile, binary):
    srv = servers(binary, "-Y", authfile)
    with srv.conn() as c:
        assert login(c, "bob", "pass:with:colons") == b"STORED\r\n"
        c.assert_in_sync()


@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_pymemcache_logs_in_with_a_set(servers, authfile, binary):
    """memcached's documented way for any client: a set whose value is
    "user password"; then the client works as usual."""
    from pymemcache.client.base import Client
    srv = servers(binary, "-Y", authfile)
    cl = Client(srv.addr, connect_timeout=5, timeout=5, default_noreply=False)
    try:
        assert cl.set("auth", f"{USER} {PASSWORD}") is True
        assert cl.set("k", b"value") is True
        assert cl.get("k") == b"value"
        assert cl.incr("n", 1) is None
        assert cl.get_multi(["k", "n"]) == {"k": b"value"}
    finally:
        cl.close()
    bad = Client(srv.addr, connect_timeout=5, timeout=5, default_noreply=False)
    try:
        from pymemcache.exceptions import MemcacheClientError
        with pytest.raises(MemcacheClientError, match="authentication failure"):
            bad.set("auth", f"{USER} nope")
        with pytest.raises(MemcacheClientError, match="unauthenticated"):
            bad.get("k")
    finally:
        bad.close()


def test_unauthenticated_pipeline_stores_nothing(servers, authfile):
    """Everything a client pipelines before logging in is refused, one reply
    per line, and nothing of it reaches the store; after the login the same
    connection runs commands as usual."""
    srv = servers(PERCORE, "-Y", authfile)
    with srv.conn() as c:
        c.send(b"delete a\r\nincr n 1\r\ntouch a 10\r\nflush_all\r\nms a 1\r\n"
               b"set a 0 0 1\r\nb\r\nset auth 0 0 15\r\nalice s3cret-pw\r\n"
               b"get a\r\nquit\r\n")
        assert c.read_until(b"END\r\n") == (
            b"CLIENT_ERROR unauthenticated\r\n" * 5 +
            b"CLIENT_ERROR bad authentication token format\r\n"
            b"STORED\r\nEND\r\n")
        assert c.is_closed()


def test_wrong_password_a_thousand_times(servers, authfile):
    """Each attempt gets the error, the counters count them all, a client
    already logged in is served throughout, and no password reaches the
    log even at -vv."""
    srv = servers(PERCORE, "-Y", authfile, "-vv", threads=1)
    good = srv.conn()
    assert login(good) == b"STORED\r\n"
    with srv.conn() as c:
        batch = b"".join(b"set a 0 0 %d\r\nalice guess%04d\r\n" % (len(f"alice guess{i:04d}"), i)
                         for i in range(1000))
        t0 = time.monotonic()
        c.send(batch)
        for i in range(1000):
            assert c.readline() == b"CLIENT_ERROR authentication failure\r\n"
            if i % 100 == 0:
                good.call(b"set g 0 0 1\r\nx\r\nget g\r\n", b"STORED\r\nVALUE g 0 1\r\nx\r\nEND\r\n")
        assert time.monotonic() - t0 < 30
        assert login(c) == b"STORED\r\n"
        st = stats(c)
        assert int(st["auth_cmds"]) == 1002 and int(st["auth_errors"]) == 1000
    good.close()
    err = srv.stderr_text()
    assert "guess" not in err and PASSWORD not in err


def test_oversized_login_and_junk_close(servers, authfile):
    srv = servers(PERCORE, "-Y", authfile)
    with srv.conn() as c:
        c.call(b"set a 0 0 100000\r\n", b"CLIENT_ERROR bad authentication token format\r\n")
        assert c.is_closed()
    with srv.conn() as c:
        c.send(b"x" * 3000)      # no newline: junk, as memcached closes it
        assert c.is_closed()
    with srv.conn() as c:       # the server is fine
        assert login(c) == b"STORED\r\n"


def test_login_split_over_many_reads(servers, authfile):
    srv = servers(PERCORE, "-Y", authfile)
    with srv.conn() as c:
        msg = b"set a 0 0 15\r\nalice s3cret-pw\r\nget a\r\n"
        for b in msg:
            c.send(bytes([b]))
            time.sleep(0.002)
        assert c.read_until(b"END\r\n") == b"STORED\r\nEND\r\n"


# ---- start-up rules (memcached's) --------------------------------------------

def run_server(binary, *args):
    argv = [binary, "-p", "0", *args]
    if binary == MEMCACHED and os.geteuid() == 0:
        argv += ["-u", "root"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("binary", BOTH, ids=name)
@pytest.mark.parametrize("args,code,message", [
    (["-U", "11211"], 64, "Cannot use UDP with ascii authentication enabled"),
    (["-B", "binary"], 64, "You cannot allow the BINARY protocol while using ascii"),
])
def test_ascii_auth_startup_errors(binary, authfile, args, code, message):
    r = run_server(binary, "-Y", authfile, *args)
    assert r.returncode == code, r
    assert message in r.stderr


@pytest.mark.parametrize("binary", BOTH, ids=name)
@pytest.mark.parametrize("content,message", [
    (None, "Could not open authfile"),
    ("alice:pw\nno colon here\n", "has a malformed entry. Should be 'user:password'"),
])
def test_bad_authfile_refuses_to_start(binary, tmp_path, content, message):
    p = tmp_path / "auth"
    if content is not None:
        p.write_text(content)
    r = run_server(binary, "-Y", str(p))
    assert r.returncode == 1, r
    assert message in r.stderr
