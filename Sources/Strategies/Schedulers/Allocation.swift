import Foundation
import PruneFramework

/// The pruning target shared by the schedulers: a fraction of all parameters, or of each group's units.
public struct PruneTarget: Codable, Sendable, Equatable {
    /// Fraction of the model's parameters (embeddings included, as LLM-Pruner's #Params) to remove.
    public var ratio: Double?
    /// Fraction of each group's units to remove (LLM-Pruner's per-layer channel ratio).
    public var structureRatio: Double?
    /// Every MLP width and the hidden width the plan cuts are kept at multiples of this
    /// (Torch-Pruning's `round_to`).
    public var roundTo: Int?

    static let keys = [
        PluginKey("ratio", "number", default: "0.2", "fraction of all parameters to remove, in [0, 1)"),
        PluginKey("structureRatio", "number", default: "null", "instead of ratio: fraction of each group's units to remove, in [0, 1)"),
        PluginKey("roundTo", "integer", default: "null", "keep every pruned MLP width (and the hidden width) a multiple of N (32 for Q4_0…Q8_0 rows, 256 for k-quants), 2...65536; KV groups are whole anyway"),
    ]

    enum CodingKeys: String, CodingKey { case ratio, structureRatio, roundTo }

    init(ratio: Double?, structureRatio: Double?, roundTo: Int? = nil) {
        self.ratio = ratio
        self.structureRatio = structureRatio
        self.roundTo = roundTo
    }

    init(from c: KeyedDecodingContainer<AnyCodingKey>) throws {
        let hasRatio = c.contains(AnyCodingKey("ratio")), hasStructure = c.contains(AnyCodingKey("structureRatio"))
        if hasRatio && hasStructure {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath)) sets both 'ratio' and 'structureRatio'; give one")
        }
        structureRatio = hasStructure ? try c.number(AnyCodingKey("structureRatio"), default: 0, in: 0...1, openUpper: true) : nil
        ratio = hasStructure ? nil : try c.number(AnyCodingKey("ratio"), default: 0.2, in: 0...1, openUpper: true)
        if let n: Int = try c.value(AnyCodingKey("roundTo"), default: nil as Int?) {
            guard (2...65536).contains(n) else {
                throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "roundTo")) = '\(n)' is out of range; allowed 2...65536 (null: any width)")
            }
            roundTo = n
        }
    }

    /// Writes `ratio` or `structureRatio`, and `roundTo` when set, into a scheduler's encoding.
    func encode(into c: inout KeyedEncodingContainer<AnyCodingKey>) throws {
        try c.encodeIfPresent(ratio, forKey: AnyCodingKey("ratio"))
        try c.encodeIfPresent(structureRatio, forKey: AnyCodingKey("structureRatio"))
        try c.encodeIfPresent(roundTo, forKey: AnyCodingKey("roundTo"))
    }

    /// Parameters this step should remove: the cumulative target for the step minus what is gone.
    func parametersToRemove(_ ctx: PlanContext) -> Int {
        let r = (ratio ?? 0) * Double(ctx.step + 1) / Double(ctx.steps)
        let gone = ctx.originalParameters - ctx.model.parameterCount
        return max(0, Int((r * Double(ctx.originalParameters)).rounded()) - gone)
    }

    /// Fraction of each group's units to remove at this step (structure-ratio mode).
    func structureFraction(_ ctx: PlanContext) -> Double {
        // Removing f_s of what is left at each step reaches 1 − (1 − r) overall.
        let r = structureRatio ?? 0
        let keepBefore = pow(1 - r, Double(ctx.step) / Double(ctx.steps))
        let keepAfter = pow(1 - r, Double(ctx.step + 1) / Double(ctx.steps))
        return 1 - keepAfter / keepBefore
    }
}

/// A scheduler that aims at a `PruneTarget`: the report reads its ratio and rounding from here.
protocol TargetedScheduler: Scheduler {
    var target: PruneTarget { get }
}

extension TargetedScheduler {
    public var targetRatio: Double? { target.ratio }
    public var roundTo: Int? { target.roundTo }
}

/// Lowest-score units first; ties broken by index so plans are deterministic.
func ascendingOrder(_ scores: [Double]) -> [Int] {
    scores.indices.sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
}

/// Units of a group that may go: all but one for KV groups and MLP channels (a layer keeps ≥ 1),
/// all but one block, all but one hidden channel.
func removable(_ g: PruneGroup) -> Int { max(0, g.units.count - 1) }
