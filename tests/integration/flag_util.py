"""Start percore or memcached with an arbitrary command line (no -p/-l added)
and wait until it answers on TCP or on a UNIX socket; stop by PID. Used by
test_flags.py and test_unix_socket.py to run the same flags on both servers.
"""
import os
import socket
import subprocess
import tempfile
import time

from conftest import MEMCACHED, SERVER_BIN

PERCORE = SERVER_BIN if os.path.basename(SERVER_BIN) != "memcached" else None
BINARIES = [b for b in (PERCORE, MEMCACHED) if b and os.access(b, os.X_OK)]


def name(binary):
    return os.path.basename(binary)


class Proc:
    def __init__(self, binary, args, tcp=None, unix=None, wait=True, probe=True):
        self.binary = binary
        self.argv = [binary] + list(args)
        if name(binary) == "memcached" and os.geteuid() == 0:
            self.argv += ["-u", "root"]
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)
        self.tcp, self.unix = tcp, unix
        self.probe = probe      # False: a connection is enough (binary-only servers)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                # not ready (a failing test): stop it by PID, not leak it
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                raise

    @property
    def pid(self):
        return self.proc.pid

    def connect(self, timeout=5):
        if self.unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(self.unix)
            return s
        return socket.create_connection(self.tcp, timeout=timeout)

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited %s: %s" % (self.argv, self.proc.returncode,
                                                          self.stderr()))
            try:
                with self.connect(1) as s:
                    if not self.probe:
                        return
                    s.sendall(b"version\r\n")
                    if s.recv(64).startswith(b"VERSION "):
                        return
            except OSError:
                pass
            time.sleep(0.03)
        raise AssertionError("%s not ready: %s" % (self.argv, self.stderr()))

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("utf-8", "replace")

    def request(self, data, until=b"\r\n"):
        with self.connect() as s:
            s.sendall(data)
            buf = b""
            while not buf.endswith(until):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf

    def stats(self, sub=""):
        raw = self.request(("stats %s\r\n" % sub).encode(), b"END\r\n").decode()
        return dict(l.split(" ", 2)[1:] for l in raw.splitlines() if l.startswith("STAT "))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        if name(self.binary) == "memcached" and PERCORE and self.proc.poll() is None:
            # the reference's exit is not under test, and memcached takes
            # its next clock tick (0.7 s on average) to act on SIGTERM;
            # tests that check a clean exit call stop() themselves
            self.proc.kill()
            self.proc.wait()
        self.stop()


def run(binary, args, timeout=5):
    argv = [binary] + list(args)
    if name(binary) == "memcached" and os.geteuid() == 0:
        argv += ["-u", "root"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
