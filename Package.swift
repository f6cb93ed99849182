// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "muster",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "muster-agent", targets: ["muster-agent"]),
        .executable(name: "muster-collector", targets: ["muster-collector"]),
        .executable(name: "logq", targets: ["logq"]),
        .executable(name: "demo-webapp", targets: ["demo-webapp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The system zlib, for inflating with a hard output limit and end-of-stream checks.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // The system libdeflate, for compressing a whole batch in one call and for CRC-32.
        .systemLibrary(name: "CLibdeflate", path: "Sources/CLibdeflate"),
        // The system SQLite's process-wide settings (`sqlite3_config`, variadic in C).
        .systemLibrary(name: "CSQLiteSettings", path: "Sources/CSQLiteSettings"),
        // glibc's `malloc_trim` and the loaded segments (`dl_iterate_phdr`, which needs
        // _GNU_SOURCE), for the idle agent's memory release.
        .target(name: "CGlibcMemory"),
        // Records, the batch codec (NDJSON + zlib) and its validation: what crosses the wire.
        .target(name: "MusterWire", dependencies: [
            "CZlib", "CLibdeflate",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // The store's contract: protocols with their guarantees and the value types that cross
        // them. No GRDB, no SQL: a backend conforms, callers never see which one they have.
        .target(name: "MusterStore", dependencies: ["MusterWire"]),
        // The embedded default backend: the one module that imports GRDB and holds every SQL
        // string (schema, writer, ledger, indexer, retention, the reads logq makes).
        .target(name: "MusterStoreSQLite", dependencies: [
            "MusterWire", "MusterStore", "CSQLiteSettings",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        // The scale-out backend: lines in a ClickHouse cluster (sharded, replicated), spoken to
        // over ClickHouse's HTTP interface; the one module that holds ClickHouse SQL.
        .target(name: "MusterStoreClickHouse", dependencies: [
            "MusterWire", "MusterStore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            // Which connection errors mean a statement never reached the server.
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The scale-out path's shared state (event ids, the membership ledger, configurations,
        // marks) in etcd, spoken to over etcd's documented HTTP/JSON gateway (`/v3/kv/…`).
        .target(name: "MusterStoreEtcd", dependencies: [
            "MusterWire", "MusterStore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The scale-out store: lines in ClickHouse, the cluster state in etcd, behind the
        // same protocols as the SQLite store.
        .target(name: "MusterStoreScaleOut", dependencies: [
            "MusterWire", "MusterStore", "MusterStoreClickHouse", "MusterStoreEtcd",
        ]),
        // Reading the agent's and the collector's YAML config files (errors that never quote a token).
        .target(name: "MusterConfigFile", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "MusterAgent", dependencies: [
            "MusterWire", "MusterConfigFile", "CGlibcMemory",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            // Connection errors named in the shipper's log (NIOConnectionError, IOError).
            .product(name: "NIOPosix", package: "swift-nio"),
            // The agent's own /metrics and /healthz.
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The LB controller: HAProxy's configuration from the cluster's membership. A component
        // of the agent that `muster-agent` registers; only it links Mustache and Crypto.
        .target(name: "MusterLoadBalancer", dependencies: [
            "MusterAgent", "MusterWire", "MusterConfigFile",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Mustache", package: "swift-mustache"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "MusterCollector", dependencies: [
            "MusterWire", "MusterStore", "MusterStoreSQLite", "MusterStoreScaleOut", "MusterConfigFile",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // logq's library: presentation over MusterStore's protocols; the backends only for
        // `StoreLocation`, the one place logq chooses one.
        .target(name: "LogQuery", dependencies: [
            "MusterWire", "MusterStore", "MusterStoreSQLite", "MusterStoreScaleOut",
            // `--store`: the `store:` section of the collector's config file.
            "MusterConfigFile", .product(name: "Yams", package: "Yams"),
            // `logq mark` is the one command that talks to the collector instead of the file.
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            // `logq mark --ca-file`: the collector's CA as the only trust root.
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The lab's web node, run by the demo cluster and the tests.
        .target(name: "DemoWebapp", dependencies: [
            "MusterWire",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "demo-webapp", dependencies: [
            "DemoWebapp", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "muster-agent", dependencies: [
            "MusterAgent", "MusterLoadBalancer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            // SIGHUP trapped from the start of run() (reload).
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "muster-collector", dependencies: [
            "MusterCollector", "MusterStoreSQLite", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "logq", dependencies: [
            "LogQuery", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Benchmark ceiling: inserts a log file straight through MusterStore (see Benchmarks/README.md).
        .executableTarget(name: "muster-bench-insert", dependencies: ["MusterStore", "MusterStoreSQLite", "MusterStoreClickHouse", "MusterWire"], path: "Benchmarks/InsertCeiling"),
        // logq benchmark: a deterministic 10M-line cluster history through MusterStore (see Benchmarks/README.md).
        .executableTarget(name: "muster-bench-history", dependencies: [
            "MusterStore", "MusterStoreSQLite", "MusterWire",
            // `--store CONFIG`: the same history into ClickHouse + etcd, read from a collector config's `store:` section.
            "MusterStoreScaleOut", .product(name: "Yams", package: "Yams"),
        ], path: "Benchmarks/GenerateHistory"),
        // Fuzzing (docs/notes/fuzzing.md): every parser of outside input as a target that takes
        // arbitrary bytes; `muster-fuzz` runs them under libFuzzer in the fuzz build
        // (scripts/fuzz) and replays the committed corpus in the normal one.
        .target(name: "MusterFuzzTargets", dependencies: [
            "MusterWire", "MusterStore", "MusterStoreSQLite", "MusterStoreClickHouse", "MusterStoreEtcd", "MusterAgent", "MusterLoadBalancer", "MusterCollector",
            "LogQuery",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Fuzz/Targets"),
        .executableTarget(name: "muster-fuzz", dependencies: ["MusterFuzzTargets"], path: "Fuzz/Driver"),
        .testTarget(name: "FuzzCorpusTests", dependencies: ["MusterFuzzTargets"]),
        .testTarget(name: "MusterWireTests", dependencies: ["MusterWire"]),
        .testTarget(name: "MusterStoreTests", dependencies: ["MusterStore", "MusterStoreSQLite"]),
        // The store contract's guarantees, written once against the protocols; every backend
        // listed in StoreBackends.swift runs all of them.
        .testTarget(name: "MusterStoreConformanceTests", dependencies: [
            "MusterStore", "MusterStoreSQLite", "MusterStoreClickHouse", "MusterStoreEtcd", "MusterStoreScaleOut", "MusterWire",
            "MusterTestSupport",
        ]),
        // What more than one test target needs: running a program to its end (posix_spawn).
        .target(name: "MusterTestSupport", path: "Tests/TestSupport"),
        // The config file as `muster-agent` reads it includes the LB controller's `lb:` section.
        .testTarget(name: "MusterAgentTests", dependencies: ["MusterAgent", "MusterLoadBalancer", "MusterConfigFile"]),
        .testTarget(name: "MusterLoadBalancerTests", dependencies: ["MusterLoadBalancer", "MusterAgent", "MusterWire"]),
        .testTarget(name: "MusterCollectorTests", dependencies: [
            "MusterCollector", "MusterStore", "MusterStoreSQLite",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "DemoWebappTests", dependencies: [
            "DemoWebapp", .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "LogQueryTests", dependencies: ["LogQuery", "MusterStore", "MusterStoreSQLite"]),
        // Starts the real binaries as processes on loopback.
        .testTarget(name: "EndToEndTests", dependencies: [
            "MusterWire", "MusterStore", "MusterStoreSQLite", "MusterAgent", "muster-agent", "muster-collector", "logq",
            "MusterTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
    ]
)
