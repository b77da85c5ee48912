import Foundation

/// A GGUF file (versions 2 and 3), memory-mapped, with its metadata and tensor table.
///
/// Layout, all little-endian:
/// 1. magic: 4 bytes `GGUF`
/// 2. version: u32 (2 or 3; version 1 used u32 counts and is rejected)
/// 3. tensor_count: u64
/// 4. metadata_kv_count: u64
/// 5. metadata_kv_count pairs, each:
///    1. key: string (u64 byte length, then UTF-8 bytes, no terminator)
///    2. value type: u32 (0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string,
///       9 array, 10 u64, 11 i64, 12 f64)
///    3. value: integers and floats by width, bool as one byte 0/1, string as above, array as
///       element type (u32), count (u64), then the elements (arrays may nest)
/// 6. tensor_count tensor infos, each:
///    1. name: string
///    2. n_dims: u32
///    3. dims: n_dims × u64, innermost (contiguous) first
///    4. type: u32, a ggml type id (`GGMLType`)
///    5. offset: u64, relative to the data section, a multiple of the alignment
/// 7. zero padding up to a multiple of `general.alignment` (a u32 key; 32 when absent)
/// 8. the data section: each tensor's bytes at its offset, rows of whole blocks
///
/// Every count and length read from the file is capped (by a fixed limit and by the bytes left)
/// before anything is allocated for it; every failure is a `PruneError` naming the file, the
/// field and its byte offset.
public final class GGUFFile: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// The GGUF version (2 or 3).
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensor infos in file order, with absolute offsets.
    public let tensors: [GGUFTensorInfo]
    /// The data alignment in bytes (`general.alignment`, 32 when absent).
    public let alignment: Int
    /// Absolute byte offset of the data section.
    public let dataOffset: Int
    private let file: MappedFile
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    // Caps on what a file may declare (anything larger is corruption, not a model).
    static let maxTensors = 1 << 20
    static let maxKeys = 1 << 20
    static let maxKeyBytes = 1 << 16
    static let maxDims = 8
    static let maxNesting = 8
    static let maxElements = 1 << 42
    static let maxAlignment = 1 << 16
    static let defaultAlignment = 32
    /// The smallest tensor info: empty name (8), n_dims (4), one dim (8), type (4), offset (8).
    static let minTensorInfoBytes = 32
    /// The smallest key-value pair: empty key (8), type (4), one byte of value.
    static let minKeyValueBytes = 13
    /// Bytes one array element takes in memory (a boxed `GGUFValue`), about 48 times what a u8 takes
    /// in the file: arrays are checked against `MemoryBudget` before they are read.
    static let valueBytesInMemory = 48

    /// Opens and memory-maps `path`, reading and checking its header, metadata and tensor table.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var r = ByteReader(file.bytes, source: "GGUF file '\(path)'")
        let (version, tensorCount, kvCount) = try Self.readHeader(&r)
        self.version = version
        let (meta, keys) = try Self.readMetadata(&r, count: kvCount)
        metadata = meta
        keyIndex = keys
        alignment = try Self.alignment(meta, keys, source: r.source)
        let (infos, names) = try Self.readTensorInfos(&r, count: tensorCount, alignment: alignment)
        tensorIndex = names
        dataOffset = (r.offset + alignment - 1) / alignment * alignment
        tensors = try Self.place(infos, dataOffset: dataOffset, fileSize: file.bytes.count, source: r.source)
    }

    /// Reads fields 1–4 and returns (version, tensor_count, metadata_kv_count).
    static func readHeader(_ r: inout ByteReader) throws -> (UInt32, Int, Int) {
        let src = r.source
        guard r.remaining >= 4 else {
            throw PruneError(.badFormat, "\(src): the file has \(r.remaining) bytes, too few for the 4-byte magic 'GGUF': not a GGUF file")
        }
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else {
            let shown = withUnsafeBytes(of: magic.littleEndian) { b in
                b.map { (32..<127).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            }
            throw PruneError(.badFormat, "\(src): bad magic '\(shown)' at byte offset 0, expected 'GGUF': not a GGUF file")
        }
        let version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            let why: String
            if version == 1 {
                why = "version 1 (32-bit counts, 2023) is obsolete; convert the model again with a current llama.cpp"
            } else if version.byteSwapped == 2 || version.byteSwapped == 3 {
                why = "this is a big-endian GGUF file; only little-endian files are supported"
            } else {
                why = "supported versions: 2, 3"
            }
            throw PruneError(.unsupported, "\(src): GGUF version '\(version)' at byte offset 4 is not supported: \(why)")
        }
        // Checked against the bytes left once the metadata has been read.
        let tensors = try r.readCount("tensor_count", cap: maxTensors)
        let keys = try r.readCount("metadata_kv_count", cap: maxKeys, minItemBytes: minKeyValueBytes)
        return (version, tensors, keys)
    }

    /// Reads field 5: `count` key-value pairs, rejecting duplicate keys.
    static func readMetadata(_ r: inout ByteReader, count: Int) throws -> ([(key: String, value: GGUFValue)], [String: Int]) {
        var meta: [(key: String, value: GGUFValue)] = []
        var keys: [String: Int] = [:]
        var arrayElements = 0
        meta.reserveCapacity(count)
        for i in 0..<count {
            let at = r.offset
            let key = try r.readString("metadata key \(i)", cap: maxKeyBytes)
            let shown = ByteReader.shown(key)
            guard keys[key] == nil else {
                throw PruneError(.badFormat, "\(r.source): duplicate metadata key '\(shown)' at byte offset \(at) (pair \(i)); each key may appear once")
            }
            let tag = try readTag(&r, "metadata '\(shown)'")
            let value = try readValue(&r, tag, shown, depth: 0, arrayElements: &arrayElements)
            keys[key] = meta.count
            meta.append((key, value))
        }
        return (meta, keys)
    }

    /// Reads a u32 value type id.
    static func readTag(_ r: inout ByteReader, _ field: String) throws -> GGUFValue.Tag {
        let at = r.offset
        let raw = try r.read(UInt32.self, field)
        guard let tag = GGUFValue.Tag(rawValue: raw) else {
            throw PruneError(.badFormat, "\(r.source): unknown value type '\(raw)' for \(field) at byte offset \(at); known: 0-12 (u8, i8, u16, i16, u32, i32, f32, bool, string, array, u64, i64, f64)")
        }
        return tag
    }

    /// Reads one value of type `tag`; `key` (already made printable) names it in errors.
    /// `arrayElements` counts the array elements read so far in the file.
    static func readValue(_ r: inout ByteReader, _ tag: GGUFValue.Tag, _ key: String, depth: Int, arrayElements: inout Int) throws -> GGUFValue {
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
            guard b <= 1 else {
                throw PruneError(.badFormat, "\(r.source): metadata '\(key)' is a bool of value '\(b)' at byte offset \(at); a bool is 0 or 1")
            }
            return .bool(b == 1)
        case .string: return .string(try r.readString(key))
        case .array: return try readArray(&r, key, depth: depth, arrayElements: &arrayElements)
        }
    }

    /// Reads an array: element type, count (capped by the bytes left and, with the elements of the
    /// arrays before it, by `MemoryBudget`), elements.
    static func readArray(_ r: inout ByteReader, _ key: String, depth: Int, arrayElements: inout Int) throws -> GGUFValue {
        guard depth < maxNesting else {
            throw PruneError(.outOfRange, "\(r.source): metadata '\(key)' nests arrays deeper than \(maxNesting) levels at byte offset \(r.offset): the file is corrupt")
        }
        let et = try readTag(&r, "the elements of array '\(key)'")
        let at = r.offset
        let count = try r.readCount("count of array '\(key)'", cap: Int.max, minItemBytes: et.minBytes)
        // Counts are capped by the bytes left, so neither the sum nor the product can overflow.
        arrayElements += count
        try MemoryBudget.check(arrayElements * valueBytesInMemory,
                               what: "\(r.source): metadata '\(key)' (an array of \(count) values, count at byte offset \(at))",
                               fix: "the file is corrupt, or its metadata arrays are too large for this machine")
        var out: [GGUFValue] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(try readValue(&r, et, key, depth: depth + 1, arrayElements: &arrayElements)) }
        return .array(out)
    }

    /// The alignment from `general.alignment`: an integer power of two up to 65536.
    static func alignment(_ meta: [(key: String, value: GGUFValue)], _ keys: [String: Int], source: String) throws -> Int {
        guard let i = keys["general.alignment"] else { return defaultAlignment }
        let v = meta[i].value
        guard let a = v.int, a > 0, a <= maxAlignment, a & (a - 1) == 0 else {
            throw PruneError(.badFormat, "\(source): metadata 'general.alignment' is '\(v.int.map(String.init) ?? v.string ?? "…")' (\(v.typeName)); it must be an integer power of two from 1 to \(maxAlignment), usually 32")
        }
        return a
    }

    /// Reads field 6; offsets stay relative to the data section.
    static func readTensorInfos(_ r: inout ByteReader, count: Int, alignment: Int) throws -> ([GGUFTensorInfo], [String: Int]) {
        guard count <= r.remaining / minTensorInfoBytes else {
            throw PruneError(.truncated, "\(r.source): tensor_count '\(count)' needs at least \(count * minTensorInfoBytes) bytes of tensor infos from byte offset \(r.offset) but only \(r.remaining) remain: the file is truncated or corrupt")
        }
        var infos: [GGUFTensorInfo] = []
        var names: [String: Int] = [:]
        infos.reserveCapacity(count)
        for i in 0..<count {
            let at = r.offset
            let name = try r.readString("tensor \(i) name", cap: maxKeyBytes)
            guard names[name] == nil else {
                throw PruneError(.badFormat, "\(r.source): duplicate tensor name '\(ByteReader.shown(name))' at byte offset \(at) (tensor \(i)); each tensor name may appear once")
            }
            let info = try readTensorInfo(&r, name: name, alignment: alignment)
            names[name] = infos.count
            infos.append(info)
        }
        return (infos, names)
    }

    /// Reads fields 6.2 and 6.3 (n_dims, dims) of the tensor `name` and returns the dims and
    /// their element count.
    static func readDims(_ r: inout ByteReader, name: String) throws -> ([Int], Int) {
        let src = r.source
        let nd = try r.read(UInt32.self, "n_dims of '\(name)'")
        guard nd >= 1, nd <= UInt32(maxDims) else {
            throw PruneError(.outOfRange, "\(src): tensor '\(name)' has n_dims '\(nd)' at byte offset \(r.offset - 4); allowed 1 to \(maxDims)")
        }
        var dims: [Int] = []
        var elements = 1
        for d in 0..<Int(nd) {
            let v = try r.read(UInt64.self, "dim \(d) of '\(name)'")
            guard v >= 1, v <= UInt64(maxElements) else {
                throw PruneError(.outOfRange, "\(src): tensor '\(name)' dim \(d) is '\(v)' at byte offset \(r.offset - 8); a dimension must be from 1 to \(maxElements)")
            }
            let (p, o) = elements.multipliedReportingOverflow(by: Int(v))
            guard !o, p <= maxElements else {
                throw PruneError(.outOfRange, "\(src): tensor '\(name)' dims \(dims + [Int(v)]) (ending at byte offset \(r.offset)) hold more than \(maxElements) elements: the file is corrupt")
            }
            elements = p
            dims.append(Int(v))
        }
        return (dims, elements)
    }

    /// Reads fields 6.2–6.5 of the tensor `name`.
    static func readTensorInfo(_ r: inout ByteReader, name tensorName: String, alignment: Int) throws -> GGUFTensorInfo {
        let src = r.source
        let name = ByteReader.shown(tensorName)
        let (dims, elements) = try readDims(&r, name: name)
        let typeAt = r.offset
        let rawType = try r.read(UInt32.self, "type of '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            throw PruneError(.unsupported, "\(src): tensor '\(name)' has unknown ggml type '\(rawType)' at byte offset \(typeAt); \(GGMLType.unknownReason(rawType))")
        }
        guard dims[0] % type.blockSize == 0 else {
            throw PruneError(.badFormat, "\(src): tensor '\(name)' of type \(type.name) has rows of '\(dims[0])' values (dim 0, byte offset \(typeAt - 8 * dims.count)), not a multiple of its \(type.blockSize)-value block")
        }
        let bytes = try type.byteCount(elements: elements)
        let offAt = r.offset
        let off = try r.read(UInt64.self, "offset of '\(name)'")
        guard off <= UInt64(r.bytes.count) else {
            throw PruneError(.truncated, "\(src): tensor '\(name)' has data offset '\(off)' (field at byte offset \(offAt)), past the end of the file (\(r.bytes.count) bytes): the file is truncated or corrupt")
        }
        guard Int(off) % alignment == 0 else {
            throw PruneError(.badFormat, "\(src): tensor '\(name)' has data offset '\(off)' (field at byte offset \(offAt)), not a multiple of the alignment \(alignment)")
        }
        return GGUFTensorInfo(name: tensorName, dims: dims, type: type, offset: Int(off), byteCount: bytes)
    }

    /// Makes offsets absolute and checks that every tensor's bytes lie inside the file.
    static func place(_ infos: [GGUFTensorInfo], dataOffset: Int, fileSize: Int, source: String) throws -> [GGUFTensorInfo] {
        try infos.map { t in
            let abs = dataOffset + t.offset
            guard abs <= fileSize, t.byteCount <= fileSize - abs else {
                throw PruneError(.truncated, "\(source): tensor '\(ByteReader.shown(t.name))' data at byte offset \(abs) (\(t.byteCount) bytes of \(t.type.name)) runs past the end of the file (\(fileSize) bytes): the file is truncated; download or convert it again")
            }
            return GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: abs, byteCount: t.byteCount)
        }
    }

    /// The metadata value of `key`.
    public subscript(key: String) -> GGUFValue? { keyIndex[key].map { metadata[$0].value } }

    /// The tensor called `name`.
    public func tensor(named name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor's raw bytes; valid while this GGUFFile lives.
    public func rawBytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        precondition(info.offset >= 0 && info.byteCount >= 0 && info.offset <= file.bytes.count - info.byteCount,
                     "tensor info '\(info.name)' does not belong to GGUF file '\(path)'")
        return UnsafeRawBufferPointer(rebasing: file.bytes[info.offset..<(info.offset + info.byteCount)])
    }

    /// Lets the kernel drop the mapped pages of a byte range once read (they are read from the
    /// page cache again when needed), so a big file does not stay in the process's memory.
    func dropPages(offset: Int, count: Int) { file.dropPages(offset: offset, count: count) }

    /// The stored type of every tensor, by name.
    public var tensorTypes: [String: GGMLType] {
        Dictionary(tensors.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
    }

    /// The tensor as row-major f32.
    public func dequantize(_ info: GGUFTensorInfo) throws -> [Float] {
        var out = [Float](repeating: 0, count: info.elementCount)
        try out.withUnsafeMutableBufferPointer { try dequantize(info, into: $0) }
        return out
    }

    /// Dequantises the tensor into `into`, which must hold exactly its element count.
    public func dequantize(_ info: GGUFTensorInfo, into: UnsafeMutableBufferPointer<Float>) throws {
        guard into.count == info.elementCount else {
            throw PruneError(.shapeMismatch, "GGUF file '\(path)': tensor '\(ByteReader.shown(info.name))' has \(info.elementCount) values but the destination holds \(into.count)")
        }
        guard let dst = into.baseAddress else { return }
        do {
            try PruneFramework.dequantize(info.type, rawBytes(info), count: info.elementCount, into: dst)
        } catch let e as PruneError {
            throw PruneError(e.code, "GGUF file '\(path)': tensor '\(ByteReader.shown(info.name))': \(e.message)")
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
    /// Bytes of data.
    public let byteCount: Int

    /// Row-major shape, outermost first.
    public var shape: [Int] { dims.reversed() }
    /// The number of elements.
    public var elementCount: Int { dims.reduce(1, *) }
}
