import Foundation

/// The f32 parameters of a model, by name, row-major.
///
/// A store is either *resident*: one contiguous buffer holding every parameter (a gradient buffer
/// made with `ParameterStore(layoutOf:)` has the same layout, so optimisers walk parameters and
/// gradients with the same offsets), or *lazy*: each tensor is read on demand from its
/// `TensorSource` (a memory-mapped GGUF tensor dequantised row by row, or a cut of another
/// model's tensor) and holds no memory until `pointer`/`view` materialises it.
///
/// In a lazy store, `withValues` and `readRows` read without keeping anything, and `release()`
/// frees the materialised tensors that were not changed. Writers follow the store's contract:
/// change weights through `pointer`/`view`, then call `markModified()`, which makes every
/// materialised tensor of a lazy store its own copy (never released, never re-read).
public final class ParameterStore: @unchecked Sendable {
    /// Where one named parameter lives in the (possibly virtual) contiguous layout.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Values per row: the last dimension (a vector is one row).
        public var rowWidth: Int { shape.count >= 2 ? shape[shape.count - 1] : count }
        public var rowCount: Int { rowWidth == 0 ? 0 : count / rowWidth }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    private let contiguous: UnsafeMutableBufferPointer<Float>?
    private var lazy: [LazyTensor] = []
    private let lock = NSLock()
    /// Bumped whenever weights change through `markModified()`; caches of packed weights compare it.
    public private(set) var version = 0

    /// Allocates a zeroed resident buffer for the given (name, shape) list, in that order.
    public init(layout: [(name: String, shape: [Int])]) {
        let total = Self.place(layout, &entries, &index)
        contiguous = .allocate(capacity: max(total, 1))
        contiguous!.initialize(repeating: 0)
    }

    /// A lazy store: each tensor is read from its source when needed.
    public init(lazy layout: [(name: String, shape: [Int], source: TensorSource)]) {
        _ = Self.place(layout.map { ($0.name, $0.shape) }, &entries, &index)
        contiguous = nil
        lazy = layout.map { LazyTensor(source: $0.source) }
    }

    /// A zeroed resident store with the same names, shapes and offsets (a gradient buffer).
    public convenience init(layoutOf other: ParameterStore) {
        self.init(layout: other.entries.map { ($0.name, $0.shape) })
    }

    private static func place(_ layout: [(name: String, shape: [Int])], _ entries: inout [Entry], _ index: inout [String: Int]) -> Int {
        var offset = 0
        for (name, shape) in layout {
            precondition(index[name] == nil, "ParameterStore: duplicate parameter \(name)")
            index[name] = entries.count
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        return offset
    }

    deinit {
        contiguous?.deallocate()
        for t in lazy { t.values?.deallocate() }
    }

    /// Whether tensors are read on demand (see the type's documentation).
    public var isLazy: Bool { contiguous == nil }

    /// The contiguous buffer of a resident store (a lazy store has none: a programmer error).
    public var buffer: UnsafeMutableBufferPointer<Float> {
        guard let contiguous else { preconditionFailure("ParameterStore: a lazy store has no contiguous buffer") }
        return contiguous
    }

    public var totalCount: Int { entries.last.map { $0.offset + $0.count } ?? 0 }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    private func position(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("ParameterStore: no parameter named \(name)") }
        return i
    }

    /// A pointer to the first element of a parameter; the name must exist (programmer error
    /// otherwise). In a lazy store this materialises the tensor until `release()`.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        let i = position(name)
        if let contiguous { return contiguous.baseAddress! + entries[i].offset }
        lock.lock()
        defer { lock.unlock() }
        if let p = lazy[i].values { return p }
        let e = entries[i]
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(e.count, 1))
        do { try lazy[i].source(0..<e.rowCount, p) } catch {
            preconditionFailure("ParameterStore: cannot read tensor '\(name)' (its file changed after it was checked?): \(error)")
        }
        lazy[i].values = p
        return p
    }

    /// A view of one parameter as a buffer (materialised in a lazy store, as `pointer`).
    public func view(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer(name), count: entries[position(name)].count)
    }

    /// Calls `body` with the parameter's values without keeping them: a lazy tensor that is not
    /// materialised is read into a temporary buffer freed afterwards.
    public func withValues<R>(_ name: String, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let i = position(name), e = entries[i]
        if let p = resident(i) { return try body(UnsafeBufferPointer(start: p, count: e.count)) }
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(e.count, 1))
        defer { tmp.deallocate() }
        do { try source(i)(0..<e.rowCount, tmp) } catch {
            preconditionFailure("ParameterStore: cannot read tensor '\(name)' (its file changed after it was checked?): \(error)")
        }
        return try body(UnsafeBufferPointer(start: tmp, count: e.count))
    }

    /// Copies rows `rows` of a parameter (row-major, `Entry.rowWidth` values each) into `into`.
    public func readRows(_ name: String, _ rows: Range<Int>, into: UnsafeMutablePointer<Float>) throws {
        let i = position(name), e = entries[i]
        precondition(rows.lowerBound >= 0 && rows.upperBound <= e.rowCount, "ParameterStore: rows \(rows) of '\(name)' out of range")
        if let p = resident(i) {
            into.update(from: p + rows.lowerBound * e.rowWidth, count: rows.count * e.rowWidth)
        } else {
            try source(i)(rows, into)
        }
    }

    /// Where a lazy tensor is read from (`update` may change it).
    private func source(_ i: Int) -> TensorSource { lock.withLock { lazy[i].source } }

    /// The tensor's values if they are in memory (resident store, or materialised).
    private func resident(_ i: Int) -> UnsafeMutablePointer<Float>? {
        if let contiguous { return contiguous.baseAddress! + entries[i].offset }
        return lock.withLock { lazy[i].values }
    }

    /// A copy of one parameter as a Tensor.
    public func tensor(_ name: String) -> Tensor? {
        guard let e = entry(name) else { return nil }
        return withValues(name) { Tensor(shape: e.shape, data: Array($0)) }
    }

    /// Records that weights were changed in place, invalidating packed caches. In a lazy store,
    /// every materialised tensor becomes the store's own (it may have been written).
    public func markModified() {
        version += 1
        lock.withLock { for i in lazy.indices where lazy[i].values != nil { lazy[i].owned = true } }
    }

    /// Records that the tensors `names` were changed in place: as `markModified()`, but only they
    /// become the store's own.
    public func markModified(_ names: some Sequence<String>) {
        version += 1
        lock.withLock {
            for name in names { if let i = index[name], i < lazy.count, lazy[i].values != nil { lazy[i].owned = true } }
        }
    }

    /// Records that the tensors `names` hold their source's values again (a caller restored what it
    /// changed), so `release` may free them.
    public func markRestored(_ names: some Sequence<String>) {
        version += 1
        lock.withLock {
            for name in names { if let i = index[name], i < lazy.count { lazy[i].owned = false } }
        }
    }

    /// Changes the rows of a tensor by `change(rows, values)`, called with rows of the tensor and
    /// their values, row-major. A tensor in memory (a resident store, or one the store owns since
    /// `markModified`) changes at once; a tensor still read from its source gets the change
    /// deferred into the source, which applies it to whatever rows are read, so the change costs
    /// no f32 copy of the tensor (LoRA's merge over weights that stay quantized in their file).
    public func update(_ name: String, rows change: @escaping @Sendable (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        let i = position(name), e = entries[i]
        version += 1
        if let contiguous { return change(0..<e.rowCount, contiguous.baseAddress! + e.offset) }
        lock.withLock {
            if lazy[i].owned, let p = lazy[i].values { return change(0..<e.rowCount, p) }
            lazy[i].values?.deallocate()
            lazy[i].values = nil
            lazy[i].stored = nil
            let read = lazy[i].source
            lazy[i].source = { rows, into in
                try read(rows, into)
                change(rows, into)
            }
        }
    }

    /// Records that a lazy tensor's values are `rows` as its file stores them, so kernels may read
    /// them directly; any later change to the tensor (`update`, `markModified`) ends that.
    public func setStoredRows(_ rows: StoredRows, for name: String) {
        let i = position(name)
        precondition(isLazy, "ParameterStore: a resident store's tensors are not read from a file")
        lock.withLock { lazy[i].stored = rows }
    }

    /// The rows of a tensor as its file stores them, while they are its values: nil for a
    /// resident store, a tensor read through another (a cut), or one that was changed.
    public func storedRows(_ name: String) -> StoredRows? {
        guard let i = index[name], isLazy else { return nil }
        return lock.withLock { lazy[i].owned ? nil : lazy[i].stored }
    }

    /// Frees the materialised tensors of a lazy store that were not modified (they are read again
    /// from their sources when needed); returns the bytes freed. Call it only where no pointer
    /// from `pointer`/`view` is still in use.
    @discardableResult
    public func release() -> Int {
        lock.withLock {
            var freed = 0
            for i in lazy.indices where !lazy[i].owned {
                guard let p = lazy[i].values else { continue }
                p.deallocate()
                lazy[i].values = nil
                freed += entries[i].count * 4
            }
            return freed
        }
    }

    /// Frees the materialised, unmodified tensors among `names` (see `release()`).
    public func release(_ names: some Sequence<String>) {
        lock.withLock {
            for name in names {
                guard let i = index[name], i < lazy.count, !lazy[i].owned, let p = lazy[i].values else { continue }
                p.deallocate()
                lazy[i].values = nil
            }
        }
    }

    /// Bytes of f32 values held in memory (the whole buffer of a resident store).
    public var residentBytes: Int {
        if contiguous != nil { return totalCount * 4 }
        return lock.withLock { lazy.indices.reduce(0) { $0 + (lazy[$1].values == nil ? 0 : entries[$1].count * 4) } }
    }
}

/// Writes rows `rows` of a tensor, row-major f32, to `into` (rows.count × row width values).
public typealias TensorSource = @Sendable (_ rows: Range<Int>, _ into: UnsafeMutablePointer<Float>) throws -> Void

/// The rows of a tensor as its file stores them (quantized blocks, f16, ...), for kernels that
/// read them directly (`QuantizedMatmul`): row r starts at `base + r·rowBytes`.
public struct StoredRows: @unchecked Sendable {
    public let type: GGMLType
    public let base: UnsafeRawPointer
    public let rowBytes: Int
    /// Keeps the memory `base` points into alive (the mapped file).
    let owner: AnyObject

    public init(type: GGMLType, base: UnsafeRawPointer, rowBytes: Int, owner: AnyObject) {
        self.type = type
        self.base = base
        self.rowBytes = rowBytes
        self.owner = owner
    }
}

/// One tensor of a lazy store: where it is read from, and its values once materialised.
private struct LazyTensor {
    var source: TensorSource
    /// The rows as stored, while they are the tensor's values (see `ParameterStore.storedRows`).
    var stored: StoredRows?
    var values: UnsafeMutablePointer<Float>?
    /// Modified in place (see `markModified`): kept by `release()`.
    var owned = false
}
