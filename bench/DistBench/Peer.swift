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
//
// --skew W1,W2,... (microseconds of CPU): instead, what a blocking statistics exchange costs on
// these machines when every rank does exactly the same work between exchanges. For each W,
// `skewRepeats` times: burn W us of this thread's CPU time (a spin on CLOCK_THREAD_CPUTIME_ID:
// the same work on every rank, whatever its budget's throttling makes of it in wall time), then
// SyncBatchNorm's gather (`allGatherStatistics`) of a 64-channel layer's slot, timed. Rank 0
// prints one JSON line per W: the wait per exchange (mean over the repetitions, then over the
// ranks; and the largest rank's), and the wall time the W took (mean and standard deviation over
// the repetitions, mean over the ranks). The wait is the rig's floor for an exchange after W of
// work: the ranks drift apart between exchanges by their budgets' throttling alone.
// --skew-work conv: the work is instead a fixed number of convolutions (a DCGAN discriminator
// layer's: [64, 32, 16, 16] by 64 4x4 filters, stride 2; its count is W over rank 0's CPU time for
// one), the same on every rank, so the CPU time each rank needs for it may differ (caches shared
// with the other machines on a core, allocation): the lines then also give that CPU time.
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
        var skew: [Int]?, convWork = false
        var it = args.makeIterator()
        while let a = it.next() {
            switch a {
            case "--peer": break
            case "--rank": rank = Int(it.next() ?? "") ?? -1
            case "--hosts": hosts = (it.next() ?? "").split(separator: ",").map(String.init)
            case "--port": port = UInt16(it.next() ?? "") ?? 0
            case "--token-file": tokenFile = it.next()
            case "--skew-work":
                let w = it.next() ?? ""
                guard w == "conv" || w == "spin" else { throw NetError("--skew-work", "spin or conv, not \(w)") }
                convWork = w == "conv"
            case "--skew":
                let ws = (it.next() ?? "").split(separator: ",").map { Int($0) ?? -1 }
                guard !ws.isEmpty, ws.allSatisfy({ $0 >= 0 }) else { throw NetError("--skew", "needs microseconds of CPU, e.g. 2000,8000") }
                skew = ws
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
        if let skew {
            let unit = convWork ? try convUnit(ring) : nil
            for w in skew { try measureSkew(ring, rank: rank, workMicroseconds: w, conv: unit) }
            barrier()
            return
        }
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

    /// Repetitions of one W: about 6 s of a 0.2-core machine's wall time, 10 to 60.
    static func skewRepeats(_ micros: Int) -> Int { min(60, max(10, 1_200_000 / max(micros, 1))) }

    /// One W of `--skew`: rank 0 prints its line.
    static func measureSkew(_ ring: Ring, rank: Int, workMicroseconds w: Int, conv: ConvUnit?) throws {
        let channels = 64, reps = skewRepeats(w)
        let mine = [Float](repeating: Float(rank + 1), count: 2 * channels + 1)
        _ = ring.allGatherStatistics(mine)
        _ = ring.allReduceSum([1])
        let units = conv.map { Int((Double(w) * 1e-6 / $0.cpuSeconds).rounded()) } ?? 0
        var waits: [Double] = [], walls: [Double] = [], cpus: [Double] = []
        for _ in 0..<reps {
            let t0 = monotonic(), c0 = threadCPUSeconds()
            if let conv { for _ in 0..<units { conv.run() } } else { burnCPU(microseconds: w) }
            let t1 = monotonic()
            cpus.append(threadCPUSeconds() - c0)
            _ = ring.allGatherStatistics(mine)
            walls.append(t1 - t0)
            waits.append(monotonic() - t1)
        }
        try ring.checkFailure()
        func meanSD(_ v: [Double]) -> (Double, Double) {
            let m = v.reduce(0, +) / Double(v.count)
            return (m, (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)).squareRoot())
        }
        let (meanWait, _) = meanSD(waits), (meanWall, sdWall) = meanSD(walls), (meanCPU, sdCPU) = meanSD(cpus)
        let all = ring.allGatherStatistics([Float(meanWait), Float(meanWall), Float(sdWall), Float(meanCPU), Float(sdCPU)])
        try ring.checkFailure()
        guard rank == 0 else { return }
        let ranks = ring.worldSize
        func mean(_ k: Int) -> Double { (0..<ranks).map { Double(all[5 * $0 + k]) }.reduce(0, +) / Double(ranks) }
        let cpuPerRank = (0..<ranks).map { Double(all[5 * $0 + 3]) }
        let line: [String: Any] = [
            "kind": "skew", "work": conv == nil ? "spin" : "conv", "conv_units": units, "ranks": ranks, "work_us": w, "repeats": reps,
            "wait_mean_s": mean(0), "wait_max_rank_s": (0..<ranks).map { Double(all[5 * $0]) }.max() ?? 0,
            "work_wall_mean_s": mean(1), "work_wall_sd_s": mean(2), "work_cpu_mean_s": mean(3), "work_cpu_sd_s": mean(4),
            "work_cpu_rank_spread_s": (cpuPerRank.max() ?? 0) - (cpuPerRank.min() ?? 0),
        ]
        let d = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
        FileHandle.standardOutput.write(d + Data("\n".utf8))
    }

    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// One unit of `--skew-work conv`: a DCGAN discriminator layer's convolution, and rank 0's CPU
    /// time for it (every rank takes rank 0's, so every rank does the same number of units).
    struct ConvUnit {
        let x: Tensor, weight: Tensor, cpuSeconds: Double
        func run() { _ = conv2d(x, weight, stride: 2, padding: 1) }
    }

    static func convUnit(_ ring: Ring) throws -> ConvUnit {
        var g = RandomGenerator(seed: 7, stream: 1)
        let x = Tensor.randn([64, 32, 16, 16], generator: &g), w = Tensor.randn([64, 32, 4, 4], generator: &g)
        var unit = ConvUnit(x: x, weight: w, cpuSeconds: 0)
        for _ in 0..<3 { unit.run() }
        let c0 = threadCPUSeconds()
        for _ in 0..<10 { unit.run() }
        let mine = Float((threadCPUSeconds() - c0) / 10)
        let all = ring.allGatherStatistics([mine])
        try ring.checkFailure()
        unit = ConvUnit(x: x, weight: w, cpuSeconds: Double(all[0]))
        return unit
    }

    /// Spins until this thread has used `microseconds` of CPU time.
    static func burnCPU(microseconds: Int) {
        let end = threadCPUSeconds() + Double(microseconds) * 1e-6
        var x: Double = 1
        while threadCPUSeconds() < end {
            for _ in 0..<64 { x = x * 1.000001 + 1e-9 }
        }
        if x == 0 { print("") }   // keeps the arithmetic
    }
}
