import Foundation
import PruneFramework

/// Runs a recipe: load, evaluate, calibrate, score, plan, cut, (fine-tune), evaluate, export.
public final class PruneRun {
    public let recipe: Recipe
    public let recipePath: String
    public private(set) var outputDir: String
    public let dataDir: String?
    /// The processes this run shares its sample sums with (several under `mpirun`). Every rank runs
    /// every stage; rank 0 alone writes the output directory, the others write their copy of the
    /// exported model to a temporary folder they remove.
    public var communicator: any Communicator = SingleProcess()
    /// Receives one line per stage event.
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    private var stages: [RunReport.Stage] = []
    private var currentStage = ""
    /// Stages that ran on this rank's share of the samples, and what their collectives sent.
    private var sharedStages: [String] = []
    private var traffic: [DistributedSummary.StageTraffic] = []
    /// Set by a run whose scheduler masks single weights (unstructured, N:M).
    public internal(set) var maskSummary: MaskSummary?
    /// The GGUF output's tensor types and fallbacks, once written.
    public internal(set) var exportSummary: GGUFExportSummary?
    /// Evaluate the dense model first (a sweep evaluates it once, as its own row).
    public var evaluateDense = true
    /// Delete the exported model files after the final evaluation (a sweep keeps only reports).
    public var deleteModels = false
    /// Hold every weight of the input model as f32 in one store (the whole-model path) instead of
    /// reading it from the file when used; tests compare the two.
    var residentWeights = false

    public init(recipe: Recipe, recipePath: String, outputDir: String? = nil, dataDir: String? = nil) {
        self.recipe = recipe
        self.recipePath = recipePath
        self.outputDir = outputDir ?? recipe.output.dir
        self.dataDir = dataDir
    }

    /// Checks everything that can be checked before heavy work: files exist, datasets resolve.
    public func preflight() throws {
        try maskMode()
        try checkCompensation()
        guard FileManager.default.fileExists(atPath: recipe.model) else {
            throw PruneError(.fileNotFound, "recipe: model = '\(recipe.model)' does not exist (run scripts/setup.sh for the SmolLM2 model)")
        }
        for (i, d) in recipe.evaluation.datasets.enumerated() where !Datasets.names.contains(d) && !FileManager.default.fileExists(atPath: d) {
            throw PruneError(.unknownName, "recipe: evaluation.datasets[\(i)] = '\(d)' is neither a known dataset (\(Datasets.names.joined(separator: ", "))) nor a file")
        }
        let cal = recipe.calibration.dataset
        if !Datasets.isName(cal), !FileManager.default.fileExists(atPath: cal) {
            throw PruneError(.fileNotFound, "recipe: calibration.dataset = '\(cal)' is neither c4, a known dataset, nor a file")
        }
        for (key, name) in [("calibration.dataset", cal)] + recipe.evaluation.datasets.map({ ("evaluation.datasets", $0) }) {
            do { _ = try Datasets.locate(name, dataDir: dataDir) } catch let e as PruneError {
                throw PruneError(e.code, "recipe: \(key): \(e.message)")
            }
        }
        for task in recipe.evaluation.tasks.compactMap(ZeroShotTask.init(rawValue:)) {
            do { _ = try task.dataFiles(dataDir: dataDir) } catch let e as PruneError {
                throw PruneError(e.code, "recipe: evaluation.tasks: \(e.message)")
            }
        }
        let source: ModelSource, config: ModelConfig
        do {
            source = try ModelSource(path: recipe.model)
            config = try source.config()
        } catch let e as PruneError {
            throw PruneError(e.code, "recipe: model: \(e.message)")
        }
        try checkMemory(config)
        try checkSequential(config)
        try checkOutputType(source: source)
        try checkOutputBiasFormats(config)
        try checkRoundTo(config)
        if communicator.rank == 0 { try checkOutputDirectory() }  // the other ranks write none
    }

    func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        log("▶ \(name)")
        currentStage = name
        Distributed.stage = name  // kept when the stage throws, for the error of a distributed run
        let t0 = Date()
        Distributed.traffic.resetLargest()
        let sent = Distributed.traffic.now
        let v = try body()
        Distributed.stage = nil
        if sharedStages.contains(name) { traffic.append(.init(stage: name, sent: Distributed.traffic.now.since(sent))) }
        let s = Date().timeIntervalSince(t0)
        stages.append(RunReport.Stage(name: name, seconds: s))
        log(String(format: "  done in %.1f s", s))
        return v
    }

    /// The communicator, for a stage that shares its samples out; records the stage as shared.
    func sharing() -> any Communicator {
        if communicator.isDistributed, !sharedStages.contains(currentStage) { sharedStages.append(currentStage) }
        return communicator
    }

    /// How the work was shared, for the report (nil with one process).
    var distributedSummary: DistributedSummary? {
        guard communicator.isDistributed else { return nil }
        return DistributedSummary(ranks: communicator.size, implementation: communicator.implementation, sharedStages: sharedStages,
                                  replicatedStages: stages.map(\.name).filter { !sharedStages.contains($0) }, traffic: traffic)
    }

    func evaluate(_ model: Transformer, _ tokenizer: BPETokenizer, label: String) throws -> [PerplexityResult] {
        try recipe.evaluation.datasets.map { name in
            let text = try Datasets.resolve(name, dataDir: dataDir)
            let tokens = tokenizer.encode(text.text)
            var bar: ProgressBar?
            let r = try Perplexity.evaluate(model: model, tokens: tokens, seqLen: recipe.evaluation.seqLen,
                                            maxWindows: recipe.evaluation.maxWindows, text: text, communicator: sharing()) { done, total in
                if bar == nil { bar = ProgressBar(total: total, label: "  \(label) \(name)", unit: "win") }
                bar?.update(done)
            }
            bar?.finish()
            log(String(format: "  %@ %@ PPL@%d = %.3f (%d windows)", label, name, r.seqLen, r.ppl, r.windows))
            return r
        }
    }

    /// Runs the whole recipe and returns the report (also written to the output directory, which
    /// `RunDirectory` keeps as one unit: `run.json` says `running` until everything is written).
    @discardableResult
    public func run() throws -> RunReport {
        try preflight()
        guard communicator.rank != 0 else {
            return try RunDirectory(path: outputDir, recipe: recipePath, keep: [recipe.model]).run(runStages, files: \.outputs)
        }
        // Another rank: the same stages, its files in a folder of its own that goes at the end.
        let own = outputDir
        Self.removeStaleRankFolders()
        outputDir = (NSTemporaryDirectory() as NSString).appendingPathComponent("prune-rank\(communicator.rank)-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: outputDir)
            outputDir = own
        }
        return try runStages()
    }

    /// Removes the temporary folders of other ranks' runs whose process is gone (killed before it
    /// could remove its folder): `prune-rankR-PID-UUID` with no process PID.
    static func removeStaleRankFolders() {
        let tmp = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix("prune-rank") {
            let parts = name.split(separator: "-")
            guard parts.count > 3, let pid = Int32(parts[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: (tmp as NSString).appendingPathComponent(name))
        }
    }

    /// Load, evaluate, calibrate, prune, fine-tune, export, evaluate, report.
    private func runStages() throws -> RunReport {
        let source = try ModelSource(path: recipe.model)
        // A model's weights are read from its files when used, and a pruned model cuts them
        // from the model before it when read: no stage holds a second copy of the weights. The
        // pruned model is released before its export is read back.
        var model: Transformer! = try timed("load \(recipe.model)") {
            let m = try source.load()
            return residentWeights ? try m.residentCopy() : m
        }
        let original = (config: model.config, parameters: model.parameterCount)
        let tokenizer = try source.tokenizer()
        let before = evaluateDense ? try timed("evaluate dense model") { try evaluate(model, tokenizer, label: "before") } : []
        let sequences = try timed("tokenize calibration data") { () throws -> [[Int32]] in
            let docs = try Calibration.documents(recipe.calibration.dataset, dataDir: dataDir)
            return try Calibration.sequences(documents: docs, tokenizer: tokenizer, samples: recipe.calibration.samples,
                                             seqLen: recipe.calibration.seqLen, seed: recipe.calibration.seed)
        }
        // Mask schedulers (unstructured, N:M) take one step that zeroes single weights in place.
        let steps = try maskMode() == nil ? recipe.scheduler.steps : 1
        for step in 0..<steps {
            let current: Transformer = model
            model = nil
            model = try pruneStep(current, step: step, steps: steps, sequences: sequences, originalParameters: original.parameters)
            if maskSummary == nil {
                log("  parameters: \(model.parameterCount) (\(String(format: "%.2f%%", 100 * (1 - Double(model.parameterCount) / Double(original.parameters)))) removed)")
            }
        }
        var beforeFineTune: [PerplexityResult]?
        var fineTune: FineTuneReport?
        if let ft = recipe.fineTuner {
            let m: Transformer = model
            beforeFineTune = try timed("evaluate pruned model before fine-tuning") { try evaluate(m, tokenizer, label: "pruned") }
            // A distilling fine-tuner's teacher is the dense model, read again from the run's file.
            let ctx = FineTuneContext(tokenizer: tokenizer, calibration: sequences, dataDir: dataDir,
                                      recipeFolder: (recipePath as NSString).deletingLastPathComponent,
                                      teacher: { try source.load() }, communicator: communicator, log: log)
            let r = try timed("fine-tune with '\(type(of: ft).name)'") { () throws -> FineTuneReport in
                if ft.isDataParallel { _ = sharing() }
                return try ft.fineTune(m, context: ctx)
            }
            fineTune = r
            try writeAtomically(Data(fineTuneChart(r).utf8), to: outputDir + "/finetune.svg")
        }
        var outputs: [String] = []
        let final = (config: model.config, parameters: model.parameterCount)
        try timed("write outputs to \(outputDir)") { [model] in
            model!.releasePackedWeights()
            outputs = try writeOutputs(model!, original: original.config, source: source, tokenizer: tokenizer)
        }
        // Evaluate the model as written (weights rounded to the output dtype), so `prune eval` on the
        // exported file reproduces ppl_after.
        let exported: Transformer
        if let gguf = outputs.first(where: { $0.hasSuffix(".gguf") }) {
            model = nil
            exported = try Transformer(path: outputDir + "/" + gguf)
        } else {
            exported = model
        }
        let after = try timed("evaluate pruned model") { try evaluate(exported, tokenizer, label: "after") }
        let zeroShot = recipe.evaluation.tasks.isEmpty ? nil : try timed("zero-shot tasks on the pruned model") { try evaluateTasks(exported, tokenizer) }
        if deleteModels {
            for o in outputs where o.hasSuffix(".gguf") || o.hasPrefix("safetensors/") { try? FileManager.default.removeItem(atPath: outputDir + "/" + o) }
            outputs.removeAll { $0.hasSuffix(".gguf") || $0.hasPrefix("safetensors/") }
        }
        let embBefore = RunReport.embeddingParams(original.config), embAfter = RunReport.embeddingParams(final.config)
        let report = RunReport(
            model: recipe.model, recipe: recipePath, paramsBefore: original.parameters, paramsAfter: final.parameters,
            embeddingParamsBefore: embBefore, embeddingParamsAfter: embAfter,
            removedFraction: 1 - Double(final.parameters) / Double(original.parameters),
            removedFractionWithoutEmbeddings: 1 - Double(final.parameters - embAfter) / Double(original.parameters - embBefore),
            pplBefore: before.first?.ppl, pplAfter: after.first?.ppl, evaluationsBefore: before, evaluationsAfter: after,
            widthsBefore: RunReport.widths(original.config), widthsAfter: RunReport.widths(final.config),
            calibration: recipe.calibration, stages: stages,
            outputs: outputs + (fineTune == nil ? [] : ["finetune.svg"]) + ["report.json", "report.md"],
            evaluationsBeforeFineTune: beforeFineTune, fineTune: fineTune, zeroShot: zeroShot,
            targetRatio: maskSummary == nil ? recipe.scheduler.targetRatio : nil, roundTo: recipe.scheduler.roundTo,
            export: exportSummary, distributed: distributedSummary)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        // A model that evaluates to NaN still gets its report ("ppl_after": "nan"), not an encoding error.
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let full = MaskedRunReport(report: report, sparsity: maskSummary)
        try writeAtomically(try enc.encode(full), to: outputDir + "/report.json")
        try writeAtomically(Data(full.markdown.utf8), to: outputDir + "/report.md")
        log("wrote \(outputDir)/report.json and report.md")
        return report
    }

    func writeOutputs(_ model: Transformer, original: ModelConfig, source: ModelSource, tokenizer: BPETokenizer) throws -> [String] {
        var out: [String] = []
        let chart = maskSummary?.chart ?? sparsityChart(before: original, after: model.config)
        try writeAtomically(Data(chart.utf8), to: outputDir + "/sparsity.svg")
        out.append("sparsity.svg")
        let base = source.stem
        if recipe.output.formats.contains("gguf") {
            let type = try GGUFOutputType(name: recipe.output.type)
            let name = type == .sameAsInput ? "\(base).pruned.gguf" : "\(base).pruned.\(type).gguf"
            let inputTypes = type == .sameAsInput ? try source.tensorTypes() : nil
            let bar = ProgressBar(total: model.params.entries.count, label: "  write \(name)", unit: "tensor")
            exportSummary = try model.writeGGUF(to: outputDir + "/" + name, type: type, source: source.gguf, inputTypes: inputTypes,
                                                tokenizer: tokenizer, name: base + " (pruned)") { done, _ in bar.update(done) }
            bar.finish()
            out.append(name)
        }
        if recipe.output.formats.contains("safetensors") {
            let dtype = try safetensorsType(source)
            try model.saveSafetensors(directory: outputDir + "/safetensors", dtype: dtype, tokenizer: tokenizer)
            out += ["safetensors/model.safetensors", "safetensors/config.json", "safetensors/tokenizer.json", "safetensors/tokenizer_config.json"]
        }
        try writeAtomically(try resolvedRecipeJSON(), to: outputDir + "/recipe.resolved.json")
        out.append("recipe.resolved.json")
        return out
    }

    /// Kept fraction per layer of query heads, KV heads and MLP channels. After block removal the
    /// surviving layers are compared with the widest original layer.
    func sparsityChart(before: ModelConfig, after: ModelConfig) -> String {
        let same = before.nLayers == after.nLayers
        func ref(_ a: [Int], _ l: Int) -> Double { Double(same ? a[l] : (a.max() ?? 1)) }
        let layers = 0..<after.nLayers
        return SVGChart.groupedBars(
            title: "Kept fraction per layer (\(after.nLayers) of \(before.nLayers) layers, hidden \(after.hiddenSize)/\(before.hiddenSize))",
            categories: layers.map(String.init),
            series: [("query heads", layers.map { Double(after.nHead[$0]) / ref(before.nHead, $0) }),
                     ("KV heads", layers.map { Double(after.nKVHead[$0]) / ref(before.nKVHead, $0) }),
                     ("MLP channels", layers.map { Double(after.ffnDim[$0]) / ref(before.ffnDim, $0) })],
            yLabel: "fraction kept", xLabel: "layer", yMax: 1)
    }

    /// The fine-tune's training loss per step.
    func fineTuneChart(_ r: FineTuneReport) -> String {
        SVGChart.lines(title: "Fine-tuning loss (\(r.losses.count) steps, \(r.tokens) tokens)",
                       series: [ChartSeries(name: "training loss", points: r.losses.enumerated().map { (Double($0.offset + 1), $0.element) })],
                       xLabel: "step", yLabel: "mean next-token NLL")
    }

    /// The recipe with every default filled in.
    func resolvedRecipeJSON() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(recipe.resolvedJSON())
    }

    /// Zero-shot accuracy of `model` on the recipe's `evaluation.tasks` (none: empty).
    func evaluateTasks(_ model: Transformer, _ tokenizer: BPETokenizer) throws -> [ZeroShotResult] {
        let ev = recipe.evaluation
        guard !ev.tasks.isEmpty else { return [] }
        let scorer = ZeroShotScorer(model: model)
        return try ev.tasks.compactMap(ZeroShotTask.init(rawValue:)).map { task in
            let items = try task.load(dataDir: dataDir, limit: ev.taskLimit)
            let bar = ProgressBar(total: items.count, label: "  \(task.rawValue)", unit: "item")
            let r = try ZeroShotEvaluator.evaluate(task: task, items: items, scorer: scorer, encode: { tokenizer.encode($0) },
                                                   communicator: sharing()) { done, _ in
                bar.update(done)
            }
            bar.finish()
            let norm = task.hasAccNorm ? String(format: ", acc_norm %.4f", r.accNorm) : ""
            log(String(format: "  %@: acc %.4f%@ (n %d, %.1f s)", task.rawValue, r.acc, norm, r.n, r.seconds))
            return r
        }
    }
}
