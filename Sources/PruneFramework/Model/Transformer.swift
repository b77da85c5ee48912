import Foundation

/// A LLaMA-family decoder: config, parameters (canonical GGUF names) and the forward pass.
///
/// Q and K rows are in the GGUF layout (RoPE on adjacent pairs); loaders convert other layouts.
/// Linear weights are packed for the matmul kernel once per parameter version and reused.
public final class Transformer: @unchecked Sendable {
    public private(set) var config: ModelConfig
    public let params: ParameterStore
    private var packedCache: [String: PackedMatrix] = [:]
    private var packedVersion = -1
    private var packedBytes = 0
    private var rope: RoPETable
    private let lock = NSLock()

    /// Wraps existing parameters; checks that every tensor the config needs is there with its shape.
    public init(config: ModelConfig, params: ParameterStore) throws {
        try config.validate()
        for (name, shape) in TensorNames.layout(for: config) {
            guard let e = params.entry(name) else {
                throw PruneError(.badFormat, "model: tensor '\(name)' is missing; a LLaMA model needs it")
            }
            guard e.shape == shape else {
                throw PruneError(.shapeMismatch, "model: tensor '\(name)' has shape \(e.shape), the config needs \(shape)")
            }
        }
        self.config = config
        self.params = params
        self.rope = RoPETable(headDim: config.headDim, base: config.ropeBase, maxPositions: 0)
    }

    /// A model with the config's layout and small random weights (tests, examples).
    public convenience init(randomWith config: ModelConfig, seed: UInt64, scale: Float = 0.08) throws {
        let store = ParameterStore(layout: TensorNames.layout(for: config))
        var rng = SplitMix64(seed: seed)
        for e in store.entries {
            let v = store.view(e.name)
            let isNorm = e.shape.count == 1
            for i in 0..<v.count {
                v[i] = isNorm ? 1 + 0.1 * rng.nextSymmetric() : scale * rng.nextSymmetric()
            }
        }
        try self.init(config: config, params: store)
    }

    /// The same model with every weight read into one resident store (the whole-model path: a
    /// gradient buffer, tests comparing it with the lazy path).
    public func residentCopy() throws -> Transformer {
        let store = ParameterStore(layout: params.entries.map { ($0.name, $0.shape) })
        for e in params.entries where e.rowCount > 0 { try params.readRows(e.name, 0..<e.rowCount, into: store.pointer(e.name)) }
        return try Transformer(config: config, params: store)
    }

    /// Number of parameters, counting the tied output head once.
    public var parameterCount: Int { params.totalCount }

    // MARK: - Packed weights

    /// Bytes of packed weights kept between uses; a matrix that would exceed it is packed for its
    /// use and freed. The default keeps a 135M–0.5B model packed whole and bounds a large one.
    public var packedBudget = Transformer.defaultPackedBudget

    /// 1 GiB, or a sixth of physical memory when that is less.
    public static var defaultPackedBudget: Int { min(1 << 30, MemoryBudget.physicalBytes / 6) }

    /// The packed form of a linear weight for the current parameter version: from the cache, or
    /// packed now (read transiently from a lazy store) and kept while the budget allows.
    func packed(_ name: String) -> PackedMatrix {
        lock.lock()
        defer { lock.unlock() }
        if packedVersion != params.version {
            packedCache.removeAll()
            packedBytes = 0
            packedVersion = params.version
        }
        if let p = packedCache[name] { return p }
        guard let e = params.entry(name), e.shape.count == 2 else { preconditionFailure("no matrix \(name)") }
        let p = pack(e)
        if packedBytes + e.count * 4 <= packedBudget {
            packedCache[name] = p
            packedBytes += e.count * 4
        }
        return p
    }

    /// Packs a resident store's matrix from its buffer, a lazy one's by row chunks (never whole).
    private func pack(_ e: ParameterStore.Entry) -> PackedMatrix {
        let (n, k) = (e.shape[0], e.shape[1])
        guard params.isLazy else { return PackedMatrix(params.pointer(e.name), n: n, k: k) }
        return PackedMatrix(n: n, k: k) { rows, buf in
            do { try params.readRows(e.name, rows, into: buf) } catch {
                preconditionFailure("Transformer: cannot read tensor '\(e.name)': \(error)")
            }
        }
    }

    /// Whether a matmul of at most `quantizedRowLimit` rows reads the weights the file stores
    /// quantized (or in f16) directly, without an f32 copy (`QuantizedMatmul`). Decoding one token
    /// at a time reads every weight once per token, so reading the smaller stored rows is faster
    /// and needs no packed cache; `prune generate` turns it on. The products differ from the f32
    /// path's in rounding only. Off by default.
    public var quantizedMatmul = false

    /// Rows up to which `quantizedMatmul` applies; longer inputs use the packed f32 path.
    public static let quantizedRowLimit = 4

    /// y (m × n) (+)= x (m × k) · Wᵀ for the linear weight `name` (n × k): from its stored rows
    /// when `quantizedMatmul` allows, else from its packed f32 form.
    func multiply(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ name: String, m: Int, accumulate: Bool = false) {
        if quantizedMatmul, m <= Self.quantizedRowLimit, let s = params.storedRows(name), let e = params.entry(name) {
            QuantizedMatmul.xwt(y, x, m: m, weight: s.base, type: s.type, n: e.shape[0], k: e.shape[1], rowBytes: s.rowBytes,
                                accumulate: accumulate)
        } else {
            Matmul.xwt(y, x, packed(name), m: m, accumulate: accumulate)
        }
    }

    /// Drops packed copies of the weights (frees memory; they are rebuilt on demand).
    public func releasePackedWeights() {
        lock.lock()
        packedCache.removeAll()
        packedBytes = 0
        lock.unlock()
    }

    /// Writes the embedding rows of `tokens` into x (tokens.count × hiddenSize).
    func embed(_ tokens: some Collection<Int32>, into x: UnsafeMutablePointer<Float>) {
        let D = config.hiddenSize
        for (r, t) in tokens.enumerated() {
            do { try params.readRows(TensorNames.tokenEmbedding, Int(t)..<(Int(t) + 1), into: x + r * D) } catch {
                preconditionFailure("Transformer: cannot read embedding row \(t): \(error)")
            }
        }
    }

    var outputWeightName: String { config.tiedEmbeddings ? TensorNames.tokenEmbedding : TensorNames.output }

    func ropeTables(upTo n: Int) -> RoPETable {
        lock.lock()
        defer { lock.unlock() }
        rope.grow(to: n)
        return rope
    }
}

/// SplitMix64: a small seeded generator for reproducible tests and sampling.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Moves on as `n` calls of `next()` would, at once.
    public mutating func skip(_ n: Int) { state &+= UInt64(n) &* 0x9E37_79B9_7F4A_7C15 }
    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Uniform in [-1, 1).
    public mutating func nextSymmetric() -> Float { 2 * nextUnit() - 1 }
}
