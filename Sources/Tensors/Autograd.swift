#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: grad mode (thread-local, as in PyTorch)

/// Whether ops record the graph on the calling thread. On by default; `withNoGrad` turns it off for
/// sampling and optimizer updates, and backward turns it off unless it is asked to create a graph.
public enum GradMode {
    // One pthread key for the process; the value is 1 + "disabled" so that nil (the default)
    // reads as enabled.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k, nil)
        precondition(rc == 0, "GradMode: pthread_key_create failed (\(rc))")
        return k
    }()

    public static var isEnabled: Bool {
        get { pthread_getspecific(key) == nil }
        set { pthread_setspecific(key, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }
}

/// Runs `body` with graph recording off (PyTorch's `torch.no_grad()`).
@discardableResult
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    try withGradMode(false, body)
}

/// Runs `body` with graph recording set to `enabled`, restoring the previous mode afterwards.
@discardableResult
public func withGradMode<T>(_ enabled: Bool, _ body: () throws -> T) rethrows -> T {
    let saved = GradMode.isEnabled
    GradMode.isEnabled = enabled
    defer { GradMode.isEnabled = saved }
    return try body()
}

// MARK: graph nodes

/// The record of one op: which op, its inputs and its backward rule. The backward rule is
/// written in terms of Tensor ops, so when it runs with grad mode on (create-graph) the gradients
/// it returns are themselves recorded and can be differentiated again.
final class Node {
    typealias Backward = (_ gradOutput: Tensor, _ output: Tensor, _ needsInputGrad: [Bool]) -> [Tensor?]
    let op: Op
    let inputs: [Tensor]
    let backward: Backward

    init(op: Op, inputs: [Tensor], backward: @escaping Backward) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }
}

/// Attaches a node to `output` when grad mode is on and an input requires gradients.
@inline(__always)
func record(_ output: Tensor, _ op: Op, _ inputs: [Tensor], _ backward: @escaping Node.Backward) -> Tensor {
    guard GradMode.isEnabled else { return output }
    var any = false
    for t in inputs where t.requiresGrad { any = true; break }
    guard any else { return output }
    output.node = Node(op: op, inputs: inputs, backward: backward)
    output.requiresGrad = true
    return output
}

// MARK: the engine

private struct Visit {
    var order: [Tensor] = []              // post-order: inputs before outputs
    var relevant: [ObjectIdentifier: Bool] = [:]
}

/// Walks the graph under `roots` and returns the tensors whose gradient is needed, inputs first.
/// A tensor is relevant if it is a target or any of its inputs is relevant.
private func collect(roots: [Tensor], isTarget: (Tensor) -> Bool) -> Visit {
    var visit = Visit()
    var stack: [(Tensor, Bool)] = roots.map { ($0, false) }
    while let (t, expanded) = stack.popLast() {
        let id = ObjectIdentifier(t)
        if expanded {
            var rel = isTarget(t)
            if let node = t.node {
                for inp in node.inputs where inp.requiresGrad && (visit.relevant[ObjectIdentifier(inp)] ?? false) {
                    rel = true
                }
            }
            visit.relevant[id] = rel
            if rel { visit.order.append(t) }
            continue
        }
        if visit.relevant[id] != nil { continue }
        visit.relevant[id] = false  // mark visited (final value set on the way out)
        stack.append((t, true))
        if let node = t.node {
            for inp in node.inputs where inp.requiresGrad && visit.relevant[ObjectIdentifier(inp)] == nil {
                stack.append((inp, false))
            }
        }
    }
    return visit
}

/// Whether every leaf that requires grad and that `root` depends on is an input of exactly one
/// recorded op (counted once per op input). A backward then hands each such leaf one
/// contribution, and two such backward passes added in either order give the bits of one
/// backward through both (IEEE addition commutes; three or more terms do not associate).
public func leavesUsedOnce(_ root: Tensor) -> Bool {
    let visit = collect(roots: [root]) { $0.node == nil && $0.requiresGrad }
    var uses: [ObjectIdentifier: Int] = [:]
    for t in visit.order {
        guard let node = t.node else { continue }
        for inp in node.inputs where inp.node == nil && inp.requiresGrad {
            uses[ObjectIdentifier(inp), default: 0] += 1
        }
    }
    return uses.values.allSatisfy { $0 == 1 }
}

/// Propagates gradients from `roots`. Returns the gradients reached for `wrt` (by identity);
/// when `accumulateLeaves` is set, also adds them into `.grad` of every leaf that requires grad.
/// The loop is the plain one (`BackwardPass.run`); two hooks change where and when leaves'
/// gradients land, never their values: `DirectGradients` lets ops write into leaves' buffers,
/// `LeafReadiness` reports each leaf as soon as its gradient is complete.
private func runBackward(roots: [Tensor], gradRoots: [Tensor], wrt: [Tensor],
                         accumulateLeaves: Bool, createGraph: Bool,
                         leafReady: ((Tensor) -> Void)? = nil) -> [ObjectIdentifier: Tensor] {
    let wrtIDs = Set(wrt.map { ObjectIdentifier($0) })
    let visit = collect(roots: roots) { t in
        wrtIDs.contains(ObjectIdentifier(t)) || (accumulateLeaves && t.node == nil && t.requiresGrad)
    }
    let direct = accumulateLeaves && !createGraph ? DirectGradients(visit, wrt: wrtIDs) : nil
    defer { direct?.detach() }
    return withGradMode(createGraph) {
        let pass = BackwardPass(visit: visit, wrt: wrtIDs, accumulateLeaves: accumulateLeaves, createGraph: createGraph)
        if let leafReady, accumulateLeaves { pass.readiness = LeafReadiness(visit, report: leafReady) }
        pass.seed(roots, gradRoots)
        pass.run()
        return pass.results
    }
}

/// One backward pass over a collected graph: outputs before inputs, each node's backward rule
/// applied to its output's summed gradient, the input gradients summed in the order they come.
private final class BackwardPass {
    let visit: Visit
    let wrt: Set<ObjectIdentifier>
    let accumulateLeaves: Bool
    let createGraph: Bool
    var grads: [ObjectIdentifier: Tensor] = [:]
    var results: [ObjectIdentifier: Tensor] = [:]
    var readiness: LeafReadiness?
    private var finished = Set<ObjectIdentifier>()

    init(visit: Visit, wrt: Set<ObjectIdentifier>, accumulateLeaves: Bool, createGraph: Bool) {
        self.visit = visit
        self.wrt = wrt
        self.accumulateLeaves = accumulateLeaves
        self.createGraph = createGraph
    }

    func seed(_ roots: [Tensor], _ gradRoots: [Tensor]) {
        for (r, g) in zip(roots, gradRoots) {
            precondition(r.shape == g.shape || g.count == r.count,
                         "backward: gradient of shape \(g.shape) for an output of shape \(r.shape)")
            let g2 = g.shape == r.shape ? g : g.reshape(r.shape)
            let id = ObjectIdentifier(r)
            grads[id] = grads[id].map { $0 + g2 } ?? g2
        }
    }

    func run() {
        for t in visit.order.reversed() {
            guard let node = t.node else {
                finishLeaf(t)
                continue
            }
            defer { readiness?.consumed(node, finishLeaf) }
            let id = ObjectIdentifier(t)
            guard let g = grads.removeValue(forKey: id) else { continue }
            if wrt.contains(id) { results[id] = g }
            propagate(g, through: node, output: t)
        }
    }

    private func propagate(_ g: Tensor, through node: Node, output t: Tensor) {
        let needs = node.inputs.map { $0.requiresGrad && (visit.relevant[ObjectIdentifier($0)] ?? false) }
        if !needs.contains(true) { return }
        let inGrads = node.backward(g, t, needs)
        precondition(inGrads.count == node.inputs.count, "\(node.op.rawValue): backward returned \(inGrads.count) gradients for \(node.inputs.count) inputs")
        for (i, inp) in node.inputs.enumerated() where needs[i] {
            guard let gi = inGrads[i] else { continue }
            precondition(gi.shape == inp.shape,
                         "\(node.op.rawValue): gradient of shape \(gi.shape) for input \(i) of shape \(inp.shape)")
            let iid = ObjectIdentifier(inp)
            if let prev = grads[iid] {
                grads[iid] = prev + gi
            } else {
                grads[iid] = gi
            }
        }
    }

    /// A leaf's gradient is complete: returned (a `wrt` input) and/or added into its `.grad`.
    func finishLeaf(_ t: Tensor) {
        let id = ObjectIdentifier(t)
        guard finished.insert(id).inserted else { return }
        if let g = grads.removeValue(forKey: id) {
            if wrt.contains(id) { results[id] = g }
            if accumulateLeaves && t.requiresGrad { accumulate(g, into: t, createGraph: createGraph) }
        }
        // A leaf whose consumers wrote straight into its buffer (or gave it nothing) is
        // complete here too.
        if accumulateLeaves && t.requiresGrad { readiness?.report(t) }
    }
}

/// The leaf-ready hook: a leaf is finished as soon as the last op that consumes it has run (not
/// at its own place in the order, which may be much later: the order puts a leaf anywhere after
/// its consumers), so `report` comes as early as it can (a data-parallel trainer starts summing
/// a bucket of gradients there).
private final class LeafReadiness {
    let report: (Tensor) -> Void
    private var waiting: [ObjectIdentifier: Int] = [:]

    init(_ visit: Visit, report: @escaping (Tensor) -> Void) {
        self.report = report
        for t in visit.order {
            guard let node = t.node else { continue }
            for inp in node.inputs where inp.node == nil && inp.requiresGrad && (visit.relevant[ObjectIdentifier(inp)] ?? false) {
                waiting[ObjectIdentifier(inp), default: 0] += 1
            }
        }
    }

    /// `node` has run: each leaf it consumed whose last consumer it was is finished.
    func consumed(_ node: Node, _ finish: (Tensor) -> Void) {
        guard !waiting.isEmpty else { return }
        for inp in node.inputs where inp.node == nil {
            let iid = ObjectIdentifier(inp)
            guard let w = waiting[iid] else { continue }
            if w == 1 { waiting[iid] = nil; finish(inp) } else { waiting[iid] = w - 1 }
        }
    }
}

/// The direct-write hook: leaves whose gradient buffer ops may accumulate into directly (see
/// `Tensor.directGrad`), attached for one pass. Only when nothing is recorded, so the
/// contribution never needs to be a graph node, and only where the numbers come out bit for bit
/// as on the summed path (the contributions added up in backward's order, then added into the
/// buffer), which a run's checkpoints depend on:
/// - a leaf with one consumer in this graph;
/// - a leaf used several times (a discriminator scoring real and fake images) when every use is
///   the right operand of a 2-d matmul: its backward adds each weight-gradient product to the
///   buffer whole, once (straight from the GEMM where the loaded kernel is proved to do that for
///   the shape, else formed apart and added: `gemmAccumulate`), so with the buffer zeroed (as the
///   trainers do) the buffer receives ((0 + g1) + g2) + ... = (g1 + g2) + ..., the summed path's
///   value on every kernel. Any other mix of uses keeps the summed path.
private struct DirectGradients {
    private var sinks: [Tensor] = []

    init(_ visit: Visit, wrt: Set<ObjectIdentifier>) {
        var uses: [ObjectIdentifier: Int] = [:]
        var otherUse = Set<ObjectIdentifier>()
        for t in visit.order {
            guard let node = t.node else { continue }
            for (i, inp) in node.inputs.enumerated() where inp.node == nil && inp.requiresGrad {
                let iid = ObjectIdentifier(inp)
                uses[iid, default: 0] += 1
                if !Self.isShallowProductWeight(node, output: t, input: i) { otherUse.insert(iid) }
            }
        }
        for t in visit.order where t.node == nil && t.requiresGrad && !wrt.contains(ObjectIdentifier(t)) {
            let n = uses[ObjectIdentifier(t)] ?? 0
            let direct = n == 1 || (n > 1 && !otherUse.contains(ObjectIdentifier(t)))
            if direct, let existing = t.grad, existing.shape == t.shape, existing.storage !== t.storage {
                t.directGrad = existing
                sinks.append(t)
            }
        }
    }

    /// Input `i` of `node` is the right operand of a 2-d matmul of two different tensors.
    private static func isShallowProductWeight(_ node: Node, output t: Tensor, input i: Int) -> Bool {
        let inp = node.inputs[i]
        return node.op == .matmul && i == 1 && node.inputs.count == 2 && node.inputs[0] !== inp
            && node.inputs[0].rank == 2 && inp.rank == 2 && t.rank == 2
    }

    func detach() { for t in sinks { t.directGrad = nil } }
}

private func accumulate(_ g: Tensor, into leaf: Tensor, createGraph: Bool) {
    if let existing = leaf.grad {
        precondition(existing.shape == leaf.shape, "grad of shape \(existing.shape) on a leaf of shape \(leaf.shape)")
        // In place, so a grad that is a window onto a flat buffer stays one.
        let dst = existing.data, src = g.data
        for i in 0..<existing.count { dst[i] += src[i] }
    } else {
        leaf.grad = createGraph ? g : g.copy()
    }
}

extension Tensor {
    /// Accumulates d(self)/d(leaf) into `.grad` of every leaf that requires grad (PyTorch's
    /// `backward()`). A non-scalar output needs `gradient` of its shape.
    ///
    /// `leafReady` is called once for every leaf that requires grad, as soon as its `.grad` is
    /// complete for this pass (all its consumers are done; the pass visits outputs before
    /// inputs), so a data-parallel trainer can start summing those gradients over the ranks
    /// while backward goes on with the layers before (as DDP's bucket hooks do). The order of
    /// the calls depends only on the graph.
    public func backward(gradient: Tensor? = nil, createGraph: Bool = false, leafReady: ((Tensor) -> Void)? = nil) {
        precondition(requiresGrad, "backward: this tensor does not require grad (no recorded op led to it)")
        let g: Tensor
        if let gradient { g = gradient } else {
            precondition(count == 1, "backward: output of shape \(shape) is not a scalar; pass `gradient:`")
            g = Tensor.ones(shape)
        }
        _ = runBackward(roots: [self], gradRoots: [g], wrt: [], accumulateLeaves: true, createGraph: createGraph,
                        leafReady: leafReady)
    }
}

/// Gradients of `outputs` with respect to `inputs`, like `torch.autograd.grad`. `gradOutputs`
/// default to ones. With `createGraph` the returned gradients are recorded and differentiable.
/// An input the outputs do not depend on gets a zero gradient (`allow_unused` with zeros).
public func grad(of outputs: [Tensor], wrt inputs: [Tensor], gradOutputs: [Tensor]? = nil,
                 createGraph: Bool = false) -> [Tensor] {
    for o in outputs { precondition(o.requiresGrad, "grad: an output does not require grad") }
    for i in inputs { precondition(i.requiresGrad, "grad: an input of shape \(i.shape) does not require grad") }
    let gouts = gradOutputs ?? outputs.map { Tensor.ones($0.shape) }
    precondition(gouts.count == outputs.count, "grad: \(gouts.count) gradOutputs for \(outputs.count) outputs")
    let found = runBackward(roots: outputs, gradRoots: gouts, wrt: inputs, accumulateLeaves: false, createGraph: createGraph)
    return inputs.map { found[ObjectIdentifier($0)] ?? Tensor.zeros($0.shape) }
}

/// Records `output` as made by a custom op from `inputs` (when grad mode is on and an input
/// requires grad). `backward` maps the output's gradient to one gradient per input (nil for none);
/// build it from Tensor ops and it supports double backward too.
public func recordCustom(_ output: Tensor, _ op: Op, _ inputs: [Tensor],
                         _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
    record(output, op, inputs) { g, _, _ in backward(g) }
}
