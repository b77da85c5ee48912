import Foundation
import PruneFramework

/// `prune mpi-check`: checks the MPI setup. Under mpirun it loads libmpi and checks a sum, an
/// all-gather of byte strings of different lengths and a barrier over the ranks; without mpirun
/// it runs the same checks as one process (SingleProcess). Rank 0 prints (the others' stdout is closed).
enum MPICheckCommand {
    static func run(_ args: [String]) throws {
        _ = try Arguments(args, command: "mpi-check", valued: [], flags: [])
        // `World` loaded MPI (or chose one process); a failure on any rank ends every rank (`World.fail`).
        guard let mpi = World.current as? MPICommunicator else {
            let vars = MPICommunicator.launcherVariables.joined(separator: ", ")
            print("mpi-check: not started by mpirun (none of \(vars) is set): running as one process (SingleProcess)")
            return try check(World.current)
        }
        print("mpi-check: \(mpi.implementation) (loaded \(mpi.library)), \(mpi.size) ranks")
        try check(mpi)
    }

    static func check(_ comm: Communicator) throws {
        try checkSum(comm)
        try checkAllGather(comm)
        try comm.barrier()
        print("mpi-check: \(comm.size) \(comm.size == 1 ? "rank" : "ranks"), \(comm.implementation), sum and all-gather ok")
    }

    /// Rank r adds i + r/2 to value i, exact in Double: over n ranks, n·i + n(n−1)/4. Checked once in
    /// one all-gather and once in chunks of 2 values.
    static func checkSum(_ comm: Communicator) throws {
        let n = Double(comm.size), r = Double(comm.rank)
        let expected = (0..<5).map { n * Double($0) + n * (n - 1) / 4 }
        let saved = Distributed.chunkValues
        defer { Distributed.chunkValues = saved }
        for chunk in [saved, 2] {
            Distributed.chunkValues = chunk
            var values = (0..<5).map { Double($0) + r / 2 }
            try comm.sum(&values)
            guard values == expected else {
                throw PruneError(.badFormat, "mpi-check: the sum over \(comm.size) ranks is \(values); expected \(expected)")
            }
        }
        let count = try comm.sum(comm.rank + 1)
        guard count == comm.size * (comm.size + 1) / 2 else {
            throw PruneError(.badFormat, "mpi-check: the sum of rank + 1 over \(comm.size) ranks is \(count); expected \(comm.size * (comm.size + 1) / 2)")
        }
    }

    /// Rank r's bytes: 7·r of them (none from rank 0), byte j = (r + 1)(j + 1) mod 256.
    static func bytes(rank: Int) -> [UInt8] {
        (0..<(7 * rank)).map { UInt8(truncatingIfNeeded: (rank + 1) * ($0 + 1)) }
    }

    static func checkAllGather(_ comm: Communicator) throws {
        let parts = try comm.allGather(bytes(rank: comm.rank))
        let expected = (0..<comm.size).map { bytes(rank: $0) }
        guard parts == expected else {
            throw PruneError(.badFormat, "mpi-check: the all-gather returned byte strings of lengths \(parts.map(\.count)); expected \(expected.map(\.count)) with rank r's bytes (r + 1)(j + 1) mod 256")
        }
        let ranks: [Int] = try comm.allGather(comm.rank)
        guard ranks == Array(0..<comm.size) else {
            throw PruneError(.badFormat, "mpi-check: the all-gather of each rank's number returned \(ranks); expected 0 ..< \(comm.size)")
        }
    }
}
