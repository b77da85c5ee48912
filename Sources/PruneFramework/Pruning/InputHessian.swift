import Foundation

/// The Hessian of a linear layer's squared output error with respect to each weight row,
/// H = Σ xᵀx over the token rows x of its calibration inputs (k×k, the Gram matrix XᵀX; GPTQ and
/// SparseGPT take 2XᵀX, a factor that cancels in every use here), accumulated as a running sum
/// over batches, without a mean.
///
/// Each call's rows are multiplied in f32 with the matmul kernel (`Float.dytx`, dyᵀ·x with
/// dy = x), at most 256 rows at a time so that a chunk's f32 sum stays accurate, and each chunk
/// product is added to the Double sum. Memory: k×k Doubles, plus k×k Floats during a call.
public struct InputHessian: Sendable {
    /// Rows (tokens) per f32 chunk product.
    static let chunkRows = 256

    /// k, the width of the inputs.
    public let cols: Int
    /// Token rows added so far.
    public internal(set) var count: Int = 0
    /// Σ xᵀx, cols × cols row-major (symmetric).
    public internal(set) var values: [Double]

    /// An empty sum (all zeros) over inputs of `cols` columns.
    public init(cols: Int) {
        precondition(cols >= 0, "InputHessian: negative width \(cols)")
        self.cols = cols
        values = [Double](repeating: 0, count: cols * cols)
    }

    /// Adds every rank's sum and row count (`Communicator.sum`).
    public mutating func sum(over communicator: any Communicator) throws {
        guard communicator.isDistributed else { return }
        values.append(Double(count))
        try communicator.sum(&values)
        count = Int(values.removeLast())
    }

    /// Adds xᵀx for the `rows` token rows at `x` (rows × cols row-major).
    public mutating func add(_ x: UnsafePointer<Float>, rows: Int) {
        precondition(rows >= 0, "InputHessian.add: negative row count \(rows)")
        guard rows > 0, cols > 0 else { count += rows; return }
        let k = cols
        let chunk = UnsafeMutablePointer<Float>.allocate(capacity: k * k)
        defer { chunk.deallocate() }
        values.withUnsafeMutableBufferPointer { h in
            var r = 0
            while r < rows {
                let m = min(Self.chunkRows, rows - r), xr = x + r * k
                // dw (n×k) = dyᵀ·x with dy = x (m×k) and n = k: XᵀX of the chunk.
                Float.dytx(chunk, xr, xr, m: m, n: k, k: k, accumulate: false)
                for i in 0..<(k * k) { h[i] += Double(chunk[i]) }
                r += m
            }
        }
        count += rows
    }
}
