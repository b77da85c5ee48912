import Foundation
@testable import PruneFramework

// Mutators for `ModelFuzzTests`: a seeded generator, byte helpers, and a map of the fields of a
// valid GGUF file with the mutations it guides (JSON mutations are in FuzzJSON.swift). Every
// mutation returns a one-line label, so a failing case names what was done to its input.

/// A seeded generator (the package's SplitMix64): one per fuzz case, so any case replays alone.
struct ModelFuzzRandom {
    private var source: SplitMix64

    init(seed: UInt64) { source = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { source.next() }

    /// A number in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// A number in `r`.
    mutating func within(_ r: ClosedRange<Int>) -> Int { r.lowerBound + below(r.count) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// True with probability `p` percent.
    mutating func percent(_ p: Int) -> Bool { below(100) < p }

    /// An index into `weights`, drawn in proportion to its weight.
    mutating func weighted(_ weights: [Int]) -> Int {
        var r = below(weights.reduce(0, +))
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.count - 1
    }
}

/// Little-endian reads and writes on a byte array (out-of-range reads give 0, writes are dropped).
enum FuzzBytes {
    static func get(_ b: [UInt8], _ at: Int, width: Int) -> UInt64 {
        guard at >= 0, at + width <= b.count else { return 0 }
        var v: UInt64 = 0
        for i in 0..<width { v |= UInt64(b[at + i]) << (8 * i) }
        return v
    }

    static func set(_ b: inout [UInt8], _ at: Int, width: Int, _ v: UInt64) {
        guard at >= 0, at + width <= b.count else { return }
        for i in 0..<width { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    /// `v` as decimal, plus hex when large.
    static func shown(_ v: UInt64) -> String { v < 100_000 ? "\(v)" : "\(v) (0x\(String(v, radix: 16)))" }

    /// A random place in `range` (clamped to the array); nil when the range is empty.
    static func place(in range: Range<Int>, count: Int, _ rng: inout ModelFuzzRandom) -> Int? {
        let lo = max(0, range.lowerBound), hi = min(count, range.upperBound)
        return lo < hi ? lo + rng.below(hi - lo) : nil
    }
}

// MARK: - GGUF

/// The fields of a valid GGUF file (layout in GGUFFile.swift), found by walking it as the reader
/// does, so that mutations land on real counts, lengths, type ids, dims and offsets.
struct GGUFLayout {
    enum Kind: Equatable {
        case int(width: Int), float32, float64, bool, valueTag, ggmlType

        var width: Int {
            switch self {
            case .int(let w): w
            case .float32, .valueTag, .ggmlType: 4
            case .float64: 8
            case .bool: 1
            }
        }
    }

    /// What a field belongs to; mutations pick a region first, then a field in it.
    enum Region: String, CaseIterable {
        case header, keyLength, valueTag, value, modelValue, stringLength, arrayHeader, element
        case tensorNameLength, dims, tensorType, tensorOffset
    }

    struct Field {
        let offset: Int
        let kind: Kind
        let region: Region
        let label: String
    }

    /// The bytes of a metadata key or a tensor name.
    struct Name {
        let offset: Int
        let length: Int
        let label: String
    }

    /// A tensor's data: ggml type id, absolute offset and byte count.
    struct Tensor {
        let name: String
        let type: UInt32
        let offset: Int
        let bytes: Int
    }

    private(set) var fields: [Field] = []
    private(set) var byRegion: [Region: [Int]] = [:]
    private(set) var names: [Name] = []
    private(set) var tensors: [Tensor] = []
    private(set) var dataOffset = 0

    private var at = 0
    private let b: [UInt8]

    /// Walks `bytes`, a valid GGUF file.
    init(_ bytes: [UInt8]) {
        b = bytes
        at = 8
        add(.int(width: 4), .header, "version", at: 4)
        let tensorCount = Int(read(.int(width: 8), .header, "tensor_count"))
        let kvCount = Int(read(.int(width: 8), .header, "metadata_kv_count"))
        var alignment = 32
        for _ in 0..<kvCount {
            let key = string(.keyLength, "metadata key")
            let tag = read(.valueTag, .valueTag, "type of '\(key)'")
            let isModelKey = !(key.hasPrefix("general.") || key.hasPrefix("tokenizer.")) || key == "general.alignment" || key.hasSuffix("_token_id")
            let v = value(UInt32(tag), label: "'\(key)'", region: isModelKey ? .modelValue : .value, depth: 0)
            if key == "general.alignment" { alignment = Int(v) }
        }
        var infos: [(String, UInt32, Int)] = []
        for _ in 0..<tensorCount {
            let name = string(.tensorNameLength, "tensor name")
            let nd = Int(read(.int(width: 4), .dims, "n_dims of '\(name)'"))
            for d in 0..<nd { read(.int(width: 8), .dims, "dim \(d) of '\(name)'") }
            let type = UInt32(read(.ggmlType, .tensorType, "type of '\(name)'"))
            let off = Int(read(.int(width: 8), .tensorOffset, "offset of '\(name)'"))
            infos.append((name, type, off))
        }
        dataOffset = (at + alignment - 1) / alignment * alignment
        // Byte counts from the distance to the next tensor (tensors are packed in order).
        let starts = infos.map { dataOffset + $0.2 } + [bytes.count]
        tensors = infos.enumerated().map { i, t in Tensor(name: t.0, type: t.1, offset: starts[i], bytes: starts[i + 1] - starts[i]) }
        for (i, f) in fields.enumerated() { byRegion[f.region, default: []].append(i) }
    }

    private mutating func add(_ kind: Kind, _ region: Region, _ label: String, at offset: Int) {
        fields.append(Field(offset: offset, kind: kind, region: region, label: label))
    }

    @discardableResult
    private mutating func read(_ kind: Kind, _ region: Region, _ label: String) -> UInt64 {
        add(kind, region, label, at: at)
        let v = FuzzBytes.get(b, at, width: kind.width)
        at += kind.width
        return v
    }

    private mutating func string(_ region: Region, _ label: String) -> String {
        let n = Int(FuzzBytes.get(b, at, width: 8))
        let s = String(decoding: b[min(at + 8, b.count)..<min(at + 8 + n, b.count)], as: UTF8.self)
        read(.int(width: 8), region, "length of \(label) '\(s)'")
        if region != .stringLength { names.append(Name(offset: at, length: n, label: "\(label) '\(s)'")) }
        at += n
        return s
    }

    /// Walks one value of type `tag` and returns it when it is an integer.
    private mutating func value(_ tag: UInt32, label: String, region: Region, depth: Int) -> UInt64 {
        switch tag {
        case 0, 1: return read(.int(width: 1), region, label)
        case 2, 3: return read(.int(width: 2), region, label)
        case 4, 5: return read(.int(width: 4), region, label)
        case 10, 11: return read(.int(width: 8), region, label)
        case 6: read(.float32, region, label)
        case 12: read(.float64, region, label)
        case 7: read(.bool, region, label)
        case 8: _ = string(.stringLength, "string \(label)")
        case 9:
            let et = UInt32(read(.valueTag, .arrayHeader, "element type of \(label)"))
            let n = Int(read(.int(width: 8), .arrayHeader, "count of \(label)"))
            let elementRegion: Region = region == .modelValue ? .modelValue : .element
            for i in 0..<n { _ = value(et, label: "\(label)[\(i)]", region: elementRegion, depth: depth + 1) }
        default: break
        }
        return 0
    }
}

/// Mutations of a GGUF file guided by its `GGUFLayout`.
enum GGUFMutator {
    /// Integers that break readers: zero, one, all ones (-1), sign bits, 32- and 64-bit limits,
    /// and widths that are large but plausible.
    static let boundaryInts: [UInt64] = [
        0, 1, 2, 3, 7, 8, 31, 32, 33, 64, 255, 256, 4096, 49152, 65535, 65536, 1 << 20, 1 << 24, 1 << 31,
        0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 32, 1 << 42, (1 << 42) + 1, 0x7FFF_FFFF_FFFF_FFFF, 1 << 63, UInt64.max, UInt64.max - 1,
    ]
    static let f32Patterns: [(UInt32, String)] = [
        (0x7FC0_0000, "NaN"), (0x7F80_0000, "inf"), (0xFF80_0000, "-inf"), (0, "0"), (0x8000_0000, "-0"), (0xBF80_0000, "-1"),
        (1, "denormal"), (0x7F7F_FFFF, "max"), (0x0DA2_4260, "1e-30"), (0x7149_F2CA, "1e30"), (0x4000_0000, "2"), (0x3F80_0000, "1"),
    ]
    static let f64Patterns: [(UInt64, String)] = [
        (0x7FF8_0000_0000_0000, "NaN"), (0x7FF0_0000_0000_0000, "inf"), (0xFFF0_0000_0000_0000, "-inf"), (0, "0"),
        (0xBFF0_0000_0000_0000, "-1"), (1, "denormal"), (0x7FEF_FFFF_FFFF_FFFF, "max"), (0x47EF_FFFF_E000_0000, "above f32 max"),
    ]
    /// f16 bit patterns for block scales.
    static let f16Patterns: [(UInt16, String)] = [
        (0x7E00, "NaN"), (0x7C00, "inf"), (0xFC00, "-inf"), (0x7BFF, "max"), (0x0001, "subnormal"), (0, "0"), (0xFE00, "-NaN"),
    ]

    /// Applies one to three mutations; in-place ones first, then those that move bytes, then a
    /// truncation, so field offsets stay valid for as long as possible.
    static func mutate(_ bytes: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> [String] {
        let n = 1 + rng.weighted([50, 35, 15])
        // 0 field, 1 data scale, 2 bit flip, 3 rename, 4 swap fields, 5 delete, 6 insert, 7 duplicate range, 8 truncate
        var ops = (0..<n).map { _ in rng.weighted([54, 10, 8, 7, 4, 4, 4, 3, 6]) }
        ops.sort()
        return ops.map { op in
            switch op {
            case 0: return mutateField(&bytes, layout, &rng)
            case 1: return mutateData(&bytes, layout, &rng)
            case 2: return flipBit(&bytes, layout, &rng)
            case 3: return rename(&bytes, layout, &rng)
            case 4: return swapFields(&bytes, layout, &rng)
            case 5, 6, 7: return moveBytes(&bytes, layout, op, &rng)
            default: return truncate(&bytes, layout, &rng)
            }
        }
    }

    static let regionWeights: [(GGUFLayout.Region, Int)] = [
        (.header, 6), (.keyLength, 3), (.valueTag, 8), (.value, 4), (.modelValue, 20), (.stringLength, 3), (.arrayHeader, 8),
        (.element, 6), (.tensorNameLength, 2), (.dims, 14), (.tensorType, 9), (.tensorOffset, 9),
    ]

    static func mutateField(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        let present = regionWeights.filter { layout.byRegion[$0.0] != nil }
        let region = present[rng.weighted(present.map(\.1))].0
        let f = layout.fields[rng.pick(layout.byRegion[region] ?? [0])]
        let w = f.kind.width
        let current = FuzzBytes.get(b, f.offset, width: w)
        let what = "\(f.label) @\(f.offset)"
        if rng.percent(12) {
            let bit = rng.below(8 * w)
            FuzzBytes.set(&b, f.offset, width: w, current ^ (1 << UInt64(bit)))
            return "\(what): flip bit \(bit)"
        }
        let v: UInt64, shown: String
        switch f.kind {
        case .float32:
            let p = rng.pick(f32Patterns)
            (v, shown) = (UInt64(p.0), p.1)
        case .float64:
            let p = rng.pick(f64Patterns)
            (v, shown) = (p.0, p.1)
        case .bool:
            v = rng.pick([0, 1, 2, 255])
            shown = "\(v)"
        case .valueTag:
            v = rng.percent(80) ? UInt64(rng.below(14)) : rng.pick([255, 0xFFFF_FFFF, 1 << 31])
            shown = "tag \(v)"
        case .ggmlType:
            v = rng.percent(80) ? UInt64(rng.below(41)) : rng.pick([0xFFFF_FFFF, 1 << 31, 100])
            shown = "ggml type \(v)"
        case .int(let width):
            let mask: UInt64 = width == 8 ? .max : (1 << UInt64(8 * width)) - 1
            switch rng.below(10) {
            case 0: v = current &+ 1
            case 1: v = current &- 1
            case 2: v = current &* 2
            case 3: v = UInt64(rng.below(64))
            case 4: v = rng.next()
            default: v = rng.pick(boundaryInts)
            }
            shown = FuzzBytes.shown(v & mask)
        }
        FuzzBytes.set(&b, f.offset, width: w, v)
        return "\(what) = \(shown)"
    }

    /// Block scales of quantized types, or values of float types, set to NaN, inf, max, ...
    static func mutateData(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        guard !layout.tensors.isEmpty else { return flipBit(&b, layout, &rng) }
        let t = rng.pick(layout.tensors)
        // (bytes per block, offsets of f16 scales in a block); f32 and Q8_K scales are f32.
        let geometry: [UInt32: (Int, [Int])] = [
            1: (2, [0]), 2: (18, [0]), 3: (20, [0, 2]), 6: (22, [0]), 7: (24, [0, 2]), 8: (34, [0]), 10: (84, [80, 82]),
            11: (110, [108]), 12: (144, [0, 2]), 13: (176, [0, 2]), 14: (210, [208]),
        ]
        if t.type == 0 || t.type == 15 {
            let stride = t.type == 0 ? 4 : 292
            let block = rng.below(max(1, t.bytes / stride))
            let p = rng.pick(f32Patterns)
            FuzzBytes.set(&b, t.offset + block * stride, width: 4, UInt64(p.0))
            return "data of '\(t.name)' element/block \(block) = \(p.1) (f32)"
        }
        if t.type == 30 {
            let i = rng.below(max(1, t.bytes / 2))
            let p = rng.pick([(UInt64(0x7FC0), "NaN"), (0x7F80, "inf"), (0xFF80, "-inf")])
            FuzzBytes.set(&b, t.offset + 2 * i, width: 2, p.0)
            return "data of '\(t.name)' element \(i) = \(p.1) (bf16)"
        }
        guard let (blockBytes, scales) = geometry[t.type] else { return flipBit(&b, layout, &rng) }
        let block = rng.below(max(1, t.bytes / blockBytes))
        let at = rng.pick(scales)
        let p = rng.pick(f16Patterns)
        FuzzBytes.set(&b, t.offset + block * blockBytes + at, width: 2, UInt64(p.0))
        return "data of '\(t.name)' block \(block) scale +\(at) = \(p.1) (f16)"
    }

    static func flipBit(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        let range = rng.percent(90) ? 0..<layout.dataOffset : 0..<b.count
        guard let at = FuzzBytes.place(in: range, count: b.count, &rng) else { return "no-op" }
        let bit = rng.below(8)
        b[at] ^= UInt8(1 << bit)
        return "flip bit \(bit) of byte \(at)"
    }

    /// A key or tensor name: a byte changed, a layer number changed, or made equal to another
    /// name of the same length (a duplicate).
    static func rename(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        let names = layout.names.filter { $0.length > 0 }
        guard !names.isEmpty else { return flipBit(&b, layout, &rng) }
        let n = rng.pick(names)
        switch rng.below(3) {
        case 0:
            let same = names.filter { $0.length == n.length && $0.offset != n.offset }
            if let other = same.isEmpty ? nil : rng.pick(same) {
                for i in 0..<n.length { b[n.offset + i] = b[other.offset + i] }
                return "\(n.label) renamed to a copy of \(other.label)"
            }
            fallthrough
        case 1:
            let digits = (0..<n.length).filter { (0x30...0x39).contains(b[n.offset + $0]) }
            if let i = digits.isEmpty ? nil : rng.pick(digits) {
                let d = UInt8(0x30 + rng.below(10))
                b[n.offset + i] = d
                return "\(n.label): digit at \(i) = '\(Character(UnicodeScalar(d)))'"
            }
            fallthrough
        default:
            let i = rng.below(n.length)
            let v: UInt8 = rng.pick([0x00, 0xFF, 0x80, 0x2E, 0x20, 0x0A, UInt8(0x61 + rng.below(26))])
            b[n.offset + i] = v
            return "\(n.label): byte \(i) = 0x\(String(v, radix: 16))"
        }
    }

    static func swapFields(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        let f = rng.pick(layout.fields)
        let same = layout.fields.filter { $0.kind.width == f.kind.width && $0.offset != f.offset }
        guard let g = same.isEmpty ? nil : rng.pick(same) else { return "no-op" }
        let w = f.kind.width
        let (x, y) = (FuzzBytes.get(b, f.offset, width: w), FuzzBytes.get(b, g.offset, width: w))
        FuzzBytes.set(&b, f.offset, width: w, y)
        FuzzBytes.set(&b, g.offset, width: w, x)
        return "swap \(f.label) @\(f.offset) with \(g.label) @\(g.offset)"
    }

    /// Deletes (5), inserts (6) or duplicates (7) a few bytes before the data section.
    static func moveBytes(_ b: inout [UInt8], _ layout: GGUFLayout, _ op: Int, _ rng: inout ModelFuzzRandom) -> String {
        guard let at = FuzzBytes.place(in: 4..<layout.dataOffset, count: b.count, &rng) else { return "no-op" }
        let n = 1 + rng.below(op == 7 ? 64 : 16)
        switch op {
        case 5:
            b.removeSubrange(at..<min(b.count, at + n))
            return "delete \(n) bytes at \(at)"
        case 6:
            let fill: UInt8? = rng.pick([0, 0xFF, nil])
            b.insert(contentsOf: (0..<n).map { _ in fill ?? UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            return "insert \(n) bytes (\(fill.map { "0x\(String($0, radix: 16))" } ?? "random")) at \(at)"
        default:
            b.insert(contentsOf: Array(b[at..<min(b.count, at + n)]), at: at)
            return "duplicate \(n) bytes at \(at)"
        }
    }

    static func truncate(_ b: inout [UInt8], _ layout: GGUFLayout, _ rng: inout ModelFuzzRandom) -> String {
        let at = rng.percent(60) ? rng.below(max(1, min(b.count, layout.dataOffset))) : rng.below(max(1, b.count))
        b.removeSubrange(at...)
        return "truncate at \(at)"
    }
}
