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
        x.withUnsafeMutableBufferPointer { embed(tokens, into: $0.baseAddress!) }
        let table = ropeTables(upTo: startPos + T)
        for l in 0..<c.nLayers {
            x.withUnsafeMutableBufferPointer { xb in
                block(l, x: xb.baseAddress!, B: B, T: T, startPos: startPos, cache: cache, rope: table, observer: observer)
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
                multiply(ob.baseAddress!, hb.baseAddress! + (tokens.count - 1) * D, outputWeightName, m: 1)
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
        var streams = try chunks.map { r -> [Float] in
            let tokens = Array(sequences[r].joined())
            try checkTokens(tokens, batch: r.count, seqLen: T, cache: nil)
            var x = [Float](repeating: 0, count: tokens.count * D)
            x.withUnsafeMutableBufferPointer { embed(tokens, into: $0.baseAddress!) }
            return x
        }
        let table = ropeTables(upTo: T)
        func run(_ l: Int, _ x: inout [Float], _ B: Int, _ observer: ForwardObserver?) {
            x.withUnsafeMutableBufferPointer { xb in
                block(l, x: xb.baseAddress!, B: B, T: T, startPos: 0, cache: nil, rope: table, observer: observer)
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

    func checkTokens(_ tokens: [Int32], batch B: Int, seqLen T: Int, cache: KVCache?) throws {
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

    /// One decoder block of the f32 forward, in place on the residual stream x (B·T × D).
    func block(_ l: Int, x: UnsafeMutablePointer<Float>, B: Int, T: Int, startPos: Int, cache: KVCache?,
               rope: RoPETable, observer: ForwardObserver?) {
        let kernels = F32Kernels(model: self, rope: rope, startPos: startPos, cache: cache, observer: observer)
        decoderBlock(kernels, layer: l, x: x, B: B, T: T, positions: { startPos + $0 % T },
                     into: LayerActivations(config, layer: l, B: B, T: T, keeps: false))
    }
}

/// The f32 forward's kernels: packed matmuls, KV cache for incremental decoding, causal attention
/// that skips masked tiles and keeps no probabilities, and an observer that sees the activations.
struct F32Kernels: BlockKernels {
    let model: Transformer
    let rope: RoPETable
    let startPos: Int
    let cache: KVCache?
    let observer: ForwardObserver?
    var config: ModelConfig { model.config }

    func vector(_ role: TensorRole, _ l: Int) -> UnsafePointer<Float> { UnsafePointer(model.params.pointer(TensorNames.name(role, l))) }

    func norm(_ role: TensorRole, _ l: Int, _ out: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>?,
              _ x: UnsafePointer<Float>, rows: Int) {
        rmsnormForward(out, rstd, x, vector(role, l), rows: rows, dim: config.hiddenSize, eps: config.rmsEps)
    }

    func linear(_ role: TensorRole, _ l: Int, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, m: Int) {
        model.multiply(y, x, TensorNames.name(role, l), m: m)
    }

    func residual(_ role: TensorRole, _ l: Int, _ x: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                  bias: UnsafePointer<Float>?, m: Int) {
        model.multiply(x, input, TensorNames.name(role, l), m: m, accumulate: true)
        if let bias { addBias(x, bias, rows: m, cols: config.hiddenSize) }
    }

    func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: (Int) -> Int) {
        rope.rotate(x, rows: rows, heads: heads, layout: config.ropeLayout, positions: positions)
    }

    func attention(_ l: Int, out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                   v: UnsafePointer<Float>, B: Int, T: Int, probs: UnsafeMutablePointer<Float>?) {
        let c = config, hd = c.headDim, nH = c.nHead[l], nKV = c.nKVHead[l], kvDim = nKV * hd
        var keys = k, values = v, S = T
        if let cache {
            (cache.keys[l] + startPos * kvDim).update(from: k, count: T * kvDim)
            (cache.values[l] + startPos * kvDim).update(from: v, count: T * kvDim)
            keys = UnsafePointer(cache.keys[l])
            values = UnsafePointer(cache.values[l])
            S = startPos + T
        }
        groupedAttention(out: out, q: q, k: keys, v: values, B: B, T: T, S: S, heads: nH, kvHeads: nKV, headDim: hd, probs: nil)
    }

    func observe(_ l: Int, _ site: ActivationSite, _ a: UnsafePointer<Float>, rows: Int, cols: Int) {
        observer?.observe(layer: l, site: site, activations: UnsafeBufferPointer(start: a, count: rows * cols), rows: rows, cols: cols)
    }
}
