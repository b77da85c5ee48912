import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole small files (JSON configs, tokenizers, data sets) safely: only regular files are
/// opened (a FIFO or device never blocks the reader), and a size cap is checked before reading.
public enum RegularFile {
    /// The bytes of the regular file at `path`, at most `cap` bytes; `what` names it in errors
    /// (`config.json`, `recipe file`).
    public static func read(_ path: String, what: String, cap: Int = 1 << 30) throws -> Data {
        let file = try MappedFile(path: path, what: what)
        guard file.bytes.count <= cap else {
            throw PruneError(.outOfRange, "\(what) '\(path)' is \(file.bytes.count) bytes, over the cap of \(cap) bytes for such a file")
        }
        guard let base = file.bytes.baseAddress else { return Data() }
        return Data(bytes: base, count: file.bytes.count)
    }

    /// Throws unless `path` names an existing regular file (a directory, FIFO or device is refused).
    public static func check(_ path: String, what: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let err = errno
            if err == ENOENT || err == ENOTDIR {
                throw PruneError(.fileNotFound, "\(what) '\(path)' does not exist: check the path")
            }
            throw PruneError(.io, "\(what) '\(path)' cannot be read: \(String(cString: strerror(err)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw PruneError(.invalidArgument, "\(what) '\(path)' is not a regular file (a directory, FIFO or device): pass the path of a file")
        }
    }
}
