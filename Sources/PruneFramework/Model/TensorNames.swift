/// Canonical parameter names: the GGUF names llama.cpp uses for LLaMA-family models.
public enum TensorNames {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"

    public static func attnNorm(_ l: Int) -> String { "blk.\(l).attn_norm.weight" }
    public static func attnQ(_ l: Int) -> String { "blk.\(l).attn_q.weight" }
    public static func attnK(_ l: Int) -> String { "blk.\(l).attn_k.weight" }
    public static func attnV(_ l: Int) -> String { "blk.\(l).attn_v.weight" }
    public static func attnOutput(_ l: Int) -> String { "blk.\(l).attn_output.weight" }
    public static func ffnNorm(_ l: Int) -> String { "blk.\(l).ffn_norm.weight" }
    public static func ffnGate(_ l: Int) -> String { "blk.\(l).ffn_gate.weight" }
    public static func ffnUp(_ l: Int) -> String { "blk.\(l).ffn_up.weight" }
    public static func ffnDown(_ l: Int) -> String { "blk.\(l).ffn_down.weight" }

    /// Every parameter of a model with this config, with row-major shapes, in file order.
    public static func layout(for c: ModelConfig) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = [(tokenEmbedding, [c.vocabSize, c.hiddenSize])]
        for l in 0..<c.nLayers {
            let q = c.nHead[l] * c.headDim, kv = c.nKVHead[l] * c.headDim
            out.append((attnNorm(l), [c.hiddenSize]))
            out.append((attnQ(l), [q, c.hiddenSize]))
            out.append((attnK(l), [kv, c.hiddenSize]))
            out.append((attnV(l), [kv, c.hiddenSize]))
            out.append((attnOutput(l), [c.hiddenSize, q]))
            out.append((ffnNorm(l), [c.hiddenSize]))
            out.append((ffnGate(l), [c.ffnDim[l], c.hiddenSize]))
            out.append((ffnUp(l), [c.ffnDim[l], c.hiddenSize]))
            out.append((ffnDown(l), [c.hiddenSize, c.ffnDim[l]]))
        }
        out.append((outputNorm, [c.hiddenSize]))
        if !c.tiedEmbeddings { out.append((output, [c.vocabSize, c.hiddenSize])) }
        return out
    }
}
