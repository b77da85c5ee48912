import Foundation
import PruneFramework

/// SAAP's adaptive importance fusion (Zheng et al. 2024, "Adaptive Pruning for Large Language Models
/// with Structural Importance Awareness", arXiv 2412.15127): several Taylor importance estimators
/// (by default LLM-Pruner's coarse `vector` and fine `element2`) are fused with homoscedastic-uncertainty
/// weights, as in multi-task learning (Kendall et al. 2018):
///
///     fused(u) = Σ_i Î_i(u) / (2σ_i²) + log σ_i
///
/// From the paper: the estimators, the homoscedastic-uncertainty form of the fusion.
/// Our interpretation (the paper learns σ_i and does not give the full procedure):
/// - σ_i² is estimated, not learned: the calibration sequences are split into `batches` batches, each
///   gets its own gradients (and Fisher diagonal), and every probe channel (rows of q/k/v/gate/up,
///   columns of o/down in every layer) is scored by estimator i on each batch. Each batch's channel
///   scores are divided by their mean, and σ_i² is the mean over channels of the variance across
///   batches of those normalised scores. A noisier estimator gets a smaller weight 1/(2σ_i²).
/// - Î_i(u) is estimator i's unit score on the full calibration gradients (the runner's), divided by
///   the mean probe-channel score of that estimator on the same gradients, so estimators of different
///   scales add up. The Σ log σ_i term is the same for every unit; it is kept to match the formula.
///
/// Cost: one extra backward pass per calibration sequence (per-batch gradients), computed once per
/// model and cached.
public struct SAAPFusionCriterion: WeightCriterion {
    public static let name = "saap-fusion"
    public static let summary = "SAAP: Taylor estimators fused with homoscedastic-uncertainty weights (noise from batch spread)"
    public static let keys = [
        PluginKey("criteria", "array", default: "[\"vector\",\"element2\"]", allowed: TaylorCriterion.estimators,
                  "Taylor estimators to fuse"),
        PluginKey("batches", "integer", default: "4", "calibration batches whose score spread estimates each estimator's noise"),
        PluginKey("reduction", "string", default: "\"sum\"", allowed: ["sum", "mean", "max", "prod"], "how a unit's slices combine"),
        PluginKey("microBatch", "integer", default: "4", "calibration sequences per backward pass (bounds memory)"),
    ]

    public var criteria = ["vector", "element2"]
    public var batches = 4
    public var reduction = "sum"
    public var microBatch = 4
    public var gradientMicroBatch: Int { microBatch }
    /// Noise estimates per model, so that scoring every group costs one set of per-batch passes.
    let cache = NoiseCache()

    public init(criteria: [String] = ["vector", "element2"], batches: Int = 4, reduction: String = "sum", microBatch: Int = 4) {
        self.criteria = criteria
        self.batches = batches
        self.reduction = reduction
        self.microBatch = microBatch
    }

    enum CodingKeys: String, CodingKey { case criteria, batches, reduction, microBatch }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        criteria = try c.value(.criteria, default: ["vector", "element2"])
        if criteria.isEmpty {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "criteria")) is empty; name at least one of: \(TaylorCriterion.estimators.joined(separator: ", "))")
        }
        for (i, e) in criteria.enumerated() where !TaylorCriterion.estimators.contains(e) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "criteria"))[\(i)] = '\(PruneError.shown(e))' is not allowed; choose from: \(TaylorCriterion.estimators.joined(separator: ", "))")
        }
        batches = try c.integer(.batches, default: 4, in: 2...1024)
        reduction = try c.choice(.reduction, default: "sum", allowed: ["sum", "mean", "max", "prod"])
        microBatch = try c.integer(.microBatch, default: 4, in: 1...1024)
    }

    var estimators: [TaylorCriterion] { criteria.map { TaylorCriterion(estimator: $0, reduction: reduction, microBatch: microBatch) } }
    var needsFisher: Bool { estimators.contains { $0.needsFisher } }

    public var inputs: CriterionInputs { needsFisher ? [.weights, .gradients, .fisher] : [.weights, .gradients] }

    /// Each estimator's noise σ_i², the scale its unit scores are divided by, and its fusion weight.
    public struct Noise: Sendable, Equatable {
        public var variances: [Double]
        public var scales: [Double]
        public var weights: [Double] { variances.map { 1 / (2 * $0) } }
        /// Σ_i log σ_i, the constant term of the fused score.
        public var logSigma: Double { variances.reduce(0) { $0 + 0.5 * log($1) } }
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        let noise = try self.noise(context)
        let parts = try estimators.map { try $0.scores(for: group, context: context) }
        return group.units.indices.map { u in
            var fused = noise.logSigma
            for i in parts.indices { fused += parts[i][u] / noise.scales[i] * noise.weights[i] }
            return fused
        }
    }

    /// Per-weight fused |salience| for mask schedulers, with the same weights and scales.
    public func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] {
        let noise = try self.noise(context)
        let parts = try estimators.map { try $0.weightScores(of: tensor, context: context) }
        guard let n = parts.first?.count else { return [] }
        return (0..<n).map { k in parts.indices.reduce(noise.logSigma) { $0 + parts[$1][k] / noise.scales[$1] * noise.weights[$1] } }
    }

    /// The noise of each estimator on this context's model (computed once per model, then cached).
    public func noise(_ context: ScoringContext) throws -> Noise {
        guard let full = context.gradients else {
            throw PruneError(.invalidArgument, "criterion 'saap-fusion' needs calibration gradients; the runner computed none")
        }
        guard let cal = context.calibration, cal.count >= 2 else {
            throw PruneError(.invalidArgument, "criterion 'saap-fusion' needs at least 2 calibration sequences in the scoring context (got \(context.calibration?.count ?? 0)) to estimate each estimator's noise; raise calibration.samples")
        }
        let key = NoiseCache.Key(model: ObjectIdentifier(context.model), parameters: context.model.parameterCount,
                                 sequences: cal.count, criteria: criteria, batches: batches)
        if let hit = cache.get(key) { return hit }
        let model = context.model
        let probes = Self.probeSlices(model)
        let ests = estimators
        let scales = ests.map { e in
            let v = probes.map { e.sliceValue($0, model: model, grads: full.gradients, fisher: full.fisher) }
            return max(v.reduce(0, +) / Double(max(1, v.count)), .leastNormalMagnitude)
        }
        // perBatch[i][b][c]: estimator i's score of probe channel c on batch b.
        var perBatch = [[[Double]]](repeating: [], count: ests.count)
        let b = min(batches, cal.count)
        for k in 0..<b {
            let part = Array(cal[(k * cal.count / b)..<((k + 1) * cal.count / b)])
            let r = try model.gradients(sequences: part, microBatch: microBatch, fisher: needsFisher)
            for (i, e) in ests.enumerated() {
                perBatch[i].append(probes.map { e.sliceValue($0, model: model, grads: r.gradients, fisher: r.fisher) })
            }
        }
        let noise = Noise(variances: perBatch.map(Self.normalisedVariance), scales: scales)
        cache.set(key, noise)
        return noise
    }

    /// σ²: the mean over channels of the across-batch variance of scores divided by their batch mean.
    /// `scores[b][c]` is channel c's score on batch b; floored at 1e-12 so weights stay finite.
    public static func normalisedVariance(_ scores: [[Double]]) -> Double {
        let b = scores.count
        guard b >= 2, let n = scores.first?.count, n > 0 else { return 1 }
        let normalised = scores.map { row -> [Double] in
            let m = row.reduce(0, +) / Double(row.count)
            return m != 0 ? row.map { $0 / m } : row.map { _ in 0 }
        }
        var total = 0.0
        for c in 0..<n {
            let mean = normalised.reduce(0) { $0 + $1[c] } / Double(b)
            total += normalised.reduce(0) { $0 + ($1[c] - mean) * ($1[c] - mean) } / Double(b - 1)
        }
        return max(total / Double(n), 1e-12)
    }

    /// Single channels every structure is made of: rows of q, k, v, gate, up and columns of o, down.
    static func probeSlices(_ model: Transformer) -> [TensorSlice] {
        var out: [TensorSlice] = []
        for l in 0..<model.config.nLayers {
            let rows = [TensorNames.attnQ(l), TensorNames.attnK(l), TensorNames.attnV(l), TensorNames.ffnGate(l), TensorNames.ffnUp(l)]
            let cols = [TensorNames.attnOutput(l), TensorNames.ffnDown(l)]
            for (names, axis) in [(rows, 0), (cols, 1)] {
                for t in names {
                    guard let e = model.params.entry(t), e.shape.count == 2 else { continue }
                    out += (0..<e.shape[axis]).map { TensorSlice(t, axis: axis, $0..<($0 + 1)) }
                }
            }
        }
        return out
    }
}

/// A thread-safe memo of noise estimates, keyed by the model and settings that produced them.
final class NoiseCache: @unchecked Sendable {
    struct Key: Hashable {
        var model: ObjectIdentifier
        var parameters: Int
        var sequences: Int
        var criteria: [String]
        var batches: Int
    }

    private let lock = NSLock()
    private var entries: [Key: SAAPFusionCriterion.Noise] = [:]

    func get(_ k: Key) -> SAAPFusionCriterion.Noise? { lock.withLock { entries[k] } }
    func set(_ k: Key, _ v: SAAPFusionCriterion.Noise) { lock.withLock { entries = [k: v] } }
}
