#!/usr/bin/env python3
"""What `store.clickhouse.insert_interval_ms` saves the ClickHouse cluster, and what it costs
the agents' acknowledgements.

    python3 Benchmarks/insert_interval.py --bin-dir ".build-release/release"

Starts the scale-out servers (`scripts/scale-out-servers`, loopback, --port-base) once. Then,
for each round and each interval of --intervals (alternating), starts one release collector
with that interval on a database of its own, and lets --agents simulated agents post to it
for --seconds: each posts a zlib batch of --lines lines every --every-ms, as an agent with a
light load does (its batch.max_age_ms is 1000 by default), at a random phase. After --warmup
seconds it measures, until the end: the lines acknowledged, the CPU seconds the four
ClickHouse servers, the three ZooKeeper and three etcd members and the collector used
(/proc/PID/stat), the collector's commits (its /metrics), and each batch's time from post to
answer. The database is dropped after each run, and its merges are given --settle seconds to
stop before the next. Prints one line per run and a table of medians per interval.

Everything it starts is stopped by PID or by the servers script, also on failure.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import (CLICKHOUSES, ETCD_MEMBERS, SCALE_OUT_SERVERS as SERVERS, ZOOKEEPERS,  # noqa: E402
                        clickhouse_query, first_sample, metric_samples, ndjson_batch, percentile, post_batch,
                        process_cpu_seconds, server_pid,
                        start_collector, start_scale_out_servers, stop_process)

def server_pids(directory):
    groups = [("clickhouse", CLICKHOUSES), ("zookeeper", ZOOKEEPERS), ("etcd", ETCD_MEMBERS)]
    return {group: [server_pid(directory, name) for name in names] for group, names in groups}


def usage(pids):
    return {group: sum(process_cpu_seconds(pid) for pid in group_pids) for group, group_pids in pids.items()}


def commits(url):
    return int(first_sample(metric_samples(url), "muster_store_commits_total", 0))


def message(offset, n):
    return f"GET /item/{offset} 200 {offset % 997} bytes served to 10.0.{n % 250}.7"


def agent(url, name, args, begin, measured_from, results, failures):
    """Posts a batch every --every-ms until --seconds after `begin`; appends (latency s, lines)
    for each batch answered 200 after `measured_from`."""
    offset = 0
    period = args.every_ms / 1000
    due = begin + random.random() * period
    while True:
        time.sleep(max(0.0, due - time.monotonic()))
        if time.monotonic() - begin >= args.seconds:
            return
        body = ndjson_batch(name, offset, args.lines, message)
        sent = time.monotonic()
        status = post_batch(url, body)
        if status == 200:
            offset += args.lines
            if sent >= measured_from:
                results.append((time.monotonic() - sent, args.lines))
        else:
            failures.append(status)
        due += period
        if due < time.monotonic():  # behind: the next batch now, as an agent with lines waiting would
            due = time.monotonic()


def run_once(args, scratch, store, pids, interval, database, port):
    section = store.replace(f"database: {args.database}", f"database: {database}")
    section = section.replace("    shards:", f"    insert_interval_ms: {interval}\n    shards:", 1)
    collector = start_collector(args.bin_dir, scratch, f"collector-{database}", port, "t", section)
    url = f"http://127.0.0.1:{port}"
    try:
        results, failures = [], []
        begin = time.monotonic()
        measured_from = begin + args.warmup
        threads = [threading.Thread(target=agent, args=(url, f"a{n}", args, begin, measured_from, results, failures))
                   for n in range(args.agents)]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, measured_from - time.monotonic()))
        cpu_before, commits_before = usage(pids), commits(url)
        collector_before = process_cpu_seconds(collector.pid)
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - measured_from
        cpu_after, commits_after = usage(pids), commits(url)
        collector_cpu = process_cpu_seconds(collector.pid) - collector_before
    finally:
        stop_process(collector)
    lines = sum(n for _, n in results)
    latencies = sorted(seconds * 1000 for seconds, _ in results)
    per_million = 1_000_000 / max(lines, 1)
    row = {
        "interval_ms": interval,
        "lines_per_s": lines / elapsed,
        "commits_per_s": (commits_after - commits_before) / elapsed,
        "clickhouse_cpu_s_per_1m": (cpu_after["clickhouse"] - cpu_before["clickhouse"]) * per_million,
        "zookeeper_cpu_s_per_1m": (cpu_after["zookeeper"] - cpu_before["zookeeper"]) * per_million,
        "etcd_cpu_s_per_1m": (cpu_after["etcd"] - cpu_before["etcd"]) * per_million,
        "collector_cpu_s_per_1m": collector_cpu * per_million,
        "servers_cores": sum(cpu_after[g] - cpu_before[g] for g in cpu_after) / elapsed,
        "ack_p50_ms": percentile(latencies, 0.5) if latencies else None,
        "ack_p99_ms": percentile(latencies, 0.99) if latencies else None,
        "failed": len(failures),
    }
    if failures:
        print(f"  {len(failures)} batches not answered 200, first: {failures[0]}", flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True, help="directory with the release muster-collector")
    parser.add_argument("--port-base", type=int, default=17800)
    parser.add_argument("--intervals", default="0,250,1000", help="insert_interval_ms values, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--lines", type=int, default=100, help="lines per batch")
    parser.add_argument("--every-ms", type=float, default=1000, help="each agent's time between batches")
    parser.add_argument("--seconds", type=float, default=70)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--settle", type=float, default=20)
    parser.add_argument("--database", default="interval")
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args()
    intervals = [int(value) for value in args.intervals.split(",")]

    scratch = tempfile.mkdtemp(prefix="muster-insert-interval-")
    servers = os.path.join(scratch, "servers")
    rows = []
    try:
        env, store = start_scale_out_servers(servers, args.port_base, args.database)
        pids = server_pids(servers)
        first_replica = env["MUSTER_CH_SHARD1"].split(",")[0]
        for round_number in range(args.rounds):
            for position, interval in enumerate(intervals):
                database = f"{args.database}_{round_number}_{interval}"
                row = run_once(args, scratch, store, pids, interval, database, args.port_base + 90 + position)
                row["round"] = round_number + 1
                rows.append(row)
                print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
                clickhouse_query(first_replica, f"DROP DATABASE IF EXISTS {database} ON CLUSTER {env['MUSTER_CH_CLUSTER']}",
                                 timeout=120)
                time.sleep(args.settle)
    finally:
        subprocess.run([SERVERS, "stop", servers], capture_output=True)
        subprocess.run(["rm", "-rf", scratch])
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    keys = ["lines_per_s", "commits_per_s", "clickhouse_cpu_s_per_1m", "zookeeper_cpu_s_per_1m", "etcd_cpu_s_per_1m",
            "collector_cpu_s_per_1m", "servers_cores", "ack_p50_ms", "ack_p99_ms", "failed"]
    print(f"\n{args.agents} agents, a {args.lines}-line batch every {args.every_ms:.0f} ms each, "
          f"{args.seconds - args.warmup:.0f} s measured, medians of {args.rounds}\n")
    print("| insert_interval_ms | " + " | ".join(keys) + " |")
    print("|---:|" + "---:|" * len(keys))
    for interval in intervals:
        runs = [row for row in rows if row["interval_ms"] == interval]
        cells = []
        for key in keys:
            values = [row[key] for row in runs if row[key] is not None]
            cells.append(f"{statistics.median(values):,.2f}" if values else "-")
        print(f"| {interval} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
