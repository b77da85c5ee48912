/// Hyperparameters of a LLaMA-family decoder, with per-layer widths.
///
/// A pruned model keeps `headDim` but may have a different number of query heads, KV heads and
/// MLP channels in each layer, so those are arrays with one entry per layer.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var nLayers: Int
    public var headDim: Int
    /// Query heads per layer.
    public var nHead: [Int]
    /// Key/value heads per layer (GQA groups).
    public var nKVHead: [Int]
    /// MLP intermediate width per layer.
    public var ffnDim: [Int]
    public var ropeBase: Float
    public var rmsEps: Float
    public var contextLength: Int
    /// True when the output head reuses `token_embd.weight`.
    public var tiedEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    /// The architecture's registry name (`Architectures`): which names other formats give the
    /// tensors, and how llama.cpp runs the model.
    public var architecture: String
    /// True when attn_q, attn_k and attn_v carry biases (Qwen2); they are cut with their heads.
    public var attentionBias: Bool
    /// How the Q and K rows of each head pair dimensions for RoPE.
    public var ropeLayout: RoPELayout
    /// True when every layer's attn_output and ffn_down carry a bias (length hidden_size) added to the
    /// residual stream with their output: FLAP's bias compensation puts the removed channels' mean
    /// contribution there. Cut with the residual channels, kept whole when heads or MLP channels go.
    public var outputBias: Bool

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", nLayers = "n_layers", headDim = "head_dim"
        case nHead = "n_head", nKVHead = "n_kv_head", ffnDim = "ffn_dim", ropeBase = "rope_base"
        case rmsEps = "rms_eps", contextLength = "context_length", tiedEmbeddings = "tied_embeddings"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", architecture, attentionBias = "attention_bias", ropeLayout = "rope_layout"
        case outputBias = "output_bias"
    }

    public init(vocabSize: Int, hiddenSize: Int, nLayers: Int, headDim: Int, nHead: [Int], nKVHead: [Int],
                ffnDim: [Int], ropeBase: Float = 10000, rmsEps: Float = 1e-5, contextLength: Int = 2048,
                tiedEmbeddings: Bool = true, bosTokenId: Int? = nil, eosTokenId: Int? = nil,
                architecture: String = "llama", attentionBias: Bool = false, ropeLayout: RoPELayout = .adjacentPairs,
                outputBias: Bool = false) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.nLayers = nLayers
        self.headDim = headDim
        self.nHead = nHead
        self.nKVHead = nKVHead
        self.ffnDim = ffnDim
        self.ropeBase = ropeBase
        self.rmsEps = rmsEps
        self.contextLength = contextLength
        self.tiedEmbeddings = tiedEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.architecture = architecture
        self.attentionBias = attentionBias
        self.ropeLayout = ropeLayout
        self.outputBias = outputBias
    }

    /// Decodes every key as written; `output_bias`, added later, is false when absent, so configs
    /// written before it still decode.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        nLayers = try c.decode(Int.self, forKey: .nLayers)
        headDim = try c.decode(Int.self, forKey: .headDim)
        nHead = try c.decode([Int].self, forKey: .nHead)
        nKVHead = try c.decode([Int].self, forKey: .nKVHead)
        ffnDim = try c.decode([Int].self, forKey: .ffnDim)
        ropeBase = try c.decode(Float.self, forKey: .ropeBase)
        rmsEps = try c.decode(Float.self, forKey: .rmsEps)
        contextLength = try c.decode(Int.self, forKey: .contextLength)
        tiedEmbeddings = try c.decode(Bool.self, forKey: .tiedEmbeddings)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId)
        architecture = try c.decode(String.self, forKey: .architecture)
        attentionBias = try c.decode(Bool.self, forKey: .attentionBias)
        ropeLayout = try c.decode(RoPELayout.self, forKey: .ropeLayout)
        outputBias = try c.decodeIfPresent(Bool.self, forKey: .outputBias) ?? false
    }

    /// True when every layer has the same widths (a plain `llama` GGUF can hold it).
    public var isUniform: Bool {
        Set(nHead).count <= 1 && Set(nKVHead).count <= 1 && Set(ffnDim).count <= 1
    }

    /// The largest values a model's widths may take; anything larger is a corrupt file, and the
    /// caps keep every size computed from them (products of two widths, sums over tensors) far
    /// from overflow.
    public enum Limits {
        public static let layers = 4096
        public static let width = 1 << 20
        public static let heads = 1 << 16
        public static let headDim = 1 << 16
        public static let ffn = 1 << 24
        public static let vocab = 1 << 24
        public static let context = Int(Int32.max)
    }

    /// Checks ranges and internal consistency; throws a PruneError naming the first bad field.
    public func validate() throws {
        func bad(_ what: String) -> PruneError { PruneError(.badFormat, "model config: \(what)") }
        func within(_ v: Int, _ r: ClosedRange<Int>, _ name: String) throws {
            guard r.contains(v) else { throw PruneError(.outOfRange, "model config: \(name) '\(v)' is out of range [\(r.lowerBound), \(r.upperBound)]") }
        }
        try within(vocabSize, 1...Limits.vocab, "vocab_size")
        try within(hiddenSize, 1...Limits.width, "hidden_size")
        try within(nLayers, 0...Limits.layers, "n_layers")
        try within(headDim, 1...Limits.headDim, "head_dim")
        try within(contextLength, 1...Limits.context, "context_length")
        guard ropeBase.isFinite, ropeBase > 0 else { throw bad("rope_base '\(ropeBase)' must be a finite positive number") }
        guard rmsEps.isFinite, rmsEps > 0, rmsEps < 1 else { throw bad("rms_eps '\(rmsEps)' must be a finite number in (0, 1)") }
        for (name, id) in [("bos_token_id", bosTokenId), ("eos_token_id", eosTokenId)] {
            if let id, !(0..<vocabSize).contains(id) { throw bad("\(name) '\(id)' is not a token id (vocabulary of \(vocabSize))") }
        }
        guard nHead.count == nLayers, nKVHead.count == nLayers, ffnDim.count == nLayers else {
            throw bad("per-layer arrays must have \(nLayers) entries (n_head \(nHead.count), n_kv_head \(nKVHead.count), ffn_dim \(ffnDim.count))")
        }
        for l in 0..<nLayers {
            guard nKVHead[l] > 0, nHead[l] > 0, nHead[l] <= Limits.heads, nHead[l] % nKVHead[l] == 0 else {
                throw bad("layer \(l): n_head \(nHead[l]) must be a positive multiple of n_kv_head \(nKVHead[l]), at most \(Limits.heads)")
            }
            try within(ffnDim[l], 1...Limits.ffn, "layer \(l): ffn_dim")
        }
    }

    /// Bytes the model's weights take as f32 (what loading allocates).
    public var f32Bytes: Int {
        TensorNames.layout(for: self).reduce(0) { $0 + 4 * $1.shape.reduce(1, *) }
    }
}
