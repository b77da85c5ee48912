import Foundation

/// Token embedding forward: row r of out is row `tokens[r]` of the table.
///
/// - out: tokens.count × dim
/// - table: vocab × dim
public func embeddingForward<S: KernelScalar>(_ out: UnsafeMutablePointer<S>, _ table: UnsafePointer<S>,
                                              tokens: [Int32], dim: Int) {
    for (r, t) in tokens.enumerated() { (out + r * dim).update(from: table + Int(t) * dim, count: dim) }
}

/// Token embedding backward: adds row r of dout into row `tokens[r]` of dtable (repeated tokens sum).
public func embeddingBackward<S: KernelScalar>(_ dtable: UnsafeMutablePointer<S>, _ dout: UnsafePointer<S>,
                                               tokens: [Int32], dim: Int) {
    for (r, t) in tokens.enumerated() {
        let d = dtable + Int(t) * dim, g = dout + r * dim
        for i in 0..<dim { d[i] += g[i] }
    }
}
