"""What the cluster benchmarks share: images/cluster, release binaries, the event stream."""
import json, os, socket, subprocess, sys, time, urllib.error, urllib.request, zlib

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
    """Release binaries as installed (scripts/build-release, in .build-release) unless MUSTER_BIN
    names others."""
    if "MUSTER_BIN" in env:
        return
    env["MUSTER_BIN"] = release_bin_dir(products)


def metric_samples(url, timeout=10):
    """`url`'s /metrics as {sample name with its labels: value}; raises OSError while it does not
    answer."""
    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                samples[name] = float(value)
            except ValueError:
                pass
    return samples


def first_sample(samples, metric, default=None):
    """The value of `metric`'s first sample, whatever its labels."""
    return next((value for name, value in samples.items() if name.split("{", 1)[0] == metric), default)


def status_mib(pid, field="VmRSS"):
    """A memory field of /proc/PID/status in MiB (`VmRSS`, `VmHWM`, `RssAnon`, ...); None once
    the process is gone or when it has no such field."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def free_port():
    """A loopback TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def release_bin_dir(products):
    """Builds `products` as installed (scripts/build-release, in .build-release); their folder."""
    return subprocess.run([os.path.join(REPO, "scripts", "build-release"), *products],
                          cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


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
# The servers the script starts, by the names its kill-one/start-one and pid files use.
ZOOKEEPERS = ["zk1", "zk2", "zk3"]
ETCD_MEMBERS = ["etcd1", "etcd2", "etcd3"]
CLICKHOUSES = ["ch1", "ch2", "ch3", "ch4"]


def scale_out_env(directory):
    """The KEY=VALUE lines scripts/scale-out-servers wrote to `directory`/env, as a dict."""
    with open(os.path.join(directory, "env")) as lines:
        return dict(line.strip().split("=", 1) for line in lines if "=" in line)


def etcd_leader(env):
    """The name (etcd1-etcd3) of the etcd member that leads now, from its maintenance status;
    None while no member answers with a leader."""
    for name, url in zip(ETCD_MEMBERS, env["MUSTER_ETCD_URLS"].split(",")):
        try:
            request = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=5) as answer:
                status = json.load(answer)
        except (OSError, ValueError):
            continue
        if status.get("leader") and str(status.get("leader")) == str(status.get("header", {}).get("member_id")):
            return name
    return None


def zookeeper_leader(env):
    """The name (zk1-zk3) of the ZooKeeper member that leads now (its `srvr` says so); None
    while none does."""
    for name, address in zip(ZOOKEEPERS, env["MUSTER_ZK"].split(",")):
        host, port = address.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(b"srvr")
                answer = b""
                while chunk := connection.recv(4096):
                    answer += chunk
        except OSError:
            continue
        if b"Mode: leader" in answer:
            return name
    return None


def start_collector(bin_dir, directory, name, port, token, store):
    """A muster-collector from `bin_dir` on 127.0.0.1:`port` with `store` (a `store:` section)
    and one token, its config and log as `directory`/NAME.yaml and NAME.log; returns the
    process once /healthz answers (within 120 s, else SystemExit naming the log)."""
    config = os.path.join(directory, f"{name}.yaml")
    with open(config, "w") as out:
        out.write(f"listen:\n  host: 127.0.0.1\n  port: {port}\ntokens: [{token}]\n{store}")
    log = os.path.join(directory, f"{name}.log")
    with open(log, "w") as output:
        process = subprocess.Popen([os.path.join(bin_dir, "muster-collector"), "--config", config], stdout=output, stderr=output)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    stop_process(process)
    raise SystemExit(f"collector {name} did not answer within 120 s; see {log}")


def stop_process(process, grace=30):
    """SIGTERM, then SIGKILL after `grace` seconds; waits for the process either way."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def scale_out_store_section(env, database):
    """A collector's `store:` section for `database` on the servers whose env file is `env`."""
    shards = [env[f"MUSTER_CH_SHARD{i}"].split(",") for i in range(1, int(env["MUSTER_CH_SHARDS"]) + 1)]
    return (f"store:\n  clickhouse:\n    cluster: {env['MUSTER_CH_CLUSTER']}\n    database: {database}\n"
            f"    shards:\n" + "".join(f"      - [{', '.join(shard)}]\n" for shard in shards)
            + f"  etcd:\n    endpoints: [{', '.join(env['MUSTER_ETCD_URLS'].split(','))}]\n")


def start_scale_out_servers(directory, port_base, database):
    """Starts scripts/scale-out-servers in `directory` (loopback, `port_base`); returns the
    KEY=VALUE lines it prints, as a dict, and a collector's `store:` section for `database`."""
    started = subprocess.run([SCALE_OUT_SERVERS, "start", directory, "--port-base", str(port_base)],
                             capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        raise RuntimeError(f"scale-out-servers start failed: {started.stderr[-3000:]}")
    env = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    return env, scale_out_store_section(env, database)


def post_batch(url, body, token="t", timeout=60):
    """POSTs a zlib-compressed NDJSON batch to the collector at `url`; returns the HTTP status,
    or the connection error's text."""
    request = urllib.request.Request(url + "/v1/ingest", data=body,
                                     headers={"Authorization": f"Bearer {token}", "Content-Encoding": "deflate"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return str(error)


def process_cpu_seconds(pid):
    """utime + stime of a running process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(directory, name):
    """The PID scripts/scale-out-servers wrote for server `name` (ch1, zk1, etcd1, ...) in `directory`."""
    with open(os.path.join(directory, f"{name}.pid")) as handle:
        return int(handle.read().strip())


def clickhouse_query(url, sql, timeout=600):
    """`sql` run on the ClickHouse server at `url` (its HTTP interface); its answer as text."""
    request = urllib.request.Request(url + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def ndjson_batch(agent, offset, lines, message):
    """A zlib-compressed batch of `lines` lines of `agent`'s file `app` (node `agent`,
    generation `g`) from `offset`: the first row names the stream, the others carry only their
    offset and `message(offset, n)`, n counting from 0 in the batch."""
    first = {"agent": agent, "node": agent, "src": "app", "gen": "g", "t": time.time_ns(), "off": offset,
             "msg": message(offset, 0)}
    rows = [json.dumps(first)] + [json.dumps({"off": offset + n, "msg": message(offset + n, n)}) for n in range(1, lines)]
    return zlib.compress(("\n".join(rows) + "\n").encode())
