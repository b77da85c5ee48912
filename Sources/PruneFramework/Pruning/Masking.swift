/// Mask mode for single weights (unstructured and N:M sparsity, as in Wanda, Sun et al. 2023):
/// which matrices are masked, per-weight scores, zeroing in place and the sparsity achieved.
///
/// Only the linear matrices of decoder blocks (attn_q, attn_k, attn_v, attn_output, ffn_gate,
/// ffn_up, ffn_down) are ever masked; embeddings, the output head and norms are not.
public enum Masking {
    /// The linear matrices that any slice of `groups` touches, in the model's tensor order.
    ///
    /// With the `llama` grouping: kv-groups → q, k, v, output of each layer in range; mlp-channels
    /// → gate, up, down; blocks → all seven; hidden-channels → all seven of every layer.
    public static func linearTensors(touchedBy groups: [PruneGroup], in model: Transformer) -> [String] {
        var touched = Set<String>()
        for g in groups {
            for u in g.units {
                for s in u.slices { touched.insert(s.tensor) }
            }
        }
        return model.params.entries.filter { e in
            touched.contains(e.name) && e.shape.count == 2 && ActivationStatistics.inputSite(of: e.name) != nil
        }.map(\.name)
    }

    /// `f(w, j)` for every element of a matrix, row-major; `j` is the element's input column.
    public static func scores(of tensor: String, in model: Transformer, _ f: (Float, Int) -> Double) throws -> [Double] {
        guard let e = model.params.entry(tensor), e.shape.count == 2 else {
            throw PruneError(.unknownName, "per-weight scores: '\(tensor)' is not a weight matrix of this model")
        }
        let cols = e.shape[1]
        let w = UnsafeBufferPointer(model.params.view(tensor))
        return [Double](unsafeUninitializedCapacity: e.count) { out, n in
            for r in 0..<e.shape[0] {
                for j in 0..<cols { out[r * cols + j] = f(w[r * cols + j], j) }
            }
            n = e.count
        }
    }

    /// Zeroes the weights of `tensor` whose flag in `zero` (one per element, row-major) is true.
    /// Call `model.params.markModified()` after the last matrix.
    public static func apply(_ zero: [Bool], to tensor: String, in model: Transformer) throws {
        guard let e = model.params.entry(tensor) else {
            throw PruneError(.unknownName, "mask: no tensor '\(tensor)' in the model")
        }
        guard zero.count == e.count else {
            throw PruneError(.shapeMismatch, "mask for '\(tensor)' has \(zero.count) flags; the tensor \(e.shape) has \(e.count) weights")
        }
        let w = model.params.view(tensor)
        zero.withUnsafeBufferPointer { z in
            for i in 0..<z.count where z[i] { w[i] = 0 }
        }
    }

    /// Elements of `tensor` that are exactly zero.
    public static func zeroCount(of tensor: String, in model: Transformer) -> Int {
        guard model.params.contains(tensor) else { return 0 }
        var n = 0
        for v in UnsafeBufferPointer(model.params.view(tensor)) where v == 0 { n += 1 }
        return n
    }
}
