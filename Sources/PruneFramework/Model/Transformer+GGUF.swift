import Foundation

extension Transformer {
    /// Opens a model in a GGUF file. The weights stay in the memory-mapped file in their stored type
    /// and are dequantised to f32 when used (see `ParameterStore`'s lazy stores), so a model needs
    /// about one tensor of f32 memory beside what the forward packs.
    ///
    /// The metadata is checked against the tensor table first, and every tensor is read once here,
    /// a chunk at a time: a tensor holding NaN or infinity is an error naming it.
    public convenience init(gguf f: GGUFFile) throws {
        let config = try ModelConfig(gguf: f)
        let file = (f.path as NSString).lastPathComponent
        let infos = try ModelConfig.tensorInfos(f, config: config, arch: f["general.architecture"]?.string ?? "")
        let store = ParameterStore(lazy: infos.map { ($0.name, $0.shape, f.source($0)) })
        for info in infos where info.dims.count == 2 && QuantizedMatmul.supports(info.type) {
            store.setStoredRows(StoredRows(type: info.type, base: f.rawBytes(info).baseAddress!,
                                           rowBytes: try info.type.byteCount(elements: info.dims[0]), owner: f), for: info.name)
        }
        try Self.checkFinite(store, source: "GGUF file '\(file)'")
        try self.init(config: config, params: store)
    }

    /// Reads every tensor of `store` in chunks of about 1M values and throws when one holds a NaN
    /// or an infinity (or cannot be read), naming it.
    static func checkFinite(_ store: ParameterStore, source: String) throws {
        let errors = ErrorBox()
        let entries = store.entries
        DispatchQueue.concurrentPerform(iterations: entries.count) { i in
            let e = entries[i]
            guard e.rowCount > 0 else { return }
            let step = max(1, (1 << 20) / max(e.rowWidth, 1))
            let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(step, e.rowCount) * e.rowWidth)
            defer { buf.deallocate() }
            do {
                for r in stride(from: 0, to: e.rowCount, by: step) {
                    let rows = r..<min(r + step, e.rowCount)
                    try store.readRows(e.name, rows, into: buf.baseAddress!)
                    try checkFinite(UnsafeMutableBufferPointer(rebasing: buf[0..<(rows.count * e.rowWidth)]), tensor: e.name,
                                    source: source, offset: r * e.rowWidth)
                }
            } catch { errors.set(error) }
        }
        if let e = errors.first { throw e }
    }

    /// Throws when `values` hold a NaN or an infinity, naming the tensor and the first such index
    /// (`offset` is the index of values[0] in the tensor).
    static func checkFinite(_ values: UnsafeMutableBufferPointer<Float>, tensor: String, source: String, offset: Int = 0) throws {
        // x - x is 0 for every finite x and NaN otherwise; the sum vectorises.
        var acc: Float = 0
        for x in values { acc += x - x }
        guard acc.isNaN, let i = values.firstIndex(where: { !$0.isFinite }) else { return }
        throw PruneError(.badFormat, "\(source): tensor '\(tensor)' holds '\(values[i])' at element \(offset + i) (non-finite weights or quantization scales): the file is corrupt or the model diverged")
    }

    /// Opens a GGUF model file.
    public convenience init(path: String) throws {
        try self.init(gguf: try GGUFFile(path: path))
    }
}

extension GGUFFile {
    /// Reads rows of a tensor: dequantises them from the mapped file, then lets the kernel drop
    /// the pages read when they are many (a 7B file need not stay resident once used).
    func source(_ info: GGUFTensorInfo) -> TensorSource {
        let width = info.dims.first ?? 1
        return { [self] rows, into in
            let rowBytes = try info.type.byteCount(elements: width)
            let raw = rawBytes(info)
            let start = rows.lowerBound * rowBytes, end = rows.upperBound * rowBytes
            do {
                try PruneFramework.dequantize(info.type, UnsafeRawBufferPointer(rebasing: raw[start..<end]), count: rows.count * width, into: into)
            } catch let e as PruneError {
                throw PruneError(e.code, "GGUF file '\(path)': tensor '\(ByteReader.shown(info.name))': \(e.message)")
            }
            if end - start >= 1 << 16 { dropPages(offset: info.offset + start, count: end - start) }
        }
    }
}

/// Keeps the first error thrown by concurrent work.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: Error?
    func set(_ e: Error) {
        lock.lock()
        if first == nil { first = e }
        lock.unlock()
    }
}
