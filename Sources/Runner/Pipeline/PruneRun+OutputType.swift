import Foundation
import PruneFramework

extension PruneRun {
    /// Checks, before any work, that every tensor of the input can be written in the output type:
    /// `same-as-input` needs types this package encodes.
    func checkOutputType(source: ModelSource) throws {
        guard recipe.output.formats.contains("gguf"), recipe.output.type == "same-as-input" else { return }
        let types = try source.tensorTypes()
        if let (name, t) = types.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.canBeWritten }) {
            throw PruneError(.unsupported, "recipe: output.type 'same-as-input': the input's tensor '\(name)' is \(t.name), which this package cannot write; set output.type to one of \(GGUFOutputType.names.dropFirst().joined(separator: ", "))")
        }
    }

    /// The safetensors dtype: the recipe's f32, f16 or bf16, or for `same-as-input` the input's
    /// float type when all its matrices share one (a quantized input gives f16).
    func safetensorsType(_ source: ModelSource) throws -> SafetensorsDType {
        switch recipe.output.type {
        case "f32": return .f32
        case "bf16": return .bf16
        case "same-as-input":
            let floats: [GGMLType: SafetensorsDType] = [.f32: .f32, .f16: .f16, .bf16: .bf16]
            let kinds = Set(try source.tensorTypes().filter { $0.key.hasSuffix(".weight") && !$0.key.contains("norm") }.values)
            return kinds.count == 1 ? floats[kinds.first!] ?? .f16 : .f16
        default: return .f16
        }
    }
}

extension GGUFExportSummary {
    /// The report's section on the GGUF's tensor types (Markdown).
    var markdown: String {
        var s = "## GGUF tensor types\n\n"
        s += tensorsPerType.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + " tensors.\n"
        if fallbacks.isEmpty { return s + "\n" }
        s += "\n\(fallbacks.count) matrices are written in another type than asked: rows that do not fill the type's blocks fall back as "
        s += "llama-quantize does, and a tensor with values beyond f16's range stays F32.\n\n"
        s += "| tensor | written as | instead of |\n|---|---|---|\n"
        for f in fallbacks { s += "| `\(f.tensor)` | \(f.type) | \(f.instead) |\n" }
        return s + "\n"
    }
}
