import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Strategies

/// A tiny LLaMA, or with `qwen2` a tiny Qwen2 (q/k/v biases, RoPE on halves, untied head); with
/// `outputBias`, attn_output and ffn_down biases of random values in every layer.
func tinyModel(layers: Int = 3, seed: UInt64 = 1, qwen2: Bool = false, outputBias: Bool = false) throws -> Transformer {
    let c = ModelConfig(vocabSize: 41, hiddenSize: 16, nLayers: layers, headDim: 4,
                        nHead: [Int](repeating: 6, count: layers), nKVHead: [Int](repeating: 3, count: layers),
                        ffnDim: (0..<layers).map { 20 + 4 * $0 }, contextLength: 64, tiedEmbeddings: !qwen2,
                        architecture: qwen2 ? "qwen2" : "llama", attentionBias: qwen2, ropeLayout: qwen2 ? .halves : .adjacentPairs,
                        outputBias: outputBias)
    let m = try Transformer(randomWith: c, seed: seed)
    var rng = SplitMix64(seed: seed + 100)
    for l in 0..<layers where outputBias {
        for role in [TensorRole.attnOutputBias, .ffnDownBias] {
            let v = m.params.view(TensorNames.name(role, l))
            for i in 0..<v.count { v[i] = 0.5 * rng.nextSymmetric() }
        }
    }
    return m
}

func tokens(_ n: Int, vocab: Int, seed: UInt64 = 5) -> [Int32] {
    var r = SplitMix64(seed: seed)
    return (0..<n).map { _ in Int32(r.next() % UInt64(vocab)) }
}

@Suite struct GroupingTests {
    /// Every row/column a structure kind touches belongs to exactly one of its units.
    @Test(arguments: [StructureKind.kvGroup, .mlpChannel, .hiddenChannel], [false, true])
    func eachSliceElementIsInExactlyOneUnit(kind: StructureKind, qwen2: Bool) throws {
        let m = try tinyModel(qwen2: qwen2)
        let groups = try DecoderGrouping(structures: [kind]).groups(for: m)
        var seen: [String: [Int]] = [:]  // "tensor/axis" -> hit counts per index
        for g in groups {
            for u in g.units {
                for s in u.slices {
                    let e = try #require(m.params.entry(s.tensor))
                    let key = "\(s.tensor)/\(s.axis)"
                    if seen[key] == nil { seen[key] = [Int](repeating: 0, count: e.shape[s.axis]) }
                    for i in s.range { seen[key]![i] += 1 }
                }
            }
        }
        #expect(!seen.isEmpty)
        for (k, hits) in seen { #expect(hits.allSatisfy { $0 == 1 }, "\(k): \(hits)") }
        if kind == .hiddenChannel {
            // Every matrix of every layer is touched: readers by column, writers by row.
            #expect(seen.count == (qwen2 ? 3 : 2) + 9 * m.config.nLayers)
        }
    }

    @Test func layerRangeRestrictsGroupsAndIsChecked() throws {
        let m = try tinyModel(layers: 5)
        let g = try DecoderGrouping(structures: [.kvGroup, .mlpChannel], layers: 1...3).groups(for: m)
        #expect(g.map(\.id) == ["kv-groups@1", "kv-groups@2", "kv-groups@3", "mlp-channels@1", "mlp-channels@2", "mlp-channels@3"])
        let e = try #require(throws: PruneError.self) { try DecoderGrouping(layers: 2...9).groups(for: m) }
        #expect(e.code == .outOfRange && e.message.contains("layers = '[2, 9]'") && e.message.contains("5 layers"), "\(e.message)")
    }

    @Test(arguments: [false, true]) func unitParameterCountsMatchTheirSlices(qwen2: Bool) throws {
        let m = try tinyModel(qwen2: qwen2)
        for g in try DecoderGrouping(structures: [.kvGroup, .mlpChannel, .block]).groups(for: m) {
            for u in g.units {
                let n = u.slices.reduce(0) { acc, s in
                    let e = m.params.entry(s.tensor)!
                    return acc + s.count * (e.shape.count == 2 ? e.shape[1 - s.axis] : 1)
                }
                #expect(n == u.parameterCount, Comment(rawValue: g.id))
            }
        }
    }
}

@Suite struct SurgeryTests {
    func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? .infinity }

    /// The physically pruned model computes what the dense model computes with those units zeroed
    /// (output biases, where the model has them, stay whole with heads and MLP channels and go with
    /// their block).
    @Test(arguments: [false, true], [false, true]) func prunedLogitsEqualMaskedLogits(qwen2: Bool, outputBias: Bool) throws {
        let dense = try tinyModel(layers: 4, seed: 3, qwen2: qwen2, outputBias: outputBias)
        let groups = try DecoderGrouping(structures: [.kvGroup, .mlpChannel, .block]).groups(for: dense)
        var plan = PruningPlan()
        plan.removals["kv-groups@0"] = [1]
        plan.removals["kv-groups@2"] = [0, 2]
        plan.removals["mlp-channels@0"] = [0, 5, 6, 19]
        plan.removals["mlp-channels@3"] = Array(0..<20)
        plan.removals["blocks"] = [1]
        let pruned = try Surgery.apply(plan, groups: groups, to: dense)
        #expect(pruned.config.nLayers == 3)
        #expect(pruned.config.nKVHead == [2, 1, 3] && pruned.config.nHead == [4, 2, 6])
        #expect(pruned.config.ffnDim == [16, 28, 12])
        #expect(pruned.parameterCount == dense.parameterCount - plan.removedParameters(in: groups))
        try Surgery.mask(plan, groups: groups, in: dense)
        let t = tokens(2 * 9, vocab: 41)
        let d = maxDiff(try pruned.logits(tokens: t, batch: 2, seqLen: 9), try dense.logits(tokens: t, batch: 2, seqLen: 9))
        #expect(d < 1e-3, "max |Δ| \(d)")
    }

    @Test func aLayerKeepsAtLeastOneKVGroup() throws {
        let m = try tinyModel()
        let groups = try DecoderGrouping(structures: [.kvGroup]).groups(for: m)
        let plan = PruningPlan(removals: ["kv-groups@1": [0, 1, 2]])
        do {
            _ = try Surgery.apply(plan, groups: groups, to: m)
            Issue.record("removing every KV group should fail")
        } catch let e as PruneError {
            #expect(e.message.contains("every KV group of layer 1"))
        }
    }

    @Test func hiddenChannelsShrinkTheResidualStream() throws {
        let m = try tinyModel()
        let groups = try DecoderGrouping(structures: [.hiddenChannel]).groups(for: m)
        let pruned = try Surgery.apply(PruningPlan(removals: ["hidden-channels": [0, 3, 15]]), groups: groups, to: m)
        #expect(pruned.config.hiddenSize == 13)
        #expect(pruned.parameterCount == m.parameterCount - 3 * groups[0].units[0].parameterCount)
        let lg = try pruned.logits(tokens: tokens(8, vocab: 41), batch: 1, seqLen: 8)
        #expect(lg.allSatisfy { $0.isFinite })
    }

    /// Residual-channel pruning cuts the output biases like the norms: the kept entries, in order.
    @Test func hiddenChannelsCutTheOutputBiases() throws {
        let m = try tinyModel(outputBias: true)
        let groups = try DecoderGrouping(structures: [.hiddenChannel]).groups(for: m)
        #expect(groups[0].units[3].slices.contains(TensorSlice("blk.2.ffn_down.bias", axis: 0, 3..<4)))
        let cut: Set<Int> = [0, 3, 15]
        let pruned = try Surgery.apply(PruningPlan(removals: ["hidden-channels": cut.sorted()]), groups: groups, to: m)
        #expect(pruned.config.outputBias && pruned.config.hiddenSize == 13)
        #expect(pruned.parameterCount == m.parameterCount - 3 * groups[0].units[0].parameterCount)
        let kept = (0..<16).filter { !cut.contains($0) }
        for l in 0..<3 {
            for role in [TensorRole.attnOutputBias, .ffnDownBias] {
                let name = TensorNames.name(role, l), source = m.params.view(name)
                #expect(Array(pruned.params.view(name)) == kept.map { source[$0] }, "\(name)")
            }
        }
        // Whole blocks take their biases with them.
        let blocks = try DecoderGrouping(structures: [.block]).groups(for: m)
        let shallow = try Surgery.apply(PruningPlan(removals: ["blocks": [1]]), groups: blocks, to: m)
        #expect(Array(shallow.params.view("blk.1.ffn_down.bias")) == Array(m.params.view("blk.2.ffn_down.bias")))
        #expect(shallow.params.entry("blk.2.attn_output.bias") == nil)
    }

    /// Surgery reads the widths from the groups: a group must say which width it shrinks, and slices
    /// that disagree with that width are caught by tensor name.
    @Test func theGroupsSayWhichWidthTheyShrink() throws {
        let m = try tinyModel()
        var mlp = DecoderStructures.mlpChannels(m.config, layer: 1)
        let plan = PruningPlan(removals: [mlp.id: [2, 7]])
        #expect(try Surgery.apply(plan, groups: [mlp], to: m).config.ffnDim == [20, 22, 28])
        mlp.width = nil
        let none = try #require(throws: PruneError.self) { try Surgery.apply(plan, groups: [mlp], to: m) }
        #expect(none.message.contains("group 'mlp-channels@1' does not say which width its units shrink"), "\(none.message)")
        mlp.width = .mlpChannels(layer: 2)
        let wrong = try #require(throws: PruneError.self) { try Surgery.apply(plan, groups: [mlp], to: m) }
        #expect(wrong.code == .shapeMismatch && wrong.message.contains("'blk.1.ffn_gate.weight' keeps 22×16 values"), "\(wrong.message)")
    }

    @Test(.requires(.smolLM2))
    func smolLM2PrunedLogitsEqualMaskedLogits() throws {
        let dense = try Transformer(path: RequiredFile.smolLM2.path)
        let groups = try DecoderGrouping(structures: [.kvGroup, .mlpChannel], layers: 3...26).groups(for: dense)
        var plan = PruningPlan()
        for (i, g) in groups.enumerated() {
            let n = g.kind == .kvGroup ? 1 : 300
            plan.removals[g.id] = Array(stride(from: i % 2, to: g.units.count, by: max(1, g.units.count / n)).prefix(n))
        }
        let pruned = try Surgery.apply(plan, groups: groups, to: dense)
        try Surgery.mask(plan, groups: groups, in: dense)
        let t = tokens(16, vocab: 49152)
        let d = maxDiff(try pruned.logits(tokens: t, batch: 1, seqLen: 16), try dense.logits(tokens: t, batch: 1, seqLen: 16))
        #expect(d < 1e-3, "max |Δ| \(d)")
    }
}
