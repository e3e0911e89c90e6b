import Foundation
import Synchronization

/// Where RingGAN's data lives (the 5,000 digits `mnist-5k`, trained classifiers), wherever a
/// command runs. The first of these that holds `mnist-5k`:
/// 1. `$RINGGAN_DATA` (used as given, even when it is empty of data: the user chose it);
/// 2. `./data`, relative to the current directory (the repository root);
/// 3. the data of an installation: `<prefix>/share/ringgan/data` for `<prefix>/bin/gan`
///    (`scripts/install.sh` puts it there);
/// 4. the `data` folder of the source tree the executable was built in (`<repo>/.build/...`);
/// 5. the per-user folder `~/.local/share/ringgan/data` (`$XDG_DATA_HOME/ringgan/data`).
/// With none of them holding data, `./data`, so that set-up can fill it and errors name it.
public enum DataRoot {
    /// The data folder for this process.
    public static var path: String {
        resolve(environment: environment, currentDirectory: FileManager.default.currentDirectoryPath,
                executable: executablePath)
    }

    /// The folders looked at, in order (for error messages).
    public static var searched: [String] {
        candidates(environment: environment, currentDirectory: FileManager.default.currentDirectoryPath,
                   executable: executablePath)
    }

    /// The variables that choose where files live (`RINGGAN_DATA`, `RINGGAN_CACHE`, `HOME`,
    /// `XDG_DATA_HOME`, `XDG_CACHE_HOME`), as the executable read them at start-up
    /// (`ProcessEnvironment`): the libraries never read the environment themselves. Empty
    /// until set, so a library user's process looks in `./data` and beside its executable.
    public static var environment: [String: String] {
        get { locations.withLock { $0 } }
        set { locations.withLock { $0 = newValue } }
    }
    /// The names `environment` keeps.
    public static let variables = ["RINGGAN_DATA", "RINGGAN_CACHE", "HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"]
    private static let locations = Mutex<[String: String]>([:])

    static var executablePath: String? { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") }

    static func candidates(environment env: [String: String], currentDirectory cwd: String, executable: String?) -> [String] {
        var out: [String] = [(cwd as NSString).appendingPathComponent("data")]
        if let exe = executable {
            var dir = (exe as NSString).deletingLastPathComponent
            if (dir as NSString).lastPathComponent == "bin" {
                out.append(((dir as NSString).deletingLastPathComponent as NSString).appendingPathComponent("share/ringgan/data"))
            }
            // <repo>/.build/<triple>/<config>/gan: the source tree's data folder.
            for _ in 0..<4 {
                dir = (dir as NSString).deletingLastPathComponent
                if dir == "/" || dir.isEmpty { break }
                if (dir as NSString).lastPathComponent.hasPrefix(".build") {
                    out.append(((dir as NSString).deletingLastPathComponent as NSString).appendingPathComponent("data"))
                    break
                }
            }
        }
        let dataHome = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? env["HOME"].map { ($0 as NSString).appendingPathComponent(".local/share") }
        if let d = dataHome { out.append((d as NSString).appendingPathComponent("ringgan/data")) }
        return out
    }

    static func resolve(environment env: [String: String], currentDirectory cwd: String, executable: String?) -> String {
        if let v = env["RINGGAN_DATA"], !v.isEmpty { return v }
        let all = candidates(environment: env, currentDirectory: cwd, executable: executable)
        for c in all where FileManager.default.fileExists(atPath: (c as NSString).appendingPathComponent("mnist-5k")) {
            return c
        }
        return all[0]
    }
}
