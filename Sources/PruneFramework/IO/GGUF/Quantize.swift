/// Encoding f32 values into the tensor types the GGUF writer supports.

/// Encodes `src` as `type` bytes appended to `out` (`.f32`, `.f16`, `.bf16`, `.q8_0`).
func quantize(_ type: GGMLType, _ src: UnsafeBufferPointer<Float>, into out: inout [UInt8]) throws {
    func put16(_ v: UInt16) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
    switch type {
    case .f32:
        for v in src { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
    case .f16:
        for v in src { put16(Half.fromFloat(v)) }
    case .bf16:
        for v in src { put16(Half.bf16FromFloat(v)) }
    case .q8_0:
        guard src.count % 32 == 0 else {
            throw PruneError(.shapeMismatch, "Q8_0 needs a multiple of 32 elements, got \(src.count)")
        }
        for b in stride(from: 0, to: src.count, by: 32) {
            // As ggml's quantize_row_q8_0_ref: d = amax/127, q = round(x/d).
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(src[b + j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            put16(Half.fromFloat(d))
            for j in 0..<32 { out.append(UInt8(bitPattern: Int8((src[b + j] * id).rounded()))) }
        }
    default:
        throw PruneError(.unsupported, "the GGUF writer cannot encode '\(type.name)'; supported: F32, F16, BF16, Q8_0")
    }
}
