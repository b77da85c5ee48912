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
