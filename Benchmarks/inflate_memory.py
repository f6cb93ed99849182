#!/usr/bin/env python3
"""Peak memory of one collector under concurrent batches that inflate ~1000x.

Eight (by default) clients each POST a ~63 KB zlib body that inflates to ~60 MB of valid
NDJSON (60 lines of 1 MB), all at once, several rounds. Reports the collector's peak RSS
(VmHWM) and how many batches were stored, for a given max_inflated_bytes_in_flight.

    Benchmarks/inflate_memory.py [--binary .build/release/muster-collector] [--clients 8]
        [--rounds 3] [--budget-mb 256]
"""
import argparse, concurrent.futures, json, os, socket, subprocess, sys, tempfile, time, urllib.request, zlib


def body(client: int, round_: int, lines: int = 60, size: int = 1_000_000) -> bytes:
    message = "a" * size
    text = "".join(
        json.dumps({"agent": f"bomb{client}", "node": f"n{client}", "src": "app", "gen": f"r{round_}",
                    "off": i * (size + 1), "t": 1_700_000_000_000_000_000 + i, "msg": message}) + "\n"
        for i in range(lines))
    return zlib.compress(text.encode(), 9)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/debug/muster-collector")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-mb", type=int, default=256)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="muster-inflate-")
    config = os.path.join(work, "collector.yaml")
    with open(config, "w") as f:
        f.write(f"limits:\n  max_inflated_bytes_in_flight: {args.budget_mb << 20}\n")
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "collector.log"), "w")
    process = subprocess.Popen(
        [args.binary, "--config", config, "--database", os.path.join(work, "store.sqlite"), "--host", "127.0.0.1",
         "--port", "0", "--port-file", port_file, "--token", "t"], stdout=log, stderr=log)
    try:
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            if time.time() > deadline or process.poll() is not None:
                print("collector did not start; see", log.name, file=sys.stderr)
                return 1
            time.sleep(0.05)
        port = int(open(port_file).read().strip())
        bodies = {(c, r): body(c, r) for c in range(args.clients) for r in range(args.rounds)}

        def post(key):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/ingest", data=bodies[key], method="POST",
                headers={"Authorization": "Bearer t", "Content-Encoding": "deflate"})
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status

        started = time.time()
        statuses = []
        for r in range(args.rounds):
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                statuses += list(pool.map(post, [(c, r) for c in range(args.clients)]))
        elapsed = time.time() - started
        status = open(f"/proc/{process.pid}/status").read()
        peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        print(json.dumps({
            "clients": args.clients, "rounds": args.rounds, "body_bytes": len(bodies[(0, 0)]),
            "budget_mb": args.budget_mb, "ok": statuses.count(200), "of": len(statuses),
            "peak_rss_mib": round(peak / 1024, 1), "seconds": round(elapsed, 1)}))
        return 0 if statuses.count(200) == len(statuses) else 1
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
