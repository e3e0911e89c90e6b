import Cluster
import Collectives
import Foundation
import TestSupport
import XCTest

/// SIGTERM / SIGINT to the coordinator while the ring forms: there is no step to finish, so it
/// tells the workers to end and exits at once (143 / 130), writing nothing; it used to be seen
/// only once the ring had formed, which a missing peer delays by the I/O timeout (60 s).
extension ClusterTests {
    func testCoordinatorInterruptedWhileTheRingFormsExitsAtOnce() throws {
        let p = port()
        let coord = try launch("gan-coordinator", ["--workers", "3", "--port", "\(p)", "--token-file", "token", "--dead-after", "120"]
                               + trainArgs(steps: 100, name: "forming"), log: "coord.log")
        let ws = try workers(2, port: p)
        // Rank 2 joins the coordinator but names a ring port where nobody listens: ranks 0 and 1
        // wait for it in their formation.
        let unused = port()
        let auth = try Authenticator(token: "cluster-test-token-0123456789")
        let fake = try Handshake.dial("127.0.0.1", p, name: "coordinator", claim: .hello,
                                      HelloMessage(rank: 2, ringHost: "127.0.0.1", ringPort: unused, pid: 99_999),
                                      auth: auth, role: "coordinator", within: 30, ioTimeout: 30)
        defer { fake.close() }
        XCTAssertNoThrow(try fake.receive(.start, maxPayload: 1 << 20), text("coord.log"))
        let drain = Thread { while (try? fake.receive(maxPayload: 1 << 20)) != nil {} }
        drain.start()
        // Both real workers are forming (they have their start messages).
        let deadline = Date().addingTimeInterval(30)
        while !(text("w0.log").contains("waiting for the start") && text("w1.log").contains("waiting for the start")) && Date() < deadline { usleep(20_000) }
        usleep(1_500_000)
        XCTAssertFalse(text("w0.log").contains("formed"), text("w0.log"))
        let t0 = Date()
        kill(coord.processIdentifier, SIGTERM)
        XCTAssertEqual(wait(coord, within: 30), 143, text("coord.log"))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 8, "stopped at once, not after the formation's timeout: " + text("coord.log"))
        let log = text("coord.log")
        XCTAssertTrue(log.contains("SIGTERM: asked to stop while the ring of 3 worker(s) formed (0 of 3 had formed it); no step of this formation was trained; no checkpoint was written"), log)
        XCTAssertNotNil(resumeCommand(log), log)
        // The workers cancel their formation and end cleanly.
        for (r, w) in ws.enumerated() {
            XCTAssertEqual(wait(w, within: 10), 0, text("w\(r).log"))
            XCTAssertTrue(text("w\(r).log").contains("the coordinator stopped the run while the ring formed"), text("w\(r).log"))
        }
        XCTAssertEqual(checkpointNames("forming"), [])
    }
}
