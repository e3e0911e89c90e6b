import Collectives
import Foundation
import GAN
import TestSupport
import XCTest
@testable import Tensors

/// Exact mode (`GANConfig.microBatches`): the same bits on any number of ranks.
extension EquivalenceTests {
    /// Every parameter, buffer, optimizer state, first-step gradient and output of a world of
    /// 2, 3 (micro-batches split 2, 1, 1) and 4 ranks equals the single process's, bit for bit:
    /// MLP (BatchNorm1d), DCGAN (BatchNorm2d in G and D), WGAN-GP (double backward, two critic
    /// steps), StyleGAN (style mixing, minibatch stddev) and progressive growing (through a
    /// fade-in), over a ring with the shuffle-zstd codec.
    func testExactModeIsBitIdenticalOnAnyNumberOfRanks() throws {
        var mlp = config(.mlp, .bce); mlp.steps = 4
        var dcgan = config(.dcgan, .bce); dcgan.steps = 4
        var gp = config(.dcgan, .wganGP); gp.steps = 3
        var sg = config(.stylegan, .hinge); sg.steps = 3; sg.mappingLayers = 2; sg.wDim = 16; sg.styleMixingProb = 0.9
        var prog = config(.dcgan, .bce); prog.progressive = true; prog.steps = 6
        for var c in [mlp, dcgan, gp, sg, prog] {
            c.microBatches = 4
            let single = try train(c, world: 1)
            for n in [2, 3, 4] {
                let dist = try train(c, world: n)
                XCTAssertEqual(single.map { $0.0 }, dist.map { $0.0 })
                for (a, b) in zip(single, dist) {
                    XCTAssertTrue(a.1.elementsEqual(b.1) { $0.bitPattern == $1.bitPattern },
                                  "\(c.model.rawValue)/\(c.loss.rawValue)\(c.progressive ? " progressive" : ""), exact mode, world \(n): \(a.0) differs from one process")
                }
            }
        }
    }

    /// Exact mode fixes how the engine cuts its loops (`ThreadPool.fixSplits`, the config's
    /// `--exact-splits`), so one process on 1, 2 or 3 engine threads computes the same bits (the
    /// DCGAN's convolution weight gradients and reductions are cut by thread otherwise): with
    /// the default cut (1) and with 3 parts (more parts than threads, and fewer).
    func testExactModeIsBitIdenticalOnAnyThreadCount() throws {
        var c = config(.dcgan, .bce)
        c.imageSize = 32; c.ngf = 16; c.ndf = 16; c.batchSize = 32; c.steps = 2; c.microBatches = 2
        let saved = ThreadPool.shared.threads
        defer { ThreadPool.setThreads(saved) }
        for splits in [nil, 3] {
            c.exactSplitsGiven = splits
            var results: [[(String, [Float])]] = []
            for t in [1, 2, 3] {
                ThreadPool.setThreads(t)
                results.append(try train(c, world: 1))
            }
            for (t, r) in zip([2, 3], results.dropFirst()) {
                for (a, b) in zip(results[0], r) {
                    XCTAssertTrue(a.1.elementsEqual(b.1) { $0.bitPattern == $1.bitPattern },
                                  "splits \(splits ?? 1), \(t) threads: \(a.0) differs from 1 thread")
                }
            }
        }
    }

    /// Every codec carries exact mode's sums unchanged: the lossless ones compress the integers,
    /// and the lossy bf16 one is not applied to them (they travel uncompressed on the ring's
    /// exact lane), so a world of 3 equals one process with each.
    func testExactModeIsBitIdenticalWithEveryCodec() throws {
        var c = config(.dcgan, .bce)
        c.steps = 2; c.microBatches = 4
        let single = try train(c, world: 1)
        for codec in GradientCodec.allCases {
            let dist = try train(c, world: 3, codec: codec)
            for (a, b) in zip(single, dist) {
                XCTAssertTrue(a.1.elementsEqual(b.1) { $0.bitPattern == $1.bitPattern }, "codec \(codec.rawValue): \(a.0) differs from one process")
            }
        }
    }
}
