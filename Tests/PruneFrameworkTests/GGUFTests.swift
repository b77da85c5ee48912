import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// Raw GGUF bytes, for building malformed files by hand.
struct RawGGUF {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }
    /// One tensor info: name, dims (innermost first), ggml type id, relative offset.
    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0) {
        str(name)
        u32(UInt32(dims.count))
        dims.forEach { u64($0) }
        u32(type)
        u64(offset)
    }
    /// Zero padding to `alignment`, then `data` bytes of tensor data.
    mutating func data(_ count: Int, alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
        bytes += [UInt8](repeating: 0, count: count)
    }
}

@Suite struct GGUFTests {
    func temp(_ bytes: [UInt8]) throws -> String {
        let p = NSTemporaryDirectory() + "prune-gguf-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// Runs `body` with a fresh temporary path, removed afterwards.
    func withTemp<T>(_ body: (String) throws -> T) throws -> T {
        let p = NSTemporaryDirectory() + "prune-gguf-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: p) }
        return try body(p)
    }

    static let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(60000)), ("i16", .int16(-30000)),
        ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("u64", .uint64(1 << 63)), ("i64", .int64(-(1 << 40))),
        ("f32", .float32(0.125)), ("f64", .float64(-2.5e-300)), ("bool", .bool(true)), ("false", .bool(false)),
        ("str", .string("héllo ✓")), ("empty", .string("")),
        ("nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)]), .array([])])),
        ("deep", .array([.array([.array([.string("x"), .string("y")])]), .array([.array([])])])),
        ("strings", .array([.string("a"), .string(""), .string("ü")])),
        ("floats", .array([.float32(1.5), .float32(-0.0)])),
        ("no elements", .array([])),
    ]
    static let f32Data: [Float] = [1, -2, 3.5, -0.0, Float.leastNonzeroMagnitude, -7, .greatestFiniteMagnitude]
    static let f16Data: [Float] = [1, -2, 0.5, 65504, -0.0, 5.9604645e-8, 3, 1024]
    static let bf16Data: [Float] = [1, -3, 3.140625, 0, -0x1p100, 256, 0.5, -0.125]
    /// Multiples of 0.5 whose block maxima are 63.5, so d = 63.5 / 127 = 0.5 exactly and
    /// Q8_0 stores every value without error.
    static let q8Data: [Float] = (0..<64).map { (i: Int) -> Float in
        if i % 32 == 0 { return i == 0 ? 63.5 : -63.5 }
        return Float((i * 37) % 255 - 127) * 0.5
    }

    func sampleWriter() throws -> GGUFWriter {
        var w = GGUFWriter()
        for (k, v) in Self.metadata { w.set(k, v) }
        try w.addTensor(name: "a", shape: [7], data: Self.f32Data, type: .f32)
        try w.addTensor(name: "b", shape: [2, 4], data: Self.f16Data, type: .f16)
        try w.addTensor(name: "c", shape: [2, 32], data: Self.q8Data, type: .q8_0)
        try w.addTensor(name: "d", shape: [2, 2, 2], data: Self.bf16Data, type: .bf16)
        return w
    }

    @Test func writerOutputReadsBackBitExactly() throws {
        let w = try sampleWriter()
        let f = try withTemp { p in try w.write(to: p); return try GGUFFile(path: p) }
        #expect(f.version == 3 && f.alignment == 32)
        #expect(f.metadata.map(\.key) == Self.metadata.map(\.0))
        for (k, v) in Self.metadata { #expect(f[k] == v, "metadata '\(k)'") }
        #expect(f["f32"]?.double == 0.125 && f["u64"]?.int == nil && f["u64"]?.double == 0x1p63)
        #expect(f["strings"]?.stringArray == ["a", "", "ü"] && f["floats"]?.floatArray == [1.5, 0])
        #expect(f["nested"]?.array?.first?.intArray == [1, 2] && f["missing"] == nil)
        #expect(f.tensors.map(\.name) == ["a", "b", "c", "d"])
        let want: [String: ([Int], GGMLType, [Float])] = [
            "a": ([7], .f32, Self.f32Data), "b": ([2, 4], .f16, Self.f16Data),
            "c": ([2, 32], .q8_0, Self.q8Data), "d": ([2, 2, 2], .bf16, Self.bf16Data),
        ]
        for t in f.tensors {
            let (shape, type, data) = try #require(want[t.name])
            #expect(t.shape == shape && t.dims == shape.reversed() && t.type == type, "\(t.name)")
            #expect(t.offset % 32 == 0 && t.offset >= f.dataOffset && t.elementCount == data.count)
            #expect(try f.dequantize(t).map(\.bitPattern) == data.map(\.bitPattern), "\(t.name) round trip")
        }
        // The Q8_0 scale is 0.5 (f16 0x3800) and the first value 63.5 / 0.5 = 127.
        let c = try #require(f.tensor(named: "c"))
        #expect(Array(f.rawBytes(c).prefix(3)) == [0x00, 0x38, 127] && f.rawBytes(c).count == 68)
        // Writing what we read gives the same bytes again.
        var again = GGUFWriter()
        for (k, v) in f.metadata { again.set(k, v) }
        for t in f.tensors { try again.addTensor(name: t.name, shape: t.shape, data: try f.dequantize(t), type: t.type) }
        #expect(try again.encoded() == w.encoded())
    }

    @Test func setReplacesInPlaceAndIntoWrites() throws {
        var w = GGUFWriter()
        w.set("x", .uint8(1)); w.set("y", .uint8(2)); w.set("x", .string("new"))
        try w.addTensor(name: "t", shape: [3, 2], data: [1, 2, 3, 4, 5, 6], type: .f32)
        let f = try withTemp { p in try w.write(to: p); return try GGUFFile(path: p) }
        #expect(f.metadata.map(\.key) == ["x", "y"] && f["x"] == .string("new"))
        let t = try #require(f.tensor(named: "t"))
        var buf = [Float](repeating: 0, count: 6)
        try buf.withUnsafeMutableBufferPointer { try f.dequantize(t, into: $0) }
        #expect(buf == [1, 2, 3, 4, 5, 6])
        var small = [Float](repeating: 0, count: 5)
        let e = try #require(throws: PruneError.self) { try small.withUnsafeMutableBufferPointer { try f.dequantize(t, into: $0) } }
        #expect(e.code == .shapeMismatch && e.message.contains("tensor 't' has 6 values but the destination holds 5"), "\(e.message)")
    }

    @Test func version2IsRead() throws {
        var bytes = Array(try sampleWriter().encoded())
        bytes[4] = 2
        let f = try withTemp { p in try Data(bytes).write(to: URL(fileURLWithPath: p)); return try GGUFFile(path: p) }
        #expect(f.version == 2 && f["str"] == .string("héllo ✓"))
        #expect(try f.dequantize(try #require(f.tensor(named: "a"))) == Self.f32Data)
    }

    @Test(arguments: [1, 16, 64, 4096])
    func alignmentIsHonoured(alignment: Int) throws {
        var w = try sampleWriter()
        w.set("general.alignment", .uint32(8))  // a stale value: the writer must replace it
        let f = try withTemp { p in try w.write(to: p, alignment: alignment); return try GGUFFile(path: p) }
        #expect(f.alignment == alignment && f["general.alignment"] == .uint32(UInt32(alignment)))
        #expect(f.dataOffset % alignment == 0 && f.tensors.allSatisfy { $0.offset % alignment == 0 })
        #expect(try f.dequantize(try #require(f.tensor(named: "d"))) == Self.bf16Data)
    }

    @Test func handBuiltFileWithAlignment16() throws {
        // 1 tensor of 4 f32 at relative offset 16, after a 16-byte gap of other bytes.
        var r = RawGGUF()
        r.header(tensors: 1, kvs: 1)
        r.str("general.alignment"); r.u32(4); r.u32(16)
        r.tensor("w", dims: [4], type: 0, offset: 16)
        r.data(0, alignment: 16)
        let start = r.bytes.count
        r.bytes += [UInt8](repeating: 0xEE, count: 16)
        for v: Float in [1, 2, 3, 4] { r.u32(v.bitPattern) }
        let p = try temp(r.bytes)
        defer { try? FileManager.default.removeItem(atPath: p) }
        let f = try GGUFFile(path: p)
        #expect(f.dataOffset == start && f.tensors[0].offset == start + 16)
        #expect(try f.dequantize(f.tensors[0]) == [1, 2, 3, 4])
    }

    /// A writer misuse, and a fragment its error must contain.
    @Test(arguments: [
        ("mixed array", "element 1 is a string"),
        ("duplicate tensor", "added twice"),
        ("long name", "64 bytes"),
        ("zero dim", "shape '[0, 4]'"),
        ("five dims", "1 to 4 dimensions"),
        ("wrong count", "shape [2, 2] needs 4"),
        ("q8_0 row of 48", "rows of '48' values"),
        ("q2_K", "cannot encode 'Q2_K'"),
        ("NaN in q8_0", "value 'nan' at index 3"),
        ("alignment 48", "alignment '48'"),
    ])
    func writerRejectsWhatGGUFCannotHold(kind: String, fragment: String) throws {
        var w = GGUFWriter()
        let error = #expect(throws: PruneError.self) {
            switch kind {
            case "mixed array":
                w.set("k", .array([.array([.uint8(1), .string("x")])]))
                _ = try w.encoded()
            case "duplicate tensor":
                try w.addTensor(name: "t", shape: [1], data: [0], type: .f32)
                try w.addTensor(name: "t", shape: [1], data: [0], type: .f32)
            case "long name": try w.addTensor(name: String(repeating: "n", count: 64), shape: [1], data: [0], type: .f32)
            case "zero dim": try w.addTensor(name: "t", shape: [0, 4], data: [], type: .f32)
            case "five dims": try w.addTensor(name: "t", shape: [1, 1, 1, 1, 1], data: [0], type: .f32)
            case "wrong count": try w.addTensor(name: "t", shape: [2, 2], data: [0], type: .f32)
            case "q8_0 row of 48": try w.addTensor(name: "t", shape: [2, 48], data: .init(repeating: 0, count: 96), type: .q8_0)
            case "q2_K": try w.addTensor(name: "t", shape: [256], data: .init(repeating: 0, count: 256), type: .q2_K)
            case "NaN in q8_0":
                var d = [Float](repeating: 1, count: 32)
                d[3] = .nan
                try w.addTensor(name: "t", shape: [32], data: d, type: .q8_0)
            default: _ = try w.encoded(alignment: 48)
            }
        }
        #expect(error?.message.contains(fragment) == true, "\(kind): \(error?.message ?? "no error")")
    }

    /// Builds the malformed file of `kind`.
    func malformed(_ kind: String) throws -> [UInt8] {
        var r = RawGGUF()
        let sample = Array(try sampleWriter().encoded())
        switch kind {
        case "empty": return []
        case "bad magic": return Array("GGUX".utf8) + sample.dropFirst(4)
        case "version 1": return Array(sample[0..<4]) + [1, 0, 0, 0] + sample.dropFirst(8)
        case "big-endian": return Array(sample[0..<4]) + [0, 0, 0, 3] + sample.dropFirst(8)
        case "cut in header": return Array(sample.prefix(20))
        case "cut in key": r.header(tensors: 0, kvs: 1); r.u64(20); r.bytes += Array("general.".utf8)
        case "cut in value": r.header(tensors: 0, kvs: 1); r.str("general.architecture"); r.u32(8); r.u64(5); r.bytes += [108, 108]
        case "cut in tensor info":
            r.header(tensors: 1, kvs: 0); r.str("t"); r.u32(4)
            for _ in 0..<3 { r.u64(32) }
            r.u32(0)
        case "cut in tensor data": return Array(sample.dropLast(40))
        case "absurd string length": r.header(tensors: 0, kvs: 1); r.u64(1 << 40); r.data(64)
        case "string past end": r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(8); r.u64(100); r.data(10, alignment: 1)
        case "absurd kv count": r.header(tensors: 0, kvs: 1 << 62)
        case "kv count past end": r.header(tensors: 0, kvs: 1000); r.data(64)
        case "absurd tensor count": r.header(tensors: 1 << 40, kvs: 0)
        case "tensor count past end": r.header(tensors: 1000, kvs: 0); r.data(1000, alignment: 1)
        case "absurd array count": r.header(tensors: 0, kvs: 1); r.str("a"); r.u32(9); r.u32(4); r.u64(1 << 50); r.data(64)
        case "array too deep":
            r.header(tensors: 0, kvs: 1); r.str("a"); r.u32(9)
            for _ in 0..<9 { r.u32(9); r.u64(1) }
            r.u32(0); r.u64(0)
        case "duplicate key": r.header(tensors: 0, kvs: 2); r.str("k"); r.u32(4); r.u32(1); r.str("k"); r.u32(4); r.u32(2)
        case "control characters in key": r.header(tensors: 0, kvs: 1); r.str("a\nb\u{7}" + String(repeating: "x", count: 200)); r.u32(99)
        case "unknown value type": r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(99); r.u32(0)
        case "unknown element type": r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(9); r.u32(13); r.u64(0)
        case "bad bool": r.header(tensors: 0, kvs: 1); r.str("k"); r.u32(7); r.u8(2)
        case "alignment 3": r.header(tensors: 0, kvs: 1); r.str("general.alignment"); r.u32(4); r.u32(3)
        case "alignment string": r.header(tensors: 0, kvs: 1); r.str("general.alignment"); r.u32(8); r.str("32")
        default: return try malformedTensor(kind)
        }
        return r.bytes
    }

    /// A file of one or two tensor infos with one field wrong.
    func malformedTensor(_ kind: String) throws -> [UInt8] {
        var r = RawGGUF()
        r.header(tensors: kind == "duplicate tensor" ? 2 : 1, kvs: 0)
        switch kind {
        case "duplicate tensor": r.tensor("t", dims: [32]); r.tensor("t", dims: [32], offset: 128)
        case "n_dims 0": r.tensor("t", dims: [])
        case "n_dims 9": r.tensor("t", dims: [UInt64](repeating: 1, count: 9))
        case "zero dim": r.tensor("t", dims: [32, 0])
        case "element overflow": r.tensor("t", dims: [1 << 40, 1 << 40])
        case "unknown tensor type": r.tensor("t", dims: [32], type: 77)
        case "removed tensor type": r.tensor("t", dims: [32], type: 4)
        case "partial block row": r.tensor("t", dims: [16, 2], type: 2)
        case "offset past end": r.tensor("t", dims: [32], offset: 1 << 20)
        case "data past end": r.tensor("t", dims: [64], offset: 128)
        case "misaligned offset": r.tensor("t", dims: [32], offset: 4)
        default: throw PruneError(.invalidArgument, "no malformed file '\(kind)'")
        }
        r.data(256)
        return r.bytes
    }

    /// A file broken in one place, a fragment its error must contain, and the error's code.
    @Test(arguments: [
        ("empty", "too few for the 4-byte magic", PruneError.Code.badFormat),
        ("bad magic", "bad magic 'GGUX' at byte offset 0", .badFormat),
        ("version 1", "version '1' at byte offset 4", .unsupported),
        ("big-endian", "big-endian", .unsupported),
        ("cut in header", "field 'metadata_kv_count' at byte offset 16", .truncated),
        ("cut in key", "field 'metadata key 0' at byte offset 32", .truncated),
        ("cut in value", "field 'general.architecture' at byte offset 64 needs 5 bytes but only 2 remain", .truncated),
        ("cut in tensor info", "field 'dim 3 of 't'' at byte offset 61 needs 8 bytes but only 4 remain", .truncated),
        ("cut in tensor data", "runs past the end of the file", .truncated),
        ("absurd string length", "'1099511627776' bytes, more than the limit", .outOfRange),
        ("string past end", "field 'k' at byte offset 45 needs 100 bytes", .truncated),
        ("absurd kv count", "metadata_kv_count at byte offset 16 is '4611686018427387904', more than the limit", .outOfRange),
        ("kv count past end", "metadata_kv_count at byte offset 16 is '1000', more than the 72 bytes left can hold (at most 5)", .truncated),
        ("absurd tensor count", "tensor_count at byte offset 8 is '1099511627776', more than the limit 1048576", .outOfRange),
        ("tensor count past end", "tensor_count '1000' needs at least 32000 bytes of tensor infos from byte offset 24 but only 1000 remain", .truncated),
        ("absurd array count", "count of array 'a' at byte offset 41 is '1125899906842624', more than the 79 bytes left can hold (at most 19)", .truncated),
        ("array too deep", "nests arrays deeper than 8", .outOfRange),
        ("duplicate key", "duplicate metadata key 'k' at byte offset 41", .badFormat),
        ("unknown value type", "unknown value type '99' for metadata 'k' at byte offset 33", .badFormat),
        ("control characters in key", "metadata 'a\\u{a}b\\u{7}xxx", .badFormat),
        ("unknown element type", "unknown value type '13' for the elements of array 'k' at byte offset 37", .badFormat),
        ("bad bool", "bool of value '2' at byte offset 37", .badFormat),
        ("alignment 3", "'general.alignment' is '3' (uint32)", .badFormat),
        ("alignment string", "'general.alignment' is '32' (string)", .badFormat),
        ("duplicate tensor", "duplicate tensor name 't' at byte offset 57", .badFormat),
        ("n_dims 0", "n_dims '0' at byte offset 33", .outOfRange),
        ("n_dims 9", "n_dims '9' at byte offset 33", .outOfRange),
        ("zero dim", "dim 1 is '0' at byte offset 45", .outOfRange),
        ("element overflow", "more than 4398046511104 elements", .outOfRange),
        ("unknown tensor type", "unknown ggml type '77' at byte offset 45", .unsupported),
        ("removed tensor type", "Q4_2/Q4_3 were removed", .unsupported),
        ("partial block row", "rows of '16' values (dim 0, byte offset 37)", .badFormat),
        ("offset past end", "data offset '1048576' (field at byte offset 49), past the end", .truncated),
        ("data past end", "data at byte offset 192 (256 bytes of F32) runs past the end of the file (320 bytes)", .truncated),
        ("misaligned offset", "data offset '4' (field at byte offset 49), not a multiple of the alignment 32", .badFormat),
    ])
    func malformedFilesGiveClearErrors(kind: String, fragment: String, code: PruneError.Code) throws {
        let p = try temp(try malformed(kind))
        defer { try? FileManager.default.removeItem(atPath: p) }
        let e = try #require(throws: PruneError.self, "\(kind)") { try GGUFFile(path: p) }
        #expect(e.message.contains(fragment), "\(kind): \(e.message)")
        #expect(e.code == code, "\(kind): \(e.code) \(e.message)")
        #expect(e.message.contains("GGUF file '\(p)'"), "\(kind) names the file: \(e.message)")
        #expect(!e.message.contains("\n") && e.message.count < 400, "\(kind): \(e.message)")
    }

    /// Cutting the file anywhere before the end of the last tensor's data is an error; the
    /// padding after it may go.
    @Test func everyTruncationIsAnError() throws {
        let full = Array(try sampleWriter().encoded())
        try withTemp { p in
            try Data(full).write(to: URL(fileURLWithPath: p))
            let last = try #require(try GGUFFile(path: p).tensors.last)
            let end = last.offset + last.byteCount
            for cut in 0..<full.count {
                try Data(full.prefix(cut)).write(to: URL(fileURLWithPath: p))
                if cut < end {
                    let e = try #require(throws: PruneError.self, "cut at \(cut)") { try GGUFFile(path: p) }
                    #expect(e.message.contains("GGUF file '\(p)'"), "cut at \(cut): \(e.message)")
                } else {
                    #expect(try GGUFFile(path: p).dequantize(last) == Self.bf16Data, "cut at \(cut)")
                }
            }
        }
    }

    /// Random byte corruption (fixed seed): every file either opens and dequantises or throws a
    /// PruneError; nothing crashes or allocates without bound.
    @Test func corruptedBytesNeverCrash() throws {
        let full = Array(try sampleWriter().encoded())
        let header = try withTemp { p in
            try Data(full).write(to: URL(fileURLWithPath: p))
            return try GGUFFile(path: p).dataOffset
        }
        var rng = DequantizeTests.SplitMix64(state: 42)
        var opened = 0
        try withTemp { p in
            for _ in 0..<400 {
                var bytes = full
                for _ in 0..<Int(1 + rng.next() % 3) {
                    let at = Int(rng.next() % UInt64(header))
                    let choice = rng.next() % 4
                    bytes[at] = choice == 0 ? 0xFF : choice == 1 ? 0 : UInt8(truncatingIfNeeded: rng.next())
                }
                try Data(bytes).write(to: URL(fileURLWithPath: p))
                do {
                    let f = try GGUFFile(path: p)
                    for t in f.tensors where GGMLType.dequantizable.contains(t.type) { _ = try f.dequantize(t) }
                    opened += 1
                } catch is PruneError {}
            }
        }
        #expect(opened > 0 && opened < 400)
    }

    @Test func missingFileIsNamed() {
        let e = #expect(throws: PruneError.self) { try GGUFFile(path: "/no/such/model.gguf") }
        #expect(e?.code == .fileNotFound && e?.message.contains("'/no/such/model.gguf'") == true)
    }

    @Test func directoryIsRejected() {
        let e = #expect(throws: PruneError.self) { try GGUFFile(path: NSTemporaryDirectory()) }
        #expect(e?.code == .invalidArgument && e?.message.contains("not a regular file") == true)
    }

    @Test func typeGeometry() throws {
        #expect(GGMLType.q4_1.name == "Q4_1" && GGMLType.q6_K.name == "Q6_K" && GGMLType.bf16.name == "BF16")
        #expect(try GGMLType.q4_K.byteCount(elements: 512) == 288)
        #expect(try GGMLType.f16.byteCount(elements: 3) == 6)
        #expect(try GGMLType.q8_0.byteCount(elements: 64) == 68)
        #expect(try GGMLType.q4_1.byteCount(elements: 32) == 20)
        let e = try #require(throws: PruneError.self) { try GGMLType.q8_0.byteCount(elements: 33) }
        #expect(e.message.contains("Q8_0 tensor of '33' elements") && e.message.contains("32-element blocks"), "\(e.message)")
        #expect(GGMLType(rawValue: 39) == .mxfp4 && GGMLType(rawValue: 4) == nil)
    }

    static let layerTensors = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]

    @Test(.requires(.smolLM2))
    func realModelOpensAndDequantises() throws {
        let f = try GGUFFile(path: TestPaths.model)
        #expect(f.version == 3 && f.alignment == 32)
        #expect(f["general.architecture"]?.string == "llama" && f["llama.block_count"]?.int == 30)
        #expect(f["tokenizer.ggml.tokens"]?.stringArray?.count == 49152)
        for l in 0..<30 {
            for name in Self.layerTensors {
                #expect(f.tensor(named: "blk.\(l).\(name).weight") != nil, "blk.\(l).\(name).weight")
            }
        }
        #expect(f.tensors.count == 2 + 30 * Self.layerTensors.count)
        #expect(Set(f.tensors.map(\.type)) == [.f32, .q4_1, .q8_0])
        let emb = try #require(f.tensor(named: "token_embd.weight"))
        #expect(emb.shape == [49152, 576] && emb.type == .q8_0)
        let v = try f.dequantize(emb)
        #expect(v.count == 49152 * 576 && v.allSatisfy(\.isFinite))
        let q = try f.dequantize(try #require(f.tensor(named: "blk.0.attn_q.weight")))
        #expect(q.count == 576 * 576 && q.allSatisfy(\.isFinite) && q.contains { $0 != 0 })
    }
}
