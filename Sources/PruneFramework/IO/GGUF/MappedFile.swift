import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file (read into memory when mapping is not possible).
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw PruneError(.io, "cannot open '\(path)': \(String(cString: strerror(errno)))")
            }
            throw PruneError(.fileNotFound, "file '\(path)' does not exist")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PruneError(.io, "cannot stat '\(path)'") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw PruneError(.invalidArgument, "'\(path)' is not a regular file")
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        if let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED {
            bytes = UnsafeRawBufferPointer(start: p, count: size)
            mapped = true
        } else {
            guard let d = FileManager.default.contents(atPath: path) else { throw PruneError(.io, "cannot read '\(path)'") }
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: d.count, alignment: 64)
            d.copyBytes(to: buf)
            bytes = UnsafeRawBufferPointer(buf)
            mapped = false
        }
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } else { base.deallocate() }
    }
}
