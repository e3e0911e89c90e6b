import Foundation
import XCTest

public struct ProcessResult {
    /// The exit status, or the signal's number when `signalled`.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var both: String { stdout + stderr }
    /// The process ended by a signal (a crash, or the kill at `runProcess`'s time limit).
    public var signalled = false
    /// `runProcess` killed it at its time limit.
    public var timedOut = false
}

/// Runs `executable args` in `cwd` with separate stdout and stderr (read concurrently). With a
/// `timeout` (seconds), a process still running then is sent SIGTERM, then SIGKILL a second
/// later, and the result says `timedOut`.
public func runProcess(_ executable: String, _ args: [String], cwd: String, env extra: [String: String] = [:],
                       timeout: Double? = nil) throws -> ProcessResult {
    let p = configuredProcess(executable, args, cwd: cwd, env: extra)
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let killed = KillFlag()
    if let t = timeout {
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + t) {
            guard killed.kill(pid, SIGTERM) else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + 1) { _ = killed.kill(pid, SIGKILL) }
        }
    }
    // Drain stderr on another thread so that neither pipe fills up and blocks the child.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    killed.exited()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self),
                         signalled: p.terminationReason == .uncaughtSignal, timedOut: killed.isSet)
}

/// The time limit of `runProcess`: signals the child only while it has not been waited for
/// (so never a reused pid), and remembers that it did.
private final class KillFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false, done = false
    func kill(_ pid: pid_t, _ sig: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard !done else { return false }
        value = true
        Foundation.kill(pid, sig)
        return true
    }
    func exited() { lock.lock(); done = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// An executable of this package (`gan`, `gan-coordinator`, `gan-worker`) built beside this
/// test bundle (`swift build --build-tests` builds them all).
public func builtExecutable(_ name: String) -> String {
    var dir = Bundle(for: InteropSupport.self).bundleURL
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) && dir.pathComponents.count > 1 {
        dir.deleteLastPathComponent()
    }
    return dir.appendingPathComponent(name).path
}

/// The `gan` binary built beside this test bundle.
public var ganBinary: String { builtExecutable("gan") }

/// Runs `gan args` in `cwd`, failing the test when the exit status is not `expect`.
@discardableResult
public func gan(_ args: [String], cwd: String, expect: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
    let r = try runProcess(ganBinary, args, cwd: cwd)
    XCTAssertEqual(r.status, expect, "gan \(args.joined(separator: " ")) exited \(r.status):\n\(r.stdout)\n\(r.stderr)",
                   file: file, line: line)
    return r
}

/// Python with the packages the interop tests need (tensorboard, torch, safetensors, numpy).
/// Where they are missing the tests are skipped, unless RINGGAN_REQUIRE_INTEROP=1 (scripts/test.sh
/// sets it after installing them), where that is a failure.
public final class InteropSupport {
    public static let python = ProcessInfo.processInfo.environment["RINGGAN_PYTHON"] ?? "python3"
    nonisolated(unsafe) static var checked: [String: String?] = [:]

    /// nil when `modules` import, else why not.
    public static func missing(_ modules: [String]) -> String? {
        let key = modules.joined(separator: ",")
        if let c = checked[key] { return c }
        let r = try? runProcess("/usr/bin/env", [python, "-c", "import " + key], cwd: NSTemporaryDirectory())
        let why: String? = r == nil ? "cannot run \(python)" : r!.status == 0 ? nil : r!.stderr.split(separator: "\n").last.map(String.init) ?? "import failed"
        checked[key] = why
        return why
    }

    public static func require(_ modules: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        guard let why = missing(modules) else { return }
        let msg = "\(python) lacks \(modules.joined(separator: ", ")) (\(why)); bash scripts/test.sh installs them"
        if ProcessInfo.processInfo.environment["RINGGAN_REQUIRE_INTEROP"] == "1" {
            XCTFail(msg, file: file, line: line)
            throw XCTSkip(msg)
        }
        throw XCTSkip(msg)
    }

    /// Runs a script of tools/interop and parses the JSON object it prints last.
    public static func script(_ name: String, _ args: [String], cwd: String, expect: Int32 = 0,
                       file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let path = repoRoot + "/tools/interop/" + name
        let r = try runProcess("/usr/bin/env", [python, path] + args, cwd: cwd)
        XCTAssertEqual(r.status, expect, "\(name) \(args.joined(separator: " ")) exited \(r.status):\n\(r.stdout)\n\(r.stderr)",
                       file: file, line: line)
        guard let last = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            XCTFail("\(name) printed no JSON object:\n\(r.stdout)\n\(r.stderr)", file: file, line: line)
            return [:]
        }
        return obj
    }
}

/// A process running in the background with its standard output and error in one log file, for
/// tests that signal it mid-run and read what it printed.
public final class LoggedProcess {
    public let process: Process
    public let logPath: String

    /// Starts `executable args` in `cwd`, its output into `logPath`.
    public init(_ executable: String, _ args: [String], cwd: String, log logPath: String, env extra: [String: String] = [:]) throws {
        let p = configuredProcess(executable, args, cwd: cwd, env: extra)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let h = FileHandle(forWritingAtPath: logPath)
        p.standardOutput = h
        p.standardError = h
        try p.run()
        process = p
        self.logPath = logPath
    }

    public var pid: Int32 { process.processIdentifier }
    public var text: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds (true) or the process has exited or `seconds` have passed
    /// (false). Polls; the time is only a bound for a hang, never an assertion.
    public func wait(within seconds: Double = 120, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
            usleep(10_000)
        }
        return condition()
    }

    /// Waits until the log contains `needle`.
    public func waitForText(_ needle: String, within seconds: Double = 120) -> Bool { wait(within: seconds) { text.contains(needle) } }

    /// Waits for the exit (up to `seconds`; then kills it) and returns the exit status, nil when
    /// it had to be killed or a signal ended it.
    public func exitStatus(within seconds: Double = 120) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit(); return nil }
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    /// Ends it if it still runs (test teardown).
    public func stop() { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
}

/// Waits for `p` to exit and returns its status (a signal's number when one ended it); the test
/// fails, and the process is ended, when it has not exited within `seconds`.
public func waitForExit(_ p: Process, within seconds: Double, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
        XCTFail("process \(p.processIdentifier) did not exit within \(seconds) s", file: file, line: line)
        p.terminate()
        return nil
    }
    return p.terminationStatus
}

/// Waits up to `seconds` for `path` to exist; the test fails, naming it, when it does not.
public func waitForFile(_ path: String, within seconds: Double, file: StaticString = #filePath, line: UInt = #line) {
    let deadline = Date().addingTimeInterval(seconds)
    while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(20_000) }
    if !FileManager.default.fileExists(atPath: path) {
        XCTFail("\(path) did not appear within \(seconds) s", file: file, line: line)
    }
}

/// A process of `executable args` in `cwd`, not started, with the environment the tests give
/// every child: this one's, OpenBLAS at one thread, then `extra`.
public func configuredProcess(_ executable: String, _ args: [String], cwd: String, env extra: [String: String] = [:]) -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_NUM_THREADS"] = "1"
    for (k, v) in extra { env[k] = v }
    p.environment = env
    return p
}
