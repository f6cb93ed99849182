#if canImport(Glibc)
import Glibc
#endif

/// Which file a descriptor is, by device and inode alone: unique among the files the tailer
/// holds open (an inode cannot be reused while a descriptor keeps it alive). A file closed for
/// a while keeps its key; when opened again its bytes are checked, since by then the inode
/// may be another file's.
struct InodeKey: Hashable {
    var device: UInt64
    var inode: UInt64
}

/// One file the tailer follows: open, or closed for a while to stay within the descriptor
/// budget (see `FileTailer+Descriptors`).
struct OpenFile {
    var path: String
    /// -1 while closed.
    var descriptor: Int32
    let key: InodeKey
    /// Nil while a file truncated in place has no complete first line yet.
    var identity: FileIdentity?
    /// The generation whose bytes this file holds (nil while `identity` is).
    var generation: FilePosition.Generation?
    /// The generation's own file, which the application writes to, as opposed to a copy of it:
    /// only an original that shrinks or changes its first line has been truncated.
    var isOriginal = true
    /// The truncation count its next generation gets.
    var nextTruncations = 0
    /// When no pattern named it any more (renamed away or deleted).
    var orphanedAt: ContinuousClock.Instant?
    /// Last time it gave new bytes, or when it was orphaned: an orphan quiet for the grace
    /// period is closed.
    var lastDataAt: ContinuousClock.Instant
    /// Set when an orphan has been open for the hard limit: it is read up to this size, then closed.
    var closeAt: Int64?
    /// The last read found nothing new: closing it now loses nothing.
    var atEnd = false
    /// While closed: its size and modification time then. A scan that finds either changed
    /// opens it again.
    var closedWith: (size: Int64, modified: timespec)?
    /// While closed: CRC of the bytes just before the read offset (see `FileTailer.tailCRC`).
    var tailCRC: UInt32?

    var isOpen: Bool { descriptor >= 0 }
}

/// One generation of a file's bytes as it is read: the unit records are numbered in.
///
/// Usually one file carries it. After copytruncate the copy carries it too (and then alone):
/// it holds the same bytes at the same offsets, so reading goes on in the copy from where the
/// original was, under the original's generation, and anything read twice is a duplicate the
/// collector recognises by (generation, offset).
struct TailedStream {
    let generation: FilePosition.Generation
    /// Next byte to read.
    var readOffset: Int64
    /// The path of the file it was last read from.
    var path = ""
    /// Bytes read past the last newline, waiting for the rest of their line.
    var partial: [UInt8] = []
    /// `partial` is the rest of a line whose first pieces were already cut off at the line limit.
    var partialContinues = false
    /// Pieces of the current line already handed on (overlong lines, split).
    var piecesCut = 0
    /// Bytes of the current line skipped after its first `maxLineBytes` (overlong lines, truncated).
    var skippedBytes: Int64 = 0
    var trail = ContentTrail()
    /// The multiline record being joined, if any.
    var pending: PendingRecord?
    /// Open files holding these bytes, the original (if still open) first.
    var carriers: [InodeKey] = []
    /// Identities of every file that held it, persisted so a restart can match them again.
    var knownFiles: [FileIdentity] = []
    var lastActive: ContinuousClock.Instant
    /// Loaded from the tailer's state file: how far it was read is not known until a file
    /// carries it again, and then the checkpoint says.
    var restored = false

    static let maxKnownFiles = 8

    mutating func remember(_ identity: FileIdentity) {
        guard !knownFiles.contains(identity) else { return }
        knownFiles.append(identity)
        if knownFiles.count > Self.maxKnownFiles { knownFiles.removeFirst() }
    }
}
