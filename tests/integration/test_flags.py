"""memcached 1.6's command-line flags and -o sub-options (issue 12), side by
side with memcached where it behaves the same: an existing memcached command
line starts percore; flags percore has a knob for change that knob; the
others are accepted and, at -v, say once why they have no effect; a bad
value exits 64 naming the flag.
Run: /usr/bin/python3 -m pytest tests/integration/test_flags.py
"""
import socket
import struct
import time

import pytest

from conftest import free_port
from flag_util import BINARIES, PERCORE, Proc, name, run

EXIT_USAGE = 64

# Every sub-option memcached 1.6.18 (Debian 12) accepts, with a valid value.
# A "no_" form comes before its positive one: memcached applies them in order
# and checks the result (temporary_ttl needs lru_maintainer on).
SUBOPTS = [
    "no_modern", "modern", "no_maxconns_fast", "maxconns_fast", "hashpower=16", "no_hashexpand", "no_slab_reassign",
    "slab_reassign", "no_slab_automove", "slab_automove=1", "slab_automove_ratio=0.8",
    "slab_automove_window=30", "slab_automove_freeratio=0.01", "slab_sizes=96-192-384",
    "slab_chunk_max=512", "no_chunked_items", "tail_repair_time=10", "hash_algorithm=murmur3",
    "no_lru_crawler", "lru_crawler", "lru_crawler_sleep=100", "lru_crawler_tocrawl=0",
    "no_lru_maintainer", "lru_maintainer", "hot_lru_pct=20", "warm_lru_pct=40",
    "hot_max_factor=0.2", "warm_max_factor=2.0", "temporary_ttl=61", "idle_timeout=5",
    "watcher_logbuf_size=256", "worker_logbuf_size=64", "track_sizes", "no_inline_ascii_resp",
    "inline_ascii_resp", "no_drop_privileges", "drop_privileges",
    "read_buf_mem_limit=0", "sock_cookie_id=1", "ext_page_size=64", "ext_wbuf_size=4",
    "ext_threads=1", "ext_item_size=512", "ext_item_age=10", "ext_low_ttl=0",
    "ext_recache_rate=2000", "ext_max_frag=0.8", "ext_drop_unread", "ssl_verify_mode=0",
    "ssl_min_version=2", "ssl_session_cache",
]
# ssl_* take effect with -Z (tests/integration/test_tls.py).
NO_EFFECT = [s.split("=")[0] for s in SUBOPTS
             if s.split("=")[0] not in ("maxconns_fast", "idle_timeout") and not s.startswith("ssl_")]


@pytest.fixture(params=BINARIES, ids=name)
def binary(request):
    return request.param


def tcp(binary, *args):
    port = free_port()
    binary_only = "binary" in args or "--protocol=binary" in args
    return Proc(binary, ["-p", str(port), "-l", "127.0.0.1", "-U", "0", "-t", "2", *args],
                tcp=("127.0.0.1", port), probe=not binary_only)


def test_every_suboption_in_one_command_line_starts(binary):
    with tcp(binary, "-o", ",".join(SUBOPTS)) as srv:
        assert srv.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        assert srv.request(b"get k\r\n", b"END\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_no_effect_suboptions_say_why_once_at_v():
    with tcp(PERCORE, "-v", "-o", ",".join(SUBOPTS), "-o", "modern") as srv:
        err = srv.stderr()
    for opt in NO_EFFECT:
        assert err.count("info: %s: accepted, no effect: " % opt) == 1, (opt, err)
    with tcp(PERCORE, "-o", "modern,hashpower=20") as srv:
        assert "no effect" not in srv.stderr()


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_memcached_test_suite_command_lines_start(tmp_path):
    """memcached's Perl suite (t/lib/MemcachedTest.pm) starts its server as
    `ARGS [-u root] -o relaxed_privileges` plus `-p P -U U` when ARGS has -l,
    else `-s SOCKET`; relaxed_privileges exists only in memcached-debug, so
    Debian's memcached refuses it and there is nothing to compare with."""
    port, udp = free_port(), free_port()
    with Proc(PERCORE, ["-o", "idle_timeout=3", "-l", "127.0.0.1", "-u", "root", "-o",
                        "relaxed_privileges", "-p", str(port), "-U", str(udp)],
              tcp=("127.0.0.1", port)) as srv:
        assert srv.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    sock = str(tmp_path / "memcachetest.0")
    with Proc(PERCORE, ["-m", "128", "-u", "root", "-o", "relaxed_privileges", "-s", sock],
              unix=sock) as srv:
        assert srv.request(b"version\r\n").startswith(b"VERSION ")


@pytest.mark.parametrize("flags", [
    ["-B", "auto"], ["-B", "ascii"], ["-R", "5"], ["-X"], ["-W"], ["-k"], ["-D", "#"],
    ["-L"], ["-f", "1.5"], ["-n", "64"], ["-r"], ["-C"], ["-F"], ["-A"], ["-b", "256"],
    ["-c", "50"], ["-M"], ["-N", "2"], ["--disable-evictions"], ["--max-reqs-per-event=7"],
    ["--protocol=binary"], ["--lock-memory"], ["--disable-dumping"],
    ["--disable-watch"], ["--enable-largepages"], ["--enable-coredumps"],
])
def test_memcached_flags_start(binary, flags):
    with tcp(binary, *flags) as srv:
        if "binary" not in " ".join(flags):
            assert srv.request(b"version\r\n").startswith(b"VERSION ")


@pytest.mark.parametrize("flags,expect", [
    (["-R", "7"], {"reqs_per_event": "7"}),
    (["-B", "ascii"], {"binding_protocol": "ascii"}),
    (["-D", "#"], {"stat_key_prefix": "#", "detail_enabled": "yes"}),
    ([], {"stat_key_prefix": ":", "detail_enabled": "no", "reqs_per_event": "20",
          "binding_protocol": "auto-negotiate", "maxconns_fast": "yes"}),
    (["-X"], {"dump_enabled": "no"}),
    (["-o", "idle_timeout=9"], {"idle_timeout": "9"}),
    (["-o", "no_maxconns_fast"], {"maxconns_fast": "no"}),
])
def test_stats_settings_reflect_flags(binary, flags, expect):
    with tcp(binary, *flags) as srv:
        st = srv.stats("settings")
    for k, v in expect.items():
        assert st.get(k) == v, (k, st.get(k))


def test_idle_timeout_suboption_closes_idle_connections(binary):
    with tcp(binary, "-o", "idle_timeout=1") as srv:
        s = srv.connect(timeout=6)
        s.sendall(b"version\r\n")
        assert s.recv(64).startswith(b"VERSION ")
        t0 = time.monotonic()
        assert s.recv(64) == b""      # closed by the server
        assert time.monotonic() - t0 < 5
        s.close()


def test_listen_with_port_and_p0(binary):
    port, other = free_port(), free_port()
    with Proc(binary, ["-p", str(other), "-U", "0", "-l", "127.0.0.1:%d" % port],
              tcp=("127.0.0.1", port)) as srv:
        assert srv.request(b"version\r\n").startswith(b"VERSION ")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", other), timeout=1).close()
    # -p 0 turns TCP off, a port in -l included, as in memcached.
    srv = Proc(binary, ["-p", "0", "-U", "0", "-l", "127.0.0.1:%d" % port], wait=False)
    try:
        time.sleep(0.5)
        assert srv.proc.poll() is None, srv.stderr()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        srv.stop()


def test_listen_ipv6_bracket_form(binary):
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = free_port()
    with Proc(binary, ["-U", "0", "-l", "[::1]:%d" % port], tcp=("::1", port)) as srv:
        assert srv.request(b"version\r\n").startswith(b"VERSION ")


BIN_VERSION = struct.pack("!BBHBBHIIQ", 0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0)


def test_protocol_ascii_parses_binary_as_text(binary):
    with tcp(binary, "-B", "ascii") as srv:
        assert srv.request(BIN_VERSION + b"\r\n") == b"ERROR\r\n"
        assert srv.request(b"version\r\n").startswith(b"VERSION ")


def test_protocol_binary_refuses_text(binary):
    with tcp(binary, "-B", "binary") as srv:
        with srv.connect() as s:
            s.sendall(BIN_VERSION)
            reply = b""
            while len(reply) < 24:
                reply += s.recv(256)
        assert reply[:2] == b"\x81\x0b"
        s = srv.connect(timeout=3)
        s.sendall(b"get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        assert not data.startswith(b"END") and not data.startswith(b"ERROR")


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_lock_memory_locks_pages():
    with tcp(PERCORE, "-k", "-m", "8") as srv:
        with open("/proc/%d/status" % srv.pid) as f:
            lck = [l for l in f if l.startswith("VmLck:")][0]
        assert int(lck.split()[1]) > 0 or "cannot lock memory" in srv.stderr(), lck


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_memory_file_maps_the_segments(tmp_path):
    # -e is warm restart now (tests/integration/test_warm_restart.py): the
    # segments live in <file>.N, no warning
    with tcp(PERCORE, "-e", str(tmp_path / "mem"), "-t", "1") as srv:
        err = srv.stderr()
        assert (tmp_path / "mem.0").exists()
    assert "no warm restart" not in err, err


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
@pytest.mark.parametrize("args,message", [
    (["-o", "bogus"], "unknown -o sub-option 'bogus'"),
    (["-o", "hashpower=abc"], "invalid value for -o hashpower: 'abc'"),
    (["-o", "hashpower=99"], "invalid value for -o hashpower: '99'"),
    (["-o", "tail_repair_time=5"], "invalid value for -o tail_repair_time"),
    (["-o", "idle_timeout"], "-o idle_timeout needs a value"),
    (["-o", "hash_algorithm=md5"], "invalid -o hash_algorithm 'md5'"),
    (["-B", "json"], "invalid protocol (-B) 'json'"),
    (["-a", "999"], "invalid UNIX socket mask (-a) '999'"),
    (["-D", "ab"], "invalid stats prefix delimiter (-D) 'ab'"),
    (["-R", "0"], "invalid requests per event (-R)"),
    (["-f", "0.5"], "invalid slab growth factor (-f)"),
    (["-l", "127.0.0.1:99999"], "invalid port in listen address (-l)"),
    (["-l", "[::1"], "invalid listen address '[::1' (-l)"),
    (["-Y", "/etc/passwd", "-B", "binary"], "You cannot allow the BINARY protocol while using ascii"),
])
def test_bad_values_exit_64_naming_the_flag(args, message):
    r = run(PERCORE, args)
    assert r.returncode == EXIT_USAGE, (args, r.returncode, r.stderr)
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["-o", "bogus"], ["-o", "hashpower=abc"], ["-B", "json"]])
def test_memcached_refuses_the_same_bad_values(args):
    """The same command lines are errors for memcached too (its exit codes differ)."""
    from conftest import MEMCACHED
    r = run(MEMCACHED, args + ["-p", "0", "-U", "0"])
    assert r.returncode != 0


def test_disable_evictions_answers_out_of_memory(binary):
    """-M: when memory is full a write fails with memcached's error and no
    item that was stored is dropped."""
    with tcp(binary, "-M", "-m", "4", "-t", "1") as srv:
        s = srv.connect(timeout=10)
        value = b"x" * 2000
        stored, err = 0, None
        for i in range(20000):
            s.sendall(b"set key%d 0 0 %d\r\n%s\r\n" % (i, len(value), value))
            line = b""
            while not line.endswith(b"\r\n"):
                line += s.recv(256)
            if line != b"STORED\r\n":
                err = line
                break
            stored += 1
        assert err == b"SERVER_ERROR out of memory storing object\r\n", (stored, err)
        assert stored > 200
        missing = 0
        for i in range(stored):
            s.sendall(b"mg key%d\r\n" % i)      # HD: present, EN: missing
            line = b""
            while not line.endswith(b"\r\n"):
                line += s.recv(256)
            missing += line != b"HD\r\n"
        s.close()
        assert missing == 0, "%d of %d items evicted under -M" % (missing, stored)
        st = srv.stats()
        assert st["evictions"] == "0"
        assert srv.stats("settings")["evictions"] == "off"


@pytest.mark.skipif(PERCORE is None, reason="percore not under test")
def test_memory_past_what_one_store_can_address_is_said():
    """One worker's store names at most ~85 GiB of segments: a larger -m per
    worker starts (nothing is touched until used), serves, and says that the
    rest stays unused."""
    with tcp(PERCORE, "-m", "200000", "-t", "1") as srv:
        assert srv.request(b"set k 0 0 1\r\nx\r\nget k\r\n", b"END\r\n") == \
            b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"
        assert "is more than one worker's store can use" in srv.stderr()
    with tcp(PERCORE, "-m", "1024") as srv:
        assert "store can use" not in srv.stderr()
