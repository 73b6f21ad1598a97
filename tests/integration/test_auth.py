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
    """A server that answers nothing but errors before a login: ready once
    a connection is answered (a binary VERSION under -S, which is allowed
    before SASL; any text line under -Y, answered unauthenticated)."""

    def _wait_ready(self, timeout):
        probe = (struct.pack(">BBHBBHIIQ", 0x80, 0x0B, 0, 0, 0, 0, 0, 0, 0)
                 if "-S" in self.args and "-Y" not in self.args else b"version\r\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(self.addr, timeout=1.0) as s:
                    s.sendall(probe)
                    if s.recv(64):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False


@pytest.fixture
def authfile(tmp_path):
    p = tmp_path / "auth"
    p.write_text(f"{USER}:{PASSWORD}\nbob:pass:with:colons\r\n")
    return str(p)


@pytest.fixture
def servers(server_factory):
    def make(binary, *extra, threads=2):
        return server_factory(cls=AuthServer, binary=binary, threads=threads, extra=extra)

    return make


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
    (["-B", "auto"], 64, "You cannot allow the BINARY protocol while using ascii"),
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


# ---- -S: SASL over the binary protocol ----------------------------------------

SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
needs_sasl_tools = pytest.mark.skipif(not os.path.exists(SASLPASSWD2),
                                      reason="saslpasswd2 (sasl2-bin) not installed")

GET, SET, VERSION, NOOP, STAT = 0x00, 0x01, 0x0B, 0x0A, 0x10
SASL_LIST, SASL_AUTH, SASL_STEP = 0x20, 0x21, 0x22
AUTH_ERROR, AUTH_CONTINUE = 0x20, 0x21


def pkt(op, key=b"", ext=b"", val=b"", opaque=0):
    if isinstance(key, str):
        key = key.encode()
    if isinstance(val, str):
        val = val.encode()
    bl = len(key) + len(ext) + len(val)
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0, bl, opaque, 0) + ext + key + val


def read_pkt(c):
    """(opcode, status, body) of one response, or None at EOF."""
    h = c.read_exact(24)
    if len(h) < 24:
        return None
    _, op, kl, el, _, status, bl, _, _ = struct.unpack(">BBHBBHIIQ", h)
    body = c.read_exact(bl)
    return op, status, body[kl + el:]


@pytest.fixture
def sasl_conf(tmp_path, monkeypatch):
    """A memcached.conf (mech_list, sasldb_path) and a sasldb holding alice,
    made with Cyrus's own tool; SASL_CONF_PATH points the servers at it.
    Returns a function to rewrite the mechanism list."""
    db = tmp_path / "sasldb2"
    subprocess.run([SASLPASSWD2, "-p", "-c", "-f", str(db), "-a", "memcached", USER],
                   input=PASSWORD.encode(), check=True, timeout=10)

    def mechs(m):
        (tmp_path / "memcached.conf").write_text(f"mech_list: {m}\nsasldb_path: {db}\n")
    mechs("plain scram-sha-256")
    monkeypatch.setenv("SASL_CONF_PATH", str(tmp_path))
    return mechs


def plain_auth(c, user=USER, password=PASSWORD):
    c.send(pkt(SASL_AUTH, "PLAIN", val=f"\0{user}\0{password}"))
    return read_pkt(c)


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802, 7677), no channel binding."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n={user},r={self.nonce}"

    def first(self):
        return "n,," + self.bare

    def final(self, server_first, proof_ok=True):
        f = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert f["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(f["s"]),
                                     int(f["i"]))
        ck = hmac.new(salted, b"Client Key", "sha256").digest()
        without = f"c=biws,r={f['r']}"
        self.auth_msg = f"{self.bare},{server_first},{without}".encode()
        sig = hmac.new(hashlib.sha256(ck).digest(), self.auth_msg, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        if not proof_ok:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return f"{without},p={base64.b64encode(proof).decode()}"

    def verify(self, server_final):
        want = hmac.new(self.server_key, self.auth_msg, "sha256").digest()
        return server_final == "v=" + base64.b64encode(want).decode()


def scram_auth(c, password=PASSWORD, proof_ok=True):
    """Runs the exchange; returns the list of (opcode, status, body)."""
    s = Scram(USER, password)
    out = []
    c.send(pkt(SASL_AUTH, "SCRAM-SHA-256", val=s.first()))
    r = read_pkt(c)
    out.append(r)
    if r[1] != AUTH_CONTINUE:
        return out
    c.send(pkt(SASL_STEP, "SCRAM-SHA-256", val=s.final(r[2].decode(), proof_ok)))
    r = read_pkt(c)
    out.append(r)
    if r[1] == AUTH_CONTINUE:          # the server's final message; answer empty
        assert s.verify(r[2].decode()), r
        c.send(pkt(SASL_STEP, "SCRAM-SHA-256"))
        out.append(read_pkt(c))
    return out


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_sasl_raw_exchanges_match_memcached(servers, sasl_conf, binary):
    srv = servers(binary, "-S")
    with srv.conn() as c:
        c.send(pkt(VERSION))
        assert read_pkt(c)[1] == 0                       # allowed before auth
        c.send(pkt(SASL_LIST))
        assert read_pkt(c) == (SASL_LIST, 0, b"PLAIN SCRAM-SHA-256")
        assert plain_auth(c, password="wrong") == (SASL_AUTH, AUTH_ERROR, b"Auth failure.")
        assert plain_auth(c, user="nobody") == (SASL_AUTH, AUTH_ERROR, b"Auth failure.")
        c.send(pkt(SASL_AUTH, "NO-SUCH-MECH", val="x"))
        assert read_pkt(c) == (SASL_AUTH, AUTH_ERROR, b"Auth failure.")
        c.send(pkt(SASL_AUTH, "X" * 40, val="x"))       # mechanism name too long
        assert read_pkt(c)[1] == 0x04
        assert plain_auth(c) == (SASL_AUTH, 0, b"Authenticated")
        c.send(pkt(SET, "k", struct.pack(">II", 0, 0), "v") + pkt(GET, "k"))
        assert read_pkt(c)[1] == 0 and read_pkt(c) == (GET, 0, b"v")
        st = {}
        for key in ("settings", ""):
            c.send(pkt(STAT, key))
            while True:
                h = c.read_exact(24)
                kl, bl = struct.unpack(">H", h[2:4])[0], struct.unpack(">I", h[8:12])[0]
                body = c.read_exact(bl)
                if kl == 0:
                    break
                st[body[:kl].decode()] = body[kl:].decode()
        assert st["auth_enabled_sasl"] == "yes"
        assert (st["auth_cmds"], st["auth_errors"]) == ("4", "3")


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_sasl_unauthenticated_command_is_refused_and_closed(servers, sasl_conf, binary):
    srv = servers(binary, "-S")
    with srv.conn() as c:
        c.send(pkt(SET, "k", struct.pack(">II", 0, 0), "v"))
        assert read_pkt(c) == (SET, AUTH_ERROR, b"Auth failure.")
        assert c.is_closed()
    with srv.conn() as c:
        c.send(pkt(NOOP))
        assert read_pkt(c) == (NOOP, AUTH_ERROR, b"Auth failure.")
        assert c.is_closed()
    with srv.conn() as c:       # nothing was stored
        assert plain_auth(c)[1] == 0
        c.send(pkt(GET, "k"))
        assert read_pkt(c)[1] == 0x01
    with srv.conn() as c:       # -S speaks only binary: a header's worth of text
        c.send(b"get k\r\n" * 4)
        assert c.is_closed()


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_sasl_step_without_a_start_is_refused(servers, sasl_conf, binary):
    """memcached's t/binary-sasl.t sasl_step_fails_no_segfault: a SASL_STEP
    on a connection that never sent SASL_AUTH (or after its exchange
    ended) answers Auth failure; it crashed percore (Cyrus's step on a
    connection that was never started)."""
    srv = servers(binary, "-S")
    with srv.conn() as c:
        c.send(pkt(SASL_STEP, "PLAIN", val=f"\0{USER}\0{PASSWORD}"))
        assert read_pkt(c) == (SASL_STEP, AUTH_ERROR, b"Auth failure.")
        assert plain_auth(c) == (SASL_AUTH, 0, b"Authenticated")
        c.send(pkt(SASL_STEP, "PLAIN", val=f"\0{USER}\0{PASSWORD}"))   # after it ended
        assert read_pkt(c)[1] == AUTH_ERROR
    with srv.conn() as c:
        assert plain_auth(c, password="wrong")[1] == AUTH_ERROR
        c.send(pkt(SASL_STEP, "PLAIN", val="x"))                      # after a failure
        assert read_pkt(c)[1] == AUTH_ERROR
    with srv.conn() as c:       # still serving
        assert plain_auth(c) == (SASL_AUTH, 0, b"Authenticated")


@needs_sasl_tools
def test_sasl_login_empty_username_is_refused_at_once(servers, sasl_conf):
    """LOGIN with an empty username is answered Auth failure at the username
    step (memcached prompts for the password first and fails then): Cyrus's
    LOGIN plugin never frees the password sent after an empty username, so
    repeated attempts grew the server before any login (fuzz_sasl). A good
    LOGIN exchange still works on the same connection, and a username given
    as the initial response too."""
    sasl_conf("login")
    srv = servers(PERCORE, "-S")
    with srv.conn() as c:
        for empty in ("", "\0"):
            c.send(pkt(SASL_AUTH, "LOGIN"))
            assert read_pkt(c)[1] == AUTH_CONTINUE          # "Username:"
            c.send(pkt(SASL_STEP, "LOGIN", val=empty))
            assert read_pkt(c) == (SASL_STEP, AUTH_ERROR, b"Auth failure.")
            c.send(pkt(SASL_STEP, "LOGIN", val=PASSWORD))     # the exchange is over
            assert read_pkt(c)[1] == AUTH_ERROR
        c.send(pkt(SASL_AUTH, "LOGIN"))
        assert read_pkt(c)[1] == AUTH_CONTINUE
        c.send(pkt(SASL_STEP, "LOGIN", val=USER))
        assert read_pkt(c)[1] == AUTH_CONTINUE              # "Password:"
        c.send(pkt(SASL_STEP, "LOGIN", val=PASSWORD))
        assert read_pkt(c) == (SASL_STEP, 0, b"Authenticated")
    with srv.conn() as c:
        c.send(pkt(SASL_AUTH, "LOGIN", val=USER))             # username up front
        assert read_pkt(c)[1] == AUTH_CONTINUE
        c.send(pkt(SASL_STEP, "LOGIN", val=PASSWORD))
        assert read_pkt(c) == (SASL_STEP, 0, b"Authenticated")


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_sasl_scram_sha256_by_hand(servers, sasl_conf, binary):
    sasl_conf("scram-sha-256")
    srv = servers(binary, "-S")
    with srv.conn() as c:
        bad = scram_auth(c, proof_ok=False)
        assert [r[1] for r in bad] == [AUTH_CONTINUE, AUTH_ERROR]
        good = scram_auth(c)
        assert [r[1] for r in good] == [AUTH_CONTINUE, AUTH_CONTINUE, 0]
        assert good[-1][2] == b"Authenticated"
        c.send(pkt(GET, "k"))
        assert read_pkt(c)[1] == 0x01


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
@pytest.mark.parametrize("mech", ["plain", "scram-sha-256"])
def test_pylibmc_sasl(servers, sasl_conf, binary, mech):
    """libmemcached's SASL client (binary protocol), as applications use it."""
    import pylibmc
    sasl_conf(mech)
    srv = servers(binary, "-S")
    addr = f"{srv.addr[0]}:{srv.addr[1]}"
    mc = pylibmc.Client([addr], binary=True, username=USER, password=PASSWORD)
    mc.set("k", "v")
    assert mc.get("k") == "v"
    assert mc.incr("n", 1) if mc.add("n", 1) else True
    bad = pylibmc.Client([addr], binary=True, username=USER, password="wrong")
    with pytest.raises(pylibmc.Error, match="AUTHENTICATION FAILURE"):
        bad.get("k")
    mc.disconnect_all()
    bad.disconnect_all()


@needs_sasl_tools
def test_sasl_wrong_password_a_thousand_times(servers, sasl_conf):
    srv = servers(PERCORE, "-S", "-vv", threads=1)
    with srv.conn() as good, srv.conn() as c:
        assert plain_auth(good)[1] == 0
        t0 = time.monotonic()
        c.send(b"".join(pkt(SASL_AUTH, "PLAIN", val=f"\0{USER}\0guess{i:04d}", opaque=i)
                        for i in range(1000)))
        for i in range(1000):
            assert read_pkt(c) == (SASL_AUTH, AUTH_ERROR, b"Auth failure.")
            if i % 100 == 0:
                good.send(pkt(GET, "nokey"))
                assert read_pkt(good)[1] == 0x01
        assert time.monotonic() - t0 < 60
        assert plain_auth(c)[1] == 0
    err = srv.stderr_text()
    assert "guess" not in err and PASSWORD not in err
    assert err.count("SASL:") < 100, "SASL log lines are rate-limited"


@needs_sasl_tools
@pytest.mark.parametrize("binary", BOTH, ids=name)
@pytest.mark.parametrize("args,message", [
    (["-U", "11211"], "Cannot enable UDP while using binary SASL authentication."),
    (["-B", "ascii"], "You cannot allow the ASCII protocol while using SASL."),
    (["-B", "auto"], "You cannot allow the ASCII protocol while using SASL."),
])
def test_sasl_startup_errors(binary, sasl_conf, args, message):
    r = run_server(binary, "-S", *args)
    assert r.returncode == 64, r
    assert message in r.stderr


def test_sasl_without_configuration_refuses_to_start(tmp_path, monkeypatch):
    """memcached exits 1 ("Error initializing sasl."); percore says where
    it looked."""
    if any(os.path.exists(f"/etc/{d}/memcached.conf") for d in ("sasl", "sasl2")):
        pytest.skip("a system-wide SASL configuration exists")
    monkeypatch.delenv("SASL_CONF_PATH", raising=False)
    for binary in BOTH:
        r = run_server(binary, "-S")
        assert r.returncode == 1, r
    assert "SASL_CONF_PATH" in run_server(PERCORE, "-S").stderr


@needs_sasl_tools
def test_sasl_steps_interleave_with_other_clients(servers, sasl_conf):
    """A SCRAM step costs milliseconds of the worker's CPU: one per
    connection per loop iteration, so a client pipelining a hundred of
    them does not stand before another client's get, even with -R 1000.
    Judged by order (replies already sent when the get is answered), not
    by time."""
    srv = servers(PERCORE, "-S", "-R", "1000", threads=1)
    with srv.conn() as good, srv.conn(timeout=60) as att:
        assert plain_auth(good)[1] == 0
        att.send(pkt(SASL_AUTH, "SCRAM-SHA-256", val=Scram(USER, "x").first()) * 100)
        time.sleep(0.05)
        good.send(pkt(GET, "k"))
        assert read_pkt(good)[1] == 0x01
        att.sock.setblocking(False)
        sent = b""
        try:
            while True:
                d = att.sock.recv(1 << 20)
                if not d:
                    break
                sent += d
        except BlockingIOError:
            pass
        done = 0
        while len(sent) >= 24:
            bl = struct.unpack(">I", sent[8:12])[0]
            sent = sent[24 + bl:]
            done += 1
        assert done < 50, f"{done} of 100 SCRAM steps ran before the other client's get"
        att.sock.setblocking(True)


def test_ascii_auth_over_a_unix_socket(tmp_path, authfile):
    """The login is the protocol layer's: the same over a UNIX socket."""
    path = str(tmp_path / "sock")
    proc = subprocess.Popen([PERCORE, "-s", path, "-Y", authfile, "-t", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if os.path.exists(path):
                break
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"get k\r\nset a 0 0 15\r\nalice s3cret-pw\r\nset k 0 0 1\r\nv\r\nget k\r\n")
        got = b""
        while not got.endswith(b"END\r\n"):
            got += s.recv(4096)
        assert got == (b"CLIENT_ERROR unauthenticated\r\nSTORED\r\nSTORED\r\n"
                       b"VALUE k 0 1\r\nv\r\nEND\r\n")
        s.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("binary", BOTH, ids=name)
def test_sighup_reloads_the_authfile(servers, tmp_path, binary):
    """memcached reloads -Y's file on SIGHUP (within its 1 s clock tick); a
    file that no longer parses leaves the entries in use."""
    import signal
    p = tmp_path / "auth"
    p.write_text("alice:old\n")
    srv = servers(binary, "-Y", str(p))

    def can_login(user, pw):
        with srv.conn() as c:
            return login(c, user, pw) == b"STORED\r\n"

    def eventually(user, pw, want):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if can_login(user, pw) == want:
                return True
            time.sleep(0.1)
        return False

    assert can_login("alice", "old")
    p.write_text("alice:new\nbob:pw\n")
    os.kill(srv.pid, signal.SIGHUP)
    assert eventually("alice", "new", True) and eventually("bob", "pw", True)
    assert not can_login("alice", "old")
    p.write_text("no colon here\n")
    os.kill(srv.pid, signal.SIGHUP)
    time.sleep(1.5)
    assert can_login("bob", "pw"), "a bad file must not drop the entries in use"


@needs_sasl_tools
def test_sasl_logins_from_many_threads_on_every_worker(servers, sasl_conf):
    """libsasl2 is used by every worker at once (sasldb lookups, SCRAM):
    concurrent logins, right and wrong, all get their own answer."""
    srv = servers(PERCORE, "-S", threads=4)
    errors = []

    def worker(i):
        try:
            for j in range(15):
                with srv.conn(timeout=30) as c:
                    ok = (i + j) % 3 != 0
                    if j % 2:
                        r = plain_auth(c, password=PASSWORD if ok else "nope")
                        assert r[1] == (0 if ok else AUTH_ERROR), r
                    else:
                        steps = scram_auth(c, password=PASSWORD if ok else "nope")
                        assert steps[-1][1] == (0 if ok else AUTH_ERROR), steps
                    c.send(pkt(GET, f"k{i}"))
                    if ok:
                        assert read_pkt(c)[1] == 0x01
                    else:
                        assert read_pkt(c)[1] == AUTH_ERROR and c.is_closed()
        except Exception as e:   # reported below, with the thread's number
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    with srv.conn() as c:
        assert plain_auth(c)[1] == 0
