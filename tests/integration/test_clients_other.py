"""Real clients in other languages, each driven through every command it
has by a script in tests/integration/clients/, against memcached and the
server under test side by side: the two runs must print the same lines.

  Ruby  Dalli 3.0 (Debian ruby-dalli)        binary protocol, quiet
        (setq/getkq/...) pipelines, SASL PLAIN; its meta mode only with
        Dalli >= 3.2 (Debian 12 has 3.0.6: skipped)
  Perl  Cache::Memcached::Fast 0.28 (Debian libcache-memcached-fast-perl)
        text protocol: gets/cas, gat/gats, noreply, nowait pipelining;
        over TCP and over UNIX sockets (-s)
  Perl  Cache::Memcached 1.30 (Debian libcache-memcached-perl)
        text protocol, its stats calls
  Node  memjs 1.3 (npm, not in Debian: scripts/deps.sh test installs it
        under build/npm when npm is there) binary protocol, requests
        matched to replies by opaque; SASL PLAIN

A client that is not installed is skipped. Each script run is bounded
(SCRIPT_TIMEOUT); the two servers' runs go in parallel, so a script's
sleeps (expiry) are paid once. With PERCORE_SERVER=memcached both sides
are memcached and the fixed expectations below still hold.
Run: /usr/bin/python3 -m pytest -q tests/integration/test_clients_other.py
"""
import os
import shutil
import subprocess

import pytest

from conftest import IS_MEMCACHED, MEMCACHED, REPO, SERVER_BIN, env_server_args, reference_pair
from flag_util import Proc
from test_auth import SASLPASSWD2, AuthServer

pytestmark = pytest.mark.time_limit(120)

CLIENTS = REPO / "tests" / "integration" / "clients"
SCRIPT_TIMEOUT = 60
USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def pair():
    yield from reference_pair()


def _probe(argv, env=None):
    """stdout of a quick check command, or None when it fails."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def need(interpreter, argv, what):
    if not shutil.which(interpreter):
        pytest.skip(f"{interpreter} not installed ({what})")
    version = _probe(argv, env=client_env())
    if version is None:
        pytest.skip(f"{what} not installed")
    return version


def client_env():
    """memjs is looked up in NODE_PATH and in build/npm (scripts/deps.sh)."""
    env = dict(os.environ)
    paths = [p for p in env.get("NODE_PATH", "").split(os.pathsep) if p]
    env["NODE_PATH"] = os.pathsep.join(paths + [str(REPO / "build" / "npm" / "node_modules")])
    return env


def dalli_version():
    return need("ruby", ["ruby", "-e", 'require "dalli"; print Dalli::VERSION'],
                "Ruby's Dalli (Debian ruby-dalli)")


def run_both(servers, argv_for):
    """Run argv_for(server) against each server (or socket path) at once;
    their stdouts."""
    procs = []
    for srv in servers:
        procs.append(subprocess.Popen(argv_for(srv), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=client_env()))
    outs = []
    for srv, p in zip(servers, procs):
        try:
            out, err = p.communicate(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.kill()
            pytest.fail(f"client script ran past {SCRIPT_TIMEOUT} s: {argv_for(srv)}")
        assert p.returncode == 0, f"{argv_for(srv)} exit {p.returncode}:\n{err[-3000:]}"
        outs.append(out)
    return outs


def lines(out):
    """[(label, result)] from a script's "label: result" lines."""
    return [tuple(l.split(": ", 1)) if ": " in l else (l, "") for l in out.splitlines()]


def assert_same(want, got, expect):
    """got (the server under test) prints what want (memcached) does, and
    both hold the fixed expectations (label -> result)."""
    w, g = lines(want), lines(got)
    diff = [f"  {a[0]}:\n    memcached: {a[1]}\n    server:    {b[1]}"
            for a, b in zip(w, g) if a != b]
    assert not diff and len(w) == len(g), \
        "differs from memcached:\n" + "\n".join(diff) + \
        (f"\n  ({len(w)} lines vs {len(g)})" if len(w) != len(g) else "")
    have = dict(g)
    wrong = {k: (v, have.get(k)) for k, v in expect.items() if have.get(k) != v}
    assert not wrong, f"unexpected results (want, got): {wrong}"


def script(name):
    return str(CLIENTS / name)


# ---- Ruby: Dalli ---------------------------------------------------------------

DALLI_EXPECT = {
    "get": '"hello"',
    "add existing": "false",
    "get after append": '"oh hi there"',
    "incr new with initial": "100",
    "incr 64-bit wrap": "1",
    "incr non-numeric": '"Dalli::DalliError: Response error 6: Incr/decr on a non-numeric value"',
    "set_cas stale": "false",
    "get after cas": '"v2!"',
    "get object": '{"k"=>[1, 2.5, "x"], :sym=>nil}',
    "binary value": "true",
    "binary keys": "[[true, true, true, true]]",
    "get 500 KB": "true",
    "set 1 MB + 1": '"Dalli::DalliError: Response error 3: Value too large"',
    "server still answers": '"v2!"',
    "get_multi 1000": "[1000, true]",
    "get_multi 300 x 100 KB": "[300, true]",
    "multi quiet ops": '[["q1", "one"]]',
    "get after expiry": "[]",
    "touched survives": '"later"',
    "gat survives": '"later"',
    "month survives": '"m"',
    "stats keys": "[]",
    "get after flush": "0",
}


@pytest.mark.parametrize("mode", ["binary", "meta"])
def test_dalli(pair, mode):
    version = dalli_version()
    if mode == "meta" and tuple(int(x) for x in version.split(".")[:2]) < (3, 2):
        pytest.skip(f"Dalli {version} has no meta protocol mode (3.2 and later)")
    want, got = run_both(pair, lambda s: ["ruby", script("dalli_ops.rb"), str(s.port), mode])
    assert_same(want, got, DALLI_EXPECT)


@pytest.fixture
def sasl_servers(tmp_path, monkeypatch, server_factory):
    """memcached and the server under test with -S, PLAIN allowed, alice
    in a sasldb made by Cyrus's own tool (as test_auth.py does)."""
    if not os.path.exists(SASLPASSWD2):
        pytest.skip("saslpasswd2 (sasl2-bin) not installed")
    db = tmp_path / "sasldb2"
    subprocess.run([SASLPASSWD2, "-p", "-c", "-f", str(db), "-a", "memcached", USER],
                   input=PASSWORD.encode(), check=True, timeout=10)
    (tmp_path / "memcached.conf").write_text(f"mech_list: plain scram-sha-256\nsasldb_path: {db}\n")
    monkeypatch.setenv("SASL_CONF_PATH", str(tmp_path))
    return (server_factory(cls=AuthServer, binary=MEMCACHED, threads=2, extra=["-S"]),
            server_factory(cls=AuthServer, threads=4, extra=["-S"]))


def test_dalli_sasl(sasl_servers):
    dalli_version()
    want, got = run_both(sasl_servers,
                         lambda s: ["ruby", script("dalli_sasl.rb"), str(s.port), USER, PASSWORD])
    assert_same(want, got, {
        "get": '"v"',
        "get_multi": '[["k", "v"], ["n", "10"]]',
        "wrong password": '"Dalli::DalliError: Error authenticating: 0x20"',
        "no credentials": '"Dalli::DalliError: Response error 32: Authentication required"',
        "still logged in": '"v"',
    })


# ---- Perl: Cache::Memcached::Fast and Cache::Memcached -------------------------

def perl_module(module, package):
    return need("perl", ["perl", f"-M{module}", "-e", f"print ${module}::VERSION"],
                f"Perl's {module} (Debian {package})")


FAST_EXPECT = {
    "get": '"hello"',
    "add existing": '""',
    "incr big delta": '"18446744073709551615"',
    "incr_multi": '[2,"","0E0"]',
    "cas stale": '""',
    "get_multi after cas_multi": '{"a" => "v4","n" => 7}',
    "touch_multi": '[1,"",1]',
    "gats_multi": '{"a" => [1,"v4"]}',
    "value with CRLF END": r'"x\r\nEND\r\nVALUE y 0 1\r\n"',
    "get 500 KB": "1",
    "set 1 MB + 1": "undef",
    "server still answers": '"v4"',
    "get_multi 2000": "[2000,2000]",
    "noreply results": '{"nr1" => "-one+","nrn" => 13}',
    "noreply flush_all": "1",
    "noreply many": "250",
    "nowait many": "400",
    "get after expiry": "undef",
    "gat survives": '"later"',
    "get after flush": "0",
}


def test_cache_memcached_fast(pair):
    perl_module("Cache::Memcached::Fast", "libcache-memcached-fast-perl")
    want, got = run_both(pair, lambda s: ["perl", script("cache_memcached_fast.pl"), str(s.port)])
    assert_same(want, got, FAST_EXPECT)


def test_cache_memcached_fast_unix_socket(tmp_path):
    """The same over UNIX sockets (-s). It found percore's io_uring backend
    closing the connection at the first reply over 64 KiB: zero-copy sends
    are refused on UNIX sockets (test_unix_socket.py has the raw check)."""
    perl_module("Cache::Memcached::Fast", "libcache-memcached-fast-perl")
    paths = [str(tmp_path / "ref.sock"), str(tmp_path / "sut.sock")]
    with Proc(MEMCACHED, ["-s", paths[0], "-t", "2"], unix=paths[0]), \
            Proc(SERVER_BIN, ["-s", paths[1], "-t", "4", *env_server_args(IS_MEMCACHED)],
                 unix=paths[1]):
        want, got = run_both(paths, lambda p: ["perl", script("cache_memcached_fast.pl"), p])
    assert_same(want, got, FAST_EXPECT)


def test_cache_memcached(pair):
    perl_module("Cache::Memcached", "libcache-memcached-perl")
    want, got = run_both(pair, lambda s: ["perl", script("cache_memcached.pl"), str(s.port)])
    assert_same(want, got, {
        "get after append": '"oh hi there"',
        "decr below zero": "0",
        "get ref": '{"k" => [1,2,"x"]}',
        "get compressed": "1",
        "set 1 MB + 1": '""',
        "get_multi 1000": "[1000,1000]",
        "get after expiry": "undef",
        "stats misc keys": "[]",
        "stats total keys": "[]",
        "get after flush": "0",
    })


# ---- Node: memjs ---------------------------------------------------------------

def memjs_version():
    return need("node", ["node", "-e", 'process.stdout.write(require("memjs/package.json").version)'],
                "Node's memjs (npm; scripts/deps.sh test installs it under build/npm)")


def test_memjs(pair):
    memjs_version()
    want, got = run_both(pair, lambda s: ["node", script("memjs_ops.js"), str(s.port)])
    assert_same(want, got, {
        "add existing": "false",
        "increment new with initial": '{"success":true,"value":100}',
        "increment non-numeric": '"error: MemJS INCREMENT: Incr/Decr on non-numeric value"',
        "binary value": "true",
        "32-bit flags": '"deadbeef"',
        "get 500 KB": "true",
        "set 1 MB + 1": '"error: MemJS SET: Value too large"',
        "500 concurrent gets": "true",
        "get after expiry": '{"value":null,"flags":null}',
        "touched survives": '"later"',
        "stats": "true",
    })


def test_memjs_sasl(sasl_servers):
    memjs_version()
    want, got = run_both(sasl_servers,
                         lambda s: ["node", script("memjs_ops.js"), str(s.port), USER, PASSWORD])
    assert_same(want, got, {
        "get": '"v"',
        "increment": '{"success":true,"value":10}',
        "wrong password": '"error: Memcached server authentication failed!"',
        "still logged in": '"v"',
    })
