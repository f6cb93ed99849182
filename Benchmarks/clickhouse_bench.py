#!/usr/bin/env python3
"""One collector's writes into ClickHouse against the same writes into SQLite (stdlib only).

    clickhouse_bench.py --bin-dir .build-release/release --log Benchmarks/out/haproxy-2000000-s42.log \
        --reps 3 [--results Benchmarks/results/clickhouse.md]

Each repetition runs, in alternating order, the same records (the log's lines as a file source
makes them) through:

  sqlite      muster-bench-insert: the store's own insert path (MusterStoreSQLite's LogWriter),
              one transaction per chunk, WAL, synchronous=FULL; no search index (the collector
              adds it beside)
  clickhouse  muster-bench-insert --clickhouse: the scale-out backend's writer
              (ClickHouseLogWriter.store per chunk: the stored-identity lookup, then gzip
              JSONEachRow inserts of lines and identities into each shard) into a fresh database
              of a real cluster, 2 shards x 2 replicas, ZooKeeper, started once by
              scripts/scale-out-servers on loopback ports

and reports per repetition and as medians: lines per second (wall time of the writing process),
the writing process's CPU per 1M lines (what a collector spends), the ClickHouse servers' and
ZooKeeper's CPU per 1M lines (read from /proc before and after, replication to the second
replica included: the run ends when every replica holds every line), and bytes on disk per
stored line (SQLite: the database file after the writer closed it; ClickHouse: the active parts
of both tables on all four servers after OPTIMIZE ... FINAL, so two copies of each line, and per
copy). Everything listens on 127.0.0.1; the servers are stopped by PID at the end, also on ^C.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import (CLICKHOUSES, REPO, SCALE_OUT_SERVERS as SERVERS_SCRIPT, ZOOKEEPERS,  # noqa: E402
                        clickhouse_query as query, process_cpu_seconds, scale_out_env, server_pid)
NODE = "bench-node"
SOURCE = "haproxy"


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Cluster:
    """The servers of scripts/scale-out-servers, started once for the whole run."""

    def __init__(self, directory, port_base):
        self.directory = directory
        subprocess.run([SERVERS_SCRIPT, "start", directory, "--port-base", str(port_base)],
                       check=True, stdout=subprocess.DEVNULL)
        env = scale_out_env(directory)
        self.shards = [env[f"MUSTER_CH_SHARD{i}"].split(",") for i in range(1, int(env["MUSTER_CH_SHARDS"]) + 1)]
        self.replicas = [url for shard in self.shards for url in shard]
        self.pids = {name: server_pid(directory, name) for name in ZOOKEEPERS + CLICKHOUSES}

    def cpu_seconds(self):
        return sum(process_cpu_seconds(pid) for pid in self.pids.values())

    def rows_everywhere(self, database, lines, timeout=600):
        """Waits until every replica holds its shard's lines in both tables (replication done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            per_shard = []
            for shard in self.shards:
                counts = [int(query(url, f"SELECT (SELECT count() FROM {database}.logs_local) + "
                                         f"(SELECT count() FROM {database}.ids_local)")) for url in shard]
                per_shard.append(counts)
            if all(len(set(counts)) == 1 for counts in per_shard) and sum(c[0] for c in per_shard) >= 2 * lines:
                return
            time.sleep(0.2)
        raise RuntimeError(f"replicas of {database} did not converge within {timeout}s")

    def bytes_on_disk(self, database):
        for shard in self.shards:
            for table in ["logs_local", "ids_local"]:
                query(shard[0], f"OPTIMIZE TABLE {database}.{table} FINAL")
        total = 0
        for url in self.replicas:
            total += int(query(url, f"SELECT sum(bytes_on_disk) FROM system.parts "
                                    f"WHERE database = '{database}' AND active") or 0)
        return total

    def drop(self, database):
        query(self.replicas[0], f"DROP DATABASE IF EXISTS {database} ON CLUSTER muster")

    def stop(self):
        subprocess.run([SERVERS_SCRIPT, "stop", self.directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_writer(args, arguments, workdir):
    """muster-bench-insert with `arguments`: its report, wall time and CPU (wait4's rusage)."""
    argv = [os.path.join(args.bin_dir, "muster-bench-insert"), "--file", args.log, "--node", NODE,
            "--source", SOURCE, "--chunk", str(args.chunk)] + arguments
    started = time.monotonic()
    with open(os.path.join(workdir, "writer.out"), "w") as out, open(os.path.join(workdir, "writer.err"), "w") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if process.returncode != 0:
        with open(os.path.join(workdir, "writer.err")) as handle:
            raise RuntimeError(f"muster-bench-insert exited {process.returncode}: {handle.read()[-1500:]}")
    with open(os.path.join(workdir, "writer.out")) as handle:
        report = json.loads(handle.read().strip().splitlines()[-1])
    return report, wall, usage.ru_utime + usage.ru_stime


def run_sqlite(args, workdir, rep):
    database = os.path.join(workdir, f"sqlite-{rep}.sqlite")
    report, wall, cpu = run_writer(args, ["--database", database], workdir)
    size = sum(os.path.getsize(database + suffix) for suffix in ["", "-wal"] if os.path.exists(database + suffix))
    os.remove(database)
    for suffix in ["-wal", "-shm"]:
        if os.path.exists(database + suffix):
            os.remove(database + suffix)
    lines = report["lines"]
    return {"lines": lines, "stored": report["stored"], "lines_per_s": lines / wall,
            "writer_cpu_s_per_m": cpu / lines * 1e6, "server_cpu_s_per_m": 0.0,
            "bytes_per_line": size / lines, "bytes_per_line_per_copy": size / lines}


def run_clickhouse(args, workdir, rep, cluster):
    database = f"bench_{rep}"
    arguments = ["--database", database]
    for shard in cluster.shards:
        arguments += ["--clickhouse", ",".join(shard)]
    servers_before = cluster.cpu_seconds()
    report, wall, cpu = run_writer(args, arguments, workdir)
    lines = report["lines"]
    cluster.rows_everywhere(database, lines)
    servers = cluster.cpu_seconds() - servers_before
    size = cluster.bytes_on_disk(database)
    cluster.drop(database)
    return {"lines": lines, "stored": report["stored"], "lines_per_s": lines / wall,
            "writer_cpu_s_per_m": cpu / lines * 1e6, "server_cpu_s_per_m": servers / lines * 1e6,
            "bytes_per_line": size / lines, "bytes_per_line_per_copy": size / lines / 2}


def median(results, key):
    return statistics.median(result[key] for result in results)


def render(results, args):
    rows = [("lines/s (writer's wall time)", "lines_per_s", "{:,.0f}"),
            ("writer CPU-s per 1M lines (a collector's share)", "writer_cpu_s_per_m", "{:.2f}"),
            ("servers' CPU-s per 1M lines (ClickHouse x4 + ZooKeeper)", "server_cpu_s_per_m", "{:.2f}"),
            ("bytes on disk per stored line (all copies)", "bytes_per_line", "{:.1f}"),
            ("bytes on disk per stored line, per copy", "bytes_per_line_per_copy", "{:.1f}")]
    lines = [f"# One collector's writes: ClickHouse (2 shards x 2 replicas) vs SQLite",
             "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `{os.path.basename(args.log)}` ({results['sqlite'][0]['lines']:,} lines), "
             f"chunk {args.chunk}, medians of {args.reps}, {os.cpu_count()} cores; "
             f"`python3 Benchmarks/clickhouse_bench.py --bin-dir {args.bin_dir} --log {args.log} --reps {args.reps}`",
             "",
             "| | SQLite | ClickHouse | ratio |",
             "|---|---:|---:|---:|"]
    for label, key, form in rows:
        sqlite, clickhouse = median(results["sqlite"], key), median(results["clickhouse"], key)
        ratio = f"{clickhouse / sqlite:.2f}" if sqlite else ""
        lines.append(f"| {label} | {form.format(sqlite)} | {form.format(clickhouse)} | {ratio} |")
    lines += ["", "Per repetition:", ""]
    for name in ["sqlite", "clickhouse"]:
        for index, result in enumerate(results[name]):
            lines.append(f"- {name} {index + 1}: " + ", ".join(
                f"{key} {result[key]:,.2f}" for key in ["lines_per_s", "writer_cpu_s_per_m", "server_cpu_s_per_m", "bytes_per_line"]))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=os.path.join(REPO, ".build-release", "release"))
    parser.add_argument("--log", required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10_000, help="records per commit / store call (the collector's group)")
    parser.add_argument("--port-base", type=int, default=26000)
    parser.add_argument("--results", help="also write the table here")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="muster-clickhouse-bench-")
    cluster = None
    try:
        cluster = Cluster(os.path.join(workdir, "servers"), args.port_base)
        results = {"sqlite": [], "clickhouse": []}
        for rep in range(args.reps):
            order = ["sqlite", "clickhouse"] if rep % 2 == 0 else ["clickhouse", "sqlite"]
            for name in order:
                log(f"rep {rep + 1}: {name}")
                result = run_sqlite(args, workdir, rep) if name == "sqlite" else run_clickhouse(args, workdir, rep, cluster)
                if result["stored"] != result["lines"]:
                    raise RuntimeError(f"{name} stored {result['stored']} of {result['lines']} lines")
                log(f"  {json.dumps({k: round(v, 2) for k, v in result.items()})}")
                results[name].append(result)
        table = render(results, args)
        print(table)
        if args.results:
            with open(args.results, "w") as handle:
                handle.write(table)
    finally:
        if cluster:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
