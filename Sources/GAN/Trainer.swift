import Foundation
import Datasets
import DataParallel
import NN
import Tensors

/// One process's part of training: the same code runs a single process (world of one) and
/// each rank of a data-parallel run.
///
/// The step reads like the tutorial's loop: `trainStep` runs `nCritic` discriminator steps and one
/// generator step, each one short function. What data parallelism adds (the loss scaled by the
/// shard's share, gradients summed over the ranks bucket by bucket during backward, the next
/// step's real-image pass computed under the generator's all-reduce) sits behind `backward` and
/// `scaled`, in DataParallelStep.swift; exact mode's step is in ExactStep.swift.
public final class GANTrainer {
    public let models: GANModels
    public var config: GANConfig { models.config }
    public let source: BatchSource
    public var sampler: EpochSampler { source.samplerState }
    public internal(set) var step = 0
    public let rank: Int
    public let worldSize: Int
    public var reducer: GradientReducer?
    /// How a data-parallel step is scheduled: gradient buckets and the overlapped real pass.
    public let schedule = DataParallelSchedule()
    /// Whether the next steps measure the gradients' norms (a pass over both flat gradient
    /// buffers). The session turns it on only for the steps whose metrics it logs.
    public var measuresGradNorms = true
    /// Exact mode's kept gradient terms per parameter group (`exactBuffers`).
    var exactBuffersByGroup: [ObjectIdentifier: ExactBuffers] = [:]
    /// Exact mode's BatchNorm layers (`keptBatchNorms`).
    var exactNorms: [BatchNorm]?

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
        schedule.forgetEarlyRealPass()
    }

    /// One step: `nCritic` discriminator updates, then one generator update.
    @discardableResult
    public func trainStep() throws -> StepMetrics {
        if let m = config.microBatches { return try trainStepExact(microBatches: m) }
        var metrics = beginStep()
        var fake = Tensor.zeros([1])
        for it in 0..<config.nCritic {
            fake = try discriminatorStep(iteration: it, &metrics)
        }
        try generatorStep(fake, &metrics)
        return endStep(metrics)
    }

    /// One discriminator update on this rank's shard of the next batch: D scores real images and
    /// G's images (detached), its loss (and gradient penalty) is differentiated and D steps.
    /// Returns G's images; the last iteration keeps their graph, since the generator step reuses
    /// them, as the tutorial does.
    func discriminatorStep(iteration it: Int, _ metrics: inout StepMetrics) throws -> Tensor {
        if let early = schedule.takeEarlyRealPass(step: step, iteration: it) {
            return try discriminatorStep(completing: early, iteration: it, &metrics)
        }
        let (real, positions) = try nextReal(resolution: metrics.resolution)
        let fake = fakeImages(positions, iteration: it)
        models.dParams.zeroGrad()
        let d = discriminatorLoss(real: real, fake: fake, positions: positions, iteration: it)
        schedule.noteParameterUse(d.realOut, dataParallel: reducer != nil)
        try backward(scaled(d.loss, positions.count), reducing: models.dParams)
        if let gp = d.penalty { metrics.gradientPenalty = gp.item }
        optimizeDiscriminator(d.loss, real: d.realOut, fake: d.fakeOut, &metrics)
        return fake
    }

    /// One generator update through D's scores of `fake`; D's parameters are frozen so backward
    /// skips their gradients.
    func generatorStep(_ fake: Tensor, _ metrics: inout StepMetrics) throws {
        models.gParams.zeroGrad()
        for t in models.dParams.tensors { t.requiresGrad = false }
        let gLoss = models.loss.generatorLoss(models.discriminator.score(fake))
        try backward(scaled(gLoss, fake.shape[0]), reducing: models.gParams,
                     meanwhile: canOverlapNextRealPass ? computeNextRealPass : nil)
        for t in models.dParams.tensors { t.requiresGrad = true }
        if measuresGradNorms { metrics.gGradNorm = models.gParams.gradNorm() }
        models.optG.step()
        metrics.gLoss = gLoss.item
    }

    /// D's loss on one batch: its scores of the real images and of G's (detached), the loss of
    /// the config, and the gradient penalty when the loss has one (added times its lambda).
    struct DiscriminatorLoss { let loss: Tensor; let realOut: Tensor; let fakeOut: Tensor; let penalty: Tensor? }

    func discriminatorLoss(real: Tensor, fake: Tensor, positions: [Int], iteration it: Int) -> DiscriminatorLoss {
        let c = config, D = models.discriminator, loss = models.loss
        let realOut = D.score(real)
        let fakeOut = D.score(fake.detach())
        var dLoss = loss.discriminatorLoss(realOut, fakeOut, realTargets(positions, iteration: it))
        var penalty: Tensor?
        if loss.gradientPenalty {
            let alpha = perSampleUniform(seed: c.seed, .gpAlpha, step: step, iteration: it, indices: positions,
                                         shape: [positions.count, 1, 1, 1])
            let gp = gradientPenalty(critic: { D.score($0) }, real: real, fake: fake.detach(), alpha: alpha)
            penalty = gp
            dLoss = dLoss + gp * c.gpLambda
        }
        return DiscriminatorLoss(loss: dLoss, realOut: realOut, fakeOut: fakeOut, penalty: penalty)
    }

    /// D's optimizer step on the gradients in its buffer (clipped after, for WGAN), and the
    /// step's D metrics.
    func optimizeDiscriminator(_ dLoss: Tensor, real realOut: Tensor, fake fakeOut: Tensor, _ metrics: inout StepMetrics) {
        if measuresGradNorms { metrics.dGradNorm = models.dParams.gradNorm() }
        models.optD.step()
        if models.loss.clipsWeights { models.dParams.clamp(config.clip) }
        metrics.dLoss = dLoss.item
        metrics.dReal = meanScore(realOut)
        metrics.dFake = meanScore(fakeOut)
    }

    /// The mean of D's scores as the logs show it: a probability for losses on logits.
    func meanScore(_ out: Tensor) -> Float {
        models.loss.scores == .probabilities ? out.sigmoid().mean().item : out.mean().item
    }

    /// G's images for the latents of `positions` at iteration `it` of this step; recorded for
    /// backward only on the last iteration (the generator step's).
    func fakeImages(_ positions: [Int], iteration it: Int) -> Tensor {
        let z = latents(seed: config.seed, step: step, iteration: it, indices: positions, dim: config.latentDim)
        if it == config.nCritic - 1 { return generate(z, positions: positions, iteration: it) }
        return withNoGrad { generate(z, positions: positions, iteration: it) }
    }

    /// A step's start, in either mode: the growth state of this step set (progressive models),
    /// both networks in training mode, the learning rates of this step, and the step's metrics
    /// with its resolution and fade-in.
    func beginStep() -> StepMetrics {
        var metrics = StepMetrics()
        let growth = models.growthSchedule?.state(at: step) ?? GrowthState(level: 0, alpha: 1)
        models.setGrowth(growth)
        metrics.resolution = models.growthSchedule == nil ? config.imageSize : growth.resolution
        metrics.alpha = growth.alpha
        models.generator.train(); models.discriminator.train()
        let scale = config.lrScale(atStep: step)
        models.optG.learningRate = config.lrG * scale
        models.optD.learningRate = config.lrD * scale
        return metrics
    }

    /// A step's end, in either mode: the step counted and G's moving average updated.
    func endStep(_ m: StepMetrics) -> StepMetrics {
        var metrics = m
        step += 1
        metrics.step = step
        models.updateEMA(step: step)
        return metrics
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
}
