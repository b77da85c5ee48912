import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// QuantizedMatmul against `dequantize` and a Double product, on every backend this CPU runs.
@Suite struct QuantizedMatmulTests {
    static let types = GGMLType.allCases.filter(QuantizedMatmul.supports)

    /// How the rows of W are made: encoded by the package's quantizer, or random bytes with finite f16 scales
    /// (every bit pattern of the quants, scales and mins).
    enum Source: CaseIterable { case quantized, randomBlocks }

    @Test func supportedTypes() {
        print("QuantizedMatmul backend: \(QuantizedMatmul.backend) (available: \(Matmul.availableBackends.map(QuantizedMatmul.backendName)))")
        #expect(Set(Self.types) == [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K])
    }

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextSymmetric() }
    }

    /// n rows of k elements of `type`, row after row.
    static func rows(_ type: GGMLType, _ source: Source, n: Int, k: Int, seed: UInt64) throws -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        if source == .randomBlocks {
            var bytes = (0..<(try type.byteCount(elements: n * k))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes.withUnsafeMutableBytes { p in
                for block in stride(from: 0, to: p.count, by: type.typeSize) {
                    for offset in halfOffsets(type) {
                        storeHalf(p.baseAddress!, block + offset, 0.001 + 0.01 * rng.nextSymmetric())
                    }
                }
            }
            return bytes
        }
        // Rows of different sizes, some shifted away from zero (the mins of Q4_1, Q5_1, Q4_K, Q5_K).
        var values = [Float](repeating: 0, count: n * k)
        for r in 0..<n {
            let scale = Float(pow(10, Double(rng.nextSymmetric()) * 2)), shift: Float = r % 3 == 1 ? 0.6 : 0
            for p in 0..<k { values[r * k + p] = (rng.nextSymmetric() + shift) * scale }
        }
        return try values.withUnsafeBufferPointer { try quantize(type, $0) }
    }

    /// Byte offsets of a block's f16 scale and min fields.
    static func halfOffsets(_ type: GGMLType) -> [Int] {
        switch type {
        case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        default: [0]
        }
    }

    static func dequantized(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: count)
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try dequantize(type, src, count: count, into: $0.baseAddress!) }
        }
        return out
    }

    /// Fails when some |got − want| > 1e-5·(Σp |x·w| + |y0|): the Double product of the dequantised W, with
    /// y0 added when accumulating.
    static func expectMatches(_ got: [Float], x: [Float], w: [Float], y0: [Float]?, m: Int, n: Int, k: Int,
                              _ what: String) {
        var worst = 0.0, at = 0
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, size = 0.0
                for p in 0..<k {
                    let t = Double(x[i * k + p]) * Double(w[j * k + p])
                    s += t
                    size += abs(t)
                }
                if let y0 {
                    s += Double(y0[i * n + j])
                    size += abs(Double(y0[i * n + j]))
                }
                let e = abs(Double(got[i * n + j]) - s) / max(size, .leastNormalMagnitude)
                if !(e <= worst) { worst = e; at = i * n + j }
            }
        }
        #expect(worst <= 1e-5, "\(what): output \(at) is off by \(worst) of Σ|x·w|")
    }

    /// y = x·Wᵀ and y += x·Wᵀ for one W and every m, on every backend.
    static func check(_ type: GGMLType, _ source: Source, n: Int, k: Int, ms: [Int]) throws {
        let seed = UInt64(type.rawValue) << 32 | UInt64(n * 1009 + k)
        let bytes = try rows(type, source, n: n, k: k, seed: seed)
        let w = try dequantized(type, bytes, count: n * k)
        let rowBytes = try type.byteCount(elements: k)
        for m in ms {
            let x = random(m * k, seed: seed + UInt64(m)), y0 = random(m * n, seed: seed + 100 + UInt64(m))
            for backend in Matmul.availableBackends {
                for accumulate in [false, true] {
                    var got = y0
                    bytes.withUnsafeBytes { wp in
                        QuantizedMatmul.xwt(&got, x, m: m, weight: wp.baseAddress!, type: type, n: n, k: k,
                                            rowBytes: rowBytes, accumulate: accumulate, backend: backend)
                    }
                    let what = "\(type.name) \(source) \(QuantizedMatmul.backendName(backend)) m=\(m) n=\(n) k=\(k) accumulate=\(accumulate)"
                    expectMatches(got, x: x, w: w, y0: accumulate ? y0 : nil, m: m, n: n, k: k, what)
                }
            }
        }
    }

    @Test(arguments: types)
    func matchesTheDequantizedProduct(_ type: GGMLType) throws {
        // k = 96 and 97: a partial tile of blocks, and a tail shorter than a vector (F16, BF16).
        let ks = type.blockSize == 256 ? [256, 512] : type.blockSize == 32 ? [96, 256, 512] : [97, 256, 512]
        for source in Source.allCases where source == .quantized || type.blockSize > 1 {
            for k in ks {
                for n in [1, 5, 64, 300] {
                    try Self.check(type, source, n: n, k: k, ms: [1, 2, 3, 4, 5, 6, 7, 8, 9, 17])
                }
            }
        }
    }

    /// X = the identity gives Wᵀ itself (each output is one product by 1 plus zeros): the kernels' element
    /// values are `dequantize`'s bit for bit.
    @Test(arguments: types)
    func elementValuesMatchDequantizeBitForBit(_ type: GGMLType) throws {
        let (n, k) = (5, type.blockSize == 1 ? 97 : 256)
        var identity = [Float](repeating: 0, count: k * k)
        for p in 0..<k { identity[p * k + p] = 1 }
        for source in Source.allCases where source == .quantized || type.blockSize > 1 {
            let bytes = try Self.rows(type, source, n: n, k: k, seed: 7)
            let w = try Self.dequantized(type, bytes, count: n * k)
            for backend in Matmul.availableBackends {
                var got = [Float](repeating: .nan, count: k * n)
                bytes.withUnsafeBytes { wp in
                    QuantizedMatmul.xwt(&got, identity, m: k, weight: wp.baseAddress!, type: type, n: n, k: k,
                                        rowBytes: try! type.byteCount(elements: k), accumulate: false, backend: backend)
                }
                let wrong = (0..<(n * k)).filter { got[($0 % k) * n + $0 / k] != w[$0] }
                #expect(wrong.isEmpty, "\(type.name) \(source) \(QuantizedMatmul.backendName(backend)): \(wrong.count) elements differ, first \(wrong.first ?? 0)")
            }
        }
    }

    /// Rows longer than a tile (with a partial last tile, and an F16 tail), a padded row stride, and m = 0 / n = 0
    /// (nothing written).
    @Test func longRowsStridesAndEmptyProducts() throws {
        try Self.check(.q4_K, .quantized, n: 37, k: 4864, ms: [1, 4])
        try Self.check(.q5_0, .randomBlocks, n: 7, k: 4896, ms: [2, 3, 8, 17])
        try Self.check(.f16, .quantized, n: 5, k: 4097, ms: [3, 9])
        try Self.check(.q8_0, .randomBlocks, n: 3, k: 1056, ms: [2, 5])
        let (n, k) = (9, 64)
        let bytes = try Self.rows(.q8_0, .quantized, n: n, k: k, seed: 5)
        let rowBytes = try GGMLType.q8_0.byteCount(elements: k)
        let stride = rowBytes + 6
        var padded = [UInt8](repeating: 0xFF, count: n * stride)
        for r in 0..<n { padded.replaceSubrange(r * stride..<(r * stride + rowBytes), with: bytes[(r * rowBytes)...].prefix(rowBytes)) }
        let x = Self.random(2 * k, seed: 6)
        var got = [Float](repeating: 0, count: 2 * n), sentinel: [Float] = [42]
        padded.withUnsafeBytes { wp in
            let w = wp.baseAddress!
            QuantizedMatmul.xwt(&got, x, m: 2, weight: w, type: .q8_0, n: n, k: k, rowBytes: stride, accumulate: false)
            QuantizedMatmul.xwt(&sentinel, x, m: 0, weight: w, type: .q8_0, n: n, k: k, rowBytes: stride, accumulate: false)
            QuantizedMatmul.xwt(&sentinel, x, m: 2, weight: w, type: .q8_0, n: 0, k: k, rowBytes: stride, accumulate: false)
        }
        let w = try Self.dequantized(.q8_0, bytes, count: n * k)
        Self.expectMatches(got, x: x, w: w, y0: nil, m: 2, n: n, k: k, "padded rows")
        #expect(sentinel == [42])
    }

    /// Two tensors of Qwen2.5-Coder-0.5B-Instruct's first block, read from the mapped file.
    @Test(.requires(.qwen25Coder05B), arguments: ["blk.0.ffn_down.weight", "blk.0.attn_q.weight"])
    func realTensor(_ name: String) throws {
        let file = try GGUFFile(path: RequiredFile.qwen25Coder05B.path)
        let info = try #require(file.tensor(named: name))
        let (n, k) = (info.shape[0], info.shape[1])
        let w = try file.dequantize(info)
        let rowBytes = try info.type.byteCount(elements: k)
        print("\(name): \(info.type.name) \(n)×\(k)")
        for m in [1, 4] {
            let x = Self.random(m * k, seed: UInt64(m))
            var got = [Float](repeating: 0, count: m * n)
            QuantizedMatmul.xwt(&got, x, m: m, weight: file.rawBytes(info).baseAddress!, type: info.type, n: n, k: k,
                                rowBytes: rowBytes, accumulate: false)
            Self.expectMatches(got, x: x, w: w, y0: nil, m: m, n: n, k: k, "\(name) \(info.type.name) m=\(m)")
        }
    }
}
