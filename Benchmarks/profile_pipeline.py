#!/usr/bin/env python3
"""Profiles one side of the pipeline benchmark under `perf record -g` (release build).

    python3 Benchmarks/profile_pipeline.py agent --out /tmp/agent.perf
    python3 Benchmarks/profile_pipeline.py collector --out /tmp/collector.perf
    python3 Benchmarks/profile_pipeline.py collector --replay --out /tmp/collector-alone.perf
    python3 Benchmarks/profile_pipeline.py collector --replay --call-graph dwarf --out /tmp/collector-dwarf.perf
    perf report -i /tmp/agent.perf --no-children --sort dso -g none

agent      muster-agent ships the benchmark log to the discard receiver of stage (a)
           (pipeline_bench's, in this process); recorded until every line has arrived.
collector  muster-collector under perf, the agent (not recorded) shipping the log to it;
           recorded until every line is committed and the search index has caught up
           (its indexed_through, polled read-only). With --replay, the agent's requests are
           recorded first (untimed) and replayed by threads of this process instead
           (pipeline_bench's b-collector): the collector alone on both cores.

Sampling is `cpu-clock` (-F 999 for the agent, 499 for the collector): this machine has no
hardware counters. Processes are stopped by PID; the temp dir goes at the end. The results
are in docs/notes/pipeline-profile.md.
"""

import argparse
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline_bench import (Counter, Replay, agent_argv, captured_batches, count_lines,  # noqa: E402
                            discard_http_server, exited_early, log, spawn, stop, stop_all)
from storelib import attach_search_index, search_indexed_through  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def perf(out, frequency, argv, call_graph="fp"):
    return ["perf", "record", "-F", str(frequency), "--call-graph", call_graph, "-o", out, "--"] + argv


def end_recording(recorder):
    """SIGINT: perf stops the recorded command and writes its file; up to 60 s for that,
    then the usual stop (SIGTERM, SIGKILL) by PID."""
    recorder.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    while exited_early(recorder) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    stop(recorder)


def profile_agent(args, workdir):
    counter = Counter(args.lines)
    server = discard_http_server(counter)
    try:
        started = time.monotonic()
        recorder = spawn("perf-agent", perf(args.out, 999, agent_argv(args, workdir, f"http://127.0.0.1:{server.server_address[1]}"), args.call_graph),
                         workdir)
        if not counter.done.wait(args.timeout):
            sys.exit(f"profile_pipeline: {counter.lines} of {args.lines} lines after {args.timeout:.0f} s")
        log(f"all {args.lines:,} lines received after {time.monotonic() - started:.1f} s")
        end_recording(recorder)
    finally:
        server.shutdown()
        server.server_close()


def profile_collector(args, workdir):
    database = os.path.join(workdir, "pipeline.sqlite")
    port_file = os.path.join(workdir, "collector.port")
    recorder = spawn("perf-collector", perf(args.out, 499, [
        os.path.join(args.bin_dir, "muster-collector"), "--database", database, "--host", "127.0.0.1", "--port", "0",
        "--port-file", port_file, "--token", "bench-token", "--log-level", "warning"], args.call_graph), workdir)
    deadline = time.monotonic() + 60
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        if time.monotonic() > deadline:
            sys.exit("profile_pipeline: the collector wrote no port file within 60 s")
        time.sleep(0.05)
    port = open(port_file).read().strip()
    started = time.monotonic()
    agent = None
    if args.replay:
        replay = Replay(args.captured, int(port))
    else:
        agent = spawn("agent", agent_argv(args, workdir, f"http://127.0.0.1:{port}"), workdir)
    deadline = started + args.timeout
    while True:
        time.sleep(0.5)
        if time.monotonic() > deadline:
            sys.exit(f"profile_pipeline: not committed and indexed after {args.timeout:.0f} s")
        if args.replay and replay.errors:
            sys.exit(f"profile_pipeline: {replay.errors[0]}")
        try:
            connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
            try:
                attach_search_index(connection, database)
                newest = connection.execute("SELECT max(id) FROM logs").fetchone()[0] or 0
                indexed = search_indexed_through(connection)
            finally:
                connection.close()
        except sqlite3.Error:
            continue
        if newest >= args.lines and indexed >= newest:
            break
    log(f"committed and indexed after {time.monotonic() - started:.1f} s")
    if agent is not None:
        stop(agent)
    end_recording(recorder)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("subject", choices=["agent", "collector"])
    parser.add_argument("--out", required=True, help="the perf.data file to write")
    parser.add_argument("--bin-dir", default=os.path.join(REPO, ".build-release", "release"))
    parser.add_argument("--log", default=os.path.join(REPO, "Benchmarks", "out", "haproxy-2000000-s42.log"))
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--replay", action="store_true",
                        help="collector: feed it the agent's requests recorded beforehand (untimed), as pipeline_bench's "
                             "b-collector stage does, instead of a running agent")
    parser.add_argument("--call-graph", default="fp", choices=["fp", "dwarf"],
                        help="perf's call-graph mode: fp (frame pointers, the default) or dwarf (unwinds through "
                             "libraries built without frame pointers, such as the system's libsqlite3, to split their "
                             "time by caller; much larger files)")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("profile_pipeline: perf is not installed (Debian: linux-perf)")
    if not os.path.exists(args.log):
        sys.exit(f"profile_pipeline: no {args.log}: run Benchmarks/run.sh once, or gen_haproxy_log.py")
    args.out = os.path.abspath(args.out)
    args.lines = count_lines(args.log)
    workdir = tempfile.mkdtemp(prefix="muster-profile-", dir=os.path.dirname(args.log))
    try:
        if args.replay:
            args.captured, problem = captured_batches(args, workdir)
            if problem:
                sys.exit(f"profile_pipeline: {problem}")
        (profile_agent if args.subject == "agent" else profile_collector)(args, workdir)
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"wrote {args.out}: perf report -i {args.out} --no-children --sort dso -g none")


if __name__ == "__main__":
    main()
