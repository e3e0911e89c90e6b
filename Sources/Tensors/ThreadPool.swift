#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The engine's intra-op threads: `threads - 1` workers plus the calling thread split one loop.
///
/// Every parallel loop in the engine (GEMM splits, im2col/col2im, element-wise maps, reductions,
/// optimizer steps) runs through `parallelFor` on `ThreadPool.shared`, so `--threads N` means N
/// busy cores and nothing else competes: OpenBLAS itself runs one thread per call (its own pool
/// spins in `sched_yield` between calls, which profiles showed as a large share of a training
/// run's cycles: bench/RESULTS.md). Idle workers spin for a few microseconds (back-to-back ops hand over work without a
/// system call) and then sleep on a condition variable, so a lone thread between loops costs no
/// cycles. A loop started from inside another (a GEMM inside a parallel conv chunk) runs inline.
public final class ThreadPool: @unchecked Sendable {
    /// Threads that work on one loop, the caller included.
    public let threads: Int

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let live = Atomic<Int>(0)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The loop body of the current generation (a C function and its argument, so that a kernel
    /// that brings its own can run without any heap allocation); valid while `remaining > 0`.
    private nonisolated(unsafe) var jobFunction: Kernel?
    private nonisolated(unsafe) var jobArgument: UnsafeMutableRawPointer?

    /// A loop body that allocates nothing: `kernel(argument, part, parts)`.
    public typealias Kernel = @convention(c) (_ argument: UnsafeMutableRawPointer?, _ part: Int, _ parts: Int) -> Void
    private var handles: [pthread_t] = []

    /// Spins (checks of the generation) before an idle worker sleeps: roughly 20-50 us.
    static let spinLimit = 20_000

    public init(threads: Int) {
        precondition(threads >= 1, "ThreadPool: needs at least one thread, got \(threads)")
        self.threads = threads
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for index in 1..<threads {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index)).toOpaque()
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box)
            precondition(rc == 0, "ThreadPool: cannot start a worker thread (error \(rc))")
            handles.append(handle)
        }
    }

    /// Runs once the workers have stopped (`shutdown`): each running worker holds its pool.
    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        wake.deallocate()
    }

    /// Stops and joins the workers; the pool must not run loops afterwards. `setThreads` shuts
    /// down the pool it replaces. (A worker holds its pool, so a pool nobody shuts down keeps its
    /// sleeping threads: an unowned reference here let a pool created and dropped at once be
    /// destroyed before its workers had started, which then read a dead object.)
    public func shutdown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for h in handles { pthread_join(h, nil) }
        handles = []
    }

    private final class WorkerStart {
        let pool: ThreadPool
        let index: Int
        init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            // Wait for a new generation: spin first, then sleep.
            var spins = 0
            var g = generation.load(ordering: .acquiring)
            while g == seen && spins < ThreadPool.spinLimit {
                spins += 1
                g = generation.load(ordering: .acquiring)
            }
            if g == seen {
                sleepers.add(1, ordering: .sequentiallyConsistent)
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(wake, mutex)
                }
                pthread_mutex_unlock(mutex)
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                g = generation.load(ordering: .acquiring)
            }
            seen = g
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            let parts = live.load(ordering: .acquiring)
            var part = index
            while part < parts { jobFunction!(jobArgument, part, parts); part += threads }
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `body(i)` for i in 0..<parts on the pool (as `run(parts:argument:kernel:)`),
    /// and returns when all are done. Called from inside a running loop, runs every part inline.
    /// (Handing a Swift closure to other threads costs one small heap allocation; kernels that
    /// must allocate nothing use `run(parts:argument:kernel:)`.)
    public func run(parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || threads == 1 || busy.load(ordering: .relaxed) {
            for i in 0..<max(parts, 1) { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            var closure = escaping
            withUnsafeMutablePointer(to: &closure) { slot in
                run(parts: parts, argument: UnsafeMutableRawPointer(slot)) { argument, part, _ in
                    argument!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
                }
            }
        }
    }

    /// Runs `kernel(argument, i, parts)` for i in 0..<parts, part i on thread i % threads (part 0
    /// on the caller), and returns when all are done; allocates nothing. Called from inside a
    /// running loop, runs every part inline. More parts than threads (`splits` fixed above the
    /// thread count) run in turn on each thread.
    public func run(parts: Int, argument: UnsafeMutableRawPointer?, kernel: Kernel) {
        if parts <= 1 || threads == 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            let n = max(parts, 1)
            for i in 0..<n { kernel(argument, i, n) }
            return
        }
        jobFunction = kernel
        jobArgument = argument
        live.store(parts, ordering: .relaxed)
        remaining.store(threads - 1, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)
        }
        var part = 0
        while part < parts { kernel(argument, part, parts); part += threads }
        while remaining.load(ordering: .acquiring) > 0 {}
        jobFunction = nil
        jobArgument = nil
        busy.store(false, ordering: .releasing)
    }

    /// Splits 0..<count into contiguous ranges of at least `grain` elements (`splits` of them,
    /// at most) and runs `body` on each in parallel. `align` rounds the split points to a
    /// multiple (SIMD width, GEMM panel).
    public func parallelFor(_ count: Int, grain: Int, align: Int = 16, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let parts = min(splits, max(1, count / max(grain, 1)))
        if parts <= 1 { body(0..<count); return }
        let per = ((count + parts - 1) / parts + align - 1) / align * align
        run(parts: parts) { i in
            let lo = min(count, i * per), hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// How many parts `parallelFor` makes of `count` elements with this grain.
    public func parts(count: Int, grain: Int) -> Int { min(splits, max(1, count / max(grain, 1))) }

    /// How many parts the engine cuts a loop into, at most: the thread count, unless
    /// `fixSplits` set another. Whatever depends on the cut (a reduction's partial sums added in
    /// part order, a GEMM's blocks, a convolution's chunks) depends on this and not on the
    /// threads, so with the cut fixed the engine's results are the same on any thread count.
    public var splits: Int {
        let f = ThreadPool.fixedSplits.load(ordering: .relaxed)
        return f > 0 ? f : threads
    }
    private static let fixedSplits = Atomic<Int>(0)

    /// Fixes the number of parts every loop is cut into, whatever the thread count (nil: the
    /// thread count). Exact mode (`GANConfig.microBatches`) fixes it, so that a run's bits do
    /// not depend on each process's `--threads`.
    public static func fixSplits(_ n: Int?) { fixedSplits.store(max(0, n ?? 0), ordering: .relaxed) }

    /// Part `part` of `parts` contiguous ranges of 0..<count, split points rounded to `align`.
    @inlinable
    public static func range(of part: Int, _ parts: Int, count: Int, align: Int = 16) -> Range<Int> {
        let per = ((count + parts - 1) / max(parts, 1) + align - 1) / align * align
        let lo = min(count, part * per)
        return lo..<min(count, lo + per)
    }

    // MARK: the engine's pool

    private static let sharedLock = Mutex<ThreadPool?>(nil)

    /// The pool the engine's ops use. Until `setThreads` is called: one thread per core,
    /// or the executable's `RINGGAN_THREADS` when set.
    public static var shared: ThreadPool {
        sharedLock.withLock { pool in
            if let p = pool { return p }
            BLASRuntime.setThreads(1)
            let p = ThreadPool(threads: defaultThreads)
            pool = p
            return p
        }
    }

    /// The thread count of a pool made before anyone sets one: the number of online cores, or
    /// what the executable set from `RINGGAN_THREADS` (`ProcessEnvironment`; the engine never
    /// reads the environment itself).
    public static var defaultThreads: Int {
        get { let n = configuredDefault.load(ordering: .relaxed); return n > 0 ? n : onlineCores }
        set { configuredDefault.store(max(0, newValue), ordering: .relaxed) }
    }
    private static let configuredDefault = Atomic<Int>(0)

    /// The number of online cores.
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Sets the engine's thread count (the old pool's workers are stopped). OpenBLAS is kept at
    /// one thread: the engine splits GEMMs itself.
    public static func setThreads(_ n: Int) {
        let n = max(1, n)
        BLASRuntime.setThreads(1)
        let replaced: ThreadPool? = sharedLock.withLock { pool in
            if pool?.threads == n { return nil }
            defer { pool = ThreadPool(threads: n) }
            return pool
        }
        replaced?.shutdown()
    }
}

/// How many parts the engine's loops are cut into (`ThreadPool.shared.splits`).
@inline(__always) var engineSplits: Int { ThreadPool.shared.splits }

/// `ThreadPool.shared.parallelFor`.
@inline(__always)
func parallelFor(_ count: Int, grain: Int, align: Int = 16, _ body: (Range<Int>) -> Void) {
    ThreadPool.shared.parallelFor(count, grain: grain, align: align, body)
}
