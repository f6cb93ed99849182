#!/usr/bin/env python3
"""zlib level vs size and CPU on agent-style batches (why the agent defaults to level 5).

Encodes the first 50,000 lines of the benchmark log the way the agent does (stream keys once
per batch, `off` implied, one JSON object per line), cuts it into 1 MiB batches and
compresses each batch at levels 3-6 with Python's zlib (the same system libz the agent
links). Prints compressed bytes per line and CPU microseconds per line, median of 3 runs.

    python3 Benchmarks/zlib_levels.py [Benchmarks/out/haproxy-2000000-s42.log]
"""
import json
import statistics
import sys
import time
import zlib

path = sys.argv[1] if len(sys.argv) > 1 else "Benchmarks/out/haproxy-2000000-s42.log"
lines = []
with open(path, "rb") as source:
    for number, raw in enumerate(source):
        if number >= 50_000:
            break
        lines.append(raw.rstrip(b"\n").decode())
encoded = []
for number, line in enumerate(lines):
    record = {}
    if number % 4_700 == 0:  # a new batch restates the stream keys and the offset
        record.update(agent="bench-node", node="bench-node", src="haproxy",
                      gen="1a2b3c-9f8e7d6c5b4a3210", t=1_795_294_292_561_972_130 + number, off=number * 210)
    record["msg"] = line
    encoded.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
body = ("\n".join(encoded) + "\n").encode()
batches = [body[start:start + (1 << 20)] for start in range(0, len(body), 1 << 20)]
print(f"{len(lines):,} lines, {len(body) / len(lines):.1f} NDJSON bytes/line, {len(batches)} batches of 1 MiB")
print("| zlib level | bytes/line | CPU µs/line (median of 3) |")
print("|---:|---:|---:|")
for level in (3, 4, 5, 6):
    times = []
    for _ in range(3):
        started = time.process_time()
        size = sum(len(zlib.compress(batch, level)) for batch in batches)
        times.append(time.process_time() - started)
    print(f"| {level} | {size / len(lines):.1f} | {statistics.median(times) / len(lines) * 1e6:.2f} |")
