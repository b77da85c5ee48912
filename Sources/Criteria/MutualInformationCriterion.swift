import Foundation
import PruneFramework

/// Mutual information between neurons ("Large Language Model Pruning", Huang, Song & Pao 2024,
/// arXiv 2406.00030): units of one layer that carry the same information as another are redundant,
/// and of a redundant pair only one goes.
///
/// For each unit of a group (an MLP channel, or a KV group through its query heads' outputs before
/// `attn_output`) the criterion takes its activations on n sampled calibration tokens, builds the
/// Gaussian Gram matrix K_ij = exp(−‖z_i − z_j‖²/2σ²) with σ = Silverman's bandwidth × `bandwidthScale`,
/// and computes matrix-based Rényi α-entropies: S(A) of A = K/tr K, the joint S(A∘B/tr(A∘B)) and
/// I(k; l) = S(A) + S(B) − S(A, B), in bits (`RenyiEntropy`; α = 2 needs no eigenvalues). Exhaustive
/// pairs cost units² × n², so at most `pairs` pairs per group are evaluated: all of them when there are
/// fewer, else uniform random pairs (`pairing: "random"`, the paper's scheme), or (`"screened"`) each
/// unit's most correlated partners (|Pearson r|, one matrix product) for half the budget and random
/// pairs for the rest, which finds near-duplicates a random budget misses but on SmolLM2 pruned worse
/// (WikiText-2 PPL 254.6 against 195.4 at 20%). Vector-valued units (KV groups) always pair at random.
/// α ≠ 2 needs an n×n eigendecomposition per unit and per pair (`SymmetricEigen`): on SmolLM2,
/// α = 1.5 with tokens 64 and pairs 2000 scores 24 layers in 27 s, against 10 s for α = 2 at the defaults.
///
/// Scores (higher = keep) come from a greedy pass over the evaluated pairs, highest I first: when both
/// units of a pair are still kept and I > cutoff, the one with the smaller output magnitude
/// (RMS activation × ‖its attn_output/ffn_down columns‖) is marked removed and scored −I, the MI of
/// the pair that removed it: the most redundant unit goes first and its partner survives. Every unit left
/// scores max(0, S(k) − max I(k; l) over evaluated kept partners l): the information it does not
/// share. Removed units are thus < 0 ≤ kept ones, so a scheduler that removes the lowest scores takes
/// one unit of each redundant pair before anything else. In `ratio` mode the cutoff is 0 and the
/// scheduler's ratio sets how many go; in `threshold` mode the cutoff is `threshold` (Tr, bits): only
/// units of pairs with I > Tr are marked, they go first, and the scheduler's ratio still sets the count
/// (a larger ratio then removes the least informative other units; choose it from the marked share,
/// which `redundancy(...)` reports). For scale: at n = 256 the estimate for independent Gaussians is
/// about 0.1 bit (finite-sample bias), and the highest pairs of SmolLM2's MLP layers reach 0.4–0.8 bit.
public struct MutualInformationCriterion: SamplingCriterion {
    public static let name = "mutual-information"
    public static let summary = "redundancy between units of a layer: matrix-based Rényi MI of their activations (arXiv 2406.00030); one of each redundant pair goes first"
    public static let keys = [
        PluginKey("mode", "string", default: "\"ratio\"", allowed: ["ratio", "threshold"], "ratio: every pair with I > 0 ranks; threshold: only pairs with I > threshold mark a unit"),
        PluginKey("threshold", "number", default: "0.5", "Tr in bits for threshold mode, ≥ 0"),
        PluginKey("alpha", "number", default: "2", "Rényi order α > 0 (2: no eigenvalues, fast; 1: von Neumann; others cost n³ per pair)"),
        PluginKey("tokens", "integer", default: "256", "sampled calibration token rows per layer (n), 8...4096; memory units × n²/2 floats"),
        PluginKey("pairs", "integer", default: "20000", "unit pairs evaluated per group (all pairs when there are fewer)"),
        PluginKey("pairing", "string", default: "\"random\"", allowed: ["random", "screened"], "when not all pairs fit the budget: random pairs, or each unit's most correlated partners plus random ones"),
        PluginKey("bandwidthScale", "number", default: "1.0", "multiplies Silverman's kernel bandwidth, in (0, 100]"),
    ]

    public var mode = "ratio"
    public var threshold = 0.5
    public var alpha = 2.0
    public var tokens = 256
    public var pairs = 20000
    public var pairing = "random"
    public var bandwidthScale = 1.0

    public var inputs: CriterionInputs { [.weights, .activationSamples] }
    public var sampleRows: Int { tokens }

    public init(mode: String = "ratio", threshold: Double = 0.5, alpha: Double = 2, tokens: Int = 256, pairs: Int = 20000,
                pairing: String = "random", bandwidthScale: Double = 1) {
        self.mode = mode
        self.threshold = threshold
        self.alpha = alpha
        self.tokens = tokens
        self.pairs = pairs
        self.pairing = pairing
        self.bandwidthScale = bandwidthScale
    }

    enum CodingKeys: String, CodingKey { case mode, threshold, alpha, tokens, pairs, pairing, bandwidthScale }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.choice(.mode, default: "ratio", allowed: ["ratio", "threshold"])
        threshold = try c.number(.threshold, default: 0.5, in: 0...64)
        alpha = try c.number(.alpha, default: 2, in: 0...100)
        if alpha == 0 {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "alpha")) = '0' is out of range; the Rényi order must be > 0 (2 is fastest)")
        }
        tokens = try c.integer(.tokens, default: 256, in: 8...4096)
        pairs = try c.integer(.pairs, default: 20000, in: 1...100_000_000)
        pairing = try c.choice(.pairing, default: "random", allowed: ["random", "screened"])
        bandwidthScale = try c.number(.bandwidthScale, default: 1, in: 0...100)
        if bandwidthScale == 0 {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "bandwidthScale")) = '0' is out of range; allowed (0, 100]")
        }
    }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        try redundancy(for: group, context: context).scores
    }

    /// The outcome of the greedy pass over one group.
    public struct Redundancy: Sendable {
        /// One per unit, higher = keep (see the type's documentation).
        public var scores: [Double]
        /// Units the greedy marked, first marked (most redundant) first.
        public var removalOrder: [Int]
        /// S_α of each unit, in bits.
        public var entropies: [Double]
        /// The evaluated pairs and their mutual information, in bits.
        public var pairs: [(Int, Int)]
        public var information: [Double]
    }

    /// Scores one group of the model from the calibration samples of its layer.
    public func redundancy(for group: PruneGroup, context: ScoringContext) throws -> Redundancy {
        let (layer, site) = try Self.site(of: group)
        guard let sample = context.statistics?.sample(layer: layer, site: site) else {
            throw PruneError(.invalidArgument, "criterion '\(Self.name)' needs sampled activations of layer \(layer) ('\(site.rawValue)') for group '\(group.id)'; the calibration kept none (the runner passes Calibration.sampleRows(for:) to Calibration.statistics)")
        }
        var columns: [Range<Int>] = [], weightNorms: [Double] = []
        for (u, unit) in group.units.enumerated() {
            guard let s = unit.slices.first(where: { $0.axis == 1 && ActivationStatistics.inputSite(of: $0.tensor).map { $0 == (layer, site) } == true }),
                  s.range.upperBound <= sample.cols else {
                throw PruneError(.shapeMismatch, "criterion '\(Self.name)': unit \(u) of group '\(group.id)' has no columns within the \(sample.cols) sampled '\(site.rawValue)' activations of layer \(layer); calibrate the model being scored")
            }
            columns.append(s.range)
            weightNorms.append(SliceMath.sum(s, in: context.model) { w, _ in Double(w) * Double(w) }.squareRoot())
        }
        let n = min(tokens, sample.rows)
        guard n >= 2 else {
            throw PruneError(.outOfRange, "criterion '\(Self.name)': layer \(layer) has \(sample.rows) sampled token rows; at least 2 are needed (raise calibration.samples or seqLen)")
        }
        let salt = group.id.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        return try sample.values.withUnsafeBufferPointer { z in
            try redundancy(samples: UnsafeBufferPointer(rebasing: z[0..<(n * sample.cols)]), n: n, cols: sample.cols,
                           columns: columns, weightNorms: weightNorms, seed: context.seed ^ salt)
        }
    }

    /// The layer and sampled activation site whose columns are a group's units.
    static func site(of group: PruneGroup) throws -> (Int, ActivationSite) {
        switch (group.kind, group.layer) {
        case (.mlpChannel, let l?): return (l, .mlpIntermediate)
        case (.kvGroup, let l?): return (l, .attnOutputInput)
        default:
            throw PruneError(.unsupported, "criterion '\(Self.name)' scores kv-groups and mlp-channels (units of one layer); group '\(group.id)' is '\(group.kind.rawValue)'; use another criterion or drop that structure from grouping.structures")
        }
    }

    /// The greedy redundancy pass on raw samples: unit u is the columns `columns[u]` of the n×cols samples.
    ///
    /// - samples: n×cols row-major activations.
    /// - weightNorms: ‖output weights‖ of each unit, for the magnitude that picks which of a pair goes.
    public func redundancy(samples z: UnsafeBufferPointer<Float>, n: Int, cols: Int, columns: [Range<Int>],
                           weightNorms: [Double], seed: UInt64) throws -> Redundancy {
        let units = columns.count
        precondition(weightNorms.count == units && z.count >= n * cols, "MutualInformationCriterion: \(units) units, \(weightNorms.count) weight norms, \(z.count) samples for \(n)×\(cols)")
        var sigmas = [Double](), magnitudes = [Double]()
        for (u, r) in columns.enumerated() {
            var x = [Double](repeating: 0, count: n * r.count), sq = 0.0
            for i in 0..<n { for (c, col) in r.enumerated() { let v = Double(z[i * cols + col]); x[i * r.count + c] = v; sq += v * v } }
            sigmas.append(bandwidthScale * RenyiEntropy.silvermanBandwidth(x, n: n, d: r.count))
            magnitudes.append((sq / Double(n)).squareRoot() * weightNorms[u])
        }
        let grams = PackedGaussianGrams(x: z, n: n, cols: cols, columns: columns, sigmas: sigmas)
        // A non-finite activation makes its unit's entropy and MI non-finite: count them as 0 (no information).
        let entropies = try parallelMap(units) { try grams.entropy($0, alpha: alpha) }.map { $0.isFinite ? $0 : 0 }
        let candidates = candidatePairs(z, n: n, cols: cols, columns: columns, seed: seed)
        let information = try parallelMap(candidates.count) { i in
            try grams.mutualInformation(candidates[i].0, candidates[i].1, alpha: alpha, entropies: entropies)
        }.map { $0.isFinite ? $0 : 0 }
        return greedy(pairs: candidates, information: information, entropies: entropies, magnitudes: magnitudes)
    }

    /// Highest-I pair first: of two kept units the smaller-magnitude one goes (ties: the later index).
    func greedy(pairs: [(Int, Int)], information mi: [Double], entropies: [Double], magnitudes: [Double]) -> Redundancy {
        let units = entropies.count
        let cutoff = mode == "threshold" ? threshold : 0
        var kept = [Bool](repeating: true, count: units), scores = [Double](repeating: 0, count: units)
        var order: [Int] = []
        for p in pairs.indices.sorted(by: { mi[$0] > mi[$1] || (mi[$0] == mi[$1] && $0 < $1) }) where mi[p] > cutoff {
            let (a, b) = pairs[p]
            guard kept[a], kept[b] else { continue }
            let victim = magnitudes[a] < magnitudes[b] || (magnitudes[a] == magnitudes[b] && a > b) ? a : b
            kept[victim] = false
            scores[victim] = -mi[p]
            order.append(victim)
        }
        var shared = [Double](repeating: 0, count: units)
        for (p, (a, b)) in pairs.enumerated() where kept[a] && kept[b] {
            shared[a] = max(shared[a], mi[p])
            shared[b] = max(shared[b], mi[p])
        }
        for u in 0..<units where kept[u] { scores[u] = max(0, entropies[u] - shared[u]) }
        return Redundancy(scores: scores, removalOrder: order, entropies: entropies, pairs: pairs, information: mi)
    }

    /// The pairs to evaluate: all when they fit the budget, else screened and/or random pairs (a < b).
    func candidatePairs(_ z: UnsafeBufferPointer<Float>, n: Int, cols: Int, columns: [Range<Int>], seed: UInt64) -> [(Int, Int)] {
        let units = columns.count
        let total = units * (units - 1) / 2
        if total <= pairs { return (0..<units).flatMap { a in ((a + 1)..<units).map { (a, $0) } } }
        var chosen = Set<Int>(), out: [(Int, Int)] = []
        func add(_ a: Int, _ b: Int) {
            let (x, y) = a < b ? (a, b) : (b, a)
            if x != y, chosen.insert(x * units + y).inserted { out.append((x, y)) }
        }
        if pairing == "screened", columns.allSatisfy({ $0.count == 1 }) {
            let perUnit = max(1, pairs / (2 * units))
            for (a, partners) in Self.mostCorrelated(z, n: n, cols: cols, columns: columns.map(\.lowerBound), count: perUnit).enumerated() {
                for b in partners where out.count < pairs { add(a, b) }
            }
        }
        var rng = SplitMix64(seed: seed)
        while out.count < pairs {
            add(Int(rng.next() % UInt64(units)), Int(rng.next() % UInt64(units)))
        }
        return out
    }

    /// For each unit, the `count` other units whose activations have the largest |Pearson r| with it.
    static func mostCorrelated(_ z: UnsafeBufferPointer<Float>, n: Int, cols: Int, columns: [Int], count: Int) -> [[Int]] {
        let units = columns.count
        // Standardised columns as rows of a units×n matrix S; S·Sᵀ is the correlation matrix.
        var s = [Float](repeating: 0, count: units * n)
        for (u, col) in columns.enumerated() {
            var mean = 0.0, sq = 0.0
            for i in 0..<n { mean += Double(z[i * cols + col]) }
            mean /= Double(n)
            for i in 0..<n { let v = Double(z[i * cols + col]) - mean; sq += v * v }
            let inv = sq > 0 ? 1 / sq.squareRoot() : 0
            for i in 0..<n { s[u * n + i] = Float((Double(z[i * cols + col]) - mean) * inv) }
        }
        var r = [Float](repeating: 0, count: units * units)
        s.withUnsafeBufferPointer { sp in
            r.withUnsafeMutableBufferPointer { rp in
                Matmul.xwt(rp.baseAddress!, sp.baseAddress!, sp.baseAddress!, m: units, n: units, k: n)
            }
        }
        return (0..<units).map { a in
            var best: [(Float, Int)] = []  // ascending by |r|, at most `count`
            for b in 0..<units where b != a {
                let v = abs(r[a * units + b])
                if best.count == count, v <= best[0].0 { continue }
                let at = best.firstIndex { $0.0 >= v } ?? best.count
                best.insert((v, b), at: at)
                if best.count > count { best.removeFirst() }
            }
            return best.reversed().map(\.1)
        }
    }

    /// f(0..<count) over both cores, in order.
    func parallelMap(_ count: Int, _ f: (Int) throws -> Double) throws -> [Double] {
        var out = [Double](repeating: 0, count: count)
        var failure: Error?
        let lock = NSLock()
        let chunks = min(count, 64)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in stride(from: c, to: count, by: chunks) {
                    do { base[i] = try f(i) } catch { lock.withLock { failure = failure ?? error }; return }
                }
            }
        }
        if let failure { throw failure }
        return out
    }
}
