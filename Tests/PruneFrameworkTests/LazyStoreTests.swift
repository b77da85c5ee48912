import Foundation
import Testing
@testable import PruneFramework

/// A lazy ParameterStore reads tensors from their sources when used and keeps only what was
/// materialised and not released, or modified.
@Suite struct LazyStoreTests {
    @Test func aLazyStoreReadsRowsMaterialisesAndReleases() throws {
        let c = tinyConfig()
        let resident = try Transformer(randomWith: c, seed: 3)
        let name = TensorNames.ffnDown(1)
        let lazy = ParameterStore(lazy: resident.params.entries.map { e in
            (e.name, e.shape, { rows, into in try resident.params.readRows(e.name, rows, into: into) })
        })
        #expect(lazy.isLazy && lazy.residentBytes == 0)
        #expect(lazy.withValues(name) { Array($0) } == Array(resident.params.view(name)))
        #expect(lazy.residentBytes == 0, "withValues keeps nothing")
        let p = lazy.pointer(name)
        #expect(lazy.residentBytes == lazy.entry(name)!.count * 4)
        #expect(lazy.release() == lazy.entry(name)!.count * 4 && lazy.residentBytes == 0)
        // A written tensor is the store's own after markModified: release keeps it.
        let q = lazy.pointer(name)
        q[0] = 42
        lazy.markModified()
        lazy.release()
        #expect(lazy.tensor(name)?.data[0] == 42 && lazy.residentBytes > 0)
        _ = p
    }

    @Test func packingRowsAtATimeGivesTheSameProducts() {
        var rng = SplitMix64(seed: 9)
        for (n, k) in [(37, 20), (4097, 300), (1, 1)] {
            let w = (0..<(n * k)).map { _ in rng.nextSymmetric() }, x = (0..<(3 * k)).map { _ in rng.nextSymmetric() }
            let whole = w.withUnsafeBufferPointer { PackedMatrix($0.baseAddress!, n: n, k: k) }
            var reads = 0
            let chunked = PackedMatrix(n: n, k: k) { rows, buf in
                reads += 1
                w.withUnsafeBufferPointer { buf.update(from: $0.baseAddress! + rows.lowerBound * k, count: rows.count * k) }
            }
            var a = [Float](repeating: 0, count: 3 * n), b = a
            Matmul.xwt(&a, x, whole, m: 3)
            Matmul.xwt(&b, x, chunked, m: 3)
            #expect(a == b, "n \(n) k \(k)")
            #expect(n * k < 1 << 20 || reads > 1, "read in chunks")
        }
    }
}
