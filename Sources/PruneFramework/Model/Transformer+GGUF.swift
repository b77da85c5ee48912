import Foundation

extension Transformer {
    /// Loads a model from a GGUF file, dequantising every tensor to f32.
    ///
    /// The metadata is checked against the tensor table and the f32 size against the machine's
    /// memory before anything is allocated; a tensor holding NaN or infinity is an error naming it.
    public convenience init(gguf f: GGUFFile) throws {
        let config = try ModelConfig(gguf: f)
        let file = (f.path as NSString).lastPathComponent
        let infos = try ModelConfig.tensorInfos(f, config: config, arch: f["general.architecture"]?.string ?? "")
        try MemoryBudget.check(config.f32Bytes, what: "GGUF file '\(file)' loaded as f32 weights",
                               fix: "this model is too large for this machine")
        let store = ParameterStore(layout: TensorNames.layout(for: config))
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: infos.count) { i in
            do {
                let view = store.view(infos[i].name)
                try f.dequantize(infos[i], into: view)
                try Self.checkFinite(view, tensor: infos[i].name, source: "GGUF file '\(file)'")
            } catch { errors.set(error) }
        }
        if let e = errors.first { throw e }
        try self.init(config: config, params: store)
    }

    /// Throws when `values` hold a NaN or an infinity, naming the tensor and the first such index.
    static func checkFinite(_ values: UnsafeMutableBufferPointer<Float>, tensor: String, source: String) throws {
        // x - x is 0 for every finite x and NaN otherwise; the sum vectorises.
        var acc: Float = 0
        for x in values { acc += x - x }
        guard acc.isNaN, let i = values.firstIndex(where: { !$0.isFinite }) else { return }
        throw PruneError(.badFormat, "\(source): tensor '\(tensor)' holds '\(values[i])' at element \(i) (non-finite weights or quantization scales): the file is corrupt or the model diverged")
    }

    /// Opens and loads a GGUF model file.
    public convenience init(path: String) throws {
        try self.init(gguf: try GGUFFile(path: path))
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
