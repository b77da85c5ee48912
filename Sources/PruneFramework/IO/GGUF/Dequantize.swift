/// Dequantisation of ggml tensor blocks to f32, following ggml's reference `dequantize_row_*`
/// (ggml-quants.c) operation for operation, so results match llama.cpp's bit for bit.
///
/// Block layouts (all little-endian, f16 = IEEE half):
/// - Q4_0 (18 bytes / 32): d f16, qs[16] nibbles; x = (q − 8)·d
/// - Q4_1 (20 / 32): d, m f16, qs[16]; x = q·d + m
/// - Q5_0 (22 / 32): d f16, qh u32 (5th bits), qs[16]; x = (q − 16)·d
/// - Q5_1 (24 / 32): d, m f16, qh u32, qs[16]; x = q·d + m
/// - Q8_0 (34 / 32): d f16, qs[32] int8; x = q·d
/// - Q2_K (84 / 256): scales[16] (4-bit scale | 4-bit min << 4), qs[64] 2-bit, d, dmin f16
/// - Q3_K (110 / 256): hmask[32], qs[64] 2-bit, scales[12] packed 6-bit, d f16
/// - Q4_K (144 / 256): d, dmin f16, scales[12] packed 6-bit scales and mins, qs[128] nibbles
/// - Q5_K (176 / 256): d, dmin f16, scales[12], qh[32], qs[128]
/// - Q6_K (210 / 256): ql[128] nibbles, qh[64] 2-bit highs, scales[16] int8, d f16
/// - Q8_K (292 / 256): d f32, qs[256] int8, bsums[16] int16 (unused here)
///
/// In every 32-element block the low nibbles of qs[0..<16] are elements 0–15 and the high
/// nibbles elements 16–31; the K-quant element orders are spelled out in each function.

/// Converts `count` elements of type `type` from `src` to f32 in `dst`.
///
/// - src: at least `type.byteCount(elements: count)` bytes
/// - dst: room for `count` floats
/// Throws when `count` is not a whole number of blocks, `src` is too short, or the type is not
/// in `GGMLType.dequantizable`.
public func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int,
                       into dst: UnsafeMutablePointer<Float>) throws {
    let need = try type.byteCount(elements: count)
    guard src.count >= need else {
        throw PruneError(.truncated, "\(type.name) data holds \(src.count) bytes but \(count) elements need \(need)")
    }
    guard count > 0, let p = src.baseAddress else { return }
    let blocks = count / type.blockSize
    switch type {
    case .f32:
        #if _endian(little)
        UnsafeMutableRawPointer(dst).copyMemory(from: p, byteCount: 4 * count)
        #else
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        #endif
    case .f16:
        Half.table.withUnsafeBufferPointer { t in
            for i in 0..<count { dst[i] = t[Int(u16(p, 2 * i))] }
        }
    case .bf16:
        for i in 0..<count { dst[i] = Half.bf16ToFloat(u16(p, 2 * i)) }
    case .q4_0: for b in 0..<blocks { dequantQ4_0(p + 18 * b, dst + 32 * b) }
    case .q4_1: for b in 0..<blocks { dequantQ4_1(p + 20 * b, dst + 32 * b) }
    case .q5_0: for b in 0..<blocks { dequantQ5_0(p + 22 * b, dst + 32 * b) }
    case .q5_1: for b in 0..<blocks { dequantQ5_1(p + 24 * b, dst + 32 * b) }
    case .q8_0: for b in 0..<blocks { dequantQ8_0(p + 34 * b, dst + 32 * b) }
    case .q2_K: for b in 0..<blocks { dequantQ2_K(p + 84 * b, dst + 256 * b) }
    case .q3_K: for b in 0..<blocks { dequantQ3_K(p + 110 * b, dst + 256 * b) }
    case .q4_K: for b in 0..<blocks { dequantQ4_K(p + 144 * b, dst + 256 * b) }
    case .q5_K: for b in 0..<blocks { dequantQ5_K(p + 176 * b, dst + 256 * b) }
    case .q6_K: for b in 0..<blocks { dequantQ6_K(p + 210 * b, dst + 256 * b) }
    case .q8_K: for b in 0..<blocks { dequantQ8_K(p + 292 * b, dst + 256 * b) }
    default:
        let known = GGMLType.dequantizable.map(\.name).joined(separator: ", ")
        throw PruneError(.unsupported, "tensor type '\(type.name)' cannot be dequantised; supported: \(known); convert the model to one of these with llama-quantize")
    }
}

@inline(__always) private func u16(_ p: UnsafeRawPointer, _ off: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ off: Int) -> Float { Half.toFloat(u16(p, off)) }

@inline(__always) private func bytes(_ p: UnsafeRawPointer, _ off: Int) -> UnsafePointer<UInt8> {
    (p + off).assumingMemoryBound(to: UInt8.self)
}

/// Q4_0: x = (q − 8)·d.
private func dequantQ4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0)
    let qs = bytes(p, 2)
    for j in 0..<16 {
        y[j] = Float(Int32(qs[j] & 0xF) - 8) * d
        y[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
    }
}

/// Q4_1: x = q·d + m.
private func dequantQ4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), m = f16(p, 2)
    let qs = bytes(p, 4)
    for j in 0..<16 {
        y[j] = Float(qs[j] & 0xF) * d + m
        y[j + 16] = Float(qs[j] >> 4) * d + m
    }
}

/// The 5th bits of elements j and j + 16 of a Q5 block, already shifted to bit 4.
@inline(__always) private func q5High(_ qh: UInt32, _ j: Int) -> (UInt8, UInt8) {
    (UInt8(truncatingIfNeeded: (qh &>> UInt32(j)) &<< 4) & 0x10, UInt8(truncatingIfNeeded: qh &>> UInt32(j + 12)) & 0x10)
}

/// Q5_0: the 5th bit of element j is bit j of qh; x = (q − 16)·d.
private func dequantQ5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0)
    let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
    let qs = bytes(p, 6)
    for j in 0..<16 {
        let (h0, h1) = q5High(qh, j)
        y[j] = Float(Int32((qs[j] & 0xF) | h0) - 16) * d
        y[j + 16] = Float(Int32((qs[j] >> 4) | h1) - 16) * d
    }
}

/// Q5_1: as Q5_0 without the offset; x = q·d + m.
private func dequantQ5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), m = f16(p, 2)
    let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
    let qs = bytes(p, 8)
    for j in 0..<16 {
        let (h0, h1) = q5High(qh, j)
        y[j] = Float((qs[j] & 0xF) | h0) * d + m
        y[j + 16] = Float((qs[j] >> 4) | h1) * d + m
    }
}

/// Q8_0: x = q·d.
private func dequantQ8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0)
    let qs = (p + 2).assumingMemoryBound(to: Int8.self)
    for j in 0..<32 { y[j] = Float(qs[j]) * d }
}

/// Q2_K: 16 sub-blocks of 16. Element 128·n + 32·j + l (n < 2, j < 4, l < 32) is bits 2j, 2j+1
/// of qs[32·n + l], with sub-block 8·n + 2·j + l/16; x = d·scale·q − dmin·min.
private func dequantQ2_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let sc = bytes(p, 0)
    let d = f16(p, 80), dmin = f16(p, 82)
    for n in 0..<2 {
        let q = bytes(p, 16 + 32 * n)
        for j in 0..<4 {
            let shift = UInt8(2 * j)
            for h in 0..<2 {
                let s = sc[8 * n + 2 * j + h]
                let dl = d * Float(s & 0xF), ml = dmin * Float(s >> 4)
                let out = y + 128 * n + 32 * j + 16 * h
                for l in 0..<16 { out[l] = dl * Float((q[16 * h + l] &>> shift) & 3) - ml }
            }
        }
    }
}

/// The 6-bit scale (minus 32) of sub-block i of a Q3_K block: low 4 bits from byte i (i < 8) or
/// the high nibble of byte i − 8, high 2 bits from byte 8 + i % 4 at bit 2·(i / 4).
@inline(__always) private func q3KScale(_ s: UnsafePointer<UInt8>, _ i: Int) -> Float {
    let low = i < 8 ? s[i] & 0xF : s[i - 8] >> 4
    let high = (s[8 + i % 4] &>> UInt8(2 * (i / 4))) & 3
    return Float(Int32(low | high << 4) - 32)
}

/// Q3_K: 16 sub-blocks of 16. Element 128·n + 32·j + l takes its 2 low bits as in Q2_K and its
/// high bit from hmask[l] bit 4·n + j; a clear high bit subtracts 4. x = d·(scale − 32)·q.
private func dequantQ3_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let hm = bytes(p, 0), sc = bytes(p, 96)
    let d = f16(p, 108)
    for n in 0..<2 {
        let q = bytes(p, 32 + 32 * n)
        for j in 0..<4 {
            let shift = UInt8(2 * j), m = UInt8(1) << UInt8(4 * n + j)
            for h in 0..<2 {
                let dl = d * q3KScale(sc, 8 * n + 2 * j + h)
                let out = y + 128 * n + 32 * j + 16 * h
                for l in 0..<16 {
                    let i = 16 * h + l
                    out[l] = dl * Float(Int32((q[i] &>> shift) & 3) - (hm[i] & m != 0 ? 0 : 4))
                }
            }
        }
    }
}

/// The 6-bit scale and min of sub-block j from the 12 packed bytes of a Q4_K/Q5_K block
/// (ggml's `get_scale_min_k4`).
@inline(__always) private func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
    if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
    return (Float((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)), Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
}

/// Q4_K: 8 sub-blocks of 32. Element 64·j + l is the low nibble of qs[32·j + l] (sub-block 2j)
/// and element 64·j + 32 + l the high nibble (sub-block 2j+1); x = d·scale·q − dmin·min.
private func dequantQ4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), dmin = f16(p, 2)
    let sc = bytes(p, 4)
    for j in 0..<4 {
        let q = bytes(p, 16 + 32 * j), out = y + 64 * j
        let (s1, m1) = scaleMinK4(2 * j, sc), (s2, m2) = scaleMinK4(2 * j + 1, sc)
        let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
        for l in 0..<32 { out[l] = d1 * Float(q[l] & 0xF) - mm1 }
        for l in 0..<32 { out[l + 32] = d2 * Float(q[l] >> 4) - mm2 }
    }
}

/// Q5_K: as Q4_K plus a 5th bit: qh[l] bit 2j for element 64·j + l, bit 2j+1 for 64·j + 32 + l.
private func dequantQ5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), dmin = f16(p, 2)
    let sc = bytes(p, 4), qh = bytes(p, 16)
    for j in 0..<4 {
        let ql = bytes(p, 48 + 32 * j), out = y + 64 * j
        let (s1, m1) = scaleMinK4(2 * j, sc), (s2, m2) = scaleMinK4(2 * j + 1, sc)
        let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
        let b1 = UInt8(2 * j), b2 = UInt8(2 * j + 1)
        for l in 0..<32 { out[l] = d1 * Float((ql[l] & 0xF) | (((qh[l] &>> b1) & 1) << 4)) - mm1 }
        for l in 0..<32 { out[l + 32] = d2 * Float((ql[l] >> 4) | (((qh[l] &>> b2) & 1) << 4)) - mm2 }
    }
}

/// Q6_K: two halves of 128. In half n, for l < 32, elements l, l+32, l+64, l+96 are the low
/// nibble of ql[l], of ql[l+32], the high nibble of ql[l], of ql[l+32], each with 2 high bits
/// from qh[l] (bits 0–1, 2–3, 4–5, 6–7); scales 8·n + l/16 + 0, 2, 4, 6. x = d·scale·(q − 32).
private func dequantQ6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 208)
    for n in 0..<2 {
        let ql = bytes(p, 64 * n), qh = bytes(p, 128 + 32 * n)
        let sc = (p + 192 + 8 * n).assumingMemoryBound(to: Int8.self)
        let out = y + 128 * n
        for g in 0..<2 {
            // ggml multiplies d·scale first, then q; so do we.
            let d1 = d * Float(sc[g]), d2 = d * Float(sc[g + 2]), d3 = d * Float(sc[g + 4]), d4 = d * Float(sc[g + 6])
            for l in (16 * g)..<(16 * g + 16) {
                let a = ql[l], b = ql[l + 32], h = qh[l]
                out[l] = d1 * Float(Int32((a & 0xF) | ((h & 3) << 4)) - 32)
                out[l + 32] = d2 * Float(Int32((b & 0xF) | (((h >> 2) & 3) << 4)) - 32)
                out[l + 64] = d3 * Float(Int32((a >> 4) | (((h >> 4) & 3) << 4)) - 32)
                out[l + 96] = d4 * Float(Int32((b >> 4) | (((h >> 6) & 3) << 4)) - 32)
            }
        }
    }
}

/// Q8_K: x = d·q with d an f32.
private func dequantQ8_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
    let qs = (p + 4).assumingMemoryBound(to: Int8.self)
    for j in 0..<256 { y[j] = d * Float(qs[j]) }
}
