#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers

/// At most `maxConnections` client connections at once, the way Hummingbird's
/// `MaximumAvailableConnections` does it (the listener stops accepting; new connections wait
/// in the kernel's backlog until one closes), but saying so: a log line when the limit is
/// reached, one when there is room again, and a count of how often it was reached. Without a
/// limit, idle connections took every descriptor and ingest stopped without a word.
struct ConnectionLimit: AvailableConnectionsDelegate {
    let maxConnections: Int
    let metrics: CollectorMetrics
    let logger: Logger
    private var open = 0
    private var saturated = false

    init(maxConnections: Int, metrics: CollectorMetrics, logger: Logger) {
        self.maxConnections = maxConnections
        self.metrics = metrics
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        metrics.openConnections.set(Int64(open))
        if open >= maxConnections, !saturated {
            saturated = true
            metrics.connectionLimitReached.increment()
            logger.warning(
                "connection limit reached; new connections wait until one closes",
                metadata: ["max_connections": "\(maxConnections)"])
        }
    }

    mutating func connectionClosed() {
        open -= 1
        metrics.openConnections.set(Int64(open))
        if saturated, open < maxConnections {
            saturated = false
            logger.info("below the connection limit again", metadata: ["open": "\(open)"])
        }
    }

    func isAcceptingNewConnections() -> Bool { open < maxConnections }
}

/// The process's descriptor limit. Each connection, the store's files and its WAL take one;
/// a server should use what the administrator allows (the hard limit), not the soft default
/// of 1024 a shell hands down, as nginx and Go's runtime do.
enum DescriptorLimit {
    /// Raises the soft limit to the hard one; returns the soft limit in effect afterwards.
    @discardableResult
    static func raiseToHard() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }
}
