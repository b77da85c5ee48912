import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `path` through a temporary file in the same directory, then renames it into
/// place, so a failed or interrupted write never leaves a partial file.
public func writeAtomically(_ data: Data, to path: String) throws {
    try writeAtomically(chunks: [data], to: path)
}

/// Writes `chunks` one after another to a temporary file next to `path` (`.NAME.tmp-PID`), flushes
/// it and renames it over `path`. The temporary file is removed on every error, listed in
/// `TemporaryFiles` while it exists (so an interrupted process removes it), and found by
/// `TemporaryFiles.removeStale(in:)` when the process was killed.
public func writeAtomically(chunks: [Data], to path: String) throws {
    try writeAtomically(to: path) { write in for c in chunks { try write(c) } }
}

/// Writes what `body` passes to `write`, in order, atomically as `writeAtomically(chunks:to:)`
/// does, without holding the whole file in memory.
public func writeAtomically(to path: String, _ body: (_ write: (Data) throws -> Void) throws -> Void) throws {
    let tmp = TemporaryFiles.path(for: path)
    defer { TemporaryFiles.unregister(tmp) }
    do {
        try writeStreaming(to: tmp, create: TemporaryFiles.create, body)
        // rename(2) replaces an existing file atomically.
        guard rename(tmp, path) == 0 else {
            throw PruneError(.io, "cannot write '\(path)': rename from the temporary file failed (\(String(cString: strerror(errno))))")
        }
    } catch let e as PruneError {
        unlink(tmp)
        throw e
    } catch {
        unlink(tmp)
        throw PruneError(.io, "cannot write '\(path)': \(error.localizedDescription)")
    }
}

/// Writes `chunks` to a new file at `path`, at most `chunk` bytes per call, and flushes it to disk.
func writeInChunks(_ chunks: [Data], to path: String, chunk: Int = 1 << 30) throws {
    try writeStreaming(to: path, chunk: chunk, create: { FileManager.default.createFile(atPath: $0, contents: nil) }) { write in
        for c in chunks { try write(c) }
    }
}

/// Creates `path` with `create`, writes what `body` passes, at most 1 GiB per call, and flushes it.
/// `Data.write(to:)` left a 2.85 GB GGUF with a corrupt stretch past the 2 GiB mark (one write(2)
/// moves at most 0x7ffff000 bytes on Linux), while writes through a FileHandle of any size came out whole.
private func writeStreaming(to path: String, chunk: Int = 1 << 30, create: (String) -> Bool,
                            _ body: (_ write: (Data) throws -> Void) throws -> Void) throws {
    guard create(path), let handle = FileHandle(forWritingAtPath: path) else {
        throw PruneError(.io, "cannot create '\(path)'; check that its directory exists and is writable")
    }
    do {
        try body { data in
            var start = data.startIndex
            while start < data.endIndex {
                let end = min(start + max(chunk, 1), data.endIndex)
                try handle.write(contentsOf: data[start..<end])
                start = end
            }
        }
        try handle.synchronize()
        try handle.close()
    } catch {
        try? handle.close()
        throw error
    }
}

/// The temporary files of atomic writes in progress in this process.
public enum TemporaryFiles {
    /// Recursive: the interrupting thread, which keeps it, still writes run.json.
    private static let lock = NSRecursiveLock()
    nonisolated(unsafe) private static var live: Set<String> = []

    /// The temporary file an atomic write of `path` goes through: `.NAME.tmp-PID` beside it.
    static func path(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
    }

    /// Creates the (empty) temporary file `path` and registers it, both under the lock that
    /// `removeAll` takes, so no file is created after an interruption removed the others.
    static func create(_ path: String) -> Bool {
        lock.withLock {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { return false }
            live.insert(path)
            return true
        }
    }

    static func unregister(_ path: String) { lock.withLock { _ = live.remove(path) } }

    /// Removes every temporary file of a write in progress; an interrupted process calls this just
    /// before it exits. It keeps the lock, so a writer on another thread that would create a
    /// temporary file waits until the process has exited; the calling thread may still write.
    public static func removeAll() {
        lock.lock()
        for p in live { unlink(p) }
    }

    /// Removes the temporary files of killed processes in `dir`: `.NAME.tmp-PID` whose process no
    /// longer runs. Returns their names.
    @discardableResult
    public static func removeStale(in dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { name in
            guard name.hasPrefix("."), let r = name.range(of: ".tmp-", options: .backwards),
                  let pid = Int32(name[r.upperBound...]), pid > 0, pid != getpid() else { return false }
            // kill(pid, 0) fails with ESRCH when no such process exists.
            guard kill(pid, 0) != 0, errno == ESRCH else { return false }
            return unlink((dir as NSString).appendingPathComponent(name)) == 0
        }
    }
}
