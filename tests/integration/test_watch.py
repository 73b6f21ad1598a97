"""`watch`: log streams from every worker, in memcached 1.6.18's line
format (fetchers, mutations, evictions, connevents), checked against
memcached's own lines for the same commands."""
import os
import re
import time

import pytest

from conftest import MEMCACHED

# memcached prints the microseconds without leading zeros (ts=S.95449 is
# S.095449); percore pads them to six digits. Either is a watch line.
LINE = re.compile(r"^ts=\d+\.\d+ gid=\d+ type=(\w+)((?: \w+=\S*)*)$")


def start_watch(srv, what=b""):
    c = srv.conn()
    c.send(b"watch" + (b" " + what if what else b"") + b"\r\n")
    assert c.readline() == b"OK\r\n"
    time.sleep(0.1)
    return c


def lines_of(watcher, quiet=0.4):
    out = []
    for raw in watcher.read_available(quiet).decode().split("\n"):
        if not raw:
            continue
        m = LINE.match(raw)
        assert m, f"not a watch line: {raw!r}"
        fields = dict(kv.split("=", 1) for kv in m.group(2).split())
        out.append((m.group(1), fields, list(fields)))
    return out


CLIENT = (b"set wk 0 0 1\r\n1\r\nget wk\r\nget nope\r\nadd wk 0 0 1\r\n1\r\n"
          b"set wk2 0 100 2\r\nab\r\nappend wk2 0 0 1\r\nc\r\ncas wk2 0 0 1 1\r\nx\r\n"
          b"get a%b:c\r\n")


def session(srv):
    w = start_watch(srv, b"fetchers mutations connevents")
    c = srv.conn()
    c.send(CLIENT)
    c.read_until(b"EXISTS\r\nEND\r\n")
    c.close()
    time.sleep(0.3)
    got = lines_of(w)
    w.close()
    return got


def test_watch_lines_like_memcached(server_factory):
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")
    ref = session(server_factory(binary=MEMCACHED, threads=2))
    got = session(server_factory(threads=4))
    # The same field names, in the same order, for each type of line.
    shapes = lambda ls: {(t, tuple(names)) for t, _, names in ls}
    assert shapes(got) == shapes(ref)

    # The client's own events (memcached adds item_get lines for its own
    # internal lookups, so compare what percore logs against memcached's).
    def events(ls):
        return {(t, f.get("key"), f.get("status"), f.get("cmd")) for t, f, _ in ls
                if t in ("item_get", "item_store")}
    ours = events(got)
    assert ours <= events(ref), ours - events(ref)
    assert {("item_store", "wk", "stored", "set"), ("item_get", "wk", "found", None),
            ("item_get", "nope", "not_found", None), ("item_store", "wk", "not_stored", "add"),
            ("item_store", "wk2", "stored", "append"), ("item_store", "wk2", "exists", "cas"),
            ("item_get", "a%25b%3Ac", "not_found", None)} <= ours
    stores = [f for t, f, _ in got if t == "item_store" and f["key"] == "wk2"]
    assert stores[0]["ttl"] == "100" and stores[0]["size"] == "2"
    # Every item line names the client's descriptor; its connection's
    # conn_new comes before them and its conn_close after (other lines may
    # be the test harness's own connections).
    cfds = {f["cfd"] for t, f, _ in got if t.startswith("item_")}
    assert len(cfds) == 1
    cfd = cfds.pop()
    mine = [t for t, f, _ in got if f.get("cfd") == cfd]   # fds get reused: look around
    first = next(i for i, t in enumerate(mine) if t.startswith("item_"))
    last = max(i for i, t in enumerate(mine) if t.startswith("item_"))
    assert "conn_new" in mine[:first] and "conn_close" in mine[last:]


def test_watch_default_is_fetchers_and_streams_are_separate(server_factory):
    srv = server_factory(threads=4)
    fetch = start_watch(srv)
    muts = start_watch(srv, b"mutations")
    with srv.conn() as c:
        c.call(b"set s1 0 0 1\r\n1\r\nget s1\r\n", b"STORED\r\nVALUE s1 0 1\r\n1\r\nEND\r\n")
    time.sleep(0.2)
    assert [(t, f["key"]) for t, f, _ in lines_of(fetch)] == [("item_get", "s1")]
    assert [(t, f["key"]) for t, f, _ in lines_of(muts)] == [("item_store", "s1")]
    # A watcher reads nothing more from its client, like memcached.
    fetch.send(b"get s1\r\nversion\r\n")
    assert lines_of(fetch) == []


def test_watch_argument_errors_like_memcached(server_factory):
    servers = [server_factory(threads=2)]
    if os.path.exists(MEMCACHED):
        servers.append(server_factory(binary=MEMCACHED, threads=2))
    replies = []
    for srv in servers:
        r = []
        for arg in (b"bogus", b"fetchers extra", b"deletions"):
            with srv.conn() as c:
                c.send(b"watch " + arg + b"\r\n")
                r.append(c.readline())
        replies.append(r)
    assert replies[0] == [b"ERROR\r\n"] * 3
    assert all(r == replies[0] for r in replies)


def test_watch_evictions(server_factory):
    srv = server_factory(threads=1, memory_mb=8)
    w = start_watch(srv, b"evictions")
    val = b"x" * 2000
    with srv.conn() as c:
        for i in range(8000):
            c.send(b"set ev%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val))
        c.version()
    time.sleep(0.3)
    got = lines_of(w, quiet=0.5)
    assert got, "no eviction lines"
    for t, f, names in got[:50]:
        if t == "eviction":
            assert names == ["key", "fetch", "ttl", "la", "clsid"]
            assert f["fetch"] == "no" and f["ttl"] == "-1" and f["key"].startswith("ev")
        else:
            pytest.fail(f"unexpected line type {t} in an evictions stream")


@pytest.mark.percore_only
def test_slow_watcher_loses_lines_with_a_count(server_factory):
    """A watcher that does not read is held to --max-conn-output; what it
    missed is announced with skipped=N when lines flow again."""
    import socket
    srv = server_factory(threads=2, extra=["--max-conn-output=256k"])
    w = srv.conn(timeout=10)
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    w.send(b"watch\r\n")
    assert w.readline() == b"OK\r\n"
    time.sleep(0.1)
    with srv.conn() as c:
        for _ in range(20):
            c.send(b"".join(b"get miss%05d\r\n" % i for i in range(2500)))
            got = b""
            while got.count(b"END\r\n") < 2500:
                got += c.sock.recv(1 << 20)
    time.sleep(0.3)
    data = b""
    w.sock.settimeout(1.0)
    try:
        while True:
            chunk = w.sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    with srv.conn() as c:                # lines flow again: the count comes first
        c.call(b"get after\r\n", b"END\r\n")
    # the count and the new line come from the worker's next flush: on a
    # busy machine that can take longer than a fixed pause
    deadline = time.monotonic() + 10
    while b"key=after" not in data and time.monotonic() < deadline:
        data += w.read_available(0.3)
    lines = data.decode().split("\n")
    skipped = [int(l.split("=")[1]) for l in lines if l.startswith("skipped=")]
    gets = [l for l in lines if "type=item_get" in l]
    assert skipped, "no skipped= line"
    assert len(gets) + sum(skipped) == 50001
