import Foundation

/// Log-sum-exp of one row of logits, in Double for a stable NLL.
///
/// - logits: n values
public func logSumExp<S: KernelScalar>(_ logits: UnsafePointer<S>, count n: Int) -> Double {
    var mx = -S.infinity
    for i in 0..<n where logits[i] > mx { mx = logits[i] }
    var s: S = 0
    for i in 0..<n { s += S.exponential(logits[i] - mx) }
    return Double(mx) + log(Double(s))
}

/// Negative log-likelihood of `target` under softmax(logits): logsumexp − logits[target].
public func crossEntropyForward<S: KernelScalar>(_ logits: UnsafePointer<S>, count n: Int, target: Int) -> Double {
    logSumExp(logits, count: n) - Double(logits[target])
}

/// Softmax cross-entropy forward and backward of one row, in place: the logits are replaced by
/// `scale · (softmax(logits) − onehot(target))`, the gradient of `scale · NLL`. Returns the NLL.
///
/// - logits: n values, overwritten with their gradient
public func crossEntropyBackward<S: KernelScalar>(_ logits: UnsafeMutablePointer<S>, count n: Int, target: Int,
                                                  scale: S) -> Double {
    let lse = logSumExp(logits, count: n)
    let nll = lse - Double(logits[target])
    let shift = S(lse)
    for i in 0..<n { logits[i] = scale * S.exponential(logits[i] - shift) }
    logits[target] -= scale
    return nll
}
