import Foundation
import PruneFramework

/// `prune run`, `prune validate`, `prune list`, `prune schema`.
enum RecipeCommands {
    static func run(_ args: [String], plugins: PluginSet) throws {
        let a = try Arguments(args, command: "run", valued: ["output-dir", "data-dir"], flags: ["from-cache"], positionals: 0...1)
        guard let path = a.positionals.first else {
            throw PruneError(.invalidArgument, "prune run: give a recipe, e.g. 'prune run Examples/recipes/quickstart.json'")
        }
        let recipe = try Recipe.load(path: path, plugins: plugins)
        if a.flag("from-cache") && recipe.sweep == nil {
            throw PruneError(.invalidArgument, "prune run: '--from-cache' applies to a recipe with a sweep; '\(path)' has none")
        }
        if recipe.sweep != nil {
            let c = try Comparison(recipe: recipe, recipePath: path, outputDir: a.string("output-dir"), dataDir: a.string("data-dir"))
            c.cachedOnly = a.flag("from-cache")
            c.communicator = World.current
            c.log = World.log
            let rows = try c.run()
            print("\(rows.count) rows: \(c.outputDir)/comparison.md, comparison.csv, ppl_vs_sparsity.svg, accuracy_vs_sparsity.svg")
            return
        }
        let r = PruneRun(recipe: recipe, recipePath: path, outputDir: a.string("output-dir"), dataDir: a.string("data-dir"))
        r.communicator = World.current
        r.log = World.log
        if World.current.isDistributed { r.log("\(World.current.size) processes (\(World.current.implementation)): calibration, gradients and evaluation are shared out; rank 0 writes the outputs") }
        let report = try r.run()
        print(String(format: "params %d → %d (%.2f%% removed); PPL %@ → %@", report.paramsBefore, report.paramsAfter,
                     report.removedFraction * 100, report.pplBefore.map { String(format: "%.3f", $0) } ?? "–",
                     report.pplAfter.map { String(format: "%.3f", $0) } ?? "–"))
    }

    static func validate(_ args: [String], plugins: PluginSet) throws {
        let a = try Arguments(args, command: "validate", valued: [], flags: [], positionals: 0...1)
        guard let path = a.positionals.first else { throw PruneError(.invalidArgument, "prune validate: give a recipe file") }
        let recipe = try Recipe.load(path: path, plugins: plugins)
        if let sweep = recipe.sweep {
            try Comparison(recipe: recipe, recipePath: path).preflight()
            print("\(path): valid sweep of \(sweep.entries.count) entries\(sweep.dense ? " and the dense model" : ""):")
            for e in sweep.entries { print(String(format: "  %@ at %g%%", e.name, e.ratio * 100)) }
            return
        }
        let run = PruneRun(recipe: recipe, recipePath: path)
        try run.preflight()
        print("\(path): valid (grouping '\(type(of: recipe.grouping).name)', criterion '\(type(of: recipe.criterion).name)', scheduler '\(type(of: recipe.scheduler).name)'); \(try run.memorySummary())")
    }

    struct Listed: Codable { var stage: String; var name: String; var summary: String; var keys: [PluginKey]; var aliases: [String] }

    static func listing(_ plugins: PluginSet) -> [Listed] {
        func rows<P>(_ r: Registry<P>) -> [Listed] { r.entries.map { Listed(stage: r.stage, name: $0.name, summary: $0.summary, keys: $0.keys, aliases: $0.aliases) } }
        return rows(plugins.groupings) + rows(plugins.criteria) + rows(plugins.schedulers) + rows(plugins.compensators) + rows(plugins.fineTuners)
    }

    static func list(_ args: [String], plugins: PluginSet) throws {
        let a = try Arguments(args, command: "list", valued: [], flags: ["json"])
        let items = listing(plugins)
        if a.flag("json") {
            try CLI.printJSON(items)
            return
        }
        var stage = ""
        for i in items {
            if i.stage != stage {
                stage = i.stage
                print("\n\(stage):")
            }
            print("  \(i.name) — \(i.summary)" + (i.aliases.isEmpty ? "" : " (also: \(i.aliases.joined(separator: ", ")))"))
            for k in i.keys {
                let allowed = k.allowed.map { " (\($0.joined(separator: "|")))" } ?? ""
                print("      \(k.name): \(k.type) = \(k.defaultValue ?? "required")\(allowed) — \(k.summary)")
            }
        }
    }

    /// JSON Schema (draft 2020-12) of a recipe, built from the registered plugins.
    static func schema(_ plugins: PluginSet) -> [String: Any] {
        func prop(_ k: PluginKey) -> [String: Any] {
            var p: [String: Any] = ["description": k.summary]
            switch k.type {
            case "number", "integer": p["type"] = [k.type, "null"]
            case "array": p["type"] = ["array", "null"]
            case "object": p["type"] = ["object", "null"]
            default: p["type"] = k.type
            }
            if let a = k.allowed {
                if k.type == "array" { p["items"] = ["enum": a] } else { p["enum"] = a }
            }
            if let d = k.defaultValue, let v = try? JSONSerialization.jsonObject(with: Data(d.utf8), options: .fragmentsAllowed) { p["default"] = v }
            return p
        }
        func stage<P>(_ r: Registry<P>) -> [String: Any] {
            ["oneOf": r.entries.map { e -> [String: Any] in
                var props: [String: Any] = ["type": e.aliases.isEmpty ? ["const": e.name] : ["enum": [e.name] + e.aliases]]
                for k in e.keys { props[k.name] = prop(k) }
                return ["type": "object", "description": e.summary, "properties": props, "required": ["type"], "additionalProperties": false]
            }]
        }
        func obj(_ props: [String: Any]) -> [String: Any] { ["type": "object", "properties": props, "additionalProperties": false] }
        return [
            "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "prune recipe", "type": "object",
            "required": ["model", "grouping", "criterion", "scheduler"], "additionalProperties": false,
            "properties": [
                "version": ["const": 1], "model": ["type": "string", "description": "GGUF file or Hugging Face model directory"],
                "calibration": obj(["dataset": ["type": "string", "default": "c4"], "samples": ["type": "integer", "minimum": 1, "default": 10],
                                    "seqLen": ["type": "integer", "minimum": 2, "default": 64], "seed": ["type": "integer", "minimum": 0, "default": 42],
                                    "sequential": ["type": "boolean", "default": false,
                                                   "description": "each layer scored on the outputs of the already-pruned layers before it (Wanda's and SparseGPT's procedure)"]]),
                "memory": obj(["budgetGB": ["type": ["number", "null"], "minimum": 0.1,
                                            "description": "peak memory the run may use, in GB; checked against an estimate before any work (default: the machine's)"]]),
                "grouping": stage(plugins.groupings), "criterion": stage(plugins.criteria), "scheduler": stage(plugins.schedulers),
                "compensator": plugins.compensators.entries.isEmpty ? ["type": "null"] : stage(plugins.compensators),
                "fineTuner": plugins.fineTuners.entries.isEmpty ? ["type": "null"] : stage(plugins.fineTuners),
                "evaluation": obj(["datasets": ["type": "array", "items": ["type": "string"], "default": ["wikitext2"]],
                                   "seqLen": ["type": "integer", "minimum": 2, "default": 128], "maxWindows": ["type": ["integer", "null"], "minimum": 1],
                                   "tasks": ["type": "array", "items": ["enum": ZeroShotTask.names], "default": [String]()],
                                   "taskLimit": ["type": ["integer", "null"], "minimum": 1]]),
                "sweep": [
                    "type": "object", "additionalProperties": false, "required": ["methods", "sparsities"],
                    "description": "methods × sparsities × fine-tune on/off, each a patch of this recipe; prune run writes comparison.md/.csv and plots",
                    "properties": [
                        "methods": ["type": "array", "minItems": 1, "items": ["type": "object", "required": ["name"],
                                    "description": "name plus patches of calibration, grouping, criterion, scheduler, compensator, fineTuner; fineTune: the method's own subset of sweep.fineTune"]],
                        "sparsities": ["type": "array", "minItems": 1, "items": ["oneOf": [["type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1],
                                       ["type": "object", "required": ["ratio"]]]]],
                        "fineTune": ["type": "array", "items": ["type": "boolean"]], "dense": ["type": "boolean", "default": true],
                        "cache": ["type": "string"], "keepModels": ["type": "boolean", "default": false], "title": ["type": "string"], "notes": ["type": "string"],
                    ],
                ],
                "output": obj(["dir": ["type": "string", "default": "out"],
                               "formats": ["type": "array", "items": ["enum": ["gguf", "safetensors"]], "default": ["gguf"]],
                               "type": ["enum": GGUFOutputType.names, "default": "same-as-input"]]),
            ],
        ]
    }

    static func printSchema(_ args: [String], plugins: PluginSet) throws {
        _ = try Arguments(args, command: "schema", valued: [], flags: [])
        let data = try JSONSerialization.data(withJSONObject: schema(plugins), options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
