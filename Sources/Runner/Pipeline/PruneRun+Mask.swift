import Foundation
import PruneFramework

/// What mask mode did: the pattern and the fraction of zeros in every masked matrix.
public struct MaskSummary: Encodable, Sendable {
    public struct Matrix: Codable, Sendable {
        public var tensor: String
        public var weights: Int
        public var zeros: Int
    }

    public var pattern: String
    public var criterion: String
    public var matrices: [Matrix]
    /// The model's parameter count, the same before and after: masking keeps every shape.
    public var parameters: Int

    public var weights: Int { matrices.reduce(0) { $0 + $1.weights } }
    public var zeros: Int { matrices.reduce(0) { $0 + $1.zeros } }
    /// Fraction of zeros over all masked matrices.
    public var sparsity: Double { weights == 0 ? 0 : Double(zeros) / Double(weights) }

    enum CodingKeys: String, CodingKey { case pattern, criterion, matrices, parameters, weights, zeros, sparsity }

    public init(pattern: String, criterion: String, matrices: [Matrix], parameters: Int) {
        self.pattern = pattern
        self.criterion = criterion
        self.matrices = matrices
        self.parameters = parameters
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pattern, forKey: .pattern)
        try c.encode(criterion, forKey: .criterion)
        try c.encode(matrices, forKey: .matrices)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(weights, forKey: .weights)
        try c.encode(zeros, forKey: .zeros)
        try c.encode(sparsity, forKey: .sparsity)
    }

    /// Fraction of zeros per decoder layer in its attention (q, k, v, output) and MLP (gate, up, down) matrices.
    var perLayer: [(layer: Int, attention: Double?, mlp: Double?)] {
        var acc: [Int: [(zeros: Int, weights: Int)]] = [:]  // layer → [attention, mlp]
        for m in matrices {
            guard let (l, site) = ActivationStatistics.inputSite(of: m.tensor) else { continue }
            let i = site == .mlpInput || site == .mlpIntermediate ? 1 : 0
            var a = acc[l] ?? [(0, 0), (0, 0)]
            a[i].zeros += m.zeros
            a[i].weights += m.weights
            acc[l] = a
        }
        func f(_ x: (zeros: Int, weights: Int)) -> Double? { x.weights == 0 ? nil : Double(x.zeros) / Double(x.weights) }
        return acc.sorted { $0.key < $1.key }.map { l, a in (l, f(a[0]), f(a[1])) }
    }

    /// The report's mask-mode section (Markdown).
    var markdown: String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.2f%%", $0 * 100) } ?? "–" }
        var s = "## Weight sparsity (mask mode)\n\n"
        s += "Pattern \(pattern), scores from '\(criterion)': \(zeros) of \(weights) weights in \(matrices.count) linear matrices are zero "
        s += "(sparsity \(pct(sparsity))). The parameter count is unchanged (\(parameters)): mask mode keeps every tensor's shape "
        s += "and the exported model stores the zeros. llama.cpp multiplies stored zeros like any other weight, so this model is "
        s += "neither smaller nor faster there: mask mode is a research tool for comparing criteria; prune structures to deploy.\n\n| layer | attention zeros | MLP zeros |\n|---:|---:|---:|\n"
        for r in perLayer { s += "| \(r.layer) | \(pct(r.attention)) | \(pct(r.mlp)) |\n" }
        return s + "\n"
    }

    /// Fraction of zeros per layer, as grouped bars.
    var chart: String {
        let rows = perLayer
        return SVGChart.groupedBars(
            title: "Weight sparsity per layer (\(pattern), \(String(format: "%.2f%%", sparsity * 100)) of masked weights)",
            categories: rows.map { String($0.layer) },
            series: [("attention", rows.map { $0.attention ?? 0 }), ("MLP", rows.map { $0.mlp ?? 0 })],
            yLabel: "fraction of zeros", xLabel: "layer", yMax: 1)
    }
}

/// A run report with the mask-mode section added (report.json's `weight_sparsity`).
struct MaskedRunReport: Encodable {
    let report: RunReport
    let sparsity: MaskSummary?

    func encode(to encoder: Encoder) throws {
        try report.encode(to: encoder)
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encodeIfPresent(sparsity, forKey: AnyCodingKey("weight_sparsity"))
    }

    /// report.md: the mask section goes before the removed-parameters line, which reads 0% in mask mode.
    var markdown: String {
        let md = report.markdown
        guard let sparsity else { return md }
        guard let r = md.range(of: "\nRemoved ") else { return md + "\n" + sparsity.markdown }
        return String(md[..<r.lowerBound]) + "\n" + sparsity.markdown + String(md[md.index(after: r.lowerBound)...])
    }
}

extension PruneRun {
    /// The recipe's mask scheduler and weight criterion; nil when the scheduler removes structures.
    /// Throws when a mask scheduler comes with a criterion that cannot score single weights, or with a
    /// stage that repairs or refills structures (a compensating criterion, a compensator, a fine-tuner).
    @discardableResult
    func maskMode() throws -> (masker: any MaskScheduler, criterion: any WeightCriterion)? {
        guard let masker = recipe.scheduler as? any MaskScheduler else {
            if let ft = recipe.fineTuner, ft.preservesZeros {
                throw PruneError(.unsupported, "recipe: fineTuner.type = '\(type(of: ft).name)' keeps the zeros of single weights, which only a mask scheduler (unstructured, n:m) makes; scheduler '\(type(of: recipe.scheduler).name)' removes whole structures: use fineTuner 'lora' or 'saap-group' after it")
            }
            return nil
        }
        let key = criterionCompensationKey
        guard let criterion = recipe.criterion as? any WeightCriterion else {
            throw PruneError(.invalidArgument, "recipe: criterion.type = '\(type(of: recipe.criterion).name)' scores structures only, but scheduler '\(type(of: masker).name)' zeroes single weights; use a criterion that scores weights (built-in: magnitude, random, wanda)\(key.map { "; its criterion.\($0) = true also repairs removed structures, which a mask leaves none of" } ?? "")")
        }
        if let key {
            throw PruneError(.unsupported, "recipe: criterion.\(key) = true repairs the structures a plan removes, but scheduler '\(type(of: masker).name)' zeroes single weights; set criterion.\(key) to false for mask-mode runs")
        }
        if let ft = recipe.fineTuner, !ft.preservesZeros {
            // Merged LoRA updates are dense: they would fill the zeroed weights back in.
            throw PruneError(.unsupported, "recipe: fineTuner.type = '\(type(of: ft).name)' after scheduler '\(type(of: masker).name)' would refill the zeroed weights (merged LoRA updates are dense); use fineTuner 'spp', which keeps them, or remove the fineTuner")
        }
        if let c = recipe.compensator {
            throw PruneError(.unsupported, "recipe: compensator.type = '\(type(of: c).name)' updates the weights a structure scheduler keeps, but scheduler '\(type(of: masker).name)' zeroes single weights; remove the compensator for mask-mode runs")
        }
        return (masker, criterion)
    }

    /// Mask mode, one pipeline step: scores every linear matrix the step's groups touch weight by
    /// weight, zeroes what the scheduler picks in place and measures the zeros. The model keeps its shapes.
    func maskWeights(_ model: Transformer, groups: [PruneGroup], mode: (masker: any MaskScheduler, criterion: any WeightCriterion),
                     sequences: [[Int32]]) throws -> MaskSummary {
        let (masker, criterion) = (mode.masker, mode.criterion)
        let name = type(of: criterion).name
        let tensors = Masking.linearTensors(touchedBy: groups, in: model)
        guard !tensors.isEmpty else {
            throw PruneError(.invalidArgument, "grouping '\(type(of: recipe.grouping).name)' touches no linear matrix, so scheduler '\(type(of: masker).name)' has nothing to mask; choose structures in decoder layers")
        }
        // Wanda's sequential procedure collects statistics layer by layer below, on the masked model.
        let sequential = recipe.calibration.sequential && criterion.inputs.contains(.activationStatistics)
        let shared = try scoringContext(model, groups: groups, sequences: sequences, criterion: criterion,
                                        statistics: !sequential, suffix: "")
        func mask(_ t: String, _ ctx: ScoringContext) throws -> MaskSummary.Matrix {
            guard let e = model.params.entry(t) else { throw PruneError(.unknownName, "mask: no tensor '\(t)'") }
            let s = try criterion.weightScores(of: t, context: ctx)
            guard s.count == e.count, s.allSatisfy(\.isFinite) else {
                throw PruneError(.badFormat, "criterion '\(name)' returned \(s.count) weight scores for '\(t)' with \(e.count) weights, or a non-finite score")
            }
            try Masking.apply(try masker.mask(scores: s, rows: e.shape[0], cols: e.shape[1]), to: t, in: model)
            return MaskSummary.Matrix(tensor: t, weights: e.count, zeros: Masking.zeroCount(of: t, in: model))
        }
        let title = "mask \(tensors.count) matrices (\(masker.pattern)) by '\(name)' scores"
        let matrices: [MaskSummary.Matrix]
        if sequential {
            matrices = try maskLayerByLayer(model, tensors: tensors, title: title, context: shared, mask: mask)
        } else {
            if recipe.calibration.sequential {
                log("  calibration.sequential: '\(name)' reads no activations, so every layer is scored at once")
            }
            matrices = try timed(title) { () throws -> [MaskSummary.Matrix] in
                defer { model.params.markModified() }
                return try tensors.map { try mask($0, shared) }
            }
        }
        let summary = MaskSummary(pattern: masker.pattern, criterion: name, matrices: matrices, parameters: model.parameterCount)
        log(String(format: "  weight sparsity: %.2f%% zeros in %d matrices (%d of %d weights); parameters unchanged (%d)",
                   summary.sparsity * 100, matrices.count, summary.zeros, summary.weights, model.parameterCount))
        return summary
    }

    /// Wanda's sequential procedure: layer l's matrices are scored on statistics of what the
    /// already-masked layers before it produce, collected while the forward pass goes layer by layer.
    func maskLayerByLayer(_ model: Transformer, tensors: [String], title: String, context shared: ScoringContext,
                          mask: (String, ScoringContext) throws -> MaskSummary.Matrix) throws -> [MaskSummary.Matrix] {
        let byLayer = Dictionary(grouping: tensors) { ActivationStatistics.inputSite(of: $0)?.0 ?? -1 }
        if let rest = byLayer[-1] {
            throw PruneError(.unsupported, "calibration.sequential: tensors \(rest.joined(separator: ", ")) belong to no decoder layer")
        }
        let stats = ActivationStatistics()
        var done: [String: MaskSummary.Matrix] = [:]
        try timed(title + ", layer by layer on the masked model") {
            let bar = ProgressBar(total: model.config.nLayers, label: "  layers", unit: "layer")
            try model.layerByLayer(sequences: shared.calibration ?? [], observer: stats) { l in
                defer { bar.update(l + 1) }
                guard let ts = byLayer[l] else { return }
                let ctx = ScoringContext(model: model, statistics: stats, seed: shared.seed, gradients: shared.gradients,
                                         calibration: shared.calibration, groups: shared.groups)
                for t in ts { done[t] = try mask(t, ctx) }
                model.params.markModified()
            }
            bar.finish()
        }
        return tensors.map { done[$0]! }
    }
}
