import Foundation
import PruneFramework

/// The peak memory a recipe needs on its model, estimated from the config before anything is read,
/// so `prune validate` and `prune run` refuse a run that cannot fit (the machine, or the recipe's
/// `memory.budgetGB`) and say which setting to change.
struct MemoryEstimate {
    /// What holds memory at the peak stage, largest first.
    var parts: [(what: String, bytes: Int)]
    /// The stage at the peak.
    var stage: String
    var total: Int { parts.reduce(0) { $0 + $1.bytes } }
}

extension PruneRun {
    /// The estimate for `config`: what every stage holds beside the weights, which are read from
    /// the model's files when used (GGUF or safetensors).
    func memoryEstimate(_ config: ModelConfig) -> MemoryEstimate {
        let c = config, D = c.hiddenSize, V = c.vocabSize, L = c.nLayers, F = c.ffnDim.max() ?? 0
        let f32 = c.f32Bytes, layout = TensorNames.layout(for: c)
        let bytes: [Int] = layout.map { 4 * $0.shape.reduce(1, *) }
        let largest = bytes.max() ?? 0
        var perLayer = [Int](repeating: 0, count: L)
        for (i, t) in layout.enumerated() { if let l = TensorNames.layer(of: t.name) { perLayer[l] += bytes[i] } }
        let block = perLayer.max() ?? 0
        let headBytes = 4 * V * D
        var base: [(String, Int)] = [("program, tokenizer and data", 300 << 20)]
        base.append(("packed weights (cache of \(MemoryBudget.gib(Transformer.defaultPackedBudget)))", min(Transformer.defaultPackedBudget, f32)))
        base.append(("the largest tensor, read for packing", largest))
        // A forward over 1024 tokens: the residual stream, one block's activations, logits by 64 rows.
        let N = 1024, H = c.nHead.max() ?? 1
        let forward = 4 * (N * D * 6 + N * F * 3 + 64 * V) + 4 * H * 128 * 128
        var stages: [(String, [(String, Int)])] = [("evaluation", [("activations of a 1024-token forward", forward)])]
        let cal = recipe.calibration
        let criterion = recipe.criterion, inputs = criterion.inputs
        if inputs.contains(.gradients) || inputs.contains(.fisher) {
            let fisher = inputs.contains(.fisher)
            let mb = fisher ? 1 : criterion.gradientMicroBatch, tokens = mb * cal.seqLen
            let activations = 4 * (tokens * (D * 6 + F * 3) + mb * H * cal.seqLen * cal.seqLen) + 4 * 64 * V * 2
            if criterion is any ChannelSumCriterion && (try? maskMode()) == nil {
                let copies = fisher ? 3 : 1
                let inputsBytes: Int = 4 * (L + 1) * cal.samples * cal.seqLen * D
                let blockBytes: Int = block * (1 + copies)
                let headGradients: Int = 2 * headBytes * (1 + copies)
                let parts: [(String, Int)] = [
                    ("block inputs of the calibration sequences (calibration.samples × seqLen × hidden × layers)", inputsBytes),
                    ("one block's f32 weights and gradient" + (fisher ? " and Fisher" : ""), blockBytes),
                    ("the head's and the embedding's f32 weights and gradients", headGradients),
                    ("activations of one micro-batch (criterion.microBatch)", activations),
                ]
                stages.append(("gradients block by block", parts))
            } else {
                stages.append(("gradients of the whole model", [
                    ("f32 weights", f32),
                    ("f32 gradient\(fisher ? ", Fisher diagonal and per-sequence gradient" : "")", f32 * (fisher ? 3 : 1)),
                    ("activations of one micro-batch, every layer (criterion.microBatch)", activations * L),
                ]))
            }
        }
        if let comp = recipe.compensator {
            // One layer's Hessian of the widest compensated input in Double, its kept block and
            // factor, the residual streams of the calibration sequences, the layer's two matrices.
            let k = max(F, c.nHead.max().map { $0 * c.headDim } ?? 0)
            stages.append(("compensation with '\(type(of: comp).name)'", [
                ("Hessians XᵀX of one layer's widest input, in Double, and their factor", 3 * 8 * k * k),
                ("residual streams of the calibration sequences (calibration.samples × seqLen × hidden)",
                 2 * 4 * cal.samples * cal.seqLen * D),
                ("one block's f32 weights", block),
            ]))
        }
        if let ft = recipe.fineTuner {
            stages.append(("fine-tuning with '\(type(of: ft).name)'", fineTuneParts(ft, c, block: block, head: headBytes)))
        }
        stages.append(("export", [("one tensor in f32 and encoded", 2 * largest)]))
        let peak = stages.max { a, b in a.1.reduce(0) { $0 + $1.1 } < b.1.reduce(0) { $0 + $1.1 } }!
        let parts = (base + peak.1).filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }.map { (what: $0.0, bytes: $0.1) }
        return MemoryEstimate(parts: parts, stage: peak.0)
    }

    /// What a fine-tune holds: the f32 weights (one block and the head at a time when they are
    /// larger than the packed budget, see `Transformer.backprop`), and every layer's kept
    /// activations of one pass, with the adapters' copies of their inputs.
    func fineTuneParts(_ ft: any FineTuner, _ c: ModelConfig, block: Int, head: Int) -> [(String, Int)] {
        let (mb, T) = ft.passShape ?? (2, 256)
        let N = mb * T, D = c.hiddenSize, hd = c.headDim
        let kept = (0..<c.nLayers).reduce(0) { sum, l in
            let q = c.nHead[l] * hd, kv = c.nKVHead[l] * hd, F = c.ffnDim[l]
            let layer = N * (4 * D + 2 * q + 2 * kv + 3 * F + 2) + mb * c.nHead[l] * T * T
            let adapters = 2 * N * (5 * D + q + F)  // inputs and dropout masks of q, k, v, o, gate, up, down
            return sum + 4 * (layer + adapters)
        }
        let lean = c.f32Bytes > Transformer.defaultPackedBudget
        let weights: (String, Int) = lean ? ("one block's and the head's f32 weights at a time", block + head) : ("f32 weights", c.f32Bytes)
        var parts = [weights, ("activations of one pass, every layer (fineTuner.microBatch × seqLen)", kept)]
        if ft.distillation != nil {
            // The dense teacher's weights as its forward holds them, its logits for the pass, and
            // the student's own logits chunk is already counted with the head.
            parts.append((lean ? "the dense teacher's block and head in f32" : "the dense teacher's f32 weights", lean ? block + head : c.f32Bytes))
            parts.append(("teacher logits of one pass (microBatch × seqLen × vocabulary)", 4 * N * c.vocabSize))
        }
        return parts
    }

    /// Throws when the estimate exceeds the recipe's `memory.budgetGB` or the machine's memory,
    /// naming the largest parts and what to change.
    func checkMemory(_ config: ModelConfig) throws {
        let e = memoryEstimate(config)
        // The processes of a distributed run on this machine each hold a model and its work.
        let local = communicator.isDistributed ? Distributed.processesOnThisMachine : 1
        let budget = (recipe.memory.budgetGB.map { Int($0 * 1e9) } ?? MemoryBudget.limit ?? MemoryBudget.physicalBytes) / local
        guard e.total > budget else { return }
        let where_ = (recipe.memory.budgetGB.map { String(format: "memory.budgetGB = %g", $0) } ?? "this machine's memory")
            + (local > 1 ? " shared by the \(local) processes on this machine" : "")
        let parts = e.parts.prefix(4).map { "\($0.what) \(MemoryBudget.gib($0.bytes))" }.joined(separator: "; ")
        throw PruneError(.outOfRange, "recipe: the run needs about \(MemoryBudget.gib(e.total)) at its peak (\(e.stage)), more than \(where_) (\(MemoryBudget.gib(budget))): \(parts). Lower what the largest part names, or raise memory.budgetGB")
    }
}

extension PruneRun {
    /// One line for `prune validate`: the estimated peak and its stage.
    public func memorySummary() throws -> String {
        let source = try ModelSource(path: recipe.model)
        let e = memoryEstimate(try source.config())
        let budget = recipe.memory.budgetGB.map { String(format: "memory.budgetGB = %g", $0) } ?? "this machine's \(MemoryBudget.gib(MemoryBudget.physicalBytes))"
        return "estimated peak memory \(MemoryBudget.gib(e.total)) (\(e.stage)), within \(budget)"
    }
}
