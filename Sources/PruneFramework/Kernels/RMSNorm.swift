import Foundation

/// RMSNorm forward: `out[r,:] = x[r,:] · rstd[r] · weight`, rstd = 1/sqrt(mean(x[r,:]²) + eps).
///
/// - out: rows × dim (may alias x)
/// - x: rows × dim
/// - weight: dim
/// - rstd: optional rows, receives each row's rstd (the backward pass needs it)
public func rmsnormForward<S: KernelScalar>(_ out: UnsafeMutablePointer<S>, _ rstd: UnsafeMutablePointer<S>?,
                                            _ x: UnsafePointer<S>, _ weight: UnsafePointer<S>,
                                            rows: Int, dim: Int, eps: S) {
    for r in 0..<rows {
        let xr = x + r * dim, o = out + r * dim
        var ss: S = 0
        for i in 0..<dim { ss += xr[i] * xr[i] }
        let s = 1 / (ss / S(dim) + eps).squareRoot()
        rstd?[r] = s
        for i in 0..<dim { o[i] = xr[i] * s * weight[i] }
    }
}

/// RMSNorm backward. With y = x·r·w and r = (mean(x²)+eps)^(−1/2):
/// dx = r·(dy⊙w) − x·r³·⟨dy⊙w, x⟩/dim, dw = Σ_rows dy⊙x·r.
///
/// - dx: rows × dim, accumulated into (+=)
/// - dweight: dim, accumulated into; nil when the weight is frozen
/// - dy, x: rows × dim; rstd: rows, from the forward
public func rmsnormBackward<S: KernelScalar>(_ dx: UnsafeMutablePointer<S>, _ dweight: UnsafeMutablePointer<S>?,
                                             _ dy: UnsafePointer<S>, _ x: UnsafePointer<S>, _ weight: UnsafePointer<S>,
                                             _ rstd: UnsafePointer<S>, rows: Int, dim: Int) {
    for r in 0..<rows {
        let xr = x + r * dim, g = dy + r * dim, d = dx + r * dim
        let s = rstd[r]
        var dot: S = 0
        for i in 0..<dim { dot += g[i] * weight[i] * xr[i] }
        let c = dot * s * s * s / S(dim)
        for i in 0..<dim { d[i] += s * g[i] * weight[i] - c * xr[i] }
        if let dweight {
            for i in 0..<dim { dweight[i] += g[i] * xr[i] * s }
        }
    }
}
