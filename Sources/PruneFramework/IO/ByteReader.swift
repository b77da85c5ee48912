import Foundation

/// A bounds-checked little-endian reader over raw bytes.
///
/// Every read checks the remaining length first and throws a `PruneError` naming the field, the
/// byte offset and the source, so a truncated or corrupt file never reads past its end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let source: String
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, source: String, offset: Int = 0) {
        self.bytes = bytes
        self.source = source
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    func truncated(_ field: String, need: Int) -> PruneError {
        PruneError(.truncated, "\(source): field '\(field)' at byte offset \(offset) needs \(need) bytes but the file ends at \(bytes.count): the file is truncated")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw truncated(field, need: n) }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += n
        return v
    }

    mutating func readF32(_ field: String) throws -> Float { Float(bitPattern: try read(UInt32.self, field)) }
    mutating func readF64(_ field: String) throws -> Double { Double(bitPattern: try read(UInt64.self, field)) }

    /// A length-prefixed (u64) UTF-8 string of at most `cap` bytes.
    mutating func readString(_ field: String, cap: Int = 1 << 30) throws -> String {
        let at = offset
        let n = try read(UInt64.self, field + " length")
        guard n <= UInt64(cap) else {
            throw PruneError(.outOfRange, "\(source): field '\(field)' at byte offset \(at) declares a string of '\(n)' bytes, more than the limit \(cap)")
        }
        guard n <= UInt64(remaining) else { throw truncated(field, need: Int(n)) }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))]), as: UTF8.self)
        offset += Int(n)
        return s
    }
}
