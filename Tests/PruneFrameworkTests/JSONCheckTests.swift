import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// The strict JSON check: syntax errors give a line, a column and what was expected; duplicate keys
/// are named by JSON path; nesting is capped; valid JSON (the example recipes included) passes.
@Suite struct JSONCheckTests {
    /// The message `JSONCheck` gives for `json`; nil when it passes.
    func checkError(_ json: String, label: String = "recipe 'r.json'") -> String? {
        checkError(Data(json.utf8), label: label)
    }

    func checkError(_ data: Data, label: String = "recipe 'r.json'") -> String? {
        do {
            try JSONCheck.check(data, label: label)
            return nil
        } catch let e as PruneError {
            return e.code == .badFormat ? e.message : "wrong code \(e.code): \(e.message)"
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test(arguments: [
        ("{\"a\": 1,}", "line 1, column 9: expected a key in double quotes after ',', found '}'; a trailing comma is not allowed"),
        ("{\"a\": 1 \"b\": 2}", "line 1, column 9: expected ',' or '}' after the value of 'a', found '\"'"),
        ("{\n  \"scheduler\": {\"type\": \"uniform\",\n    \"ratio\" 0.2}\n}", "line 3, column 13: expected ':' after the key 'ratio', found '0'"),
        ("{\"layers\": [1, 2,]}", "line 1, column 18: expected a value after the ',' that follows layers[1], found ']'; a trailing comma is not allowed"),
        ("{\"layers\": [1 2]}", "line 1, column 15: expected ',' or ']' after layers[0], found '2'"),
        ("{\"a\": tru}", "line 1, column 7: expected a value (object, array, string, number, true, false or null) for 'a', found 'tru'"),
        ("{\"a\": NaN}", "line 1, column 7: expected a value (object, array, string, number, true, false or null) for 'a', found 'NaN'"),
        ("{\"a\": 01}", "line 1, column 7: a number may not start with '0' followed by digits ('01')"),
        ("{\"a\": -}", "line 1, column 8: expected a digit after '-', found '}'"),
        ("{\"a\": 1.}", "line 1, column 9: expected a digit after '.' in a number, found '}'"),
        ("{\"a\": 1e}", "line 1, column 9: expected a digit in the exponent of a number, found '}'"),
        ("{\"a\": \"x", "line 1, column 7: the string that starts here has no closing '\"'"),
        ("{\"a\": \"\\x\"}", "line 1, column 9: '\\' followed by 'x' is not an escape"),
        ("{\"a\": \"\\u12G4\"}", "line 1, column 12: expected four hexadecimal digits after '\\u', found 'G'"),
        ("{\"a\": \"\\ud800\"}", "line 1, column 8: '\\uD800' is a high surrogate not followed by a low one"),
        ("{\"a\": \"\\ud800\\u0041\"}", "line 1, column 8: '\\uD800' is a high surrogate followed by '\\u0041'"),
        ("{\"a\": \"\\udc00\"}", "line 1, column 8: '\\uDC00' is a low surrogate without a high one"),
        ("{\"a\": \"x\ty\"}", "line 1, column 9: control character U+0009 inside a string"),
        ("{\"a\": \"x\u{0}y\"}", "line 1, column 9: control character U+0000 inside a string"),
        ("{\"a\": 1} x", "line 1, column 10: expected the end of the input after the top-level value, found 'x'"),
        ("", "line 1, column 1: expected a value, found the end of the input"),
        ("   \n  ", "line 2, column 3: expected a value, found the end of the input"),
        ("{\"a\": 1", "line 1, column 8: expected ',' or '}' after the value of 'a', found the end of the input"),
        ("{a: 1}", "line 1, column 2: expected a key in double quotes after '{', found 'a'"),
        ("{\"é\": x}", "line 1, column 7: expected a value (object, array, string, number, true, false or null) for 'é', found 'x'"),
        ("{\r\n\"a\" 1}", "line 2, column 5: expected ':' after the key 'a', found '1'"),
        ("{\"a\": 1e400}", "recipe 'r.json': number '1e400' at a (line 1, column 7) is too large for a 64-bit float"),
        ("{\"a\": [1, {\"b\": -1E+999}]}", "number '-1E+999' at a[1].b (line 1, column 17) is too large"),
        ("[1, 2] [3]", "line 1, column 8: expected the end of the input after the top-level value, found '['"),
        ("{\"a\": 'x'}", "line 1, column 7: expected a value (object, array, string, number, true, false or null) for 'a', found '''"),
    ])
    func syntaxErrorsGiveLineAndColumn(json: String, fragment: String) {
        let m = checkError(json)
        #expect(m?.contains(fragment) == true, "got: \(m ?? "no error")")
        #expect(m?.hasPrefix("recipe 'r.json'") == true)
    }

    @Test func invalidUTF8IsRefusedWithItsByte() {
        let m = checkError(Data([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]))  // {"a":"\xFF"}
        #expect(m?.contains("line 1, column 7: byte 0xFF inside a string is not UTF-8") == true, "got: \(m ?? "no error")")
        let overlong = checkError(Data([0x22, 0xC0, 0xAF, 0x22]))  // "/" as an overlong two-byte sequence
        #expect(overlong?.contains("byte 0xC0 inside a string is not UTF-8") == true, "got: \(overlong ?? "no error")")
        let surrogate = checkError(Data([0x22, 0xED, 0xA0, 0x80, 0x22]))  // U+D800 encoded as UTF-8
        #expect(surrogate?.contains("byte 0xED") == true, "got: \(surrogate ?? "no error")")
        let outside = checkError(Data([0x5B, 0xFE, 0x5D]))  // [\xFE]
        #expect(outside?.contains("found byte 0xFE (not UTF-8)") == true, "got: \(outside ?? "no error")")
    }

    @Test(arguments: [
        ("{\"ratio\": 0.2, \"ratio\": 5}", "duplicate key 'ratio' at ratio (line 1, column 16); each key may appear once"),
        ("{\"scheduler\": {\"type\": \"uniform\",\n  \"ratio\": 0.2, \"ratio\": 5}}", "duplicate key 'ratio' at scheduler.ratio (line 2, column 17)"),
        ("{\"a\": [{\"b\": 1}, {\"c\": {\"d\": 1, \"d\": 2}}]}", "duplicate key 'd' at a[1].c.d (line 1, column 33)"),
        ("[[{}, {\"x\": 1, \"x\": 1}]]", "duplicate key 'x' at [0][1].x (line 1, column 16)"),
        ("{\"a\": 1, \"\\u0061\": 2}", "duplicate key 'a' at a (line 1, column 10)"),
        ("{\"\": 1, \"\": 2}", "duplicate key '' at (top level) (line 1, column 9)"),
    ])
    func duplicateKeysAreNamedByPath(json: String, fragment: String) {
        let m = checkError(json)
        #expect(m?.contains("recipe 'r.json': " + fragment) == true, "got: \(m ?? "no error")")
    }

    @Test func equalKeysInDifferentObjectsAreFine() {
        #expect(checkError("[{\"a\": 1}, {\"a\": 1}, {\"b\": {\"a\": 2}, \"a\": 3}]") == nil)
    }

    @Test func nestingIsCappedWithoutRecursion() {
        let max = JSONCheck.maxDepth
        #expect(checkError(String(repeating: "[", count: max) + String(repeating: "]", count: max)) == nil)
        let deeper = checkError(String(repeating: "[", count: max + 1) + String(repeating: "]", count: max + 1))
        #expect(deeper?.contains("is nested too deeply: line 1, column \(max + 1): more than \(max) levels of objects and arrays") == true,
                "got: \(deeper ?? "no error")")
        // A million open brackets: refused at level 129, never recursed into.
        let hostile = checkError(String(repeating: "[", count: 1_000_000))
        #expect(hostile?.contains("nested too deeply") == true)
        let objects = checkError(String(repeating: "{\"a\": ", count: 200) + "1" + String(repeating: "}", count: 200))
        #expect(objects?.contains("at a.a.a.a") == true && objects?.contains("nested too deeply") == true, "got: \(objects ?? "no error")")
        #expect((objects?.count ?? 0) < 500, "the path in the message is cut")
    }

    @Test(arguments: [
        "{}", "[]", "0", "-0", "-0.5e+10", "1E-999", "12345678901234567890", "true", " null ", "\"\"",
        "{\"a\": [1, {\"b\": null}], \"c\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
        "\"\\u00e9\\ud83d\\ude00 é 😀 \\u0000\"",
        "\u{FEFF}{\"version\": 1}",
        "{\"a\":1}\r\n",
        "[{\"x\": 1}, {\"x\": 2}, [[[]]], {\"y\": {\"x\": 3}}]",
    ])
    func validJSONPasses(json: String) {
        #expect(checkError(json) == nil, "\(json)")
    }

    @Test func exampleRecipesPass() throws {
        let folder = Repository.root + "/Examples/recipes"
        let files = try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 10)
        for f in files {
            let data = try #require(FileManager.default.contents(atPath: folder + "/" + f))
            #expect(checkError(data, label: f) == nil, "\(f)")
        }
    }

    /// Several megabytes scan in one pass (a quadratic step would make this test take minutes).
    @Test func multiMegabyteInputPasses() {
        var s = "["
        for i in 0..<100_000 { s += "{\"name\": \"row \(i)\", \"value\": \(Double(i) * 0.5), \"tags\": [\"a\", \"b\\n\"], \"ok\": true},\n" }
        s += "{}]"
        #expect(s.utf8.count > 5_000_000)
        #expect(checkError(s) == nil)
        let long = "{\"a\": \"" + String(repeating: "x", count: 10_000_000) + "\", \"a\": 1}"
        let m = checkError(long)
        #expect(m?.contains("duplicate key 'a' at a (line 1, column 10000011)") == true, "got: \(m.map { String($0.prefix(300)) } ?? "no error")")
    }

    @Test func patchParsingUsesTheCheck() {
        #expect(throws: PruneError(.badFormat, "'p.json': duplicate key 'a' at a (line 1, column 8); each key may appear once")) {
            _ = try JSONValue.parse(Data("{\"a\":1,\"a\":2}".utf8), source: "p.json")
        }
        #expect(throws: PruneError.self) { _ = try JSONValue.parse(Data("{\"a\":1,}".utf8), source: "p.json") }
        #expect((try? JSONValue.parse(Data("{\"a\": [1, 2.5, \"x\"]}".utf8), source: "p.json")) == .object(["a": .array([.int(1), .number(2.5), .string("x")])]))
    }

    @Test func shownCutsAndEscapes() {
        #expect(PruneError.shown("plain") == "plain")
        #expect(PruneError.shown("a\u{0}b\nc") == "a\\u{0}b\\u{a}c")
        let cut = PruneError.shown(String(repeating: "y", count: 10_000_000))
        #expect(cut == String(repeating: "y", count: 100) + "… (10000000 bytes)")
    }
}
