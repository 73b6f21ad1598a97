"""Introspection as memcached's operators script it: `stats items` and
`stats slabs` with real per-class numbers (a class is a TTL bucket of the
segment log, the last one holds large items; docs/introspection.md), read by
memcached-tool and by the keys the Prometheus memcached exporter scrapes.
"""
import os
import subprocess
import time
from urllib.parse import unquote_to_bytes

import pytest

from conftest import MEMCACHED, SERVER_BIN, Server, mask_cas, parse_stats

MEMCACHED_TOOL = "/usr/share/memcached/scripts/memcached-tool"


def raw_stats(srv, sub):
    with srv.conn() as c:
        c.send(b"stats " + sub + b"\r\n")
        return c.read_until(b"END\r\n")


def classes(stats_map, prefix=""):
    """{class id: {field: int}} from `stats items` (prefix "items:") or slabs."""
    out = {}
    for k, v in stats_map.items():
        if prefix and not k.startswith(prefix):
            continue
        parts = k[len(prefix):].split(":")
        if len(parts) == 2 and parts[0].isdigit():
            out.setdefault(int(parts[0]), {})[parts[1]] = int(v)
    return out


def wait_for(fn, timeout=5.0):
    """Other workers publish their classes about once a second."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.2)


@pytest.mark.percore_only
def test_items_and_slabs_count_sets_hits_and_age(server_factory):
    srv = server_factory(threads=4)
    with srv.conn() as c:
        for i in range(300):
            ttl = 0 if i % 2 else 1000
            c.send(b"set k%d 0 %d 10\r\n0123456789\r\n" % (i, ttl))
            assert c.readline() == b"STORED\r\n"
        for i in range(120):
            c.send(b"get k%d\r\n" % i)
            c.read_until(b"END\r\n")
        c.call(b"delete k0\r\n", b"DELETED\r\n")
        c.call(b"touch k1 0\r\n", b"TOUCHED\r\n")
        c.call(b"set n 0 0 1\r\n5\r\nincr n 2\r\ndecr n 1\r\n", b"STORED\r\n7\r\n6\r\n")
    time.sleep(2.2)     # age grows, and every worker has published

    def totals():
        sl = classes(parse_stats(raw_stats(srv, b"slabs")))
        it = classes(parse_stats(raw_stats(srv, b"items")), "items:")
        t = {f: sum(c.get(f, 0) for c in sl.values())
             for f in ("cmd_set", "get_hits", "delete_hits", "touch_hits", "incr_hits",
                       "decr_hits", "total_pages")}
        t["number"] = sum(c["number"] for c in it.values())
        t["age"] = max(c["age"] for c in it.values())
        return t, sl, it

    t, sl, it = wait_for(lambda: (lambda r: r if r[0]["cmd_set"] >= 301 else None)(totals()))
    assert t["cmd_set"] == 301          # 300 + n (incr/decr count as incr/decr hits)
    assert t["get_hits"] == 120
    assert t["delete_hits"] == 1 and t["touch_hits"] == 1
    assert t["incr_hits"] == 1 and t["decr_hits"] == 1
    assert t["number"] == 300           # 300 - k0 + n
    assert t["age"] >= 2
    assert t["total_pages"] >= 2
    # two TTL classes at least: never-expiring and 1000 s
    assert len([c for c in it.values() if c["number"]]) >= 2
    st = parse_stats(raw_stats(srv, b"slabs"))
    assert int(st["active_slabs"]) == len(sl)
    assert int(st["total_malloced"]) > 0


@pytest.mark.percore_only
def test_evictions_show_in_items(server_factory):
    srv = server_factory(threads=1, memory_mb=8)
    val = b"x" * 2000
    with srv.conn() as c:
        for i in range(8000):           # 16 MB into 8 MB
            c.send(b"set e%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val))
        c.version()
    time.sleep(1.2)
    it = classes(parse_stats(raw_stats(srv, b"items")), "items:")
    assert sum(c["evicted"] for c in it.values()) > 0
    assert sum(c["evicted_unfetched"] for c in it.values()) > 0
    total = parse_stats(raw_stats(srv, b""))
    assert sum(c["evicted"] for c in it.values()) == int(total["evictions"])


@pytest.mark.percore_only
def test_stats_reset_clears_class_counters(server_factory):
    srv = server_factory(threads=1)
    with srv.conn() as c:
        c.call(b"set a 0 0 1\r\n1\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n")
        sl = classes(parse_stats(raw_stats(srv, b"slabs")))
        assert sum(x["get_hits"] for x in sl.values()) == 1
        c.call(b"stats reset\r\n", b"RESET\r\n")
        sl = classes(parse_stats(raw_stats(srv, b"slabs")))
        assert sum(x["get_hits"] for x in sl.values()) == 0
        assert sum(x["total_pages"] for x in sl.values()) >= 1   # items stay


def test_exporter_keys_match_memcached(server_factory):
    """Every per-class key and global key memcached's `stats items` /
    `stats slabs` print (what memcached_exporter reads), percore prints too."""
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")
    keysets = []
    for srv in (server_factory(binary=MEMCACHED, threads=2), server_factory(threads=2)):
        with srv.conn() as c:
            c.call(b"set a 0 0 1\r\n1\r\nget a\r\n", b"STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n")
        time.sleep(1.1)
        ks = set()
        for sub in (b"items", b"slabs"):
            for k in parse_stats(raw_stats(srv, sub)):
                p = k.split(":")
                ks.add(":".join(x if not x.isdigit() else "N" for x in p))
        keysets.append(ks)
    ref, got = keysets
    missing = ref - got
    assert not missing, f"keys memcached has and percore lacks: {sorted(missing)}"


@pytest.mark.percore_only
def test_memcached_tool_display_and_stats(server_factory):
    if not os.path.exists(MEMCACHED_TOOL):
        pytest.skip("memcached-tool not installed")
    srv = server_factory(threads=2)
    with srv.conn() as c:
        for i in range(100):
            c.send(b"set t%d 0 0 5\r\nhello\r\n" % i)
            c.readline()
    time.sleep(1.2)
    addr = f"127.0.0.1:{srv.port}"
    out = subprocess.run(["perl", MEMCACHED_TOOL, addr, "display"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    rows = [l.split() for l in out.stdout.splitlines()[1:] if l.strip()]
    assert rows and sum(int(r[4]) for r in rows) == 100      # Count column
    out = subprocess.run(["perl", MEMCACHED_TOOL, addr, "stats"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0 and "curr_items" in out.stdout


# --------------------------------------------------------------------------
# lru_crawler metadump, stats cachedump, memcached-tool dump, memcdump
# --------------------------------------------------------------------------

def metadump(srv, arg=b"all"):
    with srv.conn(timeout=20) as c:
        c.send(b"lru_crawler metadump " + arg + b"\r\n")
        data = c.read_until(b"END\r\n")
    lines = data[:-len(b"END\r\n")].split(b"\n")
    assert lines[-1] == b""
    out = {}
    for line in lines[:-1]:
        fields = dict(f.split(b"=", 1) for f in line.split(b" "))
        assert list(fields) == [b"key", b"exp", b"la", b"cas", b"fetch", b"cls", b"size"], line
        key = unquote_to_bytes(fields[b"key"])
        assert key not in out, f"{key!r} dumped twice"
        out[key] = fields
    return out


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("threads", [1, 4])
def test_metadump_10000_items_matches_what_was_set(server_factory, threads):
    srv = server_factory(threads=threads)
    now = int(time.time())
    want = {}
    with srv.conn() as c:
        batch = []
        for i in range(10000):
            key = b"md:%05d" % i
            # a few TTL ranges only: every TTL bucket keeps an open segment,
            # and a 16 MiB shard has few (docs/storage.md, Limitations)
            ttl = 0 if i % 3 else 1000 + 300 * (i % 4)
            want[key] = ttl
            batch.append(b"set %s %d %d 8 noreply\r\n%08d\r\n" % (key, i, ttl, i))
            if len(batch) == 500:
                c.send(b"".join(batch))
                batch = []
        c.send(b"".join(batch))
        c.version()
        for i in range(0, 10000, 7):
            c.send(b"get md:%05d\r\n" % i)
            c.read_until(b"END\r\n")
    with srv.conn() as c:
        c.send(b"stats\r\n")
        assert parse_stats(c.read_until(b"END\r\n"))["evictions"] == "0"
    got = metadump(srv)
    assert set(got) == set(want)
    for key, f in got.items():
        i = int(key[3:])
        if want[key] == 0:
            assert f[b"exp"] == b"-1"
            assert f[b"cls"] == b"62"
        else:
            assert abs(int(f[b"exp"]) - (now + want[key])) <= 3, (key, f)
            assert 1 <= int(f[b"cls"]) <= 61
        assert f[b"fetch"] == (b"yes" if i % 7 == 0 else b"no")
        assert abs(int(f[b"la"]) - now) <= 5
        assert int(f[b"size"]) >= len(key) + 8
        assert int(f[b"cas"]) > 0
    # one class only, and a class list
    only = metadump(srv, b"62")
    assert set(only) == {k for k, t in want.items() if t == 0}
    assert metadump(srv, b"1,2") == {k: v for k, v in got.items() if v[b"cls"] in (b"1", b"2")}


def test_metadump_keeps_reply_order_and_encodes_keys(server_factory):
    srv = server_factory(threads=4)
    with srv.conn() as c:
        c.call(b"set a%20b 0 0 1\r\n1\r\nset x~y.z 0 0 1\r\n2\r\n", b"STORED\r\nSTORED\r\n")
        c.send(b"get a%20b\r\nlru_crawler metadump all\r\nget x~y.z\r\n")
        assert c.read_until(b"END\r\n") == b"VALUE a%20b 0 1\r\n1\r\nEND\r\n"
        dump = c.read_until(b"END\r\n")
        assert b"key=a%2520b exp=-1 " in dump and b"key=x~y.z exp=-1 " in dump
        assert c.read_until(b"END\r\n") == b"VALUE x~y.z 0 1\r\n2\r\nEND\r\n"


def test_dump_command_errors_like_memcached(server_factory):
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")
    lines = [b"lru_crawler metadump", b"lru_crawler metadump x", b"lru_crawler metadump 1,x",
             b"lru_crawler metadump all extra", b"lru_crawler", b"stats cachedump",
             b"stats cachedump 1", b"stats cachedump x 0", b"stats cachedump 1 x",
             b"stats cachedump 200 0"]
    replies = []
    for srv in (server_factory(binary=MEMCACHED, threads=2), server_factory(threads=2)):
        r = []
        with srv.conn() as c:
            for line in lines:
                c.send(line + b"\r\nversion\r\n")
                r.append(c.read_until(b"VERSION ")[:-len(b"VERSION ")])
                c.readline()
        replies.append(r)
    for line, want, got in zip(lines, *replies):
        assert got == want, line


def test_cachedump_format_and_limit(server_factory):
    srv = server_factory(threads=4)
    now = int(time.time())
    with srv.conn() as c:
        for i in range(30):
            c.send(b"set cd%d 0 %d 5\r\nhello\r\n" % (i, 0 if i % 2 else 100))
            c.readline()
        c.send(b"stats cachedump 62 0\r\n")
        never = c.read_until(b"END\r\n").split(b"\r\n")[:-2]
        assert sorted(never) == sorted(b"ITEM cd%d [5 b; 0 s]" % i for i in range(1, 30, 2))
        c.send(b"stats cachedump 62 4\r\n")
        assert len(c.read_until(b"END\r\n").split(b"\r\n")) - 2 == 4
        ttl_cls = metadump(srv)[b"cd0"][b"cls"]
        c.send(b"stats cachedump " + ttl_cls + b" 0\r\n")
        items = c.read_until(b"END\r\n").split(b"\r\n")[:-2]
        assert len(items) == 15
        for it in items:
            t = int(it.split(b"; ")[1].split(b" ")[0])
            assert abs(t - (now + 100)) <= 3


@pytest.mark.time_limit(60)
def test_memcached_tool_dump_and_memcdump(server_factory):
    if not os.path.exists(MEMCACHED_TOOL):
        pytest.skip("memcached-tool not installed")
    srv = server_factory(threads=4)
    with srv.conn() as c:
        for i in range(500):
            c.send(b"set tool:%d %d 0 6\r\nval%03d\r\n" % (i, i, i))
            c.readline()
    addr = f"127.0.0.1:{srv.port}"
    out = subprocess.run(["perl", MEMCACHED_TOOL, addr, "dump"], capture_output=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    adds = [l for l in out.stdout.split(b"\r\n") if l.startswith(b"add ")]
    assert len(adds) == 500
    assert b"add tool:7 7 0 6" in adds
    if os.path.exists("/usr/bin/memcdump"):
        out = subprocess.run(["memcdump", f"--servers={addr}"], capture_output=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.split()) == sorted(b"tool:%d" % i for i in range(500))


# --------------------------------------------------------------------------
# stats conns
# --------------------------------------------------------------------------

def conn_blocks(srv, others):
    with srv.conn() as c:
        c.send(b"stats conns\r\n")
        raw = c.read_until(b"END\r\n")
        me = c.sock.getsockname()
    blocks = {}
    order = []
    for line in raw.split(b"\r\n")[:-2]:
        assert line.startswith(b"STAT "), line
        fd, rest = line[5:].split(b":", 1)
        name, val = rest.split(b" ", 1)
        if int(fd) not in blocks:
            order.append(int(fd))
        blocks.setdefault(int(fd), {})[name.decode()] = val.decode()
    assert order == sorted(order), "blocks not in descriptor order"
    return blocks, me


def test_stats_conns_like_memcached(server_factory):
    """One block per socket in memcached's format, from every worker: the
    same keys, a block per client connection with its peer address, the
    asking one in conn_parse_cmd."""
    servers = [server_factory(threads=4)]
    if os.path.exists(MEMCACHED):
        servers.append(server_factory(binary=MEMCACHED, threads=2))
    for srv in servers:
        others = [srv.conn() for _ in range(5)]
        for o in others:
            o.version()
        blocks, me = conn_blocks(srv, others)
        clients = {b["addr"]: b for b in blocks.values() if "listen_addr" in b}
        peers = {"tcp:%s:%d" % o.sock.getsockname()[:2] for o in others}
        assert peers <= set(clients), (peers, clients)
        mine = clients["tcp:%s:%d" % me[:2]]
        assert mine["state"] == "conn_parse_cmd"
        for addr in peers:
            b = clients[addr]
            assert set(b) == {"addr", "listen_addr", "state", "secs_since_last_cmd"}
            assert b["listen_addr"] == "tcp:127.0.0.1:%d" % srv.port
            assert int(b["secs_since_last_cmd"]) <= 2
        listeners = [b for b in blocks.values() if b.get("state") == "conn_listening"]
        assert listeners and all(b["addr"] == "tcp:127.0.0.1:%d" % srv.port for b in listeners)
        for o in others:
            o.close()


# --------------------------------------------------------------------------
# stats detail on|off|dump
# --------------------------------------------------------------------------

def binstat(c, key, opaque=1):
    import struct
    c.send(struct.pack(">BBHBBHIIQ", 0x80, 0x10, len(key), 0, 0, 0, len(key), opaque, 0) + key)
    out = []
    while True:
        hdr = c.read_exact(24)
        klen, blen = struct.unpack(">H", hdr[2:4])[0], struct.unpack(">I", hdr[8:12])[0]
        body = c.read_exact(blen)
        status = struct.unpack(">H", hdr[6:8])[0]
        out.append((status, body[:klen], body[klen:]))
        if status != 0 or klen == 0:
            return out


DETAIL_SCRIPT = [
    b"stats detail", b"stats detail x", b"stats detail dump", b"stats detail on",
    b"set a:1 0 0 1\r\n1", b"get a:1", b"get a:2", b"get b:1 nokey", b"gets a:1",
    b"delete a:1", b"delete a:9", b"incr a:3 1", b"touch a:4 1", b"mg a:5 v",
    b"add c:1 0 0 1\r\n1", b"append c:1 0 0 1\r\n2", b"gat 10 c:1",
    b"stats detail on extra", b"stats detail off", b"get a:1",
]


def detail_session(srv):
    """Replies to DETAIL_SCRIPT, then the dump (as a set of lines: memcached
    prints prefixes in its hash order), then the binary stat replies."""
    replies = []
    with srv.conn() as c:
        for cmd in DETAIL_SCRIPT:
            c.send(cmd + b"\r\nmn\r\n")
            replies.append(mask_cas(c.read_until(b"MN\r\n")))
        c.send(b"stats detail dump\r\n")
        dump = c.read_until(b"END\r\n")
        lines = set(dump.split(b"\r\n")[:-2])
    with srv.conn() as c:      # the protocol is chosen per connection
        binary = [binstat(c, k) for k in (b"detail on", b"detail off", b"detail", b"detail x")]
        d = binstat(c, b"detail dump")
        assert d[0][1] == b"detailed" and d[-1] == (0, b"", b"")
        binlines = set(d[0][2].split(b"\r\n")[:-2])
    with srv.conn() as c:
        c.send(b"stats reset\r\nstats detail dump\r\n")
        after_reset = c.read_until(b"RESET\r\n") + c.read_until(b"END\r\n")
    return replies, lines, binary, binlines, after_reset


def test_stats_detail_like_memcached(server_factory):
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")
    ref = detail_session(server_factory(binary=MEMCACHED, threads=2))
    got = detail_session(server_factory(threads=4))
    assert got[0] == ref[0]
    assert got[1] == ref[1] and got[1] == {b"PREFIX a get 3 hit 2 set 1 del 2",
                                           b"PREFIX b get 1 hit 0 set 0 del 0",
                                           b"PREFIX c get 1 hit 1 set 2 del 0"}
    assert got[2] == ref[2]
    assert got[3] == ref[3] == got[1]
    assert got[4] == ref[4] == b"RESET\r\nEND\r\n"


def test_stats_detail_binary_counts(server_factory):
    """Binary gets, sets and deletes count as memcached counts them."""
    import struct
    srv = server_factory(threads=4)

    def pkt(op, key, extras=b"", val=b""):
        return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                           len(key) + len(extras) + len(val), 0, 0) + extras + key + val
    with srv.conn() as c:
        c.call(b"stats detail on\r\n", b"OK\r\n")
    with srv.conn() as c:
        c.send(pkt(0x01, b"p:1", struct.pack(">II", 0, 0), b"v") + pkt(0x00, b"p:1")
               + pkt(0x00, b"p:2") + pkt(0x04, b"p:1") + pkt(0x0a, b""))
        data = b""
        while not data.endswith(b"\x81\x0a" + b"\0" * 22):
            data += c.read_exact(1)
    with srv.conn() as c:
        c.send(b"stats detail dump\r\n")
        assert c.read_until(b"END\r\n") == b"PREFIX p get 2 hit 1 set 1 del 1\r\nEND\r\n"
        c.call(b"stats settings\r\n", b"")
        assert parse_stats(c.read_until(b"END\r\n"))["detail_enabled"] == "yes"


@pytest.mark.percore_only
@pytest.mark.time_limit(120)
def test_metadump_to_a_slow_reader_stays_bounded(server_factory):
    """A metadump comes home in parts; the next part is produced only when
    the connection's output is under --max-conn-output, so a client that
    does not read holds the server to about that, not the whole dump."""
    if "build-asan" in SERVER_BIN or "build-tsan" in SERVER_BIN:
        pytest.skip("resident memory is not a measure under a sanitizer's allocator")
    srv = server_factory(threads=2, memory_mb=128, extra=["--max-conn-output=1m"])
    n = 60000
    with srv.conn() as c:
        batch = []
        for i in range(n):
            batch.append(b"set %s:%06d 0 0 1 noreply\r\nx\r\n" % (b"k" * 200, i))
            if len(batch) == 1000:
                c.send(b"".join(batch))
                batch = []
        c.version()
    time.sleep(1.1)
    rss0 = srv.rss_kb()
    c = srv.conn(timeout=30)
    c.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
    c.send(b"lru_crawler metadump all\r\n")
    time.sleep(1.5)                     # not reading: the dump (~15 MB) must wait
    grown = srv.rss_kb() - rss0
    assert grown < 8 * 1024, f"server grew {grown} KiB while the client did not read"
    with srv.conn() as other:           # and the server keeps serving meanwhile
        other.call(b"get nothing\r\n", b"END\r\n")
    data = c.read_until(b"END\r\n")
    assert data.count(b"\n") - 1 == n
    c.close()
