#!/usr/bin/env python3
"""How long a membership change takes to reach an event-stream consumer.

Runs images/cluster (real Serf, agents and collector in network namespaces) and a consumer of
GET /v1/events?kind=membership, then makes CHANGES graceful leaves and CHANGES failures:

  leave:  Serf calls the member-leave handler on the first observer (the event's `t`)
          ->  the consumer receives "s1 left"  (also printed: from running `serf leave`)
  failed: Serf calls the member-failed handler on the first observer (the event's `t`, the
          handler's own clock reading)  ->  the consumer receives "s2 failed"
          (also printed: kill -9 of s2's Serf -> consumer, which adds Serf's failure detection)

Prints p50/p99/max per kind and compares p99 with LIMIT_MS. Needs root. Usage:
  sudo Benchmarks/membership_latency.py            # release binaries from .build-release
  CHANGES=5 MUSTER_BIN=.build/debug Benchmarks/membership_latency.py
"""
import os, queue, statistics, sys, threading, time

import clusterlib

CHANGES = int(os.environ.get("CHANGES", "20"))
LIMIT_MS = float(os.environ.get("LIMIT_MS", "1000"))
ENV = clusterlib.environment("mbench", "10.81.0")


def cluster(*args, check=True):
    return clusterlib.cluster(ENV, *args, check=check)


def wait_for(events, member, change, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            arrival, body = events.get(timeout=1)
        except queue.Empty:
            continue
        if body["member"] == member and body["change"] == change:
            return arrival, body
    sys.exit(f"no '{member} {change}' event within {timeout}s")


def serf_pid(node, service_dir):
    return int(cluster("exec", node, "s6-svstat", "-o", "pid", service_dir).strip())


def summary(name, values):
    values = sorted(values)
    return name, statistics.median(values), clusterlib.percentile(values, 0.99), values[-1]


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    clusterlib.build(ENV)
    cluster("down", check=False)
    try:
        cluster("up")
        for node in ["s1", "s2", "s3"]:
            cluster("add", node)
        url, token = clusterlib.collector(ENV)
        state = ENV["MUSTER_CLUSTER_STATE"]
        events = queue.Queue()
        time.sleep(3)  # let the joins settle before the consumer starts
        threading.Thread(target=clusterlib.consume, args=(url, token, events), daemon=True).start()
        time.sleep(0.5)
        leave, leave_handler, failed, detect = [], [], [], []
        s1_serf, s2_serf = f"{state}/nodes/s1/service/serf", f"{state}/nodes/s2/service/serf"
        for round_ in range(CHANGES):
            cluster("exec", "s1", "s6-svc", "-O", s1_serf)
            started = time.time_ns()
            cluster("exec", "s1", "serf", "leave")
            arrival, body = wait_for(events, "s1", "left")
            leave.append((arrival - started) / 1e6)
            leave_handler.append((arrival - body["t"]) / 1e6)
            cluster("exec", "s1", "s6-svc", "-u", s1_serf)
            wait_for(events, "s1", "joined")

            cluster("exec", "s2", "s6-svc", "-O", s2_serf)
            killed = time.time_ns()
            os.kill(serf_pid("s2", s2_serf), 9)
            arrival, body = wait_for(events, "s2", "failed")
            failed.append((arrival - body["t"]) / 1e6)
            detect.append((arrival - killed) / 1e6)
            cluster("exec", "s2", "s6-svc", "-u", s2_serf)
            wait_for(events, "s2", "joined")
            print(f"round {round_ + 1}/{CHANGES}: leave {leave[-1]:.0f} ms (handler->consumer {leave_handler[-1]:.0f}), failed handler->consumer {failed[-1]:.0f} ms,"
                  f" kill->consumer {detect[-1]:.0f} ms", file=sys.stderr)
    finally:
        cluster("down", check=False)

    # Rows with a limit measure Muster (handler call -> consumer); the others include Serf's
    # own propagation (a leave) or failure detection (a kill), shown for context.
    rows = [summary("member-leave handler -> consumer", leave_handler), summary("member-failed handler -> consumer", failed),
            summary("`serf leave` run -> consumer (incl. Serf's leave propagation)", leave),
            summary("kill -9 -> consumer (incl. Serf's failure detection)", detect)]
    print(f"\nmembership change -> event stream consumer, {CHANGES} changes each, binaries {ENV['MUSTER_BIN']}\n")
    print("| path | p50 ms | p99 ms | max ms | limit (p99) |")
    print("|---|---|---|---|---|")
    for index, (name, p50, p99, worst) in enumerate(rows):
        verdict = "" if index >= 2 else (f"{LIMIT_MS:.0f} ms {'✅' if p99 <= LIMIT_MS else '❌'}")
        print(f"| {name} | {p50:.0f} | {p99:.0f} | {worst:.0f} | {verdict} |")


if __name__ == "__main__":
    main()
