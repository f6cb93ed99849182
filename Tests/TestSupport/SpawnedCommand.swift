import Foundation

/// Runs a program to its end with libc's `posix_spawn` and `waitpid`, its output (stdout and
/// stderr) into a file. The cluster scripts start daemons (podman's conmon, servers under
/// setsid) and exit; Foundation's `Process.waitUntilExit` was seen waiting forever after such a
/// script had exited (a clean-clone CI run stopped in `images/lab` that way), where `waitpid`
/// on the child's own pid returns when it exits.
///
/// The child starts with no signal blocked and every signal at its default: a test runs on a
/// thread of Swift's concurrency pool, which blocks nearly all signals, and a spawned child
/// inherits the mask. ClickHouse started from such a thread never saw the SIGTERM of
/// `scale-out-servers stop`, which then waited its 30 s grace and sent SIGKILL.
public enum SpawnedCommand {
    /// The exit status (128 + the signal when a signal ended it). Stderr goes to `errors`,
    /// or with stdout to `output`.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String], output: String, errors: String? = nil)
        throws -> Int32
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attributes = SignalDefaults.attributes()
        defer { posix_spawnattr_destroy(&attributes) }
        var argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        guard spawned == 0 else { throw SpawnError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw SpawnError("waiting for \(executable): \(String(cString: strerror(errno)))") }
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// Spawn attributes for a child with no signal blocked and every signal at its default.
enum SignalDefaults {
    static func attributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return attributes
    }
}

/// A program that could not be run or waited for.
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
