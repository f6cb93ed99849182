#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Which generation a file holds: its own new one, one resumed from a checkpoint, or one it
/// continues as a copy; and what happens when a file is truncated in place.
extension FileTailer {
    /// What a new file is.
    enum Resolution {
        /// Not decided yet: it may be a copy, but not enough of it can be compared. Look again
        /// at the next scan.
        case wait
        /// Another copy of a generation that a copy already carries.
        case join(FilePosition.Generation)
        /// A generation no open file carries any more. `restore`: where to resume it when it was
        /// loaded from the state file (from the checkpoint), with the CRC of the bytes before
        /// that offset when it was computed on the way.
        case revive(FilePosition.Generation, restore: (offset: Int64, crc: UInt32?)?)
        /// A generation of its own, read from `offset` (non-zero only from a checkpoint).
        case fresh(FilePosition.Generation, offset: Int64)
    }

    enum Verdict {
        case same(restore: (offset: Int64, crc: UInt32?)?)
        case different
        /// `patient`: its original is still open, so waiting loses nothing and has no deadline.
        case undecided(patient: Bool)
    }

    struct Undecided {
        var since: ContinuousClock.Instant
        /// Size when last compared with a still-open original that it agreed with; unchanged,
        /// the comparison is not repeated.
        var patientAt: (size: Int64, generation: FilePosition.Generation)?
    }

    // MARK: New files

    /// False when no descriptor was left for it (it is tried again at the next scan).
    @discardableResult
    func attach(_ path: String, now: ContinuousClock.Instant) -> Bool {
        guard let descriptor = openCounted(path) else { return !filesWaitingForDescriptor }
        // A file without a complete first line has no identity yet and nothing to ship.
        guard let probe = FileIdentity.probe(descriptor: descriptor), let identity = probe.identity else {
            closeCounted(descriptor)
            return true
        }
        let key = InodeKey(device: probe.device, inode: probe.inode)
        guard files[key] == nil else {
            // Renamed between the scan's stat and this open; the next scan sorts it out.
            closeCounted(descriptor)
            return true
        }
        var file = OpenFile(path: path, descriptor: descriptor, key: key, identity: identity, lastDataAt: now)
        switch resolve(descriptor, identity: identity, size: probe.size, now: now) {
        case .wait:
            closeCounted(descriptor)
            return true
        case .join(let generation):
            file.generation = generation
            file.isOriginal = false
            streams[generation]!.carriers.append(key)
            streams[generation]!.remember(identity)
            files[key] = file
            recognisedCopy(path, of: generation)
        case .revive(let generation, let restore):
            file.generation = generation
            file.isOriginal = identity == generation.identity
            var stream = streams.removeValue(forKey: generation)!
            if let restore {
                stream.readOffset = restore.offset
                stream.partial = []
                stream.partialContinues = false
                stream.piecesCut = 0
                stream.skippedBytes = 0
                startTrail(&stream.trail, descriptor: descriptor, size: probe.size, at: restore.offset, crc: restore.crc)
                stream.restored = false
            }
            stream.carriers.append(key)
            stream.remember(identity)
            stream.lastActive = now
            streams[generation] = stream
            files[key] = file
            if !file.isOriginal { recognisedCopy(path, of: generation) }
        case .fresh(let generation, let offset):
            var stream = TailedStream(generation: generation, readOffset: offset, lastActive: now)
            startTrail(&stream.trail, descriptor: descriptor, size: probe.size, at: offset, crc: offset == 0 ? 0 : nil)
            stream.carriers = [key]
            stream.remember(identity)
            streams[generation] = stream
            file.generation = generation
            file.nextTruncations = generation.truncations + 1
            files[key] = file
        }
        if let generation = file.generation { markReadable(generation) }
        stateDirty = true
        return true
    }

    private func recognisedCopy(_ path: String, of generation: FilePosition.Generation) {
        copiesRecognised += 1
        logger?.info(
            "a new file holds the bytes of a generation already read (a copytruncate copy); continuing that generation in it",
            metadata: [
                "source": "\(sourceID)", "path": "\(path)", "generation": "\(generation.name)",
                "from_offset": "\(streams[generation]?.readOffset ?? 0)",
            ])
    }

    /// Starts the running CRC of a generation resumed at `offset`: hashes the bytes before it
    /// unless their CRC is already known; a file shorter than that (a copy that ends before
    /// where reading resumes) cannot give it, and the trail stops growing.
    private func startTrail(_ trail: inout ContentTrail, descriptor: Int32, size: Int64, at offset: Int64, crc: UInt32?) {
        if let crc {
            trail.resume(length: offset, crc: crc)
        } else if offset <= size, case .agrees(let crc, _) = PrefixHash.hash(descriptor, length: offset) {
            trail.resume(length: offset, crc: crc)
        } else {
            trail.stop()
        }
    }

    private func resolve(_ descriptor: Int32, identity: FileIdentity, size: Int64, now: ContinuousClock.Instant) -> Resolution {
        func rank(_ stream: TailedStream) -> Int {
            if stream.knownFiles.contains(identity) { return 0 }
            if stream.generation.identity == identity { return 1 }
            return 2
        }
        // An original truncated since the scan looked at it (copytruncate between that look and
        // this open) ends its generation now, so that a copy continues it rather than joining
        // a generation the truncated file would still be read for.
        for stream in streams.values where stream.generation.identity.fingerprint == identity.fingerprint {
            if let first = stream.carriers.first { checkOriginal(first) }
        }
        // Only a generation whose first line is this file's first line can be what it holds.
        let candidates = streams.values.filter { $0.generation.identity.fingerprint == identity.fingerprint }
            .sorted { (rank($0), $1.lastActive) < (rank($1), $0.lastActive) }
        var rejected = Set<FilePosition.Generation>()
        var waiting: Bool?
        var record = undecided[identity] ?? Undecided(since: now)
        for candidate in candidates {
            switch verify(descriptor, identity: identity, size: size, against: candidate, cached: record.patientAt) {
            case .same(let restore):
                undecided[identity] = nil
                return candidate.carriers.isEmpty ? .revive(candidate.generation, restore: restore) : .join(candidate.generation)
            case .different:
                rejected.insert(candidate.generation)
            case .undecided(let patient):
                if patient { record.patientAt = (size, candidate.generation) }
                waiting = (waiting ?? false) || patient
            }
        }
        if let patient = waiting {
            undecided[identity] = record
            if patient || now - record.since < copyDecisionDelay { return .wait }
            logger?.notice(
                "a new file starts like a file read before but too little of it can be compared; reading it as a file of its own",
                metadata: ["source": "\(sourceID)", "identity": "\(identity.generation)"])
        }
        undecided[identity] = nil
        let position = resumePosition(identity)
        if let position {
            let generation = FilePosition.Generation(identity: identity, truncations: position.truncations)
            if !rejected.contains(generation), streams[generation] == nil { return .fresh(generation, offset: position.offset) }
        }
        // A generation of its own. After another of the same identity (an inode reused by a
        // file with the same first line), a higher truncation count keeps their names apart.
        let used = streams.keys.filter { $0.identity == identity }.map(\.truncations) + (position.map { [$0.truncations] } ?? [])
        return .fresh(FilePosition.Generation(identity: identity, truncations: used.max().map { $0 + 1 } ?? 0), offset: 0)
    }

    /// Whether the file holds `stream`'s bytes.
    private func verify(
        _ descriptor: Int32, identity: FileIdentity, size: Int64, against stream: TailedStream,
        cached: (size: Int64, generation: FilePosition.Generation)?
    ) -> Verdict {
        if let first = stream.carriers.first, let original = files[first], original.isOriginal, original.isOpen {
            // The original is still open and holds every byte, so nothing is lost by waiting
            // until it is truncated or closed; deciding now could take a new file that merely
            // starts like it (a banner) for a copy.
            if let cached, cached.size == size, cached.generation == stream.generation { return .undecided(patient: true) }
            var info = stat()
            if fstat(original.descriptor, &info) == 0, size <= Int64(info.st_size),
                PrefixHash.samePrefix(descriptor, original.descriptor, length: size)
            {
                return .undecided(patient: true)
            }
            // copytruncate may have truncated the original since `resolve` looked (it retires
            // an original found truncated before judging): then its bytes say nothing, and
            // the copy is judged by what was read, like a copy of a closed original.
            guard wasTruncated(original, readTo: stream.readOffset) else { return .different }
        }
        let marks = stream.trail.knownMarks
        let restoreOffset: Int64? = stream.restored ? checkpointOffset(of: stream.generation) : nil
        guard !marks.isEmpty else {
            // Nothing known of its bytes: only its own file (same inode and first line) is trusted.
            return identity == stream.generation.identity ? .same(restore: restoreOffset.map { ($0, nil) }) : .different
        }
        guard let best = stream.trail.longestMark(atMost: size) else {
            // Shorter than anything known of it: a truncated original, or a copy still being written.
            return identity == stream.generation.identity ? .different : .undecided(patient: false)
        }
        let probe = restoreOffset.flatMap { $0 <= size ? $0 : nil }
        switch PrefixHash.hash(descriptor, length: max(best.length, probe ?? 0), checking: marks, probe: probe) {
        case .differs: return .different
        case .short: return .undecided(patient: false)
        case .agrees(_, let probeCRC):
            // The first line alone says little: a copy must agree on more, or on all there was.
            let telling = best.length > Int64(FileIdentity.fingerprintLimit) || best.length == stream.trail.knownLength
            guard telling || identity == stream.generation.identity else { return .undecided(patient: false) }
            return .same(restore: restoreOffset.map { ($0, probeCRC) })
        }
    }

    /// Where a generation loaded from the state file resumes: its checkpoint when that is of
    /// the same generation, else its start (a resend, which the collector recognises).
    private func checkpointOffset(of generation: FilePosition.Generation) -> Int64 {
        guard let position = resumePosition(generation.identity), position.truncations == generation.truncations else { return 0 }
        return position.offset
    }

    // MARK: Truncation

    /// A known original seen by the scan: truncated since it was last read?
    func checkOriginal(_ key: InodeKey) {
        guard let file = files[key], file.isOpen, file.isOriginal, let generation = file.generation, let stream = streams[generation],
            let probe = FileIdentity.probe(descriptor: file.descriptor)
        else { return }
        if Self.truncated(probe, of: file, readTo: stream.readOffset) {
            truncatedInPlace(key, newIdentity: probe.identity, retiring: generation)
        }
    }

    /// Whether an open original no longer holds the bytes read from it: shorter than where
    /// reading stopped, or starting with another first line (truncated and written again).
    func wasTruncated(_ file: OpenFile, readTo offset: Int64) -> Bool {
        guard let probe = FileIdentity.probe(descriptor: file.descriptor) else { return true }
        return Self.truncated(probe, of: file, readTo: offset)
    }

    private static func truncated(
        _ probe: (identity: FileIdentity?, size: Int64, device: UInt64, inode: UInt64), of file: OpenFile, readTo offset: Int64
    ) -> Bool {
        probe.size < offset || probe.identity?.fingerprint != file.identity?.fingerprint
    }

    /// The file was truncated (and maybe written again): its generation ends here, kept with
    /// its read offset, partial line and pending record for a copy to continue, and the file
    /// starts a new generation once it has a first line.
    func truncatedInPlace(_ key: InodeKey, newIdentity: FileIdentity?, retiring generation: FilePosition.Generation) {
        if streams[generation] != nil {
            streams[generation]!.carriers.removeAll { $0 == key }
            streams[generation]!.lastActive = .now
        }
        guard var file = files[key] else { return }
        file.nextTruncations = max(file.nextTruncations, generation.truncations + 1)
        file.identity = nil
        unidentified.insert(key)
        file.generation = nil
        file.isOriginal = true
        files[key] = file
        logger?.info(
            "file truncated in place; a new generation starts",
            metadata: ["source": "\(sourceID)", "path": "\(file.path)", "ended": "\(generation.name)",
                       "read_to": "\(streams[generation]?.readOffset ?? 0)"])
        stateDirty = true
        if let newIdentity { startGeneration(key, identity: newIdentity) }
    }

    /// The files truncated in place that had no complete first line: do they have one now?
    func identifyTruncated() {
        guard !unidentified.isEmpty else { return }
        for key in unidentified { identify(key) }
        unidentified = unidentified.filter { files[$0]?.identity == nil && files[$0] != nil }
    }

    /// A truncated file that had no complete first line: does it have one now?
    func identify(_ key: InodeKey) {
        guard let file = files[key], file.identity == nil, file.isOpen else { return }
        if let probe = FileIdentity.probe(descriptor: file.descriptor), let identity = probe.identity {
            startGeneration(key, identity: identity)
        } else if file.orphanedAt != nil, ContinuousClock.now - file.lastDataAt >= orphanGrace {
            closeCounted(file.descriptor)
            files[key] = nil
            orphans.remove(key)
        }
    }

    private func startGeneration(_ key: InodeKey, identity: FileIdentity) {
        guard var file = files[key] else { return }
        var truncations = file.nextTruncations
        while streams[FilePosition.Generation(identity: identity, truncations: truncations)] != nil { truncations += 1 }
        let generation = FilePosition.Generation(identity: identity, truncations: truncations)
        var stream = TailedStream(generation: generation, readOffset: 0, lastActive: .now)
        stream.carriers = [key]
        stream.remember(identity)
        streams[generation] = stream
        file.identity = identity
        file.generation = generation
        file.isOriginal = true
        file.nextTruncations = truncations + 1
        files[key] = file
        markReadable(generation)
        stateDirty = true
    }

    // MARK: Memory and state

    /// Keeps the newest `maxRetiredGenerations` generations no file carries (those with a
    /// pending multiline record stay until it is sent).
    func forgetOldGenerations() {
        let retired = streams.values.filter { $0.carriers.isEmpty && $0.pending == nil }
        guard retired.count > Self.maxRetiredGenerations else { return }
        for stream in retired.sorted(by: { $0.lastActive > $1.lastActive }).dropFirst(Self.maxRetiredGenerations) {
            streams[stream.generation] = nil
            readable.remove(stream.generation)
        }
        stateDirty = true
    }

    func restoreState(from path: String) {
        let (state, problem) = TailerState.load(path: path)
        if let problem { logger?.warning("\(problem)", metadata: ["source": "\(sourceID)"]) }
        let now = ContinuousClock.now
        for (index, entry) in state.generations.enumerated() {
            let generation = FilePosition.Generation(identity: entry.identity, truncations: entry.truncations)
            // Saved newest first; the order is kept for choosing among candidates.
            var stream = TailedStream(
                generation: generation, readOffset: 0, trail: ContentTrail(marks: entry.marks), knownFiles: entry.files,
                lastActive: now - .milliseconds(index), restored: true)
            stream.carriers = []
            streams[generation] = stream
        }
        archives.following = state.s6Following ?? [:]
        lastSaved = state
    }

    func saveState(force: Bool) {
        guard let statePath, stateDirty else { return }
        let now = ContinuousClock.now
        guard force || now - lastStateSave >= Self.stateSaveInterval else { return }
        lastStateSave = now
        stateDirty = false
        let ordered = streams.values.sorted { ($0.carriers.isEmpty ? 1 : 0, $1.lastActive) < ($1.carriers.isEmpty ? 1 : 0, $0.lastActive) }
        let state = TailerState(generations: ordered.map {
            TailerState.Generation(
                identity: $0.generation.identity, truncations: $0.generation.truncations, marks: $0.trail.persisted,
                files: $0.knownFiles)
        }, s6Following: archives.following.isEmpty ? nil : archives.following)
        guard state != lastSaved else { return }
        if let failure = state.save(path: statePath) {
            // Not fatal: only a copy appearing around a restart would be read as a file of its own.
            logger?.error("cannot save tailer state: \(failure)", metadata: ["source": "\(sourceID)"])
            stateDirty = true
            return
        }
        lastSaved = state
    }
}
