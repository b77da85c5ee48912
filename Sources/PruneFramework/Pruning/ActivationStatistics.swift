import Foundation

/// Streaming per-column statistics of the inputs of every linear layer (sum, sum of squares, count),
/// collected through the forward observer; activations themselves are never stored, except, when
/// `sampleRows` > 0, a bounded uniform sample of token rows per layer of the `sampleSites` (for
/// criteria that declare `.activationSamples`, e.g. mutual information between neurons).
public final class ActivationStatistics: ForwardObserver, @unchecked Sendable {
    public struct Column: Sendable {
        public var sum: [Double]
        public var sumSq: [Double]
        public var count: Int

        /// ‖X_j‖₂ over all observed tokens.
        public var l2Norms: [Double] { sumSq.map { $0.squareRoot() } }
        /// Per-column variance (population).
        public var variances: [Double] {
            guard count > 0 else { return sum.map { _ in 0 } }
            let n = Double(count)
            return zip(sum, sumSq).map { max(0, $1 / n - ($0 / n) * ($0 / n)) }
        }
    }

    /// Sites that feed linear layers.
    public static let linearInputs: [ActivationSite] = [.attnInput, .attnOutputInput, .mlpInput, .mlpIntermediate]

    /// A uniform random sample of at most `capacity` token rows of one site (reservoir sampling,
    /// Vitter's algorithm R), so memory stays `capacity × cols` however many tokens pass.
    public struct Sample: Sendable {
        /// Rows held: min(capacity, seen).
        public var rows: Int { values.count / max(cols, 1) }
        public let cols: Int
        /// rows × cols, row-major.
        public internal(set) var values: [Float]
        /// Token rows observed so far.
        public internal(set) var seen: Int
        let capacity: Int
        var rng: SplitMix64
    }

    /// Sites whose rows are sampled when `sampleRows` > 0: MLP intermediate activations and head outputs.
    public static let sampledSites: [ActivationSite] = [.mlpIntermediate, .attnOutputInput]

    public private(set) var columns: [String: Column] = [:]
    public private(set) var samples: [String: Sample] = [:]
    let sites: Set<ActivationSite>
    /// Token rows kept per layer and sampled site (0: none).
    public let sampleRows: Int
    let sampleSites: Set<ActivationSite>
    let sampleSeed: UInt64

    public init(sites: [ActivationSite] = ActivationStatistics.linearInputs) {
        self.sites = Set(sites)
        sampleRows = 0
        sampleSites = []
        sampleSeed = 0
    }

    /// Statistics of `sites` plus a reservoir of `sampleRows` token rows per layer of each of `sampleSites`.
    /// Every reservoir starts from the same seed, so all layers keep the same token positions.
    public init(sites: [ActivationSite] = ActivationStatistics.linearInputs, sampleRows: Int,
                sampleSites: [ActivationSite] = ActivationStatistics.sampledSites, seed: UInt64 = 0) {
        precondition(sampleRows >= 0, "ActivationStatistics: sampleRows \(sampleRows) < 0")
        self.sites = Set(sites)
        self.sampleRows = sampleRows
        self.sampleSites = Set(sampleSites)
        sampleSeed = seed
    }

    /// The sampled token rows of one layer's site, if collected.
    public func sample(layer: Int, site: ActivationSite) -> Sample? { samples[Self.key(layer, site)] }

    static func key(_ layer: Int, _ site: ActivationSite) -> String { "\(layer).\(site.rawValue)" }

    public func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        if sampleRows > 0, sampleSites.contains(site) { reserve(layer: layer, site: site, activations: activations, rows: rows, cols: cols) }
        guard sites.contains(site) else { return }
        let k = Self.key(layer, site)
        var c = columns[k] ?? Column(sum: [Double](repeating: 0, count: cols), sumSq: [Double](repeating: 0, count: cols), count: 0)
        columns[k] = nil  // keep the arrays uniquely referenced while updating
        c.sum.withUnsafeMutableBufferPointer { s in
            c.sumSq.withUnsafeMutableBufferPointer { q in
                for r in 0..<rows {
                    let row = activations.baseAddress! + r * cols
                    for j in 0..<cols {
                        let v = Double(row[j])
                        s[j] += v
                        q[j] += v * v
                    }
                }
            }
        }
        c.count += rows
        columns[k] = c
    }

    /// Offers every row to the site's reservoir: row t (0-based) is kept when t < capacity, else it
    /// replaces a uniform slot j ≤ t when j < capacity.
    func reserve(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        let k = Self.key(layer, site)
        var s = samples[k] ?? Sample(cols: cols, values: [], seen: 0, capacity: sampleRows, rng: SplitMix64(seed: sampleSeed))
        samples[k] = nil  // keep the array uniquely referenced while updating
        if s.cols != cols { s = Sample(cols: cols, values: [], seen: 0, capacity: sampleRows, rng: SplitMix64(seed: sampleSeed)) }
        if s.values.isEmpty { s.values.reserveCapacity(min(sampleRows, 1 << 20) * cols) }
        for r in 0..<rows {
            let row = UnsafeBufferPointer(rebasing: activations[(r * cols)..<((r + 1) * cols)])
            if s.seen < s.capacity {
                s.values.append(contentsOf: row)
            } else {
                let j = Int(s.rng.next() % UInt64(s.seen + 1))
                if j < s.capacity { s.values.withUnsafeMutableBufferPointer { v in (v.baseAddress! + j * cols).update(from: row.baseAddress!, count: cols) } }
            }
            s.seen += 1
        }
        samples[k] = s
    }

    /// Adds every rank's column sums, sums of squares and counts (`Communicator.sum`), so each rank
    /// holds the statistics of all ranks' rows. A rank that saw no rows of a site (more ranks than
    /// batches) adds zeros; the sites and widths are agreed first.
    public func sum(over communicator: any Communicator) throws {
        guard communicator.isDistributed else { return }
        var widths: [String: Int] = [:]
        for part in try communicator.allGather(columns.mapValues(\.sum.count)) {
            for (k, w) in part {
                if let seen = widths[k], seen != w {
                    throw PruneError(.shapeMismatch, "distributed calibration: the ranks saw site '\(k)' with \(seen) and \(w) columns")
                }
                widths[k] = w
            }
        }
        let keys = widths.keys.sorted()
        var flat: [Double] = []
        flat.reserveCapacity(keys.reduce(0) { $0 + 2 * widths[$1]! + 1 })
        for k in keys {
            let w = widths[k]!, c = columns[k]
            flat += c?.sum ?? [Double](repeating: 0, count: w)
            flat += c?.sumSq ?? [Double](repeating: 0, count: w)
            flat.append(Double(c?.count ?? 0))
        }
        try communicator.sum(&flat)
        var at = 0
        for k in keys {
            let w = widths[k]!
            columns[k] = Column(sum: Array(flat[at..<(at + w)]), sumSq: Array(flat[(at + w)..<(at + 2 * w)]), count: Int(flat[at + 2 * w]))
            at += 2 * w + 1
        }
    }

    /// Statistics of the input of a linear weight (by canonical name), if collected.
    public func input(of tensor: String) -> Column? {
        guard let (layer, site) = Self.inputSite(of: tensor) else { return nil }
        return columns[Self.key(layer, site)]
    }

    /// The activation site feeding a linear weight: attn_q/k/v ← attn input, attn_output ← head
    /// outputs, ffn_gate/up ← MLP input, ffn_down ← MLP intermediate.
    public static func inputSite(of tensor: String) -> (Int, ActivationSite)? {
        guard let (layer, role) = TensorNames.parse(tensor), let l = layer else { return nil }
        switch role {
        case .attnQ, .attnK, .attnV: return (l, .attnInput)
        case .attnOutput: return (l, .attnOutputInput)
        case .ffnGate, .ffnUp: return (l, .mlpInput)
        case .ffnDown: return (l, .mlpIntermediate)
        default: return nil
        }
    }
}
