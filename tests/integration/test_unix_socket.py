"""UNIX domain sockets (-s PATH, -a MASK), side by side with memcached where
it behaves the same: every worker serves the socket with every protocol,
pymemcache and pylibmc connect by path, TCP is off, the file gets the -a
permissions, a stale file is replaced, a live one is left alone, and the
file is removed at exit (memcached leaves it: percore-only check).
Run: /usr/bin/python3 -m pytest tests/integration/test_unix_socket.py
"""
import os
import socket
import stat

import pytest

from conftest import free_port
from flag_util import BINARIES, PERCORE, Proc, name, run


@pytest.fixture(params=BINARIES, ids=name)
def binary(request):
    return request.param


def test_unix_socket_serves_clients_and_turns_tcp_off(binary, tmp_path):
    import pylibmc
    from pymemcache.client.base import Client
    path = str(tmp_path / "mc.sock")
    port = free_port()
    with Proc(binary, ["-s", path, "-p", str(port), "-t", "2"], unix=path) as srv:
        c = Client(path, connect_timeout=5, timeout=5)
        for i in range(200):            # keys of every worker: forwarding works
            c.set("k%d" % i, b"v%d" % i)
        assert all(c.get("k%d" % i) == b"v%d" % i for i in range(200))
        c.close()
        for binary_proto in (False, True):
            mc = pylibmc.Client([path], binary=binary_proto)
            mc.set("pl", "x" * 1000)
            assert mc.get("pl") == "x" * 1000
            assert mc.incr("n", 1) if mc.add("n", "5") else True
            mc.disconnect_all()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert srv.stats("settings")["domain_socket"] == path


def test_stats_conns_names_unix_sockets_like_memcached(binary, tmp_path):
    """memcached prints a UNIX listener as unix:PATH and its clients, which
    have no address, as ?:<AF 0> with listen_addr unix:PATH. (memcached
    keeps only 26 bytes of its listener's path, so the path here is short:
    percore prints the whole path.)"""
    import re
    import shutil
    import tempfile
    short = tempfile.mkdtemp(prefix="u", dir="/tmp")
    path = os.path.join(short, "s")
    try:
        with Proc(binary, ["-s", path, "-t", "2"], unix=path) as srv:
            raw = srv.request(b"stats conns\r\n", b"END\r\n").decode()
    finally:
        shutil.rmtree(short, ignore_errors=True)
    blocks = {}
    for fd, k, v in re.findall(r"STAT (\d+):(\S+) ([^\r\n]*)", raw):
        blocks.setdefault(fd, {})[k] = v
    listeners = [b for b in blocks.values() if b["state"] == "conn_listening"]
    mine = [b for b in blocks.values() if b["state"] == "conn_parse_cmd"]
    assert listeners and all(b["addr"] == "unix:" + path for b in listeners), raw
    assert mine == [{"addr": "?:<AF 0>", "listen_addr": "unix:" + path,
                     "state": "conn_parse_cmd", "secs_since_last_cmd": "0"}], raw


@pytest.mark.parametrize("mask,mode", [(None, 0o700), ("770", 0o770), ("666", 0o666)])
def test_unix_mask_sets_file_permissions(binary, tmp_path, mask, mode):
    path = str(tmp_path / "mc.sock")
    args = ["-s", path] + (["-a", mask] if mask else [])
    with Proc(binary, args, unix=path):
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == mode


def test_stale_socket_file_is_replaced(binary, tmp_path):
    path = str(tmp_path / "mc.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)          # a socket file with no listener: what a crash leaves
    s.close()
    with Proc(binary, ["-s", path], unix=path) as srv:
        assert srv.request(b"version\r\n").startswith(b"VERSION ")


@pytest.mark.percore_only
@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_live_socket_and_other_files_are_left_alone(tmp_path):
    path = str(tmp_path / "mc.sock")
    with Proc(PERCORE, ["-s", path, "-t", "1"], unix=path) as first:
        r = run(PERCORE, ["-s", path, "-t", "1"])
        assert r.returncode == 71, r   # memcached's EX_OSERR
        assert "cannot listen on UNIX socket" in r.stderr
        assert first.request(b"version\r\n").startswith(b"VERSION ")
    regular = tmp_path / "file"
    regular.write_text("keep me")
    r = run(PERCORE, ["-s", str(regular)])
    assert r.returncode == 71 and regular.read_text() == "keep me"


@pytest.mark.percore_only
@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
@pytest.mark.parametrize("io", ["epoll", "uring"])
def test_socket_file_removed_at_exit_and_every_worker_accepts(tmp_path, io):
    path = str(tmp_path / "mc.sock")
    srv = Proc(PERCORE, ["-s", path, "-t", "2", "--io=" + io], unix=path)
    try:
        conns = [srv.connect() for _ in range(16)]
        for s in conns:
            s.sendall(b"version\r\n")
            assert s.recv(64).startswith(b"VERSION ")
        st = srv.stats()
        per_worker = [int(st["worker_%d_curr_connections" % i]) for i in range(2)]
        assert sum(per_worker) >= 16
        for s in conns:
            s.close()
    finally:
        assert srv.stop() == 0
    assert not os.path.exists(path), "socket file left behind"


def _large_replies_over_unix_socket(srv):
    """Replies over the io_uring zero-copy threshold (--zc-send-min, 64 KiB)
    by text get, binary get (its own connection: the protocol is chosen by
    a connection's first byte) and a multi-get adding up to one; then the
    same connections still answer."""
    import struct
    text, binary = srv.connect(), srv.connect()

    def until(s, end=None, n=None):
        buf = b""
        while not (buf.endswith(end) if n is None else len(buf) >= n):
            chunk = s.recv(1 << 20)
            assert chunk, f"connection closed after {len(buf)} bytes"
            buf += chunk
        return buf
    try:
        for size in (70_000, 100_000, 1_000_000):
            val = os.urandom(size // 2).hex().encode()
            text.sendall(b"set big 0 0 %d\r\n%s\r\n" % (size, val))
            assert until(text, b"\r\n") == b"STORED\r\n"
            text.sendall(b"get big\r\n")
            assert until(text, b"END\r\n") == b"VALUE big 0 %d\r\n%s\r\nEND\r\n" % (size, val)
            binary.sendall(struct.pack(">BBHBBHIIQ", 0x80, 0x00, 3, 0, 0, 0, 3, 7, 0) + b"big")
            r = until(binary, n=24 + 4 + size)
            assert r[1] == 0x00 and r[6:8] == b"\0\0" and r[28:] == val
        text.sendall(b"".join(b"set m%d 0 0 4000\r\n%s\r\n" % (i, b"m" * 4000) for i in range(40)))
        assert until(text, b"STORED\r\n" * 40) == b"STORED\r\n" * 40
        text.sendall(b"get " + b" ".join(b"m%d" % i for i in range(40)) + b"\r\n")
        assert until(text, b"END\r\n").count(b"VALUE ") == 40
        text.sendall(b"version\r\n")
        assert until(text, b"\r\n").startswith(b"VERSION ")
        binary.sendall(struct.pack(">BBHBBHIIQ", 0x80, 0x0A, 0, 0, 0, 0, 0, 9, 0))   # noop
        assert until(binary, n=24)[:2] == b"\x81\x0a"
    finally:
        text.close()
        binary.close()


def test_large_replies_over_unix_socket(binary, tmp_path):
    """Cache::Memcached::Fast over a UNIX socket lost every value over 64 KiB
    with percore's io_uring backend: the zero-copy send it uses for large
    replies is refused on UNIX sockets (EOPNOTSUPP) and the connection was
    closed. Now such a connection falls back to plain sends."""
    path = str(tmp_path / "mc.sock")
    with Proc(binary, ["-s", path, "-t", "2"], unix=path) as srv:
        _large_replies_over_unix_socket(srv)


@pytest.mark.percore_only
@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
@pytest.mark.parametrize("io", ["epoll", "uring"])
def test_large_replies_over_unix_socket_each_backend(tmp_path, io):
    path = str(tmp_path / "mc.sock")
    with Proc(PERCORE, ["-s", path, "-t", "2", "--io=" + io, "--zc-send-min", "16k"],
              unix=path) as srv:
        _large_replies_over_unix_socket(srv)
        # A refused zero-copy send is not counted as one.
        with srv.connect() as s:
            s.sendall(b"stats\r\n")
            got = b""
            while not got.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                assert chunk
                got += chunk
        st = dict(l.split(b" ")[1:3] for l in got.split(b"\r\n") if l.startswith(b"STAT "))
        assert int(st.get(b"uring_zc_sends", b"0")) == 0, st.get(b"uring_zc_sends")
