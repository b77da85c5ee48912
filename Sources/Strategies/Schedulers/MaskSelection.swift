import Dispatch
import PruneFramework

/// Picks the lowest-scoring weights of a comparison group (a row, a matrix, or M consecutive weights).
enum MaskSelection {
    /// Sets `zero[i]` for the `k` lowest of `scores`; among equal scores the lower index goes first,
    /// so the choice is exactly that of a stable ascending sort. `scratch` is reused between calls.
    static func markLowest(_ k: Int, of scores: UnsafeBufferPointer<Double>, in zero: UnsafeMutableBufferPointer<Bool>,
                           scratch: inout [Double]) {
        let n = scores.count
        guard k > 0 else { return }
        guard k < n else {
            for i in 0..<n { zero[i] = true }
            return
        }
        if n <= 16 {
            // Small groups (N:M): a weight goes when fewer than k weights rank below it.
            for i in 0..<n {
                var below = 0
                for j in 0..<n where scores[j] < scores[i] || (scores[j] == scores[i] && j < i) { below += 1 }
                if below < k { zero[i] = true }
            }
            return
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: scores)
        scratch.sort()
        let threshold = scratch[k - 1]
        var ties = k - scratch.prefix(k).reduce(0) { $1 < threshold ? $0 + 1 : $0 }
        for i in 0..<n {
            if scores[i] < threshold {
                zero[i] = true
            } else if scores[i] == threshold, ties > 0 {
                zero[i] = true
                ties -= 1
            }
        }
    }

    /// Checks the score count of a rows×cols matrix and returns the zero flags `mark` sets.
    static func flags(_ plugin: String, scores: [Double], rows: Int, cols: Int,
                      _ mark: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Bool>) -> Void) throws -> [Bool] {
        guard scores.count == rows * cols else {
            throw PruneError(.shapeMismatch, "scheduler '\(plugin)': \(scores.count) scores for a \(rows)×\(cols) matrix")
        }
        var zero = [Bool](repeating: false, count: scores.count)
        scores.withUnsafeBufferPointer { s in zero.withUnsafeMutableBufferPointer { mark(s, $0) } }
        return zero
    }

    /// Runs `body(row, scratch)` for every row, spread over the cores.
    static func forEachRow(_ rows: Int, _ body: (Int, inout [Double]) -> Void) {
        let workers = min(rows, 8)
        DispatchQueue.concurrentPerform(iterations: max(workers, 1)) { w in
            var scratch: [Double] = []
            var r = w
            while r < rows {
                body(r, &scratch)
                r += workers
            }
        }
    }
}
