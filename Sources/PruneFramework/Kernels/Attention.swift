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
public func attentionForward<E: KernelScalar>(out: UnsafeMutablePointer<E>, outStride: Int,
                                              q: UnsafePointer<E>, qStride: Int,
                                              k: UnsafePointer<E>, v: UnsafePointer<E>, kvStride: Int,
                                              probs: UnsafeMutablePointer<E>? = nil,
                                              T: Int, S: Int, firstHead: Int, groupSize: Int, headDim hd: Int) {
    let m = groupSize * T
    let qg = UnsafeMutablePointer<E>.allocate(capacity: m * hd)
    let kh = UnsafeMutablePointer<E>.allocate(capacity: S * hd)
    let vh = UnsafeMutablePointer<E>.allocate(capacity: S * hd)
    let og = UnsafeMutablePointer<E>.allocate(capacity: m * hd)
    defer { qg.deallocate(); kh.deallocate(); vh.deallocate(); og.deallocate() }
    gatherHeads(qg, q, stride: qStride, T: T, firstHead: firstHead, groupSize: groupSize, headDim: hd)
    gatherRows(kh, k, stride: kvStride, rows: S, headDim: hd)
    gatherRows(vh, v, stride: kvStride, rows: S, headDim: hd)
    let past = S - T
    if let probs {
        // Backward needs every row's probabilities, laid out (groupSize·T) × S.
        E.xwt(probs, qg, kh, m: m, n: S, k: hd, accumulate: false)
        for r in 0..<m { causalSoftmax(probs + r * S, visible: past + (r % T) + 1, width: S, headDim: hd) }
        E.dyw(og, probs, vh, m: m, n: S, k: hd, accumulate: false)
    } else {
        // Tiles of query rows against only the keys they can see: the masked half of Q·Kᵀ is never
        // computed, and the scratch stays small (tile × S) however long the sequence.
        let tile = attentionTileRows
        let p = UnsafeMutablePointer<E>.allocate(capacity: min(tile, T) * S)
        defer { p.deallocate() }
        for j in 0..<groupSize {
            for t0 in stride(from: 0, to: T, by: tile) {
                let rows = min(tile, T - t0), width = past + t0 + rows
                let r0 = j * T + t0
                E.xwt(p, qg + r0 * hd, kh, m: rows, n: width, k: hd, accumulate: false)
                for i in 0..<rows { causalSoftmax(p + i * width, visible: past + t0 + i + 1, width: width, headDim: hd) }
                E.dyw(og + r0 * hd, p, vh, m: rows, n: width, k: hd, accumulate: false)
            }
        }
    }
    scatterHeads(out, og, stride: outStride, T: T, firstHead: firstHead, groupSize: groupSize, headDim: hd)
}

/// Query rows per tile in the forward without saved probabilities.
let attentionTileRows = 64

/// Softmax of scale·row over its first `visible` entries; the rest up to `width` become 0.
@inline(__always)
private func causalSoftmax<E: KernelScalar>(_ row: UnsafeMutablePointer<E>, visible: Int, width: Int, headDim hd: Int) {
    let scale = 1 / E(hd).squareRoot()
    var mx = -E.infinity
    for s in 0..<visible {
        row[s] *= scale
        if row[s] > mx { mx = row[s] }
    }
    var sum: E = 0
    for s in 0..<visible {
        row[s] = E.exponential(row[s] - mx)
        sum += row[s]
    }
    let inv = 1 / sum
    for s in 0..<visible { row[s] *= inv }
    for s in visible..<width { row[s] = 0 }
}

/// Backward of `attentionForward` for one sequence and one KV group. With P the probabilities,
/// O = P·V, P = softmax(scale·Q·Kᵀ): dV = Pᵀ·dO, dP = dO·Vᵀ, dZ = P⊙(dP − rowsum(dP⊙P)),
/// dQ = scale·dZ·K, dK = scale·dZᵀ·Q.
///
/// - dq: T rows, stride `qStride`; the group's head columns are overwritten
/// - dk, dv: S rows, stride `kvStride`, this KV head's columns; overwritten
/// - dout: T rows, stride `qStride`, the gradient of the forward's out
/// - q, k, v, probs: the forward's inputs and its saved probabilities ((groupSize·T) × S)
public func attentionBackward<E: KernelScalar>(dq: UnsafeMutablePointer<E>, dk: UnsafeMutablePointer<E>,
                                               dv: UnsafeMutablePointer<E>, dout: UnsafePointer<E>,
                                               q: UnsafePointer<E>, qStride: Int,
                                               k: UnsafePointer<E>, v: UnsafePointer<E>, kvStride: Int,
                                               probs: UnsafePointer<E>,
                                               T: Int, S: Int, firstHead: Int, groupSize: Int, headDim hd: Int) {
    let m = groupSize * T
    let qg = UnsafeMutablePointer<E>.allocate(capacity: m * hd)
    let dog = UnsafeMutablePointer<E>.allocate(capacity: m * hd)
    let kh = UnsafeMutablePointer<E>.allocate(capacity: S * hd)
    let vh = UnsafeMutablePointer<E>.allocate(capacity: S * hd)
    let dz = UnsafeMutablePointer<E>.allocate(capacity: m * S)
    defer { qg.deallocate(); dog.deallocate(); kh.deallocate(); vh.deallocate(); dz.deallocate() }
    gatherHeads(qg, q, stride: qStride, T: T, firstHead: firstHead, groupSize: groupSize, headDim: hd)
    gatherHeads(dog, dout, stride: qStride, T: T, firstHead: firstHead, groupSize: groupSize, headDim: hd)
    gatherRows(kh, k, stride: kvStride, rows: S, headDim: hd)
    gatherRows(vh, v, stride: kvStride, rows: S, headDim: hd)

    // dV = Pᵀ·dO (S × hd), written into the scratch kh's twin below after K is used; keep it apart.
    let dvh = UnsafeMutablePointer<E>.allocate(capacity: S * hd)
    defer { dvh.deallocate() }
    E.dytx(dvh, probs, dog, m: m, n: S, k: hd, accumulate: false)
    // dP = dO·Vᵀ, then the softmax backward in place, scaled.
    E.xwt(dz, dog, vh, m: m, n: S, k: hd, accumulate: false)
    let scale = 1 / E(hd).squareRoot()
    let past = S - T
    for r in 0..<m {
        let pr = probs + r * S, dr = dz + r * S
        let visible = past + (r % T) + 1
        var dot: E = 0
        for s in 0..<visible { dot += pr[s] * dr[s] }
        for s in 0..<visible { dr[s] = scale * pr[s] * (dr[s] - dot) }
        for s in visible..<S { dr[s] = 0 }
    }
    // dQ = dZ·K (m × hd) into dog (no longer needed), dK = dZᵀ·Q (S × hd) into vh (no longer needed).
    E.dyw(dog, dz, kh, m: m, n: S, k: hd, accumulate: false)
    E.dytx(vh, dz, qg, m: m, n: S, k: hd, accumulate: false)
    scatterHeads(dq, dog, stride: qStride, T: T, firstHead: firstHead, groupSize: groupSize, headDim: hd)
    for s in 0..<S {
        (dk + s * kvStride).update(from: vh + s * hd, count: hd)
        (dv + s * kvStride).update(from: dvh + s * hd, count: hd)
    }
}

/// Copies the group's heads of T rows into a head-major block: row j·T + t holds head firstHead+j of row t.
private func gatherHeads<E>(_ dst: UnsafeMutablePointer<E>, _ src: UnsafePointer<E>, stride: Int, T: Int,
                            firstHead: Int, groupSize: Int, headDim hd: Int) {
    for j in 0..<groupSize {
        for t in 0..<T { (dst + (j * T + t) * hd).update(from: src + t * stride + (firstHead + j) * hd, count: hd) }
    }
}

/// The inverse of `gatherHeads`.
private func scatterHeads<E>(_ dst: UnsafeMutablePointer<E>, _ src: UnsafePointer<E>, stride: Int, T: Int,
                             firstHead: Int, groupSize: Int, headDim hd: Int) {
    for j in 0..<groupSize {
        for t in 0..<T { (dst + t * stride + (firstHead + j) * hd).update(from: src + (j * T + t) * hd, count: hd) }
    }
}

/// Copies `rows` rows of hd values at row stride `stride` into a dense block.
private func gatherRows<E>(_ dst: UnsafeMutablePointer<E>, _ src: UnsafePointer<E>, stride: Int, rows: Int, headDim hd: Int) {
    for s in 0..<rows { (dst + s * hd).update(from: src + s * stride, count: hd) }
}
