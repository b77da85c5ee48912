import Foundation

/// Where a training pass reads weights and accumulates gradients, by canonical tensor name.
public struct TrainingTensors<E: KernelScalar> {
    /// The weight of a parameter (every name of the model's layout must resolve).
    public var weight: (String) -> UnsafePointer<E>
    /// The gradient buffer of a parameter, or nil when it is frozen (its weight gradient is skipped).
    public var gradient: (String) -> UnsafeMutablePointer<E>?
    /// Called with the names of weights a pass is done with for now (a block after its forward or
    /// backward, the head, the embedding), so a store that reads them from their file may free
    /// them; pointers from `weight` are not used after it until asked again. Nothing by default.
    public var release: ([String]) -> Void

    public init(weight: @escaping (String) -> UnsafePointer<E>, gradient: @escaping (String) -> UnsafeMutablePointer<E>?,
                release: @escaping ([String]) -> Void = { _ in }) {
        self.weight = weight
        self.gradient = gradient
        self.release = release
    }
}

/// Summed next-token NLL of a training pass.
public struct LossSum: Sendable {
    public var sum: Double
    public var count: Int
    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
}

/// The model's forward pass that keeps what its backward needs, and the hand-written backward, op by op
/// (the ops' forward and backward live together in Kernels/).
///
/// One `run` computes the summed NLL of next-token prediction over a batch (or, with teacher logits,
/// the distillation loss) and adds `scale · ∂loss/∂θ` into the gradient buffers (so a caller that
/// passes 1/(tokens of all micro-batches) accumulates the gradient of the mean). Adapters (LoRA, SPP),
/// when attached, add their path to a linear layer and receive their own gradients.
public final class Backprop<E: KernelScalar> {
    public let config: ModelConfig
    public let tensors: TrainingTensors<E>
    /// Adapters (LoRA, SPP) by the name of the linear weight they adapt.
    public var adapters: [String: any LinearAdapter<E>] = [:]
    /// With teacher logits given to `run`: the loss mixes in the KL divergence to them.
    public var distillation: Distillation?
    /// Bytes of activations the last `run` kept for its backward (for memory reports and tests).
    public private(set) var lastActivationBytes = 0

    public init(config: ModelConfig, tensors: TrainingTensors<E>) {
        self.config = config
        self.tensors = tensors
    }

    /// Forward and backward over `batch` sequences of `seqLen` tokens (sequence-major); every position but
    /// the last of each sequence predicts the next token. Gradients are added into the buffers.
    ///
    /// - teacher: logits of a teacher on the same tokens (`batch·seqLen × vocabSize`, row-major); with
    ///   `distillation` set, the loss is its mix of cross-entropy and KL divergence to them
    public func run(tokens: [Int32], batch B: Int, seqLen T: Int, scale: E, teacher: UnsafePointer<E>? = nil) throws -> LossSum {
        guard B > 0, T > 1, tokens.count == B * T else {
            throw PruneError(.shapeMismatch, "backward: \(tokens.count) tokens do not make \(B) sequences of \(T) (T ≥ 2)")
        }
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= config.vocabSize {
            throw PruneError(.outOfRange, "backward: token id '\(t)' at index \(i) is outside the vocabulary [0, \(config.vocabSize))")
        }
        let c = config, D = c.hiddenSize, N = B * T
        let x = Buffer<E>(N * D)
        embeddingForward(x.p, tensors.weight(TensorNames.tokenEmbedding), tokens: tokens, dim: D)
        tensors.release([TensorNames.tokenEmbedding])
        let rope = RoPETable(headDim: c.headDim, base: c.ropeBase, maxPositions: T)
        var saved: [LayerActivations<E>] = []
        for l in 0..<c.nLayers {
            saved.append(blockForward(l, x: x.p, B: B, T: T, rope: rope))
            tensors.release(TensorNames.layerTensors(l, c).map(\.name))
        }
        lastActivationBytes = saved.reduce(0) { $0 + $1.bytes }
        let rstdF = Buffer<E>(N), hF = Buffer<E>(N * D)
        rmsnormForward(hF.p, rstdF.p, x.p, tensors.weight(TensorNames.outputNorm), rows: N, dim: D, eps: E(c.rmsEps))

        let dhF = Buffer<E>(N * D)
        if teacher != nil && distillation == nil {
            throw PruneError(.invalidArgument, "backward: teacher logits given without distillation settings")
        }
        let loss = headForwardBackward(hF.p, dhF.p, tokens: tokens, B: B, T: T, scale: scale, teacher: teacher)

        let dx = Buffer<E>(N * D)
        rmsnormBackward(dx.p, tensors.gradient(TensorNames.outputNorm), dhF.p, x.p,
                        tensors.weight(TensorNames.outputNorm), rstdF.p, rows: N, dim: D)
        tensors.release([TensorNames.outputNorm, c.tiedEmbeddings ? TensorNames.tokenEmbedding : TensorNames.output])
        for l in stride(from: c.nLayers - 1, through: 0, by: -1) {
            blockBackward(l, dx: dx.p, saved: saved[l], B: B, T: T, rope: rope)
            saved[l] = LayerActivations()
            tensors.release(TensorNames.layerTensors(l, c).map(\.name))
        }
        if let g = tensors.gradient(TensorNames.tokenEmbedding) {
            embeddingBackward(g, dx.p, tokens: tokens, dim: D)
        }
        return loss
    }

    // MARK: - Output head and loss

    /// Logits of the rows with a target, chunk by chunk, their loss (cross-entropy, or its mix with the
    /// KL divergence to `teacher`'s logits) and its gradient: returns the loss, writes dL/dh into dh
    /// and accumulates the head's weight gradient.
    func headForwardBackward(_ h: UnsafeMutablePointer<E>, _ dh: UnsafeMutablePointer<E>, tokens: [Int32],
                             B: Int, T: Int, scale: E, teacher: UnsafePointer<E>? = nil) -> LossSum {
        let D = config.hiddenSize, V = config.vocabSize
        let headName = config.tiedEmbeddings ? TensorNames.tokenEmbedding : TensorNames.output
        let w = tensors.weight(headName), gw = tensors.gradient(headName)
        let rows = (0..<B).flatMap { b in (0..<(T - 1)).map { b * T + $0 } }
        let chunk = 64
        let xs = Buffer<E>(chunk * D), lg = Buffer<E>(chunk * V), dxs = Buffer<E>(chunk * D)
        let nll = Buffer<Double>(rows.count)
        var i0 = 0
        while i0 < rows.count {
            let n = min(chunk, rows.count - i0)
            for i in 0..<n { (xs.p + i * D).update(from: h + rows[i0 + i] * D, count: D) }
            E.xwt(lg.p, xs.p, w, m: n, n: V, k: D, accumulate: false)
            let base = i0, lgp = lg.p, nllp = nll.p, kd = distillation
            DispatchQueue.concurrentPerform(iterations: n) { i in
                let row = rows[base + i], target = Int(tokens[row + 1])
                if let teacher, let kd {
                    nllp[base + i] = distillationBackward(lgp + i * V, teacher: teacher + row * V, count: V, target: target,
                                                          settings: kd, scale: scale).loss
                } else {
                    nllp[base + i] = crossEntropyBackward(lgp + i * V, count: V, target: target, scale: scale)
                }
            }
            E.dyw(dxs.p, lg.p, w, m: n, n: V, k: D, accumulate: false)
            for i in 0..<n { (dh + rows[i0 + i] * D).update(from: dxs.p + i * D, count: D) }
            if let gw { E.dytx(gw, lg.p, xs.p, m: n, n: V, k: D, accumulate: true) }
            i0 += n
        }
        var sum = 0.0
        for i in 0..<rows.count { sum += nll.p[i] }
        return LossSum(sum: sum, count: rows.count)
    }

    // MARK: - Linear layers

    /// y (N × n) = x·Wᵀ (+ the adapter's path), W = the named n × k weight.
    func linearForward(_ name: String, _ y: UnsafeMutablePointer<E>, _ x: UnsafePointer<E>, m: Int,
                               n: Int, k: Int, accumulate: Bool = false) {
        let w = tensors.weight(name)
        E.xwt(y, x, w, m: m, n: n, k: k, accumulate: accumulate)
        adapters[name]?.forward(y, x, weight: w, m: m)
    }

    /// dx (+)= dy·W (+ the adapter's path); dW += dyᵀ·x when W trains; the adapter's gradients accumulate.
    private func linearBackward(_ name: String, dx: UnsafeMutablePointer<E>, dy: UnsafePointer<E>, x: UnsafePointer<E>,
                                m: Int, n: Int, k: Int, accumulate: Bool) {
        let w = tensors.weight(name)
        E.dyw(dx, dy, w, m: m, n: n, k: k, accumulate: accumulate)
        if let g = tensors.gradient(name) { E.dytx(g, dy, x, m: m, n: n, k: k, accumulate: true) }
        adapters[name]?.backward(dx: dx, dy: dy, weight: w, m: m)
    }

    // MARK: - Blocks

    func blockForward(_ l: Int, x: UnsafeMutablePointer<E>, B: Int, T: Int, rope: RoPETable) -> LayerActivations<E> {
        let a = LayerActivations<E>(config, layer: l, B: B, T: T, keeps: true)
        decoderBlock(TrainingKernels(backprop: self, rope: rope), layer: l, x: x, B: B, T: T, positions: { $0 % T }, into: a)
        return a
    }

    /// dx: the gradient of the block's output on entry, of its input on return.
    func blockBackward(_ l: Int, dx: UnsafeMutablePointer<E>, saved a: LayerActivations<E>, B: Int, T: Int,
                               rope: RoPETable) {
        let c = config, D = c.hiddenSize, N = B * T, hd = c.headDim
        let nH = c.nHead[l], nKV = c.nKVHead[l], F = c.ffnDim[l], qDim = nH * hd, kvDim = nKV * hd
        // MLP: x_out = x_mid + down(swiglu(gate(h2), up(h2))) (+ down's bias), h2 = norm(x_mid).
        let dAct = Buffer<E>(N * F), dUp = Buffer<E>(N * F), dh = Buffer<E>(N * D)
        outputBiasBackward(.ffnDownBias, l, dy: dx, rows: N)
        linearBackward(TensorNames.ffnDown(l), dx: dAct.p, dy: dx, x: a.act.p, m: N, n: D, k: F, accumulate: false)
        swigluBackward(dAct.p, dUp.p, dAct.p, a.gate.p, a.up.p, count: N * F)
        linearBackward(TensorNames.ffnGate(l), dx: dh.p, dy: dAct.p, x: a.h2.p, m: N, n: F, k: D, accumulate: false)
        linearBackward(TensorNames.ffnUp(l), dx: dh.p, dy: dUp.p, x: a.h2.p, m: N, n: F, k: D, accumulate: true)
        rmsnormBackward(dx, tensors.gradient(TensorNames.ffnNorm(l)), dh.p, a.xMid.p,
                        tensors.weight(TensorNames.ffnNorm(l)), a.rstd2.p, rows: N, dim: D)
        // Attention: x_mid = x_in + o(attn(rope(q(h1)), rope(k(h1)), v(h1))) (+ o's bias), h1 = norm(x_in).
        let dAtt = Buffer<E>(N * qDim), dq = Buffer<E>(N * qDim), dk = Buffer<E>(N * kvDim), dv = Buffer<E>(N * kvDim)
        outputBiasBackward(.attnOutputBias, l, dy: dx, rows: N)
        linearBackward(TensorNames.attnOutput(l), dx: dAtt.p, dy: dx, x: a.att.p, m: N, n: D, k: qDim, accumulate: false)
        let group = nH / nKV
        let q = a.q.p, k = a.k.p, v = a.v.p, probs = a.probs.p, dAttP = dAtt.p, dqP = dq.p, dkP = dk.p, dvP = dv.p
        DispatchQueue.concurrentPerform(iterations: B * nKV) { job in
            let b = job / nKV, g = job % nKV
            attentionBackward(dq: dqP + b * T * qDim, dk: dkP + b * T * kvDim + g * hd, dv: dvP + b * T * kvDim + g * hd,
                              dout: dAttP + b * T * qDim, q: q + b * T * qDim, qStride: qDim,
                              k: k + b * T * kvDim + g * hd, v: v + b * T * kvDim + g * hd, kvStride: kvDim,
                              probs: probs + (b * nH + g * group) * T * T,
                              T: T, S: T, firstHead: g * group, groupSize: group, headDim: hd)
        }
        rope.cos.withUnsafeBufferPointer { cb in
            rope.sin.withUnsafeBufferPointer { sb in
                ropeBackward(dq.p, rows: N, nHeads: nH, headDim: hd, positions: { $0 % T }, cos: cb.baseAddress!, sin: sb.baseAddress!,
                             layout: c.ropeLayout)
                ropeBackward(dk.p, rows: N, nHeads: nKV, headDim: hd, positions: { $0 % T }, cos: cb.baseAddress!, sin: sb.baseAddress!,
                             layout: c.ropeLayout)
            }
        }
        if c.attentionBias {
            for (role, dy, n) in [(TensorRole.attnQBias, dq.p, qDim), (.attnKBias, dk.p, kvDim), (.attnVBias, dv.p, kvDim)] {
                if let g = tensors.gradient(TensorNames.name(role, l)) { biasBackward(g, dy, rows: N, cols: n) }
            }
        }
        linearBackward(TensorNames.attnQ(l), dx: dh.p, dy: dq.p, x: a.h1.p, m: N, n: qDim, k: D, accumulate: false)
        linearBackward(TensorNames.attnK(l), dx: dh.p, dy: dk.p, x: a.h1.p, m: N, n: kvDim, k: D, accumulate: true)
        linearBackward(TensorNames.attnV(l), dx: dh.p, dy: dv.p, x: a.h1.p, m: N, n: kvDim, k: D, accumulate: true)
        rmsnormBackward(dx, tensors.gradient(TensorNames.attnNorm(l)), dh.p, a.xIn.p,
                        tensors.weight(TensorNames.attnNorm(l)), a.rstd1.p, rows: N, dim: D)
    }

    /// The gradient of an output bias (added to every row of the residual stream): the column sums
    /// of dy, when the model has output biases and this one trains.
    private func outputBiasBackward(_ role: TensorRole, _ l: Int, dy: UnsafePointer<E>, rows: Int) {
        guard config.outputBias, let g = tensors.gradient(TensorNames.name(role, l)) else { return }
        biasBackward(g, dy, rows: rows, cols: config.hiddenSize)
    }
}

/// The training forward's kernels: weights and adapters from the `Backprop`, in Float or Double,
/// attention that keeps its probabilities for the backward.
struct TrainingKernels<E: KernelScalar>: BlockKernels {
    let backprop: Backprop<E>
    let rope: RoPETable
    var config: ModelConfig { backprop.config }

    func vector(_ role: TensorRole, _ l: Int) -> UnsafePointer<E> { backprop.tensors.weight(TensorNames.name(role, l)) }

    func norm(_ role: TensorRole, _ l: Int, _ out: UnsafeMutablePointer<E>, _ rstd: UnsafeMutablePointer<E>?,
              _ x: UnsafePointer<E>, rows: Int) {
        rmsnormForward(out, rstd, x, vector(role, l), rows: rows, dim: config.hiddenSize, eps: E(config.rmsEps))
    }

    func linear(_ role: TensorRole, _ l: Int, _ y: UnsafeMutablePointer<E>, _ x: UnsafePointer<E>, m: Int) {
        let s = TensorNames.shape(role, l, config)
        backprop.linearForward(TensorNames.name(role, l), y, x, m: m, n: s[0], k: s[1])
    }

    func residual(_ role: TensorRole, _ l: Int, _ x: UnsafeMutablePointer<E>, _ input: UnsafePointer<E>, bias: UnsafePointer<E>?, m: Int) {
        let s = TensorNames.shape(role, l, config)
        backprop.linearForward(TensorNames.name(role, l), x, input, m: m, n: s[0], k: s[1], accumulate: true)
        if let bias { addBias(x, bias, rows: m, cols: s[0]) }
    }

    func rope(_ x: UnsafeMutablePointer<E>, rows: Int, heads: Int, positions: (Int) -> Int) {
        rope.rotate(x, rows: rows, heads: heads, layout: config.ropeLayout, positions: positions)
    }

    func attention(_ l: Int, out: UnsafeMutablePointer<E>, q: UnsafePointer<E>, k: UnsafePointer<E>, v: UnsafePointer<E>,
                   B: Int, T: Int, probs: UnsafeMutablePointer<E>?) {
        groupedAttention(out: out, q: q, k: k, v: v, B: B, T: T, S: T, heads: config.nHead[l], kvHeads: config.nKVHead[l],
                         headDim: config.headDim, probs: probs)
    }
}
