#!/usr/bin/python3
"""warm_restart.py - warm restart (-e, issue 16): restore time and the hit
ratio right after a restart, percore against memcached in the same run.

restore: for each --sizes GiB of items (stats `bytes`), on a fresh server
  (-t 1, pinned to CPU 0) with -e on /dev/shm and -m sized to hold them
  without eviction: fill with percore-bench --warmup (CPU 1, fixed-size
  values), SIGUSR1, time the save (signal -> exit), start again and time
  until `version` is answered; report items before/after, percore's
  restart_seconds, and a check: 100,000 uniform gets after the restart
  (hit ratio 1.0 = every key came back). Both servers are restarted 1.1 s
  after they exited: memcached 1.6.18 discards its file when restarted in
  the same second as it stopped ("restart incompatible due to setting for
  [stop_time]").
hitratio: the Zipf(0.99) look-aside workload of bench/hit_ratio.sh (1M keys,
  100 B values, gets with --miss-set, -m 64): fill + --warm-requests; then
  restart, cold (SIGTERM: empty start) or warm (SIGUSR1, same -e), and run the
  same workload open loop at --rate for 10 one-second rounds: hit ratio per
  second and over the 10 s.

Every process it starts is stopped by PID; every file it makes on /dev/shm
is removed at the end (also on failure or Ctrl-C).

usage: bench/warm_restart.py [--sizes 1,4] [--value-size 1000]
         [--servers percore,memcached] [--parts restore,hitratio]
         [--rate 20000] [--warm-requests 2000000] [--out FILE]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("PERCORE_BUILD", os.path.join(REPO, "build"))
PERCORE = os.environ.get("PERCORE_SERVER", os.path.join(BUILD, "percore"))
BENCH = os.environ.get("PERCORE_BENCH", os.path.join(BUILD, "percore-bench"))
MEMCACHED = os.environ.get("MEMCACHED", "/usr/bin/memcached")
SCPU, BCPU = "0", "1"
KSIZE = 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ask(port, cmd, end=b"END\r\n", timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(cmd)
        buf = b""
        while not buf.endswith(end):
            c = s.recv(65536)
            if not c:
                break
            buf += c
        return buf
    finally:
        s.close()


def stats(port):
    out = {}
    for ln in ask(port, b"stats\r\n").decode().split("\r\n"):
        f = ln.split(" ")
        if len(f) == 3 and f[0] == "STAT":
            out[f[1]] = f[2]
    return out


class Srv:
    def __init__(self, kind, port, mem_mb, memfile, threads=1):
        self.kind, self.port = kind, port
        binary = PERCORE if kind == "percore" else MEMCACHED
        args = [binary, "-p", str(port), "-l", "127.0.0.1", "-U", "0", "-t", str(threads),
                "-m", str(mem_mb), "-c", "1024"]
        if memfile:
            args += ["-e", memfile]
        if kind == "memcached" and os.geteuid() == 0:
            args += ["-u", "root"]
        if kind == "percore":
            args += ["-v"]
        self.cmd = ["taskset", "-c", SCPU] + args
        self.log = tempfile.TemporaryFile()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        self.ready_s = self._wait(t0)

    def _wait(self, t0, limit=600):
        while time.monotonic() - t0 < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.text()}")
            try:
                if ask(self.port, b"version\r\n", end=b"\r\n", timeout=2).startswith(b"VERSION"):
                    return time.monotonic() - t0
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"{self.kind} not ready after {limit} s")

    def text(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, limit=600):
        """Signal by PID; seconds until it exited."""
        if self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0

    def rss_mb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        return int(ln.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def pbench(port, *args):
    cmd = ["taskset", "-c", BCPU, BENCH, "-s", f"127.0.0.1:{port}", "-q", "--json",
           "--key-size", str(KSIZE), *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise RuntimeError(f"percore-bench failed: {cmd}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), " ".join(cmd[3:])


def du_mb(d):
    tot = 0
    for f in os.listdir(d):
        tot += os.stat(os.path.join(d, f)).st_blocks * 512
    return tot / 2**20


def restore_case(kind, gib, vsize, rows, cmds, t_after=1):
    d = tempfile.mkdtemp(prefix="warm-bench-", dir="/dev/shm")
    srv = None
    try:
        memfile = os.path.join(d, "cache")
        keys = int(gib * 2**30 // (vsize + KSIZE + 8))
        mem_mb = int(gib * 1024 * 1.3) + 64
        port = free_port()
        srv = Srv(kind, port, mem_mb, memfile)
        cmds.append(" ".join(srv.cmd))
        _, c = pbench(port, "--closed", "--depth", "16", "-c", "4", "--warmup", "--keys", keys,
                      "--value-size", vsize, "--get-ratio", "1", "-n", "1000")
        cmds.append(c)
        st = stats(port)
        items0, bytes0 = int(st["curr_items"]), int(st["bytes"])
        save_s = srv.stop(signal.SIGUSR1)
        shm_mb = du_mb(d)
        time.sleep(1.1)   # memcached 1.6.18 refuses a restore in the second it stopped
        srv = Srv(kind, port, mem_mb, memfile, threads=t_after)
        if t_after != 1:
            cmds.append(" ".join(srv.cmd))
        st = stats(port)
        r, c = pbench(port, "--closed", "--depth", "16", "-c", "4", "--keys", keys,
                      "--value-size", vsize, "--get-ratio", "1", "-n", "100000")
        cmds.append(c)
        rows.append({
            "server": kind if t_after == 1 else f"{kind} -t 1 → -t {t_after}", "gib": gib, "items_before": items0, "bytes_before": bytes0,
            "items_after": int(st["curr_items"]), "save_s": save_s, "start_s": srv.ready_s,
            "restart_seconds": st.get("restart_seconds", "-"), "check_hit_ratio": r["hit_ratio"],
            "shm_mb": shm_mb, "rss_mb": srv.rss_mb(),
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
        srv.stop()
    finally:
        if srv:
            srv.stop(signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)


def hit_case(kind, warm, args, rows, cmds):
    d = tempfile.mkdtemp(prefix="warm-bench-", dir="/dev/shm")
    srv = None
    keys = 1000000
    common = ["--keys", keys, "--value-size", 100, "--dist", "zipf", "--get-ratio", "1",
              "--miss-set"]
    try:
        memfile = os.path.join(d, "cache")
        port = free_port()
        srv = Srv(kind, port, 64, memfile)
        _, c = pbench(port, "--closed", "--depth", "4", "-c", "4", "--warmup", "-n",
                      args.warm_requests, "--seed", "1", *common)
        cmds.append(c)
        srv.stop(signal.SIGUSR1 if warm else signal.SIGTERM)
        time.sleep(1.1)   # memcached 1.6.18 refuses a restore in the second it stopped
        srv = Srv(kind, port, 64, memfile)
        per_s, hits, n = [], 0, 0
        for sec in range(10):
            r, c = pbench(port, "-r", args.rate, "-c", "4", "-d", "1", "--seed", 2 + sec,
                          *common)
            per_s.append(r["hit_ratio"])
            hits += r["hits"]
            n += r["hits"] + r["misses"]
        cmds.append(c.replace("--seed 11", "--seed 2..11"))
        rows.append({"server": kind, "restart": "warm" if warm else "cold",
                     "first_s": per_s[0], "per_s": per_s, "ten_s": hits / max(n, 1)})
        print(json.dumps(rows[-1]), file=sys.stderr)
        srv.stop()
    finally:
        if srv:
            srv.stop(signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,4")
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--servers", default="percore,memcached")
    ap.add_argument("--parts", default="restore,hitratio")
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--warm-requests", type=int, default=2000000)
    ap.add_argument("--rehome", default="1", help="GiB sizes also restored onto -t 2 (percore)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    servers = args.servers.split(",")
    rrows, hrows, cmds = [], [], []
    if "restore" in args.parts:
        for gib in [float(x) for x in args.sizes.split(",")]:
            for kind in servers:
                restore_case(kind, gib, args.value_size, rrows, cmds)
            if "percore" in servers and gib in [float(x) for x in args.rehome.split(",") if x]:
                restore_case("percore", gib, args.value_size, rrows, cmds, t_after=2)
    if "hitratio" in args.parts:
        for kind in servers:
            for warm in (False, True):
                hit_case(kind, warm, args, hrows, cmds)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    out = [f"`bench/warm_restart.py {' '.join(sys.argv[1:])}`, "
           f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average at the end "
           f"{' '.join(load)} (shared 2-core machine)", ""]
    if rrows:
        out += ["| server | items (GiB of `bytes`) | save (SIGUSR1 to exit) | start to first reply "
                "| restart_seconds | items after | gets after: hit ratio | on tmpfs | RSS after |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rrows:
            out.append(f"| {r['server']} | {r['items_before']:,} ({r['bytes_before'] / 2**30:.2f}) "
                       f"| {r['save_s']:.2f} s | {r['start_s']:.2f} s | {r['restart_seconds']} "
                       f"| {r['items_after']:,} | {r['check_hit_ratio']:.4f} "
                       f"| {r['shm_mb']:.0f} MiB | {r['rss_mb']:.0f} MiB |")
        out.append("")
    if hrows:
        out += ["| server | restart | hit ratio 1st s | 10 s | per second |",
                "|---|---|---:|---:|---|"]
        for r in hrows:
            out.append(f"| {r['server']} | {r['restart']} | {r['first_s']:.4f} | {r['ten_s']:.4f} "
                       f"| {' '.join('%.3f' % x for x in r['per_s'])} |")
        out.append("")
    out += ["Commands (servers pinned to CPU 0, percore-bench to CPU 1):", "", "```"]
    seen = set()
    for c in cmds:
        if c not in seen:
            seen.add(c)
            out.append(c)
    out.append("```")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
