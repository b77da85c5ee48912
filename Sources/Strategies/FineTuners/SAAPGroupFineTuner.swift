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
@dynamicMemberLookup
public struct SAAPGroupFineTuner: FineTuner {
    /// Each step's micro-batches are shared over the ranks (`LoRATraining.train`).
    public var isDataParallel: Bool { true }

    public static let name = "saap-group"
    public static let summary = "SAAP: LoRA recovery over consecutive groups of layers in turn, merged after each group"
    /// `groupSize`, then every `lora` key; `steps` and `warmupSteps` count per group and default lower.
    public static let keys = [PluginKey("groupSize", "integer", default: "4", "consecutive layers adapted together")]
        + LoRAFineTuner.keys.map { k in
            switch k.name {
            case "steps": return PluginKey("steps", "integer", default: "50", "optimiser steps per group")
            case "warmupSteps": return PluginKey("warmupSteps", "integer", default: "5", "linear warmup steps (per group) before cosine decay")
            default: return k
            }
        }

    /// lora's defaults with this plugin's `steps` and `warmupSteps`.
    static let defaultLoRA: LoRAFineTuner = {
        var l = LoRAFineTuner()
        l.steps = 50
        l.warmupSteps = 5
        return l
    }()

    public var groupSize = 4
    /// The LoRA training each group gets (`steps` and `warmupSteps` are per group); its fields read and
    /// write as this plugin's own (`ft.rank`, `ft.steps`).
    public var lora = Self.defaultLoRA

    public init() {}

    public subscript<T>(dynamicMember key: WritableKeyPath<LoRAFineTuner, T>) -> T {
        get { lora[keyPath: key] }
        set { lora[keyPath: key] = newValue }
    }

    enum CodingKeys: String, CodingKey { case groupSize }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groupSize = try c.integer(.groupSize, default: 4, in: 1...4096)
        lora = try LoRAFineTuner(decoding: decoder, defaults: Self.defaultLoRA)
    }

    /// Writes lora's keys and `groupSize` flat in one object, as a recipe has them.
    public func encode(to encoder: Encoder) throws {
        try lora.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(groupSize, forKey: .groupSize)
    }

    public var passShape: (sequences: Int, seqLen: Int)? { lora.passShape }
    public var distillation: Distillation? { lora.distillation }

    /// LoRA settings for one group (`steps` steps; the seed varies by group).
    func settings(group k: Int) -> LoRASettings {
        var s = lora.settings
        s.seed = UInt64(lora.seed) &+ UInt64(k)
        return s
    }

    /// The groups of consecutive layers, in training order, for a model of `n` layers.
    func layerGroups(_ n: Int) throws -> [[Int]] {
        let l = lora.layers ?? [0, n - 1]
        guard l[1] < n else {
            throw PruneError(.outOfRange, "fineTuner 'saap-group': layers = '[\(l[0]), \(l[1])]' exceed the model's \(n) layers (0...\(n - 1)); set the last layer to at most \(n - 1)")
        }
        return stride(from: l[0], through: l[1], by: groupSize).map { Array($0...min($0 + groupSize - 1, l[1])) }
    }

    public func fineTune(_ model: Transformer, context: FineTuneContext) throws -> FineTuneReport {
        let groups = try layerGroups(model.config.nLayers)
        let data = try LoRAFineTuner.trainingSequences(dataset: lora.dataset, seqLen: lora.seqLen,
                                                       count: groups.count * lora.steps * lora.batch, seed: lora.seed &+ 1,
                                                       context: context)
        return try train(model, data: data, groups: groups, teacher: try lora.teacher(context, for: Self.name),
                         communicator: context.communicator, log: context.log)
    }

    /// Trains each group in turn on its share of `data` (all of it when there is too little to share).
    func train(_ model: Transformer, data: [[Int32]], groups: [[Int]], teacher: Transformer? = nil,
               communicator: any Communicator = SingleProcess(), log: (String) -> Void) throws -> FineTuneReport {
        var total = FineTuneReport(losses: [], tokens: 0, seconds: 0, trainableParameters: 0)
        let share = data.count / max(1, groups.count)
        for (k, g) in groups.enumerated() {
            let part = share >= lora.batch ? Array(data[(k * share)..<((k + 1) * share)]) : data
            let r = try LoRATraining.train(model, sequences: part, settings: settings(group: k), layers: g, teacher: teacher,
                                           communicator: communicator) { _ in }
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
