"""Every text command, through pymemcache and raw sockets, with exact replies
as memcached 1.6.18 writes them."""
import re
import socket
import time

import pytest
from pymemcache.exceptions import MemcacheClientError, MemcacheServerError

from conftest import (IS_MEMCACHED, Conn, get_reply, parse_stats, stats,
                      mask_cas)


@pytest.fixture
def c(server):
    conn = server.conn()
    yield conn
    conn.close()


@pytest.fixture
def mc(server):
    client = server.client()
    yield client
    client.close()


def gets_cas(conn, key):
    conn.send(b"gets " + key + b"\r\n")
    line = conn.readline()
    m = re.match(rb"VALUE (\S+) (\d+) (\d+) (\d+)\r\n$", line)
    assert m, line
    conn.read_exact(int(m.group(3)) + 2)
    assert conn.readline() == b"END\r\n"
    return int(m.group(4))


# ---------------------------------------------------------------------------
# pymemcache: the everyday path
# ---------------------------------------------------------------------------

class TestPymemcache:
    def test_set_get_delete(self, mc):
        assert mc.set(b"pm:a", b"hello") is True
        assert mc.get(b"pm:a") == b"hello"
        assert mc.delete(b"pm:a") is True
        assert mc.get(b"pm:a") is None
        assert mc.delete(b"pm:a", noreply=False) is False

    def test_add_replace(self, mc):
        mc.delete(b"pm:ar")
        assert mc.replace(b"pm:ar", b"x", noreply=False) is False
        assert mc.add(b"pm:ar", b"1", noreply=False) is True
        assert mc.add(b"pm:ar", b"2", noreply=False) is False
        assert mc.replace(b"pm:ar", b"3", noreply=False) is True
        assert mc.get(b"pm:ar") == b"3"

    def test_append_prepend(self, mc):
        mc.set(b"pm:ap", b"mid")
        assert mc.append(b"pm:ap", b"-end", noreply=False) is True
        assert mc.prepend(b"pm:ap", b"start-", noreply=False) is True
        assert mc.get(b"pm:ap") == b"start-mid-end"
        assert mc.append(b"pm:ap-missing", b"x", noreply=False) is False
        assert mc.prepend(b"pm:ap-missing", b"x", noreply=False) is False

    def test_gets_cas(self, mc):
        mc.set(b"pm:cas", b"v1")
        val, cas = mc.gets(b"pm:cas")
        assert val == b"v1" and int(cas) > 0
        assert mc.cas(b"pm:cas", b"v2", cas, noreply=False) is True
        assert mc.cas(b"pm:cas", b"v3", cas, noreply=False) is False
        assert mc.get(b"pm:cas") == b"v2"
        assert mc.cas(b"pm:cas-missing", b"v", cas, noreply=False) is None

    def test_incr_decr(self, mc):
        mc.set(b"pm:n", b"10")
        assert mc.incr(b"pm:n", 5) == 15
        assert mc.decr(b"pm:n", 20) == 0
        assert mc.incr(b"pm:missing-n", 1) is None

    def test_touch_gat(self, mc):
        mc.set(b"pm:t", b"v")
        assert mc.touch(b"pm:t", 100, noreply=False) is True
        assert mc.touch(b"pm:t-missing", 100, noreply=False) is False
        assert mc.get(b"pm:t") == b"v"

    def test_get_many(self, mc):
        data = {b"pm:m%d" % i: b"v%d" % i for i in range(20)}
        mc.set_many(data)
        got = mc.get_many(list(data) + [b"pm:nope"])
        assert got == data

    def test_version_stats(self, mc):
        assert mc.version()
        st = mc.stats()
        assert b"curr_items" in st or "curr_items" in st


# ---------------------------------------------------------------------------
# Raw: storage commands
# ---------------------------------------------------------------------------

class TestStorage:
    def test_set_get(self, c):
        c.call(b"set r:a 5 0 3\r\nabc\r\n", b"STORED\r\n")
        c.call(b"get r:a\r\n", b"VALUE r:a 5 3\r\nabc\r\nEND\r\n")

    def test_get_missing(self, c):
        c.call(b"get r:missing\r\n", b"END\r\n")

    def test_empty_value(self, c):
        c.call(b"set r:empty 0 0 0\r\n\r\n", b"STORED\r\n")
        c.call(b"get r:empty\r\n", b"VALUE r:empty 0 0\r\n\r\nEND\r\n")

    def test_add(self, c):
        c.call(b"delete r:add\r\n", b"NOT_FOUND\r\n")
        c.call(b"add r:add 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"add r:add 0 0 1\r\nb\r\n", b"NOT_STORED\r\n")
        c.call(b"get r:add\r\n", b"VALUE r:add 0 1\r\na\r\nEND\r\n")

    def test_replace(self, c):
        c.call(b"replace r:rep 0 0 1\r\na\r\n", b"NOT_STORED\r\n")
        c.call(b"get r:rep\r\n", b"END\r\n")
        c.call(b"set r:rep 1 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"replace r:rep 2 0 1\r\nb\r\n", b"STORED\r\n")
        c.call(b"get r:rep\r\n", b"VALUE r:rep 2 1\r\nb\r\nEND\r\n")

    def test_append_prepend_keep_flags(self, c):
        c.call(b"set r:ap 5 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"append r:ap 9 0 2\r\nbc\r\n", b"STORED\r\n")
        c.call(b"prepend r:ap 7 0 2\r\nxy\r\n", b"STORED\r\n")
        # append/prepend ignore their own flags and exptime
        c.call(b"get r:ap\r\n", b"VALUE r:ap 5 5\r\nxyabc\r\nEND\r\n")
        c.call(b"append r:ap-none 0 0 1\r\na\r\n", b"NOT_STORED\r\n")
        c.call(b"prepend r:ap-none 0 0 1\r\na\r\n", b"NOT_STORED\r\n")
        c.call(b"get r:ap-none\r\n", b"END\r\n")

    def test_delete(self, c):
        c.call(b"set r:del 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"delete r:del\r\n", b"DELETED\r\n")
        c.call(b"delete r:del\r\n", b"NOT_FOUND\r\n")
        c.call(b"get r:del\r\n", b"END\r\n")

    def test_delete_legacy_zero_time(self, c):
        # memcached still accepts a trailing "0" (old delete hold time)
        c.call(b"set r:del0 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"delete r:del0 0\r\n", b"DELETED\r\n")
        c.call(b"delete r:del0 1\r\n",
               b"CLIENT_ERROR bad command line format.  "
               b"Usage: delete <key> [noreply]\r\n")
        c.assert_in_sync()

    @pytest.mark.parametrize("flags", [0, 1, 65535, 2147483648, 4294967295])
    def test_flags_32bit(self, c, flags):
        key = b"r:flags%d" % flags
        c.call(b"set %s %d 0 2\r\nhi\r\n" % (key, flags), b"STORED\r\n")
        c.call(b"get %s\r\n" % key, b"VALUE %s %d 2\r\nhi\r\nEND\r\n" % (key, flags))

    def test_value_arbitrary_bytes(self, c):
        value = bytes(range(256)) + b"\r\nEND\r\n\r\nVALUE x 0 1\r\n\x00\r\n"
        c.call(b"set r:bin 0 0 %d\r\n%s\r\n" % (len(value), value), b"STORED\r\n")
        c.call(b"get r:bin\r\n", get_reply([(b"r:bin", 0, value)]))
        c.call(b"set r:crlf 0 0 2\r\n\r\n\r\n", b"STORED\r\n")
        c.call(b"get r:crlf\r\n", b"VALUE r:crlf 0 2\r\n\r\n\r\nEND\r\n")

    def test_value_arbitrary_bytes_pymemcache(self, mc):
        value = bytes(range(256)) * 4 + b"\r\n"
        mc.set(b"pm:bin", value)
        assert mc.get(b"pm:bin") == value

    def test_overwrite_changes_length(self, c):
        c.call(b"set r:ow 0 0 10\r\n0123456789\r\n", b"STORED\r\n")
        c.call(b"set r:ow 3 0 2\r\nab\r\n", b"STORED\r\n")
        c.call(b"get r:ow\r\n", b"VALUE r:ow 3 2\r\nab\r\nEND\r\n")

    def test_key_250_ok_251_rejected(self, c):
        k250 = b"k" * 250
        k251 = b"k" * 251
        c.call(b"set %s 0 0 1\r\na\r\n" % k250, b"STORED\r\n")
        c.call(b"get %s\r\n" % k250, b"VALUE %s 0 1\r\na\r\nEND\r\n" % k250)
        c.call(b"gets %s\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"get %s\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"get a %s b\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"delete %s\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"incr %s 1\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"decr %s 1\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"touch %s 1\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.call(b"gat 0 %s\r\n" % k251, b"CLIENT_ERROR bad command line format\r\n")
        c.assert_in_sync()
        # a storage command with a too-long key is rejected *without*
        # swallowing its data block: the data line is then parsed as a
        # command (-> ERROR)
        for cmd in (b"set", b"add", b"replace", b"append", b"prepend"):
            c.call(b"%s %s 0 0 1\r\na\r\n" % (cmd, k251),
                   b"CLIENT_ERROR bad command line format\r\nERROR\r\n")
        c.call(b"cas %s 0 0 1 1\r\na\r\n" % k251,
               b"CLIENT_ERROR bad command line format\r\nERROR\r\n")
        c.assert_in_sync()
        c.call(b"delete %s\r\n" % k250, b"DELETED\r\n")

    def test_key_250_pymemcache(self, mc):
        key = b"p" * 250
        mc.set(key, b"v")
        assert mc.get(key) == b"v"


# ---------------------------------------------------------------------------
# noreply on every command that takes it
# ---------------------------------------------------------------------------

class TestNoreply:
    def test_noreply_every_command(self, c):
        c.send(b"set nr:a 0 0 1 noreply\r\n1\r\n"
               b"add nr:b 0 0 1 noreply\r\n2\r\n"
               b"add nr:b 0 0 1 noreply\r\nX\r\n"          # NOT_STORED, silent
               b"replace nr:a 0 0 1 noreply\r\n3\r\n"
               b"append nr:a 0 0 1 noreply\r\n4\r\n"
               b"prepend nr:a 0 0 1 noreply\r\n5\r\n"
               b"set nr:n 0 0 2 noreply\r\n10\r\n"
               b"incr nr:n 5 noreply\r\n"
               b"decr nr:n 3 noreply\r\n"
               b"incr nr:missing 1 noreply\r\n"
               b"touch nr:b 1000 noreply\r\n"
               b"delete nr:b noreply\r\n"
               b"delete nr:b noreply\r\n"                  # NOT_FOUND, silent
               b"verbosity 0 noreply\r\n"
               b"get nr:a nr:b nr:n\r\n")
        got = c.read_until(b"END\r\n")
        assert got == (b"VALUE nr:a 0 3\r\n534\r\n"
                       b"VALUE nr:n 0 2\r\n12\r\nEND\r\n")
        cas = gets_cas(c, b"nr:a")
        c.send(b"cas nr:a 0 0 1 %d noreply\r\nz\r\n"
               b"cas nr:a 0 0 1 %d noreply\r\ny\r\n"       # EXISTS, silent
               b"get nr:a\r\n" % (cas, cas))
        assert c.read_until(b"END\r\n") == b"VALUE nr:a 0 1\r\nz\r\nEND\r\n"
        c.assert_in_sync()

    def test_noreply_pymemcache(self, mc):
        mc.set(b"nr:pm", b"v", noreply=True)
        mc.add(b"nr:pm2", b"w", noreply=True)
        mc.delete(b"nr:pm2", noreply=True)
        assert mc.get(b"nr:pm") == b"v"
        assert mc.get(b"nr:pm2") is None

    def test_noreply_silences_errors_too(self, c):
        # memcached: noreply silences CLIENT_ERROR replies as well (the
        # request is still parsed, so the connection stays in sync)
        c.send(b"incr nr:x abc noreply\r\n"
               b"touch nr:x abc noreply\r\n"
               b"verbosity abc noreply\r\n"
               b"flush_all abc noreply\r\n"
               b"set nr:x a 0 1 noreply\r\n"        # bad line; no data read
               b"set nr:x 0 0 -1 noreply\r\n")
        c.assert_in_sync()
        # a bad data chunk under noreply is silent, then parsing resumes
        # right after the <bytes>+2 chunk: the "\r\n" left over is an
        # empty command line -> ERROR
        c.call(b"set nr:y 0 0 3 noreply\r\nabcde\r\n", b"ERROR\r\n")
        c.call(b"get nr:y\r\n", b"END\r\n")
        c.assert_in_sync()


# ---------------------------------------------------------------------------
# exptime
# ---------------------------------------------------------------------------

class TestExptime:
    def test_zero_never_expires(self, c):
        c.call(b"set ttl:zero 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"get ttl:zero\r\n", b"VALUE ttl:zero 0 1\r\na\r\nEND\r\n")

    def test_negative_is_expired(self, c):
        c.call(b"set ttl:neg 0 -1 1\r\na\r\n", b"STORED\r\n")
        c.call(b"get ttl:neg\r\n", b"END\r\n")
        # replaces (and so removes) an existing value
        c.call(b"set ttl:neg2 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"set ttl:neg2 0 -100 1\r\nb\r\n", b"STORED\r\n")
        c.call(b"get ttl:neg2\r\n", b"END\r\n")

    def test_absolute_past_is_expired(self, c):
        now = int(time.time())
        c.call(b"set ttl:past 0 %d 1\r\na\r\n" % (now - 10), b"STORED\r\n")
        c.call(b"get ttl:past\r\n", b"END\r\n")
        # anything above 30 days (2592000) is an absolute unix time
        c.call(b"set ttl:1970 0 2592001 1\r\na\r\n", b"STORED\r\n")
        c.call(b"get ttl:1970\r\n", b"END\r\n")

    def test_absolute_future_exists(self, c):
        now = int(time.time())
        c.call(b"set ttl:fut 0 %d 1\r\na\r\n" % (now + 2), b"STORED\r\n")
        c.call(b"get ttl:fut\r\n", b"VALUE ttl:fut 0 1\r\na\r\nEND\r\n")
        c.call(b"set ttl:fut2 0 %d 1\r\na\r\n" % (now + 3600), b"STORED\r\n")
        c.call(b"get ttl:fut2\r\n", b"VALUE ttl:fut2 0 1\r\na\r\nEND\r\n")

    def test_relative_30_days_is_relative(self, c):
        c.call(b"set ttl:30d 0 2592000 1\r\na\r\n", b"STORED\r\n")
        c.call(b"get ttl:30d\r\n", b"VALUE ttl:30d 0 1\r\na\r\nEND\r\n")

    def test_touch_gat_negative_expire(self, c):
        c.call(b"set ttl:tn 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"touch ttl:tn -1\r\n", b"TOUCHED\r\n")
        c.call(b"get ttl:tn\r\n", b"END\r\n")
        c.call(b"set ttl:gn 0 0 1\r\na\r\n", b"STORED\r\n")
        # gat returns the value, then it is gone
        c.call(b"gat -1 ttl:gn\r\n", b"VALUE ttl:gn 0 1\r\na\r\nEND\r\n")
        c.call(b"get ttl:gn\r\n", b"END\r\n")


def test_ttl_expiry_with_sleep(server_factory):
    """Everything that needs real time to pass, on -t 1/2/4 at once, with a
    single sleep: relative 2 s, absolute now+2, touch to 2 s, gat to 0,
    delayed flush_all."""
    servers = [server_factory(threads=t) for t in (1, 2, 4)]
    flusher = server_factory(threads=2)
    conns = [s.conn() for s in servers]
    now = int(time.time())
    for c in conns:
        # 2 s, not 1: a relative TTL counts whole server seconds (as in
        # memcached), so a 1 s item may die at once if a tick falls between
        # the set and the get below.
        c.call(b"set e:rel 0 2 1\r\na\r\n", b"STORED\r\n")
        # now+2: still ahead when the last server gets its set (slow
        # sanitizer builds), past when the check runs after the 2.5 s sleep.
        c.call(b"set e:abs 0 %d 1\r\na\r\n" % (now + 2), b"STORED\r\n")
        c.call(b"set e:never 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"set e:long 0 100 1\r\na\r\n", b"STORED\r\n")
        c.call(b"set e:touched 0 100 1\r\na\r\n", b"STORED\r\n")
        c.call(b"touch e:touched 2\r\n", b"TOUCHED\r\n")
        c.call(b"set e:gat0 0 2 1\r\na\r\n", b"STORED\r\n")   # 2 s: see e:rel
        c.call(b"gat 0 e:gat0\r\n", b"VALUE e:gat0 0 1\r\na\r\nEND\r\n")
        c.call(b"set e:gats 0 2 1\r\na\r\n", b"STORED\r\n")
        c.send(b"gats 100 e:gats\r\n")
        assert mask_cas(c.read_until(b"END\r\n")) == \
            b"VALUE e:gats 0 1 <cas>\r\na\r\nEND\r\n"
        c.call(b"get e:rel e:abs\r\n",
               b"VALUE e:rel 0 1\r\na\r\nVALUE e:abs 0 1\r\na\r\nEND\r\n")
    f = flusher.conn()
    f.call(b"set e:f1 0 0 1\r\na\r\n", b"STORED\r\n")
    # (memcached: "flush_all 1" already hides items set in the current
    # second; with 2 they stay visible for about a second)
    f.call(b"flush_all 2\r\n", b"OK\r\n")

    time.sleep(2.5)

    for c in conns:
        c.call(b"get e:rel e:abs e:touched\r\n", b"END\r\n")
        c.call(b"get e:never e:long e:gat0 e:gats\r\n",
               b"VALUE e:never 0 1\r\na\r\nVALUE e:long 0 1\r\na\r\n"
               b"VALUE e:gat0 0 1\r\na\r\nVALUE e:gats 0 1\r\na\r\nEND\r\n")
        c.close()
    f.call(b"get e:f1\r\n", b"END\r\n")
    f.call(b"set e:f2 0 0 1\r\nb\r\n", b"STORED\r\n")
    f.call(b"get e:f2\r\n", b"VALUE e:f2 0 1\r\nb\r\nEND\r\n")
    f.close()


# ---------------------------------------------------------------------------
# CAS
# ---------------------------------------------------------------------------

class TestCas:
    def test_cas_unique_across_keys(self, c):
        keys = [b"cu:%d" % i for i in range(64)]
        for k in keys:
            c.send(b"set %s 0 0 1 noreply\r\nv\r\n" % k)
        c.send(b"gets " + b" ".join(keys) + b"\r\n")
        reply = c.read_until(b"END\r\n")
        cas = re.findall(rb"^VALUE (\S+) 0 1 (\d+)\r$", reply, re.M)
        assert [k for k, _ in cas] == keys
        values = [int(v) for _, v in cas]
        assert len(set(values)) == len(values), "CAS values must be unique"
        assert all(v > 0 for v in values)

    def test_cas_changes_on_every_modification(self, c):
        c.call(b"set cm:a 0 0 1\r\n1\r\n", b"STORED\r\n")
        seen = [gets_cas(c, b"cm:a")]
        for req, rep in ((b"set cm:a 0 0 1\r\n2\r\n", b"STORED\r\n"),
                         (b"append cm:a 0 0 1\r\n3\r\n", b"STORED\r\n"),
                         (b"prepend cm:a 0 0 1\r\n4\r\n", b"STORED\r\n"),
                         (b"incr cm:a 1\r\n", b"424\r\n"),
                         (b"replace cm:a 0 0 1\r\n5\r\n", b"STORED\r\n")):
            c.call(req, rep)
            seen.append(gets_cas(c, b"cm:a"))
        assert len(set(seen)) == len(seen), seen

    def test_cas_semantics(self, c):
        c.call(b"cas cs:missing 0 0 1 1\r\na\r\n", b"NOT_FOUND\r\n")
        c.call(b"set cs:a 0 0 1\r\na\r\n", b"STORED\r\n")
        cas = gets_cas(c, b"cs:a")
        c.call(b"cas cs:a 0 0 1 %d\r\nb\r\n" % (cas + 1000), b"EXISTS\r\n")
        c.call(b"cas cs:a 7 0 1 %d\r\nb\r\n" % cas, b"STORED\r\n")
        c.call(b"cas cs:a 0 0 1 %d\r\nc\r\n" % cas, b"EXISTS\r\n")
        c.call(b"get cs:a\r\n", b"VALUE cs:a 7 1\r\nb\r\nEND\r\n")
        cas2 = gets_cas(c, b"cs:a")
        assert cas2 != cas
        c.call(b"delete cs:a\r\n", b"DELETED\r\n")
        c.call(b"cas cs:a 0 0 1 %d\r\nd\r\n" % cas2, b"NOT_FOUND\r\n")

    def test_gets_reply_format(self, c):
        c.call(b"set cf:a 42 0 3\r\nxyz\r\n", b"STORED\r\n")
        c.send(b"gets cf:a cf:missing\r\n")
        assert mask_cas(c.read_until(b"END\r\n")) == \
            b"VALUE cf:a 42 3 <cas>\r\nxyz\r\nEND\r\n"


# ---------------------------------------------------------------------------
# incr / decr
# ---------------------------------------------------------------------------

class TestIncrDecr:
    def test_basic(self, c):
        c.call(b"set n:a 0 0 1\r\n5\r\n", b"STORED\r\n")
        c.call(b"incr n:a 10\r\n", b"15\r\n")
        c.call(b"decr n:a 3\r\n", b"12\r\n")
        c.call(b"incr n:a 0\r\n", b"12\r\n")
        c.call(b"get n:a\r\n", b"VALUE n:a 0 2\r\n12\r\nEND\r\n")

    def test_not_found(self, c):
        c.call(b"incr n:missing 1\r\n", b"NOT_FOUND\r\n")
        c.call(b"decr n:missing 1\r\n", b"NOT_FOUND\r\n")

    def test_incr_wraps_at_2_64(self, c):
        c.call(b"set n:w 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n")
        c.call(b"incr n:w 1\r\n", b"0\r\n")
        c.call(b"set n:w 0 0 20\r\n18446744073709551610\r\n", b"STORED\r\n")
        c.call(b"incr n:w 10\r\n", b"4\r\n")
        c.call(b"set n:w 0 0 1\r\n1\r\n", b"STORED\r\n")
        c.call(b"incr n:w 18446744073709551615\r\n", b"0\r\n")

    def test_incr_max_delta(self, c):
        c.call(b"set n:m 0 0 1\r\n0\r\n", b"STORED\r\n")
        c.call(b"incr n:m 18446744073709551615\r\n", b"18446744073709551615\r\n")
        c.call(b"get n:m\r\n",
               b"VALUE n:m 0 20\r\n18446744073709551615\r\nEND\r\n")

    def test_decr_floors_at_zero(self, c):
        c.call(b"set n:d 0 0 1\r\n5\r\n", b"STORED\r\n")
        c.call(b"decr n:d 6\r\n", b"0\r\n")
        c.call(b"decr n:d 1\r\n", b"0\r\n")
        c.call(b"set n:d 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n")
        c.call(b"decr n:d 18446744073709551615\r\n", b"0\r\n")

    def test_incr_grows_value(self, c):
        c.call(b"set n:g 3 0 2\r\n99\r\n", b"STORED\r\n")
        c.call(b"incr n:g 1\r\n", b"100\r\n")
        c.call(b"get n:g\r\n", b"VALUE n:g 3 3\r\n100\r\nEND\r\n")

    def test_non_numeric_value(self, c):
        msg = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
        for v in (b"abc", b"-1", b"1a", b"184467440737095516150"):
            c.call(b"set n:nn 0 0 %d\r\n%s\r\n" % (len(v), v), b"STORED\r\n")
            c.call(b"incr n:nn 1\r\n", msg)
            c.call(b"decr n:nn 1\r\n", msg)
        c.call(b"set n:nn 0 0 0\r\n\r\n", b"STORED\r\n")
        c.call(b"incr n:nn 1\r\n", msg)
        c.assert_in_sync()

    @pytest.mark.parametrize("delta", [b"abc", b"-1", b"1.5", b"0x10",
                                       b"18446744073709551616",
                                       b"99999999999999999999999"])
    def test_invalid_delta(self, c, delta):
        c.call(b"set n:id 0 0 1\r\n5\r\n", b"STORED\r\n")
        for cmd in (b"incr", b"decr"):
            c.call(b"%s n:id %s\r\n" % (cmd, delta),
                   b"CLIENT_ERROR invalid numeric delta argument\r\n")
        c.call(b"get n:id\r\n", b"VALUE n:id 0 1\r\n5\r\nEND\r\n")


# ---------------------------------------------------------------------------
# touch / gat / gats
# ---------------------------------------------------------------------------

class TestTouchGat:
    def test_touch(self, c):
        c.call(b"set tg:a 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"touch tg:a 100\r\n", b"TOUCHED\r\n")
        c.call(b"touch tg:missing 100\r\n", b"NOT_FOUND\r\n")
        c.call(b"touch tg:a abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n")
        c.call(b"get tg:a\r\n", b"VALUE tg:a 0 1\r\na\r\nEND\r\n")

    def test_gat_gats(self, c):
        c.call(b"set tg:b 4 0 2\r\nbb\r\n", b"STORED\r\n")
        c.call(b"set tg:c 5 0 2\r\ncc\r\n", b"STORED\r\n")
        c.call(b"gat 100 tg:b tg:missing tg:c\r\n",
               b"VALUE tg:b 4 2\r\nbb\r\nVALUE tg:c 5 2\r\ncc\r\nEND\r\n")
        c.send(b"gats 100 tg:b tg:c\r\n")
        assert mask_cas(c.read_until(b"END\r\n")) == (
            b"VALUE tg:b 4 2 <cas>\r\nbb\r\nVALUE tg:c 5 2 <cas>\r\ncc\r\nEND\r\n")
        c.call(b"gat abc tg:b\r\n", b"CLIENT_ERROR invalid exptime argument\r\n")
        c.call(b"gat 0 tg:missing\r\n", b"END\r\n")

    def test_gats_cas_matches_gets(self, c):
        c.call(b"set tg:d 0 0 1\r\nd\r\n", b"STORED\r\n")
        cas = gets_cas(c, b"tg:d")
        c.call(b"gats 100 tg:d\r\n", b"VALUE tg:d 0 1 %d\r\nd\r\nEND\r\n" % cas)


# ---------------------------------------------------------------------------
# Large values, item size limit, split writes
# ---------------------------------------------------------------------------

def test_one_mib_value(server_factory):
    srv = server_factory(threads=2, item_size="2m")
    value = bytes((i * 7 + 3) & 0xFF for i in range(1 << 20))
    with srv.conn() as c:
        c.call(b"set big:1m 0 0 %d\r\n%s\r\n" % (len(value), value), b"STORED\r\n")
        c.call(b"get big:1m\r\n", get_reply([(b"big:1m", 0, value)]))
    mc = srv.client()
    assert mc.get(b"big:1m") == value
    v2 = b"\r\n" * (1 << 19)
    mc.set(b"big:crlf", v2)
    assert mc.get(b"big:crlf") == v2
    mc.close()


def test_value_too_large(server):
    """-I 1m: a 2 000 000-byte value is refused, its data is swallowed, the
    connection stays in sync, and a set removes the old value."""
    n = 2_000_000
    with server.conn() as c:
        c.call(b"set tl:a 0 0 1\r\nx\r\n", b"STORED\r\n")
        c.call(b"set tl:a 0 0 %d\r\n%s\r\n" % (n, b"y" * n),
               b"SERVER_ERROR object too large for cache\r\n")
        c.call(b"get tl:a\r\n", b"END\r\n")
        c.assert_in_sync()
        # noreply: silent, and the old value is removed all the same
        c.call(b"set tl:a 0 0 1\r\nx\r\n", b"STORED\r\n")
        c.send(b"set tl:a 0 0 %d noreply\r\n%s\r\n" % (n, b"y" * n))
        c.call(b"get tl:a\r\n", b"END\r\n")
        # the other storage commands leave the existing value alone
        c.call(b"set tl:b 0 0 1\r\nx\r\n", b"STORED\r\n")
        for cmd in (b"add", b"replace", b"append", b"prepend"):
            c.call(b"%s tl:b 0 0 %d\r\n%s\r\n" % (cmd, n, b"z" * n),
                   b"SERVER_ERROR object too large for cache\r\n")
        c.call(b"cas tl:b 0 0 %d 1\r\n%s\r\n" % (n, b"z" * n),
               b"SERVER_ERROR object too large for cache\r\n")
        c.call(b"get tl:b\r\n", b"VALUE tl:b 0 1\r\nx\r\nEND\r\n")
        c.assert_in_sync()
        # an append whose *result* would exceed the limit: NOT_STORED
        half = 900_000
        c.call(b"set tl:c 0 0 %d\r\n%s\r\n" % (half, b"a" * half), b"STORED\r\n")
        c.call(b"append tl:c 0 0 %d\r\n%s\r\n" % (half, b"b" * half),
               b"NOT_STORED\r\n")
        c.call(b"prepend tl:c 0 0 %d\r\n%s\r\n" % (half, b"b" * half),
               b"NOT_STORED\r\n")
        c.call(b"get tl:c\r\n", get_reply([(b"tl:c", 0, b"a" * half)]))
        c.assert_in_sync()
    mc = server.client()
    with pytest.raises(MemcacheServerError):
        mc.set(b"tl:pm", b"z" * n, noreply=False)
    assert mc.get(b"tl:pm") is None
    mc.set(b"tl:pm", b"ok")
    assert mc.get(b"tl:pm") == b"ok"
    mc.close()


def test_value_split_across_writes(server):
    with server.conn() as c:
        req = b"set sp:a 3 0 10\r\n0123456789\r\nget sp:a\r\n"
        for i in range(len(req)):          # byte by byte
            c.send(req[i:i + 1])
            time.sleep(0.001)
        assert c.read_until(b"END\r\n") == (
            b"STORED\r\nVALUE sp:a 3 10\r\n0123456789\r\nEND\r\n")
        value = bytes(range(256)) * 400    # 102400 bytes, in 1000-byte chunks
        req = b"set sp:b 0 0 %d\r\n%s\r\n" % (len(value), value)
        for i in range(0, len(req), 1000):
            c.send(req[i:i + 1000])
            if i % 20000 == 0:
                time.sleep(0.005)
        c.call(b"", b"STORED\r\n")
        # split exactly inside the "\r\n" terminators
        c.send(b"set sp:c 0 0 2\r")
        time.sleep(0.02)
        c.send(b"\nab\r")
        time.sleep(0.02)
        c.send(b"\nget sp:c\r")
        time.sleep(0.02)
        c.send(b"\n")
        assert c.read_until(b"END\r\n") == (
            b"STORED\r\nVALUE sp:c 0 2\r\nab\r\nEND\r\n")
        c.call(b"get sp:b\r\n", get_reply([(b"sp:b", 0, value)]))


# ---------------------------------------------------------------------------
# flush_all, stats, version, verbosity, quit, shutdown
# ---------------------------------------------------------------------------

def test_flush_all(server_factory):
    srv = server_factory(threads=2)
    with srv.conn() as c:
        for i in range(50):
            c.send(b"set fl:%d 0 0 1 noreply\r\nv\r\n" % i)
        c.call(b"flush_all\r\n", b"OK\r\n")
        c.call(b"get " + b" ".join(b"fl:%d" % i for i in range(50)) + b"\r\n",
               b"END\r\n")
        c.call(b"set fl:new 0 0 1\r\nn\r\n", b"STORED\r\n")
        c.call(b"get fl:new\r\n", b"VALUE fl:new 0 1\r\nn\r\nEND\r\n")
        c.call(b"flush_all 0\r\n", b"OK\r\n")
        c.call(b"get fl:new\r\n", b"END\r\n")
        c.call(b"set fl:x 0 0 1\r\nx\r\n", b"STORED\r\n")
        c.send(b"flush_all noreply\r\n")
        c.call(b"get fl:x\r\n", b"END\r\n")
        c.call(b"set fl:y 0 0 1\r\ny\r\n", b"STORED\r\n")
        c.send(b"flush_all 0 noreply\r\n")
        c.call(b"get fl:y\r\n", b"END\r\n")
        c.call(b"flush_all abc\r\n", b"CLIENT_ERROR invalid exptime argument\r\n")
        c.assert_in_sync()
        # delayed flush: nothing disappears now
        c.call(b"set fl:z 0 0 1\r\nz\r\n", b"STORED\r\n")
        c.call(b"flush_all 100\r\n", b"OK\r\n")
        c.call(b"get fl:z\r\n", b"VALUE fl:z 0 1\r\nz\r\nEND\r\n")
    mc = srv.client()
    assert mc.flush_all(noreply=False) is True
    assert mc.get(b"fl:z") is None
    mc.close()


def test_version(c):
    c.send(b"version\r\n")
    line = c.readline()
    assert re.match(rb"^VERSION \S+\r\n$", line), line


def test_verbosity(c):
    c.call(b"verbosity 1\r\n", b"OK\r\n")
    c.call(b"verbosity 0\r\n", b"OK\r\n")
    c.send(b"verbosity 0 noreply\r\n")
    c.call(b"verbosity\r\n", b"ERROR\r\n")
    c.call(b"verbosity abc\r\n", b"CLIENT_ERROR bad command line format\r\n")
    c.assert_in_sync()


def test_quit(server):
    with server.conn() as c:
        c.send(b"set q:a 0 0 1\r\na\r\nquit\r\nget q:a\r\n")
        assert c.readline() == b"STORED\r\n"
        assert c.is_closed(2.0), "quit must close the connection"
        assert c.buf == b"", f"nothing may follow quit: {c.buf!r}"
    with server.conn() as c:
        c.call(b"get q:a\r\n", b"VALUE q:a 0 1\r\na\r\nEND\r\n")


def test_shutdown_refused(c):
    c.call(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n")
    c.assert_in_sync()


def test_stats_general(server):
    with server.conn() as c:
        before = stats(c)
        for field in ("pid", "uptime", "time", "version", "curr_connections",
                      "total_connections", "cmd_get", "cmd_set", "get_hits",
                      "get_misses", "curr_items", "total_items", "bytes",
                      "limit_maxbytes", "threads", "evictions"):
            assert field in before, f"stats lacks {field}"
        assert int(before["pid"]) == server.pid
        assert int(before["threads"]) == server.threads
        assert int(before["limit_maxbytes"]) == 64 * 1024 * 1024
        c.call(b"set st:a 0 0 1\r\na\r\n", b"STORED\r\n")
        c.call(b"get st:a st:missing\r\n", b"VALUE st:a 0 1\r\na\r\nEND\r\n")
        after = stats(c)
        assert int(after["cmd_set"]) - int(before["cmd_set"]) == 1
        assert int(after["get_hits"]) - int(before["get_hits"]) == 1
        assert int(after["get_misses"]) - int(before["get_misses"]) == 1
        assert int(after["cmd_get"]) - int(before["cmd_get"]) == 2
        assert int(after["curr_connections"]) >= 1
        assert abs(int(after["time"]) - time.time()) < 5


def test_stats_counts_items_across_workers(server_factory):
    srv = server_factory(threads=4)
    with srv.conn() as c:
        for i in range(500):
            c.send(b"set si:%d 0 0 3 noreply\r\nabc\r\n" % i)
        c.version()
        st = stats(c)
        assert int(st["curr_items"]) == 500
        assert int(st["total_items"]) == 500
        for i in range(100):
            c.send(b"delete si:%d noreply\r\n" % i)
        c.version()
        assert int(stats(c)["curr_items"]) == 400


def test_stats_settings(server):
    with server.conn() as c:
        st = stats(c, b"settings")
        assert int(st["maxbytes"]) == 64 * 1024 * 1024
        assert int(st["maxconns"]) == 1024
        assert int(st["tcpport"]) == server.port
        assert int(st["num_threads"]) == server.threads
        assert int(st["item_size_max"]) == 1024 * 1024


@pytest.mark.parametrize("sub", [b"items", b"slabs"])
def test_stats_items_slabs_format(server, sub):
    with server.conn() as c:
        c.call(b"set ss:a 0 0 5\r\nhello\r\n", b"STORED\r\n")
        c.send(b"stats " + sub + b"\r\n")
        raw = c.read_until(b"END\r\n")
        for line in raw.split(b"\r\n")[:-2]:
            assert re.match(rb"^STAT \S+ \S+$", line), line
        assert raw.endswith(b"END\r\n")
        c.assert_in_sync()


def test_stats_unknown_subcommand(c):
    c.call(b"stats nosuchthing\r\n", b"ERROR\r\n")
    c.assert_in_sync()


@pytest.mark.percore_only
def test_percore_worker_stats(server_factory):
    """percore's own stats: per-worker request/forwarding counters and item
    counts; keys must spread over every worker."""
    srv = server_factory(threads=4)
    with srv.conn() as c:
        for i in range(1000):
            c.send(b"set pw:%d 0 0 1 noreply\r\nv\r\n" % i)
        c.send(b"get " + b" ".join(b"pw:%d" % i for i in range(0, 1000, 7)) + b"\r\n")
        c.read_until(b"END\r\n")
        st = stats(c)
    assert int(st["threads"]) == 4
    per_items = [int(st[f"worker_{i}_curr_items"]) for i in range(4)]
    assert sum(per_items) == int(st["curr_items"]) == 1000
    assert all(n > 100 for n in per_items), per_items
    fwd = sum(int(st[f"worker_{i}_req_forwarded"]) for i in range(4))
    local = sum(int(st[f"worker_{i}_req_local"]) for i in range(4))
    assert fwd > 0, "one connection touching every shard must forward"
    assert local > 0
    assert fwd + local >= 1000


def test_commands_sent_just_before_close_are_applied(server):
    """A client that writes noreply sets and closes at once: the server still
    applies them (the data and the end of stream can arrive together)."""
    keys = [b"eof:%d:%d" % (server.threads, i) for i in range(60)]
    for k in keys:
        s = socket.create_connection(server.addr)
        s.sendall(b"set %s 0 0 1 noreply\r\nx\r\n" % k)
        s.close()
    deadline = time.time() + 5
    c = server.conn()
    while True:
        c.send(b"get " + b" ".join(keys) + b"\r\n")
        got = c.read_until(b"END\r\n")
        if got.count(b"VALUE ") == len(keys) or time.time() > deadline:
            break
        time.sleep(0.05)
    assert got == get_reply([(k, 0, b"x") for k in keys])
