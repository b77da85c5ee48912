import Foundation
import Testing
@testable import PruneFramework

/// Raw GGUF bytes, for building malformed files by hand.
struct RawGGUF {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }
}

@Suite struct GGUFTests {
    func temp(_ bytes: [UInt8]) throws -> String {
        let p = NSTemporaryDirectory() + "prune-gguf-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func sampleWriter() throws -> GGUFWriter {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("u8", .uint8(200)); w.set("i8", .int8(-5)); w.set("u16", .uint16(60000)); w.set("i16", .int16(-30000))
        w.set("u32", .uint32(4_000_000_000)); w.set("i32", .int32(-7)); w.set("u64", .uint64(1 << 40)); w.set("i64", .int64(-(1 << 40)))
        w.set("f32", .float32(0.125)); w.set("f64", .float64(-2.5)); w.set("bool", .bool(true)); w.set("str", .string("héllo ✓"))
        w.set("nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)]), .array([])]))
        w.set("strings", .array([.string("a"), .string(""), .string("ü")]))
        try w.addTensor(name: "a", shape: [2, 3], data: [1, -2, 3.5, 0, 1e-3, -7], type: .f32)
        try w.addTensor(name: "b", shape: [2, 4], data: [1, -2, 0.5, 65504, 0, -0.25, 3, 1024], type: .f16)
        try w.addTensor(name: "c", shape: [1, 64], data: (0..<64).map { Float($0) / 8 - 4 }, type: .q8_0)
        return w
    }

    @Test func writerOutputReadsBackExactly() throws {
        let p = try temp([])
        defer { try? FileManager.default.removeItem(atPath: p) }
        let w = try sampleWriter()
        try w.write(to: p)
        let f = try GGUFFile(path: p)
        #expect(f.version == 3)
        #expect(f["u8"] == .uint8(200) && f["i8"] == .int8(-5) && f["u16"] == .uint16(60000) && f["i16"] == .int16(-30000))
        #expect(f["u32"] == .uint32(4_000_000_000) && f["i32"] == .int32(-7) && f["u64"] == .uint64(1 << 40))
        #expect(f["i64"] == .int64(-(1 << 40)) && f["f32"] == .float32(0.125) && f["f64"] == .float64(-2.5))
        #expect(f["bool"] == .bool(true) && f["str"] == .string("héllo ✓"))
        #expect(f["nested"] == .array([.array([.int32(1), .int32(2)]), .array([.int32(3)]), .array([])]))
        #expect(f["strings"]?.stringArray == ["a", "", "ü"])
        #expect(f.metadata.map(\.key).first == "general.architecture")
        let a = try #require(f.tensor(named: "a"))
        #expect(a.shape == [2, 3] && a.dims == [3, 2] && a.type == .f32)
        #expect(try f.dequantize(a) == [1, -2, 3.5, 0, 1e-3, -7])
        #expect(try f.dequantize(try #require(f.tensor(named: "b"))) == [1, -2, 0.5, 65504, 0, -0.25, 3, 1024])
        let c = try f.dequantize(try #require(f.tensor(named: "c")))
        let want = (0..<64).map { Float($0) / 8 - 4 }
        // Q8_0: each value within half a quantisation step (amax/127/2) of the original.
        #expect(zip(c, want).allSatisfy { abs($0 - $1) <= 4.0 / 127 / 2 + 1e-3 })
        // Writing what we read gives the same bytes again.
        var again = GGUFWriter()
        for (k, v) in f.metadata { again.set(k, v) }
        try again.addTensor(name: "a", shape: a.shape, data: try f.dequantize(a), type: .f32)
        let b = try #require(f.tensor(named: "b"))
        try again.addTensor(name: "b", shape: b.shape, data: try f.dequantize(b), type: .f16)
        try again.addTensor(name: "c", shape: [1, 64], data: c, type: .q8_0)
        #expect(again.encoded() == w.encoded())
    }

    /// A valid file cut or corrupted in one place, and a fragment the error message must contain.
    @Test(arguments: [
        ("bad magic", "bad magic 'GGUX'"),
        ("version 1", "version '1'"),
        ("cut in header", "truncated"),
        ("cut in tensor data", "runs past the end of the file"),
        ("absurd string length", "more than the limit"),
        ("absurd tensor count", "tensor_count '1099511627776'"),
        ("absurd array count", "array count"),
        ("duplicate key", "duplicate metadata key 'k'"),
        ("duplicate tensor", "duplicate tensor name 't'"),
        ("offset past end", "past the end"),
        ("unknown value type", "unknown value type '99'"),
        ("unknown tensor type", "unknown ggml type '77'"),
        ("misaligned offset", "not a multiple of the alignment"),
    ])
    func malformedFilesGiveClearErrors(kind: String, fragment: String) throws {
        var bytes: [UInt8]
        var r = RawGGUF()
        switch kind {
        case "bad magic":
            bytes = Array(try sampleWriter().encoded())
            bytes[3] = UInt8(ascii: "X")
        case "version 1":
            bytes = Array(try sampleWriter().encoded())
            bytes[4] = 1
        case "cut in header":
            bytes = Array(try sampleWriter().encoded().prefix(40))
        case "cut in tensor data":
            bytes = Array(try sampleWriter().encoded().dropLast(40))
        case "absurd string length":
            r.header(tensors: 0, kvs: 1); r.u64(1 << 40)
            bytes = r.bytes + [UInt8](repeating: 0, count: 64)
        case "absurd tensor count":
            r.header(tensors: 1 << 40, kvs: 0)
            bytes = r.bytes
        case "absurd array count":
            r.header(tensors: 0, kvs: 1); r.str("a"); r.u32(9); r.u32(0); r.u64(1 << 50)
            bytes = r.bytes
        case "duplicate key":
            r.header(tensors: 0, kvs: 2); r.str("k"); r.u32(4); r.u32(1); r.str("k"); r.u32(4); r.u32(2)
            bytes = r.bytes
        case "duplicate tensor", "offset past end", "unknown tensor type", "misaligned offset":
            let twice = kind == "duplicate tensor"
            r.header(tensors: twice ? 2 : 1, kvs: 0)
            for i in 0..<(twice ? 2 : 1) {
                r.str("t"); r.u32(1); r.u64(32)
                r.u32(kind == "unknown tensor type" ? 77 : 0)
                r.u64(kind == "offset past end" ? 1 << 20 : kind == "misaligned offset" ? 4 : UInt64(128 * i))
            }
            while r.bytes.count % 32 != 0 { r.bytes.append(0) }
            r.bytes += [UInt8](repeating: 0, count: 256)
            bytes = r.bytes
        case "unknown value type":
            r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(99); r.u32(0)
            bytes = r.bytes
        default:
            Issue.record("unknown case \(kind)")
            return
        }
        let p = try temp(bytes)
        defer { try? FileManager.default.removeItem(atPath: p) }
        do {
            _ = try GGUFFile(path: p)
            Issue.record("\(kind): no error")
        } catch let e as PruneError {
            #expect(e.message.contains(fragment), "\(kind): \(e.message)")
            #expect(e.message.contains((p as NSString).lastPathComponent), "\(kind) names the file: \(e.message)")
        }
    }

    @Test func missingFileIsNamed() {
        do {
            _ = try GGUFFile(path: "/no/such/model.gguf")
            Issue.record("no error")
        } catch let e as PruneError {
            #expect(e.code == .fileNotFound && e.message.contains("/no/such/model.gguf"))
        } catch { Issue.record("\(error)") }
    }

    @Test(.enabled(if: TestPaths.modelPresent, TestPaths.modelMissingReason))
    func realModelOpensAndDequantises() throws {
        let f = try GGUFFile(path: TestPaths.model)
        #expect(f["general.architecture"]?.string == "llama")
        #expect(f.tensors.count == 2 + 30 * 9)
        let emb = try #require(f.tensor(named: "token_embd.weight"))
        #expect(emb.shape == [49152, 576])
        let v = try f.dequantize(emb)
        #expect(v.count == 49152 * 576 && v.allSatisfy { $0.isFinite })
        let c = try ModelConfig(gguf: f)
        #expect(c.nLayers == 30 && c.nHead == [Int](repeating: 9, count: 30) && c.nKVHead[0] == 3 && c.ffnDim[0] == 1536)
        #expect(c.headDim == 64 && c.ropeBase == 100000 && c.tiedEmbeddings)
    }
}
