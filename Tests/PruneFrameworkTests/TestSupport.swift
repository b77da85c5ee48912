import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// Paths the tests use.
enum TestPaths {
    static let repoRoot = Repository.root
    static let model = RequiredFile.smolLM2.path

    static func readInt32s(_ path: String) throws -> [Int32] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw PruneError(.fileNotFound, "test data '\(path)' is missing")
        }
        return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
    }

    static func readFloats(_ path: String) throws -> [Float] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw PruneError(.fileNotFound, "test data '\(path)' is missing")
        }
        return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }
}

/// The real model, loaded once for all tests that need it.
enum SharedModel {
    static let model: Transformer? = try? Transformer(path: TestPaths.model)
}

/// A tiny LLaMA config with GQA (4 query heads over 2 KV heads) and non-uniform widths.
func tinyConfig(layers: Int = 2, vocab: Int = 37) -> ModelConfig {
    ModelConfig(vocabSize: vocab, hiddenSize: 16, nLayers: layers, headDim: 4,
                nHead: (0..<layers).map { $0 % 2 == 0 ? 4 : 2 }, nKVHead: (0..<layers).map { $0 % 2 == 0 ? 2 : 1 },
                ffnDim: (0..<layers).map { 24 + 4 * $0 }, ropeBase: 10000, rmsEps: 1e-5, contextLength: 64,
                tiedEmbeddings: true)
}
