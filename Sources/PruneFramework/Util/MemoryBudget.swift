import Foundation

/// Refuses work whose memory would not fit the machine, before anything is allocated.
public enum MemoryBudget {
    /// The machine's physical memory in bytes.
    public static var physicalBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// A lower limit for the work run inside `$limit.withValue(bytes) { ... }` (tests and fuzzing
    /// cap what a corrupt file may ask for).
    @TaskLocal public static var limit: Int?

    /// Throws when `bytes` exceed `limit` (the task's `limit`, else the machine's physical memory);
    /// `what` says what needs them and `fix` what to change.
    public static func check(_ bytes: Int, what: String, limit: Int = limit ?? physicalBytes, fix: String) throws {
        guard bytes > limit else { return }
        throw PruneError(.outOfRange, "\(what) needs \(gib(bytes)) of memory, more than the \(gib(limit)) available: \(fix)")
    }

    /// `bytes` as GiB with two decimals.
    public static func gib(_ bytes: Int) -> String {
        String(format: "%.2f GiB", Double(bytes) / Double(1 << 30))
    }
}
