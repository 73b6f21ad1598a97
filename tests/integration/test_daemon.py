"""Start-up and process-management behaviour that deployment relies on:
-d/-P (daemon and pid file), -u (privilege drop), signals (SIGTERM/SIGINT
graceful, SIGHUP ignored), usage errors (exit 64), -v (configuration logged).
Each test starts its own percore on a free loopback port and stops it by PID.
Run: /usr/bin/python3 -m pytest tests/integration/test_daemon.py
"""
import os
import pwd
import re
import signal
import subprocess
import time

import pytest

from deploy_util import SERVER, Percore, free_port, pid_alive, port_open, set_get, stats, wait_for

EXIT_USAGE = 64

pytestmark = [pytest.mark.percore_only,
              pytest.mark.skipif(not os.access(SERVER, os.X_OK), reason="no server binary at %s" % SERVER)]


def run(*args, timeout=5):
    return subprocess.run([SERVER] + list(args), capture_output=True, text=True, timeout=timeout)


# ---- daemon and pid file -------------------------------------------------

def test_daemon_writes_pidfile_serves_and_cleans_up(tmp_path):
    port = free_port()
    pidfile = tmp_path / "percore.pid"
    log = open(tmp_path / "stderr", "wb")
    # The foreground process returns once the daemon is detached.
    r = subprocess.run([SERVER, "-d", "-P", str(pidfile), "-p", str(port), "-l", "127.0.0.1", "-t", "1"],
                       stdout=subprocess.DEVNULL, stderr=log, timeout=10)
    assert r.returncode == 0
    pid = None
    try:
        assert wait_for(pidfile.exists), "pid file not written"
        pid = int(wait_for(lambda: pidfile.read_text().strip() or None))
        assert pid_alive(pid)
        assert os.getsid(pid) == pid, "daemon is not a session leader"
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert os.path.basename(f.read().split(b"\0")[0]) == b"percore"
        assert wait_for(lambda: port_open(port))
        assert "VALUE k 0 1\r\nv\r\nEND\r\n" == set_get(port)
        assert stats(port)["pid"] == str(pid)

        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: not pid_alive(pid), timeout=5), "daemon ignored SIGTERM"
        assert not pidfile.exists(), "pid file left behind after SIGTERM"
        assert not port_open(port)
        pid = None
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)  # the daemon this test started
        log.close()


def test_daemon_reports_startup_failure(tmp_path):
    """The foreground process waits for the daemon to start: a port in use
    makes `percore -d` exit 71 (memcached's EX_OSERR), not 0, and leaves no
    pid file."""
    pidfile = tmp_path / "percore.pid"
    with Percore() as first:
        r = run("-d", "-P", str(pidfile), "-p", str(first.port), "-l", "127.0.0.1", "-t", "1")
        assert r.returncode == 71, (r.returncode, r.stderr)
        assert "Address already in use" in r.stderr
        assert not pidfile.exists()
        assert first.proc.poll() is None


def test_pidfile_written_without_daemon(tmp_path):
    # memcached 1.6 writes -P with or without -d; percore also removes it at exit.
    pidfile = tmp_path / "percore.pid"
    with Percore("-P", str(pidfile)) as srv:
        assert wait_for(pidfile.exists), "pid file not written"
        assert int(pidfile.read_text().strip()) == srv.pid
    assert not pidfile.exists(), "pid file left behind"


# ---- signals ---------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop(sig):
    srv = Percore("-v")
    try:
        set_get(srv.port)
        srv.signal(sig)
        assert srv.proc.wait(5) == 0
        assert "shutting down" in srv.stderr()
    finally:
        srv.stop()


def test_sighup_is_logged_and_ignored():
    srv = Percore("-v")
    try:
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: "SIGHUP" in srv.stderr()), srv.stderr()
        time.sleep(0.1)
        assert srv.proc.poll() is None, "SIGHUP killed the server"
        assert "VALUE k 0 1\r\nv\r\nEND\r\n" == set_get(srv.port)
        assert re.search(r"^<6>percore: info: SIGHUP", srv.stderr(), re.M)
    finally:
        assert srv.stop() == 0


# ---- usage errors -----------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--no-such-flag"], "unknown option '--no-such-flag'"),
    (["-j"], "unknown option"),
    (["-S", "-U", "11211"], "Cannot enable UDP while using binary SASL authentication."),
    (["-Z"], "TLS (-Z) needs a certificate: -o ssl_chain_cert="),
    (["-Z", "-o", "ssl_chain_cert=x.pem", "-U", "11311"], "Cannot enable UDP while TLS is enabled"),
    (["-o", "ssl_min_version=tlsv1.4"], "invalid value for -o ssl_min_version"),
    (["-o", "ssl_keyformat=7"], "invalid value for -o ssl_keyformat"),
    (["-p"], "needs a value"),
    (["-p", "http"], "invalid port"),
    (["-p", "70000"], "invalid port"),
    (["-t", "0"], "invalid number of threads"),
    (["-m", "lots"], "invalid memory limit"),
    (["-m", "0"], "Memory limit (-m) must be at least 1 megabyte."),
    (["-c", "-5"], "invalid connection limit"),
    (["-I", "1023"], "Item max size cannot be less than 1024 bytes."),
    (["-I", "512"], "Item max size cannot be less than 1024 bytes."),
    (["-I", "0"], "Item max size cannot be less than 1024 bytes."),
    (["-I", "1g"], "Cannot set item size limit higher than"),
    (["-m", "4", "-I", "3m"], "Cannot set item size limit higher than 1/2 of memory max."),
    (["--io", "kqueue"], "unknown I/O backend 'kqueue'"),
    (["--steering", "magic"], "unknown steering mode 'magic'"),
    (["--cpus", "x"], "invalid --cpus"),
    (["stray"], "unexpected argument 'stray'"),
])
def test_bad_usage_exits_64_with_message(args, message):
    r = run(*args)
    assert r.returncode == EXIT_USAGE, (args, r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("percore: ")
    assert "--help" in r.stderr
    assert r.stdout == ""


def test_item_size_1k_is_the_minimum():
    with Percore("-I", "1k") as srv:
        assert stats(srv.port, "settings")["item_size_max"] == "1024"


def test_help_and_version_exit_0():
    r = run("--help")
    assert r.returncode == 0 and "--port" in r.stdout and "--pidfile" in r.stdout
    r = run("-V")
    assert r.returncode == 0 and r.stdout.startswith("percore ")


@pytest.mark.parametrize("threads", ["1", "4"])
def test_port_in_use_is_a_runtime_failure(threads):
    # With several workers, the half-built set-up must be torn down cleanly
    # (this once crashed with SIGSEGV). 71: memcached's EX_OSERR.
    with Percore() as first:
        r = run("-p", str(first.port), "-l", "127.0.0.1", "-t", threads)
        assert r.returncode == 71, (r.returncode, r.stderr)
        assert re.search(r"^<3>percore: error: ", r.stderr, re.M), r.stderr


# ---- -v -----------------------------------------------------------------------

def test_verbose_logs_configuration_at_startup():
    srv = Percore("-v", "-m", "32", "-c", "100", "-I", "2k", threads=2)
    try:
        line = wait_for(lambda: re.search(r"^<6>percore: info: listening on .*$", srv.stderr(), re.M))
        assert line, srv.stderr()
        text = line.group(0)
        for want in ("127.0.0.1", "port %d" % srv.port, "2 workers", "32 MiB", "2048", "100 connections"):
            assert want in text, (want, text)
    finally:
        srv.stop()


def test_quiet_without_v():
    srv = Percore()
    try:
        set_get(srv.port)
        srv.signal(signal.SIGHUP)
        time.sleep(0.1)
        assert "info:" not in srv.stderr(), srv.stderr()
    finally:
        assert srv.stop() == 0


# ---- -u -----------------------------------------------------------------------

def _ids(pid):
    uid = gid = groups = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:]]
            elif line.startswith("Gid:"):
                gid = [int(x) for x in line.split()[1:]]
            elif line.startswith("Groups:"):
                groups = [int(x) for x in line.split()[1:]]
    return uid, gid, groups


@pytest.mark.skipif(os.geteuid() != 0, reason="-u needs root")
def test_user_drops_privileges_to_nobody():
    nobody = pwd.getpwnam("nobody")
    with Percore("-u", "nobody", threads=2) as srv:
        assert "VALUE k 0 1\r\nv\r\nEND\r\n" == set_get(srv.port)
        uid, gid, groups = _ids(srv.pid)
        assert uid == [nobody.pw_uid] * 4, uid          # real, effective, saved, fs
        assert gid == [nobody.pw_gid] * 4, gid
        assert groups == [], groups                      # supplementary groups cleared
        # Every thread, not just the main one.
        for tid in os.listdir("/proc/%d/task" % srv.pid):
            with open("/proc/%d/task/%s/status" % (srv.pid, tid)) as f:
                assert "Uid:\t%d\t%d" % (nobody.pw_uid, nobody.pw_uid) in f.read()


def test_unknown_user_is_a_runtime_failure():
    r = run("-u", "no-such-user-percore", "-p", str(free_port()), "-l", "127.0.0.1", "-t", "1")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "unknown user 'no-such-user-percore'" in r.stderr
