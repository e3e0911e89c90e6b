import Collectives
import Datasets
import Foundation
import GAN
import Telemetry

/// Control messages between the coordinator and the workers (JSON frame payloads).
/// A worker's claim in the handshake (all of it under the worker's MAC, `Handshake`).
public struct HelloMessage: Codable, Sendable {
    public var rank: Int
    public var ringHost: String
    public var ringPort: UInt16
    public var pid: Int32
    /// The machine this worker runs on (`gan-worker --node`; absent: its ring address's host):
    /// workers on the same one reduce gradients among themselves first (`HostLayout`).
    public var node: String? = nil
    /// The worker takes heartbeat frames from the coordinator during training (true from the
    /// version that does): only then are they sent, as an older worker refuses them.
    public var heartbeats: Bool? = nil
    public init(rank: Int, ringHost: String, ringPort: UInt16, pid: Int32, node: String? = nil, heartbeats: Bool? = nil) {
        self.rank = rank
        self.ringHost = ringHost
        self.ringPort = ringPort
        self.pid = pid
        self.node = node
        self.heartbeats = heartbeats
    }
}

public struct StartMessage: Codable, Sendable {
    public var config: GANConfig
    public var rank: Int
    public var worldSize: Int
    public var rightHost: String
    public var rightPort: UInt16
    public var runDir: String
    public var sampleEvery: Int
    public var checkpointEvery: Int
    public var keep: Int
    /// Checkpoint every rank loads before training (a resumed or re-formed run).
    public var resume: String?
    public var codec: GradientCodec
    /// `--codec auto`: once the ring forms, weigh `codec` against raw on these links and use the
    /// faster (`Ring.chooseCodec`); absent from older coordinators.
    public var autoCodec: Bool? = nil
    public var level: Int32
    public var checksumEvery: Int
    /// Seconds any network wait may last.
    public var timeout: Double
    public var heartbeat: Double
    /// Rank 0's metrics cadence (absent from older coordinators: every step).
    public var logEvery: Int? = nil
    /// The ring addresses of ranks rank + d for each of `Ring.farDistances(worldSize)`, for the
    /// statistics' log2-round all-gather (absent from older coordinators: statistics go round
    /// the ring).
    public var farHosts: [String]? = nil
    public var farPorts: [UInt16]? = nil

    /// The hierarchical all-reduce (`HostLayout`): hosts x ranks a host, the address of rank
    /// `interTo` and those of `localTo(k)` for k = 1 ..< perHost; absent: gradients go round
    /// the flat ring.
    public var hosts: Int? = nil
    public var perHost: Int? = nil
    public var interHost: String? = nil
    public var interPort: UInt16? = nil
    public var localHosts: [String]? = nil
    public var localPorts: [UInt16]? = nil

    /// The host links' addresses, or nil when the coordinator sent none (or an inconsistent set).
    public var hostLinks: HostLinkAddresses? {
        guard let H = hosts, let L = perHost, H >= 2, L >= 2, H * L == worldSize, let ih = interHost, let ip = interPort,
              let lh = localHosts, let lp = localPorts, lh.count == L - 1, lp.count == L - 1 else { return nil }
        return HostLinkAddresses(layout: HostLayout(hosts: H, perHost: L), inter: (ih, ip), local: Array(zip(lh, lp)))
    }

    /// The far links' addresses, or none when the coordinator sent none (or a broken list).
    public var farAddresses: [(String, UInt16)] {
        guard let h = farHosts, let p = farPorts, h.count == p.count, h.count == Ring.farDistances(worldSize).count else { return [] }
        return Array(zip(h, p))
    }
}

/// Header of a `batch` frame; the shard's pixels (uint8, count x height x width) follow it.
public struct BatchHeader: Codable, Sendable {
    public var step: Int
    public var iteration: Int
    /// Positions of the shard's samples within the global batch.
    public var positions: [Int]
    public var height: Int
    public var width: Int
    /// The data position after this step (on the step's last iteration): saved in checkpoints.
    public var sampler: EpochSampler?
    /// Set on every shard of the run's last step when the coordinator ends the run before
    /// `config.steps` (`--time-limit`): the workers write their final grid and checkpoint after
    /// it. Absent otherwise.
    public var last: Bool? = nil
}

/// A rank's report of a finished step: its metrics (over its shard), the shard's size, a replica
/// checksum on the steps that compare them, and its ring traffic so far.
public struct StepDoneMessage: Codable, Sendable {
    public var shard: Int
    public var metrics: StepMetrics
    public var checksum: UInt32?
    public var wireBytes: Int
    public var rawBytes: Int
    public var step: Int { metrics.step }
}

/// A step every rank has finished, as the coordinator shows it: the global batch's metrics
/// (shard means weighted by shard size), throughput and ring traffic.
public struct ClusterStep: Sendable {
    public var metrics: StepMetrics
    public var totalSteps: Int
    public var worldSize: Int
    /// Real images per second since this formation started.
    public var imagesPerSecond: Double
    /// Ring traffic so far, summed over the ranks: bytes sent, and what they would have been raw.
    public var wireBytes: Int
    public var rawBytes: Int
    public var compressionRatio: Double { rawBytes > 0 ? Double(rawBytes) / Double(max(wireBytes, 1)) : 1 }

    /// The progress line: the metrics' fields, then throughput and (with several ranks) traffic.
    public func progressFields(_ config: GANConfig) -> [(String, String)] {
        var kv = metrics.progressFields(config)
        kv.append(("img/s", String(format: "%.0f", imagesPerSecond)))
        if worldSize > 1 {
            kv.append(("wire MB", String(format: "%.1f", Double(wireBytes) / 1e6)))
            kv.append(("ratio", String(format: "%.2f", compressionRatio)))
        }
        return kv
    }

    /// A `--json` line: the metrics' keys and `images_per_sec`, `wire_bytes`, `compression_ratio`.
    public func jsonLine() -> String {
        metrics.jsonLine(["images_per_sec": imagesPerSecond, "wire_bytes": Double(wireBytes), "compression_ratio": compressionRatio])
    }
}

public struct StopMessage: Codable, Sendable {
    public var reason: String
    /// The coordinator re-forms the ring: reconnect and wait for a new start.
    public var reform: Bool
    /// The run was asked to stop (SIGINT, SIGTERM to the coordinator) before this formation
    /// trained a step: nothing failed, the worker ends cleanly (absent from older coordinators).
    public var interrupted: Bool? = nil
}

extension BatchHeader {
    /// The largest image side a batch may declare.
    public static let maxSide = 4096

    /// Unpacks and checks a `batch` frame's payload (the header, then the shard's pixels) from
    /// `peer`, for a run whose global batch is `batchSize`: sides in 1...maxSide, distinct
    /// positions inside the global batch, and exactly count x height x width pixel bytes
    /// (checked arithmetic). Anything else throws naming the peer.
    public static func unpack(_ payload: [UInt8], peer: String, batchSize: Int) throws -> (BatchHeader, ArraySlice<UInt8>) {
        let (h, px) = try unpackPayload(BatchHeader.self, payload, peer: peer)
        guard (1...maxSide).contains(h.height) else { throw NetError(peer, "bad batch: height \(h.height) is not in 1...\(maxSide)") }
        guard (1...maxSide).contains(h.width) else { throw NetError(peer, "bad batch: width \(h.width) is not in 1...\(maxSide)") }
        guard h.positions.count <= batchSize, h.positions.allSatisfy({ (0..<batchSize).contains($0) }),
              Set(h.positions).count == h.positions.count else {
            throw NetError(peer, "bad batch: positions \(h.positions.prefix(16)) are not distinct positions in a batch of \(batchSize)")
        }
        // Sides are at most 4096 and positions at most batchSize, but the product is checked anyway.
        let (plane, o1) = h.height.multipliedReportingOverflow(by: h.width)
        let (need, o2) = plane.multipliedReportingOverflow(by: h.positions.count)
        guard !o1, !o2, px.count == need else {
            throw NetError(peer, "bad batch: \(px.count) pixel bytes for \(h.positions.count) images of \(h.height)x\(h.width)")
        }
        return (h, px)
    }
}

extension StartMessage {
    /// Checks what the coordinator sent before anything is built from it: a valid config
    /// (`GANConfig.validate`, which bounds every size), a rank inside the world, positive
    /// timings and counts.
    public func check(peer: String) throws {
        func fail(_ r: String) -> NetError { NetError(peer, "bad start message: \(r)") }
        if let problem = config.validate() { throw fail("invalid config: \(problem)") }
        guard (1...4096).contains(worldSize) else { throw fail("world size \(worldSize) is not in 1...4096") }
        guard (0..<worldSize).contains(rank) else { throw fail("rank \(rank) is outside the world of \(worldSize)") }
        guard timeout.isFinite, timeout > 0, heartbeat.isFinite, heartbeat > 0 else {
            throw fail("timeout \(timeout) s and heartbeat \(heartbeat) s must be positive")
        }
        guard sampleEvery >= 0, checkpointEvery >= 0, keep >= 0, checksumEvery >= 0 else {
            throw fail("negative intervals (sample every \(sampleEvery), checkpoint every \(checkpointEvery), keep \(keep), checksum every \(checksumEvery))")
        }
        if let l = logEvery, l < 1 { throw fail("log every \(l) steps: must be at least 1 (as --log-every)") }
    }
}

/// Packs a JSON header and raw bytes into one payload: u32 header length, header, bytes.
func packPayload<T: Encodable>(_ header: T, _ bytes: [UInt8]) throws -> [UInt8] {
    let h = Array(try JSONEncoder().encode(header))
    var out = [UInt8]()
    out.reserveCapacity(4 + h.count + bytes.count)
    withUnsafeBytes(of: UInt32(h.count).littleEndian) { out += $0 }
    out += h
    out += bytes
    return out
}

func unpackPayload<T: Decodable>(_ t: T.Type, _ payload: [UInt8], peer: String) throws -> (T, ArraySlice<UInt8>) {
    guard payload.count >= 4 else { throw NetError(peer, "truncated message") }
    let n = Int(UInt32(payload[0]) | UInt32(payload[1]) << 8 | UInt32(payload[2]) << 16 | UInt32(payload[3]) << 24)
    guard 4 + n <= payload.count else { throw NetError(peer, "message header of \(n) bytes overruns the frame") }
    do {
        let h = try JSONDecoder().decode(t, from: Data(payload[4..<(4 + n)]))
        return (h, payload[(4 + n)...])
    } catch { throw NetError(peer, "malformed message header (\(error))") }
}

/// CRC-32C of a model's parameters and buffers: replicas that agree have equal checksums.
public func replicaChecksum(_ models: GANModels) -> UInt32 {
    var crc: UInt32 = 0
    for t in [models.gParams.valueTensor, models.dParams.valueTensor]
        + (models.generator.namedBuffers() + models.discriminator.namedBuffers()).map({ $0.1 }) {
        crc = UInt32(truncatingIfNeeded: t.buffer.withMemoryRebound(to: UInt8.self) { b in
            CRC32C.checksum(UnsafeRawBufferPointer(b), crc: crc)
        })
    }
    return crc
}

/// The timeouts of the control connection between the coordinator and a worker, named once.
enum ControlTimeouts {
    /// A read or write of a control frame that has begun (a frame is small: 30 s means a peer
    /// that is gone, not a slow one).
    static let io: Double = 30
    /// Reads that wait on something other than the peer's health: the start message (it comes
    /// when every worker has joined) and, during training, frames whose absence heartbeats
    /// judge (`--dead-after`), not the read timeout.
    static let waiting: Double = 3600
}

/// The largest control frames either side accepts, named once: a frame past its limit is refused
/// (naming the peer) before its payload is read.
enum ControlLimits {
    /// Messages: the start (config and addresses), a worker's step report, heartbeats, notices.
    static let message = 1 << 20
    /// What a worker reads while training: shards of real images besides messages (256 MB:
    /// 16,384 images of 64x64 floats in one shard).
    static let shard = 1 << 28
}
