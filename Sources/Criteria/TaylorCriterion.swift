import PruneFramework

/// Taylor importance as in LLM-Pruner (Ma et al. 2023, "LLM-Pruner: On the Structural Pruning of Large
/// Language Models"): the loss change a unit's removal would cause, from the first- and second-order
/// terms of the loss's Taylor expansion around the weights, with g = ∂L/∂W of the mean calibration
/// NLL and F the diagonal empirical Fisher (mean over calibration sequences of g², a Hessian proxy).
///
/// Per channel c of a slice (a row of an output slice, a column of an input slice, one entry of a
/// norm) with salience s(w) over its weights:
/// - `vector`: |Σ_c g·w| (LLM-Pruner's `vectorize`)
/// - `element1`: Σ_c |g·w| (`param_first`)
/// - `element2`: Σ_c |g·w − ½·F·w²| (the paper's element-wise second-order estimate; `param_mix` in
///   LLM-Pruner's code, so `mix` is accepted as its name there)
/// - `second`: Σ_c |½·F·w²|, the second-order term alone (`param_second`)
///
/// A slice's value is the sum over its channels (a KV group's q/k/v rows and o columns), and a unit's
/// score reduces its slices with `reduction` (sum, mean, max, prod), as LLM-Pruner's group reduction.
/// The Fisher costs one backward pass per calibration sequence, so only `element2`, `mix` and
/// `second` ask for it.
public struct TaylorCriterion: WeightCriterion, ChannelSumCriterion {
    public static let name = "taylor"
    public static let summary = "LLM-Pruner's first/second-order Taylor importance from calibration gradients"
    public static let estimators = ["vector", "element1", "element2", "mix", "second"]
    public static let keys = [
        PluginKey("estimator", "string", default: "\"vector\"", allowed: estimators,
                  "vector |Σg·W|, element1 Σ|g·W|, element2/mix Σ|g·W − ½F·W²|, second Σ|½F·W²|"),
        PluginKey("reduction", "string", default: "\"sum\"", allowed: ["sum", "mean", "max", "prod"], "how slices combine"),
        PluginKey("microBatch", "integer", default: "4", "calibration sequences per backward pass (bounds memory)"),
    ]

    public var estimator = "vector"
    public var reduction = "sum"
    public var microBatch = 4
    public var gradientMicroBatch: Int { microBatch }

    public init(estimator: String = "vector", reduction: String = "sum", microBatch: Int = 4) {
        self.estimator = estimator
        self.reduction = reduction
        self.microBatch = microBatch
    }

    enum CodingKeys: String, CodingKey { case estimator, reduction, microBatch }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        estimator = try c.choice(.estimator, default: "vector", allowed: Self.estimators)
        reduction = try c.choice(.reduction, default: "sum", allowed: ["sum", "mean", "max", "prod"])
        microBatch = try c.decodeIfPresent(Int.self, forKey: .microBatch) ?? 4
        guard (1...1024).contains(microBatch) else {
            throw PruneError(.outOfRange, "criterion.microBatch = '\(microBatch)' is outside 1...1024; choose a micro-batch of 1 to 1024 sequences")
        }
    }

    var needsFisher: Bool { ["element2", "mix", "second"].contains(estimator) }

    public var inputs: CriterionInputs { needsFisher ? [.weights, .gradients, .fisher] : [.weights, .gradients] }

    /// Element-wise estimators sum |salience| per channel; `vector` sums the salience.
    public var sumsAbsoluteValues: Bool { estimator != "vector" }

    /// The per-weight salience whose channel sums (vector) or absolute values (element-wise) score units.
    public func salience(_ w: Float, _ g: Float, _ f: Float) -> Double {
        let w = Double(w), g = Double(g), f = Double(f)
        switch estimator {
        case "element2", "mix": return g * w - 0.5 * f * w * w
        case "second": return 0.5 * f * w * w
        default: return g * w
        }
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        if let sums = context.channelSums {
            return group.units.map { u in SliceMath.reduce(u.slices.map(sums.value(of:)), reduction) }
        }
        let (grads, fisher) = try inputs(context)
        let model = context.model
        return group.units.map { u in
            SliceMath.reduce(u.slices.map { s in sliceValue(s, model: model, grads: grads, fisher: fisher) }, reduction)
        }
    }

    /// Σ over the slice's channels of the channel's importance.
    func sliceValue(_ s: TensorSlice, model: Transformer, grads: ParameterStore, fisher: ParameterStore?) -> Double {
        guard let e = model.params.entry(s.tensor), grads.contains(s.tensor) else { return 0 }
        let w = model.params.pointer(s.tensor), g = grads.pointer(s.tensor)
        let f = fisher.map { $0.pointer(s.tensor) }
        let width = e.shape.count == 2 ? e.shape[1] : 1
        let vector = estimator == "vector"
        // One channel: the elements at `indices`; vector sums the salience first, the others sum |salience|.
        func channel(_ indices: some Sequence<Int>) -> Double {
            var acc = 0.0
            for i in indices {
                let v = salience(w[i], g[i], f?[i] ?? 0)
                acc += vector ? v : abs(v)
            }
            return vector ? abs(acc) : acc
        }
        var total = 0.0
        if s.axis == 0 {
            for r in s.range { total += channel((r * width)..<((r + 1) * width)) }
        } else {
            for c in s.range { total += channel(stride(from: c, to: e.shape[0] * width, by: width)) }
        }
        return total
    }

    /// Per-weight |salience| for mask schedulers (vector and element1 agree on a single weight).
    public func weightScores(of tensor: String, context: ScoringContext) throws -> [Double] {
        let (grads, fisher) = try inputs(context)
        guard grads.contains(tensor) else {
            throw PruneError(.invalidArgument, "criterion 'taylor': no gradient for '\(tensor)'")
        }
        let g = grads.pointer(tensor), f = fisher?.pointer(tensor)
        var i = 0
        return try Masking.scores(of: tensor, in: context.model) { w, _ in
            defer { i += 1 }
            return abs(salience(w, g[i], f?[i] ?? 0))
        }
    }

    func inputs(_ context: ScoringContext) throws -> (ParameterStore, ParameterStore?) {
        guard let r = context.gradients else {
            throw PruneError(.invalidArgument, "criterion 'taylor' needs calibration gradients; the runner computed none")
        }
        if needsFisher && r.fisher == nil {
            throw PruneError(.invalidArgument, "criterion 'taylor' with estimator '\(estimator)' needs the Fisher diagonal; the runner computed none")
        }
        return (r.gradients, r.fisher)
    }
}
