import Foundation
import PruneFramework

/// LoRA recovery (LLM-Pruner's recovery stage; Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
/// Language Models"): low-rank adapters on the chosen linear layers train on next-token prediction over
/// `steps` batches of `batch` × `seqLen` tokens from `dataset`, with AdamW, linear warmup then cosine
/// decay, and gradient-norm clipping; the base weights stay frozen and the adapters are merged at the
/// end, so the exported model has none.
public struct LoRAFineTuner: FineTuner {
    /// Each step's micro-batches are shared over the ranks (`LoRATraining.train`).
    public var isDataParallel: Bool { true }

    public static let name = "lora"
    public static let summary = "LoRA adapters trained with AdamW on C4 (or any text), merged into the weights"
    public static let keys = [
        PluginKey("rank", "integer", default: "8", "adapter rank r"),
        PluginKey("alpha", "number", default: "16", "scaling α (the update is α/r · B·A)"),
        PluginKey("dropout", "number", default: "0.05", "dropout on the adapters' input, in [0, 1)"),
        PluginKey("targets", "array", default: "[\"q\",\"k\",\"v\",\"o\",\"gate\",\"up\",\"down\"]", allowed: LoRASettings.targetNames,
                  "linear layers that get adapters"),
        PluginKey("layers", "array", default: "null", "[first, last] layers that get adapters (inclusive); null = all"),
        PluginKey("steps", "integer", default: "200", "optimiser steps"),
        PluginKey("batch", "integer", default: "4", "sequences per step"),
        PluginKey("microBatch", "integer", default: "2", "sequences per forward/backward pass (bounds memory)"),
        PluginKey("seqLen", "integer", default: "256", "tokens per training sequence"),
        PluginKey("learningRate", "number", default: "0.0001", "peak learning rate"),
        PluginKey("warmupSteps", "integer", default: "10", "linear warmup steps before cosine decay"),
        PluginKey("weightDecay", "number", default: "0", "AdamW decoupled weight decay"),
        PluginKey("maxGradNorm", "number", default: "1", "clip the global gradient norm (0 = off)"),
        PluginKey("dataset", "string", default: "\"c4\"", "training text: c4, wikitext2, ptb, a .jsonl or a text file"),
        PluginKey("seed", "integer", default: "0", "data order, adapter initialisation and dropout"),
        TrainingLoss.key,
    ]

    public var rank = 8
    public var alpha = 16.0
    public var dropout = 0.05
    public var targets = LoRASettings.targetNames
    public var layers: [Int]?
    public var steps = 200
    public var batch = 4
    public var microBatch = 2
    public var seqLen = 256
    public var learningRate = 1e-4
    public var warmupSteps = 10
    public var weightDecay = 0.0
    public var maxGradNorm = 1.0
    public var dataset = "c4"
    public var seed = 0
    /// The training loss; nil (absent from the recipe) is cross-entropy.
    public var loss: TrainingLoss?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case rank, alpha, dropout, targets, layers, steps, batch, microBatch, seqLen, learningRate, warmupSteps
        case weightDecay, maxGradNorm, dataset, seed, loss
    }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        try self.init(decoding: decoder, defaults: Self())
    }

    /// Decodes lora's keys, each absent one taking its value from `d`; does not reject unknown keys.
    ///
    /// For fine-tuners that accept lora's keys plus their own: they check their keys (which include
    /// `LoRAFineTuner.keys`) first, then call this.
    init(decoding decoder: Decoder, defaults d: LoRAFineTuner) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.integer(.rank, default: d.rank, in: 1...4096)
        alpha = try c.number(.alpha, default: d.alpha, in: 0...1e6)
        dropout = try c.number(.dropout, default: d.dropout, in: 0...1, openUpper: true)
        targets = try c.value(.targets, default: d.targets)
        for (i, t) in targets.enumerated() where !LoRASettings.targetNames.contains(t) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "targets"))[\(i)] = '\(PruneError.shown(t))' is not allowed; choose from: \(LoRASettings.targetNames.joined(separator: ", "))")
        }
        if targets.isEmpty { throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "targets")) is empty; name at least one of: \(LoRASettings.targetNames.joined(separator: ", "))") }
        layers = try c.value(.layers, default: d.layers)
        if let l = layers, l.count != 2 || l[0] < 0 || l[1] < l[0] {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "layers")) = '\(PruneError.shown("\(l)"))' must be [first, last] with 0 ≤ first ≤ last")
        }
        steps = try c.integer(.steps, default: d.steps, in: 1...1_000_000)
        batch = try c.integer(.batch, default: d.batch, in: 1...4096)
        microBatch = try c.integer(.microBatch, default: d.microBatch, in: 1...4096)
        seqLen = try c.integer(.seqLen, default: d.seqLen, in: 2...65536)
        learningRate = try c.number(.learningRate, default: d.learningRate, in: 0...1)
        warmupSteps = try c.integer(.warmupSteps, default: d.warmupSteps, in: 0...1_000_000)
        weightDecay = try c.number(.weightDecay, default: d.weightDecay, in: 0...1)
        maxGradNorm = try c.number(.maxGradNorm, default: d.maxGradNorm, in: 0...1e9)
        dataset = try c.value(.dataset, default: d.dataset)
        seed = try c.integer(.seed, default: d.seed, in: 0...Int.max)
        loss = try c.value(.loss, default: d.loss)
    }

    public var settings: LoRASettings {
        var s = LoRASettings()
        s.rank = rank; s.alpha = alpha; s.dropout = dropout; s.targets = targets
        s.steps = steps; s.batch = batch; s.microBatch = microBatch; s.learningRate = learningRate
        s.warmupSteps = warmupSteps; s.weightDecay = weightDecay; s.maxGradNorm = maxGradNorm; s.seed = UInt64(seed)
        s.distillation = distillation
        return s
    }

    public var passShape: (sequences: Int, seqLen: Int)? { (min(microBatch, batch), seqLen) }
    public var distillation: Distillation? { loss?.distillation }

    /// The dense model to distil from, when the loss distils.
    func teacher(_ context: FineTuneContext, for name: String) throws -> Transformer? {
        guard let kd = distillation else { return nil }
        guard let load = context.teacher else {
            throw PruneError(.invalidArgument, "fineTuner '\(name)': loss 'kl' distils from the dense model, and this run has none to give")
        }
        context.log(String(format: "  distilling from the dense model (τ = %g, α = %g), read again from its file; its logits are computed for each micro-batch", kd.temperature, kd.alpha))
        return try load()
    }

    /// The layers that get adapters in a model of `n` layers.
    func adaptedLayers(_ n: Int, plugin: String = LoRAFineTuner.name) throws -> [Int] {
        guard let l = layers else { return Array(0..<n) }
        guard l[1] < n else {
            throw PruneError(.outOfRange, "fineTuner '\(plugin)': layers = '[\(l[0]), \(l[1])]' exceed the model's \(n) layers (0...\(n - 1)); set the last layer to at most \(n - 1)")
        }
        return Array(l[0]...l[1])
    }

    /// Training sequences: `steps`·`batch` of `seqLen` tokens when the text holds them, else all it holds
    /// (they are cycled).
    public static func trainingSequences(dataset: String, seqLen: Int, count: Int, seed: Int,
                                         context: FineTuneContext) throws -> [[Int32]] {
        let docs = try Calibration.documents(context.dataset(dataset), dataDir: context.dataDir)
        do {
            return try Calibration.sequences(documents: docs, tokenizer: context.tokenizer, samples: count, seqLen: seqLen, seed: seed)
        } catch let e as PruneError where e.code == .outOfRange {
            // Fewer tokens than asked: take every whole sequence there is.
            let all = docs.reduce(0) { $0 + context.tokenizer.encode($1).count + 1 }
            let n = all / seqLen
            guard n >= 1 else { throw e }
            context.log("  \(dataset) holds \(n) sequences of \(seqLen) tokens; \(count) asked, cycling them")
            return try Calibration.sequences(documents: docs, tokenizer: context.tokenizer, samples: n, seqLen: seqLen, seed: seed)
        }
    }

    public func fineTune(_ model: Transformer, context: FineTuneContext) throws -> FineTuneReport {
        let data = try Self.trainingSequences(dataset: dataset, seqLen: seqLen, count: steps * batch, seed: seed &+ 1,
                                              context: context)
        return try Self.train(model, data: data, settings: settings, layers: try adaptedLayers(model.config.nLayers),
                              teacher: try teacher(context, for: Self.name), label: "  LoRA", context: context)
    }

    /// Runs LoRATraining with a progress bar (loss, tokens/s, ETA) and a log line every tenth of the run.
    static func train(_ model: Transformer, data: [[Int32]], settings: LoRASettings, layers: [Int], teacher: Transformer?,
                      label: String, context: FineTuneContext) throws -> FineTuneReport {
        let bar = ProgressBar(total: settings.steps, label: label, unit: "step")
        let every = max(1, settings.steps / 10)
        let report = try LoRATraining.train(model, sequences: data, settings: settings, layers: layers, teacher: teacher,
                                            communicator: context.communicator) { st in
            let note = String(format: "loss %.3f · %.0f tok/s", st.loss, st.tokensPerSecond)
            bar.update(st.step, note: note)
            if st.step % every == 0 || st.step == st.steps {
                context.log(String(format: "%@ step %d/%d loss %.4f lr %.2e %.0f tok/s", label, st.step, st.steps, st.loss,
                                   st.learningRate, st.tokensPerSecond))
            }
        }
        bar.finish()
        return report
    }
}
