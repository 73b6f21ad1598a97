"""Helpers for the warm-restart tests and bench/warm_restart.py: a fast
pipelined filler and reader over one raw socket (set ... noreply, then the
meta protocol's `mg key v f c t` / `mn` to read values, flags, CAS and TTL),
a reproducible item set, and a graceful stop by PID (SIGUSR1)."""
import random
import signal
import socket
import time

BATCH = 400


class Pipe:
    def __init__(self, addr, timeout=30.0):
        self.s = socket.create_connection(addr, timeout=timeout)
        self.buf = bytearray()

    def close(self):
        self.s.close()

    def _fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def make_items(n, seed=16, now=None, short_ttl=True):
    """n items: varied sizes (a few over a segment's half, stored as large
    items), random 32-bit flags, TTLs never / relative / absolute / a few
    seconds. Returns a list of (key, value, flags, exptime)."""
    rnd = random.Random(seed)
    now = int(now or time.time())
    items = []
    for i in range(n):
        r = rnd.random()
        if r < 0.90:
            size = rnd.randint(0, 1000)
        elif r < 0.99:
            size = rnd.randint(1000, 10000)
        elif r < 0.9998:
            size = rnd.randint(10000, 50000)
        else:
            size = rnd.randint(150000, 300000)
        val = rnd.randbytes(size)
        flags = 0 if rnd.random() < 0.3 else rnd.getrandbits(32)
        t = rnd.random()
        if t < 0.4:
            exp = 0
        elif t < 0.85:
            exp = rnd.randint(100, 100000)
        elif t < 0.97 or not short_ttl:
            exp = now + rnd.randint(3600, 86400 * 60)     # absolute unix time
        else:
            exp = rnd.randint(1, 3)                       # gone after the restart
        items.append((b"wk:%07d" % i, val, flags, exp))
    return items


def fill(addr, items):
    p = Pipe(addr)
    try:
        for b in range(0, len(items), BATCH):
            out = bytearray()
            for key, val, flags, exp in items[b:b + BATCH]:
                out += b"set %s %d %d %d noreply\r\n" % (key, flags, exp, len(val))
                out += val + b"\r\n"
            out += b"mn\r\n"
            p.s.sendall(out)
            ln = p.line()
            assert ln == b"MN", ln
    finally:
        p.close()


def read_all(addr, keys):
    """{key: (value, flags, cas, ttl)} for every key found (ttl -1 = never)."""
    p = Pipe(addr)
    got = {}
    try:
        for b in range(0, len(keys), BATCH):
            part = keys[b:b + BATCH]
            p.s.sendall(b"".join(b"mg %s v f c t\r\n" % k for k in part) + b"mn\r\n")
            for k in part:
                ln = p.line()
                if ln == b"EN":
                    continue
                f = ln.split()
                assert f[0] == b"VA", ln
                n = int(f[1])
                tok = {t[:1]: t[1:] for t in f[2:]}
                val = p.exact(n + 2)[:-2]
                got[k] = (val, int(tok[b"f"]), int(tok[b"c"]), int(tok[b"t"]))
            assert p.line() == b"MN"
    finally:
        p.close()
    return got


def stats(addr):
    p = Pipe(addr)
    try:
        p.s.sendall(b"stats\r\n")
        out = {}
        while True:
            ln = p.line()
            if ln == b"END":
                return out
            _, k, v = ln.decode().split(" ", 2)
            out[k] = v
    finally:
        p.close()


def graceful_stop(srv, timeout=60):
    """SIGUSR1 by PID; returns the exit status (the Server object is then
    marked stopped so its own stop() does nothing)."""
    from conftest import SANITIZER_PATTERNS
    srv.proc.send_signal(signal.SIGUSR1)
    rc = srv.proc.wait(timeout=timeout)
    err = srv.stderr_text()
    srv.proc = None
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, err[-6000:]
    return rc, err
