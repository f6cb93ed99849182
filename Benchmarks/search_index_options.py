#!/usr/bin/env python3
"""CPU per line of the collector's word index, by FTS5 option, one step at a time.

    python3 Benchmarks/search_index_options.py [--rows 500000] [--reps 3]

Fills a scratch store with the benchmark's HAProxy lines (Benchmarks/out/haproxy-2000000-s42.log,
`Benchmarks/run.sh` makes it), then indexes its first --rows rows the way the collector does
(chunks of rows, one transaction each) under each layout below, --reps times, and prints the
medians: rows/s and CPU-s (user + system of this process, which is where SQLite runs) per 1M
rows. Python's sqlite3 is the system SQLite the collector links.

Layouts, from the one before the index had its own file to the one the collector uses now:
  in-file       external-content FTS5 in the store's file, detail=none, 10,000-row chunks,
                synchronous=FULL (the store's setting)
  columnsize=0  the same without FTS5's per-row size table (no ranking is done)
  own file      contentless FTS5 in a file of its own, synchronous=NORMAL (derived data)
  100k chunks   the same, 100,000-row chunks and a 64 MiB term buffer (fewer segments to merge)
And three that were measured and not adopted:
  automerge=0   100k chunks without FTS5's automatic merging (segments pile up to crisismerge)
  20k, merging / 20k, no merge   chunks the size a collector keeping up with ingest indexes
  ascii         the `ascii` tokenizer instead of `unicode61` (folds ASCII letters only)
"""
import argparse
import os
import sqlite3
import statistics
import tempfile
import time

from pipeline_bench import process_cpu

HERE = os.path.dirname(os.path.abspath(__file__))

LAYOUTS = [
    ("in-file", dict(own_file=False, columnsize=1, chunk=10_000, hashsize=None)),
    ("columnsize=0", dict(own_file=False, columnsize=0, chunk=10_000, hashsize=None)),
    ("own file", dict(own_file=True, columnsize=0, chunk=10_000, hashsize=None)),
    ("100k chunks", dict(own_file=True, columnsize=0, chunk=100_000, hashsize=64 << 20)),
    ("automerge=0", dict(own_file=True, columnsize=0, chunk=100_000, hashsize=64 << 20, automerge=0)),
    ("20k, merging", dict(own_file=True, columnsize=0, chunk=20_000, hashsize=64 << 20)),
    ("20k, no merge", dict(own_file=True, columnsize=0, chunk=20_000, hashsize=64 << 20, automerge=0)),
    ("ascii", dict(own_file=True, columnsize=0, chunk=100_000, hashsize=64 << 20, tokenizer="ascii")),
]


def build_store(path, log, rows):
    store = sqlite3.connect(path, isolation_level=None)
    store.execute("PRAGMA journal_mode = WAL")
    store.execute("CREATE TABLE logs (id INTEGER PRIMARY KEY, stream INTEGER NOT NULL, off INTEGER NOT NULL, "
                  "t INTEGER NOT NULL, msg TEXT NOT NULL, fields TEXT, UNIQUE (stream, off))")
    store.execute("BEGIN")
    with open(log, encoding="utf-8") as lines:
        for offset, line in zip(range(rows), lines):
            store.execute("INSERT INTO logs (stream, off, t, msg) VALUES (1, ?, ?, ?)", (offset, offset, line.rstrip("\n")))
    store.execute("COMMIT")
    store.close()


def index_once(store_path, scratch, rows, own_file, columnsize, chunk, hashsize, automerge=None, tokenizer="unicode61"):
    copy = os.path.join(scratch, "store.sqlite")
    index = os.path.join(scratch, "index.sqlite")
    for path in (copy, index):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    with open(store_path, "rb") as source, open(copy, "wb") as target:
        target.write(source.read())
    if own_file:
        db = sqlite3.connect(index, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("ATTACH DATABASE ? AS store", (copy,))
        db.execute(f"CREATE VIRTUAL TABLE fts USING fts5(msg, content = '', tokenize = '{tokenizer}', detail = none, "
                   f"columnsize = {columnsize})")
        source = "store.logs"
    else:
        db = sqlite3.connect(copy, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(f"CREATE VIRTUAL TABLE fts USING fts5(msg, content = 'logs', content_rowid = 'id', tokenize = 'unicode61', "
                   f"detail = none, columnsize = {columnsize})")
        source = "logs"
    if hashsize:
        db.execute(f"INSERT INTO fts(fts, rank) VALUES ('hashsize', {hashsize})")
    if automerge is not None:
        db.execute(f"INSERT INTO fts(fts, rank) VALUES ('automerge', {automerge})")
    started, cpu = time.monotonic(), process_cpu()
    for low in range(0, rows, chunk):
        db.execute("BEGIN")
        db.execute(f"INSERT INTO fts(rowid, msg) SELECT id, msg FROM {source} WHERE id > ? AND id <= ?", (low, low + chunk))
        db.execute("COMMIT")
    seconds, cpu = time.monotonic() - started, process_cpu() - cpu
    hits = db.execute("SELECT count(*) FROM fts WHERE fts MATCH 'GET AND 503'").fetchone()[0]
    db.close()
    return rows / seconds, cpu / rows * 1e6, hits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--log", default=os.path.join(HERE, "out", "haproxy-2000000-s42.log"))
    args = parser.parse_args()
    if not os.path.exists(args.log):
        raise SystemExit(f"no {args.log}: run Benchmarks/run.sh once (it generates it)")
    with tempfile.TemporaryDirectory(prefix="muster-fts-") as scratch:
        store = os.path.join(scratch, "source.sqlite")
        build_store(store, args.log, args.rows)
        print(f"SQLite {sqlite3.sqlite_version}, {args.rows:,} rows, {args.reps} runs per layout, medians")
        print(f"{'layout':14} {'rows/s':>10} {'CPU-s/1M':>9}  runs (CPU-s/1M)")
        expected_hits = None
        for name, layout in LAYOUTS:
            runs = [index_once(store, scratch, args.rows, **layout) for _ in range(args.reps)]
            hits = {hits for _, _, hits in runs}
            expected_hits = expected_hits if expected_hits is not None else hits
            if len(hits) != 1 or hits != expected_hits:
                raise SystemExit(f"{name}: the index finds {sorted(hits)} lines for 'GET AND 503', the first layout {sorted(expected_hits)}")
            rate = statistics.median(r for r, _, _ in runs)
            cpu = statistics.median(c for _, c, _ in runs)
            print(f"{name:14} {rate:10,.0f} {cpu:9.2f}  {' '.join(f'{c:.2f}' for _, c, _ in runs)}")


if __name__ == "__main__":
    main()
