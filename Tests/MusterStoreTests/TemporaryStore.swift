import Foundation
import GRDB
import MusterStoreSQLite

/// A new, migrated store in the temporary directory (`muster-NAME-UUID.sqlite`), written with
/// `synchronous=NORMAL`: a test's store need not survive a power loss.
func temporaryStore(_ name: String) throws -> (path: String, pool: DatabasePool) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("muster-\(name)-\(UUID().uuidString).sqlite").path
    return (path, try Schema.openForWriting(path: path, synchronous: .normal))
}
