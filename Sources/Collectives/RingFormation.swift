import Foundation

/// Rendezvous: joining the ring (gloo's rendezvous and pair set-up, apart from the algorithms).
extension Ring {
    /// The distances of the far links a ring of `worldSize` forms besides its neighbours: 2, 4,
    /// 8, ... below the size. Rank r dials r + d and accepts r - d for each; round k of the
    /// statistics' all-gather (`RingAlgorithms.bruckAllGather`) receives over the link to
    /// r + 2^k and sends over the one from r - 2^k.
    public static func farDistances(_ worldSize: Int) -> [Int] {
        var out: [Int] = []
        var d = 2
        while d < worldSize { out.append(d); d *= 2 }
        return out
    }

    /// Forms the ring: accepts the left neighbour on `listener` while connecting to the right
    /// one at `rightAddress` and, with `farAddresses` (the addresses of ranks r + d for each of
    /// `farDistances`, in that order), the far links too; every connection authenticates
    /// mutually with the shared token, and every frame after that carries a tag (`Handshake`).
    /// Handshakes on the listener run concurrently under a hard deadline (`Admissions`), so
    /// strangers and idle connections there are dropped without delaying the neighbours; a peer
    /// that proves the token but is not an expected one (a stale rank of an earlier formation)
    /// gets an authenticated refusal. `cancelled` is asked while it waits (about every 0.25 s):
    /// true ends the formation at once with `RingFormationCancelled` (a worker whose coordinator
    /// said stop, or was lost, during the formation).
    public static func form(rank: Int, worldSize: Int, listener: Listener, rightAddress: (String, UInt16),
                            farAddresses: [(String, UInt16)] = [], auth: Authenticator,
                            codec: GradientCodec, level: Int32 = 1, segmentFloats: Int = 1 << 18, timeout: Double,
                            handshakeTimeout: Double = HandshakeLimits.listenerTimeout, log: @escaping @Sendable (String) -> Void = { _ in },
                            cancelled: (@Sendable () -> Bool)? = nil) throws -> Ring {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        precondition(worldSize <= SegmentTag.maxSteps, "a ring of at most \(SegmentTag.maxSteps) ranks (the segment tag's step field)")
        if worldSize == 1 { return single() }
        let far = farDistances(worldSize)
        precondition(farAddresses.isEmpty || farAddresses.count == far.count,
                     "form: \(farAddresses.count) far addresses for the \(far.count) far links of a ring of \(worldSize)")
        let distances = [1] + (farAddresses.isEmpty ? [] : far)
        let admissions = Admissions(listener: listener, claim: .ringHello, as: RingHello.self, auth: auth, role: "ring",
                                    wrongToken: "ring handshake refused: wrong token", handshakeTimeout: handshakeTimeout,
                                    ioTimeout: timeout, log: log)
        let accepted = AcceptedLinks()
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            accepted.run(admissions, rank: rank, worldSize: worldSize, distances: distances, listener: listener,
                         timeout: timeout, log: log, cancelled: cancelled)
        }.start()
        var dialed: [Int: Connection] = [:]
        do {
            for (d, address) in zip(distances, [rightAddress] + farAddresses) {
                if cancelled?() == true { throw RingFormationCancelled() }
                dialed[d] = try dial(address, from: rank, to: (rank + d) % worldSize, worldSize: worldSize, distance: d,
                                     auth: auth, timeout: timeout, handshakeTimeout: handshakeTimeout, cancelled: cancelled)
            }
        } catch {
            admissions.stop()
            done.wait()
            for c in accepted.links.values { c.close() }
            for c in dialed.values { c.close() }
            throw error
        }
        done.wait()
        admissions.stop()
        if let e = accepted.error {
            for c in accepted.links.values { c.close() }
            for c in dialed.values { c.close() }
            throw e
        }
        let farLinks = far.filter { dialed[$0] != nil }.map { (distance: $0, toward: dialed[$0]!, from: accepted.links[$0]!) }
        return Ring(rank: rank, worldSize: worldSize, right: dialed[1]!, left: accepted.links[1]!, far: farLinks,
                    codec: codec, level: level, segmentFloats: segmentFloats)
    }

    /// Dials rank `to` (at distance `distance` round the ring) and waits for its admission: a
    /// welcome, or an authenticated reject.
    private static func dial(_ address: (String, UInt16), from rank: Int, to: Int, worldSize: Int, distance: Int, auth: Authenticator,
                             timeout: Double, handshakeTimeout: Double, cancelled: (@Sendable () -> Bool)?) throws -> Connection {
        let hello = RingHello(rank: rank, worldSize: worldSize, to: to, distance: distance == 1 ? nil : distance)
        let c = try Handshake.dial(address.0, address.1, name: "rank \(to) at \(address.0):\(address.1)",
                                   claim: .ringHello, hello, auth: auth, role: "ring",
                                   within: timeout, ioTimeout: timeout, handshakeTimeout: handshakeTimeout, cancelled: cancelled)
        do { _ = try c.receive(.welcome, maxPayload: 0) } catch { c.close(); throw error }
        return c
    }
}

/// The links a rank accepts while forming: one from rank r - d for each distance d, taken from
/// the listener's admitted connections until all are there or the time is up.
private final class AcceptedLinks: @unchecked Sendable {
    var links: [Int: Connection] = [:]
    var error: Error?

    func run(_ admissions: Admissions<RingHello>, rank: Int, worldSize: Int, distances: [Int], listener: Listener,
             timeout: Double, log: @Sendable (String) -> Void, cancelled: (@Sendable () -> Bool)?) {
        let deadline = monotonic() + timeout
        while links.count < distances.count && monotonic() < deadline {
            if cancelled?() == true { error = RingFormationCancelled(); return }
            guard let a = admissions.next(timeout: min(0.25, max(0.01, deadline - monotonic()))) else {
                if admissions.isStopped { return }   // the other direction failed
                continue
            }
            let h = a.claim, d = h.distance ?? 1
            let from = (rank - d + worldSize) % worldSize
            guard distances.contains(d), links[d] == nil, h.rank == from, h.worldSize == worldSize, h.to == rank else {
                let expected = (rank - 1 + worldSize) % worldSize
                let why = "ring handshake refused: rank \(rank) of \(worldSize) expects rank \(d == 1 ? expected : from), "
                    + "not rank \(h.rank) of \(h.worldSize) (for rank \(h.to)\(d == 1 ? "" : ", distance \(d)"))"
                log("\(a.conn.peer): \(why)")
                try? a.conn.send(.reject, bytes: Array(why.utf8))
                a.conn.close()
                continue
            }
            try? a.conn.send(.welcome, bytes: [])   // the ring's own admission (authenticated)
            links[d] = a.conn
        }
        if links.count < distances.count {
            let missing = distances.filter { links[$0] == nil }.map { "rank \((rank - $0 + worldSize) % worldSize)" }
            error = NetError("ring listener :\(listener.port)", "\(missing.joined(separator: ", ")) did not connect within \(Int(timeout)) s")
        }
    }
}


/// What a rank says when it dials a peer: who it is, whom it expects to reach, and at which
/// distance round the ring (absent for the right neighbour, as older ranks send it).
struct RingHello: Codable, Sendable {
    var rank: Int
    var worldSize: Int
    var to: Int
    var distance: Int? = nil
}
