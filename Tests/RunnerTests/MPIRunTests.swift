import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// `mpirun -np 2 prune run` on SmolLM2 against one process: the same pruning plan (the same
/// exported model, byte for byte) and perplexity and accuracies within 1e-6 relative, for wanda,
/// taylor and a two-entry sweep; and what a failing rank leaves.
@Suite(.serialized, .requires(.smolLM2), .requiresMPIRun) struct MPIRunTests {
    /// A small quick-start: 16 × 64 calibration tokens, 8 evaluation windows, 10 PIQA items.
    static func recipe(criterion: String, output: String, sweep: String? = nil, compensator: String? = nil) -> String {
        """
        {\(compensator.map { "\n  \"compensator\": \($0)," } ?? "")
          "version": 1,
          "model": "\(RequiredFile.smolLM2.path)",
          "calibration": { "dataset": "c4", "samples": 16, "seqLen": 64, "seed": 42 },
          "grouping": { "type": "decoder", "structures": ["kv-groups", "mlp-channels"], "layers": [3, 26] },
          "criterion": \(criterion),
          "scheduler": { "type": "uniform", "ratio": 0.2, "roundTo": 32 },
          "evaluation": { "datasets": ["wikitext2"], "seqLen": 128, "maxWindows": 8, "tasks": ["piqa"], "taskLimit": 10 },
          "output": { "dir": "\(output)", "formats": ["gguf"], "type": "same-as-input" }\(sweep.map { ",\n  \"sweep\": \($0)" } ?? "")
        }
        """
    }

    /// Runs `prune run RECIPE` as one process and under `mpirun -np 2`, each into its own folder.
    static func runBoth(_ name: String, criterion: String, sweep: String? = nil, compensator: String? = nil) throws -> (one: String, two: String) {
        let dir = try temporaryDirectory("mpi-\(name)")
        let path = dir + "/recipe.json"
        try Data(recipe(criterion: criterion, output: dir + "/one", sweep: sweep, compensator: compensator).utf8).write(to: URL(fileURLWithPath: path))
        let prune = try #require(WorkingDirectoryTests.prune)
        let args = ["run", path, "--data-dir", Repository.data]
        let one = try MPITests.run(prune, args, environment: [:], timeout: 600)
        #expect(one.status == 0, "\(one.stderr)")
        // The ranks' temporary folders go under the test's folder, to check that none is left.
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        let two = try MPITests.mpirun(2, args + ["--output-dir", dir + "/two"], environment: ["TMPDIR": dir + "/tmp"], timeout: 600)
        #expect(two.status == 0, "\(two.stderr)")
        return (dir + "/one", dir + "/two")
    }

    static func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-6 * abs(a) }

    /// Same exported model, perplexities and accuracies; the report says how the work was shared.
    static func checkRun(_ one: String, _ two: String, shared: [String]) throws {
        let gguf = try #require(try FileManager.default.contentsOfDirectory(atPath: one).first { $0.hasSuffix(".gguf") })
        #expect(try SHA256.hex(Data(contentsOf: URL(fileURLWithPath: one + "/" + gguf)))
                == SHA256.hex(Data(contentsOf: URL(fileURLWithPath: two + "/" + gguf))), "the plans differ")
        let a = try json(one + "/report.json"), b = try json(two + "/report.json")
        for key in ["ppl_before", "ppl_after"] {
            let x = try #require(a[key] as? Double), y = try #require(b[key] as? Double)
            #expect(close(x, y), "\(key): one process \(x), two \(y)")
        }
        let za = try #require(a["zero_shot"] as? [[String: Any]]), zb = try #require(b["zero_shot"] as? [[String: Any]])
        for (x, y) in zip(za, zb) {
            for key in ["acc", "acc_norm"] { #expect(close(x[key] as! Double, y[key] as! Double), "\(key)") }
        }
        #expect(a["distributed"] == nil)
        let d = try #require(b["distributed"] as? [String: Any])
        #expect(d["ranks"] as? Int == 2)
        let stages = try #require(d["shared_stages"] as? [String])
        for s in shared { #expect(stages.contains { $0.hasPrefix(s) }, "\(s) not in \(stages)") }
        // Rank 1 wrote nothing of its own: no temporary folder is left.
        let tmp = (two as NSString).deletingLastPathComponent + "/tmp"
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix("prune-") }.isEmpty)
    }

    @Test func wandaOnTwoRanksMatchesOneProcess() throws {
        let (one, two) = try Self.runBoth("wanda", criterion: #"{ "type": "wanda" }"#)
        defer { try? FileManager.default.removeItem(atPath: (one as NSString).deletingLastPathComponent) }
        try Self.checkRun(one, two, shared: ["evaluate dense model", "calibrate", "evaluate pruned model", "zero-shot"])
    }

    @Test func taylorOnTwoRanksMatchesOneProcess() throws {
        let (one, two) = try Self.runBoth("taylor", criterion: #"{ "type": "taylor", "estimator": "element1" }"#)
        defer { try? FileManager.default.removeItem(atPath: (one as NSString).deletingLastPathComponent) }
        try Self.checkRun(one, two, shared: ["evaluate dense model", "gradients", "evaluate pruned model", "zero-shot"])
    }

    /// OBS shares its calibration sequences and adds each layer's Hessians over the ranks (in one
    /// tensor order on every rank).
    @Test func wandaWithOBSOnTwoRanksMatchesOneProcess() throws {
        let (one, two) = try Self.runBoth("obs", criterion: #"{ "type": "wanda" }"#, compensator: #"{ "type": "obs" }"#)
        defer { try? FileManager.default.removeItem(atPath: (one as NSString).deletingLastPathComponent) }
        try Self.checkRun(one, two, shared: ["calibrate", "compensate with 'obs'", "evaluate pruned model"])
    }

    @Test func twoEntrySweepOnTwoRanksMatchesOneProcess() throws {
        let sweep = #"{ "title": "two entries", "sparsities": [0.2], "methods": [{ "name": "wanda" }, { "name": "taylor", "criterion": { "type": "taylor", "estimator": "element1" } }] }"#
        let (one, two) = try Self.runBoth("sweep", criterion: #"{ "type": "wanda" }"#, sweep: sweep)
        defer { try? FileManager.default.removeItem(atPath: (one as NSString).deletingLastPathComponent) }
        let a = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: one + "/comparison.json"))) as? [[String: Any]])
        let b = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: two + "/comparison.json"))) as? [[String: Any]])
        #expect(a.count == 3 && b.count == 3)
        for (x, y) in zip(a, b) {
            #expect(x["name"] as? String == y["name"] as? String)
            #expect(x["parameters"] as? Int == y["parameters"] as? Int)
            let px = (x["perplexity"] as! [[String: Any]])[0]["ppl"] as! Double, py = (y["perplexity"] as! [[String: Any]])[0]["ppl"] as! Double
            #expect(Self.close(px, py), "\(x["name"]!): \(px) vs \(py)")
            let zx = (x["zeroShot"] as! [[String: Any]])[0], zy = (y["zeroShot"] as! [[String: Any]])[0]
            #expect(Self.close(zx["acc"] as! Double, zy["acc"] as! Double) && Self.close(zx["acc_norm"] as! Double, zy["acc_norm"] as! Double))
        }
        // Rank 0 wrote every entry's run folder and cache file.
        for folder in ["wanda-20", "taylor-20"] {
            #expect(FileManager.default.fileExists(atPath: two + "/runs/\(folder)/report.json"), "\(folder)")
            let state = try Self.json(two + "/runs/\(folder)/run.json")
            #expect(state["status"] as? String == "finished")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: two + "/cache").filter { $0.hasSuffix(".json") }.count == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: (two as NSString).deletingLastPathComponent + "/tmp").filter { $0.hasPrefix("prune-") }.isEmpty)
        // A second run computes nothing: every entry comes from the cache.
        let again = try MPITests.mpirun(2, ["run", (one as NSString).deletingLastPathComponent + "/recipe.json", "--data-dir", Repository.data,
                                            "--output-dir", two], timeout: 300)
        #expect(again.status == 0 && again.stderr.contains("0 computed over 2 processes"), "\(again.stderr)")
    }

    /// A rank that fails alone (here rank 1 gets a recipe whose calibration asks for more tokens
    /// than the data holds) ends every rank with an error naming it and its stage; the output
    /// directory holds no report or model.
    @Test func aRankThatFailsEndsTheRunWithItsRankAndStage() throws {
        let dir = try temporaryDirectory("mpi-fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good.json", bad = dir + "/bad.json"
        try Data(Self.recipe(criterion: #"{ "type": "wanda" }"#, output: dir + "/out").utf8).write(to: URL(fileURLWithPath: good))
        let tooMany = Self.recipe(criterion: #"{ "type": "wanda" }"#, output: dir + "/out").replacingOccurrences(of: #""samples": 16"#, with: #""samples": 100000"#)
        try Data(tooMany.utf8).write(to: URL(fileURLWithPath: bad))
        let mpirun = try #require(MPIRun.path), prune = try #require(WorkingDirectoryTests.prune)
        let r = try MPITests.run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "1", prune, "run", good, "--data-dir", Repository.data, ":",
                                          "-np", "1", prune, "run", bad, "--data-dir", Repository.data], environment: [:], timeout: 300)
        #expect(r.status != 0)
        #expect(r.stderr.contains("prune: error on rank 1 of 2, during 'tokenize calibration data': calibration documents hold"), "\(r.stderr)")
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir + "/out")
        #expect(!listing.contains("report.json") && !listing.contains { $0.hasSuffix(".gguf") }, "\(listing)")
        #expect(try Self.json(dir + "/out/run.json")["status"] as? String != "finished")
    }
}

extension MPIRunTests {
    /// A rank killed outright (here `timeout -s KILL` ends rank 1 after 6 s): mpirun names it, the
    /// other rank says which stage it was in, and the output directory is marked interrupted.
    @Test func aKilledRankEndsTheRunAndLeavesNoOutput() throws {
        let dir = try temporaryDirectory("mpi-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/recipe.json"
        try Data(Self.recipe(criterion: #"{ "type": "wanda" }"#, output: dir + "/out").utf8).write(to: URL(fileURLWithPath: path))
        let mpirun = try #require(MPIRun.path), prune = try #require(WorkingDirectoryTests.prune)
        let run = [prune, "run", path, "--data-dir", Repository.data]
        let r = try MPITests.run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "1"] + run + [":", "-np", "1", "timeout", "-s", "KILL", "6"] + run,
                                 environment: ["TMPDIR": dir], timeout: 300)  // the killed rank's folder stays in dir
        #expect(r.status != 0)
        #expect(r.stderr.contains("process rank 1") && r.stderr.contains("signal 9"), "\(r.stderr)")
        #expect(r.stderr.contains("prune: stopped by signal 15 (rank 0 of 2, during '"), "\(r.stderr)")
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir + "/out")
        #expect(!listing.contains("report.json") && !listing.contains { $0.hasSuffix(".gguf") }, "\(listing)")
        #expect(try Self.json(dir + "/out/run.json")["status"] as? String == "interrupted")
    }

    /// LoRA data parallel: each rank runs its share of every step's micro-batches (skipping the
    /// others' dropout draws) and the adapters' gradients are added over the ranks, so the losses
    /// follow one process's to Float rounding.
    @Test func loraOnTwoRanksFollowsOneProcess() throws {
        let dir = try temporaryDirectory("mpi-lora")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipe = Self.recipe(criterion: #"{ "type": "wanda" }"#, output: dir + "/one")
            .replacingOccurrences(of: #""tasks": ["piqa"], "taskLimit": 10"#, with: #""tasks": []"#)
            .replacingOccurrences(of: #""maxWindows": 8"#, with: #""maxWindows": 4"#)
            .replacingOccurrences(of: #""scheduler""#, with: #""fineTuner": { "type": "lora", "steps": 4, "batch": 4, "microBatch": 1, "seqLen": 64 }, "scheduler""#)
        try Data(recipe.utf8).write(to: URL(fileURLWithPath: dir + "/recipe.json"))
        let args = ["run", dir + "/recipe.json", "--data-dir", Repository.data]
        let one = try MPITests.run(try #require(WorkingDirectoryTests.prune), args, environment: [:], timeout: 600)
        #expect(one.status == 0, "\(one.stderr)")
        let two = try MPITests.mpirun(2, args + ["--output-dir", dir + "/two"], timeout: 600)
        #expect(two.status == 0, "\(two.stderr)")
        let a = try Self.json(dir + "/one/report.json"), b = try Self.json(dir + "/two/report.json")
        let la = try #require((a["fine_tune"] as? [String: Any])?["losses"] as? [Double])
        let lb = try #require((b["fine_tune"] as? [String: Any])?["losses"] as? [Double])
        #expect(la.count == 4 && lb.count == 4)
        for (x, y) in zip(la, lb) { #expect(abs(x - y) <= 1e-5 * abs(x), "losses \(la) vs \(lb)") }
        let stages = try #require((b["distributed"] as? [String: Any])?["shared_stages"] as? [String])
        #expect(stages.contains("fine-tune with 'lora'"), "\(stages)")
    }
}
