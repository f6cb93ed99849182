#!/usr/bin/env python3
"""Every 20 s, the CPU seconds each group of processes (by command name) used in the 20 s, from
/proc/PID/stat, until stopped; beside a benchmark, to see where a machine's CPU goes:

    python3 Benchmarks/cpu_by_process.py > cpu.log &   # then run the benchmark; kill it by its PID after

A process that exits within an interval takes its CPU with it (the sum can dip).
"""
import os, sys, time, collections

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ["clickhouse-server", "java", "etcd", "muster-collector", "muster-agent", "haproxy", "serf", "demo-webapp",
          "python3", "muster-lb", "s6-svscan", "logq"]


def sample():
    usage = collections.Counter()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        group = next((g for g in GROUPS if name.startswith(g[:15])), "other")
        usage[group] += cpu
    return usage


last = sample()
start = time.time()
while True:
    time.sleep(20)
    now = sample()
    diff = {g: now[g] - last.get(g, 0) for g in now}
    line = " ".join(f"{g}={v:.1f}" for g, v in sorted(diff.items(), key=lambda x: -x[1]) if v > 0.2)
    print(f"{time.time() - start:6.0f}s {line}", flush=True)
    last = now
