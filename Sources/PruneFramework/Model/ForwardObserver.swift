/// The places in a decoder block where an observer sees activations.
public enum ActivationSite: String, Sendable, CaseIterable, Codable {
    /// The residual stream entering a block (before attn_norm).
    case blockInput = "block-input"
    /// The normalised input of attn_q, attn_k and attn_v.
    case attnInput = "attn-input"
    /// The input of attn_output (the concatenated head outputs).
    case attnOutputInput = "attn-output-input"
    /// The normalised input of ffn_gate and ffn_up.
    case mlpInput = "mlp-input"
    /// The input of ffn_down: silu(gate) * up, the MLP intermediate activations.
    case mlpIntermediate = "mlp-intermediate"
    /// The residual stream leaving a block.
    case blockOutput = "block-output"
}

/// Sees activations during a forward pass; the pruning core collects statistics through it.
///
/// `activations` is row-major `rows × cols` (one row per token) and is valid only during the call.
public protocol ForwardObserver: AnyObject {
    func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int)
}
