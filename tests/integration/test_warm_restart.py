"""Warm restart (-e PATH, issue 16): a graceful stop (SIGUSR1 or `shutdown
graceful`) keeps every item for the next start with the same -e, on the same
or another worker count; anything unclean (SIGKILL during writes or at any
step of the shut-down, a changed -m, bytes changed in the file) gives an
empty start with the reason logged, never a partial one."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import MEMCACHED, SERVER_BIN, start_server
from warm_util import fill, graceful_stop, make_items, read_all, stats

pytestmark = [pytest.mark.percore_only, pytest.mark.time_limit(180)]

# 100,000 items (0 B-300 KB) in the release stage; a sanitized server only
# needs to walk the same save and restore paths, with fewer items.
N_ITEMS = 30_000 if any(d in SERVER_BIN for d in ("build-asan", "build-tsan")) else 100_000
MEM_MB = 512


@pytest.fixture
def memfile():
    d = tempfile.mkdtemp(prefix="percore-warm-", dir="/dev/shm")
    try:
        yield os.path.join(d, "cache")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def start(memfile, threads, memory_mb=MEM_MB, extra=()):
    return start_server(threads=threads, memory_mb=memory_mb,
                        extra=["-e", memfile, "-v", *extra])


def check_restored(before, after, items, t_read):
    """Every item read back byte-identical with its flags and CAS and a TTL
    no longer than before; only items whose TTL ran out may be missing."""
    now = time.time()
    lost = []
    for key, (val, flags, cas, ttl) in before.items():
        if key not in after:
            # the downtime counts against TTLs: an item may only be gone
            # if its TTL (read at t_read or later, whole seconds) can have
            # run out since
            if ttl < 0 or t_read + ttl - 1 > now:
                lost.append(key)
            continue
        v2, f2, c2, t2 = after[key]
        assert v2 == val, key
        assert f2 == flags, key
        assert c2 == cas, key
        if ttl < 0:
            assert t2 < 0, key
        else:
            assert 0 <= t2 <= ttl, (key, ttl, t2)
    assert not lost, f"{len(lost)} items lost, e.g. {lost[:5]}"


def fill_and_read(srv, n=N_ITEMS):
    items = make_items(n)
    fill(srv.addr, items)
    keys = [k for k, _, _, _ in items]
    t_read = time.time()
    before = read_all(srv.addr, keys)
    assert len(before) > 0.95 * n
    return items, keys, before, t_read


@pytest.mark.parametrize("t_before,t_after", [(1, 1), (2, 2), (1, 2), (2, 1)])
def test_graceful_restart_restores_everything(memfile, t_before, t_after):
    srv = start(memfile, t_before)
    items, keys, before, t_read = fill_and_read(srv)
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    assert "warm restart: saved the metadata of" in err, err
    time.sleep(1.0)     # some downtime: TTLs must come back shorter or equal

    srv = start(memfile, t_after)
    try:
        after = read_all(srv.addr, keys)
        check_restored(before, after, items, t_read)
        st = stats(srv.addr)
        # items with a TTL of a few seconds may expire during the read-back
        restored = int(st["restart_items_restored"])
        assert len(after) <= restored <= len(before), st
        assert float(st["restart_seconds"]) >= 0
        err = srv.stderr_text()
        assert f"{t_before} workers -> {t_after}" in err, err
        assert f"restored {restored} items" in err, err
        # items written after the restore get CAS values no restored item has
        c = srv.client()
        c.set(b"after-restart", b"x")
        _, cas = c.gets(b"after-restart")
        assert int(cas) not in {v[2] for v in after.values()}
        # and the restored cache keeps working: cas with a restored CAS
        k = keys[0]
        if k in after:
            assert c.cas(k, b"new", after[k][2]) is True
    finally:
        srv.stop_and_check()


def test_shutdown_graceful_command_saves(memfile):
    srv = start(memfile, 2, extra=["-A"])
    items, keys, before, t_read = fill_and_read(srv, n=5000)
    c = srv.conn()
    c.send(b"shutdown graceful\r\n")
    rc = srv.proc.wait(timeout=60)
    assert rc == 0
    srv.proc = None
    srv = start(memfile, 2)
    try:
        check_restored(before, read_all(srv.addr, keys), items, t_read)
    finally:
        srv.stop_and_check()


def test_sigterm_does_not_save(memfile):
    srv = start(memfile, 1)
    fill(srv.addr, make_items(1000))
    srv.stop_and_check()          # SIGTERM: memcached's plain stop
    assert not [f for f in os.listdir(os.path.dirname(memfile)) if f.endswith(".meta")]
    srv = start(memfile, 1)
    try:
        assert int(stats(srv.addr)["curr_items"]) == 0
    finally:
        srv.stop_and_check()


def assert_empty_start(memfile, threads, reason, memory_mb=MEM_MB):
    srv = start(memfile, threads, memory_mb=memory_mb)
    try:
        st = stats(srv.addr)
        assert int(st["curr_items"]) == 0, st
        assert int(st["restart_items_restored"]) == 0
        err = srv.stderr_text()
        assert reason in err, err
        assert "discarding the memory files, starting empty" in err, err
        # and it works normally
        c = srv.client()
        c.set(b"k", b"v")
        assert c.get(b"k") == b"v"
    finally:
        srv.stop_and_check()


def test_sigkill_during_fill_starts_empty(memfile):
    srv = start(memfile, 2)
    items = make_items(20000, short_ttl=False)
    fill(srv.addr, items[:10000])
    # kill while a client is still writing
    t = threading.Thread(target=lambda: _fill_quietly(srv.addr, items[10000:]))
    t.start()
    time.sleep(0.05)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)
    srv.proc = None
    t.join(timeout=30)
    assert_empty_start(memfile, 2, "did not shut down gracefully")


def _fill_quietly(addr, items):
    try:
        fill(addr, items)
    except (OSError, AssertionError):
        pass


@pytest.mark.parametrize("step,threads,reason", [
    ("save-begin", 2, "did not shut down gracefully"),
    ("save-mid", 2, "did not shut down gracefully"),
    ("save-written", 2, "did not shut down gracefully"),
    ("save-renamed-0", 2, "cache.1.meta: No such file or directory"),
])
def test_kill_at_each_shutdown_step_starts_empty(memfile, step, threads, reason):
    os.environ["PERCORE_WARM_CRASH"] = step
    try:
        srv = start(memfile, threads)
    finally:
        del os.environ["PERCORE_WARM_CRASH"]
    fill(srv.addr, make_items(5000, short_ttl=False))
    srv.proc.send_signal(signal.SIGUSR1)
    rc = srv.proc.wait(timeout=60)
    srv.proc = None
    assert rc == -signal.SIGKILL
    assert_empty_start(memfile, threads, reason)


def test_kill_during_restore_starts_empty_next_time(memfile):
    srv = start(memfile, 2)
    fill(srv.addr, make_items(5000, short_ttl=False))
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    env = dict(os.environ, PERCORE_WARM_CRASH="restore")
    p = subprocess.run([SERVER_BIN, "-p", "0", "-l", "127.0.0.1", "-t", "2", "-m", str(MEM_MB),
                        "-e", memfile, "-v"], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert_empty_start(memfile, 2, "did not shut down gracefully")


def test_mismatched_memory_limit_starts_empty(memfile):
    srv = start(memfile, 2)
    fill(srv.addr, make_items(5000, short_ttl=False))
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    assert_empty_start(memfile, 2, "memory limit differs: saved with -m 512 MiB, now -m 256 MiB",
                       memory_mb=256)


def test_mismatched_item_size_starts_empty(memfile):
    srv = start(memfile, 1)
    fill(srv.addr, make_items(2000, short_ttl=False))
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    srv = start_server(threads=1, memory_mb=MEM_MB, item_size="2m", extra=["-e", memfile, "-v"])
    try:
        assert int(stats(srv.addr)["curr_items"]) == 0
        assert "item size limit differs" in srv.stderr_text()
    finally:
        srv.stop_and_check()


@pytest.mark.parametrize("where", ["data", "meta"])
def test_changed_bytes_start_empty(memfile, where):
    """A byte changed after the save, in a segment or in the metadata,
    is found by the checksums: nothing is served from the file."""
    srv = start(memfile, 1)
    fill(srv.addr, make_items(5000, short_ttl=False))
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    path = memfile + (".0" if where == "data" else ".0.meta")
    with open(path, "r+b") as f:
        # in the data file: a byte of a stored value (segment 0 is the empty
        # spare); in the metadata: a byte of the segment table
        at = f.read().find(b"wk:0000010") + 12 if where == "data" else 1000
        assert at > 12
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x01]))
    reason = ("bytes differ from their checksum" if where == "data"
              else "cache.0.meta: checksum mismatch")
    assert_empty_start(memfile, 1, reason)


def test_second_process_on_same_file_refused(memfile):
    srv = start(memfile, 1)
    try:
        p = subprocess.run([SERVER_BIN, "-p", "0", "-l", "127.0.0.1", "-t", "1", "-m", "64",
                            "-e", memfile], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode != 0
        assert b"in use by another percore process" in p.stderr
        c = srv.client()
        c.set(b"k", b"v")
        assert c.get(b"k") == b"v"
    finally:
        srv.stop_and_check()


def test_restart_twice_and_keep_serving(memfile):
    """A restored cache saves and restores again; writes in between count."""
    srv = start(memfile, 2)
    items = make_items(3000, short_ttl=False)
    fill(srv.addr, items)
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    srv = start(memfile, 2)
    c = srv.client()
    c.set(b"between", b"restarts", expire=0)
    c.delete(items[0][0])
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    srv = start(memfile, 1)
    try:
        c = srv.client()
        assert c.get(b"between") == b"restarts"
        assert c.get(items[0][0]) is None
        assert c.get(items[1][0]) == items[1][1]
        assert int(stats(srv.addr)["curr_items"]) == 3000
    finally:
        srv.stop_and_check()



def test_failed_start_on_busy_port_keeps_the_cache(memfile):
    """A start that cannot listen exits before it consumes the metadata."""
    srv = start(memfile, 1)
    items = make_items(2000, short_ttl=False)
    fill(srv.addr, items)
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        p = subprocess.run([SERVER_BIN, "-p", str(busy.getsockname()[1]), "-l", "127.0.0.1",
                            "-t", "1", "-m", str(MEM_MB), "-e", memfile],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode != 0, p.stderr
    finally:
        busy.close()
    srv = start(memfile, 1)
    try:
        assert int(stats(srv.addr)["restart_items_restored"]) == 2000
    finally:
        srv.stop_and_check()


@pytest.mark.parametrize("first,then,reason", [
    ([], ["-C"], "CAS setting differs"),
    ([], ["--segment-size", "65536"], "segment size differs"),
])
def test_other_mismatches_start_empty(memfile, first, then, reason):
    srv = start(memfile, 1, extra=first)
    fill(srv.addr, make_items(2000, short_ttl=False))
    rc, err = graceful_stop(srv)
    assert rc == 0, err
    srv = start(memfile, 1, extra=then)
    try:
        assert int(stats(srv.addr)["curr_items"]) == 0
        assert reason in srv.stderr_text()
    finally:
        srv.stop_and_check()


@pytest.mark.skipif(not os.path.exists(MEMCACHED), reason="memcached not installed")
def test_side_by_side_with_memcached(memfile):
    """The same fill, graceful stop and restart on memcached 1.6 -e and on
    percore -e: both bring every item back with its value and flags; percore
    also its CAS and a TTL no longer than before (timings: bench/warm_restart.py)."""
    items = make_items(20000, short_ttl=False)
    keys = [k for k, _, _, _ in items]
    results = {}
    for name, binary in (("memcached", MEMCACHED), ("percore", SERVER_BIN)):
        path = f"{memfile}-{name}"
        srv = start_server(binary=binary, threads=2, memory_mb=MEM_MB, extra=["-e", path])
        fill(srv.addr, items)
        before = read_all(srv.addr, keys)
        rc, err = graceful_stop(srv)
        assert rc == 0, err
        # memcached 1.6.18 discards its file when restarted within the
        # second it stopped ("restart incompatible ... [stop_time]")
        time.sleep(1.1)
        t0 = time.monotonic()
        srv = start_server(binary=binary, threads=2, memory_mb=MEM_MB, extra=["-e", path])
        ready = time.monotonic() - t0
        try:
            after = read_all(srv.addr, keys)
        finally:
            srv.stop_and_check()
        results[name] = (before, after, ready)
    for name, (before, after, ready) in results.items():
        assert len(after) == len(before) == len(items), name
        for k, (val, flags, cas, ttl) in before.items():
            assert after[k][0] == val and after[k][1] == flags, (name, k)
    before, after, _ = results["percore"]
    for k, (val, flags, cas, ttl) in before.items():
        assert after[k][2] == cas
        assert (ttl < 0 and after[k][3] < 0) or 0 <= after[k][3] <= ttl
