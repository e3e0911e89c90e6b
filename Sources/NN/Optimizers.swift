import Tensors
import CKernels

/// An optimizer over one `ParameterGroup`, with PyTorch's update rules, as one fused loop.
public protocol Optimizer: AnyObject {
    var group: ParameterGroup { get }
    var learningRate: Float { get set }
    /// Applies one update from the group's gradients.
    func step()
    /// The state to checkpoint, by name (step counts as 0-d tensors).
    func stateTensors() -> [(String, Tensor)]
    /// Restores state written by `stateTensors()`.
    func loadState(_ state: [String: Tensor]) throws
}

public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
}

func requireState(_ state: [String: Tensor], _ name: String, count: Int) throws -> Tensor {
    guard let t = state[name] else { throw OptimizerStateError(description: "optimizer state lacks '\(name)'") }
    guard t.count == count else {
        throw OptimizerStateError(description: "optimizer state '\(name)' has \(t.count) values, the model needs \(count)")
    }
    return t
}

/// The optimizer step count stored in `state["step"]`: a non-negative whole number below 10^15;
/// anything else (NaN, infinite, negative, fractional, huge) throws instead of trapping in
/// `Int(_:)`.
func requireStepCount(_ state: [String: Tensor]) throws -> Int {
    let s = try requireState(state, "step", count: 1).item
    guard s.isFinite, s >= 0, s < 1e15, s == s.rounded() else {
        throw OptimizerStateError(description: "optimizer state 'step' is \(s), not a step count")
    }
    return Int(s)
}

/// `torch.optim.Adam(lr, betas, eps, weight_decay)`.
public final class Adam: Optimizer {
    public let group: ParameterGroup
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var stepCount = 0
    let m: TensorStorage, v: TensorStorage

    public init(_ group: ParameterGroup, lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 0) {
        self.group = group
        learningRate = lr
        (beta1, beta2) = betas
        self.eps = eps
        self.weightDecay = weightDecay
        m = TensorStorage(count: group.count)
        v = TensorStorage(count: group.count)
        m.pointer.update(repeating: 0, count: max(group.count, 1))
        v.pointer.update(repeating: 0, count: max(group.count, 1))
    }

    public func step() {
        stepCount += 1
        let t = Float(stepCount)
        let bc1 = 1 - Foundation_pow(beta1, t), bc2 = 1 - Foundation_pow(beta2, t)
        let stepSize = learningRate / bc1
        let bc2Sqrt = bc2.squareRoot()
        var args = AdamKernel(p: group.values.pointer, g: group.grads.pointer, m: m.pointer, v: v.pointer, count: group.count,
                              beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, stepSize: stepSize, bc2Sqrt: bc2Sqrt)
        let pool = ThreadPool.shared
        pool.run(parts: pool.parts(count: group.count, grain: optimizerGrain), argument: &args, kernel: AdamKernel.run)
    }

    public func stateTensors() -> [(String, Tensor)] {
        [("exp_avg", Tensor(shape: [group.count], storage: m)), ("exp_avg_sq", Tensor(shape: [group.count], storage: v)),
         ("step", Tensor(Float(stepCount)))]
    }

    public func loadState(_ state: [String: Tensor]) throws {
        let a = try requireState(state, "exp_avg", count: group.count)
        let b = try requireState(state, "exp_avg_sq", count: group.count)
        let steps = try requireStepCount(state)
        m.pointer.update(from: a.data, count: group.count)
        v.pointer.update(from: b.data, count: group.count)
        stepCount = steps
    }
}

/// `torch.optim.RMSprop(lr, alpha=0.99, eps=1e-8)` (no momentum, not centered).
public final class RMSprop: Optimizer {
    public let group: ParameterGroup
    public var learningRate: Float
    public let alpha: Float, eps: Float
    let sq: TensorStorage

    public init(_ group: ParameterGroup, lr: Float = 1e-2, alpha: Float = 0.99, eps: Float = 1e-8) {
        self.group = group
        learningRate = lr
        self.alpha = alpha
        self.eps = eps
        sq = TensorStorage(count: group.count)
        sq.pointer.update(repeating: 0, count: max(group.count, 1))
    }

    public func step() {
        var args = RMSpropKernel(p: group.values.pointer, g: group.grads.pointer, s: sq.pointer, count: group.count,
                                 alpha: alpha, eps: eps, lr: learningRate)
        let pool = ThreadPool.shared
        pool.run(parts: pool.parts(count: group.count, grain: optimizerGrain), argument: &args, kernel: RMSpropKernel.run)
    }

    public func stateTensors() -> [(String, Tensor)] { [("square_avg", Tensor(shape: [group.count], storage: sq))] }

    public func loadState(_ state: [String: Tensor]) throws {
        let a = try requireState(state, "square_avg", count: group.count)
        sq.pointer.update(from: a.data, count: group.count)
    }
}

/// `torch.optim.SGD(lr, momentum)` (no dampening, not Nesterov).
public final class SGD: Optimizer {
    public let group: ParameterGroup
    public var learningRate: Float
    public let momentum: Float
    let buf: TensorStorage
    var started = false

    public init(_ group: ParameterGroup, lr: Float, momentum: Float = 0) {
        self.group = group
        learningRate = lr
        self.momentum = momentum
        buf = TensorStorage(count: group.count)
        buf.pointer.update(repeating: 0, count: max(group.count, 1))
    }

    public func step() {
        var args = SGDKernel(p: group.values.pointer, g: group.grads.pointer, b: buf.pointer, count: group.count,
                             momentum: momentum, lr: learningRate, first: !started)
        if momentum != 0 { started = true }
        let pool = ThreadPool.shared
        pool.run(parts: pool.parts(count: group.count, grain: optimizerGrain), argument: &args, kernel: SGDKernel.run)
    }

    public func stateTensors() -> [(String, Tensor)] {
        [("momentum_buffer", Tensor(shape: [group.count], storage: buf)), ("started", Tensor(started ? 1 : 0))]
    }

    public func loadState(_ state: [String: Tensor]) throws {
        let a = try requireState(state, "momentum_buffer", count: group.count)
        buf.pointer.update(from: a.data, count: group.count)
        started = try requireState(state, "started", count: 1).item != 0
    }
}

// MARK: the fused update loops
//
// Each optimizer's update is one pass over the flat buffers, split over the engine's threads
// through `ThreadPool.run(parts:argument:kernel:)`, which allocates nothing (a test counts): the
// arguments travel in a struct on the caller's stack. Adam's and RMSprop's loops are in C
// (CKernels: AVX where the CPU has it, chosen at run time; the Swift code is built for the
// x86-64 baseline, where a SIMD square root becomes scalar ones: bench/RESULTS.md has the
// profile); the result is bit for bit what the formula gives one value at a time.

struct AdamKernel {
    let p, g, m, v: UnsafeMutablePointer<Float>
    let count: Int
    let beta1, beta2, eps, weightDecay, stepSize, bc2Sqrt: Float

    static let run: ThreadPool.Kernel = { argument, part, parts in
        let a = argument!.assumingMemoryBound(to: AdamKernel.self).pointee
        let r = ThreadPool.range(of: part, parts, count: a.count)
        if r.isEmpty { return }
        rg_adam_step(a.p + r.lowerBound, a.g + r.lowerBound, a.m + r.lowerBound, a.v + r.lowerBound, r.count,
                     1 - a.beta1, a.beta2, 1 - a.beta2, a.eps, a.weightDecay, a.stepSize, a.bc2Sqrt)
    }
}

struct RMSpropKernel {
    let p, g, s: UnsafeMutablePointer<Float>
    let count: Int
    let alpha, eps, lr: Float

    static let run: ThreadPool.Kernel = { argument, part, parts in
        let k = argument!.assumingMemoryBound(to: RMSpropKernel.self).pointee
        let r = ThreadPool.range(of: part, parts, count: k.count)
        if r.isEmpty { return }
        rg_rmsprop_step(k.p + r.lowerBound, k.g + r.lowerBound, k.s + r.lowerBound, r.count, k.alpha, 1 - k.alpha, k.eps, k.lr)
    }
}

struct SGDKernel {
    let p, g, b: UnsafeMutablePointer<Float>
    let count: Int
    let momentum, lr: Float
    let first: Bool

    static let run: ThreadPool.Kernel = { argument, part, parts in
        let k = argument!.assumingMemoryBound(to: SGDKernel.self).pointee
        let (p, g, b, mu, lr) = (k.p, k.g, k.b, k.momentum, k.lr)
        let r = ThreadPool.range(of: part, parts, count: k.count)
        if mu == 0 {
            for i in r { p[i] -= lr * g[i] }
        } else if k.first {
            for i in r { b[i] = g[i]; p[i] -= lr * b[i] }
        } else {
            for i in r {
                b[i] = mu * b[i] + g[i]
                p[i] -= lr * b[i]
            }
        }
    }
}

/// Optimizer loops shorter than this run on the calling thread.
let optimizerGrain = 1 << 14

#if canImport(Glibc)
import Glibc
#endif
@inline(__always) func Foundation_pow(_ a: Float, _ b: Float) -> Float { powf(a, b) }
