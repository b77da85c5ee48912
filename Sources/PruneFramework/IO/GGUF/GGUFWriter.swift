import Foundation

/// Builds a GGUF version 3 file (layout in GGUFFile.swift) and writes it atomically.
public struct GGUFWriter {
    private var metadata: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGMLType, bytes: [UInt8])] = []

    public init() {}

    /// Sets a metadata key, keeping first-insertion order; an existing key is replaced in place.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    /// Adds a tensor; `shape` is row-major (outermost first) and is stored innermost first.
    public mutating func addTensor(name: String, shape: [Int], data: [Float], type: GGMLType) throws {
        guard !tensors.contains(where: { $0.name == name }) else {
            throw PruneError(.badFormat, "GGUF writer: tensor '\(name)' was added twice")
        }
        guard shape.reduce(1, *) == data.count, !shape.isEmpty else {
            throw PruneError(.shapeMismatch, "GGUF writer: tensor '\(name)' has \(data.count) values, shape \(shape) needs \(shape.reduce(1, *))")
        }
        if type.blockSize > 1, let inner = shape.last, inner % type.blockSize != 0 {
            throw PruneError(.shapeMismatch, "GGUF writer: tensor '\(name)' rows of \(inner) are not a multiple of \(type.name)'s block of \(type.blockSize); use f16 or f32")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(try type.byteCount(elements: data.count))
        try data.withUnsafeBufferPointer { try quantize(type, $0, into: &bytes) }
        tensors.append((name, shape.reversed(), type, bytes))
    }

    /// The complete file contents.
    public func encoded(alignment: Int = 32) -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): str(s)
            case .array(let a):
                // An empty array is written with element type uint8.
                u32((a.first?.tag ?? .uint8).rawValue)
                u64(UInt64(a.count))
                a.forEach(value)
            }
        }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        var meta = metadata
        if alignment != 32 && !meta.contains(where: { $0.key == "general.alignment" }) {
            meta.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        u64(UInt64(meta.count))
        for (k, v) in meta {
            str(k)
            u32(v.tag.rawValue)
            value(v)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            str(t.name)
            u32(UInt32(t.dims.count))
            t.dims.forEach { u64(UInt64($0)) }
            u32(t.type.rawValue)
            u64(UInt64(off))
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }
        pad()
        for t in tensors {
            out.append(contentsOf: t.bytes)
            pad()
        }
        return out
    }

    /// Writes GGUF v3 to `path` through a temporary file and a rename.
    public func write(to path: String, alignment: Int = 32) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw PruneError(.invalidArgument, "GGUF writer: alignment '\(alignment)' must be a power of two")
        }
        try writeAtomically(encoded(alignment: alignment), to: path)
    }
}
