import Foundation

/// Where a worker's rank, world size and coordinator address come from when no flag gives them:
/// the environment that the launcher running it sets. Read in this order, the first found wins:
///
/// - torchrun / Kubeflow PyTorchJob / docker-compose: `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`;
/// - OpenMPI's `mpirun`: `OMPI_COMM_WORLD_RANK`, `OMPI_COMM_WORLD_SIZE` (mpirun does not name a
///   coordinator: pass `--coordinator`, `-x MASTER_ADDR`, or `RINGGAN_COORDINATOR`);
/// - Slurm's `srun`: `SLURM_PROCID`, `SLURM_NTASKS`, and as the coordinator the first host of
///   `SLURM_JOB_NODELIST` (else `SLURM_NODELIST`; bracket forms such as `node[01-04],gpu7` are
///   expanded) on `MASTER_PORT`, else 29500.
///
/// `RINGGAN_COORDINATOR=host:port` names the coordinator explicitly under any launcher (before the
/// Slurm node list, after `MASTER_ADDR`). An `mpirun` inside a Slurm allocation sets both kinds
/// of variable; its own (OpenMPI's) rank is the one read, as the order above says.
public struct LauncherEnvironment: Equatable, Sendable {
    /// Which convention gave the rank ("flag", "torchrun", "openmpi", "slurm").
    public var launcher: String
    public var rank: Int
    /// The number of workers the launcher started, if it says.
    public var worldSize: Int?
    public var coordinatorHost: String
    public var coordinatorPort: UInt16
    /// Which setting gave the coordinator address ("flag", "MASTER_ADDR", "RINGGAN_COORDINATOR",
    /// "SLURM_JOB_NODELIST", "SLURM_NODELIST", "default").
    public var coordinatorSource: String

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(_ d: String) { description = d }
    }

    public static let defaultPort: UInt16 = 29500
    /// The coordinator's address when nothing names one: this machine's loopback.
    public static let defaultHost = "127.0.0.1"


    /// `MASTER_PORT` as a port (nil when unset or empty); anything else is an error naming it, in

    /// the worker and the coordinator alike.

    public static func masterPort(_ env: [String: String]) throws -> UInt16? {

        guard let p = env["MASTER_PORT"], !p.isEmpty else { return nil }

        guard let v = UInt16(p), v > 0 else { throw Problem("MASTER_PORT='\(p)' is not a port") }

        return v

    }

    /// Resolves rank and coordinator from the flags given (nil: not given) and `env`.
    public static func resolve(rank flagRank: Int? = nil, coordinator flagCoordinator: String? = nil,
                               environment env: [String: String]) throws -> LauncherEnvironment {
        func int(_ name: String) throws -> Int? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            guard let i = Int(v) else { throw Problem("\(name)='\(v)' is not an integer") }
            return i
        }
        // Rank and world size: one convention, both from it.
        var launcher = "flag"
        var rank = flagRank
        var world: Int?
        for (name, rankVar, sizeVar) in [("torchrun", "RANK", "WORLD_SIZE"),
                                         ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                                         ("slurm", "SLURM_PROCID", "SLURM_NTASKS")] {
            guard let r = try int(rankVar) else { continue }
            if rank == nil { rank = r; launcher = name }
            world = try int(sizeVar)
            break
        }
        guard let r = rank else {
            throw Problem("no rank: pass --rank, or start the worker under a launcher that sets RANK (torchrun), "
                + "OMPI_COMM_WORLD_RANK (mpirun) or SLURM_PROCID (srun)")
        }
        guard r >= 0 else { throw Problem("rank \(r) is negative") }
        if let w = world {
            guard w >= 1 else { throw Problem("world size \(w) is not positive") }
            if launcher != "flag" && r >= w { throw Problem("rank \(r) is not below the world size \(w) (\(launcher))") }
        }

        // The coordinator.
        let port = try masterPort(env) ?? defaultPort
        let host: String, cport: UInt16, source: String
        if let c = flagCoordinator {
            (host, cport) = try address(c, what: "--coordinator")
            source = "flag"
        } else if let a = env["MASTER_ADDR"], !a.isEmpty {
            (host, cport, source) = (a, port, "MASTER_ADDR")
        } else if let c = env["RINGGAN_COORDINATOR"], !c.isEmpty {
            (host, cport) = try address(c, what: "RINGGAN_COORDINATOR")
            source = "RINGGAN_COORDINATOR"
        } else if let (name, list) = ["SLURM_JOB_NODELIST", "SLURM_NODELIST"].lazy
                    .compactMap({ n in env[n].flatMap { $0.isEmpty ? nil : (n, $0) } }).first {
            guard let first = try expandNodelist(list).first else { throw Problem("\(name) is empty") }
            (host, cport, source) = (first, port, name)
        } else {
            (host, cport, source) = (defaultHost, port, "default")
        }
        return LauncherEnvironment(launcher: launcher, rank: r, worldSize: world,
                                   coordinatorHost: host, coordinatorPort: cport, coordinatorSource: source)
    }

    /// "host:port", or a bare host (port 29500).
    static func address(_ s: String, what: String) throws -> (String, UInt16) {
        if let colon = s.lastIndex(of: ":") {
            let h = String(s[..<colon]), p = s[s.index(after: colon)...]
            guard !h.isEmpty, let v = UInt16(p), v > 0 else { throw Problem("\(what) '\(s)' is not host:port") }
            return (h, v)
        }
        guard !s.isEmpty else { throw Problem("\(what) is empty") }
        return (s, defaultPort)
    }

    /// Expands a Slurm host list: `node[01-04],gpu7` -> node01 node02 node03 node04 gpu7;
    /// `n[1-3,7]`, `rack[1-2]-n[1-2]` (every combination, leftmost slowest), zero padding kept
    /// from the range's start (`[08-10]` -> 08 09 10).
    public static func expandNodelist(_ list: String) throws -> [String] {
        var hosts: [String] = []
        for item in try splitTopLevel(list) where !item.isEmpty {
            hosts += try expandItem(Substring(item))
        }
        guard !hosts.isEmpty else { throw Problem("node list '\(list)' names no host") }
        return hosts
    }

    private static func splitTopLevel(_ s: String) throws -> [String] {
        var parts: [String] = [], current = "", depth = 0
        for ch in s {
            switch ch {
            case "[": depth += 1; guard depth == 1 else { throw Problem("node list '\(s)': nested '['") }
            case "]": depth -= 1; guard depth == 0 else { throw Problem("node list '\(s)': ']' without '['") }
            case "," where depth == 0: parts.append(current); current = ""; continue
            case " ", "\t", "\n": guard depth == 0 else { throw Problem("node list '\(s)': space inside brackets") }
                continue
            default: break
            }
            current.append(ch)
        }
        guard depth == 0 else { throw Problem("node list '\(s)': '[' without ']'") }
        parts.append(current)
        return parts
    }

    private static func expandItem(_ item: Substring) throws -> [String] {
        guard let open = item.firstIndex(of: "[") else { return [String(item)] }
        guard let close = item[open...].firstIndex(of: "]") else { throw Problem("'\(item)': '[' without ']'") }
        let prefix = String(item[..<open])
        let rest = try expandItem(item[item.index(after: close)...])
        var out: [String] = []
        for piece in item[item.index(after: open)..<close].split(separator: ",", omittingEmptySubsequences: false) {
            for n in try expandRange(piece, in: item) {
                for r in rest { out.append(prefix + n + r) }
            }
        }
        return out
    }

    private static func expandRange(_ piece: Substring, in item: Substring) throws -> [String] {
        let bounds = piece.split(separator: "-", omittingEmptySubsequences: false)
        let digits: (Substring) -> Bool = { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        switch bounds.count {
        case 1 where digits(bounds[0]):
            return [String(bounds[0])]
        case 2 where digits(bounds[0]) && digits(bounds[1]):
            guard let lo = Int(bounds[0]), let hi = Int(bounds[1]), lo <= hi else {
                throw Problem("'\(item)': range \(piece) runs backwards")
            }
            guard hi - lo < 100_000 else { throw Problem("'\(item)': range \(piece) is too long") }
            let width = bounds[0].count
            return (lo...hi).map { n in
                let s = String(n)
                return s.count < width ? String(repeating: "0", count: width - s.count) + s : s
            }
        default:
            throw Problem("'\(item)': '\(piece)' is not a number or a range a-b")
        }
    }
}
