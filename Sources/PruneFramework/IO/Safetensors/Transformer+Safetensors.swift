import Foundation

extension Transformer {
    /// Loads a Hugging Face `LlamaForCausalLM` checkpoint.
    ///
    /// `safetensorsDirectory` is either a directory holding `config.json` and the weights, or a
    /// single `.safetensors` file with `config.json` beside it. In a directory the weights are
    /// `model.safetensors` when present, else the shards listed in `model.safetensors.index.json`,
    /// else every `*.safetensors` file. Q/K rows are converted to the GGUF RoPE layout.
    public convenience init(safetensorsDirectory path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PruneError(.fileNotFound, "model '\(path)' does not exist; pass a Hugging Face model directory or a .safetensors file")
        }
        if isDir.boolValue {
            let config = (path as NSString).appendingPathComponent("config.json")
            try self.init(safetensorsFiles: try Self.weightFiles(inDirectory: path), configPath: config)
        } else {
            let config = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("config.json")
            try self.init(safetensorsFiles: [path], configPath: config)
        }
    }

    /// Loads a model from explicit weight files (one or more shards) and a `config.json`.
    ///
    /// Every tensor's shape is checked against config.json and the f32 size against the machine's
    /// memory before anything is allocated; a tensor holding NaN or infinity is an error naming it.
    public convenience init(safetensorsFiles paths: [String], configPath: String) throws {
        let config = try HFConfig(path: configPath).modelConfig()
        let architecture = try Architectures.named(config.architecture)
        let files = try paths.map { try SafetensorsFile(path: $0) }
        let jobs = try Self.checkedTensors(files, config: config)
        try MemoryBudget.check(config.f32Bytes, what: "model '\(configPath)' loaded as f32 weights",
                               fix: "this model is too large for this machine")
        let store = ParameterStore(layout: TensorNames.layout(for: config))
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
            let (file, info) = jobs[i]
            guard let name = HFNames.canonical(hf: info.name, architecture: architecture) else { return }
            let view = store.view(name)
            do {
                try file.read(info, into: view)
                try Self.checkFinite(view, tensor: info.name, source: "safetensors file '\((file.path as NSString).lastPathComponent)'")
            } catch { errors.set(error); return }
            // Hugging Face rotates halves; a model held in the adjacent-pairs layout gets its Q/K rows reordered.
            HFNames.convertRoPERows(view, canonical: name, config: config, from: .halves, to: config.ropeLayout)
        }
        if let e = errors.first { throw e }
        try self.init(config: config, params: store)
    }

    /// The file and info of each tensor the config's layout needs, in layout order: each must be
    /// present with the shape config.json implies, and no file may hold a tensor the config does
    /// not use.
    static func checkedTensors(_ files: [SafetensorsFile], config: ModelConfig) throws -> [(file: SafetensorsFile, info: SafetensorsTensorInfo)] {
        let architecture = try Architectures.named(config.architecture)
        let byName = try canonicalIndex(files, config: config)
        let layout = TensorNames.layout(for: config)
        let names = files.map { ($0.path as NSString).lastPathComponent }
        let pending = try layout.map { name, shape in
            let hfName = HFNames.hf(canonical: name, architecture: architecture) ?? name
            guard let (file, info) = byName[name] else {
                let fix = name == TensorNames.output ? "; set tie_word_embeddings true in config.json if the head is tied" : ""
                throw PruneError(.badFormat, "safetensors model: tensor '\(hfName)' is missing from \(names)\(fix)")
            }
            guard info.shape == shape else {
                throw PruneError(.shapeMismatch, "safetensors file '\((file.path as NSString).lastPathComponent)': tensor '\(hfName)' has shape \(info.shape), config.json implies \(shape)")
            }
            return (file, info)
        }
        let needed = Set(layout.map(\.name))
        if let (name, (file, info)) = byName.first(where: { !needed.contains($0.key) }) {
            throw PruneError(.shapeMismatch, "safetensors file '\((file.path as NSString).lastPathComponent)': tensor '\(ByteReader.shown(info.name))' (\(name)) is not used by config.json (\(config.nLayers) layers); fix num_hidden_layers")
        }
        return pending
    }

    /// Saves the model as a Hugging Face checkpoint: `model.safetensors` and `config.json` in
    /// `directory` (created if needed), each written atomically. Q/K rows are converted to the
    /// rotate-half layout; per-layer widths go to `config.json`'s `prune_per_layer`. With a
    /// `tokenizer`, `tokenizer.json` and `tokenizer_config.json` are written too, so the directory
    /// is a complete model for this package and for Hugging Face `transformers`.
    public func saveSafetensors(directory: String, dtype: SafetensorsDType = .f32, tokenizer: BPETokenizer? = nil) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw PruneError(.io, "cannot create directory '\(directory)': \(error.localizedDescription)")
        }
        let architecture = try Architectures.named(config.architecture)
        var writer = SafetensorsWriter()
        for e in params.entries {
            guard let hfName = HFNames.hf(canonical: e.name, architecture: architecture) else {
                throw PruneError(.unknownName, "model: tensor '\(e.name)' has no Hugging Face name in architecture '\(architecture.name)'")
            }
            if config.ropeLayout != .halves, HFNames.ropeRows(canonical: e.name, config: config) != nil {
                var rows = params.withValues(e.name) { Array($0) }
                rows.withUnsafeMutableBufferPointer {
                    HFNames.convertRoPERows($0, canonical: e.name, config: config, from: config.ropeLayout, to: .halves)
                }
                writer.add(name: hfName, shape: e.shape, values: rows, dtype: dtype)
            } else {
                params.withValues(e.name) { writer.add(name: hfName, shape: e.shape, data: $0, dtype: dtype) }
            }
        }
        let dir = directory as NSString
        try writer.write(to: dir.appendingPathComponent("model.safetensors"), metadata: ["format": "pt"])
        let json: Data
        do { json = try HFConfig(config, torchDtype: dtype).jsonData() } catch {
            throw PruneError(.io, "cannot encode config.json for '\(directory)': \(error.localizedDescription)")
        }
        try writeAtomically(json, to: dir.appendingPathComponent("config.json"))
        if let tokenizer {
            try writeAtomically(try tokenizer.tokenizerJSON(), to: dir.appendingPathComponent("tokenizer.json"))
            try writeAtomically(try tokenizer.tokenizerConfigJSON(), to: dir.appendingPathComponent("tokenizer_config.json"))
        }
    }

    /// The weight files of a Hugging Face model directory.
    static func weightFiles(inDirectory dir: String) throws -> [String] {
        let d = dir as NSString
        let single = d.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single) { return [single] }
        let indexPath = d.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: indexPath) {
            return try shardFiles(indexPath: indexPath).map { d.appendingPathComponent($0) }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let found = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !found.isEmpty else {
            throw PruneError(.fileNotFound, "model directory '\(dir)' has no .safetensors files; expected model.safetensors or shards with model.safetensors.index.json")
        }
        return found.map { d.appendingPathComponent($0) }
    }

    /// The distinct shard file names of `model.safetensors.index.json`, in first-use order.
    static func shardFiles(indexPath: String) throws -> [String] {
        struct Index: Decodable { let weight_map: [String: String] }
        let data = try RegularFile.read(indexPath, what: "safetensors index", cap: 256 << 20)
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw PruneError(.badFormat, "'\(indexPath)' is not a valid index: it needs a 'weight_map' object of tensor name to file name")
        }
        var seen = Set<String>(), out: [String] = []
        for file in index.weight_map.values.sorted() where seen.insert(file).inserted {
            // 255 bytes: the longest file name (NAME_MAX); a NUL would cut the path short.
            guard !file.contains("/"), file != "..", !file.isEmpty, file.utf8.count <= 255,
                  !file.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw PruneError(.badFormat, "'\(indexPath)': weight_map file '\(ByteReader.shown(file))' must be a plain file name (at most 255 bytes, no control characters) in the same directory")
            }
            out.append(file)
        }
        return out
    }

    /// Maps canonical names to the file holding them; rejects duplicates and tensors that would be
    /// silently ignored (biases, unknown weights).
    static func canonicalIndex(_ files: [SafetensorsFile], config: ModelConfig) throws -> [String: (SafetensorsFile, SafetensorsTensorInfo)] {
        let architecture = try Architectures.named(config.architecture)
        var out: [String: (SafetensorsFile, SafetensorsTensorInfo)] = [:]
        for f in files {
            let file = (f.path as NSString).lastPathComponent
            for t in f.tensors {
                if t.name.hasSuffix("rotary_emb.inv_freq") { continue }  // recomputed from rope_theta
                guard let name = HFNames.canonical(hf: t.name, architecture: architecture) else {
                    throw PruneError(.unsupported, "safetensors file '\(file)': tensor '\(ByteReader.shown(t.name))' is not part of a \(architecture.hfArchitectures.first ?? architecture.name) model (extra weights are not supported)")
                }
                if name == TensorNames.output && config.tiedEmbeddings { continue }  // tied: the embedding is the head
                if let (other, _) = out[name] {
                    throw PruneError(.badFormat, "tensor '\(ByteReader.shown(t.name))' appears in both '\((other.path as NSString).lastPathComponent)' and '\(file)'; remove one copy")
                }
                out[name] = (f, t)
            }
        }
        return out
    }
}
