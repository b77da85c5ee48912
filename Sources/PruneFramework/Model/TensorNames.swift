/// What a tensor of a decoder does, whatever a file format calls it.
public enum TensorRole: String, CaseIterable, Sendable {
    case tokenEmbedding, outputNorm, output
    case attnNorm, attnQ, attnK, attnV, attnOutput, attnQBias, attnKBias, attnVBias, attnOutputBias
    case ffnNorm, ffnGate, ffnUp, ffnDown, ffnDownBias

    /// The roles of a decoder layer's tensors, in file order.
    public static let layerRoles: [TensorRole] = [.attnNorm, .attnQ, .attnQBias, .attnK, .attnKBias, .attnV, .attnVBias,
                                                  .attnOutput, .attnOutputBias, .ffnNorm, .ffnGate, .ffnUp, .ffnDown, .ffnDownBias]

    /// Whether a tensor of this role belongs to one layer (`blk.N.`).
    public var isPerLayer: Bool { ![.tokenEmbedding, .outputNorm, .output].contains(self) }

    /// The canonical name without the layer prefix: `attn_q.weight`, `token_embd.weight`.
    public var canonicalSuffix: String {
        switch self {
        case .tokenEmbedding: "token_embd.weight"
        case .outputNorm: "output_norm.weight"
        case .output: "output.weight"
        case .attnNorm: "attn_norm.weight"
        case .attnQ: "attn_q.weight"
        case .attnK: "attn_k.weight"
        case .attnV: "attn_v.weight"
        case .attnOutput: "attn_output.weight"
        case .attnQBias: "attn_q.bias"
        case .attnKBias: "attn_k.bias"
        case .attnVBias: "attn_v.bias"
        case .attnOutputBias: "attn_output.bias"
        case .ffnNorm: "ffn_norm.weight"
        case .ffnGate: "ffn_gate.weight"
        case .ffnUp: "ffn_up.weight"
        case .ffnDown: "ffn_down.weight"
        case .ffnDownBias: "ffn_down.bias"
        }
    }

    /// The linear weight a q/k/v bias belongs to (attn_q.bias → attn_q), nil for other roles
    /// (the output biases included: see `outputBiasOf`).
    public var biasOf: TensorRole? {
        switch self {
        case .attnQBias: .attnQ
        case .attnKBias: .attnK
        case .attnVBias: .attnV
        default: nil
        }
    }

    /// The q/k/v bias of a linear weight (attn_q → attn_q.bias), nil for other weights.
    public var bias: TensorRole? { TensorRole.allCases.first { $0.biasOf == self } }

    /// The output projection an output bias belongs to (attn_output.bias → attn_output,
    /// ffn_down.bias → ffn_down), nil for other roles. These biases are added to the residual
    /// stream with their projection's output (`ModelConfig.outputBias`).
    public var outputBiasOf: TensorRole? {
        switch self {
        case .attnOutputBias: .attnOutput
        case .ffnDownBias: .ffnDown
        default: nil
        }
    }

    /// The output bias of an output projection (attn_output → attn_output.bias), nil for other roles.
    public var outputBias: TensorRole? { TensorRole.allCases.first { $0.outputBiasOf == self } }

    static let bySuffix = Dictionary(uniqueKeysWithValues: allCases.map { ($0.canonicalSuffix, $0) })
}

/// Canonical parameter names: the GGUF names llama.cpp uses (`blk.N.attn_q.weight`), for every
/// architecture. This is the one place that builds and parses them.
public enum TensorNames {
    public static let tokenEmbedding = TensorRole.tokenEmbedding.canonicalSuffix
    public static let outputNorm = TensorRole.outputNorm.canonicalSuffix
    public static let output = TensorRole.output.canonicalSuffix

    /// The canonical name of `role` (in layer `l` for per-layer roles).
    public static func name(_ role: TensorRole, _ l: Int) -> String {
        role.isPerLayer ? "blk.\(l).\(role.canonicalSuffix)" : role.canonicalSuffix
    }

    public static func attnNorm(_ l: Int) -> String { name(.attnNorm, l) }
    public static func attnQ(_ l: Int) -> String { name(.attnQ, l) }
    public static func attnK(_ l: Int) -> String { name(.attnK, l) }
    public static func attnV(_ l: Int) -> String { name(.attnV, l) }
    public static func attnOutput(_ l: Int) -> String { name(.attnOutput, l) }
    public static func ffnNorm(_ l: Int) -> String { name(.ffnNorm, l) }
    public static func ffnGate(_ l: Int) -> String { name(.ffnGate, l) }
    public static func ffnUp(_ l: Int) -> String { name(.ffnUp, l) }
    public static func ffnDown(_ l: Int) -> String { name(.ffnDown, l) }

    /// The role and layer of a canonical name (`blk.3.ffn_up.weight` → (3, .ffnUp)); nil when the
    /// name is not canonical. Global tensors have layer nil.
    public static func parse(_ name: String) -> (layer: Int?, role: TensorRole)? {
        guard name.hasPrefix("blk.") else {
            return TensorRole.bySuffix[name].flatMap { $0.isPerLayer ? nil : (nil, $0) }
        }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]), l >= 0, String(l) == rest[..<dot],
              let role = TensorRole.bySuffix[String(rest[rest.index(after: dot)...])], role.isPerLayer else { return nil }
        return (l, role)
    }

    /// The layer of a per-layer canonical name, nil for global or unknown names.
    public static func layer(of name: String) -> Int? { parse(name)?.layer }

    /// The roles a layer of this config holds (q/k/v biases and output biases only when the config
    /// has them).
    public static func layerRoles(_ c: ModelConfig) -> [TensorRole] {
        TensorRole.layerRoles.filter { ($0.biasOf == nil || c.attentionBias) && ($0.outputBiasOf == nil || c.outputBias) }
    }

    /// The row-major shape of a tensor of `role` in layer `l`.
    public static func shape(_ role: TensorRole, _ l: Int, _ c: ModelConfig) -> [Int] {
        let D = c.hiddenSize, q = role.isPerLayer ? c.nHead[l] * c.headDim : 0, kv = role.isPerLayer ? c.nKVHead[l] * c.headDim : 0
        switch role {
        case .tokenEmbedding, .output: return [c.vocabSize, D]
        case .outputNorm, .attnNorm, .ffnNorm, .attnOutputBias, .ffnDownBias: return [D]
        case .attnQ: return [q, D]
        case .attnK, .attnV: return [kv, D]
        case .attnOutput: return [D, q]
        case .attnQBias: return [q]
        case .attnKBias, .attnVBias: return [kv]
        case .ffnGate, .ffnUp: return [c.ffnDim[l], D]
        case .ffnDown: return [D, c.ffnDim[l]]
        }
    }

    /// The names and shapes of layer `l`'s tensors, in file order.
    public static func layerTensors(_ l: Int, _ c: ModelConfig) -> [(name: String, shape: [Int])] {
        layerRoles(c).map { (name($0, l), shape($0, l, c)) }
    }

    /// Every parameter of a model with this config, with row-major shapes, in file order.
    public static func layout(for c: ModelConfig) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = [(tokenEmbedding, shape(.tokenEmbedding, 0, c))]
        for l in 0..<c.nLayers { out += layerTensors(l, c) }
        out.append((outputNorm, shape(.outputNorm, 0, c)))
        if !c.tiedEmbeddings { out.append((output, shape(.output, 0, c))) }
        return out
    }
}
