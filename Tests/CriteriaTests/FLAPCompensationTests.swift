import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

/// FLAP's bias compensation (`compensate`): the removed channels' mean contribution moves into the
/// output projections' biases, so each compensated projection's mean output over the calibration
/// tokens is the dense model's.
@Suite struct FLAPCompensationTests {
    /// Three layers, 6 query heads over 3 KV groups of head_dim 4, hidden 16, MLP 20/24/28.
    static func tinyModel() throws -> Transformer {
        let c = ModelConfig(vocabSize: 41, hiddenSize: 16, nLayers: 3, headDim: 4, nHead: [6, 6, 6], nKVHead: [3, 3, 3],
                            ffnDim: [20, 24, 28], contextLength: 64)
        return try Transformer(randomWith: c, seed: 21, scale: 0.3)
    }

    static let calibration: [[Int32]] = (0..<8).map { s in
        var r = SplitMix64(seed: UInt64(s))
        return (0..<12).map { _ in Int32(r.next() % 41) }
    }

    /// The rows one layer's site shows during a forward.
    final class Rows: ForwardObserver {
        let layer: Int, site: ActivationSite
        var rows: [[Float]] = []
        init(layer: Int, site: ActivationSite) { (self.layer, self.site) = (layer, site) }
        func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
            guard layer == self.layer, site == self.site else { return }
            for r in 0..<rows { self.rows.append(Array(activations[(r * cols)..<((r + 1) * cols)])) }
        }
    }

    static func rows(_ m: Transformer, layer: Int, site: ActivationSite) throws -> [[Float]] {
        let o = Rows(layer: layer, site: site)
        _ = try m.hiddenStates(tokens: Array(calibration.joined()), batch: calibration.count, seqLen: 12, observer: o)
        return o.rows
    }

    /// Mean over the calibration tokens of the projection's output W·x (+ b), in Double, from the
    /// inputs it sees in `m`'s forward.
    static func meanOutput(_ m: Transformer, _ role: TensorRole, layer l: Int) throws -> [Double] {
        let x = try rows(m, layer: l, site: role == .attnOutput ? .attnOutputInput : .mlpIntermediate)
        let k = x[0].count, mean = (0..<k).map { j in x.reduce(0.0) { $0 + Double($1[j]) } / Double(x.count) }
        let w = m.params.view(TensorNames.name(role, l)), D = m.config.hiddenSize
        let b = m.config.outputBias ? Array(m.params.view(TensorNames.name(role.outputBias!, l))) : [Float](repeating: 0, count: D)
        return (0..<D).map { r in (0..<k).reduce(Double(b[r])) { $0 + Double(w[r * k + $1]) * mean[$1] } }
    }

    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).map { abs($0 - $1) }.max()! / max(b.map(abs).max()!, 1e-12)
    }

    /// KV groups and MLP channels of the last layer (whose inputs are the dense model's): compensated,
    /// the cut projection's mean output equals the dense one to 1e-5 of its scale; without, it does not.
    @Test(arguments: [StructureKind.kvGroup, .mlpChannel])
    func compensatedProjectionsKeepTheirMeanOutput(kind: StructureKind) throws {
        let dense = try Self.tinyModel()
        let group = kind == .kvGroup ? DecoderStructures.kvGroups(dense.config, layer: 2) : DecoderStructures.mlpChannels(dense.config, layer: 2)
        let plan = PruningPlan(removals: [group.id: kind == .kvGroup ? [1] : [0, 5, 6, 19, 27]])
        let role = kind == .kvGroup ? TensorRole.attnOutput : .ffnDown
        let want = try Self.meanOutput(dense, role, layer: 2)
        let stats = try Calibration.statistics(model: dense, sequences: Self.calibration)
        let ctx = ScoringContext(model: dense, statistics: stats, seed: 0, calibration: Self.calibration, groups: [group])
        for compensate in [true, false] {
            let m = try Self.tinyModel()
            let cut = compensate ? try FLAPCriterion().compensate(m, plan: plan, groups: [group], context: ctx).model : m
            let pruned = try Surgery.apply(plan, groups: [group], to: cut)
            #expect(pruned.config.outputBias == compensate)
            let err = Self.relativeError(try Self.meanOutput(pruned, role, layer: 2), want)
            if compensate {
                #expect(err < 1e-5, "\(kind) compensated: relative error \(err)")
            } else {
                #expect(err > 1e-3, "\(kind) cut alone: relative error \(err)")
            }
            // The forward adds the bias: with the MLP cut, the block's mean output (x_mid + down + b) is kept too.
            if kind == .mlpChannel {
                let a = try Self.rows(pruned, layer: 2, site: .blockOutput), b = try Self.rows(dense, layer: 2, site: .blockOutput)
                let mean = { (x: [[Float]]) in (0..<16).map { j in x.reduce(0.0) { $0 + Double($1[j]) } / Double(x.count) } }
                let blockErr = Self.relativeError(mean(a), mean(b))
                #expect(compensate ? blockErr < 1e-5 : blockErr > 1e-3, "block output, compensate \(compensate): \(blockErr)")
            }
        }
    }

    /// bias += W[:, removed] · mean[removed], on hand-set weights and statistics.
    @Test func theBiasIsTheRemovedColumnsTimesTheirMeans() throws {
        let c = ModelConfig(vocabSize: 8, hiddenSize: 2, nLayers: 1, headDim: 1, nHead: [2], nKVHead: [2], ffnDim: [3], contextLength: 8)
        let m = try Transformer(randomWith: c, seed: 1)
        // ffn_down columns [1,0] [0,0] [-2,1]; attn_output columns [1,1] [3,0].
        for (i, v) in [1, 0, -2, 0, 0, 1].enumerated() { m.params.view(TensorNames.ffnDown(0))[i] = Float(v) }
        for (i, v) in [1, 3, 1, 0].enumerated() { m.params.view(TensorNames.attnOutput(0))[i] = Float(v) }
        let stats = ActivationStatistics()
        // MLP means [2, 5, 2]; head means [1, 1].
        let mid: [Float] = [1, 5, 0, 3, 5, 4], heads: [Float] = [0, 1, 2, 1]
        mid.withUnsafeBufferPointer { stats.observe(layer: 0, site: .mlpIntermediate, activations: $0, rows: 2, cols: 3) }
        heads.withUnsafeBufferPointer { stats.observe(layer: 0, site: .attnOutputInput, activations: $0, rows: 2, cols: 2) }
        let removed = [TensorNames.ffnDown(0): Set([0, 2]), TensorNames.attnOutput(0): Set([1])]
        let r = try BiasCompensation.apply(to: m, removing: removed, statistics: stats)
        // 2·[1,0] + 2·[-2,1] = [-2, 2];  1·[3,0] = [3, 0].
        #expect(Array(r.model.params.view("blk.0.ffn_down.bias")) == [-2, 2])
        #expect(Array(r.model.params.view("blk.0.attn_output.bias")) == [3, 0])
        #expect(r.summary.contains("1 removed attn_output columns in 1 layers and 2 removed ffn_down columns in 1 layers"), "\(r.summary)")
        // A model that has the biases (a later step of an iterative run) gets the new means added to them.
        let again = try BiasCompensation.apply(to: r.model, removing: removed, statistics: stats)
        #expect(again.model === r.model && Array(r.model.params.view("blk.0.ffn_down.bias")) == [-4, 4])
        // A plan that removes no attn_output/ffn_down column (hidden channels, blocks) adds no bias.
        let none = try BiasCompensation.apply(to: m, removing: [:], statistics: stats)
        #expect(none.model === m && !m.config.outputBias && none.summary.contains("no bias added"))
        // Statistics of another model are named.
        let e = try #require(throws: PruneError.self) {
            try BiasCompensation.apply(to: m, removing: [TensorNames.ffnDown(0): [0]], statistics: ActivationStatistics())
        }
        #expect(e.message.contains("no calibration statistics for the input of 'blk.0.ffn_down.weight'"), "\(e.message)")
    }

    @Test func compensateIsABooleanThatDefaultsToTrue() throws {
        #expect(try JSONDecoder().decode(FLAPCriterion.self, from: Data("{}".utf8)).compensates)
        #expect(try !JSONDecoder().decode(FLAPCriterion.self, from: Data(#"{"compensate": false}"#.utf8)).compensates)
        let e = try #require(throws: PruneError.self) { try JSONDecoder().decode(FLAPCriterion.self, from: Data(#"{"compensate": 1}"#.utf8)) }
        #expect(e.message.contains("compensate must be true or false"), "\(e.message)")
        #expect(FLAPCriterion.keys.contains { $0.name == "compensate" && $0.type == "boolean" && $0.defaultValue == "true" })
    }
}
