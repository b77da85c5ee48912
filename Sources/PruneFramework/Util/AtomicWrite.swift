import Foundation

/// Writes `data` to `path` through a temporary file in the same directory, then renames it into
/// place, so a failed or interrupted write never leaves a partial file.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try data.write(to: tmp)
        if FileManager.default.fileExists(atPath: path) {
            _ = try FileManager.default.replaceItemAt(url, withItemAt: tmp)
        } else {
            try FileManager.default.moveItem(at: tmp, to: url)
        }
    } catch {
        try? FileManager.default.removeItem(at: tmp)
        throw PruneError(.io, "cannot write '\(path)': \(error.localizedDescription)")
    }
}
