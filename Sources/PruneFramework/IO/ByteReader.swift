import Foundation

/// A bounds-checked little-endian reader over raw bytes.
///
/// Every read checks the bytes left first and throws a `PruneError` naming the source, the field
/// and its byte offset, so a truncated or corrupt file never reads past its end. Lengths read from
/// the file are capped before anything is allocated for them.
struct ByteReader {
    /// The whole buffer; offsets are relative to its start.
    let bytes: UnsafeRawBufferPointer
    /// How errors name the buffer, e.g. `GGUF file 'model.gguf'`.
    let source: String
    /// The byte offset of the next read.
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, source: String, offset: Int = 0) {
        precondition(offset >= 0 && offset <= bytes.count, "ByteReader start offset outside the buffer")
        self.bytes = bytes
        self.source = source
        self.offset = offset
    }

    /// Bytes left after `offset`.
    var remaining: Int { bytes.count - offset }

    /// The error for a field of `need` bytes at the current offset that runs past the end.
    func truncated(_ field: String, need: Int) -> PruneError {
        PruneError(.truncated, "\(source): field '\(field)' at byte offset \(offset) needs \(need) bytes but only \(remaining) remain (the file has \(bytes.count) bytes): the file is truncated; download or convert it again")
    }

    /// Reads one little-endian integer.
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw truncated(field, need: n) }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += n
        return v
    }

    /// Reads a little-endian IEEE binary32.
    mutating func readF32(_ field: String) throws -> Float { Float(bitPattern: try read(UInt32.self, field)) }

    /// Reads a little-endian IEEE binary64.
    mutating func readF64(_ field: String) throws -> Double { Double(bitPattern: try read(UInt64.self, field)) }

    /// Reads a u64 count and checks it against `cap` and, when `minItemBytes` > 0, against the
    /// bytes left, assuming every counted item takes at least `minItemBytes` bytes.
    mutating func readCount(_ field: String, cap: Int, minItemBytes: Int = 0) throws -> Int {
        let at = offset
        let n = try read(UInt64.self, field)
        guard n <= UInt64(cap) else {
            throw PruneError(.outOfRange, "\(source): \(field) at byte offset \(at) is '\(n)', more than the limit \(cap): the file is corrupt")
        }
        guard minItemBytes <= 0 || n <= UInt64(remaining / minItemBytes) else {
            throw PruneError(.truncated, "\(source): \(field) at byte offset \(at) is '\(n)', more than the \(remaining) bytes left can hold (at most \(remaining / minItemBytes)): the file is truncated or corrupt")
        }
        return Int(n)
    }

    /// `s` made safe for a one-line message: control characters escaped, cut to about 100
    /// characters.
    static func shown(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            if out.count >= 100 { return String(out) + "…" }
            let v = c.value
            if v < 0x20 || (0x7F...0x9F).contains(v) {
                out.append(contentsOf: "\\u{\(String(v, radix: 16))}".unicodeScalars)
            } else {
                out.append(c)
            }
        }
        return String(out)
    }

    /// Reads a u64-length-prefixed UTF-8 string of at most `cap` bytes (invalid UTF-8 is
    /// replaced by U+FFFD).
    mutating func readString(_ field: String, cap: Int = 1 << 30) throws -> String {
        let at = offset
        let n = try read(UInt64.self, field + " length")
        guard n <= UInt64(cap) else {
            throw PruneError(.outOfRange, "\(source): field '\(field)' at byte offset \(at) declares a string of '\(n)' bytes, more than the limit \(cap): the file is corrupt")
        }
        guard n <= UInt64(remaining) else { throw truncated(field, need: Int(n)) }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))]), as: UTF8.self)
        offset += Int(n)
        return s
    }
}
