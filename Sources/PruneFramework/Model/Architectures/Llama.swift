/// LLaMA and the models that share its block (SmolLM2, Llama 2/3, and Mistral in GGUF files):
/// pre-norm RMSNorm, grouped-query attention without biases, SwiGLU MLP. llama.cpp's `deci`
/// architecture holds the same tensors with per-layer widths, which pruned models need.
public struct LlamaArchitecture: Architecture {
    public let name = "llama"
    public let ggufNames = ["llama", "deci"]
    public let hfArchitectures = ["LlamaForCausalLM"]
    public let hfModelType = "llama"
    public let attentionBias = false
    public let ggufRoPE = RoPELayout.adjacentPairs
    /// llama.cpp's `llama` loader takes attn_output.bias and ffn_down.bias as optional tensors.
    public let ggufOutputBias = true

    public init() {}
}
