import Foundation
import PruneFramework

/// An output directory written as one unit, with `run.json` saying how far its run got.
///
/// `begin()` removes what an earlier run left (the files its `run.json` lists, the outputs this
/// tool names, and temporary files of killed processes), then writes `run.json` with status
/// `running`. `finish(files:)` writes it last, with status `finished` and the list of files the
/// run wrote; `fail(_:)` records `failed` and the error. A directory whose `run.json` still says
/// `running` (and whose process is gone) holds a run that was killed: nothing in it is complete.
/// Files the tool did not write are never touched.
final class RunDirectory {
    /// The contents of `run.json`.
    struct State: Codable, Equatable {
        var status: String
        var recipe: String
        var pid: Int32
        var started: String
        var ended: String?
        /// Paths relative to the directory, written by the run (set when it finished).
        var files: [String]
        var error: String?
    }

    static let stateFile = "run.json"
    /// What a run writes besides its model files, and what runs before `run.json` existed wrote.
    static let knownOutputs = ["report.json", "report.md", "recipe.resolved.json", "sparsity.svg", "finetune.svg",
                               "safetensors/model.safetensors", "safetensors/config.json", "safetensors/tokenizer.json",
                               "safetensors/tokenizer_config.json"]

    let path: String
    /// Files never removed, whatever their names (the run's input model).
    let keep: Set<String>
    private var state: State

    /// The run's directory (created when missing); `recipe` names the recipe in `run.json`; the
    /// files in `keep` are never removed.
    init(path: String, recipe: String, keep: [String]) {
        self.path = path
        self.keep = Set(keep.map(Self.absolute))
        state = State(status: "running", recipe: recipe, pid: getpid(), started: Self.now(), files: [])
    }

    /// Clears what an earlier run left and marks the directory as holding a running run.
    func begin() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw PruneError(.io, "cannot create output directory '\(path)': \(error.localizedDescription)")
        }
        for dir in [path, file("safetensors")] { TemporaryFiles.removeStale(in: dir) }
        try removePreviousRun()
        try save()
        Self.lock.withLock { Self.active.append(self) }
    }

    /// Runs `body` as the directory's run: `begin()`, then `finish` with the files `files` names
    /// from its result, or `fail` when it throws.
    func run<T>(_ body: () throws -> T, files: (T) -> [String]) throws -> T {
        try begin()
        do {
            let result = try body()
            try finish(files: files(result))
            return result
        } catch {
            fail(error)
            throw error
        }
    }

    /// Marks the run finished with the files it wrote (relative paths); `run.json` is written last.
    func finish(files: [String]) throws {
        state.status = "finished"
        state.files = files
        state.ended = Self.now()
        try save()
        Self.lock.withLock { Self.active.removeAll { $0 === self } }
    }

    /// Records that the run stopped with `error` (best effort: the error is what matters).
    func fail(_ error: Error) {
        state.status = "failed"
        state.error = (error as? PruneError)?.message ?? "\(error)"
        state.ended = Self.now()
        try? save()
        Self.lock.withLock { Self.active.removeAll { $0 === self } }
    }

    /// Records that the process was stopped by a signal (called from the signal handler).
    func interrupt(signal: Int32) {
        state.status = "interrupted"
        state.error = "stopped by signal \(signal)"
        state.ended = Self.now()
        try? save()
    }

    /// Removes the files an earlier run wrote: those its `run.json` lists and the tool's own
    /// output names (`*.pruned*.gguf` among them), never anything else.
    private func removePreviousRun() throws {
        var names = Set(Self.knownOutputs + [Self.stateFile])
        if let data = try? RegularFile.read(file(Self.stateFile), what: "run.json", cap: 16 << 20),
           let old = try? JSONDecoder().decode(State.self, from: data) {
            names.formUnion(old.files.filter(Self.isInside))
        }
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        names.formUnion(listing.filter { $0.hasSuffix(".gguf") && $0.contains(".pruned") })
        for name in names.sorted() where FileManager.default.fileExists(atPath: file(name)) && !keep.contains(Self.absolute(file(name))) {
            do { try FileManager.default.removeItem(atPath: file(name)) } catch {
                throw PruneError(.io, "cannot remove '\(file(name))' left by an earlier run in the output directory: \(error.localizedDescription)")
            }
        }
        let st = file("safetensors")
        if (try? FileManager.default.contentsOfDirectory(atPath: st))?.isEmpty == true { try? FileManager.default.removeItem(atPath: st) }
    }

    /// A relative path that stays inside the directory (no `..`, not absolute).
    static func isInside(_ p: String) -> Bool {
        !p.isEmpty && !p.hasPrefix("/") && !p.split(separator: "/").contains("..")
    }

    private func save() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try enc.encode(state), to: file(Self.stateFile))
    }

    private func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    static func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }

    private static let lock = NSLock()
    /// The directories of runs in progress (a sweep's and its entry's), which an interrupting
    /// signal marks.
    nonisolated(unsafe) private static var active: [RunDirectory] = []

    /// Marks every run in progress as interrupted by `signal`.
    static func interruptAll(signal: Int32) {
        for d in lock.withLock({ active }) { d.interrupt(signal: signal) }
    }
}
