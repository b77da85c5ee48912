import Foundation
import PruneFramework

/// Policy-gradient mask learning (Gao et al. 2024, "Bypass Back-propagation: Optimization-based
/// Structural Pruning for Large Language Models via Policy Gradient", arXiv 2406.10576).
///
/// Every KV group and MLP channel of the step's groups (`ScoringContext.groups`, limited to `layers`
/// when set) gets a Bernoulli keep-probability s_i. Each
/// step samples K masks m_j ~ Bernoulli(s), measures the calibration NLL L_j of the model with the
/// masked units switched off (forward passes only: no backward pass, no gradient buffer), and takes a
/// normalised score-function step
///
///     s ← s − lr · Σ_j (L_j − δ)(m_j − s)/√(s(1−s)) / (K − 1)
///
/// with δ a moving average of the mean loss (`momentum`), then projects s onto the parameter budget:
/// find v with Σ_i c_i·clamp(s_i − v, 0, 1) = keep, c_i the unit's parameters (DESIGN.md §4 with
/// parameter weights, so a KV group counts as much as the MLP channels it outweighs), and keeps
/// s in [ε, 1 − ε]. The budget is keep = Σ c_i − `ratio` × (all model parameters): set `ratio` to the
/// scheduler's ratio (default 0.2, a 20% run), since a criterion does not see the scheduler.
/// Initialisation (`initialization: "wanda"`): s =
/// sigmoid of the z-scores of Wanda scores within each group, then projected.
///
/// Masks are applied by zeroing, in the forward pass, the masked units' inputs of attn_output (the
/// query heads of a KV group) and of ffn_down (an MLP channel), read from the units' slices: exactly what removing the unit does to
/// the block's output. The zeroing happens in a `ForwardObserver` at the `attnOutputInput` and
/// `mlpIntermediate` sites, which the forward calls before consuming those activations; the weights
/// are never touched, so no packed weights are rebuilt. The K masks run as one batch of K × `batch`
/// sequences. All groups are learned jointly on the first `scores` call for a model and parameter
/// version and cached; each group then gets its slice. Scores are the learned probabilities plus
/// 10⁻⁶ × the initial ones (which breaks ties between units stuck at ε or 1 − ε).
public struct PolicyGradientCriterion: Criterion {
    public static let name = "policy-gradient"
    public static let summary = "learned Bernoulli keep-probabilities per KV group and MLP channel by policy gradient on the calibration NLL, forward passes only (arXiv 2406.10576)"
    public static let keys = [
        PluginKey("ratio", "number", default: "0.2", "fraction of all model parameters the scheduler removes (use the scheduler's ratio); sets the keep budget, in [0, 1)"),
        PluginKey("layers", "array", default: "null", "[first, last] layers learned; null = every layer the grouping prunes"),
        PluginKey("steps", "integer", default: "50", "policy-gradient steps, 1...100000"),
        PluginKey("lr", "number", default: "0.1", "step size of the normalised update, in (0, 100]"),
        PluginKey("masks", "integer", default: "4", "K: masks sampled per step, 2...64"),
        PluginKey("batch", "integer", default: "2", "calibration sequences per step (every mask sees the same ones), 1...256"),
        PluginKey("seqLen", "integer", default: "64", "tokens per sequence (calibration sequences are cut to this), 2...4096"),
        PluginKey("momentum", "number", default: "0.9", "moving-average factor of the loss baseline δ, in [0, 1)"),
        PluginKey("initialization", "string", default: "\"wanda\"", allowed: ["wanda", "uniform"],
                  "wanda: sigmoid of per-group z-scores of Wanda scores; uniform: every unit at the keep fraction"),
    ]

    public var ratio = 0.2
    public var layers: [Int]?
    public var steps = 50
    public var lr = 0.1
    public var masks = 4
    public var batch = 2
    public var seqLen = 64
    public var momentum = 0.9
    public var initialization = "wanda"
    /// Learned probabilities of the last model scored (shared by copies of this value).
    let cache = PolicyGradientCache()
    /// Smallest and largest distance of a probability from 0 and 1.
    static let epsilon = 0.005

    public var inputs: CriterionInputs { initialization == "wanda" ? [.weights, .activationStatistics] : [.weights] }

    public init(ratio: Double = 0.2, layers: ClosedRange<Int>? = nil, steps: Int = 50, lr: Double = 0.1, masks: Int = 4,
                batch: Int = 2, seqLen: Int = 64, momentum: Double = 0.9, initialization: String = "wanda") {
        self.ratio = ratio
        self.layers = layers.map { [$0.lowerBound, $0.upperBound] }
        self.steps = steps
        self.lr = lr
        self.masks = masks
        self.batch = batch
        self.seqLen = seqLen
        self.momentum = momentum
        self.initialization = initialization
    }

    enum CodingKeys: String, CodingKey { case ratio, layers, steps, lr, masks, batch, seqLen, momentum, initialization }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ratio = try c.number(.ratio, default: 0.2, in: 0...1, openUpper: true)
        layers = try c.value(.layers, default: nil as [Int]?)
        if let l = layers, l.count != 2 || l[0] < 0 || l[1] < l[0] {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "layers")) = '\(PruneError.shown("\(l)"))' must be [first, last] with 0 ≤ first ≤ last")
        }
        steps = try c.integer(.steps, default: 50, in: 1...100_000)
        lr = try c.number(.lr, default: 0.1, in: 0...100)
        if lr == 0 { throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "lr")) = '0' is out of range; the step size must be > 0") }
        masks = try c.integer(.masks, default: 4, in: 2...64)
        batch = try c.integer(.batch, default: 2, in: 1...256)
        seqLen = try c.integer(.seqLen, default: 64, in: 2...4096)
        momentum = try c.number(.momentum, default: 0.9, in: 0...1, openUpper: true)
        initialization = try c.choice(.initialization, default: "wanda", allowed: ["wanda", "uniform"])
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        guard group.kind == .kvGroup || group.kind == .mlpChannel else {
            throw PruneError(.unsupported, "criterion 'policy-gradient' learns kv-groups and mlp-channels; group '\(group.id)' is '\(group.kind.rawValue)'")
        }
        cache.lock.lock()
        defer { cache.lock.unlock() }
        if cache.model !== context.model || cache.version != context.model.params.version {
            let (scores, losses) = try learn(context)
            cache.model = context.model
            cache.version = context.model.params.version
            cache.scores = scores
            cache.losses = losses
            cache.runs += 1
        }
        guard let s = cache.scores[group.id], s.count == group.units.count else {
            throw PruneError(.invalidArgument, "criterion 'policy-gradient': group '\(group.id)' with \(group.units.count) units was not learned; the criterion's layers (\(layers.map { "\($0)" } ?? "all")) must include the grouping's layers")
        }
        return s
    }

    /// Learns the step's KV groups and MLP channels jointly; returns scores by group id and the
    /// mean loss of each step.
    func learn(_ context: ScoringContext) throws -> ([String: [Double]], [Double]) {
        let model = context.model
        guard let sequences = context.calibration, let first = sequences.first, first.count >= 2,
              sequences.allSatisfy({ $0.count == first.count }) else {
            throw PruneError(.invalidArgument, "criterion 'policy-gradient' needs the run's calibration sequences (of one length ≥ 2); the scoring context has none")
        }
        let groups = try learnedGroups(context)
        var segments: [String: Range<Int>] = [:], costs: [Double] = [], initial: [Double] = []
        for g in groups {
            segments[g.id] = costs.count..<(costs.count + g.units.count)
            costs += g.units.map { Double($0.parameterCount) }
            initial += initialization == "wanda" ? Self.sigmoidOfZScores(try WandaCriterion().scores(for: g, context: context))
                                                 : [Double](repeating: 0.5, count: g.units.count)
        }
        let keep = costs.reduce(0, +) - ratio * Double(model.parameterCount)
        guard keep > 0 else {
            throw PruneError(.outOfRange, "criterion 'policy-gradient': ratio = '\(ratio)' removes \(Int(ratio * Double(model.parameterCount))) parameters, more than the \(Int(costs.reduce(0, +))) of the \(groups.count) learned groups' units; lower the ratio or learn more layers")
        }
        let masker = try UnitMaskObserver(groups: groups)
        let T = min(seqLen, first.count)
        var pick = SplitMix64(seed: context.seed ^ 0x5047_5052_554E_4531)
        let bar = ProgressBar(total: steps, label: "  policy-gradient", unit: "step")
        let (learned, losses) = try Self.optimize(initial: initial, costs: costs, keep: keep, steps: steps, masks: masks, lr: lr,
                                                  momentum: momentum, seed: context.seed,
                                                  progress: { bar.update($0, note: String(format: "loss %.4f", $1)) }) { ms in
            let chosen = (0..<batch).map { _ in sequences[Int(pick.next() % UInt64(sequences.count))].prefix(T) }
            let tokens = Array(ms.indices.map { _ in chosen.joined() }.joined())
            masker.masks = ms
            masker.rowsPerMask = batch * T
            let r = try model.nll(tokens: tokens, batch: ms.count * batch, seqLen: T, observer: masker)
            let per = batch * (T - 1)
            return (0..<ms.count).map { j in r.perToken[(j * per)..<((j + 1) * per)].reduce(0.0) { $0 + Double($1) } / Double(per) }
        }
        bar.finish()
        var out: [String: [Double]] = [:]
        for (id, seg) in segments { out[id] = seg.map { learned[$0] + 1e-6 * initial[$0] } }
        return (out, losses)
    }

    /// The step's KV-group and MLP-channel groups in the criterion's layers (all when `layers` is null).
    func learnedGroups(_ context: ScoringContext) throws -> [PruneGroup] {
        let n = context.model.config.nLayers
        if let l = layers, l[1] >= n {
            throw PruneError(.outOfRange, "criterion 'policy-gradient': layers = '[\(l[0]), \(l[1])]' exceed the model's \(n) layers (0...\(n - 1)); set the last layer to at most \(n - 1)")
        }
        let groups = context.groups.filter { g in
            guard g.kind == .kvGroup || g.kind == .mlpChannel, let gl = g.layer else { return false }
            return layers.map { $0[0] <= gl && gl <= $0[1] } ?? true
        }
        guard !groups.isEmpty else {
            throw PruneError(.invalidArgument, "criterion 'policy-gradient' found no kv-groups or mlp-channels among the step's \(context.groups.count) groups\(layers.map { " in layers \($0)" } ?? ""); choose those structures in the grouping")
        }
        // Layer by layer, KV groups before MLP channels: the order the masks are sampled in.
        return groups.sorted { a, b in (a.layer ?? 0, a.kind == .kvGroup ? 0 : 1) < (b.layer ?? 0, b.kind == .kvGroup ? 0 : 1) }
    }

    /// The policy-gradient loop on any loss of K masks (one loss per mask, lower = better); returns the
    /// learned probabilities and the mean loss of every step.
    ///
    /// - initial: starting keep-probabilities, one per unit (projected before the first step)
    /// - costs: parameters of each unit; keep: the parameter budget Σ c_i s_i of the kept units
    static func optimize(initial: [Double], costs: [Double], keep: Double, steps: Int, masks K: Int, lr: Double,
                         momentum: Double, seed: UInt64, progress: (Int, Double) -> Void = { _, _ in },
                         loss: ([[Bool]]) throws -> [Double]) throws -> ([Double], [Double]) {
        precondition(initial.count == costs.count && K >= 2, "optimize: one cost per unit and K ≥ 2")
        var s = project(initial, costs: costs, keep: keep)
        var rng = SplitMix64(seed: seed)
        var baseline: Double?
        var history: [Double] = []
        for step in 0..<steps {
            let ms = (0..<K).map { _ in s.map { Double(rng.next() >> 11) / Double(1 << 53) < $0 } }
            let L = try loss(ms)
            guard L.count == K, L.allSatisfy(\.isFinite) else {
                throw PruneError(.badFormat, "criterion 'policy-gradient': step \(step + 1) gave \(L.count) losses for \(K) masks, or a non-finite loss")
            }
            let mean = L.reduce(0, +) / Double(K)
            let delta = baseline ?? mean
            for i in s.indices {
                let norm = (s[i] * (1 - s[i])).squareRoot()
                var g = 0.0
                for j in 0..<K { g += (L[j] - delta) * ((ms[j][i] ? 1 : 0) - s[i]) }
                s[i] -= lr * g / norm / Double(K - 1)
            }
            s = project(s, costs: costs, keep: keep)
            baseline = momentum * delta + (1 - momentum) * mean
            history.append(mean)
            progress(step + 1, mean)
        }
        return (s, history)
    }

    /// Projects onto the budget: s_i ← clamp(s_i − v, 0, 1) with v such that Σ c_i s_i = keep
    /// (bisection), then into [ε, 1 − ε].
    static func project(_ s: [Double], costs: [Double], keep: Double) -> [Double] {
        let target = min(max(keep, 0), costs.reduce(0, +))
        func kept(_ v: Double) -> Double {
            var t = 0.0
            for (x, c) in zip(s, costs) { t += c * min(1, max(0, x - v)) }
            return t
        }
        var lo = (s.min() ?? 0) - 1, hi = s.max() ?? 0  // kept(lo) = Σc ≥ target ≥ 0 = kept(hi)
        for _ in 0..<60 {
            let mid = (lo + hi) / 2
            if kept(mid) > target { lo = mid } else { hi = mid }
        }
        let v = (lo + hi) / 2
        return s.map { min(1 - epsilon, max(epsilon, $0 - v)) }
    }

    /// sigmoid((x − mean)/std) of a group's scores (0.5 everywhere when they are all equal).
    static func sigmoidOfZScores(_ x: [Double]) -> [Double] {
        let m = x.reduce(0, +) / Double(max(x.count, 1))
        let sd = (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(x.count, 1))).squareRoot()
        return x.map { 1 / (1 + exp(-(sd > 0 ? ($0 - m) / sd : 0))) }
    }
}

/// What `PolicyGradientCriterion` learned for one model and parameter version.
final class PolicyGradientCache: @unchecked Sendable {
    let lock = NSLock()
    weak var model: Transformer?
    var version = -1
    var scores: [String: [Double]] = [:]
    /// Mean calibration NLL of the sampled masks at each step.
    var losses: [Double] = []
    /// How many times the probabilities were learned (once per model and parameter version).
    var runs = 0
}

/// Switches units off in a forward pass: zeroes, for the rows of mask j, the input columns of
/// attn_output and ffn_down that j's masked units own (the axis-1 slices of those tensors in each
/// unit), which is what removing the unit does to the block's output.
final class UnitMaskObserver: ForwardObserver {
    /// Per layer and site, each unit's index in the flat mask and the input columns it owns.
    let columns: [Int: [ActivationSite: [(unit: Int, ranges: [Range<Int>])]]]
    /// K masks over all units; token rows [j·rowsPerMask, (j+1)·rowsPerMask) use mask j.
    var masks: [[Bool]] = []
    var rowsPerMask = 1

    /// Units are numbered in group order; throws when a unit owns no attn_output or ffn_down input column.
    init(groups: [PruneGroup]) throws {
        var columns: [Int: [ActivationSite: [(unit: Int, ranges: [Range<Int>])]]] = [:]
        var i = 0
        for g in groups {
            for (k, u) in g.units.enumerated() {
                var owned = false
                for s in u.slices where s.axis == 1 {
                    guard let (l, site) = ActivationStatistics.inputSite(of: s.tensor),
                          site == .attnOutputInput || site == .mlpIntermediate else { continue }
                    columns[l, default: [:]][site, default: []].append((i, [s.range]))
                    owned = true
                }
                guard owned else {
                    throw PruneError(.unsupported, "criterion 'policy-gradient': unit \(k) of group '\(g.id)' owns no input column of attn_output or ffn_down, so it cannot be switched off in a forward pass")
                }
                i += 1
            }
        }
        self.columns = columns
    }

    func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        guard !masks.isEmpty, let units = columns[layer]?[site], let base = activations.baseAddress else { return }
        // The forward owns this buffer and reads it only after the observer returns.
        let p = UnsafeMutablePointer(mutating: base)
        for j in masks.indices {
            let off = units.filter { !masks[j][$0.unit] }.flatMap(\.ranges).filter { $0.upperBound <= cols }
            guard !off.isEmpty else { continue }
            for r in (j * rowsPerMask)..<min(rows, (j + 1) * rowsPerMask) {
                let row = p + r * cols
                for range in off { (row + range.lowerBound).update(repeating: 0, count: range.count) }
            }
        }
    }
}
