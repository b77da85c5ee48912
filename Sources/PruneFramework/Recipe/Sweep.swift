import Foundation

/// A recipe's `sweep`: methods × sparsities × fine-tune on/off, each entry a full recipe made by
/// patching the base recipe (everything outside `sweep`). Expanded and validated when the recipe is
/// read, so a bad entry fails before any model is loaded.
///
/// ```json
/// "sweep": {
///   "methods": [ { "name": "taylor vector", "criterion": { "type": "taylor", "estimator": "vector" } },
///                { "name": "saap", "criterion": { "type": "saap-fusion" }, "scheduler": { "type": "saap" } } ],
///   "sparsities": [0.2, { "ratio": 0.5, "scheduler": { "maxRatio": 0.9 } }],
///   "fineTune": [false, true]
/// }
/// ```
///
/// A method may name its own `fineTune` (a subset of the sweep's): `[true]` for a fine-tuner variant
/// that has no row of its own without fine-tuning.
///
/// Patching: objects merge key by key; a stage object whose `type` differs from the base's replaces
/// it whole; `null` deletes a key. The sparsity goes to `scheduler.ratio`, and to `criterion.ratio`
/// when the criterion declares a `ratio` key (criteria that learn a mask under a budget).
public struct Sweep: @unchecked Sendable {
    public struct Entry: @unchecked Sendable {
        /// "taylor vector", "taylor vector + lora".
        public var name: String
        /// The method's name as written in `methods`.
        public var method: String
        /// The sparsity asked for (fraction of parameters), as written.
        public var ratio: Double
        public var fineTune: Bool
        public var recipe: Recipe
        /// The entry's recipe JSON after patching, before defaults are filled in.
        public var json: [String: JSONValue]
    }

    public var entries: [Entry]
    /// Whether the dense model is evaluated as the table's first row.
    public var dense = true
    /// Directory of cached entry results; nil = `<output.dir>/cache`.
    public var cache: String?
    /// Keep each entry's exported model files (they are deleted after evaluation by default).
    public var keepModels = false
    public var title: String?
    /// Free text printed under the table's heading (the setting, caveats about the measurements).
    public var notes: String?

    static let keys = ["methods", "sparsities", "fineTune", "dense", "cache", "keepModels", "title", "notes"]
    static let methodKeys = ["name", "calibration", "grouping", "criterion", "scheduler", "compensator", "fineTuner", "fineTune"]
    static let stageKeys: Set<String> = ["grouping", "criterion", "scheduler", "compensator", "fineTuner"]

    /// Expands `sweep` against `base` (the recipe object without its `sweep`).
    public init(json: JSONValue, base: [String: JSONValue], plugins: PluginSet) throws {
        guard let s = json.object else { throw PruneError(.invalidArgument, "recipe: sweep must be an object") }
        for k in s.keys.sorted() where !Self.keys.contains(k) {
            throw PruneError(.invalidArgument, "recipe: sweep.\(PruneError.shown(k, limit: 40)) is not a sweep key; allowed: \(Self.keys.joined(separator: ", "))")
        }
        guard let methods = s["methods"]?.array, !methods.isEmpty else {
            throw PruneError(.invalidArgument, "recipe: sweep.methods must be a non-empty array of {\"name\": ..., stage patches}")
        }
        guard let sparsities = s["sparsities"]?.array, !sparsities.isEmpty else {
            throw PruneError(.invalidArgument, "recipe: sweep.sparsities must be a non-empty array of ratios in (0, 1) or {\"ratio\": r, patches}")
        }
        func flag(_ k: String, _ d: Bool) throws -> Bool {
            guard let v = s[k] else { return d }
            guard let b = v.bool else { throw PruneError(.invalidArgument, "recipe: sweep.\(k) must be true or false") }
            return b
        }
        dense = try flag("dense", true)
        keepModels = try flag("keepModels", false)
        if let c = s["cache"] {
            guard let c = c.string else { throw PruneError(.invalidArgument, "recipe: sweep.cache must be a string naming a directory") }
            try checkPathValue(c, at: "sweep.cache")
            cache = c
        }
        for k in ["title", "notes"] {
            guard let v = s[k] else { continue }
            guard let t = v.string else { throw PruneError(.invalidArgument, "recipe: sweep.\(k) must be a string") }
            if k == "title" { title = t } else { notes = t }
        }
        let hasFineTuner = base["fineTuner"].map { $0 != .null } ?? false
        var tunes = hasFineTuner ? [false, true] : [false]
        if let f = s["fineTune"] {
            guard let a = f.array, !a.isEmpty, a.allSatisfy({ $0.bool != nil }) else {
                throw PruneError(.invalidArgument, "recipe: sweep.fineTune must be a non-empty array of true/false, e.g. [false, true]")
            }
            tunes = a.compactMap(\.bool)
        }

        var ratios: [(Double, [String: JSONValue])] = []
        let patchable = Self.methodKeys.dropFirst().dropLast()
        for (i, sp) in sparsities.enumerated() {
            let at = "sweep.sparsities[\(i)]"
            if let n = sp.double {
                ratios.append((n, [:]))
            } else if var o = sp.object {
                guard let n = o.removeValue(forKey: "ratio")?.double else {
                    throw PruneError(.invalidArgument, "recipe: \(at).ratio is required and must be a number")
                }
                for k in o.keys.sorted() where !patchable.contains(k) {
                    throw PruneError(.invalidArgument, "recipe: \(at).\(PruneError.shown(k, limit: 40)) cannot be patched per sparsity; allowed: ratio, \(patchable.joined(separator: ", "))")
                }
                ratios.append((n, o))
            } else {
                throw PruneError(.invalidArgument, "recipe: \(at) must be a number or an object with a 'ratio'")
            }
            guard ratios[i].0 > 0, ratios[i].0 < 1 else {
                throw PruneError(.outOfRange, "recipe: \(at) = '\(ratios[i].0)' is not a fraction of parameters in (0, 1)")
            }
            guard !ratios[..<i].contains(where: { $0.0 == ratios[i].0 }) else {
                throw PruneError(.invalidArgument, "recipe: \(at) = '\(ratios[i].0)' is listed twice; each sparsity is one group of rows")
            }
        }

        // Method patches first, all checked before any entry is built.
        var named: [(String, [String: JSONValue], tunes: [Bool])] = []
        var names = Set<String>()
        for (i, m) in methods.enumerated() {
            guard var patch = m.object else { throw PruneError(.invalidArgument, "recipe: sweep.methods[\(i)] must be an object") }
            guard let name = patch.removeValue(forKey: "name")?.string, !name.isEmpty else {
                throw PruneError(.invalidArgument, "recipe: sweep.methods[\(i)].name is required (the table's row label)")
            }
            guard names.insert(name).inserted else {
                throw PruneError(.invalidArgument, "recipe: sweep.methods[\(i)].name = '\(PruneError.shown(name))' is used twice; names label table rows")
            }
            for k in patch.keys.sorted() where !Self.methodKeys.contains(k) {
                throw PruneError(.invalidArgument, "recipe: sweep.methods[\(i)].\(PruneError.shown(k, limit: 40)) is not a method key; allowed: \(Self.methodKeys.joined(separator: ", "))")
            }
            // A method's own `fineTune` picks which of the sweep's rows it has (a distillation
            // variant of the fine-tuner has no row without fine-tuning).
            var own = tunes
            if let f = patch.removeValue(forKey: "fineTune") {
                guard let a = f.array, !a.isEmpty, a.allSatisfy({ $0.bool != nil }), Set(a.compactMap(\.bool)).isSubset(of: tunes) else {
                    throw PruneError(.invalidArgument, "recipe: sweep.methods[\(i)].fineTune must be a non-empty array of true/false within sweep.fineTune \(tunes)")
                }
                own = a.compactMap(\.bool)
            }
            named.append((name, patch, own))
        }
        // Run order: entries without fine-tuning first, sparsity by sparsity, every method at each; a sweep
        // cut short has complete comparisons of the cheaper rows.
        var out: [Entry] = []
        for tune in tunes {
            for (ratio, ratioPatch) in ratios {
                for (i, (name, patch, own)) in named.enumerated() where own.contains(tune) {
                    var j = Self.merge(Self.merge(base, patch), ratioPatch)
                    let label = "sweep.methods[\(i)] ('\(PruneError.shown(name, limit: 40))') at ratio \(ratio)\(tune ? " with fine-tuning" : "")"
                    if tune {
                        guard j["fineTuner"]?.object != nil else {
                            throw PruneError(.invalidArgument, "recipe: \(label): sweep.fineTune holds true but no fineTuner is set in the recipe or the method")
                        }
                    } else {
                        j.removeValue(forKey: "fineTuner")
                    }
                    j = try Self.setRatio(ratio, in: j, plugins: plugins, label: label)
                    let recipe: Recipe
                    do { recipe = try Recipe.decode(try JSONValue.object(j).canonicalData(), plugins: plugins, source: label) } catch let e as PruneError {
                        let msg = e.message.hasPrefix("recipe: ") ? String(e.message.dropFirst(8)) : e.message
                        throw PruneError(e.code, "recipe: \(label): \(msg)")
                    }
                    let ftName = j["fineTuner"]?.object?["type"]?.string ?? "fine-tune"
                    out.append(Entry(name: tune ? "\(name) + \(ftName)" : name, method: name, ratio: ratio, fineTune: tune,
                                     recipe: recipe, json: j))
                }
            }
        }
        entries = out
    }

    /// `patch` applied to `base`: objects merge key by key, a stage object with another `type`
    /// replaces the base's, `null` deletes.
    static func merge(_ base: [String: JSONValue], _ patch: [String: JSONValue], depth: Int = 0) -> [String: JSONValue] {
        var r = base
        for (k, v) in patch {
            if v == .null {
                r.removeValue(forKey: k)
            } else if let pv = v.object, let bv = r[k]?.object {
                let retyped = depth == 0 && stageKeys.contains(k) && pv["type"] != nil && pv["type"] != bv["type"]
                r[k] = .object(retyped ? pv : merge(bv, pv, depth: depth + 1))
            } else {
                r[k] = v
            }
        }
        return r
    }

    /// Writes the sparsity into the scheduler (which must take a `ratio`) and into a criterion that declares one.
    static func setRatio(_ ratio: Double, in j: [String: JSONValue], plugins: PluginSet, label: String) throws -> [String: JSONValue] {
        var j = j
        guard var sched = j["scheduler"]?.object, let st = sched["type"]?.string else {
            throw PruneError(.invalidArgument, "recipe: \(label): the scheduler needs a 'type'")
        }
        guard let entry = plugins.schedulers.entries.first(where: { $0.name == st }) else {
            throw PruneError(.unknownName, "recipe: \(label): scheduler.type = '\(PruneError.shown(st))' is not a registered scheduler plugin; registered: \(plugins.schedulers.names.joined(separator: ", "))")
        }
        guard entry.keys.contains(where: { $0.name == "ratio" }) else {
            throw PruneError(.invalidArgument, "recipe: \(label): scheduler '\(PruneError.shown(st))' takes no 'ratio', so a sweep cannot set its sparsity")
        }
        sched["ratio"] = .number(ratio)
        j["scheduler"] = .object(sched)
        if var crit = j["criterion"]?.object, let ct = crit["type"]?.string,
           plugins.criteria.entries.first(where: { $0.name == ct })?.keys.contains(where: { $0.name == "ratio" }) == true {
            crit["ratio"] = .number(ratio)
            j["criterion"] = .object(crit)
        }
        return j
    }
}
