#!/usr/bin/env python3
"""Reliability soak: the release agent and collector under every fault at once, for minutes.

    python3 Benchmarks/soak.py                    # builds if needed; 300 s at 10,000 lines/s
    DURATION=120 RATE=5000 python3 Benchmarks/soak.py

A writer appends numbered lines at a steady rate for DURATION seconds, reopening its file for
every chunk as a logger that survives rotation does. Meanwhile, on a fixed schedule:

  every 15 s, in turn: kill -9 of the agent (restarted at once), kill -9 of the collector
  (restarted at once), rotation by rename (app.log -> app.log.1 -> app.log.2, the oldest
  deleted), rotation by copytruncate (copy to app.log.1, truncate app.log in place);
  once, at a third of the run: the collector stopped for OUTAGE (60) seconds.

Then it waits until the store holds every line and compares exactly: missing, duplicated.
The agent's RSS is sampled every second (peak against a limit of RSS_LIMIT_MIB, 64), and its
spool from /metrics. Prints a table and writes Benchmarks/results/soak.md. Loopback only;
every process is started here and stopped by PID; the temp directory is removed at the end.
"""

import datetime
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

DURATION = int(os.environ.get("DURATION", "300"))
RATE = int(os.environ.get("RATE", "10000"))
OUTAGE = int(os.environ.get("OUTAGE", "60"))
FAULT_EVERY = float(os.environ.get("FAULT_EVERY", "15"))
RSS_LIMIT_MIB = float(os.environ.get("RSS_LIMIT_MIB", "64"))
TOKEN = "soak-token"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from clusterlib import free_port, metric_samples, release_bin_dir, status_mib  # noqa: E402


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def line(number):
    return f"soak-{number:09d} GET /api/items?id={number} HTTP/1.1 200 {number % 997}ms"


class Writer(threading.Thread):
    def __init__(self, path, rate, duration):
        super().__init__(daemon=True)
        self.path, self.rate, self.duration = path, rate, duration
        self.written = 0
        self.lock = threading.Lock()  # held while writing a chunk, so rotation sees whole lines

    def run(self):
        chunk = max(1, self.rate // 50)
        total = self.rate * self.duration
        started = time.monotonic()
        while self.written < total:
            end = min(total, self.written + chunk)
            text = "".join(line(n) + "\n" for n in range(self.written, end)).encode()
            with self.lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(fd, text)
                os.close(fd)
            self.written = end
            delay = started + self.written / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class Soak:
    def __init__(self, bin_dir, workdir):
        self.bin_dir, self.workdir = bin_dir, workdir
        self.logs = os.path.join(workdir, "logs")
        os.makedirs(self.logs)
        self.database = os.path.join(workdir, "muster.sqlite")
        self.port = free_port()
        self.metrics_port = free_port()
        self.agent = self.collector = None
        self.counts = {"agent kill -9": 0, "collector kill -9": 0, "rename rotation": 0, "copytruncate": 0,
                       "collector outage": 0}

    def spawn(self, name, argv):
        out = open(os.path.join(self.workdir, name + ".log"), "ab")
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True)
        out.close()
        return process

    def start_collector(self):
        self.collector = self.spawn("collector", [
            os.path.join(self.bin_dir, "muster-collector"), "--database", self.database, "--host", "127.0.0.1",
            "--port", str(self.port), "--token", TOKEN])

    def start_agent(self):
        self.agent = self.spawn("agent", [
            os.path.join(self.bin_dir, "muster-agent"), "--node", "soak", "--collector-url",
            f"http://127.0.0.1:{self.port}", "--token", TOKEN, "--state-dir", os.path.join(self.workdir, "agent-state"),
            "--file", f"app={self.logs}/app.log*", "--http-listen", f"127.0.0.1:{self.metrics_port}"])

    @staticmethod
    def stop(process, sig=signal.SIGTERM, timeout=15):
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def rss_mib(self):
        return status_mib(self.agent.pid)

    def spool_bytes(self):
        try:
            return metric_samples(f"http://127.0.0.1:{self.metrics_port}", timeout=1).get("muster_agent_spool_bytes")
        except OSError:
            return None

    def stored(self):
        if not os.path.exists(self.database):
            return 0
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = 'app'").fetchone()[0]

    def rotate_rename(self, writer):
        with writer.lock:
            base = os.path.join(self.logs, "app.log")
            if os.path.exists(base + ".2"):
                os.unlink(base + ".2")
            if os.path.exists(base + ".1"):
                os.rename(base + ".1", base + ".2")
            if os.path.exists(base):
                os.rename(base, base + ".1")

    def rotate_copytruncate(self, writer):
        # logrotate's steps; the writer keeps going between the copy and the truncation, as it
        # does under logrotate (only whole chunks here, so the copy never ends mid-line).
        base = os.path.join(self.logs, "app.log")
        if os.path.exists(base + ".2"):
            os.unlink(base + ".2")
        if os.path.exists(base + ".1"):
            os.rename(base + ".1", base + ".2")
        with writer.lock:
            shutil.copyfile(base, base + ".1")
            with open(base, "r+b") as f:
                f.truncate(0)

    def run(self):
        self.start_collector()
        time.sleep(0.5)
        self.start_agent()
        writer = Writer(os.path.join(self.logs, "app.log"), RATE, DURATION)
        started = time.monotonic()
        writer.start()
        faults = ["agent kill -9", "collector kill -9", "rename rotation", "copytruncate"]
        next_fault, fault_index = started + FAULT_EVERY, 0
        outage_at, outage_until = started + DURATION / 3, None
        peak_rss, peak_spool, rss_samples = 0.0, 0.0, []
        while writer.is_alive():
            now = time.monotonic()
            if outage_until is None and now >= outage_at:
                log(f"collector stopped for {OUTAGE} s")
                self.stop(self.collector)
                outage_until = now + OUTAGE
                self.counts["collector outage"] += 1
            elif outage_until is not None and outage_until > 0 and now >= outage_until:
                log("collector back")
                self.start_collector()
                outage_until = 0
            if now >= next_fault:
                fault = faults[fault_index % len(faults)]
                fault_index += 1
                next_fault += FAULT_EVERY
                in_outage = outage_until is not None and outage_until > 0
                if fault == "agent kill -9":
                    self.stop(self.agent, signal.SIGKILL)
                    self.start_agent()
                elif fault == "collector kill -9" and not in_outage:
                    self.stop(self.collector, signal.SIGKILL)
                    self.start_collector()
                elif fault == "rename rotation":
                    self.rotate_rename(writer)
                elif fault == "copytruncate":
                    self.rotate_copytruncate(writer)
                else:
                    continue
                self.counts[fault] += 1
                log(f"{fault}; {writer.written:,} lines written")
            rss = self.rss_mib()
            if rss:
                rss_samples.append(rss)
                peak_rss = max(peak_rss, rss)
            peak_spool = max(peak_spool, self.spool_bytes() or 0)
            time.sleep(1)
        if outage_until:
            self.start_collector()
        written = writer.written
        log(f"writer done: {written:,} lines; waiting for the store")
        deadline = time.monotonic() + 600
        while self.stored() < written and time.monotonic() < deadline:
            time.sleep(1)
        caught_up = time.monotonic() - started - DURATION
        time.sleep(3)
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            rows = [r[0] for r in db.execute(
                "SELECT l.msg FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = 'app'")]
        seen = set(rows)
        expected = {line(n) for n in range(written)}
        missing = len(expected - seen)
        duplicated = len(rows) - len(seen)
        foreign = len(seen - expected)
        self.stop(self.agent)
        self.stop(self.collector)
        return {
            "written": written, "stored": len(rows), "missing": missing, "duplicated": duplicated, "foreign": foreign,
            "peak_rss": peak_rss, "median_rss": sorted(rss_samples)[len(rss_samples) // 2] if rss_samples else 0,
            "peak_spool": peak_spool, "caught_up": caught_up,
        }


def main():
    bin_dir = os.environ.get("BIN_DIR") or release_bin_dir(("muster-agent", "muster-collector"))
    workdir = tempfile.mkdtemp(prefix="muster-soak-", dir=os.path.join(HERE, "out") if os.path.isdir(os.path.join(HERE, "out")) else None)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    try:
        soak = Soak(bin_dir, workdir)
        result = soak.run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = lambda good: "✅" if good else "❌"
    faults = ", ".join(f"{count} × {name}" for name, count in soak.counts.items())
    table = f"""# Reliability soak — {datetime.datetime.now():%Y-%m-%d %H:%M}

- Command: `DURATION={DURATION} RATE={RATE} OUTAGE={OUTAGE} python3 Benchmarks/soak.py` (release build, commit {commit})
- Faults during the run: {faults}

| Figure | value | limit |  |
|---|---:|---:|:---:|
| lines written | {result['written']:,} | — | |
| rows stored | {result['stored']:,} | = written | {ok(result['stored'] == result['written'])} |
| missing | {result['missing']:,} | 0 | {ok(result['missing'] == 0)} |
| duplicated | {result['duplicated']:,} | 0 | {ok(result['duplicated'] == 0)} |
| rows that were never written | {result['foreign']:,} | 0 | {ok(result['foreign'] == 0)} |
| agent RSS, peak (MiB) | {result['peak_rss']:.1f} | ≤ {RSS_LIMIT_MIB:.0f} | {ok(result['peak_rss'] <= RSS_LIMIT_MIB)} |
| agent RSS, median (MiB) | {result['median_rss']:.1f} | — | |
| spool, peak (MiB) | {result['peak_spool'] / 1048576:.1f} | ≤ 256 | {ok(result['peak_spool'] <= 256 << 20)} |
| all stored, seconds after the writer stopped | {result['caught_up']:.1f} | — | |
"""
    print(table)
    with open(os.path.join(HERE, "results", "soak.md"), "w") as f:
        f.write(table)
    return 0 if result["missing"] == 0 and result["duplicated"] == 0 and result["foreign"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
