import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// Bad command lines and bad files give one clear error naming the problem (never a crash).
@Suite struct CLITests {
    static let repoRoot = Repository.root

    func message(_ argv: [String]) -> String? {
        do {
            try CLI.dispatch(argv)
            return nil
        } catch let e as PruneError {
            return e.message
        } catch {
            return "\(error)"
        }
    }

    func tempFile(_ bytes: [UInt8]) throws -> String {
        let p = NSTemporaryDirectory() + "prune-cli-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test(arguments: [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["eval", "--model"], "'--model' needs a value"),
        (["eval", "--dataset", "wikitext2"], "'--model' is required"),
        (["eval", "--model", "m.gguf", "--dataset", "wikitext2", "--seq-len", "1"], "'--seq-len' = '1'"),
        (["eval", "--model", "m.gguf", "--dataset", "wikitext2", "--bogus", "3"], "unknown option '--bogus'"),
        (["eval", "--model", "m.gguf", "--dataset", "wikitext2", "--numerics", "f16"], "'--numerics' = 'f16' is unknown"),
        (["eval", "--model", "m.gguf", "--tasks", "piqa", "--numerics", "llamacpp"], "'--numerics llamacpp' applies to perplexity"),
        (["inspect", "/nonexistent/model.gguf"], "/nonexistent/model.gguf"),
        (["bench", "nothing"], "unknown benchmark 'nothing'"),
        (["generate", "--model", "m.gguf"], "'--prompt' is required"),
    ])
    func badArgumentsNameTheProblem(argv: [String], fragment: String) {
        let m = message(argv)
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
        #expect(m?.contains("\n") == false)
    }

    /// An argument a command does not take is an error quoting the command's usage, not silently dropped.
    @Test(arguments: [
        (["validate", "a.json", "b.json"], "prune validate: unexpected argument 'b.json'; usage: prune validate RECIPE.json"),
        (["run", "a.json", "b.json"], "prune run: unexpected argument 'b.json'; usage: prune run RECIPE.json [--output-dir D] [--data-dir DIR] [--from-cache]"),
        (["inspect", "m.gguf", "extra"], "prune inspect: unexpected argument 'extra'; usage: prune inspect MODEL.gguf [--json]"),
        (["inspect", "--model", "m.gguf", "extra"], "prune inspect: unexpected argument 'extra' after '--model'"),
        (["list", "x"], "prune list: unexpected argument 'x'; usage: prune list [--json]"),
        (["schema", "x"], "prune schema: unexpected argument 'x'; usage: prune schema"),
        (["eval", "--model", "m.gguf", "--dataset", "wikitext2", "x"], "prune eval: unexpected argument 'x'; usage: prune eval --model M --dataset"),
        (["tokenize", "--model", "m.gguf", "x"], "prune tokenize: unexpected argument 'x'; usage: prune tokenize --model M --input FILE --ids-out OUT.i32"),
        (["generate", "--model", "m.gguf", "--prompt", "hi", "x"], "prune generate: unexpected argument 'x'; usage: prune generate --model M --prompt TEXT"),
        (["bench", "matmul", "x"], "prune bench matmul: unexpected argument 'x'; usage: prune bench matmul [--json] [--min-seconds 0.3]"),
        (["bench", "forward", "--model", "m.gguf", "x"], "prune bench forward: unexpected argument 'x'; usage: prune bench forward --model M"),
        (["bench", "backward", "x"], "prune bench backward: unexpected argument 'x'; usage: prune bench backward --model M"),
        (["validate", "a.json", "b\nc"], "prune validate: unexpected argument 'b\\u{a}c'"),
    ])
    func extraPositionalArgumentsAreErrors(argv: [String], fragment: String) {
        let m = message(argv)
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
        #expect(m?.contains("\n") == false)
        #expect(CLI.run(argv) == 2)
    }

    @Test func longArgumentsAreCut() {
        let m = message(["validate", "a.json", String(repeating: "z", count: 100_000)])
        #expect(m?.contains(String(repeating: "z", count: 100) + "… (100000 bytes)'") == true && (m?.count ?? 0) < 300, "got: \(m?.prefix(400) ?? "no error")")
    }

    /// `prune validate` on a recipe file with a duplicate key or a syntax error names the file, line and column.
    @Test func validateNamesFileLineAndColumn() throws {
        let dir = try temporaryDirectory("prune-cli-recipe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dup = dir + "/dup.json", syntax = dir + "/syntax.json", nul = dir + "/nul.json"
        try Data(RecipeTests.good.replacingOccurrences(of: "\"ratio\": 0.2", with: "\"ratio\": 0.2, \"ratio\": 5").utf8).write(to: URL(fileURLWithPath: dup))
        try Data(RecipeTests.good.replacingOccurrences(of: "\"ratio\": 0.2", with: "\"ratio\": 0.2,").utf8).write(to: URL(fileURLWithPath: syntax))
        try Data(RecipeTests.good.replacingOccurrences(of: "}}", with: "}, \"output\": {\"dir\": \"o\\u0000\"}}").utf8).write(to: URL(fileURLWithPath: nul))
        #expect(message(["validate", dup]) == "recipe '\(dup)': duplicate key 'ratio' at scheduler.ratio (line 4, column 49); each key may appear once")
        #expect(message(["validate", syntax]) == "recipe '\(syntax)' is not valid JSON: line 4, column 48: expected a key in double quotes after ',' in scheduler, found '}'; a trailing comma is not allowed")
        #expect(message(["validate", nul])?.hasPrefix("recipe: output.dir = 'o\\u{0}' contains a NUL character") == true, "\(message(["validate", nul]) ?? "")")
    }

    @Test func wrongMagicNamesTheFile() throws {
        let p = try tempFile(Array("NOTGGUF-and-some-more-bytes".utf8))
        defer { try? FileManager.default.removeItem(atPath: p) }
        let m = message(["inspect", p])
        #expect(m?.contains(p) == true || m?.contains((p as NSString).lastPathComponent) == true, "got: \(m ?? "")")
        #expect(m?.lowercased().contains("magic") == true, "got: \(m ?? "")")
    }

    @Test func unknownDatasetIsNamed() throws {
        let m = message(["eval", "--model", "x.gguf", "--dataset", "no-such-set"])
        #expect(m?.contains("no-such-set") == true, "got: \(m ?? "")")
    }

    @Test func exitStatusIsNonZeroOnError() {
        #expect(CLI.run(["eval", "--dataset", "wikitext2"]) != 0)
        #expect(CLI.run(["inspect", "/nonexistent.gguf"]) != 0)
    }
}
