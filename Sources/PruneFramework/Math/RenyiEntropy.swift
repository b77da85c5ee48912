import Foundation

/// Matrix-based Rényi α-entropy of Gram matrices (Sánchez Giraldo, Rao & Príncipe 2015), as used by
/// "Large Language Model Pruning" (Huang, Song & Pao, arXiv 2406.00030) to measure the redundancy of
/// two neurons from their activations on n tokens. All entropies are in bits.
///
/// For a Gram matrix K of n samples, A = K / tr K and S_α(A) = log₂(Σᵢ λᵢ(A)^α) / (1 − α), the limit
/// α → 1 being −Σ λ log₂ λ (von Neumann). The joint entropy of two variables observed on the same n
/// samples is S_α(A∘B / tr(A∘B)) (Hadamard product), and I(A; B) = S(A) + S(B) − S(A, B).
/// α = 2 needs no eigenvalues: Σ λ² = ‖A‖²_F, so S₂ = −log₂ ‖A‖²_F.
///
/// With a Gaussian kernel the Hadamard definition gives I(X; X) = 2S(A) − S(A∘A) ≤ S(A), with
/// equality when the kernel separates the distinct values (a discrete variable and a narrow kernel).
public enum RenyiEntropy {
    /// S_α of K / tr K for a symmetric positive semi-definite K (n×n row-major).
    public static func entropy(_ k: [Double], n: Int, alpha: Double) throws -> Double {
        try checkAlpha(alpha)
        guard n > 0, k.count == n * n else {
            throw PruneError(.shapeMismatch, "RenyiEntropy: a Gram matrix of \(k.count) entries is not \(n)×\(n)")
        }
        var trace = 0.0
        for i in 0..<n { trace += k[i * n + i] }
        guard trace > 0, trace.isFinite else {
            throw PruneError(.invalidArgument, "RenyiEntropy: the Gram matrix has trace '\(trace)'; a Gram matrix of a kernel has a positive diagonal")
        }
        if alpha == 2 { return -log2(k.reduce(0) { $0 + $1 * $1 } / (trace * trace)) }
        // Eigenvalues within rounding of 0 (n·ε of the largest) count as 0: for α < 1 their powers would not be small.
        let lambdas = try SymmetricEigen.eigenvalues(k, n: n).map { $0 / trace }
        let floor = Double(n) * .ulpOfOne * (lambdas.last ?? 0)
        return entropy(ofSpectrum: lambdas.map { $0 > floor ? $0 : 0 }, alpha: alpha)
    }

    /// S_α of a spectrum λ (non-negative, summing to 1): log₂(Σ λ^α)/(1 − α); α = 1: −Σ λ log₂ λ.
    public static func entropy(ofSpectrum lambdas: [Double], alpha: Double) -> Double {
        if alpha == 1 { return -lambdas.reduce(0) { $1 > 0 ? $0 + $1 * log2($1) : $0 } }
        return log2(lambdas.reduce(0) { $1 > 0 ? $0 + pow($1, alpha) : $0 }) / (1 - alpha)
    }

    /// Joint entropy S_α(A∘B / tr(A∘B)) of two Gram matrices of the same n samples.
    public static func jointEntropy(_ a: [Double], _ b: [Double], n: Int, alpha: Double) throws -> Double {
        guard a.count == b.count else {
            throw PruneError(.shapeMismatch, "RenyiEntropy: joint entropy of Gram matrices with \(a.count) and \(b.count) entries; both must be n×n on the same samples")
        }
        return try entropy(zip(a, b).map { $0 * $1 }, n: n, alpha: alpha)
    }

    /// I(A; B) = S(A) + S(B) − S(A∘B) in bits.
    public static func mutualInformation(_ a: [Double], _ b: [Double], n: Int, alpha: Double) throws -> Double {
        try entropy(a, n: n, alpha: alpha) + entropy(b, n: n, alpha: alpha) - jointEntropy(a, b, n: n, alpha: alpha)
    }

    /// Gaussian Gram matrix K_ij = exp(−‖x_i − x_j‖² / (2σ²)) of n samples of a d-dimensional variable.
    ///
    /// - x: n×d row-major samples. σ ≤ 0 makes K the indicator of equal samples.
    public static func gaussianGram(_ x: [Double], n: Int, d: Int, sigma: Double) -> [Double] {
        precondition(x.count == n * d, "RenyiEntropy.gaussianGram: \(x.count) values are not \(n)×\(d)")
        var k = [Double](repeating: 1, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                var d2 = 0.0
                for c in 0..<d { let t = x[i * d + c] - x[j * d + c]; d2 += t * t }
                let v = kernel(d2, sigma: sigma)
                k[i * n + j] = v
                k[j * n + i] = v
            }
        }
        return k
    }

    /// exp(−d² / 2σ²), with σ ≤ 0 meaning "1 when equal, else 0".
    @inline(__always)
    static func kernel(_ d2: Double, sigma: Double) -> Double {
        sigma > 0 ? exp(-d2 / (2 * sigma * sigma)) : (d2 == 0 ? 1 : 0)
    }

    /// Silverman's rule of thumb for n samples of a d-dimensional variable: σ = 1.06 · s · n^(−1/5) · √d,
    /// with s the root-mean per-coordinate standard deviation.
    ///
    /// For d = 1 this is Silverman's bandwidth; for d > 1 it applies that bandwidth to the distance
    /// averaged over coordinates (‖Δ‖²/d), so a group of d neurons is not pushed into K ≈ I by its size.
    /// - x: n×d row-major samples.
    public static func silvermanBandwidth(_ x: [Double], n: Int, d: Int) -> Double {
        guard n > 1, d > 0, x.count == n * d else { return 0 }
        var variance = 0.0
        for c in 0..<d {
            var s = 0.0, q = 0.0
            for i in 0..<n { let v = x[i * d + c]; s += v; q += v * v }
            variance += max(0, q / Double(n) - (s / Double(n)) * (s / Double(n)))
        }
        let sd = (variance / Double(d)).squareRoot()
        return 1.06 * sd * pow(Double(n), -0.2) * Double(d).squareRoot()
    }

    static func checkAlpha(_ alpha: Double) throws {
        guard alpha > 0, alpha.isFinite else {
            throw PruneError(.outOfRange, "RenyiEntropy: alpha = '\(alpha)' is out of range; the Rényi order must be a finite number > 0 (1 = von Neumann)")
        }
    }
}

/// Gaussian Gram matrices of many variables on the same n samples, kept as packed strict upper
/// triangles in Float (the diagonal is 1), for fast pairwise mutual information.
///
/// Memory is units × n(n−1)/2 floats (1536 units at n = 256: 200 MB). α = 2 costs one pass over two
/// triangles per pair: with A = K/n, ‖A‖²_F = (n + 2Σ_{i<j} K_ij²)/n² and, since tr(K_a∘K_b) = n,
/// ‖(K_a∘K_b)/n‖²_F = (n + 2Σ_{i<j} (K_a,ij K_b,ij)²)/n². Other α unpack the pair and use eigenvalues.
public struct PackedGaussianGrams: @unchecked Sendable {
    /// Samples per variable.
    public let n: Int
    /// Variables (units).
    public let count: Int
    /// Entries of one packed triangle: n(n−1)/2.
    public let stride: Int
    /// Σ_{i<j} K_ij² of each unit.
    public private(set) var squareSums: [Double]
    var packed: [Float]

    /// Builds the Gram matrix of each unit from its columns of `x`.
    ///
    /// - x: n×cols row-major samples; unit u reads columns `columns[u]` (d_u = its count).
    /// - sigmas: one bandwidth per unit (≤ 0: indicator kernel).
    public init(x: UnsafeBufferPointer<Float>, n: Int, cols: Int, columns: [Range<Int>], sigmas: [Double]) {
        precondition(x.count >= n * cols && columns.count == sigmas.count, "PackedGaussianGrams: \(x.count) samples for \(n)×\(cols), \(columns.count) units, \(sigmas.count) bandwidths")
        self.n = n
        count = columns.count
        stride = n * (n - 1) / 2
        packed = [Float](repeating: 0, count: count * stride)
        squareSums = [Double](repeating: 0, count: count)
        let stride = self.stride
        packed.withUnsafeMutableBufferPointer { out in
            squareSums.withUnsafeMutableBufferPointer { sums in
                let base = out.baseAddress!, sumBase = sums.baseAddress!
                DispatchQueue.concurrentPerform(iterations: columns.count) { u in
                    let r = columns[u], d = r.count
                    // Gather the unit's columns into a contiguous n×d block first.
                    var z = [Float](repeating: 0, count: n * d)
                    for i in 0..<n { for (c, col) in r.enumerated() { z[i * d + c] = x[i * cols + col] } }
                    let scale = sigmas[u] > 0 ? Float(-1 / (2 * sigmas[u] * sigmas[u])) : 0
                    sumBase[u] = z.withUnsafeBufferPointer { z in
                        Self.fillTriangle(base + u * stride, z: z.baseAddress!, n: n, d: d, scale: scale, indicator: sigmas[u] <= 0)
                    }
                }
            }
        }
    }

    /// Writes the strict upper triangle of exp(scale·‖z_i − z_j‖²) row by row; returns Σ K².
    static func fillTriangle(_ dst: UnsafeMutablePointer<Float>, z: UnsafePointer<Float>, n: Int, d: Int, scale: Float, indicator: Bool) -> Double {
        var t = 0, acc = 0.0
        for i in 0..<n {
            var rowAcc: Float = 0
            for j in (i + 1)..<max(i + 1, n) {
                var d2: Float = 0
                for c in 0..<d { let v = z[i * d + c] - z[j * d + c]; d2 += v * v }
                let k: Float = indicator ? (d2 == 0 ? 1 : 0) : exp(d2 * scale)
                dst[t] = k
                rowAcc += k * k
                t += 1
            }
            acc += Double(rowAcc)
        }
        return acc
    }

    /// S₂ of unit u: −log₂((n + 2Σ K²)/n²).
    public func entropy2(_ u: Int) -> Double {
        -log2((Double(n) + 2 * squareSums[u]) / Double(n * n))
    }

    /// I₂(a; b) = S₂(a) + S₂(b) − S₂(a, b) = log₂(n² · ‖K_a∘K_b‖²_F / (‖K_a‖²_F ‖K_b‖²_F)).
    public func mutualInformation2(_ a: Int, _ b: Int) -> Double {
        let joint = Double(n) + 2 * hadamardSquareSum(a, b)
        let fa = Double(n) + 2 * squareSums[a], fb = Double(n) + 2 * squareSums[b]
        return log2(Double(n * n) * joint / (fa * fb))
    }

    /// Σ_{i<j} (K_a,ij · K_b,ij)².
    func hadamardSquareSum(_ a: Int, _ b: Int) -> Double {
        packed.withUnsafeBufferPointer { p in
            let pa = UnsafeRawPointer(p.baseAddress! + a * stride), pb = UnsafeRawPointer(p.baseAddress! + b * stride)
            var acc = SIMD16<Float>(), total = 0.0
            var i = 0
            let vectorEnd = stride - stride % 16
            // Flush the Float accumulator to Double every 4096 entries to keep rounding small.
            while i < vectorEnd {
                let blockEnd = min(vectorEnd, i + 4096)
                while i < blockEnd {
                    let t = pa.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * pb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                    acc += t * t
                    i += 16
                }
                total += Double(acc.sum())
                acc = SIMD16<Float>()
            }
            while i < stride {
                let t = Double(p[a * stride + i]) * Double(p[b * stride + i])
                total += t * t
                i += 1
            }
            return total
        }
    }

    /// The full n×n Gram matrix of unit u (diagonal 1), in Double.
    public func gram(_ u: Int) -> [Double] {
        var k = [Double](repeating: 1, count: n * n)
        var t = u * stride
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                k[i * n + j] = Double(packed[t])
                k[j * n + i] = Double(packed[t])
                t += 1
            }
        }
        return k
    }

    /// S_α of unit u (α = 2 without eigenvalues).
    public func entropy(_ u: Int, alpha: Double) throws -> Double {
        alpha == 2 ? entropy2(u) : try RenyiEntropy.entropy(gram(u), n: n, alpha: alpha)
    }

    /// I_α(a; b), given both units' entropies (α = 2 without eigenvalues).
    public func mutualInformation(_ a: Int, _ b: Int, alpha: Double, entropies: [Double]) throws -> Double {
        if alpha == 2 { return mutualInformation2(a, b) }
        return try entropies[a] + entropies[b] - RenyiEntropy.jointEntropy(gram(a), gram(b), n: n, alpha: alpha)
    }
}
