// gan-bench: the engine's speed, side by side in one run.
//
//   swift run -c release gan-bench [--threads 1] [--repeats 7] [--no-torch] [--json]
//
// 1. raw cblas_sgemm GFLOPS at n = 256..2048, and our `matmul` at the same sizes (ratio);
// 2. conv2d / conv-transpose2d forward and forward+backward at the DCGAN layer shapes (batch 64,
//    MNIST 64x64, nc 1, ngf = ndf = 64), in GFLOPS and as a fraction of the sgemm ceiling (the best
//    raw sgemm figure of section 1), next to PyTorch's figures from bench/torch_engine_bench.py
//    when PyTorch is installed (same thread count, same shapes);
// 3. element-wise ops in GB/s against memcpy bandwidth.
// Every figure is the median of --repeats timed runs after a warm-up.
import COpenBLAS
import Foundation
import Tensors

BLASRuntime.selectKernels()

struct Options {
    var threads = 1
    var repeats = 7
    var torch = true
    var json = false
    var ceilingOnly = false
}

var opts = Options()
var argv = CommandLine.arguments.dropFirst()
while let a = argv.popFirst() {
    switch a {
    case "--threads": opts.threads = Int(argv.popFirst() ?? "") ?? 1
    case "--repeats": opts.repeats = max(1, Int(argv.popFirst() ?? "") ?? 7)
    case "--no-torch": opts.torch = false
    case "--json": opts.json = true
    case "--ceiling": opts.ceilingOnly = true; opts.torch = false
    case "-h", "--help":
        print("""
        USAGE: gan-bench [--threads N] [--repeats N] [--no-torch] [--json]
          --threads N   threads for the whole run (default 1: per-core figures): the engine's threads, OpenBLAS's
                        own for the raw cblas_sgemm figures, PyTorch's
          --repeats N   timed runs per figure; the median is reported (default 7)
          --no-torch    skip the PyTorch side-by-side figures
          --json        print one JSON object instead of tables
          --ceiling     only measure the raw cblas_sgemm ceiling (GEMM table), print {"sgemm_ceiling_gflops": x}
        """)
        exit(0)
    default:
        FileHandle.standardError.write("gan-bench: unknown argument '\(a)' (see --help)\n".data(using: .utf8)!)
        exit(2)
    }
}
// The engine splits its GEMMs over its own threads (OpenBLAS at one thread per call); the raw
// cblas_sgemm figures below set OpenBLAS's own thread count around each call instead.
ThreadPool.setThreads(opts.threads)

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median seconds of `repeats` runs of `body` after one warm-up run.
@MainActor func median(_ repeats: Int = opts.repeats, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<repeats {
        let t0 = now()
        body()
        times.append(now() - t0)
    }
    times.sort()
    return times[times.count / 2]
}

var rng = RandomGenerator(seed: 2024)
var report: [String: Any] = [
    "openblas_core": BLASRuntime.coreName, "threads": opts.threads, "repeats": opts.repeats,
    "kernel_selection": BLASRuntime.selectionNote,
]

// MARK: PyTorch reference (subprocess)

@MainActor func torchFigures() -> [String: Any]? {
    guard opts.torch else { return nil }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("torch_engine_bench.py").path
    guard FileManager.default.fileExists(atPath: script) else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, "--threads", "\(opts.threads)", "--repeats", "\(opts.repeats)", "--json"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

// Run PyTorch first, alone on the machine, so the two sides do not share cores.
let torch = torchFigures()
if let v = torch?["torch_version"] { report["torch_version"] = v }

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
func row(_ cols: [String], _ widths: [Int]) -> String { zip(cols, widths).map { pad($0, $1) }.joined(separator: " ") }
var lines: [String] = []
@MainActor func say(_ s: String = "") { lines.append(s); if !opts.json { print(s) } }

say("RingGAN engine benchmark: OpenBLAS \(BLASRuntime.coreName) kernels, \(opts.threads) thread(s), median of \(opts.repeats)")
say("(\(BLASRuntime.selectionNote))")
say()

// MARK: 1. sgemm and matmul

say("1. GEMM, n x n x n, GFLOPS")
let w1 = [6, 10, 10, 10, 8, 10]
say(row(["n", "sgemm", "matmul", "ratio", "torch", "vs torch"], w1))
var ceiling = 0.0
var gemmReport: [String: Any] = [:]
let torchMM = torch?["matmul"] as? [String: Double]
for n in [256, 512, 1024, 2048] {
    let a = Tensor.randn([n, n], generator: &rng), b = Tensor.randn([n, n], generator: &rng)
    let c = Tensor.zeros([n, n])
    let reps = n >= 2048 ? max(3, opts.repeats / 2) : opts.repeats
    BLASRuntime.setThreads(opts.threads)
    let tRaw = median(reps) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.data, Int32(n),
                    b.data, Int32(n), 0, c.data, Int32(n))
    }
    BLASRuntime.setThreads(1)
    let tOurs = median(reps) { _ = matmul(a, b) }
    let flops = 2 * Double(n) * Double(n) * Double(n)
    let raw = flops / tRaw / 1e9, ours = flops / tOurs / 1e9
    ceiling = max(ceiling, raw)
    let tg = torchMM?["\(n)"]
    say(row(["\(n)", fmt(raw), fmt(ours), fmt(ours / raw * 100, 1) + "%", tg.map { fmt($0) } ?? "-",
             tg.map { fmt(ours / $0, 2) + "x" } ?? "-"], w1))
    gemmReport["\(n)"] = ["sgemm_gflops": raw, "matmul_gflops": ours, "ratio": ours / raw, "torch_gflops": tg as Any]
}
report["gemm"] = gemmReport
report["sgemm_ceiling_gflops"] = ceiling
say("sgemm ceiling (best of the above): \(fmt(ceiling)) GFLOPS per \(opts.threads) thread(s)")
if opts.ceilingOnly {
    if opts.json { print("{\"sgemm_ceiling_gflops\": \(ceiling), \"threads\": \(opts.threads)}") }
    exit(0)
}
say()

// MARK: 2. convolutions at DCGAN shapes

struct ConvCase { let name: String; let transposed: Bool; let x: [Int]; let w: [Int]; let stride: Int; let pad: Int }
let convCases = [
    ConvCase(name: "D1", transposed: false, x: [64, 1, 64, 64], w: [64, 1, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "D2", transposed: false, x: [64, 64, 32, 32], w: [128, 64, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "D3", transposed: false, x: [64, 128, 16, 16], w: [256, 128, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "D4", transposed: false, x: [64, 256, 8, 8], w: [512, 256, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "D5", transposed: false, x: [64, 512, 4, 4], w: [1, 512, 4, 4], stride: 1, pad: 0),
    ConvCase(name: "G1", transposed: true, x: [64, 100, 1, 1], w: [100, 512, 4, 4], stride: 1, pad: 0),
    ConvCase(name: "G2", transposed: true, x: [64, 512, 4, 4], w: [512, 256, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "G3", transposed: true, x: [64, 256, 8, 8], w: [256, 128, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "G4", transposed: true, x: [64, 128, 16, 16], w: [128, 64, 4, 4], stride: 2, pad: 1),
    ConvCase(name: "G5", transposed: true, x: [64, 64, 32, 32], w: [64, 1, 4, 4], stride: 2, pad: 1),
]
say("2. Convolutions at the DCGAN shapes (batch 64, 64x64, nc 1, ngf = ndf = 64), GFLOPS")
let w2 = [4, 10, 9, 7, 10, 9, 7, 9, 9]
say(row(["", "fwd", "of ceil", "torch", "fwd+bwd", "of ceil", "torch", "ours ms", "vs torch"], w2))
let torchConv = torch?["conv"] as? [String: [String: Double]]
var convReport: [String: Any] = [:]
var totalOurs = 0.0, totalTorch = 0.0, totalFlops = 0.0
for c in convCases {
    let x = Tensor.randn(c.x, generator: &rng), w = Tensor.randn(c.w, generator: &rng) * 0.02
    let run: (Tensor, Tensor) -> Tensor = { x, w in
        c.transposed ? convTranspose2d(x, w, stride: c.stride, padding: c.pad) : conv2d(x, w, stride: c.stride, padding: c.pad)
    }
    let y0 = withNoGrad { run(x, w) }
    let gy = Tensor.randn(y0.shape, generator: &rng)
    // Useful flops: 2 * |W| * N * positions on the conv-output side.
    let positions = c.transposed ? c.x[2] * c.x[3] : y0.shape[2] * y0.shape[3]
    let fwdFlops = 2 * Double(c.w.reduce(1, *)) * Double(c.x[0]) * Double(positions)
    let tf = median { _ = withNoGrad { run(x, w) } }
    x.requiresGrad = true; w.requiresGrad = true
    let tb = median {
        x.grad = nil; w.grad = nil
        run(x, w).backward(gradient: gy)
    }
    x.requiresGrad = false; w.requiresGrad = false
    let gf = fwdFlops / tf / 1e9, gb = 3 * fwdFlops / tb / 1e9
    let tc = torchConv?[c.name]
    let tfb = tc?["fwdbwd_gflops"]
    totalOurs += tb; totalFlops += 3 * fwdFlops
    if let ms = tc?["fwdbwd_ms"] { totalTorch += ms / 1000 }
    say(row([c.name, fmt(gf), fmt(gf / ceiling * 100, 0) + "%", tc?["fwd_gflops"].map { fmt($0) } ?? "-",
             fmt(gb), fmt(gb / ceiling * 100, 0) + "%", tfb.map { fmt($0) } ?? "-", fmt(tb * 1000, 1),
             tfb.map { fmt(gb / $0, 2) + "x" } ?? "-"], w2))
    convReport[c.name] = ["fwd_gflops": gf, "fwdbwd_gflops": gb, "fwd_of_ceiling": gf / ceiling,
                          "fwdbwd_of_ceiling": gb / ceiling, "fwdbwd_ms": tb * 1000,
                          "torch_fwd_gflops": tc?["fwd_gflops"] as Any, "torch_fwdbwd_gflops": tfb as Any]
}
let overall = totalFlops / totalOurs / 1e9
say("all ten layers, forward+backward: \(fmt(totalOurs * 1000)) ms, \(fmt(overall)) GFLOPS = \(fmt(overall / ceiling * 100, 0))% of the sgemm ceiling"
    + (totalTorch > 0 ? "; PyTorch \(fmt(totalTorch * 1000)) ms (ours \(fmt(totalTorch / totalOurs, 2))x its speed)" : ""))
report["conv"] = convReport
report["conv_total"] = ["ms": totalOurs * 1000, "gflops": overall, "of_ceiling": overall / ceiling,
                        "torch_ms": totalTorch > 0 ? totalTorch * 1000 : nil as Double? as Any]
say()

// MARK: 3. element-wise

say("3. Element-wise ops on 16M floats, GB/s (bytes read + written)")
let n = 16 << 20
let ea = Tensor.randn([n], generator: &rng), eb = Tensor.randn([n], generator: &rng)
let dst = Tensor.zeros([n])
let tMem = median { memcpy(dst.data, ea.data, n * 4) }
let memBW = 2 * Double(n * 4) / tMem / 1e9
let w3 = [12, 8, 10, 8, 10]
say(row(["op", "GB/s", "of memcpy", "torch", "vs torch"], w3))
let torchEW = torch?["elementwise"] as? [String: Double]
say(row(["memcpy", fmt(memBW), "100%", torchEW?["copy"].map { fmt($0) } ?? "-", "-"], w3))
var ewReport: [String: Any] = ["memcpy": memBW]
let ew: [(String, Int, () -> Tensor)] = [
    ("add", 3, { ea + eb }), ("mul", 3, { ea * eb }), ("relu", 2, { ea.relu() }),
    ("leaky_relu", 2, { ea.leakyRelu(0.2) }), ("tanh", 2, { ea.tanh() }), ("copy", 2, { ea.copy() }),
]
for (name, streams, f) in ew {
    let t = median { _ = f() }
    let gbs = Double(streams * n * 4) / t / 1e9
    let tg = torchEW?[name]
    say(row([name, fmt(gbs), fmt(gbs / memBW * 100, 0) + "%", tg.map { fmt($0) } ?? "-",
             tg.map { fmt(gbs / $0, 2) + "x" } ?? "-"], w3))
    ewReport[name] = ["gbps": gbs, "of_memcpy": gbs / memBW, "torch_gbps": tg as Any]
}
report["elementwise"] = ewReport
if torch == nil && opts.torch { say("\n(PyTorch not importable: install it with pip install 'torch==2.13.0+cpu' for the side-by-side columns)") }

if opts.json {
    let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: data, as: UTF8.self))
}
