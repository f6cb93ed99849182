#!/usr/bin/env python3
"""How long a collector's commits take while one ClickHouse server is down.

    python3 Benchmarks/replica_outage.py --bin-dir ".build-release/release"

Starts the scale-out servers (`scripts/scale-out-servers`, loopback, --port-base) and one
release collector on them, then posts 200-line zlib batches to it back to back, one at a time,
for --seconds. After --kill-at seconds it kills --server (SIGKILL; ch1 is shard 1's first
replica, the one the writer tries first) and starts it again --down seconds later; with
--signal STOP it freezes the server instead (SIGSTOP: its kernel still completes connections,
nothing answers) and thaws it (SIGCONT) --down seconds later. Prints each
commit that took longer than --slow-ms or was not 200, and the commits' latency before, during
and after the outage (count, median, max). Everything it starts is stopped by PID or by the
servers script, also on failure; the temp dir goes at the end.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import (SCALE_OUT_SERVERS as SERVERS, ndjson_batch, post_batch, start_collector,  # noqa: E402
                        start_scale_out_servers, stop_process)


def batch(offset, lines=200):
    return ndjson_batch("probe", offset, lines, lambda _, n: f"line {n}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin-dir", required=True, help="directory with the release muster-collector")
    parser.add_argument("--port-base", type=int, default=17600)
    parser.add_argument("--server", default="ch1", help="the ClickHouse server to kill (ch1-ch4)")
    parser.add_argument("--signal", default="KILL", choices=["KILL", "STOP"],
                        help="KILL: kill the server and start it again; STOP: freeze it and thaw it (SIGCONT)")
    parser.add_argument("--kill-at", type=float, default=8)
    parser.add_argument("--down", type=float, default=30)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--slow-ms", type=float, default=300)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="muster-replica-outage-")
    servers = os.path.join(scratch, "servers")
    collector = None
    frozen = False
    thawing = None
    up_at = [None]  # when the server was back (set by the thawing timer's thread for STOP)
    try:
        _, store = start_scale_out_servers(servers, args.port_base, "probe")
        port = args.port_base + 90
        collector = start_collector(args.bin_dir, scratch, "collector", port, "t", store)
        url = f"http://127.0.0.1:{port}"

        phases = {"before": [], "during": [], "after": []}
        down_at = None
        offset, begin = 0, time.monotonic()

        def thaw():
            # On a timer, not between commits: a commit waiting on the frozen server must not
            # keep it frozen longer than --down.
            nonlocal frozen
            subprocess.run([SERVERS, "kill-one", servers, args.server, "CONT"], capture_output=True, check=True)
            frozen = False
            up_at[0] = time.monotonic() - begin
            print(f"{up_at[0]:6.1f} s  {args.server} thawed", flush=True)

        while time.monotonic() - begin < args.seconds:
            now = time.monotonic() - begin
            if down_at is None and now >= args.kill_at:
                frozen = args.signal == "STOP"
                subprocess.run([SERVERS, "kill-one", servers, args.server, args.signal], capture_output=True, check=True)
                down_at = time.monotonic() - begin
                print(f"{down_at:6.1f} s  {args.server} {'frozen' if frozen else 'killed'}", flush=True)
                if frozen:
                    thawing = threading.Timer(args.down, thaw)
                    thawing.start()
            if args.signal == "KILL" and down_at is not None and up_at[0] is None and now >= down_at + args.down:
                subprocess.run([SERVERS, "start-one", servers, args.server], capture_output=True, check=True)
                up_at[0] = time.monotonic() - begin
                print(f"{up_at[0]:6.1f} s  {args.server} started again", flush=True)
            phase = "before" if down_at is None else "during" if up_at[0] is None else "after"
            body = batch(offset)
            offset += 200
            sent = time.monotonic()
            status = post_batch(url, body, timeout=120)
            took = (time.monotonic() - sent) * 1000
            phases[phase].append(took)
            if took > args.slow_ms or status != 200:
                print(f"{sent - begin:6.1f} s  commit {took:7.0f} ms  {status}", flush=True)
        print("| phase | commits | median | max |\n|---|---:|---:|---:|")
        for phase, times in phases.items():
            if times:
                print(f"| {phase} | {len(times)} | {statistics.median(times):.0f} ms | {max(times):.0f} ms |")
    finally:
        if thawing is not None:
            thawing.cancel()
            thawing.join()
        if frozen:  # `stop` thaws it too; not left frozen should `stop` fail
            subprocess.run([SERVERS, "kill-one", servers, args.server, "CONT"], capture_output=True)
        if collector is not None:
            stop_process(collector)
        subprocess.run([SERVERS, "stop", servers], capture_output=True)
        subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    main()
