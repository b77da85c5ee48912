import Foundation

/// Builds a GGUF version 3 file (layout in GGUFFile.swift) and writes it atomically.
///
/// A tensor added with its values is encoded at once (the writer holds its encoded bytes); one
/// added with a closure is read and encoded while the file is written, one tensor at a time.
/// Output follows what llama.cpp's loader demands: tensor names under 64 bytes, at most 4
/// dimensions, rows of whole blocks, tensors packed in insertion order at aligned offsets,
/// and `general.alignment` (when written) equal to the alignment actually used.
public struct GGUFWriter {
    private var metadata: [(key: String, value: GGUFValue)] = []
    private var tensors: [(name: String, dims: [Int], type: GGMLType, byteCount: Int, bytes: () throws -> [UInt8])] = []
    private var tensorNames: Set<String> = []

    /// llama.cpp's `GGML_MAX_NAME` (64, including the terminating NUL).
    static let maxNameBytes = 63
    /// llama.cpp's `GGML_MAX_DIMS`.
    static let maxDims = 4

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
    ///
    /// `type` is one that `quantize` encodes (F32, F16, BF16, Q4_0…Q8_0, Q4_K, Q5_K, Q6_K); the row
    /// length (`shape.last`) must be a multiple of the type's block size (32, or 256 for k-quants).
    public mutating func addTensor(name: String, shape: [Int], data: [Float], type: GGMLType) throws {
        let elements = try check(name, shape, type)
        guard elements == data.count else {
            throw PruneError(.shapeMismatch, "GGUF writer: tensor '\(name)' has \(data.count) values but shape \(shape) needs \(elements)")
        }
        let bytes = try Self.encode(name, type, data)
        tensors.append((name, shape.reversed(), type, bytes.count, { bytes }))
    }

    /// Adds a tensor whose values `values` gives when the file is written (see `addTensor(data:)`).
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, values: @escaping () throws -> [Float]) throws {
        let elements = try check(name, shape, type)
        let count = try type.byteCount(elements: elements)
        tensors.append((name, shape.reversed(), type, count, {
            let data = try values()
            guard data.count == elements else {
                throw PruneError(.shapeMismatch, "GGUF writer: tensor '\(name)' has \(data.count) values but shape \(shape) needs \(elements)")
            }
            return try Self.encode(name, type, data)
        }))
    }

    /// Checks a new tensor's name, shape and type; returns its element count.
    private mutating func check(_ name: String, _ shape: [Int], _ type: GGMLType) throws -> Int {
        let what = "GGUF writer: tensor '\(name)'"
        guard !tensorNames.contains(name) else { throw PruneError(.invalidArgument, "\(what) was added twice; tensor names must be unique") }
        guard !name.isEmpty, name.utf8.count <= Self.maxNameBytes else {
            throw PruneError(.invalidArgument, "\(what) has a name of \(name.utf8.count) bytes; llama.cpp accepts 1 to \(Self.maxNameBytes)")
        }
        guard (1...Self.maxDims).contains(shape.count), shape.allSatisfy({ $0 >= 1 }) else {
            throw PruneError(.shapeMismatch, "\(what) has shape '\(shape)'; a GGUF tensor has 1 to \(Self.maxDims) dimensions, each at least 1")
        }
        var elements = 1
        for d in shape {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw PruneError(.shapeMismatch, "\(what) has shape '\(shape)', too many elements to address") }
            elements = p
        }
        if let inner = shape.last, inner % type.blockSize != 0 {
            throw PruneError(.shapeMismatch, "\(what) has rows of '\(inner)' values, not a multiple of \(type.name)'s block of \(type.blockSize); use f16 or f32 for it")
        }
        tensorNames.insert(name)
        return elements
    }

    private static func encode(_ name: String, _ type: GGMLType, _ data: [Float]) throws -> [UInt8] {
        do {
            return try data.withUnsafeBufferPointer { try quantize(type, $0) }
        } catch let e as PruneError {
            throw PruneError(e.code, "GGUF writer: tensor '\(name)': \(e.message)")
        }
    }

    /// The complete file contents with tensors at multiples of `alignment` bytes.
    public func encoded(alignment: Int = 32) throws -> Data {
        var out = Data()
        try stream(alignment: alignment) { out.append($0) }
        return out
    }

    /// Writes GGUF v3 to `path` through a temporary file in the same directory and a rename,
    /// encoding one tensor at a time; `progress` gets (tensors written, total).
    public func write(to path: String, alignment: Int = 32, progress: ((Int, Int) -> Void)? = nil) throws {
        try writeAtomically(to: path) { write in try stream(alignment: alignment, progress: progress, write) }
    }

    /// Passes the file to `write` in order: the header and tensor table, then each tensor padded.
    private func stream(alignment: Int, progress: ((Int, Int) -> Void)? = nil, _ write: (Data) throws -> Void) throws {
        var out = try header(alignment: alignment)
        func pad(_ n: Int) -> Data { Data(count: (alignment - n % alignment) % alignment) }
        out.append(pad(out.count))
        try write(out)
        for (i, t) in tensors.enumerated() {
            let bytes = try t.bytes()
            precondition(bytes.count == t.byteCount, "GGUF writer: tensor '\(t.name)' encoded to \(bytes.count) bytes, not \(t.byteCount)")
            try write(Data(bytes))
            try write(pad(bytes.count))
            progress?(i + 1, tensors.count)
        }
    }

    /// The header, metadata and tensor table (before the padding that starts the data).
    private func header(alignment: Int) throws -> Data {
        guard alignment > 0, alignment <= GGUFFile.maxAlignment, alignment & (alignment - 1) == 0 else {
            throw PruneError(.invalidArgument, "GGUF writer: alignment '\(alignment)' must be a power of two from 1 to \(GGUFFile.maxAlignment)")
        }
        var meta = metadata
        if let i = meta.firstIndex(where: { $0.key == "general.alignment" }) {
            meta[i].value = .uint32(UInt32(alignment))
        } else if alignment != GGUFFile.defaultAlignment {
            meta.append(("general.alignment", .uint32(UInt32(alignment))))
        }
        for (key, value) in meta { try Self.checkHomogeneous(value, key: key) }
        var out = Data()
        out.append(contentsOf: Array("GGUF".utf8))
        Self.put(&out, UInt32(3))
        Self.put(&out, UInt64(tensors.count))
        Self.put(&out, UInt64(meta.count))
        for (key, value) in meta {
            Self.put(&out, key)
            Self.put(&out, value.tag.rawValue)
            Self.put(&out, value)
        }
        var offset = 0
        for t in tensors {
            Self.put(&out, t.name)
            Self.put(&out, UInt32(t.dims.count))
            for d in t.dims { Self.put(&out, UInt64(d)) }
            Self.put(&out, t.type.rawValue)
            Self.put(&out, UInt64(offset))
            offset = (offset + t.byteCount + alignment - 1) / alignment * alignment
        }
        return out
    }

    /// Throws when an array (at any depth) mixes element types, which GGUF cannot store.
    static func checkHomogeneous(_ v: GGUFValue, key: String) throws {
        guard case .array(let a) = v, let first = a.first else { return }
        if let i = a.firstIndex(where: { $0.tag != first.tag }) {
            throw PruneError(.invalidArgument, "GGUF writer: metadata '\(key)' is an array of \(first.typeName) whose element \(i) is a \(a[i].typeName); GGUF arrays hold one element type")
        }
        for e in a { try checkHomogeneous(e, key: key) }
    }

    static func put<T: FixedWidthInteger>(_ out: inout Data, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func put(_ out: inout Data, _ s: String) {
        put(&out, UInt64(s.utf8.count))
        out.append(contentsOf: Array(s.utf8))
    }

    /// Appends a value's payload (its type id is written by the caller).
    static func put(_ out: inout Data, _ v: GGUFValue) {
        switch v {
        case .uint8(let x): put(&out, x)
        case .int8(let x): put(&out, x)
        case .uint16(let x): put(&out, x)
        case .int16(let x): put(&out, x)
        case .uint32(let x): put(&out, x)
        case .int32(let x): put(&out, x)
        case .uint64(let x): put(&out, x)
        case .int64(let x): put(&out, x)
        case .float32(let x): put(&out, x.bitPattern)
        case .float64(let x): put(&out, x.bitPattern)
        case .bool(let x): put(&out, UInt8(x ? 1 : 0))
        case .string(let s): put(&out, s)
        case .array(let a):
            // An empty array is written with element type uint8.
            put(&out, (a.first?.tag ?? .uint8).rawValue)
            put(&out, UInt64(a.count))
            for e in a { put(&out, e) }
        }
    }
}
