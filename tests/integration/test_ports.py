"""Ports chosen by the kernel and start-up exit codes, side by side with
memcached 1.6.18: -p -1 / -U -1 (and -l addr:0) listen on free ports, and
MEMCACHED_PORT_FILENAME names a file that receives them once bound ("TCP
INET: <port>" lines, then the UDP ones); a port that cannot be bound exits
71 (EX_OSERR), a bad value exits 64 (EX_USAGE).
Run: /usr/bin/python3 -m pytest tests/integration/test_ports.py
"""
import os
import re
import socket
import time

import pytest

from conftest import MEMCACHED
from flag_util import BINARIES, PERCORE, Proc, name, run

EXIT_USAGE, EXIT_OSERR = 64, 71
LINE = re.compile(r"^(TCP|UDP) (INET6?): (\d+)$")


@pytest.fixture(params=BINARIES, ids=name)
def binary(request):
    return request.param


def started(binary, args, path, monkeypatch):
    """The server with MEMCACHED_PORT_FILENAME=path; (proc, [(proto, family,
    port)]) once the file has appeared (it is renamed into place whole)."""
    monkeypatch.setenv("MEMCACHED_PORT_FILENAME", str(path))
    p = Proc(binary, args + ["-t", "2"], wait=False)
    deadline = time.monotonic() + 10
    while not path.exists():
        assert p.proc.poll() is None, (p.argv, p.proc.returncode, p.stderr())
        assert time.monotonic() < deadline, (p.argv, "no port file", p.stderr())
        time.sleep(0.02)
    lines = path.read_text().splitlines()
    assert all(LINE.match(l) for l in lines), lines
    got = [LINE.match(l).groups() for l in lines]
    ports = [(proto, fam, int(port)) for proto, fam, port in got]
    tcp = [port for proto, fam, port in ports if proto == "TCP" and fam == "INET"]
    if tcp:
        p.tcp = ("127.0.0.1", tcp[0])
        p.wait_ready()
    return p, ports


def udp_version(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(b"\x00\x07\x00\x00\x00\x01\x00\x00version\r\n", ("127.0.0.1", port))
        data = s.recv(2048)
    finally:
        s.close()
    return data[:2], data[8:16]


def shape(ports):
    return [(proto, fam) for proto, fam, _ in ports]


CASES = {
    "tcp": ["-p", "-1", "-U", "0", "-l", "127.0.0.1"],
    "tcp+udp": ["-p", "-1", "-U", "-1", "-l", "127.0.0.1"],
    "udp-only": ["-p", "0", "-U", "-1", "-l", "127.0.0.1"],
    "two-addresses": ["-p", "-1", "-U", "0", "-l", "127.0.0.1", "-l", "127.0.0.1:0"],
    "fixed": ["-p", "PORT", "-U", "0", "-l", "127.0.0.1"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_port_file_like_memcached(case, tmp_path, monkeypatch):
    if not os.path.exists(MEMCACHED) or PERCORE is None:
        pytest.skip("needs memcached and percore")
    shapes = []
    for binary in (MEMCACHED, PERCORE):
        args = list(CASES[case])
        if "PORT" in args:
            from conftest import free_port
            args[args.index("PORT")] = str(free_port())
        path = tmp_path / ("ports." + name(binary))
        p, ports = started(binary, args, path, monkeypatch)
        with p:
            assert all(0 < port < 65536 for _, _, port in ports), ports
            if case == "fixed":
                assert ports == [("TCP", "INET", int(args[1]))]
            if case == "two-addresses":
                assert ports[0][2] != ports[1][2]   # a free port of its own each
            for proto, fam, port in ports:
                if proto == "TCP":
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.sendall(b"version\r\n")
                        assert s.recv(64).startswith(b"VERSION ")
                else:
                    assert udp_version(port) == (b"\x00\x07", b"VERSION ")
            if any(proto == "TCP" for proto, _, _ in ports):
                st = p.stats("settings")
                assert (st["tcpport"], st["udpport"]) == (args[1], args[3])
        assert not os.path.exists(str(path) + ".lck")
        shapes.append(shape(ports))
    assert shapes[0] == shapes[1]


def test_no_port_file_with_a_unix_socket(binary, tmp_path, monkeypatch):
    """memcached writes none when -s replaces the network listeners."""
    monkeypatch.setenv("MEMCACHED_PORT_FILENAME", str(tmp_path / "ports"))
    sock = str(tmp_path / "mc.sock")
    with Proc(binary, ["-s", sock, "-p", "-1", "-t", "2"], unix=sock):
        pass
    assert not (tmp_path / "ports").exists()


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_port_in_use_exits_71(binary, udp):
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    holder = socket.socket(socket.AF_INET, kind)
    holder.bind(("127.0.0.1", 0))
    if not udp:
        holder.listen()
    port = str(holder.getsockname()[1])
    try:
        args = ["-p", "0", "-U", port] if udp else ["-p", port, "-U", "0"]
        r = run(binary, args + ["-l", "127.0.0.1", "-t", "2"])
        assert r.returncode == EXIT_OSERR, (r.returncode, r.stderr)
        assert "Address already in use" in r.stderr
    finally:
        holder.close()


def test_unix_socket_that_cannot_be_created_exits_71(binary, tmp_path):
    r = run(binary, ["-s", str(tmp_path / "missing" / "mc.sock"), "-t", "2"])
    assert r.returncode == EXIT_OSERR, (r.returncode, r.stderr)


@pytest.mark.parametrize("args", [["-p", "70000"], ["-U", "70000"], ["-I", "10"]])
def test_bad_value_exits_64(binary, args):
    r = run(binary, args + ["-l", "127.0.0.1"])
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stderr)


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_port_below_minus_one_is_a_usage_error():
    """memcached hands -p -2 to getaddrinfo and exits 71; -1 is the only
    negative port either server means."""
    r = run(PERCORE, ["-p", "-2"])
    assert r.returncode == EXIT_USAGE and "invalid port (-p)" in r.stderr, r


@pytest.mark.parametrize("args", [["--bogus"], ["-z"]])
def test_unknown_option_or_missing_value(binary, args):
    """memcached exits 1 for what getopt refuses (and 64 for most bad
    values); percore exits 64 for every usage error, so that systemd's
    RestartPreventExitStatus=64 covers a typo too (docs/protocols.md)."""
    r = run(binary, args)
    assert r.returncode == (1 if name(binary) == "memcached" else EXIT_USAGE), \
        (r.returncode, r.stderr)
