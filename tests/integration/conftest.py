"""Integration-test harness for percore.

Which server is tested:
  PERCORE_SERVER unset      -> <repo>/build/percore
  PERCORE_SERVER=memcached  -> /usr/bin/memcached (the reference; every test
                               except `percore_only` ones must pass against it)
  PERCORE_SERVER=/some/path -> that binary

Both are started with memcached's flags:
  -p PORT -l 127.0.0.1 -U 0 -t N -m MB -c MAXCONN -I SIZE
(memcached additionally gets `-u root` when the tests run as root, because it
refuses to start as root otherwise).

Helpers (imported by the test modules with `from conftest import ...`):
  Server     a started server process (port, pid, stop(), rss_kb(), client())
  Conn       a raw-socket connection with exact-byte helpers
  start_server(threads=..., ...) / fixtures `server`, `server_factory`
"""
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MEMCACHED = "/usr/bin/memcached"

_env = os.environ.get("PERCORE_SERVER", "").strip()
if _env == "memcached":
    SERVER_BIN = MEMCACHED
elif _env:
    SERVER_BIN = str(Path(_env).resolve())
else:
    SERVER_BIN = str(REPO / "build" / "percore")
IS_MEMCACHED = os.path.basename(SERVER_BIN) == "memcached"

THREADS = [1, 2, 4]
HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0          # socket timeout for every client operation
TEST_TIME_LIMIT = 90           # seconds; a test running longer is failed

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "ThreadSanitizer:",
    "runtime error:",          # UBSan
)


# --------------------------------------------------------------------------
# pytest configuration: markers, per-test time limit
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "percore_only: checks percore-specific behaviour "
        "(own stats fields, memory bounds); skipped against memcached")
    config.addinivalue_line(
        "markers", "time_limit(seconds): per-test wall-clock limit")
    config.addinivalue_line(
        "markers", "slow: long-running test (soak and similar)")
    config.addinivalue_line(
        "markers", "serial: asserts latency or throughput, or loads the whole "
        "machine's TCP memory; never beside another test (run-integration.sh "
        "runs these alone after the parallel part)")


def pytest_report_header(config):
    return f"server under test: {SERVER_BIN} (memcached={IS_MEMCACHED})"


# The files that take longest (20-30 s each in the release stage, longer
# under the sanitizers); see _split_serial.
LONGEST_FIRST = ("test_warm_restart.py", "test_tls.py", "test_store_fill.py",
                 "test_xdp_steering.py", "test_soak.py", "test_udp.py", "test_bench.py",
                 "test_hostile.py", "test_io_backends.py", "test_introspection.py")


def _split_serial(config, items):
    """PERCORE_SERIAL=skip leaves out the `serial` tests (the parallel pass of
    tests/run-integration.sh) and puts the longest files first, =only keeps
    just the serial ones (its pass alone)."""
    want = os.environ.get("PERCORE_SERIAL", "")
    if want not in ("skip", "only"):
        return
    keep, drop = [], []
    for item in items:
        is_serial = item.get_closest_marker("serial") is not None
        (keep if is_serial == (want == "only") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if want == "skip":
        # pytest-xdist hands out files in this order: the longest first, so
        # that no process is left with one of them after the other is done.
        def rank(item):
            name = os.path.basename(str(item.fspath))
            return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
        items.sort(key=rank)


def pytest_collection_modifyitems(config, items):
    _split_serial(config, items)
    if not IS_MEMCACHED:
        # Under a sanitized percore build, a case whose server under test is
        # memcached itself (a "memcached" parameter) checks nothing new:
        # the release stage ran it already.
        if any(d in SERVER_BIN for d in ("build-asan", "build-tsan")):
            skip = pytest.mark.skip(reason="memcached's own case: run by the release stage")
            for item in items:
                cs = getattr(item, "callspec", None)
                if cs and "memcached" in cs.id.split("-"):
                    item.add_marker(skip)
        return
    skip = pytest.mark.skip(reason="percore_only: not applicable to memcached")
    for item in items:
        if "percore_only" in item.keywords:
            item.add_marker(skip)


class TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise TestTimeout(f"test exceeded its time limit")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Fail any test that runs for longer than TEST_TIME_LIMIT (no
    pytest-timeout in Debian's python3-pytest set)."""
    m = item.get_closest_marker("time_limit")
    limit = int(m.args[0]) if m else TEST_TIME_LIMIT
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def env_server_args(is_memcached):
    """Flags added to every percore the tests start, to run the whole suite
    on another I/O backend: PERCORE_IO=epoll|poll|uring gives --io=...,
    PERCORE_EXTRA_ARGS any other flags (shell-quoted). memcached gets none."""
    if is_memcached:
        return []
    args = []
    if os.environ.get("PERCORE_IO"):
        args.append("--io=" + os.environ["PERCORE_IO"])
    args += shlex.split(os.environ.get("PERCORE_EXTRA_ARGS", ""))
    return args


class ServerCrashed(AssertionError):
    pass


class Server:
    """One server process. Stopped by PID only (SIGTERM, then SIGKILL)."""

    def __init__(self, binary=None, threads=2, memory_mb=64, maxconns=1024,
                 item_size="1m", extra=(), port=None):
        self.binary = binary or SERVER_BIN
        self.threads = threads
        self.is_memcached = os.path.basename(self.binary) == "memcached"
        if not os.path.exists(self.binary):
            pytest.fail(f"server binary not found: {self.binary} "
                        "(build it, or set PERCORE_SERVER)", pytrace=False)
        self.args = ["-l", HOST, "-U", "0", "-t", str(threads),
                     "-m", str(memory_mb), "-c", str(maxconns),
                     "-I", str(item_size), *env_server_args(self.is_memcached),
                     *extra]
        if self.is_memcached and os.geteuid() == 0:
            self.args += ["-u", "root"]
        self.stderr_file = tempfile.TemporaryFile(prefix="srv-stderr-")
        self.proc = None
        self.port = None
        for attempt in range(5):      # the free port may be taken meanwhile
            self.port = port or free_port()
            self.proc = subprocess.Popen(
                [self.binary, "-p", str(self.port), *self.args],
                stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                stderr=self.stderr_file)
            if self._wait_ready(10.0):
                return
            if self.proc.poll() is None or port:
                if self.proc.poll() is None:
                    self._kill()
                break
        err = self.stderr_text()
        pytest.fail(f"server did not start: {self.binary} {self.args}\n"
                    f"exit={self.proc.poll()}\nstderr:\n{err}", pytrace=False)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def addr(self):
        return (HOST, self.port)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                s = socket.create_connection(self.addr, timeout=1.0)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                s.sendall(b"version\r\n")
                data = b""
                while not data.endswith(b"\r\n"):
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"VERSION "):
                    return True
            except OSError:
                pass
            finally:
                s.close()
            time.sleep(0.02)
        return False

    def stderr_text(self):
        try:
            self.stderr_file.seek(0)
            return self.stderr_file.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise ServerCrashed(
                f"server exited unexpectedly: status {self.proc.returncode}\n"
                f"stderr:\n{self.stderr_text()[-4000:]}")

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _kill(self):
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self):
        """Stop with SIGTERM; returns a list of problems (empty when clean)."""
        problems = []
        if self.proc is None:
            return problems
        rc = self.proc.poll()
        if rc is not None:
            problems.append(f"server had already exited with status {rc} "
                            "before teardown (crash?)")
        elif self.is_memcached and not IS_MEMCACHED:
            # memcached as the reference beside percore: its exit is not
            # under test, and on SIGTERM it waits for its next clock tick
            # (0.7 s on average, a minute over a whole run of make test)
            self._kill()
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
                rc = self.proc.returncode
                problems.append("server did not exit within 10 s of SIGTERM; "
                                "killed with SIGKILL")
            if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) \
                    and not problems:
                problems.append(f"unclean exit status after SIGTERM: {rc}")
        err = self.stderr_text()
        for pat in SANITIZER_PATTERNS:
            if pat in err:
                problems.append(f"sanitizer report in stderr ({pat!r})")
                break
        if problems:
            problems.append(f"server: {self.binary} {self.args}\n"
                            f"stderr (tail):\n{err[-6000:]}")
        try:
            self.stderr_file.close()
        except OSError:
            pass
        self.proc = None
        return problems

    def stop_and_check(self):
        problems = self.stop()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    # clients -----------------------------------------------------------
    def conn(self, timeout=DEFAULT_TIMEOUT):
        return Conn(self.addr, timeout)

    def client(self, **kw):
        from pymemcache.client.base import Client
        kw.setdefault("connect_timeout", DEFAULT_TIMEOUT)
        kw.setdefault("timeout", DEFAULT_TIMEOUT)
        # pymemcache's default sends set/add/... with noreply, so a test's
        # set may still be on its way to the key's owner when the test's
        # next connection asks for the key (seen with --io poll: an incr
        # answered NOT_FOUND). Tests wait for their writes.
        kw.setdefault("default_noreply", False)
        return Client(self.addr, **kw)


def reference_pair():
    """memcached (the reference, -t 2) and the server under test (-t 4, so
    keys land on several workers); each side-by-side module's `pair`
    fixture yields from it. Any problem either server showed fails the
    module at the end."""
    ref = Server(binary=MEMCACHED, threads=2)
    sut = Server(threads=4)
    yield ref, sut
    problems = sut.stop() + ref.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def start_server(**kw):
    return Server(**kw)


@pytest.fixture
def server_factory():
    """Function-scoped factory: server_factory(threads=2, maxconns=50, ...);
    cls= picks a Server subclass. Every server it started is stopped (and
    checked) at teardown."""
    started = []

    def make(cls=None, **kw):
        s = (cls or Server)(**kw)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        problems += s.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module", params=THREADS, ids=lambda t: f"t{t}")
def server(request):
    """Module-scoped server, parametrized over -t 1, 2, 4."""
    s = Server(threads=request.param)
    yield s
    s.stop_and_check()


@pytest.fixture(autouse=True)
def _server_still_alive(request):
    """After each test that used the module server, make sure it did not
    crash during the test (so the failure is attributed to that test)."""
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        if srv.proc is not None:
            srv.check_alive()


# --------------------------------------------------------------------------
# Raw connections
# --------------------------------------------------------------------------

class Conn:
    """A raw TCP connection with helpers for exact-byte protocol checks."""

    def __init__(self, addr, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        # bytearray: taking a line off the front is O(1) (CPython moves a
        # start offset), where bytes slicing copied the whole rest per line
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        """Read once more; returns False at EOF."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n):
        """Exactly n bytes, or whatever arrived before timeout/EOF."""
        deadline = time.monotonic() + self.timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if not self._fill(left):
                    break
            except (socket.timeout, ConnectionResetError):
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, terminator):
        deadline = time.monotonic() + self.timeout
        while terminator not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(
                    f"no {terminator!r} within {self.timeout}s; got "
                    f"{bytes(self.buf[:300])!r}")
            if not self._fill(left):
                raise ConnectionError(f"EOF before {terminator!r}; got "
                                      f"{bytes(self.buf[:300])!r}")
        i = self.buf.index(terminator) + len(terminator)
        out = bytes(self.buf[:i])
        del self.buf[:i]
        return out

    def readline(self):
        return self.read_until(b"\r\n")

    def read_available(self, quiet=0.1):
        """Everything that arrives until `quiet` seconds pass with no data."""
        while True:
            try:
                if not self._fill(quiet):
                    break
            except (socket.timeout, ConnectionResetError):
                break
        out = bytes(self.buf)
        self.buf = bytearray()
        return out

    def is_closed(self, wait=1.0):
        """True if the peer closed the connection (EOF or reset) within wait."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if not self._fill(max(0.01, deadline - time.monotonic())):
                    return True
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    def call(self, data, expected):
        """Send data, read len(expected) bytes, assert they equal expected."""
        if isinstance(expected, str):
            expected = expected.encode()
        self.send(data)
        got = self.read_exact(len(expected))
        assert got == expected, describe_mismatch(data, expected, got)
        return got

    def assert_in_sync(self, quiet=0.0):
        """Normal requests right after must get exactly their own replies
        (stray bytes from an earlier request would come first and show up
        as a mismatch). With quiet > 0, also wait that long to make sure
        nothing else follows."""
        self.call(b"set __sync 0 0 4\r\nsync\r\nget __sync\r\n"
                  b"delete __sync\r\n",
                  b"STORED\r\nVALUE __sync 0 4\r\nsync\r\nEND\r\n"
                  b"DELETED\r\n")
        if quiet:
            extra = self.read_available(quiet)
            assert extra == b"", f"unexpected extra bytes: {extra[:200]!r}"

    def version(self):
        self.send(b"version\r\n")
        line = self.readline()
        assert line.startswith(b"VERSION "), line
        return line


def describe_mismatch(request, expected, got, ctx=80):
    """A readable message for a byte mismatch: where it starts, and context."""
    if len(expected) + len(got) < 400:
        return (f"request {bytes_preview(request)}\n expected {expected!r}\n"
                f"      got {got!r}")
    i = 0
    n = min(len(expected), len(got))
    while i < n and expected[i] == got[i]:
        i += 1
    lo = max(0, i - ctx)
    return (f"request {bytes_preview(request)}\n"
            f"replies differ at byte {i} (expected {len(expected)} bytes, "
            f"got {len(got)}):\n"
            f" expected ...{expected[lo:i + ctx]!r}\n"
            f"      got ...{got[lo:i + ctx]!r}")


def bytes_preview(b, n=200):
    if isinstance(b, str):
        b = b.encode()
    return repr(b[:n]) + (f"...(+{len(b) - n} bytes)" if len(b) > n else "")


def get_reply(items, with_cas=False):
    """Expected reply of a get for [(key, flags, value)] (present items)."""
    out = []
    for k, f, v in items:
        out.append(b"VALUE %s %d %d\r\n%s\r\n" % (k, f, len(v), v))
    out.append(b"END\r\n")
    return b"".join(out)


VALUE_CAS_RE = re.compile(rb"^(VALUE \S+ \d+ \d+) (\d+)\r$", re.M)


def mask_cas(data):
    """Replace the CAS number in gets/gats VALUE lines by <cas>."""
    return VALUE_CAS_RE.sub(rb"\1 <cas>\r", data)


def parse_stats(raw):
    stats = {}
    for line in raw.split(b"\r\n"):
        if line.startswith(b"STAT "):
            parts = line.split(b" ", 2)
            stats[parts[1].decode()] = parts[2].decode() if len(parts) > 2 else ""
    return stats


def stats(conn, sub=b""):
    conn.send(b"stats" + (b" " + sub if sub else b"") + b"\r\n")
    return parse_stats(conn.read_until(b"END\r\n"))
