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
            let r = try model.gradients(sequences: sequences, microBatch: microBatch, fisher: fisher, communicator: sharing()) { done, total in
                if bar == nil { bar = ProgressBar(total: total, label: "  backward", unit: "seq") }
                bar?.update(done)
            }
            bar?.finish()
            log(String(format: "  calibration NLL %.4f (%d tokens)", r.loss.mean, r.loss.count))
            return r
        }
    }

    /// The criterion's channel sums over the tensors the groups cut, from the calibration gradient
    /// computed block by block (`Transformer.channelSums`).
    func channelSums(_ criterion: any ChannelSumCriterion, model: Transformer, groups: [PruneGroup], sequences: [[Int32]],
                     suffix: String) throws -> ChannelSums {
        let fisher = criterion.inputs.contains(.fisher)
        let what = fisher ? "gradients and Fisher diagonal" : "gradients"
        let tensors = Set(groups.flatMap { $0.units.flatMap { $0.slices.map(\.tensor) } })
        return try timed("\(what) over \(sequences.count) calibration sequences, block by block\(suffix)") {
            var bar: ProgressBar?
            let r = try model.channelSums(sequences: sequences, microBatch: criterion.gradientMicroBatch, fisher: fisher, tensors: tensors,
                                          absolute: criterion.sumsAbsoluteValues, salience: criterion.salience,
                                          communicator: sharing()) { done, total in
                if bar == nil { bar = ProgressBar(total: total, label: "  backward", unit: "step") }
                bar?.update(done)
            }
            bar?.finish()
            log(String(format: "  calibration NLL %.4f (%d tokens)", r.loss.mean, r.loss.count))
            return r
        }
    }
}
