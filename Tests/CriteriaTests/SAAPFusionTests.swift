import Foundation
import Testing
@testable import Criteria
@testable import PruneFramework

@Suite struct SAAPFusionTests {
    func decode(_ json: String) throws -> SAAPFusionCriterion {
        try JSONDecoder().decode(SAAPFusionCriterion.self, from: Data(json.utf8))
    }

    @Test func defaultsAndRecipeErrors() throws {
        let d = try decode("{}")
        #expect(d.criteria == ["vector", "element2"] && d.batches == 4 && d.reduction == "sum")
        #expect(d.inputs == [.weights, .gradients, .fisher])
        #expect(try decode(#"{"criteria": ["vector", "element1"]}"#).inputs == [.weights, .gradients])
        for (json, says) in [(#"{"critera": ["vector"]}"#, "critera"), (#"{"criteria": ["vector", "l2"]}"#, "criteria[1]"),
                             (#"{"criteria": []}"#, "criteria"), (#"{"batches": 1}"#, "batches")] {
            do {
                _ = try decode(json)
                Issue.record("\(json) was accepted")
            } catch let e as PruneError {
                #expect(e.message.contains(says), "\(e.message)")
            }
        }
    }

    /// The estimator whose normalised scores move less across batches gets the larger weight, and
    /// the variance ignores each batch's overall scale.
    @Test func lowerVarianceEstimatorGetsTheLargerWeight() {
        var r = SplitMix64(seed: 3)
        func noisy(_ base: [Double], _ amount: Double, batchScale: Double) -> [Double] {
            base.map { $0 * batchScale * (1 + amount * (Double(r.next() % 1000) / 1000 - 0.5)) }
        }
        let base = (1...50).map { Double($0) }
        let stable = (0..<4).map { b in noisy(base, 0.05, batchScale: Double(b + 1)) }
        let shaky = (0..<4).map { _ in noisy(base, 0.8, batchScale: 1) }
        let vs = SAAPFusionCriterion.normalisedVariance(stable), vn = SAAPFusionCriterion.normalisedVariance(shaky)
        #expect(vs < vn / 10, "σ² stable \(vs), shaky \(vn)")
        let noise = SAAPFusionCriterion.Noise(variances: [vs, vn], scales: [1, 1])
        #expect(noise.weights[0] > noise.weights[1])
        // Scaling a batch leaves σ² unchanged.
        let same = SAAPFusionCriterion.normalisedVariance([base, base.map { $0 * 7 }, base.map { $0 * 0.1 }])
        #expect(same < 1e-20 + 1e-12)
    }

    /// On a tiny model the fused score is Σ Î_i/(2σ_i²) + Σ log σ_i of the Taylor estimators, with
    /// noise from per-batch gradients; a noiseless duplicate set of batches is rejected with a clear error.
    @Test func fusesTaylorEstimatorsOnATinyModel() throws {
        let m = try TaylorCriterionTests.model()
        let seqs = TaylorCriterionTests.sequences()
        let g = try m.gradients(sequences: seqs, fisher: true)
        let ctx = ScoringContext(model: m, statistics: nil, seed: 0, gradients: g, calibration: seqs)
        let c = SAAPFusionCriterion(batches: 3)
        let group = TaylorCriterionTests.downColumns(m)
        let fused = try c.scores(for: group, context: ctx)
        let noise = try c.noise(ctx)
        #expect(noise.variances.count == 2 && noise.variances.allSatisfy { $0 > 0 && $0.isFinite })
        #expect(noise.scales.allSatisfy { $0 > 0 })
        let v = try TaylorCriterion(estimator: "vector").scores(for: group, context: ctx)
        let e = try TaylorCriterion(estimator: "element2").scores(for: group, context: ctx)
        for u in group.units.indices {
            let want = v[u] / noise.scales[0] / (2 * noise.variances[0]) + e[u] / noise.scales[1] / (2 * noise.variances[1])
                + 0.5 * log(noise.variances[0]) + 0.5 * log(noise.variances[1])
            #expect(abs(fused[u] - want) < 1e-9 * max(1, abs(want)))
        }
        // The summed |g·w| of element-wise estimators varies less across batches than the signed sum of vector.
        #expect(noise.weights[1] > noise.weights[0], "weights \(noise.weights)")
        let w = try c.weightScores(of: TensorNames.ffnGate(1), context: ctx)
        #expect(w.count == 12 * 16 && w.allSatisfy(\.isFinite))
        let bare = ScoringContext(model: m, statistics: nil, seed: 0, gradients: g)
        #expect { try c.scores(for: group, context: bare) } throws: { e in
            (e as? PruneError)?.message.contains("calibration sequences") == true
        }
    }
}
