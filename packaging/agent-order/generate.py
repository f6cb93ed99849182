#!/usr/bin/env python3
"""Writes the agent's function order: the functions a release muster-agent runs, in the order
the linker is to place them (packaging/agent-order/muster-agent.order).

    packaging/agent-order/generate.py --bin-dir DIR [--lines 20000] [--out FILE]

DIR holds muster-agent and muster-collector as `scripts/build-release` makes them (with their
symbol tables: the order file names functions by their symbols). The agent runs three times
under valgrind's callgrind, with its /metrics on:
  1. start against a real collector on loopback, then idle with one empty file: what every
     agent runs;
  2. start, then ship --lines HAProxy lines to it and answer a /metrics scrape: what it runs
     at work;
  3. start with the collector down (a closed loopback port), read the lines and retry.
The file lists the functions of run 1, then those only run 2 ran, then those only run 3 ran,
each run's in address order. `scripts/build-release` links the agent with it
(`lld --symbol-ordering-file`), so the code an agent runs sits together in a few MiB of its
binary instead of spread over 30 MB of it: the kernel maps a binary's code in 64 KiB windows
around each page first touched, so spread code costs resident memory far beyond its size
(docs/agent.md, "Memory").

Functions the file names that a later build no longer has are skipped by the linker; functions
added since are placed after the listed ones. Regenerate it when the agent's start-up or its
shipping path changes much (its resident memory, docs/benchmarks.md, says when).
"""
import argparse
import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "Benchmarks"))
from clusterlib import free_port, metric_samples, stop_process  # noqa: E402
TOKEN = "order-token"


def fail(message):
    print(f"generate.py: {message}", file=sys.stderr)
    sys.exit(1)


def wait_until(what, check, processes, timeout):
    """Polls `check` until it returns a true value; fails when one of `processes` exits or time
    runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for name, process in processes.items():
            if process.poll() is not None:
                fail(f"{what}: the {name} exited with status {process.returncode}")
        time.sleep(0.5)
    fail(f"{what}: not within {timeout} s")


def metrics(port):
    """The agent's /metrics as {name with labels: value}, or None while it does not answer."""
    try:
        return metric_samples(f"http://127.0.0.1:{port}", timeout=5)
    except OSError:
        return None


def executed_addresses(callgrind_out, binary_name):
    """Addresses of the instructions of `binary_name` that callgrind saw run (`--dump-instr=yes`).

    Read from the cost lines' positions rather than callgrind's function names: it names a block
    of code after the symbol it entered first, so small functions reached by a jump or a fall
    through (metadata and witness-table accessors, async continuations) go unnamed."""
    objects, current, position, seen, after_call = {}, None, 0, set(), False
    object_line = re.compile(r"^(c?ob)=\((\d+)\)(?: (.*))?$")
    with open(callgrind_out, errors="replace") as f:
        for line in f:
            m = object_line.match(line)
            if m:
                kind, index, name = m.groups()
                if name:
                    objects[index] = name.strip()
                if kind == "ob":
                    current = os.path.basename(objects[index]) == binary_name
                continue
            token = line.split(" ", 1)[0].strip()
            if not token:
                continue
            if "=" in token:
                # fn=, fl= and the like; after calls=, jump= and jcnd= comes the line of the
                # call or jump itself, whose position callgrind does not take as the next base.
                after_call = token.startswith(("calls=", "jump=", "jcnd="))
                continue
            if token.startswith("0x"):
                here = int(token, 16)
            elif token[0] in "+-":
                here = position + int(token)
            elif token == "*":
                here = position
            else:
                continue
            if not after_call:
                position = here
            after_call = False
            if current:
                seen.add(here)
    return seen


def functions_at(addresses, symbols, starts):
    """The functions (`symbols`: sorted `(start, size, name)`, `starts` their starts) holding
    `addresses`, in address order."""
    found, names = [], set()
    for address in sorted(addresses):
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0:
            start, size, name = symbols[i]
            if address < start + max(size, 1) and name not in names:
                names.add(name)
                found.append(name)
    return found


def agent_figures(port, names):
    """`names` from the agent's /metrics, or None while it does not answer."""
    m = metrics(port)
    if m is None:
        return None
    missing = [n for n in names if n not in m]
    if missing:
        fail(f"the agent's /metrics has no {', '.join(missing)}")
    return [m[n] for n in names]


def run_agent(args, work, profile_binary, run, collector_url, log_file, lines, out, collector):
    """One agent run under callgrind, until what `run` waits for; returns once it has stopped."""
    http_port = free_port()
    argv = ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}",
            profile_binary, "--node", "order", "--collector-url", collector_url,
            "--token", TOKEN, "--state-dir", os.path.join(work, f"state-{run}"), "--file", f"order={log_file}",
            "--http-listen", f"127.0.0.1:{http_port}", "--log-level", "warning"]
    with open(os.path.join(work, f"agent-{run}.stderr"), "w") as stderr:
        agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    watched = {"agent": agent, "collector": collector}
    try:
        # Valgrind runs the agent some 50 times slower: the limits are generous.
        wait_until("the agent's /metrics", lambda: metrics(http_port), watched, args.timeout)
        if run == "ship":
            def shipped():
                figures = agent_figures(http_port, ("muster_agent_lines_read_total",
                                                    "muster_agent_batches_acknowledged_total",
                                                    "muster_agent_spool_entries_batches"))
                return figures is not None and figures[0] >= lines and figures[1] >= 1 and figures[2] == 0
            wait_until(f"the agent shipping {lines} lines", shipped, watched, args.timeout)
        elif run == "collector down":
            def retried():
                figures = agent_figures(http_port, ("muster_agent_lines_read_total",
                                                    "muster_agent_batches_retried_total"))
                return figures is not None and figures[0] >= lines and figures[1] >= 2
            wait_until("the agent retrying its batches", retried, watched, args.timeout)
        else:
            time.sleep(5)  # timers and the tailer's rescans run while idle
        metrics(http_port)
    finally:
        stop_process(agent, grace=args.timeout)
    if agent.returncode != 0:
        fail(f"the agent exited with status {agent.returncode} ({run}; its stderr and valgrind's: "
             f"{os.path.join(work, f'agent-{run}.stderr')})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True, help="release muster-agent and muster-collector, with symbols")
    parser.add_argument("--lines", type=int, default=20_000, help="lines shipped in runs 2 and 3")
    parser.add_argument("--out", default=os.path.join(HERE, "muster-agent.order"))
    parser.add_argument("--timeout", type=float, default=600, help="seconds each step may take")
    args = parser.parse_args()
    if not 1 <= args.lines <= 10_000_000:
        fail("--lines must be 1 to 10,000,000")
    for tool in ("valgrind", "nm", "strip"):
        if shutil.which(tool) is None:
            fail(f"{tool} not found on PATH")
    agent_binary = os.path.join(args.bin_dir, "muster-agent")
    collector_binary = os.path.join(args.bin_dir, "muster-collector")
    for binary in (agent_binary, collector_binary):
        if not os.access(binary, os.X_OK):
            fail(f"no {binary}: build it with scripts/build-release")

    nm = subprocess.run(["nm", "--defined-only", "--print-size", "--numeric-sort", agent_binary],
                        capture_output=True, text=True, check=True)
    functions = sorted((int(p[0], 16), int(p[1], 16), p[3]) for p in (line.split(maxsplit=3) for line in nm.stdout.splitlines())
                       if len(p) == 4 and p[2] in "tTwW")
    if not functions:
        fail(f"{agent_binary} has no symbol table (stripped?): build it with scripts/build-release")
    starts = [start for start, _, _ in functions]

    work = tempfile.mkdtemp(prefix="muster-agent-order-")
    collector = None
    finished = False
    try:
        # Valgrind 3.19 cannot read the DWARF of an lld-linked binary; it needs only the symbols.
        profile_binary = os.path.join(work, "muster-agent")
        subprocess.run(["strip", "--strip-debug", "-o", profile_binary, agent_binary], check=True)

        port_file = os.path.join(work, "collector.port")
        with open(os.path.join(work, "collector.stderr"), "w") as stderr:
            collector = subprocess.Popen(
                [collector_binary, "--database", os.path.join(work, "order.sqlite"), "--host", "127.0.0.1",
                 "--port", "0", "--port-file", port_file, "--token", TOKEN, "--log-level", "warning"],
                stdout=subprocess.DEVNULL, stderr=stderr)
        def port():
            try:
                with open(port_file) as f:
                    return int(f.read().strip() or 0)
            except (OSError, ValueError):
                return 0
        collector_port = wait_until("the collector's port file", port, {"collector": collector}, 60)

        empty = os.path.join(work, "idle.log")
        open(empty, "w").close()
        lines = os.path.join(work, "haproxy.log")
        subprocess.run([sys.executable, os.path.join(REPO, "Benchmarks", "gen_haproxy_log.py"),
                        "--lines", str(args.lines), "--seed", "42", "--out", lines], check=True,
                       stdout=subprocess.DEVNULL)

        collector_url = f"http://127.0.0.1:{collector_port}"
        closed_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        order, placed = [], set()
        for run, url, log_file in (("idle", collector_url, empty), ("ship", collector_url, lines),
                                   ("collector down", closed_url, lines)):
            out = os.path.join(work, "callgrind." + run.replace(" ", "-"))
            print(f"== agent under callgrind: {run}", file=sys.stderr)
            run_agent(args, work, profile_binary, run, url, log_file, args.lines, out, collector)
            ran = functions_at(executed_addresses(out, os.path.basename(profile_binary)), functions, starts)
            if len(ran) < 1000:
                # An agent runs thousands of functions to start: a few means the addresses in
                # callgrind's output were not read (its format changed), not a small agent.
                fail(f"{run}: only {len(ran)} functions of muster-agent found in {out}")
            new = [name for name in ran if name not in placed]
            print(f"   {len(ran)} functions ran, {len(new)} not in an earlier run", file=sys.stderr)
            order += new
            placed.update(new)
        finished = True
    finally:
        if collector is not None:
            stop_process(collector)
        if finished:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"generate.py: the runs' files are kept in {work}", file=sys.stderr)

    with open(args.out, "w") as f:
        f.write("\n".join(order) + "\n")
    print(f"wrote {len(order)} functions to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
