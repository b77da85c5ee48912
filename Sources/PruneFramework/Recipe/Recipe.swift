import Foundation

/// A pruning run, as written in a JSON recipe (version 1). Unknown keys are errors naming their path.
public struct Recipe: @unchecked Sendable {
    public struct Calibration: Codable, Sendable, Equatable {
        /// `c4`, `wikitext2`, `ptb`, or a path to a .jsonl (field "text") or text file.
        public var dataset = "c4"
        public var samples = 10
        public var seqLen = 64
        public var seed = 42
        /// Mask mode: score each layer on the activations of the already-masked layers before it
        /// (Wanda's and SparseGPT's procedure) instead of all layers on one pass of the dense model.
        public var sequential = false

        enum CodingKeys: String, CodingKey { case dataset, samples, seqLen, seed, sequential }

        /// `sequential` is written only when true, so recipes without it keep their cache keys.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(dataset, forKey: .dataset)
            try c.encode(samples, forKey: .samples)
            try c.encode(seqLen, forKey: .seqLen)
            try c.encode(seed, forKey: .seed)
            if sequential { try c.encode(true, forKey: .sequential) }
        }
    }

    public struct Evaluation: Codable, Sendable, Equatable {
        public var datasets = ["wikitext2"]
        public var seqLen = 128
        /// Windows per dataset; nil = all.
        public var maxWindows: Int?
        /// Zero-shot tasks the final model is scored on (lm-evaluation-harness conventions).
        public var tasks: [String] = []
        /// Items per task; nil = every item.
        public var taskLimit: Int?
    }

    public struct Output: Codable, Sendable, Equatable {
        public var dir = "out"
        /// `gguf` and/or `safetensors`.
        public var formats = ["gguf"]
        /// What the tensors are stored as: `same-as-input` (each tensor keeps its input type, a row
        /// its type's blocks no longer fit falls back as llama-quantize does) or a llama-quantize file
        /// type (`GGUFOutputType.names`). Safetensors takes `same-as-input`, `f32`, `f16` or `bf16`.
        /// Recipes may still call it `dtype`.
        public var type = "same-as-input"
    }

    /// Limits on the machine's resources.
    public struct Memory: Codable, Sendable, Equatable {
        /// The peak memory a run may use, in GB (10⁹ bytes); nil: the machine's physical memory.
        public var budgetGB: Double?
    }

    public var version = 1
    public var model: String
    public var calibration = Calibration()
    public var grouping: any Grouping
    public var criterion: any Criterion
    public var scheduler: any Scheduler
    public var fineTuner: (any FineTuner)?
    /// Repairs the kept weights after the plan and before the surgery (structure schedulers).
    public var compensator: (any Compensator)?
    public var evaluation = Evaluation()
    public var output = Output()
    public var memory = Memory()
    /// Methods × sparsities × fine-tune to run and tabulate instead of one run (`prune run` makes a comparison).
    public var sweep: Sweep?

    static let topKeys = ["version", "model", "calibration", "grouping", "criterion", "scheduler", "compensator", "fineTuner", "evaluation",
                          "output", "memory", "sweep"]

    /// Decodes and validates a recipe; `plugins` resolves stage names.
    /// `data` passes `JSONCheck` first, so a syntax error has a line and column and a duplicate key is refused.
    public static func decode(_ data: Data, plugins: PluginSet, source: String = "recipe") throws -> Recipe {
        try JSONCheck.check(data, label: source == "recipe" ? "recipe" : "recipe '\(source)'")
        let d = JSONDecoder()
        d.userInfo[.pluginSet] = plugins
        do {
            var r = try d.decode(RecipeBox.self, from: data).recipe
            if var top = try JSONValue.parseChecked(data, source: source).object, let sw = top.removeValue(forKey: "sweep") {
                r.sweep = try Sweep(json: sw, base: top, plugins: plugins)
            }
            return r
        } catch let e as PruneError {
            throw e
        } catch let DecodingError.dataCorrupted(ctx) {
            let detail = (ctx.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String ?? ctx.debugDescription
            throw PruneError(.badFormat, "recipe '\(source)' is not valid JSON: \(PruneError.shown(detail, limit: 200))")
        } catch let DecodingError.typeMismatch(_, ctx) where ctx.codingPath.isEmpty {
            throw PruneError(.invalidArgument, "recipe '\(source)': the top level must be a JSON object ({\"model\": ..., \"grouping\": ..., ...})")
        } catch let DecodingError.typeMismatch(t, ctx) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(ctx.codingPath)) must be \(jsonTypeName(t))")
        } catch let DecodingError.keyNotFound(k, ctx) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(ctx.codingPath, k.stringValue)) is required")
        } catch {
            throw PruneError(.badFormat, "recipe '\(source)': \(PruneError.shown("\(error)", limit: 200))")
        }
    }

    /// The recipe with every default filled in (what `recipe.resolved.json` holds), without its sweep.
    public func resolvedJSON() throws -> JSONValue {
        func plain<T: Encodable>(_ v: T) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(v)) }
        func object(_ p: any Plugin) throws -> JSONValue {
            var o = try plain(p).object ?? [:]
            o["type"] = .string(type(of: p).name)
            return .object(o)
        }
        var r: [String: JSONValue] = [
            "version": .int(version), "model": .string(model), "calibration": try plain(calibration),
            "grouping": try object(grouping), "criterion": try object(criterion),
            "scheduler": try object(scheduler), "evaluation": try plain(evaluation), "output": try plain(output),
        ]
        if let ft = fineTuner { r["fineTuner"] = try object(ft) }
        if let c = compensator { r["compensator"] = try object(c) }
        // Written only when set, so recipes without it keep their sweep cache keys.
        if memory.budgetGB != nil { r["memory"] = try plain(memory) }
        return .object(r)
    }

    /// Reads a recipe file. Relative paths in it (model, output.dir, sweep.cache, dataset files) are
    /// relative to the recipe file's folder, so a recipe runs the same from any working directory.
    public static func load(path: String, plugins: PluginSet) throws -> Recipe {
        let data = try RegularFile.read(path, what: "recipe file", cap: 64 << 20)
        let folder = (path as NSString).deletingLastPathComponent
        return try decode(data, plugins: plugins, source: path).resolvingPaths(relativeTo: folder.isEmpty ? "." : folder)
    }

    /// The recipe with its relative file paths made relative to `folder` instead of the working
    /// directory; dataset names (`c4`, `wikitext2`, ...) stay as they are.
    public func resolvingPaths(relativeTo folder: String) -> Recipe {
        func path(_ p: String) -> String { Self.path(p, relativeTo: folder) }
        func dataset(_ d: String) -> String { Datasets.isName(d) ? d : path(d) }
        var r = self
        r.model = path(model)
        r.output.dir = path(output.dir)
        r.calibration.dataset = dataset(calibration.dataset)
        r.evaluation.datasets = evaluation.datasets.map(dataset)
        r.sweep?.cache = sweep?.cache.map(path)
        if var s = r.sweep {
            s.entries = s.entries.map { e in
                var e = e
                e.recipe = e.recipe.resolvingPaths(relativeTo: folder)
                return e
            }
            r.sweep = s
        }
        return r
    }

    /// `p` as given when absolute or empty, else `folder/p` (with `./` and `../` collapsed).
    public static func path(_ p: String, relativeTo folder: String) -> String {
        guard !p.isEmpty, !p.hasPrefix("/"), !folder.isEmpty, folder != "." else { return p }
        return URL(fileURLWithPath: p, relativeTo: URL(fileURLWithPath: folder, isDirectory: true)).standardizedFileURL.path
    }
}

/// Decodable wrapper so Recipe can stay a plain struct with existential members.
struct RecipeBox: Decodable {
    let recipe: Recipe

    init(from decoder: Decoder) throws {
        guard let plugins = decoder.userInfo[.pluginSet] as? PluginSet else {
            throw PruneError(.invalidArgument, "recipe decoder has no plugin set")
        }
        try decoder.checkKeys(Recipe.topKeys, context: "a recipe")
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        func key(_ s: String) -> AnyCodingKey { AnyCodingKey(s) }
        func need(_ k: String) throws {
            guard c.contains(key(k)) else {
                throw PruneError(.invalidArgument, "recipe: '\(k)' is required; a recipe has \(Recipe.topKeys.joined(separator: ", "))")
            }
        }
        let version = try c.integer(key("version"), default: 1, in: 1...1_000_000)
        guard version == 1 else {
            throw PruneError(.unsupported, "recipe: version = '\(version)' is not supported; this prune reads version 1")
        }
        try need("model")
        let model = try c.path(key("model"), default: "")
        for k in ["grouping", "criterion", "scheduler"] { try need(k) }
        let grouping = try plugins.groupings.decode(from: try c.superDecoder(forKey: key("grouping")))
        let criterion = try plugins.criteria.decode(from: try c.superDecoder(forKey: key("criterion")))
        let scheduler = try plugins.schedulers.decode(from: try c.superDecoder(forKey: key("scheduler")))
        var fineTuner: (any FineTuner)?
        if c.contains(key("fineTuner")), try !c.decodeNil(forKey: key("fineTuner")) {
            fineTuner = try plugins.fineTuners.decode(from: try c.superDecoder(forKey: key("fineTuner")))
        }
        var r = Recipe(version: version, model: model, grouping: grouping, criterion: criterion, scheduler: scheduler, fineTuner: fineTuner)
        if c.contains(key("compensator")), try !c.decodeNil(forKey: key("compensator")) {
            r.compensator = try plugins.compensators.decode(from: try c.superDecoder(forKey: key("compensator")))
        }
        if c.contains(key("calibration")) { r.calibration = try Self.calibration(try c.superDecoder(forKey: key("calibration"))) }
        if c.contains(key("evaluation")) { r.evaluation = try Self.evaluation(try c.superDecoder(forKey: key("evaluation"))) }
        if c.contains(key("output")) { r.output = try Self.output(try c.superDecoder(forKey: key("output"))) }
        if c.contains(key("memory")) { r.memory = try Self.memory(try c.superDecoder(forKey: key("memory"))) }
        recipe = r
    }

    static func calibration(_ d: Decoder) throws -> Recipe.Calibration {
        try d.checkKeys(["dataset", "samples", "seqLen", "seed", "sequential"], context: "calibration")
        let c = try d.container(keyedBy: AnyCodingKey.self)
        var v = Recipe.Calibration()
        v.dataset = try c.path(AnyCodingKey("dataset"), default: v.dataset)
        v.samples = try c.integer(AnyCodingKey("samples"), default: v.samples, in: 1...100_000)
        v.seqLen = try c.integer(AnyCodingKey("seqLen"), default: v.seqLen, in: 2...1_000_000)
        v.seed = try c.integer(AnyCodingKey("seed"), default: v.seed, in: 0...Int.max)
        v.sequential = try c.value(AnyCodingKey("sequential"), default: v.sequential)
        return v
    }

    static func evaluation(_ d: Decoder) throws -> Recipe.Evaluation {
        try d.checkKeys(["datasets", "seqLen", "maxWindows", "tasks", "taskLimit"], context: "evaluation")
        let c = try d.container(keyedBy: AnyCodingKey.self)
        var v = Recipe.Evaluation()
        v.datasets = try c.value(AnyCodingKey("datasets"), default: v.datasets)
        for (i, d) in v.datasets.enumerated() { try checkPathValue(d, at: "\(jsonPath(c.codingPath, "datasets"))[\(i)]") }
        v.seqLen = try c.integer(AnyCodingKey("seqLen"), default: v.seqLen, in: 2...1_000_000)
        if c.contains(AnyCodingKey("maxWindows")), !(try c.decodeNil(forKey: AnyCodingKey("maxWindows"))) {
            v.maxWindows = try c.integer(AnyCodingKey("maxWindows"), default: 0, in: 1...Int.max)
        }
        v.tasks = try c.value(AnyCodingKey("tasks"), default: v.tasks)
        for (i, t) in v.tasks.enumerated() where ZeroShotTask(rawValue: t) == nil {
            throw PruneError(.unknownName, "recipe: \(jsonPath(c.codingPath, "tasks"))[\(i)] = '\(PruneError.shown(t))' is not a zero-shot task; choose \(ZeroShotTask.names.joined(separator: ", "))")
        }
        if c.contains(AnyCodingKey("taskLimit")), !(try c.decodeNil(forKey: AnyCodingKey("taskLimit"))) {
            v.taskLimit = try c.integer(AnyCodingKey("taskLimit"), default: 0, in: 1...Int.max)
        }
        return v
    }

    static func memory(_ d: Decoder) throws -> Recipe.Memory {
        try d.checkKeys(["budgetGB"], context: "memory")
        let c = try d.container(keyedBy: AnyCodingKey.self)
        let key = AnyCodingKey("budgetGB")
        guard c.contains(key), !(try c.decodeNil(forKey: key)) else { return Recipe.Memory() }
        let gb: Double = try c.value(key, default: 0)
        guard gb.isFinite, gb >= 0.1, gb <= 1_000_000 else {
            throw PruneError(.outOfRange, "recipe: \(jsonPath(c.codingPath, "budgetGB")) = '\(gb)' is outside 0.1...1000000; give the peak memory the run may use in GB")
        }
        return Recipe.Memory(budgetGB: gb)
    }

    static func output(_ d: Decoder) throws -> Recipe.Output {
        try d.checkKeys(["dir", "formats", "type", "dtype"], context: "output")
        let c = try d.container(keyedBy: AnyCodingKey.self)
        var v = Recipe.Output()
        v.dir = try c.path(AnyCodingKey("dir"), default: v.dir)
        v.formats = try c.value(AnyCodingKey("formats"), default: v.formats)
        for (i, f) in v.formats.enumerated() where !["gguf", "safetensors"].contains(f) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, "formats"))[\(i)] = '\(PruneError.shown(f))' is not an output format; choose gguf, safetensors")
        }
        if c.contains(AnyCodingKey("type")) && c.contains(AnyCodingKey("dtype")) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath)) sets both 'type' and 'dtype' (its earlier name); give 'type'")
        }
        let key = AnyCodingKey(c.contains(AnyCodingKey("dtype")) ? "dtype" : "type")
        v.type = try c.choice(key, default: v.type, allowed: GGUFOutputType.names).lowercased()
        if v.formats.contains("safetensors"), !["same-as-input", "f32", "f16", "bf16"].contains(v.type) {
            throw PruneError(.invalidArgument, "recipe: \(jsonPath(c.codingPath, key.stringValue)) = '\(v.type)' is a GGUF quantization, but output.formats includes safetensors, which stores same-as-input, f32, f16 or bf16; write the two formats in separate runs or choose one of those")
        }
        return v
    }
}
