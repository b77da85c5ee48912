import PruneFramework

/// Coupled structures of a LLaMA decoder with GQA (DESIGN.md §3): KV groups, MLP channels,
/// hidden (residual-stream) channels and whole blocks.
public struct LlamaGrouping: Grouping {
    public static let name = "llama"
    public static let summary = "LLaMA/GQA structures: kv-groups, mlp-channels, hidden-channels, blocks, in a layer range"
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
                throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "structures"))[\(i)] = '\(s)' is not a structure; choose from: \(StructureKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return k
        }
        guard !structures.isEmpty else {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "structures")) is empty; name at least one structure")
        }
        layers = try c.value(.layers, default: nil as [Int]?)
        if let l = layers, l.count != 2 || l[0] < 0 || l[1] < l[0] {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "layers")) = '\(l)' must be [first, last] with 0 ≤ first ≤ last")
        }
    }

    public func groups(for model: Transformer) throws -> [PruneGroup] {
        let c = model.config
        var range = 0..<c.nLayers
        if let l = layers {
            guard l[1] < c.nLayers else {
                throw PruneError(.outOfRange, "grouping 'llama': layers = '[\(l[0]), \(l[1])]' exceed the model's \(c.nLayers) layers (0...\(c.nLayers - 1)); set the last layer to at most \(c.nLayers - 1)")
            }
            range = l[0]..<(l[1] + 1)
        }
        var out: [PruneGroup] = []
        for kind in structures {
            switch kind {
            case .kvGroup: out += range.map { kvGroups(c, $0) }
            case .mlpChannel: out += range.map { mlpChannels(c, $0) }
            case .block: out.append(blocks(model, range))
            case .hiddenChannel: out.append(hiddenChannels(c))
            }
        }
        return out
    }

    func kvGroups(_ c: ModelConfig, _ l: Int) -> PruneGroup {
        let hd = c.headDim, D = c.hiddenSize, g = c.nHead[l] / c.nKVHead[l]
        let units = (0..<c.nKVHead[l]).map { k in
            PruneUnit(slices: [
                TensorSlice(TensorNames.attnQ(l), axis: 0, (k * g * hd)..<((k + 1) * g * hd)),
                TensorSlice(TensorNames.attnK(l), axis: 0, (k * hd)..<((k + 1) * hd)),
                TensorSlice(TensorNames.attnV(l), axis: 0, (k * hd)..<((k + 1) * hd)),
                TensorSlice(TensorNames.attnOutput(l), axis: 1, (k * g * hd)..<((k + 1) * g * hd)),
            ], parameterCount: 2 * g * hd * D + 2 * hd * D)
        }
        return PruneGroup(kind: .kvGroup, layer: l, units: units)
    }

    func mlpChannels(_ c: ModelConfig, _ l: Int) -> PruneGroup {
        let units = (0..<c.ffnDim[l]).map { ch in
            PruneUnit(slices: [
                TensorSlice(TensorNames.ffnGate(l), axis: 0, ch..<(ch + 1)),
                TensorSlice(TensorNames.ffnUp(l), axis: 0, ch..<(ch + 1)),
                TensorSlice(TensorNames.ffnDown(l), axis: 1, ch..<(ch + 1)),
            ], parameterCount: 3 * c.hiddenSize)
        }
        return PruneGroup(kind: .mlpChannel, layer: l, units: units)
    }

    func blocks(_ model: Transformer, _ range: Range<Int>) -> PruneGroup {
        let units = range.map { l in
            let names = [TensorNames.attnNorm(l), TensorNames.attnQ(l), TensorNames.attnK(l), TensorNames.attnV(l),
                         TensorNames.attnOutput(l), TensorNames.ffnNorm(l), TensorNames.ffnGate(l), TensorNames.ffnUp(l),
                         TensorNames.ffnDown(l)]
            let slices = names.compactMap { n in model.params.entry(n).map { TensorSlice(n, axis: 0, 0..<$0.shape[0]) } }
            return PruneUnit(slices: slices, parameterCount: names.reduce(0) { $0 + (model.params.entry($1)?.count ?? 0) })
        }
        return PruneGroup(kind: .block, layer: nil, units: units)
    }

    func hiddenChannels(_ c: ModelConfig) -> PruneGroup {
        var perUnit = c.vocabSize * (c.tiedEmbeddings ? 1 : 2) + 2 * c.nLayers + 1
        for l in 0..<c.nLayers {
            let q = c.nHead[l] * c.headDim, kv = c.nKVHead[l] * c.headDim
            perUnit += q + 2 * kv + q + 3 * c.ffnDim[l]
        }
        let units = (0..<c.hiddenSize).map { j -> PruneUnit in
            let r = j..<(j + 1)
            var s = [TensorSlice(TensorNames.tokenEmbedding, axis: 1, r), TensorSlice(TensorNames.outputNorm, axis: 0, r)]
            if !c.tiedEmbeddings { s.append(TensorSlice(TensorNames.output, axis: 1, r)) }
            for l in 0..<c.nLayers {
                s += [TensorSlice(TensorNames.attnNorm(l), axis: 0, r), TensorSlice(TensorNames.ffnNorm(l), axis: 0, r),
                      TensorSlice(TensorNames.attnQ(l), axis: 1, r), TensorSlice(TensorNames.attnK(l), axis: 1, r),
                      TensorSlice(TensorNames.attnV(l), axis: 1, r), TensorSlice(TensorNames.attnOutput(l), axis: 0, r),
                      TensorSlice(TensorNames.ffnGate(l), axis: 1, r), TensorSlice(TensorNames.ffnUp(l), axis: 1, r),
                      TensorSlice(TensorNames.ffnDown(l), axis: 0, r)]
            }
            return PruneUnit(slices: s, parameterCount: perUnit)
        }
        return PruneGroup(kind: .hiddenChannel, layer: nil, units: units)
    }
}
