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

    /// Loads a model from explicit weight files (one or more shards) and a `config.json`. The
    /// weights stay in the memory-mapped files in their stored type and are widened to f32 when
    /// used (see `ParameterStore`'s lazy stores), so a model needs about one tensor of f32 memory
    /// beside what the forward packs.
    ///
    /// Every tensor's shape is checked against config.json first, and every tensor is read once
    /// here, a chunk at a time: a tensor holding NaN or infinity is an error naming it and its file.
    public convenience init(safetensorsFiles paths: [String], configPath: String) throws {
        let config = try HFConfig(path: configPath).modelConfig()
        let files = try paths.map { try SafetensorsFile(path: $0) }
        let tensors = try zip(TensorNames.layout(for: config), Self.checkedTensors(files, config: config)).map { layout, t in
            (name: layout.name, shape: layout.shape, file: t.file, info: t.info,
             source: try t.file.source(t.info, canonical: layout.name, config: config))
        }
        // File by file, in the files' own names and row order, so an error names the shard and the tensor as stored.
        for file in files {
            let stored = try tensors.filter { $0.file === file }.map { ($0.info.name, $0.shape, try file.source($0.info)) }
            try Self.checkFinite(ParameterStore(lazy: stored), source: "safetensors file '\((file.path as NSString).lastPathComponent)'")
        }
        try self.init(config: config, params: ParameterStore(lazy: tensors.map { ($0.name, $0.shape, $0.source) }))
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
    ///
    /// A model with attn_output/ffn_down biases (`ModelConfig.outputBias`, FLAP's compensation) is
    /// refused: Hugging Face's Llama has them only together with q/k/v (`attention_bias`) and
    /// gate/up (`mlp_bias`) biases, Qwen2 not at all; write it as GGUF.
    public func saveSafetensors(directory: String, dtype: SafetensorsDType = .f32, tokenizer: BPETokenizer? = nil) throws {
        guard !config.outputBias else { throw Self.outputBiasSafetensorsError }
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

    /// Why a model with output biases is not written as safetensors.
    public static let outputBiasSafetensorsError = PruneError(.unsupported, "safetensors export: the model has attn_output and ffn_down biases (FLAP's bias compensation), which Hugging Face's LlamaForCausalLM holds only together with q/k/v biases (attention_bias) and gate/up biases (mlp_bias) and Qwen2ForCausalLM not at all; write it as GGUF (output.formats [\"gguf\"]; llama.cpp's llama and deci loaders take the biases)")

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

extension SafetensorsFile {
    /// Reads rows of the tensor `info` as stored: converts them to f32 from the mapped file, then
    /// lets the kernel drop the pages read when they are many. Throws now when the tensor's dtype
    /// is not F32, F16 or BF16.
    func source(_ info: SafetensorsTensorInfo) throws -> TensorSource {
        _ = try checkedDType(info)
        return { [self] rows, into in
            try read(info, rows: rows, into: into)
            dropPages(info, rows: rows)
        }
    }

    /// Reads rows of the tensor `info` as the canonical tensor `name` of a model of `config` holds
    /// them: the Q/K rows and biases of a model in the adjacent-pairs layout come from their
    /// Hugging Face rows in the halves layout (`HFNames.ropeSourceRow`), any other tensor as stored.
    func source(_ info: SafetensorsTensorInfo, canonical name: String, config: ModelConfig) throws -> TensorSource {
        let stored = try source(info)
        guard config.ropeLayout != .halves, HFNames.ropeRows(canonical: name, config: config) != nil else { return stored }
        guard info.shape.count >= 2 else {
            // A bias is one row: read whole and reordered in place.
            return { rows, into in
                try stored(rows, into)
                guard !rows.isEmpty else { return }
                HFNames.convertRoPERows(UnsafeMutableBufferPointer(start: into, count: info.count), canonical: name, config: config,
                                        from: .halves, to: config.ropeLayout)
            }
        }
        let hd = config.headDim, width = info.rowWidth
        return { [self] rows, into in
            for (k, row) in rows.enumerated() {
                let hf = HFNames.ropeSourceRow(row, headDim: hd, from: .halves, to: config.ropeLayout)
                try read(info, rows: hf..<(hf + 1), into: into + k * width)
            }
            // The rows read lie in the heads the rows requested lie in.
            if let first = rows.first, let last = rows.last { dropPages(info, rows: (first / hd * hd)..<((last / hd + 1) * hd)) }
        }
    }
}
