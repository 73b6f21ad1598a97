"""hardening_util.py - small helpers shared by test_hostile.py and test_soak.py:
start a percore (or memcached) on a free 127.0.0.1 port, talk to it over raw
sockets, read /proc for its memory, stop it by PID and check its stderr for
sanitizer reports. Each test owns the processes it starts; nothing here is
shared between threads except what a test passes explicitly.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEMCACHED = "/usr/bin/memcached"


def server_binary():
    env = os.environ.get("PERCORE_SERVER", "").strip()
    if env == "memcached":
        return MEMCACHED
    return env or os.path.join(ROOT, "build", "percore")


def testing_memcached():
    """True when the suite runs against memcached (PERCORE_SERVER=memcached)."""
    return os.path.basename(server_binary()) == "memcached"


def under_asan(binary=None):
    binary = binary or server_binary()
    return "asan" in binary or bool(os.environ.get("ASAN_OPTIONS"))


def under_tsan(binary=None):
    binary = binary or server_binary()
    return "tsan" in binary


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """A server process on a free port. kind: 'percore' or 'memcached'."""

    def __init__(self, args=(), kind="percore", binary=None):
        self.binary = binary or (MEMCACHED if kind == "memcached" else server_binary())
        self.kind = "memcached" if os.path.basename(self.binary) == "memcached" else kind
        self.args = list(args)
        self.port = None
        self.proc = None
        self.err = tempfile.TemporaryFile()
        self.returncode = None

    def start(self):
        for _ in range(5):
            self.port = free_port()
            argv = [self.binary, "-p", str(self.port), "-l", "127.0.0.1", "-U", "0"] + self.args
            if self.kind == "memcached" and os.geteuid() == 0:
                argv += ["-u", "nobody"]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err)
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError("server did not start: " + self.stderr())

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server by PID; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not exit %ds after signal %d" % (timeout, sig))
        self.returncode = self.proc.returncode
        return self.returncode

    def check_clean(self):
        err = self.stderr()
        assert "Sanitizer" not in err and "runtime error" not in err, err[-6000:]
        assert "LeakSanitizer" not in err, err[-6000:]

    def connect(self, timeout=10):
        return Client(self.port, timeout)

    def stats(self):
        with self.connect() as c:
            return c.stats()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            rc = self.stop()
            if self.kind == "percore":
                self.check_clean()
                assert rc == 0, "exit status %r; stderr:\n%s" % (rc, self.stderr()[-4000:])
        finally:
            self.err.close()


class Client:
    """A blocking text-protocol client on a raw socket."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until(self, marker):
        while marker not in self.buf:
            self._fill()
        i = self.buf.index(marker) + len(marker)
        data, self.buf = self.buf[:i], self.buf[i:]
        return data

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.readline()

    def store(self, op, key, value, flags=0, exptime=0, cas=None):
        line = b"%s %s %d %d %d" % (op, key, flags, exptime, len(value))
        if cas is not None:
            line += b" %d" % cas
        self.send(line + b"\r\n" + value + b"\r\n")
        return self.readline()

    def set(self, key, value, flags=0, exptime=0):
        return self.store(b"set", key, value, flags, exptime)

    def get_multi(self, keys, cmd=b"get"):
        """Returns {key: (flags, value, cas or None)}."""
        self.send(cmd + b" " + b" ".join(keys) + b"\r\n")
        out = {}
        while True:
            line = self.readline()
            if line == b"END":
                return out
            parts = line.split()
            if parts[0] != b"VALUE":
                raise AssertionError("unexpected reply to get: %r" % line)
            n = int(parts[3])
            val = self.read_exact(n + 2)[:-2]
            out[parts[1]] = (int(parts[2]), val, int(parts[4]) if len(parts) > 4 else None)

    def get(self, key):
        r = self.get_multi([key])
        return r[key][1] if key in r else None

    def stats(self, arg=b""):
        self.send(b"stats" + (b" " + arg if arg else b"") + b"\r\n")
        out = {}
        while True:
            line = self.readline()
            if line == b"END":
                return out
            _, k, v = line.decode().split(" ", 2)
            out[k] = v

    def closed_by_peer(self, timeout=5):
        """True when the server closes (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def sync_check(c, tag=b"sync"):
    """Proves a connection is in sync: a set and get that must round-trip."""
    key = b"__" + tag
    assert c.set(key, tag) == b"STORED"
    assert c.get(key) == tag


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
