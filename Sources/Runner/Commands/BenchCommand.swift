import Foundation
import PruneFramework

/// `prune bench matmul|forward`: throughput figures for BENCHMARKS.md (never used in tests).
enum BenchCommand {
    struct ForwardResult: Codable {
        var model: String; var batch: Int; var seqLen: Int; var iterations: Int
        var seconds: [Double]; var tokensPerSecond: Double; var backend: String; var threads: Int
        enum CodingKeys: String, CodingKey {
            case model, batch, seqLen = "seq_len", iterations, seconds, tokensPerSecond = "tokens_per_second", backend, threads
        }
    }

    static func run(_ args: [String]) throws {
        guard let what = args.first else {
            throw PruneError(.invalidArgument, "prune bench: say what to measure: 'matmul' or 'forward'")
        }
        let rest = Array(args.dropFirst())
        switch what {
        case "matmul": try matmul(rest)
        case "forward": try forward(rest)
        default: throw PruneError(.invalidArgument, "prune bench: unknown benchmark '\(what)'; choose matmul or forward")
        }
    }

    static func matmul(_ args: [String]) throws {
        let a = try Arguments(args, command: "bench matmul", valued: ["min-seconds"], flags: ["json"])
        let minSeconds = try a.double("min-seconds", default: 0.3, range: 0...60)
        let results = MatmulBenchmark.run(minSeconds: minSeconds)
        if a.flag("json") {
            try CLI.printJSON(results)
            return
        }
        print("matmul backend: \(Matmul.backend), threads: \(ProcessInfo.processInfo.activeProcessorCount)")
        print("op      m      n      k   GFLOP/s")
        for r in results {
            print(String(format: "%-5@ %5d %6d %6d %9.1f", r.op, r.m, r.n, r.k, r.gflops))
        }
    }

    static func forward(_ args: [String]) throws {
        let a = try Arguments(args, command: "bench forward", valued: ["model", "batch", "seq-len", "iterations"], flags: ["json"])
        let path = try a.required("model")
        let batch = try a.int("batch", default: 8, range: 1...1024)!
        let seqLen = try a.int("seq-len", default: 128, range: 2...100_000)!
        let iterations = try a.int("iterations", default: 3, range: 1...1000)!
        let model = try Transformer(path: path)
        var rng = SplitMix64(seed: 1)
        let tokens = (0..<(batch * seqLen)).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) }
        _ = try model.nll(tokens: tokens, batch: batch, seqLen: seqLen)  // warm-up: packs weights
        var secs: [Double] = []
        for _ in 0..<iterations {
            let t0 = Date()
            _ = try model.nll(tokens: tokens, batch: batch, seqLen: seqLen)
            secs.append(Date().timeIntervalSince(t0))
        }
        let best = secs.min() ?? 1
        let r = ForwardResult(model: path, batch: batch, seqLen: seqLen, iterations: iterations, seconds: secs,
                              tokensPerSecond: Double(batch * seqLen) / best, backend: Matmul.backend,
                              threads: ProcessInfo.processInfo.activeProcessorCount)
        if a.flag("json") {
            try CLI.printJSON(r)
        } else {
            print(String(format: "forward %d×%d: %.0f tokens/s (best of %d: %.3f s; backend %@)", batch, seqLen,
                         r.tokensPerSecond, iterations, best, Matmul.backend))
        }
    }
}
