import Foundation

/// Cosine and sine tables of rotary position embeddings for positions `0..<maxPositions`.
///
/// Pair i of a head rotates by `pos · base^(−2i/headDim)`. The tables are row-major
/// `maxPositions × headDim/2`.
public struct RoPETable: Sendable {
    public let headDim: Int
    public let base: Float
    public private(set) var maxPositions: Int = 0
    public private(set) var cos: [Float] = []
    public private(set) var sin: [Float] = []

    public init(headDim: Int, base: Float, maxPositions: Int) {
        self.headDim = headDim
        self.base = base
        grow(to: maxPositions)
    }

    /// Extends the tables so they cover `n` positions.
    public mutating func grow(to n: Int) {
        guard n > maxPositions else { return }
        let half = headDim / 2
        var c = [Float](repeating: 0, count: n * half), s = c
        for p in 0..<n {
            for i in 0..<half {
                let theta = Double(p) * pow(Double(base), -2.0 * Double(i) / Double(headDim))
                c[p * half + i] = Float(Foundation.cos(theta))
                s[p * half + i] = Float(Foundation.sin(theta))
            }
        }
        cos = c
        sin = s
        maxPositions = n
    }
}

/// RoPE forward in the GGUF layout (rotates adjacent pairs x[2i], x[2i+1]), in place.
///
/// - x: rows × (nHeads·headDim), row r holds the token at position `positions(r)`
/// - cos, sin: tables from RoPETable
public func ropeForward<S: KernelScalar>(_ x: UnsafeMutablePointer<S>, rows: Int, nHeads: Int, headDim: Int,
                                         positions: (Int) -> Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                         layout: RoPELayout = .adjacentPairs) {
    ropeRotate(x, rows: rows, nHeads: nHeads, headDim: headDim, positions: positions, cos: cos, sin: sin, sign: 1, layout: layout)
}

/// RoPE backward, in place: the gradient goes through the transposed rotation, i.e. rotation by −θ.
public func ropeBackward<S: KernelScalar>(_ dx: UnsafeMutablePointer<S>, rows: Int, nHeads: Int, headDim: Int,
                                          positions: (Int) -> Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                          layout: RoPELayout = .adjacentPairs) {
    ropeRotate(dx, rows: rows, nHeads: nHeads, headDim: headDim, positions: positions, cos: cos, sin: sin, sign: -1, layout: layout)
}

private func ropeRotate<S: KernelScalar>(_ x: UnsafeMutablePointer<S>, rows: Int, nHeads: Int, headDim: Int,
                                         positions: (Int) -> Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                                         sign: Float, layout: RoPELayout) {
    let half = headDim / 2, stride = nHeads * headDim
    // Pair i is (2i, 2i+1) in the adjacent layout and (i, i + half) in the halves layout.
    let (first, second) = layout == .adjacentPairs ? (2, 1) : (1, half)
    for r in 0..<rows {
        let p = positions(r)
        let c = cos + p * half, s = sin + p * half
        for h in 0..<nHeads {
            let v = x + r * stride + h * headDim
            for i in 0..<half {
                let j = first * i, k = j + second
                let a = v[j], b = v[k], ci = S(c[i]), si = S(sign * s[i])
                v[j] = a * ci - b * si
                v[k] = a * si + b * ci
            }
        }
    }
}
