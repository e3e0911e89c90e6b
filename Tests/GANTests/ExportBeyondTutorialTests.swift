import Foundation
import GAN
import NN
import Tensors
import TestSupport
import XCTest

/// `gan export` for the models beyond the tutorial's generators: the spectral-norm and StyleGAN
/// discriminators (their outputs on the same images), the progressive generator and the StyleGAN
/// generator (tools/ringgan_models.py), image for image in PyTorch after a short training run.
final class ExportBeyondTutorialTests: XCTestCase {
    /// The checkpoint's models as `gan sample` loads them (growth state of its last step).
    func load(_ path: String) throws -> GANModels {
        let ckpt = try Checkpoint.read(path: path)
        let models = GANModels(config: ckpt.config)
        try ckpt.restore(into: models, path: path)
        if let s = models.growthSchedule { models.setGrowth(s.state(at: max(ckpt.step - 1, 0))) }
        return models
    }

    func testExportedSNDiscriminatorProgressiveAndStyleGANMatchPyTorch() throws {
        try InteropSupport.require(["torch", "numpy", "safetensors"])
        let work = try makeTempDir(self)
        let cases: [(name: String, train: [String], check: [String])] = [
            ("sndcgan", ["--model", "sndcgan", "--loss", "hinge", "--image-size", "64", "--ngf", "4", "--ndf", "4", "--latent-dim", "16"],
             ["--model", "sndcgan", "--image-size", "64", "--ngf", "4", "--ndf", "4", "--latent-dim", "16"]),
            ("progressive", ["--model", "dcgan", "--progressive", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--steps", "6"],
             ["--model", "dcgan", "--progressive", "--image-size", "16", "--ngf", "8"]),
            ("stylegan", ["--model", "stylegan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--w-dim", "16", "--mapping-layers", "8"],
             ["--model", "stylegan", "--image-size", "16", "--ngf", "8", "--ndf", "8", "--w-dim", "16", "--mapping-layers", "8"]),
        ]
        for c in cases {
            let steps = c.train.contains("--steps") ? [] : ["--steps", "3"]
            try gan(["train"] + c.train + steps + ["--batch", "8", "--data", mnistFolder, "--name", c.name, "--sample-every", "0"], cwd: work)
            let ck = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: work + "/runs/\(c.name)/checkpoints").sorted().last)
            let ckPath = "runs/\(c.name)/checkpoints/\(ck)"
            try gan(["export", "--checkpoint", ckPath, "--include-discriminator"], cwd: work)
            try gan(["sample", "--checkpoint", ckPath, "--count", "10", "--latents-out", "\(c.name)-z.npy", "--out", "\(c.name)-images.npy"],
                    cwd: work)
            var extra: [String] = []
            let models = try load(work + "/" + ckPath)
            if c.name == "sndcgan" || c.name == "stylegan" {
                // The discriminator's outputs on the sampled images, eval mode (SN: stored u and v;
                // StyleGAN: the minibatch standard deviation over groups of the 10 images).
                let x = try Npy.read(path: work + "/\(c.name)-images.npy")
                models.discriminator.eval()
                let d = withNoGrad { models.discriminator.forward(x) }
                try Npy.write(d, to: work + "/\(c.name)-d.npy")
                extra = ["--discriminator", "runs/\(c.name)/discriminator.safetensors",
                         "--d-images", "\(c.name)-images.npy", "--d-outputs", "\(c.name)-d.npy"]
            }
            if let sg = models.generator as? StyleGenerator {
                let z = try Npy.read(path: work + "/\(c.name)-z.npy")
                for (i, n) in sg.noiseInputs(for: z).enumerated() { try Npy.write(n, to: work + "/\(c.name)-noise-\(i).npy") }
                extra += ["--noise-prefix", "\(c.name)-noise-"]
                // After training the noise strengths are not all zero: the noise matters.
                XCTAssertGreaterThan(sg.synthesis.blocks[0].noise.parameter("weight").toArray().map { Swift.abs($0) }.max() ?? 0, 0)
            }
            let r = try InteropSupport.script("torch_load_export.py", ["check"] + c.check + [
                "--generator", "runs/\(c.name)/generator.safetensors", "--latents", "\(c.name)-z.npy",
                "--images", "\(c.name)-images.npy"] + extra, cwd: work)
            XCTAssertEqual(r["ok"] as? Bool, true, "\(c.name): \(r)")
            XCTAssertLessThan((r["max_abs_diff"] as? Double) ?? 1, 1e-4, "\(c.name): \(r)")
            if let dClass = ["sndcgan": "SNDiscriminator", "stylegan": "StyleDiscriminator"][c.name] {
                XCTAssertEqual(r["discriminator"] as? String, dClass, "\(r)")
                XCTAssertLessThan((r["d_max_abs_diff"] as? Double) ?? 1, 1e-4, "\(r)")
            }
            XCTAssertEqual(r["generator"] as? String,
                           ["sndcgan": "DCGANGenerator", "progressive": "ProgressiveGenerator", "stylegan": "StyleGenerator"][c.name], "\(r)")
        }
    }
}
