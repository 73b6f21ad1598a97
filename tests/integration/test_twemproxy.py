"""percore beyond one machine: three instances behind twemproxy (nutcracker)
with ketama distribution and host ejection, and three instances behind a
client doing ketama itself (pylibmc / libmemcached). All on loopback, every
process started here and stopped by PID; well under a minute in total.
Run: /usr/bin/python3 -m pytest tests/integration/test_twemproxy.py
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from deploy_util import SERVER, Percore, free_port, port_open, stats, wait_for

NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"
RETRY_MS = 2000      # server_retry_timeout: how long an ejected server stays out
NKEYS = 300

pytestmark = pytest.mark.skipif(not os.access(SERVER, os.X_OK), reason="no server binary at %s" % SERVER)


def items(port):
    return int(stats(port)["curr_items"])


def start_backends(n=3):
    return [Percore("-m", "16", threads=1) for _ in range(n)]


def owner_of(backends, key):
    """Index of the backend that holds key, asking each one directly."""
    from pymemcache.client.base import Client
    found = []
    for i, b in enumerate(backends):
        c = Client(("127.0.0.1", b.port), connect_timeout=1, timeout=1)
        try:
            if c.get(key) is not None:
                found.append(i)
        finally:
            c.close()
    assert len(found) == 1, (key, found)
    return found[0]


class Nutcracker:
    def __init__(self, backends):
        self.port = free_port()
        self.stats_port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="nutcracker-")
        conf = os.path.join(self.dir.name, "nutcracker.yml")
        with open(conf, "w") as f:
            f.write("percore:\n"
                    "  listen: 127.0.0.1:%d\n"
                    "  hash: md5\n"
                    "  distribution: ketama\n"
                    "  timeout: 1000\n"
                    "  auto_eject_hosts: true\n"
                    "  server_retry_timeout: %d\n"
                    "  server_failure_limit: 1\n"
                    "  servers:\n" % (self.port, RETRY_MS))
            for i, b in enumerate(backends):
                f.write("   - 127.0.0.1:%d:1 s%d\n" % (b.port, i))
        t = subprocess.run([NUTCRACKER, "-t", "-c", conf], capture_output=True, text=True, timeout=10)
        assert t.returncode == 0, t.stdout + t.stderr
        self.log = os.path.join(self.dir.name, "nutcracker.log")
        self.proc = subprocess.Popen(
            [NUTCRACKER, "-c", conf, "-s", str(self.stats_port), "-a", "127.0.0.1", "-i", "100",
             "-p", os.path.join(self.dir.name, "pid"), "-o", self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: self.proc.poll() is not None or port_open(self.port)) or self.proc.poll() is not None:
            raise RuntimeError("nutcracker did not start: %s" % open(self.log).read())

    def server_stat(self, server, field):
        """A counter from nutcracker's stats port (JSON, refreshed every 100 ms)."""
        import json
        import socket
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=2) as s:
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)["percore"][server][field]

    def client(self):
        from pymemcache.client.base import Client
        return Client(("127.0.0.1", self.port), connect_timeout=1, timeout=2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.dir.cleanup()


@pytest.mark.skipif(not os.access(NUTCRACKER, os.X_OK), reason="nutcracker not installed")
def test_twemproxy_ketama_spread_eject_rejoin():
    pytest.importorskip("pymemcache")
    from pymemcache.exceptions import MemcacheError
    backends = start_backends()
    proxy = None
    try:
        proxy = Nutcracker(backends)
        c = proxy.client()
        keys = ["user:%d" % i for i in range(NKEYS)]

        # Spread: every key lands on exactly one instance, all three get a share.
        for k in keys:
            assert c.set(k, b"v-" + k.encode(), noreply=False)
        counts = [items(b.port) for b in backends]
        assert sum(counts) == NKEYS, counts
        assert min(counts) >= NKEYS // 10, "uneven ketama spread: %s" % counts
        got = c.get_many(keys)                   # fragmented over all three by the proxy
        assert len(got) == NKEYS and got[keys[7]] == b"v-" + keys[7].encode()

        owner = {k: owner_of(backends, k) for k in keys[:60]}
        survivors = [k for k, o in owner.items() if o != 1]
        victims = [k for k, o in owner.items() if o == 1]
        assert survivors and victims

        # Stop instance 1: the first request for one of its keys fails and the
        # proxy ejects it (server_failure_limit 1).
        port1 = backends[1].port
        assert backends[1].stop() == 0
        errors = 0
        for k in victims[:3]:
            try:
                c.get(k)
            except (MemcacheError, OSError):
                errors += 1      # the request that hit the dead server, if any
                c.close()
        assert errors <= 1, "more failures than server_failure_limit"
        assert wait_for(lambda: proxy.server_stat("s1", "server_ejected_at") > 0, timeout=2), \
            "proxy did not eject the stopped instance"

        # Ejected: keys of the live instances are still found where they were
        # (ketama moves only the dead server's share) and the dead server's
        # keys are served, as misses then sets, by the others.
        t0 = time.time()
        for k in survivors:
            assert c.get(k) == b"v-" + k.encode(), k
        for k in victims:
            assert c.get(k) is None
            assert c.set(k, b"moved", noreply=False)
            assert c.get(k) == b"moved"
        assert time.time() - t0 < RETRY_MS / 1000.0, "checks outlasted the ejection window"

        # Restart instance 1 on its port: after server_retry_timeout the proxy
        # tries it again and it takes back its share of the keys.
        backends[1] = Percore("-m", "16", port=port1, threads=1)

        def rejoined():
            for k in victims:
                try:
                    c.set(k, b"back", noreply=False)
                except (MemcacheError, OSError):
                    c.close()
            return items(port1) > 0
        assert wait_for(rejoined, timeout=RETRY_MS / 1000.0 + 4, step=0.2), "instance did not rejoin"
        assert items(port1) == len(victims)
        for k in victims:
            assert c.get(k) == b"back"
        for k in survivors:
            assert c.get(k) == b"v-" + k.encode()
        c.close()
    finally:
        if proxy:
            proxy.stop()
        for b in backends:
            b.stop()


def test_client_side_ketama_pylibmc():
    pylibmc = pytest.importorskip("pylibmc")
    backends = start_backends()
    try:
        addrs = ["127.0.0.1:%d" % b.port for b in backends]
        behaviors = {"ketama": True, "tcp_nodelay": True, "connect_timeout": 1000,
                     "remove_failed": 1, "retry_timeout": 1, "dead_timeout": 1}
        mc = pylibmc.Client(addrs, binary=False, behaviors=behaviors)
        assert mc.behaviors["ketama"] and mc.behaviors["distribution"] == "consistent ketama"
        keys = ["user:%d" % i for i in range(NKEYS)]
        for k in keys:
            assert mc.set(k, "v-" + k)
        counts = [items(b.port) for b in backends]
        assert sum(counts) == NKEYS, counts
        assert min(counts) >= NKEYS // 10, "uneven ketama spread: %s" % counts
        assert len(mc.get_multi(keys)) == NKEYS

        # Consistency: a client that knows only instances 0 and 2 finds every
        # key those two hold where the three-server client put it.
        owner = {k: owner_of(backends, k) for k in keys[:60]}
        two = pylibmc.Client([addrs[0], addrs[2]], binary=False, behaviors={"ketama": True})
        for k, o in owner.items():
            if o != 1:
                assert two.get(k) == "v-" + k, k

        # Failure: with instance 1 stopped, libmemcached removes it after one
        # failure; the other instances keep answering.
        port1 = backends[1].port
        assert backends[1].stop() == 0
        victims = [k for k, o in owner.items() if o == 1]
        failures = 0
        for k in victims:
            try:
                mc.set(k, "moved")
            except pylibmc.Error:
                failures += 1
        assert failures >= 1
        ok = 0
        for k, o in owner.items():
            if o != 1:
                assert mc.get(k) == "v-" + k
                ok += 1
        assert ok > 0

        # Restart: libmemcached retries after retry_timeout and uses it again.
        backends[1] = Percore("-m", "16", port=port1, threads=1)

        def rejoined():
            for k in victims:
                try:
                    mc.set(k, "back")
                except pylibmc.Error:
                    pass
            return items(port1) > 0
        assert wait_for(rejoined, timeout=6, step=0.3), "instance did not rejoin"
    finally:
        for b in backends:
            b.stop()
