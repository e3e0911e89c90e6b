import Foundation

/// The token handshake, the same on every RingGAN connection (a worker joining the coordinator,
/// a rank joining its right neighbour), mutual:
///
///     listener -> joiner   challenge   Nl: 32 random bytes
///     joiner -> listener   claim       Nj: 32 random bytes | MAC_claim (32) | the claim, JSON
///     listener -> joiner   welcome     MAC_welcome (32), or reject with the reason
///
///     MAC_claim   = HMAC(K, "RingGAN v2 <role> claim",   Nl, Nj, claim bytes)
///     MAC_welcome = HMAC(K, "RingGAN v2 <role> welcome", Nl, Nj, claim bytes)
///
/// K is the token's key (`Authenticator`), `role` names the kind of connection ("coordinator",
/// "ring") so that a claim made for one is worthless for the other. The joiner's MAC covers the
/// exact bytes of everything it claims (rank, ring address and port, ...); the listener's proves
/// that it knows the token too, before the joiner believes anything it is sent, so a fake
/// listener learns nothing it can use and cannot steer the joiner. Both nonces are fresh, so no
/// answer can be replayed, and a challenge relayed from a real listener gains the relay nothing:
/// every frame after the welcome carries a tag under keys derived from K and both nonces
/// (`FrameMAC`), which the relay cannot make. The token never crosses the wire.
///
/// The listener's decision about the claim itself (a rank taken or out of range) comes after the
/// welcome, as an authenticated `reject` frame (so a stranger cannot forge one).
public enum Handshake {
    /// Bytes of a claim frame before the claim: the joiner's nonce and its MAC.
    static let claimPrefix = 64
    /// The largest claim accepted (its JSON).
    public static let maxClaim = 4096

    /// How the listening side's handshake ended.
    public enum Outcome<Claim> {
        /// The peer proved the token; the welcome (with this side's proof) has gone out and the
        /// connection's frames are authenticated from here on.
        case admitted(Claim)
        /// The peer failed to prove the token: it was sent a `reject` with `why` and closed.
        case refused(String)
    }

    /// The listening side. A malformed or broken exchange throws (the caller closes the
    /// connection); a wrong MAC is answered with `wrongToken` and refused.
    public static func accept<Claim: Decodable>(_ c: Connection, claim type: FrameType, as _: Claim.Type, auth: Authenticator,
                                                role: String, wrongToken: String) throws -> Outcome<Claim> {
        let nl = Authenticator.challenge()
        try c.send(.challenge, bytes: nl)
        let f = try c.receive(type, maxPayload: claimPrefix + maxClaim)
        guard f.payload.count > claimPrefix else { throw NetError(c.peer, "truncated \(type) claim (\(f.payload.count) bytes)") }
        let nj = Array(f.payload[0..<32]), mac = Array(f.payload[32..<64]), body = Array(f.payload[64...])
        guard auth.verify(mac, "RingGAN v2 \(role) claim", [nl, nj, body]) else {
            try? c.send(.reject, bytes: Array(wrongToken.utf8))
            c.close()
            return .refused(wrongToken)
        }
        // Parsed only once it is known to come from a holder of the token.
        let claim = try Frame(type, payload: body).decode(Claim.self, from: c.peer)
        try c.send(.welcome, bytes: auth.mac("RingGAN v2 \(role) welcome", [nl, nj, body]))
        startSession(c, auth: auth, role: role, nl: nl, nj: nj, listener: true)
        return .admitted(claim)
    }

    /// The joining side: answers the challenge with `claim` and its MAC, then checks the
    /// listener's proof. A `reject`, or a listener that cannot prove the token, throws
    /// `HandshakeRefused`; a broken exchange throws `NetError`.
    public static func join<Claim: Encodable>(_ c: Connection, claim type: FrameType, _ claim: Claim, auth: Authenticator,
                                              role: String) throws {
        let challenge = try c.receive(.challenge, maxPayload: 64)
        guard challenge.payload.count == 32 else {
            throw HandshakeRefused(peer: c.peer, reason: "a challenge of \(challenge.payload.count) bytes, not 32: not a RingGAN \(role) listener")
        }
        let nl = challenge.payload, nj = Authenticator.challenge()
        let body = Array(try JSONEncoder().encode(claim))
        try c.send(type, bytes: nj + auth.mac("RingGAN v2 \(role) claim", [nl, nj, body]) + body)
        let answer = try c.receive(maxPayload: 4096)
        switch answer.type {
        case .welcome:
            guard auth.verify(answer.payload, "RingGAN v2 \(role) welcome", [nl, nj, body]) else {
                throw HandshakeRefused(peer: c.peer, reason: "the \(role) listener did not prove the shared token (a fake \(role), or another token); nothing it sends is trusted")
            }
        case .reject:
            throw HandshakeRefused(peer: c.peer, reason: "refused: \(String(decoding: answer.payload.prefix(512), as: UTF8.self)) (unauthenticated reply)")
        default:
            throw HandshakeRefused(peer: c.peer, reason: "expected a welcome frame, got \(answer.type): not a RingGAN \(role) listener")
        }
        startSession(c, auth: auth, role: role, nl: nl, nj: nj, listener: false)
    }

    static func startSession(_ c: Connection, auth: Authenticator, role: String, nl: [UInt8], nj: [UInt8], listener: Bool) {
        let up = FrameMAC(key: auth.sessionKey("RingGAN v2 \(role) joiner->listener", listenerNonce: nl, joinerNonce: nj))
        let down = FrameMAC(key: auth.sessionKey("RingGAN v2 \(role) listener->joiner", listenerNonce: nl, joinerNonce: nj))
        c.beginSession(send: listener ? down : up, receive: listener ? up : down)
    }

    /// Connects to `host:port` and joins, retrying a connection that breaks or times out before
    /// the welcome (a listener busy with a flood of strangers may drop it) until `within` seconds
    /// have passed; a refusal is final. `handshakeTimeout` bounds each attempt's exchange.
    /// `cancelled` true between attempts (or while a connect waits) ends it with
    /// `RingFormationCancelled`.
    public static func dial<Claim: Encodable>(_ host: String, _ port: UInt16, name: String, claim type: FrameType, _ claim: Claim,
                                              auth: Authenticator, role: String, within: Double, ioTimeout: Double,
                                              handshakeTimeout: Double = HandshakeLimits.dialerTimeout, cancelled: (() -> Bool)? = nil) throws -> Connection {
        let deadline = monotonic() + within
        while true {
            if cancelled?() == true { throw RingFormationCancelled() }
            let c = try connect(to: host, port, within: max(0.1, deadline - monotonic()), ioTimeout: ioTimeout, name: name, cancelled: cancelled)
            c.setHardDeadline(handshakeTimeout, what: "the handshake")
            do {
                try join(c, claim: type, claim, auth: auth, role: role)
                c.setHardDeadline(nil)
                return c
            } catch let e as HandshakeRefused {
                c.close()
                throw e
            } catch {
                c.close()
                if monotonic() + 0.2 > deadline {
                    throw NetError(name, within < 1 ? "could not complete the handshake: \(error)" : "could not complete the handshake within \(Int(within)) s: \(error)")
                }
                usleep(200_000)
            }
        }
    }
}

/// The listener refused the claim, or could not prove the token: not worth retrying.
public struct HandshakeRefused: Error, CustomStringConvertible {
    public let peer: String
    public let reason: String
    public var description: String { "\(peer): \(reason)" }
}

/// A connection whose peer proved the token, and what it claimed.
public struct Admitted<Claim>: @unchecked Sendable {
    public let claim: Claim
    public let conn: Connection
}

/// Accepts connections on a listener and runs their handshakes concurrently, each on a thread
/// of its own under a hard deadline that received bytes do not extend; at most `maxPending`
/// run at once (a new connection beyond that evicts the oldest pending one, so a flood of idle
/// connections cannot keep a real peer out for longer than its own handshake). Admitted
/// connections queue for `next` in the order they finished. It keeps accepting until `stop`,
/// so strangers that connect while nobody is waiting are served (and dropped) meanwhile.
public final class Admissions<Claim: Decodable & Sendable>: @unchecked Sendable {
    public struct Counts: Sendable { public var accepted = 0, admitted = 0, refused = 0, dropped = 0, evicted = 0 }

    let listener: Listener
    let cond = NSCondition()
    var ready: [Admitted<Claim>] = []
    var pending: [ObjectIdentifier: (Connection, Double)] = [:]
    var stopped = false
    var acceptorDone = false
    private var tally = Counts()
    /// How many connections were accepted, admitted, refused, dropped and evicted so far.
    public var counts: Counts { cond.lock(); defer { cond.unlock() }; return tally }
    let log: @Sendable (String) -> Void

    /// `log` receives one line per refused or dropped connection (from the handshake threads).
    public init(listener: Listener, claim type: FrameType, as _: Claim.Type, auth: Authenticator, role: String, wrongToken: String,
                maxPending: Int = HandshakeLimits.maxPending, handshakeTimeout: Double = HandshakeLimits.listenerTimeout, ioTimeout: Double, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.listener = listener
        self.log = log
        let t = Thread { [self] in
            acceptLoop(type: type, auth: auth, role: role, wrongToken: wrongToken, maxPending: max(1, maxPending),
                       handshakeTimeout: handshakeTimeout, ioTimeout: ioTimeout)
        }
        t.name = "admissions-\(role)"
        t.start()
    }

    private func acceptLoop(type: FrameType, auth: Authenticator, role: String, wrongToken: String, maxPending: Int,
                            handshakeTimeout: Double, ioTimeout: Double) {
        defer { cond.lock(); acceptorDone = true; cond.broadcast(); cond.unlock() }
        while true {
            cond.lock(); let stop = stopped; cond.unlock()
            if stop { return }
            let c: Connection
            do {
                guard let a = try listener.accept(timeout: 0.2, ioTimeout: ioTimeout) else { continue }
                c = a
            } catch {
                usleep(50_000)
                continue
            }
            let id = ObjectIdentifier(c)
            cond.lock()
            tally.accepted += 1
            if pending.count >= maxPending, let oldest = pending.min(by: { $0.value.1 < $1.value.1 }) {
                pending[oldest.key] = nil
                tally.evicted += 1
                oldest.value.0.close()   // its handshake thread fails at once
            }
            pending[id] = (c, monotonic())
            cond.unlock()
            let h = Thread { [self] in
                c.setHardDeadline(handshakeTimeout, what: "the handshake")
                var outcome: Handshake.Outcome<Claim>?
                var failure = ""
                do { outcome = try Handshake.accept(c, claim: type, as: Claim.self, auth: auth, role: role, wrongToken: wrongToken) } catch {
                    failure = "\(error)"
                }
                c.setHardDeadline(nil)
                cond.lock()
                let wasPending = pending.removeValue(forKey: id) != nil
                switch outcome {
                case .admitted(let claim)? where wasPending && !stopped:
                    tally.admitted += 1
                    ready.append(Admitted(claim: claim, conn: c))
                    cond.broadcast()
                    cond.unlock()
                case .refused(let why)?:
                    tally.refused += 1
                    cond.unlock()
                    log("refused \(c.peer): \(why)")
                default:
                    tally.dropped += 1
                    cond.unlock()
                    c.close()
                    log(wasPending ? "dropped a connection from \(c.peer): \(failure)" : "dropped a connection from \(c.peer): evicted by newer connections while its handshake was pending")
                }
            }
            h.name = "handshake"
            h.start()
        }
    }

    public var isStopped: Bool { cond.lock(); defer { cond.unlock() }; return stopped }

    /// The next admitted connection whose peer is still connected, or nil after `timeout` seconds.
    public func next(timeout: Double) -> Admitted<Claim>? {
        let until = Date().addingTimeInterval(max(0, timeout))
        cond.lock()
        defer { cond.unlock() }
        while true {
            while !ready.isEmpty {
                let a = ready.removeFirst()
                if a.conn.isOpen { return a }
                a.conn.close()   // admitted while nobody was waiting, gone since
            }
            if stopped || Date() >= until { return nil }
            _ = cond.wait(until: until)
        }
    }

    /// Takes out of the queue the admitted connections whose claim `matches` (still connected),
    /// leaving the others queued in their order for `next`: a coordinator in training answers
    /// those it can answer at once (a process it declared dead) and keeps the rest for its next
    /// rendezvous.
    public func take(where matches: (Claim) -> Bool) -> [Admitted<Claim>] {
        cond.lock()
        defer { cond.unlock() }
        var taken: [Admitted<Claim>] = [], kept: [Admitted<Claim>] = []
        for a in ready {
            if !a.conn.isOpen { a.conn.close(); continue }
            if matches(a.claim) { taken.append(a) } else { kept.append(a) }
        }
        ready = kept
        return taken
    }

    /// Stops accepting; closes the connections admitted and not taken, and those still pending.
    public func stop() {
        cond.lock()
        stopped = true
        let left = ready.map { $0.conn } + pending.values.map { $0.0 }
        ready.removeAll()
        pending.removeAll()
        while !acceptorDone { _ = cond.wait(until: Date().addingTimeInterval(0.5)) }
        cond.unlock()
        for c in left { c.close() }
    }
}

/// The handshake's limits, named once for every listener and dialer.
public enum HandshakeLimits {
    /// Seconds a connecting peer has, in all, to complete the handshake at a listener (received
    /// bytes do not extend it: a slow-drip peer cannot hold a slot).
    public static let listenerTimeout: Double = 5
    /// Seconds a dialer waits for the listener's side of the handshake.
    public static let dialerTimeout: Double = 10
    /// Handshakes in progress at once at a listener; one beyond that evicts the oldest.
    public static let maxPending = 64
}
