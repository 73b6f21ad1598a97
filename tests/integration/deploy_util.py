"""Helpers shared by the deployment tests (test_daemon, test_install,
test_monitoring, test_twemproxy): start percore on a free loopback port, talk
to it with a raw socket, stop it by PID. Every process is one the test started.
"""
import os
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Same convention as conftest.py: unset -> build/percore, "memcached" -> the
# reference server (tests of percore-only behaviour are marked percore_only).
_env = os.environ.get("PERCORE_SERVER", "").strip()
if _env == "memcached":
    SERVER = "/usr/bin/memcached"
else:
    SERVER = os.path.abspath(_env or os.path.join(REPO, "build", "percore"))
IS_MEMCACHED = os.path.basename(SERVER) == "memcached"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(pred, timeout=5.0, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def pid_alive(pid):
    """True while pid exists and is not a zombie (a daemon reparented to a
    non-reaping init stays a zombie after it exits)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Percore:
    """A percore started in the foreground; stderr goes to a temporary file."""

    def __init__(self, *args, port=None, threads=1, wait=True):
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="percore-", suffix=".log", delete=False)
        self.argv = [SERVER, "-p", str(self.port), "-l", "127.0.0.1", "-t", str(threads)] + list(args)
        if IS_MEMCACHED and os.geteuid() == 0 and "-u" not in args:
            self.argv += ["-u", "root"]     # memcached refuses to run as root otherwise
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.log)
        if wait:
            self.wait_ready()

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=5.0):
        ok = wait_for(lambda: self.proc.poll() is not None or port_open(self.port), timeout)
        if self.proc.poll() is not None:
            raise RuntimeError("percore exited with %s: %s" % (self.proc.returncode, self.stderr()))
        if not ok:
            raise RuntimeError("percore did not listen on %d" % self.port)

    def stderr(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout=5.0):
        """SIGTERM (graceful), then SIGKILL; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.log.name)
        except FileNotFoundError:
            pass
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def command(port, line, end=(b"END\r\n",), timeout=3.0):
    """Send one text-protocol command, read until a line in `end` ends the
    reply. Returns the reply as str."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line if isinstance(line, bytes) else line.encode())
        buf = b""
        while not any(buf.endswith(e) for e in end) and not buf.endswith(b"ERROR\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")


def stats(port, sub=""):
    """`stats [sub]` as an ordered dict name -> value (strings)."""
    reply = command(port, ("stats %s\r\n" % sub) if sub else "stats\r\n")
    out = {}
    for line in reply.split("\r\n"):
        if line.startswith("STAT "):
            parts = line.split(" ")
            out[parts[1]] = " ".join(parts[2:])
    return out


def set_get(port, key=b"k", value=b"v"):
    r = command(port, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value), end=(b"STORED\r\n",))
    assert r == "STORED\r\n", r
    return command(port, b"get %s\r\n" % key)
