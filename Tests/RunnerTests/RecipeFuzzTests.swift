import Foundation
import Testing
import TestSupport
@testable import PruneFramework
@testable import Runner

/// Mutated recipes never crash the reader: each one decodes to a `Recipe` (whose `resolvedJSON()`
/// then works) or throws a `PruneError`; any other error type fails the test.
///
/// - Seed: `RecipeFuzzTests.seed` = 0x5EED_2026_0001. Case `i` draws from its own generator,
///   `FuzzRandom(seed: seed &+ i &* 0x9E37_79B9_7F4A_7C15)`, so one case replays alone:
///   `RecipeFuzzTests.mutant(case: i, seed: s, bases: RecipeFuzzTests.bases())`.
/// - Cases: `RecipeFuzzTests.cases` = 2,000, about ten seconds in release mode.
/// - Bases: every recipe under Examples/recipes (the llm-pruner folder and the sweeps included)
///   and `RecipeTests.good`.
/// - Mutations, one to four per case. On the parsed JSON (then written back out): a value swapped
///   for another type; a huge number (±1e308, Int.max, Int.min, 1e-320); an out-of-range number
///   (-1, 0, 1, 2, -0.5, 1e9); a very long string (10 k to 1 M characters); a string with NUL and
///   control characters, empty or blank; an unknown or wrongly cased plugin name; nesting 20 to 200
///   levels deep; a key removed; an unknown key added; an array of 10,000 numbers. On the bytes:
///   a bit flipped; 1 to 8 bytes deleted; a JSON-significant character inserted (`{}[]:,"\-.e0`);
///   a truncation; a key duplicated in its object; a raw control character inserted; a number
///   replaced by one too large for a Double (`1e400`) or for 64 bits.
/// - Output: one line, "recipe fuzz: N cases, K decoded, E PruneErrors, 0 crashes (seed S)". A trap
///   would end the test process; set `PRUNE_FUZZ_TRACE=1` to print each case before it runs, so the
///   last line printed names the case that crashed.
@Suite struct RecipeFuzzTests {
    static let seed: UInt64 = 0x5EED_2026_0001
    static let cases = 2_000
    static var seedText: String { "0x" + String(seed, radix: 16, uppercase: true) }

    /// The recipes mutations start from, as (name, text).
    static func bases() throws -> [(String, String)] {
        let folder = Repository.root + "/Examples/recipes"
        let files = try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }.sorted()
        var out = try files.map { f in (f, try String(contentsOfFile: folder + "/" + f, encoding: .utf8)) }
        out.append(("RecipeTests.good", RecipeTests.good))
        return out
    }

    /// The bytes of case `index` and the names of the mutations applied to it.
    static func mutant(case index: Int, seed: UInt64, bases: [(String, String)]) -> (bytes: [UInt8], steps: [String]) {
        var rng = FuzzRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let (name, text) = bases[rng.below(bases.count)]
        var steps = [name]
        var bytes = Array(text.utf8)
        if rng.below(100) < 60, let json = try? JSONValue.parse(Data(bytes), source: name) {
            var j = json
            for _ in 0..<(1 + rng.below(2)) { steps.append(StructuralMutation.apply(&j, &rng)) }
            bytes = Array((try? j.canonicalData()) ?? Data(bytes))
        }
        let byteSteps = rng.below(100) < 55 ? 1 + rng.below(3) : 0
        for _ in 0..<byteSteps { steps.append(ByteMutation.apply(&bytes, &rng)) }
        return (bytes, steps)
    }

    @Test func mutatedRecipesEndInARecipeOrAPruneError() throws {
        let bases = try Self.bases()
        let plugins = PluginSet.builtins()
        let trace = ProcessInfo.processInfo.environment["PRUNE_FUZZ_TRACE"] != nil
        var decoded = 0, errors = 0
        for i in 0..<Self.cases {
            let (bytes, steps) = Self.mutant(case: i, seed: Self.seed, bases: bases)
            if trace { print("recipe fuzz case \(i) (seed \(Self.seedText)): \(steps.joined(separator: ", "))") }
            if (try? JSONCheck.check(Data(bytes), label: "fuzz")) != nil {
                // What the strict check passes, Foundation's parser must read too.
                #expect((try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed)) != nil,
                        "case \(i) (seed \(Self.seedText), \(steps.joined(separator: ", "))): JSONCheck passed what JSONSerialization refuses")
            }
            do {
                let r = try Recipe.decode(Data(bytes), plugins: plugins, source: "fuzz-\(i).json")
                _ = try r.resolvedJSON()
                decoded += 1
            } catch let e as PruneError {
                errors += 1
                Self.checkMessage(e.message, "case \(i) (seed \(Self.seedText), \(steps.joined(separator: ", ")))")
            } catch {
                Issue.record("case \(i) (seed \(Self.seedText), \(steps.joined(separator: ", "))): \(type(of: error)) instead of a PruneError: \(String(describing: error).prefix(300)); input starts \(String(decoding: bytes.prefix(200), as: UTF8.self))")
            }
        }
        print("recipe fuzz: \(Self.cases) cases, \(decoded) decoded, \(errors) PruneErrors, 0 crashes (seed \(Self.seedText))")
        #expect(decoded + errors == Self.cases)
        // The mutations must reach past the syntax check into the decoders and the sweep expansion.
        #expect(decoded > Self.cases / 20, "only \(decoded) of \(Self.cases) mutants decoded")
    }
}

extension RecipeFuzzTests {
    /// An error message is one line of readable length.
    static func checkMessage(_ m: String, _ label: @autoclosure () -> String) {
        guard m.contains("\n") || m.utf8.count >= 2_000 else { return }
        Issue.record(Comment(rawValue: "\(label()): message of \(m.count) characters\(m.contains("\n") ? " with a line break" : ""): \(m.prefix(300))"))
    }
}

/// A seeded generator (the package's SplitMix64), so a failing case replays.
struct FuzzRandom {
    private var source: SplitMix64

    init(seed: UInt64) { source = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { source.next() }

    /// A number in 0..<n (n > 0).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Mutations of the parsed recipe: a value somewhere replaced, a key removed or added.
enum StructuralMutation {
    /// One step from a container to a child.
    enum Step { case key(String), index(Int) }

    /// Applies one mutation at a random place in `j`; returns its name.
    static func apply(_ j: inout JSONValue, _ rng: inout FuzzRandom) -> String {
        var paths: [[Step]] = []
        collect(j, [], &paths)
        let path = rng.pick(paths)
        let at = path.map { if case .key(let k) = $0 { "." + k } else if case .index(let i) = $0 { "[\(i)]" } else { "" } }.joined()
        let (name, value) = replacement(current: value(j, path), key: lastKey(path), &rng)
        if name == "remove key" { remove(&j, path) } else { j = set(j, path, value) }
        return "\(name) at \(at.isEmpty ? "(top level)" : at)"
    }

    static func replacement(current: JSONValue?, key: String?, _ rng: inout FuzzRandom) -> (String, JSONValue) {
        switch rng.below(11) {
        case 0: return ("swap type", rng.pick([.string("x"), .int(3), .number(0.5), .bool(true), .null, .array([.int(1)]), .object(["a": .int(1)])]))
        case 1: return ("huge number", rng.pick([.number(1e308), .number(-1e308), .int(Int.max), .int(Int.min), .number(1e-320)]))
        case 2: return ("out-of-range number", rng.pick([.int(-1), .int(0), .int(1), .int(2), .number(-0.5), .number(1.0), .int(1_000_000_000)]))
        case 3: return ("long string", .string(String(repeating: rng.pick(["a", "é", "/"]), count: rng.pick([10_000, 100_000, 1_000_000]))))
        case 4: return ("control string", .string(rng.pick(["a\u{0}b", "\u{1}\n\t\u{1f}", "\u{7f}\u{85}", "", " ", "..", "/", "\u{2028}"])))
        case 5:
            let name = rng.pick(["no-such-plugin", "Magnitude", "magnitude ", "", "llama", "decoder", "uniform", "lora", "taylor"])
            if case .object(var o) = current ?? .null { o["type"] = .string(name); return ("plugin name '\(name)'", .object(o)) }
            return ("plugin name '\(name)'", .string(name))
        case 6:
            var v = current ?? .int(1)
            for _ in 0..<rng.pick([20, 100, 127, 200]) { v = rng.below(2) == 0 ? .array([v]) : .object(["n": v]) }
            return ("deep nesting", v)
        case 7: return ("remove key", .null)
        case 8:
            if case .object(var o) = current ?? .null { o["zzUnknown"] = .int(1); return ("add unknown key", .object(o)) }
            return ("swap type", .object(["zzUnknown": .int(1)]))
        case 9: return ("big array", .array((0..<10_000).map { .int($0) }))
        default:
            return ("swap type", key == "type" ? .int(7) : .string("model.gguf"))
        }
    }

    static func collect(_ v: JSONValue, _ path: [Step], _ out: inout [[Step]]) {
        out.append(path)
        switch v {
        case .object(let o): for k in o.keys.sorted() { collect(o[k] ?? .null, path + [.key(k)], &out) }  // sorted: replayable
        case .array(let a): for (i, c) in a.enumerated() { collect(c, path + [.index(i)], &out) }
        default: break
        }
    }

    static func lastKey(_ path: [Step]) -> String? {
        if case .key(let k) = path.last { return k }
        return nil
    }

    static func value(_ v: JSONValue, _ path: [Step]) -> JSONValue? {
        guard let first = path.first else { return v }
        switch (first, v) {
        case (.key(let k), .object(let o)): return o[k].flatMap { value($0, Array(path.dropFirst())) }
        case (.index(let i), .array(let a)) where i < a.count: return value(a[i], Array(path.dropFirst()))
        default: return nil
        }
    }

    static func set(_ v: JSONValue, _ path: [Step], _ new: JSONValue) -> JSONValue {
        guard let first = path.first else { return new }
        let rest = Array(path.dropFirst())
        switch (first, v) {
        case (.key(let k), .object(var o)):
            o[k] = set(o[k] ?? .null, rest, new)
            return .object(o)
        case (.index(let i), .array(var a)) where i < a.count:
            a[i] = set(a[i], rest, new)
            return .array(a)
        default: return v
        }
    }

    static func remove(_ v: inout JSONValue, _ path: [Step]) {
        guard case .key(let k) = path.last else { v = set(v, path, .null); return }
        let parent = Array(path.dropLast())
        if case .object(var o) = value(v, parent) {
            o.removeValue(forKey: k)
            v = set(v, parent, .object(o))
        }
    }
}

/// Mutations of the recipe's bytes.
enum ByteMutation {
    static let significant = Array("{}[]:,\"\\-.e0 ".utf8)

    /// Applies one mutation to `b`; returns its name.
    static func apply(_ b: inout [UInt8], _ rng: inout FuzzRandom) -> String {
        guard !b.isEmpty else { b = [rng.pick(significant)]; return "insert into empty" }
        let at = rng.below(b.count)
        switch rng.below(7) {
        case 0:
            b[at] ^= 1 << UInt8(rng.below(8))
            return "flip a bit at \(at)"
        case 1:
            let n = min(1 + rng.below(8), b.count - at)
            b.removeSubrange(at..<(at + n))
            return "delete \(n) at \(at)"
        case 2:
            let c = rng.pick(significant)
            b.insert(c, at: at)
            return "insert '\(Character(Unicode.Scalar(c)))' at \(at)"
        case 3:
            b.removeSubrange(at...)
            return "truncate at \(at)"
        case 4: return duplicateKey(&b, &rng)
        case 5:
            b.insert(rng.pick([0x00, 0x01, 0x0A, 0x1F, 0x7F, 0xFF, 0xC0]), at: at)
            return "insert a control byte at \(at)"
        default: return hugeNumber(&b, &rng)
        }
    }

    /// Copies a `"key": ` and a short value in front of that key, so the key appears twice in its object.
    static func duplicateKey(_ b: inout [UInt8], _ rng: inout FuzzRandom) -> String {
        let quote = UInt8(ascii: "\""), colon = UInt8(ascii: ":")
        var starts: [Int] = []
        var i = 0
        while i < b.count {
            if b[i] == quote, let end = b[(i + 1)...].firstIndex(of: quote), end + 1 < b.count, b[end + 1] == colon {
                starts.append(i)
                i = end + 1
            } else {
                i += 1
            }
        }
        guard !starts.isEmpty else { return "no key to duplicate" }
        let s = rng.pick(starts)
        guard let end = b[(s + 1)...].firstIndex(of: quote) else { return "no key to duplicate" }
        let copy = Array(b[s...end]) + Array(": \(rng.pick(["1", "0.5", "\"x\"", "null", "[]"])), ".utf8)
        b.insert(contentsOf: copy, at: s)
        return "duplicate key \(String(decoding: b[s...end], as: UTF8.self))"
    }

    /// Replaces a number with one too large for a Double or for 64 bits.
    static func hugeNumber(_ b: inout [UInt8], _ rng: inout FuzzRandom) -> String {
        let digits = b.indices.filter { b[$0] >= 0x30 && b[$0] <= 0x39 && ($0 == 0 || !(b[$0 - 1] >= 0x30 && b[$0 - 1] <= 0x39)) }
        guard !digits.isEmpty else { return "no number to replace" }
        let s = rng.pick(digits)
        var e = s
        while e < b.count, b[e] >= 0x30 && b[e] <= 0x39 { e += 1 }
        let n = rng.pick(["1e400", "123456789012345678901234567890", "9223372036854775808", String(repeating: "9", count: 400), "1e-400"])
        b.replaceSubrange(s..<e, with: Array(n.utf8))
        return "number \(n.prefix(30)) at \(s)"
    }
}
