import Foundation

/// Settings of a LoRA fine-tune (Hu et al. 2021) with AdamW (Loshchilov & Hutter), linear warmup and
/// cosine decay, and global gradient-norm clipping.
public struct LoRASettings: Sendable, Equatable {
    /// Linear layers to adapt, by short name: q, k, v, o, gate, up, down.
    public static let targetNames = ["q", "k", "v", "o", "gate", "up", "down"]

    public var rank = 8
    public var alpha = 16.0
    public var dropout = 0.05
    public var targets = LoRASettings.targetNames
    public var steps = 200
    /// Sequences per optimiser step.
    public var batch = 4
    /// Sequences per forward/backward pass (bounds memory); divides nothing, the last pass may be smaller.
    public var microBatch = 2
    public var learningRate = 1e-4
    public var warmupSteps = 10
    public var weightDecay = 0.0
    /// Clip the global gradient norm to this (0 disables clipping).
    public var maxGradNorm = 1.0
    public var seed: UInt64 = 0

    public init() {}

    /// The tensor a short target name means in layer l.
    public static func tensor(_ target: String, layer l: Int) -> String {
        switch target {
        case "q": return TensorNames.attnQ(l)
        case "k": return TensorNames.attnK(l)
        case "v": return TensorNames.attnV(l)
        case "o": return TensorNames.attnOutput(l)
        case "gate": return TensorNames.ffnGate(l)
        case "up": return TensorNames.ffnUp(l)
        default: return TensorNames.ffnDown(l)
        }
    }

    /// Learning rate at 0-based `step`: linear warmup to `learningRate`, then cosine decay to 0.
    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return learningRate * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, steps - warmupSteps)
        let t = Double(step - warmupSteps) / Double(span)
        return learningRate * 0.5 * (1 + cos(Double.pi * min(1, t)))
    }
}

/// LoRA training: attach adapters, train only them, merge them into the weights.
public enum LoRATraining {
    /// One optimiser step's report.
    public struct Step: Sendable {
        public var step: Int
        public var steps: Int
        public var loss: Double
        public var learningRate: Double
        public var tokensPerSecond: Double
    }

    /// Fine-tunes the adapters on `sequences` (equal lengths ≥ 2, cycled in a seeded order, `batch` per
    /// step) over the linear layers `targets` of `layers`, then merges them into the model's weights.
    public static func train(_ model: Transformer, sequences: [[Int32]], settings s: LoRASettings, layers: [Int],
                             progress: ((Step) -> Void)? = nil) throws -> FineTuneReport {
        guard let T = sequences.first?.count, T >= 2 else {
            throw PruneError(.invalidArgument, "LoRA: no training sequences of ≥ 2 tokens")
        }
        for (i, q) in sequences.enumerated() where q.count != T {
            throw PruneError(.shapeMismatch, "LoRA: training sequence \(i) has \(q.count) tokens, the first has \(T)")
        }
        let c = model.config
        for l in layers where l < 0 || l >= c.nLayers {
            throw PruneError(.outOfRange, "LoRA: layer '\(l)' is outside the model's layers 0..<\(c.nLayers)")
        }
        model.releasePackedWeights()  // the weights change at the merge; training does not pack
        let pass = model.backprop(gradients: nil)
        var adapters: [(name: String, adapter: LoRAAdapter<Float>, adam: AdamW)] = []
        for l in layers {
            for t in s.targets {
                let name = LoRASettings.tensor(t, layer: l)
                guard let e = model.params.entry(name), e.shape.count == 2, e.shape[0] > 0, e.shape[1] > 0 else { continue }
                let a = LoRAAdapter<Float>(inFeatures: e.shape[1], outFeatures: e.shape[0], rank: s.rank, alpha: s.alpha,
                                           dropout: s.dropout, seed: s.seed &+ UInt64(adapters.count) &* 0x9E37_79B9)
                pass.adapters[name] = a
                adapters.append((name, a, AdamW(count: a.a.count + a.b.count)))
            }
        }
        guard !adapters.isEmpty else { throw PruneError(.invalidArgument, "LoRA: no linear layer to adapt in layers \(layers)") }
        let trainable = adapters.reduce(0) { $0 + $1.adapter.a.count + $1.adapter.b.count }

        var rng = SplitMix64(seed: s.seed)
        var order: [Int] = []
        var cursor = 0
        func nextSequence() -> [Int32] {
            if cursor == order.count {
                order = sequences.indices.shuffled(using: &rng)
                cursor = 0
            }
            cursor += 1
            return sequences[order[cursor - 1]]
        }

        var losses: [Double] = []
        let t0 = Date()
        var tokens = 0
        for step in 0..<s.steps {
            for a in adapters { a.adapter.zeroGradients() }
            let batch = (0..<s.batch).map { _ in nextSequence() }
            let scale = 1 / Float(s.batch * (T - 1))
            var sum = 0.0, count = 0
            var i = 0
            while i < batch.count {
                let n = min(s.microBatch, batch.count - i)
                let r = try pass.run(tokens: Array(batch[i..<(i + n)].joined()), batch: n, seqLen: T, scale: scale)
                sum += r.sum
                count += r.count
                i += n
            }
            tokens += s.batch * T
            let lr = s.learningRate(at: step)
            var norm2 = 0.0
            for a in adapters {
                for g in a.adapter.gradA { norm2 += Double(g * g) }
                for g in a.adapter.gradB { norm2 += Double(g * g) }
            }
            let norm = norm2.squareRoot()
            let clip = s.maxGradNorm > 0 && norm > s.maxGradNorm ? Float(s.maxGradNorm / norm) : 1
            for a in adapters {
                a.adam.update(a.adapter, gradScale: clip, lr: lr, weightDecay: s.weightDecay)
            }
            let loss = sum / Double(max(count, 1))
            guard loss.isFinite else {
                throw PruneError(.outOfRange, "LoRA: the training loss became \(loss) at step \(step + 1); lower learningRate")
            }
            losses.append(loss)
            progress?(Step(step: step + 1, steps: s.steps, loss: loss, learningRate: lr,
                           tokensPerSecond: Double(tokens) / max(Date().timeIntervalSince(t0), 1e-9)))
        }
        // A weight read from its file keeps being read from it, with the merge applied to the rows
        // read: the model never holds the merged f32 copy.
        for a in adapters {
            a.adapter.training = false
            model.params.update(a.name, rows: a.adapter.mergeRows)
        }
        if model.params.isLazy { model.params.release() }
        return FineTuneReport(losses: losses, tokens: tokens, seconds: Date().timeIntervalSince(t0), trainableParameters: trainable)
    }
}

/// AdamW state for one adapter's parameters (A then B).
final class AdamW {
    let beta1 = 0.9, beta2 = 0.999, eps = 1e-8
    var m: [Float], v: [Float]
    var t = 0

    init(count: Int) {
        m = [Float](repeating: 0, count: count)
        v = m
    }

    /// One decoupled-weight-decay Adam step on the adapter's A and B with its gradients times `gradScale`.
    func update(_ a: LoRAAdapter<Float>, gradScale: Float, lr: Double, weightDecay: Double) {
        t += 1
        let c1 = 1 - pow(beta1, Double(t)), c2 = 1 - pow(beta2, Double(t))
        let b1 = Float(beta1), b2 = Float(beta2)
        let step = Float(lr / c1), vScale = Float(1 / c2), decay = Float(1 - lr * weightDecay), e = Float(eps)
        func apply(_ w: inout [Float], _ g: [Float], offset: Int) {
            for i in 0..<w.count {
                let gi = g[i] * gradScale
                let mi = b1 * m[offset + i] + (1 - b1) * gi
                let vi = b2 * v[offset + i] + (1 - b2) * gi * gi
                m[offset + i] = mi
                v[offset + i] = vi
                w[i] = w[i] * decay - step * mi / ((vi * vScale).squareRoot() + e)
            }
        }
        apply(&a.a, a.gradA, offset: 0)
        apply(&a.b, a.gradB, offset: a.a.count)
    }
}
