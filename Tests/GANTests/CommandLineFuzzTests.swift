import Foundation
import TestSupport
import XCTest

/// Every command of the three executables with boundary, wrong-type and seeded random values for
/// every flag, and wrong combinations of flags: each run must end with one of the executable's
/// documented exit statuses (gan: 0, 1, 64; gan-coordinator: 0, 1, 2, 64; gan-worker: 0, 1, 3, 64),
/// never by a signal (a trapped precondition is SIGILL, which a shell shows as exit 132).
///
/// The runs are kept short: tiny models, `--steps 1`, a time limit, a coordinator that waits half
/// a second for its workers, a worker whose coordinator refuses at once; a run still going after
/// `limit` seconds is killed, which counts as running, not as a crash. `RINGGAN_FUZZ_SEED` picks
/// other random values; `RINGGAN_FUZZ_BINARIES` (a folder) runs other builds of the three
/// executables (how this test was checked against the binaries before the fixes).
final class CommandLineFuzzTests: XCTestCase {
    /// Seconds a single run may take before it is killed.
    let limit = 10.0

    enum Kind { case int, uint, float, text, path, flag }

    /// One command: the executable, its subcommand words, the arguments that keep a run short
    /// (the fuzzed flag comes after them, so it overrides them), and its flags.
    struct Command {
        var exe: String
        var words: [String]
        var base: [String]
        var flags: [(String, Kind)]
        var combinations: [[String]] = []
    }

    struct Case { var exe: String; var args: [String]; var cwd: String }

    static let allowed: [String: Set<Int32>] = ["gan": [0, 1, 64], "gan-coordinator": [0, 1, 2, 64], "gan-worker": [0, 1, 3, 64]]

    /// SplitMix64, so that a failure names a seed that reproduces it.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
    }

    func values(_ kind: Kind, _ rng: inout Rng) -> [[String]] {
        switch kind {
        case .int: return [["0"], ["-1"], ["99999999999999999999"], ["abc"], ["\(rng.int(-3...300))"]]
        case .uint: return [["-1"], ["18446744073709551616"], ["\(rng.int(0...70000))"]]
        case .float: return [["-1"], ["nan"], ["1e39"], ["abc"]]
        case .text: return [[""], ["nope"], ["-1"]]
        case .path: return [[""], ["/nonexistent/x"], ["."]]
        case .flag: return [[]]
        }
    }

    /// (The flags every command shares, `--log-level` and the training flags, are fuzzed on
    /// `gan train`, `gan info` and the coordinator and worker, not again on each command.)
    func testEveryFlagOfEveryCommandEndsWithADocumentedStatus() throws {
        let work = try makeTempDir(self)
        let seed = UInt64(ProcessInfo.processInfo.environment["RINGGAN_FUZZ_SEED"] ?? "") ?? 26
        let binaries = ProcessInfo.processInfo.environment["RINGGAN_FUZZ_BINARIES"]
        func exe(_ name: String) -> String { binaries.map { $0 + "/" + name } ?? builtExecutable(name) }

        // Fixtures: a tiny StyleGAN and an MLP checkpoint, the MLP exported, a classifier, a token.
        let tiny = ["--steps", "1", "--batch", "4", "--sample-every", "0", "--checkpoint-every", "0", "--runs-dir", work + "/runs"]
        let style = ["--model", "stylegan", "--image-size", "16", "--ngf", "4", "--ndf", "4", "--w-dim", "8", "--latent-dim", "8",
                     "--mapping-layers", "1"]
        for (name, model) in [("style", style), ("mlp", ["--model", "mlp", "--ngf", "8", "--ndf", "8", "--latent-dim", "8"])] {
            let r = try runProcess(exe("gan"), ["train", "--name", name] + model + tiny, cwd: work, timeout: 120)
            XCTAssertEqual(r.status, 0, "fixture \(name): \(r.both)")
        }
        let styleCkpt = work + "/runs/style/checkpoints/step_00000001.rgan", mlpCkpt = work + "/runs/mlp/checkpoints/step_00000001.rgan"
        for (args, what) in [(["export", "--checkpoint", mlpCkpt, "--out", work + "/g.safetensors"], "export"),
                             (["train-classifier", "--max-train", "64", "--epochs", "1", "--out", work + "/clf.safetensors"], "classifier")] {
            let r = try runProcess(exe("gan"), args, cwd: work, timeout: 120)
            XCTAssertEqual(r.status, 0, "fixture \(what): \(r.both)")
        }
        try "fuzz-token".write(toFile: work + "/token", atomically: true, encoding: .utf8)
        try Data("not a numpy file".utf8).write(to: URL(fileURLWithPath: work + "/bad.npy"))

        let training: [(String, Kind)] = [
            ("--preset", .text), ("--model", .text), ("--loss", .text), ("--image-size", .int), ("--ngf", .int), ("--ndf", .int),
            ("--nc", .int), ("--latent-dim", .int), ("--w-dim", .int), ("--mapping-layers", .int), ("--style-mixing-prob", .float),
            ("--progressive", .flag), ("--steps", .int), ("--batch", .int), ("--seed", .uint), ("--lr", .float), ("--lr-g", .float),
            ("--lr-d", .float), ("--beta1", .float), ("--beta2", .float), ("--n-critic", .int), ("--clip", .float),
            ("--gp-lambda", .float), ("--label-smoothing", .float), ("--noisy-labels", .flag), ("--g-ema", .float),
            ("--exact", .flag), ("--micro-batches", .int), ("--exact-splits", .int),
            ("--dataset", .text), ("--data", .path)]
        let run: [(String, Kind)] = [("--runs-dir", .path), ("--name", .text), ("--sample-every", .int), ("--checkpoint-every", .int),
                                     ("--keep", .int), ("--log-every", .int), ("--resume", .path)]
        let log: [(String, Kind)] = [("--log-level", .text)]
        let trainBase = ["--model", "mlp", "--ngf", "8", "--ndf", "8", "--latent-dim", "8", "--steps", "1", "--batch", "4",
                         "--sample-every", "0", "--checkpoint-every", "0", "--time-limit", "2s"]
        let tinyConv = ["--image-size", "16", "--ngf", "4", "--ndf", "4", "--latent-dim", "8", "--w-dim", "8", "--mapping-layers", "1"]
        var commands = [
            Command(exe: "gan", words: ["train"], base: trainBase,
                    flags: training + run + log + [("--threads", .int), ("--logdir", .path), ("--json", .flag), ("--time-limit", .text)],
                    combinations: [
                        ["--batch", "4501"], ["--batch", "5000", "--model", "mlp"], ["--nc", "3", "--model", "dcgan"], ["--nc", "2"],
                        ["--model", "mlp", "--image-size", "32"], ["--model", "dcgan", "--image-size", "28"],
                        ["--progressive", "--model", "stylegan"], ["--label-smoothing", "0.9", "--noisy-labels"],
                        ["--loss", "wgan-gp", "--label-smoothing", "0.9"], ["--resume", "auto"], ["--resume", "auto", "--name", "again"],
                        ["--resume", mlpCkpt], ["--resume", mlpCkpt, "--steps", "0"], ["--resume", styleCkpt, "--model", "mlp"],
                        ["--steps", "0"], ["--preset", "fast", "--steps", "1"], ["--steps", "-5"], ["--lr-d", "-1"],
                        ["--sample-every=-1"], ["--checkpoint-every=-1"], ["--style-mixing-prob", "2"], ["--threads", "0"],
                        ["--steps"], ["--steps", "--batch", "4"], ["--time-limit", "-1s"], ["--time-limit", "99999999999h"],
                        ["--model", "dcgan", "--progressive", "--steps", "2"] + tinyConv,
                    ] + ["dcgan", "sndcgan", "stylegan"].flatMap { m in
                        ["1", "3"].map { b in ["--model", m, "--batch", b] + tinyConv }
                    }),
            Command(exe: "gan", words: ["sample"], base: ["--checkpoint", styleCkpt, "--out", "s.png", "--count", "4"],
                    flags: [("--checkpoint", .path), ("--out", .path), ("--count", .int), ("--seed", .uint), ("--latents", .path),
                            ("--latents-out", .path), ("--nrow", .int), ("--truncation", .float)],
                    combinations: [["--checkpoint", mlpCkpt, "--truncation", "0.7"], ["--latents", work + "/bad.npy"],
                                   ["--out", "x.npy", "--out", "y.png"], ["--out", "nodir/x.png"], ["--checkpoint", work + "/runs"]]),
            Command(exe: "gan", words: ["interpolate"], base: ["--checkpoint", styleCkpt, "--rows", "1", "--steps", "2", "--out", "i.png"],
                    flags: [("--checkpoint", .path), ("--mode", .text), ("--rows", .int), ("--steps", .int), ("--seed", .uint),
                            ("--out", .path), ("--truncation", .float)],
                    combinations: [["--mode", "lerp", "--checkpoint", mlpCkpt], ["--truncation", "0.5", "--checkpoint", mlpCkpt]]),
            Command(exe: "gan", words: ["style-mix"], base: ["--checkpoint", styleCkpt, "--out", "m.png", "--count", "2"],
                    flags: [("--checkpoint", .path), ("--count", .int), ("--crossover", .int), ("--seed", .uint), ("--out", .path),
                            ("--truncation", .float)],
                    combinations: [["--count", "0"], ["--crossover", "99"], ["--checkpoint", mlpCkpt], ["--count", "32"]]),
            Command(exe: "gan", words: ["evaluate"], base: ["--checkpoint", styleCkpt, "--classifier", work + "/clf.safetensors", "--samples", "8"],
                    flags: [("--checkpoint", .path), ("--classifier", .path), ("--samples", .int), ("--seed", .uint),
                            ("--reference-seed", .uint), ("--baseline", .flag), ("--npy", .path), ("--dataset", .text),
                            ("--logdir", .path), ("--json", .flag)],
                    combinations: [["--npy", work + "/bad.npy"], ["--samples", "2"], ["--samples", "3", "--baseline"]]),
            Command(exe: "gan", words: ["train-classifier"], base: ["--max-train", "64", "--epochs", "1", "--out", "c.safetensors"],
                    flags: [("--dataset", .text), ("--data", .path), ("--epochs", .int), ("--max-train", .int), ("--seed", .uint),
                            ("--out", .path), ("--json", .flag)]),
            Command(exe: "gan", words: ["export"], base: ["--checkpoint", mlpCkpt, "--out", "g.safetensors"],
                    flags: [("--checkpoint", .path), ("--format", .text), ("--out", .path), ("--include-discriminator", .flag),
                            ("--discriminator-out", .path)],
                    combinations: [["--include-discriminator", "--discriminator-out", "g.safetensors"], ["--checkpoint", styleCkpt]]),
            Command(exe: "gan", words: ["import"], base: ["--safetensors", work + "/g.safetensors", "--checkpoint-out", "imp.rgan"],
                    flags: [("--safetensors", .path), ("--discriminator", .path), ("--checkpoint-out", .path), ("--model", .text),
                            ("--loss", .text), ("--image-size", .int), ("--ngf", .int), ("--ndf", .int), ("--nc", .int),
                            ("--latent-dim", .int), ("--w-dim", .int), ("--mapping-layers", .int), ("--progressive", .flag),
                            ("--dataset", .text), ("--data", .path), ("--seed", .uint)],
                    combinations: [["--model", "dcgan"], ["--model", "stylegan", "--nc", "3"], ["--discriminator", work + "/g.safetensors"]]),
            Command(exe: "gan", words: ["info"], base: [], flags: log),
            Command(exe: "gan-coordinator", words: [],
                    base: ["--workers", "1", "--port", "0", "--token-file", work + "/token", "--rendezvous-timeout", "0.2"] + trainBase,
                    flags: [("--workers", .int), ("--min-workers", .int), ("--host", .text), ("--port", .uint), ("--token-file", .path),
                            ("--codec", .text), ("--zstd-level", .int), ("--checksum-every", .int), ("--prefetch", .int),
                            ("--dead-after", .float), ("--rendezvous-timeout", .float), ("--io-timeout", .float), ("--spawn", .flag), ("--worker-threads", .int),
                            ("--json", .flag), ("--time-limit", .text), ("--batch", .int), ("--nc", .int), ("--resume", .path)] + log,
                    combinations: [["--workers", "2", "--spawn", "--model", "mlp", "--batch", "5000", "--steps", "2"],
                                   ["--workers", "2", "--spawn", "--nc", "3", "--steps", "2"], ["--workers", "2", "--batch", "1"],
                                   ["--workers", "2", "--min-workers", "3"], ["--workers", "2", "--spawn", "--batch", "3"],
                                   ["--host", "256.1.1.1"], ["--resume", mlpCkpt, "--spawn"], ["--resume", "auto"]]),
            Command(exe: "gan-worker", words: [],
                    base: ["--rank", "0", "--coordinator", "127.0.0.1:1", "--token-file", work + "/token", "--connect-timeout", "0.3",
                           "--rejoin-timeout", "0"],
                    flags: [("--rank", .int), ("--coordinator", .text), ("--token-file", .path), ("--ring-host", .text),
                            ("--ring-port", .uint), ("--advertise", .text), ("--threads", .int), ("--connect-timeout", .float),
                            ("--rejoin-timeout", .float)] + log,
                    combinations: [["--coordinator", "127.0.0.1:99999"], ["--coordinator", "::"], ["--coordinator", "127.0.0.1:-1"],
                                   ["--token-file", work + "/runs"]]),
        ]
        // The executables bare, asking for help, and given what they do not know.
        for name in ["gan", "gan-coordinator", "gan-worker"] {
            commands.append(Command(exe: name, words: [], base: [], flags: [],
                                    combinations: [[], ["--help"], ["--nope"], ["nope"], ["--", "-1"]]))
        }

        var rng = Rng(state: seed)
        var cases: [Case] = []
        for c in commands {
            for (flag, kind) in c.flags {
                for v in values(kind, &rng) { cases.append(Case(exe: c.exe, args: c.words + c.base + [flag] + v, cwd: "")) }
            }
            for combo in c.combinations { cases.append(Case(exe: c.exe, args: c.words + c.base + combo, cwd: "")) }
        }
        // Each run in a folder of its own: runs started in the same second must not share a run folder.
        for i in cases.indices {
            cases[i].cwd = work + "/case-\(i)"
            try FileManager.default.createDirectory(atPath: cases[i].cwd, withIntermediateDirectories: true)
        }

        let started = Date()
        let results = Results(count: cases.count)
        let all = cases, paths = Dictionary(uniqueKeysWithValues: Self.allowed.keys.map { ($0, exe($0)) }), limit = limit
        DispatchQueue.concurrentPerform(iterations: 2) { lane in
            for i in stride(from: lane, to: all.count, by: 2) {
                let c = all[i]
                let t0 = Date()
                let r = try? runProcess(paths[c.exe]!, c.args, cwd: c.cwd, env: ["RINGGAN_THREADS": "1"], timeout: limit)
                results.set(i, r, seconds: Date().timeIntervalSince(t0))
            }
        }
        var timedOut = 0
        for (i, c) in cases.enumerated() {
            let shown = "\(c.exe) \(c.args.map { $0.isEmpty || $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")) (seed \(seed))"
            guard let r = results.get(i) else { XCTFail("could not start: \(shown)"); continue }
            if r.timedOut { timedOut += 1; continue }
            // What a crash says first (the runtime's message), else the last lines.
            let lines = r.both.split(separator: "\n")
            let telling = lines.filter { l in ["Fatal error", "Precondition failed", "Error:", "error:", "crashed"].contains { l.contains($0) } }
            let tail = (telling.isEmpty ? lines.suffix(6) : telling.prefix(4)).joined(separator: "\n")
            if r.signalled {
                XCTFail("\(shown): killed by signal \(r.status)\n\(tail)")
            } else if !Self.allowed[c.exe, default: []].contains(r.status) {
                XCTFail("\(shown): exit \(r.status), not one of \(Self.allowed[c.exe, default: []].sorted())\n\(tail)")
            } else if r.status == 64 && !r.stderr.contains("Error:") {
                XCTFail("\(shown): exit 64 without an error message\n\(tail)")
            }
        }
        let slowest = cases.indices.sorted { results.seconds($0) > results.seconds($1) }.prefix(5)
            .map { String(format: "%.1f s: ", results.seconds($0)) + cases[$0].exe + " " + cases[$0].args.suffix(3).joined(separator: " ") }
        print("CommandLineFuzzTests: \(cases.count) runs in \(Int(Date().timeIntervalSince(started))) s, \(timedOut) stopped at the "
              + "\(Int(limit)) s limit, seed \(seed); slowest: \(slowest.joined(separator: "; "))")
    }

    /// The crashes issue 26 names: each a usage error (exit 64) naming the flag, the value and
    /// what is accepted, before any work starts: no run folder, no spawned worker.
    func testTheNamedCrashesAreUsageErrors() throws {
        let work = try makeTempDir(self)
        let gan = builtExecutable("gan"), coordinator = builtExecutable("gan-coordinator")
        try "t".write(toFile: work + "/token", atomically: true, encoding: .utf8)
        let cases: [(String, [String], [String])] = [
            (gan, ["train", "--model", "mlp", "--batch", "4501", "--steps", "1"], ["--batch 4501", "1...4500"]),
            (gan, ["train", "--model", "dcgan", "--nc", "3", "--steps", "2"], ["--nc 3", "--nc 1"]),
            (gan, ["train", "--steps", "-5"], ["--steps", "0...", "-5"]),
            (gan, ["train", "--lr-d", "-1"], ["--lr-d", "-1"]),
            (gan, ["train", "--sample-every=-1"], ["--sample-every", "-1"]),
            (gan, ["train", "--checkpoint-every=-1"], ["--checkpoint-every", "-1"]),
            (gan, ["train", "--style-mixing-prob", "2"], ["--style-mixing-prob", "0...1", "2"]),
            (gan, ["train", "--threads", "0"], ["--threads", "1...", "0"]),
            (gan, ["train", "--model", "nope"], ["unknown --model 'nope'", "mlp, dcgan, sndcgan, stylegan"]),
            (gan, ["train", "--loss", "nope"], ["unknown --loss 'nope'", "wgan-gp"]),
            (gan, ["style-mix", "--count", "0"], ["--count", "1...32", "0"]),
            (coordinator, ["--workers", "2", "--spawn", "--model", "mlp", "--batch", "5000", "--steps", "2", "--port", "0"], ["--batch 5000", "1...4500"]),
            (coordinator, ["--workers", "2", "--spawn", "--nc", "3", "--steps", "2", "--port", "0"], ["--nc 3"]),
            (coordinator, ["--workers", "0", "--token-file", "token"], ["--workers", "0"]),
        ]
        for (exe, args, needles) in cases {
            let r = try runProcess(exe, args, cwd: work, timeout: 60)
            let shown = "\(URL(fileURLWithPath: exe).lastPathComponent) \(args.joined(separator: " "))"
            XCTAssertEqual(r.status, 64, "\(shown): \(r.both)")
            XCTAssertFalse(r.signalled, "\(shown): \(r.both)")
            for n in needles { XCTAssertTrue(r.stderr.contains(n), "\(shown): the message should name '\(n)':\n\(r.stderr)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/runs"), "a refused run made a run folder")
    }

    final class Results: @unchecked Sendable {
        private var items: [ProcessResult?]
        private var times: [Double]
        private let lock = NSLock()
        init(count: Int) { items = Array(repeating: nil, count: count); times = Array(repeating: 0, count: count) }
        func set(_ i: Int, _ r: ProcessResult?, seconds: Double) { lock.lock(); items[i] = r; times[i] = seconds; lock.unlock() }
        func seconds(_ i: Int) -> Double { lock.lock(); defer { lock.unlock() }; return times[i] }
        func get(_ i: Int) -> ProcessResult? { lock.lock(); defer { lock.unlock() }; return items[i] }
    }
}
