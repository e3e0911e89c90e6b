import Datasets
import DataParallel
import NN
import Tensors

/// Exact mode (`GANConfig.microBatches` = M): the step of `GANTrainer.trainStep` with every
/// number a function of the seed, the config and the global batch, not of the number of
/// workers. Each global batch is cut into M equal micro-batches; a worker runs its own ones
/// (`EpochSampler.shard(_:rank:worldSize:microBatches:)`) one after another, each alone (so each
/// micro-batch's gradients are computed by the same kernels on the same shapes wherever it
/// runs), and the micro-batches' gradients are summed exactly (`ExactSum`): a max over every
/// micro-batch fixes each tensor's fixed-point scale, each worker adds its micro-batches'
/// integers, and the ring adds the workers' integers (`GradientReducer.allReduceExact`).
///
/// BatchNorm normalises each micro-batch with its own statistics and keeps them
/// (`BatchNorm.keepsStatistics`); at the end of the step every micro-batch's statistics and
/// metrics are gathered and merged in micro-batch order, so the running estimates move once per
/// forward of the global batch and the metrics are the global batch's, on every worker alike.
extension GANTrainer {
    /// One micro-batch of this rank's shard: its rows in the shard and its index in the global
    /// batch (its slot).
    struct MicroBatch { let rows: Range<Int>; let slot: Int }

    /// The micro-batches of a shard with global `positions`; throws where the shard does not
    /// consist of whole micro-batches (a coordinator that cut the batch another way).
    func microBatches(_ positions: [Int], count m: Int) throws -> [MicroBatch] {
        let size = config.batchSize / m
        var out: [MicroBatch] = []
        var i = 0
        while i < positions.count {
            let slot = positions[i] / size
            guard i + size <= positions.count, positions[i..<(i + size)].elementsEqual((slot * size)..<((slot + 1) * size)) else {
                throw TrainingDataError("exact mode: this worker's shard (positions \(positions.first ?? 0)...\(positions.last ?? 0)) is not made of whole micro-batches of \(size): the coordinator and the worker disagree on --micro-batches")
            }
            out.append(MicroBatch(rows: i..<(i + size), slot: slot))
            i += size
        }
        return out
    }

    /// Every BatchNorm of G and D, switched to keeping their statistics for the step's end;
    /// found once per trainer (the models do not change).
    var keptBatchNorms: [BatchNorm] {
        if let found = exactNorms { return found }
        let layers = (models.generator.modules() + models.discriminator.modules()).compactMap { $0 as? BatchNorm }
        for l in layers { l.keepsStatistics = true }
        exactNorms = layers
        return layers
    }

    /// This rank's gradient terms of `group` (one per micro-batch) and their integer sum, kept
    /// from step to step.
    func exactBuffers(_ group: ParameterGroup) -> ExactBuffers {
        let key = ObjectIdentifier(group)
        if let b = exactBuffersByGroup[key] { return b }
        let b = ExactBuffers(group)
        exactBuffersByGroup[key] = b
        return b
    }

    /// The exact sum of the kept terms over every micro-batch of every rank, into `group`'s
    /// gradients: the tensors' maxima maximised over the ranks fix the scales, this rank's terms
    /// are added as integers, and the ring adds the ranks' integers.
    func sumExactly(_ kept: ExactBuffers, into group: ParameterGroup) throws {
        var maxima = kept.maxima
        if let r = reducer, worldSize > 1 {
            let all = try r.allGather(maxima)
            let t = maxima.count
            for k in 0..<worldSize { maxima = ExactSum.combine(maxima, Array(all[(k * t)..<((k + 1) * t)])) }
        }
        let sum = ExactSum(ranges: kept.ranges, maxima: maxima)
        let acc = kept.accumulator
        acc.update(repeating: 0)
        sum.accumulate(kept.terms, into: acc)
        if let r = reducer, worldSize > 1 { try r.allReduceExact(acc) }
        sum.result(UnsafeBufferPointer(acc), into: group.gradBuffer)
    }

    /// The step's metrics, per micro-batch (each a micro-batch's mean times its share of the
    /// global batch, so the global values are their sums).
    struct SlotMetrics { var dLoss: Float = 0, dReal: Float = 0, dFake: Float = 0, gp: Float = 0, gLoss: Float = 0
        var values: [Float] { [dLoss, dReal, dFake, gp, gLoss] }
    }

    /// One step in exact mode: `nCritic` discriminator updates, then one generator update, each
    /// micro-batch by micro-batch.
    func trainStepExact(microBatches m: Int) throws -> StepMetrics {
        var metrics = beginStep()
        var state = ExactStepState(norms: keptBatchNorms)
        for it in 0..<config.nCritic {
            try exactDiscriminatorStep(iteration: it, microBatches: m, &state, &metrics)
        }
        try exactGeneratorStep(&state, &metrics)
        let global = try finishStep(state.norms, parts: state.parts, metrics: state.slotMetrics, microBatches: m)
        (metrics.dLoss, metrics.dReal, metrics.dFake, metrics.gradientPenalty, metrics.gLoss) = (global[0], global[1], global[2], global[3], global[4])
        return endStep(metrics)
    }

    /// What an exact step carries from its discriminator updates to its generator update: the
    /// micro-batches of the last iteration, their images (with their graphs) and metrics.
    struct ExactStepState {
        let norms: [BatchNorm]
        var parts: [MicroBatch] = []
        var fakes: [Tensor] = []
        var slotMetrics: [SlotMetrics] = []
        /// BatchNorm layers keep this micro-batch's statistics under its slot.
        func enter(_ mb: MicroBatch) { for l in norms { l.slot = mb.slot } }
    }

    /// One discriminator update: each micro-batch's loss differentiated alone (times its share of
    /// the global batch) and its gradients kept, then the terms summed exactly and D steps.
    private func exactDiscriminatorStep(iteration it: Int, microBatches m: Int, _ state: inout ExactStepState,
                                        _ metrics: inout StepMetrics) throws {
        let (real, positions) = try nextReal(resolution: metrics.resolution)
        state.parts = try microBatches(positions, count: m)
        let kept = exactBuffers(models.dParams)
        kept.begin()
        state.slotMetrics = []
        for mb in state.parts {
            state.enter(mb)
            let pos = Array(positions[mb.rows])
            let share = Float(mb.rows.count) / Float(config.batchSize)
            // The last iteration keeps each micro-batch's graph of G(z) for the generator step.
            let fake = fakeImages(pos, iteration: it)
            if it == config.nCritic - 1 { state.fakes.append(fake) }
            models.dParams.zeroGrad()
            let d = discriminatorLoss(real: real.narrow(0, mb.rows.lowerBound, mb.rows.count), fake: fake, positions: pos, iteration: it)
            var s = SlotMetrics()
            if let gp = d.penalty { s.gp = gp.item * share }
            (d.loss * share).backward()
            kept.keep(models.dParams.gradBuffer)
            s.dLoss = d.loss.item * share
            s.dReal = meanScore(d.realOut) * share
            s.dFake = meanScore(d.fakeOut) * share
            state.slotMetrics.append(s)
        }
        try sumExactly(kept, into: models.dParams)
        if measuresGradNorms { metrics.dGradNorm = models.dParams.gradNorm() }
        models.optD.step()
        if models.loss.clipsWeights { models.dParams.clamp(config.clip) }
    }

    /// The generator update, micro-batch by micro-batch over the last iteration's images; D's
    /// parameters are frozen so backward skips their gradients.
    private func exactGeneratorStep(_ state: inout ExactStepState, _ metrics: inout StepMetrics) throws {
        for t in models.dParams.tensors { t.requiresGrad = false }
        let kept = exactBuffers(models.gParams)
        kept.begin()
        for (j, mb) in state.parts.enumerated() {
            state.enter(mb)
            models.gParams.zeroGrad()
            let gLoss = models.loss.generatorLoss(models.discriminator.score(state.fakes[j]))
            let share = Float(mb.rows.count) / Float(config.batchSize)
            (gLoss * share).backward()
            kept.keep(models.gParams.gradBuffer)
            state.slotMetrics[j].gLoss = gLoss.item * share
        }
        for t in models.dParams.tensors { t.requiresGrad = true }
        try sumExactly(kept, into: models.gParams)
        if measuresGradNorms { metrics.gGradNorm = models.gParams.gradNorm() }
        models.optG.step()
    }

    /// Every micro-batch's kept BatchNorm statistics and metrics, gathered from every rank and
    /// merged in micro-batch order: the running estimates move once per forward call (as one
    /// batch of all the micro-batches), and the returned metrics are the global batch's
    /// (dLoss, dReal, dFake, gp, gLoss).
    private func finishStep(_ norms: [BatchNorm], parts: [MicroBatch], metrics: [SlotMetrics], microBatches m: Int) throws -> [Float] {
        let kept = norms.map { $0.takeKept() }
        // This rank's record per micro-batch: its metrics, then each layer's calls in order
        // (count, mean, squared deviations), the same layout on every micro-batch.
        func record(_ j: Int) -> [Float] {
            var v = metrics[j].values
            for layer in kept {
                for k in layer where k.slot == parts[j].slot { v.append(Float(k.count)); v += k.mean; v += k.squaredDeviations }
            }
            return v
        }
        let mine = parts.indices.map(record)
        let width = mine.first?.count ?? 0
        var bySlot = [[Float]?](repeating: nil, count: m)
        if let r = reducer, worldSize > 1 {
            // Ranks hold different numbers of micro-batches: each sends the most any holds.
            let most = (m + worldSize - 1) / worldSize
            var flat = [Float](repeating: 0, count: most * width)
            for (j, v) in mine.enumerated() { flat.replaceSubrange((j * width)..<((j + 1) * width), with: v) }
            let all = try r.allGather(flat)
            for k in 0..<worldSize {
                let slots = EpochSampler.shard(m, rank: k, worldSize: worldSize)
                for (j, s) in slots.enumerated() {
                    let at = (k * most + j) * width
                    bySlot[s] = Array(all[at..<(at + width)])
                }
            }
        } else {
            for (j, mb) in parts.enumerated() { bySlot[mb.slot] = mine[j] }
        }
        let records = try bySlot.enumerated().map { s, v in
            guard let v, v.count == width else { throw TrainingDataError("exact mode: micro-batch \(s) of \(m) was trained by no rank") }
            return v
        }
        var totals = [Float](repeating: 0, count: 5)
        for v in records { for i in 0..<5 { totals[i] += v[i] } }
        // Each layer's calls: the same number per micro-batch, so call k of every micro-batch is
        // one forward of the global batch.
        var at = 5
        for (layer, mineKept) in zip(norms, kept) {
            let c = layer.numFeatures
            let calls = parts.isEmpty ? 0 : mineKept.filter { $0.slot == parts[0].slot }.count
            for _ in 0..<calls {
                let merged = records.enumerated().map { s, v in
                    BatchNorm.KeptStatistics(slot: s, count: Int(v[at]), mean: Array(v[(at + 1)..<(at + 1 + c)]),
                                             squaredDeviations: Array(v[(at + 1 + c)..<(at + 1 + 2 * c)]))
                }
                layer.updateRunningStatistics(merging: merged)
                at += 1 + 2 * c
            }
        }
        return totals
    }
}

/// Exact mode's buffers for one parameter group, allocated once and kept from step to step (no
/// allocation or fresh pages per step): a copy of the gradients per local micro-batch, the
/// tensors' maxima over those copies, and the integer accumulator.
final class ExactBuffers {
    let count: Int
    let ranges: [Range<Int>]
    private var storage: [UnsafeMutableBufferPointer<Float>] = []
    private(set) var used = 0
    private(set) var maxima: [Float]
    let accumulator: UnsafeMutableBufferPointer<Int64>

    init(_ group: ParameterGroup) {
        count = group.count
        ranges = group.offsets.indices.map { group.offsets[$0]..<(group.offsets[$0] + group.tensors[$0].count) }
        maxima = [Float](repeating: 0, count: ranges.count)
        accumulator = .allocate(capacity: max(count, 1))
    }

    deinit {
        for b in storage { b.deallocate() }
        accumulator.deallocate()
    }

    /// Forgets the terms of the last sum.
    func begin() {
        used = 0
        maxima = [Float](repeating: 0, count: ranges.count)
    }

    /// Keeps a copy of `gradients` as the next term (one pass: the copy and its maxima).
    func keep(_ gradients: UnsafeMutableBufferPointer<Float>) {
        if used == storage.count { storage.append(.allocate(capacity: max(count, 1))) }
        let m = ExactSum.keep(UnsafeBufferPointer(gradients), in: storage[used], ranges: ranges)
        maxima = ExactSum.combine(maxima, m)
        used += 1
    }

    /// The terms kept since `begin`.
    var terms: [UnsafePointer<Float>] { storage[0..<used].map { UnsafePointer($0.baseAddress!) } }
}
