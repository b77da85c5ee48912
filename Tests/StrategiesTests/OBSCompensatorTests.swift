import Foundation
import Testing
@testable import PruneFramework
@testable import Strategies

/// The `obs` compensator: the kept columns of the cut layers are updated so their outputs on the
/// calibration tokens change less than by cutting alone.
@Suite struct OBSCompensatorTests {
    /// Captures one layer's block output.
    final class BlockOutput: ForwardObserver {
        let layer: Int
        var values: [Float] = []
        init(layer: Int) { self.layer = layer }
        func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
            if layer == self.layer && site == .blockOutput { values += activations }
        }
    }

    static func blockOutput(_ m: Transformer, layer: Int, _ tokens: [[Int32]]) throws -> [Float] {
        let o = BlockOutput(layer: layer)
        _ = try m.logits(tokens: Array(tokens.joined()), batch: tokens.count, seqLen: tokens[0].count, observer: o)
        return o.values
    }

    /// Cuts KV groups and MLP channels of the last layer (so its inputs are the dense model's) with
    /// and without compensation: the compensated block output is closer to the dense one.
    @Test(arguments: [StructureKind.mlpChannel, .kvGroup])
    func compensationBringsTheCutLayerCloserToTheDenseOne(kind: StructureKind) throws {
        let dense = try tinyModel(seed: 8)
        let calibration = (0..<24).map { tokens(16, vocab: dense.config.vocabSize, seed: UInt64($0)) }
        let groups = try DecoderGrouping(structures: [kind], layers: 2...2).groups(for: dense)
        let plan = PruningPlan(removals: [groups[0].id: [0]])
        let target = try Self.blockOutput(dense, layer: 2, calibration)
        func error(_ compensate: Bool) throws -> Double {
            let m = try tinyModel(seed: 8)
            if compensate {
                _ = try OBSCompensator(damp: 1e-6).compensate(m, plan: plan, groups: groups, context: CompensationContext(calibration: calibration, log: { _ in }))
            }
            let out = try Self.blockOutput(try Surgery.apply(plan, groups: groups, to: m), layer: 2, calibration)
            return zip(out, target).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        }
        let (cut, compensated) = (try error(false), try error(true))
        #expect(cut > 0 && compensated < 0.9 * cut, "squared error \(compensated) compensated, \(cut) cut alone")
    }

    @Test func badSettingsAreRefusedNamingTheKey() throws {
        for damp in ["0", "-0.5"] {
            let e = try #require(throws: PruneError.self) {
                try JSONDecoder().decode(OBSCompensator.self, from: Data(#"{"damp": \#(damp)}"#.utf8))
            }
            #expect(e.message.contains("damp") && e.message.contains("must be > 0"), "\(e.message)")
        }
        let e = try #require(throws: PruneError.self) { try JSONDecoder().decode(OBSCompensator.self, from: Data(#"{"dmp": 1}"#.utf8)) }
        #expect(e.message.contains("dmp"), "\(e.message)")
    }
}
