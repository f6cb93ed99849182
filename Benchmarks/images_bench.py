#!/usr/bin/env python3
"""The images: their sizes, and how long each role's container takes to be ready.

    images/build && sudo python3 Benchmarks/images_bench.py            # 5 repetitions
    sudo python3 Benchmarks/images_bench.py --reps 3 --out /tmp/images.md

Needs the images images/build makes (podman). Measures, one container at a time:

  size      each image's size as the engine reports it, the Debian image they start from,
            and in muster/base the binaries and the Swift runtime libraries (du)
  base      `run --rm --entrypoint /bin/true muster/base`: the engine's own cost to start a
            container and remove it (no Muster process runs)
  collector from just before `run -d` until GET /healthz answers 200 on its address
  ha        with a collector running: until HAProxy's stats page answers on :1936 (muster-init,
            s6, Serf, the agent, the LB controller's first validated configuration, HAProxy)
  webapp    with both running: until demo-webapp answers on :80 and HAProxy's stats page
            shows the node UP
  stop      `stop` of a web node: s6 stops its services, Serf leaves; until the engine returns

Every container runs on a network of its own (10.78.250.0/24, loopback-reachable from this
machine only) and is removed by name at the end, also on failure or ^C. The medians and every
run go to Benchmarks/results/images.md (or --out).
"""

import argparse
import datetime
import os
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBNET = "10.78.250"
NETWORK = "muster-imgbench"
PREFIX = "imgbench-"
IMAGES = ["base", "collector", "ha", "webapp"]


# images/build's engine settings unless the caller has their own.
ENVIRONMENT = {"CONTAINERS_CONF": os.path.join(REPO, "images", "containers.conf"), **os.environ}


def engine(*arguments, check=True):
    result = subprocess.run(["podman", *arguments], capture_output=True, text=True, env=ENVIRONMENT)
    if check and result.returncode != 0:
        sys.exit(f"images_bench: podman {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except Exception:
        return False


def wait(what, check, limit=120.0):
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            sys.exit(f"images_bench: waited {limit:.0f} s for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def run_node(name, role_image, address, token, extra=()):
    engine("run", "-d", "--name", PREFIX + name, "--hostname", name, "--network", NETWORK,
           "--ip", address, "--network-alias", name, "--env", f"MUSTER_TOKEN={token}",
           "--env", "MUSTER_SERF_PROFILE=local", *extra, f"localhost/muster/{role_image}:latest")


def remove(*names):
    for name in names:
        engine("rm", "-f", "-t", "0", PREFIX + name, check=False)


def web_up(name):
    def check():
        try:
            with urllib.request.urlopen(f"http://{SUBNET}.3:1936/;csv", timeout=2) as response:
                rows = [line.split(",") for line in response.read().decode().splitlines()]
        except Exception:
            return False
        return any(len(row) > 17 and row[0] == "nodes" and row[1] == name and row[17].startswith("UP") for row in rows)
    return check


def image_size(reference):
    return int(engine("image", "inspect", "--format", "{{.Size}}", reference))


def sizes():
    """(what, bytes) rows: the Debian base, each image, and what muster/base adds to Debian."""
    rows = []
    # images/build's own (debootstrapped) one first: a short name would resolve to it too.
    for debian in ["localhost/debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"]:
        if subprocess.run(["podman", "image", "exists", debian], env=ENVIRONMENT).returncode == 0:
            rows.append((f"{debian} (the base the images start from)", image_size(debian)))
            break
    base = image_size("localhost/muster/base:latest")
    rows.append(("muster/base", base))
    usage = engine("run", "--rm", "--entrypoint", "du", "localhost/muster/base:latest", "-sb",
                   "/usr/local/bin", "/usr/local/lib")
    for line in usage.splitlines():
        size, path = line.split("\t")
        what = "binaries" if path.endswith("bin") else "Swift runtime libraries"
        rows.append((f"  of which {what} ({path})", int(size)))
    for role in IMAGES[1:]:
        size = image_size(f"localhost/muster/{role}:latest")
        rows.append((f"muster/{role} (adds {(size - base) / 1024:.0f} KiB to muster/base)", size))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(REPO, "Benchmarks", "results", "images.md"))
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("images_bench: run as root (podman networks with fixed addresses)")
    for image in IMAGES:
        reference = f"localhost/muster/{image}:latest"
        if subprocess.run(["podman", "image", "exists", reference], env=ENVIRONMENT).returncode != 0:
            sys.exit(f"images_bench: no localhost/muster/{image}:latest: run images/build first")

    token = secrets.token_hex(16)
    engine("network", "rm", "-f", NETWORK, check=False)
    engine("network", "create", "--subnet", f"{SUBNET}.0/24", "--gateway", f"{SUBNET}.1", NETWORK)
    times = {key: [] for key in ["base", "collector", "ha", "webapp", "stop"]}
    try:
        for rep in range(arguments.reps):
            remove("collector", "ha", "w1")
            start = time.monotonic()
            engine("run", "--rm", "--network", NETWORK, "--entrypoint", "/bin/true", "localhost/muster/base:latest")
            times["base"].append(time.monotonic() - start)

            start = time.monotonic()
            run_node("collector", "collector", f"{SUBNET}.2", token)
            wait("the collector's /healthz", lambda: answers(f"http://{SUBNET}.2:8088/healthz"))
            times["collector"].append(time.monotonic() - start)

            start = time.monotonic()
            run_node("ha", "ha", f"{SUBNET}.3", token)
            wait("HAProxy's stats page", lambda: answers(f"http://{SUBNET}.3:1936/;csv"))
            times["ha"].append(time.monotonic() - start)

            start = time.monotonic()
            run_node("w1", "webapp", f"{SUBNET}.10", token, ["--env", "MUSTER_SERF_JOIN=ha"])
            wait("demo-webapp on :80", lambda: answers(f"http://{SUBNET}.10/"))
            wait("w1 UP on HAProxy's stats page", web_up("w1"))
            times["webapp"].append(time.monotonic() - start)

            start = time.monotonic()
            engine("stop", PREFIX + "w1")
            times["stop"].append(time.monotonic() - start)
            print(f"run {rep + 1}: " + ", ".join(f"{key} {values[-1]:.2f} s" for key, values in times.items()), flush=True)
    finally:
        remove("collector", "ha", "w1")
        engine("network", "rm", "-f", NETWORK, check=False)

    size_rows = sizes()
    mib = 1024 * 1024
    lines = [
        "# Images: sizes and start times",
        "",
        f"`sudo python3 Benchmarks/images_bench.py --reps {arguments.reps}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, podman "
        f"{engine('version', '--format', '{{.Client.Version}}')}, "
        f"commit {subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}.",
        "",
        "| image | size |",
        "|---|---:|",
    ]
    for what, size in size_rows:
        lines.append(f"| {what} | {size / mib:.1f} MiB |")
    lines += ["", f"| ready | median of {arguments.reps} | runs |", "|---|---:|---|"]
    labels = {
        "base": "base: run --rm /bin/true (the engine alone)",
        "collector": "collector: run → /healthz answers",
        "ha": "ha: run → HAProxy's stats page answers",
        "webapp": "webapp: run → serves :80 and UP in HAProxy",
        "stop": "webapp: stop (graceful Serf leave) → returns",
    }
    for key, values in times.items():
        lines.append(f"| {labels[key]} | {statistics.median(values):.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    text = "\n".join(lines) + "\n"
    with open(arguments.out, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
