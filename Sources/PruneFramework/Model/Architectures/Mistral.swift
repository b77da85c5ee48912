/// Mistral (Mistral 7B v0.1–v0.3, Mistral-Nemo, Ministral and their fine-tunes) as Hugging Face
/// directories of `MistralForCausalLM`: the LLaMA block without biases, often with an explicit
/// `head_dim`. llama.cpp's converter writes these models as `llama` GGUF files, so that is what an
/// export writes; a `llama` file reads back as LLaMA, whose block is the same.
///
/// Mistral 7B v0.1 attends over a sliding window of 4096 tokens (`sliding_window`); up to that
/// length full attention computes the same thing, so the model's context length is capped at the
/// window (`HFConfig.modelConfig()`).
public struct MistralArchitecture: Architecture {
    public let name = "mistral"
    public let ggufNames = ["llama"]
    public let hfArchitectures = ["MistralForCausalLM"]
    public let hfModelType = "mistral"
    public let attentionBias = false
    public let ggufRoPE = RoPELayout.adjacentPairs
    /// llama.cpp's `llama` loader takes attn_output.bias and ffn_down.bias as optional tensors.
    public let ggufOutputBias = true

    public init() {}
}
