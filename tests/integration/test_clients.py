"""Real client libraries: pylibmc (libmemcached) and memccapable."""
import re
import shutil
import subprocess

import pytest

from conftest import IS_MEMCACHED

pylibmc = pytest.importorskip("pylibmc")


@pytest.fixture
def lm(server):
    client = pylibmc.Client([f"{server.addr[0]}:{server.port}"], binary=False,
                            behaviors={"cas": True, "tcp_nodelay": True})
    yield client
    client.disconnect_all()


class TestPylibmc:
    def test_set_get_delete(self, lm):
        assert lm.set("lm:a", b"hello")
        assert lm.get("lm:a") == b"hello"
        assert lm.delete("lm:a")
        assert lm.get("lm:a") is None
        assert not lm.delete("lm:a")

    def test_types_roundtrip(self, lm):
        # pylibmc encodes Python types in the flags field
        for key, val in (("lm:int", 42), ("lm:str", "text"),
                         ("lm:bytes", b"\x00\r\n\xff"), ("lm:list", [1, "two", 3.0]),
                         ("lm:bigint", 2 ** 70)):
            lm.set(key, val)
            assert lm.get(key) == val

    def test_add_replace(self, lm):
        lm.delete("lm:ar")
        assert not lm.replace("lm:ar", b"x")
        assert lm.add("lm:ar", b"1")
        assert not lm.add("lm:ar", b"2")
        assert lm.replace("lm:ar", b"3")
        assert lm.get("lm:ar") == b"3"

    def test_append_prepend(self, lm):
        lm.set("lm:ap", b"mid")
        assert lm.append("lm:ap", b">")
        assert lm.prepend("lm:ap", b"<")
        assert lm.get("lm:ap") == b"<mid>"

    def test_incr_decr(self, lm):
        lm.set("lm:n", 10)
        assert lm.incr("lm:n") == 11
        assert lm.incr("lm:n", 9) == 20
        assert lm.decr("lm:n", 25) == 0
        with pytest.raises(pylibmc.NotFound):
            lm.incr("lm:missing-n")

    def test_cas(self, lm):
        lm.set("lm:cas", b"v1")
        val, cas = lm.gets("lm:cas")
        assert val == b"v1" and cas
        assert lm.cas("lm:cas", b"v2", cas)
        assert not lm.cas("lm:cas", b"v3", cas)
        assert lm.get("lm:cas") == b"v2"

    def test_touch(self, lm):
        lm.set("lm:t", b"v")
        assert lm.touch("lm:t", 100)
        assert not lm.touch("lm:t-missing", 100)

    def test_multi(self, lm):
        data = {f"lm:m{i}": f"value-{i}".encode() * (i % 10 + 1) for i in range(500)}
        assert lm.set_multi(data) == []
        keys = list(data) + [f"lm:nope{i}" for i in range(50)]
        assert lm.get_multi(keys) == data
        assert lm.get_multi(keys, key_prefix="") == data
        assert lm.delete_multi(list(data)[:250])
        got = lm.get_multi(keys)
        assert got == dict(list(data.items())[250:])

    def test_large_value(self, lm):
        val = b"L" * 500_000
        lm.set("lm:large", val)
        assert lm.get("lm:large") == val


MEMCCAPABLE = shutil.which("memccapable")


def _memccapable(server, mode):
    if not MEMCCAPABLE:
        pytest.skip("memccapable (libmemcached-tools) not installed")
    r = subprocess.run([MEMCCAPABLE, "-h", "127.0.0.1", "-p", str(server.port), mode],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    failed = [l for l in out.splitlines() if re.search(r"\[(fail|FAIL)", l)
              or "fail" in l.lower() and "[pass]" not in l]
    assert r.returncode == 0 and not failed and "All tests passed" in out, \
        f"memccapable {mode} exit {r.returncode}:\n{out[-4000:]}"


# memccapable takes ~2.5 s a run (it sleeps for its expiry checks): run it
# on -t 1 and -t 4 only, on fresh servers.
@pytest.mark.parametrize("threads", [1, 4], ids=["t1", "t4"])
def test_memccapable_ascii(server_factory, threads):
    _memccapable(server_factory(threads=threads), "-a")


def test_memccapable_binary(server_factory):
    _memccapable(server_factory(threads=2), "-b")
