import Collectives
import Foundation

/// A liveness file for launchers (`gan-coordinator --heartbeat-file`): made at the start with
/// this process's id on its first line, then its modification time is set to now by `beat`, at
/// most once a second. The coordinator beats from its own loop (the rendezvous, the training
/// loop), never from a thread of its own: a loop that hangs stops the beats, and a launcher that
/// finds the file older than its limit kills and restarts it (`cluster/local.sh`, the compose
/// healthcheck, the Kubernetes livenessProbe).
public final class HeartbeatFile: @unchecked Sendable {
    public let path: String
    private var last = 0.0
    private let lock = NSLock()

    /// Makes (or replaces) the file at `path`; throws naming it when it cannot be written.
    public init(path: String) throws {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
        let body = Data("\(getpid())\n".utf8)
        guard FileManager.default.createFile(atPath: self.path, contents: body) else {
            var isDir: ObjCBool = false
            let why = FileManager.default.fileExists(atPath: self.path, isDirectory: &isDir) && isDir.boolValue
                ? "it is a folder" : (FileManager.default.fileExists(atPath: URL(fileURLWithPath: self.path).deletingLastPathComponent().path)
                                      ? "cannot write it" : "its folder does not exist")
            throw HeartbeatFileError(description: "--heartbeat-file \(path): \(why)")
        }
        last = monotonic()
    }

    /// Sets the file's modification time to now, unless that was done less than a second ago.
    /// A file removed meanwhile is made again.
    public func beat() {
        lock.lock()
        defer { lock.unlock() }
        let now = monotonic()
        guard now - last >= 1 else { return }
        last = now
        if utimensat(AT_FDCWD, path, nil, 0) != 0 && errno == ENOENT {
            _ = FileManager.default.createFile(atPath: path, contents: Data("\(getpid())\n".utf8))
        }
    }
}

public struct HeartbeatFileError: Error, CustomStringConvertible {
    public let description: String
}
