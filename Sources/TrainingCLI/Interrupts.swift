import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM during a training run (`gan train`, `gan-coordinator`), as a PyTorch script
/// saves on KeyboardInterrupt. The first one asks the run to stop: it is recorded here, a line on
/// standard error says so at once, and the training loop ends after the step in progress as a
/// time limit ends it (the final sample grid and checkpoint written); the command then prints the
/// command that resumes the run and exits 128 + the signal (130 for SIGINT, 143 for SIGTERM). A
/// second one ends the process at once with that status: the step in progress is lost, the last
/// checkpoint written stays whole (every checkpoint is written to a temporary file and renamed,
/// `AtomicFile`).
public enum Interrupts {
    /// The first signal received (0: none yet).
    static let first = Atomic<Int32>(0)
    /// Signals received so far.
    static let count = Atomic<Int>(0)
    /// The lines the handler writes, made before it is installed (a signal handler may not
    /// allocate); written once, by `install`, before any handler can read them.
    nonisolated(unsafe) static var lines: HandlerLines?

    /// Catches SIGINT and SIGTERM from here on, except one this process was started ignoring
    /// (`nohup`, a background job of a script such as `cluster/local.sh`, whose terminal's Ctrl-C
    /// is the script's to handle), as Python leaves such a SIGINT alone. `stopping` says what the
    /// run does now, for the line the first signal prints ("finishing the current step, ...").
    public static func install(program: String, stopping: String) {
        lines = HandlerLines(program: program, stopping: stopping)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = interruptHandler
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for signal in [SIGINT, SIGTERM] {
            var old = sigaction()
            sigaction(signal, nil, &old)
            if unsafeBitCast(old.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            sigaction(signal, &action, nil)
        }
    }

    /// The first SIGINT or SIGTERM received since `install`, nil while none.
    public static var received: Int32? {
        let s = first.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }

    /// The exit status of a process that stopped because of `signal`: 128 + its number, as a
    /// shell reports a process the signal ended (130 for SIGINT, 143 for SIGTERM).
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }

    /// Prints, on standard error, the command that resumes the run in `runPath`
    /// (`RunFlags.resumeCommand`).
    public static func printResumeCommand(runPath: String) {
        FileHandle.standardError.write(Data("to resume: \(RunFlags.resumeCommand(runPath: runPath))\n".utf8))
    }

    /// `SIGINT`, `SIGTERM`, or the signal's number.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }
}

/// The handler's lines, each a buffer of bytes for write(2).
struct HandlerLines {
    struct Line {
        let bytes: UnsafeMutablePointer<UInt8>
        let count: Int
        init(_ s: String) {
            let a = Array(s.utf8)
            bytes = .allocate(capacity: a.count)
            bytes.initialize(from: a, count: a.count)
            count = a.count
        }
        func write() { _ = Glibc.write(2, bytes, count) }
    }
    let firstInterrupt: Line, firstTerminate: Line, second: Line

    init(program: String, stopping: String) {
        firstInterrupt = Line("\n\(program): interrupted (SIGINT): \(stopping); press Ctrl-C again to stop at once\n")
        firstTerminate = Line("\n\(program): terminated (SIGTERM): \(stopping); a second SIGTERM or SIGINT stops at once\n")
        second = Line("\n\(program): stopping at once (a second signal): the step in progress is lost; the last checkpoint written is kept\n")
    }
}

/// The first signal is recorded and announced; a second one ends the process. Only
/// async-signal-safe work here: atomics, write(2), _exit(2).
private func interruptHandler(_ signal: Int32) {
    let n = Interrupts.count.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
    if n == 1 {
        Interrupts.first.store(signal, ordering: .sequentiallyConsistent)
        if let l = Interrupts.lines { (signal == SIGTERM ? l.firstTerminate : l.firstInterrupt).write() }
    } else {
        Interrupts.lines?.second.write()
        _exit(Interrupts.exitStatus(signal))
    }
}

extension RunFlags {
    /// The command that resumes the run in `runPath`: this process's command line (`arguments`)
    /// with `--resume auto`, and `--runs-dir` and `--name` naming the run folder (in place of any
    /// `--resume`, `--runs-dir` or `--name` given), each word quoted for a POSIX shell where it
    /// needs it.
    public static func resumeCommand(runPath: String, arguments: [String] = CommandLine.arguments) -> String {
        let replaced: Set<String> = ["--resume", "--runs-dir", "--name"]
        var kept: [String] = []
        var i = arguments.startIndex
        while i < arguments.endIndex {
            let a = arguments[i]
            if replaced.contains(a) { i += 2; continue }
            if let eq = a.firstIndex(of: "="), replaced.contains(String(a[..<eq])) { i += 1; continue }
            kept.append(a)
            i += 1
        }
        // (Split by hand: NSString's deletingLastPathComponent traps on "." in corelibs-foundation.)
        var trimmed = Substring(runPath)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let slash = trimmed.lastIndex(of: "/")
        let name = slash.map { String(trimmed[trimmed.index(after: $0)...]) } ?? String(trimmed)
        let runsDir = slash.map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        kept += ["--runs-dir", runsDir, "--name", name, "--resume", RunStart.auto]
        return kept.map(shellQuoted).joined(separator: " ")
    }
}

/// `word` as a POSIX shell reads it back: unchanged when it holds only characters no shell
/// treats specially, else in single quotes.
func shellQuoted(_ word: String) -> String {
    let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%")
    if !word.isEmpty && word.allSatisfy(plain.contains) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}
