import Foundation

/// RMSNorm forward: `out[r,:] = x[r,:] / sqrt(mean(x[r,:]²) + eps) * weight`.
///
/// - out: rows × dim (may alias x)
/// - x: rows × dim
/// - weight: dim
/// - rstd: optional rows, receives 1/sqrt(mean(x²)+eps) per row (the backward pass needs it)
public func rmsnormForward(_ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?,
                           _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                           rows: Int, dim: Int, eps: Float) {
    for r in 0..<rows {
        let xr = x + r * dim, o = out + r * dim
        var ss: Float = 0
        for i in 0..<dim { ss += xr[i] * xr[i] }
        let s = 1 / (ss / Float(dim) + eps).squareRoot()
        rstd?[r] = s
        for i in 0..<dim { o[i] = xr[i] * s * weight[i] }
    }
}
