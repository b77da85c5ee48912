import Foundation

/// What a criterion needs the runner to collect before scoring.
public struct CriterionInputs: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// The weights only (always available).
    public static let weights = CriterionInputs(rawValue: 1)
    /// Per-input-column sums and sums of squares of every linear layer's input.
    public static let activationStatistics = CriterionInputs(rawValue: 2)
    /// Samples of MLP intermediate (and attention output) activations.
    public static let activationSamples = CriterionInputs(rawValue: 4)
    /// ∂L/∂W accumulated over calibration batches (and squared, for the Fisher diagonal).
    public static let gradients = CriterionInputs(rawValue: 8)
}

/// What a criterion may read while scoring.
public struct ScoringContext: @unchecked Sendable {
    public let model: Transformer
    /// Present when the criterion declared `.activationStatistics`.
    public let statistics: ActivationStatistics?
    public let seed: UInt64

    public init(model: Transformer, statistics: ActivationStatistics?, seed: UInt64) {
        self.model = model
        self.statistics = statistics
        self.seed = seed
    }
}

/// Scores units: one finite score per unit of a group, higher = keep.
public protocol Criterion: Plugin {
    /// Inputs the runner collects once before scoring.
    var inputs: CriterionInputs { get }
    func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double]
}

extension Criterion {
    public var inputs: CriterionInputs { .weights }
}

/// Finds the coupled structures of a model: what must be removed together.
public protocol Grouping: Plugin {
    func groups(for model: Transformer) throws -> [PruneGroup]
}

/// Where a scheduler is in a run.
public struct PlanContext: @unchecked Sendable {
    public let model: Transformer
    /// 0-based step; the runner re-groups and re-scores the smaller model between steps.
    public let step: Int
    public let steps: Int
    /// Parameters of the model before the first step.
    public let originalParameters: Int

    public init(model: Transformer, step: Int, steps: Int, originalParameters: Int) {
        self.model = model
        self.step = step
        self.steps = steps
        self.originalParameters = originalParameters
    }
}

/// Decides how many units to remove in each group, and in how many steps.
public protocol Scheduler: Plugin {
    /// Pruning steps to reach the target (1 = one shot); the runner re-scores between steps.
    var steps: Int { get }
    /// Chooses the units to remove at this step given every group's scores (one array per group).
    func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan
}

extension Scheduler {
    public var steps: Int { 1 }
}

/// Recovers quality after pruning (e.g. a LoRA fine-tune); changes the model's weights in place.
public protocol FineTuner: Plugin {
    func fineTune(_ model: Transformer, data: [[Int32]], progress: ((String) -> Void)?) throws
}
