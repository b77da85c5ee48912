import PruneFramework

/// Coupled structures of a decoder with GQA (DESIGN.md §3), LLaMA or Qwen2 alike: KV groups (with
/// their q/k/v biases where the architecture has them), MLP channels, hidden (residual-stream)
/// channels and whole blocks. The slices come from `DecoderStructures`. Recipes name it `decoder`;
/// `llama`, its first name, still works.
public struct DecoderGrouping: Grouping {
    public static let name = "decoder"
    public static let aliases = ["llama"]
    public static let summary = "decoder structures (LLaMA, Qwen2): kv-groups, mlp-channels, hidden-channels, blocks, in a layer range"
    public static let keys = [
        PluginKey("structures", "array", default: "[\"kv-groups\", \"mlp-channels\"]",
                  allowed: StructureKind.allCases.map(\.rawValue), "which structures to prune"),
        PluginKey("layers", "array", default: "null", "[first, last] layers to prune (inclusive); null = all layers"),
    ]

    public var structures: [StructureKind]
    public var layers: [Int]?

    public init(structures: [StructureKind] = [.kvGroup, .mlpChannel], layers: ClosedRange<Int>? = nil) {
        self.structures = structures
        self.layers = layers.map { [$0.lowerBound, $0.upperBound] }
    }

    enum CodingKeys: String, CodingKey { case structures, layers }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let names: [String] = try c.value(.structures, default: ["kv-groups", "mlp-channels"])
        structures = try names.enumerated().map { i, s in
            guard let k = StructureKind(rawValue: s) else {
                throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "structures"))[\(i)] = '\(PruneError.shown(s))' is not a structure; choose from: \(StructureKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return k
        }
        guard !structures.isEmpty else {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "structures")) is empty; name at least one structure")
        }
        layers = try c.value(.layers, default: nil as [Int]?)
        if let l = layers, l.count != 2 || l[0] < 0 || l[1] < l[0] {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "layers")) = '\(PruneError.shown("\(l)"))' must be [first, last] with 0 ≤ first ≤ last")
        }
    }

    public func groups(for model: Transformer) throws -> [PruneGroup] {
        try groups(for: model.config) ?? []
    }

    public func groups(for c: ModelConfig) throws -> [PruneGroup]? {
        var range = 0..<c.nLayers
        if let l = layers {
            guard l[1] < c.nLayers else {
                throw PruneError(.outOfRange, "grouping 'llama': layers = '[\(l[0]), \(l[1])]' exceed the model's \(c.nLayers) layers (0...\(c.nLayers - 1)); set the last layer to at most \(c.nLayers - 1)")
            }
            range = l[0]..<(l[1] + 1)
        }
        return structures.flatMap { kind -> [PruneGroup] in
            switch kind {
            case .kvGroup: range.map { DecoderStructures.kvGroups(c, layer: $0) }
            case .mlpChannel: range.map { DecoderStructures.mlpChannels(c, layer: $0) }
            case .block: [DecoderStructures.blocks(c, layers: range)]
            case .hiddenChannel: [DecoderStructures.hiddenChannels(c)]
            }
        }
    }
}
