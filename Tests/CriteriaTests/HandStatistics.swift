@testable import PruneFramework

/// Activation statistics set by hand for layer 0 of the tests' tiny models. MLP input: two tokens
/// [1, 2] and [1, 0] → column norms √2, 2. Intermediate: [3, 0, 4] → 3, 0, 4.
func handStatistics() -> ActivationStatistics {
    let stats = ActivationStatistics()
    let mlpIn: [Float] = [1, 2, 1, 0], mid: [Float] = [3, 0, 4]
    mlpIn.withUnsafeBufferPointer { stats.observe(layer: 0, site: .mlpInput, activations: $0, rows: 2, cols: 2) }
    mid.withUnsafeBufferPointer { stats.observe(layer: 0, site: .mlpIntermediate, activations: $0, rows: 1, cols: 3) }
    return stats
}
