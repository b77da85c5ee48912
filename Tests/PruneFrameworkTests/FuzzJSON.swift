import Foundation
@testable import PruneFramework

// JSON for `ModelFuzzTests`: a parsed form that keeps key order, duplicate keys and numbers as
// text, and structural and textual mutations of it (safetensors headers, config.json,
// tokenizer.json, model.safetensors.index.json). Every mutation returns a one-line label.

/// A JSON value that keeps key order and duplicate keys and holds numbers as text, so a mutant can
/// carry what JSON encoders refuse to write (`1e400`, `NaN`, repeated keys).
indirect enum FuzzJSON {
    case null, bool(Bool), number(String), string(String), array([FuzzJSON]), object([(key: String, value: FuzzJSON)])

    /// One step from a container to a child: an object member or an array element, by position.
    enum Step { case member(Int), element(Int) }

    // MARK: Parsing (valid seed files only)

    /// Parses well-formed JSON; nil on anything else.
    static func parse(_ bytes: [UInt8]) -> FuzzJSON? {
        var p = Parser(b: bytes)
        guard let v = p.value() else { return nil }
        p.skipSpace()
        return p.i == bytes.count ? v : nil
    }

    private struct Parser {
        let b: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < b.count, [0x20, 0x0A, 0x0D, 0x09].contains(b[i]) { i += 1 } }

        mutating func value() -> FuzzJSON? {
            skipSpace()
            guard i < b.count else { return nil }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(key: String, value: FuzzJSON)] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard case .string(let k)? = value() else { return nil }
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value() else { return nil }
                    members.append((k, v))
                    skipSpace()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard b[i] == UInt8(ascii: "}") else { return nil }
                    i += 1
                    return .object(members)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [FuzzJSON] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    guard let v = value() else { return nil }
                    items.append(v)
                    skipSpace()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    guard b[i] == UInt8(ascii: "]") else { return nil }
                    i += 1
                    return .array(items)
                }
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                for (word, v) in [("true", FuzzJSON.bool(true)), ("false", .bool(false)), ("null", .null)] where b[i...].starts(with: word.utf8) {
                    i += word.utf8.count
                    return v
                }
                return nil
            default:
                let start = i
                while i < b.count, "+-.eE0123456789".utf8.contains(b[i]) { i += 1 }
                return i > start ? .number(String(decoding: b[start..<i], as: UTF8.self)) : nil
            }
        }

        mutating func string() -> FuzzJSON? {
            i += 1
            var out: [UInt8] = []
            while i < b.count {
                let c = b[i]
                i += 1
                if c == UInt8(ascii: "\"") { return .string(String(decoding: out, as: UTF8.self)) }
                guard c == UInt8(ascii: "\\") else { out.append(c); continue }
                guard i < b.count else { return nil }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var u = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(u), b[i...].starts(with: "\\u".utf8) {
                        i += 2
                        guard let low = hex4() else { return nil }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out += Array(String(UnicodeScalar(u).map(Character.init) ?? "\u{FFFD}").utf8)
                default: out.append(e)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= b.count, let u = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else { return nil }
            i += 4
            return u
        }
    }

    // MARK: Writing

    /// Compact JSON text.
    var text: String {
        var out = ""
        write(&out)
        return out
    }

    private func write(_ out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let v): out += v ? "true" : "false"
        case .number(let t): out += t
        case .string(let s): Self.quote(s, &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(&out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, m) in o.enumerated() {
                if i > 0 { out += "," }
                Self.quote(m.key, &out)
                out += ":"
                m.value.write(&out)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, _ out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }

    // MARK: Paths

    /// Every path in the value down to depth 32 (deeper values are left alone: listing the paths of
    /// a value nested 5,000 deep would take quadratic memory), with the key it sits under (nil for
    /// array elements).
    func paths() -> [(path: [Step], key: String?)] {
        var out: [(path: [Step], key: String?)] = []
        collect([], nil, &out)
        return out
    }

    private func collect(_ path: [Step], _ key: String?, _ out: inout [(path: [Step], key: String?)]) {
        out.append((path, key))
        guard path.count < 32 else { return }
        switch self {
        case .object(let o): for (i, m) in o.enumerated() { m.value.collect(path + [.member(i)], m.key, &out) }
        case .array(let a): for (i, v) in a.enumerated() { v.collect(path + [.element(i)], key, &out) }
        default: break
        }
    }

    subscript(path: [Step]) -> FuzzJSON? {
        guard let first = path.first else { return self }
        let rest = Array(path.dropFirst())
        switch (first, self) {
        case (.member(let i), .object(let o)) where i < o.count: return o[i].value[rest]
        case (.element(let i), .array(let a)) where i < a.count: return a[i][rest]
        default: return nil
        }
    }

    /// A copy with the value at `path` replaced (`nil` removes it from its container).
    func replacing(_ path: [Step], with new: FuzzJSON?) -> FuzzJSON {
        guard let first = path.first else { return new ?? .null }
        let rest = Array(path.dropFirst())
        switch (first, self) {
        case (.member(let i), .object(var o)) where i < o.count:
            if rest.isEmpty, new == nil { o.remove(at: i) } else { o[i].value = o[i].value.replacing(rest, with: new) }
            return .object(o)
        case (.element(let i), .array(var a)) where i < a.count:
            if rest.isEmpty, new == nil { a.remove(at: i) } else { a[i] = a[i].replacing(rest, with: new) }
            return .array(a)
        default: return self
        }
    }

    /// The members of an object (empty for anything else).
    var members: [(key: String, value: FuzzJSON)] { if case .object(let o) = self { o } else { [] } }
}

/// Mutations of JSON documents: structural ones on a parsed `FuzzJSON`, textual ones on bytes.
enum JSONMutator {
    static let numbers = [
        "-1", "0", "1", "2", "3", "7", "16", "4096", "49152", "65536", "1000000", "2147483647", "2147483648", "4294967296",
        "16777216", "9007199254740993", "9223372036854775807", "9223372036854775808", "18446744073709551615",
        "-9223372036854775808", "-9223372036854775809", "1e308", "1e400", "-1e400", "1.5", "-0.5", "0.0", "-0", "1e-320", "1e-7", "1E2",
    ]
    static let strings = ["", " ", "x", "\u{0}", "a\nb", "\u{FFFD}", "F32", "silu", "llama", "BPE", "__metadata__"]
    /// Other values a key takes (a dtype, an architecture, an activation, a tokenizer part's type).
    static let namesByKey: [String: [String]] = [
        "dtype": ["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "Q4_0", "f32", ""],
        "torch_dtype": ["float32", "bfloat16", "float16", "int8", "F32"],
        "architectures": ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "GPT2LMHeadModel"],
        "model_type": ["llama", "qwen2", "mistral", "gpt2"],
        "hidden_act": ["silu", "gelu", "relu"],
        "type": ["BPE", "WordPiece", "Unigram", "ByteLevel", "Sequence", "Split", "Digits", "Whitespace"],
    ]
    /// Values of another JSON type, and text that is not JSON at all.
    static let others: [(FuzzJSON, String)] = [
        (.string("x"), "string"), (.string("NaN"), "\"NaN\""), (.string("Infinity"), "\"Infinity\""), (.string("-1"), "\"-1\""),
        (.string("16"), "\"16\""), (.bool(true), "true"), (.bool(false), "false"), (.null, "null"), (.array([]), "[]"),
        (.object([]), "{}"), (.array([.number("1"), .number("2"), .number("3")]), "[1,2,3]"), (.object([("a", .number("1"))]), "{a:1}"),
        (.array([.array([])]), "[[]]"), (.number("NaN"), "bare NaN"), (.number("Infinity"), "bare Infinity"), (.number("0x10"), "0x10"),
        (.number("01"), "01"), (.number("1e"), "1e"),
    ]

    /// A replacement for `current` (under `key`), and its label.
    static func replacement(for current: FuzzJSON, key: String?, _ rng: inout ModelFuzzRandom) -> (FuzzJSON, String) {
        if rng.percent(30) { return rng.pick(others) }
        switch current {
        case .number(let t):
            if rng.percent(25), let v = Int(t) {
                let d = rng.pick([v &+ 1, v &- 1, v &* 2, v / 2, v &* 1000, -v])
                return (.number("\(d)"), "\(d)")
            }
            let n = rng.pick(numbers)
            return (.number(n), n)
        case .string(let s):
            if let names = key.flatMap({ namesByKey[$0] }), rng.percent(50) {
                let t = rng.pick(names)
                return (.string(t), "'\(t)'")
            }
            switch rng.below(5) {
            case 0: return (.string(String(repeating: "a", count: rng.pick([1_000, 100_000]))), "long string")
            case 1 where !s.isEmpty:
                var u = Array(s.unicodeScalars)
                u[rng.below(u.count)] = rng.pick(["\u{0}", "9", ".", " ", "\u{FFFF}", "é"])
                let t = String(String.UnicodeScalarView(u))
                return (.string(t), "'\(ByteReader.shown(String(t.prefix(60))))'")
            case 2: return (.string(s + rng.pick(["x", ".0", "0", " "])), "'\(ByteReader.shown(String(s.prefix(60))))' extended")
            default:
                let t = rng.pick(strings)
                return (.string(t), "'\(ByteReader.shown(t))'")
            }
        case .array(let a):
            switch rng.below(6) {
            case 0: return (.array([]), "[]")
            case 1 where !a.isEmpty: return (.array(Array(a.dropLast())), "last element dropped")
            case 2 where !a.isEmpty: return (.array(a + [a[rng.below(a.count)]]), "element repeated")
            case 3: return (.array((0..<10_000).map { .number("\($0)") }), "10,000 numbers")
            case 4: return (.array(a.reversed()), "reversed")
            default: return (.array(a + [rng.pick(others).0]), "junk element appended")
            }
        case .object(let o):
            switch rng.below(3) {
            case 0: return (.object([]), "{}")
            case 1: return (.object(o + [("zz_unknown", .number("1"))]), "unknown key added")
            default:
                var v = current
                let depth = rng.pick([10, 100, 511, 600, 5_000])
                for _ in 0..<depth { v = rng.percent(50) ? .array([v]) : .object([("n", v)]) }
                return (v, "nested \(depth) deep")
            }
        default: return rng.pick(others)
        }
    }

    /// One structural mutation at a random place (half the time one at depth 2 or less).
    static func mutate(_ j: inout FuzzJSON, _ rng: inout ModelFuzzRandom) -> String {
        var all = j.paths()
        if rng.percent(50) { all = all.filter { $0.path.count <= 2 } }
        let (path, key) = rng.pick(all)
        let at = label(path, in: j)
        let current = j[path] ?? .null
        switch rng.weighted([60, 15, 10, 8, 7]) {
        case 0:
            let (v, what) = replacement(for: current, key: key, &rng)
            j = j.replacing(path, with: v)
            return "\(at) = \(what)"
        case 1 where !path.isEmpty:
            j = j.replacing(path, with: nil)
            return "\(at) removed"
        case 2 where !path.isEmpty:
            // The member or element written twice (a duplicate key in an object).
            let parent = Array(path.dropLast())
            switch (path.last, j[parent]) {
            case (.member(let i)?, .object(var o)?):
                o.insert(o[i], at: i + 1)
                j = j.replacing(parent, with: .object(o))
            case (.element(let i)?, .array(var a)?):
                a.insert(a[i], at: i + 1)
                j = j.replacing(parent, with: .array(a))
            default: break
            }
            return "\(at) duplicated"
        case 3:
            let swap = all.filter { p in
                switch (j[p.path], current) {
                case (.number?, .number), (.string?, .string), (.array?, .array), (.object?, .object): return true
                default: return false
                }
            }
            let other = rng.pick(swap.isEmpty ? [(path, key)] : swap).path
            let (a, b) = (current, j[other] ?? .null)
            j = j.replacing(path, with: b).replacing(other, with: a)
            return "\(at) swapped with \(label(other, in: j))"
        default:
            var v = current
            let depth = rng.pick([2, 50, 600])
            for _ in 0..<depth { v = .array([v]) }
            j = j.replacing(path, with: v)
            return "\(at) wrapped in \(depth) arrays"
        }
    }

    /// A path as `.key[3].key`.
    static func label(_ path: [FuzzJSON.Step], in j: FuzzJSON) -> String {
        var out = "", node: FuzzJSON? = j
        for step in path {
            switch step {
            case .member(let i):
                let key = node?.members[safe: i]?.key ?? "?"
                out += ".\(ByteReader.shown(String(key.prefix(40))))"
                node = node?.members[safe: i]?.value
            case .element(let i):
                out += "[\(i)]"
                if case .array(let a)? = node { node = a[safe: i] } else { node = nil }
            }
        }
        return out.isEmpty ? "(top level)" : out
    }

    /// One textual mutation of JSON bytes.
    static func mutateText(_ b: inout [UInt8], _ rng: inout ModelFuzzRandom) -> String {
        guard !b.isEmpty else { return "no-op" }
        let at = rng.below(b.count)
        switch rng.below(8) {
        case 0:
            let bit = rng.below(8)
            b[at] ^= UInt8(1 << bit)
            return "text: flip bit \(bit) of byte \(at)"
        case 1:
            let n = 1 + rng.below(8)
            b.removeSubrange(at..<min(b.count, at + n))
            return "text: delete \(n) bytes at \(at)"
        case 2:
            let c: UInt8 = rng.pick(Array("{}[]:,\"\\-.e0".utf8) + [0x00, 0xFF, 0x80, 0x0A])
            b.insert(c, at: at)
            return "text: insert 0x\(String(c, radix: 16)) at \(at)"
        case 3:
            b.removeSubrange(at...)
            return "text: truncate at \(at)"
        case 4:
            let n = 1 + rng.below(64)
            b.insert(contentsOf: Array(b[at..<min(b.count, at + n)]), at: at)
            return "text: duplicate \(n) bytes at \(at)"
        case 5:
            let other = rng.below(b.count)
            b.swapAt(at, other)
            return "text: swap bytes \(at) and \(other)"
        default:
            // A run of digits replaced by a number no reader can hold.
            let digits = b.indices.filter { (0x30...0x39).contains(b[$0]) && ($0 == 0 || !(0x30...0x39).contains(b[$0 - 1])) }
            guard let start = digits.isEmpty ? nil : rng.pick(digits) else { return "no-op" }
            var end = start
            while end < b.count, (0x30...0x39).contains(b[end]) { end += 1 }
            let n = rng.pick(["1e400", "99999999999999999999", "-1", "NaN", "0", "4294967296", "1.5"])
            b.replaceSubrange(start..<end, with: Array(n.utf8))
            return "text: number at \(start) = \(n)"
        }
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
