import CAllocCounter
import GAN
import TestSupport
import XCTest
@testable import Tensors

/// A whole training step takes its large buffers from the block cache, not from the system (the
/// optimizers' own steps: NNTests' `AllocationTests`).
final class TrainingAllocationTests: XCTestCase {
    func testTrainingStepsReuseLargeBlocks() throws {
        var c = GANConfig()
        c.model = .dcgan; c.imageSize = 16; c.ngf = 16; c.ndf = 16; c.latentDim = 16; c.batchSize = 32; c.steps = 10
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(96))
        for _ in 0..<3 { try trainer.trainStep() }   // warm-up fills the block cache
        ringgan_large_allocs_reset(size_t(BlockCache.minBytes))
        for _ in 0..<5 { try trainer.trainStep() }
        let n = ringgan_large_allocs_since_reset(0)
        XCTAssertEqual(n, 0, "\(n) fresh blocks of 256 KB or more in 5 steady-state training steps")
    }

    /// `releaseCachedTensorMemory` (called before a checkpoint) hands every cached block back:
    /// the cache is empty after it, the next step takes its blocks from the system, and the step
    /// after that from the cache again.
    func testReleasingTheCacheHandsItsBlocksBack() throws {
        var c = GANConfig()
        c.model = .dcgan; c.imageSize = 16; c.ngf = 16; c.ndf = 16; c.latentDim = 16; c.batchSize = 32; c.steps = 10
        let trainer = try GANTrainer(models: GANModels(config: c), dataset: blobs(96))
        for _ in 0..<3 { try trainer.trainStep() }
        let held = cachedTensorMemory
        XCTAssertGreaterThan(held, 0, "a DCGAN step leaves its blocks in the cache")
        XCTAssertEqual(releaseCachedTensorMemory(), held)
        XCTAssertEqual(cachedTensorMemory, 0)
        ringgan_large_allocs_reset(size_t(BlockCache.minBytes))
        try trainer.trainStep()
        XCTAssertGreaterThan(ringgan_large_allocs_since_reset(0), 0, "the step after a release allocates its blocks anew")
        XCTAssertGreaterThan(cachedTensorMemory, 0, "its blocks are back in the cache")
        ringgan_large_allocs_reset(size_t(BlockCache.minBytes))
        try trainer.trainStep()
        XCTAssertEqual(ringgan_large_allocs_since_reset(0), 0, "and the one after takes them from the cache again")
    }
}
