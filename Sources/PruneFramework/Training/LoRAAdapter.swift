import Foundation

/// A low-rank adapter on one linear layer (Hu et al., LoRA): y = x·Wᵀ + (α/r)·dropout(x)·Aᵀ·Bᵀ.
///
/// A (r × k) starts uniform in ±1/√k and B (n × r) at zero, as in PEFT, so an attached adapter does
/// not change the model until it trains. Forward and backward of the adapter's path are here; the
/// frozen W's part is the linear layer's own.
public final class LoRAAdapter<E: KernelScalar>: LinearAdapter {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    /// α / r.
    public let scaling: E
    /// Probability of zeroing an input element during training (0 disables dropout).
    public let dropout: Double
    public var training = true
    /// r × k, row-major.
    public var a: [E]
    /// n × r, row-major.
    public var b: [E]
    public var gradA: [E]
    public var gradB: [E]

    private var rng: SplitMix64
    private var input = DroppedInput<E>()
    private var savedH: [E] = []
    private var savedRows = 0

    public init(inFeatures k: Int, outFeatures n: Int, rank r: Int, alpha: Double, dropout: Double, seed: UInt64) {
        rank = r
        inFeatures = k
        outFeatures = n
        scaling = E(alpha / Double(r))
        self.dropout = dropout
        rng = SplitMix64(seed: seed)
        a = adapterRowMatrix(rank: r, inFeatures: k, rng: &rng)
        b = [E](repeating: 0, count: n * r)
        gradA = [E](repeating: 0, count: r * k)
        gradB = [E](repeating: 0, count: n * r)
    }

    public var parameterCount: Int { a.count + b.count }

    /// y (m × n) += scaling · dropout(x)·Aᵀ·Bᵀ; keeps what the backward needs (W is not read).
    @_specialize(where E == Float)
    public func forward(_ y: UnsafeMutablePointer<E>, _ x: UnsafePointer<E>, weight: UnsafePointer<E>, m: Int) {
        let k = inFeatures, n = outFeatures, r = rank
        savedRows = m
        input.save(x, count: m * k, dropout: training ? dropout : 0, rng: &rng)
        savedH = [E](repeating: 0, count: m * r)
        input.values.withUnsafeBufferPointer { xb in
            savedH.withUnsafeMutableBufferPointer { hb in
                a.withUnsafeBufferPointer { ab in
                    E.xwt(hb.baseAddress!, xb.baseAddress!, ab.baseAddress!, m: m, n: r, k: k, accumulate: false)
                }
                for i in 0..<(m * r) { hb[i] *= scaling }
                b.withUnsafeBufferPointer { bb in
                    E.xwt(y, hb.baseAddress!, bb.baseAddress!, m: m, n: n, k: r, accumulate: true)
                }
            }
        }
    }

    /// With u = s·x_d·Aᵀ saved (x_d the dropped-out input): dB += dyᵀ·u, dh = s·dy·B, dA += dhᵀ·x_d,
    /// dx += (dh·A) ⊙ mask.
    @_specialize(where E == Float)
    public func backward(dx: UnsafeMutablePointer<E>, dy: UnsafePointer<E>, weight: UnsafePointer<E>, m: Int) {
        precondition(m == savedRows, "LoRA backward: \(m) rows, forward saw \(savedRows)")
        let k = inFeatures, n = outFeatures, r = rank
        var dh = [E](repeating: 0, count: m * r)
        savedH.withUnsafeBufferPointer { hb in
            gradB.withUnsafeMutableBufferPointer { gb in
                E.dytx(gb.baseAddress!, dy, hb.baseAddress!, m: m, n: n, k: r, accumulate: true)
            }
        }
        dh.withUnsafeMutableBufferPointer { db in
            b.withUnsafeBufferPointer { bb in
                E.dyw(db.baseAddress!, dy, bb.baseAddress!, m: m, n: n, k: r, accumulate: false)
            }
            for i in 0..<(m * r) { db[i] *= scaling }
            input.values.withUnsafeBufferPointer { xb in
                gradA.withUnsafeMutableBufferPointer { gb in
                    E.dytx(gb.baseAddress!, db.baseAddress!, xb.baseAddress!, m: m, n: r, k: k, accumulate: true)
                }
            }
            a.withUnsafeBufferPointer { ab in
                if input.mask.isEmpty {
                    E.dyw(dx, db.baseAddress!, ab.baseAddress!, m: m, n: r, k: k, accumulate: true)
                } else {
                    var dxd = [E](repeating: 0, count: m * k)
                    dxd.withUnsafeMutableBufferPointer { xb in
                        E.dyw(xb.baseAddress!, db.baseAddress!, ab.baseAddress!, m: m, n: r, k: k, accumulate: false)
                    }
                    for i in 0..<(m * k) { dx[i] += dxd[i] * input.mask[i] }
                }
            }
        }
    }

    /// Adds rows `rows` of scaling·B·A into `w`, which holds those rows of the weight.
    @_specialize(where E == Float)
    static func merge(rows: Range<Int>, into w: UnsafeMutablePointer<E>, a: [E], b: [E], scaling: E, rank r: Int, inFeatures k: Int) {
        for j in rows {
            let wj = w + (j - rows.lowerBound) * k
            for i in 0..<r {
                let s = scaling * b[j * r + i]
                if s == 0 { continue }
                for c in 0..<k { wj[c] += s * a[i * k + c] }
            }
        }
    }

    /// The merge W += scaling·B·A, row by row, with a copy of A and B as they are now.
    public func mergeRows() -> @Sendable (Range<Int>, UnsafeMutablePointer<E>) -> Void {
        let (a, b, s, r, k) = (a, b, scaling, rank, inFeatures)
        return { rows, w in Self.merge(rows: rows, into: w, a: a, b: b, scaling: s, rank: r, inFeatures: k) }
    }

    public func visitParameters(_ body: (inout [E], [E]) -> Void) {
        body(&a, gradA)
        body(&b, gradB)
    }

    public func visitGradients(_ body: (inout [E]) throws -> Void) rethrows {
        try body(&gradA)
        try body(&gradB)
    }

    public func skipDropout(rows m: Int) {
        if training && dropout > 0 { rng.skip(m * inFeatures) }
    }

    public func zeroGradients() {
        for i in gradA.indices { gradA[i] = 0 }
        for i in gradB.indices { gradB[i] = 0 }
    }
}
