import Foundation

/// The summed negative log-likelihood of next-token predictions.
public struct NLLResult: Sendable {
    /// Sum of −log p(token[t+1] | tokens[...t]) over every predicted token, in nats.
    public var sum: Double
    /// Number of predicted tokens.
    public var count: Int
    /// Per-token NLL, sequence-major: seqLen−1 entries per sequence.
    public var perToken: [Float]
    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
}

extension Transformer {
    /// Final-norm hidden states of a batch: `batch·seqLen × hiddenSize`, row-major.
    ///
    /// - tokens: batch·seqLen ids, sequence-major
    /// - cache: for incremental decoding of one sequence (batch must be 1); positions continue from it
    public func hiddenStates(tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache? = nil,
                             observer: ForwardObserver? = nil) throws -> [Float] {
        try checkTokens(tokens, batch: B, seqLen: T, cache: cache)
        let c = config, D = c.hiddenSize, N = B * T
        let startPos = cache?.length ?? 0
        var x = [Float](repeating: 0, count: N * D)
        let emb = params.pointer(TensorNames.tokenEmbedding)
        x.withUnsafeMutableBufferPointer { xb in
            for r in 0..<N { (xb.baseAddress! + r * D).update(from: emb + Int(tokens[r]) * D, count: D) }
        }
        let table = ropeTables(upTo: startPos + T)
        var h = [Float](repeating: 0, count: N * D)
        for l in 0..<c.nLayers {
            x.withUnsafeMutableBufferPointer { xb in
                h.withUnsafeMutableBufferPointer { hb in
                    block(l, x: xb.baseAddress!, h: hb.baseAddress!, B: B, T: T, startPos: startPos,
                          cache: cache, rope: table, observer: observer)
                }
            }
        }
        cache?.advance(by: T)
        x.withUnsafeMutableBufferPointer { xb in
            rmsnormForward(xb.baseAddress!, nil, xb.baseAddress!, params.pointer(TensorNames.outputNorm),
                           rows: N, dim: D, eps: c.rmsEps)
        }
        return x
    }

    /// Logits of every position: `batch·seqLen × vocabSize`, row-major.
    public func logits(tokens: [Int32], batch: Int, seqLen: Int, observer: ForwardObserver? = nil) throws -> [Float] {
        let hs = try hiddenStates(tokens: tokens, batch: batch, seqLen: seqLen, observer: observer)
        let N = batch * seqLen, V = config.vocabSize
        var out = [Float](repeating: 0, count: N * V)
        out.withUnsafeMutableBufferPointer { ob in
            hs.withUnsafeBufferPointer { hb in
                Matmul.xwt(ob.baseAddress!, hb.baseAddress!, packed(outputWeightName), m: N)
            }
        }
        return out
    }

    /// Summed next-token NLL of each sequence (tokens[t+1] predicted from tokens[...t]).
    public func nll(tokens: [Int32], batch B: Int, seqLen T: Int, observer: ForwardObserver? = nil) throws -> NLLResult {
        let hs = try hiddenStates(tokens: tokens, batch: B, seqLen: T, observer: observer)
        let D = config.hiddenSize, V = config.vocabSize
        // Rows with a target: every position but the last of each sequence.
        let rows = (0..<B).flatMap { b in (0..<(T - 1)).map { b * T + $0 } }
        var per = [Float](repeating: 0, count: rows.count)
        let chunk = 64
        let head = packed(outputWeightName)
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: chunk * D)
        let lg = UnsafeMutablePointer<Float>.allocate(capacity: chunk * V)
        defer { xs.deallocate(); lg.deallocate() }
        hs.withUnsafeBufferPointer { hb in
            per.withUnsafeMutableBufferPointer { pb in
                let perBase = pb.baseAddress!
                var i0 = 0
                while i0 < rows.count {
                    let n = min(chunk, rows.count - i0)
                    for i in 0..<n { (xs + i * D).update(from: hb.baseAddress! + rows[i0 + i] * D, count: D) }
                    Matmul.xwt(lg, xs, head, m: n)
                    let base = i0
                    DispatchQueue.concurrentPerform(iterations: n) { i in
                        let target = Int(tokens[rows[base + i] + 1])
                        perBase[base + i] = Float(crossEntropyForward(lg + i * V, count: V, target: target))
                    }
                    i0 += n
                }
            }
        }
        let sum = per.reduce(0.0) { $0 + Double($1) }
        return NLLResult(sum: sum, count: per.count, perToken: per)
    }

    /// Feeds `tokens` of one sequence through the cache and returns the logits of the last one.
    public func decode(tokens: [Int32], cache: KVCache) throws -> [Float] {
        let hs = try hiddenStates(tokens: tokens, batch: 1, seqLen: tokens.count, cache: cache)
        let D = config.hiddenSize, V = config.vocabSize
        var out = [Float](repeating: 0, count: V)
        out.withUnsafeMutableBufferPointer { ob in
            hs.withUnsafeBufferPointer { hb in
                Matmul.xwt(ob.baseAddress!, hb.baseAddress! + (tokens.count - 1) * D, packed(outputWeightName), m: 1)
            }
        }
        return out
    }

    /// Runs `sequences` through the decoder one layer at a time, the way Wanda and SparseGPT
    /// calibrate: layer l's inputs, computed by the layers before it as they are now, are shown to
    /// `observer` while layer l is unchanged; then `update(l)` may change layer l's weights (calling
    /// `params.markModified()`), and layer l runs again to produce the next layer's inputs. The
    /// residual stream of every sequence is kept between layers (sequences·seqLen·hiddenSize floats).
    public func layerByLayer(sequences: [[Int32]], observer: ForwardObserver,
                             update: (Int) throws -> Void) throws {
        guard let T = sequences.first?.count else { return }
        let D = config.hiddenSize
        let batch = max(1, 1024 / T)
        let chunks = stride(from: 0, to: sequences.count, by: batch).map { $0..<min($0 + batch, sequences.count) }
        let emb = params.pointer(TensorNames.tokenEmbedding)
        var streams = try chunks.map { r -> [Float] in
            let tokens = Array(sequences[r].joined())
            try checkTokens(tokens, batch: r.count, seqLen: T, cache: nil)
            var x = [Float](repeating: 0, count: tokens.count * D)
            x.withUnsafeMutableBufferPointer { xb in
                for (i, t) in tokens.enumerated() { (xb.baseAddress! + i * D).update(from: emb + Int(t) * D, count: D) }
            }
            return x
        }
        let table = ropeTables(upTo: T)
        var h = [Float](repeating: 0, count: batch * T * D)
        func run(_ l: Int, _ x: inout [Float], _ B: Int, _ observer: ForwardObserver?) {
            x.withUnsafeMutableBufferPointer { xb in
                h.withUnsafeMutableBufferPointer { hb in
                    block(l, x: xb.baseAddress!, h: hb.baseAddress!, B: B, T: T, startPos: 0, cache: nil, rope: table, observer: observer)
                }
            }
        }
        for l in 0..<config.nLayers {
            var outputs = streams
            for (i, r) in chunks.enumerated() { run(l, &outputs[i], r.count, observer) }
            let before = params.version
            try update(l)
            if params.version == before {
                streams = outputs
            } else {
                for (i, r) in chunks.enumerated() { run(l, &streams[i], r.count, nil) }
            }
        }
    }

    private func checkTokens(_ tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache?) throws {
        guard B > 0, T > 0, tokens.count == B * T else {
            throw PruneError(.shapeMismatch, "forward: \(tokens.count) tokens do not make \(B) sequences of \(T)")
        }
        if let cache {
            guard B == 1 else { throw PruneError(.invalidArgument, "forward: a KV cache takes one sequence, got \(B)") }
            guard cache.length + T <= cache.capacity else {
                throw PruneError(.outOfRange, "forward: KV cache holds \(cache.capacity) positions; \(cache.length + T) needed")
            }
        }
        for (i, t) in tokens.enumerated() where t < 0 || Int(t) >= config.vocabSize {
            throw PruneError(.outOfRange, "forward: token id '\(t)' at index \(i) is outside the vocabulary [0, \(config.vocabSize))")
        }
    }

    /// One decoder block, in place on the residual stream x (N × D); h is N × D scratch.
    private func block(_ l: Int, x: UnsafeMutablePointer<Float>, h: UnsafeMutablePointer<Float>, B: Int, T: Int,
                       startPos: Int, cache: KVCache?, rope: RoPETable, observer: ForwardObserver?) {
        let c = config, D = c.hiddenSize, N = B * T, hd = c.headDim
        let nH = c.nHead[l], nKV = c.nKVHead[l], F = c.ffnDim[l]
        let qDim = nH * hd, kvDim = nKV * hd
        func see(_ site: ActivationSite, _ p: UnsafeMutablePointer<Float>, _ cols: Int) {
            observer?.observe(layer: l, site: site, activations: UnsafeBufferPointer(start: p, count: N * cols), rows: N, cols: cols)
        }
        see(.blockInput, x, D)
        rmsnormForward(h, nil, x, params.pointer(TensorNames.attnNorm(l)), rows: N, dim: D, eps: c.rmsEps)
        see(.attnInput, h, D)
        let q = UnsafeMutablePointer<Float>.allocate(capacity: N * qDim)
        let att = UnsafeMutablePointer<Float>.allocate(capacity: N * qDim)
        let kNew = UnsafeMutablePointer<Float>.allocate(capacity: N * kvDim)
        let vNew = UnsafeMutablePointer<Float>.allocate(capacity: N * kvDim)
        defer { q.deallocate(); att.deallocate(); kNew.deallocate(); vNew.deallocate() }
        Matmul.xwt(q, h, packed(TensorNames.attnQ(l)), m: N)
        Matmul.xwt(kNew, h, packed(TensorNames.attnK(l)), m: N)
        Matmul.xwt(vNew, h, packed(TensorNames.attnV(l)), m: N)
        rope.cos.withUnsafeBufferPointer { cb in
            rope.sin.withUnsafeBufferPointer { sb in
                let pos = { (r: Int) in startPos + r % T }
                ropeForward(q, rows: N, nHeads: nH, headDim: hd, positions: pos, cos: cb.baseAddress!, sin: sb.baseAddress!)
                ropeForward(kNew, rows: N, nHeads: nKV, headDim: hd, positions: pos, cos: cb.baseAddress!, sin: sb.baseAddress!)
            }
        }
        var keys = UnsafePointer(kNew), values = UnsafePointer(vNew), S = T
        if let cache {
            (cache.keys[l] + startPos * kvDim).update(from: kNew, count: T * kvDim)
            (cache.values[l] + startPos * kvDim).update(from: vNew, count: T * kvDim)
            keys = UnsafePointer(cache.keys[l])
            values = UnsafePointer(cache.values[l])
            S = startPos + T
        }
        let group = nH / nKV
        DispatchQueue.concurrentPerform(iterations: B * nKV) { job in
            let b = job / nKV, g = job % nKV
            attentionForward(out: att + b * T * qDim, outStride: qDim, q: q + b * T * qDim, qStride: qDim,
                             k: keys + b * S * kvDim + g * hd, v: values + b * S * kvDim + g * hd, kvStride: kvDim,
                             T: T, S: S, firstHead: g * group, groupSize: group, headDim: hd)
        }
        see(.attnOutputInput, att, qDim)
        Matmul.xwt(x, att, packed(TensorNames.attnOutput(l)), m: N, accumulate: true)

        rmsnormForward(h, nil, x, params.pointer(TensorNames.ffnNorm(l)), rows: N, dim: D, eps: c.rmsEps)
        see(.mlpInput, h, D)
        let gate = UnsafeMutablePointer<Float>.allocate(capacity: N * F)
        let up = UnsafeMutablePointer<Float>.allocate(capacity: N * F)
        defer { gate.deallocate(); up.deallocate() }
        Matmul.xwt(gate, h, packed(TensorNames.ffnGate(l)), m: N)
        Matmul.xwt(up, h, packed(TensorNames.ffnUp(l)), m: N)
        swigluForward(gate, gate, up, count: N * F)
        see(.mlpIntermediate, gate, F)
        Matmul.xwt(x, gate, packed(TensorNames.ffnDown(l)), m: N, accumulate: true)
        see(.blockOutput, x, D)
    }
}
