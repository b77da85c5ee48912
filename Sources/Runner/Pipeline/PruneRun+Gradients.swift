import Foundation
import PruneFramework

extension PruneRun {
    /// Gradients of the mean calibration NLL (and the Fisher diagonal when asked) for a criterion that
    /// declares them; nil when it does not.
    func gradientsIfNeeded(_ inputs: CriterionInputs, model: Transformer, sequences: [[Int32]], microBatch: Int,
                           suffix: String) throws -> GradientResult? {
        guard inputs.contains(.gradients) || inputs.contains(.fisher) else { return nil }
        let fisher = inputs.contains(.fisher)
        let what = fisher ? "gradients and Fisher diagonal" : "gradients"
        return try timed("\(what) over \(sequences.count) calibration sequences\(suffix)") {
            var bar: ProgressBar?
            let r = try model.gradients(sequences: sequences, microBatch: microBatch, fisher: fisher) { done, total in
                if bar == nil { bar = ProgressBar(total: total, label: "  backward", unit: "seq") }
                bar?.update(done)
            }
            bar?.finish()
            log(String(format: "  calibration NLL %.4f (%d tokens)", r.loss.mean, r.loss.count))
            return r
        }
    }
}
