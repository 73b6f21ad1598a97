"""percore-bench's HdrHistogram output (--hgrm, issue 17) and -V/--version,
against the delay server (tests/tools/delay_server.c: every Nth request stalls
it for a known time). Each test starts its own server on a free loopback port
and stops it by PID. Binaries come from $PERCORE_BUILD (default build)."""
import json
import os
import subprocess

import pytest

from test_bench import BENCH, DELAY, Server, need


def read_hgrm(path):
    rows, footer = [], []
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    assert lines[1] == ""
    for line in lines[2:]:
        if line.startswith("#["):
            footer.append(line)
        else:
            rows.append([float(x) for x in line.split()])
    return rows, footer


def test_version():
    need(BENCH)
    for flag in ("-V", "--version"):
        p = subprocess.run([BENCH, flag], capture_output=True, text=True, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith("percore-bench "), p


@pytest.mark.serial
def test_hgrm_shows_known_stall(tmp_path):
    """Every 100th request stalls the server 5 ms: the .hgrm's p99 and max
    read about 5 ms, p50 far less, and it agrees with the JSON report."""
    need(DELAY)
    need(BENCH)
    D = 5000
    s = Server(lambda p: [DELAY, "-p", str(p), "-l", "127.0.0.1", "--delay-us", str(D),
                          "--every", "100"])
    out = tmp_path / "run.hgrm"
    try:
        p = subprocess.run([BENCH, "--quiet", "--json", "-s", s.addr, "--rate", "2000",
                            "--duration", "2", "--conns", "2", "--hgrm", str(out)],
                           capture_output=True, text=True, timeout=60)
    finally:
        s.stop()
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.splitlines()[0])
    rows, footer = read_hgrm(out)
    assert len(footer) == 3 and footer[1].startswith("#[Max")
    last = rows[-1]
    assert len(last) == 3 and last[1] == 1.0 and last[2] == r["latency_us"]["count"]
    for a, b in zip(rows, rows[1:]):
        assert b[0] >= a[0] and b[1] > a[1] and b[2] >= a[2]

    def at(pct):   # value (ms) of the first row at or past the percentile
        return next(row[0] for row in rows if row[1] >= pct)
    lat = r["latency_us"]
    assert at(0.5) * 1000 < D / 2
    assert at(0.99) * 1000 >= 0.6 * D
    assert abs(last[0] * 1000 - lat["max"]) <= 0.01 * lat["max"] + 1
    # HdrHistogram's levels skip 0.99 exactly (0.98828125, 0.990234375, ...).
    assert 0.98 * lat["p99"] - 2 <= at(0.99) * 1000 <= 1.02 * lat["p999"] + 2


def test_hgrm_per_run_files(tmp_path):
    need(DELAY)
    need(BENCH)
    s = Server(lambda p: [DELAY, "-p", str(p), "-l", "127.0.0.1", "--delay-us", "1",
                          "--every", "1000"])
    out = tmp_path / "sweep.hgrm"
    try:
        p = subprocess.run([BENCH, "--quiet", "--json", "-s", s.addr, "--sweep", "500,1000",
                            "--duration", "0.5", "--hgrm", str(out)],
                           capture_output=True, text=True, timeout=60)
    finally:
        s.stop()
    assert p.returncode == 0, p.stderr
    assert out.exists() and (tmp_path / "sweep.hgrm-2").exists()
    assert not (tmp_path / "sweep.hgrm-3").exists()
