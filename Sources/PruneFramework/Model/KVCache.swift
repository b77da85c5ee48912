/// Keys and values of one sequence's past tokens, per layer, for incremental decoding.
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public private(set) var length = 0
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]
    let kvDims: [Int]

    /// A cache for up to `capacity` positions of a model with this config.
    public init(config: ModelConfig, capacity: Int) {
        self.capacity = capacity
        kvDims = (0..<config.nLayers).map { config.nKVHead[$0] * config.headDim }
        keys = kvDims.map { .allocate(capacity: max(1, $0 * capacity)) }
        values = kvDims.map { .allocate(capacity: max(1, $0 * capacity)) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Forgets every cached position.
    public func reset() { length = 0 }

    func advance(by n: Int) { length += n }
}
