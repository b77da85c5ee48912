import PruneFramework

/// N:M semi-structured sparsity (as in Wanda, Sun et al. 2023, and NVIDIA's 2:4): in every run of
/// M consecutive weights along the input dimension of a row, keeps the N highest-scoring and zeroes
/// the rest. A trailing run shorter than M (when the row length is not a multiple of M) keeps at
/// most N, so every window of M aligned weights holds at most N nonzeros.
public struct NMScheduler: MaskScheduler {
    public static let name = "n:m"
    public static let summary = "mask mode: keep the n highest-scoring of every m consecutive weights of a row (2:4 by default); shapes unchanged"
    public static let keys = [
        PluginKey("n", "integer", default: "2", "weights kept in each run of m, in 1...m−1"),
        PluginKey("m", "integer", default: "4", "run length along the input dimension, in 2...16"),
    ]

    public var n: Int
    public var m: Int

    public init(n: Int = 2, m: Int = 4) {
        precondition((2...16).contains(m) && (1..<m).contains(n), "NMScheduler: 2 ≤ m ≤ 16 and 1 ≤ n < m")
        self.n = n
        self.m = m
    }

    enum CodingKeys: String, CodingKey { case n, m }

    public init(from decoder: Decoder) throws {
        try decoder.checkPluginKeys(Self.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        m = try c.integer(.m, default: 4, in: 2...16)
        n = try c.integer(.n, default: 2, in: 1...(m - 1))
    }

    public var pattern: String { "\(n):\(m)" }

    public func mask(scores: [Double], rows: Int, cols: Int) throws -> [Bool] {
        try MaskSelection.flags(Self.name, scores: scores, rows: rows, cols: cols) { s, z in
            MaskSelection.forEachRow(rows) { r, scratch in
                for start in stride(from: r * cols, to: (r + 1) * cols, by: m) {
                    let run = start..<min(start + m, (r + 1) * cols)
                    MaskSelection.markLowest(run.count - min(n, run.count), of: UnsafeBufferPointer(rebasing: s[run]),
                                             in: UnsafeMutableBufferPointer(rebasing: z[run]), scratch: &scratch)
                }
            }
        }
    }
}
