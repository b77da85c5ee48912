import Foundation

/// Log-sum-exp of one row of logits, in Double for a stable NLL.
///
/// - logits: n values
public func logSumExp(_ logits: UnsafePointer<Float>, count n: Int) -> Double {
    var mx = -Float.infinity
    for i in 0..<n where logits[i] > mx { mx = logits[i] }
    var s: Float = 0
    for i in 0..<n { s += expf(logits[i] - mx) }
    return Double(mx) + log(Double(s))
}

/// Negative log-likelihood of `target` under softmax(logits): logsumexp − logits[target].
public func crossEntropyForward(_ logits: UnsafePointer<Float>, count n: Int, target: Int) -> Double {
    logSumExp(logits, count: n) - Double(logits[target])
}
