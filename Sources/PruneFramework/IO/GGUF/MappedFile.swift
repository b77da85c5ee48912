import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file, unmapped on deinit.
///
/// When the file cannot be mapped (some network or FUSE file systems), it is read into memory
/// instead; either way `bytes` stays valid and unchanged for the object's lifetime.
final class MappedFile: @unchecked Sendable {
    /// The file's contents (empty for an empty file).
    let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps `path`; throws `.fileNotFound` when it does not exist, `.io` when it cannot be read,
    /// `.invalidArgument` when it is not a regular file. `what` names the file in errors.
    init(path: String, what: String = "file") throws {
        // Non-blocking, so that opening a FIFO does not wait for a writer; it is refused below.
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else {
            let err = errno
            if err == ENOENT || err == ENOTDIR {
                throw PruneError(.fileNotFound, "\(what) '\(path)' does not exist: check the path")
            }
            throw PruneError(.io, "cannot open \(what) '\(path)': \(String(cString: strerror(err)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw PruneError(.io, "cannot stat '\(path)': \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw PruneError(.invalidArgument, "\(what) '\(path)' is not a regular file (a directory, FIFO or device): pass the path of a file")
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
            bytes = try Self.readWhole(fd, size: size, path: path)
            mapped = false
        }
    }

    /// Reads `size` bytes from `fd` into a new allocation (the fallback when mmap fails).
    private static func readWhole(_ fd: Int32, size: Int, path: String) throws -> UnsafeRawBufferPointer {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        var done = 0
        while done < size, let base = buf.baseAddress {
            let n = pread(fd, base + done, size - done, off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = n < 0 ? String(cString: strerror(errno)) : "it ended early (it changed while being read?)"
                buf.deallocate()
                throw PruneError(.io, "cannot read '\(path)' at byte offset \(done) of \(size): \(why)")
            }
            done += n
        }
        return UnsafeRawBufferPointer(buf)
    }

    /// Drops the whole pages inside bytes [offset, offset + count) from this process's memory
    /// (madvise DONTNEED); a later read maps them again from the page cache. Nothing for a file
    /// read into memory.
    func dropPages(offset: Int, count: Int) {
        guard mapped, let base = bytes.baseAddress, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page, end = (offset + count) / page * page
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            base.deallocate()
        }
    }
}
