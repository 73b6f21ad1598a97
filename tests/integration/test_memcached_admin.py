"""memcached 1.6.18's administrative commands, side by side: the same bytes
go to /usr/bin/memcached and to the server under test, the replies must be
the same.

- `stats settings`: every key memcached emits, in its order, with equal
  values where the setting means the same in both (for the same flags), and
  the nominal tunables (`slabs automove`, `lru ...`, `lru_crawler ...`)
  changed by the same commands;
- `cache_memlimit`: replies, and what `stats` / `stats settings` show after;
- `slabs reassign`: percore has no slab pages; it answers as a memcached
  whose classes have no spare page.
"""
import os
import time

import pytest

from conftest import MEMCACHED, Server

# percore's own keys, after memcached's.
PERCORE_SETTINGS = ["io_backend", "max_conn_output", "zc_send_min", "max_get_keys"]
# Same key, but the value is per-process or per-build, not a setting.
VOLATILE = {"tcpport"}


def need_memcached():
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")


def recv_until(c, ends):
    while not any(c.buf.endswith(e) for e in ends):
        if not c._fill(2.0):
            break
    out, c.buf = c.buf, b""
    return out


def settings_of(srv):
    with srv.conn() as c:
        c.send(b"stats settings\r\n")
        raw = recv_until(c, [b"END\r\n"])
    pairs = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"STAT "):
            _, k, v = line.decode().split(" ", 2)
            pairs.append((k, v))
    return pairs


def side_by_side_settings(extra, threads=2, memory_mb=64, maxconns=1024, item_size="1m"):
    need_memcached()
    ref = Server(binary=MEMCACHED, threads=threads, memory_mb=memory_mb, maxconns=maxconns,
                 item_size=item_size, extra=extra)
    srv = Server(threads=threads, memory_mb=memory_mb, maxconns=maxconns, item_size=item_size,
                 extra=extra)
    try:
        return ref, srv, settings_of(ref), settings_of(srv)
    except BaseException:
        ref.stop()
        srv.stop()
        raise


def compare_settings(want, got):
    keys_want = [k for k, _ in want]
    keys_got = [k for k, _ in got if k not in PERCORE_SETTINGS or k in keys_want]
    assert keys_got == keys_want
    w, g = dict(want), dict(got)
    diff = {k: (w[k], g[k]) for k in keys_want if k not in VOLATILE and w[k] != g[k]}
    assert diff == {}


FLAG_SETS = [
    [],
    ["-R", "7", "-B", "ascii", "-C", "-M"],
    ["-D", "/", "-b", "100", "-A", "-F", "-X", "-o", "idle_timeout=30"],
    ["-f", "1.5", "-n", "64", "-o", "no_maxconns_fast"],
]


@pytest.mark.parametrize("flags", FLAG_SETS, ids=range(len(FLAG_SETS)))
def test_stats_settings_keys_order_and_values(flags):
    ref, srv, want, got = side_by_side_settings(flags, threads=3, memory_mb=48, maxconns=200,
                                                item_size="2m")
    try:
        compare_settings(want, got)
    finally:
        ref.stop_and_check()
        srv.stop_and_check()


TUNING = [
    b"slabs automove 2\r\n", b"slabs automove ratio 0.5\r\n", b"lru_crawler sleep 250\r\n",
    b"lru_crawler tocrawl 77\r\n", b"lru mode flat\r\n", b"lru temp_ttl 30\r\n",
    b"lru_crawler disable\r\n", b"verbosity 1\r\n", b"slabs automove 0 noreply\r\n",
    b"lru temp_ttl -1\r\n", b"slabs automove 9\r\n", b"lru_crawler sleep 2000000\r\n",
]


def test_stats_settings_follow_tuning_commands():
    ref, srv, _, _ = side_by_side_settings([])
    try:
        replies = []
        for s in (ref, srv):
            with s.conn() as c:
                one = []
                for cmd in TUNING:
                    c.send(cmd + b"mn\r\n")
                    one.append(recv_until(c, [b"MN\r\n"]))
                replies.append(one)
        assert replies[1] == replies[0]
        compare_settings(settings_of(ref), settings_of(srv))
    finally:
        ref.stop_and_check()
        srv.stop_and_check()


def exchange_lines(srv, lines):
    out = []
    with srv.conn() as c:
        for line in lines:
            c.send(line + b"mn\r\n")
            out.append(recv_until(c, [b"MN\r\n"]))
    return out


REASSIGN = [
    b"slabs reassign 1 2\r\n", b"slabs reassign\r\n", b"slabs reassign 1\r\n",
    b"slabs reassign -1 2\r\n", b"slabs reassign 1 1\r\n", b"slabs reassign -1 -1\r\n",
    b"slabs reassign 99 2\r\n", b"slabs reassign 2 99\r\n", b"slabs reassign x y\r\n",
    b"slabs reassign 1 x\r\n", b"slabs reassign 1 2 noreply\r\n", b"slabs reassign 0 1\r\n",
    b"slabs reassign 1 0\r\n", b"slabs reassign 1 2 3 4\r\n", b"slabs reassign 39 1\r\n",
    b"slabs reassign 40 1\r\n", b"slabs reassign 1 40\r\n", b"slabs reassign 29 1\r\n",
    b"slabs reassign 30 1\r\n", b"slabs reassign 4294967297 1\r\n", b"slabs reassign +3 1\r\n",
    b"slabs reassign 3abc 1\r\n", b"slabs foo 1 2\r\n",
]


@pytest.mark.parametrize("flags", [[], ["-f", "1.5", "-n", "64"], ["-f", "1.05", "-n", "10"]],
                         ids=range(3))
def test_slabs_reassign_like_memcached(flags):
    """Class ids are judged against memcached's class count for -f/-n."""
    need_memcached()
    ref = Server(binary=MEMCACHED, extra=flags)
    srv = Server(extra=flags)
    try:
        assert exchange_lines(srv, REASSIGN) == exchange_lines(ref, REASSIGN)
    finally:
        ref.stop_and_check()
        srv.stop_and_check()


MEMLIMIT = [
    b"cache_memlimit\r\n", b"cache_memlimit 7\r\n", b"cache_memlimit 0\r\n",
    b"cache_memlimit x\r\n", b"cache_memlimit -1\r\n", b"cache_memlimit 12abc\r\n",
    b"cache_memlimit 1000000001\r\n", b"cache_memlimit 4294967296\r\n",
    b"cache_memlimit 4294967304\r\n", b"cache_memlimit 99999999999999999999\r\n",
    b"cache_memlimit 10 20 30\r\n", b"cache_memlimit x noreply\r\n",
    b"cache_memlimit 7 noreply\r\n", b"cache_memlimit 10 noreply\r\n",
    b"cache_memlimit 16 20\r\n", b"cache_memlimit 8\r\n", b"cache_memlimit 48\r\n",
]


def limits(srv):
    st = dict(settings_of(srv))
    with srv.conn() as c:
        c.send(b"stats\r\n")
        raw = recv_until(c, [b"END\r\n"]).decode()
    general = dict(line.split(" ", 2)[1:] for line in raw.split("\r\n") if line.startswith("STAT "))
    return general["limit_maxbytes"], st["maxbytes"]


def test_cache_memlimit_replies_and_stats_like_memcached():
    need_memcached()
    ref = Server(binary=MEMCACHED, memory_mb=48)
    srv = Server(memory_mb=48, threads=3)
    try:
        got, want = [], []
        for line in MEMLIMIT:
            want.append(exchange_lines(ref, [line])[0])
            want.append(limits(ref))
            got.append(exchange_lines(srv, [line])[0])
            got.append(limits(srv))
        assert got == want
    finally:
        ref.stop_and_check()
        srv.stop_and_check()


@pytest.mark.percore_only
def test_cache_memlimit_above_startup_refused(server_factory):
    """The stores are sized for -m at start-up: more is refused the way
    memcached refuses a limit it cannot adjust to."""
    srv = server_factory(memory_mb=32)
    assert exchange_lines(srv, [b"cache_memlimit 33\r\n", b"cache_memlimit 32\r\n"]) == [
        b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\nMN\r\n", b"OK\r\nMN\r\n"]
    assert limits(srv) == ("33554432", "33554432")


def store_mem(srv):
    with srv.conn() as c:
        c.send(b"stats\r\n")
        raw = recv_until(c, [b"END\r\n"]).decode()
    st = dict(line.split(" ", 2)[1:] for line in raw.split("\r\n") if line.startswith("STAT "))
    return int(st["bytes"]), int(st["curr_items"])


@pytest.mark.percore_only
def test_cache_memlimit_shrink_evicts_in_idle_time_and_grows_back(server_factory):
    srv = server_factory(memory_mb=64, threads=2)
    val = b"v" * 2000
    with srv.conn() as c:
        for i in range(0, 30000, 500):
            c.send(b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (j, len(val), val)
                            for j in range(i, i + 500)))
        c.send(b"mn\r\n")
        recv_until(c, [b"MN\r\n"])
    full, n_full = store_mem(srv)
    assert full > 40 << 20
    assert exchange_lines(srv, [b"cache_memlimit 16\r\n"]) == [b"OK\r\nMN\r\n"]
    deadline = time.monotonic() + 10
    while store_mem(srv)[0] > 16 << 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    small, n_small = store_mem(srv)
    assert small <= 16 << 20 and n_small < n_full
    # writes stay under the new limit
    with srv.conn() as c:
        for i in range(30000, 45000, 500):
            c.send(b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (j, len(val), val)
                            for j in range(i, i + 500)))
        c.send(b"get k44999\r\n")
        assert recv_until(c, [b"END\r\n"]).startswith(b"VALUE k44999 0 2000")
    assert store_mem(srv)[0] <= 16 << 20
    assert exchange_lines(srv, [b"cache_memlimit 64\r\n"]) == [b"OK\r\nMN\r\n"]
    with srv.conn() as c:
        for i in range(45000, 75000, 500):
            c.send(b"".join(b"set k%d 0 0 %d noreply\r\n%s\r\n" % (j, len(val), val)
                            for j in range(i, i + 500)))
        c.send(b"mn\r\n")
        recv_until(c, [b"MN\r\n"])
    assert store_mem(srv)[0] > 40 << 20


# Meta `b` (base64 keys): the replies that depend on the request only, and
# an item vivified by `mg ... N` (memcached gives it no base64 mark, so its
# `k` is plain). Replies that depend on memcached's per-item mark (a later
# `mg` / `me` without `b`) differ: docs/protocols.md.
B_FLAG = [
    b"ms Zm9v 1 b k\r\nA\r\n", b"mg Zm9v b k v\r\n", b"mg foo v\r\n", b"md Zm9v b k q\r\n",
    b"mg Zm9v b k O12\r\n", b"ms bnVt 1 b\r\n5\r\n", b"ma bnVt b k v\r\n", b"ma num k v\r\n",
    b"mg bmV3 b k N30 v\r\n", b"mg new k v\r\n",
    b"ma Y250 b N0 J5 k v\r\n", b"ms Zm9v 1 b ME k\r\nJ\r\n", b"ms Zm9v 1 b ME k\r\nJ\r\n",
    b"md bnVt b k\r\n", b"mg AAEC b k\r\n", b"mg !!! b k\r\n", b"ms AAEC 1 b k\r\nF\r\n",
    b"mg AAEC b k s v\r\n",
]


def test_meta_base64_keys_like_memcached():
    need_memcached()
    ref = Server(binary=MEMCACHED)
    srv = Server(threads=3)
    try:
        assert exchange_lines(srv, B_FLAG) == exchange_lines(ref, B_FLAG)
    finally:
        ref.stop_and_check()
        srv.stop_and_check()
