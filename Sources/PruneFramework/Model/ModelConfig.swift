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

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", nLayers = "n_layers", headDim = "head_dim"
        case nHead = "n_head", nKVHead = "n_kv_head", ffnDim = "ffn_dim", ropeBase = "rope_base"
        case rmsEps = "rms_eps", contextLength = "context_length", tiedEmbeddings = "tied_embeddings"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", architecture, attentionBias = "attention_bias", ropeLayout = "rope_layout"
    }

    public init(vocabSize: Int, hiddenSize: Int, nLayers: Int, headDim: Int, nHead: [Int], nKVHead: [Int],
                ffnDim: [Int], ropeBase: Float = 10000, rmsEps: Float = 1e-5, contextLength: Int = 2048,
                tiedEmbeddings: Bool = true, bosTokenId: Int? = nil, eosTokenId: Int? = nil,
                architecture: String = "llama", attentionBias: Bool = false, ropeLayout: RoPELayout = .adjacentPairs) {
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
    }

    /// True when every layer has the same widths (a plain `llama` GGUF can hold it).
    public var isUniform: Bool {
        Set(nHead).count <= 1 && Set(nKVHead).count <= 1 && Set(ffnDim).count <= 1
    }

    /// Checks internal consistency; throws a PruneError naming the first inconsistent field.
    public func validate() throws {
        func bad(_ what: String) -> PruneError { PruneError(.badFormat, "model config: \(what)") }
        guard vocabSize > 0, hiddenSize > 0, nLayers >= 0, headDim > 0 else {
            throw bad("sizes must be positive (vocab \(vocabSize), hidden \(hiddenSize), layers \(nLayers), head_dim \(headDim))")
        }
        guard nHead.count == nLayers, nKVHead.count == nLayers, ffnDim.count == nLayers else {
            throw bad("per-layer arrays must have \(nLayers) entries (n_head \(nHead.count), n_kv_head \(nKVHead.count), ffn_dim \(ffnDim.count))")
        }
        for l in 0..<nLayers {
            guard nKVHead[l] > 0, nHead[l] > 0, nHead[l] % nKVHead[l] == 0 else {
                throw bad("layer \(l): n_head \(nHead[l]) must be a positive multiple of n_kv_head \(nKVHead[l])")
            }
            guard ffnDim[l] > 0 else { throw bad("layer \(l): ffn_dim \(ffnDim[l]) must be positive") }
        }
    }
}
