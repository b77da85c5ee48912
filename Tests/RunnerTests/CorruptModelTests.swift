import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// Real model files with a few bytes changed: every edit is a clean error naming the key or the
/// tensor, from `prune eval` under a 3 GB address-space limit (so a loader that sized its buffers
/// from the corrupt value would die instead of failing cleanly), and from `ModelSource.config()`,
/// which `prune validate` runs.
@Suite(.serialized) struct CorruptModelTests {
    /// One metadata edit: the key without the architecture prefix, and the new value.
    enum Value: CustomStringConvertible {
        case int(UInt64), float(Float)
        var description: String {
            switch self {
            case .int(let v): "\(v)"
            case .float(let f): "\(f)"
            }
        }
    }

    static let edits: [(key: String, value: Value)] = [
        ("feed_forward_length", .int(0x7FFF_FFFF)), ("embedding_length", .int(0x7FFF_FFFF)),
        ("embedding_length", .int(49152)), ("block_count", .int(4096)),
        ("feed_forward_length", .int(40000)), ("feed_forward_length", .int(100_000)),
        ("rope.freq_base", .float(.nan)), ("rope.freq_base", .float(.infinity)), ("rope.freq_base", .float(0)),
        ("rope.freq_base", .float(-1)), ("attention.layer_norm_rms_epsilon", .float(.nan)),
        ("attention.layer_norm_rms_epsilon", .float(.infinity)), ("attention.layer_norm_rms_epsilon", .float(0)),
        ("attention.layer_norm_rms_epsilon", .float(-1)),
    ]

    @Test(.requires(.smolLM2)) func smolLM2MetadataEditsAreCleanErrors() throws {
        try checkEdits(RequiredFile.smolLM2.path, arch: "llama")
    }

    @Test(.requires(.qwen25Coder05B)) func qwen2MetadataEditsAreCleanErrors() throws {
        try checkEdits(RequiredFile.qwen25Coder05B.path, arch: "qwen2")
    }

    /// Applies each edit to one copy of `model`, runs `prune eval` and `config()` on it, and undoes it.
    func checkEdits(_ model: String, arch: String) throws {
        let dir = try temporaryDirectory("prune-corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = dir + "/model.gguf"
        try FileManager.default.copyItem(atPath: model, toPath: copy)
        for (key, value) in Self.edits {
            let full = "\(arch).\(key)"
            let undo = try GGUFPatch.set(full, to: value, in: copy)
            defer { undo() }
            let r = try WorkingDirectoryTests.runPrune(["eval", "--model", copy, "--dataset", "ptb", "--max-windows", "1"], cwd: dir,
                                                        addressSpaceKB: 3 << 20)
            #expect(r.status == 1, "\(full) = \(value): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.contains("'\(full)'"), "\(full) = \(value): \(r.stderr)")
            let e = #expect(throws: PruneError.self) { _ = try ModelSource(path: copy).config() }
            #expect(e?.message.contains("'\(full)'") == true, "\(full) = \(value): \(e?.message ?? "")")
        }
    }

    @Test(.requires(.smolLM2)) func nonFiniteWeightsAndScalesNameTheTensor() throws {
        let dir = try temporaryDirectory("prune-nonfinite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = dir + "/model.gguf"
        try FileManager.default.copyItem(atPath: RequiredFile.smolLM2.path, toPath: copy)
        let f = try GGUFFile(path: copy)
        let norm = try #require(f.tensor(named: "blk.3.attn_norm.weight"))
        let quant = try #require(f.tensors.first { $0.type == .q4_1 })
        // An f32 norm weight of NaN, then the f16 scale of a Q4_1 block set to infinity.
        for (offset, bytes, name) in [(norm.offset + 8, Array(withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init)), norm.name),
                                      (quant.offset + 20, [0x00, 0x7C], quant.name)] {
            let undo = try GGUFPatch.write(bytes, at: offset, in: copy)
            defer { undo() }
            let e = #expect(throws: PruneError.self) { _ = try Transformer(path: copy) }
            #expect(e?.message.contains("tensor '\(name)' holds") == true, "\(e?.message ?? "")")
        }
        _ = try Transformer(path: copy)  // restored: loads
    }

    @Test func aFIFOIsRefusedWithoutWaiting() throws {
        let dir = try temporaryDirectory("prune-fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/model.gguf"
        #expect(mkfifo(fifo, 0o600) == 0)
        let e = #expect(throws: PruneError.self) { _ = try ModelSource(path: fifo) }
        #expect(e?.message.contains("is not a regular file") == true, "\(e?.message ?? "")")
        let config = dir + "/config.json"
        #expect(mkfifo(config, 0o600) == 0)
        let c = #expect(throws: PruneError.self) { _ = try HFConfig(path: config) }
        #expect(c?.message.contains("is not a regular file") == true, "\(c?.message ?? "")")
        let s = #expect(throws: PruneError.self) { _ = try SafetensorsFile(path: fifo) }
        #expect(s?.message.contains("is not a regular file") == true, "\(s?.message ?? "")")
    }

    @Test func memoryAboveTheLimitIsRefusedNamingWhatNeedsIt() throws {
        let e = #expect(throws: PruneError.self) {
            try MemoryBudget.check(3 << 30, what: "model 'm.gguf' as f32 weights", limit: 2 << 30, fix: "use a smaller model")
        }
        #expect(e?.message == "model 'm.gguf' as f32 weights needs 3.00 GiB of memory, more than the 2.00 GiB available: use a smaller model")
        try MemoryBudget.check(1 << 30, what: "m", limit: 2 << 30, fix: "")
    }
}

/// In-place byte edits of a file, each returning the closure that restores the old bytes.
enum GGUFPatch {
    /// Sets the metadata value of `key` (an integer or float of the width the file stores).
    static func set(_ key: String, to value: CorruptModelTests.Value, in path: String) throws -> () -> Void {
        let f = try GGUFFile(path: path)
        guard let v = f[key] else { throw PruneError(.unknownName, "no key \(key)") }
        let head = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped).prefix(8 << 20)
        var pattern = withUnsafeBytes(of: UInt64(key.utf8.count).littleEndian, Array.init)
        pattern += Array(key.utf8)
        guard let at = head.firstRange(of: pattern)?.upperBound else { throw PruneError(.unknownName, "key \(key) not found") }
        let valueAt = at + 4  // after the u32 type tag
        let bytes: [UInt8]
        switch (value, v) {
        case (.int(let i), .uint32): bytes = withUnsafeBytes(of: UInt32(truncatingIfNeeded: i).littleEndian, Array.init)
        case (.int(let i), .uint64), (.int(let i), .int64): bytes = withUnsafeBytes(of: i.littleEndian, Array.init)
        case (.int(let i), .int32): bytes = withUnsafeBytes(of: Int32(truncatingIfNeeded: i).littleEndian, Array.init)
        case (.float(let x), .float32): bytes = withUnsafeBytes(of: x.bitPattern.littleEndian, Array.init)
        case (.float(let x), .float64): bytes = withUnsafeBytes(of: Double(x).bitPattern.littleEndian, Array.init)
        default: throw PruneError(.unsupported, "\(key) is a \(v.typeName)")
        }
        return try write(bytes, at: valueAt, in: path)
    }

    /// Writes `bytes` at `offset`; the returned closure writes the old ones back.
    static func write(_ bytes: [UInt8], at offset: Int, in path: String) throws -> () -> Void {
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(offset))
        let old = try h.read(upToCount: bytes.count) ?? Data()
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: Data(bytes))
        return {
            guard let h = try? FileHandle(forUpdating: URL(fileURLWithPath: path)) else { return }
            try? h.seek(toOffset: UInt64(offset))
            try? h.write(contentsOf: old)
            try? h.close()
        }
    }
}
