import Foundation

/// The processes of one run and the collective operations they share work through. Every stage
/// that sums over samples (calibration statistics, gradients, NLL, accuracy counts, LoRA
/// gradients) gives each rank a contiguous share of the samples and adds the ranks' partial sums
/// with `sum`; everything else runs the same on every rank. One process is `SingleProcess`; a run
/// started by `mpirun` uses `MPICommunicator`.
///
/// Collectives must be called by every rank in the same order.
public protocol Communicator: AnyObject {
    /// This process's index, 0 ..< size. Rank 0 alone writes outputs and logs.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// What runs the collectives, for the log and the report ("one process", "Open MPI v4.1.4").
    var implementation: String { get }

    /// Every rank's bytes, in rank order, on every rank (an all-gather of byte strings of any length).
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// Waits until every rank has called it.
    func barrier() throws
    /// Ends every process of the run with `code`, from any rank (MPI_Abort).
    func abort(code: Int32) -> Never
}

extension Communicator {
    public var isDistributed: Bool { size > 1 }

    /// This rank's contiguous share of `count` items: ranks get ⌈count/size⌉ or ⌊count/size⌋
    /// items, the larger shares first, so the shares cover 0 ..< count in rank order.
    public func share(of count: Int) -> Range<Int> { Self.share(of: count, rank: rank, size: size) }

    public static func share(of count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Replaces `values` on every rank with their element-wise sum over the ranks, added in
    /// Double in rank order (rank 0's first): the order is fixed by this code, not by the MPI
    /// library's reduction algorithm, so every rank holds the same bits. Sent in chunks of at most
    /// `Distributed.chunkValues` values.
    public func sum(_ values: inout [Double]) throws {
        guard isDistributed else { return }
        try values.withUnsafeMutableBufferPointer { try sum($0) }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        guard isDistributed else { return }
        var start = 0
        repeat {
            let n = min(Distributed.chunkValues, values.count - start)
            let mine = [UInt8](UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(values)[(start * 8)..<((start + n) * 8)]))
            let all = try allGather(mine)
            Distributed.traffic.record(bytes: mine.count)
            try Distributed.checkLengths(all, expected: mine.count, what: "sum")
            for i in 0..<n { values[start + i] = 0 }
            for part in all {
                part.withUnsafeBytes { raw in
                    for i in 0..<n { values[start + i] += raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self) }
                }
            }
            start += n
        } while start < values.count
    }

    /// The sum over ranks of Float values, added in Double in rank order and rounded back once;
    /// converted a chunk at a time, so a whole model's gradient needs no Double copy.
    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        guard isDistributed else { return }
        var d = [Double](repeating: 0, count: min(count, Distributed.chunkValues))
        var start = 0
        while start < count {
            let n = min(d.count, count - start)
            if n < d.count { d.removeLast(d.count - n) }
            for i in 0..<n { d[i] = Double(values[start + i]) }
            try sum(&d)
            for i in 0..<n { values[start + i] = Float(d[i]) }
            start += n
        }
    }

    /// The sum over ranks of one number.
    public func sum(_ value: Double) throws -> Double {
        var v = [value]
        try sum(&v)
        return v[0]
    }

    /// The sum over ranks of a count.
    public func sum(_ value: Int) throws -> Int { Int(try sum(Double(value))) }

    /// Every rank's Doubles (any count, NaN and infinities included), in rank order.
    public func allGather(doubles: [Double]) throws -> [[Double]] {
        guard isDistributed else { return [doubles] }
        let bytes = doubles.withUnsafeBytes { [UInt8]($0) }
        Distributed.traffic.record(bytes: bytes.count)
        return try allGather(bytes).enumerated().map { r, part in
            guard part.count % 8 == 0 else {
                throw PruneError(.badFormat, "distributed: rank \(r) sent \(part.count) bytes, not a whole number of Doubles")
            }
            return part.withUnsafeBytes { raw in (0..<(part.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) } }
        }
    }

    /// Every rank's value of a Codable, in rank order (as JSON; NaN and infinities as strings).
    public func allGather<T: Codable>(_ value: T) throws -> [T] {
        let enc = JSONEncoder(), dec = JSONDecoder()
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard isDistributed else { return [value] }
        let bytes = [UInt8](try enc.encode(value))
        Distributed.traffic.record(bytes: bytes.count)
        let parts = try allGather(bytes)
        return try parts.enumerated().map { r, bytes in
            do { return try dec.decode(T.self, from: Data(bytes)) } catch {
                throw PruneError(.badFormat, "distributed: rank \(r) sent a \(T.self) that does not decode: \(error)")
            }
        }
    }
}

/// One process: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var implementation: String { "one process" }
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }
}

/// Shared settings and bookkeeping of distributed runs.
public enum Distributed {
    /// The stage this process is in, for an error that ends a distributed run ("rank 1 failed
    /// during 'calibrate'"); set by the runner.
    nonisolated(unsafe) public static var stage: String?

    /// Processes of this run on this machine, from the launcher's environment (Open MPI's
    /// OMPI_COMM_WORLD_LOCAL_SIZE, MPICH's MPI_LOCALNRANKS); 1 without one. They share its cores
    /// and its memory.
    public static var processesOnThisMachine: Int {
        let env = ProcessInfo.processInfo.environment
        return max(1, (env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["MPI_LOCALNRANKS"]).flatMap(Int.init) ?? 1)
    }

    /// Values per all-gather of a `sum` (8 MiB of Doubles per rank).
    nonisolated(unsafe) public static var chunkValues = 1 << 20

    /// What this process's collectives sent: all-gathers and bytes (each rank sends its bytes
    /// and receives every other rank's), for the report and the benchmark.
    public final class Traffic: @unchecked Sendable {
        private let lock = NSLock()
        private var counts = Counts()

        public struct Counts: Codable, Sendable, Equatable {
            public var calls = 0
            public var bytes = 0
            public var largest = 0
            public init() {}

            enum CodingKeys: String, CodingKey { case calls = "all_gathers", bytes = "bytes_sent", largest = "largest_bytes" }

            /// What was sent since `earlier`.
            public func since(_ earlier: Counts) -> Counts {
                var c = Counts()
                c.calls = calls - earlier.calls
                c.bytes = bytes - earlier.bytes
                c.largest = largest
                return c
            }
        }

        func record(bytes n: Int) {
            lock.lock()
            defer { lock.unlock() }
            counts.calls += 1
            counts.bytes += n
            counts.largest = max(counts.largest, n)
        }

        /// The counts so far; `reset` starts the largest call anew.
        public var now: Counts {
            lock.lock()
            defer { lock.unlock() }
            return counts
        }

        public func resetLargest() {
            lock.lock()
            defer { lock.unlock() }
            counts.largest = 0
        }
    }

    public static let traffic = Traffic()

    static func checkLengths(_ parts: [[UInt8]], expected: Int, what: String) throws {
        for (r, p) in parts.enumerated() where p.count != expected {
            throw PruneError(.badFormat, "distributed \(what): rank \(r) sent \(p.count) bytes where \(expected) were expected; the ranks are not running the same stage")
        }
    }
}
