import Foundation
import PruneFramework

/// `prune inspect MODEL [--json]`: metadata and a tensor table of a GGUF file, or of a Hugging Face
/// directory (its config.json as the model reads it, and the tensors of its safetensors files).
enum InspectCommand {
    struct TensorRow: Codable { var name: String; var type: String; var shape: [Int]; var bytes: Int }
    struct Report: Codable {
        var path: String; var version: UInt32; var metadata: [String: String]; var tensors: [TensorRow]
        var totalBytes: Int; var parameters: Int
        enum CodingKeys: String, CodingKey {
            case path, version, metadata, tensors, totalBytes = "total_bytes", parameters
        }
    }

    static func run(_ args: [String]) throws {
        let a = try Arguments(args, command: "inspect", valued: ["model"], flags: ["json"], positionals: 0...1)
        if a.string("model") != nil, let extra = a.positionals.first {
            throw PruneError(.invalidArgument, "prune inspect: unexpected argument '\(PruneError.shown(extra))' after '--model'; give the model once: prune inspect MODEL.gguf [--json]")
        }
        guard let path = a.string("model") ?? a.positionals.first else {
            throw PruneError(.invalidArgument, "prune inspect: give a model file, e.g. 'prune inspect models/SmolLM2-135M-Instruct.Q4_1.gguf'")
        }
        let source = try ModelSource(path: path)
        guard let f = source.gguf else { return try huggingFace(source, json: a.flag("json")) }
        let rows = f.tensors.map { TensorRow(name: $0.name, type: $0.type.name, shape: $0.shape, bytes: $0.byteCount) }
        let report = Report(path: path, version: f.version,
                            metadata: Dictionary(f.metadata.map { ($0.key, describe($0.value)) }, uniquingKeysWith: { a, _ in a }),
                            tensors: rows, totalBytes: rows.reduce(0) { $0 + $1.bytes },
                            parameters: f.tensors.reduce(0) { $0 + $1.elementCount })
        if a.flag("json") {
            try CLI.printJSON(report)
            return
        }
        print("file: \(path)")
        print("GGUF version \(f.version), \(f.metadata.count) metadata keys, \(f.tensors.count) tensors, alignment \(f.alignment)")
        print("\nmetadata:")
        let keyWidth = min(48, f.metadata.map { $0.key.count }.max() ?? 0)
        for (k, v) in f.metadata { print("  \(pad(k, keyWidth))  \(describe(v))") }
        print("\ntensors:")
        let nameWidth = min(40, rows.map { $0.name.count }.max() ?? 0)
        print("  \(pad("name", nameWidth))  \(pad("type", 5))  \(pad("shape", 14))  bytes")
        for r in rows {
            let shape = r.shape.map(String.init).joined(separator: "×")
            print("  \(pad(r.name, nameWidth))  \(pad(r.type, 5))  \(pad(shape, 14))  \(r.bytes)")
        }
        print("\n\(report.parameters) parameters in \(report.totalBytes) bytes of tensor data")
    }

    /// A Hugging Face directory: the config it is read as, and every tensor of its safetensors files.
    static func huggingFace(_ source: ModelSource, json: Bool) throws {
        let config = try source.config()
        let files = try source.files().filter { $0.hasSuffix(".safetensors") }.map { try SafetensorsFile(path: $0) }
        let rows = files.flatMap { f in f.tensors.map { TensorRow(name: $0.name, type: $0.dtypeName, shape: $0.shape, bytes: $0.range.count) } }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let configJSON = String(decoding: try enc.encode(config), as: UTF8.self)
        let report = Report(path: source.path, version: 0, metadata: ["config": configJSON], tensors: rows,
                            totalBytes: rows.reduce(0) { $0 + $1.bytes }, parameters: rows.reduce(0) { $0 + $1.shape.reduce(1, *) })
        if json { return try CLI.printJSON(report) }
        print("directory: \(source.path) (Hugging Face, \(files.count) safetensors file(s), \(rows.count) tensors)")
        print("\nconfig (as read): architecture \(config.architecture), \(config.nLayers) layers, hidden \(config.hiddenSize), "
              + "heads \(Set(config.nHead).sorted()), KV heads \(Set(config.nKVHead).sorted()), MLP \(Set(config.ffnDim).sorted()), "
              + "vocab \(config.vocabSize), tied head \(config.tiedEmbeddings), q/k/v biases \(config.attentionBias)")
        print("\ntensors:")
        let nameWidth = min(48, rows.map { $0.name.count }.max() ?? 0)
        for r in rows { print("  \(pad(r.name, nameWidth))  \(pad(r.type, 5))  \(pad(r.shape.map(String.init).joined(separator: "×"), 14))  \(r.bytes)") }
        print("\n\(report.parameters) parameters in \(report.totalBytes) bytes of tensor data")
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    /// A short rendering of a metadata value; long arrays show their length and first items.
    static func describe(_ v: GGUFValue) -> String {
        switch v {
        case .string(let s): return s.count > 80 ? "\"\(s.prefix(77))...\" (\(s.count) chars)" : "\"\(s)\""
        case .array(let a):
            let head = a.prefix(5).map(describe).joined(separator: ", ")
            return a.count > 5 ? "[\(head), ...] (\(a.count) items)" : "[\(head)]"
        case .bool(let b): return String(b)
        default:
            if let i = v.int { return String(i) }
            if let d = v.double { return String(d) }
            return "\(v)"
        }
    }
}
