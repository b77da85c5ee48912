import Foundation
import PruneFramework

extension PruneRun {
    /// Checks `scheduler.roundTo` against the model before any work: no wider than its MLP, and
    /// able to reach the target when every rounded group keeps only N units and every other group
    /// one (when the grouping's groups follow from the config).
    func checkRoundTo(_ config: ModelConfig) throws {
        guard let n = recipe.scheduler.roundTo else { return }
        if let widest = config.ffnDim.max(), n > widest {
            throw PruneError(.outOfRange, "recipe: scheduler.roundTo = '\(n)' exceeds the model's widest MLP (\(widest) channels); choose at most \(widest)")
        }
        guard let ratio = recipe.scheduler.targetRatio, let groups = try recipe.grouping.groups(for: config) else { return }
        var most = PruningPlan(), counts: [String: Int] = [:]
        for g in groups {
            switch g.width {
            case .mlpChannels?, .hiddenChannels?: counts[g.id] = max(0, g.units.count - n)
            default: most.removals[g.id] = Array(1..<max(1, g.units.count))
            }
        }
        let total = PruningPlan.parameters(config)
        guard let reach = most.removedParameters(in: groups, from: config, counts: counts),
              Double(reach) < ratio * Double(total) - 0.02 * Double(total) else { return }
        throw PruneError(.outOfRange, String(format: "recipe: scheduler.roundTo = '%d' cannot meet ratio %.2f: with widths in multiples of %d the grouping's structures hold at most %.2f%% of the parameters; lower roundTo or prune more structures or layers", n, ratio, n, 100 * Double(reach) / Double(total)))
    }
}
