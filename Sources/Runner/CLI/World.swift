import Foundation
import PruneFramework

/// The processes a `prune` command runs on: one, or every rank of an MPI job. `--distributed`
/// (anywhere on the command line) says which: `auto` (the default) uses MPI when `mpirun` or
/// `mpiexec` started the process, `mpi` requires it, `off` runs as one process even then.
enum World {
    nonisolated(unsafe) static var current: any Communicator = SingleProcess()

    /// Picks the communicator and returns the arguments without `--distributed`.
    static func start(_ argv: [String]) throws -> [String] {
        var rest: [String] = [], mode = "auto", i = 0
        while i < argv.count {
            if argv[i] == "--distributed" {
                guard i + 1 < argv.count else { throw PruneError(.invalidArgument, "'--distributed' needs a value: auto, mpi or off") }
                mode = argv[i + 1]
                i += 2
            } else if argv[i].hasPrefix("--distributed=") {
                mode = String(argv[i].dropFirst("--distributed=".count))
                i += 1
            } else {
                rest.append(argv[i])
                i += 1
            }
        }
        switch mode {
        case "off": current = SingleProcess()
        case "mpi": current = try MPICommunicator()
        case "auto": current = MPICommunicator.launchedByMPI() ? try MPICommunicator() : SingleProcess()
        default: throw PruneError(.invalidArgument, "'--distributed \(mode)': use auto, mpi or off")
        }
        if current.rank != 0 {
            // Rank 0 prints what a command prints (results, `validate`, `list`); the others print errors only.
            ProgressBar.silenced = true
            _ = freopen("/dev/null", "w", stdout)
        }
        return rest
    }

    /// The log of this rank: rank 0 logs, the others stay silent (their errors still print).
    static var log: (String) -> Void {
        current.rank == 0 ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { _ in }
    }

    /// Ends the run after an error: one process returns `code`; with several, the error names the
    /// rank and the stage and MPI_Abort ends every rank. Ranks other than 0 wait a second first, so
    /// that an error every rank meets (a bad recipe) is printed once, by rank 0.
    static func fail(_ message: String, code: Int32) -> Int32 {
        let c = current
        guard c.isDistributed else {
            FileHandle.standardError.write(Data("prune: error: \(message)\n".utf8))
            return code
        }
        if c.rank != 0 { Thread.sleep(forTimeInterval: 1) }
        let stage = Distributed.stage.map { ", during '\($0)'" } ?? ""
        FileHandle.standardError.write(Data("prune: error on rank \(c.rank) of \(c.size)\(stage): \(message)\n".utf8))
        c.abort(code: code)
    }

    /// For a signal's message in a distributed run: the rank and stage, and that mpirun stops the
    /// other ranks when one ends ("" with one process).
    static var whereAmI: String {
        let c = current
        guard c.isDistributed else { return "" }
        let stage = Distributed.stage.map { ", during '\($0)'" } ?? ""
        return " (rank \(c.rank) of \(c.size)\(stage); mpirun stops every rank when one of them ends: its message names that rank)"
    }

    /// Ends MPI cleanly after a command that succeeded.
    static func finish() {
        try? (current as? MPICommunicator)?.finalize()
    }
}
