import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@testable import DemoWebapp

@Suite struct DemoWebappTests {
    struct Answer: Decodable, Equatable {
        var hello: String
        var ip: String
        var host: String
        var sessionViews: Int
        var id: String
    }

    final class Lines: Sendable {
        let all = Mutex<[String]>([])
    }

    func app(lines: Lines? = nil, maxSessions: Int = 100) -> DemoWebapp {
        var settings = DemoWebapp.Settings()
        settings.nodeName = "s1"
        settings.ip = "10.0.0.11"
        settings.maxSessions = maxSessions
        return DemoWebapp(settings: settings) { line in lines?.all.withLock { $0.append(line) } }
    }

    func get(_ client: some TestClientProtocol, cookie: String? = nil) async throws -> (Answer, String?) {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = "NODESESSID=\(cookie)" }
        return try await client.execute(uri: "/", method: .get, headers: headers) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            return (try JSONDecoder().decode(Answer.self, from: response.body), response.headers[.setCookie])
        }
    }

    @Test func answersTheLabsJSONAndCountsViewsPerSession() async throws {
        let lines = Lines()
        let webapp = app(lines: lines)
        try await webapp.application().test(.router) { client in
            let raw = try await client.execute(uri: "/", method: .get) { String(buffer: $0.body) }
            #expect(raw.hasPrefix(#"{"hello":"world!","ip":"10.0.0.11","host":"s1","sessionViews":1,"id":""#))
            let (first, setCookie) = try await get(client)
            #expect(first.hello == "world!" && first.ip == "10.0.0.11" && first.host == "s1")
            #expect(first.sessionViews == 1)
            #expect(first.id.count == 32)
            #expect(setCookie?.hasPrefix("NODESESSID=\(first.id)") == true)
            #expect(setCookie?.contains("HttpOnly") == true)
            let (second, _) = try await get(client, cookie: first.id)
            #expect(second.id == first.id && second.sessionViews == 2)
            // An id the server never issued is not adopted.
            let (forged, _) = try await get(client, cookie: "attacker-chosen")
            #expect(forged.id != "attacker-chosen" && forged.sessionViews == 1)
            try await client.execute(uri: "/missing", method: .get) { #expect($0.status == .notFound) }
        }
        let logged = lines.all.withLock { $0 }
        #expect(logged.count == 5)
        #expect(logged[0].hasPrefix("GET / 200 "))
        #expect(logged[4].hasPrefix("GET /missing 404 "))
    }

    @Test func sessionsAreBounded() {
        let store = SessionStore(capacity: 3)
        let first = store.view(nil).id
        for _ in 0..<5 { _ = store.view(nil) }
        #expect(store.count == 3)
        #expect(store.view(first).views == 1, "the oldest session was forgotten")
    }
}
