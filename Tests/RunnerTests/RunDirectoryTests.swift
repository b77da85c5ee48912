import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// An output directory holds one run: a complete, consistent result (run.json `finished`, listing
/// exactly the files there) or one marked unfinished, never a mix of two runs.
@Suite(.serialized) struct RunDirectoryTests {
    /// A SmolLM2 recipe with small settings; `formats` and `type` set the output.
    static func recipe(formats: String, type: String) -> String {
        """
        {"version": 1, "model": "\(RequiredFile.smolLM2.path)",
         "calibration": {"dataset": "wikitext2", "samples": 2, "seqLen": 32},
         "grouping": {"type": "llama", "layers": [2, 27]},
         "criterion": {"type": "wanda"},
         "scheduler": {"type": "uniform", "ratio": 0.2},
         "evaluation": {"datasets": ["wikitext2"], "seqLen": 64, "maxWindows": 3},
         "output": {"dir": "out", "formats": [\(formats)], "type": "\(type)"}}
        """
    }

    /// The directory's state: run.json, and every file in it (relative paths), hidden ones included.
    static func contents(_ dir: String) throws -> (state: RunDirectory.State?, files: Set<String>) {
        let all = (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String]) ?? []
        let files = Set(all.filter { p in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir) && !isDir.boolValue
        })
        let state = try? JSONDecoder().decode(RunDirectory.State.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/run.json")))
        return (state, files)
    }

    /// Checks the invariant: finished and exactly its files (plus run.json), or marked unfinished
    /// and holding nothing but what the run `recipe` writes (and temporary files of the killed run).
    static func checkConsistent(_ dir: String, recipe: String, writes: Set<String>, killed: Bool, _ what: String) throws {
        let (state, files) = try contents(dir)
        let s = try #require(state, "\(what): no run.json; files \(files.sorted())")
        let visible = files.filter { !$0.split(separator: "/").last!.hasPrefix(".") }
        if s.status == "finished" {
            #expect(visible == Set(s.files + ["run.json"]), "\(what): finished, but files \(visible.sorted()) != listed \(s.files.sorted())")
            #expect(s.recipe == recipe || !killed, "\(what)")
            if let report = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/report.json"))) as? [String: Any] {
                #expect(report["recipe"] as? String == s.recipe, "\(what): report.json of another run")
            }
        } else {
            #expect(killed && s.status == "running" && s.recipe == recipe, "\(what): status \(s.status) of \(s.recipe)")
            #expect(visible.subtracting(writes).subtracting(["run.json"]).isEmpty,
                    "\(what): unfinished run beside files it does not write: \(visible.subtracting(writes).sorted())")
        }
        if !killed { #expect(files == visible, "\(what): temporary files left: \(files.subtracting(visible).sorted())") }
    }

    /// Starts `prune run RECIPE`, kills it with `signal` once a line of its log contains `marker`
    /// (nil: lets it finish); returns the exit status.
    static func run(_ recipe: String, cwd: String, killAt marker: String?, signal: Int32 = SIGKILL) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(WorkingDirectoryTests.prune))
        p.arguments = ["run", recipe]
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var log = ""
        while true {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
            if let marker, log.contains(marker) {
                kill(p.processIdentifier, signal)
                break
            }
        }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(.requires(.smolLM2)) func aKilledRunLeavesAMarkedDirectoryAndARerunCompletesIt() throws {
        let dir = try temporaryDirectory("prune-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.recipe(formats: "\"gguf\", \"safetensors\"", type: "f16").utf8).write(to: URL(fileURLWithPath: dir + "/r0.json"))
        try Data(Self.recipe(formats: "\"gguf\"", type: "same-as-input").utf8).write(to: URL(fileURLWithPath: dir + "/r1.json"))
        let out = dir + "/out"
        let writes: Set<String> = ["SmolLM2-135M-Instruct.Q4_1.pruned.gguf", "sparsity.svg", "recipe.resolved.json", "report.json", "report.md"]
        #expect(try Self.run("r0.json", cwd: dir, killAt: nil) == 0)
        try Self.checkConsistent(out, recipe: "r0.json", writes: [], killed: false, "the earlier run")
        #expect(try Self.contents(out).files.contains("safetensors/model.safetensors"))
        for marker in ["▶ load", "▶ evaluate dense model", "▶ calibrate", "▶ score", "▶ write outputs", "▶ evaluate pruned model", "wrote "] {
            let status = try Self.run("r1.json", cwd: dir, killAt: marker)
            try Self.checkConsistent(out, recipe: "r1.json", writes: writes, killed: true, "killed at '\(marker)' (exit \(status))")
            let (state, files) = try Self.contents(out)
            print("run killed at '\(marker)': exit \(status), run.json \(state?.status ?? "missing"), files \(files.sorted())")
        }
        // A stale temporary file of a process that no longer runs is removed by the next run.
        try Data("partial".utf8).write(to: URL(fileURLWithPath: out + "/.SmolLM2-135M-Instruct.Q4_1.pruned.gguf.tmp-999999"))
        #expect(try Self.run("r1.json", cwd: dir, killAt: nil) == 0)
        try Self.checkConsistent(out, recipe: "r1.json", writes: writes, killed: false, "the re-run")
        #expect(try Self.contents(out).state?.status == "finished")
        #expect(!FileManager.default.fileExists(atPath: out + "/safetensors"), "the earlier run's safetensors model is gone")
    }

    @Test(.requires(.smolLM2)) func anInterruptedRunRemovesItsTemporaryFilesAndSaysSo() throws {
        let dir = try temporaryDirectory("prune-sigterm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.recipe(formats: "\"gguf\", \"safetensors\"", type: "f32").utf8).write(to: URL(fileURLWithPath: dir + "/r.json"))
        let status = try Self.run("r.json", cwd: dir, killAt: "▶ write outputs", signal: SIGTERM)
        let (state, files) = try Self.contents(dir + "/out")
        if status == 128 + SIGTERM {
            #expect(state?.status == "interrupted" && state?.error == "stopped by signal \(SIGTERM)", "\(String(describing: state))")
        } else {
            #expect(status == 0 && state?.status == "finished", "exit \(status), \(String(describing: state))")
        }
        #expect(!files.contains { $0.split(separator: "/").last!.hasPrefix(".") }, "temporary files left: \(files.sorted())")
    }

    @Test func theInputModelIsNeverRemoved() throws {
        let dir = try temporaryDirectory("prune-keep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/m.pruned.gguf", old = dir + "/old.pruned.q8_0.gguf", mine = dir + "/notes.txt"
        for p in [model, old, mine] { try Data("x".utf8).write(to: URL(fileURLWithPath: p)) }
        let d = RunDirectory(path: dir, recipe: "r.json", keep: [model])
        try d.begin()
        #expect(FileManager.default.fileExists(atPath: model) && FileManager.default.fileExists(atPath: mine))
        #expect(!FileManager.default.fileExists(atPath: old))
        try d.finish(files: [])
        #expect(try Self.contents(dir).state?.status == "finished")
    }

    @Test func sweepEntriesWhoseNamesDifferInCaseGetTheirOwnFolders() {
        func planned(_ name: String) -> Comparison.Planned {
            Comparison.Planned(name: name, method: name, ratio: 0.2, fineTune: false, dense: false,
                               recipe: try! Recipe.decode(Data(RecipeTests.good.utf8), plugins: .builtins()), identity: .null, key: name)
        }
        var p = [planned("wanda"), planned("Wanda"), planned("wanda!"), planned("taylor")]
        Comparison.assignFolders(&p)
        #expect(p.map(\.folder) == ["wanda-20", "wanda-20-2", "wanda-20-3", "taylor-20"])
    }

    @Test func staleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        let dir = try temporaryDirectory("prune-stale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = ".m.gguf.tmp-999999", live = ".m.gguf.tmp-\(getpid())", other = ".hidden"
        for n in [dead, live, other] { try Data().write(to: URL(fileURLWithPath: dir + "/" + n)) }
        #expect(TemporaryFiles.removeStale(in: dir) == [dead])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == [live, other])
    }
}
