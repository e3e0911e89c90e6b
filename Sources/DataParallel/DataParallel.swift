/// What data-parallel training needs from whatever joins the ranks, and nothing more: the trainer
/// (GAN) and BatchNorm (NN) call these; the ring all-reduce (Collectives) provides them. This
/// target sits below both sides, so the trainer never imports sockets and the ring never imports
/// a model. A single process needs neither.

/// Sums a flat gradient buffer over the ranks of a data-parallel run. Each rank has scaled its
/// gradients by its share of the global batch first, so the sum is the gradient of the global
/// batch's mean loss even when the shards differ in size.
public protocol GradientReducer: AnyObject {
    func allReduceGradients(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Starts summing `range` of `buffer` in the background and returns at once, so the trainer
    /// can go on with backward meanwhile (DDP's buckets). Every rank starts the same ranges in
    /// the same order; the sums are bit for bit those of `allReduceGradients` on the whole buffer.
    func startReducing(_ buffer: UnsafeMutableBufferPointer<Float>, range: Range<Int>)
    /// Waits for every range started; throws the first failure.
    func finishReducing() throws
    /// Throws the first failure of a collective that could not throw where it ran (SyncBatchNorm
    /// statistics inside a forward pass).
    func checkFailure() throws

    // Exact mode (`GANConfig.microBatches`): collectives whose results do not depend on the
    // order in which the ranks' values meet.

    /// Every rank's `mine` (the same length on every rank), concatenated in rank order, bit for
    /// bit. Every rank calls it in the same order.
    func allGather(_ mine: [Float]) throws -> [Float]
    /// Sums `buffer` over the ranks in wrapping two's-complement arithmetic (associative, so
    /// the sums are the same whatever the order of additions), after every gradient range
    /// started before.
    func allReduceExact(_ buffer: UnsafeMutableBufferPointer<Int64>) throws
}

/// Sums per-channel statistics over every rank of a data-parallel run (SyncBatchNorm).
public protocol BatchNormSynchronizer: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Returns the element-wise sum of `values` over all ranks, exactly (no lossy codec). Every
    /// rank calls it in the same order with the same length.
    func allReduceSum(_ values: [Float]) -> [Float]
    /// Every rank's `mine` (the same length on every rank), concatenated in rank order, bit for
    /// bit (SyncBatchNorm's per-rank count, mean and squared deviations). Every rank calls it in
    /// the same order. A failure is recorded and surfaced by the reducer after the step; the
    /// other ranks' slots are then zeros.
    func allGatherStatistics(_ mine: [Float]) -> [Float]
}

extension BatchNormSynchronizer {
    /// The gather as a sum of vectors that are zero outside each rank's own slot: N times the
    /// bytes of a gather, for a synchronizer that has no gather of its own.
    public func allGatherStatistics(_ mine: [Float]) -> [Float] {
        allReduceSum(ownSlot(mine))
    }

    /// `mine` in this rank's slot of a vector of worldSize slots, zeros elsewhere.
    public func ownSlot(_ mine: [Float]) -> [Float] {
        let m = mine.count
        var padded = [Float](repeating: 0, count: worldSize * m)
        for i in 0..<m { padded[rank * m + i] = mine[i] }
        return padded
    }
}
