// gan-dist-bench: the distributed layer's speed, side by side in one run.
//
//   swift run -c release gan-dist-bench [--repeats 5] [--no-torch] [--steps 8] [--json]
//
// 1. Ring all-reduce (sum) bus bandwidth, 2 (N - 1) / N * bytes / seconds, against buffer size
//    at world sizes 2 and 4 over loopback TCP (one thread per rank in this process), codecs none
//    and shuffle-zstd, next to torch.distributed gloo's all_reduce on the same sizes
//    (bench/torch_gloo_allreduce.py, one process per rank).
// 2. Every codec on real gradients (a DCGAN 32x32 step on MNIST digits): compression ratio,
//    encode and decode MB/s, and the bytes a rank puts on the wire per training step.
// 3. Training images/s for 1, 2 and 4 ranks (DCGAN 32x32, batch 64, ngf = ndf = 64).
//
// --peer: one rank of a multi-process ring benchmark (Peer.swift; bench/mpi_compare.py runs it
// on the emulated cluster beside OpenMPI's MPI_Allreduce).
import Datasets
import Collectives
import Foundation
import GAN
import NN
import Tensors

BLASRuntime.selectKernels()
if CommandLine.arguments.contains("--peer") {
    // One engine thread, as gan-worker runs (--skew-work conv computes with the engine).
    ThreadPool.setThreads(1)
    do { try PeerBench.run(Array(CommandLine.arguments.dropFirst())); exit(0) } catch {
        FileHandle.standardError.write(Data("gan-dist-bench --peer: \(error)\n".utf8))
        exit(1)
    }
}
var repeatsFlag = 5, torchFlag = true, stepsFlag = 8, jsonFlag = false
var onlyFlag: Set<String> = ["allreduce", "codecs", "throughput"]
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--repeats": repeatsFlag = max(1, Int(args.popFirst() ?? "") ?? 5)
    case "--steps": stepsFlag = max(2, Int(args.popFirst() ?? "") ?? 8)
    case "--no-torch": torchFlag = false
    case "--json": jsonFlag = true
    case "--only": onlyFlag = Set((args.popFirst() ?? "").split(separator: ",").map(String.init))
    default:
        print("USAGE: gan-dist-bench [--repeats N] [--steps N] [--no-torch] [--json] [--only allreduce,codecs,throughput]")
        exit(a == "-h" || a == "--help" ? 0 : 2)
    }
}
let repeats = repeatsFlag, torch = torchFlag, steps = stepsFlag, json = jsonFlag, only = onlyFlag
nonisolated(unsafe) var report: [String: Any] = [:]
func say(_ s: String = "") { if !json { print(s) } }
func fmt(_ v: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", v) }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

final class Box: @unchecked Sendable { var value: Any?; var error: Error?; let lock = NSLock() }

/// Runs `body(ring)` on `n` ranks joined over loopback; returns rank 0's result.
func onRing<T>(_ n: Int, codec: GradientCodec, _ body: @escaping @Sendable (Ring) throws -> T) throws -> T {
    let ls = try (0..<n).map { _ in try Listener(host: "127.0.0.1", port: 0) }
    let ports = ls.map { $0.port }
    let box = Box()
    let g = DispatchGroup()
    for r in 0..<n {
        g.enter()
        let l = ls[r]
        Thread {
            defer { g.leave() }
            do {
                let ring = try Ring.form(rank: r, worldSize: n, listener: l, rightAddress: ("127.0.0.1", ports[(r + 1) % n]),
                                         auth: try Authenticator(token: "bench-token-0123456789"), codec: codec, timeout: 120)
                let v = try body(ring)
                ring.close()
                if r == 0 { box.lock.lock(); box.value = v; box.lock.unlock() }
            } catch { box.lock.lock(); box.error = error; box.lock.unlock() }
        }.start()
    }
    g.wait()
    if let e = box.error { throw e }
    return box.value as! T
}

func gloo(world: Int, sizes: [Int]) -> [String: Double]? {
    guard torch else { return nil }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("torch_gloo_allreduce.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, "--world", "\(world)", "--sizes", sizes.map(String.init).joined(separator: ","),
                   "--repeats", "\(repeats)", "--json", "--port", "\(29700 + world)"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let d = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
          let s = j["sizes"] as? [String: [String: Double]] else { return nil }
    report["torch"] = j["torch"]
    return s.mapValues { $0["busbw_gbps"] ?? 0 }
}

// MARK: 1. all-reduce bandwidth

BLASRuntime.setThreads(1)
let sizes = [65_536, 1 << 20, 16 << 20, 64 << 20]
say("1. Ring all-reduce (sum) over loopback, bus bandwidth GB/s = 2(N-1)/N x bytes / time, median of \(repeats) per round, median of 3 rounds alternating with gloo")
say([pad("world", 5), pad("bytes", 10), pad("none", 8), pad("shuf-zstd", 10), pad("gloo", 8), pad("none/gloo", 10)].joined(separator: " "))
var arReport: [String: Any] = [:]
/// Median seconds of our ring all-reduce of `size` bytes at world `n`.
func ours(_ n: Int, _ size: Int, _ codec: GradientCodec) throws -> Double {
    try onRing(n, codec: codec) { ring in
        var g = RandomGenerator(seed: UInt64(ring.rank))
        var buf = (0..<(size / 4)).map { _ in g.normal() * 1e-3 }
        var times: [Double] = []
        for i in 0..<(repeats + 1) {
            let t0 = monotonic()
            try buf.withUnsafeMutableBufferPointer { try ring.allReduce($0) }
            if i > 0 { times.append(monotonic() - t0) }
        }
        return times.sorted()[times.count / 2]
    }
}
func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
// This machine is shared and noisy: gloo and the ring take turns, three rounds, medians.
for n in only.contains("allreduce") ? [2, 4] : [] {
    var glooRuns: [[String: Double]] = [], noneRuns: [[Int: Double]] = [], zstdRuns: [[Int: Double]] = []
    for _ in 0..<3 {
        if let g = gloo(world: n, sizes: sizes) { glooRuns.append(g) }
        var a: [Int: Double] = [:], z: [Int: Double] = [:]
        for size in sizes {
            a[size] = 2 * Double(n - 1) / Double(n) * Double(size) / (try ours(n, size, .none)) / 1e9
            z[size] = 2 * Double(n - 1) / Double(n) * Double(size) / (try ours(n, size, .shuffleZstd)) / 1e9
        }
        noneRuns.append(a); zstdRuns.append(z)
    }
    for size in sizes {
        let none = median(noneRuns.map { $0[size]! }), shuf = median(zstdRuns.map { $0[size]! })
        let gl: Double? = glooRuns.isEmpty ? nil : median(glooRuns.compactMap { $0[String(size)] })
        say([pad("\(n)", 5), pad("\(size)", 10), pad(fmt(none), 8), pad(fmt(shuf), 10),
             pad(gl.map { fmt($0) } ?? "-", 8), pad(gl.map { fmt(none / $0) + "x" } ?? "-", 10)].joined(separator: " "))
        arReport["\(n)/\(size)"] = ["none_gbps": none, "shuffle_zstd_gbps": shuf, "gloo_gbps": gl as Any]
    }
}
report["allreduce"] = arReport
say()

// MARK: 2. codecs on real gradients

let cfg: GANConfig = {
    var c = GANConfig()
    c.model = .dcgan; c.imageSize = 32; c.batchSize = 64; c.steps = 100
    return c
}()
let data = try loadTrainingData(cfg)
let models = GANModels(config: cfg)
let trainer = try GANTrainer(models: models, dataset: data)
for _ in 0..<3 { try trainer.trainStep() }
let grads = models.gParams.gradTensor.toArray() + models.dParams.gradTensor.toArray()
say("2. Codecs on real gradients (DCGAN 32x32 after 3 steps: G + D = \(grads.count) floats, \(grads.count * 4 / 1_000_000) MB)")
say([pad("codec", 18), pad("ratio", 7), pad("enc MB/s", 9), pad("dec MB/s", 9), pad("wire MB/step/rank (N=4)", 24)].joined(separator: " "))
var codecReport: [String: Any] = [:]
let env = ProcessInfo.processInfo.environment
// BENCH_CODECS=a,b limits the codecs measured (for profiling one).
let benchCodecs = env["BENCH_CODECS"].map { $0.split(separator: ",").compactMap { GradientCodec(rawValue: String($0)) } }
for codec in only.contains("codecs") ? (benchCodecs ?? GradientCodec.allCases) : [] {
    let coder = SegmentCoder(codec: codec, level: Int32(env["BENCH_LEVEL"] ?? "1") ?? 1)
    var out: [UInt8] = []
    var wire = 0
    let seg = Int(env["BENCH_SEGMENT"] ?? "") ?? (1 << 18)
    var dst = [Float](repeating: 0, count: seg)
    var encT: [Double] = [], decT: [Double] = []
    for _ in 0..<repeats {
        var e = 0.0, d = 0.0
        wire = 0
        try grads.withUnsafeBufferPointer { src in
            var i = 0
            while i < src.count {
                let m = min(seg, src.count - i)
                let t0 = monotonic()
                coder.encode(src.baseAddress! + i, m, into: &out)
                let t1 = monotonic()
                try out.withUnsafeBytes { b in try dst.withUnsafeMutableBufferPointer { try coder.decode(b, m, into: $0.baseAddress!, add: false, peer: "bench") } }
                d += monotonic() - t1
                e += t1 - t0
                wire += out.count + Frame.headerSize
                i += m
            }
        }
        encT.append(e); decT.append(d)
    }
    let mb = Double(grads.count * 4) / 1e6
    let ratio = Double(grads.count * 4) / Double(wire)
    // Per step a rank all-reduces D's gradients n_critic times and G's once: 2 (N-1)/N of each.
    let perStep = 2.0 * 3 / 4 * Double(wire) / 1e6
    say([pad(codec.rawValue, 18), pad(fmt(ratio, 3), 7), pad(fmt(mb / encT.sorted()[encT.count / 2], 0), 9),
         pad(fmt(mb / decT.sorted()[decT.count / 2], 0), 9), pad(fmt(perStep, 1), 24)].joined(separator: " "))
    codecReport[codec.rawValue] = ["ratio": ratio, "encode_mbps": mb / encT.sorted()[encT.count / 2],
                                   "decode_mbps": mb / decT.sorted()[decT.count / 2], "wire_mb_per_step_rank_n4": perStep]
}
report["codecs"] = codecReport
say()

// MARK: 3. training throughput

say("3. Training images/s, DCGAN 32x32, global batch 64, ngf = ndf = 64, shuffle-zstd, \(steps) steps after 2 warm-up")
var tpReport: [String: Any] = [:]
for (n, blas) in only.contains("throughput") ? [(1, 1), (1, 2), (2, 1), (4, 1)] : [] {
    // The engine's pool (OpenBLAS stays at one thread per call), as `gan train --threads` sets it.
    ThreadPool.setThreads(blas)
    let ips: Double = try onRing(n, codec: .shuffleZstd) { ring in
        let m = GANModels(config: cfg)
        if n > 1 { for mm in m.generator.modules() + m.discriminator.modules() { (mm as? BatchNorm)?.synchronizer = ring } }
        let t = try GANTrainer(models: m, dataset: data, rank: ring.rank, worldSize: n)
        if n > 1 { t.reducer = ring }
        for _ in 0..<2 { try t.trainStep() }
        let t0 = monotonic()
        for _ in 0..<steps { try t.trainStep() }
        return Double(steps * cfg.batchSize) / (monotonic() - t0)
    }
    say("  \(n) rank(s), \(blas) engine thread(s) each: \(fmt(ips, 1)) images/s")
    tpReport["\(n)x\(blas)"] = ips
}
report["throughput"] = tpReport
if json {
    print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
}
