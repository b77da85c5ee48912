import Foundation

/// The quantized weights and the arithmetic that let a forward pass reproduce llama.cpp's CPU
/// outputs bit for bit instead of to ~1 logit.
///
/// Why an emulation: SmolLM2 carries activations of ~25,000 at its first token, so an f32 rounding
/// difference anywhere moves some activation across a rounding boundary of the next Q8 quantization,
/// and the 1/127-of-the-block step that follows grows layer after layer: an exact f32 forward (ours,
/// PyTorch's) ends up ~1.05 away from llama.cpp at positions 0–7, and llama.cpp itself moves those
/// logits by 1.35 when only its KV cache type changes. Matching llama.cpp therefore means doing what
/// its CPU backend does, rounding for rounding. What it does, per operation, as read in ggml's source
/// (ggml-cpu.c, ops.cpp, vec.h, vec.cpp, arch/x86/quants.c, llamafile/sgemm.cpp) and checked tensor
/// by tensor against llama.cpp's own intermediate tensors (for SmolLM2-135M Q4_1 on WikiText-2 window 0
/// every layer's output and the final hidden states equal llama.cpp's bit for bit):
///
/// 1. mul_mat with a Q4_1 weight: each activation row is quantized to Q8_1 (`quantize_row_q8_1`, x86
///    path: d = amax/127 stored as f16, q = round-half-even(x·(127/amax)), s = f16(d·Σq)); then
///    `ggml_vec_dot_q4_1_q8_1` keeps 8 float lanes, each adding fma(d_w·d_x, Σ of 4 integer products,
///    lane) block after block, sums them as `hsum_float_8` and adds Σ m_w·s_x accumulated in f32.
/// 2. mul_mat with the Q8_0 output head: rows quantized to Q8_0 (same d and q as Q8_1); the integer
///    block products are exact, so W_f32·x' differs only by the f32 summation order of the last op.
/// 3. RMSNorm: Σx² in double, mean and 1/sqrtf(mean+eps) in float, x·scale, then ·weight.
/// 4. RoPE (normal mode, adjacent pairs): θ starts at the position and is multiplied by
///    powf(base, −2/head_dim) once per pair; cosf/sinf; out = fma(x0, cos, −x1·sin), fma(x0, sin, x1·cos).
/// 5. K and V are stored in an f16 cache; Q and the softmax probabilities are converted to f16 by
///    mul_mat (round to nearest even); KQ and KQV run in llamafile's tinyBLAS (AVX-512: 16 float
///    lanes, fma along k, `_mm512_reduce_add_ps`); f16·f16 products are exact in f32.
/// 6. Softmax: x·scale + mask, max, `ggml_v_expf` (a polynomial, not expf) of x − max, sums of 16
///    values reduced like `_mm512_reduce_add_ps` and added in double, then ·(float)(1/sum).
/// 7. SwiGLU: x / (1 + ggml_v_expf(−x)) · g.
///
/// fma is emulated in Double (an f32·f32 product is exact there); it differs from a true fma only if a
/// sum needs more than 53 bits and then lands on a float midpoint, which never happened for 3·10⁸
/// consecutive inputs of `ggml_v_expf`. The emulated build is llama.cpp's CPU backend compiled for AVX-512 (the
/// reference's machine; AVX2-only builds use 8 lanes in steps 5–7) processing a prompt of ≥ 2 tokens
/// in one batch, without flash attention. Supported weights: Q4_1 linear layers, a Q8_0 or Q4_1 head.
public final class LlamaCppNumerics: @unchecked Sendable {
    /// Q4_1 weights by canonical tensor name: every linear layer, and the output head unless it is
    /// Q8_0 (whose dequantized values the model already holds).
    let weights: [String: Q4_1Weight]
    /// The file the weights were read from.
    public let path: String
    /// The last model found to hold these weights, and its parameter version then.
    private weak var verifiedModel: Transformer?
    private var verifiedVersion = -1
    private let lock = NSLock()

    /// Reads the quantized weights of every linear layer of the model in `gguf`.
    public init(gguf f: GGUFFile) throws {
        let config = try ModelConfig(gguf: f)
        let file = (f.path as NSString).lastPathComponent
        let headName = config.tiedEmbeddings ? TensorNames.tokenEmbedding : TensorNames.output
        var loaded: [String: Q4_1Weight] = [:]
        for (name, shape) in TensorNames.layout(for: config) where shape.count == 2 {
            guard let info = f.tensor(named: name) else {
                throw PruneError(.badFormat, "GGUF file '\(file)': tensor '\(name)' is missing")
            }
            if name == headName {
                guard info.type == .q8_0 || info.type == .q4_1 else {
                    throw PruneError(.unsupported, "llama.cpp numerics: output head '\(name)' in '\(file)' is \(info.type.name); emulated head types: q8_0, q4_1")
                }
                if info.type == .q8_0 { continue }
            } else if name == TensorNames.tokenEmbedding {
                continue
            }
            guard info.type == .q4_1 else {
                throw PruneError(.unsupported, "llama.cpp numerics: tensor '\(name)' in '\(file)' is \(info.type.name); only q4_1 linear weights are emulated (quantize the model with llama-quantize ... Q4_1)")
            }
            loaded[name] = try Q4_1Weight(f.rawBytes(info), rows: shape[0], cols: shape[1])
        }
        weights = loaded
        path = f.path
    }

    /// Opens `ggufPath` and reads its quantized linear weights.
    public convenience init(ggufPath: String) throws {
        try self.init(gguf: try GGUFFile(path: ggufPath))
    }

    /// Checks that every quantized weight dequantizes to the model's parameter of the same name, so
    /// the emulation runs the model it is given (not a pruned or retrained copy of it).
    func check(_ model: Transformer) throws {
        lock.lock()
        defer { lock.unlock() }
        if verifiedModel === model && verifiedVersion == model.params.version { return }
        for (name, w) in weights {
            guard let e = model.params.entry(name), e.shape == [w.rows, w.cols] else {
                throw PruneError(.shapeMismatch, "llama.cpp numerics from '\(path)': tensor '\(name)' is \(w.rows)×\(w.cols) but the model has \(model.params.entry(name)?.shape.description ?? "no such tensor"); load the numerics from the model's own GGUF file")
            }
            if let r = w.firstMismatch(model.params.pointer(name)) {
                throw PruneError(.invalidArgument, "llama.cpp numerics from '\(path)': tensor '\(name)' row \(r) differs from the model's weights; the emulation needs the unmodified quantized model it was loaded from")
            }
        }
        verifiedModel = model
        verifiedVersion = model.params.version
    }
}

// MARK: - Q4_1 weights and Q8_1 activations

/// Slot of element `i` (0..<32) of a block in the lane layout: ggml's lane j = i/4 sums elements
/// 4j..<4j+4; slots hold lanes 0–3 then 4–7, each as two interleaved halves of its 4 elements, so
/// pairwise multiply-adds of 8 Int16 give 4 lanes at once.
@inline(__always) func laneSlot(_ i: Int) -> Int {
    let j = i >> 2, e = i & 3
    return ((j >> 2) * 2 + (e >> 1)) * 8 + (j & 3) * 2 + (e & 1)
}

/// A Q4_1 matrix kept quantized: 4-bit quants in the lane layout, and d and m per 32-value block.
struct Q4_1Weight: Sendable {
    let rows: Int
    let cols: Int
    /// rows × cols quants 0...15, each block of 32 in `laneSlot` order.
    let quants: [Int16]
    /// rows × cols/32 scales d (f16 values).
    let scales: [Float]
    /// rows × cols/32 minimums m (f16 values).
    let mins: [Float]

    /// Unpacks Q4_1 blocks (d f16, m f16, 16 bytes of nibbles: low = elements 0–15, high = 16–31).
    init(_ raw: UnsafeRawBufferPointer, rows: Int, cols: Int) throws {
        let blocks = rows * cols / 32
        guard cols % 32 == 0, raw.count >= blocks * 20, let p = raw.baseAddress else {
            throw PruneError(.truncated, "Q4_1 matrix \(rows)×\(cols) needs \(rows * cols / 32 * 20) bytes of whole blocks, got \(raw.count)")
        }
        var q = [Int16](repeating: 0, count: rows * cols)
        var d = [Float](repeating: 0, count: blocks), m = d
        q.withUnsafeMutableBufferPointer { qb in
            for b in 0..<blocks {
                let blk = p + 20 * b
                d[b] = Half.toFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self)))
                m[b] = Half.toFloat(UInt16(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
                let out = qb.baseAddress! + 32 * b
                for j in 0..<16 {
                    let byte = blk.load(fromByteOffset: 4 + j, as: UInt8.self)
                    out[laneSlot(j)] = Int16(byte & 0xF)
                    out[laneSlot(j + 16)] = Int16(byte >> 4)
                }
            }
        }
        self.rows = rows
        self.cols = cols
        quants = q
        scales = d
        mins = m
    }

    /// The first row whose dequantized values (q·d + m, as ggml computes them) differ from `w`.
    func firstMismatch(_ w: UnsafePointer<Float>) -> Int? {
        let nb = cols / 32
        for r in 0..<rows {
            for b in 0..<nb {
                let d = scales[r * nb + b], m = mins[r * nb + b]
                for i in 0..<32 where Float(quants[(r * nb + b) * 32 + laneSlot(i)]) * d + m != w[r * cols + b * 32 + i] {
                    return r
                }
            }
        }
        return nil
    }
}

/// Activation rows quantized to Q8_1 as `quantize_row_q8_1` does: quants in the lane layout, the
/// f16-rounded d and s = f16(d·Σq) of each 32-value block.
struct Q8_1Rows {
    let quants: [Int16]
    let scales: [Float]
    let sums: [Float]

    /// Quantizes `x` (rows × cols, cols a multiple of 32), rows in parallel.
    init(_ x: UnsafePointer<Float>, rows: Int, cols: Int) {
        let nb = cols / 32
        var q = [Int16](repeating: 0, count: rows * cols)
        var d = [Float](repeating: 0, count: rows * nb), s = d
        q.withUnsafeMutableBufferPointer { qb in d.withUnsafeMutableBufferPointer { db in s.withUnsafeMutableBufferPointer { sb in
            let qp = qb.baseAddress!, dp = db.baseAddress!, sp = sb.baseAddress!
            let jobs = min(rows, 4 * Matmul.threads)
            DispatchQueue.concurrentPerform(iterations: jobs) { job in
                for blk in (rows * job / jobs * nb)..<(rows * (job + 1) / jobs * nb) {
                    let src = x + 32 * blk, out = qp + 32 * blk
                    var amax: Float = 0
                    for i in 0..<32 { amax = max(amax, abs(src[i])) }
                    let scale = amax / 127, id: Float = amax != 0 ? 127 / amax : 0
                    var sum = 0
                    for i in 0..<32 {
                        let v = q8(src[i] * id)
                        out[laneSlot(i)] = Int16(v)
                        sum += v
                    }
                    dp[blk] = halfRounded(scale)
                    sp[blk] = halfRounded(scale * Float(sum))
                }
            }
        }}}
        quants = q
        scales = d
        sums = s
    }
}

/// x rounded half to even to an int8 quant (`_mm256_round_ps`, then saturating packs; NaN gives −128).
@inline(__always) private func q8(_ x: Float) -> Int {
    x.isNaN ? -128 : Int(min(127, max(-128, x.rounded(.toNearestOrEven))))
}

/// Pairwise multiply-add of 8 Int16 pairs into 4 Int32 (the compiler emits pmaddwd).
@inline(__always) private func pairDot(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
    let p = SIMD8<Int32>(truncatingIfNeeded: a) &* SIMD8<Int32>(truncatingIfNeeded: b)
    return p.evenHalf &+ p.oddHalf
}

/// lane = fl32(lane + d·xy) for two lanes: d·xy is exact in Double, the sum is rounded to float.
@inline(__always) private func fmaLanes(_ acc: inout SIMD2<Double>, _ xy0: Int32, _ xy1: Int32, _ d: Double) {
    acc = SIMD2<Double>(SIMD2<Float>(SIMD2<Double>(Double(xy0), Double(xy1)) * d + acc))
}

/// The 8 float lanes of one `ggml_vec_dot_q4_1_q8_1` accumulator, two per SIMD2<Double>.
private struct Lanes8 {
    var a0 = SIMD2<Double>(), a1 = SIMD2<Double>(), a2 = SIMD2<Double>(), a3 = SIMD2<Double>()
    var summs: Float = 0

    /// Adds one block: xy of lanes 0–3 and 4–7, d = d_w·d_x, ms = m_w·s_x.
    @inline(__always) mutating func add(_ lo: SIMD4<Int32>, _ hi: SIMD4<Int32>, _ d: Double, _ ms: Float) {
        fmaLanes(&a0, lo[0], lo[1], d)
        fmaLanes(&a1, lo[2], lo[3], d)
        fmaLanes(&a2, hi[0], hi[1], d)
        fmaLanes(&a3, hi[2], hi[3], d)
        summs += ms
    }

    /// hsum_float_8 of the lanes, ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)), plus Σ m·s.
    @inline(__always) var total: Float {
        let f0 = SIMD2<Float>(a0), f1 = SIMD2<Float>(a1), f2 = SIMD2<Float>(a2), f3 = SIMD2<Float>(a3)
        return (((f0[0] + f2[0]) + (f1[0] + f3[0])) + ((f0[1] + f2[1]) + (f1[1] + f3[1]))) + summs
    }
}

/// Two outputs of `ggml_vec_dot_q4_1_q8_1` (x86 AVX2 path), bit for bit: one weight row against two
/// activation rows (two independent accumulators keep the conversion units busy).
///
/// - w, dw, mw: one weight row: nb·32 lane-layout quants, nb scales, nb minimums
/// - x, dx, sx: the first activation row: nb·32 lane-layout quants, nb scales, nb sums; the second
///   is `step` (0 or 1) rows further
@inline(__always) private func q4_1Dot2(_ w: UnsafeRawPointer, _ dw: UnsafePointer<Float>, _ mw: UnsafePointer<Float>,
                                        _ x: UnsafeRawPointer, _ dx: UnsafePointer<Float>, _ sx: UnsafePointer<Float>,
                                        step: Int, nb: Int) -> (Float, Float) {
    var u = Lanes8(), v = Lanes8()
    let x2 = x + 64 * nb * step, dx2 = dx + nb * step, sx2 = sx + nb * step
    for b in 0..<nb {
        let o = 64 * b
        @inline(__always) func ld(_ p: UnsafeRawPointer, _ k: Int) -> SIMD8<Int16> {
            p.loadUnaligned(fromByteOffset: o + 16 * k, as: SIMD8<Int16>.self)
        }
        let w0 = ld(w, 0), w1 = ld(w, 1), w2 = ld(w, 2), w3 = ld(w, 3)
        u.add(pairDot(w0, ld(x, 0)) &+ pairDot(w1, ld(x, 1)), pairDot(w2, ld(x, 2)) &+ pairDot(w3, ld(x, 3)),
              Double(dw[b] * dx[b]), mw[b] * sx[b])
        v.add(pairDot(w0, ld(x2, 0)) &+ pairDot(w1, ld(x2, 1)), pairDot(w2, ld(x2, 2)) &+ pairDot(w3, ld(x2, 3)),
              Double(dw[b] * dx2[b]), mw[b] * sx2[b])
    }
    return (u.total, v.total)
}

/// Y[m×n] = X·Wᵀ for a Q4_1 weight W (n×k) as ggml's mul_mat computes it: X quantized to Q8_1, each
/// output from `ggml_vec_dot_q4_1_q8_1`.
///
/// - y: m×n
/// - x: m×k
func q4_1Matmul(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: Q4_1Weight, m: Int) {
    let xq = Q8_1Rows(x, rows: m, cols: w.cols)
    let n = w.rows, k = w.cols, nb = k / 32
    let rowsPerJob = 16, jobs = (n + rowsPerJob - 1) / rowsPerJob, tokenTile = 32
    w.quants.withUnsafeBufferPointer { wq in w.scales.withUnsafeBufferPointer { wd in w.mins.withUnsafeBufferPointer { wm in
        xq.quants.withUnsafeBufferPointer { xqb in xq.scales.withUnsafeBufferPointer { xd in xq.sums.withUnsafeBufferPointer { xs in
            let wq = UnsafeRawPointer(wq.baseAddress!), xqp = UnsafeRawPointer(xqb.baseAddress!)
            let wd = wd.baseAddress!, wm = wm.baseAddress!, xd = xd.baseAddress!, xs = xs.baseAddress!
            DispatchQueue.concurrentPerform(iterations: jobs) { job in
                for t0 in stride(from: 0, to: m, by: tokenTile) {
                    let t1 = min(m, t0 + tokenTile)
                    for r in (job * rowsPerJob)..<min(n, job * rowsPerJob + rowsPerJob) {
                        let wr = wq + 2 * r * k, dr = wd + r * nb, mr = wm + r * nb
                        var t = t0
                        while t + 1 < t1 {
                            (y[t * n + r], y[(t + 1) * n + r]) = q4_1Dot2(wr, dr, mr, xqp + 2 * t * k, xd + t * nb, xs + t * nb,
                                                                          step: 1, nb: nb)
                            t += 2
                        }
                        if t < t1 {
                            // An odd last row: pair it with itself.
                            y[t * n + r] = q4_1Dot2(wr, dr, mr, xqp + 2 * t * k, xd + t * nb, xs + t * nb, step: 0, nb: nb).0
                        }
                    }
                }
            }
        }}}
    }}}
}

/// Replaces each row of `x` (rows × cols) by its Q8_0 round trip f16(d)·q, d = amax/127,
/// q = round-half-even(x·127/amax), as `quantize_row_q8_0` (x86 path) and the dot product see it.
func q8_0RoundTrip(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for blk in 0..<(rows * cols / 32) {
        let v = x + 32 * blk
        var amax: Float = 0
        for i in 0..<32 { amax = max(amax, abs(v[i])) }
        let d = halfRounded(amax / 127), id: Float = amax != 0 ? 127 / amax : 0
        for i in 0..<32 { v[i] = d * Float(q8(v[i] * id)) }
    }
}

// MARK: - Element-wise arithmetic of ggml

/// `x` rounded to the nearest IEEE half (ties to even) and widened back, as F16C's vcvtps2ph does.
@inline(__always) func halfRounded(_ x: Float) -> Float {
    let a = abs(x)
    guard a < 65520 else { return x.isNaN ? x : Float(signOf: x, magnitudeOf: .infinity) }
    if a < 0x1p-14 {
        // Half subnormals are multiples of 2^-24: adding 0.75 (whose ulp is 2^-24) rounds to them.
        return Float(signOf: x, magnitudeOf: (a + 0.75) - 0.75)
    }
    let b = x.bitPattern
    return Float(bitPattern: (b &+ 0xFFF &+ ((b >> 13) & 1)) & ~0x1FFF)
}

/// fma(a, b, c) with one rounding: a·b is exact in Double.
@inline(__always) func fmaEmulated(_ a: Float, _ b: Float, _ c: Float) -> Float {
    Float(Double(a) * Double(b) + Double(c))
}

/// `ggml_v_expf` (AVX-512 build), one lane: n = round(x·log2 e), a degree-5 polynomial in the
/// reduced argument, scaled by 2^n; |n| > 192 gives 0 or +∞.
@inline(__always) func ggmlExp(_ x: Float) -> Float {
    let shifter: Float = 0x1.8p23
    let z = fmaEmulated(x, 0x1.715476p+0, shifter)
    let n = z - shifter
    let b = fmaEmulated(-n, 0x1.7f7d1cp-20, fmaEmulated(-n, 0x1.62e4p-1, x))
    let u = b * b
    let j = fmaEmulated(fmaEmulated(fmaEmulated(0x1.0e4020p-7, b, 0x1.573e2ep-5), u,
                                    fmaEmulated(0x1.555e66p-3, b, 0x1.fffdb6p-2)),
                        u, fmaEmulated(0x1.ffffecp-1, b, 1))
    guard abs(n) <= 192 else { return n <= 0 ? 0 : .infinity }
    // _mm512_scalef_ps: j·2^n rounded once (Double holds every 2^n here).
    return Float(Double(j) * Double(sign: .plus, exponent: Int(n), significand: 1))
}

/// `ggml_v_silu`: x / (1 + ggml_v_expf(0 − x)).
@inline(__always) func ggmlSiLU(_ x: Float) -> Float {
    x / (1 + ggmlExp(0 - x))
}

/// `_mm512_reduce_add_ps`: halves added pairwise (8, 4, then 2 lanes), then the last two.
@inline(__always) func reduce16(_ v: SIMD16<Float>) -> Float {
    let h8 = v.highHalf + v.lowHalf
    let h4 = h8.highHalf + h8.lowHalf
    return (h4[0] + h4[2]) + (h4[1] + h4[3])
}
