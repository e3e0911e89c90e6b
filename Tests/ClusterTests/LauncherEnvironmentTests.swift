import XCTest
@testable import Cluster

/// The launcher conventions gan-worker reads (torchrun, OpenMPI, Slurm) and the Slurm node-list expansion.
final class LauncherEnvironmentTests: XCTestCase {
    typealias L = LauncherEnvironment

    func testNodelistExpansion() throws {
        XCTAssertEqual(try L.expandNodelist("node[01-04],gpu7"), ["node01", "node02", "node03", "node04", "gpu7"])
        XCTAssertEqual(try L.expandNodelist("gpu7"), ["gpu7"])
        XCTAssertEqual(try L.expandNodelist("n[1-3,7],m[08-10]"), ["n1", "n2", "n3", "n7", "m08", "m09", "m10"])
        XCTAssertEqual(try L.expandNodelist("rack[1-2]-n[1-2]"), ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"])
        XCTAssertEqual(try L.expandNodelist("a,b[9-11].cluster"), ["a", "b9.cluster", "b10.cluster", "b11.cluster"])
        XCTAssertEqual(try L.expandNodelist("x[5]"), ["x5"])
        XCTAssertEqual(try L.expandNodelist("node-1,node-2"), ["node-1", "node-2"])
        for bad in ["", ",", "node[01-04", "node01-04]", "n[4-1]", "n[a-b]", "n[1-2-3]", "n[1,,2]", "n[[1]]", "n[]"] {
            XCTAssertThrowsError(try L.expandNodelist(bad), "'\(bad)' should be refused")
        }
    }

    func testTorchrunVariables() throws {
        let l = try L.resolve(environment: ["RANK": "2", "WORLD_SIZE": "4", "MASTER_ADDR": "coordinator", "MASTER_PORT": "29511"])
        XCTAssertEqual(l, L(launcher: "torchrun", rank: 2, worldSize: 4, coordinatorHost: "coordinator",
                            coordinatorPort: 29511, coordinatorSource: "MASTER_ADDR"))
        let d = try L.resolve(environment: ["RANK": "0"])
        XCTAssertEqual([d.coordinatorHost, "\(d.coordinatorPort)", d.coordinatorSource], ["127.0.0.1", "29500", "default"])
    }

    func testOpenMPIVariables() throws {
        let env = ["OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "3",
                   "RINGGAN_COORDINATOR": "10.0.0.5:29600"]
        XCTAssertEqual(try L.resolve(environment: env),
                       L(launcher: "openmpi", rank: 3, worldSize: 4, coordinatorHost: "10.0.0.5",
                         coordinatorPort: 29600, coordinatorSource: "RINGGAN_COORDINATOR"))
        // mpirun inside a Slurm allocation: OpenMPI's own rank, not the batch step's SLURM_PROCID.
        let nested = try L.resolve(environment: env.merging(["SLURM_PROCID": "0", "SLURM_NTASKS": "1",
                                                            "SLURM_JOB_NODELIST": "node[01-02]"]) { a, _ in a })
        XCTAssertEqual([nested.launcher, "\(nested.rank)", "\(nested.worldSize ?? -1)"], ["openmpi", "3", "4"])
        // A bare host in RINGGAN_COORDINATOR takes the default port.
        XCTAssertEqual(try L.resolve(environment: ["OMPI_COMM_WORLD_RANK": "0", "RINGGAN_COORDINATOR": "head"]).coordinatorPort, 29500)
    }

    func testSlurmVariables() throws {
        let env = ["SLURM_PROCID": "1", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "node[07-10],gpu7", "SLURM_NODELIST": "other1"]
        XCTAssertEqual(try L.resolve(environment: env),
                       L(launcher: "slurm", rank: 1, worldSize: 4, coordinatorHost: "node07",
                         coordinatorPort: 29500, coordinatorSource: "SLURM_JOB_NODELIST"))
        var e = env
        e["SLURM_JOB_NODELIST"] = nil
        e["MASTER_PORT"] = "30000"
        let l = try L.resolve(environment: e)
        XCTAssertEqual([l.coordinatorHost, "\(l.coordinatorPort)", l.coordinatorSource], ["other1", "30000", "SLURM_NODELIST"])
        // An explicit address beats the node list; MASTER_ADDR beats both; the flag beats everything.
        e["RINGGAN_COORDINATOR"] = "login1:29555"
        XCTAssertEqual(try L.resolve(environment: e).coordinatorHost, "login1")
        e["MASTER_ADDR"] = "head"
        XCTAssertEqual(try L.resolve(environment: e).coordinatorHost, "head")
        XCTAssertEqual(try L.resolve(coordinator: "flaghost:1234", environment: e).coordinatorHost, "flaghost")
    }

    func testPrecedenceAndErrors() throws {
        // --rank beats every variable; torchrun's RANK beats OpenMPI's and Slurm's.
        XCTAssertEqual(try L.resolve(rank: 5, environment: ["RANK": "1", "WORLD_SIZE": "8"]).rank, 5)
        XCTAssertEqual(try L.resolve(rank: 5, environment: ["RANK": "1"]).launcher, "flag")
        let all = try L.resolve(environment: ["RANK": "1", "OMPI_COMM_WORLD_RANK": "2", "SLURM_PROCID": "3"])
        XCTAssertEqual([all.launcher, "\(all.rank)"], ["torchrun", "1"])
        XCTAssertThrowsError(try L.resolve(environment: [:]))                                        // no rank at all
        XCTAssertThrowsError(try L.resolve(environment: ["RANK": "x"]))
        XCTAssertThrowsError(try L.resolve(environment: ["OMPI_COMM_WORLD_RANK": "4", "OMPI_COMM_WORLD_SIZE": "4"]))
        XCTAssertThrowsError(try L.resolve(environment: ["SLURM_PROCID": "-1"]))
        XCTAssertThrowsError(try L.resolve(environment: ["RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "70000"]))
        XCTAssertThrowsError(try L.resolve(environment: ["RANK": "0", "RINGGAN_COORDINATOR": "h:"]))
        XCTAssertThrowsError(try L.resolve(environment: ["SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n[1-"]))
        XCTAssertThrowsError(try L.resolve(coordinator: "nohostport:", environment: ["RANK": "0"]))
    }
}
