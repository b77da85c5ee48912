import Foundation
import PruneFramework

/// Unstructured sparsity (Wanda, Sun et al. 2023): zeroes the lowest-scoring `ratio` of the weights
/// of every linear matrix the grouping touches, compared within each output row (`scope: "row"`,
/// Wanda's default comparison group) or across the whole matrix (`"matrix"`, Wanda's "per layer"
/// and the usual magnitude-pruning setting). Each row (matrix) loses exactly round(ratio × its size).
public struct UnstructuredScheduler: MaskScheduler {
    public static let name = "unstructured"
    public static let summary = "mask mode: zero the lowest-scoring fraction of single weights per output row (or per matrix); shapes unchanged"
    public static let keys = [
        PluginKey("ratio", "number", default: "0.5", "fraction of the weights of each comparison group to zero, in [0, 1)"),
        PluginKey("scope", "string", default: "\"row\"", allowed: ["row", "matrix"], "comparison group: each output row (Wanda) or the whole matrix"),
    ]

    public var ratio: Double
    public var scope: String

    public init(ratio: Double = 0.5, scope: String = "row") {
        precondition((0..<1).contains(ratio) && ["row", "matrix"].contains(scope), "UnstructuredScheduler: ratio in [0, 1), scope row or matrix")
        self.ratio = ratio
        self.scope = scope
    }

    enum CodingKeys: String, CodingKey { case ratio, scope }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ratio = try c.number(.ratio, default: 0.5, in: 0...1, openUpper: true)
        scope = try c.choice(.scope, default: "row", allowed: ["row", "matrix"])
    }

    public var pattern: String {
        "\(String(format: "%g", ratio * 100))% unstructured per \(scope)"
    }

    public func mask(scores: [Double], rows: Int, cols: Int) throws -> [Bool] {
        try MaskSelection.flags(Self.name, scores: scores, rows: rows, cols: cols) { s, z in
            if scope == "matrix" {
                var scratch: [Double] = []
                MaskSelection.markLowest(count(of: s.count), of: s, in: z, scratch: &scratch)
                return
            }
            let k = count(of: cols)
            MaskSelection.forEachRow(rows) { r, scratch in
                let row = (r * cols)..<((r + 1) * cols)
                MaskSelection.markLowest(k, of: UnsafeBufferPointer(rebasing: s[row]), in: UnsafeMutableBufferPointer(rebasing: z[row]),
                                         scratch: &scratch)
            }
        }
    }

    /// Weights to zero in a comparison group of `n`.
    func count(of n: Int) -> Int { min(n, Int((ratio * Double(n)).rounded())) }
}
