import Foundation
import Testing
@testable import PruneFramework
@testable import Runner

/// A recipe's `model` and the commands' `--model` may be a Hugging Face directory.
@Suite struct HuggingFaceModelTests {
    /// The tiny GGUF of `tinyFiles` as a Hugging Face directory (`hf/`), with its tokenizer.
    func tinyDirectory(_ dir: String) throws -> (gguf: String, hf: String, text: String) {
        let (model, text) = try tinyFiles(dir)
        let source = try ModelSource(path: model)
        try source.load().saveSafetensors(directory: dir + "/hf", tokenizer: try source.tokenizer())
        return (model, dir + "/hf", text)
    }

    func recipe(model: String, text: String, out: String, formats: String) -> String {
        """
        {"version": 1, "model": "\(model)",
         "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "seed": 1},
         "grouping": {"type": "llama", "layers": [0, 1]},
         "criterion": {"type": "wanda"}, "scheduler": {"type": "uniform", "ratio": 0.2},
         "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 4},
         "output": {"dir": "\(out)", "formats": \(formats), "dtype": "f32"}}
        """
    }

    /// Runs the tiny recipe on `model` into `out`.
    func run(model: String, text: String, out: String, formats: String) throws -> RunReport {
        let json = recipe(model: model, text: text, out: out, formats: formats)
        let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
        run.log = { _ in }
        return try run.run()
    }

    @Test func aRecipeOnADirectoryPrunesAsOnItsGGUF() throws {
        let dir = try temporaryDirectory("prune-hf-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (gguf, hf, text) = try tinyDirectory(dir)
        let reports = try [(gguf, dir + "/from-gguf"), (hf, dir + "/from-hf")].map { model, out in
            try run(model: model, text: text, out: out, formats: #"["safetensors"]"#)
        }
        #expect(reports[0].pplBefore == reports[1].pplBefore && reports[0].pplAfter == reports[1].pplAfter)
        #expect(reports[0].widthsAfter.ffnDim == reports[1].widthsAfter.ffnDim && reports[0].widthsAfter.nHead == reports[1].widthsAfter.nHead)
        // The output directory is a model of its own, tokenizer included, named after the input.
        #expect(reports[1].outputs.contains("safetensors/tokenizer.json"))
        let out = try ModelSource(path: dir + "/from-hf/safetensors")
        #expect(try out.config() == (try ModelSource(path: dir + "/from-gguf/safetensors").config()))
        #expect(try out.tokenizer().encode("the quick") == (try ModelSource(path: gguf).tokenizer().encode("the quick")))
    }

    /// From a directory, the GGUF's tokenizer keys come from tokenizer.json: the exported file
    /// tokenizes and computes as the one exported from the GGUF.
    @Test func aGGUFOutputFromADirectoryCarriesItsTokenizer() throws {
        let dir = try temporaryDirectory("prune-hf-gguf")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (gguf, hf, text) = try tinyDirectory(dir)
        let exported = try [(gguf, dir + "/from-gguf"), (hf, dir + "/from-hf")].map { model, out in
            let report = try run(model: model, text: text, out: out, formats: #"["gguf"]"#)
            return try ModelSource(path: out + "/" + (try #require(report.outputs.first { $0.hasSuffix(".gguf") })))
        }
        #expect(exported[1].gguf?["tokenizer.ggml.pre"]?.string == "gpt2")
        let sample = try String(contentsOfFile: text, encoding: .utf8)
        #expect(try exported[1].tokenizer().encode(sample) == (try exported[0].tokenizer().encode(sample)))
        let ids: [Int32] = [5, 40, 41, 256, 7]
        #expect(try exported[1].load().logits(tokens: ids, batch: 1, seqLen: 5) == (try exported[0].load().logits(tokens: ids, batch: 1, seqLen: 5)))
    }

    /// Mistral, the third architecture, is one file: a `MistralForCausalLM` directory (the tiny model
    /// with its config renamed) computes as the LLaMA one, is cut with gradients, fine-tuned with LoRA,
    /// and written as a Mistral directory and as the `llama` GGUF llama.cpp's converter makes of it.
    @Test func aMistralDirectoryPrunesFineTunesAndExports() throws {
        let dir = try temporaryDirectory("prune-hf-mistral")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, llama, text) = try tinyDirectory(dir)
        let mistral = dir + "/mistral"
        try FileManager.default.copyItem(atPath: llama, toPath: mistral)
        var config = try HFConfig(path: mistral + "/config.json")
        (config.architectures, config.modelType, config.slidingWindow) = (["MistralForCausalLM"], "mistral", 32)
        try config.jsonData().write(to: URL(fileURLWithPath: mistral + "/config.json"))
        let source = try ModelSource(path: mistral)
        // Up to the 32-token window full attention is exact, so the context stops there.
        #expect(try source.config().architecture == "mistral" && (try source.config().contextLength) == 32)
        let ids: [Int32] = [5, 40, 41, 256, 7]
        #expect(try source.load().logits(tokens: ids, batch: 1, seqLen: 5) == (try ModelSource(path: llama).load().logits(tokens: ids, batch: 1, seqLen: 5)))
        let json = """
            {"version": 1, "model": "\(mistral)",
             "calibration": {"dataset": "\(text)", "samples": 4, "seqLen": 16, "seed": 1},
             "grouping": {"type": "decoder"}, "criterion": {"type": "taylor"}, "scheduler": {"type": "uniform", "ratio": 0.2},
             "fineTuner": {"type": "lora", "steps": 2},
             "evaluation": {"datasets": ["\(text)"], "seqLen": 16, "maxWindows": 4},
             "output": {"dir": "\(dir)/out", "formats": ["gguf", "safetensors"], "dtype": "f32"}}
            """
        let run = PruneRun(recipe: try Recipe.decode(Data(json.utf8), plugins: .builtins()), recipePath: "r.json")
        run.log = { _ in }
        let report = try run.run()
        #expect(report.paramsAfter < report.paramsBefore && report.fineTune?.losses.count == 2)
        let written = try ModelSource(path: dir + "/out/safetensors")
        #expect(try HFConfig(path: dir + "/out/safetensors/config.json").architectures == ["MistralForCausalLM"])
        #expect(try written.config().architecture == "mistral")
        let gguf = try ModelSource(path: dir + "/out/" + (try #require(report.outputs.first { $0.hasSuffix(".gguf") })))
        #expect(gguf.gguf?["general.architecture"]?.string == "llama")
        let a = try written.load().logits(tokens: ids, batch: 1, seqLen: 5), b = try gguf.load().logits(tokens: ids, batch: 1, seqLen: 5)
        #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func evalInspectAndTokenizeTakeADirectory() throws {
        let dir = try temporaryDirectory("prune-hf-cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (gguf, hf, text) = try tinyDirectory(dir)
        let args = ["eval", "--dataset", text, "--seq-len", "16", "--max-windows", "2", "--json"]
        let a = try WorkingDirectoryTests.runPrune(args + ["--model", gguf], cwd: dir)
        let b = try WorkingDirectoryTests.runPrune(args + ["--model", hf], cwd: dir)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let ppl = { (s: String) in (try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])?["ppl"] as? Double }
        #expect(ppl(a.stdout) != nil && ppl(a.stdout) == ppl(b.stdout), "\(a.stdout) \(b.stdout)")
        let inspect = try WorkingDirectoryTests.runPrune(["inspect", hf], cwd: dir)
        #expect(inspect.status == 0 && inspect.stdout.contains("architecture llama, 2 layers, hidden 16"), "\(inspect.stdout) \(inspect.stderr)")
        #expect(inspect.stdout.contains("model.layers.1.mlp.down_proj.weight"))
        let numerics = try WorkingDirectoryTests.runPrune(args + ["--model", hf, "--numerics", "llamacpp"], cwd: dir)
        #expect(numerics.status != 0 && numerics.stderr.contains("is a Hugging Face model, so use the default numerics"), "\(numerics.stderr)")
        for (model, out) in [(gguf, "a.i32"), (hf, "b.i32")] {
            let t = try WorkingDirectoryTests.runPrune(["tokenize", "--model", model, "--input", text, "--ids-out", out], cwd: dir)
            #expect(t.status == 0, "\(t.stderr)")
        }
        #expect(FileManager.default.contents(atPath: dir + "/a.i32") == FileManager.default.contents(atPath: dir + "/b.i32"))
    }
}
