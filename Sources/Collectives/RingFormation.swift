import Foundation

/// Rendezvous: joining the ring (gloo's rendezvous and pair set-up, apart from the algorithms).
extension Ring {
    /// Forms the ring: accepts the left neighbour on `listener` while connecting to the right
    /// one at `rightAddress`; both directions authenticate mutually with the shared token, and
    /// every frame after that carries a tag (`Handshake`). Handshakes on the listener run
    /// concurrently under a hard deadline (`Admissions`), so strangers and idle connections there
    /// are dropped without delaying the neighbour; a peer that proves the token but is not the
    /// expected neighbour (a stale rank of an earlier formation) gets an authenticated refusal.
    public static func form(rank: Int, worldSize: Int, listener: Listener, rightAddress: (String, UInt16), auth: Authenticator,
                            codec: GradientCodec, level: Int32 = 1, segmentFloats: Int = 1 << 18, timeout: Double,
                            handshakeTimeout: Double = 5, log: @escaping @Sendable (String) -> Void = { _ in }) throws -> Ring {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        precondition(worldSize <= SegmentTag.maxSteps, "a ring of at most \(SegmentTag.maxSteps) ranks (the segment tag's step field)")
        if worldSize == 1 { return single() }
        let leftRank = (rank - 1 + worldSize) % worldSize, rightRank = (rank + 1) % worldSize
        final class Box: @unchecked Sendable { var conn: Connection?; var error: Error? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let admissions = Admissions(listener: listener, claim: .ringHello, as: RingHello.self, auth: auth, role: "ring",
                                    wrongToken: "ring handshake refused: wrong token", handshakeTimeout: handshakeTimeout,
                                    ioTimeout: timeout, log: log)
        let acceptor = Thread {
            defer { done.signal() }
            let deadline = monotonic() + timeout
            while monotonic() < deadline {
                guard let a = admissions.next(timeout: min(1, max(0.01, deadline - monotonic()))) else {
                    if admissions.isStopped { return }   // the other direction failed
                    continue
                }
                let h = a.claim
                guard h.rank == leftRank, h.worldSize == worldSize, h.to == rank else {
                    let why = "ring handshake refused: rank \(rank) of \(worldSize) expects rank \(leftRank), not rank \(h.rank) of \(h.worldSize) (for rank \(h.to))"
                    log("\(a.conn.peer): \(why)")
                    try? a.conn.send(.reject, bytes: Array(why.utf8))
                    a.conn.close()
                    continue
                }
                try? a.conn.send(.welcome, bytes: [])   // the ring's own admission (authenticated)
                box.conn = a.conn
                return
            }
            box.error = NetError("ring listener :\(listener.port)", "rank \(leftRank) did not connect within \(Int(timeout)) s")
        }
        acceptor.start()
        let r: Connection
        do {
            r = try Handshake.dial(rightAddress.0, rightAddress.1, name: "rank \(rightRank) at \(rightAddress.0):\(rightAddress.1)",
                                   claim: .ringHello, RingHello(rank: rank, worldSize: worldSize, to: rightRank), auth: auth, role: "ring",
                                   within: timeout, ioTimeout: timeout, handshakeTimeout: handshakeTimeout)
            // The right neighbour's own admission: a welcome, or an authenticated reject.
            _ = try r.receive(.welcome, maxPayload: 0)
        } catch {
            admissions.stop()
            done.wait()
            box.conn?.close()
            throw error
        }
        done.wait()
        admissions.stop()
        if let e = box.error { r.close(); throw e }
        return Ring(rank: rank, worldSize: worldSize, right: r, left: box.conn!, codec: codec, level: level, segmentFloats: segmentFloats)
    }
}

/// What a rank says when it dials its right neighbour: who it is and whom it expects to reach.
struct RingHello: Codable, Sendable { var rank: Int; var worldSize: Int; var to: Int }
