/// Hugging Face tensor names (`Architecture.hfName`) and the RoPE row layout they use.
///
/// For `LlamaForCausalLM` names map one to one onto the canonical GGUF names of `TensorNames`:
///
/// | Hugging Face | canonical |
/// |---|---|
/// | `model.embed_tokens.weight` | `token_embd.weight` |
/// | `model.layers.{l}.input_layernorm.weight` | `blk.{l}.attn_norm.weight` |
/// | `model.layers.{l}.self_attn.{q,k,v,o}_proj.weight` | `blk.{l}.attn_{q,k,v,output}.weight` |
/// | `model.layers.{l}.post_attention_layernorm.weight` | `blk.{l}.ffn_norm.weight` |
/// | `model.layers.{l}.mlp.{gate,up,down}_proj.weight` | `blk.{l}.ffn_{gate,up,down}.weight` |
/// | `model.norm.weight` | `output_norm.weight` |
/// | `lm_head.weight` | `output.weight` (absent when embeddings are tied) |
///
/// RoPE: Hugging Face rotates halves (dimension `i` of a head pairs with `i + head_dim/2`), while
/// GGUF files made by llama.cpp's converter rotate adjacent pairs (`2i` with `2i+1`). The converter
/// reorders the rows of `q_proj`/`k_proj` inside each head, equivalent to
/// `w.reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2).reshape(w.shape)`, so that GGUF row
/// `h·hd + 2i + j` is Hugging Face row `h·hd + j·hd/2 + i` (`j` ∈ {0, 1}). Models in the adjacent-pairs
/// layout (`ModelConfig.ropeLayout`, LLaMA) get `hfToGGUF` on loading and `ggufToHF` on saving; models
/// that rotate halves (Qwen2) keep the Hugging Face rows as they are.
public enum HFNames {
    /// The canonical name of a Hugging Face tensor name, or nil when it is not a weight of `architecture`.
    public static func canonical(hf name: String, architecture: any Architecture = LlamaArchitecture()) -> String? {
        // The layer is the name's first all-digit component (`model.layers.7.…`); global names have none.
        let layer = name.split(separator: ".").lazy.compactMap { Int($0) }.first ?? 0
        for role in architecture.roles where architecture.hfName(role, layer: layer) == name {
            return TensorNames.name(role, layer)
        }
        return nil
    }

    /// The Hugging Face name of a canonical tensor name, or nil when it has none.
    public static func hf(canonical name: String, architecture: any Architecture = LlamaArchitecture()) -> String? {
        guard let (layer, role) = TensorNames.parse(name), architecture.roles.contains(role) else { return nil }
        return architecture.hfName(role, layer: layer ?? 0)
    }

    /// The heads and row length of a canonical tensor whose rows follow the RoPE layout (q weight and
    /// bias: nHead heads; k: nKVHead; a bias has rows of one value), or nil.
    static func ropeRows(canonical name: String, config c: ModelConfig) -> (heads: Int, cols: Int)? {
        guard case let (l?, role)? = TensorNames.parse(name), l < c.nLayers else { return nil }
        switch role {
        case .attnQ: return (c.nHead[l], c.hiddenSize)
        case .attnK: return (c.nKVHead[l], c.hiddenSize)
        case .attnQBias: return (c.nHead[l], 1)
        case .attnKBias: return (c.nKVHead[l], 1)
        default: return nil
        }
    }

    /// Reorders the values of a tensor from one RoPE row layout to another (see `ropeRows`); a
    /// tensor whose rows do not rotate, or equal layouts, are left as they are.
    public static func convertRoPERows(_ w: UnsafeMutableBufferPointer<Float>, canonical name: String, config: ModelConfig,
                                       from: RoPELayout, to: RoPELayout) {
        guard from != to, let (heads, cols) = ropeRows(canonical: name, config: config) else { return }
        permuteRows(w, nHead: heads, headDim: config.headDim, cols: cols, toGGUF: to == .adjacentPairs)
    }

    /// The row of a RoPE tensor in the `from` layout that holds row `row` of the tensor in the `to`
    /// layout (rows counted over all heads, `headDim` rows per head): the permutation
    /// `convertRoPERows` applies, one row at a time. From halves to adjacent pairs, row
    /// `h·hd + 2i + j` comes from row `h·hd + j·hd/2 + i`.
    static func ropeSourceRow(_ row: Int, headDim hd: Int, from: RoPELayout, to: RoPELayout) -> Int {
        guard from != to else { return row }
        let head = row - row % hd, r = row % hd, half = hd / 2
        return to == .adjacentPairs ? head + (r % 2) * half + r / 2 : head + 2 * (r % half) + r / half
    }

    /// Reorders the rows of a Hugging Face `q_proj`/`k_proj` weight into the GGUF RoPE layout.
    ///
    /// - Parameters:
    ///   - w: `[nHead·headDim, cols]` row-major, permuted in place.
    ///   - nHead: heads in `w` (query heads for q, KV heads for k).
    ///   - headDim: rows per head; must be even.
    public static func hfToGGUF(_ w: UnsafeMutableBufferPointer<Float>, nHead: Int, headDim: Int, cols: Int) {
        permuteRows(w, nHead: nHead, headDim: headDim, cols: cols, toGGUF: true)
    }

    /// Reorders the rows of a GGUF-layout `attn_q`/`attn_k` weight into the Hugging Face layout
    /// (the inverse of `hfToGGUF`). Arguments as in `hfToGGUF`.
    public static func ggufToHF(_ w: UnsafeMutableBufferPointer<Float>, nHead: Int, headDim: Int, cols: Int) {
        permuteRows(w, nHead: nHead, headDim: headDim, cols: cols, toGGUF: false)
    }

    private static func permuteRows(_ w: UnsafeMutableBufferPointer<Float>, nHead: Int, headDim hd: Int, cols: Int, toGGUF: Bool) {
        precondition(hd % 2 == 0 && w.count == nHead * hd * cols, "HFNames: RoPE permute needs an even head_dim and nHead·headDim·cols values")
        guard cols > 0, let base = w.baseAddress else { return }
        let half = hd / 2
        let tmpBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(hd * cols, 1))
        tmpBuffer.initialize(repeating: 0)
        defer { tmpBuffer.deallocate() }
        guard let tmp = tmpBuffer.baseAddress else { return }
        for h in 0..<nHead {
            let head = base + h * hd * cols
            tmp.update(from: head, count: hd * cols)
            for i in 0..<half {
                for j in 0..<2 {
                    let gguf = 2 * i + j, hf = j * half + i
                    let (dst, src) = toGGUF ? (gguf, hf) : (hf, gguf)
                    (head + dst * cols).update(from: tmp + src * cols, count: cols)
                }
            }
        }
    }
}
