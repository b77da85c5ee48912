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
        try data.write(to: tmp)
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
