import Foundation

/// Perplexity of a model on a token stream, with the protocol that produced it.
public struct PerplexityResult: Codable, Sendable {
    public var dataset: String
    public var split: String
    public var joining: String
    public var seqLen: Int
    public var windows: Int
    /// Predicted tokens (seqLen − 1 per window).
    public var tokens: Int
    public var meanNLL: Double
    public var ppl: Double
    public var seconds: Double
    /// Tokens fed through the model per second (windows · seqLen / seconds).
    public var tokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case dataset, split, joining, seqLen = "seq_len", windows, tokens, meanNLL = "mean_nll", ppl, seconds
        case tokensPerSecond = "tokens_per_second"
    }
}

public enum Perplexity {
    /// Cuts `tokens` into non-overlapping windows of `seqLen` from token 0 (a trailing partial window
    /// is dropped), scores every next-token prediction inside each window with a fresh context, and
    /// returns exp(mean NLL).
    ///
    /// - batchSize: windows per forward pass; default keeps about 1024 tokens per pass
    /// - numerics: when given, every window goes through the forward that reproduces llama.cpp's CPU
    ///   arithmetic on these quantized weights (slower; the model must hold their dequantized values)
    /// - communicator: with several ranks, each scores its share of the windows, in batches; the
    ///   per-batch NLL sums are gathered and added in window order
    /// - progress: called with (windows done, windows total) of this rank
    public static func evaluate(model: Transformer, tokens: [Int32], seqLen: Int, maxWindows: Int? = nil,
                                batchSize: Int? = nil, text: EvalText? = nil, numerics: LlamaCppNumerics? = nil,
                                communicator: any Communicator = SingleProcess(),
                                progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        guard seqLen > 1 else { throw PruneError(.outOfRange, "perplexity: seq-len '\(seqLen)' must be at least 2") }
        var windows = tokens.count / seqLen
        if let maxWindows { windows = min(windows, max(0, maxWindows)) }
        guard windows > 0 else {
            throw PruneError(.outOfRange, "perplexity: \(tokens.count) tokens make no window of \(seqLen); use a smaller --seq-len")
        }
        let batch = max(1, batchSize ?? max(1, 1024 / seqLen))
        let share = communicator.share(of: windows)
        let mine = stride(from: share.lowerBound, to: share.upperBound, by: batch).map { $0..<min($0 + batch, share.upperBound) }
        let start = Date()
        let total = mine.reduce(0) { $0 + $1.count }
        var parts: [Double] = [], done = 0
        progress?(0, total)
        for w in mine {
            let slice = Array(tokens[(w.lowerBound * seqLen)..<(w.upperBound * seqLen)])
            let r = try numerics.map { try model.llamaCppNLL(tokens: slice, batch: w.count, seqLen: seqLen, numerics: $0) }
                ?? model.nll(tokens: slice, batch: w.count, seqLen: seqLen)
            parts += [r.sum, Double(r.count)]
            done += w.count
            progress?(done, total)
        }
        var sum = 0.0, count = 0
        for part in try communicator.allGather(doubles: parts) {
            for i in stride(from: 0, to: part.count, by: 2) {
                sum += part[i]
                count += Int(part[i + 1])
            }
        }
        let secs = Date().timeIntervalSince(start)
        let mean = sum / Double(count)
        return PerplexityResult(dataset: text?.name ?? "tokens", split: text?.split ?? "", joining: text?.joining ?? "",
                                seqLen: seqLen, windows: windows, tokens: count, meanNLL: mean, ppl: exp(mean),
                                seconds: secs, tokensPerSecond: Double(windows * seqLen) / max(secs, 1e-9))
    }
}
