import Foundation

/// The scalar types the model's kernels run in.
///
/// `Float` is the working type: its products go to the packed C kernels of `Matmul`. `Double` exists for
/// gradient checks: finite differences of a Double forward are accurate to ~1e-10, so they can judge the
/// hand-written backward pass, and the kernels under test are the same generic code the Float path runs.
public protocol KernelScalar: BinaryFloatingPoint, Sendable {
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
    /// Y[m×n] (+)= X[m×k] · Wᵀ, W n×k row-major.
    static func xwt(_ y: UnsafeMutablePointer<Self>, _ x: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
                    m: Int, n: Int, k: Int, accumulate: Bool)
    /// dX[m×k] (+)= dY[m×n] · W[n×k].
    static func dyw(_ dx: UnsafeMutablePointer<Self>, _ dy: UnsafePointer<Self>, _ w: UnsafePointer<Self>,
                    m: Int, n: Int, k: Int, accumulate: Bool)
    /// dW[n×k] (+)= dYᵀ · X, dY m×n, X m×k.
    static func dytx(_ dw: UnsafeMutablePointer<Self>, _ dy: UnsafePointer<Self>, _ x: UnsafePointer<Self>,
                     m: Int, n: Int, k: Int, accumulate: Bool)
}

extension Float: KernelScalar {
    @inline(__always) public static func exponential(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func logarithm(_ x: Float) -> Float { logf(x) }
    public static func xwt(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                           m: Int, n: Int, k: Int, accumulate: Bool) {
        Matmul.xwt(y, x, w, m: m, n: n, k: k, accumulate: accumulate)
    }
    public static func dyw(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                           m: Int, n: Int, k: Int, accumulate: Bool) {
        Matmul.dyw(dx, dy, w, m: m, n: n, k: k, accumulate: accumulate)
    }
    public static func dytx(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                            m: Int, n: Int, k: Int, accumulate: Bool) {
        Matmul.dytx(dw, dy, x, m: m, n: n, k: k, accumulate: accumulate)
    }
}

/// Plain triple loops: Double is only used on tiny models.
extension Double: KernelScalar {
    @inline(__always) public static func exponential(_ x: Double) -> Double { exp(x) }
    @inline(__always) public static func logarithm(_ x: Double) -> Double { log(x) }
    public static func xwt(_ y: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Double>, _ w: UnsafePointer<Double>,
                           m: Int, n: Int, k: Int, accumulate: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += x[i * k + p] * w[j * k + p] }
                y[i * n + j] = accumulate ? y[i * n + j] + s : s
            }
        }
    }
    public static func dyw(_ dx: UnsafeMutablePointer<Double>, _ dy: UnsafePointer<Double>, _ w: UnsafePointer<Double>,
                           m: Int, n: Int, k: Int, accumulate: Bool) {
        for i in 0..<m {
            for c in 0..<k {
                var s = 0.0
                for j in 0..<n { s += dy[i * n + j] * w[j * k + c] }
                dx[i * k + c] = accumulate ? dx[i * k + c] + s : s
            }
        }
    }
    public static func dytx(_ dw: UnsafeMutablePointer<Double>, _ dy: UnsafePointer<Double>, _ x: UnsafePointer<Double>,
                            m: Int, n: Int, k: Int, accumulate: Bool) {
        for j in 0..<n {
            for c in 0..<k {
                var s = 0.0
                for i in 0..<m { s += dy[i * n + j] * x[i * k + c] }
                dw[j * k + c] = accumulate ? dw[j * k + c] + s : s
            }
        }
    }
}
