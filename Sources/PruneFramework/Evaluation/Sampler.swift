import Foundation

/// Picks the next token from logits: greedy at temperature 0, else temperature + nucleus (top-p).
public struct Sampler: Sendable {
    public var temperature: Float
    public var topP: Float
    private var rng: SplitMix64

    public init(temperature: Float = 0.7, topP: Float = 0.9, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.rng = SplitMix64(seed: seed)
    }

    public mutating func sample(_ logits: [Float]) -> Int32 {
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        let mx = logits.max() ?? 0
        var probs = logits.map { expf(($0 - mx) / temperature) }
        let z = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= z }
        var order = Array(probs.indices)
        order.sort { probs[$0] > probs[$1] }
        var kept: [Int] = [], mass: Float = 0
        for i in order {
            kept.append(i)
            mass += probs[i]
            if mass >= topP { break }
        }
        var u = rng.nextUnit() * mass
        for i in kept {
            u -= probs[i]
            if u <= 0 { return Int32(i) }
        }
        return Int32(kept.last ?? 0)
    }
}
