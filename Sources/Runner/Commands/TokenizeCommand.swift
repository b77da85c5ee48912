import Foundation
import PruneFramework

/// `prune tokenize --model M --input FILE --ids-out OUT.i32`: token ids as little-endian int32.
enum TokenizeCommand {
    static func run(_ args: [String]) throws {
        let a = try Arguments(args, command: "tokenize", valued: ["model", "input", "ids-out"], flags: ["parse-special"])
        let model = try a.required("model"), input = try a.required("input"), out = try a.required("ids-out")
        let tokenizer = try ModelSource(path: model).tokenizer()
        let data: Data
        do { data = try RegularFile.read(input, what: "input file") } catch let e as PruneError {
            throw PruneError(e.code, "prune tokenize: \(e.message)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PruneError(.badFormat, "prune tokenize: input file '\(input)' is not valid UTF-8")
        }
        let t0 = Date()
        let ids = tokenizer.encode(text, parseSpecial: a.flag("parse-special"))
        let secs = Date().timeIntervalSince(t0)
        var bytes = Data(capacity: ids.count * 4)
        for id in ids { withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) } }
        try writeAtomically(bytes, to: out)
        CLI.log("wrote \(ids.count) token ids to \(out) (\(String(format: "%.2f", secs)) s)")
    }
}
