import Foundation
import XCTest
@testable import Collectives

final class JobQueueTests: XCTestCase {
    /// A small send runs on the caller's thread only when nothing queued before it is waiting
    /// or running, so frames on a connection keep their order; it is accounted as a job.
    func testRunHereIfIdleNeverOvertakesAQueuedJob() {
        final class Log: @unchecked Sendable { var order: [String] = []; let lock = NSLock()
            func add(_ s: String) { lock.lock(); order.append(s); lock.unlock() } }
        let log = Log()
        let q = JobQueue(name: "test-sender")
        defer { q.stop() }
        _ = q.enqueue { Thread.sleep(forTimeInterval: 0.1); log.add("queued"); return 3 }
        XCTAssertFalse(q.runHereIfIdle { log.add("inline too early"); return 0 }, "a job is still queued or running")
        q.waitAll()
        let caller = Thread.current
        XCTAssertTrue(q.runHereIfIdle { XCTAssertTrue(Thread.current === caller); log.add("inline"); return 5 })
        q.waitAll()
        XCTAssertEqual(log.order, ["queued", "inline"])
        XCTAssertEqual(q.reported, 8)
        XCTAssertNil(q.error)
    }

    /// After a failure nothing more runs inline (the queue's own rule for later jobs).
    func testRunHereIfIdleStopsAfterAFailure() {
        struct Boom: Error {}
        let q = JobQueue(name: "test-sender")
        defer { q.stop() }
        XCTAssertTrue(q.runHereIfIdle { throw Boom() })
        XCTAssertNotNil(q.error)
        XCTAssertFalse(q.runHereIfIdle { XCTFail("ran after a failure"); return 0 })
    }
}
