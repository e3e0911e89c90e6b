import Foundation

/// Writes a file so that it is either wholly there or not at all: a temporary file in the same
/// folder, fsync, rename over the target, fsync of the folder.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        // An output folder that does not exist yet is made (`--out newdir/x.png`).
        if !FileManager.default.fileExists(atPath: dir) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw WriteError(path: path, reason: "cannot create the folder \(dir) (\(String(cString: strerror(errno))))")
            }
        }
        cleanOnce(dir)
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
        var ok = true
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let w = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if w <= 0 { if errno == EINTR { continue }; ok = false; return }
                done += w
            }
        }
        let err = String(cString: strerror(errno))
        if !ok || fsync(fd) != 0 {
            close(fd); unlink(tmp)
            throw WriteError(path: path, reason: ok ? "fsync failed" : err)
        }
        close(fd)
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw WriteError(path: path, reason: e)
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// A stale temporary: `.NAME.tmp-PID` whose writer (process PID) is gone (`kill(PID, 0)`
    /// fails with ESRCH) and that nobody has written for `staleAfter` seconds. The age guards a
    /// writer this process cannot see: another container or host sharing the folder, whose PIDs
    /// mean nothing here (a live writer keeps writing its temporary until the rename).
    public static let staleAfter: Double = 60

    /// The writer's PID in the name of one of `write`'s temporaries (`.NAME.tmp-PID`), else nil.
    public static func temporaryWriter(_ name: String) -> Int32? {
        guard name.hasPrefix("."), let r = name.range(of: ".tmp-", options: .backwards), r.lowerBound > name.index(after: name.startIndex) else { return nil }
        let digits = name[r.upperBound...]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let pid = Int32(digits), pid > 0 else { return nil }
        return pid
    }

    /// Removes the temporaries in `dir` left by writers that were killed before their rename
    /// (`.step_00000500.rgan.tmp-4242` of a checkpoint writer killed with SIGKILL): those whose
    /// PID is not a live process and that are older than `olderThan` seconds. A live writer's
    /// (this process's too) are left alone. Returns the paths removed; a folder that cannot be
    /// read removes nothing.
    @discardableResult
    public static func removeStaleTemporaries(in dir: String, olderThan: Double = staleAfter) -> [String] {
        let folder = dir.isEmpty ? "." : dir
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        let now = Date().timeIntervalSince1970
        for name in names {
            guard let pid = temporaryWriter(name), pid != getpid() else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }   // alive (EPERM: alive, another user's)
            let path = folder + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            guard now - Double(st.st_mtim.tv_sec) >= olderThan else { continue }
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Folders `write` cleaned of stale temporaries, and when: each at most once a minute.
    nonisolated(unsafe) private static var cleaned: [String: Double] = [:]
    private static let cleanedLock = NSLock()

    /// Removes the stale temporaries of `dir` before the first write into it, and again at most
    /// once every `staleAfter` seconds (a writer killed just before this process started leaves
    /// one that is not old enough yet).
    static func cleanOnce(_ dir: String) {
        let now = Date().timeIntervalSince1970
        cleanedLock.lock()
        let due = cleaned[dir].map { now - $0 >= staleAfter } ?? true
        if due { cleaned[dir] = now }
        cleanedLock.unlock()
        if due { removeStaleTemporaries(in: dir) }
    }
}

/// Why the file at `path` could not be read, in plain words: a missing file, a folder, no
/// permission, else the system's own reason (never a bare "NSCocoaErrorDomain error 256").
public func readProblem(_ path: String, _ error: Error) -> String {
    var isFolder: ObjCBool = false
    let fm = FileManager.default
    if !fm.fileExists(atPath: path, isDirectory: &isFolder) { return "no such file" }
    if isFolder.boolValue { return "it is a folder, not a file" }
    if !fm.isReadableFile(atPath: path) { return "permission denied" }
    return (error as NSError).localizedFailureReason ?? error.localizedDescription
}

/// Why a folder cannot be made or written at `path`, in plain words: the nearest part of the
/// path that exists is a file, or a folder this user may not write, or (none of those) the
/// system's reason `errno`.
public func folderProblem(_ path: String, errno code: Int32? = nil) -> String {
    let fm = FileManager.default
    var p = URL(fileURLWithPath: path).standardizedFileURL.path
    while !p.isEmpty && p != "/" {
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: p, isDirectory: &isFolder) {
            if !isFolder.boolValue { return "\(p) is a file, not a folder" }
            if !fm.isWritableFile(atPath: p) || access(p, W_OK | X_OK) != 0 { return "permission denied: this user cannot write \(p)" }
            break
        }
        p = (p as NSString).deletingLastPathComponent
    }
    if let code { return String(cString: strerror(code)) }
    return "cannot be made"
}

