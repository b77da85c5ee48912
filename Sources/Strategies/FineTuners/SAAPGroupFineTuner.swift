import Foundation
import PruneFramework

/// SAAP's group fine-tuning (Zheng et al. 2024, "Adaptive Pruning for Large Language Models with
/// Structural Importance Awareness", arXiv 2412.15127): recovery proceeds over groups of layers in
/// turn instead of adapting the whole model at once.
///
/// Our interpretation: the adapted layers are cut into consecutive groups of `groupSize` layers; each
/// group in turn gets LoRA adapters (the `lora` fine-tuner's training: AdamW, warmup + cosine, clipping)
/// for `steps` steps on its own share of the training text, and the adapters are merged before the
/// next group starts, so later groups adapt to the already-recovered earlier ones. The paper also
/// quantises weights during group fine-tuning to save memory; we train in Float32 and do not.
public struct SAAPGroupFineTuner: FineTuner {
    public static let name = "saap-group"
    public static let summary = "SAAP: LoRA recovery over consecutive groups of layers in turn, merged after each group"
    public static let keys = [
        PluginKey("groupSize", "integer", default: "4", "consecutive layers adapted together"),
        PluginKey("rank", "integer", default: "8", "adapter rank r"),
        PluginKey("alpha", "number", default: "16", "scaling α (the update is α/r · B·A)"),
        PluginKey("dropout", "number", default: "0.05", "dropout on the adapters' input, in [0, 1)"),
        PluginKey("targets", "array", default: "[\"q\",\"k\",\"v\",\"o\",\"gate\",\"up\",\"down\"]", allowed: LoRASettings.targetNames,
                  "linear layers that get adapters"),
        PluginKey("layers", "array", default: "null", "[first, last] layers to adapt (inclusive); null = all"),
        PluginKey("steps", "integer", default: "50", "optimiser steps per group"),
        PluginKey("batch", "integer", default: "4", "sequences per step"),
        PluginKey("microBatch", "integer", default: "2", "sequences per forward/backward pass (bounds memory)"),
        PluginKey("seqLen", "integer", default: "256", "tokens per training sequence"),
        PluginKey("learningRate", "number", default: "0.0001", "peak learning rate"),
        PluginKey("warmupSteps", "integer", default: "5", "linear warmup steps (per group) before cosine decay"),
        PluginKey("maxGradNorm", "number", default: "1", "clip the global gradient norm (0 = off)"),
        PluginKey("dataset", "string", default: "\"c4\"", "training text: c4, wikitext2, ptb, a .jsonl or a text file"),
        PluginKey("seed", "integer", default: "0", "data order, adapter initialisation and dropout"),
    ]

    public var groupSize = 4
    public var rank = 8
    public var alpha = 16.0
    public var dropout = 0.05
    public var targets = LoRASettings.targetNames
    public var layers: [Int]?
    public var steps = 50
    public var batch = 4
    public var microBatch = 2
    public var seqLen = 256
    public var learningRate = 1e-4
    public var warmupSteps = 5
    public var maxGradNorm = 1.0
    public var dataset = "c4"
    public var seed = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case groupSize, rank, alpha, dropout, targets, layers, steps, batch, microBatch, seqLen, learningRate, warmupSteps
        case maxGradNorm, dataset, seed
    }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groupSize = try c.integer(.groupSize, default: 4, in: 1...4096)
        rank = try c.integer(.rank, default: 8, in: 1...4096)
        alpha = try c.number(.alpha, default: 16, in: 0...1e6)
        dropout = try c.number(.dropout, default: 0.05, in: 0...1, openUpper: true)
        targets = try c.value(.targets, default: LoRASettings.targetNames)
        for (i, t) in targets.enumerated() where !LoRASettings.targetNames.contains(t) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "targets"))[\(i)] = '\(t)' is not allowed; choose from: \(LoRASettings.targetNames.joined(separator: ", "))")
        }
        if targets.isEmpty { throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "targets")) is empty; name at least one of: \(LoRASettings.targetNames.joined(separator: ", "))") }
        layers = try c.value(.layers, default: nil as [Int]?)
        if let l = layers, l.count != 2 || l[0] < 0 || l[1] < l[0] {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "layers")) = '\(l)' must be [first, last] with 0 ≤ first ≤ last")
        }
        steps = try c.integer(.steps, default: 50, in: 1...1_000_000)
        batch = try c.integer(.batch, default: 4, in: 1...4096)
        microBatch = try c.integer(.microBatch, default: 2, in: 1...4096)
        seqLen = try c.integer(.seqLen, default: 256, in: 2...65536)
        learningRate = try c.number(.learningRate, default: 1e-4, in: 0...1)
        warmupSteps = try c.integer(.warmupSteps, default: 5, in: 0...1_000_000)
        maxGradNorm = try c.number(.maxGradNorm, default: 1, in: 0...1e9)
        dataset = try c.value(.dataset, default: "c4")
        seed = try c.integer(.seed, default: 0, in: 0...Int.max)
    }

    /// LoRA settings for one group (`steps` steps; the seed varies by group).
    func settings(group k: Int) -> LoRASettings {
        var s = LoRASettings()
        s.rank = rank; s.alpha = alpha; s.dropout = dropout; s.targets = targets
        s.steps = steps; s.batch = batch; s.microBatch = microBatch; s.learningRate = learningRate
        s.warmupSteps = warmupSteps; s.maxGradNorm = maxGradNorm; s.seed = UInt64(seed) &+ UInt64(k)
        return s
    }

    /// The groups of consecutive layers, in training order, for a model of `n` layers.
    func layerGroups(_ n: Int) throws -> [[Int]] {
        let l = layers ?? [0, n - 1]
        guard l[1] < n else {
            throw PruneError(.outOfRange, "fineTuner 'saap-group': layers [\(l[0]), \(l[1])] exceed the model's \(n) layers (0...\(n - 1))")
        }
        return stride(from: l[0], through: l[1], by: groupSize).map { Array($0...min($0 + groupSize - 1, l[1])) }
    }

    public func fineTune(_ model: Transformer, context: FineTuneContext) throws -> FineTuneReport {
        let groups = try layerGroups(model.config.nLayers)
        let data = try LoRAFineTuner.trainingSequences(dataset: dataset, seqLen: seqLen, count: groups.count * steps * batch,
                                                       seed: seed &+ 1, context: context)
        return try train(model, data: data, groups: groups, log: context.log)
    }

    /// Trains each group in turn on its share of `data` (all of it when there is too little to share).
    func train(_ model: Transformer, data: [[Int32]], groups: [[Int]], log: (String) -> Void) throws -> FineTuneReport {
        var total = FineTuneReport(losses: [], tokens: 0, seconds: 0, trainableParameters: 0)
        let share = data.count / max(1, groups.count)
        for (k, g) in groups.enumerated() {
            let part = share >= batch ? Array(data[(k * share)..<((k + 1) * share)]) : data
            let r = try LoRATraining.train(model, sequences: part, settings: settings(group: k), layers: g) { _ in }
            log(String(format: "  SAAP group %d/%d (layers %d–%d): loss %.4f → %.4f", k + 1, groups.count, g[0], g[g.count - 1],
                       r.losses.first ?? .nan, r.losses.last ?? .nan))
            total.losses += r.losses
            total.tokens += r.tokens
            total.seconds += r.seconds
            total.trainableParameters = max(total.trainableParameters, r.trainableParameters)
        }
        return total
    }
}
