import Foundation
@testable import PruneFramework
@testable import Runner

/// The message of the error decoding `json` as a recipe raises; nil when it decodes.
func recipeError(_ json: String, plugins: PluginSet = .builtins()) -> String? {
    do {
        _ = try Recipe.decode(Data(json.utf8), plugins: plugins)
        return nil
    } catch let e as PruneError {
        return e.message
    } catch {
        return "unexpected \(error)"
    }
}

/// The message of the error a recipe's preflight check gives; nil when it passes. A recipe that
/// does not decode gives "unexpected ...".
func preflightError(_ json: String, plugins: PluginSet = .builtins()) -> String? {
    let recipe: Recipe
    do { recipe = try Recipe.decode(Data(json.utf8), plugins: plugins) } catch { return "unexpected \(error)" }
    do {
        try PruneRun(recipe: recipe, recipePath: "r.json").preflight()
        return nil
    } catch let e as PruneError {
        return e.message
    } catch {
        return "unexpected \(error)"
    }
}

/// A new empty directory under the temporary directory, named `prefix-UUID`; the caller removes it.
func temporaryDirectory(_ prefix: String) throws -> String {
    let dir = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A tiny random LLaMA with a byte-level tokenizer, written as GGUF (f32), and a text file.
func tinyFiles(_ dir: String, contextLength: Int = 64) throws -> (model: String, text: String) {
    let c = ModelConfig(vocabSize: 257, hiddenSize: 16, nLayers: 2, headDim: 4, nHead: [4, 4], nKVHead: [2, 2],
                        ffnDim: [24, 24], contextLength: contextLength, tiedEmbeddings: true)
    let model = try Transformer(randomWith: c, seed: 21, scale: 0.3)
    var w = GGUFWriter()
    for (k, v) in try model.ggufMetadata(type: .f32, source: nil, name: "tiny") { w.set(k, v) }
    let tokens = (0..<256).map { ByteUnicode.encode([UInt8($0)]) } + [ByteUnicode.encode(Array(" t".utf8))]
    w.set("tokenizer.ggml.model", .string("gpt2"))
    w.set("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
    w.set("tokenizer.ggml.merges", .array([.string(ByteUnicode.encode([0x20]) + " t")]))
    for (name, shape) in TensorNames.layout(for: c) {
        try w.addTensor(name: name, shape: shape, data: Array(model.params.view(name)), type: .f32)
    }
    try w.write(to: dir + "/tiny.gguf")
    let text = String(repeating: "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ", count: 12)
    try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/text.txt"))
    return (dir + "/tiny.gguf", dir + "/text.txt")
}
