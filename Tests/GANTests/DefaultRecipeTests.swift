import Foundation
import TestSupport
import XCTest

/// The recipe suite (`bash scripts/recipe-test.sh`; the normal suite skips this class): every model's
/// default recipe, typed as a user types it (`gan train --model X`, nothing else but the step
/// count), trained on the real digits by the release binary for 300 steps, must give a final
/// grid whose images vary with the latent, the spread across its 64 latents (per-pixel standard
/// deviation, the TensorBoard scalar `samples/latent_spread`) above 0.08. The tutorial's StyleGAN
/// settings, the default before issue 27 that drew one shape for every latent, are kept as the
/// control that must fall under the same bound at the same step: without it the bound could be
/// one that a collapsed run passes. (2026-12-07: the control 0.051 at step 300, the working
/// recipes 0.12-0.17; bench/collapse_check.py has the per-step figures.)
final class DefaultRecipeTests: XCTestCase {
    struct MissingBinary: Error, CustomStringConvertible { let description: String }

    static let steps = 300
    static let bound: Float = 0.08

    /// The release `gan` (RINGGAN_RELEASE_BIN, else .build/release/gan); the recipe suite is off
    /// unless RINGGAN_SLOW=1.
    func releaseGan() throws -> String {
        let env = ProcessInfo.processInfo.environment
        guard env["RINGGAN_SLOW"] == "1" else {
            throw XCTSkip("the recipe suite: run it with bash scripts/recipe-test.sh (RINGGAN_SLOW=1, release build)")
        }
        let path = env["RINGGAN_RELEASE_BIN"] ?? repoRoot + "/.build/release/gan"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingBinary(description: "no release gan at \(path): build it with swift build -c release --product gan")
        }
        return path
    }

    /// Trains `args` for `steps` steps in a fresh folder and returns the spread of each grid
    /// (step, spread), read from the debug log line of each grid written.
    func spreads(_ args: [String], name: String) throws -> [(step: Int, spread: Float)] {
        let gan = try releaseGan()
        let work = try makeTempDir(self)
        let r = try runProcess(gan, ["train"] + args + ["--steps", "\(DefaultRecipeTests.steps)", "--sample-every", "100",
                                     "--checkpoint-every", "0", "--runs-dir", work, "--name", name, "--log-level", "debug",
                                     "--data", mnistFolder],
                               cwd: work, timeout: 900)
        XCTAssertEqual(r.status, 0, "gan train \(args.joined(separator: " ")):\n\(r.both.suffix(3000))")
        var out: [(Int, Float)] = []
        for line in r.both.split(separator: "\n") where line.contains("sample grid written") {
            guard let s = field(line, "step"), let step = Int(s), let v = field(line, "latent_spread"), let f = Float(v) else { continue }
            out.append((step, f))
        }
        print("\(name): \(args.joined(separator: " ")): spreads \(out.map { "\($0.0): \($0.1)" }.joined(separator: ", "))")
        XCTAssertEqual(out.last?.0, DefaultRecipeTests.steps, "\(name): no grid at the last step in:\n\(r.both.suffix(2000))")
        return out
    }

    /// The value of `key=value` in a log line (values end at a space; quotes are dropped).
    func field(_ line: Substring, _ key: String) -> String? {
        guard let r = line.range(of: " \(key)=") else { return nil }
        return String(line[r.upperBound...].prefix { $0 != " " }).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
    }

    func assertVaries(_ args: [String], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try spreads(args, name: name)
        guard let last = s.last else { return }
        XCTAssertGreaterThan(last.spread, DefaultRecipeTests.bound,
                             "\(name): after \(last.step) steps the samples barely depend on the latent (spread \(last.spread))", file: file, line: line)
    }

    func testDefaultStyleGANVaries() throws { try assertVaries(["--model", "stylegan"], "stylegan") }
    func testDefaultDCGANVaries() throws { try assertVaries(["--model", "dcgan"], "dcgan") }
    func testDefaultMLPVaries() throws { try assertVaries(["--model", "mlp"], "mlp") }
    func testDefaultSNDCGANVaries() throws { try assertVaries(["--model", "sndcgan"], "sndcgan") }
    func testDefaultProgressiveDCGANVaries() throws { try assertVaries(["--model", "dcgan", "--progressive"], "dcgan-progressive") }

    /// The control: the tutorial's StyleGAN settings collapse, and fall under the bound.
    func testTheTutorialStyleGANSettingsFallUnderTheBound() throws {
        let s = try spreads(["--model", "stylegan", "--mapping-layers", "8", "--style-mixing-prob", "0.5", "--ngf", "64", "--ndf", "64",
                             "--batch", "64", "--lr", "2e-4", "--g-ema", "0"], name: "stylegan-tutorial")
        guard let last = s.last else { return }
        XCTAssertLessThan(last.spread, DefaultRecipeTests.bound,
                          "the collapsed recipe passes the bound (spread \(last.spread)): the bound no longer tells collapse from variety")
    }
}
