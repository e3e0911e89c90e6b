import Foundation

/// Rendezvous: joining the ring (gloo's rendezvous and pair set-up, apart from the algorithms).
extension Ring {
    /// Rings of at most this many ranks link every pair (`farDistances`), and gather the
    /// statistics in one round (`RingAlgorithms.directAllGather`); larger ones in ceil(log2 N)
    /// rounds over the links at distances 2, 4, 8, ... (`RingAlgorithms.bruckAllGather`).
    public static let everyPairLinkedUpTo = 32

    /// The distances of the far links a ring of `worldSize` forms besides its neighbours: every
    /// distance 2 ... N - 1 up to `everyPairLinkedUpTo` ranks, else 2, 4, 8, ... below the size.
    /// Rank r dials r + d and accepts r - d for each; the statistics' all-gather sends over the
    /// link from r - d and receives over the one to r + d.
    public static func farDistances(_ worldSize: Int, everyPairUpTo: Int = everyPairLinkedUpTo) -> [Int] {
        if worldSize <= everyPairUpTo { return worldSize > 2 ? Array(2..<worldSize) : [] }
        return bruckDistances(worldSize)
    }

    /// The distances of `bruckAllGather`'s rounds after the first (distance 1: the neighbours):
    /// 2, 4, 8, ... below the size.
    public static func bruckDistances(_ worldSize: Int) -> [Int] {
        var out: [Int] = []
        var d = 2
        while d < worldSize { out.append(d); d *= 2 }
        return out
    }

    /// Forms the ring: accepts the left neighbour on `listener` while connecting to the right
    /// one at `rightAddress` and, with `farAddresses` (the addresses of ranks r + d for each of
    /// `farDistances(worldSize, everyPairUpTo:)`, in that order), the far links too; every connection authenticates
    /// mutually with the shared token, and every frame after that carries a tag (`Handshake`).
    /// Handshakes on the listener run concurrently under a hard deadline (`Admissions`), so
    /// strangers and idle connections there are dropped without delaying the neighbours; a peer
    /// that proves the token but is not an expected one (a stale rank of an earlier formation)
    /// gets an authenticated refusal. `cancelled` is asked while it waits (about every 0.25 s):
    /// true ends the formation at once with `RingFormationCancelled` (a worker whose coordinator
    /// said stop, or was lost, during the formation).
    public static func form(rank: Int, worldSize: Int, listener: Listener, rightAddress: (String, UInt16),
                            farAddresses: [(String, UInt16)] = [], everyPairUpTo: Int = everyPairLinkedUpTo, hostLinks: HostLinkAddresses? = nil, auth: Authenticator,
                            codec: GradientCodec, level: Int32 = 1, segmentFloats: Int = 1 << 18, timeout: Double,
                            handshakeTimeout: Double = HandshakeLimits.listenerTimeout, log: @escaping @Sendable (String) -> Void = { _ in },
                            cancelled: (@Sendable () -> Bool)? = nil) throws -> Ring {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        precondition(worldSize <= SegmentTag.maxSteps, "a ring of at most \(SegmentTag.maxSteps) ranks (the segment tag's step field)")
        if worldSize == 1 { return single() }
        let far = farDistances(worldSize, everyPairUpTo: everyPairUpTo)
        precondition(farAddresses.isEmpty || farAddresses.count == far.count,
                     "form: \(farAddresses.count) far addresses for the \(far.count) far links of a ring of \(worldSize)")
        // Every link this rank dials (to `to`, at `address`) and accepts (from `from`).
        var planned: [PlannedLink] = ([1] + (farAddresses.isEmpty ? [] : far)).enumerated().map { i, d in
            PlannedLink(key: .distance(d), to: (rank + d) % worldSize, from: (rank - d + worldSize) % worldSize,
                        address: i == 0 ? rightAddress : farAddresses[i - 1])
        }
        if let hostLinks {
            let layout = hostLinks.layout
            precondition(layout.hosts * layout.perHost == worldSize && layout.hosts >= 2 && layout.perHost >= 2,
                         "form: a layout of \(layout) for a ring of \(worldSize)")
            precondition(hostLinks.local.count == layout.perHost - 1, "form: \(hostLinks.local.count) local addresses for \(layout)")
            planned.append(PlannedLink(key: .host(0), to: layout.interTo(rank), from: layout.interFrom(rank), address: hostLinks.inter))
            for (i, address) in hostLinks.local.enumerated() {
                planned.append(PlannedLink(key: .host(i + 1), to: layout.localTo(rank, i + 1), from: layout.localFrom(rank, i + 1),
                                           address: address))
            }
        }
        let links = planned
        let admissions = Admissions(listener: listener, claim: .ringHello, as: RingHello.self, auth: auth, role: "ring",
                                    wrongToken: "ring handshake refused: wrong token", handshakeTimeout: handshakeTimeout,
                                    ioTimeout: timeout, log: log)
        let accepted = AcceptedLinks()
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            accepted.run(admissions, rank: rank, worldSize: worldSize, planned: links, listener: listener,
                         timeout: timeout, log: log, cancelled: cancelled)
        }.start()
        var dialed: [LinkKey: Connection] = [:]
        do {
            for link in planned {
                if cancelled?() == true { throw RingFormationCancelled() }
                dialed[link.key] = try dial(link.address, from: rank, to: link.to, worldSize: worldSize, key: link.key,
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
        let farLinks = far.filter { dialed[.distance($0)] != nil }
            .map { (distance: $0, toward: dialed[.distance($0)]!, from: accepted.links[.distance($0)]!) }
        var hosts: HostConnections?
        if let hostLinks {
            let L = hostLinks.layout.perHost
            hosts = HostConnections(layout: hostLinks.layout,
                                    inter: (dialed[.host(0)]!, accepted.links[.host(0)]!),
                                    local: (1..<L).map { (dialed[.host($0)]!, accepted.links[.host($0)]!) })
        }
        return Ring(rank: rank, worldSize: worldSize, right: dialed[.distance(1)]!, left: accepted.links[.distance(1)]!, far: farLinks,
                    hosts: hosts, codec: codec, level: level, segmentFloats: segmentFloats)
    }

    /// Dials rank `to` (at distance `distance` round the ring) and waits for its admission: a
    /// welcome, or an authenticated reject.
    private static func dial(_ address: (String, UInt16), from rank: Int, to: Int, worldSize: Int, key: LinkKey, auth: Authenticator,
                             timeout: Double, handshakeTimeout: Double, cancelled: (@Sendable () -> Bool)?) throws -> Connection {
        var hello = RingHello(rank: rank, worldSize: worldSize, to: to)
        switch key {
        case .distance(let d): hello.distance = d == 1 ? nil : d
        case .host(let k): hello.hostLink = k
        }
        let c = try Handshake.dial(address.0, address.1, name: "rank \(to) at \(address.0):\(address.1)",
                                   claim: .ringHello, hello, auth: auth, role: "ring",
                                   within: timeout, ioTimeout: timeout, handshakeTimeout: handshakeTimeout, cancelled: cancelled)
        do { _ = try c.receive(.welcome, maxPayload: 0) } catch { c.close(); throw error }
        return c
    }
}

/// Which of a rank's links a connection is: one at a distance round the ring (1, the neighbours;
/// 2, 4, ... the far links) or one of the hierarchical all-reduce's (`HostLayout`): 0 the ring
/// between hosts, k >= 1 the local lane to local rank + k.
enum LinkKey: Hashable, CustomStringConvertible {
    case distance(Int)
    case host(Int)

    var description: String {
        switch self {
        case .distance(let d): return d == 1 ? "" : ", distance \(d)"
        case .host(0): return ", the link between hosts"
        case .host(let k): return ", host link \(k)"
        }
    }
}

/// A link of the formation: dialled to rank `to` at `address`, accepted from rank `from`.
struct PlannedLink {
    let key: LinkKey
    let to: Int
    let from: Int
    let address: (String, UInt16)
}

/// The links a rank accepts while forming: one from each planned link's `from`, taken from the
/// listener's admitted connections until all are there or the time is up.
private final class AcceptedLinks: @unchecked Sendable {
    var links: [LinkKey: Connection] = [:]
    var error: Error?

    func run(_ admissions: Admissions<RingHello>, rank: Int, worldSize: Int, planned: [PlannedLink], listener: Listener,
             timeout: Double, log: @Sendable (String) -> Void, cancelled: (@Sendable () -> Bool)?) {
        let deadline = monotonic() + timeout
        let expected = Dictionary(uniqueKeysWithValues: planned.map { ($0.key, $0.from) })
        while links.count < planned.count && monotonic() < deadline {
            if cancelled?() == true { error = RingFormationCancelled(); return }
            guard let a = admissions.next(timeout: min(0.25, max(0.01, deadline - monotonic()))) else {
                if admissions.isStopped { return }   // the other direction failed
                continue
            }
            let h = a.claim
            let key: LinkKey = h.hostLink.map { .host($0) } ?? .distance(h.distance ?? 1)
            guard let from = expected[key], links[key] == nil, h.rank == from, h.worldSize == worldSize, h.to == rank else {
                let want = expected[key].map { "rank \($0)" } ?? "no such link"
                let why = "ring handshake refused: rank \(rank) of \(worldSize) expects \(want), "
                    + "not rank \(h.rank) of \(h.worldSize) (for rank \(h.to)\(key))"
                log("\(a.conn.peer): \(why)")
                try? a.conn.send(.reject, bytes: Array(why.utf8))
                a.conn.close()
                continue
            }
            try? a.conn.send(.welcome, bytes: [])   // the ring's own admission (authenticated)
            links[key] = a.conn
        }
        if links.count < planned.count {
            let missing = planned.filter { links[$0.key] == nil }.map { "rank \($0.from)\($0.key)" }
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
    /// Which link of the hierarchical all-reduce (`LinkKey.host`), absent for the ring's own.
    var hostLink: Int? = nil
}
