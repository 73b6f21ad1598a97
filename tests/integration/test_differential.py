"""Differential test: scripted sessions (tests/integration/diff_cases/*.txt)
are sent over raw sockets to the real memcached (started here) and to the
server under test; replies are compared byte for byte, with CAS numbers in
gets/gats VALUE lines masked.

Script format, one step per line:
  # comment / blank line     ignored
  <bytes>                    sent as one write, followed by "version\\r\\n";
                             the step's reply is everything before that
                             VERSION line (or up to EOF, e.g. after quit)
  !raw <bytes>               sent as-is, without the sentinel (for steps
                             that leave a data block incomplete); the reply
                             is what arrives until a short quiet period
  !reconnect                 both connections are reopened
Escapes in <bytes>: Python bytes escapes (\\r \\n \\t \\xNN \\\\); nothing is
appended (write "\\r\\n" yourself). Placeholders:
  $CAS          the CAS number of the last gets/gats VALUE line received on
                that server's connection
  $NOW+N $NOW-N the current unix time plus/minus N seconds
  $REP(c,N)     the character c repeated N times
Steps may not use `stats` (server-specific) or `version` (the sentinel).
Every script starts on a flushed cache (flush_all, not compared).
"""
import os
import re
import time
from pathlib import Path

import pytest

from conftest import MEMCACHED, Conn, Server, mask_cas

CASES_DIR = Path(__file__).parent / "diff_cases"
CASE_FILES = sorted(CASES_DIR.glob("*.txt"))
SENTINEL = b"version\r\n"
SENTINEL_RE = re.compile(rb"VERSION [^\r\n]*\r\n\Z")
STEP_TIMEOUT = 3.0
RAW_QUIET = 0.15
DUMP = bool(os.environ.get("DIFF_DUMP"))     # print memcached's replies


@pytest.fixture(scope="module")
def reference():
    if not os.path.exists(MEMCACHED):
        pytest.skip(f"{MEMCACHED} not installed: no reference to compare with")
    s = Server(binary=MEMCACHED, threads=2)
    yield s
    s.stop_and_check()


def parse_script(path):
    steps = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.strip() == "!reconnect":
            steps.append((lineno, "reconnect", ""))
        elif line.startswith("!raw "):
            steps.append((lineno, "raw", line[5:]))
        else:
            steps.append((lineno, "step", line))
    return steps


def expand(text, state):
    text = re.sub(r"\$REP\((\\x..|\\.|.),(\d+)\)",
                  lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"\$NOW([+-]\d+)", lambda m: str(int(time.time()) + int(m.group(1))), text)
    data = text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    if b"$CAS" in data:
        data = data.replace(b"$CAS", state.get("cas", b"0"))
    return data


CAS_RE = re.compile(rb"^VALUE \S+ \d+ \d+ (\d+)\r$", re.M)


class Side:
    def __init__(self, name, server):
        self.name = name
        self.server = server
        self.state = {}
        self.conn = None
        self.eof = False

    def connect(self):
        if self.conn:
            self.conn.close()
        self.conn = Conn(self.server.addr, timeout=STEP_TIMEOUT)
        self.eof = False

    def exchange(self, kind, text):
        if self.eof:
            self.connect()
        data = expand(text, self.state)
        c = self.conn
        try:
            c.send(data + (SENTINEL if kind == "step" else b""))
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True
            return b"<EOF>"
        out = b""
        if kind == "raw":
            out = c.read_available(RAW_QUIET)
        else:
            deadline = time.monotonic() + STEP_TIMEOUT
            while not SENTINEL_RE.search(c.buf):
                left = deadline - time.monotonic()
                if left <= 0:
                    out = c.buf + b"<TIMEOUT>"
                    c.buf = b""
                    break
                try:
                    if not c._fill(left):
                        self.eof = True
                        break
                except ConnectionResetError:
                    self.eof = True
                    break
                except OSError:
                    continue
            else:
                m = SENTINEL_RE.search(c.buf)
                out, c.buf = c.buf[:m.start()], b""
            if self.eof:
                out, c.buf = c.buf + b"<EOF>", b""
        for cas in CAS_RE.findall(out):
            self.state["cas"] = cas
        return mask_cas(out)


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_differential(reference, server, path):
    if reference.binary == server.binary and reference.threads == server.threads \
            and reference.port == server.port:
        pytest.skip("same server")
    ref, sut = Side("memcached", reference), Side("server", server)
    for side in (ref, sut):
        side.connect()
        side.conn.call(b"flush_all\r\n", b"OK\r\n")
    mismatches = []
    for lineno, kind, text in parse_script(path):
        if kind == "reconnect":
            ref.connect()
            sut.connect()
            continue
        a = ref.exchange(kind, text)
        b = sut.exchange(kind, text)
        if DUMP:
            print(f"{path.name}:{lineno}: {text[:100]}\n    -> {a[:300]!r}")
        assert b"<TIMEOUT>" not in a, (
            f"{path.name}:{lineno}: memcached itself did not answer this step "
            f"(script error? use !raw for incomplete requests): {a[:200]!r}")
        if a != b:
            mismatches.append(f"{path.name}:{lineno}: {text[:150]}\n"
                              f"  memcached: {a[:400]!r}\n"
                              f"  server:    {b[:400]!r}")
            if len(mismatches) >= 10:
                break
            # resynchronise both after a divergence
            ref.connect()
            sut.connect()
    for side in (ref, sut):
        side.conn.close()
    assert not mismatches, (f"{len(mismatches)} step(s) differ from "
                            "memcached:\n" + "\n".join(mismatches))


def test_case_files_present():
    assert len(CASE_FILES) >= 5, CASE_FILES
    for p in CASE_FILES:
        for lineno, kind, text in parse_script(p):
            low = text.lower()
            assert not re.search(r"(^|\\n)(stats|version)\b", low), \
                f"{p.name}:{lineno}: stats/version are not compared"
