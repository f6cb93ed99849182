import Foundation
import Hummingbird
import Logging
import MusterWire
import NIOCore

/// The lab's web node: `GET /` answers `{"hello": "world!", "ip": …, "host": …,
/// "sessionViews": n, "id": …}` and keeps a session in the `NODESESSID` cookie, so a
/// client can see which node served it and whether its session survived. One line per
/// request goes to stdout (for s6-log, and so to the agent).
public struct DemoWebapp: Sendable {
    public struct Settings: Sendable {
        public var host = "0.0.0.0"
        public var port = 3000
        /// Reported as `host`; the node's name.
        public var nodeName = ProcessInfo.processInfo.hostName
        /// Reported as `ip`; by default the first non-loopback IPv4 address.
        public var ip = DemoWebapp.firstIPv4Address() ?? "127.0.0.1"
        public var maxSessions = 100_000

        public init() {}
    }

    public static let sessionCookie = "NODESESSID"

    /// The lab app's answer, keys in the lab's order.
    static func answer(ip: String, host: String, sessionViews: Int, id: String) -> String {
        "{\"hello\":\"world!\",\"ip\":\(JSONText.quoted(ip)),\"host\":\(JSONText.quoted(host)),"
            + "\"sessionViews\":\(sessionViews),\"id\":\(JSONText.quoted(id))}"
    }

    let settings: Settings
    let sessions: SessionStore
    let requestLog: RequestLog

    public init(settings: Settings, requestLog: @escaping @Sendable (String) -> Void = RequestLog.standardOutput) {
        self.settings = settings
        self.sessions = SessionStore(capacity: settings.maxSessions)
        self.requestLog = RequestLog(write: requestLog)
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: requestLog)
        router.get("/") { request, _ in self.answer(request) }
        router.get("/healthz") { _, _ in "ok\n" }
        return router
    }

    private func answer(_ request: Request) -> Response {
        let (id, views) = sessions.view(request.cookies[Self.sessionCookie]?.value)
        let body = Self.answer(ip: settings.ip, host: settings.nodeName, sessionViews: views, id: id)
        var response = Response(
            status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        response.setCookie(Cookie(name: Self.sessionCookie, value: id, path: "/", httpOnly: true))
        return response
    }

    public func application() -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "demo-webapp"),
            logger: Logger(label: "demo-webapp"))
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    public static func firstIPv4Address() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            let flags = Int32(entry.pointee.ifa_flags)
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == UInt8(AF_INET),
                flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0
            else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let bytes = host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                return String(decoding: bytes, as: UTF8.self)
            }
        }
        return nil
    }
}

/// One line per request: method, path, status and duration, written straight to
/// file descriptor 1 so each line reaches s6-log when it happens, not when a buffer fills.
public struct RequestLog: RouterMiddleware {
    public typealias Context = BasicRequestContext
    let write: @Sendable (String) -> Void

    public static let standardOutput: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { _ = Foundation.write(1, $0.baseAddress, $0.count) }
    }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, status: Int(response.status.code), started: started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            log(request, status: Int(status), started: started)
            throw error
        }
    }

    private func log(_ request: Request, status: Int, started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        write("\(request.method) \(request.uri.path) \(status) \(String(format: "%.2f", milliseconds))ms")
    }
}
