import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `data` to `path` through a temporary file in the same directory, then renames it into
/// place, so a failed or interrupted write never leaves a partial file.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try writeInChunks(data, to: tmp.path)
        // rename(2) replaces an existing file atomically.
        guard rename(tmp.path, path) == 0 else {
            throw PruneError(.io, "cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    } catch let e as PruneError {
        try? FileManager.default.removeItem(at: tmp)
        throw e
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        throw PruneError(.io, "cannot write '\(path)': \(error.localizedDescription)")
    }
}

/// Writes `data` to a new file at `path` at most 1 GiB per call. `Data.write(to:)` left a 2.85 GB
/// GGUF with a corrupt stretch past the 2 GiB mark (one write(2) moves at most 0x7ffff000 bytes on
/// Linux), while writes through a FileHandle of any size came out whole.
func writeInChunks(_ data: Data, to path: String, chunk: Int = 1 << 30) throws {
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
        throw PruneError(.io, "cannot create '\(path)'; check that its directory exists and is writable")
    }
    do {
        var start = data.startIndex
        while start < data.endIndex {
            let end = min(start + max(chunk, 1), data.endIndex)
            try handle.write(contentsOf: data[start..<end])
            start = end
        }
        try handle.close()
    } catch {
        try? handle.close()
        throw error
    }
}
