import Foundation
import GAN
import NN
import Tensors
import TestSupport
import XCTest

/// Weights between RingGAN and PyTorch: `gan export` loads into the tutorial's own classes with
/// `load_state_dict(strict=True)` and gives the same images for the same latents; a generator
/// PyTorch saves with `safetensors.torch.save_file` comes back through `gan import`.
final class InteropTests: XCTestCase {
    func testSafetensorsInt64ForNumBatchesTracked() throws {
        let dir = try makeTempDir(self)
        var rng = RandomGenerator(seed: 1)
        let g = DCGANGenerator(latentDim: 6, ngf: 2, nc: 1, imageSize: 16, rng: &rng)
        for (n, t) in g.stateDict() where n.hasSuffix("num_batches_tracked") { t.data[0] = 12 }
        let p = dir + "/g.safetensors"
        try Safetensors.write(g.stateDict().map { (name: $0.0, tensor: $0.1) }, dtype: { Safetensors.torchDType(forKey: $0) }, to: p)
        let f = try Safetensors.readFile(path: p)
        XCTAssertEqual(Set(f.dtypes.filter { $0.value == .i64 }.keys), ["main.1.num_batches_tracked", "main.4.num_batches_tracked"])
        XCTAssertEqual(f.tensors["main.1.num_batches_tracked"]?.shape, [])
        XCTAssertEqual(f.tensors["main.1.num_batches_tracked"]?.item, 12)
        XCTAssertEqual(f.dtypes["main.0.weight"], .f32)
        // The raw bytes: an int64 12, little-endian, where the header says.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
        let e = header["main.4.num_batches_tracked"] as! [String: Any]
        XCTAssertEqual(e["dtype"] as? String, "I64")
        let off = (e["data_offsets"] as! [Int])[0]
        XCTAssertEqual(Array(bytes[(8 + n + off)..<(8 + n + off + 8)]), [12, 0, 0, 0, 0, 0, 0, 0])
        // And it loads back.
        var rng2 = RandomGenerator(seed: 2)
        let g2 = DCGANGenerator(latentDim: 6, ngf: 2, nc: 1, imageSize: 16, rng: &rng2)
        try g2.loadStateDict(f.tensors)
        XCTAssertEqual(g2.stateDict().map { $0.1.toArray() }, g.stateDict().map { $0.1.toArray() })
    }

    func testConfigGuessedFromTheTutorialsKeys() {
        var rng = RandomGenerator(seed: 1)
        let cases: [(GeneratorModel, ModelKind, Int, Int, Int, Int)] = [
            (MLPGenerator(latentDim: 20, imageShape: [1, 28, 28], rng: &rng), .mlp, 28, 20, 64, 1),
            (DCGANGenerator(latentDim: 16, ngf: 4, nc: 1, imageSize: 32, rng: &rng), .dcgan, 32, 16, 4, 1),
            (DCGANGenerator(latentDim: 8, ngf: 2, nc: 3, imageSize: 64, rng: &rng), .dcgan, 64, 8, 2, 3),
        ]
        for (g, model, size, latent, ngf, nc) in cases {
            var sd: [String: Tensor] = [:]
            for (k, v) in g.stateDict() { sd[k] = v }
            guard let c = TorchInterop.inferGeneratorConfig(tensors: sd, metadata: [:]) else {
                XCTFail("no guess for \(type(of: g))"); continue
            }
            XCTAssertEqual(c.model, model)
            XCTAssertEqual(c.imageSize, size)
            XCTAssertEqual(c.latentDim, latent)
            if model != .mlp { XCTAssertEqual(c.ngf, ngf) }
            XCTAssertEqual(c.nc, nc)
        }
        XCTAssertNil(TorchInterop.inferGeneratorConfig(tensors: ["fc.weight": Tensor.zeros([2, 2])], metadata: [:]))
    }

    /// RingGAN -> PyTorch, after a short training run (BatchNorm running statistics moved).
    func testExportedGeneratorsGiveTheSameImagesInPyTorch() throws {
        try InteropSupport.require(["torch", "numpy", "safetensors"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnistFolder), "\(mnistFolder) is missing: run scripts/setup.sh")
        let work = try makeTempDir(self)
        let cases: [(name: String, train: [String], check: [String])] = [
            ("mlp", ["--model", "mlp"], ["--model", "mlp"]),
            ("dcgan", ["--model", "dcgan", "--image-size", "32", "--ngf", "8", "--ndf", "8"],
             ["--model", "dcgan", "--image-size", "32", "--ngf", "8", "--ndf", "8"]),
        ]
        for c in cases {
            try gan(["train"] + c.train + ["--steps", "2", "--batch", "8", "--data", mnistFolder, "--name", c.name, "--sample-every", "0"],
                    cwd: work)
            let ck = "runs/\(c.name)/checkpoints/step_00000002.rgan"
            let ex = try gan(["export", "--checkpoint", ck, "--include-discriminator"], cwd: work)
            XCTAssertTrue(ex.stdout.contains("runs/\(c.name)/generator.safetensors"), ex.stdout)
            XCTAssertTrue(ex.stdout.contains("runs/\(c.name)/discriminator.safetensors"), ex.stdout)
            try gan(["sample", "--checkpoint", ck, "--count", "12", "--latents-out", "\(c.name)-z.npy", "--out", "\(c.name)-images.npy"],
                    cwd: work)
            let r = try InteropSupport.script("torch_load_export.py", ["check"] + c.check + [
                "--generator", "runs/\(c.name)/generator.safetensors", "--discriminator", "runs/\(c.name)/discriminator.safetensors",
                "--latents", "\(c.name)-z.npy", "--images", "\(c.name)-images.npy"], cwd: work)
            XCTAssertEqual(r["ok"] as? Bool, true, "\(c.name): \(r)")
            XCTAssertLessThan((r["max_abs_diff"] as? Double) ?? 1, 1e-4, "\(c.name): \(r)")
            XCTAssertEqual(r["num_batches_tracked_dtypes"] as? [String], ["torch.int64"], "\(c.name): \(r)")
            XCTAssertEqual(r["generator"] as? String, c.name == "mlp" ? "Generator" : "DCGAN32Generator")
            XCTAssertEqual(r["discriminator"] as? String, c.name == "mlp" ? "Discriminator" : "DCGAN32Discriminator")
        }
        // --out and --discriminator-out; an unknown format.
        try gan(["export", "--checkpoint", "runs/mlp/checkpoints/step_00000002.rgan", "--out", "g.safetensors", "--include-discriminator"], cwd: work)
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/g-discriminator.safetensors"))
        let e = try gan(["export", "--checkpoint", "runs/mlp/checkpoints/step_00000002.rgan", "--format", "onnx"], cwd: work, expect: 64)
        XCTAssertTrue(e.stderr.contains("unknown --format 'onnx'"), e.stderr)
    }

    /// PyTorch -> RingGAN: the tutorial's generators, randomly initialised (BatchNorm statistics
    /// too), saved by safetensors.torch.save_file; latents from numpy (float32 and float64).
    func testPyTorchGeneratorsImportAndGiveTheSameImages() throws {
        try InteropSupport.require(["torch", "numpy", "safetensors"])
        let work = try makeTempDir(self)
        let cases: [(name: String, args: [String], dtype: String)] = [
            ("pt-mlp", ["--model", "mlp"], "float32"),
            ("pt-dcgan32", ["--model", "dcgan", "--image-size", "32", "--latent-dim", "16", "--ngf", "4"], "float64"),
            ("pt-dcgan64", ["--model", "dcgan", "--image-size", "64", "--latent-dim", "16", "--ngf", "4"], "float32"),
        ]
        for c in cases {
            let made = try InteropSupport.script("torch_load_export.py", ["make"] + c.args + [
                "--out", "\(c.name).safetensors", "--latents-out", "\(c.name)-z.npy", "--count", "6", "--seed", "3",
                "--latents-dtype", c.dtype], cwd: work)
            XCTAssertNotNil(made["generator"], "\(made)")
            // The model is read from the keys and shapes alone.
            let imp = try gan(["import", "--safetensors", "\(c.name).safetensors"], cwd: work)
            let ck = "runs/import-\(c.name)/checkpoints/step_00000000.rgan"
            XCTAssertTrue(imp.stdout.contains("wrote \(ck)"), imp.stdout)
            try gan(["sample", "--checkpoint", ck, "--latents", "\(c.name)-z.npy", "--out", "\(c.name)-ours.npy", "--out", "\(c.name).png"],
                    cwd: work)
            let r = try InteropSupport.script("torch_load_export.py", ["check"] + c.args + [
                "--generator", "\(c.name).safetensors", "--latents", "\(c.name)-z.npy", "--images", "\(c.name)-ours.npy"], cwd: work)
            XCTAssertEqual(r["ok"] as? Bool, true, "\(c.name): \(r)")
            XCTAssertLessThan((r["max_abs_diff"] as? Double) ?? 1, 1e-4, "\(c.name): \(r)")
        }
        // The imported checkpoint is a training checkpoint: evaluate-style readers and export work.
        try gan(["export", "--checkpoint", "runs/import-pt-dcgan32/checkpoints/step_00000000.rgan", "--out", "again.safetensors"], cwd: work)
        let r = try InteropSupport.script("torch_load_export.py", ["check", "--model", "dcgan", "--image-size", "32", "--latent-dim", "16",
            "--ngf", "4", "--generator", "again.safetensors", "--latents", "pt-dcgan32-z.npy", "--images", "pt-dcgan32-ours.npy"], cwd: work)
        XCTAssertEqual(r["ok"] as? Bool, true, "\(r)")
        // Flags that contradict the weights: a clear error naming the keys.
        var e = try gan(["import", "--safetensors", "pt-dcgan32.safetensors", "--ngf", "8", "--checkpoint-out", "x.rgan"], cwd: work, expect: 1)
        XCTAssertTrue(e.stderr.contains("pt-dcgan32.safetensors does not fit") && e.stderr.contains("main.0.weight"), e.stderr)
        e = try gan(["import", "--safetensors", "pt-mlp.safetensors", "--model", "dcgan", "--checkpoint-out", "x.rgan"], cwd: work, expect: 1)
        XCTAssertTrue(e.stderr.contains("missing keys") && e.stderr.contains("unexpected keys"), e.stderr)
        // Keys of no known class, and no --model.
        try Safetensors.write([(name: "fc.weight", tensor: Tensor.zeros([2, 2]))], to: work + "/odd.safetensors")
        e = try gan(["import", "--safetensors", "odd.safetensors"], cwd: work, expect: 1)
        XCTAssertTrue(e.stderr.contains("cannot tell the model") && e.stderr.contains("fc.weight"), e.stderr)
    }
}
