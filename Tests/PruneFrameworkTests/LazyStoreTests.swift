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

    /// `update` changes a resident or owned tensor at once and defers the change into the source
    /// of one still read from its file; every way gives the same values, for any rows read.
    @Test func anUpdateIsAppliedAtOnceOrDeferredIntoTheSource() throws {
        // `file` is what the lazy stores read; `resident` (the same values) changes in place.
        let file = try Transformer(randomWith: tinyConfig(), seed: 5), resident = try Transformer(randomWith: tinyConfig(), seed: 5)
        let name = TensorNames.ffnGate(0), e = try #require(resident.params.entry(name))
        let change: @Sendable (Range<Int>, UnsafeMutablePointer<Float>) -> Void = { rows, w in
            for (i, r) in rows.enumerated() { for c in 0..<e.rowWidth { w[i * e.rowWidth + c] += Float(r * 100 + c) } }
        }
        func lazyCopy() -> ParameterStore {
            ParameterStore(lazy: file.params.entries.map { e in
                (e.name, e.shape, { rows, into in try file.params.readRows(e.name, rows, into: into) })
            })
        }
        let deferred = lazyCopy(), owned = lazyCopy()
        owned.pointer(name)[0] += 0  // materialised and owned: changed in place
        owned.markModified([name])
        let v = deferred.version
        for store in [deferred, owned] { store.update(name, rows: change) }
        resident.params.update(name, rows: change)
        let expected = Array(resident.params.view(name))
        #expect(deferred.version > v && deferred.residentBytes == 0, "deferred: nothing held")
        #expect(deferred.withValues(name) { Array($0) } == expected && owned.withValues(name) { Array($0) } == expected)
        var rows = [Float](repeating: 0, count: 3 * e.rowWidth)
        try deferred.readRows(name, 5..<8, into: &rows)
        #expect(rows == Array(expected[(5 * e.rowWidth)..<(8 * e.rowWidth)]), "rows read from the middle get their own change")
        // A second update stacks on the first, in order.
        deferred.update(name, rows: change)
        resident.params.update(name, rows: change)
        #expect(deferred.withValues(name) { Array($0) } == Array(resident.params.view(name)))
    }

    /// LoRA over weights read from their file, holding one block at a time (packed budget 0), trains
    /// and merges exactly as over f32 weights held whole, and keeps no f32 weight afterwards.
    @Test func loraOverLazyWeightsMatchesTheWholeModel() throws {
        let c = tinyConfig(layers: 3)
        let whole = try Transformer(randomWith: c, seed: 11), file = try Transformer(randomWith: c, seed: 11)
        let reads = ReadCounter()
        let lazy = try Transformer(config: c, params: ParameterStore(lazy: whole.params.entries.map { e in
            (e.name, e.shape, { rows, into in
                reads.add(e.name)
                try file.params.readRows(e.name, rows, into: into)
            })
        }))
        lazy.packedBudget = 0
        var s = LoRASettings()
        s.steps = 3; s.batch = 2; s.microBatch = 1; s.learningRate = 0.01; s.warmupSteps = 0
        var rng = SplitMix64(seed: 2)
        let data = (0..<4).map { _ in (0..<9).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let a = try LoRATraining.train(lazy, sequences: data, settings: s, layers: [0, 2])
        let b = try LoRATraining.train(whole, sequences: data, settings: s, layers: [0, 2])
        #expect(a.losses == b.losses)
        #expect(lazy.params.residentBytes == 0, "the merge is deferred; nothing is held")
        // Each of the 6 passes reads a block's weights for its forward and again for its backward.
        #expect(reads.count(TensorNames.attnQ(1)) == 2 * s.steps * s.batch)
        for e in whole.params.entries {
            #expect(lazy.params.withValues(e.name) { Array($0) } == Array(whole.params.view(e.name)), "\(e.name)")
        }
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

/// Counts calls by name, from any thread.
final class ReadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func add(_ name: String) { lock.withLock { counts[name, default: 0] += 1 } }
    func count(_ name: String) -> Int { lock.withLock { counts[name, default: 0] } }
}
