#!/usr/bin/env python3
"""Hostile input against the real binaries: does anything crash, is anything lost?

Starts a collector and an agent (a file source and a UDP syslog source) on loopback in a
temporary directory and feeds each category of input a careless or hostile sender could
produce, known poisons first, then random mutations of valid input (seeded, so a run can be
repeated). After each category it checks that both processes still run, that every good
input sent between the hostile ones is stored, and reads both processes' peak RSS (VmHWM).

    Benchmarks/hostile_probe.py [--bin .build/release] [--seed 1] [--mutations 300]

Prints one Markdown table (the one in docs/reliability.md) and exits non-zero on a crash or a
loss. Only loopback is used.
"""
import argparse, json, os, random, socket, sqlite3, subprocess, sys, tempfile, time, urllib.error, urllib.request, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import free_port, status_mib  # noqa: E402

GOOD_T = 1_764_000_000_000_000_000


def wait_until(condition, timeout, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def peak_rss_mib(pid):
    peak = status_mib(pid, "VmHWM")
    return None if peak is None else round(peak, 1)


class Probe:
    def __init__(self, binaries, seed, mutations):
        self.bin = binaries
        self.random = random.Random(seed)
        self.mutations = mutations
        self.dir = tempfile.mkdtemp(prefix="muster-probe-")
        self.token = "probe-token"
        self.rows = []
        self.failures = []
        self.good_offset = 0
        os.makedirs(f"{self.dir}/logs")

    # --- processes

    def start(self):
        port_file = f"{self.dir}/collector.port"
        self.collector = subprocess.Popen(
            [f"{self.bin}/muster-collector", "--database", f"{self.dir}/store.sqlite", "--host", "127.0.0.1",
             "--port", "0", "--port-file", port_file, "--token", self.token],
            stdout=open(f"{self.dir}/collector.log", "w"), stderr=subprocess.STDOUT)
        if not wait_until(lambda: os.path.exists(port_file), 60):
            sys.exit("collector did not start; see " + self.dir)
        self.port = int(open(port_file).read())
        self.syslog_port = free_port()
        with open(f"{self.dir}/agent.yaml", "w") as f:
            f.write(f"""node: probe
collector: {{url: "http://127.0.0.1:{self.port}"}}
state_dir: {self.dir}/agent-state
batch: {{max_age_ms: 200}}
sources:
  - {{id: app, type: file, paths: ["{self.dir}/logs/*.log"]}}
  - {{id: syslog, type: syslog, listen: ["udp://127.0.0.1:{self.syslog_port}"]}}
""")
        self.agent = subprocess.Popen(
            [f"{self.bin}/muster-agent", "--config", f"{self.dir}/agent.yaml", "--token", self.token],
            stdout=open(f"{self.dir}/agent.log", "w"), stderr=subprocess.STDOUT)
        if not wait_until(lambda: "agent started" in open(f"{self.dir}/agent.log").read(), 60):
            sys.exit("agent did not start; see " + self.dir)

    def stop(self):
        for process in (self.agent, self.collector):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()

    def alive(self):
        return self.collector.poll() is None and self.agent.poll() is None

    def stored(self, source):
        db = sqlite3.connect(f"file:{self.dir}/store.sqlite?mode=ro", uri=True)
        try:
            return [row[0] for row in db.execute(
                "SELECT l.msg FROM logs l JOIN streams s ON s.id = l.stream WHERE s.source = ?", (source,))]
        finally:
            db.close()

    def record(self, category, tried, lost, note=""):
        crashed = 0 if self.alive() else 1
        self.rows.append((category, tried, crashed, lost, peak_rss_mib(self.collector.pid), peak_rss_mib(self.agent.pid), note))
        if crashed or lost:
            self.failures.append(category)

    # --- HTTP

    def post(self, body, encoding=None, path="/v1/ingest"):
        headers = {"Authorization": f"Bearer {self.token}"}
        if encoding:
            headers["Content-Encoding"] = encoding
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (ConnectionError, urllib.error.URLError) as error:
            return 0, str(error).encode()

    def good_line(self, source, text):
        self.good_offset += 1000
        return json.dumps({"agent": "probe-good", "node": "good", "src": source, "gen": "g", "off": self.good_offset,
                           "t": GOOD_T + self.good_offset, "msg": text}) + "\n"

    def mutate(self, data: bytes) -> bytes:
        data = bytearray(data)
        for _ in range(self.random.randint(1, 4)):
            choice = self.random.random()
            position = self.random.randrange(len(data) + 1)
            if choice < 0.4 and data:
                data[min(position, len(data) - 1)] = self.random.randrange(256)
            elif choice < 0.6:
                data[position:position] = self.random.choice(
                    [b"9" * 30, b"-", b"\x00", b"\\u0000", b"\\ud800", b"1e999", b'"', b"{", b"[" * 200, b"\xff\xfe",
                     b"9223372036854775807", b"-9223372036854775808", b"18446744073709551616", b"\n"])
            elif data:
                del data[position:position + self.random.randint(1, 8)]
        return bytes(data)

    # --- categories

    def ingest(self):
        base = {"agent": "a1", "node": "s1", "src": "poison", "gen": "g", "off": 0, "t": GOOD_T, "msg": "poison"}

        def line(**overrides):
            value = dict(base, **overrides)
            return json.dumps(value).encode() + b"\n"

        known = [
            line(off=2**63 - 1), line(off=2**62 + 1), line(off=-1), line(t=2**63 - 1), line(t=-(2**63)), line(t=-1),
            line(t="9999-12-31T23:59:59Z"), line(t="0000-01-01T00:00:00Z"), line(t="2263-01-01T00:00:00Z"),
            line(t="2026-01-01T00:00:00+99:00"), b'{"agent":"a","node":"n","src":"s","t":1,"off":1e999,"msg":"x"}\n',
            b'{"f":' + b"[" * 100_000 + b"\n", b'{"msg":"\\ud800"}\n', b"\x00" * 1000, b"",
            zlib.compress(b" " * (70 << 20), 9), b"\x78\x9c" + os.urandom(1000),
        ]
        sent = 0
        good = []
        server_errors = 0
        inputs = known + [self.mutate(line(off=i)) for i in range(self.mutations)]
        for index, body in enumerate(inputs):
            compressed = body.startswith(b"\x78")
            status, _ = self.post(body, "deflate" if compressed else None)
            server_errors += status >= 500 or status == 0
            sent += 1
            text = f"good-ingest-{index}"
            status, _ = self.post(self.good_line("good", text).encode())
            if status == 200:
                good.append(text)
        stored = set(self.stored("good"))
        lost = sum(1 for text in good if text not in stored) + (len(inputs) - len(good))
        self.record("ingest (HTTP batches)", sent, lost, f"{server_errors} answered 5xx or not at all")

    def journal(self):
        def entry(**fields):
            body = {"t": GOOD_T, "event": "member-join", "observer": "ha",
                    "member": {"name": "s9", "address": "10.0.0.9", "role": "web", "tags": {}}}
            body.update(fields)
            return json.dumps(body)

        known = [
            entry(t=-(2**63)), entry(t=2**63 - 1), entry(t=-1), entry(event="snapshot", members=[], t=2**63 - 1),
            entry(event="config", config={"version": -1}), entry(member={"name": "\u0000evil", "address": "10.0.0.29\u0000"}),
            entry(event="user", user={"name": "x", "payload": "y", "ltime": -5}), entry(event="no-such-event"),
            entry(member=None), entry(event="inventory", inventory={"node": "x"}), "[]", "null", "{" * 10000,
        ]
        inputs = known + [self.mutate(entry(t=GOOD_T + i).encode()).decode("utf-8", "replace") for i in range(self.mutations)]
        good = []
        for index, text in enumerate(inputs):
            self.good_offset += 1000
            record = {"agent": "probe-journal", "node": "ha", "src": "events", "gen": "j", "off": self.good_offset,
                      "t": GOOD_T, "msg": text}
            self.post((json.dumps(record) + "\n").encode())
            marker = f"good-journal-{index}"
            if self.post(self.good_line("good-journal", marker).encode())[0] == 200:
                good.append(marker)
        stored = set(self.stored("good-journal"))
        self.record("journal (membership events)", len(inputs), len(inputs) - sum(1 for m in good if m in stored))

    def syslog(self):
        known = [
            "<14>1 9999-12-31T23:59:59Z host app - - - x", "<14>1 0000-01-01T00:00:00Z host app - - - x",
            "<14>1 2263-01-01T00:00:00Z host app - - - x", "<14>9999-12-31T23:59:59Z host app: x",
            "<99999999999999999999>1 2026-01-01T00:00:00Z h a - - - x", "<14>999999999999 - - - - - x",
            "<14>Feb 30 12:00:00 host app: x", "<14>1 2026-11-22T04:19:28Z h a - - [x@1 a=\"" + "\\" * 5000 + "\"] x",
            "<14>1 2026-11-22T04:19:28Z h a - - [" * 1000, "\x00" * 100, "<", "<14>", "x" * 65_000,
        ]
        valid = ["<14>1 2026-11-22T04:19:28.123Z host app 12 ID7 [a@1 b=\"c\"] hello", "<13>Nov 22 04:19:28 host app[12]: hello"]
        inputs = [text.encode("utf-8", "surrogateescape") for text in known]
        inputs += [self.mutate(self.random.choice(valid).encode()) for _ in range(self.mutations)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        markers = []
        for index, datagram in enumerate(inputs):
            if datagram:
                sock.sendto(datagram[:65_000], ("127.0.0.1", self.syslog_port))
            marker = f"good-syslog-{index}"
            sock.sendto(f"<14>1 2026-11-22T04:19:28Z host app - - - {marker}".encode(), ("127.0.0.1", self.syslog_port))
            markers.append(marker)
            if index % 50 == 0:
                time.sleep(0.01)  # a sender's pace, not a flood: datagrams the kernel drops are not the agent's loss
        expected = set(markers)
        wait_until(lambda: expected <= {m.rsplit(" ", 1)[-1] for m in self.stored("syslog")}, 60, 0.5)
        stored = {message.rsplit(" ", 1)[-1] for message in self.stored("syslog")}
        self.record("syslog (UDP datagrams)", len(inputs), len(expected - stored))

    def files(self):
        poisoned = [
            b"@400000030000000000000000 x", b"@ffffffffffffffff00000000 y", b"@4000000000000000000000ff before 1970",
            b"\x00\x00\x00 nul bytes", b"\xff\xfe invalid utf-8 \xc3", b"\x1b[31m escape \x07", b"cr\rin the middle",
            b"x" * (3 << 20),
        ]
        inputs = poisoned + [self.mutate(b"@400000006553f125075bcd15 " + b"valid labelled line") for _ in range(self.mutations)]
        markers = []
        with open(f"{self.dir}/logs/app.log", "ab") as f:
            for index, data in enumerate(inputs):
                f.write(data.replace(b"\n", b" ") + b"\n")
                marker = f"good-file-{index}"
                f.write(marker.encode() + b"\n")
                markers.append(marker)
        expected = set(markers)
        wait_until(lambda: expected <= set(self.stored("app")), 60, 0.5)
        self.record("files (tailed lines)", len(inputs), len(expected - set(self.stored("app"))))

    def connections(self):
        idle = []
        for _ in range(1100):
            try:
                idle.append(socket.create_connection(("127.0.0.1", self.port), timeout=1))
            except OSError:
                pass  # past max_connections and the listen backlog the kernel stops answering SYNs
        started = time.time()
        statuses = [self.post(self.good_line("good-conn", f"good-conn-{i}").encode())[0] for i in range(5)]
        recovered = time.time() - started
        for connection in idle:
            connection.close()
        lost = 5 - sum(1 for s in statuses if s == 200)
        self.record("connections (1,100 idle, then 5 batches)", 1100, lost,
                    f"{len(idle)} connected; the 5 batches answered {sorted(set(statuses))} within {recovered:.0f} s (idle_timeout_ms 30000)")

    def configs(self):
        collector_keys = ["limits.max_body_bytes", "limits.max_connections", "limits.idle_timeout_ms", "retention.logs_max_age_hours",
                          "retention.interval_ms", "search_index.chunk_rows", "membership.snapshot_settle_ms", "listen.port", "tokens", "limts.x"]
        agent_keys = ["collector.timeout_ms", "retry.initial_ms", "retry.max_ms", "batch.max_records", "batch.compression_level",
                      "spool.max_bytes", "spool.segment_bytes", "shutdown_grace_ms", "bathc.max_records", "state_dir"]
        values = ["-1", "0", "1e13", "9223372036854775807", "99999999999999999999", "-9223372036854775808", "0.5", "\"x\"",
                  "[]", "{}", "null", "[\"\"]", "\"/proc/1\""]
        crashes = tried = started = 0
        for binary, keys in (("muster-collector", collector_keys), ("muster-agent", agent_keys)):
            for _ in range(self.mutations // 3 or 1):
                key = self.random.choice(keys).split(".")
                value = self.random.choice(values)
                text = (f"{key[0]}:\n  {key[1]}: {value}\n" if len(key) == 2 else f"{key[0]}: {value}\n")
                path = f"{self.dir}/probe-config.yaml"
                open(path, "w").write(text)
                arguments = [f"{self.bin}/{binary}", "--config", path, "--token", self.token]
                if binary == "muster-collector":
                    arguments += ["--database", f"{self.dir}/config-probe.sqlite", "--port", "0"]
                else:
                    arguments += ["--state-dir", f"{self.dir}/config-probe-state", "--collector-url", "http://127.0.0.1:1"]
                process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                try:
                    process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    started += 1
                    process.terminate()
                    process.wait(timeout=30)
                tried += 1
                crashes += process.returncode is not None and process.returncode < 0 and process.returncode not in (-15,)
        self.rows.append(("configs (YAML files)", tried, crashes, 0, None, None, f"{started} valid enough to start, the rest refused"))
        if crashes:
            self.failures.append("configs")

    def logq(self):
        pieces = ["@", "-", "ago", "d", "h", "m", "s", "w", "9999", "99999999999999", "1970-01-01", "2262", "T", ":", "Z",
                  "+99:99", "today", "yesterday", "now", " ", "0", "1e9", "\x1b"]  # argv cannot carry NUL
        crashes = tried = 0
        for _ in range(self.mutations):
            expression = "".join(self.random.choice(pieces) for _ in range(self.random.randint(1, 6)))
            for command in (["logs", "--since", expression, "--limit", "1"], ["hist", "--since", expression],
                            ["members", "--at", expression]):
                result = subprocess.run([f"{self.bin}/logq", *command, "--db", f"{self.dir}/store.sqlite"],
                                        capture_output=True, timeout=60)
                tried += 1
                crashes += result.returncode < 0
        self.rows.append(("logq inputs (time expressions)", tried, crashes, 0, None, None, "exits 0, 64 or 65"))
        if crashes:
            self.failures.append("logq")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutations", type=int, default=300)
    args = parser.parse_args()
    probe = Probe(os.path.abspath(args.bin), args.seed, args.mutations)
    probe.start()
    try:
        for category in (probe.ingest, probe.journal, probe.syslog, probe.files, probe.connections):
            category()
        probe.configs()
        probe.logq()
    finally:
        probe.stop()
    print(f"seed {args.seed}, {args.mutations} mutations per category, binaries {args.bin}\n")
    print("| category | inputs tried | crashes | lost | collector peak RSS (MiB) | agent peak RSS (MiB) | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for category, tried, crashed, lost, collector, agent, note in probe.rows:
        print(f"| {category} | {tried} | {crashed} | {lost} | {collector or '–'} | {agent or '–'} | {note} |")
    if probe.failures:
        print("\nFAILED:", ", ".join(probe.failures), "— see", probe.dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
