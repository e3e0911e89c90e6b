#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes all of `bytes` at the end of the file open as `fd` (retrying short writes and EINTR).
/// On failure (a full disk) the partial write is cut off again, so the file ends where it did,
/// and the error is returned as text; nil means everything was written.
public func appendWhole(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> String? {
    let start = lseek(fd, 0, SEEK_END)
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 {
            let reason = n == 0 ? "no bytes written" : String(cString: strerror(errno))
            if start >= 0 { _ = ftruncate(fd, start); _ = lseek(fd, start, SEEK_SET) }
            return reason
        }
        done += n
    }
    return nil
}
