import DataParallel
import NN
import Tensors

/// How a data-parallel step is scheduled around the reference step of `GANTrainer`: the numbers
/// do not depend on any of it (EquivalenceTests), only when the wire and the cores work.
///
/// - Gradient buckets: a bucket's all-reduce starts as soon as backward has finished every
///   gradient in it, while backward computes the layers before (as DDP's buckets).
/// - The overlapped real pass: once a step's generator gradients are on the wire, the step can
///   compute the next step's real-image pass through D (forward, loss part and backward; D's
///   parameters are final by then), and the next step then computes only the generated images'
///   part (`overlapsNextRealPass`).
public final class DataParallelSchedule {
    /// Floats per gradient bucket (default 1M floats, 4 MB); 0 sums the whole buffer after
    /// backward. gan-worker sets it from `RINGGAN_BUCKET_MB`.
    public var bucketFloats = 1 << 20
    /// Asked with a step's number once its generator gradients are on the wire: whether that step
    /// computes the next step's real-image pass. The numbers are those of computing it in the
    /// next step (the same D forwards in the same order; the real part's gradients added to the
    /// generated part's in the other order, which IEEE addition does not see), but D's
    /// batch-norm running statistics (and a spectral norm's vectors) move one pass early: a
    /// worker answers true only for a step after which nothing reads D's state (no checkpoint)
    /// and another step follows, and every rank must answer alike. nil: never. Applies to losses
    /// with `discriminatorParts`, without a gradient penalty or growth.
    public var overlapsNextRealPass: ((_ step: Int) -> Bool)?
    /// Real-image passes computed under the step before's generator all-reduce so far.
    public internal(set) var overlappedRealPasses = 0

    public init() {}

    var bucketPlans: [ObjectIdentifier: GradientBuckets] = [:]
    /// The next step's real-image pass, computed early.
    struct RealPass { let step: Int; let positions: [Int]; let realOut: Tensor; let realLoss: Tensor; let grads: [Float] }
    var nextRealPass: RealPass?
    /// Whether D's forward uses each of its parameters once (a spectral norm uses its weight
    /// twice): then the real and generated parts' gradients added whole are the bits of one
    /// backward through both (`leavesUsedOnce`). Found from the first D step's graph; the same
    /// on every rank.
    var dParametersUsedOnce: Bool?

    /// The early real pass computed for iteration 0 of `step`, taken (nil when there is none).
    func takeEarlyRealPass(step: Int, iteration: Int) -> RealPass? {
        guard iteration == 0 else { return nil }
        defer { nextRealPass = nil }
        return nextRealPass?.step == step ? nextRealPass : nil
    }

    func forgetEarlyRealPass() { nextRealPass = nil }

    /// Looks once, in a data-parallel run, at whether D's forward used each parameter once.
    func noteParameterUse(_ realOut: Tensor, dataParallel: Bool) {
        if dParametersUsedOnce == nil && dataParallel { dParametersUsedOnce = leavesUsedOnce(realOut) }
    }

    func buckets(_ group: ParameterGroup) -> GradientBuckets {
        let key = ObjectIdentifier(group)
        if let plan = bucketPlans[key] { return plan }
        let plan = GradientBuckets(group, bucketFloats: bucketFloats)
        bucketPlans[key] = plan
        return plan
    }
}

extension GANTrainer {
    /// In a data-parallel run each rank differentiates its shard's mean loss times the shard's
    /// share of the global batch, so the sum over ranks is the global batch's mean loss, also when
    /// shards differ in size and through SyncBatchNorm (whose statistics' gradients are summed
    /// over ranks inside backward).
    func scaled(_ loss: Tensor, _ shardSize: Int) throws -> Tensor {
        guard let r = reducer else { return loss }
        try r.checkFailure()
        return loss * (Float(shardSize) / Float(config.batchSize))
    }

    /// Backward of `loss`, then this rank's gradients of `group` summed over the ranks: bucket by
    /// bucket during backward when there is a reducer and buckets are on. `adding` (as long as
    /// the group) is added to each range of the gradients before it is summed; `meanwhile` runs
    /// after backward, while the last of the sums are still on the wire.
    func backward(_ loss: Tensor, reducing group: ParameterGroup, adding extra: [Float]? = nil,
                  meanwhile: (() throws -> Void)? = nil) throws {
        guard let r = reducer else { loss.backward(); return }
        let buffer = group.gradBuffer
        func add(_ range: Range<Int>) {
            guard let extra else { return }
            extra.withUnsafeBufferPointer { e in for i in range { buffer[i] += e[i] } }
        }
        try r.checkFailure()
        guard schedule.bucketFloats > 0 || meanwhile != nil || extra != nil else {
            loss.backward()
            try r.allReduceGradients(buffer)
            return
        }
        if schedule.bucketFloats > 0 {
            let plan = schedule.buckets(group)
            plan.begin()
            loss.backward(leafReady: { leaf in
                if let range = plan.done(leaf) { add(range); r.startReducing(buffer, range: range) }
            })
            // Gradients backward did not reach (a layer unused at this resolution) are zeros,
            // summed like the rest, in an order every rank shares.
            for range in plan.remaining() { add(range); r.startReducing(buffer, range: range) }
        } else {
            loss.backward()
            add(0..<buffer.count)
            r.startReducing(buffer, range: 0..<buffer.count)
        }
        do { try meanwhile?() } catch { try? r.finishReducing(); throw error }
        try r.finishReducing()
    }

    /// Whether this step can compute the next step's real pass (the schedule's answer and what
    /// the pass needs).
    var canOverlapNextRealPass: Bool {
        reducer != nil && worldSize > 1 && models.loss.discriminatorParts != nil && schedule.dParametersUsedOnce == true
            && !models.loss.gradientPenalty && models.growthSchedule == nil && schedule.overlapsNextRealPass?(step + 1) == true
    }

    /// The next step's real-image pass. Its gradients of D are kept aside (D's buffer is left
    /// with this step's): the next step adds them to the generated part's, whole, as one
    /// backward through both would (a contribution added into a buffer that already holds
    /// another would be added in GEMM blocks, a different rounding).
    func computeNextRealPass() throws {
        guard let parts = models.loss.discriminatorParts else { return }
        let next = step + 1
        for t in models.dParams.tensors { t.requiresGrad = true }
        // No growth here (canOverlapNextRealPass), so the resolution is the configured one.
        let (real, positions) = try nextReal(resolution: config.imageSize)
        let buffer = models.dParams.gradBuffer
        let kept = Array(buffer)
        models.dParams.zeroGrad()
        let realOut = models.discriminator.score(real)
        let realLoss = parts.real(realOut, realTargets(positions, iteration: 0, step: next))
        try scaled(realLoss, positions.count).backward()
        let grads = Array(buffer)
        kept.withUnsafeBufferPointer { k in _ = buffer.update(fromContentsOf: k) }
        schedule.nextRealPass = DataParallelSchedule.RealPass(step: next, positions: positions, realOut: realOut,
                                                              realLoss: realLoss, grads: grads)
        schedule.overlappedRealPasses += 1
    }

    /// The discriminator step whose real part the step before computed (`computeNextRealPass`):
    /// only the generated images' part is computed here, and the real part's gradients are added
    /// to it before the sum over the ranks.
    func discriminatorStep(completing pass: DataParallelSchedule.RealPass, iteration it: Int,
                           _ metrics: inout StepMetrics) throws -> Tensor {
        guard let parts = models.loss.discriminatorParts else { preconditionFailure("an early real pass needs a loss in parts") }
        let fake = fakeImages(pass.positions, iteration: it)
        models.dParams.zeroGrad()
        let fakeOut = models.discriminator.score(fake.detach())
        let fakeLoss = parts.fake(fakeOut)
        let dLoss = pass.realLoss + fakeLoss
        try backward(scaled(fakeLoss, pass.positions.count), reducing: models.dParams, adding: pass.grads)
        optimizeDiscriminator(dLoss, real: pass.realOut, fake: fakeOut, &metrics)
        return fake
    }
}

/// A parameter group's gradient buffer cut into buckets of whole tensors, from the end of the
/// buffer (the last layers, whose gradients backward finishes first) to its start, each at least
/// `bucketFloats` long (the first one included, unlike DDP's small first bucket: these models are
/// small). It counts, during one backward pass, which tensors of each bucket are complete.
final class GradientBuckets {
    let ranges: [Range<Int>]
    private let bucketOf: [ObjectIdentifier: Int]
    private let sizes: [Int]
    private var left: [Int] = []
    private var started: [Bool] = []

    init(_ group: ParameterGroup, bucketFloats: Int) {
        var ranges: [Range<Int>] = [], sizes: [Int] = [], bucketOf: [ObjectIdentifier: Int] = [:]
        var hi = group.count, lo = group.count, members = 0
        for i in group.tensors.indices.reversed() {
            lo = group.offsets[i]
            bucketOf[ObjectIdentifier(group.tensors[i])] = ranges.count
            members += 1
            if hi - lo >= bucketFloats || i == 0 {
                ranges.append(lo..<hi)
                sizes.append(members)
                hi = lo
                members = 0
            }
        }
        self.ranges = ranges
        self.sizes = sizes
        self.bucketOf = bucketOf
    }

    func begin() {
        left = sizes
        started = Array(repeating: false, count: ranges.count)
    }

    /// Marks `leaf` complete; returns its bucket's range when that was the bucket's last tensor.
    func done(_ leaf: Tensor) -> Range<Int>? {
        guard let b = bucketOf[ObjectIdentifier(leaf)], !started[b] else { return nil }
        left[b] -= 1
        guard left[b] == 0 else { return nil }
        started[b] = true
        return ranges[b]
    }

    /// The buckets not started yet (some of their tensors got no gradient), in bucket order.
    func remaining() -> [Range<Int>] {
        var out: [Range<Int>] = []
        for b in ranges.indices where !started[b] {
            started[b] = true
            out.append(ranges[b])
        }
        return out
    }
}
