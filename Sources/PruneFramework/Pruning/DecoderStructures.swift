/// The coupled slices of a decoder's structures (DESIGN.md §3), built from tensor roles and shapes,
/// biases included where the config has them: every grouping and criterion that needs a structure's
/// slices takes them from here.
public enum DecoderStructures {
    /// A layer's KV groups: unit k holds k's rows of attn_k and attn_v, the rows of the query heads
    /// that share it in attn_q, the same entries of the q/k/v biases, and those heads' attn_output columns.
    /// The attn_output bias, one value per residual channel, stays whole.
    public static func kvGroups(_ c: ModelConfig, layer l: Int) -> PruneGroup {
        let hd = c.headDim, g = c.nHead[l] / c.nKVHead[l]
        let units = (0..<c.nKVHead[l]).map { k in
            let q = (k * g * hd)..<((k + 1) * g * hd), kv = (k * hd)..<((k + 1) * hd)
            let roles: [(TensorRole, Int, Range<Int>)] = [(.attnQ, 0, q), (.attnQBias, 0, q), (.attnK, 0, kv), (.attnKBias, 0, kv),
                                                          (.attnV, 0, kv), (.attnVBias, 0, kv), (.attnOutput, 1, q)]
            return unit(c, l, roles)
        }
        return PruneGroup(kind: .kvGroup, layer: l, units: units, width: .kvHeads(layer: l, queryHeads: g))
    }

    /// A layer's MLP channels: row c of ffn_gate and ffn_up, column c of ffn_down (its bias stays whole).
    public static func mlpChannels(_ c: ModelConfig, layer l: Int) -> PruneGroup {
        let units = (0..<c.ffnDim[l]).map { ch in
            unit(c, l, [(.ffnGate, 0, ch..<(ch + 1)), (.ffnUp, 0, ch..<(ch + 1)), (.ffnDown, 1, ch..<(ch + 1))])
        }
        return PruneGroup(kind: .mlpChannel, layer: l, units: units, width: .mlpChannels(layer: l))
    }

    /// Whole decoder layers: every tensor of each layer in `layers`.
    public static func blocks(_ c: ModelConfig, layers: Range<Int>) -> PruneGroup {
        let units = layers.map { l in
            unit(c, l, TensorNames.layerRoles(c).map { ($0, 0, 0..<TensorNames.shape($0, l, c)[0]) })
        }
        return PruneGroup(kind: .block, layer: nil, units: units, width: .layers(Array(layers)))
    }

    /// Residual-stream channels: one column of every matrix that reads the stream, one row of every
    /// matrix that writes it, one entry of every norm and output bias, one column of the embedding
    /// (and output head).
    public static func hiddenChannels(_ c: ModelConfig) -> PruneGroup {
        var axes: [(name: String, shape: [Int], axis: Int)] = []
        for (name, shape) in TensorNames.layout(for: c) {
            guard let role = TensorNames.parse(name)?.role, let axis = residualAxis(role) else { continue }
            axes.append((name, shape, axis))
        }
        let perUnit = axes.reduce(0) { $0 + elements(shape: $1.shape, axis: $1.axis, count: 1) }
        let units = (0..<c.hiddenSize).map { j in
            PruneUnit(slices: axes.map { TensorSlice($0.name, axis: $0.axis, j..<(j + 1)) }, parameterCount: perUnit)
        }
        return PruneGroup(kind: .hiddenChannel, layer: nil, units: units, width: .hiddenChannels)
    }

    /// The axis of a tensor that runs along the residual stream, nil when it has none (q/k/v biases).
    static func residualAxis(_ role: TensorRole) -> Int? {
        switch role {
        case .tokenEmbedding, .output, .attnQ, .attnK, .attnV, .ffnGate, .ffnUp: 1
        case .outputNorm, .attnNorm, .ffnNorm, .attnOutput, .ffnDown, .attnOutputBias, .ffnDownBias: 0
        case .attnQBias, .attnKBias, .attnVBias: nil
        }
    }

    /// A unit of layer l's slices (role, axis, range); roles the config lacks (biases) are left out.
    static func unit(_ c: ModelConfig, _ l: Int, _ roles: [(TensorRole, Int, Range<Int>)]) -> PruneUnit {
        let present = Set(TensorNames.layerRoles(c))
        var slices: [TensorSlice] = [], count = 0
        for (role, axis, range) in roles where present.contains(role) {
            slices.append(TensorSlice(TensorNames.name(role, l), axis: axis, range))
            count += elements(shape: TensorNames.shape(role, l, c), axis: axis, count: range.count)
        }
        return PruneUnit(slices: slices, parameterCount: count)
    }

    /// Elements in `count` rows (axis 0) or columns (axis 1) of a tensor of `shape`.
    static func elements(shape: [Int], axis: Int, count: Int) -> Int {
        shape.count == 2 ? count * shape[1 - axis] : count
    }
}
