"""percore's `stats` output as Prometheus' memcached_exporter reads it.

The exporter (github.com/prometheus/memcached_exporter, pkg/exporter/exporter.go)
sends "stats", "stats slabs", "stats items" on one connection and then
"stats settings" (client: github.com/grobie/gomemcache). Its parser:
  - splits each line on single spaces and keeps only "STAT name value" lines;
  - a name without ':' is a global stat, "N:field" a slab stat (N must be an
    integer, else the whole scrape fails), "items:N:field" an item stat;
  - in "stats settings" every line must have 3 or 4 fields, else the scrape
    fails;
  - each value it uses must parse as a float (rusage_* as "sec.usec"); a
    missing key is skipped, except cmd_set and cas_misses/cas_hits/cas_badval,
    whose absence marks the server down (memcached_up 0);
  - a slab's mem_requested in both "stats items" and "stats slabs" would be
    collected twice (same metric, same labels) and fail the scrape.
This test parses percore's output the same way and checks every field the
exporter reads is there and numeric.
Run: /usr/bin/python3 -m pytest tests/integration/test_monitoring.py
"""
import os
import re
import socket

import pytest

from deploy_util import IS_MEMCACHED, SERVER, Percore

pytestmark = pytest.mark.skipif(not os.access(SERVER, os.X_OK), reason="no server binary at %s" % SERVER)

# Global stats read by parseStats (in "stats"; total_malloced comes from "stats slabs").
GLOBAL = [
    "uptime", "time", "cas_badval", "cmd_flush", "cmd_set",
    "rusage_user", "rusage_system", "bytes", "limit_maxbytes", "curr_items", "total_items",
    "bytes_read", "bytes_written", "curr_connections", "total_connections",
    "rejected_connections", "conn_yields", "listen_disabled_num", "evictions", "reclaimed",
    "store_too_large", "store_no_memory", "lru_crawler_starts", "direct_reclaims",
    "crawler_items_checked", "crawler_reclaimed", "moves_to_cold", "moves_to_warm",
    "moves_within_lru", "total_malloced", "accepting_conns",
] + ["%s_%s" % (op, r) for op in ("get", "delete", "incr", "decr", "cas", "touch")
     for r in ("hits", "misses")]
REQUIRED = ["cmd_set", "cas_misses", "cas_hits", "cas_badval"]   # missing -> memcached_up 0
TIMEVAL = ["rusage_user", "rusage_system"]
# Per item class ("stats items").
ITEMS = ["number", "age", "hits_to_hot", "hits_to_warm", "hits_to_cold", "hits_to_temp"]
ITEMS_OPTIONAL = [   # read when present
    "crawler_reclaimed", "evicted", "evicted_nonzero", "evicted_time", "evicted_unfetched",
    "expired_unfetched", "outofmemory", "reclaimed", "store_too_large", "store_no_memory",
    "tailrepairs", "mem_requested", "moves_to_cold", "moves_to_warm", "moves_within_lru",
    "number_hot", "number_warm", "number_cold", "number_temp", "age_hot", "age_warm",
]
# Per slab class ("stats slabs", with --memcached.enable-slab-metrics, the default).
SLABS = ["chunk_size", "chunks_per_page", "total_pages", "total_chunks", "used_chunks",
         "free_chunks", "free_chunks_end", "cmd_set", "cas_hits", "cas_badval"] + \
        ["%s_hits" % op for op in ("get", "delete", "incr", "decr", "cas", "touch")]


def is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_until_end(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed before END"
        if line == b"END\r\n":
            return lines
        assert not line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")), line
        lines.append(line)


def scrape(port):
    """gomemcache's statsFromAddr + statsSettingsFromAddr, in Python."""
    glob, slabs, items, settings = {}, {}, {}, {}
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        f = s.makefile("rb")
        for cmd in (b"stats\r\n", b"stats slabs\r\n", b"stats items\r\n"):
            s.sendall(cmd)
            for line in read_until_end(f):
                parts = line.split(b" ")
                if len(parts) != 3 or not parts[0].startswith(b"STAT"):
                    continue   # the exporter silently drops such lines
                name, value = parts[1].decode(), parts[2].strip().decode()
                f_ = name.split(":")
                if len(f_) == 1:
                    glob[name] = value
                elif len(f_) == 2:
                    assert re.fullmatch(r"-?\d+", f_[0]), "slab id not an integer: %r" % name
                    slabs.setdefault(int(f_[0]), {})[f_[1]] = value
                elif len(f_) == 3:
                    assert re.fullmatch(r"-?\d+", f_[1]), "item class not an integer: %r" % name
                    items.setdefault(int(f_[1]), {})[f_[2]] = value
        s.sendall(b"stats settings\r\n")
        for line in read_until_end(f):
            parts = line.split(b" ")
            assert len(parts) in (3, 4), "settings line the exporter rejects: %r" % line
            settings[parts[1].decode()] = parts[2].strip().decode()
    return glob, slabs, items, settings


def load(port, n):
    """n sets, n get hits, one miss, incr/decr/touch/delete/cas traffic."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        f = s.makefile("rb")
        for i in range(n):
            s.sendall(b"set key%d 0 0 5\r\nvalue\r\n" % i)
        for i in range(n):
            assert f.readline() == b"STORED\r\n"
        for i in range(n):
            s.sendall(b"get key%d\r\n" % i)
            assert f.readline().startswith(b"VALUE")
            f.readline()
            assert f.readline() == b"END\r\n"
        s.sendall(b"get nosuchkey\r\n")
        assert f.readline() == b"END\r\n"
        s.sendall(b"set ctr 0 0 1\r\n5\r\nincr ctr 2\r\ndecr ctr 1\r\ntouch ctr 100\r\n"
                  b"delete ctr\r\ndelete ctr\r\n")
        assert [f.readline() for _ in range(6)] == [
            b"STORED\r\n", b"7\r\n", b"6\r\n", b"TOUCHED\r\n", b"DELETED\r\n", b"NOT_FOUND\r\n"]
        s.sendall(b"gets key0\r\n")
        cas = int(f.readline().split()[4])
        f.readline(), f.readline()
        s.sendall(b"cas key0 0 0 1 %d\r\nx\r\ncas key0 0 0 1 %d\r\ny\r\n" % (cas, cas))
        assert [f.readline() for _ in range(2)] == [b"STORED\r\n", b"EXISTS\r\n"]


@pytest.fixture(scope="module")
def scraped():
    with Percore("-m", "16", threads=2) as srv:
        load(srv.port, 200)
        yield scrape(srv.port)


def test_global_stats_present_and_numeric(scraped):
    glob = scraped[0]
    missing = [k for k in GLOBAL if k not in glob]
    assert not missing, "exporter fields missing from stats: %s" % missing
    for k in GLOBAL:
        if k in TIMEVAL:
            assert re.fullmatch(r"\d+\.\d+", glob[k]), (k, glob[k])
        else:
            assert is_float(glob[k]), (k, glob[k])
    for k in REQUIRED:
        assert k in glob
    assert glob.get("version"), "version label"


def test_counters_reflect_traffic(scraped):
    glob = {k: v for k, v in scraped[0].items()}
    n = 200
    assert int(glob["curr_items"]) == n           # key0..key199 (ctr deleted)
    assert int(glob["cmd_set"]) >= n + 2          # sets + ctr + cas
    assert int(glob["get_hits"]) >= n and int(glob["get_misses"]) >= 1
    assert int(glob["incr_hits"]) == 1 and int(glob["decr_hits"]) == 1
    assert int(glob["touch_hits"]) == 1
    assert int(glob["delete_hits"]) == 1 and int(glob["delete_misses"]) == 1
    assert int(glob["cas_hits"]) == 1 and int(glob["cas_badval"]) == 1
    assert int(glob["bytes_read"]) > 0 and int(glob["bytes_written"]) > 0
    assert int(glob["limit_maxbytes"]) == 16 << 20
    assert int(glob["total_malloced"]) > 0
    if IS_MEMCACHED:
        return
    # percore: per-worker items add up to the total the exporter reports.
    per = [int(v) for k, v in glob.items() if re.fullmatch(r"worker_\d+_curr_items", k)]
    assert len(per) == 2 and sum(per) == n


def test_items_stats(scraped):
    items = scraped[2]
    assert items, "stats items empty with items stored"
    for cls, fields in items.items():
        for k in ITEMS:
            assert k in fields and is_float(fields[k]), (cls, k)
        for k in ITEMS_OPTIONAL:
            if k in fields:
                assert is_float(fields[k]), (cls, k, fields[k])
    assert sum(int(f["number"]) for f in items.values()) == 200


def test_slabs_stats(scraped):
    glob, slabs, items = scraped[0], scraped[1], scraped[2]
    assert slabs, "stats slabs empty with items stored"
    for cls, fields in slabs.items():
        for k in SLABS:
            assert k in fields and is_float(fields[k]), (cls, k)
        # Both would map to memcached_slab_mem_requested_bytes{slab=cls}.
        assert not ("mem_requested" in fields and "mem_requested" in items.get(cls, {})), cls
    assert is_float(glob["total_malloced"])


def test_settings(scraped):
    settings = scraped[3]
    assert is_float(settings["maxconns"])
    assert settings["lru_crawler"] in ("yes", "no")
    if settings["lru_crawler"] == "yes":
        for k in ("lru_crawler_sleep", "lru_crawler_tocrawl", "hot_lru_pct", "warm_lru_pct",
                  "hot_max_factor", "warm_max_factor"):
            assert is_float(settings[k]), k


def test_empty_server_scrapes_cleanly():
    """Right after start (no items): no slab/item classes, globals still there."""
    with Percore() as srv:
        glob, slabs, items, settings = scrape(srv.port)
        for k in REQUIRED + ["curr_items", "bytes", "limit_maxbytes", "uptime"]:
            assert is_float(glob[k]), k
        assert int(glob["curr_items"]) == 0
        assert items == {}
