import Datasets
import Tensors

/// Where a trainer's real images come from: this rank's shard of each global batch, in order.
public protocol BatchSource: AnyObject {
    /// This rank's shard of the next global batch ([B_r, C, S, S] in [-1, 1], S the config's image
    /// size) and the shard's positions within the global batch (they key per-sample randomness).
    func nextShard() throws -> (images: Tensor, positions: [Int])
    /// The data position after the batches handed out so far (saved in checkpoints).
    var samplerState: EpochSampler { get }
    /// Continues from a saved position.
    func restore(_ sampler: EpochSampler)
}

/// A config that cannot train on a data set (its batch does not fit, or its images have other
/// channels): the flags' fault, said before any work starts.
public struct TrainingDataError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

extension GANConfig {
    /// Whether this config can train on `dataset`: a global batch of 1...count images (batches
    /// never repeat an image within an epoch) and images with `nc` channels (the data sets are
    /// gray: one channel). Throws a `TrainingDataError` naming the flag, its value and what fits.
    public func checkFits(_ dataset: ImageDataset) throws {
        guard batchSize >= 1 && batchSize <= dataset.count else {
            throw TrainingDataError("--batch \(batchSize) does not fit the data: it must be in 1...\(dataset.count) (\(dataset.source) has \(dataset.count) images)")
        }
        guard nc == 1 else {
            throw TrainingDataError("--nc \(nc) does not fit the data: \(dataset.source) has gray images (1 channel), so training needs --nc 1 (other channel counts are for imported generators)")
        }
        do { try EpochSampler.check(count: dataset.count, batchSize: batchSize) } catch { throw TrainingDataError("\(error)") }
    }
}

/// Batches drawn from a dataset in this process (single-process training, and the coordinator).
public final class LocalBatches: BatchSource {
    public let dataset: ImageDataset
    public private(set) var sampler: EpochSampler
    public let imageSize: Int
    public let rank: Int, worldSize: Int
    /// Exact mode's micro-batches: shards are whole micro-batches.
    public let microBatches: Int?

    /// Throws a `TrainingDataError` when `config` cannot train on `dataset` (`checkFits`).
    public init(dataset: ImageDataset, config: GANConfig, rank: Int = 0, worldSize: Int = 1) throws {
        try config.checkFits(dataset)
        self.dataset = dataset
        imageSize = config.imageSize
        self.rank = rank
        self.worldSize = worldSize
        microBatches = config.microBatches
        sampler = try EpochSampler(count: dataset.count, batchSize: config.batchSize, seed: config.seed)
    }

    /// The next global batch's dataset indices (all ranks' shards).
    public func nextGlobal() -> [Int] { sampler.next() }

    public func nextShard() throws -> (images: Tensor, positions: [Int]) {
        let global = sampler.next()
        let mine = EpochSampler.shard(global.count, rank: rank, worldSize: worldSize, microBatches: microBatches)
        return (batch(dataset, indices: Array(global[mine]), size: imageSize), Array(mine))
    }

    public var samplerState: EpochSampler { sampler }
    public func restore(_ s: EpochSampler) { sampler = s }
}
