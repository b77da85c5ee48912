import Foundation

/// Knowledge distillation from a teacher's logits (Hinton et al. 2015; Minitron, arXiv 2407.14679,
/// distils pruned models from the dense one this way): the training loss of each predicted token is
///
///     (1 − α) · CE(z, target) + α · τ² · KL(softmax(t/τ) ‖ softmax(z/τ))
///
/// with z the student's logits, t the teacher's, τ the temperature (τ² keeps the KL term's gradient
/// on the scale of the cross-entropy's as τ grows). α = 1 trains on the teacher alone.
public struct Distillation: Codable, Sendable, Equatable {
    public var temperature: Double
    public var alpha: Double

    public init(temperature: Double = 1, alpha: Double = 0.5) {
        self.temperature = temperature
        self.alpha = alpha
    }
}

/// Log-sum-exp of one row of logits divided by `tau`, in Double.
func logSumExp<S: KernelScalar>(_ x: UnsafePointer<S>, count n: Int, dividedBy tau: Double) -> Double {
    var mx = -S.infinity
    for i in 0..<n where x[i] > mx { mx = x[i] }
    let m = Double(mx)
    var s = 0.0
    for i in 0..<n { s += exp((Double(x[i]) - m) / tau) }
    return m / tau + log(s)
}

/// The distillation loss of one row, forward and backward, in place: the student's logits z are
/// replaced by `scale · ∂loss/∂z` = scale · [(1−α)(softmax(z) − onehot) + α·τ·(softmax(z/τ) − softmax(t/τ))].
/// Returns the row's cross-entropy, KL divergence and mixed loss.
///
/// - z: n student logits, overwritten with their gradient
/// - teacher: n teacher logits
public func distillationBackward<S: KernelScalar>(_ z: UnsafeMutablePointer<S>, teacher t: UnsafePointer<S>, count n: Int,
                                                  target: Int, settings kd: Distillation,
                                                  scale: S) -> (ce: Double, kl: Double, loss: Double) {
    let tau = kd.temperature, alpha = kd.alpha
    let lse = logSumExp(UnsafePointer(z), count: n)
    let lseS = logSumExp(UnsafePointer(z), count: n, dividedBy: tau), lseT = logSumExp(t, count: n, dividedBy: tau)
    let ce = lse - Double(z[target])
    var kl = 0.0
    let wCE = Double(scale) * (1 - alpha), wKL = Double(scale) * alpha * tau
    for i in 0..<n {
        let zi = Double(z[i]), ti = Double(t[i])
        let logPT = ti / tau - lseT, logPS = zi / tau - lseS
        let pT = exp(logPT)
        kl += pT * (logPT - logPS)
        z[i] = S(wCE * exp(zi - lse) + wKL * (exp(logPS) - pT))
    }
    z[target] -= S(wCE)
    return (ce, kl, (1 - alpha) * ce + alpha * tau * tau * kl)
}
