/// Qwen2 and Qwen2.5 (arXiv 2407.10671): the LLaMA block with biases on the q, k and v projections,
/// RoPE on the halves of each head (llama.cpp runs `qwen2` files in NEOX mode; its converter does not
/// permute the rows), often an untied output head, and RoPE base 1e6 read from the file.
public struct Qwen2Architecture: Architecture {
    public let name = "qwen2"
    public let ggufNames = ["qwen2"]
    public let hfArchitectures = ["Qwen2ForCausalLM"]
    public let hfModelType = "qwen2"
    public let attentionBias = true
    public let ggufRoPE = RoPELayout.halves
    /// llama.cpp's `qwen2` loader wants `attn_q` and `attn_output` of `n_embd × n_embd`: pruned heads go to `deci`.
    public let ggufFullWidthQueries = true
    /// llama.cpp's `qwen2` loader creates no attn_output/ffn_down biases and refuses a file that has them:
    /// a model with output biases goes to `deci`.
    public let ggufOutputBias = false

    public init() {}
}
