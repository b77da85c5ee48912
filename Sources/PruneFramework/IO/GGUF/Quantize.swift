/// Encoding f32 values into the tensor types the GGUF writer supports.

/// The types `quantize` can encode.
let quantizableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0]

/// Encodes `src` as little-endian `type` bytes (`.f32`, `.f16`, `.bf16`, `.q8_0`).
///
/// F16 and BF16 round to nearest even (overflow becomes infinity, as in ggml). Q8_0 follows
/// ggml's `quantize_row_q8_0_ref`: per block of 32, d = max|x| / 127 stored as f16 and
/// q = round(x / d) away from zero; it throws on a non-finite value or a block whose d
/// overflows f16, which Q8_0 cannot store.
func quantize(_ type: GGMLType, _ src: UnsafeBufferPointer<Float>) throws -> [UInt8] {
    let n = src.count
    let size = try type.byteCount(elements: n)
    guard quantizableTypes.contains(type) else {
        throw PruneError(.unsupported, "the GGUF writer cannot encode '\(type.name)'; supported: \(quantizableTypes.map(\.name).joined(separator: ", "))")
    }
    var failure: PruneError?
    let out = [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
        guard let dst = UnsafeMutableRawPointer(buf.baseAddress) else { return }
        switch type {
        case .f32:
            for i in 0..<n { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<n { dst.storeBytes(of: Half.fromFloat(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<n { dst.storeBytes(of: Half.bf16FromFloat(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        default:
            for b in 0..<(n / 32) {
                if let e = quantizeQ8_0Block(src, start: 32 * b, to: dst + 34 * b) {
                    failure = e
                    return
                }
            }
        }
        initialized = size
    }
    if let failure { throw failure }
    return out
}

/// Encodes `src[start..<start+32]` as one Q8_0 block at `dst`; returns the error for a value
/// Q8_0 cannot store.
private func quantizeQ8_0Block(_ src: UnsafeBufferPointer<Float>, start: Int, to dst: UnsafeMutableRawPointer) -> PruneError? {
    var amax: Float = 0
    for j in 0..<32 {
        let x = src[start + j]
        guard x.isFinite else {
            return PruneError(.invalidArgument, "value '\(x)' at index \(start + j) cannot be stored as Q8_0 (only finite values can); fix the weights or use f32")
        }
        amax = max(amax, abs(x))
    }
    let d = amax / 127
    let dh = Half.fromFloat(d)
    guard dh & 0x7FFF != 0x7C00 else {
        return PruneError(.invalidArgument, "values up to '\(amax)' at indices \(start)..<\(start + 32) are beyond Q8_0's range (scale above 65504); use f32")
    }
    let id: Float = d != 0 ? 1 / d : 0
    dst.storeBytes(of: dh.littleEndian, as: UInt16.self)
    for j in 0..<32 {
        // |x·id| ≤ 127 up to rounding; the clamp only guards the conversion.
        let q = min(max((src[start + j] * id).rounded(), -128), 127)
        dst.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
    }
    return nil
}
