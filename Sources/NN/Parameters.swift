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

    public func zeroGrad() {
        var k = BufferKernel(pointer: grads.pointer, count: count)
        let pool = ThreadPool.shared
        pool.run(parts: pool.parts(count: count, grain: 1 << 16), argument: &k) { argument, part, parts in
            let k = argument!.assumingMemoryBound(to: BufferKernel.self).pointee
            let r = ThreadPool.range(of: part, parts, count: k.count)
            (k.pointer + r.lowerBound).update(repeating: 0, count: r.count)
        }
    }

    /// Clamps every value to [-c, c] (WGAN weight clipping).
    public func clamp(_ c: Float) {
        var k = BufferKernel(pointer: values.pointer, count: count, bound: c)
        let pool = ThreadPool.shared
        pool.run(parts: pool.parts(count: count, grain: 1 << 15), argument: &k) { argument, part, parts in
            let k = argument!.assumingMemoryBound(to: BufferKernel.self).pointee
            let (p, c) = (k.pointer, k.bound)
            for i in ThreadPool.range(of: part, parts, count: k.count) { p[i] = min(max(p[i], -c), c) }
        }
    }

    /// L2 norm of the gradients (for logging): squares summed in double precision, 8 lanes at a
    /// time, per thread, then in thread order. Allocates nothing.
    public func gradNorm() -> Float {
        let pool = ThreadPool.shared
        let parts = pool.parts(count: count, grain: 1 << 15)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
            var k = BufferKernel(pointer: grads.pointer, count: count, sums: partial.baseAddress!)
            pool.run(parts: parts, argument: &k) { argument, part, parts in
                let k = argument!.assumingMemoryBound(to: BufferKernel.self).pointee
                let g = k.pointer
                let r = ThreadPool.range(of: part, parts, count: k.count)
                var v = SIMD8<Double>()
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let x = SIMD8<Double>(UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self))
                    v += x * x
                    i += 8
                }
                var s = v.sum()
                while i < r.upperBound { s += Double(g[i]) * Double(g[i]); i += 1 }
                k.sums![part] = s
            }
            var total: Double = 0
            for i in 0..<parts { total += partial[i] }
            return Float(total.squareRoot())
        }
    }
}

/// The arguments of the flat-buffer loops above.
struct BufferKernel {
    var pointer: UnsafeMutablePointer<Float>
    var count: Int
    var bound: Float = 0
    var sums: UnsafeMutablePointer<Double>? = nil
}
