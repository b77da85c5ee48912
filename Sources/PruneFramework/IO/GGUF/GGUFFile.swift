import Foundation

/// A GGUF file (versions 2 and 3), memory-mapped, with its metadata and tensor table.
///
/// Layout, all little-endian:
/// 1. magic: 4 bytes `GGUF`
/// 2. version: u32 (2 or 3; 1 used u32 counts and is rejected)
/// 3. tensor_count: u64
/// 4. metadata_kv_count: u64
/// 5. metadata_kv_count pairs: key (u64 length + UTF-8 bytes), value type (u32), value:
///    integers/floats/bool by width, string as u64 length + bytes,
///    array as element type (u32) + count (u64) + elements (arrays may nest)
/// 6. tensor_count infos: name (string), n_dims (u32), dims (n_dims × u64, innermost first),
///    type (u32, ggml type id), offset (u64, relative to the data section, aligned)
/// 7. padding to `general.alignment` (default 32)
/// 8. the data section: each tensor's bytes at its offset
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute byte offset of the data section.
    public let dataOffset: Int
    private let file: MappedFile
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    // Caps on counts read from a file (anything larger is corruption, not a model).
    static let maxTensors = 1 << 20
    static let maxKeys = 1 << 20
    static let maxDims = 8
    static let maxNesting = 8

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let name = (path as NSString).lastPathComponent
        var r = ByteReader(file.bytes, source: "GGUF file '\(name)'")
        let src = r.source
        guard file.bytes.count >= 4 else {
            throw PruneError(.badFormat, "\(src): \(file.bytes.count) bytes is too short for a GGUF header (magic 'GGUF' expected)")
        }
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else {
            let shown = withUnsafeBytes(of: magic.littleEndian) { b in b.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined() }
            throw PruneError(.badFormat, "\(src): bad magic '\(shown)' at byte offset 0, expected 'GGUF': not a GGUF file")
        }
        version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw PruneError(.unsupported, "\(src): GGUF version '\(version)' at byte offset 4 is not supported; supported: 2, 3")
        }
        let tensorCount = try r.read(UInt64.self, "tensor_count")
        guard tensorCount <= UInt64(Self.maxTensors) else {
            throw PruneError(.outOfRange, "\(src): tensor_count '\(tensorCount)' at byte offset 8 exceeds the limit \(Self.maxTensors)")
        }
        let kvCount = try r.read(UInt64.self, "metadata_kv_count")
        guard kvCount <= UInt64(Self.maxKeys), kvCount <= UInt64(r.remaining / 12) else {
            throw PruneError(.outOfRange, "\(src): metadata_kv_count '\(kvCount)' at byte offset 16 needs at least \(kvCount * 12) bytes but \(r.remaining) remain: the file is truncated or corrupt")
        }
        var meta: [(key: String, value: GGUFValue)] = []
        var keys: [String: Int] = [:]
        for i in 0..<Int(kvCount) {
            let at = r.offset
            let key = try r.readString("metadata key \(i)", cap: 1 << 16)
            guard keys[key] == nil else {
                throw PruneError(.badFormat, "\(src): duplicate metadata key '\(key)' at byte offset \(at)")
            }
            let tagAt = r.offset
            let raw = try r.read(UInt32.self, "type of '\(key)'")
            guard let tag = GGUFValue.Tag(rawValue: raw) else {
                throw PruneError(.badFormat, "\(src): metadata '\(key)' has unknown value type '\(raw)' at byte offset \(tagAt); known: 0-12")
            }
            let value = try Self.readValue(&r, tag, key, depth: 0)
            keys[key] = meta.count
            meta.append((key, value))
        }
        metadata = meta
        keyIndex = keys
        let alignValue = keys["general.alignment"].map { meta[$0].value }
        let align = alignValue?.int ?? 32
        guard align > 0, align <= 1 << 16, align & (align - 1) == 0 else {
            throw PruneError(.badFormat, "\(src): general.alignment '\(align)' must be a power of two up to 65536")
        }
        alignment = align

        var infos: [GGUFTensorInfo] = []
        var names: [String: Int] = [:]
        infos.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let at = r.offset
            let tname = try r.readString("tensor \(i) name", cap: 1 << 16)
            guard names[tname] == nil else {
                throw PruneError(.badFormat, "\(src): duplicate tensor name '\(tname)' at byte offset \(at)")
            }
            let nd = try r.read(UInt32.self, "n_dims of '\(tname)'")
            guard nd >= 1, nd <= UInt32(Self.maxDims) else {
                throw PruneError(.outOfRange, "\(src): tensor '\(tname)' has n_dims '\(nd)' at byte offset \(r.offset - 4); allowed 1...\(Self.maxDims)")
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nd) {
                let v = try r.read(UInt64.self, "dim \(d) of '\(tname)'")
                guard v >= 1, v <= UInt64(Int32.max) else {
                    throw PruneError(.outOfRange, "\(src): tensor '\(tname)' dim \(d) = '\(v)' at byte offset \(r.offset - 8) is out of range")
                }
                let (p, o) = elements.multipliedReportingOverflow(by: Int(v))
                guard !o, p <= 1 << 40 else {
                    throw PruneError(.outOfRange, "\(src): tensor '\(tname)' has an absurd element count")
                }
                elements = p
                dims.append(Int(v))
            }
            let typeAt = r.offset
            let rawType = try r.read(UInt32.self, "type of '\(tname)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw PruneError(.unsupported, "\(src): tensor '\(tname)' has unknown ggml type '\(rawType)' at byte offset \(typeAt)")
            }
            let off = try r.read(UInt64.self, "offset of '\(tname)'")
            let bytes: Int
            do { bytes = try type.byteCount(elements: elements) } catch let e as PruneError {
                throw PruneError(e.code, "\(src): tensor '\(tname)': \(e.message)")
            }
            guard off <= UInt64(file.bytes.count) else {
                throw PruneError(.truncated, "\(src): tensor '\(tname)' offset '\(off)' is past the end of the file (\(file.bytes.count) bytes)")
            }
            guard Int(off) % align == 0 else {
                throw PruneError(.badFormat, "\(src): tensor '\(tname)' offset '\(off)' is not a multiple of the alignment \(align)")
            }
            names[tname] = infos.count
            infos.append(GGUFTensorInfo(name: tname, dims: dims, type: type, offset: Int(off), byteCount: bytes))
        }
        let dataStart = (r.offset + align - 1) / align * align
        dataOffset = dataStart
        // Make offsets absolute and check that every tensor lies inside the file.
        let fileSize = file.bytes.count
        tensors = try infos.map { t in
            let abs = dataStart + t.offset
            guard abs + t.byteCount <= fileSize else {
                throw PruneError(.truncated, "\(src): tensor '\(t.name)' data at byte offset \(abs) runs past the end of the file (\(fileSize) bytes, \(t.byteCount) needed): the file is truncated; download it again")
            }
            return GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: abs, byteCount: t.byteCount)
        }
        tensorIndex = names
    }

    static func readValue(_ r: inout ByteReader, _ tag: GGUFValue.Tag, _ key: String, depth: Int) throws -> GGUFValue {
        switch tag {
        case .uint8: return .uint8(try r.read(UInt8.self, key))
        case .int8: return .int8(try r.read(Int8.self, key))
        case .uint16: return .uint16(try r.read(UInt16.self, key))
        case .int16: return .int16(try r.read(Int16.self, key))
        case .uint32: return .uint32(try r.read(UInt32.self, key))
        case .int32: return .int32(try r.read(Int32.self, key))
        case .uint64: return .uint64(try r.read(UInt64.self, key))
        case .int64: return .int64(try r.read(Int64.self, key))
        case .float32: return .float32(try r.readF32(key))
        case .float64: return .float64(try r.readF64(key))
        case .bool:
            let at = r.offset
            let b = try r.read(UInt8.self, key)
            guard b <= 1 else { throw PruneError(.badFormat, "\(r.source): metadata '\(key)' bool at byte offset \(at) is '\(b)', expected 0 or 1") }
            return .bool(b == 1)
        case .string: return .string(try r.readString(key))
        case .array:
            guard depth < maxNesting else {
                throw PruneError(.outOfRange, "\(r.source): metadata '\(key)' nests arrays deeper than \(maxNesting) at byte offset \(r.offset)")
            }
            let at = r.offset
            let raw = try r.read(UInt32.self, "\(key) element type")
            guard let et = GGUFValue.Tag(rawValue: raw) else {
                throw PruneError(.badFormat, "\(r.source): metadata '\(key)' array has unknown element type '\(raw)' at byte offset \(at)")
            }
            let count = try r.read(UInt64.self, "\(key) array count")
            // Every element takes at least one byte, so a count above the bytes left is corruption.
            guard count <= UInt64(r.remaining) else {
                throw PruneError(.outOfRange, "\(r.source): metadata '\(key)' array count '\(count)' at byte offset \(at + 4) exceeds the \(r.remaining) bytes left")
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { out.append(try readValue(&r, et, key, depth: depth + 1)) }
            return .array(out)
        }
    }

    public subscript(key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    public func tensor(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor's raw bytes; valid while this GGUFFile lives.
    public func rawBytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[info.offset..<(info.offset + info.byteCount)])
    }

    /// The tensor as row-major f32.
    public func dequantize(_ info: GGUFTensorInfo) throws -> [Float] {
        var out = [Float](repeating: 0, count: info.elementCount)
        try out.withUnsafeMutableBufferPointer { try dequantize(info, into: $0) }
        return out
    }

    /// Dequantises the tensor into `into` (which must hold exactly its element count).
    public func dequantize(_ info: GGUFTensorInfo, into: UnsafeMutableBufferPointer<Float>) throws {
        guard into.count == info.elementCount else {
            throw PruneError(.shapeMismatch, "GGUF tensor '\(info.name)': destination holds \(into.count) values, the tensor has \(info.elementCount)")
        }
        do {
            try PruneFramework.dequantize(info.type, rawBytes(info), count: info.elementCount, into: into.baseAddress!)
        } catch let e as PruneError {
            throw PruneError(e.code, "GGUF file '\((path as NSString).lastPathComponent)': tensor '\(info.name)': \(e.message)")
        }
    }
}

/// One entry of a GGUF tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in GGUF order, innermost first.
    public let dims: [Int]
    public let type: GGMLType
    /// Absolute byte offset in the file.
    public let offset: Int
    public let byteCount: Int

    /// Row-major shape, outermost first.
    public var shape: [Int] { dims.reversed() }
    public var elementCount: Int { dims.reduce(1, *) }
}
