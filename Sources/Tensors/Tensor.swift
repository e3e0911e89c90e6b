#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Owns one 64-byte aligned block of float32 values. Several tensors may be windows onto one
/// storage (a model's flat parameter buffer, a reshape); the storage lives as long as any of them.
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        pointer = BlockCache.shared.allocate(floats: max(count, 1))
        self.count = count
    }

    deinit { BlockCache.shared.release(pointer, floats: max(count, 1)) }
}

#if canImport(Glibc)
/// glibc's `malloc_trim` (malloc.h is not in the Glibc module): returns free heap pages to the system.
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Keeps freed large blocks for reuse, as PyTorch's caching allocators do. Without it every
/// large tensor is a fresh mmap whose pages fault in one by one (glibc maps blocks over 32 MB
/// anew each time), which made element-wise ops run at a fifth of memory bandwidth. Blocks of
/// at least `minBytes` are rounded up to a size class (at most 1/8 waste) and kept, up to
/// `maxCachedBytes` in all; smaller ones go to malloc, which already reuses them well.
/// The engine's memory settings, set by the executables before any tensor is made.
public enum TensorMemory {
    /// The most bytes of freed large blocks kept for reuse (default 1 GiB; 0 keeps none).
    public static var blockCacheBytes: Int {
        get { BlockCache.maxCachedBytes }
        set { BlockCache.limit.store(max(0, newValue), ordering: .relaxed) }
    }
}

final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    static let minBytes = 256 << 10
    /// 1 GiB, or what the executable set from `RINGGAN_BLOCK_CACHE_MB` (`TensorMemory`).
    static var maxCachedBytes: Int { limit.load(ordering: .relaxed) }
    static let limit = Atomic<Int>(1 << 30)

    private var pool: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    private init() { pthread_mutex_init(lock, nil) }

    /// Bytes rounded up to a class: multiples of 1/8 of the enclosing power of two.
    static func sizeClass(_ bytes: Int) -> Int {
        if bytes < minBytes { return bytes }
        let high = Int.bitWidth - (bytes - 1).leadingZeroBitCount   // 2^high >= bytes
        let step = 1 << max(high - 4, 6)
        return (bytes + step - 1) / step * step
    }

    func allocate(floats: Int) -> UnsafeMutablePointer<Float> {
        let bytes = BlockCache.sizeClass(floats * MemoryLayout<Float>.stride)
        if bytes >= BlockCache.minBytes {
            pthread_mutex_lock(lock)
            let p = pool[bytes]?.popLast()
            if p != nil { cachedBytes -= bytes }
            pthread_mutex_unlock(lock)
            if let p { return p.bindMemory(to: Float.self, capacity: floats) }
        }
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 64, bytes)
        precondition(rc == 0 && raw != nil, "TensorStorage: cannot allocate \(bytes) bytes (error \(rc))")
        return raw!.bindMemory(to: Float.self, capacity: floats)
    }

    /// Frees every cached block and asks malloc to hand free heap pages back to the system;
    /// returns the bytes the cache held.
    func trim() -> Int {
        pthread_mutex_lock(lock)
        let blocks = pool
        let bytes = cachedBytes
        pool = [:]
        cachedBytes = 0
        pthread_mutex_unlock(lock)
        for (_, list) in blocks { for p in list { free(p) } }
        #if canImport(Glibc)
        _ = glibcMallocTrim(0)
        #endif
        return bytes
    }

    var cached: Int { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return cachedBytes }

    func release(_ p: UnsafeMutablePointer<Float>, floats: Int) {
        let bytes = BlockCache.sizeClass(floats * MemoryLayout<Float>.stride)
        if bytes >= BlockCache.minBytes {
            pthread_mutex_lock(lock)
            if cachedBytes + bytes <= BlockCache.maxCachedBytes {
                pool[bytes, default: []].append(UnsafeMutableRawPointer(p))
                cachedBytes += bytes
                pthread_mutex_unlock(lock)
                return
            }
            pthread_mutex_unlock(lock)
        }
        free(p)
    }
}

/// Returns the memory the tensor block cache keeps for reuse to the system (as PyTorch's
/// `torch.cuda.empty_cache()`); returns the bytes released. Between steps every block of the step
/// is in the cache, so this is the step's whole working memory: the trainer calls it after
/// building the models and before a checkpoint or the final grid, so those do not add to a run's
/// peak. The next step
/// takes its blocks from the system again (page faults, once).
@discardableResult
public func releaseCachedTensorMemory() -> Int { BlockCache.shared.trim() }

/// Bytes the tensor block cache holds for reuse.
public var cachedTensorMemory: Int { BlockCache.shared.cached }

/// A float32 tensor: a shape and a contiguous, row-major window (`offset`, `count`) onto a storage.
///
/// Tensors are reference types, like PyTorch's: an op returns a new tensor and, when gradients are
/// being recorded and an input requires them, the node that made it (`gradFn`).
public final class Tensor {
    public let shape: [Int]
    public let storage: TensorStorage
    public let offset: Int
    public let count: Int
    /// Set on leaves by the user (`requiresGrad = true`); set on op outputs by the recorder.
    public var requiresGrad: Bool {
        didSet {
            precondition(node == nil || requiresGrad,
                         "requiresGrad can only be changed on leaf tensors (this one was made by \(node!.op.rawValue))")
        }
    }
    /// The accumulated gradient of a leaf after `backward()`. May be a window onto a flat
    /// gradient buffer, in which case backward accumulates into it in place.
    public var grad: Tensor?
    /// The op that produced this tensor, if it was recorded.
    internal var node: Node?
    /// Set by `backward()` (without create-graph) on a leaf that already has a gradient of its
    /// shape, for the duration of the pass: an op whose backward rule is one product (matmul,
    /// the convolutions' weight gradients) may add its contribution straight into this buffer
    /// (a GEMM with beta = 1) and return nil for the input, saving a temporary and a pass.
    internal var directGrad: Tensor?

    /// Wraps an existing storage window. `offset + product(shape)` must fit in the storage.
    public init(shape: [Int], storage: TensorStorage, offset: Int = 0) {
        let n = Tensor.elementCount(shape)
        precondition(offset >= 0 && offset + n <= storage.count,
                     "Tensor: window [\(offset), \(offset + n)) does not fit a storage of \(storage.count) elements")
        self.shape = shape
        self.storage = storage
        self.offset = offset
        self.count = n
        self.requiresGrad = false
    }

    /// A new tensor of the given shape; its contents are uninitialised.
    public convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.elementCount(shape)))
    }

    /// A new tensor holding `values` (row-major) with `shape`.
    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) {
        precondition(values.count == Tensor.elementCount(shape),
                     "Tensor(shape: \(shape)) needs \(Tensor.elementCount(shape)) values, got \(values.count)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { data.update(from: base, count: values.count) }
        }
        self.requiresGrad = requiresGrad
    }

    /// A 0-d tensor.
    public convenience init(_ scalar: Float, requiresGrad: Bool = false) {
        self.init(shape: [], values: [scalar], requiresGrad: requiresGrad)
    }

    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "Tensor: negative dimension in shape \(shape)")
            n *= d
        }
        return n
    }

    // MARK: raw access

    /// Pointer to the first element of this tensor's window.
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.pointer + offset }

    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: data, count: count)
    }

    public var rank: Int { shape.count }

    /// The values, row-major.
    public func toArray() -> [Float] { Array(buffer) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) elements, not 1")
        return data[0]
    }

    public subscript(flat i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return data[i] }
        set { precondition(i >= 0 && i < count); data[i] = newValue }
    }

    /// True when the tensor was produced by a recorded op.
    public var isLeaf: Bool { node == nil }
    /// Name of the op that produced this tensor (`nil` for leaves).
    public var gradFnName: String? { node?.op.rawValue }

    // MARK: construction helpers

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.buffer.update(repeating: 0)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.buffer.update(repeating: value)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func zeros(like t: Tensor) -> Tensor { zeros(t.shape) }
    public static func ones(like t: Tensor) -> Tensor { ones(t.shape) }

    /// A tensor sharing this one's storage, cut off from the graph (PyTorch's `detach()`).
    public func detach() -> Tensor { Tensor(shape: shape, storage: storage, offset: offset) }

    /// A fresh copy of the values, cut off from the graph.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Overwrites this tensor's values with `other`'s (same element count). Not recorded.
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = buffer.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")]"
            + (node.map { ", gradFn: \($0.op.rawValue)" } ?? "") + ")"
    }
}
