import Foundation

/// Runs a program to its end with libc's `posix_spawn` and `waitpid`, its output (stdout and
/// stderr) into a file. The cluster scripts start daemons (podman's conmon, servers under
/// setsid) and exit; Foundation's `Process.waitUntilExit` was seen waiting forever after such a
/// script had exited (a clean-clone CI run stopped in `images/lab` that way), where `waitpid`
/// on the child's own pid returns when it exits.
enum SpawnedCommand {
    /// The exit status (128 + the signal when a signal ended it).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String], output: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, &envp)
        guard spawned == 0 else { throw TestSetupError("cannot run \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw TestSetupError("waiting for \(executable): \(String(cString: strerror(errno)))") }
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
