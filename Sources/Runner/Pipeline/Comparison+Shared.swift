import Foundation
import PruneFramework

/// A sweep spread over the ranks of a distributed run. Rank 0 reads the cache and says which
/// entries it lacks; in each round, rank r runs the (round · size + r)-th of them as one process,
/// in a temporary folder of its own; the outcomes (result and report files) gather at rank 0,
/// which writes them into the cache and `runs/`, and the tables after every round. An entry
/// stored in the cache is complete, so a re-run after a failure resumes from it.
extension Comparison {
    /// What one rank's entry of a round gave: its result, or why it could not run (a target the
    /// method cannot meet), and the files of its run folder.
    struct Outcome: Codable {
        var index: Int
        var result: SweepResult?
        var failure: String?
        var files: [String: Data] = [:]
    }

    func runShared(_ planned: [Planned], modelHash: String, start: Date) throws -> [SweepResult] {
        var results: [Int: SweepResult] = [:], missing: [String] = [], failed: [String] = []
        var todo: [Int] = []
        if communicator.rank == 0 {
            for (i, p) in planned.enumerated() {
                if let hit = try cached(p.key) {
                    log("[\(i + 1)/\(planned.count)] \(label(p)): cached")
                    results[i] = hit
                } else if cachedOnly {
                    missing.append(label(p))
                } else {
                    todo.append(i)
                }
            }
        }
        todo = try communicator.allGather(todo)[0]
        let size = communicator.size
        for first in stride(from: 0, to: todo.count, by: size) {
            let round = Array(todo[first..<min(first + size, todo.count)])
            log("round \(first / size + 1) of \((todo.count + size - 1) / size): " + round.map { "rank \(round.firstIndex(of: $0)!) runs \(label(planned[$0]))" }.joined(separator: ", "))
            let mine = communicator.rank < round.count ? try runShipped(planned[round[communicator.rank]], index: round[communicator.rank], modelHash: modelHash) : Outcome(index: -1)
            let outcomes = try communicator.allGather(mine)
            guard communicator.rank == 0 else { continue }
            for o in outcomes where o.index >= 0 {
                let p = planned[o.index]
                if let r = o.result {
                    if !p.dense { try writeRunFolder(p, files: o.files) }
                    try store(r)
                    results[o.index] = r
                } else if let f = o.failure {
                    log("\(label(p)): could not run: \(f)")
                    failed.append("\(label(p)): \(f)")
                }
            }
            let pending = todo[min(first + size, todo.count)...].map { label(planned[$0]) }
            try write(sorted(results), pending: pending + missing, failed: failed, totalSeconds: Date().timeIntervalSince(start))
        }
        if communicator.rank == 0 {
            try write(sorted(results), pending: missing, failed: failed, totalSeconds: Date().timeIntervalSince(start))
            log(String(format: "wrote %@/comparison.md and the rest (%d rows, %d computed over %d processes, %.0f s)",
                       outputDir, results.count, todo.count, size, Date().timeIntervalSince(start)))
        }
        return sorted(results)
    }

    func sorted(_ results: [Int: SweepResult]) -> [SweepResult] { results.keys.sorted().map { results[$0]! } }

    /// Runs one entry as one process in a temporary folder and reads back what it wrote (the
    /// models are deleted by the run: keepModels is refused with several ranks).
    func runShipped(_ p: Planned, index: Int, modelHash: String) throws -> Outcome {
        Distributed.stage = "sweep entry '\(label(p))'"
        if p.dense { return Outcome(index: index, result: try runDense(p, modelHash: modelHash)) }
        let tmp = (NSTemporaryDirectory() as NSString).appendingPathComponent("prune-entry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        do {
            let r = try runEntry(p, modelHash: modelHash, into: tmp)
            return Outcome(index: index, result: r, files: try Self.files(in: tmp))
        } catch let e as PruneError where e.code == .outOfRange {
            return Outcome(index: index, failure: e.message)
        } catch let e as PruneError {
            throw PruneError(e.code, "sweep entry '\(label(p))': \(e.message)")
        }
    }

    /// Every regular file under `dir` but its run.json, by relative path.
    static func files(in dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        guard let walk = FileManager.default.enumerator(atPath: dir) else { return out }
        for case let rel as String in walk where rel != RunDirectory.stateFile {
            var isDir: ObjCBool = false
            let path = (dir as NSString).appendingPathComponent(rel)
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            out[rel] = try RegularFile.read(path, what: "run output", cap: 1 << 30)
        }
        return out
    }

    /// Writes a shipped entry's files into its run folder as one unit (`RunDirectory`).
    func writeRunFolder(_ p: Planned, files: [String: Data]) throws {
        let dir = runFolder(p)
        _ = try RunDirectory(path: dir, recipe: recipePath, keep: [recipe.model]).run({ () throws -> [String] in
            for (rel, data) in files.sorted(by: { $0.key < $1.key }) where RunDirectory.isInside(rel) {
                let path = (dir as NSString).appendingPathComponent(rel)
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try writeAtomically(data, to: path)
            }
            return files.keys.filter(RunDirectory.isInside).sorted()
        }, files: { $0 })
    }
}
