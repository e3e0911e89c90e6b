import Datasets
import Foundation
import GAN
import Telemetry
import Tensors
import TestSupport
import XCTest


final class TensorBoardTests: XCTestCase {
    // MARK: the pieces

    func testCRC32CKnownValuesAndMasking() {
        // The check value of CRC-32C, and RFC 3720 (iSCSI) B.4 test vectors.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.mask(0x1234_5678), ((0x1234_5678 >> 15) | (0x1234_5678 << 17)) &+ 0xA282_EAD8)
        for v: UInt32 in [0, 1, 0xDEAD_BEEF, 0xFFFF_FFFF, 0x8000_0000] { XCTAssertEqual(CRC32C.unmask(CRC32C.mask(v)), v) }
    }

    func testProtobufEncoding() {
        var p = ProtoWriter()
        p.int(1, 150)                       // the protobuf guide's example: 08 96 01
        XCTAssertEqual(p.bytes, [0x08, 0x96, 0x01])
        p = ProtoWriter()
        p.int(2, -1)                        // negative int64: ten bytes
        XCTAssertEqual(p.bytes, [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        p = ProtoWriter()
        p.float(2, 1.0)                     // fixed32, wire type 5
        XCTAssertEqual(p.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
        p = ProtoWriter()
        p.double(1, 1.0)                    // fixed64, wire type 1
        XCTAssertEqual(p.bytes, [0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        p = ProtoWriter()
        p.string(3, "brain.Event:2")
        XCTAssertEqual(p.bytes, [0x1A, 13] + Array("brain.Event:2".utf8))
        // A 300-byte field has a two-byte length.
        p = ProtoWriter()
        p.bytes(4, [UInt8](repeating: 7, count: 300))
        XCTAssertEqual(Array(p.bytes.prefix(3)), [0x22, 0xAC, 0x02])
    }

    func testTFRecordFramingRoundTripAndCorruption() throws {
        let payloads = [Data(), Data("hello".utf8), Data((0..<1000).map { UInt8($0 % 251) })]
        var file = Data()
        for p in payloads { file.append(TFRecord.frame(p)) }
        XCTAssertEqual(file.count, payloads.reduce(0) { $0 + $1.count + 16 })
        XCTAssertEqual(try TFRecord.records(file), payloads)
        // The framing of an empty record: length 0, its masked CRC, no data, the masked CRC of nothing.
        let empty = [UInt8](TFRecord.frame(Data()))
        XCTAssertEqual(Array(empty[0..<8]), [0, 0, 0, 0, 0, 0, 0, 0])
        let lenCRC = CRC32C.mask(CRC32C.checksum([UInt8](repeating: 0, count: 8)))
        XCTAssertEqual(Array(empty[8..<12]), [UInt8(lenCRC & 0xFF), UInt8(lenCRC >> 8 & 0xFF), UInt8(lenCRC >> 16 & 0xFF), UInt8(lenCRC >> 24)])
        XCTAssertEqual(Array(empty[12..<16]), [0xD8, 0xEA, 0x82, 0xA2])   // mask(0), little-endian
        var bad = file
        bad[bad.count - 10] ^= 0x40
        XCTAssertThrowsError(try TFRecord.records(bad)) { XCTAssertTrue("\($0)".contains("checksum"), "\($0)") }
        XCTAssertThrowsError(try TFRecord.records(file.prefix(file.count - 3))) { XCTAssertTrue("\($0)".contains("past the end"), "\($0)") }
    }

    func testEventWriterFileNameFirstRecordAndFlushing() throws {
        let dir = try makeTempDir(self)
        final class Clock: @unchecked Sendable { var t = 1_700_000_000.25 }
        let clock = Clock()
        let w = try EventWriter(directory: dir + "/run", flushEvery: 5, clock: { clock.t })
        let name = URL(fileURLWithPath: w.path).lastPathComponent
        XCTAssertTrue(name.hasPrefix("events.out.tfevents.1700000000."), name)
        XCTAssertFalse(name.hasSuffix("."), name)
        // The file_version record is there at once.
        var records = try TFRecord.records(Data(contentsOf: URL(fileURLWithPath: w.path)))
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records[0], TensorBoardEvent.fileVersionEvent(wallTime: 1_700_000_000.25))
        XCTAssertNotNil(records[0].range(of: Data("brain.Event:2".utf8)))
        // Buffered until flushEvery seconds have passed...
        w.scalar("a", 1, step: 1)
        clock.t += 1
        w.scalar("a", 2, step: 2)
        records = try TFRecord.records(Data(contentsOf: URL(fileURLWithPath: w.path)))
        XCTAssertEqual(records.count, 1)
        clock.t += 5
        w.scalar("a", 3, step: 3)
        records = try TFRecord.records(Data(contentsOf: URL(fileURLWithPath: w.path)))
        XCTAssertEqual(records.count, 4)
        // ... or flush() is called.
        w.scalar("a", 4, step: 4)
        w.flush()
        records = try TFRecord.records(Data(contentsOf: URL(fileURLWithPath: w.path)))
        XCTAssertEqual(records.count, 5)
        XCTAssertEqual(records[4], TensorBoardEvent.summaryEvent(wallTime: clock.t, step: 4, values: [(tag: "a", value: .scalar(4))]))
        // A second writer in the same second gets a file of its own.
        let w2 = try EventWriter(directory: dir + "/run", clock: { clock.t - 6 })
        XCTAssertNotEqual(w2.path, w.path)
        w.close()
        w.scalar("ignored", 1, step: 5)
        XCTAssertEqual(try TFRecord.records(Data(contentsOf: URL(fileURLWithPath: w.path))).count, 5)
    }

    // MARK: read back by TensorBoard itself

    func testTheRealTensorBoardReaderReadsOurScalarsAndImages() throws {
        try InteropSupport.require(["tensorboard"])
        let dir = try makeTempDir(self)
        let w = try EventWriter(directory: dir)
        for s in 1...5 { w.scalars([("loss/d", Float(s) * 0.5), ("loss/g", -Float(s) / 3)], step: s) }
        w.scalar("lonely", 3.25, step: 7)
        w.scalar("big_step", 1e-7, step: 1 << 40)
        // A 2x2 grid of 5x6 images: (6 + 2) * 2 + 2 = 18 wide, (5 + 2) * 2 + 2 = 16 high.
        var rng = RandomGenerator(seed: 3)
        w.imageGrid("samples", Tensor.rand([4, 1, 5, 6], generator: &rng) * 2 - 1, nrow: 2, step: 5)
        let rgb = PNG.encode(width: 3, height: 2, channels: 3, pixels: (0..<18).map { UInt8($0 * 10) })
        w.image("rgb", png: rgb, width: 3, height: 2, channels: 3, step: 9)
        // Flushed, not closed: TensorBoard sees a run in progress.
        w.flush()
        var r = try InteropSupport.readEvents(w.path)
        XCTAssertEqual(Set(r.scalarTags), ["loss/d", "loss/g", "lonely", "big_step"])
        XCTAssertEqual(Set(r.imageTags), ["samples", "rgb"])
        XCTAssertEqual(r.scalars("loss/d").map { $0.step }, [1, 2, 3, 4, 5])
        XCTAssertEqual(r.scalars("loss/d").map { Float($0.value) }, (1...5).map { Float($0) * 0.5 })
        XCTAssertEqual(r.scalars("loss/g").map { Float($0.value) }, (1...5).map { -Float($0) / 3 })
        XCTAssertEqual(r.scalars("lonely").first?.step, 7)
        XCTAssertEqual(r.scalars("lonely").first.map { Float($0.value) }, 3.25)
        XCTAssertEqual(r.scalars("big_step").first?.step, 1 << 40)
        let img = r.images("samples")
        XCTAssertEqual(img.count, 1)
        XCTAssertEqual(img.first?.step, 5)
        XCTAssertEqual(img.first?.width, 18)
        XCTAssertEqual(img.first?.height, 16)
        XCTAssertEqual(img.first?.pngOK, true)
        XCTAssertEqual(r.images("rgb").first?.width, 3)
        XCTAssertEqual(r.images("rgb").first?.height, 2)
        // More after a flush shows up on the next read.
        w.scalar("loss/d", 9, step: 6)
        w.close()
        r = try InteropSupport.readEvents(dir)
        XCTAssertEqual(r.scalars("loss/d").map { $0.step }, [1, 2, 3, 4, 5, 6])
    }

    /// TrainingSession writes the step scalars, the grid image, and what others add with
    /// logScalars (the distributed layer's dist/* figures).
    func testTrainingSessionEventsReadByTensorBoard() throws {
        try InteropSupport.require(["tensorboard"])
        let dir = try makeTempDir(self)
        let data = blobs(32)
        for (name, config) in [("mlp-bce", tinyConfig(.mlp, .bce)), ("prog-gp", tinyConfig(.dcgan, .wganGP, progressive: true))] {
            let trainer = try GANTrainer(models: GANModels(config: config), dataset: data)
            let session = try TrainingSession(trainer: trainer, folder: RunFolder(path: dir + "/" + name), sampleEvery: 2, checkpointEvery: 0)
            var seen: [StepMetrics] = []
            try session.run { seen.append($0) }
            session.logScalars([("dist/bytes_on_wire", 123_456), ("dist/compression_ratio", 2.5)], step: 3)
            let r = try InteropSupport.readEvents(dir + "/" + name)
            var want: Set<String> = ["loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g", "speed/images_per_sec",
                                     "dist/bytes_on_wire", "dist/compression_ratio", "samples/latent_spread"]
            if config.loss == .wganGP { want.insert("wgan_gp/penalty") }
            if config.progressive { want.formUnion(["progressive/resolution", "progressive/alpha"]) }
            XCTAssertEqual(Set(r.scalarTags), want, name)
            XCTAssertEqual(r.scalars("loss/d").map { $0.step }, [1, 2, 3], name)
            XCTAssertEqual(r.scalars("loss/d").map { Float($0.value) }, seen.map { $0.dLoss }, name)
            XCTAssertEqual(r.scalars("loss/g").map { Float($0.value) }, seen.map { $0.gLoss }, name)
            XCTAssertEqual(r.scalars("d/real").map { Float($0.value) }, seen.map { $0.dReal }, name)
            XCTAssertEqual(r.scalars("d/fake").map { Float($0.value) }, seen.map { $0.dFake }, name)
            XCTAssertEqual(r.scalars("grad_norm/g").map { Float($0.value) }, seen.map { $0.gGradNorm }, name)
            XCTAssertTrue(r.scalars("speed/images_per_sec").allSatisfy { $0.value > 0 }, name)
            XCTAssertEqual(r.scalars("dist/bytes_on_wire").map { $0.value }, [123_456], name)
            XCTAssertEqual(r.scalars("dist/compression_ratio").first?.step, 3, name)
            if config.loss == .wganGP {
                XCTAssertEqual(r.scalars("wgan_gp/penalty").map { Float($0.value) }, seen.map { $0.gradientPenalty }, name)
            }
            if config.progressive {
                XCTAssertEqual(r.scalars("progressive/resolution").map { Int($0.value) }, seen.map { $0.resolution }, name)
                XCTAssertEqual(r.scalars("progressive/alpha").map { Float($0.value) }, seen.map { $0.alpha }, name)
            }
            // The grid at steps 2 and 3 (the end): 8 x 8 cells of (S + 2) pixels, + 2, S the
            // resolution of that step (a progressive run grows).
            let images = r.images("samples")
            XCTAssertEqual(images.map { $0.step }, [2, 3], name)
            for im in images {
                let size = seen[im.step - 1].resolution
                XCTAssertEqual([im.width, im.height], [8 * (size + 2) + 2, 8 * (size + 2) + 2], "\(name) step \(im.step)")
                XCTAssertTrue(im.pngOK, name)
            }
        }
    }

    func tinyConfig(_ model: ModelKind, _ loss: LossKind, progressive: Bool = false) -> GANConfig {
        var c = GANConfig()
        c.model = model
        c.loss = loss
        c.imageSize = model == .mlp ? 28 : 16
        c.ngf = 8; c.ndf = 8; c.latentDim = 12
        c.batchSize = 8; c.steps = 3; c.seed = 2
        c.progressive = progressive
        c.applyLossDefaults(lrGiven: false, betasGiven: false, nCriticGiven: true)
        c.nCritic = 1
        return c
    }

    // MARK: end to end, from the command line

    /// `gan train` writes an event file TensorBoard reads; `gan evaluate` adds eval/* to the run;
    /// `--logdir` moves the file; train-classifier and evaluate show progress and speak JSON.
    func testCommandLineRunsOpenInTensorBoard() throws {
        try InteropSupport.require(["tensorboard"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnistFolder), "\(mnistFolder) is missing: run scripts/setup.sh")
        let work = try makeTempDir(self)
        let t = try gan(["train", "--model", "mlp", "--steps", "3", "--batch", "8", "--data", mnistFolder, "--name", "e2e",
                         "--sample-every", "2", "--checkpoint-every", "0"], cwd: work)
        // Logs on standard error, the progress display on standard output.
        XCTAssertTrue(t.stderr.contains(" info gan.train run runs/e2e: mlp"), t.stderr)
        XCTAssertTrue(t.stderr.contains("TensorBoard events: runs/e2e/events.out.tfevents."), t.stderr)
        XCTAssertTrue(t.stderr.contains("checkpoint written path=runs/e2e/checkpoints/step_00000003.rgan step=3"), t.stderr)
        XCTAssertTrue(t.stdout.contains("train 3/3 (100%)"), t.stdout)
        let files = try FileManager.default.contentsOfDirectory(atPath: work + "/runs/e2e").filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(files.count, 1, "\(files)")
        var r = try InteropSupport.readEvents(work + "/runs/e2e/" + files[0])
        for tag in ["loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g", "speed/images_per_sec"] {
            XCTAssertEqual(r.scalars(tag).map { $0.step }, [1, 2, 3], tag)
            XCTAssertTrue(r.scalars(tag).allSatisfy { $0.value.isFinite }, tag)
        }
        XCTAssertFalse(r.scalarTags.contains("wgan_gp/penalty"))
        // The same values as metrics.jsonl.
        let lines = try String(contentsOfFile: work + "/runs/e2e/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let dLoss = lines.map { (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["d_loss"] as! Double }
        XCTAssertEqual(zip(r.scalars("loss/d"), dLoss).map { abs($0.0.value - $0.1) < 1e-5 }, [true, true, true])
        XCTAssertEqual(r.images("samples").map { $0.step }, [2, 3])
        XCTAssertEqual(r.images("samples").first?.width, 242)
        XCTAssertEqual(r.images("samples").first?.height, 242)

        // A classifier (progress on standard output, or JSON lines), then evaluate.
        let c = try gan(["train-classifier", "--data", mnistFolder, "--epochs", "1", "--max-train", "192", "--out", "clf.safetensors"], cwd: work)
        XCTAssertTrue(c.stdout.contains("classifier 3/3 (100%)"), c.stdout)
        XCTAssertTrue(c.stdout.contains("held-out accuracy"), c.stdout)
        let cj = try gan(["train-classifier", "--data", mnistFolder, "--epochs", "1", "--max-train", "192", "--out", "clf.safetensors", "--json"],
                         cwd: work)
        let objs = cj.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(objs.count, 4, cj.stdout)
        XCTAssertTrue(objs.allSatisfy { $0 != nil }, "every stdout line is JSON:\n\(cj.stdout)")
        XCTAssertEqual(objs.prefix(3).map { $0?["step"] as? Int }, [1, 2, 3])
        XCTAssertNotNil(objs.last??["accuracy"] as? Double, cj.stdout)

        let ev = try gan(["evaluate", "--checkpoint", "runs/e2e/checkpoints/step_00000003.rgan", "--classifier", "clf.safetensors",
                          "--samples", "300", "--json"], cwd: work)
        XCTAssertEqual(ev.stdout.split(separator: "\n").count, 1, "only the JSON object on standard output:\n\(ev.stdout)")
        let result = try JSONSerialization.jsonObject(with: Data(ev.stdout.utf8)) as! [String: Any]
        XCTAssertTrue(ev.stderr.contains("generate+score 300/300 (100%)"), ev.stderr)
        XCTAssertTrue(ev.stderr.contains("real features 600/600 (100%)"), ev.stderr)   // reference and floor set
        r = try InteropSupport.readEvents(work + "/runs/e2e")
        for (tag, key) in [("eval/fid", "fid"), ("eval/classifier_score", "classifier_score"), ("eval/mode_entropy", "mode_entropy")] {
            XCTAssertEqual(r.scalars(tag).map { $0.step }, [3], tag)
            XCTAssertEqual(r.scalars(tag).first.map { Float($0.value) }, (result[key] as? Double).map { Float($0) }, tag)
        }
        XCTAssertEqual(r.scalars("loss/g").count, 3, "the training curves are still there")
        // Without --json the progress display is on standard output.
        let ev2 = try gan(["evaluate", "--checkpoint", "runs/e2e/checkpoints/step_00000003.rgan", "--classifier", "clf.safetensors",
                           "--samples", "50"], cwd: work)
        XCTAssertTrue(ev2.stdout.contains("generate+score 50/50 (100%)"), ev2.stdout)
        XCTAssertTrue(ev2.stdout.contains("FID "), ev2.stdout)

        // --logdir puts the event file elsewhere; --json keeps standard output pure JSON.
        let j = try gan(["train", "--model", "mlp", "--steps", "2", "--batch", "8", "--data", mnistFolder, "--name", "j", "--logdir", "tb/j",
                         "--json", "--sample-every", "0"], cwd: work)
        XCTAssertEqual(j.stdout.split(separator: "\n").count, 2, j.stdout)
        XCTAssertTrue(j.stdout.split(separator: "\n").allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, j.stdout)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: work + "/runs/j").contains { $0.hasPrefix("events.out") })
        r = try InteropSupport.readEvents(work + "/tb/j")
        XCTAssertEqual(r.scalars("loss/d").map { $0.step }, [1, 2])
        XCTAssertEqual(r.images("samples").map { $0.step }, [2])
    }
}
