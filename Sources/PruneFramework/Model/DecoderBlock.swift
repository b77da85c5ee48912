import Foundation

/// How one decoder block's steps are computed: the f32 forward that evaluation and calibration use
/// (packed matmuls, KV cache, observer), the training forward (Float or Double, LoRA adapters, kept
/// activations) and llama.cpp's CPU arithmetic are three kernel sets of the same block.
protocol BlockKernels {
    associatedtype E: KernelScalar
    var config: ModelConfig { get }
    /// out = RMSNorm(x)·w of the norm `role` in layer l; rstd receives 1/rms per row when given.
    func norm(_ role: TensorRole, _ l: Int, _ out: UnsafeMutablePointer<E>, _ rstd: UnsafeMutablePointer<E>?,
              _ x: UnsafePointer<E>, rows: Int)
    /// A vector parameter: a norm's weight or a bias.
    func vector(_ role: TensorRole, _ l: Int) -> UnsafePointer<E>
    /// y (m × n) = x·Wᵀ of the linear weight `role` in layer l.
    func linear(_ role: TensorRole, _ l: Int, _ y: UnsafeMutablePointer<E>, _ x: UnsafePointer<E>, m: Int)
    /// x += input·Wᵀ + bias: attn_output and ffn_down adding into the residual stream, with their
    /// output bias (hidden_size values) when the model has one (`ModelConfig.outputBias`).
    func residual(_ role: TensorRole, _ l: Int, _ x: UnsafeMutablePointer<E>, _ input: UnsafePointer<E>, bias: UnsafePointer<E>?, m: Int)
    /// Rotates `heads` heads of each of `rows` rows in place; row r is at position positions(r).
    func rope(_ x: UnsafeMutablePointer<E>, rows: Int, heads: Int, positions: (Int) -> Int)
    /// Rounds Q, K and V after RoPE as the engine stores them (llama.cpp: f16); nothing by default.
    func store(q: UnsafeMutablePointer<E>, k: UnsafeMutablePointer<E>, v: UnsafeMutablePointer<E>, layer l: Int, rows: Int)
    /// Causal attention of B sequences of T rows: att (B·T × qDim) from q, k, v after RoPE.
    /// probs, when given, receives the probabilities (B·nHead·T·T) for the backward.
    func attention(_ l: Int, out: UnsafeMutablePointer<E>, q: UnsafePointer<E>, k: UnsafePointer<E>, v: UnsafePointer<E>,
                   B: Int, T: Int, probs: UnsafeMutablePointer<E>?)
    /// out = silu(gate)·up, elementwise.
    func swiglu(_ out: UnsafeMutablePointer<E>, _ gate: UnsafePointer<E>, _ up: UnsafePointer<E>, count: Int)
    /// Shows an activation to whoever watches the forward (calibration); nothing by default.
    func observe(_ l: Int, _ site: ActivationSite, _ a: UnsafePointer<E>, rows: Int, cols: Int)
}

extension BlockKernels {
    func store(q: UnsafeMutablePointer<E>, k: UnsafeMutablePointer<E>, v: UnsafeMutablePointer<E>, layer l: Int, rows: Int) {}
    func observe(_ l: Int, _ site: ActivationSite, _ a: UnsafePointer<E>, rows: Int, cols: Int) {}
    func swiglu(_ out: UnsafeMutablePointer<E>, _ gate: UnsafePointer<E>, _ up: UnsafePointer<E>, count: Int) {
        swigluForward(out, gate, up, count: count)
    }
}

/// One LLaMA-style decoder block, written once: pre-norm attention with grouped KV heads and RoPE,
/// then a pre-norm SwiGLU MLP, each added to the residual stream x (B·T × D) in place (with the
/// output projections' biases when the model has them).
/// `a` holds the intermediate activations; with `a.keeps` set they stay for the backward.
func decoderBlock<K: BlockKernels>(_ k: K, layer l: Int, x: UnsafeMutablePointer<K.E>, B: Int, T: Int,
                                   positions: (Int) -> Int, into a: LayerActivations<K.E>) {
    let c = k.config, D = c.hiddenSize, N = B * T
    let qDim = c.nHead[l] * c.headDim, F = c.ffnDim[l]
    k.observe(l, .blockInput, x, rows: N, cols: D)
    if a.keeps { a.xIn.p.update(from: x, count: N * D) }
    k.norm(.attnNorm, l, a.h1.p, a.keeps ? a.rstd1.p : nil, x, rows: N)
    k.observe(l, .attnInput, a.h1.p, rows: N, cols: D)
    for (role, out) in [(TensorRole.attnQ, a.q.p), (.attnK, a.k.p), (.attnV, a.v.p)] {
        k.linear(role, l, out, a.h1.p, m: N)
        if c.attentionBias, let bias = role.bias {
            addBias(out, k.vector(bias, l), rows: N, cols: TensorNames.shape(role, l, c)[0])
        }
    }
    k.rope(a.q.p, rows: N, heads: c.nHead[l], positions: positions)
    k.rope(a.k.p, rows: N, heads: c.nKVHead[l], positions: positions)
    k.store(q: a.q.p, k: a.k.p, v: a.v.p, layer: l, rows: N)
    k.attention(l, out: a.att.p, q: a.q.p, k: a.k.p, v: a.v.p, B: B, T: T, probs: a.keeps ? a.probs.p : nil)
    k.observe(l, .attnOutputInput, a.att.p, rows: N, cols: qDim)
    k.residual(.attnOutput, l, x, a.att.p, bias: c.outputBias ? k.vector(.attnOutputBias, l) : nil, m: N)

    if a.keeps { a.xMid.p.update(from: x, count: N * D) }
    k.norm(.ffnNorm, l, a.h2.p, a.keeps ? a.rstd2.p : nil, x, rows: N)
    k.observe(l, .mlpInput, a.h2.p, rows: N, cols: D)
    k.linear(.ffnGate, l, a.gate.p, a.h2.p, m: N)
    k.linear(.ffnUp, l, a.up.p, a.h2.p, m: N)
    k.swiglu(a.act.p, a.gate.p, a.up.p, count: N * F)
    k.observe(l, .mlpIntermediate, a.act.p, rows: N, cols: F)
    k.residual(.ffnDown, l, x, a.act.p, bias: c.outputBias ? k.vector(.ffnDownBias, l) : nil, m: N)
    k.observe(l, .blockOutput, x, rows: N, cols: D)
}

extension RoPETable {
    /// Rotates `heads` heads of each of `rows` rows of x in place; row r is at position positions(r).
    func rotate<E: KernelScalar>(_ x: UnsafeMutablePointer<E>, rows: Int, heads: Int, layout: RoPELayout, positions: (Int) -> Int) {
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                ropeForward(x, rows: rows, nHeads: heads, headDim: headDim, positions: positions, cos: cb.baseAddress!, sin: sb.baseAddress!,
                            layout: layout)
            }
        }
    }
}

/// Causal grouped-query attention of B sequences, one job per sequence and KV head.
///
/// - out, q: B·T rows of heads·headDim
/// - k, v: B·S rows of kvHeads·headDim (S ≥ T: the last T positions are the queries')
/// - probs: B·heads·T·T probabilities kept for the backward, or nil
func groupedAttention<E: KernelScalar>(out: UnsafeMutablePointer<E>, q: UnsafePointer<E>, k: UnsafePointer<E>, v: UnsafePointer<E>,
                                       B: Int, T: Int, S: Int, heads nH: Int, kvHeads nKV: Int, headDim hd: Int,
                                       probs: UnsafeMutablePointer<E>?) {
    let qDim = nH * hd, kvDim = nKV * hd, group = nH / nKV
    DispatchQueue.concurrentPerform(iterations: B * nKV) { job in
        let b = job / nKV, g = job % nKV
        attentionForward(out: out + b * T * qDim, outStride: qDim, q: q + b * T * qDim, qStride: qDim,
                         k: k + b * S * kvDim + g * hd, v: v + b * S * kvDim + g * hd, kvStride: kvDim,
                         probs: probs.map { $0 + (b * nH + g * group) * T * T },
                         T: T, S: S, firstHead: g * group, groupSize: group, headDim: hd)
    }
}

/// y[r, j] += b[j] for every row r.
func addBias<E: KernelScalar>(_ y: UnsafeMutablePointer<E>, _ b: UnsafePointer<E>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let yr = y + r * cols
        for j in 0..<cols { yr[j] += b[j] }
    }
}

/// db[j] += Σ_r dy[r, j]: the gradient of a bias added to every row.
func biasBackward<E: KernelScalar>(_ db: UnsafeMutablePointer<E>, _ dy: UnsafePointer<E>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let dr = dy + r * cols
        for j in 0..<cols { db[j] += dr[j] }
    }
}

/// A block's intermediate activations: scratch for a forward, kept for the backward when `keeps`.
final class LayerActivations<E: KernelScalar> {
    /// Whether the block input, the mid-block residual, the norms' 1/rms and the attention
    /// probabilities are kept (the backward needs them; a plain forward does not).
    let keeps: Bool
    let xIn, rstd1, h1, q, k, v, probs, att, xMid, rstd2, h2, gate, up, act: Buffer<E>

    init(_ c: ModelConfig, layer l: Int, B: Int, T: Int, keeps: Bool) {
        let N = B * T, D = c.hiddenSize, qDim = c.nHead[l] * c.headDim, kvDim = c.nKVHead[l] * c.headDim, F = c.ffnDim[l]
        let kept = keeps ? 1 : 0
        self.keeps = keeps
        xIn = Buffer(kept * N * D); rstd1 = Buffer(kept * N); h1 = Buffer(N * D)
        q = Buffer(N * qDim); k = Buffer(N * kvDim); v = Buffer(N * kvDim)
        probs = Buffer(kept * B * c.nHead[l] * T * T); att = Buffer(N * qDim)
        xMid = Buffer(kept * N * D); rstd2 = Buffer(kept * N); h2 = Buffer(N * D)
        gate = Buffer(N * F); up = Buffer(N * F); act = Buffer(N * F)
    }

    /// An empty placeholder (frees a layer's activations once its backward is done).
    init() {
        keeps = false
        xIn = Buffer(0); rstd1 = Buffer(0); h1 = Buffer(0); q = Buffer(0); k = Buffer(0); v = Buffer(0)
        probs = Buffer(0); att = Buffer(0); xMid = Buffer(0); rstd2 = Buffer(0); h2 = Buffer(0)
        gate = Buffer(0); up = Buffer(0); act = Buffer(0)
    }

    var bytes: Int {
        [xIn, rstd1, h1, q, k, v, probs, att, xMid, rstd2, h2, gate, up, act].reduce(0) { $0 + $1.count } * MemoryLayout<E>.stride
    }
}

/// A zeroed heap buffer freed with its owner.
final class Buffer<E> {
    let p: UnsafeMutablePointer<E>
    let count: Int
    init(_ count: Int) where E: Numeric {
        self.count = count
        p = .allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { p.deallocate() }
}
