import Collectives
import Foundation
import XCTest

/// Runs `body(rank)` for ranks 0..<n, each on a thread of its own; fails the test on a timeout or
/// on any rank's error (named by rank).
public func onRankThreads(_ n: Int, what: String = "ring", timeout: Double = 60,
                          _ body: @escaping @Sendable (Int) throws -> Void) {
    final class Errors: @unchecked Sendable { var list: [String] = []; let lock = NSLock() }
    let errors = Errors()
    let group = DispatchGroup()
    for r in 0..<n {
        group.enter()
        Thread {
            defer { group.leave() }
            do { try body(r) } catch {
                errors.lock.lock(); errors.list.append("rank \(r): \(error)"); errors.lock.unlock()
            }
        }.start()
    }
    XCTAssertEqual(group.wait(timeout: .now() + timeout), .success, "\(what) of \(n) timed out")
    XCTAssertEqual(errors.list, [], "\(what) errors")
}

/// Forms a ring of `n` ranks on loopback (one thread per rank) and runs `body` on each; `far`:
/// with the far links (every pair up to `everyPairUpTo` ranks, else distances 2, 4, 8, ...).
public func withRing(_ n: Int, codec: GradientCodec, segment: Int = 1 << 16, token: String = "secret-ring-token-for-tests",
              far: Bool = false, everyPairUpTo: Int = Ring.everyPairLinkedUpTo, hosts: HostLayout? = nil, _ body: @escaping @Sendable (Ring) throws -> Void) throws {
    let listeners = try (0..<n).map { _ in try Listener(host: "127.0.0.1", port: 0) }
    let ports = listeners.map { $0.port }
    onRankThreads(n) { r in
        let farAddresses = far ? Ring.farDistances(n, everyPairUpTo: everyPairUpTo).map { ("127.0.0.1", ports[(r + $0) % n]) } : []
        let hostLinks = hosts.map { l in
            HostLinkAddresses(layout: l, inter: ("127.0.0.1", ports[l.interTo(r)]),
                              local: (1..<l.perHost).map { ("127.0.0.1", ports[l.localTo(r, $0)]) })
        }
        let ring = try Ring.form(rank: r, worldSize: n, listener: listeners[r], rightAddress: ("127.0.0.1", ports[(r + 1) % n]),
                                 farAddresses: farAddresses, everyPairUpTo: everyPairUpTo, hostLinks: hostLinks,
                                 auth: try Authenticator(token: token), codec: codec, segmentFloats: segment, timeout: 20)
        try body(ring)
        ring.close()
    }
}
