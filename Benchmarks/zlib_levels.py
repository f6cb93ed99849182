#!/usr/bin/env python3
"""Compression level vs size and CPU on agent-style batches: zlib against libdeflate, which
the agent uses (why it defaults to libdeflate's level 5).

Encodes the first 50,000 lines of the benchmark log the way the agent does (stream keys once
per batch, `off` implied, one JSON object per line), cuts it into 1 MiB batches and
compresses each batch at levels 3-6 with Python's zlib (the system libz) and with the system
libdeflate through ctypes (the library the agent links; zlib format, one call per batch as the
agent makes it). Prints compressed bytes per line and CPU microseconds per line, median of 3
runs.

    python3 Benchmarks/zlib_levels.py [Benchmarks/out/haproxy-2000000-s42.log]
"""
import ctypes
import ctypes.util
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
libdeflate = ctypes.CDLL(ctypes.util.find_library("deflate") or "libdeflate.so.0")
libdeflate.libdeflate_alloc_compressor.restype = ctypes.c_void_p
libdeflate.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
libdeflate.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
libdeflate.libdeflate_zlib_compress_bound.restype = ctypes.c_size_t
libdeflate.libdeflate_zlib_compress_bound.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libdeflate.libdeflate_zlib_compress.restype = ctypes.c_size_t
libdeflate.libdeflate_zlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]


def with_libdeflate(batch, level, verify=False):
    """As the agent does it: a compressor per batch, the output bound, one call."""
    compressor = libdeflate.libdeflate_alloc_compressor(level)
    try:
        bound = libdeflate.libdeflate_zlib_compress_bound(compressor, len(batch))
        output = ctypes.create_string_buffer(bound)
        written = libdeflate.libdeflate_zlib_compress(compressor, batch, len(batch), output, bound)
        assert written > 0
        return written if not verify else zlib.decompress(output.raw[:written]) == batch
    finally:
        libdeflate.libdeflate_free_compressor(compressor)


def timed(compress):
    times, size = [], 0
    for _ in range(3):
        started = time.process_time()
        size = sum(compress(batch) for batch in batches)
        times.append(time.process_time() - started)
    return size / len(lines), statistics.median(times) / len(lines) * 1e6


assert all(with_libdeflate(batch, 5, verify=True) for batch in batches), "libdeflate's output does not inflate"
print("| level | zlib bytes/line | zlib CPU µs/line | libdeflate bytes/line | libdeflate CPU µs/line |")
print("|---:|---:|---:|---:|---:|")
for level in (3, 4, 5, 6):
    zlib_size, zlib_time = timed(lambda batch: len(zlib.compress(batch, level)))
    size, cpu = timed(lambda batch: with_libdeflate(batch, level))
    print(f"| {level} | {zlib_size:.1f} | {zlib_time:.2f} | {size:.1f} | {cpu:.2f} |")
