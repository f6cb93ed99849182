#!/usr/bin/env python3
"""How soon a collector's event-stream consumers see an event another collector committed.

    python3 Benchmarks/event_follow_latency.py --bin-dir ".build-release/release"

Starts the scale-out servers (`scripts/scale-out-servers`, loopback, --port-base) and two
release collectors on them, A and B. A consumer follows `GET /v1/events` on B; the probe posts
--marks marks to A, one every --every seconds (a mark is an event committed in etcd alone, so
nothing but the event's way from A's commit to B's consumers is timed), and for each mark
measures the time from A's answer (201) to the consumer's receipt of the event. Prints the
median, p90 and max. Everything it starts is stopped by PID or by the servers script, also on
failure; the temp dir goes at the end.
"""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import (SCALE_OUT_SERVERS as SERVERS, percentile, sse_events, start_collector, start_scale_out_servers,  # noqa: E402
                        stop_process)

TOKEN = "t"


def request(url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True, help="directory with the release muster-collector")
    parser.add_argument("--port-base", type=int, default=17700)
    parser.add_argument("--marks", type=int, default=60)
    parser.add_argument("--every", type=float, default=0.5)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="muster-event-follow-")
    servers = os.path.join(scratch, "servers")
    collectors = []
    try:
        _, store = start_scale_out_servers(servers, args.port_base, "follow")
        urls = []
        for name, port in (("a", args.port_base + 90), ("b", args.port_base + 91)):
            collectors.append(start_collector(args.bin_dir, scratch, name, port, TOKEN, store))
            urls.append(f"http://127.0.0.1:{port}")
        a, b = urls

        received = queue.Queue()

        def consume():
            with request(f"{b}/v1/events?since=0&kind=mark", timeout=120) as stream:
                for _, _, data in sse_events(stream):
                    received.put((time.monotonic(), json.loads(data).get("name")))

        threading.Thread(target=consume, daemon=True).start()
        time.sleep(2)  # the consumer's stream is open and has caught up

        latencies = []
        for number in range(args.marks):
            name = f"probe-{number}"
            with request(f"{a}/v1/marks", {"name": name}) as answer:
                if answer.status not in (200, 201):
                    raise SystemExit(f"mark {name}: HTTP {answer.status}")
            answered = time.monotonic()
            while True:
                at, seen = received.get(timeout=60)
                if seen == name:
                    latencies.append((at - answered) * 1000)
                    break
            time.sleep(args.every)
        print(f"{len(latencies)} marks posted to A, seen by a consumer of B: median {statistics.median(latencies):.0f} ms, "
              f"p90 {percentile(latencies, 0.9):.0f} ms, max {max(latencies):.0f} ms (from A's answer to B's consumer)")
    finally:
        for collector in collectors:
            stop_process(collector)
        subprocess.run([SERVERS, "stop", servers], capture_output=True)
        subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    main()
