import Foundation

/// The forward pass with llama.cpp's CPU arithmetic (see `LlamaCppNumerics`): for comparing with
/// llama.cpp's outputs, not for speed. The f32 forward (`hiddenStates`, `logits`, `nll`) is the model's
/// own; this one reproduces what llama.cpp would print for the same quantized GGUF file.
extension Transformer {
    /// Final-norm hidden states (`batch·seqLen × hiddenSize`, row-major) computed as llama.cpp does.
    ///
    /// - tokens: batch·seqLen ids, sequence-major; each sequence starts at position 0
    /// - numerics: the quantized weights of this model's GGUF file
    public func llamaCppHiddenStates(tokens: [Int32], batch B: Int, seqLen T: Int,
                                     numerics: LlamaCppNumerics) throws -> [Float] {
        try numerics.check(self)
        let c = config, D = c.hiddenSize, N = B * T
        guard c.ropeLayout == .adjacentPairs, !c.attentionBias else {
            throw PruneError(.unsupported, "llama.cpp forward: architecture '\(c.architecture)' (RoPE on halves, q/k/v biases) is not emulated; only llama models are")
        }
        guard B > 0, T > 1, tokens.count == N else {
            throw PruneError(.shapeMismatch, "llama.cpp forward: \(tokens.count) tokens do not make \(B) sequences of \(T) (the emulated batch path needs at least 2 tokens per sequence)")
        }
        guard c.headDim % 16 == 0 else {
            throw PruneError(.unsupported, "llama.cpp forward: head_dim \(c.headDim) is not a multiple of 16; llama.cpp then leaves tinyBLAS for a kernel this emulation does not model")
        }
        if let i = tokens.firstIndex(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw PruneError(.outOfRange, "llama.cpp forward: token id '\(tokens[i])' at index \(i) is outside the vocabulary [0, \(c.vocabSize))")
        }
        var x = [Float](repeating: 0, count: N * D)
        let emb = params.pointer(TensorNames.tokenEmbedding)
        let rope = GGMLRoPETable(headDim: c.headDim, base: c.ropeBase, positions: T)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            for r in 0..<N { (xp + r * D).update(from: emb + Int(tokens[r]) * D, count: D) }
            for l in 0..<c.nLayers { llamaCppBlock(l, x: xp, B: B, T: T, rope: rope, numerics: numerics) }
            ggmlRMSNorm(xp, xp, params.pointer(TensorNames.outputNorm), rows: N, dim: D, eps: c.rmsEps)
        }
        return x
    }

    /// Logits (`rows.count × vocabSize`) of the given rows of `llamaCppHiddenStates` output, with the
    /// output head's activations quantized as llama.cpp quantizes them.
    public func llamaCppLogits(hiddenStates hs: [Float], rows: Range<Int>, numerics: LlamaCppNumerics) -> [Float] {
        let D = config.hiddenSize, V = config.vocabSize
        precondition(rows.lowerBound >= 0 && rows.upperBound * D <= hs.count, "llamaCppLogits: rows \(rows) outside the hidden states")
        var x = Array(hs[(rows.lowerBound * D)..<(rows.upperBound * D)])
        var out = [Float](repeating: 0, count: rows.count * V)
        out.withUnsafeMutableBufferPointer { ob in
            x.withUnsafeMutableBufferPointer { xb in
                llamaCppHead(ob.baseAddress!, xb.baseAddress!, m: rows.count, numerics: numerics)
            }
        }
        return out
    }

    /// Logits of every position (`batch·seqLen × vocabSize`) as llama.cpp computes them.
    public func llamaCppLogits(tokens: [Int32], batch: Int, seqLen: Int, numerics: LlamaCppNumerics) throws -> [Float] {
        let hs = try llamaCppHiddenStates(tokens: tokens, batch: batch, seqLen: seqLen, numerics: numerics)
        return llamaCppLogits(hiddenStates: hs, rows: 0..<(batch * seqLen), numerics: numerics)
    }

    /// Summed next-token NLL of each sequence from `llamaCppHiddenStates` output (as `nll` does for
    /// the f32 forward).
    public func llamaCppNLL(hiddenStates hs: [Float], tokens: [Int32], batch B: Int, seqLen T: Int,
                            numerics: LlamaCppNumerics) -> NLLResult {
        let D = config.hiddenSize, V = config.vocabSize
        precondition(hs.count == B * T * D && tokens.count == B * T, "llamaCppNLL: hidden states and tokens disagree")
        let rows = (0..<B).flatMap { b in (0..<(T - 1)).map { b * T + $0 } }
        var per = [Float](repeating: 0, count: rows.count)
        let chunk = 64
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * D)
        let lg = UnsafeMutablePointer<Float>.allocate(capacity: chunk * V)
        defer { xs.deallocate(); lg.deallocate() }
        per.withUnsafeMutableBufferPointer { pb in
            let perBase = pb.baseAddress!
            for i0 in stride(from: 0, to: rows.count, by: chunk) {
                let n = min(chunk, rows.count - i0)
                for i in 0..<n { hs.withUnsafeBufferPointer { (xs + i * D).update(from: $0.baseAddress! + rows[i0 + i] * D, count: D) } }
                llamaCppHead(lg, xs, m: n, numerics: numerics)
                DispatchQueue.concurrentPerform(iterations: n) { i in
                    perBase[i0 + i] = Float(crossEntropyForward(lg + i * V, count: V, target: Int(tokens[rows[i0 + i] + 1])))
                }
            }
        }
        return NLLResult(sum: per.reduce(0.0) { $0 + Double($1) }, count: per.count, perToken: per)
    }

    /// Summed next-token NLL of each sequence as llama.cpp computes it.
    public func llamaCppNLL(tokens: [Int32], batch: Int, seqLen: Int, numerics: LlamaCppNumerics) throws -> NLLResult {
        let hs = try llamaCppHiddenStates(tokens: tokens, batch: batch, seqLen: seqLen, numerics: numerics)
        return llamaCppNLL(hiddenStates: hs, tokens: tokens, batch: batch, seqLen: seqLen, numerics: numerics)
    }

    // MARK: - Pieces

    /// out[m×V] = head(x) for final-norm rows x (m × D); x is overwritten by its quantized form.
    private func llamaCppHead(_ out: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, m: Int,
                              numerics: LlamaCppNumerics) {
        if let w = numerics.weights[outputWeightName] {
            q4_1Matmul(out, x, w, m: m)
        } else {
            q8_0RoundTrip(x, rows: m, cols: config.hiddenSize)
            Matmul.xwt(out, x, packed(outputWeightName), m: m)
        }
    }

    /// One decoder block in place on the residual stream x (B·T × D).
    private func llamaCppBlock(_ l: Int, x: UnsafeMutablePointer<Float>, B: Int, T: Int, rope: GGMLRoPETable,
                               numerics: LlamaCppNumerics) {
        decoderBlock(LlamaCppKernels(model: self, numerics: numerics, rope: rope), layer: l, x: x, B: B, T: T,
                     positions: { $0 % T }, into: LayerActivations(config, layer: l, B: B, T: T, keeps: false))
    }
}

/// llama.cpp's CPU arithmetic for one block (see `LlamaCppNumerics`): ggml's RMSNorm, Q4_1·Q8_1 dots,
/// ggml's RoPE, Q/K/V stored as f16, its attention and SiLU, and the residual added after each matmul.
struct LlamaCppKernels: BlockKernels {
    let model: Transformer
    let numerics: LlamaCppNumerics
    let rope: GGMLRoPETable
    var config: ModelConfig { model.config }

    /// A Q4_1 linear layer of `numerics` (present for every linear layer after `check`).
    private func weight(_ role: TensorRole, _ l: Int) -> Q4_1Weight {
        guard let w = numerics.weights[TensorNames.name(role, l)] else { preconditionFailure("llama.cpp numerics: no weight \(role) in layer \(l)") }
        return w
    }

    func vector(_ role: TensorRole, _ l: Int) -> UnsafePointer<Float> { UnsafePointer(model.params.pointer(TensorNames.name(role, l))) }

    func norm(_ role: TensorRole, _ l: Int, _ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?,
              _ x: UnsafePointer<Float>, rows: Int) {
        ggmlRMSNorm(out, x, vector(role, l), rows: rows, dim: config.hiddenSize, eps: config.rmsEps)
    }

    func linear(_ role: TensorRole, _ l: Int, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, m: Int) {
        q4_1Matmul(y, x, weight(role, l), m: m)
    }

    /// llama.cpp adds the bias to the matmul's output (`ggml_add(cur, wo_b)`), then the residual.
    func residual(_ role: TensorRole, _ l: Int, _ x: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                  bias: UnsafePointer<Float>?, m: Int) {
        let D = config.hiddenSize
        let o = UnsafeMutablePointer<Float>.allocate(capacity: m * D)
        defer { o.deallocate() }
        q4_1Matmul(o, input, weight(role, l), m: m)
        if let bias { addBias(o, bias, rows: m, cols: D) }
        for i in 0..<(m * D) { x[i] += o[i] }
    }

    func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: (Int) -> Int) {
        rope.apply(x, rows: rows, heads: heads, positions: positions)
    }

    func store(q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, layer l: Int, rows: Int) {
        // K and V go to the f16 cache; mul_mat converts Q to f16.
        let hd = config.headDim
        for i in 0..<(rows * config.nHead[l] * hd) { q[i] = halfRounded(q[i]) }
        for i in 0..<(rows * config.nKVHead[l] * hd) { k[i] = halfRounded(k[i]); v[i] = halfRounded(v[i]) }
    }

    func attention(_ l: Int, out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                   v: UnsafePointer<Float>, B: Int, T: Int, probs: UnsafeMutablePointer<Float>?) {
        let hd = config.headDim, nH = config.nHead[l], nKV = config.nKVHead[l]
        DispatchQueue.concurrentPerform(iterations: B * nH) { job in
            let b = job / nH, head = job % nH, g = head / (nH / nKV)
            llamaCppAttention(out: out + b * T * nH * hd + head * hd, outStride: nH * hd,
                              q: q + b * T * nH * hd + head * hd, qStride: nH * hd,
                              k: k + b * T * nKV * hd + g * hd, v: v + b * T * nKV * hd + g * hd, kvStride: nKV * hd,
                              T: T, headDim: hd)
        }
    }

    func swiglu(_ out: UnsafeMutablePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        DispatchQueue.concurrentPerform(iterations: (count + 4095) / 4096) { chunk in
            for i in (chunk * 4096)..<min(count, chunk * 4096 + 4096) { out[i] = ggmlSiLU(gate[i]) * up[i] }
        }
    }
}

/// ggml's RMSNorm followed by the weight multiply: Σx² in double, scale = 1/sqrtf(mean + eps) in
/// float, out = (x·scale)·w.
///
/// - out: rows × dim (may alias x)
/// - x: rows × dim
/// - w: dim
func ggmlRMSNorm(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                 rows: Int, dim: Int, eps: Float) {
    for r in 0..<rows {
        let xr = x + r * dim, o = out + r * dim
        var sum: Double = 0
        for i in 0..<dim { sum += Double(xr[i] * xr[i]) }
        let mean = Float(sum / Double(dim))
        let scale = 1 / (mean + eps).squareRoot()
        for i in 0..<dim { o[i] = xr[i] * scale * w[i] }
    }
}

/// ggml's RoPE cache and rotation (normal mode: adjacent pairs).
///
/// θ of pair i at position p is p·s^i computed by repeated float multiplication by
/// s = powf(base, −2/headDim), as `ggml_rope_cache_init` does; cos and sin are cosf and sinf.
struct GGMLRoPETable {
    let half: Int
    /// positions × headDim/2 values each.
    let cos: [Float]
    let sin: [Float]

    init(headDim: Int, base: Float, positions: Int) {
        half = headDim / 2
        let step = powf(base, -2 / Float(headDim))
        var c = [Float](repeating: 0, count: positions * half), s = c
        for p in 0..<positions {
            var theta = Float(p)
            for i in 0..<half {
                c[p * half + i] = cosf(theta)
                s[p * half + i] = sinf(theta)
                theta *= step
            }
        }
        cos = c
        sin = s
    }

    /// Rotates x (rows × heads·headDim, row r at position `positions(r)`) in place:
    /// x0' = fma(x0, cos, −x1·sin), x1' = fma(x0, sin, x1·cos), as the compiled ggml computes them.
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: (Int) -> Int) {
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                for r in 0..<rows {
                    let cp = cb.baseAddress! + positions(r) * half, sp = sb.baseAddress! + positions(r) * half
                    for h in 0..<heads {
                        let v = x + (r * heads + h) * 2 * half
                        for i in 0..<half {
                            let x0 = v[2 * i], x1 = v[2 * i + 1]
                            v[2 * i] = fmaEmulated(x0, cp[i], -(x1 * sp[i]))
                            v[2 * i + 1] = fmaEmulated(x0, sp[i], x1 * cp[i])
                        }
                    }
                }
            }
        }
    }
}

/// Causal attention of one head of one sequence as llama.cpp computes it without flash attention:
/// KQ in tinyBLAS (16 lanes, fma along the head dimension, `_mm512_reduce_add_ps`), ggml's softmax,
/// probabilities converted to f16, KQV in tinyBLAS over the key positions.
///
/// - out: T rows of headDim at stride outStride
/// - q: T rows of headDim at stride qStride, already f16 values
/// - k, v: T rows of headDim at stride kvStride, already f16 values; row t attends to rows 0...t
func llamaCppAttention(out: UnsafeMutablePointer<Float>, outStride: Int, q: UnsafePointer<Float>, qStride: Int,
                       k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int, T: Int, headDim hd: Int) {
    let padded = (T + 15) / 16 * 16, lanes = hd / 16
    let scale = 1 / Float(hd).squareRoot()
    // V transposed (headDim × padded, zero-filled), as the v_trans cache holds it.
    let vt = UnsafeMutablePointer<Float>.allocate(capacity: hd * padded)
    let p = UnsafeMutablePointer<Float>.allocate(capacity: padded)
    defer { vt.deallocate(); p.deallocate() }
    vt.initialize(repeating: 0, count: hd * padded)
    for s in 0..<T { for d in 0..<hd { vt[d * padded + s] = v[s * kvStride + d] } }
    @inline(__always) func load16(_ base: UnsafePointer<Float>, _ i: Int) -> SIMD16<Float> {
        UnsafeRawPointer(base + 16 * i).loadUnaligned(as: SIMD16<Float>.self)
    }
    for t in 0..<T {
        let visible = t + 1, chunks = (visible + 15) / 16
        let qt = q + t * qStride
        var mx = -Float.infinity
        for s in 0..<visible {
            var acc = SIMD16<Float>()
            for c in 0..<lanes { acc += load16(qt, c) * load16(k + s * kvStride, c) }
            p[s] = reduce16(acc) * scale
            mx = max(mx, p[s])
        }
        for s in visible..<(16 * chunks) { p[s] = 0 }
        var sum: Double = 0
        for ch in 0..<chunks {
            for s in (16 * ch)..<min(visible, 16 * ch + 16) { p[s] = ggmlExp(p[s] - mx) }
            sum += Double(reduce16(load16(p, ch)))
        }
        let inv = Float(1 / sum)
        for s in 0..<visible { p[s] = halfRounded(p[s] * inv) }
        let ot = out + t * outStride
        for d in 0..<hd {
            var acc = SIMD16<Float>()
            for ch in 0..<chunks { acc += load16(p, ch) * load16(vt + d * padded, ch) }
            ot[d] = reduce16(acc)
        }
    }
}
