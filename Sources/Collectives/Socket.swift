import Foundation
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// A failure talking to a peer; the text names the peer and what went wrong.
public struct NetError: Error, CustomStringConvertible {
    public let peer: String
    public let reason: String
    public init(_ peer: String, _ reason: String) {
        self.peer = peer
        self.reason = reason
    }
    public var description: String { "\(peer): \(reason)" }
}

/// A connected TCP socket with deadlines on every read and write: no call waits forever.
/// Writes may come from several threads (a mutex keeps frames whole); reads from one.
public final class Connection: @unchecked Sendable {
    public let fd: Int32
    public let peer: String
    /// Seconds a read or write may wait for progress before failing.
    public var timeout: Double
    /// A hard deadline (monotonic seconds) that no progress extends, and what it bounds (a
    /// handshake sets one, so a peer sending a byte at a time cannot hold it open).
    public private(set) var hardDeadline: Double?
    private var hardDeadlineWhat = ""
    private let writeLock = NSLock()
    private var closed = false
    public private(set) var bytesWritten = 0
    public private(set) var bytesRead = 0
    /// Frame authentication after the handshake (one key per direction); nil before it.
    private(set) var sendMAC: FrameMAC?
    private(set) var receiveMAC: FrameMAC?
    /// The header of the frame being read (its MAC covers it).
    var lastHeader = [UInt8](repeating: 0, count: Frame.headerSize)

    init(fd: Int32, peer: String, timeout: Double) {
        self.fd = fd
        self.peer = peer
        self.timeout = timeout
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // Large buffers (the FORCE variants pass the system cap when running as root).
        var buf: Int32 = 4 << 20
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, socklen_t(MemoryLayout<Int32>.size))
        }
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    deinit {
        close()
        Glibc.close(fd)
    }

    /// Marks what this connection sends as latency-sensitive (SO_PRIORITY 6, TC_PRIO_INTERACTIVE):
    /// a host's priority queueing (pfifo_fast's first band, an mqprio or prio map) sends it
    /// before bulk data queued on the same interface. Host-local: nothing changes on the wire.
    /// SyncBatchNorm's statistics use it, so that a few kilobytes do not wait behind megabytes
    /// of gradients in the interface's queue.
    public func markLatencySensitive() {
        var priority: Int32 = 6
        setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &priority, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Every read and write fails once `seconds` have passed from now, whatever the progress;
    /// nil lifts it. `what` names what was bounded, for the error.
    public func setHardDeadline(_ seconds: Double?, what: String = "the exchange") {
        hardDeadline = seconds.map { monotonic() + $0 }
        hardDeadlineWhat = what
    }

    /// From now on every frame sent carries a tag under `send` and every frame received must
    /// carry a valid one under `receive`.
    func beginSession(send: FrameMAC, receive: FrameMAC) {
        writeLock.lock()
        sendMAC = send
        receiveMAC = receive
        writeLock.unlock()
    }

    /// Whether frames on this connection are authenticated.
    public var isAuthenticated: Bool { receiveMAC != nil }

    /// False when the peer has closed its end (checked without blocking or consuming data).
    public var isOpen: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return true }
        if p.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return false }
        var b: UInt8 = 0
        let r = recv(fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    }

    /// The deadline for the next wait: `timeout` from now, capped by the hard deadline.
    private func nextDeadline() -> Double {
        let soft = monotonic() + timeout
        return hardDeadline.map { min($0, soft) } ?? soft
    }

    private func timedOut(_ doing: String) -> NetError {
        if let h = hardDeadline, monotonic() >= h - 1e-3 {
            return NetError(peer, "\(hardDeadlineWhat) did not complete in time (\(doing))")
        }
        return NetError(peer, "timed out after \(Int(timeout)) s \(doing)")
    }

    /// This end's IPv4 address (the interface that reaches the peer).
    public var localAddress: String {
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        var ip = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &addr.sin_addr, &ip, socklen_t(INET_ADDRSTRLEN))
        return String(cString: ip)
    }

    /// The kernel's view of this connection (TCP_INFO): smoothed round trip, congestion window
    /// and retransmitted segments so far; nil where the call fails.
    public func tcpInfo() -> String? {
        var info = tcp_info()
        var len = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &len) == 0 else { return nil }
        return String(format: "rtt %.1f ms, cwnd %d segments of %d bytes, %d retransmitted",
                      Double(info.tcpi_rtt) / 1000, Int(info.tcpi_snd_cwnd), Int(info.tcpi_snd_mss), Int(info.tcpi_total_retrans))
    }

    /// Ends the connection: both directions are shut down at once, so a read or write in
    /// progress on another thread fails now. The descriptor itself is released only when the
    /// connection is (`deinit`), when no thread can be using it: released here, its number could
    /// be reused by a new socket while another thread is between its check of `closed` and its
    /// `recv`, which would then read another connection's bytes.
    public func close() {
        writeLock.lock()
        defer { writeLock.unlock() }
        if !closed {
            closed = true
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    /// Waits until the socket is readable (or writable); false on timeout.
    private func wait(_ events: Int16, _ deadline: Double) throws -> Bool {
        while true {
            let left = deadline - monotonic()
            if left <= 0 { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left, 3600) * 1000) + 1)
            if r > 0 { return true }
            if r == 0 { continue }
            if errno == EINTR { continue }
            throw NetError(peer, "poll failed: \(String(cString: strerror(errno)))")
        }
    }

    public func readExactly(_ dst: UnsafeMutableRawPointer, _ n: Int) throws {
        var got = 0
        var deadline = nextDeadline()
        while got < n {
            if closed { throw NetError(peer, "connection closed") }
            // Try first; poll (with the deadline) only when nothing is there yet.
            let r = recv(fd, dst + got, n - got, Int32(MSG_DONTWAIT))
            if r == 0 { throw NetError(peer, "connection closed by the peer") }
            if r < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    guard try wait(Int16(POLLIN), deadline) else { throw timedOut("waiting for data (\(got) of \(n) bytes read)") }
                    continue
                }
                throw NetError(peer, "read failed: \(String(cString: strerror(errno)))")
            }
            got += r
            bytesRead += r
            deadline = nextDeadline()   // progress resets the deadline (not the hard one)
        }
    }

    public func read(_ n: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        if n > 0 { try out.withUnsafeMutableBytes { try readExactly($0.baseAddress!, n) } }
        return out
    }

    /// Writes all the parts as one unit (no other writer interleaves), unauthenticated: raw
    /// bytes, for tests and probes. Frames go through `send`.
    public func write(_ parts: [UnsafeRawBufferPointer]) throws {
        writeLock.lock()
        defer { writeLock.unlock() }
        try writeLocked(parts)
    }

    /// Writes a frame (header, payload, and its tag once the session is authenticated) as one
    /// unit; the tag is made under the lock, so sequence numbers follow the order on the wire.
    func writeFrame(header: [UInt8], payload: UnsafeRawBufferPointer) throws {
        writeLock.lock()
        defer { writeLock.unlock() }
        try header.withUnsafeBytes { hb in
            if let mac = sendMAC {
                let tag = mac.next(header: hb, payload: payload)
                try tag.withUnsafeBytes { try writeLocked([hb, payload, $0]) }
            } else {
                try writeLocked([hb, payload])
            }
        }
    }

    private func writeLocked(_ parts: [UnsafeRawBufferPointer]) throws {
        if closed { throw NetError(peer, "connection already closed") }
        for part in parts where part.count > 0 {
            var sent = 0
            var deadline = nextDeadline()
            while sent < part.count {
                let r = Glibc.send(fd, part.baseAddress! + sent, part.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if r < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN || errno == EWOULDBLOCK {
                        guard try wait(Int16(POLLOUT), deadline) else { throw timedOut("sending (\(sent) of \(part.count) bytes sent)") }
                        continue
                    }
                    throw NetError(peer, "write failed: \(String(cString: strerror(errno)))")
                }
                sent += r
                bytesWritten += r
                deadline = nextDeadline()
            }
        }
    }
}

/// Seconds on the monotonic clock (`rg_monotonic_seconds`, the one every module uses).
public func monotonic() -> Double { rg_monotonic_seconds() }

/// Ignores SIGPIPE so a peer that vanishes gives an error, not a dead process.
public func ignoreSigpipe() { signal(SIGPIPE, SIG_IGN) }

private func resolve(_ host: String, _ port: UInt16) throws -> sockaddr_in {
    var hints = addrinfo()
    hints.ai_family = AF_INET
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var res: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, String(port), &hints, &res)
    guard rc == 0, let r = res else { throw NetError("\(host):\(port)", "cannot resolve host (\(String(cString: gai_strerror(rc))))") }
    defer { freeaddrinfo(res) }
    return r.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
}

/// The local IPv4 address this host would use to reach `host:port` (a UDP socket is
/// "connected" to it, which sends nothing, and asked for its own address).
public func localAddress(toward host: String, _ port: UInt16) throws -> String {
    var addr = try resolve(host, port)
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw NetError("\(host):\(port)", "socket failed: \(String(cString: strerror(errno)))") }
    defer { Glibc.close(fd) }
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw NetError("\(host):\(port)", "no route to it: \(String(cString: strerror(errno)))") }
    var local = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    var ip = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    inet_ntop(AF_INET, &local.sin_addr, &ip, socklen_t(INET_ADDRSTRLEN))
    return String(cString: ip)
}

/// A listening TCP socket.
public final class Listener: @unchecked Sendable {
    public let fd: Int32
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NetError("\(host):\(port)", "socket failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = try resolve(host, port)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            let e = String(cString: strerror(errno)); Glibc.close(fd)
            throw NetError("\(host):\(port)", "cannot listen: \(e)")
        }
        guard listen(fd, 64) == 0 else {
            let e = String(cString: strerror(errno)); Glibc.close(fd)
            throw NetError("\(host):\(port)", "listen failed: \(e)")
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        self.host = host
        self.port = UInt16(bigEndian: bound.sin_port)
    }

    deinit { Glibc.close(fd) }

    public func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// The next connection, or nil when `timeout` seconds pass without one.
    public func accept(timeout: Double, ioTimeout: Double) throws -> Connection? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(timeout * 1000))
        if r == 0 { return nil }
        if r < 0 { if errno == EINTR { return nil }; throw NetError("\(host):\(port)", "poll failed: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let c = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &len) } }
        if c < 0 { return nil }
        var ip = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &addr.sin_addr, &ip, socklen_t(INET_ADDRSTRLEN))
        return Connection(fd: c, peer: "\(String(cString: ip)):\(UInt16(bigEndian: addr.sin_port))", timeout: ioTimeout)
    }
}

/// Connects to `host:port`, retrying until `within` seconds have passed. Each attempt is bounded
/// by that deadline too (at least 1 s): a host that drops the connection request would otherwise
/// hold it for the kernel's own timeout, about two minutes.
/// `cancelled`, asked between attempts and while one waits (every 0.25 s), ends it with
/// `RingFormationCancelled`.
public func connect(to host: String, _ port: UInt16, within: Double, ioTimeout: Double, name: String? = nil,
                    cancelled: (() -> Bool)? = nil) throws -> Connection {
    let label = name ?? "\(host):\(port)"
    let deadline = monotonic() + within
    var last = "no attempt"
    while true {
        if cancelled?() == true { throw RingFormationCancelled() }
        var addr = try resolve(host, port)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if fd >= 0 {
            let rc = connect(fd, &addr, until: max(deadline, monotonic() + 1), cancelled: cancelled)
            if rc == 0 { return Connection(fd: fd, peer: label, timeout: ioTimeout) }
            last = String(cString: strerror(rc))
            Glibc.close(fd)
        }
        if monotonic() > deadline { throw NetError(label, within < 1 ? "cannot connect: \(last)" : "cannot connect within \(Int(within)) s: \(last)") }
        usleep(100_000)
    }
}

/// connect(2) on `fd` that gives up at `deadline` (monotonic seconds): 0, or the error number
/// (ETIMEDOUT at the deadline). The socket is left blocking, as it was.
private func connect(_ fd: Int32, _ addr: inout sockaddr_in, until deadline: Double, cancelled: (() -> Bool)? = nil) -> Int32 {
    let flags = fcntl(fd, F_GETFL, 0)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    defer { _ = fcntl(fd, F_SETFL, flags) }
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if rc == 0 { return 0 }
    guard errno == EINPROGRESS else { return errno }
    while true {
        let left = deadline - monotonic()
        if left <= 0 { return ETIMEDOUT }
        if cancelled?() == true { return ECANCELED }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let r = poll(&p, 1, Int32(min(left, cancelled == nil ? 3600 : 0.25) * 1000) + 1)
        if r < 0 { if errno == EINTR { continue }; return errno }
        if r == 0 { continue }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 else { return errno }
        return err
    }
}

/// `Ring.form` (or a connect it makes) was cancelled (its `cancelled` said so) before the ring formed.
public struct RingFormationCancelled: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the ring's formation was cancelled" }
}
