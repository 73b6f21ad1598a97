"""Meta protocol (mg ms md ma mn me): differential tests against memcached.

Each scripted session is sent to a reference memcached (started here) and to
the server under test (percore by default, with -t 4 so keys land on several
workers); the replies must be byte-identical once nondeterministic fields
(CAS values, last-access times, TTLs that may straddle a second boundary)
are masked. Servers are started on free ports and stopped by PID (conftest).
"""
import re
import socket
import time

import pytest

from conftest import reference_pair

pytestmark = pytest.mark.time_limit(60)


@pytest.fixture(scope="module")
def pair():
    yield from reference_pair()


def session(addr, script, timeout=5.0):
    """Send `script` (text with \\n line ends), then "mn"; return every byte
    the server sent before the final MN."""
    data = script.replace("\n", "\r\n").encode("latin1") + b"mn\r\n"
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        want = sum(1 for ln in data.split(b"\r\n") if ln.split(b" ")[0] == b"mn")
        while not out.endswith(b"MN\r\n") or out.count(b"MN\r\n") < want:
            if time.monotonic() > deadline:
                raise AssertionError(f"timeout; got so far: {out!r}")
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out.decode("latin1")
    finally:
        s.close()


MASKS = [
    (re.compile(r"(?<=[ \n])c\d+"), "c#"),          # CAS returned by mg/ms/ma
    (re.compile(r"(?<= )l\d+"), "l#"),               # seconds since last access
    (re.compile(r"(?<= )t(?!-1)\d+"), "t#"),          # remaining TTL (second ticks)
    (re.compile(r"cas=\d+"), "cas=#"),
    (re.compile(r"la=\d+"), "la=#"),
    (re.compile(r"exp=-?\d+"), "exp=#"),
]


def mask(text):
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text


def diff(pair, script):
    ref, sut = pair
    want = mask(session(ref.addr, "flush_all\n" + script))
    got = mask(session(sut.addr, "flush_all\n" + script))
    assert got == want, f"\n--- memcached\n{want}\n--- server under test\n{got}"
    return got


def test_mg_flags(pair):
    out = diff(pair, """\
ms foo 3 T0 F5 c k Oab s
bar
mg foo v c f t s k Oxx h l
mg foo h l t q
mg foo s v
mg foo
mg foo u h
mg miss v
mg miss v q
mg miss v k Oz
mg miss v k Oz q
mg foo P L v
mg foo Pp Lpath v
ms ttl 2 T100
ab
mg ttl t v
mg ttl T200 t
mg ttl t
""")
    assert "VA 3 c# f5 t-1 s3 kfoo Oxx h0 l#\r\nbar\r\n" in out


def test_ms_modes_and_cas(pair):
    diff(pair, """\
ms k1 2 c
v1
ms k1 2 C1 q
v2
ms k1 2 ME c
zz
ms k1 2 MR c Oq
zz
ms k1 2 MS
s1
ms k1 2 MA
aa
ms k1 2 MP
pp
mg k1 v
ms nokey 2 MR
zz
ms nokey 2 MA
zz
ms nokey 2 MP
zz
ms nokey 2 C5
zz
ms nokey 2 C5 MA
zz
ms k1 2 C5 MA
zz
ms k1 2 C0 MA
zz
ms k1 2 C0
zz
ms k1 2 q
qq
ms k1 2 q MZ
qq
mg k1 v f
ms k1 2 F4294967295
ff
mg k1 f v
ms fresh 2 ME q
ee
mg fresh v
ms fresh 2 ME q
ee
""")


def test_ms_cas_roundtrip(pair):
    """A CAS read with mg c must be accepted by ms C (per server)."""
    for srv in pair:
        out = session(srv.addr, "ms ck 1\nx\nmg ck c\n")
        cas = re.search(r"HD c(\d+)", out).group(1)
        out = session(srv.addr, f"ms ck 1 C{cas} c\ny\nms ck 1 C{cas}\nz\nmg ck v\n")
        assert re.match(r"HD c\d+\r\nEX\r\nVA 1\r\ny\r\nMN\r\n$", out), out


def test_ms_errors_and_sync(pair):
    diff(pair, """\
ms
ms foo
ms foo bar
ms foo -1
ms foo 2 Zz
ab
ms foo 2 MEE
ab
ms foo 2 MZ
ab
ms foo 2 Fabc
ab
ms foo 2 F-1
ab
ms foo 2 T1 T2
ab
ms foo 2 Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
ab
ms foo 2
abc
ms foo 2 q
abXY
mg foo v
ms foo 2 a b c d e f g h i j k l m n o p q r
ab
mg foo v
""")


def test_ms_too_large(pair):
    ref, sut = pair
    big = "x" * (1024 * 1024 + 10)
    for srv in pair:
        out = session(srv.addr, f"ms big 2\nab\nms big {len(big)} T0\n{big}\nmg big v\n")
        assert out == ("HD\r\nSERVER_ERROR object too large for cache\r\n"
                       "EN\r\nMN\r\n"), out[:200]


def test_md(pair):
    diff(pair, """\
ms d1 2
ab
md miss
md miss q
md miss k Oo
md d1 k Oo C1
md d1 q C1
md d1 k Oo
md d1
ms d1 2
ab
md d1 q
mg d1 v
md d1 Zz
md d1 I I
ms d2 2 T0
xy
md d2 I T30 q
mg d2 v t
mg d2 v t
mg d2 v t
md d2 I
mg d2 v
md d2 C0
""")


def test_ma(pair):
    diff(pair, """\
ma cnt
ma cnt q
ma cnt N0 J5 v q
ma cnt v t c q
ma cnt v
ma cnt MD D100 v
ma cnt M- q
ma cnt M+ D18446744073709551615 v
ma cnt v
ma cnt D18446744073709551616 v
ma cnt Mx
ma cnt MII
ma cnt Dabc
ma cnt Jabc N0
ma cnt C1 v k Oo
ma cnt C0 v k Oo
ma cnt T30 t v
ma cnt2 N30 J10 MI D5 v t c
ms str 3
abc
ma str
ma str q
ma miss k Oo
ma miss q
""")


def test_mg_vivify_recache_stale(pair):
    diff(pair, """\
mg viv N30 v c t s
mg viv N30 v c t s
mg viv v
ms viv 3 T100
new
mg viv R200 c t
mg viv R200 c t
mg viv R50 t
ms st 2 T0
ab
mg st c
md st I
mg st v
mg st v
ms st 2 C1 I
cd
mg st v
ms st 2
ef
mg st v
""")


def test_stale_set_with_cas(pair):
    """ms I with a CAS lower than the item's stores it as stale."""
    for srv in pair:
        out = session(srv.addr, "ms sk 2 T0\nv1\nms sk 2 C1 I c\nv2\nmg sk v\nmg sk v\n")
        assert re.match(r"HD\r\nHD c\d+\r\nVA 2 X W\r\nv2\r\nVA 2 Z X\r\nv2\r\nMN\r\n$",
                        out), out


def test_base64_keys(pair):
    diff(pair, """\
ms k 2 b
zz
ms a2V5 2 b k c
zz
mg a2V5 b v k s f
me a2V5 b
md a2V5 b k q
md a2V5 b k
ma a2V5 b k N0 J3 v
ma a2V5 b k v
mg ####### b v
""")


def test_me_mn_and_unknown(pair):
    diff(pair, """\
ms dbg 5 F3 T0
hello
me dbg
mg dbg v
me dbg
me nope
me
mg
md
ma
mn extra tokens
mx foo
mgg foo
""")


def test_flag_limits(pair):
    diff(pair, """\
mg a b c d e f g h i j k l m n o p q r s t u
mg a c f h k l O s t v
mg a c f h k l O s t v u
mg a c f h k l O s t v u q
mg a v v
mg a X
mg a Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa v
md a b c d e f g h i j k l m n o p q r s t u
ma a b c d e f g h i j k l m n o p q r s t u
""")


def test_quiet_pipeline_and_keys_across_workers(pair):
    sets = "".join(f"ms key{i} {len(str(i))} q\n{i}\n" for i in range(40))
    gets = "".join(f"mg key{i} v k q\n" for i in range(0, 60, 3))
    out = diff(pair, sets + gets + "mn\n" + "".join(f"md key{i} q\n" for i in range(40)))
    assert out.count("VA ") == 14


def test_ttl_reported(pair):
    for srv in pair:
        out = session(srv.addr, "ms tt 1 T30\nx\nmg tt t\nma tt2 N40 t\n")
        m = re.match(r"HD\r\nHD t(\d+)\r\nHD t(-?\d+)\r\nMN\r\n$", out)
        assert m, out
        assert 28 <= int(m.group(1)) <= 30


def test_split_writes(pair):
    """A meta set whose line and data arrive in pieces."""
    for srv in pair:
        s = socket.create_connection(srv.addr, timeout=5)
        try:
            for piece in (b"ms sp", b"lit 10 T0", b" c\r\n0123", b"456789", b"\r", b"\nmg split v\r\n"):
                s.sendall(piece)
                time.sleep(0.02)
            out = b""
            while not out.endswith(b"0123456789\r\n"):
                chunk = s.recv(4096)
                assert chunk, out
                out += chunk
            assert re.match(rb"HD c\d+\r\nVA 10\r\n0123456789\r\n$", out), out
        finally:
            s.close()
