import Foundation

/// A strict check of JSON bytes (RFC 8259), run before `JSONDecoder` so that a bad recipe is
/// reported with a line, a column and what was expected.
///
/// Foundation's decoder says only "The given data was not valid JSON." and keeps the first of two
/// equal keys. This scanner reads the bytes once, left to right, without recursion (an explicit
/// stack capped at `maxDepth` levels, so hostile input cannot overflow the call stack), and throws
/// `PruneError(.badFormat)` with a 1-based line and column (columns count Unicode scalars).
///
/// What it accepts, and what it refuses beyond the grammar:
/// 1. One value, with whitespace (space, tab, line feed, carriage return) around it; a UTF-8 byte
///    order mark at the very start is skipped.
/// 2. Objects `{"k": v, ...}`: each key at most once (a duplicate is an error naming its JSON path,
///    `scheduler.ratio`, `a.b[2].c`); keys compare after escapes are decoded.
/// 3. Arrays `[v, ...]`; no trailing comma, in arrays or objects.
/// 4. Strings: valid UTF-8, no raw control characters (U+0000–U+001F), escapes
///    `\" \\ \/ \b \f \n \r \t \uXXXX`, a `\uD800`–`\uDBFF` escape only followed by a
///    `\uDC00`–`\uDFFF` one.
/// 5. Numbers: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?` whose value fits a Double
///    (`1e400` is refused, as RFC 8259 §6 allows; Foundation would refuse it without saying why).
/// 6. `true`, `false`, `null`.
/// 7. At most `maxDepth` nested objects and arrays.
public enum JSONCheck {
    /// Deepest nesting of objects and arrays accepted; a recipe needs five or six levels.
    public static let maxDepth = 128

    /// Throws when `data` is not one well-formed JSON value. `label` starts each message, e.g.
    /// "recipe 'r.json'" gives "recipe 'r.json' is not valid JSON: line 3, column 17: ...".
    public static func check(_ data: Data, label: String) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var s = JSONScanner(bytes: raw.bindMemory(to: UInt8.self), label: label)
            try s.document()
        }
    }
}

/// The scanner behind `JSONCheck`: a position in the bytes and a stack of open containers.
struct JSONScanner {
    /// One open object or array: the keys seen so far and the current key, or the current index.
    struct Frame {
        var isObject: Bool
        var keys: Set<String> = []
        var key = ""
        var index = 0
    }

    let b: UnsafeBufferPointer<UInt8>
    let label: String
    /// Where the text starts (after a byte order mark), for line and column numbers.
    var start = 0
    var i = 0
    var stack: [Frame] = []

    init(bytes: UnsafeBufferPointer<UInt8>, label: String) {
        b = bytes
        self.label = label
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { start = 3 }
        i = start
    }

    /// Scans the whole input: one value and nothing after it but whitespace.
    mutating func document() throws {
        try beginValue()
        while !stack.isEmpty { try afterValue() }
        skipSpace()
        guard i == b.count else {
            throw syntax("expected the end of the input after the top-level value, found \(found())")
        }
    }

    /// Scans a scalar, or opens a container and goes on to its first value (an empty one closes here).
    mutating func beginValue() throws {
        while true {
            skipSpace()
            guard i < b.count else { throw syntax("expected a value\(valueContext()), found \(found())") }
            switch b[i] {
            case UInt8(ascii: "{"):
                try push(object: true)
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; stack.removeLast(); return }
                try key(afterComma: false)
            case UInt8(ascii: "["):
                try push(object: false)
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; stack.removeLast(); return }
            case UInt8(ascii: "\""): _ = try string(keep: false); return
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number(); return
            case UInt8(ascii: "t"): try literal("true"); return
            case UInt8(ascii: "f"): try literal("false"); return
            case UInt8(ascii: "n"): try literal("null"); return
            default:
                throw syntax("expected a value (object, array, string, number, true, false or null)\(valueContext()), found \(found(word: true))")
            }
        }
    }

    /// After a value inside a container: a ',' and the next member, or the container's end.
    mutating func afterValue() throws {
        skipSpace()
        guard let top = stack.last else { return }
        let c: UInt8? = i < b.count ? b[i] : nil
        if top.isObject {
            if c == UInt8(ascii: ",") { i += 1; skipSpace(); try key(afterComma: true); try beginValue() }
            else if c == UInt8(ascii: "}") { i += 1; stack.removeLast() }
            else { throw syntax("expected ',' or '}' after the value of '\(PruneError.shown(top.key))', found \(found())") }
        } else {
            if c == UInt8(ascii: ",") {
                i += 1
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") {
                    throw syntax("expected a value after the ',' that follows \(path()), found ']'; a trailing comma is not allowed")
                }
                stack[stack.count - 1].index += 1
                try beginValue()
            } else if c == UInt8(ascii: "]") {
                i += 1
                stack.removeLast()
            } else {
                throw syntax("expected ',' or ']' after \(path()), found \(found())")
            }
        }
    }

    /// Opens an object or array at `i`, refusing nesting deeper than `JSONCheck.maxDepth`.
    mutating func push(object: Bool) throws {
        guard stack.count < JSONCheck.maxDepth else {
            throw PruneError(.badFormat, "\(label) is nested too deeply: \(position(i)): more than \(JSONCheck.maxDepth) levels of objects and arrays, at \(path()); flatten the structure")
        }
        stack.append(Frame(isObject: object))
        i += 1
    }

    /// Reads a member's key and the ':' after it, refusing a key the object already has.
    mutating func key(afterComma: Bool) throws {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else {
            let trailing = afterComma && i < b.count && b[i] == UInt8(ascii: "}") ? "; a trailing comma is not allowed" : ""
            let after = afterComma ? " after ','" : " after '{'"
            throw syntax("expected a key in double quotes\(after)\(stack.count > 1 ? " in \(path(container: true))" : ""), found \(found())\(trailing)")
        }
        let at = i
        let k = try string(keep: true) ?? ""
        stack[stack.count - 1].key = k
        guard stack[stack.count - 1].keys.insert(k).inserted else {
            throw PruneError(.badFormat, "\(label): duplicate key '\(PruneError.shown(k))' at \(path()) (\(position(at))); each key may appear once")
        }
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: ":") else {
            throw syntax("expected ':' after the key '\(PruneError.shown(k))', found \(found())")
        }
        i += 1
    }

    mutating func skipSpace() {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// Reads `word` (true, false, null) at `i`.
    mutating func literal(_ word: StaticString) throws {
        let w = word.withUTF8Buffer { Array($0) }
        let n = w.count
        guard i + n <= b.count, (0..<n).allSatisfy({ b[i + $0] == w[$0] }) else {
            throw syntax("expected a value (object, array, string, number, true, false or null)\(valueContext()), found \(found(word: true))")
        }
        i += n
    }
}

// MARK: - Strings and numbers

extension JSONScanner {
    /// Reads a string from its opening quote; returns its decoded text when `keep` (keys), else nil.
    mutating func string(keep: Bool) throws -> String? {
        let open = i
        i += 1
        var decoded: [UInt8] = []
        var escaped = false
        var run = i
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                defer { i += 1 }
                guard keep else { return nil }
                if !escaped { return String(decoding: UnsafeBufferPointer(rebasing: b[run..<i]), as: UTF8.self) }
                decoded.append(contentsOf: b[run..<i])
                return String(decoding: decoded, as: UTF8.self)
            } else if c == UInt8(ascii: "\\") {
                if keep { decoded.append(contentsOf: b[run..<i]) }
                escaped = true
                try escape(into: &decoded, keep: keep)
                run = i
            } else if c < 0x20 {
                throw syntax("control character U+\(hex(c, 4)) inside a string; write it as an escape (\\n, \\t, \\u\(hex(c, 4)))")
            } else if c < 0x80 {
                i += 1
            } else {
                try utf8()
            }
        }
        throw PruneError(.badFormat, "\(label) is not valid JSON: \(position(open)): the string that starts here has no closing '\"' before the end of the input")
    }

    /// Reads one escape from its backslash; appends the UTF-8 it stands for when `keep`.
    mutating func escape(into out: inout [UInt8], keep: Bool) throws {
        let at = i
        i += 1
        guard i < b.count else { throw syntax("expected an escape after '\\', found \(found())") }
        if let v = Self.simpleEscape(b[i]) {
            if keep { out.append(v) }
            i += 1
            return
        }
        guard b[i] == UInt8(ascii: "u") else {
            throw syntax("'\\' followed by \(found()) is not an escape; allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
        }
        var scalar = try hex4()
        if (0xDC00...0xDFFF).contains(scalar) {
            throw PruneError(.badFormat, "\(label) is not valid JSON: \(position(at)): '\\u\(hex(scalar, 4))' is a low surrogate without a high one before it; write the character itself or a \\uD800-\\uDBFF, \\uDC00-\\uDFFF pair")
        }
        if (0xD800...0xDBFF).contains(scalar) {
            guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                throw PruneError(.badFormat, "\(label) is not valid JSON: \(position(at)): '\\u\(hex(scalar, 4))' is a high surrogate not followed by a low one (\\uDC00-\\uDFFF)")
            }
            i += 1
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw PruneError(.badFormat, "\(label) is not valid JSON: \(position(at)): '\\u\(hex(scalar, 4))' is a high surrogate followed by '\\u\(hex(low, 4))', not a low one (\\uDC00-\\uDFFF)")
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        if keep, let u = Unicode.Scalar(scalar) { UTF8.encode(u) { out.append($0) } }
    }

    /// The byte `\c` stands for, for the one-letter escapes.
    static func simpleEscape(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): c
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }

    /// Reads `uXXXX` (at the `u`) and returns the code unit.
    mutating func hex4() throws -> UInt32 {
        i += 1
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < b.count, let d = hexDigit(b[i]) else {
                throw syntax("expected four hexadecimal digits after '\\u', found \(found())")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    func hexDigit(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Length of the well-formed UTF-8 sequence at `at` (Unicode table 3-7), or nil.
    func utf8Length(at at: Int) -> Int? {
        let c = b[at]
        let (n, lo, hi): (Int, UInt8, UInt8)
        switch c {
        case 0xC2...0xDF: (n, lo, hi) = (2, 0x80, 0xBF)
        case 0xE0: (n, lo, hi) = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (n, lo, hi) = (3, 0x80, 0xBF)
        case 0xED: (n, lo, hi) = (3, 0x80, 0x9F)
        case 0xF0: (n, lo, hi) = (4, 0x90, 0xBF)
        case 0xF1...0xF3: (n, lo, hi) = (4, 0x80, 0xBF)
        case 0xF4: (n, lo, hi) = (4, 0x80, 0x8F)
        default: return nil
        }
        guard at + n <= b.count, (lo...hi).contains(b[at + 1]) else { return nil }
        for k in 2..<max(n, 2) where !(0x80...0xBF).contains(b[at + k]) { return nil }
        return n
    }

    /// Steps over one non-ASCII character in a string, refusing bytes that are not UTF-8.
    mutating func utf8() throws {
        guard let n = utf8Length(at: i) else {
            throw syntax("byte 0x\(hex(b[i], 2)) inside a string is not UTF-8; save the file as UTF-8")
        }
        i += n
    }

    /// Reads a number (RFC 8259 grammar) whose value fits a Double.
    mutating func number() throws {
        let first = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        let intStart = i
        guard digits() > 0 else { throw syntax("expected a digit after '-', found \(found())") }
        if b[intStart] == UInt8(ascii: "0"), i - intStart > 1 {
            throw PruneError(.badFormat, "\(label) is not valid JSON: \(position(intStart)): a number may not start with '0' followed by digits ('\(text(first, i))'); drop the leading zeros")
        }
        let intDigits = i - intStart
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw syntax("expected a digit after '.' in a number, found \(found())") }
        }
        var exponent = false
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            exponent = true
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw syntax("expected a digit in the exponent of a number, found \(found())") }
        }
        // Without an exponent, up to 308 integer digits always fit; only the rest needs converting.
        if exponent || intDigits > 308, !(Double(text(first, i, limit: Int.max)) ?? .infinity).isFinite {
            throw PruneError(.badFormat, "\(label): number '\(text(first, i))' at \(path()) (\(position(first))) is too large for a 64-bit float (largest about 1.8e308); write a smaller number")
        }
    }

    /// Steps over decimal digits; returns how many.
    mutating func digits() -> Int {
        let s = i
        while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") { i += 1 }
        return i - s
    }
}

// MARK: - Messages

extension JSONScanner {
    /// A syntax error at the current position.
    func syntax(_ what: String) -> PruneError {
        PruneError(.badFormat, "\(label) is not valid JSON: \(position(i)): \(what)")
    }

    /// "line L, column C" of byte `at` (1-based; a column counts Unicode scalars).
    func position(_ at: Int) -> String {
        var line = 1, column = 1
        var k = start
        let end = min(at, b.count)
        while k < end {
            let c = b[k]
            if c == 0x0A { line += 1; column = 1 } else if c & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return "line \(line), column \(column)"
    }

    /// The JSON path of the current position, in the style of `jsonPath`: `a.b[2].c`; with
    /// `container`, the path of the innermost object itself (before a key is read).
    func path(container: Bool = false) -> String {
        var s = ""
        for (n, f) in stack.enumerated() where !(container && n == stack.count - 1) {
            if f.isObject {
                let k = PruneError.shown(f.key, limit: 40)
                s += s.isEmpty ? k : "." + k
            } else {
                s += "[\(f.index)]"
            }
        }
        return s.isEmpty ? "(top level)" : PruneError.shown(s, limit: 200)
    }

    /// " for 'key'" or " in path" for a value that is missing or malformed.
    func valueContext() -> String {
        guard let top = stack.last else { return "" }
        return top.isObject ? " for '\(PruneError.shown(top.key))'" : " at \(path())"
    }

    /// What is at the current position, for "found ...": a quoted character, "the end of the input",
    /// a code point or a byte. With `word`, the letters there (`tru`, `nul`, `NaN`).
    func found(word: Bool = false) -> String {
        guard i < b.count else { return "the end of the input" }
        let c = b[i]
        if word {
            var e = i
            while e < b.count, e - i < 20, (b[e] >= 0x41 && b[e] <= 0x5A) || (b[e] >= 0x61 && b[e] <= 0x7A) { e += 1 }
            if e > i { return "'\(text(i, e))'" }
        }
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        if c < 0x80 { return "U+\(hex(c, 4))" }
        guard let n = utf8Length(at: i) else { return "byte 0x\(hex(c, 2)) (not UTF-8)" }
        let ch = String(decoding: UnsafeBufferPointer(rebasing: b[i..<(i + n)]), as: UTF8.self)
        return "'\(PruneError.shown(ch))' (U+\(hex(ch.unicodeScalars.first?.value ?? 0, 4)))"
    }

    /// Bytes `from..<to` as text for a message, cut like any quoted value.
    func text(_ from: Int, _ to: Int, limit: Int = 100) -> String {
        let s = String(decoding: UnsafeBufferPointer(rebasing: b[from..<to]), as: UTF8.self)
        return limit == Int.max ? s : PruneError.shown(s, limit: limit)
    }

    func hex<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
