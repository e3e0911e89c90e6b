import Datasets
import Foundation
import GAN
import Tensors
import TestSupport
import XCTest

/// Runs the `gan` executable the way a user does: every model trains from the command line for a
/// few steps and writes grids and checkpoints, the sampling commands read them back, and bad
/// input ends with a clear error and a non-zero exit.
final class CLITests: XCTestCase {
    var work = ""

    override func setUpWithError() throws { work = try makeTempDir(self) }

    var gan: String { ganBinary }
    var mnist: String { mnistFolder }

    /// `gan args` in the work folder; its output (stdout, then stderr), failing the test when the
    /// exit status is not `code`.
    @discardableResult
    func run(_ args: [String], expect code: Int32 = 0, env: [String: String] = [:], file: StaticString = #filePath,
             line: UInt = #line) throws -> String {
        let r = try runProcess(gan, args, cwd: work, env: env)
        XCTAssertEqual(r.status, code, "gan \(args.joined(separator: " ")) exited \(r.status):\n\(r.both)", file: file, line: line)
        return r.both
    }

    /// The JSON object a `--json` command printed last on standard output, and its log.
    func runJSON(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath,
                 line: UInt = #line) throws -> (json: [String: Any], log: String) {
        let r = try runProcess(gan, args + ["--json"], cwd: work, env: env)
        XCTAssertEqual(r.status, 0, "gan \(args.joined(separator: " ")) --json exited \(r.status):\n\(r.both)", file: file, line: line)
        guard let last = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            XCTFail("gan \(args.joined(separator: " ")) --json printed no JSON object:\n\(r.both)", file: file, line: line)
            return ([:], r.stderr)
        }
        return (obj, r.stderr)
    }

    func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: work + "/" + dir)) ?? []).sorted() }

    /// A raw MNIST-format folder of `indices` of the real `split`.
    func writeMiniMNIST(_ folder: String, split: Split, indices: [Int]) throws {
        let full = try ImageDataset.load(folder: mnist, split: split)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func header(_ magic: UInt32, _ dims: [Int]) -> [UInt8] {
            ([magic] + dims.map { UInt32($0) }).flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
        }
        let px = full.height * full.width
        var images = header(0x803, [indices.count, full.height, full.width]), labels = header(0x801, [indices.count])
        for i in indices { images += full.pixels[(i * px)..<((i + 1) * px)]; labels.append(full.labels[i]) }
        let prefix = split == .train ? "train" : "t10k"
        try Data(images).write(to: URL(fileURLWithPath: folder + "/\(prefix)-images-idx3-ubyte"))
        try Data(labels).write(to: URL(fileURLWithPath: folder + "/\(prefix)-labels-idx1-ubyte"))
    }

    /// A fresh install has no classifier: `gan evaluate` trains one into the user's cache (saying
    /// where, with progress), never into the data folder, and the next evaluation reuses it;
    /// `train-classifier --if-missing` then does nothing. (Before, evaluate failed with
    /// "classifier-mnist.safetensors ... doesn't exist".) The data root here is a 130-image
    /// MNIST folder so that the first-use training takes seconds.
    func testEvaluateTrainsTheClassifierOnFirstUseIntoTheCache() throws {
        let root = work + "/dataroot", cache = work + "/cache"
        try writeMiniMNIST(root + "/mnist-5k", split: .train, indices: Array(stride(from: 0, to: 4_500, by: 35)))
        try writeMiniMNIST(root + "/mnist-5k", split: .test, indices: Array(stride(from: 0, to: 500, by: 5)))
        let env = ["RINGGAN_DATA": root, "RINGGAN_CACHE": cache]
        try run(["train", "--model", "mlp", "--steps", "2", "--batch", "8", "--name", "fresh", "--json"], env: env)
        let evaluate = ["evaluate", "--checkpoint", "runs/fresh/checkpoints/step_00000002.rgan", "--samples", "40"]
        let first = try runJSON(evaluate, env: env)
        // The user is told what is happening and where the classifier goes.
        XCTAssertTrue(first.log.contains("no digit classifier for mnist yet"), first.log)
        XCTAssertTrue(first.log.contains("into \(cache)/classifier-mnist.safetensors"), first.log)
        XCTAssertEqual(first.json["classifier"] as? String, cache + "/classifier-mnist.safetensors")
        XCTAssertNotNil(first.json["fid"] as? Double, "\(first.json)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache + "/classifier-mnist.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/classifier-mnist.safetensors"), "nothing written into the data folder")
        let trained = try FileManager.default.attributesOfItem(atPath: cache + "/classifier-mnist.safetensors")[.modificationDate] as? Date
        let again = try runJSON(evaluate, env: env)
        XCTAssertEqual(again.json["classifier"] as? String, cache + "/classifier-mnist.safetensors")
        _ = try run(["train-classifier", "--if-missing"], env: env)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cache + "/classifier-mnist.safetensors")[.modificationDate] as? Date,
                       trained, "evaluate and train-classifier --if-missing reuse the classifier")
        // A classifier in the data folder (earlier versions put it there) is found first.
        try FileManager.default.copyItem(atPath: cache + "/classifier-mnist.safetensors", toPath: root + "/classifier-mnist.safetensors")
        XCTAssertEqual(try runJSON(evaluate, env: env).json["classifier"] as? String, root + "/classifier-mnist.safetensors")
    }

    func testEveryModelTrainsFromTheCommandLine() throws {
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnist), "\(mnist) is missing: run scripts/setup.sh")
        let common = ["--steps", "4", "--batch", "8", "--ngf", "8", "--ndf", "8", "--data", mnist, "--sample-every", "2",
                      "--checkpoint-every", "2", "--json"]
        let runs: [(String, [String])] = [
            ("mlp-bce", ["--model", "mlp", "--loss", "bce"]),
            ("mlp-sat", ["--model", "mlp", "--loss", "bce-saturating", "--label-smoothing", "0.9"]),
            ("dcgan-noisy", ["--model", "dcgan", "--loss", "bce", "--noisy-labels", "--image-size", "16"]),
            ("dcgan-wgan", ["--model", "dcgan", "--loss", "wgan", "--image-size", "16", "--n-critic", "2"]),
            ("dcgan-gp", ["--model", "dcgan", "--loss", "wgan-gp", "--image-size", "16", "--n-critic", "2"]),
            ("sndcgan-hinge-ttur", ["--model", "sndcgan", "--loss", "hinge", "--image-size", "16", "--lr-d", "4e-4", "--lr-g", "1e-4",
                                    "--beta1", "0", "--beta2", "0.9"]),
            ("stylegan", ["--model", "stylegan", "--loss", "bce", "--image-size", "16", "--w-dim", "16", "--mapping-layers", "2"]),
            ("dcgan-ema", ["--model", "dcgan", "--loss", "bce", "--image-size", "16", "--g-ema", "0.9"]),
            ("progressive", ["--model", "dcgan", "--progressive", "--loss", "bce", "--image-size", "16"]),
        ]
        for (name, args) in runs {
            let out = try run(["train", "--name", name] + args + common)
            let steps = out.split(separator: "\n").filter { $0.hasPrefix("{\"step\"") }
            XCTAssertEqual(steps.count, 4, "\(name): one JSON line per step:\n\(out)")
            let metrics = steps.joined(separator: "\n")   // (log lines on standard error say "info")
            XCTAssertFalse(metrics.contains("nan") || metrics.contains("inf"), "\(name): non-finite values:\n\(out)")
            XCTAssertEqual(files("runs/\(name)/samples"), ["step_00000002.png", "step_00000004.png"], name)
            XCTAssertEqual(files("runs/\(name)/checkpoints"), ["step_00000002.rgan", "step_00000004.rgan"], name)
            XCTAssertTrue(files("runs/\(name)").contains("metrics.jsonl"), name)
        }
        // Sampling commands default to the newest checkpoint of the newest run (progressive).
        try run(["sample"])
        XCTAssertTrue(files("runs/progressive").contains("sample.png"))
        // StyleGAN's commands default to the newest stylegan run, not the newest run of any model.
        try run(["style-mix", "--count", "2"])
        XCTAssertTrue(files("runs/stylegan").contains("style-mix.png"), "style-mix took another run than the stylegan one")
        try run(["sample", "--truncation", "0.7"])
        XCTAssertTrue(files("runs/stylegan").contains("sample.png"), "sample --truncation took another run than the stylegan one")
        let ck = "runs/stylegan/checkpoints/step_00000004.rgan"
        try run(["sample", "--checkpoint", ck, "--out", "s.png"])
        try run(["interpolate", "--checkpoint", ck, "--mode", "lerp", "--rows", "2", "--steps", "4", "--out", "lerp.png"])
        try run(["interpolate", "--checkpoint", ck, "--mode", "slerp", "--rows", "2", "--steps", "4", "--out", "slerp.png"])
        try run(["style-mix", "--checkpoint", ck, "--count", "3", "--out", "mix.png"])
        try run(["sample", "--checkpoint", ck, "--truncation", "0.7", "--out", "trunc.png"])
        let t = try run(["sample", "--checkpoint", "runs/mlp-bce/checkpoints/step_00000004.rgan", "--truncation", "0.7"], expect: 1)
        XCTAssertTrue(t.contains("--truncation applies to stylegan"), t)
        for f in ["s.png", "lerp.png", "slerp.png", "mix.png", "trunc.png"] {
            let d = try Data(contentsOf: URL(fileURLWithPath: work + "/" + f))
            XCTAssertEqual(Array(d.prefix(4)), [0x89, 0x50, 0x4E, 0x47], f)
        }
        // Style mixing refuses a non-StyleGAN model.
        let e = try run(["style-mix", "--checkpoint", "runs/mlp-bce/checkpoints/step_00000004.rgan"], expect: 1)
        XCTAssertTrue(e.contains("needs stylegan"), e)
        // --time-limit 0: one step, then the final checkpoint and grid, long before --steps.
        let tl = try run(["train", "--name", "timed", "--model", "mlp", "--steps", "500", "--batch", "8", "--data", mnist,
                          "--time-limit", "0", "--json"])
        XCTAssertEqual(try RunFolder(path: work + "/runs/timed").events().last?.ending, .timeLimit, tl)
        XCTAssertEqual(files("runs/timed/checkpoints"), ["step_00000001.rgan"])
        XCTAssertEqual(files("runs/timed/samples"), ["step_00000001.png"])
        // --g-ema: the checkpoint holds the average, and export writes it.
        let ema = "runs/dcgan-ema/checkpoints/step_00000004.rgan"
        let ex = try run(["export", "--checkpoint", ema, "--out", "ema.safetensors"])
        XCTAssertTrue(ex.contains("(the EMA of its weights)"), ex)
        let saved = try Checkpoint.read(path: work + "/" + ema).group("G_ema.")
        let exported = try Safetensors.read(path: work + "/ema.safetensors").tensors
        XCTAssertEqual(Set(saved.keys), Set(exported.keys))
        XCTAssertEqual(saved["main.0.weight"]?.toArray(), exported["main.0.weight"]?.toArray())
        XCTAssertNotEqual(try Checkpoint.read(path: work + "/" + ema).group("G.")["main.0.weight"]?.toArray(),
                          exported["main.0.weight"]?.toArray(), "export wrote G, not its average")
        // Resume extends a run.
        try run(["train", "--resume", "runs/mlp-bce/checkpoints/step_00000004.rgan", "--steps", "6", "--json",
                 "--sample-every", "0", "--checkpoint-every", "0"])
        XCTAssertEqual(files("runs/mlp-bce/checkpoints").last, "step_00000006.rgan")
        // Evaluation with a (quick) classifier.
        let c = try run(["train-classifier", "--data", mnist, "--epochs", "1", "--max-train", "128", "--out", "clf.safetensors"])
        XCTAssertTrue(c.contains("held-out accuracy"), c)
        let evaluated = try runProcess(gan, ["evaluate", "--checkpoint", "runs/mlp-bce/checkpoints/step_00000006.rgan",
                                             "--classifier", "clf.safetensors", "--samples", "64", "--json"], cwd: work)
        let ev = evaluated.both
        XCTAssertEqual(evaluated.status, 0, ev)
        // --json: the scores are stdout's last line (the logs go to stderr).
        let json = try JSONSerialization.jsonObject(with: Data(evaluated.stdout.split(separator: "\n").last!.utf8)) as! [String: Any]
        XCTAssertNotNil(json["fid"] as? Double, ev)
        XCTAssertNotNil(json["mode_entropy"] as? Double, ev)
        // The reference: 64 train images drawn from every class (6 or 7 each), and the floor.
        let ref = json["reference"] as? [String: Any]
        XCTAssertEqual((ref?["per_class"] as? [Int])?.reduce(0, +), 64, ev)
        XCTAssertEqual((ref?["per_class"] as? [Int])?.allSatisfy { $0 == 6 || $0 == 7 }, true, ev)
        XCTAssertNotNil(json["real_floor_fid"] as? Double, ev)
        let text = try run(["evaluate", "--checkpoint", "runs/mlp-bce/checkpoints/step_00000006.rgan", "--classifier", "clf.safetensors",
                            "--samples", "40", "--reference-seed", "5"])
        XCTAssertTrue(text.contains("reference: 40 of 4500 train images, 4 per class over 10 classes, stratified draw with seed 5"), text)
        XCTAssertTrue(text.contains("real-vs-real floor"), text)
    }

    func testBadInputGetsClearErrors() throws {
        var e = try run(["train", "--model", "nope"], expect: 64)
        XCTAssertTrue(e.contains("unknown --model 'nope'"), e)
        e = try run(["train", "--model", "mlp", "--image-size", "32"], expect: 64)
        XCTAssertTrue(e.contains("28x28"), e)
        e = try run(["train", "--g-ema", "1.5", "--steps", "1"], expect: 64)
        XCTAssertTrue(e.contains("--g-ema must be in (0, 1)"), e)
        e = try run(["train", "--time-limit", "5x", "--steps", "1"], expect: 64)
        XCTAssertTrue(e.contains("--time-limit '5x'"), e)
        e = try run(["train", "--label-smoothing", "0.9", "--noisy-labels", "--steps", "1"], expect: 64)
        XCTAssertTrue(e.contains("--label-smoothing and --noisy-labels"), e)
        e = try run(["train", "--data", work + "/nowhere", "--steps", "1"], expect: 1)
        XCTAssertTrue(e.contains("nowhere"), e)
        // A truncated images file in an otherwise valid folder.
        let bad = work + "/bad"
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        var header = Data([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28])
        header.append(Data(count: 100))
        try header.write(to: URL(fileURLWithPath: bad + "/train-images-idx3-ubyte"))
        try Data([0, 0, 8, 1, 0, 0, 0, 10] + [UInt8](repeating: 1, count: 10)).write(to: URL(fileURLWithPath: bad + "/train-labels-idx1-ubyte"))
        e = try run(["train", "--data", bad, "--steps", "1"], expect: 1)
        XCTAssertTrue(e.contains("train-images-idx3-ubyte") && e.contains("truncated"), e)
        // A corrupt checkpoint.
        try Data("RINGGAN\0garbage-garbage-garbage".utf8).write(to: URL(fileURLWithPath: work + "/x.rgan"))
        e = try run(["sample", "--checkpoint", "x.rgan"], expect: 1)
        XCTAssertTrue(e.contains("x.rgan"), e)
        e = try run(["sample"], expect: 1)
        XCTAssertTrue(e.contains("no checkpoint"), e)
        // A folder or a missing file as --checkpoint: plain words, no NSCocoaErrorDomain codes.
        e = try run(["sample", "--checkpoint", bad], expect: 1)
        XCTAssertTrue(e.contains("it is a folder, not a file") && !e.contains("NSCocoaErrorDomain"), e)
        e = try run(["sample", "--checkpoint", "missing.rgan"], expect: 1)
        XCTAssertTrue(e.contains("missing.rgan: cannot read the checkpoint: no such file"), e)
        // --out into a folder that does not exist yet: made.
        try run(["train", "--name", "tiny", "--model", "mlp", "--steps", "1", "--batch", "4", "--data", mnist,
                 "--sample-every", "0", "--checkpoint-every", "0"])
        try run(["sample", "--checkpoint", "runs/tiny/checkpoints/step_00000001.rgan", "--out", "new/dir/x.png"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/new/dir/x.png"))
    }
}
