import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// `prune eval --tasks`: bad task lists and options give one line naming the problem.
@Suite struct ZeroShotCLITests {
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

    @Test(arguments: [
        (["eval", "--model", "m.gguf", "--tasks", "boolq,hellaswog"],
         "unknown task 'hellaswog' in '--tasks'; allowed: boolq, piqa, hellaswag, winogrande, arc_easy, arc_challenge, openbookqa"),
        (["eval", "--model", "m.gguf", "--tasks", ","], "names no task"),
        (["eval", "--model", "m.gguf", "--tasks", "piqa", "--limit", "0"], "'--limit'"),
        (["eval", "--model", "m.gguf", "--tasks", "piqa", "--scoring", "fast"], "'--scoring' = 'fast'"),
        (["eval", "--model", "m.gguf", "--tasks", "piqa", "--dataset", "wikitext2"], "'--tasks' and '--dataset'"),
        (["eval", "--tasks", "piqa"], "'--model' is required"),
    ])
    func badTaskArgumentsNameTheProblem(argv: [String], fragment: String) {
        let m = message(argv)
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
        #expect(m?.contains("\n") == false)
    }

    @Test func unknownTaskExitsWithUsageStatus() {
        #expect(CLI.run(["eval", "--model", "m.gguf", "--tasks", "mmlu"]) == 2)
    }
}
