#!/usr/bin/env python3
"""What an idle agent holds, with its idle memory release on (the default) and off, in the same run.

    python3 Benchmarks/agent_idle_memory.py [--bin-dir DIR] [--also-bin-dir DIR] [--lines 200000] [--reps 3]

Each run starts a release muster-collector and, for each variant, a muster-agent on an empty
file with /metrics on, and reads the agent's resident memory (VmRSS) at five moments:

  start    5 s after start, nothing read (the first release comes after a second of quiet)
  settled  60 s after start, still nothing read: what the idle loop mapped back since
  peak     the most it held while it shipped --lines HAProxy lines to the collector (VmRSS
           polled every 0.1 s and VmHWM read at the end of the work; VmHWM alone is not used,
           as the kernel does not update it when pages are released by madvise)
  work     2 s after the collector stored the last of them
  idle     35 s after that (a release comes after memory.release_when_idle_ms, 30 s by default;
           the run fails if the agent with the release on did not release, or the other did)

Variants: the agent of --bin-dir with its release on (the default) and off
(memory.release_when_idle_ms: 0), and with --also-bin-dir another build's agent with the
release on (an A/B of two builds). They alternate within each run; as root the page cache is dropped before each agent starts,
because how the binary's file entered the cache changes how much of it a process maps.
Prints the medians, in MiB. Binaries: --bin-dir, else built as installed (scripts/build-release).
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402

MOMENTS = ("start", "settled", "peak", "work", "idle")
TOKEN = "idle-memory-token"


def status_kib(pid, field):
    mib = clusterlib.status_mib(pid, field)
    if mib is None:
        raise SystemExit(f"no {field} for process {pid}")
    return round(mib * 1024)


def wait_until(condition, timeout, what, process):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what}: the process exited ({process.returncode})")
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what}: not within {timeout} s")


def drop_page_cache():
    if os.geteuid() == 0:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")


def collector_records(collector_url):
    """Records the collector has taken in: stored, or received again (each run's agent sends
    the same lines)."""
    samples = clusterlib.metric_samples(collector_url, timeout=2)
    return (clusterlib.first_sample(samples, "muster_ingest_records_accepted_total", 0)
            + clusterlib.first_sample(samples, "muster_ingest_records_duplicate_total", 0))


def one_agent(bin_dir, workdir, collector_url, lines, release_ms):
    """The moments (KiB) of one agent from `bin_dir` shipping `lines` (a bytes block of lines)."""
    state = tempfile.mkdtemp(dir=workdir)
    log = os.path.join(state, "app.log")
    open(log, "w").close()
    config = os.path.join(state, "agent.yaml")
    with open(config, "w") as out:
        out.write("{}\n" if release_ms is None else f"memory:\n  release_when_idle_ms: {release_ms}\n")
    port = clusterlib.free_port()
    drop_page_cache()
    with open(os.path.join(state, "agent.log"), "w") as output:
        agent = subprocess.Popen(
            [os.path.join(bin_dir, "muster-agent"), "--config", config, "--node", "bench", "--collector-url",
             collector_url, "--token", TOKEN, "--state-dir", os.path.join(state, "state"), "--file", f"app={log}",
             "--http-listen", f"127.0.0.1:{port}", "--log-level", "warning"],
            stdout=output, stderr=output)
    metrics = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: bool(clusterlib.metric_samples(metrics, timeout=2)), 60, "agent /metrics", agent)
        time.sleep(5)
        figures = {"start": status_kib(agent.pid, "VmRSS")}
        time.sleep(55)
        figures["settled"] = status_kib(agent.pid, "VmRSS")
        taken = collector_records(collector_url)
        with open(log, "ab") as out:
            out.write(lines)
        count = lines.count(b"\n")
        peak = 0

        def shipped():
            nonlocal peak
            peak = max(peak, status_kib(agent.pid, "VmRSS"))
            return collector_records(collector_url) - taken >= count
        wait_until(shipped, 600, "shipping", agent)
        figures["peak"] = max(peak, status_kib(agent.pid, "VmHWM"))
        time.sleep(2)
        figures["work"] = status_kib(agent.pid, "VmRSS")
        time.sleep(35)
        figures["idle"] = status_kib(agent.pid, "VmRSS")
        releases = clusterlib.first_sample(clusterlib.metric_samples(metrics), "muster_agent_memory_releases_total", 0)
        if not (releases >= 2 if release_ms is None else releases == 0):
            raise SystemExit(f"agent with memory.release_when_idle_ms {release_ms}: {releases:.0f} releases")
        return figures
    finally:
        clusterlib.stop_process(agent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", help="release muster-agent and muster-collector (default: scripts/build-release)")
    parser.add_argument("--also-bin-dir", help="another build's muster-agent, run with the release on beside the others")
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.lines < 1 or args.reps < 1:
        parser.error("--lines and --reps must be at least 1")
    args.bin_dir = args.bin_dir or clusterlib.release_bin_dir(["muster-agent", "muster-collector"])
    workdir = tempfile.mkdtemp(prefix="muster-idle-memory-")
    try:
        source = os.path.join(workdir, "source.log")
        subprocess.run([sys.executable, os.path.join(clusterlib.REPO, "Benchmarks", "gen_haproxy_log.py"), "--lines",
                        str(args.lines), "--seed", str(args.seed), "--out", source], check=True, stdout=subprocess.DEVNULL)
        with open(source, "rb") as inp:
            lines = inp.read()
        port_file = os.path.join(workdir, "collector.port")
        with open(os.path.join(workdir, "collector.log"), "w") as output:
            collector = subprocess.Popen(
                [os.path.join(args.bin_dir, "muster-collector"), "--database", os.path.join(workdir, "db.sqlite"),
                 "--host", "127.0.0.1", "--port", "0", "--port-file", port_file, "--token", TOKEN, "--log-level",
                 "warning"], stdout=output, stderr=output)
        try:
            wait_until(lambda: os.path.getsize(port_file) > 0, 60, "collector start", collector)
            with open(port_file) as port:
                url = "http://127.0.0.1:" + port.read().strip()
            variants = {"release on (default)": (args.bin_dir, None), "release off": (args.bin_dir, 0)}
            if args.also_bin_dir:
                variants[f"release on, {args.also_bin_dir}"] = (args.also_bin_dir, None)
            runs = {name: [] for name in variants}
            for rep in range(args.reps):
                for name, (bin_dir, release_ms) in variants.items():
                    figures = one_agent(bin_dir, workdir, url, lines, release_ms)
                    runs[name].append(figures)
                    print(f"run {rep + 1} {name}: " + ", ".join(f"{m} {figures[m] / 1024:.1f}" for m in MOMENTS) + " MiB",
                          file=sys.stderr)
        finally:
            clusterlib.stop_process(collector)
        cache = "the page cache dropped before each agent" if os.geteuid() == 0 else "the page cache not dropped (not root)"
        print(f"agent resident memory, MiB (medians of {args.reps}; {args.lines} lines shipped; {cache})\n")
        print("| | " + " | ".join(MOMENTS) + " |")
        print("|---|" + "---:|" * len(MOMENTS))
        for name, figures in runs.items():
            medians = [statistics.median(f[m] for f in figures) / 1024 for m in MOMENTS]
            print(f"| {name} | " + " | ".join(f"{value:.1f}" for value in medians) + " |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
