import Foundation

// Safetensors file layout (https://github.com/huggingface/safetensors), all integers little-endian:
//
//  1. u64 N: the length of the JSON header in bytes (capped at `SafetensorsFile.maxHeaderBytes`
//     and at the file size).
//  2. N bytes of UTF-8 JSON: an object mapping each tensor name to
//     `{"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}`, plus an optional
//     `"__metadata__"` object of string to string. Writers may pad the header with spaces.
//  3. The data: each tensor's bytes, row-major, little-endian, at `[begin, end)` relative to the
//     first byte after the header. `end - begin` equals `product(shape) × dtype size`, ranges
//     lie inside the data and do not overlap (gaps are tolerated).

/// Element types this package converts to and from f32.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        }
    }

    /// The `torch_dtype` string Hugging Face uses in `config.json`.
    public var torchName: String {
        switch self {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        }
    }

    /// Every dtype the safetensors format defines, with its element size in bytes.
    ///
    /// Files holding other types than F32/F16/BF16 still open; reading such a tensor throws.
    static let formatSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
        "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
    ]
}

/// Where one tensor lives in a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    /// The dtype as written in the header (`"F32"`, `"I64"`, ...).
    public let dtypeName: String
    /// Row-major shape, outermost first (the PyTorch order).
    public let shape: [Int]
    /// Byte range within the file (absolute, header included).
    public let range: Range<Int>

    /// The dtype when it is one this package converts; nil for other safetensors types.
    public var dtype: SafetensorsDType? { SafetensorsDType(rawValue: dtypeName) }
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Values per row: the last dimension (a vector is one row), as in `ParameterStore.Entry`.
    public var rowWidth: Int { shape.count >= 2 ? shape[shape.count - 1] : count }
    /// Number of rows (0 when a row is empty).
    public var rowCount: Int { rowWidth == 0 ? 0 : count / rowWidth }
}

/// A read-only safetensors file: header parsed and validated on open, tensors converted to f32 on read.
///
/// The file is memory-mapped; reads may run concurrently.
public final class SafetensorsFile: @unchecked Sendable {
    /// The largest header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000
    /// Bytes of memory decoding takes per header byte (about 21 for a real header), checked
    /// against `MemoryBudget` before decoding.
    static let memoryPerHeaderByte = 24

    public let path: String
    /// Every tensor, in data-offset order.
    public let tensors: [SafetensorsTensorInfo]
    /// The `__metadata__` object (empty when absent).
    public let metadata: [String: String]
    private let index: [String: Int]
    private let file: MappedFile

    /// Opens and validates a file; throws a PruneError naming the file and the offending field.
    public init(path: String) throws {
        self.path = path
        let file = (path as NSString).lastPathComponent
        func fail(_ code: PruneError.Code, _ what: String) -> PruneError {
            PruneError(code, "safetensors file '\(file)': \(what)")
        }
        self.file = try MappedFile(path: path, what: "safetensors file")
        let data = self.file.bytes
        guard data.count >= 8 else {
            throw fail(.truncated, "file is \(data.count) bytes, too short for the 8-byte header length")
        }
        let n = UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw fail(.outOfRange, "header length '\(n)' at byte 0 exceeds the cap of \(Self.maxHeaderBytes) bytes; the file is not safetensors or is corrupt")
        }
        guard Int(n) <= data.count - 8 else {
            throw fail(.truncated, "header length '\(n)' at byte 0 runs past the end of the \(data.count)-byte file; the file is truncated or not safetensors")
        }
        try MemoryBudget.check(Self.memoryPerHeaderByte * Int(n), what: "safetensors file '\(file)': decoding its \(n)-byte header",
                               fix: "the file is corrupt, or its header is too large for this machine")
        let headerEnd = 8 + Int(n)
        let header = try Self.parseHeader(Data(UnsafeRawBufferPointer(rebasing: data[8..<headerEnd])), fail: fail)
        metadata = header.metadata
        tensors = try Self.validate(header.entries, dataStart: headerEnd, dataCount: data.count - headerEnd, fail: fail)
        var idx: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { idx[t.name] = i }
        index = idx
    }

    /// The info of one tensor, or nil.
    public func tensor(named name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// One tensor converted to f32.
    public func floats(_ name: String) throws -> [Float] {
        let info = try lookup(name)
        var out = [Float](repeating: 0, count: info.count)
        try out.withUnsafeMutableBufferPointer { try read(info, into: $0) }
        return out
    }

    /// Converts one tensor to f32 into `into`, whose count must equal the tensor's element count.
    public func read(_ name: String, into: UnsafeMutableBufferPointer<Float>) throws {
        try read(try lookup(name), into: into)
    }

    /// Converts the tensor `info` (from this file's `tensors`) to f32 into `out`.
    public func read(_ info: SafetensorsTensorInfo, into out: UnsafeMutableBufferPointer<Float>) throws {
        let dtype = try checkedDType(info)
        guard out.count == info.count else {
            throw PruneError(.shapeMismatch, "safetensors file '\(fileName)': tensor '\(ByteReader.shown(info.name))' has \(info.count) elements \(info.shape), the destination holds \(out.count)")
        }
        HalfFloat.decode(dtype, from: UnsafeRawBufferPointer(rebasing: file.bytes[info.range]), into: out)
    }

    /// Converts rows `rows` of the tensor `info` (from this file's `tensors`) to f32 into `out`:
    /// `rows.count × info.rowWidth` values, row-major.
    public func read(_ info: SafetensorsTensorInfo, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let dtype = try checkedDType(info)
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw PruneError(.outOfRange, "safetensors file '\(fileName)': tensor '\(ByteReader.shown(info.name))' has \(info.rowCount) rows \(info.shape); rows \(rows) are out of range")
        }
        HalfFloat.decode(dtype, from: UnsafeRawBufferPointer(rebasing: file.bytes[byteRange(info, rows: rows, dtype: dtype)]),
                         into: UnsafeMutableBufferPointer(start: out, count: rows.count * info.rowWidth))
    }

    /// Lets the kernel drop the pages holding rows `rows` of `info` from this process's memory
    /// when they are 64 KiB or more (a later read maps them again), so a large model read once
    /// need not stay resident. `info` must be a checked tensor of this file.
    func dropPages(_ info: SafetensorsTensorInfo, rows: Range<Int>) {
        guard let dtype = info.dtype else { return }
        let bytes = byteRange(info, rows: rows, dtype: dtype)
        if bytes.count >= 1 << 16 { file.dropPages(offset: bytes.lowerBound, count: bytes.count) }
    }

    /// The dtype of `info`, checked to be one this package converts and to lie in this file.
    func checkedDType(_ info: SafetensorsTensorInfo) throws -> SafetensorsDType {
        guard let dtype = info.dtype else {
            throw PruneError(.unsupported, "safetensors file '\(fileName)': tensor '\(ByteReader.shown(info.name))' has dtype '\(info.dtypeName)'; supported: F32, F16, BF16")
        }
        guard info.range.lowerBound >= 0, info.range.upperBound <= file.bytes.count,
              info.range.count == info.count * dtype.size else {
            throw PruneError(.invalidArgument, "safetensors file '\(fileName)': tensor info '\(ByteReader.shown(info.name))' does not belong to this file")
        }
        return dtype
    }

    /// The file bytes of rows `rows` of `info`.
    private func byteRange(_ info: SafetensorsTensorInfo, rows: Range<Int>, dtype: SafetensorsDType) -> Range<Int> {
        let rowBytes = info.rowWidth * dtype.size
        return (info.range.lowerBound + rows.lowerBound * rowBytes)..<(info.range.lowerBound + rows.upperBound * rowBytes)
    }

    /// The file's name without its directory, as errors show it.
    private var fileName: String { (path as NSString).lastPathComponent }

    private func lookup(_ name: String) throws -> SafetensorsTensorInfo {
        guard let i = index[name] else {
            throw PruneError(.unknownName, "safetensors file '\(fileName)': no tensor named '\(ByteReader.shown(name))'; the file has \(tensors.count) tensors")
        }
        return tensors[i]
    }

    // MARK: - Header

    /// One header entry before validation.
    struct RawEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let data_offsets: [Int]
    }

    /// The header's tensor entries and metadata.
    struct Header: Decodable {
        var entries: [(name: String, entry: RawEntry)] = []
        var metadata: [String: String] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            for key in c.allKeys {
                if key.stringValue == "__metadata__" {
                    metadata = try c.decode([String: String].self, forKey: key)
                } else {
                    entries.append((key.stringValue, try c.decode(RawEntry.self, forKey: key)))
                }
            }
        }
    }

    static func parseHeader(_ json: Data, fail: (PruneError.Code, String) -> PruneError) throws -> Header {
        do {
            return try JSONDecoder().decode(Header.self, from: json)
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx),
                let DecodingError.keyNotFound(_, ctx), let DecodingError.dataCorrupted(ctx) {
            let path = ByteReader.shown(ctx.codingPath.map(\.stringValue).joined(separator: "."))
            if path.isEmpty {
                throw fail(.badFormat, "header (bytes 8..<\(8 + json.count)) is not a valid JSON object: \(ctx.debugDescription)")
            }
            throw fail(.badFormat, "header entry '\(path)' is malformed: \(ctx.debugDescription); expected {\"dtype\", \"shape\", \"data_offsets\"} or a string-to-string __metadata__")
        } catch {
            throw fail(.badFormat, "header (bytes 8..<\(8 + json.count)) is not valid JSON: \(error)")
        }
    }

    /// Checks dtypes, shapes and offsets; returns the tensors sorted by offset with absolute ranges.
    static func validate(_ entries: [(name: String, entry: RawEntry)], dataStart: Int, dataCount: Int,
                         fail: (PruneError.Code, String) -> PruneError) throws -> [SafetensorsTensorInfo] {
        var out: [SafetensorsTensorInfo] = []
        out.reserveCapacity(entries.count)
        let allowed = SafetensorsDType.formatSizes.keys.sorted().joined(separator: ", ")
        for (fullName, e) in entries {
            // Names, dtypes and arrays are shown cut to about 100 characters.
            let name = ByteReader.shown(fullName)
            guard let size = SafetensorsDType.formatSizes[e.dtype] else {
                throw fail(.badFormat, "tensor '\(name)' has unknown dtype '\(ByteReader.shown(e.dtype))'; allowed: \(allowed)")
            }
            guard e.shape.allSatisfy({ $0 >= 0 }), e.shape.count <= 8 else {
                throw fail(.badFormat, "tensor '\(name)' has shape '\(ByteReader.shown("\(e.shape)"))'; dimensions must be non-negative and at most 8")
            }
            guard e.data_offsets.count == 2 else {
                throw fail(.badFormat, "tensor '\(name)' data_offsets '\(ByteReader.shown("\(e.data_offsets)"))' must be [begin, end]")
            }
            let b = e.data_offsets[0], en = e.data_offsets[1]
            guard b >= 0, b <= en, en <= dataCount else {
                throw fail(.outOfRange, "tensor '\(name)' data_offsets '[\(b), \(en)]' are out of range for the \(dataCount)-byte data section starting at byte \(dataStart)")
            }
            var bytes = size
            for d in e.shape {
                let (p, o) = bytes.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw fail(.outOfRange, "tensor '\(name)' shape '\(e.shape)' is too large (its byte size overflows)")
                }
                bytes = p
            }
            guard en - b == bytes else {
                throw fail(.shapeMismatch, "tensor '\(name)' data_offsets '[\(b), \(en)]' span \(en - b) bytes, but shape \(e.shape) of \(e.dtype) needs \(bytes)")
            }
            out.append(SafetensorsTensorInfo(name: fullName, dtypeName: e.dtype, shape: e.shape,
                                             range: (dataStart + b)..<(dataStart + en)))
        }
        out.sort { ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name) }
        for i in out.indices.dropFirst() where out[i].range.lowerBound < out[i - 1].range.upperBound {
            throw fail(.badFormat, "tensors '\(ByteReader.shown(out[i - 1].name))' and '\(ByteReader.shown(out[i].name))' overlap at data offset \(out[i].range.lowerBound - dataStart)")
        }
        return out
    }
}

/// Bulk F32/F16/BF16 conversions for safetensors data (the scalar conversions are `Half`).
enum HalfFloat {
    /// True on little-endian hosts, where F32 data is copied without conversion.
    static let isLittleEndianHost = 1.littleEndian == 1

    /// True when every finite value is within f16's finite range (|x| ≤ 65504, its largest value),
    /// so no conversion of it can give inf.
    static func fits(_ data: UnsafeBufferPointer<Float>) -> Bool {
        var largest: Float = 0
        for x in data where x.isFinite { largest = max(largest, abs(x)) }
        return largest <= 65504
    }

    /// Converts `out.count` little-endian elements of `dtype` from `src` to f32.
    static func decode(_ dtype: SafetensorsDType, from src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count == out.count * dtype.size, "HalfFloat.decode: byte count does not match")
        switch dtype {
        case .f32:
            if isLittleEndianHost, let dst = out.baseAddress, let s = src.baseAddress {
                UnsafeMutableRawPointer(dst).copyMemory(from: s, byteCount: src.count)
                return
            }
            for i in 0..<out.count {
                out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        case .f16:
            for i in 0..<out.count {
                out[i] = Half.toFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<out.count {
                out[i] = Half.bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        }
    }

    /// Converts f32 values to little-endian bytes of `dtype`, appended to `out`.
    static func encode(_ dtype: SafetensorsDType, _ src: UnsafeBufferPointer<Float>, appendingTo out: inout Data) {
        let start = out.count
        out.count += src.count * dtype.size  // zero-filled
        out.withUnsafeMutableBytes { raw in
            let dst = UnsafeMutableRawBufferPointer(rebasing: raw[start...])
            switch dtype {
            case .f32:
                if isLittleEndianHost, let s = src.baseAddress, let d = dst.baseAddress {
                    d.copyMemory(from: s, byteCount: dst.count)
                    return
                }
                for i in 0..<src.count { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            case .f16:
                for i in 0..<src.count { dst.storeBytes(of: Half.fromFloat(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            case .bf16:
                for i in 0..<src.count { dst.storeBytes(of: Half.bf16FromFloat(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            }
        }
    }
}
