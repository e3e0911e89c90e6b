import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A stranger that sends `bytes` one at a time, `every` seconds apart, on a raw connected
/// socket it owns, from a thread of its own.
///
/// `stop` wakes the thread, waits until it has finished and only then closes the descriptor. A
/// thread that outlives its descriptor writes into whatever socket reuses that number next: the
/// drips of two hostile-peer tests once put a byte ('A' of "RGAN") into a ring connection of a
/// later test (`bad frame magic 41524741`), failing RingTests at random.
public final class SlowDrip: @unchecked Sendable {
    public let fd: Int32
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    public init(fd: Int32, bytes: [UInt8], every: Double) {
        self.fd = fd
        let (wake, finished) = (self.wake, self.finished)
        let t = Thread {
            defer { finished.signal() }
            for b in bytes {
                var x = b
                if send(fd, &x, 1, Int32(MSG_NOSIGNAL)) != 1 { return }
                if wake.wait(timeout: .now() + every) == .success { return }
            }
        }
        t.name = "slow-drip"
        t.start()
    }

    /// Stops the drip (at once, even mid-sleep), waits for its thread, closes the socket.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        wake.signal()
        finished.wait()
        close(fd)
    }

    deinit { stop() }
}
