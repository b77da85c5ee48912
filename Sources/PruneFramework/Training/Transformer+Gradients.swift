import Foundation

/// Gradients of a model's mean next-token NLL over a set of sequences.
public struct GradientResult {
    /// ∂(mean NLL)/∂θ, laid out like the model's parameters.
    public var gradients: ParameterStore
    /// The diagonal empirical Fisher (1/n)·Σ_j g_j², g_j the gradient of sequence j's mean NLL, when asked.
    public var fisher: ParameterStore?
    public var loss: LossSum
}

extension Transformer {
    /// A training pass over this model's Float parameters; gradients go to `gradients` for the names
    /// `trainable` accepts (others are frozen and their weight gradients skipped).
    ///
    /// When the weights are read from their file and their f32 size exceeds `packedBudget`, each
    /// pass materialises a block's weights for its forward and again for its backward and frees
    /// them in between, so training holds one block's f32 weights at a time (more reading, the
    /// same numbers); a smaller model keeps what it read.
    public func backprop(gradients: ParameterStore?, trainable: @escaping (String) -> Bool = { _ in true }) -> Backprop<Float> {
        let params = self.params
        let lean = params.isLazy && config.f32Bytes > packedBudget
        let tensors = TrainingTensors<Float>(
            weight: { UnsafePointer(params.pointer($0)) },
            gradient: { name in
                guard let g = gradients, trainable(name), g.contains(name) else { return nil }
                return g.pointer(name)
            },
            release: { if lean { params.release($0) } })
        return Backprop(config: config, tensors: tensors)
    }

    /// Gradients of the mean NLL over `sequences` (each of the same length, ≥ 2), `microBatch` sequences per
    /// pass so activations stay bounded. With `fisher`, also the diagonal empirical Fisher from
    /// per-sequence gradients (LLM-Pruner's accumulation for its second-order Taylor terms; this costs
    /// one pass per sequence). `progress` gets (sequences done, total) of this rank.
    ///
    /// With several ranks, each runs its share of the micro-batches (of the sequences, with the
    /// Fisher) and the gradients, Fisher and loss are added over the ranks.
    public func gradients(sequences: [[Int32]], microBatch: Int = 4, fisher: Bool = false,
                          communicator: any Communicator = SingleProcess(),
                          progress: ((Int, Int) -> Void)? = nil) throws -> GradientResult {
        let T = try Self.checkGradientInputs(sequences, microBatch: microBatch)
        let n = sequences.count
        let grads = ParameterStore(layoutOf: params)
        var loss = LossSum(sum: 0, count: 0)
        let parts = stride(from: 0, to: n, by: fisher ? 1 : microBatch).map { $0..<min($0 + (fisher ? 1 : microBatch), n) }
        let mine = parts[communicator.share(of: parts.count)]
        let total = mine.reduce(0) { $0 + $1.count }
        var done = 0
        var fish: ParameterStore?
        if fisher {
            let f = ParameterStore(layoutOf: params)
            let one = ParameterStore(layoutOf: params)
            let pass = backprop(gradients: one)
            let inv = 1 / Float(n)
            for r in mine {
                one.zero()
                let l = try pass.run(tokens: sequences[r.lowerBound], batch: 1, seqLen: T, scale: 1 / Float(T - 1))
                loss.sum += l.sum
                loss.count += l.count
                let g = one.buffer, acc = grads.buffer, fb = f.buffer
                for i in 0..<g.count {
                    acc[i] += g[i] * inv
                    fb[i] += g[i] * g[i] * inv
                }
                done += 1
                progress?(done, total)
            }
            fish = f
        } else {
            let pass = backprop(gradients: grads)
            let scale = 1 / Float(n * (T - 1))
            for r in mine {
                let l = try pass.run(tokens: Array(sequences[r].joined()), batch: r.count, seqLen: T, scale: scale)
                loss.sum += l.sum
                loss.count += l.count
                done += r.count
                progress?(done, total)
            }
        }
        try communicator.sum(grads.buffer.baseAddress!, count: grads.buffer.count)
        if let fish { try communicator.sum(fish.buffer.baseAddress!, count: fish.buffer.count) }
        loss = LossSum(sum: try communicator.sum(loss.sum), count: try communicator.sum(loss.count))
        return GradientResult(gradients: grads, fisher: fish, loss: loss)
    }
}

extension Transformer {
    /// Checks the calibration sequences of a gradient pass (at least one, all of the same length
    /// ≥ 2) and the micro-batch (≥ 1); returns the length.
    static func checkGradientInputs(_ sequences: [[Int32]], microBatch: Int) throws -> Int {
        guard let T = sequences.first?.count, T >= 2 else {
            throw PruneError(.invalidArgument, "gradients: need at least one sequence of ≥ 2 tokens")
        }
        for (i, s) in sequences.enumerated() where s.count != T {
            throw PruneError(.shapeMismatch, "gradients: sequence \(i) has \(s.count) tokens, the first has \(T)")
        }
        guard microBatch > 0 else { throw PruneError(.invalidArgument, "gradients: microBatch must be ≥ 1, got \(microBatch)") }
        return T
    }
}

extension ParameterStore {
    /// Sets every value to zero.
    public func zero() { buffer.update(repeating: 0) }
}
