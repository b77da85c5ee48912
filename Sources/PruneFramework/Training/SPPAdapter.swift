import Foundation

/// SPP's sparsity-preserving adapter (Lu et al. 2024, "SPP: Sparsity-Preserved Parameter-Efficient
/// Fine-Tuning for Large Language Models", arXiv 2405.16057), as its reference code computes it:
/// W' = W + s · W ⊙ (c ⊗ R(A)), so y = x·Wᵀ + s · c ⊙ [x · (W ⊙ R(A))ᵀ].
///
/// A (r × k, the row matrix) holds one input scaling a_i per group of consecutive output rows (row
/// j of n belongs to group ⌊j·r/n⌋, the code's `repeat_interleave`), c (n, the column) scales each
/// output row, s = α/r. A starts uniform in ±1/√k and c at zero, so an attached adapter does not
/// change the model until it trains. Every change is a multiple of a weight, so a weight that is
/// zero stays exactly zero through training and the merge W' = W ⊙ (1 + s·c_j·a_g(j)).
public final class SPPAdapter<E: KernelScalar>: LinearAdapter {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    /// α / r.
    public let scaling: E
    /// Probability of zeroing an input element of the adapter's path during training.
    public let dropout: Double
    public var training = true
    /// r × k, row-major: the input scaling of each group of output rows.
    public var a: [E]
    /// n: the scaling of each output row.
    public var c: [E]
    public var gradA: [E]
    public var gradC: [E]

    private var rng: SplitMix64
    private var input = DroppedInput<E>()
    /// U (m × n): (x_d ⊙ a_g(j)) · W_jᵀ, before the row scaling.
    private var savedU: [E] = []
    private var savedRows = 0

    public init(inFeatures k: Int, outFeatures n: Int, rank r: Int, alpha: Double, dropout: Double, seed: UInt64) {
        rank = r
        inFeatures = k
        outFeatures = n
        scaling = E(alpha / Double(r))
        self.dropout = dropout
        rng = SplitMix64(seed: seed)
        a = adapterRowMatrix(rank: r, inFeatures: k, rng: &rng)
        c = [E](repeating: 0, count: n)
        gradA = [E](repeating: 0, count: r * k)
        gradC = c
    }

    public var parameterCount: Int { a.count + c.count }

    /// The output rows of group i: ⌈i·n/r⌉ ..< ⌈(i+1)·n/r⌉.
    func rows(ofGroup i: Int) -> Range<Int> {
        let n = outFeatures, r = rank
        return ((i * n + r - 1) / r)..<(((i + 1) * n + r - 1) / r)
    }

    /// W ⊙ R(A): row j of W times the input scaling of its group (n × k).
    @_specialize(where E == Float)
    func scaledWeight(_ w: UnsafePointer<E>) -> [E] {
        let k = inFeatures
        var out = [E](repeating: 0, count: outFeatures * k)
        out.withUnsafeMutableBufferPointer { o in
            a.withUnsafeBufferPointer { ab in
                for g in 0..<rank {
                    let ag = ab.baseAddress! + g * k
                    for j in rows(ofGroup: g) {
                        let oj = o.baseAddress! + j * k, wj = w + j * k
                        for t in 0..<k { oj[t] = wj[t] * ag[t] }
                    }
                }
            }
        }
        return out
    }

    /// U = x_d · (W ⊙ R(A))ᵀ, then y += s · c ⊙ U.
    @_specialize(where E == Float)
    public func forward(_ y: UnsafeMutablePointer<E>, _ x: UnsafePointer<E>, weight w: UnsafePointer<E>, m: Int) {
        let k = inFeatures, n = outFeatures
        savedRows = m
        input.save(x, count: m * k, dropout: training ? dropout : 0, rng: &rng)
        savedU = [E](repeating: 0, count: m * n)
        E.xwt(&savedU, input.values, scaledWeight(w), m: m, n: n, k: k, accumulate: false)
        let s = scaling
        savedU.withUnsafeBufferPointer { u in
            c.withUnsafeBufferPointer { cb in
                for row in 0..<m {
                    let ur = u.baseAddress! + row * n, yr = y + row * n
                    for j in 0..<n { yr[j] += s * cb[j] * ur[j] }
                }
            }
        }
    }

    /// With dU = s·c ⊙ dy: dc_j += s·Σ_rows dy_j·U_j; dx += (dU·(W ⊙ R(A))) ⊙ mask; and with
    /// G = dUᵀ·x_d, dA_g,t += Σ_{j in g} W_j,t·G_j,t.
    @_specialize(where E == Float)
    public func backward(dx: UnsafeMutablePointer<E>, dy: UnsafePointer<E>, weight w: UnsafePointer<E>, m: Int) {
        precondition(m == savedRows, "SPP backward: \(m) rows, forward saw \(savedRows)")
        let k = inFeatures, n = outFeatures, s = scaling
        var du = [E](repeating: 0, count: m * n)
        du.withUnsafeMutableBufferPointer { d in
            savedU.withUnsafeBufferPointer { u in
                c.withUnsafeBufferPointer { cb in
                    gradC.withUnsafeMutableBufferPointer { gc in
                        for row in 0..<m {
                            let ur = u.baseAddress! + row * n, dyr = dy + row * n, dr = d.baseAddress! + row * n
                            for j in 0..<n {
                                gc[j] += s * dyr[j] * ur[j]
                                dr[j] = s * cb[j] * dyr[j]
                            }
                        }
                    }
                }
            }
        }
        if input.mask.isEmpty {
            E.dyw(dx, du, scaledWeight(w), m: m, n: n, k: k, accumulate: true)
        } else {
            var dxd = [E](repeating: 0, count: m * k)
            E.dyw(&dxd, du, scaledWeight(w), m: m, n: n, k: k, accumulate: false)
            for i in 0..<(m * k) { dx[i] += dxd[i] * input.mask[i] }
        }
        var g = [E](repeating: 0, count: n * k)
        E.dytx(&g, du, input.values, m: m, n: n, k: k, accumulate: false)
        g.withUnsafeBufferPointer { gb in
            gradA.withUnsafeMutableBufferPointer { ga in
                for grp in 0..<rank {
                    let dag = ga.baseAddress! + grp * k
                    for j in rows(ofGroup: grp) {
                        let gj = gb.baseAddress! + j * k, wj = w + j * k
                        for t in 0..<k { dag[t] += wj[t] * gj[t] }
                    }
                }
            }
        }
    }

    public func zeroGradients() {
        for i in gradA.indices { gradA[i] = 0 }
        for i in gradC.indices { gradC[i] = 0 }
    }

    public func visitParameters(_ body: (inout [E], [E]) -> Void) {
        body(&a, gradA)
        body(&c, gradC)
    }

    public func visitGradients(_ body: (inout [E]) throws -> Void) rethrows {
        try body(&gradA)
        try body(&gradC)
    }

    public func skipDropout(rows m: Int) {
        if training && dropout > 0 { rng.skip(m * inFeatures) }
    }

    /// W_j ← W_j ⊙ (1 + s·c_j·a_g(j)) for rows `rows` of W, held in `w`.
    @_specialize(where E == Float)
    static func merge(rows: Range<Int>, into w: UnsafeMutablePointer<E>, a: [E], c: [E], scaling s: E, rank r: Int, outFeatures n: Int) {
        let k = a.count / r
        for j in rows {
            let wj = w + (j - rows.lowerBound) * k, g = j * r / n, cj = s * c[j]
            for t in 0..<k { wj[t] *= 1 + cj * a[g * k + t] }
        }
    }

    /// The merge, with a copy of A and c as they are now.
    public func mergeRows() -> @Sendable (Range<Int>, UnsafeMutablePointer<E>) -> Void {
        let (a, c, s, r, n) = (a, c, scaling, rank, outFeatures)
        return { rows, w in Self.merge(rows: rows, into: w, a: a, c: c, scaling: s, rank: r, outFeatures: n) }
    }
}
