/// Naive reference products: the definitions the fast kernels are tested against (Double sums).
extension Matmul {
    /// Y[m×n] (+)= X[m×k] · Wᵀ, W n×k.
    public static func naiveXWT(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                _ w: UnsafePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool = false) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(x[i * k + p]) * Double(w[j * k + p]) }
                y[i * n + j] = accumulate ? y[i * n + j] + Float(s) : Float(s)
            }
        }
    }

    /// dX[m×k] (+)= dY[m×n] · W[n×k].
    public static func naiveDYW(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ w: UnsafePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool = false) {
        for i in 0..<m {
            for c in 0..<k {
                var s = 0.0
                for j in 0..<n { s += Double(dy[i * n + j]) * Double(w[j * k + c]) }
                dx[i * k + c] = accumulate ? dx[i * k + c] + Float(s) : Float(s)
            }
        }
    }

    /// dW[n×k] (+)= dYᵀ · X, dY m×n, X m×k.
    public static func naiveDYTX(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                 _ x: UnsafePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool = false) {
        for j in 0..<n {
            for c in 0..<k {
                var s = 0.0
                for i in 0..<m { s += Double(dy[i * n + j]) * Double(x[i * k + c]) }
                dw[j * k + c] = accumulate ? dw[j * k + c] + Float(s) : Float(s)
            }
        }
    }
}
