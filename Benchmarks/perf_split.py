#!/usr/bin/env python3
"""Splits a collector profile by what the collector was doing, from the call stacks.

    python3 Benchmarks/profile_pipeline.py collector --replay --call-graph dwarf --out F
    python3 Benchmarks/perf_split.py F

The system's libsqlite3 has no frame pointers and no symbols for its static functions, so a
profile sorted by symbol cannot say whose SQLite time it is. With `--call-graph dwarf`, perf
unwinds through it (by its .eh_frame) to the collector's Swift frames; each sample is then put
in the first bucket below whose marker is on its stack. Prints each bucket's share of all
samples, then, with --leaves BUCKET, the innermost functions of that bucket.
"""

import argparse
import collections
import subprocess
import sys

# (bucket, markers: all must be on the stack), tried in order.
BUCKETS = [
    ("search index: FTS5 inserts (tokenizing, the term hash)", ["indexNextChunk", "SearchIndexC6insert"]),
    ("search index: reading the store's rows", ["indexNextChunk", "MessageSlice"]),
    # The rest of the index's transaction: FTS5 flushing its term buffer as a segment, at commit.
    ("search index: commit (FTS5 writes its segment)", ["indexNextChunk"]),
    ("store: row inserts", ["LogWriter"]),
    ("store: the rest of its transaction (commit)", ["MusterStoreSQLite"]),
    ("decoding the NDJSON", ["BatchCodec"]),
    ("inflating the body", ["Inflater"]),
    ("HTTP (NIO, Hummingbird)", ["NIO"]),
]
OTHER = "other (kernel, allocator, runtime, outside these frames)"


def samples(perf_data):
    """Yields each sample's stack, innermost frame first. perf script prints a header line per
    sample (its thread id) and then its frames, one per line, each indented with a tab."""
    script = subprocess.run(["perf", "script", "-i", perf_data, "-F", "tid,ip,sym,dso"],
                            capture_output=True, text=True, errors="replace", check=True).stdout
    frames = None
    for line in script.splitlines():
        if not line.strip():
            continue
        if line.startswith("\t"):
            if frames is not None:
                frames.append(line.strip())
        else:
            if frames:
                yield frames
            frames = []
    if frames:
        yield frames


def bucket_of(frames):
    stack = "\n".join(frames)
    for name, markers in BUCKETS:
        if all(marker in stack for marker in markers):
            return name
    return OTHER


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("perf_data")
    parser.add_argument("--leaves", help="also list the innermost functions of the bucket whose name starts with this")
    args = parser.parse_args()
    counts = collections.Counter()
    leaves = collections.Counter()
    total = 0
    for frames in samples(args.perf_data):
        total += 1
        name = bucket_of(frames)
        counts[name] += 1
        if args.leaves and name.startswith(args.leaves):
            leaves[frames[0].split(" ", 1)[-1][:100]] += 1
    if total == 0:
        sys.exit(f"perf_split: no samples in {args.perf_data}")
    if counts[OTHER] > total / 2:
        print("perf_split: most samples are in no part: was the profile recorded with --call-graph dwarf?",
              file=sys.stderr)
    for name, _ in BUCKETS + [(OTHER, None)]:
        print(f"{100 * counts[name] / total:6.1f}%  {name}")
    print(f"({total} samples)")
    if leaves:
        inside = sum(leaves.values())
        print(f"\ninnermost functions of '{args.leaves}…' ({inside} samples):")
        for leaf, count in leaves.most_common(15):
            print(f"{100 * count / inside:6.1f}%  {leaf}")


if __name__ == "__main__":
    main()
