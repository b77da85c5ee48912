/// The 32-element block quantizers Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, following ggml's
/// `quantize_row_q4_0_ref` … `quantize_row_q8_0_ref` (ggml-quants.c) operation for operation.
///
/// Each takes 32 finite floats `x` and writes one block at `y` (layouts in Dequantize.swift).
/// ggml converts a float to a small integer with a C cast, `(int8_t)f` or `(uint8_t)f`, which on
/// x86-64 is a truncating conversion to int32 followed by keeping the low byte; `lowByte` does the
/// same, so even the degenerate blocks (a subnormal maximum whose inverse overflows) match.

/// x86-64's float → int32 conversion (`cvttss2si`): truncation toward zero, and `Int32.min` for
/// NaN and values outside the int32 range.
@inline(__always) func x86Truncate(_ f: Float) -> Int32 {
    guard f >= -2_147_483_648, f < 2_147_483_648 else { return Int32.min }
    return Int32(f)
}

/// A C cast of `f` to an 8-bit integer type, as compiled for x86-64: the low byte of `x86Truncate`.
@inline(__always) private func lowByte(_ f: Float) -> Int8 { Int8(truncatingIfNeeded: x86Truncate(f)) }

/// ggml's `MIN(limit, (int8_t)f)` stored into a `uint8_t`.
@inline(__always) private func cappedCode(_ f: Float, _ limit: Int32) -> UInt8 {
    UInt8(truncatingIfNeeded: min(limit, Int32(lowByte(f))))
}

/// The value of largest magnitude in `x[0..<32]`, the first one on ties (ggml's `max` of the
/// symmetric types).
@inline(__always) private func signedAbsMax(_ x: UnsafePointer<Float>) -> Float {
    var amax: Float = 0, m: Float = 0
    for j in 0..<32 where amax < abs(x[j]) {
        amax = abs(x[j])
        m = x[j]
    }
    return m
}

/// The minimum and maximum of `x[0..<32]`.
@inline(__always) private func minMax(_ x: UnsafePointer<Float>) -> (Float, Float) {
    var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
    for j in 0..<32 {
        if x[j] < lo { lo = x[j] }
        if x[j] > hi { hi = x[j] }
    }
    return (lo, hi)
}

@inline(__always) private func inverse(_ d: Float) -> Float { d != 0 ? 1 / d : 0 }

/// Q4_0: d = max / −8 (max: the signed value of largest magnitude), q = min(15, (x/d + 8.5)).
func encodeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x) / -8
    let id = inverse(d)
    storeHalf(y, 0, d)
    let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
    for j in 0..<16 {
        qs[j] = cappedCode(x[j] * id + 8.5, 15) | cappedCode(x[j + 16] * id + 8.5, 15) << 4
    }
}

/// The header Q4_1 and Q5_1 share: d = (max − min) / levels and the minimum, both as f16 at `y`;
/// returns the minimum and 1/d for the codes.
@inline(__always) private func storeScaleAndMin(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, levels: Float) -> (lo: Float, id: Float) {
    let (lo, hi) = minMax(x)
    let d = (hi - lo) / levels
    storeHalf(y, 0, d)
    storeHalf(y, 2, lo)
    return (lo, inverse(d))
}

/// Q4_1: d = (max − min) / 15, m = min, q = min(15, ((x − min)/d + 0.5)).
func encodeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (lo, id) = storeScaleAndMin(x, y, levels: 15)
    let qs = (y + 4).assumingMemoryBound(to: UInt8.self)
    for j in 0..<16 {
        qs[j] = cappedCode((x[j] - lo) * id + 0.5, 15) | cappedCode((x[j + 16] - lo) * id + 0.5, 15) << 4
    }
}

/// Packs 32 five-bit codes: low nibbles in `qs` (element j and j + 16 share byte j), fifth bits
/// in the little-endian word `qh` (bit j for element j).
@inline(__always) private func packQ5(_ codes: (Int) -> UInt8, qh: UnsafeMutableRawPointer, qs: UnsafeMutablePointer<UInt8>) {
    var bits: UInt32 = 0
    for j in 0..<16 {
        let a = codes(j), b = codes(j + 16)
        qs[j] = (a & 0x0F) | (b & 0x0F) << 4
        bits |= UInt32((a & 0x10) >> 4) << UInt32(j)
        bits |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
    }
    qh.storeBytes(of: bits.littleEndian, as: UInt32.self)
}

/// Q5_0: d = max / −16, q = min(31, (x/d + 16.5)).
func encodeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let d = signedAbsMax(x) / -16
    let id = inverse(d)
    storeHalf(y, 0, d)
    packQ5({ cappedCode(x[$0] * id + 16.5, 31) }, qh: y + 2, qs: (y + 6).assumingMemoryBound(to: UInt8.self))
}

/// Q5_1: d = (max − min) / 31, m = min, q = ((x − min)/d + 0.5) (no cap, as in ggml).
func encodeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    let (lo, id) = storeScaleAndMin(x, y, levels: 31)
    packQ5({ UInt8(bitPattern: lowByte((x[$0] - lo) * id + 0.5)) }, qh: y + 4, qs: (y + 8).assumingMemoryBound(to: UInt8.self))
}

/// Q8_0: d = max|x| / 127, q = round(x/d) (half away from zero).
func encodeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 { amax = max(amax, abs(x[j])) }
    let d = amax / 127
    let id = inverse(d)
    storeHalf(y, 0, d)
    let qs = (y + 2).assumingMemoryBound(to: Int8.self)
    for j in 0..<32 { qs[j] = lowByte((x[j] * id).rounded()) }
}
