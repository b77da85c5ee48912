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
    /// Which adapter the targets get.
    public var adapter = AdapterKind.lora
    /// Distil from a teacher's logits (the training needs the teacher model) instead of plain next-token loss.
    public var distillation: Distillation?

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

/// The adapters a training can attach.
public enum AdapterKind: String, Sendable, Equatable {
    /// Low-rank B·A added to the weight (`LoRAAdapter`): dense once merged.
    case lora
    /// SPP's scaling of the weight's own values (`SPPAdapter`): keeps every zero.
    case spp

    /// A new adapter on an n × k weight.
    func make(outFeatures n: Int, inFeatures k: Int, settings s: LoRASettings, seed: UInt64) -> any LinearAdapter<Float> {
        switch self {
        case .lora: LoRAAdapter<Float>(inFeatures: k, outFeatures: n, rank: s.rank, alpha: s.alpha, dropout: s.dropout, seed: seed)
        case .spp: SPPAdapter<Float>(inFeatures: k, outFeatures: n, rank: s.rank, alpha: s.alpha, dropout: s.dropout, seed: seed)
        }
    }
}

/// Adapter training (LoRA or SPP): attach adapters, train only them, merge them into the weights.
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
    ///
    /// - teacher: the model whose logits the loss distils (required with `settings.distillation`); its
    ///   logits are computed for each micro-batch, never stored beyond it
    /// - communicator: data parallel over its ranks: each runs its share of every step's
    ///   micro-batches (skipping the others' dropout draws), and the adapters' gradients and the
    ///   loss are added over the ranks before the optimiser step, which every rank takes alike
    public static func train(_ model: Transformer, sequences: [[Int32]], settings s: LoRASettings, layers: [Int],
                             teacher: Transformer? = nil, communicator: any Communicator = SingleProcess(),
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
        try checkTeacher(teacher, of: model, settings: s)
        model.releasePackedWeights()  // the weights change at the merge; training does not pack
        let pass = model.backprop(gradients: nil)
        pass.distillation = s.distillation
        let adapters = attach(to: pass, model: model, settings: s, layers: layers)
        guard !adapters.isEmpty else { throw PruneError(.invalidArgument, "LoRA: no linear layer to adapt in layers \(layers)") }
        let trainable = adapters.reduce(0) { $0 + $1.adapter.parameterCount }

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
            let micro = stride(from: 0, to: batch.count, by: s.microBatch).map { $0..<min($0 + s.microBatch, batch.count) }
            let mine = communicator.share(of: micro.count)
            for (j, r) in micro.enumerated() {
                guard mine.contains(j) else {
                    for a in adapters { a.adapter.skipDropout(rows: r.count * T) }
                    continue
                }
                let tokens = Array(batch[r].joined())
                let teacherLogits = try teacher?.logits(tokens: tokens, batch: r.count, seqLen: T)
                let l = try teacherLogits.withOptionalPointer { try pass.run(tokens: tokens, batch: r.count, seqLen: T, scale: scale, teacher: $0) }
                sum += l.sum
                count += l.count
            }
            if communicator.isDistributed {
                try sumGradients(adapters.map(\.adapter), over: communicator)
                sum = try communicator.sum(sum)
                count = try communicator.sum(count)
            }
            tokens += s.batch * T
            let lr = s.learningRate(at: step)
            let norm = adapters.reduce(0) { $0 + $1.adapter.gradientNormSquared() }.squareRoot()
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
            model.params.update(a.name, rows: a.adapter.mergeRows())
        }
        if model.params.isLazy { model.params.release() }
        return FineTuneReport(losses: losses, tokens: tokens, seconds: Date().timeIntervalSince(t0), trainableParameters: trainable)
    }
}

extension LoRATraining {
    /// Attaches a new adapter of `s.adapter`'s kind to each target of `layers` the model holds.
    static func attach(to pass: Backprop<Float>, model: Transformer, settings s: LoRASettings,
                       layers: [Int]) -> [(name: String, adapter: any LinearAdapter<Float>, adam: AdamW)] {
        var adapters: [(name: String, adapter: any LinearAdapter<Float>, adam: AdamW)] = []
        for l in layers {
            for t in s.targets {
                let name = LoRASettings.tensor(t, layer: l)
                guard let e = model.params.entry(name), e.shape.count == 2, e.shape[0] > 0, e.shape[1] > 0 else { continue }
                let a = s.adapter.make(outFeatures: e.shape[0], inFeatures: e.shape[1], settings: s,
                                       seed: s.seed &+ UInt64(adapters.count) &* 0x9E37_79B9)
                pass.adapters[name] = a
                adapters.append((name, a, AdamW(count: a.parameterCount)))
            }
        }
        return adapters
    }

    /// Adds every adapter's gradients over the ranks, in one flat vector.
    static func sumGradients(_ adapters: [any LinearAdapter<Float>], over communicator: any Communicator) throws {
        var flat: [Double] = []
        for a in adapters { a.visitGradients { g in flat += g.map(Double.init) } }
        try communicator.sum(&flat)
        var at = 0
        for a in adapters {
            a.visitGradients { g in
                for i in g.indices { g[i] = Float(flat[at + i]) }
                at += g.count
            }
        }
    }

    /// Throws unless a teacher is given exactly when the settings distil, with the model's vocabulary.
    static func checkTeacher(_ teacher: Transformer?, of model: Transformer, settings s: LoRASettings) throws {
        switch (teacher, s.distillation) {
        case (nil, .some):
            throw PruneError(.invalidArgument, "LoRA: the distillation loss needs a teacher model; none was given")
        case (.some, nil):
            throw PruneError(.invalidArgument, "LoRA: a teacher model was given, but the loss does not distil")
        case (let t?, .some) where t.config.vocabSize != model.config.vocabSize:
            throw PruneError(.shapeMismatch, "LoRA: the teacher's vocabulary (\(t.config.vocabSize)) is not the model's (\(model.config.vocabSize))")
        default: return
        }
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with a pointer to the array's elements, or nil.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        guard let a = self else { return try body(nil) }
        return try a.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}
