/// The scale searches of the K-quants: ggml's `make_qkx2_quants` (asymmetric: a scale and a min,
/// Q4_K and Q5_K) and `make_qx_quants` with `rmse_type` 1 and no importance weights (symmetric,
/// Q6_K), from ggml-quants.c, with every float operation in ggml's order.

/// Finds a scale and a min for `x[0..<n]` with codes 0...nmax: starting from (max − min)/nmax,
/// tries iscale = (rmin + rdelta·k + nmax)/(max − min) for k = 0...steps, fits scale and min to
/// each candidate's codes by weighted least squares, and keeps the one with the smallest
/// weighted squared error.
///
/// - x, weights: n values; codes: n outputs (0...nmax); candidate: n scratch
/// - Returns the scale and the min as ggml stores it (`the_min`, ≥ 0: x ≈ scale·q − min).
func makeQKX2Quants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                    _ codes: UnsafeMutablePointer<UInt8>, _ candidate: UnsafeMutablePointer<UInt8>,
                    rmin: Float, rdelta: Float, steps: Int) -> (scale: Float, min: Float) {
    var lo = x[0], hi = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < lo { lo = x[i] }
        if x[i] > hi { hi = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if lo > 0 { lo = 0 }
    if hi == lo {
        for i in 0..<n { codes[i] = 0 }
        return (0, -lo)
    }
    let fmax = Float(nmax)
    var iscale = fmax / (hi - lo)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        codes[i] = UInt8(max(0, min(nmax, nearestInt(iscale * (x[i] - lo)))))
        var diff = scale * Float(codes[i]) + lo - x[i]
        diff = diff * diff
        bestError += weights[i] * diff
    }
    for step in 0...steps {
        iscale = (rmin + rdelta * Float(step) + fmax) / (hi - lo)
        var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
        for i in 0..<n {
            let l = max(0, min(nmax, nearestInt(iscale * (x[i] - lo))))
            candidate[i] = UInt8(l)
            let w = weights[i], fl = Float(l)
            sumL += w * fl
            sumL2 += w * fl * fl
            sumXL += w * fl * x[i]
        }
        let det = sumW * sumL2 - sumL * sumL
        guard det > 0 else { continue }
        var thisScale = (sumW * sumXL - sumX * sumL) / det
        var thisMin = (sumL2 * sumX - sumL * sumXL) / det
        if thisMin > 0 {
            thisMin = 0
            thisScale = sumXL / sumL2
        }
        var error: Float = 0
        for i in 0..<n {
            var diff = thisScale * Float(candidate[i]) + thisMin - x[i]
            diff = diff * diff
            error += weights[i] * diff
        }
        if error < bestError {
            codes.update(from: candidate, count: n)
            bestError = error
            scale = thisScale
            lo = thisMin
        }
    }
    return (scale, -lo)
}

/// Finds a signed scale for `x[0..<n]` with codes −nmax...nmax−1 (stored as code + nmax): from
/// −nmax/max (max: the signed value of largest magnitude) and the 18 neighbours
/// −(nmax + 0.1·k)/max, k = ±1...±9, keeps the one maximising (Σ w·x·l)²/Σ w·l², w = x².
///
/// - x: n values; codes: n outputs (0..<2·nmax)
/// - Returns the least-squares scale of the chosen codes (0 for an all-zero group).
func makeQXQuants(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ codes: UnsafeMutablePointer<UInt8>) -> Float {
    var m: Float = 0, amax: Float = 0
    for i in 0..<n where abs(x[i]) > amax {
        amax = abs(x[i])
        m = x[i]
    }
    if amax < 1e-15 {
        for i in 0..<n { codes[i] = 0 }
        return 0
    }
    let fmax = Float(nmax)
    func code(_ iscale: Float, _ i: Int) -> Int32 { max(-nmax, min(nmax - 1, nearestInt(iscale * x[i]))) }
    func sums(_ iscale: Float) -> (Float, Float) {
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let w = x[i] * x[i], fl = Float(code(iscale, i))
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        return (sumLX, sumL2)
    }
    var iscale = -fmax / m
    for i in 0..<n { codes[i] = UInt8(code(iscale, i) + nmax) }
    var (sumLX, sumL2) = sums(iscale)
    var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
    var best = scale * sumLX
    for k in -9...9 where k != 0 {
        iscale = -(fmax + 0.1 * Float(k)) / m
        (sumLX, sumL2) = sums(iscale)
        if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
            for i in 0..<n { codes[i] = UInt8(code(iscale, i) + nmax) }
            scale = sumLX / sumL2
            best = scale * sumLX
        }
    }
    return scale
}
