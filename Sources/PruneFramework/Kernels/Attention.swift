import Foundation

/// Causal scaled-dot-product attention of one sequence for one KV head and the query heads that
/// share it (GQA), forward.
///
/// - out: T rows, row stride `outStride`; the group's heads are written at columns
///   `[firstHead·headDim, (firstHead+groupSize)·headDim)`
/// - q: T rows, row stride `qStride`, same columns as out
/// - k, v: S rows (S ≥ T), row stride `kvStride`, this KV head's columns start at k and v
/// - probs: optional (groupSize·T) × S, receives the attention probabilities (for backward)
/// Query row t is at absolute position `S − T + t` and attends to keys `0 ... S−T+t`.
public func attentionForward(out: UnsafeMutablePointer<Float>, outStride: Int,
                             q: UnsafePointer<Float>, qStride: Int,
                             k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvStride: Int,
                             probs: UnsafeMutablePointer<Float>? = nil,
                             T: Int, S: Int, firstHead: Int, groupSize: Int, headDim hd: Int) {
    let m = groupSize * T
    let qg = UnsafeMutablePointer<Float>.allocate(capacity: m * hd)
    let kh = UnsafeMutablePointer<Float>.allocate(capacity: S * hd)
    let vh = UnsafeMutablePointer<Float>.allocate(capacity: S * hd)
    let og = UnsafeMutablePointer<Float>.allocate(capacity: m * hd)
    let p = probs ?? UnsafeMutablePointer<Float>.allocate(capacity: m * S)
    defer {
        qg.deallocate(); kh.deallocate(); vh.deallocate(); og.deallocate()
        if probs == nil { p.deallocate() }
    }
    // Gather the group's queries head-major (row j·T + t) and this head's keys and values.
    for j in 0..<groupSize {
        for t in 0..<T {
            (qg + (j * T + t) * hd).update(from: q + t * qStride + (firstHead + j) * hd, count: hd)
        }
    }
    for s in 0..<S {
        (kh + s * hd).update(from: k + s * kvStride, count: hd)
        (vh + s * hd).update(from: v + s * kvStride, count: hd)
    }
    Matmul.xwt(p, qg, kh, m: m, n: S, k: hd)
    let scale = 1 / Float(hd).squareRoot()
    let past = S - T
    for r in 0..<m {
        let row = p + r * S
        let visible = past + (r % T) + 1
        var mx = -Float.infinity
        for s in 0..<visible {
            row[s] *= scale
            if row[s] > mx { mx = row[s] }
        }
        var sum: Float = 0
        for s in 0..<visible {
            row[s] = expf(row[s] - mx)
            sum += row[s]
        }
        let inv = 1 / sum
        for s in 0..<visible { row[s] *= inv }
        for s in visible..<S { row[s] = 0 }
    }
    Matmul.dyw(og, p, vh, m: m, n: S, k: hd)
    for j in 0..<groupSize {
        for t in 0..<T {
            (out + t * outStride + (firstHead + j) * hd).update(from: og + (j * T + t) * hd, count: hd)
        }
    }
}
