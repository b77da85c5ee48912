import Foundation
import PruneFramework

/// Block Influence (Men et al. 2024, "ShortGPT: Layers in Large Language Models are More Redundant
/// Than You Expect", arXiv 2403.03853): a decoder block that barely turns its input is redundant.
///
/// BI_l = 1 − mean over calibration tokens t of cos(x_{l,t}, x_{l+1,t}), with x_{l,t} the residual
/// stream entering block l at token t and x_{l+1,t} the stream leaving it. Scores whole blocks
/// (grouping structures `["blocks"]`); higher BI = keep, so the scheduler removes the blocks with the
/// lowest BI (depth pruning). One forward pass over the run's calibration sequences (no gradients,
/// no statistics), with an observer at the `blockInput` and `blockOutput` sites.
public struct BlockInfluenceCriterion: Criterion {
    public static let name = "block-influence"
    public static let summary = "ShortGPT Block Influence: 1 − cos(block input, block output) over calibration tokens; scores whole blocks (depth pruning)"
    public static let keys: [PluginKey] = []

    public init() {}

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
    }

    public func encode(to encoder: Encoder) throws { _ = encoder.container(keyedBy: AnyCodingKey.self) }

    public func scores(for group: PruneGroup, context: ScoringContext) throws -> [Double] {
        guard group.kind == .block else {
            throw PruneError(.unsupported, "criterion 'block-influence' scores whole blocks; group '\(group.id)' is '\(group.kind.rawValue)' (set the grouping's structures to [\"blocks\"])")
        }
        guard let sequences = context.calibration, !sequences.isEmpty else {
            throw PruneError(.invalidArgument, "criterion 'block-influence' needs the run's calibration sequences; the scoring context has none")
        }
        let layers = try group.units.map { u -> Int in
            guard let l = u.slices.lazy.compactMap({ TensorNames.layer(of: $0.tensor) }).first else {
                throw PruneError(.badFormat, "criterion 'block-influence': a unit of group '\(group.id)' has no slice of a decoder block ('blk.N.…')")
            }
            return l
        }
        let bi = try Self.blockInfluence(model: context.model, sequences: sequences)
        return layers.map { bi[$0] }
    }

    /// BI of every decoder layer over the sequences (all of one length).
    public static func blockInfluence(model: Transformer, sequences: [[Int32]]) throws -> [Double] {
        guard let T = sequences.first?.count, sequences.allSatisfy({ $0.count == T }) else {
            throw PruneError(.invalidArgument, "criterion 'block-influence': calibration sequences must be non-empty and of one length")
        }
        let obs = CosineObserver(layers: model.config.nLayers)
        let batch = max(1, 1024 / T)
        var i = 0
        while i < sequences.count {
            let b = min(batch, sequences.count - i)
            _ = try model.hiddenStates(tokens: Array(sequences[i..<(i + b)].joined()), batch: b, seqLen: T, observer: obs)
            i += b
        }
        return zip(obs.sum, obs.count).map { $1 > 0 ? 1 - $0 / Double($1) : 0 }
    }
}

/// Sums cos(x_in, x_out) per token for every block: keeps a copy of the block input until the output.
final class CosineObserver: ForwardObserver {
    var sum: [Double]
    var count: [Int]
    private var input: [Float] = []

    init(layers: Int) {
        sum = [Double](repeating: 0, count: layers)
        count = [Int](repeating: 0, count: layers)
    }

    func observe(layer: Int, site: ActivationSite, activations: UnsafeBufferPointer<Float>, rows: Int, cols: Int) {
        switch site {
        case .blockInput:
            input = Array(activations)
        case .blockOutput:
            guard input.count == rows * cols, layer < sum.count else { return }
            var s = 0.0
            input.withUnsafeBufferPointer { a in
                for r in 0..<rows {
                    var dot = 0.0, na = 0.0, nb = 0.0
                    let x = a.baseAddress! + r * cols, y = activations.baseAddress! + r * cols
                    for j in 0..<cols {
                        let u = Double(x[j]), v = Double(y[j])
                        dot += u * v
                        na += u * u
                        nb += v * v
                    }
                    let d = (na * nb).squareRoot()
                    s += d > 0 ? dot / d : 1
                }
            }
            sum[layer] += s
            count[layer] += rows
        default:
            break
        }
    }
}
