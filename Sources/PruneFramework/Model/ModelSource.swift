import Foundation

/// A model as a user names it: a GGUF file, or a Hugging Face model directory (`config.json`, one or
/// more `*.safetensors` with their index, `tokenizer.json`), or a `.safetensors` file with those
/// beside it. Every command and recipe opens models through this, so each takes either form.
public struct ModelSource: Sendable {
    /// The path as given.
    public let path: String
    /// The GGUF file, when the model is one; nil for a Hugging Face directory.
    public let gguf: GGUFFile?
    /// The folder holding `config.json` and `tokenizer.json` of a Hugging Face model.
    public let huggingFaceFolder: String?

    /// Opens `path`: a folder or a `.safetensors` file is a Hugging Face model, anything else a GGUF.
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PruneError(.fileNotFound, "model '\(path)' does not exist; pass a GGUF file or a Hugging Face model directory (config.json, *.safetensors, tokenizer.json)")
        }
        self.path = path
        if isDir.boolValue || path.hasSuffix(".safetensors") {
            let folder = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
            guard FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent("config.json")) else {
                throw PruneError(.fileNotFound, "model '\(path)': no config.json in '\(folder)'; a Hugging Face model directory holds config.json, *.safetensors and tokenizer.json")
            }
            (gguf, huggingFaceFolder) = (nil, folder)
        } else {
            (gguf, huggingFaceFolder) = (try GGUFFile(path: path), nil)
        }
    }

    /// The model's hyperparameters, read without loading any weights, and checked against the
    /// shapes of the tensors the files hold.
    public func config() throws -> ModelConfig {
        if let gguf { return try ModelConfig(gguf: gguf) }
        let config = try HFConfig(path: file("config.json")).modelConfig()
        _ = try Transformer.checkedTensors(try weightFiles().map { try SafetensorsFile(path: $0) }, config: config)
        return config
    }

    /// The safetensors files of a Hugging Face model.
    private func weightFiles() throws -> [String] {
        path.hasSuffix(".safetensors") ? [path] : try Transformer.weightFiles(inDirectory: path)
    }

    /// Loads the weights (dequantised or widened to f32).
    public func load() throws -> Transformer {
        if let gguf { return try Transformer(gguf: gguf) }
        return try Transformer(safetensorsDirectory: path)
    }

    /// The type each tensor is stored in, by canonical name: a GGUF's ggml types, or a directory's
    /// safetensors dtypes as ggml types (F32, F16, BF16). `same-as-input` exports read this.
    public func tensorTypes() throws -> [String: GGMLType] {
        if let gguf { return gguf.tensorTypes }
        let index = try Transformer.canonicalIndex(try weightFiles().map { try SafetensorsFile(path: $0) }, config: try config())
        let ggml: [SafetensorsDType: GGMLType] = [.f32: .f32, .f16: .f16, .bf16: .bf16]
        return index.compactMapValues { _, info in info.dtype.flatMap { ggml[$0] } }
    }

    /// The tokenizer: the GGUF's own, or the directory's `tokenizer.json` (BOS/EOS from
    /// `tokenizer_config.json` when present).
    public func tokenizer() throws -> BPETokenizer {
        if let gguf { return try BPETokenizer(gguf: gguf) }
        let json = file("tokenizer.json")
        guard FileManager.default.fileExists(atPath: json) else {
            throw PruneError(.fileNotFound, "model '\(path)': no tokenizer.json in '\(huggingFaceFolder ?? path)'; copy the model's tokenizer.json there")
        }
        return try BPETokenizer(tokenizerJSONPath: json)
    }

    /// The files that make up the model, for hashing: the GGUF, or the directory's JSON and
    /// safetensors files, sorted by name.
    public func files() throws -> [String] {
        guard let folder = huggingFaceFolder else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0.hasSuffix(".json") || $0.hasSuffix(".safetensors") }.sorted()
        return names.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// SHA-256 of the model: of the GGUF file, or of the list of `name sha256` lines of `files()`.
    public func sha256() throws -> String {
        guard huggingFaceFolder != nil else { return try SHA256.hex(file: path) }
        let lines = try files().map { "\(($0 as NSString).lastPathComponent) \(try SHA256.hex(file: $0))\n" }
        return SHA256.hex(Data(lines.joined().utf8))
    }

    /// The file name without its extension (GGUF) or the directory's name: the stem of output names.
    public var stem: String {
        let last = (path as NSString).lastPathComponent
        let isFolder = huggingFaceFolder != nil && !path.hasSuffix(".safetensors")
        return isFolder ? last : (last as NSString).deletingPathExtension
    }

    private func file(_ name: String) -> String {
        ((huggingFaceFolder ?? path) as NSString).appendingPathComponent(name)
    }
}
