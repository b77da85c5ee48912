import Dispatch

/// Encoding f32 values into the tensor types the GGUF writer supports.
///
/// The block types reproduce ggml's reference quantizers (`quantize_row_*_ref` in ggml-quants.c,
/// what `llama_model_quantize` runs when it has no importance matrix) byte for byte: the same float
/// operations in the same order, the same `nearest_int` rounding trick, the same f16 rounding of
/// the scales. Per-type encoders are in QuantizeLegacy.swift (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and
/// QuantizeK.swift (Q4_K, Q5_K, Q6_K); which type llama-quantize gives each tensor is in
/// QuantizationMix.swift.

/// The types `quantize` can encode.
let quantizableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

/// Encodes `src` as little-endian `type` bytes, one block after another.
///
/// F16 and BF16 round to nearest even (overflow becomes infinity, as in ggml). The block types
/// follow ggml's `quantize_row_<type>_ref` exactly; blocks are independent, so a tensor is one
/// long row and big tensors are split across cores. Throws when `src.count` is not a whole number
/// of blocks, on a non-finite value, and on a block whose f16 scale or minimum overflows (ggml
/// would write infinity there, which llama.cpp's loader rejects).
func quantize(_ type: GGMLType, _ src: UnsafeBufferPointer<Float>) throws -> [UInt8] {
    let n = src.count
    let size = try type.byteCount(elements: n)
    guard quantizableTypes.contains(type) else {
        throw PruneError(.unsupported, "the GGUF writer cannot encode '\(type.name)'; supported: \(quantizableTypes.map(\.name).joined(separator: ", "))")
    }
    var failure: PruneError?
    let out = [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
        guard let dst = UnsafeMutableRawPointer(buf.baseAddress), let x = src.baseAddress else { return }
        switch type {
        case .f32:
            for i in 0..<n { dst.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<n { dst.storeBytes(of: Half.fromFloat(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<n { dst.storeBytes(of: Half.bf16FromFloat(x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        default:
            failure = encodeBlocks(type, x, count: n, into: dst)
        }
        initialized = size
    }
    if let failure { throw failure }
    return out
}

/// Elements per parallel work item (a multiple of every block size).
private let chunkElements = 1 << 16

/// Encodes `count` floats (whole blocks of `type`) into `dst`, in parallel chunks when there
/// are several; returns the error of the first failing block.
private func encodeBlocks(_ type: GGMLType, _ x: UnsafePointer<Float>, count: Int,
                          into dst: UnsafeMutableRawPointer) -> PruneError? {
    let blocks = count / type.blockSize
    let perChunk = chunkElements / type.blockSize
    let chunks = (blocks + perChunk - 1) / perChunk
    if chunks <= 1 { return encodeChunk(type, x, dst, blocks: 0..<blocks) }
    let errors = UnsafeMutableBufferPointer<PruneError?>.allocate(capacity: chunks)
    errors.initialize(repeating: nil)
    defer { errors.deallocate() }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        errors[c] = encodeChunk(type, x, dst, blocks: (c * perChunk)..<min(blocks, (c + 1) * perChunk))
    }
    return errors.lazy.compactMap { $0 }.first
}

/// Encodes the blocks `blocks` of `x` into their places in `dst`.
private func encodeChunk(_ type: GGMLType, _ x: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer,
                         blocks: Range<Int>) -> PruneError? {
    let bs = type.blockSize, ts = type.typeSize
    let scratch = KQuantScratch()
    defer { scratch.deallocate() }
    for b in blocks {
        let src = x + bs * b, out = dst + ts * b
        for j in 0..<bs where !src[j].isFinite {
            return PruneError(.invalidArgument, "value '\(src[j])' at index \(bs * b + j) cannot be stored as \(type.name) (only finite values can); fix the weights or use f32")
        }
        switch type {
        case .q4_0: encodeQ4_0(src, out)
        case .q4_1: encodeQ4_1(src, out)
        case .q5_0: encodeQ5_0(src, out)
        case .q5_1: encodeQ5_1(src, out)
        case .q8_0: encodeQ8_0(src, out)
        case .q4_K: encodeQ4_K(src, out, scratch)
        case .q5_K: encodeQ5_K(src, out, scratch)
        case .q6_K: encodeQ6_K(src, out, scratch)
        default: preconditionFailure("encodeChunk called for \(type.name)")
        }
        if !halfFieldsAreFinite(type, out) {
            var amax: Float = 0
            for j in 0..<bs { amax = max(amax, abs(src[j])) }
            return PruneError(.invalidArgument, "values up to '\(amax)' at indices \(bs * b)..<\(bs * (b + 1)) are beyond \(type.name)'s range (an f16 scale or minimum above 65504); use f32")
        }
    }
    return nil
}

/// Whether the f16 scale fields of an encoded block are finite (what ggml's
/// `ggml_validate_row_data` checks before llama.cpp accepts a block).
private func halfFieldsAreFinite(_ type: GGMLType, _ block: UnsafeMutableRawPointer) -> Bool {
    func finite(_ offset: Int) -> Bool {
        UInt16(littleEndian: block.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) & 0x7C00 != 0x7C00
    }
    switch type {
    case .q4_1, .q5_1, .q4_K, .q5_K: return finite(0) && finite(2)
    case .q6_K: return finite(208)
    default: return finite(0)
    }
}

/// Stores `value` rounded to f16 at `offset` of `p` and returns the stored value as f32.
@inline(__always) @discardableResult
func storeHalf(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: Float) -> Float {
    let h = Half.fromFloat(value)
    p.storeBytes(of: h.littleEndian, toByteOffset: offset, as: UInt16.self)
    return Half.toFloat(h)
}
