/// The 256-element super-block quantizers Q4_K, Q5_K and Q6_K, following ggml's
/// `quantize_row_q4_K_ref`, `quantize_row_q5_K_ref` and `quantize_row_q6_K_ref` (ggml-quants.c)
/// with their helpers `nearest_int`, `make_qkx2_quants` and `make_qx_quants`, operation for
/// operation (no importance matrix: what llama-quantize does without `--imatrix`).
///
/// Q4_K and Q5_K: 8 sub-blocks of 32, each with a scale and a min found by `make_qkx2_quants`
/// (a search over 21 or 16 candidate scales minimising the weighted squared error, weights
/// √mean(x²) + |x|), both coded on 6 bits against the block's f16 `d` and `dmin`, then every
/// value quantized again with the coded scale and min. Q6_K: 16 sub-blocks of 16 with a signed
/// 8-bit scale from `make_qx_quants` (19 candidate scales, weights x²) against an f16 `d`.

/// Per-thread scratch of the K-quant encoders (ggml keeps these arrays on its stack).
struct KQuantScratch {
    /// 256 codes of the block.
    let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
    /// 32 candidate codes of `make_qkx2_quants`.
    let candidate = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    /// 32 weights of a sub-block.
    let weights = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    /// Per sub-block scales (16) and mins (8).
    let scales = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let mins = UnsafeMutablePointer<Float>.allocate(capacity: 8)

    func deallocate() {
        codes.deallocate()
        candidate.deallocate()
        weights.deallocate()
        scales.deallocate()
        mins.deallocate()
    }
}

/// ggml's `nearest_int`: round to nearest even by adding 1.5·2²³ and reading the mantissa
/// (exact for |f| < 2²²; beyond that the same garbage as ggml's).
@inline(__always) func nearestInt(_ f: Float) -> Int32 {
    let v = f + 12_582_912
    return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
}

@inline(__always) private func clamp(_ v: Int32, _ lo: Int32, _ hi: Int32) -> Int32 { max(lo, min(hi, v)) }

/// Q4_K block (144 bytes): d, dmin f16, scales[12], qs[128] (layout in Dequantize.swift).
func encodeQ4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: KQuantScratch) {
    encodeKScales(x, y, s, nmax: 15, rmin: -1, steps: 20)
    let q = (y + 16).assumingMemoryBound(to: UInt8.self)
    for n in 0..<4 {
        for l in 0..<32 { q[32 * n + l] = s.codes[64 * n + l] | s.codes[64 * n + l + 32] << 4 }
    }
}

/// Q5_K block (176 bytes): d, dmin f16, scales[12], qh[32], qs[128].
func encodeQ5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: KQuantScratch) {
    encodeKScales(x, y, s, nmax: 31, rmin: -0.5, steps: 15)
    let qh = (y + 16).assumingMemoryBound(to: UInt8.self), ql = (y + 48).assumingMemoryBound(to: UInt8.self)
    for j in 0..<32 { qh[j] = 0 }
    for n in 0..<4 {
        let m1 = UInt8(1) << UInt8(2 * n), m2 = UInt8(2) << UInt8(2 * n)
        for j in 0..<32 {
            var l1 = s.codes[64 * n + j], l2 = s.codes[64 * n + j + 32]
            if l1 > 15 { l1 -= 16; qh[j] |= m1 }
            if l2 > 15 { l2 -= 16; qh[j] |= m2 }
            ql[32 * n + j] = l1 | l2 << 4
        }
    }
}

/// The part Q4_K and Q5_K share: sub-block scales and mins, their 6-bit codes in bytes 4..<16,
/// d and dmin in bytes 0..<4, and the 256 codes in `s.codes` requantized with the coded values.
private func encodeKScales(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: KQuantScratch,
                           nmax: Int32, rmin: Float, steps: Int) {
    var maxScale: Float = 0, maxMin: Float = 0
    for j in 0..<8 {
        let xj = x + 32 * j
        var sumX2: Float = 0
        for l in 0..<32 { sumX2 += xj[l] * xj[l] }
        let avX = (sumX2 / 32).squareRoot()
        for l in 0..<32 { s.weights[l] = avX + abs(xj[l]) }
        let (scale, m) = makeQKX2Quants(32, nmax, xj, s.weights, s.codes + 32 * j, s.candidate,
                                        rmin: rmin, rdelta: 0.1, steps: steps)
        s.scales[j] = scale
        s.mins[j] = m
        if scale > maxScale { maxScale = scale }
        if m > maxMin { maxMin = m }
    }
    let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
    packKScales(sc, s, invScale: maxScale > 0 ? 63 / maxScale : 0, invMin: maxMin > 0 ? 63 / maxMin : 0)
    let d = storeHalf(y, 0, maxScale / 63), dmin = storeHalf(y, 2, maxMin / 63)
    for j in 0..<8 {
        let (ls, lm) = kScaleMin(j, sc)
        let dj = d * Float(ls)
        if dj == 0 { continue }
        let dm = dmin * Float(lm)
        for i in 32 * j..<32 * j + 32 {
            s.codes[i] = UInt8(clamp(nearestInt((x[i] + dm) / dj), 0, nmax))
        }
    }
}

/// Codes the 8 scales and mins of `s` on 6 bits and packs them into `sc[0..<12]`: scale j and
/// min j in the low 6 bits of bytes j and j + 4 for j < 4; for j ≥ 4 their low nibbles in byte
/// j + 4 and their high 2 bits in the top bits of bytes j − 4 and j.
private func packKScales(_ sc: UnsafeMutablePointer<UInt8>, _ s: KQuantScratch, invScale: Float, invMin: Float) {
    for j in 0..<8 {
        let ls = min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * s.scales[j])))
        let lm = min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * s.mins[j])))
        if j < 4 {
            sc[j] = ls
            sc[j + 4] = lm
        } else {
            sc[j + 4] = (ls & 0xF) | (lm & 0xF) << 4
            sc[j - 4] |= (ls >> 4) << 6
            sc[j] |= (lm >> 4) << 6
        }
    }
}

/// The 6-bit scale and min of sub-block j (ggml's `get_scale_min_k4`).
@inline(__always) private func kScaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
    if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
    return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
}

/// Q6_K block (210 bytes): ql[128], qh[64], scales[16] int8, d f16.
func encodeQ6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: KQuantScratch) {
    var maxScale: Float = 0, maxAbsScale: Float = 0
    for ib in 0..<16 {
        let scale = makeQXQuants(16, 32, x + 16 * ib, s.codes + 16 * ib)
        s.scales[ib] = scale
        if abs(scale) > maxAbsScale {
            maxAbsScale = abs(scale)
            maxScale = scale
        }
    }
    if maxAbsScale < groupMaxEps {
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
        return
    }
    let iscale = -128 / maxScale
    let d = storeHalf(y, 208, 1 / iscale)
    let sc = (y + 192).assumingMemoryBound(to: Int8.self)
    for ib in 0..<16 { sc[ib] = Int8(truncatingIfNeeded: min(127, nearestInt(iscale * s.scales[ib]))) }
    for j in 0..<16 {
        let dj = d * Float(sc[j])
        if dj == 0 { continue }
        for i in 16 * j..<16 * j + 16 {
            s.codes[i] = UInt8(clamp(nearestInt(x[i] / dj), -32, 31) + 32)
        }
    }
    packQ6(s.codes, ql: y.assumingMemoryBound(to: UInt8.self), qh: (y + 128).assumingMemoryBound(to: UInt8.self))
}

/// Packs 256 six-bit codes: in each half of 128, for l < 32, the low nibbles of codes l and
/// l + 64 in ql[l], of l + 32 and l + 96 in ql[l + 32], and their high 2 bits in qh[l].
private func packQ6(_ L: UnsafePointer<UInt8>, ql: UnsafeMutablePointer<UInt8>, qh: UnsafeMutablePointer<UInt8>) {
    for half in 0..<2 {
        let c = L + 128 * half, lo = ql + 64 * half, hi = qh + 32 * half
        for l in 0..<32 {
            let q1 = c[l], q2 = c[l + 32], q3 = c[l + 64], q4 = c[l + 96]
            lo[l] = (q1 & 0xF) | (q3 & 0xF) << 4
            lo[l + 32] = (q2 & 0xF) | (q4 & 0xF) << 4
            hi[l] = (q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6
        }
    }
}

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below it is all zeros.
private let groupMaxEps: Float = 1e-15
