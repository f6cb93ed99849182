import MusterWire

extension AgentConfig {
    /// Syslog sources: ids unique among all sources (`ids` holds the file sources' already) and
    /// not reserved, listen addresses well-formed, each bound by one source only.
    func validateSyslogSources(ids: inout Set<String>) throws(AgentConfigError) {
        var addresses = Set<String>()
        for source in syslogSources {
            guard !source.id.isEmpty else { throw .invalid("a syslog source has an empty id") }
            guard source.id != JournalEntry.sourceID else {
                throw .invalid("source id '\(source.id)' is reserved for the event journal (see 'membership')")
            }
            guard source.id != NoticeWriter.sourceID else {
                throw .invalid("source id '\(source.id)' is reserved for the agent's own notices")
            }
            guard ids.insert(source.id).inserted else { throw .invalid("source id '\(source.id)' is used twice") }
            guard !source.listen.isEmpty else {
                throw .invalid("syslog source '\(source.id)' has no listen addresses (e.g. listen: [udp://127.0.0.1:5514])")
            }
            for text in source.listen {
                let address: SyslogListenAddress
                do {
                    address = try SyslogListenAddress(parsing: text)
                } catch {
                    throw .invalid("syslog source '\(source.id)': \(error)")
                }
                // Port 0 (any free port) is for tests; HAProxy's `log` line needs a known port.
                if case .udp(_, 0) = address {
                    throw .invalid("syslog source '\(source.id)': invalid listen address '\(text)': the port must be a number from 1 to 65535")
                }
                guard addresses.insert(address.description).inserted else {
                    throw .invalid("syslog source '\(source.id)': listen address '\(text)' is used twice")
                }
            }
        }
    }
}
