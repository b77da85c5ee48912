/// Dequantisation of ggml tensor blocks to f32, following ggml's reference `dequantize_row_*`.

/// Converts `count` elements of type `type` from `src` to f32 in `dst`.
///
/// - src: exactly `type.byteCount(elements: count)` bytes
/// - dst: `count` floats
public func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int,
                       into dst: UnsafeMutablePointer<Float>) throws {
    let need = try type.byteCount(elements: count)
    guard src.count >= need else {
        throw PruneError(.truncated, "\(type.name) data holds \(src.count) bytes, \(need) needed for \(count) elements")
    }
    guard count > 0, let p = src.baseAddress else { return }
    let blocks = count / type.blockSize
    switch type {
    case .f32:
        for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .f16:
        for i in 0..<count { dst[i] = Half.toFloat(u16(p, 2 * i)) }
    case .bf16:
        for i in 0..<count { dst[i] = Half.bf16ToFloat(u16(p, 2 * i)) }
    case .q4_0:
        for b in 0..<blocks { dequantQ4_0(p + 18 * b, dst + 32 * b) }
    case .q4_1:
        for b in 0..<blocks { dequantQ4_1(p + 20 * b, dst + 32 * b) }
    case .q5_0:
        for b in 0..<blocks { dequantQ5(p + 22 * b, dst + 32 * b, hasMin: false) }
    case .q5_1:
        for b in 0..<blocks { dequantQ5(p + 24 * b, dst + 32 * b, hasMin: true) }
    case .q8_0:
        for b in 0..<blocks { dequantQ8_0(p + 34 * b, dst + 32 * b) }
    case .q4_K:
        for b in 0..<blocks { dequantQ4_K(p + 144 * b, dst + 256 * b) }
    case .q5_K:
        for b in 0..<blocks { dequantQ5_K(p + 176 * b, dst + 256 * b) }
    case .q6_K:
        for b in 0..<blocks { dequantQ6_K(p + 210 * b, dst + 256 * b) }
    default:
        let known = GGMLType.dequantizable.map(\.name).joined(separator: ", ")
        throw PruneError(.unsupported, "tensor type '\(type.name)' cannot be dequantised yet; supported: \(known)")
    }
}

@inline(__always) private func u16(_ p: UnsafeRawPointer, _ off: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}

@inline(__always) private func f16(_ p: UnsafeRawPointer, _ off: Int) -> Float { Half.toFloat(u16(p, off)) }

/// Q4_0: d (f16), 16 bytes of nibbles; x = (q − 8)·d; low nibbles are elements 0–15, high 16–31.
private func dequantQ4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0)
    let qs = (p + 2).assumingMemoryBound(to: UInt8.self)
    for j in 0..<16 {
        y[j] = Float(Int(qs[j] & 0xF) - 8) * d
        y[j + 16] = Float(Int(qs[j] >> 4) - 8) * d
    }
}

/// Q4_1: d, m (f16), 16 bytes of nibbles; x = q·d + m.
private func dequantQ4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), m = f16(p, 2)
    let qs = (p + 4).assumingMemoryBound(to: UInt8.self)
    for j in 0..<16 {
        y[j] = Float(qs[j] & 0xF) * d + m
        y[j + 16] = Float(qs[j] >> 4) * d + m
    }
}

/// Q5_0 / Q5_1: d (and m), 32 high bits (u32), 16 bytes of nibbles; the 5th bit of element j is bit j.
private func dequantQ5(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, hasMin: Bool) {
    let d = f16(p, 0), m: Float = hasMin ? f16(p, 2) : 0
    let o = hasMin ? 4 : 2
    let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
    let qs = (p + o + 4).assumingMemoryBound(to: UInt8.self)
    let bias = hasMin ? 0 : 16
    for j in 0..<16 {
        let h0 = Int((qh >> UInt32(j)) & 1) << 4, h1 = Int((qh >> UInt32(j + 16)) & 1) << 4
        y[j] = Float((Int(qs[j] & 0xF) | h0) - bias) * d + m
        y[j + 16] = Float((Int(qs[j] >> 4) | h1) - bias) * d + m
    }
}

/// Q8_0: d (f16), 32 int8; x = q·d.
private func dequantQ8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0)
    let qs = (p + 2).assumingMemoryBound(to: Int8.self)
    for j in 0..<32 { y[j] = Float(qs[j]) * d }
}

/// The 6-bit scale and min of sub-block j from the 12 packed bytes of a K-quant block.
@inline(__always) private func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
    if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
    return (Float((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)), Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
}

/// Q4_K: d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles; 8 sub-blocks of 32.
private func dequantQ4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), dmin = f16(p, 2)
    let sc = (p + 4).assumingMemoryBound(to: UInt8.self)
    var q = (p + 16).assumingMemoryBound(to: UInt8.self)
    var out = y
    for j in 0..<4 {
        let (s1, m1) = scaleMinK4(2 * j, sc), (s2, m2) = scaleMinK4(2 * j + 1, sc)
        let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
        for l in 0..<32 { out[l] = d1 * Float(q[l] & 0xF) - mm1 }
        for l in 0..<32 { out[l + 32] = d2 * Float(q[l] >> 4) - mm2 }
        out += 64
        q += 32
    }
}

/// Q5_K: d, dmin, 12 bytes of scales/mins, 32 bytes of high bits, 128 bytes of nibbles.
private func dequantQ5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(p, 0), dmin = f16(p, 2)
    let sc = (p + 4).assumingMemoryBound(to: UInt8.self)
    let qh = (p + 16).assumingMemoryBound(to: UInt8.self)
    var ql = (p + 48).assumingMemoryBound(to: UInt8.self)
    var out = y
    var u1: UInt8 = 1, u2: UInt8 = 2
    for j in 0..<4 {
        let (s1, m1) = scaleMinK4(2 * j, sc), (s2, m2) = scaleMinK4(2 * j + 1, sc)
        let d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2
        for l in 0..<32 { out[l] = d1 * Float(Int(ql[l] & 0xF) + (qh[l] & u1 != 0 ? 16 : 0)) - mm1 }
        for l in 0..<32 { out[l + 32] = d2 * Float(Int(ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - mm2 }
        out += 64
        ql += 32
        u1 <<= 2
        u2 <<= 2
    }
}

/// Q6_K: 128 bytes low nibbles, 64 bytes of 2-bit highs, 16 int8 scales, d (f16); x = d·scale·(q − 32).
private func dequantQ6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    var ql = p.assumingMemoryBound(to: UInt8.self)
    var qh = (p + 128).assumingMemoryBound(to: UInt8.self)
    var sc = (p + 192).assumingMemoryBound(to: Int8.self)
    let d = f16(p, 208)
    var out = y
    for _ in 0..<2 {
        for l in 0..<32 {
            let s = l / 16
            let q1 = Int((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32
            let q2 = Int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
            let q3 = Int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
            let q4 = Int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
            out[l] = d * Float(sc[s]) * Float(q1)
            out[l + 32] = d * Float(sc[s + 2]) * Float(q2)
            out[l + 64] = d * Float(sc[s + 4]) * Float(q3)
            out[l + 96] = d * Float(sc[s + 6]) * Float(q4)
        }
        out += 128
        ql += 64
        qh += 32
        sc += 8
    }
}
