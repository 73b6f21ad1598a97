"""memcached's -vv command trace, and `verbosity` changing it at run time:
the same commands, one at a time, to memcached and percore; the trace lines
on stderr must be the same (descriptor numbers and the version masked)."""
import os
import re
import time

import pytest

from conftest import MEMCACHED

COMMANDS = [b"set foo 0 0 3\r\nabc\r\n", b"get foo bar\r\n", b"gets foo\r\n",
            b"delete nope\r\n", b"incr foo 1\r\n", b"bogus\r\n", b"mn\r\n",
            b"mg foo v\r\n", b"stats settings\r\n", b"touch foo 10\r\n",
            b"add foo 0 0 1\r\nx\r\n", b"ms k 1 T0\r\ny\r\n", b"get k\r\n",
            b"mg k s v\r\n", b"md k q\r\n", b"verbosity 2\r\n", b"flush_all\r\n"]


def trace_of(srv, commands, close=True):
    """One command at a time: each reply (all but a quiet-mode meta command
    have one) is in before the next is sent, so a busy machine cannot batch
    two commands into one read and trace them in a different order."""
    c = srv.conn()
    for cmd in commands:
        c.send(cmd)
        if not cmd.rstrip().endswith(b" q"):
            c._fill(5)
        c.read_available(0.05)
    if close:
        c.close()
    # the trace is written by the server's own threads: wait until it stops growing
    text, deadline = None, time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = srv.stderr_text()
        if now == text:
            break
        text = now
    lines = []
    for line in text.splitlines():
        if not re.match(r"^([<>]\d+ |\d+: )", line) or "server listening" in line \
                or "send buffer" in line:
            continue
        line = re.sub(r"^([<>])\d+", r"\1FD", line)
        line = re.sub(r"^\d+:", "FD:", line)
        lines.append(line.replace("VERSION 1.6.18-percore-0.1.0", "VERSION 1.6.18"))
    return lines, c


def servers(server_factory, extra):
    if not os.path.exists(MEMCACHED):
        pytest.skip("memcached not installed")
    return (server_factory(binary=MEMCACHED, threads=2, extra=extra),
            server_factory(threads=4, extra=extra))


def test_vv_trace_like_memcached(server_factory):
    ref, srv = servers(server_factory, ["-vv"])
    want, _ = trace_of(ref, COMMANDS)
    got, _ = trace_of(srv, COMMANDS)
    assert got == want
    assert "<FD connection closed." in got and ">FD sending key foo" in got


def test_verbosity_command_starts_and_stops_the_trace(server_factory):
    ref, srv = servers(server_factory, [])
    cmds = [b"get a\r\n", b"verbosity 2\r\n", b"get b\r\n", b"verbosity 0\r\n", b"get c\r\n"]
    want, _ = trace_of(ref, cmds)
    got, _ = trace_of(srv, cmds)
    assert got == want
    assert got == [">FD OK", "<FD get b", ">FD END", "<FD verbosity 0"]
    with srv.conn() as c:
        c.send(b"verbosity 1\r\nstats settings\r\n")
        assert b"STAT verbosity 1\r\n" in c.read_until(b"END\r\n")
