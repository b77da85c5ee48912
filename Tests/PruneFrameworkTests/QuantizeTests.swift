import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// The quantizers and llama-quantize's type choice against llama.cpp itself: the fixtures in
/// Fixtures/quantize were made by scripts/reference/ggml_quantize_reference.py, which quantized
/// small models with `llama_model_quantize` (llama-cpp-python 0.3.36) and recorded every
/// tensor's type and sha256. The f32 weights are rebuilt here by `ReferenceWeights`.
@Suite struct QuantizeTests {
    static let folder = Repository.root + "/Tests/PruneFrameworkTests/Fixtures/quantize"
    static let fileTypes = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                            "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"]
    /// Models whose tensors' bytes were recorded (the others: types only).
    static let hashedModels = ["tiny", "tiny-tied"]

    @Test func fixturesMatchTheirChecksums() throws {
        let lines = try String(contentsOfFile: Self.folder + "/SHA256SUMS", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1 + Self.fileTypes.count + 2 * Self.fileTypes.count)
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1)
            let name = parts[1].trimmingCharacters(in: .whitespaces)
            #expect(try SHA256.hex(file: Self.folder + "/" + name) == String(parts[0]), "\(name)")
        }
    }

    @Test func generatorRebuildsTheInputWeights() throws {
        for model in Self.hashedModels {
            for t in try Fixtures.models.models[model, default: .empty].tensors {
                let values = ReferenceWeights.cached(t.name, t.shape)
                #expect(SHA256.hex(values.withUnsafeBytes { Data($0) }) == t.input_sha256, "\(model) \(t.name)")
            }
        }
    }

    @Test(arguments: fileTypes)
    func typeChoiceMatchesLlamaCpp(fileType: String) throws {
        let mix = try QuantizationMix(name: fileType)
        let doc = try Fixtures.fileType(fileType)
        #expect(doc.llama_ftype == mix.llamaFileType)
        let models = try Fixtures.models.models
        #expect(models.count == 4)
        for (name, m) in models {
            let want = try #require(doc.models[name])
            let all = mix.tensorTypes(m.tensors.map { ($0.name, $0.shape) }, model: m.info)
            for (t, choice) in zip(m.tensors, all) {
                #expect(choice.type.name == want[t.name]?.type, "\(fileType) \(name) \(t.name) \(t.shape): \(choice)")
                #expect(mix.tensorType(name: t.name, shape: t.shape, model: m.info) == choice, "\(name) \(t.name)")
            }
        }
    }

    @Test(arguments: fileTypes)
    func bytesMatchLlamaCpp(fileType: String) throws {
        let doc = try Fixtures.fileType(fileType)
        for model in Self.hashedModels {
            for t in try Fixtures.models.models[model, default: .empty].tensors {
                let entry = try #require(doc.models[model]?[t.name])
                let type = try #require(GGMLType.allCases.first { $0.name == entry.type })
                let ours = try ReferenceWeights.cached(t.name, t.shape).withUnsafeBufferPointer { try quantize(type, $0) }
                guard SHA256.hex(Data(ours)) != entry.sha256 else { continue }
                Issue.record("\(fileType) \(model) \(t.name) as \(type.name): bytes differ from llama.cpp's\(Self.firstDifference(ours, model, fileType, t.name, type))")
            }
        }
    }

    /// The recorded raw tensors, compared directly (they name the first differing block).
    @Test(arguments: fileTypes)
    func rawTensorsMatchLlamaCpp(fileType: String) throws {
        let doc = try Fixtures.fileType(fileType)
        for name in ["blk.0.attn_v.weight", "blk.2.attn_output.weight"] {
            let t = try #require(try Fixtures.models.models["tiny"]?.tensors.first { $0.name == name })
            let type = try #require(GGMLType.allCases.first { $0.name == doc.models["tiny"]?[name]?.type })
            let ours = try ReferenceWeights.cached(t.name, t.shape).withUnsafeBufferPointer { try quantize(type, $0) }
            let theirs = try Fixtures.raw("tiny", fileType, name)
            #expect(ours == theirs, "\(fileType) \(name)\(Self.firstDifference(ours, "tiny", fileType, name, type))")
        }
    }

    /// Where `ours` first departs from llama.cpp's recorded bytes, when they were recorded.
    static func firstDifference(_ ours: [UInt8], _ model: String, _ fileType: String, _ name: String, _ type: GGMLType) -> String {
        guard let theirs = try? Fixtures.raw(model, fileType, name) else { return "" }
        let common = min(ours.count, theirs.count)
        guard let i = (0..<common).first(where: { ours[$0] != theirs[$0] }) ?? (ours.count == theirs.count ? nil : common) else {
            return ""
        }
        let b = i / type.typeSize, r = b * type.typeSize..<min((b + 1) * type.typeSize, ours.count, theirs.count)
        let hex = { (a: [UInt8]) in a[r].map { String(format: "%02x", $0) }.joined() }
        return "; first at byte \(i), block \(b) (elements \(b * type.blockSize)..<\((b + 1) * type.blockSize)):\n ours   \(hex(ours))\n theirs \(hex(theirs))"
    }
}

/// The type-choice rules spelled out, beyond what the fixture models exercise.
@Suite struct QuantizationMixTests {
    let model = QuantizationModelInfo(architecture: "qwen2", layerCount: 28, headCount: 12, kvHeadCount: 2, hasOutputHead: true)

    @Test func useMoreBitsPicksTheFirstAndLastEighthAndEveryThirdLayer() {
        let picked = (0..<28).filter { QuantizationMix.useMoreBits($0, 28) }
        #expect(picked == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27])
        #expect((0..<24).filter { QuantizationMix.useMoreBits($0, 24) } == [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23])
    }

    @Test func fallbacksNameWhatTheyReplaced() {
        let m = QuantizationMix.q4_K_M
        #expect(m.tensorType(name: "blk.3.ffn_down.weight", shape: [1536, 8960], model: model) == TensorTypeChoice(.q4_K))
        #expect(m.tensorType(name: "blk.3.ffn_down.weight", shape: [1536, 7200], model: model) == TensorTypeChoice(.q5_0, replaced: .q4_K))
        #expect(m.tensorType(name: "blk.2.ffn_down.weight", shape: [1536, 7200], model: model) == TensorTypeChoice(.q8_0, replaced: .q6_K))
        #expect(QuantizationMix.q5_K_S.tensorType(name: "blk.3.ffn_up.weight", shape: [7200, 1500], model: model)
                == TensorTypeChoice(.f16, replaced: .q5_K))
        #expect(QuantizationMix.q5_K_S.tensorType(name: "blk.3.ffn_down.weight", shape: [1536, 7200], model: model)
                == TensorTypeChoice(.q5_1, replaced: .q5_K))
        #expect(QuantizationMix.q8_0.tensorType(name: "blk.3.ffn_down.weight", shape: [1536, 7208], model: model)
                == TensorTypeChoice(.f16, replaced: .q8_0))
        #expect(TensorTypeChoice(.q5_0, replaced: .q4_K).description == "Q5_0 (instead of Q4_K)")
    }

    @Test func headAndEmbeddingRules() {
        let tied = QuantizationModelInfo(architecture: "llama", layerCount: 30, headCount: 9, kvHeadCount: 3, hasOutputHead: false)
        #expect(QuantizationMix.q4_0.tensorType(name: "output.weight", shape: [151936, 1536], model: model) == TensorTypeChoice(.q6_K))
        #expect(QuantizationMix.q4_0.tensorType(name: "token_embd.weight", shape: [49152, 1536], model: tied).type == .q6_K)
        #expect(QuantizationMix.q4_0.tensorType(name: "token_embd.weight", shape: [49152, 1536], model: model).type == .q4_0)
        // Rows of 576 fit Q4_0, so the head is promoted to Q6_K, which they do not fit: Q8_0.
        #expect(QuantizationMix.q4_0.tensorType(name: "token_embd.weight", shape: [49152, 576], model: tied) == TensorTypeChoice(.q8_0, replaced: .q6_K))
        #expect(QuantizationMix.q8_0.tensorType(name: "output.weight", shape: [49152, 576], model: model).type == .q8_0)
        // A head whose rows do not fit the default type's block becomes Q8_0 (no fallback recorded).
        #expect(QuantizationMix.q4_K_M.tensorType(name: "output.weight", shape: [49152, 576], model: model) == TensorTypeChoice(.q8_0))
        #expect(QuantizationMix.f16.tensorType(name: "output.weight", shape: [49152, 576], model: model).type == .f16)
        #expect(QuantizationMix.bf16.tensorType(name: "blk.0.attn_norm.weight", shape: [576], model: model).type == .f32)
        #expect(QuantizationMix.q4_K_M.tensorType(name: "blk.0.attn_q.bias", shape: [1536], model: model).type == .f32)
        #expect(QuantizationMix.q4_K_M.tensorType(name: "blk.0.attn_q.weight", shape: [1, 1536], model: model).type == .f32)
    }

    @Test func namesAndAliases() throws {
        #expect(try QuantizationMix(name: "Q4_K") == .q4_K_M && (try QuantizationMix(name: "q5_k")) == .q5_K_M)
        #expect(try QuantizationMix(name: "Q6_K") == .q6_K && (try QuantizationMix(name: "bf16")) == .bf16)
        let e = try #require(throws: PruneError.self) { try QuantizationMix(name: "q3_k_m") }
        #expect(e.code == .invalidArgument && e.message.contains("quantization 'q3_k_m' is not one of f32, f16"), "\(e.message)")
        #expect(QuantizationMix.allCases.map(\.defaultType) == [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q4_K, .q5_K, .q5_K, .q6_K])
    }
}

/// Quantize → dequantize error bounds, and what cannot be encoded.
@Suite struct QuantizeRoundTripTests {
    static let blockTypes: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    func roundTrip(_ type: GGMLType, _ x: [Float]) throws -> [Float] {
        let bytes = try x.withUnsafeBufferPointer { try quantize(type, $0) }
        #expect(bytes.count == x.count / type.blockSize * type.typeSize)
        var y = [Float](repeating: .nan, count: x.count)
        try bytes.withUnsafeBytes { raw in
            try y.withUnsafeMutableBufferPointer { try dequantize(type, raw, count: x.count, into: $0.baseAddress!) }
        }
        return y
    }

    /// The largest |x − x̂| of a block over the block's largest |x| must stay below `bound`,
    /// and the relative RMS error over the tensor below `rms`, on 16,384 near-Gaussian values.
    /// The bounds are about 10% above what ggml's algorithms give (measured, e.g. Q4_K 0.075 and
    /// 0.069, Q6_K 0.016 and 0.017); Q4_0's and Q5_0's are their theoretical 1/8 and 1/16 (the
    /// top code is clamped) plus f16 rounding.
    @Test(arguments: [(GGMLType.q8_0, 0.0045, 0.0056), (.q4_0, 0.126, 0.09), (.q4_1, 0.073, 0.083), (.q5_0, 0.0635, 0.045),
                      (.q5_1, 0.036, 0.04), (.q4_K, 0.083, 0.076), (.q5_K, 0.05, 0.038), (.q6_K, 0.018, 0.019)])
    func errorStaysWithinTheTypesResolution(type: GGMLType, bound: Double, rms: Double) throws {
        let x = ReferenceWeights.gaussian(count: 64 * 256, seed: 7)
        let y = try roundTrip(type, x)
        let bs = type.blockSize
        var worst = 0.0, se = 0.0, ss = 0.0
        for b in 0..<(x.count / bs) {
            let r = b * bs..<(b + 1) * bs
            let amax = Double(x[r].map(abs).max() ?? 0)
            let err = zip(x[r], y[r]).map { Double(abs($0 - $1)) }.max() ?? 0
            worst = max(worst, err / amax)
        }
        for (a, b) in zip(x, y) { se += Double((a - b) * (a - b)); ss += Double(a * a) }
        #expect(worst < bound, "\(type.name): worst block error \(worst) of its max")
        #expect((se / ss).squareRoot() < rms, "\(type.name): relative RMS error \((se / ss).squareRoot())")
    }

    @Test(arguments: blockTypes)
    func zerosComeBackAsZeros(type: GGMLType) throws {
        #expect(try roundTrip(type, [Float](repeating: 0, count: 512)) == [Float](repeating: 0, count: 512))
    }

    /// Splitting a big tensor across cores gives the bytes of encoding it in small pieces.
    @Test(arguments: blockTypes)
    func parallelChunksEqualSerialEncoding(type: GGMLType) throws {
        let x = ReferenceWeights.gaussian(count: 5 * 65536 + 512, seed: 3)
        let whole = try x.withUnsafeBufferPointer { try quantize(type, $0) }
        var pieces: [UInt8] = []
        for start in stride(from: 0, to: x.count, by: 4096) {
            pieces += try x[start..<min(start + 4096, x.count)].withUnsafeBufferPointer { try quantize(type, $0) }
        }
        #expect(whole == pieces)
    }

    @Test(arguments: blockTypes)
    func nonFiniteValuesAreRejected(type: GGMLType) throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = [Float](repeating: 0.5, count: 512)
            x[300] = bad
            let e = try #require(throws: PruneError.self) { try x.withUnsafeBufferPointer { try quantize(type, $0) } }
            #expect(e.code == .invalidArgument)
            #expect(e.message == "value '\(bad)' at index 300 cannot be stored as \(type.name) (only finite values can); fix the weights or use f32")
        }
    }

    /// Values whose f16 scale (or Q4_1/Q5_1's f16 minimum) would overflow are refused, as
    /// llama.cpp's row validation refuses the infinity ggml would store.
    @Test(arguments: [(GGMLType.q8_0, Float(1e7)), (.q4_0, 6e5), (.q5_0, 3e6), (.q4_1, -7e4), (.q5_1, -7e4),
                      (.q4_K, 1e9), (.q5_K, 1e9), (.q6_K, 1e9)])
    func valuesBeyondTheScaleRangeAreRejected(type: GGMLType, big: Float) throws {
        var x = [Float](repeating: 0.5, count: 512)
        x[260] = big
        let e = try #require(throws: PruneError.self) { try x.withUnsafeBufferPointer { try quantize(type, $0) } }
        let block = 260 / type.blockSize * type.blockSize
        #expect(e.message == "values up to '\(abs(big))' at indices \(block)..<\(block + type.blockSize) are beyond \(type.name)'s range (an f16 scale or minimum above 65504); use f32")
    }

    @Test func rowsMustHoldWholeBlocks() throws {
        let x = [Float](repeating: 1, count: 320)
        let e = try #require(throws: PruneError.self) { try x.withUnsafeBufferPointer { try quantize(.q4_K, $0) } }
        #expect(e.code == .badFormat && e.message == "Q4_K tensor of '320' elements is not a whole number of 256-element blocks")
        var w = GGUFWriter()
        let r = try #require(throws: PruneError.self) {
            try w.addTensor(name: "blk.0.ffn_down.weight", shape: [256, 320], data: .init(repeating: 0, count: 256 * 320), type: .q6_K)
        }
        #expect(r.code == .shapeMismatch && r.message.contains("rows of '320' values, not a multiple of Q6_K's block of 256"), "\(r.message)")
        let q2 = try #require(throws: PruneError.self) { try [Float](repeating: 0, count: 256).withUnsafeBufferPointer { try quantize(.q2_K, $0) } }
        #expect(q2.code == .unsupported && q2.message.contains("cannot encode 'Q2_K'; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"))
    }
}

// MARK: - Fixtures and the weight generator

/// The fixture files, decoded once.
enum Fixtures {
    struct Tensor: Decodable {
        let name: String
        let shape: [Int]
        let input_sha256: String?
    }

    struct Model: Decodable {
        let arch: String
        let layers: Int
        let heads: [Int]
        let kv: [Int]
        let tied: Bool
        let tensors: [Tensor]
        static let empty = Model(arch: "", layers: 0, heads: [], kv: [], tied: true, tensors: [])

        var info: QuantizationModelInfo {
            QuantizationModelInfo(architecture: arch, layerCount: layers, headCount: heads.first ?? 0,
                                  kvHeadCount: kv.first ?? 0, hasOutputHead: !tied)
        }
    }

    struct ModelsDoc: Decodable { let models: [String: Model] }

    /// A tensor's recorded type, and its sha256 for the hashed models (a bare type string otherwise).
    struct Entry: Decodable {
        let type: String
        let sha256: String?

        enum CodingKeys: String, CodingKey { case type, sha256 }

        init(from decoder: Decoder) throws {
            if let s = try? decoder.singleValueContainer().decode(String.self) {
                type = s
                sha256 = nil
            } else {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                type = try c.decode(String.self, forKey: .type)
                sha256 = try c.decode(String.self, forKey: .sha256)
            }
        }
    }

    struct FileTypeDoc: Decodable {
        let ftype: String
        let llama_ftype: UInt32
        let models: [String: [String: Entry]]
    }

    static func decode<T: Decodable>(_ file: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: QuantizeTests.folder + "/" + file)))
    }

    static var models: ModelsDoc { get throws { try modelsResult.get() } }
    private static let modelsResult = Result { try decode("models.json", as: ModelsDoc.self) }

    static func fileType(_ name: String) throws -> FileTypeDoc { try decode("\(name).json", as: FileTypeDoc.self) }

    static func raw(_ model: String, _ fileType: String, _ tensor: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: QuantizeTests.folder + "/raw/\(model).\(fileType).\(tensor).bin")))
    }
}

/// The seeded f32 weights of the reference models, exactly as
/// scripts/reference/ggml_quantize_reference.py makes them (its docstring describes them).
enum ReferenceWeights {
    static let c32: UInt64 = 0x5EED_0000_0000_0032, c256: UInt64 = 0x5EED_0000_0000_0256

    static func fnv1a64(_ s: String) -> UInt64 {
        s.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// splitmix64's output for state z.
    static func mix(_ z: UInt64) -> UInt64 {
        var z = z &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// s·2^-22 with s the sum of h's four 16-bit fields minus 131070 (about N(0, 0.009²)).
    static func base(_ h: UInt64) -> Float {
        let s = Int64(h & 0xFFFF) + Int64((h >> 16) & 0xFFFF) + Int64((h >> 32) & 0xFFFF) + Int64(h >> 48) - 131_070
        return Float(s) * 0x1p-22
    }

    static func gaussian(count: Int, seed: UInt64) -> [Float] { (0..<count).map { base(mix(seed &+ UInt64($0))) } }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: [Float]] = [:]

    /// `values`, computed once per name.
    static func cached(_ name: String, _ shape: [Int]) -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        if let v = cache[name] { return v }
        let v = values(name, shape)
        cache[name] = v
        return v
    }

    static func values(_ name: String, _ shape: [Int]) -> [Float] {
        let seed = fnv1a64(name)
        var v = gaussian(count: shape.reduce(1, *), seed: seed)
        if shape.count == 1 { return name.hasSuffix("_norm.weight") ? v.map { 1 + $0 } : v }
        for k in 0..<(v.count / 32) { block32(&v, k, mix((seed ^ c32) &+ UInt64(k))) }
        for k in 0..<(v.count / 256) { block256(&v, k, mix((seed ^ c256) &+ UInt64(k))) }
        return v
    }

    private static func block32(_ v: inout [Float], _ k: Int, _ h: UInt64) {
        let r = 32 * k..<32 * k + 32, j0 = 32 * k + Int((h >> 8) % 32)
        switch h % 64 {
        case 0: for i in r { v[i] = 0 }
        case 1: for i in r { v[i] *= 0x1p-60 }
        case 2: for i in r { v[i] = (v[i] * 0x1p-70) * 0x1p-70 }
        case 3: v[j0] *= 0x1p6
        case 4: for i in r { v[i] = -abs(v[i]) }
        case 5:
            let keep = v[j0] * 0x1p8
            for i in r { v[i] = 0 }
            v[j0] = keep
        case 6: for i in r { v[i] = v[32 * k] }
        case 7: for i in r { v[i] = abs(v[i]) }
        case 8: for i in r { v[i] *= 0x1p12 }
        case 9: for i in 32 * k + 16..<32 * k + 32 { v[i] = 0 }
        default: break
        }
    }

    private static func block256(_ v: inout [Float], _ k: Int, _ h: UInt64) {
        let r = 256 * k..<256 * k + 256
        switch h % 40 {
        case 0: for i in r { v[i] = 0 }
        case 1: for i in r { v[i] *= 0x1p-70 }
        case 2: for i in r { v[i] *= Float(sign: .plus, exponent: (i - 256 * k) / 32 - 4, significand: 1) }
        case 3: for i in r { v[i] = -abs(v[i]) }
        default: break
        }
    }
}
