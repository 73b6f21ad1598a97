"""UDP protocol (-U) and kernel request steering.

Checks, against a real server:
  * framing: replies split into 1400-byte datagrams (1392 payload) with the
    right sequence numbers and counts, large values reassembled;
  * malformed frames dropped and counted (udp_dropped), as memcached does;
  * replies byte-identical to memcached 1.6.18's for the same datagrams;
  * eBPF steering: tens of thousands of single-key requests over thousands
    of keys (short, 250-byte, binary-ish) served with zero forwards;
  * --steering=off: forwards appear and the replies are identical;
  * unprivileged runs fall back (cBPF) and still answer; an explicit
    --steering=ebpf that cannot be honoured exits non-zero.

Self-contained (does not need conftest's fixtures): each test starts its own
servers on free ports and stops them by PID.
"""
import os
import random
import socket
import struct
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_env = os.environ.get("PERCORE_SERVER", "").strip()
PERCORE = os.path.abspath(_env) if _env and _env != "memcached" else os.path.join(REPO, "build", "percore")
MEMCACHED = "/usr/bin/memcached"
HOST = "127.0.0.1"
PAYLOAD = 1392

pytestmark = pytest.mark.skipif(os.path.basename(PERCORE) == "memcached" or not os.path.exists(PERCORE),
                                reason="percore binary needed")


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_ports():
    # A TCP and a UDP port, both free.
    while True:
        t, u = free_port(), free_port(socket.SOCK_DGRAM)
        if t != u:
            return t, u


class Srv:
    def __init__(self, argv, tcp, udp):
        self.tcp, self.udp = tcp, udp
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                # A reply means the workers run, so the UDP sockets (bound
                # after the TCP ones) and their steering are in place too.
                s = socket.create_connection((HOST, tcp), timeout=0.5)
                s.settimeout(5)
                s.sendall(b"version\r\n")
                if s.recv(100).startswith(b"VERSION"):
                    s.close()
                    return
                s.close()
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self):
        if self.proc.poll() is None and os.path.basename(self.proc.args[0]) == "memcached":
            # the reference's exit is not under test; on SIGTERM memcached
            # waits for its next clock tick (0.7 s on average)
            self.proc.kill()
            self.proc.wait()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                    "runtime error:"):
            assert bad not in err, err
        return err

    def stats(self, arg=""):
        s = socket.create_connection((HOST, self.tcp), timeout=5)
        s.sendall(b"stats " + arg.encode() + b"\r\n" if arg else b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            assert chunk
            data += chunk
        s.close()
        out = {}
        for line in data.decode().split("\r\n"):
            if line.startswith("STAT "):
                _, k, v = line.split(" ", 2)
                out[k] = v
        return out

    def tcp_cmd(self, raw, end=b"\r\n"):
        s = socket.create_connection((HOST, self.tcp), timeout=5)
        s.sendall(raw)
        data = b""
        while not data.endswith(end):
            chunk = s.recv(1 << 20)
            assert chunk
            data += chunk
        s.close()
        return data


def percore(threads=4, steering="auto", prefix=(), extra=()):
    tcp, udp = free_ports()
    argv = [*prefix, PERCORE, "-p", str(tcp), "-U", str(udp), "-l", HOST, "-t", str(threads),
            "-m", "64", f"--steering={steering}", *extra]
    return Srv(argv, tcp, udp)


def memcached(threads=2):
    tcp, udp = free_ports()
    argv = [MEMCACHED, "-p", str(tcp), "-U", str(udp), "-l", HOST, "-t", str(threads), "-m", "64"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return Srv(argv, tcp, udp)


def have_ebpf():
    """eBPF steering needs CAP_BPF: probe once with an explicit request."""
    if not hasattr(have_ebpf, "ok"):
        try:
            s = percore(threads=2, steering="ebpf")
            s.stop()
            have_ebpf.ok = True
        except RuntimeError:
            have_ebpf.ok = False
    return have_ebpf.ok


def frame(rid, body, seq=0, count=1, reserved=0):
    return struct.pack(">HHHH", rid, seq, count, reserved) + body


class Udp:
    """A client socket. `raw()` returns every datagram that arrives within a
    quiet period; `call()` reassembles single-response replies by id."""

    def __init__(self, port, family=socket.AF_INET, host=HOST):
        self.addr = (host, port)
        self.s = socket.socket(family, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        try:
            self.s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)   # SO_RCVBUFFORCE when root
        except OSError:
            pass

    def close(self):
        self.s.close()

    def raw(self, data, quiet=0.3, first=None, expect=None):
        """Send one datagram, collect replies until `quiet` seconds pass
        without one; `first`, when given, is how long to wait for the first
        reply (one that is known to come: a loaded machine may take longer
        than the quiet gap to answer at all). `expect`: how many datagrams
        the reference server sent; once that many are in, a short gap is
        enough to catch one more (a missing one is still waited for)."""
        self.s.sendto(data, self.addr)
        self.s.settimeout(first or quiet)
        out = []
        while True:
            if out:
                self.s.settimeout(0.03 if expect and len(out) >= expect else quiet)
            try:
                d, _ = self.s.recvfrom(70000)
            except socket.timeout:
                return out
            out.append(d)

    def fenced(self, data, fence, want_fence):
        """The reference's replies to one datagram, without waiting out a
        quiet period: `fence` (another request id) goes right behind it, and
        a server with one worker thread (memcached -t 1) reads and answers
        datagrams in order, so every reply to `data` comes before the
        fence's. The fence's own reply must be `want_fence`."""
        self.s.sendto(data, self.addr)
        self.s.sendto(fence, self.addr)
        self.s.settimeout(5.0)
        out = []
        while True:
            d, _ = self.s.recvfrom(70000)
            if d[:2] == fence[:2]:
                assert d == want_fence, (data, d)
                return out
            out.append(d)

    def pipeline(self, bodies, window=32, timeout=5.0):
        """Send single-response requests with up to `window` in flight; returns
        the reassembled reply of each, in order."""
        replies = [None] * len(bodies)
        parts = {}
        inflight = {}
        nxt = 0
        done = 0
        self.s.settimeout(timeout)
        while done < len(bodies):
            while nxt < len(bodies) and len(inflight) < window:
                rid = nxt & 0xFFFF
                assert rid not in inflight
                inflight[rid] = nxt
                self.s.sendto(frame(rid, bodies[nxt]), self.addr)
                nxt += 1
            d, _ = self.s.recvfrom(70000)
            rid, seq, cnt, res = struct.unpack(">HHHH", d[:8])
            assert res == 0
            i = inflight[rid]
            p = parts.setdefault(i, {})
            assert seq not in p
            p[seq] = (cnt, d[8:])
            assert all(c == cnt for c, _ in p.values())
            if len(p) == cnt:
                assert all(len(b) == PAYLOAD for s, (c, b) in p.items() if s < cnt - 1)
                replies[i] = b"".join(p[k][1] for k in range(cnt))
                del parts[i]
                del inflight[rid]
                done += 1
        return replies


# --------------------------------------------------------------------------
# Key and workload generation
# --------------------------------------------------------------------------

def gen_keys(n, seed=7):
    """Short, long (up to 250 bytes) and binary-ish keys: any byte the text
    protocol accepts in a key (not space, CR, LF, NUL), high bytes included."""
    rnd = random.Random(seed)
    alphabet = bytes(b for b in range(1, 256) if b not in (0x20, 0x0D, 0x0A))
    keys = set()
    while len(keys) < n:
        kind = rnd.random()
        if kind < 0.5:
            k = b"k:%d" % rnd.randrange(10**9)
        elif kind < 0.7:
            k = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rnd.randrange(200, 251)))
        else:
            k = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 251)))
        keys.add(k)
    return sorted(keys)


def workload(keys, rounds, seed=11):
    """Single-key commands, each with exactly one response: sets, then a mix
    of get/gat/touch/append/prepend/incr/decr/delete/meta."""
    rnd = random.Random(seed)
    bodies = []
    for i, k in enumerate(keys):
        v = b"%d" % i if i % 4 == 0 else b"v%d-" % i * (1 + i % 7)
        bodies.append(b"set " + k + b" %d 0 %d\r\n" % (i, len(v)) + v + b"\r\n")
    for _ in range(rounds):
        for i in rnd.sample(range(len(keys)), len(keys)):
            k = keys[i]
            r = rnd.random()
            if r < 0.6:
                bodies.append(b"get " + k + b"\r\n")
            elif r < 0.65:
                bodies.append(b"gat 0 " + k + b"\r\n")
            elif r < 0.7:
                bodies.append(b"touch " + k + b" 0\r\n")
            elif r < 0.75:
                bodies.append(b"append " + k + b" 0 0 1\r\na\r\n")
            elif r < 0.8:
                bodies.append(b"prepend " + k + b" 0 0 1\r\np\r\n")
            elif r < 0.85:
                bodies.append(b"incr " + k + b" 3\r\n")
            elif r < 0.9:
                bodies.append(b"decr " + k + b" 1\r\n")
            elif r < 0.93:
                bodies.append(b"mg " + k + b" v f t\r\n")
            elif r < 0.95:
                bodies.append(b"ms " + k + b" 2\r\nhi\r\n")
            elif r < 0.97:
                bodies.append(b"delete " + k + b"\r\n")
            else:
                bodies.append(b"add " + k + b" 5 0 3\r\nnew\r\n")
    return bodies


def ival(st, name):
    return int(st[name])


# --------------------------------------------------------------------------
# Framing and compatibility
# --------------------------------------------------------------------------

# Datagram sequences compared byte for byte with memcached (fresh servers).
COMPAT = [
    frame(1, b"get foo\r\n"),
    frame(2, b"set foo 0 0 3\r\nbar\r\n"),
    frame(3, b"get foo\r\n"),
    frame(4, b"get nope foo\r\n"),
    frame(5, b"get nope nope2\r\n"),
    frame(6, b"get foo nope foo\r\n"),
    frame(7, b"get foo\r\nget foo\r\n"),
    frame(8, b"set foo2 0 0 3 noreply\r\nbar\r\n"),
    frame(9, b"get foo2\r\n"),
    frame(10, b"delete nope noreply\r\nget foo\r\n"),
    frame(11, b"get foo\r\nquit\r\n"),
    frame(12, b"quit\r\nget foo\r\n"),
    frame(13, b"bogus\r\n"),
    frame(14, b"\r\n"),
    frame(15, b"get " + b"k" * 251 + b"\r\n"),
    frame(16, b"set n 0 0 1\r\n5\r\nincr n 3\r\ndecr n 1\r\ntouch n 10\r\n"),
    frame(17, b"incr nope 1\r\ntouch nope 1\r\ndelete nope\r\n"),
    frame(18, b"mn\r\n"),
    frame(19, b"mg foo v\r\nmg nope v\r\nmg nope v q\r\nmn\r\n"),
    frame(20, b"ms foo4 2\r\nhi\r\nmg foo4 v f\r\n"),
    frame(21, b"set big 0 0 5000\r\n" + b"x" * 5000 + b"\r\n"),
    frame(22, b"get big\r\n"),
    frame(23, b"get big foo big\r\n"),
    frame(24, b"add foo 0 0 1\r\nz\r\nreplace foo 0 0 1\r\nz\r\nappend foo 0 0 1\r\nq\r\nprepend foo 0 0 1\r\np\r\nget foo\r\n"),
    frame(25, b"get foo", seq=3),                 # no end of line: dropped
    frame(26, b"get foo\r\n", seq=7, reserved=9),  # sequence and reserved ignored
    frame(28, b"get foo\r\n"),
    struct.pack(">HHHH", 29, 0, 1, 0),             # header only: dropped
    b"\x00\x1e\x00",                               # shorter than a header: dropped
    frame(31, b"get foo\r\n", count=2),            # multi-datagram request: dropped
    frame(32, b"get foo\r\n", count=0),            # bad count: dropped
    frame(34, b"flush_all\r\nget foo\r\n"),
]


# Behind each datagram to the reference: a request id no case uses.
FENCE_ID = 0xFFFE


def run_compat(port, expect=None):
    """Each COMPAT datagram's replies. Without `expect`, from the reference
    (memcached -t 1), each datagram fenced (Udp.fenced). With `expect`
    (memcached's replies), a datagram memcached answered waits up to 5 s for
    its first reply, and one it did not answer a quiet 0.15 s."""
    c = Udp(port)
    if expect is None:
        out = [c.fenced(d, frame(FENCE_ID, b"mn\r\n"), frame(FENCE_ID, b"MN\r\n"))
               for d in COMPAT]
    else:
        out = [c.raw(d, quiet=0.15, first=5.0 if expect[i] else None, expect=len(expect[i]))
               for i, d in enumerate(COMPAT)]
    c.close()
    return out


def test_replies_match_memcached():
    m = memcached(threads=1)
    try:
        want = run_compat(m.udp)
    finally:
        m.stop()
    p = percore(threads=4)
    try:
        got = run_compat(p.udp, want)
        st = p.stats()
    finally:
        p.stop()
    for req, w, g in zip(COMPAT, want, got):
        assert g == w, f"request {req[:40]!r}: memcached {w!r} percore {g!r}"
    # 5 malformed datagrams (25, 29-32), none answered.
    assert ival(st, "udp_dropped") == 5


def test_cut_short_data_block_dropped():
    """A datagram is a whole request: a data block cut short by its end is
    dropped (memcached instead waits for the next datagram and mixes it in)."""
    p = percore(threads=2)
    c = Udp(p.udp)
    try:
        assert c.raw(frame(1, b"get a\r\nset a 0 0 10\r\nabc")) == []
        assert c.raw(frame(2, b"get a\r\n")) == [frame(2, b"END\r\n")]
        # A value larger than any datagram is refused and the datagram dropped.
        assert c.raw(frame(3, b"set huge 0 0 2000000\r\nabc\r\n")) == []
        assert c.raw(frame(4, b"flush_all\r\nget a\r\n")) == [frame(4, b"OK\r\n"), frame(4, b"END\r\n")]
        assert ival(p.stats(), "udp_dropped") == 2
    finally:
        c.close()
        p.stop()


def test_large_values_split_and_reassemble():
    p = percore(threads=4)
    c = Udp(p.udp)
    try:
        rnd = random.Random(3)
        sizes = [0, 1, PAYLOAD - 30, PAYLOAD, 5000, 65000, 300000, 1000000]
        vals = {}
        for i, n in enumerate(sizes):
            v = bytes(rnd.randrange(256) for _ in range(min(n, 4096))) * (n // 4096 + 1)
            v = v[:n]
            key = b"big:%d" % i
            vals[key] = v
            assert p.tcp_cmd(b"set " + key + b" 7 0 %d\r\n" % n + v + b"\r\n") == b"STORED\r\n"
        # A value that fits in one request datagram can also be set over UDP.
        v = bytes(range(256)) * 200
        assert c.pipeline([b"set udpbig 1 0 %d\r\n" % len(v) + v + b"\r\n"]) == [b"STORED\r\n"]
        vals[b"udpbig"] = v
        for key, v in vals.items():
            flags = 1 if key == b"udpbig" else 7
            want = b"VALUE " + key + b" %d %d\r\n" % (flags, len(v)) + v + b"\r\nEND\r\n"
            got = c.pipeline([b"get " + key + b"\r\n"], window=1)[0]
            assert got == want, key
        # Datagram-level check of one split reply.
        grams = c.raw(frame(77, b"get big:4\r\n"), first=5.0)
        total = len(b"VALUE big:4 7 5000\r\n") + 5000 + len(b"\r\nEND\r\n")
        n = (total + PAYLOAD - 1) // PAYLOAD
        assert [struct.unpack(">HHHH", g[:8]) for g in grams] == [(77, s, n, 0) for s in range(n)]
        assert [len(g) for g in grams] == [1400] * (n - 1) + [8 + total - PAYLOAD * (n - 1)]
        # A multi-key get: one response per key, each split on its own.
        grams = c.raw(frame(78, b"get big:4 big:1 big:4\r\n"), first=5.0)
        hdrs = [struct.unpack(">HHHH", g[:8])[1:3] for g in grams]
        m = (len(b"VALUE big:4 7 5000\r\n") + 5002 + PAYLOAD - 1) // PAYLOAD
        assert hdrs == [(s, m) for s in range(m)] + [(0, 1)] + [(s, n) for s in range(n)]
    finally:
        c.close()
        p.stop()


def test_malformed_frames_counted():
    p = percore(threads=2)
    c = Udp(p.udp)
    try:
        bad = [b"", b"\x00", b"\x00\x01\x00\x00\x00\x01\x00\x00", frame(1, b"get a\r\n", count=3),
               frame(2, b"get a\r\n", count=0), frame(3, b"get a"), frame(4, b"set a 0 0 5\r\nab")]
        for b in bad:
            assert c.raw(b, quiet=0.1) == []
        assert c.raw(frame(5, b"get a\r\n")) == [frame(5, b"END\r\n")]
        st = p.stats()
        assert ival(st, "udp_dropped") == len(bad)
        assert ival(st, "udp_requests") == 1 + 2   # the get, and the two cut-short requests
    finally:
        c.close()
        p.stop()


def test_two_listen_addresses():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no ::1")
    p = percore(threads=2, extra=["-l", "127.0.0.1,::1"])
    try:
        c4, c6 = Udp(p.udp), Udp(p.udp, socket.AF_INET6, "::1")
        assert c4.pipeline([b"set a 0 0 1\r\n4\r\n"]) == [b"STORED\r\n"]
        assert c6.pipeline([b"get a\r\n"]) == [b"VALUE a 0 1\r\n4\r\nEND\r\n"]
        c4.close()
        c6.close()
    finally:
        p.stop()


# --------------------------------------------------------------------------
# Steering
# --------------------------------------------------------------------------

def run_workload(srv, bodies, clients=2):
    """Spread the workload over a few client sockets (different source ports,
    so the kernel's hash would spread them too) and return every reply."""
    cs = [Udp(srv.udp) for _ in range(clients)]
    try:
        out = []
        # Keep per-key order: all requests go through the same client in turn.
        chunk = 256
        for i in range(0, len(bodies), chunk):
            out += cs[(i // chunk) % clients].pipeline(bodies[i:i + chunk])
        return out
    finally:
        for c in cs:
            c.close()


@pytest.mark.time_limit(120)
def test_ebpf_steering_zero_forwards_and_off_identical():
    if not have_ebpf():
        pytest.skip("eBPF steering not permitted here (needs CAP_BPF + CAP_NET_ADMIN)")
    keys = gen_keys(3000)
    bodies = workload(keys, rounds=9)
    assert len(bodies) >= 25000

    on = percore(threads=4, steering="ebpf")
    try:
        assert on.stats()["steering"] == "ebpf"
        got_on = run_workload(on, bodies)
        st = on.stats()
    finally:
        on.stop()
    assert ival(st, "udp_requests") == len(bodies)
    assert ival(st, "udp_forwarded") == 0
    assert ival(st, "udp_dropped") == 0
    for w in range(4):
        assert ival(st, f"worker_{w}_udp_forwarded") == 0
        # Every worker got its share straight from the kernel.
        assert ival(st, f"worker_{w}_udp_requests") > len(bodies) // 8

    off = percore(threads=4, steering="off")
    try:
        assert off.stats()["steering"] == "off"
        got_off = run_workload(off, bodies)
        st_off = off.stats()
    finally:
        off.stop()
    assert ival(st_off, "udp_requests") == len(bodies)
    assert ival(st_off, "udp_forwarded") > len(bodies) // 4
    assert got_on == got_off
    # And the replies are the right ones (spot-check the sets and gets).
    assert got_on[:len(keys)] == [b"STORED\r\n"] * len(keys)
    assert sum(r.startswith(b"VALUE ") for r in got_on) > len(bodies) // 3


def test_cbpf_steering_explicit():
    keys = gen_keys(800, seed=5)
    bodies = workload(keys, rounds=2)
    p = percore(threads=4, steering="cbpf")
    try:
        assert p.stats()["steering"] == "cbpf"
        got = run_workload(p, bodies)
        st = p.stats()
    finally:
        p.stop()
    assert got[:len(keys)] == [b"STORED\r\n"] * len(keys)
    # cBPF steers everything it parses (all of these commands; meta keys too).
    assert ival(st, "udp_forwarded") == 0


UNPRIV = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def can_setpriv():
    return os.geteuid() == 0 and subprocess.run(UNPRIV + ["true"]).returncode == 0


def test_unprivileged_falls_back_and_answers():
    if not can_setpriv():
        pytest.skip("needs root to become nobody")
    if not os.access(PERCORE, os.X_OK) or subprocess.run(UNPRIV + [PERCORE, "--version"],
                                                         capture_output=True).returncode != 0:
        pytest.skip("nobody cannot run the binary")
    p = percore(threads=4, steering="auto", prefix=UNPRIV)
    try:
        st = p.stats()
        assert st["steering"] in ("cbpf", "off")
        keys = gen_keys(500, seed=9)
        got = run_workload(p, workload(keys, rounds=2))
        assert got[:len(keys)] == [b"STORED\r\n"] * len(keys)
        c = Udp(p.udp)
        assert c.pipeline([b"get " + keys[0] + b"\r\n"])[0].startswith(b"VALUE " + keys[0])
        c.close()
    finally:
        err = p.stop()
    # Said once at start-up, without -v.
    assert err.count("UDP steering: ") == 1, err


def test_explicit_ebpf_fails_clearly_when_not_permitted():
    if not can_setpriv():
        pytest.skip("needs root to become nobody")
    tcp, udp = free_ports()
    r = subprocess.run(UNPRIV + [PERCORE, "-p", str(tcp), "-U", str(udp), "-l", HOST, "-t", "2",
                                 "--steering=ebpf"], capture_output=True, timeout=20)
    assert r.returncode != 0
    assert b"--steering=ebpf" in r.stderr and b"CAP_BPF" in r.stderr


def test_drop_privileges_after_ebpf_setup():
    """-u drops privileges after the sockets and the program are set up, so
    eBPF steering stays in force."""
    if os.geteuid() != 0 or not have_ebpf():
        pytest.skip("needs root with CAP_BPF")
    p = percore(threads=2, steering="auto", extra=["-u", "nobody"])
    try:
        assert p.stats()["steering"] == "ebpf"
        c = Udp(p.udp)
        assert c.pipeline([b"set x 0 0 1\r\n1\r\n", b"get x\r\n"]) == [b"STORED\r\n", b"VALUE x 0 1\r\n1\r\nEND\r\n"]
        c.close()
    finally:
        p.stop()


# --------------------------------------------------------------------------
# The binary protocol over UDP (memcached 1.6.18 picks the protocol per
# datagram from its first byte)
# --------------------------------------------------------------------------

def binpkt(op, key=b"", extras=b"", val=b"", opaque=0):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                       len(key) + len(extras) + len(val), opaque, 0) + extras + key + val


def mask_bin_cas(datagrams):
    """Response packets carry the CAS at bytes 16..24 of their header; a
    datagram that starts a response (seq 0, with a payload) has it at 8+16."""
    out = []
    for d in datagrams:
        if len(d) >= 8 + 24 and d[2:4] == b"\0\0" and d[8] == 0x81:
            d = d[:8 + 16] + b"<cas>" + d[8 + 24:]
        out.append(d)
    return out


BIN_UDP_CASES = [
    ("noop", binpkt(0x0a, opaque=1)),
    ("set", binpkt(0x01, b"ubk", struct.pack(">II", 5, 0), b"hello", opaque=3)),
    ("get hit", binpkt(0x00, b"ubk", opaque=4)),
    ("getk hit", binpkt(0x0c, b"ubk", opaque=4)),
    ("get miss", binpkt(0x00, b"nokey", opaque=5)),
    ("getq miss then noop", binpkt(0x09, b"nokey", opaque=6) + binpkt(0x0a, opaque=7)),
    ("two gets", binpkt(0x00, b"ubk", opaque=8) + binpkt(0x00, b"ubk", opaque=9)),
    ("large value", binpkt(0x01, b"ubig", struct.pack(">II", 0, 0), b"x" * 3000, opaque=10)
     + binpkt(0x00, b"ubig", opaque=11)),
    ("truncated packet", binpkt(0x00, b"ubk", opaque=12)[:20]),
    ("quit", binpkt(0x07, opaque=14)),
    ("quitq", binpkt(0x17, opaque=33)),
    ("text after binary", binpkt(0x0a, opaque=15) + b"version\r\n"),
    ("incr miss", binpkt(0x05, b"cnt", struct.pack(">QQI", 1, 5, 0), opaque=16)),
    ("setq then noop", binpkt(0x11, b"ubq", struct.pack(">II", 0, 0), b"v", opaque=20)
     + binpkt(0x0a, opaque=21)),
    ("two getq misses then noop", binpkt(0x09, b"n1", opaque=26) + binpkt(0x09, b"n2", opaque=27)
     + binpkt(0x0a, opaque=28)),
    ("getq hit then noop", binpkt(0x09, b"ubk", opaque=29) + binpkt(0x0a, opaque=30)),
    ("flushq then noop", binpkt(0x18, opaque=31) + binpkt(0x0a, opaque=32)),
]


def test_binary_over_udp_matches_memcached():
    """Each case in one datagram, to both servers: the same datagrams come
    back (CAS masked), framed the same way (one response per packet, an
    empty first response as a header-only datagram). memcached runs with one
    worker thread, so its replies are fenced (Udp.fenced) by a noop."""
    ref = memcached(threads=1)
    p = percore(threads=4)
    fence = frame(FENCE_ID, binpkt(0x0a, opaque=FENCE_ID))
    fence_reply = frame(FENCE_ID, struct.pack(">BBHBBHIIQ", 0x81, 0x0a, 0, 0, 0, 0, 0, FENCE_ID, 0))
    try:
        for name, body in BIN_UDP_CASES:
            got = []
            u = Udp(ref.udp)
            try:
                got.append(mask_bin_cas(u.fenced(frame(7, body), fence, fence_reply)))
            finally:
                u.close()
            u = Udp(p.udp)
            try:
                want = len(got[0])
                got.append(mask_bin_cas(u.raw(frame(7, body), quiet=0.3, first=5.0 if want else None,
                                              expect=want)))
            finally:
                u.close()
            assert got[1] == got[0], f"{name}: memcached {got[0]!r}\n percore {got[1]!r}"
    finally:
        ref.stop()
        p.stop()


def test_binary_over_udp_stat_and_version():
    """Replies whose content is server-specific: only their shape is checked."""
    p = percore(threads=2)
    try:
        u = Udp(p.udp)
        d = u.raw(frame(9, binpkt(0x0b, opaque=2)))
        assert len(d) == 1 and d[0][:8] == frame(9, b"")[:8]
        assert d[0][8] == 0x81 and d[0][8 + 1] == 0x0b and d[0][8 + 24:].startswith(b"1.6.18")
        d = u.raw(frame(10, binpkt(0x10, opaque=3)))
        cnt = struct.unpack(">H", d[0][4:6])[0]
        assert len(d) == cnt > 1
        body = b"".join(x[8:] for x in sorted(d, key=lambda x: x[2:4]))
        assert b"curr_items" in body
        # the last packet is the empty one that ends a stat reply
        assert body[-24] == 0x81 and body[-23] == 0x10 and body[-22:-20] == b"\0\0"
        u.close()
    finally:
        p.stop()


UDP_COUNTERS = ("cmd_set", "cmd_get", "get_hits", "get_misses", "cmd_touch", "touch_hits",
                "delete_hits", "delete_misses", "total_items", "curr_items")


def stats_in_one_datagram(port, binary):
    """Commands for keys of every worker and a stats in one datagram: the
    stats counts all of them (memcached runs a datagram's commands in order
    on one thread). Returns the counters the datagram's stats reported."""
    if binary:
        def pkt(op, key=b"", ext=b"", val=b""):
            return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(ext), 0, 0,
                               len(key) + len(ext) + len(val), 0x55, 0) + ext + key + val
        body = b"".join(pkt(0x11, b"u%d" % i, struct.pack(">II", 0, 0), b"v") for i in range(40))
        body += b"".join(pkt(0x0D, b"u%d" % i) for i in range(0, 60, 3))         # getkq
        body += b"".join(pkt(0x14, b"u%d" % i) for i in range(0, 50, 4))         # deleteq
        body += pkt(0x10)
    else:
        body = b"".join(b"set u%d 0 0 1 noreply\r\nv\r\n" % i for i in range(40))
        body += b"get " + b" ".join(b"u%d" % i for i in range(0, 60, 3)) + b"\r\n"
        body += b"touch u1 100\r\ntouch nope 100\r\n"
        body += b"".join(b"delete u%d noreply\r\n" % i for i in range(0, 50, 4))
        body += b"stats\r\n"
    c = Udp(port)
    try:
        grams = c.raw(frame(9, body), quiet=0.3, first=5.0)
    finally:
        c.close()
    data = b"".join(g[8:] for g in grams)
    st = {}
    if binary:
        i = 0
        while i + 24 <= len(data):
            op, kl, el, bl = struct.unpack(">xBHBxxxI", data[i:i + 12])
            if op == 0x10 and kl:
                b = data[i + 24:i + 24 + bl]
                st[b[el:el + kl].decode()] = b[el + kl:].decode()
            i += 24 + bl
    else:
        for line in data.decode(errors="replace").split("\r\n"):
            if line.startswith("STAT "):
                _, k, v = line.split(" ", 2)
                st[k] = v
    return {k: st.get(k) for k in UDP_COUNTERS}


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_stats_in_a_datagram_counts_the_commands_before_it(binary):
    m = memcached()
    try:
        want = stats_in_one_datagram(m.udp, binary)
    finally:
        m.stop()
    assert want["cmd_set"] == "40"
    p = percore(threads=4, steering="off")
    try:
        got = stats_in_one_datagram(p.udp, binary)
    finally:
        p.stop()
    assert got == want


def test_text_datagram_after_a_binary_one():
    """A worker reuses a datagram's context: one that carried binary packets
    must not make the next text datagram look binary (it went unanswered)."""
    noop = struct.pack(">BBHBBHIIQ", 0x80, 0x0A, 0, 0, 0, 0, 0, 7, 0)
    for srv in (memcached(), percore(threads=1)):
        c = Udp(srv.udp)
        try:
            assert c.raw(frame(1, noop), first=5.0)[0][8:9] == b"\x81"
            assert c.raw(frame(2, b"version\r\n"), first=5.0)[0][8:16] == b"VERSION "
        finally:
            c.close()
            srv.stop()


# --------------------------------------------------------------------------
# flush_all and stats reset over UDP answer once every worker applied them
# --------------------------------------------------------------------------

BARRIER_DATAGRAMS = [
    frame(60, b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n"),
    frame(61, b"flush_all noreply\r\nget a\r\n"),
    frame(62, b"stats reset\r\n"),
    frame(63, b"stats reset\r\nflush_all\r\nstats reset\r\n"),
    frame(64, b"flush_all 0\r\nflush_all noreply\r\nversion\r\n"),
    frame(65, binpkt(0x08, opaque=7) + binpkt(0x0a, opaque=8)),
    frame(66, binpkt(0x18, opaque=9) + binpkt(0x10, b"reset", opaque=10) + binpkt(0x0a, opaque=11)),
]


def barrier_replies(port, expect=None):
    c = Udp(port)
    out = [c.raw(d, quiet=0.15, first=5.0, expect=len(expect[i]) if expect else None)
           for i, d in enumerate(BARRIER_DATAGRAMS)]
    c.close()
    return [[x.replace(b"VERSION " + x.split(b"VERSION ")[1].split(b"\r\n")[0], b"VERSION v")
             if b"VERSION " in x else x for x in r] for r in out]


def test_flush_and_stats_reset_replies_match_memcached():
    m = memcached()
    try:
        want = barrier_replies(m.udp)
    finally:
        m.stop()
    for threads in (1, 4):
        p = percore(threads=threads)
        try:
            got = barrier_replies(p.udp, want)
        finally:
            p.stop()
        assert [mask_bin_cas(g) for g in got] == [mask_bin_cas(w) for w in want]


def test_udp_flush_then_tcp_reads_all_miss_and_reset_counts_all():
    """As soon as the UDP OK / RESET is in, every worker has applied it:
    keys owned by any worker miss, and commands on TCP connections after it
    are all counted."""
    p = percore(threads=4)
    c = Udp(p.udp)
    socks = [socket.create_connection((HOST, p.tcp), timeout=5) for _ in range(3)]

    def read_until(s, end):
        data = b""
        while not data.endswith(end):
            chunk = s.recv(65536)
            assert chunk
            data += chunk
        return data

    try:
        bad = []
        for i in range(100):
            keys = [b"uf%d_%d" % (i, k) for k in range(8)]
            socks[0].sendall(b"".join(b"set %s 0 0 1\r\nx\r\n" % k for k in keys))
            read_until(socks[0], b"STORED\r\n" * 8)
            assert c.raw(frame(i, b"flush_all\r\n"), first=5.0) == [frame(i, b"OK\r\n")]
            for s in socks:
                s.sendall(b"get " + b" ".join(keys) + b"\r\n")
            for s in socks:
                got = read_until(s, b"END\r\n")
                if got != b"END\r\n":
                    bad.append(("flush", i, got[:60]))
        for i in range(50):
            assert c.raw(frame(i, b"stats reset\r\n"), first=5.0) == [frame(i, b"RESET\r\n")]
            for k, s in enumerate(socks):
                s.sendall(b"set r%d_%d 0 0 1\r\nx\r\nget r%d_%d\r\n" % (i, k, i, k))
            for s in socks:
                read_until(s, b"END\r\n")
            st = p.stats()
            got = tuple(int(st[k]) for k in ("cmd_set", "cmd_get", "get_hits"))
            if got != (3, 3, 3):
                bad.append(("reset", i, got))
        assert bad == []
    finally:
        for s in socks:
            s.close()
        c.close()
        p.stop()
