import Collectives
import Foundation
import TestSupport
import XCTest

/// Strangers on the port, fake listeners, relays and tampered frames, in process over loopback.
final class HostilePeerTests: XCTestCase {
    static let token = "hostile-peer-tests-token"
    struct Claim: Codable, Sendable, Equatable { var rank: Int; var host: String; var port: UInt16 }
    let claim = Claim(rank: 3, host: "10.1.2.3", port: 4567)

    func auth(_ t: String = HostilePeerTests.token) throws -> Authenticator { try Authenticator(token: t) }

    func admissions(_ l: Listener, handshakeTimeout: Double = 5, maxPending: Int = 64,
                    log: @escaping @Sendable (String) -> Void = { _ in }) throws -> Admissions<Claim> {
        Admissions(listener: l, claim: .hello, as: Claim.self, auth: try auth(), role: "test", wrongToken: "authentication failed: wrong token",
                   maxPending: maxPending, handshakeTimeout: handshakeTimeout, ioTimeout: 10, log: log)
    }

    /// A raw TCP connection that sends nothing (or what the test writes).
    func rawConnect(_ port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(rc, 0, "connect: \(String(cString: strerror(errno)))")
        return fd
    }

    // MARK: tokens

    func testShortAndEmptyTokensAreRefusedFromEverySource() throws {
        XCTAssertThrowsError(try Authenticator(token: "")) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        XCTAssertThrowsError(try Authenticator(token: "  \n")) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        XCTAssertThrowsError(try Authenticator(token: "short-token")) { XCTAssertTrue("\($0)".contains("at least 16"), "\($0)") }
        XCTAssertNoThrow(try Authenticator(token: "0123456789abcdef"))
        // The environment.
        XCTAssertThrowsError(try Authenticator.loadToken(file: nil, environment: ["RINGGAN_TOKEN": ""])) {
            XCTAssertTrue("\($0)".contains("RINGGAN_TOKEN") && "\($0)".contains("empty"), "\($0)")
        }
        XCTAssertThrowsError(try Authenticator.loadToken(file: nil, environment: ["RINGGAN_TOKEN": "abc"])) {
            XCTAssertTrue("\($0)".contains("at least 16"), "\($0)")
        }
        XCTAssertNil(try Authenticator.loadToken(file: nil, environment: [:]))
        XCTAssertEqual(try Authenticator.loadToken(file: nil, environment: ["RINGGAN_TOKEN": "0123456789abcdef\n"]), "0123456789abcdef")
        // A file (mode 0600).
        let dir = try makeTempDir(self)
        for (body, why) in [("", "empty"), ("\n\n", "empty"), ("tooshort\n", "at least 16")] {
            let f = dir + "/t"
            try body.write(toFile: f, atomically: false, encoding: .utf8)
            chmod(f, 0o600)
            XCTAssertThrowsError(try Authenticator.loadToken(file: f, environment: [:])) { XCTAssertTrue("\($0)".contains(why), "\(body): \($0)") }
        }
    }

    func testGroupOrWorldReadableTokenFileIsRefused() throws {
        let f = try makeTempDir(self) + "/token"
        try "0123456789abcdef-long-enough\n".write(toFile: f, atomically: false, encoding: .utf8)
        for mode: mode_t in [0o644, 0o640, 0o604, 0o660, 0o620] {
            chmod(f, mode)
            XCTAssertThrowsError(try Authenticator.loadToken(file: f, environment: [:]), String(mode, radix: 8)) {
                XCTAssertTrue("\($0)".contains(String(format: "permissions are %04o", mode)) && "\($0)".contains("chmod 600"), "\($0)")
            }
        }
        for mode: mode_t in [0o600, 0o400] {
            chmod(f, mode)
            XCTAssertEqual(try Authenticator.loadToken(file: f, environment: ["RINGGAN_TOKEN": "ignored-when-a-file-is-given"]),
                           "0123456789abcdef-long-enough")
        }
    }

    // MARK: mutual authentication

    func testHandshakeAdmitsTheWholeClaimAndAuthenticatesFrames() throws {
        let l = try Listener(host: "127.0.0.1", port: 0)
        let adm = try admissions(l)
        defer { adm.stop() }
        let w = try Handshake.dial("127.0.0.1", l.port, name: "listener", claim: .hello, claim, auth: try auth(), role: "test",
                                   within: 5, ioTimeout: 5)
        let a = try XCTUnwrap(adm.next(timeout: 5))
        XCTAssertEqual(a.claim, claim)
        XCTAssertTrue(w.isAuthenticated && a.conn.isAuthenticated)
        for i in 0..<5 { try w.send(.heartbeat, bytes: Array("frame \(i)".utf8)) }
        try a.conn.send(.stop, bytes: Array("down".utf8))
        for i in 0..<5 { XCTAssertEqual(try a.conn.receive(.heartbeat).payload, Array("frame \(i)".utf8)) }
        XCTAssertEqual(try w.receive(.stop).payload, Array("down".utf8))
    }

    /// A listener without the token (a fake coordinator or ring neighbour) cannot make the joiner
    /// believe it: whatever it answers, the joiner refuses before reading anything else.
    func testFakeListenerIsRefused() throws {
        for answer in ["random", "wrong token", "no welcome"] {
            let l = try Listener(host: "127.0.0.1", port: 0)
            let fake = Thread {
                guard let c = try? l.accept(timeout: 5, ioTimeout: 5) else { return }
                let nl = Authenticator.challenge()
                try? c.send(.challenge, bytes: nl)
                guard let f = try? c.receive(.hello) else { return }
                switch answer {
                case "random": try? c.send(.welcome, bytes: Authenticator.challenge())
                case "wrong token":
                    let a = try! Authenticator(token: "the-fake-coordinators-token")
                    try? c.send(.welcome, bytes: a.mac("RingGAN v2 test welcome", [nl, Array(f.payload[0..<32]), Array(f.payload[64...])]))
                default: try? c.send(.start, bytes: Array("{\"runDir\":\"/tmp/elsewhere\"}".utf8))
                }
                Thread.sleep(forTimeInterval: 1)
            }
            fake.start()
            XCTAssertThrowsError(try Handshake.dial("127.0.0.1", l.port, name: "fake", claim: .hello, claim, auth: try auth(), role: "test",
                                                    within: 3, ioTimeout: 3)) { e in
                if answer == "no welcome" {
                    XCTAssertTrue(e is HandshakeRefused && "\(e)".contains("expected a welcome"), "\(e)")
                } else {
                    XCTAssertTrue(e is HandshakeRefused && "\(e)".contains("did not prove the shared token"), "\(answer): \(e)")
                }
            }
        }
    }

    /// A man in the middle that relays between a joiner and the real listener: relaying the
    /// challenge and the claim faithfully lets the two meet, but the relay can neither change the
    /// claim (its MAC covers every byte) nor add a frame of its own to either direction.
    func testRelayedChallengeGainsTheRelayNothing() throws {
        // 1. The relay changes the claimed ring port: the listener refuses it.
        do {
            let r = try RelaySession(mutateClaim: { body in
                String(decoding: body, as: UTF8.self).replacingOccurrences(of: "4567", with: "6666").utf8.map { $0 }
            })
            defer { r.stop() }
            XCTAssertThrowsError(try r.join(claim)) { XCTAssertTrue("\($0)".contains("wrong token"), "\($0)") }
            XCTAssertNil(r.admissions.next(timeout: 0.5))
            XCTAssertEqual(r.admissions.counts.refused, 1)
        }
        // 2. Relayed faithfully: admitted, but a frame the relay makes is refused by both ends.
        let r = try RelaySession()
        defer { r.stop() }
        let w = try r.join(claim)
        let a = try XCTUnwrap(r.admissions.next(timeout: 5))
        XCTAssertEqual(a.claim, claim)
        // The relay's own frame, with a 16-byte tag of its making (it does not know the keys).
        var forged = RawFrame(header: [], payload: Array("{\"runDir\":\"/tmp/stolen\"}".utf8), tag: Array(Authenticator.challenge()[0..<16]))
        forged.header = Array("RGAN".utf8) + [Frame.version, FrameType.start.rawValue, 0, 0] + [UInt8](repeating: 0, count: 8)
            + withUnsafeBytes(of: UInt32(forged.payload.count).littleEndian) { Array($0) } + [0, 0, 0, 0]
        forged.fixChecksum()
        try forged.write(r.toListener)
        XCTAssertThrowsError(try a.conn.receive()) { XCTAssertTrue("\($0)".contains("failed authentication"), "\($0)") }
        try forged.write(r.fromJoiner)
        XCTAssertThrowsError(try w.receive()) { XCTAssertTrue("\($0)".contains("failed authentication"), "\($0)") }
    }

    /// Frames after the handshake: altered (with the checksum fixed up), corrupted, replayed,
    /// reordered, reflected back, or dropped, each fails authentication; untouched ones pass.
    func testTamperedReplayedReorderedAndReflectedFramesAreRefused() throws {
        func session() throws -> (RelaySession, Connection, Connection, [RawFrame]) {
            let r = try RelaySession()
            let w = try r.join(claim)
            let a = try XCTUnwrap(r.admissions.next(timeout: 5))
            for i in 0..<3 { try w.send(.heartbeat, tag: UInt64(i), bytes: Array("payload \(i)".utf8)) }
            let frames = try (0..<3).map { _ in try RawFrame.read(r.fromJoiner) }
            return (r, w, a.conn, frames)
        }
        // Untouched: all three arrive, with no checksum (the tag covers every byte).
        do {
            let (r, _, l, fs) = try session(); defer { r.stop() }
            for f in fs { XCTAssertEqual(Array(f.header[20..<24]), [0, 0, 0, 0], "checksum field after the handshake") }
            for f in fs { try f.write(r.toListener) }
            for i in 0..<3 { XCTAssertEqual(try l.receive(.heartbeat).payload, Array("payload \(i)".utf8)) }
        }
        let cases: [(String, ([RawFrame]) -> [RawFrame])] = [
            ("altered", { fs in var f = fs[0]; f.payload[0] ^= 1; f.fixChecksum(); return [f] }),
            // After the handshake the checksum field is 0 and the tag alone catches corruption.
            ("corrupted", { fs in var f = fs[0]; f.payload[3] ^= 0x40; return [f] }),
            ("corrupted checksum field", { fs in var f = fs[0]; f.header[20] ^= 1; return [f] }),
            ("altered tag field", { fs in var f = fs[0]; f.header[8] ^= 1; return [f] }),
            ("replayed", { fs in [fs[0], fs[0]] }),
            ("reordered", { fs in [fs[1], fs[0]] }),
            ("dropped", { fs in [fs[0], fs[2]] }),
        ]
        for (name, mutate) in cases {
            let (r, _, l, fs) = try session(); defer { r.stop() }
            let sent = mutate(fs)
            for f in sent { try f.write(r.toListener) }
            var got = 0
            XCTAssertThrowsError(try { while true { _ = try l.receive(); got += 1 } }(), name) { e in
                XCTAssertTrue("\(e)".contains("failed authentication"), "\(name): \(e)")
            }
            XCTAssertLessThan(got, sent.count, name)
        }
        // Reflected: the joiner's own frame sent back to it (the other direction's key).
        let (r, w, _, fs) = try session(); defer { r.stop() }
        try fs[0].write(r.fromJoiner)
        XCTAssertThrowsError(try w.receive()) { XCTAssertTrue("\($0)".contains("failed authentication"), "\($0)") }
    }

    // MARK: strangers on the port

    /// 100 idle connections made before anyone joins do not delay a real joiner, and a
    /// connection sending a byte every 4 s is dropped at the handshake's hard deadline.
    func testIdleConnectionsAndSlowDripDoNotStallAdmission() throws {
        let l = try Listener(host: "127.0.0.1", port: 0)
        final class Lines: @unchecked Sendable { var all: [String] = []; let lock = NSLock() }
        let lines = Lines()
        let adm = try admissions(l, handshakeTimeout: 3, maxPending: 32) { s in lines.lock.lock(); lines.all.append(s); lines.lock.unlock() }
        defer { adm.stop() }
        let idle = (0..<100).map { _ in rawConnect(l.port) }
        defer { for fd in idle { close(fd) } }
        // The slow drip: a byte of a plausible claim frame every 4 s.
        let drip = SlowDrip(fd: rawConnect(l.port), bytes: Array("RGAN".utf8) + [Frame.version, FrameType.hello.rawValue], every: 4)
        defer { drip.stop() }
        usleep(300_000)
        let t0 = monotonic()
        let w = try Handshake.dial("127.0.0.1", l.port, name: "listener", claim: .hello, claim, auth: try auth(), role: "test",
                                   within: 10, ioTimeout: 10)
        let a = try XCTUnwrap(adm.next(timeout: 10))
        XCTAssertEqual(a.claim, claim)
        XCTAssertLessThan(monotonic() - t0, 2.5, "the real joiner waited behind the strangers")
        try w.send(.heartbeat, bytes: [1])
        XCTAssertEqual(try a.conn.receive(.heartbeat).payload, [1])
        // Every stranger is gone within the hard deadline (3 s), the drip included, although it
        // kept sending: nothing pending after 3 s + slack.
        Thread.sleep(forTimeInterval: 4)
        let c = adm.counts
        XCTAssertEqual(c.accepted, 102)
        XCTAssertEqual(c.admitted, 1)
        XCTAssertEqual(c.dropped, 101, "\(c)")
        XCTAssertGreaterThanOrEqual(c.evicted, 100 - 32, "at most 32 pending at once")
        lines.lock.lock(); let log = lines.all; lines.lock.unlock()
        XCTAssertTrue(log.contains { $0.contains("the handshake did not complete in time") }, log.suffix(5).joined(separator: "\n"))
    }

    /// A ring forms although its listeners took 100 idle connections first.
    func testRingFormsDespiteIdleConnections() throws {
        let ls = try (0..<3).map { _ in try Listener(host: "127.0.0.1", port: 0) }
        let idle = ls.flatMap { l in (0..<34).map { _ in rawConnect(l.port) } }
        defer { for fd in idle { close(fd) } }
        let ports = ls.map { $0.port }
        final class Box: @unchecked Sendable { var sums: [[Float]] = []; var errors: [String] = []; let lock = NSLock() }
        let box = Box()
        let g = DispatchGroup()
        let t0 = monotonic()
        for r in 0..<3 {
            g.enter()
            Thread {
                defer { g.leave() }
                do {
                    let ring = try Ring.form(rank: r, worldSize: 3, listener: ls[r], rightAddress: ("127.0.0.1", ports[(r + 1) % 3]),
                                             auth: try Authenticator(token: HostilePeerTests.token), codec: .none, timeout: 20, handshakeTimeout: 2)
                    var v: [Float] = [Float(r), 1]
                    try v.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                    box.lock.lock(); box.sums.append(v); box.lock.unlock()
                    ring.close()
                } catch { box.lock.lock(); box.errors.append("rank \(r): \(error)"); box.lock.unlock() }
            }.start()
        }
        XCTAssertEqual(g.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(box.errors, [])
        XCTAssertEqual(box.sums, [[3, 3], [3, 3], [3, 3]])
        XCTAssertLessThan(monotonic() - t0, 5, "the ring waited behind idle connections")
    }
}

/// A frame as read off the wire after the handshake: header, payload, tag.
struct RawFrame {
    var header: [UInt8]
    var payload: [UInt8]
    var tag: [UInt8]

    static func read(_ c: Connection) throws -> RawFrame {
        let h = try c.read(Frame.headerSize)
        let n = Int(h[16]) | Int(h[17]) << 8 | Int(h[18]) << 16 | Int(h[19]) << 24
        return RawFrame(header: h, payload: try c.read(n), tag: try c.read(FrameMAC.tagSize))
    }

    mutating func fixChecksum() {
        let crc = payload.withUnsafeBytes { frameChecksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { header[20 + i] = $0[i] } }
    }

    func write(_ c: Connection) throws {
        let all = header + payload + tag
        try all.withUnsafeBytes { try c.write([$0]) }
    }
}

/// A joiner -> relay -> listener path: the relay forwards the handshake frames (optionally
/// changing the claim) and then holds both plain connections for the test to use.
final class RelaySession: @unchecked Sendable {
    let listener: Listener
    let relayListener: Listener
    let admissions: Admissions<HostilePeerTests.Claim>
    var toListener: Connection!
    var fromJoiner: Connection!
    let relay: Thread
    let ready = DispatchSemaphore(value: 0)

    init(mutateClaim: @escaping @Sendable ([UInt8]) -> [UInt8] = { $0 }) throws {
        listener = try Listener(host: "127.0.0.1", port: 0)
        relayListener = try Listener(host: "127.0.0.1", port: 0)
        admissions = Admissions(listener: listener, claim: .hello, as: HostilePeerTests.Claim.self,
                                auth: try Authenticator(token: HostilePeerTests.token), role: "test",
                                wrongToken: "authentication failed: wrong token", ioTimeout: 10)
        let (rl, port) = (relayListener, listener.port)
        final class Ends: @unchecked Sendable { var a: Connection?; var b: Connection? }
        let ends = Ends()
        let sem = ready
        relay = Thread {
            defer { sem.signal() }
            guard let j = try? rl.accept(timeout: 10, ioTimeout: 10), let l = try? connect(to: "127.0.0.1", port, within: 5, ioTimeout: 10) else { return }
            ends.a = j; ends.b = l
            guard let ch = try? l.receive(.challenge), (try? j.send(ch)) != nil, var claim = try? j.receive(.hello) else { return }
            claim.payload = Array(claim.payload[0..<64]) + mutateClaim(Array(claim.payload[64...]))
            guard (try? l.send(claim)) != nil, let answer = try? l.receive() else { return }
            try? j.send(answer)
        }
        relay.start()
        self.ends = { (ends.a, ends.b) }
    }

    private var ends: () -> (Connection?, Connection?) = { (nil, nil) }

    /// The joiner's side: joins through the relay.
    func join(_ claim: HostilePeerTests.Claim) throws -> Connection {
        defer {
            ready.wait()
            (fromJoiner, toListener) = ends()
        }
        return try Handshake.dial("127.0.0.1", relayListener.port, name: "relay", claim: .hello, claim,
                                  auth: try Authenticator(token: HostilePeerTests.token), role: "test", within: 5, ioTimeout: 5)
    }

    func stop() {
        admissions.stop()
        toListener?.close()
        fromJoiner?.close()
    }
}
