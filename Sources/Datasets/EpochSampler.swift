import Tensors

/// Batches of data set indices, epoch by epoch: epoch `e` visits `RandomGenerator(seed: seed,
/// stream: e).permutation(count)` in consecutive batches of `batchSize`, dropping the last
/// incomplete batch (PyTorch's `DataLoader(shuffle=True, drop_last=True)`), so batches never
/// straddle epochs. The state is `epoch` and `position`: encode it in a checkpoint and a decoded
/// sampler continues with exactly the batches the original would have given. The epoch's
/// permutation is made when its first batch is taken, not when the sampler is made or decoded
/// (reading a checkpoint, or a sampler in a batch header, costs no shuffle of `count` items).
public struct EpochSampler: Sendable, Codable, Equatable {
    /// The most items a sampler (and so a data set) may have: 2^24 (the permutation takes 128
    /// MB; MNIST has 60,000). A decoded sampler beyond it is refused rather than allocated.
    public static let maxCount = 1 << 24

    public let count: Int
    public let batchSize: Int
    public let seed: UInt64
    /// The epoch the next batch comes from, unless the current one is used up (0 at the start).
    public private(set) var epoch: Int
    /// Position of the next batch in the current epoch's permutation.
    public private(set) var position: Int
    /// The current epoch's permutation, once a batch of it has been taken (a function of
    /// count, seed and epoch, so it takes no part in equality).
    private var order: [Int]?

    /// A sampler at the start of epoch 0. Throws an `EpochSamplerError` when the batch does not fit
    /// the data set (a batch larger than the data set, or not positive): sizes a user can give.
    public init(count: Int, batchSize: Int, seed: UInt64) throws {
        try self.init(count: count, batchSize: batchSize, seed: seed, epoch: 0, position: 0)
    }

    /// A sampler at a given point (for instance one read from a checkpoint); throws an
    /// `EpochSamplerError` for a batch that does not fit the data set or an impossible position.
    public init(count: Int, batchSize: Int, seed: UInt64, epoch: Int, position: Int) throws {
        try EpochSampler.check(count: count, batchSize: batchSize)
        guard epoch >= 0 && position >= 0 && position <= count else {
            throw EpochSamplerError("EpochSampler: bad state epoch \(epoch), position \(position) for \(count) items")
        }
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.epoch = epoch
        self.position = position
        order = nil
    }

    /// Whether batches of `batchSize` can be drawn from `count` items without repeats within an
    /// epoch (1...count, at most `maxCount` items): throws an `EpochSamplerError` saying why not.
    public static func check(count: Int, batchSize: Int) throws {
        guard count >= 1 else { throw EpochSamplerError("the data set is empty: there is nothing to draw batches from") }
        guard count <= maxCount else { throw EpochSamplerError("the data set has \(count) items, more than the \(maxCount) a sampler takes") }
        guard batchSize >= 1 && batchSize <= count else {
            throw EpochSamplerError("a batch of \(batchSize) does not fit the data set: the batch size must be in 1...\(count) (the data set has \(count) items)")
        }
    }

    /// Full batches per epoch.
    public var batchesPerEpoch: Int { count / batchSize }

    /// The next batch: `batchSize` distinct indices in 0..<count.
    public mutating func next() -> [Int] {
        if position + batchSize > count {
            epoch += 1
            position = 0
            order = nil
        }
        let o = order ?? EpochSampler.permutation(count: count, seed: seed, epoch: epoch)
        order = o
        defer { position += batchSize }
        return Array(o[position..<(position + batchSize)])
    }

    public static func == (a: EpochSampler, b: EpochSampler) -> Bool {
        a.count == b.count && a.batchSize == b.batchSize && a.seed == b.seed && a.epoch == b.epoch && a.position == b.position
    }

    static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = RandomGenerator(seed: seed, stream: UInt64(epoch))
        return rng.permutation(count)
    }

    private enum CodingKeys: String, CodingKey { case count, batchSize, seed, epoch, position }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let count = try c.decode(Int.self, forKey: .count)
        let batchSize = try c.decode(Int.self, forKey: .batchSize)
        let epoch = try c.decode(Int.self, forKey: .epoch)
        let position = try c.decode(Int.self, forKey: .position)
        guard batchSize > 0, count >= batchSize, count <= EpochSampler.maxCount, epoch >= 0, position >= 0, position <= count else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "EpochSampler: inconsistent state (count at most \(EpochSampler.maxCount)): count \(count), batchSize \(batchSize), epoch \(epoch), position \(position)"))
        }
        try self.init(count: count, batchSize: batchSize, seed: try c.decode(UInt64.self, forKey: .seed),
                      epoch: epoch, position: position)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(seed, forKey: .seed)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(position, forKey: .position)
    }
}

/// A batch size or sampler state that does not fit the data set.
public struct EpochSamplerError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ d: String) { description = d }
}

extension EpochSampler {
    /// Rank `rank`'s slice of a global batch of `b` samples in a world of `n`: contiguous, sizes
    /// differing by at most one when `b` does not divide by `n` (the first `b % n` ranks take one
    /// more). The trainer's shard of each batch, and the coordinator's.
    public static func shard(_ b: Int, rank: Int, worldSize n: Int) -> Range<Int> {
        let base = b / n, extra = b % n
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Rank `rank`'s slice of a global batch of `b` samples cut into `microBatches` equal
    /// micro-batches (exact mode; `b` a multiple of it): whole micro-batches, contiguous, the
    /// counts per rank differing by at most one (`shard` of the micro-batches). nil: `shard`.
    public static func shard(_ b: Int, rank: Int, worldSize n: Int, microBatches: Int?) -> Range<Int> {
        guard let m = microBatches, m >= 1, b % m == 0 else { return shard(b, rank: rank, worldSize: n) }
        let mine = shard(m, rank: rank, worldSize: n), size = b / m
        return (mine.lowerBound * size)..<(mine.upperBound * size)
    }
}
