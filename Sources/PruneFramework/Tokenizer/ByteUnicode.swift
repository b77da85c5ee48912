/// The GPT-2 byte-level alphabet: every byte written as one printable Unicode scalar.
///
/// Byte-level BPE vocabularies (GPT-2, SmolLM, Llama 3, Qwen2) store their tokens in this
/// alphabet (`bytes_to_unicode` in GPT-2's `encoder.py`). The printable bytes `!`…`~`, `¡`…`¬` and
/// `®`…`ÿ` stand for themselves; the other 68 bytes (controls, space, DEL, NBSP, soft hyphen) map
/// in byte order to U+0100…U+0143. A space is therefore `Ġ` (U+0120) and a newline `Ċ` (U+010A).
enum ByteUnicode {
    /// Whether byte `b` stands for itself in the alphabet.
    static func isPrintable(_ b: Int) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The scalar value that stands for each byte, indexed by byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 0x100
        for b in 0..<256 {
            if isPrintable(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// The byte that each scalar below U+0144 stands for, or -1 where it stands for none.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The byte that `scalar` stands for, or nil when `scalar` is outside the alphabet.
    @inline(__always)
    static func byte(for scalar: UInt32) -> UInt8? {
        guard scalar < 0x144 else { return nil }
        let b = byteForScalar[Int(scalar)]
        return b < 0 ? nil : UInt8(b)
    }

    /// Writes raw bytes in the byte-level alphabet (the form vocabulary entries take).
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var view = String.UnicodeScalarView()
        for b in bytes {
            // Every table entry is below U+0144, so the scalar always exists.
            if let s = Unicode.Scalar(scalarForByte[Int(b)]) { view.append(s) }
        }
        return String(view)
    }

    /// The raw bytes a vocabulary entry written in the byte-level alphabet stands for.
    ///
    /// A scalar outside the alphabet (only in malformed vocabularies) is kept as its UTF-8 bytes.
    static func decode(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            if let b = byte(for: s.value) {
                out.append(b)
            } else {
                out.append(contentsOf: String(s).utf8)
            }
        }
        return out
    }
}
