/// One contiguous f32 buffer holding every parameter of a model, with named row-major views.
///
/// A gradient buffer made with `ParameterStore(layoutOf:)` has the same layout, so optimisers and
/// criteria walk parameters and gradients with the same offsets.
public final class ParameterStore: @unchecked Sendable {
    /// Where one named parameter lives in the buffer.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    public let buffer: UnsafeMutableBufferPointer<Float>
    /// Bumped whenever weights change through `markModified()`; caches of packed weights compare it.
    public private(set) var version = 0

    /// Allocates a zeroed buffer for the given (name, shape) list, in that order.
    public init(layout: [(name: String, shape: [Int])]) {
        var offset = 0
        for (name, shape) in layout {
            precondition(index[name] == nil, "ParameterStore: duplicate parameter \(name)")
            index[name] = entries.count
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        buffer = .allocate(capacity: max(offset, 1))
        buffer.initialize(repeating: 0)
    }

    /// A zeroed store with the same names, shapes and offsets (a gradient buffer).
    public convenience init(layoutOf other: ParameterStore) {
        self.init(layout: other.entries.map { ($0.name, $0.shape) })
    }

    deinit { buffer.deallocate() }

    public var totalCount: Int { entries.last.map { $0.offset + $0.count } ?? 0 }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// A pointer to the first element of a parameter; the name must exist (programmer error otherwise).
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let i = index[name] else { preconditionFailure("ParameterStore: no parameter named \(name)") }
        return buffer.baseAddress! + entries[i].offset
    }

    /// A view of one parameter as a buffer.
    public func view(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let i = index[name] else { preconditionFailure("ParameterStore: no parameter named \(name)") }
        return UnsafeMutableBufferPointer(start: buffer.baseAddress! + entries[i].offset, count: entries[i].count)
    }

    /// A copy of one parameter as a Tensor.
    public func tensor(_ name: String) -> Tensor? {
        guard let e = entry(name) else { return nil }
        return Tensor(shape: e.shape, data: Array(view(name)))
    }

    /// Records that weights were changed in place, invalidating packed caches.
    public func markModified() { version += 1 }
}
