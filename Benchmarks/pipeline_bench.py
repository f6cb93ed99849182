#!/usr/bin/env python3
"""Muster pipeline benchmark harness (stdlib only). See Benchmarks/README.md.

    pipeline_bench.py --bin-dir .build-release/release --log Benchmarks/out/haproxy-2000000-s42.log \
        --reps 3 --results Benchmarks/results/latest.md

Stages, each repeated --reps times, in this order within a repetition (never concurrently):

  a-agent    muster-agent -> discard HTTP receiver (in this process)
  a-rsyslog  rsyslogd imfile -> omfwd TCP -> line-counting TCP listener (in this process)
  a-fluentbit  Fluent Bit tail -> http (JSON lines, gzip) -> the same discard HTTP receiver
             (../shared/peers/fluent-bit and its configuration; skipped when missing)
  b-pipeline muster-agent -> muster-collector -> SQLite (committed rows polled read-only)
  b-collector  the agent's requests for the same file, recorded once (untimed), replayed to
             muster-collector by three senders in this process: the collector with both cores
             and no agent beside it, against the same ceilings
  b-ceiling  muster-bench-insert: the same rows through MusterStore directly
  b-plain    muster-bench-insert --plain: the same rows into a table with only the identity
             constraint, WAL, synchronous=FULL, same chunk: SQLite's own pace (the true ceiling)

Everything listens on 127.0.0.1 only. Every process is started by this script, stopped by its
PID (SIGTERM, then SIGKILL after a timeout) and reaped with os.wait4, whose rusage gives its
CPU time and peak RSS. Temporary directories are removed at the end, also on failure or ^C.
"""

import argparse
import datetime
import http.client
import http.server
import json
import os
import platform
import shutil
import signal
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import status_mib  # noqa: E402

from storelib import attach_search_index, search_indexed_through

TOKEN = "bench-token"
NODE = "bench-node"
SOURCE = "haproxy"
POLL_SECONDS = 0.1

# ---------------------------------------------------------------------------------------------
# Processes: started here, stopped by PID, reaped with wait4.

LIVE = {}  # pid -> (name, Popen)


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def spawn(name, argv, workdir, environment=None):
    out = open(os.path.join(workdir, f"{name}.stdout"), "wb")
    err = open(os.path.join(workdir, f"{name}.stderr"), "wb")
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, close_fds=True,
                               env=environment)
    out.close()
    err.close()
    LIVE[process.pid] = (name, process)
    return process


class Exited:
    def __init__(self, name, status, rusage, killed):
        self.name = name
        self.status = status
        self.cpu = rusage.ru_utime + rusage.ru_stime
        self.user = rusage.ru_utime
        self.system = rusage.ru_stime
        self.maxrss_mib = rusage.ru_maxrss / 1024.0  # Linux: KiB; includes the forking parent's RSS
        self.hwm_mib = None  # VmHWM just before SIGTERM (see peak_rss_mib)
        self.killed = killed

    @property
    def clean(self):
        return not self.killed and os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0

    def describe(self):
        if self.killed:
            return "killed (did not stop on SIGTERM)"
        if os.WIFEXITED(self.status):
            return f"exit {os.WEXITSTATUS(self.status)}"
        return f"signal {os.WTERMSIG(self.status)}"


def peak_rss_mib(pid):
    """VmHWM of a running process: the high-water mark of *its own* address space.

    wait4's ru_maxrss is not used for this: Linux carries the pre-exec high-water mark across
    execve (signal->maxrss), so a child forked from this Python process reports at least this
    process's RSS at fork time (~40 MiB) whatever the child itself uses."""
    return status_mib(pid, "VmHWM")


def stop(process, timeout=30.0):
    """SIGTERM by PID, wait up to `timeout`, then SIGKILL; returns an Exited with its rusage
    and the VmHWM read just before the SIGTERM."""
    early = exited_early(process)
    if early is not None:
        return early
    hwm = peak_rss_mib(process.pid)
    name = LIVE.get(process.pid, ("?", None))[0]
    killed = False
    try:
        os.kill(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        if time.monotonic() > deadline and not killed:
            log(f"{name} (pid {process.pid}) did not stop within {timeout:.0f}s of SIGTERM; sending SIGKILL")
            os.kill(process.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.01)
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits on a reused PID
    LIVE.pop(process.pid, None)
    process.exited = Exited(name, status, rusage, killed)
    process.exited.hwm_mib = hwm
    return process.exited


def exited_early(process):
    """Reaps the process if it already exited; returns an Exited or None while it runs.

    Used instead of Popen.poll(), which would reap the child and lose its rusage."""
    if getattr(process, "exited", None) is not None:
        return process.exited
    pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
    if pid != process.pid:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    name = LIVE.pop(process.pid, ("?", None))[0]
    process.exited = Exited(name, status, rusage, False)
    return process.exited


def stop_all():
    for pid, (name, process) in list(LIVE.items()):
        log(f"cleanup: stopping {name} (pid {pid})")
        stop(process, timeout=10.0)


def tail(path, limit=1500):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return data[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Receivers (threads of this process).

class Counter:
    """Counts lines and bytes; records the monotonic time the expected count was reached."""

    def __init__(self, expected):
        self.expected = expected
        self.lock = threading.Lock()
        self.lines = 0
        self.wire_bytes = 0
        self.raw_bytes = 0
        self.requests = 0
        self.errors = []
        self.done_at = None
        self.done = threading.Event()
        self.arrivals = []  # monotonic time of each request/segment with lines in it
        self.last_lines = 0

    def add(self, lines, wire_bytes, raw_bytes):
        now = time.monotonic()
        with self.lock:
            self.lines += lines
            self.wire_bytes += wire_bytes
            self.raw_bytes += raw_bytes
            self.requests += 1
            if lines:
                self.arrivals.append(now)
                self.last_lines = lines
            if self.done_at is None and self.lines >= self.expected:
                self.done_at = now
                self.done.set()


def discard_http_server(counter, keep=None):
    """Inflates and counts each POST's lines and answers as the collector does; with `keep`, a
    list, also appends each request's (path, headers, body) to it."""
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY, and each answer goes out in one write: otherwise a small second segment
        # waits for the client's delayed ACK (Nagle), ~40 ms per batch, and the receiver
        # rather than the agent sets the pace.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                try:
                    raw = zlib.decompress(body, 47)  # zlib (the agent) or gzip (Fluent Bit)
                except zlib.error:
                    raw = zlib.decompress(body, -15)  # raw deflate, also called "deflate"
            except zlib.error as error:
                counter.errors.append(f"inflate: {error}")
                self.answer(400, b'{"error":"bad body"}')
                return
            if keep is not None:
                keep.append((self.path, {name: self.headers[name] for name in REPLAYED_HEADERS if name in self.headers}, body))
            lines = raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
            # Counted before answering: the end of the measurement is the moment the last
            # line has arrived and been inflated.
            counter.add(lines, len(body), len(raw))
            self.answer(200, json.dumps({"accepted": lines, "duplicates": 0}).encode())

        def answer(self, status, payload):
            reason = "OK" if status == 200 else "Bad Request"
            self.wfile.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode("ascii") + payload)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


def line_counting_tcp_server(counter):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                data = self.request.recv(1 << 20)
                if not data:
                    return
                counter.add(data.count(b"\n"), len(data), len(data))

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


def process_cpu():
    usage = os_resource().getrusage(os_resource().RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def os_resource():
    import resource
    return resource


# ---------------------------------------------------------------------------------------------
# Stages.

def agent_argv(args, workdir, url, log=None, state="agent-state"):
    return [os.path.join(args.bin_dir, "muster-agent"), "--node", NODE, "--collector-url", url,
            "--token", TOKEN, "--state-dir", os.path.join(workdir, state),
            "--file", f"{SOURCE}={log or args.log}", "--log-level", "warning"]


def process_figures(exited, lines, seconds):
    """Rate, CPU and memory of a process that moved `lines` in `seconds`."""
    return {
        "seconds": round(seconds, 3),
        "lines_per_s": lines / seconds,
        "cpu_s": exited.cpu, "cpu_user_s": exited.user, "cpu_sys_s": exited.system,
        "cpu_s_per_m": exited.cpu / lines * 1e6,
        "rss_mib": exited.hwm_mib, "ru_maxrss_mib": exited.maxrss_mib,
    }


def wait_for(counter, process, timeout):
    """Waits until the counter is complete, the process dies, or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not counter.done.wait(0.1):
        early = exited_early(process)
        if early is not None:
            return f"{early.name} exited early ({early.describe()})"
        if time.monotonic() > deadline:
            return f"timed out after {timeout:.0f}s"
    return None


def idle_rss_mib(args, workdir, url):
    """RSS of the same agent binary with nothing to read, 5 s after start: the part of the peak
    that is the process itself, not its work, once it settled (its first idle memory release
    comes after a second of quiet; docs/agent.md, "Memory")."""
    empty = os.path.join(workdir, "empty.log")
    open(empty, "w").close()
    agent = spawn("agent-idle", agent_argv(args, workdir, url, log=empty, state="idle-state"), workdir)
    time.sleep(5.0)
    try:
        return status_mib(agent.pid)
    finally:
        stop(agent)


def ship_to(server, counter, args, workdir, name, label, argv, environment=None):
    """Runs one sender (`argv`, its files named `name`) until `counter` has every line, it dies
    or the stage's timeout passes, then stops it and the receiver `server`. Returns the stage's
    result (keys `{label}_exit`, and on failure `error` and `{label}_stderr`; on success the
    process's figures and the bytes per line on the wire) and the monotonic start."""
    harness_cpu0 = process_cpu()
    try:
        started = time.monotonic()
        sender = spawn(name, argv, workdir, environment)
        problem = wait_for(counter, sender, args.timeout)
        time.sleep(0.2)  # any straggler batch (there should be none) is counted too
        exited = stop(sender)
    finally:
        server.shutdown()
        server.server_close()
    result = {"lines": counter.lines, "expected": args.lines, "requests": counter.requests,
              "wire_bytes": counter.wire_bytes, f"{label}_exit": exited.describe(),
              "receiver_errors": counter.errors[:3], "receiver_cpu_s": round(process_cpu() - harness_cpu0, 3)}
    if problem or counter.lines != args.lines or counter.errors:
        result["error"] = problem or f"received {counter.lines} lines, expected {args.lines}"
        result[f"{label}_stderr"] = tail(os.path.join(workdir, f"{name}.stderr"))
        return result, started
    result.update(process_figures(exited, args.lines, counter.done_at - started))
    result["wire_bytes_per_line"] = counter.wire_bytes / args.lines
    return result, started


def stage_a_agent(args, workdir):
    counter = Counter(args.lines)
    server = discard_http_server(counter)
    port = server.server_address[1]
    result, started = ship_to(
        server, counter, args, workdir, "agent-a", "agent", agent_argv(args, workdir, f"http://127.0.0.1:{port}"))
    result["ndjson_bytes"] = counter.raw_bytes
    if "error" in result:
        return result
    result["idle_rss_mib"] = idle_rss_mib(args, workdir, "http://127.0.0.1:9")
    result.update({
        "ndjson_bytes_per_line": counter.raw_bytes / args.lines,
        # The last, partial batch leaves once the agent has caught up with the file (or at
        # batch.max_age_ms): this is how long after the previous batch it arrived.
        "last_batch_gap_s": (counter.arrivals[-1] - counter.arrivals[-2]) if len(counter.arrivals) > 1 else None,
        "first_batch_s": counter.arrivals[0] - started if counter.arrivals else None,
        "last_batch_lines": counter.last_lines,
    })
    return result


RSYSLOG_CONF = """\
# Generated by Benchmarks/pipeline_bench.py; used only by the rsyslogd it starts.
global(workDirectory="{work}")
module(load="imfile" mode="inotify")
input(type="imfile" file="{log}" tag="haproxy:" ruleset="ship")
ruleset(name="ship") {{
    action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp")
}}
"""


def stage_a_rsyslog(args, workdir):
    counter = Counter(args.lines)
    server = line_counting_tcp_server(counter)
    port = server.server_address[1]
    work = os.path.join(workdir, "rsyslog-work")
    os.makedirs(work)
    conf = os.path.join(workdir, "rsyslog.conf")
    with open(conf, "w") as handle:
        handle.write(RSYSLOG_CONF.format(work=work, log=args.log, port=port))
    result, _ = ship_to(server, counter, args, workdir, "rsyslogd", "rsyslogd",
                        [args.rsyslogd, "-n", "-f", conf, "-i", os.path.join(workdir, "rsyslogd.pid")])
    return result


def stage_a_fluent_bit(args, workdir):
    """Fluent Bit doing the agent's job of stage a-agent: tail the file from its start, JSON
    lines over HTTP with gzip, to the same receiver (../shared/peers/fluent-bit-tail-http.conf,
    unchanged). Its body is one {"date":…,"log":"…"} per line; the receiver counts lines."""
    if not os.access(args.fluent_bit, os.X_OK):
        return {"skipped": f"no Fluent Bit at {args.fluent_bit}"}
    counter = Counter(args.lines)
    server = discard_http_server(counter)
    environment = dict(os.environ, FB_LOG=args.log, FB_DB=os.path.join(workdir, "fluent-bit.db"),
                       FB_PORT=str(server.server_address[1]), FB_URI="/v1/ingest")
    result, _ = ship_to(server, counter, args, workdir, "fluent-bit", "fluent_bit",
                        [args.fluent_bit, "-c", args.fluent_bit_config], environment)
    return result


def wait_for_file(path, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as handle:
                text = handle.read().strip()
            if text:
                return text
        if exited_early(process) is not None:
            return None
        time.sleep(0.02)
    return None


REPLAYED_HEADERS = ("Authorization", "Content-Type", "Content-Encoding")


def captured_batches(args, workdir):
    """The agent's requests for the whole log, recorded once per benchmark run (untimed) from a
    discard receiver: what stage b-collector replays."""
    if getattr(args, "captured", None) is None:
        counter = Counter(args.lines)
        kept = []
        server = discard_http_server(counter, keep=kept)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result, _ = ship_to(server, counter, args, workdir, "agent-capture", "agent",
                            agent_argv(args, workdir, url, state="capture-state"))
        if "error" in result:
            return None, f"recording the agent's batches: {result['error']}"
        args.captured = kept
    return args.captured, None


class Replay:
    """Sends recorded requests to the collector from `senders` threads, each on its own
    keep-alive connection, taking the next request when its last one was answered (the agent
    keeps three in flight); a 503 (the writer's queue is full) is sent again shortly after, and
    a request whose connection broke is sent once more on a new one. Any other failure stops the
    replay and is in `errors`."""

    def __init__(self, batches, port, senders=3):
        self.batches = batches
        self.port = port
        self.next = 0
        self.lock = threading.Lock()
        self.errors = []
        self.threads = [threading.Thread(target=self.send, daemon=True) for _ in range(senders)]
        for thread in self.threads:
            thread.start()

    def take(self):
        with self.lock:
            if self.next >= len(self.batches) or self.errors:
                return None
            self.next += 1
            return self.batches[self.next - 1]

    def post(self, connection, path, headers, body):
        while True:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 503:
                return response.status
            time.sleep(0.05)

    def send(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while (batch := self.take()) is not None:
                try:
                    status = self.post(connection, *batch)
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    status = self.post(connection, *batch)
                if status != 200:
                    self.errors.append(f"HTTP {status} for a recorded batch")
        except Exception as error:  # noqa: BLE001 - any failure must end the stage, not hang it
            self.errors.append(f"replay: {error!r}")
        finally:
            connection.close()


def stage_b_collector(args, workdir):
    batches, problem = captured_batches(args, workdir)
    if problem:
        return {"error": problem}
    return stage_b(args, workdir, replay=batches)


def stage_b(args, workdir, replay=None):
    database = os.path.join(workdir, "pipeline.sqlite")
    port_file = os.path.join(workdir, "collector.port")
    collector = spawn("collector", [os.path.join(args.bin_dir, "muster-collector"), "--database", database,
                                    "--host", "127.0.0.1", "--port", "0", "--port-file", port_file,
                                    "--token", TOKEN, "--log-level", "warning"]
                      + (["--config", args.collector_config] if args.collector_config else []), workdir)
    agent = None
    result = {"expected": args.lines}
    connection = None
    try:
        port = wait_for_file(port_file, collector, 30)
        if port is None:
            result["error"] = "collector did not start"
            result["collector_stderr"] = tail(os.path.join(workdir, "collector.stderr"))
            return result
        started = time.monotonic()
        if replay is None:
            agent = spawn("agent-b", agent_argv(args, workdir, f"http://127.0.0.1:{port}"), workdir)
        else:
            sender = Replay(replay, int(port))
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
        deadline = started + args.timeout
        committed_at = None
        lag_rows = None
        poll_cost = 0.0
        polls = 0
        # Poll committed rows. `max(id)` is a cheap guard (O(log n)); `count(*)` (a full index
        # scan, tens of ms at 2M rows) runs only once max(id) has reached the target. Since ids
        # are unique positive integers, count(*) <= max(id) always, so count(*) cannot reach
        # the target before max(id) does: the moment detected is the one a count(*) poll gives.
        while time.monotonic() < deadline:
            poll_started = time.monotonic()
            attach_search_index(connection, database)
            connection.execute("BEGIN")
            max_id = connection.execute("SELECT max(id) FROM logs").fetchone()[0] or 0
            count = None
            if max_id >= args.lines:
                count = connection.execute("SELECT count(*) FROM logs").fetchone()[0]
                indexed = search_indexed_through(connection)
            connection.execute("COMMIT")
            poll_cost += time.monotonic() - poll_started
            polls += 1
            if count is not None and count >= args.lines:
                committed_at = poll_started  # the snapshot that saw it was taken after this instant
                lag_rows = max_id - indexed
                result["rows_committed"] = count
                break
            for process in (collector, agent):
                early = exited_early(process) if process is not None else None
                if early is not None:
                    result["error"] = f"{early.name} exited early ({early.describe()})"
                    return result
            if replay is not None and sender.errors:
                result["error"] = sender.errors[0]
                return result
            time.sleep(POLL_SECONDS)
        if committed_at is None:
            result["error"] = f"timed out after {args.timeout:.0f}s ({max_id} rows)"
            return result
        seconds = committed_at - started
        # Search index: poll until it covers max(id).
        indexed_at = None
        while time.monotonic() < committed_at + args.timeout:
            attach_search_index(connection, database)
            connection.execute("BEGIN")
            max_id = connection.execute("SELECT max(id) FROM logs").fetchone()[0] or 0
            indexed = search_indexed_through(connection)
            connection.execute("COMMIT")
            if indexed >= max_id:
                indexed_at = time.monotonic()
                break
            time.sleep(POLL_SECONDS)
        result.update({
            "seconds": round(seconds, 3),
            "lines_per_s": args.lines / seconds,
            "index_lag_rows": lag_rows,
            "index_catchup_s": (indexed_at - committed_at) if indexed_at else None,
            "polls": polls, "poll_cost_s": round(poll_cost, 3),
        })
        if indexed_at is None:
            result["error"] = "search index did not catch up"
    finally:
        if connection is not None:
            connection.close()
        if agent is not None:
            exited = stop(agent)
            result.update({"agent_exit": exited.describe(), "agent_cpu_s": exited.cpu,
                           "agent_cpu_s_per_m": exited.cpu / args.lines * 1e6, "agent_rss_mib": exited.hwm_mib})
        exited = stop(collector)
        result.update({"collector_exit": exited.describe(), "collector_cpu_s": exited.cpu,
                       "collector_cpu_s_per_m": exited.cpu / args.lines * 1e6,
                       "collector_rss_mib": exited.hwm_mib})
        if "error" in result:
            result["agent_stderr"] = tail(os.path.join(workdir, "agent-b.stderr"))
            result["collector_stderr"] = tail(os.path.join(workdir, "collector.stderr"))
    try:
        result["database_mib"] = sum(
            os.path.getsize(p) for p in (database, database + "-wal", database + "-search", database + "-search-wal")
            if os.path.exists(p)) / (1 << 20)
    except OSError:
        pass
    return result


def stage_b_ceiling(args, workdir, plain=False):
    database = os.path.join(workdir, "ceiling.sqlite")
    started = time.monotonic()
    process = spawn("bench-insert", [os.path.join(args.bin_dir, "muster-bench-insert"), "--file", args.log,
                                     "--database", database, "--node", NODE, "--source", SOURCE,
                                     "--chunk", str(args.ceiling_chunk)] + (["--plain"] if plain else []), workdir)
    deadline = started + args.timeout
    exited = None
    while exited is None and time.monotonic() < deadline:
        exited = exited_early(process)
        if exited is None:
            time.sleep(0.05)
    if exited is None:
        exited = stop(process)
        return {"error": f"timed out after {args.timeout:.0f}s"}
    wall = time.monotonic() - started
    if not exited.clean:
        return {"error": f"muster-bench-insert {exited.describe()}",
                "stderr": tail(os.path.join(workdir, "bench-insert.stderr"))}
    with open(os.path.join(workdir, "bench-insert.stdout")) as handle:
        report = json.loads(handle.read().strip().splitlines()[-1])
    if report["stored"] != args.lines:
        return {"error": f"stored {report['stored']} rows, expected {args.lines}"}
    report.update({"wall_s": wall, "cpu_s": exited.cpu, "ru_maxrss_mib": exited.maxrss_mib})
    return report


STAGES = {
    "a-agent": stage_a_agent,
    "a-rsyslog": stage_a_rsyslog,
    "a-fluentbit": stage_a_fluent_bit,
    "b-pipeline": stage_b,
    "b-collector": stage_b_collector,
    "b-ceiling": stage_b_ceiling,
    "b-plain": lambda args, workdir: stage_b_ceiling(args, workdir, plain=True),
}


# ---------------------------------------------------------------------------------------------
# Report.

def fmt_int(value):
    return f"{value:,.0f}"


def fmt1(value):
    return f"{value:.1f}"


def fmt2(value):
    return f"{value:.2f}"


# (stage, key, label, formatter, target text, check(median) -> bool or None)
ROWS = [
    ("a-agent", "lines_per_s", "(a) muster-agent → discard: lines/s", fmt_int, "≥ 300,000", lambda v: v >= 300_000),
    ("a-agent", "cpu_s_per_m", "(a) muster-agent: CPU-s per 1M lines", fmt2, "≤ 4", lambda v: v <= 4),
    ("a-agent", "rss_mib", "(a) muster-agent: peak RSS (MiB)", fmt1, "≤ 30", lambda v: v <= 30),
    ("a-agent", "idle_rss_mib", "(a) muster-agent: RSS idle, same binary, nothing to read, 5 s after start (MiB)", fmt1, "≤ 12",
     lambda v: v <= 12),
    ("a-agent", "wire_bytes_per_line", "(a) muster-agent: compressed bytes/line on the wire", fmt1, "≤ 40",
     lambda v: v <= 40),
    ("a-agent", "last_batch_gap_s", "(a) muster-agent: of the time above, last partial batch waiting (s)", fmt2,
     "—", None),
    ("a-rsyslog", "lines_per_s", "(a) rsyslogd imfile → omfwd TCP: lines/s", fmt_int, "(peer)", None),
    ("a-rsyslog", "cpu_s_per_m", "(a) rsyslogd: CPU-s per 1M lines", fmt2, "(peer)", None),
    ("a-rsyslog", "rss_mib", "(a) rsyslogd: peak RSS (MiB)", fmt1, "(peer)", None),
    ("a-rsyslog", "wire_bytes_per_line", "(a) rsyslogd: bytes/line on the wire (uncompressed)", fmt1, "(peer)",
     None),
    ("a-fluentbit", "lines_per_s", "(a) Fluent Bit tail → http (gzip JSON lines): lines/s", fmt_int, "(peer)", None),
    ("a-fluentbit", "cpu_s_per_m", "(a) Fluent Bit: CPU-s per 1M lines", fmt2, "(peer)", None),
    ("a-fluentbit", "rss_mib", "(a) Fluent Bit: peak RSS (MiB)", fmt1, "(peer)", None),
    ("a-fluentbit", "wire_bytes_per_line", "(a) Fluent Bit: compressed bytes/line on the wire", fmt1, "(peer)",
     None),
    ("b-pipeline", "lines_per_s", "(b) agent → collector → SQLite: committed lines/s", fmt_int, "≥ 200,000",
     lambda v: v >= 200_000),
    ("b-pipeline", "index_lag_rows", "(b) search index lag at that moment (rows)", fmt_int, "—", None),
    ("b-pipeline", "index_catchup_s", "(b) search index catch-up after that (s)", fmt1, "—", None),
    ("b-pipeline", "collector_cpu_s_per_m", "(b) muster-collector: CPU-s per 1M lines", fmt2, "—", None),
    ("b-pipeline", "collector_rss_mib", "(b) muster-collector: peak RSS (MiB)", fmt1, "—", None),
    ("b-pipeline", "agent_cpu_s_per_m", "(b) muster-agent: CPU-s per 1M lines", fmt2, "—", None),
    ("b-collector", "lines_per_s", "(b) collector alone, the agent's batches replayed: committed lines/s", fmt_int,
     "≥ 0.9 × plain (ratio below)", None),
    ("b-collector", "index_catchup_s", "(b) collector alone: search index catch-up after that (s)", fmt1, "≤ 5",
     lambda v: v <= 5),
    ("b-collector", "collector_cpu_s_per_m", "(b) collector alone: CPU-s per 1M lines (ingest + index)", fmt2, "≤ 8",
     lambda v: v <= 8),
    ("b-collector", "collector_rss_mib", "(b) collector alone: peak RSS (MiB)", fmt1, "—", None),
    ("b-ceiling", "lines_per_second", "(b) ceiling: muster-bench-insert lines/s (read + insert)", fmt_int, "(ceiling)",
     None),
    ("b-ceiling", "insert_lines_per_second", "(b) ceiling: insert transactions only, lines/s", fmt_int,
     "(ceiling)", None),
    ("b-plain", "lines_per_second", "(b) plain SQLite table, identity constraint only: lines/s (read + insert)",
     fmt_int, "(true ceiling)", None),
    ("b-plain", "insert_lines_per_second", "(b) plain SQLite table: insert transactions only, lines/s", fmt_int,
     "(true ceiling)", None),
]

# Ratios of medians, printed under the table: (numerator stage, key, denominator stage, key, label).
RATIOS = [
    ("a-agent", "lines_per_s", "a-rsyslog", "lines_per_s", "(a) muster-agent's rate / rsyslogd's"),
    ("a-agent", "lines_per_s", "a-fluentbit", "lines_per_s", "(a) muster-agent's rate / Fluent Bit's"),
    ("a-agent", "cpu_s_per_m", "a-fluentbit", "cpu_s_per_m", "(a) muster-agent's CPU per line / Fluent Bit's"),
    ("a-agent", "rss_mib", "a-fluentbit", "rss_mib", "(a) muster-agent's peak RSS / Fluent Bit's"),
    ("b-pipeline", "lines_per_s", "b-plain", "lines_per_second", "(b) agent → collector → SQLite / the plain table"),
    ("b-collector", "lines_per_s", "b-plain", "lines_per_second",
     "(b) the collector alone (replayed batches) / the plain table"),
    ("b-ceiling", "lines_per_second", "b-plain", "lines_per_second", "(b) the store's insert path / the plain table"),
]


def render(results, reps, meta):
    lines = []
    lines.append(f"# Muster pipeline benchmark — {meta['when']}")
    lines.append("")
    lines.append(f"- Data: `{meta['log_name']}`: {meta['lines']:,} HAProxy httplog lines, "
                 f"{meta['log_bytes'] / 1e6:.1f} MB, {meta['log_bytes'] / meta['lines']:.1f} bytes/line "
                 f"(generated, seed {meta['seed']})")
    lines.append(f"- Machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['kernel']}; loopback only")
    lines.append(f"- Code: {meta['git']}; {meta['swift']}; {meta['rsyslog']}; {meta['fluent_bit']}")
    lines.append(f"- Runs: {reps} per stage, stages one after another; median of the runs. CPU = user + system from "
                 "wait4 rusage; peak RSS = VmHWM just before SIGTERM (see README).")
    lines.append("")
    header = ["Metric"] + [f"run {i + 1}" for i in range(reps)] + ["median", "target", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (reps + 1) + ["---:", ":---:"]) + "|")
    for stage, key, label, formatter, target, check in ROWS:
        runs = results.get(stage, [])
        cells = []
        values = []
        for run in runs:
            value = run.get(key) if "error" not in run else None
            if value is None:
                cells.append("error" if "error" in run else "skipped" if "skipped" in run else "n/a")
            else:
                cells.append(formatter(value))
                values.append(value)
        cells += [""] * (reps - len(cells))
        if values and len(values) == len(runs):
            median = statistics.median(values)
            median_text = formatter(median)
            verdict = "" if check is None else ("✅" if check(median) else "❌")
        else:
            median_text = "n/a"
            verdict = "" if check is None else "❌"
        lines.append("| " + " | ".join([label] + cells + [median_text, target, verdict]) + " |")
    def median_of(stage, key):
        values = [run.get(key) for run in results.get(stage, []) if "error" not in run and "skipped" not in run]
        return statistics.median(values) if values and None not in values else None

    ratio_lines = []
    for top_stage, top_key, bottom_stage, bottom_key, label in RATIOS:
        top, bottom = median_of(top_stage, top_key), median_of(bottom_stage, bottom_key)
        if top is not None and bottom:
            ratio_lines.append(f"- {label}: **{top / bottom:.2f}**")
    if ratio_lines:
        lines.append("")
        lines.append("Ratios of the medians, same run:")
        lines.append("")
        lines.extend(ratio_lines)
    errors = [(stage, i + 1, run["error"]) for stage, runs in results.items() for i, run in enumerate(runs)
              if "error" in run]
    if errors:
        lines.append("")
        lines.append("Errors:")
        for stage, rep, error in errors:
            lines.append(f"- {stage} run {rep}: {error}")
    lines.append("")
    return "\n".join(lines)


def command_output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_meta(args):
    cpu_model = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = command_output(["git", "-C", repo, "rev-parse", "--short", "HEAD"]) or "?"
    dirty = command_output(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"])
    swift = command_output(["swift", "--version"]).splitlines()
    rsyslog = command_output([args.rsyslogd, "-v"]).splitlines()
    fluent_bit = command_output([args.fluent_bit, "--version"]).splitlines() if os.access(args.fluent_bit, os.X_OK) else []
    return {
        "when": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "log_name": os.path.basename(args.log), "lines": args.lines, "log_bytes": os.path.getsize(args.log),
        "seed": args.seed, "cpus": os.cpu_count(), "cpu_model": cpu_model,
        "kernel": f"Linux {platform.release()}",
        "git": f"commit {commit}" + (" + uncommitted changes" if dirty else ""),
        "swift": swift[0] if swift else "swift ?",
        "rsyslog": " ".join(rsyslog[0].split(" compiled")[0].split()) if rsyslog else "rsyslogd ?",
        "fluent_bit": fluent_bit[0] if fluent_bit else "Fluent Bit not found",
    }


def count_lines(path):
    total = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(16 << 20)
            if not block:
                return total
            total += block.count(b"\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True, help="directory with the release muster-* binaries")
    parser.add_argument("--log", required=True, help="the generated log file")
    parser.add_argument("--seed", default="?", help="the generator seed (for the report only)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds one stage may take")
    parser.add_argument("--ceiling-chunk", type=int, default=10_000, help="records per ceiling transaction")
    parser.add_argument("--rsyslogd", default="/usr/sbin/rsyslogd")
    peers = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "peers")
    parser.add_argument("--fluent-bit", default=os.path.join(peers, "fluent-bit"),
                        help="the Fluent Bit binary (default ../shared/peers/fluent-bit; its stage is skipped when missing)")
    parser.add_argument("--fluent-bit-config", default=os.path.join(peers, "fluent-bit-tail-http.conf"))
    parser.add_argument("--collector-config", help="stages b-pipeline and b-collector: the collector's YAML config file "
                        "(e.g. another search_index.chunk_rows); the command line's database, port and token still win")
    parser.add_argument("--results", help="also write the table here (Markdown)")
    parser.add_argument("--json", help="also write every run's raw figures here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dirs (for debugging)")
    args = parser.parse_args()
    args.log = os.path.abspath(args.log)
    args.bin_dir = os.path.abspath(args.bin_dir)
    stages = [s for s in args.stages.split(",") if s]
    for stage in stages:
        if stage not in STAGES:
            parser.error(f"unknown stage {stage}")
    args.lines = count_lines(args.log)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    temp_root = tempfile.mkdtemp(prefix="muster-bench-", dir=os.path.dirname(args.log))
    results = {stage: [] for stage in stages}
    exit_code = 0
    try:
        for rep in range(args.reps):
            for stage in stages:
                workdir = os.path.join(temp_root, f"{stage}-{rep + 1}")
                os.makedirs(workdir)
                log(f"run {rep + 1}/{args.reps}: {stage} ...")
                result = STAGES[stage](args, workdir)
                results[stage].append(result)
                summary = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()
                           if not k.endswith("stderr")}
                log(f"run {rep + 1}/{args.reps}: {stage}: {json.dumps(summary)}")
                if "error" in result:
                    exit_code = 1
                    for key, value in result.items():
                        if key.endswith("stderr") and value:
                            log(f"{key}:\n{value}")
                if not args.keep_temp:
                    shutil.rmtree(workdir, ignore_errors=True)
    except KeyboardInterrupt:
        log("interrupted")
        exit_code = 130
    finally:
        stop_all()
        if not args.keep_temp:
            shutil.rmtree(temp_root, ignore_errors=True)
        else:
            log(f"kept {temp_root}")
    table = render(results, args.reps, machine_meta(args))
    print(table)
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, "w") as handle:
            handle.write(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1, default=str)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
