import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// The committed data sets and reference fixtures are the files their SHA256SUMS list, and nothing
/// else lies beside them unlisted.
@Suite struct DataFilesTests {
    /// (file name relative to the folder, sha256) pairs of a SHA256SUMS file.
    static func sums(_ folder: String) throws -> [(name: String, sha: String)] {
        let text = try String(contentsOfFile: folder + "/SHA256SUMS", encoding: .utf8)
        return text.split(separator: "\n").map { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            return (String(parts[1]).trimmingCharacters(in: .whitespaces), String(parts[0]))
        }
    }

    /// Every regular file under `folder`, relative to it, except READMEs and SHA256SUMS.
    static func listedFiles(_ folder: String, recursive: Bool) throws -> Set<String> {
        let fm = FileManager.default
        let names = recursive ? try fm.subpathsOfDirectory(atPath: folder) : try fm.contentsOfDirectory(atPath: folder)
        return Set(names.filter { name in
            var isDir: ObjCBool = false
            let base = (name as NSString).lastPathComponent
            return fm.fileExists(atPath: folder + "/" + name, isDirectory: &isDir) && !isDir.boolValue
                && base != "SHA256SUMS" && base != "README.md"
        })
    }

    @Test(arguments: [(Repository.data, true), (Repository.llamaCppFixtures, true),
                      (Repository.root + "/Tests/PruneFrameworkTests/Fixtures", false)])
    func filesMatchTheirChecksums(folder: String, recursive: Bool) throws {
        let sums = try Self.sums(folder)
        #expect(!sums.isEmpty)
        for (name, sha) in sums {
            #expect(try SHA256.hex(file: folder + "/" + name) == sha, "\(folder)/\(name)")
        }
        #expect(Set(sums.map(\.name)) == (try Self.listedFiles(folder, recursive: recursive)), "files in \(folder) not listed in its SHA256SUMS, or listed but absent")
    }

    @Test func theDataFolderIsFoundWithoutConfiguration() throws {
        let found = DataLocation(override: nil, environment: [:])
        let path = try found.file("wikitext2/wikitext2_test_hfjoin.txt", what: "dataset 'wikitext2'")
        #expect(URL(fileURLWithPath: path).standardizedFileURL.path == Repository.data + "/wikitext2/wikitext2_test_hfjoin.txt")
    }
}

/// Where the data folder is looked for, and what a user is told when a set is in none of the places.
@Suite struct DataLocationTests {
    @Test func aGivenFolderIsTheOnlyPlaceLooked() throws {
        let d = DataLocation(override: "/nonexistent/data", environment: ["PRUNE_DATA_DIR": "/elsewhere"])
        #expect(d.places == [DataLocation.Place(path: "/nonexistent/data", origin: "--data-dir")])
        let e = try #require(throws: PruneError.self) { try d.file("ptb/ptb.valid.txt", what: "dataset 'ptb'") }
        #expect(e.code == .fileNotFound)
        #expect(e.message.contains("dataset 'ptb': 'ptb/ptb.valid.txt' was not found; looked in '/nonexistent/data' (--data-dir)"), "\(e.message)")
        #expect(e.message.contains("--data-dir DIR") && e.message.contains("PRUNE_DATA_DIR"))
    }

    @Test func theEnvironmentVariableComesNext() throws {
        let d = DataLocation(override: nil, environment: ["PRUNE_DATA_DIR": Repository.data])
        #expect(d.places.map(\.origin) == ["$PRUNE_DATA_DIR"])
        #expect(try d.file("c4/c4_1480docs_pfdecoding.jsonl", what: "c4") == Repository.data + "/c4/c4_1480docs_pfdecoding.jsonl")
    }

    @Test func withoutEitherTheErrorNamesEveryPlaceLooked() throws {
        let d = DataLocation(override: nil, environment: [:])
        #expect(!d.places.isEmpty)
        let e = try #require(throws: PruneError.self) { try d.file("zeroshot/missing.jsonl", what: "zero-shot task 'x'") }
        for p in d.places { #expect(e.message.contains("'\(p.path)' (\(p.origin))"), "\(e.message)") }
    }

    @Test func aFolderIsNotTakenForAFile() throws {
        let d = DataLocation(override: Repository.data, environment: [:])
        let e = try #require(throws: PruneError.self) { try d.file("zeroshot", what: "a folder") }
        #expect(e.message.hasPrefix("a folder: 'zeroshot' was not found; looked in '\(Repository.data)' (--data-dir)"), "\(e.message)")
    }

    @Test func datasetsAndTasksNameWhatIsMissing() throws {
        let e = try #require(throws: PruneError.self) { try Datasets.resolve("wikitext2", dataDir: "/nonexistent") }
        #expect(e.message.hasPrefix("dataset 'wikitext2': 'wikitext2/wikitext2_test_hfjoin.txt' was not found; looked in '/nonexistent' (--data-dir)"), "\(e.message)")
        let t = try #require(throws: PruneError.self) { try ZeroShotTask.piqa.load(dataDir: "/nonexistent") }
        #expect(t.message.hasPrefix("zero-shot task 'piqa': 'zeroshot/piqa_valid.jsonl' was not found"), "\(t.message)")
        let c = try #require(throws: PruneError.self) { try Calibration.documents("c4", dataDir: "/nonexistent") }
        #expect(c.message.hasPrefix("dataset 'c4': 'c4/c4_1480docs_pfdecoding.jsonl' was not found"), "\(c.message)")
    }
}
