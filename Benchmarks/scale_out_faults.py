#!/usr/bin/env python3
"""Faults under load on the scale-out path: three collectors over ClickHouse and etcd, agents
writing the whole time, and one process after another killed under them (stdlib only).

    python3 Benchmarks/scale_out_faults.py --bin-dir "$(swift build --show-bin-path)" \
        [--agents 3] [--rate 400] [--collector-kills 10] [--stop-seconds 30] [--json F]

What runs, all on 127.0.0.1 (scripts/scale-out-servers starts the servers from Debian's
packages): ZooKeeper (3), ClickHouse 2 shards x 2 replicas, etcd (3 members); three muster-collectors with one
`store:` section; AGENTS muster-agents, each given the three collector URLs, tailing a file a
writer thread appends numbered lines to at RATE lines/s, and the first agent also shipping a
Serf event journal that a driver appends member-join/member-leave entries to (through
`muster-agent serf-event`, as Serf's handler would); a driver posting a mark every 2 s to a
collector that is up; three event-stream consumers, each starting on its own collector and
moving to the next with its cursor whenever its stream breaks.

The faults, one after another, with everything above running:
  1. kill -9 of a collector, COLLECTOR_KILLS times (each in turn), restarted on its port 3 s later;
  2. kill -9 of one ClickHouse replica (shard 1's second), restarted 15 s later;
  3. kill -9 of etcd's leader, restarted 10 s later (the other two members elect a new one);
  4. kill -9 of ZooKeeper's leader, restarted 10 s later;
  5. SIGSTOP of one collector for STOP_SECONDS, then SIGCONT.
Mark posts that no collector took are counted per fault: with three members each, a consensus
member's loss should cost none.

Then the writers stop and the run waits until the store holds every line (bounded), and checks
what a user would see through logq and the event stream:
  - `logq logs --store` per node: every line written is there exactly once (lost, duplicated);
  - the journal lines written are there once each (source `events`);
  - every mark a collector answered 200 for is listed by `logq marks --store`;
  - `GET /v1/events?since=0&follow=false` from each collector: the same ids, kinds and bodies in
    the same order, ids dense from the first;
  - each consumer's events (read across collector switches with its cursor): the same list,
    no gap and no repeat.
Prints a table (also --json) and exits 1 if any check fails. Every process and server it
started is stopped by PID at the end, also on ^C.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import SCALE_OUT_SERVERS as SERVERS, etcd_leader, sse_events, start_scale_out_servers, zookeeper_leader  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "fault-run-token"
DATABASE = "faults"
LINE_NUMBER = re.compile(r" line (\d{9}) payload")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_until(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Collector:
    """One muster-collector on a fixed port after its first start."""

    def __init__(self, name, workdir, bin_dir, store_section):
        self.name, self.workdir, self.bin_dir = name, workdir, bin_dir
        self.config = os.path.join(workdir, f"{name}.yaml")
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.port = 0
        self.process = None
        with open(self.config, "w") as handle:
            handle.write(f"listen:\n  host: 127.0.0.1\ntokens: [{TOKEN}]\n{store_section}\n")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def launch(self, timeout=120):
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        with open(self.log_path, "a") as output:
            self.process = subprocess.Popen(
                [os.path.join(self.bin_dir, "muster-collector"), "--config", self.config, "--port", str(self.port),
                 "--port-file", self.port_file],
                stdout=output, stderr=subprocess.STDOUT)
        if not wait_until(lambda: os.path.exists(self.port_file) or self.process.poll() is not None, timeout):
            raise RuntimeError(f"collector {self.name} did not open its port in {timeout} s")
        if self.process.poll() is not None:
            raise RuntimeError(f"collector {self.name} exited {self.process.returncode}; see {self.log_path}")
        with open(self.port_file) as handle:
            self.port = int(handle.read().strip())

    def signal(self, number):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, number)

    def kill_hard(self):
        self.signal(signal.SIGKILL)
        if self.process:
            self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Writer(threading.Thread):
    """Appends `<node> line <n>` lines to `path` at `rate` lines/s until stopped."""

    def __init__(self, node, path, rate):
        super().__init__(daemon=True)
        self.node, self.path, self.rate = node, path, rate
        self.written = 0
        self.halt = threading.Event()

    def run(self):
        started = time.monotonic()
        with open(self.path, "a") as handle:
            while not self.halt.is_set():
                due = int((time.monotonic() - started) * self.rate)
                if due > self.written:
                    handle.write("".join(f"{self.node} line {n:09d} payload for the fault run\n"
                                         for n in range(self.written, due)))
                    handle.flush()
                    self.written = due
                time.sleep(0.01)


def request(url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=timeout)


def read_events(url, since, follow, timeout, on_event, halt=None):
    """Reads the SSE stream; calls on_event(id, kind, body) per event. Returns at its end."""
    with request(f"{url}/v1/events?since={since}&follow={'true' if follow else 'false'}", timeout=timeout) as stream:
        for event in sse_events(stream):
            on_event(*event)
            if halt is not None and halt.is_set():
                return


class Consumer(threading.Thread):
    """Follows the stream from id 0, moving to the next collector with its cursor on any break."""

    def __init__(self, collectors, first):
        super().__init__(daemon=True)
        self.collectors, self.index = collectors, first
        self.events = []
        self.switches = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            collector = self.collectors[self.index]
            since = self.events[-1][0] if self.events else 0
            try:
                read_events(collector.url, since, True, 20, lambda *event: self.events.append(event), self.halt)
            except Exception:
                pass
            if self.halt.is_set():
                return
            self.index = (self.index + 1) % len(self.collectors)
            self.switches += 1
            time.sleep(0.2)


class Marker(threading.Thread):
    """Posts a mark every 2 s to a collector that answers; keeps the names answered with 200."""

    def __init__(self, collectors):
        super().__init__(daemon=True)
        self.collectors = collectors
        self.accepted, self.failed = [], 0
        self.halt = threading.Event()

    def run(self):
        number = 0
        while not self.halt.wait(2):
            number += 1
            name = f"fault-mark-{number:04d}"
            for collector in random.sample(self.collectors, len(self.collectors)):
                try:
                    with request(f"{collector.url}/v1/marks", {"name": name}, timeout=10) as response:
                        if response.status == 200:
                            self.accepted.append(name)
                            break
                except urllib.error.HTTPError as error:
                    if error.code == 409:  # taken by an earlier try whose answer was lost
                        self.accepted.append(name)
                        break
                except Exception:
                    pass
            else:
                self.failed += 1


class Journaller(threading.Thread):
    """Appends a member-join or member-leave entry to the journal every 1.5 s, as Serf's handler."""

    def __init__(self, bin_dir, journal, observer):
        super().__init__(daemon=True)
        self.bin_dir, self.journal, self.observer = bin_dir, journal, observer
        self.entries = 0
        self.halt = threading.Event()

    def run(self):
        number = 0
        while not self.halt.wait(1.5):
            member = f"m{number % 5}"
            event = "member-join" if (number // 5) % 2 == 0 else "member-leave"
            environment = dict(os.environ, SERF_EVENT=event, SERF_SELF_NAME=self.observer)
            result = subprocess.run(
                [os.path.join(self.bin_dir, "muster-agent"), "serf-event", "--journal", self.journal],
                input=f"{member}\t10.9.0.{number % 5 + 1}\tweb\t\n".encode(), env=environment, capture_output=True)
            if result.returncode == 0:
                self.entries += 1
            number += 1


def clickhouse(url, sql):
    with urllib.request.urlopen(urllib.request.Request(url + "/", data=sql.encode()), timeout=60) as response:
        return response.read().decode().strip()


def logq(bin_dir, arguments, store_config):
    result = subprocess.run([os.path.join(bin_dir, "logq"), *arguments, "--store", store_config],
                            capture_output=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"logq {' '.join(arguments)} exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return result.stdout.decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--rate", type=int, default=400, help="lines/s per agent")
    parser.add_argument("--collector-kills", type=int, default=10)
    parser.add_argument("--stop-seconds", type=int, default=30)
    parser.add_argument("--port-base", type=int, default=17500)
    parser.add_argument("--json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="muster-faults-")
    servers_dir = os.path.join(workdir, "servers")
    collectors, agents, threads = [], [], []
    started = time.monotonic()
    timeline = []

    def phase(name):
        timeline.append((round(time.monotonic() - started, 1), name))
        log(name)

    try:
        env, store = start_scale_out_servers(servers_dir, args.port_base, DATABASE)
        phase("servers up")

        collectors = [Collector(f"c{n}", workdir, args.bin_dir, store) for n in (1, 2, 3)]
        for collector in collectors:
            collector.launch()
        urls = ",".join(collector.url for collector in collectors)
        phase("collectors up")

        writers = []
        journal = os.path.join(workdir, "events.jsonl")
        open(journal, "a").close()
        for number in range(1, args.agents + 1):
            node = f"a{number}"
            path = os.path.join(workdir, f"{node}.log")
            open(path, "a").close()
            command = [os.path.join(args.bin_dir, "muster-agent"), "--node", node, "--collector-url", urls, "--token", TOKEN,
                       "--state-dir", os.path.join(workdir, f"state-{node}"), "--file", f"app={path}", "--log-level", "info"]
            if number == 1:
                # The membership section ships the journal (source `events`); no Serf runs
                # here, so its reconciliation is put off for a day.
                config = os.path.join(workdir, f"{node}.yaml")
                with open(config, "w") as handle:
                    handle.write(f"membership:\n  journal: {journal}\n  reconcile_interval_ms: 86400000\n")
                command += ["--config", config]
            with open(os.path.join(workdir, f"{node}.agent.log"), "a") as output:
                agents.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT))
            writers.append(Writer(node, path, args.rate))
        consumers = [Consumer(collectors, index) for index in range(len(collectors))]
        marker = Marker(collectors)
        journaller = Journaller(args.bin_dir, journal, "a1")
        threads = writers + consumers + [marker, journaller]
        for thread in threads:
            thread.start()
        time.sleep(15)
        phase("load running")

        for kill in range(args.collector_kills):
            victim = collectors[kill % len(collectors)]
            victim.kill_hard()
            time.sleep(3)
            victim.launch()
            time.sleep(5)
        phase(f"{args.collector_kills} collector kills done")

        subprocess.run([SERVERS, "kill-one", servers_dir, "ch2", "KILL"], check=True, capture_output=True)
        time.sleep(15)
        subprocess.run([SERVERS, "start-one", servers_dir, "ch2"], check=True, capture_output=True, timeout=300)
        time.sleep(10)
        phase("ClickHouse replica killed and back")

        for leader_of, members in ((etcd_leader, "etcd"), (zookeeper_leader, "ZooKeeper")):
            refused = marker.failed
            victim = leader_of(env)
            if victim is None:
                raise RuntimeError(f"no {members} member says it leads")
            subprocess.run([SERVERS, "kill-one", servers_dir, victim, "KILL"], check=True, capture_output=True)
            time.sleep(10)
            subprocess.run([SERVERS, "start-one", servers_dir, victim], check=True, capture_output=True, timeout=300)
            time.sleep(10)
            phase(f"{members}'s leader {victim} killed and back ({marker.failed - refused} mark posts no collector took)")

        collectors[1].signal(signal.SIGSTOP)
        time.sleep(args.stop_seconds)
        collectors[1].signal(signal.SIGCONT)
        time.sleep(10)
        phase(f"collector stopped {args.stop_seconds} s and continued")

        marker.halt.set()
        journaller.halt.set()
        marker.join()
        journaller.join()
        for writer in writers:
            writer.halt.set()
            writer.join()
        written = {writer.node: writer.written for writer in writers}
        total = sum(written.values())
        phase(f"writers stopped: {total} lines, {journaller.entries} journal entries, {len(marker.accepted)} marks")

        shard_url = env["MUSTER_CH_SHARD1"].replace(",", " ").split()[0]
        stored = lambda: int(clickhouse(shard_url, f"SELECT count() FROM {DATABASE}.ids WHERE src = 'app'") or 0)
        settled = wait_until(lambda: stored() >= total, 300, 1)
        phase(f"store holds {stored()} identities of app lines (settled: {settled})")

        # What a user sees.
        results = {"written": written, "nodes": {}}
        failures = []
        if not settled:
            # Lines may all be in `logs` (checked below) while identities are missing: then
            # `logq stats` undercounts and a resend of those lines is stored again.
            failures.append(f"the identity table holds {stored()} app lines of {total} written, 300 s after the writers stopped")
        for node, count in written.items():
            numbers = {}
            for line in logq(args.bin_dir, ["logs", "--node", node, "--source", "app", "--format", "json"], collectors[0].config).splitlines():
                match = next((LINE_NUMBER.search(value) for value in json.loads(line).values()
                              if isinstance(value, str) and LINE_NUMBER.search(value)), None)
                number = int(match.group(1)) if match else -1
                numbers[number] = numbers.get(number, 0) + 1
            lost = sum(1 for n in range(count) if n not in numbers)
            duplicated = sum(times - 1 for times in numbers.values()) + sum(1 for n in numbers if not 0 <= n < count)
            results["nodes"][node] = {"written": count, "stored": sum(numbers.values()), "lost": lost, "duplicated": duplicated}
            if lost or duplicated:
                failures.append(f"{node}: {lost} lost, {duplicated} duplicated")
        stored_journal = logq(args.bin_dir, ["logs", "--node", "a1", "--source", "events", "--format", "json"],
                              collectors[0].config).splitlines()
        journal_lines = len(stored_journal)
        # Each entry once: as many as written, none twice (each carries its own time).
        distinct = len(set(stored_journal))
        results["journal"] = {"written": journaller.entries, "stored": journal_lines, "distinct": distinct}
        if journal_lines != journaller.entries or distinct != journal_lines:
            failures.append(f"journal: {journaller.entries} written, {journal_lines} stored, {distinct} distinct")
        names = {json.loads(line)["name"]
                 for line in logq(args.bin_dir, ["marks", "--format", "json"], collectors[0].config).splitlines()}
        missing_marks = [name for name in marker.accepted if name not in names]
        results["marks"] = {"accepted": len(marker.accepted), "failed_posts": marker.failed, "missing": len(missing_marks)}
        if missing_marks:
            failures.append(f"marks answered 200 but not listed: {missing_marks[:5]}")

        streams = []
        for collector in collectors:
            events = []
            read_events(collector.url, 0, False, 60, lambda *event: events.append(event))
            streams.append(events)
        ids = [event[0] for event in streams[0]]
        dense = ids == list(range(ids[0], ids[0] + len(ids))) if ids else False
        same = all(events == streams[0] for events in streams)
        for consumer in consumers:
            wait_until(lambda: len(consumer.events) >= len(streams[0]), 60, 0.5)
            consumer.halt.set()
        consumer_same = [consumer.events[:len(streams[0])] == streams[0] and len(consumer.events) == len(streams[0])
                         for consumer in consumers]
        kinds = {}
        for _, kind, _ in streams[0]:
            kinds[kind] = kinds.get(kind, 0) + 1
        results["events"] = {
            "count": len(ids), "kinds": kinds, "dense": dense, "same_from_every_collector": same,
            "consumers_same": consumer_same, "consumer_switches": [consumer.switches for consumer in consumers]}
        if args.collector_kills and not all(consumer.switches for consumer in consumers):
            failures.append("a consumer never moved to another collector: the switching was not exercised")
        if not (dense and same and all(consumer_same)):
            failures.append(f"event streams: dense {dense}, same from every collector {same}, consumers {consumer_same}")
        results["timeline"] = timeline
        results["failures"] = failures

        print("\n| node | written | stored | lost | duplicated |\n|---|---:|---:|---:|---:|")
        for node, figures in results["nodes"].items():
            print(f"| {node} | {figures['written']:,} | {figures['stored']:,} | {figures['lost']} | {figures['duplicated']} |")
        print(f"\njournal entries: {journaller.entries} written, {journal_lines} stored; marks: {len(marker.accepted)} "
              f"accepted, {len(missing_marks)} missing, {marker.failed} posts no collector took")
        print(f"events: {len(ids)} {kinds}, dense {dense}, the same from all three collectors {same}; consumers "
              f"(switches {[c.switches for c in consumers]}) saw the same list: {consumer_same}")
        print("timeline: " + "; ".join(f"{name} {at}s" for at, name in timeline))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(results, handle, indent=2)
        print("\nRESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
        return 0 if not failures else 1
    finally:
        for thread in threads:
            thread.halt.set()
        for agent in agents:
            if agent.poll() is None:
                agent.terminate()
                try:
                    agent.wait(30)
                except subprocess.TimeoutExpired:
                    agent.kill()
        for collector in collectors:
            collector.stop()
        if os.path.isdir(servers_dir):
            subprocess.run([SERVERS, "stop", servers_dir], capture_output=True, timeout=300)
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
