import Foundation

/// An evaluation text and the protocol it was built with (recorded in every report).
public struct EvalText: Sendable {
    public var name: String
    public var path: String
    public var split: String
    public var joining: String
    public var text: String
}

/// Named evaluation corpora, found in the data folder (`DataLocation`) laid out like the repository's `Data/`.
public enum Datasets {
    /// Names accepted by `resolve`.
    public static let names = ["wikitext2", "ptb", "ptb-sparsegpt"]

    /// The data-folder files of the named sets (evaluation texts and the `c4` calibration documents).
    static let files = ["wikitext2": "wikitext2/wikitext2_test_hfjoin.txt", "ptb": "ptb/ptb.valid.txt",
                        "ptb-sparsegpt": "ptb/ptb.test.txt", "c4": "c4/c4_1480docs_pfdecoding.jsonl"]

    /// Whether `s` names a set of the data folder (`wikitext2`, `ptb`, `ptb-sparsegpt`, `c4`) rather
    /// than a file path.
    public static func isName(_ s: String) -> Bool { files[s] != nil }

    /// The path of a named set's file in the data folder (`DataLocation`); nil when `name` names no set
    /// (it is then a file path). Throws, naming every place looked, when the set is not found.
    public static func locate(_ name: String, dataDir: String? = nil) throws -> String? {
        guard let file = files[name] else { return nil }
        return try DataLocation(override: dataDir).file(file, what: "dataset '\(name)'")
    }

    /// A dataset by name (`wikitext2`, `ptb`, `ptb-sparsegpt`) or a path to a UTF-8 text file.
    ///
    /// - `wikitext2`: WikiText-2 raw test split joined with "\n\n" (the string LLM-Pruner, Wanda,
    ///   SparseGPT and FLAP tokenize).
    /// - `ptb`: PTB validation split, lines stripped and joined with "\n\n" (LLM-Pruner's "PTB").
    /// - `ptb-sparsegpt`: PTB test split, lines stripped and joined with " " (SparseGPT/Wanda's).
    public static func resolve(_ nameOrPath: String, dataDir: String? = nil) throws -> EvalText {
        let located = nameOrPath == "c4" ? nil : try locate(nameOrPath, dataDir: dataDir)
        switch (nameOrPath, located) {
        case ("wikitext2", let p?):
            return EvalText(name: "wikitext2", path: p, split: "test", joining: "\"\\n\\n\".join(rows) (HF wikitext-2-raw-v1)",
                            text: try readText(p, hint: "check the file"))
        case ("ptb", let p?), ("ptb-sparsegpt", let p?):
            let valid = nameOrPath == "ptb"
            let lines = try readText(p, hint: "check the file")
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            var rows = lines
            if rows.last == "" { rows.removeLast() }
            return EvalText(name: nameOrPath, path: p, split: valid ? "validation" : "test",
                            joining: valid ? "\"\\n\\n\".join(stripped lines) (LLM-Pruner)" : "\" \".join(stripped lines) (SparseGPT)",
                            text: rows.joined(separator: valid ? "\n\n" : " "))
        default:
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: nameOrPath, isDirectory: &isDir), !isDir.boolValue else {
                throw PruneError(.unknownName, "dataset '\(nameOrPath)' is neither a known name (\(names.joined(separator: ", "))) nor a file")
            }
            return EvalText(name: (nameOrPath as NSString).lastPathComponent, path: nameOrPath, split: "file",
                            joining: "file as is", text: try readText(nameOrPath, hint: "check the path"))
        }
    }

    static func readText(_ path: String, hint: String) throws -> String {
        let data: Data
        do { data = try RegularFile.read(path, what: "dataset file") } catch let e as PruneError {
            throw PruneError(e.code, "\(e.message) (\(hint))")
        }
        guard let s = String(data: data, encoding: .utf8) else {
            throw PruneError(.badFormat, "dataset file '\(path)' is not valid UTF-8")
        }
        return s
    }
}
