import Foundation
import PruneFramework

/// `prune bench matmul|forward|backward`: throughput figures for BENCHMARKS.md (never used in tests).
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
            throw PruneError(.invalidArgument, "prune bench: say what to measure: 'matmul', 'forward' or 'backward'")
        }
        let rest = Array(args.dropFirst())
        switch what {
        case "matmul": try matmul(rest)
        case "forward": try forward(rest)
        case "backward": try backward(rest)
        default: throw PruneError(.invalidArgument, "prune bench: unknown benchmark '\(what)'; choose matmul, forward or backward")
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
        print("matmul backend: \(Matmul.backend), threads: \(Matmul.threads)")
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
                              threads: Matmul.threads)
        if a.flag("json") {
            try CLI.printJSON(r)
        } else {
            print(String(format: "forward %d×%d: %.0f tokens/s (best of %d: %.3f s; backend %@)", batch, seqLen,
                         r.tokensPerSecond, iterations, best, Matmul.backend))
        }
    }

    struct BackwardResult: Codable {
        var model: String; var batch: Int; var seqLen: Int; var microBatch: Int; var iterations: Int
        var seconds: [Double]; var tokensPerSecond: Double; var peakRSSMiB: Double; var backend: String; var threads: Int
        enum CodingKeys: String, CodingKey {
            case model, batch, seqLen = "seq_len", microBatch = "micro_batch", iterations, seconds
            case tokensPerSecond = "tokens_per_second", peakRSSMiB = "peak_rss_mib", backend, threads
        }
    }

    /// Forward + backward of the mean NLL with gradients for every parameter (what a Taylor score or a
    /// full fine-tune step costs).
    static func backward(_ args: [String]) throws {
        let a = try Arguments(args, command: "bench backward", valued: ["model", "batch", "seq-len", "micro-batch", "iterations"],
                              flags: ["json"])
        let path = try a.required("model")
        let batch = try a.int("batch", default: 8, range: 1...1024)!
        let seqLen = try a.int("seq-len", default: 128, range: 2...100_000)!
        let micro = try a.int("micro-batch", default: batch, range: 1...1024)!
        let iterations = try a.int("iterations", default: 3, range: 1...1000)!
        let model = try Transformer(path: path)
        var rng = SplitMix64(seed: 1)
        let seqs = (0..<batch).map { _ in (0..<seqLen).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) } }
        _ = try model.gradients(sequences: seqs, microBatch: micro)  // warm-up
        var secs: [Double] = []
        for _ in 0..<iterations {
            let t0 = Date()
            _ = try model.gradients(sequences: seqs, microBatch: micro)
            secs.append(Date().timeIntervalSince(t0))
        }
        let best = secs.min() ?? 1
        let r = BackwardResult(model: path, batch: batch, seqLen: seqLen, microBatch: micro, iterations: iterations,
                               seconds: secs, tokensPerSecond: Double(batch * seqLen) / best,
                               peakRSSMiB: Double(peakResidentBytes()) / 1_048_576, backend: Matmul.backend,
                               threads: Matmul.threads)
        if a.flag("json") {
            try CLI.printJSON(r)
        } else {
            print(String(format: "forward+backward %d×%d (micro-batch %d): %.0f tokens/s (best of %d: %.3f s); peak RSS %.0f MiB",
                         batch, seqLen, micro, r.tokensPerSecond, iterations, best, r.peakRSSMiB))
        }
    }

    /// The process's peak resident set size, in bytes.
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss
        #endif
    }
}
