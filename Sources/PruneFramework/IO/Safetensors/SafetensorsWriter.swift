import Foundation

/// Builds a safetensors file from f32 buffers, converting each tensor to F32, F16 or BF16.
///
/// Tensors are stored in the order they are added; the header is padded with spaces to a
/// multiple of 8 bytes so the data section is aligned, as the reference writer does.
/// `write(to:metadata:)` streams the file through a temporary file and renames it into place.
public struct SafetensorsWriter {
    struct Entry {
        let name: String
        let shape: [Int]
        let dtype: SafetensorsDType
        let range: Range<Int>
    }

    private var entries: [Entry] = []
    private var names: Set<String> = []
    private var body = Data()
    /// Problems found by `add`, reported by `write` (so `add` stays non-throwing).
    private var problems: [String] = []

    public init() {}

    /// Number of tensors added so far.
    public var count: Int { entries.count }

    /// Appends one tensor, copying and converting `data` (row-major, `product(shape)` elements).
    ///
    /// A duplicate name or a count that does not match the shape is reported by `write`.
    public mutating func add(name: String, shape: [Int], data: UnsafeBufferPointer<Float>, dtype: SafetensorsDType) {
        guard !names.contains(name) else {
            problems.append("tensor '\(name)' was added twice; tensor names must be unique")
            return
        }
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == data.count else {
            problems.append("tensor '\(name)' has shape \(shape) but \(data.count) values; pass product(shape) values")
            return
        }
        names.insert(name)
        let begin = body.count
        // A value beyond f16's range would become inf: keep that tensor in f32.
        let stored: SafetensorsDType = dtype == .f16 && !HalfFloat.fits(data) ? .f32 : dtype
        HalfFloat.encode(stored, data, appendingTo: &body)
        entries.append(Entry(name: name, shape: shape, dtype: stored, range: begin..<body.count))
    }

    /// Appends one tensor from an array.
    public mutating func add(name: String, shape: [Int], values: [Float], dtype: SafetensorsDType) {
        values.withUnsafeBufferPointer { add(name: name, shape: shape, data: $0, dtype: dtype) }
    }

    /// The JSON header, padded with spaces to a multiple of 8 bytes.
    func header(metadata: [String: String]) -> Data {
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(e.range.lowerBound),\(e.range.upperBound)]}")
        }
        var bytes = Data("{\(parts.joined(separator: ","))}".utf8)
        let pad = (8 - bytes.count % 8) % 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pad))
        return bytes
    }

    /// Writes the file atomically; throws `invalidArgument` for problems found by `add`, `io` on failure.
    public func write(to path: String, metadata: [String: String] = [:]) throws {
        if let first = problems.first {
            throw PruneError(.invalidArgument, "safetensors writer for '\(path)': \(first)")
        }
        let head = header(metadata: metadata)
        var length = Data(count: 8)
        length.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(head.count).littleEndian, as: UInt64.self) }
        try writeAtomically(chunks: [length, head, body], to: path)
    }
}

/// A JSON string literal for `s`, with quotes, backslashes and control characters escaped.
private func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
