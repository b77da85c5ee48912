import CMPI
import Foundation

/// The ranks of a run started by `mpirun`, through the MPI library found at run time: CMPI dlopens
/// libmpi (Open MPI or the MPICH ABI), so nothing links against MPI. MPI is initialized once per
/// process, by the first `init()`, and ended by `finalize()`.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    /// The first line of MPI_Get_library_version up to its first comma ("Open MPI v4.1.4").
    public let implementation: String
    /// The library that was loaded: a name ("libmpi.so.40") or $PRUNE_MPI_LIBRARY.
    public let library: String

    /// Environment variables of which launchers set at least one in every rank: Open MPI's mpirun,
    /// PMIx, MPICH's Hydra and Slurm's PMI.
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"]

    /// Whether this process was started by an MPI launcher (one of `launcherVariables` is set).
    public static func launchedByMPI(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        launcherVariables.contains { env[$0] != nil }
    }

    /// Loads libmpi and runs MPI_Init, on the first call in the process; later calls share it.
    public init() throws {
        let s = try Self.started.get()
        try Self.checkNotFinalized()
        (rank, size, implementation, library) = (s.rank, s.size, s.implementation, s.library)
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try Self.checkNotFinalized()
        var counts = [Int64](repeating: 0, count: size)
        let rc = prune_mpi_allgather_counts(Int64(bytes.count), &counts)
        if rc == PRUNE_MPI_ERR_TOO_LARGE { throw Self.tooLarge(counts) }
        try Self.check(rc, "MPI_Allgather of the byte counts")
        let total = Int(counts.reduce(0, +))
        let all = try [UInt8](unsafeUninitializedCapacity: total) { buffer, n in
            let rc = bytes.withUnsafeBytes { prune_mpi_allgatherv($0.baseAddress, Int64(bytes.count), counts, buffer.baseAddress) }
            try Self.check(rc, "MPI_Allgatherv")
            n = total
        }
        var start = 0
        return counts.map { c in
            defer { start += Int(c) }
            return Array(all[start..<(start + Int(c))])
        }
    }

    public func barrier() throws {
        try Self.checkNotFinalized()
        try Self.check(prune_mpi_barrier(), "MPI_Barrier")
    }

    public func abort(code: Int32) -> Never {
        fflush(stdout)
        _ = prune_mpi_abort(code)
        exit(code)
    }

    /// MPI_Finalize, once; call it on every rank after the last collective. Later collectives throw.
    public func finalize() throws {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        guard !Self.finalized else { return }
        Self.finalized = true
        try Self.check(prune_mpi_finalize(), "MPI_Finalize")
    }

    // MARK: - Process-wide state

    private struct Started: Sendable {
        var rank: Int, size: Int, implementation: String, library: String
    }

    /// The one load and MPI_Init of this process (a static let runs once).
    private static let started = Result<Started, Error> { try start() }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var finalized = false

    private static func start() throws -> Started {
        var err = [CChar](repeating: 0, count: 8192)
        guard prune_mpi_load(&err, err.count) == 0 else { throw loadError(string(err)) }
        try check(prune_mpi_init(), "MPI_Init")
        var r: Int32 = 0, n: Int32 = 0
        try check(prune_mpi_rank(&r), "MPI_Comm_rank")
        try check(prune_mpi_size(&n), "MPI_Comm_size")
        var version = [CChar](repeating: 0, count: 8192)
        try check(prune_mpi_library_version(&version, version.count), "MPI_Get_library_version")
        return Started(rank: Int(r), size: Int(n), implementation: name(ofVersion: string(version)),
                       library: String(cString: prune_mpi_library_path()))
    }

    /// "Open MPI v4.1.4" from "Open MPI v4.1.4, package: ...\n...": the first line up to its first
    /// comma, runs of white space as one space.
    static func name(ofVersion version: String) -> String {
        let line = version.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let head = line.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let words = head.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return words.isEmpty ? "MPI (no library version)" : words
    }

    private static func string(_ chars: [CChar]) -> String {
        chars.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private static func checkNotFinalized() throws {
        lock.lock()
        defer { lock.unlock() }
        if finalized {
            throw PruneError(.invalidArgument, "MPI: a collective after MPICommunicator.finalize(); MPI cannot be used again in this process")
        }
    }

    // MARK: - Errors

    static func loadError(_ detail: String, env: [String: String] = ProcessInfo.processInfo.environment) -> PruneError {
        let start = launchedByMPI(env) ? "prune was started by mpirun but no MPI library could be loaded" : "no MPI library could be loaded"
        if let path = env["PRUNE_MPI_LIBRARY"], !path.isEmpty {
            return PruneError(.fileNotFound, "\(start) (tried PRUNE_MPI_LIBRARY=\(path) alone: \(detail)); set PRUNE_MPI_LIBRARY to the path of libmpi (e.g. /usr/lib/x86_64-linux-gnu/libmpi.so.40), or unset it to search for libmpi.so.40, libmpi.so.12, libmpi.so")
        }
        return PruneError(.fileNotFound, "\(start) (tried \(detail)); install Open MPI (Debian: apt-get install openmpi-bin) or set PRUNE_MPI_LIBRARY to libmpi's path")
    }

    /// A PruneError for a failed shim call `rc` (an MPI error code or a PRUNE_MPI_ERR_*).
    static func check(_ rc: Int32, _ what: String) throws {
        switch rc {
        case 0: return
        case PRUNE_MPI_ERR_NOT_LOADED: throw PruneError(.io, "MPI: \(what) before libmpi was loaded")
        case PRUNE_MPI_ERR_FINALIZED: throw PruneError(.invalidArgument, "MPI: \(what): MPI was already finalized in this process and cannot be initialized again")
        case PRUNE_MPI_ERR_NO_MEMORY: throw PruneError(.io, "MPI: \(what): out of memory")
        case PRUNE_MPI_ERR_TOO_LARGE: throw PruneError(.outOfRange, "MPI: \(what): more than 2 GiB (MPI's int counts); send it in smaller parts")
        default:
            var text = [CChar](repeating: 0, count: 1024)
            prune_mpi_error_string(rc, &text, text.count)
            let s = string(text)
            throw PruneError(.io, "MPI: \(what) failed with MPI error \(rc)\(s.isEmpty ? "" : " (\(s))")")
        }
    }

    static func tooLarge(_ counts: [Int64]) -> PruneError {
        let big = counts.enumerated().filter { $0.element < 0 }.map { "rank \($0.offset)" }
        let which = big.isEmpty ? "the ranks' bytes together (\(counts.reduce(0, +)) bytes)" : big.joined(separator: ", ") + " (over 2 GiB each)"
        return PruneError(.outOfRange, "MPI all-gather: \(which) exceed the 2 GiB that MPI's int counts can send in one all-gather; send it in smaller parts")
    }
}
