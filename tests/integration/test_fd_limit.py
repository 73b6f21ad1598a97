"""Descriptor exhaustion (issue 12): with a soft and hard RLIMIT_NOFILE of 64
that percore cannot raise (the server runs as an unprivileged user, so the
fallback path runs), -c 100 and 200 clients at once, every client gets an
answer (served) or `ERROR Too many open connections`, nobody hangs, stderr
stays short (no log flood, no spinning), and the server keeps serving.
Run on the epoll and io_uring backends (the multishot accept must stop
re-arming during the back-off).
Run: /usr/bin/python3 -m pytest tests/integration/test_fd_limit.py
"""
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import HOST, SERVER_BIN, IS_MEMCACHED, free_port

pytestmark = pytest.mark.percore_only   # memcached exits when it cannot raise the limit

NOBODY = 65534
TOO_MANY = b"ERROR Too many open connections\r\n"


def _limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    if os.geteuid() == 0:
        # Unprivileged: the hard limit cannot be raised (no CAP_SYS_RESOURCE).
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


_binary = SERVER_BIN


@pytest.fixture(scope="module", autouse=True)
def nobody_can_run_the_binary():
    """The server runs as nobody, who may not be able to reach a checkout in
    a private directory (mktemp -d is 0700): give it a copy it can execute."""
    global _binary
    if os.geteuid() != 0:
        yield
        return
    d = tempfile.mkdtemp(prefix="percore-fd-")
    os.chmod(d, 0o755)
    _binary = os.path.join(d, "percore")
    shutil.copy(SERVER_BIN, _binary)
    os.chmod(_binary, 0o755)
    try:
        yield
    finally:
        _binary = SERVER_BIN
        shutil.rmtree(d, ignore_errors=True)


def start(io, extra=()):
    port = free_port()
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([_binary, "-p", str(port), "-l", HOST, "-U", "0", "-t", "2",
                             "-c", "100", "--io=" + io, "-v", *extra],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                            preexec_fn=_limit_fds)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, _text(err)
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc, port, err
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start: " + _text(err))


def _text(f):
    f.seek(0)
    return f.read().decode("utf-8", "replace")


def ask(s):
    """One line of answer to `version`: served or refused, never silence."""
    s.settimeout(5)
    try:
        s.sendall(b"version\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass    # refused and closed before we wrote: the error is still queued
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = s.recv(256)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("io", ["epoll", "uring"])
def test_out_of_descriptors_every_client_answered(io):
    proc, port, err = start(io)
    socks = []
    try:
        for _ in range(200):
            socks.append(socket.create_connection((HOST, port), timeout=5))
        answers = [ask(s) for s in socks]
        served = sum(a.startswith(b"VERSION ") for a in answers)
        refused = sum(a == TOO_MANY for a in answers)
        other = [a for a in answers if not a.startswith(b"VERSION ") and a != TOO_MANY]
        assert not other, "clients left without an answer: %d, e.g. %r" % (len(other), other[:3])
        assert served >= 20 and refused >= 50, (served, refused)

        # Existing connections are still served while others are refused.
        live = [s for s, a in zip(socks, answers) if a.startswith(b"VERSION ")]
        for s in live[:5]:
            s.sendall(b"set k 0 0 1\r\nv\r\nget k\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += s.recv(256)
            assert buf == b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
        for s in socks:
            s.close()
        socks = []
        # Descriptors come back: new clients are served again.
        time.sleep(0.3)
        for _ in range(10):
            with socket.create_connection((HOST, port), timeout=5) as s:
                assert ask(s).startswith(b"VERSION "), "not serving after the storm"
        assert proc.poll() is None
        text = _text(err)
        lines = text.count("\n")
        assert lines < 100, "stderr flooded: %d lines\n%s" % (lines, text[-3000:])
        assert "Too many open files" in text
        assert "hard limit allows 64" in text
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        err.close()


def test_soft_limit_raised_to_fit_conn_limit():
    """With room under the hard limit, the soft limit is raised for -c and
    the raise is logged at -v."""
    port = free_port()
    err = tempfile.TemporaryFile()

    def soft_64():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096))

    proc = subprocess.Popen([SERVER_BIN, "-p", str(port), "-l", HOST, "-U", "0", "-t", "2",
                             "-c", "2000", "-v"], stdin=subprocess.DEVNULL, stdout=err,
                            stderr=err, preexec_fn=soft_64)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "listening" not in _text(err):
            time.sleep(0.05)
        with open("/proc/%d/limits" % proc.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        soft = int(line.split()[3])
        assert soft >= 2000, line
        assert "raised the limit from 64" in _text(err)
    finally:
        proc.terminate()
        proc.wait(10)
        err.close()
