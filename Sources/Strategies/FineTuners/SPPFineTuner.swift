import Foundation
import PruneFramework

/// SPP (Lu et al. 2024, "SPP: Sparsity-Preserved Parameter-Efficient Fine-Tuning for Large Language
/// Models", ICML 2024, arXiv 2405.16057): recovery after mask-mode pruning (`unstructured`, `n:m`)
/// that keeps the mask. Each target weight W gets a row matrix A (r × k) and a column c (n) whose
/// product scales W's own values, W' = W + s·W ⊙ (c ⊗ R(A)) (`SPPAdapter`), so a weight that is zero
/// stays zero through training and the merge; the exported model has exactly the pruned zeros.
///
/// Training is the `lora` fine-tuner's (AdamW, warmup + cosine, clipping, the same keys and data);
/// the defaults follow SPP's code: 16 row groups (`rank`), α/r = 2 (`alpha` 32) and the
/// learning rate 3e-4 of the alpaca-lora scripts it builds on.
@dynamicMemberLookup
public struct SPPFineTuner: FineTuner {
    /// Each step's micro-batches are shared over the ranks (`LoRATraining.train`).
    public var isDataParallel: Bool { true }

    public static let name = "spp"
    public static let summary = "SPP: learnable row and column scalings of the frozen sparse weights, trained like lora and merged; keeps every zero of a mask"
    public static let keys = LoRAFineTuner.keys.map { k in
        switch k.name {
        case "rank": return PluginKey("rank", "integer", default: "16", "r: groups of output rows, each with its own input scaling (SPP's row matrix)")
        case "alpha": return PluginKey("alpha", "number", default: "32", "scaling α (the update is α/r · W ⊙ (c ⊗ A))")
        case "learningRate": return PluginKey("learningRate", "number", default: "0.0003", "peak learning rate")
        case "targets": return PluginKey("targets", "array", default: k.defaultValue, allowed: k.allowed, "linear layers that get SPP's scalings")
        case "layers": return PluginKey("layers", "array", default: "null", "[first, last] layers whose targets get scalings (inclusive); null = all")
        default: return k
        }
    }

    /// lora's defaults with SPP's rank, alpha and learning rate.
    static let defaultLoRA: LoRAFineTuner = {
        var l = LoRAFineTuner()
        l.rank = 16
        l.alpha = 32
        l.learningRate = 3e-4
        return l
    }()

    /// The training settings, read and written as this plugin's own (`ft.steps`, `ft.rank`).
    public var lora = Self.defaultLoRA

    public init() {}

    public subscript<T>(dynamicMember key: WritableKeyPath<LoRAFineTuner, T>) -> T {
        get { lora[keyPath: key] }
        set { lora[keyPath: key] = newValue }
    }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        lora = try LoRAFineTuner(decoding: decoder, defaults: Self.defaultLoRA)
    }

    public func encode(to encoder: Encoder) throws { try lora.encode(to: encoder) }

    public var passShape: (sequences: Int, seqLen: Int)? { lora.passShape }
    public var distillation: Distillation? { lora.distillation }
    public var preservesZeros: Bool { true }

    public var settings: LoRASettings {
        var s = lora.settings
        s.adapter = .spp
        return s
    }

    public func fineTune(_ model: Transformer, context: FineTuneContext) throws -> FineTuneReport {
        let data = try LoRAFineTuner.trainingSequences(dataset: lora.dataset, seqLen: lora.seqLen, count: lora.steps * lora.batch,
                                                       seed: lora.seed &+ 1, context: context)
        return try LoRAFineTuner.train(model, data: data, settings: settings, layers: try lora.adaptedLayers(model.config.nLayers, plugin: Self.name),
                                       teacher: try lora.teacher(context, for: Self.name), label: "  SPP", context: context)
    }
}
