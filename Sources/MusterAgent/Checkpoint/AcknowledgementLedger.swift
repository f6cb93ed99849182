import Synchronization

/// Applies acknowledgements to the checkpoints in batch order, whatever order they arrive in.
///
/// Batch n's positions are applied only once batches 0…n-1 are applied too: a file's
/// checkpoint never passes a line whose batch is still unacknowledged, so a crash can only
/// cause a resend, never a gap. Saving is coalesced to one write per `saveInterval`, and
/// happens under the lock so that two saves never write the checkpoint file at once.
final class AcknowledgementLedger: Sendable {
    private struct State {
        var checkpoints: CheckpointStore
        var nextToApply = 0
        var waiting: [Int: [FilePosition]] = [:]
        var dirty = false
        var lastSave = ContinuousClock.now
    }

    private let state: Mutex<State>
    private let saveInterval: Duration
    private let save: @Sendable (CheckpointStore) -> Void

    init(
        checkpoints: CheckpointStore, saveInterval: Duration = .milliseconds(200),
        save: @escaping @Sendable (CheckpointStore) -> Void
    ) {
        self.state = Mutex(State(checkpoints: checkpoints))
        self.saveInterval = saveInterval
        self.save = save
    }

    /// Batch `number` (counting from 0 in the order batches were made) was acknowledged.
    func acknowledged(_ number: Int, positions: [FilePosition]) {
        state.withLock { state in
            state.waiting[number] = positions
            while let ready = state.waiting.removeValue(forKey: state.nextToApply) {
                for position in ready { state.checkpoints.advance(position) }
                state.nextToApply += 1
                state.dirty = true
            }
            guard state.dirty, ContinuousClock.now - state.lastSave >= saveInterval else { return }
            state.dirty = false
            state.lastSave = .now
            save(state.checkpoints)
        }
    }

    /// Saves what was applied and not saved yet.
    func flush() {
        state.withLock { state in
            guard state.dirty else { return }
            state.dirty = false
            save(state.checkpoints)
        }
    }

    /// Positions applied so far (for tests).
    var checkpoints: CheckpointStore { state.withLock { $0.checkpoints } }
}
