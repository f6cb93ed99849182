// muster-bench-history: a deterministic cluster history for the logq benchmark.
//
// Simulates a day of a cluster of one load balancer (`ha`) and web nodes `s1`…`sN`, and
// stores what their agents would have shipped with the store's own code, the way the
// collector does:
//
//   - `Schema.openForWriting` (the real schema and migrations), WAL;
//   - `LogWriter.insert` of per-node batches (one batch = one agent's ~1 s of lines), many
//     batches per write transaction (group commit), `--chunk` records per transaction;
//   - the event journal's lines (source `events`) stored as log lines and interpreted by
//     `ClusterLedger().apply` in the same transaction, in arrival order, as `IngestWriter` does:
//     every live observer reports each membership change (the ledger keeps one), takes a
//     snapshot after it, the LB controller journals a `config` per render, each node its
//     `inventory` at start, `ha` its `haproxy-stats` every 10 s, user events (deploys);
//   - marks `task-0`…`task-K` through `Mark.record`, one every `lines / marks` stored lines;
//   - the full-text index (its own file, `SearchIndex`) built to completion afterwards, in the
//     chunks the collector's `SearchIndexService` uses by default (`--index-chunk`).
//
// With `--store CONFIG` instead of `--database`, the same history goes into the scale-out store
// that the `store:` section of the collector config at CONFIG names (lines in ClickHouse, the
// cluster's state in etcd), through what a collector on that store runs: `ScaleOutSettings`
// opens the `CollectorStore` (creating the tables and etcd's `seq` as a collector's start
// does), each `--chunk` of batches is one `commit` (the collector's group commit: lines into
// ClickHouse, then the journal lines interpreted into etcd by the same `ClusterLedger`), and
// the marks go through the store's `recordMark` right after the commit that holds their line,
// where the SQLite store records them in that commit's transaction (so the same `--chunk` gives
// the same event ids in both: the grouping decides which events precede a mark). The next chunk is
// generated while one is being written. The store must hold no lines and no marks yet (a fresh
// ClickHouse database and etcd namespace); nothing is cached or reused on this path.
//
// The lines: HAProxy `option httplog` (log stdout format raw) on `ha` for every request; the
// web app's request line on the server that answered it; HAProxy's `httpchk GET /healthz`
// every second on each live web node; Serf's log (reconciliation's `serf members` IPC every
// 2–5 s, membership events, start-up banner); the agent's own log. Files rotate like
// `s6-log s1000000` (a new stream every ~1 MB), and a node that rejoins starts new files.
// One word, `deadlock`, appears about once per 100,000 lines; `healthz`, `GET`, `nodes` are
// common. Everything comes from a seeded SplitMix64, so the same arguments give the same
// database.
//
// Usage: muster-bench-history (--database PATH | --store CONFIG) [--lines 10000000] [--nodes 20]
//            [--changes 1000] [--marks 10] [--hours 24] [--seed 42] [--chunk 50000]
//            [--index-chunk 10000] [--fresh] [--dry-run]
//
// A database at PATH with a matching `PATH.json` (written last, when everything is done) and
// the right row count is reused unless --fresh. Prints one line of JSON (see
// Benchmarks/README.md, "logq benchmark").

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import MusterStore
import MusterStoreSQLite
import MusterStoreScaleOut
import MusterWire
import Yams

// MARK: - Options

struct Options: Equatable {
    var database = ""
    /// A collector config whose `store:` section names the scale-out store to write instead.
    var store = ""
    var lines = 10_000_000
    var nodes = 20
    var changes = 1_000
    var marks = 10
    var hours = 24.0
    var seed: UInt64 = 42
    var chunk = 50_000
    var indexChunk = 100_000
    var fresh = false
    var dryRun = false
}

/// Bumped whenever the generated data changes, so a cached database is not reused by mistake.
let generatorVersion = 2  // 2: the search index in a file of its own

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("muster-bench-history: \(message)\n".utf8))
    exit(2)
}

func note(_ message: String) {
    FileHandle.standardError.write(Data("muster-bench-history: \(message)\n".utf8))
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    while let flag = arguments.popFirst() {
        switch flag {
        case "--fresh": options.fresh = true; continue
        case "--dry-run": options.dryRun = true; continue
        default: break
        }
        guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
        switch flag {
        case "--database": options.database = value
        case "--store": options.store = value
        case "--lines": options.lines = Int(value) ?? 0
        case "--nodes": options.nodes = Int(value) ?? 0
        case "--changes": options.changes = Int(value) ?? 0
        case "--marks": options.marks = Int(value) ?? 0
        case "--hours": options.hours = Double(value) ?? 0
        case "--seed": options.seed = UInt64(value) ?? 0
        case "--chunk": options.chunk = Int(value) ?? 0
        case "--index-chunk": options.indexChunk = Int(value) ?? 0
        default: fail("unknown flag \(flag)")
        }
    }
    guard options.dryRun || options.database.isEmpty != options.store.isEmpty, options.lines > 0, options.nodes >= 8, options.changes >= options.nodes,
        options.marks >= 1, options.hours > 0, options.chunk > 0, options.indexChunk > 0
    else {
        fail(
            "usage: muster-bench-history (--database PATH | --store CONFIG) [--lines N] [--nodes N>=8] [--changes N>=nodes] [--marks N] "
                + "[--hours H] [--seed S] [--chunk N] [--index-chunk N] [--fresh] [--dry-run]")
    }
    return options
}

func monotonicSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

// MARK: - Deterministic randomness

/// SplitMix64: tiny, fast, and the same sequence everywhere (the standard library's generator
/// cannot be seeded). Only these helpers draw from it, so the output depends on nothing else.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Uniform in 0..<n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func range(_ low: Int, _ high: Int) -> Int { low + below(high - low + 1) }
    mutating func chance(_ p: Double) -> Bool { unit() < p }
    mutating func exponential(mean: Double) -> Double { -mean * log(1 - unit()) }
    mutating func normal() -> Double { sqrt(-2 * log(1 - unit())) * cos(2 * Double.pi * unit()) }
    mutating func lognormal(_ mu: Double, _ sigma: Double) -> Double { exp(mu + sigma * normal()) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    /// Index into cumulative weights.
    mutating func weighted(_ cumulative: [Double]) -> Int {
        let x = unit() * cumulative[cumulative.count - 1]
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] > x { high = mid } else { low = mid + 1 }
        }
        return low
    }
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, below(i + 1)) }
    }
}

func cumulative(_ weights: [Double]) -> [Double] {
    var total = 0.0
    return weights.map { total += $0; return total }
}

// MARK: - SHA-256 (configs carry the sha256 of their text, as the LB controller records it)

enum SHA256 {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    static func hex(_ text: String) -> String {
        var message = Array(text.utf8)
        let bitLength = UInt64(message.count) * 8
        message.append(0x80)
        while message.count % 64 != 56 { message.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8((bitLength >> UInt64(shift)) & 0xff)) }
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for block in stride(from: 0, to: message.count, by: 64) {
            for i in 0..<16 {
                let b = block + i * 4
                w[i] = UInt32(message[b]) << 24 | UInt32(message[b + 1]) << 16 | UInt32(message[b + 2]) << 8 | UInt32(message[b + 3])
            }
            for i in 16..<64 {
                let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let ch = (e & f) ^ (~e & g)
                let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
                let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let maj = (a & b) ^ (a & c) ^ (b & c)
                let t2 = s0 &+ maj
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
        }
        return h.map { word in
            let digits = String(word, radix: 16)
            return String(repeating: "0", count: 8 - digits.count) + digits
        }.joined()
    }
}

// MARK: - Time formatting

let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
func pad3(_ value: Int) -> String { value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : "\(value)" }

/// The date forms the simulated programs print, cached per second (lines come almost in order).
struct Clock {
    private var second: Int64 = .min
    private(set) var haproxy = ""  // 20/Nov/2026:00:00:01
    private(set) var serf = ""  // 2026/11/20 00:00:01
    private(set) var agent = ""  // 2026-11-20T00:00:01+0000

    mutating func at(_ t: Int64) {
        let s = t / Timestamp.nanosPerSecond
        guard s != second else { return }
        second = s
        let days = Int(s / 86_400)
        let within = Int(s % 86_400)
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let hms = "\(pad2(within / 3600)):\(pad2(within / 60 % 60)):\(pad2(within % 60))"
        haproxy = "\(pad2(day))/\(months[month - 1])/\(year):\(hms)"
        serf = "\(year)/\(pad2(month))/\(pad2(day)) \(hms)"
        agent = "\(year)-\(pad2(month))-\(pad2(day))T\(hms)+0000"
    }
}

/// `12.34` from a duration in microseconds.
func milliseconds(_ micros: Int) -> String {
    "\(micros / 1000).\(pad2(micros % 1000 / 10))"
}

// MARK: - The load balancer's configuration, as collector/haproxy.cfg.mustache renders it

func haproxyConfig(version: Int, at t: Int64, servers: [(String, String)]) -> String {
    var text = """
        # haproxy.cfg rendered by muster-agent's LB controller: do not edit, the next render replaces it.
        # version \(version) generated \(Timestamp.format(t))

        global
            master-worker
            # The admin socket the controller drives (add/drain/del server, show stat). A reload
            # through the master hands the listening sockets to the new worker over the master's
            # own socketpair (-x sockpair@N), so no connection is refused; expose-fd listeners
            # lets a reload done without the master (haproxy -sf PID -x SOCKET) do the same.
            stats socket /run/haproxy/admin.sock mode 600 level admin expose-fd listeners
            stats timeout 30s
            # Old workers finish their requests after a reload, but never for longer than this.
            hard-stop-after 30s
            log stdout format raw local0

        defaults
            mode http
            log global
            option httplog
            option dontlognull
            # A request whose server refused the connection, reset it or closed it without an
            # answer is retried, each time on another server, instead of failing. (No retry on a
            # response timeout: that would repeat a slow request that the server may have done.)
            option redispatch 1
            retries 3
            retry-on conn-failure empty-response
            # After a reload the old worker answers the next request on an idle keep-alive
            # client connection with "Connection: close" instead of closing it under the client.
            option idle-close-on-response
            # One request per server connection: nothing idles towards a server, so a drained
            # server can be deleted as soon as its last request has been answered.
            option http-server-close
            timeout connect 2s
            timeout client 30s
            timeout server 30s
            timeout http-request 10s
            timeout http-keep-alive 10s
            timeout queue 10s

        frontend http-in
            bind *:80
            default_backend nodes

        listen stats
            bind *:1936
            stats enable
            stats uri /
            stats refresh 5s
            stats hide-version

        backend nodes
            balance roundrobin
            # Stickiness on the application's own session cookie: HAProxy prefixes NODESESSID
            # with "<server cookie>~" on the way out and strips it on the way in. The server cookie
            # is a dynamic one, a hash of the key, the server's address and its port, because
            # HAProxy 2.6 refuses `cookie` on `add server`: this way a server added at runtime
            # (then `enable dynamic-cookie backend nodes`) and the same server read from this file
            # after a reload carry the same value, and sessions stay put across both.
            cookie NODESESSID prefix nocache dynamic
            dynamic-cookie-key muster
            option httpchk GET /healthz
            http-check expect status 200
            option forwardfor
            http-request set-header X-Forwarded-Port %[dst_port]

        """
    for (name, address) in servers {
        text += "    server \(name) \(address):80 check inter 1s fall 2 rise 1\n"
    }
    return text
}

// MARK: - The simulated cluster

enum Source: Int, CaseIterable {
    case haproxy, webapp, serf, agent, events
    var id: String {
        switch self {
        case .haproxy: "haproxy"
        case .webapp: "demo-webapp"
        case .serf: "serf"
        case .agent: "muster-agent"
        case .events: JournalEntry.sourceID
        }
    }
}

/// One line a node wrote, waiting for its agent to ship it.
struct PendingLine {
    var t: Int64
    var seq: Int
    var source: Source
    var message: String
    var journal: JournalEntry?
}

/// The file a source writes to: like `s6-log s1000000`, a new file (a new stream generation)
/// every ~1 MB; a node that restarts starts new files.
struct LogFile {
    var generation = ""
    var size: Int64 = 0
    var open = false
}

/// s6-log's `t` label in front of each line: `@` + TAI64N, 25 characters, and a space.
let labelBytes: Int64 = 26

func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}

func tai64nLabel(_ t: Int64) -> String {
    let seconds = UInt64(0x4000_0000_0000_0000) &+ UInt64(t / Timestamp.nanosPerSecond) &+ 37
    let nanos = UInt64(t % Timestamp.nanosPerSecond)
    let high = String(seconds, radix: 16)
    let low = String(nanos, radix: 16)
    return "@" + String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 8 - low.count) + low
}

final class Node {
    let name: String
    let address: String
    let role: String
    var alive = false
    var everJoined = false
    var status = MemberStatus.left
    var buffer: [PendingLine] = []
    var files: [LogFile] = Array(repeating: LogFile(), count: Source.allCases.count)
    var nextHealthCheck: Int64 = 0
    var nextReconcile: Int64 = 0
    var pids: [String: Int] = [:]
    var servicesSince: Int64 = 0
    // HAProxy's counters for this server (ha's stats samples).
    var sessions = 0
    var responses2xx = 0
    var responses5xx = 0

    init(name: String, address: String, role: String) {
        self.name = name
        self.address = address
        self.role = role
    }

    var member: Member { Member(name: name, address: address, role: role, tags: ["role": role]) }
}

let userAgents = [
    "Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)", "Mozilla/5.0 (Linux; Android 14; Pixel 8)", "curl/8.5.0",
    "python-requests/2.31.0", "Go-http-client/2.0", "okhttp/4.12.0",
]

/// (weight, method, template): the web app's API, pages and assets.
let routes: [(Double, String, String)] = [
    (30, "GET", "/api/v1/items/{id}"),
    (12, "GET", "/api/v1/items?page={page}&per_page={per}&sort={sort}"),
    (8, "POST", "/api/v1/orders"),
    (6, "GET", "/api/v1/orders/{id}/status"),
    (5, "PUT", "/api/v1/users/{id}/preferences"),
    (4, "DELETE", "/api/v1/sessions/{hex}"),
    (10, "GET", "/static/js/app.{asset}.js"),
    (6, "GET", "/static/css/main.{asset}.css"),
    (6, "GET", "/static/img/products/{id}_{size}.jpg"),
    (5, "GET", "/search?q={word}+{word}&page={page}"),
    (6, "GET", "/"),
    (2, "POST", "/api/v1/auth/token"),
    (1, "GET", "/favicon.ico"),
]
/// A route template cut into its fixed text and its placeholders, once.
enum PathPiece {
    case text(String), id, page, per, sort, asset, hex, size, word

    static func parse(_ template: String) -> [PathPiece] {
        var pieces: [PathPiece] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            if open > rest.startIndex { pieces.append(.text(String(rest[..<open]))) }
            switch rest[rest.index(after: open)..<close] {
            case "id": pieces.append(.id)
            case "page": pieces.append(.page)
            case "per": pieces.append(.per)
            case "sort": pieces.append(.sort)
            case "asset": pieces.append(.asset)
            case "hex": pieces.append(.hex)
            case "size": pieces.append(.size)
            case "word": pieces.append(.word)
            default: fatalError("unknown placeholder in \(template)")
            }
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.text(String(rest))) }
        return pieces
    }
}
let routePieces = routes.map { PathPiece.parse($0.2) }
let searchWords = [
    "shoes", "red", "coat", "winter", "lamp", "desk", "chair", "oak", "usb", "cable", "phone", "case", "garden", "hose",
    "book", "pen", "mug", "tea", "coffee", "bag",
]
let sorts = ["price", "-price", "name", "created_at", "-rating"]
let sizes = ["thumb", "small", "medium", "large"]
let statuses: [(Double, Int)] = [
    (780, 200), (40, 201), (20, 204), (70, 304), (25, 301), (15, 302), (10, 400), (12, 401), (5, 403), (30, 404),
    (3, 429), (6, 500), (4, 502), (2, 503), (1, 504),
]

/// The rare word: about once per 100,000 lines, in an application error.
let rareWord = "deadlock"

struct HistoryGenerator {
    let options: Options
    var rng: SplitMix64
    var clock = Clock()
    let start: Int64
    let span: Int64
    var nodes: [Node]
    var ha: Node { nodes[0] }
    var web: ArraySlice<Node> { nodes[1...] }
    var seq = 0
    var roundRobin = 0

    // Requests.
    let clients: [String]
    let clientWeights: [Double]
    let routeWeights: [Double]
    let statusWeights: [Double]
    var nextRequest: Int64
    var requestRate: Double
    var requestsUntilRare: Int
    var rareEvery: Int
    var assets: [String]

    // Membership schedule: (time, node index, event).
    var schedule: [(Int64, Int, JournalEvent)] = []
    var scheduleIndex = 0
    var configVersion = 0
    var configText = ""
    var nextStats: Int64
    var nextDeploy: Int64
    var haproxyPid = 3504
    var nextPid = 4000

    init(options: Options) {
        self.options = options
        rng = SplitMix64(seed: options.seed)
        start = Timestamp.parseRFC3339("2026-11-20T00:00:00Z")!
        span = Int64(options.hours * 3600) * Timestamp.nanosPerSecond
        nodes = [Node(name: "ha", address: "10.79.0.3", role: "ha")]
        for index in 1..<options.nodes {
            nodes.append(Node(name: "s\(index)", address: "10.79.\(index / 200).\(10 + index % 200)", role: "web"))
        }
        var clients: [String] = []
        for _ in 0..<5000 {
            let kind = rng.unit()
            if kind < 0.5 {
                clients.append("10.\(rng.below(256)).\(rng.below(256)).\(rng.range(1, 254))")
            } else if kind < 0.7 {
                clients.append("192.168.\(rng.below(256)).\(rng.range(1, 254))")
            } else {
                clients.append("\(rng.pick([23, 31, 45, 62, 78, 81, 93, 104, 151, 172, 185, 198, 203, 212])).\(rng.below(256)).\(rng.below(256)).\(rng.range(1, 254))")
            }
        }
        self.clients = clients
        clientWeights = cumulative((0..<clients.count).map { 1.0 / pow(Double($0 + 1), 0.9) })
        routeWeights = cumulative(routes.map(\.0))
        statusWeights = cumulative(statuses.map(\.0))
        // Lines per request: one on ha and one on the web node; the rest of the lines (health
        // checks, Serf, journal) are ~19 per second for a cluster of 20 with ~13 web nodes up.
        let linesPerSecond = Double(options.lines) / options.hours / 3600
        let otherPerSecond = Double(options.nodes - 1) * 0.68 * 1.0 + Double(options.nodes) * 0.7 * 0.29 + 0.3
        requestRate = max(1, (linesPerSecond - otherPerSecond) / 2)
        nextRequest = start
        rareEvery = max(2, Int(100_000 / (linesPerSecond / requestRate)))
        requestsUntilRare = 1
        assets = []
        nextStats = start + 10 * Timestamp.nanosPerSecond
        nextDeploy = start + 3600 * Timestamp.nanosPerSecond
        requestsUntilRare = rng.range(1, 2 * rareEvery)
        assets = newAssets()
        schedule = makeSchedule()
    }

    mutating func newAssets() -> [String] {
        (0..<3).map { _ in
            let digits = String(rng.next() & 0xffff_ffff, radix: 16)
            return String(repeating: "0", count: 8 - digits.count) + digits
        }
    }

    /// The membership changes: ha and every web node join in the first minutes, then web nodes
    /// leave, fail and rejoin at random (between 6 and all of them up), at least 15 s apart,
    /// all before 92% of the span so every change is stored before the line budget runs out.
    mutating func makeSchedule() -> [(Int64, Int, JournalEvent)] {
        var schedule: [(Int64, Int, JournalEvent)] = []
        let second = Timestamp.nanosPerSecond
        for index in 0..<options.nodes {
            schedule.append((start + second + Int64(index) * 3 * second + Int64(rng.below(1_000_000_000)), index, .memberJoin))
        }
        var alive = Set(1..<options.nodes)
        let remaining = options.changes - options.nodes
        let first = schedule.last!.0 + 30 * second
        let last = start + span * 92 / 100
        var gaps: [Double] = (0..<remaining).map { _ in 15 + rng.exponential(mean: 60) }
        let total = gaps.reduce(0, +)
        let scale = Double(last - first) / Double(second) / total
        gaps = gaps.map { $0 * scale }
        var t = Double(first)
        let minimumUp = 6
        for gap in gaps {
            t += gap * Double(second)
            let dead = (1..<options.nodes).filter { !alive.contains($0) }
            let join = !dead.isEmpty && (alive.count <= minimumUp || rng.chance(0.5))
            if join {
                let index = rng.pick(dead)
                alive.insert(index)
                schedule.append((Int64(t), index, .memberJoin))
            } else {
                let index = rng.pick(alive.sorted())
                alive.remove(index)
                schedule.append((Int64(t), index, rng.chance(0.7) ? .memberLeave : .memberFailed))
            }
        }
        return schedule
    }

    // MARK: Emitting lines

    mutating func emit(_ node: Node, _ t: Int64, _ source: Source, _ message: String, journal: JournalEntry? = nil) {
        seq += 1
        node.buffer.append(PendingLine(t: t, seq: seq, source: source, message: message, journal: journal))
    }

    mutating func journal(_ node: Node, _ entry: JournalEntry) {
        emit(node, entry.t, .events, entry.encodedLine(), journal: entry)
    }

    mutating func serf(_ node: Node, _ t: Int64, _ text: String) {
        clock.at(t)
        emit(node, t, .serf, "    \(clock.serf) [INFO] \(text)")
    }

    mutating func agentLog(_ node: Node, _ t: Int64, _ text: String) {
        clock.at(t)
        emit(node, t, .agent, "\(clock.agent) info muster-agent: \(text)")
    }

    func ms(_ value: Double) -> Int64 { Int64(value * 1_000_000) }

    /// Simulates [second, second + 1 s).
    mutating func step(_ second: Int64) {
        let end = second + Timestamp.nanosPerSecond
        while scheduleIndex < schedule.count, schedule[scheduleIndex].0 < end {
            let (t, index, event) = schedule[scheduleIndex]
            scheduleIndex += 1
            change(nodes[index], event, at: t)
        }
        requests(until: end)
        for node in web where node.alive {
            while node.nextHealthCheck < end {
                let t = node.nextHealthCheck + Int64(rng.below(400_000))
                emit(node, t, .webapp, "GET /healthz 200 0.\(pad2(rng.range(2, 9)))ms")
                node.nextHealthCheck += Timestamp.nanosPerSecond
            }
        }
        for node in nodes where node.alive {
            while node.nextReconcile < end {
                serf(node, node.nextReconcile, "agent.ipc: Accepted client: 127.0.0.1:\(rng.range(32768, 60999))")
                node.nextReconcile += ms(2000 + rng.unit() * 3000)
            }
        }
        while nextStats < end {
            stats(at: nextStats)
            nextStats += 10 * Timestamp.nanosPerSecond
        }
        while nextDeploy < end {
            deploy(at: nextDeploy)
            nextDeploy += 3600 * Timestamp.nanosPerSecond + Int64(rng.below(600)) * Timestamp.nanosPerSecond
        }
    }

    mutating func requests(until end: Int64) {
        let day = 86_400.0 * 1e9
        while nextRequest < end {
            let accept = nextRequest
            // Busier in the afternoon, quieter at night.
            let phase = Double(accept - start) / day
            let rate = requestRate * (1 + 0.5 * sin(2 * Double.pi * (phase - 0.375)))
            // One gap in ten is a burst (a fifth of the usual gap); the mean stays 1 / rate.
            let burst = (rng.chance(0.1) ? 0.2 : 1.0) / 0.92
            nextRequest += Int64(rng.exponential(mean: 1e9 / rate) * burst)
            request(at: accept)
        }
    }

    mutating func request(at accept: Int64) {
        let servers = web.filter(\.alive)
        guard !servers.isEmpty else { return }
        roundRobin += 1
        let server = servers[roundRobin % servers.count]
        let ip = clients[rng.weighted(clientWeights)]
        let routeIndex = rng.weighted(routeWeights)
        let route = routes[routeIndex]
        var path = ""
        for piece in routePieces[routeIndex] {
            switch piece {
            case .text(let text): path += text
            case .id: path += String(rng.range(1, 250_000))
            case .page: path += String(rng.range(1, 40))
            case .per: path += rng.pick(["20", "50", "100"])
            case .sort: path += rng.pick(sorts)
            case .asset: path += rng.pick(assets)
            case .hex:
                let digits = String(rng.next(), radix: 16)
                path += String(repeating: "0", count: 16 - digits.count) + digits
            case .size: path += rng.pick(sizes)
            case .word: path += rng.pick(searchWords)
            }
        }
        var status = statuses[rng.weighted(statusWeights)].1
        var method = route.1
        requestsUntilRare -= 1
        var error: String?
        if requestsUntilRare <= 0 {
            requestsUntilRare = rng.range(1, 2 * rareEvery)
            method = "POST"
            path = "/api/v1/orders"
            status = 500
            error = "error: \(rareWord) detected, transaction rolled back"
        }
        let isStatic = path.hasPrefix("/static") || path == "/favicon.ico"
        let tq = rng.chance(0.85) ? 0 : rng.range(1, 39)
        let tw = rng.chance(0.97) ? 0 : rng.range(1, 199)
        let tc = rng.below(3)
        // Response time in ms, long-tailed, capped at 5 s (the line buffer's horizon).
        var tr = isStatic ? Int(rng.exponential(mean: 3)) : min(5000, Int(rng.lognormal(3.0, 0.9)))
        if status >= 502 { tr = -1 }
        let ta = tq + tw + tc + max(tr, 0) + rng.below(5)
        let bytes =
            isStatic ? (status == 200 ? Int(rng.lognormal(9.0, 1.2)) : rng.range(150, 400))
            : (status < 300 ? Int(rng.lognormal(7.5, 1.3)) : rng.range(150, 800))
        let active = 100 + rng.below(400)
        let termination = status == 504 ? "sH--" : status >= 502 ? "SH--" : rng.chance(0.3) ? "--NI" : "--VN"
        let done = accept + ms(Double(ta) + rng.unit())
        clock.at(accept)
        let acceptMs = Int(accept % Timestamp.nanosPerSecond / 1_000_000)
        emit(
            ha, done, .haproxy,
            "\(ip):\(rng.range(1024, 65535)) [\(clock.haproxy).\(pad3(acceptMs))] http-in nodes/\(server.name) "
                + "\(tq)/\(tw)/\(tc)/\(tr)/\(ta) \(status) \(bytes) - - \(termination) "
                + "\(active)/\(active - rng.below(12))/\(rng.range(1, 39))/\(rng.below(15))/\(rng.chance(0.995) ? 0 : 1) 0/0 "
                + "\"\(method) \(path) HTTP/1.1\"")
        server.sessions += 1
        if status >= 500 { server.responses5xx += 1 } else if status < 300 { server.responses2xx += 1 }
        if tr >= 0 {
            let micros = max(20, tr * 1000 - rng.below(600))
            var line = "\(method) \(path) \(status) \(milliseconds(micros))ms"
            if let error { line += " " + error }
            emit(server, accept + ms(Double(tq + tw + tc)) + Int64(micros) * 1000, .webapp, line)
        }
    }

    /// A member joins, leaves or fails; every live observer's Serf reports it (and journals
    /// it), the LB controller on ha renders a new configuration.
    mutating func change(_ node: Node, _ event: JournalEvent, at t: Int64) {
        let observers = nodes.filter { $0.alive && $0 !== node }
        switch event {
        case .memberJoin:
            start(node, at: t)
            node.alive = true
            node.status = .alive
            node.everJoined = true
            journal(node, JournalEntry(t: t + ms(5 + rng.unit() * 20), event: .memberJoin, observer: node.name, member: node.member))
            for observer in observers {
                let seen = t + ms(20 + rng.unit() * 300)
                serf(observer, seen, "serf: EventMemberJoin: \(node.name) \(node.address)")
                serf(observer, seen + ms(600), "agent: Received event: member-join")
                journal(observer, JournalEntry(t: seen + ms(600 + rng.unit() * 20), event: .memberJoin, observer: observer.name, member: node.member))
            }
        case .memberLeave:
            serf(node, t - ms(200), "agent: Gracefully shutting down agent...")
            serf(node, t - ms(190), "serf: EventMemberLeave: \(node.name) \(node.address)")
            journal(node, JournalEntry(t: t, event: .memberLeave, observer: node.name, member: node.member))
            node.alive = false
            node.status = .left
            for observer in observers {
                let seen = t + ms(20 + rng.unit() * 300)
                serf(observer, seen, "serf: EventMemberLeave: \(node.name) \(node.address)")
                serf(observer, seen + ms(600), "agent: Received event: member-leave")
                journal(observer, JournalEntry(t: seen + ms(600 + rng.unit() * 20), event: .memberLeave, observer: observer.name, member: node.member))
            }
        case .memberFailed:
            node.alive = false
            node.status = .failed
            clock.at(t + ms(2000))
            emit(
                ha, t + ms(2000), .haproxy,
                "[WARNING]  (\(haproxyPid)) : Server nodes/\(node.name) is DOWN, reason: Layer4 timeout, check duration: 1001ms. "
                    + "\(web.filter(\.alive).count) active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
            // Failure detection: observers notice a few seconds apart; the ledger keeps the first.
            for observer in observers {
                let seen = t + ms(3000 + rng.unit() * 4000)
                serf(observer, seen - ms(2500), "memberlist: Suspect \(node.name) has failed, no acks received")
                serf(observer, seen - ms(10), "memberlist: Marking \(node.name) as failed, suspect timeout reached (2 peer confirmations)")
                serf(observer, seen, "serf: EventMemberFailed: \(node.name) \(node.address)")
                serf(observer, seen + ms(600), "agent: Received event: member-failed")
                journal(observer, JournalEntry(t: seen + ms(600 + rng.unit() * 20), event: .memberFailed, observer: observer.name, member: node.member))
            }
        default:
            fatalError("unexpected event \(event)")
        }
        // Reconciliation: each live observer journals its `serf members` once it changed.
        let members = nodes.filter(\.everJoined).map { member -> Member in
            var copy = member.member
            copy.status = member.status
            return copy
        }
        for observer in nodes where observer.alive {
            journal(observer, JournalEntry(t: t + ms(7500 + rng.unit() * 2500), event: .snapshot, observer: observer.name, members: members))
        }
        if node.role == "web" {
            render(trigger: ["\(node.name) \(event == .memberJoin ? "joined" : event == .memberLeave ? "left" : "failed")"], at: t + ms(1300 + rng.unit() * 2500))
        }
    }

    /// A node (re)starts: new processes, new log files, its inventory and Serf's banner.
    mutating func start(_ node: Node, at t: Int64) {
        for source in Source.allCases where source != .events { node.files[source.rawValue].open = false }
        node.servicesSince = t - ms(1500)
        let services = node.role == "ha" ? ["haproxy", "muster-agent", "serf"] : ["demo-webapp", "muster-agent", "serf"]
        for service in services {
            nextPid += rng.range(2, 40)
            node.pids[service] = nextPid
        }
        if node.role == "ha" { haproxyPid = node.pids["haproxy"]! }
        node.nextHealthCheck = t + ms(2000 + rng.unit() * 1000)
        node.nextReconcile = t + ms(2000 + rng.unit() * 3000)
        agentLog(
            node, t - ms(1400),
            "collector=http://10.79.0.2:8088 node=\(node.name) sources=[\(services.map { "\"\($0)\"" }.joined(separator: ", ")), \"events\"] [MusterAgent] agent started")
        let banner = [
            "==> Starting Serf agent...", "==> Starting Serf agent RPC...", "==> Serf agent running!",
            "                      Node name: '\(node.name)'", "                      Bind addr: '\(node.address):7946'",
            "                       RPC addr: '127.0.0.1:7373'", "                      Encrypted: false",
            "                       Snapshot: true", "                        Profile: lan", "",
            "==> Log data will now stream in as it occurs:", "",
        ]
        for (offset, line) in banner.enumerated() { emit(node, t - ms(1000) + Int64(offset), .serf, line) }
        serf(node, t - ms(990), "agent: Serf agent starting")
        serf(node, t - ms(989), "serf: EventMemberJoin: \(node.name) \(node.address)")
        if node !== ha {
            serf(node, t - ms(980), "agent: Joining cluster...(replay: false)")
            serf(node, t - ms(979), "agent: joining: [\(ha.address)] replay: false")
            for other in nodes where other.alive { serf(node, t - ms(970), "serf: EventMemberJoin: \(other.name) \(other.address)") }
            serf(node, t - ms(960), "agent: joined: 1 nodes")
            serf(node, t - ms(959), "agent: Join completed. Synced with 1 initial agents")
            emit(node, t - ms(1200), .webapp, "webapp: started, listening on :80")
        } else {
            emit(node, t - ms(1300), .haproxy, "haproxy: waiting for the LB controller to write /etc/haproxy/haproxy.cfg")
            render(trigger: ["start"], at: t - ms(1250), method: "file")
            emit(node, t - ms(1100), .haproxy, "[NOTICE]   (\(haproxyPid)) : New worker (\(haproxyPid + 10)) forked")
            emit(node, t - ms(1099), .haproxy, "[NOTICE]   (\(haproxyPid)) : Loading success.")
        }
        let inventory = Inventory(
            node: node.name, hostname: node.name, addresses: [node.address], role: node.role, tags: ["role": node.role],
            image: node.role == "ha" ? "muster/ha:0.6.0" : "muster/webapp:0.6.0", agentVersion: "0.6.0",
            services: services.map { ServiceState(name: $0, up: true, pid: node.pids[$0], since: node.servicesSince, wantedUp: true) })
        journal(node, JournalEntry(t: t - ms(900), event: .inventory, observer: node.name, inventory: inventory))
    }

    /// The LB controller on ha renders, checks and applies a configuration.
    mutating func render(trigger: [String], at t: Int64, method fixedMethod: String? = nil) {
        configVersion += 1
        let servers = web.filter(\.alive).sorted { $0.name < $1.name }
        let text = haproxyConfig(version: configVersion, at: t, servers: servers.map { ($0.name, $0.address) })
        let diff = ConfigDiff.unified(from: configText, to: text)
        configText = text
        let method = fixedMethod ?? (rng.chance(0.9) ? "runtime" : "reload")
        let duration = method == "reload" ? rng.range(120, 900) : method == "runtime" ? rng.range(40, 400) : rng.range(600, 1200)
        let done = t + ms(Double(duration))
        let config = ConfigApply(
            version: configVersion, sha256: SHA256.hex(text), text: text, diff: diff, trigger: trigger, method: method,
            durationMilliseconds: duration, outcome: .applied, message: nil, servers: servers.map(\.name))
        journal(ha, JournalEntry(t: done, event: .config, observer: ha.name, config: config))
        agentLog(
            ha, done,
            "message= servers=[\(servers.map { "\"\($0.name)\"" }.joined(separator: ", "))] trigger=[\(trigger.map { "\"\($0)\"" }.joined(separator: ", "))] [MusterAgent] config version \(configVersion): applied via \(method)")
        if method == "reload" {
            emit(ha, done - ms(5), .haproxy, "[NOTICE]   (\(haproxyPid)) : Reloading HAProxy")
            nextPid += rng.range(2, 20)
            emit(ha, done - ms(3), .haproxy, "[NOTICE]   (\(haproxyPid)) : New worker (\(nextPid)) forked")
            emit(ha, done - ms(2), .haproxy, "[NOTICE]   (\(haproxyPid)) : Loading success.")
        }
    }

    /// HAProxy's `show stat`, sampled by the LB controller every 10 s.
    mutating func stats(at t: Int64) {
        guard ha.alive else { return }
        let servers = web.filter(\.alive)
        var stats = [ServerStats(
            proxy: "http-in", name: "FRONTEND", status: "OPEN", currentSessions: rng.below(40),
            totalSessions: web.reduce(0) { $0 + $1.sessions }, responses2xx: web.reduce(0) { $0 + $1.responses2xx },
            responses5xx: web.reduce(0) { $0 + $1.responses5xx })]
        for server in servers {
            stats.append(ServerStats(
                proxy: "nodes", name: server.name, status: "UP", currentSessions: rng.below(5), totalSessions: server.sessions,
                responses2xx: server.responses2xx, responses5xx: server.responses5xx))
        }
        stats.append(ServerStats(
            proxy: "nodes", name: "BACKEND", status: "UP", currentSessions: rng.below(40), totalSessions: web.reduce(0) { $0 + $1.sessions },
            responses2xx: web.reduce(0) { $0 + $1.responses2xx }, responses5xx: web.reduce(0) { $0 + $1.responses5xx }))
        journal(ha, JournalEntry(t: t, event: .haproxyStats, observer: ha.name, stats: stats))
    }

    /// About once an hour someone deploys: a Serf user event every node receives, and new assets.
    mutating func deploy(at t: Int64) {
        let release = "r\(configVersion)-\(rng.below(10_000))"
        for node in nodes where node.alive {
            let seen = t + ms(rng.unit() * 200)
            serf(node, seen, "agent: Received event: user-event: deploy")
            journal(node, JournalEntry(t: seen + ms(5), event: .user, observer: node.name, user: UserEvent(name: "deploy", payload: release, ltime: Int64(t / 3_600_000_000_000))))
        }
        assets = newAssets()
    }

    // MARK: Shipping

    /// Each node's lines written before `cutoff`, in file order, as its agent ships them: one
    /// batch per node, in a random node order. Returns (records, journal entries by record index).
    mutating func ship(before cutoff: Int64) -> [([LogRecord], [Int: JournalEntry])] {
        var order = Array(nodes.indices)
        rng.shuffle(&order)
        var batches: [([LogRecord], [Int: JournalEntry])] = []
        for index in order {
            let node = nodes[index]
            guard !node.buffer.isEmpty else { continue }
            node.buffer.sort { $0.t != $1.t ? $0.t < $1.t : $0.seq < $1.seq }
            let count = node.buffer.firstIndex { $0.t >= cutoff } ?? node.buffer.count
            guard count > 0 else { continue }
            var records: [LogRecord] = []
            records.reserveCapacity(count)
            var journal: [Int: JournalEntry] = [:]
            for line in node.buffer[..<count] {
                var file = node.files[line.source.rawValue]
                let length = labelBytes + Int64(line.message.utf8.count) + 1
                if !file.open || (line.source != .events && file.size + length > 1_000_000) {
                    let first = tai64nLabel(line.t) + " " + line.message + "\n"
                    file = LogFile(generation: String(rng.next() & 0xf_ffff, radix: 16) + "-" + String(fnv1a(first.utf8), radix: 16), size: 0, open: true)
                }
                if let entry = line.journal { journal[records.count] = entry }
                records.append(LogRecord(
                    time: line.t, node: node.name,
                    origin: Origin(agent: node.name, source: line.source.id, generation: file.generation, offset: file.size),
                    message: line.message))
                file.size += length
                node.files[line.source.rawValue] = file
            }
            node.buffer.removeFirst(count)
            batches.append((records, journal))
        }
        return batches
    }

    var pendingMembershipChanges: Int { schedule.count - scheduleIndex }
}

// MARK: - The store

struct Summary: Codable {
    var generator_version: Int
    var lines: Int
    var nodes: Int
    var changes: Int
    var marks: Int
    var hours: Double
    var seed: UInt64
    var stored_lines: Int
    var membership_rows: Int
    var config_rows: Int
    var inventory_rows: Int
    var event_rows: Int
    var stream_rows: Int
    var journal_lines: Int
    var first_time: String
    var last_time: String
    var rare_word: String
    var rare_word_lines: Int
    var insert_seconds: Double
    var index_seconds: Double
    var total_seconds: Double
    var database_bytes: Int64
    var synchronous: String
    var chunk: Int
    var index_chunk: Int
    var sqlite_version: String
    var reused: Bool?
}

func fileSize(_ path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : 0
}

func sidecarPath(_ database: String) -> String { database + ".json" }

/// The cached database, if it was made by this generator with these parameters and is complete.
func reusable(_ options: Options) -> Summary? {
    guard !options.fresh, FileManager.default.fileExists(atPath: options.database),
        let data = FileManager.default.contents(atPath: sidecarPath(options.database)),
        var summary = try? JSONDecoder().decode(Summary.self, from: data),
        summary.generator_version == generatorVersion, summary.lines == options.lines, summary.nodes == options.nodes,
        summary.changes == options.changes, summary.marks == options.marks, summary.hours == options.hours,
        summary.seed == options.seed
    else { return nil }
    do {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: options.database, configuration: configuration)
        let indexed = try SearchIndex(storePath: options.database).progress().indexedThrough
        let (count, maxID, changes) = try queue.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM logs") ?? 0,
                try Int64.fetchOne(db, sql: "SELECT max(id) FROM logs") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM membership") ?? 0
            )
        }
        guard count == options.lines, indexed == maxID, changes == options.changes else {
            note("cached database \(options.database) is incomplete (\(count) lines, indexed through \(indexed) of \(maxID)); regenerating")
            return nil
        }
    } catch {
        note("cannot read cached database \(options.database): \(error); regenerating")
        return nil
    }
    summary.reused = true
    summary.database_bytes = fileSize(options.database)
    return summary
}

func emitSummary(_ summary: Summary) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try! encoder.encode(summary), as: UTF8.self))
}

// MARK: - The scale-out store

/// The result of an async call, handed to the thread that waits for it.
final class ResultBox<Value>: @unchecked Sendable {
    var result: Result<Value, any Error>?
}

/// Runs `body` on the concurrency pool and waits for it: the generator itself stays a plain,
/// synchronous loop on the main thread.
func blocking<Value: Sendable>(_ body: @escaping @Sendable () async throws -> Value) throws -> Value {
    let box = ResultBox<Value>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// What the run wrote into the scale-out store, and what the store reads back.
struct ScaleOutSummary: Codable {
    var generator_version: Int
    var lines: Int
    var nodes: Int
    var changes: Int
    var marks: Int
    var hours: Double
    var seed: UInt64
    var store: String
    var clickhouse_database: String
    var shards: [[String]]
    var etcd: [String]
    var accepted_lines: Int
    var duplicate_lines: Int
    var commits: Int
    var stored_lines: Int
    var membership_rows: Int
    var config_rows: Int
    var event_rows: Int
    var mark_rows: Int
    var journal_lines: Int
    var first_time: String
    var last_time: String
    var rare_word: String
    var insert_seconds: Double
    var total_seconds: Double
    var chunk: Int
}

/// The collector's store on the scale-out path, written the way `IngestWriter` writes it: one
/// `commit` per group of batches, in order, and marks through the store between commits. One
/// chunk is in flight at a time while the caller generates the next.
final class ScaleOutWriter: @unchecked Sendable {
    let settings: ScaleOutSettings
    let store: ScaleOutStore
    private let queue = DispatchQueue(label: "muster-bench-history.scale-out")
    private let slot = DispatchSemaphore(value: 1)
    // Touched on `queue` only; read after `finish()`.
    private(set) var accepted = 0
    private(set) var duplicates = 0
    private(set) var commits = 0

    /// Reads the `store:` section of the collector config at `configFile` (a relative
    /// `password_file` is relative to the file, as for the collector and `logq --store`), opens
    /// the store as a collector does and checks that it is empty.
    init(configFile: String) {
        struct StoreSection: Decodable { var store: ScaleOutSettings? }
        let text: String
        do {
            text = try String(contentsOfFile: configFile, encoding: .utf8)
        } catch {
            fail("cannot read \(configFile): \(error.localizedDescription)")
        }
        let section: StoreSection
        do {
            section = try YAMLDecoder().decode(StoreSection.self, from: text)
        } catch {
            fail("--store \(configFile): \(error)")
        }
        guard let found = section.store else { fail("--store \(configFile): the file has no store: section") }
        let settings = found.resolvingPaths(relativeTo: (configFile as NSString).deletingLastPathComponent)
        self.settings = settings
        do {
            try settings.validate()
            // The collector's own default ledger settings (membership.snapshot_settle_ms), as
            // the SQLite path's `ClusterLedger()`.
            store = try blocking { try await settings.openStore(ledger: ClusterLedger()) }
            let history = try settings.openHistory()
            let lines = try history.stats(now: Timestamp.now()).sources.reduce(0) { $0 + $1.lines }
            let marks = try history.marks().count
            guard lines == 0, marks == 0 else {
                fail("the store of \(configFile) already holds \(lines) lines and \(marks) marks; write into a fresh one "
                    + "(another clickhouse.database and etcd namespace, or new servers)")
            }
        } catch {
            fail("cannot open the store of \(configFile): \(error)")
        }
    }

    /// Commits `batches` as one group, then records `marks`; returns once the chunk before is
    /// stored (so at most one waits while another is written).
    func write(_ batches: [IngestBatch], marks: [(name: String, note: String, t: Int64)], expecting lineCount: Int) {
        slot.wait()
        let store = store
        queue.async {
            defer { self.slot.signal() }
            do {
                let counts = try blocking { try await store.commit(batches).counts }
                let accepted = counts.reduce(0) { $0 + $1.accepted }
                let duplicates = counts.reduce(0) { $0 + $1.duplicates }
                guard accepted + duplicates == lineCount else {
                    fail("expected \(lineCount) lines in a commit, the store counted \(accepted) new and \(duplicates) duplicates")
                }
                self.accepted += accepted
                self.duplicates += duplicates
                self.commits += 1
                for mark in marks {
                    _ = try blocking { try await store.recordMark(name: mark.name, note: mark.note, at: mark.t) }
                }
            } catch {
                fail("commit into the store failed: \(error)")
            }
        }
    }

    /// Waits until everything handed to `write` is stored.
    func finish() {
        queue.sync {}
    }
}

func run() {
    let options = parseOptions()
    if !options.dryRun, options.store.isEmpty, let summary = reusable(options) {
        note("reusing \(options.database) (same parameters, \(summary.stored_lines) lines; --fresh to regenerate)")
        emitSummary(summary)
        return
    }

    var database: DatabasePool?
    var scaleOut: ScaleOutWriter?
    if !options.dryRun, !options.store.isEmpty {
        scaleOut = ScaleOutWriter(configFile: options.store)
    } else if !options.dryRun {
        for suffix in ["", "-wal", "-shm", ".json", "-search", "-search-wal", "-search-shm"] { unlink(options.database + suffix) }
        do {
            // NORMAL, not FULL: a benchmark fixture need not survive power loss, and the file
            // format is the same either way.
            database = try Schema.openForWriting(path: options.database, synchronous: .normal)
        } catch {
            fail("cannot create \(options.database): \(error)")
        }
    }

    var generator = HistoryGenerator(options: options)
    let ledger = ClusterLedger()
    let began = monotonicSeconds()
    var stored = 0
    var journalLines = 0
    var marksRecorded = 0
    let linesPerMark = options.lines / options.marks
    var pending: [([LogRecord], [Int: JournalEntry])] = []
    var pendingCount = 0
    var firstTime = Int64.max
    var lastTime = Int64.min
    var sourceCounts: [String: Int] = [:]
    var nextProgress = 1_000_000

    func commit() {
        guard !pending.isEmpty else { return }
        let batches = pending
        let base = stored
        // Marks: task-0 at the start of the history, task-k at the time of the (k × lines/marks)-th line.
        var marks: [(String, Int64)] = []
        if marksRecorded == 0 {
            marks.append(("task-0", generator.start))
            marksRecorded = 1
        }
        var index = base
        for (records, _) in batches {
            for record in records {
                if marksRecorded < options.marks, index == marksRecorded * linesPerMark {
                    marks.append(("task-\(marksRecorded)", record.time))
                    marksRecorded += 1
                }
                firstTime = min(firstTime, record.time)
                lastTime = max(lastTime, record.time)
                sourceCounts[record.source, default: 0] += 1
                index += 1
            }
        }
        journalLines += batches.reduce(0) { $0 + $1.1.count }
        if let database {
            let marksToRecord = marks
            let lineCount = pendingCount
            do {
                try database.write { db in
                    var entries: [JournalEntry] = []
                    let counts = try LogWriter.insert(batches.map(\.0), into: db) { batch, record in
                        if let entry = batches[batch].1[record] { entries.append(entry) }
                    }
                    let accepted = counts.reduce(0) { $0 + $1.accepted }
                    guard accepted == lineCount else { fail("expected \(lineCount) new rows, stored \(accepted)") }
                    try ledger.apply(entries, in: db)
                    for (name, t) in marksToRecord {
                        _ = try Mark.record(name: name, note: "benchmark task \(name.dropFirst(5)) (~\(linesPerMark) lines)", at: t, in: db)
                    }
                }
            } catch {
                fail("insert failed: \(error)")
            }
        } else if let scaleOut {
            scaleOut.write(
                batches.map { IngestBatch(records: $0.0, journal: $0.1) },
                marks: marks.map { (name: $0.0, note: "benchmark task \($0.0.dropFirst(5)) (~\(linesPerMark) lines)", t: $0.1) },
                expecting: pendingCount)
        }
        stored += pendingCount
        pending.removeAll(keepingCapacity: true)
        pendingCount = 0
        if stored >= nextProgress {
            let elapsed = monotonicSeconds() - began
            note("\(stored) lines stored, \(Int(Double(stored) / elapsed)) lines/s")
            nextProgress += 1_000_000
        }
    }

    var second = generator.start
    while stored + pendingCount < options.lines {
        generator.step(second)
        second += Timestamp.nanosPerSecond
        // Agents ship what was written a second or two ago (a node's start-up lines are
        // written up to 1.4 s before its join is scheduled).
        for (records, journal) in generator.ship(before: second - 2 * Timestamp.nanosPerSecond) {
            var records = records
            var journal = journal
            let room = options.lines - stored - pendingCount
            if records.count > room {
                records.removeLast(records.count - room)
                journal = journal.filter { $0.key < room }
            }
            guard !records.isEmpty else { continue }
            pending.append((records, journal))
            pendingCount += records.count
            if stored + pendingCount >= options.lines { break }
        }
        if pendingCount >= options.chunk { commit() }
    }
    commit()
    let insertSeconds = monotonicSeconds() - began
    if options.dryRun {
        note("dry run: \(stored) lines over \(Double(lastTime - firstTime) / 3.6e12) h, \(journalLines) journal lines, \(generator.configVersion) configs, sources \(sourceCounts.sorted { $0.key < $1.key })")
        note("\(Int(insertSeconds)) s to generate (no store)")
    }
    if generator.pendingMembershipChanges > 0 {
        fail("the line budget ran out before \(generator.pendingMembershipChanges) membership changes; lower the request rate")
    }
    if options.dryRun { return }
    if let scaleOut {
        finishScaleOut(scaleOut, options: options, began: began, journalLines: journalLines, firstTime: firstTime, lastTime: lastTime)
        note("sources: \(sourceCounts.sorted { $0.key < $1.key })")
        return
    }
    guard let database else { return }

    // The full-text index, to completion, in the collector's chunks.
    note("\(stored) lines stored in \(Int(insertSeconds)) s; building the search index")
    let indexBegan = monotonicSeconds()
    let searchIndex: SearchIndex
    do {
        searchIndex = try SearchIndex(storePath: options.database)
        while true {
            let progress = try searchIndex.indexNextChunk(maxRows: options.indexChunk)
            if progress.pending == 0 { break }
        }
        try database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    } catch {
        fail("indexing failed: \(error)")
    }
    let indexSeconds = monotonicSeconds() - indexBegan

    do {
        let summary = try database.read { db in
            Summary(
                generator_version: generatorVersion, lines: options.lines, nodes: options.nodes, changes: options.changes,
                marks: options.marks, hours: options.hours, seed: options.seed,
                stored_lines: try Int.fetchOne(db, sql: "SELECT count(*) FROM logs") ?? 0,
                membership_rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM membership") ?? 0,
                config_rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM configs") ?? 0,
                inventory_rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM inventory") ?? 0,
                event_rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0,
                stream_rows: try Int.fetchOne(db, sql: "SELECT count(*) FROM streams") ?? 0,
                journal_lines: journalLines,
                first_time: Timestamp.format(firstTime), last_time: Timestamp.format(lastTime), rare_word: rareWord,
                rare_word_lines: try searchIndex.count(matching: "\"\(rareWord)\""),
                insert_seconds: insertSeconds, index_seconds: indexSeconds, total_seconds: monotonicSeconds() - began,
                database_bytes: fileSize(options.database), synchronous: Schema.Synchronous.normal.rawValue, chunk: options.chunk,
                index_chunk: options.indexChunk,
                sqlite_version: try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?", reused: false)
        }
        guard summary.stored_lines == options.lines else { fail("stored \(summary.stored_lines) lines, expected \(options.lines)") }
        guard summary.membership_rows == options.changes else {
            fail("the ledger recorded \(summary.membership_rows) membership changes, expected \(options.changes)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        // Written last: its presence says the database is complete.
        guard FileManager.default.createFile(atPath: sidecarPath(options.database), contents: try encoder.encode(summary)) else {
            fail("cannot write \(sidecarPath(options.database))")
        }
        note("sources: \(sourceCounts.sorted { $0.key < $1.key })")
        emitSummary(summary)
    } catch {
        fail("summary failed: \(error)")
    }
}

/// Waits for the last commit, reads the store back and checks it holds the whole history.
func finishScaleOut(_ writer: ScaleOutWriter, options: Options, began: Double, journalLines: Int, firstTime: Int64, lastTime: Int64) {
    note("waiting for the last commit")
    writer.finish()
    let insertSeconds = monotonicSeconds() - began
    do {
        let history = try writer.settings.openHistory()
        let summary = ScaleOutSummary(
            generator_version: generatorVersion, lines: options.lines, nodes: options.nodes, changes: options.changes,
            marks: options.marks, hours: options.hours, seed: options.seed, store: options.store,
            clickhouse_database: writer.settings.clickhouse.database, shards: writer.settings.clickhouse.shards,
            etcd: writer.settings.etcd.endpoints, accepted_lines: writer.accepted, duplicate_lines: writer.duplicates,
            commits: writer.commits,
            stored_lines: Int(try history.stats(now: Timestamp.now()).sources.reduce(0) { $0 + $1.lines }),
            membership_rows: try history.changes(since: nil, until: nil, members: []).count,
            config_rows: try history.configRecords(node: nil, since: nil, until: nil, withText: false).count,
            event_rows: try history.events(since: nil, until: nil).count,
            mark_rows: try history.marks().count,
            journal_lines: journalLines,
            first_time: Timestamp.format(firstTime), last_time: Timestamp.format(lastTime), rare_word: rareWord,
            insert_seconds: insertSeconds, total_seconds: monotonicSeconds() - began, chunk: options.chunk)
        guard summary.accepted_lines == options.lines, summary.stored_lines == options.lines else {
            fail("the store took \(summary.accepted_lines) new lines and reads back \(summary.stored_lines), expected \(options.lines)")
        }
        guard summary.membership_rows == options.changes else {
            fail("the ledger recorded \(summary.membership_rows) membership changes, expected \(options.changes)")
        }
        guard summary.mark_rows == options.marks else { fail("the store holds \(summary.mark_rows) marks, expected \(options.marks)") }
        note("\(summary.stored_lines) lines in \(Int(insertSeconds)) s (\(Int(Double(summary.stored_lines) / insertSeconds)) lines/s), \(summary.commits) commits")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(summary), as: UTF8.self))
    } catch {
        fail("reading the store back failed: \(error)")
    }
}

run()
