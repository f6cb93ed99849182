#!/usr/bin/env python3
"""Scale events under load: does HAProxy follow the cluster without failed requests, and how fast?

Runs images/cluster (release binaries, real HAProxy 2.6, Serf, collector and agents in network
namespaces). Two clients send requests through ha:80 for the whole run (one keep-alive, one
new connection per request; Python's stdlib, so every request's start and end are known and a
failure can be attributed to the event it overlapped). Meanwhile EVENTS scale events cycle
through: s3 joins, s4 joins, s3 leaves gracefully (images/cluster stop), s4 is killed.

For each event: the time from the Serf event (the handler's call on the first observer, the
membership event's `t`) to HAProxy routing the change (a poller inside the ha namespace reading
`show servers state nodes` every 20 ms). Failed requests are counted per kind; for kills, a
failure is expected only for a request already in flight to the killed node, i.e. one that
started before the kill and failed before HAProxy took the server out.

  sudo Benchmarks/lb_scale.py                 # EVENTS=50, release build, ~5 min
  EVENTS=8 MUSTER_BIN=.build/debug Benchmarks/lb_scale.py

On the scale-out store (MUSTER_CLUSTER_STORE=scale-out: three collectors over ClickHouse and
etcd, see docs/scale-out.md) COLLECTOR_KILLS=N also kills one collector process after another
with SIGKILL, N times spread over the run (s6 restarts it), so HAProxy must keep following
while the LB controller's stream moves between collectors. REPLICA_KILLS=N kills one
ClickHouse server after another (ch1..ch4 in turn, SIGKILL, `scripts/scale-out-servers
kill-one`), N times spread over the run, each started again REPLICA_DOWN_S seconds later
(default 20): each shard keeps one replica, so lines and events must go on. CONSENSUS_KILLS=N
does the same to the consensus servers, the etcd leader and the ZooKeeper leader in turn (each
an ensemble of three: the other two elect a new leader and go on). COLLECTOR_STOPS=N stops a
collector with SIGSTOP for COLLECTOR_STOP_S seconds (default 30), then SIGCONT, N times.
"""
import json, os, queue, signal, subprocess, sys, threading, time, urllib.request, http.client, statistics

import clusterlib

EVENTS = int(os.environ.get("EVENTS", "50"))
LIMIT_MS = float(os.environ.get("LIMIT_MS", "1500"))
COLLECTOR_KILLS = int(os.environ.get("COLLECTOR_KILLS", "0"))
REPLICA_KILLS = int(os.environ.get("REPLICA_KILLS", "0"))
CONSENSUS_KILLS = int(os.environ.get("CONSENSUS_KILLS", "0"))
COLLECTOR_STOPS = int(os.environ.get("COLLECTOR_STOPS", "0"))
COLLECTOR_STOP_S = float(os.environ.get("COLLECTOR_STOP_S", "30"))
REPLICA_DOWN_S = float(os.environ.get("REPLICA_DOWN_S", "20"))
ENV = clusterlib.environment("lbench", "10.82.0")
HA = "10.82.0.3"

POLLER = r'''
import socket, sys, time
path = sys.argv[1]
last = None
while True:
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); s.sendall(b"show servers state nodes\n"); s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            d = s.recv(65536)
            if not d: break
            data += d
        s.close()
        names = sorted(l.split()[3] for l in data.decode().splitlines()[2:] if len(l.split()) > 6 and l.split()[6] == "0")
        if names != last:
            print(time.time_ns(), ",".join(names), flush=True); last = names
    except Exception:
        pass
    time.sleep(0.02)
'''


class Killer:
    """Kills one target after another in a thread, `count` times, `every` seconds from one kill
    to the next: `kill(n)` kills the n-th (0-based) and returns its name and what else to log,
    or None when there was nothing to kill; `after(name)` runs once it is dead (restarting it,
    when that is ours to do)."""

    def __init__(self, what, count, every):
        self.what, self.count, self.every = what, count, every
        self.kills, self.running = [], True
        # How long `finish` waits for a kill in progress (its restart); 0: not at all.
        self.grace = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def pause(self):
        return self.every

    def after(self, name):
        pass

    def finish(self):
        """No more kills; waits up to `grace` s for one in progress to finish its `after`."""
        self.running = False
        if self.grace:
            self.thread.join(timeout=self.grace)

    def run(self):
        while self.running and len(self.kills) < self.count:
            time.sleep(self.pause())
            if not self.running:
                return
            killed = self.kill(len(self.kills))
            if killed is None:
                continue
            name, detail = killed
            self.kills.append((time.time_ns(), name))
            print(f"{self.what} kill {len(self.kills)}/{self.count}: {name}{detail}", file=sys.stderr)
            self.after(name)


class CollectorKiller(Killer):
    """Kills the collector process of each collector node in turn (SIGKILL, by the PID its s6
    service reports); s6 starts it again."""

    def __init__(self, state, count, every):
        super().__init__("collector", count, every)
        self.state = state
        nodes = sorted(os.listdir(f"{state}/nodes"))
        self.nodes = [node for node in nodes if open(f"{state}/nodes/{node}/role").read().strip() == "collector"]

    def pid(self, node):
        service = f"{self.state}/nodes/{node}/service/muster-collector"
        status = subprocess.run(["s6-svstat", "-o", "pid", service], capture_output=True, text=True)
        pid = int(status.stdout.strip() or "-1") if status.returncode == 0 else -1
        if pid <= 0:
            print(f"{self.what}: no running collector on {node} ({status.stdout.strip()}{status.stderr.strip()})", file=sys.stderr)
        return pid

    def kill(self, n):
        node = self.nodes[n % len(self.nodes)]
        pid = self.pid(node)
        if pid <= 0:
            return None
        os.kill(pid, 9)
        return node, f" pid {pid}"


class CollectorStopper(CollectorKiller):
    """Stops one collector after another with SIGSTOP for `stopped` seconds, then SIGCONT."""

    def __init__(self, state, count, every, stopped):
        super().__init__(state, count, every)
        self.what, self.stopped, self.frozen = "collector stop", stopped, None
        self.grace = stopped + 60

    def pause(self):
        return max(1, self.every - self.stopped)

    def kill(self, n):
        node = self.nodes[(n + 1) % len(self.nodes)]
        pid = self.pid(node)
        if pid <= 0:
            return None
        os.kill(pid, signal.SIGSTOP)
        self.frozen = pid
        return node, f" pid {pid}"

    def after(self, name):
        time.sleep(self.stopped)
        self.thaw()

    def finish(self):
        super().finish()
        self.thaw()

    def thaw(self):
        if self.frozen is not None:
            try:
                os.kill(self.frozen, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.frozen = None


class ReplicaKiller(Killer):
    """Kills one ClickHouse server of the lab's scale-out store after another (SIGKILL) and
    starts each again `down` seconds later."""

    def __init__(self, state, count, every, down, what="replica"):
        super().__init__(what, count, every)
        self.servers, self.down = f"{state}/scale-out", down
        self.grace = down + 150

    def servers_script(self, *args):
        return subprocess.run([os.path.join(clusterlib.REPO, "scripts", "scale-out-servers"), *args],
                              capture_output=True, text=True)

    def pause(self):
        return max(1, self.every - self.down)

    def victim(self, n):
        return clusterlib.CLICKHOUSES[n % len(clusterlib.CLICKHOUSES)]

    def kill(self, n):
        name = self.victim(n)
        if name is None:
            print(f"{self.what} kill: no server to kill", file=sys.stderr)
            return None
        killed = self.servers_script("kill-one", self.servers, name, "KILL")
        if killed.returncode != 0:
            print(f"{self.what} kill: {name}: {killed.stdout}{killed.stderr}", file=sys.stderr)
            return None
        return name, ""

    def after(self, name):
        time.sleep(self.down)
        started = self.servers_script("start-one", self.servers, name)
        if started.returncode != 0:
            print(f"{self.what} start: {name}: {started.stdout}{started.stderr}", file=sys.stderr)


class ConsensusKiller(ReplicaKiller):
    """The same for the etcd leader and the ZooKeeper leader, in turn."""

    def __init__(self, state, count, every, down):
        super().__init__(state, count, every, down, what="consensus")

    def victim(self, n):
        env = clusterlib.scale_out_env(self.servers)
        return (clusterlib.etcd_leader if n % 2 == 0 else clusterlib.zookeeper_leader)(env)


class Load:
    """Requests through :80 until stopped; keeps (start ns, end ns, error or None)."""

    def __init__(self, keep_alive):
        self.keep_alive, self.records, self.running = keep_alive, [], True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        connection = None
        while self.running:
            start = time.time_ns()
            try:
                if connection is None or not self.keep_alive:
                    connection = http.client.HTTPConnection(HA, 80, timeout=10)
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
                if response.getheader("Connection", "").lower() == "close" or not self.keep_alive:
                    connection.close(); connection = None
                self.records.append((start, time.time_ns(), None))
            except Exception as error:
                self.records.append((start, time.time_ns(), str(error)[:80]))
                if connection is not None:
                    connection.close()
                connection = None


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    clusterlib.build(ENV)
    cluster = lambda *args, check=True: clusterlib.cluster(ENV, *args, check=check)
    cluster("down", check=False)
    state = ENV["MUSTER_CLUSTER_STATE"]
    try:
        cluster("up")
        for node in ["s1", "s2"]:
            cluster("add", node)
        url, token = clusterlib.collector(ENV)
        routes = queue.Queue()
        poller = subprocess.Popen([clusterlib.CLUSTER, "exec", "ha", "python3", "-c", POLLER, f"{state}/nodes/ha/haproxy/admin.sock"],
                                  env=ENV, stdout=subprocess.PIPE, text=True)
        def read_routes():
            for line in poller.stdout:
                stamp, _, names = line.strip().partition(" ")
                routes.put((int(stamp), set(names.split(",")) - {""}))
        threading.Thread(target=read_routes, daemon=True).start()
        current = set()
        deadline = time.time() + 60
        while current != {"s1", "s2"} and time.time() < deadline:
            try:
                current = routes.get(timeout=1)[1]
            except queue.Empty:
                pass
        if current != {"s1", "s2"}:
            sys.exit(f"HAProxy never routed to s1 and s2 (has {current})")
        events, consuming = queue.Queue(), threading.Event()
        threading.Thread(target=clusterlib.consume, args=(url, token, events, "membership", consuming), daemon=True).start()
        # The consumer starts after the last event it finds; a join made before it looked would be skipped.
        if not consuming.wait(timeout=30):
            sys.exit("the event stream consumer did not start within 30s")
        loads = [Load(True), Load(False)]
        for load in loads:
            load.thread.start()
        # Spread over the run (an event takes ~6 s); a kill that is restarted later by us is
        # spaced so that it is back before the next.
        spread = lambda count, least: max(EVENTS * 6 / (count + 1), least)
        killer = CollectorKiller(state, COLLECTOR_KILLS, every=spread(COLLECTOR_KILLS, 5)) if COLLECTOR_KILLS else None
        replica_killer = (ReplicaKiller(state, REPLICA_KILLS, every=spread(REPLICA_KILLS, REPLICA_DOWN_S + 5), down=REPLICA_DOWN_S)
                          if REPLICA_KILLS else None)
        stopper = (CollectorStopper(state, COLLECTOR_STOPS, every=spread(COLLECTOR_STOPS, COLLECTOR_STOP_S + 5), stopped=COLLECTOR_STOP_S)
                   if COLLECTOR_STOPS else None)
        consensus_killer = (ConsensusKiller(state, CONSENSUS_KILLS, every=spread(CONSENSUS_KILLS, REPLICA_DOWN_S + 5), down=REPLICA_DOWN_S)
                            if CONSENSUS_KILLS else None)
        disruptors = [d for d in (killer, replica_killer, stopper, consensus_killer) if d]
        for disruptor in disruptors:
            disruptor.thread.start()
        time.sleep(2)

        def wait_event(member, change, timeout=60):
            end = time.time() + timeout
            while time.time() < end:
                try:
                    _, body = events.get(timeout=1)
                except queue.Empty:
                    continue
                if body["member"] == member and body["change"] == change:
                    return body["t"]
            sys.exit(f"no '{member} {change}' event within {timeout}s")

        def wait_route(predicate, timeout=60):
            nonlocal current
            end = time.time() + timeout
            while not predicate(current) and time.time() < end:
                try:
                    stamp, current = routes.get(timeout=1)
                    if predicate(current):
                        return stamp
                except queue.Empty:
                    pass
            if predicate(current):
                return time.time_ns()
            sys.exit(f"HAProxy did not follow (servers {current})")

        plan = [("join", "s3"), ("join", "s4"), ("leave", "s3"), ("kill", "s4")]
        results = []  # (kind, node, action ns, serf event ns, routed ns)
        for index in range(EVENTS):
            kind, node = plan[index % len(plan)]
            acted = time.time_ns()
            if kind == "join":
                cluster("add", node)
                serf_t = wait_event(node, "joined")
                routed = wait_route(lambda servers: node in servers)
            elif kind == "leave":
                cluster("stop", node)
                serf_t = wait_event(node, "left")
                routed = wait_route(lambda servers: node not in servers)
            else:
                cluster("kill", node)
                serf_t = wait_event(node, "failed")
                routed = wait_route(lambda servers: node not in servers)
            results.append((kind, node, acted, serf_t, routed))
            print(f"{index + 1}/{EVENTS} {kind} {node}: serf event -> routed {(routed - serf_t) / 1e6:.0f} ms"
                  f" (action -> routed {(routed - acted) / 1e6:.0f} ms)", file=sys.stderr)
            time.sleep(1)
        for load in loads:
            load.running = False
        for load in loads:
            load.thread.join(timeout=15)
        # A server down now is started again (a collector stopped now is continued) before the
        # cluster goes.
        for disruptor in disruptors:
            disruptor.finish()
        poller.kill()
    finally:
        # The state (every node's logs) stays for a look; the next run's `down` removes it.
        cluster("down", "--keep-state", check=False)

    records = [record for load in loads for record in load.records]
    failures = [record for record in records if record[2] is not None]
    # A failure belongs to the event whose window [action, routed] it overlaps.
    by_kind = {"join": 0, "leave": 0, "kill": 0, "none": 0}
    kill_in_flight = 0
    for start, end, error in failures:
        owner = next((r for r in results if r[2] - 1_000_000_000 <= end <= r[4] + 500_000_000), None)
        kind = owner[0] if owner else "none"
        by_kind[kind] += 1
        if kind == "kill" and start <= owner[4]:
            kill_in_flight += 1
    store = os.environ.get("MUSTER_CLUSTER_STORE", "sqlite")
    print(f"\nHAProxy following {EVENTS} scale events under load ({len(records):,} requests, store {store}, "
          f"binaries {ENV['MUSTER_BIN']})\n")
    print("| event | count | Serf event → routed p50 | p99 | max | limit (p99) | failed requests |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for kind in ["join", "leave", "kill"]:
        latencies = [(r[4] - r[3]) / 1e6 for r in results if r[0] == kind]
        if not latencies:
            continue
        limit = "" if kind == "kill" else f"{LIMIT_MS:.0f} ms {'✅' if clusterlib.percentile(latencies, 0.99) <= LIMIT_MS else '❌'}"
        print(f"| {kind} | {len(latencies)} | {statistics.median(latencies):.0f} ms | {clusterlib.percentile(latencies, 0.99):.0f} ms"
              f" | {max(latencies):.0f} ms | {limit} | {by_kind[kind]} |")
    if killer:
        print(f"\ncollectors killed (SIGKILL, restarted by s6) during the run: {len(killer.kills)} of {COLLECTOR_KILLS} asked: "
              + ", ".join(node for _, node in killer.kills))
        if len(killer.kills) < COLLECTOR_KILLS:
            print(f"warning: only {len(killer.kills)} of the {COLLECTOR_KILLS} collector kills happened", file=sys.stderr)
    if replica_killer:
        print(f"\nClickHouse servers killed (SIGKILL, started again {REPLICA_DOWN_S:.0f} s later) during the run: "
              f"{len(replica_killer.kills)} of {REPLICA_KILLS} asked: " + ", ".join(name for _, name in replica_killer.kills))
    if stopper:
        print(f"\ncollectors stopped (SIGSTOP for {COLLECTOR_STOP_S:.0f} s, then SIGCONT) during the run: "
              f"{len(stopper.kills)} of {COLLECTOR_STOPS} asked: " + ", ".join(node for _, node in stopper.kills))
    if consensus_killer:
        print(f"\netcd and ZooKeeper leaders killed (SIGKILL, started again {REPLICA_DOWN_S:.0f} s later) during the run: "
              f"{len(consensus_killer.kills)} of {CONSENSUS_KILLS} asked: " + ", ".join(name for _, name in consensus_killer.kills))
    print(f"\nfailed requests: {len(failures)} of {len(records):,}; outside any event: {by_kind['none']};"
          f" during kills: {by_kind['kill']} (in flight to the killed node before HAProxy took it out: {kill_in_flight})")
    for start, end, error in failures[:10]:
        print(f"  {error}", file=sys.stderr)


if __name__ == "__main__":
    main()
