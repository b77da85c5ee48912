import Foundation
import PruneFramework

/// One row of a comparison: what an entry of a sweep (or the dense model) measured. Stored as one
/// JSON file per entry in the cache, keyed by (model file hash, resolved entry).
public struct SweepResult: Codable, Sendable {
    public var key: String
    public var name: String
    public var method: String
    /// The sparsity asked for; 0 for the dense row.
    public var ratio: Double
    public var fineTune: Bool
    public var dense: Bool
    public var parameters: Int
    public var removedFraction: Double
    public var perplexity: [PerplexityResult]
    /// With fine-tuning: the pruned model's perplexity before it.
    public var perplexityBeforeFineTune: [PerplexityResult]?
    public var zeroShot: [ZeroShotResult]
    /// Wall time of the whole entry (prune, fine-tune, export, evaluate), and of its parts.
    public var seconds: Double
    public var pruneSeconds: Double
    public var fineTuneSeconds: Double?
    public var evaluateSeconds: Double
    public var modelSHA256: String
    /// The resolved entry the key was made from (model path and output left out).
    public var entry: JSONValue
    /// When it was measured (ISO 8601).
    public var measured: String
}

/// Runs a recipe's sweep: each entry not in the cache is pruned and evaluated; then the table,
/// CSV, JSON and plots are written from all entries' results.
public final class Comparison {
    /// Bumped when what an entry measures changes, so old cache files stop matching.
    static let cacheVersion = 1

    public let recipe: Recipe
    public let sweep: Sweep
    public let recipePath: String
    public let outputDir: String
    public let dataDir: String?
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    /// Only tabulate what the cache holds; list the other entries as not measured.
    public var cachedOnly = false
    /// The processes the entries are spread over (`Comparison+Shared.swift`); rank 0 alone
    /// reads and writes the cache, the run folders and the tables.
    public var communicator: any Communicator = SingleProcess()

    public init(recipe: Recipe, recipePath: String, outputDir: String? = nil, dataDir: String? = nil) throws {
        guard let s = recipe.sweep else { throw PruneError(.invalidArgument, "recipe '\(recipePath)' has no sweep") }
        self.recipe = recipe
        self.sweep = s
        self.recipePath = recipePath
        self.outputDir = outputDir ?? recipe.output.dir
        self.dataDir = dataDir
    }

    public var cacheDir: String { sweep.cache ?? (outputDir as NSString).appendingPathComponent("cache") }

    /// Checks every entry before any work: model, datasets, plan names.
    public func preflight() throws {
        func check(_ r: Recipe) throws {
            let run = PruneRun(recipe: r, recipePath: recipePath, outputDir: outputDir, dataDir: dataDir)
            run.communicator = communicator  // rank 0 alone checks (and creates) the output directory
            try run.preflight()
        }
        try check(recipe)
        for e in sweep.entries {
            do { try check(e.recipe) } catch let err as PruneError {
                throw PruneError(err.code, "sweep entry '\(e.name)' at ratio \(e.ratio): \(err.message)")
            }
        }
        if communicator.rank == 0 { try checkOutputDirectory() }
        if communicator.isDistributed, sweep.keepModels {
            throw PruneError(.invalidArgument, "recipe: sweep.keepModels with \(communicator.size) processes: every entry's model would have to be sent to rank 0; run the sweep as one process to keep the models, or drop keepModels")
        }
    }

    /// The cache key of an entry: SHA-256 of the cache version, the model's hash and the resolved
    /// entry (its output directory and model path left out; the hash stands for the model).
    static func key(modelHash: String, entry: JSONValue) throws -> String {
        let o: JSONValue = .object(["cacheVersion": .int(cacheVersion), "model": .string(modelHash), "entry": entry])
        return SHA256.hex(try o.canonicalData())
    }

    /// What identifies an entry's result: everything but `output` and `model`. A renamed plugin is
    /// identified by its first name (its last alias), so results measured before the rename stay cached.
    static func identity(_ r: Recipe, dense: Bool) throws -> JSONValue {
        var o = try r.resolvedJSON().object ?? [:]
        if let firstName = type(of: r.grouping).aliases.last, var g = o["grouping"]?.object {
            g["type"] = .string(firstName)
            o["grouping"] = .object(g)
        }
        if dense {
            return .object(["dense": .bool(true), "evaluation": o["evaluation"] ?? .null])
        }
        o.removeValue(forKey: "output")
        o.removeValue(forKey: "model")
        return .object(o)
    }

    struct Planned {
        var name: String, method: String, ratio: Double, fineTune: Bool, dense: Bool
        /// The entry's folder under `runs/`, unique in the sweep.
        var folder = ""
        var recipe: Recipe
        var identity: JSONValue
        var key: String
    }

    /// Runs what is not cached and writes the comparison; returns every row. The output directory's
    /// `run.json` says `running` until the comparison is written (`RunDirectory`).
    @discardableResult
    public func run() throws -> [SweepResult] {
        try preflight()
        guard communicator.rank == 0 else { return try runEntries() }
        return try RunDirectory(path: outputDir, recipe: recipePath, keep: [recipe.model]).run(runEntries, files: { _ in Self.tableFiles })
    }

    static let tableFiles = ["comparison.md", "comparison.csv", "comparison.json", "ppl_vs_sparsity.svg", "accuracy_vs_sparsity.svg"]

    /// Prunes and evaluates every entry the cache does not hold, writing the tables after each.
    private func runEntries() throws -> [SweepResult] {
        let t0 = Date()
        if communicator.rank == 0 { try FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true) }
        log("▶ hashing \(recipe.model)")
        let modelHash = try ModelSource(path: recipe.model).sha256()
        log("  sha256 \(modelHash)")
        var planned: [Planned] = []
        if sweep.dense {
            let id = try Self.identity(recipe, dense: true)
            planned.append(Planned(name: "dense", method: "dense", ratio: 0, fineTune: false, dense: true, recipe: recipe, identity: id,
                                   key: try Self.key(modelHash: modelHash, entry: id)))
        }
        for e in sweep.entries {
            let id = try Self.identity(e.recipe, dense: false)
            planned.append(Planned(name: e.name, method: e.method, ratio: e.ratio, fineTune: e.fineTune, dense: false, recipe: e.recipe,
                                   identity: id, key: try Self.key(modelHash: modelHash, entry: id)))
        }
        Self.assignFolders(&planned)
        if communicator.isDistributed { return try runShared(planned, modelHash: modelHash, start: t0) }
        var results: [SweepResult] = []
        var computedSeconds: [Double] = []
        var missing: [String] = [], failed: [String] = []
        for (i, p) in planned.enumerated() {
            let tag = "[\(i + 1)/\(planned.count)] \(label(p))"
            if let hit = try cached(p.key) {
                log("\(tag): cached (\(String(format: "%.0f", hit.seconds)) s when measured)")
                results.append(hit)
                continue
            }
            if cachedOnly {
                log("\(tag): not in the cache")
                missing.append(label(p))
                continue
            }
            let remaining = planned.count - i
            let mean = computedSeconds.reduce(0, +) / Double(max(1, computedSeconds.count))
            let eta = computedSeconds.isEmpty ? "" : " (about \(ComparisonTable.duration(Double(remaining) * mean)) left if the rest take as long as those so far)"
            log("\(tag): running\(eta)")
            let r: SweepResult
            do { r = try p.dense ? runDense(p, modelHash: modelHash) : runEntry(p, modelHash: modelHash) } catch let e as PruneError where e.code == .outOfRange && !p.dense {
                // A target the method cannot meet (say SAAP's bounds at a high ratio) ends that entry, not the sweep.
                log("\(tag): could not run: \(e.message)")
                failed.append("\(label(p)): \(e.message)")
                continue
            }
            computedSeconds.append(r.seconds)
            try store(r)
            results.append(r)
            // Tables after every entry: a long sweep shows what it has so far.
            try write(results, pending: planned[(i + 1)...].filter { !FileManager.default.fileExists(atPath: cachePath($0.key)) }.map(label),
                      failed: failed, totalSeconds: Date().timeIntervalSince(t0))
        }
        try write(results, pending: missing, failed: failed, totalSeconds: Date().timeIntervalSince(t0))
        if !failed.isEmpty { log("\(failed.count) entries could not run; comparison.md lists why") }
        log(String(format: "wrote %@/comparison.md, comparison.csv, comparison.json and plots (%d rows, %d computed, %.0f s)",
                   outputDir, results.count, computedSeconds.count, Date().timeIntervalSince(t0)))
        return results
    }

    func label(_ p: Planned) -> String { p.name + (p.dense ? "" : String(format: " at %g%%", p.ratio * 100)) }

    /// Writes an entry's result to the cache.
    func store(_ r: SweepResult) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try enc.encode(r), to: cachePath(r.key))
    }

    func cachePath(_ key: String) -> String { (cacheDir as NSString).appendingPathComponent("\(key).json") }

    /// A cached result, or nil; a cache file that no longer decodes is ignored (and recomputed).
    func cached(_ key: String) throws -> SweepResult? {
        guard FileManager.default.fileExists(atPath: cachePath(key)) else { return nil }
        guard let data = try? RegularFile.read(cachePath(key), what: "cache file", cap: 64 << 20) else {
            log("  cache file \(cachePath(key)) is unreadable; recomputing it")
            return nil
        }
        guard let r = try? JSONDecoder().decode(SweepResult.self, from: data), r.key == key else {
            log("  cache file \(cachePath(key)) is unreadable; recomputing it")
            return nil
        }
        return r
    }

    static func slug(_ p: Planned) -> String {
        let base = p.name.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
        let squeezed = base.split(separator: "-").joined(separator: "-")
        return p.dense ? "dense" : squeezed + String(format: "-%g", p.ratio * 100)
    }

    /// Gives each entry its folder: its slug, with `-2`, `-3`, ... after the first when names that
    /// differ only in case or punctuation give the same slug.
    static func assignFolders(_ planned: inout [Planned]) {
        var used = Set<String>()
        for i in planned.indices {
            let base = slug(planned[i])
            var folder = base, n = 1
            while used.contains(folder) {
                n += 1
                folder = "\(base)-\(n)"
            }
            used.insert(folder)
            planned[i].folder = folder
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    func runDense(_ p: Planned, modelHash: String) throws -> SweepResult {
        let t0 = Date()
        let run = PruneRun(recipe: p.recipe, recipePath: recipePath, outputDir: outputDir, dataDir: dataDir)
        run.log = { [log] in log("  " + $0) }
        let source = try ModelSource(path: p.recipe.model)
        let model = try source.load()
        let tokenizer = try source.tokenizer()
        let ppl = try run.evaluate(model, tokenizer, label: "dense")
        let zs = try run.evaluateTasks(model, tokenizer)
        let s = Date().timeIntervalSince(t0)
        return SweepResult(key: p.key, name: p.name, method: p.method, ratio: 0, fineTune: false, dense: true,
                                parameters: model.parameterCount, removedFraction: 0, perplexity: ppl, perplexityBeforeFineTune: nil,
                                zeroShot: zs, seconds: s, pruneSeconds: 0, fineTuneSeconds: nil, evaluateSeconds: s,
                                modelSHA256: modelHash, entry: p.identity, measured: Self.now())
    }

    /// The folder of an entry's run under the output directory.
    func runFolder(_ p: Planned) -> String {
        ((outputDir as NSString).appendingPathComponent("runs") as NSString).appendingPathComponent(p.folder)
    }

    func runEntry(_ p: Planned, modelHash: String, into folder: String? = nil) throws -> SweepResult {
        let t0 = Date()
        let dir = folder ?? runFolder(p)
        let run = PruneRun(recipe: p.recipe, recipePath: recipePath, outputDir: dir, dataDir: dataDir)
        run.log = { [log] in log("  " + $0) }
        run.evaluateDense = false
        run.deleteModels = !sweep.keepModels
        let report = try run.run()
        let s = Date().timeIntervalSince(t0)
        func sum(_ f: (String) -> Bool) -> Double { report.stages.filter { f($0.name) }.map(\.seconds).reduce(0, +) }
        let evalSecs = sum { $0.hasPrefix("evaluate") || $0.hasPrefix("zero-shot") }
        let ftSecs = sum { $0.hasPrefix("fine-tune") }
        return SweepResult(key: p.key, name: p.name, method: p.method, ratio: p.ratio, fineTune: p.fineTune, dense: false,
                                parameters: report.paramsAfter, removedFraction: report.removedFraction,
                                perplexity: report.evaluationsAfter, perplexityBeforeFineTune: report.evaluationsBeforeFineTune,
                                zeroShot: report.zeroShot ?? [], seconds: s, pruneSeconds: s - evalSecs - ftSecs,
                                fineTuneSeconds: p.fineTune ? ftSecs : nil, evaluateSeconds: evalSecs,
                                modelSHA256: modelHash, entry: p.identity, measured: Self.now())
    }

    func write(_ results: [SweepResult], pending: [String], failed: [String] = [], totalSeconds: Double) throws {
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        let table = ComparisonTable(results: results, title: sweep.title ?? "Comparison", recipePath: recipePath,
                                    evaluation: recipe.evaluation, totalSeconds: totalSeconds, pending: pending, failed: failed, notes: sweep.notes)
        func put(_ s: String, _ name: String) throws { try writeAtomically(Data(s.utf8), to: (outputDir as NSString).appendingPathComponent(name)) }
        try put(table.markdown, "comparison.md")
        try put(table.csv, "comparison.csv")
        try put(table.pplChart, "ppl_vs_sparsity.svg")
        try put(table.accuracyChart, "accuracy_vs_sparsity.svg")
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try enc.encode(results), to: (outputDir as NSString).appendingPathComponent("comparison.json"))
    }
}
