import Foundation

extension Transformer {
    /// This model with attn_output and ffn_down biases in every layer (`ModelConfig.outputBias`):
    /// itself when it has them, else a model over the same weights with zero biases added.
    ///
    /// As `Surgery.apply`: from a lazy model the result is lazy, its store reading every weight from
    /// this model's (no second copy); from a resident model the weights are copied into a new
    /// resident store. Either way the result computes what this model computes until a bias changes.
    public func withOutputBiases() throws -> Transformer {
        guard !config.outputBias else { return self }
        var c = config
        c.outputBias = true
        let old = params
        let layout = TensorNames.layout(for: c)
        let model: Transformer
        if old.isLazy {
            model = try Transformer(config: c, params: ParameterStore(lazy: layout.map { name, shape in
                guard old.contains(name) else {
                    let width = shape.last ?? 1
                    return (name, shape, { rows, into in into.update(repeating: 0, count: rows.count * width) })
                }
                return (name, shape, { rows, into in try old.readRows(name, rows, into: into) })
            }))
        } else {
            let store = ParameterStore(layout: layout)
            for e in old.entries where e.rowCount > 0 { try old.readRows(e.name, 0..<e.rowCount, into: store.pointer(e.name)) }
            model = try Transformer(config: c, params: store)
        }
        model.packedBudget = packedBudget
        model.quantizedMatmul = quantizedMatmul
        return model
    }
}
