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

