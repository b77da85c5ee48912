import Foundation

extension Transformer {
    /// `ChannelSums` of `salience` over the tensors in `tensors`, from the gradient of the mean NLL
    /// over `sequences` (and, with `fisher`, the diagonal empirical Fisher from per-sequence
    /// gradients), computed block by block so that memory holds one block's weights and gradient:
    ///
    /// 1. a forward pass, layer by layer over all micro-batches, keeps every block's input
    ///    (layers × sequences × seqLen × hiddenSize floats);
    /// 2. the final norm and the head give ∂L/∂x at the top for every micro-batch;
    /// 3. from the top block down, each block's forward is recomputed from its kept input and its
    ///    backward accumulates the block's gradient over all micro-batches, which is reduced into
    ///    channel sums with the block's weights and dropped;
    /// 4. the head's and the embedding's gradients are accumulated last, micro-batch by micro-batch.
    ///
    /// The gradient of every tensor is summed in the same order as `gradients(sequences:)`, so the
    /// sums equal those of the full gradient.
    ///
    /// With several ranks, each runs its share of the micro-batches and every block's gradient (and
    /// Fisher) is added over the ranks (`Communicator.sum`) before it is reduced to channel sums.
    public func channelSums(sequences: [[Int32]], microBatch: Int = 4, fisher: Bool = false, tensors: Set<String>,
                            absolute: Bool, salience: @escaping (Float, Float, Float) -> Double,
                            communicator: any Communicator = SingleProcess(),
                            progress: ((Int, Int) -> Void)? = nil) throws -> ChannelSums {
        let T = try Self.checkGradientInputs(sequences, microBatch: microBatch)
        let pass = LayerwisePass(model: self, sequences: sequences, T: T, microBatch: fisher ? 1 : microBatch, fisher: fisher,
                                 tensors: tensors, sums: ChannelSums(absolute: absolute), salience: salience,
                                 communicator: communicator, progress: progress)
        return try pass.run()
    }
}

/// The state of one `channelSums` pass (see there).
private final class LayerwisePass {
    let model: Transformer, config: ModelConfig, T: Int, fisher: Bool, tensors: Set<String>
    let parts: [(tokens: [Int32], batch: Int)]
    let scale: Float, fold: Float
    var sums: ChannelSums
    let salience: (Float, Float, Float) -> Double
    let communicator: any Communicator
    let progress: ((Int, Int) -> Void)?
    let slots: GradientSlots
    let backprop: Backprop<Float>
    let rope: RoPETable
    /// Block inputs: inputs[l][p] for block l and micro-batch p; inputs[L] are the final outputs.
    var inputs: [[Buffer<Float>]] = []
    /// ∂L/∂x of each micro-batch at the current block boundary.
    var dx: [Buffer<Float>] = []

    init(model: Transformer, sequences: [[Int32]], T: Int, microBatch: Int, fisher: Bool, tensors: Set<String>,
         sums: ChannelSums, salience: @escaping (Float, Float, Float) -> Double, communicator: any Communicator,
         progress: ((Int, Int) -> Void)?) {
        self.model = model
        config = model.config
        self.T = T
        self.fisher = fisher
        self.tensors = tensors
        let all = stride(from: 0, to: sequences.count, by: microBatch).map { i in i..<min(i + microBatch, sequences.count) }
        parts = all[communicator.share(of: all.count)].map { r in (Array(sequences[r].joined()), r.count) }
        let n = sequences.count
        // As `gradients`: the mean over all tokens, or per sequence folded with weight 1/n (Fisher).
        scale = fisher ? 1 / Float(T - 1) : 1 / Float(n * (T - 1))
        fold = 1 / Float(n)
        self.sums = sums
        self.salience = salience
        self.communicator = communicator
        self.progress = progress
        let params = model.params, slots = GradientSlots { params.entry($0)?.count ?? 0 }
        self.slots = slots
        backprop = Backprop(config: model.config, tensors: TrainingTensors(
            weight: { UnsafePointer(params.pointer($0)) }, gradient: { slots.pointer($0) }))
        rope = RoPETable(headDim: config.headDim, base: config.ropeBase, maxPositions: T)
    }

    var steps: Int { 2 * config.nLayers + 2 }

    func run() throws -> ChannelSums {
        for part in parts { try model.checkTokens(part.tokens, batch: part.batch, seqLen: T, cache: nil) }
        forward()
        try head()
        // Below the lowest layer with tensors to sum, only the embedding would need ∂L/∂x.
        let layers = tensors.compactMap(TensorNames.layer(of:))
        let lowest = tensors.contains(TensorNames.tokenEmbedding) ? 0 : layers.min() ?? config.nLayers
        for l in stride(from: config.nLayers - 1, through: lowest, by: -1) { try backward(l) }
        try embeddingAndHead()
        sums.loss = LossSum(sum: try communicator.sum(sums.loss.sum), count: try communicator.sum(sums.loss.count))
        return sums
    }

    func report(_ step: Int) { progress?(step, steps) }

    /// Step 1: every block's input, block by block over all micro-batches.
    func forward() {
        let D = config.hiddenSize
        inputs = [parts.map { part in
            let x = Buffer<Float>(part.tokens.count * D)
            model.embed(part.tokens, into: x.p)
            return x
        }]
        for l in 0..<config.nLayers {
            inputs.append(inputs[l].enumerated().map { p, x in
                let out = Buffer<Float>(x.count)
                out.p.update(from: x.p, count: x.count)
                _ = backprop.blockForward(l, x: out.p, B: parts[p].batch, T: T, rope: rope)
                return out
            })
            model.params.release(blockTensors(l))
            report(l + 1)
        }
    }

    /// Step 2: the loss and ∂L/∂x at the top; the final norm's gradient.
    func head() throws {
        let D = config.hiddenSize, norm = TensorNames.outputNorm
        slots.open([norm].filter(tensors.contains), fisher: fisher)
        dx = parts.enumerated().map { p, part in
            let N = part.tokens.count, x = inputs[config.nLayers][p]
            let rstd = Buffer<Float>(N), h = Buffer<Float>(N * D), dh = Buffer<Float>(N * D), d = Buffer<Float>(N * D)
            let w = UnsafePointer(model.params.pointer(norm))
            rmsnormForward(h.p, rstd.p, x.p, w, rows: N, dim: D, eps: Float(config.rmsEps))
            let l = backprop.headForwardBackward(h.p, dh.p, tokens: part.tokens, B: part.batch, T: T, scale: scale)
            sums.loss.sum += l.sum
            sums.loss.count += l.count
            rmsnormBackward(d.p, slots.pointer(norm), dh.p, x.p, w, rstd.p, rows: N, dim: D)
            if fisher { slots.fold(fold) }
            return d
        }
        try reduce(slots.close())
        report(config.nLayers + 1)
    }

    /// Step 3 for block l: recompute, backpropagate every micro-batch, reduce, drop.
    func backward(_ l: Int) throws {
        slots.open(blockTensors(l).filter(tensors.contains), fisher: fisher)
        for (p, part) in parts.enumerated() {
            let x = inputs[l][p]
            let a = backprop.blockForward(l, x: x.p, B: part.batch, T: T, rope: rope)
            backprop.blockBackward(l, dx: dx[p].p, saved: a, B: part.batch, T: T, rope: rope)
            if fisher { slots.fold(fold) }
        }
        inputs[l] = []  // changed in place by the recomputation, and not needed again
        try reduce(slots.close())
        model.params.release(blockTensors(l))
        report(2 * config.nLayers + 1 - l)
    }

    /// Step 4: the head's weight gradient (recomputed per micro-batch) and the embedding's, in
    /// the order a whole-model backward adds them.
    func embeddingAndHead() throws {
        let D = config.hiddenSize, emb = TensorNames.tokenEmbedding
        let head = config.tiedEmbeddings ? emb : TensorNames.output
        let names = Set([head, emb]).filter(tensors.contains).sorted()
        guard !names.isEmpty else { return report(steps) }
        slots.open(names, fisher: fisher)
        let headGradient = tensors.contains(head)
        for (p, part) in parts.enumerated() {
            let N = part.tokens.count
            if headGradient {
                let x = inputs[config.nLayers][p]
                let rstd = Buffer<Float>(N), h = Buffer<Float>(N * D), dh = Buffer<Float>(N * D)
                rmsnormForward(h.p, rstd.p, x.p, model.params.pointer(TensorNames.outputNorm), rows: N, dim: D, eps: Float(config.rmsEps))
                _ = backprop.headForwardBackward(h.p, dh.p, tokens: part.tokens, B: part.batch, T: T, scale: scale)
            }
            if let g = slots.pointer(emb) { embeddingBackward(g, dx[p].p, tokens: part.tokens, dim: D) }
            if fisher { slots.fold(fold) }
        }
        try reduce(slots.close())
        model.params.release(names)
        report(steps)
    }

    /// Adds the channel sums of closed gradients (gradient, Fisher) with the weights, then frees them;
    /// with several ranks, the gradients are first added over the ranks.
    func reduce(_ closed: [(name: String, g: Buffer<Float>, f: Buffer<Float>?)]) throws {
        for (name, g, f) in closed {
            try communicator.sum(g.p, count: g.count)
            if let f { try communicator.sum(f.p, count: f.count) }
            guard let e = model.params.entry(name) else { continue }
            model.params.withValues(name) { w in
                sums.add(name, shape: e.shape, w: w.baseAddress!, g: g.p, f: f?.p, salience: salience)
            }
        }
    }

    func blockTensors(_ l: Int) -> [String] {
        TensorNames.layerTensors(l, config).map(\.name)
    }
}

/// The gradient buffers a pass writes, by tensor name: `open` allocates them for a set of
/// tensors, `pointer` is where Backprop accumulates (nil: frozen), `close` hands them over.
/// With the Fisher, each pass writes a per-sequence buffer that `fold` adds to the mean gradient
/// (g/n) and the Fisher (g²/n), then zeroes.
private final class GradientSlots {
    private var current: [String: (g: Buffer<Float>, f: Buffer<Float>?, one: Buffer<Float>?)] = [:]
    private var order: [String] = []
    private let counts: (String) -> Int

    init(counts: @escaping (String) -> Int) { self.counts = counts }

    func open(_ names: [String], fisher: Bool) {
        order = names
        current = Dictionary(uniqueKeysWithValues: names.map { n in
            let c = counts(n)
            return (n, (Buffer<Float>(c), fisher ? Buffer<Float>(c) : nil, fisher ? Buffer<Float>(c) : nil))
        })
    }

    func pointer(_ name: String) -> UnsafeMutablePointer<Float>? {
        guard let s = current[name] else { return nil }
        return (s.one ?? s.g).p
    }

    func fold(_ inv: Float) {
        for (_, s) in current {
            guard let one = s.one, let f = s.f else { continue }
            for i in 0..<one.count {
                let g = one.p[i]
                s.g.p[i] += g * inv
                f.p[i] += g * g * inv
                one.p[i] = 0
            }
        }
    }

    func close() -> [(name: String, g: Buffer<Float>, f: Buffer<Float>?)] {
        defer { current = [:]; order = [] }
        return order.compactMap { n in current[n].map { (n, $0.g, $0.f) } }
    }
}
