import Foundation

/// A thread that runs jobs one after another, in the order they were queued. The ring uses one
/// per direction to send segments (so a rank receives and adds the next segment while earlier
/// ones are still going out) and one to run its collectives in call order (so gradient ranges
/// are summed while backward goes on).
final class JobQueue: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [() throws -> Int] = []
    private var queued = 0
    private var completed = 0
    private var stopping = false
    private(set) var error: Error?
    /// What the jobs reported (a sender's jobs: the raw float bytes they sent).
    private(set) var reported = 0

    init(name: String) {
        let t = Thread { [self] in self.loop() }   // the thread keeps the queue until stop()
        t.name = name
        t.start()
    }

    private func loop() {
        while true {
            cond.lock()
            while jobs.isEmpty && !stopping { cond.wait() }
            if jobs.isEmpty { cond.unlock(); return }
            let job = jobs.removeFirst()
            let failed = error != nil
            cond.unlock()
            var count = 0
            var err: Error?
            if !failed { do { count = try job() } catch { err = error } }
            finished(count, err)
        }
    }

    /// Accounts a job that has run: its count, its failure (the first one is kept).
    private func finished(_ count: Int, _ err: Error?) {
        cond.lock()
        if let e = err, error == nil { error = e }
        reported += count
        completed += 1
        cond.broadcast()
        cond.unlock()
    }

    /// Queues a job (returning a count to add to `reported`); returns its number. After the
    /// first failure, later jobs are skipped (and counted as done).
    func enqueue(_ job: @escaping () throws -> Int) -> Int {
        cond.lock()
        defer { cond.unlock() }
        if stopping {
            // The queue was stopped (the ring was closed): the thread may be gone, so the job
            // fails here rather than wait for it forever.
            if error == nil { error = NetError("ring", "the ring was closed") }
            queued += 1
            completed += 1
            return queued
        }
        jobs.append(job)
        queued += 1
        cond.broadcast()
        return queued
    }

    /// Runs `job` on the caller's thread, accounted as a queued job, when nothing queued before
    /// it is still waiting or running (so it overtakes nothing), and returns true; else (or
    /// after a failure, or once stopped) returns false without running it. For small sends
    /// that should not wait for the queue's thread to be scheduled; only for a queue whose jobs
    /// are all queued from the calling thread.
    func runHereIfIdle(_ job: () throws -> Int) -> Bool {
        cond.lock()
        guard queued == completed, error == nil, !stopping else { cond.unlock(); return false }
        queued += 1
        cond.unlock()
        var count = 0
        var err: Error?
        do { count = try job() } catch { err = error }
        finished(count, err)
        return true
    }

    /// Waits until job `n` (and all before it) has run.
    func wait(for n: Int) {
        cond.lock()
        while completed < n { cond.wait() }
        cond.unlock()
    }

    func waitAll() {
        cond.lock()
        let n = queued
        cond.unlock()
        wait(for: n)
    }

    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }
}
