import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// MPI at run time: `prune mpi-check` under `mpirun` (2 and 3 ranks), the error for a library that
/// does not load, the launcher detection, and the Communicator helpers. The mpirun tests skip when
/// `mpirun` is not on PATH, or fail when `CI` is set.
@Suite(.serialized) struct MPITests {
    // MARK: - Under mpirun

    @Test(.requiresMPIRun, arguments: [2, 3])
    func mpiCheckPassesUnderMPIRun(ranks: Int) throws {
        let r = try Self.mpirun(ranks, ["mpi-check"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").filter { $0.hasSuffix(", sum and all-gather ok") }
        #expect(lines.count == 1, "rank 0 alone prints the result; stdout: \(r.stdout)")
        let line = try #require(lines.first.map(String.init))
        let prefix = "mpi-check: \(ranks) ranks, "
        #expect(line.hasPrefix(prefix), "\(line)")
        let implementation = line.dropFirst(prefix.count).dropLast(", sum and all-gather ok".count)
        #expect(!implementation.isEmpty && implementation != "one process", "\(line)")
        #expect(r.stdout.contains("mpi-check: \(implementation) (loaded "), "\(r.stdout)")
    }

    @Test(.requiresMPIRun, arguments: ["/nonexistent/libmpi-bogus.so.40", "libc.so.6"])
    func aLibraryThatIsNotMPIUnderMPIRunIsAClearError(library: String) throws {
        let r = try Self.mpirun(2, ["mpi-check"], environment: ["PRUNE_MPI_LIBRARY": library])
        #expect(r.status != 0)
        #expect(r.stderr.contains("prune: error: prune was started by mpirun but no MPI library could be loaded (tried PRUNE_MPI_LIBRARY=\(library) alone: "), "\(r.stderr)")
        #expect(r.stderr.contains("set PRUNE_MPI_LIBRARY to the path of libmpi"), "\(r.stderr)")
        if library.hasPrefix("/") {
            #expect(r.stderr.contains("\(library): cannot open shared object file"), "\(r.stderr)")
        } else {
            #expect(r.stderr.contains("\(library) was loaded but has no MPI_Initialized, so it is not an MPI library"), "\(r.stderr)")
        }
    }

    // MARK: - Without mpirun

    @Test func mpiCheckRunsAsOneProcessWithoutMPIRun() throws {
        let prune = try #require(WorkingDirectoryTests.prune, "the prune executable is not beside the test bundle")
        let r = try Self.run(prune, ["mpi-check"], environment: [:])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("running as one process (SingleProcess)"), "\(r.stdout)")
        #expect(r.stdout.contains("mpi-check: 1 rank, one process, sum and all-gather ok"), "\(r.stdout)")
    }

    @Test func launchedByMPIReadsTheLaunchersVariables() {
        #expect(!MPICommunicator.launchedByMPI([:]))
        #expect(!MPICommunicator.launchedByMPI(["OMPI_MCA_btl": "self", "PATH": "/usr/bin", "PMI": "1"]))
        for name in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"] {
            #expect(MPICommunicator.launchedByMPI([name: "0"]), "\(name)")
        }
    }

    @Test func loadErrorsSayWhatToDo() {
        let none = MPICommunicator.loadError("libmpi.so.40: cannot open shared object file", env: ["OMPI_COMM_WORLD_SIZE": "2"])
        #expect(none.message == "prune was started by mpirun but no MPI library could be loaded (tried libmpi.so.40: cannot open shared object file); install Open MPI (Debian: apt-get install openmpi-bin) or set PRUNE_MPI_LIBRARY to libmpi's path")
        let set = MPICommunicator.loadError("/x.so: cannot open shared object file", env: ["PRUNE_MPI_LIBRARY": "/x.so"])
        #expect(set.message.hasPrefix("no MPI library could be loaded (tried PRUNE_MPI_LIBRARY=/x.so alone: /x.so: cannot open"), "\(set.message)")
    }

    @Test func implementationIsTheFirstLineOfTheLibraryVersion() {
        #expect(MPICommunicator.name(ofVersion: "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022") == "Open MPI v4.1.4")
        #expect(MPICommunicator.name(ofVersion: "MPICH Version:\t4.0.2\nMPICH Release date:\tThu Apr  7 12:34:45 CDT 2022\n") == "MPICH Version: 4.0.2")
        #expect(MPICommunicator.name(ofVersion: "") == "MPI (no library version)")
    }

    // MARK: - Communicator helpers

    @Test func sharesCoverTheItemsInRankOrder() {
        for size in 1...7 {
            for count in 0...30 {
                let shares = (0..<size).map { SingleProcess.share(of: count, rank: $0, size: size) }
                #expect(shares.flatMap { Array($0) } == Array(0..<count), "count \(count), size \(size)")
                let lengths = shares.map(\.count)
                #expect(lengths.max()! - lengths.min()! <= 1 && lengths == lengths.sorted(by: >), "\(lengths)")
            }
        }
    }

    @Test func singleProcessCollectivesAreTheIdentity() throws {
        let one = SingleProcess()
        var values = [1.5, -2.25, 0, .greatestFiniteMagnitude]
        try one.sum(&values)
        #expect(values == [1.5, -2.25, 0, .greatestFiniteMagnitude])
        var floats: [Float] = [0.1, 3]
        try floats.withUnsafeMutableBufferPointer { try one.sum($0.baseAddress!, count: $0.count) }
        #expect(floats == [0.1, 3])
        #expect(try one.sum(0.1) == 0.1 && one.sum(7) == 7)
        #expect(try one.allGather([1, 2, 3] as [UInt8]) == [[1, 2, 3]])
        #expect(try one.allGather("a") == ["a"])
        #expect(one.share(of: 5) == 0..<5 && !one.isDistributed)
        try one.barrier()
    }

    // MARK: - Running prune

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// `mpirun --allow-run-as-root --oversubscribe -np N prune ARGS`, with `environment` added.
    static func mpirun(_ ranks: Int, _ args: [String], environment: [String: String] = [:], timeout: Double = 120) throws -> Output {
        let mpirun = try #require(MPIRun.path, "mpirun is not on PATH")
        let prune = try #require(WorkingDirectoryTests.prune, "the prune executable is not beside the test bundle")
        return try run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "\(ranks)", prune] + args, environment: environment,
                       timeout: timeout)
    }

    /// Runs `executable` with this process's environment without the launcher variables and
    /// PRUNE_MPI_LIBRARY, plus `environment`; ends it after `timeout` seconds.
    static func run(_ executable: String, _ args: [String], environment: [String: String], timeout: Double = 120) throws -> Output {
        var env = ProcessInfo.processInfo.environment
        for name in MPICommunicator.launcherVariables + ["PRUNE_MPI_LIBRARY"] { env.removeValue(forKey: name) }
        env.merge(environment) { _, new in new }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = env
        let out = Pipe(), err = Pipe(), o = Collected(), e = Collected()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let reads = DispatchGroup()
        DispatchQueue.global().async(group: reads) { o.data = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: reads) { e.data = err.fileHandleForReading.readDataToEndOfFile() }
        let finished = reads.wait(timeout: .now() + timeout) == .success
        if !finished { p.terminate() }
        p.waitUntilExit()
        _ = reads.wait(timeout: .now() + 10)
        #expect(finished, "\(executable) \(args.joined(separator: " ")) did not end within \(timeout) s")
        return Output(status: p.terminationStatus, stdout: String(decoding: o.data, as: UTF8.self), stderr: String(decoding: e.data, as: UTF8.self))
    }

    final class Collected: @unchecked Sendable { var data = Data() }
}

/// The `mpirun` on PATH.
enum MPIRun {
    static let path: String? = {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        return folders.map { "\($0)/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

/// The error that fails an MPI test in CI when mpirun is missing.
struct MissingMPIRun: Error, CustomStringConvertible {
    var description: String {
        "Open MPI is missing: mpirun is not on PATH; install it (Debian: apt-get install openmpi-bin libopenmpi-dev) (CI is set, so a missing mpirun fails the test instead of skipping it)"
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test when `mpirun` is on PATH. When it is not, the test is skipped, or, when the
    /// environment variable `CI` is set, fails saying that Open MPI is missing.
    static var requiresMPIRun: Self {
        .enabled("needs mpirun (Open MPI: apt-get install openmpi-bin libopenmpi-dev)") {
            if MPIRun.path != nil { return true }
            if Repository.inCI { throw MissingMPIRun() }
            return false
        }
    }
}
