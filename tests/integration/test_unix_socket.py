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
