/// Hugging Face `LlamaForCausalLM` tensor names and the RoPE row layout they use.
///
/// Names map one to one onto the canonical GGUF names of `TensorNames`:
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
/// `h·hd + 2i + j` is Hugging Face row `h·hd + j·hd/2 + i` (`j` ∈ {0, 1}). Models here hold the
/// GGUF layout: loading applies `hfToGGUF`, saving applies `ggufToHF`.
public enum HFNames {
    private static let layerPrefix = "model.layers."
    /// (Hugging Face suffix after `model.layers.{l}.`, canonical suffix after `blk.{l}.`).
    private static let layerSuffixes: [(hf: String, gguf: String)] = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
    ]
    private static let globals: [(hf: String, gguf: String)] = [
        ("model.embed_tokens.weight", TensorNames.tokenEmbedding),
        ("model.norm.weight", TensorNames.outputNorm),
        ("lm_head.weight", TensorNames.output),
    ]

    /// The canonical name of a Hugging Face tensor name, or nil when it is not a LLaMA weight.
    public static func canonical(hf name: String) -> String? {
        if let g = globals.first(where: { $0.hf == name }) { return g.gguf }
        guard let (l, suffix) = split(name, prefix: layerPrefix),
              let s = layerSuffixes.first(where: { $0.hf == suffix }) else { return nil }
        return "blk.\(l).\(s.gguf)"
    }

    /// The Hugging Face name of a canonical tensor name, or nil when it has none.
    public static func hf(canonical name: String) -> String? {
        if let g = globals.first(where: { $0.gguf == name }) { return g.hf }
        guard let (l, suffix) = split(name, prefix: "blk."),
              let s = layerSuffixes.first(where: { $0.gguf == suffix }) else { return nil }
        return "\(layerPrefix)\(l).\(s.hf)"
    }

    /// Splits `prefix{l}.rest` into (l, rest).
    private static func split(_ name: String, prefix: String) -> (Int, String)? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]), l >= 0,
              String(l) == rest[..<dot] else { return nil }
        return (l, String(rest[rest.index(after: dot)...]))
    }

    /// The number of heads whose rows are permuted for a canonical name (q: nHead, k: nKVHead), or nil.
    static func ropeHeads(canonical name: String, config c: ModelConfig) -> Int? {
        guard let (l, suffix) = split(name, prefix: "blk."), l < c.nLayers else { return nil }
        switch suffix {
        case "attn_q.weight": return c.nHead[l]
        case "attn_k.weight": return c.nKVHead[l]
        default: return nil
        }
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
