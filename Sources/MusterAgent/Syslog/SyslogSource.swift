#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging
import MusterWire
import Synchronization

/// One syslog message, ready for the batcher.
public struct SyslogLine: Sendable {
    /// Unix nanoseconds: the message's own timestamp, or when it was received.
    public var time: Int64
    /// 0, 1, 2, … in receive order, per `SyslogSource` instance: the line's place in its origin.
    public var sequence: Int64
    /// The MSG part (what the sender logged), without the syslog header.
    public var message: String
    /// The header's fields (`facility`, `severity`, `host`, `app`, `procid`, `msgid`, `sd`, when
    /// present) plus the source's parser's fields of `message`.
    public var fields: [String: FieldValue]

    public init(time: Int64, sequence: Int64, message: String, fields: [String: FieldValue]) {
        self.time = time
        self.sequence = sequence
        self.message = message
        self.fields = fields
    }
}

/// Running totals since the source was created.
public struct SyslogCounters: Sendable, Equatable {
    /// Datagrams received (each becomes one line).
    public var received = 0
    /// Datagrams that fit no syslog format; kept whole, with their receive time.
    public var malformed = 0
    /// Datagrams whose timestamp names no time we keep (year 9999, Feb 30th); stored with
    /// their receive time.
    public var unreadableTimes = 0
    /// Datagrams longer than `SyslogSource.maxDatagramBytes`; their start is kept.
    public var truncated = 0
    /// How often the buffer filled up and the source stopped reading its sockets.
    public var bufferFullPauses = 0
    /// Datagrams the kernel dropped because the socket's receive buffer was full (UDP only:
    /// a unix datagram sender is refused instead, and HAProxy then drops the line itself).
    public var kernelDrops = 0
    /// Lines waiting to be read now.
    public var buffered = 0

    public init() {}
}

/// Receives syslog datagrams (UDP and/or unix datagram sockets) on its own thread, parses
/// their headers and keeps them in a bounded buffer that the batcher drains with `read`
/// (which also applies the source's `parse`, so the receive thread only empties the socket).
///
/// A datagram sender cannot be told to slow down. When the buffer is full the source stops
/// reading its sockets: the kernel's receive buffer (asked for 4 MiB) absorbs the burst, and
/// beyond that the kernel drops. That is counted (`bufferFullPauses`, `kernelDrops`) and
/// logged, never silent. Lines are durable only once the agent has spooled them.
public final class SyslogSource: Sendable {
    public let sourceID: String
    public let config: AgentConfig.SyslogSourceConfig
    /// The generation of the lines' origin: datagrams cannot be read again, so their place is
    /// this run of the agent and their `sequence`.
    public let runGeneration: String
    private let agentID: String
    private let logger: Logger
    private let state = Mutex(State())

    /// Longest datagram kept whole (UDP's own limit is 65,507 bytes).
    public static let maxDatagramBytes = 64 << 10
    /// What each socket asks the kernel to buffer while the source is not reading.
    public static let receiveBufferBytes = 4 << 20
    /// However many messages `bufferMessages` allows, buffered message text stays below this.
    public static let maxBufferedBytes = 64 << 20
    /// How long the receive thread sleeps in poll() without news; stop() and read() wake it earlier.
    private static let pollTimeoutMilliseconds: Int32 = 1000
    /// Datagrams read between two hand-overs to the buffer (one lock each).
    private static let receiveBatch = 256

    private struct State {
        var lines: [SyslogLine] = []
        /// `lines[head...]` are still to be read (popping from the front is O(n) otherwise).
        var head = 0
        var bufferedBytes = 0
        var nextSequence: Int64 = 0
        var counters = SyslogCounters()
        /// `counters` as last added to the agent's metrics.
        var published = SyslogCounters()
        var paused = false
        var stopping = false
        var running: Running?

        var count: Int { lines.count - head }
    }

    /// What exists only between start and stop.
    private struct Running {
        var sockets: [SyslogSocket]
        /// A pipe whose write end wakes the receive thread (stop, or room in the buffer again).
        var wakeRead: Int32
        var wakeWrite: Int32
        var finished: DispatchSemaphore
    }

    public init(
        config: AgentConfig.SyslogSourceConfig, agentID: String, logger: Logger,
        runGeneration: String = SourceContext.newRunGeneration()
    ) {
        self.sourceID = config.id
        self.config = config
        self.runGeneration = runGeneration
        self.agentID = agentID
        var logger = logger
        logger[metadataKey: "source"] = "\(config.id)"
        self.logger = logger
    }

    deinit { stop() }

    /// The addresses bound, with a port 0 resolved to the port the kernel chose; empty when stopped.
    public var boundAddresses: [String] {
        state.withLock { $0.running?.sockets.map(\.bound.description) ?? [] }
    }

    public var counters: SyslogCounters {
        state.withLock { state in
            var counters = state.counters
            counters.buffered = state.count
            return counters
        }
    }

    /// Binds every listen address and starts the receive thread. Nothing stays bound when one
    /// address fails. Calling it while running does nothing.
    public func start() throws(SyslogError) {
        guard state.withLock({ $0.running == nil }) else { return }
        var addresses: [SyslogListenAddress] = []
        for text in config.listen {
            do {
                addresses.append(try SyslogListenAddress(parsing: text))
            } catch {
                throw .invalidAddress(source: sourceID, address: text, reason: Self.reason(error))
            }
        }
        var sockets: [SyslogSocket] = []
        for (text, address) in zip(config.listen, addresses) {
            do {
                sockets.append(try SyslogSocket.bind(address, receiveBufferBytes: Self.receiveBufferBytes))
            } catch {
                for socket in sockets { socket.close() }
                throw .cannotBind(source: sourceID, address: text, reason: error.reason)
            }
        }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            for socket in sockets { socket.close() }
            throw .cannotBind(source: sourceID, address: "(wake pipe)", reason: String(cString: strerror(errno)))
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        let bound = sockets
        let running = Running(sockets: bound, wakeRead: ends[0], wakeWrite: ends[1], finished: DispatchSemaphore(value: 0))
        state.withLock {
            $0.stopping = false
            $0.running = running
        }
        let thread = Thread { [self] in
            receiveLoop(sockets: bound, wake: running.wakeRead)
            running.finished.signal()
        }
        thread.name = "syslog-\(sourceID)"
        thread.start()
        for socket in bound where socket.receiveBufferBytes < Self.receiveBufferBytes {
            logger.notice(
                "the kernel granted a smaller receive buffer than asked; raise net.core.rmem_max (or run with CAP_NET_ADMIN) to absorb bigger bursts",
                metadata: ["address": "\(socket.bound)", "granted": "\(socket.receiveBufferBytes)", "asked": "\(Self.receiveBufferBytes)"])
        }
        logger.info(
            "syslog source listening",
            metadata: ["agent": "\(agentID)", "listen": "\(bound.map(\.bound.description))", "buffer_messages": "\(config.bufferMessages)"])
    }

    /// Stops the receive thread, closes the sockets and removes the unix socket files. Lines
    /// already buffered, and datagrams the kernel had queued, stay readable.
    public func stop() {
        let running: Running? = state.withLock { state in
            // A second concurrent stop() returns at once: only one waits for the thread.
            guard let running = state.running, !state.stopping else { return nil }
            state.stopping = true
            Self.wake(running.wakeWrite)
            return running
        }
        guard let running else { return }
        running.finished.wait()
        for socket in running.sockets { socket.close() }
        state.withLock { $0.running = nil }
        Glibc.close(running.wakeRead)
        Glibc.close(running.wakeWrite)
    }

    /// Drains buffered lines in receive order until at least `budget` bytes (at least one line
    /// when any is buffered). Returns the bytes drained, counted as message text plus one per
    /// line (the newline it would have in a file), so 0 means nothing was buffered.
    public func read(budget: Int, into sink: (SyslogLine) -> Void) -> Int {
        guard budget > 0 else { return 0 }
        var bytes = 0
        let taken: ArraySlice<SyslogLine> = state.withLock { state in
            let start = state.head
            while state.head < state.lines.count, bytes < budget {
                bytes += state.lines[state.head].message.utf8.count + 1
                state.head += 1
            }
            let taken = state.lines[start..<state.head]
            state.bufferedBytes -= bytes
            if state.head == state.lines.count {
                state.lines.removeAll(keepingCapacity: true)
                state.head = 0
            } else if state.head >= 4096, state.head * 2 >= state.lines.count {
                state.lines.removeFirst(state.head)
                state.head = 0
            }
            if state.paused, bytes > 0, let running = state.running { Self.wake(running.wakeWrite) }
            return taken
        }
        guard let parser = config.parse else {
            for line in taken { sink(line) }
            return bytes
        }
        for var line in taken {
            if let parsed = parser.parseLine(line.message, messageKey: config.messageKey) {
                line.message = parsed.message
                line.fields.merge(parsed.fields) { header, _ in header }
            }
            sink(line)
        }
        return bytes
    }

    // MARK: Receive thread

    private func receiveLoop(sockets: [SyslogSocket], wake: Int32) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.maxDatagramBytes, alignment: 8)
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)
        defer {
            buffer.deallocate()
            control.deallocate()
        }
        var lastDrops = [UInt32](repeating: 0, count: sockets.count)
        var lastWarning: ContinuousClock.Instant?
        var pausedSince: ContinuousClock.Instant?
        var received: [(SyslogMessage, truncated: Bool)] = []
        received.reserveCapacity(Self.receiveBatch)
        // At stop, one last pass takes what the kernel already queued: those datagrams were
        // sent to us, and closing the socket would drop them uncounted.
        var lastPass = false

        while true {
            let (stopping, room, pausedNow) = state.withLock { state in
                let room = state.bufferedBytes >= Self.maxBufferedBytes ? 0 : max(0, config.bufferMessages - state.count)
                var pausedNow = false
                if room == 0, !state.paused {
                    state.paused = true
                    state.counters.bufferFullPauses += 1
                    pausedNow = true
                } else if room > 0 {
                    state.paused = false
                }
                return (state.stopping, room, pausedNow)
            }
            if lastPass { return }
            if stopping { lastPass = true }
            if pausedNow {
                pausedSince = .now
                if lastWarning.map({ ContinuousClock.now - $0 > .seconds(10) }) ?? true {
                    lastWarning = .now
                    logger.warning(
                        "syslog buffer full: not reading the socket until the pipeline catches up; the kernel drops what its buffer cannot hold",
                        metadata: ["buffered": "\(config.bufferMessages)", "pauses": "\(counters.bufferFullPauses)"])
                }
            } else if room > 0, let since = pausedSince {
                logger.info("syslog buffer has room again; reading the socket", metadata: ["paused_for": "\(ContinuousClock.now - since)"])
                pausedSince = nil
            }

            // Paused: wait only for the wake pipe (read() made room, or stop()).
            let listening = room > 0 || lastPass
            var descriptors = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            if listening {
                descriptors += sockets.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), lastPass ? 0 : Self.pollTimeoutMilliseconds)
            if descriptors[0].revents != 0 { Self.drain(wake) }
            guard ready > 0, listening else { continue }

            // The last pass takes everything queued, over the buffer's limit if need be: the
            // batcher drains the buffer once more after stop().
            var budget = lastPass ? Int.max : min(room, Self.receiveBatch)
            var newDrops = 0
            for (index, socket) in sockets.enumerated() where descriptors[index + 1].revents != 0 {
                while budget > 0, case .datagram(let length, let truncated, let drops) = socket.receive(into: buffer, control: control) {
                    budget -= 1
                    let message = SyslogMessage(
                        parsing: UnsafeRawBufferPointer(rebasing: buffer[..<length]), receivedAt: Timestamp.now())
                    received.append((message, truncated))
                    if let drops, drops != lastDrops[index] {
                        newDrops += Int(drops &- lastDrops[index])
                        lastDrops[index] = drops
                    }
                }
            }
            guard !received.isEmpty || newDrops > 0 else { continue }
            // Only the header is parsed here: this thread's job is to empty the kernel's queue
            // before it overflows. The source's parser runs in read(), on the batcher's time.
            let lines = received.map { message, _ in
                SyslogLine(time: message.time, sequence: 0, message: message.message, fields: message.fields)
            }
            state.withLock { state in
                for var line in lines {
                    line.sequence = state.nextSequence
                    state.nextSequence += 1
                    state.bufferedBytes += line.message.utf8.count + 1
                    state.lines.append(line)
                }
                state.counters.received += received.count
                state.counters.malformed += received.count { $0.0.format == .malformed }
                state.counters.unreadableTimes += received.count { $0.0.timeUnreadable }
                state.counters.truncated += received.count { $0.truncated }
                state.counters.kernelDrops += newDrops
            }
            if newDrops > 0, lastWarning.map({ ContinuousClock.now - $0 > .seconds(10) }) ?? true {
                lastWarning = .now
                logger.warning(
                    "the kernel dropped syslog datagrams: its receive buffer was full",
                    metadata: ["dropped": "\(newDrops)", "dropped_total": "\(counters.kernelDrops)"])
            }
            received.removeAll(keepingCapacity: true)
        }
    }

    /// The counters' growth since the last call.
    func countersSinceLastReport() -> (now: SyslogCounters, before: SyslogCounters) {
        state.withLock { state in
            defer { state.published = state.counters }
            return (state.counters, state.published)
        }
    }

    private static func wake(_ descriptor: Int32) {
        var byte: UInt8 = 1
        _ = write(descriptor, &byte, 1)
    }

    private static func drain(_ descriptor: Int32) {
        var bytes = [UInt8](repeating: 0, count: 64)
        while Glibc.read(descriptor, &bytes, bytes.count) > 0 {}
    }

    private static func reason(_ error: SyslogError) -> String {
        if case .invalidAddress(_, _, let reason) = error { return reason }
        return error.description
    }
}
