// gan-dist-bench --peer: one rank of a ring all-reduce benchmark spread over processes (and, on
// the emulated cluster, over machines), the counterpart of bench/mpi/allreduce.c. Every rank runs
//
//   gan-dist-bench --peer --rank R --hosts A0,A1,... --port P --token-file F [--codec none]
//
// listening on its own address A_R:P; rank 0 prints one JSON line per size. For each size (the
// same sizes and repetitions as allreduce.c: `PeerBench.sizes`, `PeerBench.repeats`) a barrier
// (a one-float statistics all-reduce), then the all-reduce timed on rank 0; the median over the
// repetitions. Gradient sizes go by the ring all-reduce (`Ring.allReduce`, what gradient buckets
// use); the statistics sizes by `allReduceSum` (SyncBatchNorm's: the log2-round all-gather over
// the far links).
import Collectives
import Foundation
import Tensors

enum PeerBench {
    /// Bytes of the gradient-sized all-reduces and of the statistics-sized ones.
    static let sizes = [65_536, 262_144, 1 << 20, 4 << 20, 16 << 20, 64 << 20]
    static let statisticsSizes = [64, 512, 4096]
    /// Repetitions of a size: about 128 MiB moved per size, from 2 to 20 (50 for statistics).
    static func repeats(_ bytes: Int) -> Int { bytes <= 4096 ? 50 : min(20, max(2, (128 << 20) / bytes)) }

    static func run(_ args: [String]) throws {
        var rank = -1, hosts: [String] = [], port: UInt16 = 29600, tokenFile: String?, codec = GradientCodec.none
        var it = args.makeIterator()
        while let a = it.next() {
            switch a {
            case "--peer": break
            case "--rank": rank = Int(it.next() ?? "") ?? -1
            case "--hosts": hosts = (it.next() ?? "").split(separator: ",").map(String.init)
            case "--port": port = UInt16(it.next() ?? "") ?? 0
            case "--token-file": tokenFile = it.next()
            case "--codec":
                guard let c = GradientCodec(rawValue: it.next() ?? "") else { throw NetError("--codec", "unknown codec") }
                codec = c
            default: throw NetError("gan-dist-bench --peer", "unknown argument \(a)")
            }
        }
        let n = hosts.count
        guard rank >= 0, rank < n, port > 0, let token = try Authenticator.loadToken(file: tokenFile, environment: [:]) else {
            throw NetError("gan-dist-bench --peer", "needs --rank R (< the hosts), --hosts A0,A1,..., --port P and --token-file F")
        }
        let listener = try Listener(host: hosts[rank], port: port)
        let far = Ring.farDistances(n).map { (hosts[(rank + $0) % n], port) }
        let ring = try Ring.form(rank: rank, worldSize: n, listener: listener, rightAddress: (hosts[(rank + 1) % n], port),
                                 farAddresses: far, auth: try Authenticator(token: token), codec: codec, timeout: 300)
        defer { ring.close() }
        func barrier() { _ = ring.allReduceSum([1]) }
        func emit(_ kind: String, _ bytes: Int, _ times: [Double]) {
            guard rank == 0 else { return }
            let s = times.sorted(), med = s[s.count / 2]
            let line: [String: Any] = ["impl": "ringgan", "kind": kind, "ranks": n, "bytes": bytes, "repeats": times.count,
                                       "median_s": med, "min_s": s[0], "codec": codec.rawValue]
            let d = try! JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            FileHandle.standardOutput.write(d + Data("\n".utf8))
        }
        for bytes in statisticsSizes {
            var times: [Double] = []
            let mine = [Float](repeating: Float(rank + 1), count: bytes / 4)
            _ = ring.allReduceSum(mine)
            for _ in 0..<repeats(bytes) {
                barrier()
                let t0 = monotonic()
                _ = ring.allReduceSum(mine)
                times.append(monotonic() - t0)
            }
            try ring.checkFailure()
            emit("statistics", bytes, times)
        }
        for bytes in sizes {
            var g = RandomGenerator(seed: UInt64(rank + 1), stream: UInt64(bytes))
            var buf = (0..<(bytes / 4)).map { _ in g.normal() * 1e-3 }
            var times: [Double] = []
            try buf.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
            for _ in 0..<repeats(bytes) {
                barrier()
                let t0 = monotonic()
                try buf.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
                times.append(monotonic() - t0)
            }
            try ring.checkFailure()
            emit("allreduce", bytes, times)
        }
        barrier()
    }
}
