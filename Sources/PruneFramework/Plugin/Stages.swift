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
    /// The diagonal empirical Fisher: the mean of per-sequence squared gradients (one backward pass
    /// per calibration sequence); implies `.gradients`.
    public static let fisher = CriterionInputs(rawValue: 16)
}

/// What a criterion may read while scoring.
public struct ScoringContext: @unchecked Sendable {
    public let model: Transformer
    /// Present when the criterion declared `.activationStatistics`.
    public let statistics: ActivationStatistics?
    public let seed: UInt64
    /// Present when the criterion declared `.gradients` (with the Fisher diagonal for `.fisher`).
    public let gradients: GradientResult?
    /// The run's calibration sequences, for criteria that need more than the collected inputs (e.g.
    /// per-batch gradients); nil when the caller has none.
    public let calibration: [[Int32]]?
    /// Every group of this step, for criteria that score groups jointly (e.g. learned masks); a
    /// criterion takes units and slices from here rather than building its own.
    public let groups: [PruneGroup]
    /// For a `ChannelSumCriterion` scoring structures: the channel sums of its salience over the
    /// groups' tensors, computed block by block in place of `gradients`.
    public let channelSums: ChannelSums?

    public init(model: Transformer, statistics: ActivationStatistics?, seed: UInt64, gradients: GradientResult? = nil,
                calibration: [[Int32]]? = nil, groups: [PruneGroup] = [], channelSums: ChannelSums? = nil) {
        self.model = model
        self.statistics = statistics
        self.seed = seed
        self.gradients = gradients
        self.calibration = calibration
        self.groups = groups
        self.channelSums = channelSums
    }
}

/// Scores units: one finite score per unit of a group, higher = keep.
public protocol Criterion: Plugin {
    /// Inputs the runner collects once before scoring.
    var inputs: CriterionInputs { get }
    /// Calibration sequences per backward pass when the runner computes `.gradients` (bounds memory).
    var gradientMicroBatch: Int { get }
    func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double]
}

extension Criterion {
    public var inputs: CriterionInputs { .weights }
    public var gradientMicroBatch: Int { 4 }
}

/// Finds the coupled structures of a model: what must be removed together.
public protocol Grouping: Plugin {
    func groups(for model: Transformer) throws -> [PruneGroup]
    /// The groups of a model of `config` when they follow from the config alone, so settings can be
    /// checked before the weights are read; nil when they need the weights.
    func groups(for config: ModelConfig) throws -> [PruneGroup]?
}

extension Grouping {
    public func groups(for config: ModelConfig) throws -> [PruneGroup]? { nil }
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
    /// The fraction of all parameters it aims to remove, for the report; nil when it has none.
    var targetRatio: Double? { get }
    /// Every MLP width it cuts is kept at a multiple of this; nil when any width may remain.
    var roundTo: Int? { get }
    /// Chooses the units to remove at this step given every group's scores (one array per group).
    func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan
}

extension Scheduler {
    public var steps: Int { 1 }
    public var targetRatio: Double? { nil }
    public var roundTo: Int? { nil }
}

/// What a fine-tuner may use besides the model.
public struct FineTuneContext: @unchecked Sendable {
    /// The model's tokenizer (to read training text).
    public let tokenizer: BPETokenizer
    /// The run's calibration sequences.
    public let calibration: [[Int32]]
    /// Where `wikitext2`, `ptb` and `c4` resolve (nil: the default data directory).
    public let dataDir: String?
    /// Receives one line per event (for logs that are not a terminal).
    public let log: (String) -> Void
    /// The recipe file's folder, which relative dataset paths in a fine-tuner's keys are relative to
    /// (nil: the working directory).
    public let recipeFolder: String?
    /// Loads the dense model the run started from, again from its file (for distillation); nil
    /// when the run has none.
    public let teacher: (() throws -> Transformer)?
    /// The ranks a data-parallel fine-tuner shares each step's micro-batches with (one process:
    /// `SingleProcess`).
    public let communicator: any Communicator

    public init(tokenizer: BPETokenizer, calibration: [[Int32]], dataDir: String?, recipeFolder: String? = nil,
                teacher: (() throws -> Transformer)? = nil, communicator: any Communicator = SingleProcess(),
                log: @escaping (String) -> Void) {
        self.tokenizer = tokenizer
        self.calibration = calibration
        self.dataDir = dataDir
        self.recipeFolder = recipeFolder
        self.teacher = teacher
        self.communicator = communicator
        self.log = log
    }

    /// A dataset key's value as a path to read: names (`c4`, `wikitext2`, ...) as they are,
    /// relative file paths relative to the recipe's folder.
    public func dataset(_ nameOrPath: String) -> String {
        guard let recipeFolder, !Datasets.isName(nameOrPath) else { return nameOrPath }
        return Recipe.path(nameOrPath, relativeTo: recipeFolder)
    }
}

/// What a fine-tune did: its loss curve and cost.
public struct FineTuneReport: Codable, Sendable {
    /// Mean training loss of each optimiser step.
    public var losses: [Double]
    public var tokens: Int
    public var seconds: Double
    /// Parameters that trained (adapters), before merging.
    public var trainableParameters: Int

    public init(losses: [Double], tokens: Int, seconds: Double, trainableParameters: Int) {
        self.losses = losses
        self.tokens = tokens
        self.seconds = seconds
        self.trainableParameters = trainableParameters
    }

    enum CodingKeys: String, CodingKey {
        case losses, tokens, seconds, trainableParameters = "trainable_parameters"
    }
}

/// Recovers quality after pruning (e.g. a LoRA fine-tune); changes the model's weights in place and
/// leaves no extra tensors behind (adapters are merged).
public protocol FineTuner: Plugin {
    func fineTune(_ model: Transformer, context: FineTuneContext) throws -> FineTuneReport
    /// Sequences and tokens per sequence of one forward/backward pass, for the memory estimate
    /// (`prune validate`); nil when the fine-tuner does not say.
    var passShape: (sequences: Int, seqLen: Int)? { get }
    /// Its distillation settings when it learns from the dense model's logits (the run then holds
    /// the dense model and one pass's teacher logits); nil when it does not.
    var distillation: Distillation? { get }
    /// True when every weight that is zero stays zero (SPP): it runs after mask schedulers, and only
    /// there. False (LoRA) when merging changes every weight: it runs after structure schedulers only.
    var preservesZeros: Bool { get }
    /// True when it shares each step's work over `context.communicator`'s ranks (the report lists
    /// its stage as shared); false when every rank trains alike on all the data.
    var isDataParallel: Bool { get }
}

extension FineTuner {
    public var passShape: (sequences: Int, seqLen: Int)? { nil }
    public var distillation: Distillation? { nil }
    public var preservesZeros: Bool { false }
    public var isDataParallel: Bool { false }
}

/// What a compensator reads besides the model and the plan.
public struct CompensationContext {
    /// The calibration sequences (all of the same length).
    public let calibration: [[Int32]]
    public let log: (String) -> Void
    /// Called with (layers done, layers) as the compensator goes.
    public let progress: (Int, Int) -> Void
    /// The ranks a compensator may share its calibration sequences with (one process: `SingleProcess`).
    public let communicator: any Communicator

    public init(calibration: [[Int32]], communicator: any Communicator = SingleProcess(), log: @escaping (String) -> Void,
                progress: @escaping (Int, Int) -> Void = { _, _ in }) {
        self.calibration = calibration
        self.communicator = communicator
        self.log = log
        self.progress = progress
    }
}

/// Repairs what a structured plan cuts, without training: changes the weights the plan keeps (in
/// place, marking them modified) so the model's outputs change least, before the surgery removes
/// the plan's units. Runs after the scheduler's plan and before `Surgery.apply`.
public protocol Compensator: Plugin {
    /// Compensates `model` for removing `plan`'s units of `groups`; returns a line for the log.
    func compensate(_ model: Transformer, plan: PruningPlan, groups: [PruneGroup], context: CompensationContext) throws -> String
    /// True when it shares its calibration sequences over `context.communicator`'s ranks (the
    /// report lists its stage as shared); false when every rank runs all of them.
    var isDataParallel: Bool { get }
}

extension Compensator {
    public var isDataParallel: Bool { false }
}

/// A criterion that also repairs what the plan it scored removes, without training (FLAP's bias
/// compensation): when `compensates` is true, the runner calls `compensate` after the scheduler's
/// plan and before `Surgery.apply`, with the step's scoring context (its calibration statistics),
/// and cuts the model it returns. Structure schedulers only: the runner refuses it, naming
/// `criterion.<compensationKey>`, next to a `compensator` stage (both would repair the same cut) and
/// with mask schedulers.
public protocol CompensatingCriterion: Criterion {
    /// The recipe key under `criterion` that turns the repair on (for messages).
    static var compensationKey: String { get }
    /// Whether the recipe turned the repair on.
    var compensates: Bool { get }
    /// Repairs `model` for removing `plan`'s units of `groups`; returns the model to cut (`model`
    /// changed in place, marked modified, or a new model, e.g. with tensors added) and a line for the log.
    func compensate(_ model: Transformer, plan: PruningPlan, groups: [PruneGroup],
                    context: ScoringContext) throws -> (model: Transformer, summary: String)
}

/// A criterion that also scores single weights, for mask schedulers (unstructured and N:M sparsity).
public protocol WeightCriterion: Criterion {
    /// One score per element of a linear weight matrix, row-major in the tensor's shape; higher = keep.
    func weightScores(of tensor: String, context: ScoringContext) throws -> [Double]
}

/// A scheduler that zeroes single weights of linear matrices instead of removing structures.
///
/// The runner scores each linear matrix the grouping's structures touch with a `WeightCriterion`,
/// asks `mask` which of its weights go and zeroes them in place (`Masking.apply`): the model keeps
/// its shapes and its parameter count.
public protocol MaskScheduler: Scheduler {
    /// The pattern in words, for reports and logs (e.g. "2:4", "50% unstructured per row").
    var pattern: String { get }
    /// Which weights of one `rows`×`cols` matrix to zero, given row-major `scores` (higher = keep);
    /// returns one flag per weight, true = zero it.
    func mask(scores: [Double], rows: Int, cols: Int) throws -> [Bool]
}

extension MaskScheduler {
    public func plan(groups: [PruneGroup], scores: [[Double]], context: PlanContext) throws -> PruningPlan {
        throw PruneError(.unsupported, "scheduler '\(Self.name)' zeroes single weights and makes no structured plan; mask with `mask(scores:rows:cols:)` and `Masking.apply`")
    }
}
