"""Pipelines: thousands of mixed requests in one write, replies checked in
order against a Python reference model; big multi-key gets."""
import random
import re
import threading

import pytest

from conftest import describe_mismatch, mask_cas


class Model:
    """Reference model of the text protocol for the commands generated
    below (no TTLs; counters never change their number of digits, which
    keeps memcached's in-place incr padding out of the picture)."""

    def __init__(self):
        self.d = {}

    @staticmethod
    def _numeric(v):
        return v.isdigit() and len(v) <= 20 and int(v) < 2 ** 64

    def run(self, op):
        kind = op[0]
        d = self.d
        if kind in ("set", "add", "replace", "append", "prepend"):
            _, key, flags, val, noreply = op
            if kind == "set":
                d[key] = (flags, val); r = b"STORED\r\n"
            elif kind == "add":
                if key in d:
                    r = b"NOT_STORED\r\n"
                else:
                    d[key] = (flags, val); r = b"STORED\r\n"
            elif kind == "replace":
                if key in d:
                    d[key] = (flags, val); r = b"STORED\r\n"
                else:
                    r = b"NOT_STORED\r\n"
            else:
                if key in d:
                    f, old = d[key]
                    d[key] = (f, old + val if kind == "append" else val + old)
                    r = b"STORED\r\n"
                else:
                    r = b"NOT_STORED\r\n"
            return b"" if noreply else r
        if kind in ("get", "gets"):
            out = []
            for key in op[1]:
                if key in d:
                    f, v = d[key]
                    cas = b" <cas>" if kind == "gets" else b""
                    out.append(b"VALUE %s %d %d%s\r\n%s\r\n" % (key, f, len(v), cas, v))
            return b"".join(out) + b"END\r\n"
        if kind == "delete":
            _, key, noreply = op
            r = b"DELETED\r\n" if d.pop(key, None) is not None else b"NOT_FOUND\r\n"
            return b"" if noreply else r
        if kind in ("incr", "decr"):
            _, key, delta, noreply = op
            if key not in d:
                r = b"NOT_FOUND\r\n"
            else:
                f, v = d[key]
                if not self._numeric(v):
                    r = (b"CLIENT_ERROR cannot increment or decrement "
                         b"non-numeric value\r\n")
                else:
                    n = int(v)
                    n = (n + delta) % 2 ** 64 if kind == "incr" else max(0, n - delta)
                    nv = b"%d" % n
                    assert len(nv) >= len(v)  # generator keeps digit counts
                    d[key] = (f, nv)
                    r = nv + b"\r\n"
            return b"" if noreply else r
        if kind == "touch":
            _, key = op
            return b"TOUCHED\r\n" if key in self.d else b"NOT_FOUND\r\n"
        raise ValueError(kind)


def encode(op):
    kind = op[0]
    if kind in ("set", "add", "replace", "append", "prepend"):
        _, key, flags, val, noreply = op
        return b"%s %s %d 0 %d%s\r\n%s\r\n" % (
            kind.encode(), key, flags, len(val), b" noreply" if noreply else b"", val)
    if kind in ("get", "gets"):
        return kind.encode() + b" " + b" ".join(op[1]) + b"\r\n"
    if kind == "delete":
        return b"delete %s%s\r\n" % (op[1], b" noreply" if op[2] else b"")
    if kind in ("incr", "decr"):
        return b"%s %s %d%s\r\n" % (kind.encode(), op[1], op[2],
                                    b" noreply" if op[3] else b"")
    if kind == "touch":
        return b"touch %s 0\r\n" % op[1]
    raise ValueError(kind)


def gen_ops(rng, n, nkeys, prefix):
    keys = [b"%s:%d" % (prefix, i) for i in range(nkeys)]
    counters = [b"%s:c%d" % (prefix, i) for i in range(nkeys // 10)]
    ops = []
    for k in counters:
        ops.append(("set", k, 0, b"5000000", False))
    for _ in range(n):
        r = rng.random()
        key = rng.choice(keys)
        noreply = rng.random() < 0.15
        if r < 0.25:
            size = rng.choice([0, 1, 10, 100, 1000, 5000])
            val = bytes(rng.getrandbits(8) for _ in range(min(size, 64)))
            val = (val * (size // max(1, len(val)) + 1))[:size]
            ops.append(("set", key, rng.choice([0, 1, 4294967295]), val, noreply))
        elif r < 0.30:
            ops.append(("add", key, 3, b"added", noreply))
        elif r < 0.35:
            ops.append(("replace", key, 4, b"replaced", noreply))
        elif r < 0.40:
            ops.append((rng.choice(["append", "prepend"]), key, 0, b"xy", noreply))
        elif r < 0.60:
            ops.append(("get", [key]))
        elif r < 0.66:
            ops.append((rng.choice(["get", "gets"]),
                        [rng.choice(keys + counters) for _ in range(rng.randint(2, 12))]))
        elif r < 0.74:
            ops.append(("delete", key, noreply))
        elif r < 0.92:
            k = rng.choice(counters) if rng.random() < 0.9 else key
            ops.append((rng.choice(["incr", "decr"]), k, rng.randint(0, 100), noreply))
        else:
            ops.append(("touch", rng.choice(keys + counters)))
    return ops


def run_pipeline(conn, request, expected_len, timeout=30):
    """Send request in one write while a thread reads the replies."""
    result = {}

    def reader():
        result["data"] = conn.read_exact(expected_len)

    conn.timeout = timeout
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    conn.send(request)
    t.join(timeout + 5)
    assert not t.is_alive(), "reader hung"
    return result["data"]


@pytest.mark.parametrize("seed", [1, 2])
def test_mixed_pipeline_against_model(server, seed):
    rng = random.Random(seed * 1000 + server.threads)
    prefix = b"pl%d_%d" % (seed, server.threads)
    ops = gen_ops(rng, 3000, 400, prefix)
    model = Model()
    model_replies = [model.run(op) for op in ops]
    request = b"".join(encode(op) for op in ops)
    with server.conn() as c:
        got = pipeline_replies(c, request, ops)
        for i, (op, raw) in enumerate(zip(ops, got)):
            exp = model_replies[i]
            assert mask_cas(raw) == exp, (
                f"op #{i} {encode(op)[:120]!r}: expected {exp[:300]!r}, "
                f"got {raw[:300]!r}")
        c.assert_in_sync(quiet=0.05)
        # final state equals the model's
        keys = sorted(model.d)
        c.send(b"get " + b" ".join(keys) + b"\r\n")
        final = c.read_until(b"END\r\n")
        exp = b"".join(b"VALUE %s %d %d\r\n%s\r\n" % (k, model.d[k][0],
                       len(model.d[k][1]), model.d[k][1]) for k in keys) + b"END\r\n"
        assert final == exp, describe_mismatch(b"get <all>", exp, final)


def read_one_reply(conn, op):
    """One reply, parsed by structure (VALUE blocks by their length)."""
    kind = op[0]
    if kind in ("get", "gets"):
        out = b""
        while True:
            line = conn.readline()
            out += line
            if line == b"END\r\n":
                return out
            m = re.match(rb"VALUE \S+ \d+ (\d+)( \d+)?\r\n$", line)
            if not m:
                return out          # unexpected: let the comparison fail
            out += conn.read_exact(int(m.group(1)) + 2)
    noreply = op[-1] if kind in ("set", "add", "replace", "append", "prepend",
                                 "delete", "incr", "decr") else False
    return b"" if noreply is True else conn.readline()


def pipeline_replies(conn, request, ops, timeout=30):
    """Send the whole request in one write while a thread parses replies."""
    result = {"replies": []}

    def reader():
        try:
            for op in ops:
                result["replies"].append(read_one_reply(conn, op))
        except Exception as e:          # reported below, with context
            result["error"] = e

    conn.timeout = timeout
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    conn.send(request)
    t.join(timeout + 5)
    conn.timeout = 5
    assert not t.is_alive(), "reader hung"
    if "error" in result:
        n = len(result["replies"])
        raise AssertionError(f"reading reply of op #{n} "
                             f"{encode(ops[n])[:120]!r}: {result['error']}")
    return result["replies"]


def test_multiget_100_plus_keys(server):
    keys = [b"mg%d:%d" % (server.threads, i) for i in range(150)]
    present = {k: (i % 7, b"val-%d-" % i * (i % 5 + 1))
               for i, k in enumerate(keys) if i % 3 != 0}
    with server.conn() as c:
        for k, (f, v) in present.items():
            c.send(b"set %s %d 0 %d noreply\r\n%s\r\n" % (k, f, len(v), v))
        # missing keys interleaved, plus a duplicate of a present and a
        # missing key: memcached answers a duplicated key twice
        query = keys + [keys[1], keys[0]]
        exp = b"".join(b"VALUE %s %d %d\r\n%s\r\n" % (k, present[k][0],
                       len(present[k][1]), present[k][1])
                       for k in query if k in present) + b"END\r\n"
        c.call(b"get " + b" ".join(query) + b"\r\n", exp)
        # gets: same order, plus CAS numbers that match single-key gets
        c.send(b"gets " + b" ".join(query) + b"\r\n")
        raw = c.read_until(b"END\r\n")
        exp_masked = b"".join(b"VALUE %s %d %d <cas>\r\n%s\r\n" % (
            k, present[k][0], len(present[k][1]), present[k][1])
            for k in query if k in present) + b"END\r\n"
        assert mask_cas(raw) == exp_masked, describe_mismatch(b"gets ...", exp_masked, mask_cas(raw))
        cas_multi = dict(re.findall(rb"^VALUE (\S+) \d+ \d+ (\d+)\r$", raw, re.M))
        for k in list(present)[:20]:
            c.send(b"gets %s\r\n" % k)
            one = c.read_until(b"END\r\n")
            assert re.search(rb"VALUE \S+ \d+ \d+ (\d+)\r", one).group(1) == cas_multi[k]


def test_many_multigets_pipelined(server):
    """200 multi-gets of 20 keys each, all in one write."""
    keys = [b"mm%d:%d" % (server.threads, i) for i in range(300)]
    with server.conn() as c:
        for i, k in enumerate(keys[:200]):
            c.send(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(k), k))
        rng = random.Random(7)
        req, exp = [], []
        for _ in range(200):
            q = rng.sample(keys, 20)
            req.append(b"get " + b" ".join(q) + b"\r\n")
            exp.append(b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(k), k)
                                for k in q if int(k.split(b":")[1]) < 200) + b"END\r\n")
        req, exp = b"".join(req), b"".join(exp)
        got = run_pipeline(c, req, len(exp))
        assert got == exp, describe_mismatch(req, exp, got)


def test_pipeline_large_values(server):
    """Pipelined sets then gets of 20 KB values across every shard: replies
    of different sizes must stay in request order."""
    vals = {b"lv%d:%d" % (server.threads, i): bytes([65 + i % 26]) * (20000 + i)
            for i in range(200)}
    with server.conn() as c:
        req = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in vals.items())
        exp = b"STORED\r\n" * len(vals)
        got = run_pipeline(c, req, len(exp))
        assert got == exp
        ks = list(vals)
        random.Random(3).shuffle(ks)
        req = b"".join(b"get %s\r\n" % k for k in ks)
        exp = b"".join(b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(vals[k]), vals[k])
                       for k in ks)
        got = run_pipeline(c, req, len(exp))
        assert got == exp, describe_mismatch(b"<gets>", exp, got)


def test_noreply_flood_then_get(server):
    """5000 noreply sets in one write, then one read-back: nothing may be
    answered for the noreply requests."""
    with server.conn() as c:
        req = b"".join(b"set nf%d:%d 0 0 4 noreply\r\n%04d\r\n" % (server.threads, i, i % 10000)
                       for i in range(5000))
        c.send(req)
        keys = [b"nf%d:%d" % (server.threads, i) for i in range(0, 5000, 50)]
        exp = b"".join(b"VALUE %s 0 4\r\n%04d\r\n" % (k, int(k.split(b":")[1])) for k in keys) + b"END\r\n"
        c.call(b"get " + b" ".join(keys) + b"\r\n", exp)
