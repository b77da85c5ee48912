import Foundation
import PruneFramework

/// `prune inspect MODEL.gguf [--json]`: metadata and a tensor table.
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
        let a = try Arguments(args, command: "inspect", valued: ["model"], flags: ["json"])
        guard let path = a.string("model") ?? a.positionals.first else {
            throw PruneError(.invalidArgument, "prune inspect: give a model file, e.g. 'prune inspect models/SmolLM2-135M-Instruct.Q4_1.gguf'")
        }
        let f = try GGUFFile(path: path)
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
