import Foundation

/// A JSON value that keeps booleans, integers and other numbers apart (Foundation's
/// JSONSerialization on Linux answers `1 is Bool` with true). Used where recipes are patched as JSON.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public var object: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// An integer or other number as a Double; nil for anything else (booleans included).
    public var double: Double? {
        switch self {
        case .int(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }

    /// Canonical bytes: keys sorted, no whitespace; equal values give equal bytes.
    public func canonicalData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    /// Parses JSON bytes after `JSONCheck`; a syntax error names `source`, the line and the column.
    public static func parse(_ data: Data, source: String) throws -> JSONValue {
        try JSONCheck.check(data, label: "'\(source)'")
        return try parseChecked(data, source: source)
    }

    /// Parses bytes `JSONCheck` has passed.
    static func parseChecked(_ data: Data, source: String) throws -> JSONValue {
        do { return try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw PruneError(.badFormat, "'\(source)' cannot be read as JSON (\(PruneError.shown("\(error)", limit: 200))); save it as UTF-8 JSON")
        }
    }
}
