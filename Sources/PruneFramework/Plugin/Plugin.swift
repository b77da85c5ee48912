import Foundation

/// One documented hyperparameter of a plugin (for `prune list` and `prune schema`).
public struct PluginKey: Codable, Sendable, Equatable {
    /// JSON type: "number", "integer", "string", "boolean", "array".
    public var name: String
    public var type: String
    /// The default, as JSON text (e.g. `"l2"`, `0.2`, `[0, 29]`); nil when required.
    public var defaultValue: String?
    /// Allowed string values, when the key is an enumeration.
    public var allowed: [String]?
    public var summary: String

    public init(_ name: String, _ type: String, default d: String?, allowed: [String]? = nil, _ summary: String) {
        self.name = name
        self.type = type
        self.defaultValue = d
        self.allowed = allowed
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey { case name, type, defaultValue = "default", allowed, summary }
}

/// A recipe stage implementation: a Codable struct whose stored properties are its hyperparameters.
///
/// In a recipe a plugin is `{"type": NAME, ...its keys}`. Each plugin decodes its own keys with
/// defaults and rejects unknown keys (call `try decoder.checkPluginKeys(Self.self)` first).
public protocol Plugin: Codable, Sendable {
    /// The stable kebab-case name used in recipes; never changes once published.
    static var name: String { get }
    /// One line for `prune list`.
    static var summary: String { get }
    /// The keys the plugin accepts, with defaults.
    static var keys: [PluginKey] { get }
    /// Earlier names recipes may still use (a renamed plugin keeps its old name here).
    static var aliases: [String] { get }
}

extension Plugin {
    public static var aliases: [String] { [] }
}

/// A CodingKey for any string key.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(_ s: String) { stringValue = s }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Renders a coding path as a JSON path: `scheduler.ratio`, `evaluation.datasets[1]`. Each key is
/// shown as `PruneError.shown` shows values (an unknown 10 MB key is cut to 40 characters).
public func jsonPath(_ path: [CodingKey], _ last: String? = nil) -> String {
    var s = ""
    func add(_ key: String) {
        let k = PruneError.shown(key, limit: 40)
        s += s.isEmpty ? k : "." + k
    }
    for k in path {
        if let i = k.intValue { s += "[\(i)]" } else { add(k.stringValue) }
    }
    if let last { add(last) }
    return s.isEmpty ? "(top level)" : s
}

/// Throws unless `value`, the string at JSON path `at`, can name a file or directory: not empty, no
/// NUL character (no file system allows one; it would fail only when the file is opened, after the
/// work), at most 4096 bytes (PATH_MAX).
public func checkPathValue(_ value: String, at path: String) throws {
    guard !value.isEmpty else {
        throw PruneError(.invalidArgument, "recipe: \(path) = '' is empty; give a file or directory path")
    }
    guard !value.utf8.contains(0) else {
        throw PruneError(.invalidArgument, "recipe: \(path) = '\(PruneError.shown(value))' contains a NUL character (\\u0000), which no file path can hold; remove it")
    }
    guard value.utf8.count <= 4096 else {
        throw PruneError(.invalidArgument, "recipe: \(path) = '\(PruneError.shown(value))' is \(value.utf8.count) bytes long; a path is at most 4096 bytes")
    }
}

extension Decoder {
    /// Throws when the object at this position has a key that is not in `allowed` (plus "type").
    /// `owners` names the other plugins that declare a key, which the message adds ("'compensate'
    /// is a key of 'flap'"), so a key moved to the wrong plugin is not mistaken for a typo.
    public func checkKeys(_ allowed: [String], context: String, owners: (String) -> [String] = { _ in [] }) throws {
        let c = try container(keyedBy: AnyCodingKey.self)
        let known = Set(allowed + ["type"])
        let fix = allowed.isEmpty ? "it takes no keys besides 'type'" : "allowed keys: \(allowed.sorted().joined(separator: ", "))"
        for k in c.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !known.contains(k.stringValue) {
            let others = owners(k.stringValue).map { "'\($0)'" }
            let whose = others.isEmpty ? "" : "; '\(PruneError.shown(k.stringValue))' is a key of \(others.joined(separator: ", ")) only"
            throw PruneError(.invalidArgument, "recipe: unknown key '\(PruneError.shown(k.stringValue))' at \(jsonPath(codingPath, k.stringValue)) for \(context); \(fix)\(whose)")
        }
    }

    /// Rejects keys a plugin does not declare.
    public func checkPluginKeys<P: Plugin>(_: P.Type) throws {
        try checkKeys(P.keys.map(\.name), context: "'\(P.name)'")
    }
}

extension KeyedDecodingContainer {
    /// Decodes an optional value, falling back to a default; a present value of the wrong type is an error naming its path.
    public func value<T: Decodable>(_ key: Key, default d: T) throws -> T {
        do {
            return try decodeIfPresent(T.self, forKey: key) ?? d
        } catch let e as PruneError {
            throw e
        } catch where !(error is DecodingError) && T.self is any FixedWidthInteger.Type {
            // A number that is not whole, or beyond the type (`2.5`, `1e30`): Foundation says
            // "not representable" with an error type of its own.
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(codingPath, key.stringValue)) must be an integer (a whole number from \(Int.min) to \(Int.max))")
        } catch {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(codingPath, key.stringValue)) must be \(jsonTypeName(T.self))")
        }
    }

    /// A string naming a file or directory, with a default; refused when empty, holding a NUL, or
    /// longer than 4096 bytes (`checkPathValue`).
    public func path(_ key: Key, default d: String) throws -> String {
        let v: String = try value(key, default: d)
        try checkPathValue(v, at: jsonPath(codingPath, key.stringValue))
        return v
    }

    /// A number within a range, with a default.
    public func number(_ key: Key, default d: Double, in range: ClosedRange<Double>, openUpper: Bool = false) throws -> Double {
        let v: Double = try value(key, default: d)
        guard range.contains(v), !(openUpper && v == range.upperBound), v.isFinite else {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(codingPath, key.stringValue)) = '\(v)' is out of range; allowed \(openUpper ? "[\(range.lowerBound), \(range.upperBound))" : "[\(range.lowerBound), \(range.upperBound)]")")
        }
        return v
    }

    /// An integer within a range, with a default.
    public func integer(_ key: Key, default d: Int, in range: ClosedRange<Int>) throws -> Int {
        let v: Int = try value(key, default: d)
        guard range.contains(v) else {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(codingPath, key.stringValue)) = '\(v)' is out of range; allowed \(range.lowerBound)...\(range.upperBound == Int.max ? "" : String(range.upperBound))")
        }
        return v
    }

    /// One of a fixed set of strings, with a default.
    public func choice(_ key: Key, default d: String, allowed: [String]) throws -> String {
        let v: String = try value(key, default: d)
        guard allowed.contains(v) else {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(codingPath, key.stringValue)) = '\(PruneError.shown(v))' is not allowed; choose one of: \(allowed.joined(separator: ", "))")
        }
        return v
    }
}

/// A recipe value that is a JSON object of its own (not a plugin), e.g. a fine-tuner's `loss`.
public protocol RecipeObject: Decodable {
    /// What the object looks like, for "must be ..." errors: `an object such as {"type": "kl"}`.
    static var jsonShape: String { get }
}

extension Optional: RecipeObject where Wrapped: RecipeObject {
    public static var jsonShape: String { Wrapped.jsonShape }
}

func jsonTypeName(_ t: Any.Type) -> String {
    switch t {
    case is String.Type: return "a string"
    case is Int.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    case is Bool.Type: return "true or false"
    case is [Int].Type: return "an array of integers"
    case is [String].Type: return "an array of strings"
    case let o as any RecipeObject.Type: return o.jsonShape
    default: return "a value of type \(t)"
    }
}
