import Tensors

/// All parameters of a model in one flat buffer, and all their gradients in another (as llm.c
/// does): each parameter is a window onto `values`, its `.grad` a window onto `grads`. The
/// optimizer is then one loop over the buffer, the all-reduce works on slices of one buffer,
/// and checksums and checkpoints are a single pass.
public final class ParameterGroup {
    public let names: [String]
    public let tensors: [Tensor]
    public let offsets: [Int]
    public let count: Int
    public let values: TensorStorage
    public let grads: TensorStorage

    /// Moves `module`'s parameters into one buffer (values are copied; the module then uses the
    /// windows).
    public init(_ module: Module) {
        let named = module.namedParameters()
        let total = named.reduce(0) { $0 + $1.1.count }
        values = TensorStorage(count: total)
        grads = TensorStorage(count: total)
        grads.pointer.update(repeating: 0, count: max(total, 1))
        var offs: [Int] = [], windows: [Tensor] = []
        var off = 0
        for (name, t) in named {
            let w = Tensor(shape: t.shape, storage: values, offset: off)
            w.assign(t)
            w.requiresGrad = true
            w.grad = Tensor(shape: t.shape, storage: grads, offset: off)
            module.replaceParameter(path: name, with: w)
            offs.append(off)
            windows.append(w)
            off += t.count
        }
        names = named.map { $0.0 }
        tensors = windows
        offsets = offs
        count = total
    }

    public var valueBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: values.pointer, count: count) }
    public var gradBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: grads.pointer, count: count) }

    /// The gradients as one tensor (a window onto the gradient buffer).
    public var gradTensor: Tensor { Tensor(shape: [count], storage: grads, offset: 0) }
    /// The values as one tensor (a window onto the value buffer).
    public var valueTensor: Tensor { Tensor(shape: [count], storage: values, offset: 0) }

    public func zeroGrad() { grads.pointer.update(repeating: 0, count: count) }

    /// Clamps every value to [-c, c] (WGAN weight clipping).
    public func clamp(_ c: Float) {
        let p = values.pointer
        for i in 0..<count { p[i] = min(max(p[i], -c), c) }
    }

    /// L2 norm of the gradients (for logging).
    public func gradNorm() -> Float {
        var acc: Double = 0
        let g = grads.pointer
        for i in 0..<count { acc += Double(g[i]) * Double(g[i]) }
        return Float(acc.squareRoot())
    }
}
