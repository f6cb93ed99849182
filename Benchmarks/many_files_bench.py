#!/usr/bin/env python3
"""Many files: muster-agent following thousands of idle files, with Fluent Bit in the same run.

    python3 Benchmarks/many_files_bench.py                     # release agent, 3 repetitions
    REPS=1 python3 Benchmarks/many_files_bench.py --agent .build/debug/muster-agent

For each subject (muster-agent with inotify, muster-agent with `files.watch: poll`, Fluent Bit)
and each repetition, one after another, never concurrently:

  idle     N files (default 2000) of a few lines each in a fresh directory under /tmp; the
           subject follows `DIR/*.log` and ships to an HTTP receiver in this process. Once every
           initial line has arrived and a settle period has passed, its CPU time
           (utime + stime, /proc/PID/stat) is read over a window: percent of one core. Then its
           RSS (VmRSS) and open descriptors (entries of /proc/PID/fd).
  latency  M files (default 1000) followed the same way, all initial lines received; then K
           times (default 10): a new file with one line holding a unique token, and the time
           from just before the file is created until the receiver has inflated a body that
           holds the token. A random pause of 1-2 s between samples, so that the samples do
           not keep the same phase against a subject's timers.

Everything listens on 127.0.0.1 only. Processes are started by this script, stopped by PID
(SIGTERM, SIGKILL after 30 s) and reaped (Benchmarks/pipeline_bench.py's helpers); the
directories are removed at the end, also on failure or ^C. See Benchmarks/README.md.
"""

import argparse
import datetime
import http.server
import json
import math
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline_bench import (TOKEN, NODE, command_output, exited_early, log, spawn, stop,  # noqa: E402
                            stop_all, tail)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Every initial line holds this marker and every new file's line a token; the receiver counts
# markers, not lines, so a record a subject adds of its own (the agent's `agent` source) is
# not taken for one of ours.
MARKER = b"mfb-line "
TOKEN_PATTERN = re.compile(rb"mfb-token-([0-9a-f]{16})")


# ---------------------------------------------------------------------------------------------
# The receiver: inflates each body (zlib, gzip or raw deflate), counts markers, notes when
# each token first arrived, and answers as the collector does.

class Received:
    """What the receiver has seen; thread-safe."""

    def __init__(self):
        self.changed = threading.Condition()
        self.markers = 0
        self.requests = 0
        self.tokens = {}  # token -> monotonic time its body was inflated
        self.errors = []

    def add(self, raw):
        now = time.monotonic()
        with self.changed:
            self.requests += 1
            self.markers += raw.count(MARKER)
            for match in TOKEN_PATTERN.finditer(raw):
                self.tokens.setdefault(match.group(1).decode(), now)
            self.changed.notify_all()

    def wait(self, satisfied, timeout, process):
        """Waits until satisfied() (called under the lock), the process exits or the timeout
        passes; returns None or what went wrong."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not satisfied():
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"timed out after {timeout:.0f}s"
                self.changed.wait(min(left, 0.2))
                early = exited_early(process)
                if early is not None:
                    return f"{early.name} exited early ({early.describe()})"
        return None


def inflate(body):
    """zlib or gzip (wbits 47 detects which), else raw deflate: the agent sends zlib-wrapped
    `deflate`, Fluent Bit gzip."""
    try:
        return zlib.decompress(body, 47)
    except zlib.error:
        return zlib.decompress(body, -15)


def receiver(received):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # see pipeline_bench.discard_http_server

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                raw = inflate(body) if body else b""
            except zlib.error as error:
                received.errors.append(f"inflate: {error}")
                payload, status = b'{"error":"bad body"}', "400 Bad Request"
            else:
                received.add(raw)
                lines = sum(1 for line in raw.split(b"\n") if line.strip())
                payload, status = json.dumps({"accepted": lines, "duplicates": 0}).encode(), "200 OK"
            self.wfile.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(payload)}\r\n\r\n".encode("ascii") + payload)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------
# The subjects.

AGENT_CONFIG = """\
# Generated by Benchmarks/many_files_bench.py.
node: {node}
collector:
  url: http://127.0.0.1:{port}
  token: {token}
state_dir: {state}
sources:
  - id: many
    paths: ["{logs}/*.log"]
    format: plain
{files}"""

# Fluent Bit doing the same job: ../shared/peers/fluent-bit-tail-http.conf with a glob.
FLUENT_BIT_CONFIG = """\
# Generated by Benchmarks/many_files_bench.py, after ../shared/peers/fluent-bit-tail-http.conf.
[SERVICE]
    Flush           1
    Grace           2
    Daemon          Off
    Log_Level       warn
    HTTP_Server     Off

[INPUT]
    Name            tail
    Tag             app
    Path            {logs}/*.log
    Read_from_Head  True
    DB              {db}
    Refresh_Interval 1

[OUTPUT]
    Name            http
    Match           *
    Host            127.0.0.1
    Port            {port}
    URI             /v1/ingest
    Format          json_lines
    Compress        gzip
    Retry_Limit     False
"""


def start_agent(watch):
    def start(args, workdir, logs, port):
        config = os.path.join(workdir, "agent.yaml")
        files = f"files:\n  watch: {watch}\n" if watch != "auto" else ""
        with open(config, "w") as handle:
            handle.write(AGENT_CONFIG.format(node=NODE, port=port, token=TOKEN, logs=logs, files=files,
                                             state=os.path.join(workdir, "state")))
        return spawn("agent", [args.agent, "--config", config, "--log-level", "warning"], workdir)
    return start


def start_fluent_bit(args, workdir, logs, port):
    config = os.path.join(workdir, "fluent-bit.conf")
    with open(config, "w") as handle:
        handle.write(FLUENT_BIT_CONFIG.format(logs=logs, db=os.path.join(workdir, "fluent-bit.db"), port=port))
    return spawn("fluent-bit", [args.fluent_bit, "-c", config], workdir)


# key -> (row label, start function, binary attribute of args)
SUBJECTS = {
    "agent-inotify": ("muster-agent (inotify)", start_agent("auto"), "agent"),
    "agent-poll": ("muster-agent (poll)", start_agent("poll"), "agent"),
    "fluent-bit": ("fluent-bit", start_fluent_bit, "fluent_bit"),
}


# ---------------------------------------------------------------------------------------------
# Measuring a running process.

def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def write_files(logs, count, lines):
    """`count` files of `lines` marked lines each (~100 bytes a line)."""
    os.makedirs(logs)
    for number in range(count):
        with open(os.path.join(logs, f"file-{number:05d}.log"), "w") as handle:
            for line in range(lines):
                handle.write(f"{MARKER.decode()}{number:05d}/{line} GET /api/items/{number * 7919 % 100000} "
                             f"200 1234 agent=bench-client request_id={number:05d}{line:03d}\n")


def followed(args, key, workdir, files, received, port):
    """Starts the subject on `files` fresh files and waits until every initial line arrived
    and the settle period has passed. Returns (process, seconds to receive them, problem)."""
    logs = os.path.join(workdir, "logs")
    write_files(logs, files, args.lines_per_file)
    expected = files * args.lines_per_file
    started = time.monotonic()
    process = SUBJECTS[key][1](args, workdir, logs, port)
    problem = received.wait(lambda: received.markers >= expected, args.timeout, process)
    caught_up = time.monotonic() - started
    if problem:
        return process, None, f"{problem}: {received.markers} of {expected} initial lines"
    time.sleep(args.settle)
    early = exited_early(process)
    if early is not None:
        return process, None, f"{early.name} exited early ({early.describe()})"
    return process, caught_up, None


def run_idle(args, key, workdir):
    received = Received()
    server = receiver(received)
    result = {"files": args.files}
    process = None
    try:
        process, caught_up, problem = followed(args, key, workdir, args.files, received, server.server_address[1])
        if problem:
            result["error"] = problem
            return result
        requests_before = received.requests
        cpu_before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(args.window)
        cpu_after, ended = cpu_seconds(process.pid), time.monotonic()
        result.update({
            "initial_lines_s": caught_up,
            "idle_cpu_pct": (cpu_after - cpu_before) / (ended - started) * 100.0,
            "rss_mib": rss_mib(process.pid),
            "fds": open_descriptors(process.pid),
            "requests_in_window": received.requests - requests_before,
        })
    finally:
        finish(process, result, workdir)
        server.shutdown()
        server.server_close()
    result["lines_received"] = received.markers
    if received.errors:
        result["error"] = f"receiver: {received.errors[0]}"
    return result


def run_latency(args, key, workdir, rng):
    received = Received()
    server = receiver(received)
    result = {"files": args.latency_files, "latencies_ms": []}
    process = None
    try:
        process, caught_up, problem = followed(args, key, workdir, args.latency_files, received,
                                               server.server_address[1])
        if problem:
            result["error"] = problem
            return result
        result["initial_lines_s"] = caught_up
        logs = os.path.join(workdir, "logs")
        for sample in range(args.samples):
            token = secrets.token_hex(8)
            path = os.path.join(logs, f"new-{sample:03d}.log")
            created = time.monotonic()
            with open(path, "w") as handle:
                handle.write(f"mfb-token-{token} a new file's first line\n")
            problem = received.wait(lambda: token in received.tokens, args.timeout, process)
            if problem:
                result["error"] = f"sample {sample + 1}: {problem}"
                return result
            result["latencies_ms"].append((received.tokens[token] - created) * 1000.0)
            time.sleep(rng.uniform(1.0, 2.0))
    finally:
        finish(process, result, workdir)
        server.shutdown()
        server.server_close()
    if received.errors:
        result["error"] = f"receiver: {received.errors[0]}"
    return result


def finish(process, result, workdir):
    if process is None:
        return
    exited = stop(process)
    result["exit"] = exited.describe()
    if "error" in result or not exited.clean:
        result["stderr"] = tail(os.path.join(workdir, f"{exited.name}.stderr"))


# ---------------------------------------------------------------------------------------------
# Report.

def percentile(values, fraction):
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(runs):
    """Medians over the idle runs; median and p90 over every latency sample."""
    idle = [run for run in runs["idle"] if "error" not in run]
    latency = [run for run in runs["latency"] if "error" not in run]
    row = {}
    if idle and len(idle) == len(runs["idle"]):
        for key in ("idle_cpu_pct", "rss_mib", "fds", "initial_lines_s"):
            row[key] = statistics.median(run[key] for run in idle)
    samples = [value for run in latency for value in run["latencies_ms"]]
    if samples and len(latency) == len(runs["latency"]):
        row["latency_median_ms"] = statistics.median(samples)
        row["latency_p90_ms"] = percentile(samples, 0.9)
        row["samples"] = len(samples)
    return row


def render(args, results, meta):
    n, m = f"{args.files:,}", f"{args.latency_files:,}"
    out = [f"# Many files — {meta['when']}", ""]
    out.append(f"- Machine: {meta['cpus']} cores ({meta['cpu_model']}), Linux {meta['kernel']}, "
               f"`ulimit -n` {meta['nofile']}; loopback only; load average (1 min) {args.load_at_start:.2f} "
               f"at the start, {os.getloadavg()[0]:.2f} at the end")
    out.append(f"- Code: {meta['git']}; agent `{os.path.relpath(args.agent, REPO)}` built {meta['agent_built']}; "
               f"{meta['fluent_bit']}")
    out.append(f"- Runs: {args.reps} per subject, subjects one after another; idle figures are the median "
               f"of the runs, latency the median and p90 of all {args.reps} × {args.samples} samples. "
               f"Each file starts with {args.lines_per_file} lines (~100 bytes each).")
    out.append(f"- Idle: N = {n} files; CPU = utime + stime from /proc/PID/stat over {args.window:g} s, "
               f"starting {args.settle:g} s after the last initial line arrived; RSS = VmRSS and fds = entries "
               f"of /proc/PID/fd at the end of that window.")
    out.append(f"- Latency: M = {m} files followed, then a new file with one line; from just before it is "
               "created until the receiver has inflated the body holding it.")
    out.append(f"- Command: `{meta['command']}`")
    out.append("")
    out.append(f"| | idle CPU, % of a core ({n} files) | RSS MiB | open fds | initial lines in (s) "
               f"| first-line latency, median ({m} files) | p90 |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for key in args.subjects:
        label = SUBJECTS[key][0]
        if results[key].get("skipped"):
            out.append(f"| {label} | {results[key]['skipped']} | | | | | |")
            continue
        row = summary(results[key])

        def cell(name, text):
            return text(row[name]) if name in row else "error"
        out.append("| " + " | ".join([
            label,
            cell("idle_cpu_pct", lambda v: f"{v:.2f} %"),
            cell("rss_mib", lambda v: f"{v:.1f}"),
            cell("fds", lambda v: f"{v:,.0f}"),
            cell("initial_lines_s", lambda v: f"{v:.1f}"),
            cell("latency_median_ms", lambda v: f"{v:,.0f} ms"),
            cell("latency_p90_ms", lambda v: f"{v:,.0f} ms"),
        ]) + " |")
    out.append("")
    out.append("Every run:")
    out.append("")
    out.append("| | run | idle CPU % | RSS MiB | fds | initial lines in (s) | latencies (ms) |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    errors = []
    for key in args.subjects:
        for number, (idle, latency) in enumerate(zip(results[key]["idle"], results[key]["latency"]), 1):
            for phase, run in (("idle", idle), ("latency", latency)):
                if "error" in run:
                    errors.append(f"- {SUBJECTS[key][0]} run {number}, {phase}: {run['error']}")
            idle_cells = ["error"] * 4 if "error" in idle else [
                f"{idle['idle_cpu_pct']:.2f}", f"{idle['rss_mib']:.1f}", f"{idle['fds']}",
                f"{idle['initial_lines_s']:.1f}"]
            samples = "error" if "error" in latency else ", ".join(f"{v:.0f}" for v in latency["latencies_ms"])
            out.append("| " + " | ".join([SUBJECTS[key][0], str(number)] + idle_cells + [samples]) + " |")
    if errors:
        out += ["", "Errors:"] + errors
    out.append("")
    return "\n".join(out)


def machine_meta(args):
    cpu_model = "?"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = command_output(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]) or "?"
    dirty = command_output(["git", "-C", REPO, "status", "--porcelain", "--", "Sources", "Package.swift"])
    fluent_bit = command_output([args.fluent_bit, "--version"]).splitlines() if args.fluent_bit else []
    import resource
    built = os.path.getmtime(args.agent) if os.path.exists(args.agent) else None
    sources = [os.path.join(folder, name) for folder, _, names in os.walk(os.path.join(REPO, "Sources"))
               for name in names]
    newer = sum(1 for path in sources if built is not None and os.path.getmtime(path) > built)
    return {
        "agent_built": "?" if built is None else
        datetime.datetime.fromtimestamp(built).strftime("%Y-%m-%d %H:%M")
        + (f" ({newer} file{'' if newer == 1 else 's'} under Sources/ changed since)" if newer else " (no file under Sources/ newer)"),
        "when": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(), "cpu_model": cpu_model, "kernel": os.uname().release,
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "git": f"commit {commit}" + (" + uncommitted changes under Sources/" if dirty else ""),
        "fluent_bit": fluent_bit[0] if fluent_bit else "Fluent Bit not run",
        "command": shlex.join(["python3", "Benchmarks/many_files_bench.py"] + sys.argv[1:]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default=os.path.join(REPO, ".build-release", "release", "muster-agent"),
                        help="the muster-agent binary (default: the release build, Benchmarks/run.sh builds it)")
    parser.add_argument("--fluent-bit", default=os.path.join(os.path.dirname(REPO), "shared", "peers", "fluent-bit"),
                        help="the Fluent Bit binary (default ../shared/peers/fluent-bit; skipped when missing)")
    parser.add_argument("--reps", type=int, default=int(os.environ.get("REPS", "3")),
                        help="repetitions per subject (env REPS, default 3)")
    parser.add_argument("--subjects", default=",".join(SUBJECTS), help="comma-separated subset of " + ",".join(SUBJECTS))
    parser.add_argument("--files", type=int, default=2000, help="N: idle files for the CPU figure")
    parser.add_argument("--latency-files", type=int, default=1000, help="M: files followed while measuring latency")
    parser.add_argument("--samples", type=int, default=10, help="K: new files per latency run")
    parser.add_argument("--lines-per-file", type=int, default=3)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the last initial line and the window")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU time measured")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the initial lines, and for each new file's line")
    parser.add_argument("--results", default=os.path.join(REPO, "Benchmarks", "results", "many-files.md"),
                        help="write the table here ('' for stdout only)")
    parser.add_argument("--json", default=os.path.join(REPO, "Benchmarks", "out", "many-files-runs.json"),
                        help="every run's figures ('' for none)")
    args = parser.parse_args()
    args.subjects = [key for key in args.subjects.split(",") if key]
    for key in args.subjects:
        if key not in SUBJECTS:
            parser.error(f"unknown subject {key}; known: {', '.join(SUBJECTS)}")
    for name, value in (("--reps", args.reps), ("--files", args.files), ("--latency-files", args.latency_files),
                        ("--samples", args.samples), ("--lines-per-file", args.lines_per_file)):
        if not 1 <= value <= 1_000_000:
            parser.error(f"{name} must be between 1 and 1,000,000, not {value}")
    if args.window <= 0 or args.settle < 0 or args.timeout <= 0:
        parser.error("--window and --timeout must be positive, --settle not negative")
    args.agent = os.path.abspath(args.agent)
    args.fluent_bit = os.path.abspath(args.fluent_bit)
    if any(SUBJECTS[key][2] == "agent" for key in args.subjects) and not os.access(args.agent, os.X_OK):
        parser.error(f"no muster-agent at {args.agent}: build it (scripts/build-release muster-agent) "
                     "or give --agent")

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    results = {key: {"idle": [], "latency": []} for key in args.subjects}
    if "fluent-bit" in args.subjects and not os.access(args.fluent_bit, os.X_OK):
        log(f"no Fluent Bit at {args.fluent_bit}: its row is skipped")
        results["fluent-bit"]["skipped"] = "not found"
    args.load_at_start = os.getloadavg()[0]
    rng = random.Random(42)
    scratch = tempfile.mkdtemp(prefix="muster-many-files-", dir="/tmp")
    exit_code = 0
    try:
        for rep in range(1, args.reps + 1):
            for key in args.subjects:
                if results[key].get("skipped"):
                    continue
                for phase in ("idle", "latency"):
                    workdir = os.path.join(scratch, f"{key}-{phase}-{rep}")
                    os.makedirs(workdir)
                    log(f"run {rep}/{args.reps}: {key} {phase} ...")
                    run = run_idle(args, key, workdir) if phase == "idle" else run_latency(args, key, workdir, rng)
                    results[key][phase].append(run)
                    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in run.items() if k != "stderr"}
                    if "latencies_ms" in shown:
                        shown["latencies_ms"] = [round(v) for v in run["latencies_ms"]]
                    log(f"run {rep}/{args.reps}: {key} {phase}: {json.dumps(shown)}")
                    if "error" in run:
                        exit_code = 1
                        if run.get("stderr"):
                            log(f"stderr:\n{run['stderr']}")
                    shutil.rmtree(workdir, ignore_errors=True)
    except KeyboardInterrupt:
        log("interrupted")
        exit_code = 130
    finally:
        stop_all()
        shutil.rmtree(scratch, ignore_errors=True)
    table = render(args, results, machine_meta(args))
    print(table)
    for path, text in ((args.results, table), (args.json, json.dumps(results, indent=1))):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(text)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
