#!/usr/bin/env python3
"""logq on a day of a 20-node cluster: 10,000,000 lines, 1,000 membership changes.

    Benchmarks/logq_bench.py                 # build, generate once (cached), 7 timed runs each
    RUNS=3 Benchmarks/logq_bench.py --only members,timeline

Builds the release `logq` and `muster-bench-history` (`scripts/build-release`, in
`.build-release`, or uses MUSTER_BIN), generates the history once into /var/tmp (reused while
its parameters match; --fresh regenerates), then runs each logq command once as a warm-up
(its output is checked and its time shown as "first") and RUNS more times, timed from spawn to
exit with the output going to /dev/null. Prints a table with the median, min and max of the
timed runs next to the limit, writes Benchmarks/results/logq.md, and every run's figures to
Benchmarks/out/logq-runs.json.

Exit status: 0 when every command ran and gave the expected output, whether or not it met its
limit (a ❌ row and the summary line say so); 1 when a command failed or printed something
unexpected; 2 for a build or generation failure.

    Benchmarks/logq_bench.py --scale-out     # the same commands on SQLite and on ClickHouse + etcd
    RUNS=5 Benchmarks/logq_bench.py --scale-out --only members,timeline

--scale-out also loads the same history (same generator, same seed) into the scale-out store:
scripts/scale-out-servers starts ZooKeeper, ClickHouse (2 shards x 2 replicas) and etcd on
127.0.0.1 (--port-base, default 16500) in a directory of its own under /var/tmp, and
`muster-bench-history --store CONFIG` writes the history through the collector's store code.
The loaded cluster is kept there and started again on its data by later runs while the
parameters and the generator's version match (--fresh reloads it); the servers are stopped by
the script's `stop` at the end, also on an error or ^C. Each command then runs on SQLite
(`--db`) and right after on the scale-out store (`--store CONFIG`), each with its warm-up and
RUNS timed runs; the warm-ups' outputs (stdout; the exported files; the report) are compared
between the stores and every difference is reported. Writes Benchmarks/results/logq-scale-out.md
(Benchmarks/results/logq.md is left alone) and Benchmarks/out/logq-scale-out-runs.json, and
both outputs of a command that differs to Benchmarks/out/logq-compare/. Exit status as above;
a difference between the stores is reported, not an error.
"""

import argparse, datetime, hashlib, json, os, platform, shutil, signal, sqlite3, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clusterlib  # noqa: E402  (the release build, shared with the cluster benchmarks)
from storelib import attach_search_index, indexed_rows  # noqa: E402

REPO = clusterlib.REPO
WORK = "/var/tmp/muster-bench-logq"
SERVERS_SCRIPT = os.path.join(REPO, "scripts", "scale-out-servers")
# Where a row's argv takes the store: `--db PATH` or `--store CONFIG`.
STORE = "<store>"


def log(message):
    print(f"logq_bench: {message}", file=sys.stderr, flush=True)


def write_keeping_findings(path, text):
    """Writes the generated table to `path`, keeping a hand-written `## Findings` section that
    the file already has below it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    notes_marker = "\n## Findings\n"
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if notes_marker in old:
            text += notes_marker + old.split(notes_marker, 1)[1]
    with open(path, "w") as f:
        f.write(text)
    log(f"wrote {path}")


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


class ScaleOutCluster:
    """The servers of scripts/scale-out-servers in a directory this script owns, loaded once with
    the history and kept (with a note of what was loaded) for later runs with the same
    parameters."""

    def __init__(self, directory, port_base):
        self.directory = directory
        self.servers = os.path.join(directory, "servers")
        self.config = os.path.join(directory, "collector.yaml")
        self.loaded_file = os.path.join(directory, "loaded.json")
        self.port_base = port_base
        self.running = False

    def loaded(self, wanted):
        """The generator's summary of the loaded history, if it is the one wanted."""
        try:
            with open(self.loaded_file) as f:
                summary = json.load(f)
        except (OSError, ValueError):
            return None
        same = all(summary.get(key) == value for key, value in wanted.items())
        return summary if same and os.path.isdir(self.servers) else None

    def start(self, fresh):
        if fresh:
            log(f"scale-out: removing {self.directory} (a fresh cluster)")
            subprocess.run([SERVERS_SCRIPT, "stop", self.servers], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(self.directory, ignore_errors=True)
        os.makedirs(self.directory, exist_ok=True)
        log(f"scale-out: starting the servers in {self.servers} (port base {self.port_base})")
        self.running = True  # from here on, stop() runs the script's stop, whatever start did
        subprocess.run([SERVERS_SCRIPT, "start", self.servers, "--port-base", str(self.port_base)], check=True,
                       stdout=subprocess.DEVNULL)
        env = clusterlib.scale_out_env(self.servers)
        # A collector's config file; logq --store reads only its store: section.
        with open(self.config, "w") as f:
            f.write(clusterlib.scale_out_store_section(env, "muster"))

    def data_files(self):
        """The servers' data files (ClickHouse's parts on all four, one etcd member's), for warming."""
        found = []
        for name in clusterlib.CLICKHOUSES + clusterlib.ETCD_MEMBERS[:1]:
            for root, _, files in os.walk(os.path.join(self.servers, name, "data")):
                found += [os.path.join(root, file) for file in files]
        return found

    def bytes_on_disk(self):
        total = 0
        for path in self.data_files():
            try:
                total += os.path.getsize(path)
            except OSError:  # merged away since the listing
                pass
        return total

    def wait_quiet(self, timeout=600, cores=0.15):
        """Waits until the servers use less than `cores` of CPU over 5 s (merges after a load,
        loading parts after a start), so the timed runs do not share the machine with them."""
        def cpu():
            total = 0
            for name in clusterlib.ZOOKEEPERS + clusterlib.ETCD_MEMBERS + clusterlib.CLICKHOUSES:
                try:
                    total += clusterlib.process_cpu_seconds(clusterlib.server_pid(self.servers, name))
                except (OSError, ValueError):
                    pass
            return total

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = cpu()
            time.sleep(5)
            used = (cpu() - before) / 5
            if used < cores:
                log(f"scale-out: servers quiet ({used:.2f} cores)")
                return
            log(f"scale-out: servers busy ({used:.2f} cores: merges or start-up); waiting")
        log(f"scale-out: servers still busy after {timeout} s; measuring anyway")

    def stop(self):
        if self.running:
            log(f"scale-out: stopping the servers in {self.servers}")
            subprocess.run([SERVERS_SCRIPT, "stop", self.servers], stdout=subprocess.DEVNULL)
            self.running = False


def with_store(argv, store_args):
    return [part for item in argv for part in (store_args if item == STORE else [item])]


def tree_digest(path):
    """sha256 over a file, or over a folder's files (relative names and contents); None if absent."""
    if not os.path.exists(path):
        return None
    digest = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as f:
            digest.update(f.read())
        return digest.hexdigest()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as f:
                digest.update(f.read() + b"\0")
    return digest.hexdigest()


def measure(row_id, label, argv, limit, check, cleanup, runs, row_seconds, warm_paths, cached_path=None, artifact=None):
    """One command: warm the store's files, a checked warm-up run, then up to `runs` timed runs.
    Returns the row and the warm-up's output (stdout and the digest of what it wrote)."""
    log(f"{row_id}: {' '.join(argv)}")
    # This VM's page cache does not keep the 2 GB file for long (other work, and the export's
    # own output, push it out), so each command starts from the same warm cache; how much was
    # resident before is recorded.
    cached_before = resident_percent(cached_path) if cached_path else None
    if cached_before is None or not cached_before >= 99.0:
        for path in warm_paths:
            try:
                warm(path)
            except FileNotFoundError:  # a ClickHouse part merged away since the listing
                pass
    if cleanup:
        cleanup()
    first, stdout, stderr = run_capture(argv)
    ok, found = check(stdout)
    written = artifact() if artifact else None
    row = {"id": row_id, "label": label, "argv": argv, "limit": limit, "available": True, "first": first,
           "db_cached_before_warming_percent": cached_before,
           "found": found, "output_ok": ok and first["exit"] == 0, "runs": [], "load_before": os.getloadavg()}
    failures = 0
    if first["exit"] != 0 or not ok:
        failures += 1
        log(f"{row_id}: exit {first['exit']}, {found}; stderr: {stderr.strip()[:500]}")
    for index in range(runs):
        if index >= 3 and sum(run["seconds"] for run in row["runs"]) > row_seconds:
            log(f"{row_id}: stopping after {index} timed runs (--row-seconds {row_seconds:.0f})")
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
    row["failures"] = failures
    log(f"{row_id}: median {row['median'] * 1000:.1f} ms (first {first['seconds'] * 1000:.1f} ms), {found}")
    return row, stdout, written


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 7)), help="timed runs per command (after one warm-up)")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--hours", type=float, default=24, help="the history's span (fewer lines want fewer hours)")
    parser.add_argument("--db", default=None, help=f"default {WORK}/history-LINES-sSEED.sqlite")
    parser.add_argument("--fresh", action="store_true", help="regenerate the database even if cached")
    parser.add_argument("--only", default="", help="comma-separated row ids to run (see the README's table)")
    parser.add_argument("--row-seconds", type=float, default=120,
                        help="stop a row's timed runs once they took this long in total (at least 3 runs)")
    parser.add_argument("--results", default=None,
                        help="default Benchmarks/results/logq.md, or logq-scale-out.md with --scale-out")
    parser.add_argument("--scale-out", action="store_true",
                        help="also run every command on the scale-out store (ClickHouse + etcd) and compare the outputs")
    parser.add_argument("--port-base", type=int, default=16500, help="scripts/scale-out-servers --port-base")
    args = parser.parse_args()
    args.results = args.results or os.path.join(HERE, "results", "logq-scale-out.md" if args.scale_out else "logq.md")
    signal.signal(signal.SIGTERM, interrupted)
    os.makedirs(WORK, exist_ok=True)
    cluster = ScaleOutCluster(os.path.join(WORK, f"scale-out-{args.lines}-s{args.seed}"), args.port_base) if args.scale_out else None
    try:
        return benchmark(args, cluster)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if cluster:
            cluster.stop()


def interrupted(*_):
    """SIGTERM ends the run like ^C: through the `finally` that stops the servers."""
    raise KeyboardInterrupt()


def benchmark(args, cluster):
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
                "--changes", str(args.changes), "--seed", str(args.seed)] + (["--fresh"] if args.fresh else []) \
        + (["--hours", f"{args.hours:g}"] if args.hours != 24 else [])
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
         [logq, "logs", STORE, "--match", history["rare_word"], "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == min(100, history["rare_word_lines"]), f"{lines_of(out)} lines"), None),
        ("match-common", f"logs --match healthz --limit 100 (common word: {common:,} lines)",
         [logq, "logs", STORE, "--match", "healthz", "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == 100, f"{lines_of(out)} lines"), None),
        ("match-late", f"logs --match {late_word} --limit 100 (an asset name on {late_count:,} lines, none before {late_time[11:16]})",
         [logq, "logs", STORE, "--match", late_word, "--limit", "100"], 0.200,
         lambda out: (lines_of(out) == 100, f"{lines_of(out)} lines"), None),
        ("members", f"members --at {at}",
         [logq, "members", STORE, "--at", at], 0.020,
         lambda out: (lines_of(out) == members_at + 1, f"{lines_of(out) - 1} members"), None),
        ("timeline", "timeline (all changes)",
         [logq, "timeline", STORE], 0.100,
         lambda out: (lines_of(out) == history["membership_rows"] + 1, f"{lines_of(out) - 1} changes"), None),
        ("export", f"export --mark {task} ({task_lines:,} lines)",
         [logq, "export", STORE, "--out", export_dir, "--mark", task], 10.0,
         lambda out: (exported_lines(out) == task_lines, f"{exported_lines(out):,} lines exported"), clear_export),
        ("report", "report (whole history)",
         [logq, "report", STORE, "--out", report_file], 5.0,
         lambda out: (file_size(out) > 0, f"{file_size(out):,} bytes"), clear_report),
        ("report-task", f"report --mark {task}",
         [logq, "report", STORE, "--out", report_file, "--mark", task], None,
         lambda out: (file_size(out) > 0, f"{file_size(out):,} bytes"), clear_report),
        ("startup", "marks (process start + open, for scale)",
         [logq, "marks", STORE], None,
         lambda out: (lines_of(out) == len(marks) + 1, f"{lines_of(out) - 1} marks"), None),
    ]
    only = set(filter(None, args.only.split(",")))
    facts = machine_facts(bin_dir)
    facts["sources_before_build"] = sources
    facts["sources_after_build"] = sources_fingerprint()
    facts["bin_given"] = given_bin
    facts["logq_mtime"] = datetime.datetime.fromtimestamp(os.path.getmtime(logq), tz=datetime.timezone.utc).isoformat(timespec="seconds")

    store_summary = None
    if cluster:
        store_summary = load_scale_out(args, cluster, generator, history)
        if store_summary is None:
            return 2
    # (name, logq's store arguments, files to warm before each command, the file whose residency is recorded)
    stores = [("sqlite", ["--db", db], lambda: [db], db)]
    if cluster:
        stores.append(("scale-out", ["--store", cluster.config], cluster.data_files, None))
    # What a command writes besides stdout, compared between the stores: its digest, and a copy
    # in Benchmarks/out/logq-compare/ (removed again when both stores wrote the same).
    compare_dir = os.path.join(HERE, "out", "logq-compare")

    def keep(path, row_id, name):
        def digest():
            copy = os.path.join(compare_dir, f"{row_id}.{name}" + os.path.splitext(path)[1])
            shutil.rmtree(copy, ignore_errors=True)
            if os.path.isfile(copy):
                os.unlink(copy)
            os.makedirs(compare_dir, exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, copy)
            elif os.path.exists(path):
                shutil.copyfile(path, copy)
            return {"digest": tree_digest(path), "copy": copy}
        return digest

    artifacts = {"export": export_dir, "report": report_file, "report-task": report_file}
    if cluster:
        shutil.rmtree(compare_dir, ignore_errors=True)
    results = []
    comparisons = []
    failures = 0
    for row_id, label, argv, limit, check, cleanup in rows:
        if only and row_id not in only:
            continue
        if row_id.startswith("report") and not has_report:
            for name, store_args, _, _ in stores:
                results.append({"id": row_id, "store": name, "label": label, "argv": with_store(argv, store_args), "limit": limit,
                                "available": False})
            log(f"{row_id}: logq report is not available in this build")
            continue
        outputs = {}
        for name, store_args, warm_paths, cached_path in stores:
            row, stdout, written = measure(
                row_id if not cluster else f"{row_id}/{name}", label, with_store(argv, store_args), limit, check, cleanup,
                args.runs, args.row_seconds, warm_paths(), cached_path,
                keep(artifacts[row_id], row_id, name) if cluster and row_id in artifacts else None)
            row["id"], row["store"] = row_id, name
            failures += row.pop("failures")
            results.append(row)
            outputs[name] = (stdout, written)
        if cluster:
            comparisons.append(compare_outputs(row_id, outputs["sqlite"], outputs["scale-out"]))
    clear_export()
    clear_report()

    if cluster:
        table = render_comparison(results, comparisons)
        print("\n".join(table))
        write_scale_out_results(args, db, history, store_summary, cluster, facts, results, comparisons, table, generate, task, at)
        os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
        with open(os.path.join(HERE, "out", "logq-scale-out-runs.json"), "w") as f:
            json.dump({"history": history, "store": store_summary, "facts": facts, "results": results,
                       "comparisons": comparisons}, f, indent=1)
        return 1 if failures else 0

    table = render(results, args.runs)
    summary = summary_line(results)
    print("\n".join(table))
    print(summary)
    write_results(args, db, history, facts, results, table, summary, generate, task, at)
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    with open(os.path.join(HERE, "out", "logq-runs.json"), "w") as f:
        json.dump({"history": history, "facts": facts, "results": results}, f, indent=1)
    return 1 if failures else 0


def load_scale_out(args, cluster, generator, history):
    """Starts the servers on the loaded history, or loads it: the generator's summary (None if
    loading failed). The history is the SQLite one's: same generator version and parameters."""
    # The same lines per commit as the SQLite store's transactions: a mark takes its event id
    # after the commit that holds its line, so the grouping decides the ids that follow.
    wanted = {key: history[key] for key in ["generator_version", "lines", "nodes", "changes", "marks", "hours", "seed", "chunk"]}
    summary = None if args.fresh else cluster.loaded(wanted)
    cluster.start(fresh=summary is None)
    if summary is not None:
        log(f"scale-out: reusing the history loaded into {cluster.servers} ({cluster.loaded_file}; --fresh reloads it)")
        summary["reused"] = True
    else:
        load = [generator, "--store", cluster.config, "--lines", str(args.lines), "--nodes", str(args.nodes),
                "--changes", str(args.changes), "--seed", str(args.seed), "--chunk", str(history["chunk"])] \
            + (["--hours", f"{args.hours:g}"] if args.hours != 24 else [])
        log("scale-out: loading " + " ".join(load))
        made = subprocess.run(load, stdout=subprocess.PIPE, text=True)
        if made.returncode != 0:
            log(f"scale-out: loading failed (exit {made.returncode})")
            return None
        summary = json.loads(made.stdout.strip().splitlines()[-1])
        summary["load_command"] = load
        for key, value in wanted.items():
            if summary.get(key) != value:
                log(f"scale-out: the loaded history's {key} is {summary.get(key)!r}, the SQLite one's {value!r}")
                return None
        with open(cluster.loaded_file, "w") as f:  # written last: the cluster holds the whole history
            json.dump(summary, f, indent=1)
        summary["reused"] = False
    cluster.wait_quiet()
    summary["bytes_on_disk"] = cluster.bytes_on_disk()
    return summary


def compare_outputs(row_id, sqlite, scale_out):
    """Whether the two stores' warm-up runs printed (and wrote) the same; both outputs kept in
    Benchmarks/out/logq-compare/ when they differ."""
    (out_a, written_a), (out_b, written_b) = sqlite, scale_out
    same_written = (written_a or {}).get("digest") == (written_b or {}).get("digest")
    if same_written:  # the copies are only for looking at a difference
        for written in (written_a, written_b):
            if written and os.path.isdir(written["copy"]):
                shutil.rmtree(written["copy"])
            elif written and os.path.exists(written["copy"]):
                os.unlink(written["copy"])
    result = {"id": row_id, "stdout_same": out_a == out_b, "written_same": same_written,
              "stdout_lines": [len(out_a.splitlines()), len(out_b.splitlines())]}
    if not result["stdout_same"]:
        import difflib
        folder = os.path.join(HERE, "out", "logq-compare")
        os.makedirs(folder, exist_ok=True)
        for name, text in [("sqlite", out_a), ("scale-out", out_b)]:
            with open(os.path.join(folder, f"{row_id}.{name}.txt"), "w") as f:
                f.write(text)
        diff = list(difflib.unified_diff(out_a.splitlines(), out_b.splitlines(), "sqlite", "scale-out", lineterm="", n=0))
        result["differing_lines"] = sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))
        result["diff_head"] = diff[:12]
    if not result["written_same"]:
        result["written"] = [written_a, written_b]
    same = result["stdout_same"] and result["written_same"]
    log(f"{row_id}: outputs {'the same' if same else 'DIFFER'} on both stores")
    return result


def comparison_text(comparison):
    if comparison["stdout_same"] and comparison["written_same"]:
        return "same"
    parts = []
    if not comparison["stdout_same"]:
        parts.append(f"stdout differs ({comparison['differing_lines']} lines of the diff; "
                     f"{comparison['stdout_lines'][0]} vs {comparison['stdout_lines'][1]} lines)")
    if not comparison["written_same"]:
        parts.append("the files written differ")
    return "**" + "; ".join(parts) + "**"


def render_comparison(results, comparisons):
    by = {(row["id"], row.get("store")): row for row in results}
    lines = ["| command | SQLite median | ClickHouse + etcd median | ratio | SQLite runs (min–max) | ClickHouse runs (min–max) "
             "| logq CPU, SQLite / ClickHouse | output on both stores |",
             "|---|---:|---:|---:|---|---|---|---|"]
    for comparison in comparisons:
        a, b = by[(comparison["id"], "sqlite")], by[(comparison["id"], "scale-out")]
        label = a["label"]
        lines.append(
            f"| `logq {label}` | **{ms(a['median'])}** | **{ms(b['median'])}** | {b['median'] / a['median']:.1f}× | "
            f"{len(a['runs'])} ({ms(a['min'])}–{ms(a['max'])}) | {len(b['runs'])} ({ms(b['min'])}–{ms(b['max'])}) | "
            f"{ms(a['cpu_median'])} / {ms(b['cpu_median'])} | {a['found']}{'' if a['output_ok'] else ' (UNEXPECTED)'}; "
            f"{b['found']}{'' if b['output_ok'] else ' (UNEXPECTED)'}; {comparison_text(comparison)} |")
    return lines


def write_scale_out_results(args, db, history, store, cluster, facts, results, comparisons, table, generate, task, at):
    commands = "\n".join(" ".join(row["argv"]).replace(facts["bin"] + "/", "") for row in results if row.get("available"))
    differing = [c["id"] for c in comparisons if not (c["stdout_same"] and c["written_same"])]
    diffs = ""
    for comparison in comparisons:
        if comparison.get("diff_head"):
            diffs += f"\n`{comparison['id']}` (first lines of `diff -U0`; both outputs in Benchmarks/out/logq-compare/):\n\n```\n"
            diffs += "\n".join(comparison["diff_head"]) + "\n```\n"
    load = " ".join(store.get("load_command", [])).replace(facts["bin"] + "/", "")
    text = f"""# logq on SQLite and on ClickHouse + etcd: a day of a 20-node cluster

`Benchmarks/logq_bench.py --scale-out --runs {args.runs}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.
The same history (same generator and seed) in the SQLite store (`--db`) and in the scale-out
store (`--store`: ClickHouse 2 shards × 2 replicas + ZooKeeper + etcd, all on this machine on
127.0.0.1). Each command runs on SQLite, then on ClickHouse + etcd: once as a warm-up (its
output is checked and compared between the stores) and {args.runs} more times (at least 3 once a
row's runs took {args.row_seconds:.0f} s) timed from spawn to exit, output to `/dev/null`. Before each
warm-up the store's files are read through (the SQLite file, or every ClickHouse and etcd data
file), so both start from a warm page cache. Medians of the timed runs; ratio = ClickHouse / SQLite.
logq CPU is the logq process's user + system time (median); the servers' CPU is not in it.

**Outputs: {"the same on both stores for every command" if not differing else "differ for " + ", ".join(differing)}.**

{chr(10).join(table)}
{diffs}
## The data

- SQLite: `{" ".join(generate).replace(facts["bin"] + "/", "")}`, {os.path.getsize(db) / 2**30:.2f} GiB
  ({"reused; " if history.get("reused") else ""}{history["stored_lines"]:,} lines, {history["membership_rows"]:,} membership changes, `{history["rare_word"]}` in {history["rare_word_lines"]} lines).
- ClickHouse + etcd: `{load or "(loaded by an earlier run)"}`
  ({"reused from an earlier run, loaded" if store.get("reused") else "loaded"} in {store["insert_seconds"]:.0f} s, {store["stored_lines"] / store["insert_seconds"]:,.0f} lines/s,
  {store["commits"]} commits of up to {store["chunk"]:,} lines; {store["stored_lines"]:,} lines, {store["membership_rows"]:,} membership
  changes, {store["config_rows"]:,} configs, {store["event_rows"]:,} stream events, {store["mark_rows"]} marks read back);
  {store["bytes_on_disk"] / 2**30:.2f} GiB of data files on the four ClickHouse servers (two copies of each line) and one etcd member,
  in {cluster.servers} (`scripts/scale-out-servers`, port base {args.port_base}).
- `export` and `report --mark` use {task}; `members --at` is task-5's time ({at}).

## The machine

{facts.get("nproc")} cores (`nproc`: {facts.get("nproc_cmd", "?")}), {facts.get("cpu", "?")}, {facts.get("memory", "?")} RAM, Linux {facts["kernel"]};
{facts["swift"]}; release build (`scripts/build-release`, in `.build-release`{", binaries from MUSTER_BIN" if facts["bin_given"] else ""}; logq built {facts["logq_mtime"]}),
commit {facts["commit"]}{" with uncommitted changes" if facts["dirty"] else ""}; Sources/ + Package.swift fingerprint
{facts["sources_before_build"]["sha256"]}; files differing from HEAD: {", ".join(facts["sources_before_build"]["changed"]) or "none"}.
The scale-out servers (four ClickHouse servers, ZooKeeper, etcd) stay up while the SQLite rows run,
and the machine is shared with other work; load average (1 min) before → after each store's runs: {", ".join(f"{row['id']}/{row['store']} {row['load_before'][0]:.1f}→{row['load_after'][0]:.1f}" for row in results if row.get("available"))}.

## Commands

```
{commands}
```
"""
    write_keeping_findings(args.results, text)


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
{facts["swift"]}; release build (`scripts/build-release`, in `.build-release`{", binaries from MUSTER_BIN" if facts["bin_given"] else ""}; logq built {facts["logq_mtime"]}),
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
    write_keeping_findings(args.results, text)


if __name__ == "__main__":
    sys.exit(main())
