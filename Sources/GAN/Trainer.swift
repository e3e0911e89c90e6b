import Foundation
import Datasets
import DataParallel
import NN
import Tensors

/// A generator and discriminator with their optimizers, built from a config.
public final class GANModels {
    public let config: GANConfig
    public let generator: GeneratorModel
    public let discriminator: DiscriminatorModel
    public let gParams: ParameterGroup
    public let dParams: ParameterGroup
    public let optG: Optimizer
    public let optD: Optimizer
    /// The config's loss.
    public let loss: GANLoss
    /// With `--g-ema DECAY`: an exponential moving average of G's weights (BatchNorm buffers
    /// copied from G), which sampling, evaluation, grids and export use.
    public let emaGenerator: GeneratorModel?

    public init(config: GANConfig) {
        self.config = config
        var gRng = RandomGenerator(seed: config.seed, stream: 0x6E)   // 'G'
        var dRng = RandomGenerator(seed: config.seed, stream: 0x64)   // 'D'
        let c = config
        (generator, discriminator) = GANModels.build(c, gRng: &gRng, dRng: &dRng)
        if c.gEMA != nil {
            // The same init as G (same seed and stream): the average starts at G's weights.
            var eRng = RandomGenerator(seed: config.seed, stream: 0x6E)
            var unused = RandomGenerator(seed: config.seed, stream: 0x64)
            emaGenerator = GANModels.build(c, gRng: &eRng, dRng: &unused).0
            emaGenerator?.eval()
        } else {
            emaGenerator = nil
        }
        gParams = ParameterGroup(generator)
        dParams = ParameterGroup(discriminator)
        loss = c.loss.loss
        optG = loss.makeOptimizer(gParams, lr: c.lrG, config: c)
        optD = loss.makeOptimizer(dParams, lr: c.lrD, config: c)
        // The layers' own weight tensors (now copied into the flat buffers) and the default-init
        // values dcganInit replaced sit in the block cache; hand them back (activations of the
        // same size classes reuse most of them anyway: DCGAN 64x64's peak fell 490 -> 480 MB).
        releaseCachedTensorMemory()
    }

    static func build(_ c: GANConfig, gRng: inout RandomGenerator, dRng: inout RandomGenerator)
        -> (GeneratorModel, DiscriminatorModel)
    {
        switch (c.model, c.progressive) {
        case (.mlp, _):
            return (MLPGenerator(latentDim: c.latentDim, imageShape: [c.nc, 28, 28], rng: &gRng),
                    MLPDiscriminator(imageShape: [c.nc, 28, 28], rng: &dRng))
        case (.dcgan, true), (.sndcgan, true):
            return (ProgressiveGenerator(latentDim: c.latentDim, ngf: c.ngf, nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    ProgressiveDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, spectral: c.model == .sndcgan, rng: &dRng))
        case (.dcgan, false), (.sndcgan, false):
            return (DCGANGenerator(latentDim: c.latentDim, ngf: c.ngf, nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    DCGANDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, spectral: c.model == .sndcgan, rng: &dRng))
        case (.stylegan, _):
            return (StyleGenerator(latentDim: c.latentDim, wDim: c.wDim, mappingLayers: c.mappingLayers, ngf: c.ngf,
                                   nc: c.nc, imageSize: c.imageSize, rng: &gRng),
                    StyleDiscriminator(nc: c.nc, ndf: c.ndf, imageSize: c.imageSize, rng: &dRng))
        }
    }

    /// Sets the growth state of progressive models (no-op otherwise).
    public func setGrowth(_ s: GrowthState) {
        (generator as? ProgressiveGenerator)?.growth = s
        (emaGenerator as? ProgressiveGenerator)?.growth = s
        (discriminator as? ProgressiveDiscriminator)?.growth = s
    }

    public var growthSchedule: GrowthSchedule? {
        guard let g = generator as? ProgressiveGenerator else { return nil }
        return GrowthSchedule(totalSteps: config.steps, maxLevel: g.maxLevel)
    }

    /// False: sampling uses G itself even where the EMA of its weights is kept (the sampling
    /// commands' --raw-generator).
    public var samplesFromAverage = true

    /// The generator samples come from: the EMA of G's weights when enabled, else G.
    public var samplingGenerator: GeneratorModel { samplesFromAverage ? (emaGenerator ?? generator) : generator }

    /// Images from latents in eval mode (running BN statistics), without recording.
    public func sample(_ z: Tensor) -> Tensor {
        if samplesFromAverage, let e = emaGenerator {
            e.eval()
            return withNoGrad { e.generate(z) }
        }
        generator.eval()
        defer { generator.train() }
        return withNoGrad { generator.generate(z) }
    }
}

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

/// One process's part of training: the same code runs a single process (world of one) and
/// each rank of a data-parallel run.
public final class GANTrainer {
    public let models: GANModels
    public var config: GANConfig { models.config }
    public let source: BatchSource
    public var sampler: EpochSampler { source.samplerState }
    public internal(set) var step = 0
    public let rank: Int
    public let worldSize: Int
    public var reducer: GradientReducer?
    /// Whether the next steps measure the gradients' norms (a pass over both flat gradient
    /// buffers). The session turns it on only for the steps whose metrics it logs.
    public var measuresGradNorms = true

    public init(models: GANModels, source: BatchSource, rank: Int = 0, worldSize: Int = 1) {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize)
        // Exact mode cuts every loop of the engine into a fixed number of parts, so that its
        // bits do not depend on this process's thread count (`ThreadPool.fixSplits`).
        ThreadPool.fixSplits(models.config.microBatches == nil ? nil : models.config.exactSplits)
        self.models = models
        self.source = source
        self.rank = rank
        self.worldSize = worldSize
    }

    /// A single process (or one rank) reading `dataset` itself; throws a `TrainingDataError` when
    /// the config cannot train on it (`GANConfig.checkFits`).
    public convenience init(models: GANModels, dataset: ImageDataset, rank: Int = 0, worldSize: Int = 1) throws {
        self.init(models: models, source: try LocalBatches(dataset: dataset, config: models.config, rank: rank, worldSize: worldSize),
                  rank: rank, worldSize: worldSize)
    }

    /// Restores the position of a resumed run.
    public func restore(step: Int, sampler: EpochSampler) {
        self.step = step
        source.restore(sampler)
        nextRealPass = nil
    }

    /// Real images of this rank's shard of the next global batch, at `resolution`.
    func nextReal(resolution: Int) throws -> (Tensor, [Int]) {
        var (x, positions) = try source.nextShard()
        var r = x.shape[2]
        while r > resolution { x = x.avgPool(2); r /= 2 }
        return (x, positions)
    }

    /// The real targets (used by the losses with `softRealLabels`) of the step after `step`
    /// completed steps (this one unless given).
    func realTargets(_ positions: [Int], iteration: Int, step: Int? = nil) -> Tensor {
        if config.noisyLabels {
            return perSampleUniform(seed: config.seed, .labelNoise, step: step ?? self.step, iteration: iteration, indices: positions,
                                    lo: 0.7, hi: 1.0, shape: [positions.count, 1])
        }
        return Tensor.full([positions.count, 1], config.labelSmoothing ?? 1)
    }

    func generate(_ z: Tensor, positions: [Int], iteration: Int) -> Tensor {
        let g = models.generator
        if let sg = g as? StyleGenerator, config.styleMixingProb > 0 {
            // Style-mixing regularisation: for the whole step, with probability p, a random
            // crossover layer takes the rest of the styles from a second latent.
            var r = sampleGenerator(seed: config.seed, .styleMix, step: step, iteration: iteration)
            if r.uniform() < config.styleMixingProb {
                let crossover = 1 + r.int(below: sg.numLayers - 1)
                let z2 = latents(seed: config.seed, .latent2, step: step, iteration: iteration, indices: positions, dim: config.latentDim)
                return sg.mix(z, z2, crossover: crossover)
            }
        }
        return g.generate(z)
    }

    /// In a data-parallel run each rank differentiates its shard's mean loss times the shard's
    /// share of the global batch, so the sum over ranks is the global batch's mean loss, also when
    /// shards differ in size and through SyncBatchNorm (whose statistics' gradients are summed
    /// over ranks inside backward).
    func scaled(_ loss: Tensor, _ shardSize: Int) throws -> Tensor {
        guard let r = reducer else { return loss }
        try r.checkFailure()
        return loss * (Float(shardSize) / Float(config.batchSize))
    }

    /// Sums this rank's gradients over the ranks.
    func reduce(_ group: ParameterGroup) throws {
        guard let r = reducer else { return }
        try r.checkFailure()
        try r.allReduceGradients(group.gradBuffer)
    }

    /// Floats per gradient bucket: a bucket's all-reduce starts as soon as backward has finished
    /// every gradient in it, while backward computes the layers before (as DDP's buckets). 0
    /// sums the whole buffer after backward. Default 1M floats (4 MB); `RINGGAN_BUCKET_MB`
    /// overrides it (0 turns the overlap off). The numbers do not depend on it (`Ring.Span`).
    public var bucketFloats: Int = {
        if let s = ProcessInfo.processInfo.environment["RINGGAN_BUCKET_MB"], let mb = Double(s), mb >= 0 {
            return Int(mb * 262_144)
        }
        return 1 << 20
    }()
    private var bucketPlans: [ObjectIdentifier: GradientBuckets] = [:]
    /// Exact mode's kept gradient terms per parameter group (`exactBuffers`).
    var exactBuffersByGroup: [ObjectIdentifier: ExactBuffers] = [:]
    /// Exact mode's BatchNorm layers (`keptBatchNorms`).
    var exactNorms: [BatchNorm]?

    /// Backward of `loss`, then this rank's gradients of `group` summed over the ranks: bucket by
    /// bucket during backward when there is a reducer and `bucketFloats` > 0. `adding` (as long
    /// as the group) is added to each range of the gradients before it is summed; `meanwhile`
    /// runs after backward, while the last of the sums are still on the wire.
    func backward(_ loss: Tensor, reducing group: ParameterGroup, adding extra: [Float]? = nil,
                  meanwhile: (() throws -> Void)? = nil) throws {
        let buffer = group.gradBuffer
        func add(_ range: Range<Int>) {
            guard let extra else { return }
            extra.withUnsafeBufferPointer { e in for i in range { buffer[i] += e[i] } }
        }
        guard let r = reducer, bucketFloats > 0 || meanwhile != nil || extra != nil else {
            loss.backward()
            try reduce(group)
            return
        }
        try r.checkFailure()
        if bucketFloats > 0 {
            let key = ObjectIdentifier(group)
            let plan = bucketPlans[key] ?? GradientBuckets(group, bucketFloats: bucketFloats)
            bucketPlans[key] = plan
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

    /// Data-parallel runs: asked with a step's number once its generator gradients are on the
    /// wire, whether that step computes the next step's real-image pass through D (forward, loss part and backward; D's
    /// parameters are final by then), so that the wire and the cores work at the same time. The
    /// next step then computes only the generated images' part. The numbers are those of
    /// computing it in the next step (the same D forwards in the same order; the real part's
    /// gradients added to the generated part's in the other order, which IEEE addition does not
    /// see), but D's batch-norm running statistics (and a spectral norm's vectors) move one pass
    /// early: a worker answers true only for a step after which nothing reads D's state (no
    /// checkpoint) and another step follows, and every rank must answer alike. nil: never.
    /// Applies to losses with `discriminatorParts`, without a gradient penalty or growth.
    public var overlapsNextRealPass: ((_ step: Int) -> Bool)?
    /// The next step's real-image pass, computed early (`overlapsNextRealPass`).
    private struct RealPass { let step: Int; let positions: [Int]; let realOut: Tensor; let realLoss: Tensor; let grads: [Float] }
    private var nextRealPass: RealPass?
    /// Real-image passes computed under the step before's generator all-reduce so far.
    public private(set) var overlappedRealPasses = 0

    /// Whether this step can compute the next step's real pass (the flag and what it needs).
    private var canOverlapNextRealPass: Bool {
        reducer != nil && worldSize > 1 && models.loss.discriminatorParts != nil && dParametersUsedOnce == true
            && !models.loss.gradientPenalty && models.growthSchedule == nil && overlapsNextRealPass?(step + 1) == true
    }
    /// Whether D's forward uses each of its parameters once (a spectral norm uses its weight
    /// twice): then the real and generated parts' gradients added whole are the bits of one
    /// backward through both (`leavesUsedOnce`). Found from the first D step's graph; the same
    /// on every rank.
    private var dParametersUsedOnce: Bool?

    /// The next step's real-image pass. Its gradients of D are kept aside (D's buffer is left
    /// with this step's): the next step adds them to the generated part's, whole, as one
    /// backward through both would (a contribution added into a buffer that already holds
    /// another would be added in GEMM blocks, a different rounding).
    private func computeNextRealPass() throws {
        guard let parts = models.loss.discriminatorParts else { return }
        let next = step + 1
        for t in models.dParams.tensors { t.requiresGrad = true }
        // No growth here (canOverlapNextRealPass), so the resolution is the configured one.
        let (real, positions) = try nextReal(resolution: config.model == .mlp ? 28 : config.imageSize)
        let buffer = models.dParams.gradBuffer
        let kept = Array(buffer)
        models.dParams.zeroGrad()
        let realOut = models.discriminator.score(real)
        let realLoss = parts.real(realOut, realTargets(positions, iteration: 0, step: next))
        try scaled(realLoss, positions.count).backward()
        let grads = Array(buffer)
        kept.withUnsafeBufferPointer { k in _ = buffer.update(fromContentsOf: k) }
        nextRealPass = RealPass(step: next, positions: positions, realOut: realOut, realLoss: realLoss, grads: grads)
        overlappedRealPasses += 1
    }

    /// A step's start, in either mode: the growth state of this step set (progressive models),
    /// both networks in training mode, and the step's metrics with its resolution and fade-in.
    func beginStep() -> StepMetrics {
        var metrics = StepMetrics()
        let growth = models.growthSchedule?.state(at: step) ?? GrowthState(level: 0, alpha: 1)
        models.setGrowth(growth)
        metrics.resolution = models.growthSchedule == nil ? (config.model == .mlp ? 28 : config.imageSize) : growth.resolution
        metrics.alpha = growth.alpha
        models.generator.train(); models.discriminator.train()
        let scale = config.lrScale(atStep: step)
        models.optG.learningRate = config.lrG * scale
        models.optD.learningRate = config.lrD * scale
        return metrics
    }

    /// One step: `nCritic` discriminator updates, then one generator update.
    @discardableResult
    public func trainStep() throws -> StepMetrics {
        if let m = config.microBatches { return try trainStepExact(microBatches: m) }
        let c = config
        var metrics = beginStep()
        let G = models.generator, D = models.discriminator
        let loss = models.loss
        let probs = loss.scores == .probabilities
        var fake = Tensor.zeros([1])
        let early = nextRealPass
        nextRealPass = nil
        for it in 0..<c.nCritic {
            // The real part computed by the step before (overlapsNextRealPass), if any.
            let pass = it == 0 && early?.step == step ? early : nil
            if let pass, let parts = loss.discriminatorParts {
                // The generated images' part; the real part's gradients (computed by the step
                // before) are added to it before the sum over the ranks.
                let z = latents(seed: c.seed, step: step, iteration: it, indices: pass.positions, dim: c.latentDim)
                let last = it == c.nCritic - 1
                fake = last ? generate(z, positions: pass.positions, iteration: it)
                    : withNoGrad { generate(z, positions: pass.positions, iteration: it) }
                models.dParams.zeroGrad()
                let fakeOut = D.score(fake.detach())
                let fakeLoss = parts.fake(fakeOut)
                let dLoss = pass.realLoss + fakeLoss
                try backward(scaled(fakeLoss, pass.positions.count), reducing: models.dParams, adding: pass.grads)
                if measuresGradNorms { metrics.dGradNorm = models.dParams.gradNorm() }
                models.optD.step()
                if loss.clipsWeights { models.dParams.clamp(c.clip) }
                metrics.dLoss = dLoss.item
                metrics.dReal = probs ? pass.realOut.sigmoid().mean().item : pass.realOut.mean().item
                metrics.dFake = probs ? fakeOut.sigmoid().mean().item : fakeOut.mean().item
                continue
            }
            let (real, positions) = try nextReal(resolution: metrics.resolution)
            let z = latents(seed: c.seed, step: step, iteration: it, indices: positions, dim: c.latentDim)
            let last = it == c.nCritic - 1
            // The last iteration keeps the graph of G(z): the generator step reuses these images,
            // as the tutorial does.
            fake = last ? generate(z, positions: positions, iteration: it) : withNoGrad { generate(z, positions: positions, iteration: it) }
            models.dParams.zeroGrad()
            let realOut = D.score(real)
            if dParametersUsedOnce == nil && reducer != nil { dParametersUsedOnce = leavesUsedOnce(realOut) }
            let fakeOut = D.score(fake.detach())
            var dLoss = loss.discriminatorLoss(realOut, fakeOut, realTargets(positions, iteration: it))
            if loss.gradientPenalty {
                let alpha = perSampleUniform(seed: c.seed, .gpAlpha, step: step, iteration: it, indices: positions,
                                             shape: [positions.count, 1, 1, 1])
                let gp = gradientPenalty(critic: { D.score($0) }, real: real, fake: fake.detach(), alpha: alpha)
                metrics.gradientPenalty = gp.item
                dLoss = dLoss + gp * c.gpLambda
            }
            try backward(scaled(dLoss, positions.count), reducing: models.dParams)
            if measuresGradNorms { metrics.dGradNorm = models.dParams.gradNorm() }
            models.optD.step()
            if loss.clipsWeights { models.dParams.clamp(c.clip) }
            metrics.dLoss = dLoss.item
            metrics.dReal = probs ? realOut.sigmoid().mean().item : realOut.mean().item
            metrics.dFake = probs ? fakeOut.sigmoid().mean().item : fakeOut.mean().item
        }
        // Generator step: D's parameters are frozen so backward skips their gradients.
        models.gParams.zeroGrad()
        for t in models.dParams.tensors { t.requiresGrad = false }
        let gLoss = loss.generatorLoss(D.score(fake))
        if canOverlapNextRealPass {
            try backward(scaled(gLoss, fake.shape[0]), reducing: models.gParams, meanwhile: computeNextRealPass)
        } else {
            try backward(scaled(gLoss, fake.shape[0]), reducing: models.gParams)
        }
        for t in models.dParams.tensors { t.requiresGrad = true }
        if measuresGradNorms { metrics.gGradNorm = models.gParams.gradNorm() }
        models.optG.step()
        metrics.gLoss = gLoss.item
        step += 1
        metrics.step = step
        models.updateEMA(step: step)
        return metrics
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
