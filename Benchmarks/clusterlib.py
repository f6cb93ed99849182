"""What the cluster benchmarks share: images/cluster, release binaries, the event stream."""
import json, os, subprocess, sys, time, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(REPO, "images", "cluster")


def environment(name, subnet):
    return dict(os.environ, MUSTER_CLUSTER=name, MUSTER_CLUSTER_SUBNET=subnet,
                MUSTER_CLUSTER_STATE=f"/var/tmp/muster-bench-{name}", MUSTER_SERF_PROFILE="local",
                MUSTER_CLUSTER_PORTS="")


def cluster(env, *args, check=True):
    result = subprocess.run([CLUSTER, *args], env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"images/cluster {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def build(env, products=("muster-agent", "muster-collector", "demo-webapp", "logq")):
    """Release binaries in .build-release unless MUSTER_BIN names others."""
    if "MUSTER_BIN" in env:
        return
    scratch = os.path.join(REPO, ".build-release")
    for product in products:
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", scratch, "--product", product],
                       cwd=REPO, check=True, stdout=sys.stderr)
    env["MUSTER_BIN"] = subprocess.run(["swift", "build", "-c", "release", "--scratch-path", scratch, "--show-bin-path"],
                                       cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def collector(env):
    settings = dict(line.split("=", 1) for line in cluster(env, "env").split() if "=" in line)
    return settings["MUSTER_COLLECTOR_URL"], open(settings["MUSTER_TOKEN_FILE"]).read().strip()


# The collector sends a keepalive every 15 s; a stream silent for longer than this is dead
# (a network path that stopped delivering without closing the connection) and is reopened.
STREAM_SILENCE_S = 25


def sse_events(stream):
    """The events of a `GET /v1/events` answer as they arrive: (id, kind, data) for each
    (id None, kind None when the event has no such line); keepalive comments are skipped."""
    event_id, kind, data = None, None, None
    for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data is not None:
            yield event_id, kind, data
            event_id, kind, data = None, None, None


def latest_event_id(url, token, kind="membership"):
    request = urllib.request.Request(f"{url}/v1/events?kind={kind}&since=0&follow=false",
                                     headers={"Authorization": f"Bearer {token}"})
    last = 0
    with urllib.request.urlopen(request, timeout=STREAM_SILENCE_S) as stream:
        for event_id, _, _ in sse_events(stream):
            last = event_id or last
    return last


def consume(url, token, events, kind="membership", ready=None):
    """Reads the SSE stream from now on, reconnecting from the last id like any client would;
    puts (arrival ns, event body) on the queue. Sets `ready` (a threading.Event) once "now" is
    fixed: a change made before that may be taken for history and not delivered."""
    last = latest_event_id(url, token, kind)
    if ready is not None:
        ready.set()
    while True:
        request = urllib.request.Request(f"{url}/v1/events?kind={kind}&since={last}",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=STREAM_SILENCE_S) as stream:
                for event_id, _, data in sse_events(stream):
                    events.put((time.time_ns(), json.loads(data)))
                    last = event_id or last
        except Exception as error:
            print(f"event stream: {error!r}; reconnecting from {last}", file=sys.stderr)
            time.sleep(0.5)


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


SCALE_OUT_SERVERS = os.path.join(REPO, "scripts", "scale-out-servers")


def start_scale_out_servers(directory, port_base, database):
    """Starts scripts/scale-out-servers in `directory` (loopback, `port_base`); returns the
    KEY=VALUE lines it prints, as a dict, and a collector's `store:` section for `database`."""
    started = subprocess.run([SCALE_OUT_SERVERS, "start", directory, "--port-base", str(port_base)],
                             capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        raise RuntimeError(f"scale-out-servers start failed: {started.stderr[-3000:]}")
    env = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    shards = [env[name].replace(",", " ").split() for name in ("MUSTER_CH_SHARD1", "MUSTER_CH_SHARD2")]
    store = (f"store:\n  clickhouse:\n    cluster: {env['MUSTER_CH_CLUSTER']}\n    database: {database}\n"
             f"    shards:\n" + "".join(f"      - [{', '.join(shard)}]\n" for shard in shards)
             + f"  etcd:\n    endpoints: [{env['MUSTER_ETCD_URL']}]\n")
    return env, store
