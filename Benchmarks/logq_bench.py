#!/usr/bin/env python3
"""logq on a day of a 20-node cluster: 10,000,000 lines, 1,000 membership changes.

    Benchmarks/logq_bench.py                 # build, generate once (cached), 7 timed runs each
    RUNS=3 Benchmarks/logq_bench.py --only members,timeline

Builds the release `logq` and `muster-bench-history` (`swift build -c release --scratch-path
.build-release`, or uses MUSTER_BIN), generates the history once into /var/tmp (reused while
its parameters match; --fresh regenerates), then runs each logq command once as a warm-up
(its output is checked and its time shown as "first") and RUNS more times, timed from spawn to
exit with the output going to /dev/null. Prints a table with the median, min and max of the
timed runs next to the limit, writes Benchmarks/results/logq.md, and every run's figures to
Benchmarks/out/logq-runs.json.

Exit status: 0 when every command ran and gave the expected output, whether or not it met its
limit (a ❌ row and the summary line say so); 1 when a command failed or printed something
unexpected; 2 for a build or generation failure.
"""

import argparse, datetime, json, os, platform, shutil, sqlite3, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clusterlib  # noqa: E402  (the release build, shared with the cluster benchmarks)
from storelib import attach_search_index, indexed_rows  # noqa: E402

REPO = clusterlib.REPO
WORK = "/var/tmp/muster-bench-logq"


def log(message):
    print(f"logq_bench: {message}", file=sys.stderr, flush=True)


def rfc3339(ns):
    seconds, fraction = divmod(ns, 1_000_000_000)
    when = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def run_once(argv):
    """Spawn → exit wall time and CPU (user+sys) of the child, from wait4; output to /dev/null.
    (Not its peak RSS: Linux carries the harness's own high-water mark over the child's execve,
    so ru_maxrss here would be at least this Python process's; see peak_rss.)"""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return ({"seconds": elapsed, "exit": process.returncode, "cpu_seconds": usage.ru_utime + usage.ru_stime},
            stderr.decode(errors="replace"))


def peak_rss(argv):
    """One more, untimed run under GNU time, whose %M is the command's own peak RSS (time is
    small, so the high-water mark carried over execve is time's ~2 MiB, not the harness's)."""
    if not os.path.exists("/usr/bin/time"):
        return None
    report = os.path.join(WORK, "time.out")
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with open(report) as f:
            kib = int(f.read().split()[-1])
        os.unlink(report)
    except (OSError, ValueError, IndexError):
        return None
    return kib / 1024 if result.returncode == 0 else None


def run_capture(argv):
    """run_once, with the output kept (in a file, so a large output cannot block the child)."""
    started = time.perf_counter()
    out_path = os.path.join(WORK, "warmup.stdout")
    with open(out_path, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    with open(out_path, "rb") as out:
        stdout = out.read().decode(errors="replace")
    os.unlink(out_path)
    return ({"seconds": elapsed, "exit": os.waitstatus_to_exitcode(status),
             "cpu_seconds": usage.ru_utime + usage.ru_stime}, stdout, stderr.decode(errors="replace"))


def resident_percent(path):
    """How much of the file is in the page cache (mmap + mincore through ctypes), in percent."""
    import ctypes
    size = os.path.getsize(path)
    if size == 0:
        return 100.0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    page = os.sysconf("SC_PAGE_SIZE")
    pages = (size + page - 1) // page
    vector = (ctypes.c_ubyte * pages)()
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if address in (None, ctypes.c_void_p(-1).value):
            return float("nan")
        try:
            if libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) != 0:
                return float("nan")
        finally:
            libc.munmap(ctypes.c_void_p(address), ctypes.c_size_t(size))
    finally:
        os.close(fd)
    return 100.0 * sum(v & 1 for v in vector) / pages


def warm(path):
    """Reads the whole file, so every command starts with it in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def sources_fingerprint():
    """sha256 of Package.swift and every file under Sources/, and which of them differ from HEAD:
    the working tree changes under us (other people edit it), so the figures name what was built."""
    import hashlib
    digest = hashlib.sha256()
    paths = [os.path.join(REPO, "Package.swift")]
    for root, _, files in os.walk(os.path.join(REPO, "Sources")):
        paths += [os.path.join(root, name) for name in files]
    for path in sorted(paths):
        digest.update(os.path.relpath(path, REPO).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read() + b"\0")
    changed = subprocess.run(["git", "status", "--porcelain", "--", "Sources", "Package.swift"], cwd=REPO,
                             capture_output=True, text=True).stdout.split("\n")
    return {"sha256": digest.hexdigest()[:16], "changed": [line[3:] for line in changed if line.strip()]}


def machine_facts(bin_dir):
    facts = {"nproc": os.cpu_count()}
    try:
        facts["nproc_cmd"] = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as info:
            facts["cpu"] = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
        with open("/proc/meminfo") as info:
            facts["memory"] = next(line.split(":", 1)[1].strip() for line in info if line.startswith("MemTotal"))
    except OSError:
        pass
    facts["kernel"] = platform.release()
    facts["swift"] = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.strip().splitlines()[0] \
        if shutil.which("swift") else "?"
    facts["python_sqlite"] = sqlite3.sqlite_version
    facts["bin"] = bin_dir
    git = lambda *args: subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()
    facts["commit"] = git("rev-parse", "--short", "HEAD")
    facts["dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    fs = os.statvfs(WORK)
    facts["work_free_gib"] = fs.f_bavail * fs.f_frsize / 2**30
    return facts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 7)), help="timed runs per command (after one warm-up)")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db", default=None, help=f"default {WORK}/history-LINES-sSEED.sqlite")
    parser.add_argument("--fresh", action="store_true", help="regenerate the database even if cached")
    parser.add_argument("--only", default="", help="comma-separated row ids to run (see the README's table)")
    parser.add_argument("--row-seconds", type=float, default=120,
                        help="stop a row's timed runs once they took this long in total (at least 3 runs)")
    parser.add_argument("--results", default=os.path.join(HERE, "results", "logq.md"))
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    db = args.db or os.path.join(WORK, f"history-{args.lines}-s{args.seed}.sqlite")

    env = dict(os.environ)
    given_bin = "MUSTER_BIN" in env
    sources = sources_fingerprint()
    for attempt in range(3):
        try:
            clusterlib.build(env, products=("logq", "muster-bench-history"))
            break
        except subprocess.CalledProcessError as error:
            # Often "input file … was modified during the build": the tree is shared; try again.
            log(f"build failed: {error}{'; retrying in 20 s' if attempt < 2 else ''}")
            if attempt == 2:
                return 2
            time.sleep(20)
            sources = sources_fingerprint()
    bin_dir = env["MUSTER_BIN"]
    logq = os.path.join(bin_dir, "logq")
    generator = os.path.join(bin_dir, "muster-bench-history")

    generate = [generator, "--database", db, "--lines", str(args.lines), "--nodes", str(args.nodes),
                "--changes", str(args.changes), "--seed", str(args.seed)] + (["--fresh"] if args.fresh else [])
    log("generating (or reusing) " + " ".join(generate))
    started = time.perf_counter()
    made = subprocess.run(generate, stdout=subprocess.PIPE, text=True)
    if made.returncode != 0:
        log(f"generation failed (exit {made.returncode})")
        return 2
    history = json.loads(made.stdout.strip().splitlines()[-1])
    history["wall_seconds_this_run"] = time.perf_counter() - started

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as store:
        marks = store.execute("SELECT name, t FROM marks ORDER BY t, id").fetchall()
    mark_time = dict(marks)
    # The task in the middle of the day, ~lines/10 lines; `members --at` its start.
    task = "task-3" if "task-3" in mark_time else marks[len(marks) // 2][0]
    names = [name for name, _ in marks]
    next_mark = names[names.index(task) + 1] if names.index(task) + 1 < len(names) else None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as store:
        attach_search_index(store, db)
        since = mark_time[task]
        until = mark_time[next_mark] if next_mark else 2**63 - 1
        task_lines = store.execute(
            "SELECT count(*) FROM logs l JOIN streams s ON s.id = l.stream WHERE l.t >= ? AND l.t < ? AND s.source != 'events'",
            (since, until)).fetchone()[0]
        sql, arguments = indexed_rows(store, "healthz")
        common = store.execute(f"SELECT count(*) FROM ({sql})", arguments).fetchone()[0]
        late_word, late_count, late_time = late_common_word(store)
        members_at = store.execute(
            "SELECT count(*) FROM membership m WHERE m.id = (SELECT id FROM membership WHERE member = m.member AND t <= ? "
            "ORDER BY t DESC, id DESC LIMIT 1) AND m.status != 'reaped'", (mark_time["task-5"],)).fetchone()[0]
    at = rfc3339(mark_time["task-5"])
    export_dir = os.path.join(WORK, "export")
    report_file = os.path.join(WORK, "report.html")
    has_report = subprocess.run([logq, "report", "--help"], capture_output=True).returncode == 0

    def lines_of(stdout):
        return len(stdout.splitlines())

    def exported_lines(_):
        folder = os.path.join(export_dir, task)
        total = 0
        for name in os.listdir(folder):
            if name.endswith(".log") and name[:-4] in ("ha",) + tuple(f"s{i}" for i in range(1, args.nodes)):
                with open(os.path.join(folder, name), "rb") as f:
                    total += sum(1 for _ in f)
        return total

    def file_size(_):
        return os.path.getsize(report_file) if os.path.exists(report_file) else 0

    # (id, label, argv, limit in seconds or None, check(stdout) -> (ok, what it found), cleanup before each run)
    def clear_export():
        shutil.rmtree(export_dir, ignore_errors=True)

    def clear_report():
        if os.path.exists(report_file):
            os.unlink(report_file)

    rows = [
        ("match-rare", f"logs --match {history['rare_word']} --limit 100 ({history['rare_word_lines']} lines have it)",
         [logq, "logs", "--db", db, "--match", history["rare_word"], "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == min(100, history["rare_word_lines"]), f"{lines_of(out)} lines"), None),
        ("match-common", f"logs --match healthz --limit 100 (common word: {common:,} lines)",
         [logq, "logs", "--db", db, "--match", "healthz", "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == 100, f"{lines_of(out)} lines"), None),
        ("match-late", f"logs --match {late_word} --limit 100 (an asset name on {late_count:,} lines, none before {late_time[11:16]})",
         [logq, "logs", "--db", db, "--match", late_word, "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == 100, f"{lines_of(out)} lines"), None),
        ("members", f"members --at {at}",
         [logq, "members", "--db", db, "--at", at], 0.020,
         lambda out: (lines_of(out) == members_at + 1, f"{lines_of(out) - 1} members"), None),
        ("timeline", "timeline (all changes)",
         [logq, "timeline", "--db", db], 0.100,
         lambda out: (lines_of(out) == history["membership_rows"] + 1, f"{lines_of(out) - 1} changes"), None),
        ("export", f"export --mark {task} ({task_lines:,} lines)",
         [logq, "export", "--db", db, "--out", export_dir, "--mark", task], 10.0,
         lambda out: (exported_lines(out) == task_lines, f"{exported_lines(out):,} lines exported"), clear_export),
        ("report", "report (whole history)",
         [logq, "report", "--db", db, "--out", report_file], 5.0,
         lambda out: (file_size(out) > 0, f"{file_size(out):,} bytes"), clear_report),
        ("report-task", f"report --mark {task}",
         [logq, "report", "--db", db, "--out", report_file, "--mark", task], None,
         lambda out: (file_size(out) > 0, f"{file_size(out):,} bytes"), clear_report),
        ("startup", "marks (process start + open, for scale)",
         [logq, "marks", "--db", db], None,
         lambda out: (lines_of(out) == len(marks) + 1, f"{lines_of(out) - 1} marks"), None),
    ]
    only = set(filter(None, args.only.split(",")))
    facts = machine_facts(bin_dir)
    facts["sources_before_build"] = sources
    facts["sources_after_build"] = sources_fingerprint()
    facts["bin_given"] = given_bin
    facts["logq_mtime"] = datetime.datetime.fromtimestamp(os.path.getmtime(logq), tz=datetime.timezone.utc).isoformat(timespec="seconds")
    results = []
    failures = 0
    for row_id, label, argv, limit, check, cleanup in rows:
        if only and row_id not in only:
            continue
        if row_id.startswith("report") and not has_report:
            results.append({"id": row_id, "label": label, "argv": argv, "limit": limit, "available": False})
            log(f"{row_id}: logq report is not available in this build")
            continue
        log(f"{row_id}: {' '.join(argv)}")
        # This VM's page cache does not keep the 2 GB file for long (other work, and the export's
        # own output, push it out), so each command starts from the same warm cache; how much was
        # resident before is recorded.
        cached_before = resident_percent(db)
        if not cached_before >= 99.0:
            warm(db)
        if cleanup:
            cleanup()
        first, stdout, stderr = run_capture(argv)
        ok, found = check(stdout)
        row = {"id": row_id, "label": label, "argv": argv, "limit": limit, "available": True, "first": first,
               "db_cached_before_warming_percent": cached_before,
               "found": found, "output_ok": ok and first["exit"] == 0, "runs": [], "load_before": os.getloadavg()}
        if first["exit"] != 0 or not ok:
            failures += 1
            log(f"{row_id}: exit {first['exit']}, {found}; stderr: {stderr.strip()[:500]}")
        for index in range(args.runs):
            if index >= 3 and sum(run["seconds"] for run in row["runs"]) > args.row_seconds:
                log(f"{row_id}: stopping after {index} timed runs (--row-seconds {args.row_seconds:.0f})")
                break
            if cleanup:
                cleanup()
            run, stderr = run_once(argv)
            if run["exit"] != 0:
                failures += 1
                log(f"{row_id}: exit {run['exit']}: {stderr.strip()[:300]}")
            row["runs"].append(run)
        row["load_after"] = os.getloadavg()
        seconds = [run["seconds"] for run in row["runs"]]
        row["median"] = statistics.median(seconds)
        row["min"], row["max"] = min(seconds), max(seconds)
        row["cpu_median"] = statistics.median(run["cpu_seconds"] for run in row["runs"])
        if cleanup:
            cleanup()
        row["peak_rss_mib"] = peak_rss(argv)
        row["met"] = None if limit is None else row["median"] < limit
        log(f"{row_id}: median {row['median'] * 1000:.1f} ms (first {first['seconds'] * 1000:.1f} ms), {found}")
        results.append(row)
    clear_export()
    clear_report()

    table = render(results, args.runs)
    summary = summary_line(results)
    print("\n".join(table))
    print(summary)
    write_results(args, db, history, facts, results, table, summary, generate, task, at)
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "logq-runs.json"), "w") as f:
        json.dump({"history": history, "facts": facts, "results": results}, f, indent=1)
    return 1 if failures else 0


def late_common_word(store):
    """A word on many lines that all come late in the day: the static-asset name (8 hex digits,
    new with every hourly deploy) on at least 20,000 lines whose first line is the latest.
    Walking the lines in time order finds it only at the end."""
    import re
    partitions = [n for (n,) in store.execute("SELECT n FROM search.partitions ORDER BY n")]
    for n in partitions:
        store.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab_{n} USING fts5vocab(search, 'logs_fts_{n}', 'row')")
    # Summed over the partitions in SQL: only 8-character terms, the shape of an asset name.
    every_partition = " UNION ALL ".join(f"SELECT term, doc FROM temp.vocab_{n} WHERE length(term) = 8" for n in partitions)
    candidates = store.execute(
        f"SELECT term, sum(doc) FROM ({every_partition}) GROUP BY term HAVING sum(doc) >= 20000").fetchall() if partitions else []
    best = None
    for term, count in candidates:
        if re.fullmatch(r"[0-9a-f]{8}", term) and not term.isdigit():
            sql, arguments = indexed_rows(store, f'"{term}"')
            first = store.execute(f"SELECT min(rowid) FROM ({sql})", arguments).fetchone()[0]
            if best is None or first > best[2]:
                best = (term, count, first)
    if best is None:
        return "healthz", 0, rfc3339(0)
    sql, arguments = indexed_rows(store, f'"{best[0]}"')
    first_time = store.execute(f"SELECT min(l.t) FROM logs l WHERE l.id IN ({sql})", arguments).fetchone()[0]
    return best[0], best[1], rfc3339(first_time)


def ms(seconds):
    return f"{seconds * 1000:,.0f} ms" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def rss(mib):
    return "?" if mib is None else f"{mib:.0f} MiB"


def render(results, runs):
    lines = [f"| command | limit | first run | median | min | max | runs | CPU (median) | peak RSS | output | |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for row in results:
        limit = f"< {ms(row['limit'])}" if row["limit"] is not None else "—"
        if not row["available"]:
            lines.append(f"| `logq {row['label']}` | {limit} | not available | | | | | | | `logq report` is not in this build | |")
            continue
        mark = "" if row["met"] is None else ("✅" if row["met"] else "❌")
        lines.append(
            f"| `logq {row['label']}` | {limit} | {ms(row['first']['seconds'])} | **{ms(row['median'])}** | {ms(row['min'])} | "
            f"{ms(row['max'])} | {len(row['runs'])} | {ms(row['cpu_median'])} | {rss(row['peak_rss_mib'])} | {row['found']}"
            f"{'' if row['output_ok'] else ' (UNEXPECTED)'} | {mark} |")
    return lines


def summary_line(results):
    limited = [row for row in results if row["limit"] is not None]
    unavailable = [row["id"] for row in limited if not row["available"]]
    measured = [row for row in limited if row["available"]]
    missed = [row["id"] for row in measured if not row["met"]]
    text = f"limits met: {len(measured) - len(missed)} of {len(measured)} measured"
    if missed:
        text += f"; MISSED: {', '.join(missed)}"
    if unavailable:
        text += f"; not available: {', '.join(unavailable)}"
    return text


def write_results(args, db, history, facts, results, table, summary, generate, task, at):
    size = os.path.getsize(db)
    gib = size / 2**30
    index_path = db + "-search"
    index_size = os.path.getsize(index_path) if os.path.exists(index_path) else 0
    commands = "\n".join(" ".join(row["argv"]).replace(facts["bin"] + "/", "") for row in results)
    text = f"""# logq on a day of a 20-node cluster

`Benchmarks/logq_bench.py --runs {args.runs}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.
Each command runs once as a warm-up (its output is checked; "first run") and {args.runs} more
times (at least 3 once a row's runs took {args.row_seconds:.0f} s; see `runs`) timed from spawn to exit,
output to `/dev/null`. Median, min and max are of the timed
runs; ✅/❌ compares the median with the limit. Before each command's warm-up the harness reads the whole database file, so
every command starts with it in the page cache (this VM's cache lets go of the 2 GB file within
minutes; how much of it was still cached is in `Benchmarks/out/logq-runs.json`); no figure
here is a cold-cache figure. CPU is user + system time of the logq process (from `wait4`, median
of the timed runs); peak RSS is GNU time's `%M` from one more, untimed run.

**{summary}**

{chr(10).join(table)}

## The data

`{" ".join(generate).replace(facts["bin"] + "/", "")}`
({"reused from an earlier run; " if history.get("reused") else ""}generated in **{history["total_seconds"]:.0f} s**:
{history["insert_seconds"]:.0f} s simulating and inserting, {history["index_seconds"]:.0f} s building the search index)

| | |
|---|---|
| log lines | {history["stored_lines"]:,} from {history["nodes"]} nodes (ha, s1–s{history["nodes"] - 1}), {history["journal_lines"]:,} of them event-journal lines |
| time span | {history["first_time"]} – {history["last_time"]} |
| membership changes | {history["membership_rows"]:,} (ledger rows); {history["config_rows"]:,} configs, {history["inventory_rows"]:,} inventories, {history["event_rows"]:,} stream events |
| streams | {history["stream_rows"]:,} (files rotate every ~1 MB like `s6-log s1000000`) |
| rare word | `{history["rare_word"]}` in {history["rare_word_lines"]} lines |
| marks | task-0 … task-{history["marks"] - 1}, one every {history["lines"] // history["marks"]:,} stored lines; `export` and `report --mark` use {task}, `members --at` task-5's time ({at}) |
| database | {db}, {gib:.2f} GiB ({size:,} bytes), and its search index `-search`, {index_size / 2**30:.2f} GiB; WAL, written with `synchronous=NORMAL` |
| SQLite | {history["sqlite_version"]} (the system library GRDB links; Python's sqlite3: {facts["python_sqlite"]}) |

## The machine

{facts.get("nproc")} cores (`nproc`: {facts.get("nproc_cmd", "?")}), {facts.get("cpu", "?")}, {facts.get("memory", "?")} RAM, Linux {facts["kernel"]};
{facts["swift"]}; release build (`swift build -c release --scratch-path .build-release`{", binaries from MUSTER_BIN" if facts["bin_given"] else ""}; logq built {facts["logq_mtime"]}),
commit {facts["commit"]}{" with uncommitted changes" if facts["dirty"] else ""}; Sources/ + Package.swift fingerprint
{facts["sources_before_build"]["sha256"]} before the build{"" if facts["sources_after_build"]["sha256"] == facts["sources_before_build"]["sha256"] else " and " + facts["sources_after_build"]["sha256"] + " after it (someone edited the tree meanwhile)"}; files differing from HEAD:
{", ".join(facts["sources_before_build"]["changed"]) or "none"}.
Shared with other work: load average before/after each command is in `Benchmarks/out/logq-runs.json`
({", ".join(f"{row['id']} {row['load_before'][0]:.1f}→{row['load_after'][0]:.1f}" for row in results if row.get("available"))}).

## Commands

```
{commands}
```
"""
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    notes_marker = "\n## Findings\n"
    if os.path.exists(args.results):
        with open(args.results) as f:
            old = f.read()
        if notes_marker in old:  # keep the hand-written findings below the generated part
            text += notes_marker + old.split(notes_marker, 1)[1]
    with open(args.results, "w") as f:
        f.write(text)
    log(f"wrote {args.results}")


if __name__ == "__main__":
    sys.exit(main())
