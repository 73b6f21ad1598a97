"""Binary protocol: differential tests against memcached, plus real clients.

Scripted packet sessions go to a reference memcached (started here) and to
the server under test (percore by default, -t 4 so keys land on several
workers); the decoded response packets must be identical with CAS values
(only whether they are zero) and version strings masked. Then memccapable
-b, pylibmc with binary=True and Ruby's Dalli (binary protocol) run against
both. Servers are started on free ports and stopped by PID (conftest).
"""
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from conftest import reference_pair

pytestmark = pytest.mark.time_limit(90)

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(12)
GETK, GETKQ, APPEND, PREPEND, STAT = 0x0C, 0x0D, 0x0E, 0x0F, 0x10
SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ = range(0x11, 0x19)
APPENDQ, PREPENDQ, VERBOSITY, TOUCH, GAT, GATQ = range(0x19, 0x1F)
SASL_LIST, SASL_AUTH, GATK, GATKQ = 0x20, 0x21, 0x23, 0x24
END_OPAQUE = 0xE0D0E0D0


@pytest.fixture(scope="module")
def pair():
    yield from reference_pair()


def pkt(op, key=b"", ext=b"", val=b"", opaque=0, cas=0, magic=0x80, bodylen=None):
    if isinstance(key, str):
        key = key.encode()
    if isinstance(val, str):
        val = val.encode()
    bl = len(key) + len(ext) + len(val) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, len(key), len(ext), 0, 0, bl, opaque,
                       cas) + ext + key + val


def store_ext(flags=0, exptime=0):
    return struct.pack(">II", flags, exptime)


def arith_ext(delta=1, initial=0, exptime=0):
    return struct.pack(">QQI", delta, initial, exptime)


def parse(data):
    """Split a byte stream into response packets (dicts); trailing bytes too."""
    out, i = [], 0
    while i + 24 <= len(data):
        magic, op, kl, el, dt, st, bl, opq, cas = struct.unpack(">BBHBBHIIQ", data[i:i + 24])
        if i + 24 + bl > len(data):
            break
        body = data[i + 24:i + 24 + bl]
        out.append(dict(magic=magic, op=op, status=st, ext=body[:el], key=body[el:el + kl],
                        val=body[el + kl:], opaque=opq, cas=cas, datatype=dt))
        i += 24 + bl
    return out, data[i:]


def exchange(addr, data, until_eof=False, timeout=5.0):
    """Send packets followed by a NOOP marker; return the packets answered
    before the marker (or all of them up to EOF when until_eof)."""
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(data if until_eof else data + pkt(NOOP, opaque=END_OPAQUE))
        buf = b""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout; got {parse(buf)[0]}")
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if until_eof:
                    return parse(buf)[0]
                raise AssertionError(f"connection closed; got {parse(buf)[0]}")
            buf += chunk
            if not until_eof:
                pkts, _ = parse(buf)
                if pkts and pkts[-1]["op"] == NOOP and pkts[-1]["opaque"] == END_OPAQUE:
                    return pkts[:-1]
    finally:
        s.close()


def masked(pkts):
    res = []
    for p in pkts:
        q = dict(p)
        q["cas"] = "CAS" if p["cas"] else 0
        if p["op"] == VERSION and p["status"] == 0:
            q["val"] = b"<version>"
        res.append(q)
    return res


def diff(pair, data, until_eof=False):
    ref, sut = pair
    flush = pkt(FLUSH)
    want = masked(exchange(ref.addr, flush + data, until_eof))
    got = masked(exchange(sut.addr, flush + data, until_eof))
    assert got == want, f"\nmemcached: {want}\nunder test: {got}"
    return got


def test_get_set_variants(pair):
    got = diff(pair, b"".join([
        pkt(SET, "a", store_ext(5, 0), "hello", opaque=1),
        pkt(SETQ, "b", store_ext(0xFFFFFFFF, 0), "q", opaque=2),
        pkt(GET, "a", opaque=3), pkt(GETQ, "a", opaque=4), pkt(GETK, "a", opaque=5),
        pkt(GETKQ, "a", opaque=6), pkt(GET, "b", opaque=7),
        pkt(GET, "miss", opaque=8), pkt(GETQ, "miss", opaque=9),
        pkt(GETK, "miss", opaque=10), pkt(GETKQ, "miss", opaque=11),
        pkt(ADD, "a", store_ext(), "x", opaque=12), pkt(ADDQ, "a", store_ext(), "x", opaque=13),
        pkt(ADD, "c", store_ext(), "cc", opaque=14), pkt(ADDQ, "d", store_ext(), "dd", opaque=15),
        pkt(REPLACE, "nokey", store_ext(), "x", opaque=16),
        pkt(REPLACEQ, "nokey", store_ext(), "x", opaque=17),
        pkt(REPLACE, "c", store_ext(7), "C", opaque=18), pkt(REPLACEQ, "d", store_ext(), "D", opaque=19),
        pkt(GETK, "c", opaque=20), pkt(GETK, "d", opaque=21),
        pkt(SET, "e", store_ext(), b"", opaque=22), pkt(GET, "e", opaque=23),
    ]))
    hit = [p for p in got if p["opaque"] == 3][0]
    assert hit["val"] == b"hello" and hit["ext"] == struct.pack(">I", 5)


def test_cas(pair):
    for srv in pair:
        got = exchange(srv.addr, pkt(SET, "cas1", store_ext(), "v1") + pkt(GET, "cas1"))
        cas = got[1]["cas"]
        assert cas and got[0]["cas"] == cas
        got = exchange(srv.addr, b"".join([
            pkt(SET, "cas1", store_ext(), "v2", cas=cas + 1000),
            pkt(SET, "cas1", store_ext(), "v2", cas=cas),
            pkt(SET, "cas1", store_ext(), "v3", cas=cas),
            pkt(ADD, "cas1", store_ext(), "v4", cas=1),
            pkt(REPLACE, "nokey", store_ext(), "v", cas=1),
            pkt(APPEND, "cas1", val="x", cas=1),
            pkt(DELETE, "cas1", cas=1),
            pkt(GET, "cas1"),
        ]))
        st = [p["status"] for p in got]
        assert st == [2, 0, 2, 2, 1, 2, 2, 0], got
        assert got[1]["cas"] not in (0, cas)
        assert got[-1]["val"] == b"v2"
        new = got[1]["cas"]
        got = exchange(srv.addr, pkt(APPEND, "cas1", val="x", cas=new) + pkt(DELETE, "cas1", cas=1)
                       + pkt(GET, "cas1"))
        assert [p["status"] for p in got] == [0, 2, 0] and got[2]["val"] == b"v2x"
        cas = got[2]["cas"]
        got = exchange(srv.addr, pkt(DELETE, "cas1", cas=cas) + pkt(GET, "cas1"))
        assert [p["status"] for p in got] == [0, 1]


def test_delete_incr_decr(pair):
    diff(pair, b"".join([
        pkt(SET, "k", store_ext(), "v", opaque=1),
        pkt(DELETE, "k", opaque=2), pkt(DELETE, "k", opaque=3),
        pkt(SET, "k", store_ext(), "v"), pkt(DELETEQ, "k", opaque=4), pkt(DELETEQ, "k", opaque=5),
        pkt(INCR, "n", arith_ext(1, 10, 0), opaque=6),
        pkt(INCR, "n", arith_ext(5, 10, 0), opaque=7),
        pkt(DECR, "n", arith_ext(100, 10, 0), opaque=8),
        pkt(INCRQ, "n", arith_ext(3), opaque=9), pkt(DECRQ, "n", arith_ext(1), opaque=10),
        pkt(GET, "n", opaque=11),
        pkt(INCR, "n", arith_ext(0xFFFFFFFFFFFFFFFF), opaque=12),
        pkt(INCR, "none", arith_ext(1, 0, 0xFFFFFFFF), opaque=13),
        pkt(INCRQ, "none", arith_ext(1, 0, 0xFFFFFFFF), opaque=14),
        pkt(DECR, "none2", arith_ext(1, 42, 0xFFFFFFFF), opaque=15),
        pkt(DECRQ, "made", arith_ext(1, 42, 100), opaque=16), pkt(GET, "made", opaque=17),
        pkt(SET, "s", store_ext(), "abc"), pkt(INCR, "s", arith_ext(1), opaque=18),
        pkt(INCRQ, "s", arith_ext(1), opaque=19),
        pkt(SET, "big", store_ext(), "18446744073709551615"),
        pkt(INCR, "big", arith_ext(2), opaque=20),
    ]))


def test_append_prepend_touch_gat(pair):
    diff(pair, b"".join([
        pkt(SET, "ap", store_ext(9), "mid", opaque=1),
        pkt(APPEND, "ap", val="-end", opaque=2), pkt(PREPEND, "ap", val="start-", opaque=3),
        pkt(APPENDQ, "ap", val="!", opaque=4), pkt(PREPENDQ, "ap", val="<", opaque=5),
        pkt(APPEND, "nokey", val="x", opaque=6), pkt(APPENDQ, "nokey", val="x", opaque=7),
        pkt(PREPENDQ, "nokey", val="x", opaque=8),
        pkt(GET, "ap", opaque=9),
        pkt(TOUCH, "ap", struct.pack(">I", 100), opaque=10),
        pkt(TOUCH, "nokey", struct.pack(">I", 100), opaque=11),
        pkt(GAT, "ap", struct.pack(">I", 100), opaque=12),
        pkt(GATQ, "ap", struct.pack(">I", 100), opaque=13),
        pkt(GATK, "ap", struct.pack(">I", 100), opaque=14),
        pkt(GATKQ, "ap", struct.pack(">I", 100), opaque=15),
        pkt(GAT, "nokey", struct.pack(">I", 1), opaque=16),
        pkt(GATQ, "nokey", struct.pack(">I", 1), opaque=17),
        pkt(GATK, "nokey", struct.pack(">I", 1), opaque=18),
        pkt(GATKQ, "nokey", struct.pack(">I", 1), opaque=19),
        pkt(TOUCH, "ap", struct.pack(">I", 0xFFFFFFFF), opaque=20),
        pkt(GAT, "ap", struct.pack(">I", 0), opaque=21),
    ]))


def test_expiry(pair):
    diff(pair, pkt(SET, "gone", store_ext(0, 0xFFFFFFFF), "v") + pkt(GET, "gone", opaque=1)
         + pkt(SET, "gone2", store_ext(), "v") + pkt(TOUCH, "gone2", struct.pack(">I", 0xFFFFFFFF))
         + pkt(GET, "gone2", opaque=2))


def test_noop_version_flush_misc(pair):
    diff(pair, b"".join([
        pkt(NOOP, opaque=1), pkt(VERSION, opaque=2),
        pkt(SET, "f", store_ext(), "v"), pkt(FLUSHQ, opaque=3), pkt(GET, "f", opaque=4),
        pkt(SET, "f", store_ext(), "v"), pkt(FLUSH, opaque=5), pkt(GET, "f", opaque=6),
        pkt(FLUSH, ext=struct.pack(">I", 0), opaque=7),
        pkt(SASL_LIST, opaque=8),
        pkt(SASL_AUTH, "PLAIN", val=b"\0user\0pass", opaque=9),
        pkt(0x40, opaque=10), pkt(0xFE, opaque=11),
        pkt(NOOP, opaque=12),
    ]))


@pytest.mark.percore_only
def test_verbosity(pair):
    # memcached 1.6 no longer knows this opcode and mis-frames what follows;
    # percore answers it as memcached 1.4/1.5 did.
    ref, sut = pair
    got = exchange(sut.addr, pkt(VERBOSITY, ext=struct.pack(">I", 1), opaque=3))
    assert [(p["op"], p["status"], p["opaque"]) for p in got] == [(VERBOSITY, 0, 3)]


def test_large_values(pair):
    val = os.urandom(700 * 1024)
    diff(pair, pkt(SET, "lv", store_ext(1), val, opaque=1) + pkt(GET, "lv", opaque=2))
    too_big = b"x" * (1024 * 1024 + 100)
    diff(pair, pkt(SET, "tb", store_ext(), "small") + pkt(SET, "tb", store_ext(), too_big, opaque=3)
         + pkt(GET, "tb", opaque=4) + pkt(ADD, "tb2", store_ext(), too_big, opaque=5)
         + pkt(NOOP, opaque=6))


def test_binary_keys(pair):
    key = bytes(range(1, 200))
    diff(pair, pkt(SET, key, store_ext(), "bin", opaque=1) + pkt(GETK, key, opaque=2)
         + pkt(DELETE, key, opaque=3) + pkt(GETK, key, opaque=4))


def test_protocol_errors_close(pair):
    for data in [
        pkt(GET, "k", ext=b"1234"),                   # extras on get
        pkt(NOOP, "k"),                               # key on noop
        pkt(SET, "k", ext=b"", val="v"),              # set without extras
        pkt(INCR, "k", ext=b"123"),
        pkt(GET, "x" * 251),                          # key too long
        pkt(GET, "k", bodylen=0),                     # key longer than body
        pkt(QUIT, opaque=9), pkt(QUITQ, opaque=9),
        pkt(NOOP, magic=0x81),                        # bad magic: closed silently
    ]:
        diff(pair, data + pkt(NOOP, opaque=77), until_eof=True)


def test_stats(pair):
    for srv in pair:
        got = exchange(srv.addr, pkt(STAT, opaque=5))
        assert got[-1]["key"] == b"" and got[-1]["val"] == b"" and got[-1]["status"] == 0
        keys = {p["key"] for p in got}
        assert {b"pid", b"uptime", b"curr_items", b"cmd_get"} <= keys
        assert all(p["op"] == STAT and p["opaque"] == 5 for p in got)
        got = exchange(srv.addr, pkt(STAT, "settings", opaque=6))
        assert b"maxconns" in {p["key"] for p in got} and got[-1]["key"] == b""
        got = exchange(srv.addr, pkt(STAT, "reset", opaque=7))
        assert [(p["key"], p["val"], p["status"]) for p in got] == [(b"", b"", 0)]
        got = exchange(srv.addr, pkt(STAT, "bogus", opaque=8))
        assert [(p["status"], p["val"]) for p in got] == [(1, b"Not found")]


def test_pipelined_across_workers(pair):
    sets = b"".join(pkt(SETQ, f"pk{i}", store_ext(i), str(i) * 3, opaque=i) for i in range(200))
    gets = b"".join(pkt(GETKQ, f"pk{i}", opaque=1000 + i) for i in range(0, 300, 7))
    got = diff(pair, sets + gets)
    assert len(got) == 1 + len(range(0, 200, 7))   # flush + hits


def test_split_packets(pair):
    data = pkt(SET, "split", store_ext(3), "0123456789" * 100, opaque=1) + pkt(GET, "split", opaque=2)
    for srv in pair:
        s = socket.create_connection(srv.addr, timeout=5)
        try:
            for i in range(0, len(data), 7):
                s.sendall(data[i:i + 7])
                if i < 60:
                    time.sleep(0.005)
            buf = b""
            while len(parse(buf)[0]) < 2:
                chunk = s.recv(65536)
                assert chunk
                buf += chunk
            pkts = parse(buf)[0]
            assert pkts[1]["val"] == b"0123456789" * 100 and pkts[1]["opaque"] == 2
        finally:
            s.close()


# ---- real clients ----------------------------------------------------------

def test_memccapable_binary_and_ascii(pair):
    tool = shutil.which("memccapable")
    if not tool:
        pytest.skip("memccapable not installed (libmemcached-tools)")
    sut = pair[1]
    for mode in ("-b", "-a"):
        r = subprocess.run([tool, "-h", "127.0.0.1", "-p", str(sut.port), mode],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "All tests passed" in r.stdout, r.stdout + r.stderr


def pylibmc_ops(addr):
    pylibmc = pytest.importorskip("pylibmc")
    c = pylibmc.Client([f"{addr[0]}:{addr[1]}"], binary=True,
                       behaviors={"cas": True, "tcp_nodelay": True})
    r = []

    def attempt(op, *args, **kw):
        try:
            return op(*args, **kw)
        except pylibmc.Error as e:
            return type(e).__name__

    r.append(c.flush_all())
    r.append(c.set("a", "hello"))
    r.append(c.get("a"))
    r.append(attempt(c.add, "a", "x"))
    r.append(c.add("b", "bee"))
    r.append(c.replace("a", "y"))
    r.append(attempt(c.replace, "nokey", "y"))
    r.append(attempt(c.append, "a", "zz"))
    r.append(c.prepend("a", "<<"))
    r.append(c.get("a"))
    r.append(c.set("n", 5))
    r.append(c.incr("n", 3))
    r.append(c.decr("n", 10))
    r.append(attempt(c.incr, "none"))
    r.append(attempt(c.incr, "a"))
    v, cas = c.gets("a")
    r.append(v)
    r.append(c.cas("a", "new", cas))
    r.append(attempt(c.cas, "a", "newer", cas))
    r.append(c.get("a"))
    r.append(c.set_multi({"m1": "1", "m2": 2, "m3": b"three"}))
    r.append(sorted(c.get_multi(["m1", "m2", "m3", "nope"]).items()))
    r.append(attempt(c.add_multi, {"m1": "x", "m4": "4"}))
    r.append(attempt(c.incr_multi, ["m2"], delta=5))
    r.append(c.get("m2"))
    r.append(attempt(c.delete_multi, ["m1", "m4"]))
    r.append(sorted(c.get_multi(["m1", "m2", "m3", "m4"]).keys()))
    r.append(c.touch("m3", 100))
    r.append(attempt(c.touch, "nokey", 100))
    r.append(attempt(c.delete, "m3"))
    r.append(attempt(c.delete, "m3"))
    r.append(c.set("big", "x" * 300000))
    r.append(len(c.get("big")))
    r.append(c.set("obj", {"k": [1, 2, 3]}))
    r.append(c.get("obj"))
    stats = c.get_stats()
    r.append(sorted(k for k in stats[0][1] if k in ("pid", "curr_items", "cmd_get")))
    r.append(c.flush_all())
    r.append(c.get("b"))
    c.disconnect_all()
    return r


def test_pylibmc_binary(pair):
    ref, sut = pair
    want = pylibmc_ops(ref.addr)
    got = pylibmc_ops(sut.addr)
    assert got == want


DALLI_SCRIPT = r'''
require "dalli"
c = Dalli::Client.new("127.0.0.1:#{ARGV[0]}", socket_timeout: 2)
R = { raw: true }
out = []
out << c.flush.inspect
out << c.set("a", "hello", 0, R).class.name
out << c.get("a").inspect
out << c.add("a", "x", 0, R).inspect
out << c.add("b", "bee", 0, R).class.name
out << c.replace("a", "y", 0, R).class.name
out << c.replace("nokey", "y", 0, R).inspect
out << c.set("n", "5", 0, R).class.name
out << c.incr("n", 3).inspect
out << c.decr("n", 10).inspect
out << c.incr("ctr", 1, 0, 7).inspect
out << c.incr("ctr", 2).inspect
out << c.incr("none", 1).inspect
out << c.append("a", "zz").inspect
out << c.prepend("a", "<<").inspect
out << c.append("nokey", "zz").inspect
out << c.get("a").inspect
out << c.get_multi("a", "b", "missing").sort.inspect
out << c.touch("a", 100).inspect
out << c.touch("nokey", 100).inspect
out << c.gat("a", 100).inspect
out << c.gat("nokey", 100).inspect
out << c.cas("n") { |v| (v.to_i + 10).to_s }.class.name
out << c.get("n").inspect
out << c.cas("nokey") { |v| "x" }.inspect
v, cas = c.get_cas("n")
out << [v, cas.is_a?(Integer) && cas > 0].inspect
out << c.set_cas("n", "99", cas, 0, R).class.name
out << c.set_cas("n", "100", cas, 0, R).inspect
out << c.replace_cas("n", "101", 1, 0, R).inspect
out << c.delete_cas("n", 1).inspect
out << c.fetch("f", 0, R) { "computed" }.inspect
out << c.fetch("f", 0, R) { "again" }.inspect
out << c.set("obj", { "k" => [1, 2] }).class.name
out << c.get("obj").inspect
out << c.delete("a").inspect
out << c.delete("a").inspect
out << c.get("a").inspect
keys = (1..50).map { |i| "multi#{i}" }
keys.each { |k| c.set(k, k, 0, R) }
out << c.get_multi(*keys).length.to_s
big = "x" * 500_000
out << c.set("big", big, 0, R).class.name
out << (c.get("big") == big).inspect
out << c.version.values.first.split(".")[0, 2].join(".")
out << c.stats.values.first.key?("curr_items").inspect
out << c.stats(:settings).values.first.key?("maxconns").inspect
out << c.reset_stats.inspect
out << c.flush.inspect
out << c.get("b").inspect
puts out
'''


def dalli_ops(addr, script):
    r = subprocess.run(["ruby", str(script), str(addr[1])], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dalli_binary(pair, tmp_path):
    if not shutil.which("ruby"):
        pytest.skip("ruby not installed (Debian ruby-dalli needs the ruby package)")
    chk = subprocess.run(["ruby", "-e", 'require "dalli"'], capture_output=True)
    if chk.returncode != 0:
        pytest.skip("dalli not installed (Debian ruby-dalli)")
    script = tmp_path / "dalli_ops.rb"
    script.write_text(DALLI_SCRIPT)
    ref, sut = pair
    want = dalli_ops(ref.addr, script)
    got = dalli_ops(sut.addr, script)
    assert got == want
    assert "Integer" in got and '"hello"' in got
