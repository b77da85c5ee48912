import Foundation

/// A Hugging Face `config.json` of a registered architecture (`LlamaForCausalLM`, `Qwen2ForCausalLM`,
/// `MistralForCausalLM`), converted to and from `ModelConfig`.
///
/// Keys not listed here (`hidden_act`, `use_cache`, `transformers_version`, ...) are ignored on
/// read, except those that would change the model: `hidden_act` must be `silu`, `attention_bias`
/// and `mlp_bias` must be false, and `rope_scaling` must be null or absent.
///
/// Pruned models may have different widths in each layer. Such a config records them in the
/// extra key `prune_per_layer`:
///
/// ```json
/// "prune_per_layer": {"num_attention_heads": [4, 2], "num_key_value_heads": [2, 1],
///                     "intermediate_size": [24, 28]}
/// ```
///
/// Each array has `num_hidden_layers` entries and takes precedence over the plain key, which then
/// holds the largest width. When every layer has the same width, `prune_per_layer` is omitted and
/// the plain keys hold the value (the file is then an ordinary Llama config).
public struct HFConfig: Codable, Sendable, Equatable {
    /// Per-layer widths of a pruned model (the `prune_per_layer` object).
    public struct PerLayer: Codable, Sendable, Equatable {
        public var numAttentionHeads: [Int]?
        public var numKeyValueHeads: [Int]?
        public var intermediateSize: [Int]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
            case intermediateSize = "intermediate_size"
        }

        public init(numAttentionHeads: [Int]? = nil, numKeyValueHeads: [Int]? = nil, intermediateSize: [Int]? = nil) {
            self.numAttentionHeads = numAttentionHeads
            self.numKeyValueHeads = numKeyValueHeads
            self.intermediateSize = intermediateSize
        }

        /// Decodes the three arrays and rejects unknown keys, so a typo is an error.
        public init(from decoder: Decoder) throws {
            let raw = try decoder.container(keyedBy: AnyKey.self)
            let allowed = Set(CodingKeys.allCases.map(\.rawValue))
            if let k = raw.allKeys.first(where: { !allowed.contains($0.stringValue) }) {
                throw PruneError(.badFormat, "config.json: unknown key 'prune_per_layer.\(ByteReader.shown(k.stringValue))'; allowed: \(allowed.sorted().joined(separator: ", "))")
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numAttentionHeads = try c.decodeIfPresent([Int].self, forKey: .numAttentionHeads)
            numKeyValueHeads = try c.decodeIfPresent([Int].self, forKey: .numKeyValueHeads)
            intermediateSize = try c.decodeIfPresent([Int].self, forKey: .intermediateSize)
        }
    }

    public var architectures: [String]?
    public var modelType: String?
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    /// Defaults to `num_attention_heads`.
    public var numKeyValueHeads: Int?
    /// Defaults to `hidden_size / num_attention_heads`.
    public var headDim: Int?
    /// Defaults to 1e-6 (the `LlamaConfig` default).
    public var rmsNormEps: Double?
    /// Defaults to 10000.
    public var ropeTheta: Double?
    public var vocabSize: Int
    /// Defaults to 2048.
    public var maxPositionEmbeddings: Int?
    /// Defaults to false (the `LlamaConfig` default).
    public var tieWordEmbeddings: Bool?
    public var bosTokenId: Int?
    /// The first id when the file holds a list (Llama 3 lists several).
    public var eosTokenId: Int?
    public var torchDtype: String?
    public var hiddenAct: String?
    public var attentionBias: Bool?
    public var mlpBias: Bool?
    public var prunePerLayer: PerLayer?
    /// Attention span of a sliding-window model (Mistral 7B v0.1); it applies unless
    /// `use_sliding_window` is false (Qwen2 configs carry a window they do not use).
    public var slidingWindow: Int?
    public var useSlidingWindow: Bool?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta"
        case vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
        case torchDtype = "torch_dtype", hiddenAct = "hidden_act", attentionBias = "attention_bias"
        case mlpBias = "mlp_bias", ropeScaling = "rope_scaling", prunePerLayer = "prune_per_layer"
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window"
    }

    /// The config of `c`, marked with its architecture (`LlamaForCausalLM`, `Qwen2ForCausalLM`), with
    /// per-layer widths when they differ.
    public init(_ c: ModelConfig, torchDtype: SafetensorsDType = .f32) {
        let architecture = (try? Architectures.named(c.architecture)) ?? LlamaArchitecture()
        /// The shortest decimal that reads back as the same Float (1e-05, not 9.99999974737875e-06).
        func decimal(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
        func plain(_ a: [Int], _ fallback: Int) -> Int { a.max() ?? fallback }
        architectures = Array(architecture.hfArchitectures.prefix(1))
        modelType = architecture.hfModelType
        hiddenSize = c.hiddenSize
        numHiddenLayers = c.nLayers
        numAttentionHeads = plain(c.nHead, max(1, c.hiddenSize / c.headDim))
        numKeyValueHeads = plain(c.nKVHead, numAttentionHeads)
        intermediateSize = plain(c.ffnDim, 4 * c.hiddenSize)
        headDim = c.headDim
        rmsNormEps = decimal(c.rmsEps)
        ropeTheta = decimal(c.ropeBase)
        vocabSize = c.vocabSize
        maxPositionEmbeddings = c.contextLength
        tieWordEmbeddings = c.tiedEmbeddings
        bosTokenId = c.bosTokenId
        eosTokenId = c.eosTokenId
        self.torchDtype = torchDtype.torchName
        hiddenAct = "silu"
        attentionBias = c.attentionBias
        mlpBias = false
        prunePerLayer = c.isUniform ? nil
            : PerLayer(numAttentionHeads: c.nHead, numKeyValueHeads: c.nKVHead, intermediateSize: c.ffnDim)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let list = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenId = list.first
        } else {
            eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId)
        }
        torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct)
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias)
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias)
        if c.contains(.ropeScaling), !(try c.decodeNil(forKey: .ropeScaling)) {
            throw PruneError(.unsupported, "config.json: key 'rope_scaling' is set; RoPE scaling is not supported, only plain RoPE (rope_scaling null)")
        }
        prunePerLayer = try c.decodeIfPresent(PerLayer.self, forKey: .prunePerLayer)
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(architectures, forKey: .architectures)
        try c.encodeIfPresent(modelType, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encodeIfPresent(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encodeIfPresent(headDim, forKey: .headDim)
        try c.encodeIfPresent(rmsNormEps, forKey: .rmsNormEps)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encodeIfPresent(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encodeIfPresent(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        try c.encodeIfPresent(eosTokenId, forKey: .eosTokenId)
        try c.encodeIfPresent(torchDtype, forKey: .torchDtype)
        try c.encodeIfPresent(hiddenAct, forKey: .hiddenAct)
        try c.encodeIfPresent(attentionBias, forKey: .attentionBias)
        try c.encodeIfPresent(mlpBias, forKey: .mlpBias)
        try c.encodeNil(forKey: .ropeScaling)
        try c.encodeIfPresent(prunePerLayer, forKey: .prunePerLayer)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encodeIfPresent(useSlidingWindow, forKey: .useSlidingWindow)
    }

    /// The model config, validated; throws a PruneError naming the offending key.
    public func modelConfig() throws -> ModelConfig {
        func bad(_ what: String, _ code: PruneError.Code = .badFormat) -> PruneError { PruneError(code, "config.json: \(what)") }
        let architecture = try Architectures.forHF(architectures: architectures, modelType: modelType)
        if let t = modelType, t != architecture.hfModelType {
            throw bad("model_type '\(ByteReader.shown(t))' does not match architectures '\(ByteReader.shown("\(architectures ?? [])"))' (expected '\(architecture.hfModelType)')", .unsupported)
        }
        if let act = hiddenAct, act != "silu" {
            throw bad("hidden_act '\(ByteReader.shown(act))' is not supported; supported: silu", .unsupported)
        }
        if (attentionBias ?? architecture.attentionBias) != architecture.attentionBias || mlpBias == true {
            throw bad("attention_bias = '\(attentionBias ?? false)', mlp_bias = '\(mlpBias ?? false)': \(architecture.hfArchitectures.first ?? architecture.name) "
                      + "has \(architecture.attentionBias ? "q/k/v biases" : "no biases") and no MLP biases", .unsupported)
        }
        guard (0...4096).contains(numHiddenLayers) else {
            throw bad("num_hidden_layers '\(numHiddenLayers)' is out of range [0, 4096]", .outOfRange)
        }
        guard numAttentionHeads > 0, hiddenSize > 0 else {
            throw bad("num_attention_heads '\(numAttentionHeads)' and hidden_size '\(hiddenSize)' must be positive", .outOfRange)
        }
        let hd = headDim ?? hiddenSize / numAttentionHeads
        if headDim == nil, hiddenSize % numAttentionHeads != 0 {
            throw bad("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads); add 'head_dim'")
        }
        guard hd > 0, hd % 2 == 0 else {
            throw bad("head_dim '\(hd)' must be positive and even (RoPE rotates pairs)", .outOfRange)
        }
        for (key, v) in [("rms_norm_eps", rmsNormEps), ("rope_theta", ropeTheta)] {
            if let v, !(v.isFinite && v > 0 && Float(v).isFinite && Float(v) > 0 && (key != "rms_norm_eps" || v < 1)) {
                throw bad("'\(key)' = '\(v)' must be a finite number greater than 0\(key == "rms_norm_eps" ? " and below 1" : "")", .outOfRange)
            }
        }
        for (key, v, cap) in [("hidden_size", hiddenSize, ModelConfig.Limits.width), ("vocab_size", vocabSize, ModelConfig.Limits.vocab),
                              ("intermediate_size", intermediateSize, ModelConfig.Limits.ffn),
                              ("num_attention_heads", numAttentionHeads, ModelConfig.Limits.heads),
                              ("max_position_embeddings", maxPositionEmbeddings ?? 1, ModelConfig.Limits.context)] where !(1...cap).contains(v) {
            throw bad("'\(key)' = '\(v)' is out of range [1, \(cap)]", .outOfRange)
        }
        func perLayer(_ a: [Int]?, _ plainValue: Int, _ key: String) throws -> [Int] {
            guard let a else { return [Int](repeating: plainValue, count: numHiddenLayers) }
            guard a.count == numHiddenLayers else {
                throw bad("'prune_per_layer.\(key)' has \(a.count) entries, num_hidden_layers is \(numHiddenLayers)")
            }
            return a
        }
        let p = prunePerLayer
        let config = ModelConfig(
            vocabSize: vocabSize, hiddenSize: hiddenSize, nLayers: numHiddenLayers, headDim: hd,
            nHead: try perLayer(p?.numAttentionHeads, numAttentionHeads, "num_attention_heads"),
            nKVHead: try perLayer(p?.numKeyValueHeads, numKeyValueHeads ?? numAttentionHeads, "num_key_value_heads"),
            ffnDim: try perLayer(p?.intermediateSize, intermediateSize, "intermediate_size"),
            ropeBase: Float(ropeTheta ?? 10000), rmsEps: Float(rmsNormEps ?? 1e-6),
            contextLength: try contextLength(), tiedEmbeddings: tieWordEmbeddings ?? false,
            bosTokenId: bosTokenId, eosTokenId: eosTokenId, architecture: architecture.name,
            attentionBias: architecture.attentionBias, ropeLayout: architecture.ggufRoPE)
        do { try config.validate() } catch let e as PruneError {
            throw PruneError(e.code, "config.json: \(e.message)")
        }
        return config
    }

    /// `max_position_embeddings` (2048 when absent), capped at the sliding window where one applies:
    /// up to the window, full attention computes what sliding-window attention computes.
    func contextLength() throws -> Int {
        let full = maxPositionEmbeddings ?? 2048
        guard let w = slidingWindow, useSlidingWindow != false else { return full }
        guard w > 0 else { throw PruneError(.outOfRange, "config.json: sliding_window '\(w)' must be positive") }
        return min(full, w)
    }

    /// Reads and decodes a `config.json`; errors name the file and the offending key.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PruneError(.fileNotFound, "config.json '\(path)' does not exist; a Hugging Face model directory needs config.json next to its .safetensors files")
        }
        let data = try RegularFile.read(path, what: "config.json", cap: 16 << 20)
        try JSONCheck.check(data, label: "config.json '\(path)'")
        do {
            self = try JSONDecoder().decode(HFConfig.self, from: data)
        } catch let e as PruneError {
            throw PruneError(e.code, "\(e.message) (in '\(path)')")
        } catch let DecodingError.keyNotFound(key, _) {
            throw PruneError(.badFormat, "config.json '\(path)': required key '\(key.stringValue)' is missing")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx), let DecodingError.dataCorrupted(ctx) {
            let where_ = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw PruneError(.badFormat, "config.json '\(path)': \(where_.isEmpty ? "the file" : "key '\(where_)'") is malformed: \(ctx.debugDescription)")
        }
    }

    /// The config as pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(self)
    }
}

/// A coding key for any string (used to list the keys an object holds).
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
